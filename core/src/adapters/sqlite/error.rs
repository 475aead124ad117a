//! SQLite errors as walletlog's storage errors.

use std::path::Path;

use crate::domain::{Error, StorageError, StorageErrorKind};

pub(super) fn storage(kind: StorageErrorKind, message: impl Into<String>) -> Error {
    Error::Storage(StorageError::new(kind, message))
}

pub(super) fn open_error(path: &Path, e: rusqlite::Error) -> Error {
    match map_err(e) {
        Error::Storage(s) => storage(
            s.kind,
            format!("cannot open {}: {}", path.display(), s.message),
        ),
        other => other,
    }
}

pub(super) fn map_err(e: rusqlite::Error) -> Error {
    use rusqlite::ErrorCode as C;
    let kind = match &e {
        rusqlite::Error::SqliteFailure(f, _) => match f.code {
            C::DatabaseBusy | C::DatabaseLocked => StorageErrorKind::Busy,
            C::NotADatabase | C::DatabaseCorrupt => StorageErrorKind::Corrupt,
            C::CannotOpen
            | C::SystemIoFailure
            | C::DiskFull
            | C::ReadOnly
            | C::PermissionDenied => StorageErrorKind::Io,
            _ => StorageErrorKind::Other,
        },
        _ => StorageErrorKind::Other,
    };
    if kind == StorageErrorKind::Busy {
        return storage(
            kind,
            format!(
                "{e}: another writer held the ledger past the busy timeout \
                 (busy_timeout, 30 s by default; raise it, or shorten the other writer's transactions)"
            ),
        );
    }
    storage(kind, e.to_string())
}
