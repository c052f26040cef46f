//! `ramtid`: the command line. Each subcommand is a thin wrapper around the library.

use clap::{Parser, Subcommand, ValueEnum};
use ramtid_core::estimate::{estimate, Estimate};
use ramtid_core::model::{resolve, Model};
use ramtid_core::needs::NeedsSet;
use ramtid_core::params::Method;
use ramtid_core::train::{check_model_name, train, TrainRequest};
use ramtid_sim::{simulate, Municipality, SimConfig};
use std::io::{BufWriter, Write};
use std::path::PathBuf;
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

#[derive(Subcommand)]
enum Command {
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
    /// Train a model from a visit log and a catalog, and publish it as a new version.
    Train {
        #[arg(long)]
        catalog: PathBuf,
        #[arg(long)]
        visits: PathBuf,
        /// Models root; the model is written to <out>/<name>/<version>/.
        #[arg(long, default_value = "models")]
        out: PathBuf,
        #[arg(long, default_value = "default")]
        name: String,
        /// Where rejected rows go (row, column, reason). Default: beside the visit log.
        #[arg(long)]
        rejects: Option<PathBuf>,
        /// How efficient time is defined. Unset settings take the defaults of
        /// `ramtid_core::params::FitParams`; every setting is checked before the log is read.
        #[arg(long, value_enum)]
        efficiency: Option<EfficiencyArg>,
        /// team-reference: the fastest teams that together performed this share of visits
        /// set the efficient level (0 < q <= 1; default 0.5).
        #[arg(long)]
        reference_quantile: Option<f64>,
        /// team-reference: teams slower than the reference by more than this are reported
        /// (default 0.10).
        #[arg(long)]
        tolerance: Option<f64>,
        /// Cross-validation folds, grouped by recipient (2 to 20; default 5).
        #[arg(long)]
        folds: Option<usize>,
        /// Ridge penalties tried, comma-separated (default 0.3,1,3,10,30,100,300).
        #[arg(long, value_delimiter = ',')]
        lambdas: Option<Vec<f64>>,
        /// Seed of the recipients' fold assignment.
        #[arg(long)]
        seed: Option<u64>,
        /// Threads for the pass over the visits (default: the cores, at most 8).
        #[arg(long)]
        threads: Option<usize>,
        /// Visits shorter than this many minutes are check-in errors (default 2).
        #[arg(long)]
        min_visit_min: Option<f64>,
        /// Visits longer than this (and than 3× their schablon) are forgotten check-outs
        /// (default 180).
        #[arg(long)]
        max_visit_min: Option<f64>,
        /// Print the full training summary as JSON on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Estimate the frame time for one needs object or a needs.jsonl file.
    Estimate {
        /// A model version folder, a model name folder (its newest version) or a models root.
        #[arg(long, default_value = "models")]
        model: PathBuf,
        #[arg(long)]
        needs: PathBuf,
        #[arg(long, value_enum, default_value_t = Format::Json)]
        format: Format,
        /// Write here instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Evaluate a model on held-out recipients: person-week and per-visit error beside the
    /// stacked schablon and the best achievable; writes evaluation.json and report.html.
    Evaluate {
        /// A model version folder, a model name folder (its newest version) or a models root.
        #[arg(long, default_value = "models")]
        model: PathBuf,
        /// needs.jsonl of the held-out recipients.
        #[arg(long)]
        needs: PathBuf,
        /// truth.csv: recipient_id,true_weekly_min[,best_weekly_min,...].
        #[arg(long)]
        truth: PathBuf,
        /// Held-out visits (visits.csv columns plus efficient_min) for per-visit figures.
        #[arg(long)]
        visits: Option<PathBuf>,
        /// Folder for evaluation.json, report.html and recipients.csv.
        #[arg(long)]
        out: PathBuf,
        /// Store the figures in the model's manifest.
        #[arg(long)]
        record: bool,
    },
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
    /// Read a bearer token from stdin (one line) and print the hash to configure for it
    /// (`hash = "sha256:..."` in [[auth.tokens]]). The token itself is never stored.
    HashToken,
    /// Print a client certificate's SHA-256 fingerprint (PEM file, first certificate) for
    /// `[[auth.certificates]] sha256 = …`.
    CertFingerprint {
        /// The client's certificate (PEM).
        cert: PathBuf,
    },
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
        #[command(flatten)]
        tls: TlsArgs,
    },
}

/// How a client reaches a server with `[tls]` set.
#[derive(clap::Args, Debug, Clone)]
struct TlsArgs {
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
    fn client_tls(self) -> Option<ramtid::client::ClientTls> {
        self.tls_ca.map(|ca| ramtid::client::ClientTls {
            ca,
            domain: self.tls_domain,
            cert_and_key: self.tls_cert.zip(self.tls_key),
        })
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum EfficiencyArg {
    TeamReference,
    Pooled,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Json,
    Csv,
}

/// mimalloc: the service allocates per call on many threads, where glibc malloc contends
/// (measured: Estimate throughput +35% over loopback).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // `serve` installs the log format its configuration asks for (text or JSON).
    if !matches!(cli.command, Command::Serve { .. }) {
        tracing_subscriber::fmt()
            .with_writer(std::io::stderr)
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_env("RAMTID_LOG")
                    .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
            )
            .init();
    }
    match run(cli.command) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
    }
}

fn run(command: Command) -> Result<ExitCode, String> {
    match command {
        Command::Serve {
            config,
            listen,
            models,
        } => {
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
        Command::CertFingerprint { cert } => {
            use rustls_pki_types::pem::PemObject;
            let der = rustls_pki_types::CertificateDer::from_pem_file(&cert)
                .map_err(|e| format!("{}: no PEM certificate: {e}", cert.display()))?;
            println!(
                "{}",
                ramtid_server::auth::fingerprint_text(&ramtid_server::auth::fingerprint(
                    der.as_ref()
                ))
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::HashToken => {
            let mut line = String::new();
            std::io::stdin()
                .read_line(&mut line)
                .map_err(|e| format!("cannot read the token from stdin: {e}"))?;
            let token = line.trim_end_matches(['\n', '\r']);
            if token.trim().is_empty() {
                return Err(
                    "no token on stdin: e.g. `printf %s \"$TOKEN\" | ramtid hash-token`".into(),
                );
            }
            println!("{}", ramtid_server::auth::hash_token(token));
            Ok(ExitCode::SUCCESS)
        }
        Command::Health {
            addr,
            service,
            timeout_ms,
            tls,
        } => {
            let tls = tls.client_tls();
            let serving = ramtid::client::run_health(
                &addr,
                &service,
                std::time::Duration::from_millis(timeout_ms),
                tls.as_ref(),
            )?;
            Ok(if serving {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Command::Load {
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
            tls,
        } => {
            let token = match token_env {
                Some(var) => Some(std::env::var(&var).map_err(|_| {
                    format!("--token-env {var}: the environment variable {var} is not set")
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
            })?;
            println!("{report}");
            Ok(if report.failures == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Command::Simulate {
            municipality,
            seed,
            recipients,
            weeks,
            holdout,
            out,
        } => {
            let summary = simulate(
                &SimConfig {
                    municipality,
                    seed,
                    recipients,
                    weeks,
                    holdout_recipients: holdout,
                },
                &out,
            )
            .map_err(|e| e.to_string())?;
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
        Command::Train {
            catalog,
            visits,
            out,
            name,
            rejects,
            efficiency,
            reference_quantile,
            tolerance,
            folds,
            lambdas,
            seed,
            threads,
            min_visit_min,
            max_visit_min,
            json,
        } => {
            // Settings first: a bad one fails at once, before any file is opened.
            let params = ramtid::train::fit_params(&ramtid::train::TrainFlags {
                efficiency: efficiency.map(|e| match e {
                    EfficiencyArg::TeamReference => Method::TeamReference,
                    EfficiencyArg::Pooled => Method::Pooled,
                }),
                reference_quantile,
                tolerance,
                folds,
                lambdas,
                seed,
                threads,
                min_visit_min,
                max_visit_min,
            })
            .map_err(|e| e.to_string())?;
            check_model_name(&name)?;
            let rejects = rejects.unwrap_or_else(|| visits.with_extension("rejects.csv"));
            let req = TrainRequest {
                catalog,
                visits,
                models_dir: out,
                name,
                rejects: Some(rejects),
                params,
            };
            let bars = ramtid::progress::Bars::on_terminal();
            let trained = train(&req, &bars);
            bars.finish();
            let (_, s) = trained.map_err(|e| e.to_string())?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&s).expect("summary serializes")
                );
            }
            let r = &s.read;
            eprintln!(
                "model {} version {} written to {}",
                s.name, s.version, s.model_dir
            );
            eprintln!(
                "rows: {} read, {} used, {} rejected, {} flagged (duplicates {}, forgotten check-outs {}, 0–1 minute {})",
                r.rows_read, r.rows_used, r.rows_rejected, r.rows_flagged,
                r.flagged_duplicate, r.flagged_forgotten_checkout, r.flagged_too_short
            );
            for (code, n) in &r.unknown_codes {
                eprintln!("  unknown insats code '{code}': {n} rows rejected");
            }
            for (col, n) in &r.rejected_by_column {
                eprintln!("  rejected for column '{col}': {n} rows");
            }
            if let Some(first) = r.first_rejects.first() {
                eprintln!(
                    "  first reject: row {}, column '{}': {} (all in {})",
                    first.row,
                    first.column,
                    first.reason,
                    r.rejects_file.as_deref().unwrap_or("-")
                );
            }
            if !r.ignored_columns.is_empty() {
                eprintln!("  ignored columns: {}", r.ignored_columns.join(", "));
            }
            let f = &s.fit;
            eprintln!(
                "fit: {} visits, {} recipients, {} features ({} task pairs), λ = {}",
                f.visits, f.recipients, f.features, f.pairs, f.lambda
            );
            eprintln!(
                "efficiency: {:.1}% of visits by teams judged inefficient, on average {:.1}% slower; logged time is {:.1}% above efficient",
                100.0 * f.share_visits_inefficient,
                100.0 * f.mean_excess_inefficient,
                100.0 * (f.logged_over_efficient - 1.0)
            );
            for t in f.teams.iter().filter(|t| t.inefficient) {
                eprintln!(
                    "  team {}: {:+.1}% ({} visits)",
                    t.unit_id,
                    100.0 * (t.multiplier - 1.0),
                    t.visits
                );
            }
            eprintln!(
                "held-out recipients (cross-validated): visit MAE {:.2} min, R² {:.3}, recipient MAPE {:.1}%, P10–P90 coverage {:.1}%",
                f.oof_visit_mae_min,
                f.oof_visit_r2,
                100.0 * f.oof_recipient_mape,
                100.0 * f.oof_visit_interval_coverage
            );
            eprintln!(
                "time: reading {:.1} s, fitting {:.1} s; peak memory {} MB (visit table {:.0} MB)",
                s.seconds_reading,
                s.seconds_fitting,
                s.peak_rss_mb.map_or("?".into(), |m| format!("{m:.0}")),
                s.table_mb
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Estimate {
            model,
            needs,
            format,
            out,
        } => {
            let dir = resolve(&model).map_err(|e| e.to_string())?;
            let model = Model::load(&dir).map_err(|e| e.to_string())?;
            let text = std::fs::read_to_string(&needs)
                .map_err(|e| format!("cannot read {}: {e}", needs.display()))?;
            let results = estimate_text(&model, &text);
            let sink: Box<dyn Write> = match &out {
                Some(p) => Box::new(
                    std::fs::File::create(p)
                        .map_err(|e| format!("cannot write {}: {e}", p.display()))?,
                ),
                None => Box::new(std::io::stdout().lock()),
            };
            let mut w = BufWriter::new(sink);
            let failed = write_results(&mut w, &results, format, &needs.display().to_string())
                .map_err(|e| format!("cannot write results: {e}"))?;
            w.flush()
                .map_err(|e| format!("cannot write results: {e}"))?;
            if failed > 0 {
                eprintln!(
                    "{failed} of {} needs objects had errors; the others were estimated",
                    results.len()
                );
                Ok(ExitCode::from(1))
            } else {
                Ok(ExitCode::SUCCESS)
            }
        }
        Command::Evaluate {
            model,
            needs,
            truth,
            visits,
            out,
            record,
        } => {
            let dir = resolve(&model).map_err(|e| e.to_string())?;
            let mut model = Model::load(&dir).map_err(|e| e.to_string())?;
            let inputs = ramtid_report::evaluate::EvaluateInputs {
                needs,
                truth,
                visits,
            };
            let evaluation =
                ramtid_report::evaluate::evaluate(&model, &inputs).map_err(|e| e.to_string())?;
            let written = ramtid_report::evaluate::write_report(&evaluation, &out)
                .map_err(|e| e.to_string())?;
            eprint!("{}", evaluation.summary_table());
            for p in &written {
                eprintln!("wrote {}", p.display());
            }
            if record {
                model
                    .record_evaluation(evaluation.to_json())
                    .map_err(|e| e.to_string())?;
                eprintln!("recorded in {}", dir.join("manifest.json").display());
            }
            if evaluation.data.needs_failed > 0 {
                for p in &evaluation.data.needs_problems {
                    eprintln!("{}, line {}: {}", inputs.needs.display(), p.line, p.message);
                }
                eprintln!(
                    "warning: {} of {} needs lines failed and were left out (listed in report.html)",
                    evaluation.data.needs_failed, evaluation.data.needs_lines
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Rebudget {
            history,
            model,
            out,
            top,
        } => {
            let dir = resolve(&model).map_err(|e| e.to_string())?;
            let model = Model::load(&dir).map_err(|e| e.to_string())?;
            // Read only: a server may have the history open (and, on SQLite, own its journal).
            let store = ramtid_history::HistoryStore::open_read_only(&history)
                .map_err(|e| e.to_string())?;
            let summary = ramtid_report::rebudget::rebudget(&store, &model, top)
                .map_err(|e| e.to_string())?;
            let written =
                ramtid_report::rebudget::write_report(&summary, &out).map_err(|e| e.to_string())?;
            print!("{}", summary.summary_text());
            for p in &written {
                eprintln!("wrote {}", p.display());
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// One line's outcome: (line number, recipient id if known, estimate or error).
type LineResult = (usize, String, Result<Estimate, String>);

/// A file is either one needs object (possibly pretty-printed) or one per line.
fn estimate_text(model: &Model, text: &str) -> Vec<LineResult> {
    if let Ok(single) = serde_json::from_str::<NeedsSet>(text) {
        return vec![estimate_one(model, 1, single)];
    }
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, line)| match serde_json::from_str::<NeedsSet>(line) {
            Ok(set) => estimate_one(model, i + 1, set),
            Err(e) => (
                i + 1,
                String::new(),
                Err(format!("not a needs object: {e}")),
            ),
        })
        .collect()
}

fn estimate_one(model: &Model, line: usize, set: NeedsSet) -> LineResult {
    match set.validate(&model.catalog) {
        Ok(valid) => (line, set.recipient_id, Ok(estimate(model, &valid))),
        Err(e) => (line, set.recipient_id, Err(e.to_string())),
    }
}

fn write_results(
    w: &mut impl Write,
    results: &[LineResult],
    format: Format,
    file: &str,
) -> std::io::Result<usize> {
    let mut failed = 0;
    if let Format::Csv = format {
        writeln!(w, "recipient_id,weekly_min,weekly_staff_min,monthly_min,monthly_staff_min,p10_weekly_min,p90_weekly_min,schablon_weekly_min,visits_per_week,model_version,error")?;
    }
    for (line, id, result) in results {
        match (result, format) {
            (Ok(e), Format::Json) => {
                serde_json::to_writer(&mut *w, e)?;
                writeln!(w)?;
            }
            (Ok(e), Format::Csv) => writeln!(
                w,
                "{},{:.1},{:.1},{:.1},{:.1},{:.1},{:.1},{:.1},{:.2},{},",
                csv_field(&e.recipient_id),
                e.weekly_min,
                e.weekly_staff_min,
                e.monthly_min,
                e.monthly_staff_min,
                e.p10_weekly_min,
                e.p90_weekly_min,
                e.schablon_weekly_min,
                e.visits_per_week,
                csv_field(&format!("{}/{}", e.model_name, e.model_version))
            )?,
            (Err(msg), fmt) => {
                failed += 1;
                eprintln!("{file}, line {line}: {msg}");
                match fmt {
                    Format::Json => {
                        serde_json::to_writer(
                            &mut *w,
                            &serde_json::json!({"line": line, "recipient_id": id, "error": msg}),
                        )?;
                        writeln!(w)?;
                    }
                    Format::Csv => writeln!(
                        w,
                        "{},,,,,,,,,,{}",
                        csv_field(id),
                        csv_field(&format!("line {line}: {msg}"))
                    )?,
                }
            }
        }
    }
    Ok(failed)
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}
