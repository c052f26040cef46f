//! Error texts that never carry what a file contained.
//!
//! A catalog or visit log named by a caller may be any file the service can read (an audit
//! log, a key file someone left in the data directory). Parser messages often quote the
//! text they stumbled on (`invalid type: string "root:x:0:0"`, toml prints the source line
//! with a caret). What reaches a caller is therefore built from a position (line, column)
//! and a reason from which every quoted piece of input has been cut.

/// Position of byte `offset` in `text` as 1-based (line, column), counting characters.
pub fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    (line, before[start..].chars().count() + 1)
}

/// A parser's reason with quoted input cut out: every `"…"`, `'…'` and `` `…` `` before
/// the word "expected" becomes `…` (what follows "expected" comes from our own schema, not
/// from the file, and is kept because it says what would be valid). Only the first line is
/// kept, and at most 200 characters.
pub fn reason(message: &str) -> String {
    let first = message.lines().next().unwrap_or_default();
    let (head, tail) = match first.find("expected") {
        Some(i) => first.split_at(i),
        None => (first, ""),
    };
    // A key the schema does not know is named: a person must find it, and a key name is the
    // file's structure, not its data. Only a plain name qualifies (see `key_like`); a value, or
    // anything with separators or spaces in it, is cut.
    let names_key = ["unknown field", "missing field"]
        .iter()
        .any(|p| first.starts_with(p));
    let mut out = String::with_capacity(first.len());
    let mut chars = head.chars();
    while let Some(c) = chars.next() {
        if matches!(c, '"' | '\'' | '`') {
            // Skip to the matching quote (or the end); backslash escapes inside are skipped.
            let mut escaped = false;
            let mut quoted = String::new();
            for d in chars.by_ref() {
                if escaped {
                    escaped = false;
                    quoted.push('\u{fffd}');
                } else if d == '\\' {
                    escaped = true;
                } else if d == c {
                    break;
                } else {
                    quoted.push(d);
                }
            }
            if names_key && key_like(&quoted) {
                out.push(c);
                out.push_str(&quoted);
                out.push(c);
            } else {
                out.push('…');
            }
        } else {
            out.push(c);
        }
    }
    out.push_str(tail);
    let out = out.trim().trim_end_matches(',').trim().to_string();
    if out.chars().count() > 200 {
        out.chars().take(200).chain(['…']).collect()
    } else {
        out
    }
}

/// A plain key name: 1–40 ASCII letters, digits, `_` or `-`.
fn key_like(s: &str) -> bool {
    (1..=40).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_input_is_cut_and_the_schema_kept() {
        assert_eq!(
            reason("invalid type: string \"root:x:0:0:root\", expected f64"),
            "invalid type: string …, expected f64"
        );
        assert_eq!(
            reason("unknown variant `food`, expected one of `service`, `other`"),
            "unknown variant …, expected one of `service`, `other`"
        );
        assert_eq!(reason("duplicate key `root`"), "duplicate key …");
        // Unknown keys are named when they are plain names, never when they carry data.
        assert_eq!(
            reason("unknown field `context`, expected one of `code`, `name`"),
            "unknown field `context`, expected one of `code`, `name`"
        );
        assert_eq!(
            reason("unknown field `root:x:0:0`, expected `code`"),
            "unknown field …, expected `code`"
        );
        assert_eq!(
            reason("invalid type: string \"context\", expected a sequence"),
            "invalid type: string …, expected a sequence"
        );
        assert_eq!(
            reason("'x\\'y' is not a number; expected a number"),
            "… is not a number; expected a number"
        );
        assert_eq!(reason("line one\n  | secret source line"), "line one");
    }

    #[test]
    fn positions_count_characters() {
        let t = "ab\nåäö=1\n";
        assert_eq!(line_column(t, 0), (1, 1));
        assert_eq!(line_column(t, 3), (2, 1));
        assert_eq!(line_column(t, 3 + "åä".len()), (2, 3));
        assert_eq!(line_column(t, 4), (2, 1)); // inside 'å': rounded down
        assert_eq!(line_column(t, 999), (3, 1));
    }
}
