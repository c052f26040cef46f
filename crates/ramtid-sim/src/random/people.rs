//! Recipients of a random world: context, needs, and the visits a day brings.

use super::rng::{normal, pick, uniform};
use super::world::{
    draw_freq, shuffle, Kind, Role, Terms, World, AGE, ALONE, AREA, COGNITION, EVENING, HOUSING,
    LANGUAGE, MIDDAY, MOBILITY, MORNING, NIGHT, YEARS,
};
use rand::Rng;
use rand_distr::{Beta, Distribution};

/// One ordered need, with the occasion streams that perform it.
#[derive(Debug, Clone)]
pub struct PNeed {
    pub code: usize,
    pub per_week: f64,
    /// The slot asked for (the first stream's).
    pub slot: usize,
    pub staff: u8,
    /// (slot, occasions per week ≤ 7, phase in days): one stream per slot of the day.
    pub streams: Vec<(usize, f64, f64)>,
}

#[derive(Debug, Clone)]
pub struct Person {
    /// Values by context role (categorical: label index; boolean 0/1).
    pub ctx: Vec<f64>,
    pub needs: Vec<PNeed>,
    /// Multiplicative recipient effect, mean 1, never observed.
    pub effect: f64,
    /// Logit shift of this person's grouping practice (some homes get one long visit).
    pub join_shift: f64,
    /// Position on the route, 0..1.
    pub route: f64,
    pub terms: Terms,
}

impl Person {
    pub fn area(&self) -> usize {
        self.ctx[AREA] as usize
    }
}

fn level(latent: f64, cuts: &[f64]) -> f64 {
    cuts.iter().filter(|&&c| latent > c).count() as f64
}

pub fn draw_person<R: Rng>(w: &World, rng: &mut R) -> Person {
    let mut ctx = vec![0.0; w.contexts.len()];
    let area = pick(rng, &w.area_shares);
    let (a, b) = w.age_beta;
    let age = (65.0 + 37.0 * Beta::new(a, b).expect("valid beta").sample(rng)).round();
    let age_z = (age - 83.0) / 10.0;
    let alone = rng.gen::<f64>() < (w.alone_p + 0.02 * (age - 83.0)).clamp(0.2, 0.9);
    let frailty = normal(rng);
    let cog = level(
        0.6 * frailty + 0.25 * age_z + 0.8 * normal(rng),
        &w.cognition_cuts,
    );
    let mob = level(
        0.7 * frailty + 0.25 * age_z + 0.7 * normal(rng),
        &w.mobility_cuts,
    );
    ctx[AGE] = age;
    ctx[ALONE] = f64::from(u8::from(alone));
    ctx[COGNITION] = cog;
    ctx[MOBILITY] = mob;
    ctx[LANGUAGE] = f64::from(u8::from(rng.gen::<f64>() < w.language_p[area]));
    ctx[AREA] = area as f64;
    ctx[HOUSING] = pick(rng, &w.housing_shares) as f64;
    // Drawn independently of everything: it has no effect, directly or through others.
    ctx[YEARS] = f64::from(rng.gen_range(0..=25u8));
    let top = |v: usize| match w.contexts[v].kind {
        Kind::Ordinal { top } => top as f64,
        _ => 1.0,
    };
    let c = cog / top(COGNITION);
    let m = mob / top(MOBILITY);
    let s = (0.5 * m + 0.4 * c + 0.1 * normal(rng)).clamp(0.0, 1.0);
    let u: f64 = rng.gen();
    let mut needs: Vec<PNeed> = Vec::new();
    let mut care_slots = Vec::new();
    for (i, code) in w.codes.iter().enumerate() {
        let wants = match code.role {
            Role::Care => {
                let slot = code.slots[0];
                let bar = match slot {
                    MORNING => 1.5 * s + 0.05,
                    EVENING => 1.5 * s - 0.25,
                    _ => 1.4 * s - 0.45,
                };
                u < bar
            }
            role => {
                let driver = match role {
                    Role::Addon | Role::Meal => s,
                    Role::Medication => c,
                    Role::Supervision => 0.6 * c + 0.3 * ctx[ALONE],
                    Role::Night => 0.5 * (s + c),
                    Role::Social => ctx[ALONE],
                    _ => 0.5,
                };
                rng.gen::<f64>() < code.need_base + code.need_slope * driver
            }
        };
        if !wants {
            continue;
        }
        if code.role == Role::Care {
            care_slots.push(code.slots[0]);
        }
        let per_week = if code.role == Role::Care {
            7.0
        } else {
            draw_freq(rng, &code.freqs)
        };
        let staff = if code.two_staff {
            let top_m = top(MOBILITY);
            let p = if mob >= top_m {
                0.8
            } else if mob >= top_m - 1.0 {
                0.25
            } else {
                0.0
            };
            if rng.gen::<f64>() < p {
                2
            } else {
                1
            }
        } else {
            1
        };
        needs.push(PNeed {
            code: i,
            per_week,
            slot: code.slots[0],
            staff,
            streams: Vec::new(),
        });
    }
    if needs.is_empty() {
        let first_service = w
            .codes
            .iter()
            .position(|c| c.role == Role::Service)
            .unwrap_or(0);
        needs.push(PNeed {
            code: first_service,
            per_week: 0.5,
            slot: w.codes[first_service].slots[0],
            staff: 1,
            streams: Vec::new(),
        });
    }
    // Slots: a personal care task goes where the person has care, where it can; otherwise
    // mostly the code's usual slot.
    for n in needs.iter_mut() {
        let code = &w.codes[n.code];
        if code.role == Role::Care {
            continue;
        }
        n.slot = match code.slots.iter().find(|s| care_slots.contains(s)) {
            Some(&s) if code.role == Role::Addon => s,
            _ if rng.gen::<f64>() < 0.8 => code.slots[0],
            _ => code.slots[rng.gen_range(0..code.slots.len())],
        };
        if code.role == Role::Night {
            n.slot = NIGHT;
        }
    }
    for n in needs.iter_mut() {
        let code = &w.codes[n.code];
        let mut order: Vec<usize> = vec![n.slot];
        for &s in code
            .slots
            .iter()
            .chain(&[MORNING, EVENING, MIDDAY, 2, NIGHT])
        {
            if !order.contains(&s) {
                order.push(s);
            }
        }
        let mut left = n.per_week;
        let mut k = 0;
        while left > 1e-9 && k < order.len() {
            let rate = left.min(7.0);
            // Phase: where in its rhythm the stream starts.
            n.streams.push((order[k], rate, uniform(rng, 0.0, 70.0)));
            left -= rate;
            k += 1;
        }
    }
    let sigma = w.recipient_sigma;
    let effect = (sigma * normal(rng) - sigma * sigma / 2.0).exp();
    let terms = w.context_terms(&ctx);
    Person {
        ctx,
        needs,
        effect,
        join_shift: w.join_person_sd * normal(rng),
        route: rng.gen(),
        terms,
    }
}

/// Whether a stream of `rate` occasions a week fires on `day`: exactly `rate · weeks`
/// occasions over any whole number of weeks where that product is whole.
pub(crate) fn fires(rate: f64, phase: f64, day: i64) -> bool {
    let r = rate / 7.0;
    let d = day as f64 + phase;
    (d * r + 1e-9).floor() > ((d - 1.0) * r + 1e-9).floor()
}

/// One visit of a day.
#[derive(Debug, Clone)]
pub struct DayVisit {
    pub slot: usize,
    /// (code, needs two staff).
    pub tasks: Vec<(usize, bool)>,
    pub staff: u8,
    /// Best-practice mean minutes without the recipient effect.
    pub best: f64,
    /// Planned check-in, minutes after midnight.
    pub start: u32,
}

fn logit(p: f64) -> f64 {
    let p = p.clamp(0.001, 0.999);
    (p / (1.0 - p)).ln()
}

/// The visits of one day: care visits open a visit; each other occasion joins the slot's
/// open visit with its grouping probability (code, person, weekday) or is a visit of its
/// own.
pub fn day_visits<R: Rng>(
    w: &World,
    p: &Person,
    day: i64,
    weekend: bool,
    rng: &mut R,
) -> Vec<DayVisit> {
    let mut out: Vec<DayVisit> = Vec::new();
    for slot in 0..5 {
        let mut occ: Vec<(usize, bool)> = Vec::new();
        for n in &p.needs {
            for &(s, rate, phase) in &n.streams {
                if s == slot && fires(rate, phase, day) {
                    occ.push((n.code, n.staff >= 2));
                }
            }
        }
        if occ.is_empty() {
            continue;
        }
        let first = out.len();
        let mut open: Option<usize> = None;
        let (care, mut others): (Vec<_>, Vec<_>) = occ
            .into_iter()
            .partition(|&(c, _)| w.codes[c].role == Role::Care);
        if !care.is_empty() {
            out.push(DayVisit {
                slot,
                tasks: care,
                staff: 1,
                best: 0.0,
                start: 0,
            });
            open = Some(out.len() - 1);
        }
        shuffle(rng, &mut others);
        for (c, two) in others {
            let code = &w.codes[c];
            let mut x = logit(code.join_p) + p.join_shift;
            if weekend {
                x += w.join_weekend_shift;
            }
            let joins = code.join_p > 0.001 && rng.gen::<f64>() < 1.0 / (1.0 + (-x).exp());
            match open {
                Some(v) if joins => {
                    if !out[v].tasks.iter().any(|t| t.0 == c) {
                        out[v].tasks.push((c, two));
                    }
                }
                _ => {
                    out.push(DayVisit {
                        slot,
                        tasks: vec![(c, two)],
                        staff: 1,
                        best: 0.0,
                        start: 0,
                    });
                    if joins {
                        open = Some(out.len() - 1);
                    }
                }
            }
        }
        let (lo, hi) = w.windows[slot];
        let mut next = lo + (p.route * 0.6 * f64::from(hi - lo)) as u32;
        for v in out[first..].iter_mut() {
            v.staff = if v.tasks.iter().any(|t| t.1) { 2 } else { 1 };
            v.best = w.visit_mean(&p.terms, slot, &v.tasks, v.staff);
            let jitter = rng.gen_range(0..=16u32);
            v.start = (next + jitter).saturating_sub(8).clamp(lo, hi);
            next = v.start + v.best.round() as u32 + rng.gen_range(5..=15u32);
        }
    }
    out
}
