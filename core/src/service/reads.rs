//! Reads: lookups, history pages, balances, the change feed and the audit log.

use std::collections::BTreeMap;

use crate::domain::{
    AuditRecord, Balance, Currency, EventId, IdempotencyKey, ListQuery, Page, Provider,
    ProviderEventId, Result, RollupBucket, Timestamp, Totals, ValidationError, WalletId,
    WalletTransactionEvent,
};
use crate::limits::CHANGES_MAX;
use crate::ports::Storage;

use super::Service;

impl<S: Storage> Service<S> {
    pub fn get(&self, id: &EventId) -> Result<Option<WalletTransactionEvent>> {
        self.read(|tx| tx.event_by_id(id))
    }

    pub fn get_by_provider_event_id(
        &self,
        provider: &Provider,
        id: &ProviderEventId,
    ) -> Result<Option<WalletTransactionEvent>> {
        self.read(|tx| tx.event_by_provider_event_id(provider, id))
    }

    pub fn get_by_idempotency_key(
        &self,
        key: &IdempotencyKey,
    ) -> Result<Option<WalletTransactionEvent>> {
        self.read(|tx| tx.event_by_idempotency_key(key))
    }

    /// One page of a wallet's history; see [`ListQuery`]. One more event
    /// than the page is fetched, to know whether a next page exists.
    pub fn list(&self, query: &ListQuery) -> Result<Page> {
        query.check_cursor()?;
        let limit = query.page_size();
        let mut events = self.read(|tx| tx.list(query.view(), limit + 1))?;
        let next_cursor = if events.len() > limit {
            events.truncate(limit);
            events.last().map(|e| query.cursor_after(e))
        } else {
            None
        };
        Ok(Page {
            events,
            next_cursor,
        })
    }

    /// Events stored after `sequence`, in storage order: for replication and export.
    pub fn changes_since(
        &self,
        sequence: u64,
        limit: usize,
    ) -> Result<Vec<WalletTransactionEvent>> {
        check_limit(limit)?;
        self.read(|tx| tx.events_after(sequence, limit))
    }

    /// Audit records after `sequence`, in order.
    pub fn audit_log(&self, sequence: u64, limit: usize) -> Result<Vec<AuditRecord>> {
        check_limit(limit)?;
        self.read(|tx| tx.audit_after(sequence, limit))
    }

    /// The wallet's balance per currency, sorted by currency, over the events
    /// with `occurred_at <= as_of` (every event when `as_of` is `None`).
    ///
    /// The current balance is one stored row per currency. A past balance sums
    /// the hour rows before `as_of`'s hour and the events of that hour.
    pub fn balance(&self, wallet: &WalletId, as_of: Option<Timestamp>) -> Result<Vec<Balance>> {
        let totals = self.read(|tx| {
            let current = tx.balances(wallet)?;
            let Some(as_of) = as_of else {
                return Ok(current);
            };
            let all_before = current
                .iter()
                .all(|(_, t)| t.last_occurred_at.is_none_or(|last| last <= as_of));
            if all_before {
                return Ok(current);
            }
            let start = RollupBucket::hour_start(as_of);
            let mut by_currency: BTreeMap<Currency, Totals> = BTreeMap::new();
            tx.buckets_before(wallet, start, &mut |currency, t| {
                by_currency.entry(currency).or_default().merge(&t)
            })?;
            tx.amounts_between(wallet, start, as_of, &mut |row| {
                by_currency.entry(row.currency).or_default().apply(
                    row.event_type,
                    &row.amount,
                    row.occurred_at,
                )
            })?;
            Ok(by_currency.into_iter().collect())
        })?;
        let mut balances = totals
            .into_iter()
            .filter(|(_, t)| t.event_count > 0)
            .map(|(c, t)| Balance::from_totals(c, &t))
            .collect::<Result<Vec<_>>>()?;
        balances.sort_by(|a, b| a.currency.cmp(&b.currency));
        Ok(balances)
    }
}

fn check_limit(limit: usize) -> Result<()> {
    if !(1..=CHANGES_MAX).contains(&limit) {
        return Err(
            ValidationError::new("limit", format!("{limit} is outside 1..={CHANGES_MAX}")).into(),
        );
    }
    Ok(())
}
