//! "acme", a provider that exists only in tests: the plugin a team fixes.
//!
//! Body: `{"id": "evt_1", "type": "payment.succeeded", "wallet": "w1",
//! "amount": 1250, "currency": "USD", "created": 1767225600}`, amounts in
//! minor units, signed with `X-Acme-Signature: sha256=<hex HMAC-SHA256 of
//! the body>`. Version 1.0.0 maps `payment.succeeded` to a deposit and
//! refuses `payout.paid` as unsupported (the bug); version 2.0.0 (feature
//! `v2`) maps `payout.paid` to a withdrawal. `ping` moves no money.

use walletlog_plugin::{
    int_field, minor_to_decimal, str_field, unix_to_rfc3339, DigestEncoding, Error, Event,
    EventType, HmacAlgorithm, HmacSpec, Normalizer, PluginInfo, Request, SecretEncoding,
    SignatureScheme,
};

pub struct Acme;

const VERSION: &str = if cfg!(feature = "v2") {
    "2.0.0"
} else {
    "1.0.0"
};

impl Normalizer for Acme {
    fn info() -> PluginInfo {
        PluginInfo::new(
            "acme",
            VERSION,
            SignatureScheme::Hmac(HmacSpec {
                algorithm: HmacAlgorithm::Sha256,
                header: "x-acme-signature".into(),
                encoding: DigestEncoding::Hex,
                prefix: Some("sha256=".into()),
                include_url: false,
                secret_encoding: SecretEncoding::Utf8,
            }),
        )
    }

    fn normalize(request: &Request) -> Result<Vec<Event>, Error> {
        let body = request.json()?;
        let kind = str_field(&body, "/type")?;
        let event_type = match kind {
            "ping" => return Ok(Vec::new()),
            "payment.succeeded" => EventType::Deposit,
            "payout.paid" if cfg!(feature = "v2") => EventType::Withdrawal,
            other => return Err(Error::Unsupported(format!("event type {other}"))),
        };
        let currency = str_field(&body, "/currency")?;
        Ok(vec![Event {
            wallet_id: str_field(&body, "/wallet")?.to_owned(),
            event_type,
            amount: minor_to_decimal(int_field(&body, "/amount")?, currency)?,
            currency: currency.to_owned(),
            provider_event_id: str_field(&body, "/id")?.to_owned(),
            occurred_at: Some(unix_to_rfc3339(int_field(&body, "/created")?)?),
            metadata: "{}".into(),
        }])
    }
}

walletlog_plugin::export_normalizer!(Acme);
