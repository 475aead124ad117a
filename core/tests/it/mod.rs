#[macro_use]
mod util;
mod checkpoints;
mod config;
mod conformance;
mod fuzz_regressions;
mod group;
mod hostile;
mod inbox;
mod json;
mod kill;
mod metrics;
mod port;
#[cfg(feature = "postgres")]
mod postgres;
mod properties;
mod providers;
mod races;
mod signature;
mod sqlite;
mod tamper;
mod tidy;
mod validation;
mod webhooks;
