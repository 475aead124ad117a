"""The wallet events HTTP API, as a service builds it on walletlog.

Every /api/v1/wallets route needs HMAC request authentication: headers
``X-Timestamp`` (unix seconds) and ``X-Signature`` =
``walletlog.sign_request(secret, METHOD, PATH, body, timestamp)``.
Webhooks are authenticated by their provider's own signature instead.

    POST /api/v1/wallets/{wallet_id}/events/ingest   (Idempotency-Key header)
    GET  /api/v1/wallets/{wallet_id}/events          (?limit=1..1000&cursor=...)
    GET  /api/v1/wallets/{wallet_id}/balance         (?as_of=RFC 3339)
    POST /api/v1/webhooks/{provider}

Run it:  WALLETLOG_API_SECRET=... uvicorn service:app --app-dir bindings/python/examples
"""

from __future__ import annotations

import os
from datetime import datetime
from typing import Any, Optional

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

import walletlog

MAX_BODY = 64 * 1024


def _error(status: int, error: str, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": error, "message": message, **extra}, status_code=status)


def _balance_json(b: walletlog.Balance) -> dict[str, Any]:
    return {
        "available": str(b.available),
        "held": str(b.held),
        "total": str(b.total),
        "event_count": b.event_count,
        "last_occurred_at": None if b.last_occurred_at is None else b.last_occurred_at.isoformat(),
    }


def create_app(ledger: walletlog.Ledger, api_secret: bytes) -> FastAPI:
    app = FastAPI(title="wallet events", version=walletlog.__version__)

    @app.exception_handler(walletlog.WalletLogError)
    async def walletlog_error(_: Request, e: walletlog.WalletLogError) -> JSONResponse:
        if isinstance(e, walletlog.ValidationError):
            return _error(422, "validation", e.message, field=e.field)
        if isinstance(e, walletlog.ConflictError):
            return _error(409, "conflict", e.message, key=e.key)
        if isinstance(e, walletlog.SignatureError):
            return _error(401, "signature", e.message)
        if isinstance(e, walletlog.PluginError):
            status = 404 if e.kind == "not_installed" else 422
            return _error(status, "plugin", e.message, kind=e.kind)
        return _error(503, "storage", "the ledger is unavailable")

    @app.middleware("http")
    async def authenticate(request: Request, call_next: Any) -> Any:
        if not request.url.path.startswith("/api/v1/wallets/"):
            return await call_next(request)
        body = await request.body()
        if len(body) > MAX_BODY:
            return _error(413, "too_large", f"bodies are at most {MAX_BODY} bytes")
        try:
            timestamp = int(request.headers.get("x-timestamp", ""))
            signature = request.headers["x-signature"]
        except (ValueError, KeyError):
            return _error(401, "signature", "X-Timestamp and X-Signature are required")
        try:
            walletlog.verify_request(
                api_secret, request.method, request.url.path, body, timestamp, signature
            )
        except walletlog.SignatureError as e:
            return _error(401, "signature", e.message)
        return await call_next(request)

    @app.post("/api/v1/wallets/{wallet_id}/events/ingest")
    async def ingest(wallet_id: str, request: Request) -> JSONResponse:
        try:
            payload = await request.json()
        except ValueError:
            return _error(422, "validation", "the body is not JSON", field="body")
        if not isinstance(payload, dict):
            return _error(422, "validation", "the body must be a JSON object", field="body")
        amount = payload.get("amount")
        if not isinstance(amount, str):
            return _error(
                422, "validation", 'amount must be a decimal string such as "12.34"', field="amount"
            )
        try:
            result = ledger.ingest(
                wallet_id=wallet_id,
                provider=payload.get("provider", ""),
                event_type=payload.get("event_type", ""),
                amount=amount,
                currency=payload.get("currency", ""),
                occurred_at=payload.get("occurred_at", ""),
                provider_event_id=payload.get("provider_event_id"),
                idempotency_key=request.headers.get("idempotency-key"),
                metadata=payload.get("metadata"),
                event_id=payload.get("event_id"),
            )
        except TypeError as e:
            return _error(422, "validation", str(e))
        body = {
            "created": result.created,
            "matched_on": result.matched_on,
            "event": result.event.to_dict(),
        }
        return JSONResponse(body, status_code=201 if result.created else 200)

    @app.get("/api/v1/wallets/{wallet_id}/events")
    async def history(
        wallet_id: str, limit: int = 100, cursor: Optional[str] = None
    ) -> JSONResponse:
        page = ledger.list(wallet_id, limit=limit, cursor=cursor)
        return JSONResponse(
            {"events": [e.to_dict() for e in page.events], "next_cursor": page.next_cursor}
        )

    @app.get("/api/v1/wallets/{wallet_id}/balance")
    async def balance(wallet_id: str, as_of: Optional[str] = None) -> JSONResponse:
        when = None
        if as_of is not None:
            try:
                when = datetime.fromisoformat(as_of.replace("Z", "+00:00"))
            except ValueError:
                return _error(422, "validation", f"{as_of!r} is not RFC 3339", field="as_of")
        balances = ledger.balance(wallet_id, as_of=when)
        return JSONResponse({c: _balance_json(b) for c, b in balances.items()})

    @app.post("/api/v1/webhooks/{provider}")
    async def webhook(provider: str, request: Request) -> JSONResponse:
        body = await request.body()
        results = ledger.ingest_webhook(
            provider, list(request.headers.items()), body, url=str(request.url)
        )
        return JSONResponse(
            {
                "results": [
                    {"created": r.created, "matched_on": r.matched_on, "event": r.event.to_dict()}
                    for r in results
                ]
            }
        )

    return app


def _app_from_environment() -> FastAPI:
    ledger = walletlog.Ledger(os.environ.get("WALLETLOG_DB", "walletlog.db"))
    for provider_plugin in filter(None, os.environ.get("WALLETLOG_PLUGINS", "").split(",")):
        info = ledger.install_plugin(provider_plugin)
        secret = os.environ.get(f"WALLETLOG_SECRET_{info.provider.upper().replace('-', '_')}")
        if secret:
            ledger.set_webhook_secret(info.provider, secret)
    return create_app(ledger, os.environ["WALLETLOG_API_SECRET"].encode())


if os.environ.get("WALLETLOG_API_SECRET"):
    app = _app_from_environment()
