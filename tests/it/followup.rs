//! Follow-up of ordered against performed time: a simulated random municipality with known
//! team paces, a model trained on its log, `ramtid follow-up` over the same log. Performed
//! minutes per recipient-month must equal the cleaned log summed here independently; the
//! provider index must rank the teams' true paces; a small hand-made log checks ordered
//! minutes, bands, runs outside and the reassess flag; bad settings and rows are refused.

use ramtid_core::model::Model;
use ramtid_core::params::{FitParams, ParamGuard};
use ramtid_core::progress::NoProgress;
use ramtid_core::train::{train, TrainRequest};
use ramtid_sim::random::{simulate_random, RandomConfig};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Command;

fn ramtid() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ramtid"))
}

struct World {
    tmp: tempfile::TempDir,
    sim: PathBuf,
    model: Model,
}

fn world(seed: u64, recipients: usize, weeks: usize) -> World {
    let tmp = tempfile::tempdir().unwrap();
    let sim = tmp.path().join("sim");
    simulate_random(
        &RandomConfig {
            seed,
            recipients,
            weeks,
            holdout_recipients: 5,
            codes: None,
        },
        &sim,
    )
    .unwrap();
    let (model, _) = train(
        &TrainRequest {
            catalog: sim.join("catalog.toml"),
            visits: sim.join("visits.csv"),
            data_dir: None,
            limits: Default::default(),
            models_dir: tmp.path().join("models"),
            name: "follow".into(),
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
    World { tmp, sim, model }
}

fn run_follow_up(
    model: &Path,
    orders: &Path,
    visits: &Path,
    out: &Path,
    extra: &[&str],
) -> std::process::Output {
    ramtid()
        .arg("follow-up")
        .arg("--model")
        .arg(model)
        .arg("--orders")
        .arg(orders)
        .arg("--visits")
        .arg(visits)
        .arg("--out")
        .arg(out)
        .args(extra)
        .output()
        .unwrap()
}

fn read_csv(path: &Path) -> Vec<HashMap<String, String>> {
    let mut r = csv::Reader::from_path(path).unwrap();
    let h: Vec<String> = r.headers().unwrap().iter().map(str::to_string).collect();
    r.records()
        .map(|rec| {
            let rec = rec.unwrap();
            h.iter()
                .cloned()
                .zip(rec.iter().map(str::to_string))
                .collect()
        })
        .collect()
}

/// The cleaned log summed per (recipient, month), independently of the reader: the rows it
/// rejects (its rejects file), then the cleaning rules as the data contract states them
/// (a repeated visit_id, shorter than 2 min, longer than max(180, 3 × schablon)).
fn cleaned_sums(
    model: &Model,
    visits: &Path,
    rejects: &Path,
) -> BTreeMap<(String, String), (f64, f64, u32)> {
    // The reader writes every rejected row there (row, column, reason).
    ramtid_core::visits::read_visit_log(
        visits,
        &model.catalog,
        &ramtid_core::visits::ReadOptions {
            rules: model.manifest.cleaning.clone(),
            rejects_path: Some(rejects.to_path_buf()),
        },
    )
    .unwrap();
    let rejected: HashSet<u64> = read_csv(rejects)
        .iter()
        .map(|r| r["row"].parse().unwrap())
        .collect();
    let schablon: HashMap<&str, f64> = model
        .catalog
        .insatser
        .iter()
        .map(|i| (i.code.as_str(), i.schablon_min))
        .collect();
    let rules = &model.manifest.cleaning;
    let mut seen = HashSet::new();
    let mut sums: BTreeMap<(String, String), (f64, f64, u32)> = BTreeMap::new();
    let mut r = csv::ReaderBuilder::new()
        .flexible(true)
        .from_path(visits)
        .unwrap();
    let h = r.headers().unwrap().clone();
    let col = |n: &str| h.iter().position(|c| c == n).unwrap();
    let (vid, rid, start, dur, staff, tasks) = (
        col("visit_id"),
        col("recipient_id"),
        col("start"),
        col("duration_min"),
        col("staff"),
        col("tasks"),
    );
    for rec in r.records() {
        let rec = rec.unwrap();
        let row = rec.position().unwrap().line();
        if rejected.contains(&row) {
            continue;
        }
        if !seen.insert(rec[vid].to_string()) {
            continue;
        }
        let d: f64 = rec[dur].trim().parse().unwrap();
        let s: f64 = rec[tasks].split('|').map(|c| schablon[c.trim()]).sum();
        if d < rules.min_duration_min
            || d > rules.max_duration_min.max(rules.long_schablon_multiple * s)
        {
            continue;
        }
        let e = sums
            .entry((rec[rid].to_string(), rec[start].trim()[..7].to_string()))
            .or_default();
        e.0 += d;
        e.1 += d * rec[staff].trim().parse::<f64>().unwrap();
        e.2 += 1;
    }
    sums
}

/// Each (recipient, month)'s age as the log's `ctx_age` gives it (constant per person in a
/// simulated world; where it changes, the largest).
fn logged_ages(visits: &Path) -> HashMap<(String, String), f64> {
    let mut ages: HashMap<(String, String), f64> = HashMap::new();
    let mut r = csv::ReaderBuilder::new()
        .flexible(true)
        .from_path(visits)
        .unwrap();
    let h = r.headers().unwrap().clone();
    let col = |n: &str| h.iter().position(|c| c == n).unwrap();
    let (rid, start, age) = (col("recipient_id"), col("start"), col("ctx_age"));
    for rec in r.records() {
        let rec = rec.unwrap();
        let (Some(id), Some(st), Some(a)) = (rec.get(rid), rec.get(start), rec.get(age)) else {
            continue;
        };
        let (Ok(a), Some(m)) = (a.trim().parse::<f64>(), st.trim().get(..7)) else {
            continue;
        };
        let e = ages.entry((id.to_string(), m.to_string())).or_insert(a);
        *e = e.max(a);
    }
    ages
}

fn ranks(v: &[f64]) -> Vec<f64> {
    let mut o: Vec<usize> = (0..v.len()).collect();
    o.sort_by(|&a, &b| v[a].total_cmp(&v[b]));
    let mut r = vec![0.0; v.len()];
    for (k, &i) in o.iter().enumerate() {
        r[i] = k as f64;
    }
    r
}

fn spearman(a: &[f64], b: &[f64]) -> f64 {
    let (ra, rb) = (ranks(a), ranks(b));
    let n = a.len() as f64;
    let d2: f64 = ra.iter().zip(&rb).map(|(x, y)| (x - y).powi(2)).sum();
    1.0 - 6.0 * d2 / (n * (n * n - 1.0))
}

#[test]
fn simulated_world_sums_to_the_cleaned_log_and_ranks_the_team_paces() {
    let w = world(5, 1500, 8);
    let visits = w.sim.join("visits.csv");
    // Orders: every logged recipient, a weekly time from its id; every fifth changes order
    // in the middle of the log.
    let ids: Vec<String> = {
        let mut set: Vec<String> = read_csv(&visits)
            .into_iter()
            .map(|r| r["recipient_id"].clone())
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        set.sort();
        set
    };
    let orders = w.tmp.path().join("orders.csv");
    let mut text = String::from("recipient_id,weekly_min,valid_from\n");
    for (i, id) in ids.iter().enumerate() {
        text.push_str(&format!("{id},{},\n", 60 + (i * 37) % 400));
        if i % 5 == 0 {
            text.push_str(&format!("{id},{},2025-07-01\n", 90 + (i * 13) % 300));
        }
    }
    std::fs::write(&orders, text).unwrap();
    let out = w.tmp.path().join("out");
    let population = w.tmp.path().join("population.csv");
    std::fs::write(
        &population,
        "age_band,inhabitants\n0-64,90000\n65-79,12000\n80+,5000\n",
    )
    .unwrap();
    let pop = population.display().to_string();
    let o = run_follow_up(
        &w.model.dir,
        &orders,
        &visits,
        &out,
        &["--population", &pop],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for f in [
        "recipients.csv",
        "providers.csv",
        "consumption.csv",
        "followup.json",
        "report.html",
    ] {
        assert!(out.join(f).is_file(), "{f}");
    }

    // recipients.csv: exactly the issue's columns.
    let header = std::fs::read_to_string(out.join("recipients.csv")).unwrap();
    assert_eq!(
        header.lines().next().unwrap(),
        "recipient_id,month,ordered_min,performed_min,performed_staff_min,visits,ratio,band,months_outside"
    );
    let rows = read_csv(&out.join("recipients.csv"));
    let sums = cleaned_sums(&w.model, &visits, &w.tmp.path().join("rejects.csv"));
    let mut compared = 0;
    let got: BTreeMap<(String, String), &HashMap<String, String>> = rows
        .iter()
        .map(|r| ((r["recipient_id"].clone(), r["month"].clone()), r))
        .collect();
    for (key, &(perf, staff, n)) in &sums {
        let r = got.get(key).unwrap_or_else(|| panic!("no row for {key:?}"));
        let p: f64 = r["performed_min"].parse().unwrap();
        let s: f64 = r["performed_staff_min"].parse().unwrap();
        assert!((p - perf).abs() < 0.1, "{key:?}: {p} against {perf}");
        assert!((s - staff).abs() < 0.1, "{key:?}: {s} against {staff}");
        assert_eq!(r["visits"].parse::<u32>().unwrap(), n, "{key:?}");
        compared += 1;
    }
    // Rows without visits are months with an order and nothing performed.
    for r in &rows {
        if !sums.contains_key(&(r["recipient_id"].clone(), r["month"].clone())) {
            assert_eq!(r["visits"], "0");
            assert_eq!(r["performed_min"], "0.0");
        }
    }
    assert!(compared > 1000, "{compared}");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("followup.json")).unwrap()).unwrap();
    let v = &json["visits"];
    assert!(v["rows_rejected"].as_u64().unwrap() > 0 && v["rows_flagged"].as_u64().unwrap() > 0);
    let total: f64 = sums.values().map(|s| s.0).sum();
    let reported = json["summary"]["performed_min"].as_f64().unwrap();
    assert!((reported - total).abs() < 1.0, "{reported} against {total}");

    // Consumption: the whole period's hours are the cleaned log's; the age bands partition
    // them; the 80+ band's staff hours are those of the recipient-months whose logged age is
    // 80 or more, summed here from recipients.csv and the log's ctx_age.
    let consumption = read_csv(&out.join("consumption.csv"));
    let crow = |dim: &str, group: &str| {
        consumption
            .iter()
            .find(|r| r["dimension"] == dim && r["group"] == group && r["month"] == "all")
            .unwrap_or_else(|| panic!("no consumption row {dim}/{group}"))
    };
    let hours = |r: &HashMap<String, String>, c: &str| r[c].parse::<f64>().unwrap();
    let staff_total: f64 = sums.values().map(|s| s.1).sum();
    assert!((hours(crow("all", "all"), "performed_hours") - total / 60.0).abs() < 0.01);
    assert!((hours(crow("all", "all"), "staff_hours") - staff_total / 60.0).abs() < 0.01);
    let bands: f64 = ["0-64", "65-79", "80+"]
        .iter()
        .filter(|b| consumption.iter().any(|r| r["group"] == **b))
        .map(|b| hours(crow("age_band", b), "staff_hours"))
        .sum();
    let outside = consumption
        .iter()
        .find(|r| r["group"] == "outside the bands" && r["month"] == "all")
        .map_or(0.0, |r| hours(r, "staff_hours"));
    assert!(
        (bands + outside - staff_total / 60.0).abs() < 0.05,
        "{bands} + {outside}"
    );
    let ages = logged_ages(&visits);
    let staff_80: f64 = rows
        .iter()
        .filter(|r| ages.get(&(r["recipient_id"].clone(), r["month"].clone())) >= Some(&80.0))
        .map(|r| r["performed_staff_min"].parse::<f64>().unwrap())
        .sum::<f64>()
        / 60.0;
    let r80 = crow("age_band", "80+");
    assert!(staff_80 > 0.0);
    assert!(
        (hours(r80, "staff_hours") - staff_80).abs() < 0.05,
        "{} against {staff_80}",
        r80["staff_hours"]
    );
    let days = json["consumption"]["days"].as_f64().unwrap();
    let want = staff_80 / 5000.0 * 365.25 / days;
    let got = json["consumption"]["staff_hours_per_inhabitant_80_plus_year"]
        .as_f64()
        .unwrap();
    assert!((got - want).abs() < 1e-3 * want, "{got} against {want}");
    assert_eq!(r80["inhabitants"], "5000");

    // Provider index against the true paces of simulation.json. A team's true time per
    // efficient minute is its pace, × its weekend factor on weekend visits, plus its slack
    // minutes per visit; the night team's pace cannot be told from the night slot (it makes
    // every night visit), so it is left out of the ranking and reported.
    let sim: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(w.sim.join("simulation.json")).unwrap())
            .unwrap();
    let teams: HashMap<String, &serde_json::Value> = sim["teams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["unit_id"].as_str().unwrap().to_string(), t))
        .collect();
    let night = sim["night_team"].as_str().unwrap().to_string();
    let providers = read_csv(&out.join("providers.csv"));
    let f = |r: &HashMap<String, String>, c: &str| r[c].parse::<f64>().unwrap();
    let (mut index, mut pace, mut effective) = (Vec::new(), Vec::new(), Vec::new());
    let (mut all_index, mut all_pace) = (Vec::new(), Vec::new());
    let mut covered = 0usize;
    for p in &providers {
        let t = teams[&p["unit_id"]];
        let tp = t["pace"].as_f64().unwrap();
        all_index.push(f(p, "index"));
        all_pace.push(tp);
        assert!(f(p, "index_p10") <= f(p, "index") && f(p, "index") <= f(p, "index_p90"));
        if p["unit_id"] == night {
            continue;
        }
        let per_visit = f(p, "expected_min") / f(p, "visits");
        let weekend = t["weekend"].as_f64().unwrap();
        index.push(f(p, "index"));
        pace.push(tp);
        let truth =
            tp * (1.0 + 2.0 / 7.0 * (weekend - 1.0)) + t["slack_min"].as_f64().unwrap() / per_visit;
        effective.push(truth);
        covered += usize::from(f(p, "index_p10") <= truth && truth <= f(p, "index_p90"));
    }
    let rho_effective = spearman(&index, &effective);
    let rho_pace = spearman(&index, &pace);
    let rho_all = spearman(&all_index, &all_pace);
    eprintln!(
        "provider index, {} day teams: Spearman {rho_effective:.3} against pace × weekend + slack, {rho_pace:.3} against pace alone; all {} units against pace: {rho_all:.3}; true value inside P10–P90 for {covered} of {}",
        index.len(),
        all_index.len(),
        index.len()
    );
    assert!(index.len() >= 5, "{}", index.len());
    assert!(rho_effective >= 0.9, "Spearman {rho_effective:.3}");
    // The issue asks for ≥ 80 % inside; measured here (seed 5) 13 of 13, with the level's
    // error in the interval (11 of 13 with the caseload bootstrap alone; README,
    // "Following up ordered against performed time").
    assert!(
        covered as f64 >= 0.8 * index.len() as f64,
        "{covered} of {}",
        index.len()
    );

    // The report is one page with both plots and no outside resources.
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains(r#"id="ratio-plot""#) && html.contains(r#"id="provider-plot""#));
    assert!(
        html.contains(r#"id="consumption-trend""#) && html.contains(r#"id="consumption-age_band""#)
    );
    assert!(html.contains("Staff hours per inhabitant 80+ and year"));
    crate::browser::assert_plots_render(
        &out.join("report.html"),
        &[
            "ratio-plot",
            "provider-plot",
            "consumption-trend",
            "consumption-age_band",
        ],
        4,
    );
    assert_eq!(html.matches("class=\"dot\"").count(), providers.len());
    assert!(!html.contains("<script src") && !html.contains("<link"));

    // --month: only that month, with its runs counted from the start of the log.
    let months: Vec<&str> = rows
        .iter()
        .map(|r| r["month"].as_str())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    assert!(months.len() >= 2, "{months:?}");
    let month = months[1];
    let out_m = w.tmp.path().join("out-month");
    let o = run_follow_up(&w.model.dir, &orders, &visits, &out_m, &["--month", month]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let month_rows = read_csv(&out_m.join("recipients.csv"));
    let full: Vec<&HashMap<String, String>> = rows.iter().filter(|r| r["month"] == month).collect();
    assert_eq!(full.len(), month_rows.len());
    assert!(full.iter().any(|r| r["months_outside"] == "2"));
    for (a, b) in full.iter().zip(&month_rows) {
        assert_eq!(b["month"], month);
        assert_eq!(a["recipient_id"], b["recipient_id"]);
        assert_eq!(a["months_outside"], b["months_outside"]);
        assert_eq!(a["band"], b["band"]);
    }
}

/// A log of one recipient over three months, made by hand from a simulated row's context.
#[test]
fn hand_made_log_ordered_minutes_bands_and_reassess() {
    let w = world(2, 300, 2);
    let visits = w.sim.join("visits.csv");
    let text = std::fs::read_to_string(&visits).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    let cols: Vec<&str> = header.split(',').collect();
    let template: Vec<String> = lines
        .find(|l| {
            let c: Vec<&str> = l.split(',').collect();
            c.len() == cols.len() && !c[6].contains('|')
        })
        .unwrap()
        .split(',')
        .map(str::to_string)
        .collect();
    let at = |n: &str| cols.iter().position(|c| *c == n).unwrap();
    let mut log = format!("{header}\n");
    let mut k = 0;
    // April 2025 (30 days): 30 min a day, 2025-04-01..30 → 900. May (31 days): 10 visits of
    // 50 = 500, the last with two staff (550 staff minutes). June 1–20: 20 × 20 = 400, and a 0.5-minute check-in on June 30. Orders: 140
    // min a week (20 a day) all along, 280 (40 a day) from 2025-06-16.
    let mut put = |day: &str, min: f64, staff: u8| {
        k += 1;
        let mut c = template.clone();
        c[at("visit_id")] = format!("H{k}");
        c[at("recipient_id")] = "HAND-1".into();
        c[at("start")] = format!("{day}T09:00:00");
        c[at("duration_min")] = format!("{min}");
        c[at("staff")] = staff.to_string();
        log.push_str(&c.join(","));
        log.push('\n');
    };
    for d in 1..=30 {
        put(&format!("2025-04-{d:02}"), 30.0, 1);
    }
    for d in 1..=10 {
        put(
            &format!("2025-05-{d:02}"),
            50.0,
            if d == 10 { 2 } else { 1 },
        );
    }
    for d in 1..=20 {
        put(&format!("2025-06-{d:02}"), 20.0, 1);
    }
    put("2025-06-30", 0.5, 1); // too short: counted as a fault and left out
    let hand = w.tmp.path().join("hand.csv");
    std::fs::write(&hand, log).unwrap();
    let orders = w.tmp.path().join("hand-orders.csv");
    std::fs::write(
        &orders,
        "recipient_id,weekly_min,valid_from\nHAND-1,140,\nHAND-1,280,2025-06-16\n",
    )
    .unwrap();
    // The 0.5-minute visit is flagged and left out, so the log covers April 1 to June 20.
    let out = w.tmp.path().join("hand-out");
    let o = run_follow_up(&w.model.dir, &orders, &hand, &out, &["--tolerance", "0.10"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let rows = read_csv(&out.join("recipients.csv"));
    let row = |m: &str| rows.iter().find(|r| r["month"] == m).unwrap();
    // April: ordered 140 × 30 / 7 = 600, performed 900, ratio 1.5: over, first month out.
    let a = row("2025-04");
    assert_eq!(
        (a["ordered_min"].as_str(), a["performed_min"].as_str()),
        ("600.0", "900.0")
    );
    assert_eq!(
        (
            a["ratio"].as_str(),
            a["band"].as_str(),
            a["months_outside"].as_str()
        ),
        ("1.5000", "over", "1")
    );
    // May: 140 × 31 / 7 = 620, performed 500: 0.8065, under, second month out.
    let m = row("2025-05");
    assert_eq!(
        (m["ordered_min"].as_str(), m["performed_min"].as_str()),
        ("620.0", "500.0")
    );
    assert_eq!(m["performed_staff_min"], "550.0");
    assert_eq!(a["performed_staff_min"], "900.0");
    assert_eq!(
        (m["band"].as_str(), m["months_outside"].as_str()),
        ("under", "2")
    );
    // June, covered June 1–20: 15 days at 20 + 5 days at 40 = 500; performed 400: 0.8,
    // under, third month out.
    let j = row("2025-06");
    assert_eq!(
        (
            j["ordered_min"].as_str(),
            j["performed_min"].as_str(),
            j["visits"].as_str()
        ),
        ("500.0", "400.0", "20")
    );
    assert_eq!(
        (j["band"].as_str(), j["months_outside"].as_str()),
        ("under", "3")
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("followup.json")).unwrap()).unwrap();
    assert_eq!(json["visits"]["flagged_too_short"], 1);
    assert_eq!(json["reassess"][0]["recipient_id"], "HAND-1");
    assert_eq!(json["reassess"][0]["months_outside"], 3);
    // With a run of 4 months asked for, nobody is flagged.
    let out4 = w.tmp.path().join("hand-out4");
    let o = run_follow_up(
        &w.model.dir,
        &orders,
        &hand,
        &out4,
        &["--reassess-after", "4"],
    );
    assert!(o.status.success());
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out4.join("followup.json")).unwrap())
            .unwrap();
    assert_eq!(json["reassess"].as_array().unwrap().len(), 0);
    // Tolerance 1: May and June are within (0.8 ≥ 0), April over tolerance (1.5 ≤ 2).
    let out1 = w.tmp.path().join("hand-out1");
    let o = run_follow_up(&w.model.dir, &orders, &hand, &out1, &["--tolerance", "1"]);
    assert!(o.status.success());
    let rows = read_csv(&out1.join("recipients.csv"));
    let bands: Vec<&str> = rows.iter().map(|r| r["band"].as_str()).collect();
    assert_eq!(bands, ["over_tolerance", "within", "within"]);

    // Payment from the follow-up itself, at 600 kr/h in every category: April performed
    // 900 min (15 h: 9 000 kr), ordered 600 (10 h: 6 000 kr), capped at 600 × 1.1 = 660
    // (6 600 kr); a CSV order has no schablon (0 kr).
    let pay = w.tmp.path().join("pay.toml");
    std::fs::write(
        &pay,
        "basis = \"performed_capped\"\ntolerance = 0.10\ngoal_premium_kr = 297\n[rates]\npersonal_care = 600\nservice = 600\nsupervision = 600\nother = 600\n",
    )
    .unwrap();
    let out_p = w.tmp.path().join("hand-pay");
    let pay_arg = pay.display().to_string();
    let o = run_follow_up(
        &w.model.dir,
        &orders,
        &hand,
        &out_p,
        &["--payment", &pay_arg],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let paid = read_csv(&out_p.join("payment.csv"));
    let april = paid.iter().find(|r| r["month"] == "2025-04").unwrap();
    let kr = |c: &str| april[c].parse::<f64>().unwrap();
    assert_eq!(april["unit_id"], template[at("unit_id")]);
    assert!(
        (kr("amount_performed_kr") - 9000.0).abs() < 0.01,
        "{april:?}"
    );
    assert!(
        (kr("amount_granted_ramtid_kr") - 6000.0).abs() < 0.01,
        "{april:?}"
    );
    assert!(
        (kr("amount_performed_capped_kr") - 6600.0).abs() < 0.01,
        "{april:?}"
    );
    assert_eq!(kr("amount_granted_schablon_kr"), 0.0);
    assert!((kr("amount_kr") - 6600.0).abs() < 0.01, "the chosen basis");
    let html = std::fs::read_to_string(out_p.join("report.html")).unwrap();
    assert!(html.contains(r#"id="payment""#) && html.contains("class=\"chosen\""));
    // payment_inputs.csv is what `ramtid payment --inputs` reads: the same payment.
    let again = w.tmp.path().join("hand-pay-again");
    let o = ramtid()
        .arg("payment")
        .arg("--config")
        .arg(&pay)
        .arg("--inputs")
        .arg(out_p.join("payment_inputs.csv"))
        .arg("--out")
        .arg(&again)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        std::fs::read_to_string(again.join("payment.csv")).unwrap(),
        std::fs::read_to_string(out_p.join("payment.csv")).unwrap()
    );

    // needs.jsonl as ORDERS: estimated with the model; the hand recipient has no order.
    let out_n = w.tmp.path().join("needs-out");
    let o = run_follow_up(&w.model.dir, &w.sim.join("needs.jsonl"), &hand, &out_n, &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let rows = read_csv(&out_n.join("recipients.csv"));
    assert!(rows
        .iter()
        .any(|r| r["recipient_id"] == "HAND-1" && r["band"] == "no_order"));
    assert!(rows
        .iter()
        .any(|r| r["recipient_id"] != "HAND-1" && r["band"] == "under" && r["visits"] == "0"));

    // The calculation history as ORDERS: the latest calculation of case HAND-1 (210 a
    // week; an older one said 70) is in force throughout. April: 210 × 30 / 7 = 900, within.
    let db = w.tmp.path().join("history.db");
    let url = format!("sqlite://{}", db.display());
    {
        let store = ramtid_history::HistoryStore::open(&url).unwrap();
        for (ms, weekly) in [(1_700_000_000_000i64, 70.0), (1_700_000_100_000, 210.0)] {
            store
                .record_blocking(ramtid_history::Calculation {
                    case_id: "HAND-1".into(),
                    created_ms: ms,
                    caller: "test".into(),
                    model_name: w.model.name().into(),
                    model_version: w.model.version().into(),
                    needs_json: "{}".into(),
                    result: ramtid_history::StoredResult::Json("{}".into()),
                    weekly_min: weekly,
                    unit_id: String::new(),
                })
                .unwrap();
        }
        // Two cases with the same needs at two providers, ordered 120 and 150 minutes (the
        // second by an older model): the same-needs check must name them.
        let needs =
            r#"{"recipient_id":"-","context":{"age":84},"needs":[{"code":"X","per_week":7}]}"#;
        for (case, unit, weekly, version) in [
            ("CASE-2", "TEAM-X", 120.0, w.model.version().to_string()),
            ("CASE-3", "TEAM-Y", 150.0, "older".to_string()),
        ] {
            store
                .record_blocking(ramtid_history::Calculation {
                    case_id: case.into(),
                    created_ms: 1_700_000_200_000,
                    caller: "test".into(),
                    model_name: w.model.name().into(),
                    model_version: version,
                    needs_json: needs.into(),
                    result: ramtid_history::StoredResult::Json("{}".into()),
                    weekly_min: weekly,
                    unit_id: unit.into(),
                })
                .unwrap();
        }
        drop(store);
    }
    let out_h = w.tmp.path().join("history-out");
    let o = run_follow_up(&w.model.dir, Path::new(&url), &hand, &out_h, &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let rows = read_csv(&out_h.join("recipients.csv"));
    let a = rows
        .iter()
        .find(|r| r["recipient_id"] == "HAND-1" && r["month"] == "2025-04")
        .unwrap();
    assert_eq!(
        (a["ordered_min"].as_str(), a["band"].as_str()),
        ("900.0", "within")
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out_h.join("followup.json")).unwrap())
            .unwrap();
    let same = &json["same_needs_same_time"];
    assert_eq!(same["applicable"], true);
    assert_eq!(
        (same["shared_profiles"].as_u64(), same["differing"].as_u64()),
        (Some(1), Some(1))
    );
    assert!((same["worst"][0]["spread"].as_f64().unwrap() - 0.25).abs() < 1e-9);
    let html = std::fs::read_to_string(out_h.join("report.html")).unwrap();
    assert!(html.contains("Same needs, same time") && html.contains("TEAM-Y"));
}

#[test]
fn bad_settings_are_refused_before_any_file_and_bad_rows_named() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("does-not-exist");
    for t in ["0", "1.5", "-0.1", "nan"] {
        let o = run_follow_up(
            &missing,
            &missing,
            &missing,
            &tmp.path().join("o"),
            &[&format!("--tolerance={t}")],
        );
        assert!(!o.status.success(), "{t}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains("tolerance") && !err.contains("does-not-exist"),
            "{t}: {err}"
        );
    }
    let o = run_follow_up(
        &missing,
        &missing,
        &missing,
        &tmp.path().join("o"),
        &["--month", "2025-13"],
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("--month"));

    let w = world(2, 200, 2);
    let cases = [
        (
            "recipient_id,weekly_min\nA,60\nB,sixty\n",
            "row 3, column 'weekly_min'",
        ),
        (
            "recipient_id,weekly_min,valid_from\nA,60,2025-02-30\n",
            "row 2, column 'valid_from'",
        ),
        (
            "recipient_id,weekly_min,valid_from\nA,60,2025-02-01\nA,70,2025-02-01\n",
            "row 3, column 'valid_from'",
        ),
        ("recipient_id,minutes\nA,60\n", "column 'weekly_min'"),
        ("recipient_id,weekly_min\nA,60,7\n", "row 2, column '(row)'"),
    ];
    // A month the log does not reach is named with the log's span.
    let orders = tmp.path().join("orders-ok.csv");
    std::fs::write(&orders, "recipient_id,weekly_min\nA,60\n").unwrap();
    let o = run_follow_up(
        &w.model.dir,
        &orders,
        &w.sim.join("visits.csv"),
        &tmp.path().join("o"),
        &["--month", "1999-01"],
    );
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("--month 1999-01") && err.contains("run from"),
        "{err}"
    );
    // A bad population file is named with row and column before the log is read; an age
    // variable the catalog lacks is named with the variables it has.
    let pop = tmp.path().join("pop.csv");
    std::fs::write(&pop, "age_band,inhabitants\n65-79,100\n80+,-3\n").unwrap();
    let pop = pop.display().to_string();
    let o = run_follow_up(
        &w.model.dir,
        &orders,
        &missing,
        &tmp.path().join("o"),
        &["--population", &pop],
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains(&format!("{pop}, row 3, column 'inhabitants'")),
        "{err}"
    );
    let o = run_follow_up(
        &w.model.dir,
        &orders,
        &w.sim.join("visits.csv"),
        &tmp.path().join("o"),
        &["--age-variable", "alder"],
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("no context variable 'alder'"),
        "{err}"
    );
    for (i, (text, want)) in cases.iter().enumerate() {
        let orders = tmp.path().join(format!("orders{i}.csv"));
        std::fs::write(&orders, text).unwrap();
        let o = run_follow_up(
            &w.model.dir,
            &orders,
            &w.sim.join("visits.csv"),
            &tmp.path().join("o"),
            &[],
        );
        assert!(!o.status.success(), "{text}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains(&orders.display().to_string()) && err.contains(want),
            "{text}: {err}"
        );
    }
}
