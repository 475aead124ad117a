"""What new users hit, tried as they would: every refusal is a typed
walletlog error that names the field, and the messages say how to fix it."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

import pytest

import walletlog
from conftest import event


def test_an_event_without_a_key_is_refused(led: walletlog.Ledger) -> None:
    keyless = event(provider_event_id=None)
    with pytest.raises(walletlog.ValidationError) as e:
        led.ingest(**keyless)
    for key in ("event_id", "provider_event_id", "idempotency_key"):
        assert key in e.value.message
    with pytest.raises(walletlog.ValidationError) as many:
        led.ingest_many([event(), keyless])
    assert many.value.index == 1
    assert led.changes_since() == [] and led.audit_log() == []
    assert led.ingest(**keyless, idempotency_key="order-17").created


@pytest.mark.parametrize("amount", [1.5, True, False])
def test_a_float_or_bool_amount_is_both_a_type_error_and_a_validation_error(
    led: walletlog.Ledger, amount: object
) -> None:
    with pytest.raises(walletlog.ValidationError) as e:
        led.ingest(**event(amount=amount))
    assert isinstance(e.value, TypeError) and isinstance(e.value, walletlog.InvalidTypeError)
    assert e.value.field == "amount"
    said_float = "float" in e.value.message
    assert said_float == (type(amount) is float), e.value.message
    assert led.changes_since() == []


def test_messages_say_how_to_fix_the_input(led: walletlog.Ledger) -> None:
    with pytest.raises(walletlog.ValidationError) as negative:
        led.ingest(**event(amount="-5"))
    assert "greater than 0" in negative.value.message
    assert "event type gives the direction" in negative.value.message
    with pytest.raises(walletlog.ValidationError) as naive:
        led.ingest(**event(occurred_at="2026-01-02T03:04:05"))
    assert naive.value.field == "occurred_at"
    assert 'add "Z"' in naive.value.message and "premature" not in naive.value.message
    with pytest.raises(walletlog.ValidationError) as meta:
        led.ingest(**event(metadata={1: "x"}))
    assert meta.value.message.count("invalid metadata") == 1, meta.value.message
    assert led.changes_since() == []


def test_list_refuses_a_bogus_event_type_with_a_validation_error(
    led: walletlog.Ledger,
) -> None:
    with pytest.raises(walletlog.ValidationError) as e:
        led.list("w1", event_types=["bogus"])
    assert e.value.field == "event_types"  # the parameter given
    with pytest.raises(walletlog.ValidationError) as limit:
        led.list("w1", limit=0)
    assert limit.value.field == "limit"


def test_times_accept_the_same_types_everywhere(led: walletlog.Ledger) -> None:
    led.ingest(**event(occurred_at="2026-01-01T00:00:00Z", provider_event_id="a"))
    led.ingest(**event(occurred_at="2026-01-03T00:00:00+01:00", provider_event_id="b"))
    as_text = led.list("w1", since="2026-01-02T00:00:00Z", until="2026-01-04T00:00:00Z")
    as_dt = led.list(
        "w1",
        since=datetime(2026, 1, 2, tzinfo=timezone.utc),
        until=datetime(2026, 1, 4, tzinfo=timezone.utc),
    )
    assert [e.provider_event_id for e in as_text.events] == ["b"]
    assert as_text.events == as_dt.events
    assert led.balance("w1", as_of="2026-01-01T12:00:00Z")["USD"].event_count == 1
    with pytest.raises(walletlog.ValidationError) as naive:
        led.balance("w1", as_of="2026-01-01T12:00:00")
    assert naive.value.field == "as_of" and 'add "Z"' in naive.value.message
    with pytest.raises(walletlog.ValidationError) as naive_dt:
        led.list("w1", since=datetime(2026, 1, 1))
    assert naive_dt.value.field == "since"
    with pytest.raises(walletlog.InvalidTypeError):
        led.balance("w1", as_of=12345)  # type: ignore[arg-type]


def test_a_conflict_names_its_key_fields_and_stored_event(led: walletlog.Ledger) -> None:
    first = led.ingest(**event())
    with pytest.raises(walletlog.ConflictError) as e:
        led.ingest(**event(amount=Decimal("99"), currency="EUR"))
    err = e.value
    assert err.key == err.field == "provider_event_id"
    assert err.fields == ("amount", "currency")
    assert err.existing_event_id == str(first.event.event_id)
    assert err.code == "different_fields"
    assert err.reason is None and err.index is None


def test_every_error_has_the_same_attributes(led: walletlog.Ledger, tmp_path) -> None:
    errors: list[walletlog.WalletLogError] = []
    for call in (
        lambda: led.ingest(**event(amount="0")),
        lambda: led.list("w1", cursor="garbage"),
        lambda: walletlog.Ledger(tmp_path / "x.db", durability="fast"),  # type: ignore[arg-type]
    ):
        with pytest.raises(walletlog.WalletLogError) as e:
            call()
        errors.append(e.value)
    led.close()
    with pytest.raises(walletlog.StorageError) as closed:
        led.balance("w1")
    errors.append(closed.value)
    assert closed.value.code == "closed"
    names = ("message", "field", "reason", "index", "code", "key", "fields", "existing_event_id")
    for err in errors:
        for name in names:
            assert hasattr(err, name), (err, name)
    assert [err.field for err in errors] == ["amount", "cursor", "durability", None]


def test_audit_reports_name_problems_stably_and_records_carry_prev_hash(
    led: walletlog.Ledger,
) -> None:
    led.ingest(**event(provider_event_id="a"))
    led.ingest(**event(provider_event_id="b"))
    records = led.audit_log()
    assert records[0].prev_hash == "00" * 32
    assert records[1].prev_hash == records[0].hash
    report = led.verify_audit()
    assert report.ok and report.problem is None


def test_an_empty_webhook_secret_is_refused_not_a_key_anybody_can_sign_with(
    led: walletlog.Ledger,
) -> None:
    import hashlib
    import hmac
    import json
    import time

    from conftest import plugin

    led.install_plugin(plugin("stripe"))
    # os.environ.get("STRIPE_WEBHOOK_SECRET", "") with the variable unset:
    with pytest.raises(walletlog.ValidationError) as e:
        led.set_webhook_secret("stripe", "")
    assert e.value.field == "secret"
    body = json.dumps(
        {
            "id": "evt_forged",
            "object": "event",
            "type": "charge.succeeded",
            "created": 1767225600,
            "data": {"object": {"id": "ch_forged", "object": "charge", "amount": 100}},
        }
    ).encode()
    t = int(time.time())
    forged = hmac.new(b"", f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    with pytest.raises(walletlog.SignatureError) as refused:
        led.ingest_webhook("stripe", {"Stripe-Signature": f"t={t},v1={forged}"}, body)
    assert refused.value.code == "no_secret"
    assert led.changes_since() == []


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda led: led.get(123), "event_id"),
        (lambda led: led.get_by_provider_event_id(None, "x"), "provider"),
        (lambda led: led.get_by_idempotency_key(5), "idempotency_key"),
        (lambda led: led.allow_unsigned(5), "provider"),
        (lambda led: led.set_webhook_secret("stripe", b"x"), "secret"),
        (lambda led: led.ingest_webhook("stripe", {"a": 1}, b"{}"), "headers"),
        (lambda led: led.ingest_webhook("stripe", 5, b"{}"), "headers"),
        (lambda led: led.ingest_webhook("stripe", {}, "{}"), "body"),
        (lambda led: led.ingest_webhook("stripe", {}, b"{}", url=5), "url"),
        (lambda led: led.changes_since("x"), "sequence"),
        (lambda led: led.audit_log("x"), "sequence"),
        (lambda led: led.ingest_many(5), "events"),
        (lambda led: led.ingest_many([5]), "event"),
        (lambda led: led.install_plugin(123), "plugin"),
        (lambda led: led.list("w1", event_types=[5]), "event_types"),
    ],
)
def test_a_wrong_type_is_an_invalid_type_error_naming_the_parameter(
    led: walletlog.Ledger, call: object, field: str
) -> None:
    with pytest.raises(walletlog.InvalidTypeError) as e:
        call(led)  # type: ignore[operator]
    assert isinstance(e.value, TypeError) and isinstance(e.value, walletlog.ValidationError)
    assert e.value.field == field, e.value.message


def test_bad_values_of_the_reading_calls_name_the_parameter(led: walletlog.Ledger) -> None:
    with pytest.raises(walletlog.ValidationError) as e:
        led.changes_since(-1)
    assert e.value.field == "sequence" and "negative" in e.value.message
    with pytest.raises(walletlog.ValidationError) as unknown:
        led.ingest_many([{**event(), "amout": "1"}])
    assert (unknown.value.field, unknown.value.index) == ("amout", 0)
    with pytest.raises(walletlog.ValidationError) as missing:
        led.ingest_many([event(), {"wallet_id": "w1"}])
    assert (missing.value.field, missing.value.index) == ("provider", 1)
    assert "is required" in missing.value.message
    assert led.changes_since() == []


def test_options_in_seconds_are_refused_in_seconds() -> None:
    with pytest.raises(walletlog.ValidationError) as e:
        walletlog.Ledger(":memory:", group_max_wait=2)
    assert e.value.field == "group_max_wait"
    assert " us" not in e.value.message and "2 s" in e.value.message, e.value.message
    with pytest.raises(walletlog.InvalidTypeError) as key:
        walletlog.Ledger(":memory:", audit_key="00" * 32)  # type: ignore[arg-type]
    assert key.value.field == "audit_key"


def test_request_signing_refuses_what_would_make_a_signature_meaningless() -> None:
    sig = walletlog.sign_request(b"k", "GET", "/", b"", 1)
    for bad, field in [
        (lambda: walletlog.sign_request(b"", "GET", "/", b"", 1), "secret"),
        (lambda: walletlog.sign_request("", "GET", "/", b"", 1), "secret"),
        (lambda: walletlog.sign_request(b"k", "GET", "/", b"", -1), "timestamp"),
        (lambda: walletlog.sign_request(b"k", "GET", "/", b"", 2**70), "timestamp"),
        (lambda: walletlog.verify_request(b"", "GET", "/", b"", 1, sig, now=1), "secret"),
        (
            lambda: walletlog.verify_request(b"k", "GET", "/", b"", 1, sig, now=1, tolerance=-1),
            "tolerance",
        ),
    ]:
        with pytest.raises(walletlog.ValidationError) as e:
            bad()
        assert e.value.field == field, e.value.message
    # A sender's timestamp that no clock gives is the request's fault.
    for stamp, code in ((-1, "malformed"), (2**70, "timestamp_out_of_tolerance")):
        with pytest.raises(walletlog.SignatureError) as refused:
            walletlog.verify_request(b"k", "GET", "/", b"", stamp, sig, now=1)
        assert refused.value.code == code
        # The verifier's own mistakes come first, as in every face.
        with pytest.raises(walletlog.ValidationError) as now:
            walletlog.verify_request(b"k", "GET", "/", b"", stamp, sig, now=-1)
        assert now.value.field == "now"
        with pytest.raises(walletlog.ValidationError) as empty:
            walletlog.verify_request(b"", "GET", "/", b"", stamp, sig, now=1)
        assert empty.value.field == "secret"
    # An int is not a secret (bytes(5) would be five zero bytes).
    with pytest.raises(walletlog.InvalidTypeError) as t:
        walletlog.sign_request(5, "GET", "/", b"", 1)  # type: ignore[arg-type]
    assert t.value.field == "secret"
    assert walletlog.verify_request(b"k", "GET", "/", b"", 1, sig, now=1)
