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

pub const PAYSTACK_KEY: &str = "sk_test_walletlog_synthetic";

pub fn paystack_webhook(body: Vec<u8>) -> Webhook {
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

// --- Every order ------------------------------------------------------------

/// What a ledger holds after a set of deliveries, independent of the order
/// they came in: every event's content (an estimated time left out: it is
/// the receipt's), every wallet's balances, and each delivery's outcome.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    events: Vec<String>,
    balances: Vec<String>,
    refused: Vec<String>,
    /// The provider's time of each event that has one. An event stored with
    /// an estimated time in one order may hold the provider's in another
    /// (the first report wins): times are compared where both have one.
    times: std::collections::BTreeMap<String, String>,
}

impl Outcome {
    fn same_as(&self, other: &Outcome) -> bool {
        self.events == other.events
            && self.balances == other.balances
            && self.refused == other.refused
            && self
                .times
                .iter()
                .all(|(k, t)| other.times.get(k).is_none_or(|o| o == t))
    }
}

fn outcome_of(l: &Ledger, refused: Vec<String>) -> Outcome {
    let times = all_events(l)
        .iter()
        .filter(|e| !e.occurred_at_estimated)
        .map(|e| {
            (
                e.provider_event_id.as_ref().unwrap().to_string(),
                e.occurred_at.to_string(),
            )
        })
        .collect();
    let mut events: Vec<String> = all_events(l)
        .iter()
        .map(|e| {
            format!(
                "{} {} {} {} {}",
                e.provider_event_id.as_ref().unwrap(),
                e.wallet_id,
                e.event_type.as_str(),
                e.amount,
                e.currency
            )
        })
        .collect();
    events.sort();
    let mut wallets: Vec<String> = all_events(l)
        .iter()
        .map(|e| e.wallet_id.to_string())
        .collect();
    wallets.sort();
    wallets.dedup();
    let balances = wallets
        .iter()
        .flat_map(|w| {
            l.balance(&wallet(w), None)
                .unwrap()
                .into_iter()
                .map(move |b| format!("{w} {} {} {}", b.currency, b.available, b.held))
        })
        .collect();
    let mut refused = refused;
    refused.sort();
    assert!(l.verify_audit().unwrap().ok);
    Outcome {
        events,
        balances,
        refused,
        times,
    }
}

/// Orders of `n` deliveries: all of them up to 5, else the identity, the
/// reverse and 40 seeded shuffles.
fn orders(n: usize) -> Vec<Vec<usize>> {
    fn permute(prefix: &mut Vec<usize>, rest: &mut Vec<usize>, out: &mut Vec<Vec<usize>>) {
        if rest.is_empty() {
            out.push(prefix.clone());
            return;
        }
        for i in 0..rest.len() {
            let x = rest.remove(i);
            prefix.push(x);
            permute(prefix, rest, out);
            prefix.pop();
            rest.insert(i, x);
        }
    }
    let mut out = Vec::new();
    if n <= 5 {
        permute(&mut Vec::new(), &mut (0..n).collect(), &mut out);
        return out;
    }
    out.push((0..n).collect());
    out.push((0..n).rev().collect());
    let mut seed: u64 = 0x5eed;
    for _ in 0..40 {
        let mut order: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            order.swap(i, (seed >> 33) as usize % (i + 1));
        }
        out.push(order);
    }
    out
}

/// Delivers `hooks` in every order of [`orders`], each into a fresh ledger
/// of `provider`, and asserts the same outcome every time, with no conflict.
fn every_order_gives_the_same_ledger(provider: &str, secret: &str, hooks: &[(String, Webhook)]) {
    let cache = tempfile::tempdir().unwrap();
    let mut first: Option<Outcome> = None;
    for order in orders(hooks.len()) {
        let l = Ledger::open(
            ":memory:",
            walletlog::Options {
                plugin_cache_dir: Some(cache.path().to_owned()),
                ..Default::default()
            },
        )
        .unwrap();
        l.install_plugin(&plugin(provider)).unwrap();
        l.set_webhook_secret(provider, Secret::new(secret)).unwrap();
        let mut refused = Vec::new();
        for &i in &order {
            let (name, hook) = &hooks[i];
            match l.ingest_webhook(provider, hook) {
                Ok(_) => {}
                Err(Error::Conflict(c)) => {
                    panic!("{provider}: {name} conflicts in order {order:?}: {c}")
                }
                Err(e) => refused.push(format!("{name}: {}", e.code().unwrap_or("?"))),
            }
        }
        let got = outcome_of(&l, refused);
        match &first {
            None => first = Some(got),
            Some(f) => assert!(
                got.same_as(f),
                "{provider}: order {order:?}: {got:?} vs {f:?}"
            ),
        }
    }
    assert!(
        !first.unwrap().events.is_empty(),
        "{provider}: the deliveries moved money"
    );
}

fn fixture_hooks(dir: &str, make: fn(Vec<u8>) -> Webhook) -> Vec<(String, Webhook)> {
    let mut names: Vec<String> = std::fs::read_dir(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/fixtures/webhooks")
            .join(dir),
    )
    .unwrap()
    .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
    .filter(|n| n.ends_with(".json"))
    .collect();
    names.sort();
    names
        .into_iter()
        .map(|n| {
            let body = fixture(&format!("{dir}/{n}"));
            (n, make(body))
        })
        .collect()
}

#[test]
fn square_deliveries_in_any_order_give_the_same_ledger() {
    every_order_gives_the_same_ledger(
        "square",
        SQUARE_KEY,
        &fixture_hooks("square", square_webhook),
    );
}

#[test]
fn paystack_deliveries_in_any_order_give_the_same_ledger() {
    every_order_gives_the_same_ledger(
        "paystack",
        PAYSTACK_KEY,
        &fixture_hooks("paystack", paystack_webhook),
    );
}

#[test]
fn adyen_transfer_deliveries_in_any_order_give_the_same_ledger() {
    // One transfer's webhooks at a time (the published examples reuse ids
    // across outcomes that exclude each other: booked, cancelled, failed).
    let flows: [&[&str]; 4] = [
        &[
            "transfer.created-outgoing-external.openapi_example.json",
            "transfer.updated-01.payout-authorized.openapi_example.json",
            "transfer.updated-02.payout-booked.openapi_example.json",
            "transaction.created-01.payout-ti.openapi_example.json",
        ],
        &[
            "transfer.created-incoming-internal.openapi_example.json",
            "transfer.updated-03.internal-authorised.openapi_example.json",
            "transfer.updated-04.internal-booked.openapi_example.json",
            "transaction.created-02.internal-incoming.openapi_example.json",
        ],
        &[
            "transfer.created-initiated-on-demand-top-up.openapi_example.json",
            "transfer.updated-authorized-on-demand-top-up.openapi_example.json",
            "transfer.updated-captured-on-demand-top-up.openapi_example.json",
        ],
        &[
            "transfer.created-initiated-scheduled-top-up.openapi_example.json",
            "transfer.updated-authorized-scheduled-top-up.openapi_example.json",
            "transfer.updated-captured-scheduled-top-up.openapi_example.json",
        ],
    ];
    for files in flows {
        let hooks: Vec<(String, Webhook)> = files
            .iter()
            .map(|f| (f.to_string(), adyen_webhook(f)))
            .collect();
        every_order_gives_the_same_ledger("adyen", ADYEN_KEY, &hooks);
    }
}

/// SYNTHETIC: a Stripe event of `kind` about `object`, created at `created`
/// (each event type of one movement is created at its own moment).
fn stripe_event(
    id: &str,
    kind: &str,
    created: i64,
    object: serde_json::Value,
) -> (String, Webhook) {
    let body = serde_json::json!({
        "id": id, "object": "event", "api_version": "2024-06-20", "created": created,
        "data": {"object": object}, "livemode": false, "type": kind,
    });
    (
        kind.to_owned(),
        super::webhooks::stripe_webhook(body.to_string().as_bytes()),
    )
}

fn with(mut base: serde_json::Value, fields: serde_json::Value) -> serde_json::Value {
    for (k, v) in fields.as_object().unwrap() {
        base[k] = v.clone();
    }
    base
}

#[test]
fn stripe_payment_refund_payout_and_dispute_each_counted_once_in_any_order() {
    use super::webhooks::{stripe_object, STRIPE_SECRET};
    use serde_json::json;
    let wallet = json!({"wallet_id": "w_stripe"});
    // One payment: the intent (without latest_charge) and its charge, each
    // event created at its own moment; the events around them move nothing.
    let intent = with(
        stripe_object("object_payment_intent.fixtures3.json"),
        json!({"id": "pi_one", "amount": 2000, "amount_received": 2000, "status": "succeeded",
               "customer": "cus_one", "metadata": wallet, "created": 1_767_225_000}),
    );
    let charge = with(
        stripe_object("object_charge.fixtures3.json"),
        json!({"id": "ch_one", "amount": 2000, "payment_intent": "pi_one", "customer": "cus_one",
               "metadata": wallet, "created": 1_767_225_060, "currency": "usd"}),
    );
    let payment = vec![
        stripe_event(
            "evt_p1",
            "payment_intent.created",
            1_767_225_000,
            intent.clone(),
        ),
        stripe_event("evt_p2", "payment_intent.succeeded", 1_767_225_061, intent),
        stripe_event("evt_p3", "charge.succeeded", 1_767_225_062, charge.clone()),
        stripe_event("evt_p4", "charge.captured", 1_767_225_063, charge.clone()),
    ];
    // One refund, reported by four event types.
    let refund = with(
        stripe_object("object_refund.fixtures3.json"),
        json!({"id": "re_one", "amount": 500, "charge": "ch_one", "status": "succeeded",
               "metadata": wallet, "created": 1_767_226_000, "currency": "usd"}),
    );
    let refunded_charge = with(
        charge,
        json!({"refunded": false, "amount_refunded": 500, "refunds": {"data": [refund.clone()]}}),
    );
    let refunds = vec![
        stripe_event("evt_r1", "refund.created", 1_767_226_001, refund.clone()),
        stripe_event("evt_r2", "charge.refunded", 1_767_226_002, refunded_charge),
        stripe_event("evt_r3", "refund.updated", 1_767_226_003, refund.clone()),
        stripe_event("evt_r4", "charge.refund.updated", 1_767_226_004, refund),
    ];
    // One payout: created, updated, paid.
    let payout = with(
        stripe_object("object_payout.fixtures3.json"),
        json!({"id": "po_one", "amount": 1200, "metadata": wallet, "created": 1_767_227_000,
               "currency": "usd"}),
    );
    let payouts = vec![
        stripe_event("evt_o1", "payout.created", 1_767_227_000, payout.clone()),
        stripe_event("evt_o2", "payout.updated", 1_767_227_100, payout.clone()),
        stripe_event("evt_o3", "payout.paid", 1_767_227_200, payout),
    ];
    // One dispute: opened, funds withdrawn, won, funds reinstated, closed.
    let dispute = |txns: serde_json::Value| {
        with(
            stripe_object("object_dispute.fixtures3.json"),
            json!({"id": "dp_one", "amount": 2000, "charge": "ch_one", "metadata": wallet,
                   "created": 1_767_228_000, "currency": "usd", "balance_transactions": txns}),
        )
    };
    let withdrawn = json!([{"id": "txn_w", "created": 1_767_228_010}]);
    let both = json!([{"id": "txn_w", "created": 1_767_228_010},
                      {"id": "txn_r", "created": 1_767_229_000}]);
    let disputes = vec![
        stripe_event(
            "evt_d1",
            "charge.dispute.created",
            1_767_228_001,
            dispute(json!([])),
        ),
        stripe_event(
            "evt_d2",
            "charge.dispute.funds_withdrawn",
            1_767_228_011,
            dispute(withdrawn),
        ),
        stripe_event(
            "evt_d3",
            "charge.dispute.updated",
            1_767_228_500,
            dispute(both.clone()),
        ),
        stripe_event(
            "evt_d4",
            "charge.dispute.funds_reinstated",
            1_767_229_001,
            dispute(both.clone()),
        ),
        stripe_event(
            "evt_d5",
            "charge.dispute.closed",
            1_767_229_002,
            dispute(both),
        ),
    ];
    for (what, hooks, events) in [
        ("payment", &payment, 1),
        ("refund", &refunds, 1),
        ("payout", &payouts, 1),
        ("dispute", &disputes, 2),
    ] {
        every_order_gives_the_same_ledger("stripe", STRIPE_SECRET, hooks);
        let l = ledger("stripe", STRIPE_SECRET);
        for (_, h) in hooks {
            l.ingest_webhook("stripe", h).unwrap();
        }
        assert_eq!(all_events(&l).len(), events, "{what}: counted once");
    }
    // All four together: +20 -5 -12 -20 +20 = 3.00 USD.
    let l = ledger("stripe", STRIPE_SECRET);
    for (_, h) in payment
        .iter()
        .chain(&refunds)
        .chain(&payouts)
        .chain(&disputes)
    {
        l.ingest_webhook("stripe", h).unwrap();
    }
    let b = &l.balance(&wallet_id("w_stripe"), None).unwrap()[0];
    assert_eq!(
        (b.currency.as_str(), b.available.to_string()),
        ("USD", "3".into())
    );
    // The intent's event came first and says nothing of when the money
    // moved: an estimate. Had the charge's come first, the charge's time.
    let key = |k: &str| {
        (
            walletlog::Provider::new("stripe").unwrap(),
            walletlog::ProviderEventId::new(k).unwrap(),
        )
    };
    let (p, k) = key("pi_one");
    let paid = l.get_by_provider_event_id(&p, &k).unwrap().unwrap();
    assert!(paid.occurred_at_estimated);
    let charge_first = ledger("stripe", STRIPE_SECRET);
    for i in [2, 1] {
        charge_first
            .ingest_webhook("stripe", &payment[i].1)
            .unwrap();
    }
    let paid = charge_first
        .get_by_provider_event_id(&p, &k)
        .unwrap()
        .unwrap();
    assert!(!paid.occurred_at_estimated);
    assert_eq!(paid.occurred_at.to_string(), "2025-12-31T23:51:00Z");
    // The refund is dated by the refund, whichever event reported it.
    let (p, k) = key("re_one");
    let refunded = l.get_by_provider_event_id(&p, &k).unwrap().unwrap();
    assert_eq!(refunded.occurred_at.to_string(), "2026-01-01T00:06:40Z");
}

fn wallet_id(id: &str) -> walletlog::WalletId {
    walletlog::WalletId::new(id).unwrap()
}

/// Every plugin normalizes every published payload of its provider within
/// the memory it starts with: the SDK's allocator serves a call from the
/// initial memory (plugins/sdk/src/heap.rs), so the sandbox never changes
/// an instance's page protection on a typical webhook. A plugin built with
/// the standard allocator grows by a page on its first allocation.
#[test]
fn published_payloads_never_grow_a_plugins_memory() {
    let host = walletlog::plugins::PluginHost::new(Default::default(), None).unwrap();
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/webhooks");
    let mut calls = 0;
    for provider in ["stripe", "adyen", "paystack", "square", "standard-webhooks"] {
        let installed = host.install(&plugin(provider)).unwrap();
        let mut files: Vec<_> = std::fs::read_dir(format!("{root}/{provider}"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.sort();
        assert!(!files.is_empty(), "no payloads of {provider}");
        for file in files {
            let hook = Webhook {
                headers: vec![],
                body: std::fs::read(&file).unwrap(),
                url: None,
            };
            let mut cost = walletlog::plugins::CallCost::default();
            // Some payloads are refused (unsupported, malformed): the
            // memory is what is measured here.
            let _ = host.normalize_measured(&installed, &hook, &mut cost);
            assert!(cost.peak_memory_bytes > 0, "{}", file.display());
            assert!(
                cost.peak_memory_bytes <= 192 << 10,
                "{} took {} bytes of memory; 192 KiB is what the plugins start with",
                file.display(),
                cost.peak_memory_bytes
            );
            calls += 1;
        }
    }
    assert!(calls >= 50, "only {calls} payloads");
}
