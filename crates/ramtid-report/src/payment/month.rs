//! A calendar month `YYYY-MM`.

use ramtid_core::calendar::days_from_civil;
use serde::{Serialize, Serializer};
use std::fmt;

/// A calendar month, ordered by time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Month {
    pub year: i32,
    /// 1 to 12.
    pub month: u32,
}

impl Month {
    /// The month, or `None` if `month` is not 1 to 12 or the year is outside 1900 to 9999.
    pub fn new(year: i32, month: u32) -> Option<Month> {
        ((1900..=9999).contains(&year) && (1..=12).contains(&month))
            .then_some(Month { year, month })
    }

    /// Days in the month (28 to 31).
    pub fn days(self) -> u32 {
        let (ny, nm) = if self.month == 12 {
            (self.year + 1, 1)
        } else {
            (self.year, self.month + 1)
        };
        (days_from_civil(i64::from(ny), nm, 1)
            - days_from_civil(i64::from(self.year), self.month, 1)) as u32
    }

    /// The month of a date `YYYY-MM-DD` (the day checked against the month's length).
    pub fn of_date(s: &str) -> Result<Month, String> {
        let bad = || format!("'{s}' is not a date YYYY-MM-DD");
        let (ym, d) = s.rsplit_once('-').ok_or_else(bad)?;
        let m: Month = ym.parse().map_err(|_| bad())?;
        let day: u32 = (d.len() == 2)
            .then(|| d.parse().ok())
            .flatten()
            .ok_or_else(bad)?;
        if day == 0 || day > m.days() {
            return Err(format!("'{s}': {m} has no day {day}"));
        }
        Ok(m)
    }
}

impl std::str::FromStr for Month {
    type Err = String;
    fn from_str(s: &str) -> Result<Month, String> {
        let bad = || format!("'{s}' is not a month YYYY-MM");
        let (y, m) = s.split_once('-').ok_or_else(bad)?;
        if y.len() != 4 || m.len() != 2 {
            return Err(bad());
        }
        let (y, m) = (y.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
        Month::new(y, m).ok_or_else(bad)
    }
}

impl fmt::Display for Month {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

impl Serialize for Month {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}
