//! `ramtid validate` end to end on small random worlds: the files a run writes, their shape,
//! and that every figure is a finite number. The quality targets are not asserted here
//! (they are measured at the default size and reported in the README).

use std::process::Command;

#[test]
fn validate_runs_small_random_worlds_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("val");
    let status = Command::new(env!("CARGO_BIN_EXE_ramtid"))
        .args(["validate", "--worlds", "2", "--seed", "11"])
        .args(["--recipients", "150", "--weeks", "4", "--holdout", "40"])
        .arg("--out")
        .arg(&out)
        .env("RAMTID_LOG", "error")
        .output()
        .unwrap();
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let stdout = String::from_utf8_lossy(&status.stdout);
    assert!(
        stdout.contains("ratio") && stdout.contains("2 worlds"),
        "{stdout}"
    );

    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("validation.json")).unwrap())
            .unwrap();
    assert_eq!(v["format"], "ramtid-validation/1");
    assert_eq!(v["seeds"], serde_json::json!([11, 12]));
    let worlds = v["worlds"].as_array().unwrap();
    assert_eq!(worlds.len(), 2);
    for w in worlds {
        for key in [
            "mape",
            "best_mape",
            "ratio",
            "bias",
            "best_bias",
            "substitute_term",
            "floor_ratio",
            "floor_bias",
            "week_coverage",
            "visit_coverage",
            "schablon_mape",
            "schablon_ratio",
            "schablon_bias",
        ] {
            let x = w[key].as_f64().unwrap_or(f64::NAN);
            assert!(x.is_finite(), "world {}: {key} = {}", w["seed"], w[key]);
        }
        assert!(w["best_mape"].as_f64().unwrap() > 0.0);
        // Substitutes: a share of 2–15 % of visits, 10–50 % slower (the worlds' priors).
        let sub = w["substitute_term"].as_f64().unwrap();
        assert!((0.002..=0.075).contains(&sub), "substitute term {sub}");
        assert!((0.0..=1.0).contains(&w["week_coverage"].as_f64().unwrap()));
        assert!(w["recipients_evaluated"].as_u64().unwrap() == 40);
        let seed = w["seed"].as_u64().unwrap();
        let world_dir = out.join(format!("world-{seed}"));
        assert!(world_dir.join("evaluation/evaluation.json").is_file());
        assert!(world_dir.join("data/truth.csv").is_file());
        // The best achievable's bias is that of the world's own recipients: Σ best ÷ Σ true.
        let rows = std::fs::read_to_string(world_dir.join("evaluation/recipients.csv")).unwrap();
        let mut lines = rows.lines();
        let header: Vec<&str> = lines.next().unwrap().split(',').collect();
        let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
        let (true_at, best_at) = (col("true_weekly_min"), col("best_weekly_min"));
        let (mut truth, mut best) = (0.0, 0.0);
        for line in lines {
            let cells: Vec<&str> = line.split(',').collect();
            truth += cells[true_at].parse::<f64>().unwrap();
            best += cells[best_at].parse::<f64>().unwrap();
        }
        let best_bias = w["best_bias"].as_f64().unwrap();
        assert!(
            (best_bias - (best / truth - 1.0)).abs() < 1e-3,
            "world {seed}: best_bias {best_bias} against {}",
            best / truth - 1.0
        );
        // The floor is the best achievable scaled by the substitutes' term: its bias is
        // (1 + best_bias)(1 + substitute_term) − 1 exactly (the same weeks, one factor).
        let floor_bias = w["floor_bias"].as_f64().unwrap();
        let expected = best / truth * (1.0 + sub) - 1.0;
        assert!(
            (floor_bias - expected).abs() < 1e-3,
            "world {seed}: floor_bias {floor_bias} against {expected}"
        );
        // The log is removed after training unless --keep-logs.
        assert!(!world_dir.join("data/visits.csv").exists());
    }
    let s = &v["summary"];
    assert_eq!(s["worlds"], 2);
    for key in [
        "median_ratio",
        "worst_ratio",
        "median_abs_bias_pct",
        "worst_abs_bias_pct",
        "week_coverage",
        "visit_coverage",
    ] {
        assert!(s[key].as_f64().is_some_and(f64::is_finite), "summary.{key}");
    }
    for (predictor, key) in ["schablon", "floor"].iter().flat_map(|p| {
        [
            "median_ratio",
            "worst_ratio",
            "median_abs_bias_pct",
            "worst_abs_bias_pct",
        ]
        .map(|k| (p, k))
    }) {
        assert!(
            s[predictor][key].as_f64().is_some_and(f64::is_finite),
            "summary.{predictor}.{key}"
        );
    }
    assert!(stdout.contains("floor:"), "{stdout}");
    assert!(s["worst_ratio"].as_f64() >= s["median_ratio"].as_f64());
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("<svg") && html.contains("world-11/evaluation/report.html"));
}

#[test]
fn a_random_world_is_deterministic_and_in_the_named_worlds_layout() {
    let dir = tempfile::tempdir().unwrap();
    let run = |name: &str| {
        let out = dir.path().join(name);
        let o = Command::new(env!("CARGO_BIN_EXE_ramtid"))
            .args(["simulate", "--world", "random", "--seed", "5"])
            .args(["--recipients", "60", "--weeks", "3", "--holdout", "20"])
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        out
    };
    let (a, b) = (run("a"), run("b"));
    for f in [
        "catalog.toml",
        "visits.csv",
        "needs.jsonl",
        "truth.csv",
        "heldout_visits.csv",
        "simulation.json",
    ] {
        let (x, y) = (
            std::fs::read(a.join(f)).unwrap(),
            std::fs::read(b.join(f)).unwrap(),
        );
        assert!(!x.is_empty() && x == y, "{f} differs between two runs");
    }
    let catalog = ramtid_core::catalog::Catalog::load(&a.join("catalog.toml")).unwrap();
    let truth = std::fs::read_to_string(a.join("truth.csv")).unwrap();
    assert!(truth.starts_with("recipient_id,true_weekly_min,best_weekly_min,"));
    assert_eq!(truth.lines().count(), 21);
    for line in std::fs::read_to_string(a.join("needs.jsonl"))
        .unwrap()
        .lines()
    {
        let set: ramtid_core::needs::NeedsSet = serde_json::from_str(line).unwrap();
        set.validate(&catalog).unwrap();
    }
    // A named world still answers to --world.
    let o = Command::new(env!("CARGO_BIN_EXE_ramtid"))
        .args([
            "simulate",
            "--world",
            "sjobygd",
            "--recipients",
            "20",
            "--weeks",
            "1",
        ])
        .args(["--holdout", "5", "--out"])
        .arg(dir.path().join("named"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let named = std::fs::read_to_string(dir.path().join("named/catalog.toml")).unwrap();
    assert!(named.contains("FIREWOOD"));
}
