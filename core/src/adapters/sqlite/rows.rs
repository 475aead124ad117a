//! Rows to domain values. Every stored value goes back through the domain's
//! constructors, so a damaged row is reported, never trusted.

use rusqlite::Row;

use super::error::map_err;
use super::schema::ALL_TIME_BUCKET;
use crate::domain::{
    Amount, AuditAction, AuditRecord, Currency, Error, EventId, EventType, IdempotencyKey,
    MatchedKey, Metadata, Money, Provider, ProviderEventId, Result, RollupBucket, StorageError,
    StorageErrorKind, Timestamp, Totals, WalletId, WalletTransactionEvent,
};
use crate::ports::AmountRow;

/// The event columns, in the order `event_from_row` reads them. A macro so
/// that statements are `concat!`ed at compile time, not formatted per call.
macro_rules! event_columns {
    () => {
        "sequence, event_id, wallet_id, provider, event_type, amount, currency, \
         provider_event_id, idempotency_key, metadata, occurred_at, created_at"
    };
}

/// The audit columns, in the order `audit_from_row` reads them.
macro_rules! audit_columns {
    () => {
        "sequence, recorded_at, action, event_id, event_sequence, matched_on, \
         actor, fingerprint, body_sha256, prev_hash, hash"
    };
}

pub(super) fn corrupt(what: &str, detail: &str) -> Error {
    Error::Storage(StorageError::new(
        StorageErrorKind::Corrupt,
        format!("stored {what} is damaged: {detail}"),
    ))
}

fn get<T: rusqlite::types::FromSql>(r: &Row<'_>, i: usize) -> Result<T> {
    r.get(i).map_err(map_err)
}

pub(super) fn hash32(what: &str, bytes: &[u8]) -> Result<[u8; 32]> {
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

pub(super) fn event_from_row(r: &Row<'_>) -> Result<WalletTransactionEvent> {
    let sequence: i64 = get(r, 0)?;
    let what = format!("event {sequence}");
    let bad = |e: crate::domain::ValidationError| corrupt(&what, &e.to_string());
    let id: Vec<u8> = get(r, 1)?;
    let code: u8 = get(r, 4)?;
    Ok(WalletTransactionEvent {
        sequence: sequence as u64,
        event_id: event_id(&what, &id)?,
        wallet_id: WalletId::new(get::<String>(r, 2)?).map_err(bad)?,
        provider: Provider::new(get::<String>(r, 3)?).map_err(bad)?,
        event_type: EventType::from_code(code)
            .ok_or_else(|| corrupt(&what, "unknown event_type"))?,
        amount: Amount::parse(&get::<String>(r, 5)?).map_err(bad)?,
        currency: Currency::new(get::<String>(r, 6)?).map_err(bad)?,
        provider_event_id: get::<Option<String>>(r, 7)?
            .map(ProviderEventId::new)
            .transpose()
            .map_err(bad)?,
        idempotency_key: get::<Option<String>>(r, 8)?
            .map(IdempotencyKey::new)
            .transpose()
            .map_err(bad)?,
        metadata: Metadata::from_stored(get(r, 9)?).map_err(bad)?,
        occurred_at: Timestamp::from_micros("occurred_at", get(r, 10)?).map_err(bad)?,
        created_at: Timestamp::from_micros("created_at", get(r, 11)?).map_err(bad)?,
    })
}

pub(super) fn amount_from_row(r: &Row<'_>) -> Result<AmountRow> {
    let sequence: i64 = get(r, 4)?;
    let what = format!("event {sequence}");
    let bad = |e: crate::domain::ValidationError| corrupt(&what, &e.to_string());
    let code: u8 = get(r, 0)?;
    Ok(AmountRow {
        event_type: EventType::from_code(code)
            .ok_or_else(|| corrupt(&what, "unknown event_type"))?,
        amount: Amount::parse(&get::<String>(r, 1)?).map_err(bad)?,
        currency: Currency::new(get::<String>(r, 2)?).map_err(bad)?,
        occurred_at: Timestamp::from_micros("occurred_at", get(r, 3)?).map_err(bad)?,
    })
}

/// Columns 0..=3: available, held, event_count, last_occurred_at.
pub(super) fn totals_from_row(r: &Row<'_>) -> Result<Totals> {
    let money = |i: usize| -> Result<Money> {
        let text: String = get(r, i)?;
        Money::parse(&text).ok_or_else(|| corrupt("balance", &format!("{text:?} is not a decimal")))
    };
    let count: i64 = get(r, 2)?;
    let last: Option<i64> = get(r, 3)?;
    Ok(Totals {
        available: money(0)?,
        held: money(1)?,
        event_count: u64::try_from(count)
            .map_err(|_| corrupt("balance", "negative event_count"))?,
        last_occurred_at: last
            .map(|m| Timestamp::from_micros("last_occurred_at", m))
            .transpose()
            .map_err(|e| corrupt("balance", &e.to_string()))?,
    })
}

pub(super) fn audit_from_row(r: &Row<'_>) -> Result<AuditRecord> {
    let sequence: i64 = get(r, 0)?;
    let what = format!("audit record {sequence}");
    let action: u8 = get(r, 2)?;
    let id: Vec<u8> = get(r, 3)?;
    let matched: Option<u8> = get(r, 5)?;
    let fingerprint: Vec<u8> = get(r, 7)?;
    let body: Option<Vec<u8>> = get(r, 8)?;
    let prev: Vec<u8> = get(r, 9)?;
    let hash: Vec<u8> = get(r, 10)?;
    Ok(AuditRecord {
        sequence: sequence as u64,
        recorded_at: Timestamp::from_micros("recorded_at", get(r, 1)?)
            .map_err(|e| corrupt(&what, &e.to_string()))?,
        action: AuditAction::from_code(action).ok_or_else(|| corrupt(&what, "unknown action"))?,
        event_id: event_id(&what, &id)?,
        event_sequence: get::<i64>(r, 4)? as u64,
        matched_on: match matched {
            None => None,
            Some(c) => {
                Some(MatchedKey::from_code(c).ok_or_else(|| corrupt(&what, "unknown matched_on"))?)
            }
        },
        actor: get(r, 6)?,
        fingerprint: hash32(&what, &fingerprint)?,
        body_sha256: body.map(|b| hash32(&what, &b)).transpose()?,
        prev_hash: hash32(&what, &prev)?,
        hash: hash32(&what, &hash)?,
    })
}

/// A bucket as the `bucket` column holds it: the hour's start in
/// microseconds, or [`ALL_TIME_BUCKET`].
pub(super) fn bucket_to_column(bucket: RollupBucket) -> i64 {
    match bucket {
        RollupBucket::AllTime => ALL_TIME_BUCKET,
        RollupBucket::Hour { start } => start.as_micros(),
    }
}

pub(super) fn bucket_from_column(value: i64) -> Result<RollupBucket> {
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
