"""Webhooks through the real plugins built by this repository, on the real fixture payloads."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from decimal import Decimal

import pytest

import walletlog
from conftest import FIXTURES, plugin


def stripe_headers(body: bytes, secret: str) -> dict[str, str]:
    t = int(time.time())
    sig = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return {"Stripe-Signature": f"t={t},v1={sig}"}


def stripe_event(kind: str, obj: dict) -> bytes:
    """SYNTHETIC: a Stripe v1 envelope around a published object fixture."""
    return json.dumps(
        {
            "id": "evt_py_1",
            "object": "event",
            "account": "acct_py",
            "created": 1767225600,
            "type": kind,
            "data": {"object": obj},
        }
    ).encode()


def test_stripe_webhook_is_ingested_once(led: walletlog.Ledger) -> None:
    info = led.install_plugin(plugin("stripe"))
    assert (info.provider, info.version, info.signature) == ("stripe", "2.0.1", "stripe-v1")
    led.set_webhook_secret("stripe", "whsec_py")
    charge = json.loads((FIXTURES / "stripe" / "object_charge.fixtures3.json").read_bytes())
    body = stripe_event("charge.succeeded", charge)
    [r] = led.ingest_webhook("stripe", stripe_headers(body, "whsec_py"), body)
    assert r.created and r.event.amount == Decimal("1") and r.event.wallet_id == "acct_py"
    [again] = led.ingest_webhook("stripe", stripe_headers(body, "whsec_py"), body)
    assert again.duplicate
    assert led.audit_log()[0].actor == "plugin:stripe@2.0.1"
    assert led.audit_log()[0].body_sha256 == hashlib.sha256(body).hexdigest()
    with pytest.raises(walletlog.SignatureError):
        led.ingest_webhook("stripe", stripe_headers(body, "wrong"), body)
    with pytest.raises(walletlog.PluginError) as e:
        led.ingest_webhook("adyen", {}, body)
    assert e.value.kind == "not_installed"


def test_paystack_fixture_with_its_own_scheme(led: walletlog.Ledger) -> None:
    led.install_plugin(plugin("paystack").read_bytes())
    led.set_webhook_secret("paystack", "sk_test_py")
    body = (FIXTURES / "paystack" / "charge.success.json").read_bytes()
    sig = hmac.new(b"sk_test_py", body, hashlib.sha512).hexdigest()
    [r] = led.ingest_webhook("paystack", [("x-paystack-signature", sig)], body)
    assert (r.event.amount, r.event.currency, r.event.wallet_id) == (
        Decimal("100"),
        "NGN",
        "CUS_qo38as2hpsgk2r0",
    )


@pytest.mark.parametrize(
    ("attack", "kind"),
    [
        ("loop", "out_of_fuel"),
        ("grow", "out_of_memory"),
        ("trap", "trap"),
        ("many", "output_too_large"),
    ],
)
def test_a_hostile_plugin_does_not_take_the_interpreter_down(
    led: walletlog.Ledger, attack: str, kind: str
) -> None:
    led.allow_unsigned("hostile")
    led.install_plugin(plugin("hostile"))
    with pytest.raises(walletlog.PluginError) as e:
        led.ingest_webhook("hostile", {}, attack.encode())
    assert e.value.kind == kind
    assert led.changes_since() == []
    [ok] = led.ingest_webhook("hostile", {}, b"ok")
    assert ok.created
    with pytest.raises(walletlog.PluginError) as refused:
        led.install_plugin(b"\x00asm\x01\x00\x00\x00")
    assert refused.value.kind == "refused"
