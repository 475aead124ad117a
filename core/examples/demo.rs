//! The main job, on the embedded default (SQLite): feed events from three
//! providers, replay some as providers do, refuse a conflicting replay, then
//! print each wallet's history and balance and verify the audit trail.
//! Running it twice gives the same ledger: the second run is all replays.
//!
//! `cargo xtask demo` runs it on `target/demo/walletlog.db`.

use walletlog::{
    Amount, Currency, Error, EventType, Ledger, ListQuery, Metadata, NewEvent, Options, Order,
    Provider, ProviderEventId, Timestamp, WalletId,
};

struct Feed {
    provider: &'static str,
    id: &'static str,
    wallet: &'static str,
    ty: EventType,
    amount: &'static str,
    currency: &'static str,
    at: &'static str,
}

const FEED: &[Feed] = &[
    Feed {
        provider: "stripe",
        id: "evt_1Q0charge",
        wallet: "alice",
        ty: EventType::Deposit,
        amount: "120.00",
        currency: "USD",
        at: "2026-03-01T09:15:00Z",
    },
    Feed {
        provider: "stripe",
        id: "evt_1Q0fee",
        wallet: "alice",
        ty: EventType::Fee,
        amount: "3.78",
        currency: "USD",
        at: "2026-03-01T09:15:00Z",
    },
    Feed {
        provider: "adyen",
        id: "EVJN42CKK3223223",
        wallet: "alice",
        ty: EventType::Deposit,
        amount: "75.5",
        currency: "EUR",
        at: "2026-03-02T14:00:00+01:00",
    },
    Feed {
        provider: "stripe",
        id: "evt_1Q0hold",
        wallet: "alice",
        ty: EventType::Hold,
        amount: "40",
        currency: "USD",
        at: "2026-03-03T10:00:00Z",
    },
    Feed {
        provider: "stripe",
        id: "evt_1Q0payout",
        wallet: "alice",
        ty: EventType::Withdrawal,
        amount: "50",
        currency: "USD",
        at: "2026-03-04T08:00:00Z",
    },
    Feed {
        provider: "stripe",
        id: "evt_1Q0release",
        wallet: "alice",
        ty: EventType::Release,
        amount: "40",
        currency: "USD",
        at: "2026-03-05T10:00:00Z",
    },
    Feed {
        provider: "paystack",
        id: "charge_3021",
        wallet: "bob",
        ty: EventType::Deposit,
        amount: "25000",
        currency: "NGN",
        at: "2026-03-01T12:00:00Z",
    },
    Feed {
        provider: "paystack",
        id: "charge_3021_fee",
        wallet: "bob",
        ty: EventType::Fee,
        amount: "375",
        currency: "NGN",
        at: "2026-03-01T12:00:00Z",
    },
    Feed {
        provider: "paystack",
        id: "transfer_88",
        wallet: "bob",
        ty: EventType::TransferOut,
        amount: "10000",
        currency: "NGN",
        at: "2026-03-02T16:30:00Z",
    },
    Feed {
        provider: "adyen",
        id: "EVJN42CKK3229999",
        wallet: "carol",
        ty: EventType::TransferIn,
        amount: "1500",
        currency: "JPY",
        at: "2026-03-03T01:00:00+09:00",
    },
    Feed {
        provider: "adyen",
        id: "EVJN42CKK3230000",
        wallet: "carol",
        ty: EventType::Refund,
        amount: "0.125",
        currency: "KWD",
        at: "2026-03-04T11:00:00Z",
    },
];

fn event(f: &Feed) -> Result<NewEvent, Error> {
    Ok(NewEvent::new(
        WalletId::new(f.wallet)?,
        Provider::new(f.provider)?,
        f.ty,
        Amount::parse(f.amount)?,
        Currency::new(f.currency)?,
        Timestamp::parse_rfc3339("occurred_at", f.at)?,
    )
    .with_provider_event_id(ProviderEventId::new(f.id)?)
    .with_metadata(Metadata::from_json(r#"{"source":"demo"}"#)?))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "walletlog.db".into());
    let ledger = Ledger::open(&path, Options::default())?;
    println!("walletlog demo: ledger {path}\n");

    println!("1. Providers report {} events:", FEED.len());
    let (mut created, mut duplicates) = (0, 0);
    for f in FEED {
        let r = ledger.ingest(&event(f)?)?;
        if r.created() {
            created += 1
        } else {
            duplicates += 1
        }
    }
    println!("   {created} created, {duplicates} already stored (a rerun of the demo replays everything)\n");

    println!("2. Providers retry: the last four events arrive again, newest first:");
    for f in FEED.iter().rev().take(4) {
        let r = ledger.ingest(&event(f)?)?;
        println!(
            "   {:<9} {:<17} -> {} (matched on {})",
            f.provider,
            f.id,
            if r.created() { "created" } else { "duplicate" },
            r.matched_on().map_or("-", |k| k.as_str())
        );
    }
    println!();

    println!("3. A provider replays evt_1Q0charge with a different amount:");
    let mut lie = event(&FEED[0])?;
    lie.amount = Amount::parse("1200.00")?;
    match ledger.ingest(&lie) {
        Err(Error::Conflict(c)) => println!("   refused: {c}\n"),
        other => println!("   unexpected: {other:?}\n"),
    }

    for wallet in ["alice", "bob", "carol"] {
        let w = WalletId::new(wallet)?;
        println!("Wallet {wallet}: history, oldest first");
        println!(
            "   {:<4} {:<22} {:<13} {:>10} {:<4} {:<9} provider event",
            "seq", "occurred at", "type", "amount", "cur", "provider"
        );
        let page = ledger.list(&ListQuery::new(w.clone()).order(Order::Asc).limit(100)?)?;
        for e in &page.events {
            println!(
                "   {:<4} {:<22} {:<13} {:>10} {:<4} {:<9} {}",
                e.sequence,
                e.occurred_at.to_string(),
                e.event_type.as_str(),
                e.amount.to_string(),
                e.currency.as_str(),
                e.provider.as_str(),
                e.provider_event_id.as_ref().map_or("", |p| p.as_str())
            );
        }
        println!("   balance:");
        for b in ledger.balance(&w, None)? {
            println!(
                "   {:<5} available {:>10}  held {:>6}  total {:>10}  ({} events)",
                b.currency.as_str(),
                b.available.to_string(),
                b.held.to_string(),
                b.total.to_string(),
                b.event_count
            );
        }
        println!();
    }

    let as_of = Timestamp::parse_rfc3339("as_of", "2026-03-03T12:00:00Z")?;
    println!("Alice's USD balance as of {as_of}, while 40 USD were held:");
    for b in ledger.balance(&WalletId::new("alice")?, Some(as_of))? {
        if b.currency.as_str() == "USD" {
            println!(
                "   available {}  held {}  total {}\n",
                b.available, b.held, b.total
            );
        }
    }

    let report = ledger.verify_audit()?;
    println!(
        "Audit trail: {} ({} records, {} events checked)",
        if report.ok { "intact" } else { "TAMPERED" },
        report.records_checked,
        report.events_checked
    );
    if let Some(p) = report.first_problem {
        println!("   first problem: {p}");
        std::process::exit(1);
    }
    println!("\nWebhooks through sandboxed provider plugins, and the Python, C and CLI faces, arrive with the next issues.");
    Ok(())
}
