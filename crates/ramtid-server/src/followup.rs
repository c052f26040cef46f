//! `ramtid.v1.FollowUpService`: `ramtid follow-up` over gRPC. Thin translation: the files
//! are opened inside the data directory as training opens them, the work is
//! `ramtid_report::followup::follow_up_from` off the runtime's threads, and the reading of
//! the log is streamed as progress.
//!
//! Who sees what: `data` and `admin` (and everyone when access control is disabled) get
//! every row. An assessor gets only the recipient-months of cases whose latest calculation
//! in the history they made, and no provider or consumption tables, which cover others'
//! cases too.

use crate::auth::{Caller, Role};
use crate::error::ApiError;
use crate::models::confine;
use crate::Shared;
use ramtid_core::datadir::{DataDir, OpenError};
use ramtid_core::error::ErrorKind;
use ramtid_core::progress::{Progress, Stage};
use ramtid_proto::pb::{self, follow_up_service_server::FollowUpService};
use ramtid_report::followup::{
    self, consumption, orders, FollowUp, FollowUpError, FollowUpOptions, Month,
};
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

/// Progress messages at most this often (bytes of log between two).
const PROGRESS_EVERY: u64 = 8 << 20;

#[derive(Debug, Clone)]
pub struct FollowUpSvc {
    shared: Arc<Shared>,
    /// One follow-up at a time: each reads a whole log and keeps a core busy.
    turn: Arc<tokio::sync::Semaphore>,
}

impl FollowUpSvc {
    pub fn new(shared: Arc<Shared>) -> Self {
        FollowUpSvc {
            shared,
            turn: Arc::new(tokio::sync::Semaphore::new(1)),
        }
    }
}

/// A follow-up error as the caller's status, on the request field that named its file.
fn followup_error(field: &str, e: FollowUpError) -> ApiError {
    ApiError::of_kind(e.kind(), field, e.to_string())
}

/// Opens a request's file inside the data directory (no link followed, as training does).
fn open(dir: &DataDir, field: &str, raw: &str) -> Result<std::fs::File, ApiError> {
    dir.open_file(raw).map_err(|e| match e {
        OpenError::Refused(why) => ApiError::field(field, why),
        other => ApiError::field(field, other.to_string()),
    })
}

/// The request's settings, each refused on its own field before any file is read.
fn options(r: &pb::FollowUpRequest) -> Result<FollowUpOptions, ApiError> {
    let mut opts = FollowUpOptions::default();
    let mut bad = Vec::new();
    if r.tolerance != 0.0 {
        match followup::band::check_tolerance(r.tolerance) {
            Ok(t) => opts.tolerance = t,
            Err(e) => bad.push(("tolerance", e)),
        }
    }
    if r.reassess_after != 0 {
        opts.reassess_after = r.reassess_after;
    }
    if !r.month.trim().is_empty() {
        match Month::parse(r.month.trim()) {
            Ok(m) => opts.month = Some(m),
            Err(e) => bad.push(("month", e)),
        }
    }
    if !r.age_variable.trim().is_empty() {
        opts.age_variable = r.age_variable.trim().to_string();
        opts.age_variable_given = true;
    }
    if bad.is_empty() {
        Ok(opts)
    } else {
        Err(ApiError::Invalid(
            bad.into_iter()
                .map(|(f, d)| ramtid_core::needs::FieldViolation {
                    field: f.into(),
                    description: d,
                })
                .collect(),
        ))
    }
}

/// The log's reading, sent as stage messages (dropped, not waited for, when the caller
/// reads slower than the log is read).
struct Streamed {
    tx: mpsc::Sender<Result<pb::FollowUpProgress, Status>>,
    total: u64,
    done: AtomicU64,
    sent: AtomicU64,
}

impl Streamed {
    fn send(&self, done: u64) {
        let _ = self.tx.try_send(Ok(pb::FollowUpProgress {
            event: Some(pb::follow_up_progress::Event::Stage(pb::FollowUpStage {
                stage: Stage::Reading.as_str().into(),
                done,
                total: self.total,
            })),
        }));
    }
}

impl Progress for Streamed {
    fn stage(&self, _: Stage, _: Option<u64>) {
        self.send(0);
    }
    fn advance(&self, done: u64) {
        let now = self.done.fetch_add(done, Ordering::Relaxed) + done;
        let last = self.sent.load(Ordering::Relaxed);
        if now >= last + PROGRESS_EVERY
            && self
                .sent
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            self.send(now);
        }
    }
}

/// Case ids whose latest calculation the caller made.
fn own_cases(
    store: &ramtid_history::HistoryStore,
    caller: &str,
) -> Result<HashSet<String>, ApiError> {
    let mut own = HashSet::new();
    let mut rx = store.latest_per_case(1000);
    while let Some(chunk) = rx.blocking_recv() {
        let chunk = chunk.map_err(|e| ApiError::of_kind(e.kind(), "orders_path", e.to_string()))?;
        for c in chunk {
            if c.calc.caller == caller {
                own.insert(c.calc.case_id);
            }
        }
    }
    Ok(own)
}

/// The answer, limited to `own` cases when given.
fn result_pb(f: &FollowUp, own: Option<&HashSet<String>>, seconds: f64) -> pb::FollowUpResult {
    let keep = |id: &str| own.is_none_or(|o| o.contains(id));
    let rows: Vec<pb::FollowUpRecipientMonth> = f
        .rows
        .iter()
        .filter(|r| keep(&r.recipient_id))
        .map(|r| pb::FollowUpRecipientMonth {
            recipient_id: r.recipient_id.clone(),
            month: r.month.label(),
            ordered_min: r.ordered_min,
            performed_min: r.performed_min,
            performed_staff_min: r.performed_staff_min,
            visits: r.visits,
            ratio: r.ratio,
            band: r.band.as_str().into(),
            months_outside: r.months_outside,
        })
        .collect();
    let mut bands = std::collections::HashMap::new();
    let (mut ordered, mut performed) = (0.0, 0.0);
    for r in &rows {
        *bands.entry(r.band.clone()).or_insert(0u64) += 1;
        if r.ratio.is_some() {
            ordered += r.ordered_min;
            performed += r.performed_min;
        }
    }
    let recipients = rows
        .iter()
        .map(|r| r.recipient_id.as_str())
        .collect::<HashSet<_>>()
        .len() as u64;
    let everything = own.is_none();
    pb::FollowUpResult {
        model: Some(pb::ModelRef {
            name: f.model.name.clone(),
            version: f.model.version.clone(),
        }),
        tolerance: f.tolerance,
        rows_read: f.visits.rows_read,
        rows_used: f.visits.rows_used,
        rows_rejected: f.visits.rows_rejected,
        rows_flagged: f.visits.rows_flagged,
        recipients,
        recipient_months: rows.len() as u64,
        ratio: (ordered > 0.0).then(|| performed / ordered),
        bands,
        recipient_months_rows: rows,
        reassess: f
            .reassess
            .iter()
            .filter(|r| keep(&r.recipient_id))
            .map(|r| r.recipient_id.clone())
            .collect(),
        providers: if everything {
            f.providers
                .iter()
                .map(|p| pb::ProviderIndex {
                    rank: p.rank as u32,
                    unit_id: p.unit_id.clone(),
                    recipients: p.recipients as u64,
                    visits: p.visits,
                    performed_min: p.performed_min,
                    expected_min: p.expected_min,
                    index: p.index,
                    index_p10: p.index_p10,
                    index_p90: p.index_p90,
                    share_over: p.share_over,
                })
                .collect()
        } else {
            Vec::new()
        },
        consumption: if everything {
            f.consumption
                .rows
                .iter()
                .map(|c| pb::ConsumptionGroup {
                    dimension: c.dimension.clone(),
                    group: c.group.clone(),
                    month: c.month.clone(),
                    recipients: c.recipients as u64,
                    recipient_months: c.recipient_months as u64,
                    performed_hours: c.performed_hours,
                    staff_hours: c.staff_hours,
                    inhabitants: c.inhabitants,
                    staff_hours_per_inhabitant_year: c.staff_hours_per_inhabitant_year,
                })
                .collect()
        } else {
            Vec::new()
        },
        staff_hours_per_inhabitant_80_plus_year: if everything {
            f.consumption.staff_hours_per_inhabitant_80_plus_year
        } else {
            None
        },
        shared_profiles: f.same_needs_same_time.shared_profiles as u64,
        differing_profiles: f.same_needs_same_time.differing as u64,
        own_cases_only: !everything,
        seconds,
    }
}

/// Everything a run needs, checked and opened before the stream starts.
struct Prepared {
    model: Arc<ramtid_core::model::Model>,
    opts: FollowUpOptions,
    visits: std::fs::File,
    visits_name: String,
    total: u64,
    orders: Option<(std::fs::File, String)>,
    population: Option<consumption::Population>,
}

impl FollowUpSvc {
    fn prepare(&self, r: &pb::FollowUpRequest) -> Result<Prepared, ApiError> {
        let opts = options(r)?;
        let data_dir = self.shared.cfg.data.dir.clone();
        let audit = self.shared.cfg.audit_path();
        // Each path is checked as training checks it (inside the data directory, not the
        // audit log), then opened once, without following links.
        let mut violations = Vec::new();
        let mut check = |field: &str, raw: &str| match confine(&data_dir, Some(&audit), field, raw)
        {
            Ok(_) => Ok(true),
            Err(ApiError::Invalid(v)) => {
                violations.extend(v);
                Ok(false)
            }
            Err(other) => Err(other),
        };
        let visits_ok = check("visits_path", &r.visits_path)?;
        let orders_ok = r.orders_path.is_empty() || check("orders_path", &r.orders_path)?;
        let population_ok =
            r.population_path.is_empty() || check("population_path", &r.population_path)?;
        if !violations.is_empty() {
            return Err(ApiError::Invalid(violations));
        }
        debug_assert!(visits_ok && orders_ok && population_ok);
        if r.orders_path.is_empty() && self.shared.history.is_none() {
            return Err(ApiError::field(
                "orders_path",
                "is required: this server keeps no calculation history (history.url is empty)",
            ));
        }
        let model = self.shared.registry.select(&r.model)?;
        let dir = DataDir::open(&data_dir).map_err(|e| ApiError::Precondition(e.to_string()))?;
        let visits = open(&dir, "visits_path", &r.visits_path)?;
        let total = visits.metadata().map(|m| m.len()).unwrap_or(0);
        let orders = if r.orders_path.is_empty() {
            None
        } else {
            Some((
                open(&dir, "orders_path", &r.orders_path)?,
                r.orders_path.clone(),
            ))
        };
        let population = if r.population_path.is_empty() {
            None
        } else {
            let f = open(&dir, "population_path", &r.population_path)?;
            Some(
                consumption::read_population_from(f, &r.population_path)
                    .map_err(|e| followup_error("population_path", e))?,
            )
        };
        // A bad age variable is the request's: refused before the log is read.
        consumption::Grouping::new(
            &model.catalog,
            &opts.age_variable,
            opts.age_variable_given,
            population.as_ref(),
        )
        .map_err(|e| followup_error("age_variable", e))?;
        Ok(Prepared {
            model,
            opts,
            visits,
            visits_name: r.visits_path.clone(),
            total,
            orders,
            population,
        })
    }
}

/// The whole run, blocking: orders, the log, the comparison.
fn run(
    p: Prepared,
    history: Option<ramtid_history::HistoryStore>,
    own_of: Option<String>,
    progress: &Streamed,
) -> Result<pb::FollowUpResult, ApiError> {
    let t0 = Instant::now();
    let orders = match p.orders {
        Some((file, name)) => orders::read_orders_from(&p.model, file, &name)
            .map_err(|e| followup_error("orders_path", e))?,
        None => {
            let store = history.as_ref().expect("checked in prepare");
            orders::orders_from_history(store, "the calculation history")
                .map_err(|e| followup_error("orders_path", e))?
        }
    };
    let own = match (&own_of, &history) {
        (Some(name), Some(store)) => Some(own_cases(store, name)?),
        (Some(_), None) => Some(HashSet::new()),
        (None, _) => None,
    };
    // The reading begins: the caller sees the log's size at once, then every 8 MiB.
    progress.send(0);
    let f = followup::follow_up_from(
        &p.model,
        orders,
        p.population,
        p.visits,
        &p.visits_name,
        &p.opts,
        progress,
    )
    .map_err(|e| match e {
        FollowUpError::Nothing(m) if m.starts_with("--month") => {
            ApiError::field("month", m.trim_start_matches("--month ").to_string())
        }
        e => followup_error("visits_path", e),
    })?;
    Ok(result_pb(&f, own.as_ref(), t0.elapsed().as_secs_f64()))
}

#[tonic::async_trait]
impl FollowUpService for FollowUpSvc {
    type FollowUpStream = ReceiverStream<Result<pb::FollowUpProgress, Status>>;

    async fn follow_up(
        &self,
        request: Request<pb::FollowUpRequest>,
    ) -> Result<Response<Self::FollowUpStream>, Status> {
        let caller = request.extensions().get::<Caller>().cloned();
        let r = request.into_inner();
        let target = format!(
            "visits {}",
            crate::error::truncate_for_message(&r.visits_path)
        );
        let this = self.clone();
        let prepared = {
            let r = r.clone();
            tokio::task::spawn_blocking(move || this.prepare(&r))
                .await
                .map_err(|e| ApiError::Internal(format!("follow-up stopped: {e}")))
                .and_then(|p| p)
        };
        let prepared = match prepared {
            Ok(p) => p,
            Err(e) => {
                let o = format!("{:?}: {e}", e.code());
                self.shared.audit(caller, "follow_up", target, o).await;
                return Err(e.into());
            }
        };
        crate::note_model(prepared.model.name(), prepared.model.version());
        let turn = self.turn.clone().try_acquire_owned().map_err(|_| {
            Status::from(ApiError::Busy(
                "a follow-up is in progress on this server (one at a time); try again when it has finished".into(),
            ))
        })?;
        // The history is read and personal rows go out: not unless the log has recorded
        // that it started.
        self.shared
            .audit_start(caller.as_ref(), "follow_up", target.clone())
            .await
            .map_err(Status::from)?;
        let own_of = caller
            .as_ref()
            .filter(|c| c.role == Role::Assessor)
            .map(|c| c.name.clone());
        let history = self.shared.history.clone();
        let shared = self.shared.clone();
        let (tx, rx) = mpsc::channel(16);
        let span = tracing::Span::current();
        tokio::spawn(async move {
            let _turn = turn;
            let progress = Streamed {
                tx: tx.clone(),
                total: prepared.total,
                done: AtomicU64::new(0),
                sent: AtomicU64::new(0),
            };
            let result = tokio::task::spawn_blocking(move || {
                let _enter = span.enter();
                run(prepared, history, own_of, &progress)
            })
            .await
            .map_err(|e| ApiError::Internal(format!("follow-up stopped: {e}")))
            .and_then(|r| r);
            let outcome = match &result {
                Ok(done) => format!(
                    "ok: {} recipient-months{}",
                    done.recipient_months,
                    if done.own_cases_only {
                        " (own cases)"
                    } else {
                        ""
                    }
                ),
                Err(e) => format!("{:?}: {e}", e.code()),
            };
            shared.audit(caller, "follow_up", target, outcome).await;
            let message = result.map(|done| pb::FollowUpProgress {
                event: Some(pb::follow_up_progress::Event::Done(done)),
            });
            let _ = tx.send(message.map_err(Status::from)).await;
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}
