//! `ramtid health`: the container health check.

use super::TlsArgs;
use clap::Subcommand;
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum Command {
    /// Ask a running server's health service; exit 0 when SERVING (container health checks).
    Health {
        #[arg(long, default_value = "127.0.0.1:50051")]
        addr: String,
        /// Service to ask about; empty: the whole server.
        #[arg(long, default_value = "")]
        service: String,
        #[arg(long, default_value_t = 2000)]
        timeout_ms: u64,
        #[command(flatten)]
        tls: TlsArgs,
    },
}

impl Command {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        let Command::Health {
            addr,
            service,
            timeout_ms,
            tls,
        } = self;
        let tls = tls.client_tls();
        let serving = ramtid::client::run_health(
            &addr,
            &service,
            std::time::Duration::from_millis(timeout_ms),
            tls.as_ref(),
        )
        .map_err(anyhow::Error::msg)?;
        Ok(if serving {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        })
    }
}
