//! JSON text to the domain's raw inputs, then their one `validate`.

use serde_json::{Map, Value};

use crate::config::{Options, RawAuditKey, RawOptions};
use crate::domain::{
    InboxQuery, NewEvent, RawEvent, RawInboxQuery, RawListQuery, RawReplaySelection, RawTime,
    ReplaySelection, ValidationError, WalletId,
};
use crate::encoding::quoted;
use crate::limits::{EVENT_JSON_BYTES_MAX, KEY_CHARS_MAX};

/// One event's JSON is at most [`EVENT_JSON_BYTES_MAX`] bytes.
fn check_event_size(field: &'static str, bytes: usize) -> Result<(), ValidationError> {
    if bytes > EVENT_JSON_BYTES_MAX {
        return Err(ValidationError::new(
            field,
            format!("is {bytes} bytes of JSON; at most {EVENT_JSON_BYTES_MAX} are accepted"),
        ));
    }
    Ok(())
}

/// Parses one event object.
pub fn parse_event(text: &str) -> Result<NewEvent, ValidationError> {
    check_event_size("event", text.len())?;
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

/// Parses an HTTP ingest's event object, whose wallet and idempotency key
/// come beside it (the route's path and the `Idempotency-Key` header,
/// already prefixed by `key_prefix`, the caller's namespace). The object
/// may name `wallet_id` too when it is the path's, and `idempotency_key`
/// when no header gives another (it is namespaced the same way).
/// `fallback_event_id` is the event's id when the object names neither an
/// `event_id` nor a `provider_event_id`.
pub fn parse_event_for(
    body: &[u8],
    wallet_id: &str,
    idempotency_key: Option<&str>,
    key_prefix: &str,
    fallback_event_id: Option<&str>,
) -> Result<NewEvent, ValidationError> {
    check_event_size("body", body.len())?;
    let value = parse_strict("body", body)?;
    let Value::Object(mut map) = value else {
        return Err(ValidationError::new(
            "body",
            format!("must be a JSON object, not {}", type_name(&value)),
        ));
    };
    for key in map.keys() {
        if !EVENT_FIELDS[..10].contains(&key.as_str()) {
            return Err(unknown_field("body", key));
        }
    }
    match map.get("wallet_id") {
        None | Some(Value::Null) => {}
        Some(Value::String(w)) if w == wallet_id => {}
        Some(Value::String(w)) => {
            return Err(ValidationError::new(
                "wallet_id",
                format!(
                    "is {} in the body but {} in the path; leave it out or give the same",
                    quoted(w),
                    quoted(wallet_id)
                ),
            ))
        }
        Some(other) => {
            return Err(ValidationError::new(
                "wallet_id",
                format!("must be a string, not {}", type_name(other)),
            ))
        }
    }
    map.insert("wallet_id".into(), Value::String(wallet_id.to_owned()));
    let key = match (idempotency_key, map.remove("idempotency_key")) {
        (header, None | Some(Value::Null)) => header.map(str::to_owned),
        (header, Some(Value::String(own))) => {
            let room = KEY_CHARS_MAX.saturating_sub(key_prefix.chars().count());
            let length = own.chars().count();
            if length > room {
                return Err(ValidationError::new(
                    "idempotency_key",
                    format!("is {length} characters long; at most {room} allowed for this key"),
                ));
            }
            // Empty stays empty, for the field's own refusal.
            let namespaced = if own.is_empty() {
                own
            } else {
                format!("{key_prefix}{own}")
            };
            match header {
                // An empty header is refused as such, not as a mismatch.
                Some("") => Some(String::new()),
                Some(h) if h != namespaced => {
                    return Err(ValidationError::new(
                        "idempotency_key",
                        "differs from the Idempotency-Key header; give the key once",
                    ))
                }
                _ => Some(namespaced),
            }
        }
        (_, Some(other)) => {
            return Err(ValidationError::new(
                "idempotency_key",
                format!("must be a string, not {}", type_name(&other)),
            ))
        }
    };
    if let Some(k) = key {
        map.insert("idempotency_key".into(), Value::String(k));
    }
    let unnamed = |key: &str| map.get(key).is_none_or(Value::is_null);
    if let Some(id) = fallback_event_id {
        if unnamed("event_id") && unnamed("provider_event_id") {
            map.insert("event_id".into(), Value::String(id.to_owned()));
        }
    }
    event_from_value(&Value::Object(map))
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
        occurred_at_estimated: match map.get("occurred_at_estimated") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(other) => {
                return Err(ValidationError::new(
                    "occurred_at_estimated",
                    format!("must be true or false, not {}", type_name(other)),
                ))
            }
        },
    };
    raw.validate()
}

const EVENT_FIELDS: [&str; 13] = [
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
    "occurred_at_estimated",
];

/// Parses the options of a history query (every field optional):
/// `{"limit": 100, "cursor": null, "order": "desc", "event_types": ["deposit"],
///   "since": "2026-01-01T00:00:00Z", "until": null, "currency": "USD"}`.
pub fn parse_list_query(
    wallet_id: WalletId,
    text: Option<&str>,
) -> Result<crate::domain::ListQuery, ValidationError> {
    let mut raw = RawListQuery {
        wallet_id: wallet_id.as_str().to_owned(),
        ..RawListQuery::default()
    };
    if let Some(text) = text {
        let value = parse_text("query", text)?;
        let map = object("query", &value)?;
        for (key, v) in map {
            if v.is_null() {
                continue;
            }
            match key.as_str() {
                "cursor" => raw.cursor = Some(string(v, "cursor")?),
                "limit" => raw.limit = Some(integer(v, "limit")?),
                "order" => raw.order = Some(string(v, "order")?),
                "event_types" => {
                    let Value::Array(items) = v else {
                        return Err(ValidationError::new(
                            "event_types",
                            format!("must be an array of strings, not {}", type_name(v)),
                        ));
                    };
                    raw.event_types = Some(
                        items
                            .iter()
                            .map(|t| string(t, "event_types"))
                            .collect::<Result<_, _>>()?,
                    );
                }
                "since" => raw.since = Some(RawTime::Rfc3339(string(v, "since")?)),
                "until" => raw.until = Some(RawTime::Rfc3339(string(v, "until")?)),
                "currency" => raw.currency = Some(string(v, "currency")?),
                other => return Err(unknown_field("query", other)),
            }
        }
    }
    raw.validate()
}

/// Parses an inbox query: NULL/`None` or `{"provider": "stripe",
/// "verdict": "unsupported", "since": "RFC 3339" (inclusive), "until":
/// "RFC 3339" (exclusive), "limit": 1..=1000, "order": "asc"|"desc",
/// "cursor": "..."}`.
pub fn parse_inbox_query(text: Option<&str>) -> Result<InboxQuery, ValidationError> {
    let mut raw = RawInboxQuery::default();
    if let Some(text) = text {
        let value = parse_text("query", text)?;
        for (key, v) in object("query", &value)? {
            if v.is_null() {
                continue;
            }
            match key.as_str() {
                "provider" => raw.provider = Some(string(v, "provider")?),
                "verdict" => raw.verdict = Some(string(v, "verdict")?),
                "since" => raw.since = Some(RawTime::Rfc3339(string(v, "since")?)),
                "until" => raw.until = Some(RawTime::Rfc3339(string(v, "until")?)),
                "limit" => raw.limit = Some(integer(v, "limit")?),
                "order" => raw.order = Some(string(v, "order")?),
                "cursor" => raw.cursor = Some(string(v, "cursor")?),
                other => return Err(unknown_field("query", other)),
            }
        }
    }
    raw.validate()
}

/// Parses a replay selection: `{"delivery_ids": ["..."]}` or
/// `{"provider": "stripe", "verdict": "unsupported"}` (either or both).
pub fn parse_replay_selection(text: &str) -> Result<ReplaySelection, ValidationError> {
    let mut raw = RawReplaySelection::default();
    let value = parse_text("selection", text)?;
    for (key, v) in object("selection", &value)? {
        if v.is_null() {
            continue;
        }
        match key.as_str() {
            "delivery_ids" => {
                let Value::Array(items) = v else {
                    return Err(ValidationError::new(
                        "delivery_ids",
                        format!("must be an array of strings, not {}", type_name(v)),
                    ));
                };
                raw.delivery_ids = Some(
                    items
                        .iter()
                        .map(|t| string(t, "delivery_ids"))
                        .collect::<Result<_, _>>()?,
                );
            }
            "provider" => raw.provider = Some(string(v, "provider")?),
            "verdict" => raw.verdict = Some(string(v, "verdict")?),
            other => return Err(unknown_field("selection", other)),
        }
    }
    raw.validate()
}

/// Parses a JSON array of checkpoint texts.
pub fn parse_checkpoints(text: &str) -> Result<Vec<String>, ValidationError> {
    match parse_text("checkpoints", text)? {
        Value::Array(items) => items.iter().map(|v| string(v, "checkpoints")).collect(),
        other => Err(ValidationError::new(
            "checkpoints",
            format!("must be an array of strings, not {}", type_name(&other)),
        )),
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
///   "pool_size": 8, "pool_timeout_ms": 30000, "group_max_events": 1000, "group_max_wait_us": 500,
///   "audit_key_hex": "00ff...", "plugin_cache_dir": "/var/cache/walletlog",
///   "plugin_limits": {"fuel_per_call": 50000000, ...},
///   "inbox_limits": {"retention_s": 7776000, ...}}` (the limits by the
/// names of [`crate::limits::PLUGIN_LIMIT_FIELDS`] and
/// [`crate::limits::INBOX_LIMIT_NAMES`]).
pub fn parse_options(text: &str) -> Result<Options, ValidationError> {
    let value = parse_text("options", text)?;
    let map = object("options", &value)?;
    let mut raw = RawOptions::default();
    for (key, v) in map {
        if v.is_null() {
            continue;
        }
        match key.as_str() {
            "durability" => raw.durability = Some(string(v, "durability")?),
            "busy_timeout_ms" => raw.busy_timeout_ms = Some(unsigned(v, "busy_timeout_ms")?),
            "pool_size" => raw.pool_size = Some(unsigned(v, "pool_size")?),
            "pool_timeout_ms" => raw.pool_timeout_ms = Some(unsigned(v, "pool_timeout_ms")?),
            "group_max_events" => raw.group_max_events = Some(unsigned(v, "group_max_events")?),
            "group_max_wait_us" => raw.group_max_wait_us = Some(unsigned(v, "group_max_wait_us")?),
            "audit_key_hex" => {
                raw.audit_key = Some(RawAuditKey::Hex(string(v, "audit_key_hex")?));
            }
            "plugin_cache_dir" => raw.plugin_cache_dir = Some(string(v, "plugin_cache_dir")?),
            "plugin_limits" => {
                for (name, n) in object("plugin_limits", v)? {
                    let field = crate::limits::PLUGIN_LIMIT_FIELDS
                        .iter()
                        .find(|f| f.name == name.as_str())
                        .map_or("plugin_limits", |f| f.name);
                    raw.plugin_limits.push((name.clone(), unsigned(n, field)?));
                }
            }
            "inbox_limits" => {
                for (name, n) in object("inbox_limits", v)? {
                    let field = crate::limits::INBOX_LIMIT_NAMES
                        .into_iter()
                        .find(|f| *f == name.as_str())
                        .unwrap_or("inbox_limits");
                    raw.inbox_limits.push((name.clone(), unsigned(n, field)?));
                }
            }
            other => return Err(unknown_field("options", other)),
        }
    }
    raw.validate()
}

fn object<'v>(
    field: &'static str,
    value: &'v Value,
) -> Result<&'v Map<String, Value>, ValidationError> {
    match value {
        Value::Object(map) => Ok(map),
        other => Err(ValidationError::new(
            field,
            format!("must be a JSON object, not {}", type_name(other)),
        )),
    }
}

fn integer(v: &Value, field: &'static str) -> Result<i64, ValidationError> {
    v.as_i64().ok_or_else(|| {
        ValidationError::new(field, format!("must be an integer, not {}", type_name(v)))
    })
}

/// An object field nobody reads: refused, so that a typo is caught.
fn unknown_field(owner: &'static str, key: &str) -> ValidationError {
    ValidationError::new(owner, format!("has an unknown field {}", quoted(key)))
}

fn parse_text(field: &'static str, text: &str) -> Result<Value, ValidationError> {
    parse_strict(field, text.as_bytes())
}

/// Strict JSON (each key once in an object, [`crate::encoding::strict_json`]).
/// A refusal inside an event's field names the field: a key given twice
/// in `metadata` is an invalid `metadata`, not an invalid `event` (but a
/// document cut short is an invalid `event`, wherever it stops).
fn parse_strict(field: &'static str, bytes: &[u8]) -> Result<Value, ValidationError> {
    crate::encoding::strict_json_keys(bytes).map_err(|(e, keys)| {
        // A document that ends too soon is the document's fault.
        let truncated = e.classify() == serde_json::error::Category::Eof;
        let inside = match field {
            "event" | "events" | "body" if !truncated => keys
                .first()
                .and_then(|k| EVENT_FIELDS.iter().find(|f| **f == k.as_str())),
            _ => None,
        };
        ValidationError::new(
            inside.copied().unwrap_or(field),
            crate::encoding::json_refusal(&e),
        )
    })
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
                "must be a decimal string such as \"{n}\", not a JSON number, \
                 so that no float can round it"
            ),
        )),
        _ => required_string(map, "amount"),
    }
}
