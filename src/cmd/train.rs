//! `ramtid train`: fit a model from a visit log and publish it (ramtid-core).

use clap::{Subcommand, ValueEnum};
use ramtid::progress::Bars;
use ramtid::train::{fit_params, TrainFlags};
use ramtid_core::params::Method;
use ramtid_core::train::{check_model_name, train, TrainLimits, TrainRequest};
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
        /// How efficient time is defined. Unset settings take the defaults of
        /// `ramtid_core::params::FitParams`; every setting is checked before the log is read.
        #[arg(long, value_enum)]
        efficiency: Option<EfficiencyArg>,
        /// team-reference: the fastest teams that together performed this share of visits
        /// set the efficient level (0 < q <= 1; default 0.5). Switches to team-reference.
        #[arg(long)]
        reference_quantile: Option<f64>,
        /// Teams slower than the efficient level by more than this are reported
        /// (default 0.10).
        #[arg(long)]
        tolerance: Option<f64>,
        /// frontier: the least lead over the next team (0 < gap <= 1; default 0.06) that
        /// makes the fastest team implausibly fast; from 0.75 to 1.5 times the threshold it
        /// is weighed out of the level gradually, above that set aside.
        #[arg(long)]
        implausible_gap: Option<f64>,
        /// One pace per team for weekdays and weekends alike (by default weekends get a
        /// pace of their own and the efficient level is that of weekdays).
        #[arg(long)]
        weekends_together: bool,
        /// frontier: a team's time is its pace alone (by default also minutes per visit of
        /// its own, and the efficient visit is the frontier teams' line).
        #[arg(long)]
        no_team_slack: bool,
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
    Frontier,
    TeamReference,
    Pooled,
}

impl Command {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        let Command::Train {
            catalog,
            visits,
            out,
            name,
            rejects,
            efficiency,
            reference_quantile,
            tolerance,
            implausible_gap,
            weekends_together,
            no_team_slack,
            folds,
            lambdas,
            seed,
            threads,
            min_visit_min,
            max_visit_min,
            json,
            max_codes,
            max_context_columns,
            max_features,
            max_memory_mb,
        } = self;
        // Settings first: a bad one fails at once, before any file is opened.
        let params = fit_params(&TrainFlags {
            efficiency: efficiency.map(|e| match e {
                EfficiencyArg::Frontier => Method::Frontier,
                EfficiencyArg::TeamReference => Method::TeamReference,
                EfficiencyArg::Pooled => Method::Pooled,
            }),
            reference_quantile,
            tolerance,
            implausible_gap,
            weekend_apart: weekends_together.then_some(false),
            team_slack: no_team_slack.then_some(false),
            folds,
            lambdas,
            seed,
            threads,
            min_visit_min,
            max_visit_min,
        })?;
        check_model_name(&name).map_err(anyhow::Error::msg)?;
        let rejects = rejects.unwrap_or_else(|| visits.with_extension("rejects.csv"));
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
            params,
        };
        let bars = Bars::on_terminal();
        let trained = train(&req, &bars);
        bars.finish();
        let (_, s) = trained?;
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
        if f.short_visits_set_aside > 0 {
            eprintln!(
                "  early check-outs: {} visits ({:.1} %) far shorter than their tasks and their recipient's other visits take, set aside",
                f.short_visits_set_aside,
                100.0 * f.short_visits_set_aside as f64 / f.visits.max(1) as f64
            );
        }
        if let Some(cp) = &f.context_pairs {
            if cp.kept {
                eprintln!(
                    "  context pairs: {} pairs of conditions acting together kept by cross-validation (out-of-fold RMSE {:.2} min against {:.2} without; penalty {}× λ)",
                    cp.candidates, cp.rmse_with_min, cp.rmse_without_min, cp.penalty_over_lambda
                );
            } else {
                eprintln!(
                    "  context pairs: {} candidates left out by cross-validation (out-of-fold RMSE {:.2} min with them, {:.2} without)",
                    cp.candidates, cp.rmse_with_min, cp.rmse_without_min
                );
            }
        }
        eprintln!(
            "efficiency: {:.1}% of visits by teams judged inefficient, on average {:.1}% slower; logged time is {:.1}% above efficient",
            100.0 * f.share_visits_inefficient,
            100.0 * f.mean_excess_inefficient,
            100.0 * (f.logged_over_efficient - 1.0)
        );
        if let Some(fr) = &f.frontier {
            eprintln!("efficient level ({}): {}", fr.method, fr.reason);
            if !fr.implausibly_fast.is_empty() {
                eprintln!(
                    "  implausibly fast: {} (weight in the level {:.0} %)",
                    fr.implausibly_fast.join(", "),
                    100.0 * fr.fastest_share
                );
            }
            if !fr.not_comparable.is_empty() {
                eprintln!(
                    "  not comparable (alone in their slots): {}",
                    fr.not_comparable.join(", ")
                );
            }
            eprintln!("  weekend pace over weekday pace: {:.3}", fr.weekend_factor);
            eprintln!(
                "  team paces (weekday, over the efficient level, 90 % interval; slack: minutes \
                 per visit beside the pace, over the frontier's):"
            );
            let mut teams: Vec<_> = f.teams.iter().collect();
            teams.sort_by(|a, b| a.multiplier.total_cmp(&b.multiplier));
            for t in teams {
                eprintln!(
                    "    {:<16} {:>6.3} [{:.3}, {:.3}]  weekend ×{}{}  {:>7} visits  {}{}",
                    t.unit_id,
                    t.multiplier,
                    t.multiplier_interval[0],
                    t.multiplier_interval[1],
                    t.weekend_factor
                        .map(|w| format!("{w:.3}"))
                        .unwrap_or_else(|| "–".into()),
                    t.slack_min
                        .map(|s| format!("  slack {s:+.1} min"))
                        .unwrap_or_default(),
                    t.visits,
                    t.role.map(|r| r.as_str()).unwrap_or(""),
                    if t.inefficient { ", inefficient" } else { "" }
                );
            }
            eprintln!("  what the log's visits take per week under each definition of efficient:");
            for w in &fr.what_if {
                eprintln!(
                    "    {:<11} {:>9.1} h/week  ×{:.3}  {}",
                    w.definition, w.hours_per_week, w.relative, w.description
                );
            }
        } else {
            for t in f.teams.iter().filter(|t| t.inefficient) {
                eprintln!(
                    "  team {}: {:+.1}% ({} visits)",
                    t.unit_id,
                    100.0 * (t.multiplier - 1.0),
                    t.visits
                );
            }
        }
        eprintln!(
            "out-of-fold visits (recipients not in the fold's fit, efficient level): MAE {:.2} min, R² {:.3}",
            f.oof_visit_mae_min, f.oof_visit_r2
        );
        // With no recipient of enough visits the MAPE is an empty mean, not a figure.
        if f.planned_week_recipients == 0 {
            eprintln!(
                "out-of-fold planned weeks: no recipient qualified (none with at least {} visits)",
                req.params.settings().min_recipient_visits
            );
        } else {
            eprintln!(
                "out-of-fold planned weeks ({} recipients: the needs their log shows, planned and predicted as estimate does, against their logged efficient-level week): MAPE {:.1}%",
                f.planned_week_recipients,
                100.0 * f.oof_planned_week_mape
            );
        }
        // NaN: not measured (too few recipients), not a figure.
        let share = |x: f64| {
            if x.is_nan() {
                "not measured (too few recipients)".to_string()
            } else {
                format!("{:.1}%", 100.0 * x)
            }
        };
        eprintln!(
            "P10–P90 coverage on recipients the interval was not calibrated on (split in halves): visits {}, planned weeks {}",
            share(f.heldout_visit_interval_coverage),
            share(f.heldout_week_interval_coverage)
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
