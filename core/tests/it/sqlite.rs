//! What only the SQLite adapter has: a file, WAL, durability, migrations,
//! unique constraints, query plans.

use std::time::Duration;

use walletlog::adapters::sqlite::{schema_version, SqliteStorage, APPLICATION_ID};
use walletlog::{AuditKey, Durability, Error, Ledger, Options, SqliteConfig, StorageErrorKind};

use super::util::*;

fn storage_kind(e: Error) -> StorageErrorKind {
    match e {
        Error::Storage(s) => s.kind,
        other => panic!("expected a storage error, got {other}"),
    }
}

#[test]
fn events_survive_reopening() {
    let (_dir, path) = temp_db();
    {
        let l = sqlite_ledger(&path);
        l.ingest(&deposit("w1", "e1", "1.5", 0)).unwrap();
        l.ingest_batch(&[deposit("w1", "e2", "2", 1), deposit("w1", "e3", "3", 2)])
            .unwrap();
    }
    let l = sqlite_ledger(&path);
    assert_eq!(all_events(&l).len(), 3);
    assert_eq!(available(&l, "w1"), "6.5");
    assert!(l
        .ingest(&deposit("w1", "e1", "1.5", 0))
        .unwrap()
        .duplicate());
    assert!(l.verify_audit().unwrap().ok);
}

#[test]
fn runs_in_wal_with_the_chosen_durability() {
    let (_dir, path) = temp_db();
    for (durability, timeout) in [(Durability::Full, 30_000), (Durability::Normal, 1234)] {
        let s = SqliteStorage::open(
            &path,
            SqliteConfig {
                durability,
                busy_timeout: Duration::from_millis(timeout),
                ..SqliteConfig::default()
            },
        )
        .unwrap();
        let settings = s.settings().unwrap();
        assert_eq!(settings.journal_mode, "wal");
        assert_eq!(settings.durability, durability);
        assert_eq!(settings.busy_timeout, Duration::from_millis(timeout));
        assert_eq!(settings.schema_version, schema_version());
    }
    assert_eq!(
        Options::default().sqlite.durability,
        Durability::Full,
        "full is the default"
    );
}

#[test]
fn a_newer_schema_is_refused_not_downgraded() {
    let (_dir, path) = temp_db();
    drop(sqlite_ledger(&path));
    let raw = rusqlite::Connection::open(&path).unwrap();
    raw.execute_batch("PRAGMA user_version = 99").unwrap();
    drop(raw);
    let err = Ledger::open(&path, Options::default()).unwrap_err();
    let text = err.to_string();
    assert_eq!(storage_kind(err), StorageErrorKind::SchemaTooNew);
    assert!(
        text.contains("schema version 99") && text.contains("newer walletlog"),
        "{text}"
    );
    let raw = rusqlite::Connection::open(&path).unwrap();
    let v: i64 = raw
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(v, 99, "the file is left as it was");
}

#[test]
fn migrations_bring_a_new_file_to_the_latest_version() {
    let (_dir, path) = temp_db();
    drop(sqlite_ledger(&path));
    let raw = rusqlite::Connection::open(&path).unwrap();
    let v: i64 = raw
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    let app: i32 = raw
        .query_row("PRAGMA application_id", [], |r| r.get(0))
        .unwrap();
    assert_eq!(v, schema_version());
    assert_eq!(app, APPLICATION_ID);
    let mut tables: Vec<String> = raw
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    tables.sort();
    assert_eq!(tables, ["audit", "deliveries", "events", "meta", "rollups"]);
    // Opening again applies nothing twice.
    drop(raw);
    drop(sqlite_ledger(&path));
}

#[test]
fn foreign_and_damaged_files_are_refused() {
    let (dir, path) = temp_db();
    let raw = rusqlite::Connection::open(&path).unwrap();
    raw.execute_batch("CREATE TABLE customers (id INTEGER)")
        .unwrap();
    drop(raw);
    let err = Ledger::open(&path, Options::default()).unwrap_err();
    assert!(err.to_string().contains("not a walletlog ledger"), "{err}");
    assert_eq!(storage_kind(err), StorageErrorKind::Corrupt);

    let garbage = dir.path().join("garbage.db");
    std::fs::write(&garbage, vec![0x5a; 8192]).unwrap();
    let err = Ledger::open(&garbage, Options::default()).unwrap_err();
    assert_eq!(storage_kind(err), StorageErrorKind::Corrupt);

    let missing_dir = dir.path().join("no/such/dir/ledger.db");
    let err = Ledger::open(&missing_dir, Options::default()).unwrap_err();
    assert!(err.to_string().contains("cannot open"), "{err}");
    assert_eq!(storage_kind(err), StorageErrorKind::Io);
}

#[test]
fn unique_constraints_are_the_last_line_of_defence() {
    let (_dir, path) = temp_db();
    let l = sqlite_ledger(&path);
    let e = l
        .ingest(&deposit("w1", "e1", "1", 0).with_idempotency_key(idem("k")))
        .unwrap()
        .event;
    let raw = rusqlite::Connection::open(&path).unwrap();
    let insert = |event_id: Vec<u8>, pei: Option<&str>, key: Option<&str>| {
        raw.execute(
            "INSERT INTO events (event_id, wallet_id, provider, event_type, amount, currency, provider_event_id, \
             idempotency_key, metadata, occurred_at, created_at) VALUES (?1, 'w1', 'stripe', 0, '1', 'USD', ?2, ?3, '{}', 0, 0)",
            rusqlite::params![event_id, pei, key],
        )
    };
    let fresh = || uuid::Uuid::new_v4().as_bytes().to_vec();
    for (id, pei, key) in [
        (e.event_id.as_bytes().to_vec(), None, None),
        (fresh(), Some("e1"), None),
        (fresh(), None, Some("k")),
    ] {
        let err = insert(id, pei, key).unwrap_err();
        assert!(err.to_string().contains("UNIQUE"), "{err}");
    }
    // Without keys, or with keys no one has, rows are accepted.
    insert(fresh(), None, None).unwrap();
    insert(fresh(), Some("e2"), Some("k2")).unwrap();
}

#[test]
fn history_queries_use_the_wallet_index() {
    let (_dir, path) = temp_db();
    drop(sqlite_ledger(&path));
    let raw = rusqlite::Connection::open(&path).unwrap();
    let plan = |sql: &str| -> String {
        raw.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .unwrap()
            .query_map([], |r| r.get::<_, String>(3))
            .unwrap()
            .map(Result::unwrap)
            .collect::<Vec<_>>()
            .join("; ")
    };
    let page = plan(
        "SELECT * FROM events WHERE wallet_id = 'w' AND occurred_at <= 5 AND (occurred_at < 5 OR sequence < 9) \
         ORDER BY occurred_at DESC, sequence DESC LIMIT 101",
    );
    assert!(
        page.contains("USING INDEX events_wallet_time (wallet_id=? AND occurred_at<?)"),
        "{page}"
    );
    assert!(
        !page.contains("TEMP B-TREE"),
        "no sort of the wallet's history: {page}"
    );
    let as_of =
        plan("SELECT amount FROM events WHERE wallet_id = 'w' AND occurred_at BETWEEN 1 AND 2");
    assert!(
        as_of.contains("events_wallet_time (wallet_id=? AND occurred_at>? AND occurred_at<?)"),
        "{as_of}"
    );
    let buckets = plan("SELECT * FROM rollups WHERE wallet_id = 'w' AND bucket < 5");
    assert!(
        buckets.contains("PRIMARY KEY (wallet_id=? AND bucket<?)"),
        "{buckets}"
    );
    for (sql, index) in [
        (
            "SELECT * FROM events WHERE provider = 'p' AND provider_event_id = 'x'",
            "events_provider_event",
        ),
        (
            "SELECT * FROM events WHERE idempotency_key = 'k'",
            "events_idempotency_key",
        ),
        (
            "SELECT * FROM events WHERE event_id = x'00'",
            "sqlite_autoindex_events_1",
        ),
        (
            "SELECT * FROM rollups WHERE wallet_id = 'w' AND bucket = 9223372036854775807",
            "PRIMARY KEY",
        ),
    ] {
        assert!(plan(sql).contains(index), "{sql}: {}", plan(sql));
    }
}

#[test]
fn the_audit_key_must_match_the_ledger() {
    let (_dir, path) = temp_db();
    let keyed = |k: &[u8]| Options {
        audit_key: Some(AuditKey::new(k).unwrap()),
        ..Options::default()
    };
    let l = Ledger::open(&path, keyed(b"key one")).unwrap();
    l.ingest(&deposit("w1", "e1", "1", 0)).unwrap();
    drop(l);
    for (options, words) in [
        (keyed(b"key two"), "differs"),
        (Options::default(), "open it with its audit key"),
    ] {
        let err = Ledger::open(&path, options).unwrap_err();
        assert!(err.to_string().contains(words), "{err}");
        assert_eq!(storage_kind(err), StorageErrorKind::AuditKeyMismatch);
    }
    let l = Ledger::open(&path, keyed(b"key one")).unwrap();
    assert!(l.verify_audit().unwrap().ok);
    // The key never appears in a debug print.
    assert!(!format!("{:?}", keyed(b"key one")).contains("key one"));

    let (_dir2, plain) = temp_db();
    let l = sqlite_ledger(&plain);
    l.ingest(&deposit("w1", "e1", "1", 0)).unwrap();
    drop(l);
    let err = Ledger::open(&plain, keyed(b"late key")).unwrap_err();
    assert!(err.to_string().contains("not keyed"), "{err}");
}

#[test]
fn two_ledgers_on_one_file_see_each_other() {
    let (_dir, path) = temp_db();
    let a = sqlite_ledger(&path);
    let b = sqlite_ledger(&path);
    a.ingest(&deposit("w1", "e1", "1", 0)).unwrap();
    assert!(b.ingest(&deposit("w1", "e1", "1", 0)).unwrap().duplicate());
    b.ingest(&deposit("w1", "e2", "2", 0)).unwrap();
    assert_eq!(available(&a, "w1"), "3");
    assert!(a.verify_audit().unwrap().ok);
}

#[test]
fn an_online_backup_is_one_consistent_snapshot_while_writers_go_on() {
    let (dir, path) = temp_db();
    let l = std::sync::Arc::new(sqlite_ledger(&path));
    for i in 0..200 {
        l.ingest(&deposit("w1", &format!("e{i}"), "1", i)).unwrap();
    }
    // A writer keeps ingesting batches of 10 while three backups are taken.
    let writer = {
        let l = l.clone();
        std::thread::spawn(move || {
            for b in 0..60 {
                let batch: Vec<_> = (0..10)
                    .map(|k| deposit("w2", &format!("b{b}-{k}"), "2", 1000 + b * 10 + k))
                    .collect();
                l.ingest_batch(&batch).unwrap();
            }
        })
    };
    let copies: Vec<_> = (0..3)
        .map(|n| {
            let dest = dir.path().join(format!("copy{n}.db"));
            l.backup(&dest).unwrap();
            assert!(!dir.path().join(format!("copy{n}.db.partial")).exists());
            dest
        })
        .collect();
    writer.join().unwrap();
    for dest in &copies {
        let copy = sqlite_ledger(dest);
        let events = all_events(&copy);
        assert!(events.len() >= 200, "{}", events.len());
        assert_eq!(
            (events.len() - 200) % 10,
            0,
            "no batch is split: {}",
            events.len()
        );
        let report = copy.verify_audit().unwrap();
        assert!(report.ok, "{report:?}");
        assert_eq!(available(&copy, "w1"), "200");
    }
    // Never over an existing file; not from memory.
    let e = l.backup(&copies[0]).unwrap_err();
    assert!(
        matches!(e, Error::Validation(ref v) if v.field == "destination"),
        "{e}"
    );
    let e = Ledger::in_memory()
        .backup(dir.path().join("m.db"))
        .unwrap_err();
    assert_eq!(storage_kind(e), StorageErrorKind::Unsupported);
    assert!(!dir.path().join("m.db").exists());
    // A folder that does not exist: an I/O error, no partial file left.
    let e = l.backup(dir.path().join("no/such/dir/x.db")).unwrap_err();
    assert_eq!(storage_kind(e), StorageErrorKind::Io);
}

#[test]
fn damaged_metadata_is_reported_not_trusted() {
    let (_dir, path) = temp_db();
    let l = sqlite_ledger(&path);
    let meta = walletlog::Metadata::from_json(r#"{"order":"A-1"}"#).unwrap();
    let id = l
        .ingest(&deposit("w1", "e1", "1", 0).with_metadata(meta))
        .unwrap()
        .event
        .event_id;
    let db = rusqlite::Connection::open(&path).unwrap();
    for damage in ["[1,2]", "{\"a\":", "null", "{} {}"] {
        db.execute("UPDATE events SET metadata = ?1", [damage])
            .unwrap();
        let e = l.get(&id).unwrap_err();
        assert_eq!(e.code(), Some("corrupt"), "{damage}: {e}");
        assert!(e.to_string().contains("metadata"), "{e}");
        assert!(l.changes_since(0, 10).is_err(), "an export stops there");
    }
    // JSON that no `Value` can hold reads back, renders as its text (never
    // dropped, never a panic), and the audit names the event as altered.
    db.execute("UPDATE events SET metadata = ?1", [r#"{"x":1e400}"#])
        .unwrap();
    let e = l.get(&id).unwrap().unwrap();
    assert_eq!(walletlog::json::event(&e)["metadata"], r#"{"x":1e400}"#);
    let report = l.verify_audit().unwrap();
    assert_eq!(
        report.first_problem.map(|p| p.kind),
        Some(walletlog::AuditProblemKind::EventAltered)
    );
}

/// A ledger written at schema 2 (`tests/fixtures/ledgers/schema-2.db`:
/// three deliveries with the time-ordered ids of then, one ingested, one
/// unsupported, one ignored) opens migrated, with nothing lost: its audit
/// trail verifies, its deliveries keep their ids, a provider's retry of a
/// stored body is another attempt on that delivery (not a second one), its
/// dead letter replays, and a new body gets the id its body derives.
#[test]
fn a_schema_2_ledger_is_migrated_and_its_deliveries_keep_their_ids() {
    use super::inbox::{acme, acme_signed, install};
    use walletlog::{DeliveryId, InboxQuery, Order, Provider, ReplaySelection, Verdict};

    let (_dir, path) = temp_db();
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/fixtures/ledgers/schema-2.db"
    );
    std::fs::copy(fixture, &path).unwrap();
    let l = sqlite_ledger(&path);
    assert!(l.verify_audit().unwrap().ok);
    let stored = [
        ("01a2413e-63a4-7224-b381-66e65ec844f9", Verdict::Ingested),
        ("01a2413e-6406-70be-9504-a9dbdf75004a", Verdict::Unsupported),
        ("01a2413e-6465-72ab-a730-78ae6bc9968d", Verdict::Ignored),
    ];
    let listed = |l: &Ledger| {
        l.inbox(&InboxQuery::new().order(Order::Asc))
            .unwrap()
            .deliveries
    };
    let before = listed(&l);
    let seen: Vec<(String, Verdict)> = before
        .iter()
        .map(|d| (d.delivery_id.to_string(), d.verdict()))
        .collect();
    let expected: Vec<(String, Verdict)> =
        stored.iter().map(|(i, v)| (i.to_string(), *v)).collect();
    assert_eq!(seen, expected);
    assert_eq!(available(&l, "w1"), "12.5");

    // The provider retries the ingested body: the same delivery, now with
    // two attempts, and a duplicate.
    install(&l, "v1");
    let paid = l.delivery(&before[0].delivery_id).unwrap().unwrap();
    let again = l
        .ingest_webhook("acme", &acme_signed(paid.body.clone().unwrap()))
        .unwrap();
    assert!(again[0].duplicate());
    let retried = l.delivery(&before[0].delivery_id).unwrap().unwrap();
    assert_eq!(retried.attempt_count, 2);
    assert_eq!(retried.received_at, paid.received_at);

    // The dead letter replays under the fixed plugin.
    install(&l, "v2");
    let fixed = l
        .replay(&ReplaySelection {
            verdict: Some(Verdict::Unsupported),
            ..Default::default()
        })
        .unwrap();
    assert_eq!((fixed.replayed, fixed.created), (1, 1));
    assert_eq!(fixed.outcomes[0].0, before[1].delivery_id);
    assert_eq!(available(&l, "w1"), "7.5");

    // A new body: its id is the one its provider and body derive.
    let hook = acme("evt_4", "payment.succeeded", "w1", 100);
    l.ingest_webhook("acme", &hook).unwrap();
    // Its retry is found by that id while older ids are still stored.
    assert!(l.ingest_webhook("acme", &hook).unwrap()[0].duplicate());
    let after = listed(&l);
    assert_eq!(after.len(), 4, "the retries added no delivery");
    assert_eq!(after[3].attempt_count, 2);
    let sha: [u8; 32] = <sha2::Sha256 as sha2::Digest>::digest(&hook.body).into();
    let acme_provider = Provider::new("acme").unwrap();
    assert_eq!(
        after[3].delivery_id,
        DeliveryId::for_body(&acme_provider, &sha)
    );
    assert!(after[..3].iter().all(|d| !d
        .delivery_id
        .is_derived_from(&acme_provider, &d.body_sha256)));
    assert!(l.verify_audit().unwrap().ok);
    drop(l);

    // In the file: one row per body; the ids that are not derived are the
    // ones the provider-and-body index holds.
    let raw = rusqlite::Connection::open(&path).unwrap();
    let rows: Vec<(i64, i64)> = raw
        .prepare("SELECT sequence, id_derived FROM deliveries ORDER BY sequence")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(rows, [(1, 0), (2, 0), (3, 0), (4, 1)]);
    let indexed: i64 = raw
        .query_row(
            "SELECT count(*) FROM deliveries INDEXED BY deliveries_body WHERE id_derived = 0",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(indexed, 3);

    // While random ids are stored, a body is looked for among them too,
    // after derived-id lookups as before them; once none is left, by its
    // derived id alone. Retries stay attempts on their one delivery.
    let l = sqlite_ledger(&path);
    install(&l, "v1");
    let attempts = |l: &Ledger, id: &DeliveryId| l.delivery(id).unwrap().unwrap().attempt_count;
    assert!(l.ingest_webhook("acme", &hook).unwrap()[0].duplicate());
    assert_eq!(attempts(&l, &after[3].delivery_id), 3);
    let paid_body = paid.body.clone().unwrap();
    assert!(l
        .ingest_webhook("acme", &acme_signed(paid_body.clone()))
        .unwrap()[0]
        .duplicate());
    assert_eq!(attempts(&l, &before[0].delivery_id), 3);
    raw.execute_batch("DELETE FROM deliveries WHERE id_derived = 0")
        .unwrap();
    for n in [4, 5] {
        assert!(l.ingest_webhook("acme", &hook).unwrap()[0].duplicate());
        assert_eq!(attempts(&l, &after[3].delivery_id), n);
    }
    assert_eq!(listed(&l).len(), 1);
    // The switch is for good: a random id written by hand now (no build
    // writes one) is not looked for, so its body becomes a second delivery.
    raw.execute_batch(&format!(
        "INSERT INTO deliveries SELECT sequence + 1, randomblob(16), provider, received_at, \
         url, headers, X'{}', length(X'{}'), verdict, last_attempt_at, attempt_count, \
         attempts, 0, X'{}' FROM deliveries",
        hex(&<sha2::Sha256 as sha2::Digest>::digest(&paid_body)),
        hex(&paid_body),
        hex(&paid_body),
    ))
    .unwrap();
    l.ingest_webhook("acme", &acme_signed(paid_body)).unwrap();
    assert_eq!(listed(&l).len(), 3);
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Receipt order is sequence order from schema 4: a schema-3 ledger whose
/// deliveries were stored out of receipt order (two receipts racing for
/// the writer) opens with them renumbered by receipt time, ids, verdicts
/// and the audit trail untouched, and its time ranges found exactly.
#[test]
fn deliveries_stored_out_of_receipt_order_are_renumbered_in_receipt_order() {
    use super::inbox::{acme, install};
    use walletlog::{InboxQuery, Order, Verdict};

    let (_dir, path) = temp_db();
    let l = sqlite_ledger(&path);
    install(&l, "v1");
    for i in 0..3 {
        l.ingest_webhook(
            "acme",
            &acme(&format!("evt_{i}"), "payment.succeeded", "w1", 100),
        )
        .unwrap();
    }
    let stored = l
        .inbox(&InboxQuery::new().order(Order::Asc))
        .unwrap()
        .deliveries;
    drop(l);

    // As schema 3 could leave it: the first receipt stamped last.
    let raw = rusqlite::Connection::open(&path).unwrap();
    let late = stored[2].received_at.as_micros() + 1_000;
    raw.execute_batch(&format!(
        "UPDATE deliveries SET received_at = {late} WHERE sequence = 1;
         CREATE INDEX deliveries_received ON deliveries (received_at, sequence);
         PRAGMA user_version = 3;"
    ))
    .unwrap();
    drop(raw);

    let l = sqlite_ledger(&path);
    let listed: Vec<_> = l
        .inbox(&InboxQuery::new().order(Order::Asc))
        .unwrap()
        .deliveries
        .iter()
        .map(|d| (d.sequence, d.delivery_id, d.verdict()))
        .collect();
    let ids = [
        stored[1].delivery_id,
        stored[2].delivery_id,
        stored[0].delivery_id,
    ];
    assert_eq!(
        listed,
        vec![
            (1, ids[0], Verdict::Ingested),
            (2, ids[1], Verdict::Ingested),
            (3, ids[2], Verdict::Ingested)
        ]
    );
    let at = walletlog::Timestamp::from_micros("at", late).unwrap();
    let range = |q: InboxQuery| -> Vec<_> {
        l.inbox(&q)
            .unwrap()
            .deliveries
            .iter()
            .map(|d| d.delivery_id)
            .collect()
    };
    assert_eq!(range(InboxQuery::new().since(at).unwrap()), vec![ids[2]]);
    assert_eq!(
        range(InboxQuery::new().until(at).unwrap()),
        vec![ids[1], ids[0]]
    );
    assert!(l.verify_audit().unwrap().ok);
    drop(l);

    let raw = rusqlite::Connection::open(&path).unwrap();
    let version: i64 = raw
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, 4);
    let index: i64 = raw
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE name = 'deliveries_received'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(index, 0, "the receipt-time index is gone");
}

/// A receipt is never stored as received before the last delivery (here a
/// clock stepped back an hour): it takes the last one's time, and an event
/// without a time of its own is dated by that same time.
#[test]
fn a_delivery_is_never_received_before_the_last_one_stored() {
    use super::inbox::{acme, install};
    use super::providers::{paystack_webhook, PAYSTACK_KEY};
    use super::signature::fixture;
    use walletlog::{InboxQuery, Order, Secret};

    let (_dir, path) = temp_db();
    let l = sqlite_ledger(&path);
    install(&l, "v1");
    l.ingest_webhook("acme", &acme("evt_0", "payment.succeeded", "w1", 100))
        .unwrap();
    drop(l);
    let ahead = walletlog::Timestamp::now().as_micros() + 3_600_000_000;
    let raw = rusqlite::Connection::open(&path).unwrap();
    raw.execute(
        "UPDATE deliveries SET received_at = ?1 WHERE sequence = 1",
        [ahead],
    )
    .unwrap();
    drop(raw);

    let l = sqlite_ledger(&path);
    install(&l, "v1");
    l.install_plugin(&super::webhooks::plugin("paystack"))
        .unwrap();
    l.set_webhook_secret("paystack", Secret::new(PAYSTACK_KEY))
        .unwrap();
    let (acme_delivery, r) =
        l.receive_webhook("acme", &acme("evt_1", "payment.succeeded", "w1", 100));
    r.unwrap();
    let (paystack_delivery, r) = l.receive_webhook(
        "paystack",
        &paystack_webhook(fixture("paystack/refund.processed.json")),
    );
    let events = r.unwrap();
    let ahead = walletlog::Timestamp::from_micros("at", ahead).unwrap();
    assert_eq!(acme_delivery.unwrap().received_at, ahead);
    let paystack_delivery = paystack_delivery.unwrap();
    assert_eq!(paystack_delivery.received_at, ahead);
    assert!(events[0].event.occurred_at_estimated);
    assert_eq!(events[0].event.occurred_at, ahead, "dated by its delivery");
    let listed: Vec<u64> = l
        .inbox(&InboxQuery::new().order(Order::Asc))
        .unwrap()
        .deliveries
        .iter()
        .map(|d| d.sequence)
        .collect();
    assert_eq!(listed, vec![1, 2, 3]);
    let since: Vec<u64> = l
        .inbox(&InboxQuery::new().since(ahead).unwrap())
        .unwrap()
        .deliveries
        .iter()
        .map(|d| d.sequence)
        .collect();
    assert_eq!(since, vec![3, 2, 1]);
    assert!(l
        .inbox(&InboxQuery::new().until(ahead).unwrap())
        .unwrap()
        .deliveries
        .is_empty());
}
