//! The public entry point: a [`Ledger`] over any storage adapter.

use std::fmt;
use std::path::Path;
use std::time::Duration;

use crate::adapters::memory::MemoryStorage;
use crate::adapters::sqlite::{Durability, SqliteOptions, SqliteStorage};
use crate::domain::{
    AuditRecord, AuditReport, Balance, EventId, IdempotencyKey, IngestResult, ListQuery, NewEvent,
    Page, Provider, ProviderEventId, Result, Timestamp, WalletId, WalletTransactionEvent,
};
use crate::ports::Storage;
use crate::service::{IngestContext, Service};

/// How a ledger is opened.
#[derive(Clone, Default)]
pub struct Options {
    /// SQLite only: fsync at every commit (`Full`, the default) or not (`Normal`).
    pub durability: Durability,
    /// SQLite only: how long a write waits for another writer. Default 30 s.
    pub busy_timeout: Option<Duration>,
    /// Chain the audit trail with HMAC-SHA256 under this key instead of plain
    /// SHA-256, so that nobody without the key can rewrite it consistently.
    /// A ledger created with a key must always be opened with it.
    pub audit_key: Option<Vec<u8>>,
}

impl fmt::Debug for Options {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Options")
            .field("durability", &self.durability)
            .field("busy_timeout", &self.busy_timeout)
            .field("audit_key", &self.audit_key.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// A wallet transaction ledger. Cheap to share between threads (`&Ledger`
/// is `Send + Sync`); several processes may open the same SQLite file.
pub struct Ledger {
    service: Service<Box<dyn Storage>>,
}

impl fmt::Debug for Ledger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ledger")
            .field("storage", &self.service.storage().describe())
            .finish()
    }
}

impl Ledger {
    /// Opens (creating if needed) the SQLite ledger at `path`. The path
    /// `:memory:` gives an in-memory ledger instead.
    pub fn open(path: impl AsRef<Path>, options: Options) -> Result<Ledger> {
        let path = path.as_ref();
        if path == Path::new(":memory:") {
            return Self::with_storage(Box::new(MemoryStorage::new()), options.audit_key);
        }
        let defaults = SqliteOptions::default();
        let storage = SqliteStorage::open(
            path,
            SqliteOptions {
                durability: options.durability,
                busy_timeout: options.busy_timeout.unwrap_or(defaults.busy_timeout),
                ..defaults
            },
        )?;
        Self::with_storage(Box::new(storage), options.audit_key)
    }

    /// An empty in-memory ledger with an unkeyed audit chain.
    pub fn in_memory() -> Ledger {
        Ledger {
            // A fresh memory store has no settings that could disagree with the key.
            service: Service::new(Box::new(MemoryStorage::new()) as Box<dyn Storage>, None)
                .unwrap_or_else(|e| unreachable!("a fresh in-memory ledger cannot fail: {e}")),
        }
    }

    /// A ledger over any storage adapter.
    pub fn with_storage(storage: Box<dyn Storage>, audit_key: Option<Vec<u8>>) -> Result<Ledger> {
        Ok(Ledger {
            service: Service::new(storage, audit_key)?,
        })
    }

    /// Takes one event in exactly once, as a direct API call (actor `api`).
    pub fn ingest(&self, event: &NewEvent) -> Result<IngestResult> {
        self.service.ingest(event, &IngestContext::api())
    }

    /// Takes one event in, recording `ctx`'s actor and webhook body hash.
    pub fn ingest_with(&self, event: &NewEvent, ctx: &IngestContext) -> Result<IngestResult> {
        self.service.ingest(event, ctx)
    }

    /// Takes a batch in one transaction: all of it, or none and an error
    /// naming the item's index.
    pub fn ingest_batch(&self, events: &[NewEvent]) -> Result<Vec<IngestResult>> {
        self.service.ingest_batch(events, &IngestContext::api())
    }

    /// A batch with `ctx`'s actor and webhook body hash.
    pub fn ingest_batch_with(
        &self,
        events: &[NewEvent],
        ctx: &IngestContext,
    ) -> Result<Vec<IngestResult>> {
        self.service.ingest_batch(events, ctx)
    }

    pub fn get(&self, id: &EventId) -> Result<Option<WalletTransactionEvent>> {
        self.service.get(id)
    }

    pub fn get_by_provider_event_id(
        &self,
        provider: &Provider,
        id: &ProviderEventId,
    ) -> Result<Option<WalletTransactionEvent>> {
        self.service.get_by_provider_event_id(provider, id)
    }

    pub fn get_by_idempotency_key(
        &self,
        key: &IdempotencyKey,
    ) -> Result<Option<WalletTransactionEvent>> {
        self.service.get_by_idempotency_key(key)
    }

    /// One page of a wallet's history.
    pub fn list(&self, query: &ListQuery) -> Result<Page> {
        self.service.list(query)
    }

    /// The wallet's balance per currency (sorted by currency) over its events
    /// with `occurred_at <= as_of`, or all of them.
    pub fn balance(&self, wallet: &WalletId, as_of: Option<Timestamp>) -> Result<Vec<Balance>> {
        self.service.balance(wallet, as_of)
    }

    /// Events stored after `sequence`, in storage order, at most `limit` (1..=10000).
    pub fn changes_since(
        &self,
        sequence: u64,
        limit: usize,
    ) -> Result<Vec<WalletTransactionEvent>> {
        self.service.changes_since(sequence, limit)
    }

    /// Audit records after `sequence`, at most `limit` (1..=10000).
    pub fn audit_log(&self, sequence: u64, limit: usize) -> Result<Vec<AuditRecord>> {
        self.service.audit_log(sequence, limit)
    }

    /// Recomputes the audit chain, every event's fingerprint and every stored
    /// balance, and reports the first thing altered, deleted or inserted.
    pub fn verify_audit(&self) -> Result<AuditReport> {
        self.service.verify_audit()
    }
}
