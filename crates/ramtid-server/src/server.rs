//! Assembles the gRPC server: estimation and model services, the standard health service
//! (NOT_SERVING until a production model is loaded), server reflection, the metrics port,
//! and graceful shutdown that lets in-flight calls finish.

use crate::config::Config;
use crate::estimation::Estimation;
use crate::history::History;
use crate::metrics::{self, Metrics};
use crate::models::Models;
use crate::registry::Registry;
use crate::Shared;
use ramtid_proto::pb;
use ramtid_proto::pb::estimation_service_server::EstimationServiceServer;
use ramtid_proto::pb::follow_up_service_server::FollowUpServiceServer;
use ramtid_proto::pb::history_service_server::HistoryServiceServer;
use ramtid_proto::pb::model_service_server::ModelServiceServer;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::TcpListenerStream;
use tonic_health::server::HealthReporter;
use tonic_health::ServingStatus;

/// gRPC service names reported by the health service (besides the overall "").
pub const SERVICES: [&str; 4] = [
    "ramtid.v1.EstimationService",
    "ramtid.v1.ModelService",
    "ramtid.v1.HistoryService",
    "ramtid.v1.FollowUpService",
];

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen on {addr} ({key}): {source}")]
    Bind {
        addr: SocketAddr,
        key: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("gRPC server failed: {0}")]
    Transport(#[from] tonic::transport::Error),
    #[error("reflection service: {0}")]
    Reflection(String),
    #[error("history (history.url): {0}")]
    History(String),
    #[error("TLS ({key}): {message}")]
    Tls { key: &'static str, message: String },
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("cannot start the runtime: {0}")]
    Runtime(#[source] std::io::Error),
    #[error("{0}")]
    Audit(#[from] crate::audit::AuditError),
    #[error("data.dir: {path} cannot be created ({source}); its parent folder must exist")]
    DataDir {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// The data directory is the server's own folder (audit log, history, training input): on a
/// fresh checkout `data/` does not exist yet, and the server makes it. Only that one level:
/// a configured path whose parent is missing is a mistake in the configuration, not a tree
/// to make up (nor are the folders of an `audit.file` or `history.url` set elsewhere).
fn ensure_data_dir(dir: &std::path::Path) -> Result<(), ServeError> {
    match std::fs::create_dir(dir) {
        Ok(()) => {
            tracing::info!(dir = %dir.display(), "created the data directory");
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(source) => Err(ServeError::DataDir {
            path: dir.display().to_string(),
            source,
        }),
    }
}

/// The server's background tasks, aborted when the owner goes (a failed start-up included).
#[derive(Debug)]
struct Background(Vec<JoinHandle<()>>);

impl Drop for Background {
    fn drop(&mut self) {
        for b in &self.0 {
            b.abort();
        }
    }
}

/// A running server.
#[derive(Debug)]
pub struct Running {
    /// The gRPC address actually bound (port 0 resolved).
    pub addr: SocketAddr,
    /// The metrics address actually bound, if enabled.
    pub metrics_addr: Option<SocketAddr>,
    pub registry: Arc<Registry>,
    pub metrics: Arc<Metrics>,
    grace: Duration,
    shutdown: Option<oneshot::Sender<()>>,
    server: JoinHandle<Result<(), tonic::transport::Error>>,
    background: Background,
    health: HealthReporter,
}

impl Running {
    /// Stops accepting calls, lets in-flight ones finish (up to `server.shutdown_grace_s`),
    /// and returns when the server has stopped.
    pub async fn shutdown(mut self) -> Result<(), ServeError> {
        for s in std::iter::once("").chain(SERVICES) {
            self.health
                .set_service_status(s, ServingStatus::NotServing)
                .await;
        }
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let t0 = Instant::now();
        let result = match tokio::time::timeout(self.grace, &mut self.server).await {
            Ok(joined) => {
                tracing::info!(millis = t0.elapsed().as_millis() as u64, "drained; stopped");
                joined.unwrap_or(Ok(())).map_err(ServeError::from)
            }
            Err(_) => {
                tracing::warn!(
                    grace_s = self.grace.as_secs(),
                    "calls still running after the grace period; stopping anyway"
                );
                self.server.abort();
                Ok(())
            }
        };
        // Awaited, not only aborted: a task holds the metrics, and through them the
        // history, whose journal stays locked until the task is gone.
        for b in std::mem::take(&mut self.background.0) {
            b.abort();
            let _ = b.await;
        }
        result
    }

    /// Runs until `signal` completes, then shuts down gracefully.
    pub async fn run_until(self, signal: impl Future<Output = ()>) -> Result<(), ServeError> {
        signal.await;
        tracing::info!("shutdown requested; draining in-flight calls");
        self.shutdown().await
    }
}

/// Starts the server: binds, serves (NOT_SERVING), then loads the start-up models on a
/// blocking thread and turns SERVING when production is loaded. Returns once bound.
pub async fn start(cfg: Config) -> Result<Running, ServeError> {
    // The audit log fails closed: a server that could not record its audited actions does
    // not start.
    // (One open(2), before anything is served: not worth a blocking thread.)
    ensure_data_dir(&cfg.data.dir)?;
    let audit = Arc::new(crate::audit::AuditLog::open(cfg.audit_path())?);
    let addr = cfg.listen_addr();
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Bind {
            addr,
            key: "server.listen",
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| ServeError::Bind {
        addr,
        key: "server.listen",
        source,
    })?;
    // Versions a killed or crashed training left half-written (never published).
    ramtid_core::model::remove_stale_temp(&cfg.models.dir, None);
    let registry = Arc::new(Registry::new(cfg.models.dir.clone()));
    let metrics = Arc::new(Metrics::default());
    // Aborted when dropped: a start-up that fails below leaves no task behind.
    let mut background = Background(vec![tokio::spawn(metrics::upkeep(metrics.clone()))]);

    let metrics_addr = match cfg.metrics_addr() {
        Some(maddr) => {
            let l = metrics::bind(maddr)
                .await
                .map_err(|source| ServeError::Bind {
                    addr: maddr,
                    key: "server.metrics_listen",
                    source,
                })?;
            let bound = l.local_addr().ok();
            background.0.push(tokio::spawn(metrics::serve_metrics(
                l,
                metrics.clone(),
                registry.clone(),
            )));
            bound
        }
        None => None,
    };

    let (health, health_service) = tonic_health::server::health_reporter();
    for s in std::iter::once("").chain(SERVICES) {
        health
            .set_service_status(s, ServingStatus::NotServing)
            .await;
    }
    // Health follows the production alias.
    {
        let registry = registry.clone();
        let health = health.clone();
        let mut changes = registry.subscribe();
        background.0.push(tokio::spawn(async move {
            loop {
                let status = if registry.production().is_some() {
                    ServingStatus::Serving
                } else {
                    ServingStatus::NotServing
                };
                for s in std::iter::once("").chain(SERVICES) {
                    health.set_service_status(s, status).await;
                }
                if changes.changed().await.is_err() {
                    break;
                }
            }
        }));
    }

    // Reflection in both versions: grpcurl and newer clients speak v1, the official Python
    // client (grpcio-reflection) and many older tools only v1alpha.
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let reflection_v1 = reflection()
        .build_v1()
        .map_err(|e| ServeError::Reflection(e.to_string()))?;
    let reflection_v1alpha = reflection()
        .build_v1alpha()
        .map_err(|e| ServeError::Reflection(e.to_string()))?;

    let max = cfg.limits.max_message_bytes;
    let grace = Duration::from_secs(cfg.server.shutdown_grace_s);
    let (active, candidate) = (cfg.models.active.clone(), cfg.models.candidate.clone());
    let history = open_history(&cfg).await?;
    if let (Some(store), days @ 1..) = (&history, cfg.history.retention_days) {
        // The first purge before serving, then once a day.
        purge(store, days, &audit).await;
        let (store, audit) = (store.clone(), audit.clone());
        background.0.push(tokio::spawn(async move {
            let day = Duration::from_secs(24 * 3600);
            loop {
                tokio::time::sleep(day).await;
                purge(&store, days, &audit).await;
            }
        }));
    }
    let shared = Arc::new(Shared::new(
        cfg,
        registry.clone(),
        metrics.clone(),
        history,
        audit,
    ));
    let history_service =
        HistoryServiceServer::new(History::new(shared.clone())).max_decoding_message_size(max);
    let estimation = EstimationServiceServer::new(Estimation::new(shared.clone()))
        .max_decoding_message_size(max);
    let models =
        ModelServiceServer::new(Models::new(shared.clone())).max_decoding_message_size(max);
    let follow_up = FollowUpServiceServer::new(crate::followup::FollowUpSvc::new(shared.clone()))
        .max_decoding_message_size(max);

    let tls = tls_config(&shared.cfg)?;
    let auth = crate::auth::AuthLayer::new(shared.cfg.tokens());
    if shared.cfg.auth.enabled && shared.cfg.tls.cert.as_os_str().is_empty() {
        tracing::warn!("access control without TLS: bearer tokens cross the network in clear text; set tls.cert and tls.key");
    }
    if shared.cfg.auth.enabled {
        tracing::info!(
            tokens = shared.cfg.auth.tokens.len(),
            "access control enabled"
        );
    } else {
        tracing::warn!(
            "access control disabled (auth.enabled = false): every caller may call every method"
        );
    }
    let mut builder = tonic::transport::Server::builder();
    if let Some(tls) = tls {
        builder = builder.tls_config(tls).map_err(|e| ServeError::Tls {
            key: "tls.cert",
            message: error_chain(&e),
        })?;
    }

    // Only now that start-up cannot fail: the metrics outlive a failed start in their
    // upkeep task, and a history they held would keep its journal locked.
    if let Some(store) = &shared.history {
        let _ = metrics.history.set(store.clone());
    }
    let (tx, rx) = oneshot::channel::<()>();
    let server = builder
        .tcp_nodelay(true)
        // Outermost first (see `layers`): the request id, the span and metrics, the access
        // check, the concurrency limit.
        .layer(crate::layers::RequestIdLayer::default())
        .layer(crate::layers::ObserveLayer::new(metrics.clone()))
        .layer(auth)
        .layer(crate::layers::LimitLayer::new(
            metrics.clone(),
            shared.cfg.limits.concurrency,
        ))
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(estimation)
        .add_service(models)
        .add_service(history_service)
        .add_service(follow_up)
        .serve_with_incoming_shutdown(incoming(listener), async {
            let _ = rx.await;
        });
    let server = tokio::spawn(server);
    tracing::info!(%addr, metrics = ?metrics_addr, "listening");

    // Load the start-up models without blocking the listener.
    {
        let registry = registry.clone();
        let t0 = Instant::now();
        tokio::task::spawn_blocking(move || {
            let problems = registry.startup(&active, &candidate);
            for p in &problems {
                tracing::error!(problem = %p, "start-up model not loaded; NOT_SERVING until one is activated or reloaded");
            }
            if let Some(m) = registry.production() {
                tracing::info!(
                    model = m.name(),
                    version = m.version(),
                    millis = t0.elapsed().as_millis() as u64,
                    "serving"
                );
            }
        });
    }

    Ok(Running {
        addr,
        metrics_addr,
        registry,
        metrics,
        grace,
        shutdown: Some(tx),
        server,
        background,
        health,
    })
}

/// Opens the history `history.url` names (on a blocking thread), or None when disabled.
async fn open_history(cfg: &Config) -> Result<Option<ramtid_history::HistoryStore>, ServeError> {
    let Some(url) = cfg.history_url() else {
        tracing::info!("calculation history disabled (history.url is empty)");
        return Ok(None);
    };
    // The database file is created, never the folders above it: a mistyped path must not
    // grow a directory tree (and put the history where no backup looks).
    if let Some(dir) = match ramtid_history::Target::parse(&url) {
        Ok(ramtid_history::Target::Sqlite(path, _)) => path.parent().map(|p| p.to_path_buf()),
        _ => None,
    } {
        if !dir.as_os_str().is_empty() && !dir.is_dir() {
            return Err(ServeError::History(format!(
                "the directory {} does not exist (create it, or point history.url elsewhere)",
                dir.display()
            )));
        }
    }
    let store = tokio::task::spawn_blocking(move || ramtid_history::HistoryStore::open(&url))
        .await
        .map_err(|e| ServeError::History(e.to_string()))?
        .map_err(|e| ServeError::History(e.to_string()))?;
    tracing::info!(history = ?store, "calculation history open");
    Ok(Some(store))
}

/// Purges calculations older than `days` days and writes the purge to the audit log.
async fn purge(
    store: &ramtid_history::HistoryStore,
    days: u32,
    audit: &Arc<crate::audit::AuditLog>,
) {
    let cutoff = ramtid_history::now_ms() - i64::from(days) * 86_400_000;
    let before = crate::audit::rfc3339_from_ms(cutoff);
    // Fails closed: no purge that the audit log has not recorded as started.
    let started = {
        let audit = audit.clone();
        let target = format!("calculations before {before} (history.retention_days = {days})");
        tokio::task::spawn_blocking(move || {
            audit.require(None, "purge_history", &target, crate::audit::STARTED)
        })
        .await
    };
    if !matches!(started, Ok(Ok(()))) {
        tracing::error!(
            days,
            "retention: purge skipped, the audit log cannot be written"
        );
        return;
    }
    let (target, outcome) = match store.purge_older_than(cutoff).await {
        Ok(n) => {
            tracing::info!(purged = n, days, "retention: old calculations purged");
            (
                format!(
                    "{n} calculations before {before} purged (history.retention_days = {days})"
                ),
                "ok".to_string(),
            )
        }
        Err(e) => {
            tracing::error!(error = %e, "retention: purge failed");
            (
                format!("calculations before {before} (history.retention_days = {days})"),
                format!("Internal: {e}"),
            )
        }
    };
    let audit = audit.clone();
    let _ =
        tokio::task::spawn_blocking(move || audit.record(None, "purge_history", &target, &outcome))
            .await;
}

/// An error and its sources, joined: tonic's own messages say only "transport error".
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// The rustls server configuration `[tls]` asks for, or None for plaintext.
fn tls_config(cfg: &Config) -> Result<Option<tonic::transport::ServerTlsConfig>, ServeError> {
    use tonic::transport::{Certificate, Identity, ServerTlsConfig};
    let tls = &cfg.tls;
    if tls.cert.as_os_str().is_empty() {
        return Ok(None);
    }
    let read = |key: &'static str, p: &std::path::Path| {
        std::fs::read(p).map_err(|e| ServeError::Tls {
            key,
            message: format!("cannot read {}: {e}", p.display()),
        })
    };
    let identity = Identity::from_pem(read("tls.cert", &tls.cert)?, read("tls.key", &tls.key)?);
    let mut out = ServerTlsConfig::new().identity(identity);
    if !tls.client_ca.as_os_str().is_empty() {
        out = out
            .client_ca_root(Certificate::from_pem(read(
                "tls.client_ca",
                &tls.client_ca,
            )?))
            .client_auth_optional(tls.client_auth_optional);
    }
    Ok(Some(out))
}

/// Accepted connections with Nagle's algorithm off: small gRPC responses are not held back
/// waiting for an ACK (the builder's `tcp_nodelay` applies only to listeners tonic binds).
pub fn incoming(
    listener: TcpListener,
) -> impl tokio_stream::Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    use tokio_stream::StreamExt;
    TcpListenerStream::new(listener).map(|conn| {
        conn.and_then(|s| {
            s.set_nodelay(true)?;
            Ok(s)
        })
    })
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn termination() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        let sigterm = async {
            match term.as_mut() {
                Some(t) => {
                    t.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = ctrl_c => {},
            _ = sigterm => {},
        }
    }
    #[cfg(not(unix))]
    ctrl_c.await;
}

/// Installs the log subscriber the configuration asks for (text or JSON on stderr).
/// Returns false if one was installed already.
pub fn init_logging(cfg: &Config) -> bool {
    let filter = tracing_subscriber::EnvFilter::try_from_env("RAMTID_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&cfg.log.level));
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(filter);
    if cfg.log.format == "json" {
        builder.json().try_init().is_ok()
    } else {
        builder.try_init().is_ok()
    }
}

/// `ramtid serve`: layered configuration, logging, serve until SIGTERM or Ctrl-C.
pub fn run_serve(
    file: Option<std::path::PathBuf>,
    overrides: Vec<(String, String)>,
) -> Result<(), ServeError> {
    let cfg = Config::load(&crate::config::Sources {
        file,
        overrides,
        environment: true,
    })?;
    init_logging(&cfg);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(ServeError::Runtime)?;
    rt.block_on(async { start(cfg).await?.run_until(termination()).await })
}
