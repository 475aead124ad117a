//! Webhooks end to end through the real plugins built by `cargo xtask
//! plugins`: signature, sandbox, validation, ingestion, audit.

use hmac::{Hmac, Mac};
use walletlog::{AuditAction, Error, Ledger, PluginErrorKind, Secret, SignatureError, Webhook};

use super::signature::fixture;
use super::util::*;

/// A plugin component built from this repository.
pub fn plugin(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/../target/plugins/{name}.wasm",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!("{path}: {e}; build the plugins first with `cargo xtask plugins`")
    })
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

pub const STRIPE_SECRET: &str = "whsec_walletlog_test_secret";

/// A Stripe webhook signed now with `STRIPE_SECRET`.
pub fn stripe_webhook(body: &[u8]) -> Webhook {
    let t = now();
    let mut m = Hmac::<sha2::Sha256>::new_from_slice(STRIPE_SECRET.as_bytes()).unwrap();
    m.update(format!("{t}.").as_bytes());
    m.update(body);
    let sig: String = hex(&m.finalize().into_bytes());
    Webhook {
        headers: vec![("Stripe-Signature".into(), format!("t={t},v1={sig}"))],
        body: body.to_vec(),
        url: None,
    }
}

/// SYNTHETIC: a Stripe v1 event envelope around a published object fixture.
pub fn stripe_envelope(id: &str, kind: &str, object: &serde_json::Value) -> Vec<u8> {
    serde_json::json!({
        "id": id,
        "object": "event",
        "account": "acct_walletlog",
        "api_version": "2024-06-20",
        "created": 1_767_225_600,
        "data": { "object": object },
        "livemode": false,
        "type": kind,
    })
    .to_string()
    .into_bytes()
}

pub fn stripe_object(file: &str) -> serde_json::Value {
    serde_json::from_slice(&fixture(&format!("stripe/{file}"))).unwrap()
}

pub fn stripe_ledger() -> Ledger {
    let l = Ledger::in_memory();
    let info = l.install_plugin(&plugin("stripe")).unwrap();
    assert_eq!(
        (info.provider.as_str(), info.version.as_str()),
        ("stripe", "2.0.1")
    );
    assert_eq!(info.signature.name(), "stripe-v1");
    // A plain &str is a secret too.
    l.set_webhook_secret("stripe", STRIPE_SECRET).unwrap();
    l
}

/// (type, amount, currency, provider_event_id) of a stored event.
pub type Row = (String, String, String, String);

/// The rows of each stored result.
pub fn summary(results: &[walletlog::IngestResult]) -> Vec<Row> {
    results
        .iter()
        .map(|r| {
            let e = &r.event;
            (
                e.event_type.as_str().to_owned(),
                e.amount.to_string(),
                e.currency.to_string(),
                e.provider_event_id.as_ref().unwrap().to_string(),
            )
        })
        .collect()
}

pub fn row(t: &str, amount: &str, currency: &str, id: &str) -> Row {
    (t.into(), amount.into(), currency.into(), id.into())
}

#[test]
fn stripe_object_fixtures_become_exact_events() {
    let cases: Vec<(&str, &str, Vec<Row>)> = vec![
        (
            "object_charge.fixtures3.json",
            "charge.succeeded",
            vec![row("deposit", "1", "USD", "ch_1PgafuB7WZ01zgkWXYmPNZs8")],
        ),
        (
            "object_payment_intent.fixtures3.json",
            "payment_intent.succeeded",
            vec![row(
                "deposit",
                "10.99",
                "USD",
                "pi_1PgafyB7WZ01zgkWSjxsAJo3",
            )],
        ),
        (
            "object_refund.fixtures3.json",
            "refund.created",
            vec![row("withdrawal", "1", "USD", "re_1Pgc72B7WZ01zgkWqPvrRrPE")],
        ),
        (
            "object_payout.fixtures3.json",
            "payout.paid",
            vec![row(
                "withdrawal",
                "11",
                "USD",
                "po_1Pgc79B7WZ01zgkWu1KToYf4",
            )],
        ),
        (
            "object_transfer.fixtures3.json",
            "transfer.created",
            vec![row(
                "transfer_out",
                "11",
                "USD",
                "tr_1Pgc7BB7WZ01zgkWVJfE40RX",
            )],
        ),
        (
            "object_transfer_reversal.fixtures3.json",
            "transfer_reversal.created",
            vec![row(
                "transfer_in",
                "11",
                "USD",
                "trr_1Pgc7BB7WZ01zgkWsU61ufNC",
            )],
        ),
        (
            "object_topup.fixtures3.json",
            "topup.succeeded",
            vec![row("deposit", "10", "USD", "tu_1Pgc7BB7WZ01zgkWwH7rkBgR")],
        ),
        (
            "object_fee_refund.fixtures3.json",
            "fee_refund.created",
            vec![row("refund", "1", "USD", "fr_1Pgc70B7WZ01zgkWSr1ANtFu")],
        ),
        (
            "object_dispute.fixtures3.json",
            "charge.dispute.funds_withdrawn",
            vec![row(
                "withdrawal",
                "10",
                "USD",
                "dp_1Pgc71B7WZ01zgkWMevJiAUx:withdrawn",
            )],
        ),
        (
            "object_reserve.hold.fixtures3.json",
            "reserve.hold.created",
            vec![row("hold", "14138530.96", "USD", "obj_123")],
        ),
        (
            "object_treasury.received_credit.fixtures3.json",
            "treasury.received_credit.succeeded",
            vec![row(
                "deposit",
                "12.34",
                "USD",
                "rc_1Pgc7BB7WZ01zgkWv2rpvGwQ",
            )],
        ),
        (
            "object_treasury.received_debit.fixtures3.json",
            "treasury.received_debit.succeeded",
            vec![row(
                "withdrawal",
                "543.21",
                "USD",
                "rd_1Pgc7HB7WZ01zgkWlhCJ4BHN",
            )],
        ),
        // Objects that move no wallet money, or event types that do not.
        ("object_balance.fixtures3.json", "balance.available", vec![]),
        (
            "object_customer_balance_transaction.fixtures3.json",
            "customer_balance_transaction.created",
            vec![],
        ),
        ("object_charge.fixtures3.json", "charge.captured", vec![]),
        ("object_payout.fixtures3.json", "payout.created", vec![]),
        (
            "object_application_fee.fixtures3.json",
            "application_fee.created",
            vec![],
        ),
    ];
    for (i, (file, kind, expected)) in cases.iter().enumerate() {
        let l = stripe_ledger();
        let body = stripe_envelope(&format!("evt_synthetic_{i}"), kind, &stripe_object(file));
        let results = l
            .ingest_webhook("stripe", &stripe_webhook(&body))
            .unwrap_or_else(|e| panic!("{file} as {kind}: {e}"));
        assert_eq!(&summary(&results), expected, "{file} as {kind}");
        assert!(results.iter().all(|r| r.created()));
        assert_eq!(
            all_events(&l).len(),
            expected.len(),
            "{file}: nothing else stored"
        );
        for r in &results {
            assert_eq!(r.event.wallet_id.as_str(), "acct_walletlog");
            assert_eq!(r.event.provider.as_str(), "stripe");
            // Dated by the moved item's own `created`, else the event's; an
            // intent without its charge carries no time of payment.
            if kind == &"payment_intent.succeeded" {
                assert!(r.event.occurred_at_estimated, "{file}");
                continue;
            }
            assert!(!r.event.occurred_at_estimated, "{file}");
            let object = stripe_object(file);
            let item = object
                .pointer("/refunds/data/0")
                .or_else(|| object.pointer("/reversals/data/0"))
                .filter(|i| i.get("created").is_some())
                .unwrap_or(&object);
            // A dispute's movements: its balance transactions (none here).
            let created = if file.contains("dispute") {
                None
            } else {
                item.get("created").and_then(|c| c.as_i64())
            };
            let expected = created.map_or("2026-01-01T00:00:00Z".to_owned(), |c| {
                walletlog::Timestamp::from_micros("t", c * 1_000_000)
                    .unwrap()
                    .to_string()
            });
            assert_eq!(r.event.occurred_at.to_string(), expected, "{file}");
            assert!(r
                .event
                .metadata
                .as_json()
                .contains(&format!("evt_synthetic_{i}")));
        }
    }
}

#[test]
fn stripe_charge_with_expanded_fee_yields_deposit_and_fee() {
    let l = stripe_ledger();
    let mut charge = stripe_object("object_charge.fixtures3.json");
    let mut txn = stripe_object("object_balance_transaction.fixtures3.json");
    // The published balance transaction has fee 0 (no fee event); a fee of
    // 33 cents is SYNTHETIC.
    charge["balance_transaction"] = txn.clone();
    let body = stripe_envelope("evt_fee_0", "charge.succeeded", &charge);
    assert_eq!(
        summary(&l.ingest_webhook("stripe", &stripe_webhook(&body)).unwrap()).len(),
        1
    );
    txn["fee"] = serde_json::json!(33);
    charge["balance_transaction"] = txn;
    charge["id"] = serde_json::json!("ch_synthetic_fee");
    charge["metadata"] = serde_json::json!({"wallet_id": "w-42"});
    let body = stripe_envelope("evt_fee_33", "charge.succeeded", &charge);
    let results = l.ingest_webhook("stripe", &stripe_webhook(&body)).unwrap();
    assert_eq!(
        summary(&results),
        [
            row("deposit", "1", "USD", "ch_synthetic_fee"),
            row("fee", "0.33", "USD", "txn_1PgaxNB7WZ01zgkWEV3TLf40:fee")
        ]
    );
    assert_eq!(
        results[0].event.wallet_id.as_str(),
        "w-42",
        "metadata.wallet_id wins"
    );
    let b = &l.balance(&wallet("w-42"), None).unwrap()[0];
    assert_eq!(b.available.to_string(), "0.67");
    // Both events of the webhook share one transaction and one body hash.
    let audit = all_audit(&l);
    let last_two = &audit[audit.len() - 2..];
    assert!(last_two
        .iter()
        .all(|r| r.actor == "plugin:stripe@2.0.1" && r.body_sha256.is_some()));
    assert_eq!(last_two[0].body_sha256, last_two[1].body_sha256);
    assert_eq!(last_two[0].recorded_at, last_two[1].recorded_at);
}

#[test]
fn a_replayed_webhook_is_a_duplicate_never_a_double_count() {
    let l = stripe_ledger();
    let mut charge = stripe_object("object_charge.fixtures3.json");
    charge["payment_intent"] = serde_json::json!("pi_1PgafyB7WZ01zgkWSjxsAJo3");
    let body = stripe_envelope("evt_1", "charge.succeeded", &charge);
    assert!(l.ingest_webhook("stripe", &stripe_webhook(&body)).unwrap()[0].created());
    // The same webhook again, freshly signed (a retry), and the same charge
    // reported by another event (payment_intent.succeeded of its intent,
    // which does not name the charge).
    let again = l.ingest_webhook("stripe", &stripe_webhook(&body)).unwrap();
    assert_eq!(
        again[0].matched_on().map(|k| k.as_str()),
        Some("provider_event_id")
    );
    let mut intent = stripe_object("object_payment_intent.fixtures3.json");
    intent["amount_received"] = serde_json::json!(100);
    let pi = stripe_envelope("evt_2", "payment_intent.succeeded", &intent);
    assert!(l.ingest_webhook("stripe", &stripe_webhook(&pi)).unwrap()[0].duplicate());
    assert_eq!(all_events(&l).len(), 1);
    assert_eq!(
        l.balance(&wallet("acct_walletlog"), None).unwrap()[0]
            .available
            .to_string(),
        "1"
    );
    let actions: Vec<_> = all_audit(&l).iter().map(|r| r.action).collect();
    assert_eq!(
        actions,
        [
            AuditAction::Created,
            AuditAction::Duplicate,
            AuditAction::Duplicate
        ]
    );
}

#[test]
fn signatures_are_checked_before_the_plugin_runs() {
    let l = stripe_ledger();
    let body = stripe_envelope(
        "evt_1",
        "charge.succeeded",
        &stripe_object("object_charge.fixtures3.json"),
    );
    let mut tampered = stripe_webhook(&body);
    tampered.body = String::from_utf8(body.clone())
        .unwrap()
        .replace("\"amount\":100", "\"amount\":100000")
        .into_bytes();
    assert_ne!(tampered.body, body);
    assert!(matches!(
        l.ingest_webhook("stripe", &tampered),
        Err(Error::Signature(SignatureError::Mismatch))
    ));
    let unsigned = Webhook {
        headers: vec![],
        body: body.clone(),
        url: None,
    };
    assert!(matches!(
        l.ingest_webhook("stripe", &unsigned),
        Err(Error::Signature(SignatureError::MissingHeader(_)))
    ));
    let mut stale = stripe_webhook(&body);
    stale.headers[0].1 = stale.headers[0].1.replacen("t=", "t=1", 1); // a timestamp far in the future
    assert!(matches!(
        l.ingest_webhook("stripe", &stale),
        Err(Error::Signature(_))
    ));
    assert!(all_events(&l).is_empty(), "nothing stored");
    assert!(
        all_audit(&l).is_empty(),
        "a refused webhook never reaches storage"
    );
}

#[test]
fn a_declared_scheme_without_a_secret_is_refused_even_with_unsigned_allowed() {
    let l = Ledger::in_memory();
    l.install_plugin(&plugin("stripe")).unwrap();
    let body = stripe_envelope(
        "evt_1",
        "charge.succeeded",
        &stripe_object("object_charge.fixtures3.json"),
    );
    let hook = Webhook {
        headers: vec![],
        body,
        url: None,
    };
    let err = l.ingest_webhook("stripe", &hook).unwrap_err();
    assert!(
        matches!(err, Error::Signature(SignatureError::NoSecret { .. })),
        "{err}"
    );
    assert!(
        err.to_string().contains("the webhook secret is missing")
            && err.to_string().contains("stripe-v1"),
        "{err}"
    );
    // Fail closed: allowing unsigned webhooks never turns a declared
    // scheme's check off, and nothing is stored.
    l.allow_unsigned("stripe").unwrap();
    let err = l.ingest_webhook("stripe", &hook).unwrap_err();
    assert!(
        matches!(err, Error::Signature(SignatureError::NoSecret { .. })),
        "{err}"
    );
    assert!(all_audit(&l).is_empty());
    assert!(l
        .inbox(&walletlog::InboxQuery::new())
        .unwrap()
        .deliveries
        .is_empty());
    // Unknown providers and uninstalled plugins are clear errors.
    let Err(Error::Plugin(p)) = l.ingest_webhook("adyen", &hook) else {
        panic!("adyen has no plugin")
    };
    assert_eq!(p.kind, PluginErrorKind::NotInstalled);
    assert!(matches!(
        l.set_webhook_secret("Not A Slug", Secret::new("x")),
        Err(Error::Validation(_))
    ));
}

#[test]
fn a_secret_no_delivery_could_be_verified_with_is_refused_when_set() {
    // An unset environment variable read as "" must not become a key
    // anybody can sign with.
    let l = stripe_ledger();
    let Err(Error::Validation(v)) = l.set_webhook_secret("stripe", "") else {
        panic!("an empty secret was taken")
    };
    assert_eq!(v.field, "secret");
    // The earlier secret stays: a refused one replaces nothing.
    let body = stripe_envelope(
        "evt_secret_kept",
        "charge.succeeded",
        &stripe_object("object_charge.fixtures3.json"),
    );
    assert_eq!(
        l.ingest_webhook("stripe", &stripe_webhook(&body))
            .unwrap()
            .len(),
        1
    );
    // Refused before any plugin is installed too.
    let bare = Ledger::in_memory();
    assert!(matches!(
        bare.set_webhook_secret("stripe", ""),
        Err(Error::Validation(_))
    ));
    // With the plugin installed, a secret its scheme cannot decode is
    // refused at once, not on every delivery.
    bare.install_plugin(&plugin("standard-webhooks")).unwrap();
    let provider = "standard-webhooks";
    for secret in ["whsec_!!!x", "whsec_"] {
        let Err(Error::Validation(v)) = bare.set_webhook_secret(provider, secret) else {
            panic!("{secret:?} was taken")
        };
        assert_eq!(v.field, "secret");
        assert!(v.reason.contains("standard-webhooks-v1"), "{}", v.reason);
    }
    bare.set_webhook_secret(provider, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
        .unwrap();
    // A secret set first is checked when its plugin is installed: the
    // install is refused, nothing is installed, and a good secret then
    // lets it in.
    let early = Ledger::in_memory();
    early
        .set_webhook_secret("standard-webhooks", "whsec_!!!x")
        .unwrap();
    let Err(Error::Validation(v)) = early.install_plugin(&plugin("standard-webhooks")) else {
        panic!("a plugin was installed beside a secret it cannot use")
    };
    assert_eq!(v.field, "secret");
    assert!(early.plugin("standard-webhooks").is_none());
    early
        .set_webhook_secret(
            "standard-webhooks",
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        )
        .unwrap();
    early.install_plugin(&plugin("standard-webhooks")).unwrap();
}

#[test]
fn malformed_and_unsupported_webhooks_are_plugin_errors() {
    let l = stripe_ledger();
    for (body, kind) in [
        (b"not json".to_vec(), PluginErrorKind::Malformed),
        (
            br#"{"type":"charge.succeeded"}"#.to_vec(),
            PluginErrorKind::Malformed,
        ),
        (
            fixture("stripe/event_v2_thin_v1.billing.meter.error_report_triggered.json"),
            PluginErrorKind::Unsupported,
        ),
    ] {
        let Err(Error::Plugin(p)) = l.ingest_webhook("stripe", &stripe_webhook(&body)) else {
            panic!("accepted {body:?}")
        };
        assert_eq!(p.kind, kind, "{p}");
        assert_eq!(p.plugin.as_deref(), Some("stripe@2.0.1"));
    }
    // Published envelopes that move no money are ignored, not refused.
    for file in [
        "event_customer.created.signature_fixture.json",
        "event_customer.updated.dotnet_fixture.json",
        "event_v1_minimal_sdk_test.json",
    ] {
        let body = fixture(&format!("stripe/{file}"));
        let r = l.ingest_webhook("stripe", &stripe_webhook(&body));
        assert!(
            matches!(&r, Ok(v) if v.is_empty())
                || matches!(&r, Err(Error::Plugin(p)) if p.kind == PluginErrorKind::Malformed),
            "{file}: {r:?}"
        );
    }
    assert!(all_events(&l).is_empty());
}

/// A signed body that gives `amount` twice reads as 10.00 to a parser
/// that takes the first value and 90,000.00 to one that takes the last:
/// the plugin (through the SDK's `Request::json`) refuses it as
/// malformed, names the key, and the delivery waits in the inbox.
#[test]
fn a_body_that_gives_a_key_twice_is_malformed_and_kept_as_a_dead_letter() {
    let l = stripe_ledger();
    let body = br#"{"id":"evt_twice","object":"event","created":1767225600,"type":"charge.succeeded","data":{"object":{"id":"ch_twice","object":"charge","amount":1000,"currency":"usd","customer":"cus_twice","status":"succeeded","amount":9000000}}}"#;
    let (delivery, r) = l.receive_webhook("stripe", &stripe_webhook(body));
    let Err(Error::Plugin(p)) = r else {
        panic!("accepted a repeated key: {r:?}")
    };
    assert_eq!(p.kind, PluginErrorKind::Malformed, "{p}");
    let text = p.to_string();
    assert!(text.contains("\"amount\" appears twice"), "{text}");
    assert!(text.contains("data.object.amount"), "{text}");
    let delivery = delivery.expect("a malformed delivery is kept");
    assert_eq!(delivery.verdict(), walletlog::Verdict::Malformed);
    assert_eq!(delivery.body.as_deref(), Some(&body[..]));
    assert!(all_events(&l).is_empty());
    assert!(all_audit(&l).is_empty());
    // The same movement with the key once goes in.
    let once = String::from_utf8_lossy(body).replace(r#","amount":9000000"#, "");
    let r = l.ingest_webhook("stripe", &stripe_webhook(once.as_bytes()));
    assert_eq!(r.unwrap()[0].event.amount.to_string(), "10");
}

/// The SDK parses a body nested up to `DEPTH_MAX` (64) levels in a
/// plugin's 64 KiB shadow stack, and refuses a deeper one as malformed
/// (serde_json alone would go to 128, which overflows that stack with the
/// strict parse's frames: a trap, not a verdict that names the cause).
#[test]
fn the_deepest_accepted_nesting_is_parsed_in_the_sandbox_and_deeper_is_malformed() {
    let l = stripe_ledger();
    let max = walletlog_plugin::json::DEPTH_MAX;
    let body = |depth: usize, open: &str, close: &str| {
        // The envelope's own two levels (the event, data) and the object.
        let inner = depth - 2;
        format!(
            r#"{{"id":"evt_deep_{depth}_{}","type":"customer.created","data":{{"object":{}1{}}}}}"#,
            open.len(),
            open.repeat(inner),
            close.repeat(inner)
        )
    };
    for (open, close) in [("[", "]"), (r#"{"a":"#, "}")] {
        let r = l.ingest_webhook("stripe", &stripe_webhook(body(max, open, close).as_bytes()));
        assert!(matches!(&r, Ok(v) if v.is_empty()), "{open} x {max}: {r:?}");
        for depth in [max + 1, 128, 129] {
            let r = l.ingest_webhook(
                "stripe",
                &stripe_webhook(body(depth, open, close).as_bytes()),
            );
            let Err(Error::Plugin(p)) = r else {
                panic!("accepted {open} x {depth}: {r:?}")
            };
            assert_eq!(p.kind, PluginErrorKind::Malformed, "{open} x {depth}: {p}");
            assert!(p.to_string().contains("nested deeper than 64"), "{p}");
        }
    }
    assert!(all_events(&l).is_empty());
}

#[test]
fn compiled_plugins_are_cached_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let options = || walletlog::Options {
        plugin_cache_dir: Some(dir.path().join("cache")),
        ..walletlog::Options::default()
    };
    let a = Ledger::open(":memory:", options()).unwrap();
    a.install_plugin(&plugin("stripe")).unwrap();
    let cached: Vec<_> = std::fs::read_dir(dir.path().join("cache"))
        .unwrap()
        .collect();
    assert_eq!(cached.len(), 1, "one artifact per plugin and engine");
    // Another ledger loads it; a damaged artifact is ignored and rebuilt.
    let b = Ledger::open(":memory:", options()).unwrap();
    assert_eq!(
        b.install_plugin(&plugin("stripe")).unwrap().provider,
        "stripe"
    );
    let path = cached[0].as_ref().unwrap().path();
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&path, bytes).unwrap();
    let c = Ledger::open(":memory:", options()).unwrap();
    assert_eq!(
        c.install_plugin(&plugin("stripe")).unwrap().provider,
        "stripe"
    );
}
