//! Stored columns back to domain values, for every SQL engine.
//!
//! An engine reads a row's columns into one of these plain structs, in its
//! own column types; the conversion to a domain value happens here, once,
//! through the domain's constructors. A damaged row is reported as a
//! `corrupt` storage error naming what it belongs to, never trusted.

use crate::domain::{
    Amount, AttemptKind, AuditAction, AuditRecord, Currency, Delivery, DeliveryAttempt, DeliveryId,
    Error, EventId, EventType, IdempotencyKey, MatchedKey, Metadata, Money, Provider,
    ProviderEventId, Result, RollupBucket, RollupKey, RollupRow, StorageError, StorageErrorKind,
    Timestamp, Totals, ValidationError, Verdict, WalletId, WalletTransactionEvent,
};
use crate::encoding::{hex, unhex};
use crate::ports::AmountRow;
use serde_json::Value;

/// The `bucket` column of the all-time rollup rows. Hour rows hold the
/// hour's start in microseconds, which is always smaller.
pub(crate) const ALL_TIME_BUCKET: i64 = i64::MAX;

pub(crate) fn corrupt(what: &str, detail: &str) -> Error {
    Error::Storage(StorageError::new(
        StorageErrorKind::Corrupt,
        format!("stored {what} is damaged: {detail}"),
    ))
}

pub(crate) fn hash32(what: &str, bytes: &[u8]) -> Result<[u8; 32]> {
    bytes
        .try_into()
        .map_err(|_| corrupt(what, &format!("{} bytes where 32 belong", bytes.len())))
}

fn event_id(what: &str, bytes: &[u8]) -> Result<EventId> {
    let b: [u8; 16] = bytes
        .try_into()
        .map_err(|_| corrupt(what, "event_id is not 16 bytes"))?;
    Ok(EventId::from_bytes(b))
}

fn delivery_id(what: &str, bytes: &[u8]) -> Result<DeliveryId> {
    let b: [u8; 16] = bytes
        .try_into()
        .map_err(|_| corrupt(what, "delivery_id is not 16 bytes"))?;
    Ok(DeliveryId::from_bytes(b))
}

fn event_type(what: &str, code: i64) -> Result<EventType> {
    u8::try_from(code)
        .ok()
        .and_then(EventType::from_code)
        .ok_or_else(|| corrupt(what, "unknown event_type"))
}

/// The columns of one stored event.
pub(crate) struct StoredEvent {
    pub sequence: i64,
    pub event_id: Vec<u8>,
    pub wallet_id: String,
    pub provider: String,
    pub event_type: i64,
    pub amount: String,
    pub currency: String,
    pub provider_event_id: Option<String>,
    pub idempotency_key: Option<String>,
    pub metadata: String,
    pub occurred_at: i64,
    pub created_at: i64,
    pub occurred_at_estimated: bool,
}

impl StoredEvent {
    pub(crate) fn into_event(self) -> Result<WalletTransactionEvent> {
        let what = format!("event {}", self.sequence);
        let bad = |e: ValidationError| corrupt(&what, &e.to_string());
        Ok(WalletTransactionEvent {
            sequence: u64::try_from(self.sequence)
                .map_err(|_| corrupt(&what, "negative sequence"))?,
            event_id: event_id(&what, &self.event_id)?,
            wallet_id: WalletId::new(self.wallet_id).map_err(bad)?,
            provider: Provider::new(self.provider).map_err(bad)?,
            event_type: event_type(&what, self.event_type)?,
            amount: Amount::parse(&self.amount).map_err(bad)?,
            currency: Currency::new(self.currency).map_err(bad)?,
            provider_event_id: self
                .provider_event_id
                .map(ProviderEventId::new)
                .transpose()
                .map_err(bad)?,
            idempotency_key: self
                .idempotency_key
                .map(IdempotencyKey::new)
                .transpose()
                .map_err(bad)?,
            metadata: Metadata::from_stored(self.metadata).map_err(bad)?,
            occurred_at: Timestamp::from_micros("occurred_at", self.occurred_at).map_err(bad)?,
            occurred_at_estimated: self.occurred_at_estimated,
            created_at: Timestamp::from_micros("created_at", self.created_at).map_err(bad)?,
        })
    }
}

/// The money columns of one stored event.
pub(crate) struct StoredAmount {
    pub sequence: i64,
    pub event_type: i64,
    pub amount: String,
    pub currency: String,
    pub occurred_at: i64,
}

impl StoredAmount {
    pub(crate) fn into_row(self) -> Result<AmountRow> {
        let what = format!("event {}", self.sequence);
        let bad = |e: ValidationError| corrupt(&what, &e.to_string());
        Ok(AmountRow {
            event_type: event_type(&what, self.event_type)?,
            amount: Amount::parse(&self.amount).map_err(bad)?,
            currency: Currency::new(self.currency).map_err(bad)?,
            occurred_at: Timestamp::from_micros("occurred_at", self.occurred_at).map_err(bad)?,
        })
    }
}

/// The sums of one rollup row.
pub(crate) struct StoredTotals {
    pub available: String,
    pub held: String,
    pub event_count: i64,
    pub last_occurred_at: Option<i64>,
}

impl StoredTotals {
    pub(crate) fn into_totals(self) -> Result<Totals> {
        let money = |text: &str| -> Result<Money> {
            Money::parse(text)
                .ok_or_else(|| corrupt("balance", &format!("{text:?} is not a decimal")))
        };
        Ok(Totals {
            available: money(&self.available)?,
            held: money(&self.held)?,
            event_count: u64::try_from(self.event_count)
                .map_err(|_| corrupt("balance", "negative event_count"))?,
            last_occurred_at: self
                .last_occurred_at
                .map(|m| Timestamp::from_micros("last_occurred_at", m))
                .transpose()
                .map_err(|e| corrupt("balance", &e.to_string()))?,
        })
    }

    /// The sums with the currency of their row.
    pub(crate) fn with_currency(self, currency: String) -> Result<(Currency, Totals)> {
        let totals = self.into_totals()?;
        let currency = Currency::new(currency).map_err(|e| corrupt("rollup", &e.to_string()))?;
        Ok((currency, totals))
    }

    /// A whole rollup row.
    pub(crate) fn into_row(
        self,
        wallet: String,
        currency: String,
        bucket: i64,
    ) -> Result<RollupRow> {
        let (currency, totals) = self.with_currency(currency)?;
        let wallet_id = WalletId::new(wallet).map_err(|e| corrupt("rollup", &e.to_string()))?;
        Ok(RollupRow {
            key: RollupKey {
                wallet_id,
                currency,
                bucket: bucket_from_column(bucket)?,
            },
            totals,
        })
    }
}

/// The columns of one audit record.
pub(crate) struct StoredAudit {
    pub sequence: i64,
    pub recorded_at: i64,
    pub action: i64,
    pub event_id: Vec<u8>,
    pub event_sequence: i64,
    pub matched_on: Option<i64>,
    pub actor: String,
    pub fingerprint: Vec<u8>,
    pub body_sha256: Option<Vec<u8>>,
    pub delivery_id: Option<Vec<u8>>,
    pub prev_hash: Vec<u8>,
    pub hash: Vec<u8>,
}

impl StoredAudit {
    pub(crate) fn into_record(self) -> Result<AuditRecord> {
        let what = format!("audit record {}", self.sequence);
        let code = |c: i64| u8::try_from(c).ok();
        Ok(AuditRecord {
            sequence: u64::try_from(self.sequence)
                .map_err(|_| corrupt(&what, "negative sequence"))?,
            recorded_at: Timestamp::from_micros("recorded_at", self.recorded_at)
                .map_err(|e| corrupt(&what, &e.to_string()))?,
            action: code(self.action)
                .and_then(AuditAction::from_code)
                .ok_or_else(|| corrupt(&what, "unknown action"))?,
            event_id: event_id(&what, &self.event_id)?,
            event_sequence: u64::try_from(self.event_sequence)
                .map_err(|_| corrupt(&what, "negative event_sequence"))?,
            matched_on: match self.matched_on {
                None => None,
                Some(c) => Some(
                    code(c)
                        .and_then(MatchedKey::from_code)
                        .ok_or_else(|| corrupt(&what, "unknown matched_on"))?,
                ),
            },
            actor: self.actor,
            fingerprint: hash32(&what, &self.fingerprint)?,
            body_sha256: self.body_sha256.map(|b| hash32(&what, &b)).transpose()?,
            delivery_id: self
                .delivery_id
                .map(|b| delivery_id(&what, &b))
                .transpose()?,
            prev_hash: hash32(&what, &self.prev_hash)?,
            hash: hash32(&what, &self.hash)?,
        })
    }
}

/// The columns of one inbox delivery.
pub(crate) struct StoredDelivery {
    pub sequence: i64,
    pub delivery_id: Vec<u8>,
    pub provider: String,
    pub received_at: i64,
    pub url: Option<String>,
    pub headers: String,
    pub body: Option<Vec<u8>>,
    pub body_sha256: Vec<u8>,
    pub body_bytes: i64,
    pub attempt_count: i64,
    pub attempts: String,
}

impl StoredDelivery {
    /// The columns of `d`, with its verdict's code and latest attempt time
    /// (the columns listings filter on and retention reads).
    pub(crate) fn of(d: &Delivery) -> (StoredDelivery, i64, i64) {
        let row = StoredDelivery {
            sequence: d.sequence as i64,
            delivery_id: d.delivery_id.as_bytes().to_vec(),
            provider: d.provider.as_str().to_owned(),
            received_at: d.received_at.as_micros(),
            url: d.url.clone(),
            headers: headers_json(d),
            body: d.body.clone(),
            body_sha256: d.body_sha256.to_vec(),
            body_bytes: d.body_bytes as i64,
            attempt_count: d.attempt_count as i64,
            attempts: attempts_json(d),
        };
        (
            row,
            i64::from(d.verdict().code()),
            d.latest().at.as_micros(),
        )
    }

    pub(crate) fn into_delivery(self) -> Result<Delivery> {
        let what = format!("delivery {}", self.sequence);
        let bad = |e: String| corrupt(&what, &e);
        Ok(Delivery {
            sequence: u64::try_from(self.sequence)
                .map_err(|_| corrupt(&what, "negative sequence"))?,
            delivery_id: delivery_id(&what, &self.delivery_id)?,
            provider: Provider::new(self.provider).map_err(|e| bad(e.to_string()))?,
            received_at: Timestamp::from_micros("received_at", self.received_at)
                .map_err(|e| bad(e.to_string()))?,
            url: self.url,
            headers: headers_from_json(&self.headers).map_err(bad)?,
            body: self.body,
            body_sha256: hash32(&what, &self.body_sha256)?,
            body_bytes: u64::try_from(self.body_bytes)
                .map_err(|_| corrupt(&what, "negative body_bytes"))?,
            attempt_count: u64::try_from(self.attempt_count)
                .map_err(|_| corrupt(&what, "negative attempt_count"))?,
            attempts: attempts_from_json(&self.attempts).map_err(bad)?,
        })
    }
}

/// The last delivery's sequence and receipt time, as stored.
pub(crate) fn last_delivery_of(sequence: i64, received_at: i64) -> Result<(u64, Timestamp)> {
    let what = format!("delivery {sequence}");
    let sequence = u64::try_from(sequence).map_err(|_| corrupt(&what, "negative sequence"))?;
    let at = Timestamp::from_micros("received_at", received_at)
        .map_err(|e| corrupt(&what, &e.to_string()))?;
    Ok((sequence, at))
}

// A delivery's headers and attempts are stored as JSON text.

/// The headers as the stored JSON text: `[[name, value], ...]`.
pub(crate) fn headers_json(d: &Delivery) -> String {
    // A pair serializes as a two-element array; written straight to text.
    serde_json::to_string(&d.headers).expect("strings always serialize")
}

pub(crate) fn headers_from_json(text: &str) -> Result<Vec<(String, String)>, String> {
    let value: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let pair = |v: &Value| -> Option<(String, String)> {
        let a = v.as_array().filter(|a| a.len() == 2)?;
        Some((a[0].as_str()?.to_owned(), a[1].as_str()?.to_owned()))
    };
    value
        .as_array()
        .ok_or("headers are not a list")?
        .iter()
        .map(|v| pair(v).ok_or_else(|| "a header is not a [name, value] pair".to_owned()))
        .collect()
}

/// One attempt as stored: borrowed from the delivery, written straight to
/// text (no intermediate JSON tree: this runs for every webhook).
#[derive(serde::Serialize)]
struct AttemptText<'a> {
    at: i64,
    kind: &'static str,
    plugin_version: &'a str,
    plugin_sha256: String,
    verdict: &'static str,
    reason: Option<&'a str>,
    event_ids: Vec<String>,
}

/// The attempts as the stored JSON text.
pub(crate) fn attempts_json(d: &Delivery) -> String {
    let attempts: Vec<AttemptText<'_>> = d
        .attempts
        .iter()
        .map(|a| AttemptText {
            at: a.at.as_micros(),
            kind: a.kind.as_str(),
            plugin_version: &a.plugin_version,
            plugin_sha256: hex(&a.plugin_sha256),
            verdict: a.verdict.as_str(),
            reason: a.reason.as_deref(),
            event_ids: a.event_ids.iter().map(|e| e.to_string()).collect(),
        })
        .collect();
    serde_json::to_string(&attempts).expect("attempts always serialize")
}

pub(crate) fn attempts_from_json(text: &str) -> Result<Vec<DeliveryAttempt>, String> {
    let value: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let list = value.as_array().ok_or("attempts are not a list")?;
    let one = |v: &Value| -> Option<DeliveryAttempt> {
        let kind = match v.get("kind")?.as_str()? {
            "receipt" => AttemptKind::Receipt,
            "replay" => AttemptKind::Replay,
            _ => return None,
        };
        let sha: [u8; 32] = unhex(v.get("plugin_sha256")?.as_str()?)?.try_into().ok()?;
        let ids = v.get("event_ids")?.as_array()?;
        Some(DeliveryAttempt {
            at: Timestamp::from_micros("at", v.get("at")?.as_i64()?).ok()?,
            kind,
            plugin_version: v.get("plugin_version")?.as_str()?.to_owned(),
            plugin_sha256: sha,
            verdict: Verdict::parse(v.get("verdict")?.as_str()?).ok()?,
            reason: match v.get("reason")? {
                Value::Null => None,
                r => Some(r.as_str()?.to_owned()),
            },
            event_ids: ids
                .iter()
                .map(|i| EventId::parse(i.as_str()?).ok())
                .collect::<Option<_>>()?,
        })
    };
    let attempts = list
        .iter()
        .map(|v| one(v).ok_or_else(|| "an attempt is malformed".to_owned()))
        .collect::<Result<Vec<_>, _>>()?;
    if attempts.is_empty() {
        return Err("no attempts".to_owned());
    }
    Ok(attempts)
}

/// A bucket as the `bucket` column holds it: the hour's start in
/// microseconds, or [`ALL_TIME_BUCKET`].
pub(crate) fn bucket_to_column(bucket: RollupBucket) -> i64 {
    match bucket {
        RollupBucket::AllTime => ALL_TIME_BUCKET,
        RollupBucket::Hour { start } => start.as_micros(),
    }
}

pub(crate) fn bucket_from_column(value: i64) -> Result<RollupBucket> {
    if value == ALL_TIME_BUCKET {
        return Ok(RollupBucket::AllTime);
    }
    let start =
        Timestamp::from_micros("bucket", value).map_err(|e| corrupt("rollup", &e.to_string()))?;
    if RollupBucket::hour_start(start) != start {
        return Err(corrupt("rollup", "its bucket does not start an hour"));
    }
    Ok(RollupBucket::Hour { start })
}
