//! Value types that can only be built valid ("parse, don't validate").
//!
//! Each constructor checks one field's rules and names the field in its
//! [`ValidationError`]; everything past the constructors takes these types.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};
use rust_decimal::Decimal;
use serde::de::IgnoredAny;

use super::error::ValidationError;
use crate::encoding::quoted;
use crate::limits::{
    AMOUNT_FRACTION_DIGITS_MAX, AMOUNT_SIGNIFICANT_DIGITS_MAX, KEY_CHARS_MAX, METADATA_BYTES_MAX,
    METADATA_DEPTH_MAX, PROVIDER_CHARS_MAX, WALLET_ID_CHARS_MAX,
};

fn check_text(field: &'static str, value: &str, chars_max: usize) -> Result<(), ValidationError> {
    if value.is_empty() {
        return Err(ValidationError::new(field, "must not be empty"));
    }
    let chars = value.chars().count();
    if chars > chars_max {
        return Err(ValidationError::new(
            field,
            format!("is {chars} characters long; at most {chars_max} allowed"),
        ));
    }
    if let Some(c) = value.chars().find(|c| c.is_control()) {
        return Err(ValidationError::new(
            field,
            format!("contains the control character U+{:04X}", c as u32),
        ));
    }
    Ok(())
}

macro_rules! text_value {
    ($(#[$doc:meta])* $name:ident, $field:literal, $max:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            /// Checks the rules and names the field on a breach.
            pub fn new(value: impl Into<String>) -> Result<Self, ValidationError> {
                let value = value.into();
                check_text($field, &value, $max)?;
                Ok($name(value))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

text_value!(
    /// A wallet's id: 1..=128 characters, no control characters.
    WalletId,
    "wallet_id",
    WALLET_ID_CHARS_MAX
);
text_value!(
    /// The provider's own id for the event: 1..=255 characters, unique per provider.
    ProviderEventId,
    "provider_event_id",
    KEY_CHARS_MAX
);
text_value!(
    /// The caller's idempotency key: 1..=255 characters, unique in the ledger.
    IdempotencyKey,
    "idempotency_key",
    KEY_CHARS_MAX
);

/// A provider slug: `[a-z0-9][a-z0-9_.-]{0,63}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Provider(String);

impl Provider {
    pub fn new(value: impl Into<String>) -> Result<Self, ValidationError> {
        let value = value.into();
        let bytes = value.as_bytes();
        let Some(first) = bytes.first() else {
            return Err(ValidationError::new("provider", "must not be empty"));
        };
        if bytes.len() > PROVIDER_CHARS_MAX {
            return Err(ValidationError::new(
                "provider",
                format!(
                    "is {} characters long; at most {PROVIDER_CHARS_MAX} allowed",
                    value.chars().count()
                ),
            ));
        }
        let head_ok = first.is_ascii_lowercase() || first.is_ascii_digit();
        let tail_ok = bytes[1..]
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_.-".contains(b));
        if !head_ok || !tail_ok {
            return Err(ValidationError::new(
                "provider",
                format!(
                    "{} is not a slug matching [a-z0-9][a-z0-9_.-]{{0,63}}",
                    quoted(&value)
                ),
            ));
        }
        Ok(Provider(value))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A currency code: `[A-Z0-9]{2,12}` (ISO 4217, or a token ticker such as USDC).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Currency(String);

impl Currency {
    pub fn new(value: impl Into<String>) -> Result<Self, ValidationError> {
        let value = value.into();
        let ok = (2..=12).contains(&value.len())
            && value
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
        if !ok {
            return Err(ValidationError::new(
                "currency",
                format!("{} is not a code matching [A-Z0-9]{{2,12}}", quoted(&value)),
            ));
        }
        Ok(Currency(value))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An event's id: a UUID, given by the caller or generated (v7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EventId(uuid::Uuid);

impl EventId {
    /// A new time-ordered (v7) id.
    pub fn generate() -> Self {
        EventId(uuid::Uuid::now_v7())
    }

    pub fn from_bytes(bytes: [u8; 16]) -> Self {
        EventId(uuid::Uuid::from_bytes(bytes))
    }

    /// Parses the hyphenated, simple or URN text form.
    pub fn parse(text: &str) -> Result<Self, ValidationError> {
        uuid::Uuid::parse_str(text).map(EventId).map_err(|e| {
            ValidationError::new("event_id", format!("{} is not a UUID: {e}", quoted(text)))
        })
    }

    pub fn as_uuid(&self) -> &uuid::Uuid {
        &self.0
    }

    pub fn as_bytes(&self) -> &[u8; 16] {
        self.0.as_bytes()
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

/// What happened to the money; see `docs/events.md` for what each type
/// does to `available` and `held`.
///
/// The discriminant is the code storage and fingerprints keep: the one
/// source of truth for it. Never renumber.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum EventType {
    Deposit = 0,
    Withdrawal = 1,
    TransferIn = 2,
    TransferOut = 3,
    Fee = 4,
    Refund = 5,
    Hold = 6,
    Release = 7,
}

impl EventType {
    pub const ALL: [EventType; 8] = [
        EventType::Deposit,
        EventType::Withdrawal,
        EventType::TransferIn,
        EventType::TransferOut,
        EventType::Fee,
        EventType::Refund,
        EventType::Hold,
        EventType::Release,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Deposit => "deposit",
            EventType::Withdrawal => "withdrawal",
            EventType::TransferIn => "transfer_in",
            EventType::TransferOut => "transfer_out",
            EventType::Fee => "fee",
            EventType::Refund => "refund",
            EventType::Hold => "hold",
            EventType::Release => "release",
        }
    }

    /// The stored code: the enum's discriminant.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The type whose [`code`](Self::code) is `code`.
    pub fn from_code(code: u8) -> Option<Self> {
        EventType::ALL.into_iter().find(|t| t.code() == code)
    }

    pub fn parse(text: &str) -> Result<Self, ValidationError> {
        EventType::ALL
            .into_iter()
            .find(|t| t.as_str() == text)
            .ok_or_else(|| {
                let names: Vec<&str> = EventType::ALL.iter().map(|t| t.as_str()).collect();
                ValidationError::new(
                    "event_type",
                    format!("{} is not one of {}", quoted(text), names.join(", ")),
                )
            })
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EventType {
    type Err = ValidationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EventType::parse(s)
    }
}

/// An exact, positive decimal amount: > 0, at most 18 fractional and 28
/// significant digits. Stored normalized, so `12.30` and `12.3` are equal.
///
/// There is deliberately no conversion from a float.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Amount(Decimal);

impl Amount {
    /// Parses a plain decimal string: digits, optionally a point and more
    /// digits. No sign, exponent, spaces, `NaN` or `inf`.
    pub fn parse(text: &str) -> Result<Self, ValidationError> {
        let err = |reason: String| ValidationError::new("amount", reason);
        let (int, frac) = match text.split_once('.') {
            Some((i, f)) => (i, Some(f)),
            None => (text, None),
        };
        let digits_only = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if let Some(rest) = text.strip_prefix('-') {
            if !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
                return Err(err(format!(
                    "{} must be greater than 0: amounts carry no sign, the event type gives \
                     the direction (a withdrawal, transfer_out or fee takes money out)",
                    quoted(text)
                )));
            }
        }
        if !digits_only(int) || !frac.is_none_or(digits_only) {
            return Err(err(format!(
                "{} is not a plain decimal number such as \"12.34\" (digits and at most one \
                 point; no sign, exponent or spaces)",
                quoted(text)
            )));
        }
        let int = int.trim_start_matches('0');
        let frac = frac.unwrap_or("").trim_end_matches('0');
        Self::from_digits(int, frac)
    }

    /// `int` has no leading zeros, `frac` no trailing zeros.
    fn from_digits(int: &str, frac: &str) -> Result<Self, ValidationError> {
        let err = |reason: String| ValidationError::new("amount", reason);
        let frac_len = frac.len() as u32;
        if frac_len > AMOUNT_FRACTION_DIGITS_MAX {
            return Err(err(format!(
                "has {frac_len} fractional digits; at most {AMOUNT_FRACTION_DIGITS_MAX} allowed"
            )));
        }
        let significant = if int.is_empty() {
            frac.trim_start_matches('0').len()
        } else {
            int.len() + frac.len()
        } as u32;
        if significant == 0 {
            return Err(err("must be greater than 0".into()));
        }
        if significant > AMOUNT_SIGNIFICANT_DIGITS_MAX {
            return Err(err(format!(
                "has {significant} significant digits; \
                 at most {AMOUNT_SIGNIFICANT_DIGITS_MAX} allowed"
            )));
        }
        // At most 28 digits, so the mantissa is below 10^28 < 2^96 and fits a Decimal.
        let mantissa: i128 = format!("{int}{frac}")
            .parse()
            .map_err(|_| err("is not a number".into()))?;
        Ok(Amount(Decimal::from_i128_with_scale(mantissa, frac_len)))
    }

    /// Checks a `Decimal`'s value against the rules.
    pub fn from_decimal(value: Decimal) -> Result<Self, ValidationError> {
        if value.is_sign_negative() || value.is_zero() {
            return Err(ValidationError::new(
                "amount",
                format!("{value} must be greater than 0"),
            ));
        }
        let text = value.normalize().to_string();
        Self::parse(&text)
    }

    /// A whole amount of currency units.
    pub fn from_units(units: u64) -> Result<Self, ValidationError> {
        Self::from_decimal(Decimal::from(units))
    }

    pub fn as_decimal(&self) -> Decimal {
        self.0
    }

    /// The mantissa and scale: the value is `mantissa / 10^scale`.
    pub fn mantissa_scale(&self) -> (u128, u32) {
        (self.0.mantissa().unsigned_abs(), self.0.scale())
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for Amount {
    type Err = ValidationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Amount::parse(s)
    }
}

/// A UTC instant with microsecond precision, years 0001 to 9999.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Timestamp(i64);

/// 0001-01-01T00:00:00Z in microseconds since the Unix epoch.
const TIMESTAMP_MICROS_MIN: i64 = -62_135_596_800_000_000;
/// 9999-12-31T23:59:59.999999Z in microseconds since the Unix epoch.
const TIMESTAMP_MICROS_MAX: i64 = 253_402_300_799_999_999;

impl Timestamp {
    /// From microseconds since the Unix epoch.
    pub fn from_micros(field: &'static str, micros: i64) -> Result<Self, ValidationError> {
        if !(TIMESTAMP_MICROS_MIN..=TIMESTAMP_MICROS_MAX).contains(&micros) {
            return Err(ValidationError::new(
                field,
                "is outside the years 0001 to 9999",
            ));
        }
        Ok(Timestamp(micros))
    }

    /// From a chrono time; nanoseconds below the microsecond are truncated.
    pub fn from_datetime(field: &'static str, at: DateTime<Utc>) -> Result<Self, ValidationError> {
        Self::from_micros(field, at.timestamp_micros())
    }

    /// Parses RFC 3339 with any offset (`2026-01-02T03:04:05.123+01:00`) into UTC.
    pub fn parse_rfc3339(field: &'static str, text: &str) -> Result<Self, ValidationError> {
        let at = DateTime::parse_from_rfc3339(text).map_err(|e| {
            let naive = chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f")
                .or_else(|_| chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f"))
                .is_ok();
            let reason = if naive {
                format!(
                    "{} has no time zone: add \"Z\" for UTC or an offset such as \"+01:00\"",
                    quoted(text)
                )
            } else {
                format!(
                    "{} is not an RFC 3339 timestamp such as \"2026-01-02T03:04:05Z\" ({e})",
                    quoted(text)
                )
            };
            ValidationError::new(field, reason)
        })?;
        Self::from_datetime(field, at.with_timezone(&Utc))
    }

    /// The current time.
    pub fn now() -> Self {
        // Utc::now() is always within years 0001..9999.
        Timestamp(Utc::now().timestamp_micros())
    }

    pub fn as_micros(&self) -> i64 {
        self.0
    }

    pub fn to_datetime(&self) -> DateTime<Utc> {
        // The constructor keeps the value in chrono's range.
        Utc.timestamp_micros(self.0)
            .single()
            .unwrap_or(DateTime::<Utc>::MIN_UTC)
    }

    pub(crate) fn from_micros_unchecked(micros: i64) -> Self {
        Timestamp(micros)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            &self
                .to_datetime()
                .to_rfc3339_opts(SecondsFormat::AutoSi, true),
        )
    }
}

/// How deep `value` nests arrays and objects (an object of scalars is 1),
/// walked without recursion.
fn nesting(value: &serde_json::Value) -> usize {
    let mut deepest = 0;
    let mut pending = vec![(value, 1)];
    while let Some((v, depth)) = pending.pop() {
        let children: Box<dyn Iterator<Item = &serde_json::Value>> = match v {
            serde_json::Value::Array(items) => Box::new(items.iter()),
            serde_json::Value::Object(map) => Box::new(map.values()),
            _ => continue,
        };
        deepest = deepest.max(depth);
        pending.extend(children.map(|c| (c, depth + 1)));
    }
    deepest
}

/// Whether `text` is the canonical text of an object whose values are all
/// strings, within [`METADATA_BYTES_MAX`]: no whitespace, no escapes (so no
/// control characters, quotes or backslashes in its strings), and keys in
/// strictly ascending byte order (so none twice), which is serde_json's
/// order for a `Map` and how it prints one. Such text parses and prints
/// back to itself; any other text, canonical or not, is left to the parse.
fn is_canonical_of_strings(text: &str) -> bool {
    /// The plain string at `*at`, stepping past it.
    fn plain<'t>(b: &'t [u8], at: &mut usize) -> Option<&'t [u8]> {
        if b.get(*at) != Some(&b'"') {
            return None;
        }
        let start = *at + 1;
        let len = b[start..]
            .iter()
            .position(|&c| c == b'"' || c == b'\\' || c < 0x20)?;
        if b[start + len] != b'"' {
            return None;
        }
        *at = start + len + 1;
        Some(&b[start..start + len])
    }
    let b = text.as_bytes();
    if b.len() > METADATA_BYTES_MAX || b.first() != Some(&b'{') || b.last() != Some(&b'}') {
        return false;
    }
    if b.len() == 2 {
        return true;
    }
    let (mut at, mut previous) = (1, None);
    loop {
        let Some(key) = plain(b, &mut at) else {
            return false;
        };
        if previous.is_some_and(|p: &[u8]| p >= key) || b.get(at) != Some(&b':') {
            return false;
        }
        previous = Some(key);
        at += 1;
        if plain(b, &mut at).is_none() {
            return false;
        }
        match b.get(at) {
            Some(b',') => at += 1,
            Some(b'}') => return at == b.len() - 1,
            _ => return false,
        }
    }
}

/// A JSON object, kept as its canonical compact text (keys sorted), at most 16 KiB.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Metadata(String);

impl Metadata {
    /// `{}`.
    pub fn empty() -> Self {
        Metadata("{}".to_owned())
    }

    /// Parses JSON text that must hold an object.
    pub fn from_json(text: &str) -> Result<Self, ValidationError> {
        // What a plugin usually gives (the SDK writes metadata canonically)
        // needs no parse: the text is what the parse would print.
        if is_canonical_of_strings(text) {
            return Ok(Metadata(text.to_owned()));
        }
        Self::parsed(text)
    }

    /// [`from_json`](Self::from_json) by the full parse.
    fn parsed(text: &str) -> Result<Self, ValidationError> {
        if text.len() > 4 * METADATA_BYTES_MAX {
            return Err(Self::too_big(text.len()));
        }
        let value = crate::encoding::strict_json(text.as_bytes())
            .map_err(|e| ValidationError::new("metadata", crate::encoding::json_refusal(&e)))?;
        match value {
            serde_json::Value::Object(map) => Self::from_map(map),
            _ => Err(ValidationError::new("metadata", "must be a JSON object")),
        }
    }

    /// From an already parsed object.
    fn from_map(map: serde_json::Map<String, serde_json::Value>) -> Result<Self, ValidationError> {
        let object = serde_json::Value::Object(map);
        let depth = nesting(&object);
        if depth > METADATA_DEPTH_MAX {
            return Err(ValidationError::new(
                "metadata",
                format!("is nested {depth} levels deep; at most {METADATA_DEPTH_MAX} allowed"),
            ));
        }
        // serde_json's Map is ordered by key, so this text is canonical.
        let text = object.to_string();
        if text.len() > METADATA_BYTES_MAX {
            return Err(Self::too_big(text.len()));
        }
        Ok(Metadata(text))
    }

    fn too_big(len: usize) -> ValidationError {
        ValidationError::new(
            "metadata",
            format!("is {len} bytes serialized; at most {METADATA_BYTES_MAX} allowed"),
        )
    }

    /// The canonical JSON text.
    pub fn as_json(&self) -> &str {
        &self.0
    }

    /// Metadata read back from storage: checked to be one JSON object
    /// within the size limit, so a damaged row is reported instead of
    /// trusted. The check reads the text without building it (a page reads
    /// many rows); a value that is valid JSON but cannot be held (a number
    /// beyond `f64`) can only come from tampering, which `verify_audit`
    /// reports through the event's fingerprint.
    pub fn from_stored(text: String) -> Result<Self, ValidationError> {
        if text.len() > METADATA_BYTES_MAX {
            return Err(Self::too_big(text.len()));
        }
        let object = text == "{}"
            || (text.starts_with('{') && serde_json::from_str::<IgnoredAny>(&text).is_ok());
        if !object {
            return Err(ValidationError::new("metadata", "is not a JSON object"));
        }
        Ok(Metadata(text))
    }
}

impl Default for Metadata {
    fn default() -> Self {
        Metadata::empty()
    }
}

/// Which of an event's three keys matched a stored event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MatchedKey {
    EventId,
    ProviderEventId,
    IdempotencyKey,
}

impl MatchedKey {
    pub fn as_str(self) -> &'static str {
        match self {
            MatchedKey::EventId => "event_id",
            MatchedKey::ProviderEventId => "provider_event_id",
            MatchedKey::IdempotencyKey => "idempotency_key",
        }
    }

    pub fn code(self) -> u8 {
        match self {
            MatchedKey::EventId => 1,
            MatchedKey::ProviderEventId => 2,
            MatchedKey::IdempotencyKey => 3,
        }
    }

    pub fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(MatchedKey::EventId),
            2 => Some(MatchedKey::ProviderEventId),
            3 => Some(MatchedKey::IdempotencyKey),
            _ => None,
        }
    }
}

impl fmt::Display for MatchedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shortcut gives what the parse gives, for text it takes and text
    /// it leaves: canonical objects of strings, and each near miss.
    #[test]
    fn metadata_taken_without_a_parse_is_what_the_parse_gives() {
        let mut texts: Vec<String> = [
            "{}",
            r#"{"a":"x"}"#,
            r#"{"a":"x","b":"y"}"#,
            r#"{"a":"","b":""}"#,
            r#"{"":"x"}"#,
            r#"{"stripe_event":"evt_1","stripe_object":"ch_1","stripe_type":"charge.succeeded"}"#,
            "{\"z\":\"\u{7f}\",\"\u{e9}\":\"\u{fc}\"}",
            "{\"A\":\"x\",\"a\":\"x\",\"\u{e9}\":\"x\"}",
            r#"{"a b":"c d"}"#,
            "{\"\u{2028}\":\"\u{2029}\"}",
            // Each of these is not canonical, not all strings, or not JSON.
            r#"{"b":"y","a":"x"}"#,
            "{\"\u{e9}\":\"x\",\"z\":\"x\"}",
            r#"{"a":"x","a":"y"}"#,
            r#"{"a":"x","a":"x"}"#,
            r#"{ "a":"x"}"#,
            r#"{"a": "x"}"#,
            r#"{"a":"x" }"#,
            r#"{"a":"x",}"#,
            r#"{,"a":"x"}"#,
            r#"{"a":"x"}}"#,
            r#"{"a":"x"}{"b":"y"}"#,
            r#"{"a":"x\""}"#,
            r#"{"a":"x\u0041"}"#,
            r#"{"a":"\/"}"#,
            r#"{"\u0061":"x"}"#,
            r#"{"a\"b":"x"}"#,
            "{\"a\":\"x\u{1f}\"}",
            "{\"a\":\"x\ty\"}",
            r#"{"a":1}"#,
            r#"{"a":{"b":"c"}}"#,
            r#"{"a":["x"]}"#,
            r#"{"a":null}"#,
            r#"{"a"}"#,
            r#"{"a":}"#,
            r#"{"a":"x""#,
            r#"{"a:"x"}"#,
            r#"{""#,
            "{",
            "}",
            "[]",
            r#""{}""#,
            "",
        ]
        .into_iter()
        .map(str::to_owned)
        .collect();
        // `{"k":"…"}` is 8 bytes around its value.
        let at_limit = format!(r#"{{"k":"{}"}}"#, "v".repeat(METADATA_BYTES_MAX - 8));
        assert_eq!(at_limit.len(), METADATA_BYTES_MAX);
        let over = format!(r#"{{"k":"{}"}}"#, "v".repeat(METADATA_BYTES_MAX - 7));
        texts.extend([at_limit.clone(), over.clone()]);
        for text in &texts {
            assert_eq!(
                Metadata::from_json(text),
                Metadata::parsed(text),
                "{:?}",
                &text[..text.len().min(80)]
            );
        }
        let taken: Vec<_> = texts
            .iter()
            .filter(|t| is_canonical_of_strings(t))
            .collect();
        assert_eq!(taken.len(), 11, "{:?}", &taken[..10.min(taken.len())]);
        assert!(taken.contains(&&at_limit) && !taken.contains(&&over));
        assert!(Metadata::from_json(&over).is_err());
    }
}
