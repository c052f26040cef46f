//! `ramtid evaluate`: a model on held-out recipients (ramtid-report).

use clap::Subcommand;
use ramtid_core::model::{resolve, Model};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum Command {
    /// Evaluate a model on held-out recipients: person-week and per-visit error beside the
    /// stacked schablon and the best achievable; writes evaluation.json and report.html.
    Evaluate {
        /// A model version folder, a model name folder (its newest version) or a models root.
        #[arg(long, default_value = "models")]
        model: PathBuf,
        /// needs.jsonl of the held-out recipients.
        #[arg(long)]
        needs: PathBuf,
        /// truth.csv: recipient_id,true_weekly_min[,best_weekly_min,...].
        #[arg(long)]
        truth: PathBuf,
        /// Held-out visits (visits.csv columns plus efficient_min) for per-visit figures.
        #[arg(long)]
        visits: Option<PathBuf>,
        /// Folder for evaluation.json, report.html and recipients.csv.
        #[arg(long)]
        out: PathBuf,
        /// Store the figures in the model's manifest.
        #[arg(long)]
        record: bool,
    },
}

impl Command {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        let Command::Evaluate {
            model,
            needs,
            truth,
            visits,
            out,
            record,
        } = self;
        let dir = resolve(&model)?;
        let mut model = Model::load(&dir)?;
        let inputs = ramtid_report::evaluate::EvaluateInputs {
            needs,
            truth,
            visits,
        };
        let evaluation = ramtid_report::evaluate::evaluate(&model, &inputs)?;
        let written = ramtid_report::evaluate::write_report(&evaluation, &out)?;
        eprint!("{}", evaluation.summary_table());
        for p in &written {
            eprintln!("wrote {}", p.display());
        }
        if record {
            model.record_evaluation(evaluation.to_json())?;
            eprintln!("recorded in {}", dir.join("manifest.json").display());
        }
        if evaluation.data.needs_failed > 0 {
            for p in &evaluation.data.needs_problems {
                eprintln!("{}, line {}: {}", inputs.needs.display(), p.line, p.message);
            }
            eprintln!(
                "warning: {} of {} needs lines failed and were left out (listed in report.html)",
                evaluation.data.needs_failed, evaluation.data.needs_lines
            );
        }
        Ok(ExitCode::SUCCESS)
    }
}
