//! The evaluation as a person reads it: a self-contained HTML page with hand-written SVG
//! plots, a plain-text table for the terminal, and a per-recipient CSV.

use super::metrics::{quantile, Metrics};
use super::{Evaluation, GroupFigures};
use std::fmt::Write as _;

const OURS: &str = "#0b6bcb";
const SCHABLON: &str = "#e08a00";
const BEST: &str = "#222222";
/// Most points drawn in the per-visit scatter; more are thinned evenly.
pub const MAX_VISIT_POINTS: usize = 4000;

// ---------------------------------------------------------------------------------------
// Number formatting

pub fn pct(x: f64) -> String {
    if x.is_finite() {
        format!("{:.1} %", 100.0 * x)
    } else {
        "–".into()
    }
}

pub fn signed_pct(x: f64) -> String {
    if x.is_finite() {
        format!("{:+.1} %", 100.0 * x)
    } else {
        "–".into()
    }
}

pub fn num(x: f64, decimals: usize) -> String {
    if x.is_finite() {
        format!("{x:.decimals$}")
    } else {
        "–".into()
    }
}

pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The rows of a metrics table: (label, unit hint, value of a Metrics as text).
type Row = (&'static str, fn(&Metrics) -> String);

fn metric_rows(unit: &'static str) -> Vec<Row> {
    let mae: fn(&Metrics) -> String = if unit == "week" {
        |m| format!("{} min/wk", num(m.mae, 1))
    } else {
        |m| format!("{} min", num(m.mae, 2))
    };
    vec![
        ("MAE", mae),
        ("MAPE", |m| pct(m.mape)),
        ("median abs. % error", |m| pct(m.median_ape)),
        ("bias (Σpred/Σtrue − 1)", |m| signed_pct(m.bias)),
        ("R²", |m| num(m.r2, 3)),
        ("within ±10 %", |m| pct(m.within_10pct)),
        ("P10–P90 coverage", |m| {
            m.interval_coverage.map_or("–".into(), pct)
        }),
    ]
}

// ---------------------------------------------------------------------------------------
// Terminal

/// A short plain-text table: ours, schablon and best achievable side by side.
pub fn summary_table(e: &Evaluation) -> String {
    let mut s = String::new();
    let d = &e.data;
    let _ = writeln!(
        s,
        "evaluation of model {}/{} on {} held-out recipients ({} needs lines, {} failed{})",
        e.model.name,
        e.model.version,
        e.weekly.n,
        d.needs_lines,
        d.needs_failed,
        if d.needs_without_truth > 0 {
            format!(", {} without truth", d.needs_without_truth)
        } else {
            String::new()
        }
    );
    let table = |s: &mut String, title: &str, unit: &'static str, cols: &[(&str, &Metrics)]| {
        let _ = write!(s, "  {title:<26}");
        for (name, _) in cols {
            let _ = write!(s, "{name:>17}");
        }
        s.push('\n');
        for (label, f) in metric_rows(unit) {
            let _ = write!(s, "  {label:<26}");
            for (_, m) in cols {
                let _ = write!(s, "{:>17}", f(m));
            }
            s.push('\n');
        }
    };
    let w = &e.weekly;
    let mut cols = vec![("ours", &w.ours), ("schablon", &w.schablon)];
    if let Some(b) = &w.best {
        cols.push(("best achievable", b));
    }
    table(&mut s, "person-week", "week", &cols);
    if let Some(r) = w.mape_ratio_ours_over_best {
        let _ = writeln!(s, "  ours MAPE / best MAPE: {r:.2}");
    }
    if let Some(v) = &e.visits {
        let mut cols = vec![("ours", &v.ours), ("schablon", &v.schablon)];
        if let Some(b) = &v.best {
            cols.push(("best achievable", b));
        }
        table(
            &mut s,
            &format!("per visit ({} visits)", v.n),
            "visit",
            &cols,
        );
    }
    if let Some((g, spread)) = worst_group(&e.groups) {
        let _ = writeln!(
            s,
            "  hardest group: {} = {} (n {}): MAPE ours {}, schablon {}; spread of our MAPE across groups {}",
            g.variable,
            g.value,
            g.n,
            pct(g.ours_mape),
            pct(g.schablon_mape),
            pct(spread)
        );
    }
    s
}

/// The group where we err most (at least 5 recipients), and max − min of our group MAPEs.
fn worst_group(groups: &[GroupFigures]) -> Option<(&GroupFigures, f64)> {
    let big: Vec<&GroupFigures> = groups
        .iter()
        .filter(|g| g.n >= 5 && g.ours_mape.is_finite())
        .collect();
    let worst = big
        .iter()
        .max_by(|a, b| a.ours_mape.total_cmp(&b.ours_mape))?;
    let best = big
        .iter()
        .min_by(|a, b| a.ours_mape.total_cmp(&b.ours_mape))?;
    Some((worst, worst.ours_mape - best.ours_mape))
}

// ---------------------------------------------------------------------------------------
// CSV

/// One row per evaluated recipient.
pub fn recipients_csv(e: &Evaluation) -> String {
    let mut t = csv::Writer::from_writer(Vec::new());
    let opt = |x: Option<f64>, d: usize| x.map_or(String::new(), |v| num(v, d));
    let n = |x: f64, d: usize| format!("{x:.d$}");
    // Writing into memory cannot fail, and every field is UTF-8.
    t.write_record([
        "recipient_id",
        "true_weekly_min",
        "weekly_min",
        "p10_weekly_min",
        "p90_weekly_min",
        "schablon_weekly_min",
        "best_weekly_min",
        "visits_per_week",
        "true_visits_per_week",
        "error_pct",
        "schablon_error_pct",
    ])
    .expect("in memory");
    for r in &e.recipients {
        let rel = |p: f64| {
            if r.true_weekly_min > 0.0 {
                num(100.0 * (p / r.true_weekly_min - 1.0), 1)
            } else {
                String::new()
            }
        };
        t.write_record([
            r.recipient_id.clone(),
            n(r.true_weekly_min, 1),
            n(r.weekly_min, 1),
            n(r.p10_weekly_min, 1),
            n(r.p90_weekly_min, 1),
            n(r.schablon_weekly_min, 1),
            opt(r.best_weekly_min, 1),
            n(r.visits_per_week, 2),
            opt(r.true_visits_per_week, 2),
            rel(r.weekly_min),
            rel(r.schablon_weekly_min),
        ])
        .expect("in memory");
    }
    String::from_utf8(t.into_inner().expect("in memory")).expect("UTF-8 fields")
}

// ---------------------------------------------------------------------------------------
// SVG

/// Tick step and ticks covering [0, max] with about `target` intervals (1-2-5 steps).
pub fn nice_ticks(max: f64, target: usize) -> (f64, Vec<f64>) {
    let max = if max.is_finite() && max > 0.0 {
        max
    } else {
        1.0
    };
    let raw = max / target.max(1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    let n = (max / step).ceil() as usize;
    let ticks = (0..=n).map(|i| i as f64 * step).collect();
    (n as f64 * step, ticks)
}

fn tick_label(x: f64) -> String {
    if x >= 10_000.0 {
        format!("{:.0}k", x / 1000.0)
    } else if x.fract() == 0.0 {
        format!("{x:.0}")
    } else {
        format!("{x:.1}")
    }
}

/// One coloured set of (true, predicted) points.
pub struct Series<'a> {
    pub name: &'a str,
    pub color: &'a str,
    pub points: Vec<(f64, f64)>,
}

/// Predicted (y) against true (x) on equal axes from 0, with the y = x line and a ±10 %
/// band. Later series are drawn on top.
pub fn scatter_svg(title: &str, x_label: &str, y_label: &str, series: &[Series]) -> String {
    const W: f64 = 520.0;
    const H: f64 = 500.0;
    const L: f64 = 64.0;
    const R: f64 = 16.0;
    const T: f64 = 30.0;
    const B: f64 = 52.0;
    let all: Vec<f64> = series
        .iter()
        .flat_map(|s| s.points.iter().flat_map(|&(x, y)| [x, y]))
        .filter(|v| v.is_finite())
        .collect();
    // The top 0.2 % of values would squash the rest; they are drawn on the edge.
    let top = quantile(&all, 0.998).max(1e-9) * 1.02;
    let (max, ticks) = nice_ticks(top, 6);
    let (pw, ph) = (W - L - R, H - T - B);
    let sx = |x: f64| L + pw * (x.clamp(0.0, max) / max);
    let sy = |y: f64| T + ph * (1.0 - y.clamp(0.0, max) / max);
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" role="img" class="plot"><title>{}</title>"#,
        esc(title)
    );
    let _ = write!(
        s,
        r##"<rect x="{L}" y="{T}" width="{pw}" height="{ph}" fill="#fbfbfd" stroke="#c9ccd3"/>"##
    );
    for &t in &ticks {
        let (x, y) = (sx(t), sy(t));
        let _ = write!(
            s,
            r##"<line x1="{x:.1}" y1="{T}" x2="{x:.1}" y2="{:.1}" stroke="#e6e8ec"/><line x1="{L}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#e6e8ec"/>"##,
            T + ph,
            L + pw
        );
        let _ = write!(
            s,
            r##"<line x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{:.1}" stroke="#555"/><text x="{x:.1}" y="{:.1}" text-anchor="middle" class="tick">{}</text>"##,
            T + ph,
            T + ph + 5.0,
            T + ph + 18.0,
            tick_label(t)
        );
        let _ = write!(
            s,
            r##"<line x1="{:.1}" y1="{y:.1}" x2="{L}" y2="{y:.1}" stroke="#555"/><text x="{:.1}" y="{:.1}" text-anchor="end" class="tick">{}</text>"##,
            L - 5.0,
            L - 8.0,
            y + 4.0,
            tick_label(t)
        );
    }
    // ±10 % band and y = x.
    let _ = write!(
        s,
        r##"<polygon points="{:.1},{:.1} {:.1},{:.1} {:.1},{:.1}" fill="#2e7d32" fill-opacity="0.08"/>"##,
        sx(0.0),
        sy(0.0),
        sx(max),
        sy(max * 1.1),
        sx(max),
        sy(max * 0.9)
    );
    let _ = write!(
        s,
        r##"<line x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#2e7d32" stroke-width="1.2" stroke-dasharray="5 4"/>"##,
        sx(0.0),
        sy(0.0),
        sx(max),
        sy(max)
    );
    for ser in series {
        let _ = write!(
            s,
            r#"<g fill="{}" fill-opacity="0.5" stroke="none">"#,
            ser.color
        );
        for &(x, y) in &ser.points {
            if x.is_finite() && y.is_finite() {
                let _ = write!(
                    s,
                    r#"<circle cx="{:.1}" cy="{:.1}" r="2.4"/>"#,
                    sx(x),
                    sy(y)
                );
            }
        }
        s.push_str("</g>");
    }
    // Legend.
    let mut ly = T + 16.0;
    for ser in series {
        let _ = write!(
            s,
            r#"<circle cx="{:.1}" cy="{ly:.1}" r="4.5" fill="{}"/><text x="{:.1}" y="{:.1}" class="legend">{} ({} points)</text>"#,
            L + 14.0,
            ser.color,
            L + 24.0,
            ly + 4.0,
            esc(ser.name),
            ser.points.len()
        );
        ly += 18.0;
    }
    let _ = write!(
        s,
        r##"<line x1="{:.1}" y1="{ly:.1}" x2="{:.1}" y2="{ly:.1}" stroke="#2e7d32" stroke-dasharray="5 4"/><text x="{:.1}" y="{:.1}" class="legend">y = x (band: ±10 %)</text>"##,
        L + 8.0,
        L + 20.0,
        L + 24.0,
        ly + 4.0
    );
    // Axis labels.
    let _ = write!(
        s,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" class="axis">{}</text>"#,
        L + pw / 2.0,
        H - 10.0,
        esc(x_label)
    );
    let _ = write!(
        s,
        r#"<text transform="translate(16 {:.1}) rotate(-90)" text-anchor="middle" class="axis">{}</text>"#,
        T + ph / 2.0,
        esc(y_label)
    );
    let _ = write!(
        s,
        r#"<text x="{L}" y="18" class="ptitle">{}</text></svg>"#,
        esc(title)
    );
    s
}

/// Horizontal bars of MAPE per group: ours and schablon side by side, best achievable as a
/// black tick, one block per variable.
pub fn group_bars_svg(groups: &[GroupFigures]) -> String {
    const W: f64 = 760.0;
    const LABEL: f64 = 190.0;
    const R: f64 = 70.0;
    const BAR: f64 = 9.0;
    const ROW: f64 = 2.0 * BAR + 8.0;
    const HEAD: f64 = 22.0;
    const TOP: f64 = 48.0;
    let max = groups
        .iter()
        .flat_map(|g| [g.ours_mape, g.schablon_mape, g.best_mape.unwrap_or(0.0)])
        .filter(|v| v.is_finite())
        .fold(0.0, f64::max);
    let (max, ticks) = nice_ticks(100.0 * max.max(0.01), 6);
    let pw = W - LABEL - R;
    let sx = |mape: f64| LABEL + pw * (100.0 * mape).clamp(0.0, max) / max;
    let mut variables: Vec<&str> = Vec::new();
    for g in groups {
        if !variables.contains(&g.variable.as_str()) {
            variables.push(&g.variable);
        }
    }
    let height = TOP + variables.len() as f64 * HEAD + groups.len() as f64 * ROW + 30.0;
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {height:.0}" role="img" class="plot wide"><title>MAPE by context group</title>"#
    );
    // Legend.
    let _ = write!(
        s,
        r##"<rect x="{LABEL}" y="6" width="12" height="10" fill="{OURS}"/><text x="{:.0}" y="15" class="legend">ours</text><rect x="{:.0}" y="6" width="12" height="10" fill="{SCHABLON}"/><text x="{:.0}" y="15" class="legend">stacked schablon</text><line x1="{:.0}" y1="4" x2="{:.0}" y2="18" stroke="{BEST}" stroke-width="2"/><text x="{:.0}" y="15" class="legend">best achievable</text>"##,
        LABEL + 16.0,
        LABEL + 70.0,
        LABEL + 86.0,
        LABEL + 215.0,
        LABEL + 215.0,
        LABEL + 222.0
    );
    let bottom = height - 24.0;
    for &t in &ticks {
        let x = LABEL + pw * t / max;
        let _ = write!(
            s,
            r##"<line x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{bottom:.1}" stroke="#e6e8ec"/><text x="{x:.1}" y="{:.1}" text-anchor="middle" class="tick">{} %</text><text x="{x:.1}" y="{:.1}" text-anchor="middle" class="tick">{} %</text>"##,
            TOP - 6.0,
            TOP - 10.0,
            tick_label(t),
            bottom + 14.0,
            tick_label(t)
        );
    }
    let mut y = TOP;
    for var in &variables {
        let _ = write!(
            s,
            r#"<text x="6" y="{:.1}" class="group">{}</text>"#,
            y + 15.0,
            esc(var)
        );
        y += HEAD;
        for g in groups.iter().filter(|g| g.variable == *var) {
            let _ = write!(
                s,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="end" class="label">{} <tspan class="n">(n {})</tspan></text>"#,
                LABEL - 8.0,
                y + BAR + 4.0,
                esc(&g.value),
                g.n
            );
            let best_x = g.best_mape.filter(|b| b.is_finite()).map(sx);
            for (k, (v, color)) in [(g.ours_mape, OURS), (g.schablon_mape, SCHABLON)]
                .into_iter()
                .enumerate()
            {
                let by = y + k as f64 * BAR;
                // The value goes right of the bar, and of the best-achievable tick on
                // our bar's row.
                let text_x = match best_x {
                    Some(bx) if k == 0 => sx(v).max(bx) + 5.0,
                    _ => sx(v) + 4.0,
                };
                if v.is_finite() {
                    let _ = write!(
                        s,
                        r#"<rect x="{LABEL}" y="{by:.1}" width="{:.1}" height="{:.1}" fill="{color}"><title>{} = {}: {} MAPE {}</title></rect><text x="{:.1}" y="{:.1}" class="val">{}</text>"#,
                        (sx(v) - LABEL).max(0.5),
                        BAR - 1.0,
                        esc(&g.variable),
                        esc(&g.value),
                        if k == 0 { "ours" } else { "schablon" },
                        pct(v),
                        text_x,
                        by + BAR - 1.5,
                        pct(v)
                    );
                }
            }
            if let (Some(bx), Some(b)) = (best_x, g.best_mape) {
                let _ = write!(
                    s,
                    r#"<line x1="{bx:.1}" y1="{:.1}" x2="{bx:.1}" y2="{:.1}" stroke="{BEST}" stroke-width="2"><title>best achievable {}</title></line>"#,
                    y - 2.0,
                    y + BAR + 0.5,
                    pct(b)
                );
            }
            y += ROW;
        }
    }
    let _ = write!(
        s,
        r##"<line x1="{LABEL}" y1="{:.1}" x2="{LABEL}" y2="{bottom:.1}" stroke="#555"/></svg>"##,
        TOP - 4.0
    );
    s
}

// ---------------------------------------------------------------------------------------
// HTML

pub const STYLE: &str = r#"
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d2330;margin:0;background:#f4f5f8}
main{max-width:1100px;margin:0 auto;padding:24px 28px 60px}
h1{font-size:26px;margin:8px 0 2px} h2{font-size:20px;margin:34px 0 10px;border-bottom:1px solid #d9dce3;padding-bottom:4px}
.sub{color:#5b6272;margin:0 0 18px}
.cards{display:flex;gap:14px;flex-wrap:wrap;margin:16px 0}
.card{background:#fff;border:1px solid #dde0e6;border-radius:8px;padding:12px 16px;min-width:170px;flex:1}
.card .k{font-size:13px;color:#5b6272}.card .v{font-size:28px;font-weight:650}
.card.ours .v{color:#0b6bcb}.card.sch .v{color:#b86e00}.card.best .v{color:#222}
table{border-collapse:collapse;background:#fff;border:1px solid #dde0e6;margin:8px 0 4px;font-variant-numeric:tabular-nums}
th,td{padding:5px 12px;text-align:right;border-bottom:1px solid #eceef2}
th:first-child,td:first-child{text-align:left}
thead th{background:#f0f2f6;font-weight:600}
th.ours{color:#0b6bcb}th.sch{color:#b86e00}
.plots{display:flex;gap:18px;flex-wrap:wrap}
.plotbox{background:#fff;border:1px solid #dde0e6;border-radius:8px;padding:8px;flex:1;min-width:320px}
svg.plot{width:100%;height:auto;max-width:560px;display:block;margin:auto}
svg.plot.wide{max-width:1000px}
svg text{font-family:system-ui,sans-serif}
.tick{font-size:11px;fill:#444}.axis{font-size:13px;fill:#222}.legend{font-size:12px;fill:#222}
.ptitle{font-size:14px;font-weight:600;fill:#222}.group{font-size:13px;font-weight:650;fill:#222}
.label{font-size:12px;fill:#222}.n{fill:#777}.val{font-size:10.5px;fill:#444}
.note{color:#5b6272;font-size:13.5px}
.warn{background:#fff6e5;border:1px solid #f0c36d;border-radius:6px;padding:8px 12px}
code{background:#eef0f4;padding:1px 4px;border-radius:3px}
details{margin:8px 0}
"#;

fn metrics_table(unit: &'static str, cols: &[(&str, &str, Option<&Metrics>)]) -> String {
    let mut s = String::from("<table><thead><tr><th></th>");
    for (name, class, _) in cols {
        let _ = write!(s, r#"<th class="{class}">{}</th>"#, esc(name));
    }
    s.push_str("</tr></thead><tbody>");
    for (label, f) in metric_rows(unit) {
        let _ = write!(s, "<tr><td>{}</td>", esc(label));
        for (_, _, m) in cols {
            match m {
                Some(m) => {
                    let _ = write!(s, "<td>{}</td>", esc(&f(m)));
                }
                None => s.push_str("<td>–</td>"),
            }
        }
        s.push_str("</tr>");
    }
    s.push_str("</tbody></table>");
    s
}

pub fn card(class: &str, key: &str, value: &str, note: &str) -> String {
    format!(
        r#"<div class="card {class}"><div class="k">{}</div><div class="v">{}</div><div class="k">{}</div></div>"#,
        esc(key),
        esc(value),
        esc(note)
    )
}

/// Evenly thinned points, at most `max`.
fn thin<T: Copy>(v: &[T], max: usize) -> Vec<T> {
    if v.len() <= max {
        return v.to_vec();
    }
    (0..max).map(|i| v[i * v.len() / max]).collect()
}

/// The full report page.
pub fn html(e: &Evaluation) -> String {
    let w = &e.weekly;
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>ramtid evaluation: {0}/{1}</title><style>{STYLE}</style></head><body><main>"#,
        esc(&e.model.name),
        esc(&e.model.version)
    );
    let _ = write!(
        s,
        r#"<h1>Held-out evaluation of model {}/{}</h1><p class="sub">{} recipients evaluated, person-week level · created {} · model folder <code>{}</code></p>"#,
        esc(&e.model.name),
        esc(&e.model.version),
        w.n,
        esc(&e.created),
        esc(&e.model.dir)
    );

    // Headline cards.
    s.push_str(r#"<div class="cards">"#);
    s.push_str(&card(
        "ours",
        "Our MAPE (person-week)",
        &pct(w.ours.mape),
        &format!("bias {}", signed_pct(w.ours.bias)),
    ));
    s.push_str(&card(
        "sch",
        "Stacked schablon MAPE",
        &pct(w.schablon.mape),
        &format!("bias {}", signed_pct(w.schablon.bias)),
    ));
    if let Some(b) = &w.best {
        s.push_str(&card(
            "best",
            "Best achievable MAPE",
            &pct(b.mape),
            &format!(
                "ours / best = {}",
                w.mape_ratio_ours_over_best
                    .map_or("–".into(), |r| num(r, 2))
            ),
        ));
    }
    s.push_str(&card(
        "ours",
        "P10–P90 coverage",
        &w.ours.interval_coverage.map_or("–".to_string(), pct),
        "target 80 %",
    ));
    s.push_str("</div>");

    if e.data.needs_failed > 0 || e.data.schablon_mismatches > 0 || e.data.truth_unmatched > 0 {
        s.push_str(r#"<p class="warn">"#);
        if e.data.needs_failed > 0 {
            let _ = write!(
                s,
                "{} of {} needs lines could not be estimated and are left out (see <a href=\"#data\">Data</a>). ",
                e.data.needs_failed, e.data.needs_lines
            );
        }
        if e.data.truth_unmatched > 0 {
            let _ = write!(
                s,
                "{} truth rows match no readable needs line. ",
                e.data.truth_unmatched
            );
        }
        if e.data.schablon_mismatches > 0 {
            let _ = write!(
                s,
                "For {} recipients the truth file's schablon differs from the model catalog's; the figures use the catalog's.",
                e.data.schablon_mismatches
            );
        }
        s.push_str("</p>");
    }

    // Person-week.
    s.push_str("<h2>Minutes per week, per recipient</h2>");
    let mut cols: Vec<(&str, &str, Option<&Metrics>)> = vec![
        ("ours", "ours", Some(&w.ours)),
        ("stacked schablon", "sch", Some(&w.schablon)),
    ];
    if w.best.is_some() {
        cols.push(("best achievable", "", w.best.as_ref()));
    }
    s.push_str(&metrics_table("week", &cols));
    let _ = write!(
        s,
        r#"<p class="note">Against <code>true_weekly_min</code>. <em>Best achievable</em> is the true model without the recipient's own, unobservable variation: the best any predictor that sees only needs and context can do. Our weekly interval is the point estimate × [{}, {}].</p>"#,
        num(w.weekly_interval[0], 3),
        num(w.weekly_interval[1], 3)
    );
    let mut extra = Vec::new();
    if let Some(m) = &w.ours_staff {
        extra.push(format!(
            "staff minutes (both staff counted): MAPE ours {}{}, bias {}",
            pct(m.mape),
            w.best_staff
                .as_ref()
                .map_or(String::new(), |b| format!(", best {}", pct(b.mape))),
            signed_pct(m.bias)
        ));
    }
    if let Some(m) = &w.visits_per_week {
        extra.push(format!(
            "visits per week planned vs true: MAE {} visits, bias {}",
            num(m.mae, 2),
            signed_pct(m.bias)
        ));
    }
    if !extra.is_empty() {
        let _ = write!(s, r#"<p class="note">{}.</p>"#, esc(&extra.join("; ")));
    }
    let ours_pts: Vec<(f64, f64)> = e
        .recipients
        .iter()
        .map(|r| (r.true_weekly_min, r.weekly_min))
        .collect();
    let sch_pts: Vec<(f64, f64)> = e
        .recipients
        .iter()
        .map(|r| (r.true_weekly_min, r.schablon_weekly_min))
        .collect();
    s.push_str(r#"<div class="plots"><div class="plotbox">"#);
    s.push_str(&scatter_svg(
        "Predicted vs true minutes per week",
        "true minutes per week",
        "predicted minutes per week",
        &[
            Series {
                name: "stacked schablon",
                color: SCHABLON,
                points: sch_pts,
            },
            Series {
                name: "ours",
                color: OURS,
                points: ours_pts,
            },
        ],
    ));
    s.push_str("</div>");

    // Per visit.
    if e.visits.is_some() {
        s.push_str(r#"<div class="plotbox">"#);
        let pts = thin(&e.visit_points, MAX_VISIT_POINTS);
        s.push_str(&scatter_svg(
            &format!(
                "Per visit: predicted vs true minutes{}",
                if pts.len() < e.visit_points.len() {
                    format!(" ({} of {} visits)", pts.len(), e.visit_points.len())
                } else {
                    String::new()
                }
            ),
            "true (efficient) minutes of the visit",
            "predicted minutes",
            &[
                Series {
                    name: "schablon sum of the tasks",
                    color: SCHABLON,
                    points: pts.iter().map(|p| (p.truth, p.schablon)).collect(),
                },
                Series {
                    name: "ours",
                    color: OURS,
                    points: pts.iter().map(|p| (p.truth, p.ours)).collect(),
                },
            ],
        ));
        s.push_str("</div>");
    }
    s.push_str("</div>");

    if let Some(v) = &e.visits {
        let _ = write!(s, "<h2>Minutes per visit ({} visits)</h2>", v.n);
        let mut cols: Vec<(&str, &str, Option<&Metrics>)> = vec![
            ("ours", "ours", Some(&v.ours)),
            ("schablon sum", "sch", Some(&v.schablon)),
        ];
        if v.best.is_some() {
            cols.push(("best achievable", "", v.best.as_ref()));
        }
        s.push_str(&metrics_table("visit", &cols));
        let _ = write!(
            s,
            r#"<p class="note">Each visit of <code>{}</code> predicted from its tasks, check-in slot, staff and context, against <code>{}</code>. Interval: prediction × [{}, {}].{}</p>"#,
            esc(&v.file),
            esc(&v.target_column),
            num(v.visit_interval[0], 3),
            num(v.visit_interval[1], 3),
            v.mape_ratio_ours_over_best
                .map_or(String::new(), |r| format!(
                    " Ours / best MAPE: {}.",
                    num(r, 2)
                ))
        );
        s.push_str(&group_table(&v.by_slot, "slot"));
    }

    // Groups.
    s.push_str("<h2>Error by context group (person-week)</h2>");
    s.push_str(r#"<div class="plotbox">"#);
    s.push_str(&group_bars_svg(&e.groups));
    s.push_str("</div>");
    s.push_str(r#"<p class="note">Numeric variables and need size (the stacked schablon week) are split into quintiles of the held-out recipients. Bias is Σpred/Σtrue − 1 within the group.</p>"#);
    s.push_str("<details><summary>All group figures</summary>");
    s.push_str(&group_table(&e.groups, "variable"));
    s.push_str("</details>");

    // Data.
    let d = &e.data;
    s.push_str(r#"<h2 id="data">Data</h2><table><tbody>"#);
    let rows: Vec<(&str, String)> = vec![
        ("needs file", e.inputs.needs.clone()),
        ("truth file", e.inputs.truth.clone()),
        (
            "visit file",
            e.inputs.visits.clone().unwrap_or_else(|| "–".into()),
        ),
        ("needs lines", d.needs_lines.to_string()),
        ("estimated", d.needs_estimated.to_string()),
        ("failed", d.needs_failed.to_string()),
        ("truth rows", d.truth_rows.to_string()),
        ("recipients evaluated", d.recipients_evaluated.to_string()),
        ("estimated without truth", d.needs_without_truth.to_string()),
        ("truth of failed needs", d.truth_of_failed_needs.to_string()),
        ("schablon mismatches", d.schablon_mismatches.to_string()),
    ];
    for (k, v) in rows {
        let _ = write!(s, "<tr><td>{}</td><td>{}</td></tr>", esc(k), esc(&v));
    }
    s.push_str("</tbody></table>");
    if !d.needs_problems.is_empty() {
        s.push_str("<details open><summary>Needs lines that failed</summary><table><thead><tr><th>line</th><th>recipient</th><th>problem</th></tr></thead><tbody>");
        for p in &d.needs_problems {
            let _ = write!(
                s,
                r#"<tr><td>{}</td><td>{}</td><td style="text-align:left">{}</td></tr>"#,
                p.line,
                esc(&p.recipient_id),
                esc(&p.message)
            );
        }
        s.push_str("</tbody></table></details>");
    }
    s.push_str(r#"<p class="note">MAPE: mean of |pred − true| / true. Median abs. % error: its median. Bias: Σpred / Σtrue − 1. R²: 1 − Σ(pred − true)² / Σ(true − mean true)². Within ±10 %: share with |pred − true| ≤ 10 % of true. Coverage: share of true values inside P10–P90 (80 % is calibrated). Per-recipient figures are in <code>recipients.csv</code>, all figures in <code>evaluation.json</code>.</p>"#);
    s.push_str("</main></body></html>\n");
    s
}

fn group_table(groups: &[GroupFigures], first: &str) -> String {
    let has_best = groups.iter().any(|g| g.best_mape.is_some());
    let mut s = format!(
        r#"<table><thead><tr><th>{}</th><th>value</th><th>n</th><th class="ours">MAPE ours</th><th class="ours">bias ours</th><th class="sch">MAPE schablon</th><th class="sch">bias schablon</th>{}</tr></thead><tbody>"#,
        esc(first),
        if has_best { "<th>MAPE best</th>" } else { "" }
    );
    for g in groups {
        let _ = write!(
            s,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>{}</tr>",
            esc(&g.variable),
            esc(&g.value),
            g.n,
            pct(g.ours_mape),
            signed_pct(g.ours_bias),
            pct(g.schablon_mape),
            signed_pct(g.schablon_bias),
            if has_best {
                format!("<td>{}</td>", g.best_mape.map_or("–".into(), pct))
            } else {
                String::new()
            }
        );
    }
    s.push_str("</tbody></table>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_and_cover_the_range() {
        let (max, ticks) = nice_ticks(973.0, 6);
        assert_eq!(max, 1000.0);
        assert_eq!(ticks[1], 200.0);
        let (max, ticks) = nice_ticks(47.0, 6);
        assert_eq!((max, ticks[1]), (50.0, 10.0));
        assert!(nice_ticks(0.0, 6).0 > 0.0);
    }

    #[test]
    fn escaping_and_thinning() {
        assert_eq!(esc("<a & 'b'>"), "&lt;a &amp; &#39;b&#39;&gt;");
        let v: Vec<usize> = (0..10).collect();
        assert_eq!(thin(&v, 5), vec![0, 2, 4, 6, 8]);
        assert_eq!(thin(&v, 20).len(), 10);
    }
}
