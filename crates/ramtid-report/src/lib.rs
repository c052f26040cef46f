//! ramtid's reports: how a model scores on held-out recipients ([`evaluate`]), what a
//! candidate model would do to a stored caseload ([`rebudget`]), and ordered against
//! performed time with the providers compared ([`followup`]), each written as JSON, CSV
//! and an HTML page with its plots.

pub mod catalog_design;
mod csv_fault;
pub mod evaluate;
pub mod followup;
pub mod rebudget;

// What each provider is paid per month under the municipality's payment model, side by
// side with every other basis.
pub mod payment;
