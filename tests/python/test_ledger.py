"""The whole Python API on a real SQLite file, as a service would use it."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

import walletlog
from conftest import event


def test_ingest_returns_typed_events(led: walletlog.Ledger) -> None:
    eid = uuid.uuid4()
    r = led.ingest(
        **event(metadata={"order": 7, "tags": ["a"]}), idempotency_key="k1", event_id=eid
    )
    assert r.created and not r.duplicate and r.matched_on is None
    e = r.event
    assert e.event_id == eid
    assert e.amount == Decimal("10") and isinstance(e.amount, Decimal)
    assert e.event_type is walletlog.EventType.DEPOSIT and e.event_type == "deposit"
    assert e.occurred_at == datetime(2026, 1, 1, tzinfo=timezone.utc)
    assert e.created_at.tzinfo is not None
    assert e.metadata == {"order": 7, "tags": ["a"]}
    assert e.sequence == 1
    assert e.to_dict()["amount"] == "10" and json.dumps(e.to_dict())
    with pytest.raises(AttributeError):
        e.amount = Decimal("1")  # type: ignore[misc]
    assert led.get(eid) == e
    assert led.get(str(eid)) == e
    assert led.get_by_provider_event_id("stripe", "evt_1") == e
    assert led.get_by_idempotency_key("k1") == e
    assert led.get(uuid.uuid4()) is None


def test_replays_are_duplicates_and_lies_are_conflicts(led: walletlog.Ledger) -> None:
    first = led.ingest(**event(amount=Decimal("12.3")))
    again = led.ingest(**event(amount="12.30"))
    assert again.duplicate and again.matched_on == "provider_event_id"
    assert again.event == first.event
    with pytest.raises(walletlog.ConflictError) as e:
        led.ingest(**event(amount=Decimal("99")))
    assert e.value.key == "provider_event_id"
    assert "amount" in str(e.value)
    assert isinstance(e.value, walletlog.WalletLogError)
    assert len(led.changes_since()) == 1
    assert [r.action for r in led.audit_log()] == ["created", "duplicate", "conflict"]


@pytest.mark.parametrize(
    ("over", "field"),
    [
        ({"amount": "0"}, "amount"),
        ({"amount": Decimal("-1")}, "amount"),
        ({"amount": Decimal("NaN")}, "amount"),
        ({"amount": Decimal("Infinity")}, "amount"),
        ({"amount": "1e5"}, "amount"),
        ({"currency": "usd"}, "currency"),
        ({"provider": "Stripe"}, "provider"),
        ({"wallet_id": ""}, "wallet_id"),
        ({"wallet_id": "x" * 129}, "wallet_id"),
        ({"event_type": "gift"}, "event_type"),
        ({"occurred_at": datetime(2026, 1, 1)}, "occurred_at"),
        ({"metadata": {1: "non-string key"}}, "metadata"),
        ({"metadata": {"x": float("nan")}}, "metadata"),
        ({"metadata": {"pad": "x" * 20000}}, "metadata"),
        ({"provider_event_id": ""}, "provider_event_id"),
        ({"event_id": "not-a-uuid"}, "event_id"),
    ],
)
def test_every_bad_input_is_a_validation_error_and_nothing_is_stored(
    led: walletlog.Ledger, over: dict, field: str
) -> None:
    with pytest.raises(walletlog.ValidationError) as e:
        led.ingest(**event(**over))
    assert e.value.field == field
    assert isinstance(e.value, ValueError)
    assert led.changes_since() == [] and led.audit_log() == []


@pytest.mark.parametrize("amount", [1.5, 0.1 + 0.2, True])
def test_a_float_is_never_an_amount(led: walletlog.Ledger, amount: object) -> None:
    with pytest.raises(TypeError, match="amount"):
        led.ingest(**event(amount=amount))
    assert led.changes_since() == []


def test_amounts_accept_decimal_int_and_str_exactly(led: walletlog.Ledger) -> None:
    led.ingest(**event(1, amount=Decimal("0.000000000000000001")))
    led.ingest(**event(2, amount=5))
    led.ingest(**event(3, amount="1E+2".replace("E+2", "00")))
    led.ingest(**event(4, amount=Decimal("1E+2")))
    b = led.balance("w1")["USD"]
    assert b.available == Decimal("205.000000000000000001")


def test_ingest_many_is_all_or_nothing(led: walletlog.Ledger) -> None:
    led.ingest(**event(0))
    with pytest.raises(walletlog.ConflictError) as e:
        led.ingest_many([event(1), event(2), event(0, amount="7")])
    assert e.value.index == 2
    with pytest.raises(walletlog.ValidationError) as v:
        led.ingest_many([event(5), event(6, currency="bad")])
    assert v.value.index == 1 and v.value.field == "currency"
    assert len(led.changes_since()) == 1
    results = led.ingest_many([event(1), event(2), event(1)])
    assert [r.created for r in results] == [True, True, False]


def test_history_pages_with_cursors_and_filters(led: walletlog.Ledger) -> None:
    t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
    led.ingest_many(
        [
            event(
                i,
                occurred_at=t0 + timedelta(minutes=i // 3),
                event_type="fee" if i % 4 == 0 else "deposit",
            )
            for i in range(30)
        ]
    )
    seen, cursor = [], None
    while True:
        page = led.list("w1", limit=7, cursor=cursor)
        seen += [e.sequence for e in page.events]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert sorted(seen) == list(range(1, 31)) and len(set(seen)) == 30
    assert led.list("w1", limit=3).events[0].occurred_at == t0 + timedelta(minutes=9)
    assert led.list("w1", order="asc", limit=1).events[0].sequence == 1
    fees = led.list("w1", event_types=[walletlog.EventType.FEE], limit=1000).events
    assert len(fees) == 8 and all(e.event_type == "fee" for e in fees)
    window = led.list(
        "w1", since=t0 + timedelta(minutes=2), until=t0 + timedelta(minutes=4), limit=1000
    )
    assert len(window.events) == 6
    assert led.list("w1", currency="EUR").events == []
    for bad in [{"limit": 0}, {"limit": 1001}, {"cursor": "garbage"}, {"order": "sideways"}]:
        with pytest.raises(walletlog.ValidationError):
            led.list("w1", **bad)
    foreign = led.list("w2", limit=1).next_cursor or led.list("w1", limit=1).next_cursor
    with pytest.raises(walletlog.ValidationError, match="different query"):
        led.list("w1", limit=1, cursor=foreign, currency="USD")


def test_balance_per_currency_and_as_of(led: walletlog.Ledger) -> None:
    t0 = datetime(2026, 3, 1, tzinfo=timezone.utc)
    led.ingest(**event(1, amount="100", occurred_at=t0))
    led.ingest(**event(2, event_type="hold", amount="30", occurred_at=t0 + timedelta(hours=2)))
    led.ingest(**event(3, amount="5", currency="EUR", occurred_at=t0 + timedelta(hours=5)))
    now = led.balance("w1")
    assert set(now) == {"EUR", "USD"}
    usd = now["USD"]
    assert (usd.available, usd.held, usd.total, usd.event_count) == (
        Decimal("70"),
        Decimal("30"),
        Decimal("100"),
        2,
    )
    past = led.balance("w1", as_of=t0 + timedelta(hours=1))
    assert set(past) == {"USD"} and past["USD"].held == 0
    with pytest.raises(walletlog.ValidationError):
        led.balance("w1", as_of=datetime(2026, 3, 1))
    assert led.balance("nobody") == {}


def test_audit_verifies_and_a_closed_ledger_refuses(db_file) -> None:
    db = db_file
    led = walletlog.Ledger(db)
    led.ingest(**event())
    report = led.verify_audit()
    assert report.ok and report.records_checked == 1 and report.events_checked == 1
    led.close()
    with pytest.raises(walletlog.StorageError, match="closed"):
        led.ingest(**event(2))
    import sqlite3

    raw = sqlite3.connect(db)
    raw.execute("UPDATE events SET amount = '1000000'")
    raw.commit()
    raw.close()
    with walletlog.Ledger(db) as again:
        report = again.verify_audit()
        assert not report.ok and report.first_bad_event_sequence == 1 and "altered" in report.reason


def test_audit_key_and_durability_options(tmp_path) -> None:
    path = tmp_path / "keyed.db"
    with walletlog.Ledger(path, durability="normal", audit_key=b"k" * 32) as led:
        led.ingest(**event())
    with pytest.raises(walletlog.StorageError, match="audit key"):
        walletlog.Ledger(path)
    with pytest.raises(walletlog.ValidationError):
        walletlog.Ledger(tmp_path / "x.db", durability="sometimes")
    (tmp_path / "junk.db").write_bytes(b"not a database" * 100)
    with pytest.raises(walletlog.StorageError):
        walletlog.Ledger(tmp_path / "junk.db")


@pytest.mark.parametrize(
    ("option", "value", "error"),
    [
        ("pool_size", -1, walletlog.ValidationError),
        ("group_max_events", -3, walletlog.ValidationError),
        ("busy_timeout", -1, walletlog.ValidationError),
        ("pool_timeout", -0.5, walletlog.ValidationError),
        ("busy_timeout", 10**7, walletlog.ValidationError),
        ("group_max_wait", 2.0, walletlog.ValidationError),
        ("busy_timeout", float("inf"), walletlog.ValidationError),
        ("group_max_wait", float("nan"), walletlog.ValidationError),
        ("pool_size", 2**64, walletlog.ValidationError),
        ("pool_size", 1.5, walletlog.InvalidTypeError),
        ("group_max_events", True, walletlog.InvalidTypeError),
    ],
)
def test_options_out_of_range_are_validation_errors_named_as_given(
    db_file, option: str, value: object, error: type
) -> None:
    with pytest.raises(error) as e:
        walletlog.Ledger(db_file, **{option: value})  # type: ignore[arg-type]
    assert e.value.field == option
    assert str(e.value).startswith(f"invalid {option}:")
    assert not db_file.exists()


def test_audit_log_reads_after_a_sequence(led: walletlog.Ledger) -> None:
    for i in range(3):
        led.ingest(**event(i))
    assert [r.sequence for r in led.audit_log(1, 10)] == [2, 3]
    assert [r.sequence for r in led.audit_log(sequence=2)] == [3]
    assert [r.sequence for r in led.audit_log(after=2)] == [3], "the earlier name"


def test_request_signing() -> None:
    sig = walletlog.sign_request(
        b"secret", "POST", "/api/v1/wallets/w1/events/ingest", b"{}", 1_767_225_600
    )
    assert walletlog.verify_request(
        "secret",
        "post",
        "/api/v1/wallets/w1/events/ingest",
        b"{}",
        1_767_225_600,
        sig,
        now=1_767_225_600,
    )
    with pytest.raises(walletlog.SignatureError):
        walletlog.verify_request(
            b"secret", "POST", "/other", b"{}", 1_767_225_600, sig, now=1_767_225_600
        )
    with pytest.raises(walletlog.SignatureError):
        walletlog.verify_request(
            b"secret", "POST", "/api/v1/wallets/w1/events/ingest", b"{}", 1_767_225_600, sig
        )
