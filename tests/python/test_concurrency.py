"""Threads and processes racing on one file, and a writer killed with SIGKILL."""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest

import walletlog
from conftest import event, write_lock

LOGICAL = 120


def _logical(i: int) -> dict:
    return event(
        i,
        wallet_id=f"w{i % 4}",
        amount=Decimal(i + 1),
        idempotency_key=f"k{i}" if i % 3 == 0 else None,
    )


def _ingest_all(path: str, seed: int) -> list[tuple[int, bool]]:
    order = list(range(LOGICAL))
    random.Random(seed).shuffle(order)
    with walletlog.Ledger(path) as led:
        return [(i, led.ingest(**_logical(i)).created) for i in order]


def _check(path, outcomes: list[tuple[int, bool]], callers: int) -> None:
    created = {i: 0 for i in range(LOGICAL)}
    for i, c in outcomes:
        created[i] += c
    assert set(created.values()) == {1}, "exactly one created per logical event"
    assert len(outcomes) == LOGICAL * callers
    with walletlog.Ledger(path) as led:
        assert len(led.changes_since(0, 10_000)) == LOGICAL
        assert len(led.audit_log(0, 10_000)) == LOGICAL * callers
        assert led.verify_audit().ok
        total = sum(led.balance(f"w{w}")["USD"].available for w in range(4))
        assert total == sum(Decimal(i + 1) for i in range(LOGICAL))


def test_sixteen_threads_share_one_ledger(db) -> None:
    with walletlog.Ledger(db) as led:

        def worker(seed: int) -> list[tuple[int, bool]]:
            order = list(range(LOGICAL))
            random.Random(seed).shuffle(order)
            return [(i, led.ingest(**_logical(i)).created) for i in order]

        with ThreadPoolExecutor(16) as pool:
            outcomes = [o for part in pool.map(worker, range(16)) for o in part]
    _check(db, outcomes, 16)


def test_threads_queued_behind_a_commit_share_the_next_one(db_file) -> None:
    """While another process holds the file's write lock, one thread leads
    and waits for it and the others queue (the GIL released while they
    wait); released, the queued calls commit as one group, and the
    conflicting one fails alone."""
    with walletlog.Ledger(db_file) as led:
        led.ingest(**event(0))
        with ThreadPoolExecutor(10) as pool:
            with write_lock(db_file):
                plug = pool.submit(led.ingest, **event(1))
                time.sleep(0.2)
                queued = [pool.submit(led.ingest, **event(i)) for i in range(2, 10)]
                conflicting = pool.submit(led.ingest, **event(0, amount=Decimal("999")))
                time.sleep(0.4)
                assert not plug.done(), "the first call waits for the lock"
            results = [f.result() for f in queued]
            with pytest.raises(walletlog.ConflictError) as refused:
                conflicting.result()
        assert refused.value.fields == ("amount",)
        assert all(r.created for r in results)
        assert len({r.event.created_at for r in results}) == 1, "one commit for the group"
        assert plug.result().event.created_at != results[0].event.created_at
        assert len(led.changes_since(0, 100)) == 10
        assert led.get_by_provider_event_id("stripe", "evt_0").amount == Decimal("10.00")
        assert [r.action for r in led.audit_log(0, 100)].count("conflict") == 1
        assert led.verify_audit().ok


def test_group_options_are_checked(db_file) -> None:
    with pytest.raises(walletlog.ValidationError) as e:
        walletlog.Ledger(db_file, group_max_events=0)
    assert e.value.field == "group_max_events"
    with pytest.raises(walletlog.ValidationError) as e:
        walletlog.Ledger(db_file, group_max_wait=-1)
    assert e.value.field == "group_max_wait"
    with pytest.raises(walletlog.ValidationError) as e:
        walletlog.Ledger(db_file, group_max_wait=2.0)
    assert e.value.field == "group_max_wait"
    assert "group_max_wait_us" not in str(e.value)
    assert not db_file.exists()
    with walletlog.Ledger(db_file, group_max_events=16, group_max_wait=0) as led:
        assert led.ingest(**event(1)).created


def test_four_processes_race_on_one_file(db) -> None:
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(4) as pool:
        parts = pool.starmap(_ingest_all, [(str(db), seed) for seed in range(4)])
    _check(db, [o for part in parts for o in part], 4)


def test_a_killed_writer_loses_no_acknowledged_event(db) -> None:
    script = textwrap.dedent(
        f"""
        import sys
        from datetime import datetime, timezone
        import walletlog
        led = walletlog.Ledger({str(db)!r})
        i = 0
        while True:
            at = datetime(2026, 1, 1, tzinfo=timezone.utc)
            led.ingest(wallet_id="w", provider="p", event_type="deposit", amount="1",
                       currency="USD", occurred_at=at, provider_event_id=f"e{{i}}")
            print(f"ACK e{{i}}", flush=True)
            i += 1
        """
    )
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    acked = []
    assert child.stdout is not None
    for line in child.stdout:
        acked.append(line.split()[1])
        if len(acked) == 50:
            break
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    with walletlog.Ledger(db) as led:
        for key in acked:
            assert led.get_by_provider_event_id("p", key) is not None, f"acknowledged {key} lost"
        assert led.verify_audit().ok


def test_the_gil_is_released_during_plugin_work(led: walletlog.Ledger) -> None:
    import threading

    from conftest import plugin

    led.allow_unsigned("hostile")
    led.install_plugin(plugin("hostile"))
    entered, done = threading.Event(), threading.Event()

    def burn() -> None:
        entered.set()
        try:
            # Spins in the sandbox until its 50M fuel runs out (~0.1 s).
            led.ingest_webhook("hostile", {}, b"loop")
        except walletlog.PluginError:
            pass
        finally:
            done.set()

    worker = threading.Thread(target=burn)
    worker.start()
    entered.wait()
    # Were the GIL held in native code, this loop could not run until the
    # call returned: only a handful of ticks would land before `done`.
    ticks = 0
    while not done.is_set():
        ticks += 1
    worker.join()
    assert ticks > 50_000, f"only {ticks} ticks: the GIL was held during the plugin call"
