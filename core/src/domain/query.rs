//! History queries: what `list` takes, the page it returns, the opaque cursor.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use sha2::{Digest, Sha256};

use super::error::ValidationError;
use super::event::WalletTransactionEvent;
use super::values::{Currency, EventType, Timestamp, WalletId};
use crate::encoding::quoted;
use crate::limits::{PAGE_EVENTS_DEFAULT, PAGE_EVENTS_MAX};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Order {
    /// Oldest first.
    Asc,
    /// Newest first (the default).
    #[default]
    Desc,
}

impl Order {
    pub fn parse(text: &str) -> Result<Self, ValidationError> {
        match text {
            "asc" => Ok(Order::Asc),
            "desc" => Ok(Order::Desc),
            _ => Err(ValidationError::new(
                "order",
                format!("{} is not \"asc\" or \"desc\"", quoted(text)),
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Order::Asc => "asc",
            Order::Desc => "desc",
        }
    }
}

/// Where a page ends: the `(occurred_at, sequence)` of its last event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Position {
    pub occurred_at: Timestamp,
    pub sequence: u64,
}

/// A validated history query. Build with [`ListQuery::new`] and the
/// setters (or from a [`RawListQuery`](super::RawListQuery)); the fields
/// are private so that a query can only hold what the setters allow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListQuery {
    wallet_id: WalletId,
    limit: usize,
    order: Order,
    event_types: Option<Vec<EventType>>,
    since: Option<Timestamp>,
    until: Option<Timestamp>,
    currency: Option<Currency>,
    after: Option<Position>,
    /// The query's tag when the cursor was decoded.
    after_tag: Option<[u8; 8]>,
}

/// A read-only view of a [`ListQuery`], for storage engines.
#[derive(Debug, Clone, Copy)]
pub struct QueryView<'q> {
    pub wallet_id: &'q WalletId,
    /// 1..=[`PAGE_EVENTS_MAX`].
    pub limit: usize,
    pub order: Order,
    /// `None`: every type. Sorted, without repeats.
    pub event_types: Option<&'q [EventType]>,
    /// Inclusive lower bound on `occurred_at`.
    pub since: Option<Timestamp>,
    /// Exclusive upper bound on `occurred_at`.
    pub until: Option<Timestamp>,
    pub currency: Option<&'q Currency>,
    /// Continue strictly after this position (decoded from a cursor).
    pub after: Option<Position>,
}

impl ListQuery {
    /// The first page, newest first, 100 events.
    pub fn new(wallet_id: WalletId) -> Self {
        ListQuery {
            wallet_id,
            limit: PAGE_EVENTS_DEFAULT,
            order: Order::Desc,
            event_types: None,
            since: None,
            until: None,
            currency: None,
            after: None,
            after_tag: None,
        }
    }

    /// What the query asks for.
    pub fn view(&self) -> QueryView<'_> {
        QueryView {
            wallet_id: &self.wallet_id,
            limit: self.limit,
            order: self.order,
            event_types: self.event_types.as_deref(),
            since: self.since,
            until: self.until,
            currency: self.currency.as_ref(),
            after: self.after,
        }
    }

    pub fn wallet_id(&self) -> &WalletId {
        &self.wallet_id
    }

    /// The page size, 1..=[`PAGE_EVENTS_MAX`].
    pub fn page_size(&self) -> usize {
        self.limit
    }

    /// 1..=[`PAGE_EVENTS_MAX`] events a page (100 by default).
    pub fn limit(mut self, limit: usize) -> Result<Self, ValidationError> {
        self.limit = page_limit(limit)?;
        Ok(self)
    }

    pub fn order(mut self, order: Order) -> Self {
        self.order = order;
        self
    }

    pub fn event_types(mut self, types: Vec<EventType>) -> Result<Self, ValidationError> {
        if types.is_empty() {
            return Err(ValidationError::new(
                "event_types",
                "must name at least one type (leave it out for all types)",
            ));
        }
        let mut types = types;
        types.sort();
        types.dedup();
        self.event_types = Some(types);
        Ok(self)
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

    pub fn currency(mut self, currency: Currency) -> Self {
        self.currency = Some(currency);
        self
    }

    /// Continues from a cursor returned with an earlier page of this same
    /// query. The cursor is bound to the wallet, order and filters: checked
    /// here against the fields set so far, and again when the query runs
    /// (so a filter changed after the cursor is caught too).
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

    /// Binds a cursor to the wallet, order and filters that produced it.
    fn tag(&self) -> [u8; 8] {
        Cursor::tag(b"walletlog.cursor.v1", |h| {
            h(&(self.wallet_id.as_str().len() as u64).to_be_bytes());
            h(self.wallet_id.as_str().as_bytes());
            h(&[self.order as u8]);
            match &self.event_types {
                None => h(&[0xff]),
                Some(types) => {
                    h(&[types.len() as u8]);
                    h(&types.iter().map(|t| t.code()).collect::<Vec<_>>());
                }
            }
            for bound in [self.since, self.until] {
                match bound {
                    None => h(&[0]),
                    Some(t) => {
                        h(&[1]);
                        h(&t.as_micros().to_be_bytes());
                    }
                }
            }
            match &self.currency {
                None => h(&[0]),
                Some(c) => {
                    h(&[1]);
                    h(c.as_str().as_bytes());
                }
            }
        })
    }

    /// The cursor that continues after `last`.
    pub fn cursor_after(&self, last: &WalletTransactionEvent) -> String {
        Cursor::encode(
            Position {
                occurred_at: last.occurred_at,
                sequence: last.sequence,
            },
            self.tag(),
        )
    }
}

/// A page size: 1..=[`PAGE_EVENTS_MAX`] (history and inbox pages alike).
pub(super) fn page_limit(limit: usize) -> Result<usize, ValidationError> {
    if !(1..=PAGE_EVENTS_MAX).contains(&limit) {
        return Err(ValidationError::new(
            "limit",
            format!("{limit} is outside 1..={PAGE_EVENTS_MAX}"),
        ));
    }
    Ok(limit)
}

/// A page size as a face gives it (any integer).
pub(super) fn raw_page_limit(limit: i64) -> Result<usize, ValidationError> {
    usize::try_from(limit)
        .map_err(|_| {
            ValidationError::new("limit", format!("{limit} is outside 1..={PAGE_EVENTS_MAX}"))
        })
        .and_then(page_limit)
}

/// `since` (inclusive) must come before `until` (exclusive).
pub(super) fn check_range(
    since: Option<Timestamp>,
    until: Option<Timestamp>,
) -> Result<(), ValidationError> {
    match (since, until) {
        (Some(s), Some(u)) if s >= u => Err(ValidationError::new(
            "until",
            format!("{u} is not after since {s}"),
        )),
        _ => Ok(()),
    }
}

/// One page of a wallet's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub events: Vec<WalletTransactionEvent>,
    /// Present when more events follow; pass it back to get them.
    pub next_cursor: Option<String>,
}

/// Version 2 adds a check over the whole cursor, so that a changed
/// position is refused as malformed rather than read as another place in
/// the history. Version 1 cursors (no check), still in callers' hands
/// across an upgrade, are taken.
const CURSOR_VERSION: u8 = 2;
const CURSOR_V1_BYTES: usize = 1 + 8 + 8 + 8;
const CURSOR_BYTES: usize = CURSOR_V1_BYTES + 8;

/// The opaque keyset cursor of history and inbox pages: a version, a
/// position, a tag binding it to the query that produced it, and a check
/// over the three.
pub(super) struct Cursor;

impl Cursor {
    /// The first 8 bytes of the SHA-256 of `domain` and what `feed` gives.
    pub(super) fn tag(domain: &[u8], feed: impl FnOnce(&mut dyn FnMut(&[u8]))) -> [u8; 8] {
        let mut h = Sha256::new();
        h.update(domain);
        feed(&mut |b| h.update(b));
        let digest = h.finalize();
        let mut tag = [0u8; 8];
        tag.copy_from_slice(&digest[..8]);
        tag
    }

    /// The check of a cursor's first [`CURSOR_V1_BYTES`] bytes. Not a
    /// secret: it catches a cursor changed by accident or by hand, and a
    /// caller who forges one still reads only what its query may read.
    fn check(body: &[u8]) -> [u8; 8] {
        Self::tag(b"walletlog.cursor.check", |h| h(body))
    }

    pub(super) fn foreign() -> ValidationError {
        ValidationError::new(
            "cursor",
            "belongs to a different query: the wallet, order or filters differ \
             from the ones that produced it",
        )
    }

    pub(super) fn encode(pos: Position, tag: [u8; 8]) -> String {
        let mut bytes = Vec::with_capacity(CURSOR_BYTES);
        bytes.push(CURSOR_VERSION);
        bytes.extend_from_slice(&pos.occurred_at.as_micros().to_be_bytes());
        bytes.extend_from_slice(&pos.sequence.to_be_bytes());
        bytes.extend_from_slice(&tag);
        let check = Self::check(&bytes);
        bytes.extend_from_slice(&check);
        URL_SAFE_NO_PAD.encode(bytes)
    }

    pub(super) fn decode(text: &str, expected_tag: [u8; 8]) -> Result<Position, ValidationError> {
        let malformed = || {
            ValidationError::new(
                "cursor",
                "is malformed: pass back a next_cursor exactly as returned",
            )
        };
        if text.len() > 64 {
            return Err(malformed());
        }
        let bytes = URL_SAFE_NO_PAD.decode(text).map_err(|_| malformed())?;
        let intact = match (bytes.first(), bytes.len()) {
            (Some(1), CURSOR_V1_BYTES) => true,
            (Some(&CURSOR_VERSION), CURSOR_BYTES) => {
                Self::check(&bytes[..CURSOR_V1_BYTES]) == bytes[CURSOR_V1_BYTES..]
            }
            _ => false,
        };
        if !intact {
            return Err(malformed());
        }
        let word = |i: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&bytes[i..i + 8]);
            b
        };
        if word(17) != expected_tag {
            return Err(Self::foreign());
        }
        let occurred_at = Timestamp::from_micros("cursor", i64::from_be_bytes(word(1)))?;
        Ok(Position {
            occurred_at,
            sequence: u64::from_be_bytes(word(9)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_version_1_cursor_is_still_taken() {
        let tag = [7u8; 8];
        let pos = Position {
            occurred_at: Timestamp::from_micros("t", 1_767_225_600_000_000).unwrap(),
            sequence: 42,
        };
        let mut v1 = vec![1u8];
        v1.extend_from_slice(&pos.occurred_at.as_micros().to_be_bytes());
        v1.extend_from_slice(&pos.sequence.to_be_bytes());
        v1.extend_from_slice(&tag);
        let back = Cursor::decode(&URL_SAFE_NO_PAD.encode(&v1), tag).unwrap();
        assert_eq!((back.occurred_at, back.sequence), (pos.occurred_at, 42));
        // Today's cursors carry the check and decode to the same place.
        let v2 = Cursor::encode(pos, tag);
        let back = Cursor::decode(&v2, tag).unwrap();
        assert_eq!((back.occurred_at, back.sequence), (pos.occurred_at, 42));
        assert!(Cursor::decode(&v2, [8u8; 8])
            .unwrap_err()
            .reason
            .contains("different query"));
    }
}
