//! Ingestion: triple dedupe, idempotent replay, conflicts, and the audit
//! record, all inside one write transaction.

use std::collections::HashMap;
use std::time::Instant;

use crate::domain::{
    bucket_of, AuditAction, AuditChain, AuditRecord, ConflictError, ConflictReason, Currency,
    Error, EventId, IngestOutcome, IngestResult, MatchedKey, NewEvent, Result, StorageError,
    StorageErrorKind, Timestamp, Totals, ValidationError, WalletId, WalletTransactionEvent,
    ACTOR_API, GENESIS_HASH,
};
use crate::ports::{ReadTx, Storage, WriteTx};

use super::{Service, BATCH_EVENTS_MAX};

/// Who is ingesting, for the audit record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestContext {
    /// `api`, or `plugin:<provider>@<version>`.
    pub actor: String,
    /// SHA-256 of the raw webhook body the events came from.
    pub body_sha256: Option<[u8; 32]>,
}

impl IngestContext {
    /// A direct API call.
    pub fn api() -> Self {
        IngestContext {
            actor: ACTOR_API.to_owned(),
            body_sha256: None,
        }
    }
}

/// What the keys of an input matched.
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
) -> Result<Option<(MatchedKey, WalletTransactionEvent)>, ConflictError> {
    match matched {
        Matched::Nothing => Ok(None),
        Matched::One(key, stored) => {
            let fields = stored.money_fields_differing(item);
            if fields.is_empty() {
                Ok(Some((key, stored)))
            } else {
                Err(ConflictError {
                    index: None,
                    key,
                    existing_event_id: stored.event_id,
                    reason: ConflictReason::DifferentFields(fields),
                })
            }
        }
        Matched::Split {
            key,
            event,
            other_key,
            other_event_id,
        } => Err(ConflictError {
            index: None,
            key,
            existing_event_id: event.event_id,
            reason: ConflictReason::KeysMatchDifferentEvents {
                other_key,
                other_event_id,
            },
        }),
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

/// Balance changes of one transaction, written once per row at the end.
#[derive(Default)]
struct RollupDeltas {
    balances: HashMap<(WalletId, Currency), Totals>,
    buckets: HashMap<(WalletId, Currency, i64), Totals>,
}

impl RollupDeltas {
    fn add(&mut self, e: &WalletTransactionEvent) -> Result<()> {
        let key = (e.wallet_id.clone(), e.currency.clone());
        let bucket = bucket_of(e.occurred_at);
        self.balances.entry(key.clone()).or_default().apply(
            e.event_type,
            &e.amount,
            e.occurred_at,
        )?;
        self.buckets
            .entry((key.0, key.1, bucket))
            .or_default()
            .apply(e.event_type, &e.amount, e.occurred_at)
    }

    fn flush(self, tx: &mut dyn WriteTx) -> Result<()> {
        for ((wallet, currency), delta) in self.balances {
            tx.add_to_rollup(&wallet, &currency, None, &delta)?;
        }
        for ((wallet, currency, bucket), delta) in self.buckets {
            tx.add_to_rollup(&wallet, &currency, Some(bucket), &delta)?;
        }
        Ok(())
    }
}

impl<S: Storage> Service<S> {
    /// Takes one event in exactly once. See DESIGN.md, "Ingestion".
    pub fn ingest(&self, event: &NewEvent, ctx: &IngestContext) -> Result<IngestResult> {
        let mut results = self.ingest_all(std::slice::from_ref(event), ctx, false)?;
        results.pop().ok_or_else(|| {
            Error::Storage(StorageError::new(
                StorageErrorKind::Other,
                "ingest produced no result",
            ))
        })
    }

    /// Takes a batch in one transaction: every event is stored (or found to
    /// be a duplicate), or none is and the error names the item's index.
    pub fn ingest_batch(
        &self,
        events: &[NewEvent],
        ctx: &IngestContext,
    ) -> Result<Vec<IngestResult>> {
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
        self.ingest_all(events, ctx, true)
    }

    fn ingest_all(
        &self,
        items: &[NewEvent],
        ctx: &IngestContext,
        batch: bool,
    ) -> Result<Vec<IngestResult>> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let started = Instant::now();
        let mut results = Vec::new();
        let mut conflict: Option<(usize, ConflictError)> = None;
        let outcome = self.storage.write(&mut |tx| {
            results.clear();
            conflict = None;
            let now = Timestamp::now();
            let mut next_sequence = tx.last_event_sequence()? + 1;
            let mut audit = AuditWriter::start(&self.chain, &*tx, now)?;
            let mut deltas = RollupDeltas::default();
            for (index, item) in items.iter().enumerate() {
                // The common case first: nothing matches, and the insert
                // itself is the check. Only a refused insert looks the keys up.
                let mut candidate = item.to_stored(
                    item.event_id.unwrap_or_else(EventId::generate),
                    now,
                    next_sequence,
                );
                if tx.insert_event_if_new(&candidate)? {
                    next_sequence += 1;
                    deltas.add(&candidate).map_err(|e| e.at_index(index))?;
                    let fp = candidate.fingerprint();
                    audit.append(tx, ctx, AuditAction::Created, candidate.event_id, candidate.sequence, None, fp)?;
                    results.push(IngestResult {
                        outcome: IngestOutcome::Created,
                        event: candidate,
                    });
                    continue;
                }
                let (key, stored) = match resolve(item, match_keys(&*tx, item)?) {
                    Ok(Some(found)) => found,
                    Ok(None) => {
                        return Err(Error::Storage(StorageError::new(
                            StorageErrorKind::Other,
                            "the storage refused an event as a duplicate but no key matches a stored event",
                        )))
                    }
                    Err(c) => {
                        conflict = Some((index, c.clone()));
                        return Err(Error::Conflict(c));
                    }
                };
                // The offered content, under the stored id when it brought none.
                candidate.event_id = item.event_id.unwrap_or(stored.event_id);
                let fp = candidate.fingerprint();
                audit.append(tx, ctx, AuditAction::Duplicate, stored.event_id, stored.sequence, Some(key), fp)?;
                results.push(IngestResult {
                    outcome: IngestOutcome::Duplicate { matched_on: key },
                    event: stored,
                });
            }
            deltas.flush(tx)
        });
        if let Some((index, mut error)) = conflict {
            self.audit_conflict(&items[index], ctx)?;
            if batch {
                error.index = Some(index);
            }
            tracing::warn!(
                target: "walletlog::ingest",
                outcome = "conflict",
                wallet_id = %items[index].wallet_id,
                provider = %items[index].provider,
                matched_on = error.key.as_str(),
                index,
                duration_us = started.elapsed().as_micros() as u64,
                "ingestion refused: {error}"
            );
            return Err(Error::Conflict(error));
        }
        if let Err(e) = outcome {
            tracing::warn!(
                target: "walletlog::ingest",
                outcome = "error",
                events = items.len(),
                duration_us = started.elapsed().as_micros() as u64,
                "ingestion failed: {e}"
            );
            return Err(e);
        }
        let duration_us = started.elapsed().as_micros() as u64;
        for r in &results {
            tracing::info!(
                target: "walletlog::ingest",
                outcome = if r.created() { "created" } else { "duplicate" },
                wallet_id = %r.event.wallet_id,
                provider = %r.event.provider,
                matched_on = r.matched_on().map(|k| k.as_str()),
                sequence = r.event.sequence,
                actor = %ctx.actor,
                duration_us,
            );
        }
        Ok(results)
    }

    /// Records a refused replay in its own transaction, after the refused
    /// one rolled back. The matched event is looked up again: it may have
    /// been an earlier item of the same rolled-back batch (then sequence 0).
    fn audit_conflict(&self, item: &NewEvent, ctx: &IngestContext) -> Result<()> {
        self.storage.write(&mut |tx| {
            let now = Timestamp::now();
            let matched = match_keys(&*tx, item)?;
            let (key, event_id, sequence) = match &matched {
                Matched::One(k, e)
                | Matched::Split {
                    key: k, event: e, ..
                } => (Some(*k), e.event_id, e.sequence),
                Matched::Nothing => (
                    None,
                    item.event_id.unwrap_or(EventId::from_bytes([0; 16])),
                    0,
                ),
            };
            let fp = item
                .to_stored(item.event_id.unwrap_or(event_id), now, 0)
                .fingerprint();
            let mut audit = AuditWriter::start(&self.chain, &*tx, now)?;
            audit.append(tx, ctx, AuditAction::Conflict, event_id, sequence, key, fp)
        })
    }
}
