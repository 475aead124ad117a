//! Every field rule, with the error it must give; nothing invalid is stored.

use walletlog::{
    Amount, Currency, EventId, EventType, IdempotencyKey, Ledger, Metadata, Provider,
    ProviderEventId, RawEvent, Timestamp, ValidationError, WalletId,
};

fn raw() -> RawEvent {
    RawEvent {
        event_id: None,
        wallet_id: "w1".into(),
        provider: "stripe".into(),
        event_type: "deposit".into(),
        amount: "12.34".into(),
        currency: "USD".into(),
        provider_event_id: Some("evt_1".into()),
        idempotency_key: None,
        metadata: None,
        occurred_at: "2026-01-02T03:04:05Z".into(),
        occurred_at_estimated: false,
    }
}

/// Applies `edit` to a valid event and expects `field` to be refused with a
/// reason containing `reason`.
fn refused(edit: impl FnOnce(&mut RawEvent), field: &str, reason: &str) {
    let mut r = raw();
    edit(&mut r);
    let err = r.validate().expect_err("must be refused");
    assert_eq!(err.field, field, "{err}");
    assert!(
        err.reason.contains(reason),
        "reason {:?} lacks {reason:?}",
        err.reason
    );
    assert!(err.to_string().contains(field));
}

#[test]
fn a_valid_event_passes() {
    let e = raw().validate().unwrap();
    assert_eq!(e.amount.to_string(), "12.34");
    assert_eq!(e.occurred_at.to_string(), "2026-01-02T03:04:05Z");
    assert_eq!(e.metadata.as_json(), "{}");
}

#[test]
fn event_id_must_be_a_uuid() {
    refused(
        |r| r.event_id = Some("not-a-uuid".into()),
        "event_id",
        "not a UUID",
    );
    let v4 = uuid::Uuid::new_v4().to_string();
    let mut r = raw();
    r.event_id = Some(v4.clone());
    assert_eq!(r.validate().unwrap().event_id.unwrap().to_string(), v4);
    let v7 = EventId::generate();
    assert_eq!(v7.as_uuid().get_version_num(), 7);
}

#[test]
fn wallet_id_rules() {
    refused(
        |r| r.wallet_id = String::new(),
        "wallet_id",
        "must not be empty",
    );
    refused(
        |r| r.wallet_id = "x".repeat(129),
        "wallet_id",
        "129 characters long; at most 128",
    );
    refused(
        |r| r.wallet_id = "a\nb".into(),
        "wallet_id",
        "control character U+000A",
    );
    refused(
        |r| r.wallet_id = "a\u{0}b".into(),
        "wallet_id",
        "control character U+0000",
    );
    // 128 characters, counted as characters not bytes.
    assert!(WalletId::new("é".repeat(128)).is_ok());
    assert!(WalletId::new("wallet with spaces/and:punctuation").is_ok());
}

#[test]
fn provider_is_a_slug() {
    for bad in ["Stripe", "_stripe", "-x", "str ipe", "stripe!", "ß"] {
        refused(|r| r.provider = bad.into(), "provider", "slug");
    }
    refused(
        |r| r.provider = String::new(),
        "provider",
        "must not be empty",
    );
    refused(|r| r.provider = "a".repeat(65), "provider", "at most 64");
    for good in [
        "stripe",
        "0x",
        "a",
        "crypto.custodian-1_eu",
        &"a".repeat(64),
    ] {
        assert!(Provider::new(good).is_ok(), "{good}");
    }
}

#[test]
fn event_type_is_one_of_eight() {
    refused(
        |r| r.event_type = "chargeback".into(),
        "event_type",
        "not one of",
    );
    refused(
        |r| r.event_type = "Deposit".into(),
        "event_type",
        "not one of",
    );
    for t in EventType::ALL {
        assert_eq!(EventType::parse(t.as_str()).unwrap(), t);
        assert_eq!(EventType::from_code(t.code()), Some(t));
    }
    assert_eq!(EventType::ALL.len(), 8);
}

#[test]
fn amount_rules() {
    refused(|r| r.amount = "0".into(), "amount", "greater than 0");
    refused(|r| r.amount = "0.000".into(), "amount", "greater than 0");
    refused(|r| r.amount = "-1".into(), "amount", "greater than 0");
    refused(
        |r| r.amount = "-1".into(),
        "amount",
        "the event type gives the direction",
    );
    refused(|r| r.amount = "+1".into(), "amount", "plain decimal");
    refused(|r| r.amount = "1.".into(), "amount", "plain decimal");
    refused(|r| r.amount = ".5".into(), "amount", "plain decimal");
    refused(|r| r.amount = " 1".into(), "amount", "plain decimal");
    refused(|r| r.amount = "1,5".into(), "amount", "plain decimal");
    refused(
        |r| r.amount = "0.0000000000000000001".into(),
        "amount",
        "19 fractional digits; at most 18",
    );
    refused(
        |r| r.amount = "1".repeat(29),
        "amount",
        "29 significant digits; at most 28",
    );
    refused(
        |r| r.amount = format!("{}.5", "9".repeat(28)),
        "amount",
        "29 significant digits",
    );
    // The limits themselves pass, and trailing zeros carry no digits.
    for good in [
        "0.000000000000000001",
        &"9".repeat(28),
        &format!("{}.{}", "1".repeat(10), "2".repeat(18)),
        "1.50000000000000000000000",
        "007.5",
    ] {
        assert!(Amount::parse(good).is_ok(), "{good}");
    }
    assert_eq!(Amount::parse("007.50").unwrap().to_string(), "7.5");
    assert_eq!(
        Amount::parse("12.30").unwrap(),
        Amount::parse("12.3").unwrap()
    );
}

#[test]
fn a_float_never_becomes_an_amount() {
    // Text a float formatter or a JSON number would produce is refused:
    // exponents, NaN, infinities. (There is no constructor from f64 at all.)
    for text in [
        "1e5", "1E-7", "1.5e3", "NaN", "nan", "inf", "-inf", "Infinity", "0x10", "1_000",
    ] {
        let err = Amount::parse(text).unwrap_err();
        assert_eq!(err.field, "amount");
    }
    // A Decimal is exact and accepted; a negative or zero one is not.
    let d = rust_decimal::Decimal::new(1234, 2);
    assert_eq!(Amount::from_decimal(d).unwrap().to_string(), "12.34");
    assert!(Amount::from_decimal(rust_decimal::Decimal::new(-1, 0)).is_err());
    assert!(Amount::from_decimal(rust_decimal::Decimal::ZERO).is_err());
    assert!(
        Amount::from_decimal(rust_decimal::Decimal::new(1, 28)).is_err(),
        "28 fractional digits"
    );
    assert_eq!(Amount::from_units(5).unwrap().to_string(), "5");
}

#[test]
fn currency_rules() {
    for bad in ["usd", "U", "TOOLONGCURRENCY", "US D", "US-D", "", "ÜSD"] {
        refused(|r| r.currency = bad.into(), "currency", "[A-Z0-9]{2,12}");
    }
    for good in ["USD", "JPY", "USDC", "1INCH", "XX", "ABCDEFGHIJKL"] {
        assert!(Currency::new(good).is_ok(), "{good}");
    }
}

#[test]
fn key_rules() {
    refused(
        |r| r.provider_event_id = Some(String::new()),
        "provider_event_id",
        "must not be empty",
    );
    refused(
        |r| r.provider_event_id = Some("x".repeat(256)),
        "provider_event_id",
        "at most 255",
    );
    refused(
        |r| r.provider_event_id = Some("evt\t1".into()),
        "provider_event_id",
        "control character",
    );
    refused(
        |r| r.idempotency_key = Some(String::new()),
        "idempotency_key",
        "must not be empty",
    );
    refused(
        |r| r.idempotency_key = Some("k".repeat(256)),
        "idempotency_key",
        "at most 255",
    );
    assert!(ProviderEventId::new("x".repeat(255)).is_ok());
    assert!(IdempotencyKey::new("k".repeat(255)).is_ok());
}

#[test]
fn metadata_rules() {
    refused(
        |r| r.metadata = Some("[1,2]".into()),
        "metadata",
        "must be a JSON object",
    );
    refused(
        |r| r.metadata = Some("\"text\"".into()),
        "metadata",
        "must be a JSON object",
    );
    refused(
        |r| r.metadata = Some("{bad json".into()),
        "metadata",
        "not valid JSON",
    );
    let big = format!("{{\"k\":\"{}\"}}", "x".repeat(16 * 1024));
    refused(|r| r.metadata = Some(big), "metadata", "at most 16384");
    // Exactly at the limit passes.
    let at_limit = format!("{{\"k\":\"{}\"}}", "x".repeat(16 * 1024 - 8));
    assert_eq!(
        Metadata::from_json(&at_limit).unwrap().as_json().len(),
        16 * 1024
    );
    assert_eq!(
        Metadata::from_json(r#"{ "b" : 1, "a" : [true, null] }"#)
            .unwrap()
            .as_json(),
        r#"{"a":[true,null],"b":1}"#
    );
}

#[test]
fn timestamp_rules() {
    for naive in ["2026-01-02T03:04:05", "2026-01-02T03:04:05.123456"] {
        refused(
            |r| r.occurred_at = naive.into(),
            "occurred_at",
            "has no time zone: add \"Z\" for UTC",
        );
    }
    for bad in ["2026-01-02", "yesterday", "2026-13-01T00:00:00Z", ""] {
        refused(
            |r| r.occurred_at = bad.into(),
            "occurred_at",
            "not an RFC 3339 timestamp",
        );
    }
    // Offsets are converted to UTC; precision below the microsecond is truncated.
    let mut r = raw();
    r.occurred_at = "2026-01-02T04:04:05.1234567+01:00".into();
    let t = r.validate().unwrap().occurred_at;
    assert_eq!(t.to_string(), "2026-01-02T03:04:05.123456Z");
    assert_eq!(
        Timestamp::parse_rfc3339("x", "1970-01-01T00:00:00Z")
            .unwrap()
            .as_micros(),
        0
    );
    assert_eq!(
        Timestamp::from_micros("as_of", i64::MAX).unwrap_err().field,
        "as_of"
    );
}

#[test]
fn nothing_invalid_is_stored() {
    let l = Ledger::in_memory();
    let mut bad = raw();
    bad.amount = "-5".into();
    assert!(bad.validate().is_err());
    // Validation happens before the ledger sees anything: no event, no audit record.
    assert!(l.changes_since(0, 10).unwrap().is_empty());
    assert!(l.audit_log(0, 10).unwrap().is_empty());
    let err: walletlog::Error = ValidationError::new("amount", "x").at_index(3).into();
    assert_eq!(err.to_string(), "invalid item 3: amount: x");
    assert_eq!(err.kind(), walletlog::ErrorKind::Validation);
}
