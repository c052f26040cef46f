//! Shared setup of the fuzz targets: the shipped model (loaded once), a small catalog, a
//! scratch directory, and the checks every accepted input must pass (an estimate never
//! panics and its figures are finite).

use ramtid_core::catalog::Catalog;
use ramtid_core::estimate::{estimate_with, explain_visit, Detail, Estimate};
use ramtid_core::model::Model;
use ramtid_core::needs::{NeedsSet, ValidNeeds};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The model shipped with the repository.
pub fn model_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/nordstad/1")
}

/// `models/nordstad/1`, loaded once per process.
pub fn model() -> &'static Model {
    static MODEL: OnceLock<Model> = OnceLock::new();
    MODEL.get_or_init(|| Model::load(&model_dir()).expect("the shipped model loads"))
}

/// The catalog the visit-log tests use (tests/it/visit_log.rs).
pub const SMALL_CATALOG: &str = r#"
[[insats]]
code = "MORNING_CARE"
category = "personal_care"
schablon_min = 15
[[insats]]
code = "SHOWER"
category = "personal_care"
schablon_min = 30
[[insats]]
code = "CLEANING"
category = "service"
schablon_min = 90
[[context]]
name = "cognition"
kind = "ordinal"
levels = [0, 1, 2, 3]
[[context]]
name = "lives_alone"
kind = "boolean"
"#;

pub fn small_catalog() -> &'static Catalog {
    static CATALOG: OnceLock<Catalog> = OnceLock::new();
    CATALOG.get_or_init(|| Catalog::from_toml(SMALL_CATALOG, "catalog.toml").unwrap())
}

/// A directory for the files a target writes, kept for the process's life.
pub fn scratch() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("a temporary directory"))
        .path()
}

/// The needs object of `examples/needs.json`, which the shipped model accepts.
pub fn example_needs() -> NeedsSet {
    serde_json::from_str(include_str!("../../examples/needs.json")).expect("examples/needs.json")
}

/// Every figure of an estimate is a finite number, and none is negative.
pub fn check_estimate(e: &Estimate) {
    let totals = [
        ("weekly_min", e.weekly_min),
        ("weekly_staff_min", e.weekly_staff_min),
        ("monthly_min", e.monthly_min),
        ("monthly_staff_min", e.monthly_staff_min),
        ("p10_weekly_min", e.p10_weekly_min),
        ("p90_weekly_min", e.p90_weekly_min),
        ("schablon_weekly_min", e.schablon_weekly_min),
        ("schablon_weekly_staff_min", e.schablon_weekly_staff_min),
        ("visits_per_week", e.visits_per_week),
    ];
    for (name, x) in totals {
        assert!(x.is_finite() && x >= 0.0, "{name} = {x}");
    }
    for v in &e.visits {
        for (name, x) in [
            ("visits[].minutes", v.minutes),
            ("visits[].p10_minutes", v.p10_minutes),
            ("visits[].p90_minutes", v.p90_minutes),
            ("visits[].weekly_min", v.weekly_min),
        ] {
            assert!(x.is_finite() && x >= 0.0, "{name} = {x}");
        }
    }
    for c in &e.context_effects {
        assert!(c.weekly_min.is_finite(), "context effect {}", c.weekly_min);
    }
    for n in &e.per_need {
        assert!(
            n.weekly_min.is_finite() && n.schablon_weekly_min.is_finite(),
            "per_need {} {}",
            n.weekly_min,
            n.schablon_weekly_min
        );
    }
}

/// Estimates a validated needs set in both levels of detail and checks the figures.
pub fn estimate_checked(model: &Model, valid: &ValidNeeds) {
    check_estimate(&estimate_with(model, valid, Detail::Full));
    check_estimate(&estimate_with(model, valid, Detail::Totals));
}

/// Validates `set` against `model`'s catalog and, when it is accepted, estimates it.
pub fn validate_and_estimate(model: &Model, set: &NeedsSet) {
    if let Ok(valid) = set.validate(&model.catalog) {
        estimate_checked(model, &valid);
    }
}

/// Explains one visit of the validated tasks (ExplainVisit's computation) and checks it.
pub fn explain_checked(model: &Model, valid: &ValidNeeds) {
    let Some(first) = valid.needs.first() else {
        return;
    };
    let Some(slot) = first.slot else {
        return;
    };
    let tasks: Vec<u16> = valid.needs.iter().map(|n| n.insats as u16).collect();
    let x = explain_visit(model, &tasks, slot, first.staff, &valid.context);
    for (name, m) in [
        ("minutes", x.minutes),
        ("p10_minutes", x.p10_minutes),
        ("p90_minutes", x.p90_minutes),
    ] {
        assert!(m.is_finite() && m >= 0.0, "{name} = {m}");
    }
    for (f, m) in &x.parts {
        assert!(m.is_finite(), "part {f} = {m}");
    }
}
