//! Consumption, KPB style: performed hours per recipient and month by age band and by
//! context group, and, with a population file (`age_band,inhabitants`, data contract §7),
//! hours per inhabitant of each band per year, month by month (Boden's figure is hours per
//! inhabitant aged 80+ and year).
//!
//! A recipient-month is placed in the group of the context logged on its last visit of that
//! month: context changes (a new level of mobility) move a person between groups from the
//! month they change, not back over the whole log. Hours are the cleaned log's, the same
//! visits as the follow-up's performed minutes. Both wall-clock and staff hours are given;
//! the per-inhabitant figure uses staff hours, since that is what a KPB costs.

use super::month::Month;
use super::FollowUpError;
use ramtid_core::catalog::{Catalog, ContextKind, ContextVar};
use ramtid_core::visits::VisitRow;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// Days in a year, for the per-year rates of periods shorter than a year.
pub const DAYS_PER_YEAR: f64 = 365.25;
/// Bands used when no population file is given.
pub const DEFAULT_BANDS: [&str; 3] = ["0-64", "65-79", "80+"];
/// Recipient-months whose age falls in no band (or is missing) are grouped under this label.
pub const OUTSIDE_BANDS: &str = "outside the bands";

/// An age band: `65-79` (both ends included) or `80+`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AgeBand {
    pub label: String,
    pub lo: u32,
    /// Highest age included; None for an open band (`80+`).
    pub hi: Option<u32>,
}

impl AgeBand {
    pub fn parse(raw: &str) -> Result<AgeBand, String> {
        let s = raw.trim();
        let bad = || {
            format!(
                "'{}' is not an age band; expected A-B (e.g. 65-79) or A+ (e.g. 80+)",
                ramtid_core::echo::echo(s)
            )
        };
        let age = |t: &str| t.trim().parse::<u32>().ok().filter(|&a| a <= 130);
        let (lo, hi) = if let Some(lo) = s.strip_suffix('+') {
            (age(lo).ok_or_else(bad)?, None)
        } else {
            let (a, b) = s.split_once('-').ok_or_else(bad)?;
            let (a, b) = (age(a).ok_or_else(bad)?, age(b).ok_or_else(bad)?);
            if b < a {
                return Err(format!("age band '{s}' ends before it starts"));
            }
            (a, Some(b))
        };
        Ok(AgeBand {
            label: s.to_string(),
            lo,
            hi,
        })
    }

    /// Whether an age (years, possibly fractional: the whole years count) is in the band.
    pub fn contains(&self, age: f64) -> bool {
        if !age.is_finite() || age < 0.0 {
            return false;
        }
        let years = age.floor() as u32;
        years >= self.lo && self.hi.is_none_or(|hi| years <= hi)
    }

    fn overlaps(&self, o: &AgeBand) -> bool {
        let end = |b: &AgeBand| b.hi.unwrap_or(u32::MAX);
        self.lo <= end(o) && o.lo <= end(self)
    }

    /// Whether the whole band is aged 80 or more (KPB's headline group).
    pub fn is_80_plus(&self) -> bool {
        self.lo >= 80
    }
}

/// Inhabitants per age band, as read from `population.csv`.
#[derive(Debug, Clone, Serialize)]
pub struct Population {
    pub file: String,
    pub bands: Vec<(AgeBand, u64)>,
}

impl Population {
    /// Inhabitants aged 80+ (the bands that lie wholly at 80 or above), when the file's
    /// bands can say it: a band that straddles 80 (`75-84`) makes the figure unknowable.
    pub fn inhabitants_80_plus(&self) -> Option<u64> {
        let straddles = self
            .bands
            .iter()
            .any(|(b, _)| b.lo < 80 && b.hi.is_none_or(|hi| hi >= 80));
        let n: u64 = self
            .bands
            .iter()
            .filter(|(b, _)| b.is_80_plus())
            .map(|(_, n)| n)
            .sum();
        (!straddles && self.bands.iter().any(|(b, _)| b.is_80_plus())).then_some(n)
    }
}

/// Reads `age_band,inhabitants`; every problem names the file, row and column.
pub fn read_population(path: &Path) -> Result<Population, FollowUpError> {
    let name = path.display().to_string();
    let f = std::fs::File::open(path).map_err(|source| FollowUpError::Io {
        path: name.clone(),
        source,
    })?;
    read_population_from(f, &name)
}

/// Reads an opened population file; `name` is how it is shown.
pub fn read_population_from(f: std::fs::File, name: &str) -> Result<Population, FollowUpError> {
    let file = name.to_string();
    let mut r = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(f);
    let header = r
        .headers()
        .map_err(|e| FollowUpError::csv(&file, e))?
        .clone();
    let col = |name: &str| -> Result<usize, FollowUpError> {
        header
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| FollowUpError::Row {
                path: file.clone(),
                row: 1,
                column: name.into(),
                message: format!(
                    "the header has no column '{name}'; expected age_band,inhabitants"
                ),
            })
    };
    let (cb, ci) = (col("age_band")?, col("inhabitants")?);
    let mut bands: Vec<(AgeBand, u64)> = Vec::new();
    for rec in r.records() {
        let rec = rec.map_err(|e| FollowUpError::csv(&file, e))?;
        let row = rec.position().map_or(0, |p| p.line());
        let bad = |column: &str, message: String| FollowUpError::Row {
            path: file.clone(),
            row,
            column: column.into(),
            message,
        };
        let band = AgeBand::parse(rec.get(cb).unwrap_or("")).map_err(|m| bad("age_band", m))?;
        let raw = rec.get(ci).unwrap_or("");
        let n: u64 = raw.parse().map_err(|_| {
            bad(
                "inhabitants",
                format!(
                    "'{}' is not a whole number of inhabitants",
                    ramtid_core::echo::echo(raw)
                ),
            )
        })?;
        if let Some((other, _)) = bands.iter().find(|(b, _)| b.overlaps(&band)) {
            return Err(bad(
                "age_band",
                format!(
                    "band '{}' overlaps band '{}' of an earlier row",
                    band.label, other.label
                ),
            ));
        }
        bands.push((band, n));
    }
    if bands.is_empty() {
        return Err(FollowUpError::Row {
            path: file,
            row: 2,
            column: "age_band".into(),
            message: "the file has no bands".into(),
        });
    }
    bands.sort_by_key(|(b, _)| b.lo);
    Ok(Population { file, bands })
}

/// How recipient-months are grouped: the age variable (when the catalog has it) and every
/// ordinal, boolean and categorical context variable.
#[derive(Debug, Clone)]
pub struct Grouping {
    /// Catalog index of the numeric age variable.
    pub age: Option<usize>,
    pub bands: Vec<AgeBand>,
    /// The name of the age variable, for the report.
    pub age_name: String,
    /// (catalog index, variable) of the context variables grouped by value.
    pub context: Vec<(usize, ContextVar)>,
}

impl Grouping {
    /// `age_variable` names the catalog's age context; `explicit` says whether the user
    /// named it (then its absence is an error) or it is the default (then age bands are
    /// left out when the catalog has no such variable).
    pub fn new(
        catalog: &Catalog,
        age_variable: &str,
        explicit: bool,
        population: Option<&Population>,
    ) -> Result<Grouping, FollowUpError> {
        let age = catalog.context_index(age_variable);
        match age {
            Some(i) if catalog.contexts[i].kind != ContextKind::Numeric => {
                return Err(FollowUpError::Settings(format!(
                    "--age-variable {age_variable}: the catalog's '{age_variable}' is not numeric"
                )))
            }
            None if explicit || population.is_some() => {
                return Err(FollowUpError::Settings(format!(
                    "{}: the catalog has no context variable '{age_variable}' (it has {})",
                    if explicit {
                        "--age-variable"
                    } else {
                        "--population needs an age"
                    },
                    catalog
                        .contexts
                        .iter()
                        .map(|c| c.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )))
            }
            _ => {}
        }
        let bands = match population {
            Some(p) => p.bands.iter().map(|(b, _)| b.clone()).collect(),
            None => DEFAULT_BANDS
                .iter()
                .map(|b| AgeBand::parse(b).expect("default bands parse"))
                .collect(),
        };
        let context = catalog
            .contexts
            .iter()
            .enumerate()
            .filter(|(_, c)| c.kind != ContextKind::Numeric)
            .map(|(i, c)| (i, c.clone()))
            .collect();
        Ok(Grouping {
            age,
            age_name: age_variable.to_string(),
            bands,
            context,
        })
    }
}

/// One row of `consumption.csv`: a group in one month (or over the whole period, `all`).
#[derive(Debug, Clone, Serialize)]
pub struct GroupRow {
    /// `all`, `age_band`, or a context variable's name.
    pub dimension: String,
    pub group: String,
    /// `YYYY-MM`, or `all` for the whole period reported.
    pub month: String,
    pub recipients: usize,
    pub recipient_months: usize,
    pub performed_hours: f64,
    pub staff_hours: f64,
    pub hours_per_recipient_month: f64,
    pub staff_hours_per_recipient_month: f64,
    /// Inhabitants of the band, when the population file has it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inhabitants: Option<u64>,
    /// Staff hours per inhabitant, scaled to a year from the days the log covers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub staff_hours_per_inhabitant_year: Option<f64>,
}

/// One month of the trend.
#[derive(Debug, Clone, Serialize)]
pub struct TrendPoint {
    pub month: String,
    /// Days of the month the log covers.
    pub days: i32,
    pub recipients: usize,
    pub staff_hours: f64,
    pub staff_hours_per_recipient_month: f64,
    pub staff_hours_80_plus: f64,
    /// Staff hours of recipients aged 80+ per inhabitant aged 80+, at this month's rate
    /// scaled to a year.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub staff_hours_per_inhabitant_80_plus_year: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Consumption {
    /// The context variable read as age, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub age_variable: Option<String>,
    pub bands: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub population_file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inhabitants_80_plus: Option<u64>,
    /// Staff hours of recipients aged 80+ per inhabitant aged 80+ and year, over the whole
    /// period reported.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub staff_hours_per_inhabitant_80_plus_year: Option<f64>,
    /// Days the period reported covers.
    pub days: i32,
    pub rows: Vec<GroupRow>,
    pub trend: Vec<TrendPoint>,
}

#[derive(Default)]
struct RecipientMonthUse {
    wall: f64,
    staff: f64,
    /// Day of the latest visit, and its context (catalog order) at that visit.
    last_day: i32,
    context: Vec<f32>,
}

#[derive(Default, Clone)]
struct Sum {
    months: usize,
    wall: f64,
    staff: f64,
}

impl Sum {
    fn add(&mut self, u: &RecipientMonthUse) {
        self.months += 1;
        self.wall += u.wall;
        self.staff += u.staff;
    }
}

/// What the periods cover: the reported months and, per month, its days inside the log.
pub struct Span<'a> {
    pub months: &'a [Month],
    pub first_day: i32,
    pub last_day: i32,
}

impl Span<'_> {
    fn days_of(&self, m: Month) -> i32 {
        (m.last_day().min(self.last_day) - m.first_day().max(self.first_day) + 1).max(0)
    }
}

/// Sums the visits into recipient-months and groups them.
pub fn consumption<'a>(
    visits: impl Iterator<Item = VisitRow<'a>>,
    grouping: &Grouping,
    population: Option<&Population>,
    period: &Span<'_>,
) -> Consumption {
    let mut use_of: HashMap<(u32, Month), RecipientMonthUse> = HashMap::new();
    for v in visits {
        let m = Month::of_day(v.day);
        if !period.months.contains(&m) {
            continue;
        }
        let u = use_of.entry((v.recipient, m)).or_default();
        u.wall += v.duration;
        u.staff += v.duration * f64::from(v.staff);
        if u.context.is_empty() || v.day >= u.last_day {
            u.last_day = v.day;
            u.context.clear();
            u.context.extend_from_slice(v.context);
        }
    }
    // Keys: (dimension, group, month label); "all" months are added at the end.
    let mut sums: BTreeMap<(String, String, String), Sum> = BTreeMap::new();
    let mut people: BTreeMap<(String, String, String), std::collections::HashSet<u32>> =
        BTreeMap::new();
    let mut add = |dim: &str, group: String, month: &str, r: u32, u: &RecipientMonthUse| {
        for m in [month, "all"] {
            let key = (dim.to_string(), group.clone(), m.to_string());
            sums.entry(key.clone()).or_default().add(u);
            people.entry(key).or_default().insert(r);
        }
    };
    let band_of = |age: f64| -> String {
        grouping
            .bands
            .iter()
            .find(|b| b.contains(age))
            .map_or(OUTSIDE_BANDS.to_string(), |b| b.label.clone())
    };
    let mut keys: Vec<&(u32, Month)> = use_of.keys().collect();
    keys.sort();
    for key in keys {
        let (r, m) = *key;
        let u = &use_of[key];
        let month = m.label();
        add("all", "all".into(), &month, r, u);
        if let Some(i) = grouping.age {
            add("age_band", band_of(f64::from(u.context[i])), &month, r, u);
        }
        for (i, var) in &grouping.context {
            add(
                &var.name,
                var.display_value(f64::from(u.context[*i])),
                &month,
                r,
                u,
            );
        }
    }
    let days = period
        .months
        .iter()
        .map(|&m| period.days_of(m))
        .sum::<i32>();
    let inhabitants = |group: &str| -> Option<u64> {
        population.and_then(|p| {
            p.bands
                .iter()
                .find(|(b, _)| b.label == group)
                .map(|(_, n)| *n)
        })
    };
    let per_year = |staff: f64, n: Option<u64>, days: i32| -> Option<f64> {
        n.filter(|&n| n > 0 && days > 0)
            .map(|n| staff / n as f64 * DAYS_PER_YEAR / f64::from(days))
    };
    let mut rows = Vec::with_capacity(sums.len());
    for ((dim, group, month), s) in &sums {
        let n = people[&(dim.clone(), group.clone(), month.clone())].len();
        let d = if month == "all" {
            days
        } else {
            Month::parse(month).map_or(0, |m| period.days_of(m))
        };
        let inh = (dim == "age_band").then(|| inhabitants(group)).flatten();
        rows.push(GroupRow {
            dimension: dim.clone(),
            group: group.clone(),
            month: month.clone(),
            recipients: n,
            recipient_months: s.months,
            performed_hours: s.wall / 60.0,
            staff_hours: s.staff / 60.0,
            hours_per_recipient_month: s.wall / 60.0 / s.months.max(1) as f64,
            staff_hours_per_recipient_month: s.staff / 60.0 / s.months.max(1) as f64,
            inhabitants: inh,
            staff_hours_per_inhabitant_year: per_year(s.staff / 60.0, inh, d),
        });
    }
    // `all` rows last within each dimension and group, months in order before them.
    rows.sort_by(|a, b| {
        (
            dim_rank(&a.dimension),
            &a.dimension,
            &a.group,
            a.month == "all",
            &a.month,
        )
            .cmp(&(
                dim_rank(&b.dimension),
                &b.dimension,
                &b.group,
                b.month == "all",
                &b.month,
            ))
    });
    let is_80 = |label: &str| {
        grouping
            .bands
            .iter()
            .any(|b| b.label == label && b.is_80_plus())
    };
    let inh80 = population.and_then(Population::inhabitants_80_plus);
    let staff80 = |month: &str| -> f64 {
        rows.iter()
            .filter(|r| r.dimension == "age_band" && r.month == month && is_80(&r.group))
            .map(|r| r.staff_hours)
            .sum()
    };
    let trend = period
        .months
        .iter()
        .map(|&m| {
            let label = m.label();
            let all = rows
                .iter()
                .find(|r| r.dimension == "all" && r.month == label);
            let s80 = staff80(&label);
            let d = period.days_of(m);
            TrendPoint {
                month: label,
                days: d,
                recipients: all.map_or(0, |r| r.recipients),
                staff_hours: all.map_or(0.0, |r| r.staff_hours),
                staff_hours_per_recipient_month: all
                    .map_or(0.0, |r| r.staff_hours_per_recipient_month),
                staff_hours_80_plus: s80,
                staff_hours_per_inhabitant_80_plus_year: per_year(s80, inh80, d),
            }
        })
        .collect();
    Consumption {
        age_variable: grouping.age.map(|_| grouping.age_name.clone()),
        bands: grouping.bands.iter().map(|b| b.label.clone()).collect(),
        population_file: population.map(|p| p.file.clone()),
        inhabitants_80_plus: inh80,
        staff_hours_per_inhabitant_80_plus_year: per_year(staff80("all"), inh80, days),
        days,
        rows,
        trend,
    }
}

fn dim_rank(d: &str) -> u8 {
    match d {
        "all" => 0,
        "age_band" => 1,
        _ => 2,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ramtid_core::calendar::days_from_civil;
    use ramtid_core::slot::Slot;

    fn catalog() -> Catalog {
        Catalog::from_toml(
            r#"
[[insats]]
code = "SHOWER"
category = "personal_care"
schablon_min = 30
[[context]]
name = "age"
kind = "numeric"
min = 0
max = 120
[[context]]
name = "mobility"
kind = "ordinal"
levels = [0, 1, 2]
"#,
            "t",
        )
        .unwrap()
    }

    fn day(y: i64, m: u32, d: u32) -> i32 {
        days_from_civil(y, m, d) as i32
    }

    fn write(name: &str, text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        (dir, p)
    }

    fn row_error(text: &str) -> (u64, String, String) {
        let (_d, p) = write("population.csv", text);
        match read_population(&p) {
            Err(FollowUpError::Row {
                row,
                column,
                message,
                ..
            }) => (row, column, message),
            other => panic!("expected a row error, got {other:?}"),
        }
    }

    #[test]
    fn age_bands_parse_and_contain_whole_years() {
        let b = AgeBand::parse("65-79").unwrap();
        assert!(b.contains(65.0) && b.contains(79.9) && !b.contains(80.0) && !b.contains(64.9));
        let open = AgeBand::parse(" 80+ ").unwrap();
        assert_eq!((open.lo, open.hi, open.label.as_str()), (80, None, "80+"));
        assert!(open.contains(104.0) && !open.contains(f64::NAN) && open.is_80_plus());
        for bad in ["80", "80-", "-80", "x+", "79-65", "65-200", ""] {
            assert!(AgeBand::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn population_problems_name_row_and_column() {
        let (row, col, msg) = row_error("band,inhabitants\n80+,10\n");
        assert_eq!((row, col.as_str()), (1, "age_band"), "{msg}");
        let (row, col, msg) = row_error("age_band,inhabitants\n65-79,100\n80+,many\n");
        assert_eq!((row, col.as_str()), (3, "inhabitants"));
        assert!(msg.contains("'many'"), "{msg}");
        let (row, col, msg) = row_error("age_band,inhabitants\n65-84,100\n80+,10\n");
        assert_eq!((row, col.as_str()), (3, "age_band"));
        assert!(msg.contains("overlaps band '65-84'"), "{msg}");
        let (row, col, _) = row_error("age_band,inhabitants\n65-79,100\n8O+,10\n");
        assert_eq!((row, col.as_str()), (3, "age_band"));
        let (_, _, msg) = row_error("age_band,inhabitants\n");
        assert!(msg.contains("no bands"), "{msg}");
    }

    #[test]
    fn inhabitants_80_plus_only_when_the_bands_can_say() {
        let (_d, p) = write(
            "p.csv",
            "age_band,inhabitants\n90+,40\n80-89,160\n65-79,500\n",
        );
        let pop = read_population(&p).unwrap();
        assert_eq!(pop.inhabitants_80_plus(), Some(200));
        assert_eq!(pop.bands[0].0.label, "65-79", "sorted by age");
        let (_d, p) = write("p.csv", "age_band,inhabitants\n75-84,100\n85+,50\n");
        assert_eq!(read_population(&p).unwrap().inhabitants_80_plus(), None);
    }

    #[test]
    fn grouping_refuses_a_missing_or_non_numeric_age_variable() {
        let c = catalog();
        assert!(Grouping::new(&c, "age", true, None).is_ok());
        let e = Grouping::new(&c, "alder", true, None)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("no context variable 'alder'") && e.contains("age, mobility"),
            "{e}"
        );
        let e = Grouping::new(&c, "mobility", true, None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("not numeric"), "{e}");
        // The default name, absent, leaves age bands out instead of failing.
        let g = Grouping::new(&c, "alder", false, None).unwrap();
        assert_eq!(g.age, None);
    }

    /// Two recipients over January and February 2025, by hand.
    #[test]
    fn hours_by_band_and_group_and_per_inhabitant_by_hand() {
        let c = catalog();
        let (_d, p) = write("p.csv", "age_band,inhabitants\n65-79,1000\n80+,200\n");
        let pop = read_population(&p).unwrap();
        let g = Grouping::new(&c, "age", false, Some(&pop)).unwrap();
        // (recipient, day, minutes, staff, age, mobility)
        let rows: Vec<(u32, i32, f64, u8, [f32; 2])> = vec![
            // R0, 84 years: January 60 + 30×2 staff; mobility 1 then 2 (last visit wins).
            (0, day(2025, 1, 3), 60.0, 1, [84.0, 1.0]),
            (0, day(2025, 1, 20), 30.0, 2, [84.0, 2.0]),
            // February: 120 min at mobility 2.
            (0, day(2025, 2, 10), 120.0, 1, [84.0, 2.0]),
            // R1, 70 years: January 90, mobility 0.
            (1, day(2025, 1, 31), 90.0, 1, [70.0, 0.0]),
            // R1 in February, turned 80 (an age of 80.4: in the 80+ band from this month).
            (1, day(2025, 2, 28), 30.0, 1, [80.4, 0.0]),
        ];
        let visits = rows.iter().map(|(r, d, min, staff, ctx)| VisitRow {
            recipient: *r,
            unit: 0,
            day: *d,
            slot: Slot::Morning,
            staff: *staff,
            duration: *min,
            tasks: &[],
            context: ctx,
        });
        let months = [
            Month::of_day(day(2025, 1, 1)),
            Month::of_day(day(2025, 2, 1)),
        ];
        let c = consumption(
            visits,
            &g,
            Some(&pop),
            &Span {
                months: &months,
                first_day: day(2025, 1, 1),
                last_day: day(2025, 2, 28),
            },
        );
        let get = |dim: &str, group: &str, month: &str| {
            c.rows
                .iter()
                .find(|r| r.dimension == dim && r.group == group && r.month == month)
                .unwrap_or_else(|| panic!("no row {dim}/{group}/{month}"))
        };
        // All, January: R0 90 wall / 120 staff; R1 90 → 180 wall, 210 staff minutes.
        let j = get("all", "all", "2025-01");
        assert_eq!((j.recipients, j.recipient_months), (2, 2));
        assert!((j.performed_hours - 3.0).abs() < 1e-12);
        assert!((j.staff_hours - 3.5).abs() < 1e-12);
        assert!((j.staff_hours_per_recipient_month - 1.75).abs() < 1e-12);
        // 80+ over the period: R0 Jan (2 h staff) + R0 Feb (2 h) + R1 Feb (0.5 h) = 4.5 h,
        // over 59 days, per 200 inhabitants: 4.5 / 200 × 365.25 / 59.
        let a = get("age_band", "80+", "all");
        assert_eq!((a.recipients, a.recipient_months), (2, 3));
        assert!((a.staff_hours - 4.5).abs() < 1e-12);
        assert_eq!(a.inhabitants, Some(200));
        let want = 4.5 / 200.0 * 365.25 / 59.0;
        assert!((a.staff_hours_per_inhabitant_year.unwrap() - want).abs() < 1e-12);
        assert!((c.staff_hours_per_inhabitant_80_plus_year.unwrap() - want).abs() < 1e-12);
        assert_eq!(c.inhabitants_80_plus, Some(200));
        let y = get("age_band", "65-79", "2025-01");
        assert_eq!(y.recipient_months, 1);
        assert!((y.staff_hours - 1.5).abs() < 1e-12);
        // Mobility: R0's January counts at level 2 (its last visit), not 1.
        assert!(!c
            .rows
            .iter()
            .any(|r| r.dimension == "mobility" && r.group == "1"));
        let m2 = get("mobility", "2", "all");
        assert_eq!((m2.recipients, m2.recipient_months), (1, 2));
        assert!((m2.staff_hours - 4.0).abs() < 1e-12);
        // The trend: February's 80+ rate is (2 + 0.5) h over 28 days.
        assert_eq!(c.trend.len(), 2);
        let feb = &c.trend[1];
        assert_eq!((feb.month.as_str(), feb.days), ("2025-02", 28));
        assert!((feb.staff_hours_80_plus - 2.5).abs() < 1e-12);
        let want = 2.5 / 200.0 * 365.25 / 28.0;
        assert!((feb.staff_hours_per_inhabitant_80_plus_year.unwrap() - want).abs() < 1e-12);
        // Rows are ordered: all, age bands, then context; months before `all`.
        assert_eq!(c.rows[0].dimension, "all");
        assert_eq!(c.rows[2].month, "all");
    }
}
