//! The webhook inbox: every delivery that passed its signature check, kept
//! raw with what became of it, so that a refused one can be replayed.
//!
//! A delivery is one body of one provider: a provider's retry of the same
//! body is another attempt on the same delivery (so its first receipt time
//! is the one a timeless event is dated by), and so is a replay.

use std::fmt;

use super::error::{Error, PluginErrorKind, ValidationError};
use super::query::{check_range, page_limit, Cursor, Order, Position};
use super::values::{EventId, Provider, Timestamp};
use crate::encoding::quoted;
use crate::limits::PAGE_EVENTS_DEFAULT;

/// A delivery's id: a UUID derived from its provider and the SHA-256 of
/// its body ([`DeliveryId::for_body`]), so that a provider's retry of a
/// body names the delivery it belongs to. Deliveries stored before ids
/// were derived (a SQLite ledger of schema 2) keep the time-ordered (v7)
/// ids they were given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeliveryId(uuid::Uuid);

/// What a derived delivery id hashes first: the derivation's name and
/// version, so that no other hash of the same bytes is ever an id.
const DELIVERY_ID_DOMAIN: &[u8] = b"walletlog delivery id v1\0";

impl DeliveryId {
    /// The id of `provider`'s delivery of the body whose SHA-256 is
    /// `body_sha256`: the first 16 bytes of
    /// `SHA-256("walletlog delivery id v1" NUL provider NUL body_sha256)`
    /// as a version 8 (custom) UUID. The same body of the same provider
    /// has this id on every ledger.
    pub fn for_body(provider: &Provider, body_sha256: &[u8; 32]) -> Self {
        use sha2::{Digest, Sha256};
        let digest = Sha256::new()
            .chain_update(DELIVERY_ID_DOMAIN)
            .chain_update(provider.as_str().as_bytes())
            .chain_update([0])
            .chain_update(body_sha256)
            .finalize();
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&digest[..16]);
        DeliveryId(uuid::Builder::from_custom_bytes(bytes).into_uuid())
    }

    /// A random, time-ordered (v7) id: the kind deliveries had before ids
    /// were derived; for tests and for an id that names no delivery.
    pub fn generate() -> Self {
        DeliveryId(uuid::Uuid::now_v7())
    }

    /// Whether this is the id [`DeliveryId::for_body`] gives.
    pub fn is_derived_from(&self, provider: &Provider, body_sha256: &[u8; 32]) -> bool {
        *self == Self::for_body(provider, body_sha256)
    }

    pub fn from_bytes(bytes: [u8; 16]) -> Self {
        DeliveryId(uuid::Uuid::from_bytes(bytes))
    }

    /// Parses the hyphenated, simple or URN text form.
    pub fn parse(text: &str) -> Result<Self, ValidationError> {
        uuid::Uuid::parse_str(text).map(DeliveryId).map_err(|e| {
            ValidationError::new(
                "delivery_id",
                format!("{} is not a UUID: {e}", quoted(text)),
            )
        })
    }

    pub fn as_uuid(&self) -> &uuid::Uuid {
        &self.0
    }

    pub fn as_bytes(&self) -> &[u8; 16] {
        self.0.as_bytes()
    }
}

impl fmt::Display for DeliveryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

/// What became of a delivery's latest attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Verdict {
    /// Its events are stored (created, or duplicates of stored ones).
    Ingested,
    /// The plugin found no movement of money in it.
    Ignored,
    /// The plugin does not handle its event type.
    Unsupported,
    /// The plugin could not read it.
    Malformed,
    /// The plugin trapped or ran out of fuel, time or memory.
    PluginFailed,
    /// The plugin's output was refused (an invalid field, too much output).
    InvalidOutput,
    /// One of its events conflicts with a stored event.
    Conflict,
}

impl Verdict {
    pub const ALL: [Verdict; 7] = [
        Verdict::Ingested,
        Verdict::Ignored,
        Verdict::Unsupported,
        Verdict::Malformed,
        Verdict::PluginFailed,
        Verdict::InvalidOutput,
        Verdict::Conflict,
    ];

    /// `ingested`, `ignored`, `unsupported`, `malformed`, `plugin_failed`,
    /// `invalid_output` or `conflict`: stable across versions and faces.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Ingested => "ingested",
            Verdict::Ignored => "ignored",
            Verdict::Unsupported => "unsupported",
            Verdict::Malformed => "malformed",
            Verdict::PluginFailed => "plugin_failed",
            Verdict::InvalidOutput => "invalid_output",
            Verdict::Conflict => "conflict",
        }
    }

    /// The stored code.
    pub fn code(self) -> u8 {
        self as u8 + 1
    }

    pub fn from_code(code: u8) -> Option<Self> {
        Self::ALL.get(usize::from(code).checked_sub(1)?).copied()
    }

    pub fn parse(text: &str) -> Result<Self, ValidationError> {
        Self::ALL
            .into_iter()
            .find(|v| v.as_str() == text)
            .ok_or_else(|| {
                ValidationError::new(
                    "verdict",
                    format!(
                        "{} is not one of {}",
                        quoted(text),
                        Self::ALL.map(|v| v.as_str()).join(", ")
                    ),
                )
            })
    }

    /// The verdict of a delivery refused with `error`; `None` for what is
    /// never stored (a signature refused, no plugin installed, a request
    /// over the size limit, a storage failure).
    pub fn of_error(error: &Error) -> Option<Verdict> {
        match error {
            Error::Plugin(p) => match p.kind {
                PluginErrorKind::Unsupported => Some(Verdict::Unsupported),
                PluginErrorKind::Malformed => Some(Verdict::Malformed),
                PluginErrorKind::InvalidOutput | PluginErrorKind::OutputTooLarge => {
                    Some(Verdict::InvalidOutput)
                }
                PluginErrorKind::Trap
                | PluginErrorKind::OutOfFuel
                | PluginErrorKind::Timeout
                | PluginErrorKind::OutOfMemory => Some(Verdict::PluginFailed),
                PluginErrorKind::NotInstalled
                | PluginErrorKind::RequestTooLarge
                | PluginErrorKind::Refused => None,
            },
            Error::Conflict(_) => Some(Verdict::Conflict),
            // An event the plugin gave that cannot be stored (an overflow).
            Error::Validation(_) => Some(Verdict::InvalidOutput),
            Error::Signature(_) | Error::Storage(_) | Error::NotFound { .. } => None,
        }
    }

    /// Whether the delivery's money is in the ledger (or there is none):
    /// `ingested` and `ignored`. Every other verdict is a dead letter.
    pub fn settled(self) -> bool {
        matches!(self, Verdict::Ingested | Verdict::Ignored)
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How an attempt came about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptKind {
    /// The provider delivered the body (the first time, or again).
    Receipt,
    /// `replay` ran the stored body through the plugin installed then.
    Replay,
}

impl AttemptKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AttemptKind::Receipt => "receipt",
            AttemptKind::Replay => "replay",
        }
    }
}

/// One run of a delivery through a plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryAttempt {
    pub at: Timestamp,
    pub kind: AttemptKind,
    pub plugin_version: String,
    /// SHA-256 of the plugin component that ran.
    pub plugin_sha256: [u8; 32],
    pub verdict: Verdict,
    /// Why, for every verdict but `ingested` and `ignored`.
    pub reason: Option<String>,
    /// The events the attempt stored or matched, in the plugin's order.
    pub event_ids: Vec<EventId>,
}

/// The most attempts a delivery keeps in its history: the first, and the
/// latest ones. Its count of attempts goes on.
pub const DELIVERY_ATTEMPTS_KEPT: usize = 100;

/// The longest reason kept with an attempt, in characters.
pub const DELIVERY_REASON_CHARS_MAX: usize = 1000;

/// A stored delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// 1, 2, 3, ... in order of first receipt: the inbox's keyset order
    /// with `received_at`.
    pub sequence: u64,
    pub delivery_id: DeliveryId,
    pub provider: Provider,
    /// The first receipt.
    pub received_at: Timestamp,
    pub url: Option<String>,
    /// As received at the first receipt, names as sent.
    pub headers: Vec<(String, String)>,
    /// The raw body. `None` once retention pruned it, and in listings.
    pub body: Option<Vec<u8>>,
    pub body_sha256: [u8; 32],
    pub body_bytes: u64,
    /// How many attempts there were (the history keeps at most
    /// [`DELIVERY_ATTEMPTS_KEPT`]).
    pub attempt_count: u64,
    /// Oldest first; never empty once stored.
    pub attempts: Vec<DeliveryAttempt>,
}

impl Delivery {
    /// The latest attempt.
    pub fn latest(&self) -> &DeliveryAttempt {
        self.attempts
            .last()
            .expect("a stored delivery has at least one attempt")
    }

    pub fn verdict(&self) -> Verdict {
        self.latest().verdict
    }

    /// Appends `attempt`, keeping the first attempt and the latest ones.
    pub fn push_attempt(&mut self, mut attempt: DeliveryAttempt) {
        if let Some(r) = &attempt.reason {
            if r.chars().count() > DELIVERY_REASON_CHARS_MAX {
                let cut: String = r.chars().take(DELIVERY_REASON_CHARS_MAX).collect();
                attempt.reason = Some(format!("{cut}..."));
            }
        }
        if self.attempts.len() >= DELIVERY_ATTEMPTS_KEPT {
            self.attempts.remove(1);
        }
        self.attempts.push(attempt);
        self.attempt_count += 1;
    }
}

/// A validated inbox query: deliveries by provider, verdict and receipt
/// time, keyset-paged like history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboxQuery {
    limit: usize,
    order: Order,
    provider: Option<Provider>,
    verdict: Option<Verdict>,
    since: Option<Timestamp>,
    until: Option<Timestamp>,
    after: Option<Position>,
    after_tag: Option<[u8; 8]>,
}

/// A read-only view of an [`InboxQuery`], for storage engines.
#[derive(Debug, Clone, Copy)]
pub struct InboxView<'q> {
    pub limit: usize,
    pub order: Order,
    pub provider: Option<&'q Provider>,
    pub verdict: Option<Verdict>,
    /// Inclusive lower bound on `received_at`.
    pub since: Option<Timestamp>,
    /// Exclusive upper bound on `received_at`.
    pub until: Option<Timestamp>,
    /// Continue strictly after this `(received_at, sequence)`.
    pub after: Option<Position>,
}

impl Default for InboxQuery {
    fn default() -> Self {
        InboxQuery {
            limit: PAGE_EVENTS_DEFAULT,
            order: Order::Desc,
            provider: None,
            verdict: None,
            since: None,
            until: None,
            after: None,
            after_tag: None,
        }
    }
}

impl InboxQuery {
    /// Every delivery, newest first, 100 a page.
    pub fn new() -> Self {
        Self::default()
    }

    pub fn view(&self) -> InboxView<'_> {
        InboxView {
            limit: self.limit,
            order: self.order,
            provider: self.provider.as_ref(),
            verdict: self.verdict,
            since: self.since,
            until: self.until,
            after: self.after,
        }
    }

    pub fn page_size(&self) -> usize {
        self.limit
    }

    /// 1..=1000 deliveries a page (100 by default).
    pub fn limit(mut self, limit: usize) -> Result<Self, ValidationError> {
        self.limit = page_limit(limit)?;
        Ok(self)
    }

    pub fn order(mut self, order: Order) -> Self {
        self.order = order;
        self
    }

    pub fn provider(mut self, provider: Provider) -> Self {
        self.provider = Some(provider);
        self
    }

    pub fn verdict(mut self, verdict: Verdict) -> Self {
        self.verdict = Some(verdict);
        self
    }

    pub fn since(mut self, since: Timestamp) -> Result<Self, ValidationError> {
        self.since = Some(since);
        self.check_range()?;
        Ok(self)
    }

    pub fn until(mut self, until: Timestamp) -> Result<Self, ValidationError> {
        self.until = Some(until);
        self.check_range()?;
        Ok(self)
    }

    fn check_range(&self) -> Result<(), ValidationError> {
        check_range(self.since, self.until)
    }

    /// Continues from a cursor of an earlier page of this same query.
    pub fn cursor(mut self, cursor: &str) -> Result<Self, ValidationError> {
        let tag = self.tag();
        self.after = Some(Cursor::decode(cursor, tag)?);
        self.after_tag = Some(tag);
        Ok(self)
    }

    /// Refuses a query whose fields changed after its cursor was set.
    pub fn check_cursor(&self) -> Result<(), ValidationError> {
        match self.after_tag {
            Some(tag) if tag != self.tag() => Err(Cursor::foreign()),
            _ => Ok(()),
        }
    }

    fn tag(&self) -> [u8; 8] {
        Cursor::tag(b"walletlog.inbox-cursor.v1", |h| {
            h(&[self.order as u8]);
            match &self.provider {
                None => h(&[0]),
                Some(p) => {
                    h(&[1]);
                    h(&(p.as_str().len() as u64).to_be_bytes());
                    h(p.as_str().as_bytes());
                }
            }
            h(&[self.verdict.map_or(0, |v| v.code())]);
            for bound in [self.since, self.until] {
                match bound {
                    None => h(&[0]),
                    Some(t) => {
                        h(&[1]);
                        h(&t.as_micros().to_be_bytes());
                    }
                }
            }
        })
    }

    /// The cursor that continues after `last`.
    pub fn cursor_after(&self, last: &Delivery) -> String {
        Cursor::encode(
            Position {
                occurred_at: last.received_at,
                sequence: last.sequence,
            },
            self.tag(),
        )
    }
}

/// One page of the inbox (bodies left out: fetch one with `delivery`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboxPage {
    pub deliveries: Vec<Delivery>,
    pub next_cursor: Option<String>,
}

/// Which deliveries a replay runs: by id, or every one of a provider (or
/// of every provider) with a verdict; without a verdict, every dead letter
/// but a conflict (`unsupported`, `malformed`, `plugin_failed`,
/// `invalid_output`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReplaySelection {
    pub delivery_ids: Option<Vec<DeliveryId>>,
    pub provider: Option<Provider>,
    pub verdict: Option<Verdict>,
}

/// What a replay did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReplayReport {
    /// Deliveries run through their plugin.
    pub replayed: u64,
    /// Events stored for the first time.
    pub created: u64,
    /// Events the ledger already held.
    pub duplicates: u64,
    /// Deliveries whose verdict is still neither `ingested` nor `ignored`.
    pub still_failing: u64,
    /// Deliveries chosen by provider and verdict whose body retention had
    /// dropped: not run.
    pub skipped: u64,
    /// Each delivery's verdict after the replay, in the order run.
    pub outcomes: Vec<(DeliveryId, Verdict)>,
}
