//! ramtid's statistics core: a context-aware frame time (*ramtid*) for Swedish home care,
//! learned from how long efficiently performed visits really take.
//!
//! The catalog of insatser, a recipient's needs, the visit log and its cleaning, the features
//! of a visit, the fit, planning a week of visits and estimating it, and the versioned model
//! on disk. It knows nothing of gRPC, async runtimes or storage: its normal dependency tree
//! holds none of them, and CI checks that it stays so.
//!
//! ```
//! use ramtid_core::{estimate::estimate, model::Model, needs::NeedsSet};
//!
//! let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/nordstad/1");
//! let model = Model::load(&dir)?;
//! let needs: NeedsSet = serde_json::from_str(r#"{
//!     "recipient_id": "H-0042",
//!     "context": {"age": 84, "lives_alone": true, "cognition": 1, "mobility": 2,
//!                 "interpreter": false, "area": "urban"},
//!     "needs": [{"code": "MORNING_CARE", "per_week": 7},
//!               {"code": "SHOWER", "per_week": 1},
//!               {"code": "CLEANING", "per_week": 0.5}]
//! }"#)?;
//! let valid = needs.validate(&model.catalog)?;
//! let e = estimate(&model, &valid);
//! assert!(e.weekly_min > 0.0 && e.p10_weekly_min < e.weekly_min);
//! // The shower joins the morning visit: fewer visits than occasions.
//! assert!(e.visits_per_week < 7.0 + 1.0 + 0.5);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod calendar;
pub mod catalog;
pub mod cluster;
pub mod datadir;
pub mod echo;
pub mod error;
pub mod estimate;
pub mod features;
pub mod files;
pub mod fingerprint;
pub mod fit;
pub mod frontier;
pub mod ibic;
pub mod linalg;
pub mod model;
pub mod needs;
pub mod params;
pub mod personnummer;
pub mod plan;
pub mod progress;
pub mod redact;
pub mod slot;
#[cfg(test)]
mod test_rng;
pub mod train;
pub mod visit_time;
pub mod visits;
