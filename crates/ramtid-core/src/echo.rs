//! Bounded echoes of input in messages. An error may show a short piece of what it refuses
//! (an unknown code, a value that is not a number) so that a person can find it, but never
//! more than [`ECHO_MAX_CHARS`] characters of it: a message is not a channel for file
//! contents, and an unbounded echo (a 1 MB cell or metadata value) breaks the clients and
//! logs that carry it. Control characters are escaped so that an echo cannot forge log lines
//! or terminal output.

/// Most characters of an input value shown in a message.
pub const ECHO_MAX_CHARS: usize = 64;

/// `s` as it may appear in a message: control characters escaped (`\n`, `\u{0}`), at most
/// [`ECHO_MAX_CHARS`] characters of it, and, when cut, an ellipsis and the original length
/// in characters (`ABC…(1200 chars)`).
pub fn echo(s: &str) -> String {
    echo_n(s, ECHO_MAX_CHARS)
}

/// [`echo`] with another limit, for texts that are not plain values (a parser's message
/// that names a key and what was expected).
pub fn echo_n(s: &str, max_chars: usize) -> String {
    let (mut out, cut) = head(s, max_chars);
    if cut {
        out.push_str(&format!("…({} chars)", s.chars().count()));
    }
    out
}

/// Like [`echo`] for raw bytes that may not be UTF-8 (invalid sequences become U+FFFD); a
/// cut value gives its length in bytes.
pub fn echo_bytes(b: &[u8]) -> String {
    // Only the head is decoded: a long value costs no more than a short one.
    let shown = &b[..b.len().min(4 * ECHO_MAX_CHARS)];
    let (mut out, cut) = head(&String::from_utf8_lossy(shown), ECHO_MAX_CHARS);
    if cut || shown.len() < b.len() {
        out.push_str(&format!("…({} bytes)", b.len()));
    }
    out
}

/// The first `max` characters with control characters escaped, and whether anything was
/// left out.
fn head(s: &str, max: usize) -> (String, bool) {
    let mut out = String::with_capacity(s.len().min(4 * max));
    let mut chars = s.chars();
    for c in chars.by_ref().take(max) {
        if c.is_control() {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
    }
    (out, chars.next().is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_values_are_shown_whole_and_long_ones_cut_with_their_length() {
        assert_eq!(echo("SHOWER"), "SHOWER");
        let long = "x".repeat(1000);
        let e = echo(&long);
        assert!(e.starts_with(&"x".repeat(ECHO_MAX_CHARS)));
        assert!(e.ends_with("…(1000 chars)"), "{e}");
        assert_eq!(e.chars().filter(|c| *c == 'x').count(), ECHO_MAX_CHARS);
        // Characters, not bytes: a multi-byte value is cut on a character boundary.
        let e = echo(&"é".repeat(100));
        assert!(e.ends_with("…(100 chars)"), "{e}");
        assert_eq!(
            echo(&"é".repeat(ECHO_MAX_CHARS)),
            "é".repeat(ECHO_MAX_CHARS)
        );
    }

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(echo("a\nb\0"), "a\\nb\\0");
        assert_eq!(echo("\u{1b}[31m"), "\\u{1b}[31m");
    }

    #[test]
    fn bytes_are_decoded_lossily_and_bounded() {
        assert_eq!(echo_bytes(b"ab\xffc"), "ab\u{fffd}c");
        let e = echo_bytes(&vec![b'y'; 100_000]);
        assert!(e.ends_with("…(100000 bytes)"), "{e}");
        assert!(e.len() < 200);
    }
}
