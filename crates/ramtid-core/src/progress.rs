//! Progress of long work (reading a log, fitting), reported to whoever wants it: the command
//! line draws bars, the service streams stages to its caller, a library user may ignore it
//! ([`NoProgress`]). The core itself draws nothing.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The stages of a training run, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    /// Reading and cleaning the visit log; work counted in bytes.
    Reading,
    /// Fitting; work counted in visits.
    Fitting,
    /// Writing the model version; no count.
    Writing,
}

impl Stage {
    /// The stage's name: "reading", "fitting", "writing".
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Reading => "reading",
            Stage::Fitting => "fitting",
            Stage::Writing => "writing",
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where progress goes. `Sync`: the fit's threads advance it at once.
pub trait Progress: Sync {
    /// A stage begins (and the one before it has ended); `total` is its amount of work in
    /// the stage's unit, when known.
    fn stage(&self, stage: Stage, total: Option<u64>);
    /// `done` more units of the current stage's work are done.
    fn advance(&self, done: u64);
}

/// Progress that goes nowhere.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn stage(&self, _: Stage, _: Option<u64>) {}
    fn advance(&self, _: u64) {}
}

impl<P: Progress + ?Sized> Progress for &P {
    fn stage(&self, stage: Stage, total: Option<u64>) {
        (**self).stage(stage, total)
    }
    fn advance(&self, done: u64) {
        (**self).advance(done)
    }
}
