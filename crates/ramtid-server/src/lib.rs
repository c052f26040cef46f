//! The gRPC service: a thin translation between `proto/ramtid/v1/ramtid.proto` and the
//! library. Requests are converted and validated (`convert`), answered by the statistics
//! core on the model a registry holds (`registry`), and errors are mapped to gRPC status
//! codes in one place (`error`). `server` assembles the services with health, reflection,
//! metrics and graceful shutdown; `client` holds the health check and the load harness.

pub mod audit;
pub mod auth;
pub mod config;
pub mod error;
pub mod estimation;
pub mod history;
pub mod metrics;
pub mod models;
pub mod registry;
pub mod server;
pub mod worker;

use crate::config::Config;
use crate::error::ApiError;
use crate::metrics::{Method, Metrics};
use crate::registry::Registry;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::{Semaphore, SemaphorePermit};
use tonic::metadata::MetadataValue;
use tonic::{Code, Response, Status};
use tracing::Span;

pub use config::ConfigError;
pub use server::{start, Running, ServeError};

/// Metadata key of the request id (the caller's, or one made up here).
pub const REQUEST_ID: &str = "x-request-id";

/// What every handler shares.
#[derive(Debug)]
pub struct Shared {
    pub cfg: Config,
    pub registry: Arc<Registry>,
    pub metrics: Arc<Metrics>,
    /// Opened at start-up; shared with the retention purge.
    pub audit: Arc<audit::AuditLog>,
    /// The calculation history; None when disabled (`history.url = ""`).
    pub history: Option<ramtid_history::HistoryStore>,
    limit: Semaphore,
    next_id: AtomicU64,
    id_prefix: u32,
}

impl Shared {
    /// Writes one audit line (synced to disk) from async code, off the runtime's threads,
    /// logging a failure: for a line written after the action or after a refusal.
    pub async fn audit(
        self: &Arc<Self>,
        caller: Option<auth::Caller>,
        action: &'static str,
        target: String,
        outcome: String,
    ) {
        let audit = self.audit.clone();
        let _ = tokio::task::spawn_blocking(move || {
            audit.record(caller.as_ref(), action, &target, &outcome)
        })
        .await;
    }

    /// Writes the `started` line an action depends on, from async code: an error
    /// (UNAVAILABLE) means the action must not be carried out.
    pub async fn audit_start(
        self: &Arc<Self>,
        caller: Option<&auth::Caller>,
        action: &'static str,
        target: String,
    ) -> Result<(), ApiError> {
        let audit = self.audit.clone();
        let caller = caller.cloned();
        tokio::task::spawn_blocking(move || {
            audit.require(caller.as_ref(), action, &target, audit::STARTED)
        })
        .await
        .map_err(|e| ApiError::Internal(format!("audit writer failed: {e}")))?
    }

    pub fn new(
        cfg: Config,
        registry: Arc<Registry>,
        metrics: Arc<Metrics>,
        history: Option<ramtid_history::HistoryStore>,
        audit: Arc<audit::AuditLog>,
    ) -> Shared {
        let id_prefix = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos() ^ (d.as_secs() as u32))
            .unwrap_or(0);
        Shared {
            limit: Semaphore::new(cfg.limits.concurrency),
            audit,
            history,
            cfg,
            registry,
            metrics,
            next_id: AtomicU64::new(1),
            id_prefix,
        }
    }

    /// Starts a call: a request id, a span, a concurrency slot.
    pub async fn begin<T>(&self, method: Method, req: &tonic::Request<T>) -> Call<'_> {
        let id = req
            .metadata()
            .get(REQUEST_ID)
            .and_then(|v| v.to_str().ok())
            .filter(|s| !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_graphic()))
            .map(str::to_string)
            .unwrap_or_else(|| {
                format!(
                    "{:08x}-{:x}",
                    self.id_prefix,
                    self.next_id.fetch_add(1, Ordering::Relaxed)
                )
            });
        let span = tracing::info_span!(
            "rpc",
            method = method.name(),
            request_id = %id,
            caller = tracing::field::Empty,
            model = tracing::field::Empty,
        );
        // The token's name (never the token), when access control is on.
        if let Some(c) = req.extensions().get::<auth::Caller>() {
            span.record("caller", c.name.as_str());
        }
        let permit = self.limit.acquire().await.ok();
        Call {
            method,
            start: Instant::now(),
            id,
            span,
            metrics: self.metrics.clone(),
            _permit: permit,
        }
    }
}

/// One call in progress: records metrics and logs when finished.
pub struct Call<'a> {
    method: Method,
    start: Instant,
    pub id: String,
    pub span: Span,
    metrics: Arc<Metrics>,
    _permit: Option<SemaphorePermit<'a>>,
}

impl Call<'_> {
    /// Notes the model that answers, on the span.
    pub fn model(&self, name: &str, version: &str) {
        self.span.record(
            "model",
            tracing::field::display(format_args!("{name}/{version}")),
        );
    }

    /// Ends a unary call (or the set-up of a streaming one).
    pub fn finish<T>(self, result: Result<T, ApiError>) -> Result<Response<T>, Status> {
        let id = MetadataValue::try_from(self.id.as_str()).ok();
        match result {
            Ok(v) => {
                self.record(Code::Ok);
                let mut r = Response::new(v);
                if let Some(id) = id {
                    r.metadata_mut().insert(REQUEST_ID, id);
                }
                Ok(r)
            }
            Err(e) => {
                let code = e.code();
                self.record(code);
                let mut s: Status = e.into();
                if let Some(id) = id {
                    s.metadata_mut().insert(REQUEST_ID, id);
                }
                Err(s)
            }
        }
    }

    /// Records the outcome of a call that ran to its end.
    pub fn record(&self, code: Code) {
        let elapsed = self.start.elapsed();
        self.metrics.observe(self.method, code, elapsed);
        let _e = self.span.enter();
        if code == Code::Ok {
            tracing::debug!(code = ?code, micros = elapsed.as_micros() as u64, "done");
        } else {
            tracing::info!(code = ?code, micros = elapsed.as_micros() as u64, "failed");
        }
    }

    /// A streaming call's bookkeeping that outlives the handler: a detached recorder.
    pub fn detach(self) -> DetachedCall {
        DetachedCall {
            method: self.method,
            start: self.start,
            id: self.id,
            span: self.span,
            metrics: self.metrics,
        }
    }
}

/// A streaming call after its handler returned.
#[derive(Debug)]
pub struct DetachedCall {
    method: Method,
    start: Instant,
    id: String,
    pub span: Span,
    metrics: Arc<Metrics>,
}

impl DetachedCall {
    /// Notes the model that answers, on the span.
    pub fn model(&self, name: &str, version: &str) {
        self.span.record(
            "model",
            tracing::field::display(format_args!("{name}/{version}")),
        );
    }

    /// The status for an error ending the stream, with the request id.
    pub fn status(&self, e: ApiError) -> Status {
        let mut s: Status = e.into();
        if let Ok(id) = MetadataValue::try_from(self.id.as_str()) {
            s.metadata_mut().insert(REQUEST_ID, id);
        }
        s
    }

    pub fn record(&self, code: Code) {
        let elapsed = self.start.elapsed();
        self.metrics.observe(self.method, code, elapsed);
        let _e = self.span.enter();
        tracing::info!(code = ?code, millis = elapsed.as_millis() as u64, "stream ended");
    }
}
