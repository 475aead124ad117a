//! The conformance suite: written once, run against every storage adapter
//! (memory, SQLite on a real file, PostgreSQL on a real server).

use walletlog::{
    AuditAction, ConflictReason, Currency, Error, EventId, EventType, Ledger, ListQuery,
    MatchedKey, Metadata, Order, Provider, ProviderEventId, BATCH_EVENTS_MAX,
};

use super::util::*;

on_every_engine!("":
    created_then_duplicate_on_each_key,
    amounts_compare_numerically,
    metadata_may_differ_and_first_write_wins,
    conflicting_replay_is_refused_and_audited,
    keys_matching_two_events_conflict,
    same_provider_event_id_under_other_provider_is_new,
    batch_is_all_or_nothing,
    batch_duplicates_within_itself,
    batch_size_is_limited,
    sequences_increase_in_storage_order,
    lookups_find_by_every_key,
    list_orders_by_occurrence_then_sequence,
    list_pages_with_cursors,
    list_filters,
    list_rejects_bad_limits_and_cursors,
    list_is_stable_while_events_arrive,
    balance_follows_the_event_table,
    balance_as_of_reconstructs_the_past,
    balance_goes_negative,
    changes_since_replays_in_order,
    audit_chain_verifies,
    an_event_without_a_key_is_refused,
    the_nil_uuid_is_no_event_id,
    ingest_each_stores_the_good_and_names_the_bad,
);

fn the_nil_uuid_is_no_event_id(l: &Ledger) {
    // The audit trail's placeholder for "matched no stored event".
    let e = deposit("w1", "evt_1", "10", 0).with_event_id(EventId::from_bytes([0; 16]));
    for attempt in [
        l.ingest(&e),
        l.ingest_batch(std::slice::from_ref(&e))
            .map(|mut r| r.remove(0)),
        l.ingest_each(std::slice::from_ref(&e)).unwrap().remove(0),
    ] {
        let Err(Error::Validation(v)) = attempt else {
            panic!("the nil UUID must be refused as an event id: {attempt:?}");
        };
        assert_eq!(v.field, "event_id");
        assert!(v.reason.contains("nil UUID"), "{v}");
    }
    assert!(all_events(l).is_empty(), "nothing stored");
    assert!(all_audit(l).is_empty(), "nothing audited");
    // As the faces' JSON gives it.
    let e = walletlog::json::parse_event(
        r#"{"event_id":"00000000-0000-0000-0000-000000000000","wallet_id":"w1","provider":"p",
            "event_type":"deposit","amount":"1","currency":"USD","occurred_at":"2026-01-01T00:00:00Z"}"#,
    )
    .unwrap();
    assert!(matches!(l.ingest(&e), Err(Error::Validation(v)) if v.field == "event_id"));
    assert!(all_events(l).is_empty());
}

fn an_event_without_a_key_is_refused(l: &Ledger) {
    let mut e = deposit("w1", "evt_1", "10", 0);
    e.provider_event_id = None;
    for attempt in [
        l.ingest(&e),
        l.ingest_batch(std::slice::from_ref(&e))
            .map(|mut r| r.remove(0)),
    ] {
        let Err(Error::Validation(v)) = attempt else {
            panic!("an event without a key must be refused: {attempt:?}");
        };
        assert_eq!(v.field, "idempotency_key");
        for key in ["event_id", "provider_event_id", "idempotency_key"] {
            assert!(v.reason.contains(key), "{v}");
        }
    }
    let each = l.ingest_each(std::slice::from_ref(&e)).unwrap();
    assert!(matches!(&each[0], Err(Error::Validation(v)) if v.field == "idempotency_key"));
    assert!(all_events(l).is_empty(), "nothing stored");
    assert!(
        all_audit(l).is_empty(),
        "a refused input never reached storage"
    );
    // Any one key is enough.
    assert!(l
        .ingest(&e.clone().with_idempotency_key(idem("k")))
        .unwrap()
        .created());
    assert!(l
        .ingest(&e.with_event_id(EventId::generate()))
        .unwrap()
        .created());
}

fn ingest_each_stores_the_good_and_names_the_bad(l: &Ledger) {
    l.ingest(&deposit("w1", "stored", "5", 0)).unwrap();
    let mut keyless = deposit("w1", "x", "1", 0);
    keyless.provider_event_id = None;
    let items = [
        deposit("w1", "a", "1", 1),
        deposit("w1", "stored", "6", 0), // conflicts with the stored event
        keyless,
        deposit("w1", "a", "1", 1), // a duplicate of the first item
        deposit("w1", "b", "2", 2),
        deposit("w1", "a", "9", 1), // conflicts with the first item
    ];
    let results = l.ingest_each(&items).unwrap();
    assert_eq!(results.len(), items.len());
    assert!(results[0].as_ref().unwrap().created());
    assert!(
        matches!(&results[1], Err(Error::Conflict(c)) if c.fields() == ["amount"] && c.index.is_none())
    );
    assert!(matches!(&results[2], Err(Error::Validation(_))));
    assert_eq!(
        results[3].as_ref().unwrap().matched_on(),
        Some(MatchedKey::ProviderEventId)
    );
    assert!(results[4].as_ref().unwrap().created());
    assert!(matches!(&results[5], Err(Error::Conflict(_))));
    let stored: Vec<_> = all_events(l)
        .iter()
        .map(|e| e.provider_event_id.as_ref().unwrap().to_string())
        .collect();
    assert_eq!(stored, ["stored", "a", "b"]);
    assert_eq!(available(l, "w1"), "8");
    // Every item that reached storage is audited once, in order.
    let actions: Vec<_> = all_audit(l).iter().map(|r| r.action).collect();
    use AuditAction::*;
    assert_eq!(
        actions,
        [Created, Created, Conflict, Duplicate, Created, Conflict]
    );
    assert!(l.verify_audit().unwrap().ok);
    let too_many: Vec<_> = (0..=BATCH_EVENTS_MAX)
        .map(|i| deposit("w9", &format!("e{i}"), "1", 0))
        .collect();
    assert!(matches!(l.ingest_each(&too_many), Err(Error::Validation(v)) if v.field == "events"));
}

fn created_then_duplicate_on_each_key(l: &Ledger) {
    let id = EventId::generate();
    let e = deposit("w1", "evt_1", "10", 0)
        .with_event_id(id)
        .with_idempotency_key(idem("k1"));
    let first = l.ingest(&e).unwrap();
    assert!(first.created());
    assert_eq!(first.matched_on(), None);
    assert_eq!(first.event.event_id, id);

    // Each key on its own finds the stored event.
    let by_id = deposit("w1", "evt_other", "10", 0).with_event_id(id);
    let mut by_id = by_id;
    by_id.provider_event_id = Some(ProviderEventId::new("evt_1").unwrap());
    assert_eq!(
        l.ingest(&by_id).unwrap().matched_on(),
        Some(MatchedKey::EventId)
    );
    assert_eq!(
        l.ingest(&deposit("w1", "evt_1", "10", 0))
            .unwrap()
            .matched_on(),
        Some(MatchedKey::ProviderEventId)
    );
    let mut by_key = deposit("w1", "evt_1", "10", 0).with_idempotency_key(idem("k1"));
    by_key.provider_event_id = Some(ProviderEventId::new("evt_1").unwrap());
    by_key.event_id = None;
    let r = l.ingest(&by_key).unwrap();
    assert!(r.duplicate());
    assert_eq!(
        r.event, first.event,
        "a duplicate returns the stored original"
    );

    let mut only_key = deposit("w1", "x", "10", 0).with_idempotency_key(idem("k1"));
    only_key.provider_event_id = None;
    let err = l.ingest(&only_key).unwrap_err();
    // The stored event has provider_event_id evt_1; this input has none.
    match err {
        Error::Conflict(c) => {
            assert_eq!(c.key, MatchedKey::IdempotencyKey);
            assert_eq!(
                c.reason,
                ConflictReason::DifferentFields(vec!["provider_event_id"])
            );
        }
        other => panic!("expected a conflict, got {other}"),
    }

    assert_eq!(all_events(l).len(), 1, "replays store nothing");
    let actions: Vec<_> = all_audit(l).iter().map(|r| r.action).collect();
    assert_eq!(
        actions,
        [
            AuditAction::Created,
            AuditAction::Duplicate,
            AuditAction::Duplicate,
            AuditAction::Duplicate,
            AuditAction::Conflict
        ]
    );
    assert_eq!(available(l, "w1"), "10");
}

fn amounts_compare_numerically(l: &Ledger) {
    assert!(l
        .ingest(&deposit("w1", "evt_1", "12.3", 0))
        .unwrap()
        .created());
    let r = l.ingest(&deposit("w1", "evt_1", "12.30", 0)).unwrap();
    assert!(r.duplicate());
    assert_eq!(r.event.amount.to_string(), "12.3");
    assert_eq!(all_events(l).len(), 1);
}

fn metadata_may_differ_and_first_write_wins(l: &Ledger) {
    let first = deposit("w1", "evt_1", "1", 0)
        .with_metadata(Metadata::from_json(r#"{"b":1,"a":"x"}"#).unwrap());
    l.ingest(&first).unwrap();
    let second = deposit("w1", "evt_1", "1", 0)
        .with_metadata(Metadata::from_json(r#"{"other":true}"#).unwrap());
    let r = l.ingest(&second).unwrap();
    assert!(r.duplicate());
    assert_eq!(
        r.event.metadata.as_json(),
        r#"{"a":"x","b":1}"#,
        "canonical, and the first write wins"
    );
    let stored = l.get_by_provider_event_id(
        &Provider::new("stripe").unwrap(),
        &ProviderEventId::new("evt_1").unwrap(),
    );
    assert_eq!(
        stored.unwrap().unwrap().metadata.as_json(),
        r#"{"a":"x","b":1}"#
    );
}

fn conflicting_replay_is_refused_and_audited(l: &Ledger) {
    l.ingest(&deposit("w1", "evt_1", "10", 0)).unwrap();
    let mut changed = deposit("w1", "evt_1", "11", 5);
    changed.currency = Currency::new("EUR").unwrap();
    let err = l.ingest(&changed).unwrap_err();
    let Error::Conflict(c) = &err else {
        panic!("expected a conflict, got {err}")
    };
    assert_eq!(c.key, MatchedKey::ProviderEventId);
    assert_eq!(c.index, None);
    assert_eq!(
        c.reason,
        ConflictReason::DifferentFields(vec!["amount", "currency", "occurred_at"])
    );
    let text = err.to_string();
    assert!(
        text.contains("provider_event_id") && text.contains("amount, currency, occurred_at"),
        "{text}"
    );
    assert_eq!(err.kind(), walletlog::ErrorKind::Conflict);

    assert_eq!(all_events(l).len(), 1, "nothing stored");
    let audit = all_audit(l);
    assert_eq!(audit.len(), 2);
    assert_eq!(audit[1].action, AuditAction::Conflict);
    assert_eq!(audit[1].matched_on, Some(MatchedKey::ProviderEventId));
    assert_eq!(audit[1].event_sequence, 1);
    assert_eq!(
        l.balance(&wallet("w1"), None).unwrap().len(),
        1,
        "no EUR balance appeared"
    );
    assert!(l.verify_audit().unwrap().ok);
}

fn keys_matching_two_events_conflict(l: &Ledger) {
    l.ingest(&deposit("w1", "evt_1", "10", 0).with_idempotency_key(idem("a")))
        .unwrap();
    l.ingest(&deposit("w1", "evt_2", "10", 0).with_idempotency_key(idem("b")))
        .unwrap();
    // Same money fields as evt_1, but its idempotency key is evt_2's.
    let err = l
        .ingest(&deposit("w1", "evt_1", "10", 0).with_idempotency_key(idem("b")))
        .unwrap_err();
    let Error::Conflict(c) = err else {
        panic!("expected a conflict")
    };
    assert_eq!(c.key, MatchedKey::ProviderEventId);
    assert!(matches!(
        c.reason,
        ConflictReason::KeysMatchDifferentEvents {
            other_key: MatchedKey::IdempotencyKey,
            ..
        }
    ));
    assert_eq!(all_events(l).len(), 2);
}

fn same_provider_event_id_under_other_provider_is_new(l: &Ledger) {
    l.ingest(&deposit("w1", "evt_1", "10", 0)).unwrap();
    let mut other = deposit("w1", "evt_1", "10", 0);
    other.provider = Provider::new("adyen").unwrap();
    assert!(l.ingest(&other).unwrap().created());
    assert_eq!(all_events(l).len(), 2);
}

fn batch_is_all_or_nothing(l: &Ledger) {
    l.ingest(&deposit("w1", "evt_0", "10", 0)).unwrap();
    let audit_before = all_audit(l).len();
    let batch = vec![
        deposit("w1", "evt_1", "1", 1),
        deposit("w1", "evt_2", "2", 2),
        deposit("w1", "evt_0", "999", 0), // conflicts with the stored evt_0
        deposit("w1", "evt_3", "3", 3),
    ];
    let err = l.ingest_batch(&batch).unwrap_err();
    let Error::Conflict(c) = &err else {
        panic!("expected a conflict, got {err}")
    };
    assert_eq!(c.index, Some(2));
    assert!(err.to_string().starts_with("item 2:"), "{err}");
    assert_eq!(all_events(l).len(), 1, "none of the batch is stored");
    assert_eq!(available(l, "w1"), "10");
    let audit = all_audit(l);
    assert_eq!(
        audit.len(),
        audit_before + 1,
        "only the conflict is audited"
    );
    assert_eq!(audit.last().unwrap().action, AuditAction::Conflict);
    assert!(l.verify_audit().unwrap().ok);

    // The same batch without the bad item goes in whole.
    let good: Vec<_> = batch
        .into_iter()
        .enumerate()
        .filter(|(i, _)| *i != 2)
        .map(|(_, e)| e)
        .collect();
    let results = l.ingest_batch(&good).unwrap();
    assert!(results.iter().all(|r| r.created()));
    assert_eq!(all_events(l).len(), 4);
    assert_eq!(available(l, "w1"), "16");
}

fn batch_duplicates_within_itself(l: &Ledger) {
    let e = deposit("w1", "evt_1", "5", 0);
    let conflicting = deposit("w1", "evt_1", "6", 0);
    let results = l.ingest_batch(&[e.clone(), e.clone()]).unwrap();
    assert!(results[0].created());
    assert_eq!(results[1].matched_on(), Some(MatchedKey::ProviderEventId));
    assert_eq!(results[1].event.sequence, results[0].event.sequence);
    let err = l.ingest_batch(&[deposit("w1", "evt_9", "1", 0), conflicting.clone(), {
        let mut c = conflicting;
        c.provider_event_id = Some(ProviderEventId::new("evt_10").unwrap());
        c
    }]);
    assert!(matches!(err, Err(Error::Conflict(ref c)) if c.index == Some(1)));
    // An item conflicting with an earlier item of the same batch.
    let err = l
        .ingest_batch(&[
            deposit("w2", "evt_20", "1", 0),
            deposit("w2", "evt_20", "2", 0),
        ])
        .unwrap_err();
    assert!(
        matches!(err, Error::Conflict(ref c) if c.index == Some(1)),
        "{err}"
    );
    assert_eq!(all_events(l).len(), 1);
    assert!(l.verify_audit().unwrap().ok);
}

fn batch_size_is_limited(l: &Ledger) {
    let batch: Vec<_> = (0..=BATCH_EVENTS_MAX)
        .map(|i| deposit("w1", &format!("e{i}"), "1", 0))
        .collect();
    let err = l.ingest_batch(&batch).unwrap_err();
    let Error::Validation(v) = err else {
        panic!("expected a validation error")
    };
    assert_eq!(v.field, "events");
    assert!(all_events(l).is_empty());
    assert!(l.ingest_batch(&[]).unwrap().is_empty());
}

fn sequences_increase_in_storage_order(l: &Ledger) {
    for i in 0..20 {
        // occurred_at decreasing: storage order is not occurrence order.
        l.ingest(&deposit("w1", &format!("e{i}"), "1", 100 - i))
            .unwrap();
    }
    let seqs: Vec<u64> = all_events(l).iter().map(|e| e.sequence).collect();
    assert_eq!(seqs, (1..=20).collect::<Vec<_>>());
    let audit = all_audit(l);
    assert_eq!(
        audit.iter().map(|r| r.sequence).collect::<Vec<_>>(),
        (1..=20).collect::<Vec<_>>()
    );
    assert!(audit.windows(2).all(|w| w[1].prev_hash == w[0].hash));
}

fn lookups_find_by_every_key(l: &Ledger) {
    let stored = l
        .ingest(&deposit("w1", "evt_1", "1", 0).with_idempotency_key(idem("k")))
        .unwrap()
        .event;
    assert_eq!(l.get(&stored.event_id).unwrap().as_ref(), Some(&stored));
    let stripe = Provider::new("stripe").unwrap();
    assert_eq!(
        l.get_by_provider_event_id(&stripe, &ProviderEventId::new("evt_1").unwrap())
            .unwrap()
            .as_ref(),
        Some(&stored)
    );
    assert_eq!(
        l.get_by_idempotency_key(&idem("k")).unwrap().as_ref(),
        Some(&stored)
    );
    assert_eq!(l.get(&EventId::generate()).unwrap(), None);
    assert_eq!(
        l.get_by_provider_event_id(&stripe, &ProviderEventId::new("nope").unwrap())
            .unwrap(),
        None
    );
    assert_eq!(l.get_by_idempotency_key(&idem("nope")).unwrap(), None);
}

fn list_orders_by_occurrence_then_sequence(l: &Ledger) {
    l.ingest(&deposit("w1", "c", "1", 30)).unwrap(); // seq 1
    l.ingest(&deposit("w1", "a", "1", 10)).unwrap(); // seq 2
    l.ingest(&deposit("w1", "b", "1", 30)).unwrap(); // seq 3
    l.ingest(&deposit("w2", "z", "1", 20)).unwrap(); // another wallet
    let ids = |order| -> Vec<String> {
        let q = ListQuery::new(wallet("w1")).order(order);
        l.list(&q)
            .unwrap()
            .events
            .iter()
            .map(|e| e.provider_event_id.clone().unwrap().to_string())
            .collect()
    };
    assert_eq!(ids(Order::Desc), ["b", "c", "a"]);
    assert_eq!(ids(Order::Asc), ["a", "c", "b"]);
    let page = l.list(&ListQuery::new(wallet("w1"))).unwrap();
    assert_eq!(page.next_cursor, None, "a last page has no cursor");
    assert!(l
        .list(&ListQuery::new(wallet("nobody")))
        .unwrap()
        .events
        .is_empty());
}

fn collect_pages(l: &Ledger, base: &ListQuery) -> Vec<u64> {
    let mut seen = Vec::new();
    let mut query = base.clone();
    loop {
        let page = l.list(&query).unwrap();
        assert!(page.events.len() <= base.page_size());
        seen.extend(page.events.iter().map(|e| e.sequence));
        match page.next_cursor {
            Some(c) => query = base.clone().cursor(&c).unwrap(),
            None => return seen,
        }
    }
}

fn list_pages_with_cursors(l: &Ledger) {
    // 25 events, many sharing a timestamp, so ties on occurred_at matter.
    let batch: Vec<_> = (0..25)
        .map(|i| deposit("w1", &format!("e{i}"), "1", i / 4))
        .collect();
    l.ingest_batch(&batch).unwrap();
    for order in [Order::Desc, Order::Asc] {
        for limit in [1, 3, 4, 7, 25, 1000] {
            let base = ListQuery::new(wallet("w1"))
                .order(order)
                .limit(limit)
                .unwrap();
            let seen = collect_pages(l, &base);
            let mut expected: Vec<_> = all_events(l)
                .into_iter()
                .map(|e| (e.occurred_at, e.sequence))
                .collect();
            expected.sort();
            if order == Order::Desc {
                expected.reverse();
            }
            assert_eq!(
                seen,
                expected.iter().map(|x| x.1).collect::<Vec<_>>(),
                "order {order:?} limit {limit}"
            );
        }
    }
}

fn list_filters(l: &Ledger) {
    l.ingest(&ev("w1", "a", EventType::Deposit, "1", "USD", 0))
        .unwrap();
    l.ingest(&ev("w1", "b", EventType::Fee, "1", "USD", 10))
        .unwrap();
    l.ingest(&ev("w1", "c", EventType::Deposit, "1", "EUR", 20))
        .unwrap();
    l.ingest(&ev("w1", "d", EventType::Hold, "1", "USD", 30))
        .unwrap();
    let names = |q: ListQuery| -> String {
        l.list(&q)
            .unwrap()
            .events
            .iter()
            .map(|e| e.provider_event_id.clone().unwrap().to_string())
            .collect()
    };
    let q = || ListQuery::new(wallet("w1")).order(Order::Asc);
    assert_eq!(
        names(q().event_types(vec![EventType::Deposit]).unwrap()),
        "ac"
    );
    assert_eq!(
        names(
            q().event_types(vec![EventType::Fee, EventType::Hold])
                .unwrap()
        ),
        "bd"
    );
    assert_eq!(names(q().currency(Currency::new("EUR").unwrap())), "c");
    assert_eq!(
        names(q().since(ts(10)).unwrap()),
        "bcd",
        "since is inclusive"
    );
    assert_eq!(
        names(q().until(ts(20)).unwrap()),
        "ab",
        "until is exclusive"
    );
    assert_eq!(
        names(q().since(ts(10)).unwrap().until(ts(30)).unwrap()),
        "bc"
    );
    assert_eq!(
        names(
            q().since(ts(0))
                .unwrap()
                .event_types(vec![EventType::Deposit])
                .unwrap()
                .currency(Currency::new("USD").unwrap())
        ),
        "a"
    );
    // Filters and cursors together.
    let base = ListQuery::new(wallet("w1"))
        .limit(1)
        .unwrap()
        .currency(Currency::new("USD").unwrap());
    assert_eq!(collect_pages(l, &base), [4, 2, 1]);
}

fn list_rejects_bad_limits_and_cursors(l: &Ledger) {
    for bad in [0, 1001] {
        let err = ListQuery::new(wallet("w1")).limit(bad).unwrap_err();
        assert_eq!(err.field, "limit");
    }
    assert!(ListQuery::new(wallet("w1")).limit(1000).is_ok());
    assert_eq!(
        ListQuery::new(wallet("w1"))
            .event_types(vec![])
            .unwrap_err()
            .field,
        "event_types"
    );
    assert_eq!(
        ListQuery::new(wallet("w1"))
            .since(ts(5))
            .unwrap()
            .until(ts(5))
            .unwrap_err()
            .field,
        "until"
    );

    for i in 0..3 {
        l.ingest(&deposit("w1", &format!("e{i}"), "1", i)).unwrap();
    }
    let cursor = l
        .list(&ListQuery::new(wallet("w1")).limit(1).unwrap())
        .unwrap()
        .next_cursor
        .unwrap();
    for bad in [
        "",
        "garbage!",
        "AAAA",
        &cursor[..cursor.len() - 2],
        &format!("{cursor}AA"),
        &"A".repeat(500),
    ] {
        let err = ListQuery::new(wallet("w1"))
            .limit(1)
            .unwrap()
            .cursor(bad)
            .unwrap_err();
        assert_eq!(err.field, "cursor", "{bad:?}");
        assert!(err.reason.contains("malformed"), "{bad:?}: {}", err.reason);
    }
    // A cursor changed anywhere, position included, is refused: never read
    // as another place in the history.
    for i in 0..cursor.len() {
        let c = cursor.as_bytes()[i];
        let other = if c == b'A' { 'B' } else { 'A' };
        let changed = format!("{}{other}{}", &cursor[..i], &cursor[i + 1..]);
        let err = ListQuery::new(wallet("w1"))
            .limit(1)
            .unwrap()
            .cursor(&changed)
            .unwrap_err();
        assert_eq!(err.field, "cursor", "{changed:?}");
        assert!(err.reason.contains("malformed"), "{i}: {}", err.reason);
    }
    // A cursor from another wallet, order or filter is foreign.
    let foreign = [
        ListQuery::new(wallet("w2")).limit(1).unwrap(),
        ListQuery::new(wallet("w1"))
            .limit(1)
            .unwrap()
            .order(Order::Asc),
        ListQuery::new(wallet("w1"))
            .limit(1)
            .unwrap()
            .currency(Currency::new("USD").unwrap()),
        ListQuery::new(wallet("w1"))
            .limit(1)
            .unwrap()
            .event_types(vec![EventType::Deposit])
            .unwrap(),
        ListQuery::new(wallet("w1"))
            .limit(1)
            .unwrap()
            .since(ts(0))
            .unwrap(),
    ];
    for q in foreign {
        let err = q.clone().cursor(&cursor).unwrap_err();
        assert!(
            err.reason.contains("different query"),
            "{q:?}: {}",
            err.reason
        );
    }
    // A different page size is the same query: the cursor stays valid.
    assert!(ListQuery::new(wallet("w1"))
        .limit(2)
        .unwrap()
        .cursor(&cursor)
        .is_ok());
}

fn list_is_stable_while_events_arrive(l: &Ledger) {
    for i in 0..10 {
        l.ingest(&deposit("w1", &format!("old{i}"), "1", 100 + i * 10))
            .unwrap();
    }
    let base = ListQuery::new(wallet("w1")).limit(3).unwrap();
    let mut query = base.clone();
    let mut seen = Vec::new();
    let mut n = 0;
    loop {
        let page = l.list(&query).unwrap();
        seen.extend(
            page.events
                .iter()
                .map(|e| e.provider_event_id.clone().unwrap().to_string()),
        );
        // Between pages: one event newer than everything, one in the middle of the past.
        l.ingest(&deposit("w1", &format!("new{n}"), "1", 10_000 + n))
            .unwrap();
        l.ingest(&deposit("w1", &format!("mid{n}"), "1", 145))
            .unwrap();
        n += 1;
        match page.next_cursor {
            Some(c) => query = base.clone().cursor(&c).unwrap(),
            None => break,
        }
    }
    let old: Vec<_> = seen.iter().filter(|s| s.starts_with("old")).collect();
    assert_eq!(
        old.len(),
        10,
        "every event present at the start is returned: {seen:?}"
    );
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(
        unique.len(),
        seen.len(),
        "no event is returned twice: {seen:?}"
    );
}

fn balance_follows_the_event_table(l: &Ledger) {
    let rows = [
        (EventType::Deposit, "100"),
        (EventType::TransferIn, "50"),
        (EventType::Refund, "5.5"),
        (EventType::Withdrawal, "20"),
        (EventType::TransferOut, "10"),
        (EventType::Fee, "0.25"),
        (EventType::Hold, "30"),
        (EventType::Release, "12"),
    ];
    for (i, (ty, amount)) in rows.iter().enumerate() {
        l.ingest(&ev("w1", &format!("e{i}"), *ty, amount, "USD", i as i64))
            .unwrap();
    }
    l.ingest(&ev("w1", "jpy", EventType::Deposit, "500", "JPY", 100))
        .unwrap();
    let b = l.balance(&wallet("w1"), None).unwrap();
    assert_eq!(b.len(), 2);
    let (jpy, usd) = (&b[0], &b[1]);
    assert_eq!(jpy.currency.as_str(), "JPY");
    assert_eq!(jpy.available.to_string(), "500");
    assert_eq!(usd.currency.as_str(), "USD");
    // 100 + 50 + 5.5 - 20 - 10 - 0.25 - 30 + 12
    assert_eq!(usd.available.to_string(), "107.25");
    assert_eq!(usd.held.to_string(), "18");
    assert_eq!(usd.total.to_string(), "125.25");
    assert_eq!(usd.event_count, 8);
    assert_eq!(usd.last_occurred_at, Some(ts(7)));
    assert!(l.balance(&wallet("nobody"), None).unwrap().is_empty());
}

fn balance_as_of_reconstructs_the_past(l: &Ledger) {
    // Arrive out of order, across several hour buckets.
    let at = [7200, 0, 3599, 3600, 10_000, 3600 * 24 * 40, 1];
    for (i, secs) in at.iter().enumerate() {
        l.ingest(&deposit(
            "w1",
            &format!("e{i}"),
            &format!("{}", i + 1),
            *secs,
        ))
        .unwrap();
    }
    let available = |as_of: Option<i64>| -> Option<String> {
        l.balance(&wallet("w1"), as_of.map(ts))
            .unwrap()
            .first()
            .map(|b| format!("{}/{}", b.available, b.event_count))
    };
    assert_eq!(available(Some(-1)), None, "nothing before the first event");
    assert_eq!(available(Some(0)), Some("2/1".into()), "as_of is inclusive");
    assert_eq!(available(Some(1)), Some("9/2".into()));
    assert_eq!(available(Some(3599)), Some("12/3".into()));
    assert_eq!(available(Some(3600)), Some("16/4".into()));
    assert_eq!(available(Some(7199)), Some("16/4".into()));
    assert_eq!(available(Some(7200)), Some("17/5".into()));
    assert_eq!(available(Some(10_000)), Some("22/6".into()));
    assert_eq!(available(None), Some("28/7".into()));
    assert_eq!(available(Some(3600 * 24 * 400)), Some("28/7".into()));
    let past = l.balance(&wallet("w1"), Some(ts(3600))).unwrap();
    assert_eq!(past[0].last_occurred_at, Some(ts(3600)));
}

fn balance_goes_negative(l: &Ledger) {
    l.ingest(&ev("w1", "a", EventType::Withdrawal, "10.5", "USD", 0))
        .unwrap();
    l.ingest(&ev("w1", "b", EventType::Release, "3", "USD", 1))
        .unwrap();
    let b = &l.balance(&wallet("w1"), None).unwrap()[0];
    assert_eq!(b.available.to_string(), "-7.5");
    assert_eq!(b.held.to_string(), "-3");
    assert_eq!(b.total.to_string(), "-10.5");
    assert!(b.total.is_negative());
}

fn changes_since_replays_in_order(l: &Ledger) {
    for i in 0..5 {
        l.ingest(&deposit(&format!("w{i}"), &format!("e{i}"), "1", -i))
            .unwrap();
    }
    let seqs = |after, limit| -> Vec<u64> {
        l.changes_since(after, limit)
            .unwrap()
            .iter()
            .map(|e| e.sequence)
            .collect()
    };
    assert_eq!(seqs(0, 100), [1, 2, 3, 4, 5]);
    assert_eq!(seqs(2, 2), [3, 4]);
    assert!(seqs(5, 10).is_empty());
    for bad in [0, 10_001] {
        let Err(Error::Validation(v)) = l.changes_since(0, bad) else {
            panic!("limit {bad} accepted")
        };
        assert_eq!(v.field, "limit");
    }
}

fn audit_chain_verifies(l: &Ledger) {
    let report = l.verify_audit().unwrap();
    assert!(report.ok);
    assert_eq!(report.records_checked, 0);
    l.ingest(&deposit("w1", "a", "1", 0)).unwrap();
    l.ingest(&deposit("w1", "a", "1", 0)).unwrap();
    let _ = l.ingest(&deposit("w1", "a", "2", 0));
    l.ingest_batch(&[deposit("w1", "b", "1", 0), deposit("w2", "c", "1", 0)])
        .unwrap();
    let report = l.verify_audit().unwrap();
    assert!(report.ok, "{:?}", report.first_problem);
    assert_eq!(report.records_checked, 5);
    assert_eq!(report.events_checked, 3);
    let audit = all_audit(l);
    assert_eq!(audit[0].actor, "api");
    assert_eq!(audit[0].event_sequence, 1);
    assert_eq!(
        audit[0].fingerprint,
        l.get(&audit[0].event_id).unwrap().unwrap().fingerprint()
    );
    assert_eq!(audit[0].body_sha256, None);
    assert_eq!(audit[0].prev_hash, walletlog::GENESIS_HASH);
}
