//! `ramtid validate`: random worlds, simulated, trained on and scored end to end.

use anyhow::Context as _;
use clap::Subcommand;
use ramtid::validate::{table_header, table_row, validate, write_outputs, ValidateOptions};
use ramtid_core::params::{FitParams, ParamGuard};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum Command {
    /// Validate on random worlds: per world simulate, train on the dirty log, estimate the
    /// held-out recipients from their needs and score; writes validation.json and report.html.
    Validate(ValidateArgs),
}

impl Command {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        let Command::Validate(args) = self;
        run(args)?;
        Ok(ExitCode::SUCCESS)
    }
}

#[derive(clap::Args, Debug, Clone)]
pub struct ValidateArgs {
    /// Number of random worlds; their seeds are SEED, SEED+1, …
    #[arg(long, default_value_t = 20)]
    pub worlds: usize,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Folder for validation.json, report.html and one folder per world.
    #[arg(long)]
    pub out: PathBuf,
    /// Training recipients per world.
    #[arg(long, default_value_t = ramtid::validate::DEFAULT_RECIPIENTS)]
    pub recipients: usize,
    /// Weeks of log per world.
    #[arg(long, default_value_t = ramtid::validate::DEFAULT_WEEKS)]
    pub weeks: usize,
    /// Held-out recipients per world.
    #[arg(long, default_value_t = ramtid::validate::DEFAULT_HOLDOUT)]
    pub holdout: usize,
    /// Keep each world's visits.csv (removed after training by default).
    #[arg(long)]
    pub keep_logs: bool,
    /// As in `ramtid train`: the fastest teams that together performed this share of the
    /// visits set the efficient level (the team-reference method; by default the
    /// best-practice frontier).
    #[arg(long)]
    pub reference_quantile: Option<f64>,
}

pub fn run(args: ValidateArgs) -> anyhow::Result<()> {
    let command = format!(
        "ramtid validate --worlds {} --seed {} --recipients {} --weeks {} --holdout {}{} --out {}",
        args.worlds,
        args.seed,
        args.recipients,
        args.weeks,
        args.holdout,
        args.reference_quantile
            .map(|q| format!(" --reference-quantile {q}"))
            .unwrap_or_default(),
        args.out.display()
    );
    // Checked before any world is drawn: a bad quantile fails at once, naming it.
    let mut params = FitParams::new();
    if let Some(q) = args.reference_quantile {
        params = params.reference_quantile(q);
    }
    let params = params.check().context("--reference-quantile")?;
    let opts = ValidateOptions {
        worlds: args.worlds,
        seed: args.seed,
        out: args.out.clone(),
        recipients: args.recipients,
        weeks: args.weeks,
        holdout: args.holdout,
        params,
        keep_logs: args.keep_logs,
    };
    print!("{}", table_header());
    let v = validate(&opts, &command, |w| {
        print!("{}", table_row(w));
        use std::io::Write;
        let _ = std::io::stdout().flush();
    })?;
    print!("{}", ramtid::validate::summary_text(&v));
    for p in write_outputs(&v, &args.out)? {
        eprintln!("wrote {}", p.display());
    }
    Ok(())
}
