//! Signed audit checkpoints: writing one, and proving the ledger extends
//! the ones it is given. The format is the domain's
//! ([`Checkpoint`](crate::domain::Checkpoint)); the rules are in
//! `docs/audit.md`.

use crate::domain::{
    AuditProblem, AuditProblemKind, AuditReport, Checkpoint, LedgerId, Result, SignedCheckpoint,
    SigningKey, StorageError, StorageErrorKind, Timestamp, VerifyingKey, GENESIS_HASH,
};
use crate::ports::{ReadTx, Storage};
use sha2::{Digest, Sha256};

use super::{Service, META_LEDGER_ID};

/// The ledger's identity: stored when the ledger was made, or, for a
/// ledger made before checkpoints, derived from its first audit record
/// (which every copy of it shares and no other ledger has).
fn ledger_id(tx: &dyn ReadTx) -> Result<LedgerId> {
    let Some(bytes) = tx.meta(META_LEDGER_ID)? else {
        let first = tx.audit_after(0, 1)?;
        let first = first.first().ok_or_else(|| {
            StorageError::new(StorageErrorKind::Corrupt, "the ledger has no identity")
        })?;
        let mut h = Sha256::new();
        h.update(b"walletlog.ledger-id.v1");
        h.update(first.hash);
        let digest = h.finalize();
        let mut id = [0u8; 16];
        id.copy_from_slice(&digest[..16]);
        // The version and variant bits of a UUID v8 (custom).
        id[6] = (id[6] & 0x0f) | 0x80;
        id[8] = (id[8] & 0x3f) | 0x80;
        return Ok(LedgerId::from_bytes(id));
    };
    let bytes: [u8; 16] = bytes.as_slice().try_into().map_err(|_| {
        StorageError::new(
            StorageErrorKind::Corrupt,
            "the ledger's identity is not 16 bytes",
        )
    })?;
    Ok(LedgerId::from_bytes(bytes))
}

fn problem(
    kind: AuditProblemKind,
    record: Option<u64>,
    detail: String,
) -> (Option<u64>, AuditProblem) {
    (
        record,
        AuditProblem {
            kind,
            record_sequence: record,
            event_sequence: None,
            detail,
        },
    )
}

impl<S: Storage> Service<S> {
    /// A checkpoint of the audit chain's head now, signed with `key`.
    pub fn audit_checkpoint(&self, key: &SigningKey) -> Result<String> {
        let checkpoint = self.read(|tx| {
            let (sequence, head) = tx.last_audit()?.unwrap_or((0, GENESIS_HASH));
            Ok(Checkpoint {
                ledger_id: ledger_id(tx)?,
                sequence,
                head,
                time: Timestamp::now(),
            })
        })?;
        tracing::info!(
            target: "walletlog::audit",
            sequence = checkpoint.sequence,
            "audit checkpoint signed"
        );
        Ok(checkpoint.sign(key))
    }

    /// [`verify_audit`](Self::verify_audit), and then that the ledger
    /// extends every checkpoint: each is signed by `key`, names this
    /// ledger, and its record is here with its hash. The first problem by
    /// sequence is reported, naming the checkpoint by its position.
    pub fn verify_audit_with(
        &self,
        checkpoints: &[&str],
        key: &VerifyingKey,
    ) -> Result<AuditReport> {
        // One snapshot: the checkpoints are checked against the chain the
        // walk verified.
        self.read(|tx| {
            let report = self.verify_in(tx)?;
            if !report.ok {
                return Ok(report);
            }
            let ledger = ledger_id(tx)?;
            let last = tx.last_audit()?.map_or(0, |(s, _)| s);
            let mut problems = Vec::new();
            for (i, text) in checkpoints.iter().enumerate() {
                let name = format!("checkpoint {}", i + 1);
                let signed = match SignedCheckpoint::parse(text) {
                    Ok(s) => s,
                    Err(e) => {
                        problems.push(problem(
                            AuditProblemKind::CheckpointBadSignature,
                            None,
                            format!(
                                "{name} is unreadable, so its signature cannot verify: {}",
                                e.reason
                            ),
                        ));
                        continue;
                    }
                };
                let c = &signed.checkpoint;
                let name = format!("{name} (record {}, {})", c.sequence, c.time);
                if !signed.signed_by(key) {
                    problems.push(problem(
                        AuditProblemKind::CheckpointBadSignature,
                        Some(c.sequence),
                        format!("{name}: its signature does not verify with this key"),
                    ));
                } else if c.ledger_id != ledger {
                    problems.push(problem(
                        AuditProblemKind::CheckpointOtherLedger,
                        Some(c.sequence),
                        format!(
                            "{name} is of ledger {}, not of this one ({ledger})",
                            c.ledger_id
                        ),
                    ));
                } else if c.sequence > last {
                    problems.push(problem(
                        AuditProblemKind::TailCut,
                        Some(last + 1),
                        format!(
                            "{name}: the trail ends at record {last}; records {} to {} are \
                             gone (the tail was cut, or this is an older copy)",
                            last + 1,
                            c.sequence
                        ),
                    ));
                } else {
                    let hash = if c.sequence == 0 {
                        Some(GENESIS_HASH)
                    } else {
                        tx.audit_after(c.sequence - 1, 1)?
                            .first()
                            .filter(|r| r.sequence == c.sequence)
                            .map(|r| r.hash)
                    };
                    if hash != Some(c.head) {
                        problems.push(problem(
                            AuditProblemKind::RolledBack,
                            Some(c.sequence),
                            format!(
                                "{name}: record {} has another hash than the checkpoint's; \
                                 the ledger went back to an older copy and was written \
                                 again, or its history was rewritten",
                                c.sequence
                            ),
                        ));
                    }
                }
            }
            // A checkpoint that verifies outranks one that does not (whose
            // sequence nobody vouches for); then the first by sequence.
            problems.sort_by_key(|(s, p)| {
                (
                    p.kind == AuditProblemKind::CheckpointBadSignature,
                    s.unwrap_or(u64::MAX),
                )
            });
            let found = problems.into_iter().next().map(|(_, p)| p);
            Ok(AuditReport {
                ok: found.is_none(),
                first_problem: found,
                ..report
            })
        })
    }
}
