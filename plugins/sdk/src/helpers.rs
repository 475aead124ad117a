//! What every provider needs: minor units to exact decimals, timestamps to
//! UTC RFC 3339, JSON field access with clear errors.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::Value;

use crate::Error;

/// The ISO 4217 minor-unit exponent of `currency`: 2 for most, 0 for JPY,
/// KRW, ..., 3 for BHD, KWD, ..., 4 for CLF and UYW.
pub fn minor_unit_exponent(currency: &str) -> u32 {
    match currency.to_ascii_uppercase().as_str() {
        "BIF" | "CLP" | "DJF" | "GNF" | "ISK" | "JPY" | "KMF" | "KRW" | "PYG" | "RWF" | "UGX"
        | "UYI" | "VND" | "VUV" | "XAF" | "XOF" | "XPF" => 0,
        "BHD" | "IQD" | "JOD" | "KWD" | "LYD" | "OMR" | "TND" => 3,
        "CLF" | "UYW" => 4,
        _ => 2,
    }
}

/// `minor` units of `currency` as an exact decimal string: `(1234, "USD")`
/// is `"12.34"`, `(500, "JPY")` is `"500"`, `(1500, "KWD")` is `"1.5"`.
/// Negative amounts are refused: direction comes from the event type.
pub fn minor_to_decimal(minor: i64, currency: &str) -> Result<String, Error> {
    if minor < 0 {
        return Err(Error::Malformed(format!("amount {minor} is negative")));
    }
    Ok(scale_down(minor as u128, minor_unit_exponent(currency)))
}

/// `value / 10^exponent` as a plain decimal string without trailing zeros.
pub fn scale_down(value: u128, exponent: u32) -> String {
    let digits = format!("{value:0>width$}", width = exponent as usize + 1);
    let (int, frac) = digits.split_at(digits.len() - exponent as usize);
    let frac = frac.trim_end_matches('0');
    if frac.is_empty() {
        int.to_owned()
    } else {
        format!("{int}.{frac}")
    }
}

/// Unix seconds as RFC 3339 in UTC: `0` is `1970-01-01T00:00:00Z`.
pub fn unix_to_rfc3339(secs: i64) -> Result<String, Error> {
    DateTime::<Utc>::from_timestamp(secs, 0)
        .map(|t| t.to_rfc3339_opts(SecondsFormat::AutoSi, true))
        .ok_or_else(|| Error::Malformed(format!("timestamp {secs} is out of range")))
}

/// RFC 3339 with any offset, as RFC 3339 in UTC:
/// `2026-01-02T04:00:00+01:00` is `2026-01-02T03:00:00Z`.
pub fn to_utc_rfc3339(text: &str) -> Result<String, Error> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| {
            t.with_timezone(&Utc)
                .to_rfc3339_opts(SecondsFormat::AutoSi, true)
        })
        .map_err(|e| Error::Malformed(format!("{text:?} is not an RFC 3339 timestamp: {e}")))
}

/// The value at JSON pointer `pointer` (RFC 6901), as
/// [`Value::pointer`] finds it, but without allocating a string per token
/// (only a token holding `~0` or `~1` is unescaped into a new one): a
/// plugin runs once per webhook, in a fresh sandbox, and looks up a dozen
/// fields.
pub fn lookup<'v>(value: &'v Value, pointer: &str) -> Option<&'v Value> {
    if pointer.is_empty() {
        return Some(value);
    }
    pointer
        .strip_prefix('/')?
        .split('/')
        .try_fold(value, |target, token| {
            let unescaped;
            let token = if token.contains('~') {
                unescaped = token.replace("~1", "/").replace("~0", "~");
                unescaped.as_str()
            } else {
                token
            };
            match target {
                Value::Object(map) => map.get(token),
                Value::Array(list) => array_index(token).and_then(|i| list.get(i)),
                _ => None,
            }
        })
}

/// An array index token as RFC 6901 writes it: digits, no sign, no
/// leading zero.
fn array_index(token: &str) -> Option<usize> {
    if token.starts_with('+') || (token.starts_with('0') && token.len() > 1) {
        return None;
    }
    token.parse().ok()
}

fn field<'v>(value: &'v Value, pointer: &str) -> Result<&'v Value, Error> {
    lookup(value, pointer)
        .filter(|v| !v.is_null())
        .ok_or_else(|| Error::Malformed(format!("{pointer} is missing")))
}

/// The string at JSON pointer `pointer` (`/data/object/id`).
pub fn str_field<'v>(value: &'v Value, pointer: &str) -> Result<&'v str, Error> {
    field(value, pointer)?
        .as_str()
        .ok_or_else(|| Error::Malformed(format!("{pointer} is not a string")))
}

/// The integer at `pointer`; an integer-valued string such as `"5000"` is
/// accepted too (some providers send both).
pub fn int_field(value: &Value, pointer: &str) -> Result<i64, Error> {
    let v = field(value, pointer)?;
    v.as_i64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        .ok_or_else(|| Error::Malformed(format!("{pointer} is not an integer")))
}

/// The string at `pointer`, or `None` when absent or null.
pub fn opt_str<'v>(value: &'v Value, pointer: &str) -> Option<&'v str> {
    lookup(value, pointer).and_then(Value::as_str)
}

/// A JSON object's text from pairs, skipping `None` values: compact, keys
/// sorted, a key given twice taking its last value (the canonical text
/// walletlog stores). Written directly, not through a `Map`: this runs for
/// every event a plugin returns.
pub fn metadata(pairs: &[(&str, Option<&str>)]) -> String {
    let mut present: Vec<(&str, &str)> = pairs
        .iter()
        .filter_map(|(k, v)| v.map(|v| (*k, v)))
        .collect();
    present.sort_by(|a, b| a.0.cmp(b.0));
    // `dedup_by` keeps the first of equal neighbours; the last value wins.
    present.dedup_by(|later, kept| {
        let same = later.0 == kept.0;
        if same {
            kept.1 = later.1;
        }
        same
    });
    let mut out = Vec::with_capacity(
        2 + present
            .iter()
            .map(|(k, v)| k.len() + v.len() + 6)
            .sum::<usize>(),
    );
    out.push(b'{');
    for (i, (k, v)) in present.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        // Writing a string into a Vec cannot fail.
        serde_json::to_writer(&mut out, k).expect("a string serializes");
        out.push(b':');
        serde_json::to_writer(&mut out, v).expect("a string serializes");
    }
    out.push(b'}');
    String::from_utf8(out).expect("serde_json writes UTF-8")
}

/// Most characters of untrusted text an error message shows.
pub const QUOTED_CHARS_MAX: usize = 40;

/// Untrusted text as a message quotes it (a field of the body, a key): its
/// first [`QUOTED_CHARS_MAX`] characters, quoted and escaped (control
/// characters and quotes cannot break the message), with `...` when there
/// was more. The walletlog host quotes its input by the same rule.
pub fn quoted(text: &str) -> String {
    let mut chars = text.chars();
    let head: String = chars.by_ref().take(QUOTED_CHARS_MAX).collect();
    if chars.next().is_some() {
        format!("{head:?}...")
    } else {
        format!("{head:?}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_is_the_canonical_text_of_its_pairs() {
        let as_map = |pairs: &[(&str, Option<&str>)]| {
            let map: serde_json::Map<String, Value> = pairs
                .iter()
                .filter_map(|(k, v)| v.map(|v| ((*k).to_owned(), Value::String(v.to_owned()))))
                .collect();
            Value::Object(map).to_string()
        };
        let cases: &[&[(&str, Option<&str>)]] = &[
            &[],
            &[("a", None)],
            &[("z", Some("1")), ("a", Some("2")), ("m", None)],
            &[("k", Some("first")), ("j", Some("x")), ("k", Some("last"))],
            &[
                ("q\"uote", Some("line\nbreak\u{1}\\")),
                ("\u{e9}", Some("\u{1f600}")),
            ],
            &[
                ("B", Some("upper")),
                ("a", Some("lower")),
                ("", Some("empty")),
            ],
        ];
        for pairs in cases {
            assert_eq!(metadata(pairs), as_map(pairs), "{pairs:?}");
        }
        assert_eq!(
            metadata(&[
                ("stripe_type", Some("charge.succeeded")),
                ("stripe_event", Some("evt_1"))
            ]),
            r#"{"stripe_event":"evt_1","stripe_type":"charge.succeeded"}"#
        );
    }

    #[test]
    fn minor_units_follow_iso_4217() {
        assert_eq!(minor_to_decimal(1234, "USD").unwrap(), "12.34");
        assert_eq!(minor_to_decimal(1200, "usd").unwrap(), "12");
        assert_eq!(minor_to_decimal(5, "EUR").unwrap(), "0.05");
        assert_eq!(minor_to_decimal(500, "JPY").unwrap(), "500");
        assert_eq!(minor_to_decimal(1500, "KWD").unwrap(), "1.5");
        assert_eq!(minor_to_decimal(1, "BHD").unwrap(), "0.001");
        assert_eq!(minor_to_decimal(12345, "CLF").unwrap(), "1.2345");
        assert_eq!(minor_to_decimal(0, "USD").unwrap(), "0");
        assert!(minor_to_decimal(-1, "USD").is_err());
        assert_eq!(scale_down(1, 18), "0.000000000000000001");
    }

    #[test]
    fn timestamps_become_utc() {
        assert_eq!(unix_to_rfc3339(0).unwrap(), "1970-01-01T00:00:00Z");
        assert_eq!(
            unix_to_rfc3339(1_533_204_620).unwrap(),
            "2018-08-02T10:10:20Z"
        );
        assert_eq!(
            to_utc_rfc3339("2026-01-02T04:00:00+01:00").unwrap(),
            "2026-01-02T03:00:00Z"
        );
        assert_eq!(
            to_utc_rfc3339("2026-01-02T04:00:00.123-02:30").unwrap(),
            "2026-01-02T06:30:00.123Z"
        );
        assert!(to_utc_rfc3339("yesterday").is_err());
    }

    #[test]
    fn lookups_find_what_json_pointers_find() {
        let v: Value = serde_json::from_str(
            r#"{"a":{"b":[10,{"c":"x"}],"d/e":1,"f~g":2,"":3,"01":4},"z":null}"#,
        )
        .unwrap();
        for pointer in [
            "",
            "/a",
            "/a/b",
            "/a/b/0",
            "/a/b/1/c",
            "/a/b/2",
            "/a/b/01",
            "/a/b/+1",
            "/a/b/-",
            "/a/d~1e",
            "/a/f~0g",
            "/a/",
            "/a/01",
            "/z",
            "/z/q",
            "/q",
            "a",
            "/a/b/1/c/d",
        ] {
            assert_eq!(lookup(&v, pointer), v.pointer(pointer), "{pointer:?}");
        }
    }

    #[test]
    fn fields_say_what_is_missing() {
        let v: Value = serde_json::from_str(r#"{"a":{"b":"x","n":5,"s":"7","z":null}}"#).unwrap();
        assert_eq!(str_field(&v, "/a/b").unwrap(), "x");
        assert_eq!(int_field(&v, "/a/n").unwrap(), 5);
        assert_eq!(int_field(&v, "/a/s").unwrap(), 7);
        assert_eq!(
            str_field(&v, "/a/q"),
            Err(Error::Malformed("/a/q is missing".into()))
        );
        assert_eq!(
            str_field(&v, "/a/z"),
            Err(Error::Malformed("/a/z is missing".into()))
        );
        assert_eq!(
            str_field(&v, "/a/n"),
            Err(Error::Malformed("/a/n is not a string".into()))
        );
        assert_eq!(
            metadata(&[("k", Some("v")), ("gone", None)]),
            r#"{"k":"v"}"#
        );
    }
}
