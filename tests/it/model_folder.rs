//! A model folder is validated completely before anything indexes into it: a damaged or
//! hostile folder is refused with the file and what is wrong, and a folder that loads can
//! estimate any valid needs object without panicking, with finite figures.

use proptest::prelude::*;
use ramtid_core::catalog::ContextKind;
use ramtid_core::estimate::estimate;
use ramtid_core::model::{Model, ModelError};
use ramtid_core::needs::NeedsSet;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

const SHIPPED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/models/nordstad/1");

/// A copy of the shipped model (trained before context ranges were recorded).
fn copy_model(dir: &Path) -> PathBuf {
    let to = dir.join("m");
    std::fs::create_dir_all(&to).unwrap();
    for f in ["manifest.json", "params.json", "catalog.toml"] {
        std::fs::copy(Path::new(SHIPPED).join(f), to.join(f)).unwrap();
    }
    to
}

/// Rewrites params.json through `edit` and signs it in the manifest, as an attacker who can
/// write the folder would: the fingerprint is no protection, validation must be.
fn tamper(model: &Path, edit: impl FnOnce(&mut Value)) {
    let params = model.join("params.json");
    let mut v: Value = serde_json::from_slice(&std::fs::read(&params).unwrap()).unwrap();
    edit(&mut v);
    let bytes = serde_json::to_vec(&v).unwrap();
    std::fs::write(&params, &bytes).unwrap();
    let manifest = model.join("manifest.json");
    let mut m: Value = serde_json::from_slice(&std::fs::read(&manifest).unwrap()).unwrap();
    m["params_fingerprint"] = json!(format!(
        "fnv64:{:016x}",
        ramtid_core::fingerprint::fnv1a64(&bytes)
    ));
    std::fs::write(&manifest, serde_json::to_vec(&m).unwrap()).unwrap();
}

fn refused(model: &Path) -> String {
    match Model::load(model) {
        Ok(_) => panic!("the model was loaded"),
        Err(e) => e.to_string(),
    }
}

/// A needs object valid for the shipped catalog, with `age` as given.
fn needs(model: &Model, age: f64) -> NeedsSet {
    let mut context = serde_json::Map::new();
    for c in &model.catalog.contexts {
        let v = match c.kind {
            ContextKind::Numeric => json!(age),
            ContextKind::Ordinal => json!(c.ordinal_levels[1]),
            ContextKind::Boolean => json!(true),
            ContextKind::Categorical => json!(c.labels[1]),
        };
        context.insert(c.name.clone(), v);
    }
    let needs: Vec<Value> = model
        .catalog
        .insatser
        .iter()
        .take(6)
        .enumerate()
        .map(|(i, s)| {
            let per_week = [7.0, 1.0, 14.0, 0.5, 3.0, 56.0][i];
            json!({"code": s.code, "per_week": per_week})
        })
        .collect();
    serde_json::from_value(json!({"recipient_id": "H-1", "context": context, "needs": needs}))
        .unwrap()
}

#[test]
fn the_shipped_model_loads_and_its_numeric_context_falls_back_to_the_catalog_bounds() {
    let model = Model::load(Path::new(SHIPPED)).unwrap();
    let age = &model.catalog.contexts[model.catalog.context_index("age").unwrap()];
    assert_eq!((age.min, age.max), (Some(60.0), Some(110.0)));
    assert_eq!(age.trained, Some([60.0, 110.0]));
    let e = estimate(
        &model,
        &needs(&model, 84.0).validate(&model.catalog).unwrap(),
    );
    assert!(e.weekly_min.is_finite() && e.weekly_min > 0.0);
}

#[test]
fn a_pair_index_beyond_the_codes_is_refused_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let m = copy_model(dir.path());
    tamper(&m, |p| p["space"]["pairs"][0] = json!([0, 400]));
    let e = refused(&m);
    assert!(
        e.contains("params.json") && e.contains("space.pairs[0]"),
        "{e}"
    );
    tamper(&m, |p| p["space"]["pairs"][0] = json!([4, 4]));
    assert!(refused(&m).contains("space.pairs[0]"));
}

#[test]
fn intervals_in_the_wrong_order_or_not_finite_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let m = copy_model(dir.path());
    tamper(&m, |p| p["weekly_interval"] = json!([1.2, 0.8]));
    let e = refused(&m);
    assert!(e.contains("weekly_interval") && e.contains("P10"), "{e}");
    let m = copy_model(&dir.path().join("2"));
    tamper(&m, |p| p["visit_interval"] = json!([0.7, 1e300]));
    assert!(refused(&m).contains("visit_interval"));
    let m = copy_model(&dir.path().join("3"));
    tamper(&m, |p| p["interval_quantiles"] = json!([0.9, 0.1]));
    assert!(refused(&m).contains("interval_quantiles"));
}

#[test]
fn slot_shares_must_be_shares() {
    let dir = tempfile::tempdir().unwrap();
    let m = copy_model(dir.path());
    tamper(&m, |p| {
        p["planner"]["habits"][2]["slot_share"] = json!([1.5, -0.5, 0.0, 0.0, 0.0])
    });
    let e = refused(&m);
    assert!(e.contains("planner.habits[2].slot_share"), "{e}");
    tamper(&m, |p| {
        p["planner"]["habits"][2]["slot_share"] = json!([0.5, 0.0, 0.0, 0.0, 0.0])
    });
    assert!(refused(&m).contains("summing to 1"));
}

#[test]
fn a_catalog_the_code_relies_on_is_checked_inside_params_too() {
    let dir = tempfile::tempdir().unwrap();
    let m = copy_model(dir.path());
    // An ordinal without levels would be indexed by the explanations.
    tamper(&m, |p| {
        let contexts = p["catalog"]["contexts"].as_array_mut().unwrap();
        let ordinal = contexts
            .iter_mut()
            .find(|c| c["kind"] == "ordinal")
            .unwrap();
        ordinal["ordinal_levels"] = json!([]);
    });
    let e = refused(&m);
    assert!(
        e.contains("catalog: context #") && e.contains("two levels"),
        "{e}"
    );
}

#[test]
fn huge_or_mismatched_coefficients_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let m = copy_model(dir.path());
    tamper(&m, |p| p["coefficients"][5][1] = json!(1e300));
    assert!(refused(&m).contains("coefficient 5"));
    tamper(&m, |p| {
        p["coefficients"].as_array_mut().unwrap().pop();
    });
    assert!(refused(&m).contains("coefficients for"));
}

#[test]
fn a_missing_or_different_catalog_file_is_refused_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let m = copy_model(dir.path());
    let catalog = m.join("catalog.toml");
    let text = std::fs::read_to_string(&catalog).unwrap();
    std::fs::remove_file(&catalog).unwrap();
    match Model::load(&m) {
        Err(e @ ModelError::Io { .. }) => {
            assert!(e.to_string().contains("catalog.toml"), "{e}")
        }
        other => panic!("expected an I/O error naming catalog.toml, got {other:?}"),
    }
    std::fs::write(
        &catalog,
        text.replacen("schablon_min = ", "schablon_min = 1", 1),
    )
    .unwrap();
    let e = refused(&m);
    assert!(
        e.contains("catalog.toml") && e.contains("not the one"),
        "{e}"
    );
    std::fs::write(&catalog, "[[insats]\n").unwrap();
    let e = refused(&m);
    assert!(e.contains("catalog.toml") && e.contains("line 1"), "{e}");
}

#[cfg(unix)]
#[test]
fn params_that_are_a_device_are_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let m = copy_model(dir.path());
    std::fs::remove_file(m.join("params.json")).unwrap();
    std::os::unix::fs::symlink("/dev/zero", m.join("params.json")).unwrap();
    let e = refused(&m);
    assert!(
        e.contains("params.json") && e.contains("not a regular file"),
        "{e}"
    );
}

#[test]
fn numeric_context_outside_the_trained_range_is_refused_naming_field_value_and_range() {
    let dir = tempfile::tempdir().unwrap();
    let m = copy_model(dir.path());
    tamper(&m, |p| {
        p["context_ranges"] = json!([{"name": "age", "min": 65.0, "max": 102.0}])
    });
    let model = Model::load(&m).unwrap();
    for age in [1e6, 1e308, 103.0, 64.0] {
        let e = needs(&model, age).validate(&model.catalog).unwrap_err();
        let v = e
            .violations
            .iter()
            .find(|v| v.field == "context.age")
            .unwrap_or_else(|| panic!("{e}"));
        assert!(v.description.contains("out"), "{v}");
        if age < 1e6 {
            assert!(
                v.description.contains(&format!(
                    "{age} is outside the range the model was trained on (65 to 102)"
                )),
                "{v}"
            );
        }
    }
    let ok = needs(&model, 102.0).validate(&model.catalog).unwrap();
    let e = estimate(&model, &ok);
    assert!(e.weekly_min.is_finite());
    // A range beyond the catalog's declared bounds is a damaged file.
    tamper(&m, |p| {
        p["context_ranges"] = json!([{"name": "age", "min": 10.0, "max": 102.0}])
    });
    assert!(refused(&m).contains("context_ranges[0]"));
}

/// Paths to every number in a JSON tree, as JSON pointers.
fn numbers(v: &Value, at: String, out: &mut Vec<String>) {
    match v {
        Value::Number(_) => out.push(at),
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                numbers(x, format!("{at}/{i}"), out);
            }
        }
        Value::Object(o) => {
            for (k, x) in o {
                numbers(x, format!("{at}/{k}"), out);
            }
        }
        _ => {}
    }
}

/// Paths to every array, for removing or repeating an element.
fn arrays(v: &Value, at: String, out: &mut Vec<String>) {
    match v {
        Value::Array(a) => {
            out.push(at.clone());
            for (i, x) in a.iter().enumerate() {
                arrays(x, format!("{at}/{i}"), out);
            }
        }
        Value::Object(o) => {
            for (k, x) in o {
                arrays(x, format!("{at}/{k}"), out);
            }
        }
        _ => {}
    }
}

fn hostile_number() -> impl Strategy<Value = Value> {
    prop_oneof![
        prop::sample::select(vec![
            json!(-1),
            json!(0),
            json!(1),
            json!(29),
            json!(30),
            json!(400),
            json!(65535),
            json!(65536),
            json!(u64::MAX),
            json!(-1e308),
            json!(1e308),
            json!(1e-300),
            json!(0.5),
            json!(-0.5),
            json!(2.5),
        ]),
        any::<f64>()
            .prop_filter("JSON numbers are finite", |x| x.is_finite())
            .prop_map(|x| json!(x)),
    ]
}

#[derive(Debug, Clone)]
enum Edit {
    Number(prop::sample::Index, Value),
    Pop(prop::sample::Index),
    Repeat(prop::sample::Index),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        4 => (any::<prop::sample::Index>(), hostile_number()).prop_map(|(i, v)| Edit::Number(i, v)),
        1 => any::<prop::sample::Index>().prop_map(Edit::Pop),
        1 => any::<prop::sample::Index>().prop_map(Edit::Repeat),
    ]
}

fn apply(p: &mut Value, e: &Edit) {
    match e {
        Edit::Number(i, v) => {
            let mut paths = Vec::new();
            numbers(p, String::new(), &mut paths);
            let at = &paths[i.index(paths.len())];
            *p.pointer_mut(at).unwrap() = v.clone();
        }
        Edit::Pop(i) | Edit::Repeat(i) => {
            let mut paths = Vec::new();
            arrays(p, String::new(), &mut paths);
            let at = &paths[i.index(paths.len())];
            let a = p.pointer_mut(at).unwrap().as_array_mut().unwrap();
            if matches!(e, Edit::Pop(_)) {
                a.pop();
            } else if let Some(last) = a.last().cloned() {
                a.push(last);
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 160, ..ProptestConfig::default() })]

    /// Hostile parameters (any number replaced, any list shortened or lengthened, the file
    /// signed again): either the folder is refused, or every estimate it gives is finite.
    /// Never a panic.
    #[test]
    fn hostile_params_are_refused_or_estimate_finitely(edits in prop::collection::vec(edit(), 1..4)) {
        let dir = tempfile::tempdir().unwrap();
        let m = copy_model(dir.path());
        tamper(&m, |p| {
            for e in &edits {
                apply(p, e);
            }
        });
        if let Ok(model) = Model::load(&m) {
            for age in [60.0, 84.0, 110.0] {
                if let Ok(valid) = needs(&model, age).validate(&model.catalog) {
                    let e = estimate(&model, &valid);
                    for x in [e.weekly_min, e.weekly_staff_min, e.monthly_min, e.p10_weekly_min, e.p90_weekly_min] {
                        prop_assert!(x.is_finite(), "{:?}", e);
                    }
                    prop_assert!(e.visits.iter().all(|v| v.minutes.is_finite()));
                    prop_assert!(e.per_need.iter().all(|n| n.weekly_min.is_finite()));
                    prop_assert!(e.context_effects.iter().all(|c| c.weekly_min.is_finite()));
                }
            }
        }
    }
}
