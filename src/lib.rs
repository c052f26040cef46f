//! The command line's own library: what `ramtid` does beyond calling the crates of the
//! workspace. The statistics core is `ramtid-core`, the wire `ramtid-proto`, the service
//! `ramtid-server`, the history `ramtid-history`, the simulated municipalities `ramtid-sim`
//! and the reports `ramtid-report`; the README's "Crates and layering" draws the rule.

pub mod client;
pub mod progress;
pub mod train;
pub mod validate;
