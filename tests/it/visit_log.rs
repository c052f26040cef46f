//! Reading dirty visit logs: every bad row is rejected with its row and column, every
//! suspicious row is flagged and counted, and a file that cannot be a visit log is refused
//! with one clear error.

use ramtid_core::catalog::Catalog;
use ramtid_core::visits::{read_visit_log, read_visit_log_from, LogError, ReadOptions};

const CATALOG: &str = r#"
[[insats]]
code = "MORNING_CARE"
category = "personal_care"
schablon_min = 15
[[insats]]
code = "SHOWER"
category = "personal_care"
schablon_min = 30
[[insats]]
code = "CLEANING"
category = "service"
schablon_min = 90
[[context]]
name = "cognition"
kind = "ordinal"
levels = [0, 1, 2, 3]
[[context]]
name = "lives_alone"
kind = "boolean"
"#;

const HEADER: &str =
    "visit_id,recipient_id,unit_id,start,duration_min,staff,tasks,ctx_cognition,ctx_lives_alone";

fn catalog() -> Catalog {
    Catalog::from_toml(CATALOG, "catalog.toml").unwrap()
}

fn read(text: &str) -> Result<ramtid_core::visits::VisitLog, LogError> {
    read_visit_log_from(
        text.as_bytes(),
        text.len() as u64,
        "visits.csv",
        &catalog(),
        &ReadOptions::default(),
    )
}

fn good_row(i: usize) -> String {
    format!(
        "v{i},r{},team-a,2025-03-03T07:40:00,14.5,1,MORNING_CARE|SHOWER,1,true",
        i % 7
    )
}

#[test]
fn each_bad_row_is_rejected_with_row_and_column() {
    let mut lines = vec![HEADER.to_string(), good_row(1)];
    let bad = [
        ("x2,r1,team-a,yesterday,14,1,SHOWER,1,true", "start"),
        (
            "x3,r1,team-a,2025-03-03T07:40:00,abc,1,SHOWER,1,true",
            "duration_min",
        ),
        (
            "x4,r1,team-a,2025-03-03T07:40:00,-5,1,SHOWER,1,true",
            "duration_min",
        ),
        (
            "x5,r1,team-a,2025-03-03T07:40:00,14,3,SHOWER,1,true",
            "staff",
        ),
        (
            "x6,r1,team-a,2025-03-03T07:40:00,14,1,SHOWER|OLD_CODE,1,true",
            "tasks",
        ),
        ("x7,r1,team-a,2025-03-03T07:40:00,14,1,,1,true", "tasks"),
        (
            "x8,r1,team-a,2025-03-03T07:40:00,14,1,SHOWER,9,true",
            "ctx_cognition",
        ),
        (
            "x9,r1,team-a,2025-03-03T07:40:00,14,1,SHOWER,1,maybe",
            "ctx_lives_alone",
        ),
        ("x10,r1,team-a,2025-03-03T07:40:00,14,1,SHOWER,1", "(row)"),
        (
            ",r1,team-a,2025-03-03T07:40:00,14,1,SHOWER,1,true",
            "visit_id",
        ),
        (
            "x12,,team-a,2025-03-03T07:40:00,14,1,SHOWER,1,true",
            "recipient_id",
        ),
        ("x13,r1,,2025-03-03T07:40:00,14,1,SHOWER,1,true", "unit_id"),
    ];
    for (row, _) in bad {
        lines.push(row.to_string());
    }
    let dir = tempfile::tempdir().unwrap();
    let visits = dir.path().join("visits.csv");
    std::fs::write(&visits, lines.join("\n")).unwrap();
    let rejects = dir.path().join("out/rejects.csv");
    let log = read_visit_log(
        &visits,
        &catalog(),
        &ReadOptions {
            rejects_path: Some(rejects.clone()),
            ..Default::default()
        },
    )
    .unwrap();
    let r = &log.report;
    assert_eq!(r.rows_read, 1 + bad.len() as u64);
    assert_eq!(r.rows_used, 1);
    assert_eq!(r.rows_rejected, bad.len() as u64);
    assert!(r.balances());
    assert_eq!(r.unknown_codes.get("OLD_CODE"), Some(&1));
    for (i, (_, column)) in bad.iter().enumerate() {
        let reject = &r.first_rejects[i];
        // Header is row 1, the good row is row 2, bad rows start at row 3.
        assert_eq!(reject.row, i as u64 + 3, "{reject:?}");
        assert_eq!(reject.column, *column, "{reject:?}");
        assert!(!reject.reason.is_empty());
    }
    let written = std::fs::read_to_string(&rejects).unwrap();
    let mut lines = written.lines();
    assert_eq!(lines.next(), Some("row,column,reason"));
    assert_eq!(lines.count(), bad.len());
    assert!(written.contains("3,start,"));
    assert!(written.contains("unknown insats code 'OLD_CODE'"));
}

#[test]
fn suspicious_rows_are_flagged_and_counted_not_used() {
    let text = [
        HEADER.to_string(),
        good_row(1),
        good_row(1), // duplicate id
        "v2,r1,team-a,2025-03-03T07:40:00,0.5,1,SHOWER,1,true".to_string(), // 0–1 minute
        "v3,r1,team-a,2025-03-03T07:40:00,600,1,SHOWER,1,true".to_string(), // forgotten check-out
        "v4,r1,team-a,2025-03-03T13:00:00,200,1,CLEANING,0,false".to_string(), // long cleaning is fine (< 3×90)
    ]
    .join("\n");
    let log = read(&text).unwrap();
    let r = &log.report;
    assert_eq!(r.rows_read, 5);
    assert_eq!(r.flagged_duplicate, 1);
    assert_eq!(r.flagged_too_short, 1);
    assert_eq!(r.flagged_forgotten_checkout, 1);
    assert_eq!(r.rows_used, 2);
    assert!(r.balances());
    assert_eq!(log.table.len(), 2);
    assert_eq!(log.table.row(1).slot, ramtid_core::slot::Slot::Midday);
}

#[test]
fn columns_may_come_in_any_order_and_unknown_ones_are_ignored() {
    let text = "tasks,ctx_lives_alone,note,staff,duration_min,start,unit_id,recipient_id,ctx_cognition,visit_id\n\
                SHOWER|MORNING_CARE,false,hello,2,20.0,2025-03-03T19:00:00+01:00,t1,r1,3,v1\n";
    let log = read(text).unwrap();
    assert_eq!(log.report.ignored_columns, vec!["note".to_string()]);
    let row = log.table.row(0);
    assert_eq!(row.staff, 2);
    assert_eq!(row.tasks, &[0, 1]);
    assert_eq!(row.context, &[3.0, 0.0]);
    assert_eq!(row.slot, ramtid_core::slot::Slot::Evening);
}

#[test]
fn a_missing_column_names_file_and_column() {
    let text = "visit_id,recipient_id,unit_id,start,duration_min,staff,tasks,ctx_cognition\nv1,r,t,2025-03-03T07:00:00,10,1,SHOWER,1\n";
    let e = read(text).unwrap_err().to_string();
    assert!(
        e.contains("visits.csv") && e.contains("row 1") && e.contains("ctx_lives_alone"),
        "{e}"
    );
}

#[test]
fn a_semicolon_file_gets_a_hint() {
    let text = HEADER.replace(',', ";") + "\n";
    let e = read(&text).unwrap_err().to_string();
    assert!(e.contains("';'"), "{e}");
}

#[test]
fn a_file_that_is_not_a_visit_log_is_refused_once() {
    let mut text = HEADER.to_string();
    for i in 0..1200 {
        text.push_str(&format!("\nv{i},r,t,not a date,10,1,SHOWER,1,true"));
    }
    match read(&text) {
        Err(LogError::Malformed {
            row, column, path, ..
        }) => {
            assert_eq!(
                (row, column.as_str(), path.as_str()),
                (2, "start", "visits.csv")
            );
        }
        other => panic!("expected Malformed, got {other:?}"),
    }
}

#[test]
fn invalid_utf8_in_a_row_is_a_reject_not_a_crash() {
    let mut bytes = format!("{HEADER}\n{}\n", good_row(1)).into_bytes();
    bytes.extend_from_slice(b"v9,r\xff\xfe,t,2025-03-03T07:00:00,10,1,SHOWER,1,true\n");
    let log = read_visit_log_from(
        bytes.as_slice(),
        0,
        "visits.csv",
        &catalog(),
        &ReadOptions::default(),
    )
    .unwrap();
    assert_eq!(log.report.rows_rejected, 1);
    assert_eq!(log.report.first_rejects[0].column, "recipient_id");
}

#[test]
fn a_log_with_nothing_usable_says_so() {
    let text = format!("{HEADER}\nv1,r,t,2025-03-03T07:00:00,0.2,1,SHOWER,1,true\n");
    let e = read(&text).unwrap_err().to_string();
    assert!(e.contains("no usable visits"), "{e}");
}

#[test]
fn a_missing_file_is_an_error_naming_it() {
    let e = read_visit_log(
        std::path::Path::new("/nonexistent/visits.csv"),
        &catalog(),
        &ReadOptions::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("/nonexistent/visits.csv"), "{e}");
}
