//! Signed audit checkpoints on SQLite and PostgreSQL: a ledger that only
//! grew verifies against its checkpoints; a cut tail (with the rollups
//! fixed up so that the chain itself still verifies), an older copy, an
//! older copy written again, another ledger, a flipped bit and the wrong
//! key are each caught with their reason.

use walletlog::{AuditProblemKind, AuditReport, Ledger, SigningKey, VerifyingKey};

use super::util::*;

/// Runs SQL on the ledger's storage behind its back, as an operator could.
type Tamper<'a> = &'a dyn Fn(&str);

fn problem(report: &AuditReport) -> (AuditProblemKind, Option<u64>, String) {
    let p = report.first_problem.clone().expect("a problem");
    (p.kind, p.record_sequence, p.detail)
}

fn grow(l: &Ledger, wallet: &str, from: usize, n: usize) {
    for i in from..from + n {
        l.ingest(&deposit(wallet, &format!("{wallet}_{i}"), "5", i as i64))
            .unwrap();
    }
}

fn verify(l: &Ledger, checkpoints: &[&String], key: &VerifyingKey) -> AuditReport {
    let texts: Vec<&str> = checkpoints.iter().map(|s| s.as_str()).collect();
    l.verify_audit_with(&texts, key).unwrap()
}

/// Everything but the older copy, on any engine: `tamper` edits its
/// storage; `cut_tail` is the SQL that removes the records after 5, the
/// events of wallet `tail` and their rollups.
fn checkpoints_catch_what_the_chain_cannot(
    l: &Ledger,
    other: &Ledger,
    tamper: Tamper<'_>,
    cut_tail: &str,
) {
    let key = SigningKey::generate();
    let public = key.verifying_key();
    // Checkpoints of an empty trail, then after 5 records, then after 8.
    let empty = l.audit_checkpoint(&key).unwrap();
    assert!(empty.contains("\nsequence 0\n"), "{empty}");
    grow(l, "w1", 0, 5);
    let cp5 = l.audit_checkpoint(&key).unwrap();
    grow(l, "tail", 0, 3);
    let cp8 = l.audit_checkpoint(&key).unwrap();
    assert!(cp8.contains("\nsequence 8\n"), "{cp8}");
    // A ledger that only grew extends every checkpoint.
    grow(l, "tail", 3, 2);
    let report = verify(l, &[&empty, &cp5, &cp8], &public);
    assert!(report.ok, "{:?}", report.first_problem);
    assert_eq!(report.records_checked, 10);

    // Another ledger's checkpoint, a flipped bit, the wrong key.
    grow(other, "w1", 0, 8);
    let foreign = other.audit_checkpoint(&key).unwrap();
    let (kind, seq, detail) = problem(&verify(l, &[&foreign], &public));
    assert_eq!(
        (kind, seq),
        (AuditProblemKind::CheckpointOtherLedger, Some(8))
    );
    assert!(detail.starts_with("checkpoint 1 (record 8"), "{detail}");
    let flipped = {
        let at = cp5.find("head ").unwrap() + 5;
        let mut b = cp5.clone().into_bytes();
        b[at] = if b[at] == b'0' { b'1' } else { b'0' };
        String::from_utf8(b).unwrap()
    };
    let (kind, seq, _) = problem(&verify(l, &[&cp8, &flipped], &public));
    assert_eq!(
        (kind, seq),
        (AuditProblemKind::CheckpointBadSignature, Some(5))
    );
    let garbled = cp5.replace("sequence", "sequense");
    let (kind, _, detail) = problem(&verify(l, &[&garbled], &public));
    assert_eq!(kind, AuditProblemKind::CheckpointBadSignature);
    assert!(detail.contains("unreadable"), "{detail}");
    let stranger = SigningKey::generate().verifying_key();
    let (kind, _, detail) = problem(&verify(l, &[&cp5], &stranger));
    assert_eq!(kind, AuditProblemKind::CheckpointBadSignature);
    assert!(detail.contains("does not verify with this key"), "{detail}");

    // The tail cut, the rollups fixed up: the chain alone still verifies,
    // the checkpoint of record 8 does not.
    tamper(cut_tail);
    let plain = l.verify_audit().unwrap();
    assert!(plain.ok, "the cut is consistent: {:?}", plain.first_problem);
    assert_eq!(plain.records_checked, 5);
    let (kind, seq, detail) = problem(&verify(l, &[&cp5, &cp8], &public));
    assert_eq!(
        (kind, seq),
        (AuditProblemKind::TailCut, Some(6)),
        "{detail}"
    );
    assert!(detail.starts_with("checkpoint 2 (record 8"), "{detail}");
    assert!(
        verify(l, &[&empty, &cp5], &public).ok,
        "record 5 is still there"
    );

    // Written again after the cut: record 8 exists with another hash.
    grow(l, "again", 0, 4);
    let (kind, seq, detail) = problem(&verify(l, &[&cp5, &cp8], &public));
    assert_eq!(
        (kind, seq),
        (AuditProblemKind::RolledBack, Some(8)),
        "{detail}"
    );
    assert_eq!(
        verify(l, &[&cp8], &public)
            .first_problem
            .unwrap()
            .kind
            .as_str(),
        "rolled_back"
    );
}

#[test]
fn sqlite_checkpoints_catch_a_cut_tail_another_ledger_and_bad_signatures() {
    let (_dir, path) = temp_db();
    let (_other_dir, other_path) = temp_db();
    let l = sqlite_ledger(&path);
    let raw = rusqlite::Connection::open(&path).unwrap();
    checkpoints_catch_what_the_chain_cannot(
        &l,
        &sqlite_ledger(&other_path),
        &|sql| raw.execute_batch(sql).unwrap(),
        "DELETE FROM audit WHERE sequence > 5;
         DELETE FROM events WHERE wallet_id = 'tail';
         DELETE FROM rollups WHERE wallet_id = 'tail';",
    );
}

#[test]
fn memory_checkpoints_name_their_ledger_and_key() {
    let l = Ledger::in_memory();
    let key = SigningKey::generate();
    grow(&l, "w1", 0, 3);
    let cp = l.audit_checkpoint(&key).unwrap();
    assert!(verify(&l, &[&cp], &key.verifying_key()).ok);
    let other = Ledger::in_memory();
    grow(&other, "w1", 0, 3);
    let report = verify(&other, &[&cp], &key.verifying_key());
    assert_eq!(
        report.first_problem.unwrap().kind,
        AuditProblemKind::CheckpointOtherLedger
    );
}

#[test]
fn sqlite_an_older_copy_is_caught_by_a_later_checkpoint() {
    let (dir, path) = temp_db();
    let l = sqlite_ledger(&path);
    let key = SigningKey::generate();
    grow(&l, "w1", 0, 4);
    let copy = dir.path().join("older.db");
    l.backup(&copy).unwrap();
    grow(&l, "w1", 4, 3);
    let cp = l.audit_checkpoint(&key).unwrap();
    // Last week's backup restored: its own chain verifies, the checkpoint
    // taken since does not.
    let restored = sqlite_ledger(&copy);
    assert!(restored.verify_audit().unwrap().ok);
    let report = verify(&restored, &[&cp], &key.verifying_key());
    let (kind, seq, detail) = problem(&report);
    assert_eq!((kind, seq), (AuditProblemKind::TailCut, Some(5)));
    assert!(detail.contains("older copy"), "{detail}");
    // The copy is the same ledger: its identity came with it.
    let cp_copy = restored.audit_checkpoint(&key).unwrap();
    assert!(verify(&l, &[&cp_copy], &key.verifying_key()).ok);
    // The restored copy takes new writes: record 7 now has another hash.
    grow(&restored, "w2", 0, 5);
    let (kind, seq, _) = problem(&verify(&restored, &[&cp], &key.verifying_key()));
    assert_eq!((kind, seq), (AuditProblemKind::RolledBack, Some(7)));
    // Keys never reach the ledger file.
    drop(restored);
    let bytes = std::fs::read(&copy).unwrap();
    let secret = key.to_bytes();
    assert!(!bytes.windows(32).any(|w| w == secret));
}

#[cfg(feature = "postgres")]
#[test]
fn postgres_checkpoints_catch_a_cut_tail_another_ledger_and_bad_signatures() {
    let location = pg_location("checkpoints");
    let schema = location
        .rsplit_once("search_path%3D")
        .expect("a test location")
        .1
        .to_owned();
    let l = Ledger::open(&location, walletlog::Options::default()).unwrap();
    let client = std::cell::RefCell::new(walletlog_testpg::server().client());
    // The operator disables the append-only triggers to cut the tail.
    let cut = format!(
        "ALTER TABLE {schema}.audit DISABLE TRIGGER audit_append_only;
         ALTER TABLE {schema}.events DISABLE TRIGGER events_append_only;
         DELETE FROM {schema}.audit WHERE sequence > 5;
         DELETE FROM {schema}.events WHERE wallet_id = 'tail';
         DELETE FROM {schema}.rollups WHERE wallet_id = 'tail';"
    );
    checkpoints_catch_what_the_chain_cannot(
        &l,
        &pg_ledger("checkpoints_other"),
        &|sql| client.borrow_mut().batch_execute(sql).unwrap(),
        &cut,
    );
}

#[test]
fn a_ledger_made_before_checkpoints_has_an_identity_every_copy_shares() {
    let (dir, path) = temp_db();
    let l = sqlite_ledger(&path);
    grow(&l, "w1", 0, 3);
    drop(l);
    // As a ledger of an earlier version: no stored identity.
    let raw = rusqlite::Connection::open(&path).unwrap();
    raw.execute_batch("DELETE FROM meta WHERE key = 'ledger_id'")
        .unwrap();
    drop(raw);
    let copy = dir.path().join("copy.db");
    std::fs::copy(&path, &copy).unwrap();
    let (l, c) = (sqlite_ledger(&path), sqlite_ledger(&copy));
    let key = SigningKey::generate();
    let cp = l.audit_checkpoint(&key).unwrap();
    assert!(
        verify(&c, &[&cp], &key.verifying_key()).ok,
        "the copy is the same ledger"
    );
    // Opening wrote nothing: the identity is derived, not stored.
    let raw = rusqlite::Connection::open(&path).unwrap();
    let n: i64 = raw
        .query_row(
            "SELECT count(*) FROM meta WHERE key = 'ledger_id'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(n, 0);
    let (_o, other) = temp_db();
    let other = sqlite_ledger(&other);
    grow(&other, "w1", 0, 3);
    let report = verify(&other, &[&cp], &key.verifying_key());
    assert_eq!(
        report.first_problem.unwrap().kind,
        AuditProblemKind::CheckpointOtherLedger
    );
}

#[test]
fn a_forged_checkpoint_cannot_hide_a_verified_one_failing() {
    let (_dir, path) = temp_db();
    let l = sqlite_ledger(&path);
    let key = SigningKey::generate();
    grow(&l, "w1", 0, 2);
    grow(&l, "tail", 0, 2);
    let cp4 = l.audit_checkpoint(&key).unwrap();
    let raw = rusqlite::Connection::open(&path).unwrap();
    raw.execute_batch(
        "DELETE FROM audit WHERE sequence > 2;
         DELETE FROM events WHERE wallet_id = 'tail';
         DELETE FROM rollups WHERE wallet_id = 'tail';",
    )
    .unwrap();
    // A forged document claiming record 1 comes first, by sequence.
    let forged = cp4.replace("sequence 4", "sequence 1");
    let (kind, seq, _) = problem(&verify(&l, &[&forged, &cp4], &key.verifying_key()));
    assert_eq!((kind, seq), (AuditProblemKind::TailCut, Some(3)));
}
