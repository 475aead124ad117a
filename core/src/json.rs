//! walletlog's JSON transport: the one place where events, results and
//! queries become JSON text and back, shared by the C binding and the CLI.
//!
//! Input is strict: an unknown field, a wrong type or an amount written as a
//! JSON number (which a float could have produced) is a validation error that
//! names the field. Output is stable: amounts are decimal strings, times are
//! RFC 3339 UTC, ids are lower-case UUIDs.
//!
//! An event object (input and output):
//!
//! ```json
//! {"event_id": "0191f0c2-...", "wallet_id": "w1", "provider": "stripe",
//!  "event_type": "deposit", "amount": "12.34", "currency": "USD",
//!  "occurred_at": "2026-01-02T03:04:05Z", "provider_event_id": "evt_1",
//!  "idempotency_key": null, "metadata": {"k": "v"},
//!  "created_at": "...", "sequence": 1}
//! ```
//!
//! `event_id`, `provider_event_id`, `idempotency_key` and `metadata` are
//! optional on input. `created_at` and `sequence` are assigned by the ledger:
//! they are accepted and ignored on input, so an exported line imports as it is.

use std::time::Duration;

use serde_json::{json, Map, Value};

use crate::adapters::sqlite::Durability;
use crate::domain::{
    AuditRecord, AuditReport, Balance, Error, EventType, IngestResult, ListQuery, NewEvent, Order,
    Page, RawEvent, Timestamp, ValidationError, WalletId, WalletTransactionEvent,
};
use crate::ledger::Options;
use crate::plugins::{PluginInfo, PluginLimits};

/// Largest JSON text accepted for one event (metadata is at most 16 KiB).
pub const EVENT_JSON_BYTES_MAX: usize = 64 << 10;

/// Parses one event object.
pub fn parse_event(text: &str) -> Result<NewEvent, ValidationError> {
    if text.len() > EVENT_JSON_BYTES_MAX {
        return Err(ValidationError::new(
            "event",
            format!(
                "is {} bytes of JSON; at most {EVENT_JSON_BYTES_MAX} are accepted",
                text.len()
            ),
        ));
    }
    event_from_value(&parse_text("event", text)?)
}

/// Parses a JSON array of event objects; an error carries the item's index.
pub fn parse_events(text: &str) -> Result<Vec<NewEvent>, ValidationError> {
    match parse_text("events", text)? {
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, v)| event_from_value(v).map_err(|e| e.at_index(i)))
            .collect(),
        other => Err(ValidationError::new(
            "events",
            format!(
                "must be a JSON array of event objects, not {}",
                type_name(&other)
            ),
        )),
    }
}

/// Checks one event object field by field.
pub fn event_from_value(value: &Value) -> Result<NewEvent, ValidationError> {
    let Value::Object(map) = value else {
        return Err(ValidationError::new(
            "event",
            format!("must be a JSON object, not {}", type_name(value)),
        ));
    };
    for key in map.keys() {
        if !EVENT_FIELDS.contains(&key.as_str()) {
            return Err(unknown_field("event", key));
        }
    }
    let raw = RawEvent {
        event_id: optional_string(map, "event_id")?,
        wallet_id: required_string(map, "wallet_id")?,
        provider: required_string(map, "provider")?,
        event_type: required_string(map, "event_type")?,
        amount: amount_string(map)?,
        currency: required_string(map, "currency")?,
        provider_event_id: optional_string(map, "provider_event_id")?,
        idempotency_key: optional_string(map, "idempotency_key")?,
        metadata: match map.get("metadata") {
            None | Some(Value::Null) => None,
            Some(v @ Value::Object(_)) => Some(v.to_string()),
            Some(other) => {
                return Err(ValidationError::new(
                    "metadata",
                    format!("must be a JSON object, not {}", type_name(other)),
                ))
            }
        },
        occurred_at: required_string(map, "occurred_at")?,
    };
    raw.validate()
}

const EVENT_FIELDS: [&str; 12] = [
    "event_id",
    "wallet_id",
    "provider",
    "event_type",
    "amount",
    "currency",
    "occurred_at",
    "provider_event_id",
    "idempotency_key",
    "metadata",
    "created_at",
    "sequence",
];

/// Parses the options of a history query (every field optional):
/// `{"limit": 100, "cursor": null, "order": "desc", "event_types": ["deposit"],
///   "since": "2026-01-01T00:00:00Z", "until": null, "currency": "USD"}`.
pub fn parse_list_query(
    wallet_id: WalletId,
    text: Option<&str>,
) -> Result<ListQuery, ValidationError> {
    let mut query = ListQuery::new(wallet_id);
    let Some(text) = text else {
        return Ok(query);
    };
    let value = parse_text("query", text)?;
    let Value::Object(map) = &value else {
        return Err(ValidationError::new(
            "query",
            format!("must be a JSON object, not {}", type_name(&value)),
        ));
    };
    // The cursor is checked against the whole query, so it goes last.
    let mut cursor = None;
    for (key, v) in map {
        if v.is_null() {
            continue;
        }
        query = match key.as_str() {
            "cursor" => {
                cursor = Some(string(v, "cursor")?);
                query
            }
            "limit" => query.limit(unsigned(v, "limit")? as usize)?,
            "order" => query.order(Order::parse(&string(v, "order")?)?),
            "event_types" => {
                let Value::Array(items) = v else {
                    return Err(ValidationError::new(
                        "event_types",
                        format!("must be an array of strings, not {}", type_name(v)),
                    ));
                };
                let types = items
                    .iter()
                    .map(|t| EventType::parse(&string(t, "event_types")?))
                    .collect::<Result<Vec<_>, _>>()?;
                query.event_types(types)?
            }
            "since" => query.since(Timestamp::parse_rfc3339("since", &string(v, "since")?)?)?,
            "until" => query.until(Timestamp::parse_rfc3339("until", &string(v, "until")?)?)?,
            "currency" => query.currency(crate::domain::Currency::new(string(v, "currency")?)?),
            other => {
                return Err(unknown_field("query", other));
            }
        };
    }
    match cursor {
        Some(c) => query.cursor(&c),
        None => Ok(query),
    }
}

/// Parses webhook headers: an object `{"Name": "value"}` or, to keep repeated
/// headers, an array of pairs `[["Name", "value"], ...]`.
pub fn parse_headers(text: &str) -> Result<Vec<(String, String)>, ValidationError> {
    match parse_text("headers", text)? {
        Value::Object(map) => map
            .into_iter()
            .map(|(k, v)| Ok((k, string(&v, "headers")?)))
            .collect(),
        Value::Array(items) => items
            .iter()
            .map(|pair| match pair {
                Value::Array(kv) if kv.len() == 2 => {
                    Ok((string(&kv[0], "headers")?, string(&kv[1], "headers")?))
                }
                _ => Err(ValidationError::new(
                    "headers",
                    "an array of headers must hold [name, value] pairs of strings",
                )),
            })
            .collect(),
        other => Err(ValidationError::new(
            "headers",
            format!(
                "must be an object or an array of pairs, not {}",
                type_name(&other)
            ),
        )),
    }
}

/// Parses ledger options (every field optional):
/// `{"durability": "full" | "normal", "busy_timeout_ms": 30000,
///   "audit_key_hex": "00ff...", "plugin_cache_dir": "/var/cache/walletlog",
///   "plugin_limits": {...}}` (see [`apply_plugin_limits`]).
pub fn parse_options(text: &str) -> Result<Options, ValidationError> {
    let value = parse_text("options", text)?;
    let Value::Object(map) = &value else {
        return Err(ValidationError::new(
            "options",
            format!("must be a JSON object, not {}", type_name(&value)),
        ));
    };
    let mut options = Options::default();
    for (key, v) in map {
        if v.is_null() {
            continue;
        }
        match key.as_str() {
            "durability" => {
                options.durability = match string(v, "durability")?.as_str() {
                    "full" => Durability::Full,
                    "normal" => Durability::Normal,
                    other => {
                        let shown: String = other.chars().take(64).collect();
                        return Err(ValidationError::new(
                            "durability",
                            format!("{shown:?} is not \"full\" or \"normal\""),
                        ));
                    }
                }
            }
            "busy_timeout_ms" => {
                options.busy_timeout = Some(Duration::from_millis(unsigned(v, "busy_timeout_ms")?))
            }
            "audit_key_hex" => {
                let text = string(v, "audit_key_hex")?;
                options.audit_key = Some(unhex(&text).ok_or_else(|| {
                    ValidationError::new(
                        "audit_key_hex",
                        "must be a non-empty, even-length string of hex digits",
                    )
                })?);
            }
            "plugin_cache_dir" => {
                options.plugin_cache_dir = Some(string(v, "plugin_cache_dir")?.into())
            }
            "plugin_limits" => apply_plugin_limits(&mut options.plugin_limits, v)?,
            other => {
                return Err(unknown_field("options", other));
            }
        }
    }
    Ok(options)
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if text.is_empty() || !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Applies `{"fuel_per_call": .., "call_timeout_ms": .., "memory_bytes_max": ..,
/// "stack_bytes_max": .., "request_bytes_max": .., "output_bytes_max": ..,
/// "events_max": .., "instances_max": ..}` (every field optional) over `limits`.
pub fn apply_plugin_limits(
    limits: &mut PluginLimits,
    value: &Value,
) -> Result<(), ValidationError> {
    let Value::Object(map) = value else {
        return Err(ValidationError::new(
            "plugin_limits",
            format!("must be a JSON object, not {}", type_name(value)),
        ));
    };
    for (key, v) in map {
        // The field's name as a `&'static str`, for the error.
        let field = *LIMIT_FIELDS
            .iter()
            .find(|f| **f == key.as_str())
            .ok_or_else(|| unknown_field("plugin_limits", key))?;
        let n = unsigned(v, field)?;
        if n == 0 {
            return Err(ValidationError::new(field, "must be at least 1"));
        }
        let size = usize::try_from(n)
            .map_err(|_| ValidationError::new(field, "is larger than this platform allows"))?;
        match field {
            "fuel_per_call" => limits.fuel_per_call = n,
            "call_timeout_ms" => limits.call_timeout = Duration::from_millis(n),
            "memory_bytes_max" => limits.memory_bytes_max = size,
            "stack_bytes_max" => limits.stack_bytes_max = size,
            "request_bytes_max" => limits.request_bytes_max = size,
            "output_bytes_max" => limits.output_bytes_max = size,
            "events_max" => limits.events_max = size,
            _ => {
                limits.instances_max = u32::try_from(n)
                    .map_err(|_| ValidationError::new(field, "is larger than 4294967295"))?
            }
        }
    }
    Ok(())
}

const LIMIT_FIELDS: [&str; 8] = [
    "fuel_per_call",
    "call_timeout_ms",
    "memory_bytes_max",
    "stack_bytes_max",
    "request_bytes_max",
    "output_bytes_max",
    "events_max",
    "instances_max",
];

/// Plugin limits with the names [`apply_plugin_limits`] reads.
pub fn plugin_limits(l: &PluginLimits) -> Value {
    json!({
        "fuel_per_call": l.fuel_per_call,
        "call_timeout_ms": l.call_timeout.as_millis() as u64,
        "memory_bytes_max": l.memory_bytes_max,
        "stack_bytes_max": l.stack_bytes_max,
        "request_bytes_max": l.request_bytes_max,
        "output_bytes_max": l.output_bytes_max,
        "events_max": l.events_max,
        "instances_max": l.instances_max,
    })
}

/// A stored event.
pub fn event(e: &WalletTransactionEvent) -> Value {
    let metadata: Value =
        serde_json::from_str(e.metadata.as_json()).unwrap_or_else(|_| Value::Object(Map::new()));
    json!({
        "event_id": e.event_id.to_string(),
        "wallet_id": e.wallet_id.as_str(),
        "provider": e.provider.as_str(),
        "event_type": e.event_type.as_str(),
        "amount": e.amount.to_string(),
        "currency": e.currency.as_str(),
        "occurred_at": e.occurred_at.to_string(),
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
///   "first_bad_sequence": null, "reason": null}`.
pub fn audit_report(r: &AuditReport) -> Value {
    json!({
        "ok": r.ok,
        "records_checked": r.records_checked,
        "events_checked": r.events_checked,
        "first_bad_sequence": r.first_bad_sequence(),
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
    })
}

/// `{"provider": "stripe", "version": "1.0.0", "signature": "stripe-v1"}`.
pub fn plugin_info(p: &PluginInfo) -> Value {
    json!({
        "provider": p.provider,
        "version": p.version,
        "signature": p.signature.name(),
    })
}

/// `{"kind": "validation", "message": "...", "field": "amount",
///   "reason": "...", "index": 3}` (`field`, `reason`, `index` when known).
pub fn error(e: &Error) -> Value {
    let mut v = json!({"kind": e.kind().as_str(), "message": e.to_string()});
    match e {
        Error::Validation(ve) => {
            v["field"] = json!(ve.field);
            v["reason"] = json!(ve.reason);
            v["index"] = json!(ve.index);
        }
        Error::Conflict(c) => {
            v["field"] = json!(c.key.as_str());
            v["existing_event_id"] = json!(c.existing_event_id.to_string());
            v["index"] = json!(c.index);
        }
        Error::Plugin(p) => {
            v["reason"] = json!(p.kind.as_str());
        }
        _ => {}
    }
    v
}

/// An object field nobody reads: refused, so that a typo is caught.
fn unknown_field(owner: &'static str, key: &str) -> ValidationError {
    ValidationError::new(
        owner,
        format!("has an unknown field {}", crate::domain::quoted(key)),
    )
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn parse_text(field: &'static str, text: &str) -> Result<Value, ValidationError> {
    serde_json::from_str(text)
        .map_err(|e| ValidationError::new(field, format!("is not valid JSON: {e}")))
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn string(v: &Value, field: &'static str) -> Result<String, ValidationError> {
    match v {
        Value::String(s) => Ok(s.clone()),
        other => Err(ValidationError::new(
            field,
            format!("must be a string, not {}", type_name(other)),
        )),
    }
}

fn unsigned(v: &Value, field: &'static str) -> Result<u64, ValidationError> {
    v.as_u64().ok_or_else(|| {
        ValidationError::new(
            field,
            format!("must be a non-negative integer, not {}", type_name(v)),
        )
    })
}

fn required_string(
    map: &Map<String, Value>,
    field: &'static str,
) -> Result<String, ValidationError> {
    match map.get(field) {
        None | Some(Value::Null) => Err(ValidationError::new(field, "is required")),
        Some(v) => string(v, field),
    }
}

fn optional_string(
    map: &Map<String, Value>,
    field: &'static str,
) -> Result<Option<String>, ValidationError> {
    match map.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => string(v, field).map(Some),
    }
}

fn amount_string(map: &Map<String, Value>) -> Result<String, ValidationError> {
    match map.get("amount") {
        Some(Value::Number(n)) => Err(ValidationError::new(
            "amount",
            format!(
                "must be a decimal string such as \"{n}\", not a JSON number, so that no float can round it"
            ),
        )),
        _ => required_string(map, "amount"),
    }
}
