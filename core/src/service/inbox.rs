//! The webhook inbox's rules: a delivery's attempt is recorded in the
//! transaction that ingests its events, or, when it has none to store, in
//! one of its own; a refused conflict in the transaction that audits it.
//! The rules are in `docs/webhooks.md`.
// Recording attempts is the webhook pipeline's; a build without plugins
// only reads and prunes the inbox.
#![cfg_attr(not(feature = "plugins"), allow(dead_code))]

use std::time::Duration;

use crate::domain::{
    AttemptKind, Delivery, DeliveryAttempt, DeliveryId, Error, EventId, InboxPage, InboxQuery,
    IngestResult, NewEvent, Result, Timestamp, Verdict,
};
use crate::limits::InboxLimits;
use crate::ports::{InboxPrune, Pruned, ReadTx, Storage, WriteTx};

use super::{IngestContext, Service};

/// Who runs a delivery: the plugin and how it came to run.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub kind: AttemptKind,
    pub plugin_version: String,
    pub plugin_sha256: [u8; 32],
    /// `plugin:<provider>@<version>`, or `replay:plugin:<provider>@<version>`.
    pub actor: String,
}

impl Attempt {
    fn made(
        &self,
        verdict: Verdict,
        reason: Option<String>,
        event_ids: Vec<EventId>,
    ) -> DeliveryAttempt {
        DeliveryAttempt {
            at: Timestamp::now(),
            kind: self.kind,
            plugin_version: self.plugin_version.clone(),
            plugin_sha256: self.plugin_sha256,
            verdict,
            reason,
            event_ids,
        }
    }
}

/// A delivery as recorded, and what its attempt gave: the events' results,
/// or the error that refused it.
pub type Recorded = (Delivery, Result<Vec<IngestResult>>);

/// Where the last retention pass stopped dropping ingested bodies: the
/// first receipt time, in microseconds, big-endian.
const META_BODIES_PRUNED_UNTIL: &str = "inbox_bodies_pruned_until";

/// How far back of the last pass a pass looks again: a delivery is stamped
/// with its receipt time before its transaction commits, and one ingested
/// late by a provider's retry is caught too, within this margin.
const BODIES_PRUNE_OVERLAP_MICROS: i64 = 24 * 3600 * 1_000_000;

/// The delivery to record the attempt on, as the transaction finds it:
/// the stored one (`planned` itself, or another receipt of the same body
/// stored meanwhile), or `planned` as a new delivery with the next sequence.
/// A new delivery is never received before the last one stored (a receipt
/// that waited for the writer, or a clock stepped back, takes the last
/// one's time): receipt order is sequence order, which SQLite's listings
/// and retention rely on to search time ranges by sequence.
fn current(tx: &dyn ReadTx, planned: &Delivery) -> Result<Delivery> {
    if planned.attempt_count > 0 {
        return tx
            .delivery(&planned.delivery_id)?
            .ok_or_else(|| Error::NotFound {
                what: format!(
                    "delivery {} (deleted by retention meanwhile)",
                    planned.delivery_id
                ),
            });
    }
    Ok(
        match tx.delivery_by_body(&planned.provider, &planned.body_sha256)? {
            Some(stored) => stored,
            None => {
                let (sequence, received_at) = match tx.last_delivery()? {
                    Some((s, at)) => (s + 1, planned.received_at.max(at)),
                    None => (1, planned.received_at),
                };
                Delivery {
                    sequence,
                    received_at,
                    ..planned.clone()
                }
            }
        },
    )
}

/// A new delivery stored this much after the time of the commit that
/// stored it was dated by another clock ahead of this host's (a host of
/// the same ledger, or this clock stepped back): a wait for the writer
/// never makes a stored time later than now.
const CLOCK_AHEAD_WARN_MICROS: i64 = 60_000_000;

/// Clock warnings go out at most this often: every receipt would repeat one.
pub(super) const CLOCK_LOG_EVERY: Duration = Duration::from_secs(60);

/// A webhook's event in words, for its conflict's message.
fn describe(e: &NewEvent) -> String {
    let key = e
        .provider_event_id
        .as_ref()
        .map_or_else(|| "?".to_owned(), |k| k.to_string());
    format!(
        "{} event {key} ({} of {} {} to wallet {})",
        e.provider,
        e.event_type.as_str(),
        e.amount,
        e.currency,
        e.wallet_id
    )
}

impl<S: Storage> Service<S> {
    /// Warns, rate-limited, when `received` (just committed) is a new
    /// delivery stored at a time more than a minute ahead of this host's
    /// clock: receipt order took the last stored delivery's time.
    pub(crate) fn warn_if_received_ahead(&self, received: &Delivery) {
        let ahead = received.received_at.as_micros() - Timestamp::now().as_micros();
        if received.attempt_count != 1 || ahead <= CLOCK_AHEAD_WARN_MICROS {
            return;
        }
        if let Some(unlogged) = self.clock_log.due() {
            tracing::warn!(
                target: "walletlog::inbox",
                provider = received.provider.as_str(),
                delivery_id = %received.delivery_id,
                received_at = %received.received_at,
                unlogged_since_last = unlogged,
                "this host's clock is {} s behind the last delivery stored (another \
                 host's clock, or a clock stepped back): the delivery is recorded as \
                 received at the last one's time, to keep receipt order",
                ahead / 1_000_000
            );
        }
    }

    /// One page of the inbox.
    pub fn inbox(&self, query: &InboxQuery) -> Result<InboxPage> {
        query.check_cursor()?;
        let size = query.page_size();
        let mut deliveries = self.read(|tx| tx.deliveries(query.view(), size + 1))?;
        let next_cursor = if deliveries.len() > size {
            deliveries.truncate(size);
            deliveries.last().map(|d| query.cursor_after(d))
        } else {
            None
        };
        Ok(InboxPage {
            deliveries,
            next_cursor,
        })
    }

    /// One delivery with its body (unless retention pruned it).
    pub fn delivery(&self, id: &DeliveryId) -> Result<Option<Delivery>> {
        self.read(|tx| tx.delivery(id))
    }

    /// The stored delivery of `planned`'s provider and body, if any.
    pub(crate) fn delivery_like(&self, planned: &Delivery) -> Result<Option<Delivery>> {
        self.read(|tx| tx.delivery_by_body(&planned.provider, &planned.body_sha256))
    }

    /// Deletes what `limits` no longer keep: deliveries past retention or
    /// beyond the count, bodies of ingested deliveries past theirs.
    pub fn prune_inbox(&self, limits: &InboxLimits) -> Result<Pruned> {
        let now = Timestamp::now().as_micros();
        let before = |d: Duration| {
            let micros = i64::try_from(d.as_micros()).unwrap_or(i64::MAX);
            Timestamp::from_micros("retention", now.saturating_sub(micros).max(0))
        };
        let delete_before = before(limits.retention)?;
        let ingested_body_before = before(limits.ingested_body_retention)?;
        let mut pruned = Pruned::default();
        self.write(0, &mut |tx| {
            // Bodies are dropped from where the last pass stopped.
            let after = match tx.meta(META_BODIES_PRUNED_UNTIL)? {
                Some(b) => <[u8; 8]>::try_from(b.as_slice()).map_or(0, i64::from_be_bytes),
                None => 0,
            };
            let from = after.saturating_sub(BODIES_PRUNE_OVERLAP_MICROS).max(0);
            let rules = InboxPrune {
                delete_before,
                // A damaged watermark starts from the beginning.
                ingested_body_after: Timestamp::from_micros("retention", from)
                    .or_else(|_| Timestamp::from_micros("retention", 0))?,
                ingested_body_before,
                keep_newest: limits.deliveries_max,
            };
            pruned = tx.prune_deliveries(&rules)?;
            if ingested_body_before.as_micros() > after {
                let until = ingested_body_before.as_micros().to_be_bytes();
                tx.set_meta(META_BODIES_PRUNED_UNTIL, &until)?;
            }
            Ok(())
        })?;
        if pruned != Pruned::default() {
            tracing::info!(
                target: "walletlog::inbox",
                deleted = pruned.deliveries_deleted,
                bodies_dropped = pruned.bodies_dropped,
                "inbox retention"
            );
        }
        Ok(pruned)
    }

    /// Records `attempt` on `planned` (a delivery not stored yet, its
    /// `attempt_count` 0, or a stored one), ingesting `normalized`'s events
    /// in the same transaction with the delivery named in their audit
    /// records. The outer error is a failure to record anything at all.
    pub(crate) fn record_attempt(
        &self,
        planned: Delivery,
        attempt: &Attempt,
        normalized: &Result<Vec<NewEvent>>,
    ) -> Result<Recorded> {
        let planned = &planned;
        let mut stored: Option<Delivery> = None;
        // Records `made` on the delivery inside `tx`.
        let record = |tx: &mut dyn WriteTx,
                      made: DeliveryAttempt,
                      stored: &mut Option<Delivery>|
         -> Result<()> {
            let mut d = current(&*tx, planned)?;
            d.push_attempt(made);
            tx.put_delivery(&d)?;
            *stored = Some(d);
            Ok(())
        };
        let events = match normalized {
            Ok(events) if !events.is_empty() => events,
            other => {
                let (verdict, reason) = match other {
                    Ok(_) => (Verdict::Ignored, None),
                    Err(e) => (
                        Verdict::of_error(e).unwrap_or(Verdict::PluginFailed),
                        Some(e.to_string()),
                    ),
                };
                self.write(0, &mut |tx| {
                    record(
                        tx,
                        attempt.made(verdict, reason.clone(), Vec::new()),
                        &mut stored,
                    )
                })?;
                let d = stored.expect("a committed attempt was recorded");
                let outcome = match other {
                    Ok(_) => Ok(Vec::new()),
                    Err(e) => Err(e.clone()),
                };
                return Ok((d, outcome));
            }
        };
        let ctx = IngestContext {
            actor: attempt.actor.clone(),
            body_sha256: Some(planned.body_sha256),
            delivery_id: Some(planned.delivery_id),
            estimated_at: Some(planned.received_at),
        };
        let mut ingestion = self.batch_ingestion(events, &ctx)?;
        let written = self.write(events.len(), &mut |tx| {
            // The delivery first: its id goes into the events' audit records.
            let mut d = current(&*tx, planned)?;
            ingestion.set_delivery(d.delivery_id, d.received_at);
            ingestion.run(tx)?;
            d.push_attempt(attempt.made(Verdict::Ingested, None, ingestion.event_ids()));
            tx.put_delivery(&d)?;
            stored = Some(d);
            Ok(())
        });
        let results = ingestion.finish_recording(written, &mut |tx, conflict| {
            let mut named = conflict.clone();
            named.event = named.index.and_then(|i| events.get(i)).map(describe);
            let made = attempt.made(Verdict::Conflict, Some(named.to_string()), Vec::new());
            record(tx, made, &mut stored)
        });
        match results {
            Ok(results) => {
                let d = stored.expect("a committed ingestion recorded its delivery");
                let results = results.into_iter().collect::<Result<Vec<_>>>()?;
                Ok((d, Ok(results)))
            }
            Err(Error::Conflict(mut c)) => {
                // "item 0" means nothing to whoever reads a webhook's error.
                if let Some(e) = c.index.and_then(|i| events.get(i)) {
                    c.event = Some(describe(e));
                }
                let d = stored.expect("a refused conflict recorded its delivery");
                Ok((d, Err(Error::Conflict(c))))
            }
            // An event that cannot be stored (an overflow): nothing of the
            // ingestion is kept, and the delivery says why.
            Err(e @ Error::Validation(_)) => {
                stored = None;
                let made = attempt.made(Verdict::InvalidOutput, Some(e.to_string()), Vec::new());
                self.write(0, &mut |tx| record(tx, made.clone(), &mut stored))?;
                Ok((stored.expect("the attempt was recorded"), Err(e)))
            }
            Err(e) => Err(e),
        }
    }
}
