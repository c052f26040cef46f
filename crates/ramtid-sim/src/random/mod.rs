//! Random worlds: municipalities whose *structure* is drawn from wide priors.
//!
//! The named worlds (`nordstad`, `sjobygd`) share their assumptions with the estimator: a
//! linear visit model, teams that are either exactly efficient or uniformly slow, an
//! all-or-nothing grouping rule. Validation on them cannot fail. A random world draws its
//! catalog, context schema, context effects (multiplicative or additive, uneven by level,
//! on some task groups only, with interactions), grouping practice, team and provider
//! paces, night patrol, substitutes and log faults from the priors documented in
//! `training/SIMULATION.md`, section 10, in code that shares nothing with the estimator:
//! it writes the files the way a foreign export would, knowing only the data contract's
//! file formats.
//!
//! Files (the layout of the named worlds, so that `train` and `evaluate` run unchanged):
//! `catalog.toml`, `visits.csv`, `needs.jsonl`, `truth.csv`, `heldout_visits.csv`,
//! `simulation.json`.

mod people;
mod rng;
mod world;

use crate::sink::Sink;
use people::{day_visits, draw_person, DayVisit, Person};
use rand::Rng;
use rand_distr::{Distribution, Gamma};
use rng::{normal, stream, uniform};
use serde_json::{json, Value};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use world::{Kind, Mode, Target, World, NIGHT, SLOTS};

pub use world::World as RandomWorld;

/// Weeks over which a held-out recipient's truth is averaged: every frequency a world
/// draws (0.1, 0.25, 0.5, 1, 2, 3, 7, 10, 14, 21 a week) has a whole number of occasions
/// in it, so the truth holds exactly what was ordered.
pub const TRUTH_WEEKS: i64 = 40;
/// Weeks of held-out visits in `heldout_visits.csv`.
pub const HELDOUT_WEEKS: i64 = 2;
/// Codes of an old catalog that turn up in logs.
const LEGACY_CODES: [&str; 3] = ["GAMMAL_INSATS", "EXTRA_TID", "OKAND"];

const PURPOSE_PERSON: u64 = 1;
const PURPOSE_LOG: u64 = 2;
const PURPOSE_TRUTH: u64 = 3;
const PURPOSE_HELDOUT: u64 = 4;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RandomConfig {
    pub seed: u64,
    pub recipients: usize,
    pub weeks: usize,
    pub holdout_recipients: usize,
    /// About how many insats codes the world has (`None`: drawn, 14 to 32).
    pub codes: Option<usize>,
}

/// What was written.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct RandomSummary {
    pub visits_written: u64,
    pub rows_written: u64,
    pub recipients: usize,
    pub holdout_recipients: usize,
    pub faults: FaultCounts,
    pub files: Vec<PathBuf>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct FaultCounts {
    pub forgotten_checkout: u64,
    pub auto_closed: u64,
    pub short_checkin: u64,
    pub early_checkout: u64,
    pub duplicate_row: u64,
    pub double_registration: u64,
    pub unknown_code: u64,
    pub cancelled: u64,
    pub hospital_days: u64,
    pub substitute_visits: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum RandomError {
    #[error("cannot create directory {}: {source}", path.display())]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid simulation settings: {0}")]
    Config(String),
}

impl From<crate::sink::WriteFailed> for RandomError {
    fn from(e: crate::sink::WriteFailed) -> RandomError {
        RandomError::Write {
            path: e.path,
            source: e.source,
        }
    }
}

/// Simulates a random world into `out`. Deterministic given `cfg`.
pub fn simulate_random(cfg: &RandomConfig, out: &Path) -> Result<RandomSummary, RandomError> {
    if cfg.weeks == 0 || cfg.weeks > 520 {
        return Err(RandomError::Config(format!(
            "weeks must be from 1 to 520, not {}",
            cfg.weeks
        )));
    }
    if cfg.recipients == 0 {
        return Err(RandomError::Config("recipients must be at least 1".into()));
    }
    std::fs::create_dir_all(out).map_err(|source| RandomError::CreateDir {
        path: out.to_path_buf(),
        source,
    })?;
    let w = World::draw_with_codes(cfg.seed, cfg.codes);
    let mut summary = RandomSummary {
        recipients: cfg.recipients,
        holdout_recipients: cfg.holdout_recipients,
        ..RandomSummary::default()
    };
    let mut sink = Sink::create(out.join("catalog.toml"))?;
    sink.put(&catalog_toml(&w))?;
    summary.files.push(sink.finish()?);

    write_log(&w, cfg, out, &mut summary)?;
    write_heldout(&w, cfg, out, &mut summary)?;

    let mut sink = Sink::create(out.join("simulation.json"))?;
    let doc = parameters_json(&w, cfg, &summary);
    sink.put(&serde_json::to_string_pretty(&doc).expect("parameters serialize"))?;
    sink.put("\n")?;
    summary.files.push(sink.finish()?);
    Ok(summary)
}

// ---------------------------------------------------------------------------------------
// Calendar (own, tiny): days since 1970-01-01.

/// 2025-01-06, a Monday.
const BASE_DAY: i64 = 20_094;

fn civil(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Monday = 0.
fn weekday(z: i64) -> i64 {
    (z + 3).rem_euclid(7)
}

/// Swedish summer time: from the last Sunday of March to the last Sunday of October.
fn summer_time(z: i64) -> bool {
    let (_, m, d) = civil(z);
    let last_sunday = |days_in: u32| -> u32 {
        // The weekday of the month's last day gives its last Sunday.
        let last = z - i64::from(d) + i64::from(days_in);
        days_in - ((weekday(last) + 1) % 7) as u32
    };
    match m {
        4..=9 => true,
        3 => d >= last_sunday(31),
        10 => d < last_sunday(31),
        _ => false,
    }
}

fn timestamp(w: &World, z: i64, minute: u32) -> String {
    let (y, m, d) = civil(z);
    let mut s = format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:00",
        minute / 60,
        minute % 60
    );
    if w.faults.utc_offset {
        s.push_str(if summer_time(z) { "+02:00" } else { "+01:00" });
    }
    s
}

// ---------------------------------------------------------------------------------------
// Files

fn context_value_csv(w: &World, v: usize, x: f64) -> String {
    let c = &w.contexts[v];
    match c.kind {
        Kind::Boolean => (if x != 0.0 { "true" } else { "false" }).into(),
        Kind::Categorical => c.labels[x as usize].clone(),
        _ => format!("{}", x as i64),
    }
}

fn catalog_toml(w: &World) -> String {
    let mut s =
        String::from("# Synthetic catalog of a random world (ramtid simulate --world random).\n\n");
    for c in &w.codes {
        let _ = write!(
            s,
            "[[insats]]\ncode = \"{}\"\nname = \"{}\"\ncategory = \"{}\"\nschablon_min = {}\n\n",
            c.code,
            c.name,
            c.role.category(),
            c.schablon_min
        );
    }
    for &v in &w.context_order {
        let c = &w.contexts[v];
        let kind = match c.kind {
            Kind::Numeric { .. } => "numeric",
            Kind::Ordinal { .. } => "ordinal",
            Kind::Boolean => "boolean",
            Kind::Categorical => "categorical",
        };
        let _ = write!(s, "[[context]]\nname = \"{}\"\nkind = \"{kind}\"\n", c.name);
        match c.kind {
            Kind::Ordinal { top } => {
                let levels: Vec<String> = (0..=top).map(|l| l.to_string()).collect();
                let _ = writeln!(s, "levels = [{}]", levels.join(", "));
            }
            Kind::Categorical => {
                let labels: Vec<String> = c.labels.iter().map(|l| format!("\"{l}\"")).collect();
                let _ = writeln!(s, "levels = [{}]", labels.join(", "));
            }
            _ => {}
        }
        s.push('\n');
    }
    s
}

fn recipient_id(w: &World, index: usize) -> String {
    format!("{}-R{:06}", w.prefix, index + 1)
}

/// A training recipient's team: own area, or a neighbouring area's (catchments overlap).
fn assign_team<R: Rng>(w: &World, area: usize, rng: &mut R) -> usize {
    let areas = w.area_shares.len();
    let mut target = area;
    if rng.gen::<f64>() < w.neighbour_share {
        let n: Vec<usize> = [area.wrapping_sub(1), area + 1]
            .into_iter()
            .filter(|&a| a < areas)
            .collect();
        target = n[rng.gen_range(0..n.len())];
    }
    let day_teams: Vec<usize> = (0..w.teams.len())
        .filter(|&t| t != w.night_team && w.teams[t].area == target)
        .collect();
    day_teams[rng.gen_range(0..day_teams.len())]
}

fn tasks_text(w: &World, v: &DayVisit) -> String {
    let codes: Vec<&str> = v
        .tasks
        .iter()
        .map(|&(c, _)| w.codes[c].code.as_str())
        .collect();
    codes.join("|")
}

/// The visit-noise multiplier: lognormal with mean 1 (or gamma with the same mean and
/// coefficient of variation), and now and then an incident; the mixture keeps mean
/// exactly 1.
fn noise<R: Rng>(w: &World, rng: &mut R) -> f64 {
    let s = w.visit_sigma;
    let ln = if w.noise_gamma {
        // The lognormal's coefficient of variation, √(e^{σ²} − 1); shape 1/cv², mean 1.
        let shape = 1.0 / (s * s).exp_m1();
        Gamma::new(shape, 1.0 / shape)
            .expect("shape and scale are positive")
            .sample(rng)
    } else {
        (s * normal(rng) - s * s / 2.0).exp()
    };
    // Incidents multiply by U(1.3, 2.0), mean 1.65.
    let norm = 1.0 + w.incident_p * 0.65;
    if rng.gen::<f64>() < w.incident_p {
        ln * uniform(rng, 1.3, 2.0) / norm
    } else {
        ln / norm
    }
}

fn write_log(
    w: &World,
    cfg: &RandomConfig,
    out: &Path,
    summary: &mut RandomSummary,
) -> Result<(), RandomError> {
    let columns = w.columns();
    let mut sink = Sink::create(out.join("visits.csv"))?;
    let header: Vec<&str> = w
        .column_order
        .iter()
        .map(|&i| columns[i].as_str())
        .collect();
    sink.put(&header.join(","))?;
    sink.put("\n")?;
    let mut cells: Vec<String> = vec![String::new(); columns.len()];
    let mut line = String::with_capacity(256);
    let f = &w.faults;
    let days = (cfg.weeks * 7) as i64;
    for i in 0..cfg.recipients {
        let mut rng = stream(w.seed, PURPOSE_PERSON, i as u64);
        let person = draw_person(w, &mut rng);
        let team = assign_team(w, person.area(), &mut rng);
        let rid = recipient_id(w, i);
        let ctx: Vec<String> = w
            .context_order
            .iter()
            .map(|&v| context_value_csv(w, v, person.ctx[v]))
            .collect();
        let mut rng = stream(w.seed, PURPOSE_LOG, i as u64);
        let mut hospital_left = 0i64;
        for d in 0..days {
            if d % 7 == 0 && hospital_left == 0 && rng.gen::<f64>() < f.hospital_per_week {
                hospital_left = 7 * rng.gen_range(1..=4);
            }
            if hospital_left > 0 {
                hospital_left -= 1;
                summary.faults.hospital_days += 1;
                continue;
            }
            let z = BASE_DAY + w.start_day + d;
            let weekend = weekday(z) >= 5;
            for v in day_visits(w, &person, d, weekend, &mut rng) {
                let unit = if v.slot == NIGHT { w.night_team } else { team };
                let t = &w.teams[unit];
                let efficient = v.best * person.effect * noise(w, &mut rng);
                let mut pace = t.pace;
                if weekend {
                    pace *= t.weekend;
                }
                if rng.gen::<f64>() < w.substitute_p {
                    pace *= w.substitute_pace;
                    summary.faults.substitute_visits += 1;
                }
                let mut duration = efficient * pace + t.slack_min * uniform(&mut rng, 0.5, 1.5);
                let mut status = "utford";
                let x: f64 = rng.gen();
                let mut edge = f.cancelled;
                if x < edge {
                    duration = 0.0;
                    status = "installd";
                    summary.faults.cancelled += 1;
                } else if x < {
                    edge += f.forgotten;
                    edge
                } {
                    if rng.gen::<f64>() < f.auto_closed_share {
                        duration = f.auto_close_min;
                        summary.faults.auto_closed += 1;
                    } else {
                        duration = uniform(&mut rng, 180.0, 900.0);
                    }
                    summary.faults.forgotten_checkout += 1;
                } else if x < {
                    edge += f.short;
                    edge
                } {
                    duration = uniform(&mut rng, 0.0, 1.0);
                    summary.faults.short_checkin += 1;
                } else if x < edge + f.early {
                    duration *= uniform(&mut rng, 0.35, 0.75);
                    summary.faults.early_checkout += 1;
                }
                summary.visits_written += 1;
                let mut tasks = tasks_text(w, &v);
                if rng.gen::<f64>() < f.unknown_code {
                    tasks.push('|');
                    tasks.push_str(LEGACY_CODES[rng.gen_range(0..LEGACY_CODES.len())]);
                    summary.faults.unknown_code += 1;
                }
                cells[0] = format!("{}V{:09}", w.prefix, summary.visits_written);
                cells[1].clone_from(&rid);
                cells[2].clone_from(&t.id);
                cells[3] = timestamp(w, z, v.start);
                cells[4] = if f.whole_minutes {
                    format!("{}", duration.round() as i64)
                } else {
                    format!("{duration:.1}")
                };
                cells[5] = v.staff.to_string();
                cells[6] = tasks;
                for (k, c) in ctx.iter().enumerate() {
                    cells[7 + k].clone_from(c);
                }
                let schablon: f64 = v.tasks.iter().map(|&(c, _)| w.codes[c].schablon_min).sum();
                for (k, name) in w.extra_columns.iter().enumerate() {
                    cells[7 + ctx.len() + k] = match *name {
                        "status" => status.to_string(),
                        "employee_ref" => format!("E{:04}", rng.gen_range(0..3000)),
                        "planned_min" => format!("{schablon}"),
                        "registered_by" => {
                            (if rng.gen::<f64>() < 0.8 { "app" } else { "las" }).into()
                        }
                        "region_code" => format!("{}", 10 + person.area()),
                        _ => String::new(),
                    };
                }
                line.clear();
                for (k, &c) in w.column_order.iter().enumerate() {
                    if k > 0 {
                        line.push(',');
                    }
                    line.push_str(&cells[c]);
                }
                line.push('\n');
                sink.put(&line)?;
                summary.rows_written += 1;
                if rng.gen::<f64>() < f.duplicate {
                    sink.put(&line)?;
                    summary.rows_written += 1;
                    summary.faults.duplicate_row += 1;
                }
                if rng.gen::<f64>() < f.double_registration {
                    summary.visits_written += 1;
                    cells[0] = format!("{}V{:09}", w.prefix, summary.visits_written);
                    line.clear();
                    for (k, &c) in w.column_order.iter().enumerate() {
                        if k > 0 {
                            line.push(',');
                        }
                        line.push_str(&cells[c]);
                    }
                    line.push('\n');
                    sink.put(&line)?;
                    summary.rows_written += 1;
                    summary.faults.double_registration += 1;
                }
            }
        }
    }
    summary.files.push(sink.finish()?);
    Ok(())
}

fn needs_json(w: &World, rid: &str, p: &Person) -> Value {
    let mut context = serde_json::Map::new();
    for &v in &w.context_order {
        let c = &w.contexts[v];
        let x = p.ctx[v];
        let value = match c.kind {
            Kind::Boolean => Value::Bool(x != 0.0),
            Kind::Categorical => Value::String(c.labels[x as usize].clone()),
            _ => Value::from(x as i64),
        };
        context.insert(c.name.to_string(), value);
    }
    let needs: Vec<Value> = p
        .needs
        .iter()
        .map(|n| {
            let code = &w.codes[n.code];
            let mut o = serde_json::Map::new();
            o.insert("code".into(), Value::String(code.code.clone()));
            o.insert("per_week".into(), json!(n.per_week));
            // An assessor writes the time of day where it is not the usual one.
            if n.slot != code.slots[0] {
                o.insert("slot".into(), Value::String(SLOTS[n.slot].into()));
            }
            if n.staff >= 2 {
                o.insert("staff".into(), json!(2));
            }
            Value::Object(o)
        })
        .collect();
    json!({"recipient_id": rid, "context": context, "needs": needs})
}

fn write_heldout(
    w: &World,
    cfg: &RandomConfig,
    out: &Path,
    summary: &mut RandomSummary,
) -> Result<(), RandomError> {
    let mut needs_out = Sink::create(out.join("needs.jsonl"))?;
    let mut truth_out = Sink::create(out.join("truth.csv"))?;
    truth_out.put(
        "recipient_id,true_weekly_min,best_weekly_min,true_weekly_staff_min,\
         best_weekly_staff_min,schablon_weekly_min,visits_per_week\n",
    )?;
    let columns = w.columns();
    let base_columns = 7 + w.contexts.len();
    let mut held = Sink::create(out.join("heldout_visits.csv"))?;
    held.put(&columns[..base_columns].join(","))?;
    held.put(",efficient_min,expected_min,best_min\n")?;
    let best_team = &w.teams[w.best_team];
    let mut n_held = 0u64;
    let mut line = String::new();
    for j in 0..cfg.holdout_recipients {
        let index = cfg.recipients + j;
        let mut rng = stream(w.seed, PURPOSE_PERSON, index as u64);
        let person = draw_person(w, &mut rng);
        let rid = recipient_id(w, index);
        needs_out.put(&needs_json(w, &rid, &person).to_string())?;
        needs_out.put("\n")?;

        // Truth: the best-practice mean of every visit over TRUTH_WEEKS weeks (grouping and
        // weekday drawn as the world does), without visit noise.
        let mut rng = stream(w.seed, PURPOSE_TRUTH, index as u64);
        let (mut best, mut best_staff, mut visits) = (0.0, 0.0, 0usize);
        for d in 0..TRUTH_WEEKS * 7 {
            let weekend = weekday(BASE_DAY + w.start_day + d) >= 5;
            for v in day_visits(w, &person, d, weekend, &mut rng) {
                best += v.best;
                best_staff += v.best * f64::from(v.staff);
                visits += 1;
            }
        }
        let weeks = TRUTH_WEEKS as f64;
        let (best, best_staff) = (best / weeks, best_staff / weeks);
        let schablon: f64 = person
            .needs
            .iter()
            .map(|n| n.per_week * w.codes[n.code].schablon_min)
            .sum();
        line.clear();
        let _ = writeln!(
            line,
            "{rid},{:.3},{:.3},{:.3},{:.3},{:.3},{:.3}",
            best * person.effect,
            best,
            best_staff * person.effect,
            best_staff,
            schablon,
            visits as f64 / weeks
        );
        truth_out.put(&line)?;

        let ctx: Vec<String> = w
            .context_order
            .iter()
            .map(|&v| context_value_csv(w, v, person.ctx[v]))
            .collect();
        let mut rng = stream(w.seed, PURPOSE_HELDOUT, index as u64);
        for d in 0..HELDOUT_WEEKS * 7 {
            let z = BASE_DAY + w.start_day + d;
            for v in day_visits(w, &person, d, weekday(z) >= 5, &mut rng) {
                let expected = v.best * person.effect;
                let efficient = expected * noise(w, &mut rng);
                n_held += 1;
                let unit = if v.slot == NIGHT {
                    &w.teams[w.night_team]
                } else {
                    best_team
                };
                line.clear();
                let _ = write!(
                    line,
                    "{}H{n_held:09},{rid},{},{},{efficient:.1},{},{}",
                    w.prefix,
                    unit.id,
                    timestamp(w, z, v.start),
                    v.staff,
                    tasks_text(w, &v)
                );
                for c in &ctx {
                    line.push(',');
                    line.push_str(c);
                }
                let _ = writeln!(line, ",{efficient:.3},{expected:.3},{:.3}", v.best);
                held.put(&line)?;
            }
        }
    }
    summary.files.push(needs_out.finish()?);
    summary.files.push(truth_out.finish()?);
    summary.files.push(held.finish()?);
    Ok(())
}

fn target_json(t: &Target) -> Value {
    match t {
        Target::Overhead => json!("overhead"),
        Target::Groups(g) => json!({
            "groups": g.iter().enumerate().filter(|(_, on)| **on).map(|(k, _)| k).collect::<Vec<_>>()
        }),
    }
}

fn mode_str(m: Mode) -> &'static str {
    match m {
        Mode::Mult => "multiplicative",
        Mode::Add => "additive_min",
    }
}

fn parameters_json(w: &World, cfg: &RandomConfig, s: &RandomSummary) -> Value {
    let name = |v: usize| w.contexts[v].name;
    let mut doc = json!({
        "synthetic": true,
        "note": "Synthetic data from ramtid simulate --world random. No real persons, municipalities or logs.",
        "world": "random",
        "seed": cfg.seed,
        "recipients": cfg.recipients,
        "holdout_recipients": cfg.holdout_recipients,
        "weeks": cfg.weeks,
        "truth_weeks": TRUTH_WEEKS,
        "heldout_weeks": HELDOUT_WEEKS,
        "codes": w.codes.iter().map(|c| json!({
            "code": c.code, "role": format!("{:?}", c.role), "category": c.role.category(),
            "schablon_min": c.schablon_min, "base_min": c.base_min,
            "slots": c.slots.iter().map(|&s| SLOTS[s]).collect::<Vec<_>>(),
            "frequencies": c.freqs, "join_p": c.join_p, "two_staff": c.two_staff,
            "group": c.group, "need_base": c.need_base, "need_slope": c.need_slope,
        })).collect::<Vec<_>>(),
        "task_groups": w.groups,
        "context": w.context_order.iter().map(|&v| json!({
            "name": name(v),
            "kind": format!("{:?}", w.contexts[v].kind),
            "labels": w.contexts[v].labels,
        })).collect::<Vec<_>>(),
        "effects": w.effects.iter().map(|e| json!({
            "variable": name(e.var), "target": target_json(&e.target), "mode": mode_str(e.mode),
            "shape": e.shape, "value": e.value,
        })).collect::<Vec<_>>(),
        "interactions": w.interactions.iter().map(|i| json!({
            "a": [name(i.a.0), i.a.1], "b": [name(i.b.0), i.b.1],
            "target": target_json(&i.target), "mode": mode_str(i.mode), "value": i.value,
        })).collect::<Vec<_>>(),
    });
    let more = json!({
        "overhead_slot_min": w.overhead_slot,
        "overhead_task_min": w.overhead_task_min,
        "overhead_power": w.overhead_power,
        "pairs": w.pairs.iter().map(|&(a, b, d)| json!({
            "a": w.codes[a].code, "b": w.codes[b].code, "minutes": d,
        })).collect::<Vec<_>>(),
        "staff2_factor": w.staff2_factor,
        "staff2_extra_min": w.staff2_extra_min,
        "recipient_sigma": w.recipient_sigma,
        "visit_sigma": w.visit_sigma,
        "visit_noise": if w.noise_gamma { "gamma" } else { "lognormal" },
        "incident_p": w.incident_p,
    });
    let rest = json!({
        "teams": w.teams.iter().map(|t| json!({
            "unit_id": t.id, "area": w.contexts[world::AREA].labels[t.area], "provider": t.provider,
            "pace": t.pace, "slack_min": t.slack_min, "weekend": t.weekend,
            "cuts_corners": t.cuts_corners,
        })).collect::<Vec<_>>(),
        "best_team": w.teams[w.best_team].id,
        "night_team": w.teams[w.night_team].id,
        "neighbour_share": w.neighbour_share,
        "substitute_p": w.substitute_p,
        "substitute_pace": w.substitute_pace,
        "join_person_sd": w.join_person_sd,
        "join_weekend_shift": w.join_weekend_shift,
        "faults": {
            "forgotten": w.faults.forgotten, "auto_closed_share": w.faults.auto_closed_share,
            "auto_close_min": w.faults.auto_close_min, "short": w.faults.short,
            "early": w.faults.early, "duplicate": w.faults.duplicate,
            "double_registration": w.faults.double_registration,
            "unknown_code": w.faults.unknown_code, "cancelled": w.faults.cancelled,
            "hospital_per_week": w.faults.hospital_per_week,
            "whole_minutes": w.faults.whole_minutes, "utc_offset": w.faults.utc_offset,
        },
        "extra_columns": w.extra_columns,
        "windows_min": w.windows,
        "area_shares": w.area_shares,
        "housing_shares": w.housing_shares,
        "language_p": w.language_p,
        "alone_p_at_83": w.alone_p,
        "cognition_cuts": w.cognition_cuts,
        "mobility_cuts": w.mobility_cuts,
        "age_beta": [w.age_beta.0, w.age_beta.1],
        "fault_counts": s.faults,
        "visits_written": s.visits_written,
        "rows_written": s.rows_written,
    });
    for part in [more, rest] {
        if let (Value::Object(d), Value::Object(p)) = (&mut doc, part) {
            d.extend(p);
        }
    }
    doc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calendar_and_summer_time() {
        assert_eq!(civil(BASE_DAY), (2025, 1, 6));
        assert_eq!(weekday(BASE_DAY), 0);
        // 2025: summer time from Sunday 30 March to Sunday 26 October.
        let day = |m: u32, d: u32| {
            (BASE_DAY..BASE_DAY + 400)
                .find(|&z| civil(z) == (2025, m, d))
                .unwrap()
        };
        assert!(!summer_time(day(3, 29)));
        assert!(summer_time(day(3, 30)));
        assert!(summer_time(day(10, 25)));
        assert!(!summer_time(day(10, 26)));
    }

    #[test]
    fn streams_keep_what_was_ordered() {
        for rate in [0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 7.0] {
            for phase in [0.0, 3.3, 41.7, 69.9] {
                let n = (0..TRUTH_WEEKS * 7)
                    .filter(|&d| people::fires(rate, phase, d))
                    .count() as f64;
                assert_eq!(n, rate * TRUTH_WEEKS as f64, "rate {rate} phase {phase}");
            }
        }
    }

    #[test]
    fn worlds_differ_and_are_deterministic() {
        let a = World::draw(1);
        let b = World::draw(2);
        assert_ne!(a.codes.len() + a.teams.len(), 0);
        assert!(
            a.codes
                .iter()
                .map(|c| &c.code)
                .ne(b.codes.iter().map(|c| &c.code))
                || a.teams.len() != b.teams.len()
                || a.visit_sigma != b.visit_sigma
        );
        assert_eq!(World::draw(1).visit_sigma, a.visit_sigma);
        // Best practice is a team at pace 1 without slack.
        let best = &a.teams[a.best_team];
        assert_eq!((best.pace, best.slack_min), (1.0, 0.0));
    }

    #[test]
    fn visit_noise_has_mean_one_and_the_drawn_spread_in_either_family() {
        // Both families: mean 1, the lognormal's coefficient of variation; only the gamma's
        // log leans left (many visits a little short, a few much shorter).
        let mut w = World::draw(3);
        w.incident_p = 0.0;
        w.visit_sigma = 0.25;
        let cv = (0.25f64 * 0.25).exp_m1().sqrt();
        for gamma in [false, true] {
            w.noise_gamma = gamma;
            let mut rng = stream(7, 99, u64::from(gamma));
            let x: Vec<f64> = (0..200_000).map(|_| noise(&w, &mut rng)).collect();
            let n = x.len() as f64;
            let mean = x.iter().sum::<f64>() / n;
            let sd = (x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt();
            let logs: Vec<f64> = x.iter().map(|v| v.ln()).collect();
            let lm = logs.iter().sum::<f64>() / n;
            let ls = (logs.iter().map(|v| (v - lm).powi(2)).sum::<f64>() / n).sqrt();
            let skew = logs.iter().map(|v| ((v - lm) / ls).powi(3)).sum::<f64>() / n;
            assert!((mean - 1.0).abs() < 0.005, "gamma {gamma}: mean {mean}");
            assert!(
                (sd / cv - 1.0).abs() < 0.02,
                "gamma {gamma}: cv {sd} ≠ {cv}"
            );
            if gamma {
                assert!(skew < -0.2, "gamma: log skew {skew}");
            } else {
                assert!(skew.abs() < 0.03, "lognormal: log skew {skew}");
            }
        }
    }
}
