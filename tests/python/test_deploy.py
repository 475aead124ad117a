"""The deployment docs/http.md shows, run for real: gunicorn with two
uvicorn workers and --preload, so the ledger is opened in the master and
inherited by the forked workers, on a SQLite file and a PostgreSQL schema,
over HTTP on 127.0.0.1."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx

import walletlog
from conftest import plugin

SECRET = b"deploy-secret-0123456789"

SERVICE = textwrap.dedent(
    """
    import os
    import walletlog, walletlog.fastapi

    # Opened once, in gunicorn's master (--preload); the workers inherit it.
    ledger = walletlog.Ledger(os.environ["WALLETLOG_DB"])
    ledger.install_plugin(os.environ["STRIPE_PLUGIN"])
    ledger.set_webhook_secret("stripe", "whsec_deploy")
    app = walletlog.fastapi.create_app(
        ledger, {"k": walletlog.ApiKey(b"deploy-secret-0123456789")}
    )

    @app.get("/pid")
    async def pid() -> dict:
        return {"pid": os.getpid(), "plugin": ledger.plugin("stripe") is not None}
    """
)


def test_gunicorn_workers_share_a_ledger_opened_before_the_fork(db: str, tmp_path: Path) -> None:
    (tmp_path / "svc.py").write_text(SERVICE)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("gunicorn")),
            "svc:app",
            "-k",
            "uvicorn.workers.UvicornWorker",
            "-w",
            "2",
            "--preload",
            "-b",
            f"127.0.0.1:{port}",
            "--chdir",
            str(tmp_path),
            "--log-level",
            "warning",
        ],
        env={**os.environ, "WALLETLOG_DB": db, "STRIPE_PLUGIN": str(plugin("stripe"))},
    )
    base = f"http://127.0.0.1:{port}"
    try:
        http = httpx.Client(base_url=base, timeout=30)
        deadline = time.time() + 60
        while True:
            try:
                http.get("/healthz")
                break
            except httpx.TransportError:
                assert server.poll() is None and time.time() < deadline, "gunicorn did not start"
                time.sleep(0.2)
        pids: set[int] = set()
        statuses = []
        for i in range(60):
            body = json.dumps(
                {
                    "provider": "stripe",
                    "event_type": "deposit",
                    "amount": "1.50",
                    "currency": "USD",
                    "occurred_at": "2026-01-01T00:00:00Z",
                    "provider_event_id": f"evt_deploy_{i}",
                }
            ).encode()
            target = "/api/v1/wallets/w1/events/ingest"
            t = int(time.time())
            headers = {
                "X-Key-Id": "k",
                "X-Timestamp": str(t),
                "X-Signature": walletlog.sign_request(SECRET, "POST", target, body, t),
            }
            # A new connection each time, so that both workers answer.
            with httpx.Client(base_url=base, timeout=30) as one:
                statuses.append(one.post(target, content=body, headers=headers).status_code)
                seen = one.get("/pid").json()
            assert seen["plugin"], "the worker's ledger has the master's plugin"
            pids.add(seen["pid"])
        assert statuses == [201] * 60
        # Forked workers answered (which of the two takes a connection is
        # the kernel's choice), never the master that opened the ledger.
        assert pids and server.pid not in pids
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
    with walletlog.Ledger(db) as led:
        assert len(led.changes_since(0, 1000)) == 60
        assert led.balance("w1")["USD"].available == 90
        assert led.verify_audit().ok
