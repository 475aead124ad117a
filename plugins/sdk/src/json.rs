//! Strict JSON: every object names each key once, at every depth.
//!
//! `{"amount": 1, "amount": 100000}` is refused, not read as its last
//! value (what `serde_json` alone does): two readers of one document (a
//! gateway or a provider's own tooling that takes the first value, a
//! normalizer that would take the last) must never see two different
//! movements of money. [`Request::json`](crate::Request::json) parses a
//! webhook's body this way, and the walletlog host parses its own JSON
//! input with the same function, so the rule exists once.

use serde::de::{Deserialize, Deserializer, Error as _, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use std::cell::RefCell;

/// Why [`parse`] refused a document.
#[derive(Debug)]
pub struct Refusal {
    /// `serde_json`'s error: a syntax error, or (category `Data`) a key
    /// given twice, with its line and column.
    pub error: serde_json::Error,
    /// The object keys from the root to where the refusal happened (array
    /// positions left out): `["metadata", "a"]` for
    /// `{"metadata": {"a": 1, "a": 2}}`. Empty at the top level.
    pub keys: Vec<String>,
}

impl Refusal {
    /// Whether the text is JSON and only a repeated key refused it.
    pub fn is_repeated_key(&self) -> bool {
        self.error.classify() == serde_json::error::Category::Data
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.error.fmt(f)?;
        if !self.keys.is_empty() {
            write!(f, " (at {})", self.keys.join("."))?;
        }
        Ok(())
    }
}

thread_local! {
    /// The object keys, innermost first, around where a parse failed.
    static FAILED_AT: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

/// Parses `bytes` as JSON whose objects name each key once. Numbers are
/// kept as `serde_json` keeps them.
pub fn parse(bytes: &[u8]) -> Result<Value, Refusal> {
    FAILED_AT.with(|k| k.borrow_mut().clear());
    serde_json::from_slice::<Strict>(bytes)
        .map(|s| s.0)
        .map_err(|error| {
            let mut keys = FAILED_AT.with(|k| std::mem::take(&mut *k.borrow_mut()));
            keys.reverse();
            Refusal { error, keys }
        })
}

fn failed_at(key: &str) {
    FAILED_AT.with(|k| k.borrow_mut().push(key.to_owned()));
}

/// At most this many characters of a repeated key are quoted.
const KEY_CHARS_MAX: usize = 40;

fn quoted(key: &str) -> String {
    let mut chars = key.chars();
    let head: String = chars.by_ref().take(KEY_CHARS_MAX).collect();
    if chars.next().is_some() {
        format!("{head:?}...")
    } else {
        format!("{head:?}")
    }
}

struct Strict(Value);

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrictVisitor).map(Strict)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(v.into())
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(v.into())
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(v.into())
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(v.into())
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(v.into())
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(v.into())
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(Strict(v)) = seq.next_element()? {
            items.push(v);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            match object.entry(key) {
                serde_json::map::Entry::Occupied(e) => {
                    failed_at(e.key());
                    return Err(A::Error::custom(format!(
                        "the key {} appears twice in one object",
                        quoted(e.key())
                    )));
                }
                serde_json::map::Entry::Vacant(e) => match map.next_value::<Strict>() {
                    Ok(Strict(v)) => {
                        e.insert(v);
                    }
                    Err(err) => {
                        failed_at(e.key());
                        return Err(err);
                    }
                },
            }
        }
        Ok(Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_given_twice_is_refused_at_any_depth_and_named_with_its_path() {
        let r = parse(br#"{"amount": 1, "amount": 100000}"#).unwrap_err();
        assert!(r.is_repeated_key());
        assert!(
            r.to_string().contains("the key \"amount\" appears twice"),
            "{r}"
        );
        assert_eq!(r.keys, ["amount"]);

        let r = parse(br#"{"data": {"object": [{"id": "a", "id": "b"}]}}"#).unwrap_err();
        assert!(r.is_repeated_key());
        assert_eq!(r.keys, ["data", "object", "id"]);
        assert!(r.to_string().ends_with("(at data.object.id)"), "{r}");
    }

    #[test]
    fn what_serde_json_accepts_once_is_parsed_as_serde_json_parses_it() {
        let text = br#"{"a": [1, -2, 3.5, "x", null, true, {"b": {}}], "c": 18446744073709551615}"#;
        assert_eq!(
            parse(text).unwrap(),
            serde_json::from_slice::<Value>(text).unwrap()
        );
        // The same key in two objects is not a repeat.
        assert!(parse(br#"[{"id": 1}, {"id": 2}]"#).is_ok());
    }

    #[test]
    fn a_syntax_error_is_not_a_repeated_key_and_a_failed_parse_leaves_no_path_behind() {
        let r = parse(br#"{"a": {"b": tru}}"#).unwrap_err();
        assert!(!r.is_repeated_key());
        assert_eq!(r.keys, ["a", "b"]);
        assert!(parse(b"{").unwrap_err().keys.is_empty());
        // A long key is quoted cut short.
        let long = format!(r#"{{"{0}": 1, "{0}": 2}}"#, "k".repeat(100));
        let r = parse(long.as_bytes()).unwrap_err();
        assert!(
            r.to_string().contains(&format!("{:?}...", "k".repeat(40))),
            "{r}"
        );
    }
}
