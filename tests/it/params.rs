//! Training settings are checked once (`ramtid_core::params`): the command line, the
//! service's `TrainModel` and its `[training]` configuration refuse the same bad value with
//! the same text, naming the setting, before any visit log is opened.

use ramtid::train::{fit_params, TrainFlags};
use ramtid_core::params::{FitParams, Method, ParamGuard};
use ramtid_core::progress::{Progress, Stage};
use ramtid_core::train::{train, TrainRequest};
use ramtid_proto::convert::train_params;
use ramtid_proto::pb;
use ramtid_server::config::{Config, Sources};

fn ramtid() -> std::process::Command {
    std::process::Command::new(env!("CARGO_BIN_EXE_ramtid"))
}

/// One bad value as each path spells it.
struct Case {
    /// The core's own error text: `param: message`.
    expected: &'static str,
    flags: TrainFlags,
    args: &'static [&'static str],
    toml: &'static str,
    settings: pb::TrainSettings,
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            expected: "reference_quantile: 1.5 is outside 0 < q <= 1",
            flags: TrainFlags {
                reference_quantile: Some(1.5),
                ..Default::default()
            },
            args: &["--reference-quantile", "1.5"],
            toml: "reference_quantile = 1.5",
            settings: pb::TrainSettings {
                reference_quantile: Some(1.5),
                ..Default::default()
            },
        },
        Case {
            expected: "folds: 1 folds; expected 2 to 20",
            flags: TrainFlags {
                folds: Some(1),
                ..Default::default()
            },
            args: &["--folds", "1"],
            toml: "folds = 1",
            settings: pb::TrainSettings {
                folds: Some(1),
                ..Default::default()
            },
        },
        Case {
            expected: "lambdas: -1 is not a penalty > 0",
            flags: TrainFlags {
                lambdas: Some(vec![3.0, -1.0]),
                ..Default::default()
            },
            args: &["--lambdas", "3,-1"],
            toml: "lambdas = [3.0, -1.0]",
            settings: pb::TrainSettings {
                lambdas: vec![3.0, -1.0],
                ..Default::default()
            },
        },
        Case {
            expected: "max_visit_min: 1 is outside min_visit_min (2) < max <= 1440",
            flags: TrainFlags {
                max_visit_min: Some(1.0),
                ..Default::default()
            },
            args: &["--max-visit-min", "1"],
            toml: "max_visit_min = 1.0",
            settings: pb::TrainSettings {
                max_visit_min: Some(1.0),
                ..Default::default()
            },
        },
        Case {
            expected: "implausible_gap: 0 is outside 0 < gap <= 1",
            flags: TrainFlags {
                implausible_gap: Some(0.0),
                ..Default::default()
            },
            args: &["--implausible-gap", "0"],
            toml: "implausible_gap = 0.0",
            settings: pb::TrainSettings {
                implausible_gap: Some(0.0),
                ..Default::default()
            },
        },
        Case {
            expected: "tolerance: -0.2 is not a share >= 0",
            flags: TrainFlags {
                tolerance: Some(-0.2),
                ..Default::default()
            },
            args: &["--tolerance=-0.2"],
            toml: "tolerance = -0.2",
            settings: pb::TrainSettings {
                tolerance: Some(-0.2),
                ..Default::default()
            },
        },
    ]
}

fn config_error(toml: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ramtid.toml");
    std::fs::write(&path, format!("[training]\n{toml}\n")).unwrap();
    Config::load(&Sources {
        file: Some(path),
        overrides: Vec::new(),
        environment: false,
    })
    .expect_err(toml)
    .to_string()
}

#[test]
fn the_cli_train_model_and_the_configuration_refuse_a_bad_value_with_the_same_text() {
    for c in cases() {
        let cli = fit_params(&c.flags).unwrap_err().to_string();
        assert_eq!(cli, c.expected);
        let config = config_error(c.toml);
        assert_eq!(config, format!("configuration key training.{}", c.expected));
        let v = train_params(FitParams::default(), 0, Some(&c.settings)).unwrap_err();
        assert_eq!(v.to_string(), format!("settings.{}", c.expected));
    }
}

#[test]
fn ramtid_train_refuses_a_bad_setting_before_opening_the_catalog_or_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nothing-here");
    for c in cases() {
        let out = ramtid()
            .arg("train")
            .arg("--catalog")
            .arg(missing.join("catalog.toml"))
            .arg("--visits")
            .arg(missing.join("visits.csv"))
            .arg("--out")
            .arg(dir.path().join("models"))
            .args(c.args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{:?}", c.args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.trim_end(), format!("error: {}", c.expected));
    }
    assert!(!dir.path().join("models").exists());
}

#[test]
fn train_model_settings_fall_back_to_the_configuration() {
    let base = FitParams::new().folds(4).seed(9).min_visit_min(1.0);
    let p = train_params(
        base.clone(),
        0,
        Some(&pb::TrainSettings {
            seed: Some(12),
            efficiency: Some("pooled".into()),
            interval: vec![0.2, 0.8],
            ..Default::default()
        }),
    )
    .unwrap();
    assert_eq!(p.settings().folds, 4);
    assert_eq!(p.settings().seed, 12);
    assert_eq!(p.settings().interval, [0.2, 0.8]);
    assert_eq!(p.cleaning().min_duration_min, 1.0);
    assert_eq!(
        p.settings().efficiency,
        ramtid_core::fit::Efficiency::Pooled
    );
    // Nothing set: the configuration's settings, checked.
    assert_eq!(
        train_params(base.clone(), 0, None).unwrap(),
        base.clone().check().unwrap()
    );
    // The older top-level folds: its own field name, and settings.folds wins over it.
    assert_eq!(
        train_params(base.clone(), 1, None).unwrap_err().field,
        "folds"
    );
    let both = pb::TrainSettings {
        folds: Some(6),
        ..Default::default()
    };
    assert_eq!(
        train_params(base.clone(), 1, Some(&both))
            .unwrap()
            .settings()
            .folds,
        6
    );
    for (settings, field) in [
        (
            pb::TrainSettings {
                efficiency: Some("fastest".into()),
                ..Default::default()
            },
            "settings.efficiency",
        ),
        (
            pb::TrainSettings {
                interval: vec![0.1, 0.5, 0.9],
                ..Default::default()
            },
            "settings.interval",
        ),
    ] {
        assert_eq!(
            train_params(base.clone(), 0, Some(&settings))
                .unwrap_err()
                .field,
            field
        );
    }
    // Back to the team reference after a pooled configuration: the defaults' values.
    let p = train_params(
        FitParams::new().pooled(),
        0,
        Some(&pb::TrainSettings {
            efficiency: Some("team_reference".into()),
            tolerance: Some(0.2),
            ..Default::default()
        }),
    )
    .unwrap();
    assert_eq!(
        p.settings().efficiency,
        ramtid_core::fit::Efficiency::TeamReference {
            quantile: 0.5,
            tolerance: 0.2
        }
    );
    assert_eq!(
        fit_params(&TrainFlags {
            efficiency: Some(Method::TeamReference),
            ..Default::default()
        })
        .unwrap(),
        FitParams::default()
            .reference_quantile(0.5)
            .check()
            .unwrap()
    );
    // The frontier by name, with its own setting, from a team-reference configuration.
    let p = train_params(
        FitParams::new().reference_quantile(0.3),
        0,
        Some(&pb::TrainSettings {
            efficiency: Some("frontier".into()),
            implausible_gap: Some(0.1),
            weekend_apart: Some(false),
            ..Default::default()
        }),
    )
    .unwrap();
    assert_eq!(
        p.settings().efficiency,
        ramtid_core::fit::Efficiency::Frontier {
            tolerance: 0.1,
            implausible_gap: 0.1
        }
    );
    assert!(!p.settings().weekend_apart);
}

/// Records what a training run reports.
#[derive(Default)]
struct Recorder {
    events: std::sync::Mutex<Vec<(Stage, Option<u64>, u64)>>,
}

impl Progress for Recorder {
    fn stage(&self, stage: Stage, total: Option<u64>) {
        self.events.lock().unwrap().push((stage, total, 0));
    }
    fn advance(&self, done: u64) {
        self.events.lock().unwrap().last_mut().expect("a stage").2 += done;
    }
}

#[test]
fn training_reports_its_stages_and_all_the_work_of_each() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    crate::common::simulate_small(&data, 5);
    let recorder = Recorder::default();
    let (_, summary) = train(
        &TrainRequest {
            catalog: data.join("catalog.toml"),
            visits: data.join("visits.csv"),
            data_dir: None,
            limits: Default::default(),
            models_dir: dir.path().join("models"),
            name: "progress".into(),
            rejects: None,
            params: FitParams::new().folds(3).threads(2).check().unwrap(),
        },
        &recorder,
    )
    .unwrap();
    let bytes = std::fs::metadata(data.join("visits.csv")).unwrap().len();
    let visits = summary.read.rows_used;
    assert_eq!(
        recorder.events.into_inner().unwrap(),
        vec![
            (Stage::Reading, Some(bytes), bytes),
            (Stage::Fitting, Some(visits), visits),
            (Stage::Writing, None, 0),
        ]
    );
}
