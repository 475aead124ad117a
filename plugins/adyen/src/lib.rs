//! Adyen Balance Platform transfer webhooks to walletlog events.
//!
//! A `balancePlatform.transfer.created` / `.updated` carries the transfer's
//! whole history of accounting events, each with mutations of the balance
//! account's `balance` (booked), `reserved` and `received` (pending). Every
//! accounting event becomes walletlog events keyed by
//! `<transfer id>:<event id>:<kind>`, so a later update that repeats the
//! history adds only what is new. Walking the events in order with the
//! running `reserved` per currency:
//!
//! | mutation | walletlog events |
//! |---|---|
//! | `reserved` < 0 while nothing incoming is reserved (funds set aside to leave) | hold |
//! | `reserved` > 0 undoing an outgoing reservation, no booking | release (cancelled) |
//! | `reserved` > 0 otherwise (incoming funds reserved) | deposit + hold |
//! | `reserved` < 0 undoing an incoming reservation, no booking | release + withdrawal (cancelled) |
//! | `balance` < 0 | release of the reservation it books, then withdrawal |
//! | `balance` > 0 | release of the incoming reservation it books; deposit of any rest |
//! | `received` only | nothing: pending, not yet the wallet's |
//!
//! Deposits and withdrawals are `transfer_in` / `transfer_out` for the
//! `internal` category. The wallet is the balance account id;
//! `occurred_at` is the accounting event's `bookingDate`.
//! `balancePlatform.transaction.created` repeats a booking the transfer
//! already reported, so it is ignored; other Balance Platform events move
//! no money. Classic payment notifications (`notificationItems`) are signed
//! per item inside the body, which the host does not verify: unsupported.

use std::collections::HashMap;

use walletlog_plugin::serde_json::Value;
use walletlog_plugin::{
    int_field, metadata, minor_to_decimal, opt_str, str_field, to_utc_rfc3339, DigestEncoding,
    Error, Event, EventType, HmacAlgorithm, HmacSpec, Normalizer, PluginInfo, Request,
    SecretEncoding, SignatureScheme,
};

pub struct Adyen;

struct Out<'a> {
    transfer: &'a Value,
    internal: bool,
    events: Vec<Event>,
}

impl Out<'_> {
    fn push(
        &mut self,
        ty: EventType,
        key: &str,
        minor: i64,
        currency: &str,
        at: &str,
    ) -> Result<(), Error> {
        if minor == 0 {
            return Ok(());
        }
        let ty = match (ty, self.internal) {
            (EventType::Deposit, true) => EventType::TransferIn,
            (EventType::Withdrawal, true) => EventType::TransferOut,
            (t, _) => t,
        };
        let kind = match ty {
            EventType::Hold => "hold",
            EventType::Release => "release",
            EventType::Deposit | EventType::TransferIn => "in",
            _ => "out",
        };
        self.events.push(Event {
            wallet_id: str_field(self.transfer, "/balanceAccount/id")?.to_owned(),
            event_type: ty,
            amount: minor_to_decimal(minor.abs(), currency)?,
            currency: currency.to_owned(),
            provider_event_id: format!("{key}:{kind}"),
            occurred_at: Some(at.to_owned()),
            metadata: metadata(&[
                ("adyen_transfer", opt_str(self.transfer, "/id")),
                ("category", opt_str(self.transfer, "/category")),
                ("reference", opt_str(self.transfer, "/reference")),
            ]),
        });
        Ok(())
    }
}

fn transfer_events(transfer: &Value) -> Result<Vec<Event>, Error> {
    let transfer_id = str_field(transfer, "/id")?;
    let mut out = Out {
        transfer,
        internal: opt_str(transfer, "/category") == Some("internal"),
        events: Vec::new(),
    };
    let mut reserved: HashMap<String, i64> = HashMap::new();
    let history = transfer
        .get("events")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for ev in history
        .iter()
        .filter(|e| opt_str(e, "/type") == Some("accounting"))
    {
        let key = format!("{transfer_id}:{}", str_field(ev, "/id")?);
        let at = to_utc_rfc3339(str_field(ev, "/bookingDate")?)?;
        for m in ev
            .get("mutations")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
        {
            let currency = str_field(&m, "/currency")?.to_ascii_uppercase();
            let b = int_field(&m, "/balance").unwrap_or(0);
            let r = int_field(&m, "/reserved").unwrap_or(0);
            let running = reserved.entry(currency.clone()).or_insert(0);
            match (b, r) {
                (0, 0) => {}
                (0, r) if r < 0 && *running <= 0 => {
                    out.push(EventType::Hold, &key, -r, &currency, &at)?
                }
                (0, r) if r > 0 && *running < 0 => {
                    out.push(EventType::Release, &key, r, &currency, &at)?
                }
                (0, r) if r > 0 => {
                    out.push(EventType::Deposit, &key, r, &currency, &at)?;
                    out.push(EventType::Hold, &key, r, &currency, &at)?;
                }
                (0, r) => {
                    out.push(EventType::Release, &key, -r, &currency, &at)?;
                    out.push(EventType::Withdrawal, &key, -r, &currency, &at)?;
                }
                (b, r) if b < 0 => {
                    out.push(EventType::Release, &key, r.max(0), &currency, &at)?;
                    out.push(EventType::Withdrawal, &key, -b, &currency, &at)?;
                }
                (b, r) => {
                    let released = (-r).max(0).min(b);
                    out.push(EventType::Release, &key, released, &currency, &at)?;
                    out.push(EventType::Deposit, &key, b - released, &currency, &at)?;
                }
            }
            *running += r;
        }
    }
    Ok(out.events)
}

impl Normalizer for Adyen {
    fn info() -> PluginInfo {
        PluginInfo::new(
            "adyen",
            env!("CARGO_PKG_VERSION"),
            SignatureScheme::Hmac(HmacSpec {
                algorithm: HmacAlgorithm::Sha256,
                header: "hmacsignature".into(),
                encoding: DigestEncoding::Base64,
                prefix: None,
                include_url: false,
                secret_encoding: SecretEncoding::Hex,
            }),
        )
    }

    fn normalize(request: &Request) -> Result<Vec<Event>, Error> {
        let body = request.json()?;
        if body.get("notificationItems").is_some() {
            return Err(Error::Unsupported(
                "classic payment notifications are signed per item inside the body; send Balance Platform webhooks".into(),
            ));
        }
        match str_field(&body, "/type")? {
            "balancePlatform.transfer.created" | "balancePlatform.transfer.updated" => {
                let transfer = body
                    .get("data")
                    .ok_or_else(|| Error::Malformed("/data is missing".into()))?;
                transfer_events(transfer)
            }
            _ => Ok(Vec::new()),
        }
    }
}

walletlog_plugin::export_normalizer!(Adyen);
