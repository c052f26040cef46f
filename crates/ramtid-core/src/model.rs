//! A versioned model on disk: `models/<name>/<version>/` holds `manifest.json` (what the
//! model is and how it was made), `params.json` (our own format: named coefficients, the
//! feature space, the planner's habits, the intervals) and `catalog.toml`. Loading checks
//! every piece against the manifest; a corrupt or mismatched model is refused with the reason.

use crate::catalog::Catalog;
use crate::features::FeatureSpace;
use crate::fingerprint::fnv1a64;
use crate::fit::{FitReport, FitSettings, VisitModel};
use crate::plan::Planner;
use crate::visits::{CleaningRules, ReadReport};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use thiserror::Error;

pub const FORMAT: &str = "ramtid-model/1";

#[derive(Debug, Error)]
pub enum ModelError {
    #[error("cannot read model file {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("model file {path} is not valid: {message}")]
    Corrupt { path: String, message: String },
    #[error("model {path} does not match its manifest: {message}")]
    Mismatch { path: String, message: String },
    #[error("no model found under {0}")]
    NotFound(String),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RowCounts {
    pub read: u64,
    pub used: u64,
    pub rejected: u64,
    pub flagged: u64,
    pub flagged_duplicate: u64,
    pub flagged_forgotten_checkout: u64,
    pub flagged_too_short: u64,
}

impl From<&ReadReport> for RowCounts {
    fn from(r: &ReadReport) -> Self {
        RowCounts {
            read: r.rows_read,
            used: r.rows_used,
            rejected: r.rows_rejected,
            flagged: r.rows_flagged,
            flagged_duplicate: r.flagged_duplicate,
            flagged_forgotten_checkout: r.flagged_forgotten_checkout,
            flagged_too_short: r.flagged_too_short,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub name: String,
    pub version: String,
    /// UTC, RFC 3339.
    pub created: String,
    pub code_version: String,
    pub catalog_fingerprint: String,
    pub data_fingerprint: String,
    pub params_fingerprint: String,
    pub rows: RowCounts,
    pub features: usize,
    pub method: FitSettings,
    pub cleaning: CleaningRules,
    pub fit: FitReport,
    /// Filled in by `ramtid evaluate --record`: held-out figures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evaluation: Option<serde_json::Value>,
}

/// The parameter file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Params {
    pub format: String,
    pub catalog: Catalog,
    pub space: FeatureSpace,
    /// (feature name, minutes) in coefficient order; names make the file readable and are
    /// checked on load.
    pub coefficients: Vec<(String, f64)>,
    pub visit_interval: [f64; 2],
    pub weekly_interval: [f64; 2],
    pub interval_quantiles: [f64; 2],
    pub planner: Planner,
}

/// A loaded, validated model: everything estimation needs.
#[derive(Debug, Clone)]
pub struct Model {
    pub manifest: Manifest,
    pub catalog: Catalog,
    pub visit: VisitModel,
    pub planner: Planner,
    pub interval_quantiles: [f64; 2],
    pub dir: PathBuf,
}

impl Model {
    pub fn name(&self) -> &str {
        &self.manifest.name
    }

    pub fn version(&self) -> &str {
        &self.manifest.version
    }

    /// Loads and validates `dir` (a `models/<name>/<version>/` folder).
    pub fn load(dir: &Path) -> Result<Model, ModelError> {
        let read = |file: &str| -> Result<(String, Vec<u8>), ModelError> {
            let path = dir.join(file);
            let bytes = std::fs::read(&path).map_err(|source| ModelError::Io {
                path: path.display().to_string(),
                source,
            })?;
            Ok((path.display().to_string(), bytes))
        };
        let (mpath, mbytes) = read("manifest.json")?;
        let manifest: Manifest =
            serde_json::from_slice(&mbytes).map_err(|e| ModelError::Corrupt {
                path: mpath.clone(),
                message: e.to_string(),
            })?;
        if manifest.format != FORMAT {
            return Err(ModelError::Mismatch {
                path: mpath,
                message: format!(
                    "format '{}' is not supported (expected '{FORMAT}')",
                    manifest.format
                ),
            });
        }
        let (ppath, pbytes) = read("params.json")?;
        let fp = format!("fnv64:{:016x}", fnv1a64(&pbytes));
        let mismatch = |message: String| ModelError::Mismatch {
            path: dir.display().to_string(),
            message,
        };
        if fp != manifest.params_fingerprint {
            return Err(mismatch(format!(
                "params.json has fingerprint {fp}, the manifest says {} (file changed or damaged)",
                manifest.params_fingerprint
            )));
        }
        let mut params: Params =
            serde_json::from_slice(&pbytes).map_err(|e| ModelError::Corrupt {
                path: ppath.clone(),
                message: e.to_string(),
            })?;
        params.space.rebuild_index();
        if params.catalog.fingerprint() != manifest.catalog_fingerprint {
            return Err(mismatch(
                "the catalog in params.json is not the one the manifest names".into(),
            ));
        }
        let names = params.space.names(&params.catalog);
        if names.len() != params.coefficients.len() {
            return Err(mismatch(format!(
                "{} coefficients for {} features",
                params.coefficients.len(),
                names.len()
            )));
        }
        if let Some((i, (n, _))) = params
            .coefficients
            .iter()
            .enumerate()
            .find(|(i, (n, _))| *n != names[*i])
        {
            return Err(mismatch(format!(
                "coefficient {i} is '{n}', the feature space expects '{}'",
                names[i]
            )));
        }
        if params.coefficients.iter().any(|(_, v)| !v.is_finite())
            || params
                .visit_interval
                .iter()
                .chain(&params.weekly_interval)
                .any(|v| !v.is_finite() || *v <= 0.0)
        {
            return Err(ModelError::Corrupt {
                path: ppath,
                message: "a coefficient or interval is not a finite number".into(),
            });
        }
        if params.planner.habits.len() != params.catalog.insatser.len()
            || params.space.n_tasks != params.catalog.insatser.len()
            || params
                .space
                .context
                .iter()
                .any(|c| c.var >= params.catalog.contexts.len())
        {
            return Err(mismatch(
                "the planner or the feature space does not fit the catalog".into(),
            ));
        }
        let visit = VisitModel {
            space: params.space,
            coef: params.coefficients.iter().map(|(_, v)| *v).collect(),
            visit_interval: params.visit_interval,
            weekly_interval: params.weekly_interval,
        };
        Ok(Model {
            manifest,
            catalog: params.catalog,
            visit,
            planner: params.planner,
            interval_quantiles: params.interval_quantiles,
            dir: dir.to_path_buf(),
        })
    }

    /// Writes a new version under `root/<name>/`, numbered one above the highest there.
    #[allow(clippy::too_many_arguments)]
    pub fn save_new_version(
        root: &Path,
        name: &str,
        catalog: &Catalog,
        visit: &VisitModel,
        planner: &Planner,
        settings: &FitSettings,
        cleaning: &CleaningRules,
        read: &ReadReport,
        fit: &FitReport,
    ) -> Result<Model, ModelError> {
        let io = |path: &Path, source: std::io::Error| ModelError::Io {
            path: path.display().to_string(),
            source,
        };
        let base = root.join(name);
        std::fs::create_dir_all(&base).map_err(|e| io(&base, e))?;
        let version = (highest_version(&base) + 1).to_string();
        let params = Params {
            format: FORMAT.to_string(),
            catalog: catalog.clone(),
            space: visit.space.clone(),
            coefficients: visit
                .space
                .names(catalog)
                .into_iter()
                .zip(visit.coef.iter().copied())
                .collect(),
            visit_interval: visit.visit_interval,
            weekly_interval: visit.weekly_interval,
            interval_quantiles: settings.interval,
            planner: planner.clone(),
        };
        let pbytes = serde_json::to_vec_pretty(&params).expect("params serialize");
        let manifest = Manifest {
            format: FORMAT.to_string(),
            name: name.to_string(),
            version: version.clone(),
            created: now_rfc3339(),
            code_version: env!("CARGO_PKG_VERSION").to_string(),
            catalog_fingerprint: catalog.fingerprint(),
            data_fingerprint: read.data_fingerprint.clone(),
            params_fingerprint: format!("fnv64:{:016x}", fnv1a64(&pbytes)),
            rows: read.into(),
            features: visit.coef.len(),
            method: settings.clone(),
            cleaning: cleaning.clone(),
            fit: fit.clone(),
            evaluation: None,
        };
        // Written to a temporary folder that the registry ignores (a leading dot), checked
        // as a reader will check it, synced, and only then renamed to `<version>/`: a failed
        // or killed training leaves no version behind, only a temporary folder that the next
        // start-up removes (`remove_stale_temp`).
        let tmp = base.join(temp_name(&version));
        let result = (|| {
            std::fs::create_dir(&tmp).map_err(|e| io(&tmp, e))?;
            let write = |file: &str, bytes: &[u8]| {
                let p = tmp.join(file);
                write_synced(&p, bytes).map_err(|e| io(&p, e))
            };
            write("params.json", &pbytes)?;
            write("catalog.toml", catalog.to_toml().as_bytes())?;
            let mut manifest = manifest;
            let mut version = version;
            for attempt in 0.. {
                write(
                    "manifest.json",
                    &serde_json::to_vec_pretty(&manifest).expect("manifest serializes"),
                )?;
                Model::load(&tmp)?;
                sync_dir(&tmp).map_err(|e| io(&tmp, e))?;
                let dir = base.join(&version);
                match rename_new(&tmp, &dir) {
                    Ok(()) => {
                        sync_dir(&base).map_err(|e| io(&base, e))?;
                        return Model::load(&dir);
                    }
                    // Another training (a second process) published this number first.
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && attempt < 8 => {
                        version = (highest_version(&base) + 1).to_string();
                        manifest.version = version.clone();
                    }
                    Err(e) => return Err(io(&dir, e)),
                }
            }
            unreachable!("the loop returns")
        })();
        if result.is_err() {
            let _ = std::fs::remove_dir_all(&tmp);
        }
        result
    }

    /// Rewrites the manifest with held-out evaluation figures.
    pub fn record_evaluation(&mut self, evaluation: serde_json::Value) -> Result<(), ModelError> {
        self.manifest.evaluation = Some(evaluation);
        let path = self.dir.join("manifest.json");
        let tmp = self.dir.join(".manifest.json.partial");
        std::fs::write(
            &tmp,
            serde_json::to_vec_pretty(&self.manifest).expect("manifest serializes"),
        )
        .and_then(|_| std::fs::rename(&tmp, &path))
        .map_err(|source| ModelError::Io {
            path: path.display().to_string(),
            source,
        })
    }
}

fn highest_version(base: &Path) -> u64 {
    list_versions(base)
        .iter()
        .filter_map(|v| v.parse::<u64>().ok())
        .max()
        .unwrap_or(0)
}

/// Prefix of the folders a version is written in before it is published.
pub const TEMP_PREFIX: &str = ".tmp-";

/// `.tmp-<version>-<pid>-<random>`: the process id tells a stale folder (its writer is
/// gone) from one still being written; the random part keeps two writers apart.
fn temp_name(version: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let salt = fnv1a64(format!("{nanos}{:?}", std::thread::current().id()).as_bytes());
    format!(
        "{TEMP_PREFIX}{version}-{}-{:08x}",
        std::process::id(),
        salt as u32
    )
}

/// The process that writes a temporary version folder, from its name.
pub fn temp_writer(name: &str) -> Option<u32> {
    name.strip_prefix(TEMP_PREFIX)?
        .split('-')
        .nth(1)?
        .parse()
        .ok()
}

/// Removes the temporary version folders under every `<root>/<name>/` whose writer is no
/// longer running (a training that was killed or crashed), and the folders a given writer
/// left (`only_writer`: a worker the caller has just killed). Returns how many went.
pub fn remove_stale_temp(root: &Path, only_writer: Option<u32>) -> usize {
    let mut removed = 0;
    let names = std::fs::read_dir(root).into_iter().flatten().flatten();
    for name in names.filter(|e| e.file_type().is_ok_and(|t| t.is_dir())) {
        for entry in std::fs::read_dir(name.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            let file_name = entry.file_name();
            let Some(writer) = file_name.to_str().and_then(temp_writer) else {
                continue;
            };
            let stale = match only_writer {
                Some(w) => w == writer,
                None => writer != std::process::id() && !process_alive(writer),
            };
            if stale && std::fs::remove_dir_all(entry.path()).is_ok() {
                tracing::info!(folder = %entry.path().display(), "removed an unfinished model version");
                removed += 1;
            }
        }
    }
    removed
}

fn process_alive(pid: u32) -> bool {
    match rustix::process::Pid::from_raw(pid as i32) {
        // EPERM: it exists but belongs to someone else; only ESRCH means gone.
        Some(p) => !matches!(
            rustix::process::test_kill_process(p),
            Err(rustix::io::Errno::SRCH)
        ),
        None => false,
    }
}

fn write_synced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut f = std::fs::File::create(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// Renames without replacing: `renameat2(RENAME_NOREPLACE)` on Linux, where a folder of the
/// same name appearing in between is reported as AlreadyExists.
fn rename_new(from: &Path, to: &Path) -> std::io::Result<()> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        use rustix::fs::{renameat_with, RenameFlags, CWD};
        match renameat_with(CWD, from, CWD, to, RenameFlags::NOREPLACE) {
            Err(rustix::io::Errno::NOSYS) | Err(rustix::io::Errno::INVAL) => {}
            other => return other.map_err(Into::into),
        }
    }
    if to.exists() {
        return Err(std::io::ErrorKind::AlreadyExists.into());
    }
    std::fs::rename(from, to)
}

/// Versions present under `models/<name>/`, sorted numerically where they are numbers.
pub fn list_versions(base: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(base)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().join("manifest.json").is_file())
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .filter(|n| !n.starts_with('.'))
        .collect();
    v.sort_by_key(|s| (s.parse::<u64>().unwrap_or(u64::MAX), s.clone()));
    v
}

/// Resolves a path given on the command line: a version folder itself, a model name folder
/// (its highest version) or a models root with exactly one model name.
pub fn resolve(path: &Path) -> Result<PathBuf, ModelError> {
    if path.join("manifest.json").is_file() {
        return Ok(path.to_path_buf());
    }
    if let Some(last) = list_versions(path).last() {
        return Ok(path.join(last));
    }
    let names: Vec<PathBuf> = std::fs::read_dir(path)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir() && !list_versions(p).is_empty())
        .collect();
    match names.as_slice() {
        [one] => resolve(one),
        [] => Err(ModelError::NotFound(path.display().to_string())),
        many => Err(ModelError::NotFound(format!(
            "{}: it holds several models ({}); name one",
            path.display(),
            many.iter()
                .filter_map(|p| p.file_name()?.to_str().map(str::to_string))
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// Current UTC time as RFC 3339, without a date-time crate.
pub fn now_rfc3339() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = crate::calendar::civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}
