use super::model::raw_visit_mean;
use super::*;

/// Weekly best minutes, visits per week and schablon minutes per week of drawn recipients.
fn population_stats(m: Municipality, n: usize) -> (Vec<f64>, Vec<f64>, Vec<f64>, f64) {
    let p = profile(m);
    let savings = resolved_savings(&p);
    let (mut mins, mut visits, mut schablon) = (Vec::new(), Vec::new(), Vec::new());
    let mut lowest = f64::INFINITY;
    for i in 0..n {
        let mut rng = stream(7, STREAM_POPULATION, i as u64);
        let person = draw_person(&p, &mut rng);
        let prep = prepare(&p, &savings, &person);
        let f = p.factors(&p.encode(&person.context));
        for v in plan_cycle(&p, &person.needs) {
            lowest = lowest.min(raw_visit_mean(&p, &savings, &f, v.slot, &v.tasks, v.staff));
        }
        mins.push(prep.visits.iter().map(|v| v.best).sum::<f64>() / 4.0);
        visits.push(prep.visits.len() as f64 / 4.0);
        schablon.push(
            person
                .needs
                .iter()
                .map(|n| p.codes[n.code].schablon_min * n.per_week)
                .sum(),
        );
    }
    (mins, visits, schablon, lowest)
}

fn mean(x: &[f64]) -> f64 {
    x.iter().sum::<f64>() / x.len() as f64
}

fn quantile(x: &[f64], q: f64) -> f64 {
    let mut v = x.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() - 1) as f64 * q).round() as usize]
}

#[test]
fn populations_hit_the_volume_targets() {
    for m in Municipality::ALL {
        let (mins, visits, schablon, lowest) = population_stats(m, 3000);
        let hours: Vec<f64> = mins.iter().map(|x| x / 60.0).collect();
        let h = mean(&hours);
        eprintln!(
            "{m}: mean {h:.2} h/week, median {:.2}, p90 {:.2}, p99 {:.2}, max {:.2}, >18.5h {:.3}, <2h {:.3}, \
             visits/week {:.1}, schablon/efficient {:.2}, lowest mean {lowest:.2}",
            quantile(&hours, 0.5),
            quantile(&hours, 0.9),
            quantile(&hours, 0.99),
            quantile(&hours, 1.0),
            hours.iter().filter(|x| **x > 18.5).count() as f64 / hours.len() as f64,
            hours.iter().filter(|x| **x < 2.0).count() as f64 / hours.len() as f64,
            mean(&visits),
            mean(&schablon) / mean(&mins),
        );
        assert!((4.0..=6.0).contains(&h), "{m}: {h} h/week");
        assert!(quantile(&hours, 0.5) < h, "{m}: not right skewed");
        assert!(quantile(&hours, 1.0) > 20.0, "{m}: nobody above 20 h/week");
        assert!((16.0..=24.0).contains(&mean(&visits)), "{m}: visits/week");
        assert!(
            lowest >= model::MIN_VISIT_MEAN,
            "{m}: the floor binds ({lowest})"
        );
        let p = profile(m);
        let people: Vec<Person> = (0..3000)
            .map(|i| draw_person(&p, &mut stream(7, STREAM_POPULATION, i)))
            .collect();
        let share = |f: &dyn Fn(&Person) -> bool| {
            people.iter().filter(|x| f(x)).count() as f64 / people.len() as f64
        };
        let age = people.iter().map(|x| x.context[0]).sum::<f64>() / people.len() as f64;
        let alone = share(&|x| x.context[1] == 1.0);
        let cog0 = share(&|x| x.context[2] == 0.0);
        let lang = share(&|x| x.context[4] == 1.0);
        let effect = people.iter().map(|x| x.effect).sum::<f64>() / people.len() as f64;
        eprintln!(
            "{m}: age {age:.1}, alone {alone:.2}, cognition 0 {cog0:.2}, language {lang:.3}, \
             mean effect {effect:.3}"
        );
        assert!((81.0..=86.0).contains(&age) && (0.5..=0.7).contains(&alone));
        assert!((0.5..=0.7).contains(&cog0) && (0.02..=0.12).contains(&lang));
        assert!((effect - 1.0).abs() < 0.01);
    }
}

fn run(
    m: Municipality,
    seed: u64,
    recipients: usize,
    weeks: usize,
    holdout: usize,
) -> (tempfile::TempDir, SimSummary) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = SimConfig {
        municipality: m,
        seed,
        recipients,
        weeks,
        holdout_recipients: holdout,
    };
    let summary = simulate(&cfg, dir.path()).unwrap();
    (dir, summary)
}

fn read(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name)).unwrap()
}

/// Rows of a CSV file as maps from column to cell.
fn rows(dir: &Path, name: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let mut r = csv::Reader::from_path(dir.join(name)).unwrap();
    let header: Vec<String> = r.headers().unwrap().iter().map(String::from).collect();
    let rows = r
        .records()
        .map(|rec| rec.unwrap().iter().map(String::from).collect())
        .collect();
    (header, rows)
}

const FILES: [&str; 6] = [
    "catalog.toml",
    "visits.csv",
    "needs.jsonl",
    "truth.csv",
    "heldout_visits.csv",
    "simulation.json",
];

#[test]
fn the_same_seed_gives_the_same_files() {
    let (a, sa) = run(Municipality::Nordstad, 11, 40, 5, 10);
    let (b, sb) = run(Municipality::Nordstad, 11, 40, 5, 10);
    let (c, _) = run(Municipality::Nordstad, 12, 40, 5, 10);
    assert_eq!(sa.visits_written, sb.visits_written);
    assert_eq!(sa.faults, sb.faults);
    assert_eq!(sa.files.len(), FILES.len());
    for f in FILES {
        assert!(a.path().join(f).is_file(), "{f} missing");
        assert_eq!(read(a.path(), f), read(b.path(), f), "{f} differs");
    }
    assert_ne!(read(a.path(), "visits.csv"), read(c.path(), "visits.csv"));
    // A recipient's draws do not depend on how many recipients there are.
    let (d, _) = run(Municipality::Nordstad, 11, 20, 5, 0);
    let first = |dir: &Path| {
        read(dir, "visits.csv")
            .lines()
            .filter(|l| l.contains(",NS-000003,"))
            .map(|l| l.split_once(',').unwrap().1.to_string())
            .collect::<Vec<_>>()
    };
    assert!(!first(a.path()).is_empty());
    assert_eq!(first(a.path()), first(d.path()));
}

#[test]
fn the_catalogs_parse_and_differ() {
    for m in Municipality::ALL {
        let (dir, _) = run(m, 1, 5, 1, 2);
        let parsed = Catalog::load(&dir.path().join("catalog.toml")).unwrap();
        assert_eq!(parsed, catalog_for(m));
        assert!((25..=35).contains(&parsed.insatser.len()));
        for legacy in LEGACY_CODES {
            assert!(!parsed.code_index().contains_key(legacy));
        }
        assert_eq!(m.as_str().parse::<Municipality>().unwrap(), m);
    }
    assert!("ostad".parse::<Municipality>().is_err());
    assert_eq!(
        " Sjöbygd".parse::<Municipality>().unwrap(),
        Municipality::Sjobygd
    );
    let n = catalog_for(Municipality::Nordstad);
    let s = catalog_for(Municipality::Sjobygd);
    assert_ne!(n.fingerprint(), s.fingerprint());
    let names = |c: &Catalog| {
        c.contexts
            .iter()
            .map(|v| v.name.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        names(&n),
        [
            "age",
            "lives_alone",
            "cognition",
            "mobility",
            "interpreter",
            "area"
        ]
    );
    assert_eq!(
        names(&s),
        [
            "age",
            "lives_alone",
            "cognition",
            "mobility",
            "language_support",
            "district"
        ]
    );
    assert_eq!(s.contexts[2].ordinal_levels.len(), 5);
    assert_eq!(s.contexts[3].ordinal_levels.len(), 3);
    assert_eq!(s.contexts[5].labels.len(), 4);
}

#[test]
fn visits_follow_the_data_contract() {
    for m in Municipality::ALL {
        let (dir, summary) = run(m, 3, 60, 6, 5);
        let catalog = catalog_for(m);
        let p = profile(m);
        let (header, rows) = rows(dir.path(), "visits.csv");
        let mut expected = vec![
            "visit_id",
            "recipient_id",
            "unit_id",
            "start",
            "duration_min",
            "staff",
            "tasks",
        ]
        .into_iter()
        .map(String::from)
        .collect::<Vec<_>>();
        expected.extend(catalog.contexts.iter().map(|c| c.column()));
        assert_eq!(header, expected);
        assert_eq!(rows.len() as u64, summary.rows_written);
        let ids: std::collections::HashSet<&str> = rows.iter().map(|r| r[0].as_str()).collect();
        assert_eq!(ids.len() as u64, summary.visits_written);
        let codes = catalog.code_index();
        let mut last_day = String::new();
        for r in &rows {
            let start = &r[3];
            assert_eq!(start.len(), 19, "{start}");
            assert!(start.ends_with(":00") && &start[10..11] == "T", "{start}");
            let hour: u32 = start[11..13].parse().unwrap();
            let slot = Slot::from_hour(hour);
            let duration: f64 = r[4].parse().unwrap();
            assert!((0.0..=900.0).contains(&duration));
            let decimals = r[4].split_once('.').map(|(_, d)| d.len());
            assert_eq!(decimals, Some(1), "{}", r[4]);
            assert!(r[5] == "1" || r[5] == "2");
            for t in r[6].split('|') {
                match codes.get(t) {
                    Some(&k) => {
                        assert!(p.codes[k].slots.contains(&slot), "{t} in {slot} at {start}")
                    }
                    None => assert!(LEGACY_CODES.contains(&t), "{t}"),
                }
            }
            for (var, cell) in catalog.contexts.iter().zip(&r[7..]) {
                var.parse_str(cell).unwrap();
            }
            if start[..10] > *last_day {
                last_day = start[..10].to_string();
            }
        }
        assert_eq!(last_day, calendar::date_string(6 * 7 - 1));
    }
}

#[test]
fn needs_validate_and_belong_to_held_out_recipients() {
    for m in Municipality::ALL {
        let (dir, summary) = run(m, 5, 30, 2, 40);
        let catalog = catalog_for(m);
        let p = profile(m);
        let logged: std::collections::HashSet<String> = rows(dir.path(), "visits.csv")
            .1
            .into_iter()
            .map(|r| r[1].clone())
            .collect();
        let lines: Vec<String> = read(dir.path(), "needs.jsonl")
            .lines()
            .map(String::from)
            .collect();
        assert_eq!(lines.len(), summary.holdout_recipients);
        let mut staffed = 0;
        for line in &lines {
            let set: NeedsSet = serde_json::from_str(line).unwrap();
            let valid = set
                .validate(&catalog)
                .unwrap_or_else(|e| panic!("{e}: {line}"));
            assert!(!logged.contains(&set.recipient_id));
            for (n, v) in set.needs.iter().zip(&valid.needs) {
                let spec = &p.codes[v.insats];
                assert!(
                    v.slot != Some(spec.slots[0]),
                    "default slot written: {line}"
                );
                assert!(n.staff.is_none() || n.staff == Some(2));
                staffed += usize::from(v.staff == 2);
            }
        }
        let _ = staffed;
    }
}

#[test]
fn truth_is_sane_and_matches_the_held_out_visits() {
    let (dir, _) = run(Municipality::Nordstad, 9, 0, 1, 300);
    let (header, truth) = rows(dir.path(), "truth.csv");
    assert_eq!(
        header,
        [
            "recipient_id",
            "true_weekly_min",
            "best_weekly_min",
            "true_weekly_staff_min",
            "best_weekly_staff_min",
            "schablon_weekly_min",
            "visits_per_week"
        ]
    );
    assert_eq!(truth.len(), 300);
    let num = |r: &Vec<String>, i: usize| r[i].parse::<f64>().unwrap();
    let (mut t, mut b, mut sch) = (0.0, 0.0, 0.0);
    let mut weekly: std::collections::HashMap<String, f64> = Default::default();
    for r in &truth {
        for i in 1..7 {
            assert!(num(r, i) > 0.0, "{r:?}");
        }
        assert!(num(r, 3) >= num(r, 1) - 1e-6 && num(r, 4) >= num(r, 2) - 1e-6);
        t += num(r, 1);
        b += num(r, 2);
        sch += num(r, 5);
        weekly.insert(r[0].clone(), num(r, 1));
    }
    assert!((t / b - 1.0).abs() < 0.05, "true/best = {}", t / b);
    assert!(sch > b, "schablons are padded on average");

    let (header, held) = rows(dir.path(), "heldout_visits.csv");
    let n = header.len();
    assert_eq!(
        &header[n - 3..],
        ["efficient_min", "expected_min", "best_min"]
    );
    assert_eq!(header[..n - 3], rows(dir.path(), "visits.csv").0[..]);
    let (mut eff, mut exp) = (0.0, 0.0);
    let mut per_recipient: std::collections::HashMap<String, f64> = Default::default();
    for r in &held {
        let (e, x) = (num(r, n - 3), num(r, n - 2));
        assert!((num(r, 4) - e).abs() <= 0.051);
        assert!(num(r, n - 1) >= model::MIN_VISIT_MEAN);
        eff += e;
        exp += x;
        *per_recipient.entry(r[1].clone()).or_default() += x / HELDOUT_WEEKS as f64;
    }
    assert!(
        (eff / exp - 1.0).abs() < 0.02,
        "efficient/expected = {}",
        eff / exp
    );
    assert_eq!(per_recipient.len(), 300);
    let two_weeks: f64 = per_recipient.values().sum();
    assert!((two_weeks / t - 1.0).abs() < 0.05, "{two_weeks} vs {t}");
    // held-out recipients are served by efficient teams only
    let doc: Value = serde_json::from_str(&read(dir.path(), "simulation.json")).unwrap();
    let slow: Vec<String> = doc["teams"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["slow"].as_bool().unwrap())
        .map(|t| t["unit_id"].as_str().unwrap().to_string())
        .collect();
    assert!(held.iter().all(|r| !slow.contains(&r[2])));
}

#[test]
fn fault_counts_match_the_rates_and_the_file() {
    let (dir, s) = run(Municipality::Nordstad, 21, 250, 8, 0);
    let v = s.visits_written as f64;
    assert!(v > 25_000.0, "{v}");
    let near = |count: u64, rate: f64| {
        let e = rate * v;
        (count as f64 - e).abs() < 4.0 * e.sqrt() + 3.0
    };
    assert!(
        near(s.faults.forgotten_checkout, FORGOTTEN_CHECKOUT_RATE),
        "{:?}",
        s.faults
    );
    assert!(
        near(s.faults.short_checkin, SHORT_CHECKIN_RATE),
        "{:?}",
        s.faults
    );
    assert!(
        near(s.faults.duplicate_row, DUPLICATE_ROW_RATE),
        "{:?}",
        s.faults
    );
    assert!(
        near(s.faults.unknown_code, UNKNOWN_CODE_RATE),
        "{:?}",
        s.faults
    );
    assert_eq!(s.rows_written, s.visits_written + s.faults.duplicate_row);

    let (_, rows) = rows(dir.path(), "visits.csv");
    let mut seen = std::collections::HashSet::new();
    let dups = rows.iter().filter(|r| !seen.insert(r[0].clone())).count() as u64;
    assert_eq!(dups, s.faults.duplicate_row);
    let unique: Vec<&Vec<String>> = {
        let mut seen = std::collections::HashSet::new();
        rows.iter().filter(|r| seen.insert(r[0].clone())).collect()
    };
    let legacy = unique
        .iter()
        .filter(|r| r[6].split('|').any(|t| LEGACY_CODES.contains(&t)))
        .count() as u64;
    assert_eq!(legacy, s.faults.unknown_code);
    let dur = |r: &&&Vec<String>| r[4].parse::<f64>().unwrap();
    let long = unique.iter().filter(|r| dur(r) >= 240.0).count() as u64;
    let short = unique.iter().filter(|r| dur(r) <= 1.0).count() as u64;
    assert!(long >= s.faults.forgotten_checkout && long <= s.faults.forgotten_checkout + 5);
    assert!(short >= s.faults.short_checkin && short <= s.faults.short_checkin + 5);

    let doc: Value = serde_json::from_str(&read(dir.path(), "simulation.json")).unwrap();
    assert_eq!(
        doc["fault_counts"]["duplicate_row"],
        json!(s.faults.duplicate_row)
    );
    assert_eq!(doc["rows_written"], json!(s.rows_written));
}

#[test]
fn teams_and_parameters_are_recorded() {
    for m in Municipality::ALL {
        let (dir, _) = run(m, 77, 100, 1, 0);
        let doc: Value = serde_json::from_str(&read(dir.path(), "simulation.json")).unwrap();
        assert_eq!(doc["synthetic"], json!(true));
        assert_eq!(doc["seed"], json!(77));
        assert_eq!(doc["municipality"], json!(m.as_str()));
        let teams = doc["teams"].as_array().unwrap();
        assert!((8..=16).contains(&teams.len()));
        let slow: Vec<f64> = teams
            .iter()
            .map(|t| t["multiplier"].as_f64().unwrap())
            .filter(|x| *x != 1.0)
            .collect();
        assert_eq!(slow.len(), (0.3 * teams.len() as f64).round() as usize);
        assert!(slow.iter().all(|x| (1.2..=1.4).contains(x)));
        let p = profile(m);
        assert_eq!(doc["codes"].as_array().unwrap().len(), p.codes.len());
        assert_eq!(
            doc["beta"]["personal_care"].as_object().unwrap().len(),
            p.features().len()
        );
        // every area keeps an efficient team
        for area in p.contexts[profile::CTX_AREA].labels.iter() {
            assert!(teams
                .iter()
                .any(|t| t["area"] == json!(area) && t["multiplier"] == json!(1.0)));
        }
        // visits.csv units are the recorded teams, and catchments overlap areas
        let units: Vec<&str> = teams
            .iter()
            .map(|t| t["unit_id"].as_str().unwrap())
            .collect();
        let visits = rows(dir.path(), "visits.csv").1;
        assert!(visits.iter().all(|r| units.contains(&r[2].as_str())));
        let area_col = visits[0].len() - 1;
        let foreign = visits
            .iter()
            .filter(|r| {
                let t = teams.iter().find(|t| t["unit_id"] == json!(r[2])).unwrap();
                t["area"] != json!(r[area_col])
            })
            .count() as f64
            / visits.len() as f64;
        assert!((0.1..=0.4).contains(&foreign), "{m}: {foreign}");
    }
}

#[test]
fn sjobygd_showers_are_visits_of_their_own() {
    let (dir, _) = run(Municipality::Sjobygd, 4, 80, 4, 0);
    let (_, rows) = rows(dir.path(), "visits.csv");
    let showers: Vec<&Vec<String>> = rows
        .iter()
        .filter(|r| r[6].split('|').any(|t| t == "SHOWER"))
        .collect();
    assert!(!showers.is_empty());
    for r in showers {
        let own: Vec<&str> = r[6]
            .split('|')
            .filter(|t| !LEGACY_CODES.contains(t))
            .collect();
        assert_eq!(own, ["SHOWER"]);
    }
    assert!(rows
        .iter()
        .any(|r| r[6].contains("MIDDAY_HELP|MEAL") || r[6].contains("MEAL|")));
}

#[test]
fn bad_settings_and_paths_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = SimConfig {
        weeks: 0,
        ..SimConfig::default()
    };
    assert!(matches!(
        simulate(&cfg, dir.path()),
        Err(SimError::Config(_))
    ));
    let file = dir.path().join("a_file");
    std::fs::write(&file, "x").unwrap();
    let cfg = SimConfig {
        recipients: 1,
        holdout_recipients: 0,
        weeks: 1,
        ..SimConfig::default()
    };
    let e = simulate(&cfg, &file.join("sub")).unwrap_err().to_string();
    assert!(e.contains("a_file"), "{e}");
}

#[test]
fn the_documentation_matches_the_profiles() {
    let doc = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../training/SIMULATION.md"),
    )
    .unwrap();
    assert!(doc.to_lowercase().contains("synthetic"));
    let lines: std::collections::HashSet<&str> = doc.lines().collect();
    for m in Municipality::ALL {
        let p = profile(m);
        for row in profile::code_table_rows(&p)
            .iter()
            .chain(&profile::beta_table_rows(&p))
        {
            assert!(
                lines.contains(row.as_str()),
                "{m}: not in SIMULATION.md: {row}"
            );
        }
    }
}

/// Timing: `cargo test --release --lib simulate::tests::timing -- --ignored --nocapture`.
#[test]
#[ignore]
fn timing_5000_recipients_10_weeks() {
    let t = std::time::Instant::now();
    let (_dir, s) = run(Municipality::Nordstad, 42, 5000, 10, 1000);
    let secs = t.elapsed().as_secs_f64();
    eprintln!(
        "{} rows, {} visits in {secs:.2} s: {:.0} rows/s; faults {:?}",
        s.rows_written,
        s.visits_written,
        s.rows_written as f64 / secs,
        s.faults
    );
    assert!((800_000..=1_200_000).contains(&s.rows_written));
}

/// The tables of `training/SIMULATION.md`:
/// `cargo test --lib simulate::tests::print_doc_tables -- --ignored --nocapture`.
#[test]
#[ignore]
fn print_doc_tables() {
    for m in Municipality::ALL {
        let p = profile(m);
        println!("## {m}");
        for r in profile::code_table_rows(&p) {
            println!("{r}");
        }
        for r in profile::beta_table_rows(&p) {
            println!("{r}");
        }
        println!(
            "overhead {:?} staff2 {}",
            p.overhead_min, p.staff2_extra_min
        );
        for (a, b, s) in &p.savings {
            println!("| `{a}` + `{b}` | {s} |");
        }
    }
}
