"""The example wallet events API over real HTTP: uvicorn on 127.0.0.1, an httpx client."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn

import walletlog
from conftest import FIXTURES, ROOT, plugin

sys.path.insert(0, str(ROOT / "bindings" / "python" / "examples"))
from service import create_app  # noqa: E402

SECRET = b"api-secret-for-tests"


class Client:
    """Signs every request as a service's client would."""

    def __init__(self, base: str) -> None:
        self.http = httpx.Client(base_url=base, timeout=10)

    def call(
        self, method: str, path: str, body: object = None, secret: bytes = SECRET, **headers: str
    ) -> httpx.Response:
        raw = b"" if body is None else json.dumps(body).encode()
        t = int(time.time())
        sig = walletlog.sign_request(secret, method, path.split("?")[0], raw, t)
        h = {
            "X-Timestamp": str(t),
            "X-Signature": sig,
            "Content-Type": "application/json",
            **headers,
        }
        return self.http.request(method, path, content=raw, headers=h)


@pytest.fixture
def api(tmp_path: Path) -> Iterator[tuple[Client, walletlog.Ledger]]:
    ledger = walletlog.Ledger(tmp_path / "service.db")
    ledger.install_plugin(plugin("stripe"))
    ledger.set_webhook_secret("stripe", "whsec_service")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(create_app(ledger, SECRET), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 10
    while not server.started:
        assert time.time() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    yield Client(f"http://127.0.0.1:{port}"), ledger
    server.should_exit = True
    thread.join(timeout=10)
    ledger.close()


EVENT = {
    "provider": "stripe",
    "event_type": "deposit",
    "amount": "12.30",
    "currency": "USD",
    "occurred_at": "2026-01-02T03:04:05Z",
    "provider_event_id": "evt_1",
    "metadata": {"order": "A-1"},
}
INGEST = "/api/v1/wallets/w1/events/ingest"


def test_requests_must_be_signed(api) -> None:
    client, ledger = api
    assert client.http.post(INGEST, json=EVENT).status_code == 401
    assert client.call("POST", INGEST, EVENT, secret=b"wrong").status_code == 401
    assert client.call("GET", "/api/v1/wallets/w1/events").status_code == 200
    stale = client.http.get(
        "/api/v1/wallets/w1/events", headers={"X-Timestamp": "1", "X-Signature": "00"}
    )
    assert stale.status_code == 401
    assert ledger.changes_since() == []


def test_ingest_is_idempotent_and_refuses_conflicts(api) -> None:
    client, ledger = api
    first = client.call("POST", INGEST, EVENT, **{"Idempotency-Key": "req-1"})
    assert first.status_code == 201, first.text
    created = first.json()["event"]
    assert created["amount"] == "12.3" and created["idempotency_key"] == "req-1"
    again = client.call("POST", INGEST, EVENT, **{"Idempotency-Key": "req-1"})
    assert again.status_code == 200
    assert again.json()["event"] == created and again.json()["matched_on"] == "provider_event_id"
    conflict = client.call("POST", INGEST, {**EVENT, "amount": "99"})
    assert conflict.status_code == 409 and conflict.json()["key"] == "provider_event_id"
    assert len(ledger.changes_since()) == 1


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"currency": "usd"}, "currency"),
        ({"amount": 12.3}, "amount"),
        ({"amount": "-1"}, "amount"),
        ({"occurred_at": "yesterday"}, "occurred_at"),
        ({"event_type": "gift"}, "event_type"),
    ],
)
def test_invalid_events_are_422(api, change: dict, field: str) -> None:
    client, ledger = api
    r = client.call("POST", INGEST, {**EVENT, **change})
    assert r.status_code == 422 and r.json()["field"] == field, r.text
    assert ledger.changes_since() == []


def test_history_pages_newest_first_and_limits(api) -> None:
    client, _ = api
    for i in range(5):
        body = {
            **EVENT,
            "provider_event_id": f"evt_{i}",
            "occurred_at": f"2026-01-0{i + 1}T00:00:00Z",
        }
        assert client.call("POST", INGEST, body).status_code == 201
    page = client.call("GET", "/api/v1/wallets/w1/events?limit=2").json()
    assert [e["provider_event_id"] for e in page["events"]] == ["evt_4", "evt_3"]
    rest = client.call(
        "GET", f"/api/v1/wallets/w1/events?limit=1000&cursor={page['next_cursor']}"
    ).json()
    assert [e["provider_event_id"] for e in rest["events"]] == ["evt_2", "evt_1", "evt_0"]
    assert rest["next_cursor"] is None
    for bad in ["limit=0", "limit=1001", "cursor=nope"]:
        assert client.call("GET", f"/api/v1/wallets/w1/events?{bad}").status_code == 422
    bal = client.call("GET", "/api/v1/wallets/w1/balance").json()
    assert bal["USD"]["available"] == "61.5" and bal["USD"]["event_count"] == 5
    past = client.call("GET", "/api/v1/wallets/w1/balance?as_of=2026-01-02T12:00:00Z").json()
    assert past["USD"]["event_count"] == 2


def test_webhooks_feed_the_ledger_through_the_plugin(api) -> None:
    client, ledger = api
    charge = json.loads((FIXTURES / "stripe" / "object_charge.fixtures3.json").read_bytes())
    # SYNTHETIC envelope around the published charge object.
    body = json.dumps(
        {
            "id": "evt_http",
            "object": "event",
            "account": "acct_http",
            "created": 1767225600,
            "type": "charge.succeeded",
            "data": {"object": charge},
        }
    ).encode()
    t = int(time.time())
    sig = hmac.new(b"whsec_service", f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    r = client.http.post(
        "/api/v1/webhooks/stripe", content=body, headers={"Stripe-Signature": f"t={t},v1={sig}"}
    )
    assert r.status_code == 200, r.text
    assert r.json()["results"][0]["created"] is True
    assert ledger.balance("acct_http")["USD"].available == 1
    bad = client.http.post(
        "/api/v1/webhooks/stripe",
        content=body,
        headers={"Stripe-Signature": f"t={t},v1={'0' * 64}"},
    )
    assert bad.status_code == 401
    assert client.http.post("/api/v1/webhooks/nobody", content=body).status_code == 404
