//! The models the service holds, by alias (`production`, `candidate`), swapped atomically.
//!
//! Readers take an `Arc<Model>` at the start of a call and keep it to the end, so a swap
//! never changes the model under a running call. Writers (activate, reload, a finished
//! training run) load, validate and warm the new version first, and swap only if all of
//! that succeeded; a refused version leaves everything that serves unchanged.

use crate::error::{truncate_for_message, ApiError};
use arc_swap::ArcSwap;
use ramtid_core::catalog::ContextKind;
use ramtid_core::estimate::estimate;
use ramtid_core::model::{list_versions, Manifest, Model};
use ramtid_core::needs::{ValidNeed, ValidNeeds};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

pub const PRODUCTION: &str = "production";
pub const CANDIDATE: &str = "candidate";

/// What the aliases point at, at one moment.
#[derive(Debug, Default, Clone)]
pub struct Aliases {
    pub production: Option<Arc<Model>>,
    pub candidate: Option<Arc<Model>>,
}

impl Aliases {
    pub fn get(&self, alias: &str) -> Option<&Arc<Model>> {
        match alias {
            PRODUCTION => self.production.as_ref(),
            CANDIDATE => self.candidate.as_ref(),
            _ => None,
        }
    }

    /// Aliases that point at `name/version`.
    pub fn aliases_of(&self, name: &str, version: &str) -> Vec<&'static str> {
        let is = |m: &Option<Arc<Model>>| {
            m.as_ref()
                .is_some_and(|m| m.name() == name && m.version() == version)
        };
        let mut v = Vec::new();
        if is(&self.production) {
            v.push(PRODUCTION);
        }
        if is(&self.candidate) {
            v.push(CANDIDATE);
        }
        v
    }
}

/// One version found on disk.
#[derive(Debug, Clone)]
pub struct DiskVersion {
    pub name: String,
    pub version: String,
    pub dir: PathBuf,
    /// The manifest, or why it could not be read.
    pub manifest: Result<Manifest, String>,
}

/// What a reload found.
#[derive(Debug, Default)]
pub struct ReloadOutcome {
    /// (name, version) loaded and validated for the first time.
    pub loaded: Vec<(String, String)>,
    /// (name, version, reason) refused.
    pub refused: Vec<(String, String, String)>,
}

pub struct Registry {
    dir: PathBuf,
    state: ArcSwap<Aliases>,
    /// Serializes writers; readers never take it.
    write: Mutex<()>,
    /// Versions a reload or an activation has seen ("name/version"): a reload looks only
    /// at versions not in here.
    known: Mutex<BTreeSet<String>>,
    /// Versions validated successfully at least once ("name/version").
    validated: Mutex<BTreeSet<String>>,
    /// Versions refused, with the reason ("name/version" → reason).
    refused: Mutex<BTreeMap<String, String>>,
    /// Bumped on every swap; the health and metrics tasks watch it.
    changes: watch::Sender<u64>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry").field("dir", &self.dir).finish()
    }
}

fn key(name: &str, version: &str) -> String {
    format!("{name}/{version}")
}

fn version_number(v: &str) -> Option<u64> {
    v.parse().ok()
}

impl Registry {
    pub fn new(dir: PathBuf) -> Registry {
        Registry {
            dir,
            state: ArcSwap::from_pointee(Aliases::default()),
            write: Mutex::new(()),
            known: Mutex::new(BTreeSet::new()),
            validated: Mutex::new(BTreeSet::new()),
            refused: Mutex::new(BTreeMap::new()),
            changes: watch::channel(0).0,
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A receiver that sees a new value after every swap.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// The aliases now. Cheap: one atomic load.
    pub fn current(&self) -> Arc<Aliases> {
        self.state.load_full()
    }

    /// The production model, if any (hot path).
    pub fn production(&self) -> Option<Arc<Model>> {
        self.state.load().production.clone()
    }

    /// The model a request selects: empty or "production", "candidate", or a version held
    /// under one of them ("name/version" or "version").
    pub fn select(&self, selector: &str) -> Result<Arc<Model>, ApiError> {
        let s = selector.trim();
        let state = self.state.load();
        match s {
            "" | PRODUCTION => state.production.clone().ok_or(ApiError::NoModel),
            CANDIDATE => state.candidate.clone().ok_or_else(|| {
                ApiError::ModelNotFound("no model is under the alias 'candidate'".into())
            }),
            _ => {
                let matches = |m: &Arc<Model>| {
                    s == m.version()
                        || s.split_once('/')
                            .is_some_and(|(n, v)| n == m.name() && v == m.version())
                };
                state
                    .production
                    .iter()
                    .chain(state.candidate.iter())
                    .find(|m| matches(m))
                    .cloned()
                    .ok_or_else(|| {
                        ApiError::ModelNotFound(format!(
                            "model '{}' is not active; serving aliases are production and candidate (ActivateModel loads another version)",
                            truncate_for_message(s)
                        ))
                    })
            }
        }
    }

    /// Every version on disk, by name then version.
    pub fn scan(&self) -> Vec<DiskVersion> {
        let mut names: Vec<String> = std::fs::read_dir(&self.dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.path().is_dir())
            .filter_map(|e| e.file_name().to_str().map(str::to_string))
            .filter(|n| !n.starts_with('.'))
            .collect();
        names.sort();
        let mut out = Vec::new();
        for name in names {
            let base = self.dir.join(&name);
            for version in list_versions(&base) {
                let dir = base.join(&version);
                let manifest = std::fs::read(dir.join("manifest.json"))
                    .map_err(|e| e.to_string())
                    .and_then(|b| {
                        serde_json::from_slice::<Manifest>(&b)
                            .map_err(|e| format!("manifest.json is not valid: {e}"))
                    });
                out.push(DiskVersion {
                    name: name.clone(),
                    version,
                    dir,
                    manifest,
                });
            }
        }
        out
    }

    /// Why a version was refused, if it was.
    pub fn refused_reason(&self, name: &str, version: &str) -> Option<String> {
        self.refused
            .lock()
            .unwrap()
            .get(&key(name, version))
            .cloned()
    }

    /// Resolves a selector to a version on disk: "name/version", "name" (its newest),
    /// "version" (when exactly one name has it).
    pub fn resolve_on_disk(&self, selector: &str) -> Result<(String, String), ApiError> {
        let s = selector.trim();
        let all = self.scan();
        let not_found = || {
            ApiError::ModelNotFound(format!(
                "no model version '{}' under {}",
                truncate_for_message(s),
                self.dir.display()
            ))
        };
        if let Some((name, version)) = s.split_once('/') {
            return all
                .iter()
                .find(|d| d.name == name && d.version == version)
                .map(|d| (d.name.clone(), d.version.clone()))
                .ok_or_else(not_found);
        }
        if let Some(newest) = all.iter().rfind(|d| d.name == s) {
            return Ok((newest.name.clone(), newest.version.clone()));
        }
        let by_version: Vec<&DiskVersion> = all.iter().filter(|d| d.version == s).collect();
        match by_version.as_slice() {
            [one] => Ok((one.name.clone(), one.version.clone())),
            [] => Err(not_found()),
            many => Err(ApiError::ModelNotFound(format!(
                "version '{}' exists for several models ({}); say name/version",
                truncate_for_message(s),
                many.iter()
                    .map(|d| d.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        }
    }

    /// Loads, validates and warms one version. Blocking (file I/O): call from a blocking
    /// thread. A failure is remembered as the version's refusal reason.
    pub fn load_version(&self, name: &str, version: &str) -> Result<Arc<Model>, ApiError> {
        let k = key(name, version);
        let current = self.current();
        if let Some(m) = [&current.production, &current.candidate]
            .into_iter()
            .flatten()
            .find(|m| m.name() == name && m.version() == version)
        {
            return Ok(m.clone());
        }
        let dir = self.dir.join(name).join(version);
        // A model folder is input from outside (a failed training run, a copy, a hand edit):
        // whatever is wrong with it, including a panic in code that indexes into it, is that
        // version's refusal and never takes the caller (start-up, ActivateModel, ReloadModels)
        // down with it.
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            Model::load(&dir).map_err(|e| e.to_string()).and_then(|m| {
                if m.name() != name || m.version() != version {
                    return Err(format!(
                        "its manifest names {}/{}, not the folder it is in",
                        truncate_for_message(m.name()),
                        truncate_for_message(m.version())
                    ));
                }
                warm(&m).map(|_| m)
            })
        }))
        .unwrap_or_else(|_| {
            Err("loading it panicked (the model files do not fit together)".to_string())
        });
        match result {
            Ok(m) => {
                self.refused.lock().unwrap().remove(&k);
                self.validated.lock().unwrap().insert(k);
                Ok(Arc::new(m))
            }
            Err(reason) => {
                tracing::warn!(model = %k, %reason, "model refused");
                self.refused
                    .lock()
                    .unwrap()
                    .insert(k.clone(), reason.clone());
                Err(ApiError::Refused { model: k, reason })
            }
        }
    }

    /// Puts `model` under `alias` atomically; returns what the alias held before.
    pub fn swap(&self, alias: &str, model: Arc<Model>) -> Result<Option<Arc<Model>>, ApiError> {
        self.swap_with(alias, model, |_, _| Ok(()))
    }

    /// [`Registry::swap`], calling `before` with the aliases as they will be and what the
    /// alias held, after the decision and before the change: the audit line is written
    /// there, and an error from it leaves everything as it was.
    pub fn swap_with(
        &self,
        alias: &str,
        model: Arc<Model>,
        before: impl FnOnce(&Aliases, Option<&Arc<Model>>) -> Result<(), ApiError>,
    ) -> Result<Option<Arc<Model>>, ApiError> {
        let _w = self.write.lock().unwrap();
        let mut next = Aliases::clone(&self.state.load());
        let slot = match alias {
            PRODUCTION => &mut next.production,
            CANDIDATE => &mut next.candidate,
            other => {
                return Err(ApiError::field(
                    "alias",
                    format!(
                        "'{}' is not an alias; expected production or candidate",
                        truncate_for_message(other)
                    ),
                ))
            }
        };
        let previous = slot.replace(model.clone());
        before(&next, previous.as_ref())?;
        self.known
            .lock()
            .unwrap()
            .insert(key(model.name(), model.version()));
        self.state.store(Arc::new(next));
        tracing::info!(
            alias,
            model = model.name(),
            version = model.version(),
            "model activated"
        );
        self.changes.send_modify(|g| *g += 1);
        Ok(previous)
    }

    /// ActivateModel: a selector (version on disk, or an alias to copy) under an alias.
    /// Blocking.
    pub fn activate(
        &self,
        selector: &str,
        alias: &str,
    ) -> Result<(Arc<Model>, Option<Arc<Model>>), ApiError> {
        self.activate_with(selector, alias, |_, _| Ok(()))
    }

    /// [`Registry::activate`], with `before` called as in [`Registry::swap_with`].
    pub fn activate_with(
        &self,
        selector: &str,
        alias: &str,
        before: impl FnOnce(&Aliases, Option<&Arc<Model>>) -> Result<(), ApiError>,
    ) -> Result<(Arc<Model>, Option<Arc<Model>>), ApiError> {
        let alias = match alias.trim() {
            "" => PRODUCTION,
            a @ (PRODUCTION | CANDIDATE) => a,
            other => {
                return Err(ApiError::field(
                    "alias",
                    format!(
                        "'{}' is not an alias; expected production or candidate",
                        truncate_for_message(other)
                    ),
                ))
            }
        };
        let s = selector.trim();
        if s.is_empty() {
            return Err(ApiError::field(
                "model",
                "is required: name/version, name, version or an alias",
            ));
        }
        let model = match s {
            PRODUCTION | CANDIDATE => self.current().get(s).cloned().ok_or_else(|| {
                ApiError::ModelNotFound(format!("no model is under the alias '{s}'"))
            })?,
            _ => {
                let (name, version) = self.resolve_on_disk(s)?;
                self.load_version(&name, &version)?
            }
        };
        let previous = self.swap_with(alias, model.clone(), before)?;
        Ok((model, previous))
    }

    /// Start-up: production from `active`, candidate from `candidate` when set. Blocking.
    /// A failure leaves the alias empty and is returned for the log.
    ///
    /// `active` empty (the first model name) or a model name: the newest version of that name
    /// that is valid, so that a broken newest folder (a failed training run, a damaged copy)
    /// does not leave the server without a model while a valid older one exists. Each version
    /// passed over is refused with its reason (ListModels, the log). A `name/version` or a
    /// bare version is what the operator pinned: only that version is tried.
    pub fn startup(&self, active: &str, candidate: &str) -> Vec<String> {
        let mut problems = Vec::new();
        // The candidate first: the service reports SERVING once production is loaded, and by
        // then every start-up model has been tried (a caller may ask for the candidate at once).
        if !candidate.trim().is_empty() {
            if let Err(e) = self.activate(candidate, CANDIDATE) {
                problems.push(format!("candidate: {e}"));
            }
        }
        let all = self.scan();
        let selector = active.trim();
        let name = if selector.is_empty() {
            match all.first() {
                Some(first) => Some(first.name.clone()),
                None => {
                    problems.push(format!("no model found under {}", self.dir.display()));
                    None
                }
            }
        } else if all.iter().any(|d| d.name == selector) {
            Some(selector.to_string())
        } else {
            None
        };
        match name {
            Some(name) => match self.newest_valid(&name) {
                Ok(m) => {
                    let _ = self.swap(PRODUCTION, m);
                }
                Err(e) => problems.push(format!("production: {e}")),
            },
            None if !selector.is_empty() => {
                if let Err(e) = self.activate(selector, PRODUCTION) {
                    problems.push(format!("production: {e}"));
                }
            }
            None => {}
        }
        problems
    }

    /// The newest version of `name` that loads and validates, trying newest first. Blocking.
    /// Versions passed over are remembered as refused (and logged by `load_version`).
    pub fn newest_valid(&self, name: &str) -> Result<Arc<Model>, ApiError> {
        let mut versions: Vec<DiskVersion> =
            self.scan().into_iter().filter(|d| d.name == name).collect();
        versions.reverse();
        let mut refused = Vec::new();
        for d in &versions {
            match self.load_version(&d.name, &d.version) {
                Ok(m) => {
                    if !refused.is_empty() {
                        tracing::warn!(
                            model = %key(m.name(), m.version()),
                            passed_over = %refused.join(", "),
                            "newer versions are refused; using the newest valid one"
                        );
                    }
                    return Ok(m);
                }
                Err(_) => refused.push(key(&d.name, &d.version)),
            }
        }
        Err(ApiError::Refused {
            model: truncate_for_message(name).into_owned(),
            reason: if refused.is_empty() {
                format!("no version of it under {}", self.dir.display())
            } else {
                format!(
                    "no valid version: {} refused (ListModels gives each reason)",
                    refused.join(", ")
                )
            },
        })
    }

    /// Whether a version on disk is valid, loading it once if it was never tried (the result
    /// is remembered), so that ListModels and GetModel never show a broken version as
    /// AVAILABLE. Blocking. `Err` holds the refusal's reason.
    pub fn check_version(&self, name: &str, version: &str) -> Result<(), String> {
        let k = key(name, version);
        if self.validated.lock().unwrap().contains(&k) {
            return Ok(());
        }
        if let Some(reason) = self.refused.lock().unwrap().get(&k) {
            return Err(reason.clone());
        }
        self.load_version(name, version)
            .map(drop)
            .map_err(|e| match e {
                ApiError::Refused { reason, .. } => reason,
                other => other.to_string(),
            })
    }

    /// Every refused version with its reason ("name/version" → reason).
    pub fn refusals(&self) -> BTreeMap<String, String> {
        self.refused.lock().unwrap().clone()
    }

    /// ReloadModels: validates versions not seen before; the newest valid version newer
    /// than production (of production's name) becomes candidate, or production when
    /// `activate_latest`. With no production yet, the newest valid version becomes
    /// production. Blocking.
    ///
    /// `before` is called with the aliases as they will be, before any alias moves (the
    /// audit line); an error from it moves nothing, forgets the versions loaded (a later
    /// reload tries them again) and is returned.
    pub fn reload(
        &self,
        activate_latest: bool,
        before: impl FnOnce(&Aliases) -> Result<(), ApiError>,
    ) -> Result<ReloadOutcome, ApiError> {
        let mut out = ReloadOutcome::default();
        let mut newest: Option<Arc<Model>> = None;
        let production = self.production();
        for d in self.scan() {
            let k = key(&d.name, &d.version);
            if self.known.lock().unwrap().contains(&k) {
                continue;
            }
            match self.load_version(&d.name, &d.version) {
                Ok(m) => {
                    self.known.lock().unwrap().insert(k);
                    out.loaded.push((d.name.clone(), d.version.clone()));
                    let same_name = production.as_ref().is_none_or(|p| p.name() == m.name());
                    let newer_than_production = production
                        .as_ref()
                        .is_none_or(|p| version_number(m.version()) > version_number(p.version()));
                    let newer_than_best = newest
                        .as_ref()
                        .is_none_or(|b| version_number(m.version()) > version_number(b.version()));
                    if same_name && newer_than_production && newer_than_best {
                        newest = Some(m);
                    }
                }
                Err(e) => {
                    let reason = match e {
                        ApiError::Refused { reason, .. } => reason,
                        other => other.to_string(),
                    };
                    out.refused.push((d.name, d.version, reason));
                }
            }
        }
        let decided = match newest {
            Some(m) => {
                let alias = if activate_latest || production.is_none() {
                    PRODUCTION
                } else {
                    CANDIDATE
                };
                self.swap_with(alias, m, |next, _| before(next)).map(drop)
            }
            None => {
                let _w = self.write.lock().unwrap();
                before(&self.state.load())
            }
        };
        if let Err(e) = decided {
            let mut known = self.known.lock().unwrap();
            for (name, version) in &out.loaded {
                known.remove(&key(name, version));
            }
            return Err(e);
        }
        Ok(out)
    }
}

/// Runs the model once on a needs set that uses every code, so that a model that loads but
/// cannot estimate (non-finite numbers, a planner that does not fit) is refused before it
/// serves.
pub fn warm(model: &Model) -> Result<(), String> {
    let context = model
        .catalog
        .contexts
        .iter()
        .map(|c| match c.kind {
            ContextKind::Ordinal => c.ordinal_levels[0],
            ContextKind::Boolean | ContextKind::Categorical => 0.0,
            ContextKind::Numeric => match (c.min, c.max) {
                (Some(lo), Some(hi)) => (lo + hi) / 2.0,
                (Some(lo), None) => lo,
                (None, Some(hi)) => hi.min(0.0),
                (None, None) => 0.0,
            },
        })
        .collect();
    let needs = ValidNeeds {
        recipient_id: "warm-up".into(),
        context,
        needs: (0..model.catalog.insatser.len())
            .map(|i| ValidNeed {
                insats: i,
                per_week: 1.0,
                slot: None,
                staff: 1,
                words: None,
            })
            .collect(),
    };
    let e = std::panic::catch_unwind(|| estimate(model, &needs))
        .map_err(|_| "estimating a test needs set panicked".to_string())?;
    let finite = [e.weekly_min, e.p10_weekly_min, e.p90_weekly_min]
        .iter()
        .chain(e.visits.iter().map(|v| &v.minutes))
        .all(|x| x.is_finite());
    if !finite || e.weekly_min <= 0.0 {
        return Err(format!(
            "a test needs set estimated to {} minutes per week; the model does not produce usable numbers",
            e.weekly_min
        ));
    }
    Ok(())
}
