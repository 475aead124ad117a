//! The one encoding of bytes as text, the one rule for quoting untrusted
//! text in a message, and the one reading of JSON input. Every face uses
//! these; none writes its own.

/// Lower-case hex, two digits a byte.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

/// Hex digits (either case) back to bytes; `None` for an odd length or a
/// character that is not a hex digit. The empty string is no bytes.
pub fn unhex(text: &str) -> Option<Vec<u8>> {
    let digits = text.as_bytes();
    if !digits.len().is_multiple_of(2) {
        return None;
    }
    let nibble = |c: u8| char::from(c).to_digit(16).map(|d| d as u8);
    digits
        .chunks_exact(2)
        .map(|pair| Some(nibble(pair[0])? << 4 | nibble(pair[1])?))
        .collect()
}

/// Untrusted input as a message quotes it: its first
/// [`QUOTED_CHARS_MAX`] characters, quoted and escaped (control characters
/// and quotes cannot break the message), with `...` when there was more.
/// The plugin SDK's rule, so plugins and walletlog quote alike.
pub use walletlog_plugin::{quoted, QUOTED_CHARS_MAX};

/// Parses JSON input whose objects name each key once, at every depth:
/// `{"amount": "1", "amount": "1000"}` is refused, not read as its last
/// value, and so is nesting deeper than 64 levels. The rule is the plugin SDK's ([`walletlog_plugin::json`]), so a
/// webhook's body in a plugin and walletlog's own input are read alike.
/// Numbers are kept as `serde_json` keeps them (this crate does not
/// enable its `arbitrary_precision`; a test holds it to that).
pub(crate) fn strict_json(bytes: &[u8]) -> Result<serde_json::Value, serde_json::Error> {
    strict_json_keys(bytes).map_err(|(e, _)| e)
}

/// [`strict_json`], giving with a refusal the object keys from the root to
/// where it happened (array positions left out): `["metadata", "a"]` for
/// `{"metadata": {"a": 1, "a": 2}}`, so that the error can name the field.
pub(crate) fn strict_json_keys(
    bytes: &[u8],
) -> Result<serde_json::Value, (serde_json::Error, Vec<String>)> {
    walletlog_plugin::json::parse(bytes).map_err(|r| (r.error, r.keys))
}

/// Why [`strict_json`] refused its input, for a validation error's reason.
pub(crate) fn json_refusal(e: &serde_json::Error) -> String {
    match e.classify() {
        // Raised only by the strict parse: the text is JSON, with a key
        // twice or nested too deep.
        serde_json::error::Category::Data => format!("is refused: {e}"),
        _ => format!("is not valid JSON: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips_and_refuses_what_is_not_hex() {
        let bytes = [0x00, 0x0f, 0xa5, 0xff];
        assert_eq!(hex(&bytes), "000fa5ff");
        assert_eq!(unhex("000fa5ff").as_deref(), Some(&bytes[..]));
        assert_eq!(unhex("000FA5FF").as_deref(), Some(&bytes[..]));
        assert_eq!(unhex("").as_deref(), Some(&[][..]));
        assert_eq!(unhex("abc"), None);
        assert_eq!(unhex("zz"), None);
        assert_eq!(unhex("+1"), None);
        assert_eq!(unhex("é1"), None);
    }

    #[test]
    fn quoting_caps_and_escapes() {
        assert_eq!(quoted("abc"), "\"abc\"");
        assert_eq!(quoted("a\"\n"), "\"a\\\"\\n\"");
        let long = "x".repeat(100);
        assert_eq!(quoted(&long), format!("\"{}\"...", "x".repeat(40)));
    }
}
