//! Transactions: the port's reads and writes as SQL on one connection.
//!
//! Amounts cross as text and are cast to `numeric` by the server (and back
//! with `::text`), so no value ever passes through a float and the scale
//! written is the scale read. Times are microseconds since the Unix epoch.
//!
//! Round trips are what a transaction costs here, so a write transaction
//! saves them: the heads (last event sequence, last audit record) come
//! with `BEGIN` and the lock, in one round trip, and are kept up to date
//! as it writes; audit records and rollup rows are buffered and written
//! in one statement before `COMMIT` (or before a read that would need
//! them); a rollup row read once, or written, is answered from memory,
//! and reading an hour row fetches its all-time row with it. An event is
//! inserted at once, the database saying whether it was new, unless the
//! process's [`RollupCache`] knows its rows: then it is taken as new
//! provisionally and inserted by the statement that commits, which checks
//! it was (a whole write in one round trip).

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use tokio_postgres::error::SqlState;
use tokio_postgres::Row;
use uuid::Uuid;

use super::client::Param;
use super::error::{ambiguous, kind_of, map_err, storage};
use super::pool::Conn;
use crate::adapters::stored::{
    bucket_to_column, hash32, StoredAmount, StoredAudit, StoredDelivery, StoredEvent, StoredTotals,
    ALL_TIME_BUCKET,
};
use crate::domain::{
    AuditRecord, Currency, Delivery, DeliveryId, EventId, IdempotencyKey, InboxView, Order,
    Provider, ProviderEventId, QueryView, Result, RollupBucket, RollupKey, RollupRow,
    StorageErrorKind, Timestamp, Totals, Verdict, WalletId, WalletTransactionEvent,
};
use crate::ports::{AmountRow, InboxPrune, Pruned, ReadTx, WriteTx};

/// The event columns, in the order `event_from_row` reads them.
macro_rules! event_columns {
    () => {
        "sequence, event_id, wallet_id, provider, event_type, amount::text, currency, \
         provider_event_id, idempotency_key, metadata, occurred_at, created_at, \
         occurred_at_estimated"
    };
}

/// The audit columns, in the order `audit_from_row` reads them.
macro_rules! audit_columns {
    () => {
        "sequence, recorded_at, action, event_id, event_sequence, matched_on, \
         actor, fingerprint, body_sha256, prev_hash, hash, delivery_id"
    };
}

/// The delivery columns, in the order `delivery_from_row` reads them
/// (`body` last, left out of listings).
macro_rules! delivery_columns {
    () => {
        "sequence, delivery_id, provider, received_at, url, headers, body_sha256, \
         body_bytes, attempt_count, attempts"
    };
}

/// The sums of a rollup row, then its currency, wallet and bucket.
macro_rules! rollup_columns {
    () => {
        "available::text, held::text, event_count, last_occurred_at, currency, wallet_id, bucket"
    };
}

fn get<'r, T: tokio_postgres::types::FromSql<'r>>(r: &'r Row, i: usize) -> Result<T> {
    r.try_get(i).map_err(map_err)
}

fn event_from_row(r: &Row) -> Result<WalletTransactionEvent> {
    StoredEvent {
        sequence: get(r, 0)?,
        event_id: get::<Uuid>(r, 1)?.as_bytes().to_vec(),
        wallet_id: get(r, 2)?,
        provider: get(r, 3)?,
        event_type: get::<i16>(r, 4)?.into(),
        amount: get(r, 5)?,
        currency: get(r, 6)?,
        provider_event_id: get(r, 7)?,
        idempotency_key: get(r, 8)?,
        metadata: get(r, 9)?,
        occurred_at: get(r, 10)?,
        created_at: get(r, 11)?,
        occurred_at_estimated: get(r, 12)?,
    }
    .into_event()
}

fn audit_from_row(r: &Row) -> Result<AuditRecord> {
    StoredAudit {
        sequence: get(r, 0)?,
        recorded_at: get(r, 1)?,
        action: get::<i16>(r, 2)?.into(),
        event_id: get::<Uuid>(r, 3)?.as_bytes().to_vec(),
        event_sequence: get(r, 4)?,
        matched_on: get::<Option<i16>>(r, 5)?.map(i64::from),
        actor: get(r, 6)?,
        fingerprint: get(r, 7)?,
        body_sha256: get(r, 8)?,
        prev_hash: get(r, 9)?,
        hash: get(r, 10)?,
        delivery_id: get::<Option<Uuid>>(r, 11)?.map(|u| u.as_bytes().to_vec()),
    }
    .into_record()
}

/// The `delivery_columns!`, then `body` when `with_body`.
fn delivery_from_row(r: &Row, with_body: bool) -> Result<Delivery> {
    StoredDelivery {
        sequence: get(r, 0)?,
        delivery_id: get::<Uuid>(r, 1)?.as_bytes().to_vec(),
        provider: get(r, 2)?,
        received_at: get(r, 3)?,
        url: get(r, 4)?,
        headers: get(r, 5)?,
        body_sha256: get(r, 6)?,
        body_bytes: get(r, 7)?,
        attempt_count: get(r, 8)?,
        attempts: get(r, 9)?,
        body: if with_body { get(r, 10)? } else { None },
    }
    .into_delivery()
}

/// Columns 0..=3 of `rollup_columns!`.
fn stored_totals(r: &Row) -> Result<StoredTotals> {
    Ok(StoredTotals {
        available: get(r, 0)?,
        held: get(r, 1)?,
        event_count: get(r, 2)?,
        last_occurred_at: get(r, 3)?,
    })
}

/// The last event sequence and the last audit record, as stored. Every
/// write appends an audit record, so equal heads mean the same ledger state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Heads {
    pub(super) event_sequence: u64,
    pub(super) audit: Option<(u64, [u8; 32])>,
}

/// What a write transaction keeps in memory (see the module documentation).
#[derive(Default)]
struct WriteState {
    heads: Option<Heads>,
    /// The last audit sequence stored (heads count the buffered ones).
    stored_audit: u64,
    /// The last event sequence stored (heads count the deferred ones).
    stored_events: u64,
    /// Events taken as new on the word of the rollup cache, inserted with
    /// the next statement, which checks that each one was.
    deferred: Vec<WalletTransactionEvent>,
    audit: Vec<AuditRecord>,
    /// Rows to write, by key: the last put wins.
    rollups_put: HashMap<RollupKey, Totals>,
    /// Rows as stored or as put in this transaction (`None`: no row).
    rollups_seen: HashMap<RollupKey, Option<Totals>>,
    /// The ledger's advisory lock, which `walletlog_write` takes.
    lock_key: i64,
}

/// The parameters of `walletlog_write` (migration 3).
const WRITE_PARAMS: usize = 35;

/// SQLSTATE of `walletlog_expect`: the heads a writer assumed were stale.
const STALE_HEADS: &str = "WL001";

/// What `walletlog_expect` names when deferred events were not all new.
const NOT_NEW: &str = "new event";

/// The most rollup rows a [`RollupCache`] keeps; past it, it starts over.
const ROLLUP_CACHE_ROWS_MAX: usize = 65_536;

/// Rollup rows as they were stored when the ledger's heads were `at`, as
/// this process's own transactions read and wrote them. While the heads
/// are still `at`, nobody has written since, and a write that finds both
/// rows of its event here can take the event as new without asking the
/// server: the event goes with the audit record and the rollups in one
/// statement, committed in one round trip, which checks under the lock
/// that the heads were `at` and that every such event was indeed new.
#[derive(Default)]
pub(super) struct RollupCache {
    at: Option<Heads>,
    rows: HashMap<RollupKey, Option<Totals>>,
}

impl RollupCache {
    /// Whether the rows are the stored ones while the heads are `heads`.
    pub(super) fn holds_at(&self, heads: Heads) -> bool {
        self.at == Some(heads)
    }

    /// A transaction that began at heads `start` committed, leaving
    /// `end` and the rows it `seen` (read or written).
    pub(super) fn committed(
        &mut self,
        start: Heads,
        end: Option<Heads>,
        seen: HashMap<RollupKey, Option<Totals>>,
    ) {
        if self.at != Some(start) {
            // Someone else wrote in between: only this transaction's rows
            // are known to be current.
            self.rows.clear();
        }
        self.rows.extend(seen);
        if self.rows.len() > ROLLUP_CACHE_ROWS_MAX {
            self.rows.clear();
        }
        self.at = end;
    }

    pub(super) fn forget(&mut self) {
        self.at = None;
        self.rows.clear();
    }
}

impl WriteState {
    /// Remembers the rollup rows of `wanted` as `rows` (in
    /// `rollup_columns!` order) hold them, a key without a row as none;
    /// what this transaction put already is newer, and kept.
    fn saw<'r>(
        &mut self,
        wanted: Vec<RollupKey>,
        rows: impl IntoIterator<Item = &'r Row>,
    ) -> Result<()> {
        let mut stored = HashMap::new();
        for r in rows {
            let row = stored_totals(r)?.into_row(get(r, 5)?, get(r, 4)?, get(r, 6)?)?;
            stored.insert(row.key, row.totals);
        }
        for key in wanted {
            let totals = stored.remove(&key);
            self.rollups_seen.entry(key).or_insert(totals);
        }
        Ok(())
    }
}

/// A transaction on one connection; reads and, when written through, writes.
pub(super) struct Tx<'c> {
    conn: RefCell<&'c mut Conn>,
    write: Option<RefCell<WriteState>>,
    /// Rollup rows known at this transaction's assumed heads: events whose
    /// rows are all here are taken as new and deferred (see [`RollupCache`]).
    cache: Option<&'c Mutex<RollupCache>>,
    /// A deferred event proved not new: run again without deferring.
    missed: Cell<bool>,
    /// An event was deferred: its `true` was provisional.
    deferred_any: Cell<bool>,
    /// `BEGIN` (and the lock) not sent yet: sent with the first statement.
    pending_begin: RefCell<Option<String>>,
    /// The transaction must start again: the heads it assumed were stale,
    /// or the pooled connection was found dead before anything was done.
    retry: Cell<bool>,
    /// Its heads were assumed, not read under the lock.
    assumed: bool,
    /// A statement failed on the server: the transaction is aborted there,
    /// and a `COMMIT` would only roll it back.
    aborted: Cell<bool>,
}

impl<'c> Tx<'c> {
    /// A read transaction, begun.
    pub(super) fn new(conn: &'c mut Conn) -> Self {
        Tx {
            conn: RefCell::new(conn),
            write: None,
            cache: None,
            missed: Cell::new(false),
            deferred_any: Cell::new(false),
            pending_begin: RefCell::new(None),
            retry: Cell::new(false),
            assumed: false,
            aborted: Cell::new(false),
        }
    }

    /// A write transaction with `heads`: read when it began (`begin` is
    /// `None`), or assumed from this process's last commit, with `begin`
    /// (`BEGIN` and the lock) sent together with its first statement and
    /// the assumption checked under the lock by every statement that
    /// depends on it. With `cache` (rollup rows known at those heads),
    /// events may be deferred to the statement that commits.
    pub(super) fn writing(
        conn: &'c mut Conn,
        heads: Heads,
        lock_key: i64,
        begin: Option<String>,
        cache: Option<&'c Mutex<RollupCache>>,
    ) -> Self {
        Tx {
            conn: RefCell::new(conn),
            write: Some(RefCell::new(WriteState {
                heads: Some(heads),
                stored_audit: heads.audit.map_or(0, |(sequence, _)| sequence),
                stored_events: heads.event_sequence,
                lock_key,
                ..WriteState::default()
            })),
            cache,
            missed: Cell::new(false),
            deferred_any: Cell::new(false),
            assumed: begin.is_some(),
            aborted: Cell::new(false),
            pending_begin: RefCell::new(begin),
            retry: Cell::new(false),
        }
    }

    /// The transaction must be started again from scratch (see `retry`).
    pub(super) fn must_retry(&self) -> bool {
        self.retry.get()
    }

    /// A deferred event was not new after all (a duplicate, or a key
    /// another event of the transaction holds): the transaction must run
    /// again, asking the server about each event.
    pub(super) fn missed(&self) -> bool {
        self.missed.get()
    }

    /// An insert was answered provisionally (see [`RollupCache`]).
    pub(super) fn answered_provisionally(&self) -> bool {
        self.deferred_any.get()
    }

    /// The heads after this transaction's writes.
    pub(super) fn final_heads(&self) -> Option<Heads> {
        self.heads()
    }

    /// The rollup rows this transaction read or wrote, as they are once it
    /// commits.
    pub(super) fn take_seen(&self) -> HashMap<RollupKey, Option<Totals>> {
        self.write
            .as_ref()
            .map(|s| std::mem::take(&mut s.borrow_mut().rollups_seen))
            .unwrap_or_default()
    }

    /// A storage error for `e`, noting when it says to start again.
    fn failed(&self, e: tokio_postgres::Error, sent_begin: bool) -> crate::domain::Error {
        // With heads read under the lock, a failed check is the caller's
        // mistake (a sequence already taken), not a reason to start again.
        let stale = self.assumed && e.code() == Some(&SqlState::from_code(STALE_HEADS));
        if stale
            && e.as_db_error()
                .is_some_and(|d| d.message().contains(NOT_NEW))
        {
            self.missed.set(true);
        }
        let dead_before_anything = sent_begin
            && kind_of(&e) == crate::domain::StorageErrorKind::Unavailable
            && !self.conn.borrow().fresh;
        if stale || dead_before_anything {
            self.retry.set(true);
        }
        if e.as_db_error().is_some() {
            self.aborted.set(true);
        }
        map_err(e)
    }

    /// Sends a pending `BEGIN` on its own, when the next statement cannot
    /// carry it.
    fn begin_now(&self) -> Result<()> {
        let Some(begin) = self.pending_begin.borrow_mut().take() else {
            return Ok(());
        };
        let mut conn = self.conn.borrow_mut();
        conn.in_transaction = true;
        let result = conn.client.batch_execute(&begin);
        drop(conn);
        result.map_err(|e| self.failed(e, true))
    }

    /// Ends a write transaction: the buffered writes and `COMMIT`, sent
    /// together; or, when nothing was sent yet, the write statement alone,
    /// which takes the lock and which the server commits in an implicit
    /// transaction. Nothing is sent when nothing was buffered. With
    /// assumed heads the write statement always goes, empty or not: it
    /// checks, under the lock, that the heads this transaction used were
    /// the stored ones.
    pub(super) fn commit(&self) -> Result<()> {
        if self.aborted.get() {
            return Err(storage(
                crate::domain::StorageErrorKind::Other,
                "a statement of this transaction failed, so it was not committed",
            ));
        }
        if self.pending_begin.borrow().is_some() && self.nothing_buffered() {
            return Ok(());
        }
        // Once begun, the write statement always goes with COMMIT, empty or
        // not: it checks the heads, and fails if the transaction was
        // aborted, where a bare COMMIT would answer ROLLBACK and no error.
        let flush = self.flush_statement(true)?;
        let mut conn = self.conn.borrow_mut();
        let Some((sql, params)) = flush else {
            unreachable!("a write transaction always has a write statement")
        };
        let statement = conn.statement(&sql)?;
        let refs: Vec<Param<'_>> = params.iter().map(|p| p.as_ref()).collect();
        if self.pending_begin.borrow_mut().take().is_some() {
            // Nothing sent yet: the whole write is the one statement, which
            // takes the lock itself. It goes alone, outside a transaction
            // block, and the server commits it before answering: one
            // message and one answer, as for a plain INSERT.
            return match conn.client.execute_committing(&statement, &refs) {
                // Nothing was sent: no transaction was begun.
                Err(e) => {
                    drop(conn);
                    Err(self.failed(e, true))
                }
                Ok(Ok(_)) => Ok(()),
                // The server answered with an error: it rolled the implicit
                // transaction back. Nothing ran before this statement, so a
                // pooled connection the server had ended (a restart) is
                // retried on a new one, as a failed `BEGIN` would be.
                Ok(Err(e)) if e.as_db_error().is_some() => {
                    drop(conn);
                    Err(self.failed(e, true))
                }
                // No answer: it may have committed. The connection is
                // marked in a transaction, as after a lost `COMMIT`.
                Ok(Err(e)) => {
                    conn.in_transaction = true;
                    Err(ambiguous(e))
                }
            };
        }
        let (flushed, committed) = conn.client.execute_then_simple(&statement, &refs, "COMMIT");
        match (flushed, committed) {
            // Refused before anything was sent (a parameter that would not
            // encode): the transaction is open, the caller rolls it back.
            (Err(e), None) => {
                drop(conn);
                Err(self.failed(e, false))
            }
            // The server refused the write, aborting the transaction: the
            // COMMIT rolled it back.
            (Err(e), Some(committed)) if e.as_db_error().is_some() => {
                if committed.is_ok() {
                    conn.in_transaction = false;
                }
                drop(conn);
                Err(self.failed(e, false))
            }
            // No answer from the server with COMMIT sent: it may have
            // committed.
            (Err(e), Some(_)) => Err(ambiguous(e)),
            (Ok(_), Some(committed)) => {
                committed.map_err(|e| {
                    if e.as_db_error().is_some() {
                        // The server answered: it did not commit.
                        map_err(e)
                    } else {
                        ambiguous(e)
                    }
                })?;
                conn.in_transaction = false;
                Ok(())
            }
            (Ok(_), None) => unreachable!("COMMIT is sent once the write is"),
        }
    }

    fn nothing_buffered(&self) -> bool {
        self.write.as_ref().is_none_or(|state| {
            let state = state.borrow();
            state.audit.is_empty() && state.rollups_put.is_empty() && state.deferred.is_empty()
        })
    }

    /// Writes the buffered audit records and rollup rows, in one statement.
    pub(super) fn flush(&self) -> Result<()> {
        let (written, inserted) = self.write.as_ref().map_or((None, None), |state| {
            let state = state.borrow();
            (
                state.audit.iter().map(|r| r.sequence).max(),
                state.deferred.iter().map(|e| e.sequence).max(),
            )
        });
        let Some((sql, params)) = self.flush_statement(false)? else {
            return Ok(());
        };
        let refs: Vec<Param<'_>> = params.iter().map(|p| p.as_ref()).collect();
        if let Err(e) = self.execute(&sql, &refs) {
            // The buffers are gone: whatever the error, this transaction
            // must not commit.
            self.aborted.set(true);
            return Err(e);
        }
        if let Some(state) = &self.write {
            let mut state = state.borrow_mut();
            if let Some(sequence) = written {
                state.stored_audit = sequence;
            }
            if let Some(sequence) = inserted {
                state.stored_events = state.stored_events.max(sequence);
            }
        }
        Ok(())
    }

    /// Inserts the deferred events, checking each was new: before any
    /// other statement, so that it sees them.
    fn materialize(&self) -> Result<()> {
        let Some(state) = &self.write else {
            return Ok(());
        };
        let mut state_ref = state.borrow_mut();
        if state_ref.deferred.is_empty() {
            return Ok(());
        }
        let events = std::mem::take(&mut state_ref.deferred);
        let expected = state_ref.stored_events as i64;
        drop(state_ref);
        let mut params = events_params(&events);
        params.push(Box::new(expected));
        params.push(Box::new(events.len() as i64));
        params.push(estimated_param(&events));
        let refs: Vec<Param<'_>> = params.iter().map(|p| p.as_ref()).collect();
        static SQL: OnceLock<String> = OnceLock::new();
        let sql = SQL.get_or_init(|| {
            format!(
                "WITH new_events AS ({} \
                 WHERE walletlog_expect((SELECT coalesce(max(sequence), 0) FROM events), $13, 'event') \
                 ON CONFLICT DO NOTHING RETURNING 1) \
                 SELECT walletlog_expect((SELECT count(*) FROM new_events), $14, 'new event')",
                insert_events_sql(1, 15)
            )
        });
        if let Err(e) = self.query(sql, &refs) {
            self.aborted.set(true);
            return Err(e);
        }
        let mut state = state.borrow_mut();
        let last = events.iter().map(|e| e.sequence).max().unwrap_or(0);
        state.stored_events = state.stored_events.max(last);
        Ok(())
    }

    /// The statement writing the buffered audit records and rollup rows,
    /// with its parameters; `None` when nothing is buffered. The audit
    /// records' insert checks, under the lock, that the last stored record
    /// is the one they chain to.
    #[allow(clippy::type_complexity)]
    fn flush_statement(
        &self,
        even_empty: bool,
    ) -> Result<Option<(String, Vec<Box<dyn tokio_postgres::types::ToSql + Sync>>)>> {
        let Some(state) = &self.write else {
            return Ok(None);
        };
        let mut state = state.borrow_mut();
        if state.audit.is_empty() && state.rollups_put.is_empty() && !even_empty {
            return Ok(None);
        }
        let expected_audit = state.stored_audit as i64;
        let lock_key = state.lock_key;
        let deferred = std::mem::take(&mut state.deferred);
        let audit = std::mem::take(&mut state.audit);
        let rollups: Vec<(RollupKey, Totals)> = state.rollups_put.drain().collect();
        drop(state);
        let a_seq: Vec<i64> = audit.iter().map(|r| r.sequence as i64).collect();
        let a_at: Vec<i64> = audit.iter().map(|r| r.recorded_at.as_micros()).collect();
        let a_action: Vec<i16> = audit.iter().map(|r| i16::from(r.action.code())).collect();
        let a_event: Vec<Uuid> = audit
            .iter()
            .map(|r| Uuid::from_bytes(*r.event_id.as_bytes()))
            .collect();
        let a_event_seq: Vec<i64> = audit.iter().map(|r| r.event_sequence as i64).collect();
        let a_matched: Vec<Option<i16>> = audit
            .iter()
            .map(|r| r.matched_on.map(|k| i16::from(k.code())))
            .collect();
        let a_actor: Vec<&str> = audit.iter().map(|r| r.actor.as_str()).collect();
        let a_fingerprint: Vec<&[u8]> = audit.iter().map(|r| r.fingerprint.as_slice()).collect();
        let a_body: Vec<Option<&[u8]>> = audit
            .iter()
            .map(|r| r.body_sha256.as_ref().map(|h| h.as_slice()))
            .collect();
        let a_prev: Vec<&[u8]> = audit.iter().map(|r| r.prev_hash.as_slice()).collect();
        let a_hash: Vec<&[u8]> = audit.iter().map(|r| r.hash.as_slice()).collect();
        let a_delivery: Vec<Option<Uuid>> = audit
            .iter()
            .map(|r| r.delivery_id.map(|d| Uuid::from_bytes(*d.as_bytes())))
            .collect();
        let r_wallet: Vec<&str> = rollups.iter().map(|(k, _)| k.wallet_id.as_str()).collect();
        let r_bucket: Vec<i64> = rollups
            .iter()
            .map(|(k, _)| bucket_to_column(k.bucket))
            .collect();
        let r_currency: Vec<&str> = rollups.iter().map(|(k, _)| k.currency.as_str()).collect();
        let r_available: Vec<String> = rollups
            .iter()
            .map(|(_, t)| t.available.to_string())
            .collect();
        let r_held: Vec<String> = rollups.iter().map(|(_, t)| t.held.to_string()).collect();
        let r_count: Vec<i64> = rollups.iter().map(|(_, t)| t.event_count as i64).collect();
        let r_last: Vec<Option<i64>> = rollups
            .iter()
            .map(|(_, t)| t.last_occurred_at.map(|x| x.as_micros()))
            .collect();
        // `walletlog_write` (migration 3) takes the lock, checks that the
        // stored heads are the ones this transaction worked from and that
        // every deferred event was new, and writes.
        static SQL: OnceLock<String> = OnceLock::new();
        let sql = SQL.get_or_init(|| {
            let params: Vec<String> = (1..=WRITE_PARAMS).map(|i| format!("${i}")).collect();
            format!("SELECT walletlog_write({})", params.join(", "))
        });
        fn owned<'a, T: tokio_postgres::types::ToSql + Sync + 'static>(
            v: T,
        ) -> Box<dyn tokio_postgres::types::ToSql + Sync + 'a> {
            Box::new(v)
        }
        let own = |v: Vec<&[u8]>| v.into_iter().map(<[u8]>::to_vec).collect::<Vec<Vec<u8>>>();
        let own_str = |v: Vec<&str>| v.into_iter().map(str::to_owned).collect::<Vec<String>>();
        let params = vec![
            owned(a_seq),
            owned(a_at),
            owned(a_action),
            owned(a_event),
            owned(a_event_seq),
            owned(a_matched),
            owned(own_str(a_actor)),
            owned(own(a_fingerprint)),
            owned(
                a_body
                    .into_iter()
                    .map(|b| b.map(<[u8]>::to_vec))
                    .collect::<Vec<Option<Vec<u8>>>>(),
            ),
            owned(own(a_prev)),
            owned(own(a_hash)),
            owned(own_str(r_wallet)),
            owned(r_bucket),
            owned(own_str(r_currency)),
            owned(r_available),
            owned(r_held),
            owned(r_count),
            owned(r_last),
            owned(expected_audit),
        ];
        let mut params = params;
        params.extend(events_params(&deferred));
        params.push(owned(deferred.len() as i64));
        params.push(owned(a_delivery));
        params.push(estimated_param(&deferred));
        params.push(owned(lock_key));
        debug_assert_eq!(params.len(), WRITE_PARAMS);
        Ok(Some((sql.to_owned(), params)))
    }

    /// Takes `e` as new without asking the server, when both its rows are
    /// known: read or written by this transaction, or in the rollup cache
    /// at its heads. It is inserted by the next statement, which checks it
    /// was new (see [`RollupCache`]).
    fn defer(
        &mut self,
        e: &WalletTransactionEvent,
        hour: &RollupKey,
        all_time: &RollupKey,
    ) -> bool {
        let Some(cache) = self.cache else {
            return false;
        };
        let state = self.write.get_or_insert_with(Default::default).get_mut();
        // What this transaction read or wrote is newer than the cache.
        let known = |key: &RollupKey| {
            state.rollups_seen.get(key).cloned().or_else(|| {
                let cache = cache.lock().unwrap_or_else(|p| p.into_inner());
                cache.rows.get(key).cloned()
            })
        };
        let (Some(h), Some(a)) = (known(hour), known(all_time)) else {
            return false;
        };
        state.rollups_seen.entry(hour.clone()).or_insert(h);
        state.rollups_seen.entry(all_time.clone()).or_insert(a);
        state.deferred.push(e.clone());
        if let Some(heads) = &mut state.heads {
            heads.event_sequence = heads.event_sequence.max(e.sequence);
        }
        self.deferred_any.set(true);
        true
    }

    /// The write state, for the port's writes (which run only in a write
    /// transaction).
    fn state(&mut self) -> &mut WriteState {
        self.write.get_or_insert_with(Default::default).get_mut()
    }

    fn heads(&self) -> Option<Heads> {
        self.write.as_ref().and_then(|s| s.borrow().heads)
    }

    fn rollup_stored(&self, key: &RollupKey) -> Result<Option<Totals>> {
        let sql = concat!(
            "SELECT ",
            rollup_columns!(),
            " FROM rollups WHERE wallet_id = $1 AND bucket = $2 AND currency = $3"
        );
        let bucket = bucket_to_column(key.bucket);
        let row = self.query_opt(
            sql,
            &[&key.wallet_id.as_str(), &bucket, &key.currency.as_str()],
        )?;
        row.map(|r| stored_totals(&r)?.into_totals()).transpose()
    }

    /// Runs `sql`; a pending `BEGIN` goes with it, in one round trip.
    fn query(&self, sql: &str, params: &[Param<'_>]) -> Result<Vec<Row>> {
        self.materialize()?;
        let mut conn = self.conn.borrow_mut();
        let prepared = conn.prepared(sql);
        let statement = match prepared {
            Ok(s) => s,
            Err(e) => {
                drop(conn);
                let pending = self.pending_begin.borrow().is_some();
                return Err(self.failed(e, pending));
            }
        };
        let pending = self.pending_begin.borrow_mut().take();
        let Some(begin) = pending else {
            let result = conn.client.query(&statement, params);
            drop(conn);
            return result.map_err(|e| self.failed(e, false));
        };
        conn.in_transaction = true;
        let (begun, result) = conn.client.simple_then_query(&begin, &statement, params);
        drop(conn);
        begun.map_err(|e| self.failed(e, true))?;
        result.map_err(|e| self.failed(e, false))
    }

    fn query_opt(&self, sql: &str, params: &[Param<'_>]) -> Result<Option<Row>> {
        Ok(self.query(sql, params)?.into_iter().next())
    }

    fn execute(&self, sql: &str, params: &[Param<'_>]) -> Result<u64> {
        self.materialize()?;
        self.begin_now()?;
        let mut conn = self.conn.borrow_mut();
        let result = conn
            .prepared(sql)
            .and_then(|statement| conn.client.execute(&statement, params));
        drop(conn);
        result.map_err(|e| self.failed(e, false))
    }

    /// Streams the rows of `sql` to `each`, without holding them all.
    /// `each` must not use this transaction (none of the port's callers do).
    fn each_row(
        &self,
        sql: &str,
        params: &[Param<'_>],
        each: &mut dyn FnMut(&Row) -> Result<()>,
    ) -> Result<()> {
        self.materialize()?;
        self.begin_now()?;
        let mut conn = self.conn.borrow_mut();
        let result = conn
            .prepared(sql)
            .and_then(|statement| conn.client.each_row(&statement, params, each));
        drop(conn);
        result.map_err(|e| self.failed(e, false))?
    }

    fn one_event(&self, sql: &str, params: &[Param<'_>]) -> Result<Option<WalletTransactionEvent>> {
        self.query_opt(sql, params)?
            .map(|r| event_from_row(&r))
            .transpose()
    }

    fn events(&self, sql: &str, params: &[Param<'_>]) -> Result<Vec<WalletTransactionEvent>> {
        self.query(sql, params)?
            .iter()
            .map(event_from_row)
            .collect()
    }
}

/// `INSERT INTO events` of the rows of twelve arrays, parameters `$first`
/// on, in the order [`events_params`] gives them (no `ON CONFLICT` yet).
fn insert_events_sql(first: usize, estimated: usize) -> String {
    let types = [
        "bigint", "uuid", "text", "text", "smallint", "text", "text", "text", "text", "text",
        "bigint", "bigint",
    ];
    let arrays: Vec<String> = types
        .iter()
        .enumerate()
        .map(|(i, t)| format!("${}::{t}[]", first + i))
        .collect();
    format!(
        "INSERT INTO events (sequence, event_id, wallet_id, provider, event_type, amount, \
             currency, provider_event_id, idempotency_key, metadata, occurred_at, created_at, \
             occurred_at_estimated) \
         SELECT s, i, w, p, t, a::numeric, c, pe, ik, m, o, ca, oe \
         FROM unnest({}, ${estimated}::boolean[]) AS e (s, i, w, p, t, a, c, pe, ik, m, o, ca, oe)",
        arrays.join(", ")
    )
}

/// `occurred_at_estimated` of `events`, the array [`insert_events_sql`]
/// numbers apart from the twelve.
fn estimated_param(
    events: &[WalletTransactionEvent],
) -> Box<dyn tokio_postgres::types::ToSql + Sync> {
    Box::new(
        events
            .iter()
            .map(|e| e.occurred_at_estimated)
            .collect::<Vec<bool>>(),
    )
}

/// The columns of `events` as twelve arrays, for [`insert_events_sql`].
fn events_params(
    events: &[WalletTransactionEvent],
) -> Vec<Box<dyn tokio_postgres::types::ToSql + Sync>> {
    fn column<T: tokio_postgres::types::ToSql + Sync + 'static>(
        events: &[WalletTransactionEvent],
        f: impl Fn(&WalletTransactionEvent) -> T,
    ) -> Box<dyn tokio_postgres::types::ToSql + Sync> {
        Box::new(events.iter().map(f).collect::<Vec<T>>())
    }
    vec![
        column(events, |e| e.sequence as i64),
        column(events, |e| Uuid::from_bytes(*e.event_id.as_bytes())),
        column(events, |e| e.wallet_id.as_str().to_owned()),
        column(events, |e| e.provider.as_str().to_owned()),
        column(events, |e| i16::from(e.event_type.code())),
        column(events, |e| e.amount.to_string()),
        column(events, |e| e.currency.as_str().to_owned()),
        column(events, |e| {
            e.provider_event_id.as_ref().map(|p| p.as_str().to_owned())
        }),
        column(events, |e| {
            e.idempotency_key.as_ref().map(|k| k.as_str().to_owned())
        }),
        column(events, |e| e.metadata.as_json().to_owned()),
        column(events, |e| e.occurred_at.as_micros()),
        column(events, |e| e.created_at.as_micros()),
    ]
}

/// Appends `fragment` to `sql`, numbering its `$?` placeholders after the
/// parameters already in `params`, and adds `values` to them.
fn push<'a>(sql: &mut String, params: &mut Vec<Param<'a>>, fragment: &str, values: &[Param<'a>]) {
    let mut parts = fragment.split("$?");
    if let Some(first) = parts.next() {
        sql.push_str(first);
    }
    for (part, value) in parts.zip(values) {
        params.push(*value);
        sql.push_str(&format!("${}", params.len()));
        sql.push_str(part);
    }
}

impl ReadTx for Tx<'_> {
    fn event_by_id(&self, id: &EventId) -> Result<Option<WalletTransactionEvent>> {
        let sql = concat!(
            "SELECT ",
            event_columns!(),
            " FROM events WHERE event_id = $1"
        );
        self.one_event(sql, &[&Uuid::from_bytes(*id.as_bytes())])
    }

    fn event_by_provider_event_id(
        &self,
        p: &Provider,
        id: &ProviderEventId,
    ) -> Result<Option<WalletTransactionEvent>> {
        let sql = concat!(
            "SELECT ",
            event_columns!(),
            " FROM events WHERE provider = $1 AND provider_event_id = $2"
        );
        self.one_event(sql, &[&p.as_str(), &id.as_str()])
    }

    fn event_by_idempotency_key(
        &self,
        key: &IdempotencyKey,
    ) -> Result<Option<WalletTransactionEvent>> {
        let sql = concat!(
            "SELECT ",
            event_columns!(),
            " FROM events WHERE idempotency_key = $1"
        );
        self.one_event(sql, &[&key.as_str()])
    }

    fn list(&self, q: QueryView<'_>, fetch: usize) -> Result<Vec<WalletTransactionEvent>> {
        let wallet = q.wallet_id.as_str();
        let after_at = q.after.map(|a| a.occurred_at.as_micros());
        let after_seq = q.after.map(|a| a.sequence as i64);
        let since = q.since.map(|t| t.as_micros());
        let until = q.until.map(|t| t.as_micros());
        let currency = q.currency.map(|c| c.as_str());
        let types: Option<Vec<i16>> = q
            .event_types
            .map(|types| types.iter().map(|t| i16::from(t.code())).collect());
        let fetch = fetch as i64;
        let mut sql = concat!("SELECT ", event_columns!(), " FROM events").to_owned();
        let mut params: Vec<Param<'_>> = Vec::new();
        push(&mut sql, &mut params, " WHERE wallet_id = $?", &[&wallet]);
        if let (Some(at), Some(seq)) = (&after_at, &after_seq) {
            // A row comparison the (wallet_id, occurred_at, sequence) index
            // seeks to.
            let fragment = match q.order {
                Order::Desc => " AND (occurred_at, sequence) < ($?, $?)",
                Order::Asc => " AND (occurred_at, sequence) > ($?, $?)",
            };
            push(&mut sql, &mut params, fragment, &[at, seq]);
        }
        if let Some(s) = &since {
            push(&mut sql, &mut params, " AND occurred_at >= $?", &[s]);
        }
        if let Some(u) = &until {
            push(&mut sql, &mut params, " AND occurred_at < $?", &[u]);
        }
        if let Some(t) = &types {
            push(&mut sql, &mut params, " AND event_type = ANY($?)", &[t]);
        }
        if let Some(c) = &currency {
            push(&mut sql, &mut params, " AND currency = $?", &[c]);
        }
        let order = match q.order {
            Order::Desc => " ORDER BY occurred_at DESC, sequence DESC LIMIT $?",
            Order::Asc => " ORDER BY occurred_at ASC, sequence ASC LIMIT $?",
        };
        push(&mut sql, &mut params, order, &[&fetch]);
        self.events(&sql, &params)
    }

    fn events_after(&self, sequence: u64, limit: usize) -> Result<Vec<WalletTransactionEvent>> {
        let sql = concat!(
            "SELECT ",
            event_columns!(),
            " FROM events WHERE sequence > $1 ORDER BY sequence LIMIT $2"
        );
        self.events(sql, &[&(sequence as i64), &(limit as i64)])
    }

    fn last_event_sequence(&self) -> Result<u64> {
        if let Some(heads) = self.heads() {
            return Ok(heads.event_sequence);
        }
        let rows = self.query("SELECT coalesce(max(sequence), 0) FROM events", &[])?;
        let n: i64 = get(&rows[0], 0)?;
        Ok(n as u64)
    }

    fn balances(&self, wallet: &WalletId) -> Result<Vec<(Currency, Totals)>> {
        self.flush()?;
        let sql = concat!(
            "SELECT ",
            rollup_columns!(),
            " FROM rollups WHERE wallet_id = $1 AND bucket = $2"
        );
        self.query(sql, &[&wallet.as_str(), &ALL_TIME_BUCKET])?
            .iter()
            .map(|r| stored_totals(r)?.with_currency(get(r, 4)?))
            .collect()
    }

    fn buckets_before(
        &self,
        wallet: &WalletId,
        before: Timestamp,
        each: &mut dyn FnMut(Currency, Totals) -> Result<()>,
    ) -> Result<()> {
        self.flush()?;
        let sql = concat!(
            "SELECT ",
            rollup_columns!(),
            " FROM rollups WHERE wallet_id = $1 AND bucket < $2"
        );
        self.each_row(sql, &[&wallet.as_str(), &before.as_micros()], &mut |r| {
            let (currency, totals) = stored_totals(r)?.with_currency(get(r, 4)?)?;
            each(currency, totals)
        })
    }

    fn rollup(&self, key: &RollupKey) -> Result<Option<Totals>> {
        let Some(state) = &self.write else {
            return self.rollup_stored(key);
        };
        if let Some(seen) = state.borrow().rollups_seen.get(key) {
            return Ok(seen.clone());
        }
        // The hour row and the all-time row of its wallet and currency are
        // read together: folding an event needs both.
        let sql = concat!(
            "SELECT ",
            rollup_columns!(),
            " FROM rollups WHERE wallet_id = $1 AND currency = $2 AND bucket = ANY($3)"
        );
        let mut wanted = vec![key.clone()];
        if key.bucket != RollupBucket::AllTime {
            wanted.push(RollupKey {
                bucket: RollupBucket::AllTime,
                ..key.clone()
            });
        }
        let buckets: Vec<i64> = wanted.iter().map(|k| bucket_to_column(k.bucket)).collect();
        let rows = self.query(
            sql,
            &[&key.wallet_id.as_str(), &key.currency.as_str(), &buckets],
        )?;
        let mut state = state.borrow_mut();
        state.saw(wanted, &rows)?;
        Ok(state.rollups_seen.get(key).cloned().flatten())
    }

    fn amounts_between(
        &self,
        wallet: &WalletId,
        from: Timestamp,
        to: Timestamp,
        each: &mut dyn FnMut(AmountRow) -> Result<()>,
    ) -> Result<()> {
        let sql = "SELECT event_type, amount::text, currency, occurred_at, sequence \
                   FROM events WHERE wallet_id = $1 AND occurred_at BETWEEN $2 AND $3";
        let (from, to) = (from.as_micros(), to.as_micros());
        self.each_row(sql, &[&wallet.as_str(), &from, &to], &mut |r| {
            let row = StoredAmount {
                event_type: get::<i16>(r, 0)?.into(),
                amount: get(r, 1)?,
                currency: get(r, 2)?,
                occurred_at: get(r, 3)?,
                sequence: get(r, 4)?,
            };
            each(row.into_row()?)
        })
    }

    fn rollups(&self, each: &mut dyn FnMut(RollupRow) -> Result<()>) -> Result<()> {
        self.flush()?;
        let sql = concat!("SELECT ", rollup_columns!(), " FROM rollups");
        self.each_row(sql, &[], &mut |r| {
            each(stored_totals(r)?.into_row(get(r, 5)?, get(r, 4)?, get(r, 6)?)?)
        })
    }

    fn audit_after(&self, sequence: u64, limit: usize) -> Result<Vec<AuditRecord>> {
        self.flush()?;
        let sql = concat!(
            "SELECT ",
            audit_columns!(),
            " FROM audit WHERE sequence > $1 ORDER BY sequence LIMIT $2"
        );
        self.query(sql, &[&(sequence as i64), &(limit as i64)])?
            .iter()
            .map(audit_from_row)
            .collect()
    }

    fn last_audit(&self) -> Result<Option<(u64, [u8; 32])>> {
        if let Some(heads) = self.heads() {
            return Ok(heads.audit);
        }
        let row = self.query_opt(
            "SELECT sequence, hash FROM audit ORDER BY sequence DESC LIMIT 1",
            &[],
        )?;
        row.map(|r| {
            let sequence: i64 = get(&r, 0)?;
            let hash: Vec<u8> = get(&r, 1)?;
            Ok((sequence as u64, hash32("audit.hash", &hash)?))
        })
        .transpose()
    }

    fn meta(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let row = self.query_opt("SELECT value FROM meta WHERE key = $1", &[&key])?;
        row.map(|r| get(&r, 0)).transpose()
    }

    fn delivery(&self, id: &DeliveryId) -> Result<Option<Delivery>> {
        let sql = concat!(
            "SELECT ",
            delivery_columns!(),
            ", body FROM deliveries WHERE delivery_id = $1"
        );
        let id = Uuid::from_bytes(*id.as_bytes());
        self.query_opt(sql, &[&id])?
            .map(|r| delivery_from_row(&r, true))
            .transpose()
    }

    fn delivery_by_body(&self, provider: &Provider, sha: &[u8; 32]) -> Result<Option<Delivery>> {
        let sql = concat!(
            "SELECT ",
            delivery_columns!(),
            ", body FROM deliveries WHERE provider = $1 AND body_sha256 = $2"
        );
        self.query_opt(sql, &[&provider.as_str(), &sha.as_slice()])?
            .map(|r| delivery_from_row(&r, true))
            .transpose()
    }

    fn deliveries(&self, q: InboxView<'_>, fetch: usize) -> Result<Vec<Delivery>> {
        let mut sql = concat!(
            "SELECT ",
            delivery_columns!(),
            " FROM deliveries WHERE true"
        )
        .to_owned();
        let provider = q.provider.map(|p| p.as_str());
        let verdict = q.verdict.map(|v| i16::from(v.code()));
        let after_at = q.after.map(|a| a.occurred_at.as_micros());
        let after_seq = q.after.map(|a| a.sequence as i64);
        let since = q.since.map(|t| t.as_micros());
        let until = q.until.map(|t| t.as_micros());
        let fetch = fetch as i64;
        let mut params: Vec<Param<'_>> = Vec::new();
        if let Some(p) = &provider {
            push(&mut sql, &mut params, " AND provider = $?", &[p]);
        }
        if let Some(v) = verdict {
            // A literal, and the partial index's condition spelled out, so
            // that dead letters are read through `deliveries_dead`.
            sql.push_str(&format!(" AND verdict = {v}"));
            if v > i16::from(Verdict::Ignored.code()) {
                sql.push_str(" AND verdict > 2");
            }
        }
        if let (Some(at), Some(seq)) = (&after_at, &after_seq) {
            let fragment = match q.order {
                Order::Desc => " AND (received_at, sequence) < ($?, $?)",
                Order::Asc => " AND (received_at, sequence) > ($?, $?)",
            };
            push(&mut sql, &mut params, fragment, &[at, seq]);
        }
        if let Some(s) = &since {
            push(&mut sql, &mut params, " AND received_at >= $?", &[s]);
        }
        if let Some(u) = &until {
            push(&mut sql, &mut params, " AND received_at < $?", &[u]);
        }
        let order = match q.order {
            Order::Desc => " ORDER BY received_at DESC, sequence DESC LIMIT $?",
            Order::Asc => " ORDER BY received_at ASC, sequence ASC LIMIT $?",
        };
        push(&mut sql, &mut params, order, &[&fetch]);
        self.query(&sql, &params)?
            .iter()
            .map(|r| delivery_from_row(r, false))
            .collect()
    }

    fn last_delivery(&self) -> Result<Option<(u64, Timestamp)>> {
        let row = self.query_opt(
            "SELECT sequence, received_at FROM deliveries ORDER BY sequence DESC LIMIT 1",
            &[],
        )?;
        row.map(|r| {
            crate::adapters::stored::last_delivery_of(get::<i64>(&r, 0)?, get::<i64>(&r, 1)?)
        })
        .transpose()
    }
}

impl WriteTx for Tx<'_> {
    fn insert_event_if_new(&mut self, e: &WalletTransactionEvent) -> Result<bool> {
        // PostgreSQL allows one conflict target per statement, and an error
        // would abort the transaction: DO NOTHING on any unique constraint,
        // then, when nothing was inserted, tell a taken key (the service's
        // duplicate or conflict) from a taken sequence (an error).
        let id = Uuid::from_bytes(*e.event_id.as_bytes());
        let amount = e.amount.to_string();
        let provider_event_id = e.provider_event_id.as_ref().map(|p| p.as_str());
        let idempotency_key = e.idempotency_key.as_ref().map(|k| k.as_str());
        // The event's two rollup rows come back with the insert: folding it
        // reads them next (one round trip saved per event).
        let hour = RollupKey {
            wallet_id: e.wallet_id.clone(),
            currency: e.currency.clone(),
            bucket: RollupBucket::hour_of(e.occurred_at),
        };
        let all_time = RollupKey {
            bucket: RollupBucket::AllTime,
            ..hour.clone()
        };
        if self.defer(e, &hour, &all_time) {
            return Ok(true);
        }
        let buckets = [bucket_to_column(hour.bucket), ALL_TIME_BUCKET];
        // Deferred events go first, so that the stored sequence is known.
        self.materialize()?;
        // The last stored sequence this transaction knows (assumed, or read
        // under the lock): checked by the insert, under the lock.
        let expected_last = match &self.write {
            Some(state) if state.borrow().heads.is_some() => state.borrow().stored_events as i64,
            _ => self.last_event_sequence()? as i64,
        };
        let rows = self.query(
            "WITH inserted AS ( \
                 INSERT INTO events (sequence, event_id, wallet_id, provider, event_type, amount, \
                     currency, provider_event_id, idempotency_key, metadata, occurred_at, \
                     created_at, occurred_at_estimated) \
                 SELECT $1::bigint, $2::uuid, $3::text, $4::text, $5::smallint, \
                     $6::text::numeric, $7::text, $8::text, $9::text, $10::text, $11::bigint, \
                     $12::bigint, $15::boolean \
                 WHERE walletlog_expect((SELECT coalesce(max(sequence), 0) FROM events), $14, 'event') \
                 ON CONFLICT DO NOTHING RETURNING 1 \
             ) \
             SELECT r.available::text, r.held::text, r.event_count, r.last_occurred_at, \
                    r.currency, r.wallet_id, r.bucket, (SELECT count(*) FROM inserted) \
             FROM (SELECT 1) AS one LEFT JOIN rollups r \
                 ON r.wallet_id = $3 AND r.currency = $7 AND r.bucket = ANY($13)",
            &[
                &(e.sequence as i64),
                &id,
                &e.wallet_id.as_str(),
                &e.provider.as_str(),
                &i16::from(e.event_type.code()),
                &amount,
                &e.currency.as_str(),
                &provider_event_id,
                &idempotency_key,
                &e.metadata.as_json(),
                &e.occurred_at.as_micros(),
                &e.created_at.as_micros(),
                &buckets.as_slice(),
                &expected_last,
                &e.occurred_at_estimated,
            ],
        )?;
        let inserted: i64 = get(&rows[0], 7)?;
        // A row of NULLs when the event has no rollup row yet (LEFT JOIN).
        let found: Vec<&Row> = rows
            .iter()
            .filter(|r| matches!(get::<Option<String>>(r, 0), Ok(Some(_))))
            .collect();
        self.state().saw(vec![hour, all_time], found)?;
        if inserted == 1 {
            let state = self.state();
            state.stored_events = state.stored_events.max(e.sequence);
            if let Some(heads) = &mut state.heads {
                heads.event_sequence = heads.event_sequence.max(e.sequence);
            }
            return Ok(true);
        }
        let rows = self.query(
            "SELECT EXISTS (SELECT 1 FROM events WHERE event_id = $1) \
                 OR EXISTS (SELECT 1 FROM events WHERE provider = $2 AND provider_event_id = $3) \
                 OR EXISTS (SELECT 1 FROM events WHERE idempotency_key = $4)",
            &[
                &id,
                &e.provider.as_str(),
                &provider_event_id,
                &idempotency_key,
            ],
        )?;
        if get::<bool>(&rows[0], 0)? {
            return Ok(false);
        }
        Err(storage(
            StorageErrorKind::Other,
            format!(
                "event sequence {} is already taken by another event",
                e.sequence
            ),
        ))
    }

    fn append_audit(&mut self, r: &AuditRecord) -> Result<()> {
        // Written with the rollups before COMMIT; a taken sequence fails
        // there, failing the transaction.
        let state = self.state();
        if let Some(heads) = &mut state.heads {
            if heads
                .audit
                .is_none_or(|(sequence, _)| r.sequence > sequence)
            {
                heads.audit = Some((r.sequence, r.hash));
            }
        }
        state.audit.push(r.clone());
        Ok(())
    }

    fn put_rollup(&mut self, row: &RollupRow) -> Result<()> {
        let state = self.state();
        state
            .rollups_seen
            .insert(row.key.clone(), Some(row.totals.clone()));
        state
            .rollups_put
            .insert(row.key.clone(), row.totals.clone());
        Ok(())
    }

    fn set_meta(&mut self, key: &str, value: &[u8]) -> Result<()> {
        self.execute(
            "INSERT INTO meta (key, value) VALUES ($1, $2) \
             ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
            &[&key, &value],
        )?;
        Ok(())
    }

    fn put_delivery(&mut self, d: &Delivery) -> Result<()> {
        let (row, verdict, last_attempt_at) = StoredDelivery::of(d);
        let id = Uuid::from_bytes(*d.delivery_id.as_bytes());
        let verdict = verdict as i16;
        let changed = self.execute(
            concat!(
                "INSERT INTO deliveries (",
                delivery_columns!(),
                ", body, verdict, last_attempt_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) \
                 ON CONFLICT (delivery_id) DO UPDATE SET \
                 url = EXCLUDED.url, headers = EXCLUDED.headers, body = EXCLUDED.body, \
                 attempt_count = EXCLUDED.attempt_count, attempts = EXCLUDED.attempts, \
                 verdict = EXCLUDED.verdict, last_attempt_at = EXCLUDED.last_attempt_at \
                 WHERE deliveries.sequence = EXCLUDED.sequence \
                 AND deliveries.provider = EXCLUDED.provider \
                 AND deliveries.body_sha256 = EXCLUDED.body_sha256 \
                 AND deliveries.received_at = EXCLUDED.received_at"
            ),
            &[
                &row.sequence,
                &id,
                &row.provider,
                &row.received_at,
                &row.url,
                &row.headers,
                &row.body_sha256,
                &row.body_bytes,
                &row.attempt_count,
                &row.attempts,
                &row.body,
                &verdict,
                &last_attempt_at,
            ],
        )?;
        if changed != 1 {
            return Err(crate::adapters::stored::corrupt(
                &format!("delivery {}", d.delivery_id),
                "its sequence, provider, body or receipt time differ from the stored ones",
            ));
        }
        Ok(())
    }

    fn prune_deliveries(&mut self, rules: &InboxPrune) -> Result<Pruned> {
        let mut deleted = self.execute(
            "DELETE FROM deliveries WHERE received_at < $1",
            &[&rules.delete_before.as_micros()],
        )?;
        // Two seeks below the cap; over it, a count, and the excess found
        // from the oldest end.
        let bounds =
            match self.query_opt("SELECT min(sequence), max(sequence) FROM deliveries", &[])? {
                Some(r) => get::<Option<i64>>(&r, 0)?.zip(get::<Option<i64>>(&r, 1)?),
                None => None,
            };
        let excess = rules.excess(bounds, || {
            let row = self.query_opt("SELECT count(*) FROM deliveries", &[])?;
            Ok(row.map(|r| get::<i64>(&r, 0)).transpose()?.unwrap_or(0) as u64)
        })?;
        if excess > 0 {
            deleted += self.execute(
                "DELETE FROM deliveries WHERE sequence IN \
                 (SELECT sequence FROM deliveries ORDER BY sequence LIMIT $1)",
                &[&i64::try_from(excess).unwrap_or(i64::MAX)],
            )?;
        }
        let dropped = self.execute(
            "UPDATE deliveries SET body = NULL \
             WHERE received_at >= $2 AND received_at < $3 AND verdict = $1 \
             AND body IS NOT NULL",
            &[
                &i16::from(Verdict::Ingested.code()),
                &rules.ingested_body_after.as_micros(),
                &rules.ingested_body_before.as_micros(),
            ],
        )?;
        Ok(Pruned {
            deliveries_deleted: deleted,
            bodies_dropped: dropped,
        })
    }
}
