"""API keys of the HTTP face: who may call, on which wallets, for what,
and how often. Pure Python, no web framework: ``walletlog.fastapi`` uses
them, and so may any other framework."""

from __future__ import annotations

import math
import threading
import time
import warnings
from collections.abc import Iterable
from typing import Optional, Union

from .errors import ValidationError

#: What a key may do.
SCOPES = ("read", "ingest")

#: The longest idempotency-key namespace: the stored key is
#: `<len>:<namespace>:<header>`, at most 255 characters, so this leaves
#: room for headers of at least 150.
NAMESPACE_CHARS_MAX = 100


#: Below this many bytes a secret is accepted with an ``InsecureKeyWarning``.
SECRET_BYTES_MIN = 16


class InsecureKeyWarning(UserWarning):
    """An ``ApiKey`` secret short enough to guess: fine for a test, not for
    production."""


def _invalid(field: str, reason: str) -> ValidationError:
    return ValidationError(f"invalid {field}: {reason}", field, reason)


class ApiKey:
    """One client's key: its HMAC ``secret``, the ``wallets`` it may touch
    and the ``scopes`` it has (``"read"``, ``"ingest"``).

    ``wallets`` is ``"*"`` (every wallet), an exact wallet id, or a prefix
    ending in ``:`` or ``*`` (``"tenant42:"`` matches ``tenant42:alice``;
    ``"tenant42*"`` matches every id starting with ``tenant42``), or a list
    of those. Keys with the same ``wallets`` share one idempotency-key
    namespace, so a client keeps its idempotency keys across a rotation;
    ``namespace`` names another.

    ``rate_per_s`` and ``burst`` give the key a token bucket: ``burst``
    requests at once, refilled at ``rate_per_s`` (``burst`` defaults to
    ``max(1, ceil(rate_per_s))``). Past it, the router answers 429 with
    ``Retry-After``. The bucket is per process.

    The secret never appears in ``repr``, errors or logs.
    """

    __slots__ = ("_secret", "wallets", "scopes", "rate_per_s", "burst", "namespace", "_patterns")

    def __init__(
        self,
        secret: Union[bytes, str],
        wallets: Union[str, Iterable[str]] = "*",
        scopes: Iterable[str] = SCOPES,
        *,
        rate_per_s: Optional[float] = None,
        burst: Optional[int] = None,
        namespace: Optional[str] = None,
    ) -> None:
        if isinstance(secret, str):
            secret = secret.encode()
        if not isinstance(secret, (bytes, bytearray)) or not secret:
            raise _invalid("secret", "must be non-empty bytes or text")
        if len(secret) < SECRET_BYTES_MIN:
            warnings.warn(
                f"an ApiKey secret of {len(secret)} bytes can be guessed; "
                f"use at least {SECRET_BYTES_MIN} random bytes (secrets.token_bytes(32))",
                InsecureKeyWarning,
                stacklevel=2,
            )
        self._secret = bytes(secret)
        patterns = (wallets,) if isinstance(wallets, str) else tuple(wallets)
        if not patterns or not all(isinstance(p, str) and p for p in patterns):
            raise _invalid("wallets", 'must be "*", a wallet id or a prefix, or a list of them')
        self.wallets: tuple[str, ...] = patterns
        self._patterns = tuple(
            (p, "prefix")
            if p.endswith(":")
            else (p[:-1], "prefix")
            if p.endswith("*")
            else (p, "exact")
            for p in patterns
        )
        scopes = tuple(scopes) if not isinstance(scopes, str) else (scopes,)
        unknown = [s for s in scopes if s not in SCOPES]
        if unknown or not scopes:
            raise _invalid(
                "scopes", f"must be some of {', '.join(SCOPES)}, not {unknown or 'none'}"
            )
        self.scopes: frozenset[str] = frozenset(scopes)
        if rate_per_s is not None and (
            isinstance(rate_per_s, bool)
            or not isinstance(rate_per_s, (int, float))
            or not rate_per_s > 0
        ):
            raise _invalid("rate_per_s", "must be a number of requests per second above 0")
        if burst is not None and (
            isinstance(burst, bool) or not isinstance(burst, int) or burst < 1
        ):
            raise _invalid("burst", "must be an int of at least 1")
        if burst is not None and rate_per_s is None:
            raise _invalid("burst", "needs rate_per_s")
        self.rate_per_s = None if rate_per_s is None else float(rate_per_s)
        self.burst = (
            None
            if rate_per_s is None
            else burst
            if burst is not None
            else max(1, math.ceil(rate_per_s))
        )
        ns = namespace if namespace is not None else ",".join(sorted(patterns))
        if not isinstance(ns, str) or not 0 < len(ns) <= NAMESPACE_CHARS_MAX:
            raise _invalid(
                "namespace",
                f"must be 1 to {NAMESPACE_CHARS_MAX} characters (give a shorter namespace= "
                "for a key of many wallets)",
            )
        if any(c < " " or "\x7f" <= c <= "\x9f" for c in ns):
            raise _invalid("namespace", "must not contain control characters")
        self.namespace = ns

    @property
    def secret(self) -> bytes:
        return self._secret

    def allows(self, wallet_id: str) -> bool:
        """Whether this key may touch ``wallet_id``."""
        for p, kind in self._patterns:
            if p == "" and kind == "prefix":
                return True
            if kind == "exact" and wallet_id == p:
                return True
            if kind == "prefix" and wallet_id.startswith(p):
                return True
        return False

    def __repr__(self) -> str:
        limit = (
            "" if self.rate_per_s is None else f", rate_per_s={self.rate_per_s}, burst={self.burst}"
        )
        return (
            f"ApiKey(secret=<{len(self._secret)} bytes>, wallets={self.wallets!r}, "
            f"scopes={sorted(self.scopes)!r}{limit})"
        )


class TokenBucket:
    """``burst`` tokens, refilled at ``rate_per_s``; thread-safe."""

    __slots__ = ("rate", "burst", "_tokens", "_at", "_lock")

    def __init__(self, rate_per_s: float, burst: int) -> None:
        self.rate = rate_per_s
        self.burst = burst
        self._tokens = float(burst)
        self._at = time.monotonic()
        self._lock = threading.Lock()

    def take(self) -> float:
        """0 when a request may go now; otherwise the seconds until it may."""
        with self._lock:
            now = time.monotonic()
            self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
            self._at = now
            if self._tokens >= 1:
                self._tokens -= 1
                return 0.0
            return (1 - self._tokens) / self.rate
