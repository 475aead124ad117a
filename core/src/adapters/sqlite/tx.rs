//! Transactions: the port's reads and writes as SQL on one connection.

use rusqlite::{params, CachedStatement, Connection, OptionalExtension, ToSql};

use super::error::map_err;
use super::rows::{
    amount_from_row, audit_from_row, currency_totals, delivery_from_row, event_from_row,
    rollup_from_row, totals_from_row,
};
use crate::adapters::stored::{bucket_to_column, hash32, StoredDelivery, ALL_TIME_BUCKET};
use crate::domain::{
    AuditRecord, Currency, Delivery, DeliveryId, EventId, IdempotencyKey, InboxView, Order,
    Provider, ProviderEventId, QueryView, Result, RollupKey, RollupRow, Timestamp, Totals, Verdict,
    WalletId, WalletTransactionEvent,
};
use crate::ports::{AmountRow, InboxPrune, InboxTally, Pruned, ReadTx, WriteTx};

/// A transaction on one connection; reads and, on the writer, writes.
pub(super) struct Tx<'c> {
    conn: &'c Connection,
    /// The two statements a batch runs per event, held for the whole
    /// transaction instead of fetched from the cache every time.
    insert_event: Option<CachedStatement<'c>>,
    append_audit: Option<CachedStatement<'c>>,
    /// The highest sequence stored and its receipt time, as this
    /// transaction last read or wrote it (`(0, i64::MIN)`: none stored):
    /// a delivery appended right after it needs no look at its neighbours.
    last_delivery: std::cell::Cell<Option<(i64, i64)>>,
    /// What the storage knows of its deliveries beyond this transaction.
    known: &'c Known,
    /// This transaction deleted deliveries: until it commits, what it
    /// reads of them is not known to last. A guard: no transaction today
    /// both prunes and looks a body up.
    deleted_deliveries: std::cell::Cell<bool>,
}

impl<'c> Tx<'c> {
    pub(super) fn new(conn: &'c Connection, known: &'c Known) -> Self {
        Tx {
            conn,
            insert_event: None,
            append_audit: None,
            last_delivery: std::cell::Cell::new(None),
            known,
            deleted_deliveries: std::cell::Cell::new(false),
        }
    }
}

/// What an open ledger keeps knowing of its inbox between transactions.
#[derive(Debug, Default)]
pub(super) struct Known {
    pub(super) random_ids: RandomIds,
    /// The inbox's last count, for retention at the cap.
    pub(super) tally: InboxTally,
}

/// Whether a database is known to hold no delivery whose id is random (one
/// stored before schema 3). Every delivery stored since has the id its
/// body gives, and a stored delivery keeps its id, so once none is left
/// none comes back: from then on a body is found by its id alone, and the
/// look among the random ids (an empty index's seek, one more cursor per
/// receipt) is skipped.
#[derive(Debug, Default)]
pub(super) struct RandomIds {
    none_left: std::sync::atomic::AtomicBool,
}

/// The statement in `slot`, prepared (through the cache) on first use.
fn held<'s, 'c>(
    conn: &'c Connection,
    slot: &'s mut Option<CachedStatement<'c>>,
    sql: &str,
) -> Result<&'s mut CachedStatement<'c>> {
    if slot.is_none() {
        *slot = Some(conn.prepare_cached(sql).map_err(map_err)?);
    }
    // Filled just above when it was empty.
    Ok(slot.as_mut().expect("the statement was just prepared"))
}

impl Tx<'_> {
    fn one_event(
        &self,
        sql: &str,
        params: &[&dyn ToSql],
    ) -> Result<Option<WalletTransactionEvent>> {
        let mut stmt = self.conn.prepare_cached(sql).map_err(map_err)?;
        let row = stmt
            .query_row(params, |r| Ok(event_from_row(r)))
            .optional()
            .map_err(map_err)?;
        row.transpose()
    }

    fn events(
        &self,
        sql: &str,
        params: &[(&str, &dyn ToSql)],
    ) -> Result<Vec<WalletTransactionEvent>> {
        let mut stmt = self.conn.prepare_cached(sql).map_err(map_err)?;
        let rows = stmt
            .query_map(params, |r| Ok(event_from_row(r)))
            .map_err(map_err)?;
        let mut out = Vec::new();
        for row in rows {
            out.push(row.map_err(map_err)??);
        }
        Ok(out)
    }
}

impl ReadTx for Tx<'_> {
    fn event_by_id(&self, id: &EventId) -> Result<Option<WalletTransactionEvent>> {
        let sql = concat!(
            "SELECT ",
            event_columns!(),
            " FROM events WHERE event_id = ?1"
        );
        self.one_event(sql, &[&id.as_bytes().as_slice()])
    }

    fn event_by_provider_event_id(
        &self,
        p: &Provider,
        id: &ProviderEventId,
    ) -> Result<Option<WalletTransactionEvent>> {
        let sql = concat!(
            "SELECT ",
            event_columns!(),
            " FROM events WHERE provider = ?1 AND provider_event_id = ?2"
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
            " FROM events WHERE idempotency_key = ?1"
        );
        self.one_event(sql, &[&key.as_str()])
    }

    fn list(&self, q: QueryView<'_>, fetch: usize) -> Result<Vec<WalletTransactionEvent>> {
        let mut sql = concat!(
            "SELECT ",
            event_columns!(),
            " FROM events WHERE wallet_id = :wallet"
        )
        .to_owned();
        let wallet = q.wallet_id.as_str();
        let after_at = q.after.map(|a| a.occurred_at.as_micros());
        let after_seq = q.after.map(|a| a.sequence as i64);
        let since = q.since.map(|t| t.as_micros());
        let until = q.until.map(|t| t.as_micros());
        let currency = q.currency.map(|c| c.as_str());
        let fetch = fetch as i64;
        let mut params: Vec<(&str, &dyn ToSql)> = vec![(":wallet", &wallet), (":fetch", &fetch)];
        if let (Some(at), Some(seq)) = (&after_at, &after_seq) {
            // A range on the index column first, so SQLite seeks to the cursor.
            sql.push_str(match q.order {
                Order::Desc => " AND occurred_at <= :at AND (occurred_at < :at OR sequence < :seq)",
                Order::Asc => " AND occurred_at >= :at AND (occurred_at > :at OR sequence > :seq)",
            });
            params.push((":at", at));
            params.push((":seq", seq));
        }
        if let Some(s) = &since {
            sql.push_str(" AND occurred_at >= :since");
            params.push((":since", s));
        }
        if let Some(u) = &until {
            sql.push_str(" AND occurred_at < :until");
            params.push((":until", u));
        }
        if let Some(types) = q.event_types {
            let codes: Vec<String> = types.iter().map(|t| t.code().to_string()).collect();
            sql.push_str(&format!(" AND event_type IN ({})", codes.join(",")));
        }
        if let Some(c) = &currency {
            sql.push_str(" AND currency = :currency");
            params.push((":currency", c));
        }
        sql.push_str(match q.order {
            Order::Desc => " ORDER BY occurred_at DESC, sequence DESC LIMIT :fetch",
            Order::Asc => " ORDER BY occurred_at ASC, sequence ASC LIMIT :fetch",
        });
        self.events(&sql, &params)
    }

    fn events_after(&self, sequence: u64, limit: usize) -> Result<Vec<WalletTransactionEvent>> {
        let sql = concat!(
            "SELECT ",
            event_columns!(),
            " FROM events WHERE sequence > :after ORDER BY sequence LIMIT :limit"
        );
        let (after, limit) = (sequence as i64, limit as i64);
        self.events(sql, &[(":after", &after), (":limit", &limit)])
    }

    fn last_event_sequence(&self) -> Result<u64> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT COALESCE(MAX(sequence), 0) FROM events")
            .map_err(map_err)?;
        let n: i64 = stmt.query_row([], |r| r.get(0)).map_err(map_err)?;
        Ok(n as u64)
    }

    fn balances(&self, wallet: &WalletId) -> Result<Vec<(Currency, Totals)>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT available, held, event_count, last_occurred_at, currency \
                 FROM rollups WHERE wallet_id = ?1 AND bucket = ?2",
            )
            .map_err(map_err)?;
        let rows = stmt
            .query_map(params![wallet.as_str(), ALL_TIME_BUCKET], |r| {
                Ok(currency_totals(r))
            })
            .map_err(map_err)?;
        rows.map(|r| r.map_err(map_err)?).collect()
    }

    fn buckets_before(
        &self,
        wallet: &WalletId,
        before: Timestamp,
        each: &mut dyn FnMut(Currency, Totals) -> Result<()>,
    ) -> Result<()> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT available, held, event_count, last_occurred_at, currency \
                 FROM rollups WHERE wallet_id = ?1 AND bucket < ?2",
            )
            .map_err(map_err)?;
        let rows = stmt
            .query_map(params![wallet.as_str(), before.as_micros()], |r| {
                Ok(currency_totals(r))
            })
            .map_err(map_err)?;
        for row in rows {
            let (c, t) = row.map_err(map_err)??;
            each(c, t)?;
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
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT event_type, amount, currency, occurred_at, sequence \
                 FROM events WHERE wallet_id = ?1 AND occurred_at BETWEEN ?2 AND ?3",
            )
            .map_err(map_err)?;
        let rows = stmt
            .query_map(
                params![wallet.as_str(), from.as_micros(), to.as_micros()],
                |r| Ok(amount_from_row(r)),
            )
            .map_err(map_err)?;
        for row in rows {
            each(row.map_err(map_err)??)?;
        }
        Ok(())
    }

    fn rollup(&self, key: &RollupKey) -> Result<Option<Totals>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT available, held, event_count, last_occurred_at FROM rollups \
                 WHERE wallet_id = ?1 AND bucket = ?2 AND currency = ?3",
            )
            .map_err(map_err)?;
        let row = stmt
            .query_row(
                params![
                    key.wallet_id.as_str(),
                    bucket_to_column(key.bucket),
                    key.currency.as_str()
                ],
                |r| Ok(totals_from_row(r)),
            )
            .optional()
            .map_err(map_err)?;
        row.transpose()
    }

    fn rollups(&self, each: &mut dyn FnMut(RollupRow) -> Result<()>) -> Result<()> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT available, held, event_count, last_occurred_at, currency, wallet_id, bucket \
                 FROM rollups",
            )
            .map_err(map_err)?;
        let mut rows = stmt.query([]).map_err(map_err)?;
        while let Some(r) = rows.next().map_err(map_err)? {
            each(rollup_from_row(r)?)?;
        }
        Ok(())
    }

    fn audit_after(&self, sequence: u64, limit: usize) -> Result<Vec<AuditRecord>> {
        let sql = concat!(
            "SELECT ",
            audit_columns!(),
            " FROM audit WHERE sequence > ?1 ORDER BY sequence LIMIT ?2"
        );
        let mut stmt = self.conn.prepare_cached(sql).map_err(map_err)?;
        let rows = stmt
            .query_map(params![sequence as i64, limit as i64], |r| {
                Ok(audit_from_row(r))
            })
            .map_err(map_err)?;
        rows.map(|r| r.map_err(map_err)?).collect()
    }

    fn last_audit(&self) -> Result<Option<(u64, [u8; 32])>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT sequence, hash FROM audit ORDER BY sequence DESC LIMIT 1")
            .map_err(map_err)?;
        let row = stmt
            .query_row([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?)))
            .optional()
            .map_err(map_err)?;
        row.map(|(seq, hash)| Ok((seq as u64, hash32("audit.hash", &hash)?)))
            .transpose()
    }

    fn meta(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT value FROM meta WHERE key = ?1")
            .map_err(map_err)?;
        stmt.query_row([key], |r| r.get(0))
            .optional()
            .map_err(map_err)
    }

    fn delivery(&self, id: &DeliveryId) -> Result<Option<Delivery>> {
        let sql = concat!(
            "SELECT ",
            delivery_columns!(),
            ", body FROM deliveries WHERE delivery_id = ?1"
        );
        self.one_delivery(sql, &[&id.as_bytes().as_slice()])
    }

    fn delivery_by_body(&self, provider: &Provider, sha: &[u8; 32]) -> Result<Option<Delivery>> {
        use std::sync::atomic::Ordering::Relaxed;
        let id = DeliveryId::for_body(provider, sha);
        let params: [&dyn ToSql; 3] = [
            &id.as_bytes().as_slice(),
            &provider.as_str(),
            &sha.as_slice(),
        ];
        let by_id = concat!(
            "SELECT ",
            delivery_columns!(),
            ", body FROM deliveries \
             WHERE delivery_id = ?1 AND provider = ?2 AND body_sha256 = ?3"
        );
        if self.known.random_ids.none_left.load(Relaxed) {
            return self.one_delivery(by_id, &params);
        }
        let any_random: bool = self
            .conn
            .prepare_cached(ANY_RANDOM_ID)
            .and_then(|mut s| s.query_row([], |r| r.get(0)))
            .map_err(map_err)?;
        if !any_random {
            // Known for good only if no deletion of this transaction, which
            // could still roll back, made it so.
            if !self.deleted_deliveries.get() {
                self.known.random_ids.none_left.store(true, Relaxed);
            }
            return self.one_delivery(by_id, &params);
        }
        // By the id the body gives, else among the ids that are not
        // derived (`deliveries_body` holds only those).
        let sql = concat!(
            "SELECT ",
            delivery_columns!(),
            ", body FROM deliveries \
             WHERE delivery_id = ?1 AND provider = ?2 AND body_sha256 = ?3 \
             UNION ALL SELECT ",
            delivery_columns!(),
            ", body FROM deliveries \
             WHERE provider = ?2 AND body_sha256 = ?3 AND id_derived = 0 \
             LIMIT 1"
        );
        self.one_delivery(sql, &params)
    }

    fn deliveries(&self, q: InboxView<'_>, fetch: usize) -> Result<Vec<Delivery>> {
        let mut sql =
            concat!("SELECT ", delivery_columns!(), " FROM deliveries WHERE 1").to_owned();
        let provider = q.provider.map(|p| p.as_str());
        let verdict = q.verdict.map(|v| v.code());
        let after_at = q.after.map(|a| a.occurred_at.as_micros());
        let after_seq = q.after.map(|a| a.sequence as i64);
        let since = q.since.map(|t| t.as_micros());
        let until = q.until.map(|t| t.as_micros());
        let fetch = fetch as i64;
        let mut params: Vec<(&str, &dyn ToSql)> = vec![(":fetch", &fetch)];
        if let Some(p) = &provider {
            sql.push_str(" AND provider = :provider");
            params.push((":provider", p));
        }
        // Dead letters of one provider are read through `deliveries_dead`,
        // in its order; everything else in sequence order, which is receipt
        // order (schema 4), its time range found by searching the sequence.
        let dead = matches!(verdict, Some(v) if v > Verdict::Ignored.code()) && provider.is_some();
        if let Some(v) = verdict {
            // A literal, and the partial index's condition spelled out, so
            // that dead letters are read through `deliveries_dead`.
            sql.push_str(&format!(" AND verdict = {v}"));
            if v > Verdict::Ignored.code() {
                sql.push_str(" AND verdict > 2");
            }
        }
        if let (Some(at), Some(seq)) = (&after_at, &after_seq) {
            sql.push_str(match q.order {
                Order::Desc => " AND received_at <= :at AND (received_at < :at OR sequence < :seq)",
                Order::Asc => " AND received_at >= :at AND (received_at > :at OR sequence > :seq)",
            });
            params.push((":at", at));
            params.push((":seq", seq));
        }
        // The cursor as a sequence range the table's b-tree seeks to, taken
        // from the stored times (not the cursor's sequence, which a
        // renumbering or a table emptied by retention may have reused); the
        // exact condition above then filters the cursor's own microsecond.
        let cursor_bound = match (&after_at, dead) {
            (Some(at), false) => Some(match q.order {
                Order::Desc => self.first_sequence_from(at.saturating_add(1))?,
                Order::Asc => self.first_sequence_from(*at)?,
            }),
            _ => None,
        };
        if let Some(b) = &cursor_bound {
            sql.push_str(match q.order {
                Order::Desc => " AND sequence < :bound",
                Order::Asc => " AND sequence >= :bound",
            });
            params.push((":bound", b));
        }
        let from = match (&since, dead) {
            (Some(s), false) => Some(self.first_sequence_from(*s)?),
            _ => None,
        };
        let to = match (&until, dead) {
            (Some(u), false) => Some(self.first_sequence_from(*u)?),
            _ => None,
        };
        if let Some(s) = &since {
            sql.push_str(" AND received_at >= :since");
            params.push((":since", s));
        }
        if let Some(u) = &until {
            sql.push_str(" AND received_at < :until");
            params.push((":until", u));
        }
        if let Some(f) = &from {
            sql.push_str(" AND sequence >= :from");
            params.push((":from", f));
        }
        if let Some(t) = &to {
            sql.push_str(" AND sequence < :to");
            params.push((":to", t));
        }
        sql.push_str(match (q.order, dead) {
            (Order::Desc, true) => " ORDER BY received_at DESC, sequence DESC LIMIT :fetch",
            (Order::Asc, true) => " ORDER BY received_at ASC, sequence ASC LIMIT :fetch",
            (Order::Desc, false) => " ORDER BY sequence DESC LIMIT :fetch",
            (Order::Asc, false) => " ORDER BY sequence ASC LIMIT :fetch",
        });
        let mut stmt = self.conn.prepare_cached(&sql).map_err(map_err)?;
        let rows = stmt
            .query_map(params.as_slice(), |r| Ok(delivery_from_row(r, false)))
            .map_err(map_err)?;
        rows.map(|r| r.map_err(map_err)?).collect()
    }

    fn last_delivery(&self) -> Result<Option<(u64, Timestamp)>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT sequence, received_at FROM deliveries ORDER BY sequence DESC LIMIT 1",
            )
            .map_err(map_err)?;
        let row: Option<(i64, i64)> = stmt
            .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()
            .map_err(map_err)?;
        self.last_delivery.set(Some(row.unwrap_or((0, i64::MIN))));
        row.map(|(s, at)| crate::adapters::stored::last_delivery_of(s, at))
            .transpose()
    }
}

/// Whether any delivery has an id that is not derived: a look into the
/// partial index that holds only those (empty on any newer ledger).
const ANY_RANDOM_ID: &str = "SELECT EXISTS (SELECT 1 FROM deliveries WHERE id_derived = 0)";

/// The lowest and highest sequence of the inbox. Each in a subquery of its
/// own: SQLite seeks for a lone `MIN` or `MAX` but walks the whole table
/// for both in one `SELECT`.
const SEQUENCE_BOUNDS: &str = "SELECT (SELECT MIN(sequence) FROM deliveries), \
     (SELECT MAX(sequence) FROM deliveries)";

/// A probe of the binary search over receipt order.
const RECEIVED_AT_OR_AFTER: &str =
    "SELECT received_at FROM deliveries WHERE sequence >= ?1 ORDER BY sequence LIMIT 1";

impl Tx<'_> {
    /// Refuses `d` when it would be received before the delivery stored
    /// before it or after the one stored after it.
    fn check_receipt_order(&self, d: &Delivery) -> Result<()> {
        let mut around = self
            .conn
            .prepare_cached(
                "SELECT (SELECT received_at FROM deliveries WHERE sequence < ?1 \
                 ORDER BY sequence DESC LIMIT 1), \
                 (SELECT received_at FROM deliveries WHERE sequence > ?1 \
                 ORDER BY sequence LIMIT 1)",
            )
            .map_err(map_err)?;
        let (before, after): (Option<i64>, Option<i64>) = around
            .query_row([d.sequence as i64], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(map_err)?;
        let at = d.received_at.as_micros();
        if before.is_some_and(|b| b > at) || after.is_some_and(|a| a < at) {
            return Err(crate::domain::ValidationError::new(
                "received_at",
                format!(
                    "delivery {} (sequence {}) would be received before the delivery \
                     stored before it, or after the one stored after it: receipt order \
                     is sequence order",
                    d.delivery_id, d.sequence
                ),
            )
            .into());
        }
        Ok(())
    }

    /// The lowest sequence whose delivery was received at or after `at`
    /// (one past the last when none was): deliveries are stored in receipt
    /// order (schema 4), so a binary search over the sequence finds it,
    /// each probe one seek of the table's own b-tree.
    fn first_sequence_from(&self, at: i64) -> Result<i64> {
        let Some((mut lo, max)) = self.sequence_bounds()? else {
            return Ok(0);
        };
        let mut probe = self
            .conn
            .prepare_cached(RECEIVED_AT_OR_AFTER)
            .map_err(map_err)?;
        // Invariant: every delivery below `lo` was received before `at`,
        // and the first one at or after `hi` (if any) at or after it.
        let mut hi = max.saturating_add(1);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            // mid <= max: some delivery has a sequence at or after it.
            let first: i64 = probe.query_row([mid], |r| r.get(0)).map_err(map_err)?;
            if first >= at {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        Ok(lo)
    }

    /// The lowest and highest sequence stored (two seeks), if any.
    fn sequence_bounds(&self) -> Result<Option<(i64, i64)>> {
        let mut bounds = self.conn.prepare_cached(SEQUENCE_BOUNDS).map_err(map_err)?;
        let (min, max): (Option<i64>, Option<i64>) = bounds
            .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(map_err)?;
        Ok(min.zip(max))
    }

    /// Deletes the `excess` oldest deliveries (see [`InboxPrune::excess`]),
    /// found from the oldest end.
    fn delete_oldest(&self, excess: u64) -> Result<u64> {
        if excess == 0 {
            return Ok(0);
        }
        let mut delete = self
            .conn
            .prepare_cached(
                "DELETE FROM deliveries WHERE sequence IN \
                 (SELECT sequence FROM deliveries ORDER BY sequence LIMIT ?1)",
            )
            .map_err(map_err)?;
        let excess = i64::try_from(excess).unwrap_or(i64::MAX);
        Ok(delete.execute([excess]).map_err(map_err)? as u64)
    }

    fn one_delivery(&self, sql: &str, params: &[&dyn ToSql]) -> Result<Option<Delivery>> {
        let mut stmt = self.conn.prepare_cached(sql).map_err(map_err)?;
        let row = stmt
            .query_row(params, |r| Ok(delivery_from_row(r, true)))
            .optional()
            .map_err(map_err)?;
        row.transpose()
    }
}

impl WriteTx for Tx<'_> {
    fn insert_event_if_new(&mut self, e: &WalletTransactionEvent) -> Result<bool> {
        // The unique indexes on the three keys do the check, each named as
        // a conflict target: any other constraint, a taken sequence
        // included, still fails loudly.
        let stmt = held(
            self.conn,
            &mut self.insert_event,
            concat!(
                "INSERT INTO events (",
                event_columns!(),
                ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13) \
                 ON CONFLICT (event_id) DO NOTHING \
                 ON CONFLICT (provider, provider_event_id) WHERE provider_event_id IS NOT NULL DO NOTHING \
                 ON CONFLICT (idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING"
            ),
        )?;
        let inserted = stmt
            .execute(params![
                e.sequence as i64,
                e.event_id.as_bytes().as_slice(),
                e.wallet_id.as_str(),
                e.provider.as_str(),
                e.event_type.code(),
                e.amount.to_string(),
                e.currency.as_str(),
                e.provider_event_id.as_ref().map(|p| p.as_str()),
                e.idempotency_key.as_ref().map(|k| k.as_str()),
                e.metadata.as_json(),
                e.occurred_at.as_micros(),
                e.created_at.as_micros(),
                e.occurred_at_estimated,
            ])
            .map_err(map_err)?;
        Ok(inserted == 1)
    }

    fn append_audit(&mut self, r: &AuditRecord) -> Result<()> {
        let stmt = held(
            self.conn,
            &mut self.append_audit,
            concat!(
                "INSERT INTO audit (",
                audit_columns!(),
                ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"
            ),
        )?;
        stmt.execute(params![
            r.sequence as i64,
            r.recorded_at.as_micros(),
            r.action.code(),
            r.event_id.as_bytes().as_slice(),
            r.event_sequence as i64,
            r.matched_on.map(|k| k.code()),
            r.actor,
            r.fingerprint.as_slice(),
            r.body_sha256.as_ref().map(|h| h.as_slice()),
            r.prev_hash.as_slice(),
            r.hash.as_slice(),
            r.delivery_id.as_ref().map(|d| d.as_bytes().as_slice()),
        ])
        .map_err(map_err)?;
        Ok(())
    }

    fn put_rollup(&mut self, row: &RollupRow) -> Result<()> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "INSERT OR REPLACE INTO rollups \
                 (wallet_id, bucket, currency, available, held, event_count, last_occurred_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )
            .map_err(map_err)?;
        let t = &row.totals;
        stmt.execute(params![
            row.key.wallet_id.as_str(),
            bucket_to_column(row.key.bucket),
            row.key.currency.as_str(),
            t.available.to_string(),
            t.held.to_string(),
            t.event_count as i64,
            t.last_occurred_at.map(|x| x.as_micros()),
        ])
        .map_err(map_err)?;
        Ok(())
    }

    fn set_meta(&mut self, key: &str, value: &[u8]) -> Result<()> {
        let mut stmt = self
            .conn
            .prepare_cached("INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)")
            .map_err(map_err)?;
        stmt.execute(params![key, value]).map_err(map_err)?;
        Ok(())
    }

    fn put_delivery(&mut self, d: &Delivery) -> Result<()> {
        // Receipt order must stay sequence order (the listings search it):
        // a delivery received before its predecessor or after its successor
        // is refused. A new delivery right after the last one this
        // transaction knows of (the usual receipt, which has just read it)
        // has no successor and its predecessor's time is known; any other
        // costs two seeks of the table's b-tree. Retention deletes only
        // the oldest deliveries, whose times are no later than the last's.
        let at = d.received_at.as_micros();
        let sequence = d.sequence as i64;
        let appended = self
            .last_delivery
            .get()
            .is_some_and(|(last, last_at)| sequence == last + 1 && at >= last_at);
        if !appended {
            self.check_receipt_order(d)?;
        }
        let (row, verdict, last_attempt_at) = StoredDelivery::of(d);
        // An upsert on the id alone: a taken sequence or body is an error.
        let mut stmt = self
            .conn
            .prepare_cached(concat!(
                "INSERT INTO deliveries (",
                delivery_columns!(),
                ", body, verdict, last_attempt_at, id_derived) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14) \
                 ON CONFLICT (delivery_id) DO UPDATE SET \
                 url = excluded.url, headers = excluded.headers, body = excluded.body, \
                 attempt_count = excluded.attempt_count, attempts = excluded.attempts, \
                 verdict = excluded.verdict, last_attempt_at = excluded.last_attempt_at \
                 WHERE sequence = excluded.sequence AND provider = excluded.provider \
                 AND body_sha256 = excluded.body_sha256 AND received_at = excluded.received_at"
            ))
            .map_err(map_err)?;
        let changed = stmt
            .execute(params![
                row.sequence,
                row.delivery_id,
                row.provider,
                row.received_at,
                row.url,
                row.headers,
                row.body_sha256,
                row.body_bytes,
                row.attempt_count,
                row.attempts,
                row.body,
                verdict,
                last_attempt_at,
                d.delivery_id.is_derived_from(&d.provider, &d.body_sha256),
            ])
            .map_err(map_err)?;
        if changed != 1 {
            return Err(crate::adapters::stored::corrupt(
                &format!("delivery {}", d.delivery_id),
                "its sequence, provider, body or receipt time differ from the stored ones",
            ));
        }
        if let Some((last, _)) = self.last_delivery.get() {
            if sequence > last {
                self.last_delivery.set(Some((sequence, at)));
            }
        }
        Ok(())
    }

    fn prune_deliveries(&mut self, rules: &InboxPrune) -> Result<Pruned> {
        self.deleted_deliveries.set(true);
        let run = |sql: &str, p: &[&dyn ToSql]| -> Result<u64> {
            let mut stmt = self.conn.prepare_cached(sql).map_err(map_err)?;
            Ok(stmt.execute(p).map_err(map_err)? as u64)
        };
        // Time ranges as sequence ranges (receipt order is sequence order).
        let delete_to = self.first_sequence_from(rules.delete_before.as_micros())?;
        let mut deleted = run(
            "DELETE FROM deliveries WHERE sequence < ?1 AND received_at < ?2",
            &[&delete_to, &rules.delete_before.as_micros()],
        )?;
        let bounds = self.sequence_bounds()?;
        let mut counted = None;
        let excess = rules.excess(bounds, || {
            let count = |sql: &str, p: &[&dyn ToSql]| -> Result<u64> {
                let mut stmt = self.conn.prepare_cached(sql).map_err(map_err)?;
                let n: i64 = stmt.query_row(p, |r| r.get(0)).map_err(map_err)?;
                Ok(n as u64)
            };
            let n = self.known.tally.count(
                bounds.expect("only a stored inbox is counted"),
                |above| {
                    count(
                        "SELECT count(*) FROM deliveries WHERE sequence > ?1",
                        &[&above],
                    )
                },
                || count("SELECT count(*) FROM deliveries", &[]),
            )?;
            counted = Some(n);
            Ok(n)
        })?;
        let cut = self.delete_oldest(excess)?;
        deleted += cut;
        if let Some(n) = counted {
            let after = if cut > 0 {
                self.sequence_bounds()?
            } else {
                bounds
            };
            self.known.tally.record(after, n - cut);
        }
        let bodies_from = self.first_sequence_from(rules.ingested_body_after.as_micros())?;
        let bodies_to = self.first_sequence_from(rules.ingested_body_before.as_micros())?;
        let dropped = run(
            "UPDATE deliveries SET body = NULL \
             WHERE sequence >= ?4 AND sequence < ?5 \
             AND received_at >= ?2 AND received_at < ?3 AND verdict = ?1 \
             AND body IS NOT NULL",
            &[
                &Verdict::Ingested.code(),
                &rules.ingested_body_after.as_micros(),
                &rules.ingested_body_before.as_micros(),
                &bodies_from,
                &bodies_to,
            ],
        )?;
        Ok(Pruned {
            deliveries_deleted: deleted,
            bodies_dropped: dropped,
        })
    }
}

/// Commits on success; rolls back (keeping the first error) on failure.
pub(super) fn finish<T>(conn: &Connection, result: Result<T>) -> Result<T> {
    match result {
        Ok(v) => match conn
            .prepare_cached("COMMIT")
            .and_then(|mut s| s.execute([]))
        {
            Ok(_) => Ok(v),
            Err(e) => {
                let _ = conn.execute_batch("ROLLBACK");
                Err(map_err(e))
            }
        },
        Err(e) => {
            if !conn.is_autocommit() {
                let _ = conn.execute_batch("ROLLBACK");
            }
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use rusqlite::Connection;

    use super::{ANY_RANDOM_ID, RECEIVED_AT_OR_AFTER, SEQUENCE_BOUNDS};
    use crate::adapters::sqlite::schema::MIGRATIONS;

    /// An empty database at the latest schema.
    fn migrated() -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        MIGRATIONS
            .iter()
            .for_each(|sql| conn.execute_batch(sql).unwrap());
        conn
    }

    fn plan(conn: &Connection, sql: &str) -> Vec<String> {
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let params = rusqlite::params_from_iter(vec![0_i64; stmt.parameter_count()]);
        let rows = stmt.query_map(params, |r| r.get::<_, String>(3)).unwrap();
        rows.map(Result::unwrap).collect()
    }

    /// Retention and every inbox page with a time or a cursor run these:
    /// a walk of the deliveries table would make each cost the size of
    /// the inbox. (The same bounds in one `SELECT` did, unseen.)
    #[test]
    fn the_inbox_searches_of_the_sequence_seek() {
        let conn = migrated();
        for sql in [SEQUENCE_BOUNDS, RECEIVED_AT_OR_AFTER] {
            let plan = plan(&conn, sql);
            assert!(
                plan.iter().any(|d| d.starts_with("SEARCH deliveries")),
                "{sql}: {plan:?}"
            );
            assert!(
                !plan.iter().any(|d| d.starts_with("SCAN deliveries")),
                "{sql}: {plan:?}"
            );
        }
        let together = plan(&conn, "SELECT MIN(sequence), MAX(sequence) FROM deliveries");
        assert!(
            together.iter().any(|d| d.starts_with("SCAN deliveries")),
            "SQLite now seeks for both in one SELECT: {together:?}"
        );
    }

    /// Every receipt on a ledger that still holds random ids asks this: it
    /// must look into the partial index of those ids, not walk the table.
    #[test]
    fn whether_a_random_id_is_left_is_asked_of_its_partial_index() {
        let conn = migrated();
        let plan = plan(&conn, ANY_RANDOM_ID);
        assert!(
            plan.iter().any(|d| d.contains("INDEX deliveries_body")),
            "{plan:?}"
        );
        assert!(!plan.iter().any(|d| d == "SCAN deliveries"), "{plan:?}");
    }
}
