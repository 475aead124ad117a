//! Write a walletlog normalizer plugin: a plain function from a webhook to
//! events. No `unsafe`, no ABI: implement [`Normalizer`], then
//! [`export_normalizer!`] it.
//!
//! ```
//! use walletlog_plugin::{Error, Event, EventType, Normalizer, PluginInfo, Request, SignatureScheme};
//!
//! pub struct Acme;
//!
//! impl Normalizer for Acme {
//!     fn info() -> PluginInfo {
//!         PluginInfo::new("acme", "1.0.0", SignatureScheme::StandardWebhooksV1)
//!     }
//!
//!     fn normalize(request: &Request) -> Result<Vec<Event>, Error> {
//!         let body = request.json()?;
//!         let id = walletlog_plugin::str_field(&body, "/id")?;
//!         let cents = walletlog_plugin::int_field(&body, "/amount")?;
//!         Ok(vec![Event {
//!             wallet_id: walletlog_plugin::str_field(&body, "/wallet")?.to_owned(),
//!             event_type: EventType::Deposit,
//!             amount: walletlog_plugin::minor_to_decimal(cents, "USD")?,
//!             currency: "USD".into(),
//!             provider_event_id: id.to_owned(),
//!             occurred_at: Some(walletlog_plugin::unix_to_rfc3339(walletlog_plugin::int_field(&body, "/created")?)?),
//!             metadata: "{}".into(),
//!         }])
//!     }
//! }
//!
//! walletlog_plugin::export_normalizer!(Acme);
//! # fn main() {
//! # let r = Request { headers: vec![], body: br#"{"id":"e1","amount":1234,"wallet":"w","created":0}"#.to_vec(), url: None };
//! # assert_eq!(Acme::normalize(&r).unwrap()[0].amount, "12.34");
//! # }
//! ```
//!
//! Build for `wasm32-unknown-unknown` and turn the module into a component
//! (`cargo xtask plugins` does both for the plugins in this repository).
//! Natively the same crate is a plain library, so its tests run with
//! `cargo test`.

#![deny(unsafe_code)]

#[cfg(all(
    target_arch = "wasm32",
    target_os = "unknown",
    not(target_feature = "atomics"),
    feature = "allocator"
))]
#[allow(unsafe_code)]
mod heap;
mod helpers;
pub mod json;

/// The plugin's allocator (feature `allocator`, on by default): see
/// `heap.rs`. A call that fits in the initial memory never grows it. Only
/// on `wasm32-unknown-unknown` (on WASI, libc's malloc claims the same
/// free part of the initial memory) and where WebAssembly has one thread
/// (no `atomics`): it shares nothing.
#[cfg(all(
    target_arch = "wasm32",
    target_os = "unknown",
    not(target_feature = "atomics"),
    feature = "allocator"
))]
#[global_allocator]
static ALLOCATOR: heap::InitialMemoryFirst = heap::InitialMemoryFirst::new();

pub use helpers::*;
pub use serde_json;

/// What happened to the money.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Deposit,
    Withdrawal,
    TransferIn,
    TransferOut,
    Fee,
    Refund,
    Hold,
    Release,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HmacAlgorithm {
    Sha256,
    Sha512,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DigestEncoding {
    Hex,
    Base64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretEncoding {
    Utf8,
    Hex,
    Base64,
}

/// One header holding an HMAC of the body (or of URL + body).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HmacSpec {
    pub algorithm: HmacAlgorithm,
    pub header: String,
    pub encoding: DigestEncoding,
    pub prefix: Option<String>,
    pub include_url: bool,
    pub secret_encoding: SecretEncoding,
}

/// How the provider signs its webhooks. The host verifies the signature
/// before the plugin runs; the plugin never sees the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignatureScheme {
    None,
    StripeV1,
    StandardWebhooksV1,
    Hmac(HmacSpec),
}

/// Who the plugin is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginInfo {
    /// The provider slug, `[a-z0-9][a-z0-9_.-]{0,63}`.
    pub provider: String,
    pub version: String,
    pub signature: SignatureScheme,
}

impl PluginInfo {
    pub fn new(provider: &str, version: &str, signature: SignatureScheme) -> Self {
        PluginInfo {
            provider: provider.to_owned(),
            version: version.to_owned(),
            signature,
        }
    }
}

/// The webhook as received. Header names are lower-cased by the host.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Request {
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub url: Option<String>,
}

impl Request {
    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as UTF-8 text.
    pub fn text(&self) -> Result<&str, Error> {
        std::str::from_utf8(&self.body)
            .map_err(|_| Error::Malformed("the body is not UTF-8".into()))
    }

    /// The body parsed as JSON, each key once in an object ([`json::parse`]):
    /// a body that gives a key twice is malformed, never read as one of
    /// its values, and so is one nested deeper than [`json::DEPTH_MAX`].
    pub fn json(&self) -> Result<serde_json::Value, Error> {
        json::parse(&self.body).map_err(|r| {
            Error::Malformed(if r.is_rule_breach() {
                format!("the body is refused: {r}")
            } else {
                format!("the body is not JSON: {r}")
            })
        })
    }
}

/// One movement of money, as walletlog will validate and store it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub wallet_id: String,
    pub event_type: EventType,
    /// An exact decimal string, > 0 (use [`minor_to_decimal`]).
    pub amount: String,
    pub currency: String,
    /// The provider's id for this movement; unique per provider.
    pub provider_event_id: String,
    /// When the money moved, RFC 3339 (use [`unix_to_rfc3339`] or
    /// [`to_utc_rfc3339`]). `None` only when the provider sends no time at
    /// all: walletlog then dates the event by the webhook's first receipt
    /// and marks the time estimated (contract 1.1). Never invent one.
    pub occurred_at: Option<String>,
    /// A JSON object's text.
    pub metadata: String,
}

/// Why a webhook could not be normalized.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The webhook is not what the provider sends.
    Malformed(String),
    /// A valid webhook of a kind this plugin does not handle.
    Unsupported(String),
}

/// A provider's normalizer.
pub trait Normalizer {
    fn info() -> PluginInfo;
    /// The events the webhook reports; empty when it moves no money.
    fn normalize(request: &Request) -> Result<Vec<Event>, Error>;
}

#[cfg(target_arch = "wasm32")]
#[doc(hidden)]
pub mod bindings {
    // The SDK targets walletlog:normalizer@1.1.0; feature `contract-1-0`
    // builds a 1.0.0 component (for hosts older than the inbox).
    #[cfg(not(feature = "contract-1-0"))]
    wit_bindgen::generate!({
        path: "../wit/normalizer-1.1.wit",
        world: "normalizer",
        pub_export_macro: true,
        export_macro_name: "__export_world",
        default_bindings_module: "walletlog_plugin::bindings",
    });
    #[cfg(feature = "contract-1-0")]
    wit_bindgen::generate!({
        path: "../wit/normalizer.wit",
        world: "normalizer",
        pub_export_macro: true,
        export_macro_name: "__export_world",
        default_bindings_module: "walletlog_plugin::bindings",
    });
}

#[cfg(target_arch = "wasm32")]
#[doc(hidden)]
pub mod glue;

/// Exports a [`Normalizer`] as the plugin's component entry points. Does
/// nothing outside WebAssembly, so the crate also builds natively.
#[macro_export]
macro_rules! export_normalizer {
    ($t:ty) => {
        #[cfg(target_arch = "wasm32")]
        #[doc(hidden)]
        pub struct __WalletlogExport;

        #[cfg(target_arch = "wasm32")]
        impl $crate::bindings::Guest for __WalletlogExport {
            fn info() -> $crate::bindings::PluginInfo {
                $crate::glue::info::<$t>()
            }
            fn normalize(
                request: $crate::bindings::Webhook,
            ) -> Result<
                ::std::vec::Vec<$crate::bindings::NormalizedEvent>,
                $crate::bindings::NormalizeError,
            > {
                $crate::glue::normalize::<$t>(request)
            }
        }

        #[cfg(target_arch = "wasm32")]
        $crate::bindings::__export_world!(__WalletlogExport);
    };
}
