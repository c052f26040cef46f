//! Prometheus metrics, kept in atomics and written in the text exposition format by a tiny
//! HTTP responder (`GET /metrics`) on its own port.

use crate::registry::Registry;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tonic::Code;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Estimate,
    EstimateBatch,
    ExplainVisit,
    ListModels,
    GetModel,
    ActivateModel,
    ReloadModels,
    TrainModel,
    GetCatalog,
    ListCalculations,
    GetCalculation,
    RecalculateCalculation,
    CompareCalculations,
    EraseCase,
    RebudgetCaseload,
}

impl Method {
    pub const ALL: [Method; 15] = [
        Method::Estimate,
        Method::EstimateBatch,
        Method::ExplainVisit,
        Method::ListModels,
        Method::GetModel,
        Method::ActivateModel,
        Method::ReloadModels,
        Method::TrainModel,
        Method::GetCatalog,
        Method::ListCalculations,
        Method::GetCalculation,
        Method::RecalculateCalculation,
        Method::CompareCalculations,
        Method::EraseCase,
        Method::RebudgetCaseload,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Method::Estimate => "Estimate",
            Method::EstimateBatch => "EstimateBatch",
            Method::ExplainVisit => "ExplainVisit",
            Method::ListModels => "ListModels",
            Method::GetModel => "GetModel",
            Method::ActivateModel => "ActivateModel",
            Method::ReloadModels => "ReloadModels",
            Method::TrainModel => "TrainModel",
            Method::GetCatalog => "GetCatalog",
            Method::ListCalculations => "ListCalculations",
            Method::GetCalculation => "GetCalculation",
            Method::RecalculateCalculation => "RecalculateCalculation",
            Method::CompareCalculations => "CompareCalculations",
            Method::EraseCase => "EraseCase",
            Method::RebudgetCaseload => "RebudgetCaseload",
        }
    }

    fn service(self) -> &'static str {
        match self {
            Method::Estimate | Method::EstimateBatch | Method::ExplainVisit => {
                "ramtid.v1.EstimationService"
            }
            Method::ListCalculations
            | Method::GetCalculation
            | Method::RecalculateCalculation
            | Method::CompareCalculations
            | Method::EraseCase
            | Method::RebudgetCaseload => "ramtid.v1.HistoryService",
            _ => "ramtid.v1.ModelService",
        }
    }
}

/// Latency bucket upper bounds, seconds.
const BUCKETS: [f64; 16] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];
const CODES: usize = 17;

#[derive(Debug, Default)]
struct PerMethod {
    by_code: [AtomicU64; CODES],
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

#[derive(Debug, Default)]
pub struct Metrics {
    methods: [PerMethod; Method::ALL.len()],
    /// Needs sets estimated through EstimateBatch (good and bad).
    pub batch_items: AtomicU64,
    pub batch_item_errors: AtomicU64,
    /// The history, once open: its writer's counters (group commit at work).
    pub history: std::sync::OnceLock<ramtid_history::HistoryStore>,
}

fn code_name(i: usize) -> &'static str {
    [
        "OK",
        "CANCELLED",
        "UNKNOWN",
        "INVALID_ARGUMENT",
        "DEADLINE_EXCEEDED",
        "NOT_FOUND",
        "ALREADY_EXISTS",
        "PERMISSION_DENIED",
        "RESOURCE_EXHAUSTED",
        "FAILED_PRECONDITION",
        "ABORTED",
        "OUT_OF_RANGE",
        "UNIMPLEMENTED",
        "INTERNAL",
        "UNAVAILABLE",
        "DATA_LOSS",
        "UNAUTHENTICATED",
    ][i]
}

impl Metrics {
    pub fn observe(&self, method: Method, code: Code, elapsed: Duration) {
        let m = &self.methods[method as usize];
        let c = (code as i32).clamp(0, CODES as i32 - 1) as usize;
        m.by_code[c].fetch_add(1, Ordering::Relaxed);
        let secs = elapsed.as_secs_f64();
        if let Some(b) = BUCKETS.iter().position(|&b| secs <= b) {
            m.buckets[b].fetch_add(1, Ordering::Relaxed);
        }
        m.count.fetch_add(1, Ordering::Relaxed);
        m.sum_micros
            .fetch_add(elapsed.as_micros() as u64, Ordering::Relaxed);
    }

    /// Calls of `method` that ended with `code` so far.
    pub fn count(&self, method: Method, code: Code) -> u64 {
        self.methods[method as usize].by_code[code as usize].load(Ordering::Relaxed)
    }

    /// The Prometheus text exposition.
    pub fn render(&self, registry: &Registry) -> String {
        let mut s = String::with_capacity(8192);
        s.push_str("# HELP ramtid_requests_total gRPC calls handled, by method and status code.\n# TYPE ramtid_requests_total counter\n");
        for method in Method::ALL {
            let m = &self.methods[method as usize];
            for (c, n) in m.by_code.iter().enumerate() {
                let n = n.load(Ordering::Relaxed);
                if n > 0 || c == 0 {
                    let _ = writeln!(
                        s,
                        "ramtid_requests_total{{service=\"{}\",method=\"{}\",code=\"{}\"}} {n}",
                        method.service(),
                        method.name(),
                        code_name(c)
                    );
                }
            }
        }
        s.push_str("# HELP ramtid_request_duration_seconds Time from a call's start to its end (streams: to the stream's end).\n# TYPE ramtid_request_duration_seconds histogram\n");
        for method in Method::ALL {
            let m = &self.methods[method as usize];
            let mut cumulative = 0;
            for (b, n) in BUCKETS.iter().zip(&m.buckets) {
                cumulative += n.load(Ordering::Relaxed);
                let _ = writeln!(
                    s,
                    "ramtid_request_duration_seconds_bucket{{method=\"{}\",le=\"{b}\"}} {cumulative}",
                    method.name()
                );
            }
            let count = m.count.load(Ordering::Relaxed);
            let _ = writeln!(
                s,
                "ramtid_request_duration_seconds_bucket{{method=\"{}\",le=\"+Inf\"}} {count}",
                method.name()
            );
            let _ = writeln!(
                s,
                "ramtid_request_duration_seconds_sum{{method=\"{}\"}} {}",
                method.name(),
                m.sum_micros.load(Ordering::Relaxed) as f64 / 1e6
            );
            let _ = writeln!(
                s,
                "ramtid_request_duration_seconds_count{{method=\"{}\"}} {count}",
                method.name()
            );
        }
        let _ = writeln!(
            s,
            "# HELP ramtid_batch_items_total Needs sets received through EstimateBatch.\n# TYPE ramtid_batch_items_total counter\nramtid_batch_items_total {}",
            self.batch_items.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            s,
            "# HELP ramtid_batch_item_errors_total EstimateBatch items answered with an error.\n# TYPE ramtid_batch_item_errors_total counter\nramtid_batch_item_errors_total {}",
            self.batch_item_errors.load(Ordering::Relaxed)
        );
        if let Some(h) = self.history.get() {
            let w = h.writer_stats();
            let _ = writeln!(
                s,
                "# HELP ramtid_history_records_total Calculations stored in the history (acknowledged).\n# TYPE ramtid_history_records_total counter\nramtid_history_records_total {}\n# HELP ramtid_history_commits_total Database transactions that wrote them (records / commits is the mean batch; on SQLite the journal acknowledges first and the writer moves its records into the database in these).\n# TYPE ramtid_history_commits_total counter\nramtid_history_commits_total {}",
                w.records, w.commits
            );
        }
        s.push_str("# HELP ramtid_model_info The model under each alias (value 1).\n# TYPE ramtid_model_info gauge\n");
        let aliases = registry.current();
        for (alias, m) in [
            ("production", &aliases.production),
            ("candidate", &aliases.candidate),
        ] {
            if let Some(m) = m {
                let _ = writeln!(
                    s,
                    "ramtid_model_info{{alias=\"{alias}\",name=\"{}\",version=\"{}\"}} 1",
                    m.name(),
                    m.version()
                );
            }
        }
        // Refused versions, so that the health of the model folder is visible beside the
        // health service's bare SERVING / NOT_SERVING (which carries no text).
        s.push_str("# HELP ramtid_model_refused A model version on disk that was refused (value 1), with the start of the reason (ListModels gives all of it).\n# TYPE ramtid_model_refused gauge\n");
        for (k, reason) in registry.refusals() {
            let (name, version) = k.split_once('/').unwrap_or((k.as_str(), ""));
            let _ = writeln!(
                s,
                "ramtid_model_refused{{name=\"{}\",version=\"{}\",reason=\"{}\"}} 1",
                label_value(name),
                label_value(version),
                label_value(&crate::error::truncate_for_message(&reason))
            );
        }
        let _ = writeln!(
            s,
            "# HELP ramtid_model_loaded Whether a production model is loaded (1) or not (0).\n# TYPE ramtid_model_loaded gauge\nramtid_model_loaded {}",
            u8::from(aliases.production.is_some())
        );
        s
    }
}

/// A Prometheus label value: backslash, double quote and line feed escaped.
fn label_value(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Serves `GET /metrics` on `listener` until the task is dropped. Anything else is a 404.
pub async fn serve_metrics(listener: TcpListener, metrics: Arc<Metrics>, registry: Arc<Registry>) {
    loop {
        let Ok((mut sock, _)) = listener.accept().await else {
            // Out of file descriptors or similar: do not spin.
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let metrics = metrics.clone();
        let registry = registry.clone();
        tokio::spawn(async move {
            let mut buf = [0u8; 4096];
            let mut n = 0;
            // Read the request head (bounded in size and time).
            let read = tokio::time::timeout(Duration::from_secs(5), async {
                while n < buf.len() {
                    match sock.read(&mut buf[n..]).await {
                        Ok(0) | Err(_) => break,
                        Ok(k) => {
                            n += k;
                            if buf[..n].windows(4).any(|w| w == b"\r\n\r\n") {
                                break;
                            }
                        }
                    }
                }
            })
            .await;
            if read.is_err() {
                return;
            }
            let head = String::from_utf8_lossy(&buf[..n]);
            let path = head.split_whitespace().nth(1).unwrap_or("");
            let (status, body, ctype) = if head.starts_with("GET ")
                && (path == "/metrics" || path.starts_with("/metrics?"))
            {
                (
                    "200 OK",
                    metrics.render(&registry),
                    "text/plain; version=0.0.4",
                )
            } else {
                (
                    "404 Not Found",
                    "only GET /metrics is served here\n".to_string(),
                    "text/plain",
                )
            };
            let resp = format!(
                "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = sock.write_all(resp.as_bytes()).await;
            let _ = sock.shutdown().await;
        });
    }
}

/// Binds the metrics port.
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}
