//! A synthetic municipality: visit logs with a known truth.
//!
//! Everything written here is **synthetic**. Two made-up municipalities (`nordstad`,
//! `sjobygd`) with different catalogs, context schemas and true parameters let training,
//! planning and estimation be tested end to end, and generalisation be tested with no code
//! change. The mechanisms and every parameter are documented in `training/SIMULATION.md`
//! and written to `simulation.json` beside the data.
//!
//! [`simulate`] writes, into one directory:
//! - `catalog.toml`: the municipality's catalog (data contract, section 2);
//! - `visits.csv`: the logged visits of the training recipients, with slow teams and log
//!   faults (data contract, section 1);
//! - `needs.jsonl`: one needs object per held-out recipient (data contract, section 4);
//! - `truth.csv`: the held-out recipients' true and best achievable weekly minutes;
//! - `heldout_visits.csv`: two weeks of the held-out recipients' efficient visits, with
//!   their true means;
//! - `simulation.json`: all parameters, for reference.

mod calendar;
pub mod ibic;
mod model;
mod population;
mod profile;
pub mod random;
mod sink;
#[cfg(test)]
mod tests;

use model::{plan_cycle, resolved_savings, visit_mean, PlanNeed, CYCLE_DAYS};
use population::{draw_person, Person, RECIPIENT_SIGMA};
use profile::{category_index, profile, Profile, BETA_ROWS};
use ramtid_core::catalog::{Catalog, ContextKind, ContextVar};
use ramtid_core::needs::{Need, NeedsSet};
use ramtid_core::slot::Slot;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, StandardNormal};
use serde::Serialize;
use serde_json::{json, Value};
use sink::Sink;
use std::fmt::{self, Write as _};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// Multiplicative visit noise: lognormal with mean exactly 1 and this σ of its log.
pub const VISIT_SIGMA: f64 = 0.20;
/// Share of logged visits whose check-out was forgotten (duration 240–900 min).
pub const FORGOTTEN_CHECKOUT_RATE: f64 = 0.004;
/// Share of logged visits with a 0–1 minute check-in/out error (duration 0.0–1.0).
pub const SHORT_CHECKIN_RATE: f64 = 0.010;
/// Share of logged visits written twice (same row, same visit_id).
pub const DUPLICATE_ROW_RATE: f64 = 0.005;
/// Share of logged visits with a code missing from the catalog appended to `tasks`.
pub const UNKNOWN_CODE_RATE: f64 = 0.003;
/// Codes of an old catalog that turn up in the log.
pub const LEGACY_CODES: [&str; 3] = ["OLD_HOMECARE", "OLD_SERVICE", "TEMP_EXTRA"];
/// Share of teams that are slow; their logged durations are efficient × a multiplier.
pub const SLOW_TEAM_SHARE: f64 = 0.30;
/// Range of a slow team's multiplier (efficient teams: exactly 1.0).
pub const SLOW_MULTIPLIER: (f64, f64) = (1.2, 1.4);
/// Share of training recipients served by a team of a neighbouring area (team catchments
/// overlap areas, as real districts do not follow the area variable exactly).
pub const NEIGHBOUR_TEAM_SHARE: f64 = 0.25;
/// Weeks of held-out visits written to `heldout_visits.csv`.
pub const HELDOUT_WEEKS: usize = 2;
/// The log starts on this Monday.
pub const START_DATE: &str = "2025-03-03";

/// The synthetic municipalities.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Municipality {
    /// A town with suburbs and a rural fringe; ~30 codes.
    #[default]
    Nordstad,
    /// A sparsely populated lake and forest municipality; ~25 codes.
    Sjobygd,
}

impl Municipality {
    pub const ALL: [Municipality; 2] = [Municipality::Nordstad, Municipality::Sjobygd];

    pub fn as_str(self) -> &'static str {
        match self {
            Municipality::Nordstad => "nordstad",
            Municipality::Sjobygd => "sjobygd",
        }
    }
}

impl fmt::Display for Municipality {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Municipality {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_lowercase().as_str() {
            "nordstad" => Ok(Municipality::Nordstad),
            "sjobygd" | "sjöbygd" => Ok(Municipality::Sjobygd),
            other => Err(format!(
                "unknown municipality '{other}'; expected nordstad or sjobygd"
            )),
        }
    }
}

/// What to simulate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimConfig {
    pub municipality: Municipality,
    pub seed: u64,
    /// Recipients whose visits are logged in `visits.csv`.
    pub recipients: usize,
    /// Weeks of log (need not be a multiple of four).
    pub weeks: usize,
    /// Further recipients, not in `visits.csv`, written to `needs.jsonl`, `truth.csv` and
    /// `heldout_visits.csv`.
    pub holdout_recipients: usize,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            municipality: Municipality::Nordstad,
            seed: 42,
            recipients: 2000,
            weeks: 8,
            holdout_recipients: 500,
        }
    }
}

/// Log faults written to `visits.csv`, per kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct FaultCounts {
    /// Visits logged with a forgotten check-out (240–900 minutes).
    pub forgotten_checkout: u64,
    /// Visits logged with a 0–1 minute check-in/out error.
    pub short_checkin: u64,
    /// Extra rows: a visit written a second time, visit_id included.
    pub duplicate_row: u64,
    /// Visits with a code missing from the catalog in `tasks`.
    pub unknown_code: u64,
}

impl FaultCounts {
    pub fn total(&self) -> u64 {
        self.forgotten_checkout + self.short_checkin + self.duplicate_row + self.unknown_code
    }
}

/// What [`simulate`] wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct SimSummary {
    /// Distinct visits in `visits.csv`.
    pub visits_written: u64,
    /// Data rows in `visits.csv` (visits plus duplicated rows).
    pub rows_written: u64,
    pub recipients: usize,
    pub holdout_recipients: usize,
    pub faults: FaultCounts,
    /// The files written, in the order written.
    pub files: Vec<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("cannot create directory {}: {source}", path.display())]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid simulation settings: {0}")]
    Config(String),
}

impl From<crate::sink::WriteFailed> for SimError {
    fn from(e: crate::sink::WriteFailed) -> SimError {
        SimError::Write {
            path: e.path,
            source: e.source,
        }
    }
}

/// The catalog of a synthetic municipality (what `simulate` writes as `catalog.toml`).
pub fn catalog_for(m: Municipality) -> Catalog {
    profile(m).catalog()
}

/// Most weeks of log accepted (ten years).
pub const MAX_WEEKS: usize = 520;

/// Simulates a municipality into `out_dir` (created if needed). Deterministic given
/// `cfg`: the same settings give byte-identical files.
pub fn simulate(cfg: &SimConfig, out_dir: &Path) -> Result<SimSummary, SimError> {
    if cfg.weeks == 0 || cfg.weeks > MAX_WEEKS {
        return Err(SimError::Config(format!(
            "weeks must be from 1 to {MAX_WEEKS}, not {}",
            cfg.weeks
        )));
    }
    std::fs::create_dir_all(out_dir).map_err(|source| SimError::CreateDir {
        path: out_dir.to_path_buf(),
        source,
    })?;
    let p = profile(cfg.municipality);
    let catalog = p.catalog();
    let savings = resolved_savings(&p);
    let teams = draw_teams(&p, cfg.seed);
    let mut files = Vec::new();

    let mut sink = Sink::create(out_dir.join("catalog.toml"))?;
    sink.put(&catalog.to_toml())?;
    files.push(sink.finish()?);

    // ---- visits.csv: the training recipients' log ----
    let header = visit_header(&catalog);
    let dates: Vec<String> = (0..cfg.weeks * 7)
        .map(|d| calendar::date_string(d as i64))
        .collect();
    let mut sink = CsvSink::create(out_dir.join("visits.csv"))?;
    sink.row(&header)?;
    let mut faults = FaultCounts::default();
    let mut visits_written = 0u64;
    let mut rows_written = 0u64;
    let mut rec = Row::default();
    for i in 0..cfg.recipients {
        let mut rng = stream(cfg.seed, STREAM_POPULATION, i as u64);
        let person = draw_person(&p, &mut rng);
        let team = &teams[assign_team(&teams, person.area(), &mut rng)];
        let prep = prepare(&p, &savings, &person);
        let rid = recipient_id(&p, i);
        let ctx = ctx_csv(&catalog.contexts, &person.context);
        let mut rng = stream(cfg.seed, STREAM_LOG, i as u64);
        for (day, date) in dates.iter().enumerate() {
            let cd = day % CYCLE_DAYS;
            for v in &prep.visits[prep.day_start[cd]..prep.day_start[cd + 1]] {
                let start = v.jittered_start(&mut rng);
                let efficient = v.best * person.effect * visit_noise(&mut rng);
                let mut duration = efficient * team.multiplier;
                let fault: f64 = rng.gen();
                if fault < FORGOTTEN_CHECKOUT_RATE {
                    duration = rng.gen_range(240.0..900.0);
                    faults.forgotten_checkout += 1;
                } else if fault < FORGOTTEN_CHECKOUT_RATE + SHORT_CHECKIN_RATE {
                    duration = rng.gen_range(0.0..1.0);
                    faults.short_checkin += 1;
                }
                visits_written += 1;
                rec.clear();
                rec.cell(format_args!("V{visits_written:08}"));
                rec.text(&rid);
                rec.text(&team.id);
                rec.cell(format_args!(
                    "{date}T{:02}:{:02}:00",
                    start / 60,
                    start % 60
                ));
                rec.cell(format_args!("{duration:.1}"));
                rec.cell(format_args!("{}", v.staff));
                if rng.gen::<f64>() < UNKNOWN_CODE_RATE {
                    let legacy = LEGACY_CODES[rng.gen_range(0..LEGACY_CODES.len())];
                    rec.cell(format_args!("{}|{legacy}", v.tasks));
                    faults.unknown_code += 1;
                } else {
                    rec.text(&v.tasks);
                }
                for c in &ctx {
                    rec.text(c);
                }
                sink.row(&rec.0)?;
                rows_written += 1;
                if rng.gen::<f64>() < DUPLICATE_ROW_RATE {
                    sink.row(&rec.0)?;
                    rows_written += 1;
                    faults.duplicate_row += 1;
                }
            }
        }
    }
    files.push(sink.finish()?);

    // ---- held-out recipients: needs, truth and two weeks of efficient visits ----
    let mut needs_out = Sink::create(out_dir.join("needs.jsonl"))?;
    let mut truth_out = CsvSink::create(out_dir.join("truth.csv"))?;
    truth_out.row(&csv::ByteRecord::from(vec![
        "recipient_id",
        "true_weekly_min",
        "best_weekly_min",
        "true_weekly_staff_min",
        "best_weekly_staff_min",
        "schablon_weekly_min",
        "visits_per_week",
    ]))?;
    let mut held_out = CsvSink::create(out_dir.join("heldout_visits.csv"))?;
    let mut held_header = header.clone();
    for c in ["efficient_min", "expected_min", "best_min"] {
        held_header.push_field(c.as_bytes());
    }
    held_out.row(&held_header)?;
    let mut held_visits = 0u64;
    let held_dates: Vec<String> = (0..HELDOUT_WEEKS * 7)
        .map(|d| calendar::date_string(d as i64))
        .collect();
    for j in 0..cfg.holdout_recipients {
        let index = cfg.recipients + j;
        let mut rng = stream(cfg.seed, STREAM_POPULATION, index as u64);
        let person = draw_person(&p, &mut rng);
        let efficient_teams: Vec<usize> = (0..teams.len())
            .filter(|&t| teams[t].area == person.area() && teams[t].multiplier == 1.0)
            .collect();
        let team = &teams[efficient_teams[rng.gen_range(0..efficient_teams.len())]];
        let prep = prepare(&p, &savings, &person);
        let rid = recipient_id(&p, index);

        let set = needs_set(&p, &catalog, &rid, &person);
        needs_out.put(&serde_json::to_string(&set).expect("needs serialize"))?;
        needs_out.put("\n")?;

        let weeks_per_cycle = (CYCLE_DAYS / 7) as f64;
        let best: f64 = prep.visits.iter().map(|v| v.best).sum::<f64>() / weeks_per_cycle;
        let best_staff: f64 = prep
            .visits
            .iter()
            .map(|v| v.best * f64::from(v.staff))
            .sum::<f64>()
            / weeks_per_cycle;
        let schablon: f64 = person
            .needs
            .iter()
            .map(|n| p.codes[n.code].schablon_min * n.per_week)
            .sum();
        rec.clear();
        rec.text(&rid);
        for x in [
            best * person.effect,
            best,
            best_staff * person.effect,
            best_staff,
            schablon,
            prep.visits.len() as f64 / weeks_per_cycle,
        ] {
            rec.cell(format_args!("{x:.3}"));
        }
        truth_out.row(&rec.0)?;

        let ctx = ctx_csv(&catalog.contexts, &person.context);
        let mut rng = stream(cfg.seed, STREAM_HELDOUT, index as u64);
        for (day, date) in held_dates.iter().enumerate() {
            let cd = day % CYCLE_DAYS;
            for v in &prep.visits[prep.day_start[cd]..prep.day_start[cd + 1]] {
                let start = v.jittered_start(&mut rng);
                let expected = v.best * person.effect;
                let efficient = expected * visit_noise(&mut rng);
                held_visits += 1;
                rec.clear();
                rec.cell(format_args!("H{held_visits:08}"));
                rec.text(&rid);
                rec.text(&team.id);
                rec.cell(format_args!(
                    "{date}T{:02}:{:02}:00",
                    start / 60,
                    start % 60
                ));
                rec.cell(format_args!("{efficient:.1}"));
                rec.cell(format_args!("{}", v.staff));
                rec.text(&v.tasks);
                for c in &ctx {
                    rec.text(c);
                }
                rec.cell(format_args!("{efficient:.3}"));
                rec.cell(format_args!("{expected:.3}"));
                rec.cell(format_args!("{:.3}", v.best));
                held_out.row(&rec.0)?;
            }
        }
    }
    files.push(needs_out.finish()?);
    files.push(truth_out.finish()?);
    files.push(held_out.finish()?);

    let summary = SimSummary {
        visits_written,
        rows_written,
        recipients: cfg.recipients,
        holdout_recipients: cfg.holdout_recipients,
        faults,
        files: Vec::new(),
    };
    let mut sink = Sink::create(out_dir.join("simulation.json"))?;
    let doc = parameters_json(cfg, &p, &teams, &summary, held_visits);
    sink.put(&serde_json::to_string_pretty(&doc).expect("parameters serialize"))?;
    sink.put("\n")?;
    files.push(sink.finish()?);
    Ok(SimSummary { files, ..summary })
}

// ---------------------------------------------------------------------------------------
// Random streams: one per purpose and recipient, so that a recipient's draws do not depend
// on how many recipients come before it or on the other files.

const STREAM_POPULATION: u64 = 1;
const STREAM_LOG: u64 = 2;
const STREAM_HELDOUT: u64 = 3;
const STREAM_TEAMS: u64 = 4;

fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

fn stream(seed: u64, purpose: u64, index: u64) -> StdRng {
    let s = splitmix64(splitmix64(seed ^ purpose.rotate_left(48)) ^ index);
    StdRng::seed_from_u64(s)
}

fn visit_noise<R: Rng>(rng: &mut R) -> f64 {
    let z: f64 = StandardNormal.sample(rng);
    (VISIT_SIGMA * z - VISIT_SIGMA * VISIT_SIGMA / 2.0).exp()
}

// ---------------------------------------------------------------------------------------
// Teams

#[derive(Debug, Clone)]
struct Team {
    id: String,
    area: usize,
    multiplier: f64,
}

/// A training recipient's team: one of the own area's teams, or with probability
/// [`NEIGHBOUR_TEAM_SHARE`] one of a neighbouring area's (area labels in catalog order form
/// a chain), so that team catchments overlap areas.
fn assign_team<R: Rng>(teams: &[Team], area: usize, rng: &mut R) -> usize {
    let areas = teams.iter().map(|t| t.area).max().unwrap_or(0) + 1;
    let mut target = area;
    if rng.gen::<f64>() < NEIGHBOUR_TEAM_SHARE {
        let neighbours: Vec<usize> = [area.wrapping_sub(1), area + 1]
            .into_iter()
            .filter(|&a| a < areas)
            .collect();
        if !neighbours.is_empty() {
            target = neighbours[rng.gen_range(0..neighbours.len())];
        }
    }
    let candidates: Vec<usize> = (0..teams.len())
        .filter(|&t| teams[t].area == target)
        .collect();
    candidates[rng.gen_range(0..candidates.len())]
}

/// Teams per area; round(30 %) of them slow (multiplier 1.2–1.4, three decimals), never
/// the last efficient team of an area.
fn draw_teams(p: &Profile, seed: u64) -> Vec<Team> {
    let mut rng = stream(seed, STREAM_TEAMS, 0);
    let mut teams = Vec::new();
    for (area, &n) in p.population.teams_per_area.iter().enumerate() {
        for _ in 0..n {
            teams.push(Team {
                id: format!("{}-T{:02}", p.id_prefix, teams.len() + 1),
                area,
                multiplier: 1.0,
            });
        }
    }
    let slow = (SLOW_TEAM_SHARE * teams.len() as f64).round() as usize;
    let mut order: Vec<usize> = (0..teams.len()).collect();
    for i in (1..order.len()).rev() {
        order.swap(i, rng.gen_range(0..=i));
    }
    let mut made = 0;
    for t in order {
        if made == slow {
            break;
        }
        let area = teams[t].area;
        let efficient_left = teams
            .iter()
            .filter(|o| o.area == area && o.multiplier == 1.0)
            .count();
        if efficient_left > 1 {
            let m: f64 = rng.gen_range(SLOW_MULTIPLIER.0..SLOW_MULTIPLIER.1);
            teams[t].multiplier = (m * 1000.0).round() / 1000.0;
            made += 1;
        }
    }
    teams
}

// ---------------------------------------------------------------------------------------
// A recipient's cycle of visits, ready to be written

/// Check-in windows per slot, in minutes after midnight; all inside the slot's hours as
/// `Slot::from_hour` reads them.
fn window(slot: Slot) -> (u32, u32) {
    match slot {
        Slot::Morning => (6 * 60 + 45, 9 * 60 + 45),
        Slot::Midday => (10 * 60 + 30, 13 * 60 + 40),
        Slot::Afternoon => (14 * 60, 16 * 60 + 40),
        Slot::Evening => (17 * 60 + 30, 21 * 60 + 30),
        Slot::Night => (22 * 60, 23 * 60 + 50),
    }
}

struct CycleVisit {
    slot: Slot,
    tasks: String,
    staff: u8,
    /// Efficient mean minutes without the recipient effect.
    best: f64,
    /// Planned check-in, minutes after midnight.
    start: u32,
}

impl CycleVisit {
    /// The planned check-in ± 6 minutes, kept inside the slot's window.
    fn jittered_start<R: Rng>(&self, rng: &mut R) -> u32 {
        let (lo, hi) = window(self.slot);
        let j: i64 = rng.gen_range(-6..=6);
        (i64::from(self.start) + j).clamp(i64::from(lo), i64::from(hi)) as u32
    }
}

struct Prepared {
    visits: Vec<CycleVisit>,
    /// Visits of cycle day d are `visits[day_start[d]..day_start[d + 1]]`.
    day_start: [usize; CYCLE_DAYS + 1],
}

fn prepare(p: &Profile, savings: &[(usize, usize, f64)], person: &Person) -> Prepared {
    let factors = p.factors(&p.encode(&person.context));
    let plan = plan_cycle(p, &person.needs);
    let mut visits = Vec::with_capacity(plan.len());
    let mut day_start = [0usize; CYCLE_DAYS + 1];
    let mut previous: Option<(u8, Slot, u32)> = None;
    for v in plan {
        let best = visit_mean(p, savings, &factors, v.slot, &v.tasks, v.staff);
        let (lo, hi) = window(v.slot);
        let start = match previous {
            Some((day, slot, end)) if day == v.day && slot == v.slot => (end + 10).min(hi),
            _ => lo + (person.route * 0.5 * f64::from(hi - lo)) as u32,
        };
        previous = Some((v.day, v.slot, start + best.round() as u32));
        day_start[usize::from(v.day) + 1] += 1;
        let tasks: Vec<&str> = v.tasks.iter().map(|&t| p.codes[t].code).collect();
        visits.push(CycleVisit {
            slot: v.slot,
            tasks: tasks.join("|"),
            staff: v.staff,
            best,
            start,
        });
    }
    for d in 0..CYCLE_DAYS {
        day_start[d + 1] += day_start[d];
    }
    Prepared { visits, day_start }
}

// ---------------------------------------------------------------------------------------
// Formats

fn recipient_id(p: &Profile, index: usize) -> String {
    format!("{}-{:06}", p.id_prefix, index + 1)
}

fn visit_header(catalog: &Catalog) -> csv::ByteRecord {
    let mut h = csv::ByteRecord::from(vec![
        "visit_id",
        "recipient_id",
        "unit_id",
        "start",
        "duration_min",
        "staff",
        "tasks",
    ]);
    for c in &catalog.contexts {
        h.push_field(c.column().as_bytes());
    }
    h
}

/// The ctx_ cells of a recipient.
fn ctx_csv(vars: &[ContextVar], values: &[f64]) -> Vec<String> {
    vars.iter()
        .zip(values)
        .map(|(var, &x)| var.display_value(x))
        .collect()
}

/// One CSV row being built, reused from row to row (the visit log has millions).
#[derive(Default)]
struct Row(csv::ByteRecord, String);

impl Row {
    fn clear(&mut self) {
        self.0.clear();
    }
    fn text(&mut self, s: &str) {
        self.0.push_field(s.as_bytes());
    }
    fn cell(&mut self, f: fmt::Arguments<'_>) {
        self.1.clear();
        let _ = self.1.write_fmt(f);
        self.0.push_field(self.1.as_bytes());
    }
}

/// A CSV file being written (`csv::Writer`: quoting as RFC 4180 wants it).
struct CsvSink {
    path: PathBuf,
    w: csv::Writer<File>,
}

impl CsvSink {
    fn create(path: PathBuf) -> Result<CsvSink, SimError> {
        match File::create(&path) {
            Ok(f) => Ok(CsvSink {
                w: csv::WriterBuilder::new()
                    .buffer_capacity(1 << 20)
                    .from_writer(f),
                path,
            }),
            Err(source) => Err(SimError::Write { path, source }),
        }
    }

    fn row(&mut self, r: &csv::ByteRecord) -> Result<(), SimError> {
        self.w.write_byte_record(r).map_err(|e| SimError::Write {
            path: self.path.clone(),
            source: e.into(),
        })
    }

    fn finish(mut self) -> Result<PathBuf, SimError> {
        match self.w.flush() {
            Ok(()) => Ok(self.path),
            Err(source) => Err(SimError::Write {
                path: self.path,
                source,
            }),
        }
    }
}

fn ctx_json(var: &ContextVar, x: f64) -> Value {
    match var.kind {
        ContextKind::Boolean => Value::Bool(x != 0.0),
        ContextKind::Categorical => Value::String(var.display_value(x)),
        ContextKind::Numeric | ContextKind::Ordinal => {
            if x.fract() == 0.0 {
                Value::from(x as i64)
            } else {
                Value::from(x)
            }
        }
    }
}

/// The needs object of a held-out recipient: slot only where it is not the code's default
/// slot, staff only where it is 2.
fn needs_set(p: &Profile, catalog: &Catalog, rid: &str, person: &Person) -> NeedsSet {
    let context = catalog
        .contexts
        .iter()
        .zip(&person.context)
        .map(|(var, &x)| (var.name.clone(), ctx_json(var, x)))
        .collect();
    let needs = person
        .needs
        .iter()
        .map(|n: &PlanNeed| Need {
            code: p.codes[n.code].code.to_string(),
            per_week: n.per_week,
            slot: n
                .slot
                .filter(|s| *s != p.codes[n.code].slots[0])
                .map(|s| s.as_str().to_string()),
            staff: (n.staff >= 2).then_some(2),
            ..Default::default()
        })
        .collect();
    NeedsSet {
        recipient_id: rid.to_string(),
        context,
        needs,
    }
}

fn parameters_json(
    cfg: &SimConfig,
    p: &Profile,
    teams: &[Team],
    summary: &SimSummary,
    heldout_visit_rows: u64,
) -> Value {
    let features = p.features();
    let beta: serde_json::Map<String, Value> = BETA_ROWS
        .iter()
        .zip(&p.beta)
        .map(|(row, b)| {
            let per_feature: serde_json::Map<String, Value> = features
                .iter()
                .zip(b)
                .map(|(f, v)| (f.clone(), json!(v)))
                .collect();
            (row.to_string(), Value::Object(per_feature))
        })
        .collect();
    let codes: Vec<Value> = p
        .codes
        .iter()
        .map(|c| {
            json!({
                "code": c.code,
                "name": c.name,
                "category": c.category.as_str(),
                "category_row": category_index(c.category),
                "schablon_min": c.schablon_min,
                "base_min": c.base_min,
                "preferred_slots": c.slots.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
                "joins": c.joins,
            })
        })
        .collect();
    let area = &p.contexts[profile::CTX_AREA];
    let pop = &p.population;
    json!({
        "synthetic": true,
        "note": "Synthetic data from ramtid::simulate. No real persons, municipalities or logs.",
        "municipality": p.municipality.as_str(),
        "seed": cfg.seed,
        "recipients": cfg.recipients,
        "holdout_recipients": cfg.holdout_recipients,
        "weeks": cfg.weeks,
        "heldout_weeks": HELDOUT_WEEKS,
        "start_date": START_DATE,
        "cycle_days": CYCLE_DAYS,
        "context_encoding": {
            "features": features,
            "numeric": "(x - 80) / 10",
            "ordinal": "level value",
            "boolean": "0 / 1",
            "categorical": "one-hot, first label is the baseline",
        },
        "beta": beta,
        "overhead_min": Slot::ALL.iter().map(|s| (s.as_str().to_string(), json!(p.overhead_min[s.index()]))).collect::<serde_json::Map<_, _>>(),
        "staff2_extra_min": p.staff2_extra_min,
        "min_visit_mean_min": model::MIN_VISIT_MEAN,
        "pair_savings": p.savings.iter().map(|(a, b, s)| json!({"a": a, "b": b, "saving_min": s})).collect::<Vec<_>>(),
        "codes": codes,
        "recipient_effect": {"distribution": "exp(u), u ~ N(-sigma^2/2, sigma^2)", "sigma": RECIPIENT_SIGMA},
        "visit_noise": {"distribution": "lognormal, mean 1", "sigma": VISIT_SIGMA},
        "teams": teams.iter().map(|t| json!({
            "unit_id": t.id,
            "area": area.labels[t.area],
            "multiplier": t.multiplier,
            "slow": t.multiplier != 1.0,
        })).collect::<Vec<_>>(),
        "slow_team_share": SLOW_TEAM_SHARE,
        "neighbour_team_share": NEIGHBOUR_TEAM_SHARE,
        "slow_multiplier_range": [SLOW_MULTIPLIER.0, SLOW_MULTIPLIER.1],
        "population": {
            "age": format!("65 + 35 * Beta({}, {}), rounded", pop.age_beta.0, pop.age_beta.1),
            "lives_alone_p_at_83": pop.lives_alone_p,
            "area_variable": area.name,
            "area_shares": area.labels.iter().zip(pop.area_shares).map(|(l, s)| (l.clone(), json!(s))).collect::<serde_json::Map<_, _>>(),
            "language_p": area.labels.iter().zip(pop.language_p).map(|(l, s)| (l.clone(), json!(s))).collect::<serde_json::Map<_, _>>(),
            "cognition_cuts": pop.cognition_cuts,
            "mobility_cuts": pop.mobility_cuts,
            "staff2_p_top_mobility": pop.staff2_p_top,
        },
        "fault_rates": {
            "forgotten_checkout": FORGOTTEN_CHECKOUT_RATE,
            "short_checkin": SHORT_CHECKIN_RATE,
            "duplicate_row": DUPLICATE_ROW_RATE,
            "unknown_code": UNKNOWN_CODE_RATE,
            "legacy_codes": LEGACY_CODES,
        },
        "fault_counts": summary.faults,
        "visits_written": summary.visits_written,
        "rows_written": summary.rows_written,
        "heldout_visit_rows": heldout_visit_rows,
    })
}
