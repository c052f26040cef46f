//! `ramtid.v1.ModelService`: list, inspect, activate, reload and train models.

use crate::auth::Caller;
use crate::error::ApiError;
use crate::registry::{CANDIDATE, PRODUCTION};
use crate::worker::{Event, FailureKind, Job, SUBCOMMAND};
use crate::Shared;
use ramtid_core::datadir::{DataDir, OpenError};
use ramtid_core::progress::Stage;
use ramtid_core::train::{check_model_name, TrainRequest, TrainSummary};
use ramtid_proto::convert;
use ramtid_proto::pb::{self, model_service_server::ModelService};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};
use tracing::Instrument;

#[derive(Debug, Clone)]
pub struct Models {
    shared: Arc<Shared>,
    /// One training run at a time.
    training: Arc<tokio::sync::Mutex<()>>,
}

impl Models {
    pub fn new(shared: Arc<Shared>) -> Self {
        Models {
            shared,
            training: Arc::new(tokio::sync::Mutex::new(())),
        }
    }

    fn info(&self, name: &str, version: &str) -> Result<pb::ModelInfo, ApiError> {
        let reg = &self.shared.registry;
        let aliases = reg.current();
        let d = reg
            .scan()
            .into_iter()
            .find(|d| d.name == name && d.version == version)
            .ok_or_else(|| ApiError::ModelNotFound(format!("no model version {name}/{version}")))?;
        let aliases_of = aliases.aliases_of(name, version);
        let refused = if aliases_of.is_empty() {
            reg.check_version(name, version).err()
        } else {
            None
        };
        Ok(convert::model_info(
            name,
            version,
            d.manifest.as_ref().map_err(String::as_str),
            aliases_of,
            refused,
        ))
    }
}

/// Runs blocking registry work off the async workers.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::Internal(format!("worker failed: {e}")))?
}

/// A path from a request, checked the way the worker will open it: a regular file below
/// the data directory, reached without following any link (see [`ramtid_core::datadir`]), and not
/// the audit log (which may live in the data directory). Opening here answers a bad path at
/// once; the worker opens the file again by the same rule, so a swap in between cannot
/// lead it outside. Returns the path as given.
pub fn confine(
    data_dir: &Path,
    audit: Option<&Path>,
    field: &str,
    raw: &str,
) -> Result<PathBuf, ApiError> {
    let dir = DataDir::open(data_dir).map_err(|e| ApiError::Precondition(e.to_string()))?;
    let file = dir.open_file(raw).map_err(|e| match e {
        OpenError::Refused(why) => ApiError::field(field, why),
        other => ApiError::field(field, other.to_string()),
    })?;
    if let Some(audit) = audit {
        use std::os::unix::fs::MetadataExt;
        let same =
            |a: &std::fs::Metadata, b: &std::fs::Metadata| a.dev() == b.dev() && a.ino() == b.ino();
        if let (Ok(opened), Ok(log)) = (file.metadata(), std::fs::metadata(audit)) {
            if same(&opened, &log) {
                return Err(ApiError::field(
                    field,
                    format!("'{raw}' is the audit log; it cannot be used for training"),
                ));
            }
        }
    }
    Ok(PathBuf::from(raw))
}

/// The audit log's outcome: "ok" or the gRPC code and message.
fn outcome<T>(result: &Result<T, ApiError>) -> String {
    match result {
        Ok(_) => "ok".into(),
        Err(e) => format!("{:?}: {e}", e.code()),
    }
}

/// A worker's reported failure as the caller's status.
fn failure(kind: FailureKind, field: Option<String>, message: String) -> ApiError {
    match (kind, field) {
        (FailureKind::Invalid, Some(f)) => ApiError::field(f, message),
        (FailureKind::Invalid, None) | (FailureKind::Precondition, _) => {
            ApiError::Precondition(format!("the model cannot be fitted: {message}"))
        }
        (FailureKind::Internal, _) => ApiError::Internal(format!("training failed: {message}")),
    }
}

/// Why a worker ended without reporting a result.
fn worker_died(status: std::io::Result<std::process::ExitStatus>, limit_mb: u64) -> ApiError {
    use std::os::unix::process::ExitStatusExt;
    let how = match status {
        Ok(s) => match (s.code(), s.signal()) {
            (Some(c), _) => format!("exited with status {c}"),
            (None, Some(sig)) => format!("was stopped by signal {sig}"),
            _ => "ended".to_string(),
        },
        Err(e) => format!("could not be waited for: {e}"),
    };
    ApiError::Internal(format!(
        "the training worker {how} without a result (its memory is limited to {limit_mb} MiB \
         for the fit plus {} MiB: training.max_memory_mb)",
        ramtid_core::train::WORKER_HEADROOM_MB
    ))
}

/// The executable run as the worker.
fn worker_program(cfg: &crate::config::TrainingConfig) -> std::io::Result<PathBuf> {
    if cfg.worker.as_os_str().is_empty() {
        std::env::current_exe()
    } else {
        Ok(cfg.worker.clone())
    }
}

/// How a worker run ended, before the server publishes anything.
enum Ended {
    Done(Box<TrainSummary>),
    Failed(ApiError),
    Cancelled,
}

/// Runs one job in a worker process, forwarding its stages to `tx`. Kills the worker when
/// the caller goes away (`tx` closed) and removes what it left in the models directory.
async fn run_worker(
    program: PathBuf,
    job: Job,
    tx: &mpsc::Sender<Result<pb::TrainProgress, Status>>,
) -> Ended {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
    let models_dir = job.request.models_dir.clone();
    let limit_mb = job.request.limits.max_memory_mb;
    let mut child = match tokio::process::Command::new(&program)
        .arg(SUBCOMMAND)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            return Ended::Failed(ApiError::Internal(format!(
                "the training worker {} cannot be started: {e}",
                program.display()
            )))
        }
    };
    let pid = child.id();
    let mut line = serde_json::to_vec(&job).expect("jobs serialize");
    line.push(b'\n');
    if let Some(mut stdin) = child.stdin.take() {
        // A worker that dies at once shows up below as an end without a result.
        let _ = stdin.write_all(&line).await;
    }
    let mut lines = tokio::io::BufReader::new(child.stdout.take().expect("piped")).lines();
    let mut ended: Option<Ended> = None;
    loop {
        tokio::select! {
            _ = tx.closed() => {
                let _ = child.start_kill();
                let _ = child.wait().await;
                if let Some(pid) = pid {
                    ramtid_core::model::remove_stale_temp(&models_dir, Some(pid));
                }
                return Ended::Cancelled;
            }
            next = lines.next_line() => match next {
                Ok(Some(text)) => match serde_json::from_str::<Event>(&text) {
                    Ok(Event::Stage { stage, total, elapsed_s }) => {
                        let name = stage.as_str();
                        let visits = match stage {
                            Stage::Fitting => total.unwrap_or(0),
                            Stage::Reading | Stage::Writing => 0,
                        };
                        tracing::info!(stage = name, "training");
                        let _ = tx.send(Ok(pb::TrainProgress {
                            event: Some(pb::train_progress::Event::Stage(pb::TrainStage {
                                stage: name.to_string(),
                                visits,
                                elapsed_s,
                            })),
                        })).await;
                    }
                    Ok(Event::Done { summary }) => ended = Some(Ended::Done(summary)),
                    Ok(Event::Failed { kind, field, message }) => {
                        ended.get_or_insert(Ended::Failed(failure(kind, field, message)));
                    }
                    Err(_) => tracing::warn!("the training worker wrote a line that is not an event"),
                },
                Ok(None) | Err(_) => break,
            },
        }
    }
    let status = child.wait().await;
    let ok = status.as_ref().is_ok_and(|s| s.success());
    if !ok || !matches!(ended, Some(Ended::Done(_))) {
        if let Some(pid) = pid {
            ramtid_core::model::remove_stale_temp(&models_dir, Some(pid));
        }
    }
    match ended {
        Some(e) if ok => e,
        // A panic reports itself before the process ends with a failure status.
        Some(Ended::Failed(e)) => Ended::Failed(e),
        _ => Ended::Failed(worker_died(status, limit_mb)),
    }
}

#[tonic::async_trait]
impl ModelService for Models {
    async fn list_models(
        &self,
        _request: Request<pb::ListModelsRequest>,
    ) -> Result<Response<pb::ListModelsResponse>, Status> {
        let reg = self.shared.registry.clone();
        let result = blocking(move || {
            let aliases = reg.current();
            Ok(pb::ListModelsResponse {
                models: reg
                    .scan()
                    .iter()
                    .map(|d| {
                        // A version is AVAILABLE only once it has been validated: one never
                        // tried is loaded here once (and remembered), so that a broken folder
                        // shows as REFUSED with its reason.
                        let aliases_of = aliases.aliases_of(&d.name, &d.version);
                        let refused = if aliases_of.is_empty() {
                            reg.check_version(&d.name, &d.version).err()
                        } else {
                            None
                        };
                        convert::model_info(
                            &d.name,
                            &d.version,
                            d.manifest.as_ref().map_err(String::as_str),
                            aliases_of,
                            refused,
                        )
                    })
                    .collect(),
            })
        })
        .await;
        crate::reply(result)
    }

    async fn get_model(
        &self,
        request: Request<pb::GetModelRequest>,
    ) -> Result<Response<pb::ModelInfo>, Status> {
        let selector = request.get_ref().model.trim().to_string();
        let me = self.clone();
        let result = blocking(move || {
            let (name, version) = match me.shared.registry.select(&selector) {
                Ok(m) => (m.name().to_string(), m.version().to_string()),
                Err(ApiError::NoModel) => return Err(ApiError::NoModel),
                Err(_) => me.shared.registry.resolve_on_disk(&selector)?,
            };
            me.info(&name, &version)
        })
        .await;
        crate::reply(result)
    }

    async fn activate_model(
        &self,
        request: Request<pb::ActivateModelRequest>,
    ) -> Result<Response<pb::ActivateModelResponse>, Status> {
        let caller = request.extensions().get::<Caller>().cloned();
        let r = request.into_inner();
        let shared = self.shared.clone();
        let result = blocking(move || {
            let alias = if r.alias.trim().is_empty() {
                PRODUCTION.to_string()
            } else {
                r.alias.trim().to_string()
            };
            // The line is written once the version is loaded and validated and before the
            // alias moves: an activation the log cannot record does not happen.
            let result = shared
                .registry
                .activate_with(&r.model, &r.alias, |next, previous| {
                    let target = match next.get(&alias) {
                        Some(m) => format!(
                            "{}/{} as {alias} (was {})",
                            m.name(),
                            m.version(),
                            previous
                                .map(|p| format!("{}/{}", p.name(), p.version()))
                                .unwrap_or_else(|| "none".into())
                        ),
                        None => format!("? as {alias}"),
                    };
                    shared
                        .audit
                        .require(caller.as_ref(), "activate_model", &target, "ok")
                })
                .map(|(model, previous)| pb::ActivateModelResponse {
                    model: Some(convert::model_ref(&model)),
                    alias: alias.clone(),
                    previous: previous.as_deref().map(convert::model_ref),
                });
            match &result {
                Ok(_) | Err(ApiError::AuditUnavailable { .. }) => {}
                // A refused activation changed nothing; it is recorded all the same.
                Err(_) => shared.audit.record(
                    caller.as_ref(),
                    "activate_model",
                    &format!(
                        "'{}' as {}",
                        crate::error::truncate_for_message(r.model.trim()),
                        crate::error::truncate_for_message(&alias)
                    ),
                    &outcome(&result),
                ),
            }
            result
        })
        .await;
        if let Ok(r) = &result {
            if let Some(m) = &r.model {
                crate::note_model(&m.name, &m.version);
            }
        }
        crate::reply(result)
    }

    async fn reload_models(
        &self,
        request: Request<pb::ReloadModelsRequest>,
    ) -> Result<Response<pb::ReloadModelsResponse>, Status> {
        let caller = request.extensions().get::<Caller>().cloned();
        let activate_latest = request.get_ref().activate_latest;
        let me = self.clone();
        let result = blocking(move || {
            let reg = &me.shared.registry;
            // Reloading moves aliases (candidate; production with activate_latest): the line
            // names them as they will be, and is written before they move.
            let name = |m: Option<&Arc<ramtid_core::model::Model>>| {
                m.map(|m| format!("{}/{}", m.name(), m.version()))
                    .unwrap_or_else(|| "none".into())
            };
            let outcome = reg.reload(activate_latest, |next| {
                me.shared.audit.require(
                    caller.as_ref(),
                    "reload_models",
                    &format!(
                        "activate_latest={activate_latest}: production {}, candidate {}",
                        name(next.production.as_ref()),
                        name(next.candidate.as_ref())
                    ),
                    "ok",
                )
            })?;
            let aliases = reg.current();
            Ok(pb::ReloadModelsResponse {
                loaded: outcome
                    .loaded
                    .into_iter()
                    .map(|(name, version)| pb::ModelRef { name, version })
                    .collect(),
                refused: outcome
                    .refused
                    .into_iter()
                    .map(|(name, version, reason)| {
                        me.info(&name, &version).unwrap_or_else(|_| pb::ModelInfo {
                            name,
                            version,
                            status: pb::ModelStatus::Refused as i32,
                            refused_reason: reason,
                            ..Default::default()
                        })
                    })
                    .collect(),
                production: aliases.production.as_deref().map(convert::model_ref),
                candidate: aliases.candidate.as_deref().map(convert::model_ref),
            })
        })
        .await;
        crate::reply(result)
    }

    type TrainModelStream = ReceiverStream<Result<pb::TrainProgress, Status>>;

    async fn train_model(
        &self,
        request: Request<pb::TrainModelRequest>,
    ) -> Result<Response<Self::TrainModelStream>, Status> {
        let caller = request.extensions().get::<Caller>().cloned();
        let r = request.into_inner();
        let data_dir = self.shared.cfg.data.dir.clone();
        let audit_path = self.shared.cfg.audit_path();
        let prepared = (|| {
            let mut violations = Vec::new();
            let mut check = |res: Result<PathBuf, ApiError>| match res {
                Ok(p) => Ok(Some(p)),
                Err(ApiError::Invalid(v)) => {
                    violations.extend(v);
                    Ok(None)
                }
                // The data directory itself is unusable: not the caller's fault.
                Err(other) => Err(other),
            };
            let audit = Some(audit_path.as_path());
            let catalog = check(confine(&data_dir, audit, "catalog_path", &r.catalog_path))?;
            let visits = check(confine(&data_dir, audit, "visits_path", &r.visits_path))?;
            if let Err(e) = check_model_name(&r.name) {
                violations.push(ramtid_core::needs::FieldViolation {
                    field: "name".into(),
                    description: e,
                });
            }
            // The same check as `ramtid train` and the configuration, before any file is
            // read: a bad setting is refused at once, naming `settings.<name>`.
            let params = match convert::train_params(
                self.shared.cfg.training.fit.clone(),
                r.folds,
                r.settings.as_ref(),
            ) {
                Ok(p) => Some(p),
                Err(v) => {
                    violations.push(v);
                    None
                }
            };
            if !violations.is_empty() {
                return Err(ApiError::Invalid(violations));
            }
            let guard = self.training.clone().try_lock_owned().map_err(|_| {
                ApiError::Busy(
                    "a training run is in progress on this server (one at a time); try again \
                     when it has finished"
                        .into(),
                )
            })?;
            let program = worker_program(&self.shared.cfg.training)
                .map_err(|e| ApiError::Internal(format!("no training worker program: {e}")))?;
            Ok((
                guard,
                program,
                Job {
                    request: TrainRequest {
                        catalog: catalog.expect("checked"),
                        visits: visits.expect("checked"),
                        data_dir: Some(data_dir.clone()),
                        limits: self.shared.cfg.training.limits(),
                        models_dir: self.shared.registry.dir().to_path_buf(),
                        name: r.name.clone(),
                        rejects: None,
                        params: params.expect("checked"),
                    },
                    limit_memory: true,
                    lower_priority: true,
                },
            ))
        })();
        let (guard, program, job) = match prepared {
            Ok(p) => p,
            Err(e) => {
                let o = format!("{:?}: {e}", e.code());
                let target = crate::error::truncate_for_message(&r.name).into_owned();
                self.shared.audit(caller, "train_model", target, o).await;
                return Err(e.into());
            }
        };
        // Training writes a version to disk: not unless the log has recorded that it started.
        if let Err(e) = self
            .shared
            .audit_start(caller.as_ref(), "train_model", r.name.clone())
            .await
        {
            drop(guard);
            return Err(e.into());
        }
        let alias = if r.activate { PRODUCTION } else { CANDIDATE };
        let (tx, rx) = mpsc::channel(16);
        let reg = self.shared.registry.clone();
        let shared = self.shared.clone();
        // The run keeps the call's span; the layers count the call when the stream ends
        // (a caller that goes away drops the stream: counted as cancelled).
        let span = tracing::Span::current();
        let name = job.request.name.clone();
        tokio::spawn(
            async move {
                let _guard = guard;
                let t0 = Instant::now();
                let ended = run_worker(program, job, &tx).await;
                let result: Result<pb::TrainResult, ApiError> = match ended {
                    Ended::Cancelled => {
                        shared
                            .audit(
                                caller,
                                "train_model",
                                name,
                                "cancelled by the caller".into(),
                            )
                            .await;
                        return;
                    }
                    Ended::Failed(e) => Err(e),
                    Ended::Done(summary) => {
                        let reg = reg.clone();
                        let audit = shared.audit.clone();
                        let caller = caller.clone();
                        blocking(move || {
                            // Loaded and checked as any reader loads a version.
                            let model =
                                ramtid_core::model::Model::load(Path::new(&summary.model_dir))
                                    .map_err(|e| {
                                        ApiError::Internal(format!(
                                            "the trained model cannot be loaded: {e}"
                                        ))
                                    })?;
                            crate::registry::warm(&model).map_err(|reason| ApiError::Refused {
                                model: format!("{}/{}", model.name(), model.version()),
                                reason,
                            })?;
                            let model = Arc::new(model);
                            // The outcome line before the alias moves: if it cannot be
                            // written, the new version stays on disk, unserved.
                            let target = format!("{}/{} as {alias}", model.name(), model.version());
                            reg.swap_with(alias, model.clone(), |_, _| {
                                audit.require(caller.as_ref(), "train_model", &target, "ok")
                            })?;
                            Ok(pb::TrainResult {
                                model: Some(convert::model_ref(&model)),
                                alias: alias.to_string(),
                                rows_read: summary.read.rows_read,
                                rows_used: summary.read.rows_used,
                                rows_rejected: summary.read.rows_rejected,
                                rows_flagged: summary.read.rows_flagged,
                                fit: Some(convert::fit_figures(&model.manifest)),
                                seconds: t0.elapsed().as_secs_f64(),
                            })
                        })
                        .await
                    }
                };
                // A result's line was written (required) before its alias moved; a failure
                // is recorded now, unless the failure is that the log cannot be written.
                if let Err(e) = &result {
                    if !matches!(e, ApiError::AuditUnavailable { .. }) {
                        shared
                            .audit(caller, "train_model", name, outcome(&result))
                            .await;
                    }
                }
                let _ = tx
                    .send(match result {
                        Ok(done) => Ok(pb::TrainProgress {
                            event: Some(pb::train_progress::Event::Done(done)),
                        }),
                        Err(e) => Err(e.into()),
                    })
                    .await;
            }
            .instrument(span),
        );
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn get_catalog(
        &self,
        request: Request<pb::GetCatalogRequest>,
    ) -> Result<Response<pb::Catalog>, Status> {
        let result = self
            .shared
            .registry
            .select(&request.get_ref().model)
            .map(|m| {
                crate::note_model(m.name(), m.version());
                convert::catalog(&m.catalog, &m)
            });
        crate::reply(result)
    }
}

#[cfg(test)]
mod tests {
    use super::confine;

    #[test]
    fn paths_stay_inside_the_data_directory() {
        let root = tempfile::tempdir().unwrap();
        let data = root.path().join("data");
        std::fs::create_dir_all(data.join("sub")).unwrap();
        std::fs::write(data.join("sub/visits.csv"), "x").unwrap();
        std::fs::write(root.path().join("secret.csv"), "x").unwrap();
        assert!(confine(&data, None, "visits_path", "sub/visits.csv").is_ok());
        let inside_abs = data.join("sub/visits.csv").display().to_string();
        assert!(confine(&data, None, "visits_path", &inside_abs).is_ok());
        let outside_abs = root.path().join("secret.csv").display().to_string();
        #[cfg(unix)]
        std::os::unix::fs::symlink(root.path().join("secret.csv"), data.join("link.csv")).unwrap();
        for bad in [
            "../secret.csv",
            "sub/../../secret.csv",
            outside_abs.as_str(),
            "",
            "sub",
            "missing.csv",
            #[cfg(unix)]
            "link.csv",
        ] {
            let e = confine(&data, None, "visits_path", bad)
                .unwrap_err()
                .to_string();
            assert!(e.contains("visits_path"), "{bad}: {e}");
        }
    }

    #[test]
    fn the_audit_log_is_not_training_input() {
        let root = tempfile::tempdir().unwrap();
        let audit = root.path().join("audit.log");
        std::fs::write(&audit, "{\"action\":\"activate_model\"}\n").unwrap();
        let e = confine(root.path(), Some(&audit), "catalog_path", "audit.log")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("is the audit log") && !e.contains("activate_model"),
            "{e}"
        );
    }
}
