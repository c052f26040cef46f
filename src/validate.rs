//! Validation on random worlds: per world, simulate (`simulate --world random`), train on
//! the dirty log, estimate the held-out recipients from their needs alone, and score them
//! against the world's best-practice truth. The figures that matter are relative to what
//! is achievable in that world: MAPE ÷ the MAPE of the true model without the recipient
//! effect, bias, and the P10–P90 coverage of held-out weeks and visits.
//!
//! Writes `validation.json` (one entry per world and a `summary`) and `report.html`; each
//! world's own evaluation goes to `world-<seed>/evaluation/`.

use ramtid_core::params::CheckedFitParams;
use ramtid_core::progress::NoProgress;
use ramtid_core::train::{train, TrainError, TrainRequest};
use ramtid_report::evaluate::metrics::{self, median};
use ramtid_report::evaluate::report::{card, esc, num, pct, signed_pct, Series, STYLE};
use ramtid_report::evaluate::{
    evaluate, write_report, EvaluateError, EvaluateInputs, RecipientRow,
};
use ramtid_sim::random::{simulate_random, RandomConfig, RandomError};
use serde::Serialize;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

pub const FORMAT: &str = "ramtid-validation/1";

#[derive(Debug, thiserror::Error)]
pub enum ValidateError {
    #[error("world {seed}: {source}")]
    Simulate {
        seed: u64,
        #[source]
        source: RandomError,
    },
    #[error("world {seed}: training: {source}")]
    Train {
        seed: u64,
        #[source]
        source: TrainError,
    },
    #[error("world {seed}: evaluation: {source}")]
    Evaluate {
        seed: u64,
        #[source]
        source: EvaluateError,
    },
    #[error("world {seed}: {message}")]
    Figures { seed: u64, message: String },
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid validation settings: {0}")]
    Settings(String),
}

#[derive(Debug, Clone)]
pub struct ValidateOptions {
    pub worlds: usize,
    /// World seeds are `seed, seed + 1, …`.
    pub seed: u64,
    pub out: PathBuf,
    pub recipients: usize,
    pub weeks: usize,
    pub holdout: usize,
    /// Fit settings and cleaning rules of every world's training, checked.
    pub params: CheckedFitParams,
    /// Keep each world's `visits.csv` (large); by default it is removed after training.
    pub keep_logs: bool,
}

/// Default world size: see the README, "Validation on random worlds" (chosen so that 20
/// worlds run in about a quarter of an hour on two cores).
pub const DEFAULT_RECIPIENTS: usize = 1500;
pub const DEFAULT_WEEKS: usize = 8;
pub const DEFAULT_HOLDOUT: usize = 500;

/// One world's figures, all on its held-out recipients.
#[derive(Debug, Clone, Serialize)]
pub struct WorldResult {
    pub seed: u64,
    pub rows_written: u64,
    pub visits_used: u64,
    pub recipients_evaluated: usize,
    /// Person-week MAPE of ramtid against the truth with the recipient effect.
    pub mape: f64,
    /// The same of the true model without the recipient effect: the best achievable.
    pub best_mape: f64,
    pub ratio: f64,
    /// Σ estimate / Σ truth − 1.
    pub bias: f64,
    /// The same of the best achievable predictor: how far the held-out recipients' effects
    /// are from averaging to one (a sample of people, not a fault of the estimator).
    pub best_bias: f64,
    /// From the world's `simulation.json` (the estimator never sees it): the share of
    /// visits done by substitutes × their slowness. No column of the data contract marks a
    /// substitute's visit, so this part of the time is in every team's pace.
    pub substitute_term: f64,
    /// The floor under any estimator that learns the level from this log: the best
    /// achievable predictor × (1 + `substitute_term`), because no column marks which visits
    /// a substitute made, so their slowness is in every team's pace. Its MAPE ÷ the best
    /// achievable MAPE, and its Σ ÷ Σ truth − 1.
    pub floor_ratio: f64,
    pub floor_bias: f64,
    /// Share of held-out weeks whose truth lies in the estimate's P10–P90.
    pub week_coverage: f64,
    /// Share of held-out visits whose efficient minutes lie in the visit's P10–P90.
    pub visit_coverage: f64,
    pub visit_mape: f64,
    pub visit_best_mape: f64,
    pub schablon_mape: f64,
    pub schablon_ratio: f64,
    pub schablon_bias: f64,
    /// What `train` reported about the efficient level.
    pub logged_over_efficient: f64,
    pub seconds: f64,
}

/// The distribution over worlds of one predictor.
#[derive(Debug, Clone, Serialize)]
pub struct Distribution {
    pub median_ratio: f64,
    pub worst_ratio: f64,
    pub median_abs_bias_pct: f64,
    pub worst_abs_bias_pct: f64,
    /// Median over worlds (None where the predictor has no interval).
    pub week_coverage: Option<f64>,
    pub visit_coverage: Option<f64>,
    /// Lowest and highest world.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub week_coverage_range: Option<[f64; 2]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub visit_coverage_range: Option<[f64; 2]>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub worlds: usize,
    #[serde(flatten)]
    pub ours: Distribution,
    pub schablon: Distribution,
    /// The same of the floor (`WorldResult::floor_ratio`, `floor_bias`): what the targets
    /// are to be read against.
    pub floor: Distribution,
}

#[derive(Debug, Clone, Serialize)]
pub struct Validation {
    pub format: String,
    pub created: String,
    pub command: String,
    pub recipients: usize,
    pub weeks: usize,
    pub holdout: usize,
    pub seeds: Vec<u64>,
    pub worlds: Vec<WorldResult>,
    pub summary: Summary,
}

fn finite(seed: u64, name: &str, x: f64) -> Result<f64, ValidateError> {
    if x.is_finite() {
        Ok(x)
    } else {
        Err(ValidateError::Figures {
            seed,
            message: format!("{name} is not a number (too few held-out recipients?)"),
        })
    }
}

/// Runs one world end to end in `dir`.
pub fn run_world(
    seed: u64,
    opts: &ValidateOptions,
    dir: &Path,
) -> Result<WorldResult, ValidateError> {
    let t0 = Instant::now();
    let data = dir.join("data");
    let sim = simulate_random(
        &RandomConfig {
            seed,
            recipients: opts.recipients,
            weeks: opts.weeks,
            holdout_recipients: opts.holdout,
            codes: None,
        },
        &data,
    )
    .map_err(|source| ValidateError::Simulate { seed, source })?;
    let visits = data.join("visits.csv");
    let req = TrainRequest {
        catalog: data.join("catalog.toml"),
        visits: visits.clone(),
        data_dir: None,
        limits: Default::default(),
        models_dir: dir.join("models"),
        name: "world".into(),
        rejects: Some(data.join("visits.rejects.csv")),
        params: opts.params.clone(),
    };
    let (model, summary) =
        train(&req, &NoProgress).map_err(|source| ValidateError::Train { seed, source })?;
    if !opts.keep_logs {
        // The log is reproducible from the seed; it is the bulk of the disk use.
        let _ = std::fs::remove_file(&visits);
    }
    let inputs = EvaluateInputs {
        needs: data.join("needs.jsonl"),
        truth: data.join("truth.csv"),
        visits: Some(data.join("heldout_visits.csv")),
    };
    let e = evaluate(&model, &inputs).map_err(|source| ValidateError::Evaluate { seed, source })?;
    write_report(&e, &dir.join("evaluation"))
        .map_err(|source| ValidateError::Evaluate { seed, source })?;
    let w = &e.weekly;
    let best = w.best.as_ref().ok_or_else(|| ValidateError::Figures {
        seed,
        message: "truth.csv has no best_weekly_min".into(),
    })?;
    let v = e.visits.as_ref().ok_or_else(|| ValidateError::Figures {
        seed,
        message: "no held-out visits were evaluated".into(),
    })?;
    let best_mape = finite(seed, "best achievable MAPE", best.mape)?;
    let substitute_term = substitute_term(&data.join("simulation.json"))
        .map_err(|message| ValidateError::Figures { seed, message })?;
    let (floor_ratio, floor_bias) =
        floor(&e.recipients, substitute_term, best_mape).ok_or_else(|| ValidateError::Figures {
            seed,
            message: "no held-out recipient has a best achievable week".into(),
        })?;
    let mape = finite(seed, "MAPE", w.ours.mape)?;
    let schablon_mape = finite(seed, "schablon MAPE", w.schablon.mape)?;
    Ok(WorldResult {
        seed,
        rows_written: sim.rows_written,
        visits_used: summary.read.rows_used,
        recipients_evaluated: w.n,
        mape,
        best_mape,
        ratio: mape / best_mape,
        bias: finite(seed, "bias", w.ours.bias)?,
        best_bias: finite(seed, "best achievable bias", best.bias)?,
        substitute_term,
        floor_ratio: finite(seed, "floor ratio", floor_ratio)?,
        floor_bias: finite(seed, "floor bias", floor_bias)?,
        week_coverage: finite(
            seed,
            "week coverage",
            w.ours.interval_coverage.unwrap_or(f64::NAN),
        )?,
        visit_coverage: finite(
            seed,
            "visit coverage",
            v.ours.interval_coverage.unwrap_or(f64::NAN),
        )?,
        visit_mape: finite(seed, "visit MAPE", v.ours.mape)?,
        visit_best_mape: v.best.as_ref().map_or(f64::NAN, |b| b.mape),
        schablon_mape,
        schablon_ratio: schablon_mape / best_mape,
        schablon_bias: finite(seed, "schablon bias", w.schablon.bias)?,
        logged_over_efficient: summary.fit.logged_over_efficient,
        seconds: t0.elapsed().as_secs_f64(),
    })
}

/// The best achievable weeks scaled by `1 + substitute_term`: (MAPE ÷ `best_mape`, bias).
/// None when no recipient has a best achievable week.
fn floor(rows: &[RecipientRow], substitute_term: f64, best_mape: f64) -> Option<(f64, f64)> {
    let (pred, truth): (Vec<f64>, Vec<f64>) = rows
        .iter()
        .filter_map(|r| {
            Some((
                r.best_weekly_min? * (1.0 + substitute_term),
                r.true_weekly_min,
            ))
        })
        .unzip();
    (!pred.is_empty()).then(|| {
        (
            metrics::mape(&pred, &truth) / best_mape,
            metrics::bias(&pred, &truth),
        )
    })
}

/// `substitute_p × (substitute_pace − 1)` of the world's record.
fn substitute_term(path: &Path) -> Result<f64, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let world: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let field = |name: &str| {
        world[name]
            .as_f64()
            .ok_or_else(|| format!("{}: no number {name}", path.display()))
    };
    Ok(field("substitute_p")? * (field("substitute_pace")? - 1.0))
}

fn max(v: impl Iterator<Item = f64>) -> f64 {
    v.fold(f64::NEG_INFINITY, f64::max)
}

fn min(v: impl Iterator<Item = f64>) -> f64 {
    v.fold(f64::INFINITY, f64::min)
}

fn distribution(
    ratios: &[f64],
    biases: &[f64],
    weeks: Option<&[f64]>,
    visits: Option<&[f64]>,
) -> Distribution {
    let abs_bias: Vec<f64> = biases.iter().map(|b| 100.0 * b.abs()).collect();
    let range = |v: &[f64]| [min(v.iter().copied()), max(v.iter().copied())];
    Distribution {
        median_ratio: median(ratios),
        worst_ratio: max(ratios.iter().copied()),
        median_abs_bias_pct: median(&abs_bias),
        worst_abs_bias_pct: max(abs_bias.iter().copied()),
        week_coverage: weeks.map(median),
        visit_coverage: visits.map(median),
        week_coverage_range: weeks.map(range),
        visit_coverage_range: visits.map(range),
    }
}

pub fn summarize(worlds: &[WorldResult]) -> Summary {
    let col = |f: fn(&WorldResult) -> f64| worlds.iter().map(f).collect::<Vec<f64>>();
    Summary {
        worlds: worlds.len(),
        ours: distribution(
            &col(|w| w.ratio),
            &col(|w| w.bias),
            Some(&col(|w| w.week_coverage)),
            Some(&col(|w| w.visit_coverage)),
        ),
        schablon: distribution(
            &col(|w| w.schablon_ratio),
            &col(|w| w.schablon_bias),
            None,
            None,
        ),
        floor: distribution(&col(|w| w.floor_ratio), &col(|w| w.floor_bias), None, None),
    }
}

/// Runs every world; `on_world` hears of each as it finishes.
pub fn validate(
    opts: &ValidateOptions,
    command: &str,
    mut on_world: impl FnMut(&WorldResult),
) -> Result<Validation, ValidateError> {
    if opts.worlds == 0 {
        return Err(ValidateError::Settings(
            "--worlds must be at least 1".into(),
        ));
    }
    if opts.holdout < 20 {
        return Err(ValidateError::Settings(
            "--holdout must be at least 20 recipients".into(),
        ));
    }
    std::fs::create_dir_all(&opts.out).map_err(|source| ValidateError::Write {
        path: opts.out.clone(),
        source,
    })?;
    let seeds: Vec<u64> = (0..opts.worlds as u64).map(|k| opts.seed + k).collect();
    let mut worlds = Vec::with_capacity(seeds.len());
    for &seed in &seeds {
        let r = run_world(seed, opts, &opts.out.join(format!("world-{seed}")))?;
        on_world(&r);
        worlds.push(r);
    }
    let summary = summarize(&worlds);
    Ok(Validation {
        format: FORMAT.into(),
        created: ramtid_core::model::now_rfc3339(),
        command: command.into(),
        recipients: opts.recipients,
        weeks: opts.weeks,
        holdout: opts.holdout,
        seeds,
        worlds,
        summary,
    })
}

/// One line of the terminal table.
pub fn table_row(w: &WorldResult) -> String {
    format!(
        "{:>6} {:>8.1} {:>8.1} {:>6.2} {:>+7.1} {:>7.1} {:>7.1} {:>8.1} {:>+8.1} {:>6.0}\n",
        w.seed,
        100.0 * w.mape,
        100.0 * w.best_mape,
        w.ratio,
        100.0 * w.bias,
        100.0 * w.week_coverage,
        100.0 * w.visit_coverage,
        100.0 * w.schablon_mape,
        100.0 * w.schablon_bias,
        w.seconds
    )
}

pub fn table_header() -> String {
    format!(
        "{:>6} {:>8} {:>8} {:>6} {:>7} {:>7} {:>7} {:>8} {:>8} {:>6}\n",
        "world",
        "MAPE%",
        "best%",
        "ratio",
        "bias%",
        "week%",
        "visit%",
        "sch.MAPE",
        "sch.bias",
        "sec"
    )
}

/// The summary lines under the table.
pub fn summary_text(v: &Validation) -> String {
    let s = &v.summary;
    let o = &s.ours;
    let cov = |x: Option<f64>| x.map_or("–".into(), |c| format!("{:.1} %", 100.0 * c));
    format!(
        "{} worlds ({} recipients × {} weeks, {} held out; seeds {}–{}), all figures on held-out recipients:\n\
         ramtid:   MAPE / best achievable median {:.3}×, worst {:.3}×; |bias| median {:.2} %, worst {:.2} %; \
         P10–P90 coverage median: weeks {}, visits {}\n\
         schablon: MAPE / best achievable median {:.3}×, worst {:.3}×; |bias| median {:.2} %, worst {:.2} %\n\
         floor:    MAPE / best achievable median {:.3}×, worst {:.3}×; |bias| median {:.2} %, worst {:.2} % \
         (the best achievable with its level learned from this log, where no column marks a substitute's visit)\n",
        s.worlds,
        v.recipients,
        v.weeks,
        v.holdout,
        v.seeds.first().copied().unwrap_or(0),
        v.seeds.last().copied().unwrap_or(0),
        o.median_ratio,
        o.worst_ratio,
        o.median_abs_bias_pct,
        o.worst_abs_bias_pct,
        cov(o.week_coverage),
        cov(o.visit_coverage),
        s.schablon.median_ratio,
        s.schablon.worst_ratio,
        s.schablon.median_abs_bias_pct,
        s.schablon.worst_abs_bias_pct,
        s.floor.median_ratio,
        s.floor.worst_ratio,
        s.floor.median_abs_bias_pct,
        s.floor.worst_abs_bias_pct,
    )
}

pub fn table(v: &Validation) -> String {
    let mut s = table_header();
    for w in &v.worlds {
        s.push_str(&table_row(w));
    }
    s.push_str(&summary_text(v));
    s
}

/// Points (x = world index, y) as a strip of dots with a reference line, one row per series.
fn strip_svg(title: &str, y_label: &str, series: &[Series], refs: &[(f64, &str)]) -> String {
    const W: f64 = 1000.0;
    const H: f64 = 300.0;
    const L: f64 = 64.0;
    const R: f64 = 16.0;
    const T: f64 = 30.0;
    const B: f64 = 44.0;
    let ys: Vec<f64> = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .chain(refs.iter().map(|r| r.0))
        .filter(|y| y.is_finite())
        .collect();
    let lo = min(ys.iter().copied()).min(0.0);
    let hi = max(ys.iter().copied()).max(lo + 1e-9) * 1.05;
    let n = series
        .iter()
        .map(|s| s.points.len())
        .max()
        .unwrap_or(1)
        .max(1);
    let (pw, ph) = (W - L - R, H - T - B);
    let x = |i: f64| L + pw * (i + 0.5) / n as f64;
    let y = |v: f64| T + ph * (1.0 - (v - lo) / (hi - lo));
    let mut s = format!(
        r#"<svg class="plot wide" viewBox="0 0 {W} {H}" xmlns="http://www.w3.org/2000/svg"><text class="ptitle" x="{L}" y="18">{}</text>"#,
        esc(title)
    );
    for k in 0..=5 {
        let v = lo + (hi - lo) * k as f64 / 5.0;
        let _ = write!(
            s,
            r##"<line x1="{L}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="#eceef2"/><text class="tick" x="{}" y="{:.1}" text-anchor="end">{}</text>"##,
            W - R,
            L - 6.0,
            y(v) + 4.0,
            num(v, 2),
            y = y(v)
        );
    }
    for &(v, label) in refs {
        let _ = write!(
            s,
            r##"<line x1="{L}" x2="{}" y1="{yy:.1}" y2="{yy:.1}" stroke="#888" stroke-dasharray="4 3"/><text class="legend" x="{}" y="{:.1}" text-anchor="end">{}</text>"##,
            W - R,
            W - R - 4.0,
            y(v) - 4.0,
            esc(label),
            yy = y(v)
        );
    }
    for (k, se) in series.iter().enumerate() {
        for &(i, v) in &se.points {
            if v.is_finite() {
                let _ = write!(
                    s,
                    r#"<circle cx="{:.1}" cy="{:.1}" r="4.5" fill="{}" fill-opacity="0.85"/>"#,
                    x(i),
                    y(v.clamp(lo, hi)),
                    se.color
                );
            }
        }
        let _ = write!(
            s,
            r#"<circle cx="{}" cy="{}" r="5" fill="{}"/><text class="legend" x="{}" y="{}">{}</text>"#,
            L + 10.0 + 150.0 * k as f64,
            H - 12.0,
            se.color,
            L + 20.0 + 150.0 * k as f64,
            H - 8.0,
            esc(se.name)
        );
    }
    let _ = write!(
        s,
        r#"<text class="axis" transform="translate(16,{}) rotate(-90)" text-anchor="middle">{}</text><text class="axis" x="{}" y="{}" text-anchor="middle">world (seed order)</text></svg>"#,
        T + ph / 2.0,
        esc(y_label),
        L + pw / 2.0,
        H - 26.0
    );
    s
}

pub fn html(v: &Validation) -> String {
    let o = &v.summary.ours;
    let sc = &v.summary.schablon;
    let fl = &v.summary.floor;
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>ramtid validation on random worlds</title><style>{STYLE}</style></head><body><main><h1>Validation on {} random worlds</h1><p class="sub">{} recipients × {} weeks of log, {} held-out recipients per world · seeds {:?} · created {} · <code>{}</code></p>"#,
        v.summary.worlds,
        v.recipients,
        v.weeks,
        v.holdout,
        v.seeds,
        esc(&v.created),
        esc(&v.command)
    );
    s.push_str(r#"<div class="cards">"#);
    s.push_str(&card(
        "ours",
        "MAPE ÷ best achievable (median)",
        &num(o.median_ratio, 3),
        &format!("worst {}", num(o.worst_ratio, 3)),
    ));
    s.push_str(&card(
        "ours",
        "|bias| (median)",
        &format!("{} %", num(o.median_abs_bias_pct, 2)),
        &format!("worst {} %", num(o.worst_abs_bias_pct, 2)),
    ));
    s.push_str(&card(
        "ours",
        "P10–P90 coverage, held-out weeks",
        &o.week_coverage.map_or("–".into(), pct),
        "median world; target 80 %",
    ));
    s.push_str(&card(
        "ours",
        "P10–P90 coverage, held-out visits",
        &o.visit_coverage.map_or("–".into(), pct),
        "median world; target 80 %",
    ));
    s.push_str(&card(
        "sch",
        "Schablon MAPE ÷ best",
        &num(sc.median_ratio, 2),
        &format!("|bias| median {} %", num(sc.median_abs_bias_pct, 1)),
    ));
    s.push_str(&card(
        "",
        "Floor: |bias| (median)",
        &format!("{} %", num(fl.median_abs_bias_pct, 2)),
        &format!(
            "worst {} %; ratio median {}, worst {}",
            num(fl.worst_abs_bias_pct, 2),
            num(fl.median_ratio, 3),
            num(fl.worst_ratio, 3)
        ),
    ));
    s.push_str("</div>");
    s.push_str(r#"<p class="note">Every figure is measured on held-out recipients (not in the training log), against the world's best-practice truth. The best achievable MAPE is that of the world's true model without the recipient effect, which no predictor seeing only needs and context can know. The floor is that best achievable predictor with its level learned from the log, as every estimator's must be: no column marks the visits a substitute made, so their slowness (each world's substitutes' share × slowness) is in every team's pace, the best team's too. No estimator that reads this log can be expected to do better than the floor.</p>"#);
    let idx = |f: fn(&WorldResult) -> f64| -> Vec<(f64, f64)> {
        v.worlds
            .iter()
            .enumerate()
            .map(|(i, w)| (i as f64, f(w)))
            .collect()
    };
    // ramtid's points beside the floor's, for the ratio and the bias alike.
    let with_floor = |ours: Vec<(f64, f64)>, floor: Vec<(f64, f64)>| {
        [
            Series {
                name: "ramtid",
                color: "#0b6bcb",
                points: ours,
            },
            Series {
                name: "floor (level from the log)",
                color: "#8a8f98",
                points: floor,
            },
        ]
    };
    s.push_str(r#"<h2>Error relative to the best achievable</h2><div class="plotbox">"#);
    s.push_str(&strip_svg(
        "Person-week MAPE ÷ best achievable MAPE",
        "ratio",
        &with_floor(idx(|w| w.ratio), idx(|w| w.floor_ratio)),
        &[
            (1.0, "best achievable"),
            (1.15, "target median 1.15"),
            (1.35, "target worst 1.35"),
        ],
    ));
    s.push_str("</div><h2>Bias</h2><div class=\"plotbox\">");
    s.push_str(&strip_svg(
        "Σ estimate ÷ Σ truth − 1 (%)",
        "bias %",
        &with_floor(idx(|w| 100.0 * w.bias), idx(|w| 100.0 * w.floor_bias)),
        &[(0.0, "no bias"), (3.0, "+3 %"), (-3.0, "−3 %")],
    ));
    s.push_str("</div><h2>Interval coverage (held-out)</h2><div class=\"plotbox\">");
    s.push_str(&strip_svg(
        "Share inside P10–P90",
        "coverage",
        &[
            Series {
                name: "weeks",
                color: "#0b6bcb",
                points: idx(|w| w.week_coverage),
            },
            Series {
                name: "visits",
                color: "#e08a00",
                points: idx(|w| w.visit_coverage),
            },
        ],
        &[(0.75, "75 %"), (0.85, "85 %")],
    ));
    s.push_str("</div><h2>Worlds</h2><table><thead><tr><th>world</th><th class=\"ours\">MAPE</th><th>best</th><th class=\"ours\">ratio</th><th class=\"ours\">bias</th><th>best achievable's bias</th><th>substitutes' share × slowness</th><th>floor ratio</th><th>floor bias</th><th class=\"ours\">weeks in P10–P90</th><th class=\"ours\">visits in P10–P90</th><th class=\"sch\">schablon MAPE</th><th class=\"sch\">schablon bias</th><th>logged ÷ efficient</th><th>rows</th><th>report</th></tr></thead><tbody>");
    for w in &v.worlds {
        let _ = write!(
            s,
            r#"<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><a href="world-{}/evaluation/report.html">open</a></td></tr>"#,
            w.seed,
            pct(w.mape),
            pct(w.best_mape),
            num(w.ratio, 3),
            signed_pct(w.bias),
            signed_pct(w.best_bias),
            signed_pct(w.substitute_term),
            num(w.floor_ratio, 3),
            signed_pct(w.floor_bias),
            pct(w.week_coverage),
            pct(w.visit_coverage),
            pct(w.schablon_mape),
            signed_pct(w.schablon_bias),
            num(w.logged_over_efficient, 3),
            w.rows_written,
            w.seed
        );
    }
    s.push_str("</tbody></table></main></body></html>\n");
    s
}

/// Writes `validation.json` and `report.html` into `dir`.
pub fn write_outputs(v: &Validation, dir: &Path) -> Result<Vec<PathBuf>, ValidateError> {
    let json = dir.join("validation.json");
    let page = dir.join("report.html");
    let text = serde_json::to_string_pretty(v).expect("validation serializes");
    for (path, body) in [(&json, text + "\n"), (&page, html(v))] {
        std::fs::write(path, body).map_err(|source| ValidateError::Write {
            path: path.clone(),
            source,
        })?;
    }
    Ok(vec![json, page])
}
