//! The visit log: reading it, cleaning it, and the compact table the fit works on.

mod reader;
mod table;
pub mod time;

pub use reader::{
    read_visit_log, read_visit_log_from, read_visit_log_from_reporting, read_visit_log_reporting,
    CleaningRules, LogError, ReadOptions, ReadReport, Reject, VisitLog,
};
pub use table::{VisitRow, VisitTable};
