//! IBIC rows for a simulated municipality: a `[[ibic]]` mapping of a catalog's codes to ICF
//! codes and levels, and its inverse, which rewrites a needs object written in codes into
//! the rows an assessor would have written. Estimating the rewritten needs must give what
//! the codes give (see `training/IBIC.md`).
//!
//! The mapping pairs the codes of each category in catalog order: the first of a pair is an
//! ICF code's levels 1–2, the second its levels 3–4 (a code left alone takes 1–4). ICF
//! codes are drawn from the life areas of the category (personal care: d510 washing oneself,
//! d520 caring for body parts, d530 toileting, d540 dressing, d550 eating ...; service:
//! d620 acquisition of goods, d630 preparing meals, d6402 cleaning ...) and, when those run
//! out, from d8xx, which IBIC does not use for home care.

use ramtid_core::catalog::{Catalog, Category};
use ramtid_core::ibic::IbicRow;
use ramtid_core::needs::NeedsSet;

fn life_areas(c: Category) -> &'static [&'static str] {
    match c {
        Category::PersonalCare => &["d510", "d520", "d530", "d540", "d550", "d560", "d570"],
        Category::Service => &["d620", "d630", "d6402", "d6401", "d650"],
        Category::Supervision => &["d240", "d571"],
        Category::Other => &["d660", "d920"],
    }
}

/// A mapping covering every code of the catalog, each code by exactly one row.
pub fn mapping(catalog: &Catalog) -> Vec<IbicRow> {
    let mut rows = Vec::new();
    let mut spare = 800;
    for cat in [
        Category::PersonalCare,
        Category::Service,
        Category::Supervision,
        Category::Other,
    ] {
        let codes: Vec<&str> = catalog
            .insatser
            .iter()
            .filter(|i| i.category == cat)
            .map(|i| i.code.as_str())
            .collect();
        for (k, pair) in codes.chunks(2).enumerate() {
            let icf = match life_areas(cat).get(k) {
                Some(a) => a.to_string(),
                None => {
                    spare += 1;
                    format!("d{spare}")
                }
            };
            let levels: [&[u32]; 2] = if pair.len() == 2 {
                [&[1, 2], &[3, 4]]
            } else {
                [&[1, 2, 3, 4], &[]]
            };
            for (code, levels) in pair.iter().zip(levels) {
                rows.push(IbicRow {
                    icf: icf.clone(),
                    levels: levels.to_vec(),
                    support: None,
                    code: code.to_string(),
                });
            }
        }
    }
    rows
}

/// The catalog with [`mapping`] as its `[[ibic]]` section.
pub fn with_mapping(catalog: &Catalog) -> Catalog {
    let mut c = catalog.clone();
    c.ibic = mapping(catalog);
    c
}

/// `set` with every need given by code rewritten as the IBIC row that `rows` maps to it
/// (its highest level), the code left out; each need gets a goal `G<k>` of its own.
/// Codes no row maps keep their code.
pub fn to_ibic(set: &NeedsSet, rows: &[IbicRow]) -> NeedsSet {
    let mut out = set.clone();
    for (k, n) in out.needs.iter_mut().enumerate() {
        if let Some(r) = rows.iter().find(|r| r.code == n.code) {
            n.icf = Some(r.icf.clone());
            n.level = r.levels.iter().copied().max();
            n.support = r.support.clone();
            n.goal_id = Some(format!("G{}", k + 1));
            n.code.clear();
        }
    }
    out
}

/// Gives a simulated municipality written to `dir` its IBIC rows: `catalog.toml` gets
/// [`mapping`] as its `[[ibic]]` section, and `needs_ibic.jsonl` holds `needs.jsonl` with
/// every need rewritten by [`to_ibic`]. Returns the number of needs objects rewritten.
pub fn write_ibic(dir: &std::path::Path) -> Result<usize, String> {
    let path = dir.join("catalog.toml");
    let catalog = Catalog::load(&path).map_err(|e| e.to_string())?;
    let catalog = with_mapping(&catalog);
    std::fs::write(&path, catalog.to_toml()).map_err(|e| format!("{}: {e}", path.display()))?;
    let needs = dir.join("needs.jsonl");
    let bytes = std::fs::read(&needs).map_err(|e| format!("{}: {e}", needs.display()))?;
    let mut out = String::new();
    let mut n = 0;
    for (line, set) in ramtid_core::needs::parse_needs_file(&bytes).map_err(|e| e.to_string())? {
        let set = set.map_err(|e| format!("{}, line {line}: {e}", needs.display()))?;
        out.push_str(
            &serde_json::to_string(&to_ibic(&set, &catalog.ibic)).expect("needs serialize"),
        );
        out.push('\n');
        n += 1;
    }
    let target = dir.join("needs_ibic.jsonl");
    std::fs::write(&target, out).map_err(|e| format!("{}: {e}", target.display()))?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{catalog_for, Municipality};

    #[test]
    fn every_simulated_catalog_takes_its_mapping_and_rows_map_back() {
        for m in [Municipality::Nordstad, Municipality::Sjobygd] {
            let c = with_mapping(&catalog_for(m));
            let again = Catalog::from_toml(&c.to_toml(), "sim").unwrap();
            assert_eq!(again.ibic.len(), c.insatser.len());
            for i in &c.insatser {
                let r = c.ibic.iter().find(|r| r.code == i.code).unwrap();
                let level = *r.levels.iter().max().unwrap();
                let back = ramtid_core::ibic::lookup(&c.ibic, &r.icf, level, None).unwrap();
                assert_eq!(back.code, i.code);
            }
        }
    }
}
