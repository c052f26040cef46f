//! `ramtid follow-up`: ordered against performed time per recipient and month, and the
//! providers compared adjusted for case mix (ramtid-report).

use clap::Subcommand;
use ramtid_core::model::{resolve, Model};
use ramtid_report::followup::{
    follow_up, write_report, FollowUpInputs, FollowUpOptions, Month, DEFAULT_AGE_VARIABLE,
    DEFAULT_REASSESS_AFTER,
};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum Command {
    /// Follow up ordered against performed time: per recipient and month the ratio and its
    /// band, months in a row outside it, and a provider index adjusted for case mix; writes
    /// recipients.csv, providers.csv, followup.json and report.html, and goals.csv
    /// (recipient_id,goal_id) when the orders name goals.
    FollowUp {
        /// A model version folder, a model name folder (its newest version) or a models root.
        #[arg(long, default_value = "models")]
        model: PathBuf,
        /// What was ordered: a CSV recipient_id,weekly_min[,valid_from], a needs.jsonl
        /// (estimated with the model), or the calculation history (sqlite://PATH or
        /// postgres://…: each case's latest calculation, the case id as recipient_id).
        #[arg(long)]
        orders: PathBuf,
        /// The visit log (data contract visits.csv), cleaned as for training.
        #[arg(long)]
        visits: PathBuf,
        /// Folder for the files written.
        #[arg(long)]
        out: PathBuf,
        /// Allowed overrun as a share in (0, 1]: under below 1 − t, over above 1 + t.
        #[arg(long, default_value_t = 0.10)]
        tolerance: f64,
        /// Report only this month (YYYY-MM).
        #[arg(long)]
        month: Option<String>,
        /// Months in a row outside the band before a recipient is flagged for reassessment.
        #[arg(long, default_value_t = DEFAULT_REASSESS_AFTER)]
        reassess_after: u32,
        /// Inhabitants per age band (CSV age_band,inhabitants, bands such as 65-79 and 80+),
        /// for consumption per inhabitant aged 80+ and year (KPB).
        #[arg(long)]
        population: Option<PathBuf>,
        /// The numeric context variable that holds the recipient's age [default: age].
        #[arg(long)]
        age_variable: Option<String>,
    },
}

impl Command {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        let Command::FollowUp {
            model,
            orders,
            visits,
            out,
            tolerance,
            month,
            reassess_after,
            population,
            age_variable,
        } = self;
        // Settings first: a bad tolerance or month is refused before any file is read.
        let opts = FollowUpOptions {
            tolerance,
            month: month
                .as_deref()
                .map(Month::parse)
                .transpose()
                .map_err(|e| anyhow::anyhow!("--month: {e}"))?,
            reassess_after,
            age_variable_given: age_variable.is_some(),
            age_variable: age_variable.unwrap_or_else(|| DEFAULT_AGE_VARIABLE.to_string()),
            ..FollowUpOptions::default()
        };
        opts.check()?;
        let dir = resolve(&model)?;
        let model = Model::load(&dir)?;
        let f = follow_up(
            &model,
            &FollowUpInputs {
                orders,
                visits,
                population,
            },
            &opts,
        )?;
        let written = write_report(&f, &out)?;
        let s = &f.summary;
        eprintln!(
            "{} recipient-months of {} recipients; performed ÷ ordered {}; bands: {}; {} to reassess; {} units",
            s.recipient_months,
            s.recipients,
            s.ratio.map_or("–".into(), |r| format!("{r:.3}")),
            s.bands
                .iter()
                .map(|(b, n)| format!("{b} {n}"))
                .collect::<Vec<_>>()
                .join(", "),
            s.reassess,
            f.providers.len()
        );
        eprintln!(
            "visit log: {} rows read, {} used, {} rejected, {} flagged (left out)",
            f.visits.rows_read, f.visits.rows_used, f.visits.rows_rejected, f.visits.rows_flagged
        );
        if f.orders.failed > 0 {
            for p in &f.orders.problems {
                eprintln!("{}, line {}: {}", f.orders.file, p.line, p.message);
            }
            eprintln!(
                "warning: {} of {} orders failed and were left out",
                f.orders.failed, f.orders.rows
            );
        }
        let c = &f.consumption;
        if let Some(x) = c.staff_hours_per_inhabitant_80_plus_year {
            eprintln!(
                "consumption: {x:.1} staff hours per inhabitant aged 80+ and year ({} inhabitants, {} days)",
                c.inhabitants_80_plus.unwrap_or(0),
                c.days
            );
        }
        for p in &written {
            eprintln!("wrote {}", p.display());
        }
        Ok(ExitCode::SUCCESS)
    }
}
