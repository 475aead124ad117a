"""For scale: the seed's HTTP stack, as `http_bench.py` serves it. A
stand-in written here in the seed's style (its own code is not in this
repository): FastAPI with a synchronous route, an HMAC check by hand, the
SQLAlchemy ORM on PostgreSQL, a dedupe query and one commit per request.

Configured by the environment: WALLETLOG_BENCH_PG (a libpq URI of the
server), WALLETLOG_BENCH_SCHEMA, WALLETLOG_BENCH_SECRET.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import time
import uuid
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from seed_stack import Base, WalletTransactionEvent, sqlalchemy_url
from sqlalchemy import create_engine, select, text
from sqlalchemy.orm import Session

SECRET = os.environ["WALLETLOG_BENCH_SECRET"].encode()
SCHEMA = os.environ["WALLETLOG_BENCH_SCHEMA"]
engine = create_engine(
    sqlalchemy_url(os.environ["WALLETLOG_BENCH_PG"]),
    connect_args={"options": f"-csearch_path={SCHEMA}"},
    pool_size=20,
    max_overflow=0,
)
with engine.begin() as conn:
    conn.execute(text(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}"))
Base.metadata.create_all(engine)

app = FastAPI()


@app.post("/api/v1/wallets/{wallet_id}/events/ingest")
def ingest(wallet_id: str, payload: dict[str, Any], request: Request) -> Any:
    # The seed signed the path; the body is re-serialized as the seed did.
    raw = json.dumps(payload, separators=(",", ":")).encode()
    t = request.headers.get("x-timestamp", "0")
    text_ = f"POST\n{request.url.path}\n{t}\n{hashlib.sha256(raw).hexdigest()}"
    expected = hmac.new(SECRET, text_.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, request.headers.get("x-signature", "")):
        return JSONResponse({"error": "unauthorized"}, status_code=401)
    if abs(time.time() - int(t)) > 300:
        return JSONResponse({"error": "unauthorized"}, status_code=401)
    with Session(engine) as session:
        existing = session.scalars(
            select(WalletTransactionEvent).where(
                WalletTransactionEvent.provider == payload["provider"],
                WalletTransactionEvent.provider_event_id == payload["provider_event_id"],
            )
        ).first()
        if existing is not None:
            return JSONResponse({"created": False, "event_id": existing.event_id})
        row = WalletTransactionEvent(
            event_id=str(uuid.uuid4()),
            wallet_id=wallet_id,
            provider=payload["provider"],
            event_type=payload["event_type"],
            amount=Decimal(payload["amount"]),
            currency=payload["currency"],
            provider_event_id=payload["provider_event_id"],
            occurred_at=datetime.fromisoformat(payload["occurred_at"].replace("Z", "+00:00")),
            created_at=datetime.now(timezone.utc),
        )
        session.add(row)
        session.commit()
        return JSONResponse({"created": True, "event_id": row.event_id}, status_code=201)


@app.get("/healthz")
def healthz() -> Any:
    return {"status": "ok"}
