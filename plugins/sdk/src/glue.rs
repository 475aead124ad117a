//! Conversions between the SDK's plain types and the generated bindings.
//! Used by [`export_normalizer!`](crate::export_normalizer) only.

use crate::bindings as b;
use crate::{
    DigestEncoding, Error, EventType, HmacAlgorithm, Normalizer, Request, SecretEncoding,
    SignatureScheme,
};

pub fn info<T: Normalizer>() -> b::PluginInfo {
    let info = T::info();
    b::PluginInfo {
        provider: info.provider,
        version: info.version,
        signature: match info.signature {
            SignatureScheme::None => b::SignatureScheme::None,
            SignatureScheme::StripeV1 => b::SignatureScheme::StripeV1,
            SignatureScheme::StandardWebhooksV1 => b::SignatureScheme::StandardWebhooksV1,
            SignatureScheme::Hmac(h) => b::SignatureScheme::Hmac(b::HmacSpec {
                algorithm: match h.algorithm {
                    HmacAlgorithm::Sha256 => b::HmacAlgorithm::Sha256,
                    HmacAlgorithm::Sha512 => b::HmacAlgorithm::Sha512,
                },
                header: h.header,
                encoding: match h.encoding {
                    DigestEncoding::Hex => b::DigestEncoding::Hex,
                    DigestEncoding::Base64 => b::DigestEncoding::Base64,
                },
                prefix: h.prefix,
                include_url: h.include_url,
                secret_encoding: match h.secret_encoding {
                    SecretEncoding::Utf8 => b::SecretEncoding::Utf8,
                    SecretEncoding::Hex => b::SecretEncoding::Hex,
                    SecretEncoding::Base64 => b::SecretEncoding::Base64,
                },
            }),
        },
    }
}

/// Contract 1.1: the time, or none.
#[cfg(not(feature = "contract-1-0"))]
fn occurred_at(at: Option<String>) -> Result<Option<String>, b::NormalizeError> {
    Ok(at)
}

/// Contract 1.0 has no place for a missing time.
#[cfg(feature = "contract-1-0")]
fn occurred_at(at: Option<String>) -> Result<String, b::NormalizeError> {
    at.ok_or_else(|| {
        b::NormalizeError::Malformed(
            "an event without occurred_at needs walletlog:normalizer@1.1.0; \
             build without the contract-1-0 feature"
                .into(),
        )
    })
}

pub fn normalize<T: Normalizer>(
    request: b::Webhook,
) -> Result<Vec<b::NormalizedEvent>, b::NormalizeError> {
    let request = Request {
        headers: request.headers,
        body: request.body,
        url: request.url,
    };
    match T::normalize(&request) {
        Ok(events) => events
            .into_iter()
            .map(|e| {
                Ok(b::NormalizedEvent {
                    wallet_id: e.wallet_id,
                    event_type: match e.event_type {
                        EventType::Deposit => b::EventType::Deposit,
                        EventType::Withdrawal => b::EventType::Withdrawal,
                        EventType::TransferIn => b::EventType::TransferIn,
                        EventType::TransferOut => b::EventType::TransferOut,
                        EventType::Fee => b::EventType::Fee,
                        EventType::Refund => b::EventType::Refund,
                        EventType::Hold => b::EventType::Hold,
                        EventType::Release => b::EventType::Release,
                    },
                    amount: e.amount,
                    currency: e.currency,
                    provider_event_id: e.provider_event_id,
                    occurred_at: occurred_at(e.occurred_at)?,
                    metadata: e.metadata,
                })
            })
            .collect(),
        Err(Error::Malformed(m)) => Err(b::NormalizeError::Malformed(m)),
        Err(Error::Unsupported(m)) => Err(b::NormalizeError::Unsupported(m)),
    }
}
