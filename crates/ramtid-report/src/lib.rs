//! ramtid's reports: how a model scores on held-out recipients ([`evaluate`]) and what a
//! candidate model would do to a stored caseload ([`rebudget`]), each written as JSON, CSV
//! and an HTML page with its plots.

pub mod evaluate;
pub mod rebudget;

// What each provider is paid per month under the municipality's payment model, side by
// side with every other basis.
pub mod payment;
