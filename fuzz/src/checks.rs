//! What each fuzz target checks, on any input: no panic, no crash, no
//! runaway, and the properties below. This file is shared: the fuzz crate
//! runs it under libFuzzer, and core's test binary (`it::fuzz_regressions`)
//! replays every input kept in `fuzz/regressions/<target>/` through it.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use walletlog::plugins::{InstalledPlugin, PluginHost, PluginLimits};
use walletlog::signature::{
    verify, DigestEncoding, HmacAlgorithm, HmacSpec, SecretEncoding, SignatureScheme, SignedRequest,
};
use walletlog::{json, Ledger, ListQuery, PluginErrorKind, Secret, WalletId, Webhook};

/// Event JSON to a validated event. Whatever parses is accepted by a
/// ledger, reads back as JSON that parses again, and that replay is a
/// duplicate of the same stored event.
pub fn event_json(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = json::parse_events(text);
    let Ok(event) = json::parse_event(text) else {
        return;
    };
    let ledger = Ledger::in_memory();
    if event.check_keys().is_err() {
        // Without a key an event could never be recognised again: refused,
        // and nothing stored.
        let refused = ledger
            .ingest(&event)
            .expect_err("an event without a key is refused");
        assert_eq!(refused.field(), Some("idempotency_key"));
        assert!(ledger.changes_since(0, 1).unwrap().is_empty());
        return;
    }
    let first = ledger
        .ingest(&event)
        .expect("a parsed event with a key is always accepted");
    assert!(first.created());
    let written = json::event(&first.event).to_string();
    let again = json::parse_event(&written).expect("an event read out parses back");
    let second = ledger.ingest(&again).expect("its replay is accepted");
    assert!(
        second.duplicate(),
        "the replay of {written} was not a duplicate"
    );
    assert_eq!(second.event, first.event);
}

/// Webhook signature headers: every scheme on arbitrary header values and
/// bodies. The first byte picks the scheme, 0xff separates the parts.
pub fn signature_headers(data: &[u8]) {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let parts: Vec<String> = rest
        .splitn(4, |b| *b == 0xff)
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect();
    let part = |i: usize| parts.get(i).cloned().unwrap_or_default();
    let hmac = |algorithm, encoding, prefix: Option<&str>, include_url, secret_encoding| {
        SignatureScheme::Hmac(HmacSpec {
            algorithm,
            header: "x-signature".into(),
            encoding,
            prefix: prefix.map(str::to_owned),
            include_url,
            secret_encoding,
        })
    };
    let (scheme, secret, headers) = match pick % 6 {
        0 => (
            SignatureScheme::StripeV1,
            "whsec_test",
            vec![("Stripe-Signature".to_owned(), part(0))],
        ),
        1 => (
            SignatureScheme::StandardWebhooksV1,
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            vec![
                ("webhook-id".to_owned(), part(0)),
                ("webhook-timestamp".to_owned(), part(1)),
                ("webhook-signature".to_owned(), part(2)),
            ],
        ),
        2 => (
            hmac(
                HmacAlgorithm::Sha256,
                DigestEncoding::Hex,
                Some("sha256="),
                false,
                SecretEncoding::Utf8,
            ),
            "secret",
            vec![("X-Signature".to_owned(), part(0))],
        ),
        3 => (
            hmac(
                HmacAlgorithm::Sha512,
                DigestEncoding::Base64,
                None,
                true,
                SecretEncoding::Base64,
            ),
            "c2VjcmV0",
            vec![("x-signature".to_owned(), part(0))],
        ),
        4 => (
            hmac(
                HmacAlgorithm::Sha256,
                DigestEncoding::Base64,
                None,
                false,
                SecretEncoding::Hex,
            ),
            "00FF11ee",
            vec![
                ("x-signature".to_owned(), part(0)),
                ("x-signature".to_owned(), part(1)),
            ],
        ),
        // A secret that is not valid in its declared encoding.
        _ => (
            hmac(
                HmacAlgorithm::Sha256,
                DigestEncoding::Hex,
                None,
                false,
                SecretEncoding::Hex,
            ),
            "not hex",
            vec![("x-signature".to_owned(), part(0))],
        ),
    };
    let body = part(3);
    let request = SignedRequest {
        headers: &headers,
        body: body.as_bytes(),
        url: Some("https://example.com/hook"),
    };
    let _ = verify(&scheme, &Secret::new(secret), &request, 1_700_000_000);
}

/// Cursors: any text either decodes for this query or is a validation
/// error, and a decoded cursor always gives a page.
pub fn cursor(data: &[u8]) {
    static LEDGER: OnceLock<Ledger> = OnceLock::new();
    let ledger = LEDGER.get_or_init(|| {
        let l = Ledger::in_memory();
        let events: Vec<_> = (0..20)
            .map(|i| {
                json::parse_event(&format!(
                    concat!(
                        r#"{{"wallet_id":"w","provider":"p","event_type":"deposit","amount":"{}","#,
                        r#""currency":"EUR","occurred_at":"2026-01-01T00:00:{:02}Z","#,
                        r#""provider_event_id":"e{}"}}"#
                    ),
                    i + 1,
                    i % 3,
                    i
                ))
                .expect("a valid event")
            })
            .collect();
        l.ingest_batch(&events).expect("a valid batch");
        l
    });
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let wallet = WalletId::new("w").expect("a valid wallet id");
    if let Ok(query) = ListQuery::new(wallet).cursor(text) {
        ledger.list(&query).expect("a decoded cursor gives a page");
    }
}

/// Inbox cursors, as history cursors: any text either decodes for this
/// query or is a validation error naming `cursor`, and a decoded cursor
/// always gives a page, of this query's deliveries only, in its order.
pub fn inbox_cursor(data: &[u8]) {
    use walletlog::adapters::memory::MemoryStorage;
    use walletlog::ports::Storage;
    use walletlog::{
        AttemptKind, Delivery, DeliveryAttempt, DeliveryId, InboxQuery, Order, Provider, Timestamp,
        Verdict,
    };
    static LEDGER: OnceLock<Ledger> = OnceLock::new();
    let ledger = LEDGER.get_or_init(|| {
        let storage = MemoryStorage::new();
        storage
            .write(&mut |tx| {
                for i in 0..20u64 {
                    let at = Timestamp::from_micros("t", 1_700_000_000_000_000 + (i as i64 % 4))
                        .expect("a valid time");
                    let mut d = Delivery {
                        sequence: i + 1,
                        delivery_id: DeliveryId::generate(),
                        provider: Provider::new(if i % 2 == 0 { "p" } else { "q" })
                            .expect("a valid provider"),
                        received_at: at,
                        url: None,
                        headers: Vec::new(),
                        body: Some(vec![i as u8]),
                        body_sha256: [i as u8; 32],
                        body_bytes: 1,
                        attempt_count: 0,
                        attempts: Vec::new(),
                    };
                    d.push_attempt(DeliveryAttempt {
                        at,
                        kind: AttemptKind::Receipt,
                        plugin_version: "1".into(),
                        plugin_sha256: [0; 32],
                        verdict: Verdict::ALL[i as usize % Verdict::ALL.len()],
                        reason: None,
                        event_ids: Vec::new(),
                    });
                    tx.put_delivery(&d)?;
                }
                Ok(())
            })
            .expect("deliveries are stored");
        Ledger::with_storage(Box::new(storage), None).expect("a ledger")
    });
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let provider = Provider::new("p").expect("a valid provider");
    let query = InboxQuery::new()
        .provider(provider.clone())
        .order(Order::Asc)
        .limit(3)
        .expect("a valid limit");
    match query.cursor(text) {
        Ok(query) => {
            let page = ledger.inbox(&query).expect("a decoded cursor gives a page");
            assert!(page.deliveries.iter().all(|d| d.provider == provider));
            assert!(page
                .deliveries
                .windows(2)
                .all(|w| (w[0].received_at, w[0].sequence) < (w[1].received_at, w[1].sequence)));
        }
        Err(e) => assert_eq!(e.field, "cursor"),
    }
}

/// Checkpoint texts: any text is read or refused (naming `checkpoint`),
/// never a panic; what is read writes back to the same signed lines, and a
/// key that did not sign it never verifies it.
pub fn checkpoint(data: &[u8]) {
    use walletlog::{SignedCheckpoint, SigningKey};
    static KEY: OnceLock<SigningKey> = OnceLock::new();
    let key = KEY.get_or_init(|| SigningKey::from_bytes(&[7; 32]).expect("32 bytes"));
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match SignedCheckpoint::parse(text) {
        Ok(read) => {
            let signed = read.checkpoint.sign(key);
            // Written again, the five signed lines are the input's, byte for byte.
            let lines = |t: &str| t.split('\n').take(5).map(str::to_owned).collect::<Vec<_>>();
            assert_eq!(lines(&signed), lines(text));
            let again = SignedCheckpoint::parse(&signed).expect("a signed checkpoint reads back");
            assert_eq!(again.checkpoint, read.checkpoint);
            assert!(again.signed_by(&key.verifying_key()));
            if read.signature != again.signature {
                assert!(!read.signed_by(&key.verifying_key()));
            }
        }
        Err(e) => assert_eq!(e.field, "checkpoint"),
    }
}

/// Where the plugins built by `cargo xtask plugins` are.
pub fn plugins_dir() -> PathBuf {
    match std::env::var_os("WALLETLOG_PLUGINS_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/plugins"),
    }
}

fn host() -> &'static PluginHost {
    static HOST: OnceLock<PluginHost> = OnceLock::new();
    HOST.get_or_init(|| {
        PluginHost::new(PluginLimits::default(), None).expect("the plugin engine starts")
    })
}

/// Arbitrary bytes as a plugin component: refused or installed, never a
/// crash; an installed one runs under its limits.
pub fn plugin_component(data: &[u8]) {
    if let Ok(plugin) = host().install(data) {
        let _ = host().normalize(
            &plugin,
            &Webhook {
                headers: vec![],
                body: b"{}".to_vec(),
                url: None,
            },
        );
    }
}

/// The provider plugins this repository builds.
pub const PROVIDERS: [&str; 5] = ["stripe", "adyen", "square", "paystack", "standard-webhooks"];

/// Arbitrary payloads to each provider plugin (the first byte picks it).
/// Our plugins never trap and never exhaust fuel, memory or time, whatever
/// they are sent; what they return is validated like any input.
pub fn plugin_payload(data: &[u8]) {
    let plugins = provider_plugins();
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    plugin_payload_to(&plugins[pick as usize % plugins.len()], body);
}

/// The provider plugins, compiled once. The fuzz target compiles them
/// before its first input (`init`): compiling five components under
/// AddressSanitizer takes longer than libFuzzer allows one input.
pub fn provider_plugins() -> &'static [InstalledPlugin] {
    static PLUGINS: OnceLock<Vec<InstalledPlugin>> = OnceLock::new();
    PLUGINS.get_or_init(|| {
        PROVIDERS
            .iter()
            .map(|name| {
                let path = plugins_dir().join(format!("{name}.wasm"));
                let bytes = std::fs::read(&path).unwrap_or_else(|e| {
                    panic!("{}: {e}; run `cargo xtask plugins`", path.display())
                });
                host().install(&bytes).expect("our plugins install")
            })
            .collect()
    })
}

/// `body` to `plugin`, as [`plugin_payload`] sends it.
fn plugin_payload_to(plugin: &InstalledPlugin, body: &[u8]) {
    let webhook = Webhook {
        headers: vec![
            ("content-type".into(), "application/json".into()),
            ("webhook-id".into(), "msg_fuzz".into()),
            ("webhook-timestamp".into(), "1700000000".into()),
        ],
        body: body.to_vec(),
        url: Some("https://example.com/hook".into()),
    };
    match host().normalize(plugin, &webhook) {
        Ok(events) => {
            for e in events {
                let _ = e.validate(&plugin.info.provider, walletlog::Timestamp::now());
            }
        }
        Err(e) => assert!(
            !matches!(
                e.kind,
                PluginErrorKind::Trap
                    | PluginErrorKind::OutOfFuel
                    | PluginErrorKind::OutOfMemory
                    | PluginErrorKind::Timeout
            ),
            "plugin {} failed on a {}-byte payload: {e}",
            plugin.info.provider,
            body.len()
        ),
    }
}

/// The body of a fuzz target.
pub type Check = fn(&[u8]);

/// Every fuzz target by name, for replaying kept inputs.
pub const TARGETS: [(&str, Check); 7] = [
    ("event_json", event_json),
    ("signature_headers", signature_headers),
    ("cursor", cursor),
    ("inbox_cursor", inbox_cursor),
    ("checkpoint", checkpoint),
    ("plugin_component", plugin_component),
    ("plugin_payload", plugin_payload),
];
