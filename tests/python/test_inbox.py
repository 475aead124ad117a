"""The webhook inbox from Python: deliveries, dead letters and replay under
a fixed plugin, on SQLite and PostgreSQL, through the real plugins."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import uuid
from datetime import datetime, timezone
from decimal import Decimal

import pytest

import walletlog
from conftest import FIXTURES, plugin

SECRET = "acme_py_secret"


def acme(event_id: str, kind: str, cents: int, wallet: str = "w1") -> tuple[dict[str, str], bytes]:
    """An acme webhook (tests/replay-plugin), signed like the provider does."""
    body = json.dumps(
        {
            "id": event_id,
            "type": kind,
            "wallet": wallet,
            "amount": cents,
            "currency": "USD",
            "created": 1767225600,
        }
    ).encode()
    sig = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    return {"X-Acme-Signature": f"sha256={sig}"}, body


def install(led: walletlog.Ledger, version: str) -> None:
    info = led.install_plugin(plugin(f"acme-{version}"))
    assert (info.provider, info.signature) == ("acme", "hmac")
    led.set_webhook_secret("acme", SECRET)


def test_deliveries_are_kept_with_their_verdict(led: walletlog.Ledger) -> None:
    install(led, "v1")
    headers, body = acme("evt_1", "payment.succeeded", 1250)
    [paid] = led.ingest_webhook("acme", headers, body, url="https://hooks.test/acme")
    with pytest.raises(walletlog.PluginError) as refused:
        led.ingest_webhook("acme", *acme("evt_2", "payout.paid", 500))
    assert refused.value.code == "unsupported"
    assert led.ingest_webhook("acme", *acme("evt_3", "ping", 0)) == []

    page = led.inbox()
    assert isinstance(page, walletlog.InboxPage) and page.next_cursor is None
    ignored, unsupported, ingested = page.entries  # newest first
    assert [e.verdict for e in page.entries] == ["ignored", "unsupported", "ingested"]
    assert ingested.event_ids == [paid.event.event_id]
    assert isinstance(ingested.delivery_id, uuid.UUID)
    assert ingested.body_sha256 == hashlib.sha256(body).digest()
    assert ingested.plugin_version == "1.0.0" and ingested.attempts == 1
    assert ingested.reason is None and ingested.provider == "acme"
    assert ingested.received_at.tzinfo is not None
    assert ingested.received_at <= datetime.now(timezone.utc)
    assert unsupported.reason is not None and "payout.paid" in unsupported.reason
    assert unsupported.event_ids == [] and ignored.reason is None

    got_headers, got_body = led.inbox_delivery(ingested.delivery_id)
    assert got_body == body and got_headers == list(headers.items())
    # By name too, ignoring case; and equal to the dict that was sent.
    assert isinstance(got_headers, walletlog.Headers) and got_headers == headers
    [(name, value)] = headers.items()
    assert got_headers[name.upper()] == value and got_headers.get(name.title()) == value
    assert name.upper() in got_headers and "x-missing" not in got_headers
    assert got_headers.get_all(name) == [value] and got_headers.get("x-missing") is None
    with pytest.raises(KeyError):
        got_headers["x-missing"]
    with pytest.raises(KeyError):
        led.inbox_delivery(uuid.uuid4())
    with pytest.raises(walletlog.ValidationError) as bad:
        led.inbox_delivery("not-a-uuid")
    assert bad.value.field == "delivery_id"

    # The audit record of the ingestion names its delivery.
    [record] = led.audit_log()
    assert record.delivery_id == ingested.delivery_id
    assert record.body_sha256 == hashlib.sha256(body).hexdigest()


def test_filters_and_pages(led: walletlog.Ledger) -> None:
    install(led, "v1")
    for i in range(5):
        kind = "payout.paid" if i % 2 else "payment.succeeded"
        try:
            led.ingest_webhook("acme", *acme(f"evt_{i}", kind, 100 + i))
        except walletlog.PluginError:
            pass
    assert len(led.inbox(verdict="unsupported").entries) == 2
    assert len(led.inbox(verdict="ingested", provider="acme").entries) == 3
    assert led.inbox(provider="stripe").entries == []
    seen: list[uuid.UUID] = []
    cursor = None
    while True:
        page = led.inbox(limit=2, cursor=cursor, order="asc")
        seen += [e.delivery_id for e in page.entries]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 5
    assert led.inbox(until=datetime(2020, 1, 1, tzinfo=timezone.utc)).entries == []
    with pytest.raises(walletlog.ValidationError) as e:
        led.inbox(verdict="lost")
    assert e.value.field == "verdict"
    with pytest.raises(walletlog.ValidationError) as e:
        led.inbox(limit=0)
    assert e.value.field == "limit"
    with pytest.raises(walletlog.ValidationError):
        led.inbox(since=datetime(2026, 1, 1))  # naive


def test_a_fixed_plugin_replays_dead_letters_once(led: walletlog.Ledger) -> None:
    install(led, "v1")
    led.ingest_webhook("acme", *acme("evt_1", "payment.succeeded", 10_000))
    for i, cents in [(2, 2_500), (3, 1_000)]:
        with pytest.raises(walletlog.PluginError):
            led.ingest_webhook("acme", *acme(f"evt_{i}", "payout.paid", cents))
    assert led.balance("w1")["USD"].available == Decimal("100")

    install(led, "v2")
    report = led.replay(provider="acme", verdict="unsupported")
    assert isinstance(report, walletlog.ReplayReport)
    assert (report.replayed, report.created, report.duplicates, report.still_failing) == (
        2,
        2,
        0,
        0,
    )
    assert led.balance("w1")["USD"].available == Decimal("65")
    assert led.inbox(verdict="unsupported").entries == []

    ids = [e.delivery_id for e in led.inbox().entries]
    again = led.replay(ids)
    assert (again.replayed, again.created, again.duplicates, again.still_failing) == (3, 0, 3, 0)
    assert led.balance("w1")["USD"].available == Decimal("65")
    assert {r.actor for r in led.audit_log() if r.actor.startswith("replay:")} == {
        "replay:plugin:acme@2.0.0"
    }
    payout = next(e for e in led.inbox().entries if e.attempts == 3)
    assert payout.verdict == "ingested" and payout.plugin_version == "2.0.0"
    assert led.verify_audit().ok

    with pytest.raises(KeyError):
        led.replay([uuid.uuid4()])
    with pytest.raises(walletlog.ValidationError):
        led.replay(ids, verdict="ingested")
    with pytest.raises(walletlog.ValidationError):
        led.replay("not a list")  # type: ignore[arg-type]


def test_signatures_fail_closed(led: walletlog.Ledger) -> None:
    led.install_plugin(plugin("acme-v1"))
    led.allow_unsigned("acme")
    headers, body = acme("evt_1", "payment.succeeded", 9_000_000)
    with pytest.raises(walletlog.SignatureError) as e:
        led.ingest_webhook("acme", {}, body.replace(b"9000000", b"9000001"))
    assert e.value.code == "no_secret"
    assert "secret is missing" in str(e.value)
    assert led.inbox().entries == [] and led.audit_log() == []


def test_the_inbox_from_asyncio(db: str) -> None:
    async def main() -> None:
        led = walletlog.aio.Ledger(db)
        try:
            await led.install_plugin(plugin("acme-v1"))
            await led.set_webhook_secret("acme", SECRET)
            with pytest.raises(walletlog.PluginError):
                await led.ingest_webhook("acme", *acme("evt_2", "payout.paid", 500))
            page = await led.inbox(verdict="unsupported")
            [entry] = page.entries
            _, body = await led.inbox_delivery(entry.delivery_id)
            assert body is not None and b"payout.paid" in body
            report = await led.replay([entry.delivery_id])
            assert report.still_failing == 1
        finally:
            await led.close()

    asyncio.run(main())


def test_a_timeless_paystack_refund_is_dated_by_its_receipt(led: walletlog.Ledger) -> None:
    led.install_plugin(plugin("paystack"))
    led.set_webhook_secret("paystack", "sk_test_py")
    body = (FIXTURES / "paystack" / "refund.processed.json").read_bytes()
    sig = hmac.new(b"sk_test_py", body, hashlib.sha512).hexdigest()
    before = datetime.now(timezone.utc)
    [r] = led.ingest_webhook("paystack", {"x-paystack-signature": sig}, body)
    event = r.event
    assert event.occurred_at_estimated is True
    assert (event.event_type, event.amount, event.currency) == ("withdrawal", Decimal("50"), "NGN")
    [entry] = led.inbox().entries
    assert event.occurred_at == entry.received_at and event.occurred_at >= before
    assert event.to_dict()["occurred_at_estimated"] is True
    [again] = led.ingest_webhook("paystack", {"x-paystack-signature": sig}, body)
    assert again.duplicate and again.event == event
    assert led.inbox().entries[0].attempts == 2


def test_inbox_and_plugin_limits_are_options(db_file) -> None:
    with walletlog.Ledger(db_file, inbox_limits={"deliveries_max": 2, "prune_every": 1}) as led:
        install(led, "v1")
        for i in range(3):
            [r] = led.ingest_webhook("acme", *acme(f"evt_{i}", "payment.succeeded", 100 + i))
            assert r.created
        # Retention after every receipt keeps the newest two deliveries;
        # the events and their audit trail stay.
        assert [e.verdict for e in led.inbox().entries] == ["ingested", "ingested"]
        assert len(led.list("w1").events) == 3
        assert led.verify_audit().ok
    with walletlog.Ledger(db_file, plugin_limits={"request_bytes_max": 64}) as led:
        install(led, "v1")
        with pytest.raises(walletlog.PluginError) as e:
            led.ingest_webhook("acme", *acme("evt_9", "payment.succeeded", 5))
        assert e.value.code == "request_too_large"
        assert led.get_by_provider_event_id("acme", "evt_9") is None
        assert len(led.inbox().entries) == 2


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"inbox_limits": {"retention": 5}}, "inbox_limits"),
        ({"inbox_limits": {"deliveries_max": 0}}, "deliveries_max"),
        ({"inbox_limits": {"deliveries_max": -1}}, "deliveries_max"),
        ({"plugin_limits": {"events_max": 0}}, "events_max"),
        ({"plugin_limits": {"fuel": 5}}, "plugin_limits"),
        ({"plugin_limits": [("fuel_per_call", 5)]}, "plugin_limits"),
    ],
)
def test_bad_limits_name_their_field(db_file, options: dict, field: str) -> None:
    with pytest.raises(walletlog.ValidationError) as e:
        walletlog.Ledger(db_file, **options)
    assert e.value.field == field
    assert not db_file.exists()
