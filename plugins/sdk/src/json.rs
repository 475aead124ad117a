//! Strict JSON: every object names each key once, at every depth.
//!
//! `{"amount": 1, "amount": 100000}` is refused, not read as its last
//! value (what `serde_json` alone does): two readers of one document (a
//! gateway or a provider's own tooling that takes the first value, a
//! normalizer that would take the last) must never see two different
//! movements of money. [`Request::json`](crate::Request::json) parses a
//! webhook's body this way, and the walletlog host parses its own JSON
//! input with the same function, so the rule exists once.
//!
//! Numbers are kept as `serde_json` keeps them without its
//! `arbitrary_precision` feature. Do not turn that feature on in a plugin
//! (nor a dependency that does): `serde_json` then hands every number to
//! this parser as a one-key object, and `int_field` finds no integer.

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use std::cell::{Cell, RefCell};

use crate::{quoted, QUOTED_CHARS_MAX};

/// Why [`parse`] refused a document.
#[derive(Debug)]
pub struct Refusal {
    /// `serde_json`'s error: a syntax error, or (category `Data`) a key
    /// given twice or nesting past [`DEPTH_MAX`], with its line and column.
    pub error: serde_json::Error,
    /// The object keys from the root to where the refusal happened (array
    /// positions left out): `["metadata", "a"]` for
    /// `{"metadata": {"a": 1, "a": 2}}`. Empty at the top level.
    pub keys: Vec<String>,
}

impl Refusal {
    /// Whether the text is JSON and a rule of this parse refused it (a key
    /// given twice, nesting deeper than [`DEPTH_MAX`]), not its syntax.
    pub fn is_rule_breach(&self) -> bool {
        self.error.classify() == serde_json::error::Category::Data
    }
}

/// The deepest nesting of arrays and objects accepted (serde_json alone
/// takes 128). Far beyond any provider's payload, and what a plugin's
/// 64 KiB shadow stack holds with room to spare: a deeper body is refused
/// as malformed instead of overflowing the stack (a trap).
pub const DEPTH_MAX: usize = 64;

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.error.fmt(f)?;
        if !self.keys.is_empty() {
            let path: Vec<String> = self.keys.iter().map(|k| segment(k)).collect();
            write!(f, " (in {})", path.join("."))?;
        }
        Ok(())
    }
}

thread_local! {
    /// The object keys, innermost first, around where a parse failed.
    static FAILED_AT: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
    /// How many arrays and objects the parse is inside now.
    static DEPTH: Cell<usize> = const { Cell::new(0) };
}

/// Enters an array or object: refused past [`DEPTH_MAX`].
fn enter<E: serde::de::Error>() -> Result<(), E> {
    DEPTH.with(|d| {
        let depth = d.get() + 1;
        if depth > DEPTH_MAX {
            return Err(too_deep());
        }
        d.set(depth);
        Ok(())
    })
}

fn leave() {
    DEPTH.with(|d| d.set(d.get().saturating_sub(1)));
}

#[cold]
#[inline(never)]
fn too_deep<E: serde::de::Error>() -> E {
    E::custom(format!(
        "arrays and objects nested deeper than {DEPTH_MAX} levels"
    ))
}

/// Parses `bytes` as JSON whose objects name each key once. Numbers are
/// kept as `serde_json` keeps them.
pub fn parse(bytes: &[u8]) -> Result<Value, Refusal> {
    FAILED_AT.with(|k| k.borrow_mut().clear());
    DEPTH.with(|d| d.set(0));
    serde_json::from_slice::<Strict>(bytes)
        .map(|s| s.0)
        .map_err(|error| {
            let mut keys = FAILED_AT.with(|k| std::mem::take(&mut *k.borrow_mut()));
            keys.reverse();
            Refusal { error, keys }
        })
}

// Out of line and cold, like every error path here: each level of
// nesting is a frame of the visitor, and a plugin's shadow stack is 64 KiB
// (`DEPTH_MAX` levels must fit with room to spare).
#[cold]
#[inline(never)]
fn failed_at(key: &str) {
    FAILED_AT.with(|k| k.borrow_mut().push(key.to_owned()));
}

/// A key of a path as a message shows it: as it is when it is a plain
/// name, else quoted (escaped, cut short), so that a key cannot break the
/// message or make its path ambiguous.
fn segment(key: &str) -> String {
    let plain = !key.is_empty()
        && key.len() <= QUOTED_CHARS_MAX
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if plain {
        key.to_owned()
    } else {
        quoted(key)
    }
}

/// The refusal of `key` given twice.
#[cold]
#[inline(never)]
fn repeated<E: serde::de::Error>(key: &str) -> E {
    failed_at(key);
    E::custom(format!(
        "the key {} appears twice in one object",
        quoted(key)
    ))
}

/// `error`, raised inside the value of `key`.
#[cold]
#[inline(never)]
fn inside<E>(key: &str, error: E) -> E {
    failed_at(key);
    error
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

    // Out of line: inlined into serde_json's `deserialize_any`, the locals
    // of both would be in every level's frame.
    #[inline(never)]
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        enter::<A::Error>()?;
        let mut items = Vec::new();
        while let Some(Strict(v)) = seq.next_element()? {
            items.push(v);
        }
        leave();
        Ok(Value::Array(items))
    }

    #[inline(never)]
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        enter::<A::Error>()?;
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            // Looked up twice rather than through an entry held across the
            // value's parse: the frame under each level stays small.
            if object.contains_key(&key) {
                return Err(repeated(&key));
            }
            let value = match map.next_value::<Strict>() {
                Ok(Strict(v)) => v,
                Err(e) => return Err(inside(&key, e)),
            };
            object.insert(key, value);
        }
        leave();
        Ok(Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_given_twice_is_refused_at_any_depth_and_named_with_its_path() {
        let r = parse(br#"{"amount": 1, "amount": 100000}"#).unwrap_err();
        assert!(r.is_rule_breach());
        assert!(
            r.to_string().contains("the key \"amount\" appears twice"),
            "{r}"
        );
        assert_eq!(r.keys, ["amount"]);

        let r = parse(br#"{"data": {"object": [{"id": "a", "id": "b"}]}}"#).unwrap_err();
        assert!(r.is_rule_breach());
        assert_eq!(r.keys, ["data", "object", "id"]);
        assert!(r.to_string().ends_with("(in data.object.id)"), "{r}");
    }

    #[test]
    fn nesting_deeper_than_the_limit_is_refused_and_the_limit_itself_is_parsed() {
        let nested = |depth: usize, open: &str, close: &str| {
            format!("{}1{}", open.repeat(depth), close.repeat(depth))
        };
        for (open, close) in [("[", "]"), (r#"{"a":"#, "}")] {
            let at = nested(DEPTH_MAX, open, close);
            assert!(parse(at.as_bytes()).is_ok(), "{open} x {DEPTH_MAX}");
            let r = parse(nested(DEPTH_MAX + 1, open, close).as_bytes()).unwrap_err();
            assert!(r.is_rule_breach(), "{r}");
            assert!(
                r.to_string().contains("nested deeper than 64 levels"),
                "{r}"
            );
            // A refused parse leaves no depth behind for the next one.
            assert!(parse(at.as_bytes()).is_ok());
        }
        // Siblings do not add up: depth is nesting, not count.
        let wide = format!("[{}]", vec![nested(DEPTH_MAX - 1, "[", "]"); 3].join(","));
        assert!(parse(wide.as_bytes()).is_ok());
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
        assert!(!r.is_rule_breach());
        assert_eq!(r.keys, ["a", "b"]);
        assert!(parse(b"{").unwrap_err().keys.is_empty());
        // A long key is quoted cut short, in the message and in its path.
        let long = format!(r#"{{"{0}": 1, "{0}": 2}}"#, "k".repeat(100));
        let r = parse(long.as_bytes()).unwrap_err();
        let cut = format!("{:?}...", "k".repeat(40));
        assert!(r.to_string().ends_with(&format!("(in {cut})")), "{r}");
        assert!(!r.to_string().contains(&"k".repeat(41)), "{r}");
        // A key that is not a plain name is escaped in the path.
        let r = parse(br#"{"a.b\n\u001b[31m": {"x": 1, "x": 2}}"#).unwrap_err();
        assert!(
            r.to_string().ends_with(r#"(in "a.b\n\u{1b}[31m".x)"#),
            "{r}"
        );
    }
}
