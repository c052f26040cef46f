//! Needs as needs assessors document them (IBIC, Socialstyrelsen's model): an ICF code of a
//! life area (`d510` washing oneself, `d540` dressing, `d630` preparing meals ...) with an
//! assessed level on the ICF qualifier scale, mapped by the catalog's `[[ibic]]` rows to the
//! insats codes the model knows. See `training/IBIC.md`.
//!
//! The mapping is checked when the catalog loads: every row names a code of the catalog, an
//! ICF activity code (`d` and 3 to 5 digits) and levels of the ICF scale; no two rows cover
//! the same (icf, level, support); and the levels 1–4 an (icf, support) maps leave no level
//! uncovered between the lowest and the highest of them. Levels 0 (no difficulty),
//! 8 (not specified) and 9 (not applicable) may be mapped or not: unmapped they mean "no
//! insats", and a need asking for them is refused naming the field.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Levels of the ICF qualifier scale: 0 none, 1 mild, 2 moderate, 3 severe, 4 complete,
/// 8 not specified, 9 not applicable.
pub const LEVELS: [u32; 7] = [0, 1, 2, 3, 4, 8, 9];

/// Kinds of support a row or a need may name (data contract, section 5).
pub const SUPPORTS: [&str; 4] = ["guidance", "partial", "full", "passive"];

/// One `[[ibic]]` row of the catalog: the levels of an ICF code (with an optional kind of
/// support) that become one insats code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IbicRow {
    pub icf: String,
    pub levels: Vec<u32>,
    /// Distinguishes rows of the same ICF code and level (`partial`, `full`, `guidance` ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub support: Option<String>,
    pub code: String,
}

/// What the level means, for messages.
pub fn level_name(level: u32) -> &'static str {
    match level {
        0 => "no difficulty",
        1 => "mild difficulty",
        2 => "moderate difficulty",
        3 => "severe difficulty",
        4 => "complete difficulty",
        8 => "not specified",
        9 => "not applicable",
        _ => "not an ICF level",
    }
}

/// Whether `s` is an ICF activity and participation code: `d` and 3 to 5 digits (`d510`,
/// `d6402`). Body functions (b), structures (s) and environmental factors (e) are not
/// needs an insats answers, and are refused.
pub fn is_icf_code(s: &str) -> bool {
    let Some(digits) = s.strip_prefix('d') else {
        return false;
    };
    (3..=5).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit())
}

fn support_key(s: &Option<String>) -> &str {
    s.as_deref().unwrap_or("")
}

fn describe(icf: &str, support: &str) -> String {
    if support.is_empty() {
        crate::echo::echo(icf)
    } else {
        format!(
            "{} (support '{}')",
            crate::echo::echo(icf),
            crate::echo::echo(support)
        )
    }
}

/// Checks a catalog's mapping against its codes. The error is (entry, message), the entry a
/// field path such as `ibic[3].levels` (rows counted from 0, as needs are).
pub fn validate(rows: &[IbicRow], codes: &[&str]) -> Result<(), (String, String)> {
    use crate::echo::echo;
    // (icf, support, level) -> the row covering it.
    let mut covered: BTreeMap<(&str, &str, u32), usize> = BTreeMap::new();
    for (i, r) in rows.iter().enumerate() {
        if !is_icf_code(&r.icf) {
            return Err((
                format!("ibic[{i}].icf"),
                format!(
                    "'{}' is not an ICF activity code; expected 'd' and 3 to 5 digits (d510, d6402)",
                    echo(&r.icf)
                ),
            ));
        }
        if !codes.contains(&r.code.as_str()) {
            return Err((
                format!("ibic[{i}].code"),
                format!("'{}' is not an insats code of this catalog", echo(&r.code)),
            ));
        }
        if let Some(s) = &r.support {
            if !SUPPORTS.contains(&s.as_str()) {
                return Err((
                    format!("ibic[{i}].support"),
                    format!(
                        "'{}' is not a kind of support; expected one of {}",
                        echo(s),
                        SUPPORTS.join(", ")
                    ),
                ));
            }
        }
        if r.levels.is_empty() {
            return Err((
                format!("ibic[{i}].levels"),
                "lists no level; expected levels of the ICF scale 0–4, 8 or 9".into(),
            ));
        }
        for (k, &level) in r.levels.iter().enumerate() {
            if !LEVELS.contains(&level) {
                return Err((
                    format!("ibic[{i}].levels"),
                    format!("{level} is not an ICF level; expected 0–4, 8 or 9"),
                ));
            }
            if r.levels[..k].contains(&level) {
                return Err((
                    format!("ibic[{i}].levels"),
                    format!("level {level} is listed twice"),
                ));
            }
            let key = (r.icf.as_str(), support_key(&r.support), level);
            if let Some(first) = covered.insert(key, i) {
                return Err((
                    format!("ibic[{i}].levels"),
                    format!(
                        "overlap: level {level} of {} is already mapped by ibic[{first}]",
                        describe(&r.icf, support_key(&r.support))
                    ),
                ));
            }
        }
    }
    // Gaps: per (icf, support), the levels 1–4 mapped must run without a hole.
    let mut groups: BTreeMap<(&str, &str), Vec<(u32, usize)>> = BTreeMap::new();
    for (&(icf, support, level), &row) in &covered {
        if (1..=4).contains(&level) {
            groups.entry((icf, support)).or_default().push((level, row));
        }
    }
    for ((icf, support), levels) in groups {
        // BTreeMap order: levels ascend within a group.
        for w in levels.windows(2) {
            if w[1].0 > w[0].0 + 1 {
                let missing: Vec<String> = (w[0].0 + 1..w[1].0).map(|l| l.to_string()).collect();
                let row = w[0].1.max(w[1].1);
                return Err((
                    format!("ibic[{row}].levels"),
                    format!(
                        "gap: {} maps levels {} and {} but not {}; every level between the lowest and the highest mapped must map to a code",
                        describe(icf, support),
                        w[0].0,
                        w[1].0,
                        missing.join(", ")
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Why an IBIC need does not map; the field is `icf`, `level` or `support`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unmapped {
    pub field: &'static str,
    pub description: String,
}

/// The catalog row an (icf, level, support) need maps to: the row with that support, or
/// else the row without a support (the ICF code's general mapping).
pub fn lookup<'a>(
    rows: &'a [IbicRow],
    icf: &str,
    level: u32,
    support: Option<&str>,
) -> Result<&'a IbicRow, Unmapped> {
    use crate::echo::echo;
    let support = support.map(str::trim).filter(|s| !s.is_empty());
    if !is_icf_code(icf) {
        return Err(Unmapped {
            field: "icf",
            description: format!(
                "'{}' is not an ICF activity code; expected 'd' and 3 to 5 digits (d510, d6402)",
                echo(icf)
            ),
        });
    }
    if !LEVELS.contains(&level) {
        return Err(Unmapped {
            field: "level",
            description: format!("{level} is not an ICF level; expected 0–4, 8 or 9"),
        });
    }
    if let Some(s) = support.filter(|s| !SUPPORTS.contains(s)) {
        return Err(Unmapped {
            field: "support",
            description: format!(
                "'{}' is not a kind of support; expected one of {}",
                echo(s),
                SUPPORTS.join(", ")
            ),
        });
    }
    let of_code: Vec<&IbicRow> = rows.iter().filter(|r| r.icf == icf).collect();
    if of_code.is_empty() {
        return Err(Unmapped {
            field: "icf",
            description: format!(
                "{} is not mapped to an insats code in this model's catalog",
                echo(icf)
            ),
        });
    }
    let at_level = |s: Option<&str>| {
        of_code
            .iter()
            .find(|r| r.support.as_deref() == s && r.levels.contains(&level))
            .copied()
    };
    if let Some(r) = support
        .and_then(|s| at_level(Some(s)))
        .or_else(|| at_level(None))
    {
        return Ok(r);
    }
    let supports: Vec<&str> = of_code
        .iter()
        .filter(|r| r.levels.contains(&level))
        .filter_map(|r| r.support.as_deref())
        .collect();
    if !supports.is_empty() {
        let mut supports = supports;
        supports.sort_unstable();
        supports.dedup();
        return Err(Unmapped {
            field: "support",
            description: match support {
                None => format!(
                    "is required for {} level {level}: expected one of {}",
                    echo(icf),
                    supports.join(", ")
                ),
                Some(s) => format!(
                    "'{}' is not a support mapped for {} level {level}: expected one of {}",
                    echo(s),
                    echo(icf),
                    supports.join(", ")
                ),
            },
        });
    }
    let mut mapped: Vec<u32> = of_code
        .iter()
        .flat_map(|r| r.levels.iter().copied())
        .collect();
    mapped.sort_unstable();
    mapped.dedup();
    Err(Unmapped {
        field: "level",
        description: format!(
            "{} level {level} ({}) maps to no insats code in this model's catalog (mapped levels: {})",
            echo(icf),
            level_name(level),
            mapped
                .iter()
                .map(|l| l.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    })
}

/// The `[[ibic]]` tables of a catalog's TOML text.
pub fn to_toml(rows: &[IbicRow]) -> String {
    let s = |v: &str| toml::Value::String(v.to_string()).to_string();
    let mut out = String::new();
    for r in rows {
        out.push_str(&format!(
            "[[ibic]]\nicf = {}\nlevels = [{}]\n",
            s(&r.icf),
            r.levels
                .iter()
                .map(|l| l.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ));
        if let Some(sup) = &r.support {
            out.push_str(&format!("support = {}\n", s(sup)));
        }
        out.push_str(&format!("code = {}\n\n", s(&r.code)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Catalog;

    const CODES: &str = r#"
[[insats]]
code = "SHOWER_PARTIAL"
category = "personal_care"
schablon_min = 25
[[insats]]
code = "SHOWER_FULL"
category = "personal_care"
schablon_min = 40
[[insats]]
code = "DRESSING"
category = "personal_care"
schablon_min = 10
"#;

    const MAPPING: &str = r#"
[[ibic]]
icf = "d510"
levels = [1, 2]
code = "SHOWER_PARTIAL"
[[ibic]]
icf = "d510"
levels = [3, 4]
code = "SHOWER_FULL"
[[ibic]]
icf = "d510"
levels = [3]
support = "partial"
code = "SHOWER_PARTIAL"
[[ibic]]
icf = "d540"
levels = [2, 3, 4]
code = "DRESSING"
"#;

    fn refusal(mapping: &str) -> String {
        Catalog::from_toml(&format!("{CODES}{mapping}"), "c.toml")
            .unwrap_err()
            .to_string()
    }

    fn row(icf: &str, levels: &str, code: &str) -> String {
        format!("[[ibic]]\nicf = \"{icf}\"\nlevels = [{levels}]\ncode = \"{code}\"\n")
    }

    #[test]
    fn a_mapping_loads_round_trips_and_changes_the_fingerprint() {
        let c = Catalog::from_toml(&format!("{CODES}{MAPPING}"), "c.toml").unwrap();
        assert_eq!(c.ibic.len(), 4);
        assert_eq!(c.ibic[2].support.as_deref(), Some("partial"));
        let again = Catalog::from_toml(&c.to_toml(), "again").unwrap();
        assert_eq!(c, again);
        assert_eq!(c.fingerprint(), again.fingerprint());
        let without = Catalog::from_toml(CODES, "c.toml").unwrap();
        assert_ne!(c.fingerprint(), without.fingerprint());
        let mut other = c.clone();
        other.ibic[3].levels = vec![2, 3];
        assert_ne!(c.fingerprint(), other.fingerprint());
        // A catalog without a mapping keeps the fingerprint it had before mappings existed.
        assert!(!serde_json::to_string(&without).unwrap().contains("ibic"));
    }

    #[test]
    fn an_unknown_code_is_named_with_its_row() {
        let e = refusal(&format!("{MAPPING}{}", row("d630", "2, 3", "MEALS")));
        assert!(
            e.contains("ibic[4].code") && e.contains("'MEALS' is not an insats code"),
            "{e}"
        );
    }

    #[test]
    fn a_malformed_icf_code_is_refused() {
        for bad in ["510", "D510", "d51", "d510000", "b130", "d51x", "d 510", ""] {
            let e = refusal(&row(bad, "3", "DRESSING"));
            assert!(
                e.contains("ibic[0].icf") && e.contains("not an ICF activity code"),
                "{bad}: {e}"
            );
        }
        for good in ["d510", "d6402", "d64020"] {
            assert!(is_icf_code(good), "{good}");
        }
    }

    #[test]
    fn a_level_outside_the_icf_scale_is_refused() {
        for bad in ["5", "7", "10"] {
            let e = refusal(&format!("{MAPPING}{}", row("d630", bad, "DRESSING")));
            assert!(
                e.contains("ibic[4].levels") && e.contains("is not an ICF level"),
                "{bad}: {e}"
            );
        }
        let e = refusal(&row("d630", "", "DRESSING"));
        assert!(
            e.contains("ibic[0].levels") && e.contains("no level"),
            "{e}"
        );
        let e = refusal(&row("d630", "2, 2", "DRESSING"));
        assert!(e.contains("listed twice"), "{e}");
        // A negative level is not a level either (refused by the parser, naming the line).
        let e = refusal(&row("d630", "-1", "DRESSING"));
        assert!(e.contains("c.toml"), "{e}");
        // 0, 8 and 9 may be mapped.
        let ok = format!("{CODES}{}", row("d630", "0, 8, 9", "DRESSING"));
        assert!(Catalog::from_toml(&ok, "c.toml").is_ok());
    }

    #[test]
    fn an_overlap_names_both_rows() {
        let e = refusal(&format!("{MAPPING}{}", row("d510", "4", "DRESSING")));
        assert!(
            e.contains("ibic[4].levels")
                && e.contains("overlap: level 4 of d510 is already mapped by ibic[1]"),
            "{e}"
        );
        // The same level with a support of its own is no overlap; twice with it is.
        let e = refusal(&format!(
            "{MAPPING}[[ibic]]\nicf='d510'\nlevels=[3]\nsupport='partial'\ncode='SHOWER_FULL'\n"
        ));
        assert!(
            e.contains("ibic[4].levels")
                && e.contains("(support 'partial')")
                && e.contains("ibic[2]"),
            "{e}"
        );
    }

    #[test]
    fn a_gap_between_mapped_levels_is_refused() {
        let e = refusal(&format!(
            "{}{}",
            row("d630", "1", "DRESSING"),
            row("d630", "3, 4", "DRESSING")
        ));
        assert!(
            e.contains("ibic[1].levels") && e.contains("gap: d630 maps levels 1 and 3 but not 2"),
            "{e}"
        );
        let e = refusal(&row("d630", "1, 4", "DRESSING"));
        assert!(e.contains("but not 2, 3"), "{e}");
        // Levels 0, 8 and 9 never open a gap; nor does a range that starts above 1.
        let ok = format!(
            "{CODES}{}{}",
            row("d630", "0, 3", "DRESSING"),
            row("d630", "4, 9", "SHOWER_FULL")
        );
        assert!(Catalog::from_toml(&ok, "c.toml").is_ok());
        // A gap within one support's rows.
        let e = refusal(&format!(
            "{MAPPING}[[ibic]]\nicf='d540'\nlevels=[1, 4]\nsupport='guidance'\ncode='DRESSING'\n"
        ));
        assert!(e.contains("gap: d540 (support 'guidance')"), "{e}");
    }

    #[test]
    fn a_bad_support_is_refused() {
        for bad in [" ", "some", "Partial"] {
            let e = refusal(&format!(
                "[[ibic]]\nicf='d510'\nlevels=[3]\nsupport='{bad}'\ncode='DRESSING'\n"
            ));
            assert!(
                e.contains("ibic[0].support") && e.contains("not a kind of support"),
                "{e}"
            );
        }
    }

    #[test]
    fn unknown_keys_in_a_row_are_refused() {
        let e = refusal("[[ibic]]\nicf='d510'\nlevel=[3]\ncode='DRESSING'\n");
        assert!(e.contains("unknown field `level`"), "{e}");
    }

    #[test]
    fn lookup_maps_and_names_the_field_that_does_not() {
        let c = Catalog::from_toml(&format!("{CODES}{MAPPING}"), "c.toml").unwrap();
        let m = &c.ibic;
        assert_eq!(lookup(m, "d510", 3, None).unwrap().code, "SHOWER_FULL");
        assert_eq!(
            lookup(m, "d510", 3, Some("partial")).unwrap().code,
            "SHOWER_PARTIAL"
        );
        // A support without a row of its own falls back to the code's general row.
        assert_eq!(
            lookup(m, "d510", 4, Some("partial")).unwrap().code,
            "SHOWER_FULL"
        );
        assert_eq!(lookup(m, "d510", 1, None).unwrap().code, "SHOWER_PARTIAL");
        let e = lookup(m, "d630", 3, None).unwrap_err();
        assert_eq!(e.field, "icf");
        let e = lookup(m, "x1", 3, None).unwrap_err();
        assert_eq!(e.field, "icf");
        let e = lookup(m, "d540", 1, None).unwrap_err();
        assert_eq!(e.field, "level");
        assert!(e.description.contains("mapped levels: 2, 3, 4"), "{e:?}");
        let e = lookup(m, "d540", 0, None).unwrap_err();
        assert_eq!(e.field, "level");
        assert!(e.description.contains("no difficulty"), "{e:?}");
        let e = lookup(m, "d540", 6, None).unwrap_err();
        assert_eq!(e.field, "level");
        assert!(e.description.contains("not an ICF level"), "{e:?}");
        // Only supported rows at this level: the support is required.
        let only = vec![IbicRow {
            icf: "d510".into(),
            levels: vec![3],
            support: Some("full".into()),
            code: "SHOWER_FULL".into(),
        }];
        let e = lookup(&only, "d510", 3, None).unwrap_err();
        assert_eq!(e.field, "support");
        assert!(e.description.contains("one of full"), "{e:?}");
        let e = lookup(&only, "d510", 3, Some("guidance")).unwrap_err();
        assert_eq!(e.field, "support");
        assert!(e.description.contains("not a support mapped"), "{e:?}");
        let e = lookup(&only, "d510", 3, Some("lots")).unwrap_err();
        assert_eq!(e.field, "support");
        assert!(e.description.contains("not a kind of support"), "{e:?}");
    }
}
