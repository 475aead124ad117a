//! PostgreSQL errors as walletlog's storage errors.
//!
//! The kind says what a caller can do about it: `unavailable` (the server
//! could not be reached or the connection was lost: retry later; an ingest
//! retried is deduplicated), `busy` (a lock or the pool stayed taken, or the
//! server refused to serialize: retry), `io` (the server could not write:
//! disk full, read-only, no permission), `corrupt` (damaged data).

use tokio_postgres::error::SqlState;

use crate::domain::{Error, StorageError, StorageErrorKind};

pub(super) fn storage(kind: StorageErrorKind, message: impl Into<String>) -> Error {
    Error::Storage(StorageError::new(kind, message))
}

/// The kind of a PostgreSQL error.
pub(super) fn kind_of(e: &tokio_postgres::Error) -> StorageErrorKind {
    if e.is_closed() {
        return StorageErrorKind::Unavailable;
    }
    let Some(code) = e.code() else {
        // No SQLSTATE: the client's own failure. The socket's (refused,
        // reset, timed out) means the server is out of reach; a value that
        // would not convert is something else.
        let socket = std::error::Error::source(e).is_some_and(|s| s.is::<std::io::Error>());
        let text = e.to_string();
        let unreachable = socket
            || text.starts_with("error connecting to server")
            || text.starts_with("timeout waiting for server")
            || text.starts_with("error communicating with the server");
        return if unreachable {
            StorageErrorKind::Unavailable
        } else {
            StorageErrorKind::Other
        };
    };
    let is = |states: &[SqlState]| states.contains(code);
    match &code.code()[..2] {
        // connection_exception; the server shutting down, starting, full.
        "08" => StorageErrorKind::Unavailable,
        _ if is(&[
            SqlState::ADMIN_SHUTDOWN,
            SqlState::CRASH_SHUTDOWN,
            SqlState::CANNOT_CONNECT_NOW,
            SqlState::TOO_MANY_CONNECTIONS,
        ]) =>
        {
            StorageErrorKind::Unavailable
        }
        // serialization_failure, deadlock_detected; lock_not_available.
        "40" | "55" => StorageErrorKind::Busy,
        // insufficient_resources (disk full, out of memory), system errors.
        "53" | "58" => StorageErrorKind::Io,
        // data_corrupted, index_corrupted.
        "XX" if *code != SqlState::INTERNAL_ERROR => StorageErrorKind::Corrupt,
        // statement_timeout or lock_timeout ran out.
        _ if is(&[SqlState::QUERY_CANCELED]) => StorageErrorKind::Busy,
        _ if is(&[
            SqlState::INSUFFICIENT_PRIVILEGE,
            SqlState::READ_ONLY_SQL_TRANSACTION,
        ]) =>
        {
            StorageErrorKind::Io
        }
        _ => StorageErrorKind::Other,
    }
}

/// The message of a PostgreSQL error: the server's text with its SQLSTATE,
/// or the client's.
fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => {
            let mut text = format!(
                "{}: {} (SQLSTATE {})",
                db.severity(),
                db.message(),
                db.code().code()
            );
            if let Some(detail) = db.detail() {
                text.push_str(": ");
                text.push_str(detail);
            }
            text
        }
        None => {
            let mut text = e.to_string();
            let mut source = std::error::Error::source(e);
            while let Some(s) = source {
                text.push_str(": ");
                text.push_str(&s.to_string());
                source = s.source();
            }
            text
        }
    }
}

pub(super) fn map_err(e: tokio_postgres::Error) -> Error {
    let kind = kind_of(&e);
    let text = describe(&e);
    let message = match kind {
        StorageErrorKind::Unavailable => format!(
            "the PostgreSQL server is unavailable ({text}); nothing of this call was stored. \
             Retry once it is back: an ingest retried is deduplicated"
        ),
        _ => text,
    };
    storage(kind, message)
}

/// No answer to a commit that was sent (a `COMMIT`, or a one-statement
/// write the server commits itself): the server may or may not have
/// committed; only a retry can tell, and it is safe.
pub(super) fn ambiguous(e: tokio_postgres::Error) -> Error {
    storage(
        StorageErrorKind::Unavailable,
        format!(
            "the connection to PostgreSQL was lost while committing ({}); the transaction \
             may or may not have been committed. Retrying the call is safe: an event \
             already stored is answered as a duplicate",
            describe(&e)
        ),
    )
}

/// A failed `COMMIT`: refused by the server (not committed), or unanswered
/// (see [`ambiguous`]).
pub(super) fn commit_error(e: tokio_postgres::Error) -> Error {
    if e.as_db_error().is_some() {
        return map_err(e);
    }
    ambiguous(e)
}
