//! Audit tampering: a second connection edits, deletes and inserts rows in
//! the SQLite file, and `verify_audit` must name the first thing wrong.

use walletlog::{AuditChain, AuditKey, AuditProblemKind, EventType, Ledger, Options};

use super::util::*;

/// A ledger with 5 events in 2 wallets, a duplicate and a conflict:
/// audit records 1..=7, events 1..=5.
fn populated(path: &std::path::Path, options: Options) -> Ledger {
    let l = Ledger::open(path, options).unwrap();
    l.ingest(&deposit("w1", "e1", "100", 0)).unwrap();
    l.ingest(&ev("w1", "e2", EventType::Fee, "1.5", "USD", 10))
        .unwrap();
    l.ingest(&deposit("w1", "e1", "100", 0)).unwrap(); // duplicate: record 3
    let _ = l.ingest(&deposit("w1", "e1", "7", 0)); // conflict: record 4
    l.ingest_batch(&[
        deposit("w2", "e3", "5", 20),
        deposit("w2", "e4", "6", 7200),
        deposit("w1", "e5", "2", 30),
    ])
    .unwrap();
    let report = l.verify_audit().unwrap();
    assert!(report.ok, "{:?}", report.first_problem);
    assert_eq!((report.records_checked, report.events_checked), (7, 5));
    l
}

/// Runs `sql` on a second connection and returns what verification found.
fn tamper(sql: &str) -> walletlog::AuditProblem {
    let (_dir, path) = temp_db();
    let l = populated(&path, Options::default());
    let raw = rusqlite::Connection::open(&path).unwrap();
    raw.execute_batch(sql).unwrap();
    let report = l.verify_audit().unwrap();
    assert!(!report.ok, "{sql} went unnoticed");
    assert!(report.reason().is_some());
    report.first_problem.unwrap()
}

#[test]
fn an_edited_event_is_named() {
    let p = tamper("UPDATE events SET amount = '1000' WHERE sequence = 2");
    assert_eq!(p.kind, AuditProblemKind::EventAltered);
    assert_eq!(p.event_sequence, Some(2));
    assert_eq!(p.record_sequence, Some(2));
    let p = tamper("UPDATE events SET metadata = '{\"x\":1}' WHERE sequence = 4");
    assert_eq!(
        (p.kind, p.event_sequence),
        (AuditProblemKind::EventAltered, Some(4))
    );
    let p = tamper("UPDATE events SET created_at = created_at + 1 WHERE sequence = 1");
    assert_eq!(
        (p.kind, p.event_sequence),
        (AuditProblemKind::EventAltered, Some(1))
    );
}

#[test]
fn a_deleted_event_is_named() {
    let p = tamper("DELETE FROM events WHERE sequence = 3");
    assert_eq!(p.kind, AuditProblemKind::EventMissing);
    assert_eq!(p.event_sequence, Some(3));
    assert_eq!(p.record_sequence, Some(5));
    let p = tamper("DELETE FROM events WHERE sequence = 5");
    assert_eq!(
        (p.kind, p.event_sequence),
        (AuditProblemKind::EventMissing, Some(5))
    );
}

#[test]
fn an_inserted_event_is_named() {
    let insert = "INSERT INTO events (sequence, event_id, wallet_id, provider, event_type, amount, currency, \
                  metadata, occurred_at, created_at) VALUES ({seq}, randomblob(16), 'w1', 'stripe', 0, '1000000', 'USD', '{}', 0, 0)";
    let p = tamper(&insert.replace("{seq}", "6"));
    assert_eq!(
        (p.kind, p.event_sequence),
        (AuditProblemKind::EventInserted, Some(6))
    );
    // Slipped into a gap in the middle of history: sequence 3 renumbered away first.
    let p = tamper(&format!(
        "UPDATE events SET sequence = 103 WHERE sequence = 3; {}",
        insert.replace("{seq}", "3")
    ));
    assert_eq!(p.kind, AuditProblemKind::EventAltered);
}

#[test]
fn an_edited_audit_record_is_named() {
    let p = tamper("UPDATE audit SET actor = 'plugin:evil@6.6.6' WHERE sequence = 3");
    assert_eq!(
        (p.kind, p.record_sequence),
        (AuditProblemKind::RecordAltered, Some(3))
    );
    let p = tamper("UPDATE audit SET body_sha256 = zeroblob(32) WHERE sequence = 6");
    assert_eq!(
        (p.kind, p.record_sequence),
        (AuditProblemKind::RecordAltered, Some(6))
    );
}

#[test]
fn a_deleted_audit_record_is_named() {
    let p = tamper("DELETE FROM audit WHERE sequence = 3");
    assert_eq!(
        (p.kind, p.record_sequence),
        (AuditProblemKind::ChainBroken, Some(4))
    );
    // The record that created an event: its event is now unaccounted for.
    let p = tamper("DELETE FROM audit WHERE sequence = 7");
    assert_eq!(
        (p.kind, p.event_sequence),
        (AuditProblemKind::EventInserted, Some(5))
    );
}

#[test]
fn an_inserted_audit_record_is_named() {
    let p = tamper(
        "INSERT INTO audit SELECT 8, recorded_at, action, event_id, event_sequence, matched_on, actor, \
         fingerprint, body_sha256, hash, randomblob(32), delivery_id FROM audit WHERE sequence = 7",
    );
    assert_eq!(
        (p.kind, p.record_sequence),
        (AuditProblemKind::RecordAltered, Some(8))
    );
    // Renumbered to make room in the middle.
    let p = tamper(
        "UPDATE audit SET sequence = sequence + 100 WHERE sequence >= 3; \
         UPDATE audit SET sequence = sequence - 99 WHERE sequence >= 103; \
         INSERT INTO audit SELECT 3, recorded_at, action, event_id, event_sequence, matched_on, actor, \
         fingerprint, body_sha256, prev_hash, hash, delivery_id FROM audit WHERE sequence = 2",
    );
    assert_eq!(p.kind, AuditProblemKind::ChainBroken);
    assert_eq!(p.record_sequence, Some(3));
}

#[test]
fn an_edited_balance_is_named() {
    let p = tamper("UPDATE rollups SET available = '1000000' WHERE wallet_id = 'w2' AND bucket = 9223372036854775807");
    assert_eq!(p.kind, AuditProblemKind::BalanceAltered);
    assert!(p.detail.contains("w2"), "{}", p.detail);
    let p = tamper("DELETE FROM rollups WHERE wallet_id = 'w2' AND bucket > 0 AND bucket < 9223372036854775807");
    assert_eq!(p.kind, AuditProblemKind::BalanceAltered);
}

/// Rewrites event 2's amount and recomputes its fingerprint and every hash
/// after it with plain SHA-256, as an attacker without the key would.
fn forge(path: &std::path::Path, ledger: &Ledger) {
    let raw = rusqlite::Connection::open(path).unwrap();
    raw.execute("UPDATE events SET amount = '0.01' WHERE sequence = 2", [])
        .unwrap();
    let forged = ledger.get_by_provider_event_id(
        &walletlog::Provider::new("stripe").unwrap(),
        &walletlog::ProviderEventId::new("e2").unwrap(),
    );
    let forged = forged.unwrap().unwrap();
    let mut records = ledger.audit_log(0, 100).unwrap();
    let plain = AuditChain::new(None);
    let mut prev = walletlog::GENESIS_HASH;
    for r in records.iter_mut() {
        if r.event_sequence == 2 && r.action == walletlog::AuditAction::Created {
            r.fingerprint = forged.fingerprint();
        }
        r.prev_hash = prev;
        r.hash = plain.hash(r);
        prev = r.hash;
        raw.execute(
            "UPDATE audit SET fingerprint = ?1, prev_hash = ?2, hash = ?3 WHERE sequence = ?4",
            rusqlite::params![
                r.fingerprint.as_slice(),
                r.prev_hash.as_slice(),
                r.hash.as_slice(),
                r.sequence as i64
            ],
        )
        .unwrap();
    }
    // Keep the stored balance consistent too.
    raw.execute(
        "UPDATE rollups SET available = '101.99' WHERE wallet_id = 'w1'",
        [],
    )
    .unwrap();
}

#[test]
fn a_keyed_chain_catches_a_consistent_rewrite() {
    // Unkeyed: a full, consistent rewrite is indistinguishable. This is why
    // the audit key exists.
    let (_dir, path) = temp_db();
    let l = populated(&path, Options::default());
    forge(&path, &l);
    assert!(
        l.verify_audit().unwrap().ok,
        "without a key the forgery is consistent"
    );

    let (_dir, path) = temp_db();
    let keyed = Options {
        audit_key: Some(AuditKey::new(*b"audit key").unwrap()),
        ..Options::default()
    };
    let l = populated(&path, keyed);
    forge(&path, &l);
    let report = l.verify_audit().unwrap();
    let p = report
        .first_problem
        .expect("the keyed chain must catch the forgery");
    assert_eq!(
        (p.kind, p.record_sequence),
        (AuditProblemKind::RecordAltered, Some(1))
    );
}
