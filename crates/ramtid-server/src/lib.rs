//! The gRPC service: a thin translation between `proto/ramtid/v1/ramtid.proto` and the
//! library. Requests are converted and validated (`convert`), answered by the statistics
//! core on the model a registry holds (`registry`), and errors are mapped to gRPC status
//! codes in one place (`error`). `server` assembles the services with health, reflection,
//! metrics and graceful shutdown; `layers` wraps the router in what every call shares
//! (request id, span, metrics, concurrency limit).

pub mod audit;
pub mod auth;
pub mod config;
pub mod error;
pub mod estimation;
pub mod followup;
pub mod history;
pub mod layers;
pub mod metrics;
pub mod models;
pub mod registry;
pub mod server;
pub mod worker;

use crate::config::Config;
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::registry::Registry;
use std::sync::Arc;
use tonic::{Response, Status};

pub use config::ConfigError;
pub use server::{start, Running, ServeError};

/// Metadata key of the request id (the caller's, or one made up here).
pub const REQUEST_ID: &str = layers::REQUEST_ID;

/// What every handler shares. The request id, the call's span and log line, its metrics
/// and the concurrency limit are not here: the layers around the router (`layers`) keep
/// them for every call, whatever its method.
#[derive(Debug)]
pub struct Shared {
    pub cfg: Config,
    pub registry: Arc<Registry>,
    pub metrics: Arc<Metrics>,
    /// Opened at start-up; shared with the retention purge.
    pub audit: Arc<audit::AuditLog>,
    /// The calculation history; None when disabled (`history.url = ""`).
    pub history: Option<ramtid_history::HistoryStore>,
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
        Shared {
            audit,
            history,
            cfg,
            registry,
            metrics,
        }
    }
}

/// Notes the model that answers on the call's span (the current one: the layers run the
/// handler inside it; a stream's task carries it along).
pub fn note_model(name: &str, version: &str) {
    tracing::Span::current().record(
        "model",
        tracing::field::display(format_args!("{name}/{version}")),
    );
}

/// A handler's answer: the response, or the error as its gRPC status.
pub fn reply<T>(result: Result<T, error::ApiError>) -> Result<Response<T>, Status> {
    result.map(Response::new).map_err(Status::from)
}
