//! Square webhooks to walletlog events.
//!
//! | Square event | walletlog events | provider_event_id |
//! |---|---|---|
//! | `payment.created` / `payment.updated`, status `COMPLETED` | deposit of `total_money` (else `amount_money`); a fee per positive `processing_fee` | `payment:<id>` (`:fee:<n>`) |
//! | `refund.created` / `refund.updated`, status `COMPLETED` | withdrawal of `amount_money`; a negative `processing_fee` (a fee given back) is a refund | `refund:<id>` (`:fee:<n>`) |
//! | `payout.sent` / `payout.paid` | withdrawal of `amount_money` | `payout:<id>` (both report the same money: the second is a duplicate) |
//! | `payout.failed` | deposit: the money came back | `payout:<id>:failed` |
//! | anything else (disputes, gift cards, test notifications, pending states) | nothing | |
//!
//! Keys are the object's id, not Square's `event_id`, so every event about
//! the same money deduplicates; `occurred_at` is the object's `created_at`
//! (stable across its events). The wallet is the object's `location_id`,
//! else the `merchant_id`. Square signs the notification URL followed by
//! the body: the host must be given the URL exactly as registered.

use walletlog_plugin::serde_json::Value;
use walletlog_plugin::{
    int_field, lookup, metadata, minor_to_decimal, opt_str, str_field, to_utc_rfc3339,
    DigestEncoding, Error, Event, EventType, HmacAlgorithm, HmacSpec, Normalizer, PluginInfo,
    Request, SecretEncoding, SignatureScheme,
};

pub struct Square;

struct Ctx<'a> {
    body: &'a Value,
    object: &'a Value,
}

impl Ctx<'_> {
    /// An event of `money` (`{amount, currency | currency_code}`); `None` when zero.
    fn event(&self, ty: EventType, id: String, money: &Value) -> Result<Option<Event>, Error> {
        let minor = int_field(money, "/amount")?;
        if minor == 0 {
            return Ok(None);
        }
        let currency = opt_str(money, "/currency")
            .or_else(|| opt_str(money, "/currency_code"))
            .ok_or_else(|| Error::Malformed("the money's currency is missing".into()))?
            .to_ascii_uppercase();
        let wallet = opt_str(self.object, "/location_id")
            .or_else(|| opt_str(self.body, "/merchant_id"))
            .ok_or_else(|| {
                Error::Malformed("neither location_id nor merchant_id is present".into())
            })?;
        Ok(Some(Event {
            wallet_id: wallet.to_owned(),
            event_type: ty,
            amount: minor_to_decimal(minor.abs(), &currency)?,
            currency,
            provider_event_id: id,
            occurred_at: Some(to_utc_rfc3339(str_field(self.object, "/created_at")?)?),
            metadata: metadata(&[
                ("square_event_id", opt_str(self.body, "/event_id")),
                ("square_type", opt_str(self.body, "/type")),
                ("merchant_id", opt_str(self.body, "/merchant_id")),
            ]),
        }))
    }

    /// Fees: positive ones are charged (fee), negative ones given back (refund).
    fn fees(&self, prefix: &str, out: &mut Vec<Event>) -> Result<(), Error> {
        let fees = self
            .object
            .get("processing_fee")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for (n, fee) in fees.iter().enumerate() {
            let money = fee
                .get("amount_money")
                .ok_or_else(|| Error::Malformed("processing_fee without amount_money".into()))?;
            let ty = if int_field(money, "/amount")? > 0 {
                EventType::Fee
            } else {
                EventType::Refund
            };
            out.extend(self.event(ty, format!("{prefix}:fee:{n}"), money)?);
        }
        Ok(())
    }
}

impl Normalizer for Square {
    fn info() -> PluginInfo {
        PluginInfo::new(
            "square",
            env!("CARGO_PKG_VERSION"),
            SignatureScheme::Hmac(HmacSpec {
                algorithm: HmacAlgorithm::Sha256,
                header: "x-square-hmacsha256-signature".into(),
                encoding: DigestEncoding::Base64,
                prefix: None,
                include_url: true,
                secret_encoding: SecretEncoding::Utf8,
            }),
        )
    }

    fn normalize(request: &Request) -> Result<Vec<Event>, Error> {
        let body = request.json()?;
        let kind = str_field(&body, "/type")?;
        let (name, _) = kind.split_once('.').unwrap_or((kind, ""));
        let object = match lookup(&body, &format!("/data/object/{name}")) {
            Some(o) => o,
            None => return Ok(Vec::new()),
        };
        let ctx = Ctx {
            body: &body,
            object,
        };
        let id = || str_field(object, "/id");
        let status = opt_str(object, "/status").unwrap_or("");
        let mut out = Vec::new();
        match (kind, status) {
            ("payment.created" | "payment.updated", "COMPLETED") => {
                let key = format!("payment:{}", id()?);
                let money = object
                    .get("total_money")
                    .or_else(|| object.get("amount_money"));
                let money =
                    money.ok_or_else(|| Error::Malformed("the payment has no amount".into()))?;
                out.extend(ctx.event(EventType::Deposit, key.clone(), money)?);
                ctx.fees(&key, &mut out)?;
            }
            ("refund.created" | "refund.updated", "COMPLETED") => {
                let key = format!("refund:{}", id()?);
                let money = object
                    .get("amount_money")
                    .ok_or_else(|| Error::Malformed("the refund has no amount_money".into()))?;
                out.extend(ctx.event(EventType::Withdrawal, key.clone(), money)?);
                ctx.fees(&key, &mut out)?;
            }
            ("payout.sent" | "payout.paid", _) => {
                let money = object
                    .get("amount_money")
                    .ok_or_else(|| Error::Malformed("the payout has no amount_money".into()))?;
                out.extend(ctx.event(EventType::Withdrawal, format!("payout:{}", id()?), money)?);
            }
            ("payout.failed", _) => {
                let money = object
                    .get("amount_money")
                    .ok_or_else(|| Error::Malformed("the payout has no amount_money".into()))?;
                out.extend(ctx.event(
                    EventType::Deposit,
                    format!("payout:{}:failed", id()?),
                    money,
                )?);
            }
            _ => {}
        }
        Ok(out)
    }
}

walletlog_plugin::export_normalizer!(Square);
