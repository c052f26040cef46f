//! Payment tests with hand-computed amounts.
//!
//! The fixture (Solna 2024 rates, Lund's goal premium): April 2024 has 30 days; recipient r1
//! of unit A was absent 3 days, so a = 1 − (1 − 0) × 3/30 = 0.9; short_notice_share x = 0.5,
//! tolerance 0.10.
//!
//! personal_care (464 kr/h): schablon 600, ramtid 540, performed 570, declined d = 60 min.
//!   granted_schablon: 600 × 0.9 − 0.5 × 60 = 540 − 30 = 510 min = 8.5 h   → 8.5 × 464 = 3944.00
//!   granted_ramtid:   540 × 0.9 − 30       = 486 − 30 = 456 min = 7.6 h   → 7.6 × 464 = 3526.40
//!   performed:        570 + 0.5 × 60       = 600 min  = 10 h              → 10 × 464  = 4640.00
//!   performed_capped: cap 540 × 0.9 × 1.1  = 534.6; min(600, 534.6) = 534.6 min = 8.91 h
//!                                                                          → 8.91 × 464 = 4134.24
//! service (382 kr/h): schablon 120, ramtid 90, performed 60, no declined visit.
//!   granted_schablon: 120 × 0.9 = 108 min = 1.8 h   → 1.8 × 382  = 687.60
//!   granted_ramtid:    90 × 0.9 =  81 min = 1.35 h  → 1.35 × 382 = 515.70
//!   performed:                     60 min = 1 h     → 382.00
//!   performed_capped: cap 81 × 1.1 = 89.1; min(60, 89.1) = 60 min → 382.00
//! Unit A, 2024-04:
//!   granted_schablon 3944.00 + 687.60 = 4631.60 kr, 510 + 108 = 618 min  = 10.3 h
//!   granted_ramtid   3526.40 + 515.70 = 4042.10 kr, 456 + 81  = 537 min  = 8.95 h
//!   performed        4640.00 + 382.00 = 5022.00 kr, 600 + 60  = 660 min  = 11 h
//!   performed_capped 4134.24 + 382.00 = 4516.24 kr, 534.6 + 60 = 594.6 min = 9.91 h
//! Goals: r1's g1 fulfilled (assessed 2024-04-15) → 297 kr to unit A; r1's g2 not fulfilled;
//! r9's g1 fulfilled but r9 has no row in April → unattributed, not paid.

use super::*;
use std::io::Write;

fn params(basis: Basis) -> CheckedPayment {
    PaymentParams::new(basis)
        .rate("personal_care", 464.0)
        .rate("service", 382.0)
        .tolerance(0.10)
        .short_notice_share(0.5)
        .absence_share(0.0)
        .goal_premium_kr(297.0)
        .check()
        .unwrap()
}

fn april() -> Month {
    "2024-04".parse().unwrap()
}

#[allow(clippy::too_many_arguments)]
fn input(
    recipient: &str,
    unit: &str,
    category: &str,
    schablon: f64,
    ramtid: f64,
    performed: f64,
    declined: f64,
    absence_days: u32,
) -> PaymentInput {
    PaymentInput {
        recipient_id: recipient.into(),
        unit_id: unit.into(),
        month: april(),
        category: category.into(),
        granted_schablon_min: schablon,
        granted_ramtid_min: ramtid,
        performed_min: performed,
        declined_visits_planned_min: declined,
        absence_days,
    }
}

fn fixture() -> Vec<PaymentInput> {
    vec![
        input("r1", "A", "personal_care", 600.0, 540.0, 570.0, 60.0, 3),
        input("r1", "A", "service", 120.0, 90.0, 60.0, 0.0, 3),
    ]
}

fn goal(recipient: &str, id: &str, fulfilled: bool) -> Goal {
    Goal {
        recipient_id: recipient.into(),
        goal_id: id.into(),
        month: april(),
        fulfilled,
    }
}

fn goals() -> Vec<Goal> {
    vec![
        goal("r1", "g1", true),
        goal("r1", "g2", false),
        goal("r9", "g1", true),
    ]
}

/// The amounts under each basis, in the order of `Basis::ALL` (see the module comment).
const AMOUNTS: [f64; 4] = [4631.60, 4042.10, 5022.00, 4516.24];
const HOURS: [f64; 4] = [10.3, 8.95, 11.0, 9.91];

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

/// Computes the fixture under `basis` and checks the chosen amount, the side-by-side
/// amounts and the goal premium.
fn check_basis(basis: Basis) {
    let pay = compute(&params(basis), &fixture(), &goals()).unwrap();
    assert_eq!(pay.rows.len(), 1);
    let r = &pay.rows[0];
    assert_eq!((r.unit_id.as_str(), r.month), ("A", april()));
    assert_eq!(r.basis, basis);
    let i = basis.index();
    assert!(
        close(r.amount_kr, AMOUNTS[i]),
        "{basis}: {} kr",
        r.amount_kr
    );
    assert!(close(r.hours, HOURS[i]), "{basis}: {} h", r.hours);
    for b in 0..4 {
        assert!(
            close(r.amount_by_basis_kr[b], AMOUNTS[b]),
            "{}: {}",
            Basis::ALL[b],
            r.amount_by_basis_kr[b]
        );
        assert!(close(r.hours_by_basis[b], HOURS[b]));
    }
    assert_eq!(r.goals_fulfilled, 1);
    assert!(close(r.goal_premium_kr, 297.0));
    assert!(close(r.total_kr, AMOUNTS[i] + 297.0));
    assert_eq!(
        pay.goals,
        GoalSummary {
            goals: 3,
            fulfilled: 2,
            paid: 1,
            unattributed: 1
        }
    );
}

#[test]
fn granted_schablon_basis_pays_hand_computed_amount() {
    check_basis(Basis::GrantedSchablon);
}

#[test]
fn granted_ramtid_basis_pays_hand_computed_amount() {
    check_basis(Basis::GrantedRamtid);
}

#[test]
fn performed_basis_pays_hand_computed_amount() {
    check_basis(Basis::Performed);
}

#[test]
fn performed_capped_basis_pays_hand_computed_amount() {
    check_basis(Basis::PerformedCapped);
}

#[test]
fn performed_capped_under_the_cap_pays_performed() {
    // 540 ramtid, no absence: cap 540 × 1.1 = 594; performed 580 + 0.5 × 20 = 590 < 594,
    // so 590 min are paid: 590 / 60 × 464 = 4562.666… kr, the same as the performed basis.
    let rows = [input(
        "r1",
        "A",
        "personal_care",
        600.0,
        540.0,
        580.0,
        20.0,
        0,
    )];
    let r = &compute(&params(Basis::PerformedCapped), &rows, &[])
        .unwrap()
        .rows[0];
    assert!(close(r.amount_kr, 590.0 / 60.0 * 464.0), "{}", r.amount_kr);
    assert!(close(
        r.amount_kr,
        r.amount_by_basis_kr[Basis::Performed.index()]
    ));
    assert_eq!(r.goals_fulfilled, 0);
    assert!(close(r.total_kr, r.amount_kr));
}

#[test]
fn absence_share_pays_part_of_absence_days_and_declined_share_one_pays_all() {
    // absence_share 0.5: a = 1 − 0.5 × 3/30 = 0.95; short_notice_share 1: declined minutes
    // are not taken off the granted time and are added in full to performed time.
    // ramtid: 540 × 0.95 = 513 min = 8.55 h → 8.55 × 464 = 3967.20 kr
    // performed: 570 + 60 = 630 min = 10.5 h → 10.5 × 464 = 4872.00 kr
    let p = PaymentParams::new(Basis::GrantedRamtid)
        .rate("personal_care", 464.0)
        .absence_share(0.5)
        .short_notice_share(1.0)
        .check()
        .unwrap();
    let rows = [input(
        "r1",
        "A",
        "personal_care",
        600.0,
        540.0,
        570.0,
        60.0,
        3,
    )];
    let r = &compute(&p, &rows, &[]).unwrap().rows[0];
    assert!(close(r.amount_kr, 3967.20), "{}", r.amount_kr);
    assert!(close(r.amount_by_basis_kr[2], 4872.00));
}

#[test]
fn units_and_months_are_separate_rows_and_a_goal_goes_to_the_unit_with_most_minutes() {
    // r2 was served by A (100 performed min) and B (200 min) in April: the goal goes to B.
    let mut may = input("r1", "A", "service", 60.0, 60.0, 60.0, 0.0, 0);
    may.month = "2024-05".parse().unwrap();
    let rows = [
        input("r2", "B", "service", 200.0, 200.0, 200.0, 0.0, 0),
        input("r2", "A", "service", 100.0, 100.0, 100.0, 0.0, 0),
        may,
    ];
    let pay = compute(&params(Basis::Performed), &rows, &[goal("r2", "g", true)]).unwrap();
    let keys: Vec<_> = pay
        .rows
        .iter()
        .map(|r| (r.unit_id.as_str(), r.month.to_string(), r.goals_fulfilled))
        .collect();
    assert_eq!(
        keys,
        [
            ("A", "2024-04".to_string(), 0),
            ("A", "2024-05".to_string(), 0),
            ("B", "2024-04".to_string(), 1)
        ]
    );
    // B: 200 min = 10/3 h × 382 = 1273.33… kr + 297.
    assert!(close(pay.rows[2].total_kr, 200.0 / 60.0 * 382.0 + 297.0));
}

#[test]
fn payment_csv_has_the_columns_and_hand_computed_amounts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("payment.csv");
    compute(&params(Basis::PerformedCapped), &fixture(), &goals())
        .unwrap()
        .write_payment_csv(&path)
        .unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(
        text,
        "unit_id,month,basis,hours,amount_kr,goal_premium_kr,total_kr,amount_granted_schablon_kr,amount_granted_ramtid_kr,amount_performed_kr,amount_performed_capped_kr\n\
         A,2024-04,performed_capped,9.91,4516.24,297.00,4813.24,4631.60,4042.10,5022.00,4516.24\n"
    );
}

#[test]
fn payment_csv_total_is_the_sum_of_the_rounded_amounts() {
    // 0.36 min at 1 kr/h = 0.006 kr → 0.01; a premium of 0.006 kr → 0.01; the total written is
    // 0.01 + 0.01 = 0.02 (rounding the unrounded total, 0.012, would give 0.01).
    let p = PaymentParams::new(Basis::Performed)
        .rate("s", 1.0)
        .goal_premium_kr(0.006)
        .check()
        .unwrap();
    let rows = [input("r1", "A", "s", 0.0, 0.0, 0.36, 0.0, 0)];
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("payment.csv");
    compute(&p, &rows, &[goal("r1", "g1", true)])
        .unwrap()
        .write_payment_csv(&path)
        .unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(
        text.lines().nth(1),
        Some("A,2024-04,performed,0.01,0.01,0.01,0.02,0.00,0.00,0.01,0.00")
    );
    assert_eq!(
        text.lines().next(),
        Some(PAYMENT_CSV_HEADER.join(",").as_str())
    );
}

#[test]
fn html_section_shows_every_basis_against_the_chosen_one() {
    // Performed is chosen (5022.00 kr); granted_ramtid pays 4042.10, i.e. −979.90 (−19.5 %).
    let mut rows = fixture();
    rows[1].unit_id = "<B&>".into();
    let pay = compute(&params(Basis::Performed), &rows, &goals()).unwrap();
    let h = pay.html_section();
    assert!(h.contains("&lt;B&amp;&gt;") && !h.contains("<B&>"), "{h}");
    let t = pay.totals_by_basis_kr();
    assert!(close(t[Basis::Performed.index()], 5022.00), "{t:?}");
    assert!(
        h.contains("<tr class=\"chosen\"><td>performed</td><td>5\u{202f}022.00</td><td>+0.00 (+0.0 %)</td></tr>"),
        "{h}"
    );
    assert!(
        h.contains("<td>granted_ramtid</td><td>4\u{202f}042.10</td><td>-979.90 (-19.5 %)</td>"),
        "{h}"
    );
}

const SOLNA: &str = r#"
basis = "performed_capped"
tolerance = 0.10
goal_premium_kr = 297

[rates]
personal_care = 464
service = 382

[declined]
short_notice_share = 0.5
absence_share = 0
"#;

#[test]
fn toml_config_reads_and_checks() {
    let p = PaymentConfig::from_toml_str(SOLNA, "<string>")
        .unwrap()
        .params()
        .check()
        .unwrap();
    assert_eq!(p, params(Basis::PerformedCapped));
}

#[test]
fn bad_config_key_is_named() {
    let bad = SOLNA.replace("goal_premium_kr", "goal_premium");
    let e = PaymentConfig::from_toml_str(&bad, "pay.toml").unwrap_err();
    let s = e.to_string();
    assert!(
        s.starts_with("payment config pay.toml: line 4, column 1: unknown field `goal_premium`"),
        "{s}"
    );

    // A key in a sub-table is named too.
    let bad = SOLNA.replace("absence_share", "absense_share");
    let s = PaymentConfig::from_toml_str(&bad, "pay.toml")
        .unwrap_err()
        .to_string();
    assert!(s.contains("unknown field `absense_share`"), "{s}");

    // A basis that is not one of the four.
    let bad = SOLNA.replace("performed_capped", "performed_time");
    let s = PaymentConfig::from_toml_str(&bad, "pay.toml")
        .unwrap_err()
        .to_string();
    assert!(s.contains("unknown variant `performed_time`"), "{s}");
}

#[test]
fn bad_config_value_is_named_by_the_check() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pay.toml");
    std::fs::write(&path, SOLNA.replace("service = 382", "service = -382")).unwrap();
    let e = CheckedPayment::load(&path).unwrap_err();
    match &e {
        ConfigError::Check { source, .. } => assert_eq!(source.key, "rates.service"),
        other => panic!("{other}"),
    }
    assert!(
        e.to_string()
            .ends_with("rates.service: -382 is not a rate >= 0 kr/h"),
        "{e}"
    );

    for (p, key) in [
        (PaymentParams::new(Basis::Performed), "rates"),
        (
            PaymentParams::new(Basis::Performed)
                .rate("s", 1.0)
                .tolerance(1.5),
            "tolerance",
        ),
        (
            PaymentParams::new(Basis::Performed)
                .rate("s", 1.0)
                .short_notice_share(f64::NAN),
            "declined.short_notice_share",
        ),
        (
            PaymentParams::new(Basis::Performed)
                .rate("s", 1.0)
                .absence_share(-0.1),
            "declined.absence_share",
        ),
        (
            PaymentParams::new(Basis::Performed)
                .rate("s", 1.0)
                .goal_premium_kr(f64::INFINITY),
            "goal_premium_kr",
        ),
    ] {
        assert_eq!(p.check_ref().unwrap_err().key, key);
    }
}

#[test]
fn unknown_category_and_bad_input_are_named() {
    let rows = [input("r1", "A", "nursing", 60.0, 60.0, 60.0, 0.0, 0)];
    let e = compute(&params(Basis::Performed), &rows, &[]).unwrap_err();
    assert_eq!(e.index, 0);
    assert!(
        e.to_string()
            .contains("category 'nursing'): the category has no rate"),
        "{e}"
    );
    let rows = [input("r1", "A", "service", 60.0, 60.0, 60.0, 0.0, 31)];
    let e = compute(&params(Basis::Performed), &rows, &[]).unwrap_err();
    assert!(e.message.starts_with("absence_days: 31"), "{e}");
    let rows = [
        input("r1", "A", "service", 60.0, 60.0, 60.0, 0.0, 0),
        input("r1", "A", "service", 60.0, f64::NAN, 60.0, 0.0, 0),
    ];
    let e = compute(&params(Basis::Performed), &rows, &[]).unwrap_err();
    assert_eq!(e.index, 1);
    assert!(e.message.starts_with("granted_ramtid_min: NaN"), "{e}");
}

fn goals_file(text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("goals.csv");
    std::fs::File::create(&path)
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    (dir, path)
}

#[test]
fn goals_file_reads() {
    let (_d, path) = goals_file(
        "recipient_id,goal_id,assessed,fulfilled\nr1,g1,2024-04-15,true\nr1,g2,2024-04-30,nej\nr9,g1,2024-04-01,1\n",
    );
    assert_eq!(read_goals(&path).unwrap(), goals());
}

#[test]
fn bad_goals_row_is_named_by_row_and_column() {
    let (_d, path) = goals_file(
        "recipient_id,goal_id,assessed,fulfilled\nr1,g1,2024-04-15,true\nr1,g2,2024-04-31,false\n",
    );
    let e = read_goals(&path).unwrap_err();
    match &e {
        GoalsError::Row { row, column, .. } => assert_eq!((*row, *column), (3, "assessed")),
        other => panic!("{other}"),
    }
    assert_eq!(
        e.to_string(),
        format!(
            "{}, row 3, column 'assessed': '2024-04-31': 2024-04 has no day 31",
            path.display()
        )
    );

    let (_d, path) =
        goals_file("recipient_id,goal_id,assessed,fulfilled\nr1,g1,2024-04-15,maybe\n");
    let s = read_goals(&path).unwrap_err().to_string();
    assert!(
        s.ends_with("row 2, column 'fulfilled': 'maybe' is not true/false, 1/0, yes/no or ja/nej"),
        "{s}"
    );

    let (_d, path) = goals_file(
        "recipient_id,goal_id,assessed,fulfilled\nr1,g1,2024-04-15,1\nr1,g1,2024-04-20,0\n",
    );
    let s = read_goals(&path).unwrap_err().to_string();
    assert!(
        s.contains(
            "row 3, column 'goal_id': goal 'g1' of recipient 'r1' is assessed twice in 2024-04"
        ),
        "{s}"
    );

    let (_d, path) = goals_file("recipient_id,goal,assessed,fulfilled\n");
    let s = read_goals(&path).unwrap_err().to_string();
    assert!(
        s.contains("row 1 (header): required column 'goal_id' is missing"),
        "{s}"
    );
}

#[test]
fn inputs_file_reads_and_a_bad_row_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("inputs.csv");
    std::fs::write(
        &path,
        "recipient_id,unit_id,month,category,granted_schablon_min,granted_ramtid_min,performed_min,declined_visits_planned_min,absence_days\n\
         r1,A,2024-04,personal_care,600,540,570,60,3\n\
         r1,A,2024-04,service,120,90,60,,\n",
    )
    .unwrap();
    // The second row has no absence days (empty), unlike the fixture's.
    let mut want = fixture();
    want[1].absence_days = 0;
    assert_eq!(read_payment_inputs(&path).unwrap(), want);

    // The optional columns may be left out.
    std::fs::write(
        &path,
        "unit_id,recipient_id,month,category,granted_schablon_min,granted_ramtid_min,performed_min\n\
         A,r1,2024-04,service,120,90,60\n\
         A,r1,2024-04,service,120,ninety,60\n",
    )
    .unwrap();
    let e = read_payment_inputs(&path).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "{}, row 3, column 'granted_ramtid_min': 'ninety' is not minutes >= 0",
            path.display()
        )
    );
    std::fs::write(
        &path,
        "recipient_id,unit_id,month,category,granted_schablon_min,granted_ramtid_min,performed_min,absence_days\n\
         r1,A,2024-02,service,1,1,1,30\n",
    )
    .unwrap();
    let s = read_payment_inputs(&path).unwrap_err().to_string();
    assert!(
        s.ends_with("row 2, column 'absence_days': '30' is not a number of days 0 to 29 (2024-02)"),
        "{s}"
    );
    std::fs::write(&path, "recipient_id,unit_id,month,category\n").unwrap();
    let s = read_payment_inputs(&path).unwrap_err().to_string();
    assert!(
        s.contains("row 1 (header): required column 'granted_schablon_min' is missing"),
        "{s}"
    );
}

#[test]
fn months_parse_and_have_their_days() {
    let days: Vec<u32> = [
        "2024-02", "2023-02", "2024-04", "2024-12", "1900-02", "2000-02",
    ]
    .iter()
    .map(|m| m.parse::<Month>().unwrap().days())
    .collect();
    assert_eq!(days, [29, 28, 30, 31, 28, 29]);
    for bad in ["2024-13", "2024-4", "24-04", "2024/04", ""] {
        assert!(bad.parse::<Month>().is_err(), "{bad}");
    }
}

#[test]
fn only_ordered_goals_earn_a_premium() {
    let (_d, path) = goals_file("recipient_id,goal_id\nr1,g1\nr1,g2\n");
    let ordered = read_ordered_goals(&path).unwrap();
    assert_eq!(ordered.len(), 2);
    let (kept, dropped) = keep_ordered(goals(), &ordered);
    assert_eq!(dropped, 1, "r9's g1 was never ordered");
    assert_eq!(kept, goals()[..2].to_vec());
    // r1's fulfilled g1 is still paid: the premium is unchanged, r9's was unattributed.
    let pay = compute(&params(Basis::Performed), &fixture(), &kept).unwrap();
    assert_eq!(pay.rows[0].goals_fulfilled, 1);
    assert_eq!(pay.goals.fulfilled, 1);
    // Nothing ordered: nothing paid.
    let (_d, none) = goals_file("recipient_id,goal_id\n");
    let (kept, dropped) = keep_ordered(goals(), &read_ordered_goals(&none).unwrap());
    let pay = compute(&params(Basis::Performed), &fixture(), &kept).unwrap();
    assert_eq!((dropped, pay.rows[0].goals_fulfilled), (3, 0));
    // A bad file is named by row and column.
    let (_d, bad) = goals_file("recipient_id,goal_id\nr1,\n");
    let e = read_ordered_goals(&bad).unwrap_err().to_string();
    assert!(e.ends_with("row 2, column 'goal_id': empty"), "{e}");
    let (_d, bad) = goals_file("recipient,goal_id\nr1,g1\n");
    let e = read_ordered_goals(&bad).unwrap_err().to_string();
    assert!(e.contains("'recipient_id' is missing"), "{e}");
}
