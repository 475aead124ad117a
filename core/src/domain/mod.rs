//! The domain: the entity, its value types, raw inputs and their
//! validation, balances and rollups, audit records and errors.
//!
//! Architecture invariant: this module knows nothing of storage engines,
//! sandboxes, transports or bindings. It names no rusqlite, postgres,
//! wasmtime or pyo3 type (the tidy test in `core/tests/it/tidy.rs` checks).

mod audit;
mod balance;
mod checkpoint;
mod error;
mod event;
mod inbox;
mod outcome;
mod query;
mod raw;
mod rollup;
mod values;

pub use audit::{
    AuditAction, AuditChain, AuditKey, AuditProblem, AuditProblemKind, AuditRecord, AuditReport,
    ACTOR_API, GENESIS_HASH,
};
pub use balance::{Balance, Money, Overflow, Totals};
pub use checkpoint::{
    Checkpoint, LedgerId, SignedCheckpoint, SigningKey, VerifyingKey, CHECKPOINT_BYTES_MAX,
    CHECKPOINT_MAGIC,
};
pub use error::{
    ConflictError, ConflictReason, Error, ErrorKind, PluginError, PluginErrorKind, Result,
    SignatureError, StorageError, StorageErrorKind, ValidationError,
};
pub use event::{NewEvent, WalletTransactionEvent};
pub use inbox::{
    AttemptKind, Delivery, DeliveryAttempt, DeliveryId, InboxPage, InboxQuery, InboxView,
    ReplayReport, ReplaySelection, Verdict, DELIVERY_ATTEMPTS_KEPT, DELIVERY_REASON_CHARS_MAX,
};
pub use outcome::{IngestOutcome, IngestResult};
pub use query::{ListQuery, Order, Page, Position, QueryView};
pub use raw::{RawEvent, RawInboxQuery, RawListQuery, RawReplaySelection, RawTime};
pub use rollup::{
    Folded, LoadRollup, RollupBucket, RollupFold, RollupKey, RollupRow, BUCKET_MICROS,
};
pub use values::{
    Amount, Currency, EventId, EventType, IdempotencyKey, MatchedKey, Metadata, Provider,
    ProviderEventId, Timestamp, WalletId,
};
