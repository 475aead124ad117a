//! A writer killed with SIGKILL at random moments loses no event it
//! acknowledged and leaves no batch half stored.
//!
//! The child runs 16 writer threads on one ledger, so that their calls are
//! group-committed; each ingests single events and batches of 5
//! (durability full) and writes `ACK <id>` on its stdout pipe after each
//! call returns. The parent
//! kills it after a random number of acknowledgements plus a random delay,
//! so kills land anywhere: while the file is created and migrated, inside a
//! transaction, during the commit's fsync, between calls. Then it reopens
//! the file and checks every acknowledged event is stored exactly once, no
//! batch is partial, `PRAGMA integrity_check` is `ok`, the audit trail
//! verifies and the balance is the sum of what is stored.
//!
//! `cargo xtask test` runs 10 kills; `cargo xtask reliability` runs 200
//! (`WALLETLOG_KILLS`); `WALLETLOG_KILL_SEED` replays a run.

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use walletlog::Ledger;

use super::util::*;

const BATCH: usize = 5;
/// Threads of the killed process, all writing through one `Ledger`.
const WRITERS: usize = 16;

/// A small deterministic generator (PCG-style LCG), seeded per run.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[test]
fn a_killed_writer_loses_no_acknowledged_event() {
    let kills = env_number("WALLETLOG_KILLS", 10) as usize;
    let seed = env_number(
        "WALLETLOG_KILL_SEED",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64,
    );
    let mut rng = Rng(seed);
    let (_dir, path) = temp_db();
    let mut acked: Vec<String> = Vec::new();
    let mut killed_before_first_ack = 0;
    for round in 0..kills {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "it::kill::kill_child",
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads",
                "1",
            ])
            .env("WALLETLOG_KILL_DB", &path)
            .env("WALLETLOG_KILL_ROUND", round.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Mostly: after 0..40 acknowledgements, then 0..3 ms more, in the
        // middle of a call. One round in five: 0..8 ms after the start,
        // while the process starts, opens (or creates) the file, migrates.
        let (acks_before_kill, delay) = if rng.below(5) == 0 {
            (0, Duration::from_micros(rng.below(8_000)))
        } else {
            (
                rng.below(41) as usize,
                Duration::from_micros(rng.below(3_000)),
            )
        };
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut n = 0;
        let mut line = String::new();
        while n < acks_before_kill {
            line.clear();
            if stdout.read_line(&mut line).unwrap() == 0 {
                break;
            }
            if let Some(id) = line.trim_end().strip_prefix("ACK ") {
                acked.push(id.to_string());
                n += 1;
            }
        }
        std::thread::sleep(delay);
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        // Whatever the child acknowledged before it died counts too.
        for line in stdout.lines().map_while(Result::ok) {
            if let Some(id) = line.strip_prefix("ACK ") {
                acked.push(id.to_string());
                n += 1;
            }
        }
        if n == 0 {
            killed_before_first_ack += 1;
        }
    }

    let raw = rusqlite::Connection::open(&path).unwrap();
    let check: String = raw
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok", "seed {seed}");
    drop(raw);

    let l = sqlite_ledger(&path);
    let stored: Vec<String> = all_events(&l)
        .into_iter()
        .map(|e| e.provider_event_id.unwrap().to_string())
        .collect();
    let unique: HashSet<&String> = stored.iter().collect();
    assert_eq!(
        unique.len(),
        stored.len(),
        "no event stored twice (seed {seed})"
    );
    let mut acked_events = 0;
    for id in &acked {
        if id.starts_with('b') {
            for j in 0..BATCH {
                assert!(
                    unique.contains(&format!("{id}_{j}")),
                    "acknowledged batch {id} lost item {j} (seed {seed})"
                );
                acked_events += 1;
            }
        } else {
            assert!(
                unique.contains(id),
                "acknowledged event {id} lost (seed {seed})"
            );
            acked_events += 1;
        }
    }
    // A batch is whole or absent, acknowledged or not.
    let batches: HashSet<&str> = stored
        .iter()
        .filter(|s| s.starts_with('b'))
        .filter_map(|s| s.rsplit_once('_').map(|x| x.0))
        .collect();
    for b in &batches {
        let items = stored
            .iter()
            .filter(|s| s.rsplit_once('_').map(|x| x.0) == Some(*b))
            .count();
        assert_eq!(items, BATCH, "batch {b} is partly stored (seed {seed})");
    }
    let report = l.verify_audit().unwrap();
    assert!(report.ok, "seed {seed}: {:?}", report.first_problem);
    // Singles deposit 1, batch items 2: the balance is exactly what is stored.
    let singles = stored.iter().filter(|s| s.starts_with('s')).count();
    let expected = singles + 2 * (stored.len() - singles);
    if !stored.is_empty() {
        assert_eq!(available(&l, "w"), expected.to_string(), "seed {seed}");
    }
    println!(
        "kill test: {kills} SIGKILLs ({killed_before_first_ack} before the first acknowledgement), \
         {} acknowledged calls = {acked_events} events, all present once; {} events and {} batches \
         stored, none partial; integrity_check ok; audit verified ({} records); seed {seed}",
        acked.len(),
        stored.len(),
        batches.len(),
        report.records_checked
    );
}

/// The writers that get killed, 16 threads sharing one ledger (so their
/// calls are group-committed); run by
/// `a_killed_writer_loses_no_acknowledged_event`.
#[test]
#[ignore = "a child process of a_killed_writer_loses_no_acknowledged_event"]
fn kill_child() {
    let path = std::env::var("WALLETLOG_KILL_DB").expect("run by the kill test");
    let round = std::env::var("WALLETLOG_KILL_ROUND").unwrap();
    // Durability full: an acknowledged event has been fsynced.
    let l: Ledger = sqlite_ledger(Path::new(&path));
    std::thread::scope(|s| {
        for t in 0..WRITERS {
            let (l, round) = (&l, &round);
            s.spawn(move || {
                for i in 0i64.. {
                    if (i + t as i64) % 2 == 0 {
                        let id = format!("s{round}t{t}x{i}");
                        l.ingest(&deposit("w", &id, "1", i)).unwrap();
                        println!("ACK {id}");
                    } else {
                        let id = format!("b{round}t{t}x{i}");
                        let batch: Vec<_> = (0..BATCH)
                            .map(|j| deposit("w", &format!("{id}_{j}"), "2", i))
                            .collect();
                        l.ingest_batch(&batch).unwrap();
                        println!("ACK {id}");
                    }
                }
            });
        }
    });
}
