//! `ramtid catalog design`: proposes a catalog of K broad codes from a visit log in detailed
//! codes, and scores it (with any given candidate catalogs and a random grouping of the same
//! size for scale) on held-out recipients: how far the broad-code estimate of each person's
//! week lies from the detailed-code estimate and from the performed week.
//!
//! Method (also in `training/METHOD.md`, section 8):
//!
//! - **Split.** Recipients are split by a hash of their id and the seed: a quarter held out.
//!   The mix of every candidate's clusters is learnt on the other recipients' visits; all
//!   figures are over held-out recipients.
//! - **A recipient's orders.** From their visits: per code, occasions per week (visits with
//!   the code over the recipient's span in whole weeks), the code's most frequent slot and
//!   staffing, and the context of their last visit. The detailed order is these needs; the
//!   broad order has, per cluster, one need whose frequency is the sum of its members'
//!   (with the slot and staff of its most frequent member), other codes as they are.
//! - **Proposal.** Agglomerative, within category: start from single codes and merge the
//!   pair of groups with the least cost until K groups remain. The cost of merging A and B
//!   is the average distance of their codes times `W_A·W_B/(W_A+W_B)` (W: occasions in the
//!   log, Ward's weighting: merging rare codes costs little). The distance of two codes is
//!   `|ln t_a − ln t_b|` (t: the model's own minutes of the task) `+ 0.5·(1 − J)` (J: Jaccard
//!   overlap of the recipients who have them) `+ 0.3·` the slot-share distance `+ 0.3·` the
//!   distance of their context profiles (mean standardised context over their occasions,
//!   capped at 1).

pub mod html;

use ramtid_core::catalog::{Catalog, Category};
use ramtid_core::cluster::{estimate_needs, Cluster, ClusterMix, ClusterNeed, ClusteredNeeds};
use ramtid_core::estimate::{estimate_with, Detail};
use ramtid_core::model::Model;
use ramtid_core::needs::{ValidNeed, ValidNeeds, MAX_PER_WEEK};
use ramtid_core::slot::Slot;
use ramtid_core::visits::VisitLog;
use serde::Serialize;
use std::collections::HashMap;

/// Share of recipients held out.
pub const HOLDOUT_SHARE: f64 = 0.25;

#[derive(Debug, Clone)]
pub struct DesignConfig {
    /// Broad codes wanted (codes left alone count as one each).
    pub clusters: usize,
    pub seed: u64,
    /// Random groupings of the proposal's size scored for scale (each its own candidate).
    pub random_draws: usize,
}

/// A candidate grouping: clusters over the model's codes (codes in none stay detailed).
#[derive(Debug, Clone)]
pub struct Candidate {
    pub name: String,
    /// "proposed", "random" or the file it came from.
    pub source: String,
    pub clusters: Vec<Cluster>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Design {
    pub model_name: String,
    pub model_version: String,
    pub seed: u64,
    pub clusters_wanted: usize,
    pub detailed_codes: usize,
    pub recipients_training: usize,
    pub recipients_heldout: usize,
    /// MAPE of the detailed-code estimate against performed person-weeks (held out).
    pub detailed_mape_vs_performed: f64,
    pub candidates: Vec<CandidateResult>,
    /// Median over the random groupings of their MAPE against the detailed estimate.
    pub random_median_mape_vs_detailed: f64,
    pub seconds: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct CandidateResult {
    pub name: String,
    pub source: String,
    /// Codes of the candidate catalog: broad codes plus detailed codes left alone.
    pub codes: usize,
    /// Mean |broad − detailed| / detailed over held-out person-weeks.
    pub mape_vs_detailed: f64,
    /// Mean (broad − detailed) / detailed.
    pub bias_vs_detailed: f64,
    /// Mean |broad − performed| / performed.
    pub mape_vs_performed: f64,
    /// `mape_vs_performed` minus the detailed catalog's: the accuracy lost, in points.
    pub accuracy_lost: f64,
    pub broad_codes: Vec<BroadCode>,
}

#[derive(Debug, Clone, Serialize)]
pub struct BroadCode {
    pub code: String,
    pub category: String,
    pub members: Vec<String>,
    /// Overall shares of the members' occasions on the training recipients.
    pub shares: Vec<f64>,
    /// Held-out recipients with this broad code.
    pub recipients: usize,
    /// Estimated minutes per occasion over those recipients: mean, P10, P50, P90.
    pub minutes_mean: f64,
    pub minutes_p10: f64,
    pub minutes_p50: f64,
    pub minutes_p90: f64,
    /// The schablon (minutes per occasion) that matches the estimates in total:
    /// Σ minutes / Σ occasions over the held-out recipients.
    pub schablon_to_match: f64,
}

/// One recipient's week as the log shows it.
#[derive(Debug, Clone)]
struct Person {
    heldout: bool,
    context: Vec<f64>,
    performed_weekly: f64,
    /// (code, per_week, slot, staff)
    needs: Vec<(usize, f64, Slot, u8)>,
}

#[derive(Default, Clone)]
struct CodeStats {
    n: u64,
    slots: [u64; 5],
    staff2: u64,
}

/// FNV-1a over the id and the seed: stable across runs and machines.
fn heldout(id: &str, seed: u64) -> bool {
    let mut bytes = id.as_bytes().to_vec();
    bytes.extend_from_slice(&seed.to_le_bytes());
    let h = ramtid_core::fingerprint::fnv1a64(&bytes);
    // The top bits: the low bits of FNV mix the last bytes (the seed) poorly.
    ((h >> 11) as f64 / (1u64 << 53) as f64) < HOLDOUT_SHARE
}

fn people(log: &VisitLog, n_codes: usize, seed: u64) -> Vec<Person> {
    let n = log.recipients.len();
    let nctx = log.table.n_context();
    let mut first = vec![i32::MAX; n];
    let mut last = vec![i32::MIN; n];
    let mut minutes = vec![0.0f64; n];
    let mut ctx = vec![0.0f64; n * nctx];
    let mut stats: HashMap<(u32, u16), CodeStats> = HashMap::new();
    for r in log.table.iter() {
        let i = r.recipient as usize;
        first[i] = first[i].min(r.day);
        if r.day >= last[i] {
            last[i] = r.day;
            for (k, &x) in r.context.iter().enumerate() {
                ctx[i * nctx + k] = f64::from(x);
            }
        }
        minutes[i] += r.duration;
        for &t in r.tasks {
            let s = stats.entry((r.recipient, t)).or_default();
            s.n += 1;
            s.slots[r.slot.index()] += 1;
            if r.staff >= 2 {
                s.staff2 += 1;
            }
        }
    }
    let mut needs: Vec<Vec<(usize, f64, Slot, u8)>> = vec![Vec::new(); n];
    let weeks = |i: usize| (f64::from(last[i] - first[i] + 1) / 7.0).ceil().max(1.0);
    let mut keys: Vec<_> = stats.into_iter().collect();
    keys.sort_unstable_by_key(|(k, _)| *k);
    for ((r, t), s) in keys {
        let i = r as usize;
        if (t as usize) >= n_codes {
            continue;
        }
        let slot = (0..5).max_by_key(|&k| (s.slots[k], 5 - k)).unwrap_or(0);
        let staff = if 2 * s.staff2 > s.n { 2 } else { 1 };
        let per_week = (s.n as f64 / weeks(i)).min(MAX_PER_WEEK);
        needs[i].push((t as usize, per_week, Slot::ALL[slot], staff));
    }
    (0..n)
        .filter(|&i| first[i] != i32::MAX)
        .map(|i| Person {
            heldout: heldout(&log.recipients[i], seed),
            context: ctx[i * nctx..(i + 1) * nctx].to_vec(),
            performed_weekly: minutes[i] / weeks(i),
            needs: std::mem::take(&mut needs[i]),
        })
        .collect()
}

fn detailed_order(p: &Person) -> ValidNeeds {
    ValidNeeds {
        recipient_id: "design".into(),
        context: p.context.clone(),
        needs: p
            .needs
            .iter()
            .map(|&(insats, per_week, slot, staff)| ValidNeed {
                insats,
                per_week,
                slot: Some(slot),
                staff,
                words: None,
            })
            .collect(),
    }
}

/// The broad order: per cluster one need (sum of its members' occasions, the slot and staff
/// of its most frequent member), other codes as they are.
fn broad_order(p: &Person, cluster_of: &[Option<usize>]) -> ClusteredNeeds {
    let mut detailed = Vec::new();
    let mut by_cluster: HashMap<usize, (f64, f64, Slot, u8)> = HashMap::new();
    for &(insats, per_week, slot, staff) in &p.needs {
        match cluster_of[insats] {
            None => detailed.push(ValidNeed {
                insats,
                per_week,
                slot: Some(slot),
                staff,
                words: None,
            }),
            Some(c) => {
                let e = by_cluster.entry(c).or_insert((0.0, 0.0, slot, staff));
                e.0 += per_week;
                if per_week > e.1 {
                    *e = (e.0, per_week, slot, staff);
                }
            }
        }
    }
    let n = detailed.len();
    let mut cl: Vec<_> = by_cluster.into_iter().collect();
    cl.sort_unstable_by_key(|(c, _)| *c);
    ClusteredNeeds {
        valid: ValidNeeds {
            recipient_id: "design".into(),
            context: p.context.clone(),
            needs: detailed,
        },
        detailed_index: (0..n).collect(),
        clusters: cl
            .into_iter()
            .enumerate()
            .map(|(j, (c, (per_week, _, slot, staff)))| ClusterNeed {
                index: n + j,
                cluster: c,
                per_week: per_week.min(MAX_PER_WEEK),
                slot: Some(slot),
                staff,
            })
            .collect(),
    }
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let pos = q * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

/// A small deterministic generator (SplitMix64) for the random grouping.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn category_prefix(c: Category) -> &'static str {
    match c {
        Category::PersonalCare => "PC",
        Category::Service => "SV",
        Category::Supervision => "SU",
        Category::Other => "OT",
    }
}

/// Names groups of code indices as clusters (groups of one stay detailed codes).
fn name_groups(catalog: &Catalog, groups: &[Vec<usize>], prefix: &str) -> Vec<Cluster> {
    let mut n_by_cat: HashMap<Category, usize> = HashMap::new();
    let mut out = Vec::new();
    for g in groups.iter().filter(|g| g.len() > 1) {
        let cat = catalog.insatser[g[0]].category;
        let k = n_by_cat.entry(cat).or_insert(0);
        *k += 1;
        let mut code = format!("{prefix}_{}_{}", category_prefix(cat), k);
        while catalog.insatser.iter().any(|i| i.code == code) {
            code.push('X');
        }
        let mut members = g.clone();
        members.sort_unstable();
        out.push(Cluster {
            name: code.clone(),
            code,
            members: members
                .iter()
                .map(|&i| catalog.insatser[i].code.clone())
                .collect(),
            schablon_min: None,
        });
    }
    out
}

/// Groups of code indices by category (codes of no category present are their own group).
fn by_category(catalog: &Catalog) -> Vec<(Category, Vec<usize>)> {
    let mut out: Vec<(Category, Vec<usize>)> = Vec::new();
    for (i, c) in catalog.insatser.iter().enumerate() {
        match out.iter_mut().find(|(cat, _)| *cat == c.category) {
            Some((_, v)) => v.push(i),
            None => out.push((c.category, vec![i])),
        }
    }
    out
}

/// The proposal: agglomerative clustering within category (see the module documentation).
pub fn propose(
    model: &Model,
    log: &VisitLog,
    k: usize,
    keep: &dyn Fn(u32) -> bool,
) -> Result<Vec<Vec<usize>>, String> {
    let catalog = &model.catalog;
    let n = catalog.insatser.len();
    let cats = by_category(catalog);
    if k < cats.len() {
        return Err(format!(
            "--clusters {k} is fewer than the catalog's {} categories; broad codes stay within a category",
            cats.len()
        ));
    }
    if k > n {
        return Err(format!(
            "--clusters {k} is more than the catalog's {n} codes"
        ));
    }
    // Per code: occasions, slot counts, recipients (as a bitset), context sums.
    let nr = log.recipients.len();
    let words = nr.div_ceil(64);
    let nctx = log.table.n_context();
    let mut occ = vec![0u64; n];
    let mut slots = vec![[0u64; 5]; n];
    let mut who = vec![vec![0u64; words]; n];
    let mut csum = vec![vec![0.0f64; nctx]; n];
    let (mut all_sum, mut all_sq, mut all_n) = (vec![0.0f64; nctx], vec![0.0f64; nctx], 0.0f64);
    for r in log.table.iter().filter(|r| keep(r.recipient)) {
        for (j, &x) in r.context.iter().enumerate() {
            all_sum[j] += f64::from(x);
            all_sq[j] += f64::from(x) * f64::from(x);
        }
        all_n += 1.0;
        for &t in r.tasks {
            let t = t as usize;
            occ[t] += 1;
            slots[t][r.slot.index()] += 1;
            who[t][r.recipient as usize / 64] |= 1 << (r.recipient % 64);
            for (j, &x) in r.context.iter().enumerate() {
                csum[t][j] += f64::from(x);
            }
        }
    }
    let mean: Vec<f64> = all_sum.iter().map(|s| s / all_n.max(1.0)).collect();
    let sd: Vec<f64> = (0..nctx)
        .map(|j| {
            (all_sq[j] / all_n.max(1.0) - mean[j] * mean[j])
                .max(0.0)
                .sqrt()
                .max(1e-9)
        })
        .collect();
    let profile: Vec<Vec<f64>> = (0..n)
        .map(|t| {
            (0..nctx)
                .map(|j| {
                    if occ[t] == 0 {
                        0.0
                    } else {
                        (csum[t][j] / occ[t] as f64 - mean[j]) / sd[j]
                    }
                })
                .collect()
        })
        .collect();
    let l = model.visit.space.layout();
    let minutes: Vec<f64> = (0..n)
        .map(|t| {
            model
                .visit
                .coef
                .get(l.tasks + t)
                .copied()
                .unwrap_or(1.0)
                .max(0.5)
        })
        .collect();
    let slot_share = |t: usize| -> [f64; 5] {
        let total = occ[t].max(1) as f64;
        let mut s = [0.0; 5];
        for k in 0..5 {
            s[k] = slots[t][k] as f64 / total;
        }
        s
    };
    let mut d = vec![vec![0.0f64; n]; n];
    for a in 0..n {
        for b in (a + 1)..n {
            let inter: u32 = who[a]
                .iter()
                .zip(&who[b])
                .map(|(x, y)| (x & y).count_ones())
                .sum();
            let union: u32 = who[a]
                .iter()
                .zip(&who[b])
                .map(|(x, y)| (x | y).count_ones())
                .sum();
            let jac = if union == 0 {
                0.0
            } else {
                f64::from(inter) / f64::from(union)
            };
            let (sa, sb) = (slot_share(a), slot_share(b));
            let slot_d: f64 = sa.iter().zip(&sb).map(|(x, y)| (x - y).abs()).sum::<f64>() / 2.0;
            let ctx_d = if nctx == 0 {
                0.0
            } else {
                (profile[a]
                    .iter()
                    .zip(&profile[b])
                    .map(|(x, y)| (x - y) * (x - y))
                    .sum::<f64>()
                    / nctx as f64)
                    .sqrt()
                    .min(1.0)
            };
            let v = (minutes[a].ln() - minutes[b].ln()).abs()
                + 0.5 * (1.0 - jac)
                + 0.3 * slot_d
                + 0.3 * ctx_d;
            d[a][b] = v;
            d[b][a] = v;
        }
    }
    let mut groups: Vec<Vec<usize>> = (0..n).map(|i| vec![i]).collect();
    let weight = |g: &[usize]| g.iter().map(|&t| occ[t] as f64 + 1.0).sum::<f64>();
    while groups.len() > k {
        let mut best: Option<(f64, usize, usize)> = None;
        for a in 0..groups.len() {
            for b in (a + 1)..groups.len() {
                if catalog.insatser[groups[a][0]].category
                    != catalog.insatser[groups[b][0]].category
                {
                    continue;
                }
                let avg: f64 = groups[a]
                    .iter()
                    .flat_map(|&x| groups[b].iter().map(move |&y| (x, y)))
                    .map(|(x, y)| d[x][y])
                    .sum::<f64>()
                    / (groups[a].len() * groups[b].len()) as f64;
                let (wa, wb) = (weight(&groups[a]), weight(&groups[b]));
                let cost = avg * wa * wb / (wa + wb);
                if best.is_none_or(|(c, _, _)| cost < c) {
                    best = Some((cost, a, b));
                }
            }
        }
        let Some((_, a, b)) = best else { break };
        let merged = groups.remove(b);
        groups[a].extend(merged);
    }
    Ok(groups)
}

/// A random grouping with the same number of groups per category as `like`.
fn random_groups(catalog: &Catalog, like: &[Vec<usize>], seed: u64) -> Vec<Vec<usize>> {
    let mut rng = Rng(seed ^ 0xC0FF_EE00_D15E_A5E5);
    let mut out = Vec::new();
    for (cat, codes) in by_category(catalog) {
        let g = like
            .iter()
            .filter(|g| catalog.insatser[g[0]].category == cat)
            .count()
            .max(1);
        let mut codes = codes.clone();
        for i in (1..codes.len()).rev() {
            let j = rng.below(i + 1);
            codes.swap(i, j);
        }
        let mut groups: Vec<Vec<usize>> = codes[..g].iter().map(|&c| vec![c]).collect();
        for &c in &codes[g..] {
            let j = rng.below(g);
            groups[j].push(c);
        }
        out.extend(groups);
    }
    out
}

/// The catalog of `model` with `clusters`, checked as a catalog file is.
pub fn with_clusters(model: &Model, clusters: &[Cluster]) -> Result<Catalog, String> {
    let mut c = model.catalog.clone();
    c.clusters = clusters.to_vec();
    for var in &mut c.contexts {
        var.trained = None;
    }
    c.validate()
        .map_err(|(entry, msg)| format!("{entry}: {msg}"))?;
    Ok(c)
}

/// Runs the design: the proposal of `cfg.clusters` broad codes, the given candidates and
/// `cfg.random_draws` random groupings of the proposal's size, each scored on held-out
/// recipients.
pub fn design(
    model: &Model,
    log: &VisitLog,
    given: Vec<Candidate>,
    cfg: &DesignConfig,
) -> Result<(Design, Catalog), String> {
    let t0 = std::time::Instant::now();
    let n_codes = model.catalog.insatser.len();
    let persons = people(log, n_codes, cfg.seed);
    let held: Vec<bool> = log
        .recipients
        .iter()
        .map(|id| heldout(id, cfg.seed))
        .collect();
    let keep = |r: u32| !held[r as usize];
    let train_n = held.iter().filter(|h| !**h).count();
    let test: Vec<&Person> = persons.iter().filter(|p| p.heldout).collect();
    if test.is_empty() || train_n == 0 {
        return Err(format!(
            "the log's {} recipients leave none to hold out or none to learn the mix on",
            log.recipients.len()
        ));
    }
    let groups = propose(model, log, cfg.clusters, &keep)?;
    let proposed = Candidate {
        name: format!("proposed ({} codes)", groups.len()),
        source: "proposed".into(),
        clusters: name_groups(&model.catalog, &groups, "BROAD"),
    };
    let mut candidates = vec![proposed];
    candidates.extend(given);
    for draw in 0..cfg.random_draws {
        let random = random_groups(
            &model.catalog,
            &groups,
            cfg.seed.wrapping_add(draw as u64 * 0x9E37),
        );
        candidates.push(Candidate {
            name: format!("random #{} ({} codes)", draw + 1, random.len()),
            source: "random".into(),
            clusters: name_groups(&model.catalog, &random, "RANDOM"),
        });
    }
    // The detailed estimates, once.
    let detailed: Vec<f64> = test
        .iter()
        .map(|p| estimate_with(model, &detailed_order(p), Detail::Totals).weekly_min)
        .collect();
    let mape = |xs: &mut dyn Iterator<Item = (f64, f64)>| -> f64 {
        let (mut s, mut n) = (0.0, 0.0);
        for (est, truth) in xs {
            if truth > 0.0 {
                s += (est - truth).abs() / truth;
                n += 1.0;
            }
        }
        if n > 0.0 {
            s / n
        } else {
            0.0
        }
    };
    let detailed_vs_performed = mape(
        &mut detailed
            .iter()
            .zip(&test)
            .map(|(&d, p)| (d, p.performed_weekly)),
    );
    let mut results = Vec::with_capacity(candidates.len());
    let mut proposed_catalog = None;
    for cand in &candidates {
        let catalog = with_clusters(model, &cand.clusters)
            .map_err(|e| format!("candidate {}: {e}", cand.source))?;
        let mixes = ClusterMix::learn(&log.table, &catalog, &keep);
        let mut m = model.clone();
        m.catalog.clusters = catalog.clusters.clone();
        m.clusters = mixes.clone();
        let codes = m.catalog.code_index();
        let mut cluster_of = vec![None; n_codes];
        for (ci, c) in m.catalog.clusters.iter().enumerate() {
            for member in &c.members {
                cluster_of[codes[member.as_str()]] = Some(ci);
            }
        }
        let nc = m.catalog.clusters.len();
        let mut per_occ: Vec<Vec<f64>> = vec![Vec::new(); nc];
        let mut sums = vec![(0.0f64, 0.0f64); nc];
        let mut broad = Vec::with_capacity(test.len());
        for p in &test {
            let order = broad_order(p, &cluster_of);
            let e = estimate_needs(&m, &order, Detail::Full);
            for (cn, mix) in order.clusters.iter().zip(&e.cluster_mix) {
                per_occ[cn.cluster].push(mix.weekly_min / mix.per_week);
                sums[cn.cluster].0 += mix.weekly_min;
                sums[cn.cluster].1 += mix.per_week;
            }
            broad.push(e.weekly_min);
        }
        let vs_detailed = mape(&mut broad.iter().zip(&detailed).map(|(&b, &d)| (b, d)));
        let bias = {
            let v: Vec<f64> = broad
                .iter()
                .zip(&detailed)
                .filter(|(_, &d)| d > 0.0)
                .map(|(&b, &d)| (b - d) / d)
                .collect();
            v.iter().sum::<f64>() / v.len().max(1) as f64
        };
        let vs_performed = mape(
            &mut broad
                .iter()
                .zip(&test)
                .map(|(&b, p)| (b, p.performed_weekly)),
        );
        let broad_codes: Vec<BroadCode> = m
            .catalog
            .clusters
            .iter()
            .enumerate()
            .map(|(ci, c)| {
                let v = &mut per_occ[ci];
                v.sort_by(f64::total_cmp);
                BroadCode {
                    code: c.code.clone(),
                    category: m.catalog.cluster_category(ci).as_str().to_string(),
                    members: c.members.clone(),
                    shares: mixes[ci].shares.clone(),
                    recipients: v.len(),
                    minutes_mean: v.iter().sum::<f64>() / v.len().max(1) as f64,
                    minutes_p10: quantile(v, 0.1),
                    minutes_p50: quantile(v, 0.5),
                    minutes_p90: quantile(v, 0.9),
                    schablon_to_match: if sums[ci].1 > 0.0 {
                        sums[ci].0 / sums[ci].1
                    } else {
                        0.0
                    },
                }
            })
            .collect();
        let in_clusters: usize = cand.clusters.iter().map(|c| c.members.len()).sum();
        if cand.source == "proposed" {
            let mut c = catalog.clone();
            for (cl, b) in c.clusters.iter_mut().zip(&broad_codes) {
                if b.schablon_to_match > 0.0 {
                    cl.schablon_min = Some((b.schablon_to_match * 2.0).round() / 2.0);
                }
            }
            proposed_catalog = Some(c);
        }
        results.push(CandidateResult {
            name: cand.name.clone(),
            source: cand.source.clone(),
            codes: n_codes - in_clusters + cand.clusters.len(),
            mape_vs_detailed: vs_detailed,
            bias_vs_detailed: bias,
            mape_vs_performed: vs_performed,
            accuracy_lost: vs_performed - detailed_vs_performed,
            broad_codes,
        });
    }
    let mut random: Vec<f64> = results
        .iter()
        .filter(|c| c.source == "random")
        .map(|c| c.mape_vs_detailed)
        .collect();
    random.sort_by(f64::total_cmp);
    let design = Design {
        random_median_mape_vs_detailed: quantile(&random, 0.5),
        model_name: model.name().to_string(),
        model_version: model.version().to_string(),
        seed: cfg.seed,
        clusters_wanted: cfg.clusters,
        detailed_codes: n_codes,
        recipients_training: train_n,
        recipients_heldout: test.len(),
        detailed_mape_vs_performed: detailed_vs_performed,
        candidates: results,
        seconds: t0.elapsed().as_secs_f64(),
    };
    Ok((design, proposed_catalog.expect("the proposal is scored")))
}

/// A candidate from a catalog file: its clusters, checked against the model's codes.
pub fn candidate_from_file(model: &Model, path: &std::path::Path) -> Result<Candidate, String> {
    let c = Catalog::load(path).map_err(|e| e.to_string())?;
    if c.clusters.is_empty() {
        return Err(format!("{}: declares no [[cluster]]", path.display()));
    }
    with_clusters(model, &c.clusters).map_err(|e| format!("{}: {e}", path.display()))?;
    let name = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string());
    Ok(Candidate {
        name,
        source: path.display().to_string(),
        clusters: c.clusters,
    })
}

/// Writes `catalog.toml`, `design.json` and `report.html` into `dir`.
pub fn write(dir: &std::path::Path, design: &Design, catalog: &Catalog) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("catalog.toml"), catalog.to_toml())?;
    std::fs::write(
        dir.join("design.json"),
        serde_json::to_vec_pretty(design).expect("design serializes"),
    )?;
    std::fs::write(dir.join("report.html"), html::html(design))?;
    Ok(())
}
