//! The PostgreSQL engine on a real server (see `walletlog-testpg`): opening
//! and migrations, a schema per tenant, the database refusing rewrites,
//! tampering behind its back, lost connections, an ambiguous commit, the
//! pool's limit, a crash and restart while processes ingest.

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use walletlog::adapters::postgres::{schema_version, PostgresStorage};
use walletlog::{
    AuditAction, AuditProblemKind, Durability, Error, Ledger, NewEvent, Options, PostgresConfig,
    StorageErrorKind,
};

use super::util::*;

fn storage_kind(e: &Error) -> StorageErrorKind {
    match e {
        Error::Storage(s) => s.kind,
        other => panic!("a storage error, not {other:?}"),
    }
}

/// The schema a location selects (`...options=-csearch_path%3D<schema>`).
fn schema_of(location: &str) -> String {
    location
        .rsplit_once("search_path%3D")
        .expect("a test location")
        .1
        .to_owned()
}

fn populated(location: &str, n: usize) -> Ledger {
    let l = Ledger::open(location, Options::default()).unwrap();
    for i in 0..n {
        l.ingest(&deposit("w1", &format!("evt_{i}"), "10.25", i as i64 * 60))
            .unwrap();
    }
    l
}

#[test]
fn opening_migrates_and_each_schema_is_its_own_ledger() {
    let (a, b) = (pg_location("tenant_a"), pg_location("tenant_b"));
    let la = populated(&a, 3);
    let lb = populated(&b, 1);
    assert_eq!(all_events(&la).len(), 3);
    assert_eq!(all_events(&lb).len(), 1);
    assert_eq!(available(&la, "w1"), "30.75");
    let s = PostgresStorage::open(&a, PostgresConfig::default()).unwrap();
    let settings = s.settings().unwrap();
    assert_eq!(settings.schema, schema_of(&a));
    assert_eq!(settings.schema_version, schema_version());
    assert_eq!(settings.synchronous_commit, "on");
    let other = PostgresStorage::open(&b, PostgresConfig::default()).unwrap();
    assert_ne!(settings.lock_key, other.settings().unwrap().lock_key);
    let normal = PostgresStorage::open(
        &a,
        PostgresConfig {
            durability: Durability::Normal,
            ..PostgresConfig::default()
        },
    )
    .unwrap();
    assert_eq!(normal.settings().unwrap().synchronous_commit, "off");
    // Reopening changes nothing.
    drop(la);
    let again = Ledger::open(&a, Options::default()).unwrap();
    assert_eq!(all_events(&again).len(), 3);
    assert!(again.verify_audit().unwrap().ok);
    let mut c = walletlog_testpg::server().client();
    let versions: i64 = c
        .query_one(
            &format!("SELECT count(*) FROM {}.walletlog_schema", schema_of(&a)),
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(versions, schema_version());
}

#[test]
fn a_new_tenant_schema_is_created_on_first_open() {
    let server = walletlog_testpg::server();
    let schema = format!("new_tenant_{}", std::process::id());
    let location =
        walletlog_testpg::with_search_path(&server.database_uri("walletlog_test"), &schema);
    let l = populated(&location, 1);
    assert_eq!(all_events(&l).len(), 1);
    let s = PostgresStorage::open(&location, PostgresConfig::default()).unwrap();
    assert_eq!(s.settings().unwrap().schema, schema);
    // Opened again by another process, it is found, not created twice.
    assert_eq!(all_events(&populated(&location, 0)).len(), 1);
    let mut c = server.client();
    c.batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
        .unwrap();
}

#[test]
fn a_reader_that_must_find_a_ledger_creates_nothing() {
    // A mistyped tenant must not read as an empty ledger (the CLI's reads).
    let server = walletlog_testpg::server();
    let schema = format!("missing_tenant_{}", std::process::id());
    let location =
        walletlog_testpg::with_search_path(&server.database_uri("walletlog_test"), &schema);
    let existing_only = PostgresConfig {
        create_if_missing: false,
        ..PostgresConfig::default()
    };
    let options = Options {
        postgres: existing_only.clone(),
        ..Options::default()
    };
    let exists = |c: &mut postgres::Client| -> bool {
        c.query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)",
            &[&schema],
        )
        .unwrap()
        .get(0)
    };
    let mut c = server.client();
    let err = Ledger::open(&location, options.clone()).unwrap_err();
    assert!(
        matches!(&err, Error::NotFound { what } if what.contains(&schema)),
        "{err}"
    );
    assert!(!exists(&mut c), "no schema created");
    // A schema that exists but holds no ledger: refused, left empty.
    c.batch_execute(&format!("CREATE SCHEMA {schema}")).unwrap();
    let refused = PostgresStorage::open(&location, existing_only);
    assert!(
        matches!(refused, Err(Error::NotFound { .. })),
        "a ledger was opened"
    );
    let tables: i64 = c
        .query_one(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = $1",
            &[&schema],
        )
        .unwrap()
        .get(0);
    assert_eq!(tables, 0, "no tables created");
    // Once a writer made the ledger, the reader opens it.
    populated(&location, 2);
    assert_eq!(
        all_events(&Ledger::open(&location, options).unwrap()).len(),
        2
    );
    c.batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
        .unwrap();
}

/// `search_path=tenant,public` with a new tenant: the ledger goes into the
/// tenant's new schema, never into `public`, which exists.
#[test]
fn a_new_tenant_before_public_in_the_search_path_gets_its_own_schema() {
    let server = walletlog_testpg::server();
    let schema = format!("tenant_first_{}", std::process::id());
    let location = walletlog_testpg::with_search_path(
        &server.database_uri("walletlog_test"),
        &format!("{schema}%2Cpublic"),
    );
    let mut c = server.client();
    let public_tables = |c: &mut postgres::Client| -> i64 {
        c.query_one(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'",
            &[],
        )
        .unwrap()
        .get(0)
    };
    let before = public_tables(&mut c);
    let opened =
        PostgresStorage::open(&location, PostgresConfig::default()).and_then(|s| s.settings());
    let after = public_tables(&mut c);
    c.batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
        .unwrap();
    assert_eq!(opened.unwrap().schema, schema);
    assert_eq!(after, before, "nothing created in public");
}

/// A writer that holds the ledger's lock past `pool_timeout` makes the
/// next writer fail with `busy`, not wait forever.
#[test]
fn a_writer_waits_for_the_lock_at_most_the_pool_timeout() {
    use walletlog::ports::Storage;
    let location = pg_location("lock_wait");
    let config = PostgresConfig {
        pool_timeout: Duration::from_millis(300),
        ..PostgresConfig::default()
    };
    let holder = PostgresStorage::open(&location, config.clone()).unwrap();
    let waiter = PostgresStorage::open(&location, config).unwrap();
    let held = AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            holder
                .write(&mut |tx| {
                    tx.set_meta("holding", b"the lock")?;
                    held.store(true, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(1500));
                    Ok(())
                })
                .unwrap();
        });
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while !held.load(Ordering::SeqCst) {
            assert!(
                std::time::Instant::now() < deadline,
                "the holder never began"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        let e = waiter
            .write(&mut |tx| tx.set_meta("waiting", b"for the lock"))
            .unwrap_err();
        assert_eq!(storage_kind(&e), StorageErrorKind::Busy, "{e}");
    });
    waiter
        .write(&mut |tx| tx.set_meta("after", b"the holder"))
        .unwrap();
}

#[test]
fn the_host_parameter_names_a_socket_directory() {
    let location = pg_location("hostparam");
    // postgresql://postgres@%2Ftmp%2Fdir/db?options=... as
    // postgresql:///db?host=/tmp/dir&user=postgres&options=...
    let Some(rest) = location.strip_prefix("postgresql://postgres@%2F") else {
        eprintln!("skipped: the test server is not reached through a socket directory");
        return;
    };
    let (dir, tail) = rest.split_once('/').unwrap();
    let (db, query) = tail.split_once('?').unwrap();
    let dir = format!("/{}", dir.replace("%2F", "/"));
    let uri = format!("postgres:///{db}?host={dir}&user=postgres&{query}");
    let l = populated(&uri, 2);
    assert_eq!(all_events(&l).len(), 2);
}

#[test]
fn a_newer_schema_is_refused_not_downgraded() {
    let location = pg_location("newer");
    drop(populated(&location, 1));
    let mut c = walletlog_testpg::server().client();
    c.execute(
        &format!(
            "INSERT INTO {}.walletlog_schema (version, walletlog) VALUES (99, 'future')",
            schema_of(&location)
        ),
        &[],
    )
    .unwrap();
    let e = Ledger::open(&location, Options::default()).unwrap_err();
    assert_eq!(storage_kind(&e), StorageErrorKind::SchemaTooNew, "{e}");
    assert!(e.to_string().contains("version 99"), "{e}");
}

/// A ledger written at version 2 (migration 3 only adds `walletlog_write`):
/// opening it applies migration 3, keeps its history, and writes on.
#[test]
fn a_version_2_ledger_is_migrated_and_keeps_its_history() {
    let location = pg_location("from_v2");
    drop(populated(&location, 3));
    let schema = schema_of(&location);
    let mut c = walletlog_testpg::server().client();
    c.batch_execute(&format!(
        "DROP FUNCTION {schema}.walletlog_write; \
         DELETE FROM {schema}.walletlog_schema WHERE version = 3"
    ))
    .unwrap();
    let function_count = |c: &mut postgres::Client| -> i64 {
        c.query_one(
            "SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace \
             WHERE n.nspname = $1 AND p.proname = 'walletlog_write'",
            &[&schema],
        )
        .unwrap()
        .get(0)
    };
    assert_eq!(function_count(&mut c), 0);

    let l = Ledger::open(&location, Options::default()).unwrap();
    assert_eq!(function_count(&mut c), 1);
    let versions: Vec<i32> = c
        .query(
            &format!("SELECT version FROM {schema}.walletlog_schema ORDER BY version"),
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(versions, [1, 2, 3]);
    assert_eq!(all_events(&l).len(), 3);
    // The written-before events are still keys: a replay is a duplicate.
    assert!(!l
        .ingest(&deposit("w1", "evt_1", "10.25", 60))
        .unwrap()
        .created());
    for i in 3..5 {
        assert!(l
            .ingest(&deposit("w1", &format!("evt_{i}"), "10.25", i * 60))
            .unwrap()
            .created());
    }
    let events = all_events(&l);
    assert_eq!(events.len(), 5);
    assert_eq!(
        events.iter().map(|e| e.sequence).collect::<Vec<_>>(),
        [1, 2, 3, 4, 5]
    );
    assert_eq!(available(&l, "w1"), "51.25");
    let report = l.verify_audit().unwrap();
    assert!(report.ok, "{report:?}");
    assert_eq!(report.records_checked, 6);
}

#[test]
fn a_schema_that_is_not_a_ledger_is_refused() {
    let location = pg_location("foreign");
    let mut c = walletlog_testpg::server().client();
    c.batch_execute(&format!(
        "CREATE TABLE {}.events (id int)",
        schema_of(&location)
    ))
    .unwrap();
    let e = Ledger::open(&location, Options::default()).unwrap_err();
    assert_eq!(storage_kind(&e), StorageErrorKind::Corrupt, "{e}");
    assert!(e.to_string().contains("not a walletlog ledger"), "{e}");
    // Nothing was created beside the foreign table.
    let tables: i64 = c
        .query_one(
            "SELECT count(*) FROM pg_tables WHERE schemaname = $1",
            &[&schema_of(&location)],
        )
        .unwrap()
        .get(0);
    assert_eq!(tables, 1);
}

#[test]
fn the_database_refuses_to_rewrite_history() {
    let location = pg_location("append_only");
    let l = populated(&location, 2);
    let schema = schema_of(&location);
    let mut c = walletlog_testpg::server().client();
    for sql in [
        format!("UPDATE {schema}.events SET amount = 99"),
        format!("DELETE FROM {schema}.events"),
        format!("TRUNCATE {schema}.events"),
        format!("UPDATE {schema}.audit SET actor = 'someone'"),
        format!("DELETE FROM {schema}.audit WHERE sequence = 1"),
        format!("TRUNCATE {schema}.audit"),
    ] {
        let e = c.batch_execute(&sql).unwrap_err();
        let text = e.as_db_error().map(|d| d.message().to_owned()).unwrap();
        assert!(text.contains("append-only"), "{sql}: {text}");
    }
    assert_eq!(all_events(&l).len(), 2);
    assert_eq!(l.audit_log(0, 100).unwrap().len(), 2);
    assert_eq!(available(&l, "w1"), "20.5");
    assert!(l.verify_audit().unwrap().ok);
}

#[test]
fn an_operator_who_disables_the_trigger_is_still_caught() {
    let location = pg_location("tamper");
    let l = populated(&location, 4);
    let schema = schema_of(&location);
    let mut c = walletlog_testpg::server().client();
    c.batch_execute(&format!(
        "ALTER TABLE {schema}.events DISABLE TRIGGER events_append_only;
         UPDATE {schema}.events SET amount = 1000 WHERE sequence = 3;"
    ))
    .unwrap();
    let report = l.verify_audit().unwrap();
    assert!(!report.ok);
    let problem = report.first_problem.unwrap();
    assert_eq!(problem.kind, AuditProblemKind::EventAltered, "{problem:?}");
    assert_eq!(problem.event_sequence, Some(3), "{problem:?}");

    let location = pg_location("tamper_audit");
    let l = populated(&location, 4);
    let schema = schema_of(&location);
    c.batch_execute(&format!(
        "ALTER TABLE {schema}.audit DISABLE TRIGGER audit_append_only;
         DELETE FROM {schema}.audit WHERE sequence = 2;"
    ))
    .unwrap();
    let problem = l.verify_audit().unwrap().first_problem.unwrap();
    // The first record after the gap is named, saying which one is missing.
    assert_eq!(problem.kind, AuditProblemKind::ChainBroken, "{problem:?}");
    assert_eq!(problem.record_sequence, Some(3), "{problem:?}");
    assert!(problem.detail.contains("record 2"), "{problem:?}");
}

/// Two handles on one schema, used in turn: each one's assumption about
/// the last sequences (from its own last commit) is stale every time, is
/// caught under the lock, and the transaction runs again with fresh ones.
/// The ledger keeps one order, every attempt audited once.
#[test]
fn handles_whose_assumed_heads_are_stale_still_keep_one_order() {
    let location = pg_location("stale");
    let (a, b) = (populated(&location, 0), populated(&location, 0));
    for i in 0..20u64 {
        let l = if i % 2 == 0 { &a } else { &b };
        let r = l
            .ingest(&deposit("w1", &format!("e{i}"), "1.5", i as i64))
            .unwrap();
        assert!(r.created());
        assert_eq!(r.event.sequence, i + 1);
    }
    // A batch with a duplicate, a replay, and a conflicting replay, each
    // on the handle that did not write last.
    let results = b
        .ingest_batch(&[
            deposit("w1", "e0", "1.5", 0),
            deposit("w1", "e20", "1.5", 20),
        ])
        .unwrap();
    assert!(results[0].duplicate() && results[1].created());
    assert!(a
        .ingest(&deposit("w1", "e20", "1.5", 20))
        .unwrap()
        .duplicate());
    let lie = b.ingest(&deposit("w1", "e3", "99", 3));
    assert!(matches!(lie, Err(Error::Conflict(_))), "{lie:?}");
    let events = all_events(&a);
    assert_eq!(
        events.iter().map(|e| e.sequence).collect::<Vec<_>>(),
        (1..=21).collect::<Vec<_>>()
    );
    let audit = a.audit_log(0, 100).unwrap();
    // 20 created, then the batch's duplicate and created, a duplicate, a
    // conflict: 24 attempts, each audited exactly once, in order.
    assert_eq!(audit.len(), 24);
    assert_eq!(
        audit.iter().map(|r| r.sequence).collect::<Vec<_>>(),
        (1..=24).collect::<Vec<_>>()
    );
    assert_eq!(available(&b, "w1"), "31.5");
    assert!(a.verify_audit().unwrap().ok);
}

/// Many first opens of one new tenant's schema at once (service instances
/// starting together): one creates it, every other one finds it.
#[test]
fn concurrent_first_opens_of_a_new_schema_all_succeed() {
    for round in 0..3 {
        let location = pg_location(&format!("together{round}"));
        let opened: Vec<Result<Ledger, Error>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| s.spawn(|| Ledger::open(&location, Options::default())))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for l in &opened {
            assert!(l.is_ok(), "round {round}: {:?}", l.as_ref().err());
        }
        let l = opened.into_iter().next().unwrap().unwrap();
        assert!(l.ingest(&deposit("w1", "e1", "1", 0)).unwrap().created());
    }
}

/// Writes whose rollup rows this process knows are taken as new
/// provisionally and checked at commit: every way that guess can be wrong
/// (a replay, a key taken twice in one batch, a wallet first seen in the
/// middle of a batch, another handle writing in between) still gives the
/// exact answers and stores exactly the events of a careful run.
#[test]
fn provisional_inserts_are_checked_and_answered_exactly() {
    let location = pg_location("provisional");
    let (a, b) = (populated(&location, 0), populated(&location, 0));
    // Warm a's rollup cache for w1.
    assert!(a.ingest(&deposit("w1", "p0", "1", 0)).unwrap().created());
    assert!(a.ingest(&deposit("w1", "p1", "1", 1)).unwrap().created());
    // A replay on a warm wallet: guessed new, answered as a duplicate.
    let replay = a.ingest(&deposit("w1", "p1", "1", 1)).unwrap();
    assert!(replay.duplicate(), "{replay:?}");
    assert_eq!(replay.event.sequence, 2);
    // A batch: known wallet, new wallet, known again (now from this
    // transaction), a duplicate within the batch.
    let results = a
        .ingest_batch(&[
            deposit("w1", "p2", "2", 2),
            deposit("w2", "q0", "3", 2),
            deposit("w2", "q1", "4", 3),
            deposit("w1", "p2", "2", 2),
        ])
        .unwrap();
    let created: Vec<bool> = results.iter().map(|r| r.created()).collect();
    assert_eq!(created, [true, true, true, false]);
    assert_eq!(results[3].event.event_id, results[0].event.event_id);
    // Two events under one key in one batch that disagree: a conflict,
    // and nothing of the batch stored.
    let split = a.ingest_batch(&[deposit("w1", "p9", "5", 9), deposit("w1", "p9", "6", 9)]);
    assert!(matches!(split, Err(Error::Conflict(_))), "{split:?}");
    // Another handle writes: a's cache is stale, its guess refused.
    assert!(b.ingest(&deposit("w1", "r0", "10", 10)).unwrap().created());
    assert!(a.ingest(&deposit("w1", "p3", "1", 11)).unwrap().created());
    assert_eq!(available(&a, "w1"), "15");
    assert_eq!(available(&b, "w2"), "7");
    let events = all_events(&b);
    assert_eq!(
        events.iter().map(|e| e.sequence).collect::<Vec<_>>(),
        (1..=7).collect::<Vec<_>>()
    );
    assert!(!events
        .iter()
        .any(|e| e.provider_event_id.as_ref().map(|p| p.as_str()) == Some("p9")));
    let actions: Vec<AuditAction> = a
        .audit_log(0, 100)
        .unwrap()
        .iter()
        .map(|r| r.action)
        .collect();
    use walletlog::AuditAction::{Conflict, Created, Duplicate};
    assert_eq!(
        actions,
        [
            Created, Created, Duplicate, Created, Created, Created, Duplicate, Conflict, Created,
            Created
        ]
    );
    assert!(b.verify_audit().unwrap().ok);
}

/// The grants docs/postgres.md gives an application role are enough to
/// open an up-to-date ledger, ingest, read and verify (even where PUBLIC
/// may not execute the schema's functions), and refuse it any change to
/// history.
#[test]
fn an_application_role_appends_and_reads_but_cannot_alter() {
    let location = pg_location("grants");
    drop(populated(&location, 1));
    let schema = schema_of(&location);
    let role = format!("wl_app_{}", std::process::id());
    let mut c = walletlog_testpg::server().client();
    c.batch_execute(&format!(
        "CREATE ROLE {role} LOGIN PASSWORD 'app-secret';
         GRANT USAGE ON SCHEMA {schema} TO {role};
         GRANT SELECT, INSERT ON {schema}.events, {schema}.audit TO {role};
         GRANT SELECT, INSERT, UPDATE ON {schema}.rollups, {schema}.meta TO {role};
         GRANT SELECT, INSERT, UPDATE, DELETE ON {schema}.deliveries TO {role};
         GRANT SELECT ON {schema}.walletlog_schema TO {role};
         REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA {schema} FROM PUBLIC;
         GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA {schema} TO {role};"
    ))
    .unwrap();
    let as_app = format!("{location}&user={role}&password=app-secret");
    let result = std::panic::catch_unwind(|| {
        let l = populated(&as_app, 0);
        // The first write reads the heads; the second is one statement.
        for (pei, at) in [("by_app", 60), ("by_app_2", 61)] {
            assert!(l.ingest(&deposit("w1", pei, "2", at)).unwrap().created());
        }
        assert_eq!(all_events(&l).len(), 3);
        assert!(l.verify_audit().unwrap().ok);
        let mut app = walletlog_testpg::connect(&as_app);
        for sql in [
            format!("UPDATE {schema}.events SET amount = 0"),
            format!("DELETE FROM {schema}.audit"),
            format!("CREATE TABLE {schema}.other (x int)"),
        ] {
            let e = app.batch_execute(&sql).unwrap_err();
            assert_eq!(
                e.code(),
                Some(&postgres::error::SqlState::INSUFFICIENT_PRIVILEGE),
                "{sql}: {e}"
            );
        }
    });
    c.batch_execute(&format!("DROP OWNED BY {role}; DROP ROLE {role}"))
        .unwrap();
    result.unwrap();
}

#[test]
fn backup_points_to_pg_dump_and_the_export() {
    let l = populated(&pg_location("backup"), 1);
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("copy.db");
    let e = l.backup(&dest).unwrap_err();
    assert_eq!(e.code(), Some("unsupported"));
    assert!(e.to_string().contains("pg_dump"), "{e}");
    assert!(e.to_string().contains("export"), "{e}");
    assert!(!dest.exists());
}

/// Terminates every backend of `application_name` from outside.
fn terminate(application_name: &str) -> i64 {
    let mut c = walletlog_testpg::server().client();
    c.query(
        // With a timeout, it returns once the backend is gone (not merely
        // signalled): the client then finds the connection closed.
        "SELECT pg_terminate_backend(pid, 10000) FROM pg_stat_activity \
         WHERE application_name = $1",
        &[&application_name],
    )
    .unwrap()
    .len() as i64
}

#[test]
fn a_connection_lost_mid_transaction_stores_nothing_and_the_ledger_recovers() {
    use walletlog::ports::Storage;
    let name = format!("victim_{}", std::process::id());
    let location = format!("{}&application_name={name}", pg_location("lost"));
    let storage = PostgresStorage::open(&location, PostgresConfig::default()).unwrap();
    let e = storage
        .write(&mut |tx| {
            let event = deposit("w1", "evt_lost", "5", 0).to_stored(
                walletlog::EventId::generate(),
                ts(0),
                1,
            );
            assert!(tx.insert_event_if_new(&event)?);
            assert_eq!(terminate(&name), 1);
            tx.set_meta("after", b"the cut")
        })
        .unwrap_err();
    assert_eq!(storage_kind(&e), StorageErrorKind::Unavailable, "{e}");
    assert!(
        e.to_string().contains("nothing of this call was stored"),
        "{e}"
    );
    drop(storage);

    let l = Ledger::open(&location, Options::default()).unwrap();
    assert!(all_events(&l).is_empty(), "nothing half-stored");
    l.ingest(&deposit("w1", "evt_1", "5", 0)).unwrap();
    // Every pooled connection dies (a server restart looks like this); the
    // next call finds them dead before sending anything and reconnects.
    assert!(terminate(&name) >= 1);
    let r = l.ingest(&deposit("w1", "evt_2", "5", 60)).unwrap();
    assert!(r.created());
    assert_eq!(all_events(&l).len(), 2);
    assert!(l.verify_audit().unwrap().ok);
}

/// A proxy on a Unix socket in front of the server's, which, when armed,
/// passes a `COMMIT` on to the server and then cuts both connections
/// before its answer comes back: the client cannot know whether it
/// committed. Armed for any request, it does the same with the next
/// request whatever it is (a write that is one statement, which the server
/// commits before answering).
struct CommitCutter {
    dir: tempfile::TempDir,
    armed: Arc<AtomicBool>,
    armed_any: Arc<AtomicBool>,
}

impl CommitCutter {
    fn start(upstream: PathBuf) -> CommitCutter {
        let dir = tempfile::tempdir().unwrap();
        let listener = UnixListener::bind(dir.path().join(".s.PGSQL.5432")).unwrap();
        let armed = Arc::new(AtomicBool::new(false));
        let armed_any = Arc::new(AtomicBool::new(false));
        let (flag, flag_any) = (armed.clone(), armed_any.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { return };
                let server = UnixStream::connect(&upstream).unwrap();
                let (flag, flag_any) = (flag.clone(), flag_any.clone());
                std::thread::spawn(move || relay(client, server, flag, flag_any));
            }
        });
        CommitCutter {
            dir,
            armed,
            armed_any,
        }
    }

    /// A location through the proxy, for the database and options of `location`.
    fn location(&self, location: &str) -> String {
        let tail = &location[location.rfind('/').unwrap()..];
        format!(
            "postgresql://postgres@{}{tail}",
            self.dir.path().to_str().unwrap().replace('/', "%2F")
        )
    }
}

fn relay(
    mut client: UnixStream,
    server: UnixStream,
    armed: Arc<AtomicBool>,
    armed_any: Arc<AtomicBool>,
) {
    let cut = Arc::new(AtomicBool::new(false));
    let (mut from_server, mut to_client) =
        (server.try_clone().unwrap(), client.try_clone().unwrap());
    let cut_back = cut.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 16384];
        while let Ok(n) = from_server.read(&mut buf) {
            if n == 0 || cut_back.load(Ordering::SeqCst) || to_client.write_all(&buf[..n]).is_err()
            {
                break;
            }
        }
        let _ = to_client.shutdown(std::net::Shutdown::Both);
    });
    let mut to_server = server;
    let mut buf = [0u8; 16384];
    loop {
        let n = match client.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let chunk = &buf[..n];
        // The client sends each batch of messages whole, after the answers
        // to the last: this one ends with a simple query (`Q`, length) of
        // exactly `COMMIT`, alone or after the transaction's last write.
        let is_commit = chunk.ends_with(b"Q\0\0\0\x0bCOMMIT\0");
        let cut_now = (is_commit && armed.swap(false, Ordering::SeqCst))
            || armed_any.swap(false, Ordering::SeqCst);
        if cut_now {
            cut.store(true, Ordering::SeqCst);
            to_server.write_all(chunk).unwrap();
            // Give the server time to commit, then cut the client off.
            std::thread::sleep(Duration::from_millis(300));
            let _ = client.shutdown(std::net::Shutdown::Both);
            let _ = to_server.shutdown(std::net::Shutdown::Both);
            return;
        }
        if to_server.write_all(chunk).is_err() {
            return;
        }
    }
}

/// A ledger on a fresh schema, opened through a [`CommitCutter`]: the
/// location (direct), the proxy and the ledger; `None` when the test server
/// is not reached through a socket directory.
fn through_cutter(prefix: &str) -> Option<(String, CommitCutter, Ledger)> {
    let location = pg_location(prefix);
    let Some(rest) = location.strip_prefix("postgresql://postgres@%2F") else {
        eprintln!("skipped: the test server is not reached through a socket directory");
        return None;
    };
    let socket_dir = format!("/{}", rest.split_once('/').unwrap().0.replace("%2F", "/"));
    let proxy = CommitCutter::start(Path::new(&socket_dir).join(".s.PGSQL.5432"));
    let through = Ledger::open(proxy.location(&location), Options::default()).unwrap();
    Some((location, proxy, through))
}

/// `event` fails as a possibly committed write, then its retry is a
/// duplicate: the server had committed it.
fn lost_then_duplicate(through: &Ledger, event: &NewEvent) {
    let e = through.ingest(event).unwrap_err();
    assert_eq!(storage_kind(&e), StorageErrorKind::Unavailable, "{e}");
    assert!(
        e.to_string().contains("may or may not have been committed"),
        "{e}"
    );
    let retry = through.ingest(event).unwrap();
    assert!(retry.duplicate(), "{retry:?}");
}

#[test]
fn an_ingest_retried_after_an_ambiguous_commit_is_a_duplicate() {
    let Some((location, proxy, through)) = through_cutter("ambiguous") else {
        return;
    };
    proxy.armed.store(true, Ordering::SeqCst);
    lost_then_duplicate(&through, &deposit("w1", "evt_ambiguous", "7.50", 0));
    let direct = Ledger::open(&location, Options::default()).unwrap();
    assert_eq!(all_events(&direct).len(), 1);
    assert_eq!(available(&direct, "w1"), "7.5");
    assert!(direct.verify_audit().unwrap().ok);
}

/// A write whose rollup rows the process knows is one statement, committed
/// by the server before it answers (no `COMMIT` on the wire): losing its
/// answer is just as ambiguous, and the retry just as much a duplicate.
#[test]
fn a_one_statement_write_retried_after_a_lost_answer_is_a_duplicate() {
    let Some((location, proxy, through)) = through_cutter("ambiguous_one") else {
        return;
    };
    // The first event of a wallet reads its rollup rows; the second, in the
    // same hour, is known to this process and goes as one statement.
    for (pei, amount, at) in [("evt_1", "1", 0), ("evt_2", "2", 1)] {
        assert!(through
            .ingest(&deposit("w1", pei, amount, at))
            .unwrap()
            .created());
    }
    proxy.armed_any.store(true, Ordering::SeqCst);
    lost_then_duplicate(&through, &deposit("w1", "evt_lost", "7.50", 2));
    let direct = Ledger::open(&location, Options::default()).unwrap();
    assert_eq!(all_events(&direct).len(), 3);
    assert_eq!(available(&direct, "w1"), "10.5");
    assert!(direct.verify_audit().unwrap().ok);
}

#[test]
fn an_exhausted_pool_is_a_clear_busy_error() {
    use walletlog::ports::Storage;
    let storage = PostgresStorage::open(
        &pg_location("pool"),
        PostgresConfig {
            pool_size: 1,
            pool_timeout: Duration::from_millis(200),
            ..PostgresConfig::default()
        },
    )
    .unwrap();
    let (held, release) = (AtomicBool::new(false), AtomicBool::new(false));
    std::thread::scope(|s| {
        s.spawn(|| {
            storage
                .read(&mut |_| {
                    held.store(true, Ordering::SeqCst);
                    while !release.load(Ordering::SeqCst) {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    Ok(())
                })
                .unwrap();
        });
        while !held.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(5));
        }
        let e = storage.read(&mut |_| Ok(())).unwrap_err();
        release.store(true, Ordering::SeqCst);
        assert_eq!(storage_kind(&e), StorageErrorKind::Busy, "{e}");
        assert!(e.to_string().contains("pool_size"), "{e}");
    });
    // Once the connection is back, calls go on.
    storage.read(&mut |_| Ok(())).unwrap();
    let bad = PostgresStorage::open(
        &pg_location("pool0"),
        PostgresConfig {
            pool_size: 0,
            ..PostgresConfig::default()
        },
    );
    assert!(matches!(bad, Err(Error::Validation(v)) if v.field == "pool_size"));
}

/// Writers in 4 processes while the server crashes (`pg_ctl stop -m
/// immediate`) and restarts under them: every acknowledged event is stored
/// exactly once, the chain verifies, the rollups equal the fold of the
/// events, and the writers go on without being restarted.
#[test]
fn a_server_crash_loses_no_acknowledged_event_and_writers_recover() {
    let cluster = walletlog_testpg::Cluster::start("crash").expect("a private cluster");
    cluster.stop_when_gone(std::process::id()).unwrap();
    let location = cluster.uri("postgres");
    drop(Ledger::open(&location, Options::default()).unwrap());
    let dir = tempfile::tempdir().unwrap();
    let stop = dir.path().join("stop");
    let children: Vec<_> = (0..4)
        .map(|p| {
            Command::new(std::env::current_exe().unwrap())
                .args([
                    "it::postgres::crash_writer",
                    "--exact",
                    "--ignored",
                    "--nocapture",
                    "--test-threads",
                    "1",
                ])
                .env("WALLETLOG_CRASH_DB", &location)
                .env("WALLETLOG_CRASH_WRITER", p.to_string())
                .env("WALLETLOG_CRASH_STOP", &stop)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1500));
    cluster.crash().unwrap();
    std::thread::sleep(Duration::from_millis(500));
    cluster.start_again().unwrap();
    // The writers must get going again on their own.
    std::thread::sleep(Duration::from_millis(2500));
    std::fs::write(&stop, b"stop").unwrap();
    let mut acknowledged = Vec::new();
    let mut failures = 0;
    let mut after_restart = 0;
    for child in children {
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "writer failed: {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        for line in stdout.lines() {
            if let Some(id) = line.strip_prefix("ACK ") {
                acknowledged.push(id.to_owned());
            } else if line.starts_with("FAIL ") {
                failures += 1;
            } else if let Some(n) = line.strip_prefix("AFTER ") {
                after_restart += n.parse::<usize>().unwrap();
            }
        }
    }
    assert!(failures > 0, "the crash was seen by the writers");
    assert!(after_restart > 0, "the writers went on after the restart");
    let l = Ledger::open(&location, Options::default()).unwrap();
    let events = all_events(&l);
    let mut stored: Vec<String> = events
        .iter()
        .map(|e| e.provider_event_id.as_ref().unwrap().as_str().to_owned())
        .collect();
    stored.sort();
    let before = stored.len();
    stored.dedup();
    assert_eq!(stored.len(), before, "no event stored twice");
    for id in &acknowledged {
        assert!(
            stored.binary_search(id).is_ok(),
            "acknowledged {id} is lost"
        );
    }
    let report = l.verify_audit().unwrap();
    assert!(report.ok, "{:?}", report.first_problem);
    println!(
        "crash: {} acknowledged, {} stored, {failures} calls failed during the crash, \
         {after_restart} acknowledged after it",
        acknowledged.len(),
        events.len()
    );
    cluster.destroy().unwrap();
}

/// One writer process of the crash test: ingests until told to stop,
/// printing each acknowledged event, retrying each failed one (a retry
/// after an ambiguous commit must be a duplicate, never a second event).
#[test]
#[ignore = "a child process of a_server_crash_loses_no_acknowledged_event_and_writers_recover"]
fn crash_writer() {
    let location = std::env::var("WALLETLOG_CRASH_DB").expect("run by the crash test");
    let writer = std::env::var("WALLETLOG_CRASH_WRITER").unwrap();
    let stop = PathBuf::from(std::env::var("WALLETLOG_CRASH_STOP").unwrap());
    let options = Options {
        postgres: PostgresConfig {
            pool_timeout: Duration::from_secs(5),
            ..PostgresConfig::default()
        },
        ..Options::default()
    };
    let ledger = Ledger::open(&location, options).unwrap();
    std::thread::scope(|s| {
        for thread in 0..4 {
            let (ledger, writer, stop) = (&ledger, &writer, &stop);
            s.spawn(move || {
                let mut failed_once = false;
                let mut after = 0;
                for i in 0.. {
                    if stop.exists() {
                        break;
                    }
                    let id = format!("p{writer}_t{thread}_{i}");
                    let event = deposit(&format!("w{writer}"), &id, "1.25", i as i64);
                    loop {
                        match ledger.ingest(&event) {
                            Ok(_) => {
                                println!("ACK {id}");
                                if failed_once {
                                    after += 1;
                                }
                                break;
                            }
                            Err(e) => {
                                println!("FAIL {id} {e}");
                                failed_once = true;
                                if stop.exists() {
                                    break;
                                }
                                std::thread::sleep(Duration::from_millis(50));
                            }
                        }
                    }
                }
                println!("AFTER {after}");
            });
        }
    });
}
