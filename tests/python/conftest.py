"""Shared fixtures: ledgers on real files and a real PostgreSQL server, plugin
components built by `cargo xtask plugins`."""

from __future__ import annotations

import contextlib
import itertools
import os
import pathlib
import subprocess
import sys
import urllib.parse
from collections.abc import Iterator
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

import pytest

import walletlog

ROOT = pathlib.Path(__file__).resolve().parents[2]
PLUGINS = ROOT / "target" / "plugins"
FIXTURES = ROOT / "tests" / "fixtures" / "webhooks"


def plugin(name: str) -> pathlib.Path:
    path = PLUGINS / f"{name}.wasm"
    if not path.exists():
        pytest.fail(f"{path} is missing: build the plugins with `cargo xtask plugins`")
    return path


def event(i: int = 1, **over: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "wallet_id": "w1",
        "provider": "stripe",
        "event_type": "deposit",
        "amount": Decimal("10.00"),
        "currency": "USD",
        "occurred_at": datetime(2026, 1, 1, tzinfo=timezone.utc),
        "provider_event_id": f"evt_{i}",
    }
    fields.update(over)
    return fields


def pg_location(prefix: str) -> str:
    """A ledger location in a new schema of the test PostgreSQL server
    (`WALLETLOG_TEST_PG`, set by `cargo xtask test`): its `walletlog_test`
    database, a schema walletlog creates on first open."""
    admin = os.environ.get("WALLETLOG_TEST_PG")
    if not admin:
        pytest.skip("no PostgreSQL server: run under `cargo xtask test` or set WALLETLOG_TEST_PG")
    parts = urllib.parse.urlsplit(admin)
    uri = urllib.parse.urlunsplit(parts._replace(path="/walletlog_test"))
    schema = f"{prefix}_{os.getpid()}_{next(_SCHEMAS)}"
    return f"{uri}{'&' if parts.query else '?'}options=-csearch_path%3D{schema}"


_SCHEMAS = itertools.count()


@pytest.fixture
def db_file(tmp_path: pathlib.Path) -> pathlib.Path:
    """A SQLite file, for tests of the file itself."""
    return tmp_path / "wallet.db"


@pytest.fixture(params=["sqlite", "postgres"])
def db(request: pytest.FixtureRequest, tmp_path: pathlib.Path) -> str:
    """A ledger location on each engine: a SQLite file, a PostgreSQL schema."""
    if request.param == "sqlite":
        return str(tmp_path / "wallet.db")
    return pg_location("py")


@pytest.fixture
def led(db: str) -> walletlog.Ledger:
    with walletlog.Ledger(db) as ledger:
        yield ledger


@contextlib.contextmanager
def write_lock(path: pathlib.Path) -> Iterator[None]:
    """Holds the SQLite file's write lock (BEGIN IMMEDIATE) until the block
    ends. From another process: two copies of SQLite in one process
    (Python's and walletlog's) do not see each other's locks."""
    blocker = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sqlite3, sys\n"
            "c = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
            "c.execute('BEGIN IMMEDIATE')\n"
            "print('locked', flush=True)\n"
            "sys.stdin.read()\n",
            str(path),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert blocker.stdout is not None and blocker.stdin is not None
    try:
        assert blocker.stdout.readline() == "locked\n"
        yield
    finally:
        blocker.stdin.close()
        assert blocker.wait() == 0
