//! `report.html`: one self-contained page in the evaluation report's style (its CSS, cards
//! and axis ticks), with inline SVG plots: the distribution of recipient-month ratios over
//! the bands, each unit's index with its P10–P90 interval, and the consumption trend with
//! hours per recipient-month by age band.

use super::band::Band;
use super::consumption::{Consumption, GroupRow, TrendPoint};
use super::providers::ProviderRow;
use super::FollowUp;
use crate::evaluate::report::{card, esc, nice_ticks, num, pct, STYLE};
use std::fmt::Write as _;

/// Width of a ratio bin, and the last bin's lower edge (everything above is drawn in it).
const BIN: f64 = 0.05;
const TOP_RATIO: f64 = 2.0;

fn band_color(b: Band) -> &'static str {
    match b {
        Band::Under => "#b86e00",
        Band::Within => "#2e7d32",
        Band::OverTolerance => "#0b6bcb",
        Band::Over => "#c62828",
        Band::NoOrder => "#777",
    }
}

/// Horizontal grid lines at `ticks` across a plot area from `left`, `width` wide, each
/// labelled at its left by `label`.
fn y_grid(
    s: &mut String,
    ticks: &[f64],
    sy: impl Fn(f64) -> f64,
    left: f64,
    width: f64,
    label: impl Fn(f64) -> String,
) {
    for &t in ticks {
        let y = sy(t);
        let _ = write!(
            s,
            r##"<line x1="{left}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#e6e8ec"/><text x="{:.1}" y="{:.1}" text-anchor="end" class="tick">{}</text>"##,
            left + width,
            left - 6.0,
            y + 4.0,
            label(t)
        );
    }
}

/// Histogram of recipient-month ratios, each bar coloured by its band.
pub fn ratio_histogram_svg(ratios: &[f64], tolerance: f64) -> String {
    const W: f64 = 760.0;
    const H: f64 = 320.0;
    const L: f64 = 56.0;
    const R: f64 = 16.0;
    const T: f64 = 30.0;
    const B: f64 = 48.0;
    let bins = (TOP_RATIO / BIN).round() as usize + 1;
    let mut counts = vec![0usize; bins];
    for &r in ratios.iter().filter(|r| r.is_finite()) {
        counts[((r / BIN).floor().max(0.0) as usize).min(bins - 1)] += 1;
    }
    let max = counts.iter().copied().max().unwrap_or(0).max(1) as f64;
    let (ymax, yticks) = nice_ticks(max, 5);
    let (pw, ph) = (W - L - R, H - T - B);
    let bw = pw / bins as f64;
    let sx = |x: f64| L + pw * (x / (TOP_RATIO + BIN));
    let sy = |y: f64| T + ph * (1.0 - y / ymax);
    let mut s = String::new();
    let _ = write!(
        s,
        r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" role="img" class="plot wide" id="ratio-plot"><title>Performed ÷ ordered per recipient-month</title><rect x="{L}" y="{T}" width="{pw}" height="{ph}" fill="#fbfbfd" stroke="#c9ccd3"/>"##
    );
    y_grid(&mut s, &yticks, sy, L, pw, |t| (t as u64).to_string());
    for (k, &c) in counts.iter().enumerate() {
        if c == 0 {
            continue;
        }
        let mid = (k as f64 + 0.5) * BIN;
        let b = Band::of(Some(mid), tolerance);
        let y = sy(c as f64);
        let _ = write!(
            s,
            r#"<rect class="bar" x="{:.1}" y="{y:.1}" width="{:.1}" height="{:.1}" fill="{}" fill-opacity="0.75"><title>{:.2}–{:.2}: {c}</title></rect>"#,
            L + k as f64 * bw + 0.5,
            (bw - 1.0).max(0.5),
            T + ph - y,
            band_color(b),
            k as f64 * BIN,
            (k + 1) as f64 * BIN,
        );
    }
    for (x, label) in [
        (1.0 - tolerance, format!("1 − {}", num(tolerance, 2))),
        (1.0, "1".to_string()),
        (1.0 + tolerance, format!("1 + {}", num(tolerance, 2))),
    ] {
        let px = sx(x);
        let _ = write!(
            s,
            r##"<line x1="{px:.1}" y1="{T}" x2="{px:.1}" y2="{:.1}" stroke="#222" stroke-dasharray="4 3"/><text x="{px:.1}" y="{:.1}" text-anchor="middle" class="tick">{}</text>"##,
            T + ph,
            T - 4.0,
            esc(&label)
        );
    }
    for k in 0..=4 {
        let x = f64::from(k) * 0.5;
        let _ = write!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" class="tick">{}{}</text>"#,
            sx(x),
            T + ph + 16.0,
            num(x, 1),
            if k == 4 { "+" } else { "" }
        );
    }
    let _ = write!(
        s,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" class="axis">performed ÷ ordered (recipient-months; bins of {BIN})</text><text transform="translate(14 {:.1}) rotate(-90)" text-anchor="middle" class="axis">recipient-months</text></svg>"#,
        L + pw / 2.0,
        H - 8.0,
        T + ph / 2.0
    );
    s
}

/// Each unit's index (dot) with its P10–P90 interval (line), ranked, with 1 and 1 + t.
pub fn provider_index_svg(rows: &[ProviderRow], tolerance: f64) -> String {
    const W: f64 = 760.0;
    const LABEL: f64 = 150.0;
    const R: f64 = 24.0;
    const T: f64 = 34.0;
    const ROW: f64 = 18.0;
    const B: f64 = 44.0;
    let h = T + ROW * rows.len().max(1) as f64 + B;
    let finite = |x: f64| x.is_finite().then_some(x);
    let lo = rows
        .iter()
        .filter_map(|r| finite(r.index_p10.min(r.index)))
        .fold(1.0f64, f64::min);
    let hi = rows
        .iter()
        .filter_map(|r| finite(r.index_p90.max(r.index)))
        .fold(1.0 + tolerance, f64::max);
    let (x0, x1) = ((lo - 0.05).max(0.0), hi + 0.05);
    let pw = W - LABEL - R;
    let sx = |x: f64| LABEL + pw * ((x.clamp(x0, x1) - x0) / (x1 - x0));
    let mut s = String::new();
    let _ = write!(
        s,
        r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {h:.0}" role="img" class="plot wide" id="provider-plot"><title>Provider index with P10–P90 interval</title><rect x="{LABEL}" y="{T}" width="{pw}" height="{:.1}" fill="#fbfbfd" stroke="#c9ccd3"/>"##,
        h - T - B
    );
    for (x, label) in [
        (1.0, "1 (as expected)".to_string()),
        (1.0 + tolerance, format!("1 + {}", num(tolerance, 2))),
    ] {
        let px = sx(x);
        let _ = write!(
            s,
            r##"<line x1="{px:.1}" y1="{T}" x2="{px:.1}" y2="{:.1}" stroke="#2e7d32" stroke-dasharray="5 4"/><text x="{px:.1}" y="{:.1}" text-anchor="middle" class="tick">{}</text>"##,
            h - B,
            T - 6.0,
            esc(&label)
        );
    }
    let steps = 6;
    for k in 0..=steps {
        let x = x0 + (x1 - x0) * f64::from(k) / f64::from(steps);
        let _ = write!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" class="tick">{}</text>"#,
            sx(x),
            h - B + 16.0,
            num(x, 2)
        );
    }
    for (i, r) in rows.iter().enumerate() {
        let y = T + ROW * (i as f64 + 0.5);
        let _ = write!(
            s,
            r##"<text x="{:.1}" y="{:.1}" text-anchor="end" class="label">{}</text><line x1="{:.1}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#0b6bcb" stroke-width="2"/><circle class="dot" cx="{:.1}" cy="{y:.1}" r="4" fill="#0b6bcb"><title>{}: {} (P10 {}, P90 {})</title></circle>"##,
            LABEL - 8.0,
            y + 4.0,
            esc(&r.unit_id),
            sx(r.index_p10),
            sx(r.index_p90),
            sx(r.index),
            esc(&r.unit_id),
            num(r.index, 3),
            num(r.index_p10, 3),
            num(r.index_p90, 3)
        );
    }
    let _ = write!(
        s,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" class="axis">index = performed ÷ expected efficient minutes (dot), P10–P90 over recipients (line)</text></svg>"#,
        LABEL + pw / 2.0,
        h - 8.0
    );
    s
}

/// The month-by-month trend: staff hours per inhabitant aged 80+ and year when the
/// population is known, else staff hours per recipient-month.
pub fn trend_svg(trend: &[TrendPoint], per_inhabitant: bool) -> String {
    const W: f64 = 760.0;
    const H: f64 = 300.0;
    const L: f64 = 64.0;
    const R: f64 = 20.0;
    const T: f64 = 30.0;
    const B: f64 = 56.0;
    let value = |p: &TrendPoint| {
        if per_inhabitant {
            p.staff_hours_per_inhabitant_80_plus_year
        } else {
            Some(p.staff_hours_per_recipient_month)
        }
    };
    let max = trend.iter().filter_map(value).fold(0.0f64, f64::max);
    let (ymax, yticks) = nice_ticks(max, 5);
    let (pw, ph) = (W - L - R, H - T - B);
    let n = trend.len().max(1);
    let sx = |i: usize| L + pw * (i as f64 + 0.5) / n as f64;
    let sy = |y: f64| T + ph * (1.0 - y / ymax);
    let what = if per_inhabitant {
        "staff hours per inhabitant aged 80+ and year (the month's rate)"
    } else {
        "staff hours per recipient-month"
    };
    let mut s = String::new();
    let _ = write!(
        s,
        r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" role="img" class="plot wide" id="consumption-trend"><title>Consumption month by month: {what}</title><rect x="{L}" y="{T}" width="{pw}" height="{ph}" fill="#fbfbfd" stroke="#c9ccd3"/>"##
    );
    y_grid(&mut s, &yticks, sy, L, pw, |t| {
        num(t, if ymax < 10.0 { 1 } else { 0 })
    });
    let points: Vec<String> = trend
        .iter()
        .enumerate()
        .filter_map(|(i, p)| value(p).map(|v| format!("{:.1},{:.1}", sx(i), sy(v))))
        .collect();
    if points.len() > 1 {
        let _ = write!(
            s,
            r##"<polyline points="{}" fill="none" stroke="#0b6bcb" stroke-width="2"/>"##,
            points.join(" ")
        );
    }
    // Label at most ~12 months so that the axis stays legible.
    let every = n.div_ceil(12);
    for (i, p) in trend.iter().enumerate() {
        if let Some(v) = value(p) {
            let _ = write!(
                s,
                r##"<circle class="dot trend" cx="{:.1}" cy="{:.1}" r="4" fill="#0b6bcb"><title>{}: {} ({} days, {} recipients)</title></circle>"##,
                sx(i),
                sy(v),
                esc(&p.month),
                num(v, 2),
                p.days,
                p.recipients
            );
        }
        if i % every == 0 {
            let _ = write!(
                s,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" class="tick">{}</text>"#,
                sx(i),
                T + ph + 16.0,
                esc(&p.month)
            );
        }
    }
    let _ = write!(
        s,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" class="axis">{what}</text></svg>"#,
        L + pw / 2.0,
        H - 10.0
    );
    s
}

/// Horizontal bars: staff hours per recipient-month of each group over the whole period.
pub fn group_bars_svg(rows: &[&GroupRow], id: &str, title: &str) -> String {
    const W: f64 = 760.0;
    const LABEL: f64 = 170.0;
    const R: f64 = 60.0;
    const T: f64 = 16.0;
    const ROW: f64 = 22.0;
    const B: f64 = 40.0;
    let h = T + ROW * rows.len().max(1) as f64 + B;
    let max = rows
        .iter()
        .map(|r| r.staff_hours_per_recipient_month)
        .fold(0.0f64, f64::max);
    let (xmax, xticks) = nice_ticks(max, 5);
    let pw = W - LABEL - R;
    let sx = |x: f64| LABEL + pw * x / xmax;
    let mut s = String::new();
    let _ = write!(
        s,
        r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {h:.0}" role="img" class="plot wide" id="{}"><title>{}</title>"##,
        esc(id),
        esc(title)
    );
    for &t in &xticks {
        let x = sx(t);
        let _ = write!(
            s,
            r##"<line x1="{x:.1}" y1="{T}" x2="{x:.1}" y2="{:.1}" stroke="#e6e8ec"/><text x="{x:.1}" y="{:.1}" text-anchor="middle" class="tick">{}</text>"##,
            h - B,
            h - B + 16.0,
            num(t, if xmax < 10.0 { 1 } else { 0 })
        );
    }
    for (i, r) in rows.iter().enumerate() {
        let y = T + ROW * i as f64;
        let v = r.staff_hours_per_recipient_month;
        let _ = write!(
            s,
            r##"<text x="{:.1}" y="{:.1}" text-anchor="end" class="label">{}</text><rect class="bar" x="{LABEL}" y="{:.1}" width="{:.1}" height="{:.1}" fill="#0b6bcb" fill-opacity="0.75"><title>{}: {} staff h per recipient-month, {} recipient-months</title></rect><text x="{:.1}" y="{:.1}" class="tick">{}</text>"##,
            LABEL - 8.0,
            y + ROW / 2.0 + 4.0,
            esc(&r.group),
            y + 3.0,
            (sx(v) - LABEL).max(0.5),
            ROW - 6.0,
            esc(&r.group),
            num(v, 2),
            r.recipient_months,
            sx(v) + 4.0,
            y + ROW / 2.0 + 4.0,
            num(v, 1)
        );
    }
    let _ = write!(
        s,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" class="axis">staff hours per recipient-month</text></svg>"#,
        LABEL + pw / 2.0,
        h - 8.0
    );
    s
}

/// The Norrköping check: the same needs get the same ordered time whatever the provider.
fn same_time_section(c: &super::same_time::SameTimeCheck, s: &mut String) {
    s.push_str(r#"<h2 id="same-time">Same needs, same time</h2>"#);
    if !c.applicable {
        s.push_str(r#"<p class="note">The orders are minutes only (a CSV), so there are no needs to compare. Give the orders as a needs.jsonl or the calculation history to check that the same needs get the same time whatever the provider.</p>"#);
        return;
    }
    let _ = write!(
        s,
        r#"<p class="note">{} ordered recipients in {} need profiles (needs and context, the recipient left out); {} profiles, {} recipients, are held at two or more providers. A recipient's provider is the unit its order names, or else the unit that performed most of its minutes. Differences up to {} min or {} of the lower are rounding.</p>"#,
        c.recipients,
        c.profiles,
        c.shared_profiles,
        c.recipients_in_shared,
        super::same_time::SAME_TIME_MIN,
        pct(super::same_time::SAME_TIME_SHARE)
    );
    s.push_str(r#"<div class="cards">"#);
    s.push_str(&card(
        if c.differing == 0 { "best" } else { "sch" },
        "Shared profiles with different times",
        &c.differing.to_string(),
        &format!("of {} shared", c.shared_profiles),
    ));
    s.push_str("</div>");
    if c.worst.is_empty() {
        return;
    }
    s.push_str("<table><thead><tr><th>need profile</th><th>provider</th><th>recipients</th><th>weekly min</th><th>models</th><th>spread</th></tr></thead><tbody>");
    for w in &c.worst {
        for (i, p) in w.providers.iter().enumerate() {
            let range = if p.weekly_min_low == p.weekly_min_high {
                num(p.weekly_min_low, 1)
            } else {
                format!("{}–{}", num(p.weekly_min_low, 1), num(p.weekly_min_high, 1))
            };
            let _ = write!(
                s,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                if i == 0 {
                    format!("<code>{}</code>", esc(&w.needs))
                } else {
                    String::new()
                },
                esc(&p.unit_id),
                p.recipients,
                range,
                esc(&p.models.join(", ")),
                if i == 0 { pct(w.spread) } else { String::new() }
            );
        }
    }
    s.push_str("</tbody></table>");
}

/// The consumption section: cards, the trend, the age bands and the context groups.
fn consumption_section(c: &Consumption, s: &mut String) {
    s.push_str(r#"<h2 id="consumption">Consumption (KPB)</h2>"#);
    let _ = write!(
        s,
        r#"<p class="note">Performed hours of the cleaned log, over {} days. A recipient-month is placed in the group of the context on its last visit of the month. Staff hours count both staff of a double-staffed visit, as cost does.{}</p>"#,
        c.days,
        match (&c.population_file, &c.age_variable) {
            (Some(p), _) => format!(
                " Inhabitants from {}; per-year figures scale the period's hours to {} days.",
                esc(p),
                super::consumption::DAYS_PER_YEAR
            ),
            (None, Some(_)) =>
                " Without a population file (--population) there is no figure per inhabitant."
                    .to_string(),
            (None, None) =>
                " The catalog has no age variable, so there are no age bands.".to_string(),
        }
    );
    let all = c
        .rows
        .iter()
        .find(|r| r.dimension == "all" && r.month == "all");
    s.push_str(r#"<div class="cards">"#);
    if let Some(a) = all {
        s.push_str(&card(
            "ours",
            "Staff hours per recipient-month",
            &num(a.staff_hours_per_recipient_month, 1),
            &format!(
                "{} recipient-months; wall-clock {}",
                a.recipient_months,
                num(a.hours_per_recipient_month, 1)
            ),
        ));
    }
    if let Some(x) = c.staff_hours_per_inhabitant_80_plus_year {
        s.push_str(&card(
            "best",
            "Staff hours per inhabitant 80+ and year",
            &num(x, 1),
            &format!(
                "{} inhabitants aged 80+",
                c.inhabitants_80_plus.unwrap_or(0)
            ),
        ));
    }
    s.push_str("</div>");
    let per_inhabitant = c.staff_hours_per_inhabitant_80_plus_year.is_some();
    let _ = write!(
        s,
        r#"<div class="plotbox">{}</div>"#,
        trend_svg(&c.trend, per_inhabitant)
    );
    let mut dims: Vec<&str> = Vec::new();
    for r in &c.rows {
        if r.dimension != "all" && !dims.contains(&r.dimension.as_str()) {
            dims.push(&r.dimension);
        }
    }
    for dim in dims {
        let rows: Vec<&GroupRow> = c
            .rows
            .iter()
            .filter(|r| r.dimension == dim && r.month == "all")
            .collect();
        let title = if dim == "age_band" {
            "By age band".to_string()
        } else {
            format!("By {dim}")
        };
        let _ = write!(s, "<h3>{}</h3>", esc(&title));
        let _ = write!(
            s,
            r#"<div class="plotbox">{}</div>"#,
            group_bars_svg(&rows, &format!("consumption-{dim}"), &title)
        );
        s.push_str("<table><thead><tr><th>group</th><th>recipients</th><th>recipient-months</th><th>staff h</th><th>staff h per recipient-month</th><th>wall-clock h per recipient-month</th><th>inhabitants</th><th>staff h per inhabitant and year</th></tr></thead><tbody>");
        for r in rows {
            let _ = write!(
                s,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&r.group),
                r.recipients,
                r.recipient_months,
                num(r.staff_hours, 1),
                num(r.staff_hours_per_recipient_month, 2),
                num(r.hours_per_recipient_month, 2),
                r.inhabitants.map_or("–".into(), |n| n.to_string()),
                r.staff_hours_per_inhabitant_year
                    .map_or("–".into(), |x| num(x, 2))
            );
        }
        s.push_str("</tbody></table>");
    }
}

pub fn page(f: &FollowUp) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>ramtid follow-up: {0}/{1}</title><style>{STYLE}
.chosen{{background:#eef5ff;font-weight:600}}</style></head><body><main>"#,
        esc(&f.model.name),
        esc(&f.model.version)
    );
    let _ = write!(
        s,
        r#"<h1>Follow-up: performed against ordered time</h1><p class="sub">model {}/{} · log {} to {}{} · tolerance {} · created {}</p>"#,
        esc(&f.model.name),
        esc(&f.model.version),
        esc(&f.span.first_day),
        esc(&f.span.last_day),
        f.month
            .as_ref()
            .map_or(String::new(), |m| format!(" · month {}", esc(m))),
        pct(f.tolerance),
        esc(&f.created)
    );
    let sm = &f.summary;
    let band_n = |b: Band| sm.bands.get(b.as_str()).copied().unwrap_or(0);
    let share = |b: Band| {
        if sm.recipient_months == 0 {
            "–".to_string()
        } else {
            pct(band_n(b) as f64 / sm.recipient_months as f64)
        }
    };
    s.push_str(r#"<div class="cards">"#);
    s.push_str(&card(
        "ours",
        "Performed ÷ ordered",
        &sm.ratio.map_or("–".into(), |r| num(r, 3)),
        &format!(
            "{} recipient-months, {} recipients",
            sm.recipient_months, sm.recipients
        ),
    ));
    s.push_str(&card(
        "best",
        "Within",
        &share(Band::Within),
        "1 − tol ≤ ratio ≤ 1",
    ));
    s.push_str(&card(
        "ours",
        "Over tolerance",
        &share(Band::OverTolerance),
        "1 < ratio ≤ 1 + tol",
    ));
    s.push_str(&card(
        "sch",
        "Under / over",
        &format!("{} / {}", share(Band::Under), share(Band::Over)),
        "outside the band",
    ));
    s.push_str(&card(
        "sch",
        "To reassess",
        &sm.reassess.to_string(),
        &format!("outside ≥ {} months in a row", f.reassess_after),
    ));
    s.push_str("</div>");

    s.push_str("<h2>Bands</h2>");
    let _ = write!(
        s,
        r#"<p class="note">under: ratio &lt; {}; within: {} ≤ ratio ≤ 1; over tolerance: 1 &lt; ratio ≤ {}; over: ratio &gt; {}; no order: performed time without an order in force. Ordered minutes are the weekly minutes × the days of the month the order was in force and the log covers ÷ 7.</p>"#,
        num(1.0 - f.tolerance, 3),
        num(1.0 - f.tolerance, 3),
        num(1.0 + f.tolerance, 3),
        num(1.0 + f.tolerance, 3)
    );
    s.push_str("<table><thead><tr><th>band</th><th>recipient-months</th></tr></thead><tbody>");
    for b in Band::ALL {
        let _ = write!(s, "<tr><td>{}</td><td>{}</td></tr>", b.as_str(), band_n(b));
    }
    s.push_str("</tbody></table>");
    let ratios: Vec<f64> = f.rows.iter().filter_map(|r| r.ratio).collect();
    let _ = write!(
        s,
        r#"<div class="plotbox">{}</div>"#,
        ratio_histogram_svg(&ratios, f.tolerance)
    );

    s.push_str("<h2>Providers, adjusted for case mix</h2>");
    let _ = write!(
        s,
        r#"<p class="note">Index = performed minutes ÷ the efficient minutes the model expects for exactly the unit's visits (their tasks, slot, staff and the recipients' context). 1 is as expected. The interval (P10–P90) carries the unit's caseload (a seeded bootstrap over its recipients) and the uncertainty of the efficient level itself, which all units share (log-scale sd {}): the level moves every index alike, so the ranking is surer than any one interval. Ranked from the lowest index.</p>"#,
        num(f.index_level_sd, 3)
    );
    let _ = write!(
        s,
        r#"<div class="plotbox">{}</div>"#,
        provider_index_svg(&f.providers, f.tolerance)
    );
    s.push_str("<table><thead><tr><th>unit</th><th>rank</th><th>recipients</th><th>visits</th><th>performed h</th><th>expected h</th><th>index</th><th>P10</th><th>P90</th><th>share over</th></tr></thead><tbody>");
    for p in &f.providers {
        let _ = write!(
            s,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&p.unit_id),
            p.rank,
            p.recipients,
            p.visits,
            num(p.performed_min / 60.0, 1),
            num(p.expected_min / 60.0, 1),
            num(p.index, 3),
            num(p.index_p10, 3),
            num(p.index_p90, 3),
            pct(p.share_over)
        );
    }
    s.push_str("</tbody></table>");

    same_time_section(&f.same_needs_same_time, &mut s);
    if let Some(p) = &f.payment {
        s.push_str(r#"<h2 id="payment">Payment</h2>"#);
        s.push_str(r#"<p class="note">From the follow-up's own cleaned visits and orders (payment_inputs.csv): performed minutes per category by the visits' tasks, granted ramtid split over categories as the order's estimate shares it, the granted schablon from the ordered needs.</p>"#);
        s.push_str(&p.html_section());
    }
    consumption_section(&f.consumption, &mut s);

    if !f.reassess.is_empty() {
        let _ = write!(s, "<h2>To reassess ({})</h2><table><thead><tr><th>recipient</th><th>month</th><th>band</th><th>months outside</th><th>ratio</th></tr></thead><tbody>", f.reassess.len());
        for r in f.reassess.iter().take(200) {
            let _ = write!(
                s,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&r.recipient_id),
                esc(&r.month),
                r.band.as_str(),
                r.months_outside,
                r.ratio.map_or("–".into(), |x| num(x, 3))
            );
        }
        s.push_str("</tbody></table>");
        if f.reassess.len() > 200 {
            s.push_str(r#"<p class="note">The first 200; all are in followup.json.</p>"#);
        }
    }

    let v = &f.visits;
    s.push_str(r#"<h2 id="data">Data</h2><table><tbody>"#);
    for (k, val) in [
        ("visit log", esc(&v.file)),
        ("rows read", v.rows_read.to_string()),
        ("rows used", v.rows_used.to_string()),
        ("rejected (left out)", v.rows_rejected.to_string()),
        ("flagged: duplicate", v.flagged_duplicate.to_string()),
        (
            "flagged: forgotten check-out",
            v.flagged_forgotten_checkout.to_string(),
        ),
        ("flagged: too short", v.flagged_too_short.to_string()),
        ("orders file", esc(&f.orders.file)),
        ("orders read", f.orders.rows.to_string()),
        ("orders failed (left out)", f.orders.failed.to_string()),
        ("ordered, never visited", sm.ordered_not_visited.to_string()),
        ("visited, never ordered", sm.visited_not_ordered.to_string()),
    ] {
        let _ = write!(s, "<tr><td>{k}</td><td>{val}</td></tr>");
    }
    s.push_str("</tbody></table>");
    if !v.first_rejects.is_empty() || !f.orders.problems.is_empty() {
        s.push_str("<details><summary>First problems</summary><ul>");
        for r in &v.first_rejects {
            let _ = write!(
                s,
                "<li>{}, row {}, column '{}': {}</li>",
                esc(&v.file),
                r.row,
                esc(&r.column),
                esc(&r.reason)
            );
        }
        for p in &f.orders.problems {
            let _ = write!(
                s,
                "<li>{}, line {}: {}</li>",
                esc(&f.orders.file),
                p.line,
                esc(&p.message)
            );
        }
        s.push_str("</ul></details>");
    }
    s.push_str("</main></body></html>\n");
    s
}
