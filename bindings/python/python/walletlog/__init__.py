"""walletlog: the transaction history of wallets.

Exactly-once ingestion (deduplicated on the event id, the provider's event
id and an idempotency key), a tamper-evident audit trail, history page by
page, and balances per currency at any point in time. Amounts are
``decimal.Decimal``, never floats; times are aware ``datetime`` in UTC.

    >>> import walletlog
    >>> from decimal import Decimal
    >>> from datetime import datetime, timezone
    >>> with walletlog.Ledger(":memory:") as led:
    ...     r = led.ingest(wallet_id="w1", provider="stripe", event_type="deposit",
    ...                    amount=Decimal("12.34"), currency="USD",
    ...                    occurred_at=datetime(2026, 1, 2, tzinfo=timezone.utc),
    ...                    provider_event_id="evt_1")
    ...     led.balance("w1")["USD"].available
    Decimal('12.34')
"""

from __future__ import annotations

import enum
import inspect
import json
import operator
import os
import re
import threading
import time
import uuid
import weakref
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, Literal, Optional, SupportsIndex, Union, overload

from . import _walletlog
from ._keys import ApiKey, InsecureKeyWarning
from .errors import (
    ConflictError,
    InvalidTypeError,
    NotFoundError,
    PluginError,
    SignatureError,
    StorageError,
    ValidationError,
    WalletLogError,
)

__version__: str = _walletlog.__version__

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

# `Ledger.list` shadows the builtin inside the class.
_List = list

AmountLike = Union[Decimal, int, str]
#: An aware ``datetime``, or RFC 3339 text with an offset (``"2026-01-02T03:04:05Z"``).
DatetimeLike = Union[datetime, str]
Durability = Literal["full", "normal"]
Order = Literal["asc", "desc"]


class EventType(str, enum.Enum):
    """What happened to the money."""

    DEPOSIT = "deposit"
    WITHDRAWAL = "withdrawal"
    TRANSFER_IN = "transfer_in"
    TRANSFER_OUT = "transfer_out"
    FEE = "fee"
    REFUND = "refund"
    HOLD = "hold"
    RELEASE = "release"

    def __str__(self) -> str:
        return self.value


def _from_micros(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


def _type_error(field: str, expected: str, value: Any) -> InvalidTypeError:
    reason = f"must be {expected}, not {type(value).__name__}"
    return InvalidTypeError(f"invalid {field}: {reason}", field, reason)


def _naive(field: str) -> ValidationError:
    reason = "is a naive datetime: give it a time zone (tzinfo=timezone.utc)"
    return ValidationError(f"invalid {field}: {reason}", field, reason)


def _micros(field: str, at: datetime) -> int:
    if at.tzinfo is None or at.utcoffset() is None:
        raise _naive(field)
    delta = at.astimezone(timezone.utc) - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


#: The largest whole number the core takes (an unsigned 64-bit integer).
_U64_MAX = 2**64 - 1


def _seconds_to_micros(field: str, seconds: float) -> int:
    """A duration option given in seconds, as whole microseconds."""
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
        raise _type_error(field, "a number of seconds", seconds)
    if not seconds >= 0:
        reason = "must be a duration of at least 0 seconds"
        raise ValidationError(f"invalid {field}: {reason}", field, reason)
    if not seconds * 1_000_000 <= _U64_MAX:  # also infinity
        reason = "is too long a duration"
        raise ValidationError(f"invalid {field}: {reason}", field, reason)
    return round(seconds * 1_000_000)


def _seconds_to_millis(field: str, seconds: float) -> int:
    """A duration option given in seconds, as whole milliseconds."""
    return (_seconds_to_micros(field, seconds) + 999) // 1000


def _int(field: str, value: Any) -> int:
    """An int, or any integer type (numpy's too), but not a bool."""
    if isinstance(value, bool):
        raise _type_error(field, "an int", value)
    try:
        return operator.index(value)
    except TypeError:
        raise _type_error(field, "an int", value) from None


def _count(field: str, n: int) -> int:
    """A whole-number option: an int (or any integer type, not a bool) of at
    least 0 that fits 64 bits; the core checks its own bounds."""
    n = _int(field, n)
    if n < 0:
        reason = f"must not be negative, not {n}"
        raise ValidationError(f"invalid {field}: {reason}", field, reason)
    if n > _U64_MAX:
        reason = f"is more than the {_U64_MAX} allowed"
        raise ValidationError(f"invalid {field}: {reason}", field, reason)
    return n


def _limits(field: str, limits: Optional[Mapping[str, int]]) -> _List[tuple[str, int]]:
    """Limits by name, each a whole number; the core checks names and bounds."""
    if limits is None:
        return []
    if not isinstance(limits, Mapping):
        raise _type_error(field, "a mapping of limit names to ints", limits)
    out = []
    for name, n in limits.items():
        if not isinstance(name, str):
            raise _type_error(field, "a mapping with str keys", name)
        out.append((name, _count(name, n)))
    return out


#: The core's names of options that Python takes in seconds.
_PYTHON_OPTION_NAMES = {
    "busy_timeout_ms": "busy_timeout",
    "pool_timeout_ms": "pool_timeout",
    "group_max_wait_us": "group_max_wait",
}


def _in_seconds(reason: str) -> str:
    """A core reason about an option in ``us`` or ``ms``, in the seconds
    that Python takes (``2000000 us`` is ``2 s``)."""
    scale = {"us": 1_000_000, "ms": 1_000}
    return re.sub(r"\b(\d+) (us|ms)\b", lambda m: f"{int(m[1]) / scale[m[2]]:g} s", reason)


def _time_arg(field: str, at: DatetimeLike) -> Union[int, str]:
    """What the native layer takes for a time: microseconds, or the text
    for the core to parse (the same rules as ``occurred_at``)."""
    if isinstance(at, datetime):
        return _micros(field, at)
    if isinstance(at, str):
        return at
    raise _type_error(field, "an aware datetime or an RFC 3339 str", at)


def _timestamp_text(field: str, at: DatetimeLike) -> str:
    if isinstance(at, str):
        return at
    if not isinstance(at, datetime):
        raise _type_error(field, "an aware datetime or an RFC 3339 str", at)
    if at.tzinfo is None or at.utcoffset() is None:
        raise _naive(field)
    # An aware isoformat() carries its offset: RFC 3339, converted to UTC by the core.
    return at.isoformat()


def _amount_text(amount: AmountLike) -> str:
    if isinstance(amount, bool):
        raise _type_error("amount", "a Decimal, int or str", amount)
    if isinstance(amount, float):
        reason = "must be a Decimal, int or str, not float: a float cannot hold money exactly"
        raise InvalidTypeError(f"invalid amount: {reason}", "amount", reason)
    if isinstance(amount, Decimal):
        if not amount.is_finite():
            raise ValidationError(
                f"invalid amount: {amount} is not a finite number", "amount", "is not finite"
            )
        return format(amount, "f")
    if isinstance(amount, int):
        return str(amount)
    if isinstance(amount, str):
        return amount
    raise _type_error("amount", "a Decimal, int or str", amount)


def _check_keys(value: Any, path: str) -> None:
    if isinstance(value, Mapping):
        for k, v in value.items():
            if not isinstance(k, str):
                raise ValidationError(
                    f"invalid metadata: key {repr(k)[:40]} at {(path or '/')[:40]} is not a string",
                    "metadata",
                    "has a key that is not a string",
                )
            _check_keys(v, f"{path}/{k}")
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _check_keys(v, f"{path}/{i}")


def _metadata_text(metadata: Optional[Mapping[str, Any]]) -> Optional[str]:
    if metadata is None:
        return None
    if not isinstance(metadata, Mapping):
        raise _type_error("metadata", "a dict", metadata)
    try:
        _check_keys(metadata, "")
        return json.dumps(metadata, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except ValidationError:
        raise
    except RecursionError:
        reason = "is nested too deeply"
        raise ValidationError(f"invalid metadata: {reason}", "metadata", reason) from None
    except (TypeError, ValueError) as e:
        raise ValidationError(f"invalid metadata: {e}", "metadata", str(e)) from None


def _check_encodable(fields: tuple[Any, ...], index: Optional[int] = None) -> None:
    """After the native layer refused `fields`: names a text field that is
    not valid Unicode (a lone surrogate cannot cross into Rust)."""
    for name, value in zip(_EVENT_FIELDS, fields):
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError as e:
                reason = f"is not valid Unicode text (a lone surrogate at {e.start})"
                where = "" if index is None else f"item {index}: "
                raise ValidationError(
                    f"{where}invalid {name}: {reason}", name, reason, index
                ) from None


def _uuid_text(field: str, value: Any) -> str:
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, str):
        return value
    raise _type_error(field, "a UUID or a str", value)


def _iterable(field: str, value: Any) -> Iterable[Any]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise _type_error(field, "a list", value)
    return value


def _optional_text(field: str, value: Any) -> Optional[str]:
    if value is None or isinstance(value, str):
        return value
    raise _type_error(field, "a str or None", value)


def _text(field: str, value: Any) -> str:
    if isinstance(value, str):
        return value
    raise _type_error(field, "a str", value)


def _event_type_text(field: str, value: Any) -> str:
    """An event type, by member or name; the core checks the name (and
    names ``event_types`` when it is not one)."""
    if isinstance(value, EventType):
        return value.value
    return _text(field, value)


def _event_fields(item: Any) -> Mapping[str, Any]:
    """One item of ``ingest_many``: a mapping of ``ingest``'s keywords, the
    first unknown or missing one named."""
    if (
        type(item) is dict
        and item.keys() <= _EVENT_FIELD_SET
        and item.keys() >= _REQUIRED_EVENT_FIELD_SET
    ):
        return item  # the common case, in two set comparisons
    if not isinstance(item, Mapping):
        raise _type_error("event", "a mapping of the event's fields", item)
    for name in item:
        if name not in _EVENT_FIELDS:
            reason = f"is not a field of an event (fields: {', '.join(_EVENT_FIELDS)})"
            raise ValidationError(f"invalid {name}: {reason}", str(name), reason)
    for name in _REQUIRED_EVENT_FIELDS:
        if name not in item:
            reason = "is required"
            raise ValidationError(f"invalid {name}: {reason}", name, reason)
    return item


def _seconds_int(field: str, value: Any) -> int:
    """Whole unix seconds (or a whole number of seconds) as the core takes
    them: an int of 0 or more that fits 63 bits."""
    n = _int(field, value)
    if not 0 <= n < 2**63:
        reason = f"must be a whole number of seconds from 0 to {2**63 - 1}, not {n}"
        raise ValidationError(f"invalid {field}: {reason}", field, reason)
    return n


def _sender_seconds(value: Any) -> int:
    """A request's timestamp as its sender gave it: an int (else an
    ``InvalidTypeError``, the caller's mistake), held to 64 bits. The core
    refuses one that no clock gives as the request's fault, a
    ``SignatureError``, after the verifier's own arguments: before 1970 is
    ``malformed``, past 64 bits (the 64-bit end here) out of tolerance."""
    return min(max(_int("timestamp", value), -(2**63)), 2**63 - 1)


def _bytes(field: str, value: Any) -> bytes:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    raise _type_error(field, "bytes", value)


def _header_pairs(headers: Any) -> _List[tuple[str, str]]:
    """A webhook's headers, a mapping or (name, value) pairs, each a str."""
    if isinstance(headers, Mapping):
        pairs = list(headers.items())
    elif isinstance(headers, (str, bytes)) or not isinstance(headers, Iterable):
        raise _type_error("headers", "a mapping or a list of (name, value) pairs", headers)
    else:
        pairs = list(headers)
    for pair in pairs:
        if (
            not isinstance(pair, tuple)
            or len(pair) != 2
            or not isinstance(pair[0], str)
            or not isinstance(pair[1], str)
        ):
            reason = "must be str names and str values"
            raise InvalidTypeError(f"invalid headers: {reason}", "headers", reason)
    return pairs


def _utc_text(at: datetime) -> str:
    """A stored time as the core writes it in every face (JSON, C, the CLI,
    HTTP): RFC 3339 in UTC with `Z`, and 0, 3 or 6 fractional digits, as
    few as hold the time."""
    us = at.microsecond
    spec = "seconds" if us == 0 else "milliseconds" if us % 1000 == 0 else "microseconds"
    return at.isoformat(timespec=spec).replace("+00:00", "Z")


class Event(tuple):  # type: ignore[type-arg]
    """A stored event. Immutable (a tuple underneath, built in one C call);
    each field converts to its Python type when read."""

    __slots__ = ()

    def __new__(cls, raw: tuple[Any, ...]) -> Event:
        return tuple.__new__(cls, raw)

    @classmethod
    def _from_native(cls, t: tuple[Any, ...]) -> Event:
        return tuple.__new__(cls, t)

    @property
    def event_id(self) -> uuid.UUID:
        return uuid.UUID(self[0])

    @property
    def wallet_id(self) -> str:
        return self[1]

    @property
    def provider(self) -> str:
        return self[2]

    @property
    def event_type(self) -> EventType:
        return EventType(self[3])

    @property
    def amount(self) -> Decimal:
        return Decimal(self[4])

    @property
    def currency(self) -> str:
        return self[5]

    @property
    def provider_event_id(self) -> Optional[str]:
        return self[6]

    @property
    def idempotency_key(self) -> Optional[str]:
        return self[7]

    @property
    def metadata(self) -> dict[str, Any]:
        """A fresh copy each time: the stored event cannot be changed through it."""
        return json.loads(self[8])

    @property
    def occurred_at(self) -> datetime:
        return _from_micros(self[9])

    @property
    def created_at(self) -> datetime:
        return _from_micros(self[10])

    @property
    def sequence(self) -> int:
        return self[11][0]

    @property
    def occurred_at_estimated(self) -> bool:
        """The provider gave no time (plugin contract 1.1): ``occurred_at`` is
        the webhook's first receipt."""
        return self[11][1]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Event) and tuple.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        return not self == other

    __hash__ = tuple.__hash__

    def __repr__(self) -> str:
        return (
            f"Event(event_id={str(self.event_id)!r}, wallet_id={self.wallet_id!r}, "
            f"event_type={self.event_type.value!r}, amount={self[4]!r}, "
            f"currency={self.currency!r}, provider={self.provider!r}, "
            f"provider_event_id={self.provider_event_id!r}, "
            f"occurred_at={self.occurred_at.isoformat()!r}, sequence={self.sequence})"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: amounts and times as text (``isoformat()``, which every
        supported Python reads back with ``datetime.fromisoformat``; the
        HTTP router writes `Z` as the other faces do), ids as strings."""
        return {
            "event_id": str(self.event_id),
            "wallet_id": self.wallet_id,
            "provider": self.provider,
            "event_type": self.event_type.value,
            # The core's text: plain digits, never an exponent ("1E-7").
            "amount": self[4],
            "currency": self.currency,
            "provider_event_id": self.provider_event_id,
            "idempotency_key": self.idempotency_key,
            "metadata": self.metadata,
            "occurred_at": self.occurred_at.isoformat(),
            "occurred_at_estimated": self.occurred_at_estimated,
            "created_at": self.created_at.isoformat(),
            "sequence": self.sequence,
        }


class IngestResult(tuple):  # type: ignore[type-arg]
    """``created`` or ``duplicate`` (with ``matched_on``), and the stored event."""

    __slots__ = ()

    @property
    def created(self) -> bool:
        return self[0]

    @property
    def duplicate(self) -> bool:
        return not self[0]

    @property
    def matched_on(self) -> Optional[str]:
        """``None``, ``"event_id"``, ``"provider_event_id"`` or ``"idempotency_key"``."""
        return self[1]

    @property
    def event(self) -> Event:
        # Kept native until read: a batch's results cost little until used.
        return Event._from_native(self[2].fields())

    @classmethod
    def _from_native(cls, t: tuple[Any, ...]) -> IngestResult:
        return tuple.__new__(cls, t)

    def __repr__(self) -> str:
        return (
            f"IngestResult(created={self.created}, matched_on={self.matched_on!r}, "
            f"event={self.event!r})"
        )


@dataclass(frozen=True)
class Page:
    events: list[Event]
    next_cursor: Optional[str]


@dataclass(frozen=True)
class Balance:
    available: Decimal
    held: Decimal
    total: Decimal
    event_count: int
    last_occurred_at: Optional[datetime]


@dataclass(frozen=True)
class PluginInfo:
    provider: str
    version: str
    signature: str


@dataclass(frozen=True)
class AuditRecord:
    sequence: int
    recorded_at: datetime
    action: str
    event_id: uuid.UUID
    event_sequence: int
    matched_on: Optional[str]
    actor: str
    fingerprint: str
    body_sha256: Optional[str]
    prev_hash: str
    hash: str
    #: The inbox delivery a webhook ingestion or replay came from.
    delivery_id: Optional[uuid.UUID] = None


@dataclass(frozen=True)
class AuditReport:
    """What ``verify_audit`` found: the first four fields as DESIGN names
    them, then the details."""

    ok: bool
    records_checked: int
    #: The first audit record that is wrong (``None`` for an event inserted
    #: with no record: see ``first_bad_event_sequence``).
    first_bad_sequence: Optional[int]
    reason: Optional[str]
    events_checked: int = 0
    first_bad_event_sequence: Optional[int] = None
    #: The problem's kind: ``record_altered``, ``chain_broken``, ``event_altered``,
    #: ``event_missing``, ``event_inserted``, ``balance_altered``,
    #: ``delivery_altered``, and with checkpoints ``checkpoint_bad_signature``,
    #: ``checkpoint_other_ledger``, ``tail_cut`` or ``rolled_back``.
    problem: Optional[str] = None


class Headers(_List[tuple[str, str]]):
    """A delivery's headers: the ``(name, value)`` pairs as received, in
    order (repeats kept), that also answer by name, ignoring case:
    ``headers["Stripe-Signature"]`` is the first value of that name."""

    @overload
    def __getitem__(self, key: SupportsIndex) -> tuple[str, str]: ...
    @overload
    def __getitem__(self, key: slice) -> _List[tuple[str, str]]: ...
    @overload
    def __getitem__(self, key: str) -> str: ...
    def __getitem__(
        self, key: Union[SupportsIndex, slice, str]
    ) -> Union[tuple[str, str], _List[tuple[str, str]], str]:
        if isinstance(key, str):
            found = self.get(key)
            if found is None:
                raise KeyError(key)
            return found
        return super().__getitem__(key)

    def get(self, name: str, default: Optional[str] = None) -> Optional[str]:
        """The first value of header ``name`` (any case), or ``default``."""
        wanted = name.lower()
        return next((v for k, v in self if k.lower() == wanted), default)

    def get_all(self, name: str) -> _List[str]:
        """Every value of header ``name`` (any case), in order."""
        wanted = name.lower()
        return [v for k, v in self if k.lower() == wanted]

    # No keys(): dict(headers) reads the pairs, as of any list of them.
    def items(self) -> _List[tuple[str, str]]:
        return _List(self)

    def __contains__(self, item: object) -> bool:
        if isinstance(item, str):
            return self.get(item) is not None
        return super().__contains__(item)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Mapping):
            return dict(_List(self)) == dict(other)
        return super().__eq__(other)

    def __ne__(self, other: object) -> bool:
        return not self == other


#: A delivery's verdict: what its latest attempt came to.
Verdict = Literal[
    "ingested", "ignored", "unsupported", "malformed", "plugin_failed", "invalid_output", "conflict"
]


@dataclass(frozen=True)
class InboxEntry:
    """One webhook delivery in the inbox (its body: ``Ledger.inbox_delivery``)."""

    delivery_id: uuid.UUID
    provider: str
    #: The first receipt.
    received_at: datetime
    verdict: str
    #: Why, for every verdict but ``ingested`` and ``ignored``.
    reason: Optional[str]
    body_sha256: bytes
    #: The version of the plugin that ran last.
    plugin_version: str
    #: The events the latest attempt stored or matched.
    event_ids: list[uuid.UUID]
    #: Receipts and replays so far.
    attempts: int


@dataclass(frozen=True)
class InboxPage:
    entries: list[InboxEntry]
    next_cursor: Optional[str]


@dataclass(frozen=True)
class ReplayReport:
    #: Deliveries run through their plugin.
    replayed: int
    #: Events stored for the first time.
    created: int
    #: Events the ledger already held.
    duplicates: int
    #: Deliveries whose verdict is still neither ``ingested`` nor ``ignored``.
    still_failing: int
    #: Deliveries chosen by verdict whose body retention had dropped: not run.
    skipped: int = 0


class Ledger:
    """A wallet transaction ledger at a location: a SQLite file, ``":memory:"``,
    or a ``postgresql://`` URI (libpq conventions; a schema per ledger with
    ``options=-csearch_path%3D<schema>``).

    Thread-safe: share one between threads; the GIL is released during
    storage and plugin work. Several processes may open the same file or
    PostgreSQL schema. ``pool_size`` and ``pool_timeout`` (seconds) bound the
    PostgreSQL connections of this ledger; they do nothing elsewhere.

    Concurrent ``ingest`` and ``ingest_many`` calls from several threads are
    group-committed: they share one transaction and one commit, and each
    call still gets exactly its own results or error. ``group_max_events``
    (default 1000) bounds a group; ``group_max_wait`` (seconds, default
    0.0005, at most 1) is how long a group waits for more callers, and only
    while the ledger is busy: a lone caller commits at once.

    ``plugin_limits`` (``{"fuel_per_call": ..., "memory_bytes_max": ...}``)
    and ``inbox_limits`` (``{"retention_s": ..., "ingested_body_retention_s":
    ..., "deliveries_max": ..., "prune_every": ...}``) set limits by name,
    the others keeping their defaults (docs/plugins.md, docs/webhooks.md).
    """

    def __init__(
        self,
        path: Union[str, os.PathLike[str]],
        *,
        durability: Durability = "full",
        audit_key: Optional[bytes] = None,
        busy_timeout: Optional[float] = None,
        plugin_cache_dir: Optional[Union[str, os.PathLike[str]]] = None,
        pool_size: Optional[int] = None,
        pool_timeout: Optional[float] = None,
        group_max_events: Optional[int] = None,
        group_max_wait: Optional[float] = None,
        plugin_limits: Optional[Mapping[str, int]] = None,
        inbox_limits: Optional[Mapping[str, int]] = None,
    ) -> None:
        if not isinstance(path, (str, os.PathLike)):
            raise _type_error("path", "a str or a path", path)
        self._path = os.fspath(path)
        if audit_key is not None:
            audit_key = _bytes("audit_key", audit_key)
        self._open_args = (
            self._path,
            _text("durability", durability),
            audit_key,
            None if busy_timeout is None else _seconds_to_millis("busy_timeout", busy_timeout),
            None if plugin_cache_dir is None else os.fspath(plugin_cache_dir),
            None if pool_size is None else _count("pool_size", pool_size),
            None if pool_timeout is None else _seconds_to_millis("pool_timeout", pool_timeout),
            None if group_max_events is None else _count("group_max_events", group_max_events),
            None
            if group_max_wait is None
            else _seconds_to_micros("group_max_wait", group_max_wait),
            _limits("plugin_limits", plugin_limits),
            _limits("inbox_limits", inbox_limits),
        )
        try:
            self._native = _walletlog.NativeLedger(*self._open_args)
        except ValidationError as e:
            # The core names options by its own units: say the keyword given.
            named = _PYTHON_OPTION_NAMES.get(e.field or "")
            if named is None:
                raise
            reason = _in_seconds(e.reason or "")
            raise ValidationError(f"invalid {named}: {reason}", named, reason) from None
        # What configured this ledger beyond its options (plugins, secrets,
        # unsigned providers), in order: replayed by a forked child's reopen.
        self._setup: _List[tuple[str, Any]] = []
        self._closed = False
        _LIVE.add(self)

    def _after_fork(self) -> None:
        """In a child forked after this ledger was opened: the parent's
        connections must not be used (nor closed) here, so the first call
        opens this ledger again, with the same options and setup."""
        if not self._closed:
            self._native = _Reopening(self)  # type: ignore[assignment]

    def _reopen(self) -> Any:
        with _REOPEN:
            inherited = self._native
            if not isinstance(inherited, _Reopening):
                return inherited  # another thread reopened it first
            if self._path == ":memory:":
                native: Any = _Refusing(
                    StorageError(
                        "an in-memory ledger cannot be shared with a forked process: "
                        "the child would see another, empty ledger; open it after the fork",
                        code="closed",
                    )
                )
            else:
                try:
                    native = _walletlog.NativeLedger(*self._open_args)
                    for what, args in self._setup:
                        getattr(native, what)(*args)
                except StorageError as e:
                    if e.code in ("busy", "unavailable"):
                        raise  # passing: the next call tries again
                    native = _Refusing(e)
                except WalletLogError as e:
                    native = _Refusing(e)
            self._native = native
            return native

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Closes the ledger; later calls raise ``StorageError``."""
        self._closed = True
        if isinstance(self._native, _Reopening):
            # Inherited over a fork and never opened here: nothing to close.
            self._native = _Refusing(StorageError("the ledger is closed", code="closed"))
            return
        self._native.close()

    def plugin(self, provider: str) -> Optional[PluginInfo]:
        """The installed plugin of ``provider``, if any."""
        info = self._native.plugin(_text("provider", provider))
        return None if info is None else PluginInfo(*info)

    def metrics(self) -> str:
        """This ledger's metrics in the OpenMetrics text format a Prometheus
        scrape takes (names and labels: docs/metrics.md)."""
        return self._native.metrics()

    @staticmethod
    def _fields(
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
    ) -> tuple[Any, ...]:
        """The native layer's positional form of one event's fields."""
        # Fast paths for the common exact types; the helpers check the rest.
        if type(amount) is Decimal and amount.is_finite():
            amount_text = format(amount, "f")
        else:
            amount_text = _amount_text(amount)
        if type(occurred_at) is datetime and occurred_at.utcoffset() is not None:
            occurred_text = occurred_at.isoformat()
        else:
            occurred_text = _timestamp_text("occurred_at", occurred_at)
        return (
            wallet_id if type(wallet_id) is str else _text("wallet_id", wallet_id),
            provider if type(provider) is str else _text("provider", provider),
            event_type.value
            if isinstance(event_type, EventType)
            else _text("event_type", event_type),
            amount_text,
            currency if type(currency) is str else _text("currency", currency),
            occurred_text,
            provider_event_id
            if provider_event_id is None or type(provider_event_id) is str
            else _optional_text("provider_event_id", provider_event_id),
            idempotency_key
            if idempotency_key is None or type(idempotency_key) is str
            else _optional_text("idempotency_key", idempotency_key),
            None if metadata is None else _metadata_text(metadata),
            str(event_id)
            if isinstance(event_id, uuid.UUID)
            else _optional_text("event_id", event_id),
        )

    def ingest(
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
        fields = self._fields(
            wallet_id,
            provider,
            event_type,
            amount,
            currency,
            occurred_at,
            provider_event_id,
            idempotency_key,
            metadata,
            event_id,
        )
        try:
            native = self._native.ingest(fields)
        except TypeError:
            _check_encodable(fields)
            raise
        return IngestResult._from_native(native)

    def ingest_many(self, events: Iterable[Mapping[str, Any]]) -> _List[IngestResult]:
        """One transaction: all of it, or none and the error names the index.
        (Rust's ``ingest_batch``; the Python name is the Python contract.)"""
        items = []
        for i, e in enumerate(_iterable("events", events)):
            try:
                items.append(self._fields(**_event_fields(e)))
            except WalletLogError as err:
                raise type(err)(f"item {i}: {err.message}", err.field, err.reason, i) from None
        try:
            natives = self._native.ingest_many(items)
        except TypeError:
            for i, fields in enumerate(items):
                _check_encodable(fields, i)
            raise
        make = IngestResult._from_native
        return [make(t) for t in natives]

    def get(self, event_id: Union[uuid.UUID, str]) -> Optional[Event]:
        t = self._native.get(_uuid_text("event_id", event_id))
        return None if t is None else Event._from_native(t)

    def get_by_provider_event_id(self, provider: str, provider_event_id: str) -> Optional[Event]:
        t = self._native.get_by_provider_event_id(
            _text("provider", provider), _text("provider_event_id", provider_event_id)
        )
        return None if t is None else Event._from_native(t)

    def get_by_idempotency_key(self, key: str) -> Optional[Event]:
        t = self._native.get_by_idempotency_key(_text("idempotency_key", key))
        return None if t is None else Event._from_native(t)

    def list(
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
        """One page of the wallet's history by ``(occurred_at, sequence)``;
        ``since`` is inclusive, ``until`` exclusive. Pass ``next_cursor``
        back (with the same filters) for the next page."""
        if isinstance(limit, bool) or not isinstance(limit, int):
            raise _type_error("limit", "an int", limit)
        if isinstance(event_types, str):
            raise _type_error("event_types", "a list of event types", event_types)
        types = (
            None
            if event_types is None
            else [_event_type_text("event_types", t) for t in _iterable("event_types", event_types)]
        )
        events, next_cursor = self._native.list(
            _text("wallet_id", wallet_id),
            limit,
            _optional_text("cursor", cursor),
            _text("order", order),
            types,
            None if since is None else _time_arg("since", since),
            None if until is None else _time_arg("until", until),
            _optional_text("currency", currency),
        )
        return Page([Event._from_native(t) for t in events], next_cursor)

    def balance(self, wallet_id: str, as_of: Optional[DatetimeLike] = None) -> dict[str, Balance]:
        """Per currency: available, held, total, event count, last occurrence,
        over the events with ``occurred_at <= as_of`` (all when ``None``)."""
        rows = self._native.balance(
            _text("wallet_id", wallet_id), None if as_of is None else _time_arg("as_of", as_of)
        )
        return {
            c: Balance(
                Decimal(a), Decimal(h), Decimal(t), n, None if last is None else _from_micros(last)
            )
            for c, a, h, t, n, last in rows
        }

    def changes_since(self, sequence: int = 0, limit: int = 1000) -> _List[Event]:
        return [
            Event._from_native(t)
            for t in self._native.changes_since(
                _count("sequence", sequence), _count("limit", limit)
            )
        ]

    def audit_log(
        self, sequence: int = 0, limit: int = 1000, *, after: Optional[int] = None
    ) -> _List[AuditRecord]:
        """Audit records with a sequence above ``sequence``, at most ``limit``
        (1..=10000), as ``changes_since`` reads events. ``after`` is the
        parameter's earlier name, still taken."""
        if after is not None:
            sequence = after
        return [
            AuditRecord(
                s,
                _from_micros(at),
                action,
                uuid.UUID(eid),
                es,
                m,
                actor,
                fp,
                body,
                prev,
                h,
                None if d is None else uuid.UUID(d),
            )
            for s, at, action, eid, es, m, actor, fp, body, prev, h, d in self._native.audit_log(
                _count("sequence", sequence), _count("limit", limit)
            )
        ]

    def verify_audit(
        self,
        checkpoints: Optional[Iterable[str]] = None,
        verifying_key: Optional[bytes] = None,
    ) -> AuditReport:
        """Recomputes the audit chain, every event's fingerprint, every stored
        balance and every kept webhook body. With ``checkpoints`` (the texts
        ``audit_checkpoint`` returned) and the ``verifying_key`` of the key
        that signed them, also proves the ledger extends each: a cut tail
        (``tail_cut``), a rollback to an older copy (``rolled_back``),
        another ledger's checkpoint (``checkpoint_other_ledger``) or a bad
        signature (``checkpoint_bad_signature``) is the report's problem."""
        texts = (
            None
            if checkpoints is None
            else [_text("checkpoints", c) for c in _iterable("checkpoints", checkpoints)]
        )
        if verifying_key is not None and not isinstance(verifying_key, (bytes, bytearray)):
            raise _type_error("verifying_key", "bytes", verifying_key)
        ok, records, events, bad, bad_event, problem, reason = self._native.verify_audit(
            texts, None if verifying_key is None else bytes(verifying_key)
        )
        return AuditReport(
            ok=ok,
            records_checked=records,
            first_bad_sequence=bad,
            reason=reason,
            events_checked=events,
            first_bad_event_sequence=bad_event,
            problem=problem,
        )

    def audit_checkpoint(self, signing_key: bytes) -> str:
        """The audit trail's head now, as a small signed text document to keep
        outside the ledger's host (``docs/audit.md``). ``signing_key`` is the
        32-byte Ed25519 key of ``ed25519_keypair()``; it is never stored."""
        if not isinstance(signing_key, (bytes, bytearray)):
            raise _type_error("signing_key", "bytes", signing_key)
        return self._native.audit_checkpoint(bytes(signing_key))

    def install_plugin(self, plugin: Union[str, os.PathLike[str], bytes]) -> PluginInfo:
        """Installs a normalizer plugin component (a path or its bytes)."""
        if isinstance(plugin, (bytes, bytearray, memoryview)):
            wasm = bytes(plugin)
        elif isinstance(plugin, (str, os.PathLike)):
            with open(os.fspath(plugin), "rb") as f:
                wasm = f.read()
        else:
            raise _type_error("plugin", "a path or the component's bytes", plugin)
        info = PluginInfo(*self._native.install_plugin(wasm))
        self._setup.append(("install_plugin", (wasm,)))
        return info

    def set_webhook_secret(self, provider: str, secret: str) -> None:
        """The secret ``provider``'s deliveries are verified with (text, as
        the provider shows it). An empty secret, or one the installed
        plugin's scheme cannot decode, is a ``ValidationError``."""
        self._native.set_webhook_secret(_text("provider", provider), _text("secret", secret))
        self._setup.append(("set_webhook_secret", (provider, secret)))

    def allow_unsigned(self, provider: str) -> None:
        self._native.allow_unsigned(_text("provider", provider))
        self._setup.append(("allow_unsigned", (provider,)))

    def ingest_webhook(
        self,
        provider: str,
        headers: Union[Mapping[str, str], Sequence[tuple[str, str]]],
        body: bytes,
        url: Optional[str] = None,
    ) -> _List[IngestResult]:
        """Verifies, normalizes in the provider's sandboxed plugin, validates
        and ingests a webhook in one transaction."""
        results = self._native.ingest_webhook(
            _text("provider", provider),
            _header_pairs(headers),
            _bytes("body", body),
            _optional_text("url", url),
        )
        return [IngestResult._from_native(t) for t in results]

    def inbox(
        self,
        provider: Optional[str] = None,
        verdict: Optional[str] = None,
        since: Optional[DatetimeLike] = None,
        until: Optional[DatetimeLike] = None,
        limit: int = 100,
        cursor: Optional[str] = None,
        order: Order = "desc",
    ) -> InboxPage:
        """One page of the webhook inbox: every delivery that passed its
        signature check, newest first, by provider, verdict and receipt
        time (``since`` inclusive, ``until`` exclusive). Pass
        ``next_cursor`` back with the same filters for the next page."""
        if isinstance(limit, bool) or not isinstance(limit, int):
            raise _type_error("limit", "an int", limit)
        rows, next_cursor = self._native.inbox(
            _optional_text("provider", provider),
            _optional_text("verdict", verdict),
            None if since is None else _time_arg("since", since),
            None if until is None else _time_arg("until", until),
            limit,
            _optional_text("cursor", cursor),
            _text("order", order),
        )
        entries = [
            InboxEntry(
                uuid.UUID(d),
                p,
                _from_micros(at),
                v,
                reason,
                sha,
                version,
                [uuid.UUID(e) for e in events],
                attempts,
            )
            for d, p, at, v, reason, sha, version, events, attempts in rows
        ]
        return InboxPage(entries, next_cursor)

    def inbox_delivery(self, delivery_id: Union[uuid.UUID, str]) -> tuple[Headers, Optional[bytes]]:
        """A delivery's headers (as received, in order, also by name: see
        ``Headers``) and raw body; the body is ``None`` once retention
        dropped it. An unknown id is a ``NotFoundError`` (a ``KeyError``)."""
        found = self._native.inbox_delivery(_uuid_text("delivery_id", delivery_id))
        if found is None:
            raise NotFoundError(f"no delivery {delivery_id} in the inbox", code="not_found")
        headers, body = found
        return Headers(headers), body

    def replay(
        self,
        delivery_ids: Optional[Iterable[Union[uuid.UUID, str]]] = None,
        *,
        provider: Optional[str] = None,
        verdict: Optional[str] = None,
    ) -> ReplayReport:
        """Runs stored deliveries (by id, or every one of ``provider`` with
        ``verdict``; without a verdict, every dead letter) through the
        plugins installed now. Exactly once: a delivery refused before
        creates its events, one already ingested yields duplicates.
        Signatures are not checked again (they were at receipt). Every
        delivery must exist and its plugin be installed, or nothing runs."""
        ids = (
            None
            if delivery_ids is None
            else [_uuid_text("delivery_ids", d) for d in _iterable("delivery_ids", delivery_ids)]
        )
        return ReplayReport(
            *self._native.replay(
                ids, _optional_text("provider", provider), _optional_text("verdict", verdict)
            )
        )


#: An event's fields as ``ingest`` takes them (``Ledger._fields``'s
#: parameters, in the order of the native layer's positional fields: one
#: list), and those it requires.
_EVENT_FIELDS = tuple(inspect.signature(Ledger._fields).parameters)
_REQUIRED_EVENT_FIELDS = tuple(
    name
    for name, p in inspect.signature(Ledger._fields).parameters.items()
    if p.default is inspect.Parameter.empty
)
_EVENT_FIELD_SET = frozenset(_EVENT_FIELDS)
_REQUIRED_EVENT_FIELD_SET = frozenset(_REQUIRED_EVENT_FIELDS)


class _Reopening:
    """A forked child's stand-in for an inherited native ledger: the first
    attribute asked for opens the ledger again in this process."""

    __slots__ = ("_ledger",)

    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ledger._reopen(), name)


class _Refusing:
    """A ledger that could not be opened again after a fork: every call
    raises the reason (``close`` does nothing)."""

    __slots__ = ("_error",)

    def __init__(self, error: WalletLogError) -> None:
        self._error = error

    def close(self) -> None:
        pass

    def __getattr__(self, name: str) -> Any:
        def refuse(*_: Any) -> Any:
            raise self._error

        return refuse


_REOPEN = threading.Lock()

#: Every open Ledger of this process, for the fork hook.
_LIVE: weakref.WeakSet[Ledger] = weakref.WeakSet()


def _reopen_after_fork() -> None:
    global _REOPEN
    _REOPEN = threading.Lock()  # a parent's thread may have held it
    for ledger in list(_LIVE):
        ledger._after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reopen_after_fork)


def _secret_bytes(secret: Union[bytes, str]) -> bytes:
    if isinstance(secret, str):
        return secret.encode()
    return _bytes("secret", secret)


def sign_request(
    secret: Union[bytes, str], method: str, path: str, body: bytes, timestamp: int
) -> str:
    """Request signing version 2: the HMAC-SHA256 of
    ``METHOD\\nTARGET\\nTIMESTAMP\\nhex(sha256(body))``, lowercase hex.
    ``path`` is the request target as sent: the path, and ``?`` with the
    query string when there is one (``/api/v1/wallets/w1/events?limit=10``);
    a target without a query signs as version 1 did. (The parameter keeps
    its version 1 name.)"""
    return _walletlog.sign_request(
        _secret_bytes(secret),
        _text("method", method),
        _text("path", path),
        _bytes("body", body),
        _seconds_int("timestamp", timestamp),
    )


def verify_request(
    secret: Union[bytes, str],
    method: str,
    path: str,
    body: bytes,
    timestamp: int,
    signature: str,
    *,
    now: Optional[int] = None,
    tolerance: int = 300,
) -> bool:
    """``True`` when ``signature`` is ``sign_request``'s for this request and
    ``timestamp`` is within ``tolerance`` seconds of now; else raises
    ``SignatureError`` (saying which: bad, stale, malformed; a timestamp
    before 1970 is malformed). The verifier's own mistakes, an empty
    ``secret`` or a negative ``now`` or ``tolerance``, are a
    ``ValidationError``."""
    _walletlog.verify_request(
        _secret_bytes(secret),
        _text("method", method),
        _text("path", path),
        _bytes("body", body),
        _sender_seconds(timestamp),
        _text("signature", signature),
        int(time.time()) if now is None else _seconds_int("now", now),
        _seconds_int("tolerance", tolerance),
    )
    return True


def ed25519_keypair() -> tuple[bytes, bytes]:
    """A new Ed25519 key pair for audit checkpoints: ``(signing_key,
    verifying_key)``, 32 bytes each. Keep the signing key secret, where the
    checkpointing job runs; the verifying key may be published."""
    return _walletlog.ed25519_keypair()


__all__ = [
    "ApiKey",
    "AuditRecord",
    "AuditReport",
    "Balance",
    "ConflictError",
    "DatetimeLike",
    "Durability",
    "Event",
    "EventType",
    "Headers",
    "InboxEntry",
    "InboxPage",
    "IngestResult",
    "InsecureKeyWarning",
    "InvalidTypeError",
    "Ledger",
    "NotFoundError",
    "Order",
    "Page",
    "PluginError",
    "PluginInfo",
    "ReplayReport",
    "SignatureError",
    "StorageError",
    "ValidationError",
    "Verdict",
    "WalletLogError",
    "__version__",
    "ed25519_keypair",
    "sign_request",
    "verify_request",
]

# `walletlog.aio` is part of the package's face (it imports the names above).
from . import aio as aio  # noqa: E402
