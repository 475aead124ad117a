"""walletlog for asyncio: the methods of ``walletlog.Ledger`` as coroutines
that never block the event loop.

Each call runs on a bounded pool of threads of this ledger's own (the native
work releases the GIL there), so an fsync or a plugin call never stalls the
loop, and concurrent calls group-commit as threads do::

    led = walletlog.aio.Ledger("wallet.db")
    r = await led.ingest(wallet_id="w1", ...)
    page = await led.list("w1", limit=50)

The exceptions are ``walletlog.Ledger``'s. A call whose coroutine is
cancelled still runs to its end on its thread (an ingest is stored, or
not, exactly as if it had been awaited), so retry it with the same keys
to learn what happened: a retry is always safe.
"""

from __future__ import annotations

import asyncio
import functools
import os
import queue
import threading
import uuid
import weakref
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Callable, Optional, TypeVar, Union

from . import (
    AmountLike,
    AuditRecord,
    AuditReport,
    Balance,
    DatetimeLike,
    Event,
    EventType,
    Headers,
    InboxPage,
    IngestResult,
    Order,
    Page,
    PluginInfo,
    ReplayReport,
    _iterable,
)
from . import Ledger as SyncLedger
from .errors import StorageError, ValidationError

T = TypeVar("T")

# `Ledger.list` shadows the builtin inside the class.
_List = list

#: Threads per ledger, unless given: enough for 64 concurrent requests to
#: share group commits.
DEFAULT_MAX_WORKERS = 64


def _settle(future: asyncio.Future[Any], ok: bool, value: Any) -> None:
    if future.cancelled():
        return
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)


class _Pool:
    """At most ``max_workers`` threads, started as calls need them, that run
    calls and hand each answer to its coroutine's loop. Leaner than
    ``concurrent.futures`` on the loop's thread: one queue put per call,
    one ``call_soon_threadsafe`` per answer."""

    def __init__(self, max_workers: int) -> None:
        self._max = max_workers
        self._jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads: _List[threading.Thread] = []
        self._idle = 0
        self._closed = False

    def submit(
        self, loop: asyncio.AbstractEventLoop, future: asyncio.Future[Any], call: Callable[[], Any]
    ) -> None:
        with self._lock:
            if self._closed:
                future.set_exception(StorageError("the ledger is closed", code="closed"))
                return
            self._jobs.put((loop, future, call))
            if self._idle > 0:
                self._idle -= 1  # an idle thread is claimed for this call
            elif len(self._threads) < self._max:
                t = threading.Thread(target=self._work, name="walletlog-aio", daemon=True)
                self._threads.append(t)
                t.start()
            # else: every thread is busy; the call waits for the next free one

    def _work(self) -> None:
        jobs = self._jobs
        while True:
            job = jobs.get()
            if job is None:
                return
            loop, future, call = job
            try:
                answer, ok = call(), True
            except BaseException as e:  # handed to the awaiting coroutine
                answer, ok = e, False
            try:
                loop.call_soon_threadsafe(_settle, future, ok, answer)
            except RuntimeError:
                pass  # the loop closed: nobody awaits the answer
            del job, loop, future, call, answer
            with self._lock:
                self._idle += 1

    def shutdown(self) -> _List[threading.Thread]:
        """Refuses new calls; the threads end once the calls queued before
        have run. Returns them, to join."""
        with self._lock:
            self._closed = True
            threads, self._threads = self._threads, []
            for _ in threads:
                self._jobs.put(None)
        return threads


class Ledger:
    """An asyncio face over a ``walletlog.Ledger``: pass a location and the
    same keyword options, or an open ``walletlog.Ledger`` to share.
    ``max_workers`` bounds the threads that run its calls."""

    def __init__(
        self,
        location: Union[str, os.PathLike[str], SyncLedger],
        *,
        max_workers: int = DEFAULT_MAX_WORKERS,
        **options: Any,
    ) -> None:
        if isinstance(max_workers, bool) or not isinstance(max_workers, int) or max_workers < 1:
            raise ValidationError(
                "invalid max_workers: must be an int of at least 1",
                "max_workers",
                "must be an int of at least 1",
            )
        if isinstance(location, SyncLedger):
            if options:
                raise TypeError(
                    "options are given when the ledger is opened, not when it is shared"
                )
            self.sync = location
        else:
            self.sync = SyncLedger(location, **options)
        self._max_workers = max_workers
        self._pool = self._new_pool()
        _LIVE.add(self)

    def _new_pool(self) -> _Pool:
        return _Pool(self._max_workers)

    def _after_fork(self) -> None:
        # A forked child has none of the parent's threads: a pool that
        # thinks it has them would queue work forever.
        self._pool = self._new_pool()

    def _run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> asyncio.Future[T]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._pool.submit(loop, future, functools.partial(fn, *args, **kwargs))
        return future

    async def __aenter__(self) -> Ledger:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Refuses new calls, waits for the calls in flight, then closes the
        ledger; later calls raise ``StorageError``."""
        threads = self._pool.shutdown()

        def join() -> None:
            for t in threads:
                t.join()

        if threads:
            await asyncio.get_running_loop().run_in_executor(None, join)
        self.sync.close()

    async def ingest(
        self,
        *,
        wallet_id: str,
        provider: str,
        event_type: Union[EventType, str],
        amount: AmountLike,
        currency: str,
        occurred_at: DatetimeLike,
        provider_event_id: Optional[str] = None,
        idempotency_key: Optional[str] = None,
        metadata: Optional[Mapping[str, Any]] = None,
        event_id: Optional[Union[uuid.UUID, str]] = None,
    ) -> IngestResult:
        """Takes one event in exactly once. Retrying is always safe."""
        return await self._run(
            self.sync.ingest,
            wallet_id=wallet_id,
            provider=provider,
            event_type=event_type,
            amount=amount,
            currency=currency,
            occurred_at=occurred_at,
            provider_event_id=provider_event_id,
            idempotency_key=idempotency_key,
            metadata=metadata,
            event_id=event_id,
        )

    async def ingest_many(self, events: Iterable[Mapping[str, Any]]) -> _List[IngestResult]:
        # Read on the loop (an iterator may not cross threads); checked as
        # the sync ledger checks it, so `5` or a str is the same error.
        return await self._run(self.sync.ingest_many, list(_iterable("events", events)))

    async def get(self, event_id: Union[uuid.UUID, str]) -> Optional[Event]:
        return await self._run(self.sync.get, event_id)

    async def get_by_provider_event_id(
        self, provider: str, provider_event_id: str
    ) -> Optional[Event]:
        return await self._run(self.sync.get_by_provider_event_id, provider, provider_event_id)

    async def get_by_idempotency_key(self, key: str) -> Optional[Event]:
        return await self._run(self.sync.get_by_idempotency_key, key)

    async def list(
        self,
        wallet_id: str,
        limit: int = 100,
        cursor: Optional[str] = None,
        order: Order = "desc",
        event_types: Optional[Sequence[Union[EventType, str]]] = None,
        since: Optional[DatetimeLike] = None,
        until: Optional[DatetimeLike] = None,
        currency: Optional[str] = None,
    ) -> Page:
        return await self._run(
            self.sync.list, wallet_id, limit, cursor, order, event_types, since, until, currency
        )

    async def balance(
        self, wallet_id: str, as_of: Optional[DatetimeLike] = None
    ) -> dict[str, Balance]:
        return await self._run(self.sync.balance, wallet_id, as_of)

    async def changes_since(self, sequence: int = 0, limit: int = 1000) -> _List[Event]:
        return await self._run(self.sync.changes_since, sequence, limit)

    async def audit_log(
        self, sequence: int = 0, limit: int = 1000, *, after: Optional[int] = None
    ) -> _List[AuditRecord]:
        return await self._run(self.sync.audit_log, sequence, limit, after=after)

    async def verify_audit(
        self,
        checkpoints: Optional[Iterable[str]] = None,
        verifying_key: Optional[bytes] = None,
    ) -> AuditReport:
        return await self._run(self.sync.verify_audit, checkpoints, verifying_key)

    async def audit_checkpoint(self, signing_key: bytes) -> str:
        return await self._run(self.sync.audit_checkpoint, signing_key)

    async def install_plugin(self, plugin: Union[str, os.PathLike[str], bytes]) -> PluginInfo:
        return await self._run(self.sync.install_plugin, plugin)

    async def set_webhook_secret(self, provider: str, secret: str) -> None:
        await self._run(self.sync.set_webhook_secret, provider, secret)

    async def allow_unsigned(self, provider: str) -> None:
        await self._run(self.sync.allow_unsigned, provider)

    async def ingest_webhook(
        self,
        provider: str,
        headers: Union[Mapping[str, str], Sequence[tuple[str, str]]],
        body: bytes,
        url: Optional[str] = None,
    ) -> _List[IngestResult]:
        return await self._run(self.sync.ingest_webhook, provider, headers, body, url)

    async def inbox(
        self,
        provider: Optional[str] = None,
        verdict: Optional[str] = None,
        since: Optional[DatetimeLike] = None,
        until: Optional[DatetimeLike] = None,
        limit: int = 100,
        cursor: Optional[str] = None,
        order: Order = "desc",
    ) -> InboxPage:
        return await self._run(
            self.sync.inbox, provider, verdict, since, until, limit, cursor, order
        )

    async def inbox_delivery(
        self, delivery_id: Union[uuid.UUID, str]
    ) -> tuple[Headers, Optional[bytes]]:
        return await self._run(self.sync.inbox_delivery, delivery_id)

    async def replay(
        self,
        delivery_ids: Optional[Iterable[Union[uuid.UUID, str]]] = None,
        *,
        provider: Optional[str] = None,
        verdict: Optional[str] = None,
    ) -> ReplayReport:
        return await self._run(self.sync.replay, delivery_ids, provider=provider, verdict=verdict)

    async def metrics(self) -> str:
        return await self._run(self.sync.metrics)

    async def plugin(self, provider: str) -> Optional[PluginInfo]:
        return await self._run(self.sync.plugin, provider)


_LIVE: weakref.WeakSet[Ledger] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for ledger in list(_LIVE):
        ledger._after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)

__all__ = ["DEFAULT_MAX_WORKERS", "Ledger"]
