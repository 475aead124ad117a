//! The domain: the entity, its value types, validation, balances, audit
//! records and errors.
//!
//! Architecture invariant: this module knows nothing of storage engines,
//! sandboxes or bindings. It names no rusqlite, wasmtime or pyo3 type.

mod audit;
mod balance;
mod error;
pub(crate) use error::quoted;
mod event;
mod outcome;
mod query;
mod values;

pub use audit::{
    AuditAction, AuditChain, AuditProblem, AuditProblemKind, AuditRecord, AuditReport, ACTOR_API,
    GENESIS_HASH,
};
pub use balance::{bucket_of, Balance, Money, Overflow, Totals, BUCKET_MICROS};
pub use error::{
    ConflictError, ConflictReason, Error, ErrorKind, PluginError, PluginErrorKind, Result,
    SignatureError, StorageError, StorageErrorKind, ValidationError,
};
pub use event::{NewEvent, RawEvent, WalletTransactionEvent};
pub use outcome::{IngestOutcome, IngestResult};
pub use query::{
    ListQuery, Order, Page, Position, CHANGES_MAX, PAGE_EVENTS_DEFAULT, PAGE_EVENTS_MAX,
};
pub use values::{
    Amount, Currency, EventId, EventType, IdempotencyKey, MatchedKey, Metadata, Provider,
    ProviderEventId, Timestamp, WalletId, AMOUNT_FRACTION_DIGITS_MAX,
    AMOUNT_SIGNIFICANT_DIGITS_MAX, KEY_CHARS_MAX, METADATA_BYTES_MAX, PROVIDER_CHARS_MAX,
    WALLET_ID_CHARS_MAX,
};
