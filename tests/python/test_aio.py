"""walletlog.aio: the same methods as coroutines, off the event loop, and
ledgers inherited over fork() (gunicorn --preload, multiprocessing)."""

from __future__ import annotations

import asyncio
import inspect
import subprocess
import sys
import textwrap
from decimal import Decimal
from pathlib import Path

import pytest

import walletlog
import walletlog.aio
from conftest import event, plugin, write_lock


def test_every_method_of_the_ledger_is_a_coroutine_of_the_async_one() -> None:
    public = {n for n in dir(walletlog.Ledger) if not n.startswith("_")}
    for name in public:
        method = getattr(walletlog.aio.Ledger, name, None)
        assert method is not None and inspect.iscoroutinefunction(method), name


def test_async_calls_answer_and_refuse_as_the_ledger_does(db: str) -> None:
    async def main() -> None:
        async with walletlog.aio.Ledger(db) as led:
            r = await led.ingest(**event(1))
            assert r.created
            assert (await led.ingest(**event(1))).matched_on == "provider_event_id"
            with pytest.raises(walletlog.ConflictError) as conflict:
                await led.ingest(**event(1, amount=Decimal("99")))
            assert conflict.value.fields == ("amount",)
            with pytest.raises(walletlog.ValidationError) as invalid:
                await led.ingest(**event(2, amount=1.5))
            assert invalid.value.field == "amount"
            many = await led.ingest_many([event(i) for i in range(3, 6)])
            assert all(m.created for m in many)
            page = await led.list("w1", limit=2)
            assert len(page.events) == 2 and page.next_cursor is not None
            assert (await led.balance("w1"))["USD"].event_count == 4
            assert (await led.get(r.event.event_id)) == r.event
            assert (await led.verify_audit()).ok
            assert "walletlog_ingestions_total" in await led.metrics()
            assert len(await led.changes_since()) == 4

    asyncio.run(main())


def test_the_loop_runs_while_a_call_waits_and_waiting_calls_share_a_commit(
    tmp_path: Path,
) -> None:
    path = tmp_path / "aio.db"

    async def main() -> None:
        async with walletlog.aio.Ledger(path, busy_timeout=10) as led:
            await led.ingest(**event(0))
            with write_lock(path):
                calls = [asyncio.ensure_future(led.ingest(**event(i))) for i in range(1, 33)]
                ticks = 0
                while ticks < 20:
                    await asyncio.sleep(0.01)
                    ticks += 1
                # The loop ticked 20 times while every call waited for the lock.
                assert not any(c.done() for c in calls)
            results = await asyncio.gather(*calls)
            assert all(r.created for r in results)
            commits = {r.event.created_at for r in results}
            assert len(commits) < len(results), "queued calls share commits"

    asyncio.run(main())


def test_a_closed_async_ledger_refuses_calls_and_waited_for_those_in_flight(
    tmp_path: Path,
) -> None:
    path = tmp_path / "closing.db"

    async def main() -> None:
        led = walletlog.aio.Ledger(path, busy_timeout=10)
        with write_lock(path):
            in_flight = asyncio.ensure_future(led.ingest(**event(1)))
            await asyncio.sleep(0.2)
            closing = asyncio.ensure_future(led.close())
            await asyncio.sleep(0.2)
            assert not closing.done(), "close waits for the call in flight"
        await closing
        assert (await in_flight).created
        with pytest.raises(walletlog.StorageError) as closed:
            await led.ingest(**event(2))
        assert closed.value.code == "closed"

    asyncio.run(main())
    with walletlog.Ledger(path) as led:
        assert [e.provider_event_id for e in led.changes_since()] == ["evt_1"]


def test_an_async_ledger_can_share_an_open_ledger() -> None:
    sync = walletlog.Ledger(":memory:")
    led = walletlog.aio.Ledger(sync)
    assert led.sync is sync
    with pytest.raises(TypeError):
        walletlog.aio.Ledger(sync, durability="normal")
    with pytest.raises(walletlog.ValidationError) as e:
        walletlog.aio.Ledger(sync, max_workers=0)
    assert e.value.field == "max_workers"
    asyncio.run(led.close())


FORK_SCRIPT = textwrap.dedent(
    """
    import asyncio, hashlib, hmac, json, os, sys, time
    import walletlog, walletlog.aio

    location, stripe, fixture = sys.argv[1:4]

    def ev(i):
        return dict(wallet_id="w1", provider="stripe", event_type="deposit", amount="1",
                    currency="USD", occurred_at="2026-01-01T00:00:00Z",
                    provider_event_id=f"evt_{i}")

    def delivery():
        charge = json.loads(open(fixture, "rb").read())
        # SYNTHETIC envelope around the published charge object.
        body = json.dumps({"id": "evt_fork", "object": "event", "account": "acct_fork",
                           "created": 1767225600, "type": "charge.succeeded",
                           "data": {"object": charge}}).encode()
        t = int(time.time())
        sig = hmac.new(b"whsec_fork", f"{t}.".encode() + body, hashlib.sha256).hexdigest()
        return {"Stripe-Signature": f"t={t},v1={sig}"}, body

    led = walletlog.Ledger(location)
    led.install_plugin(stripe)
    led.set_webhook_secret("stripe", "whsec_fork")
    aled = walletlog.aio.Ledger(led)
    led.ingest(**ev(0))
    pid = os.fork()
    if pid == 0:
        # The child: the inherited ledger opens itself again, plugins and secrets included.
        print("child", led.ingest(**ev(1)).created, flush=True)
        headers, body = delivery()
        print("child-webhook", len(led.ingest_webhook("stripe", headers, body)), flush=True)
        print("child-aio", asyncio.run(aled.ingest(**ev(2))).created, flush=True)
        # Falls off the end: the child's interpreter finalizes normally.
    else:
        _, status = os.waitpid(pid, 0)
        print("child-exit", status, flush=True)
        # The parent's connections were never closed by the child.
        print("parent", led.ingest(**ev(3)).created, len(led.changes_since()), flush=True)
        print("parent-aio", asyncio.run(aled.ingest(**ev(4))).created, flush=True)
        print("audit", led.verify_audit().ok, flush=True)
    """
)


def test_a_ledger_opened_before_a_fork_opens_itself_again_in_the_child(db: str) -> None:
    fixture = (
        Path(__file__).resolve().parents[1]
        / "fixtures/webhooks/stripe/object_charge.fixtures3.json"
    )
    out = subprocess.run(
        [sys.executable, "-c", FORK_SCRIPT, db, str(plugin("stripe")), str(fixture)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert "child True" in lines and "child-webhook 1" in lines and "child-aio True" in lines
    assert "child-exit 0" in lines
    # 0 and 3 from the parent, 1, 2 and the webhook's from the child.
    assert "parent True 5" in lines and "parent-aio True" in lines and "audit True" in lines


def test_an_in_memory_ledger_refuses_in_a_forked_child() -> None:
    script = textwrap.dedent(
        """
        import os, walletlog
        led = walletlog.Ledger(":memory:")
        pid = os.fork()
        if pid == 0:
            try:
                led.changes_since()
            except walletlog.StorageError as e:
                print("refused", e.code, "in-memory" in e.message, flush=True)
            os._exit(0)
        os.waitpid(pid, 0)
        print("parent", len(led.changes_since()), flush=True)
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["refused closed True", "parent 0"]
