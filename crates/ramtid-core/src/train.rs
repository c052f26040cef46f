//! A training run from files to a published model version: read and clean the log, fit,
//! learn the planner's habits, write the version. Used by `ramtid train` and by the
//! service's `TrainModel`.

use crate::catalog::{Catalog, CatalogError, ContextKind};
use crate::datadir::{DataDir, OpenError};
use crate::fit::{fit, FitError, FitReport};
use crate::model::{Model, ModelError};
use crate::params::CheckedFitParams;
use crate::plan::Planner;
use crate::progress::{Progress, Stage};
use crate::visits::{read_visit_log_from_reporting, LogError, ReadOptions, ReadReport};
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io::{BufRead, Read, Seek};
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error(transparent)]
    Log(#[from] LogError),
    #[error(transparent)]
    Fit(#[from] FitError),
    #[error(transparent)]
    Model(#[from] ModelError),
    /// A catalog or visit log path that cannot be opened where it must be.
    #[error("{field}: {source}")]
    Open {
        field: &'static str,
        #[source]
        source: OpenError,
    },
    /// The training would exceed a configured limit; `field` names the input at fault.
    #[error("{field}: {message}")]
    Limit {
        field: &'static str,
        message: String,
    },
}

/// What one training may take: checked from the catalog and the log's header before the
/// log is read, and from the log's codes before the fit gathers statistics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainLimits {
    /// Most insats codes in the catalog.
    pub max_codes: usize,
    /// Most encoded context columns (a numeric, ordinal or boolean variable is one, a
    /// categorical one per label after the first).
    pub max_context_columns: usize,
    /// Most coefficients: checked on the catalog (every code with every context column),
    /// and again on the codes the log uses with the task pairs found.
    pub max_features: usize,
    /// Memory for the fit's statistics, in MiB; the training worker's address space is
    /// limited to this plus [`WORKER_HEADROOM_MB`].
    pub max_memory_mb: u64,
}

/// Address space a worker needs besides the fit: code, thread stacks, the allocator's
/// reservations and the table of visits (checked separately).
pub const WORKER_HEADROOM_MB: u64 = 1024;

/// Columns beyond the required ones and the catalog's context columns: ignored, but each
/// costs time on every row.
pub const MAX_IGNORED_COLUMNS: usize = 256;

impl Default for TrainLimits {
    fn default() -> Self {
        TrainLimits {
            max_codes: 2_000,
            max_context_columns: 32,
            max_features: 100_000,
            max_memory_mb: 4_096,
        }
    }
}

/// 100200 as "100 200": limits are read by people.
pub fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(' ');
        }
        out.push(c);
    }
    out
}

/// "catalog has 100 200 codes; the limit is 2 000 (training.max_codes)".
fn limit(field: &'static str, what: String, have: u64, max: u64, key: &str) -> TrainError {
    let (key, unit) = key.split_once(' ').unwrap_or((key, ""));
    TrainError::Limit {
        field,
        message: format!(
            "{what} {} {unit}; the limit is {} (training.{key})",
            grouped(have),
            grouped(max)
        ),
    }
}

/// Encoded context columns of a catalog (as [`crate::features::FeatureSpace`] builds them).
pub fn context_columns(catalog: &Catalog) -> usize {
    catalog
        .contexts
        .iter()
        .map(|c| match c.kind {
            ContextKind::Categorical => c.labels.len().saturating_sub(1),
            _ => 1,
        })
        .sum()
}

/// The checks that need only the catalog.
pub fn check_catalog(catalog: &Catalog, limits: &TrainLimits) -> Result<(), TrainError> {
    let codes = catalog.insatser.len();
    if codes > limits.max_codes {
        return Err(limit(
            "catalog_path",
            "catalog has".into(),
            codes as u64,
            limits.max_codes as u64,
            "max_codes codes",
        ));
    }
    let k = context_columns(catalog);
    if k > limits.max_context_columns {
        return Err(limit(
            "catalog_path",
            "catalog's context variables make".into(),
            k as u64,
            limits.max_context_columns as u64,
            "max_context_columns context columns",
        ));
    }
    // Overhead, 4 slots, double staffing, overhead × context, and per code its own
    // column and one per context column; pairs come on top once the log is read.
    let worst = 6 + k + codes * (1 + k);
    if worst > limits.max_features {
        return Err(limit(
            "catalog_path",
            format!("{codes} codes with {k} context columns make up to"),
            worst as u64,
            limits.max_features as u64,
            "max_features features",
        ));
    }
    Ok(())
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainRequest {
    /// With `data_dir`: paths relative to it, opened without following links.
    pub catalog: PathBuf,
    pub visits: PathBuf,
    pub data_dir: Option<PathBuf>,
    pub limits: TrainLimits,
    pub models_dir: PathBuf,
    pub name: String,
    pub rejects: Option<PathBuf>,
    /// Fit settings and cleaning rules, checked before the request could be built: a bad
    /// setting never waits for the log to be read.
    pub params: CheckedFitParams,
}

/// What a run did, for the person who started it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainSummary {
    pub model_dir: String,
    pub name: String,
    pub version: String,
    pub read: ReadReport,
    pub fit: FitReport,
    pub seconds_reading: f64,
    pub seconds_fitting: f64,
    /// Peak resident memory of the process, where the platform tells it.
    pub peak_rss_mb: Option<f64>,
    pub table_mb: f64,
}

/// Opens the catalog and the log: under the data directory by a confined handle when the
/// request names one (the service), else as given (the command line).
fn open_inputs(req: &TrainRequest) -> Result<(File, String, File, String), TrainError> {
    let show = |p: &Path| p.display().to_string();
    match &req.data_dir {
        Some(dir) => {
            let dir = DataDir::open(dir).map_err(|source| TrainError::Open {
                field: "data directory",
                source,
            })?;
            let open = |field: &'static str, p: &Path| {
                dir.open_file(&p.to_string_lossy())
                    .map_err(|source| TrainError::Open { field, source })
            };
            Ok((
                open("catalog_path", &req.catalog)?,
                show(&req.catalog),
                open("visits_path", &req.visits)?,
                show(&req.visits),
            ))
        }
        None => {
            let open = |p: &Path| {
                File::open(p).map_err(|source| LogError::Io {
                    path: show(p),
                    source,
                })
            };
            let catalog = File::open(&req.catalog).map_err(|source| CatalogError::Io {
                path: show(&req.catalog),
                source,
            })?;
            Ok((
                catalog,
                show(&req.catalog),
                open(&req.visits)?,
                show(&req.visits),
            ))
        }
    }
}

/// Counts the header's columns (the first line, read up to 1 MiB) and rewinds.
fn header_columns(file: &mut File, name: &str) -> Result<usize, TrainError> {
    let io = |source: std::io::Error| LogError::Io {
        path: name.to_string(),
        source,
    };
    let mut line = Vec::new();
    std::io::BufReader::new(Read::by_ref(file).take(1 << 20))
        .read_until(b'\n', &mut line)
        .map_err(io)?;
    file.rewind().map_err(io)?;
    let mut csv = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(line.as_slice());
    let mut record = csv::ByteRecord::new();
    Ok(match csv.read_byte_record(&mut record) {
        Ok(true) => record.len(),
        _ => 0,
    })
}

/// Runs the training. Stages and their progress go to `progress` ([`Stage`]: reading
/// counts bytes, fitting counts visits); the service streams the stages to its caller.
pub fn train(
    req: &TrainRequest,
    progress: &dyn Progress,
) -> Result<(Model, TrainSummary), TrainError> {
    let (catalog_file, catalog_name, mut visits_file, visits_name) = open_inputs(req)?;
    let text = Catalog::read_text(catalog_file, &catalog_name)?;
    // Counted before the parse: a catalog of 100 000 codes takes seconds to parse and
    // validate, and is refused in milliseconds this way. The parsed catalog is checked
    // again below (a catalog may write its tables in other TOML forms).
    let tables = Catalog::count_insats_tables(&text);
    if tables > req.limits.max_codes {
        return Err(limit(
            "catalog_path",
            "catalog has".into(),
            tables as u64,
            req.limits.max_codes as u64,
            "max_codes codes",
        ));
    }
    let catalog = Catalog::from_toml(&text, &catalog_name)?;
    drop(text);
    check_catalog(&catalog, &req.limits)?;
    let columns = header_columns(&mut visits_file, &visits_name)?;
    let most = 7 + catalog.contexts.len() + MAX_IGNORED_COLUMNS;
    if columns > most {
        return Err(TrainError::Limit {
            field: "visits_path",
            message: format!(
                "the visit log's header has {} columns; at most {} are read (7 required, {} for the catalog's context variables, {MAX_IGNORED_COLUMNS} others)",
                grouped(columns as u64),
                grouped(most as u64),
                catalog.contexts.len()
            ),
        });
    }
    progress.stage(Stage::Reading, visits_file.metadata().ok().map(|m| m.len()));
    let t0 = Instant::now();
    let log = read_visit_log_from_reporting(
        visits_file,
        &visits_name,
        &catalog,
        &ReadOptions {
            rules: req.params.cleaning().clone(),
            rejects_path: req.rejects.clone(),
        },
        progress,
    )?;
    let seconds_reading = t0.elapsed().as_secs_f64();
    tracing::info!(
        rows = log.report.rows_read,
        used = log.report.rows_used,
        rejected = log.report.rows_rejected,
        flagged = log.report.rows_flagged,
        seconds = seconds_reading,
        "visit log read"
    );
    // Before any statistics are gathered: the features the log's codes need and what their
    // Gram matrices would take.
    let plan = crate::fit::plan(&log.table, log.units.len(), &catalog, req.params.settings());
    if plan.fitted_features > req.limits.max_features {
        return Err(limit(
            "visits_path",
            "the codes the log uses and their pairs make".into(),
            plan.fitted_features as u64,
            req.limits.max_features as u64,
            "max_features features",
        ));
    }
    let need_mb = (plan.memory_bytes + log.table.heap_bytes() as u64).div_ceil(1 << 20);
    if need_mb > req.limits.max_memory_mb {
        return Err(limit(
            "visits_path",
            format!(
                "fitting {} features on {} visits needs about",
                grouped(plan.fitted_features as u64),
                grouped(log.table.len() as u64)
            ),
            need_mb,
            req.limits.max_memory_mb,
            "max_memory_mb MiB",
        ));
    }
    progress.stage(Stage::Fitting, Some(log.report.rows_used));
    let t1 = Instant::now();
    let (visit, fit_report) = fit(&log.table, &log.units, &catalog, &req.params, progress)?;
    let planner = Planner::learn(&log.table, &catalog);
    let cluster_mix = crate::cluster::ClusterMix::learn(&log.table, &catalog, &|_| true);
    let seconds_fitting = t1.elapsed().as_secs_f64();
    progress.stage(Stage::Writing, None);
    let model = Model::save_new_version(
        &req.models_dir,
        &req.name,
        &catalog,
        &visit,
        &planner,
        &cluster_mix,
        req.params.settings(),
        req.params.cleaning(),
        &log.report,
        &fit_report,
    )?;
    let summary = TrainSummary {
        model_dir: model.dir.display().to_string(),
        name: model.name().to_string(),
        version: model.version().to_string(),
        read: log.report.clone(),
        fit: fit_report,
        seconds_reading,
        seconds_fitting,
        peak_rss_mb: peak_rss_mb(),
        table_mb: log.table.heap_bytes() as f64 / 1_048_576.0,
    };
    Ok((model, summary))
}

/// Peak resident set size (VmHWM) on Linux.
pub fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// A model folder name must be a plain name: it becomes a directory.
pub fn check_model_name(name: &str) -> Result<(), String> {
    if name.is_empty()
        || name.len() > 64
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        // The name is echoed, but never more of it than the limit.
        let shown: String = name.chars().take(64).collect();
        let more = if shown.len() < name.len() { "…" } else { "" };
        return Err(format!(
            "model name '{shown}{more}' must be 1–64 ASCII letters, digits, '-' or '_'"
        ));
    }
    // The service's aliases: a model by one of these names could never be selected by name
    // (`production` selects the alias, not the model).
    if matches!(name, "production" | "candidate") {
        return Err(format!(
            "'{name}' is an alias (production, candidate), not a model name; choose another name"
        ));
    }
    Ok(())
}

pub fn default_rejects_path(models_dir: &Path, name: &str) -> PathBuf {
    models_dir.join(format!("{name}.rejects.csv"))
}
