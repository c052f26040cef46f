//! Time-of-day slots. A visit's slot is read off its check-in hour; a need may ask for one.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The five slots of the data contract, in the order of a day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Slot {
    Morning,
    Midday,
    Afternoon,
    Evening,
    Night,
}

impl Slot {
    pub const ALL: [Slot; 5] = [
        Slot::Morning,
        Slot::Midday,
        Slot::Afternoon,
        Slot::Evening,
        Slot::Night,
    ];

    /// Slot of a check-in at `hour` (0..24). Boundaries follow common Swedish home-care
    /// rosters: morning round 06–10, midday (lunch) 10–14, afternoon 14–17, evening 17–22,
    /// night patrol 22–06.
    pub fn from_hour(hour: u32) -> Slot {
        match hour {
            6..=9 => Slot::Morning,
            10..=13 => Slot::Midday,
            14..=16 => Slot::Afternoon,
            17..=21 => Slot::Evening,
            _ => Slot::Night,
        }
    }

    /// A representative check-in hour for the slot (used when writing simulated logs).
    pub fn typical_hour(self) -> u32 {
        match self {
            Slot::Morning => 7,
            Slot::Midday => 11,
            Slot::Afternoon => 14,
            Slot::Evening => 18,
            Slot::Night => 23,
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Slot::Morning => "morning",
            Slot::Midday => "midday",
            Slot::Afternoon => "afternoon",
            Slot::Evening => "evening",
            Slot::Night => "night",
        }
    }
}

impl fmt::Display for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Slot {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Slot::ALL
            .into_iter()
            .find(|slot| slot.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| {
                format!("unknown slot '{s}'; expected morning, midday, afternoon, evening or night")
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hours_map_to_slots() {
        assert_eq!(Slot::from_hour(7), Slot::Morning);
        assert_eq!(Slot::from_hour(12), Slot::Midday);
        assert_eq!(Slot::from_hour(15), Slot::Afternoon);
        assert_eq!(Slot::from_hour(20), Slot::Evening);
        assert_eq!(Slot::from_hour(23), Slot::Night);
        assert_eq!(Slot::from_hour(3), Slot::Night);
        for slot in Slot::ALL {
            assert_eq!(Slot::from_hour(slot.typical_hour()), slot);
            assert_eq!(slot.as_str().parse::<Slot>().unwrap(), slot);
        }
        assert!("dawn".parse::<Slot>().is_err());
    }
}
