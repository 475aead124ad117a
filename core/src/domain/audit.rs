//! The audit trail: one hash-chained record per ingestion attempt.

use std::fmt;

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use super::error::ValidationError;
use super::inbox::DeliveryId;
use super::values::{EventId, MatchedKey, Timestamp};

/// What an ingestion attempt did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuditAction {
    Created,
    Duplicate,
    Conflict,
}

impl AuditAction {
    pub fn as_str(self) -> &'static str {
        match self {
            AuditAction::Created => "created",
            AuditAction::Duplicate => "duplicate",
            AuditAction::Conflict => "conflict",
        }
    }

    pub fn code(self) -> u8 {
        match self {
            AuditAction::Created => 1,
            AuditAction::Duplicate => 2,
            AuditAction::Conflict => 3,
        }
    }

    pub fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(AuditAction::Created),
            2 => Some(AuditAction::Duplicate),
            3 => Some(AuditAction::Conflict),
            _ => None,
        }
    }
}

impl fmt::Display for AuditAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who asked for the ingestion: `api`, `plugin:stripe@1.2.0`, ...
pub const ACTOR_API: &str = "api";

/// One audit record. `hash` covers every other field, `prev_hash` included.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    /// 1, 2, 3, ... with no gaps.
    pub sequence: u64,
    pub recorded_at: Timestamp,
    pub action: AuditAction,
    /// The stored event created, or matched by the replay.
    pub event_id: EventId,
    /// The stored event's sequence.
    pub event_sequence: u64,
    /// The key a duplicate or conflict matched; `None` for `created`.
    pub matched_on: Option<MatchedKey>,
    pub actor: String,
    /// For `created`, the stored event's fingerprint; otherwise the fingerprint
    /// of the content that was offered.
    pub fingerprint: [u8; 32],
    /// SHA-256 of the raw webhook body, for webhook ingestions.
    pub body_sha256: Option<[u8; 32]>,
    /// The inbox delivery the events came from, for webhook ingestions and
    /// replays (records of version 2; older records have none).
    pub delivery_id: Option<DeliveryId>,
    pub prev_hash: [u8; 32],
    pub hash: [u8; 32],
}

/// The key of an HMAC-SHA256 audit chain: at least one byte. Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct AuditKey(Vec<u8>);

impl AuditKey {
    pub fn new(bytes: impl Into<Vec<u8>>) -> Result<AuditKey, ValidationError> {
        let bytes = bytes.into();
        if bytes.is_empty() {
            return Err(ValidationError::new(
                "audit_key",
                "must not be empty (leave it out for an unkeyed chain)",
            ));
        }
        Ok(AuditKey(bytes))
    }

    /// From hex digits, as the JSON options and the CLI give it.
    pub fn from_hex(text: &str) -> Result<AuditKey, ValidationError> {
        let bytes = crate::encoding::unhex(text)
            .filter(|b| !b.is_empty())
            .ok_or_else(|| {
                ValidationError::new(
                    "audit_key_hex",
                    "must be a non-empty, even-length string of hex digits",
                )
            })?;
        AuditKey::new(bytes)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AuditKey(<redacted>)")
    }
}

/// The hash before the first record.
pub const GENESIS_HASH: [u8; 32] = [0; 32];

/// How records are chained: plain SHA-256, or HMAC-SHA256 with the audit key.
#[derive(Clone)]
pub struct AuditChain {
    key: Option<AuditKey>,
}

impl fmt::Debug for AuditChain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the key.
        f.debug_struct("AuditChain")
            .field("keyed", &self.key.is_some())
            .finish()
    }
}

impl AuditChain {
    pub fn new(key: Option<AuditKey>) -> Self {
        AuditChain { key }
    }

    /// A value that identifies the key without revealing it, kept in the
    /// ledger so that opening it with another key is refused.
    pub fn key_check(&self) -> Option<[u8; 32]> {
        self.key
            .as_ref()
            .map(|k| Self::mac(k.as_bytes(), |out| out(b"walletlog.audit.key-check.v1")))
    }

    fn mac(key: &[u8], feed: impl FnOnce(&mut dyn FnMut(&[u8]))) -> [u8; 32] {
        // HMAC accepts keys of any length, so this cannot fail.
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
        feed(&mut |b| mac.update(b));
        mac.finalize().into_bytes().into()
    }

    /// The hash of `record`, from every field except `hash` itself.
    pub fn hash(&self, record: &AuditRecord) -> [u8; 32] {
        match &self.key {
            Some(key) => Self::mac(key.as_bytes(), |out| canonical_record(record, out)),
            None => {
                let mut h = Sha256::new();
                canonical_record(record, &mut |b| h.update(b));
                h.finalize().into()
            }
        }
    }
}

/// Feeds the record's fields, in a fixed order, to `out`. A record with a
/// delivery is of version 2, which adds the delivery's id; every other
/// record hashes exactly as version 1 did, so chains written before the
/// inbox still verify.
fn canonical_record(r: &AuditRecord, out: &mut dyn FnMut(&[u8])) {
    out(match r.delivery_id {
        Some(_) => b"walletlog.audit.v2",
        None => b"walletlog.audit.v1",
    });
    out(&r.prev_hash);
    out(&r.sequence.to_be_bytes());
    out(&r.recorded_at.as_micros().to_be_bytes());
    out(&[r.action.code()]);
    out(r.event_id.as_bytes());
    out(&r.event_sequence.to_be_bytes());
    out(&[r.matched_on.map_or(0, |k| k.code())]);
    out(&(r.actor.len() as u64).to_be_bytes());
    out(r.actor.as_bytes());
    out(&r.fingerprint);
    match &r.body_sha256 {
        Some(h) => {
            out(&[1]);
            out(h);
        }
        None => out(&[0]),
    }
    if let Some(d) = &r.delivery_id {
        out(d.as_bytes());
    }
}

/// What [`verify_audit`](crate::Ledger::verify_audit) found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditReport {
    pub ok: bool,
    pub records_checked: u64,
    pub events_checked: u64,
    /// The first problem, in audit order.
    pub first_problem: Option<AuditProblem>,
}

impl AuditReport {
    /// The sequence of the first bad audit record, when the problem is tied to one.
    pub fn first_bad_sequence(&self) -> Option<u64> {
        self.first_problem.as_ref().and_then(|p| p.record_sequence)
    }

    /// Words for the first problem.
    pub fn reason(&self) -> Option<String> {
        self.first_problem.as_ref().map(|p| p.to_string())
    }
}

/// One thing verification found wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditProblem {
    pub kind: AuditProblemKind,
    /// The audit record concerned, if any.
    pub record_sequence: Option<u64>,
    /// The event concerned, if any.
    pub event_sequence: Option<u64>,
    pub detail: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditProblemKind {
    /// An audit record's content no longer matches its hash.
    RecordAltered,
    /// The chain has a gap or a broken link: a record was deleted, inserted,
    /// replaced or renumbered.
    ChainBroken,
    /// A stored event no longer matches the fingerprint recorded at creation.
    EventAltered,
    /// An event recorded as created is gone.
    EventMissing,
    /// An event is stored that no audit record created.
    EventInserted,
    /// A stored balance disagrees with the sum of the wallet's events.
    BalanceAltered,
    /// A stored webhook delivery's body no longer hashes to the body hash
    /// its audit records hold.
    DeliveryAltered,
    /// A checkpoint is unreadable, or not signed by the verifying key.
    CheckpointBadSignature,
    /// A checkpoint names another ledger.
    CheckpointOtherLedger,
    /// The trail ends before a checkpoint's record: its tail was cut (or
    /// this is an older copy).
    TailCut,
    /// A checkpoint's record has another hash: the ledger went back to an
    /// older copy and was written again, or its history was rewritten.
    RolledBack,
}

impl AuditProblemKind {
    /// `record_altered`, `chain_broken`, `event_altered`, `event_missing`,
    /// `event_inserted`, `balance_altered`, `delivery_altered`,
    /// `checkpoint_bad_signature`, `checkpoint_other_ledger`, `tail_cut` or
    /// `rolled_back`: stable across versions and faces.
    pub fn as_str(self) -> &'static str {
        match self {
            AuditProblemKind::RecordAltered => "record_altered",
            AuditProblemKind::ChainBroken => "chain_broken",
            AuditProblemKind::EventAltered => "event_altered",
            AuditProblemKind::EventMissing => "event_missing",
            AuditProblemKind::EventInserted => "event_inserted",
            AuditProblemKind::BalanceAltered => "balance_altered",
            AuditProblemKind::DeliveryAltered => "delivery_altered",
            AuditProblemKind::CheckpointBadSignature => "checkpoint_bad_signature",
            AuditProblemKind::CheckpointOtherLedger => "checkpoint_other_ledger",
            AuditProblemKind::TailCut => "tail_cut",
            AuditProblemKind::RolledBack => "rolled_back",
        }
    }
}

impl fmt::Display for AuditProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.kind {
            AuditProblemKind::RecordAltered => "audit record altered",
            AuditProblemKind::ChainBroken => "audit chain broken",
            AuditProblemKind::EventAltered => "event altered",
            AuditProblemKind::EventMissing => "event missing",
            AuditProblemKind::EventInserted => "event inserted",
            AuditProblemKind::BalanceAltered => "balance altered",
            AuditProblemKind::DeliveryAltered => "webhook delivery altered",
            AuditProblemKind::CheckpointBadSignature => "checkpoint signature invalid",
            AuditProblemKind::CheckpointOtherLedger => "checkpoint of another ledger",
            AuditProblemKind::TailCut => "audit trail cut short",
            AuditProblemKind::RolledBack => "audit trail rolled back",
        };
        f.write_str(what)?;
        if let Some(s) = self.record_sequence {
            write!(f, " (audit record {s})")?;
        }
        if let Some(s) = self.event_sequence {
            write!(f, " (event {s})")?;
        }
        write!(f, ": {}", self.detail)
    }
}
