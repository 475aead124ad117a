//! The JSON transport (`walletlog::json`) that the C binding and the CLI share.

use walletlog::json;
use walletlog::{Durability, Ledger, ListQuery, Order};

use super::util::{deposit, wallet};

const EVENT: &str = r#"{"wallet_id":"w1","provider":"stripe","event_type":"deposit",
    "amount":"12.30","currency":"USD","occurred_at":"2026-01-02T04:04:05+01:00",
    "provider_event_id":"evt_1","metadata":{"b":1,"a":"x"}}"#;

#[test]
fn an_event_read_out_feeds_back_in_as_the_same_event() {
    let ledger = Ledger::in_memory();
    let stored = ledger
        .ingest(&json::parse_event(EVENT).unwrap())
        .unwrap()
        .event;
    assert_eq!(stored.occurred_at.to_string(), "2026-01-02T03:04:05Z");
    let text = json::event(&stored).to_string();
    assert!(text.contains(r#""amount":"12.3""#), "{text}");
    assert!(text.contains(r#""metadata":{"a":"x","b":1}"#), "{text}");
    assert!(text.contains(r#""sequence":1"#), "{text}");
    // created_at and sequence are accepted and ignored; the replay is a duplicate.
    let again = ledger.ingest(&json::parse_event(&text).unwrap()).unwrap();
    assert!(again.duplicate());
    assert_eq!(again.event, stored);
    assert_eq!(ledger.changes_since(0, 10).unwrap().len(), 1);
}

#[test]
fn bad_event_json_names_the_field() {
    let cases = [
        (r#"{"wallet_id":"w1"#, "event", "not valid JSON"),
        ("[]", "event", "must be a JSON object"),
        (
            r#"{"wallet_id":"w1","provider":"stripe","event_type":"deposit","amount":12.3,"currency":"USD","occurred_at":"2026-01-02T03:04:05Z"}"#,
            "amount",
            "not a JSON number",
        ),
        (
            r#"{"provider":"stripe","event_type":"deposit","amount":"1","currency":"USD","occurred_at":"2026-01-02T03:04:05Z"}"#,
            "wallet_id",
            "is required",
        ),
        (
            r#"{"wallet_id":7,"provider":"stripe","event_type":"deposit","amount":"1","currency":"USD","occurred_at":"2026-01-02T03:04:05Z"}"#,
            "wallet_id",
            "must be a string",
        ),
        (
            r#"{"wallet_id":"w","provider":"stripe","event_type":"deposit","amount":"1","currency":"USD","occurred_at":"2026-01-02T03:04:05Z","metadata":"{}"}"#,
            "metadata",
            "must be a JSON object",
        ),
        (
            r#"{"wallet_id":"w","provider":"stripe","event_type":"deposit","amount":"1","currency":"USD","occurred_at":"2026-01-02T03:04:05Z","amout":"1"}"#,
            "event",
            "unknown field \"amout\"",
        ),
        // A key given twice is refused, at any depth: never its last value.
        (
            r#"{"wallet_id":"w1","wallet_id":"w2","provider":"stripe","event_type":"deposit","amount":"1","currency":"USD","occurred_at":"2026-01-02T03:04:05Z","event_id":"0190f0c2-0000-7000-8000-000000000001"}"#,
            "wallet_id",
            "the key \"wallet_id\" appears twice",
        ),
        (
            r#"{"wallet_id":"w","provider":"stripe","event_type":"deposit","amount":"1","currency":"USD","occurred_at":"2026-01-02T03:04:05Z","provider_event_id":"e","metadata":{"k":1,"k":2}}"#,
            "metadata",
            "the key \"k\" appears twice",
        ),
        // Broken JSON inside a field names the field; outside any, the event.
        (
            r#"{"wallet_id":"w","metadata":{"k":}}"#,
            "metadata",
            "is not valid JSON",
        ),
        (r#"{"wallet_id":"w","#, "event", "is not valid JSON"),
        (
            r#"{"wallet_id":"w","extra":{"k":1,"k":2}}"#,
            "event",
            "appears twice",
        ),
    ];
    for (text, field, says) in cases {
        let e = json::parse_event(text).unwrap_err();
        assert_eq!(e.field, field, "{text}");
        assert!(e.reason.contains(says), "{text}: {}", e.reason);
    }
    let huge = format!(
        r#"{{"wallet_id":"w","metadata":{{"pad":"{}"}}}}"#,
        "x".repeat(json::EVENT_JSON_BYTES_MAX)
    );
    assert!(json::parse_event(&huge)
        .unwrap_err()
        .reason
        .contains("at most"));
}

#[test]
fn an_http_body_with_a_key_twice_is_refused() {
    let body = br#"{"provider":"stripe","event_type":"deposit","amount":"1","amount":"1000","currency":"USD","occurred_at":"2026-01-02T03:04:05Z","provider_event_id":"e1"}"#;
    let e = json::parse_event_for(body, "w1", None, "", None).unwrap_err();
    assert_eq!(e.field, "amount");
    assert!(
        e.reason.contains("\"amount\" appears twice"),
        "{}",
        e.reason
    );
    // The same body with each key once is an event, its numbers kept as
    // numbers (not as the objects serde_json's arbitrary_precision makes).
    let once = br#"{"provider":"stripe","event_type":"deposit","amount":"1","currency":"USD","occurred_at":"2026-01-02T03:04:05Z","provider_event_id":"e1","metadata":{"a":[1,{"b":null}],"c":1.5,"d":-9223372036854775808,"e":true,"f":18446744073709551615,"g":"x"}}"#;
    let event = json::parse_event_for(once, "w1", None, "", None).unwrap();
    assert_eq!(
        event.metadata.as_json(),
        r#"{"a":[1,{"b":null}],"c":1.5,"d":-9223372036854775808,"e":true,"f":18446744073709551615,"g":"x"}"#
    );
    // Metadata text, as a plugin or Python gives it, is held to the same rule.
    let e = walletlog::Metadata::from_json(r#"{"k":1,"n":{"k":1,"k":2}}"#).unwrap_err();
    assert_eq!(e.field, "metadata");
    assert!(e.reason.contains("\"k\" appears twice"), "{}", e.reason);
    assert!(walletlog::Metadata::from_json(r#"{"k":1,"n":{"k":2}}"#).is_ok());
}

#[test]
fn a_batch_error_carries_the_item_index() {
    let text = format!(r#"[{EVENT}, {{"wallet_id":"w1"}}]"#);
    let e = json::parse_events(&text).unwrap_err();
    assert_eq!((e.index, e.field), (Some(1), "provider"));
    assert_eq!(json::parse_events("{}").unwrap_err().field, "events");
    assert_eq!(json::parse_events(&format!("[{EVENT}]")).unwrap().len(), 1);
}

#[test]
fn list_queries_whatever_the_key_order() {
    let ledger = Ledger::in_memory();
    for i in 0..3 {
        ledger
            .ingest(&deposit("w1", &format!("e{i}"), "1", i))
            .unwrap();
    }
    let first = ledger
        .list(
            &ListQuery::new(wallet("w1"))
                .order(Order::Asc)
                .limit(1)
                .unwrap(),
        )
        .unwrap();
    let cursor = first.next_cursor.unwrap();
    // "cursor" sorts before "order": the cursor must still be checked against
    // the whole query, not the part parsed so far.
    let text = format!(r#"{{"cursor":"{cursor}","order":"asc","limit":1}}"#);
    let q = json::parse_list_query(wallet("w1"), Some(&text)).unwrap();
    let next = ledger.list(&q).unwrap();
    assert_eq!(
        next.events[0].provider_event_id.as_ref().unwrap().as_str(),
        "e1"
    );

    let q = json::parse_list_query(
        wallet("w1"),
        Some(r#"{"event_types":["deposit"],"since":"2026-01-01T00:00:01Z","currency":"USD"}"#),
    )
    .unwrap();
    assert_eq!(ledger.list(&q).unwrap().events.len(), 2);
    for (text, field) in [
        (r#"{"limit":0}"#, "limit"),
        (r#"{"limit":"5"}"#, "limit"),
        (r#"{"order":"up"}"#, "order"),
        (r#"{"event_types":"deposit"}"#, "event_types"),
        (r#"{"since":"then"}"#, "since"),
        (r#"{"cursor":"abc"}"#, "cursor"),
        (r#"{"page":2}"#, "query"),
    ] {
        let e = json::parse_list_query(wallet("w1"), Some(text)).unwrap_err();
        assert_eq!(e.field, field, "{text}");
    }
}

#[test]
fn headers_as_an_object_or_as_pairs() {
    let h = json::parse_headers(r#"{"A":"1","b":"2"}"#).unwrap();
    assert_eq!(h, vec![("A".into(), "1".into()), ("b".into(), "2".into())]);
    let h = json::parse_headers(r#"[["sig","1"],["sig","2"]]"#).unwrap();
    assert_eq!(h.len(), 2, "repeated headers are kept");
    for bad in [r#"{"a":1}"#, r#"[["a"]]"#, r#""a""#, "["] {
        assert_eq!(
            json::parse_headers(bad).unwrap_err().field,
            "headers",
            "{bad}"
        );
    }
}

#[test]
fn options_are_checked_field_by_field() {
    let o = json::parse_options(
        r#"{"durability":"normal","busy_timeout_ms":250,"audit_key_hex":"00ff",
            "plugin_limits":{"fuel_per_call":1000,"call_timeout_ms":9},
            "inbox_limits":{"retention_s":86400,"deliveries_max":50}}"#,
    )
    .unwrap();
    assert_eq!(o.inbox.retention, std::time::Duration::from_secs(86400));
    assert_eq!(o.inbox.deliveries_max, 50);
    assert_eq!(o.inbox.prune_every, 1000, "the others keep their defaults");
    assert_eq!(o.sqlite.durability, Durability::Normal);
    assert_eq!(o.sqlite.busy_timeout, std::time::Duration::from_millis(250));
    assert_eq!(
        o.audit_key.as_ref().map(|k| k.as_bytes()),
        Some(&[0x00, 0xff][..])
    );
    assert_eq!(o.plugin_limits.fuel_per_call, 1000);
    assert_eq!(o.plugin_limits.call_timeout.as_millis(), 9);
    for (text, field) in [
        (r#"{"durability":"eventual"}"#, "durability"),
        (r#"{"audit_key_hex":"0"}"#, "audit_key_hex"),
        (r#"{"audit_key_hex":"zz"}"#, "audit_key_hex"),
        (r#"{"audit_key_hex":"é0"}"#, "audit_key_hex"),
        (r#"{"plugin_limits":{"fuel_per_call":0}}"#, "fuel_per_call"),
        (r#"{"plugin_limits":{"gas":1}}"#, "plugin_limits"),
        (r#"{"inbox_limits":{"prune_every":0}}"#, "prune_every"),
        (r#"{"inbox_limits":{"retention_s":-1}}"#, "retention_s"),
        (r#"{"inbox_limits":{"keep":1}}"#, "inbox_limits"),
        (r#"{"inbox_limits":[]}"#, "inbox_limits"),
        (r#"{"busy_timeout_ms":-5}"#, "busy_timeout_ms"),
        (r#"{"cache":true}"#, "options"),
        ("7", "options"),
    ] {
        let e = json::parse_options(text).unwrap_err();
        assert_eq!(e.field, field, "{text}");
    }
}

/// An HTTP ingest's body: its wallet and key come beside it, and it may
/// repeat them only to agree.
#[test]
fn an_http_body_names_its_wallet_and_key_only_to_agree() {
    const BODY: &str = r#""provider":"stripe","event_type":"deposit","amount":"1","currency":"USD","occurred_at":"2026-01-02T03:04:05Z""#;
    let parse = |extra: &str, header: Option<&str>| {
        let body = format!("{{{BODY}{extra}}}");
        json::parse_event_for(body.as_bytes(), "t:alice", header, "2:t:", None)
    };
    let field = |r: Result<walletlog::NewEvent, walletlog::ValidationError>| r.unwrap_err().field;
    // Neither: the path's wallet, the header's key as given (prefixed by the caller).
    let e = parse("", Some("2:t:k1")).unwrap();
    assert_eq!(
        (
            e.wallet_id.as_str(),
            e.idempotency_key.as_ref().unwrap().as_str()
        ),
        ("t:alice", "2:t:k1")
    );
    // The same wallet is fine; another, or a number, is refused by name.
    assert!(parse(r#","wallet_id":"t:alice""#, Some("2:t:k1")).is_ok());
    assert!(parse(r#","wallet_id":null"#, Some("2:t:k1")).is_ok());
    assert_eq!(
        field(parse(r#","wallet_id":"t:bob""#, Some("2:t:k1"))),
        "wallet_id"
    );
    assert_eq!(
        field(parse(r#","wallet_id":7"#, Some("2:t:k1"))),
        "wallet_id"
    );
    // The body's key is namespaced as the header is.
    let e = parse(r#","idempotency_key":"k1""#, None).unwrap();
    assert_eq!(e.idempotency_key.unwrap().as_str(), "2:t:k1");
    assert!(parse(r#","idempotency_key":"k1""#, Some("2:t:k1")).is_ok());
    assert_eq!(
        field(parse(r#","idempotency_key":"k2""#, Some("2:t:k1"))),
        "idempotency_key"
    );
    assert_eq!(
        field(parse(r#","idempotency_key":7"#, None)),
        "idempotency_key"
    );
    // Empty is refused as empty, with or without an (empty) header.
    let empty = parse(r#","idempotency_key":"""#, Some("")).unwrap_err();
    assert_eq!(empty.field, "idempotency_key");
    assert!(!empty.to_string().contains("differs"), "{empty}");
    assert_eq!(
        field(parse(r#","idempotency_key":"""#, None)),
        "idempotency_key"
    );
    // 255 characters with the prefix (4 here), counted in characters.
    let fits = format!(r#","idempotency_key":"{}""#, "é".repeat(251));
    assert_eq!(
        parse(&fits, None)
            .unwrap()
            .idempotency_key
            .unwrap()
            .as_str()
            .chars()
            .count(),
        255
    );
    let over = format!(r#","idempotency_key":"{}""#, "é".repeat(252));
    assert!(parse(&over, None)
        .unwrap_err()
        .to_string()
        .contains("at most 251"));
    // Unknown members are still refused, against the body.
    assert_eq!(field(parse(r#","colour":"red""#, None)), "body");
}

/// Metadata at `METADATA_DEPTH_MAX` (its own object counted) is stored and
/// reads back in inside an event line and a batch of them, all under the
/// JSON reading's 64 levels; one level more is refused naming `metadata`,
/// from text and inside an event document alike, and nothing is stored.
#[test]
fn metadata_at_its_depth_limit_round_trips_and_deeper_is_refused() {
    let max = walletlog::limits::METADATA_DEPTH_MAX;
    let nested = |depth: usize| format!("{}1{}", r#"{"a":"#.repeat(depth), "}".repeat(depth));
    let ledger = Ledger::in_memory();
    let at_limit = EVENT.replace(r#"{"b":1,"a":"x"}"#, &nested(max));
    let stored = ledger
        .ingest(&json::parse_event(&at_limit).unwrap())
        .unwrap()
        .event;
    let line = json::event(&stored).to_string();
    assert!(ledger
        .ingest(&json::parse_event(&line).unwrap())
        .unwrap()
        .duplicate());
    let batch = format!("[{line}]");
    assert_eq!(json::parse_events(&batch).unwrap().len(), 1);
    let deeper = nested(max + 1);
    let e = walletlog::Metadata::from_json(&deeper).unwrap_err();
    assert_eq!(e.field, "metadata");
    assert!(
        e.reason
            .contains(&format!("nested {} levels deep; at most {max}", max + 1)),
        "{}",
        e.reason
    );
    let e = json::parse_event(&EVENT.replace(r#"{"b":1,"a":"x"}"#, &deeper)).unwrap_err();
    assert_eq!(e.field, "metadata", "{}", e.reason);
    assert_eq!(ledger.changes_since(0, 10).unwrap().len(), 1);
}
