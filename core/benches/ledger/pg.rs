//! The PostgreSQL figures of `cargo xtask bench`, on the run's server
//! (`WALLETLOG_TEST_PG`, or a private cluster), each beside its baseline:
//! plain prepared INSERTs into walletlog's own events table, one commit
//! each or 1000 to a transaction.

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use postgres::{Client, NoTls};
use walletlog::{EventId, GroupLimits, Ledger, NewEvent, Options};

use super::{
    balance_current_p50, eps, event, list_p99, progress, spread, threads_ingest, BATCH,
    THREADS_EVENTS,
};

const PG_SINGLE_EVENTS: usize = 4_000;
/// Rounds of the interleaved single-event figures.
const SINGLE_ROUNDS: usize = 8;
const PG_BATCH_EVENTS: usize = 20_000;
/// Single ingests per thread in the 4 processes x 4 threads figure.
const PG_PER_THREAD: usize = 500;

fn location(prefix: &str) -> String {
    walletlog_testpg::server().fresh_location(prefix)
}

fn ledger(location: &str) -> Ledger {
    Ledger::open(location, Options::default()).unwrap()
}

/// A plain client on the schema of `location`.
fn raw_client(location: &str) -> Client {
    Client::connect(location, NoTls).unwrap()
}

const RAW_INSERT: &str = "INSERT INTO events (sequence, event_id, wallet_id, provider, \
     event_type, amount, currency, provider_event_id, idempotency_key, metadata, occurred_at, \
     created_at) VALUES ($1, $2, $3, $4, $5, $6::text::numeric, $7, $8, NULL, '{}', $9, $10)";

fn raw_insert(c: &mut Client, stmt: &postgres::Statement, seq: usize, e: &NewEvent) {
    let id = uuid::Uuid::from_bytes(*EventId::generate().as_bytes());
    c.execute(
        stmt,
        &[
            &(seq as i64),
            &id,
            &e.wallet_id.as_str(),
            &e.provider.as_str(),
            &i16::from(e.event_type.code()),
            &e.amount.to_string(),
            &e.currency.as_str(),
            &e.provider_event_id.as_ref().map(|p| p.as_str()),
            &e.occurred_at.as_micros(),
            &e.occurred_at.as_micros(),
        ],
    )
    .unwrap();
}

/// Raw single INSERTs and single ledger ingests of the same events,
/// interleaved in rounds so that both see the same moments of a noisy
/// machine: (raw events/s, ledger events/s).
fn singles() -> (f64, f64) {
    let loc = location("bench_raw_single");
    drop(ledger(&loc));
    let mut c = raw_client(&loc);
    let stmt = c.prepare(RAW_INSERT).unwrap();
    let l = ledger(&location("bench_single"));
    let events: Vec<_> = (0..PG_SINGLE_EVENTS).map(spread).collect();
    let (mut raw, mut ingest) = (Duration::ZERO, Duration::ZERO);
    let round = events.len() / SINGLE_ROUNDS;
    for (r, chunk) in events.chunks(round).enumerate() {
        let start = Instant::now();
        for (i, e) in chunk.iter().enumerate() {
            raw_insert(&mut c, &stmt, r * round + i + 1, e);
        }
        raw += start.elapsed();
        let start = Instant::now();
        for e in chunk {
            assert!(l.ingest(e).unwrap().created());
        }
        ingest += start.elapsed();
    }
    (eps(events.len(), raw), eps(events.len(), ingest))
}

fn raw_batches() -> f64 {
    let loc = location("bench_raw_batch");
    drop(ledger(&loc));
    let mut c = raw_client(&loc);
    let stmt = c.prepare(RAW_INSERT).unwrap();
    let events: Vec<_> = (0..PG_BATCH_EVENTS).map(spread).collect();
    let start = Instant::now();
    for (n, chunk) in events.chunks(BATCH).enumerate() {
        c.batch_execute("BEGIN").unwrap();
        for (i, e) in chunk.iter().enumerate() {
            raw_insert(&mut c, &stmt, n * BATCH + i + 1, e);
        }
        c.batch_execute("COMMIT").unwrap();
    }
    eps(events.len(), start.elapsed())
}

fn ingest_batches() -> f64 {
    let l = ledger(&location("bench_batch"));
    let events: Vec<_> = (0..PG_BATCH_EVENTS).map(spread).collect();
    let start = Instant::now();
    for chunk in events.chunks(BATCH) {
        l.ingest_batch(chunk).unwrap();
    }
    eps(events.len(), start.elapsed())
}

/// `threads` threads of single ingests on one ledger of this process;
/// events `offset..` of their own.
fn writer_threads(l: &Ledger, threads: usize, offset: usize) {
    std::thread::scope(|s| {
        for t in 0..threads {
            s.spawn(move || {
                for i in 0..PG_PER_THREAD {
                    let n = offset + t * PG_PER_THREAD + i;
                    assert!(l.ingest(&spread(n)).unwrap().created());
                }
            });
        }
    });
}

/// The child side of `processes_ingest`: `WALLETLOG_BENCH_PG_CHILD` holds
/// `location offset`; waits for the go file, ingests, exits.
pub fn child(spec: &str) {
    let (go, rest) = spec.split_once(' ').unwrap();
    let (offset, location) = rest.split_once(' ').unwrap();
    let l = ledger(location);
    while !std::path::Path::new(go).exists() {
        std::thread::sleep(Duration::from_millis(1));
    }
    writer_threads(&l, 4, offset.parse().unwrap());
}

/// `processes` processes x 4 threads of single ingests on one schema.
fn processes_ingest(processes: usize) -> f64 {
    let loc = location("bench_procs");
    drop(ledger(&loc));
    let dir = tempfile::tempdir().unwrap();
    let go = dir.path().join("go");
    let children: Vec<_> = (0..processes)
        .map(|p| {
            let spec = format!("{} {} {loc}", go.display(), p * 4 * PG_PER_THREAD);
            Command::new(std::env::current_exe().unwrap())
                .env("WALLETLOG_BENCH_PG_CHILD", spec)
                .stdout(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    // Let every child connect and migrate-check before the clock starts.
    std::thread::sleep(Duration::from_millis(1500));
    let start = Instant::now();
    std::fs::write(&go, b"go").unwrap();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    let elapsed = start.elapsed();
    let total = processes * 4 * PG_PER_THREAD;
    assert_eq!(ledger(&loc).changes_since(0, 1).unwrap().len(), 1);
    eps(total, elapsed)
}

/// One process, 4 threads sharing one ledger.
fn one_process_threads() -> f64 {
    let l = ledger(&location("bench_threads"));
    let start = Instant::now();
    writer_threads(&l, 4, 0);
    eps(4 * PG_PER_THREAD, start.elapsed())
}

fn one_wallet(n: usize) -> Ledger {
    let l = ledger(&location("bench_wallet"));
    let mut batch = Vec::with_capacity(BATCH);
    for i in 0..n {
        batch.push(event("w", i));
        if batch.len() == BATCH {
            l.ingest_batch(&batch).unwrap();
            batch.clear();
        }
    }
    if !batch.is_empty() {
        l.ingest_batch(&batch).unwrap();
    }
    l
}

pub fn figures(out: &mut BTreeMap<&'static str, f64>, wanted: &dyn Fn(&[&str]) -> bool) {
    if wanted(&["pg_raw_single_eps", "pg_ingest_single_eps"]) {
        progress("PostgreSQL: raw single INSERTs and ledger single ingests, interleaved");
        let (raw, ingest) = singles();
        out.insert("pg_raw_single_eps", raw);
        out.insert("pg_ingest_single_eps", ingest);
    }
    if wanted(&["pg_raw_batch1000_eps"]) {
        progress("PostgreSQL: raw INSERTs in transactions of 1000");
        out.insert("pg_raw_batch1000_eps", raw_batches());
    }
    if wanted(&["pg_ingest_batch1000_eps"]) {
        progress("PostgreSQL: ledger batches of 1000");
        out.insert("pg_ingest_batch1000_eps", ingest_batches());
    }
    if wanted(&["pg_ingest_1proc4threads_eps"]) {
        progress("PostgreSQL: 1 process x 4 threads of single ingests");
        out.insert("pg_ingest_1proc4threads_eps", one_process_threads());
    }
    for (name, max_events) in [
        ("pg_ingest_threads16", walletlog::GROUP_EVENTS_DEFAULT),
        ("pg_ingest_threads16_ungrouped", 1),
    ] {
        if !wanted(&[&format!("{name}_eps")]) {
            continue;
        }
        progress(&format!(
            "PostgreSQL: 16 threads of single ingests, groups of at most {max_events}"
        ));
        let options = Options {
            group: GroupLimits {
                max_events,
                ..GroupLimits::default()
            },
            ..Options::default()
        };
        let l = Ledger::open(location("bench_threads16"), options).unwrap();
        let (rate, p50, p99) = threads_ingest(&l, 16, THREADS_EVENTS);
        for (suffix, value) in [("eps", rate), ("p50_us", p50), ("p99_us", p99)] {
            out.insert(
                Box::leak(format!("{name}_{suffix}").into_boxed_str()),
                value,
            );
        }
    }
    if wanted(&["pg_ingest_4proc_eps"]) {
        progress("PostgreSQL: 4 processes x 4 threads of single ingests");
        out.insert("pg_ingest_4proc_eps", processes_ingest(4));
    }
    for (n, label) in [(10_000usize, "10k"), (1_000_000, "1m")] {
        if !wanted(&[
            &format!("pg_list_page100_us_{label}"),
            &format!("pg_balance_current_us_{label}"),
        ]) {
            continue;
        }
        progress(&format!("PostgreSQL: one wallet with {n} events"));
        let l = one_wallet(n);
        let pages = if n == 10_000 { 1_000 } else { 3_000 };
        let key: &'static str = Box::leak(format!("pg_list_page100_us_{label}").into_boxed_str());
        out.insert(key, list_p99(&l, pages));
        let key: &'static str =
            Box::leak(format!("pg_balance_current_us_{label}").into_boxed_str());
        out.insert(key, balance_current_p50(&l, n));
    }
}
