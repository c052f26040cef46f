//! `ramtid load`: the load harness (ramtid::client::load).

use super::TlsArgs;
use clap::Subcommand;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum Command {
    /// Load harness: drive Estimate (or EstimateBatch) over loopback at fixed concurrency and
    /// print requests/s and p50/p99 latency. Without --addr, starts a server in-process.
    Load {
        /// A running server; default: start one in this process from the configuration.
        #[arg(long)]
        addr: Option<String>,
        #[arg(long)]
        config: Option<PathBuf>,
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
        #[arg(long, default_value_t = 10.0)]
        seconds: f64,
        #[arg(long, default_value_t = 4)]
        connections: usize,
        /// Drive an empty handler that returns a response of the same size (the ceiling).
        #[arg(long)]
        ceiling: bool,
        /// Activate this model (name/version) while the harness runs.
        #[arg(long)]
        activate: Option<String>,
        /// Seconds into the run to activate --activate.
        #[arg(long, default_value_t = 2.0)]
        activate_at: f64,
        /// EstimateBatch mode: stream this needs.jsonl repeatedly (totals only).
        #[arg(long)]
        batch: Option<PathBuf>,
        /// Needs sets per EstimateBatch message.
        #[arg(long, default_value_t = 1000)]
        chunk: usize,
        /// Name a case in every Estimate, cycling over this many pseudonymous case ids, so
        /// that the server stores each calculation in its history (0: none).
        #[arg(long, default_value_t = 0)]
        case_ids: usize,
        /// The in-process server's history URL (overrides the configuration), e.g.
        /// sqlite:///tmp/load.db; "" disables the history.
        #[arg(long)]
        history: Option<String>,
        /// Send the bearer token held in this environment variable (a server with
        /// `auth.enabled`); the token itself never goes on the command line.
        #[arg(long, value_name = "VAR")]
        token_env: Option<String>,
        /// Start a TrainModel of this catalog and visit log (paths in the server's data
        /// directory) one second in, and report Estimate latency during it apart.
        #[arg(long, num_args = 2, value_names = ["CATALOG", "VISITS"])]
        train_during: Option<Vec<String>>,
        #[command(flatten)]
        tls: TlsArgs,
    },
}

impl Command {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        let Command::Load {
            addr,
            config,
            concurrency,
            seconds,
            connections,
            ceiling,
            activate,
            activate_at,
            batch,
            chunk,
            case_ids,
            history,
            token_env,
            train_during,
            tls,
        } = self;
        let token = match token_env {
            Some(var) => Some(std::env::var(&var).map_err(|_| {
                anyhow::anyhow!("--token-env {var}: the environment variable {var} is not set")
            })?),
            None => None,
        };
        let report = ramtid::client::run_load(&ramtid::client::LoadOptions {
            addr,
            config,
            concurrency,
            seconds,
            connections,
            ceiling,
            activate,
            activate_at,
            batch,
            chunk,
            case_ids,
            history,
            token,
            tls: tls.client_tls(),
            train_during: train_during.map(|v| (v[0].clone(), v[1].clone())),
        })
        .map_err(anyhow::Error::msg)?;
        println!("{report}");
        Ok(if report.failures == 0 {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        })
    }
}
