//! The Square, Paystack and Standard Webhooks plugins on every relevant
//! fixture, through the real components, signed with each provider's scheme.
//! Signing keys here are test keys; the bodies are the published files as they are.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use walletlog::{Error, Ledger, PluginErrorKind, Secret, Webhook};

use super::signature::fixture;
use super::util::*;
use super::webhooks::{now, plugin, row, summary, Row};

fn ledger(name: &str, secret: &str) -> Ledger {
    let l = Ledger::in_memory();
    let info = l.install_plugin(&plugin(name)).unwrap();
    assert_eq!(info.provider, name);
    l.set_webhook_secret(name, Secret::new(secret)).unwrap();
    l
}

// --- Square ---------------------------------------------------------------

const SQUARE_KEY: &str = "square-test-signature-key";
const SQUARE_URL: &str = "https://wallets.example.com/webhooks/square";

fn square_webhook(body: Vec<u8>) -> Webhook {
    let mut m = Hmac::<sha2::Sha256>::new_from_slice(SQUARE_KEY.as_bytes()).unwrap();
    m.update(SQUARE_URL.as_bytes());
    m.update(&body);
    Webhook {
        headers: vec![(
            "X-Square-HmacSha256-Signature".into(),
            B64.encode(m.finalize().into_bytes()),
        )],
        body,
        url: Some(SQUARE_URL.into()),
    }
}

#[test]
fn square_fixtures() {
    let cases: Vec<(&str, Vec<Row>)> = vec![
        ("payment.created.json", vec![]), // APPROVED, not yet COMPLETED
        ("payment.updated.json", vec![row("deposit", "1", "USD", "payment:hYy9pRFVxpDsO1FB05SunFWUe9JZY")]),
        ("refund.created.json", vec![]), // PENDING
        (
            "refund.updated.json",
            vec![
                row("withdrawal", "10", "USD", "refund:KkAkhdMsgzn59SM8A89WgKwekxLZY_ptNBVqHYxt5gAdfcobBe4u1AZsXhoz06KTtuq9Ls24P"),
                row("refund", "0.59", "USD", "refund:KkAkhdMsgzn59SM8A89WgKwekxLZY_ptNBVqHYxt5gAdfcobBe4u1AZsXhoz06KTtuq9Ls24P:fee:0"),
            ],
        ),
        ("payout.sent.json", vec![row("withdrawal", "4.57", "EUR", "payout:po_070431e4-e351-11eb-a8bb-02420a140009")]),
        ("payout.paid.json", vec![row("withdrawal", "4.57", "EUR", "payout:po_070431e4-e351-11eb-a8bb-02420a140009")]),
        ("payout.failed.json", vec![row("deposit", "4.57", "EUR", "payout:po_070431e4-e351-11eb-a8bb-02420a140009:failed")]),
        ("dispute.created.json", vec![]),
        ("gift_card.activity.created.json", vec![]),
        ("webhooks.test_notification.signature_vector.json", vec![]),
    ];
    for (file, expected) in &cases {
        let l = ledger("square", SQUARE_KEY);
        let results = l
            .ingest_webhook(
                "square",
                &square_webhook(fixture(&format!("square/{file}"))),
            )
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(&summary(&results), expected, "{file}");
        assert_eq!(all_events(&l).len(), expected.len());
    }
    // Payout sent then paid: the same money, stored once.
    let l = ledger("square", SQUARE_KEY);
    assert!(l
        .ingest_webhook(
            "square",
            &square_webhook(fixture("square/payout.sent.json"))
        )
        .unwrap()[0]
        .created());
    let paid = l
        .ingest_webhook(
            "square",
            &square_webhook(fixture("square/payout.paid.json")),
        )
        .unwrap();
    assert!(paid[0].duplicate());
    let b = &l.balance(&wallet("LRJNZCB190DTQ"), None).unwrap()[0];
    assert_eq!(
        (b.currency.as_str(), b.available.to_string()),
        ("EUR", "-4.57".into())
    );
    assert_eq!(
        b.last_occurred_at.unwrap().to_string(),
        "2021-07-12T20:37:51Z"
    );
}

#[test]
fn square_published_vector_passes_the_host_and_moves_no_money() {
    // SIGNATURE.md vector 1: key, URL and signature exactly as published.
    let l = ledger("square", "Ibxx_5AKakO-3qeNVR61Dw");
    let body = fixture("square/webhooks.test_notification.signature_vector.json");
    let hook = |url: &str| Webhook {
        headers: vec![(
            "x-square-hmacsha256-signature".into(),
            "GF4YkrJgGBDZ9NIYbNXBnMzqb2HoL4RW/S6vkZ9/2N4=".into(),
        )],
        body: body.clone(),
        url: Some(url.into()),
    };
    assert!(l
        .ingest_webhook(
            "square",
            &hook("https://webhook.site/679a4f3a-dcfa-49ee-bac5-9d0edad886b9")
        )
        .unwrap()
        .is_empty());
    assert!(matches!(
        l.ingest_webhook(
            "square",
            &hook("https://webhook.site/79a4f3a-dcfa-49ee-bac5-9d0edad886b9")
        ),
        Err(Error::Signature(_))
    ));
}

// --- Paystack -------------------------------------------------------------

const PAYSTACK_KEY: &str = "sk_test_walletlog_synthetic";

fn paystack_webhook(body: Vec<u8>) -> Webhook {
    let mut m = Hmac::<sha2::Sha512>::new_from_slice(PAYSTACK_KEY.as_bytes()).unwrap();
    m.update(&body);
    let digest: String = hex(&m.finalize().into_bytes());
    Webhook {
        headers: vec![("x-paystack-signature".into(), digest)],
        body,
        url: None,
    }
}

#[test]
fn paystack_fixtures() {
    let cases: Vec<(&str, Vec<Row>)> = vec![
        (
            "charge.success.json",
            vec![row("deposit", "100", "NGN", "charge:qTPrJoy9Bx")],
        ),
        (
            "direct-debit.charge.success.json",
            vec![row("deposit", "100", "NGN", "charge:nl3eljdd6qgbrho")],
        ),
        (
            "transfer.success.json",
            vec![row(
                "transfer_out",
                "1000",
                "NGN",
                "transfer:TRF_v5tip3zx8nna9o78",
            )],
        ),
        (
            "transfer.reversed.json",
            vec![row(
                "transfer_in",
                "100",
                "NGN",
                "transfer:TRF_js075pj9u07f34l:reversed",
            )],
        ),
        ("transfer.failed.json", vec![]),
        (
            "preauthorization.capture.success.json",
            vec![
                row("release", "10", "ZAR", "preauth:atyntuup5bec03e:release"),
                row("withdrawal", "10", "ZAR", "preauth:atyntuup5bec03e:capture"),
                row("fee", "0.26", "ZAR", "preauth:atyntuup5bec03e:fee"),
            ],
        ),
        (
            "preauthorization.release.success.json",
            vec![row("release", "10", "ZAR", "preauth:pre_11b0qw12:release")],
        ),
        ("preauthorization.capture.failed.json", vec![]),
        ("preauthorization.release.failed.json", vec![]),
        ("refund.pending.json", vec![]),
        ("refund.processing.json", vec![]),
        ("refund.failed.json", vec![]),
        ("charge.dispute.create.json", vec![]),
        ("charge.dispute.resolve.json", vec![]),
    ];
    for (file, expected) in &cases {
        let l = ledger("paystack", PAYSTACK_KEY);
        let results = l
            .ingest_webhook(
                "paystack",
                &paystack_webhook(fixture(&format!("paystack/{file}"))),
            )
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(&summary(&results), expected, "{file}");
    }
    // Money moved, but Paystack sends no time: the events go in dated by
    // the delivery's first receipt, marked estimated; the provider's retry
    // of the same body is a duplicate, not a conflict.
    for (file, expected) in [
        (
            "refund.processed.json",
            row("withdrawal", "50", "NGN", "refund:132013318360"),
        ),
        (
            "preauthorization.reserve.success.json",
            row("hold", "10", "ZAR", "preauth:pre_9gjnu6dc:hold"),
        ),
    ] {
        let l = ledger("paystack", PAYSTACK_KEY);
        let hook = paystack_webhook(fixture(&format!("paystack/{file}")));
        let before = walletlog::Timestamp::now();
        let (delivery, first) = l.receive_webhook("paystack", &hook);
        let first = first.unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(summary(&first), std::slice::from_ref(&expected), "{file}");
        let event = &first[0].event;
        assert!(event.occurred_at_estimated, "{file}");
        assert_eq!(event.occurred_at, delivery.unwrap().received_at, "{file}");
        assert!(event.occurred_at >= before);
        std::thread::sleep(std::time::Duration::from_millis(5));
        let again = l.ingest_webhook("paystack", &hook).unwrap();
        assert!(again[0].duplicate(), "{file}: a retry is a duplicate");
        assert_eq!(again[0].event.occurred_at, event.occurred_at);
        assert_eq!(all_events(&l).len(), 1);
        // The same event in another body (re-serialized by a proxy, say) is
        // another delivery, received later: its estimate differs, and two
        // estimates are compared without occurred_at.
        let mut other = hook.body.clone();
        other.push(b'\n');
        let (second, replayed) = l.receive_webhook("paystack", &paystack_webhook(other));
        assert_ne!(second.unwrap().received_at, event.occurred_at);
        let replayed = replayed.unwrap();
        assert!(replayed[0].duplicate(), "{file}");
        assert_eq!(replayed[0].event.event_id, event.event_id);
        assert_eq!(all_events(&l).len(), 1);
        assert!(l.verify_audit().unwrap().ok);
    }
    // The charge's wallet is the customer; times are the provider's, in UTC.
    let l = ledger("paystack", PAYSTACK_KEY);
    let r = l
        .ingest_webhook(
            "paystack",
            &paystack_webhook(fixture("paystack/charge.success.json")),
        )
        .unwrap();
    assert_eq!(r[0].event.wallet_id.as_str(), "CUS_qo38as2hpsgk2r0");
    assert_eq!(r[0].event.occurred_at.to_string(), "2016-09-30T21:10:19Z");
    // A signature over a re-serialized body (Paystack's JS snippet pitfall) fails.
    let mut hook = paystack_webhook(fixture("paystack/charge.success.json"));
    let v: serde_json::Value = serde_json::from_slice(&hook.body).unwrap();
    hook.body = serde_json::to_vec(&v).unwrap();
    assert!(matches!(
        l.ingest_webhook("paystack", &hook),
        Err(Error::Signature(_))
    ));
}

// --- Standard Webhooks: walletlog's own format -------------------------------

const SW_KEY_B64: &str = "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn sw_webhook(id: &str, body: &str) -> Webhook {
    let t = now().to_string();
    let key = B64.decode(SW_KEY_B64).unwrap();
    let mut m = Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
    m.update(format!("{id}.{t}.").as_bytes());
    m.update(body.as_bytes());
    Webhook {
        headers: vec![
            ("webhook-id".into(), id.into()),
            ("webhook-timestamp".into(), t),
            (
                "webhook-signature".into(),
                format!("v1,{}", B64.encode(m.finalize().into_bytes())),
            ),
        ],
        body: body.as_bytes().to_vec(),
        url: None,
    }
}

#[test]
fn standard_webhooks_carries_walletlog_events() {
    let l = ledger("standard-webhooks", &format!("whsec_{SW_KEY_B64}"));
    // SYNTHETIC bodies in walletlog's own event format.
    let one = r#"{"wallet_id":"w1","event_type":"deposit","amount":"12.30","currency":"USDC","occurred_at":"2026-01-02T04:00:00+01:00","metadata":{"chain":"base"}}"#;
    let r = l
        .ingest_webhook("standard-webhooks", &sw_webhook("msg_1", one))
        .unwrap();
    assert_eq!(
        summary(&r),
        [row("deposit", "12.3", "USDC", "msg_1")],
        "a lone event takes webhook-id"
    );
    assert_eq!(r[0].event.occurred_at.to_string(), "2026-01-02T03:00:00Z");
    assert_eq!(r[0].event.metadata.as_json(), r#"{"chain":"base"}"#);
    // A retry (same webhook-id, new attempt timestamp) is a duplicate.
    assert!(l
        .ingest_webhook("standard-webhooks", &sw_webhook("msg_1", one))
        .unwrap()[0]
        .duplicate());
    let batch = r#"{"events":[
        {"wallet_id":"w1","event_type":"hold","amount":"5","currency":"USDC","provider_event_id":"h1","occurred_at":"2026-01-03T00:00:00Z"},
        {"wallet_id":"w1","event_type":"fee","amount":"0.000000000000000001","currency":"ETH","provider_event_id":"f1","occurred_at":"2026-01-03T00:00:00Z"}]}"#;
    let r = l
        .ingest_webhook("standard-webhooks", &sw_webhook("msg_2", batch))
        .unwrap();
    assert_eq!(
        summary(&r),
        [
            row("hold", "5", "USDC", "h1"),
            row("fee", "0.000000000000000001", "ETH", "f1")
        ]
    );
    // Floats, unknown types and invalid fields are refused; nothing stored.
    for (body, kind) in [
        (
            r#"{"wallet_id":"w1","event_type":"deposit","amount":12.3,"currency":"USD","occurred_at":"2026-01-02T00:00:00Z"}"#,
            PluginErrorKind::Malformed,
        ),
        (
            r#"{"wallet_id":"w1","event_type":"gift","amount":"1","currency":"USD","occurred_at":"2026-01-02T00:00:00Z"}"#,
            PluginErrorKind::Malformed,
        ),
        (
            r#"{"wallet_id":"w1","event_type":"deposit","amount":"-1","currency":"USD","occurred_at":"2026-01-02T00:00:00Z"}"#,
            PluginErrorKind::InvalidOutput,
        ),
        (
            r#"{"wallet_id":"w1","event_type":"deposit","amount":"1","currency":"usd","occurred_at":"2026-01-02T00:00:00Z"}"#,
            PluginErrorKind::InvalidOutput,
        ),
        (r#"[1,2]"#, PluginErrorKind::Malformed),
    ] {
        let before = all_events(&l).len();
        let Err(Error::Plugin(p)) =
            l.ingest_webhook("standard-webhooks", &sw_webhook("msg_bad", body))
        else {
            panic!("accepted {body}")
        };
        assert_eq!(p.kind, kind, "{body}: {p}");
        assert_eq!(all_events(&l).len(), before);
    }
    // One bad event in a batch refuses the whole webhook.
    let mixed = r#"{"events":[
        {"wallet_id":"w2","event_type":"deposit","amount":"1","currency":"USD","provider_event_id":"ok","occurred_at":"2026-01-03T00:00:00Z"},
        {"wallet_id":"w2","event_type":"deposit","amount":"0","currency":"USD","provider_event_id":"zero","occurred_at":"2026-01-03T00:00:00Z"}]}"#;
    let Err(Error::Plugin(p)) = l.ingest_webhook("standard-webhooks", &sw_webhook("msg_3", mixed))
    else {
        panic!("accepted")
    };
    assert!(p.to_string().contains("event 1 is invalid"), "{p}");
    assert!(l.balance(&wallet("w2"), None).unwrap().is_empty());
}

// --- Adyen Balance Platform -------------------------------------------------

const ADYEN_KEY: &str = "11223344D785FBAE710E7F943F307971BB61B21281C98C9129B3D4018A57B2EB";

fn adyen_webhook(file: &str) -> Webhook {
    let body = fixture(&format!("adyen/{file}"));
    let key: Vec<u8> = (0..ADYEN_KEY.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&ADYEN_KEY[i..i + 2], 16).unwrap())
        .collect();
    let mut m = Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
    m.update(&body);
    Webhook {
        headers: vec![(
            "HmacSignature".into(),
            B64.encode(m.finalize().into_bytes()),
        )],
        body,
        url: None,
    }
}

/// (type, amount, created?) of each result of one webhook.
type Step = Vec<(String, String, bool)>;

/// Feeds a transfer's webhooks in order; returns each one's results and the
/// wallet's final available and held balance.
fn adyen_flow(files: &[&str], wallet_id: &str) -> (Vec<Step>, String, String) {
    let l = ledger("adyen", ADYEN_KEY);
    let steps = files
        .iter()
        .map(|f| {
            let results = l
                .ingest_webhook("adyen", &adyen_webhook(f))
                .unwrap_or_else(|e| panic!("{f}: {e}"));
            results
                .iter()
                .map(|r| {
                    (
                        r.event.event_type.as_str().to_owned(),
                        r.event.amount.to_string(),
                        r.created(),
                    )
                })
                .collect()
        })
        .collect();
    let b = l.balance(&wallet(wallet_id), None).unwrap();
    let (available, held) = b.first().map_or(("none".into(), "none".into()), |b| {
        (b.available.to_string(), b.held.to_string())
    });
    assert!(l.verify_audit().unwrap().ok);
    (steps, available, held)
}

fn step(items: &[(&str, &str, bool)]) -> Step {
    items
        .iter()
        .map(|(t, a, c)| (t.to_string(), a.to_string(), *c))
        .collect()
}

#[test]
fn adyen_outgoing_payout_reserved_then_booked() {
    let (steps, available, held) = adyen_flow(
        &[
            "transfer.created-outgoing-external.openapi_example.json",
            "transfer.updated-01.payout-authorized.openapi_example.json",
            "transfer.updated-02.payout-booked.openapi_example.json",
        ],
        "BA00000000000000000000001",
    );
    assert_eq!(steps[0], step(&[]), "received: pending, nothing moved");
    assert_eq!(steps[1], step(&[("hold", "100", true)]));
    assert_eq!(
        steps[2],
        step(&[
            ("hold", "100", false),
            ("release", "100", true),
            ("withdrawal", "100", true)
        ])
    );
    assert_eq!((available.as_str(), held.as_str()), ("-100", "0"));
}

#[test]
fn adyen_incoming_internal_transfer_and_top_ups() {
    let (steps, available, held) = adyen_flow(
        &[
            "transfer.created-incoming-internal.openapi_example.json",
            "transfer.updated-03.internal-authorised.openapi_example.json",
            "transfer.updated-04.internal-booked.openapi_example.json",
        ],
        "BA00000000000000000000002",
    );
    assert_eq!(steps[0], step(&[]));
    assert_eq!(
        steps[1],
        step(&[("transfer_in", "10", true), ("hold", "10", true)])
    );
    assert_eq!(
        steps[2],
        step(&[
            ("transfer_in", "10", false),
            ("hold", "10", false),
            ("release", "10", true)
        ])
    );
    assert_eq!((available.as_str(), held.as_str()), ("10", "0"));

    for flavour in ["on-demand", "scheduled"] {
        let (steps, available, held) = adyen_flow(
            &[
                &format!("transfer.created-initiated-{flavour}-top-up.openapi_example.json"),
                &format!("transfer.updated-authorized-{flavour}-top-up.openapi_example.json"),
                &format!("transfer.updated-captured-{flavour}-top-up.openapi_example.json"),
            ],
            "BA00000000000000000000001",
        );
        assert_eq!(
            steps[1],
            step(&[("deposit", "1000", true), ("hold", "1000", true)]),
            "{flavour}"
        );
        assert_eq!(
            steps[2].last(),
            Some(&("release".to_string(), "1000".to_string(), true)),
            "{flavour}"
        );
        assert_eq!(
            (available.as_str(), held.as_str()),
            ("1000", "0"),
            "{flavour}"
        );
    }
}

#[test]
fn adyen_direct_debits() {
    let one = |file: &str, wallet_id: &str| adyen_flow(&[file], wallet_id);
    let (s, available, _) = one(
        "transfer.updated-05.directDebit-booked.openapi_example.json",
        "BA00000000000000000000002",
    );
    assert_eq!(
        s[0],
        step(&[
            ("hold", "10", true),
            ("release", "10", true),
            ("withdrawal", "10", true)
        ])
    );
    assert_eq!(available, "-10");
    for cancelled in [
        "transfer.updated-06.directDebit-cancelled.openapi_example.json",
        "transfer.updated-07.directDebit-failed.openapi_example.json",
    ] {
        let (s, available, _) = one(cancelled, "BA00000000000000000000002");
        assert_eq!(s[0], step(&[]), "{cancelled}: no money moved");
        assert_eq!(available, "none");
    }
    let (s, available, _) = one(
        "transfer.updated-08.internalDirectDebit-incoming-booked.openapi_example.json",
        "BA00000000000000000000002",
    );
    assert_eq!(
        s[0],
        step(&[
            ("hold", "10", true),
            ("release", "10", true),
            ("transfer_out", "10", true)
        ])
    );
    assert_eq!(available, "-10");
    let (s, available, _) = one(
        "transfer.updated-09.internalDirectDebit-outgoing-booked.openapi_example.json",
        "BA000000000000000000LIABLE",
    );
    assert_eq!(
        s[0],
        step(&[
            ("transfer_in", "10", true),
            ("hold", "10", true),
            ("release", "10", true)
        ])
    );
    assert_eq!(available, "10");
}

#[test]
fn adyen_files_that_move_no_money_or_are_not_supported() {
    let l = ledger("adyen", ADYEN_KEY);
    for file in [
        "transaction.created-01.payout-ti.openapi_example.json",
        "transaction.created-02.internal-incoming.openapi_example.json",
        "transaction.created-03.outgoing-business-account.openapi_example.json",
        "balancePlatform.accountHolder.created.banking_hmac_vector.json",
    ] {
        assert!(
            l.ingest_webhook("adyen", &adyen_webhook(file))
                .unwrap()
                .is_empty(),
            "{file}"
        );
    }
    for file in [
        "AUTHORISATION.openapi_example.json",
        "CAPTURE.openapi_example.json",
        "REFUND.openapi_example.json",
        "CHARGEBACK.openapi_example.json",
    ] {
        let Err(Error::Plugin(p)) = l.ingest_webhook("adyen", &adyen_webhook(file)) else {
            panic!("{file} accepted")
        };
        assert_eq!(p.kind, PluginErrorKind::Unsupported, "{file}");
    }
    // The published Balance Platform vector passes the host's check as published.
    let body = fixture("adyen/balancePlatform.accountHolder.created.banking_hmac_vector.json");
    let published = Webhook {
        headers: vec![(
            "hmacsignature".into(),
            "UVBzHbDayhfT1XgaRGAkuKvxwoxrLoVCBdfi3WZU8lI=".into(),
        )],
        body,
        url: None,
    };
    assert!(l.ingest_webhook("adyen", &published).unwrap().is_empty());
    assert!(all_events(&l).is_empty());
}
