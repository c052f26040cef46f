//! ramtid: a context-aware frame time (*ramtid*) for Swedish home care, learned from how
//! long efficiently performed visits really take.
//!
//! The statistics core (catalog, visit log, features, fitting, planning a week of visits,
//! estimating) lives here and knows nothing about gRPC or storage. The binary `ramtid`
//! wires it to the command line.

pub mod calendar;
pub mod catalog;
pub mod estimate;
pub mod evaluate;
pub mod features;
pub mod fingerprint;
pub mod fit;
pub mod linalg;
pub mod model;
pub mod needs;
pub mod personnummer;
pub mod plan;
pub mod progress;
pub mod service;
pub mod simulate;
pub mod slot;
pub mod train;
pub mod visits;
