"""The app `http_bench.py` serves: walletlog's router on a SQLite file
(durability full), plus `POST /bench/noop`, a route with the router's own
authentication that stores nothing (the framework's ceiling).

Configured by the environment: WALLETLOG_BENCH_DB (the file),
WALLETLOG_BENCH_SECRET (the one key's secret, key id `bench`).
"""

from __future__ import annotations

import os
import sys
from typing import Any

from fastapi import Depends
from fastapi.responses import JSONResponse

import walletlog
import walletlog.fastapi

if os.environ.get("WL_SWITCH"):
    sys.setswitchinterval(float(os.environ["WL_SWITCH"]))

KEYS = {"bench": walletlog.ApiKey(os.environ["WALLETLOG_BENCH_SECRET"])}

ledger = walletlog.aio.Ledger(
    os.environ["WALLETLOG_BENCH_DB"],
    durability=os.environ.get("DURABILITY", "full"),
    max_workers=int(os.environ.get("WL_WORKERS", "64")),
)
app = walletlog.fastapi.create_app(ledger, KEYS)
may_ingest = walletlog.fastapi.Authenticator(KEYS).require("ingest")


@app.post("/bench/noop/{wallet_id}/events/ingest", dependencies=[Depends(may_ingest)])
async def noop(wallet_id: str) -> Any:
    return JSONResponse({"created": True}, status_code=201)
