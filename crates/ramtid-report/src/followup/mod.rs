//! Follow-up of ordered against performed time (the Solna and Kalmar loops), and the
//! provider comparison adjusted for case mix.
//!
//! Inputs: a model, what was ordered per recipient ([`orders`]) and a visit log in the data
//! contract's format, read and cleaned by the same reader and rules as training
//! (`ramtid_core::visits`, the model manifest's `cleaning`): faults are counted, left out
//! and reported, never summed.
//!
//! Per recipient and calendar month ([`recipients`]): ordered minutes (weekly minutes × days
//! in force ÷ 7, counting only the days the log covers), performed wall-clock and staff
//! minutes, visits, ratio, [`band::Band`], months in a row outside the band, and a
//! `reassess` flag when the run reaches `reassess_after` months. Per unit ([`providers`]):
//! performed ÷ the model's efficient minutes for exactly those visits, with a bootstrap
//! interval over recipients. Consumption ([`consumption`]): hours by age band and context
//! group, and per inhabitant aged 80+ and year with a population file (KPB). The goals the
//! orders in force serve (the needs' `goal_id`s, from a needs.jsonl or the history) are kept
//! in [`orders::Orders::goals`] and written as `goals.csv`, for a goal premium paid only on
//! goals ordered.

pub mod band;
pub mod consumption;
pub mod html;
pub mod month;
pub mod orders;
pub mod output;
pub mod providers;
pub mod recipients;
pub mod same_time;

use ramtid_core::model::Model;
use ramtid_core::visits::{read_visit_log_from_reporting, LogError, ReadOptions, ReadReport};
use serde::Serialize;
use std::path::{Path, PathBuf};
use thiserror::Error;

pub use band::Band;
pub use month::Month;
// The model a follow-up used, named as an evaluation names it.
pub use crate::evaluate::ModelInfo;

pub const FORMAT: &str = "ramtid-followup/1";
/// Months in a row outside the band before a recipient is flagged for reassessment.
pub const DEFAULT_REASSESS_AFTER: u32 = 2;
pub const DEFAULT_TOLERANCE: f64 = 0.10;
pub const DEFAULT_BOOTSTRAP: usize = 400;
pub const DEFAULT_SEED: u64 = 20_250_303;
pub const DEFAULT_AGE_VARIABLE: &str = "age";

#[derive(Debug, Error)]
pub enum FollowUpError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}, row {row}, column '{column}': {message}")]
    Row {
        path: String,
        row: u64,
        column: String,
        message: String,
    },
    #[error(transparent)]
    Log(#[from] LogError),
    #[error("{0}")]
    Settings(String),
    #[error("{0}")]
    Nothing(String),
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl ramtid_core::error::ErrorKind for FollowUpError {
    fn kind(&self) -> ramtid_core::error::Kind {
        use ramtid_core::error::Kind;
        match self {
            // The caller's files and settings.
            FollowUpError::Io { .. } | FollowUpError::Row { .. } | FollowUpError::Settings(_) => {
                Kind::InvalidArgument
            }
            FollowUpError::Log(e) => e.kind(),
            // Well-formed inputs that hold nothing to follow up.
            FollowUpError::Nothing(_) => Kind::FailedPrecondition,
            FollowUpError::Write { .. } => Kind::Internal,
        }
    }
}

impl FollowUpError {
    pub(crate) fn csv(path: &str, e: csv::Error) -> FollowUpError {
        match crate::csv_fault::CsvFault::from(e) {
            crate::csv_fault::CsvFault::Io(source) => FollowUpError::Io {
                path: path.to_string(),
                source,
            },
            crate::csv_fault::CsvFault::Row { line, message } => FollowUpError::Row {
                path: path.to_string(),
                row: line,
                column: "(row)".into(),
                message,
            },
        }
    }
}

/// Settings of a follow-up; [`FollowUpOptions::check`] before any file is read.
#[derive(Debug, Clone)]
pub struct FollowUpOptions {
    pub tolerance: f64,
    /// Report only this month (runs of months outside are still counted from the start of
    /// the log).
    pub month: Option<Month>,
    pub reassess_after: u32,
    pub bootstrap: usize,
    pub seed: u64,
    /// The numeric context variable read as age, for the consumption's age bands.
    pub age_variable: String,
    /// Whether the user named `age_variable` (then a catalog without it is an error).
    pub age_variable_given: bool,
}

impl Default for FollowUpOptions {
    fn default() -> Self {
        FollowUpOptions {
            tolerance: DEFAULT_TOLERANCE,
            month: None,
            reassess_after: DEFAULT_REASSESS_AFTER,
            bootstrap: DEFAULT_BOOTSTRAP,
            seed: DEFAULT_SEED,
            age_variable: DEFAULT_AGE_VARIABLE.to_string(),
            age_variable_given: false,
        }
    }
}

impl FollowUpOptions {
    pub fn check(&self) -> Result<(), FollowUpError> {
        band::check_tolerance(self.tolerance).map_err(FollowUpError::Settings)?;
        if self.reassess_after == 0 {
            return Err(FollowUpError::Settings(
                "reassess_after must be at least 1 month".into(),
            ));
        }
        if self.bootstrap < 10 {
            return Err(FollowUpError::Settings(format!(
                "bootstrap must be at least 10 resamples, not {}",
                self.bootstrap
            )));
        }
        Ok(())
    }
}

#[derive(Debug, Clone)]
pub struct FollowUpInputs {
    pub orders: PathBuf,
    pub visits: PathBuf,
    /// `age_band,inhabitants`, for consumption per inhabitant (KPB).
    pub population: Option<PathBuf>,
}

/// The log's days, as covered by its cleaned visits.
#[derive(Debug, Clone, Serialize)]
pub struct LogSpan {
    pub first_day: String,
    pub last_day: String,
    pub months: Vec<String>,
}

/// Everything a follow-up found; `followup.json` without the per-row tables.
#[derive(Debug, Clone, Serialize)]
pub struct FollowUp {
    pub format: String,
    pub created: String,
    pub model: ModelInfo,
    pub tolerance: f64,
    pub reassess_after: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub month: Option<String>,
    pub bands: band_doc::BandDoc,
    pub orders: orders::Orders,
    /// The visit log as read and cleaned (faults counted and left out).
    pub visits: ReadReport,
    pub span: LogSpan,
    pub summary: recipients::Summary,
    /// Recipients flagged for reassessment in the last month reported.
    pub reassess: Vec<recipients::Reassess>,
    pub providers: Vec<providers::ProviderRow>,
    /// The log-scale standard deviation of the efficient level that every index shares,
    /// carried in the providers' intervals ([`providers::level_sd`]).
    pub index_level_sd: f64,
    /// The Norrköping check: the same needs, the same ordered time whatever the provider.
    pub same_needs_same_time: same_time::SameTimeCheck,
    /// Hours by age band and context group, per inhabitant with a population file.
    pub consumption: consumption::Consumption,
    pub bootstrap: usize,
    pub seed: u64,
    #[serde(skip)]
    pub rows: Vec<recipients::RecipientMonth>,
}

mod band_doc {
    use serde::Serialize;

    /// The band definitions, spelled out in the JSON.
    #[derive(Debug, Clone, Serialize)]
    pub struct BandDoc {
        pub under: String,
        pub within: String,
        pub over_tolerance: String,
        pub over: String,
        pub no_order: String,
        pub outside: String,
    }

    pub fn of(t: f64) -> BandDoc {
        BandDoc {
            under: format!("ratio < {}", 1.0 - t),
            within: format!("{} ≤ ratio ≤ 1", 1.0 - t),
            over_tolerance: format!("1 < ratio ≤ {}", 1.0 + t),
            over: format!("ratio > {}", 1.0 + t),
            no_order: "performed time but no order in force".into(),
            outside: "under or over".into(),
        }
    }
}

/// Runs a follow-up. `opts` are checked first, then the population file, then ORDERS, then
/// the log.
pub fn follow_up(
    model: &Model,
    inputs: &FollowUpInputs,
    opts: &FollowUpOptions,
) -> Result<FollowUp, FollowUpError> {
    opts.check()?;
    let population = inputs
        .population
        .as_deref()
        .map(consumption::read_population)
        .transpose()?;
    consumption::Grouping::new(
        &model.catalog,
        &opts.age_variable,
        opts.age_variable_given,
        population.as_ref(),
    )?;
    let orders = orders::read_orders(model, &inputs.orders)?;
    let name = inputs.visits.display().to_string();
    let visits = std::fs::File::open(&inputs.visits).map_err(|source| FollowUpError::Io {
        path: name.clone(),
        source,
    })?;
    follow_up_from(
        model,
        orders,
        population,
        visits,
        &name,
        opts,
        &ramtid_core::progress::NoProgress,
    )
}

/// Runs a follow-up on orders already read and a visit log already opened (`visits_name`
/// is how it is shown); `progress` is advanced by the log's bytes as they are read.
pub fn follow_up_from(
    model: &Model,
    orders: orders::Orders,
    population: Option<consumption::Population>,
    visits: std::fs::File,
    visits_name: &str,
    opts: &FollowUpOptions,
    progress: &dyn ramtid_core::progress::Progress,
) -> Result<FollowUp, FollowUpError> {
    opts.check()?;
    let grouping = consumption::Grouping::new(
        &model.catalog,
        &opts.age_variable,
        opts.age_variable_given,
        population.as_ref(),
    )?;
    let log = read_visit_log_from_reporting(
        visits,
        visits_name,
        &model.catalog,
        &ReadOptions {
            rules: model.manifest.cleaning.clone(),
            rejects_path: None,
        },
        progress,
    )?;
    let table = recipients::follow_recipients(&log, &orders, opts);
    if let Some(m) = opts.month.filter(|m| !table.months.contains(m)) {
        return Err(FollowUpError::Nothing(format!(
            "--month {}: the cleaned visits of {} run from {} to {}",
            m.label(),
            visits_name,
            day_label(table.first_day),
            day_label(table.last_day)
        )));
    }
    let providers = providers::compare(model, &log, &table, opts);
    let same_needs_same_time = same_time::check(&orders, &log);
    let months: Vec<Month> = table
        .months
        .iter()
        .copied()
        .filter(|&m| recipients::reported(opts, m))
        .collect();
    let consumption = consumption::consumption(
        log.table.iter(),
        &grouping,
        population.as_ref(),
        &consumption::Span {
            months: &months,
            first_day: table.first_day,
            last_day: table.last_day,
        },
    );
    let span = LogSpan {
        first_day: day_label(table.first_day),
        last_day: day_label(table.last_day),
        months: table.months.iter().map(|m| m.label()).collect(),
    };
    Ok(FollowUp {
        format: FORMAT.to_string(),
        created: ramtid_core::model::now_rfc3339(),
        model: ModelInfo {
            name: model.name().to_string(),
            version: model.version().to_string(),
            dir: model.dir.display().to_string(),
        },
        tolerance: opts.tolerance,
        reassess_after: opts.reassess_after,
        month: opts.month.map(|m| m.label()),
        bands: band_doc::of(opts.tolerance),
        orders,
        visits: log.report,
        span,
        summary: table.summary,
        reassess: table.reassess,
        providers,
        index_level_sd: providers::level_sd(model),
        same_needs_same_time,
        consumption,
        bootstrap: opts.bootstrap,
        seed: opts.seed,
        rows: table.rows,
    })
}

fn day_label(day: i32) -> String {
    let (y, m, d) = ramtid_core::calendar::civil_from_days(i64::from(day));
    format!("{y:04}-{m:02}-{d:02}")
}

/// Writes `recipients.csv`, `providers.csv`, `followup.json` and `report.html` into `dir`.
pub fn write_report(f: &FollowUp, dir: &Path) -> Result<Vec<PathBuf>, FollowUpError> {
    output::write_all(f, dir)
}
