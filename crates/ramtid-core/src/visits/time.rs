//! ISO 8601 local date-times as visit logs write them, without a date-time crate: the log
//! needs only the calendar day and the hour of check-in.

/// Day number (days since 1970-01-01) and hour of a check-in, as logged (local time; an
/// offset, when present, is accepted and not applied: slots are about the local clock).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckIn {
    pub day: i32,
    pub hour: u32,
}

/// Parses `YYYY-MM-DDTHH:MM[:SS[.fff]][Z|±HH:MM]` (a space may stand for `T`).
pub fn parse_check_in(s: &str) -> Result<CheckIn, String> {
    let s = s.trim();
    let bad = || format!("'{s}' is not an ISO 8601 date-time like 2025-03-03T07:40:00");
    let b = s.as_bytes();
    if b.len() < 16 || b[4] != b'-' || b[7] != b'-' || !(b[10] == b'T' || b[10] == b' ') {
        return Err(bad());
    }
    let num = |r: std::ops::Range<usize>| -> Result<u32, String> {
        let part = &s[r];
        if part.bytes().all(|c| c.is_ascii_digit()) {
            part.parse().map_err(|_| bad())
        } else {
            Err(bad())
        }
    };
    let year = num(0..4)? as i32;
    let month = num(5..7)?;
    let day = num(8..10)?;
    if b[13] != b':' {
        return Err(bad());
    }
    let hour = num(11..13)?;
    let minute = num(14..16)?;
    let mut rest = &s[16..];
    if let Some(r) = rest.strip_prefix(':') {
        if r.len() < 2 {
            return Err(bad());
        }
        let sec = num(17..19)?;
        if sec > 60 {
            return Err(bad());
        }
        rest = &r[2..];
        if let Some(frac) = rest.strip_prefix('.') {
            let digits = frac.bytes().take_while(|c| c.is_ascii_digit()).count();
            if digits == 0 {
                return Err(bad());
            }
            rest = &frac[digits..];
        }
    }
    match rest {
        "" | "Z" => {}
        off if (off.starts_with('+') || off.starts_with('-'))
            && (off.len() == 6 && off.as_bytes()[3] == b':'
                || off.len() == 5
                || off.len() == 3)
            && off[1..]
                .bytes()
                .filter(|c| *c != b':')
                .all(|c| c.is_ascii_digit()) => {}
        _ => return Err(bad()),
    }
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return Err(format!("'{s}' is not a calendar date"));
    }
    if hour > 23 || minute > 59 {
        return Err(format!("'{s}' has no such time of day"));
    }
    Ok(CheckIn {
        day: days_from_civil(year, month, day),
        hour,
    })
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
        ] {
            assert!(parse_check_in(s).is_err(), "{s}");
        }
    }
}
