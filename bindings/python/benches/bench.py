"""Python figures for `cargo xtask bench`, merged into the core figures of the same run.

Usage: python bench.py CORE_JSON  (prints the merged JSON object)
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import walletlog

SINGLE = 5_000
BATCHES = 20
BATCH = 1_000
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

    def ratio(a: str, b: str) -> None:
        if a in figures and b in figures:
            figures[f"ratio_{a.removesuffix('_eps')}_vs_{b.removesuffix('_eps')}"] = round(
                figures[a] / figures[b], 2
            )

    ratio("py_ingest_eps", "ingest_single_normal_eps")
    ratio("py_ingest_many_eps", "ingest_batch1000_normal_eps")
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
