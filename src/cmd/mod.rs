//! One module per subcommand group. Each group is a clap `Subcommand` enum with its own
//! `run`; `main.rs` flattens the groups into one command line and dispatches to them, so a
//! new subcommand is a new variant here (or a new module) and one line in `main.rs`.

pub mod admin;
pub mod catalog;
pub mod estimate;
pub mod evaluate;
pub mod followup;
pub mod health;
pub mod load;
pub mod payment;
pub mod rebudget;
pub mod serve;
pub mod simulate;
pub mod train;
pub mod validate;

use std::path::PathBuf;

/// How a client reaches a server with `[tls]` set (`ramtid health`, `ramtid load`).
#[derive(clap::Args, Debug, Clone)]
pub struct TlsArgs {
    /// The server uses TLS: trust this CA (PEM).
    #[arg(long)]
    tls_ca: Option<PathBuf>,
    /// With --tls-ca: the server name its certificate carries.
    #[arg(long, default_value = "localhost")]
    tls_domain: String,
    /// With --tls-ca, when the server requires client certificates: ours (PEM).
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
}

impl TlsArgs {
    pub fn client_tls(self) -> Option<ramtid::client::ClientTls> {
        self.tls_ca.map(|ca| ramtid::client::ClientTls {
            ca,
            domain: self.tls_domain,
            cert_and_key: self.tls_cert.zip(self.tls_key),
        })
    }
}
