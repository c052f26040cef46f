//! Reading dirty visit logs: every bad row is rejected with its row and column, every
//! suspicious row is flagged and counted, and a file that cannot be a visit log is refused
//! with one clear error.

use proptest::prelude::*;
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
    // Enough good rows after them that the file is a dirty log, not a wrong file (more than
    // half of its rows rejected).
    let good_after = bad.len();
    for i in 0..good_after {
        lines.push(good_row(100 + i));
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
    assert_eq!(r.rows_read, 1 + (bad.len() + good_after) as u64);
    assert_eq!(r.rows_used, 1 + good_after as u64);
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
    assert_eq!(
        log.report.context_ranges,
        Vec::<ramtid_core::catalog::ContextRange>::new(),
        "no numeric context in this catalog"
    );
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

#[test]
fn a_multibyte_character_in_a_date_is_a_reject_not_a_panic() {
    // Found by random byte mutation: the time parser sliced at byte offsets.
    let text = format!(
        "{HEADER}\n{}\n{}\nv9,r1,team-a,2025-03-03T07:4é,14,1,SHOWER,1,true\n",
        good_row(1),
        good_row(2)
    );
    let log = read(&text).unwrap();
    let reject = &log.report.first_rejects[0];
    assert_eq!((reject.row, reject.column.as_str()), (4, "start"));
    assert!(reject.reason.contains("ISO 8601"), "{reject:?}");
}

#[test]
fn a_refused_file_is_described_by_position_not_by_its_cells() {
    // A file named as a visit log may be any file the service can read: the refusal of the
    // whole file says where and why, never what its cells hold (the first reject's reason
    // quotes the cell; the refusal cuts the quote out).
    let mut text = HEADER.to_string();
    for i in 0..1200 {
        text.push_str(&format!("\nv{i},r,t,SECRET-CELL-{i},10,1,SHOWER,1,true"));
    }
    let e = read(&text).unwrap_err();
    assert!(
        matches!(&e, LogError::Malformed { row: 2, column, .. } if column == "start"),
        "{e:?}"
    );
    let msg = e.to_string();
    assert!(!msg.contains("SECRET"), "{msg}");
    assert!(msg.contains("ISO 8601"), "{msg}");
}

#[test]
fn a_file_is_refused_as_soon_as_more_than_half_of_its_first_1000_rows_are_bad() {
    // 501 bad rows settle it, whatever row 1000 holds (it used to look at row 1000 only,
    // and only when that row was itself rejected).
    let mut text = HEADER.to_string();
    for i in 0..501 {
        text.push_str(&format!("\nx{i},r,t,not a date,10,1,SHOWER,1,true"));
    }
    for i in 0..600 {
        text.push('\n');
        text.push_str(&good_row(i));
    }
    match read(&text) {
        Err(LogError::Malformed {
            rejected,
            checked,
            row,
            column,
            ..
        }) => assert_eq!(
            (rejected, checked, row, column.as_str()),
            (501, 1000, 2, "start")
        ),
        other => panic!("expected Malformed, got {other:?}"),
    }
}

#[test]
fn a_short_file_with_mostly_bad_rows_is_refused_at_its_end() {
    let mut text = HEADER.to_string();
    for i in 0..6 {
        text.push_str(&format!(
            "\nx{i},r,t,2025-03-03T07:40:00,ten,1,SHOWER,1,true"
        ));
    }
    for i in 0..4 {
        text.push('\n');
        text.push_str(&good_row(i));
    }
    match read(&text) {
        Err(LogError::Malformed {
            rejected,
            checked,
            row,
            column,
            ..
        }) => assert_eq!(
            (rejected, checked, row, column.as_str()),
            (6, 10, 2, "duration_min")
        ),
        other => panic!("expected Malformed, got {other:?}"),
    }
}

#[test]
fn an_empty_file_is_called_empty() {
    for text in ["", "\n\n", "\r\n"] {
        let e = read(text).unwrap_err();
        assert!(matches!(e, LogError::Empty { .. }), "{e:?}");
        let msg = e.to_string();
        assert!(msg.contains("visits.csv is empty"), "{msg}");
        assert!(!msg.contains("ctx_"), "{msg}");
    }
}

#[test]
fn a_wide_header_is_read_and_a_repeated_column_named_with_both_positions() {
    // 100 000 columns (quadratic once: 29 s); the names go through a map now.
    let mut header = HEADER.to_string();
    for i in 0..100_000 {
        header.push_str(&format!(",extra_{i}"));
    }
    let text = format!("{header}\n");
    let e = read(&text).unwrap_err().to_string();
    assert!(e.contains("no usable visits"), "{e}");
    let text = format!("{header},extra_7\n");
    let e = read(&text).unwrap_err().to_string();
    assert!(
        e.contains("columns 17 and 100010 have the same name"),
        "{e}"
    );
}

#[test]
fn a_header_of_100_000_columns_is_located_in_linear_time() {
    // Quadratic once (every name compared with all before it): 29 s for 100 000 columns.
    // Linear, the header takes milliseconds; the bound leaves room for a slow, shared
    // machine and an unoptimized build.
    let mut header = HEADER.to_string();
    for i in 0..100_000 {
        header.push_str(&format!(",extra_{i}"));
    }
    let row = good_row(1) + &",".repeat(100_000);
    let text = format!("{header}\n{row}\n");
    let t0 = std::time::Instant::now();
    let log = read(&text).unwrap();
    let seconds = t0.elapsed().as_secs_f64();
    assert_eq!(log.report.rows_used, 1);
    assert!(seconds < 5.0, "100 000 columns took {seconds:.1} s");
}

#[test]
fn a_personal_identity_number_as_recipient_or_unit_is_rejected_without_echoing_it() {
    let dir = tempfile::tempdir().unwrap();
    let ids = [
        ("19121212-1212", "team-a"),
        ("19121212 1212", "team-a"),
        ("pnr:19121212\u{2013}1212", "team-a"),
        ("H-19121212-1212", "team-a"),
        ("1212121212", "team-a"),
        ("r1", "811218-9876"),
    ];
    let mut text = HEADER.to_string();
    for (i, (recipient, unit)) in ids.iter().enumerate() {
        text.push_str(&format!(
            "\nx{i},{recipient},{unit},2025-03-03T07:40:00,14,1,SHOWER,1,true"
        ));
    }
    for i in 0..ids.len() {
        text.push('\n');
        text.push_str(&good_row(i));
    }
    let visits = dir.path().join("visits.csv");
    std::fs::write(&visits, &text).unwrap();
    let rejects = dir.path().join("rejects.csv");
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
    assert_eq!(r.rows_rejected, ids.len() as u64);
    for (i, reject) in r.first_rejects.iter().enumerate() {
        let column = if i == ids.len() - 1 {
            "unit_id"
        } else {
            "recipient_id"
        };
        assert_eq!((reject.row, reject.column.as_str()), (i as u64 + 2, column));
        assert!(reject.reason.contains("personnummer"), "{reject:?}");
    }
    let written = std::fs::read_to_string(&rejects).unwrap();
    for number in ["1212", "9876"] {
        assert!(!written.contains(number), "{written}");
    }
}

#[test]
fn the_range_of_each_numeric_context_is_recorded_over_used_rows() {
    let catalog = Catalog::from_toml(
        &format!("{CATALOG}\n[[context]]\nname = \"age\"\nkind = \"numeric\"\n"),
        "c.toml",
    )
    .unwrap();
    let text = format!(
        "{HEADER},ctx_age\n\
         v1,r1,t,2025-03-03T07:40:00,14,1,SHOWER,1,true,84\n\
         v2,r2,t,2025-03-03T07:40:00,14,1,SHOWER,1,true,67.5\n\
         v3,r3,t,2025-03-03T07:40:00,0.5,1,SHOWER,1,true,20\n\
         v4,r4,t,2025-03-03T07:40:00,14,1,SHOWER,1,true,99\n"
    );
    let log = read_visit_log_from(
        text.as_bytes(),
        0,
        "visits.csv",
        &catalog,
        &ReadOptions::default(),
    )
    .unwrap();
    // v3 is flagged (0–1 minute): not used, not in the range.
    assert_eq!(
        log.report.context_ranges,
        vec![ramtid_core::catalog::ContextRange {
            name: "age".into(),
            min: 67.5,
            max: 99.0
        }]
    );
}

fn valid_file() -> Vec<u8> {
    let mut text = HEADER.to_string();
    for i in 0..24 {
        text.push('\n');
        text.push_str(&good_row(i));
    }
    text.push_str("\nv90,r3,team-b,2025-03-04 19:05+01:00,31.25,2,CLEANING,3,false\n");
    text.into_bytes()
}

/// A mutation of the file: overwrite, insert or delete a byte, or insert a multi-byte
/// character (where a digit or separator belongs, these once met a byte-offset slice).
#[derive(Debug, Clone)]
enum Mutation {
    Set(prop::sample::Index, u8),
    Insert(prop::sample::Index, u8),
    Delete(prop::sample::Index),
    InsertChar(prop::sample::Index, char),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let special = prop::sample::select(vec![
        b',', b'\n', b'\r', b'"', b'|', b'-', b':', b'T', b'.', b'0', b'9', 0xff, 0xc3, 0,
    ]);
    prop_oneof![
        (any::<prop::sample::Index>(), any::<u8>()).prop_map(|(i, b)| Mutation::Set(i, b)),
        (any::<prop::sample::Index>(), special.clone()).prop_map(|(i, b)| Mutation::Set(i, b)),
        (any::<prop::sample::Index>(), special).prop_map(|(i, b)| Mutation::Insert(i, b)),
        any::<prop::sample::Index>().prop_map(Mutation::Delete),
        (
            any::<prop::sample::Index>(),
            prop::sample::select(vec!['é', '–', '\u{feff}', '𝟘', '\u{0}'])
        )
            .prop_map(|(i, c)| Mutation::InsertChar(i, c)),
    ]
}

fn apply(bytes: &mut Vec<u8>, m: &Mutation) {
    if bytes.is_empty() {
        return;
    }
    match m {
        Mutation::Set(i, b) => {
            let i = i.index(bytes.len());
            bytes[i] = *b;
        }
        Mutation::Insert(i, b) => {
            let i = i.index(bytes.len() + 1);
            bytes.insert(i, *b);
        }
        Mutation::Delete(i) => {
            let i = i.index(bytes.len());
            bytes.remove(i);
        }
        Mutation::InsertChar(i, c) => {
            let i = i.index(bytes.len() + 1);
            let mut buf = [0u8; 4];
            let enc = c.encode_utf8(&mut buf).as_bytes().to_vec();
            bytes.splice(i..i, enc);
        }
    }
}

const COLUMNS: [&str; 10] = [
    "visit_id",
    "recipient_id",
    "unit_id",
    "start",
    "duration_min",
    "staff",
    "tasks",
    "ctx_cognition",
    "ctx_lives_alone",
    "(row)",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 600, ..ProptestConfig::default() })]

    /// Whatever a few byte mutations do to a valid log, the reader answers (no panic), every
    /// rejected row names its row and a column of the file, the counts balance, and a
    /// refusal of the whole file says where.
    #[test]
    fn a_mutated_log_never_panics_and_every_error_names_row_and_column(
        mutations in prop::collection::vec(mutation(), 1..10)
    ) {
        let mut bytes = valid_file();
        for m in &mutations {
            apply(&mut bytes, m);
        }
        let result = read_visit_log_from(
            bytes.as_slice(),
            bytes.len() as u64,
            "visits.csv",
            &catalog(),
            &ReadOptions::default(),
        );
        match result {
            Ok(log) => {
                let r = &log.report;
                prop_assert!(r.balances());
                prop_assert_eq!(r.rows_rejected as usize >= r.first_rejects.len(), true);
                for reject in &r.first_rejects {
                    prop_assert!(reject.row >= 2, "{:?}", reject);
                    prop_assert!(COLUMNS.contains(&reject.column.as_str()), "{:?}", reject);
                    prop_assert!(!reject.reason.is_empty());
                    prop_assert!(reject.reason.chars().count() < 400, "{:?}", reject);
                }
            }
            Err(LogError::Malformed { row, column, .. }) => {
                prop_assert!(row >= 2);
                prop_assert!(COLUMNS.contains(&column.as_str()), "{}", column);
            }
            Err(e @ (LogError::MissingColumn { .. } | LogError::Header { .. })) => {
                prop_assert!(e.to_string().contains("visits.csv, row 1 (header)"), "{}", e);
            }
            Err(LogError::NothingUsable { .. }) | Err(LogError::Empty { .. }) => {}
            Err(other) => prop_assert!(false, "unexpected error {:?}", other),
        }
    }
}
