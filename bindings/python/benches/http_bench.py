"""HTTP figures for `cargo xtask bench`, merged into the figures of the same run.

uvicorn serves `http_app.py` on 127.0.0.1 (one worker process); wrk, a
load generator in C that costs the server little CPU, keeps 64 connections
busy with pre-signed, distinct requests. Measured in interleaved rounds:

- `http_ingest_c64_eps`, `http_ingest_c64_p99_ms`: `POST .../events/ingest`
  through walletlog's router, durability full, every request a new event;
- `http_noop_c64_eps`, `http_noop_c64_p99_ms`: a route with the same
  authentication that stores nothing: the framework's ceiling here;
- with WALLETLOG_BENCH_PG set (a libpq URI), `http_seed_stack_c64_eps`
  and `_p99_ms`: the seed's stack (`seed_http_app.py`: FastAPI, the
  SQLAlchemy ORM on that PostgreSQL server, one commit per request).

Usage: python http_bench.py FIGURES_JSON  (prints the merged JSON object)
Needs wrk on PATH (installed by `cargo xtask bench`), and for the seed
stack sqlalchemy and psycopg.
"""

from __future__ import annotations

import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import walletlog

HERE = Path(__file__).resolve().parent
SECRET = "http-bench-secret-0123456789"
CONNECTIONS = 64
SECONDS = 8
ROUNDS = int(os.environ.get("WL_ROUNDS", "3"))
REQUESTS = 60_000

WRK_SCRIPT = """
local reqs = {}
local i = 0
init = function(args)
  for line in io.lines(args[1]) do
    local path, ts, sig, body = line:match("([^\\t]*)\\t([^\\t]*)\\t([^\\t]*)\\t(.*)")
    reqs[#reqs + 1] = wrk.format("POST", path, {
      ["X-Key-Id"] = "bench", ["X-Timestamp"] = ts, ["X-Signature"] = sig,
      ["Content-Type"] = "application/json"}, body)
  end
end
request = function()
  i = i + 1
  if i > #reqs then i = 1 end
  return reqs[i]
end
done = function(summary, latency, requests)
  io.write(string.format(
    "WRK {\\"requests\\": %d, \\"duration_us\\": %d, \\"non2xx\\": %d, \\"errors\\": %d, " ..
    "\\"p50_us\\": %d, \\"p99_us\\": %d}\\n",
    summary.requests, summary.duration, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def requests_file(path: Path, route: str, run: str, start: int) -> None:
    """Distinct signed requests: one new event each."""
    t = int(time.time())
    with path.open("w") as f:
        for i in range(start, start + REQUESTS):
            target = f"{route}/wallet_{i % 100}/events/ingest"
            body = json.dumps(
                {
                    "provider": "stripe",
                    "event_type": "deposit",
                    "amount": f"{i % 1000 + 1}.{i % 100:02}",
                    "currency": "USD",
                    "occurred_at": f"2026-01-01T{(i // 3600) % 24:02}:{(i // 60) % 60:02}:"
                    f"{i % 60:02}Z",
                    "provider_event_id": f"evt_http_{run}_{i}",
                },
                separators=(",", ":"),
            )
            sig = walletlog.sign_request(SECRET, "POST", target, body.encode(), t)
            f.write(f"{target}\t{t}\t{sig}\t{body}\n")


def wrk(base: str, script: Path, reqs: Path, seconds: int) -> dict:
    out = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{CONNECTIONS}",
            f"-d{seconds}s",
            "--timeout",
            "10s",
            "-s",
            str(script),
            base,
            "--",
            str(reqs),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    line = next(x for x in out.stdout.splitlines() if x.startswith("WRK "))
    return json.loads(line[4:])


def round_of(app: str, route: str, work: Path, script: Path, n: int) -> dict:
    """One server of `app`, a warm-up, then one measured run of `route`."""
    port = free_port()
    db = work / f"http_{n}.db"
    env = {
        **os.environ,
        "WALLETLOG_BENCH_DB": str(db),
        "WALLETLOG_BENCH_SECRET": SECRET,
        "WALLETLOG_BENCH_SCHEMA": f"seed_http_{os.getpid()}_{n}",
    }
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            app,
            "--app-dir",
            str(HERE),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        env=env,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 30
        while True:
            try:
                urllib.request.urlopen(f"{base}/healthz", timeout=1).read()
                break
            except OSError:
                if time.time() > deadline or server.poll() is not None:
                    raise RuntimeError("uvicorn did not start") from None
                time.sleep(0.1)
        warm = work / f"warm_{n}.txt"
        measured = work / f"run_{n}.txt"
        requests_file(warm, route, f"{n}w", 0)
        requests_file(measured, route, f"{n}m", 0)
        wrk(base, script, warm, 2)
        result = wrk(base, script, measured, SECONDS)
        if result["requests"] >= REQUESTS:
            raise RuntimeError("the run wrapped around its requests; raise REQUESTS")
        if result["non2xx"] or result["errors"]:
            raise RuntimeError(f"{route}: failed requests in the run: {result}")
        if app == "http_app:app" and route.endswith("wallets"):
            stored = walletlog.Ledger(db).changes_since(0, 1)
            assert stored, "the ingest run stored events"
        return result
    finally:
        server.terminate()
        server.wait(timeout=30)


def main() -> None:
    figures = json.loads(Path(sys.argv[1]).read_text())
    with tempfile.TemporaryDirectory(dir=os.environ.get("WALLETLOG_BENCH_DIR")) as tmp:
        work = Path(tmp)
        script = work / "signed.lua"
        script.write_text(WRK_SCRIPT)
        targets = [
            ("noop", "http_app:app", "/bench/noop"),
            ("ingest", "http_app:app", "/api/v1/wallets"),
        ]
        if os.environ.get("WALLETLOG_BENCH_PG"):
            targets.append(("seed_stack", "seed_http_app:app", "/api/v1/wallets"))
        runs: dict[str, list[dict]] = {name: [] for name, _, _ in targets}
        n = 0
        for _ in range(ROUNDS):
            for name, app, route in targets:
                n += 1
                r = round_of(app, route, work, script, n)
                runs[name].append(r)
                eps = r["requests"] / (r["duration_us"] / 1e6)
                p99 = r["p99_us"] / 1000
                print(f"http {name}: {eps:,.0f}/s, p99 {p99:.1f} ms", file=sys.stderr)
    for name, rs in runs.items():
        eps = [r["requests"] / (r["duration_us"] / 1e6) for r in rs]
        p99 = [r["p99_us"] / 1000 for r in rs]
        figures[f"http_{name}_c64_eps"] = round(statistics.median(eps))
        figures[f"http_{name}_c64_p99_ms"] = round(statistics.median(p99), 1)
    figures["ratio_http_ingest_vs_noop"] = round(
        figures["http_ingest_c64_eps"] / figures["http_noop_c64_eps"], 2
    )
    if "http_seed_stack_c64_eps" in figures:
        figures["ratio_http_ingest_vs_seed_stack"] = round(
            figures["http_ingest_c64_eps"] / figures["http_seed_stack_c64_eps"], 1
        )
    print(json.dumps(figures, indent=2, sort_keys=True))


if __name__ == "__main__":
    main()
