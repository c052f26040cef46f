//! The catalog design's report page, in the reports' style (their stylesheet, cards and
//! escaping: [`crate::evaluate::report`]).

use super::{BroadCode, Design};
use crate::evaluate::report::{card, esc, nice_ticks, num, pct, STYLE};

/// A figure of a candidate, for a bar.
type Measure = fn(&super::CandidateResult) -> f64;

const COLORS: [&str; 3] = ["#0b6bcb", "#b86e00", "#7a7f8c"];

/// Horizontal bars: one row per candidate, one bar per measure.
fn candidate_bars_svg(d: &Design) -> String {
    const W: f64 = 1000.0;
    const LABEL: f64 = 260.0;
    const ROW: f64 = 46.0;
    let measures: [(&str, Measure); 2] = [
        ("MAPE against the detailed estimate", |c| c.mape_vs_detailed),
        ("accuracy lost against performed (points)", |c| {
            c.accuracy_lost.max(0.0)
        }),
    ];
    let max = (0..d.candidates.len())
        .flat_map(|i| measures.iter().map(move |(_, f)| f(&d.candidates[i])))
        .fold(0.0f64, f64::max)
        .max(1e-3);
    let (top, ticks) = nice_ticks(max * 100.0, 5);
    let height = 50.0 + ROW * d.candidates.len() as f64 + 40.0;
    let x = |v: f64| LABEL + (W - LABEL - 30.0) * (v * 100.0 / top);
    let mut s = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {height:.0}" role="img" class="plot wide"><title>Accuracy of each candidate catalog</title>"#
    );
    let bottom = 40.0 + ROW * d.candidates.len() as f64;
    for t in &ticks {
        let xt = x(t / 100.0);
        s.push_str(&format!(
            r##"<line x1="{xt:.1}" y1="34" x2="{xt:.1}" y2="{bottom:.1}" stroke="#e3e5ea"/><text x="{xt:.1}" y="{:.1}" class="tick" text-anchor="middle">{}%</text>"##,
            bottom + 14.0,
            num(*t, 0)
        ));
    }
    for (i, c) in d.candidates.iter().enumerate() {
        let y = 40.0 + ROW * i as f64;
        s.push_str(&format!(
            r#"<text x="{:.1}" y="{:.1}" class="label" text-anchor="end">{}</text>"#,
            LABEL - 8.0,
            y + 20.0,
            esc(&c.name)
        ));
        for (k, (_, f)) in measures.iter().enumerate() {
            let v = f(c);
            let yb = y + 4.0 + 17.0 * k as f64;
            s.push_str(&format!(
                r#"<rect x="{LABEL}" y="{yb:.1}" width="{:.1}" height="14" fill="{}"/><text x="{:.1}" y="{:.1}" class="val">{}</text>"#,
                (x(v) - LABEL).max(0.5),
                COLORS[k],
                x(v) + 4.0,
                yb + 11.0,
                pct(v)
            ));
        }
    }
    for (k, (name, _)) in measures.iter().enumerate() {
        let lx = LABEL + 330.0 * k as f64;
        s.push_str(&format!(
            r#"<rect x="{lx}" y="12" width="12" height="12" fill="{}"/><text x="{}" y="22" class="legend">{}</text>"#,
            COLORS[k],
            lx + 16.0,
            esc(name)
        ));
    }
    s.push_str(&format!(
        r##"<line x1="{LABEL}" y1="34" x2="{LABEL}" y2="{bottom:.1}" stroke="#555"/></svg>"##
    ));
    s
}

/// Each broad code's minutes per occasion over held-out recipients: P10–P90 bar, median
/// tick and the schablon that matches.
fn broad_codes_svg(codes: &[BroadCode]) -> String {
    const W: f64 = 1000.0;
    const LABEL: f64 = 200.0;
    const ROW: f64 = 24.0;
    let max = codes
        .iter()
        .map(|c| c.minutes_p90.max(c.schablon_to_match))
        .fold(1.0f64, f64::max);
    let (top, ticks) = nice_ticks(max, 6);
    let x = |v: f64| LABEL + (W - LABEL - 30.0) * (v / top);
    let bottom = 34.0 + ROW * codes.len() as f64;
    let mut s = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {:.0}" role="img" class="plot wide"><title>Minutes per occasion of each broad code</title>"#,
        bottom + 40.0
    );
    for t in &ticks {
        let xt = x(*t);
        s.push_str(&format!(
            r##"<line x1="{xt:.1}" y1="30" x2="{xt:.1}" y2="{bottom:.1}" stroke="#e3e5ea"/><text x="{xt:.1}" y="{:.1}" class="tick" text-anchor="middle">{}</text>"##,
            bottom + 14.0,
            num(*t, 0)
        ));
    }
    for (i, c) in codes.iter().enumerate() {
        let y = 34.0 + ROW * i as f64;
        s.push_str(&format!(
            r##"<text x="{:.1}" y="{:.1}" class="label" text-anchor="end">{} <tspan class="n">({})</tspan></text><rect x="{:.1}" y="{:.1}" width="{:.1}" height="10" fill="#0b6bcb" opacity="0.35"/><line x1="{m:.1}" y1="{:.1}" x2="{m:.1}" y2="{:.1}" stroke="#0b6bcb" stroke-width="2"/><circle cx="{:.1}" cy="{:.1}" r="4" fill="#b86e00"/>"##,
            LABEL - 8.0,
            y + 14.0,
            esc(&c.code),
            c.recipients,
            x(c.minutes_p10),
            y + 5.0,
            (x(c.minutes_p90) - x(c.minutes_p10)).max(1.0),
            y + 2.0,
            y + 18.0,
            x(c.schablon_to_match),
            y + 10.0,
            m = x(c.minutes_p50),
        ));
    }
    s.push_str(&format!(
        r##"<text x="{LABEL}" y="{:.1}" class="axis">minutes per occasion: P10–P90 (bar), median (line), schablon to match (dot)</text><line x1="{LABEL}" y1="30" x2="{LABEL}" y2="{bottom:.1}" stroke="#555"/></svg>"##,
        bottom + 34.0
    ));
    s
}

pub fn html(d: &Design) -> String {
    let mut s = format!(
        r#"<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>ramtid catalog design: {0}/{1}</title><style>{STYLE}</style></head><body><main>"#,
        esc(&d.model_name),
        esc(&d.model_version)
    );
    s.push_str(&format!(
        r#"<h1>Catalog design: {} codes from {} detailed codes</h1><p class="sub">Model {}/{} · {} recipients to learn the mix, {} held out (seed {}) · {} s</p>"#,
        d.clusters_wanted,
        d.detailed_codes,
        esc(&d.model_name),
        esc(&d.model_version),
        d.recipients_training,
        d.recipients_heldout,
        d.seed,
        num(d.seconds, 1)
    ));
    let proposed = &d.candidates[0];
    let random = d.candidates.iter().find(|c| c.source == "random");
    s.push_str(r#"<div class="cards">"#);
    s.push_str(&card(
        "ours",
        "proposed: MAPE against detailed",
        &pct(proposed.mape_vs_detailed),
        &format!("{} codes", proposed.codes),
    ));
    if let Some(r) = random {
        s.push_str(&card(
            "sch",
            "random groupings: median MAPE against detailed",
            &pct(d.random_median_mape_vs_detailed),
            &format!("{} codes", r.codes),
        ));
    }
    s.push_str(&card(
        "best",
        "detailed catalog: MAPE against performed",
        &pct(d.detailed_mape_vs_performed),
        &format!("{} codes", d.detailed_codes),
    ));
    s.push_str("</div>");
    s.push_str(r#"<h2>Candidates</h2><div class="plotbox">"#);
    s.push_str(&candidate_bars_svg(d));
    s.push_str("</div><table><thead><tr><th>candidate</th><th>codes</th><th>MAPE vs detailed</th><th>bias vs detailed</th><th>MAPE vs performed</th><th>accuracy lost</th></tr></thead><tbody>");
    for c in &d.candidates {
        s.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&c.name),
            c.codes,
            pct(c.mape_vs_detailed),
            crate::evaluate::report::signed_pct(c.bias_vs_detailed),
            pct(c.mape_vs_performed),
            crate::evaluate::report::signed_pct(c.accuracy_lost)
        ));
    }
    s.push_str("</tbody></table>");
    s.push_str(r#"<p class="note">Person-weeks of held-out recipients: each recipient's detailed order is their logged codes at their logged frequencies; the broad order sums each cluster's members. "Accuracy lost" is the broad catalog's MAPE against performed minutes minus the detailed catalog's.</p>"#);
    for c in &d.candidates {
        s.push_str(&format!(
            "<h2>{}</h2><div class=\"plotbox\">{}</div>",
            esc(&c.name),
            broad_codes_svg(&c.broad_codes)
        ));
        s.push_str("<table><thead><tr><th>broad code</th><th>category</th><th>members (share)</th><th>recipients</th><th>min/occasion P10</th><th>median</th><th>P90</th><th>schablon to match</th></tr></thead><tbody>");
        for b in &c.broad_codes {
            let members: Vec<String> = b
                .members
                .iter()
                .zip(&b.shares)
                .map(|(m, s)| format!("{} ({})", esc(m), pct(*s)))
                .collect();
            s.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&b.code),
                esc(&b.category),
                members.join(", "),
                b.recipients,
                num(b.minutes_p10, 1),
                num(b.minutes_p50, 1),
                num(b.minutes_p90, 1),
                num(b.schablon_to_match, 1)
            ));
        }
        s.push_str("</tbody></table>");
    }
    s.push_str("</main></body></html>\n");
    s
}
