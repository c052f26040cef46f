//! `ramtid`: the command line. This file parses and dispatches; each subcommand group is a
//! module of `cmd/` with its own clap `Subcommand` enum, flattened here into one command line.

mod cmd;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "ramtid",
    version,
    about = "Context-aware frame time (ramtid) for home care"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The subcommand groups, in the order `ramtid --help` lists them.
#[derive(Subcommand)]
enum Command {
    #[command(flatten)]
    Simulate(cmd::simulate::Command),
    #[command(flatten)]
    Train(cmd::train::Command),
    #[command(flatten)]
    Estimate(cmd::estimate::Command),
    #[command(flatten)]
    Evaluate(cmd::evaluate::Command),
    #[command(flatten)]
    Catalog(cmd::catalog::Command),
    #[command(flatten)]
    FollowUp(cmd::followup::Command),
    #[command(flatten)]
    Payment(cmd::payment::Command),
    #[command(flatten)]
    Rebudget(cmd::rebudget::Command),
    #[command(flatten)]
    Serve(cmd::serve::Command),
    #[command(flatten)]
    Admin(cmd::admin::Command),
    #[command(flatten)]
    Health(cmd::health::Command),
    #[command(flatten)]
    Load(cmd::load::Command),
    #[command(flatten)]
    Validate(cmd::validate::Command),
}

/// mimalloc: the service allocates per call on many threads, where glibc malloc contends
/// (measured: Estimate throughput +35% over loopback).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // `serve` installs the log format its configuration asks for (text or JSON).
    if !matches!(cli.command, Command::Serve(_)) {
        tracing_subscriber::fmt()
            .with_writer(std::io::stderr)
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_env("RAMTID_LOG")
                    .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
            )
            .init();
    }
    let result = match cli.command {
        Command::Simulate(c) => c.run(),
        Command::Train(c) => c.run(),
        Command::Estimate(c) => c.run(),
        Command::Evaluate(c) => c.run(),
        Command::Catalog(c) => c.run(),
        Command::FollowUp(c) => c.run(),
        Command::Payment(c) => c.run(),
        Command::Rebudget(c) => c.run(),
        Command::Serve(c) => c.run(),
        Command::Admin(c) => c.run(),
        Command::Health(c) => c.run(),
        Command::Load(c) => c.run(),
        Command::Validate(c) => c.run(),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", chain(&e));
            ExitCode::from(2)
        }
    }
}

/// An error and its causes, joined with ": ". A cause that the message before it already
/// quotes is left out (many messages end with their source's, for the log's sake).
fn chain(e: &anyhow::Error) -> String {
    let mut out = e.to_string();
    for cause in e.chain().skip(1) {
        let text = cause.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
    }
    out
}
