//! A versioned model on disk: `models/<name>/<version>/` holds `manifest.json` (what the
//! model is and how it was made), `params.json` (our own format: named coefficients, the
//! feature space, the planner's habits, the intervals) and `catalog.toml`. Loading checks
//! every piece against the manifest; a corrupt or mismatched model is refused with the reason.

use crate::catalog::{Catalog, ContextKind, ContextRange};
use crate::cluster::ClusterMix;
use crate::features::FeatureSpace;
use crate::fingerprint::fnv1a64;
use crate::fit::{FitReport, FitSettings, VisitModel};
use crate::plan::Planner;
use crate::visits::{CleaningRules, ReadReport};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use thiserror::Error;

pub const FORMAT: &str = "ramtid-model/1";

/// Largest `params.json` read: a model of a million features is about 40 MB. Checked before
/// reading, so a symlink to a device or a huge file is refused at once.
pub const MAX_PARAMS_BYTES: u64 = 64 << 20;
/// Largest `manifest.json` (its fit report lists teams and the λ path: kilobytes).
pub const MAX_MANIFEST_BYTES: u64 = 16 << 20;
/// No coefficient of a visit model is worth more than this many minutes; beyond it the file
/// is damaged, and an estimate could overflow.
pub const MAX_COEFFICIENT_MIN: f64 = 1e5;
/// Interval multipliers (P10 and P90 over the estimate) beyond this are not intervals.
pub const MAX_INTERVAL_MULTIPLIER: f64 = 100.0;
/// A model without a recorded range for a numeric context variable (trained before ranges
/// were recorded) and without declared catalog bounds accepts values within this many of
/// the variable's scale units (ten years of age) of the training mean.
pub const DEFAULT_RANGE_SCALES: f64 = 10.0;

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
    /// The range of every numeric context variable over the training visits; needs outside
    /// it are refused. Absent in models trained before it was recorded (see
    /// [`Model::load`] for what applies then).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub context_ranges: Vec<ContextRange>,
    /// How the members of each catalog cluster are used in the training log, in catalog
    /// order (see [`crate::cluster::ClusterMix`]). Absent in models without clusters.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cluster_mix: Vec<ClusterMix>,
}

/// A loaded, validated model: everything estimation needs.
#[derive(Debug, Clone)]
pub struct Model {
    pub manifest: Manifest,
    pub catalog: Catalog,
    pub visit: VisitModel,
    pub planner: Planner,
    pub interval_quantiles: [f64; 2],
    /// One mix per catalog cluster, in catalog order.
    pub clusters: Vec<ClusterMix>,
    pub dir: PathBuf,
}

impl Model {
    pub fn name(&self) -> &str {
        &self.manifest.name
    }

    pub fn version(&self) -> &str {
        &self.manifest.version
    }

    /// Loads and validates `dir` (a `models/<name>/<version>/` folder). Everything is
    /// checked before anything indexes into it: sizes, fingerprints, the catalog (the one in
    /// `params.json` and `catalog.toml`, which must agree), every index and dimension of the
    /// feature space and the planner against the catalog, finiteness and bounds of every
    /// number, intervals in order and slot shares that are shares. A model that loads can
    /// estimate any valid needs object without panicking, and its figures are finite.
    ///
    /// Numeric context: needs are accepted within the range recorded at training; a model
    /// without one (trained before it was recorded) uses the catalog's declared `min`/`max`
    /// and, where none is declared, the training mean ± [`DEFAULT_RANGE_SCALES`] scale units.
    pub fn load(dir: &Path) -> Result<Model, ModelError> {
        let read = |file: &str, limit: u64| -> Result<(String, Vec<u8>), ModelError> {
            let path = dir.join(file);
            let name = path.display().to_string();
            match crate::files::read_capped(&path, limit) {
                Ok(bytes) => Ok((name, bytes)),
                Err(crate::files::CappedReadError::Io(source)) => {
                    Err(ModelError::Io { path: name, source })
                }
                Err(other) => Err(ModelError::Corrupt {
                    path: name,
                    message: format!("the file {other}"),
                }),
            }
        };
        let corrupt = |path: &str, message: String| ModelError::Corrupt {
            path: path.to_string(),
            message,
        };
        let json_error = |e: serde_json::Error| crate::echo::echo_n(&e.to_string(), 240);
        let (mpath, mbytes) = read("manifest.json", MAX_MANIFEST_BYTES)?;
        let manifest: Manifest =
            serde_json::from_slice(&mbytes).map_err(|e| corrupt(&mpath, json_error(e)))?;
        if manifest.format != FORMAT {
            return Err(ModelError::Mismatch {
                path: mpath,
                message: format!(
                    "format '{}' is not supported (expected '{FORMAT}')",
                    crate::echo::echo(&manifest.format)
                ),
            });
        }
        let (ppath, pbytes) = read("params.json", MAX_PARAMS_BYTES)?;
        let fp = format!("fnv64:{:016x}", fnv1a64(&pbytes));
        let mismatch = |message: String| ModelError::Mismatch {
            path: dir.display().to_string(),
            message,
        };
        if fp != manifest.params_fingerprint {
            return Err(mismatch(format!(
                "params.json has fingerprint {fp}, the manifest says {} (file changed or damaged)",
                crate::echo::echo(&manifest.params_fingerprint)
            )));
        }
        let mut params: Params =
            serde_json::from_slice(&pbytes).map_err(|e| corrupt(&ppath, json_error(e)))?;
        params.validate().map_err(|m| corrupt(&ppath, m))?;
        if params.catalog.fingerprint() != manifest.catalog_fingerprint {
            return Err(mismatch(
                "the catalog in params.json is not the one the manifest names".into(),
            ));
        }
        if manifest.features != params.coefficients.len() {
            return Err(mismatch(format!(
                "the manifest says {} features, params.json has {}",
                manifest.features,
                params.coefficients.len()
            )));
        }
        // The catalog beside the parameters is what people read and edit: it must be the one
        // the model was trained with.
        let (cpath, cbytes) = read("catalog.toml", crate::catalog::MAX_CATALOG_BYTES)?;
        let ctext = std::str::from_utf8(&cbytes)
            .map_err(|_| corrupt(&cpath, "the file is not valid UTF-8".into()))?;
        let on_disk =
            Catalog::from_toml(ctext, &cpath).map_err(|e| corrupt(&cpath, e.to_string()))?;
        if on_disk.fingerprint() != manifest.catalog_fingerprint {
            return Err(ModelError::Mismatch {
                path: cpath,
                message: "this catalog is not the one the model was trained with (its fingerprint differs from the manifest's)".into(),
            });
        }
        ClusterMix::check(&params.cluster_mix, &params.catalog).map_err(|m| corrupt(&ppath, m))?;
        params.space.rebuild_index();
        let mut catalog = params.catalog;
        for (i, var) in catalog.contexts.iter_mut().enumerate() {
            if var.kind != ContextKind::Numeric {
                continue;
            }
            var.trained = Some(
                match params.context_ranges.iter().find(|r| r.name == var.name) {
                    Some(r) => [r.min, r.max],
                    None => {
                        let col = params.space.context.iter().find(|c| c.var == i);
                        let (center, half) =
                            col.map_or((0.0, 0.0), |c| (c.center, DEFAULT_RANGE_SCALES * c.scale));
                        [
                            var.min.unwrap_or(center - half),
                            var.max.unwrap_or(center + half),
                        ]
                    }
                },
            );
        }
        let visit = VisitModel {
            space: params.space,
            coef: params.coefficients.iter().map(|(_, v)| *v).collect(),
            visit_interval: params.visit_interval,
            weekly_interval: params.weekly_interval,
        };
        Ok(Model {
            manifest,
            catalog,
            visit,
            planner: params.planner,
            interval_quantiles: params.interval_quantiles,
            clusters: params.cluster_mix,
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
        cluster_mix: &[ClusterMix],
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
            context_ranges: read.context_ranges.clone(),
            cluster_mix: cluster_mix.to_vec(),
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

impl Params {
    /// Checks the parameter file against itself and its catalog (see [`Model::load`]); the
    /// message names the part at fault.
    pub fn validate(&self) -> Result<(), String> {
        use crate::echo::echo;
        if self.format != FORMAT {
            return Err(format!(
                "format '{}' is not supported (expected '{FORMAT}')",
                echo(&self.format)
            ));
        }
        let catalog = &self.catalog;
        catalog
            .validate()
            .map_err(|(entry, m)| format!("catalog: {entry}: {m}"))?;
        let n_tasks = catalog.insatser.len();
        let space = &self.space;
        if space.n_tasks != n_tasks {
            return Err(format!(
                "space.n_tasks is {}, the catalog has {n_tasks} codes",
                space.n_tasks
            ));
        }
        // The context columns must be exactly those the catalog implies, in order. An
        // ordinal is one column (models trained before steps were kept) or one step per
        // level above the lowest.
        let stepped: Vec<bool> = (0..catalog.contexts.len())
            .map(|v| {
                space
                    .context
                    .iter()
                    .any(|c| c.var == v && c.at_least.is_some())
            })
            .collect();
        let expected: Vec<(usize, Option<usize>, Option<f64>)> = catalog
            .contexts
            .iter()
            .enumerate()
            .flat_map(|(v, c)| match c.kind {
                ContextKind::Categorical => {
                    (1..c.labels.len()).map(|l| (v, Some(l), None)).collect()
                }
                ContextKind::Ordinal if stepped[v] => {
                    let mut levels = c.ordinal_levels.clone();
                    levels.sort_by(f64::total_cmp);
                    levels
                        .into_iter()
                        .skip(1)
                        .map(|level| (v, None, Some(level)))
                        .collect()
                }
                _ => vec![(v, None, None)],
            })
            .collect();
        if space.context.len() != expected.len() {
            return Err(format!(
                "space.context has {} columns, the catalog's context variables make {}",
                space.context.len(),
                expected.len()
            ));
        }
        for (j, (c, want)) in space.context.iter().zip(&expected).enumerate() {
            if (c.var, c.label) != (want.0, want.1) || c.at_least != want.2 {
                return Err(format!(
                    "space.context[{j}] is variable {} label {:?} level {:?}, the catalog implies variable {} label {:?} level {:?}",
                    c.var, c.label, c.at_least, want.0, want.1, want.2
                ));
            }
            if !c.center.is_finite() || c.center.abs() > crate::catalog::MAX_ABS_NUMERIC {
                return Err(format!("space.context[{j}].center is not a usable number"));
            }
            if !c.scale.is_finite() || !(1e-6..=1e6).contains(&c.scale) {
                return Err(format!(
                    "space.context[{j}].scale must be a number from 1e-6 to 1e6"
                ));
            }
        }
        for (i, &(a, b)) in space.pairs.iter().enumerate() {
            if a >= b || usize::from(b) >= n_tasks {
                return Err(format!(
                    "space.pairs[{i}] is ({a}, {b}): a pair is two different codes in ascending order, below {n_tasks}"
                ));
            }
            if space.pairs[..i].contains(&(a, b)) {
                return Err(format!("space.pairs[{i}] ({a}, {b}) appears twice"));
            }
        }
        let len = space.len();
        if self.coefficients.len() != len {
            return Err(format!(
                "{} coefficients for {len} features",
                self.coefficients.len()
            ));
        }
        let names = space.names(catalog);
        for (i, ((n, v), want)) in self.coefficients.iter().zip(&names).enumerate() {
            if n != want {
                return Err(format!(
                    "coefficient {i} is '{}', the feature space expects '{}'",
                    echo(n),
                    echo(want)
                ));
            }
            if !v.is_finite() || v.abs() > MAX_COEFFICIENT_MIN {
                return Err(format!(
                    "coefficient {i} ('{}') is not a finite number of at most {MAX_COEFFICIENT_MIN:e} minutes",
                    echo(n)
                ));
            }
        }
        for (key, [lo, hi]) in [
            ("visit_interval", self.visit_interval),
            ("weekly_interval", self.weekly_interval),
        ] {
            let usable = |x: f64| x.is_finite() && x > 0.0 && x <= MAX_INTERVAL_MULTIPLIER;
            if !usable(lo) || !usable(hi) {
                return Err(format!(
                    "{key} must hold multipliers above 0 and at most {MAX_INTERVAL_MULTIPLIER}"
                ));
            }
            if lo > hi {
                return Err(format!("{key}: P10 multiplier {lo} is above P90 {hi}"));
            }
        }
        let [qlo, qhi] = self.interval_quantiles;
        if !(qlo > 0.0 && qlo < qhi && qhi < 1.0) {
            return Err(format!(
                "interval_quantiles ({qlo}, {qhi}) must ascend strictly between 0 and 1"
            ));
        }
        let habits = &self.planner.habits;
        if habits.len() != n_tasks {
            return Err(format!(
                "the planner has {} habits, the catalog has {n_tasks} codes",
                habits.len()
            ));
        }
        for (i, (h, insats)) in habits.iter().zip(&catalog.insatser).enumerate() {
            if h.code != insats.code {
                return Err(format!(
                    "planner.habits[{i}] is for '{}', the catalog's code {i} is '{}'",
                    echo(&h.code),
                    echo(&insats.code)
                ));
            }
            let sum: f64 = h.slot_share.iter().sum();
            if h.slot_share.iter().any(|x| !x.is_finite() || *x < 0.0) || (sum - 1.0).abs() > 1e-6 {
                return Err(format!(
                    "planner.habits[{i}].slot_share must be non-negative shares summing to 1"
                ));
            }
            if !(0.0..=1.0).contains(&h.joins_share) {
                return Err(format!(
                    "planner.habits[{i}].joins_share must be a share from 0 to 1"
                ));
            }
        }
        for (i, r) in self.context_ranges.iter().enumerate() {
            let var = catalog
                .contexts
                .iter()
                .find(|c| c.name == r.name && c.kind == ContextKind::Numeric)
                .ok_or_else(|| {
                    format!(
                        "context_ranges[{i}] is for '{}', not a numeric context variable of the catalog",
                        echo(&r.name)
                    )
                })?;
            if self.context_ranges[..i].iter().any(|o| o.name == r.name) {
                return Err(format!("context_ranges[{i}]: '{}' appears twice", r.name));
            }
            let bounded = |x: f64| x.is_finite() && x.abs() <= crate::catalog::MAX_ABS_NUMERIC;
            if !bounded(r.min) || !bounded(r.max) || r.min > r.max {
                return Err(format!(
                    "context_ranges[{i}] ({}): min {} and max {} must be finite and in order",
                    r.name, r.min, r.max
                ));
            }
            if var.min.is_some_and(|lo| r.min < lo) || var.max.is_some_and(|hi| r.max > hi) {
                return Err(format!(
                    "context_ranges[{i}] ({}) goes beyond the catalog's bounds ({})",
                    r.name,
                    var.expected()
                ));
            }
        }
        Ok(())
    }
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
