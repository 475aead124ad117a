//! Raw inputs: what crosses a face (JSON, Python, C, the CLI) before it is
//! validated, as plain strings and numbers. Each has one `validate` that
//! every face calls, so the rules and their messages exist once.

use super::error::ValidationError;
use super::event::NewEvent;
use super::inbox::{DeliveryId, InboxQuery, ReplaySelection, Verdict};
use super::query::{raw_page_limit, ListQuery, Order};
use super::values::{
    Amount, Currency, EventId, EventType, IdempotencyKey, Metadata, Provider, ProviderEventId,
    Timestamp, WalletId,
};

/// An event as callers hand it over from outside Rust's type system (JSON,
/// Python, C): plain strings, checked field by field by [`RawEvent::validate`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RawEvent {
    pub event_id: Option<String>,
    pub wallet_id: String,
    pub provider: String,
    pub event_type: String,
    pub amount: String,
    pub currency: String,
    pub provider_event_id: Option<String>,
    pub idempotency_key: Option<String>,
    /// JSON object text; `None` is `{}`.
    pub metadata: Option<String>,
    /// RFC 3339 with any offset.
    pub occurred_at: String,
    /// `occurred_at` is an estimate (a webhook's receipt time): what an
    /// export of such an event says, so that its import keeps it.
    pub occurred_at_estimated: bool,
}

impl RawEvent {
    /// Checks every field, in declaration order, and reports the first breach.
    pub fn validate(&self) -> Result<NewEvent, ValidationError> {
        let event_id = self.event_id.as_deref().map(EventId::parse).transpose()?;
        let mut event = NewEvent::new(
            WalletId::new(self.wallet_id.as_str())?,
            Provider::new(self.provider.as_str())?,
            EventType::parse(&self.event_type)?,
            Amount::parse(&self.amount)?,
            Currency::new(self.currency.as_str())?,
            Timestamp::parse_rfc3339("occurred_at", &self.occurred_at)?,
        );
        event.event_id = event_id;
        event.provider_event_id = self
            .provider_event_id
            .as_deref()
            .map(ProviderEventId::new)
            .transpose()?;
        event.idempotency_key = self
            .idempotency_key
            .as_deref()
            .map(IdempotencyKey::new)
            .transpose()?;
        if let Some(m) = &self.metadata {
            event.metadata = Metadata::from_json(m)?;
        }
        event.occurred_at_estimated = self.occurred_at_estimated;
        Ok(event)
    }
}

/// A time as a face hands it over: RFC 3339 text (any offset; a time
/// without one is refused with a hint), or microseconds since the Unix
/// epoch (what the Python layer computes from an aware `datetime`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RawTime {
    Rfc3339(String),
    Micros(i64),
}

impl RawTime {
    pub fn validate(&self, field: &'static str) -> Result<Timestamp, ValidationError> {
        match self {
            RawTime::Rfc3339(text) => Timestamp::parse_rfc3339(field, text),
            RawTime::Micros(us) => Timestamp::from_micros(field, *us),
        }
    }
}

/// A history query as a face hands it over; every field but the wallet optional.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RawListQuery {
    pub wallet_id: String,
    /// 1..=1000; 100 when absent.
    pub limit: Option<i64>,
    /// `asc` or `desc` (the default).
    pub order: Option<String>,
    pub event_types: Option<Vec<String>>,
    /// Inclusive lower bound on `occurred_at`.
    pub since: Option<RawTime>,
    /// Exclusive upper bound on `occurred_at`.
    pub until: Option<RawTime>,
    pub currency: Option<String>,
    /// A `next_cursor` of an earlier page of this same query.
    pub cursor: Option<String>,
}

impl RawListQuery {
    /// The query, or the first field that breaks a rule. The cursor is
    /// checked last, against everything else: it is bound to the query.
    pub fn validate(&self) -> Result<ListQuery, ValidationError> {
        let mut query = ListQuery::new(WalletId::new(self.wallet_id.as_str())?);
        if let Some(limit) = self.limit {
            query = query.limit(raw_page_limit(limit)?)?;
        }
        if let Some(order) = &self.order {
            query = query.order(Order::parse(order)?);
        }
        if let Some(types) = &self.event_types {
            let types = types
                .iter()
                .map(|t| EventType::parse(t))
                .collect::<Result<Vec<_>, _>>()
                // Named as the query's parameter, which holds several.
                .map_err(|e| ValidationError {
                    field: "event_types",
                    ..e
                })?;
            query = query.event_types(types)?;
        }
        if let Some(since) = &self.since {
            query = query.since(since.validate("since")?)?;
        }
        if let Some(until) = &self.until {
            query = query.until(until.validate("until")?)?;
        }
        if let Some(currency) = &self.currency {
            query = query.currency(Currency::new(currency.as_str())?);
        }
        match &self.cursor {
            Some(cursor) => query.cursor(cursor),
            None => Ok(query),
        }
    }
}

/// An inbox query as a face hands it over; every field optional.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RawInboxQuery {
    pub provider: Option<String>,
    /// A verdict's name: `ingested`, `unsupported`, ...
    pub verdict: Option<String>,
    /// Inclusive lower bound on `received_at`.
    pub since: Option<RawTime>,
    /// Exclusive upper bound on `received_at`.
    pub until: Option<RawTime>,
    /// 1..=1000; 100 when absent.
    pub limit: Option<i64>,
    /// `asc` or `desc` (the default).
    pub order: Option<String>,
    pub cursor: Option<String>,
}

impl RawInboxQuery {
    /// The query, or the first field that breaks a rule; the cursor last.
    pub fn validate(&self) -> Result<InboxQuery, ValidationError> {
        let mut query = InboxQuery::new();
        if let Some(limit) = self.limit {
            query = query.limit(raw_page_limit(limit)?)?;
        }
        if let Some(order) = &self.order {
            query = query.order(Order::parse(order)?);
        }
        if let Some(p) = &self.provider {
            query = query.provider(Provider::new(p.as_str())?);
        }
        if let Some(v) = &self.verdict {
            query = query.verdict(Verdict::parse(v)?);
        }
        if let Some(since) = &self.since {
            query = query.since(since.validate("since")?)?;
        }
        if let Some(until) = &self.until {
            query = query.until(until.validate("until")?)?;
        }
        match &self.cursor {
            Some(cursor) => query.cursor(cursor),
            None => Ok(query),
        }
    }
}

/// Which deliveries to replay, as a face hands it over.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RawReplaySelection {
    pub delivery_ids: Option<Vec<String>>,
    pub provider: Option<String>,
    pub verdict: Option<String>,
}

impl RawReplaySelection {
    pub fn validate(&self) -> Result<ReplaySelection, ValidationError> {
        Ok(ReplaySelection {
            delivery_ids: self
                .delivery_ids
                .as_ref()
                .map(|ids| {
                    ids.iter()
                        .map(|i| {
                            // The parameter is the list.
                            DeliveryId::parse(i).map_err(|e| ValidationError {
                                field: "delivery_ids",
                                ..e
                            })
                        })
                        .collect()
                })
                .transpose()?,
            provider: self
                .provider
                .as_ref()
                .map(|p| Provider::new(p.as_str()))
                .transpose()?,
            verdict: self.verdict.as_deref().map(Verdict::parse).transpose()?,
        })
    }
}
