//! `ramtid payment`: what each provider is paid per month under the municipality's payment
//! model, and beside it under every other basis (ramtid-report's `payment`).

use anyhow::Context as _;
use clap::Subcommand;
use ramtid_report::payment::{
    compute, keep_ordered, read_goals, read_ordered_goals, read_payment_inputs, Basis,
    CheckedPayment,
};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum Command {
    /// Payment per provider (unit_id) and month under the configured basis and, side by
    /// side, under every other basis, with the goal premium; writes payment.csv,
    /// payment.json and payment.html.
    Payment {
        /// The payment configuration (TOML: basis, tolerance, [rates], [declined],
        /// goal_premium_kr).
        #[arg(long)]
        config: PathBuf,
        /// One row per recipient, month and category: recipient_id,unit_id,month,category,
        /// granted_schablon_min,granted_ramtid_min,performed_min[,declined_visits_planned_min,absence_days].
        #[arg(long)]
        inputs: PathBuf,
        /// Goals followed up: recipient_id,goal_id,assessed,fulfilled.
        #[arg(long)]
        goals: Option<PathBuf>,
        /// The goals that were ordered (`ramtid follow-up`'s goals.csv: recipient_id,goal_id):
        /// when given, a fulfilled goal earns a premium only if it is listed here.
        #[arg(long, requires = "goals")]
        ordered_goals: Option<PathBuf>,
        /// Folder for the files written.
        #[arg(long)]
        out: PathBuf,
    },
}

impl Command {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        let Command::Payment {
            config,
            inputs,
            goals,
            ordered_goals,
            out,
        } = self;
        // The configuration is checked before any data is read.
        let params = CheckedPayment::load(&config)?;
        let rows = read_payment_inputs(&inputs)?;
        let goals = match &goals {
            Some(path) => read_goals(path)?,
            None => Vec::new(),
        };
        let goals = match &ordered_goals {
            Some(path) => {
                let (kept, dropped) = keep_ordered(goals, &read_ordered_goals(path)?);
                if dropped > 0 {
                    eprintln!(
                        "{dropped} followed-up goals were not ordered ({}) and earn no premium",
                        path.display()
                    );
                }
                kept
            }
            None => goals,
        };
        let payment = compute(&params, &rows, &goals)
            .map_err(|e| anyhow::anyhow!("{}: {e}", inputs.display()))?;
        std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
        let csv = out.join("payment.csv");
        payment
            .write_payment_csv(&csv)
            .with_context(|| format!("writing {}", csv.display()))?;
        let json = out.join("payment.json");
        std::fs::write(&json, serde_json::to_vec_pretty(&payment)?)
            .with_context(|| format!("writing {}", json.display()))?;
        let html = out.join("payment.html");
        std::fs::write(&html, page(&payment.html_section()))
            .with_context(|| format!("writing {}", html.display()))?;
        let totals = payment.totals_by_basis_kr();
        eprintln!(
            "{} unit-months; paid under {}: {:.2} kr (+ goal premium for {} fulfilled goals)",
            payment.rows.len(),
            payment.basis.name(),
            totals[payment.basis.index()],
            payment.goals.fulfilled
        );
        for b in Basis::ALL {
            eprintln!("  under {:<17} {:>14.2} kr", b.name(), totals[b.index()]);
        }
        for p in [&csv, &json, &html] {
            eprintln!("wrote {}", p.display());
        }
        Ok(ExitCode::SUCCESS)
    }
}

/// One page around the payment section, in the reports' own style (no scripts, nothing
/// fetched).
fn page(section: &str) -> String {
    let style = ramtid_report::evaluate::report::STYLE;
    format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>ramtid payment</title><style>{style}\n.chosen{{background:#eef5ff;font-weight:600}}</style></head><body><main>\
         <h1>Payment per provider and month</h1>\n{section}\n</main></body></html>\n"
    )
}
