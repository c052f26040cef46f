//! `ramtid.v1.ModelService`: list, inspect, activate, reload and train models.

use crate::auth::Caller;
use crate::error::ApiError;
use crate::metrics::Method;
use crate::registry::{CANDIDATE, PRODUCTION};
use crate::Shared;
use ramtid_core::progress::{Progress, Stage};
use ramtid_core::train::{check_model_name, train, TrainError, TrainRequest};
use ramtid_proto::convert;
use ramtid_proto::pb::{self, model_service_server::ModelService};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Code, Request, Response, Status};

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
        Ok(convert::model_info(
            name,
            version,
            d.manifest.as_ref().map_err(String::as_str),
            aliases.aliases_of(name, version),
            reg.refused_reason(name, version),
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

/// A path from a request, confined to the data directory: relative (or absolute inside
/// it), no `..`, an existing file whose real path is inside the data directory.
pub fn confine(data_dir: &Path, field: &str, raw: &str) -> Result<PathBuf, ApiError> {
    let bad = |d: String| ApiError::field(field, d);
    if raw.trim().is_empty() {
        return Err(bad(
            "is required: a path relative to the data directory".into()
        ));
    }
    let p = Path::new(raw);
    if p.components().any(|c| matches!(c, Component::ParentDir)) {
        return Err(bad(format!("'{raw}' may not contain '..'")));
    }
    let root = data_dir.canonicalize().map_err(|e| {
        ApiError::Precondition(format!(
            "the data directory {} cannot be used: {e}",
            data_dir.display()
        ))
    })?;
    let joined = if p.is_absolute() {
        p.to_path_buf()
    } else {
        root.join(p)
    };
    let real = joined
        .canonicalize()
        .map_err(|_| bad(format!("'{raw}' is not a file in the data directory")))?;
    if !real.starts_with(&root) {
        return Err(bad(format!("'{raw}' is outside the data directory")));
    }
    if !real.is_file() {
        return Err(bad(format!("'{raw}' is not a file")));
    }
    Ok(real)
}

/// The audit log's outcome: "ok" or the gRPC code and message.
fn outcome<T>(result: &Result<T, ApiError>) -> String {
    match result {
        Ok(_) => "ok".into(),
        Err(e) => format!("{:?}: {e}", e.code()),
    }
}

/// TrainModel's progress: each stage is a message on the caller's stream (the work done
/// within a stage is not sent: a message per MiB would only load the stream).
struct StageStream {
    tx: mpsc::Sender<Result<pb::TrainProgress, Status>>,
    t0: Instant,
}

impl Progress for StageStream {
    fn stage(&self, stage: Stage, total: Option<u64>) {
        tracing::info!(stage = stage.as_str(), "training");
        let visits = match stage {
            Stage::Fitting => total.unwrap_or(0),
            Stage::Reading | Stage::Writing => 0,
        };
        let _ = self.tx.blocking_send(Ok(pb::TrainProgress {
            event: Some(pb::train_progress::Event::Stage(pb::TrainStage {
                stage: stage.as_str().to_string(),
                visits,
                elapsed_s: self.t0.elapsed().as_secs_f64(),
            })),
        }));
    }

    fn advance(&self, _: u64) {}
}

fn train_error(e: TrainError) -> ApiError {
    match e {
        TrainError::Catalog(e) => ApiError::field("catalog_path", e.to_string()),
        TrainError::Log(e) => ApiError::field("visits_path", e.to_string()),
        TrainError::Fit(e) => ApiError::Precondition(format!("the model cannot be fitted: {e}")),
        TrainError::Model(e) => ApiError::Internal(format!("the model cannot be written: {e}")),
    }
}

#[tonic::async_trait]
impl ModelService for Models {
    async fn list_models(
        &self,
        request: Request<pb::ListModelsRequest>,
    ) -> Result<Response<pb::ListModelsResponse>, Status> {
        let call = self.shared.begin(Method::ListModels, &request).await;
        let reg = self.shared.registry.clone();
        let result = blocking(move || {
            let aliases = reg.current();
            Ok(pb::ListModelsResponse {
                models: reg
                    .scan()
                    .iter()
                    .map(|d| {
                        convert::model_info(
                            &d.name,
                            &d.version,
                            d.manifest.as_ref().map_err(String::as_str),
                            aliases.aliases_of(&d.name, &d.version),
                            reg.refused_reason(&d.name, &d.version),
                        )
                    })
                    .collect(),
            })
        })
        .await;
        call.finish(result)
    }

    async fn get_model(
        &self,
        request: Request<pb::GetModelRequest>,
    ) -> Result<Response<pb::ModelInfo>, Status> {
        let call = self.shared.begin(Method::GetModel, &request).await;
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
        call.finish(result)
    }

    async fn activate_model(
        &self,
        request: Request<pb::ActivateModelRequest>,
    ) -> Result<Response<pb::ActivateModelResponse>, Status> {
        let call = self.shared.begin(Method::ActivateModel, &request).await;
        let caller = request.extensions().get::<Caller>().cloned();
        let r = request.into_inner();
        let shared = self.shared.clone();
        let result = blocking(move || {
            let alias = if r.alias.trim().is_empty() {
                PRODUCTION.to_string()
            } else {
                r.alias.trim().to_string()
            };
            let result = shared
                .registry
                .activate(&r.model, &r.alias)
                .map(|(model, previous)| pb::ActivateModelResponse {
                    model: Some(convert::model_ref(&model)),
                    alias: alias.clone(),
                    previous: previous.as_deref().map(convert::model_ref),
                });
            let target = match &result {
                Ok(pb::ActivateModelResponse {
                    model: Some(m),
                    previous,
                    ..
                }) => format!(
                    "{}/{} as {alias} (was {})",
                    m.name,
                    m.version,
                    previous
                        .as_ref()
                        .map(|p| format!("{}/{}", p.name, p.version))
                        .unwrap_or_else(|| "none".into())
                ),
                _ => format!("'{}' as {alias}", r.model.trim()),
            };
            shared.audit.record(
                caller.as_ref(),
                "activate_model",
                &target,
                &outcome(&result),
            );
            result
        })
        .await;
        if let Ok(r) = &result {
            if let Some(m) = &r.model {
                call.model(&m.name, &m.version);
            }
        }
        call.finish(result)
    }

    async fn reload_models(
        &self,
        request: Request<pb::ReloadModelsRequest>,
    ) -> Result<Response<pb::ReloadModelsResponse>, Status> {
        let call = self.shared.begin(Method::ReloadModels, &request).await;
        let caller = request.extensions().get::<Caller>().cloned();
        let activate_latest = request.get_ref().activate_latest;
        let me = self.clone();
        let result = blocking(move || {
            let reg = &me.shared.registry;
            let outcome = reg.reload(activate_latest);
            let aliases = reg.current();
            // Reloading moves aliases (candidate; production with activate_latest).
            let name = |m: Option<&ramtid_core::model::Model>| {
                m.map(|m| format!("{}/{}", m.name(), m.version()))
                    .unwrap_or_else(|| "none".into())
            };
            me.shared.audit.record(
                caller.as_ref(),
                "reload_models",
                &format!(
                    "activate_latest={activate_latest}: production {}, candidate {}",
                    name(aliases.production.as_deref()),
                    name(aliases.candidate.as_deref())
                ),
                "ok",
            );
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
        call.finish(result)
    }

    type TrainModelStream = ReceiverStream<Result<pb::TrainProgress, Status>>;

    async fn train_model(
        &self,
        request: Request<pb::TrainModelRequest>,
    ) -> Result<Response<Self::TrainModelStream>, Status> {
        let call = self.shared.begin(Method::TrainModel, &request).await;
        let caller = request.extensions().get::<Caller>().cloned();
        let r = request.into_inner();
        let data_dir = self.shared.cfg.data.dir.clone();
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
            let catalog = check(confine(&data_dir, "catalog_path", &r.catalog_path))?;
            let visits = check(confine(&data_dir, "visits_path", &r.visits_path))?;
            if let Err(e) = check_model_name(&r.name) {
                violations.push(ramtid_core::needs::FieldViolation {
                    field: "name".into(),
                    description: e,
                });
            }
            // The same check as `ramtid train` and the configuration, before any file is
            // read: a bad setting is refused at once, naming `settings.<name>`.
            let params = match convert::train_params(
                self.shared.cfg.training.clone(),
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
                    "a training run is in progress; try again when it has finished".into(),
                )
            })?;
            Ok((
                guard,
                TrainRequest {
                    catalog: catalog.expect("checked"),
                    visits: visits.expect("checked"),
                    models_dir: self.shared.registry.dir().to_path_buf(),
                    name: r.name.clone(),
                    rejects: None,
                    params: params.expect("checked"),
                },
            ))
        })();
        let (guard, treq) = match prepared {
            Ok(p) => p,
            Err(e) => {
                let o = format!("{:?}: {e}", e.code());
                self.shared
                    .audit(caller, "train_model", r.name.clone(), o)
                    .await;
                return call.finish(Err(e));
            }
        };
        let alias = if r.activate { PRODUCTION } else { CANDIDATE };
        let (tx, rx) = mpsc::channel(16);
        let reg = self.shared.registry.clone();
        let shared = self.shared.clone();
        let call = call.detach();
        tokio::task::spawn_blocking(move || {
            let _guard = guard;
            let _span = call.span.enter();
            let t0 = Instant::now();
            let progress = StageStream { tx: tx.clone(), t0 };
            let result =
                train(&treq, &progress)
                    .map_err(train_error)
                    .and_then(|(model, summary)| {
                        crate::registry::warm(&model).map_err(|reason| ApiError::Refused {
                            model: format!("{}/{}", model.name(), model.version()),
                            reason,
                        })?;
                        let model = Arc::new(model);
                        reg.swap(alias, model.clone())?;
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
                    });
            let target = match &result {
                Ok(pb::TrainResult {
                    model: Some(m),
                    alias,
                    ..
                }) => format!("{}/{} as {alias}", m.name, m.version),
                _ => treq.name.clone(),
            };
            shared
                .audit
                .record(caller.as_ref(), "train_model", &target, &outcome(&result));
            let code = match result {
                Ok(done) => {
                    let _ = tx.blocking_send(Ok(pb::TrainProgress {
                        event: Some(pb::train_progress::Event::Done(done)),
                    }));
                    Code::Ok
                }
                Err(e) => {
                    let code = e.code();
                    let _ = tx.blocking_send(Err(e.into()));
                    code
                }
            };
            call.record(code);
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn get_catalog(
        &self,
        request: Request<pb::GetCatalogRequest>,
    ) -> Result<Response<pb::Catalog>, Status> {
        let call = self.shared.begin(Method::GetCatalog, &request).await;
        let result = self
            .shared
            .registry
            .select(&request.get_ref().model)
            .map(|m| {
                call.model(m.name(), m.version());
                convert::catalog(&m.catalog, &m)
            });
        call.finish(result)
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
        assert!(confine(&data, "visits_path", "sub/visits.csv").is_ok());
        let inside_abs = data.join("sub/visits.csv").display().to_string();
        assert!(confine(&data, "visits_path", &inside_abs).is_ok());
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
            let e = confine(&data, "visits_path", bad).unwrap_err().to_string();
            assert!(e.contains("visits_path"), "{bad}: {e}");
        }
    }
}
