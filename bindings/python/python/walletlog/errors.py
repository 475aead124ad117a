"""The exception hierarchy: every walletlog error is a WalletLogError."""

from __future__ import annotations

from typing import Optional


class WalletLogError(Exception):
    """Base class of every error walletlog raises."""

    def __init__(
        self,
        message: str,
        field: Optional[str] = None,
        reason: Optional[str] = None,
        index: Optional[int] = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.reason = reason
        self.index = index


class ValidationError(WalletLogError, ValueError):
    """An input broke a rule; ``field`` names it, ``reason`` says why. Nothing was stored."""


class ConflictError(WalletLogError):
    """A replay's keys match stored history that disagrees; ``field`` is the key matched."""

    @property
    def key(self) -> Optional[str]:
        return self.field


class NotFoundError(WalletLogError, KeyError):
    """A lookup that must find something found nothing."""

    def __str__(self) -> str:
        return self.message


class SignatureError(WalletLogError):
    """A webhook's signature was missing, malformed, wrong or stale."""


class PluginError(WalletLogError):
    """A plugin was refused or failed; ``field`` is the kind (``out_of_fuel``, ``trap``, ...)."""

    @property
    def kind(self) -> Optional[str]:
        return self.field


class StorageError(WalletLogError):
    """Storage failed: I/O, a corrupt or foreign file, a schema too new, a closed ledger."""


__all__ = [
    "ConflictError",
    "NotFoundError",
    "PluginError",
    "SignatureError",
    "StorageError",
    "ValidationError",
    "WalletLogError",
]
