//! Opening a ledger: locations, options and their limits, what an engine
//! cannot do; and queries whose cursor no longer fits them.

use std::time::Duration;

use walletlog::{Error, Ledger, ListQuery, Options, RawOptions, SqliteConfig, BUSY_TIMEOUT_MAX};

use super::util::*;

#[cfg(not(feature = "postgres"))]
fn storage_kind(r: Result<Ledger, Error>) -> walletlog::StorageErrorKind {
    match r {
        Err(Error::Storage(s)) => s.kind,
        other => panic!("a storage error, not {other:?}"),
    }
}

#[cfg(not(feature = "postgres"))]
#[test]
fn a_postgresql_location_is_refused_by_this_build_naming_no_password() {
    let r = Ledger::open(
        "postgresql://app:hunter2@db.internal/ledger",
        Options::default(),
    );
    let Err(e) = r else {
        panic!("no PostgreSQL engine in this build")
    };
    assert_eq!(e.code(), Some("unsupported"));
    assert!(!e.to_string().contains("hunter2"), "{e}");
    assert!(e.to_string().contains("PostgreSQL"), "{e}");
    assert_eq!(
        storage_kind(Ledger::open("postgres://db/ledger", Options::default())),
        walletlog::StorageErrorKind::Unsupported
    );
}

#[cfg(feature = "postgres")]
#[test]
fn an_unreachable_postgresql_server_is_unavailable_naming_no_password() {
    // Nothing listens on port 1: the connection is refused at once.
    let r = Ledger::open(
        "postgresql://app:hunter2@127.0.0.1:1/ledger",
        Options::default(),
    );
    let Err(e) = r else {
        panic!("nothing listens on port 1")
    };
    assert_eq!(e.code(), Some("unavailable"), "{e}");
    assert!(!e.to_string().contains("hunter2"), "{e}");
    assert!(e.to_string().contains("app:***@127.0.0.1:1"), "{e}");
    let bad = Ledger::open("postgresql://db:notaport/ledger", Options::default()).unwrap_err();
    assert!(
        matches!(&bad, Error::Validation(v) if v.field == "location"),
        "{bad:?}"
    );
}

#[test]
fn an_empty_location_is_refused() {
    assert!(matches!(
        Ledger::open("", Options::default()),
        Err(Error::Validation(v)) if v.field == "location"
    ));
}

#[test]
fn an_in_memory_ledger_cannot_be_backed_up_to_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let l = Ledger::in_memory();
    let e = l.backup(dir.path().join("copy.db")).unwrap_err();
    assert_eq!(e.code(), Some("unsupported"));
    assert!(e.to_string().contains("changes_since"), "{e}");
    assert!(!dir.path().join("copy.db").exists());
}

#[test]
fn a_busy_timeout_beyond_a_day_is_refused_not_a_panic() {
    let (_dir, path) = temp_db();
    let too_long = RawOptions {
        busy_timeout_ms: Some(BUSY_TIMEOUT_MAX.as_millis() as u64 + 1),
        ..RawOptions::default()
    };
    assert_eq!(too_long.validate().unwrap_err().field, "busy_timeout_ms");
    let direct = Options {
        sqlite: SqliteConfig {
            busy_timeout: Duration::from_secs(u32::MAX as u64),
            ..SqliteConfig::default()
        },
        ..Options::default()
    };
    assert!(matches!(
        Ledger::open(&path, direct),
        Err(Error::Validation(v)) if v.field == "busy_timeout"
    ));
    let day = RawOptions {
        busy_timeout_ms: Some(BUSY_TIMEOUT_MAX.as_millis() as u64),
        ..RawOptions::default()
    };
    Ledger::open(&path, day.validate().unwrap()).unwrap();
}

#[test]
fn a_cursor_is_checked_against_the_query_that_runs() {
    let l = Ledger::in_memory();
    for i in 0..5 {
        l.ingest(&deposit("w1", &format!("e{i}"), "1", i)).unwrap();
    }
    let base = ListQuery::new(wallet("w1")).limit(2).unwrap();
    let cursor = l.list(&base).unwrap().next_cursor.unwrap();
    // The same query continues; one whose filter changed after the cursor
    // was set is refused, whatever the order of the setters.
    assert_eq!(
        l.list(&base.clone().cursor(&cursor).unwrap())
            .unwrap()
            .events
            .len(),
        2
    );
    let changed = base.cursor(&cursor).unwrap().since(ts(1)).unwrap();
    assert!(matches!(
        l.list(&changed),
        Err(Error::Validation(v)) if v.field == "cursor"
    ));
}
