//! `ramtid simulate`: a synthetic municipality (ramtid-sim).

use clap::Subcommand;
use ramtid_sim::{simulate, Municipality, SimConfig};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum Command {
    /// Write a synthetic municipality: catalog, visit log, held-out needs and their truth.
    Simulate {
        #[arg(long, default_value = "nordstad")]
        municipality: Municipality,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[arg(long, default_value_t = 2000)]
        recipients: usize,
        #[arg(long, default_value_t = 8)]
        weeks: usize,
        /// Held-out recipients (not in the log) with their true weekly minutes.
        #[arg(long, default_value_t = 500)]
        holdout: usize,
        #[arg(long)]
        out: PathBuf,
    },
}

impl Command {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        let Command::Simulate {
            municipality,
            seed,
            recipients,
            weeks,
            holdout,
            out,
        } = self;
        let summary = simulate(
            &SimConfig {
                municipality,
                seed,
                recipients,
                weeks,
                holdout_recipients: holdout,
            },
            &out,
        )?;
        eprintln!(
            "wrote {} visit rows ({} visits) for {} recipients and {} held-out recipients to {}",
            summary.rows_written,
            summary.visits_written,
            summary.recipients,
            summary.holdout_recipients,
            out.display()
        );
        Ok(ExitCode::SUCCESS)
    }
}
