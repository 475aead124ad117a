//! The one error taxonomy of walletlog. Every binding maps [`ErrorKind`] 1:1.

use std::fmt;

use super::values::{EventId, MatchedKey};

/// Every failure walletlog reports. Match on [`Error::kind`] for the category.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The input broke a rule; nothing was stored.
    #[error(transparent)]
    Validation(#[from] ValidationError),
    /// The input's keys match stored history that says something else; nothing was stored.
    #[error(transparent)]
    Conflict(#[from] ConflictError),
    /// A lookup that must find something found nothing.
    #[error("not found: {what}")]
    NotFound { what: String },
    /// Storage failed: I/O, a corrupt or foreign file, a schema too new, a lock held too long.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// The category of an [`Error`], stable across bindings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    Validation,
    Conflict,
    NotFound,
    Storage,
}

impl Error {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Validation(_) => ErrorKind::Validation,
            Error::Conflict(_) => ErrorKind::Conflict,
            Error::NotFound { .. } => ErrorKind::NotFound,
            Error::Storage(_) => ErrorKind::Storage,
        }
    }

    /// Attach the position of the offending item in a batch.
    pub(crate) fn at_index(self, index: usize) -> Self {
        match self {
            Error::Validation(e) => Error::Validation(e.at_index(index)),
            Error::Conflict(mut e) => {
                e.index = Some(index);
                Error::Conflict(e)
            }
            other => other,
        }
    }
}

/// A rule breach, naming the field and the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationError {
    /// Position in a batch, when the input was one.
    pub index: Option<usize>,
    /// The field that broke a rule, such as `amount` or `limit`.
    pub field: &'static str,
    /// Why, in words a caller can show.
    pub reason: String,
}

impl ValidationError {
    pub fn new(field: &'static str, reason: impl Into<String>) -> Self {
        ValidationError {
            index: None,
            field,
            reason: reason.into(),
        }
    }

    pub fn at_index(mut self, index: usize) -> Self {
        self.index = Some(index);
        self
    }
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.index {
            Some(i) => write!(f, "invalid item {i}: {}: {}", self.field, self.reason),
            None => write!(f, "invalid {}: {}", self.field, self.reason),
        }
    }
}

impl std::error::Error for ValidationError {}

/// A replay whose keys match stored history that disagrees with it
/// (TigerBeetle's `exists_with_different_*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConflictError {
    /// Position in a batch, when the input was one.
    pub index: Option<usize>,
    /// The key that matched.
    pub key: MatchedKey,
    /// The stored event the key matched.
    pub existing_event_id: EventId,
    /// What disagrees.
    pub reason: ConflictReason,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConflictReason {
    /// The matched event's money fields differ from the input's.
    DifferentFields(Vec<&'static str>),
    /// Another of the input's keys matched a different stored event.
    KeysMatchDifferentEvents {
        other_key: MatchedKey,
        other_event_id: EventId,
    },
}

impl fmt::Display for ConflictError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(i) = self.index {
            write!(f, "item {i}: ")?;
        }
        match &self.reason {
            ConflictReason::DifferentFields(fields) => write!(
                f,
                "conflict on {}: stored event {} exists with different {}",
                self.key,
                self.existing_event_id,
                fields.join(", ")
            ),
            ConflictReason::KeysMatchDifferentEvents {
                other_key,
                other_event_id,
            } => write!(
                f,
                "conflict: {} matches stored event {} but {} matches stored event {}",
                self.key, self.existing_event_id, other_key, other_event_id
            ),
        }
    }
}

impl std::error::Error for ConflictError {}

/// A storage failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageError {
    pub kind: StorageErrorKind,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StorageErrorKind {
    /// Reading or writing the file failed.
    Io,
    /// Another writer held the lock past the busy timeout.
    Busy,
    /// The file is damaged or is not a walletlog database.
    Corrupt,
    /// The file was written by a newer walletlog; opening it would downgrade it.
    SchemaTooNew,
    /// The ledger's audit key does not match the one configured.
    AuditKeyMismatch,
    /// The ledger was closed.
    Closed,
    /// Anything else the storage engine reported.
    Other,
}

impl StorageError {
    pub fn new(kind: StorageErrorKind, message: impl Into<String>) -> Self {
        StorageError {
            kind,
            message: message.into(),
        }
    }
}

impl fmt::Display for StorageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "storage error ({:?}): {}", self.kind, self.message)
    }
}

impl std::error::Error for StorageError {}

pub type Result<T, E = Error> = std::result::Result<T, E>;
