//! The ledger's logic: triple dedupe, ingestion with its audit record,
//! history, balance reconstruction and audit verification.
//!
//! Architecture invariant: the service depends on `domain` and `ports` only.
//! It is generic over [`Storage`], so a new adapter needs no change here.

mod ingest;
mod verify;

use std::collections::BTreeMap;

use crate::domain::{
    bucket_of, AuditChain, AuditRecord, Balance, Currency, Error, EventId, IdempotencyKey,
    ListQuery, Page, Provider, ProviderEventId, Result, StorageError, StorageErrorKind, Timestamp,
    Totals, ValidationError, WalletId, WalletTransactionEvent, CHANGES_MAX,
};
use crate::ports::{ReadTx, Storage};

pub use ingest::IngestContext;

/// Most events one batch may carry.
pub const BATCH_EVENTS_MAX: usize = 10_000;

const META_AUDIT_KEY_CHECK: &str = "audit_key_check";

/// The ledger service over a storage port.
pub struct Service<S> {
    storage: S,
    chain: AuditChain,
}

impl<S: Storage> Service<S> {
    /// Wraps `storage`. With `audit_key`, the chain is HMAC-SHA256; the key
    /// must be the one the ledger was created with.
    pub fn new(storage: S, audit_key: Option<Vec<u8>>) -> Result<Self> {
        let chain = AuditChain::new(audit_key);
        let configured = chain.key_check().map(|c| c.to_vec()).unwrap_or_default();
        let service = Service { storage, chain };
        // Most opens find the setting already there: a read, no write lock.
        let stored = service.read(|tx| tx.meta(META_AUDIT_KEY_CHECK))?;
        match stored {
            Some(stored) => check_key(&stored, &configured)?,
            None => service.storage.write(&mut |tx| {
                // Re-checked under the write lock: another process may have
                // created the ledger in between.
                match tx.meta(META_AUDIT_KEY_CHECK)? {
                    Some(stored) => check_key(&stored, &configured),
                    None if tx.last_audit()?.is_some() => Err(key_mismatch(
                        "the ledger has audit records but no audit key setting",
                    )),
                    None => tx.set_meta(META_AUDIT_KEY_CHECK, &configured),
                }
            })?,
        }
        Ok(service)
    }

    pub fn storage(&self) -> &S {
        &self.storage
    }

    fn read<T>(&self, mut f: impl FnMut(&dyn ReadTx) -> Result<T>) -> Result<T> {
        let mut out = None;
        self.storage.read(&mut |tx| {
            out = Some(f(tx)?);
            Ok(())
        })?;
        out.ok_or_else(|| {
            Error::Storage(StorageError::new(
                StorageErrorKind::Other,
                "read did not run",
            ))
        })
    }

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

    /// One page of a wallet's history; see [`ListQuery`].
    pub fn list(&self, query: &ListQuery) -> Result<Page> {
        let mut events = self.read(|tx| tx.list(query, query.limit + 1))?;
        let next_cursor = if events.len() > query.limit {
            events.truncate(query.limit);
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
    /// the hour buckets before `as_of`'s hour and the events of that hour.
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
            let mut by_currency: BTreeMap<Currency, Totals> = BTreeMap::new();
            let bucket = bucket_of(as_of);
            tx.buckets_before(wallet, bucket, &mut |currency, t| {
                by_currency.entry(currency).or_default().merge(&t)
            })?;
            let from = Timestamp::from_micros_unchecked(bucket);
            tx.amounts_between(wallet, from, as_of, &mut |row| {
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

/// The audit key configured must be the one the ledger was created with.
fn check_key(stored: &[u8], configured: &[u8]) -> Result<()> {
    match (stored.is_empty(), configured.is_empty()) {
        _ if stored == configured => Ok(()),
        (true, false) => Err(key_mismatch(
            "this ledger's audit chain is not keyed; open it without an audit key",
        )),
        (false, true) => Err(key_mismatch(
            "this ledger's audit chain is keyed; open it with its audit key",
        )),
        _ => Err(key_mismatch(
            "the audit key differs from the one this ledger was created with",
        )),
    }
}

fn key_mismatch(message: &str) -> Error {
    Error::Storage(StorageError::new(
        StorageErrorKind::AuditKeyMismatch,
        message,
    ))
}
