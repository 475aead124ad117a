//! Ingestion: triple dedupe, idempotent replay, conflicts, and the audit
//! record, all inside one write transaction; the rules are in
//! `docs/events.md` ("Ingestion").
//!
//! An [`Ingestion`] runs inside a write transaction its caller opened, so
//! that a caller (the webhook inbox) can write more in the same one.

use std::time::Instant;

use crate::domain::{
    AuditAction, AuditChain, AuditRecord, ConflictError, ConflictReason, DeliveryId, Error,
    EventId, IngestOutcome, IngestResult, MatchedKey, NewEvent, Result, RollupFold, Timestamp,
    ValidationError, WalletTransactionEvent, ACTOR_API, GENESIS_HASH,
};
use crate::limits::BATCH_EVENTS_MAX;
use crate::metrics::Metrics;
use crate::ports::{ReadTx, Storage, WriteTx};

use super::Service;

/// Who is ingesting, for the audit record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestContext {
    /// `api`, or `plugin:<provider>@<version>`.
    pub actor: String,
    /// SHA-256 of the raw webhook body the events came from.
    pub body_sha256: Option<[u8; 32]>,
    /// The inbox delivery the events came from.
    pub delivery_id: Option<DeliveryId>,
    /// The time an event with an estimated time is dated by: its
    /// delivery's first receipt, as the transaction that stores it found it.
    pub estimated_at: Option<Timestamp>,
}

impl IngestContext {
    /// `item` as it would be stored, an estimated time replaced by
    /// [`estimated_at`](Self::estimated_at) when there is one.
    fn stored(
        &self,
        item: &NewEvent,
        event_id: EventId,
        now: Timestamp,
        sequence: u64,
    ) -> WalletTransactionEvent {
        let mut stored = item.to_stored(event_id, now, sequence);
        if let (true, Some(at)) = (item.occurred_at_estimated, self.estimated_at) {
            stored.occurred_at = at;
        }
        stored
    }

    /// A direct API call.
    pub fn api() -> Self {
        IngestContext {
            actor: ACTOR_API.to_owned(),
            body_sha256: None,
            delivery_id: None,
            estimated_at: None,
        }
    }
}

/// What the keys of an input matched.
#[derive(Clone)]
enum Matched {
    Nothing,
    One(MatchedKey, WalletTransactionEvent),
    /// Two keys matched two different stored events.
    Split {
        key: MatchedKey,
        event: WalletTransactionEvent,
        other_key: MatchedKey,
        other_event_id: EventId,
    },
}

/// Looks the input up by every key it carries. A key that the first match
/// already holds is not looked up again: the unique index says it is the same event.
fn match_keys(tx: &dyn ReadTx, item: &NewEvent) -> Result<Matched> {
    let mut first: Option<(MatchedKey, WalletTransactionEvent)> = None;
    let mut consider = |key: MatchedKey,
                        implied: &dyn Fn(&WalletTransactionEvent) -> bool,
                        lookup: &dyn Fn() -> Result<Option<WalletTransactionEvent>>|
     -> Result<Option<Matched>> {
        if let Some((_, e)) = &first {
            if implied(e) {
                return Ok(None);
            }
        }
        let Some(found) = lookup()? else {
            return Ok(None);
        };
        match first.take() {
            None => {
                first = Some((key, found));
                Ok(None)
            }
            Some((k, e)) if e.sequence == found.sequence => {
                first = Some((k, e));
                Ok(None)
            }
            Some((k, e)) => Ok(Some(Matched::Split {
                key: k,
                event: e,
                other_key: key,
                other_event_id: found.event_id,
            })),
        }
    };
    if let Some(id) = &item.event_id {
        if let Some(m) = consider(MatchedKey::EventId, &|e| &e.event_id == id, &|| {
            tx.event_by_id(id)
        })? {
            return Ok(m);
        }
    }
    if let Some(pid) = &item.provider_event_id {
        let implied = |e: &WalletTransactionEvent| {
            e.provider == item.provider && e.provider_event_id.as_ref() == Some(pid)
        };
        let lookup = || tx.event_by_provider_event_id(&item.provider, pid);
        if let Some(m) = consider(MatchedKey::ProviderEventId, &implied, &lookup)? {
            return Ok(m);
        }
    }
    if let Some(key) = &item.idempotency_key {
        let implied = |e: &WalletTransactionEvent| e.idempotency_key.as_ref() == Some(key);
        let lookup = || tx.event_by_idempotency_key(key);
        if let Some(m) = consider(MatchedKey::IdempotencyKey, &implied, &lookup)? {
            return Ok(m);
        }
    }
    Ok(match first {
        None => Matched::Nothing,
        Some((k, e)) => Matched::One(k, e),
    })
}

/// What an input's match amounts to: nothing stored yet (`None`), a
/// duplicate of one stored event, or a conflict.
fn resolve(
    item: &NewEvent,
    matched: Matched,
) -> Result<Option<(MatchedKey, WalletTransactionEvent)>> {
    match matched {
        Matched::Nothing => Ok(None),
        Matched::One(key, stored) => {
            let fields = stored.money_fields_differing(item);
            if fields.is_empty() {
                Ok(Some((key, stored)))
            } else {
                Err(Error::Conflict(ConflictError {
                    index: None,
                    key,
                    existing_event_id: stored.event_id,
                    reason: ConflictReason::DifferentFields(fields),
                    event: None,
                }))
            }
        }
        Matched::Split {
            key,
            event,
            other_key,
            other_event_id,
        } => Err(Error::Conflict(ConflictError {
            index: None,
            key,
            existing_event_id: event.event_id,
            reason: ConflictReason::KeysMatchDifferentEvents {
                other_key,
                other_event_id,
            },
            event: None,
        })),
    }
}

/// Appends audit records, chaining each to the one before.
struct AuditWriter<'c> {
    chain: &'c AuditChain,
    sequence: u64,
    prev_hash: [u8; 32],
    recorded_at: Timestamp,
}

impl<'c> AuditWriter<'c> {
    fn start(chain: &'c AuditChain, tx: &dyn ReadTx, recorded_at: Timestamp) -> Result<Self> {
        let (sequence, prev_hash) = tx.last_audit()?.unwrap_or((0, GENESIS_HASH));
        Ok(AuditWriter {
            chain,
            sequence,
            prev_hash,
            recorded_at,
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn append(
        &mut self,
        tx: &mut dyn WriteTx,
        ctx: &IngestContext,
        action: AuditAction,
        event_id: EventId,
        event_sequence: u64,
        matched_on: Option<MatchedKey>,
        fingerprint: [u8; 32],
    ) -> Result<()> {
        let mut record = AuditRecord {
            sequence: self.sequence + 1,
            recorded_at: self.recorded_at,
            action,
            event_id,
            event_sequence,
            matched_on,
            actor: ctx.actor.clone(),
            fingerprint,
            body_sha256: ctx.body_sha256,
            delivery_id: ctx.delivery_id,
            prev_hash: self.prev_hash,
            hash: [0; 32],
        };
        record.hash = self.chain.hash(&record);
        tx.append_audit(&record)?;
        self.sequence = record.sequence;
        self.prev_hash = record.hash;
        Ok(())
    }
}

/// How an ingestion treats a refused item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// One refused item refuses them all: nothing is stored. `batch`
    /// errors carry the item's index.
    AllOrNothing { batch: bool },
    /// Every item gets its own result or error; the others go on.
    Each,
}

/// One ingestion of a list of events: [`run`](Self::run) inside a write
/// transaction, then [`finish`](Self::finish) with what the transaction
/// gave. `run` starts from scratch every time, so an engine may re-run it.
pub struct Ingestion<'a, S> {
    service: &'a Service<S>,
    items: &'a [NewEvent],
    ctx: IngestContext,
    mode: Mode,
    results: Vec<Result<IngestResult>>,
    /// In all-or-nothing mode, the conflict that refused the items: audited
    /// by `finish`, after the transaction rolled back.
    conflict: Option<(usize, ConflictError)>,
    started: Instant,
}

impl<S: Storage> Ingestion<'_, S> {
    /// Ingests the items inside `tx`. In all-or-nothing mode a refused item
    /// is returned as the error, and the caller must roll back (return it
    /// from its write closure) and then call `finish`.
    pub fn run(&mut self, tx: &mut dyn WriteTx) -> Result<()> {
        self.results.clear();
        self.conflict = None;
        let ctx = &self.ctx;
        let each = self.mode == Mode::Each;
        let mut step = Step::start(&self.service.chain, tx)?;
        for (index, item) in self.items.iter().enumerate() {
            match step.one(tx, ctx, item, each) {
                Ok(r) => self.results.push(Ok(r)),
                Err(e) => match (self.mode, e) {
                    // Results are positional: an item's error needs no index.
                    (Mode::Each, Error::Conflict(c)) => {
                        step.audit_conflict(tx, ctx, item)?;
                        self.results.push(Err(Error::Conflict(c)));
                    }
                    (Mode::Each, e @ Error::Validation(_)) => self.results.push(Err(e)),
                    (Mode::AllOrNothing { .. }, Error::Conflict(c)) => {
                        self.conflict = Some((index, c.clone()));
                        return Err(Error::Conflict(c));
                    }
                    (Mode::AllOrNothing { batch }, e) => {
                        return Err(if batch { e.at_index(index) } else { e });
                    }
                    (Mode::Each, e) => return Err(e),
                },
            }
        }
        step.write_rollups(tx)
    }

    /// Names the inbox delivery the events come from in their audit
    /// records, from the next [`run`](Self::run) on.
    pub fn set_delivery(&mut self, id: DeliveryId, received_at: Timestamp) {
        self.ctx.delivery_id = Some(id);
        self.ctx.estimated_at = Some(received_at);
    }

    /// The ids of the events the last [`run`](Self::run) stored or
    /// matched, in item order (refused items left out).
    pub fn event_ids(&self) -> Vec<EventId> {
        self.results
            .iter()
            .filter_map(|r| r.as_ref().ok().map(|r| r.event.event_id))
            .collect()
    }

    /// What the ingestion gave, once its transaction ended with `outcome`:
    /// one result (or, in `each` mode, error) per item. A refused conflict
    /// is audited here, in a transaction of its own.
    pub fn finish(self, outcome: Result<()>) -> Result<Vec<Result<IngestResult>>> {
        self.finish_recording(outcome, &mut |_, _| Ok(()))
    }

    /// [`finish`](Self::finish), with `record` run inside the transaction
    /// that audits a refused conflict (the webhook inbox records the
    /// delivery's verdict there).
    pub fn finish_recording(
        self,
        outcome: Result<()>,
        record: &mut dyn FnMut(&mut dyn WriteTx, &ConflictError) -> Result<()>,
    ) -> Result<Vec<Result<IngestResult>>> {
        let duration_us = self.started.elapsed().as_micros() as u64;
        // A refused all-or-nothing run has already written its earlier
        // items: its transaction must have rolled back.
        assert!(
            self.conflict.is_none() || outcome.is_err(),
            "the transaction of a refused ingestion was committed; return run's error from the write"
        );
        if let Some((index, mut error)) = self.conflict {
            let item = &self.items[index];
            if self.mode == (Mode::AllOrNothing { batch: true }) {
                error.index = Some(index);
            }
            self.service
                .audit_conflict(item, &self.ctx, &mut |tx| record(tx, &error))?;
            tracing::warn!(
                target: "walletlog::ingest",
                outcome = "conflict",
                wallet_id = %item.wallet_id,
                provider = %item.provider,
                matched_on = error.key.as_str(),
                index,
                duration_us,
                "ingestion refused: {error}"
            );
            let error = Error::Conflict(error);
            self.service.metrics.ingestion(&self.ctx.actor, Err(&error));
            return Err(error);
        }
        if let Err(e) = outcome {
            self.service.metrics.ingestion(&self.ctx.actor, Err(&e));
            tracing::warn!(
                target: "walletlog::ingest",
                outcome = "error",
                events = self.items.len(),
                duration_us,
                "ingestion failed: {e}"
            );
            return Err(e);
        }
        log_results(
            &self.service.metrics,
            &self.ctx,
            self.results.iter().map(|r| r.as_ref()),
            duration_us,
        );
        Ok(self.results)
    }
}

/// Logs what each item of one call came to.
pub(super) fn log_results<'r>(
    metrics: &Metrics,
    ctx: &IngestContext,
    results: impl Iterator<Item = std::result::Result<&'r IngestResult, &'r Error>>,
    duration_us: u64,
) {
    for r in results {
        metrics.ingestion(&ctx.actor, r);
        match r {
            Ok(r) => tracing::info!(
                target: "walletlog::ingest",
                outcome = if r.created() { "created" } else { "duplicate" },
                wallet_id = %r.event.wallet_id,
                provider = %r.event.provider,
                matched_on = r.matched_on().map(|k| k.as_str()),
                sequence = r.event.sequence,
                actor = %ctx.actor,
                duration_us,
            ),
            Err(e) => tracing::warn!(
                target: "walletlog::ingest",
                outcome = e.kind().as_str(),
                index = e.index(),
                actor = %ctx.actor,
                duration_us,
                "ingestion refused: {e}"
            ),
        }
    }
}

/// What one transaction's items share, whoever's they are: the time, the
/// next sequence, the audit chain's head and the rollups touched so far.
pub(super) struct Step<'c> {
    now: Timestamp,
    next_sequence: u64,
    audit: AuditWriter<'c>,
    fold: RollupFold,
}

impl<'c> Step<'c> {
    /// The state of a transaction that has written nothing yet.
    pub(super) fn start(chain: &'c AuditChain, tx: &dyn WriteTx) -> Result<Self> {
        let now = Timestamp::now();
        Ok(Step {
            now,
            next_sequence: tx.last_event_sequence()? + 1,
            audit: AuditWriter::start(chain, tx, now)?,
            fold: RollupFold::new(),
        })
    }

    /// Writes back the rollup rows the transaction's events changed: the
    /// last step before it commits.
    pub(super) fn write_rollups(self, tx: &mut dyn WriteTx) -> Result<()> {
        for row in self.fold.into_changed_rows() {
            tx.put_rollup(&row)?;
        }
        Ok(())
    }

    /// One item: created, a duplicate, or refused. With `fold_first` the
    /// balance is checked before the insert, so that a refusal of any kind
    /// stores nothing of the item; without, an overflow is found after the
    /// insert, and the caller must roll the transaction back.
    pub(super) fn one(
        &mut self,
        tx: &mut dyn WriteTx,
        ctx: &IngestContext,
        item: &NewEvent,
        fold_first: bool,
    ) -> Result<IngestResult> {
        item.check_keys()?;
        let candidate = ctx.stored(
            item,
            item.event_id.unwrap_or_else(EventId::generate),
            self.now,
            self.next_sequence,
        );
        // Folded first (`each` mode), an overflow stores nothing while the
        // other items go on. All or nothing, an overflow fails the whole call
        // anyway, so the fold waits for a successful insert and a replay
        // never reads rollups.
        let folded = if fold_first {
            match self.fold.folded(&candidate, &mut |key| tx.rollup(key)) {
                Ok(f) => Some(f),
                // An overflow: a replay stores nothing, whatever its amount.
                Err(overflow @ Error::Validation(_)) => {
                    return self.replay(tx, ctx, item, candidate)?.ok_or(overflow)
                }
                Err(e) => return Err(e),
            }
        } else {
            None
        };
        // The common case: nothing matches, and the insert itself is the
        // check. Only a refused insert looks the keys up.
        if tx.insert_event_if_new(&candidate)? {
            let folded = match folded {
                Some(f) => f,
                None => self.fold.folded(&candidate, &mut |key| tx.rollup(key))?,
            };
            self.next_sequence += 1;
            self.fold.keep(folded);
            let fp = candidate.fingerprint();
            let (id, seq) = (candidate.event_id, candidate.sequence);
            self.audit
                .append(tx, ctx, AuditAction::Created, id, seq, None, fp)?;
            return Ok(IngestResult {
                outcome: IngestOutcome::Created,
                event: candidate,
            });
        }
        let replayed = self.replay(tx, ctx, item, candidate)?;
        // Inside an exclusive transaction, an insert refused for a key means
        // a stored event holds that key: the port's contract.
        Ok(replayed.unwrap_or_else(|| {
            panic!("the storage refused an event as a duplicate but no key matches a stored event")
        }))
    }

    /// `item` as a replay of a stored event: a duplicate (audited), a
    /// conflict, or `None` when no key matches.
    fn replay(
        &mut self,
        tx: &mut dyn WriteTx,
        ctx: &IngestContext,
        item: &NewEvent,
        mut offered: WalletTransactionEvent,
    ) -> Result<Option<IngestResult>> {
        let Some((key, stored)) = resolve(item, match_keys(&*tx, item)?)? else {
            return Ok(None);
        };
        // The offered content, under the stored id when it brought none.
        offered.event_id = item.event_id.unwrap_or(stored.event_id);
        let fp = offered.fingerprint();
        let (id, seq) = (stored.event_id, stored.sequence);
        self.audit
            .append(tx, ctx, AuditAction::Duplicate, id, seq, Some(key), fp)?;
        Ok(Some(IngestResult {
            outcome: IngestOutcome::Duplicate { matched_on: key },
            event: stored,
        }))
    }

    /// Audits a refused replay inside this transaction, and says what it
    /// conflicts with now (`None` when its keys no longer disagree with
    /// anything stored).
    pub(super) fn audit_conflict(
        &mut self,
        tx: &mut dyn WriteTx,
        ctx: &IngestContext,
        item: &NewEvent,
    ) -> Result<Option<ConflictError>> {
        let matched = match_keys(&*tx, item)?;
        let now = match resolve(item, matched.clone()) {
            Err(Error::Conflict(c)) => Some(c),
            _ => None,
        };
        let (key, event_id, sequence, fp) = conflict_record(matched, ctx, item, self.now);
        self.audit
            .append(tx, ctx, AuditAction::Conflict, event_id, sequence, key, fp)?;
        Ok(now)
    }
}

/// What the audit record of a refused replay holds: the key and event
/// matched (looked up again: it may have been an earlier item of a batch
/// that rolled back, then sequence 0) and the offered content's fingerprint.
fn conflict_record(
    matched: Matched,
    ctx: &IngestContext,
    item: &NewEvent,
    now: Timestamp,
) -> (Option<MatchedKey>, EventId, u64, [u8; 32]) {
    let (key, event_id, sequence) = match matched {
        Matched::One(k, e)
        | Matched::Split {
            key: k, event: e, ..
        } => (Some(k), e.event_id, e.sequence),
        Matched::Nothing => (
            None,
            item.event_id.unwrap_or(EventId::from_bytes([0; 16])),
            0,
        ),
    };
    let fp = ctx
        .stored(item, item.event_id.unwrap_or(event_id), now, 0)
        .fingerprint();
    (key, event_id, sequence, fp)
}

impl<S: Storage> Service<S> {
    fn ingestion<'a>(
        &'a self,
        items: &'a [NewEvent],
        ctx: &'a IngestContext,
        mode: Mode,
    ) -> Ingestion<'a, S> {
        Ingestion {
            service: self,
            items,
            ctx: ctx.clone(),
            mode,
            results: Vec::with_capacity(items.len()),
            conflict: None,
            started: Instant::now(),
        }
    }

    /// An all-or-nothing ingestion of `items` (errors carry the item's
    /// index), to [`run`](Ingestion::run) inside a write transaction the
    /// caller opens.
    pub fn batch_ingestion<'a>(
        &'a self,
        items: &'a [NewEvent],
        ctx: &'a IngestContext,
    ) -> Result<Ingestion<'a, S>> {
        check_batch(items)?;
        Ok(self.ingestion(items, ctx, Mode::AllOrNothing { batch: true }))
    }

    fn ingest_with_mode(
        &self,
        items: &[NewEvent],
        ctx: &IngestContext,
        mode: Mode,
    ) -> Result<Vec<Result<IngestResult>>> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let mut ingestion = self.ingestion(items, ctx, mode);
        let outcome = self.write(items.len(), &mut |tx| ingestion.run(tx));
        ingestion.finish(outcome)
    }

    /// Takes one event in exactly once, in a group with concurrent calls.
    /// See `docs/events.md`, "Ingestion" and "Group commit".
    pub fn ingest(&self, event: &NewEvent, ctx: &IngestContext) -> Result<IngestResult> {
        let mut results = self.ingest_grouped(std::slice::from_ref(event), ctx, false)?;
        // One item in, one result out: a group answers every item or fails.
        Ok(results.pop().expect("one result for one event"))
    }

    /// Takes a batch in one transaction (shared with concurrent calls):
    /// every event is stored (or found to be a duplicate), or none is and
    /// the error names the item's index.
    pub fn ingest_batch(
        &self,
        events: &[NewEvent],
        ctx: &IngestContext,
    ) -> Result<Vec<IngestResult>> {
        check_batch(events)?;
        self.ingest_grouped(events, ctx, true)
    }

    /// Takes each event in on its own terms, in one transaction: one result
    /// or error per event, in order. A conflicting event stores nothing and
    /// its attempt is audited once, in this transaction; an invalid one
    /// never reaches storage; the others are stored. Only a storage failure
    /// fails the call, and then nothing is stored.
    pub fn ingest_each(
        &self,
        events: &[NewEvent],
        ctx: &IngestContext,
    ) -> Result<Vec<Result<IngestResult>>> {
        check_batch(events)?;
        self.ingest_with_mode(events, ctx, Mode::Each)
    }

    /// Records a refused replay in its own transaction, after the refused
    /// one rolled back.
    fn audit_conflict(
        &self,
        item: &NewEvent,
        ctx: &IngestContext,
        also: &mut dyn FnMut(&mut dyn WriteTx) -> Result<()>,
    ) -> Result<()> {
        self.write(0, &mut |tx| {
            let now = Timestamp::now();
            let (key, event_id, sequence, fp) =
                conflict_record(match_keys(&*tx, item)?, ctx, item, now);
            let mut audit = AuditWriter::start(&self.chain, &*tx, now)?;
            audit.append(tx, ctx, AuditAction::Conflict, event_id, sequence, key, fp)?;
            also(tx)
        })
    }
}

fn check_batch(events: &[NewEvent]) -> Result<()> {
    if events.len() > BATCH_EVENTS_MAX {
        return Err(ValidationError::new(
            "events",
            format!(
                "a batch of {} events; at most {BATCH_EVENTS_MAX} allowed",
                events.len()
            ),
        )
        .into());
    }
    Ok(())
}
