//! The training worker: `TrainModel` runs a training in a child process, so that a run that
//! panics, runs out of memory or is cancelled cannot take the serving process with it.
//!
//! The server starts its own executable as `ramtid train-worker` (hidden), writes one
//! [`Job`] as a JSON line on the child's stdin and reads [`Event`]s as JSON lines from its
//! stdout. The child limits its own address space (`RLIMIT_AS`) before it reads anything,
//! opens the catalog and the log confined to the data directory, and writes the version to a
//! temporary folder that is renamed only when complete and valid; the server then loads the
//! published version as any reader would. A child that ends without a result (a panic, a
//! signal, the memory limit) is an INTERNAL error; when the caller cancels, the child is
//! killed and its temporary folder removed.

use ramtid_core::progress::{Progress, Stage};
use ramtid_core::train::{train, TrainError, TrainRequest, TrainSummary, WORKER_HEADROOM_MB};
use serde::{Deserialize, Serialize};
use std::io::{BufRead, Write};

/// The hidden subcommand that runs a worker.
pub const SUBCOMMAND: &str = "train-worker";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Job {
    pub request: TrainRequest,
    /// Set `RLIMIT_AS` to `request.limits.max_memory_mb` plus the headroom.
    pub limit_memory: bool,
    /// Run at the lowest CPU priority (nice 19): serving comes first on a shared machine.
    pub lower_priority: bool,
}

/// What a training failed on, as the server maps it to a status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// The caller's input: `field` says which.
    Invalid,
    /// The data cannot be fitted.
    Precondition,
    /// Not the caller's fault.
    Internal,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    Stage {
        stage: Stage,
        /// The stage's amount of work (fitting: visits), when known.
        total: Option<u64>,
        elapsed_s: f64,
    },
    Done {
        summary: Box<TrainSummary>,
    },
    Failed {
        kind: FailureKind,
        field: Option<String>,
        message: String,
    },
}

impl Event {
    pub fn failed(e: &TrainError) -> Event {
        let (kind, field) = match e {
            TrainError::Catalog(_) => (FailureKind::Invalid, Some("catalog_path")),
            TrainError::Log(_) => (FailureKind::Invalid, Some("visits_path")),
            TrainError::Open { field, source } => match source {
                ramtid_core::datadir::OpenError::Refused(_) => (FailureKind::Invalid, Some(*field)),
                _ => (FailureKind::Internal, None),
            },
            TrainError::Limit { field, .. } => (FailureKind::Invalid, Some(*field)),
            TrainError::Fit(_) => (FailureKind::Precondition, None),
            TrainError::Model(_) => (FailureKind::Internal, None),
        };
        let message = match e {
            // The field is the status's; the message is the reason alone.
            TrainError::Open { source, .. } => source.to_string(),
            TrainError::Limit { message, .. } => message.clone(),
            other => other.to_string(),
        };
        Event::Failed {
            kind,
            field: field.map(str::to_string),
            message,
        }
    }
}

fn emit(out: &mut impl Write, event: &Event) {
    let mut line = serde_json::to_vec(event).expect("events serialize");
    line.push(b'\n');
    // The server is gone if this fails; nothing is left to tell.
    let _ = out.write_all(&line).and_then(|_| out.flush());
}

/// Limits this process's address space (the worker does it to itself before reading
/// anything: an allocation beyond it fails in this process, never in the server).
pub fn limit_address_space(mb: u64) -> std::io::Result<()> {
    let bytes = mb
        .saturating_add(WORKER_HEADROOM_MB)
        .saturating_mul(1 << 20);
    rustix::process::setrlimit(
        rustix::process::Resource::As,
        rustix::process::Rlimit {
            current: Some(bytes),
            maximum: Some(bytes),
        },
    )
    .map_err(Into::into)
}

/// Stages as events on stdout; the work within a stage is not streamed.
struct StageEvents {
    t0: std::time::Instant,
}

impl Progress for StageEvents {
    fn stage(&self, stage: Stage, total: Option<u64>) {
        emit(
            &mut std::io::stdout().lock(),
            &Event::Stage {
                stage,
                total,
                elapsed_s: self.t0.elapsed().as_secs_f64(),
            },
        )
    }
    fn advance(&self, _: u64) {}
}

/// The body of `ramtid train-worker`: one job from stdin, events on stdout. Returns the
/// process exit code (0 when a result or a failure was reported).
pub fn run_child() -> i32 {
    // A panic message can quote what was being parsed; the server is told where it
    // happened, never the payload.
    std::panic::set_hook(Box::new(|info| {
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        emit(
            &mut std::io::stdout().lock(),
            &Event::Failed {
                kind: FailureKind::Internal,
                field: None,
                message: format!("the training worker panicked{at}"),
            },
        );
    }));
    let mut line = String::new();
    let job: Job = match std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| e.to_string())
        .and_then(|_| serde_json::from_str(&line).map_err(|e| e.to_string()))
    {
        Ok(j) => j,
        Err(e) => {
            eprintln!("train-worker: no valid job on stdin: {e}");
            return 2;
        }
    };
    if job.limit_memory {
        if let Err(e) = limit_address_space(job.request.limits.max_memory_mb) {
            emit(
                &mut std::io::stdout().lock(),
                &Event::Failed {
                    kind: FailureKind::Internal,
                    field: None,
                    message: format!("the training worker cannot limit its memory: {e}"),
                },
            );
            return 0;
        }
    }
    if job.lower_priority {
        if let Err(e) = rustix::process::nice(19) {
            tracing::warn!(error = %e, "the training worker cannot lower its priority");
        }
    }
    // The parameters came checked: `CheckedFitParams` deserializes only through the check.
    let result = train(
        &job.request,
        &StageEvents {
            t0: std::time::Instant::now(),
        },
    );
    let event = match result {
        Ok((_, summary)) => Event::Done {
            summary: Box::new(summary),
        },
        Err(e) => Event::failed(&e),
    };
    emit(&mut std::io::stdout().lock(), &event);
    0
}
