//! Training limits (checked before the log is read, with the numbers), codes no visit uses
//! costing nothing, a failed write leaving no version, and the data directory's files
//! opened without following links while they are being swapped.

use crate::common;
use common::{fixture, simulate_small};
use ramtid_core::datadir::{DataDir, Strategy};
use ramtid_core::model::Model;
use ramtid_core::params::{FitParams, ParamGuard};
use ramtid_core::progress::{NoProgress, Progress, Stage};
use ramtid_core::train::{train, TrainError, TrainLimits, TrainRequest};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

fn request(data: &Path, catalog: &str, models: &Path, limits: TrainLimits) -> TrainRequest {
    TrainRequest {
        catalog: catalog.into(),
        visits: "visits.csv".into(),
        data_dir: Some(data.to_path_buf()),
        limits,
        models_dir: models.to_path_buf(),
        name: "limits".into(),
        rejects: None,
        params: FitParams::new().folds(3).check().unwrap(),
    }
}

/// The stages a training began, by name.
#[derive(Default)]
struct Stages(std::sync::Mutex<Vec<String>>);

impl Progress for Stages {
    fn stage(&self, stage: Stage, _: Option<u64>) {
        self.0.lock().unwrap().push(format!("{stage:?}"));
    }
    fn advance(&self, _: u64) {}
}

fn extra_codes(n: usize) -> String {
    let mut s = String::new();
    for i in 0..n {
        s.push_str(&format!(
            "\n[[insats]]\ncode = \"UNUSED{i}\"\ncategory = \"service\"\nschablon_min = 15\n"
        ));
    }
    s
}

/// The catalog with `n` more codes, placed before the context tables (TOML arrays of
/// tables may be split, so appending is valid too).
fn with_unused(data: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(data.join("catalog.toml")).unwrap();
    text + &extra_codes(n)
}

#[test]
fn codes_no_visit_uses_cost_nothing() {
    let f = fixture();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    common::copy_dir(&f.data, &data);
    std::fs::write(data.join("wide.toml"), with_unused(&data, 1_500)).unwrap();
    // 64 MiB for the statistics: plenty for the codes the log uses, far too little for a
    // Gram matrix over 1 500 more codes and their context interactions.
    let limits = TrainLimits {
        max_memory_mb: 64,
        ..Default::default()
    };
    let models = dir.path().join("models");
    let (plain, _) = train(
        &request(&data, "catalog.toml", &models, limits),
        &NoProgress,
    )
    .unwrap();
    let (wide, s) = train(&request(&data, "wide.toml", &models, limits), &NoProgress).unwrap();
    assert_eq!(
        plain.manifest.fit.fitted_features,
        wide.manifest.fit.fitted_features
    );
    assert_eq!(
        wide.manifest.fit.features,
        wide.visit.space.len(),
        "every code keeps its coefficients"
    );
    assert!(s.fit.features > plain.visit.space.len() + 1_500);
    // The same coefficients for every feature the two share, and the unused codes at
    // their prior (the schablon at the log's level), never zero.
    let names = |m: &Model| m.visit.space.names(&m.catalog);
    let wide_coef: std::collections::HashMap<String, f64> = names(&wide)
        .into_iter()
        .zip(wide.visit.coef.clone())
        .collect();
    for (name, c) in names(&plain).into_iter().zip(&plain.visit.coef) {
        let w = wide_coef[&name];
        assert!(
            (w - c).abs() <= 1e-9 * c.abs().max(1.0),
            "{name}: {w} vs {c}"
        );
    }
    let unused = wide_coef["task:UNUSED7"];
    assert!(unused > 0.0 && unused.is_finite(), "{unused}");
    assert_eq!(wide_coef["task:UNUSED7"], wide_coef["task:UNUSED1400"]);
}

#[test]
fn limits_are_checked_before_the_log_is_read_and_name_the_numbers() {
    let f = fixture();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    common::copy_dir(&f.data, &data);
    std::fs::write(data.join("wide.toml"), with_unused(&data, 2_100)).unwrap();
    // A log that cannot be read at all: any check that waited for it would fail differently.
    std::fs::write(data.join("visits.csv"), "not,a,visit,log\n").unwrap();
    let models = dir.path().join("models");
    let err = |catalog: &str, limits: TrainLimits| {
        let stages = Stages::default();
        let e = train(&request(&data, catalog, &models, limits), &stages).unwrap_err();
        assert!(stages.0.lock().unwrap().is_empty(), "no stage began: {e}");
        match e {
            TrainError::Limit { field, message } => (field, message),
            other => panic!("{other}"),
        }
    };
    let codes = ramtid_core::catalog::Catalog::load(&data.join("wide.toml"))
        .unwrap()
        .insatser
        .len();
    let (field, message) = err("wide.toml", TrainLimits::default());
    assert_eq!(field, "catalog_path");
    assert_eq!(
        message,
        format!(
            "catalog has {} codes; the limit is 2 000 (training.max_codes)",
            ramtid_core::train::grouped(codes as u64)
        )
    );
    let catalog = ramtid_core::catalog::Catalog::load(&data.join("catalog.toml")).unwrap();
    let k = ramtid_core::train::context_columns(&catalog);
    assert!(k >= 2, "the fixture has context");
    let (_, message) = err(
        "catalog.toml",
        TrainLimits {
            max_context_columns: k - 1,
            ..Default::default()
        },
    );
    assert_eq!(
        message,
        format!(
            "catalog's context variables make {k} context columns; the limit is {} (training.max_context_columns)",
            k - 1
        )
    );
    let (_, message) = err(
        "catalog.toml",
        TrainLimits {
            max_features: 20,
            ..Default::default()
        },
    );
    assert!(
        message.ends_with("features; the limit is 20 (training.max_features)"),
        "{message}"
    );
    // A header far wider than any visit log.
    let mut header: Vec<String> = (0..400).map(|i| format!("col{i}")).collect();
    header.push("visit_id".into());
    std::fs::write(data.join("visits.csv"), header.join(",") + "\n").unwrap();
    let (field, message) = err("catalog.toml", TrainLimits::default());
    assert_eq!(field, "visits_path");
    assert!(message.contains("header has 401 columns"), "{message}");
}

#[test]
fn the_memory_needed_for_the_fit_is_checked_before_it_starts() {
    let f = fixture();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    common::copy_dir(&f.data, &data);
    let models = dir.path().join("models");
    let stages = Stages::default();
    let e = train(
        &request(
            &data,
            "catalog.toml",
            &models,
            TrainLimits {
                max_memory_mb: 0,
                ..Default::default()
            },
        ),
        &stages,
    )
    .unwrap_err();
    assert_eq!(
        *stages.0.lock().unwrap(),
        vec!["Reading"],
        "the fit did not start"
    );
    assert!(
        e.to_string()
            .contains("MiB; the limit is 0 (training.max_memory_mb)"),
        "{e}"
    );
}

#[test]
fn the_command_line_refuses_a_catalog_over_the_limits_with_the_numbers() {
    let f = fixture();
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::new();
    for i in 0..100_200 {
        text.push_str(&format!(
            "[[insats]]\ncode = \"C{i}\"\ncategory = \"service\"\nschablon_min = 10\n"
        ));
    }
    let catalog = dir.path().join("huge.toml");
    std::fs::write(&catalog, text).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_ramtid"))
        .args(["train", "--catalog"])
        .arg(&catalog)
        .arg("--visits")
        .arg(f.data.join("visits.csv"))
        .arg("--out")
        .arg(dir.path().join("models"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("catalog has 100 200 codes; the limit is 2 000 (training.max_codes)"),
        "{stderr}"
    );
    assert!(!dir.path().join("models").exists());
}

#[test]
fn a_catalog_over_the_limits_is_refused_in_under_a_second() {
    // Its [[insats]] tables are counted before the parse: parsing and checking 100 200 codes
    // takes seconds, the count milliseconds. Timed in process (no process start-up).
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::new();
    for i in 0..100_200 {
        text.push_str(&format!(
            "[[insats]]\ncode = \"C{i}\"\ncategory = \"service\"\nschablon_min = 10\n"
        ));
    }
    std::fs::write(dir.path().join("huge.toml"), text).unwrap();
    std::fs::write(dir.path().join("visits.csv"), "visit_id\n").unwrap();
    let models = dir.path().join("models");
    let t0 = std::time::Instant::now();
    let e = train(
        &request(dir.path(), "huge.toml", &models, TrainLimits::default()),
        &NoProgress,
    )
    .unwrap_err();
    let seconds = t0.elapsed().as_secs_f64();
    match e {
        TrainError::Limit { field, message } => {
            assert_eq!(field, "catalog_path");
            assert_eq!(
                message,
                "catalog has 100 200 codes; the limit is 2 000 (training.max_codes)"
            );
        }
        other => panic!("{other}"),
    }
    assert!(seconds < 1.0, "refused after {seconds:.2} s");
}

#[test]
fn a_version_that_does_not_load_is_never_published() {
    let f = fixture();
    let dir = tempfile::tempdir().unwrap();
    let models = dir.path().join("models");
    common::copy_dir(&f.models, &models);
    let m = Model::load(&models.join("nordstad/1")).unwrap();
    let mut report = m.manifest.fit.clone();
    // Not a number: written as null, which no reader accepts.
    report.lambda = f64::NAN;
    let read = ramtid_core::visits::ReadReport {
        data_fingerprint: m.manifest.data_fingerprint.clone(),
        ..Default::default()
    };
    let e = Model::save_new_version(
        &models,
        "nordstad",
        &m.catalog,
        &m.visit,
        &m.planner,
        &m.clusters,
        &m.manifest.method,
        &m.manifest.cleaning,
        &read,
        &report,
    )
    .unwrap_err();
    assert!(e.to_string().contains("manifest.json"), "{e}");
    let left: Vec<String> = std::fs::read_dir(models.join("nordstad"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left, vec!["1".to_string()]);
}

/// Flips `name` in `dir` between a regular file and a link to `outside` until stopped: the
/// two are swapped in one call (`renameat2(RENAME_EXCHANGE)`), so both last as long and a
/// flip is as quick as an open; a check and an open done apart meet both.
fn flipper(
    dir: PathBuf,
    name: &str,
    inside: &'static str,
    outside: PathBuf,
) -> (
    std::sync::Arc<std::sync::atomic::AtomicBool>,
    std::thread::JoinHandle<u64>,
) {
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let s = stop.clone();
    let (target, other) = exchanged(&dir, name, inside.as_bytes(), &outside);
    let h = std::thread::spawn(move || {
        let mut flips = 0;
        while !s.load(std::sync::atomic::Ordering::Relaxed) {
            exchange(&target, &other);
            flips += 1;
        }
        flips
    });
    (stop, h)
}

/// `dir/name` as a regular file holding `inside` and `dir/name.other` as a link to
/// `outside`: there from the start, so only the kind of file changes, never whether it
/// exists.
pub fn exchanged(dir: &Path, name: &str, inside: &[u8], outside: &Path) -> (PathBuf, PathBuf) {
    let target = dir.join(name);
    let other = dir.join(format!("{name}.other"));
    std::fs::write(&target, inside).unwrap();
    let _ = std::fs::remove_file(&other);
    std::os::unix::fs::symlink(outside, &other).unwrap();
    (target, other)
}

/// Swaps two names in one call.
pub fn exchange(a: &Path, b: &Path) {
    use rustix::fs::{renameat_with, RenameFlags, CWD};
    renameat_with(CWD, a, CWD, b, RenameFlags::EXCHANGE).unwrap();
}

#[test]
fn a_file_swapped_for_a_link_is_never_followed() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let secret = root.path().join("secret.txt");
    std::fs::write(&secret, "SECRET-MARKER root:x:0:0").unwrap();
    let (stop, h) = flipper(data.clone(), "race.toml", "inside", secret.clone());
    let dir = DataDir::open(&data).unwrap();
    let mut seen = [0u32; 2];
    // Many opens: a check and an open done apart leave a window of microseconds, which a
    // few hundred opens against the flipping thread rarely hit (20 000 take well under a
    // second when every open is one call).
    for strategy in [Strategy::Best, Strategy::PerComponent] {
        for _ in 0..20_000 {
            match dir.open_file_with("race.toml", strategy) {
                Ok(mut f) => {
                    let mut text = String::new();
                    f.read_to_string(&mut text).unwrap();
                    assert_eq!(text, "inside", "{strategy:?} read through the link");
                    seen[0] += 1;
                }
                Err(e) => {
                    let e = e.to_string();
                    assert!(!e.contains("SECRET-MARKER"), "{e}");
                    assert!(e.contains("symbolic link"), "{e}");
                    seen[1] += 1;
                }
            }
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let flips = h.join().unwrap();
    eprintln!(
        "40 000 opens over {flips} flips: {} files, {} links",
        seen[0], seen[1]
    );

    // The whole training path, in process: the catalog's errors never carry the marker.
    let (stop, h) = flipper(data.clone(), "cat.toml", "[[insats]]\n", secret);
    std::fs::write(data.join("visits.csv"), "visit_id\n").unwrap();
    let models = root.path().join("models");
    for _ in 0..400 {
        let e = train(
            &request(&data, "cat.toml", &models, TrainLimits::default()),
            &NoProgress,
        )
        .unwrap_err()
        .to_string();
        assert!(!e.contains("SECRET") && !e.contains("root:x"), "{e}");
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    h.join().unwrap();
}

#[test]
fn a_broken_catalog_is_reported_by_position_without_its_text() {
    let dir = tempfile::tempdir().unwrap();
    simulate_small(dir.path(), 3);
    let models = dir.path().join("models");
    for (text, want) in [
        (
            "[[insats]]\ncode = \"A\"\ncategory = \"SECRET\"\nschablon_min = 1\n",
            "line 3",
        ),
        (
            "[[insats]]\ncode = \"A\"\nschablon_min = \"SECRET\"\n",
            "line 3",
        ),
        ("root:x:0:0:SECRET:/root:/bin/bash\n", "line 1"),
        ("a = 1\nb = \"SECRET\n", "line 2"),
        ("a = 1\n[x]\nSECRET = 1\nSECRET = 2\n", "line 4"),
    ] {
        std::fs::write(dir.path().join("bad.toml"), text).unwrap();
        let e = train(
            &request(dir.path(), "bad.toml", &models, TrainLimits::default()),
            &NoProgress,
        )
        .unwrap_err()
        .to_string();
        assert!(!e.contains("SECRET") && !e.contains("root"), "{text}: {e}");
        assert!(e.contains(want) && e.contains("column"), "{text}: {e}");
    }
    let mut bytes = b"[[insats]]\ncode = \"A".to_vec();
    bytes.extend([0xff, 0xfe]);
    std::fs::write(dir.path().join("bad.toml"), bytes).unwrap();
    let e = train(
        &request(dir.path(), "bad.toml", &models, TrainLimits::default()),
        &NoProgress,
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("line 2, column 10") && e.contains("UTF-8"),
        "{e}"
    );
}
