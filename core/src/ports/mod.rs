//! The storage port: what the service needs from a storage engine.
//!
//! Architecture invariant: the service sees storage only through these
//! traits. An adapter implements [`Storage`]; nothing else changes.
//!
//! Reads and writes happen inside transactions the adapter opens and ends.
//! A write transaction is exclusive across threads *and processes* for its
//! whole life, so the check-and-insert the service does inside it is atomic.

use crate::domain::{
    AuditRecord, Currency, EventId, EventType, IdempotencyKey, ListQuery, Provider,
    ProviderEventId, Result, Timestamp, Totals, WalletId, WalletTransactionEvent,
};

/// The money columns of one event, for folding balances.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AmountRow {
    pub event_type: EventType,
    pub amount: crate::domain::Amount,
    pub currency: Currency,
    pub occurred_at: Timestamp,
}

/// A stored rollup row: a wallet's totals in one currency, overall (`bucket`
/// is `None`) or over the events of one hour bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RollupRow {
    pub wallet_id: WalletId,
    pub currency: Currency,
    pub bucket: Option<i64>,
    pub totals: Totals,
}

/// Reads, all seeing one consistent snapshot.
pub trait ReadTx {
    fn event_by_id(&self, id: &EventId) -> Result<Option<WalletTransactionEvent>>;
    fn event_by_provider_event_id(
        &self,
        provider: &Provider,
        id: &ProviderEventId,
    ) -> Result<Option<WalletTransactionEvent>>;
    fn event_by_idempotency_key(
        &self,
        key: &IdempotencyKey,
    ) -> Result<Option<WalletTransactionEvent>>;

    /// Up to `fetch` events of `query.wallet_id` matching its filters, in its
    /// order by `(occurred_at, sequence)`, strictly after `query.after`.
    fn list(&self, query: &ListQuery, fetch: usize) -> Result<Vec<WalletTransactionEvent>>;

    /// Events with a sequence above `sequence`, ascending, at most `limit`.
    fn events_after(&self, sequence: u64, limit: usize) -> Result<Vec<WalletTransactionEvent>>;

    /// The highest event sequence stored, 0 when none.
    fn last_event_sequence(&self) -> Result<u64>;

    /// The current totals of `wallet` in each currency it has events in.
    fn balances(&self, wallet: &WalletId) -> Result<Vec<(Currency, Totals)>>;

    /// Every bucket of `wallet` that starts before `before`.
    fn buckets_before(
        &self,
        wallet: &WalletId,
        before: i64,
        each: &mut dyn FnMut(Currency, Totals) -> Result<()>,
    ) -> Result<()>;

    /// The money columns of `wallet`'s events with `from <= occurred_at <= to`.
    fn amounts_between(
        &self,
        wallet: &WalletId,
        from: Timestamp,
        to: Timestamp,
        each: &mut dyn FnMut(AmountRow) -> Result<()>,
    ) -> Result<()>;

    /// Every rollup row (current totals and buckets), in any order.
    fn rollups(&self, each: &mut dyn FnMut(RollupRow) -> Result<()>) -> Result<()>;

    /// Audit records with a sequence above `sequence`, ascending, at most `limit`.
    fn audit_after(&self, sequence: u64, limit: usize) -> Result<Vec<AuditRecord>>;

    /// The last audit record's sequence and hash.
    fn last_audit(&self) -> Result<Option<(u64, [u8; 32])>>;

    /// A small ledger-wide setting.
    fn meta(&self, key: &str) -> Result<Option<Vec<u8>>>;
}

/// Writes, exclusive and atomic: all of them are kept, or none.
pub trait WriteTx: ReadTx {
    /// Stores `event` unless a stored event already has its `event_id`,
    /// its `(provider, provider_event_id)` or its `idempotency_key`; says
    /// whether it was stored. Uniqueness of the three keys is the adapter's
    /// to enforce; what a refusal means is the service's to decide.
    fn insert_event_if_new(&mut self, event: &WalletTransactionEvent) -> Result<bool>;
    fn append_audit(&mut self, record: &AuditRecord) -> Result<()>;
    /// Adds `delta` to a rollup row (creating it at zero): the all-time
    /// totals of `wallet` in `currency` when `bucket` is `None`, else those
    /// of one hour bucket. Sums with [`Totals::merge`]'s exact arithmetic.
    fn add_to_rollup(
        &mut self,
        wallet: &WalletId,
        currency: &Currency,
        bucket: Option<i64>,
        delta: &Totals,
    ) -> Result<()>;
    fn set_meta(&mut self, key: &str, value: &[u8]) -> Result<()>;
}

/// A storage engine.
pub trait Storage: Send + Sync {
    /// Runs `f` in a read transaction over one consistent snapshot.
    fn read(&self, f: &mut dyn FnMut(&dyn ReadTx) -> Result<()>) -> Result<()>;

    /// Runs `f` in an exclusive write transaction. Commits when `f` returns
    /// `Ok` (durably, as configured), rolls everything back when it returns
    /// `Err`. Waits for other writers, threads or processes, up to the
    /// adapter's busy timeout.
    fn write(&self, f: &mut dyn FnMut(&mut dyn WriteTx) -> Result<()>) -> Result<()>;

    /// A short description for logs: `sqlite:/path/to/file`, `memory`.
    fn describe(&self) -> String;

    /// Writes a consistent copy of the whole store to a new file at `dest`
    /// while writers keep working. Adapters without a file refuse.
    fn backup(&self, dest: &std::path::Path) -> Result<()>;
}

impl<S: Storage + ?Sized> Storage for Box<S> {
    fn read(&self, f: &mut dyn FnMut(&dyn ReadTx) -> Result<()>) -> Result<()> {
        (**self).read(f)
    }
    fn write(&self, f: &mut dyn FnMut(&mut dyn WriteTx) -> Result<()>) -> Result<()> {
        (**self).write(f)
    }
    fn describe(&self) -> String {
        (**self).describe()
    }
    fn backup(&self, dest: &std::path::Path) -> Result<()> {
        (**self).backup(dest)
    }
}
