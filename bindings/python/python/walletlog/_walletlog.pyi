"""Type stubs of the native layer. Checked against the built module by mypy.stubtest."""

from typing import Any, Optional, Union, final

__all__ = [
    "NativeEvent",
    "NativeLedger",
    "__version__",
    "ed25519_keypair",
    "sign_request",
    "verify_request",
]

__version__: str

# The class has a method named `list`, which shadows the builtin inside it.
_List = list

# (event_id, wallet_id, provider, event_type, amount, currency,
#  provider_event_id, idempotency_key, metadata_json, occurred_at_us, created_at_us, sequence)
_EventTuple = tuple[
    str, str, str, str, str, str, Optional[str], Optional[str], str, int, int, tuple[int, bool]
]

@final
class NativeEvent:
    @property
    def sequence(self) -> int: ...
    def fields(self) -> _EventTuple: ...

# (created, matched_on, event)
_ResultTuple = tuple[bool, Optional[str], NativeEvent]
# (wallet_id, provider, event_type, amount, currency, occurred_at,
#  provider_event_id, idempotency_key, metadata_json, event_id)
_EventFields = tuple[
    str, str, str, str, str, str, Optional[str], Optional[str], Optional[str], Optional[str]
]

@final
class NativeLedger:
    def __new__(
        cls,
        path: str,
        durability: str,
        audit_key: Optional[bytes],
        busy_timeout_ms: Optional[int],
        plugin_cache_dir: Optional[str],
        pool_size: Optional[int],
        pool_timeout_ms: Optional[int],
        group_max_events: Optional[int],
        group_max_wait_us: Optional[int],
        plugin_limits: _List[tuple[str, int]],
        inbox_limits: _List[tuple[str, int]],
    ) -> NativeLedger: ...
    def close(self) -> None: ...
    def ingest(self, fields: _EventFields) -> _ResultTuple: ...
    def ingest_many(self, items: _List[_EventFields]) -> _List[_ResultTuple]: ...
    def get(self, event_id: str) -> Optional[_EventTuple]: ...
    def get_by_provider_event_id(
        self, provider: str, provider_event_id: str
    ) -> Optional[_EventTuple]: ...
    def get_by_idempotency_key(self, key: str) -> Optional[_EventTuple]: ...
    def list(
        self,
        wallet_id: str,
        limit: int,
        cursor: Optional[str],
        order: str,
        event_types: Optional[_List[str]],
        since: Optional[Union[int, str]],
        until: Optional[Union[int, str]],
        currency: Optional[str],
    ) -> tuple[_List[_EventTuple], Optional[str]]: ...
    def balance(
        self, wallet_id: str, as_of: Optional[Union[int, str]]
    ) -> _List[tuple[str, str, str, str, int, Optional[int]]]: ...
    def changes_since(self, sequence: int, limit: int) -> _List[_EventTuple]: ...
    def audit_log(
        self, sequence: int, limit: int
    ) -> _List[
        tuple[
            int, int, str, str, int, Optional[str], str, str, Optional[str], str, str, Optional[str]
        ]
    ]: ...
    def verify_audit(
        self, checkpoints: Optional[_List[str]], verifying_key: Optional[bytes]
    ) -> tuple[bool, int, int, Optional[int], Optional[int], Optional[str], Optional[str]]: ...
    def audit_checkpoint(self, signing_key: bytes) -> str: ...
    def opened_before_fork(self) -> bool: ...
    def ingest_http_each(
        self, requests: _List[tuple[bytes, str, Optional[str], str, Optional[str]]]
    ) -> _List[tuple[bool, Any]]: ...
    def plugin(self, provider: str) -> Optional[tuple[str, str, str]]: ...
    def metrics(self) -> str: ...
    def install_plugin(self, wasm: bytes) -> tuple[str, str, str]: ...
    def set_webhook_secret(self, provider: str, secret: str) -> None: ...
    def allow_unsigned(self, provider: str) -> None: ...
    def ingest_webhook(
        self,
        provider: str,
        headers: _List[tuple[str, str]],
        body: bytes,
        url: Optional[str],
    ) -> _List[_ResultTuple]: ...
    def inbox(
        self,
        provider: Optional[str],
        verdict: Optional[str],
        since: Optional[Union[int, str]],
        until: Optional[Union[int, str]],
        limit: int,
        cursor: Optional[str],
        order: str,
    ) -> tuple[
        _List[tuple[str, str, int, str, Optional[str], bytes, str, _List[str], int]],
        Optional[str],
    ]: ...
    def inbox_delivery(
        self, delivery_id: str
    ) -> Optional[tuple[_List[tuple[str, str]], Optional[bytes]]]: ...
    def replay(
        self,
        delivery_ids: Optional[_List[str]],
        provider: Optional[str],
        verdict: Optional[str],
    ) -> tuple[int, int, int, int, int]: ...

def sign_request(secret: bytes, method: str, target: str, body: bytes, timestamp: int) -> str: ...
def ed25519_keypair() -> tuple[bytes, bytes]: ...
def verify_request(
    secret: bytes,
    method: str,
    target: str,
    body: bytes,
    timestamp: int,
    signature: str,
    now: int,
    tolerance_secs: int,
) -> None: ...
