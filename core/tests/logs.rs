//! Every ingestion is logged through `tracing`: outcome, wallet, provider,
//! key matched, duration; never the metadata's contents.
//!
//! A binary of its own: `tracing` caches per-callsite interest globally, so
//! a test that installs a subscriber must not share its process with
//! threads that hit the same callsites without one.

use std::io::Write;
use std::sync::{Arc, Mutex};

use walletlog::{Ledger, Metadata};

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// What `f` returns, and the text it logged.
fn logged<T>(f: impl FnOnce() -> T) -> (T, String) {
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let out = tracing::subscriber::with_default(subscriber, f);
    let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    (out, text)
}

#[test]
fn ingestions_are_logged_without_metadata() {
    let ((), text) = logged(|| {
        let l = Ledger::in_memory();
        let e = deposit("wallet-42", "evt_1", "1")
            .with_metadata(Metadata::from_json(r#"{"card":"4242-SECRET-VALUE"}"#).unwrap());
        l.ingest(&e).unwrap();
        l.ingest(&e).unwrap();
        let _ = l.ingest(&deposit("wallet-42", "evt_1", "2"));
    });
    let lines: Vec<_> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(
        lines[0].contains("outcome=\"created\"") && lines[0].contains("wallet_id=wallet-42"),
        "{text}"
    );
    assert!(
        lines[0].contains("provider=stripe") && lines[0].contains("duration_us="),
        "{text}"
    );
    assert!(
        lines[1].contains("outcome=\"duplicate\"")
            && lines[1].contains("matched_on=\"provider_event_id\""),
        "{text}"
    );
    assert!(
        lines[2].contains("WARN") && lines[2].contains("outcome=\"conflict\""),
        "{text}"
    );
    assert!(
        !text.contains("SECRET"),
        "metadata leaked into the log: {text}"
    );
}

/// A receipt dated over a minute before the last stored delivery (another
/// host's clock ahead, or this one stepped back) is stored at the last
/// one's time, and says so in the log, once a minute at most per ledger.
#[test]
fn a_receipt_clamped_to_the_last_ones_time_is_logged_once_a_minute() {
    // All of it inside the subscriber: see the top of this file.
    let ((ahead, stored), text) = logged(|| {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.db");
        let l = acme_ledger(&path);
        l.ingest_webhook("acme", &acme("evt_0")).unwrap();
        drop(l);
        let ahead = walletlog::Timestamp::now().as_micros() + 3_600_000_000;
        rusqlite::Connection::open(&path)
            .unwrap()
            .execute(
                "UPDATE deliveries SET received_at = ?1 WHERE sequence = 1",
                [ahead],
            )
            .unwrap();
        let l = acme_ledger(&path);
        let stored: Vec<_> = (1..=3)
            .map(|i| {
                let (delivery, result) = l.receive_webhook("acme", &acme(&format!("evt_{i}")));
                result.unwrap();
                delivery.unwrap().received_at.as_micros()
            })
            .collect();
        drop(l);
        // A ledger of its own throttle: a retry of a stored body keeps its
        // first receipt and says nothing, the next new receipt warns.
        let l = acme_ledger(&path);
        let (_, retried) = l.receive_webhook("acme", &acme("evt_1"));
        assert!(!retried.unwrap()[0].created());
        let (_, r) = l.receive_webhook("acme", &acme("evt_4"));
        assert!(r.unwrap()[0].created());
        (ahead, stored)
    });
    assert_eq!(stored, vec![ahead; 3], "each takes the last one's time");
    let warnings: Vec<_> = text
        .lines()
        .filter(|l| l.contains("s behind the last delivery stored"))
        .collect();
    assert_eq!(warnings.len(), 2, "one per ledger: {text}");
    for w in warnings {
        assert!(
            w.contains("WARN")
                && w.contains("walletlog::inbox")
                && w.contains("provider=\"acme\"")
                && w.contains("unlogged_since_last=0"),
            "{text}"
        );
    }
}

const ACME_SECRET: &str = "acme_walletlog_test_secret";

fn acme_ledger(path: &std::path::Path) -> Ledger {
    let l = Ledger::open(path, walletlog::Options::default()).unwrap();
    let wasm = format!(
        "{}/../target/plugins/acme-v1.wasm",
        env!("CARGO_MANIFEST_DIR")
    );
    let wasm = std::fs::read(&wasm).unwrap_or_else(|e| {
        panic!("{wasm}: {e}; build the plugins first with `cargo xtask plugins`")
    });
    l.install_plugin(&wasm).unwrap();
    l.set_webhook_secret("acme", walletlog::Secret::new(ACME_SECRET))
        .unwrap();
    l
}

/// A signed acme payment of 1.00 USD to wallet w1.
fn acme(id: &str) -> walletlog::Webhook {
    use hmac::Mac;
    let body = format!(
        r#"{{"id":"{id}","type":"payment.succeeded","wallet":"w1","amount":100,"currency":"USD","created":1767225600}}"#
    )
    .into_bytes();
    let mut m = hmac::Hmac::<sha2::Sha256>::new_from_slice(ACME_SECRET.as_bytes()).unwrap();
    m.update(&body);
    let sig = walletlog::encoding::hex(&m.finalize().into_bytes());
    walletlog::Webhook {
        headers: vec![("X-Acme-Signature".into(), format!("sha256={sig}"))],
        body,
        url: None,
    }
}

fn deposit(wallet: &str, pei: &str, amount: &str) -> walletlog::NewEvent {
    walletlog::RawEvent {
        wallet_id: wallet.into(),
        provider: "stripe".into(),
        event_type: "deposit".into(),
        amount: amount.into(),
        currency: "USD".into(),
        provider_event_id: Some(pei.into()),
        occurred_at: "2026-01-01T00:00:00Z".into(),
        ..Default::default()
    }
    .validate()
    .unwrap()
}
