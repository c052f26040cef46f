//! ISO 8601 local date-times as visit logs write them, without a date-time crate: the log
//! needs only the calendar day and the hour of check-in.

/// Day number (days since 1970-01-01) and hour of a check-in, as logged (local time; an
/// offset, when present, is accepted and not applied: slots are about the local clock).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckIn {
    pub day: i32,
    pub hour: u32,
}

/// Parses `YYYY-MM-DDTHH:MM[:SS[.fff]][Z|±HH[:]MM|±HH]` (a space may stand for `T`).
///
/// The text is read as a sequence of validated fields by a cursor over its bytes; it is
/// never sliced at a byte offset, so any input (multi-byte characters where digits belong
/// included) is a refusal, never a panic. Messages echo at most a bounded part of the value.
pub fn parse_check_in(s: &str) -> Result<CheckIn, String> {
    let s = s.trim();
    let bad = || {
        format!(
            "'{}' is not an ISO 8601 date-time like 2025-03-03T07:40:00",
            crate::echo::echo(s)
        )
    };
    let mut c = Cursor(s.as_bytes());
    let (year, month, day, hour, minute) = (|| {
        let year = c.digits(4)?;
        c.byte(b'-')?;
        let month = c.digits(2)?;
        c.byte(b'-')?;
        let day = c.digits(2)?;
        c.one_of(b"T ")?;
        let hour = c.digits(2)?;
        c.byte(b':')?;
        let minute = c.digits(2)?;
        if c.byte(b':').is_some() {
            if c.digits(2)? > 60 {
                return None;
            }
            if c.byte(b'.').is_some() && c.many_digits() == 0 {
                return None;
            }
        }
        match c.0 {
            [] | [b'Z'] => {}
            [b'+' | b'-', rest @ ..] => {
                let mut o = Cursor(rest);
                o.digits(2)?;
                if !o.0.is_empty() {
                    let _ = o.byte(b':');
                    o.digits(2)?;
                }
                if !o.0.is_empty() {
                    return None;
                }
            }
            _ => return None,
        }
        Some((year as i32, month, day, hour, minute))
    })()
    .ok_or_else(bad)?;
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return Err(format!("'{}' is not a calendar date", crate::echo::echo(s)));
    }
    if hour > 23 || minute > 59 {
        return Err(format!(
            "'{}' has no such time of day",
            crate::echo::echo(s)
        ));
    }
    Ok(CheckIn {
        day: days_from_civil(year, month, day),
        hour,
    })
}

/// What is left of the text to read; each step takes a field off the front or fails.
struct Cursor<'a>(&'a [u8]);

impl Cursor<'_> {
    /// Exactly `n` ASCII digits as a number.
    fn digits(&mut self, n: usize) -> Option<u32> {
        let (head, rest) = (self.0.get(..n)?, &self.0[n..]);
        if !head.iter().all(u8::is_ascii_digit) {
            return None;
        }
        self.0 = rest;
        Some(head.iter().fold(0, |v, d| v * 10 + u32::from(d - b'0')))
    }

    /// Any number of ASCII digits; how many.
    fn many_digits(&mut self) -> usize {
        let n = self.0.iter().take_while(|b| b.is_ascii_digit()).count();
        self.0 = &self.0[n..];
        n
    }

    fn byte(&mut self, b: u8) -> Option<()> {
        self.one_of(&[b])
    }

    fn one_of(&mut self, set: &[u8]) -> Option<()> {
        match self.0.split_first() {
            Some((first, rest)) if set.contains(first) => {
                self.0 = rest;
                Some(())
            }
            _ => None,
        }
    }
}

fn is_leap(y: i32) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i32, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if is_leap(y) => 29,
        _ => 28,
    }
}

/// Day number of a date (days since 1970-01-01), as the visit table stores it.
pub fn days_from_civil(y: i32, m: u32, d: u32) -> i32 {
    crate::calendar::days_from_civil(i64::from(y), m, d) as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_contract_forms() {
        let c = parse_check_in("2025-03-03T07:40:00").unwrap();
        assert_eq!(c.hour, 7);
        assert_eq!(c.day, days_from_civil(2025, 3, 3));
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(parse_check_in("2025-03-04 22:05").unwrap().hour, 22);
        assert!(parse_check_in("2025-03-03T07:40:00+01:00").is_ok());
        assert!(parse_check_in("2025-03-03T07:40:00.250Z").is_ok());
        assert!(parse_check_in("2025-03-03T07:40+0100").is_ok());
        assert!(parse_check_in("2025-03-03T07:40:00-05").is_ok());
        assert_eq!(
            parse_check_in("2024-02-29T00:00:00").unwrap().day + 1,
            parse_check_in("2024-03-01T00:00:00").unwrap().day
        );
    }

    #[test]
    fn refuses_what_is_not_a_date_time() {
        for s in [
            "",
            "yesterday",
            "2025-13-01T07:00:00",
            "2025-02-29T07:00:00",
            "2025-03-03T25:00:00",
            "2025-03-03T07:40:00 CET",
            "03/03/2025 07:40",
            // Multi-byte characters where digits belong: refused, not a panic (they once
            // met a byte-offset slice).
            "2025-03-03T07:4é",
            "2025-03-03T07:40:é0",
            "2025-03-03T07:40:00+0é:00",
            "2025-03-03T07:40:00+01:é",
            "2025-0é-03T07:40:00",
            "2025-03-03T07:40:00.",
            "2025-03-03T07:40:00+1",
            "2025-03-03T07:40:00+01:00:00",
        ] {
            assert!(parse_check_in(s).is_err(), "{s}");
        }
    }
}
