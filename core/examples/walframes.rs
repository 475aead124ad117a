//! Temporary: WAL frames per commit, by b-tree. Not committed.
use std::path::Path;
use walletlog::*;

fn stripe_charge(i: usize) -> Vec<u8> {
    format!(
        r#"{{"id":"evt_bench_{i}","object":"event","account":"acct_bench","created":1767225600,"type":"charge.succeeded","data":{{"object":{{"id":"ch_bench_{i}","object":"charge","amount":{},"currency":"usd","customer":"cus_{}","metadata":{{}},"status":"succeeded"}}}}}}"#,
        1000 + i % 500,
        i % 100
    )
    .into_bytes()
}
fn signed(body: Vec<u8>) -> Webhook {
    use hmac::Mac;
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let mut m = hmac::Hmac::<sha2::Sha256>::new_from_slice(b"whsec_bench").unwrap();
    m.update(format!("{t}.").as_bytes());
    m.update(&body);
    let sig: String = m.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    Webhook { headers: vec![("Stripe-Signature".into(), format!("t={t},v1={sig}"))], body, url: None }
}
fn event(wallet: &str, i: usize) -> NewEvent {
    NewEvent::new(
        WalletId::new(wallet).unwrap(),
        Provider::new("stripe").unwrap(),
        EventType::Deposit,
        Amount::parse(&format!("{}.{:02}", i % 1000 + 1, i % 100)).unwrap(),
        Currency::new("USD").unwrap(),
        Timestamp::from_micros("occurred_at", 1_767_225_600_000_000 + i as i64 * 1_000_000).unwrap(),
    )
    .with_provider_event_id(ProviderEventId::new(format!("evt_{wallet}_{i}")).unwrap())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let dir = Path::new(&args[1]);
    let kind = &args[2];
    let warm: usize = args[3].parse().unwrap();
    let n: usize = args[4].parse().unwrap();
    let path = dir.join(format!("{kind}.db"));
    let ledger = Ledger::open(&path, Options { sqlite: SqliteConfig { durability: Durability::Normal, ..Default::default() }, ..Default::default() }).unwrap();
    if kind == "hook" {
        let wasm = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../target/plugins/stripe.wasm")).unwrap();
        ledger.install_plugin(&wasm).unwrap();
        ledger.set_webhook_secret("stripe", Secret::new("whsec_bench")).unwrap();
    }
    let go = |i: usize| {
        if kind == "hook" {
            assert!(ledger.ingest_webhook("stripe", &signed(stripe_charge(i))).unwrap()[0].created());
        } else {
            assert!(ledger.ingest(&event(&format!("wallet_{}", i % 100), i)).unwrap().created());
        }
    };
    for i in 0..warm { go(i); }
    let c = rusqlite::Connection::open(&path).unwrap();
    c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())).unwrap();
    for i in warm..warm + n { go(i); }
    std::fs::copy(&path, dir.join(format!("{kind}-copy.db"))).unwrap();
    std::fs::copy(dir.join(format!("{kind}.db-wal")), dir.join(format!("{kind}-copy.db-wal"))).unwrap();
    std::mem::forget(ledger);
}
