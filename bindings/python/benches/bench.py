"""Python figures for `cargo xtask bench`, merged into the core figures of the same run.

Usage: python bench.py CORE_JSON  (prints the merged JSON object)
"""

from __future__ import annotations

import json
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import walletlog

SINGLE = 5_000
BATCHES = 20
BATCH = 1_000
THREADS_EVENTS = 8_000
T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def fields(i: int) -> dict:
    """The same events as the Rust bench: 100 wallets, one second apart."""
    return {
        "wallet_id": f"wallet_{i % 100}",
        "provider": "stripe",
        "event_type": "fee" if i % 10 == 9 else "deposit",
        "amount": Decimal(f"{i % 1000 + 1}.{i % 100:02}"),
        "currency": "USD",
        "occurred_at": T0 + timedelta(seconds=i),
        "provider_event_id": f"evt_py_{i}",
    }


def threads_ingest(led: walletlog.Ledger, threads: int, total: int) -> tuple[float, float, float]:
    """Single `ingest` calls from `threads` threads sharing `led`: events per
    second, and the median and p99 latency of one call in microseconds."""
    per = total // threads
    latencies: list[float] = []
    lock = threading.Lock()

    def worker(t: int) -> None:
        events = [fields(10_000_000 + t * per + i) for i in range(per)]
        own = []
        for e in events:
            call = time.perf_counter()
            assert led.ingest(**e).created
            own.append(time.perf_counter() - call)
        with lock:
            latencies.extend(own)

    workers = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
    start = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    rate = round(per * threads / (time.perf_counter() - start))
    latencies.sort()

    def us(p: float) -> float:
        return round(latencies[round((len(latencies) - 1) * p)] * 1e6, 2)

    return rate, us(0.5), us(0.99)


def main() -> None:
    figures = json.loads(Path(sys.argv[1]).read_text())
    with tempfile.TemporaryDirectory() as d:
        with walletlog.Ledger(Path(d) / "single.db", durability="normal") as led:
            events = [fields(i) for i in range(SINGLE)]
            start = time.perf_counter()
            for e in events:
                led.ingest(**e)
            figures["py_ingest_eps"] = round(SINGLE / (time.perf_counter() - start))
        with walletlog.Ledger(Path(d) / "many.db", durability="normal") as led:
            batches = [[fields(b * BATCH + i) for i in range(BATCH)] for b in range(BATCHES)]
            start = time.perf_counter()
            for batch in batches:
                led.ingest_many(batch)
            figures["py_ingest_many_eps"] = round(BATCHES * BATCH / (time.perf_counter() - start))
        with walletlog.Ledger(Path(d) / "many_full.db") as led:
            start = time.perf_counter()
            for batch in batches:
                led.ingest_many(batch)
            elapsed = time.perf_counter() - start
            figures["py_ingest_many_full_eps"] = round(BATCHES * BATCH / elapsed)
        runs = [("py_ingest_threads1_full", 1, None), ("py_ingest_threads16_full", 16, None)]
        runs.append(("py_ingest_threads16_ungrouped_full", 16, 1))
        for name, threads, group in runs:
            with walletlog.Ledger(Path(d) / f"{name}.db", group_max_events=group) as led:
                rate, p50, p99 = threads_ingest(led, threads, THREADS_EVENTS)
            figures[f"{name}_eps"] = rate
            figures[f"{name}_p50_us"] = p50
            figures[f"{name}_p99_us"] = p99

    def ratio(a: str, b: str) -> None:
        if a in figures and b in figures:
            figures[f"ratio_{a.removesuffix('_eps')}_vs_{b.removesuffix('_eps')}"] = round(
                figures[a] / figures[b], 2
            )

    ratio("py_ingest_eps", "ingest_single_normal_eps")
    ratio("py_ingest_many_eps", "ingest_batch1000_normal_eps")
    ratio("py_ingest_threads16_full_eps", "py_ingest_many_full_eps")
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
