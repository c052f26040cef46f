//! `ramtid rebudget`: the caseload under a candidate model (ramtid-report).

use clap::Subcommand;
use ramtid_core::model::{resolve, Model};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum Command {
    /// Re-budget the caseload: recompute every case's latest stored calculation under a
    /// candidate model; writes rebudget.json and report.html and prints a summary.
    Rebudget {
        /// The calculation history, sqlite://PATH or postgres://…
        #[arg(long)]
        history: String,
        /// The candidate: a model version folder (or name folder: its newest version).
        #[arg(long)]
        model: PathBuf,
        /// Folder for rebudget.json and report.html.
        #[arg(long)]
        out: PathBuf,
        /// How many of the cases that move most to list.
        #[arg(long, default_value_t = ramtid_report::rebudget::TOP_MOVERS)]
        top: usize,
    },
}

impl Command {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        let Command::Rebudget {
            history,
            model,
            out,
            top,
        } = self;
        let dir = resolve(&model)?;
        let model = Model::load(&dir)?;
        // Read only: a server may have the history open (and, on SQLite, own its journal).
        let store = ramtid_history::HistoryStore::open_read_only(&history)?;
        let summary = ramtid_report::rebudget::rebudget(&store, &model, top)?;
        let written = ramtid_report::rebudget::write_report(&summary, &out)?;
        print!("{}", summary.summary_text());
        for p in &written {
            eprintln!("wrote {}", p.display());
        }
        Ok(ExitCode::SUCCESS)
    }
}
