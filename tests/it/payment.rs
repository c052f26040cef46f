//! `ramtid payment` end to end: a configuration, input rows and goals in files, the
//! hand-computed amounts of the payment module's fixture out (the arithmetic is written out
//! in crates/ramtid-report/src/payment/tests.rs), and bad files refused by name.

use std::process::Command;

fn ramtid() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ramtid"))
}

const CONFIG: &str = "basis = \"performed_capped\"\ntolerance = 0.10\ngoal_premium_kr = 297\n\
[rates]\npersonal_care = 464\nservice = 382\n\
[declined]\nshort_notice_share = 0.5\nabsence_share = 0.0\n";

const INPUTS: &str = "recipient_id,unit_id,month,category,granted_schablon_min,granted_ramtid_min,performed_min,declined_visits_planned_min,absence_days\n\
r1,A,2024-04,personal_care,600,540,570,60,3\n\
r1,A,2024-04,service,120,90,60,0,3\n";

const GOALS: &str = "recipient_id,goal_id,assessed,fulfilled\n\
r1,g1,2024-04-15,true\nr1,g2,2024-04-20,false\nr9,g1,2024-04-15,ja\n";

#[test]
fn payment_per_unit_and_month_under_every_basis_with_the_goal_premium() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("pay.toml"), CONFIG).unwrap();
    std::fs::write(d.join("inputs.csv"), INPUTS).unwrap();
    std::fs::write(d.join("goals.csv"), GOALS).unwrap();
    let out = ramtid()
        .args(["payment", "--config", "pay.toml", "--inputs", "inputs.csv"])
        .args(["--goals", "goals.csv", "--out", "out"])
        .current_dir(d)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    // What each basis would pay in all, the chosen one first.
    assert!(
        err.contains("paid under performed_capped: 4516.24 kr"),
        "{err}"
    );
    assert!(err.contains("under granted_schablon"), "{err}");
    let csv = std::fs::read_to_string(d.join("out/payment.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines,
        [
            "unit_id,month,basis,hours,amount_kr,goal_premium_kr,total_kr,amount_granted_schablon_kr,amount_granted_ramtid_kr,amount_performed_kr,amount_performed_capped_kr",
            "A,2024-04,performed_capped,9.91,4516.24,297.00,4813.24,4631.60,4042.10,5022.00,4516.24",
        ]
    );
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.join("out/payment.json")).unwrap()).unwrap();
    assert_eq!(json["goals"]["unattributed"], 1, "{json}");
    let html = std::fs::read_to_string(d.join("out/payment.html")).unwrap();
    assert!(html.contains("class=\"chosen\""), "{html}");
    // No plots on the payment page; it must still open and fit the window.
    crate::browser::assert_plots_render(&d.join("out/payment.html"), &[], 0);
}

#[test]
fn a_bad_config_key_or_input_cell_is_named_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("pay.toml"),
        CONFIG.replace("goal_premium_kr", "goal_premium"),
    )
    .unwrap();
    std::fs::write(d.join("inputs.csv"), INPUTS).unwrap();
    let run = |config: &str, inputs: &str| {
        ramtid()
            .args([
                "payment", "--config", config, "--inputs", inputs, "--out", "out",
            ])
            .current_dir(d)
            .output()
            .unwrap()
    };
    let out = run("pay.toml", "inputs.csv");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("pay.toml") && err.contains("goal_premium"),
        "{err}"
    );
    assert!(
        !d.join("out").exists(),
        "the configuration is checked before anything is read"
    );

    std::fs::write(d.join("good.toml"), CONFIG).unwrap();
    std::fs::write(
        d.join("bad.csv"),
        INPUTS.replace("r1,A,2024-04,service,120", "r1,A,2024-04,service,lots"),
    )
    .unwrap();
    let out = run("good.toml", "bad.csv");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("bad.csv") && err.contains("row 3"), "{err}");
    assert!(err.contains("granted_schablon_min"), "{err}");
    assert!(!d.join("out").exists());
}
