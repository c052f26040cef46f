//! End to end on a small simulated municipality: simulate, train on the dirty log, estimate
//! held-out recipients, and compare with the simulator's truth.

use ramtid_core::estimate::{estimate, WEEKS_PER_MONTH};
use ramtid_core::model::Model;
use ramtid_core::needs::NeedsSet;
use ramtid_core::params::{FitParams, ParamGuard};
use ramtid_core::progress::NoProgress;
use ramtid_core::train::{train, TrainRequest};
use ramtid_sim::{simulate, Municipality, SimConfig, SimSummary};
use std::collections::HashMap;
use std::path::Path;

fn world(dir: &Path, municipality: Municipality) -> (SimSummary, Model) {
    let sim = simulate(
        &SimConfig {
            municipality,
            seed: 11,
            recipients: 400,
            weeks: 6,
            holdout_recipients: 200,
        },
        &dir.join("sim"),
    )
    .unwrap();
    let (model, _) = train(
        &TrainRequest {
            catalog: dir.join("sim/catalog.toml"),
            visits: dir.join("sim/visits.csv"),
            data_dir: None,
            limits: Default::default(),
            models_dir: dir.join("models"),
            name: "test".into(),
            rejects: Some(dir.join("rejects.csv")),
            params: FitParams::default().check().unwrap(),
        },
        &NoProgress,
    )
    .unwrap();
    (sim, model)
}

struct Truth {
    true_weekly: f64,
    best_weekly: f64,
}

fn truth(path: &Path) -> HashMap<String, Truth> {
    let mut r = csv::Reader::from_path(path).unwrap();
    r.deserialize::<HashMap<String, String>>()
        .map(|row| {
            let row = row.unwrap();
            (
                row["recipient_id"].clone(),
                Truth {
                    true_weekly: row["true_weekly_min"].parse().unwrap(),
                    best_weekly: row["best_weekly_min"].parse().unwrap(),
                },
            )
        })
        .collect()
}

/// MAPE and bias of ours, and MAPE of the best achievable, on held-out recipients.
fn score(dir: &Path, model: &Model) -> (f64, f64, f64, f64) {
    let truth = truth(&dir.join("sim/truth.csv"));
    let needs = std::fs::read_to_string(dir.join("sim/needs.jsonl")).unwrap();
    let (mut ape, mut best_ape, mut sum_pred, mut sum_true, mut covered, mut n) =
        (0.0, 0.0, 0.0, 0.0, 0, 0);
    for line in needs.lines() {
        let set: NeedsSet = serde_json::from_str(line).unwrap();
        let valid = set.validate(&model.catalog).unwrap();
        let e = estimate(model, &valid);
        let t = &truth[&set.recipient_id];
        ape += (e.weekly_min - t.true_weekly).abs() / t.true_weekly;
        best_ape += (t.best_weekly - t.true_weekly).abs() / t.true_weekly;
        sum_pred += e.weekly_min;
        sum_true += t.true_weekly;
        covered +=
            usize::from(e.p10_weekly_min <= t.true_weekly && t.true_weekly <= e.p90_weekly_min);
        n += 1;
        // The answer is internally consistent.
        assert!((e.monthly_min - e.weekly_min * WEEKS_PER_MONTH).abs() < 1e-6);
        assert!(e.weekly_staff_min >= e.weekly_min - 1e-9);
        assert!(e.p10_weekly_min <= e.weekly_min && e.weekly_min <= e.p90_weekly_min);
        let from_visits: f64 = e.visits.iter().map(|v| v.weekly_min).sum();
        assert!((from_visits - e.weekly_min).abs() < 1e-6);
        assert_eq!(e.context_effects.len(), model.catalog.contexts.len());
        // The week is shared out over the needs without losing or adding a minute.
        assert_eq!(e.per_need.len(), valid.needs.len());
        let shared: f64 = e.per_need.iter().map(|n| n.weekly_min).sum();
        assert!((shared - e.weekly_min).abs() < 1e-6 * e.weekly_min.max(1.0));
        assert!(e.per_need.iter().all(|n| n.weekly_min > 0.0));
        assert_eq!(e.model_version, model.version());
    }
    let n = n as f64;
    (
        ape / n,
        best_ape / n,
        sum_pred / sum_true - 1.0,
        covered as f64 / n,
    )
}

#[test]
fn recovers_efficient_time_from_a_dirty_log() {
    let dir = tempfile::tempdir().unwrap();
    let (sim, model) = world(dir.path(), Municipality::Nordstad);
    let m = &model.manifest;
    // Every log fault is found and accounted for.
    assert_eq!(m.rows.read, sim.rows_written);
    assert_eq!(m.rows.read, m.rows.used + m.rows.rejected + m.rows.flagged);
    // A duplicate of a row with an unknown code is rejected like its original, so the two
    // counts are exact only together.
    assert!(m.rows.rejected >= sim.faults.unknown_code);
    assert_eq!(
        m.rows.rejected + m.rows.flagged_duplicate,
        sim.faults.unknown_code + sim.faults.duplicate_row
    );
    // Faults overlap (a forgotten check-out on a row that is rejected for its code) and a
    // genuinely long visit of a slow team may be flagged too: "about", not "exactly".
    let near = |flagged: u64, faults: u64| flagged.abs_diff(faults) <= 2 + faults / 50;
    assert!(
        near(
            m.rows.flagged_forgotten_checkout,
            sim.faults.forgotten_checkout
        ),
        "{} flagged, {} simulated",
        m.rows.flagged_forgotten_checkout,
        sim.faults.forgotten_checkout
    );
    assert!(
        near(m.rows.flagged_too_short, sim.faults.short_checkin),
        "{} flagged, {} simulated",
        m.rows.flagged_too_short,
        sim.faults.short_checkin
    );

    // Slow teams are found, with about their true excess.
    let params: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("sim/simulation.json")).unwrap())
            .unwrap();
    for team in params["teams"].as_array().unwrap() {
        let id = team["unit_id"].as_str().unwrap();
        let truth = team["multiplier"].as_f64().unwrap();
        let fitted = m.fit.teams.iter().find(|t| t.unit_id == id).unwrap();
        assert!(
            (fitted.multiplier - truth).abs() < 0.1,
            "team {id}: fitted {} true {truth}",
            fitted.multiplier
        );
        assert_eq!(
            fitted.inefficient,
            team["slow"].as_bool().unwrap(),
            "team {id}"
        );
    }

    let (mape, best, bias, coverage) = score(dir.path(), &model);
    eprintln!(
        "nordstad small: MAPE {mape:.4}, best {best:.4}, bias {bias:.4}, coverage {coverage:.3}"
    );
    assert!(mape <= 1.35 * best, "MAPE {mape} vs best achievable {best}");
    assert!(bias.abs() <= 0.03, "bias {bias}");
    assert!((0.65..=0.92).contains(&coverage), "coverage {coverage}");
}

#[test]
fn generalizes_to_a_structurally_different_municipality() {
    let dir = tempfile::tempdir().unwrap();
    let (_, model) = world(dir.path(), Municipality::Sjobygd);
    let (mape, best, bias, _) = score(dir.path(), &model);
    eprintln!("sjobygd small: MAPE {mape:.4}, best {best:.4}, bias {bias:.4}");
    assert!(mape <= 1.4 * best, "MAPE {mape} vs best achievable {best}");
    assert!(bias.abs() <= 0.04, "bias {bias}");
}

#[test]
fn a_changed_or_damaged_model_is_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let (_, model) = world(dir.path(), Municipality::Nordstad);
    let params = model.dir.join("params.json");
    let text = std::fs::read_to_string(&params).unwrap();
    std::fs::write(&params, text.replacen("0", "1", 1)).unwrap();
    let e = Model::load(&model.dir).unwrap_err().to_string();
    assert!(e.contains("fingerprint"), "{e}");
    std::fs::write(&params, "{").unwrap();
    assert!(Model::load(&model.dir).is_err());
    std::fs::remove_file(model.dir.join("manifest.json")).unwrap();
    let e = Model::load(&model.dir).unwrap_err().to_string();
    assert!(e.contains("manifest.json"), "{e}");
}
