//! The models the service holds, by alias (`production`, `candidate`), swapped atomically.
//!
//! Readers take an `Arc<Model>` at the start of a call and keep it to the end, so a swap
//! never changes the model under a running call. Writers (activate, reload, a finished
//! training run) load, validate and warm the new version first, and swap only if all of
//! that succeeded; a refused version leaves everything that serves unchanged.

use crate::error::ApiError;
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
    fn get(&self, alias: &str) -> Option<&Arc<Model>> {
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
    /// Versions validated successfully at least once ("name/version").
    known: Mutex<BTreeSet<String>>,
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
                            "model '{s}' is not active; serving aliases are production and candidate (ActivateModel loads another version)"
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
                "no model version '{s}' under {}",
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
                "version '{s}' exists for several models ({}); say name/version",
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
        let result = Model::load(&dir).map_err(|e| e.to_string()).and_then(|m| {
            if m.name() != name || m.version() != version {
                return Err(format!(
                    "its manifest names {}/{}, not the folder it is in",
                    m.name(),
                    m.version()
                ));
            }
            warm(&m).map(|_| m)
        });
        match result {
            Ok(m) => {
                self.refused.lock().unwrap().remove(&k);
                self.known.lock().unwrap().insert(k);
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
        let _w = self.write.lock().unwrap();
        let mut next = Aliases::clone(&self.state.load());
        let slot = match alias {
            PRODUCTION => &mut next.production,
            CANDIDATE => &mut next.candidate,
            other => {
                return Err(ApiError::field(
                    "alias",
                    format!("'{other}' is not an alias; expected production or candidate"),
                ))
            }
        };
        let previous = slot.replace(model.clone());
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
        let alias = match alias.trim() {
            "" => PRODUCTION,
            a @ (PRODUCTION | CANDIDATE) => a,
            other => {
                return Err(ApiError::field(
                    "alias",
                    format!("'{other}' is not an alias; expected production or candidate"),
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
        let previous = self.swap(alias, model.clone())?;
        Ok((model, previous))
    }

    /// Start-up: production from `active` (or the newest version of the first model name),
    /// candidate from `candidate` when set. Blocking. A failure leaves the alias empty
    /// and is returned for the log.
    pub fn startup(&self, active: &str, candidate: &str) -> Vec<String> {
        let mut problems = Vec::new();
        let selector = if active.trim().is_empty() {
            match self.scan().into_iter().next() {
                Some(first) => first.name,
                None => {
                    problems.push(format!("no model found under {}", self.dir.display()));
                    String::new()
                }
            }
        } else {
            active.to_string()
        };
        if !selector.is_empty() {
            if let Err(e) = self.activate(&selector, PRODUCTION) {
                problems.push(format!("production: {e}"));
            }
        }
        if !candidate.trim().is_empty() {
            if let Err(e) = self.activate(candidate, CANDIDATE) {
                problems.push(format!("candidate: {e}"));
            }
        }
        problems
    }

    /// ReloadModels: validates versions not seen before; the newest valid version newer
    /// than production (of production's name) becomes candidate, or production when
    /// `activate_latest`. With no production yet, the newest valid version becomes
    /// production. Blocking.
    pub fn reload(&self, activate_latest: bool) -> ReloadOutcome {
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
        if let Some(m) = newest {
            let alias = if activate_latest || production.is_none() {
                PRODUCTION
            } else {
                CANDIDATE
            };
            let _ = self.swap(alias, m);
        }
        out
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
