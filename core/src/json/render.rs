//! Domain values to JSON, each in one stable shape.

use serde_json::{json, Map, Value};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;

use crate::domain::{
    AuditRecord, AuditReport, Balance, Delivery, Error, InboxPage, IngestResult, Page,
    ReplayReport, WalletTransactionEvent,
};
use crate::encoding::hex;
use crate::limits::PluginLimits;
#[cfg(feature = "plugins")]
use crate::plugins::PluginInfo;

/// Plugin limits by name (see [`crate::limits::PLUGIN_LIMIT_FIELDS`]),
/// the names [`parse_options`](super::parse_options) reads.
pub fn plugin_limits(l: &PluginLimits) -> Value {
    Value::Object(l.entries().map(|(k, v)| (k.to_owned(), json!(v))).collect())
}

/// A stored event.
pub fn event(e: &WalletTransactionEvent) -> Value {
    // Metadata holds a JSON object by construction and is re-checked when
    // read from storage. A tampered row that still reads as JSON but holds
    // what a `Value` cannot (a number beyond f64) is shown as its text,
    // never dropped.
    let metadata: Value = serde_json::from_str(e.metadata.as_json())
        .unwrap_or_else(|_| Value::String(e.metadata.as_json().to_owned()));
    json!({
        "event_id": e.event_id.to_string(),
        "wallet_id": e.wallet_id.as_str(),
        "provider": e.provider.as_str(),
        "event_type": e.event_type.as_str(),
        "amount": e.amount.to_string(),
        "currency": e.currency.as_str(),
        "occurred_at": e.occurred_at.to_string(),
        "occurred_at_estimated": e.occurred_at_estimated,
        "provider_event_id": e.provider_event_id.as_ref().map(|k| k.as_str()),
        "idempotency_key": e.idempotency_key.as_ref().map(|k| k.as_str()),
        "metadata": metadata,
        "created_at": e.created_at.to_string(),
        "sequence": e.sequence,
    })
}

/// `{"created": true, "duplicate": false, "matched_on": null, "event": {...}}`.
pub fn ingest_result(r: &IngestResult) -> Value {
    json!({
        "created": r.created(),
        "duplicate": r.duplicate(),
        "matched_on": r.matched_on().map(|k| k.as_str()),
        "event": event(&r.event),
    })
}

/// An array of [`ingest_result`]s.
pub fn ingest_results(results: &[IngestResult]) -> Value {
    Value::Array(results.iter().map(ingest_result).collect())
}

/// `{"events": [...], "next_cursor": "..." | null}`.
pub fn page(p: &Page) -> Value {
    json!({
        "events": p.events.iter().map(event).collect::<Vec<_>>(),
        "next_cursor": p.next_cursor,
    })
}

/// `{"USD": {"available": "1.00", "held": "0", "total": "1.00",
///   "event_count": 2, "last_occurred_at": "..."}}`, one entry per currency.
pub fn balances(balances: &[Balance]) -> Value {
    let mut map = Map::new();
    for b in balances {
        map.insert(
            b.currency.as_str().to_owned(),
            json!({
                "available": b.available.to_string(),
                "held": b.held.to_string(),
                "total": b.total.to_string(),
                "event_count": b.event_count,
                "last_occurred_at": b.last_occurred_at.map(|t| t.to_string()),
            }),
        );
    }
    Value::Object(map)
}

/// `{"ok": true, "records_checked": 3, "events_checked": 2,
///   "first_bad_sequence": null, "first_bad_event_sequence": null,
///   "problem": null, "reason": null}`; `problem` is the stable name of the
/// problem's kind (`chain_broken`, `event_altered`, ...).
pub fn audit_report(r: &AuditReport) -> Value {
    let p = r.first_problem.as_ref();
    json!({
        "ok": r.ok,
        "records_checked": r.records_checked,
        "events_checked": r.events_checked,
        "first_bad_sequence": r.first_bad_sequence(),
        "first_bad_event_sequence": p.and_then(|p| p.event_sequence),
        "problem": p.map(|p| p.kind.as_str()),
        "reason": r.reason(),
    })
}

/// One audit record, hashes in lower-case hex.
pub fn audit_record(r: &AuditRecord) -> Value {
    json!({
        "sequence": r.sequence,
        "recorded_at": r.recorded_at.to_string(),
        "action": r.action.as_str(),
        "event_id": r.event_id.to_string(),
        "event_sequence": r.event_sequence,
        "matched_on": r.matched_on.map(|k| k.as_str()),
        "actor": r.actor,
        "fingerprint": hex(&r.fingerprint),
        "body_sha256": r.body_sha256.as_ref().map(|b| hex(b)),
        "prev_hash": hex(&r.prev_hash),
        "hash": hex(&r.hash),
        "delivery_id": r.delivery_id.map(|d| d.to_string()),
    })
}

/// One inbox entry: a delivery without its body and headers, its latest
/// attempt's verdict, reason, plugin version and events.
pub fn inbox_entry(d: &Delivery) -> Value {
    let latest = d.latest();
    json!({
        "delivery_id": d.delivery_id.to_string(),
        "provider": d.provider.as_str(),
        "received_at": d.received_at.to_string(),
        "verdict": latest.verdict.as_str(),
        "reason": latest.reason,
        "body_sha256": hex(&d.body_sha256),
        "body_bytes": d.body_bytes,
        "plugin_version": latest.plugin_version,
        "event_ids": latest.event_ids.iter().map(|e| e.to_string()).collect::<Vec<_>>(),
        "attempts": d.attempt_count,
    })
}

/// `{"entries": [...], "next_cursor": "..." | null}`.
pub fn inbox_page(p: &InboxPage) -> Value {
    json!({
        "entries": p.deliveries.iter().map(inbox_entry).collect::<Vec<_>>(),
        "next_cursor": p.next_cursor,
    })
}

/// One delivery in full: the entry, then `url`, `headers` as
/// `[[name, value], ...]`, `body_base64` (null once retention dropped the
/// body), `body_text` (the body when it is UTF-8, else null) and every
/// kept attempt, oldest first.
pub fn delivery(d: &Delivery) -> Value {
    let mut v = inbox_entry(d);
    let body_text = d.body.as_deref().and_then(|b| std::str::from_utf8(b).ok());
    v["url"] = json!(d.url);
    v["headers"] = Value::Array(d.headers.iter().map(|(k, v)| json!([k, v])).collect());
    v["body_base64"] = json!(d.body.as_deref().map(|b| BASE64.encode(b)));
    v["body_text"] = json!(body_text);
    v["attempt_history"] = Value::Array(
        d.attempts
            .iter()
            .map(|a| {
                json!({
                    "at": a.at.to_string(),
                    "kind": a.kind.as_str(),
                    "plugin_version": a.plugin_version,
                    "plugin_sha256": hex(&a.plugin_sha256),
                    "verdict": a.verdict.as_str(),
                    "reason": a.reason,
                    "event_ids": a.event_ids.iter().map(|e| e.to_string()).collect::<Vec<_>>(),
                })
            })
            .collect(),
    );
    v
}

/// `{"replayed": 2, "created": 2, "duplicates": 0, "still_failing": 0,
///   "deliveries": [{"delivery_id": "...", "verdict": "ingested"}, ...]}`.
pub fn replay_report(r: &ReplayReport) -> Value {
    json!({
        "replayed": r.replayed,
        "created": r.created,
        "duplicates": r.duplicates,
        "still_failing": r.still_failing,
        "skipped": r.skipped,
        "deliveries": r.outcomes.iter().map(|(id, v)| json!({
            "delivery_id": id.to_string(),
            "verdict": v.as_str(),
        })).collect::<Vec<_>>(),
    })
}

/// `{"provider": "stripe", "version": "1.0.0", "signature": "stripe-v1"}`.
#[cfg(feature = "plugins")]
pub fn plugin_info(p: &PluginInfo) -> Value {
    json!({
        "provider": p.provider,
        "version": p.version,
        "signature": p.signature.name(),
    })
}

/// Every error in one shape, whatever its kind, each key present (null
/// when it does not apply):
///
/// ```json
/// {"kind": "conflict", "code": "different_fields", "message": "...",
///  "field": "provider_event_id", "reason": null, "index": 3,
///  "key": "provider_event_id", "fields": ["amount"],
///  "existing_event_id": "0191f0c2-..."}
/// ```
///
/// `kind` is one of `validation`, `conflict`, `not_found`, `signature`,
/// `plugin`, `storage`; `code` the machine-readable detail within it (see
/// [`Error::code`]); `field` and `reason` name a validation error's field
/// and why; `key`, `fields` and `existing_event_id` describe a conflict.
/// An error that is not the ledger's (a face's own: `usage` in the CLI,
/// `invalid_argument` and `panic` in C) in the same shape as [`error`].
pub fn face_error(kind: &str, message: &str, field: Option<&str>) -> Value {
    json!({
        "kind": kind,
        "code": null,
        "message": message,
        "field": field,
        "reason": null,
        "index": null,
        "key": null,
        "fields": null,
        "existing_event_id": null,
    })
}

pub fn error(e: &Error) -> Value {
    let conflict = match e {
        Error::Conflict(c) => Some(c),
        _ => None,
    };
    json!({
        "kind": e.kind().as_str(),
        "code": e.code(),
        "message": e.to_string(),
        "field": e.field(),
        "reason": e.reason(),
        "index": e.index(),
        "key": conflict.map(|c| c.key.as_str()),
        "fields": conflict.map(|c| c.fields()),
        "existing_event_id": conflict.map(|c| c.existing_event_id.to_string()),
    })
}
