//! Prediction speed: one visit (`predict_visit`) and one recipient's week (`estimate`:
//! plan, predict every visit, explain the context).
//!
//! Uses the model shipped in `models/`; when there is none, trains one on a small
//! simulated municipality in a temporary folder first. `cargo bench` takes about a minute.

use criterion::{criterion_group, criterion_main, Criterion};
use ramtid_core::catalog::{Catalog, Category, ContextKind};
use ramtid_core::estimate::{estimate, predict_visit, Scratch};
use ramtid_core::model::{resolve, Model};
use ramtid_core::needs::{Need, NeedsSet, ValidNeeds};
use ramtid_core::params::{FitParams, ParamGuard};
use ramtid_core::progress::NoProgress;
use ramtid_core::slot::Slot;
use ramtid_core::train::{train, TrainRequest};
use ramtid_sim::{simulate, Municipality, SimConfig};
use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

/// The shipped model, or one trained now on 300 simulated recipients.
fn load_model() -> Model {
    if let Ok(dir) = resolve(Path::new("models")) {
        match Model::load(&dir) {
            Ok(m) => {
                eprintln!("benchmarking model {}", dir.display());
                return m;
            }
            Err(e) => eprintln!("cannot use {}: {e}; training a small model", dir.display()),
        }
    } else {
        eprintln!("no model in models/; training a small one on a simulated municipality");
    }
    let tmp = tempfile::tempdir().expect("temporary folder");
    let sim = tmp.path().join("sim");
    simulate(
        &SimConfig {
            municipality: Municipality::Nordstad,
            seed: 1,
            recipients: 300,
            weeks: 4,
            holdout_recipients: 10,
        },
        &sim,
    )
    .expect("simulate");
    let (model, _) = train(
        &TrainRequest {
            catalog: sim.join("catalog.toml"),
            visits: sim.join("visits.csv"),
            data_dir: None,
            limits: Default::default(),
            models_dir: tmp.path().join("models"),
            name: "bench".into(),
            rejects: None,
            params: FitParams::default().check().unwrap(),
        },
        &NoProgress,
    )
    .expect("train");
    // The model is fully in memory; the folder may go.
    model
}

/// A typical recipient for any catalog: morning and evening care, a shower, cleaning and
/// shopping, a supervision call; mid-range context.
fn typical_needs(catalog: &Catalog) -> ValidNeeds {
    let pick = |cat: Category, n: usize| {
        catalog
            .insatser
            .iter()
            .filter(move |i| i.category == cat)
            .take(n)
            .map(|i| i.code.clone())
    };
    let mut needs: Vec<Need> = Vec::new();
    for (code, per_week) in pick(Category::PersonalCare, 3).zip([7.0, 7.0, 1.0]) {
        needs.push(Need {
            code,
            per_week,
            slot: None,
            staff: None,
            ..Default::default()
        });
    }
    for (code, per_week) in pick(Category::Service, 2).zip([0.5, 1.0]) {
        needs.push(Need {
            code,
            per_week,
            slot: None,
            staff: None,
            ..Default::default()
        });
    }
    for code in pick(Category::Supervision, 1) {
        needs.push(Need {
            code,
            per_week: 7.0,
            slot: None,
            staff: None,
            ..Default::default()
        });
    }
    if needs.is_empty() {
        needs.push(Need {
            code: catalog.insatser[0].code.clone(),
            per_week: 7.0,
            slot: None,
            staff: None,
            ..Default::default()
        });
    }
    let context = catalog
        .contexts
        .iter()
        .map(|c| {
            let v = match c.kind {
                ContextKind::Numeric => {
                    let x = match (c.min, c.max) {
                        (Some(lo), Some(hi)) => ((lo + hi) / 2.0).round(),
                        (Some(lo), None) => lo,
                        (None, Some(hi)) => hi,
                        (None, None) => 0.0,
                    };
                    serde_json::json!(x)
                }
                ContextKind::Ordinal => serde_json::json!(c.ordinal_levels[1]),
                ContextKind::Boolean => serde_json::json!(true),
                ContextKind::Categorical => serde_json::json!(c.labels[0]),
            };
            (c.name.clone(), v)
        })
        .collect();
    NeedsSet {
        recipient_id: "BENCH-1".into(),
        context,
        needs,
    }
    .validate(catalog)
    .expect("the typical needs validate")
}

fn benches(c: &mut Criterion) {
    let model = load_model();
    let needs = typical_needs(&model.catalog);
    // A visit of the first two needs together (morning care with a shower, typically).
    let mut tasks: Vec<u16> = needs
        .needs
        .iter()
        .take(2)
        .map(|n| n.insats as u16)
        .collect();
    tasks.sort_unstable();
    tasks.dedup();
    let mut scratch = Scratch::default();
    c.bench_function("predict_visit", |b| {
        b.iter(|| {
            predict_visit(
                black_box(&model.visit),
                black_box(&tasks),
                Slot::Morning,
                1,
                black_box(&needs.context),
                &mut scratch,
            )
        })
    });
    let e = estimate(&model, &needs);
    eprintln!(
        "week of {} visits ({} needs): {:.0} min",
        e.visits_per_week,
        needs.needs.len(),
        e.weekly_min
    );
    c.bench_function("estimate_week", |b| {
        b.iter(|| estimate(black_box(&model), black_box(&needs)))
    });
}

criterion_group! {
    name = predict;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = benches
}
criterion_main!(predict);
