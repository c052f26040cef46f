//! Held-out evaluation: the metric formulas on numbers worked out by hand, a full run on a
//! small simulated municipality (simulate, train, evaluate, report), and bad inputs that
//! must be refused with file, line and column, or counted and reported.

use ramtid_core::model::Model;
use ramtid_core::params::{FitParams, ParamGuard};
use ramtid_core::progress::NoProgress;
use ramtid_core::train::{train, TrainRequest};
use ramtid_report::evaluate::metrics::{self, summarize};
use ramtid_report::evaluate::{evaluate, write_report, EvaluateError, EvaluateInputs};
use ramtid_sim::{simulate, Municipality, SimConfig};
use std::path::{Path, PathBuf};

// ---------------------------------------------------------------------------------------
// Metrics on hand-made numbers

#[test]
fn metric_formulas_match_hand_computation() {
    // truth 100, 200, 50, 250; predictions err by +10, −30, +5, +15.
    let truth = [100.0, 200.0, 50.0, 250.0];
    let pred = [110.0, 170.0, 55.0, 265.0];
    // |errors| 10, 30, 5, 15 → MAE 15; squared 100, 900, 25, 225 → RMSE √312.5.
    assert!((metrics::mae(&pred, &truth) - 15.0).abs() < 1e-12);
    assert!((metrics::rmse(&pred, &truth) - 312.5f64.sqrt()).abs() < 1e-12);
    // relative: 0.10, 0.15, 0.10, 0.06 → MAPE 0.1025, median (0.10 + 0.10) / 2.
    assert!((metrics::mape(&pred, &truth) - 0.1025).abs() < 1e-12);
    assert!((metrics::median_ape(&pred, &truth) - 0.10).abs() < 1e-12);
    // Σpred 600, Σtruth 600: no bias although every case errs.
    assert!(metrics::bias(&pred, &truth).abs() < 1e-12);
    assert!((metrics::bias(&[120.0, 240.0], &[100.0, 200.0]) - 0.20).abs() < 1e-12);
    // mean truth 150; SS_tot 2500 + 2500 + 10000 + 10000 = 25000; SS_res 1250.
    assert!((metrics::r2(&pred, &truth) - 0.95).abs() < 1e-12);
    // within ±10 %: 0.10 (edge, inside), 0.15 (out), 0.10 (inside), 0.06 (inside).
    assert!((metrics::share_within(&pred, &truth, 0.10) - 0.75).abs() < 1e-12);
    // interval: two of four truths inside.
    let lo = [90.0, 201.0, 40.0, 260.0];
    let hi = [100.0, 220.0, 60.0, 300.0];
    assert!((metrics::coverage(&lo, &hi, &truth) - 0.5).abs() < 1e-12);

    let m = summarize(&pred, &truth, Some((&lo, &hi)));
    assert_eq!(m.n, 4);
    assert!((m.mae - 15.0).abs() < 1e-12 && (m.r2 - 0.95).abs() < 1e-12);
    assert_eq!(m.interval_coverage, Some(0.5));
    // A predictor that is always the mean has R² 0, a worse one below 0.
    assert!(metrics::r2(&[150.0; 4], &truth).abs() < 1e-12);
    assert!(metrics::r2(&[0.0; 4], &truth) < 0.0);
    // Over-prediction by the same amount is a larger relative error on small truths.
    assert!(metrics::mape(&[20.0, 110.0], &[10.0, 100.0]) > 0.5);
}

// ---------------------------------------------------------------------------------------
// A small simulated municipality and a model trained on it

struct World {
    _tmp: tempfile::TempDir,
    sim: PathBuf,
    model: Model,
}

fn world(recipients: usize, weeks: usize, holdout: usize) -> World {
    let tmp = tempfile::tempdir().unwrap();
    let sim = tmp.path().join("sim");
    simulate(
        &SimConfig {
            municipality: Municipality::Nordstad,
            seed: 7,
            recipients,
            weeks,
            holdout_recipients: holdout,
        },
        &sim,
    )
    .unwrap();
    // Fewer folds and penalties than the defaults: this is a test of the evaluation, and
    // the library is unoptimized in debug builds.
    let params = FitParams::new()
        .folds(3)
        .lambdas(vec![10.0, 100.0])
        .check()
        .unwrap();
    let (model, _) = train(
        &TrainRequest {
            catalog: sim.join("catalog.toml"),
            visits: sim.join("visits.csv"),
            data_dir: None,
            limits: Default::default(),
            models_dir: tmp.path().join("models"),
            name: "eval".into(),
            rejects: None,
            params,
        },
        &NoProgress,
    )
    .unwrap();
    World {
        sim,
        model,
        _tmp: tmp,
    }
}

fn inputs(sim: &Path, visits: bool) -> EvaluateInputs {
    EvaluateInputs {
        needs: sim.join("needs.jsonl"),
        truth: sim.join("truth.csv"),
        visits: visits.then(|| sim.join("heldout_visits.csv")),
    }
}

#[test]
fn end_to_end_on_a_simulated_municipality() {
    let w = world(300, 4, 100);
    let mut model = w.model;
    let e = evaluate(&model, &inputs(&w.sim, true)).unwrap();
    assert_eq!(e.data.needs_lines, 100);
    assert_eq!(e.data.needs_failed, 0);
    assert_eq!(e.weekly.n, 100);
    assert_eq!(e.data.schablon_mismatches, 0, "same catalog, same schablon");

    // The model must beat the stacked schablon, and not beat the best achievable by much
    // (it cannot see the recipient's own variation).
    let (ours, sch) = (&e.weekly.ours, &e.weekly.schablon);
    let best = e.weekly.best.as_ref().expect("truth has best_weekly_min");
    assert!(
        ours.mape < sch.mape,
        "ours {} schablon {}",
        ours.mape,
        sch.mape
    );
    assert!(ours.mape < 0.25, "ours MAPE {}", ours.mape);
    assert!(best.mape > 0.0 && ours.mape > 0.8 * best.mape);
    assert!(ours.r2 > 0.7 && ours.r2 <= 1.0);
    let ratio = e.weekly.mape_ratio_ours_over_best.unwrap();
    assert!((ratio - ours.mape / best.mape).abs() < 1e-12);
    let cov = ours.interval_coverage.unwrap();
    assert!((0.5..=1.0).contains(&cov), "coverage {cov}");
    // The schablon figures are ours to compute, from the estimate's stacked schablon.
    let sum_sch: f64 = e.recipients.iter().map(|r| r.schablon_weekly_min).sum();
    assert!((sch.sum_pred - sum_sch).abs() < 1e-6);

    // Per visit.
    let v = e.visits.as_ref().expect("visits evaluated");
    assert_eq!(v.target_column, "efficient_min");
    assert!(v.n > 1000, "{} visits", v.n);
    assert!(v.ours.mae > 0.0 && v.ours.mae < v.schablon.mae);
    assert!(v.ours.interval_coverage.is_some());
    assert!(!v.by_slot.is_empty());

    // Groups: every context variable and need size, each summing to all recipients.
    for var in model
        .catalog
        .contexts
        .iter()
        .map(|c| c.name.as_str())
        .chain(["need_size"])
    {
        let n: usize = e
            .groups
            .iter()
            .filter(|g| g.variable == var)
            .map(|g| g.n)
            .sum();
        assert_eq!(n, 100, "groups of {var}");
    }

    // Files.
    let out = w.sim.join("report");
    write_report(&e, &out).unwrap();
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("evaluation.json")).unwrap())
            .unwrap();
    for key in ["mae", "mape", "median_ape", "bias", "r2", "within_10pct"] {
        for who in ["ours", "schablon", "best"] {
            assert!(
                json["weekly"][who][key].is_number(),
                "weekly.{who}.{key} missing"
            );
        }
        assert!(json["visits"]["ours"][key].is_number(), "visits.ours.{key}");
    }
    assert!(json["weekly"]["ours"]["interval_coverage"].is_number());
    assert!(json["weekly"]["mape_ratio_ours_over_best"].is_number());
    assert!(json["groups"].as_array().unwrap().len() >= 10);
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert_eq!(html.matches("<svg").count(), 3, "three plots");
    crate::browser::assert_plots_render(&out.join("report.html"), &[], 3);
    assert!(html.contains("best achievable") && html.contains("stacked schablon"));
    let csv = std::fs::read_to_string(out.join("recipients.csv")).unwrap();
    assert_eq!(csv.lines().count(), 101);
    assert!(e.summary_table().contains("MAPE"));

    // --record: the figures land in the manifest and survive a reload.
    model.record_evaluation(e.to_json()).unwrap();
    let reloaded = Model::load(&model.dir).unwrap();
    let rec = reloaded.manifest.evaluation.expect("recorded");
    assert_eq!(rec["weekly"]["n"], 100);

    // A needs line that fails validation is counted and reported, not fatal; its truth
    // row is not an unknown id.
    let needs = std::fs::read_to_string(w.sim.join("needs.jsonl")).unwrap();
    let mut lines: Vec<String> = needs.lines().map(str::to_string).collect();
    lines[2] = lines[2].replacen("\"per_week\":", "\"per_week\":-", 1);
    lines[4] = "this is not json".to_string();
    let bad_needs = w.sim.join("bad_needs.jsonl");
    std::fs::write(&bad_needs, lines.join("\n")).unwrap();
    let e2 = evaluate(
        &model,
        &EvaluateInputs {
            needs: bad_needs.clone(),
            ..inputs(&w.sim, false)
        },
    )
    .unwrap();
    assert_eq!(e2.data.needs_failed, 2);
    assert_eq!(e2.weekly.n, 98);
    assert_eq!(e2.data.needs_problems[0].line, 3);
    assert!(
        e2.data.needs_problems[0]
            .message
            .contains("needs[0].per_week"),
        "{}",
        e2.data.needs_problems[0].message
    );
    assert_eq!(e2.data.needs_problems[1].line, 5);
    assert_eq!(e2.data.truth_of_failed_needs + e2.data.truth_unmatched, 2);
    assert!(e2.visits.is_none());

    // Truth of another needs file: a recipient id the needs file does not have.
    let truth = std::fs::read_to_string(w.sim.join("truth.csv")).unwrap();
    let odd = w.sim.join("odd_truth.csv");
    std::fs::write(&odd, truth.replacen("NS-", "XX-", 3)).unwrap();
    let err = evaluate(
        &model,
        &EvaluateInputs {
            truth: odd,
            ..inputs(&w.sim, false)
        },
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("odd_truth.csv") && err.contains("line 2") && err.contains("recipient_id"),
        "{err}"
    );

    // A bad held-out visit row names its file, line and column.
    let visits = std::fs::read_to_string(w.sim.join("heldout_visits.csv")).unwrap();
    let mut vlines: Vec<String> = visits.lines().map(str::to_string).collect();
    let mut cells: Vec<&str> = vlines[7].split(',').collect();
    cells[5] = "3"; // staff
    vlines[7] = cells.join(",");
    let bad_visits = w.sim.join("bad_visits.csv");
    std::fs::write(&bad_visits, vlines.join("\n")).unwrap();
    let err = evaluate(
        &model,
        &EvaluateInputs {
            visits: Some(bad_visits),
            ..inputs(&w.sim, false)
        },
    )
    .unwrap_err();
    match &err {
        EvaluateError::Row { line, column, .. } => {
            assert_eq!((*line, column.as_str()), (8, "staff"), "{err}");
        }
        other => panic!("expected a row error, got {other}"),
    }
}

#[test]
fn a_bad_truth_row_names_file_line_and_column() {
    let w = world(80, 2, 10);
    let truth = std::fs::read_to_string(w.sim.join("truth.csv")).unwrap();
    let mut lines: Vec<String> = truth.lines().map(str::to_string).collect();
    // Line 4 of the file (third data row): true_weekly_min with a decimal comma.
    let mut cells: Vec<String> = lines[3].split(',').map(str::to_string).collect();
    cells[1] = "\"123,5\"".into();
    lines[3] = cells.join(",");
    let bad = w.sim.join("bad_truth.csv");
    std::fs::write(&bad, lines.join("\n")).unwrap();
    let err = evaluate(
        &w.model,
        &EvaluateInputs {
            truth: bad,
            ..inputs(&w.sim, false)
        },
    )
    .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("bad_truth.csv")
            && msg.contains("line 4")
            && msg.contains("true_weekly_min")
            && msg.contains("123,5"),
        "{msg}"
    );

    // A missing column is named too, and a missing file.
    let headless = w.sim.join("headless_truth.csv");
    std::fs::write(&headless, truth.replacen("true_weekly_min", "weekly", 1)).unwrap();
    let msg = evaluate(
        &w.model,
        &EvaluateInputs {
            truth: headless,
            ..inputs(&w.sim, false)
        },
    )
    .unwrap_err()
    .to_string();
    assert!(
        msg.contains("headless_truth.csv") && msg.contains("'true_weekly_min' is missing"),
        "{msg}"
    );
    let msg = evaluate(
        &w.model,
        &EvaluateInputs {
            truth: w.sim.join("no_such_truth.csv"),
            ..inputs(&w.sim, false)
        },
    )
    .unwrap_err()
    .to_string();
    assert!(msg.contains("no_such_truth.csv"), "{msg}");
}

/// Our metric formulas agree with linfa's independent implementation.
#[test]
fn metrics_agree_with_linfa() {
    use linfa::prelude::SingleTargetRegression;
    use ndarray::Array1;
    use ramtid_report::evaluate::metrics::{mae, r2, rmse};
    // A deterministic, irregular sample (no RNG needed to make it non-trivial).
    let truth: Vec<f64> = (1..=200)
        .map(|i| 50.0 + (i as f64 * 7.3).sin() * 30.0 + i as f64)
        .collect();
    let pred: Vec<f64> = truth
        .iter()
        .enumerate()
        .map(|(i, t)| t * (1.0 + ((i as f64) * 1.7).cos() * 0.15) + 2.0)
        .collect();
    let (p, t) = (Array1::from(pred.clone()), Array1::from(truth.clone()));
    let close = |a: f64, b: f64| (a - b).abs() < 1e-9 * (1.0 + b.abs());
    assert!(close(
        mae(&pred, &truth),
        p.mean_absolute_error(&t).unwrap()
    ));
    assert!(close(
        rmse(&pred, &truth),
        p.mean_squared_error(&t).unwrap().sqrt()
    ));
    assert!(close(r2(&pred, &truth), p.r2(&t).unwrap()));
}
