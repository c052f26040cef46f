//! Drawing recipients: context first, then needs that follow the context.

use super::model::PlanNeed;
use super::profile::{
    Profile, Role, CTX_AGE, CTX_ALONE, CTX_AREA, CTX_COGNITION, CTX_LANGUAGE, CTX_MOBILITY,
};
use ramtid_core::slot::Slot;
use rand::Rng;
use rand_distr::{Beta, Distribution, StandardNormal};

/// SD of the log recipient effect: exp(u), u ~ N(−σ²/2, σ²), mean 1, unobservable.
pub const RECIPIENT_SIGMA: f64 = 0.12;

/// One drawn recipient.
#[derive(Debug, Clone)]
pub(crate) struct Person {
    /// Catalog-coded context values, in catalog order (categorical = label index).
    pub context: Vec<f64>,
    pub needs: Vec<PlanNeed>,
    /// The multiplicative recipient effect exp(u).
    pub effect: f64,
    /// Position on the team's route, 0..1: when in a slot's window visits start.
    pub route: f64,
}

impl Person {
    pub fn area(&self) -> usize {
        self.context[CTX_AREA] as usize
    }
}

fn normal<R: Rng>(rng: &mut R) -> f64 {
    StandardNormal.sample(rng)
}

/// The level (0-based) of a latent score under ascending cut points.
fn level(latent: f64, cuts: &[f64]) -> usize {
    cuts.iter().filter(|&&c| latent > c).count()
}

fn pick<R: Rng>(rng: &mut R, shares: &[f64]) -> usize {
    let total: f64 = shares.iter().sum();
    let mut x = rng.gen::<f64>() * total;
    for (i, s) in shares.iter().enumerate() {
        if x < *s {
            return i;
        }
        x -= s;
    }
    shares.len() - 1
}

pub(crate) fn draw_person<R: Rng>(profile: &Profile, rng: &mut R) -> Person {
    let pop = &profile.population;
    let (a, b) = pop.age_beta;
    let age = (65.0 + 35.0 * Beta::new(a, b).expect("valid beta").sample(rng)).round();
    let age_z = (age - 83.0) / 10.0;
    let alone_p = (pop.lives_alone_p + 0.02 * (age - 83.0)).clamp(0.3, 0.9);
    let alone = rng.gen::<f64>() < alone_p;
    // A latent frailty drives both cognition and mobility, so they correlate.
    let frailty = normal(rng);
    let cognition = level(
        0.6 * frailty + 0.25 * age_z + 0.8 * normal(rng),
        pop.cognition_cuts,
    );
    let mobility = level(
        0.7 * frailty + 0.25 * age_z + 0.7 * normal(rng),
        pop.mobility_cuts,
    );
    let area = pick(rng, pop.area_shares);
    let language = rng.gen::<f64>() < pop.language_p[area];

    let mut context = vec![0.0; profile.contexts.len()];
    context[CTX_AGE] = age;
    context[CTX_ALONE] = if alone { 1.0 } else { 0.0 };
    context[CTX_COGNITION] = cognition as f64;
    context[CTX_MOBILITY] = mobility as f64;
    context[CTX_LANGUAGE] = if language { 1.0 } else { 0.0 };
    context[CTX_AREA] = area as f64;

    let c = cognition as f64 / pop.cognition_cuts.len() as f64;
    let m = mobility as f64 / pop.mobility_cuts.len() as f64;
    let rural = pop.rural_areas.contains(&area);
    let needs = draw_needs(profile, rng, c, m, alone, rural);

    let u = -RECIPIENT_SIGMA * RECIPIENT_SIGMA / 2.0 + RECIPIENT_SIGMA * normal(rng);
    let route = rng.gen::<f64>();
    Person {
        context,
        needs,
        effect: u.exp(),
        route,
    }
}

struct Needs<'a> {
    profile: &'a Profile,
    out: Vec<PlanNeed>,
}

impl Needs<'_> {
    /// Adds a need for the profile's code of `role` (if it has one and it is not there yet).
    /// A slot equal to the code's default slot is dropped: it plans the same.
    fn add(&mut self, role: Role, per_week: f64, slot: Option<Slot>, staff: u8) -> bool {
        let Some(code) = self.profile.role_code(role) else {
            return false;
        };
        if self.out.iter().any(|n| n.code == code) {
            return false;
        }
        let slot = slot.filter(|s| *s != self.profile.codes[code].slots[0]);
        self.out.push(PlanNeed {
            code,
            per_week,
            slot,
            staff,
        });
        true
    }
}

/// Needs that follow the context. `c` and `m` are cognition and mobility scaled to 0..1
/// (1 = the most dependent level of the catalog).
fn draw_needs<R: Rng>(
    profile: &Profile,
    rng: &mut R,
    c: f64,
    m: f64,
    alone: bool,
    rural: bool,
) -> Vec<PlanNeed> {
    let mut n = Needs {
        profile,
        out: Vec::new(),
    };
    let al = if alone { 1.0 } else { 0.0 };
    // Dependency score: mobility and cognition dominate.
    let s = (0.5 * m + 0.4 * c + 0.08 * normal(rng)).clamp(0.0, 1.0);
    let u = rng.gen::<f64>();
    // Nested care visits: everyone with evening help has morning help, everyone with
    // midday help has both.
    let morning = u < (1.6 * s - 0.05).clamp(0.0, 0.97);
    let evening = u < (1.6 * s - 0.30).clamp(0.0, 0.92);
    let midday = u < (1.5 * s - 0.45).clamp(0.0, 0.88);
    let care_visits = [morning, midday, evening].iter().filter(|x| **x).count();
    if morning {
        n.add(Role::MorningCare, 7.0, None, 1);
    }
    if midday {
        n.add(Role::MiddayCare, 7.0, None, 1);
    }
    if evening {
        n.add(Role::EveningCare, 7.0, None, 1);
    }
    let mut r = || rng.gen::<f64>();

    if r() < 0.15 + 0.6 * m {
        let pw = if m > 0.6 && r() < 0.35 { 2.0 } else { 1.0 };
        let code = profile
            .role_code(Role::Shower)
            .expect("every profile has showers");
        let slots = profile.codes[code].slots;
        let slot = if !morning && slots.len() > 1 && r() < 0.5 {
            Some(slots[1])
        } else {
            None
        };
        n.add(Role::Shower, pw, slot, 1);
    }
    if morning && r() < 0.1 + 0.6 * m {
        let pw = if evening && m >= 0.66 { 14.0 } else { 7.0 };
        n.add(Role::Dressing, pw, None, 1);
    }
    if morning && r() < 0.2 + 0.35 * s {
        let pw = if evening && r() < 0.5 { 14.0 } else { 7.0 };
        n.add(Role::Hygiene, pw, None, 1);
    }
    if (m >= 0.999 || (m >= 0.6 && r() < 0.4)) && care_visits > 0 {
        let staff = if m >= 0.999 && r() < profile.population.staff2_p_top {
            2
        } else {
            1
        };
        n.add(Role::Transfer, 7.0 * care_visits as f64, None, staff);
    }
    if m >= 0.3 && (midday || evening) && r() < 0.5 {
        if midday && evening {
            n.add(Role::Toilet, 14.0, None, 1);
        } else {
            n.add(Role::Toilet, 7.0, Some(Slot::Evening), 1);
        }
    }
    if morning && r() < 0.05 + 0.35 * s.max(c) {
        let pw = if evening && s > 0.6 && r() < 0.5 {
            21.0 // morning, evening and a night round
        } else if evening {
            14.0
        } else {
            7.0
        };
        n.add(Role::Incontinence, pw, None, 1);
    }
    if morning && r() < 0.15 {
        n.add(Role::Compression, 14.0, None, 1);
    }
    if (c >= 0.66 || m >= 0.999) && (midday || evening) && r() < 0.4 {
        if midday && evening {
            n.add(Role::EatingSupport, 14.0, None, 1);
        } else {
            let slot = if midday { Slot::Midday } else { Slot::Evening };
            n.add(Role::EatingSupport, 7.0, Some(slot), 1);
        }
    }
    if (morning || evening) && r() < 0.15 {
        let pw = if r() < 0.5 { 7.0 } else { 3.0 };
        let slot = if evening {
            Slot::Evening
        } else {
            Slot::Morning
        };
        n.add(Role::SkinCare, pw, Some(slot), 1);
    }
    if r() < 0.03 {
        n.add(Role::Stoma, 7.0, None, 1);
    }
    if r() < 0.08 + 0.75 * c + 0.1 * m {
        let times = 1 + usize::from(r() < c + 0.2) + usize::from(r() < 0.6 * c);
        n.add(Role::Medication, 7.0 * times as f64, None, 1);
    }
    if r() < 0.08 + 0.6 * c + 0.1 * m + 0.1 * al {
        let x = r();
        let pw = if c >= 0.6 && x < 0.25 {
            21.0
        } else if c >= 0.3 && x < 0.6 {
            14.0
        } else if x < 0.8 {
            7.0
        } else {
            3.0
        };
        n.add(Role::Tillsyn, pw, None, 1);
    }
    if r() < (0.5 * c + 0.3 * m + 0.05 * al).max(0.02) {
        n.add(Role::NightCheck, 7.0, None, 1);
    }
    if morning && c >= 0.3 && r() < 0.4 {
        n.add(Role::Breakfast, 7.0, None, 1);
    }
    let meals = if r() < 0.05 + 0.45 * c.max(0.8 * m) {
        let pw = if r() < 0.3 { 14.0 } else { 7.0 };
        n.add(Role::MealPrep, pw, None, 1)
    } else {
        if r() < 0.4 + 0.1 * al {
            let pw = if r() < 0.7 { 7.0 } else { 3.0 };
            n.add(Role::MealDelivery, pw, None, 1);
        }
        false
    };
    if meals && evening && r() < 0.5 {
        n.add(Role::Dishes, 7.0, None, 1);
    }
    if morning && r() < 0.25 {
        n.add(Role::BedMaking, 7.0, None, 1);
    }
    if r() < 0.25 {
        let pw = if r() < 0.5 { 1.0 } else { 2.0 };
        n.add(Role::Waste, pw, None, 1);
    }
    if rural && r() < 0.35 {
        n.add(Role::Firewood, 2.0, None, 1);
    }
    if r() < 0.8 {
        let pw = if r() < 0.05 { 1.0 } else { 0.5 };
        n.add(Role::Cleaning, pw, None, 1);
    }
    if r() < 0.3 + 0.15 * al + 0.1 * m {
        n.add(Role::Shopping, 1.0, None, 1);
    }
    if r() < 0.2 {
        let pw = if r() < 0.5 { 0.25 } else { 0.5 };
        n.add(Role::Errand, pw, None, 1);
    }
    if r() < 0.25 + 0.25 * m {
        let pw = if r() < 0.6 { 0.5 } else { 1.0 };
        n.add(Role::Laundry, pw, None, 1);
    }
    if r() < 0.3 {
        n.add(Role::BedLinen, 0.5, None, 1);
    }
    if r() < 0.05 + 0.1 * al * (1.0 - c) {
        let pw = if r() < 0.6 { 1.0 } else { 2.0 };
        n.add(Role::Walk, pw, None, 1);
    }
    if alone && r() < 0.12 {
        n.add(Role::Social, 1.0, None, 1);
    }
    if r() < 0.04 {
        let pw = if r() < 0.5 { 0.25 } else { 0.5 };
        n.add(Role::Escort, pw, None, 1);
    }
    if !alone && c >= 0.5 && r() < 0.35 {
        let pw = if r() < 0.6 { 1.0 } else { 2.0 };
        n.add(Role::Relief, pw, None, 1);
    }
    if n.out.is_empty() {
        n.add(Role::Cleaning, 0.5, None, 1);
    }
    n.out
}
