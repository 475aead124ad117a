//! `cargo xtask bench`: ledger figures beside their physical limits, on
//! SQLite files and a PostgreSQL server (`pg.rs`) in one run, printed as one JSON object on stdout (progress on
//! stderr). Never a timed assertion: the figures are for people to read.

#[cfg(feature = "postgres")]
#[path = "ledger/pg.rs"]
mod pg;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use rusqlite::{params, Connection};
use walletlog::{
    Amount, Currency, Durability, EventType, GroupLimits, Ledger, ListQuery, NewEvent, Options,
    Provider, ProviderEventId, SqliteConfig, Timestamp, WalletId,
};

const SINGLE_EVENTS: usize = 5_000;
const SINGLE_FULL_EVENTS: usize = 1_000;
const BATCH_EVENTS: usize = 20_000;
const BATCH: usize = 1_000;
/// Events of one threaded run, shared out among its threads.
const THREADS_EVENTS: usize = 8_000;

/// 2026-01-01T00:00:00Z in microseconds.
const T0: i64 = 1_767_225_600_000_000;

fn event(wallet: &str, i: usize) -> NewEvent {
    let ty = if i % 10 == 9 {
        EventType::Fee
    } else {
        EventType::Deposit
    };
    NewEvent::new(
        WalletId::new(wallet).unwrap(),
        Provider::new("stripe").unwrap(),
        ty,
        Amount::parse(&format!("{}.{:02}", i % 1000 + 1, i % 100)).unwrap(),
        Currency::new("USD").unwrap(),
        Timestamp::from_micros("occurred_at", T0 + i as i64 * 1_000_000).unwrap(),
    )
    .with_provider_event_id(ProviderEventId::new(format!("evt_{wallet}_{i}")).unwrap())
}

/// Events spread over 100 wallets, as a busy service sees them.
fn spread(i: usize) -> NewEvent {
    event(&format!("wallet_{}", i % 100), i)
}

fn open(path: &Path, durability: Durability) -> Ledger {
    open_grouped(path, durability, GroupLimits::default())
}

fn open_grouped(path: &Path, durability: Durability, group: GroupLimits) -> Ledger {
    Ledger::open(
        path,
        Options {
            sqlite: SqliteConfig {
                durability,
                ..SqliteConfig::default()
            },
            group,
            ..Options::default()
        },
    )
    .unwrap()
}

fn eps(n: usize, d: Duration) -> f64 {
    (n as f64 / d.as_secs_f64()).round()
}

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort();
    let i = ((samples.len() as f64 - 1.0) * p).round() as usize;
    samples[i]
}

fn us(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6 * 100.0).round() / 100.0
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e3 * 100.0).round() / 100.0
}

fn progress(what: &str) {
    eprintln!("bench: {what}");
}

fn ingest_single(dir: &Path, name: &str, durability: Durability, n: usize) -> (f64, Ledger) {
    let ledger = open(&dir.join(name), durability);
    let events: Vec<_> = (0..n).map(spread).collect();
    let start = Instant::now();
    for e in &events {
        assert!(ledger.ingest(e).unwrap().created());
    }
    (eps(n, start.elapsed()), ledger)
}

/// Single `ingest` calls from `threads` threads sharing one ledger: events
/// per second, and the median and p99 latency of one call in microseconds.
pub fn threads_ingest(ledger: &Ledger, threads: usize, total: usize) -> (f64, f64, f64) {
    let per = total / threads;
    let start = Instant::now();
    let mut latencies: Vec<Duration> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                s.spawn(move || {
                    let events: Vec<_> = (0..per).map(|i| spread(t * per + i)).collect();
                    let mut own = Vec::with_capacity(per);
                    for e in &events {
                        let call = Instant::now();
                        assert!(ledger.ingest(e).unwrap().created());
                        own.push(call.elapsed());
                    }
                    own
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    let rate = eps(per * threads, start.elapsed());
    let p50 = us(percentile(&mut latencies, 0.5));
    let p99 = us(percentile(&mut latencies, 0.99));
    (rate, p50, p99)
}

/// [`threads_ingest`] on a fresh SQLite file, durability full.
fn sqlite_threads(dir: &Path, threads: usize, group: GroupLimits) -> (f64, f64, f64) {
    let name = format!("threads{threads}_group{}.db", group.max_events);
    let ledger = open_grouped(&dir.join(name), Durability::Full, group);
    threads_ingest(&ledger, threads, THREADS_EVENTS)
}

fn ingest_batches(dir: &Path, name: &str, durability: Durability) -> f64 {
    let ledger = open(&dir.join(name), durability);
    let events: Vec<_> = (0..BATCH_EVENTS).map(spread).collect();
    let start = Instant::now();
    for chunk in events.chunks(BATCH) {
        ledger.ingest_batch(chunk).unwrap();
    }
    eps(BATCH_EVENTS, start.elapsed())
}

/// A connection to a fresh file with walletlog's schema, for plain INSERTs.
fn raw_connection(path: &Path, sync: &str) -> Connection {
    drop(open(path, Durability::Full)); // creates the schema
    let conn = Connection::open(path).unwrap();
    conn.execute_batch(&format!(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = {sync};"
    ))
    .unwrap();
    conn
}

fn raw_insert(conn: &Connection, seq: usize, e: &NewEvent) {
    let mut stmt = conn
        .prepare_cached(
            "INSERT INTO events (sequence, event_id, wallet_id, provider, event_type, amount, currency, \
             provider_event_id, idempotency_key, metadata, occurred_at, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        )
        .unwrap();
    stmt.execute(params![
        seq as i64,
        uuid::Uuid::now_v7().as_bytes().as_slice(),
        e.wallet_id.as_str(),
        e.provider.as_str(),
        e.event_type.code(),
        e.amount.to_string(),
        e.currency.as_str(),
        e.provider_event_id.as_ref().map(|p| p.as_str()),
        Option::<&str>::None,
        e.metadata.as_json(),
        e.occurred_at.as_micros(),
        T0,
    ])
    .unwrap();
}

fn raw_single(dir: &Path) -> f64 {
    let conn = raw_connection(&dir.join("raw_single.db"), "NORMAL");
    let events: Vec<_> = (0..SINGLE_EVENTS).map(spread).collect();
    let start = Instant::now();
    for (i, e) in events.iter().enumerate() {
        raw_insert(&conn, i + 1, e);
    }
    eps(SINGLE_EVENTS, start.elapsed())
}

fn raw_batches(dir: &Path) -> f64 {
    let conn = raw_connection(&dir.join("raw_batch.db"), "FULL");
    let events: Vec<_> = (0..BATCH_EVENTS).map(spread).collect();
    let start = Instant::now();
    for (c, chunk) in events.chunks(BATCH).enumerate() {
        conn.execute_batch("BEGIN IMMEDIATE").unwrap();
        for (i, e) in chunk.iter().enumerate() {
            raw_insert(&conn, c * BATCH + i + 1, e);
        }
        conn.execute_batch("COMMIT").unwrap();
    }
    eps(BATCH_EVENTS, start.elapsed())
}

/// One wallet with `n` events, one second apart, built with batches.
fn one_wallet(dir: &Path, n: usize) -> (Ledger, std::path::PathBuf) {
    let path = dir.join(format!("wallet_{n}.db"));
    let ledger = open(&path, Durability::Normal);
    let mut batch = Vec::with_capacity(BATCH);
    for i in 0..n {
        batch.push(event("w", i));
        if batch.len() == BATCH {
            ledger.ingest_batch(&batch).unwrap();
            batch.clear();
        }
    }
    ledger.ingest_batch(&batch).unwrap();
    (ledger, path)
}

/// p99 of 100-event pages, following cursors from the newest event.
fn list_p99(ledger: &Ledger, pages: usize) -> f64 {
    let base = ListQuery::new(WalletId::new("w").unwrap())
        .limit(100)
        .unwrap();
    let mut samples = Vec::with_capacity(pages);
    let mut query = base.clone();
    while samples.len() < pages {
        let start = Instant::now();
        let page = ledger.list(&query).unwrap();
        samples.push(start.elapsed());
        assert_eq!(page.events.len(), 100);
        query = match page.next_cursor {
            Some(c) => base.clone().cursor(&c).unwrap(),
            None => base.clone(),
        };
    }
    us(percentile(&mut samples, 0.99))
}

fn balance_current_p50(ledger: &Ledger, n: usize) -> f64 {
    let w = WalletId::new("w").unwrap();
    let mut samples: Vec<_> = (0..1000)
        .map(|_| {
            let start = Instant::now();
            let b = ledger.balance(&w, None).unwrap();
            let d = start.elapsed();
            assert_eq!(b[0].event_count, n as u64);
            d
        })
        .collect();
    us(percentile(&mut samples, 0.5))
}

/// SYNTHETIC: a Stripe charge.succeeded envelope for charge `i`.
fn stripe_charge(i: usize) -> Vec<u8> {
    format!(
        r#"{{"id":"evt_bench_{i}","object":"event","account":"acct_bench","created":1767225600,"type":"charge.succeeded","data":{{"object":{{"id":"ch_bench_{i}","object":"charge","amount":{},"currency":"usd","customer":"cus_{}","metadata":{{}},"status":"succeeded"}}}}}}"#,
        1000 + i % 500,
        i % 100
    )
    .into_bytes()
}

const STRIPE_SECRET: &str = "whsec_bench";

fn signed(body: Vec<u8>) -> walletlog::Webhook {
    use hmac::Mac;
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut m = hmac::Hmac::<sha2::Sha256>::new_from_slice(STRIPE_SECRET.as_bytes()).unwrap();
    m.update(format!("{t}.").as_bytes());
    m.update(&body);
    let sig: String = m
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    walletlog::Webhook {
        headers: vec![("Stripe-Signature".into(), format!("t={t},v1={sig}"))],
        body,
        url: None,
    }
}

fn stripe_wasm() -> Vec<u8> {
    plugin_wasm("stripe")
}

fn plugin_wasm(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/../target/plugins/{name}.wasm",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!("{path}: {e}; run `cargo xtask plugins` (cargo xtask bench does)")
    })
}

/// Plugin figures: the same Stripe normalizer natively and in the sandbox,
/// compile against cached load, and whole signed webhooks into SQLite.
fn plugin_figures(d: &Path, out: &mut BTreeMap<&str, f64>, wanted: &dyn Fn(&[&str]) -> bool) {
    use walletlog::plugins::{PluginHost, PluginLimits};
    use walletlog_plugin::Normalizer as _;
    let wasm = stripe_wasm();
    if wanted(&["normalize_native_us", "normalize_wasm_us"]) {
        progress("the Stripe normalizer, natively and in a fresh sandbox per call");
        let request = walletlog_plugin::Request {
            headers: vec![],
            body: stripe_charge(7),
            url: None,
        };
        let n = 20_000;
        let start = Instant::now();
        for _ in 0..n {
            assert_eq!(
                walletlog_plugin_stripe::Stripe::normalize(std::hint::black_box(&request))
                    .unwrap()
                    .len(),
                1
            );
        }
        out.insert("normalize_native_us", us(start.elapsed() / n));
        let host = PluginHost::new(PluginLimits::default(), None).unwrap();
        let plugin = host.install(&wasm).unwrap();
        let hook = walletlog::Webhook {
            headers: vec![],
            body: stripe_charge(7),
            url: None,
        };
        let n = 5_000;
        let start = Instant::now();
        for _ in 0..n {
            assert_eq!(
                host.normalize(&plugin, std::hint::black_box(&hook))
                    .unwrap()
                    .len(),
                1
            );
        }
        out.insert("normalize_wasm_us", us(start.elapsed() / n));
    }
    if wanted(&["plugin_compile_ms", "plugin_load_cached_ms"]) {
        progress("compiling a plugin, and loading it from the compile cache");
        let mut compile: Vec<_> = (0..3)
            .map(|_| {
                let host = PluginHost::new(PluginLimits::default(), None).unwrap();
                let start = Instant::now();
                host.install(&wasm).unwrap();
                start.elapsed()
            })
            .collect();
        out.insert("plugin_compile_ms", ms(percentile(&mut compile, 0.5)));
        let cache = d.join("plugin-cache");
        PluginHost::new(PluginLimits::default(), Some(cache.clone()))
            .unwrap()
            .install(&wasm)
            .unwrap();
        let mut cached: Vec<_> = (0..10)
            .map(|_| {
                let host = PluginHost::new(PluginLimits::default(), Some(cache.clone())).unwrap();
                let start = Instant::now();
                host.install(&wasm).unwrap();
                start.elapsed()
            })
            .collect();
        out.insert("plugin_load_cached_ms", ms(percentile(&mut cached, 0.5)));
    }
    if wanted(&[
        "webhook_ingest_eps",
        "webhook_paired_single_eps",
        "inbox_prune_us",
        "inbox_page_us",
    ]) {
        progress("signed Stripe webhooks: verify + normalize + store, durability normal");
        let ledger = open(&d.join("webhooks.db"), Durability::Normal);
        ledger.install_plugin(&wasm).unwrap();
        ledger
            .set_webhook_secret("stripe", walletlog::Secret::new(STRIPE_SECRET))
            .unwrap();
        // Taken in rounds that alternate with as many single ingests into
        // a ledger of their own: a burst of load on this shared machine
        // then falls on both halves of the ratio, not on one phase.
        let paired = open(&d.join("webhooks-paired-single.db"), Durability::Normal);
        let (rounds, per_round) = (6, 500);
        let hooks: Vec<_> = (0..rounds * per_round)
            .map(|i| signed(stripe_charge(i)))
            .collect();
        let singles: Vec<_> = (0..rounds * per_round).map(spread).collect();
        let (mut hooks_time, mut singles_time) = (Duration::ZERO, Duration::ZERO);
        // Which half goes first alternates too, so that neither always
        // runs right after the other's work.
        for round in 0..rounds {
            let part = round * per_round..(round + 1) * per_round;
            let run_singles = |time: &mut Duration| {
                let start = Instant::now();
                for e in &singles[part.clone()] {
                    assert!(paired.ingest(e).unwrap().created());
                }
                *time += start.elapsed();
            };
            let run_hooks = |time: &mut Duration| {
                let start = Instant::now();
                for h in &hooks[part.clone()] {
                    assert!(ledger.ingest_webhook("stripe", h).unwrap()[0].created());
                }
                *time += start.elapsed();
            };
            if round % 2 == 0 {
                run_singles(&mut singles_time);
                run_hooks(&mut hooks_time);
            } else {
                run_hooks(&mut hooks_time);
                run_singles(&mut singles_time);
            }
        }
        out.insert("webhook_ingest_eps", eps(hooks.len(), hooks_time));
        out.insert(
            "webhook_paired_single_eps",
            eps(singles.len(), singles_time),
        );
        // A retention pass over the inbox just filled (below its caps): what
        // every `prune_every`-th receipt also pays.
        let mut passes: Vec<_> = (0..20)
            .map(|_| {
                let start = Instant::now();
                assert_eq!(ledger.prune_inbox().unwrap(), Default::default());
                start.elapsed()
            })
            .collect();
        out.insert("inbox_prune_us", us(percentile(&mut passes, 0.5)));
        // A page of 50 deliveries from a cursor a third of the way down.
        let first = walletlog::InboxQuery::new().limit(1_000).unwrap();
        let cursor = ledger.inbox(&first).unwrap().next_cursor.unwrap();
        let page = walletlog::InboxQuery::new()
            .limit(50)
            .unwrap()
            .cursor(&cursor)
            .unwrap();
        let mut pages: Vec<_> = (0..200)
            .map(|_| {
                let start = Instant::now();
                assert_eq!(ledger.inbox(&page).unwrap().deliveries.len(), 50);
                start.elapsed()
            })
            .collect();
        out.insert("inbox_page_us", us(percentile(&mut pages, 0.5)));
    }
    if wanted(&["replay_eps"]) {
        progress("dead letters: refused by a plugin, then replayed under its fix");
        let ledger = open(&d.join("replay.db"), Durability::Normal);
        ledger.install_plugin(&plugin_wasm("acme-v1")).unwrap();
        ledger
            .set_webhook_secret("acme", walletlog::Secret::new(STRIPE_SECRET))
            .unwrap();
        let n = 2_000;
        for i in 0..n {
            let body = format!(
                r#"{{"id":"evt_{i}","type":"payout.paid","wallet":"w{}","amount":{},"currency":"USD","created":1767225600}}"#,
                i % 100,
                100 + i
            );
            use hmac::Mac;
            let mut m =
                hmac::Hmac::<sha2::Sha256>::new_from_slice(STRIPE_SECRET.as_bytes()).unwrap();
            m.update(body.as_bytes());
            let sig: String = m
                .finalize()
                .into_bytes()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            let hook = walletlog::Webhook {
                headers: vec![("x-acme-signature".into(), format!("sha256={sig}"))],
                body: body.into_bytes(),
                url: None,
            };
            assert!(ledger.ingest_webhook("acme", &hook).is_err());
        }
        ledger.install_plugin(&plugin_wasm("acme-v2")).unwrap();
        let start = Instant::now();
        let report = ledger
            .replay(&walletlog::ReplaySelection {
                verdict: Some(walletlog::Verdict::Unsupported),
                ..Default::default()
            })
            .unwrap();
        let elapsed = start.elapsed();
        assert_eq!((report.replayed, report.created), (n as u64, n as u64));
        out.insert("replay_eps", eps(n, elapsed));
    }
}

fn main() {
    #[cfg(feature = "postgres")]
    if let Ok(spec) = std::env::var("WALLETLOG_BENCH_PG_CHILD") {
        pg::child(&spec);
        return;
    }
    // `cargo xtask bench -- WORD...` runs only the phases whose figures
    // contain one of the words; no words runs everything.
    let words: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let wanted = |figures: &[&str]| {
        words.is_empty()
            || figures
                .iter()
                .any(|f| words.iter().any(|w| f.contains(w.as_str())))
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut out: BTreeMap<&str, f64> = BTreeMap::new();

    if wanted(&["raw_single_normal_eps"]) {
        progress("raw single inserts, synchronous NORMAL");
        out.insert("raw_single_normal_eps", raw_single(d));
    }
    if wanted(&["ingest_single_normal_eps", "duplicate_eps"]) {
        progress("ledger single ingests, durability normal");
        let (eps_, ledger) =
            ingest_single(d, "single_normal.db", Durability::Normal, SINGLE_EVENTS);
        out.insert("ingest_single_normal_eps", eps_);
        progress("replays of stored events (duplicates)");
        let events: Vec<_> = (0..SINGLE_EVENTS).map(spread).collect();
        let start = Instant::now();
        for e in &events {
            assert!(ledger.ingest(e).unwrap().duplicate());
        }
        out.insert("duplicate_eps", eps(SINGLE_EVENTS, start.elapsed()));
    }
    if wanted(&["ingest_single_full_eps"]) {
        progress("ledger single ingests, durability full");
        let (eps_, _) = ingest_single(d, "single_full.db", Durability::Full, SINGLE_FULL_EVENTS);
        out.insert("ingest_single_full_eps", eps_);
    }
    if wanted(&["raw_batch1000_full_eps"]) {
        progress("raw inserts in transactions of 1000, synchronous FULL");
        out.insert("raw_batch1000_full_eps", raw_batches(d));
    }
    if wanted(&["ingest_batch1000_full_eps"]) {
        progress("ledger batches of 1000, durability full");
        out.insert(
            "ingest_batch1000_full_eps",
            ingest_batches(d, "batch_full.db", Durability::Full),
        );
    }
    if wanted(&["ingest_batch1000_normal_eps"]) {
        progress("ledger batches of 1000, durability normal");
        out.insert(
            "ingest_batch1000_normal_eps",
            ingest_batches(d, "batch_normal.db", Durability::Normal),
        );
    }

    for threads in [1usize, 4, 16, 64] {
        let names = [
            format!("ingest_threads{threads}_full_eps"),
            format!("ingest_threads{threads}_full_p50_us"),
            format!("ingest_threads{threads}_full_p99_us"),
        ];
        if !wanted(&names.iter().map(String::as_str).collect::<Vec<_>>()) {
            continue;
        }
        progress(&format!(
            "{threads} threads of single ingests, durability full"
        ));
        let (rate, p50, p99) = sqlite_threads(d, threads, GroupLimits::default());
        for (name, value) in names.into_iter().zip([rate, p50, p99]) {
            out.insert(Box::leak(name.into_boxed_str()), value);
        }
    }
    if wanted(&["ingest_threads16_ungrouped_full_eps"]) {
        progress("16 threads of single ingests, durability full, one event per commit");
        let one_each = GroupLimits {
            max_events: 1,
            ..GroupLimits::default()
        };
        let (rate, p50, p99) = sqlite_threads(d, 16, one_each);
        out.insert("ingest_threads16_ungrouped_full_eps", rate);
        out.insert("ingest_threads16_ungrouped_full_p50_us", p50);
        out.insert("ingest_threads16_ungrouped_full_p99_us", p99);
    }

    plugin_figures(d, &mut out, &wanted);
    #[cfg(feature = "postgres")]
    pg::figures(&mut out, &wanted);

    for (n, label) in [(10_000usize, "10k"), (1_000_000, "1m")] {
        if !wanted(&[&format!("_{label}")]) {
            continue;
        }
        progress(&format!("one wallet with {n} events"));
        let (ledger, path) = one_wallet(d, n);
        let pages = if n == 10_000 { 1_000 } else { 3_000 };
        let key: &'static str = Box::leak(format!("list_page100_us_{label}").into_boxed_str());
        out.insert(key, list_p99(&ledger, pages));
        let key: &'static str = Box::leak(format!("balance_current_us_{label}").into_boxed_str());
        out.insert(key, balance_current_p50(&ledger, n));
        if n == 1_000_000 {
            let w = WalletId::new("w").unwrap();
            let mid = Timestamp::from_micros("as_of", T0 + (n as i64 / 2) * 1_000_000).unwrap();
            let mut samples: Vec<_> = (0..20)
                .map(|_| {
                    let start = Instant::now();
                    let b = ledger.balance(&w, Some(mid)).unwrap();
                    let d = start.elapsed();
                    assert_eq!(b[0].event_count, n as u64 / 2 + 1);
                    d
                })
                .collect();
            out.insert("balance_as_of_ms_1m", ms(percentile(&mut samples, 0.5)));
            let conn = Connection::open(&path).unwrap();
            let mut samples: Vec<_> = (0..3)
                .map(|_| {
                    let start = Instant::now();
                    let mut stmt = conn
                        .prepare_cached("SELECT amount FROM events WHERE wallet_id = ?1")
                        .unwrap();
                    let mut rows = stmt.query(["w"]).unwrap();
                    let mut count = 0usize;
                    let mut bytes = 0usize;
                    while let Some(r) = rows.next().unwrap() {
                        bytes += r.get_ref(0).unwrap().as_str().unwrap().len();
                        count += 1;
                    }
                    assert_eq!(count, n);
                    assert!(bytes > 0);
                    start.elapsed()
                })
                .collect();
            out.insert("wallet_scan_ms_1m", ms(percentile(&mut samples, 0.5)));
        }
    }

    let ratio = |a: &str, b: &str| match (out.get(a), out.get(b)) {
        (Some(x), Some(y)) => (x / y * 100.0).round() / 100.0,
        _ => f64::NAN,
    };
    let ratios = [
        (
            "ingest_single_normal_vs_raw",
            ratio("ingest_single_normal_eps", "raw_single_normal_eps"),
        ),
        (
            "ingest_batch1000_full_vs_raw",
            ratio("ingest_batch1000_full_eps", "raw_batch1000_full_eps"),
        ),
        (
            "ingest_threads16_full_vs_batch1000",
            ratio("ingest_threads16_full_eps", "ingest_batch1000_full_eps"),
        ),
        (
            "ingest_threads1_full_vs_single",
            ratio("ingest_threads1_full_eps", "ingest_single_full_eps"),
        ),
        (
            "duplicate_vs_ingest_single_normal",
            ratio("duplicate_eps", "ingest_single_normal_eps"),
        ),
        (
            "list_page100_1m_vs_10k",
            ratio("list_page100_us_1m", "list_page100_us_10k"),
        ),
        (
            "balance_current_1m_vs_10k",
            ratio("balance_current_us_1m", "balance_current_us_10k"),
        ),
        (
            "balance_as_of_1m_vs_wallet_scan",
            ratio("balance_as_of_ms_1m", "wallet_scan_ms_1m"),
        ),
        (
            "pg_ingest_single_vs_raw",
            ratio("pg_ingest_single_eps", "pg_raw_single_eps"),
        ),
        (
            "pg_ingest_batch1000_vs_raw",
            ratio("pg_ingest_batch1000_eps", "pg_raw_batch1000_eps"),
        ),
        (
            "pg_ingest_4proc_vs_single",
            ratio("pg_ingest_4proc_eps", "pg_ingest_single_eps"),
        ),
        (
            "pg_ingest_threads16_vs_batch1000",
            ratio("pg_ingest_threads16_eps", "pg_ingest_batch1000_eps"),
        ),
        (
            "pg_list_page100_1m_vs_10k",
            ratio("pg_list_page100_us_1m", "pg_list_page100_us_10k"),
        ),
        (
            "pg_balance_current_1m_vs_10k",
            ratio("pg_balance_current_us_1m", "pg_balance_current_us_10k"),
        ),
        (
            "normalize_wasm_vs_native",
            ratio("normalize_wasm_us", "normalize_native_us"),
        ),
        (
            "plugin_load_cached_vs_compile",
            ratio("plugin_load_cached_ms", "plugin_compile_ms"),
        ),
        (
            "webhook_ingest_vs_ingest_single_normal",
            ratio("webhook_ingest_eps", "ingest_single_normal_eps"),
        ),
        (
            "webhook_ingest_vs_paired_single",
            ratio("webhook_ingest_eps", "webhook_paired_single_eps"),
        ),
        (
            "replay_vs_webhook_ingest",
            ratio("replay_eps", "webhook_ingest_eps"),
        ),
    ];
    let mut fields: Vec<String> = out.iter().map(|(k, v)| format!("  \"{k}\": {v}")).collect();
    fields.extend(
        ratios
            .iter()
            .filter(|(_, v)| !v.is_nan())
            .map(|(k, v)| format!("  \"ratio_{k}\": {v}")),
    );
    println!("{{\n{}\n}}", fields.join(",\n"));
}
