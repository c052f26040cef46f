//! `ramtid simulate`: a synthetic municipality (ramtid-sim).

use clap::Subcommand;
use ramtid_sim::{simulate, Municipality, SimConfig};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum Command {
    /// Write a synthetic municipality: catalog, visit log, held-out needs and their truth.
    Simulate {
        /// A named world (nordstad, sjobygd) or `random`: a municipality whose structure is
        /// drawn from wide priors by the seed (training/SIMULATION.md, section 10).
        #[arg(long, conflicts_with = "municipality")]
        world: Option<String>,
        /// A named world (the same as --world nordstad|sjobygd).
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
        /// With --world random: about this many insats codes (at least 14) instead of the
        /// drawn 14 to 32.
        #[arg(long)]
        codes: Option<usize>,
        #[arg(long)]
        out: PathBuf,
        /// Also map every code to an IBIC row (ICF code and levels) in catalog.toml's
        /// [[ibic]] section, and write needs_ibic.jsonl: needs.jsonl as IBIC rows with a goal
        /// per need (training/IBIC.md).
        #[arg(long)]
        ibic: bool,
    },
}

impl Command {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        let Command::Simulate {
            world,
            municipality,
            seed,
            recipients,
            weeks,
            holdout,
            codes,
            out,
            ibic,
        } = self;
        let with_ibic = |out: &std::path::Path| -> anyhow::Result<()> {
            if ibic {
                let n = ramtid_sim::ibic::write_ibic(out).map_err(|e| anyhow::anyhow!(e))?;
                eprintln!("IBIC: mapping in catalog.toml, {n} needs objects in needs_ibic.jsonl");
            }
            Ok(())
        };
        let municipality = match world.as_deref().map(str::trim) {
            Some(w) if w.eq_ignore_ascii_case("random") => {
                let s = ramtid_sim::random::simulate_random(
                    &ramtid_sim::random::RandomConfig {
                        seed,
                        recipients,
                        weeks,
                        holdout_recipients: holdout,
                        codes,
                    },
                    &out,
                )?;
                eprintln!(
                    "random world {seed}: wrote {} visit rows ({} visits) for {} recipients and {} held-out recipients to {}",
                    s.rows_written,
                    s.visits_written,
                    s.recipients,
                    s.holdout_recipients,
                    out.display()
                );
                with_ibic(&out)?;
                return Ok(ExitCode::SUCCESS);
            }
            Some(w) => w
                .parse::<Municipality>()
                .map_err(|e| anyhow::anyhow!("--world: {e}, or random"))?,
            None => municipality,
        };
        if codes.is_some() {
            anyhow::bail!(
                "--codes is for --world random (the named worlds have their own catalogs)"
            );
        }
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
        with_ibic(&out)?;
        Ok(ExitCode::SUCCESS)
    }
}
