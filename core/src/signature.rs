//! Webhook signatures: verified by the host, with the secret the host
//! configured, before any plugin sees the webhook.
//!
//! Schemes: `stripe-v1`, `standard-webhooks-v1`, and generic `hmac` (one
//! header holding HMAC-SHA256 or -SHA512 of the body, or of URL + body).
//! Comparisons are constant-time. Secrets never appear in errors, logs or
//! `Debug` output.
//!
//! Also `sign_request` / `verify_request`, for HTTP APIs built on walletlog.

use std::fmt;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256, Sha512};
use subtle::ConstantTimeEq;

pub use crate::domain::SignatureError;
use crate::domain::{Error, ValidationError};

/// How old (or how far in the future) a signed timestamp may be, in seconds.
pub const TIMESTAMP_TOLERANCE_SECS: i64 = 300;
/// Most candidate signatures read from one header (key rotation).
const SIGNATURES_MAX: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HmacAlgorithm {
    Sha256,
    Sha512,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DigestEncoding {
    Hex,
    Base64,
}

/// How the configured secret text becomes the HMAC key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretEncoding {
    /// The text's UTF-8 bytes, verbatim.
    Utf8,
    Hex,
    Base64,
}

/// A generic HMAC scheme: one header holding the MAC of the body (or of
/// the URL followed by the body, as Square does).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HmacSpec {
    pub algorithm: HmacAlgorithm,
    /// The header's name, any case.
    pub header: String,
    pub encoding: DigestEncoding,
    /// Text before the digest in the header, such as `sha256=`.
    pub prefix: Option<String>,
    /// Sign the webhook's URL followed by the body.
    pub include_url: bool,
    pub secret_encoding: SecretEncoding,
}

/// How a provider signs its webhooks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignatureScheme {
    /// Unsigned: accepted only for providers the host explicitly allowed.
    None,
    /// `Stripe-Signature: t=..,v1=..`: HMAC-SHA256 over `t.body`, key = the
    /// secret's UTF-8 bytes; any `v1` may match.
    StripeV1,
    /// `webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<b64> ...`:
    /// HMAC-SHA256 over `id.timestamp.body`, key = base64 after `whsec_`.
    StandardWebhooksV1,
    Hmac(HmacSpec),
}

impl SignatureScheme {
    pub fn name(&self) -> &'static str {
        match self {
            SignatureScheme::None => "none",
            SignatureScheme::StripeV1 => "stripe-v1",
            SignatureScheme::StandardWebhooksV1 => "standard-webhooks-v1",
            SignatureScheme::Hmac(_) => "hmac",
        }
    }
}

/// A webhook secret. Its bytes never leave this module in any printable form.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(text: impl Into<String>) -> Self {
        Secret(text.into())
    }

    fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the secret has no text at all.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<&str> for Secret {
    fn from(text: &str) -> Self {
        Secret::new(text)
    }
}

impl From<String> for Secret {
    fn from(text: String) -> Self {
        Secret(text)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// Whether `secret` can verify deliveries signed under `scheme`: it
/// decodes as the scheme requires (base64 after `whsec_`, hex, ...) to a
/// key of at least one byte. An empty key is one anybody can sign with.
pub fn check_secret(scheme: &SignatureScheme, secret: &Secret) -> Result<(), SignatureError> {
    secret_key(scheme, secret).map(drop)
}

/// The HMAC key `secret` gives under `scheme`: the text's bytes (Stripe,
/// and `hmac` with a UTF-8 secret), or its decoding; refused as
/// [`check_secret`] says. The bytes stay in this crate.
pub(crate) fn secret_key(
    scheme: &SignatureScheme,
    secret: &Secret,
) -> Result<Vec<u8>, SignatureError> {
    let text = secret.expose();
    let key = match scheme {
        SignatureScheme::None | SignatureScheme::StripeV1 => text.as_bytes().to_vec(),
        SignatureScheme::StandardWebhooksV1 => BASE64
            .decode(text.strip_prefix("whsec_").unwrap_or(text))
            .map_err(|_| {
                SignatureError::BadSecret(
                    "a Standard Webhooks secret is whsec_ followed by base64".into(),
                )
            })?,
        SignatureScheme::Hmac(spec) => match spec.secret_encoding {
            SecretEncoding::Utf8 => text.as_bytes().to_vec(),
            SecretEncoding::Hex => crate::encoding::unhex(text)
                .ok_or_else(|| SignatureError::BadSecret("the secret is not hex".into()))?,
            SecretEncoding::Base64 => BASE64
                .decode(text)
                .map_err(|_| SignatureError::BadSecret("the secret is not base64".into()))?,
        },
    };
    if key.is_empty() && !matches!(scheme, SignatureScheme::None) {
        return Err(SignatureError::BadSecret("the secret is empty".into()));
    }
    Ok(key)
}

/// What a signature is checked against.
#[derive(Debug, Clone, Copy)]
pub struct SignedRequest<'a> {
    /// Header names in any case; values as received.
    pub headers: &'a [(String, String)],
    pub body: &'a [u8],
    pub url: Option<&'a str>,
}

impl SignedRequest<'_> {
    /// The one value of header `name` (case-insensitive).
    fn header(&self, name: &str) -> Result<&str, SignatureError> {
        let mut found = self
            .headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name));
        let first = found
            .next()
            .ok_or_else(|| SignatureError::MissingHeader(name.to_owned()))?;
        if found.next().is_some() {
            return Err(SignatureError::DuplicateHeader(name.to_owned()));
        }
        Ok(first.1.as_str())
    }
}

/// Verifies `request` under `scheme` with `secret`, at time `now` (unix seconds).
pub fn verify(
    scheme: &SignatureScheme,
    secret: &Secret,
    request: &SignedRequest<'_>,
    now: i64,
) -> Result<(), SignatureError> {
    match scheme {
        SignatureScheme::None => Ok(()),
        SignatureScheme::StripeV1 => verify_stripe(secret, request, now),
        SignatureScheme::StandardWebhooksV1 => verify_standard(secret, request, now),
        SignatureScheme::Hmac(spec) => verify_hmac(spec, secret, request),
    }
}

fn mac(algorithm: HmacAlgorithm, key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    // HMAC takes keys of any length, so construction cannot fail.
    match algorithm {
        HmacAlgorithm::Sha256 => {
            let mut m =
                <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
            parts.iter().for_each(|p| m.update(p));
            m.finalize().into_bytes().to_vec()
        }
        HmacAlgorithm::Sha512 => {
            let mut m =
                <Hmac<Sha512> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
            parts.iter().for_each(|p| m.update(p));
            m.finalize().into_bytes().to_vec()
        }
    }
}

/// Constant-time: every candidate is compared in full, whatever matched.
fn any_matches(expected: &[u8], candidates: &[Vec<u8>]) -> Result<(), SignatureError> {
    let mut matched = subtle::Choice::from(0u8);
    for c in candidates {
        matched |= expected.ct_eq(c);
    }
    if bool::from(matched) {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

fn check_time(timestamp: i64, now: i64) -> Result<(), SignatureError> {
    if now.abs_diff(timestamp) > TIMESTAMP_TOLERANCE_SECS.unsigned_abs() {
        return Err(SignatureError::TimestampOutOfTolerance {
            timestamp,
            now,
            tolerance_secs: TIMESTAMP_TOLERANCE_SECS,
        });
    }
    Ok(())
}

fn parse_timestamp(header: &str, text: &str) -> Result<i64, SignatureError> {
    let malformed = || SignatureError::Malformed {
        header: header.to_owned(),
        reason: "the timestamp is not whole unix seconds".into(),
    };
    if text.is_empty() || text.len() > 12 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(malformed());
    }
    text.parse().map_err(|_| malformed())
}

fn verify_stripe(
    secret: &Secret,
    request: &SignedRequest<'_>,
    now: i64,
) -> Result<(), SignatureError> {
    const HEADER: &str = "stripe-signature";
    let value = request.header(HEADER)?;
    let malformed = |reason: &str| SignatureError::Malformed {
        header: HEADER.to_owned(),
        reason: reason.to_owned(),
    };
    let mut timestamp = None;
    let mut candidates = Vec::new();
    // A v1 entry that is not hex matches nothing, but does not hide
    // another that matches (as any other wrong signature would not).
    let mut undecodable = false;
    for item in value.split(',') {
        let Some((k, v)) = item.trim().split_once('=') else {
            return Err(malformed("expected comma-separated key=value pairs"));
        };
        match k {
            "t" if timestamp.is_some() => return Err(malformed("more than one t=")),
            "t" => timestamp = Some(parse_timestamp(HEADER, v)?),
            // Only v1 counts: v0 and unknown schemes are ignored (no downgrade).
            "v1" if candidates.len() < SIGNATURES_MAX => match crate::encoding::unhex(v) {
                Some(bytes) => candidates.push(bytes),
                None => undecodable = true,
            },
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or_else(|| malformed("no t= timestamp"))?;
    if candidates.is_empty() {
        return Err(malformed(if undecodable {
            "no v1 signature is hex"
        } else {
            "no v1 signature"
        }));
    }
    let key = secret_key(&SignatureScheme::StripeV1, secret)?;
    check_time(timestamp, now)?;
    let t = timestamp.to_string();
    let expected = mac(
        HmacAlgorithm::Sha256,
        &key,
        &[t.as_bytes(), b".", request.body],
    );
    any_matches(&expected, &candidates)
}

fn verify_standard(
    secret: &Secret,
    request: &SignedRequest<'_>,
    now: i64,
) -> Result<(), SignatureError> {
    let id = request.header("webhook-id")?;
    let timestamp_text = request.header("webhook-timestamp")?;
    let signatures = request.header("webhook-signature")?;
    let timestamp = parse_timestamp("webhook-timestamp", timestamp_text)?;
    let key = secret_key(&SignatureScheme::StandardWebhooksV1, secret)?;
    let mut candidates = Vec::new();
    // Any v1 entry may match (key rotation): one that is not base64
    // matches nothing, and does not hide the others.
    let mut undecodable = false;
    for entry in signatures.split(' ').filter(|e| !e.is_empty()) {
        if candidates.len() == SIGNATURES_MAX {
            break;
        }
        // Unknown versions (v1a, v2, ...) are ignored, not errors.
        if let Some(sig) = entry.strip_prefix("v1,") {
            match BASE64.decode(sig) {
                Ok(bytes) => candidates.push(bytes),
                Err(_) => undecodable = true,
            }
        }
    }
    if candidates.is_empty() {
        return Err(SignatureError::Malformed {
            header: "webhook-signature".into(),
            reason: if undecodable {
                "no v1 signature is base64"
            } else {
                "no v1 signature"
            }
            .into(),
        });
    }
    check_time(timestamp, now)?;
    let expected = mac(
        HmacAlgorithm::Sha256,
        &key,
        &[
            id.as_bytes(),
            b".",
            timestamp_text.as_bytes(),
            b".",
            request.body,
        ],
    );
    any_matches(&expected, &candidates)
}

fn verify_hmac(
    spec: &HmacSpec,
    secret: &Secret,
    request: &SignedRequest<'_>,
) -> Result<(), SignatureError> {
    let value = request.header(&spec.header)?;
    let malformed = |reason: String| SignatureError::Malformed {
        header: spec.header.clone(),
        reason,
    };
    let digest_text = match &spec.prefix {
        Some(p) => value
            .strip_prefix(p.as_str())
            .ok_or_else(|| malformed(format!("does not start with {p:?}")))?,
        None => value,
    };
    let digest = match spec.encoding {
        DigestEncoding::Hex => {
            crate::encoding::unhex(digest_text.trim()).ok_or_else(|| malformed("not hex".into()))?
        }
        DigestEncoding::Base64 => BASE64
            .decode(digest_text.trim())
            .map_err(|_| malformed("not base64".into()))?,
    };
    let key = secret_key(&SignatureScheme::Hmac(spec.clone()), secret)?;
    let expected = if spec.include_url {
        let url = request.url.ok_or(SignatureError::MissingUrl)?;
        mac(spec.algorithm, &key, &[url.as_bytes(), request.body])
    } else {
        mac(spec.algorithm, &key, &[request.body])
    };
    any_matches(&expected, &[digest])
}

/// An HTTP request to a service built on walletlog, as `sign_request` signs it.
#[derive(Debug, Clone, Copy)]
pub struct HttpRequest<'a> {
    pub method: &'a str,
    /// The request target exactly as sent: the path and, if there is one,
    /// `?` and the query string (`/api/v1/wallets/w1/events?limit=10`). A
    /// signature covers the query, so a captured request cannot be
    /// replayed with another cursor or limit.
    pub target: &'a str,
    pub body: &'a [u8],
    /// Unix seconds, sent alongside the signature.
    pub timestamp: i64,
}

impl HttpRequest<'_> {
    /// `METHOD\nTARGET\nTIMESTAMP\nhex(sha256(body))`.
    fn signed_text(&self) -> String {
        format!(
            "{}\n{}\n{}\n{}",
            self.method.to_ascii_uppercase(),
            self.target,
            self.timestamp,
            crate::encoding::hex(&Sha256::digest(self.body))
        )
    }
}

/// A signing secret of at least one byte: an empty key is one anybody can
/// sign with.
fn check_request_secret(secret: &[u8]) -> Result<(), ValidationError> {
    if secret.is_empty() {
        return Err(ValidationError::new(
            "secret",
            "is empty: a request signed with an empty key proves nothing",
        ));
    }
    Ok(())
}

/// Unix seconds of the signer's own clock: not before 1970.
fn check_own_time(field: &'static str, seconds: i64) -> Result<(), ValidationError> {
    if seconds < 0 {
        return Err(ValidationError::new(
            field,
            format!("must be unix seconds, not {seconds}"),
        ));
    }
    Ok(())
}

/// Signs an HTTP request to a service built on walletlog (request signing
/// version 2): lowercase hex of
/// HMAC-SHA256(secret, `METHOD\nTARGET\nTIMESTAMP\nhex(sha256(body))`).
/// An empty secret or a negative timestamp is a validation error.
pub fn sign_request(secret: &[u8], request: &HttpRequest<'_>) -> Result<String, ValidationError> {
    check_request_secret(secret)?;
    check_own_time("timestamp", request.timestamp)?;
    let text = request.signed_text();
    Ok(crate::encoding::hex(&mac(
        HmacAlgorithm::Sha256,
        secret,
        &[text.as_bytes()],
    )))
}

/// Verifies a signature made by [`sign_request`], and that the request's
/// timestamp is within `tolerance_secs` of `now` (unix seconds). A
/// request that does not hold is [`Error::Signature`], a timestamp before
/// 1970 included (it is the sender's); the verifier's own mistakes, an
/// empty secret or a negative `now` or tolerance, are
/// [`Error::Validation`].
pub fn verify_request(
    secret: &[u8],
    request: &HttpRequest<'_>,
    signature: &str,
    now: i64,
    tolerance_secs: i64,
) -> Result<(), Error> {
    check_request_secret(secret)?;
    check_own_time("now", now)?;
    if tolerance_secs < 0 {
        return Err(ValidationError::new(
            "tolerance_secs",
            format!("must be a number of seconds, not {tolerance_secs}"),
        )
        .into());
    }
    if request.timestamp < 0 {
        return Err(SignatureError::Malformed {
            header: "timestamp".into(),
            reason: format!("{} is before 1970", request.timestamp),
        }
        .into());
    }
    if now.abs_diff(request.timestamp) > tolerance_secs.unsigned_abs() {
        return Err(SignatureError::TimestampOutOfTolerance {
            timestamp: request.timestamp,
            now,
            tolerance_secs,
        }
        .into());
    }
    let given = crate::encoding::unhex(signature).ok_or_else(|| SignatureError::Malformed {
        header: "signature".into(),
        reason: "not hex".into(),
    })?;
    let text = request.signed_text();
    Ok(any_matches(
        &mac(HmacAlgorithm::Sha256, secret, &[text.as_bytes()]),
        &[given],
    )?)
}
