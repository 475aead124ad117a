//! Builders shared by the tests.

use walletlog::{
    Amount, Currency, EventType, IdempotencyKey, Ledger, NewEvent, Options, Provider,
    ProviderEventId, Timestamp, WalletId,
};

/// 2026-01-01T00:00:00Z plus `secs` seconds.
pub fn ts(secs: i64) -> Timestamp {
    Timestamp::from_micros("occurred_at", 1_767_225_600_000_000 + secs * 1_000_000).unwrap()
}

pub fn wallet(id: &str) -> WalletId {
    WalletId::new(id).unwrap()
}

/// A stripe event on `wallet_id` with provider event id `pei`.
pub fn ev(
    wallet_id: &str,
    pei: &str,
    ty: EventType,
    amount: &str,
    currency: &str,
    at: i64,
) -> NewEvent {
    NewEvent::new(
        wallet(wallet_id),
        Provider::new("stripe").unwrap(),
        ty,
        Amount::parse(amount).unwrap(),
        Currency::new(currency).unwrap(),
        ts(at),
    )
    .with_provider_event_id(ProviderEventId::new(pei).unwrap())
}

pub fn deposit(wallet_id: &str, pei: &str, amount: &str, at: i64) -> NewEvent {
    ev(wallet_id, pei, EventType::Deposit, amount, "USD", at)
}

pub fn idem(key: &str) -> IdempotencyKey {
    IdempotencyKey::new(key).unwrap()
}

/// Every event stored, in storage order.
pub fn all_events(ledger: &Ledger) -> Vec<walletlog::WalletTransactionEvent> {
    let mut out = Vec::new();
    loop {
        let page = ledger
            .changes_since(
                out.last()
                    .map_or(0, |e: &walletlog::WalletTransactionEvent| e.sequence),
                10_000,
            )
            .unwrap();
        if page.is_empty() {
            return out;
        }
        out.extend(page);
    }
}

pub fn all_audit(ledger: &Ledger) -> Vec<walletlog::AuditRecord> {
    ledger.audit_log(0, 10_000).unwrap()
}

pub fn temp_db() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.db");
    (dir, path)
}

pub fn sqlite_ledger(path: &std::path::Path) -> Ledger {
    Ledger::open(path, Options::default()).unwrap()
}

/// A fresh schema on the test PostgreSQL server (see `walletlog-testpg`).
#[cfg(feature = "postgres")]
pub fn pg_location(prefix: &str) -> String {
    walletlog_testpg::server().fresh_location(prefix)
}

/// A ledger in a fresh schema on the test PostgreSQL server.
#[cfg(feature = "postgres")]
pub fn pg_ledger(prefix: &str) -> Ledger {
    Ledger::open(pg_location(prefix), Options::default()).unwrap()
}

/// The available balance of `wallet_id`'s first currency, as text.
pub fn available(ledger: &Ledger, wallet_id: &str) -> String {
    ledger.balance(&wallet(wallet_id), None).unwrap()[0]
        .available
        .to_string()
}

/// Lowercase hex, as signature headers carry it.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Runs each case, a `fn(&Ledger)`, on every engine: memory, a SQLite
/// file, and (with the `postgres` feature) a fresh schema of the test
/// server named by the prefix and the case. The calling module imports
/// this module's functions (`use super::util::*`).
macro_rules! on_every_engine {
    ($prefix:literal: $($case:ident),* $(,)?) => {
        mod memory {
            $(#[test] fn $case() { super::$case(&walletlog::Ledger::in_memory()); })*
        }
        mod sqlite {
            $(#[test] fn $case() {
                let (_dir, path) = super::temp_db();
                super::$case(&super::sqlite_ledger(&path));
            })*
        }
        #[cfg(feature = "postgres")]
        mod postgres {
            $(#[test] fn $case() {
                super::$case(&super::pg_ledger(concat!($prefix, stringify!($case))));
            })*
        }
    };
}
