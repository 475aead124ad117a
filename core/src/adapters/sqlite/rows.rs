//! SQLite rows into the shared stored-row structs (`adapters::stored`),
//! which turn them into domain values.

use rusqlite::Row;

use super::error::map_err;
use crate::adapters::stored::{
    StoredAmount, StoredAudit, StoredDelivery, StoredEvent, StoredTotals,
};
use crate::domain::{
    AuditRecord, Currency, Delivery, Result, RollupRow, Totals, WalletTransactionEvent,
};
use crate::ports::AmountRow;

/// The event columns, in the order `event_from_row` reads them. A macro so
/// that statements are `concat!`ed at compile time, not formatted per call.
macro_rules! event_columns {
    () => {
        "sequence, event_id, wallet_id, provider, event_type, amount, currency, \
         provider_event_id, idempotency_key, metadata, occurred_at, created_at, \
         occurred_at_estimated"
    };
}

/// The audit columns, in the order `audit_from_row` reads them.
macro_rules! audit_columns {
    () => {
        "sequence, recorded_at, action, event_id, event_sequence, matched_on, \
         actor, fingerprint, body_sha256, prev_hash, hash, delivery_id"
    };
}

/// The delivery columns, in the order `delivery_from_row` reads them
/// (`body` last, left out of listings).
macro_rules! delivery_columns {
    () => {
        "sequence, delivery_id, provider, received_at, url, headers, body_sha256, \
         body_bytes, attempt_count, attempts"
    };
}

fn get<T: rusqlite::types::FromSql>(r: &Row<'_>, i: usize) -> Result<T> {
    r.get(i).map_err(map_err)
}

pub(super) fn event_from_row(r: &Row<'_>) -> Result<WalletTransactionEvent> {
    StoredEvent {
        sequence: get(r, 0)?,
        event_id: get(r, 1)?,
        wallet_id: get(r, 2)?,
        provider: get(r, 3)?,
        event_type: get(r, 4)?,
        amount: get(r, 5)?,
        currency: get(r, 6)?,
        provider_event_id: get(r, 7)?,
        idempotency_key: get(r, 8)?,
        metadata: get(r, 9)?,
        occurred_at: get(r, 10)?,
        created_at: get(r, 11)?,
        occurred_at_estimated: get(r, 12)?,
    }
    .into_event()
}

/// Columns: event_type, amount, currency, occurred_at, sequence.
pub(super) fn amount_from_row(r: &Row<'_>) -> Result<AmountRow> {
    StoredAmount {
        event_type: get(r, 0)?,
        amount: get(r, 1)?,
        currency: get(r, 2)?,
        occurred_at: get(r, 3)?,
        sequence: get(r, 4)?,
    }
    .into_row()
}

/// Columns 0..=3: available, held, event_count, last_occurred_at.
fn stored_totals(r: &Row<'_>) -> Result<StoredTotals> {
    Ok(StoredTotals {
        available: get(r, 0)?,
        held: get(r, 1)?,
        event_count: get(r, 2)?,
        last_occurred_at: get(r, 3)?,
    })
}

pub(super) fn totals_from_row(r: &Row<'_>) -> Result<Totals> {
    stored_totals(r)?.into_totals()
}

/// Columns 0..=3 as in `totals_from_row`, then currency.
pub(super) fn currency_totals(r: &Row<'_>) -> Result<(Currency, Totals)> {
    stored_totals(r)?.with_currency(get(r, 4)?)
}

/// Columns 0..=4 as in `currency_totals`, then wallet_id, bucket.
pub(super) fn rollup_from_row(r: &Row<'_>) -> Result<RollupRow> {
    stored_totals(r)?.into_row(get(r, 5)?, get(r, 4)?, get(r, 6)?)
}

pub(super) fn audit_from_row(r: &Row<'_>) -> Result<AuditRecord> {
    StoredAudit {
        sequence: get(r, 0)?,
        recorded_at: get(r, 1)?,
        action: get(r, 2)?,
        event_id: get(r, 3)?,
        event_sequence: get(r, 4)?,
        matched_on: get(r, 5)?,
        actor: get(r, 6)?,
        fingerprint: get(r, 7)?,
        body_sha256: get(r, 8)?,
        prev_hash: get(r, 9)?,
        hash: get(r, 10)?,
        delivery_id: get(r, 11)?,
    }
    .into_record()
}

/// The `delivery_columns!`, then `body` when `with_body`.
pub(super) fn delivery_from_row(r: &Row<'_>, with_body: bool) -> Result<Delivery> {
    StoredDelivery {
        sequence: get(r, 0)?,
        delivery_id: get(r, 1)?,
        provider: get(r, 2)?,
        received_at: get(r, 3)?,
        url: get(r, 4)?,
        headers: get(r, 5)?,
        body_sha256: get(r, 6)?,
        body_bytes: get(r, 7)?,
        attempt_count: get(r, 8)?,
        attempts: get(r, 9)?,
        body: if with_body { get(r, 10)? } else { None },
    }
    .into_delivery()
}
