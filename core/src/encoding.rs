//! The one encoding of bytes as text, and the one rule for quoting
//! untrusted text in a message. Every face uses these; none writes its own.

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

/// Most characters of untrusted input an error message shows.
pub const QUOTED_CHARS_MAX: usize = 40;

/// Untrusted input as a message quotes it: its first
/// [`QUOTED_CHARS_MAX`] characters, quoted and escaped (control characters
/// and quotes cannot break the message), with `...` when there was more.
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
