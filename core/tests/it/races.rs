//! Races on one SQLite file (and one PostgreSQL schema): 8 threads, then 4
//! OS processes, ingesting the
//! same logical events in different orders. Exactly one caller gets
//! `created` per logical event; every other gets `duplicate`; nobody sees a
//! storage error.

use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Stdio};

use walletlog::{EventId, EventType, IngestResult, Ledger, NewEvent};

use super::util::*;

const LOGICAL_EVENTS: usize = 150;

/// Logical event `i`, carrying different combinations of the three keys.
fn logical(i: usize) -> NewEvent {
    let ty = EventType::ALL[i % 8];
    let mut e = ev(
        &format!("w{}", i % 5),
        &format!("evt_{i}"),
        ty,
        &format!("{}.{:02}", i + 1, i % 100),
        "USD",
        i as i64,
    );
    if i.is_multiple_of(3) {
        e = e.with_idempotency_key(idem(&format!("idem_{i}")));
    }
    if i % 3 == 1 {
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&(i as u64).to_be_bytes());
        bytes[6] = 0x40; // a valid v4 layout
        bytes[8] = 0x80;
        e = e.with_event_id(EventId::from_bytes(bytes));
    }
    e
}

/// A permutation of the logical events, different per `seed`.
fn shuffled(seed: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..LOGICAL_EVENTS).collect();
    let mut state = seed
        .wrapping_mul(6_364_136_223_846_793_005)
        .wrapping_add(1_442_695_040_888_963_407);
    for i in (1..order.len()).rev() {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        order.swap(i, (state >> 33) as usize % (i + 1));
    }
    order
}

/// Ingests every logical event once, singly or in batches of 10, and
/// returns (logical index, created?) for each.
fn run_worker(ledger: &Ledger, seed: u64) -> Vec<(usize, bool)> {
    let order = shuffled(seed);
    let mut out = Vec::new();
    let record = |out: &mut Vec<(usize, bool)>, i: usize, r: &IngestResult| {
        assert_eq!(
            r.event.provider_event_id.as_ref().unwrap().as_str(),
            format!("evt_{i}")
        );
        out.push((i, r.created()));
    };
    if seed.is_multiple_of(2) {
        for i in order {
            let r = ledger
                .ingest(&logical(i))
                .unwrap_or_else(|e| panic!("worker {seed}, event {i}: {e}"));
            record(&mut out, i, &r);
        }
    } else {
        for chunk in order.chunks(10) {
            let batch: Vec<_> = chunk.iter().map(|&i| logical(i)).collect();
            let results = ledger
                .ingest_batch(&batch)
                .unwrap_or_else(|e| panic!("worker {seed}: {e}"));
            for (&i, r) in chunk.iter().zip(&results) {
                record(&mut out, i, r);
            }
        }
    }
    out
}

/// Replays every logical event the caller has already seen stored, with
/// different money fields (15 of them) or with keys of two different stored
/// events (5): each one must be refused as a conflict, whatever the order of
/// the other callers. Returns how many were refused.
fn conflicting_replays(ledger: &Ledger, worker: u64) -> usize {
    let mut refused = 0;
    for i in (0..LOGICAL_EVENTS).step_by(10) {
        let mut lie = logical(i);
        lie.amount = walletlog::Amount::parse(&format!("{}.5", 1000 + worker)).unwrap();
        match ledger.ingest(&lie) {
            Err(walletlog::Error::Conflict(c)) => {
                assert!(
                    matches!(&c.reason, walletlog::ConflictReason::DifferentFields(f) if f.contains(&"amount")),
                    "{c}"
                );
                refused += 1;
            }
            other => panic!("worker {worker}: a lie about event {i} was not refused: {other:?}"),
        }
    }
    for i in (0..LOGICAL_EVENTS).step_by(30) {
        // idem_{i} belongs to event i, evt_{i+1} to event i + 1.
        let mut crossed = logical(i);
        crossed.provider_event_id =
            Some(walletlog::ProviderEventId::new(format!("evt_{}", i + 1)).unwrap());
        match ledger.ingest(&crossed) {
            Err(walletlog::Error::Conflict(c)) => {
                assert!(
                    matches!(
                        c.reason,
                        walletlog::ConflictReason::KeysMatchDifferentEvents { .. }
                    ),
                    "{c}"
                );
                refused += 1;
            }
            other => panic!("worker {worker}: crossed keys of {i} not refused: {other:?}"),
        }
    }
    refused
}

/// Conflicting replays each caller makes (see `conflicting_replays`).
const CONFLICTS_PER_CALLER: usize = 20;

fn check_counts(outcomes: &[(usize, bool)], callers: usize, path: &Path) {
    check_counts_with_conflicts(outcomes, callers, 0, path)
}

fn check_counts_with_conflicts(
    outcomes: &[(usize, bool)],
    callers: usize,
    conflicts: usize,
    path: &Path,
) {
    let mut created: HashMap<usize, usize> = HashMap::new();
    let mut total: HashMap<usize, usize> = HashMap::new();
    for &(i, c) in outcomes {
        *total.entry(i).or_default() += 1;
        if c {
            *created.entry(i).or_default() += 1;
        }
    }
    for i in 0..LOGICAL_EVENTS {
        assert_eq!(
            created.get(&i),
            Some(&1),
            "logical event {i}: exactly one created"
        );
        assert_eq!(
            total.get(&i),
            Some(&callers),
            "logical event {i}: every caller got an answer"
        );
    }
    let l = sqlite_ledger(path);
    let events = all_events(&l);
    assert_eq!(
        events.len(),
        LOGICAL_EVENTS,
        "each logical event stored once"
    );
    let audit = l.audit_log(0, 10_000).unwrap();
    assert_eq!(
        audit.len(),
        LOGICAL_EVENTS * callers + conflicts,
        "every attempt audited, conflicts included"
    );
    assert_eq!(
        audit
            .iter()
            .filter(|r| r.action == walletlog::AuditAction::Conflict)
            .count(),
        conflicts
    );
    let report = l.verify_audit().unwrap();
    assert!(report.ok, "{:?}", report.first_problem);
    // The balances equal a fold over the logical events, whoever stored them.
    let expected = Ledger::in_memory();
    expected
        .ingest_batch(&(0..LOGICAL_EVENTS).map(logical).collect::<Vec<_>>())
        .unwrap();
    for w in 0..5 {
        let w = wallet(&format!("w{w}"));
        let strip = |b: Vec<walletlog::Balance>| {
            b.into_iter()
                .map(|b| (b.currency, b.available, b.held))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            strip(l.balance(&w, None).unwrap()),
            strip(expected.balance(&w, None).unwrap())
        );
    }
}

#[test]
fn eight_threads_race_on_one_file() {
    let (_dir, path) = temp_db();
    let shared = sqlite_ledger(&path);
    let outcomes: Vec<(usize, bool)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8u64)
            .map(|t| {
                let (shared, path) = (&shared, &path);
                s.spawn(move || {
                    // Half share one ledger (one writer connection); half open their own.
                    if t < 4 {
                        run_worker(shared, t)
                    } else {
                        run_worker(&sqlite_ledger(path), t)
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    check_counts(&outcomes, 8, &path);
}

/// Starts this test binary as a racing child running test `name`.
fn spawn_child(name: &str, path: &Path, seed: u64, go: &Path) -> std::process::Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            name,
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env("WALLETLOG_RACE_DB", path)
        .env("WALLETLOG_RACE_SEED", seed.to_string())
        .env("WALLETLOG_RACE_GO", go)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// In a racing child: its ledger path and seed, once the parent says go
/// (so that all children start together).
fn child_setup() -> (std::path::PathBuf, u64) {
    let path = std::env::var("WALLETLOG_RACE_DB").expect("run by a race test");
    let seed: u64 = std::env::var("WALLETLOG_RACE_SEED")
        .unwrap()
        .parse()
        .unwrap();
    let go = std::env::var("WALLETLOG_RACE_GO").unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !Path::new(&go).exists() {
        assert!(std::time::Instant::now() < deadline, "never told to start");
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    (path.into(), seed)
}

#[test]
fn four_processes_race_on_one_file() {
    let (dir, path) = temp_db();
    let go = dir.path().join("go");
    // The children also race to create the file and run its migrations.
    let children: Vec<_> = (0..4u64)
        .map(|seed| spawn_child("it::races::race_child", &path, seed + 100, &go))
        .collect();
    // Start them together, once all four processes exist.
    std::fs::write(&go, b"go").unwrap();
    let mut outcomes = Vec::new();
    for child in children {
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "child failed: {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let lines: Vec<_> = stdout
            .lines()
            .filter_map(|l| l.split_once("RACE ").map(|x| x.1))
            .collect();
        assert_eq!(lines.len(), LOGICAL_EVENTS, "{stdout}");
        for line in lines {
            let (i, what) = line.split_once(' ').unwrap();
            outcomes.push((i.parse().unwrap(), what == "created"));
        }
    }
    check_counts(&outcomes, 4, &path);
}

/// The body of one racing process; run by `four_processes_race_on_one_file`.
#[test]
#[ignore = "a child process of four_processes_race_on_one_file"]
fn race_child() {
    let (path, seed) = child_setup();
    let ledger = sqlite_ledger(&path);
    for (i, created) in run_worker(&ledger, seed) {
        println!("RACE {i} {}", if created { "created" } else { "duplicate" });
    }
}

/// 4 processes of 4 threads each (16 callers) on one file: colliding event
/// ids, provider event ids and idempotency keys, and conflicting replays.
/// `cargo xtask reliability` repeats it (`WALLETLOG_RACE_ROUNDS`).
#[test]
fn four_processes_of_four_threads_collide_and_conflict() {
    let rounds = std::env::var("WALLETLOG_RACE_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1usize);
    for round in 0..rounds {
        let (dir, path) = temp_db();
        four_by_four(&path, &dir.path().join("go"), round);
    }
}

/// The same on PostgreSQL: 16 callers in 4 processes, one schema.
#[cfg(feature = "postgres")]
#[test]
fn four_processes_of_four_threads_collide_and_conflict_on_postgres() {
    let dir = tempfile::tempdir().unwrap();
    let location = std::path::PathBuf::from(pg_location("race"));
    four_by_four(&location, &dir.path().join("go"), 0);
}

/// One round of 4 processes x 4 threads on the ledger at `path` (any
/// location); `go` is the file that starts them together.
fn four_by_four(path: &Path, go: &Path, round: usize) {
    {
        let children: Vec<_> = (0..4u64)
            .map(|p| {
                spawn_child(
                    "it::races::race_child_threads",
                    path,
                    round as u64 * 100 + p * 10,
                    go,
                )
            })
            .collect();
        std::fs::write(go, b"go").unwrap();
        let mut outcomes = Vec::new();
        let mut conflicts = 0;
        for child in children {
            let out = child.wait_with_output().unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success(),
                "child failed: {stdout}\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
            for line in stdout.lines() {
                if let Some(rest) = line.split_once("RACE ").map(|x| x.1) {
                    let (i, what) = rest.split_once(' ').unwrap();
                    outcomes.push((i.parse().unwrap(), what == "created"));
                } else if let Some(n) = line.split_once("CONFLICTS ").map(|x| x.1) {
                    conflicts += n.trim().parse::<usize>().unwrap();
                }
            }
        }
        assert_eq!(
            conflicts,
            16 * CONFLICTS_PER_CALLER,
            "every conflict reported"
        );
        check_counts_with_conflicts(&outcomes, 16, conflicts, path);
        println!(
            "race round {round}: 4 processes x 4 threads, {} offers of {LOGICAL_EVENTS} logical events, \
             each stored once; {conflicts} conflicting replays, each refused and audited; chain intact",
            outcomes.len()
        );
    }
}

/// One racing process of four threads (two share a ledger, two open their
/// own); run by `four_processes_of_four_threads_collide_and_conflict`.
#[test]
#[ignore = "a child process of four_processes_of_four_threads_collide_and_conflict"]
fn race_child_threads() {
    let (path, seed) = child_setup();
    let path = path.as_path();
    let shared = sqlite_ledger(path);
    let results: Vec<(Vec<(usize, bool)>, usize)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4u64)
            .map(|t| {
                let shared = &shared;
                s.spawn(move || {
                    let own;
                    let ledger = if t < 2 {
                        shared
                    } else {
                        own = sqlite_ledger(path);
                        &own
                    };
                    let outcomes = run_worker(ledger, seed + t);
                    (outcomes, conflicting_replays(ledger, seed + t))
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (outcomes, conflicts) in results {
        for (i, created) in outcomes {
            println!("RACE {i} {}", if created { "created" } else { "duplicate" });
        }
        println!("CONFLICTS {conflicts}");
    }
}
