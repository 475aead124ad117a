//! Rollups: a wallet's totals per currency, all time and per hour bucket,
//! kept beside the events so that a current balance is one row and a past
//! one a sum of hour rows. The fold lives here, once: ingestion and
//! `verify_audit` both use it, and storage only reads and writes rows.

use std::collections::HashMap;

use super::balance::Totals;
use super::error::Error;
use super::event::WalletTransactionEvent;
use super::values::{Currency, Timestamp, WalletId};

/// Width of the hour buckets, in microseconds.
pub const BUCKET_MICROS: i64 = 3_600_000_000;

/// Which events a rollup row sums.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RollupBucket {
    /// The events with `occurred_at` in the hour starting at `start`.
    Hour { start: Timestamp },
    /// Every event: the current balance. Sorts after every hour.
    AllTime,
}

impl RollupBucket {
    /// The hour bucket holding `at`.
    pub fn hour_of(at: Timestamp) -> RollupBucket {
        RollupBucket::Hour {
            start: Self::hour_start(at),
        }
    }

    /// The start of the hour holding `at`.
    pub fn hour_start(at: Timestamp) -> Timestamp {
        let start = at.as_micros().div_euclid(BUCKET_MICROS) * BUCKET_MICROS;
        // The earliest timestamp (0001-01-01T00:00:00Z) starts an hour, so
        // flooring to the hour never leaves the valid range.
        Timestamp::from_micros_unchecked(start)
    }
}

/// One rollup row's identity.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RollupKey {
    pub wallet_id: WalletId,
    pub currency: Currency,
    pub bucket: RollupBucket,
}

/// A rollup row as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RollupRow {
    pub key: RollupKey,
    pub totals: Totals,
}

/// Totals of the rows touched so far, starting from what storage holds
/// (or zero), and which of them changed.
#[derive(Debug, Default)]
pub struct RollupFold {
    rows: HashMap<RollupKey, (Totals, bool)>,
}

/// One event folded into its two rows, not yet kept: see [`RollupFold::folded`].
#[derive(Debug)]
pub struct Folded([(RollupKey, Totals); 2]);

/// Reads a stored rollup row, for a fold that starts from storage.
pub type LoadRollup<'l> = dyn FnMut(&RollupKey) -> Result<Option<Totals>, Error> + 'l;

impl RollupFold {
    pub fn new() -> Self {
        Self::default()
    }

    /// What folding `event` into its all-time row and its hour row would
    /// give, reading each row through `load` the first time it is touched.
    /// Nothing changes until the result is [kept](Self::keep); an overflow
    /// is a validation error on `amount`.
    pub fn folded(
        &mut self,
        event: &WalletTransactionEvent,
        load: &mut LoadRollup<'_>,
    ) -> Result<Folded, Error> {
        let all_time = RollupKey {
            wallet_id: event.wallet_id.clone(),
            currency: event.currency.clone(),
            bucket: RollupBucket::AllTime,
        };
        let hour = RollupKey {
            bucket: RollupBucket::hour_of(event.occurred_at),
            ..all_time.clone()
        };
        // The hour row first: an engine may read the all-time row with it,
        // in one query (PostgreSQL does).
        let mut next = [(hour, Totals::default()), (all_time, Totals::default())];
        for (key, totals) in &mut next {
            if !self.rows.contains_key(key) {
                let stored = load(key)?.unwrap_or_default();
                self.rows.insert(key.clone(), (stored, false));
            }
            let (current, _) = &self.rows[key];
            *totals = current.applied(event.event_type, &event.amount, event.occurred_at)?;
        }
        Ok(Folded(next))
    }

    /// Keeps what [`folded`](Self::folded) computed.
    pub fn keep(&mut self, folded: Folded) {
        for (key, totals) in folded.0 {
            self.rows.insert(key, (totals, true));
        }
    }

    /// Folds `event` in at once, all or nothing.
    pub fn apply(
        &mut self,
        event: &WalletTransactionEvent,
        load: &mut LoadRollup<'_>,
    ) -> Result<(), Error> {
        let folded = self.folded(event, load)?;
        self.keep(folded);
        Ok(())
    }

    /// Takes one row's folded totals out of the fold.
    pub fn take(&mut self, key: &RollupKey) -> Option<Totals> {
        self.rows.remove(key).map(|(t, _)| t)
    }

    /// Every row an event was folded into, with its new totals, in no
    /// particular order: what to write back.
    pub fn into_changed_rows(self) -> impl Iterator<Item = RollupRow> {
        self.rows
            .into_iter()
            .filter(|(_, (_, changed))| *changed)
            .map(|(key, (totals, _))| RollupRow { key, totals })
    }

    /// Any row still in the fold.
    pub fn any_key(&self) -> Option<&RollupKey> {
        self.rows.keys().next()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Amount, EventId, EventType, Metadata, Money, Provider, ProviderEventId};

    fn event(event_type: EventType, amount: &str) -> WalletTransactionEvent {
        let at = Timestamp::parse_rfc3339("t", "2026-01-02T03:04:05Z").unwrap();
        WalletTransactionEvent {
            event_id: EventId::generate(),
            wallet_id: WalletId::new("w").unwrap(),
            provider: Provider::new("p").unwrap(),
            event_type,
            amount: Amount::parse(amount).unwrap(),
            currency: Currency::new("USD").unwrap(),
            provider_event_id: Some(ProviderEventId::new("e").unwrap()),
            idempotency_key: None,
            metadata: Metadata::empty(),
            occurred_at: at,
            occurred_at_estimated: false,
            created_at: at,
            sequence: 1,
        }
    }

    #[test]
    fn an_overflow_changes_no_row() {
        // A stored balance at the edge of what Money holds.
        let edge = Money::parse("170141183460469231731687303715884105727").unwrap();
        let stored = Totals {
            held: edge,
            event_count: 1,
            ..Totals::default()
        };
        let mut fold = RollupFold::new();
        let mut load = |_: &RollupKey| Ok(Some(stored.clone()));
        // A hold moves money from available (fine) to held (overflows).
        let err = fold
            .apply(&event(EventType::Hold, "1"), &mut load)
            .unwrap_err();
        assert!(matches!(err, Error::Validation(v) if v.field == "amount"));
        assert_eq!(fold.into_changed_rows().count(), 0, "nothing to write back");
        let mut fold = RollupFold::new();
        fold.apply(&event(EventType::Deposit, "2.5"), &mut load)
            .unwrap();
        fold.apply(&event(EventType::Fee, "0.5"), &mut load)
            .unwrap();
        let rows: Vec<_> = fold.into_changed_rows().collect();
        assert_eq!(rows.len(), 2, "the all-time row and the hour row");
        for row in rows {
            assert_eq!(row.totals.available.to_string(), "2");
            assert_eq!(row.totals.event_count, 3);
            assert_eq!(row.totals.held, edge);
        }
    }

    #[test]
    fn hours_floor_and_all_time_sorts_last() {
        let at = Timestamp::parse_rfc3339("t", "2026-01-02T03:04:05Z").unwrap();
        let RollupBucket::Hour { start } = RollupBucket::hour_of(at) else {
            panic!("an hour")
        };
        assert_eq!(start.to_string(), "2026-01-02T03:00:00Z");
        let earliest = Timestamp::parse_rfc3339("t", "0001-01-01T00:30:00Z").unwrap();
        assert!(RollupBucket::hour_of(earliest) < RollupBucket::AllTime);
        let before = Timestamp::parse_rfc3339("t", "1969-12-31T23:59:59Z").unwrap();
        let RollupBucket::Hour { start } = RollupBucket::hour_of(before) else {
            panic!("an hour")
        };
        assert_eq!(start.to_string(), "1969-12-31T23:00:00Z");
    }
}
