//! Stripe (v1 snapshot events) to walletlog events.
//!
//! | Stripe event type | walletlog event | provider_event_id |
//! |---|---|---|
//! | `charge.succeeded` | deposit of `amount` (+ fee, when `balance_transaction` is expanded and its fee > 0) | its `payment_intent`, else the charge id (fee: `<txn>:fee`) |
//! | `payment_intent.succeeded` | deposit of `amount_received` | the intent id: the same payment as `charge.succeeded` |
//! | `charge.refunded`, `refund.created`, `refund.updated`, `charge.refund.updated` (status succeeded) | withdrawal per succeeded refund | refund id |
//! | `payout.paid` | withdrawal | payout id |
//! | `transfer.created` | transfer_out | transfer id |
//! | `transfer.reversed`, `transfer_reversal.created` | transfer_in | reversal id |
//! | `topup.succeeded` | deposit | top-up id |
//! | `application_fee.refunded`, `fee_refund.created` | refund | fee refund id |
//! | `charge.dispute.funds_withdrawn` / `funds_reinstated` | withdrawal / deposit | `<dispute>:withdrawn` / `:reinstated` |
//! | `reserve.hold.created` / `reserve.release.created` | hold / release | reserve id |
//! | `treasury.received_credit.succeeded` / `received_debit.succeeded` | deposit / withdrawal | its id |
//! | anything else | nothing (ignored) | |
//!
//! Refunds to a customer are money leaving the wallet, so they are
//! withdrawals; `refund` is for money coming back (a refunded fee).
//!
//! The wallet is the moved item's `metadata.wallet_id` (a refund's, a
//! reversal's), else the object's, else the object's `customer`, else the
//! event's connected `account`. A refund object carries no customer: set
//! `metadata.wallet_id` (or use connected accounts) so that `refund.*` and
//! `charge.refunded` name the same wallet.
//!
//! `occurred_at` is the moved item's own `created` (a charge's, a
//! refund's, a payout's), the same in every event type that reports it; a
//! dispute's movements are dated by their balance transactions. A
//! `payment_intent.succeeded` without its charge embedded carries no time
//! of payment: its event has none (walletlog dates it by receipt, as an
//! estimate, and `charge.succeeded` with the real time is its duplicate).
//! Stripe v2 "thin" events carry no money data: unsupported.

use walletlog_plugin::serde_json::Value;
use walletlog_plugin::{
    int_field, lookup, metadata, minor_to_decimal, opt_str, str_field, unix_to_rfc3339, Error,
    Event, EventType, Normalizer, PluginInfo, Request, SignatureScheme,
};

pub struct Stripe;

impl Normalizer for Stripe {
    fn info() -> PluginInfo {
        PluginInfo::new(
            "stripe",
            env!("CARGO_PKG_VERSION"),
            SignatureScheme::StripeV1,
        )
    }

    fn normalize(request: &Request) -> Result<Vec<Event>, Error> {
        let event = request.json()?;
        if opt_str(&event, "/object") == Some("v2.core.event") {
            return Err(Error::Unsupported(
                "Stripe v2 thin events carry no money data; fetch the related object instead"
                    .into(),
            ));
        }
        let kind = str_field(&event, "/type")?;
        let object = lookup(&event, "/data/object")
            .ok_or_else(|| Error::Malformed("/data/object is missing".into()))?;
        let ctx = Context {
            event: &event,
            kind,
            object,
        };
        let obj_id = || str_field(object, "/id");
        match kind {
            "charge.succeeded" => {
                // The payment is keyed by its PaymentIntent when it has one:
                // payment_intent.succeeded reports the same money.
                let key = opt_str(object, "/payment_intent").map_or_else(obj_id, Ok)?;
                let mut out =
                    vec![ctx.money(EventType::Deposit, key, int_field(object, "/amount")?)?];
                if let Some(txn) = object.get("balance_transaction").filter(|t| t.is_object()) {
                    let fee = int_field(txn, "/fee")?;
                    if fee > 0 {
                        let id = format!("{}:fee", str_field(txn, "/id")?);
                        out.push(ctx.money(EventType::Fee, &id, fee)?);
                    }
                }
                Ok(out.into_iter().flatten().collect())
            }
            "payment_intent.succeeded" => {
                let received = int_field(object, "/amount_received").unwrap_or(0);
                let amount = if received > 0 {
                    received
                } else {
                    int_field(object, "/amount")?
                };
                // Dated by its succeeded charge when the intent embeds it
                // (API versions before 2022-11-15); otherwise Stripe says
                // nothing of when the money moved (the intent's `created` is
                // when checkout began): no time, and walletlog dates it by
                // receipt as an estimate, which charge.succeeded's real
                // time then matches as a duplicate.
                let charge = lookup(object, "/charges/data")
                    .and_then(Value::as_array)
                    .and_then(|c| {
                        c.iter()
                            .find(|c| opt_str(c, "/status") == Some("succeeded"))
                    });
                let at = match charge {
                    Some(c) => Some(unix_to_rfc3339(int_field(c, "/created")?)?),
                    None => None,
                };
                Ok(ctx
                    .money_at(object, EventType::Deposit, obj_id()?, amount, at)?
                    .into_iter()
                    .collect())
            }
            "charge.refunded" => {
                let refunds = lookup(object, "/refunds/data")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                let mut out = Vec::new();
                for r in refunds
                    .iter()
                    .filter(|r| opt_str(r, "/status") == Some("succeeded"))
                {
                    out.extend(ctx.money_of(
                        r,
                        EventType::Withdrawal,
                        str_field(r, "/id")?,
                        int_field(r, "/amount")?,
                    )?);
                }
                Ok(out)
            }
            "refund.created" | "refund.updated" | "charge.refund.updated" => {
                if opt_str(object, "/status") != Some("succeeded") {
                    return Ok(Vec::new());
                }
                Ok(ctx
                    .money(
                        EventType::Withdrawal,
                        obj_id()?,
                        int_field(object, "/amount")?,
                    )?
                    .into_iter()
                    .collect())
            }
            "payout.paid" => one(ctx.money(
                EventType::Withdrawal,
                obj_id()?,
                int_field(object, "/amount")?,
            )),
            "transfer.created" => one(ctx.money(
                EventType::TransferOut,
                obj_id()?,
                int_field(object, "/amount")?,
            )),
            "transfer_reversal.created" => one(ctx.money(
                EventType::TransferIn,
                obj_id()?,
                int_field(object, "/amount")?,
            )),
            "transfer.reversed" => {
                let reversals = lookup(object, "/reversals/data")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                let mut out = Vec::new();
                for r in &reversals {
                    out.extend(ctx.money_of(
                        r,
                        EventType::TransferIn,
                        str_field(r, "/id")?,
                        int_field(r, "/amount")?,
                    )?);
                }
                Ok(out)
            }
            "topup.succeeded" => {
                one(ctx.money(EventType::Deposit, obj_id()?, int_field(object, "/amount")?))
            }
            "application_fee.refunded" | "fee_refund.created" => {
                one(ctx.money(EventType::Refund, obj_id()?, int_field(object, "/amount")?))
            }
            "charge.dispute.funds_withdrawn" | "charge.dispute.funds_reinstated" => {
                // Dated by the balance transaction that moved the money
                // (the first withdraws, the second reinstates), else by the
                // event: each event type reports a movement of its own.
                let (ty, suffix, nth) = if kind.ends_with("withdrawn") {
                    (EventType::Withdrawal, "withdrawn", 0)
                } else {
                    (EventType::Deposit, "reinstated", 1)
                };
                let at = lookup(object, "/balance_transactions")
                    .and_then(Value::as_array)
                    .and_then(|t| t.get(nth))
                    .and_then(|t| t.get("created"))
                    .and_then(Value::as_i64)
                    .map_or_else(|| int_field(&event, "/created"), Ok)?;
                one(ctx.money_at(
                    object,
                    ty,
                    &format!("{}:{suffix}", obj_id()?),
                    int_field(object, "/amount")?,
                    Some(unix_to_rfc3339(at)?),
                ))
            }
            "reserve.hold.created" => {
                one(ctx.money(EventType::Hold, obj_id()?, int_field(object, "/amount")?))
            }
            "reserve.release.created" => {
                one(ctx.money(EventType::Release, obj_id()?, int_field(object, "/amount")?))
            }
            "treasury.received_credit.succeeded" => {
                one(ctx.money(EventType::Deposit, obj_id()?, int_field(object, "/amount")?))
            }
            "treasury.received_debit.succeeded" => one(ctx.money(
                EventType::Withdrawal,
                obj_id()?,
                int_field(object, "/amount")?,
            )),
            _ => Ok(Vec::new()),
        }
    }
}

fn one(event: Result<Option<Event>, Error>) -> Result<Vec<Event>, Error> {
    Ok(event?.into_iter().collect())
}

struct Context<'a> {
    event: &'a Value,
    kind: &'a str,
    object: &'a Value,
}

impl Context<'_> {
    fn money(&self, ty: EventType, id: &str, minor: i64) -> Result<Option<Event>, Error> {
        self.money_of(self.object, ty, id, minor)
    }

    /// An event for `item` (the object, or one of its refunds/reversals),
    /// dated by the item's own `created`: the movement's time, the same in
    /// every event type that reports it (the event's own `created` is not).
    fn money_of(
        &self,
        item: &Value,
        ty: EventType,
        id: &str,
        minor: i64,
    ) -> Result<Option<Event>, Error> {
        let at = match item.get("created").and_then(Value::as_i64) {
            Some(t) => t,
            None => int_field(self.event, "/created")?,
        };
        self.money_at(item, ty, id, minor, Some(unix_to_rfc3339(at)?))
    }

    /// An event for `item` at `at` (`None`: the provider gave no time);
    /// `None` when the amount is zero: nothing moved.
    fn money_at(
        &self,
        item: &Value,
        ty: EventType,
        id: &str,
        minor: i64,
        at: Option<String>,
    ) -> Result<Option<Event>, Error> {
        if minor == 0 {
            return Ok(None);
        }
        let currency = opt_str(item, "/currency")
            .or_else(|| opt_str(self.object, "/currency"))
            .ok_or_else(|| Error::Malformed("the currency is missing".into()))?
            .to_ascii_uppercase();
        let wallet = opt_str(item, "/metadata/wallet_id")
            .or_else(|| opt_str(self.object, "/metadata/wallet_id"))
            .or_else(|| opt_str(self.object, "/customer"))
            .or_else(|| opt_str(self.event, "/account"))
            .ok_or_else(|| {
                Error::Malformed("no wallet: set metadata.wallet_id on the object, or send a customer or account".into())
            })?;
        Ok(Some(Event {
            wallet_id: wallet.to_owned(),
            event_type: ty,
            amount: minor_to_decimal(minor.abs(), &currency)?,
            currency,
            provider_event_id: id.to_owned(),
            occurred_at: at,
            metadata: metadata(&[
                ("stripe_event", opt_str(self.event, "/id")),
                ("stripe_type", Some(self.kind)),
                ("stripe_object", opt_str(self.object, "/id")),
            ]),
        }))
    }
}

walletlog_plugin::export_normalizer!(Stripe);
