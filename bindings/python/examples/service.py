"""The wallet events HTTP API, served by walletlog's own router.

    WALLETLOG_API_KEYS='{"k1": "a-secret-of-16-bytes-or-more"}' \
    WALLETLOG_PLUGINS=target/plugins/stripe.wasm WALLETLOG_SECRET_STRIPE=whsec_... \
    uvicorn service:app --app-dir bindings/python/examples

Routes, request signing and errors: docs/http.md.
"""

from __future__ import annotations

import json
import os

import walletlog
import walletlog.fastapi

ledger = walletlog.aio.Ledger(os.environ.get("WALLETLOG_DB", "walletlog.db"))
for path in filter(None, os.environ.get("WALLETLOG_PLUGINS", "").split(",")):
    info = ledger.sync.install_plugin(path)
    secret = os.environ.get(f"WALLETLOG_SECRET_{info.provider.upper().replace('-', '_')}")
    if secret:
        ledger.sync.set_webhook_secret(info.provider, secret)
keys = {
    key_id: walletlog.ApiKey(secret)
    for key_id, secret in json.loads(os.environ.get("WALLETLOG_API_KEYS", "{}")).items()
}
app = walletlog.fastapi.create_app(ledger, keys)
