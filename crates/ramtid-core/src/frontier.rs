//! The best-practice frontier: which pace counts as *efficient*.
//!
//! The fit ([`crate::fit`]) estimates a pace θ for every *performance cell*: a team on
//! weekdays, and the same team at weekends (weekend and substitute staffing is slower in
//! most municipalities, and it is how the visit is performed, not what the person needs).
//! This module turns those paces into one efficient level, the way productivity analysis
//! benchmarks units against best practice rather than against the average:
//!
//! 1. **Comparable teams only.** A team is a candidate when its weekday cell has enough
//!    visits and most of its visits are in slots that other teams also serve (a night
//!    patrol that alone performs every night visit cannot be told apart from the night
//!    slot's own time, so its pace is not evidence of best practice).
//! 2. **Pace with its uncertainty.** Each cell's standard error is cluster-robust by
//!    recipient (a team's visits to one person are not independent), and paces are shrunk
//!    towards the candidates' median by empirical Bayes, so a team with few visits cannot
//!    set the frontier by luck.
//! 3. **Implausibly fast teams are not copied.** The fastest candidate is set aside when its
//!    lead over the next one is larger than `implausible_gap` and larger than twice the
//!    typical spacing of the following teams (a super-efficiency test in the spirit of
//!    Banker & Chang 2006, for DEA outliers). At most one team is set aside: a second lead
//!    that large is more likely a real gap between paces. Such a team is reported, not used.
//! 4. **The frontier** is the precision-weighted pace of the fastest remaining candidate and
//!    every candidate indistinguishable from it (within 1.5 combined standard errors), with
//!    an interval.
//!
//! Beside the chosen level, [`what_if`] gives the municipality's hours per week under the
//! other definitions (the fastest team whatever it is, the fastest 10/25/50 % of visits, the
//! plain mean): "efficient" is a policy choice, and its price is shown.

use serde::{Deserialize, Serialize};

/// Whether a day number (days since 1970-01-01, a Thursday) is a Saturday or Sunday.
pub fn is_weekend(day: i32) -> bool {
    matches!(day.rem_euclid(7), 2 | 3)
}

/// How visits are split into performance cells: per team, and per weekday/weekend when
/// `weekend_apart`.
#[derive(Debug, Clone, Copy)]
pub struct Cells {
    pub units: usize,
    pub weekend_apart: bool,
}

impl Cells {
    pub fn count(&self) -> usize {
        self.units.max(1) * if self.weekend_apart { 2 } else { 1 }
    }

    pub fn of(&self, unit: u32, day: i32) -> usize {
        if self.weekend_apart {
            unit as usize * 2 + usize::from(is_weekend(day))
        } else {
            unit as usize
        }
    }

    /// The weekday cell of a unit (the only cell when weekends are not apart).
    pub fn weekday(&self, unit: usize) -> usize {
        if self.weekend_apart {
            unit * 2
        } else {
            unit
        }
    }

    pub fn weekend(&self, unit: usize) -> Option<usize> {
        self.weekend_apart.then_some(unit * 2 + 1)
    }
}

/// What the frontier needs to know about one performance cell.
#[derive(Debug, Clone, Default)]
pub struct CellEvidence {
    /// Pace, relative to the visit-weighted mean of all cells.
    pub theta: f64,
    /// Its standard error (cluster-robust by recipient).
    pub se: f64,
    pub visits: u64,
    pub recipients: u64,
    /// Share of the cell's visits in slots that other units also serve.
    pub overlap: f64,
}

/// Why a team is or is not part of the frontier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Sets the efficient level.
    Frontier,
    /// A candidate slower than the frontier.
    Benchmarked,
    /// Faster than the frontier by an implausible margin: reported, not copied.
    ImplausiblyFast,
    /// Too few weekday visits to judge.
    FewVisits,
    /// Serves mostly slots no other team serves (e.g. a night patrol): its pace cannot be
    /// told apart from those slots' own time.
    NotComparable,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Frontier => "frontier",
            Role::Benchmarked => "benchmarked",
            Role::ImplausiblyFast => "implausibly_fast",
            Role::FewVisits => "few_visits",
            Role::NotComparable => "not_comparable",
        }
    }
}

/// The efficient level chosen from the cells.
#[derive(Debug, Clone)]
pub struct Choice {
    /// (cell, weight): the cells whose precision-weighted pace is the level.
    pub members: Vec<(usize, f64)>,
    /// The level, on the θ scale.
    pub level: f64,
    pub level_se: f64,
    /// Per unit.
    pub roles: Vec<Role>,
    /// Share of the level from the reading that keeps the fastest team (1 when its lead is
    /// plausible, 0 when it is set aside, between where its lead is ambiguous).
    pub fastest_share: f64,
    /// The fastest team, when its lead was weighed against it at all (`fastest_share` < 1).
    pub judged: Option<usize>,
}

impl Choice {
    /// The same members' weighted pace under another solution's θ (a fold's).
    pub fn level_of(&self, theta: &[f64]) -> f64 {
        let w: f64 = self.members.iter().map(|m| m.1).sum();
        self.members.iter().map(|&(c, m)| theta[c] * m).sum::<f64>() / w
    }
}

/// Settings of the frontier (checked in [`crate::params`]).
#[derive(Debug, Clone, Copy)]
pub struct FrontierRules {
    pub min_team_visits: u64,
    pub implausible_gap: f64,
    /// Least share of a team's visits in slots others serve, to be a candidate.
    pub min_overlap: f64,
}

fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    }
}

/// Teams within this share of the fastest are as efficient as it: case-mix adjustment
/// cannot resolve smaller differences where teams and areas are partly confounded (teams
/// serve mostly their own area), whatever the standard errors say. Measured: in `sjobygd`
/// seven teams at the same true pace are estimated 0.99–1.03 (their standard errors are
/// 0.6 %), and in random worlds honest teams within 0.3 % of each other in truth come out
/// up to 5 % apart. A 2 % band took the four luckiest of sjobygd's seven (bias −1.2 %); at
/// 3 % it is −0.8 %. Chosen on random worlds with seeds 101–140: 3 % left every summary
/// figure as at 2 %, 4 % raised the median |bias| from 2.4 % to 2.6 %.
pub const FRONTIER_BAND: f64 = 0.03;

/// Chooses the frontier among the units' weekday cells.
pub fn choose(cells: &Cells, evidence: &[CellEvidence], rules: &FrontierRules) -> Choice {
    let units = cells.units.max(1);
    let mut roles = vec![Role::FewVisits; units];
    let mut candidates: Vec<usize> = Vec::new();
    for (u, role) in roles.iter_mut().enumerate() {
        let e = &evidence[cells.weekday(u)];
        if e.visits < rules.min_team_visits || !(e.theta.is_finite() && e.theta > 0.0) {
            *role = Role::FewVisits;
        } else if e.overlap < rules.min_overlap {
            *role = Role::NotComparable;
        } else {
            *role = Role::Benchmarked;
            candidates.push(u);
        }
    }
    if candidates.is_empty() {
        // Nothing to benchmark against: the visit-weighted level of every weekday cell.
        let members: Vec<(usize, f64)> = (0..units)
            .map(|u| cells.weekday(u))
            .filter(|&c| evidence[c].visits > 0)
            .map(|c| (c, evidence[c].visits as f64))
            .collect();
        let members = if members.is_empty() {
            vec![(0, 1.0)]
        } else {
            members
        };
        let w: f64 = members.iter().map(|m| m.1).sum();
        let level = members
            .iter()
            .map(|&(c, m)| evidence[c].theta * m)
            .sum::<f64>()
            / w;
        return Choice {
            members,
            level: if level.is_finite() && level > 0.0 {
                level
            } else {
                1.0
            },
            level_se: f64::NAN,
            roles,
            fastest_share: 1.0,
            judged: None,
        };
    }

    // Empirical Bayes: shrink each pace towards the candidates' median by its precision
    // against the spread between teams (method of moments on a robust spread).
    let theta = |u: usize| evidence[cells.weekday(u)].theta;
    let se = |u: usize| evidence[cells.weekday(u)].se.max(1e-6);
    let m = median(&mut candidates.iter().map(|&u| theta(u)).collect::<Vec<_>>());
    let mad = median(
        &mut candidates
            .iter()
            .map(|&u| (theta(u) - m).abs())
            .collect::<Vec<_>>(),
    ) * 1.4826;
    let noise = median(
        &mut candidates
            .iter()
            .map(|&u| se(u).powi(2))
            .collect::<Vec<_>>(),
    );
    let tau2 = (mad * mad - noise).max(1e-6);
    let shrunk = |u: usize| {
        let s2 = se(u).powi(2);
        m + tau2 / (tau2 + s2) * (theta(u) - m)
    };
    let mut order: Vec<(usize, f64)> = candidates.iter().map(|&u| (u, shrunk(u))).collect();
    order.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));

    // Super-efficiency: how implausible the fastest team's lead is. Only one team is judged:
    // a second team far ahead of the rest is more likely a real gap in the paces than a
    // second team cutting corners, and setting aside the true best practice costs more.
    let mut set_aside = 0.0;
    if order.len() >= 3 {
        let t: Vec<f64> = order.iter().map(|o| o.1).collect();
        let lead = t[1] / t[0] - 1.0;
        let mut spacing: Vec<f64> = (1..t.len().min(5) - 1)
            .map(|k| t[k + 1] / t[k] - 1.0)
            .collect();
        let spacing = median(&mut spacing);
        let (u0, u1) = (order[0].0, order[1].0);
        let combined = (se(u0).powi(2) + se(u1).powi(2)).sqrt() / t[0];
        let threshold = rules.implausible_gap.max(2.0 * spacing).max(2.0 * combined);
        set_aside = set_aside_weight(lead / threshold);
        if set_aside >= 0.5 {
            roles[u0] = Role::ImplausiblyFast;
        }
    }

    // The frontier: the fastest candidate and those indistinguishable from it; and, where
    // the fastest one's lead is implausible, the same without it. The two are weighted by
    // how implausible that lead is.
    let frontier_from = |first: usize| -> (Vec<(usize, f64)>, f64, f64) {
        let (u0, t0) = order[first];
        let members: Vec<(usize, f64)> = order[first..]
            .iter()
            .filter(|&&(u, t)| {
                let band = (1.5 * (se(u).powi(2) + se(u0).powi(2)).sqrt()).max(FRONTIER_BAND * t0);
                u == u0 || t - t0 <= band
            })
            .map(|&(u, _)| (u, 1.0 / se(u).powi(2)))
            .collect();
        let w: f64 = members.iter().map(|m| m.1).sum();
        let level = members.iter().map(|&(u, m)| theta(u) * m).sum::<f64>() / w;
        (members, level, w)
    };
    let readings = if set_aside > 0.0 {
        vec![
            (frontier_from(0), 1.0 - set_aside),
            (frontier_from(1), set_aside),
        ]
    } else {
        vec![(frontier_from(0), 1.0)]
    };
    let (mut level, mut level_var) = (0.0, 0.0);
    let mut members: Vec<(usize, f64)> = Vec::new();
    for ((part, part_level, w), share) in &readings {
        if *share <= 0.0 {
            continue;
        }
        level += share * part_level;
        level_var += share * share / w;
        for &(u, m) in part {
            if roles[u] != Role::ImplausiblyFast {
                roles[u] = Role::Frontier;
            }
            let c = cells.weekday(u);
            match members.iter_mut().find(|x| x.0 == c) {
                Some(x) => x.1 += share * m / w,
                None => members.push((c, share * m / w)),
            }
        }
    }
    // Where the two readings disagree, the level is uncertain by their difference as well.
    if let [(a, _), (b, _)] = readings.as_slice() {
        level_var += set_aside * (1.0 - set_aside) * (b.1 - a.1).powi(2);
    }
    Choice {
        members,
        level,
        level_se: level_var.sqrt(),
        roles,
        fastest_share: 1.0 - set_aside,
        judged: (set_aside > 0.0).then_some(order[0].0),
    }
}

/// Where a lead over the threshold of plausibility (`z = lead / threshold`) starts and stops
/// being ambiguous. Chosen on random worlds with seeds 101–140 (not the README's 1–20, which
/// report it): against the hard threshold (set aside above z = 1) the worst world's bias
/// fell from 12.5 % to 9.9 % and the worst MAPE ratio from 1.55× to 1.41×, the median |bias|
/// unchanged at 2.3 %; [0.5, 1.5], [0.75, 1.25], [0.8, 1.2] and [1, 2] were each worse on
/// the median or the worst.
const AMBIGUOUS_FROM: f64 = 0.75;
const AMBIGUOUS_TO: f64 = 1.5;

/// Share of the level taken from the frontier *without* the fastest team, given its lead
/// over the threshold of plausibility (`z = lead / threshold`). A team cutting corners and a
/// team that really is ahead look the same in the log; a hard threshold copies the first or
/// discards the second wholesale, and either costs the full lead in the level. In the
/// ambiguous band the two readings are weighed (minimax: the level errs by a part of the
/// lead whichever it is), and the answer names the team to check.
pub fn set_aside_weight(z: f64) -> f64 {
    if z.is_finite() {
        ((z - AMBIGUOUS_FROM) / (AMBIGUOUS_TO - AMBIGUOUS_FROM)).clamp(0.0, 1.0)
    } else {
        0.0
    }
}

/// One line of the what-if table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WhatIf {
    /// `frontier` (the chosen default), `best_team`, `fastest_10`, `fastest_25`,
    /// `fastest_50`, `mean`.
    pub definition: String,
    pub description: String,
    /// The level relative to the frontier (1.10 = 10 % more time than best practice).
    pub relative: f64,
    /// The municipality's hours per week for the log's visits at this level.
    pub hours_per_week: f64,
}

/// Level of the fastest cells that together performed `quantile` of the visits.
pub fn fastest_share_level(theta: &[f64], visits: &[u64], quantile: f64) -> f64 {
    let total: u64 = visits.iter().sum();
    let mut order: Vec<usize> = (0..theta.len()).filter(|&k| visits[k] > 0).collect();
    order.sort_by(|&a, &b| theta[a].total_cmp(&theta[b]));
    let (mut covered, mut weighted) = (0.0, 0.0);
    let target = quantile * total as f64;
    for k in order {
        if covered >= target {
            break;
        }
        let take = (visits[k] as f64).min(target - covered);
        covered += take;
        weighted += theta[k] * take;
    }
    if covered > 0.0 {
        weighted / covered
    } else {
        1.0
    }
}

/// What the log's visits would take per week under each definition of efficient.
/// `model_minutes` is the visits' total at θ = 1; `logged_minutes` what was logged. The
/// team definitions rank comparable units only: a unit alone in its slots has no pace of
/// its own to rank (the fit holds it at the frontier's).
pub fn what_if(
    cells: &Cells,
    choice: &Choice,
    evidence: &[CellEvidence],
    model_minutes: f64,
    logged_minutes: f64,
    weeks: f64,
) -> Vec<WhatIf> {
    let comparable = |c: usize| {
        let unit = if cells.weekend_apart { c / 2 } else { c };
        choice.roles.get(unit) != Some(&Role::NotComparable)
    };
    let theta: Vec<f64> = evidence.iter().map(|e| e.theta).collect();
    let visits: Vec<u64> = (0..evidence.len())
        .map(|c| if comparable(c) { evidence[c].visits } else { 0 })
        .collect();
    let weeks = weeks.max(1.0 / 7.0);
    let hours = |level: f64| model_minutes * level / weeks / 60.0;
    let best_team = (0..evidence.len())
        .filter(|&c| visits[c] > 0 && theta[c].is_finite())
        .map(|c| theta[c])
        .fold(f64::INFINITY, f64::min);
    let mut out = vec![WhatIf {
        definition: "frontier".into(),
        description: "best practice: the fastest comparable teams, implausibly fast ones set aside (the default)".into(),
        relative: 1.0,
        hours_per_week: hours(choice.level),
    }];
    if best_team.is_finite() {
        out.push(WhatIf {
            definition: "best_team".into(),
            description: "the single fastest team or weekend cell, whatever it is".into(),
            relative: best_team / choice.level,
            hours_per_week: hours(best_team),
        });
    }
    for (q, name) in [
        (0.10, "fastest_10"),
        (0.25, "fastest_25"),
        (0.50, "fastest_50"),
    ] {
        let level = fastest_share_level(&theta, &visits, q);
        out.push(WhatIf {
            definition: name.into(),
            description: format!(
                "the pace of the fastest teams that performed {:.0} % of the visits",
                q * 100.0
            ),
            relative: level / choice.level,
            hours_per_week: hours(level),
        });
    }
    out.push(WhatIf {
        definition: "mean".into(),
        description: "the plain mean of the cleaned log (no team adjustment)".into(),
        relative: logged_minutes / (model_minutes * choice.level).max(1e-9),
        hours_per_week: logged_minutes / weeks / 60.0,
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(theta: f64, se: f64) -> CellEvidence {
        CellEvidence {
            theta,
            se,
            visits: 5000,
            recipients: 100,
            overlap: 1.0,
        }
    }

    const RULES: FrontierRules = FrontierRules {
        min_team_visits: 50,
        implausible_gap: 0.06,
        min_overlap: 0.5,
    };

    fn day_cells(units: usize) -> Cells {
        Cells {
            units,
            weekend_apart: false,
        }
    }

    #[test]
    fn weekends_are_saturday_and_sunday() {
        let monday = crate::visits::time::days_from_civil(2025, 3, 3);
        assert!(!is_weekend(monday));
        assert!(!is_weekend(monday + 4));
        assert!(is_weekend(monday + 5));
        assert!(is_weekend(monday + 6));
        assert!(!is_weekend(monday + 7));
        assert!(is_weekend(-5), "1969-12-27 was a Saturday");
    }

    #[test]
    fn the_fastest_team_sets_the_frontier_not_the_median() {
        let e: Vec<_> = [1.30, 1.0, 1.12, 1.2, 1.05, 1.4]
            .iter()
            .map(|&t| ev(t, 0.005))
            .collect();
        let c = choose(&day_cells(6), &e, &RULES);
        assert!((c.level - 1.0).abs() < 1e-3, "{}", c.level);
        assert_eq!(c.roles[1], Role::Frontier);
        assert_eq!(c.judged, None);
        assert!(c.roles.iter().filter(|r| **r == Role::Frontier).count() == 1);
    }

    #[test]
    fn an_implausibly_fast_team_is_set_aside() {
        // 0.85 leads the next (1.0) by 18 %, where the others are spaced 2-4 %.
        let e: Vec<_> = [1.0, 0.85, 1.04, 1.07, 1.09, 1.12, 1.15]
            .iter()
            .map(|&t| ev(t, 0.005))
            .collect();
        let c = choose(&day_cells(7), &e, &RULES);
        assert_eq!(c.roles[1], Role::ImplausiblyFast);
        assert_eq!(c.roles[0], Role::Frontier);
        assert!((c.level - 1.0).abs() < 1e-3, "{}", c.level);
    }

    #[test]
    fn an_ambiguous_lead_is_weighed_not_copied_or_discarded() {
        // 0.93 leads 1.0 by 7.5 %: 1.25 times the 6 % threshold (the others are spaced 2 %),
        // inside the band where cut corners and a real lead cannot be told apart.
        let e: Vec<_> = [1.0, 0.93, 1.02, 1.0404, 1.0612, 1.0824]
            .iter()
            .map(|&t| ev(t, 0.001))
            .collect();
        let c = choose(&day_cells(6), &e, &RULES);
        let z = (1.0 / 0.93 - 1.0) / 0.06;
        let w = set_aside_weight(z);
        assert!(w > 0.5 && w < 1.0, "{w}");
        // (The paces are shrunk a little towards the median before the lead is measured.)
        assert!(
            (c.fastest_share - (1.0 - w)).abs() < 0.02,
            "{} vs {}",
            c.fastest_share,
            1.0 - w
        );
        // Without the fastest, the frontier is 1.0 and 1.02 (within the 3 % band of it).
        let without = (1.0 + 1.02) / 2.0;
        let expected = c.fastest_share * 0.93 + (1.0 - c.fastest_share) * without;
        assert!(
            (c.level - expected).abs() < 2e-3,
            "{} vs {expected}",
            c.level
        );
        assert_eq!(c.roles[1], Role::ImplausiblyFast);
        assert_eq!(c.judged, Some(1));
        // The level's uncertainty carries the two readings' disagreement.
        assert!(c.level_se > 0.02, "{}", c.level_se);
        // Ends of the band: copied below it, set aside wholly above it.
        assert_eq!(set_aside_weight(AMBIGUOUS_FROM), 0.0);
        assert_eq!(set_aside_weight(AMBIGUOUS_TO), 1.0);
        assert_eq!(set_aside_weight(f64::NAN), 0.0);
    }

    #[test]
    fn teams_within_noise_of_the_fastest_share_the_frontier() {
        // Several teams at the same pace, estimated with noise: pooled, not the luckiest.
        let e: Vec<_> = [0.995, 1.004, 1.001, 1.25, 1.3]
            .iter()
            .map(|&t| ev(t, 0.006))
            .collect();
        let c = choose(&day_cells(5), &e, &RULES);
        assert_eq!(c.members.len(), 3);
        assert!((c.level - 1.0).abs() < 0.002, "{}", c.level);
    }

    #[test]
    fn teams_apart_by_less_than_case_mix_can_resolve_share_the_frontier() {
        // sjobygd's shape: seven teams of one true pace, estimated 0.99-1.03 with standard
        // errors of 0.6 % (case mix and area, not sampling), and three slow teams. Taking
        // only the fastest few would put the level below the teams' common pace.
        let paces = [
            0.992, 0.999, 1.003, 1.008, 1.022, 1.025, 1.030, 1.29, 1.32, 1.45,
        ];
        let e: Vec<_> = paces.iter().map(|&t| ev(t, 0.006)).collect();
        let c = choose(&day_cells(10), &e, &RULES);
        let members = c.roles.iter().filter(|r| **r == Role::Frontier).count();
        // (A 2 % band took the first four.)
        assert!(members >= 5, "{:?}", c.roles);
        assert_eq!(c.roles[6], Role::Benchmarked, "1.030 is 3.8 % behind 0.992");
        assert!(c.level > 1.003 && c.level < 1.012, "{}", c.level);
    }

    #[test]
    fn a_small_team_cannot_set_the_frontier_by_luck() {
        // 0.9 on 60 visits with a wide standard error is shrunk to the others.
        let mut e: Vec<_> = [1.0, 1.05, 1.1, 1.15, 1.2]
            .iter()
            .map(|&t| ev(t, 0.005))
            .collect();
        e.push(CellEvidence {
            theta: 0.9,
            se: 0.15,
            visits: 60,
            recipients: 3,
            overlap: 1.0,
        });
        let c = choose(&day_cells(6), &e, &RULES);
        assert!(c.level > 0.97, "{}", c.level);
    }

    #[test]
    fn a_unit_alone_in_its_slots_is_not_comparable() {
        let mut e: Vec<_> = [1.0, 1.1, 1.2].iter().map(|&t| ev(t, 0.005)).collect();
        e.push(CellEvidence {
            overlap: 0.0,
            ..ev(0.7, 0.005)
        });
        let c = choose(&day_cells(4), &e, &RULES);
        assert_eq!(c.roles[3], Role::NotComparable);
        assert!((c.level - 1.0).abs() < 1e-3);
    }

    #[test]
    fn what_if_prices_every_definition() {
        let e: Vec<_> = [1.0, 1.2, 1.4].iter().map(|&t| ev(t, 0.005)).collect();
        let c = choose(&day_cells(3), &e, &RULES);
        // 6000 model minutes at θ = 1 over 1 week: 100 h at the frontier.
        let w = what_if(&day_cells(3), &c, &e, 6000.0, 7200.0, 1.0);
        let get = |d: &str| w.iter().find(|x| x.definition == d).unwrap().clone();
        assert!((get("frontier").hours_per_week - 100.0).abs() < 1e-6);
        assert!((get("fastest_50").relative - (5000.0 + 2500.0 * 1.2) / 7500.0).abs() < 1e-9);
        assert!((get("mean").hours_per_week - 120.0).abs() < 1e-9);
    }

    #[test]
    fn what_if_ranks_comparable_units_only() {
        // A night patrol alone in its slots, at whatever pace the fit gave it, is neither
        // the best team nor among the fastest.
        let mut e: Vec<_> = [1.0, 1.2, 1.4].iter().map(|&t| ev(t, 0.005)).collect();
        e.push(CellEvidence {
            overlap: 0.0,
            ..ev(0.7, 0.005)
        });
        let c = choose(&day_cells(4), &e, &RULES);
        let w = what_if(&day_cells(4), &c, &e, 6000.0, 7200.0, 1.0);
        let get = |d: &str| w.iter().find(|x| x.definition == d).unwrap().clone();
        assert!((get("best_team").relative - 1.0).abs() < 1e-9);
        assert!((get("fastest_50").relative - (5000.0 + 2500.0 * 1.2) / 7500.0).abs() < 1e-9);
    }
}
