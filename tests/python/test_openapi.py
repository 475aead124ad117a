"""The OpenAPI schema walletlog.fastapi publishes is true: schemathesis
generates requests from it (signed, as a client signs them), sends them
over real HTTP to uvicorn on 127.0.0.1, and checks every answer against
the schema: no 5xx, no undocumented status, body or content type."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from test_http import serve, stop

import walletlog
import walletlog.fastapi
from conftest import plugin

ADMIN_SECRET = b"admin-secret-for-schemathesis"
KEYS = {"admin": walletlog.ApiKey(ADMIN_SECRET)}
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]

# The schema does not depend on the ledger behind it.
schema = schemathesis.openapi.from_dict(
    walletlog.fastapi.create_app(walletlog.Ledger(":memory:"), KEYS).openapi()
)


class Live:
    def __init__(self, base: str, ledger: walletlog.Ledger) -> None:
        self.base = base
        self.ledger = ledger
        self.session = requests.Session()
        self.statuses: dict[str, set[int]] = {}


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    path: Path = tmp_path_factory.mktemp("openapi") / "schema.db"
    ledger = walletlog.Ledger(path)
    ledger.install_plugin(plugin("stripe"))
    ledger.set_webhook_secret("stripe", "whsec_schemathesis")
    server, thread, base = serve(walletlog.fastapi.create_app(ledger, KEYS))
    yield Live(base, ledger)
    stop(server, thread)
    ledger.close()


@schema.parametrize()
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_the_published_schema_is_true(case: schemathesis.Case, live: Live) -> None:
    kwargs = case.as_transport_kwargs(base_url=live.base)
    prepared = requests.Request(
        method=kwargs["method"],
        url=kwargs["url"],
        headers=kwargs.get("headers"),
        params=kwargs.get("params"),
        json=kwargs.get("json"),
        data=kwargs.get("data"),
        cookies=kwargs.get("cookies"),
    ).prepare()
    body = prepared.body or b""
    if isinstance(body, str):
        body = body.encode()
    t = int(time.time())
    prepared.headers["X-Key-Id"] = "admin"
    prepared.headers["X-Timestamp"] = str(t)
    prepared.headers["X-Signature"] = walletlog.sign_request(
        ADMIN_SECRET, prepared.method or "GET", prepared.path_url, body, t
    )
    response = live.session.send(prepared, timeout=30)
    live.statuses.setdefault(case.operation.label, set()).add(response.status_code)
    case.validate_response(response, checks=CHECKS)


def test_the_generated_requests_reached_the_ledger(live: Live) -> None:
    """Runs after the schema test (same module, same server): signed, the
    generated requests got past authentication to the routes' own work."""
    seen = live.statuses
    assert len(seen) == 6, seen
    ingest = seen["POST /api/v1/wallets/{wallet_id}/events/ingest"]
    assert {201, 422} <= ingest, ingest
    assert 200 in seen["GET /api/v1/wallets/{wallet_id}/events"], seen
    assert 200 in seen["GET /api/v1/wallets/{wallet_id}/balance"], seen
    assert live.ledger.changes_since(), "some generated events were stored"
    assert live.ledger.verify_audit().ok
