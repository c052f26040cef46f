//! The two synthetic municipalities: catalogs, true time parameters and population settings.
//! Everything numeric the simulation uses lives here, so that `training/SIMULATION.md` and
//! `simulation.json` can be checked against one place.

use super::Municipality;
use ramtid_core::catalog::{Catalog, Category, ContextKind, ContextVar, Insats};
use ramtid_core::slot::Slot;

use Slot::{Afternoon, Evening, Midday, Morning, Night};

/// What a code stands for when the population generator hands out needs. Each profile maps
/// the roles it offers to one of its own codes; a role a profile lacks is never handed out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    MorningCare,
    MiddayCare,
    EveningCare,
    Shower,
    Hygiene,
    Dressing,
    Toilet,
    Transfer,
    Incontinence,
    Compression,
    EatingSupport,
    SkinCare,
    Stoma,
    Medication,
    Tillsyn,
    NightCheck,
    Breakfast,
    MealPrep,
    MealDelivery,
    Dishes,
    BedMaking,
    Waste,
    Firewood,
    Cleaning,
    Laundry,
    BedLinen,
    Shopping,
    Errand,
    Walk,
    Social,
    Escort,
    Relief,
}

/// One insats code of a profile: its catalog entry and its true efficient time.
#[derive(Debug, Clone)]
pub(crate) struct CodeSpec {
    pub code: &'static str,
    pub name: &'static str,
    pub category: Category,
    /// The municipality's standard time, as written to `catalog.toml`.
    pub schablon_min: f64,
    /// True efficient task minutes at z = 0 (`base_t`).
    pub base_min: f64,
    /// Preferred slots, in order. The first is the code's default slot.
    pub slots: &'static [Slot],
    /// True: performed inside whatever visit the recipient has in that slot that day.
    /// False: a visit of its own.
    pub joins: bool,
    pub role: Role,
}

/// How recipients are drawn.
#[derive(Debug, Clone)]
pub(crate) struct PopulationSpec {
    /// Age = 65 + 35 × Beta(a, b), rounded.
    pub age_beta: (f64, f64),
    /// P(lives alone) at age 83; +2 percentage points per year of age, clamped to 0.3–0.9.
    pub lives_alone_p: f64,
    /// Share of recipients per label of the area variable.
    pub area_shares: &'static [f64],
    /// P(interpreter / language support) per area label.
    pub language_p: &'static [f64],
    /// Area labels that count as rural (firewood is only handed out there).
    pub rural_areas: &'static [usize],
    /// Cut points of the latent cognition score (one fewer than levels).
    pub cognition_cuts: &'static [f64],
    /// Cut points of the latent mobility score (one fewer than levels).
    pub mobility_cuts: &'static [f64],
    /// P(transfers need two staff) at the highest mobility level.
    pub staff2_p_top: f64,
    /// Teams per area label.
    pub teams_per_area: &'static [usize],
}

/// Index of the "overhead" row in [`Profile::beta`]; rows 0–3 are the categories.
pub(crate) const OVERHEAD: usize = 4;

pub(crate) fn category_index(c: Category) -> usize {
    match c {
        Category::PersonalCare => 0,
        Category::Service => 1,
        Category::Supervision => 2,
        Category::Other => 3,
    }
}

pub(crate) const BETA_ROWS: [&str; 5] = [
    "personal_care",
    "service",
    "supervision",
    "other",
    "overhead",
];

/// The numeric context variable (age) enters the truth as (age − 80) / 10.
pub(crate) const AGE_CENTER: f64 = 80.0;
pub(crate) const AGE_SCALE: f64 = 10.0;

/// Context variables, in catalog order, are always: age, lives_alone, cognition, mobility,
/// language (interpreter / language_support), area (area / district).
pub(crate) const CTX_AGE: usize = 0;
pub(crate) const CTX_ALONE: usize = 1;
pub(crate) const CTX_COGNITION: usize = 2;
pub(crate) const CTX_MOBILITY: usize = 3;
pub(crate) const CTX_LANGUAGE: usize = 4;
pub(crate) const CTX_AREA: usize = 5;

#[derive(Debug, Clone)]
pub(crate) struct Profile {
    pub municipality: Municipality,
    /// Prefix of recipient and team ids.
    pub id_prefix: &'static str,
    pub codes: Vec<CodeSpec>,
    pub contexts: Vec<ContextVar>,
    /// β per row of [`BETA_ROWS`], each with one value per feature of [`Profile::features`].
    pub beta: [Vec<f64>; 5],
    /// Overhead minutes per visit by slot (index = `Slot::index`).
    pub overhead_min: [f64; 5],
    /// Extra wall-clock minutes of a double-staffed visit.
    pub staff2_extra_min: f64,
    /// Minutes saved when both codes are in the same visit.
    pub savings: Vec<(&'static str, &'static str, f64)>,
    pub population: PopulationSpec,
}

impl Profile {
    pub fn catalog(&self) -> Catalog {
        Catalog {
            insatser: self
                .codes
                .iter()
                .map(|c| Insats {
                    code: c.code.to_string(),
                    name: c.name.to_string(),
                    category: c.category,
                    schablon_min: c.schablon_min,
                })
                .collect(),
            contexts: self.contexts.clone(),
            clusters: Vec::new(),
            ibic: Vec::new(),
        }
    }

    pub fn role_code(&self, role: Role) -> Option<usize> {
        self.codes.iter().position(|c| c.role == role)
    }

    pub fn code_index(&self, code: &str) -> usize {
        self.codes
            .iter()
            .position(|c| c.code == code)
            .unwrap_or_else(|| panic!("profile refers to unknown code {code}"))
    }

    /// Names of the features of z(ctx), in order.
    pub fn features(&self) -> Vec<String> {
        let mut out = Vec::new();
        for c in &self.contexts {
            match c.kind {
                ContextKind::Numeric => out.push(format!("({}-{AGE_CENTER})/{AGE_SCALE}", c.name)),
                ContextKind::Ordinal | ContextKind::Boolean => out.push(c.name.clone()),
                ContextKind::Categorical => {
                    for l in c.labels.iter().skip(1) {
                        out.push(format!("{}={l}", c.name));
                    }
                }
            }
        }
        out
    }

    /// z(ctx): numeric → (x − 80)/10; ordinal → its level; boolean → 0/1; categorical →
    /// one-hot without the first label. `values` are catalog-coded (categorical = label index).
    pub fn encode(&self, values: &[f64]) -> Vec<f64> {
        let mut z = Vec::new();
        for (c, &x) in self.contexts.iter().zip(values) {
            match c.kind {
                ContextKind::Numeric => z.push((x - AGE_CENTER) / AGE_SCALE),
                ContextKind::Ordinal | ContextKind::Boolean => z.push(x),
                ContextKind::Categorical => {
                    for k in 1..c.labels.len() {
                        z.push(if x as usize == k { 1.0 } else { 0.0 });
                    }
                }
            }
        }
        z
    }

    /// The factors 1 + β_row·z for the four categories and the overhead.
    pub fn factors(&self, z: &[f64]) -> [f64; 5] {
        let mut f = [1.0; 5];
        for (row, b) in self.beta.iter().enumerate() {
            f[row] = 1.0 + b.iter().zip(z).map(|(b, z)| b * z).sum::<f64>();
        }
        f
    }
}

pub(crate) fn profile(m: Municipality) -> Profile {
    match m {
        Municipality::Nordstad => nordstad(),
        Municipality::Sjobygd => sjobygd(),
    }
}

#[allow(clippy::too_many_arguments)]
const fn code(
    code: &'static str,
    name: &'static str,
    category: Category,
    schablon_min: f64,
    base_min: f64,
    slots: &'static [Slot],
    joins: bool,
    role: Role,
) -> CodeSpec {
    CodeSpec {
        code,
        name,
        category,
        schablon_min,
        base_min,
        slots,
        joins,
        role,
    }
}

fn numeric(name: &str, min: f64, max: f64) -> ContextVar {
    ContextVar {
        name: name.into(),
        kind: ContextKind::Numeric,
        ordinal_levels: Vec::new(),
        labels: Vec::new(),
        min: Some(min),
        max: Some(max),
        trained: None,
    }
}

fn boolean(name: &str) -> ContextVar {
    ContextVar {
        name: name.into(),
        kind: ContextKind::Boolean,
        ordinal_levels: Vec::new(),
        labels: Vec::new(),
        min: None,
        max: None,
        trained: None,
    }
}

fn ordinal(name: &str, levels: usize) -> ContextVar {
    ContextVar {
        name: name.into(),
        kind: ContextKind::Ordinal,
        ordinal_levels: (0..levels).map(|l| l as f64).collect(),
        labels: Vec::new(),
        min: None,
        max: None,
        trained: None,
    }
}

fn categorical(name: &str, labels: &[&str]) -> ContextVar {
    ContextVar {
        name: name.into(),
        kind: ContextKind::Categorical,
        ordinal_levels: Vec::new(),
        labels: labels.iter().map(|l| l.to_string()).collect(),
        min: None,
        max: None,
        trained: None,
    }
}

#[rustfmt::skip]
fn nordstad_codes() -> Vec<CodeSpec> {
    use Category::{Other, PersonalCare as Pc, Service, Supervision};
    use Role as R;
    vec![
        code("MORNING_CARE", "Morgonhjälp", Pc, 20.0, 6.0, &[Morning], true, R::MorningCare),
        code("MIDDAY_CARE", "Middagshjälp", Pc, 15.0, 6.0, &[Midday], true, R::MiddayCare),
        code("EVENING_CARE", "Kvällshjälp", Pc, 20.0, 6.0, &[Evening], true, R::EveningCare),
        code("SHOWER", "Dusch", Pc, 40.0, 20.0, &[Morning, Afternoon], true, R::Shower),
        code("DRESSING", "På- och avklädning", Pc, 10.0, 3.0, &[Morning, Evening], true, R::Dressing),
        code("TOILET", "Toalettbesök", Pc, 10.0, 4.0, &[Midday, Evening, Afternoon, Morning], true, R::Toilet),
        code("TRANSFER", "Förflyttning", Pc, 10.0, 2.5, &[Morning, Evening, Midday, Afternoon], true, R::Transfer),
        code("INCONTINENCE", "Inkontinenshjälp", Pc, 10.0, 3.5, &[Morning, Evening, Night], true, R::Incontinence),
        code("COMPRESSION", "Stödstrumpor på och av", Pc, 10.0, 4.0, &[Morning, Evening], true, R::Compression),
        code("EATING_SUPPORT", "Hjälp att äta", Pc, 20.0, 10.0, &[Midday, Evening], true, R::EatingSupport),
        code("SKIN_CARE", "Smörjning och hudvård", Pc, 10.0, 5.0, &[Evening, Morning], true, R::SkinCare),
        code("STOMA", "Stomivård (delegerad)", Pc, 15.0, 10.0, &[Morning, Evening], true, R::Stoma),
        code("MEDICATION", "Läkemedelsöverlämning", Supervision, 5.0, 2.5, &[Morning, Evening, Midday, Night], true, R::Medication),
        code("TILLSYN", "Tillsyn", Supervision, 15.0, 6.0, &[Afternoon, Evening, Midday], false, R::Tillsyn),
        code("NIGHT_CHECK", "Nattillsyn", Supervision, 5.0, 3.0, &[Night], false, R::NightCheck),
        code("BREAKFAST", "Frukost", Service, 10.0, 4.0, &[Morning], true, R::Breakfast),
        code("MEAL_PREP", "Måltid: värma och servera", Service, 20.0, 8.0, &[Midday, Evening], false, R::MealPrep),
        code("MEAL_DELIVERY", "Matleverans", Service, 10.0, 4.0, &[Midday], false, R::MealDelivery),
        code("DISHES", "Disk", Service, 10.0, 6.0, &[Evening, Midday], true, R::Dishes),
        code("BED_MAKING", "Bäddning", Service, 10.0, 3.0, &[Morning], true, R::BedMaking),
        code("WASTE", "Sophantering", Service, 5.0, 3.0, &[Evening], true, R::Waste),
        code("CLEANING", "Städning", Service, 90.0, 52.0, &[Midday], false, R::Cleaning),
        code("LAUNDRY", "Tvätt", Service, 30.0, 24.0, &[Afternoon], false, R::Laundry),
        code("BED_LINEN", "Byte av sängkläder", Service, 15.0, 10.0, &[Midday], true, R::BedLinen),
        code("SHOPPING", "Inköp", Service, 45.0, 30.0, &[Afternoon], false, R::Shopping),
        code("PHARMACY", "Apoteksärende", Service, 45.0, 28.0, &[Afternoon], false, R::Errand),
        code("WALK", "Promenad", Other, 45.0, 30.0, &[Afternoon], false, R::Walk),
        code("SOCIAL", "Social samvaro", Other, 30.0, 27.0, &[Afternoon], false, R::Social),
        code("ESCORT", "Ledsagning", Other, 60.0, 55.0, &[Midday], false, R::Escort),
        code("RELIEF", "Avlösning i hemmet", Other, 120.0, 112.0, &[Afternoon], false, R::Relief),
    ]
}

/// Nordstad: a mid-sized town with suburbs and a rural fringe. Meals are visits of their
/// own; showers are done within the morning visit.
fn nordstad() -> Profile {
    let codes = nordstad_codes();
    let contexts = vec![
        numeric("age", 60.0, 110.0),
        boolean("lives_alone"),
        ordinal("cognition", 4),
        ordinal("mobility", 4),
        boolean("interpreter"),
        categorical("area", &["urban", "suburban", "rural"]),
    ];
    // features: (age-80)/10, lives_alone, cognition, mobility, interpreter,
    //           area=suburban, area=rural
    let beta = [
        vec![0.03, 0.00, 0.13, 0.15, 0.20, 0.00, 0.02], // personal_care
        vec![0.04, 0.06, 0.05, 0.05, 0.05, 0.00, 0.04], // service
        vec![0.02, 0.05, 0.15, 0.03, 0.10, 0.00, 0.00], // supervision
        vec![0.00, 0.05, 0.08, 0.08, 0.10, 0.00, 0.00], // other
        vec![0.02, 0.00, 0.06, 0.04, 0.08, 0.08, 0.25], // overhead
    ];
    Profile {
        municipality: Municipality::Nordstad,
        id_prefix: "NS",
        codes,
        contexts,
        beta,
        overhead_min: [3.5, 3.0, 3.0, 3.0, 2.0],
        staff2_extra_min: 3.0,
        savings: vec![
            ("SHOWER", "MORNING_CARE", 5.0),
            ("DRESSING", "MORNING_CARE", 2.0),
            ("DRESSING", "EVENING_CARE", 1.5),
            ("TOILET", "MIDDAY_CARE", 2.0),
            ("MEDICATION", "MORNING_CARE", 1.5),
            ("MEDICATION", "EVENING_CARE", 1.5),
            ("COMPRESSION", "DRESSING", 1.5),
            ("BED_MAKING", "MORNING_CARE", 1.5),
            ("INCONTINENCE", "TOILET", 2.0),
            ("SKIN_CARE", "SHOWER", 3.0),
        ],
        population: PopulationSpec {
            age_beta: (3.2, 3.0),
            lives_alone_p: 0.60,
            area_shares: &[0.45, 0.35, 0.20],
            language_p: &[0.11, 0.07, 0.03],
            rural_areas: &[2],
            cognition_cuts: &[0.25, 1.0, 1.7],
            mobility_cuts: &[-0.35, 0.45, 1.25],
            staff2_p_top: 0.8,
            teams_per_area: &[6, 4, 2],
        },
    }
}

#[rustfmt::skip]
fn sjobygd_codes() -> Vec<CodeSpec> {
    use Category::{Other, PersonalCare as Pc, Service, Supervision};
    use Role as R;
    vec![
        code("MORNING_HELP", "Morgoninsats", Pc, 25.0, 7.0, &[Morning], true, R::MorningCare),
        code("MIDDAY_HELP", "Lunchinsats", Pc, 20.0, 5.0, &[Midday], true, R::MiddayCare),
        code("EVENING_HELP", "Kvällsinsats", Pc, 25.0, 7.0, &[Evening], true, R::EveningCare),
        code("HYGIENE", "Personlig hygien", Pc, 15.0, 5.0, &[Morning, Evening], true, R::Hygiene),
        code("SHOWER", "Dusch", Pc, 20.0, 22.0, &[Midday, Afternoon], false, R::Shower),
        code("DRESSING", "Av- och påklädning", Pc, 10.0, 3.0, &[Morning, Evening], true, R::Dressing),
        code("TOILET", "Toalettstöd", Pc, 10.0, 4.0, &[Midday, Evening, Morning], true, R::Toilet),
        code("TRANSFER", "Förflyttning med lyft", Pc, 15.0, 2.5, &[Morning, Evening, Midday], true, R::Transfer),
        code("INCONTINENCE", "Inkontinensvård", Pc, 10.0, 3.5, &[Morning, Evening, Night], true, R::Incontinence),
        code("EATING_SUPPORT", "Matning", Pc, 25.0, 12.0, &[Midday, Evening], true, R::EatingSupport),
        code("MEDICATION", "Läkemedel", Supervision, 5.0, 2.5, &[Morning, Midday, Evening, Night], true, R::Medication),
        code("SAFETY_VISIT", "Trygghetsbesök", Supervision, 15.0, 5.0, &[Afternoon, Evening, Midday], false, R::Tillsyn),
        code("NIGHT_PATROL", "Nattpatrull", Supervision, 10.0, 4.0, &[Night], false, R::NightCheck),
        code("MEAL", "Måltid", Service, 15.0, 6.0, &[Midday, Evening], true, R::MealPrep),
        code("MEAL_BOX", "Matlåda", Service, 20.0, 5.0, &[Midday], false, R::MealDelivery),
        code("DISHES", "Disk", Service, 10.0, 5.0, &[Evening], true, R::Dishes),
        code("BED_MAKING", "Bäddning", Service, 5.0, 3.0, &[Morning], true, R::BedMaking),
        code("WASTE", "Sophantering", Service, 5.0, 3.0, &[Evening], true, R::Waste),
        code("FIREWOOD", "Vedbärning", Service, 10.0, 8.0, &[Midday], true, R::Firewood),
        code("CLEANING", "Städning", Service, 96.0, 55.0, &[Afternoon], false, R::Cleaning),
        code("LAUNDRY", "Tvätt", Service, 86.0, 35.0, &[Afternoon], false, R::Laundry),
        code("SHOPPING", "Inköp", Service, 60.0, 34.0, &[Midday], false, R::Shopping),
        code("ERRAND", "Ärenden (apotek, post, bank)", Service, 45.0, 28.0, &[Afternoon], false, R::Errand),
        code("WALK", "Utevistelse", Other, 45.0, 32.0, &[Afternoon], false, R::Walk),
        code("SOCIAL", "Samvaro", Other, 30.0, 27.0, &[Afternoon], false, R::Social),
        code("ESCORT", "Ledsagning", Other, 60.0, 55.0, &[Midday], false, R::Escort),
    ]
}

/// Sjöbygd: a sparsely populated lake and forest municipality. Showers are a midday visit
/// of their own, meals are served within the midday and evening help, and the districts
/// far from the centre add overhead (lock boxes, long walks from the car, boats).
fn sjobygd() -> Profile {
    let codes = sjobygd_codes();
    let contexts = vec![
        numeric("age", 60.0, 110.0),
        boolean("lives_alone"),
        ordinal("cognition", 5),
        ordinal("mobility", 3),
        boolean("language_support"),
        categorical(
            "district",
            &["centralort", "kyrkby", "skogsbygd", "skargard"],
        ),
    ];
    // features: (age-80)/10, lives_alone, cognition, mobility, language_support,
    //           district=kyrkby, district=skogsbygd, district=skargard
    let beta = [
        vec![0.02, 0.00, 0.10, 0.22, 0.18, 0.00, 0.03, 0.03], // personal_care
        vec![0.03, 0.08, 0.04, 0.06, 0.04, 0.02, 0.06, 0.08], // service
        vec![0.01, 0.06, 0.12, 0.02, 0.12, 0.00, 0.00, 0.00], // supervision
        vec![0.00, 0.04, 0.06, 0.05, 0.10, 0.00, 0.00, 0.00], // other
        vec![0.01, 0.00, 0.05, 0.03, 0.06, 0.10, 0.30, 0.45], // overhead
    ];
    Profile {
        municipality: Municipality::Sjobygd,
        id_prefix: "SB",
        codes,
        contexts,
        beta,
        overhead_min: [4.0, 3.5, 3.0, 3.5, 2.5],
        staff2_extra_min: 4.0,
        savings: vec![
            ("MORNING_HELP", "DRESSING", 2.0),
            ("MORNING_HELP", "HYGIENE", 4.0),
            ("EVENING_HELP", "DRESSING", 1.5),
            ("EVENING_HELP", "HYGIENE", 3.0),
            ("MIDDAY_HELP", "MEAL", 3.0),
            ("MEAL", "EATING_SUPPORT", 4.0),
            ("MEDICATION", "MIDDAY_HELP", 1.0),
            ("TRANSFER", "TOILET", 1.5),
        ],
        population: PopulationSpec {
            age_beta: (3.4, 2.9),
            lives_alone_p: 0.55,
            area_shares: &[0.40, 0.25, 0.20, 0.15],
            language_p: &[0.05, 0.03, 0.02, 0.02],
            rural_areas: &[2, 3],
            cognition_cuts: &[0.25, 0.9, 1.45, 2.0],
            mobility_cuts: &[-0.2, 0.9],
            staff2_p_top: 0.45,
            teams_per_area: &[3, 3, 2, 2],
        },
    }
}

/// Markdown rows of the code table in `training/SIMULATION.md` (a test keeps them equal).
#[cfg(test)]
pub(crate) fn code_table_rows(p: &Profile) -> Vec<String> {
    p.codes
        .iter()
        .map(|c| {
            let slots: Vec<&str> = c.slots.iter().map(|s| s.as_str()).collect();
            format!(
                "| `{}` | {} | {} | {} | {} | {} | {} |",
                c.code,
                c.name,
                c.category.as_str(),
                c.schablon_min,
                c.base_min,
                slots.join(", "),
                if c.joins { "joins" } else { "own visit" }
            )
        })
        .collect()
}

/// Markdown rows of the β table in `training/SIMULATION.md` (a test keeps them equal).
#[cfg(test)]
pub(crate) fn beta_table_rows(p: &Profile) -> Vec<String> {
    let mut out = vec![format!("| feature | {} |", BETA_ROWS.join(" | "))];
    out.push(format!("|---{}|", "|---:".repeat(BETA_ROWS.len())));
    for (k, f) in p.features().iter().enumerate() {
        let cells: Vec<String> = p.beta.iter().map(|row| format!("{:+.2}", row[k])).collect();
        out.push(format!("| `{f}` | {} |", cells.join(" | ")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_are_consistent() {
        for m in [Municipality::Nordstad, Municipality::Sjobygd] {
            let p = profile(m);
            assert!(
                (25..=35).contains(&p.codes.len()),
                "{m}: {} codes",
                p.codes.len()
            );
            let nf = p.features().len();
            for row in &p.beta {
                assert_eq!(row.len(), nf, "{m}");
            }
            assert_eq!(p.contexts.len(), 6);
            assert_eq!(
                p.contexts[CTX_AREA].labels.len(),
                p.population.area_shares.len()
            );
            assert_eq!(
                p.population.language_p.len(),
                p.population.area_shares.len()
            );
            assert_eq!(
                p.population.teams_per_area.len(),
                p.population.area_shares.len()
            );
            let teams: usize = p.population.teams_per_area.iter().sum();
            assert!((8..=16).contains(&teams));
            assert_eq!(
                p.contexts[CTX_COGNITION].ordinal_levels.len(),
                p.population.cognition_cuts.len() + 1
            );
            assert_eq!(
                p.contexts[CTX_MOBILITY].ordinal_levels.len(),
                p.population.mobility_cuts.len() + 1
            );
            for (a, b, s) in &p.savings {
                let (a, b) = (p.code_index(a), p.code_index(b));
                assert!(*s < p.codes[a].base_min.max(p.codes[b].base_min));
            }
            for c in &p.codes {
                assert!(!c.slots.is_empty() && c.base_min > 0.0 && c.schablon_min > 0.0);
                assert_eq!(
                    p.codes.iter().filter(|o| o.role == c.role).count(),
                    1,
                    "{m}: role {:?} twice",
                    c.role
                );
            }
            assert!(p.catalog().contexts.iter().all(|c| c.name != "slot"));
        }
    }
}
