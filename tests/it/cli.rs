//! The command line as a user meets it, on the model shipped in `models/`.

use std::path::Path;
use std::process::Command;

fn ramtid() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ramtid"))
}

fn shipped_model() -> std::path::PathBuf {
    ramtid_core::model::resolve(Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/models")))
        .expect("a model is shipped in models/")
}

fn shipped_catalog() -> ramtid_core::catalog::Catalog {
    ramtid_core::model::Model::load(&shipped_model())
        .unwrap()
        .catalog
}

/// A valid needs line built from the shipped catalog, whatever its codes are.
fn good_line(id: &str) -> String {
    let catalog = shipped_catalog();
    let mut context = serde_json::Map::new();
    for c in &catalog.contexts {
        let v = match c.kind {
            ramtid_core::catalog::ContextKind::Numeric => serde_json::json!(84),
            ramtid_core::catalog::ContextKind::Ordinal => serde_json::json!(c.ordinal_levels[1]),
            ramtid_core::catalog::ContextKind::Boolean => serde_json::json!(true),
            ramtid_core::catalog::ContextKind::Categorical => serde_json::json!(c.labels[0]),
        };
        context.insert(c.name.clone(), v);
    }
    let needs: Vec<_> = catalog
        .insatser
        .iter()
        .take(3)
        .map(|i| serde_json::json!({"code": i.code, "per_week": 7}))
        .collect();
    serde_json::json!({"recipient_id": id, "context": context, "needs": needs}).to_string()
}

#[test]
fn estimate_answers_good_lines_and_names_the_field_of_bad_ones() {
    let dir = tempfile::tempdir().unwrap();
    let needs = dir.path().join("needs.jsonl");
    let bad_code = good_line("B-1").replacen(
        &format!("\"code\":\"{}\"", shipped_catalog().insatser[0].code),
        "\"code\":\"TELEPORT\"",
        1,
    );
    let bad_freq = good_line("B-2").replacen("\"per_week\":7", "\"per_week\":-3", 1);
    let text = [
        good_line("G-1"),
        bad_code,
        "{not json".to_string(),
        bad_freq,
        good_line("G-2"),
    ]
    .join("\n");
    std::fs::write(&needs, text).unwrap();
    let out = ramtid()
        .args(["estimate", "--model"])
        .arg(shipped_model())
        .arg("--needs")
        .arg(&needs)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "some lines failed");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 5);
    assert!(lines[0]["weekly_min"].as_f64().unwrap() > 0.0);
    assert!(lines[4]["weekly_min"].as_f64().unwrap() > 0.0);
    assert!(lines[1]["error"]
        .as_str()
        .unwrap()
        .contains("needs[0].code"));
    assert_eq!(lines[1]["line"], 2);
    assert!(lines[2]["error"]
        .as_str()
        .unwrap()
        .contains("not a needs object"));
    assert!(lines[3]["error"]
        .as_str()
        .unwrap()
        .contains("needs[0].per_week"));
    assert!(stderr.contains("line 4: needs[0].per_week"), "{stderr}");
}

#[test]
fn estimate_writes_the_csv_columns_evaluation_scripts_expect() {
    let dir = tempfile::tempdir().unwrap();
    let needs = dir.path().join("one.json");
    // One pretty-printed object is accepted as well as JSON lines.
    let pretty = serde_json::to_string_pretty(
        &serde_json::from_str::<serde_json::Value>(&good_line("P-1")).unwrap(),
    )
    .unwrap();
    std::fs::write(&needs, pretty).unwrap();
    let out = ramtid()
        .args(["estimate", "--format", "csv", "--model"])
        .arg(shipped_model())
        .arg("--needs")
        .arg(&needs)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let mut rows = csv::Reader::from_reader(text.as_bytes());
    let header = rows.headers().unwrap().clone();
    for col in [
        "recipient_id",
        "weekly_min",
        "weekly_staff_min",
        "monthly_min",
        "p10_weekly_min",
        "p90_weekly_min",
        "schablon_weekly_min",
        "model_version",
    ] {
        assert!(header.iter().any(|h| h == col), "{col} missing");
    }
    let row = rows.records().next().unwrap().unwrap();
    assert_eq!(&row[0], "P-1");
    let weekly: f64 = row[1].parse().unwrap();
    let monthly: f64 = row[3].parse().unwrap();
    assert!((monthly - weekly * 52.0 / 12.0).abs() < 0.2);
}

#[test]
fn train_names_the_missing_file() {
    let out = ramtid()
        .args([
            "train",
            "--catalog",
            "/nonexistent/catalog.toml",
            "--visits",
            "/nonexistent/visits.csv",
            "--out",
        ])
        .arg(std::env::temp_dir())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("/nonexistent/catalog.toml"), "{stderr}");
}

#[test]
fn hash_token_prints_the_hash_to_configure() {
    use std::io::Write;
    let mut child = ramtid()
        .arg("hash-token")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"abc\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    // printf abc | sha256sum (the trailing newline is not part of the token)
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().trim(),
        "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    let empty = ramtid().arg("hash-token").output().unwrap();
    assert!(!empty.status.success());
}

#[test]
fn an_empty_needs_file_fails_clearly_and_a_bom_or_a_bad_byte_stay_on_their_line() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.jsonl");
    std::fs::write(&empty, "").unwrap();
    let out = ramtid()
        .args(["estimate", "--model"])
        .arg(shipped_model())
        .arg("--needs")
        .arg(&empty)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("empty.jsonl: holds no needs object"),
        "{stderr}"
    );

    let needs = dir.path().join("needs.jsonl");
    let mut bytes = b"\xef\xbb\xbf".to_vec();
    bytes.extend_from_slice(good_line("G-1").as_bytes());
    bytes.extend_from_slice(b"\n{\"recipient_id\": \"\xff\"}\n");
    bytes.extend_from_slice(good_line("G-2").as_bytes());
    std::fs::write(&needs, bytes).unwrap();
    let out = ramtid()
        .args(["estimate", "--model"])
        .arg(shipped_model())
        .arg("--needs")
        .arg(&needs)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "one line failed");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    assert!(lines[0]["weekly_min"].as_f64().unwrap() > 0.0, "{stdout}");
    assert_eq!(lines[1]["line"], 2);
    assert!(lines[1]["error"]
        .as_str()
        .unwrap()
        .contains("not valid UTF-8"));
    assert!(lines[2]["weekly_min"].as_f64().unwrap() > 0.0);
}

#[test]
fn train_says_when_no_recipient_qualified_for_the_planned_week_mape() {
    // With no recipient of enough visits the planned-week MAPE is a mean over nothing: it
    // was printed as "MAPE -0.0%".
    let f = crate::common::fixture();
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(f.data.join("visits.csv")).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    let col = header.split(',').position(|c| c == "recipient_id").unwrap();
    // At most 4 visits per recipient: none reaches the 10 the figures need.
    let mut kept = std::collections::HashMap::<String, usize>::new();
    let mut out = format!("{header}\n");
    for line in lines {
        let n = kept
            .entry(line.split(',').nth(col).unwrap().to_string())
            .or_default();
        if *n < 4 {
            *n += 1;
            out.push_str(line);
            out.push('\n');
        }
    }
    let visits = dir.path().join("visits.csv");
    std::fs::write(&visits, out).unwrap();
    let run = ramtid()
        .args(["train", "--catalog"])
        .arg(f.data.join("catalog.toml"))
        .arg("--visits")
        .arg(&visits)
        .arg("--out")
        .arg(dir.path().join("models"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    // Trained and published although no figure over recipients could be measured.
    assert!(run.status.success(), "{stderr}");
    assert!(dir.path().join("models/default/1/manifest.json").is_file());
    assert!(
        stderr.contains("out-of-fold planned weeks: no recipient qualified"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("MAPE -0.0%") && !stderr.contains("NaN"),
        "{stderr}"
    );
}
