//! Caseload re-budgeting over a SQLite history.
//!
//! Timing 100 000 cases: `cargo test --release --test rebudget -- --ignored --nocapture`

use crate::common;

use ramtid_core::estimate::estimate;
use ramtid_core::model::Model;
use ramtid_core::needs::NeedsSet;
use ramtid_history::{Calculation, HistoryStore, StoredResult};
use ramtid_report::rebudget::{rebudget, summarize, Summary};
use std::path::Path;

fn shipped() -> Model {
    Model::load(Path::new("models/nordstad/1")).unwrap()
}

fn example_needs() -> Vec<NeedsSet> {
    std::fs::read_to_string("examples/needs.jsonl")
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// `n` calculations made with `model`, the example needs cycled with new ids; case `i`
/// gets its per_week scaled a little so cases differ.
fn calculations(model: &Model, n: usize) -> Vec<Calculation> {
    let base = example_needs();
    (0..n)
        .map(|i| {
            let mut needs = base[i % base.len()].clone();
            needs.recipient_id = format!("R-{i:06}");
            if i % 3 == 1 {
                for need in &mut needs.needs {
                    need.per_week = (need.per_week * 0.5).max(0.5);
                }
            }
            let valid = needs.validate(&model.catalog).unwrap();
            let e = estimate(model, &valid);
            Calculation {
                case_id: format!("C-{i:06}"),
                created_ms: 1_700_000_000_000 + i as i64,
                caller: "test".into(),
                model_name: model.name().into(),
                model_version: model.version().into(),
                needs_json: serde_json::to_string(&needs).unwrap(),
                result: StoredResult::Json(serde_json::to_string(&e).unwrap()),
                weekly_min: e.weekly_min,
                unit_id: format!("team-{}", i % 3),
            }
        })
        .collect()
}

/// Inserts straight into the SQLite file in one transaction (fast for big caseloads).
fn fill_sqlite(path: &Path, calcs: &[Calculation]) {
    let mut conn = rusqlite::Connection::open(path).unwrap();
    let tx = conn.transaction().unwrap();
    {
        let mut st = tx
            .prepare(
                "INSERT INTO calculations (case_id, created_ms, caller, model_name, model_version,
                 needs_json, result_json, weekly_min, unit_id)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )
            .unwrap();
        for c in calcs {
            let StoredResult::Json(result_json) = &c.result else {
                unreachable!("calculations() stores JSON")
            };
            st.execute(rusqlite::params![
                c.case_id,
                c.created_ms,
                c.caller,
                c.model_name,
                c.model_version,
                c.needs_json,
                result_json,
                c.weekly_min,
                c.unit_id
            ])
            .unwrap();
        }
    }
    tx.commit().unwrap();
}

fn open_store(dir: &Path) -> (HistoryStore, std::path::PathBuf) {
    let path = dir.join("history.db");
    let store = HistoryStore::open(&format!("sqlite://{}", path.display())).unwrap();
    (store, path)
}

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol * (1.0 + a.abs().max(b.abs()))
}

fn check_groups_add_up(s: &Summary) {
    let mut vars: Vec<&str> = s.by_group.iter().map(|g| g.variable.as_str()).collect();
    vars.dedup();
    assert!(!vars.is_empty());
    for var in vars {
        let groups: Vec<_> = s.by_group.iter().filter(|g| g.variable == var).collect();
        let cases: usize = groups.iter().map(|g| g.totals.cases).sum();
        let before: f64 = groups.iter().map(|g| g.totals.before_weekly_min).sum();
        let after: f64 = groups.iter().map(|g| g.totals.after_weekly_min).sum();
        assert_eq!(cases, s.total.cases, "{var}");
        assert!(close(before, s.total.before_weekly_min, 1e-9), "{var}");
        assert!(close(after, s.total.after_weekly_min, 1e-9), "{var}");
    }
    for groups in [&s.by_model_version, &s.by_unit] {
        let cases: usize = groups.iter().map(|g| g.totals.cases).sum();
        let after: f64 = groups.iter().map(|g| g.totals.after_weekly_min).sum();
        assert_eq!(cases, s.total.cases);
        assert!(close(after, s.total.after_weekly_min, 1e-9));
    }
}

#[test]
fn same_model_changes_nothing_and_groups_add_up() {
    let model = shipped();
    let dir = tempfile::tempdir().unwrap();
    let (store, path) = open_store(dir.path());
    let mut calcs = calculations(&model, 300);
    // an older calculation of case 0 that must NOT be used: the latest is
    let mut old = calcs[0].clone();
    old.created_ms -= 1_000_000;
    old.weekly_min *= 3.0;
    calcs.push(old);
    // one case whose needs no longer validate (an unknown code)
    let mut bad = calcs[1].clone();
    bad.case_id = "C-BAD".into();
    let mut needs: NeedsSet = serde_json::from_str(&bad.needs_json).unwrap();
    needs.needs[0].code = "NO_SUCH_CODE".into();
    bad.needs_json = serde_json::to_string(&needs).unwrap();
    calcs.push(bad);
    fill_sqlite(&path, &calcs);

    let s = rebudget(&store, &model, 20).unwrap();
    assert_eq!(s.cases_seen, 301);
    assert_eq!(s.total.cases, 300);
    assert_eq!(s.refused_count, 1);
    assert_eq!(s.refused[0].case_id, "C-BAD");
    assert!(
        s.refused[0].reason.contains("NO_SUCH_CODE"),
        "{:?}",
        s.refused
    );
    let expected: f64 = calcs[..300].iter().map(|c| c.weekly_min).sum();
    assert!(close(s.total.before_weekly_min, expected, 1e-9));
    assert!(close(s.total.after_weekly_min, expected, 1e-9));
    assert!(s.total.change_pct.abs() < 1e-6, "{}", s.total.change_pct);
    for m in &s.top_movers {
        assert!(m.change_min.abs() < 1e-6, "{m:?}");
    }
    for g in s.by_group.iter().chain(&s.by_model_version) {
        assert!(g.totals.change_pct.abs() < 1e-6, "{g:?}");
    }
    assert_eq!(s.by_model_version.len(), 1);
    // the three teams of `calculations`, in name order
    let units: Vec<(&str, usize)> = s
        .by_unit
        .iter()
        .map(|g| (g.value.as_str(), g.totals.cases))
        .collect();
    assert_eq!(units, [("team-0", 100), ("team-1", 100), ("team-2", 100)]);
    check_groups_add_up(&s);

    // pure computation gives the same as the store scan
    let mut latest: Vec<&Calculation> = calcs.iter().collect();
    latest.retain(|c| !(c.case_id == "C-000000" && c.weekly_min != calcs[0].weekly_min));
    let pure = summarize(latest, &model);
    assert_eq!(pure.total.cases, 300);
    assert!(close(pure.total.after_weekly_min, expected, 1e-9));
}

#[test]
fn a_candidate_model_moves_totals() {
    let model = shipped();
    let dir = tempfile::tempdir().unwrap();
    common::simulate_small(&dir.path().join("sim"), 7);
    let candidate = common::train_small(&dir.path().join("sim"), &dir.path().join("models"));
    let (store, path) = open_store(dir.path());
    let calcs = calculations(&model, 200);
    fill_sqlite(&path, &calcs);

    let s = rebudget(&store, &candidate, 20).unwrap();
    assert_eq!(s.cases_seen, 200);
    assert_eq!(s.total.cases + s.refused_count, 200);
    assert!(s.total.cases > 0);
    let before: f64 = calcs.iter().map(|c| c.weekly_min).sum();
    if s.refused_count == 0 {
        assert!(close(s.total.before_weekly_min, before, 1e-9));
    }
    assert!(
        (s.total.after_weekly_min - s.total.before_weekly_min).abs() > 1e-3,
        "{:?}",
        s.total
    );
    assert!(s.top_movers.len() == 20);
    assert!(s.top_movers[0].change_min.abs() >= s.top_movers[19].change_min.abs());
    assert!(s.top_movers.iter().any(|m| m.change_min.abs() > 1e-6));
    check_groups_add_up(&s);
    assert_eq!(s.candidate_version, candidate.version());
}

#[test]
#[ignore = "timing: 100 000 cases"]
fn time_100k_cases() {
    let model = shipped();
    let dir = tempfile::tempdir().unwrap();
    let (store, path) = open_store(dir.path());
    let few = calculations(&model, 200);
    let calcs: Vec<Calculation> = (0..100_000)
        .map(|i| {
            let mut c = few[i % few.len()].clone();
            c.case_id = format!("C-{i:07}");
            c
        })
        .collect();
    fill_sqlite(&path, &calcs);
    let t = std::time::Instant::now();
    let s = rebudget(&store, &model, 20).unwrap();
    let secs = t.elapsed().as_secs_f64();
    eprintln!("re-budgeted {} cases in {secs:.2} s", s.cases_seen);
    assert_eq!(s.total.cases, 100_000);
    assert!(secs <= 30.0);
}

#[test]
fn the_subcommand_writes_json_and_report() {
    let model = shipped();
    let dir = tempfile::tempdir().unwrap();
    let (store, path) = open_store(dir.path());
    fill_sqlite(&path, &calculations(&model, 50));
    drop(store);
    let out = dir.path().join("out");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_ramtid"))
        .args(["rebudget", "--history"])
        .arg(format!("sqlite://{}", path.display()))
        .args(["--model", "models/nordstad/1", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("50 cases"));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("rebudget.json")).unwrap()).unwrap();
    assert_eq!(json["cases_seen"], 50);
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("<svg") && html.contains("<rect"));
    crate::browser::assert_plots_render(&out.join("report.html"), &[], 1);
}

#[test]
fn numeric_context_is_banded_and_bands_sort_by_age() {
    let model = shipped();
    let base = &calculations(&model, 1)[0];
    let calcs: Vec<Calculation> = [64, 67, 71, 85, 89, 93, 101, 110]
        .iter()
        .enumerate()
        .map(|(i, age)| {
            let mut c = base.clone();
            c.case_id = format!("A-{i}");
            let mut needs: NeedsSet = serde_json::from_str(&c.needs_json).unwrap();
            needs.context.insert("age".into(), serde_json::json!(age));
            c.needs_json = serde_json::to_string(&needs).unwrap();
            c.unit_id = String::new();
            c
        })
        .collect();
    let s = summarize(&calcs, &model);
    let ages: Vec<(&str, usize)> = s
        .by_group
        .iter()
        .filter(|g| g.variable == "age")
        .map(|g| (g.value.as_str(), g.totals.cases))
        .collect();
    assert_eq!(
        ages,
        [
            ("60–69", 2),
            ("70–79", 1),
            ("80–89", 2),
            ("90–99", 1),
            ("100–109", 1),
            ("110–119", 1)
        ]
    );
    assert_eq!(s.by_unit.len(), 1);
    assert_eq!(s.by_unit[0].value, ramtid_report::rebudget::NO_UNIT);
    check_groups_add_up(&s);
}

#[test]
fn top_movers_count_is_honoured() {
    let model = shipped();
    let calcs = calculations(&model, 60);
    let mut r = ramtid_report::rebudget::Rebudget::new(&model).top_movers(5);
    for c in &calcs {
        let mut c = c.clone();
        // stored minutes differ per case so that every case moves by a different amount
        c.weekly_min += c.case_id[2..].parse::<f64>().unwrap();
        r.add(&c);
    }
    let s = r.finish();
    assert_eq!(s.top_movers.len(), 5);
    assert_eq!(s.top_movers[0].case_id, "C-000059");
    assert!(s
        .top_movers
        .windows(2)
        .all(|w| w[0].change_min.abs() >= w[1].change_min.abs()));
}
