//! `ramtid train`: fit a model from a visit log and publish it (ramtid-core).

use clap::{Subcommand, ValueEnum};
use ramtid_core::fit::{Efficiency, FitSettings};
use ramtid_core::train::{check_model_name, train, TrainLimits, TrainRequest};
use ramtid_core::visits::CleaningRules;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum Command {
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
        /// How efficient time is defined.
        #[arg(long, value_enum, default_value_t = EfficiencyArg::TeamReference)]
        efficiency: EfficiencyArg,
        /// team-reference: the fastest teams that together performed this share of visits
        /// set the efficient level.
        #[arg(long, default_value_t = 0.5)]
        reference_quantile: f64,
        /// team-reference: teams slower than the reference by more than this are reported.
        #[arg(long, default_value_t = 0.10)]
        tolerance: f64,
        #[arg(long, default_value_t = 5)]
        folds: usize,
        /// Visits shorter than this many minutes are check-in errors.
        #[arg(long, default_value_t = 2.0)]
        min_visit_min: f64,
        /// Visits longer than this (and than 3× their schablon) are forgotten check-outs.
        #[arg(long, default_value_t = 180.0)]
        max_visit_min: f64,
        /// Print the full training summary as JSON on stdout.
        #[arg(long)]
        json: bool,
        /// Most insats codes in the catalog.
        #[arg(long, default_value_t = TrainLimits::default().max_codes)]
        max_codes: usize,
        /// Most encoded context columns in the catalog.
        #[arg(long, default_value_t = TrainLimits::default().max_context_columns)]
        max_context_columns: usize,
        /// Most coefficients in the model.
        #[arg(long, default_value_t = TrainLimits::default().max_features)]
        max_features: usize,
        /// Memory for the fit's statistics, MiB.
        #[arg(long, default_value_t = TrainLimits::default().max_memory_mb)]
        max_memory_mb: u64,
    },
}

#[derive(Clone, Copy, ValueEnum)]
pub enum EfficiencyArg {
    TeamReference,
    Pooled,
}

impl Command {
    pub fn run(self) -> Result<ExitCode, String> {
        let Command::Train {
            catalog,
            visits,
            out,
            name,
            rejects,
            efficiency,
            reference_quantile,
            tolerance,
            folds,
            min_visit_min,
            max_visit_min,
            json,
            max_codes,
            max_context_columns,
            max_features,
            max_memory_mb,
        } = self;
        check_model_name(&name)?;
        let rejects = rejects.unwrap_or_else(|| visits.with_extension("rejects.csv"));
        let settings = FitSettings {
            efficiency: match efficiency {
                EfficiencyArg::TeamReference => Efficiency::TeamReference {
                    quantile: reference_quantile,
                    tolerance,
                },
                EfficiencyArg::Pooled => Efficiency::Pooled,
            },
            folds,
            ..FitSettings::default()
        };
        let req = TrainRequest {
            catalog,
            visits,
            data_dir: None,
            limits: TrainLimits {
                max_codes,
                max_context_columns,
                max_features,
                max_memory_mb,
            },
            models_dir: out,
            name,
            rejects: Some(rejects),
            cleaning: CleaningRules {
                min_duration_min: min_visit_min,
                max_duration_min: max_visit_min,
                ..CleaningRules::default()
            },
            settings,
            progress: true,
        };
        let (_, s) = train(&req, |_| {}).map_err(|e| e.to_string())?;
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
        // With no recipient of enough visits the MAPE is an empty mean, not a figure.
        let recipient_mape = if f.calibration_recipients == 0 {
            format!(
                "recipient MAPE: no recipient qualified (none with at least {} visits)",
                req.settings.min_recipient_visits
            )
        } else {
            format!(
                "recipient MAPE {:.1}% ({} recipients)",
                100.0 * f.oof_recipient_mape,
                f.calibration_recipients
            )
        };
        eprintln!(
            "held-out recipients (cross-validated): visit MAE {:.2} min, R² {:.3}, {recipient_mape}, P10–P90 coverage {:.1}%",
            f.oof_visit_mae_min,
            f.oof_visit_r2,
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
}
