//! Dates without a date crate. The simulated calendar starts on Monday 2025-03-03; day
//! `d` of the simulation is that date plus `d` days. Times are local wall-clock times
//! without an offset, as the data contract allows.

/// Year, month and day of the simulation's first day (a Monday).
pub const START: (i64, u32, u32) = (2025, 3, 3);

use ramtid_core::calendar::{civil_from_days, days_from_civil};

#[cfg(test)]
/// Weekday of a day count since 1970-01-01: 0 = Monday … 6 = Sunday.
pub fn weekday(days: i64) -> u32 {
    // 1970-01-01 was a Thursday.
    (days + 3).rem_euclid(7) as u32
}

/// `YYYY-MM-DD` of simulation day `offset`.
pub fn date_string(offset: i64) -> String {
    let (y, m, d) = civil_from_days(days_from_civil(START.0, START.1, START.2) + offset);
    format!("{y:04}-{m:02}-{d:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_start_is_a_monday_and_dates_roll_over() {
        let start = days_from_civil(START.0, START.1, START.2);
        assert_eq!(weekday(start), 0);
        assert_eq!(date_string(0), "2025-03-03");
        assert_eq!(date_string(6), "2025-03-09");
        assert_eq!(date_string(29), "2025-04-01");
        assert_eq!(date_string(304), "2026-01-01");
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(civil_from_days(days_from_civil(2024, 2, 29)), (2024, 2, 29));
        assert_eq!(
            civil_from_days(days_from_civil(2024, 2, 29) + 1),
            (2024, 3, 1)
        );
    }
}
