//! `ramtid estimate`: frame times for needs objects from the command line (ramtid-core).

use anyhow::Context as _;
use clap::{Subcommand, ValueEnum};
use ramtid_core::estimate::Estimate;
use ramtid_core::model::{resolve, Model};
use ramtid_core::needs::NeedsSet;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum Command {
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
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Format {
    Json,
    Csv,
}

impl Command {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        let Command::Estimate {
            model,
            needs,
            format,
            out,
        } = self;
        let dir = resolve(&model)?;
        let model = Model::load(&dir)?;
        let bytes =
            std::fs::read(&needs).with_context(|| format!("cannot read {}", needs.display()))?;
        let results = estimate_file(&model, &bytes).with_context(|| needs.display().to_string())?;
        let sink: Box<dyn Write> = match &out {
            Some(p) => Box::new(
                std::fs::File::create(p)
                    .with_context(|| format!("cannot write {}", p.display()))?,
            ),
            None => Box::new(std::io::stdout().lock()),
        };
        let mut w = BufWriter::new(sink);
        let failed = write_results(&mut w, &results, format, &needs.display().to_string())
            .context("cannot write results")?;
        w.flush().context("cannot write results")?;
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
}

/// One line's outcome: (line number, recipient id if known, estimate or error).
type LineResult = (usize, String, Result<Estimate, String>);

/// A file is either one needs object (possibly pretty-printed) or one per line; a line
/// that cannot be read fails alone, an empty file fails as a whole.
fn estimate_file(
    model: &Model,
    bytes: &[u8],
) -> Result<Vec<LineResult>, ramtid_core::needs::NeedsFileError> {
    Ok(ramtid_core::needs::parse_needs_file(bytes)?
        .into_iter()
        .map(|(line, set)| match set {
            Ok(set) => estimate_one(model, line, set),
            Err(e) => (line, String::new(), Err(e)),
        })
        .collect())
}

fn estimate_one(model: &Model, line: usize, set: NeedsSet) -> LineResult {
    match ramtid_core::cluster::validate_needs(&set, &model.catalog) {
        Ok(valid) => (
            line,
            set.recipient_id,
            Ok(ramtid_core::cluster::estimate_needs(
                model,
                &valid,
                ramtid_core::estimate::Detail::Full,
            )),
        ),
        // An id refused as a personal identity number is not copied into the output.
        Err(e) if ramtid_core::personnummer::looks_like_personnummer(&set.recipient_id) => {
            (line, String::new(), Err(e.to_string()))
        }
        Err(e) => (line, set.recipient_id, Err(e.to_string())),
    }
}

fn write_results(
    w: &mut impl Write,
    results: &[LineResult],
    format: Format,
    file: &str,
) -> std::io::Result<usize> {
    for (line, _, result) in results {
        match result {
            Err(msg) => eprintln!("{file}, line {line}: {msg}"),
            // The JSON carries the codes too; a CSV has no column for them.
            Ok(e) if !e.unlogged_codes.is_empty() => eprintln!(
                "{file}, line {line}: note: {} never in the training log; timed from the \
                 logged codes of the same category",
                e.unlogged_codes.join(", ")
            ),
            Ok(_) => {}
        }
    }
    let failed = results.iter().filter(|r| r.2.is_err()).count();
    match format {
        Format::Json => {
            for (line, id, result) in results {
                match result {
                    Ok(e) => serde_json::to_writer(&mut *w, e)?,
                    Err(msg) => serde_json::to_writer(
                        &mut *w,
                        &serde_json::json!({"line": line, "recipient_id": id, "error": msg}),
                    )?,
                }
                writeln!(w)?;
            }
        }
        Format::Csv => {
            let mut t = csv::Writer::from_writer(&mut *w);
            t.write_record([
                "recipient_id",
                "weekly_min",
                "weekly_staff_min",
                "monthly_min",
                "monthly_staff_min",
                "p10_weekly_min",
                "p90_weekly_min",
                "schablon_weekly_min",
                "visits_per_week",
                "model_version",
                "error",
            ])?;
            let n1 = |x: f64| format!("{x:.1}");
            for (line, id, result) in results {
                match result {
                    Ok(e) => t.write_record([
                        e.recipient_id.clone(),
                        n1(e.weekly_min),
                        n1(e.weekly_staff_min),
                        n1(e.monthly_min),
                        n1(e.monthly_staff_min),
                        n1(e.p10_weekly_min),
                        n1(e.p90_weekly_min),
                        n1(e.schablon_weekly_min),
                        format!("{:.2}", e.visits_per_week),
                        format!("{}/{}", e.model_name, e.model_version),
                        String::new(),
                    ])?,
                    Err(msg) => {
                        // The same columns, empty but for the id and the error.
                        let mut row = vec![String::new(); 11];
                        row[0] = id.clone();
                        row[10] = format!("line {line}: {msg}");
                        t.write_record(&row)?;
                    }
                }
            }
            t.flush()?;
        }
    }
    Ok(failed)
}
