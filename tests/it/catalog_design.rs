//! `ramtid catalog design` on a small random world: the proposed grouping loses less
//! accuracy than a random grouping of the same size, and what it writes is usable.

use ramtid_core::catalog::Catalog;
use ramtid_core::model::Model;
use ramtid_core::params::{FitParams, ParamGuard};
use ramtid_core::progress::NoProgress;
use ramtid_core::train::{train, TrainRequest};
use ramtid_sim::random::{simulate_random, RandomConfig};
use std::path::Path;
use std::process::Command;

fn world(dir: &Path, seed: u64) -> Model {
    simulate_random(
        &RandomConfig {
            seed,
            recipients: 500,
            weeks: 4,
            holdout_recipients: 5,
            codes: Some(24),
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
            name: "design".into(),
            rejects: None,
            params: FitParams::new()
                .folds(3)
                .lambdas(vec![10.0, 100.0])
                .check()
                .unwrap(),
        },
        &NoProgress,
    )
    .unwrap();
    model
}

fn design(dir: &Path, model: &Model, k: usize, out: &str, extra: &[&Path]) -> serde_json::Value {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ramtid"));
    cmd.args(["catalog", "design", "--model"])
        .arg(&model.dir)
        .arg("--visits")
        .arg(dir.join("sim/visits.csv"))
        .arg("--catalog")
        .arg(dir.join("sim/catalog.toml"))
        .args(["--clusters", &k.to_string(), "--seed", "3", "--out"])
        .arg(dir.join(out));
    for c in extra {
        cmd.arg("--candidate").arg(c);
    }
    let run = cmd.output().unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    serde_json::from_slice(&std::fs::read(dir.join(out).join("design.json")).unwrap()).unwrap()
}

fn mape(d: &serde_json::Value, source: &str) -> f64 {
    d["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["source"] == source)
        .unwrap_or_else(|| panic!("no {source} candidate in {d}"))["mape_vs_detailed"]
        .as_f64()
        .unwrap()
}

#[test]
fn the_proposal_loses_less_than_a_random_grouping_and_writes_a_valid_catalog() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let model = world(dir, 11);
    assert_eq!(model.catalog.insatser.len(), 24);
    let d = design(dir, &model, 10, "design", &[]);
    let proposed = mape(&d, "proposed");
    let random = d["random_median_mape_vs_detailed"].as_f64().unwrap();
    assert_eq!(
        d["candidates"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["source"] == "random")
            .count(),
        5
    );
    assert!(proposed > 0.0, "{d}");
    assert!(
        proposed < 0.75 * random,
        "proposed {proposed} against random {random}"
    );
    let first = &d["candidates"][0];
    assert_eq!(first["codes"], 10, "{d}");
    assert!(d["recipients_heldout"].as_u64().unwrap() > 50, "{d}");
    for b in first["broad_codes"].as_array().unwrap() {
        let shares: f64 = b["shares"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_f64().unwrap())
            .sum();
        assert!((shares - 1.0).abs() < 1e-9, "{b}");
        assert!(
            b["minutes_p10"].as_f64() <= b["minutes_p90"].as_f64(),
            "{b}"
        );
    }
    // The catalog written is a valid catalog with the proposal's clusters and schablons.
    let written = Catalog::load(&dir.join("design/catalog.toml")).unwrap();
    assert_eq!(written.insatser, model.catalog.insatser);
    assert_eq!(
        written.insatser.len()
            - written
                .clusters
                .iter()
                .map(|c| c.members.len())
                .sum::<usize>()
            + written.clusters.len(),
        10
    );
    assert!(written.clusters.iter().all(|c| c.schablon_min.is_some()));
    let html = std::fs::read_to_string(dir.join("design/report.html")).unwrap();
    assert!(html.contains("<svg") && html.contains("random #1 (10 codes)"));
    // A given candidate is scored beside them: the written catalog scores as the proposal.
    let again = design(
        dir,
        &model,
        10,
        "again",
        &[&dir.join("design/catalog.toml")],
    );
    let given = mape(
        &again,
        &dir.join("design/catalog.toml").display().to_string(),
    );
    assert!((given - proposed).abs() < 1e-9, "{given} vs {proposed}");
}

#[test]
fn too_few_clusters_for_the_categories_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let model = world(dir, 12);
    let run = Command::new(env!("CARGO_BIN_EXE_ramtid"))
        .args(["catalog", "design", "--model"])
        .arg(&model.dir)
        .arg("--visits")
        .arg(dir.join("sim/visits.csv"))
        .arg("--catalog")
        .arg(dir.join("sim/catalog.toml"))
        .args(["--clusters", "1", "--out"])
        .arg(dir.join("out"))
        .output()
        .unwrap();
    assert!(!run.status.success());
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(err.contains("categories"), "{err}");
}
