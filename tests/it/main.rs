//! The integration tests, in one binary so that CI links once. Each module is one area;
//! tests that need a server start the real one on an ephemeral port and call it with a real
//! client (`common`).

mod common;

mod access;
mod browser;
mod catalog_design;
mod cli;
mod clusters;
#[cfg(unix)]
mod crash;
mod evaluate;
mod followup;
mod grpc;
mod history;
mod history_rpc;
mod ibic;
mod model_folder;
mod params;
mod parsers;
mod payment;
mod rebudget;
mod service_hardening;
mod train_estimate;
mod train_limits;
#[cfg(unix)]
mod train_worker;
mod validate;
mod visit_log;
