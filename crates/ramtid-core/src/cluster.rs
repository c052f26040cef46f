//! Broad codes: `[[cluster]]` sections of the catalog, the mix of their members that a
//! visit log shows, and estimating orders written in broad codes.
//!
//! A cluster groups insats codes of one category under a code of its own:
//!
//! ```toml
//! [[cluster]]
//! code = "PC_MORNING"
//! name = "Morning personal care"     # optional, defaults to the code
//! members = ["MORNING_CARE", "DRESSING", "SHOWER"]
//! schablon_min = 25                  # optional: minutes per occasion of the broad code
//! ```
//!
//! Checked when the catalog loads (errors name the row, `cluster #2 (PC_MORNING)`): every
//! member is an insats code of the catalog, no member is in two clusters nor twice in one,
//! the cluster code is not an insats code nor another cluster's, a cluster has at least one
//! member, and all members share one category (mixed categories are refused: a broad code
//! spanning personal care and service has no single category for the planner, the
//! follow-up or the payment, and FSIII-style catalogs group within a category).
//!
//! **Frequency of a broad code.** An order's `per_week` for a cluster counts occasions of its
//! members, as the detailed codes would: a morning with care and dressing is two occasions.
//! At estimate time the need becomes its members at `per_week × share`, with the shares the
//! model learnt from the log (see [`ClusterMix`] and `training/METHOD.md`), and is planned
//! and predicted as detailed needs are.

use crate::catalog::{Catalog, Category, ContextKind};
use crate::estimate::{estimate_with, Detail, Estimate, NeedEstimate};
use crate::model::Model;
use crate::needs::{FieldViolation, Need, NeedsError, NeedsSet, ValidNeed, ValidNeeds};
use crate::slot::Slot;
use crate::visits::VisitTable;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// One broad code.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cluster {
    pub code: String,
    pub name: String,
    /// Insats codes, in the order the catalog lists them in the cluster.
    pub members: Vec<String>,
    /// Minutes per occasion of the broad code, where the municipality sets one. Without it
    /// the broad code's schablon is its members' schablons weighted by the mix.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schablon_min: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCluster {
    code: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    members: Vec<String>,
    #[serde(default)]
    schablon_min: Option<f64>,
}

/// The catalog hook: `[[cluster]]` tables as read from TOML.
pub(crate) fn from_raw(raw: Vec<RawCluster>) -> Vec<Cluster> {
    raw.into_iter()
        .map(|r| {
            let code = r.code.trim().to_string();
            Cluster {
                name: r.name.unwrap_or_else(|| code.clone()),
                code,
                members: r
                    .members
                    .into_iter()
                    .map(|m| m.trim().to_string())
                    .collect(),
                schablon_min: r.schablon_min,
            }
        })
        .collect()
}

/// The catalog hook: every check on the clusters (see the module's documentation). The
/// error is (entry, what is wrong), as [`Catalog::validate`]'s.
pub(crate) fn validate(catalog: &Catalog) -> Result<(), (String, String)> {
    use crate::echo::echo;
    let codes = catalog.code_index();
    let mut cluster_codes: HashMap<&str, usize> = HashMap::new();
    // member code → (cluster number, position in it)
    let mut owner: HashMap<&str, usize> = HashMap::new();
    for (i, c) in catalog.clusters.iter().enumerate() {
        let entry = format!("cluster #{} ({})", i + 1, echo(&c.code));
        let code = c.code.as_str();
        if code.is_empty()
            || code.trim() != code
            || code.contains(['|', ','])
            || code.chars().any(char::is_control)
        {
            return Err((
                entry,
                "code must be non-empty and contain neither '|', ',' nor control characters".into(),
            ));
        }
        if c.name.chars().any(char::is_control) {
            return Err((entry, "name must not contain control characters".into()));
        }
        if let Some(&k) = codes.get(code) {
            return Err((
                entry,
                format!(
                    "code '{}' is also an insats code (insats #{}); a broad code needs a code of its own",
                    echo(code),
                    k + 1
                ),
            ));
        }
        if let Some(first) = cluster_codes.insert(code, i) {
            return Err((
                entry,
                format!(
                    "code '{}' is defined twice (first as cluster #{})",
                    echo(code),
                    first + 1
                ),
            ));
        }
        if c.members.is_empty() {
            return Err((
                entry,
                "has no members; list at least one insats code".into(),
            ));
        }
        let mut category: Option<(Category, &str)> = None;
        for (k, m) in c.members.iter().enumerate() {
            let Some(&at) = codes.get(m.as_str()) else {
                return Err((
                    entry,
                    format!(
                        "member #{} '{}' is not an insats code of this catalog",
                        k + 1,
                        echo(m)
                    ),
                ));
            };
            if let Some(&other) = owner.get(m.as_str()) {
                let msg = if other == i {
                    format!("member '{}' is listed twice", echo(m))
                } else {
                    format!(
                        "member '{}' is already in cluster #{} ({}); a code belongs to one cluster at most",
                        echo(m),
                        other + 1,
                        echo(&catalog.clusters[other].code)
                    )
                };
                return Err((entry, msg));
            }
            owner.insert(m.as_str(), i);
            let cat = catalog.insatser[at].category;
            match category {
                None => category = Some((cat, m.as_str())),
                Some((first, first_code)) if first != cat => {
                    return Err((
                        entry,
                        format!(
                            "members of different categories: '{}' is {}, '{}' is {}; a cluster's members share one category",
                            echo(first_code),
                            first.as_str(),
                            echo(m),
                            cat.as_str()
                        ),
                    ));
                }
                Some(_) => {}
            }
        }
        if let Some(s) = c.schablon_min {
            if !s.is_finite() || !(0.0..=24.0 * 60.0).contains(&s) {
                return Err((
                    entry,
                    format!("schablon_min {s} must be between 0 and 1440 minutes"),
                ));
            }
        }
    }
    Ok(())
}

/// The catalog hook: `[[cluster]]` tables in the data contract's TOML shape.
pub(crate) fn write_toml(clusters: &[Cluster], out: &mut String) {
    let s = |v: &str| toml::Value::String(v.to_string()).to_string();
    for c in clusters {
        out.push_str(&format!(
            "[[cluster]]\ncode = {}\nname = {}\nmembers = [{}]\n",
            s(&c.code),
            s(&c.name),
            c.members
                .iter()
                .map(|m| s(m))
                .collect::<Vec<_>>()
                .join(", ")
        ));
        if let Some(m) = c.schablon_min {
            out.push_str(&format!("schablon_min = {m}\n"));
        }
        out.push('\n');
    }
}

impl Catalog {
    pub fn cluster_index(&self, code: &str) -> Option<usize> {
        self.clusters.iter().position(|c| c.code == code)
    }

    /// The category of a cluster (its members share one).
    pub fn cluster_category(&self, cluster: usize) -> Category {
        let first = &self.clusters[cluster].members[0];
        self.insatser
            .iter()
            .find(|i| &i.code == first)
            .map(|i| i.category)
            .unwrap_or(Category::Other)
    }
}

/// Pseudo-occasions by which a context level's mix is shrunk toward the cluster's overall
/// mix: a level seen on 50 member occasions is half its own mix, half the overall one.
pub const SHRINK_OCCASIONS: f64 = 50.0;

/// How a cluster's members are used in a training log: shares of member occasions overall
/// and per level of each context variable.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterMix {
    pub code: String,
    pub members: Vec<String>,
    /// Member occasions in the log (visits with the member among their tasks).
    pub occasions: u64,
    /// Shares of member occasions, in member order; sum to 1 (uniform without occasions).
    pub shares: Vec<f64>,
    pub by_context: Vec<ContextMix>,
}

/// A cluster's mix per level of one context variable, shrunk toward the overall mix.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContextMix {
    pub variable: String,
    /// Numeric variables: values at or below this are the first level, above it the second
    /// (the median of the variable over the cluster's occasions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split: Option<f64>,
    pub levels: Vec<LevelMix>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LevelMix {
    /// The level's value (ordinal level, 0/1, label index; numeric: 0 below the split, 1 above).
    pub value: f64,
    pub occasions: u64,
    /// Shrunk shares, in member order; sum to 1.
    pub shares: Vec<f64>,
}

/// The levels a context variable's value falls in, for the mix: numeric values by the split.
fn level_of(kind: ContextKind, split: Option<f64>, x: f64) -> f64 {
    match (kind, split) {
        (ContextKind::Numeric, Some(s)) => {
            if x <= s {
                0.0
            } else {
                1.0
            }
        }
        _ => x,
    }
}

fn normalise(v: &mut [f64]) {
    let total: f64 = v.iter().sum();
    if total > 0.0 && total.is_finite() {
        v.iter_mut().for_each(|x| *x /= total);
    } else {
        let n = v.len().max(1) as f64;
        v.iter_mut().for_each(|x| *x = 1.0 / n);
    }
}

impl ClusterMix {
    /// Learns the mix of every cluster of `catalog` from accepted visits (`table` indexed by
    /// `catalog`'s codes). `keep` selects the visits used (all: `|_| true`).
    pub fn learn(
        table: &VisitTable,
        catalog: &Catalog,
        keep: &dyn Fn(u32) -> bool,
    ) -> Vec<ClusterMix> {
        if catalog.clusters.is_empty() {
            return Vec::new();
        }
        let codes = catalog.code_index();
        // code index → (cluster, member position)
        let mut at = vec![None; catalog.insatser.len()];
        for (ci, c) in catalog.clusters.iter().enumerate() {
            for (k, m) in c.members.iter().enumerate() {
                if let Some(&i) = codes.get(m.as_str()) {
                    at[i] = Some((ci, k));
                }
            }
        }
        let nv = catalog.contexts.len();
        let mut counts: Vec<Vec<u64>> = catalog
            .clusters
            .iter()
            .map(|c| vec![0; c.members.len()])
            .collect();
        // Per cluster, per variable: level value (as bits) → member counts.
        let mut tables: Vec<Vec<HashMap<u64, Vec<u64>>>> =
            vec![vec![HashMap::new(); nv]; catalog.clusters.len()];
        // Numeric variables: the values of each cluster's occasions, for the median.
        let numeric: Vec<usize> = (0..nv)
            .filter(|&v| catalog.contexts[v].kind == ContextKind::Numeric)
            .collect();
        let mut values: Vec<Vec<Vec<f32>>> =
            vec![vec![Vec::new(); numeric.len()]; catalog.clusters.len()];
        for row in table.iter().filter(|r| keep(r.recipient)) {
            for &t in row.tasks {
                let Some((ci, k)) = at[t as usize] else {
                    continue;
                };
                counts[ci][k] += 1;
                for (j, &v) in numeric.iter().enumerate() {
                    values[ci][j].push(row.context[v]);
                }
            }
        }
        let mut splits: Vec<Vec<Option<f64>>> = vec![vec![None; nv]; catalog.clusters.len()];
        for ci in 0..catalog.clusters.len() {
            for (j, &v) in numeric.iter().enumerate() {
                let vals = &mut values[ci][j];
                if !vals.is_empty() {
                    let mid = vals.len() / 2;
                    let (_, m, _) = vals.select_nth_unstable_by(mid, |a, b| a.total_cmp(b));
                    splits[ci][v] = Some(f64::from(*m));
                }
            }
        }
        drop(values);
        for row in table.iter().filter(|r| keep(r.recipient)) {
            for &t in row.tasks {
                let Some((ci, k)) = at[t as usize] else {
                    continue;
                };
                let n = catalog.clusters[ci].members.len();
                for v in 0..nv {
                    let level = level_of(
                        catalog.contexts[v].kind,
                        splits[ci][v],
                        f64::from(row.context[v]),
                    );
                    tables[ci][v]
                        .entry(level.to_bits())
                        .or_insert_with(|| vec![0; n])[k] += 1;
                }
            }
        }
        catalog
            .clusters
            .iter()
            .enumerate()
            .map(|(ci, c)| {
                let occasions: u64 = counts[ci].iter().sum();
                let mut shares: Vec<f64> = counts[ci].iter().map(|&n| n as f64).collect();
                normalise(&mut shares);
                let by_context = (0..nv)
                    .map(|v| {
                        let mut levels: Vec<LevelMix> = tables[ci][v]
                            .iter()
                            .map(|(bits, n)| {
                                let total: u64 = n.iter().sum();
                                let mut s: Vec<f64> = n
                                    .iter()
                                    .zip(&shares)
                                    .map(|(&n, &p)| n as f64 + SHRINK_OCCASIONS * p)
                                    .collect();
                                normalise(&mut s);
                                LevelMix {
                                    value: f64::from_bits(*bits),
                                    occasions: total,
                                    shares: s,
                                }
                            })
                            .collect();
                        levels.sort_by(|a, b| a.value.total_cmp(&b.value));
                        ContextMix {
                            variable: catalog.contexts[v].name.clone(),
                            split: splits[ci][v],
                            levels,
                        }
                    })
                    .collect();
                ClusterMix {
                    code: c.code.clone(),
                    members: c.members.clone(),
                    occasions,
                    shares,
                    by_context,
                }
            })
            .collect()
    }

    /// The shares for one recipient's context (catalog order): the overall mix times, for
    /// every context variable, the ratio of its level's shrunk mix to the overall mix
    /// (levels the log did not show leave the mix as it is), normalised to sum to 1.
    pub fn shares_for(&self, catalog: &Catalog, context: &[f64]) -> Vec<f64> {
        let mut s = self.shares.clone();
        for cm in &self.by_context {
            let Some(v) = catalog.context_index(&cm.variable) else {
                continue;
            };
            let Some(&x) = context.get(v) else { continue };
            let level = level_of(catalog.contexts[v].kind, cm.split, x);
            // The table stores levels from f32 context values.
            let level32 = f64::from(level as f32);
            if let Some(l) = cm
                .levels
                .iter()
                .find(|l| (l.value - level32).abs() <= 1e-6 * l.value.abs().max(1.0))
            {
                for ((si, &li), &oi) in s.iter_mut().zip(&l.shares).zip(&self.shares) {
                    if oi > 0.0 {
                        *si *= li / oi;
                    }
                }
            }
        }
        normalise(&mut s);
        s
    }

    /// Checks a mix read from a model file against its catalog.
    pub fn check(mixes: &[ClusterMix], catalog: &Catalog) -> Result<(), String> {
        if mixes.len() != catalog.clusters.len() {
            return Err(format!(
                "the catalog has {} clusters, the model's cluster mix {}",
                catalog.clusters.len(),
                mixes.len()
            ));
        }
        let share_ok = |s: &[f64], n: usize| {
            s.len() == n
                && s.iter().all(|x| x.is_finite() && *x >= 0.0)
                && (s.iter().sum::<f64>() - 1.0).abs() < 1e-6
        };
        for (m, c) in mixes.iter().zip(&catalog.clusters) {
            let name = crate::echo::echo(&m.code);
            if m.code != c.code || m.members != c.members {
                return Err(format!(
                    "cluster mix '{name}' does not match the catalog's cluster '{}'",
                    crate::echo::echo(&c.code)
                ));
            }
            if !share_ok(&m.shares, c.members.len()) {
                return Err(format!("cluster mix '{name}': shares are not shares"));
            }
            for cm in &m.by_context {
                let Some(v) = catalog.context_index(&cm.variable) else {
                    return Err(format!(
                        "cluster mix '{name}': '{}' is not a context variable",
                        crate::echo::echo(&cm.variable)
                    ));
                };
                let numeric = catalog.contexts[v].kind == ContextKind::Numeric;
                if numeric != cm.split.is_some() || cm.split.is_some_and(|s| !s.is_finite()) {
                    return Err(format!(
                        "cluster mix '{name}': the split of '{}' is missing or not finite",
                        cm.variable
                    ));
                }
                if cm
                    .levels
                    .iter()
                    .any(|l| !l.value.is_finite() || !share_ok(&l.shares, c.members.len()))
                {
                    return Err(format!(
                        "cluster mix '{name}': a level of '{}' has shares that are not shares",
                        cm.variable
                    ));
                }
            }
        }
        Ok(())
    }
}

/// A need for a broad code, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterNeed {
    /// Index of the need in the request.
    pub index: usize,
    pub cluster: usize,
    pub per_week: f64,
    pub slot: Option<Slot>,
    pub staff: u8,
}

/// A needs object whose needs may name broad codes: the detailed needs validated as usual
/// (`valid`, in request order without the broad ones) and the broad ones beside them.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusteredNeeds {
    pub valid: ValidNeeds,
    /// Request index of each need in `valid.needs`.
    pub detailed_index: Vec<usize>,
    pub clusters: Vec<ClusterNeed>,
}

/// Rewrites `needs[j]…` field paths of a validation of a subset back to request indices.
fn remap(v: FieldViolation, index: &[usize]) -> FieldViolation {
    if let Some(rest) = v.field.strip_prefix("needs[") {
        if let Some((j, tail)) = rest.split_once(']') {
            if let Some(&i) = j.parse::<usize>().ok().and_then(|j| index.get(j)) {
                return FieldViolation {
                    field: format!("needs[{i}]{tail}"),
                    description: v.description,
                };
            }
        }
    }
    v
}

/// Validates a needs object whose needs may name broad codes (clusters of `catalog`): the
/// detailed needs exactly as [`NeedsSet::validate`] does, a broad need's frequency, slot
/// and staff by the same rules, and a broad code beside one of its own members is refused
/// (the member would be counted twice). Field paths are the request's.
pub fn validate_needs(set: &NeedsSet, catalog: &Catalog) -> Result<ClusteredNeeds, NeedsError> {
    let is_cluster = |n: &Need| catalog.cluster_index(n.code.trim());
    if catalog.clusters.is_empty() || !set.needs.iter().any(|n| is_cluster(n).is_some()) {
        let valid = set.validate(catalog)?;
        let detailed_index = (0..valid.needs.len()).collect();
        return Ok(ClusteredNeeds {
            valid,
            detailed_index,
            clusters: Vec::new(),
        });
    }
    let mut violations = Vec::new();
    let mut detailed = NeedsSet {
        recipient_id: set.recipient_id.clone(),
        context: set.context.clone(),
        needs: Vec::new(),
    };
    let mut detailed_index = Vec::new();
    let mut clusters = Vec::new();
    let mut cluster_at: HashMap<usize, usize> = HashMap::new();
    // (request index, cluster) of every broad need, valid or not.
    let mut asked: Vec<(usize, usize)> = Vec::new();
    for (i, n) in set.needs.iter().enumerate() {
        match is_cluster(n) {
            None => {
                detailed_index.push(i);
                detailed.needs.push(n.clone());
            }
            Some(c) => {
                if let Some(first) = cluster_at.insert(c, i) {
                    violations.push(FieldViolation {
                        field: format!("needs[{i}].code"),
                        description: format!(
                            "{} appears twice (needs[{first}]); give each code once, with all its occasions in per_week",
                            crate::echo::echo(n.code.trim())
                        ),
                    });
                    continue;
                }
                asked.push((i, c));
                // Frequency, slot and staff by the detailed rules, on its first member.
                let probe = NeedsSet {
                    recipient_id: "probe".into(),
                    context: serde_json::Map::new(),
                    needs: vec![Need {
                        code: catalog.clusters[c].members[0].clone(),
                        ..n.clone()
                    }],
                };
                let (slot, staff) = match probe.validate(&Catalog {
                    insatser: catalog.insatser.clone(),
                    contexts: Vec::new(),
                    clusters: Vec::new(),
                    ibic: Vec::new(),
                }) {
                    Ok(v) => (v.needs[0].slot, v.needs[0].staff),
                    Err(e) => {
                        violations.extend(
                            e.violations
                                .into_iter()
                                .filter(|v| v.field.starts_with("needs[0]"))
                                .map(|v| remap(v, &[i])),
                        );
                        continue;
                    }
                };
                clusters.push(ClusterNeed {
                    index: i,
                    cluster: c,
                    per_week: n.per_week,
                    slot,
                    staff,
                });
            }
        }
    }
    for &(index, cluster) in &asked {
        let cl = &catalog.clusters[cluster];
        for (j, n) in detailed.needs.iter().enumerate() {
            if cl.members.iter().any(|m| m == n.code.trim()) {
                violations.push(FieldViolation {
                    field: format!("needs[{index}].code"),
                    description: format!(
                        "{} includes {}, asked for in needs[{}]; order either the broad code or its members",
                        crate::echo::echo(&cl.code),
                        crate::echo::echo(n.code.trim()),
                        detailed_index[j]
                    ),
                });
            }
        }
    }
    let only_broad = detailed.needs.is_empty();
    let valid = match detailed.validate(catalog) {
        Ok(v) => Some(v),
        Err(e) => {
            let mut kept: Vec<FieldViolation> = e
                .violations
                .into_iter()
                // Broad needs count: "must list at least one need" is not about them.
                .filter(|v| !(only_broad && v.field == "needs"))
                .map(|v| remap(v, &detailed_index))
                .collect();
            kept.append(&mut violations);
            violations = kept;
            None
        }
    };
    if !violations.is_empty() {
        violations.sort_by_key(|v| field_order(&v.field));
        return Err(NeedsError { violations });
    }
    let valid = match valid {
        Some(v) => v,
        // Only the "no needs" violation was dropped: validate the context alone.
        None => {
            let mut ctx_only = detailed.clone();
            ctx_only.needs.push(Need {
                code: catalog.clusters[clusters[0].cluster].members[0].clone(),
                per_week: 1.0,
                ..Default::default()
            });
            let mut v = ctx_only.validate(catalog)?;
            v.needs.clear();
            v
        }
    };
    Ok(ClusteredNeeds {
        valid,
        detailed_index,
        clusters,
    })
}

/// Violations in request order: top-level fields first, then needs by index.
fn field_order(field: &str) -> (usize, usize) {
    match field
        .strip_prefix("needs[")
        .and_then(|r| r.split_once(']'))
        .and_then(|(j, _)| j.parse::<usize>().ok())
    {
        Some(i) => (1, i),
        None => (0, 0),
    }
}

/// One member of a broad need in an answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemberShare {
    pub code: String,
    /// Share of the broad code's occasions, for this recipient's context.
    pub share: f64,
    /// `per_week × share`: the member's occasions planned.
    pub per_week: f64,
    /// Wall-clock minutes per week attributed to the member (full detail only, else 0).
    pub weekly_min: f64,
}

/// How one broad need was estimated: its members and their shares.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterMixEstimate {
    pub code: String,
    /// Index of the need in the request.
    pub need_index: usize,
    pub per_week: f64,
    pub weekly_min: f64,
    pub members: Vec<MemberShare>,
}

/// Estimates a needs object with broad codes: each broad need becomes its members at
/// `per_week × share` (the model's mix for the recipient's context), planned and predicted
/// with the detailed needs. `per_need` is in request order with one entry per need (a broad
/// need's minutes are its members'), and `cluster_mix` shows each broad need's members.
pub fn estimate_needs(model: &Model, needs: &ClusteredNeeds, detail: Detail) -> Estimate {
    if needs.clusters.is_empty() {
        return estimate_with(model, &needs.valid, detail);
    }
    let catalog = &model.catalog;
    let mut combined = needs.valid.clone();
    let codes = catalog.code_index();
    // For each broad need: (position in combined.needs, member, share) of its members.
    let mut parts: Vec<Vec<(usize, usize, f64)>> = Vec::with_capacity(needs.clusters.len());
    for cn in &needs.clusters {
        let cl = &catalog.clusters[cn.cluster];
        let shares = match model.clusters.get(cn.cluster) {
            Some(mix) => mix.shares_for(catalog, &needs.valid.context),
            None => vec![1.0 / cl.members.len() as f64; cl.members.len()],
        };
        let mut mine = Vec::new();
        for (k, (m, &s)) in cl.members.iter().zip(&shares).enumerate() {
            if s <= 0.0 {
                mine.push((usize::MAX, k, s));
                continue;
            }
            mine.push((combined.needs.len(), k, s));
            combined.needs.push(ValidNeed {
                insats: codes[m.as_str()],
                per_week: cn.per_week * s,
                slot: cn.slot,
                staff: cn.staff,
                words: None,
            });
        }
        parts.push(mine);
    }
    let mut e = estimate_with(model, &combined, detail);
    let full = detail == Detail::Full;
    let n_detailed = needs.valid.needs.len();
    let total = n_detailed + needs.clusters.len();
    let mut per_need: Vec<Option<NeedEstimate>> = vec![None; total];
    if full {
        for (j, ne) in e.per_need.iter().take(n_detailed).enumerate() {
            per_need[needs.detailed_index[j]] = Some(ne.clone());
        }
    }
    let mut mixes = Vec::with_capacity(needs.clusters.len());
    for (cn, mine) in needs.clusters.iter().zip(&parts) {
        let cl = &catalog.clusters[cn.cluster];
        let mut members = Vec::with_capacity(mine.len());
        let (mut weekly, mut member_schablon, mut member_schablon_staff) = (0.0, 0.0, 0.0);
        for &(pos, k, s) in mine {
            let insats = &catalog.insatser[codes[cl.members[k].as_str()]];
            let w = if full && pos != usize::MAX {
                e.per_need[pos].weekly_min
            } else {
                0.0
            };
            weekly += w;
            member_schablon += cn.per_week * s * insats.schablon_min;
            member_schablon_staff += cn.per_week * s * insats.schablon_min * f64::from(cn.staff);
            members.push(MemberShare {
                code: cl.members[k].clone(),
                share: s,
                per_week: cn.per_week * s,
                weekly_min: w,
            });
        }
        let schablon = match cl.schablon_min {
            Some(m) => {
                let own = cn.per_week * m;
                e.schablon_weekly_min += own - member_schablon;
                e.schablon_weekly_staff_min += own * f64::from(cn.staff) - member_schablon_staff;
                own
            }
            None => member_schablon,
        };
        if full {
            per_need[cn.index] = Some(NeedEstimate {
                code: cl.code.clone(),
                per_week: cn.per_week,
                weekly_min: weekly,
                schablon_weekly_min: schablon,
                icf: None,
                level: None,
                support: None,
                goal_id: None,
            });
        }
        mixes.push(ClusterMixEstimate {
            code: cl.code.clone(),
            need_index: cn.index,
            per_week: cn.per_week,
            weekly_min: weekly,
            members,
        });
    }
    e.per_need = if full {
        per_need.into_iter().flatten().collect()
    } else {
        Vec::new()
    };
    e.cluster_mix = mixes;
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = r#"
[[insats]]
code = "MORNING_CARE"
category = "personal_care"
schablon_min = 30

[[insats]]
code = "DRESSING"
category = "personal_care"
schablon_min = 10

[[insats]]
code = "CLEANING"
category = "service"
schablon_min = 60
"#;

    fn refusal(extra: &str) -> String {
        Catalog::from_toml(&format!("{BASE}{extra}"), "c.toml")
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn clusters_parse_round_trip_and_change_the_fingerprint() {
        let plain = Catalog::from_toml(BASE, "c.toml").unwrap();
        let text = format!(
            "{BASE}[[cluster]]\ncode='PC'\nmembers=['MORNING_CARE','DRESSING']\nschablon_min=25\n"
        );
        let c = Catalog::from_toml(&text, "c.toml").unwrap();
        assert_eq!(c.clusters.len(), 1);
        assert_eq!(c.clusters[0].name, "PC");
        assert_eq!(c.clusters[0].schablon_min, Some(25.0));
        assert_eq!(c.cluster_category(0), Category::PersonalCare);
        let again = Catalog::from_toml(&c.to_toml(), "again").unwrap();
        assert_eq!(c, again);
        assert_ne!(c.fingerprint(), plain.fingerprint());
        // A catalog without clusters keeps the fingerprint it had before clusters existed.
        assert!(!serde_json::to_string(&plain).unwrap().contains("clusters"));
    }

    #[test]
    fn bad_clusters_are_refused_naming_the_row() {
        let e = refusal("[[cluster]]\ncode='PC'\nmembers=['MORNING_CARE','BATH']\n");
        assert!(
            e.contains("cluster #1 (PC)") && e.contains("'BATH' is not an insats code"),
            "{e}"
        );
        let e = refusal(
            "[[cluster]]\ncode='A'\nmembers=['MORNING_CARE']\n[[cluster]]\ncode='B'\nmembers=['DRESSING','MORNING_CARE']\n",
        );
        assert!(
            e.contains("cluster #2 (B)") && e.contains("already in cluster #1 (A)"),
            "{e}"
        );
        let e = refusal("[[cluster]]\ncode='CLEANING'\nmembers=['MORNING_CARE']\n");
        assert!(
            e.contains("cluster #1") && e.contains("also an insats code"),
            "{e}"
        );
        let e = refusal("[[cluster]]\ncode='PC'\nmembers=[]\n");
        assert!(
            e.contains("cluster #1 (PC)") && e.contains("no members"),
            "{e}"
        );
        let e = refusal("[[cluster]]\ncode='PC'\n");
        assert!(e.contains("no members"), "{e}");
        let e = refusal("[[cluster]]\ncode='X'\nmembers=['MORNING_CARE','CLEANING']\n");
        assert!(
            e.contains("cluster #1 (X)") && e.contains("different categories"),
            "{e}"
        );
        let e = refusal("[[cluster]]\ncode='X'\nmembers=['DRESSING','DRESSING']\n");
        assert!(e.contains("listed twice"), "{e}");
        let e = refusal(
            "[[cluster]]\ncode='X'\nmembers=['DRESSING']\n[[cluster]]\ncode='X'\nmembers=['CLEANING']\n",
        );
        assert!(
            e.contains("cluster #2") && e.contains("defined twice"),
            "{e}"
        );
        let e = refusal("[[cluster]]\ncode='X'\nmembers=['DRESSING']\nschablon_min=-1\n");
        assert!(e.contains("schablon_min"), "{e}");
        let e = refusal("[[cluster]]\ncode='X'\nmember=['DRESSING']\n");
        assert!(e.contains("unknown field `member`"), "{e}");
    }

    fn clustered_catalog() -> Catalog {
        Catalog::from_toml(
            &format!(
                "{BASE}[[cluster]]\ncode='PC'\nmembers=['MORNING_CARE','DRESSING']\n[[context]]\nname='cognition'\nkind='ordinal'\nlevels=[0,1,2]\n[[context]]\nname='age'\nkind='numeric'\n"
            ),
            "c.toml",
        )
        .unwrap()
    }

    #[test]
    fn the_mix_is_learnt_per_context_level_and_shrunk() {
        let c = clustered_catalog();
        let mut t = VisitTable::new(2);
        // cognition 0: care only; cognition 2: dressing mostly.
        for i in 0..100 {
            t.push(1, 0, i, Slot::Morning, 1, 20.0, &[0], &[0.0, 80.0]);
            t.push(2, 0, i, Slot::Morning, 1, 20.0, &[1], &[2.0, 90.0]);
            t.push(2, 0, i, Slot::Evening, 1, 20.0, &[1, 2], &[2.0, 90.0]);
        }
        let mixes = ClusterMix::learn(&t, &c, &|_| true);
        assert_eq!(mixes.len(), 1);
        let m = &mixes[0];
        assert_eq!(m.occasions, 300);
        assert!((m.shares[0] - 1.0 / 3.0).abs() < 1e-12);
        ClusterMix::check(&mixes, &c).unwrap();
        let low = m.shares_for(&c, &[0.0, 80.0]);
        let high = m.shares_for(&c, &[2.0, 90.0]);
        let unseen = m.shares_for(&c, &[1.0, 85.0]);
        for s in [&low, &high, &unseen] {
            assert!((s.iter().sum::<f64>() - 1.0).abs() < 1e-12, "{s:?}");
        }
        assert!(low[0] > 0.7 && high[1] > 0.9, "{low:?} {high:?}");
        // Shrunk: never all of one member from 100 or 200 occasions.
        assert!(low[1] > 0.0 && high[0] > 0.0);
        // Only visits kept count.
        let only2 = ClusterMix::learn(&t, &c, &|r| r == 2);
        assert_eq!(only2[0].shares, vec![0.0, 1.0]);
    }

    #[test]
    fn broad_needs_validate_with_request_paths() {
        let c = clustered_catalog();
        let set = |needs: &str| -> NeedsSet {
            serde_json::from_str(&format!(
                r#"{{"recipient_id":"R1","context":{{"cognition":1,"age":80}},"needs":{needs}}}"#
            ))
            .unwrap()
        };
        let ok = validate_needs(
            &set(
                r#"[{"code":"CLEANING","per_week":1},{"code":"PC","per_week":7,"slot":"morning"}]"#,
            ),
            &c,
        )
        .unwrap();
        assert_eq!(ok.valid.needs.len(), 1);
        assert_eq!(ok.clusters[0].index, 1);
        assert_eq!(ok.clusters[0].slot, Some(Slot::Morning));
        let only = validate_needs(&set(r#"[{"code":"PC","per_week":7}]"#), &c).unwrap();
        assert!(only.valid.needs.is_empty() && only.valid.context.len() == 2);
        let e = validate_needs(
            &set(r#"[{"code":"BAD","per_week":1},{"code":"PC","per_week":0},{"code":"DRESSING","per_week":1}]"#),
            &c,
        )
        .unwrap_err();
        let fields: Vec<&str> = e.violations.iter().map(|v| v.field.as_str()).collect();
        assert!(fields.contains(&"needs[0].code"), "{e}");
        assert!(fields.contains(&"needs[1].per_week"), "{e}");
        assert!(
            e.violations
                .iter()
                .any(|v| v.field == "needs[1].code" && v.description.contains("includes DRESSING")),
            "{e}"
        );
        let e = validate_needs(
            &set(r#"[{"code":"PC","per_week":1},{"code":"PC","per_week":2}]"#),
            &c,
        )
        .unwrap_err();
        assert_eq!(e.violations[0].field, "needs[1].code", "{e}");
        // Context faults are still found when only broad codes are ordered.
        let bad: NeedsSet = serde_json::from_str(
            r#"{"recipient_id":"R1","context":{"cognition":7,"age":80},"needs":[{"code":"PC","per_week":2}]}"#,
        )
        .unwrap();
        let e = validate_needs(&bad, &c).unwrap_err();
        assert_eq!(e.violations[0].field, "context.cognition", "{e}");
    }
}
