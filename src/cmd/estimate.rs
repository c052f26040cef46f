//! `ramtid estimate`: frame times for needs objects from the command line (ramtid-core).

use clap::{Subcommand, ValueEnum};
use ramtid_core::estimate::{estimate, Estimate};
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
    pub fn run(self) -> Result<ExitCode, String> {
        let Command::Estimate {
            model,
            needs,
            format,
            out,
        } = self;
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
