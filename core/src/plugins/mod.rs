//! The sandbox that runs provider normalizer plugins: WebAssembly
//! components of the `walletlog:normalizer` world (`plugins/wit`), run by
//! wasmtime.
//!
//! Every plugin is treated as hostile. A component is instantiated with an
//! empty linker, so one with any import is refused at install. Each call
//! (`info` at install, `normalize` per webhook) runs in a fresh instance
//! with a fuel budget, an epoch deadline (a wall-clock backstop), a memory
//! cap, a stack cap, and caps on the request and on the output's size and
//! event count. A trapped instance is simply dropped.
//!
//! Compiled components are cached in memory by content hash, and on disk
//! when a cache directory is configured (serialized by this host, keyed by
//! content hash, wasmtime version and engine settings).

mod cache;
mod host;

pub use crate::limits::PluginLimits;
pub use host::{CallCost, InstalledPlugin, PluginHost};

use crate::domain::{NewEvent, PluginError, Timestamp, ValidationError};
use crate::signature::SignatureScheme;

/// A webhook as received: headers (any case; the plugin sees them
/// lower-cased), the raw body, and the URL it was posted to.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Webhook {
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub url: Option<String>,
}

/// What a plugin says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginInfo {
    pub provider: String,
    pub version: String,
    pub signature: SignatureScheme,
}

impl PluginInfo {
    /// `plugin:<provider>@<version>`, the actor of its audit records.
    pub fn actor(&self) -> String {
        format!("plugin:{}@{}", self.provider, self.version)
    }
}

/// One event as a plugin returned it, before validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NormalizedEvent {
    pub wallet_id: String,
    pub event_type: crate::domain::EventType,
    pub amount: String,
    pub currency: String,
    pub provider_event_id: String,
    /// RFC 3339; `None` (contract 1.1) when the provider gave no time.
    pub occurred_at: Option<String>,
    pub metadata: String,
}

impl NormalizedEvent {
    /// The event validated as any other input: the provider is the
    /// plugin's, the provider event id the plugin's, no event id or
    /// idempotency key. Without a time, the event is dated `received_at`
    /// (the delivery's first receipt) and marked estimated.
    pub fn validate(
        self,
        provider: &str,
        received_at: Timestamp,
    ) -> Result<NewEvent, ValidationError> {
        let estimated = self.occurred_at.is_none();
        crate::domain::RawEvent {
            event_id: None,
            wallet_id: self.wallet_id,
            provider: provider.to_owned(),
            event_type: self.event_type.as_str().to_owned(),
            amount: self.amount,
            currency: self.currency,
            provider_event_id: Some(self.provider_event_id),
            idempotency_key: None,
            metadata: Some(self.metadata),
            occurred_at: self.occurred_at.unwrap_or_else(|| received_at.to_string()),
            occurred_at_estimated: estimated,
        }
        .validate()
    }
}

pub(crate) fn refused(message: impl Into<String>) -> PluginError {
    PluginError::new(crate::domain::PluginErrorKind::Refused, message)
}
