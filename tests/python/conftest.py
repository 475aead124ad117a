"""Shared fixtures: ledgers on real files and a real PostgreSQL server, plugin
components built by `cargo xtask plugins`."""

from __future__ import annotations

import itertools
import os
import pathlib
import urllib.parse
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
