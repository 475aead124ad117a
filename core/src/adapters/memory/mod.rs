//! The in-memory adapter: the same semantics as SQLite, nothing on disk.
//!
//! One `RwLock` makes writes exclusive and reads consistent. A write
//! transaction applies its changes directly and keeps an undo log, replayed
//! in reverse when the transaction fails or panics, so that a failed write
//! leaves nothing behind and a panic does not poison the ledger: as with
//! SQLite, the next call finds the state from before the write.
//!
//! It is as strict as the SQLite schema: the three keys and the sequences
//! of events and audit records are unique, and a taken sequence is an
//! error, never an overwrite.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Bound;
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::domain::{
    AuditRecord, Currency, Delivery, DeliveryId, Error, EventId, IdempotencyKey, InboxView, Order,
    Provider, ProviderEventId, QueryView, Result, RollupBucket, RollupKey, RollupRow, StorageError,
    StorageErrorKind, Timestamp, Totals, Verdict, WalletId, WalletTransactionEvent,
};
use crate::ports::{AmountRow, InboxPrune, Pruned, ReadTx, Storage, WriteTx};

/// A wallet's rollup rows, by bucket (hours first, all time last) and currency.
type WalletRollups = BTreeMap<RollupBucket, BTreeMap<Currency, Totals>>;

#[derive(Default)]
struct State {
    events: BTreeMap<u64, WalletTransactionEvent>,
    by_id: HashMap<EventId, u64>,
    by_provider: HashMap<(Provider, ProviderEventId), u64>,
    by_idempotency: HashMap<IdempotencyKey, u64>,
    by_wallet: HashMap<WalletId, BTreeSet<(Timestamp, u64)>>,
    rollups: HashMap<WalletId, WalletRollups>,
    audit: BTreeMap<u64, AuditRecord>,
    meta: HashMap<String, Vec<u8>>,
    deliveries: BTreeMap<u64, Delivery>,
    delivery_by_id: HashMap<DeliveryId, u64>,
    delivery_by_body: HashMap<(Provider, [u8; 32]), u64>,
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

    // A panic during a write poisons the lock only after the writer's undo
    // log has restored the state (`Writer`'s drop runs first), so the state
    // behind a poisoned lock is always consistent.
    fn read_state(&self) -> RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write_state(&self) -> RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|p| p.into_inner())
    }
}

fn taken(what: &str, sequence: u64) -> Error {
    Error::Storage(StorageError::new(
        StorageErrorKind::Other,
        format!("{what} sequence {sequence} is already taken"),
    ))
}

impl Storage for MemoryStorage {
    fn read(&self, f: &mut dyn FnMut(&dyn ReadTx) -> Result<()>) -> Result<()> {
        let state = self.read_state();
        f(&*state)
    }

    fn write(&self, f: &mut dyn FnMut(&mut dyn WriteTx) -> Result<()>) -> Result<()> {
        let mut state = self.write_state();
        let mut tx = Writer {
            state: &mut state,
            undo: Vec::new(),
        };
        let result = f(&mut tx);
        if result.is_ok() {
            tx.undo.clear();
        }
        // Dropping `tx` replays what is left of the undo log: everything
        // on failure, nothing on success.
        drop(tx);
        result
    }

    fn describe(&self) -> String {
        "memory".to_owned()
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

    fn list(&self, q: QueryView<'_>, fetch: usize) -> Result<Vec<WalletTransactionEvent>> {
        let Some(index) = self.by_wallet.get(q.wallet_id) else {
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
        let range = index.range((bound(lower), bound(upper)));
        let keep = |&&(_, seq): &&(Timestamp, u64)| {
            self.events.get(&seq).is_some_and(|e| {
                q.event_types.is_none_or(|t| t.contains(&e.event_type))
                    && q.currency.is_none_or(|c| c == &e.currency)
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
            .rollups
            .get(wallet)
            .and_then(|w| w.get(&RollupBucket::AllTime))
            .into_iter()
            .flatten()
            .map(|(c, t)| (c.clone(), t.clone()))
            .collect())
    }

    fn buckets_before(
        &self,
        wallet: &WalletId,
        before: Timestamp,
        each: &mut dyn FnMut(Currency, Totals) -> Result<()>,
    ) -> Result<()> {
        if let Some(rows) = self.rollups.get(wallet) {
            for per_currency in rows
                .range(..RollupBucket::Hour { start: before })
                .map(|(_, c)| c)
            {
                for (c, t) in per_currency {
                    each(c.clone(), t.clone())?;
                }
            }
        }
        Ok(())
    }

    fn rollup(&self, key: &RollupKey) -> Result<Option<Totals>> {
        Ok(self
            .rollups
            .get(&key.wallet_id)
            .and_then(|w| w.get(&key.bucket))
            .and_then(|c| c.get(&key.currency))
            .cloned())
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
        for (wallet, rows) in &self.rollups {
            for (bucket, per_currency) in rows {
                for (currency, totals) in per_currency {
                    each(RollupRow {
                        key: RollupKey {
                            wallet_id: wallet.clone(),
                            currency: currency.clone(),
                            bucket: *bucket,
                        },
                        totals: totals.clone(),
                    })?;
                }
            }
        }
        Ok(())
    }

    fn audit_after(&self, sequence: u64, limit: usize) -> Result<Vec<AuditRecord>> {
        Ok(self
            .audit
            .range((Bound::Excluded(sequence), Bound::Unbounded))
            .take(limit)
            .map(|(_, r)| r.clone())
            .collect())
    }

    fn last_audit(&self) -> Result<Option<(u64, [u8; 32])>> {
        Ok(self.audit.last_key_value().map(|(s, r)| (*s, r.hash)))
    }

    fn meta(&self, key: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.meta.get(key).cloned())
    }

    fn delivery(&self, id: &DeliveryId) -> Result<Option<Delivery>> {
        Ok(self.delivery_at(self.delivery_by_id.get(id)))
    }

    fn delivery_by_body(&self, provider: &Provider, sha: &[u8; 32]) -> Result<Option<Delivery>> {
        Ok(self.delivery_at(self.delivery_by_body.get(&(provider.clone(), *sha))))
    }

    fn deliveries(&self, q: InboxView<'_>, fetch: usize) -> Result<Vec<Delivery>> {
        let key = |d: &Delivery| (d.received_at, d.sequence);
        let after = q.after.map(|a| (a.occurred_at, a.sequence));
        let mut found: Vec<&Delivery> = self
            .deliveries
            .values()
            .filter(|d| q.provider.is_none_or(|p| &d.provider == p))
            .filter(|d| q.verdict.is_none_or(|v| d.verdict() == v))
            .filter(|d| q.since.is_none_or(|t| d.received_at >= t))
            .filter(|d| q.until.is_none_or(|t| d.received_at < t))
            .filter(|d| match (after, q.order) {
                (None, _) => true,
                (Some(a), Order::Asc) => key(d) > a,
                (Some(a), Order::Desc) => key(d) < a,
            })
            .collect();
        found.sort_by_key(|d| key(d));
        if q.order == Order::Desc {
            found.reverse();
        }
        Ok(found
            .into_iter()
            .take(fetch)
            .map(|d| Delivery {
                body: None,
                ..d.clone()
            })
            .collect())
    }

    fn last_delivery(&self) -> Result<Option<(u64, Timestamp)>> {
        Ok(self
            .deliveries
            .last_key_value()
            .map(|(s, d)| (*s, d.received_at)))
    }
}

impl State {
    fn delivery_at(&self, sequence: Option<&u64>) -> Option<Delivery> {
        sequence.and_then(|s| self.deliveries.get(s)).cloned()
    }

    /// Stores `d` at its sequence, or removes what is there for `None`.
    fn set_delivery(&mut self, sequence: u64, d: Option<Delivery>) {
        if let Some(old) = self.deliveries.remove(&sequence) {
            self.delivery_by_id.remove(&old.delivery_id);
            self.delivery_by_body
                .remove(&(old.provider.clone(), old.body_sha256));
        }
        if let Some(d) = d {
            self.delivery_by_id.insert(d.delivery_id, sequence);
            self.delivery_by_body
                .insert((d.provider.clone(), d.body_sha256), sequence);
            self.deliveries.insert(sequence, d);
        }
    }
}

/// One change of a write, and how to take it back.
enum Undo {
    Event(u64),
    Audit(u64),
    Rollup(RollupKey, Option<Totals>),
    Meta(String, Option<Vec<u8>>),
    /// A delivery's sequence and what it held before.
    Delivery(u64, Option<Delivery>),
}

struct Writer<'a> {
    state: &'a mut State,
    undo: Vec<Undo>,
}

impl Drop for Writer<'_> {
    /// Takes back every change still in the undo log: all of a failed or
    /// panicking write.
    fn drop(&mut self) {
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
                            if w.is_empty() {
                                s.by_wallet.remove(&e.wallet_id);
                            }
                        }
                    }
                }
                Undo::Audit(seq) => {
                    s.audit.remove(&seq);
                }
                Undo::Rollup(key, previous) => put_rollup(s, key, previous),
                Undo::Delivery(seq, prev) => s.set_delivery(seq, prev),
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

/// Sets one rollup row, or removes it (and any map left empty) for `None`.
fn put_rollup(s: &mut State, key: RollupKey, totals: Option<Totals>) {
    match totals {
        Some(t) => {
            s.rollups
                .entry(key.wallet_id)
                .or_default()
                .entry(key.bucket)
                .or_default()
                .insert(key.currency, t);
        }
        None => {
            let Some(wallet) = s.rollups.get_mut(&key.wallet_id) else {
                return;
            };
            if let Some(per_currency) = wallet.get_mut(&key.bucket) {
                per_currency.remove(&key.currency);
                if per_currency.is_empty() {
                    wallet.remove(&key.bucket);
                }
            }
            if wallet.is_empty() {
                s.rollups.remove(&key.wallet_id);
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
            fn list(&self, q: QueryView<'_>, fetch: usize) -> Result<Vec<WalletTransactionEvent>> {
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
                before: Timestamp,
                each: &mut dyn FnMut(Currency, Totals) -> Result<()>,
            ) -> Result<()> {
                self.state.buckets_before(wallet, before, each)
            }
            fn rollup(&self, key: &RollupKey) -> Result<Option<Totals>> {
                self.state.rollup(key)
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
            fn delivery(&self, id: &DeliveryId) -> Result<Option<Delivery>> {
                self.state.delivery(id)
            }
            fn delivery_by_body(
                &self,
                provider: &Provider,
                sha: &[u8; 32],
            ) -> Result<Option<Delivery>> {
                self.state.delivery_by_body(provider, sha)
            }
            fn deliveries(&self, q: InboxView<'_>, fetch: usize) -> Result<Vec<Delivery>> {
                self.state.deliveries(q, fetch)
            }
            fn last_delivery(&self) -> Result<Option<(u64, Timestamp)>> {
                self.state.last_delivery()
            }
        }
    };
}

forward_reads!(Writer<'_>);

impl WriteTx for Writer<'_> {
    fn insert_event_if_new(&mut self, e: &WalletTransactionEvent) -> Result<bool> {
        // The same constraints as the SQLite schema, as SQLite resolves
        // them: a taken key is a refused insert (whatever the sequence),
        // then a taken sequence is an error.
        let s = &mut *self.state;
        let key_taken = s.by_id.contains_key(&e.event_id)
            || e.provider_event_id
                .as_ref()
                .is_some_and(|p| s.by_provider.contains_key(&(e.provider.clone(), p.clone())))
            || e.idempotency_key
                .as_ref()
                .is_some_and(|k| s.by_idempotency.contains_key(k));
        if key_taken {
            return Ok(false);
        }
        if s.events.contains_key(&e.sequence) {
            return Err(taken("event", e.sequence));
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
        if self.state.audit.contains_key(&record.sequence) {
            return Err(taken("audit record", record.sequence));
        }
        self.state.audit.insert(record.sequence, record.clone());
        self.undo.push(Undo::Audit(record.sequence));
        Ok(())
    }

    fn put_rollup(&mut self, row: &RollupRow) -> Result<()> {
        let previous = self.state.rollup(&row.key)?;
        put_rollup(self.state, row.key.clone(), Some(row.totals.clone()));
        self.undo.push(Undo::Rollup(row.key.clone(), previous));
        Ok(())
    }

    fn set_meta(&mut self, key: &str, value: &[u8]) -> Result<()> {
        let prev = self.state.meta.insert(key.to_owned(), value.to_vec());
        self.undo.push(Undo::Meta(key.to_owned(), prev));
        Ok(())
    }

    fn put_delivery(&mut self, d: &Delivery) -> Result<()> {
        // The SQLite schema's constraints: one row per id, per sequence and
        // per body; an update keeps what the first receipt fixed.
        let s = &mut *self.state;
        let by_id = s.delivery_by_id.get(&d.delivery_id).copied();
        let by_body = s
            .delivery_by_body
            .get(&(d.provider.clone(), d.body_sha256))
            .copied();
        match by_id {
            Some(seq) => {
                let old = &s.deliveries[&seq];
                if seq != d.sequence
                    || old.provider != d.provider
                    || old.body_sha256 != d.body_sha256
                    || old.received_at != d.received_at
                {
                    return Err(Error::Storage(StorageError::new(
                        StorageErrorKind::Corrupt,
                        format!(
                            "stored delivery {} is damaged: its sequence, provider, body or \
                             receipt time differ from the stored ones",
                            d.delivery_id
                        ),
                    )));
                }
            }
            None if s.deliveries.contains_key(&d.sequence) => {
                return Err(taken("delivery", d.sequence))
            }
            None if by_body.is_some() => {
                return Err(Error::Storage(StorageError::new(
                    StorageErrorKind::Other,
                    format!(
                        "a delivery of {} with this body is already stored",
                        d.provider
                    ),
                )))
            }
            None => {}
        }
        let prev = s.deliveries.get(&d.sequence).cloned();
        s.set_delivery(d.sequence, Some(d.clone()));
        self.undo.push(Undo::Delivery(d.sequence, prev));
        Ok(())
    }

    fn prune_deliveries(&mut self, rules: &InboxPrune) -> Result<Pruned> {
        let s = &mut *self.state;
        let mut doomed: Vec<u64> = s
            .deliveries
            .values()
            .filter(|d| d.received_at < rules.delete_before)
            .map(|d| d.sequence)
            .collect();
        let kept = s.deliveries.len() - doomed.len();
        let over = kept.saturating_sub(usize::try_from(rules.keep_newest).unwrap_or(usize::MAX));
        doomed.extend(
            s.deliveries
                .keys()
                .filter(|seq| !doomed.contains(seq))
                .take(over)
                .copied()
                .collect::<Vec<_>>(),
        );
        let mut pruned = Pruned {
            deliveries_deleted: doomed.len() as u64,
            bodies_dropped: 0,
        };
        for seq in doomed {
            let prev = s.deliveries.get(&seq).cloned();
            s.set_delivery(seq, None);
            self.undo.push(Undo::Delivery(seq, prev));
        }
        let stale: Vec<u64> = s
            .deliveries
            .values()
            .filter(|d| {
                d.verdict() == Verdict::Ingested
                    && d.received_at >= rules.ingested_body_after
                    && d.received_at < rules.ingested_body_before
                    && d.body.is_some()
            })
            .map(|d| d.sequence)
            .collect();
        for seq in stale {
            let prev = s.deliveries.get(&seq).cloned();
            if let Some(d) = s.deliveries.get_mut(&seq) {
                d.body = None;
            }
            self.undo.push(Undo::Delivery(seq, prev));
            pruned.bodies_dropped += 1;
        }
        Ok(pruned)
    }
}
