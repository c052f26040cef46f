//! Calendar months as numbers and how many days of a month an order is in force.

use ramtid_core::calendar::{civil_from_days, days_from_civil};

/// A calendar month: `year * 12 + (month − 1)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Month(pub i32);

impl Month {
    pub fn of_day(day: i32) -> Month {
        let (y, m, _) = civil_from_days(i64::from(day));
        Month(y as i32 * 12 + m as i32 - 1)
    }

    pub fn year(self) -> i32 {
        self.0.div_euclid(12)
    }

    pub fn month(self) -> u32 {
        (self.0.rem_euclid(12) + 1) as u32
    }

    /// First day (day number, days since 1970-01-01).
    pub fn first_day(self) -> i32 {
        days_from_civil(i64::from(self.year()), self.month(), 1) as i32
    }

    /// Last day, inclusive.
    pub fn last_day(self) -> i32 {
        Month(self.0 + 1).first_day() - 1
    }

    pub fn days(self) -> i32 {
        self.last_day() - self.first_day() + 1
    }

    /// `YYYY-MM`.
    pub fn label(self) -> String {
        format!("{:04}-{:02}", self.year(), self.month())
    }

    /// Parses `YYYY-MM`.
    pub fn parse(s: &str) -> Result<Month, String> {
        let bad = || format!("'{s}' is not a month like 2025-03");
        let (y, m) = s.trim().split_once('-').ok_or_else(bad)?;
        if y.len() != 4 || m.len() != 2 {
            return Err(bad());
        }
        let y: i32 = y.parse().map_err(|_| bad())?;
        let m: i32 = m.parse().map_err(|_| bad())?;
        if !(1..=12).contains(&m) {
            return Err(bad());
        }
        Ok(Month(y * 12 + m - 1))
    }
}

/// Parses a `valid_from` date `YYYY-MM-DD` into a day number.
pub fn parse_date(s: &str) -> Result<i32, String> {
    let bad = || format!("'{s}' is not a date like 2025-03-01");
    let parts: Vec<&str> = s.trim().split('-').collect();
    if parts.len() != 3 || parts[0].len() != 4 || parts[1].len() != 2 || parts[2].len() != 2 {
        return Err(bad());
    }
    let y: i64 = parts[0].parse().map_err(|_| bad())?;
    let m: u32 = parts[1].parse().map_err(|_| bad())?;
    let d: u32 = parts[2].parse().map_err(|_| bad())?;
    if !(1..=12).contains(&m) || d == 0 {
        return Err(bad());
    }
    let day = days_from_civil(y, m, d) as i32;
    // Day 31 of a 30-day month rolls over: refuse it.
    if Month::of_day(day) != Month(y as i32 * 12 + m as i32 - 1) {
        return Err(bad());
    }
    Ok(day)
}

/// One order period: `weekly_min` from `from` (a day number; None: from the beginning).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Period {
    pub from: Option<i32>,
    pub weekly_min: f64,
}

/// Ordered minutes for the days `first..=last`: each day takes the weekly minutes of the
/// latest period that has begun by then, ÷ 7; a day before every period takes nothing.
/// `periods` are sorted by `from` (None first).
pub fn ordered_minutes(periods: &[Period], first: i32, last: i32) -> (f64, i32) {
    let (mut minutes, mut days) = (0.0, 0);
    for (k, p) in periods.iter().enumerate() {
        let start = p.from.unwrap_or(i32::MIN).max(first);
        let end = periods
            .get(k + 1)
            .and_then(|n| n.from)
            .map_or(last, |f| (f - 1).min(last));
        if end >= start {
            let n = end - start + 1;
            days += n;
            minutes += p.weekly_min * f64::from(n) / 7.0;
        }
    }
    (minutes, days)
}

impl serde::Serialize for Month {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.label())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_and_days() {
        let m = Month::parse("2024-02").unwrap();
        assert_eq!(m.days(), 29);
        assert_eq!(m.label(), "2024-02");
        assert_eq!(Month::of_day(m.first_day()), m);
        assert_eq!(Month::of_day(m.last_day() + 1).label(), "2024-03");
        assert_eq!(Month::parse("2025-12").unwrap().days(), 31);
        assert_eq!(
            Month(Month::parse("2025-12").unwrap().0 + 1).label(),
            "2026-01"
        );
        for bad in ["2025-13", "2025-3", "25-03", "march", "2025-00"] {
            assert!(Month::parse(bad).is_err(), "{bad}");
        }
        assert!(parse_date("2025-04-31").is_err());
        assert!(parse_date("2025-02-29").is_err());
        assert_eq!(
            parse_date("2024-02-29").unwrap() + 1,
            parse_date("2024-03-01").unwrap()
        );
    }

    #[test]
    fn proration_of_a_month_by_hand() {
        // April 2025 has 30 days. 140 min/week all month: 140 × 30 / 7 = 600.
        let april = Month::parse("2025-04").unwrap();
        let (a, b) = (april.first_day(), april.last_day());
        let always = [Period {
            from: None,
            weekly_min: 140.0,
        }];
        assert_eq!(ordered_minutes(&always, a, b), (600.0, 30));
        // Ordered from 2025-04-11: days 11..=30 are 20 days, 140 × 20 / 7 = 400.
        let from11 = [Period {
            from: Some(parse_date("2025-04-11").unwrap()),
            weekly_min: 140.0,
        }];
        assert_eq!(ordered_minutes(&from11, a, b), (400.0, 20));
        // 70 min/week until the 16th, then 210 from the 16th: 15 × 10 + 15 × 30 = 600.
        let changed = [
            Period {
                from: None,
                weekly_min: 70.0,
            },
            Period {
                from: Some(parse_date("2025-04-16").unwrap()),
                weekly_min: 210.0,
            },
        ];
        let (m, d) = ordered_minutes(&changed, a, b);
        assert!((m - 600.0).abs() < 1e-9, "{m}");
        assert_eq!(d, 30);
        // An order that begins after the month: nothing.
        let later = [Period {
            from: Some(parse_date("2025-05-02").unwrap()),
            weekly_min: 140.0,
        }];
        assert_eq!(ordered_minutes(&later, a, b), (0.0, 0));
        // A month the log covers from the 24th only: 7 days, one week, 140.
        assert_eq!(
            ordered_minutes(&always, parse_date("2025-04-24").unwrap(), b),
            (140.0, 7)
        );
    }
}
