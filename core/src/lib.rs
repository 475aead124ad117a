//! walletlog: the transaction history of wallets.
//!
//! Providers report money that moved; walletlog takes every event in exactly
//! once (deduplicated on the event id, the provider's event id and an
//! idempotency key), refuses a conflicting replay loudly, audits every
//! ingestion in a hash chain, lists a wallet's history page by page, and
//! reconstructs its balance per currency at any point in time. Amounts are
//! exact decimals, never floats.
//!
//! The rules users rely on (the event model, the balance table, what a
//! conflict compares, every limit) are in `docs/events.md`; the map of the
//! code is `docs/architecture.md`.
//!
//! Cargo features: `sqlite` (the SQLite engine) and `plugins` (the
//! wasmtime sandbox for webhook normalizers), both on by default.
//!
//! ```
//! use walletlog::{Amount, Currency, EventType, Ledger, ListQuery, NewEvent, Provider,
//!                 ProviderEventId, Timestamp, WalletId};
//!
//! # fn main() -> Result<(), walletlog::Error> {
//! let ledger = Ledger::in_memory();
//! let wallet = WalletId::new("w1")?;
//! let deposit = NewEvent::new(
//!     wallet.clone(),
//!     Provider::new("stripe")?,
//!     EventType::Deposit,
//!     Amount::parse("12.34")?,
//!     Currency::new("USD")?,
//!     Timestamp::parse_rfc3339("occurred_at", "2026-01-02T03:04:05Z")?,
//! )
//! .with_provider_event_id(ProviderEventId::new("evt_1")?);
//!
//! assert!(ledger.ingest(&deposit)?.created());
//! // A retry is safe: nothing new is stored.
//! let again = ledger.ingest(&deposit)?;
//! assert_eq!(again.matched_on().map(|k| k.as_str()), Some("provider_event_id"));
//!
//! let page = ledger.list(&ListQuery::new(wallet.clone()).limit(50)?)?;
//! assert_eq!(page.events.len(), 1);
//! let balances = ledger.balance(&wallet, None)?;
//! assert_eq!(balances[0].available.to_string(), "12.34");
//! assert!(ledger.verify_audit()?.ok);
//! # Ok(())
//! # }
//! ```

pub mod adapters;
pub mod config;
pub mod domain;
pub mod encoding;
pub mod json;
pub mod limits;
pub mod metrics;
#[cfg(feature = "plugins")]
pub mod plugins;
pub mod ports;
pub mod service;
pub mod signature;
mod throttle;
#[cfg(feature = "plugins")]
mod webhook;

mod ledger;

pub use config::{
    Durability, Location, Options, PostgresConfig, RawAuditKey, RawOptions, SqliteConfig,
};
pub use domain::*;
pub use ledger::Ledger;
pub use limits::*;
#[cfg(feature = "plugins")]
pub use plugins::{PluginInfo, Webhook};
pub use service::{IngestContext, Service};
pub use signature::Secret;

/// The README's Rust example, compiled and run as a doctest.
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
