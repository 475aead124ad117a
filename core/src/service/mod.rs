//! The ledger's logic: triple dedupe, ingestion with its audit record,
//! history, balance reconstruction and audit verification.
//!
//! Architecture invariant: the service depends on `domain`, `ports`,
//! `limits` and `metrics` (which it counts into, never naming the
//! Prometheus client) only. It is generic over [`Storage`], so a new adapter needs no
//! change here.

mod checkpoint;
mod group;
mod inbox;
mod ingest;
mod reads;
mod verify;

use crate::domain::{
    AuditChain, AuditKey, Error, LedgerId, Result, StorageError, StorageErrorKind,
};
use crate::limits::GroupLimits;
use crate::metrics::Metrics;
use crate::ports::{ReadTx, Storage, WriteTx};

use group::GroupCommit;

pub use inbox::{Attempt, Recorded};
pub use ingest::{IngestContext, Ingestion};

const META_AUDIT_KEY_CHECK: &str = "audit_key_check";
/// The ledger's identity (16 bytes), which its audit checkpoints name.
const META_LEDGER_ID: &str = "ledger_id";

/// The ledger service over a storage port.
pub struct Service<S> {
    storage: S,
    chain: AuditChain,
    group: GroupCommit,
    metrics: Metrics,
    /// Warnings of a receipt clock behind a stored delivery's.
    clock_log: crate::throttle::Throttle,
}

impl<S: Storage> Service<S> {
    /// Wraps `storage`. With `audit_key`, the chain is HMAC-SHA256; the key
    /// must be the one the ledger was created with. Concurrent `ingest` and
    /// `ingest_batch` calls are grouped within `group`.
    pub fn new(storage: S, audit_key: Option<AuditKey>, group: GroupLimits) -> Result<Self> {
        group.check()?;
        let chain = AuditChain::new(audit_key);
        let configured = chain.key_check().map(|c| c.to_vec()).unwrap_or_default();
        let service = Service {
            storage,
            chain,
            group: GroupCommit::new(group),
            metrics: Metrics::new(),
            clock_log: crate::throttle::Throttle::new(inbox::CLOCK_LOG_EVERY),
        };
        // Most opens find the settings already there: a read, no write lock.
        let (stored, id) =
            service.read(|tx| Ok((tx.meta(META_AUDIT_KEY_CHECK)?, tx.meta(META_LEDGER_ID)?)))?;
        if let Some(stored) = &stored {
            check_key(stored, &configured)?;
        }
        if stored.is_none() || (id.is_none() && service.read(|tx| tx.last_audit())?.is_none()) {
            service.storage.write(&mut |tx| {
                // Re-checked under the write lock: another process may have
                // created the ledger in between.
                match tx.meta(META_AUDIT_KEY_CHECK)? {
                    Some(stored) => check_key(&stored, &configured)?,
                    None if tx.last_audit()?.is_some() => {
                        return Err(key_mismatch(
                            "the ledger has audit records but no audit key setting",
                        ))
                    }
                    None => tx.set_meta(META_AUDIT_KEY_CHECK, &configured)?,
                }
                // A new ledger gets its identity; one made before
                // checkpoints, with records, has one derived from its first
                // record (the same in every copy of it), never stored.
                if tx.meta(META_LEDGER_ID)?.is_none() && tx.last_audit()?.is_none() {
                    tx.set_meta(META_LEDGER_ID, LedgerId::generate().as_bytes())?;
                }
                Ok(())
            })?;
        }
        Ok(service)
    }

    pub fn storage(&self) -> &S {
        &self.storage
    }

    /// This service's metrics: ingestions, commits, storage errors (and
    /// what the webhook pipeline adds).
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Runs `f` in one write transaction that offers `events` events,
    /// measured: a commit's duration and size, or the storage error.
    pub(crate) fn write(
        &self,
        events: usize,
        f: &mut dyn FnMut(&mut dyn WriteTx) -> Result<()>,
    ) -> Result<()> {
        let started = std::time::Instant::now();
        let outcome = self.storage.write(f);
        match &outcome {
            Ok(()) => self.metrics.commit(started.elapsed(), events),
            Err(e) => self.metrics.error(e),
        }
        outcome
    }

    /// Runs `f` in one read transaction and returns what it returned.
    pub(crate) fn read<T>(&self, mut f: impl FnMut(&dyn ReadTx) -> Result<T>) -> Result<T> {
        let mut out = None;
        self.storage
            .read(&mut |tx| {
                out = Some(f(tx)?);
                Ok(())
            })
            .inspect_err(|e| self.metrics.error(e))?;
        // An adapter that returns Ok from `read` ran the closure: that is the port's contract.
        Ok(out.unwrap_or_else(|| {
            panic!(
                "{} returned from read without running it",
                self.storage.describe()
            )
        }))
    }
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
