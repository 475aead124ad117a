//! The port-contract suite: drives the `Storage` traits directly, below the
//! service, so that every adapter is held to the same strictness whatever
//! the service happens to ask of it. Written once, run on every adapter.

use std::panic::{catch_unwind, AssertUnwindSafe};

use walletlog::adapters::memory::MemoryStorage;
use walletlog::adapters::sqlite::SqliteStorage;
use walletlog::ports::{InboxPrune, Pruned, ReadTx, Storage, WriteTx};
use walletlog::{
    AttemptKind, AuditAction, AuditRecord, Currency, Delivery, DeliveryAttempt, DeliveryId, Error,
    EventId, EventType, InboxQuery, ListQuery, Order, Provider, RollupBucket, RollupKey, RollupRow,
    SqliteConfig, Timestamp, Totals, Verdict, WalletTransactionEvent,
};

use super::util::*;

/// One adapter under test, and what keeps it alive (a temporary directory).
struct Subject {
    storage: Box<dyn Storage>,
    _dir: Option<tempfile::TempDir>,
}

fn memory() -> Subject {
    Subject {
        storage: Box::new(MemoryStorage::new()),
        _dir: None,
    }
}

fn sqlite() -> Subject {
    let (dir, path) = temp_db();
    Subject {
        storage: Box::new(SqliteStorage::open(&path, SqliteConfig::default()).unwrap()),
        _dir: Some(dir),
    }
}

/// Runs every clause of the contract on a fresh subject from `make`.
fn contract(make: fn() -> Subject) {
    keys_are_unique_and_sequences_never_overwritten(&*make().storage);
    audit_sequences_are_unique_and_read_in_order(&*make().storage);
    rollup_rows_round_trip_and_stay_per_wallet(&*make().storage);
    rollups_alone_after_audit_records(&*make().storage);
    a_failed_write_leaves_nothing(&*make().storage);
    a_panicking_write_leaves_nothing_and_the_store_works(&*make().storage);
    list_follows_the_view(&*make().storage);
    deliveries_round_trip_and_stay_unique(&*make().storage);
    deliveries_list_by_the_view_and_prune_by_the_rules(&*make().storage);
    the_count_cap_keeps_the_newest_across_gaps(&*make().storage);
}

#[test]
fn memory_keeps_the_port_contract() {
    contract(memory);
}

#[test]
fn sqlite_keeps_the_port_contract() {
    contract(sqlite);
}

#[cfg(feature = "postgres")]
fn postgres() -> Subject {
    use walletlog::adapters::postgres::PostgresStorage;
    let location = pg_location("port");
    Subject {
        storage: Box::new(
            PostgresStorage::open(&location, walletlog::PostgresConfig::default()).unwrap(),
        ),
        _dir: None,
    }
}

#[cfg(feature = "postgres")]
#[test]
fn postgres_keeps_the_port_contract() {
    contract(postgres);
}

fn stored(pei: &str, sequence: u64, wallet_id: &str, at: i64) -> WalletTransactionEvent {
    deposit(wallet_id, pei, "1.5", at).to_stored(EventId::generate(), ts(0), sequence)
}

fn write(
    s: &dyn Storage,
    mut f: impl FnMut(&mut dyn WriteTx) -> walletlog::Result<()>,
) -> walletlog::Result<()> {
    s.write(&mut |tx| f(tx))
}

fn read<T>(s: &dyn Storage, mut f: impl FnMut(&dyn ReadTx) -> walletlog::Result<T>) -> T {
    let mut out = None;
    s.read(&mut |tx| {
        out = Some(f(tx)?);
        Ok(())
    })
    .unwrap();
    out.unwrap()
}

fn is_storage_error(r: walletlog::Result<impl std::fmt::Debug>) -> bool {
    matches!(r, Err(Error::Storage(_)))
}

fn keys_are_unique_and_sequences_never_overwritten(s: &dyn Storage) {
    let first = stored("e1", 1, "w1", 0);
    let mut keyed = stored("e2", 2, "w1", 1);
    keyed.idempotency_key = Some(idem("k2"));
    write(s, |tx| {
        assert!(tx.insert_event_if_new(&first)?);
        assert!(tx.insert_event_if_new(&keyed)?);
        Ok(())
    })
    .unwrap();
    // Each key alone is enough to refuse an insert, whatever the sequence.
    let mut same_id = stored("other", 3, "w1", 2);
    same_id.event_id = first.event_id;
    let same_pei = stored("e1", 3, "w2", 2);
    let mut same_key = stored("e3", 3, "w1", 2);
    same_key.idempotency_key = Some(idem("k2"));
    for taken in [&same_id, &same_pei, &same_key] {
        // The answer of the run that committed: an engine may answer a run
        // provisionally and run it again (see `WriteTx::insert_event_if_new`).
        let mut answer = None;
        write(s, |tx| {
            answer = Some(tx.insert_event_if_new(taken)?);
            Ok(())
        })
        .unwrap();
        assert_eq!(answer, Some(false), "{taken:?}");
    }
    // The same provider event id under another provider is another event.
    let mut other_provider = stored("e1", 3, "w1", 2);
    other_provider.provider = walletlog::Provider::new("adyen").unwrap();
    write(s, |tx| {
        assert!(tx.insert_event_if_new(&other_provider)?);
        Ok(())
    })
    .unwrap();
    // A taken sequence with new keys is an error, never an overwrite; with
    // a taken key as well, the key decides: a refused insert.
    let collision = stored("e9", 2, "w9", 9);
    let r = write(s, |tx| tx.insert_event_if_new(&collision).map(|_| ()));
    assert!(is_storage_error(r), "a sequence collision must fail");
    let both = stored("e1", 2, "w1", 0);
    write(s, |tx| {
        assert!(
            !tx.insert_event_if_new(&both)?,
            "a taken key is a refused insert"
        );
        Ok(())
    })
    .unwrap();
    let events = read(s, |tx| tx.events_after(0, 100));
    assert_eq!(
        events,
        [first.clone(), keyed.clone(), other_provider.clone()]
    );
    assert_eq!(read(s, |tx| tx.last_event_sequence()), 3);
    assert_eq!(
        read(s, |tx| tx.event_by_id(&keyed.event_id)),
        Some(keyed.clone())
    );
    assert_eq!(
        read(s, |tx| tx.event_by_idempotency_key(&idem("k2"))),
        Some(keyed.clone())
    );
    let pei = walletlog::ProviderEventId::new("e1").unwrap();
    assert_eq!(
        read(s, |tx| tx.event_by_provider_event_id(&first.provider, &pei)),
        Some(first.clone())
    );
    assert_eq!(
        read(s, |tx| tx.event_by_idempotency_key(&idem("nope"))),
        None
    );
    assert_eq!(read(s, |tx| tx.events_after(1, 1)), [keyed]);
}

fn record(sequence: u64, prev_hash: [u8; 32]) -> AuditRecord {
    AuditRecord {
        sequence,
        recorded_at: ts(sequence as i64),
        action: AuditAction::Created,
        event_id: EventId::generate(),
        event_sequence: sequence,
        matched_on: None,
        actor: "api".into(),
        fingerprint: [sequence as u8; 32],
        body_sha256: sequence.is_multiple_of(2).then_some([7; 32]),
        delivery_id: sequence
            .is_multiple_of(2)
            .then(|| DeliveryId::from_bytes([sequence as u8; 16])),
        prev_hash,
        hash: [sequence as u8 + 100; 32],
    }
}

fn audit_sequences_are_unique_and_read_in_order(s: &dyn Storage) {
    let records: Vec<AuditRecord> = (1..=5).map(|i| record(i, [i as u8 - 1; 32])).collect();
    write(s, |tx| {
        for r in &records {
            tx.append_audit(r)?;
        }
        Ok(())
    })
    .unwrap();
    let taken = record(3, [0; 32]);
    assert!(is_storage_error(write(s, |tx| tx.append_audit(&taken))));
    assert_eq!(read(s, |tx| tx.audit_after(0, 100)), records);
    assert_eq!(read(s, |tx| tx.audit_after(2, 2)), records[2..4]);
    assert_eq!(read(s, |tx| tx.audit_after(5, 10)), []);
    assert_eq!(read(s, |tx| tx.last_audit()), Some((5, records[4].hash)));
}

fn totals(available: &str, count: u64, at: i64) -> Totals {
    Totals {
        available: walletlog::Money::parse(available).unwrap(),
        held: walletlog::Money::parse("-0.25").unwrap(),
        event_count: count,
        last_occurred_at: Some(ts(at)),
    }
}

fn key(wallet_id: &str, currency: &str, bucket: RollupBucket) -> RollupKey {
    RollupKey {
        wallet_id: wallet(wallet_id),
        currency: Currency::new(currency).unwrap(),
        bucket,
    }
}

fn rollup_rows_round_trip_and_stay_per_wallet(s: &dyn Storage) {
    let hour = |secs: i64| RollupBucket::hour_of(ts(secs));
    let rows = [
        RollupRow {
            key: key("w1", "USD", RollupBucket::AllTime),
            totals: totals("10.5", 3, 7300),
        },
        RollupRow {
            key: key("w1", "USD", hour(0)),
            totals: totals("4", 2, 10),
        },
        RollupRow {
            key: key("w1", "USD", hour(7300)),
            totals: totals("6.5", 1, 7300),
        },
        RollupRow {
            key: key("w1", "EUR", RollupBucket::AllTime),
            totals: totals("-1", 1, 5),
        },
        RollupRow {
            key: key("w2", "USD", RollupBucket::AllTime),
            totals: totals("99", 9, 9),
        },
    ];
    write(s, |tx| {
        for r in &rows {
            tx.put_rollup(r)?;
        }
        Ok(())
    })
    .unwrap();
    // A put replaces the row: no arithmetic in the adapter.
    let replaced = RollupRow {
        key: rows[0].key.clone(),
        totals: totals("11", 4, 7400),
    };
    write(s, |tx| tx.put_rollup(&replaced)).unwrap();
    assert_eq!(
        read(s, |tx| tx.rollup(&rows[0].key)),
        Some(replaced.totals.clone())
    );
    assert_eq!(
        read(s, |tx| tx.rollup(&key("w3", "USD", RollupBucket::AllTime))),
        None
    );
    let mut current = read(s, |tx| tx.balances(&wallet("w1")));
    current.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        current,
        [
            (Currency::new("EUR").unwrap(), rows[3].totals.clone()),
            (Currency::new("USD").unwrap(), replaced.totals.clone()),
        ],
        "only w1's all-time rows"
    );
    let RollupBucket::Hour { start } = hour(7300) else {
        unreachable!()
    };
    let mut before = Vec::new();
    s.read(&mut |tx| {
        tx.buckets_before(&wallet("w1"), start, &mut |c, t| {
            before.push((c, t));
            Ok(())
        })
    })
    .unwrap();
    assert_eq!(
        before,
        [(Currency::new("USD").unwrap(), rows[1].totals.clone())]
    );
    let mut all = Vec::new();
    s.read(&mut |tx| {
        tx.rollups(&mut |r| {
            all.push(r);
            Ok(())
        })
    })
    .unwrap();
    assert_eq!(all.len(), 5);
    assert!(all.contains(&replaced) && all.contains(&rows[2]) && all.contains(&rows[4]));
}

/// A write of rollup rows alone, after audit records exist, and a read of
/// the rollups in the same transaction as the write that put them.
fn rollups_alone_after_audit_records(s: &dyn Storage) {
    write(s, |tx| {
        for i in 1..=3 {
            tx.append_audit(&record(i, [i as u8 - 1; 32]))?;
        }
        Ok(())
    })
    .unwrap();
    let row = RollupRow {
        key: key("w1", "USD", RollupBucket::AllTime),
        totals: totals("4.5", 2, 60),
    };
    write(s, |tx| {
        tx.put_rollup(&row)?;
        assert_eq!(tx.balances(&wallet("w1"))?.len(), 1);
        Ok(())
    })
    .unwrap();
    assert_eq!(read(s, |tx| tx.rollup(&row.key)), Some(row.totals.clone()));
    assert_eq!(read(s, |tx| tx.last_audit()).map(|(n, _)| n), Some(3));
}

fn a_failed_write_leaves_nothing(s: &dyn Storage) {
    let existing = RollupRow {
        key: key("w1", "USD", RollupBucket::AllTime),
        totals: totals("1", 1, 0),
    };
    write(s, |tx| tx.put_rollup(&existing)).unwrap();
    let r = write(s, |tx| {
        tx.insert_event_if_new(&stored("e1", 1, "w1", 0))?;
        tx.append_audit(&record(1, [0; 32]))?;
        tx.put_rollup(&RollupRow {
            key: existing.key.clone(),
            totals: totals("2", 2, 1),
        })?;
        tx.put_rollup(&RollupRow {
            key: key("w1", "USD", RollupBucket::hour_of(ts(0))),
            totals: totals("1", 1, 0),
        })?;
        tx.set_meta("k", b"v")?;
        Err(walletlog::ValidationError::new("amount", "refused on purpose").into())
    });
    assert!(matches!(r, Err(Error::Validation(_))));
    assert_nothing_but(s, &existing);
}

fn assert_nothing_but(s: &dyn Storage, existing: &RollupRow) {
    assert_eq!(read(s, |tx| tx.events_after(0, 10)), []);
    assert_eq!(read(s, |tx| tx.last_event_sequence()), 0);
    assert_eq!(read(s, |tx| tx.audit_after(0, 10)), []);
    assert_eq!(read(s, |tx| tx.last_audit()), None);
    assert_eq!(read(s, |tx| tx.meta("k")), None);
    let mut rows = Vec::new();
    s.read(&mut |tx| {
        tx.rollups(&mut |r| {
            rows.push(r);
            Ok(())
        })
    })
    .unwrap();
    assert_eq!(
        rows,
        std::slice::from_ref(existing),
        "the row from before, as it was, and no other"
    );
}

fn a_panicking_write_leaves_nothing_and_the_store_works(s: &dyn Storage) {
    let existing = RollupRow {
        key: key("w1", "USD", RollupBucket::AllTime),
        totals: totals("1", 1, 0),
    };
    write(s, |tx| tx.put_rollup(&existing)).unwrap();
    let panicked = catch_unwind(AssertUnwindSafe(|| {
        let _ = write(s, |tx| {
            tx.insert_event_if_new(&stored("e1", 1, "w1", 0))?;
            tx.append_audit(&record(1, [0; 32]))?;
            tx.set_meta("k", b"v")?;
            panic!("a bug inside a write");
        });
    }));
    assert!(panicked.is_err());
    assert_nothing_but(s, &existing);
    write(s, |tx| {
        tx.insert_event_if_new(&stored("e1", 1, "w1", 0))
            .map(|_| ())
    })
    .unwrap();
    assert_eq!(read(s, |tx| tx.last_event_sequence()), 1);
}

fn list_follows_the_view(s: &dyn Storage) {
    // Three times, two events at the same time; a fee; another wallet.
    let mut events = vec![
        stored("a", 1, "w1", 10),
        stored("b", 2, "w1", 20),
        stored("c", 3, "w1", 20),
        stored("d", 4, "w1", 30),
        stored("x", 5, "w2", 20),
    ];
    events[3].event_type = EventType::Fee;
    write(s, |tx| {
        for e in &events {
            tx.insert_event_if_new(e)?;
        }
        Ok(())
    })
    .unwrap();
    let pei = |es: Vec<WalletTransactionEvent>| -> Vec<String> {
        es.iter()
            .map(|e| e.provider_event_id.as_ref().unwrap().to_string())
            .collect()
    };
    let base = ListQuery::new(wallet("w1"));
    assert_eq!(
        pei(read(s, |tx| tx.list(base.view(), 10))),
        ["d", "c", "b", "a"]
    );
    let asc = base.clone().order(Order::Asc);
    assert_eq!(pei(read(s, |tx| tx.list(asc.view(), 2))), ["a", "b"]);
    let after_b = asc.clone().cursor(&asc.cursor_after(&events[1])).unwrap();
    assert_eq!(pei(read(s, |tx| tx.list(after_b.view(), 10))), ["c", "d"]);
    let since = base.clone().since(ts(20)).unwrap().until(ts(30)).unwrap();
    assert_eq!(pei(read(s, |tx| tx.list(since.view(), 10))), ["c", "b"]);
    let fees = base.clone().event_types(vec![EventType::Fee]).unwrap();
    assert_eq!(pei(read(s, |tx| tx.list(fees.view(), 10))), ["d"]);
    let eur = base.clone().currency(Currency::new("EUR").unwrap());
    assert_eq!(
        pei(read(s, |tx| tx.list(eur.view(), 10))),
        Vec::<String>::new()
    );
    let mut amounts = Vec::new();
    s.read(&mut |tx| {
        tx.amounts_between(&wallet("w1"), ts(20), ts(30), &mut |row| {
            amounts.push((row.event_type, row.occurred_at));
            Ok(())
        })
    })
    .unwrap();
    assert_eq!(
        amounts.len(),
        3,
        "both bounds inclusive: {amounts:?} (at {})",
        Timestamp::to_string(&ts(20))
    );
}

fn delivery(sequence: u64, provider: &str, body: &[u8], at: i64, verdict: Verdict) -> Delivery {
    let mut d = Delivery {
        sequence,
        delivery_id: DeliveryId::generate(),
        provider: Provider::new(provider).unwrap(),
        received_at: ts(at),
        url: Some("https://example.test/hook?x=1".into()),
        headers: vec![("Stripe-Signature".into(), "t=1,v1=ab".into())],
        body: Some(body.to_vec()),
        body_sha256: sha(body),
        body_bytes: body.len() as u64,
        attempt_count: 0,
        attempts: Vec::new(),
    };
    d.push_attempt(DeliveryAttempt {
        at: ts(at),
        kind: AttemptKind::Receipt,
        plugin_version: "1.0.0".into(),
        plugin_sha256: [9; 32],
        verdict,
        reason: (!verdict.settled()).then(|| format!("refused {verdict}")),
        event_ids: if verdict == Verdict::Ingested {
            vec![EventId::generate()]
        } else {
            Vec::new()
        },
    });
    d
}

fn sha(body: &[u8]) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    Sha256::digest(body).into()
}

fn deliveries_round_trip_and_stay_unique(s: &dyn Storage) {
    let first = delivery(1, "stripe", b"{\"a\":1}", 10, Verdict::Unsupported);
    write(s, |tx| tx.put_delivery(&first)).unwrap();
    assert_eq!(
        read(s, |tx| tx.delivery(&first.delivery_id)),
        Some(first.clone())
    );
    assert_eq!(
        read(s, |tx| tx
            .delivery_by_body(&first.provider, &first.body_sha256)),
        Some(first.clone())
    );
    assert_eq!(
        read(s, |tx| tx.delivery_by_body(
            &Provider::new("adyen").unwrap(),
            &first.body_sha256
        )),
        None,
        "a body is one delivery per provider"
    );
    assert_eq!(read(s, |tx| tx.last_delivery()), Some((1, ts(10))));

    // A replay updates the row in place: attempts, verdict, body kept.
    let mut replayed = first.clone();
    replayed.push_attempt(DeliveryAttempt {
        at: ts(20),
        kind: AttemptKind::Replay,
        plugin_version: "2.0.0".into(),
        plugin_sha256: [8; 32],
        verdict: Verdict::Ingested,
        reason: None,
        event_ids: vec![EventId::generate(), EventId::generate()],
    });
    write(s, |tx| tx.put_delivery(&replayed)).unwrap();
    let back = read(s, |tx| tx.delivery(&first.delivery_id)).unwrap();
    assert_eq!(back, replayed);
    assert_eq!(back.attempt_count, 2);
    assert_eq!(back.verdict(), Verdict::Ingested);

    // The same body of the same provider under another id, a taken
    // sequence, a changed receipt time: errors, and nothing changes.
    let mut twin = delivery(2, "stripe", b"{\"a\":1}", 30, Verdict::Ignored);
    assert!(is_storage_error(write(s, |tx| tx.put_delivery(&twin))));
    twin.body_sha256 = sha(b"other");
    twin.sequence = 1;
    assert!(is_storage_error(write(s, |tx| tx.put_delivery(&twin))));
    let mut moved = replayed.clone();
    moved.received_at = ts(99);
    assert!(is_storage_error(write(s, |tx| tx.put_delivery(&moved))));
    assert_eq!(
        read(s, |tx| tx.delivery(&first.delivery_id)),
        Some(replayed)
    );
    assert_eq!(read(s, |tx| tx.last_delivery()), Some((1, ts(10))));
    assert_eq!(read(s, |tx| tx.delivery(&twin.delivery_id)), None);

    // A failed write takes a new delivery back.
    let third = delivery(3, "stripe", b"third", 40, Verdict::Malformed);
    let failed = write(s, |tx| {
        tx.put_delivery(&third)?;
        Err(Error::NotFound {
            what: "on purpose".into(),
        })
    });
    assert!(failed.is_err());
    assert_eq!(read(s, |tx| tx.delivery(&third.delivery_id)), None);
}

fn deliveries_list_by_the_view_and_prune_by_the_rules(s: &dyn Storage) {
    let all = [
        delivery(1, "stripe", b"1", 10, Verdict::Ingested),
        delivery(2, "stripe", b"2", 20, Verdict::Unsupported),
        delivery(3, "adyen", b"3", 20, Verdict::Unsupported),
        delivery(4, "stripe", b"4", 30, Verdict::Ingested),
        delivery(5, "stripe", b"5", 40, Verdict::Conflict),
    ];
    write(s, |tx| all.iter().try_for_each(|d| tx.put_delivery(d))).unwrap();
    let seqs = |ds: Vec<Delivery>| -> Vec<u64> {
        assert!(
            ds.iter().all(|d| d.body.is_none()),
            "listings leave bodies out"
        );
        ds.iter().map(|d| d.sequence).collect()
    };
    let base = InboxQuery::new();
    assert_eq!(
        seqs(read(s, |tx| tx.deliveries(base.view(), 10))),
        [5, 4, 3, 2, 1]
    );
    let asc = base.clone().order(Order::Asc);
    assert_eq!(seqs(read(s, |tx| tx.deliveries(asc.view(), 2))), [1, 2]);
    let after = asc.clone().cursor(&asc.cursor_after(&all[1])).unwrap();
    assert_eq!(
        seqs(read(s, |tx| tx.deliveries(after.view(), 10))),
        [3, 4, 5]
    );
    let stripe = base.clone().provider(Provider::new("stripe").unwrap());
    assert_eq!(
        seqs(read(s, |tx| tx.deliveries(stripe.view(), 10))),
        [5, 4, 2, 1]
    );
    let dead = stripe.clone().verdict(Verdict::Unsupported);
    assert_eq!(seqs(read(s, |tx| tx.deliveries(dead.view(), 10))), [2]);
    let window = base.clone().since(ts(20)).unwrap().until(ts(40)).unwrap();
    assert_eq!(
        seqs(read(s, |tx| tx.deliveries(window.view(), 10))),
        [4, 3, 2]
    );

    // Ingested bodies older than 35 go; deliveries before 15 go; then at
    // most 3 remain, the newest.
    let pruned = write_value(s, |tx| {
        tx.prune_deliveries(&InboxPrune {
            delete_before: ts(15),
            ingested_body_after: ts(0),
            ingested_body_before: ts(35),
            keep_newest: 3,
        })
    });
    assert_eq!(
        pruned,
        Pruned {
            deliveries_deleted: 2,
            bodies_dropped: 1
        }
    );
    assert_eq!(
        seqs(read(s, |tx| tx.deliveries(base.view(), 10))),
        [5, 4, 3]
    );
    let kept = |i: usize| read(s, |tx| tx.delivery(&all[i].delivery_id));
    assert_eq!(kept(0), None);
    assert_eq!(kept(1), None);
    assert_eq!(
        kept(3).unwrap().body,
        None,
        "an ingested body past its retention"
    );
    assert_eq!(
        kept(4).unwrap().body.as_deref(),
        Some(&b"5"[..]),
        "a dead letter keeps its body"
    );
    assert_eq!(kept(2).unwrap().body.as_deref(), Some(&b"3"[..]));
}

/// The cap counts deliveries, not sequences: a gap in the sequences (rows
/// deleted by hand, numbers of an older schema) never deletes a delivery
/// the cap keeps, and a span wider than the cap deletes only the excess.
fn the_count_cap_keeps_the_newest_across_gaps(s: &dyn Storage) {
    let at = [1u64, 2, 5, 9, 10];
    let all: Vec<_> = at
        .iter()
        .map(|&q| {
            delivery(
                q,
                "stripe",
                q.to_string().as_bytes(),
                q as i64 * 10,
                Verdict::Unsupported,
            )
        })
        .collect();
    write(s, |tx| all.iter().try_for_each(|d| tx.put_delivery(d))).unwrap();
    let sequences = || -> Vec<u64> {
        read(s, |tx| tx.deliveries(InboxQuery::new().view(), 10))
            .iter()
            .map(|d| d.sequence)
            .collect()
    };
    let prune = |keep_newest: u64| {
        write_value(s, |tx| {
            tx.prune_deliveries(&InboxPrune {
                delete_before: ts(0),
                ingested_body_after: ts(0),
                ingested_body_before: ts(0),
                keep_newest,
            })
        })
        .deliveries_deleted
    };
    // Five deliveries over ten sequence numbers: a cap of 5 (or 9) keeps
    // them all, though their sequences span more.
    assert_eq!(prune(9), 0);
    assert_eq!(prune(5), 0);
    assert_eq!(sequences(), [10, 9, 5, 2, 1]);
    // A cap of 3 deletes the two oldest, not every sequence below 10 - 3.
    assert_eq!(prune(3), 2);
    assert_eq!(sequences(), [10, 9, 5]);
    assert_eq!(read(s, |tx| tx.delivery(&all[1].delivery_id)), None);
    assert!(read(s, |tx| tx.delivery(&all[2].delivery_id)).is_some());
    assert_eq!(prune(3), 0, "a second pass finds nothing over the cap");
    assert_eq!(prune(1), 2);
    assert_eq!(sequences(), [10]);
    // A cap of none (refused as a limit, possible in the struct) empties it.
    assert_eq!(prune(0), 1);
    assert!(sequences().is_empty());
}

fn write_value<T>(
    s: &dyn Storage,
    mut f: impl FnMut(&mut dyn WriteTx) -> walletlog::Result<T>,
) -> T {
    let mut out = None;
    s.write(&mut |tx| {
        out = Some(f(tx)?);
        Ok(())
    })
    .unwrap();
    out.unwrap()
}

/// SQLite finds the inbox's time ranges by searching the sequence, so it
/// refuses a delivery that would break receipt order, and stores nothing.
#[test]
fn sqlite_refuses_a_delivery_out_of_receipt_order() {
    let subject = sqlite();
    let s = &*subject.storage;
    let first = delivery(1, "stripe", b"first", 20, Verdict::Ingested);
    write(s, |tx| tx.put_delivery(&first)).unwrap();
    let third = delivery(3, "stripe", b"third", 40, Verdict::Ingested);
    write(s, |tx| tx.put_delivery(&third)).unwrap();
    for (at, why) in [(10, "before its predecessor"), (50, "after its successor")] {
        let second = delivery(2, "stripe", b"second", at, Verdict::Ingested);
        let e = write(s, |tx| tx.put_delivery(&second)).unwrap_err();
        assert_eq!(e.field(), Some("received_at"), "{why}: {e}");
        assert_eq!(
            read(s, |tx| tx.delivery(&second.delivery_id)),
            None,
            "{why}"
        );
    }
    let second = delivery(2, "stripe", b"second", 30, Verdict::Ingested);
    write(s, |tx| tx.put_delivery(&second)).unwrap();
    // Its own update (a replay) keeps its place.
    write(s, |tx| tx.put_delivery(&second)).unwrap();
    assert_eq!(read(s, |tx| tx.last_delivery()), Some((3, ts(40))));

    // Appended right after the last delivery the transaction has read, as
    // a receipt does: still refused when received before it.
    let early = delivery(4, "stripe", b"fourth", 35, Verdict::Ingested);
    let e = write(s, |tx| {
        tx.last_delivery()?;
        tx.put_delivery(&early)
    })
    .unwrap_err();
    assert_eq!(e.field(), Some("received_at"), "{e}");
    // Two appended in one transaction: the second is held to the first.
    let fourth = delivery(4, "stripe", b"fourth", 45, Verdict::Ingested);
    let append_both = |fifth: &Delivery| {
        write(s, |tx| {
            tx.last_delivery()?;
            tx.put_delivery(&fourth)?;
            tx.put_delivery(fifth)
        })
    };
    let e = append_both(&delivery(5, "stripe", b"fifth", 44, Verdict::Ingested)).unwrap_err();
    assert_eq!(e.field(), Some("received_at"), "{e}");
    assert_eq!(
        read(s, |tx| tx.delivery(&fourth.delivery_id)),
        None,
        "a refused transaction stores neither"
    );
    append_both(&delivery(5, "stripe", b"fifth", 45, Verdict::Ingested)).unwrap();
    assert_eq!(read(s, |tx| tx.last_delivery()), Some((5, ts(45))));
}
