//! walletlog's own event JSON, signed with Standard Webhooks: for providers
//! that adopt walletlog's format directly.
//!
//! The body is one event, or `{"events": [...]}` with up to 256 of them:
//!
//! ```json
//! {"wallet_id": "w1", "event_type": "deposit", "amount": "12.34", "currency": "USD",
//!  "provider_event_id": "evt_1", "occurred_at": "2026-01-02T03:04:05Z", "metadata": {"k": "v"}}
//! ```
//!
//! `amount` must be a JSON string (a JSON number could be a float). A lone
//! event without `provider_event_id` takes the `webhook-id` header, which
//! Standard Webhooks keeps stable across retries.

use walletlog_plugin::serde_json::Value;
use walletlog_plugin::{
    opt_str, str_field, to_utc_rfc3339, Error, Event, EventType, Normalizer, PluginInfo, Request,
    SignatureScheme,
};

pub struct StandardWebhooks;

fn event_type(text: &str) -> Result<EventType, Error> {
    Ok(match text {
        "deposit" => EventType::Deposit,
        "withdrawal" => EventType::Withdrawal,
        "transfer_in" => EventType::TransferIn,
        "transfer_out" => EventType::TransferOut,
        "fee" => EventType::Fee,
        "refund" => EventType::Refund,
        "hold" => EventType::Hold,
        "release" => EventType::Release,
        other => {
            return Err(Error::Malformed(format!(
                "event_type {other:?} is not a walletlog event type"
            )))
        }
    })
}

fn event(v: &Value, fallback_id: Option<&str>, index: usize) -> Result<Event, Error> {
    let at = |e: Error| match e {
        Error::Malformed(m) => Error::Malformed(format!("event {index}: {m}")),
        other => other,
    };
    let amount = match v.get("amount") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(_)) => {
            return Err(at(Error::Malformed(
                "amount must be a decimal string such as \"12.34\", not a JSON number".into(),
            )))
        }
        _ => return Err(at(Error::Malformed("amount is missing".into()))),
    };
    let provider_event_id = match opt_str(v, "/provider_event_id").or(fallback_id) {
        Some(id) => id.to_owned(),
        None => return Err(at(Error::Malformed("provider_event_id is missing".into()))),
    };
    let metadata = match v.get("metadata") {
        None | Some(Value::Null) => "{}".to_owned(),
        Some(m @ Value::Object(_)) => m.to_string(),
        Some(_) => return Err(at(Error::Malformed("metadata must be an object".into()))),
    };
    Ok(Event {
        wallet_id: str_field(v, "/wallet_id").map_err(at)?.to_owned(),
        event_type: event_type(str_field(v, "/event_type").map_err(at)?).map_err(at)?,
        amount,
        currency: str_field(v, "/currency").map_err(at)?.to_owned(),
        provider_event_id,
        occurred_at: Some(to_utc_rfc3339(str_field(v, "/occurred_at").map_err(at)?).map_err(at)?),
        metadata,
    })
}

impl Normalizer for StandardWebhooks {
    fn info() -> PluginInfo {
        PluginInfo::new(
            "standard-webhooks",
            env!("CARGO_PKG_VERSION"),
            SignatureScheme::StandardWebhooksV1,
        )
    }

    fn normalize(request: &Request) -> Result<Vec<Event>, Error> {
        let body = request.json()?;
        match body.get("events") {
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, v)| event(v, None, i))
                .collect(),
            Some(_) => Err(Error::Malformed("events must be an array".into())),
            None if body.is_object() => Ok(vec![event(&body, request.header("webhook-id"), 0)?]),
            None => Err(Error::Malformed(
                "the body must be an event object or {\"events\": [...]}".into(),
            )),
        }
    }
}

walletlog_plugin::export_normalizer!(StandardWebhooks);
