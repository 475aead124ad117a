//! Paystack webhooks to walletlog events.
//!
//! | Paystack event | walletlog events | provider_event_id | wallet |
//! |---|---|---|---|
//! | `charge.success` | deposit of `amount`; fee of `fees` when > 0 | `charge:<reference>` (`:fee`) | customer code |
//! | `transfer.success` | transfer_out of `amount` | `transfer:<transfer_code>` | recipient code |
//! | `transfer.reversed` | transfer_in (the money came back) | `transfer:<transfer_code>:reversed` | recipient code |
//! | `preauthorization.capture.success` | release of the held `amount`, withdrawal of `captured_amount`; fee of the capture's fees | `preauth:<reference>:capture` (`:release`, `:fee`) | customer code |
//! | `preauthorization.reserve.success` | hold of `amount`, time estimated | `preauth:<reference>:hold` | customer code |
//! | `preauthorization.release.success` | release of `amount` | `preauth:<reference>:release` | customer code |
//! | `refund.processed` | withdrawal of `amount` (back to the customer), time estimated | `refund:<refund_reference>` | customer code, else the customer's email |
//! | `transfer.failed`, `refund.pending`/`processing`/`failed`, `*.failed`, disputes | nothing (no money moved, or not yet) | | |
//!
//! Paystack sends no time with `refund.processed` and
//! `preauthorization.reserve.success`: their events carry none, and
//! walletlog dates them by the webhook's first receipt, marked estimated
//! (plugin contract 1.1); a retry of the same body is a duplicate.
//!
//! `data.metadata.wallet_id`, when present, names the wallet instead.
//! Amounts are minor units (kobo, cents), sometimes as strings ("5000").

use walletlog_plugin::serde_json::Value;
use walletlog_plugin::{
    int_field, metadata, minor_to_decimal, opt_str, str_field, to_utc_rfc3339, DigestEncoding,
    Error, Event, EventType, HmacAlgorithm, HmacSpec, Normalizer, PluginInfo, Request,
    SecretEncoding, SignatureScheme,
};

pub struct Paystack;

struct Ctx<'a> {
    kind: &'a str,
    data: &'a Value,
}

impl Ctx<'_> {
    fn first_time(&self, pointers: &[&str]) -> Result<String, Error> {
        let text = pointers
            .iter()
            .find_map(|p| opt_str(self.data, p))
            .ok_or_else(|| {
                Error::Malformed(format!(
                    "{} carries none of {}",
                    self.kind,
                    pointers.join(", ")
                ))
            })?;
        to_utc_rfc3339(text)
    }

    fn wallet(&self, party: &str) -> Result<String, Error> {
        opt_str(self.data, "/metadata/wallet_id")
            .or_else(|| opt_str(self.data, party))
            .map(str::to_owned)
            .ok_or_else(|| {
                Error::Malformed(format!(
                    "no wallet: neither metadata.wallet_id nor {party} is present"
                ))
            })
    }

    fn event(
        &self,
        ty: EventType,
        id: String,
        minor: i64,
        wallet: &str,
        at: Option<&str>,
    ) -> Result<Option<Event>, Error> {
        if minor == 0 {
            return Ok(None);
        }
        let currency = str_field(self.data, "/currency")?.to_ascii_uppercase();
        Ok(Some(Event {
            wallet_id: wallet.to_owned(),
            event_type: ty,
            amount: minor_to_decimal(minor, &currency)?,
            currency,
            provider_event_id: id,
            occurred_at: at.map(str::to_owned),
            metadata: metadata(&[
                ("paystack_event", Some(self.kind)),
                (
                    "reference",
                    opt_str(self.data, "/reference")
                        .or_else(|| opt_str(self.data, "/transaction_reference")),
                ),
            ]),
        }))
    }
}

fn fees(v: &Value, pointer: &str) -> i64 {
    int_field(v, pointer).unwrap_or(0)
}

impl Normalizer for Paystack {
    fn info() -> PluginInfo {
        PluginInfo::new(
            "paystack",
            env!("CARGO_PKG_VERSION"),
            SignatureScheme::Hmac(HmacSpec {
                algorithm: HmacAlgorithm::Sha512,
                header: "x-paystack-signature".into(),
                encoding: DigestEncoding::Hex,
                prefix: None,
                include_url: false,
                secret_encoding: SecretEncoding::Utf8,
            }),
        )
    }

    fn normalize(request: &Request) -> Result<Vec<Event>, Error> {
        let body = request.json()?;
        let kind = str_field(&body, "/event")?;
        let data = body
            .get("data")
            .ok_or_else(|| Error::Malformed("/data is missing".into()))?;
        let c = Ctx { kind, data };
        let mut out = Vec::new();
        match kind {
            "charge.success" => {
                let reference = str_field(data, "/reference")?;
                let wallet = c.wallet("/customer/customer_code")?;
                let at = c.first_time(&["/paid_at", "/paidAt", "/created_at", "/createdAt"])?;
                let key = format!("charge:{reference}");
                out.extend(c.event(
                    EventType::Deposit,
                    key.clone(),
                    int_field(data, "/amount")?,
                    &wallet,
                    Some(&at),
                )?);
                out.extend(c.event(
                    EventType::Fee,
                    format!("{key}:fee"),
                    fees(data, "/fees"),
                    &wallet,
                    Some(&at),
                )?);
            }
            "transfer.success" | "transfer.reversed" => {
                let code = str_field(data, "/transfer_code")?;
                let wallet = c.wallet("/recipient/recipient_code")?;
                let (ty, key, times): (_, _, &[&str]) = if kind == "transfer.success" {
                    (
                        EventType::TransferOut,
                        format!("transfer:{code}"),
                        &[
                            "/transferred_at",
                            "/updated_at",
                            "/updatedAt",
                            "/created_at",
                            "/createdAt",
                        ],
                    )
                } else {
                    (
                        EventType::TransferIn,
                        format!("transfer:{code}:reversed"),
                        &[
                            "/updated_at",
                            "/updatedAt",
                            "/transferred_at",
                            "/created_at",
                            "/createdAt",
                        ],
                    )
                };
                let at = c.first_time(times)?;
                out.extend(c.event(ty, key, int_field(data, "/amount")?, &wallet, Some(&at))?);
            }
            "preauthorization.capture.success" => {
                let reference = str_field(data, "/reference")?;
                let wallet = c.wallet("/customer/customer_code")?;
                let at = c.first_time(&["/captured_at", "/transaction/transaction_date"])?;
                let key = format!("preauth:{reference}");
                out.extend(c.event(
                    EventType::Release,
                    format!("{key}:release"),
                    int_field(data, "/amount")?,
                    &wallet,
                    Some(&at),
                )?);
                out.extend(c.event(
                    EventType::Withdrawal,
                    format!("{key}:capture"),
                    int_field(data, "/captured_amount")?,
                    &wallet,
                    Some(&at),
                )?);
                out.extend(c.event(
                    EventType::Fee,
                    format!("{key}:fee"),
                    fees(data, "/transaction/fees"),
                    &wallet,
                    Some(&at),
                )?);
            }
            "preauthorization.release.success" => {
                let reference = str_field(data, "/reference")?;
                let wallet = c.wallet("/customer/customer_code")?;
                let at = c.first_time(&["/expired_at", "/released_at", "/updated_at"])?;
                out.extend(c.event(
                    EventType::Release,
                    format!("preauth:{reference}:release"),
                    int_field(data, "/amount")?,
                    &wallet,
                    Some(&at),
                )?);
            }
            // Paystack sends no time with these two: the event goes in
            // without one, and walletlog dates it by the webhook's first
            // receipt, marked estimated (contract 1.1).
            "refund.processed" => {
                let reference = str_field(data, "/refund_reference")?;
                let wallet = c
                    .wallet("/customer/customer_code")
                    .or_else(|_| c.wallet("/customer/email"))?;
                out.extend(c.event(
                    EventType::Withdrawal,
                    format!("refund:{reference}"),
                    int_field(data, "/amount")?,
                    &wallet,
                    None,
                )?);
            }
            "preauthorization.reserve.success" => {
                let reference = str_field(data, "/reference")?;
                let wallet = c.wallet("/customer/customer_code")?;
                out.extend(c.event(
                    EventType::Hold,
                    format!("preauth:{reference}:hold"),
                    int_field(data, "/amount")?,
                    &wallet,
                    None,
                )?);
            }
            _ => {}
        }
        Ok(out)
    }
}

walletlog_plugin::export_normalizer!(Paystack);
