//! The band a recipient-month's ratio (performed ÷ ordered) falls in, and runs of months
//! outside it.
//!
//! With tolerance `t` (0 < t ≤ 1):
//! - `under`: ratio below 1 − t;
//! - `within`: from 1 − t up to and including 1;
//! - `over_tolerance`: above 1 and up to and including 1 + t (the overrun a municipality
//!   allows, Solna: 5–10 %);
//! - `over`: above 1 + t.
//!
//! `under` and `over` are *outside*; a ratio on an edge belongs to the band below it
//! (1 − t is within, 1 + t is over tolerance). Edges are compared with a margin of 1e-9 so
//! that a ratio that is the edge in decimals (630 ÷ 700 = 0.9) counts as on it. A month with
//! performed time but no order in force has no ratio and the band `no_order`.

use serde::Serialize;

/// Ratios this close to an edge are on it.
pub const EDGE_EPS: f64 = 1e-9;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Band {
    Under,
    Within,
    OverTolerance,
    Over,
    NoOrder,
}

impl Band {
    pub const ALL: [Band; 5] = [
        Band::Under,
        Band::Within,
        Band::OverTolerance,
        Band::Over,
        Band::NoOrder,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Band::Under => "under",
            Band::Within => "within",
            Band::OverTolerance => "over_tolerance",
            Band::Over => "over",
            Band::NoOrder => "no_order",
        }
    }

    /// Under or over: counts towards a run that calls for reassessment.
    pub fn is_outside(self) -> bool {
        matches!(self, Band::Under | Band::Over)
    }

    /// The band of `ratio` (None: no order in force) under `tolerance`.
    pub fn of(ratio: Option<f64>, tolerance: f64) -> Band {
        let Some(r) = ratio else {
            return Band::NoOrder;
        };
        if r < 1.0 - tolerance - EDGE_EPS {
            Band::Under
        } else if r <= 1.0 + EDGE_EPS {
            Band::Within
        } else if r <= 1.0 + tolerance + EDGE_EPS {
            Band::OverTolerance
        } else {
            Band::Over
        }
    }
}

/// A tolerance the follow-up accepts: in (0, 1].
pub fn check_tolerance(t: f64) -> Result<f64, String> {
    if t.is_finite() && t > 0.0 && t <= 1.0 {
        Ok(t)
    } else {
        Err(format!(
            "tolerance {t} is outside (0, 1]; give a share, e.g. 0.10 for 10 %"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn band(performed: f64, ordered: f64) -> Band {
        Band::of(Some(performed / ordered), 0.10)
    }

    #[test]
    fn each_edge_by_hand() {
        // Ordered 700 min in the month, tolerance 10 %: edges at 630 and 770 minutes.
        assert_eq!(band(629.0, 700.0), Band::Under);
        assert_eq!(band(630.0, 700.0), Band::Within); // 0.9 exactly: within
        assert_eq!(band(700.0, 700.0), Band::Within); // 1.0: within
        assert_eq!(band(701.0, 700.0), Band::OverTolerance);
        assert_eq!(band(770.0, 700.0), Band::OverTolerance); // 1.1 exactly: over tolerance
        assert_eq!(band(771.0, 700.0), Band::Over);
        assert_eq!(band(0.0, 700.0), Band::Under);
        assert_eq!(Band::of(None, 0.1), Band::NoOrder);
        // Tolerance 5 % (Solna's lower figure): 1 000 ordered, 950 / 1 050 are the edges.
        assert_eq!(Band::of(Some(949.0 / 1000.0), 0.05), Band::Under);
        assert_eq!(Band::of(Some(950.0 / 1000.0), 0.05), Band::Within);
        assert_eq!(Band::of(Some(1050.0 / 1000.0), 0.05), Band::OverTolerance);
        assert_eq!(Band::of(Some(1051.0 / 1000.0), 0.05), Band::Over);
        // Tolerance 1: nothing is under but zero-ish; over above 2.
        assert_eq!(Band::of(Some(0.0), 1.0), Band::Within);
        assert_eq!(Band::of(Some(2.0), 1.0), Band::OverTolerance);
        assert_eq!(Band::of(Some(2.01), 1.0), Band::Over);
    }

    #[test]
    fn outside_is_under_or_over() {
        let out: Vec<Band> = Band::ALL.into_iter().filter(|b| b.is_outside()).collect();
        assert_eq!(out, vec![Band::Under, Band::Over]);
    }

    #[test]
    fn tolerance_range() {
        assert!(check_tolerance(0.1).is_ok());
        assert!(check_tolerance(1.0).is_ok());
        for t in [0.0, -0.1, 1.01, f64::NAN, f64::INFINITY] {
            assert!(check_tolerance(t).is_err(), "{t}");
        }
    }
}
