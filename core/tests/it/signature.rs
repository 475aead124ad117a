//! Webhook signature schemes against every published test vector in
//! `tests/fixtures/webhooks/*/SIGNATURE.md`, and against tampering.

use super::util::hex;
use walletlog::signature::{
    check_secret, sign_request, verify, verify_request, DigestEncoding, HmacAlgorithm, HmacSpec,
    HttpRequest, Secret, SecretEncoding, SignatureError, SignatureScheme, SignedRequest,
};
use walletlog::Error;

pub fn fixture(path: &str) -> Vec<u8> {
    let full = format!(
        "{}/../tests/fixtures/webhooks/{path}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&full).unwrap_or_else(|e| panic!("{full}: {e}"))
}

fn headers(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn check(
    scheme: &SignatureScheme,
    secret: &str,
    hs: &[(&str, &str)],
    body: &[u8],
    url: Option<&str>,
    now: i64,
) -> Result<(), SignatureError> {
    let hs = headers(hs);
    verify(
        scheme,
        &Secret::new(secret),
        &SignedRequest {
            headers: &hs,
            body,
            url,
        },
        now,
    )
}

fn hmac(
    algorithm: HmacAlgorithm,
    header: &str,
    encoding: DigestEncoding,
    secret_encoding: SecretEncoding,
) -> SignatureScheme {
    SignatureScheme::Hmac(HmacSpec {
        algorithm,
        header: header.into(),
        encoding,
        prefix: None,
        include_url: false,
        secret_encoding,
    })
}

// --- Standard Webhooks: two published vectors ---------------------------

const SW1_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const SW1_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
const SW1_T: i64 = 1_614_265_330;
const SW1_SIG: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

fn sw1(sig: &str, body: &[u8], now: i64) -> Result<(), SignatureError> {
    let t = SW1_T.to_string();
    check(
        &SignatureScheme::StandardWebhooksV1,
        SW1_SECRET,
        &[
            ("webhook-id", SW1_ID),
            ("webhook-timestamp", &t),
            ("webhook-signature", sig),
        ],
        body,
        None,
        now,
    )
}

#[test]
fn standard_webhooks_vector_1() {
    let body = fixture("standard-webhooks/testvector_1_payload.txt");
    assert_eq!(body.len(), 20);
    sw1(SW1_SIG, &body, SW1_T).unwrap();
    assert_eq!(
        sw1(
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OA=",
            &body,
            SW1_T
        ),
        Err(SignatureError::Mismatch)
    );
    // Rotation: several signatures, unknown versions ignored, any v1 may match.
    let rotated = format!("v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= v2,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= {SW1_SIG} v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=");
    sw1(&rotated, &body, SW1_T).unwrap();
    // An entry that is not base64 matches nothing and hides no other; alone,
    // the header says so.
    sw1(&format!("v1,bogus= {SW1_SIG}"), &body, SW1_T).unwrap();
    sw1(&format!("{SW1_SIG} v1,!!"), &body, SW1_T).unwrap();
    let junk = "v1,!! v2,AA== ".repeat(20);
    sw1(&format!("{junk}{SW1_SIG}"), &body, SW1_T).unwrap();
    assert!(matches!(
        sw1("v1,bogus= v1,!!", &body, SW1_T),
        Err(SignatureError::Malformed { reason, .. }) if reason == "no v1 signature is base64"
    ));
    // Tampered body, stale and future timestamps (tolerance 300 s both ways).
    let mut tampered = body.clone();
    tampered.push(b' ');
    assert_eq!(
        sw1(SW1_SIG, &tampered, SW1_T),
        Err(SignatureError::Mismatch)
    );
    sw1(SW1_SIG, &body, SW1_T + 300).unwrap();
    sw1(SW1_SIG, &body, SW1_T - 300).unwrap();
    for now in [SW1_T + 301, SW1_T - 301] {
        assert!(matches!(
            sw1(SW1_SIG, &body, now),
            Err(SignatureError::TimestampOutOfTolerance { .. })
        ));
    }
}

#[test]
fn standard_webhooks_vector_2() {
    let body = fixture("standard-webhooks/testvector_2_payload.txt");
    let run = |sig: &str| {
        check(
            &SignatureScheme::StandardWebhooksV1,
            "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD",
            &[
                ("webhook-id", "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk"),
                ("webhook-timestamp", "1649367553"),
                ("webhook-signature", sig),
            ],
            &body,
            None,
            1_649_367_553,
        )
    };
    run("v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=").unwrap();
    assert_eq!(
        run("v1,R3PTzyfHASBKHH98a7yexTwaJ4yNIcGhFQc1yuN+BPU="),
        Err(SignatureError::Mismatch)
    );
}

#[test]
fn standard_webhooks_refuses_bad_headers_and_secrets() {
    let body = fixture("standard-webhooks/testvector_1_payload.txt");
    let t = SW1_T.to_string();
    let scheme = SignatureScheme::StandardWebhooksV1;
    for missing in ["webhook-id", "webhook-timestamp", "webhook-signature"] {
        let hs: Vec<_> = [
            ("webhook-id", SW1_ID),
            ("webhook-timestamp", &t),
            ("webhook-signature", SW1_SIG),
        ]
        .into_iter()
        .filter(|(k, _)| *k != missing)
        .collect();
        assert_eq!(
            check(&scheme, SW1_SECRET, &hs, &body, None, SW1_T),
            Err(SignatureError::MissingHeader(missing.into()))
        );
    }
    let dup = [
        ("webhook-id", SW1_ID),
        ("webhook-timestamp", &t),
        ("webhook-signature", SW1_SIG),
        ("Webhook-Signature", SW1_SIG),
    ];
    assert_eq!(
        check(&scheme, SW1_SECRET, &dup, &body, None, SW1_T),
        Err(SignatureError::DuplicateHeader("webhook-signature".into()))
    );
    for bad_t in ["161426533.0", "invalid timestamp", "-161426533", ""] {
        let hs = [
            ("webhook-id", SW1_ID),
            ("webhook-timestamp", bad_t),
            ("webhook-signature", SW1_SIG),
        ];
        assert!(
            matches!(
                check(&scheme, SW1_SECRET, &hs, &body, None, SW1_T),
                Err(SignatureError::Malformed { .. })
            ),
            "{bad_t}"
        );
    }
    let hs = [
        ("webhook-id", SW1_ID),
        ("webhook-timestamp", &t),
        ("webhook-signature", SW1_SIG),
    ];
    assert_eq!(
        check(
            &scheme,
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSA",
            &hs,
            &body,
            None,
            SW1_T
        ),
        Err(SignatureError::Mismatch)
    );
    assert!(matches!(
        check(&scheme, "whsec_not base64!", &hs, &body, None, SW1_T),
        Err(SignatureError::BadSecret(_))
    ));
    let hs = [
        ("webhook-id", SW1_ID),
        ("webhook-timestamp", &t),
        ("webhook-signature", "v1a,abc"),
    ];
    assert!(matches!(
        check(&scheme, SW1_SECRET, &hs, &body, None, SW1_T),
        Err(SignatureError::Malformed { .. })
    ));
}

// --- Stripe --------------------------------------------------------------

const STRIPE_T: i64 = 1_533_204_620;
const STRIPE_HEADER: &str = "t=1533204620,v1=2220f87ef101a04665f11cdf770523143f875572008577fa0f20882ddb9cc3c7,v0=63f3a72374a733066c4be69ed7f8e5ac85c22c9f0a6a612ab9a025a9e4ee7eef";

fn stripe(header: &str, secret: &str, body: &[u8], now: i64) -> Result<(), SignatureError> {
    check(
        &SignatureScheme::StripeV1,
        secret,
        &[("Stripe-Signature", header)],
        body,
        None,
        now,
    )
}

#[test]
fn stripe_vector() {
    let body = fixture("stripe/event_customer.created.signature_fixture.json");
    assert_eq!(body.len(), 484);
    assert_eq!(body.last(), Some(&b'\n'));
    stripe(STRIPE_HEADER, "webhook_secret", &body, STRIPE_T + 100).unwrap();
    assert!(matches!(
        stripe(STRIPE_HEADER, "webhook_secret", &body, STRIPE_T + 400),
        Err(SignatureError::TimestampOutOfTolerance { .. })
    ));
    assert!(matches!(
        stripe(STRIPE_HEADER, "webhook_secret", &body, STRIPE_T - 400),
        Err(SignatureError::TimestampOutOfTolerance { .. })
    ));
    let mut appended = body.clone();
    appended.push(b'x');
    assert_eq!(
        stripe(STRIPE_HEADER, "webhook_secret", &appended, STRIPE_T),
        Err(SignatureError::Mismatch)
    );
    assert_eq!(
        stripe(STRIPE_HEADER, "webhook_secreT", &body, STRIPE_T),
        Err(SignatureError::Mismatch)
    );
    // The body without its trailing newline is a different body.
    assert_eq!(
        stripe(STRIPE_HEADER, "webhook_secret", &body[..483], STRIPE_T),
        Err(SignatureError::Mismatch)
    );
}

#[test]
fn stripe_rotation_downgrade_and_malformed_headers() {
    let body = fixture("stripe/event_customer.created.signature_fixture.json");
    let good = "2220f87ef101a04665f11cdf770523143f875572008577fa0f20882ddb9cc3c7";
    let other = "0000000000000000000000000000000000000000000000000000000000000000";
    // Two v1 signatures (a rotated secret): either may match, in any order.
    stripe(
        &format!("t={STRIPE_T},v1={other},v1={good}"),
        "webhook_secret",
        &body,
        STRIPE_T,
    )
    .unwrap();
    stripe(
        &format!("t={STRIPE_T},v1={good},v1={other}"),
        "webhook_secret",
        &body,
        STRIPE_T,
    )
    .unwrap();
    // A v1 that is not hex matches nothing and hides no other.
    stripe(
        &format!("t={STRIPE_T},v1=zz,v1={good}"),
        "webhook_secret",
        &body,
        STRIPE_T,
    )
    .unwrap();
    assert_eq!(
        stripe(
            &format!("t={STRIPE_T},v1=zz,v1={other}"),
            "webhook_secret",
            &body,
            STRIPE_T
        ),
        Err(SignatureError::Mismatch)
    );
    // v0 never counts, even when it is the only one.
    let v0_only = format!("t={STRIPE_T},v0={good}");
    assert!(matches!(
        stripe(&v0_only, "webhook_secret", &body, STRIPE_T),
        Err(SignatureError::Malformed { .. })
    ));
    for bad in [
        "",
        "garbage",
        &format!("v1={good}"),
        &format!("t=abc,v1={good}"),
        &format!("t={STRIPE_T},t={STRIPE_T},v1={good}"),
        &format!("t={STRIPE_T},v1=zz"),
    ] {
        assert!(
            matches!(
                stripe(bad, "webhook_secret", &body, STRIPE_T),
                Err(SignatureError::Malformed { .. })
            ),
            "{bad:?}"
        );
    }
    assert_eq!(
        check(
            &SignatureScheme::StripeV1,
            "webhook_secret",
            &[],
            &body,
            None,
            STRIPE_T
        ),
        Err(SignatureError::MissingHeader("stripe-signature".into()))
    );
    let twice = [
        ("stripe-signature", STRIPE_HEADER),
        ("Stripe-Signature", STRIPE_HEADER),
    ];
    assert_eq!(
        check(
            &SignatureScheme::StripeV1,
            "webhook_secret",
            &twice,
            &body,
            None,
            STRIPE_T
        ),
        Err(SignatureError::DuplicateHeader("stripe-signature".into()))
    );
}

// --- Plain HMAC of the body ------------------------------------------------

#[test]
fn coinbase_commerce_vector() {
    let body = fixture("coinbase-commerce/charge_created.webhook_signature_vector.json");
    let scheme = hmac(
        HmacAlgorithm::Sha256,
        "X-CC-Webhook-Signature",
        DigestEncoding::Hex,
        SecretEncoding::Utf8,
    );
    let sig = "8be7742c7d372f08a6a3224edadf18a22b65fa9e28f3f2de97376cdaa092590d";
    let run = |secret: &str, sig: &str| {
        check(
            &scheme,
            secret,
            &[("x-cc-webhook-signature", sig)],
            &body,
            None,
            0,
        )
    };
    run("30291a20-0bd1-4267-9b0f-e6e7b123c0bf", sig).unwrap();
    assert_eq!(
        run("30291a20-0bd1-4267-9b0f-e6e7b123c0bg", sig),
        Err(SignatureError::Mismatch)
    );
    assert_eq!(
        run(
            "30291a20-0bd1-4267-9b0f-e6e7b123c0bf",
            &sig.replacen('3', "1", 1)
        ),
        Err(SignatureError::Mismatch)
    );
}

#[test]
fn razorpay_vector() {
    let body = fixture("razorpay/payment.authorized.json");
    let scheme = hmac(
        HmacAlgorithm::Sha256,
        "X-Razorpay-Signature",
        DigestEncoding::Hex,
        SecretEncoding::Utf8,
    );
    let sig = "d60e67fd884556c045e9be7dad57903e33efc7172c17c6e3ef77db42d2b366e9";
    check(
        &scheme,
        "key_secret",
        &[("X-Razorpay-Signature", sig)],
        &body,
        None,
        0,
    )
    .unwrap();
    let stripped = &body[..body.len() - 1];
    assert_eq!(
        check(
            &scheme,
            "key_secret",
            &[("X-Razorpay-Signature", sig)],
            stripped,
            None,
            0
        ),
        Err(SignatureError::Mismatch)
    );
}

#[test]
fn gocardless_vector() {
    let file = fixture("gocardless/webhook_subscriptions.created+mandates.created.json");
    // The SDK tests sign the file with its trailing newline removed.
    let body = file.strip_suffix(b"\n").unwrap();
    let scheme = hmac(
        HmacAlgorithm::Sha256,
        "Webhook-Signature",
        DigestEncoding::Hex,
        SecretEncoding::Utf8,
    );
    let sig = "2693754819d3e32d7e8fcb13c729631f316c6de8dc1cf634d6527f1c07276e7e";
    check(
        &scheme,
        "ED7D658C-D8EB-4941-948B-3973214F2D49",
        &[("Webhook-Signature", sig)],
        body,
        None,
        0,
    )
    .unwrap();
    assert_eq!(
        check(
            &scheme,
            "anotherkey",
            &[("Webhook-Signature", sig)],
            body,
            None,
            0
        ),
        Err(SignatureError::Mismatch)
    );
}

#[test]
fn adyen_balance_platform_vector() {
    let body = fixture("adyen/balancePlatform.accountHolder.created.banking_hmac_vector.json");
    let scheme = hmac(
        HmacAlgorithm::Sha256,
        "HmacSignature",
        DigestEncoding::Base64,
        SecretEncoding::Hex,
    );
    let key = "11223344D785FBAE710E7F943F307971BB61B21281C98C9129B3D4018A57B2EB";
    let sig = "UVBzHbDayhfT1XgaRGAkuKvxwoxrLoVCBdfi3WZU8lI=";
    check(&scheme, key, &[("hmacsignature", sig)], &body, None, 0).unwrap();
    assert_eq!(
        check(
            &scheme,
            &key.replace('E', "F"),
            &[("hmacsignature", sig)],
            &body,
            None,
            0
        ),
        Err(SignatureError::Mismatch)
    );
    assert!(matches!(
        check(
            &scheme,
            "not hex",
            &[("hmacsignature", sig)],
            &body,
            None,
            0
        ),
        Err(SignatureError::BadSecret(_))
    ));
}

#[test]
fn shopify_vector() {
    let body = fixture("shopify/test_body.signature_vector.txt");
    let scheme = hmac(
        HmacAlgorithm::Sha256,
        "X-Shopify-Hmac-Sha256",
        DigestEncoding::Base64,
        SecretEncoding::Utf8,
    );
    check(
        &scheme,
        "test_secret_key",
        &[(
            "X-Shopify-Hmac-Sha256",
            "B23tXN681gZ0qIWNRrgtzBE9XSDo5yaUu6wfmhu3a7g=",
        )],
        &body,
        None,
        0,
    )
    .unwrap();
    assert!(matches!(
        check(
            &scheme,
            "test_secret_key",
            &[("X-Shopify-Hmac-Sha256", "!!!")],
            &body,
            None,
            0
        ),
        Err(SignatureError::Malformed { .. })
    ));
}

// --- Square: HMAC of URL + body ------------------------------------------

fn square_scheme() -> SignatureScheme {
    SignatureScheme::Hmac(HmacSpec {
        algorithm: HmacAlgorithm::Sha256,
        header: "x-square-hmacsha256-signature".into(),
        encoding: DigestEncoding::Base64,
        prefix: None,
        include_url: true,
        secret_encoding: SecretEncoding::Utf8,
    })
}

#[test]
fn square_vectors() {
    let body = fixture("square/webhooks.test_notification.signature_vector.json");
    let url = "https://webhook.site/679a4f3a-dcfa-49ee-bac5-9d0edad886b9";
    let sig = "GF4YkrJgGBDZ9NIYbNXBnMzqb2HoL4RW/S6vkZ9/2N4=";
    let run = |key: &str, url: Option<&str>, body: &[u8], sig: &str| {
        check(
            &square_scheme(),
            key,
            &[("X-Square-HmacSha256-Signature", sig)],
            body,
            url,
            0,
        )
    };
    run("Ibxx_5AKakO-3qeNVR61Dw", Some(url), &body, sig).unwrap();
    assert_eq!(
        run(
            "Ibxx_5AKakO-3qeNVR61Dw",
            Some("https://webhook.site/79a4f3a-dcfa-49ee-bac5-9d0edad886b9"),
            &body,
            sig
        ),
        Err(SignatureError::Mismatch)
    );
    assert_eq!(
        run("MCmhFRxGX82xMwg5FsaoQA", Some(url), &body, sig),
        Err(SignatureError::Mismatch)
    );
    assert_eq!(
        run("Ibxx_5AKakO-3qeNVR61Dw", None, &body, sig),
        Err(SignatureError::MissingUrl)
    );
    let changed = String::from_utf8(body.clone())
        .unwrap()
        .replacen("2022-07-13", "2022-06-13", 1);
    assert_ne!(
        changed.as_bytes(),
        &body[..],
        "the fixture carries a created_at to change"
    );
    assert_eq!(
        run("Ibxx_5AKakO-3qeNVR61Dw", Some(url), changed.as_bytes(), sig),
        Err(SignatureError::Mismatch)
    );

    let url = "https://webhook.site/webhooks";
    run(
        "signature-key",
        Some(url),
        br#"{"data":{"type":"webhooks","id":"fake_id"}}"#,
        "W3FlCNk5IA3ZQ2LHTWoajvzfaDu/OwY2tNHIHC3IUOA=",
    )
    .unwrap();
    run(
        "signature-key",
        Some(url),
        br#"{"data":{"type":"webhooks","id":">id<"}}"#,
        "Cxt7+aTi4rKgcA0bC4g9EHdVtLSDWdqccmL5MvihU4U=",
    )
    .unwrap();
}

// --- Paystack (no published vector: synthetic) and prefixes -----------------

#[test]
fn synthetic_sha512_hex_and_prefixed_digests() {
    use hmac::{Hmac, Mac};
    let body = fixture("paystack/charge.success.json");
    let mut m = Hmac::<sha2::Sha512>::new_from_slice(b"sk_test_synthetic").unwrap();
    m.update(&body);
    let digest: String = hex(&m.finalize().into_bytes());
    assert_eq!(digest.len(), 128);
    let scheme = hmac(
        HmacAlgorithm::Sha512,
        "x-paystack-signature",
        DigestEncoding::Hex,
        SecretEncoding::Utf8,
    );
    check(
        &scheme,
        "sk_test_synthetic",
        &[("x-paystack-signature", &digest)],
        &body,
        None,
        0,
    )
    .unwrap();
    assert_eq!(
        check(
            &scheme,
            "sk_live_other",
            &[("x-paystack-signature", &digest)],
            &body,
            None,
            0
        ),
        Err(SignatureError::Mismatch)
    );

    // A `sha256=` prefix (Mollie-style) and a base64 secret (synthetic).
    let mut m = Hmac::<sha2::Sha256>::new_from_slice(b"raw key bytes").unwrap();
    m.update(b"{}");
    let digest: String = hex(&m.finalize().into_bytes());
    let scheme = SignatureScheme::Hmac(HmacSpec {
        algorithm: HmacAlgorithm::Sha256,
        header: "X-Mollie-Signature".into(),
        encoding: DigestEncoding::Hex,
        prefix: Some("sha256=".into()),
        include_url: false,
        secret_encoding: SecretEncoding::Base64,
    });
    let b64_key = "cmF3IGtleSBieXRlcw=="; // base64("raw key bytes")
    check(
        &scheme,
        b64_key,
        &[("x-mollie-signature", &format!("sha256={digest}"))],
        b"{}",
        None,
        0,
    )
    .unwrap();
    assert!(matches!(
        check(
            &scheme,
            b64_key,
            &[("x-mollie-signature", &digest)],
            b"{}",
            None,
            0
        ),
        Err(SignatureError::Malformed { .. })
    ));
}

#[test]
fn secrets_never_show() {
    let s = Secret::new("whsec_TOPSECRET");
    assert!(!format!("{s:?}").contains("TOPSECRET"));
    let errors = [
        check(
            &SignatureScheme::StandardWebhooksV1,
            "whsec_TOPSECRET!",
            &[
                ("webhook-id", "a"),
                ("webhook-timestamp", "1"),
                ("webhook-signature", "v1,AA=="),
            ],
            b"",
            None,
            1,
        ),
        stripe(STRIPE_HEADER, "TOPSECRET", b"x", STRIPE_T),
    ];
    for e in errors {
        let e = e.unwrap_err();
        assert!(!e.to_string().contains("TOPSECRET") && !format!("{e:?}").contains("TOPSECRET"));
    }
}

// --- Requests to services built on walletlog --------------------------------

#[test]
fn request_signing_round_trips_and_refuses_tampering() {
    let secret = b"service secret";
    let req = HttpRequest {
        method: "post",
        target: "/api/v1/wallets/w1/events/ingest",
        body: br#"{"amount":"1"}"#,
        timestamp: 1_767_225_600,
    };
    let sig = sign_request(secret, &req).unwrap();
    assert_eq!(sig.len(), 64);
    verify_request(secret, &req, &sig, req.timestamp + 10, 300).unwrap();
    // METHOD is case-insensitive; everything else is signed as given.
    verify_request(
        secret,
        &HttpRequest {
            method: "POST",
            ..req
        },
        &sig,
        req.timestamp,
        300,
    )
    .unwrap();
    let tampered = [
        HttpRequest {
            target: "/api/v1/wallets/w2/events/ingest",
            ..req
        },
        HttpRequest {
            target: "/api/v1/wallets/w1/events/ingest?x=1",
            ..req
        },
        HttpRequest {
            body: br#"{"amount":"2"}"#,
            ..req
        },
        HttpRequest {
            timestamp: req.timestamp + 1,
            ..req
        },
        HttpRequest {
            method: "GET",
            ..req
        },
    ];
    for t in tampered {
        assert!(
            matches!(
                verify_request(secret, &t, &sig, t.timestamp, 300),
                Err(Error::Signature(SignatureError::Mismatch))
            ),
            "{t:?}"
        );
    }
    assert!(matches!(
        verify_request(b"other", &req, &sig, req.timestamp, 300),
        Err(Error::Signature(SignatureError::Mismatch))
    ));
    assert!(matches!(
        verify_request(secret, &req, &sig, req.timestamp + 301, 300),
        Err(Error::Signature(
            SignatureError::TimestampOutOfTolerance { .. }
        ))
    ));
    assert!(matches!(
        verify_request(secret, &req, "xyz", req.timestamp, 300),
        Err(Error::Signature(SignatureError::Malformed { .. }))
    ));
    // Times at the ends of the range are refused, never an overflow, and
    // the refusal prints.
    for (timestamp, now) in [(0, i64::MAX), (i64::MAX, 0)] {
        let e =
            verify_request(secret, &HttpRequest { timestamp, ..req }, &sig, now, 300).unwrap_err();
        assert!(
            matches!(
                e,
                Error::Signature(SignatureError::TimestampOutOfTolerance { .. })
            ),
            "{e}"
        );
        assert!(e.to_string().contains(&i64::MAX.to_string()), "{e}");
    }
    // A sender's time before 1970 is its request's fault: a signature error.
    for timestamp in [-1, i64::MIN] {
        let e =
            verify_request(secret, &HttpRequest { timestamp, ..req }, &sig, 0, 300).unwrap_err();
        assert!(
            matches!(e, Error::Signature(SignatureError::Malformed { .. })),
            "{e}"
        );
    }
    assert_eq!(
        SignatureError::TimestampOutOfTolerance {
            timestamp: i64::MAX,
            now: i64::MIN,
            tolerance_secs: 300
        }
        .to_string(),
        format!(
            "signed timestamp {} is {}s from now ({}); at most 300s allowed",
            i64::MAX,
            u64::MAX,
            i64::MIN
        )
    );
}

#[test]
fn request_signing_refuses_an_empty_secret_and_negative_times() {
    let req = HttpRequest {
        method: "GET",
        target: "/api/v1/wallets/w1/balance",
        body: b"",
        timestamp: 1_767_225_600,
    };
    // An empty key is one anybody can sign with: neither signed nor accepted.
    let e = sign_request(b"", &req).unwrap_err();
    assert_eq!(e.field, "secret");
    let empty_key_sig = super::util::hex(&{
        let mut m = <hmac::Hmac<sha2::Sha256> as hmac::Mac>::new_from_slice(b"").unwrap();
        hmac::Mac::update(
            &mut m,
            format!(
                "GET\n/api/v1/wallets/w1/balance\n1767225600\n{}",
                super::util::hex(&<sha2::Sha256 as sha2::Digest>::digest(b""))
            )
            .as_bytes(),
        );
        hmac::Mac::finalize(m).into_bytes()
    });
    let Err(Error::Validation(v)) = verify_request(b"", &req, &empty_key_sig, req.timestamp, 300)
    else {
        panic!("an empty secret verified a request")
    };
    assert_eq!(v.field, "secret");
    let before_1970 = HttpRequest {
        timestamp: -1,
        ..req
    };
    assert_eq!(
        sign_request(b"k", &before_1970).unwrap_err().field,
        "timestamp"
    );
    let sig = sign_request(b"k", &req).unwrap();
    let Err(Error::Validation(v)) = verify_request(b"k", &req, &sig, req.timestamp, -1) else {
        panic!("a negative tolerance was taken")
    };
    assert_eq!(v.field, "tolerance_secs");
    let Err(Error::Validation(v)) = verify_request(b"k", &req, &sig, -1, 300) else {
        panic!("a negative now was taken")
    };
    assert_eq!(v.field, "now");
}

#[test]
fn an_empty_webhook_key_fails_closed_in_every_scheme() {
    let spec = |secret_encoding| HmacSpec {
        algorithm: HmacAlgorithm::Sha256,
        header: "x-sig".into(),
        encoding: DigestEncoding::Hex,
        prefix: None,
        include_url: false,
        secret_encoding,
    };
    for (scheme, secret) in [
        (SignatureScheme::StripeV1, ""),
        (SignatureScheme::StandardWebhooksV1, "whsec_"),
        (SignatureScheme::StandardWebhooksV1, ""),
        (SignatureScheme::Hmac(spec(SecretEncoding::Utf8)), ""),
        (SignatureScheme::Hmac(spec(SecretEncoding::Hex)), ""),
        (SignatureScheme::Hmac(spec(SecretEncoding::Base64)), ""),
    ] {
        assert_eq!(
            check_secret(&scheme, &Secret::new(secret)),
            Err(SignatureError::BadSecret("the secret is empty".into())),
            "{} {secret:?}",
            scheme.name()
        );
    }
    // A Stripe delivery signed with the empty key is refused, not taken.
    let body = b"{}";
    let t = 1_767_225_600i64;
    let sig = super::util::hex(&{
        let mut m = <hmac::Hmac<sha2::Sha256> as hmac::Mac>::new_from_slice(b"").unwrap();
        hmac::Mac::update(&mut m, format!("{t}.{{}}").as_bytes());
        hmac::Mac::finalize(m).into_bytes()
    });
    assert!(matches!(
        check(
            &SignatureScheme::StripeV1,
            "",
            &[("Stripe-Signature", &format!("t={t},v1={sig}"))],
            body,
            None,
            t
        ),
        Err(SignatureError::BadSecret(_))
    ));
}
