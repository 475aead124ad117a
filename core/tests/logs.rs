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

#[test]
fn ingestions_are_logged_without_metadata() {
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        let l = Ledger::in_memory();
        let e = deposit("wallet-42", "evt_1", "1")
            .with_metadata(Metadata::from_json(r#"{"card":"4242-SECRET-VALUE"}"#).unwrap());
        l.ingest(&e).unwrap();
        l.ingest(&e).unwrap();
        let _ = l.ingest(&deposit("wallet-42", "evt_1", "2"));
    });
    let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
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
