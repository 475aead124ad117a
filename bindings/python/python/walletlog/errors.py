"""The exception hierarchy: every walletlog error is a WalletLogError.

Every exception carries the same attributes, ``None`` where they do not
apply (the JSON error shape of the C library and the CLI, by the same
names): ``message``, ``field``, ``reason``, ``index``, ``code``, ``key``,
``fields`` and ``existing_event_id``.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence


class WalletLogError(Exception):
    """Base class of every error walletlog raises."""

    def __init__(
        self,
        message: str,
        field: Optional[str] = None,
        reason: Optional[str] = None,
        index: Optional[int] = None,
        code: Optional[str] = None,
        key: Optional[str] = None,
        fields: Optional[Sequence[str]] = None,
        existing_event_id: Optional[str] = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        #: The field a validation error names, or the key a conflict matched.
        self.field = field
        #: Why a validation error refused its field.
        self.reason = reason
        #: The offending item's position in a batch.
        self.index = index
        #: The machine-readable detail of the kind: a storage kind (``busy``),
        #: a plugin kind (``out_of_fuel``), a signature problem (``mismatch``),
        #: a conflict's (``different_fields``).
        self.code = code
        #: The key a conflict matched.
        self.key = key
        #: The money fields a conflict found different.
        self.fields = None if fields is None else tuple(fields)
        #: The stored event a conflict matched.
        self.existing_event_id = existing_event_id

    def __reduce__(self) -> tuple[Any, ...]:
        return (
            type(self),
            (
                self.message,
                self.field,
                self.reason,
                self.index,
                self.code,
                self.key,
                self.fields,
                self.existing_event_id,
            ),
        )


class ValidationError(WalletLogError, ValueError):
    """An input broke a rule; ``field`` names it, ``reason`` says why. Nothing was stored."""


class InvalidTypeError(ValidationError, TypeError):
    """An argument of the wrong Python type (a float or bool amount, a number
    for a string...): a ``TypeError``, and a ``ValidationError`` so that one
    handler catches every refusal."""


class ConflictError(WalletLogError):
    """A replay's keys match stored history that disagrees. ``key`` (also
    ``field``) is the key matched, ``fields`` the money fields that differ,
    ``existing_event_id`` the stored event."""


class NotFoundError(WalletLogError, KeyError):
    """A lookup that must find something found nothing."""

    def __str__(self) -> str:
        return self.message


class SignatureError(WalletLogError):
    """A webhook's signature was missing, malformed, wrong or stale; ``code`` says which."""


class PluginError(WalletLogError):
    """A plugin was refused or failed; ``code`` (also ``kind``) is ``out_of_fuel``, ``trap``..."""

    @property
    def kind(self) -> Optional[str]:
        return self.code


class StorageError(WalletLogError):
    """Storage failed: I/O, a corrupt or foreign file, a schema too new, a
    closed ledger; ``code`` is ``io``, ``busy``, ``corrupt``, ``schema_too_new``,
    ``audit_key_mismatch``, ``closed``, ``unavailable`` or ``other``."""


__all__ = [
    "ConflictError",
    "InvalidTypeError",
    "NotFoundError",
    "PluginError",
    "SignatureError",
    "StorageError",
    "ValidationError",
    "WalletLogError",
]
