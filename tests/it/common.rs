//! What the server tests share: a small simulated municipality, a model trained on it, and
//! copying a fixture into a test's own folder.
#![allow(dead_code)] // each test crate uses its own part

use ramtid_core::model::Model;
use ramtid_core::params::{FitParams, ParamGuard};
use ramtid_core::train::{train, TrainRequest};
use ramtid_sim::{simulate, Municipality, SimConfig};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// A small nordstad: enough visits to train on in well under a second.
pub fn simulate_small(data: &Path, seed: u64) {
    simulate(
        &SimConfig {
            municipality: Municipality::Nordstad,
            seed,
            recipients: 150,
            weeks: 3,
            holdout_recipients: 30,
        },
        data,
    )
    .unwrap();
}

/// Trains the next version of `nordstad` under `models` from simulated `data`.
pub fn train_small(data: &Path, models: &Path) -> Model {
    let (model, _) = train(
        &TrainRequest {
            catalog: data.join("catalog.toml"),
            visits: data.join("visits.csv"),
            data_dir: None,
            limits: Default::default(),
            models_dir: models.to_path_buf(),
            name: "nordstad".into(),
            rejects: None,
            params: FitParams::new().folds(3).check().unwrap(),
        },
        &ramtid_core::progress::NoProgress,
    )
    .unwrap();
    model
}

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.path().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

/// One simulated municipality and one trained model, made once per test binary; tests copy
/// it into folders of their own.
pub struct Fixture {
    /// Simulated data: catalog.toml, visits.csv, needs.jsonl, truth.csv.
    pub data: PathBuf,
    /// A models root holding nordstad/1.
    pub models: PathBuf,
}

pub fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let root = tempfile::tempdir().unwrap().keep();
        let data = root.join("data");
        let models = root.join("models");
        simulate_small(&data, 7);
        train_small(&data, &models);
        Fixture { data, models }
    })
}

/// A test's own folders: a copy of the fixture's models root (nordstad/1) and data.
pub struct World {
    pub _dir: tempfile::TempDir,
    pub root: PathBuf,
    pub models: PathBuf,
    pub data: PathBuf,
}

pub fn world() -> World {
    let f = fixture();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let (models, data) = (root.join("models"), root.join("data"));
    copy_dir(&f.models, &models);
    copy_dir(&f.data, &data);
    World {
        _dir: dir,
        root,
        models,
        data,
    }
}

/// A server configuration on the world's folders: ephemeral port, no `/metrics`, a short
/// grace, and the ramtid binary as training worker (the test binary is none).
pub fn server_config(w: &World) -> ramtid_server::config::Config {
    let mut cfg = ramtid_server::config::Config::default();
    cfg.server.listen = "127.0.0.1:0".into();
    cfg.server.metrics_listen = String::new();
    cfg.server.shutdown_grace_s = 5;
    cfg.models.dir = w.models.clone();
    cfg.data.dir = w.data.clone();
    cfg.training.worker = PathBuf::from(env!("CARGO_BIN_EXE_ramtid"));
    cfg
}
