//! Audit verification: recompute the chain, every event's fingerprint and
//! every stored balance, and name the first thing that does not hold.

use crate::domain::{
    AuditAction, AuditProblem, AuditProblemKind, AuditRecord, AuditReport, Result, RollupBucket,
    RollupFold, WalletTransactionEvent, GENESIS_HASH,
};
use crate::ports::{ReadTx, Storage};
use sha2::{Digest, Sha256};

use super::Service;

const PAGE: usize = 1000;

/// Reads the events in sequence order, a page at a time.
struct EventStream<'t> {
    tx: &'t dyn ReadTx,
    page: std::vec::IntoIter<WalletTransactionEvent>,
    after: u64,
    done: bool,
}

impl<'t> EventStream<'t> {
    fn new(tx: &'t dyn ReadTx) -> Self {
        EventStream {
            tx,
            page: Vec::new().into_iter(),
            after: 0,
            done: false,
        }
    }

    fn next(&mut self) -> Result<Option<WalletTransactionEvent>> {
        loop {
            if let Some(e) = self.page.next() {
                self.after = e.sequence;
                return Ok(Some(e));
            }
            if self.done {
                return Ok(None);
            }
            let page = self.tx.events_after(self.after, PAGE)?;
            self.done = page.len() < PAGE;
            self.page = page.into_iter();
        }
    }
}

fn problem(
    kind: AuditProblemKind,
    record: Option<u64>,
    event: Option<u64>,
    detail: impl Into<String>,
) -> AuditProblem {
    AuditProblem {
        kind,
        record_sequence: record,
        event_sequence: event,
        detail: detail.into(),
    }
}

fn which(bucket: RollupBucket) -> String {
    match bucket {
        RollupBucket::AllTime => "current balance".to_owned(),
        RollupBucket::Hour { start } => format!("hour bucket starting {start}"),
    }
}

/// The walk over records and events; stops at the first problem.
struct Walk<'a> {
    chain: &'a crate::domain::AuditChain,
    records: u64,
    events: u64,
    expected_sequence: u64,
    prev_hash: [u8; 32],
    pending: Option<WalletTransactionEvent>,
    /// The rollups the events imply, from zero.
    fold: RollupFold,
    /// Deliveries whose body was checked against an audited hash.
    deliveries_checked: std::collections::HashSet<crate::domain::DeliveryId>,
}

impl Walk<'_> {
    fn record(
        &mut self,
        r: &AuditRecord,
        events: &mut EventStream<'_>,
    ) -> Result<Option<AuditProblem>> {
        self.records += 1;
        if r.sequence != self.expected_sequence {
            return Ok(Some(problem(
                AuditProblemKind::ChainBroken,
                Some(r.sequence),
                None,
                format!(
                    "expected record {} next; records were deleted or renumbered",
                    self.expected_sequence
                ),
            )));
        }
        if r.prev_hash != self.prev_hash {
            return Ok(Some(problem(
                AuditProblemKind::ChainBroken,
                Some(r.sequence),
                None,
                "does not link to the record before it: a record was deleted, inserted or replaced",
            )));
        }
        if self.chain.hash(r) != r.hash {
            return Ok(Some(problem(
                AuditProblemKind::RecordAltered,
                Some(r.sequence),
                None,
                "its content does not match its hash: altered or forged",
            )));
        }
        self.prev_hash = r.hash;
        self.expected_sequence += 1;
        if let Some(p) = self.delivery(r, events.tx)? {
            return Ok(Some(p));
        }
        if r.action == AuditAction::Created {
            return self.created(r, events);
        }
        Ok(None)
    }

    /// A record of a webhook ingestion: the delivery it names, while the
    /// inbox keeps it, still holds the body whose hash the record holds.
    /// (Retention may have deleted the delivery, or pruned its body.)
    fn delivery(&mut self, r: &AuditRecord, tx: &dyn ReadTx) -> Result<Option<AuditProblem>> {
        let Some(id) = r.delivery_id else {
            return Ok(None);
        };
        if !self.deliveries_checked.insert(id) {
            return Ok(None);
        }
        let Some(d) = tx.delivery(&id)? else {
            return Ok(None);
        };
        let audited = r.body_sha256;
        let altered = |detail: String| {
            Some(problem(
                AuditProblemKind::DeliveryAltered,
                Some(r.sequence),
                None,
                detail,
            ))
        };
        if audited != Some(d.body_sha256) {
            return Ok(altered(format!(
                "delivery {id} holds another body hash than the one audited"
            )));
        }
        if let Some(body) = &d.body {
            let actual: [u8; 32] = Sha256::digest(body).into();
            if Some(actual) != audited {
                return Ok(altered(format!(
                    "the body of delivery {id} does not match the hash audited"
                )));
            }
        }
        Ok(None)
    }

    fn created(
        &mut self,
        r: &AuditRecord,
        events: &mut EventStream<'_>,
    ) -> Result<Option<AuditProblem>> {
        let event = match self.pending.take() {
            Some(e) => Some(e),
            None => events.next()?,
        };
        let Some(event) = event else {
            return Ok(Some(problem(
                AuditProblemKind::EventMissing,
                Some(r.sequence),
                Some(r.event_sequence),
                format!("event {} was created here and is gone", r.event_id),
            )));
        };
        if event.sequence < r.event_sequence {
            return Ok(Some(problem(
                AuditProblemKind::EventInserted,
                None,
                Some(event.sequence),
                format!(
                    "event {} has no audit record that created it",
                    event.event_id
                ),
            )));
        }
        if event.sequence > r.event_sequence {
            self.pending = Some(event);
            return Ok(Some(problem(
                AuditProblemKind::EventMissing,
                Some(r.sequence),
                Some(r.event_sequence),
                format!("event {} was created here and is gone", r.event_id),
            )));
        }
        self.events += 1;
        if event.event_id != r.event_id
            || event.created_at != r.recorded_at
            || event.fingerprint() != r.fingerprint
        {
            return Ok(Some(problem(
                AuditProblemKind::EventAltered,
                Some(r.sequence),
                Some(event.sequence),
                format!(
                    "event {} no longer matches the fingerprint recorded when it was created",
                    r.event_id
                ),
            )));
        }
        self.fold.apply(&event, &mut |_| Ok(None))?;
        Ok(None)
    }
}

impl<S: Storage> Service<S> {
    /// Recomputes the audit chain, every stored event's fingerprint and every
    /// stored balance, over one snapshot, and reports the first problem.
    pub fn verify_audit(&self) -> Result<AuditReport> {
        self.read(|tx| self.verify_in(tx))
    }

    /// [`verify_audit`](Self::verify_audit) inside a read transaction.
    pub(super) fn verify_in(&self, tx: &dyn ReadTx) -> Result<AuditReport> {
        {
            let mut walk = Walk {
                chain: &self.chain,
                records: 0,
                events: 0,
                expected_sequence: 1,
                prev_hash: GENESIS_HASH,
                pending: None,
                fold: RollupFold::new(),
                deliveries_checked: std::collections::HashSet::new(),
            };
            let mut events = EventStream::new(tx);
            let found = Self::walk_records(tx, &mut walk, &mut events)?;
            let found = match found {
                Some(p) => Some(p),
                None => Self::check_leftovers(tx, &mut walk, &mut events)?,
            };
            Ok(AuditReport {
                ok: found.is_none(),
                records_checked: walk.records,
                events_checked: walk.events,
                first_problem: found,
            })
        }
    }

    fn walk_records(
        tx: &dyn ReadTx,
        walk: &mut Walk<'_>,
        events: &mut EventStream<'_>,
    ) -> Result<Option<AuditProblem>> {
        let mut after = 0;
        loop {
            let page = tx.audit_after(after, PAGE)?;
            for r in &page {
                if let Some(p) = walk.record(r, events)? {
                    return Ok(Some(p));
                }
                after = r.sequence;
            }
            if page.len() < PAGE {
                return Ok(None);
            }
        }
    }

    /// Events no record created, then stored balances that disagree with the events.
    fn check_leftovers(
        tx: &dyn ReadTx,
        walk: &mut Walk<'_>,
        events: &mut EventStream<'_>,
    ) -> Result<Option<AuditProblem>> {
        let extra = match walk.pending.take() {
            Some(e) => Some(e),
            None => events.next()?,
        };
        if let Some(e) = extra {
            return Ok(Some(problem(
                AuditProblemKind::EventInserted,
                None,
                Some(e.sequence),
                format!("event {} has no audit record that created it", e.event_id),
            )));
        }
        let mut found = None;
        let fold = &mut walk.fold;
        tx.rollups(&mut |row| {
            if found.is_none() && fold.take(&row.key).as_ref() != Some(&row.totals) {
                found = Some(problem(
                    AuditProblemKind::BalanceAltered,
                    None,
                    None,
                    format!(
                        "the stored {} of wallet {} in {} disagrees with its events",
                        which(row.key.bucket),
                        row.key.wallet_id,
                        row.key.currency
                    ),
                ));
            }
            Ok(())
        })?;
        if found.is_none() {
            if let Some(key) = walk.fold.any_key() {
                found = Some(problem(
                    AuditProblemKind::BalanceAltered,
                    None,
                    None,
                    format!(
                        "the stored {} of wallet {} in {} is missing",
                        which(key.bucket),
                        key.wallet_id,
                        key.currency
                    ),
                ));
            }
        }
        Ok(found)
    }
}
