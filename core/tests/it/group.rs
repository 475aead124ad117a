//! Group commit, on SQLite and PostgreSQL: concurrent calls on one ledger
//! share one transaction and one commit, and each caller gets exactly what
//! it would have got alone.
//!
//! To make a group form for certain, a second connection holds the
//! ledger's write lock (SQLite's `BEGIN IMMEDIATE`, PostgreSQL's advisory
//! lock of the ledger) while one caller leads and the others queue behind
//! it; releasing the lock lets the first caller commit alone and the queued
//! ones commit together.

use std::time::{Duration, Instant};

use walletlog::{
    Error, EventType, GroupLimits, IngestResult, Ledger, NewEvent, Options, Provider, SqliteConfig,
    StorageErrorKind,
};

use super::util::*;

/// A connection holding a ledger's write lock until released.
enum Blocker {
    Sqlite(rusqlite::Connection),
    #[cfg(feature = "postgres")]
    Postgres(postgres::Client),
}

impl Blocker {
    fn release(self) {
        match self {
            Blocker::Sqlite(c) => c.execute_batch("ROLLBACK").unwrap(),
            #[cfg(feature = "postgres")]
            Blocker::Postgres(mut c) => c.batch_execute("SELECT pg_advisory_unlock_all()").unwrap(),
        }
    }
}

/// A ledger on one engine, and a way to hold its write lock from outside.
struct Engine {
    ledger: Ledger,
    name: &'static str,
    block: Box<dyn Fn() -> Blocker>,
    _dir: Option<tempfile::TempDir>,
}

fn sqlite(options: Options) -> Engine {
    let (dir, path) = temp_db();
    let ledger = Ledger::open(&path, options).unwrap();
    Engine {
        ledger,
        name: "sqlite",
        block: Box::new(move || {
            let c = rusqlite::Connection::open(&path).unwrap();
            c.execute_batch("BEGIN IMMEDIATE").unwrap();
            Blocker::Sqlite(c)
        }),
        _dir: Some(dir),
    }
}

#[cfg(feature = "postgres")]
fn postgres(options: Options) -> Engine {
    let location = pg_location("group");
    let ledger = Ledger::open(&location, options).unwrap();
    Engine {
        ledger,
        name: "postgres",
        block: Box::new(move || {
            let mut c = walletlog_testpg::connect(&location);
            c.batch_execute(
                "SELECT pg_advisory_lock(hashtextextended('walletlog ledger ' || current_schema(), 0))",
            )
            .unwrap();
            Blocker::Postgres(c)
        }),
        _dir: None,
    }
}

fn engines(options: Options) -> Vec<Engine> {
    let engines = vec![sqlite(options.clone())];
    #[cfg(feature = "postgres")]
    let engines = {
        let mut engines = engines;
        engines.push(postgres(options));
        engines
    };
    engines
}

/// What one queued caller asks for.
enum Call {
    One(NewEvent),
    Batch(Vec<NewEvent>),
}

type Answer = walletlog::Result<Vec<IngestResult>>;

/// Runs `calls` concurrently while the ledger's lock is held: a first
/// caller (`plug`) leads and waits for the lock, the calls queue behind it,
/// then the lock is released. Returns the plug's answer and the calls'.
fn queued_behind_a_plug(
    engine: &Engine,
    plug: NewEvent,
    calls: Vec<Call>,
) -> (Answer, Vec<Answer>) {
    let blocker = (engine.block)();
    let ledger = &engine.ledger;
    std::thread::scope(|s| {
        let plug = s.spawn(move || ledger.ingest(&plug).map(|r| vec![r]));
        std::thread::sleep(Duration::from_millis(200));
        let handles: Vec<_> = calls
            .into_iter()
            .map(|call| {
                s.spawn(move || match call {
                    Call::One(e) => ledger.ingest(&e).map(|r| vec![r]),
                    Call::Batch(b) => ledger.ingest_batch(&b),
                })
            })
            .collect();
        // Every call has queued behind the plug by now.
        std::thread::sleep(Duration::from_millis(400));
        blocker.release();
        let answers = handles.into_iter().map(|h| h.join().unwrap()).collect();
        (plug.join().unwrap(), answers)
    })
}

fn no_keys(wallet_id: &str) -> NewEvent {
    NewEvent::new(
        wallet(wallet_id),
        Provider::new("stripe").unwrap(),
        EventType::Deposit,
        walletlog::Amount::parse("1").unwrap(),
        walletlog::Currency::new("USD").unwrap(),
        ts(0),
    )
}

#[test]
fn a_conflict_or_an_invalid_event_fails_only_its_own_caller_in_a_group() {
    for engine in engines(Options::default()) {
        let name = engine.name;
        let l = &engine.ledger;
        assert!(l
            .ingest(&deposit("w", "stored", "10", 0))
            .unwrap()
            .created());
        let mut calls: Vec<Call> = (0..8)
            .map(|i| Call::One(deposit("w", &format!("g{i}"), "1", i)))
            .collect();
        // 8: a conflicting replay of the stored event.
        calls.push(Call::One(deposit("w", "stored", "99", 0)));
        // 9: a batch whose second item conflicts: its first is not stored.
        calls.push(Call::Batch(vec![
            deposit("w", "b_new", "5", 1),
            deposit("w", "stored", "98", 0),
        ]));
        // 10: an event without a key.
        calls.push(Call::One(no_keys("w")));
        // 11: a faithful replay: a duplicate.
        calls.push(Call::One(deposit("w", "stored", "10", 0)));
        // 12: a batch of three new events.
        calls.push(Call::Batch(
            (0..3)
                .map(|j| deposit("w", &format!("ok_{j}"), "100", j))
                .collect(),
        ));
        // 13, 14: two new events under one key that disagree: the first of
        // the group to be stored wins, the other conflicts with it.
        calls.push(Call::One(deposit("w", "twin", "7", 5)));
        calls.push(Call::One(deposit("w", "twin", "8", 5)));
        // 15, 16: a one-event call and a batch whose second item takes the
        // same new key with another amount: whichever is stored first wins.
        calls.push(Call::One(deposit("w", "mate", "3", 6)));
        calls.push(Call::Batch(vec![
            deposit("w", "mate_first", "4", 6),
            deposit("w", "mate", "9", 6),
        ]));
        let (plug, answers) = queued_behind_a_plug(&engine, deposit("w", "plug", "1000", 0), calls);
        let plug = plug.unwrap().remove(0);
        assert!(plug.created(), "{name}");

        let mut created_at = Vec::new();
        for (i, answer) in answers.iter().enumerate() {
            match i {
                0..=7 | 12 => {
                    let results = answer.as_ref().unwrap();
                    assert!(results.iter().all(|r| r.created()), "{name} call {i}");
                    created_at.extend(results.iter().map(|r| r.event.created_at));
                }
                8 => {
                    let e = answer.as_ref().unwrap_err();
                    assert_eq!(e.kind(), walletlog::ErrorKind::Conflict, "{name}: {e}");
                    assert_eq!(
                        e.index(),
                        None,
                        "{name}: a single call's error has no index"
                    );
                }
                9 => {
                    let e = answer.as_ref().unwrap_err();
                    assert_eq!(e.kind(), walletlog::ErrorKind::Conflict, "{name}: {e}");
                    assert_eq!(e.index(), Some(1), "{name}: {e}");
                }
                10 => {
                    let e = answer.as_ref().unwrap_err();
                    assert_eq!(e.kind(), walletlog::ErrorKind::Validation, "{name}: {e}");
                }
                11 => assert!(answer.as_ref().unwrap()[0].duplicate(), "{name}"),
                13..=16 => {}
                _ => unreachable!(),
            }
        }
        let twins: Vec<&Answer> = answers[13..15].iter().collect();
        let won: Vec<&IngestResult> = twins
            .iter()
            .filter_map(|a| a.as_ref().ok())
            .map(|r| &r[0])
            .collect();
        assert_eq!(won.len(), 1, "{name}: one of the twins is stored");
        assert!(won[0].created(), "{name}");
        created_at.push(won[0].event.created_at);
        let lost = twins.iter().find_map(|a| a.as_ref().err()).unwrap();
        assert_eq!(
            lost.kind(),
            walletlog::ErrorKind::Conflict,
            "{name}: {lost}"
        );
        assert_eq!(lost.field(), Some("provider_event_id"), "{name}: {lost}");
        // The conflict names the event that was stored, not one of a run
        // that rolled back.
        let Error::Conflict(c) = lost else {
            unreachable!()
        };
        assert_eq!(c.existing_event_id, won[0].event.event_id, "{name}");
        // The mates: one stored, the other a conflict naming it.
        let (mate, lost_mate, extra) = match (&answers[15], &answers[16]) {
            (Ok(single), Err(e)) => {
                assert_eq!(e.index(), Some(1), "{name}: {e}");
                (single[0].event.clone(), e, 0)
            }
            (Err(e), Ok(batch)) => {
                assert_eq!(e.index(), None, "{name}: {e}");
                (batch[1].event.clone(), e, 4)
            }
            other => panic!("{name}: one mate wins: {other:?}"),
        };
        let Error::Conflict(c) = lost_mate else {
            panic!("{name}: {lost_mate}")
        };
        assert_eq!(c.existing_event_id, mate.event_id, "{name}");
        created_at.push(mate.created_at);
        // The queued calls went in together: one transaction, one time.
        assert_eq!(created_at.len(), 13);
        assert!(
            created_at.iter().all(|t| *t == created_at[0]),
            "{name}: the queued calls committed in one group: {created_at:?}"
        );
        assert_ne!(created_at[0], plug.event.created_at, "{name}");

        let stored: Vec<String> = all_events(l)
            .into_iter()
            .map(|e| e.provider_event_id.unwrap().to_string())
            .collect();
        assert_eq!(
            stored.len(),
            1 + 1 + 8 + 3 + 1 + 1 + usize::from(extra > 0),
            "{name}: {stored:?}"
        );
        assert!(!stored.contains(&"b_new".to_string()), "{name}");
        assert_eq!(
            stored.contains(&"mate_first".to_string()),
            extra > 0,
            "{name}"
        );
        let amount =
            |e: &walletlog::WalletTransactionEvent| e.amount.to_string().parse::<i64>().unwrap();
        let expected = 1318 + amount(&won[0].event) + amount(&mate) + extra;
        assert_eq!(available(l, "w"), expected.to_string(), "{name}");
        let audit = all_audit(l);
        let count =
            |action: walletlog::AuditAction| audit.iter().filter(|r| r.action == action).count();
        assert_eq!(
            count(walletlog::AuditAction::Created),
            15 + usize::from(extra > 0),
            "{name}"
        );
        assert_eq!(count(walletlog::AuditAction::Duplicate), 1, "{name}");
        assert_eq!(count(walletlog::AuditAction::Conflict), 4, "{name}");
        // Records follow the order events were stored.
        let created: Vec<u64> = audit
            .iter()
            .filter(|r| r.action == walletlog::AuditAction::Created)
            .map(|r| r.event_sequence)
            .collect();
        assert!(
            created.windows(2).all(|w| w[0] < w[1]),
            "{name}: {created:?}"
        );
        let report = l.verify_audit().unwrap();
        assert!(report.ok, "{name}: {:?}", report.first_problem);
    }
}

#[test]
fn a_storage_failure_fails_its_group_and_stores_nothing_of_it() {
    let options = Options {
        sqlite: SqliteConfig {
            busy_timeout: Duration::from_millis(300),
            ..SqliteConfig::default()
        },
        postgres: walletlog::PostgresConfig {
            pool_timeout: Duration::from_millis(300),
            ..walletlog::PostgresConfig::default()
        },
        ..Options::default()
    };
    for engine in engines(options) {
        let name = engine.name;
        let l = &engine.ledger;
        let blocker = (engine.block)();
        let answers: Vec<Answer> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..6)
                .map(|i| {
                    let h = s.spawn(move || {
                        l.ingest(&deposit("w", &format!("lost{i}"), "1", i))
                            .map(|r| vec![r])
                    });
                    std::thread::sleep(Duration::from_millis(20));
                    h
                })
                .collect();
            // The lock is held until every call has given up.
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        blocker.release();
        for a in &answers {
            let e = a.as_ref().unwrap_err();
            match e {
                walletlog::Error::Storage(s) => {
                    assert_eq!(s.kind, StorageErrorKind::Busy, "{name}: {e}")
                }
                other => panic!("{name}: {other}"),
            }
        }
        assert!(
            all_events(l).is_empty(),
            "{name}: nothing of a failed group is stored"
        );
        assert!(all_audit(l).is_empty(), "{name}");
        // The next group commits.
        assert!(l.ingest(&deposit("w", "after", "1", 9)).unwrap().created());
        assert_eq!(all_events(l).len(), 1, "{name}");
    }
}

#[test]
fn an_idle_caller_commits_at_once_whatever_the_group_wait() {
    let options = Options {
        group: GroupLimits {
            max_wait: walletlog::GROUP_WAIT_MAX,
            ..GroupLimits::default()
        },
        ..Options::default()
    };
    let mut engines = engines(options.clone());
    engines.push(Engine {
        ledger: Ledger::open(":memory:", options).unwrap(),
        name: "memory",
        block: Box::new(|| unreachable!()),
        _dir: None,
    });
    for engine in engines {
        let name = engine.name;
        let l = &engine.ledger;
        // A burst of concurrent callers first, so the last group was large.
        std::thread::scope(|s| {
            for t in 0..8 {
                s.spawn(move || {
                    for i in 0..5 {
                        l.ingest(&deposit("w", &format!("burst{t}_{i}"), "1", i))
                            .unwrap();
                    }
                });
            }
        });
        // Then one caller alone: it never waits for the others of a group
        // (the wait is a whole second; a call takes milliseconds).
        for i in 0..5 {
            let start = Instant::now();
            assert!(l
                .ingest(&deposit("w", &format!("alone{i}"), "1", i))
                .unwrap()
                .created());
            let took = start.elapsed();
            assert!(
                took < Duration::from_millis(500),
                "{name}: a lone call took {took:?}"
            );
        }
        assert_eq!(all_events(l).len(), 45, "{name}");
    }
}

#[test]
fn group_options_are_checked_when_the_ledger_opens() {
    for (group, field) in [
        (
            GroupLimits {
                max_events: 0,
                ..GroupLimits::default()
            },
            "group_max_events",
        ),
        (
            GroupLimits {
                max_wait: Duration::from_secs(2),
                ..GroupLimits::default()
            },
            "group_max_wait_us",
        ),
    ] {
        let (_dir, path) = temp_db();
        let options = Options {
            group,
            ..Options::default()
        };
        let e = Ledger::open(&path, options).unwrap_err();
        assert_eq!(e.field(), Some(field), "{e}");
        assert!(!path.exists(), "a refused option creates no file");
    }
}
