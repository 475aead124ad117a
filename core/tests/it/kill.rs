//! A writer killed with SIGKILL at an arbitrary moment loses no event it
//! acknowledged and leaves no batch half stored. (The long form, with many
//! kills, belongs to `cargo xtask reliability`.)

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use walletlog::Ledger;

use super::util::*;

const ROUNDS: usize = 3;
const ACKS_BEFORE_KILL: usize = 60;
const BATCH: usize = 5;

#[test]
fn a_killed_writer_loses_no_acknowledged_event() {
    let (_dir, path) = temp_db();
    let mut acked: Vec<String> = Vec::new();
    for round in 0..ROUNDS {
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
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let mut n = 0;
        for line in stdout.lines() {
            let line = line.unwrap();
            if let Some((_, id)) = line.split_once("ACK ") {
                acked.push(id.to_string());
                n += 1;
                if n == ACKS_BEFORE_KILL {
                    break;
                }
            }
        }
        child.kill().unwrap(); // SIGKILL, mid-write most likely
        child.wait().unwrap();
        assert_eq!(n, ACKS_BEFORE_KILL, "the child stopped acknowledging early");
    }

    let raw = rusqlite::Connection::open(&path).unwrap();
    let check: String = raw
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    drop(raw);

    let l = sqlite_ledger(&path);
    let stored: Vec<String> = all_events(&l)
        .into_iter()
        .map(|e| e.provider_event_id.unwrap().to_string())
        .collect();
    let unique: HashSet<&String> = stored.iter().collect();
    assert_eq!(unique.len(), stored.len(), "no event stored twice");
    for id in &acked {
        if id.starts_with('b') {
            for j in 0..BATCH {
                assert!(
                    unique.contains(&format!("{id}_{j}")),
                    "acknowledged batch {id} lost item {j}"
                );
            }
        } else {
            assert!(unique.contains(id), "acknowledged event {id} lost");
        }
    }
    // A batch is whole or absent, acknowledged or not.
    let batches: HashSet<&str> = stored
        .iter()
        .filter(|s| s.starts_with('b'))
        .filter_map(|s| s.rsplit_once('_').map(|x| x.0))
        .collect();
    for b in batches {
        let items = stored
            .iter()
            .filter(|s| s.rsplit_once('_').map(|x| x.0) == Some(b))
            .count();
        assert_eq!(items, BATCH, "batch {b} is partly stored");
    }
    let report = l.verify_audit().unwrap();
    assert!(report.ok, "{:?}", report.first_problem);
}

/// The writer that gets killed; run by `a_killed_writer_loses_no_acknowledged_event`.
#[test]
#[ignore = "a child process of a_killed_writer_loses_no_acknowledged_event"]
fn kill_child() {
    let path = std::env::var("WALLETLOG_KILL_DB").expect("run by the kill test");
    let round = std::env::var("WALLETLOG_KILL_ROUND").unwrap();
    let l: Ledger = sqlite_ledger(Path::new(&path));
    for i in 0.. {
        if i % 2 == 0 {
            let id = format!("s{round}x{i}");
            l.ingest(&deposit("w", &id, "1", i)).unwrap();
            println!("ACK {id}");
        } else {
            let id = format!("b{round}x{i}");
            let batch: Vec<_> = (0..BATCH)
                .map(|j| deposit("w", &format!("{id}_{j}"), "2", i))
                .collect();
            l.ingest_batch(&batch).unwrap();
            println!("ACK {id}");
        }
    }
}
