//! The storage port: transactions and what runs inside them.

use crate::domain::{
    Amount, AuditRecord, Currency, Delivery, DeliveryId, EventId, EventType, IdempotencyKey,
    InboxView, Provider, ProviderEventId, QueryView, Result, RollupKey, RollupRow, Timestamp,
    Totals, WalletId, WalletTransactionEvent,
};

use super::Backup;

/// The money columns of one event, for folding balances.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AmountRow {
    pub event_type: EventType,
    pub amount: Amount,
    pub currency: Currency,
    pub occurred_at: Timestamp,
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
    fn list(&self, query: QueryView<'_>, fetch: usize) -> Result<Vec<WalletTransactionEvent>>;

    /// Events with a sequence above `sequence`, ascending, at most `limit`.
    fn events_after(&self, sequence: u64, limit: usize) -> Result<Vec<WalletTransactionEvent>>;

    /// The highest event sequence stored, 0 when none.
    fn last_event_sequence(&self) -> Result<u64>;

    /// The all-time rollup rows of `wallet`: one per currency it has events in.
    /// Reads only that wallet's rows.
    fn balances(&self, wallet: &WalletId) -> Result<Vec<(Currency, Totals)>>;

    /// Every hour row of `wallet` whose hour starts before `before`.
    fn buckets_before(
        &self,
        wallet: &WalletId,
        before: Timestamp,
        each: &mut dyn FnMut(Currency, Totals) -> Result<()>,
    ) -> Result<()>;

    /// One rollup row, if stored.
    fn rollup(&self, key: &RollupKey) -> Result<Option<Totals>>;

    /// The money columns of `wallet`'s events with `from <= occurred_at <= to`.
    fn amounts_between(
        &self,
        wallet: &WalletId,
        from: Timestamp,
        to: Timestamp,
        each: &mut dyn FnMut(AmountRow) -> Result<()>,
    ) -> Result<()>;

    /// Every rollup row (all-time and hours), in any order.
    fn rollups(&self, each: &mut dyn FnMut(RollupRow) -> Result<()>) -> Result<()>;

    /// Audit records with a sequence above `sequence`, ascending, at most `limit`.
    fn audit_after(&self, sequence: u64, limit: usize) -> Result<Vec<AuditRecord>>;

    /// The audit record with the highest sequence: its sequence and hash.
    fn last_audit(&self) -> Result<Option<(u64, [u8; 32])>>;

    /// A small ledger-wide setting.
    fn meta(&self, key: &str) -> Result<Option<Vec<u8>>>;

    /// One inbox delivery, with its body (unless pruned).
    fn delivery(&self, id: &DeliveryId) -> Result<Option<Delivery>>;

    /// The delivery of `provider` whose body has this SHA-256, with its body.
    fn delivery_by_body(
        &self,
        provider: &Provider,
        body_sha256: &[u8; 32],
    ) -> Result<Option<Delivery>>;

    /// Up to `fetch` deliveries matching `query`'s filters, in its order
    /// by `(received_at, sequence)`, strictly after `query.after`; their
    /// bodies left out (`None`).
    fn deliveries(&self, query: InboxView<'_>, fetch: usize) -> Result<Vec<Delivery>>;

    /// The sequence and receipt time of the delivery with the highest
    /// sequence, `None` when none is stored.
    fn last_delivery(&self) -> Result<Option<(u64, Timestamp)>>;
}

/// What retention removes from the inbox in one pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InboxPrune {
    /// Deliveries first received before this are deleted.
    pub delete_before: Timestamp,
    /// Bodies of `ingested` deliveries first received in
    /// `ingested_body_after..ingested_body_before` are dropped (the lower
    /// bound is where the last pass stopped, so a pass reads only what is
    /// new).
    pub ingested_body_after: Timestamp,
    pub ingested_body_before: Timestamp,
    /// Beyond this many deliveries, the oldest are deleted.
    pub keep_newest: u64,
}

impl InboxPrune {
    /// How many of the oldest deliveries are beyond the newest
    /// `keep_newest`, given the lowest and highest sequence stored.
    /// Sequences are unique, so when they span at most `keep_newest` values
    /// nothing is over the cap and `count` (the number of deliveries, a
    /// walk of an index) is not called: below the cap a pass costs two
    /// seeks.
    pub fn excess(
        &self,
        bounds: Option<(i64, i64)>,
        count: impl FnOnce() -> crate::Result<u64>,
    ) -> crate::Result<u64> {
        match bounds {
            Some((min, max)) if max.abs_diff(min) >= self.keep_newest => {
                Ok(count()?.saturating_sub(self.keep_newest))
            }
            _ => Ok(0),
        }
    }
}

/// What an open ledger last counted of its inbox, so that a retention pass
/// at the cap counts only the deliveries received since the last one
/// instead of walking them all (a million at the default cap).
///
/// Retention deletes only from the oldest end, so any deletion moves the
/// lowest sequence, and new deliveries take sequences above the highest:
/// while the lowest sequence is the one counted (and the highest has not
/// fallen), the count is the last one plus the deliveries above the
/// highest counted. Another process's pass, or a pass that recorded its
/// count and then rolled back its deletions, moves the bounds, and the
/// next pass counts them all. So does every [`FULL_COUNT_EVERY`]-th pass
/// that counts: a deletion the rules do not make (a row deleted by hand
/// from the middle) would otherwise leave the count too high, and the cap keeping
/// fewer, for as long as the ledger stays open.
#[derive(Debug, Default)]
pub struct InboxTally(std::sync::Mutex<Option<Tally>>);

/// Of this many passes that count, the first counts all; the others carry
/// the tally on.
pub const FULL_COUNT_EVERY: u32 = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Tally {
    min: i64,
    max: i64,
    count: u64,
    /// Passes that carried the tally on since the last full count (whether
    /// or not their transactions committed).
    carried: u32,
}

impl InboxTally {
    /// The number of deliveries stored, the bounds being `(min, max)`:
    /// `count_above(s)` counts those above sequence `s`, `count_all` all.
    pub fn count(
        &self,
        (min, max): (i64, i64),
        count_above: impl FnOnce(i64) -> crate::Result<u64>,
        count_all: impl FnOnce() -> crate::Result<u64>,
    ) -> crate::Result<u64> {
        let mut last = self.0.lock().unwrap_or_else(|p| p.into_inner());
        match last.as_mut() {
            Some(t) if t.min == min && t.max <= max && t.carried + 1 < FULL_COUNT_EVERY => {
                let n = t.count + count_above(t.max)?;
                t.carried += 1;
                Ok(n)
            }
            _ => {
                *last = None;
                count_all()
            }
        }
    }

    /// Records `count` deliveries between `bounds` (none: forgets), as the
    /// pass that counted them left them.
    pub fn record(&self, bounds: Option<(i64, i64)>, count: u64) {
        let mut last = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let carried = last.map_or(0, |t| t.carried);
        *last = bounds.map(|(min, max)| Tally {
            min,
            max,
            count,
            carried,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::InboxPrune;
    use crate::Timestamp;

    fn cap(keep_newest: u64) -> InboxPrune {
        let t = Timestamp::from_micros("t", 0).unwrap();
        InboxPrune {
            delete_before: t,
            ingested_body_after: t,
            ingested_body_before: t,
            keep_newest,
        }
    }

    #[test]
    fn the_excess_is_counted_only_when_the_sequences_span_more_than_the_cap() {
        let uncounted = || -> crate::Result<u64> { panic!("counted") };
        assert_eq!(cap(3).excess(None, uncounted).unwrap(), 0);
        assert_eq!(cap(3).excess(Some((1, 3)), uncounted).unwrap(), 0);
        assert_eq!(cap(3).excess(Some((7, 7)), uncounted).unwrap(), 0);
        assert_eq!(
            cap(u64::MAX)
                .excess(Some((1, i64::MAX)), uncounted)
                .unwrap(),
            0
        );
        // Four sequence values: four deliveries at most, perhaps fewer.
        assert_eq!(cap(3).excess(Some((1, 4)), || Ok(4)).unwrap(), 1);
        assert_eq!(cap(3).excess(Some((1, 4)), || Ok(3)).unwrap(), 0);
        assert_eq!(cap(3).excess(Some((1, 10)), || Ok(2)).unwrap(), 0);
        assert_eq!(cap(0).excess(Some((5, 5)), || Ok(1)).unwrap(), 1);
    }

    /// A count taken once is carried on by the deliveries above it, and
    /// taken again whenever the lowest sequence moved or the highest fell.
    #[test]
    fn the_inbox_is_counted_once_and_then_only_above_the_last_count() {
        use super::InboxTally;
        let all = |n: u64| move || -> crate::Result<u64> { Ok(n) };
        let never = || -> crate::Result<u64> { panic!("counted all") };
        let tally = InboxTally::default();
        assert_eq!(
            tally
                .count((1, 10), |_| panic!("no tally yet"), all(10))
                .unwrap(),
            10
        );
        tally.record(Some((1, 10)), 10);
        let above = |from: i64, n: u64| {
            move |s: i64| -> crate::Result<u64> {
                assert_eq!(s, from);
                Ok(n)
            }
        };
        assert_eq!(tally.count((1, 10), above(10, 0), never).unwrap(), 10);
        assert_eq!(tally.count((1, 15), above(10, 5), never).unwrap(), 15);
        // Deleted from the oldest end by someone else, or begun again.
        assert_eq!(
            tally.count((4, 15), |_| panic!("above"), all(12)).unwrap(),
            12
        );
        assert_eq!(tally.count((1, 3), |_| panic!("above"), all(3)).unwrap(), 3);
        tally.record(None, 0);
        assert_eq!(
            tally.count((1, 10), |_| panic!("above"), all(9)).unwrap(),
            9
        );
        // An inbox emptied and begun again past the highest counted: the
        // tally carries on (right while sequences have no gaps).
        tally.record(Some((1, 10)), 10);
        assert_eq!(tally.count((1, 12), above(10, 2), never).unwrap(), 12);
        // Of every FULL_COUNT_EVERY passes that count, the first counts all.
        tally.record(None, 0);
        assert_eq!(
            tally.count((1, 12), |_| panic!("above"), all(12)).unwrap(),
            12
        );
        tally.record(Some((1, 12)), 12);
        for _ in 1..super::FULL_COUNT_EVERY {
            assert_eq!(tally.count((1, 12), above(12, 0), never).unwrap(), 12);
            tally.record(Some((1, 12)), 12);
        }
        assert_eq!(
            tally.count((1, 12), |_| panic!("above"), all(11)).unwrap(),
            11
        );
        tally.record(Some((1, 12)), 11);
        assert_eq!(tally.count((1, 12), above(12, 0), never).unwrap(), 11);
    }
}

/// What one retention pass removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pruned {
    pub deliveries_deleted: u64,
    pub bodies_dropped: u64,
}

/// Writes, exclusive and atomic: all of them are kept, or none.
///
/// An adapter stores what it is given and does no arithmetic: sums are the
/// domain's ([`crate::domain::RollupFold`]).
pub trait WriteTx: ReadTx {
    /// Stores `event` unless a stored event already has its `event_id`,
    /// its `(provider, provider_event_id)` or its `idempotency_key`; says
    /// whether it was stored. Uniqueness of the three keys is the adapter's
    /// to enforce; what a refusal means is the service's to decide. A
    /// `sequence` already taken is an error, never an overwrite.
    ///
    /// An engine may answer `true` provisionally and have the database
    /// check it at commit (PostgreSQL does, to save a round trip). When the
    /// event was not new after all, or when the run ends in an error after
    /// such an answer, nothing of the run is kept and the write closure runs
    /// again with exact answers: what the committed run (or the error
    /// returned) saw is always exact.
    fn insert_event_if_new(&mut self, event: &WalletTransactionEvent) -> Result<bool>;
    /// Appends one record. A `sequence` already taken is an error.
    fn append_audit(&mut self, record: &AuditRecord) -> Result<()>;
    /// Writes a rollup row, replacing the one with its key.
    fn put_rollup(&mut self, row: &RollupRow) -> Result<()>;
    fn set_meta(&mut self, key: &str, value: &[u8]) -> Result<()>;

    /// Stores `delivery`, replacing the one with its `delivery_id` (its
    /// body included: `None` drops it). A `sequence`, or a `(provider,
    /// body_sha256)`, that another delivery holds is an error. Receipt
    /// order is sequence order: the service never stores a delivery
    /// received before the one with the next lower sequence (nor after the
    /// next higher), and an adapter may rely on it; SQLite does, and
    /// refuses such a delivery (a validation error on `received_at`).
    fn put_delivery(&mut self, delivery: &Delivery) -> Result<()>;

    /// Removes what `rules` say retention no longer keeps.
    fn prune_deliveries(&mut self, rules: &InboxPrune) -> Result<Pruned>;
}

/// A storage engine.
pub trait Storage: Send + Sync {
    /// Runs `f` in a read transaction over one consistent snapshot.
    fn read(&self, f: &mut dyn FnMut(&dyn ReadTx) -> Result<()>) -> Result<()>;

    /// Runs `f` in an exclusive write transaction. Commits when `f` returns
    /// `Ok` (durably, as configured), rolls everything back when it returns
    /// `Err` or panics. Waits for other writers, threads or processes, up
    /// to the adapter's busy timeout.
    ///
    /// `f` may be run more than once: an engine may roll back and retry a
    /// transaction the database refused to serialize. Every `f` must
    /// therefore start from scratch each time it runs, resetting whatever
    /// state it keeps outside the transaction.
    fn write(&self, f: &mut dyn FnMut(&mut dyn WriteTx) -> Result<()>) -> Result<()>;

    /// A short description for logs: `sqlite:/path/to/file`, `memory`.
    fn describe(&self) -> String;

    /// The engine's online backup, when it has one.
    fn backup(&self) -> Option<&dyn Backup> {
        None
    }
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
    fn backup(&self) -> Option<&dyn Backup> {
        (**self).backup()
    }
}
