"""Shared fixtures: ledgers on real files, plugin components built by `cargo xtask plugins`."""

from __future__ import annotations

import pathlib
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


@pytest.fixture
def db(tmp_path: pathlib.Path) -> pathlib.Path:
    return tmp_path / "wallet.db"


@pytest.fixture
def led(db: pathlib.Path) -> walletlog.Ledger:
    with walletlog.Ledger(db) as ledger:
        yield ledger
