"""Hostile input through the Python face: wrong types, huge and strange
values. Each one is a clear, typed error naming the field; nothing is stored;
the interpreter and the ledger stay healthy."""

from __future__ import annotations

import sys
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

import walletlog
from conftest import event

MB = 1 << 20


def nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth):
        value = {"a": value}
    return value


@pytest.mark.parametrize(
    ("over", "field"),
    [
        ({"wallet_id": 7}, "wallet_id"),
        ({"wallet_id": None}, "wallet_id"),
        ({"wallet_id": b"w1"}, "wallet_id"),
        ({"provider": ["stripe"]}, "provider"),
        ({"event_type": 1}, "event_type"),
        ({"amount": None}, "amount"),
        ({"amount": {"value": 1}}, "amount"),
        ({"amount": [1]}, "amount"),
        ({"currency": 840}, "currency"),
        ({"occurred_at": 1767225600}, "occurred_at"),
        ({"metadata": "{}"}, "metadata"),
        ({"metadata": [1, 2]}, "metadata"),
        ({"provider_event_id": 5}, "provider_event_id"),
        ({"idempotency_key": object()}, "idempotency_key"),
        ({"event_id": 12}, "event_id"),
    ],
)
def test_wrong_types_are_type_errors_naming_the_field(
    led: walletlog.Ledger, over: dict[str, Any], field: str
) -> None:
    with pytest.raises((TypeError, walletlog.ValidationError)) as e:
        led.ingest(**event(**over))
    assert field in str(e.value)
    assert led.changes_since() == [] and led.audit_log() == []


@pytest.mark.parametrize(
    ("over", "field"),
    [
        ({"wallet_id": "w" * (16 * MB)}, "wallet_id"),
        ({"provider_event_id": "e" * (16 * MB)}, "provider_event_id"),
        ({"idempotency_key": "k" * (16 * MB)}, "idempotency_key"),
        ({"currency": "U" * MB}, "currency"),
        ({"metadata": {"pad": "x" * (16 * MB)}}, "metadata"),
        ({"metadata": {str(i): i for i in range(100_000)}}, "metadata"),
        ({"metadata": nested(100_000)}, "metadata"),
        ({"wallet_id": "w\x00"}, "wallet_id"),
        ({"wallet_id": "w\u202e1"}, None),  # a bidi control is allowed? see below
        ({"wallet_id": "\ud800"}, "wallet_id"),
        ({"amount": Decimal("sNaN")}, "amount"),
        ({"amount": Decimal("-Infinity")}, "amount"),
        ({"amount": Decimal("-0")}, "amount"),
        ({"amount": Decimal("1E+1000000")}, "amount"),
        ({"amount": Decimal("1E-1000000")}, "amount"),
        ({"amount": "1" * 29}, "amount"),
        ({"amount": "0." + "0" * 18 + "1"}, "amount"),
        ({"amount": " 1"}, "amount"),
        ({"amount": "１"}, "amount"),  # a full-width digit
        ({"amount": 10**40}, "amount"),
        ({"amount": -(2**64)}, "amount"),
        ({"occurred_at": datetime(2026, 1, 1, tzinfo=timezone(timedelta(hours=23)))}, None),
        ({"occurred_at": datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=1)))}, "occurred_at"),
    ],
)
def test_huge_and_strange_values_are_refused_cleanly(
    led: walletlog.Ledger, over: dict[str, Any], field: str | None
) -> None:
    if field is None:
        # Valid, however odd: stored once, replayed as a duplicate.
        assert led.ingest(**event(**over)).created
        assert led.ingest(**event(**over)).duplicate
        return
    with pytest.raises(walletlog.ValidationError) as e:
        led.ingest(**event(**over))
    assert e.value.field == field, e.value
    assert len(str(e.value)) < 1000, "messages stay short, whatever the input"
    assert led.changes_since() == [] and led.audit_log() == []


def test_a_hostile_batch_stores_nothing_and_names_the_item(led: walletlog.Ledger) -> None:
    items = [event(i) for i in range(50)]
    items[37] = event(37, metadata={"pad": "x" * MB})
    with pytest.raises(walletlog.ValidationError) as e:
        led.ingest_many(items)
    assert (e.value.index, e.value.field) == (37, "metadata")
    with pytest.raises(walletlog.ValidationError) as e:
        led.ingest_many([event(i) for i in range(20_000)])
    assert e.value.field in ("events", "batch")
    with pytest.raises(TypeError):
        led.ingest_many("not a list")  # type: ignore[arg-type]
    assert led.changes_since() == []


def test_hostile_queries_and_webhooks(led: walletlog.Ledger) -> None:
    led.ingest(**event())
    for bad in [{"limit": 0}, {"limit": 10**30}, {"cursor": "x" * MB}, {"order": "up"}]:
        with pytest.raises((walletlog.ValidationError, OverflowError, TypeError)):
            led.list("w1", **bad)
    with pytest.raises(walletlog.ValidationError):
        led.list("w1", since=datetime(2026, 1, 1))
    with pytest.raises(walletlog.ValidationError):
        led.balance("w1", as_of=datetime(2026, 1, 1))
    with pytest.raises(TypeError):
        led.ingest_webhook("stripe", {"h": 1}, b"{}")  # type: ignore[dict-item]
    with pytest.raises(TypeError):
        led.ingest_webhook("stripe", {}, "not bytes")  # type: ignore[arg-type]
    with pytest.raises(walletlog.PluginError):
        led.ingest_webhook("stripe", {}, b"\x00" * (2 * MB))
    with pytest.raises(walletlog.PluginError):
        led.install_plugin(b"\x00asm" + b"\xff" * MB)
    # Still healthy.
    assert led.ingest(**event(2)).created
    assert led.verify_audit().ok
    assert sys.getrefcount(led) > 0
