//! The in-memory adapter: the same semantics as SQLite, nothing on disk.
//!
//! One `RwLock` makes writes exclusive and reads consistent. A write
//! transaction applies its changes directly and keeps an undo log, replayed
//! in reverse when the transaction fails.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Bound;
use std::sync::RwLock;

use crate::domain::{
    AuditRecord, Currency, Error, EventId, IdempotencyKey, ListQuery, Order, Provider,
    ProviderEventId, Result, StorageError, StorageErrorKind, Timestamp, Totals, WalletId,
    WalletTransactionEvent,
};
use crate::ports::{AmountRow, ReadTx, RollupRow, Storage, WriteTx};

#[derive(Default)]
struct State {
    events: BTreeMap<u64, WalletTransactionEvent>,
    by_id: HashMap<EventId, u64>,
    by_provider: HashMap<(Provider, ProviderEventId), u64>,
    by_idempotency: HashMap<IdempotencyKey, u64>,
    by_wallet: HashMap<WalletId, BTreeSet<(Timestamp, u64)>>,
    balances: BTreeMap<(WalletId, Currency), Totals>,
    buckets: HashMap<WalletId, BTreeMap<i64, BTreeMap<Currency, Totals>>>,
    audit: Vec<AuditRecord>,
    meta: HashMap<String, Vec<u8>>,
}

/// The in-memory storage engine.
#[derive(Default)]
pub struct MemoryStorage {
    state: RwLock<State>,
}

impl MemoryStorage {
    pub fn new() -> Self {
        Self::default()
    }
}

fn poisoned() -> Error {
    Error::Storage(StorageError::new(
        StorageErrorKind::Other,
        "the in-memory ledger was left inconsistent by a panic during a write",
    ))
}

impl Storage for MemoryStorage {
    fn read(&self, f: &mut dyn FnMut(&dyn ReadTx) -> Result<()>) -> Result<()> {
        let state = self.state.read().map_err(|_| poisoned())?;
        f(&*state)
    }

    fn write(&self, f: &mut dyn FnMut(&mut dyn WriteTx) -> Result<()>) -> Result<()> {
        let mut state = self.state.write().map_err(|_| poisoned())?;
        let mut tx = Writer {
            state: &mut state,
            undo: Vec::new(),
        };
        let result = f(&mut tx);
        if result.is_err() {
            tx.roll_back();
        }
        result
    }

    fn describe(&self) -> String {
        "memory".to_owned()
    }

    fn backup(&self, _dest: &std::path::Path) -> Result<()> {
        Err(Error::Storage(StorageError::new(
            StorageErrorKind::Other,
            "an in-memory ledger has no file to back up; copy its events with changes_since",
        )))
    }
}

impl State {
    fn event(&self, sequence: Option<&u64>) -> Option<WalletTransactionEvent> {
        sequence.and_then(|s| self.events.get(s)).cloned()
    }
}

/// `State` answers reads directly; `Writer` forwards to it.
impl ReadTx for State {
    fn event_by_id(&self, id: &EventId) -> Result<Option<WalletTransactionEvent>> {
        Ok(self.event(self.by_id.get(id)))
    }

    fn event_by_provider_event_id(
        &self,
        p: &Provider,
        id: &ProviderEventId,
    ) -> Result<Option<WalletTransactionEvent>> {
        Ok(self.event(self.by_provider.get(&(p.clone(), id.clone()))))
    }

    fn event_by_idempotency_key(
        &self,
        key: &IdempotencyKey,
    ) -> Result<Option<WalletTransactionEvent>> {
        Ok(self.event(self.by_idempotency.get(key)))
    }

    fn list(&self, q: &ListQuery, fetch: usize) -> Result<Vec<WalletTransactionEvent>> {
        let Some(index) = self.by_wallet.get(&q.wallet_id) else {
            return Ok(Vec::new());
        };
        // Every bound is exclusive: sequences start at 1, so `(t, 0)` sits
        // just before every event at `t`.
        let mut lower = q.since.map(|t| (t, 0));
        let mut upper = q.until.map(|t| (t, 0));
        if let Some(after) = q.after {
            let key = (after.occurred_at, after.sequence);
            match q.order {
                Order::Asc => lower = lower.max(Some(key)),
                Order::Desc => upper = Some(upper.map_or(key, |u| u.min(key))),
            }
        }
        if let (Some(l), Some(u)) = (lower, upper) {
            if l >= u {
                return Ok(Vec::new());
            }
        }
        let bound = |b: Option<(Timestamp, u64)>| b.map_or(Bound::Unbounded, Bound::Excluded);
        let (lower, upper) = (bound(lower), bound(upper));
        let range = index.range((lower, upper));
        let keep = |&&(_, seq): &&(Timestamp, u64)| {
            self.events.get(&seq).is_some_and(|e| {
                q.event_types
                    .as_ref()
                    .is_none_or(|t| t.contains(&e.event_type))
                    && q.currency.as_ref().is_none_or(|c| c == &e.currency)
            })
        };
        let take = |(_, seq): &(Timestamp, u64)| self.events.get(seq).cloned();
        Ok(match q.order {
            Order::Asc => range.filter(keep).take(fetch).filter_map(take).collect(),
            Order::Desc => range
                .rev()
                .filter(keep)
                .take(fetch)
                .filter_map(take)
                .collect(),
        })
    }

    fn events_after(&self, sequence: u64, limit: usize) -> Result<Vec<WalletTransactionEvent>> {
        Ok(self
            .events
            .range((Bound::Excluded(sequence), Bound::Unbounded))
            .take(limit)
            .map(|(_, e)| e.clone())
            .collect())
    }

    fn last_event_sequence(&self) -> Result<u64> {
        Ok(self.events.keys().next_back().copied().unwrap_or(0))
    }

    fn balances(&self, wallet: &WalletId) -> Result<Vec<(Currency, Totals)>> {
        Ok(self
            .balances
            .iter()
            .filter(|((w, _), _)| w == wallet)
            .map(|((_, c), t)| (c.clone(), t.clone()))
            .collect())
    }

    fn buckets_before(
        &self,
        wallet: &WalletId,
        before: i64,
        each: &mut dyn FnMut(Currency, Totals) -> Result<()>,
    ) -> Result<()> {
        if let Some(buckets) = self.buckets.get(wallet) {
            for per_currency in buckets.range(..before).map(|(_, c)| c) {
                for (c, t) in per_currency {
                    each(c.clone(), t.clone())?;
                }
            }
        }
        Ok(())
    }

    fn amounts_between(
        &self,
        wallet: &WalletId,
        from: Timestamp,
        to: Timestamp,
        each: &mut dyn FnMut(AmountRow) -> Result<()>,
    ) -> Result<()> {
        if let Some(index) = self.by_wallet.get(wallet) {
            for (_, seq) in index.range((from, 0)..=(to, u64::MAX)) {
                if let Some(e) = self.events.get(seq) {
                    each(AmountRow {
                        event_type: e.event_type,
                        amount: e.amount,
                        currency: e.currency.clone(),
                        occurred_at: e.occurred_at,
                    })?;
                }
            }
        }
        Ok(())
    }

    fn rollups(&self, each: &mut dyn FnMut(RollupRow) -> Result<()>) -> Result<()> {
        for ((w, c), t) in &self.balances {
            each(RollupRow {
                wallet_id: w.clone(),
                currency: c.clone(),
                bucket: None,
                totals: t.clone(),
            })?;
        }
        for (w, buckets) in &self.buckets {
            for (b, per_currency) in buckets {
                for (c, t) in per_currency {
                    each(RollupRow {
                        wallet_id: w.clone(),
                        currency: c.clone(),
                        bucket: Some(*b),
                        totals: t.clone(),
                    })?;
                }
            }
        }
        Ok(())
    }

    fn audit_after(&self, sequence: u64, limit: usize) -> Result<Vec<AuditRecord>> {
        // Records are appended with sequences 1, 2, 3, ...
        let start = usize::try_from(sequence)
            .unwrap_or(usize::MAX)
            .min(self.audit.len());
        Ok(self.audit[start..].iter().take(limit).cloned().collect())
    }

    fn last_audit(&self) -> Result<Option<(u64, [u8; 32])>> {
        Ok(self.audit.last().map(|r| (r.sequence, r.hash)))
    }

    fn meta(&self, key: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.meta.get(key).cloned())
    }
}

enum Undo {
    Event(u64),
    Audit,
    Rollup(WalletId, Currency, Option<i64>, Totals),
    Meta(String, Option<Vec<u8>>),
}

struct Writer<'a> {
    state: &'a mut State,
    undo: Vec<Undo>,
}

impl Writer<'_> {
    fn roll_back(&mut self) {
        let s = &mut *self.state;
        while let Some(step) = self.undo.pop() {
            match step {
                Undo::Event(seq) => {
                    if let Some(e) = s.events.remove(&seq) {
                        s.by_id.remove(&e.event_id);
                        if let Some(p) = e.provider_event_id {
                            s.by_provider.remove(&(e.provider, p));
                        }
                        if let Some(k) = e.idempotency_key {
                            s.by_idempotency.remove(&k);
                        }
                        if let Some(w) = s.by_wallet.get_mut(&e.wallet_id) {
                            w.remove(&(e.occurred_at, seq));
                        }
                    }
                }
                Undo::Audit => {
                    s.audit.pop();
                }
                Undo::Rollup(w, c, bucket, prev) => {
                    // A row that was zero before this transaction did not exist.
                    let existed = prev.event_count > 0;
                    match bucket {
                        None if existed => {
                            s.balances.insert((w, c), prev);
                        }
                        None => {
                            s.balances.remove(&(w, c));
                        }
                        Some(b) => {
                            let per_currency =
                                s.buckets.entry(w).or_default().entry(b).or_default();
                            if existed {
                                per_currency.insert(c, prev);
                            } else {
                                per_currency.remove(&c);
                            }
                        }
                    }
                }
                Undo::Meta(k, prev) => match prev {
                    Some(v) => {
                        s.meta.insert(k, v);
                    }
                    None => {
                        s.meta.remove(&k);
                    }
                },
            }
        }
    }
}

macro_rules! forward_reads {
    ($t:ty) => {
        impl ReadTx for $t {
            fn event_by_id(&self, id: &EventId) -> Result<Option<WalletTransactionEvent>> {
                self.state.event_by_id(id)
            }
            fn event_by_provider_event_id(
                &self,
                p: &Provider,
                id: &ProviderEventId,
            ) -> Result<Option<WalletTransactionEvent>> {
                self.state.event_by_provider_event_id(p, id)
            }
            fn event_by_idempotency_key(
                &self,
                key: &IdempotencyKey,
            ) -> Result<Option<WalletTransactionEvent>> {
                self.state.event_by_idempotency_key(key)
            }
            fn list(&self, q: &ListQuery, fetch: usize) -> Result<Vec<WalletTransactionEvent>> {
                self.state.list(q, fetch)
            }
            fn events_after(
                &self,
                sequence: u64,
                limit: usize,
            ) -> Result<Vec<WalletTransactionEvent>> {
                self.state.events_after(sequence, limit)
            }
            fn last_event_sequence(&self) -> Result<u64> {
                self.state.last_event_sequence()
            }
            fn balances(&self, wallet: &WalletId) -> Result<Vec<(Currency, Totals)>> {
                self.state.balances(wallet)
            }
            fn buckets_before(
                &self,
                wallet: &WalletId,
                before: i64,
                each: &mut dyn FnMut(Currency, Totals) -> Result<()>,
            ) -> Result<()> {
                self.state.buckets_before(wallet, before, each)
            }
            fn amounts_between(
                &self,
                wallet: &WalletId,
                from: Timestamp,
                to: Timestamp,
                each: &mut dyn FnMut(AmountRow) -> Result<()>,
            ) -> Result<()> {
                self.state.amounts_between(wallet, from, to, each)
            }
            fn rollups(&self, each: &mut dyn FnMut(RollupRow) -> Result<()>) -> Result<()> {
                self.state.rollups(each)
            }
            fn audit_after(&self, sequence: u64, limit: usize) -> Result<Vec<AuditRecord>> {
                self.state.audit_after(sequence, limit)
            }
            fn last_audit(&self) -> Result<Option<(u64, [u8; 32])>> {
                self.state.last_audit()
            }
            fn meta(&self, key: &str) -> Result<Option<Vec<u8>>> {
                self.state.meta(key)
            }
        }
    };
}

forward_reads!(Writer<'_>);

impl WriteTx for Writer<'_> {
    fn insert_event_if_new(&mut self, e: &WalletTransactionEvent) -> Result<bool> {
        // The same unique keys the SQLite schema enforces.
        let s = &mut *self.state;
        let taken = s.by_id.contains_key(&e.event_id)
            || e.provider_event_id
                .as_ref()
                .is_some_and(|p| s.by_provider.contains_key(&(e.provider.clone(), p.clone())))
            || e.idempotency_key
                .as_ref()
                .is_some_and(|k| s.by_idempotency.contains_key(k));
        if taken {
            return Ok(false);
        }
        s.by_id.insert(e.event_id, e.sequence);
        if let Some(p) = &e.provider_event_id {
            s.by_provider
                .insert((e.provider.clone(), p.clone()), e.sequence);
        }
        if let Some(k) = &e.idempotency_key {
            s.by_idempotency.insert(k.clone(), e.sequence);
        }
        s.by_wallet
            .entry(e.wallet_id.clone())
            .or_default()
            .insert((e.occurred_at, e.sequence));
        s.events.insert(e.sequence, e.clone());
        self.undo.push(Undo::Event(e.sequence));
        Ok(true)
    }

    fn append_audit(&mut self, record: &AuditRecord) -> Result<()> {
        self.state.audit.push(record.clone());
        self.undo.push(Undo::Audit);
        Ok(())
    }

    fn add_to_rollup(
        &mut self,
        wallet: &WalletId,
        currency: &Currency,
        bucket: Option<i64>,
        delta: &Totals,
    ) -> Result<()> {
        let slot = match bucket {
            None => self
                .state
                .balances
                .entry((wallet.clone(), currency.clone()))
                .or_default(),
            Some(b) => self
                .state
                .buckets
                .entry(wallet.clone())
                .or_default()
                .entry(b)
                .or_default()
                .entry(currency.clone())
                .or_default(),
        };
        let prev = slot.clone();
        slot.merge(delta)?;
        self.undo
            .push(Undo::Rollup(wallet.clone(), currency.clone(), bucket, prev));
        Ok(())
    }

    fn set_meta(&mut self, key: &str, value: &[u8]) -> Result<()> {
        let prev = self.state.meta.insert(key.to_owned(), value.to_vec());
        self.undo.push(Undo::Meta(key.to_owned(), prev));
        Ok(())
    }
}
