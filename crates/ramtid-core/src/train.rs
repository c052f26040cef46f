//! A training run from files to a published model version: read and clean the log, fit,
//! learn the planner's habits, write the version. Used by `ramtid train` and by the
//! service's `TrainModel`.

use crate::catalog::{Catalog, CatalogError};
use crate::fit::{fit, FitError, FitReport};
use crate::model::{Model, ModelError};
use crate::params::CheckedFitParams;
use crate::plan::Planner;
use crate::progress::{Progress, Stage};
use crate::visits::{read_visit_log_reporting, LogError, ReadOptions, ReadReport};
use serde::Serialize;
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
}

#[derive(Debug, Clone)]
pub struct TrainRequest {
    pub catalog: PathBuf,
    pub visits: PathBuf,
    pub models_dir: PathBuf,
    pub name: String,
    pub rejects: Option<PathBuf>,
    /// Fit settings and cleaning rules, checked before the request could be built: a bad
    /// setting never waits for the log to be read.
    pub params: CheckedFitParams,
}

/// What a run did, for the person who started it.
#[derive(Debug, Clone, Serialize)]
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

/// Runs the training. Stages and their progress go to `progress` ([`Stage`]: reading
/// counts bytes, fitting counts visits); the service streams the stages to its caller.
pub fn train(
    req: &TrainRequest,
    progress: &dyn Progress,
) -> Result<(Model, TrainSummary), TrainError> {
    let catalog = Catalog::load(&req.catalog)?;
    progress.stage(
        Stage::Reading,
        std::fs::metadata(&req.visits).ok().map(|m| m.len()),
    );
    let t0 = Instant::now();
    let log = read_visit_log_reporting(
        &req.visits,
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
    progress.stage(Stage::Fitting, Some(log.report.rows_used));
    let t1 = Instant::now();
    let (visit, fit_report) = fit(&log.table, &log.units, &catalog, &req.params, progress)?;
    let planner = Planner::learn(&log.table, &catalog);
    let seconds_fitting = t1.elapsed().as_secs_f64();
    progress.stage(Stage::Writing, None);
    let model = Model::save_new_version(
        &req.models_dir,
        &req.name,
        &catalog,
        &visit,
        &planner,
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
        return Err(format!(
            "model name '{name}' must be 1–64 ASCII letters, digits, '-' or '_'"
        ));
    }
    Ok(())
}

pub fn default_rejects_path(models_dir: &Path, name: &str) -> PathBuf {
    models_dir.join(format!("{name}.rejects.csv"))
}
