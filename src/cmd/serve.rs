//! `ramtid serve`: the gRPC service.

use clap::Subcommand;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum Command {
    /// Runs one training for a server's TrainModel (a job on stdin, events on stdout).
    #[command(name = "train-worker", hide = true)]
    TrainWorker,
    /// Serve the gRPC API (estimation, models, health, reflection) and /metrics.
    /// Configuration: defaults < ramtid.toml (or --config) < RAMTID__SECTION__KEY < flags.
    Serve {
        /// Configuration file (TOML); default: ./ramtid.toml if present.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Overrides server.listen, e.g. 0.0.0.0:50051.
        #[arg(long)]
        listen: Option<String>,
        /// Overrides models.dir.
        #[arg(long)]
        models: Option<PathBuf>,
    },
}

impl Command {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        let (config, listen, models) = match self {
            Command::TrainWorker => {
                return Ok(ExitCode::from(ramtid_server::worker::run_child() as u8))
            }
            Command::Serve {
                config,
                listen,
                models,
            } => (config, listen, models),
        };
        let mut overrides = Vec::new();
        if let Some(l) = listen {
            overrides.push(("server.listen".to_string(), l));
        }
        if let Some(m) = models {
            overrides.push(("models.dir".to_string(), m.display().to_string()));
        }
        ramtid_server::server::run_serve(config, overrides)?;
        Ok(ExitCode::SUCCESS)
    }
}
