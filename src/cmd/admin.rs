//! Administration helpers for the server's access control: `ramtid hash-token` and
//! `ramtid cert-fingerprint` print what to put in `[auth]`.

use anyhow::Context as _;
use clap::Subcommand;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum Command {
    /// Read a bearer token from stdin (one line) and print the hash to configure for it
    /// (`hash = "sha256:..."` in [[auth.tokens]]). The token itself is never stored.
    HashToken,
    /// Print a client certificate's SHA-256 fingerprint (PEM file, first certificate) for
    /// `[[auth.certificates]] sha256 = …`.
    CertFingerprint {
        /// The client's certificate (PEM).
        cert: PathBuf,
    },
}

impl Command {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        match self {
            Command::HashToken => {
                let mut line = String::new();
                std::io::stdin()
                    .read_line(&mut line)
                    .context("cannot read the token from stdin")?;
                let token = line.trim_end_matches(['\n', '\r']);
                if token.trim().is_empty() {
                    anyhow::bail!(
                        "no token on stdin: e.g. `printf %s \"$TOKEN\" | ramtid hash-token`"
                    );
                }
                println!("{}", ramtid_server::auth::hash_token(token));
                Ok(ExitCode::SUCCESS)
            }
            Command::CertFingerprint { cert } => {
                use rustls_pki_types::pem::PemObject;
                let der = rustls_pki_types::CertificateDer::from_pem_file(&cert)
                    .with_context(|| format!("{}: no PEM certificate", cert.display()))?;
                println!(
                    "{}",
                    ramtid_server::auth::fingerprint_text(&ramtid_server::auth::fingerprint(
                        der.as_ref()
                    ))
                );
                Ok(ExitCode::SUCCESS)
            }
        }
    }
}
