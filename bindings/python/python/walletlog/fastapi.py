"""walletlog's HTTP face for FastAPI services (``pip install walletlog[fastapi]``).

Mount the routes in an app of your own::

    import walletlog, walletlog.fastapi
    led = walletlog.aio.Ledger("wallet.db")
    keys = {"k2026": walletlog.ApiKey(secret, wallets="tenant42:", scopes=("read", "ingest"))}
    app.include_router(walletlog.fastapi.router(led, keys))

or serve ``walletlog.fastapi.create_app(led, keys)`` as it is. The routes,
request signing (version 2), the error shape and the limits are in
docs/http.md.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import time
import uuid
from collections.abc import Awaitable, Coroutine, Mapping
from decimal import Decimal
from typing import Any, Callable, Literal, Optional, Union

try:
    from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse, Response
    from fastapi.routing import APIRoute
    from fastapi.security import APIKeyHeader
    from pydantic import BaseModel, ConfigDict
    from starlette.convertors import Convertor, register_url_convertor
    from starlette.exceptions import HTTPException as StarletteHTTPException
except ImportError as e:  # pragma: no cover - depends on the environment
    raise ImportError("walletlog.fastapi needs FastAPI: pip install 'walletlog[fastapi]'") from e

import walletlog

from . import aio
from ._keys import ApiKey, TokenBucket
from .errors import (
    ConflictError,
    NotFoundError,
    PluginError,
    SignatureError,
    StorageError,
    ValidationError,
    WalletLogError,
)

log = logging.getLogger("walletlog.fastapi")

#: The largest request body of the wallet routes, unless given.
MAX_BODY_BYTES = 64 * 1024
#: The largest webhook body, unless given (a plugin is sent at most 1 MiB).
MAX_WEBHOOK_BYTES = 1024 * 1024
#: How far a request's X-Timestamp may be from now, in seconds, unless given.
TIMESTAMP_TOLERANCE = 300

OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"

_IDEMPOTENCY_KEY_CHARS_MAX = 255
_REQUIRED = ("provider", "event_type", "amount", "currency", "occurred_at")


# --- The documented shapes (OpenAPI) -----------------------------------------


class ErrorBody(BaseModel):
    """Every error: ``error`` is the kind, ``message`` says what to do;
    the other members appear where they apply."""

    model_config = ConfigDict(extra="allow")
    error: str
    message: str
    field: Optional[str] = None
    code: Optional[str] = None
    key: Optional[str] = None
    fields: Optional[list[str]] = None
    existing_event_id: Optional[str] = None


class EventBody(BaseModel):
    event_id: str
    wallet_id: str
    provider: str
    event_type: walletlog.EventType
    amount: str
    currency: str
    provider_event_id: Optional[str]
    idempotency_key: Optional[str]
    metadata: dict[str, Any]
    occurred_at: str
    #: The provider gave no time: ``occurred_at`` is the webhook's first receipt.
    occurred_at_estimated: bool = False
    created_at: str
    sequence: int


class IngestBody(BaseModel):
    created: bool
    duplicate: bool
    matched_on: Optional[Literal["event_id", "provider_event_id", "idempotency_key"]]
    event: EventBody


class PageBody(BaseModel):
    events: list[EventBody]
    next_cursor: Optional[str]


class BalanceBody(BaseModel):
    available: str
    held: str
    total: str
    event_count: int
    last_occurred_at: Optional[str]


class BalancesBody(BaseModel):
    wallet_id: str
    balances: dict[str, BalanceBody]


class WebhookBody(BaseModel):
    results: list[IngestBody]


class HealthBody(BaseModel):
    status: str


_INGEST_REQUEST = {
    "required": True,
    "content": {
        "application/json": {
            "example": {
                "provider": "stripe",
                "event_type": "deposit",
                "amount": "12.34",
                "currency": "USD",
                "occurred_at": "2026-01-02T03:04:05Z",
                "provider_event_id": "evt_1",
                "metadata": {"order": "A-1"},
            },
            "schema": {
                "type": "object",
                "additionalProperties": False,
                "required": list(_REQUIRED),
                "properties": {
                    "provider": {"type": "string", "pattern": "^[a-z0-9][a-z0-9_.-]{0,63}$"},
                    "event_type": {
                        "type": "string",
                        "enum": [t.value for t in walletlog.EventType],
                    },
                    "amount": {
                        "type": "string",
                        "pattern": "^[0-9]+(\\.[0-9]+)?$",
                        "maxLength": 40,
                        "description": 'A decimal as a string ("12.34"); a JSON number is refused.',
                    },
                    "currency": {"type": "string", "pattern": "^[A-Z0-9]{2,12}$"},
                    "occurred_at": {
                        "type": "string",
                        "format": "date-time",
                        "description": "RFC 3339 with an offset.",
                    },
                    "provider_event_id": {
                        "type": ["string", "null"],
                        "minLength": 1,
                        "maxLength": 255,
                    },
                    "metadata": {"type": ["object", "null"]},
                    "event_id": {"type": ["string", "null"], "format": "uuid"},
                    "wallet_id": {
                        "type": ["string", "null"],
                        "description": "The path's wallet, if given at all.",
                    },
                    "idempotency_key": {
                        "type": ["string", "null"],
                        "minLength": 1,
                        "maxLength": 255,
                        "description": "Instead of the Idempotency-Key header, or the same; "
                        "at most 255 characters with the key's namespace prefix.",
                    },
                },
            },
        }
    },
}

_IDEMPOTENCY_HEADER = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "schema": {"type": "string"},
    "description": "Deduplicates retries; namespaced by the API key's wallets.",
}


def _errors(*statuses: int) -> dict[Union[int, str], dict[str, Any]]:
    what = {
        401: "Unsigned, badly signed, stale, or an unknown key",
        403: "The key may not do this, or not on this wallet",
        404: "No such route, or no plugin for the provider",
        409: "The keys match a stored event with different fields",
        413: "The body is too large",
        422: "An invalid field, named in `field`",
        429: "Rate limited: retry after `Retry-After` seconds",
        503: "The ledger is unavailable: retry after `Retry-After` seconds",
    }
    return {s: {"model": ErrorBody, "description": what[s]} for s in statuses}


# --- Errors ------------------------------------------------------------------


class Problem(HTTPException):
    """An error answer in the one shape. An ``HTTPException``, so that a
    route of your own protected by :class:`Authenticator` answers with the
    right status in any app (in the one shape with
    :func:`install_error_handlers`)."""

    def __init__(
        self,
        status: int,
        error: str,
        message: str,
        headers: Optional[Mapping[str, str]] = None,
        **extra: Any,
    ) -> None:
        super().__init__(status_code=status, detail=message, headers=dict(headers or {}))
        self.status = status
        self.error = error
        self.message = message
        self.headers = dict(headers or {})
        self.extra = {k: v for k, v in extra.items() if v is not None}

    def response(self) -> JSONResponse:
        return JSONResponse(
            {"error": self.error, "message": self.message, **self.extra},
            status_code=self.status,
            headers=self.headers,
        )


def _validation(field: str, message: str) -> Problem:
    return Problem(422, "validation", message, field=field)


def _storage(e: StorageError) -> Problem:
    # The engine's message may name files or servers: logged, not returned.
    prefix = f"storage error ({e.code}): "
    log.warning("%s%s", "" if e.message.startswith(prefix) else prefix, e.message)
    return Problem(
        503,
        "unavailable",
        f"the ledger is unavailable ({e.code}); retry later",
        headers={"Retry-After": "1"},
        code=e.code,
    )


def _from_walletlog(e: WalletLogError) -> Problem:
    if isinstance(e, ValidationError):
        return _validation(e.field or "body", e.message)
    if isinstance(e, StorageError):
        return _storage(e)
    if isinstance(e, SignatureError):
        return Problem(401, "unauthorized", e.message, code=e.code)
    if isinstance(e, PluginError):
        if e.code == "not_installed":
            return Problem(404, "not_found", e.message, code=e.code)
        if e.code == "request_too_large":
            return Problem(413, "too_large", e.message, code=e.code)
        return Problem(422, "plugin", e.message, code=e.code)
    if isinstance(e, NotFoundError):
        return Problem(404, "not_found", e.message)
    if isinstance(e, ConflictError):
        return Problem(409, "conflict", "the keys match stored history that differs", key=e.key)
    return Problem(503, "unavailable", "the ledger failed; retry later")


_HISTORY_QUERY = ("limit", "cursor", "order", "event_type", "currency", "since", "until")


def _check_query(
    request: Request, known: tuple[str, ...], repeatable: tuple[str, ...] = ()
) -> None:
    """Refuses a query parameter the route does not take (``asof`` for
    ``as_of`` would otherwise be ignored, and the answer be of another
    question) and one given twice that is not a list."""
    seen: set[str] = set()
    for name, _ in request.query_params.multi_items():
        if name not in known:
            takes = f"this route takes {', '.join(known)}" if known else "this route takes none"
            raise _validation("query", f"invalid query: unknown parameter {name[:40]!r}; {takes}")
        if name in seen and name not in repeatable:
            raise _validation(name, f"invalid {name}: given more than once")
        seen.add(name)


def _validation_problem(e: RequestValidationError) -> Problem:
    errors = e.errors()
    first = errors[0] if errors else {}
    loc = [str(p) for p in first.get("loc", ()) if p not in ("query", "path", "header", "body")]
    field = loc[0] if loc else "request"
    return _validation(field, f"invalid {field}: {first.get('msg', 'is invalid')}")


class _WalletIdConvertor(Convertor[str]):
    """A wallet id in a path: every character, an encoded `/` or line break
    included. Starlette's `path` stops at a line break, so `%0A` in an id
    answered 404 (no route) where the id's own rule answers 422."""

    regex = "(?s:.*)"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


# A name of walletlog's own in Starlette's registry of convertors.
register_url_convertor("walletlog_wallet_id", _WalletIdConvertor())


class _Route(APIRoute):
    """Answers every failure of a walletlog route in the one error shape,
    whatever app the router is mounted in."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except Problem as p:
                return p.response()
            except RequestValidationError as e:
                return _validation_problem(e).response()
            except WalletLogError as e:
                return _from_walletlog(e).response()

        return route


# --- Authentication ----------------------------------------------------------


class _Signed(APIKeyHeader):
    """The dependency of one scope: documented in the OpenAPI schema as a
    security scheme (the X-Signature header, with X-Key-Id and
    X-Timestamp beside it), and itself the whole check, so that a route
    resolves one dependency. Headers are read by hand: a missing one is a
    401, not a parameter error."""

    def __init__(self, auth: Authenticator, scope: str) -> None:
        super().__init__(
            name="X-Signature",
            scheme_name="RequestSignature",
            description=(
                "Request signing version 2: X-Signature is the hex HMAC-SHA256, with the "
                "secret of the key named in X-Key-Id, of METHOD\\nTARGET\\nX-Timestamp"
                "\\nhex(sha256(body)), TARGET the path and query string as sent."
            ),
            auto_error=False,
        )
        self._auth = auth
        self._scope = scope

    async def __call__(self, request: Request) -> ApiKey:  # type: ignore[override]
        key = await self._auth.authenticate(request)
        if self._scope not in key.scopes:
            raise Problem(403, "forbidden", f"this key may not {self._scope}")
        wallet_id = request.path_params.get("wallet_id")
        if wallet_id is not None and not key.allows(wallet_id):
            raise Problem(403, "forbidden", "this key may not touch this wallet")
        return key


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 past ``limit`` bytes (before
    reading it when Content-Length says so)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise Problem(413, "too_large", f"bodies are at most {limit} bytes")
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise Problem(413, "too_large", f"bodies are at most {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def request_target(request: Request) -> str:
    """The request target as sent: the raw path and query string."""
    raw = request.scope.get("raw_path") or request.url.path.encode()
    query = request.scope.get("query_string") or b""
    target = raw.decode("latin-1")
    return f"{target}?{query.decode('latin-1')}" if query else target


class Authenticator:
    """Request signing version 2 over ``keys``: a dependency per scope that
    checks the signature, the key's rate limit, its scope and its wallets,
    and gives the route the key. Use it to protect routes of your own::

        auth = walletlog.fastapi.Authenticator(keys)
        @app.post("/mine")
        async def mine(key: walletlog.ApiKey = Depends(auth.require("ingest"))): ...
    """

    def __init__(
        self,
        keys: Mapping[str, ApiKey],
        *,
        max_body_bytes: int = MAX_BODY_BYTES,
        timestamp_tolerance: int = TIMESTAMP_TOLERANCE,
        clock: Callable[[], float] = time.time,
    ) -> None:
        # No keys at all is a service that takes webhooks only: every
        # signed route then answers 401.
        if not isinstance(keys, Mapping):
            raise ValidationError(
                "invalid keys: must map key ids to walletlog.ApiKey",
                "keys",
                f"is a {type(keys).__name__}, not a mapping",
            )
        for kid, key in keys.items():
            if not isinstance(kid, str) or not kid or not isinstance(key, ApiKey):
                raise ValidationError(
                    "invalid keys: must map non-empty key ids to walletlog.ApiKey",
                    "keys",
                    "has an entry that is not a walletlog.ApiKey",
                )
        # Whole numbers as every walletlog option takes them (any integer
        # type; the tolerance in the 63 bits the core checks against).
        max_body_bytes = _positive("max_body_bytes", max_body_bytes)
        timestamp_tolerance = walletlog._seconds_int("timestamp_tolerance", timestamp_tolerance)
        if not callable(clock):
            raise ValidationError(
                "invalid clock: must be a callable giving unix seconds", "clock", "not callable"
            )
        self.keys = dict(keys)
        self.max_body_bytes = max_body_bytes
        self.timestamp_tolerance = timestamp_tolerance
        self.clock = clock
        self._buckets = {
            kid: TokenBucket(key.rate_per_s, key.burst)
            for kid, key in self.keys.items()
            if key.rate_per_s is not None and key.burst is not None
        }

    async def authenticate(self, request: Request) -> ApiKey:
        """The key that signed ``request``; its body is kept in
        ``request.state.walletlog_body``."""
        body = await read_body(request, self.max_body_bytes)
        request.state.walletlog_body = body
        headers = request.headers
        key_id = headers.get("x-key-id")
        stamp = headers.get("x-timestamp")
        signature = headers.get("x-signature")
        if not key_id or not stamp or not signature:
            raise Problem(
                401,
                "unauthorized",
                "sign the request: X-Key-Id, X-Timestamp and X-Signature are required",
                code="unsigned",
            )
        key = self.keys.get(key_id)
        if key is None:
            raise Problem(401, "unauthorized", "unknown key id", code="unknown_key")
        # Whole unix seconds, digits only (int() would also take " 5", "+5"
        # and "5_000"), that fit the 63 bits the core signs.
        if not (stamp.isascii() and stamp.isdigit() and len(stamp) <= 19) or int(stamp) >= 2**63:
            raise Problem(401, "unauthorized", "X-Timestamp must be unix seconds", code="unsigned")
        timestamp = int(stamp)
        try:
            walletlog.verify_request(
                key.secret,
                request.method,
                request_target(request),
                body,
                timestamp,
                signature,
                now=int(self.clock()),
                tolerance=self.timestamp_tolerance,
            )
        except SignatureError as e:
            if e.code == "timestamp_out_of_tolerance":
                raise Problem(
                    401,
                    "unauthorized",
                    f"X-Timestamp is more than {self.timestamp_tolerance} s from now",
                    code="stale",
                ) from None
            raise Problem(
                401, "unauthorized", "the signature does not match", code="bad_signature"
            ) from None
        bucket = self._buckets.get(key_id)
        if bucket is not None:
            wait = bucket.take()
            if wait > 0:
                raise Problem(
                    429,
                    "rate_limited",
                    f"this key may make {key.rate_per_s:g} requests per second",
                    headers={"Retry-After": str(max(1, math.ceil(wait)))},
                )
        return key

    def require(self, scope: str) -> Callable[..., Awaitable[ApiKey]]:
        """A dependency: the request is signed by a key with ``scope``, and
        a ``wallet_id`` path parameter, if any, is among its wallets."""
        if scope not in ("read", "ingest"):
            raise ValueError(f"unknown scope {scope!r}")
        return _Signed(self, scope)


# --- The routes --------------------------------------------------------------


def _positive(field: str, n: int) -> int:
    """A size of at least one byte."""
    n = walletlog._count(field, n)
    if n == 0:
        reason = "must be at least 1"
        raise ValidationError(f"invalid {field}: {reason}", field, reason)
    return n


def _namespace(key: ApiKey) -> str:
    # Length-prefixed: no two namespaces and keys make the same text.
    return f"{len(key.namespace)}:{key.namespace}:"


def _amount(d: Decimal) -> str:
    """Plain digits as the core writes amounts: `str` would give `1E-7`."""
    return format(d, "f")


def _event_json(
    event: walletlog.Event, key: ApiKey, namespaces: frozenset[str] = frozenset()
) -> dict[str, Any]:
    d = event.to_dict()
    d["occurred_at"] = walletlog._utc_text(event.occurred_at)
    d["created_at"] = walletlog._utc_text(event.created_at)
    ik = d["idempotency_key"]
    if ik is not None:
        d["idempotency_key"] = _shown_key(ik, _namespace(key), namespaces)
    return d


def _shown_key(stored: str, own: str, namespaces: frozenset[str]) -> str:
    """A stored idempotency key as its client sent it: without the router's
    namespace of the API key that stored it (the caller's own, or another
    configured key's, such as a reader's of several tenants). A key stored
    by another face is shown as it is."""
    digits, sep, _ = stored.partition(":")
    if not (sep and digits.isascii() and digits.isdigit()):
        return stored
    prefix = stored[: len(digits) + 2 + int(digits)] if len(digits) <= 3 else ""
    if prefix == own or prefix in namespaces:
        return stored[len(prefix) :]
    return stored


def _result_json(r: walletlog.IngestResult, key: ApiKey) -> dict[str, Any]:
    return {
        "created": r.created,
        "duplicate": r.duplicate,
        "matched_on": r.matched_on,
        "event": _event_json(r.event, key),
    }


#: The most requests the router ingests in one transaction.
INGEST_BATCH_MAX = 512

# (body, wallet_id, stored idempotency key, its shown prefix, fallback event id)
_HttpIngest = tuple[bytes, str, Optional[str], str, Optional[str]]


def _signed_request_event_id(namespace: str, request: Request, body: bytes) -> str:
    """The event id of an ingest keyed by its Idempotency-Key alone: a UUID
    v7 (as every generated id) of the request's signed time, its other bits
    a digest of the key (its namespace and id) and of what the signature
    covers (the method, the target, the time and the body). Not of the
    signature's text: another spelling of the same signature (its hex in
    capitals) must not make another event."""
    try:
        seconds = int(request.headers.get("x-timestamp", ""))
    except ValueError:
        seconds = 0
    millis = min(max(seconds, 0) * 1000, (1 << 48) - 1)
    signed = "\n".join(
        ["walletlog.http.v1", namespace, request.headers.get("x-key-id", "")]
        + [request.method.upper(), request_target(request)]
        + [str(seconds), hashlib.sha256(body).hexdigest()]
    )
    digest = hashlib.sha256(signed.encode()).digest()
    raw = bytearray(millis.to_bytes(6, "big") + digest[:10])
    raw[6] = 0x70 | (raw[6] & 0x0F)
    raw[8] = 0x80 | (raw[8] & 0x3F)
    return str(uuid.UUID(bytes=bytes(raw)))


class _IngestBatcher:
    """Group commit at the event loop: while one batch of ingest requests
    is being written, the requests that arrive wait, and go together as
    the next batch: one transaction, one commit, one trip off the loop,
    each request still answered on its own terms (a conflict or an invalid
    event refuses only its own request). A lone request goes at once."""

    def __init__(self, led: aio.Ledger) -> None:
        self._led = led
        self._pending: list[tuple[_HttpIngest, asyncio.Future[Any]]] = []
        self._busy = False

    async def ingest(self, request: _HttpIngest) -> tuple[bool, str]:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending.append((request, future))
        if not self._busy:
            self._dispatch()
        return await future

    def _dispatch(self) -> None:
        batch = self._pending[:INGEST_BATCH_MAX]
        del self._pending[:INGEST_BATCH_MAX]
        self._busy = True
        requests = [r for r, _ in batch]
        sync = self._led.sync
        try:
            # The native ledger is looked up on the worker thread: in a
            # forked child, that is where it opens itself again.
            written = self._led._run(lambda: sync._native.ingest_http_each(requests))
        except BaseException as e:
            self._busy = False
            for _, future in batch:
                if not future.done():
                    future.set_exception(e)
            raise
        written.add_done_callback(lambda done: self._answer(done, batch))

    def _answer(
        self,
        done: asyncio.Future[Any],
        batch: list[tuple[_HttpIngest, asyncio.Future[Any]]],
    ) -> None:
        self._busy = False
        failure = None if done.cancelled() else done.exception()
        for i, (_, future) in enumerate(batch):
            if future.done():
                continue  # its request went away
            if failure is not None:
                future.set_exception(failure)
                continue
            ok, value = done.result()[i]
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)
        if self._pending:
            self._dispatch()


def router(
    ledger: Union[walletlog.Ledger, aio.Ledger],
    keys: Mapping[str, ApiKey],
    *,
    prefix: str = "",
    max_body_bytes: int = MAX_BODY_BYTES,
    max_webhook_bytes: int = MAX_WEBHOOK_BYTES,
    timestamp_tolerance: int = TIMESTAMP_TOLERANCE,
    webhook_rate_per_s: Optional[float] = None,
    webhook_burst: Optional[int] = None,
    metrics: bool = True,
    clock: Callable[[], float] = time.time,
) -> APIRouter:
    """The walletlog routes over ``ledger`` (a ``walletlog.aio.Ledger``, or
    a ``walletlog.Ledger`` that the router wraps in one), for the clients
    in ``keys``. ``webhook_rate_per_s`` and ``webhook_burst`` give each
    provider's webhook route a token bucket of its own."""
    led = ledger if isinstance(ledger, aio.Ledger) else aio.Ledger(ledger)
    auth = Authenticator(
        keys,
        max_body_bytes=max_body_bytes,
        timestamp_tolerance=timestamp_tolerance,
        clock=clock,
    )
    # The namespaces this router's keys store idempotency keys under.
    namespaces = frozenset(_namespace(k) for k in auth.keys.values())
    max_webhook_bytes = _positive("max_webhook_bytes", max_webhook_bytes)
    hooks_limit = None
    if webhook_rate_per_s is None and webhook_burst is not None:
        reason = "needs webhook_rate_per_s: a burst is the size of a rate's bucket"
        raise ValidationError(f"invalid webhook_burst: {reason}", "webhook_burst", reason)
    if webhook_rate_per_s is not None:
        try:
            # The same rules as a key's rate limit, named as given here.
            hooks_limit = ApiKey(b"-" * 16, rate_per_s=webhook_rate_per_s, burst=webhook_burst)
        except ValidationError as e:
            field = f"webhook_{e.field}"
            reason = e.reason or str(e)
            raise type(e)(f"invalid {field}: {reason}", field, reason) from None
    hook_buckets: dict[str, TokenBucket] = {}
    r = APIRouter(prefix=prefix, route_class=_Route, tags=["walletlog"])
    batcher = _IngestBatcher(led)
    ingest_key = auth.require("ingest")
    read_key = auth.require("read")

    @r.post(
        "/api/v1/wallets/{wallet_id:walletlog_wallet_id}/events/ingest",
        status_code=201,
        summary="Ingest one event",
        responses={
            201: {"model": IngestBody, "description": "Stored"},
            200: {"model": IngestBody, "description": "A duplicate of a stored event"},
            **_errors(401, 403, 409, 413, 422, 429, 503),
        },
        openapi_extra={"requestBody": _INGEST_REQUEST, "parameters": [_IDEMPOTENCY_HEADER]},
    )
    async def ingest(wallet_id: str, request: Request, key: ApiKey = Depends(ingest_key)) -> Any:
        # `?idempotency_key=` is no way to give the key: refused, not ignored.
        _check_query(request, ())
        header = request.headers.get("idempotency-key")
        prefix = _namespace(key)
        idempotency_key = None
        if header is not None:
            # Starlette gives header values as latin-1: the key is UTF-8, as
            # one in the body is.
            try:
                header = header.encode("latin-1").decode("utf-8")
            except UnicodeError:
                raise _validation("idempotency_key", "Idempotency-Key is not UTF-8") from None
            room = _IDEMPOTENCY_KEY_CHARS_MAX - len(prefix)
            if len(header) > room:
                raise _validation(
                    "idempotency_key",
                    f"Idempotency-Key is {len(header)} characters long; "
                    f"at most {room} allowed for this key",
                )
            idempotency_key = prefix + header if header else ""
        # The header is not signed: a captured request replayed with another
        # one must not be a new event. When it is the only key, the event's
        # id is derived from the request's signature, so a replay is a
        # duplicate; a client's retry, signed anew, matches on the header.
        fallback = None
        if header:
            fallback = _signed_request_event_id(
                key.namespace, request, request.state.walletlog_body
            )
        # Parsed, validated, ingested and written back as JSON natively,
        # off the event loop and the GIL, with the requests concurrent to it.
        try:
            created, answer = await batcher.ingest(
                (request.state.walletlog_body, wallet_id, idempotency_key, prefix, fallback)
            )
        except ConflictError as e:
            raise await _conflict(e, key) from None
        return Response(answer, status_code=201 if created else 200, media_type="application/json")

    async def _conflict(e: ConflictError, key: ApiKey) -> Problem:
        existing = None
        if e.existing_event_id is not None:
            try:
                existing = await led.get(e.existing_event_id)
            except WalletLogError:
                existing = None
        matched = e.key or "key"
        shown = "Idempotency-Key" if matched == "idempotency_key" else matched
        if existing is None or not key.allows(existing.wallet_id):
            # Never reveal another scope's event.
            return Problem(
                409,
                "conflict",
                f"the {shown} matches an event outside this key's wallets",
                key=matched,
            )
        what = ", ".join(e.fields) if e.fields else "events"
        return Problem(
            409,
            "conflict",
            f"the {shown} matches a stored event with different {what}",
            key=matched,
            fields=list(e.fields) if e.fields else None,
            existing_event_id=e.existing_event_id,
        )

    @r.get(
        "/api/v1/wallets/{wallet_id:walletlog_wallet_id}/events",
        summary="One page of a wallet's history",
        responses={200: {"model": PageBody}, **_errors(401, 403, 413, 422, 429, 503)},
    )
    async def history(
        wallet_id: str,
        request: Request,
        key: ApiKey = Depends(read_key),
        limit: int = Query(100, ge=1, le=1000),
        cursor: Optional[str] = None,
        order: Literal["asc", "desc"] = "desc",
        event_type: Optional[list[walletlog.EventType]] = Query(None),
        currency: Optional[str] = None,
        since: Optional[str] = Query(None, description="RFC 3339, inclusive"),
        until: Optional[str] = Query(None, description="RFC 3339, exclusive"),
    ) -> Any:
        _check_query(request, _HISTORY_QUERY, repeatable=("event_type",))
        # Errors, a storage error's 503 included, are answered by `_Route`.
        page = await led.list(
            wallet_id,
            limit=limit,
            cursor=cursor,
            order=order,
            event_types=event_type,
            since=since,
            until=until,
            currency=currency,
        )
        return JSONResponse(
            {
                "events": [_event_json(e, key, namespaces) for e in page.events],
                "next_cursor": page.next_cursor,
            }
        )

    @r.get(
        "/api/v1/wallets/{wallet_id:walletlog_wallet_id}/balance",
        summary="A wallet's balance per currency, now or as of a time",
        responses={200: {"model": BalancesBody}, **_errors(401, 403, 413, 422, 429, 503)},
    )
    async def balance(
        wallet_id: str,
        request: Request,
        key: ApiKey = Depends(read_key),
        as_of: Optional[str] = Query(None, description="RFC 3339"),
    ) -> Any:
        _check_query(request, ("as_of",))
        balances = await led.balance(wallet_id, as_of=as_of)
        return JSONResponse(
            {
                "wallet_id": wallet_id,
                "balances": {
                    c: {
                        "available": _amount(b.available),
                        "held": _amount(b.held),
                        "total": _amount(b.total),
                        "event_count": b.event_count,
                        "last_occurred_at": None
                        if b.last_occurred_at is None
                        else walletlog._utc_text(b.last_occurred_at),
                    }
                    for c, b in balances.items()
                },
            }
        )

    @r.post(
        "/api/v1/webhooks/{provider}",
        summary="A provider's webhook, authenticated by the provider's own signature",
        responses={200: {"model": WebhookBody}, **_errors(401, 404, 409, 413, 422, 429, 503)},
        openapi_extra={
            "requestBody": {
                "required": False,
                "content": {"application/octet-stream": {"schema": {"type": "string"}}},
            }
        },
    )
    async def webhook(provider: str, request: Request) -> Any:
        if hooks_limit is not None:
            # A bucket per installed provider: a sender cannot make more.
            name = provider if provider in hook_buckets or led.sync.plugin(provider) else "-"
            bucket = hook_buckets.get(name)
            if bucket is None:
                assert hooks_limit.rate_per_s is not None and hooks_limit.burst is not None
                bucket = hook_buckets.setdefault(
                    name, TokenBucket(hooks_limit.rate_per_s, hooks_limit.burst)
                )
            wait = bucket.take()
            if wait > 0:
                raise Problem(
                    429,
                    "rate_limited",
                    f"webhooks of a provider are limited to {hooks_limit.rate_per_s:g} per second",
                    headers={"Retry-After": str(max(1, math.ceil(wait)))},
                )
        body = await read_body(request, max_webhook_bytes)
        results = await led.ingest_webhook(
            provider, list(request.headers.items()), body, url=str(request.url)
        )
        webhook_key = _WEBHOOK_VIEW
        return JSONResponse({"results": [_result_json(x, webhook_key) for x in results]})

    if metrics:

        @r.get(
            "/metrics",
            summary="Prometheus metrics (OpenMetrics text)",
            response_class=Response,
            responses={
                200: {"content": {OPENMETRICS: {"schema": {"type": "string"}}}},
                **_errors(503),
            },
        )
        async def metrics_route() -> Any:
            return Response(await led.metrics(), media_type=OPENMETRICS)

    @r.head("/healthz", include_in_schema=False)
    async def healthz_head() -> Any:
        # For load balancers that probe with HEAD: the same check, no body.
        await led.get(uuid.UUID(int=0))
        return Response(status_code=200)

    @r.get(
        "/healthz",
        summary="Whether the ledger answers a read",
        responses={200: {"model": HealthBody}, **_errors(503)},
    )
    async def healthz() -> Any:
        await led.get(uuid.UUID(int=0))
        return JSONResponse({"status": "ok"})

    return r


# Webhook events carry no Idempotency-Key of a client: shown as stored.
_WEBHOOK_VIEW = ApiKey(b"-" * 16, namespace="(webhooks)")


def install_error_handlers(app: FastAPI) -> None:
    """Makes the framework's own errors (an unknown route, a wrong method,
    a parameter that fails its declaration) and :class:`Problem` raised
    from routes of your own take the one error shape."""

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, e: StarletteHTTPException) -> Response:
        if isinstance(e, Problem):
            return e.response()
        kind = {404: "not_found", 405: "method_not_allowed"}.get(e.status_code, "http")
        return JSONResponse(
            {"error": kind, "message": str(e.detail)},
            status_code=e.status_code,
            headers=getattr(e, "headers", None),
        )

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, e: RequestValidationError) -> Response:
        return _validation_problem(e).response()


def create_app(
    ledger: Union[walletlog.Ledger, aio.Ledger],
    keys: Mapping[str, ApiKey],
    **options: Any,
) -> FastAPI:
    """A FastAPI app serving :func:`router` (same options), with
    :func:`install_error_handlers`."""
    app = FastAPI(title="walletlog", version=walletlog.__version__)
    app.include_router(router(ledger, keys, **options))
    install_error_handlers(app)
    return app


__all__ = [
    "MAX_BODY_BYTES",
    "MAX_WEBHOOK_BYTES",
    "TIMESTAMP_TOLERANCE",
    "ApiKey",
    "Authenticator",
    "Problem",
    "create_app",
    "install_error_handlers",
    "read_body",
    "request_target",
    "router",
]
