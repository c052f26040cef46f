//! Drawing a world's structure from the priors of `training/SIMULATION.md`, section 10.
//!
//! Nothing here is shared with the estimator: the slots are the five names of the needs
//! format, the context is this module's own schema, and the visit-time mechanism
//! ([`World::visit_mean`]) is this world's own, not a linear model in any encoding.

use super::rng::{pick, stream, uniform};
use rand::Rng;
use rand_distr::{Distribution, Gamma};

/// The five times of day the needs format names.
pub const SLOTS: [&str; 5] = ["morning", "midday", "afternoon", "evening", "night"];
pub const MORNING: usize = 0;
pub const MIDDAY: usize = 1;
pub const AFTERNOON: usize = 2;
pub const EVENING: usize = 3;
pub const NIGHT: usize = 4;

/// Kinds of context variable (the catalog's four kinds).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    Numeric { lo: f64, hi: f64 },
    Ordinal { top: usize },
    Boolean,
    Categorical,
}

/// The world's context variables, by role (their catalog order is shuffled per world).
pub const AGE: usize = 0;
pub const ALONE: usize = 1;
pub const COGNITION: usize = 2;
pub const MOBILITY: usize = 3;
pub const LANGUAGE: usize = 4;
pub const AREA: usize = 5;
pub const HOUSING: usize = 6;
/// Years since the first decision: numeric, and without any effect on time.
pub const YEARS: usize = 7;
pub const N_CONTEXT: usize = 8;

#[derive(Debug, Clone)]
pub struct ContextDef {
    pub name: &'static str,
    pub kind: Kind,
    /// Categorical labels (empty otherwise).
    pub labels: Vec<String>,
}

/// What a need of a code is like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Daily care visits (morning, midday, evening help): always open a visit of their own
    /// that other tasks may join.
    Care,
    /// Personal care tasks done within a care visit or on their own (shower, dressing,
    /// transfers, stockings).
    Addon,
    Medication,
    Supervision,
    /// The night round: always the night patrol.
    Night,
    Meal,
    Service,
    /// Every few weeks or rarer (window cleaning, a big clean).
    Rare,
    Social,
}

impl Role {
    pub fn category(self) -> &'static str {
        match self {
            Role::Care | Role::Addon => "personal_care",
            Role::Medication | Role::Supervision | Role::Night => "supervision",
            Role::Meal | Role::Service | Role::Rare => "service",
            Role::Social => "other",
        }
    }

    fn prefix(self) -> &'static str {
        match self {
            Role::Care => "OMV",
            Role::Addon => "PV",
            Role::Medication => "LKM",
            Role::Supervision => "TSY",
            Role::Night => "NATT",
            Role::Meal => "MAT",
            Role::Service => "SRV",
            Role::Rare => "STOR",
            Role::Social => "SOC",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Code {
    pub code: String,
    pub name: String,
    pub role: Role,
    pub schablon_min: f64,
    /// Best-practice minutes of the task for a recipient without any context effect.
    pub base_min: f64,
    /// Slots the code is done in, the usual one first.
    pub slots: Vec<usize>,
    /// Frequencies (per week) a need of this code asks for, with weights.
    pub freqs: Vec<(f64, f64)>,
    /// Probability that an occasion joins a visit already open in its slot (before the
    /// person's and the weekday's shifts).
    pub join_p: f64,
    /// May need two staff.
    pub two_staff: bool,
    /// Which task group the context effects see it in.
    pub group: usize,
    /// Probability that a person has a need of this code: `need_base + need_slope · driver`
    /// (the driver depends on the role: dependency, cognition, living alone, or 0.5).
    pub need_base: f64,
    pub need_slope: f64,
}

/// Where a context effect acts.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// The tasks of these groups.
    Groups(Vec<bool>),
    /// The per-visit overhead.
    Overhead,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Multiplies the target's minutes by (1 + value).
    Mult,
    /// Adds value minutes per task (or per visit for the overhead).
    Add,
}

/// One context effect: a value per level (ordinal), per label (categorical), for true
/// (boolean, index 1), or per ten units (numeric, index 0).
#[derive(Debug, Clone)]
pub struct Effect {
    pub var: usize,
    pub target: Target,
    pub mode: Mode,
    pub shape: &'static str,
    pub value: Vec<f64>,
}

/// An effect that acts only when two context conditions hold together.
#[derive(Debug, Clone)]
pub struct Interaction {
    /// (variable, least level or the label index, for categorical exactly that label).
    pub a: (usize, usize),
    pub b: (usize, usize),
    pub target: Target,
    pub mode: Mode,
    pub value: f64,
}

#[derive(Debug, Clone)]
pub struct Team {
    pub id: String,
    pub area: usize,
    pub provider: usize,
    /// Pace relative to best practice (1 = best practice, 1.3 = 30 % slower; below 1: cuts
    /// corners).
    pub pace: f64,
    /// Minutes added to every visit (waiting, paperwork in the home).
    pub slack_min: f64,
    /// Weekend pace factor (substitutes).
    pub weekend: f64,
    pub cuts_corners: bool,
}

#[derive(Debug, Clone)]
pub struct Faults {
    pub forgotten: f64,
    /// Of the forgotten check-outs, the share the system closes itself after
    /// `auto_close_min`.
    pub auto_closed_share: f64,
    pub auto_close_min: f64,
    pub short: f64,
    pub early: f64,
    pub duplicate: f64,
    /// The same visit registered twice under a new id.
    pub double_registration: f64,
    pub unknown_code: f64,
    pub cancelled: f64,
    /// Per person and week: a hospital stay of 1–4 weeks starts.
    pub hospital_per_week: f64,
    /// Durations written as whole minutes.
    pub whole_minutes: bool,
    /// `start` written with its UTC offset (+01:00 / +02:00).
    pub utc_offset: bool,
}

/// A drawn world.
#[derive(Debug, Clone)]
pub struct World {
    pub seed: u64,
    pub prefix: String,
    pub contexts: Vec<ContextDef>,
    /// Catalog order of the context variables.
    pub context_order: Vec<usize>,
    pub codes: Vec<Code>,
    pub groups: usize,
    pub effects: Vec<Effect>,
    pub interactions: Vec<Interaction>,
    /// Per-visit overhead per slot, minutes.
    pub overhead_slot: [f64; 5],
    /// Overhead growth: `overhead_task_min · (tasks − 1)^overhead_power`.
    pub overhead_task_min: f64,
    pub overhead_power: f64,
    /// (a, b, minutes): doing both in one visit changes the time by this (negative: saves).
    pub pairs: Vec<(usize, usize, f64)>,
    /// Wall-clock factor on the tasks that need two staff when two are present.
    pub staff2_factor: f64,
    pub staff2_extra_min: f64,
    pub recipient_sigma: f64,
    pub visit_sigma: f64,
    /// The visit noise's family: lognormal, or gamma of the same mean and spread (whose
    /// log has a long left tail: many visits a little short, a few much shorter), so that
    /// no estimator can lean on the noise being symmetric on the log scale.
    pub noise_gamma: bool,
    /// Share of visits with an incident (×1.3–2.0).
    pub incident_p: f64,
    pub teams: Vec<Team>,
    /// Index of the night patrol in `teams`.
    pub night_team: usize,
    /// Index of a best-practice team (pace 1, no slack): serves the held-out recipients.
    pub best_team: usize,
    pub neighbour_share: f64,
    /// Per visit: done by a substitute (pace × `substitute_pace`).
    pub substitute_p: f64,
    pub substitute_pace: f64,
    /// Person-level spread (logit) of the grouping practice, and the weekend shift.
    pub join_person_sd: f64,
    pub join_weekend_shift: f64,
    pub faults: Faults,
    pub extra_columns: Vec<&'static str>,
    /// Column order of `visits.csv`: indices into [`World::columns`].
    pub column_order: Vec<usize>,
    /// Population.
    pub area_shares: Vec<f64>,
    pub housing_shares: Vec<f64>,
    pub language_p: Vec<f64>,
    pub alone_p: f64,
    pub cognition_cuts: Vec<f64>,
    pub mobility_cuts: Vec<f64>,
    pub age_beta: (f64, f64),
    /// Check-in windows per slot (minutes after midnight).
    pub windows: [(u32, u32); 5],
    /// Log start: days after 2025-01-06 (a Monday), a multiple of 7.
    pub start_day: i64,
}

const AREA_NAMES: [&str; 7] = [
    "centrum",
    "tatort",
    "forort",
    "kyrkby",
    "landsbygd",
    "skargard",
    "fjall",
];
const HOUSING_NAMES: [&str; 4] = ["lagenhet", "villa", "trygghetsboende", "gard"];
const EXTRA_COLUMNS: [&str; 6] = [
    "status",
    "employee_ref",
    "planned_min",
    "registered_by",
    "region_code",
    "note",
];

/// A kind of code to draw: (role, count range, base minutes range, allowed slots,
/// frequencies with weights, join probability range).
type CodeTemplate = (
    Role,
    (usize, usize),
    (f64, f64),
    Vec<usize>,
    Vec<(f64, f64)>,
    (f64, f64),
);

fn code_templates() -> Vec<CodeTemplate> {
    vec![
        (
            Role::Care,
            (2, 3),
            (4.0, 14.0),
            vec![MORNING, EVENING, MIDDAY],
            vec![(7.0, 1.0)],
            (1.0, 1.0),
        ),
        (
            Role::Addon,
            (3, 8),
            (2.0, 28.0),
            vec![MORNING, EVENING, MIDDAY, AFTERNOON],
            vec![(1.0, 3.0), (2.0, 2.0), (3.0, 1.0), (7.0, 3.0), (14.0, 1.0)],
            (0.3, 0.98),
        ),
        (
            Role::Medication,
            (1, 2),
            (1.5, 4.5),
            vec![MORNING, EVENING, MIDDAY, NIGHT],
            vec![(7.0, 3.0), (10.0, 1.0), (14.0, 3.0), (21.0, 1.0)],
            (0.6, 0.98),
        ),
        (
            Role::Supervision,
            (1, 2),
            (3.0, 12.0),
            vec![AFTERNOON, EVENING, MIDDAY],
            vec![
                (3.0, 2.0),
                (7.0, 3.0),
                (10.0, 1.0),
                (14.0, 1.0),
                (21.0, 0.5),
            ],
            (0.0, 0.4),
        ),
        (
            Role::Night,
            (1, 1),
            (2.0, 6.0),
            vec![NIGHT],
            vec![(7.0, 3.0), (14.0, 1.0)],
            (0.0, 0.3),
        ),
        (
            Role::Meal,
            (1, 3),
            (4.0, 14.0),
            vec![MIDDAY, EVENING],
            vec![(7.0, 3.0), (14.0, 2.0), (3.0, 0.5)],
            (0.1, 0.9),
        ),
        (
            Role::Service,
            (3, 8),
            (8.0, 75.0),
            vec![AFTERNOON, MIDDAY],
            vec![(0.5, 3.0), (1.0, 3.0), (2.0, 1.0)],
            (0.0, 0.3),
        ),
        (
            Role::Rare,
            (1, 2),
            (30.0, 150.0),
            vec![MIDDAY, AFTERNOON],
            vec![(0.1, 1.0), (0.25, 1.0)],
            (0.0, 0.1),
        ),
        (
            Role::Social,
            (1, 3),
            (15.0, 60.0),
            vec![AFTERNOON, MIDDAY],
            vec![(1.0, 2.0), (2.0, 1.0), (3.0, 1.0)],
            (0.0, 0.2),
        ),
    ]
}

/// Ranges of `need_base` and `need_slope` per role.
fn need_prior(role: Role) -> ((f64, f64), (f64, f64)) {
    match role {
        Role::Care => ((0.0, 0.0), (0.0, 0.0)),
        Role::Addon => ((0.0, 0.12), (0.1, 0.7)),
        Role::Medication => ((0.05, 0.25), (0.3, 0.7)),
        Role::Supervision => ((0.0, 0.1), (0.2, 0.6)),
        Role::Night => ((0.0, 0.05), (0.1, 0.4)),
        Role::Meal => ((0.0, 0.15), (0.2, 0.6)),
        Role::Service => ((0.15, 0.5), (0.0, 0.6)),
        Role::Rare => ((0.05, 0.2), (0.0, 0.3)),
        Role::Social => ((0.0, 0.1), (0.1, 0.4)),
    }
}

impl World {
    /// Draws a world from the priors; deterministic in `seed`.
    pub fn draw(seed: u64) -> World {
        World::draw_with_codes(seed, None)
    }

    /// [`World::draw`] with about `codes` insats codes (at least the 14 the roles need):
    /// each role starts at its fewest codes and the rest are added one at a time to a role
    /// drawn at random (add-ons and service without an upper bound, the others up to their
    /// most). `None` draws the count from the priors, as [`World::draw`].
    pub fn draw_with_codes(seed: u64, codes: Option<usize>) -> World {
        let counts = codes.map(|target| {
            let templates = code_templates();
            let mut counts: Vec<usize> = templates.iter().map(|t| t.1 .0).collect();
            let mut rng = stream(seed, 101, 0);
            let growable = |i: usize, n: usize| {
                matches!(templates[i].0, Role::Addon | Role::Service) || n < templates[i].1 .1
            };
            while counts.iter().sum::<usize>() < target {
                let open: Vec<usize> = (0..counts.len())
                    .filter(|&i| growable(i, counts[i]))
                    .collect();
                let i = open[rng.gen_range(0..open.len())];
                counts[i] += 1;
            }
            counts
        });
        let mut rng = stream(seed, 100, 0);
        let rng = &mut rng;

        // ---- context schema ----
        let cog_top = rng.gen_range(2..=4usize);
        let mob_top = rng.gen_range(2..=3usize);
        let areas = rng.gen_range(3..=5usize);
        let mut area_pick: Vec<usize> = (0..AREA_NAMES.len()).collect();
        shuffle(rng, &mut area_pick);
        area_pick.truncate(areas);
        area_pick.sort_unstable();
        let area_labels: Vec<String> = area_pick.iter().map(|&i| AREA_NAMES[i].into()).collect();
        let housing_n = rng.gen_range(3..=4usize);
        let housing_labels: Vec<String> = HOUSING_NAMES[..housing_n]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let contexts = vec![
            ContextDef {
                name: "age",
                kind: Kind::Numeric {
                    lo: 65.0,
                    hi: 105.0,
                },
                labels: vec![],
            },
            ContextDef {
                name: "lives_alone",
                kind: Kind::Boolean,
                labels: vec![],
            },
            ContextDef {
                name: "cognition",
                kind: Kind::Ordinal { top: cog_top },
                labels: vec![],
            },
            ContextDef {
                name: "mobility",
                kind: Kind::Ordinal { top: mob_top },
                labels: vec![],
            },
            ContextDef {
                name: "language_support",
                kind: Kind::Boolean,
                labels: vec![],
            },
            ContextDef {
                name: "area",
                kind: Kind::Categorical,
                labels: area_labels,
            },
            ContextDef {
                name: "housing",
                kind: Kind::Categorical,
                labels: housing_labels,
            },
            ContextDef {
                name: "years_served",
                kind: Kind::Numeric { lo: 0.0, hi: 30.0 },
                labels: vec![],
            },
        ];
        let mut context_order: Vec<usize> = (0..N_CONTEXT).collect();
        shuffle(rng, &mut context_order);

        // ---- codes ----
        let groups = rng.gen_range(2..=5usize);
        let mut codes = Vec::new();
        for (ti, (role, (lo, hi), (blo, bhi), slots, freqs, (jlo, jhi))) in
            code_templates().into_iter().enumerate()
        {
            let drawn = rng.gen_range(lo..=hi);
            let n = counts.as_ref().map_or(drawn, |c| c[ti]);
            let (nb, ns) = need_prior(role);
            for k in 0..n {
                // Log-uniform base minutes: short tasks are common, long ones exist.
                let base = (blo.ln() + rng.gen::<f64>() * (bhi / blo).ln()).exp();
                let base = (base * 2.0).round() / 2.0;
                let mut my_slots = slots.clone();
                if role == Role::Care {
                    // Care codes: one per slot, in order morning, evening, midday.
                    my_slots = vec![slots[k.min(slots.len() - 1)]];
                } else {
                    shuffle(rng, &mut my_slots);
                    my_slots.truncate(rng.gen_range(1..=my_slots.len()));
                }
                // Schablons are padded on average, but not always (under-schabloned tasks).
                let pad = if rng.gen::<f64>() < 0.15 {
                    uniform(rng, 0.7, 0.95)
                } else {
                    uniform(rng, 1.05, 2.4)
                };
                let schablon = ((base * pad / 5.0).round() * 5.0).max(5.0);
                let join_p = uniform(rng, jlo, jhi);
                codes.push(Code {
                    code: format!("{}{:02}", role.prefix(), k + 1),
                    name: format!("{} {}", role.prefix(), k + 1),
                    role,
                    schablon_min: schablon,
                    base_min: base,
                    slots: my_slots,
                    freqs: freqs.clone(),
                    join_p,
                    two_staff: role == Role::Addon && k < 2 && rng.gen::<f64>() < 0.7,
                    group: rng.gen_range(0..groups),
                    need_base: uniform(rng, nb.0, nb.1),
                    need_slope: uniform(rng, ns.0, ns.1),
                });
            }
        }
        // Catalog order is not the role order.
        shuffle(rng, &mut codes);

        // ---- context effects ----
        let mut effects = Vec::new();
        let random_groups = |rng: &mut rand::rngs::StdRng, p: f64| {
            let mut g: Vec<bool> = (0..groups).map(|_| rng.gen::<f64>() < p).collect();
            if !g.iter().any(|&x| x) {
                let i = rng.gen_range(0..groups);
                g[i] = true;
            }
            g
        };
        for (var, top) in [(COGNITION, cog_top), (MOBILITY, mob_top)] {
            for _ in 0..rng.gen_range(1..=2) {
                let mode = if rng.gen::<f64>() < 0.7 {
                    Mode::Mult
                } else {
                    Mode::Add
                };
                let size = match mode {
                    Mode::Mult => uniform(rng, 0.05, 0.45),
                    Mode::Add => uniform(rng, 0.5, 5.0),
                };
                let (shape, value) = ordinal_profile(rng, top, size);
                let target = if rng.gen::<f64>() < 0.2 {
                    Target::Overhead
                } else {
                    Target::Groups(random_groups(rng, 0.5))
                };
                effects.push(Effect {
                    var,
                    target,
                    mode,
                    shape,
                    value,
                });
            }
        }
        for var in [ALONE, LANGUAGE] {
            let mode = if rng.gen::<f64>() < 0.7 {
                Mode::Mult
            } else {
                Mode::Add
            };
            let size = match mode {
                Mode::Mult => uniform(rng, 0.0, if var == LANGUAGE { 0.3 } else { 0.15 }),
                Mode::Add => uniform(rng, 0.0, 3.0),
            };
            effects.push(Effect {
                var,
                target: Target::Groups(random_groups(rng, 0.5)),
                mode,
                shape: "boolean",
                value: vec![0.0, size],
            });
        }
        // Area: per-visit minutes (lock boxes, long walks, boats) and a factor on some tasks.
        let mut area_add = vec![0.0];
        let mut area_mult = vec![0.0];
        for _ in 1..areas {
            area_add.push(uniform(rng, 0.0, 9.0));
            area_mult.push(uniform(rng, -0.05, 0.15));
        }
        effects.push(Effect {
            var: AREA,
            target: Target::Overhead,
            mode: Mode::Add,
            shape: "per label",
            value: area_add,
        });
        effects.push(Effect {
            var: AREA,
            target: Target::Groups(random_groups(rng, 0.4)),
            mode: Mode::Mult,
            shape: "per label",
            value: area_mult,
        });
        let housing: Vec<f64> = (0..housing_n)
            .map(|l| {
                if l == 0 {
                    0.0
                } else {
                    uniform(rng, -0.15, 0.25)
                }
            })
            .collect();
        effects.push(Effect {
            var: HOUSING,
            target: Target::Overhead,
            mode: Mode::Mult,
            shape: "per label",
            value: housing,
        });
        if rng.gen::<f64>() < 0.5 {
            effects.push(Effect {
                var: AGE,
                target: Target::Groups(random_groups(rng, 0.5)),
                mode: Mode::Mult,
                shape: "per ten years over 80",
                value: vec![uniform(rng, -0.03, 0.06)],
            });
        }

        // ---- interactions ----
        let mut interactions = Vec::new();
        for _ in 0..rng.gen_range(1..=3) {
            let choice = rng.gen_range(0..3);
            let (a, b) = match choice {
                0 => ((COGNITION, rng.gen_range(1..=cog_top)), (ALONE, 1)),
                1 => (
                    (MOBILITY, rng.gen_range(1..=mob_top)),
                    (AREA, rng.gen_range(1..areas)),
                ),
                _ => ((COGNITION, rng.gen_range(1..=cog_top)), (LANGUAGE, 1)),
            };
            let mode = if rng.gen::<f64>() < 0.6 {
                Mode::Mult
            } else {
                Mode::Add
            };
            let value = match mode {
                Mode::Mult => uniform(rng, -0.08, 0.3),
                Mode::Add => uniform(rng, -1.0, 4.0),
            };
            let target = if rng.gen::<f64>() < 0.3 {
                Target::Overhead
            } else {
                Target::Groups(random_groups(rng, 0.4))
            };
            interactions.push(Interaction {
                a,
                b,
                target,
                mode,
                value,
            });
        }

        // ---- visits ----
        let mut overhead_slot = [0.0; 5];
        for o in overhead_slot.iter_mut() {
            *o = uniform(rng, 1.0, 6.0);
        }
        let overhead_task_min = uniform(rng, 0.0, 2.5);
        let overhead_power = uniform(rng, 0.5, 1.5);
        let mut pairs = Vec::new();
        let n_pairs = rng.gen_range(3..=10);
        for _ in 0..n_pairs * 4 {
            if pairs.len() >= n_pairs {
                break;
            }
            let a = rng.gen_range(0..codes.len());
            let b = rng.gen_range(0..codes.len());
            if a == b
                || !codes[a].slots.iter().any(|s| codes[b].slots.contains(s))
                || pairs
                    .iter()
                    .any(|&(x, y, _)| (x, y) == (a.min(b), a.max(b)))
            {
                continue;
            }
            let small = codes[a].base_min.min(codes[b].base_min);
            let delta = if rng.gen::<f64>() < 0.7 {
                -uniform(rng, 0.3, 0.5 * small + 0.5)
            } else {
                uniform(rng, 0.5, 4.0)
            };
            pairs.push((a.min(b), a.max(b), delta));
        }
        let staff2_factor = uniform(rng, 0.7, 1.25);
        let staff2_extra_min = uniform(rng, 0.0, 4.0);

        // ---- teams ----
        let providers = rng.gen_range(1..=3usize);
        let provider_pace: Vec<f64> = (0..providers)
            .map(|p| if p == 0 { 1.0 } else { uniform(rng, 1.1, 1.45) })
            .collect();
        let n_teams = rng.gen_range(areas.max(5)..=14);
        let spread = uniform(rng, 0.03, 0.12);
        let gamma = Gamma::new(1.5, spread).expect("valid gamma");
        let mut teams: Vec<Team> = (0..n_teams)
            .map(|t| {
                let area = if t < areas {
                    t
                } else {
                    rng.gen_range(0..areas)
                };
                // Private providers (paid per performed hour) run a third of the teams.
                let provider = if t < areas || providers == 1 || rng.gen::<f64>() < 0.6 {
                    0
                } else {
                    rng.gen_range(1..providers)
                };
                let pace = provider_pace[provider] * (1.0 + gamma.sample(rng));
                let slack_min = if rng.gen::<f64>() < 0.3 {
                    uniform(rng, 0.5, 5.0)
                } else {
                    0.0
                };
                Team {
                    id: String::new(),
                    area,
                    provider,
                    pace,
                    slack_min,
                    weekend: 1.0,
                    cuts_corners: false,
                }
            })
            .collect();
        // Best practice is the fastest honest municipal team: scale so that it is exactly 1,
        // and give it no slack.
        let best_team = (0..n_teams)
            .filter(|&t| teams[t].provider == 0)
            .min_by(|&a, &b| teams[a].pace.total_cmp(&teams[b].pace))
            .expect("team 0 is municipal");
        let scale = teams[best_team].pace;
        for t in teams.iter_mut() {
            t.pace /= scale;
        }
        teams[best_team].pace = 1.0;
        teams[best_team].slack_min = 0.0;
        // Now and then a team that cuts corners: faster than best practice, not to be copied.
        if rng.gen::<f64>() < 0.35 {
            let candidates: Vec<usize> = (0..n_teams).filter(|&t| t != best_team).collect();
            let t = candidates[rng.gen_range(0..candidates.len())];
            teams[t].pace = uniform(rng, 0.8, 0.93);
            teams[t].slack_min = 0.0;
            teams[t].cuts_corners = true;
        }
        let weekend = uniform(rng, 1.0, 1.25);
        for t in teams.iter_mut() {
            t.weekend = weekend * uniform(rng, 0.97, 1.03);
        }
        let prefix = format!("W{}", seed % 1000);
        for (i, t) in teams.iter_mut().enumerate() {
            t.id = format!("{prefix}-P{}-T{:02}", t.provider + 1, i + 1);
        }
        // The night patrol: its own unit, pace drawn like the municipal teams' (half spread).
        let night_pace = 1.0
            + Gamma::new(1.5, spread / 2.0)
                .expect("valid gamma")
                .sample(rng);
        teams.push(Team {
            id: format!("{prefix}-NATT"),
            area: 0,
            provider: 0,
            pace: night_pace,
            slack_min: 0.0,
            weekend: 1.0,
            cuts_corners: false,
        });
        let night_team = teams.len() - 1;

        // ---- log ----
        let auto_close = [45.0, 60.0, 90.0, 120.0];
        let faults = Faults {
            forgotten: uniform(rng, 0.002, 0.01),
            auto_closed_share: uniform(rng, 0.0, 0.6),
            auto_close_min: auto_close[rng.gen_range(0..auto_close.len())],
            short: uniform(rng, 0.005, 0.02),
            early: uniform(rng, 0.005, 0.03),
            duplicate: uniform(rng, 0.002, 0.01),
            double_registration: uniform(rng, 0.0, 0.003),
            unknown_code: uniform(rng, 0.001, 0.005),
            cancelled: uniform(rng, 0.005, 0.03),
            hospital_per_week: uniform(rng, 0.003, 0.015),
            whole_minutes: rng.gen::<f64>() < 0.4,
            utc_offset: rng.gen::<f64>() < 0.5,
        };
        let mut extra: Vec<&'static str> = EXTRA_COLUMNS.to_vec();
        shuffle(rng, &mut extra);
        extra.truncate(rng.gen_range(1..=4));
        let n_columns = 7 + N_CONTEXT + extra.len();
        let mut column_order: Vec<usize> = (0..n_columns).collect();
        if rng.gen::<f64>() < 0.6 {
            shuffle(rng, &mut column_order);
        }

        // ---- population ----
        let area_shares: Vec<f64> = (0..areas).map(|_| uniform(rng, 0.5, 2.0)).collect();
        let housing_shares: Vec<f64> = (0..housing_n).map(|_| uniform(rng, 0.3, 2.0)).collect();
        let language_p: Vec<f64> = (0..areas).map(|_| uniform(rng, 0.01, 0.12)).collect();
        let cuts = |rng: &mut rand::rngs::StdRng, top: usize| {
            let mut c = vec![uniform(rng, -0.2, 0.6)];
            for _ in 1..top {
                let last = *c.last().expect("one cut");
                c.push(last + uniform(rng, 0.35, 0.9));
            }
            c
        };
        let cognition_cuts = cuts(rng, cog_top);
        let mobility_cuts = cuts(rng, mob_top);
        let mut windows = [(0u32, 0u32); 5];
        let starts = [
            (375, 450),
            (630, 690),
            (810, 870),
            (1020, 1080),
            (1320, 1335),
        ];
        let lengths = [(150, 210), (120, 180), (120, 170), (150, 240), (60, 100)];
        for s in 0..5 {
            let a = rng.gen_range(starts[s].0..=starts[s].1);
            let l = rng.gen_range(lengths[s].0..=lengths[s].1);
            windows[s] = (a, (a + l).min(1438));
        }
        World {
            seed,
            prefix,
            contexts,
            context_order,
            codes,
            groups,
            effects,
            interactions,
            overhead_slot,
            overhead_task_min,
            overhead_power,
            pairs,
            staff2_factor,
            staff2_extra_min,
            recipient_sigma: uniform(rng, 0.08, 0.16),
            visit_sigma: uniform(rng, 0.15, 0.30),
            incident_p: uniform(rng, 0.0, 0.04),
            teams,
            night_team,
            best_team,
            neighbour_share: uniform(rng, 0.15, 0.4),
            substitute_p: uniform(rng, 0.02, 0.15),
            substitute_pace: uniform(rng, 1.1, 1.5),
            join_person_sd: uniform(rng, 0.3, 1.5),
            join_weekend_shift: uniform(rng, -1.0, 0.5),
            faults,
            extra_columns: extra,
            column_order,
            area_shares,
            housing_shares,
            language_p,
            alone_p: uniform(rng, 0.45, 0.7),
            cognition_cuts,
            mobility_cuts,
            age_beta: (uniform(rng, 2.5, 4.0), uniform(rng, 2.5, 3.5)),
            windows,
            start_day: 7 * rng.gen_range(0..40i64),
            // Drawn last, so that every other draw of a world is as it was before.
            noise_gamma: rng.gen::<f64>() < 0.5,
        }
    }

    /// The columns of `visits.csv` before reordering.
    pub fn columns(&self) -> Vec<String> {
        let mut c: Vec<String> = [
            "visit_id",
            "recipient_id",
            "unit_id",
            "start",
            "duration_min",
            "staff",
            "tasks",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        for &v in &self.context_order {
            c.push(format!("ctx_{}", self.contexts[v].name));
        }
        c.extend(self.extra_columns.iter().map(|s| s.to_string()));
        c
    }

    /// The value of an effect for a person's context.
    fn effect_value(&self, e: &Effect, ctx: &[f64]) -> f64 {
        let x = ctx[e.var];
        match self.contexts[e.var].kind {
            Kind::Numeric { .. } => e.value[0] * (x - 80.0) / 10.0,
            _ => e.value.get(x as usize).copied().unwrap_or(0.0),
        }
    }

    fn holds(&self, (var, level): (usize, usize), ctx: &[f64]) -> bool {
        match self.contexts[var].kind {
            Kind::Categorical => ctx[var] as usize == level,
            _ => ctx[var] >= level as f64,
        }
    }

    /// Per task group and for the overhead: (factor, added minutes) for a context.
    pub fn context_terms(&self, ctx: &[f64]) -> Terms {
        let mut t = Terms {
            group_mult: vec![1.0; self.groups],
            group_add: vec![0.0; self.groups],
            overhead_mult: 1.0,
            overhead_add: 0.0,
        };
        let mut apply = |target: &Target, mode: Mode, v: f64| match (target, mode) {
            (Target::Overhead, Mode::Mult) => t.overhead_mult *= 1.0 + v,
            (Target::Overhead, Mode::Add) => t.overhead_add += v,
            (Target::Groups(g), Mode::Mult) => {
                for (k, _) in g.iter().enumerate().filter(|(_, on)| **on) {
                    t.group_mult[k] *= 1.0 + v;
                }
            }
            (Target::Groups(g), Mode::Add) => {
                for (k, _) in g.iter().enumerate().filter(|(_, on)| **on) {
                    t.group_add[k] += v;
                }
            }
        };
        for e in &self.effects {
            apply(&e.target, e.mode, self.effect_value(e, ctx));
        }
        for i in &self.interactions {
            if self.holds(i.a, ctx) && self.holds(i.b, ctx) {
                apply(&i.target, i.mode, i.value);
            }
        }
        t.group_mult.iter_mut().for_each(|m| *m = m.max(0.4));
        t.overhead_mult = t.overhead_mult.max(0.4);
        t
    }

    /// Best-practice mean minutes of a visit (no recipient effect, no noise): `tasks` are
    /// (code, needs two staff), `staff` the staff present.
    pub fn visit_mean(
        &self,
        terms: &Terms,
        slot: usize,
        tasks: &[(usize, bool)],
        staff: u8,
    ) -> f64 {
        let n = tasks.len() as f64;
        let mut m = (self.overhead_slot[slot] + terms.overhead_add) * terms.overhead_mult
            + self.overhead_task_min * (n - 1.0).max(0.0).powf(self.overhead_power);
        for &(c, two) in tasks {
            let code = &self.codes[c];
            let g = code.group;
            let mut t = (code.base_min * terms.group_mult[g] + terms.group_add[g]).max(0.5);
            if two && staff >= 2 {
                t *= self.staff2_factor;
            }
            m += t;
        }
        if staff >= 2 {
            m += self.staff2_extra_min;
        }
        for &(a, b, d) in &self.pairs {
            let has = |x: usize| tasks.iter().any(|&(c, _)| c == x);
            if has(a) && has(b) {
                m += d;
            }
        }
        m.max(1.5)
    }
}

/// A context's effects, resolved once per person.
#[derive(Debug, Clone)]
pub struct Terms {
    pub group_mult: Vec<f64>,
    pub group_add: Vec<f64>,
    pub overhead_mult: f64,
    pub overhead_add: f64,
}

/// An ordinal effect by level, not proportional to the level: (shape name, value per level).
fn ordinal_profile<R: Rng>(rng: &mut R, top: usize, size: f64) -> (&'static str, Vec<f64>) {
    let mut v = vec![0.0; top + 1];
    match rng.gen_range(0..3) {
        0 => {
            // Uneven steps.
            let steps: Vec<f64> = (0..top).map(|_| uniform(rng, 0.3, 1.7)).collect();
            let total: f64 = steps.iter().sum();
            let mut acc = 0.0;
            for l in 1..=top {
                acc += steps[l - 1];
                v[l] = size * acc / total;
            }
            ("uneven steps", v)
        }
        1 => {
            // A threshold: only the upper levels.
            let from = rng.gen_range(1..=top);
            for x in v.iter_mut().skip(from) {
                *x = size;
            }
            ("threshold", v)
        }
        _ => {
            // Most of it at the first level.
            for (l, x) in v.iter_mut().enumerate().skip(1) {
                *x = size * (0.6 + 0.4 * (l - 1) as f64 / (top - 1).max(1) as f64);
            }
            ("front-loaded", v)
        }
    }
}

pub fn shuffle<T, R: Rng>(rng: &mut R, v: &mut [T]) {
    for i in (1..v.len()).rev() {
        v.swap(i, rng.gen_range(0..=i));
    }
}

/// Draws a frequency from weighted options.
pub fn draw_freq<R: Rng>(rng: &mut R, options: &[(f64, f64)]) -> f64 {
    let w: Vec<f64> = options.iter().map(|o| o.1).collect();
    options[pick(rng, &w)].0
}
