//! One recipient's set of needs (data contract, section 3) and its validation against a
//! catalog. Validation collects every problem with the path of the field at fault
//! (`needs[3].per_week`), so that a CLI line or a gRPC call can report them all at once.

use crate::catalog::Catalog;
use crate::slot::Slot;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Most occasions per week a single need may ask for: eight a day. More is not a home-care
/// order but a data-entry error (or a care home).
pub const MAX_PER_WEEK: f64 = 56.0;

/// A needs object as it arrives (JSON line or gRPC request), before validation.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NeedsSet {
    #[serde(default)]
    pub recipient_id: String,
    #[serde(default)]
    pub context: serde_json::Map<String, serde_json::Value>,
    #[serde(default)]
    pub needs: Vec<Need>,
}

/// One need: an insats code, or an IBIC row (an ICF code with its assessed level and
/// optionally the kind of support) that the catalog's `[[ibic]]` mapping turns into a code,
/// or both (the code must then be the one the row maps to). See `training/IBIC.md`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Need {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub code: String,
    pub per_week: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slot: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub staff: Option<u32>,
    /// ICF activity code of the life area (`d510`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icf: Option<String>,
    /// Assessed level on the ICF scale: 0–4, 8 or 9.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<u32>,
    /// Kind of support, where the catalog's mapping distinguishes them (`partial`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub support: Option<String>,
    /// The goal of the decision this need serves, followed up later (pseudonymous, at most
    /// [`MAX_ID_LEN`] characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub goal_id: Option<String>,
}

/// What the assessor wrote for a need beside (or instead of) a code, kept so that the
/// answer names it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NeedWords {
    pub icf: Option<String>,
    pub level: Option<u32>,
    pub support: Option<String>,
    pub goal_id: Option<String>,
}

/// One problem with one field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldViolation {
    pub field: String,
    pub description: String,
}

impl fmt::Display for FieldViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.description)
    }
}

/// All problems with one needs object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NeedsError {
    pub violations: Vec<FieldViolation>,
}

impl fmt::Display for NeedsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.violations.iter().map(|v| v.to_string()).collect();
        f.write_str(&parts.join("; "))
    }
}

impl std::error::Error for NeedsError {}

/// A need that passed validation, with its code resolved to a catalog index.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidNeed {
    pub insats: usize,
    pub per_week: f64,
    pub slot: Option<Slot>,
    pub staff: u8,
    /// The IBIC row and goal the need was given with, if any (none for a bare code).
    pub words: Option<Box<NeedWords>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ValidNeeds {
    pub recipient_id: String,
    /// One value per catalog context variable, in catalog order.
    pub context: Vec<f64>,
    pub needs: Vec<ValidNeed>,
}

/// Longest recipient id accepted; ids are pseudonymous keys, not free text.
pub const MAX_ID_LEN: usize = 128;

impl NeedsSet {
    pub fn validate(&self, catalog: &Catalog) -> Result<ValidNeeds, NeedsError> {
        let mut v = Vec::new();
        let mut bad =
            |field: String, description: String| v.push(FieldViolation { field, description });
        if self.recipient_id.trim().is_empty() {
            bad("recipient_id".into(), "is required".into());
        } else if crate::personnummer::looks_like_personnummer(&self.recipient_id) {
            bad(
                "recipient_id".into(),
                "looks like a personnummer or samordningsnummer; ids must be pseudonymous".into(),
            );
        } else if self.recipient_id.len() > MAX_ID_LEN {
            bad(
                "recipient_id".into(),
                format!("is longer than {MAX_ID_LEN} characters"),
            );
        }
        let mut context = vec![f64::NAN; catalog.contexts.len()];
        for (key, value) in &self.context {
            match catalog.context_index(key) {
                Some(i) => match catalog.contexts[i]
                    .parse_json(value)
                    .and_then(|x| catalog.contexts[i].check_trained(x))
                {
                    Ok(x) => context[i] = x,
                    Err(e) => bad(format!("context.{key}"), e),
                },
                None => bad(
                    format!("context.{}", crate::echo::echo(key)),
                    format!(
                        "is not a context variable of this model's catalog (known: {})",
                        catalog
                            .contexts
                            .iter()
                            .map(|c| c.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ),
            }
        }
        for var in &catalog.contexts {
            if !self.context.contains_key(&var.name) {
                bad(
                    format!("context.{}", var.name),
                    format!("is required; expected {}", var.expected()),
                );
            }
        }
        if self.needs.is_empty() {
            bad("needs".into(), "must list at least one need".into());
        }
        let mut needs = Vec::with_capacity(self.needs.len());
        // Where each code was first asked for: a code twice would be merged by the planner
        // (three weekly showers in one slot plan as one), so a repeat is refused rather than
        // guessed at. One need per code carries all its occasions in `per_week`.
        let mut first_at: Vec<Option<usize>> = vec![None; catalog.insatser.len()];
        for (i, n) in self.needs.iter().enumerate() {
            let mut ok = true;
            let ibic = n.icf.is_some() || n.level.is_some() || n.support.is_some();
            let given = n.code.trim();
            let (code, code_field) = if ibic {
                let field = |f: &str| format!("needs[{i}].{f}");
                let icf = n.icf.as_deref().map(str::trim).unwrap_or("");
                match (icf.is_empty(), n.level) {
                    (true, _) => {
                        bad(
                            field("icf"),
                            "is required with level and support: the ICF code of the need (d510)"
                                .into(),
                        );
                        ("", "icf")
                    }
                    (false, None) => {
                        bad(
                            field("level"),
                            "is required with icf: the assessed level, 0–4, 8 or 9".into(),
                        );
                        ("", "level")
                    }
                    (false, Some(level)) => {
                        match crate::ibic::lookup(&catalog.ibic, icf, level, n.support.as_deref()) {
                            Err(u) => {
                                bad(field(u.field), u.description);
                                ("", u.field)
                            }
                            Ok(row) if !given.is_empty() && given != row.code => {
                                bad(
                                    field("code"),
                                    format!(
                                        "'{}' is given, but {} level {level} maps to {} in this model's catalog; give the code the row maps to, or only the row",
                                        crate::echo::echo(given),
                                        crate::echo::echo(icf),
                                        row.code
                                    ),
                                );
                                ("", "code")
                            }
                            Ok(row) => (row.code.as_str(), "level"),
                        }
                    }
                }
            } else {
                (given, "code")
            };
            // A linear scan: catalogs hold tens of codes, and building a map per call costs more.
            let insats = match catalog.insatser.iter().position(|i| i.code == code) {
                Some(k) if !code.is_empty() => k,
                _ => {
                    ok = false;
                    if !ibic {
                        bad(
                            format!("needs[{i}].code"),
                            if given.is_empty() {
                                "is required: an insats code, or icf and level".to_string()
                            } else {
                                format!(
                                    "'{}' is not an insats code in this model's catalog",
                                    crate::echo::echo(&n.code)
                                )
                            },
                        );
                    }
                    0
                }
            };
            if ok {
                match first_at[insats] {
                    Some(first) => {
                        ok = false;
                        bad(
                            format!("needs[{i}].{code_field}"),
                            format!(
                                "{} appears twice (needs[{first}]); give each code once, with all its occasions in per_week",
                                crate::echo::echo(code)
                            ),
                        );
                    }
                    None => first_at[insats] = Some(i),
                }
            }
            if let Some(goal) = &n.goal_id {
                let g = goal.trim();
                let problem = if g.is_empty() {
                    Some("is empty; leave it out or name the goal".to_string())
                } else if g.len() > MAX_ID_LEN {
                    Some(format!("is longer than {MAX_ID_LEN} characters"))
                } else if g.chars().any(|c| c.is_control() || c == ',') {
                    Some("must not contain control characters or ','".to_string())
                } else if crate::personnummer::looks_like_personnummer(g) {
                    Some("looks like a personnummer or samordningsnummer; goal ids must be pseudonymous".to_string())
                } else {
                    None
                };
                if let Some(p) = problem {
                    ok = false;
                    bad(format!("needs[{i}].goal_id"), p);
                }
            }
            if !n.per_week.is_finite() || n.per_week <= 0.0 || n.per_week > MAX_PER_WEEK {
                ok = false;
                bad(
                    format!("needs[{i}].per_week"),
                    format!(
                        "{} is not a frequency; expected occasions per week above 0 and at most {MAX_PER_WEEK}",
                        n.per_week
                    ),
                );
            }
            let slot = match n.slot.as_deref().map(str::trim) {
                None | Some("") => None,
                Some(s) => match s.parse::<Slot>() {
                    Ok(slot) => Some(slot),
                    Err(e) => {
                        ok = false;
                        bad(format!("needs[{i}].slot"), e);
                        None
                    }
                },
            };
            let staff = match n.staff {
                None | Some(0) | Some(1) => 1,
                Some(2) => 2,
                Some(other) => {
                    ok = false;
                    bad(
                        format!("needs[{i}].staff"),
                        format!("{other} staff is not supported; expected 1 or 2"),
                    );
                    1
                }
            };
            if ok {
                needs.push(ValidNeed {
                    insats,
                    per_week: n.per_week,
                    slot,
                    staff,
                    words: (ibic || n.goal_id.is_some()).then(|| {
                        Box::new(NeedWords {
                            icf: n.icf.as_ref().map(|s| s.trim().to_string()),
                            level: n.level,
                            support: n
                                .support
                                .as_ref()
                                .map(|s| s.trim().to_string())
                                .filter(|s| !s.is_empty()),
                            goal_id: n.goal_id.as_ref().map(|s| s.trim().to_string()),
                        })
                    }),
                });
            }
        }
        if v.is_empty() {
            Ok(ValidNeeds {
                recipient_id: self.recipient_id.clone(),
                context,
                needs,
            })
        } else {
            Err(NeedsError { violations: v })
        }
    }
}

/// A needs file (data contract, sections 3 and 4) that cannot be used at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NeedsFileError {
    #[error("holds no needs object (the file is empty or only blank lines)")]
    Empty,
}

/// A line of a needs file: its number (from 1) and its text, or why it has none.
pub type NeedsLine<'a> = (usize, Result<&'a str, String>);
/// A line of a needs file parsed: its number and the needs object, or why it is not one.
pub type ParsedNeedsLine = (usize, Result<NeedsSet, String>);

/// The lines of a needs file with their line numbers (from 1): a UTF-8 byte-order mark at
/// the start is skipped, `\r\n` line ends are accepted and blank lines are left out. A line
/// that is not valid UTF-8 is an error of that line alone (the others are still read); the
/// message gives the position of the first bad byte, never the bytes.
pub fn needs_lines(bytes: &[u8]) -> Result<Vec<NeedsLine<'_>>, NeedsFileError> {
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    let lines: Vec<NeedsLine<'_>> = bytes
        .split(|&b| b == b'\n')
        .enumerate()
        .map(|(i, line)| (i + 1, line.strip_suffix(b"\r").unwrap_or(line)))
        .filter(|(_, line)| !line.iter().all(u8::is_ascii_whitespace))
        .map(|(n, line)| {
            let text = std::str::from_utf8(line).map_err(|e| {
                format!(
                    "is not valid UTF-8 (byte {} of the line)",
                    e.valid_up_to() + 1
                )
            });
            (n, text)
        })
        .collect();
    if lines.is_empty() {
        return Err(NeedsFileError::Empty);
    }
    Ok(lines)
}

/// A needs file parsed: one needs object (possibly pretty-printed over many lines) or one
/// per line (`needs.jsonl`). Each entry is (line, the object or why the line is not one).
pub fn parse_needs_file(bytes: &[u8]) -> Result<Vec<ParsedNeedsLine>, NeedsFileError> {
    let lines = needs_lines(bytes)?;
    let body = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    if lines.len() > 1 {
        if let Ok(single) = serde_json::from_slice::<NeedsSet>(body) {
            return Ok(vec![(lines[0].0, Ok(single))]);
        }
    }
    Ok(lines
        .into_iter()
        .map(|(n, text)| {
            let set = text.and_then(|t| {
                serde_json::from_str::<NeedsSet>(t).map_err(|e| {
                    format!(
                        "not a needs object: {}",
                        crate::echo::echo_n(&e.to_string(), 240)
                    )
                })
            });
            (n, set)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog() -> Catalog {
        Catalog::from_toml(
            r#"
[[insats]]
code = "SHOWER"
category = "personal_care"
schablon_min = 30
[[context]]
name = "cognition"
kind = "ordinal"
levels = [0, 1, 2, 3]
[[context]]
name = "lives_alone"
kind = "boolean"
"#,
            "t",
        )
        .unwrap()
    }

    fn parse(json: &str) -> NeedsSet {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn a_good_needs_object_validates() {
        let n = parse(
            r#"{"recipient_id":"H-1","context":{"cognition":2,"lives_alone":true},
                "needs":[{"code":"SHOWER","per_week":1,"slot":"morning","staff":2}]}"#,
        );
        let v = n.validate(&catalog()).unwrap();
        assert_eq!(v.context, vec![2.0, 1.0]);
        assert_eq!(v.needs[0].slot, Some(Slot::Morning));
        assert_eq!(v.needs[0].staff, 2);
    }

    #[test]
    fn every_bad_field_is_named() {
        let n = parse(
            r#"{"recipient_id":"","context":{"cognition":7,"shoe_size":44},
                "needs":[{"code":"SHOWER","per_week":-1},{"code":"FLY","per_week":1,"slot":"dawn","staff":3},
                         {"code":"SHOWER","per_week":1000}]}"#,
        );
        let e = n.validate(&catalog()).unwrap_err();
        let fields: Vec<&str> = e.violations.iter().map(|v| v.field.as_str()).collect();
        for f in [
            "recipient_id",
            "context.cognition",
            "context.shoe_size",
            "context.lives_alone",
            "needs[0].per_week",
            "needs[1].code",
            "needs[1].slot",
            "needs[1].staff",
            "needs[2].per_week",
        ] {
            assert!(fields.contains(&f), "{f} missing from {fields:?}");
        }
    }

    #[test]
    fn a_personal_identity_number_is_refused_as_an_id() {
        let n = parse(
            r#"{"recipient_id":"19811218-9876","context":{"cognition":0,"lives_alone":false},"needs":[{"code":"SHOWER","per_week":1}]}"#,
        );
        let e = n.validate(&catalog()).unwrap_err();
        assert_eq!(e.violations[0].field, "recipient_id");
        assert!(e.violations[0].description.contains("pseudonymous"));
    }

    #[test]
    fn a_code_asked_for_twice_is_refused_with_both_places() {
        let n = parse(
            r#"{"recipient_id":"x","context":{"cognition":0,"lives_alone":false},
                "needs":[{"code":"SHOWER","per_week":1},{"code":"SHOWER","per_week":1,"slot":"evening"},
                         {"code":" SHOWER","per_week":1}]}"#,
        );
        let e = n.validate(&catalog()).unwrap_err();
        let text: Vec<String> = e.violations.iter().map(|v| v.to_string()).collect();
        assert_eq!(text.len(), 2, "{text:?}");
        assert!(
            text[0].starts_with("needs[1].code: SHOWER appears twice (needs[0])"),
            "{text:?}"
        );
        assert!(
            text[1].starts_with("needs[2].code: SHOWER appears twice (needs[0])"),
            "{text:?}"
        );
    }

    #[test]
    fn numeric_context_must_be_finite_and_within_the_trained_range() {
        let mut c = Catalog::from_toml(
            "[[insats]]\ncode='A'\ncategory='service'\nschablon_min=10\n[[context]]\nname='age'\nkind='numeric'\n",
            "t",
        )
        .unwrap();
        let set = |age: &str| {
            parse(&format!(
                r#"{{"recipient_id":"x","context":{{"age":{age}}},"needs":[{{"code":"A","per_week":1}}]}}"#
            ))
        };
        // No range known (a catalog, not a model): any finite number within ±1e9.
        assert!(set("1e6").validate(&c).is_ok());
        for bad in ["\"inf\"", "\"NaN\"", "1e300", "\"-1e10\""] {
            let e = set(bad).validate(&c).unwrap_err();
            assert_eq!(e.violations[0].field, "context.age", "{bad}");
        }
        c.contexts[0].trained = Some([65.0, 102.0]);
        let e = set("1e6").validate(&c).unwrap_err();
        assert_eq!(
            e.to_string(),
            "context.age: 1000000 is outside the range the model was trained on (65 to 102)"
        );
        assert!(set("65").validate(&c).is_ok());
        assert!(set("102").validate(&c).is_ok());
        assert!(set("\"64.5\"").validate(&c).is_err());
    }

    #[test]
    fn a_needs_file_may_start_with_a_bom_and_a_bad_line_fails_alone() {
        let good = r#"{"recipient_id":"x","context":{},"needs":[{"code":"A","per_week":1}]}"#;
        let mut bytes = b"\xef\xbb\xbf".to_vec();
        bytes.extend_from_slice(good.as_bytes());
        bytes.extend_from_slice(b"\r\n\n");
        bytes.extend_from_slice(b"{\"recipient_id\":\"\xff\"}");
        bytes.extend_from_slice(b"\n");
        bytes.extend_from_slice(good.as_bytes());
        let lines = parse_needs_file(&bytes).unwrap();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0].0, 1);
        assert!(lines[0].1.is_ok(), "{:?}", lines[0]);
        assert_eq!(lines[1].0, 3);
        let e = lines[1].1.as_ref().unwrap_err();
        assert!(e.contains("not valid UTF-8 (byte 18 of the line)"), "{e}");
        assert!(lines[2].1.is_ok());
        // A pretty-printed single object behind a BOM.
        let mut pretty = b"\xef\xbb\xbf".to_vec();
        pretty.extend_from_slice(b"{\n  \"recipient_id\": \"x\",\n  \"needs\": []\n}\n");
        let one = parse_needs_file(&pretty).unwrap();
        assert_eq!(one.len(), 1);
        assert!(one[0].1.is_ok());
    }

    #[test]
    fn an_empty_needs_file_is_an_error() {
        for empty in [&b""[..], b"\n\n", b"\xef\xbb\xbf", b"  \r\n"] {
            assert_eq!(parse_needs_file(empty).unwrap_err(), NeedsFileError::Empty);
        }
    }

    fn ibic_catalog() -> Catalog {
        Catalog::from_toml(
            r#"
[[insats]]
code = "SHOWER"
category = "personal_care"
schablon_min = 30
[[insats]]
code = "SHOWER_FULL"
category = "personal_care"
schablon_min = 45
[[ibic]]
icf = "d510"
levels = [1, 2]
code = "SHOWER"
[[ibic]]
icf = "d510"
levels = [3, 4]
code = "SHOWER_FULL"
[[ibic]]
icf = "d510"
levels = [3]
support = "partial"
code = "SHOWER"
"#,
            "t",
        )
        .unwrap()
    }

    fn ibic_set(needs: &str) -> NeedsSet {
        parse(&format!(
            r#"{{"recipient_id":"x","context":{{}},"needs":[{needs}]}}"#
        ))
    }

    #[test]
    fn an_ibic_row_maps_to_its_code_and_keeps_the_words() {
        let c = ibic_catalog();
        let v = ibic_set(
            r#"{"icf":"d510","level":3,"support":"partial","per_week":7,"slot":"morning","staff":1,"goal_id":"G1"}"#,
        )
        .validate(&c)
        .unwrap();
        assert_eq!(v.needs[0].insats, 0);
        let w = v.needs[0].words.as_deref().unwrap();
        assert_eq!(w.icf.as_deref(), Some("d510"));
        assert_eq!(w.level, Some(3));
        assert_eq!(w.support.as_deref(), Some("partial"));
        assert_eq!(w.goal_id.as_deref(), Some("G1"));
        let v = ibic_set(r#"{"icf":"d510","level":4,"per_week":1}"#)
            .validate(&c)
            .unwrap();
        assert_eq!(v.needs[0].insats, 1);
        // Beside the code it maps to: accepted; a bare code carries no words.
        let v = ibic_set(
            r#"{"code":"SHOWER_FULL","icf":"d510","level":3,"per_week":1},{"code":"SHOWER","per_week":1}"#,
        )
        .validate(&c)
        .unwrap();
        assert_eq!(v.needs[0].insats, 1);
        assert!(v.needs[1].words.is_none());
    }

    #[test]
    fn an_ibic_row_that_does_not_map_names_the_need_and_the_field() {
        let c = ibic_catalog();
        let e = ibic_set(
            r#"{"icf":"d540","level":3,"per_week":1},
               {"icf":"d510","level":0,"per_week":1},
               {"icf":"d510","level":5,"per_week":1},
               {"icf":"510","level":3,"per_week":1},
               {"icf":"d510","per_week":1},
               {"level":3,"per_week":1},
               {"code":"SHOWER","icf":"d510","level":4,"per_week":1},
               {"per_week":1},
               {"code":"SHOWER","per_week":1,"goal_id":" "}"#,
        )
        .validate(&c)
        .unwrap_err();
        let fields: Vec<&str> = e.violations.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "needs[0].icf",
                "needs[1].level",
                "needs[2].level",
                "needs[3].icf",
                "needs[4].level",
                "needs[5].icf",
                "needs[6].code",
                "needs[7].code",
                "needs[8].goal_id"
            ],
            "{e}"
        );
        assert!(e.violations[1].description.contains("no difficulty"), "{e}");
        assert!(
            e.violations[6].description.contains("maps to SHOWER_FULL"),
            "{e}"
        );
        // Two rows that become the same code are the same code twice.
        let e = ibic_set(
            r#"{"icf":"d510","level":2,"per_week":1},{"icf":"d510","level":3,"support":"partial","per_week":1}"#,
        )
        .validate(&c)
        .unwrap_err();
        assert_eq!(e.violations[0].field, "needs[1].level");
        assert!(e.violations[0]
            .description
            .contains("SHOWER appears twice (needs[0])"));
        // A catalog without a mapping maps nothing.
        let e = ibic_set(r#"{"icf":"d510","level":3,"per_week":1}"#)
            .validate(&catalog())
            .unwrap_err();
        assert!(
            e.violations
                .iter()
                .any(|v| v.field == "needs[0].icf" && v.description.contains("not mapped")),
            "{e}"
        );
    }

    #[test]
    fn ibic_fields_round_trip_through_json() {
        let set =
            ibic_set(r#"{"icf":"d510","level":3,"support":"partial","per_week":7,"goal_id":"G1"}"#);
        let text = serde_json::to_string(&set).unwrap();
        assert!(!text.contains("\"code\""), "{text}");
        assert_eq!(serde_json::from_str::<NeedsSet>(&text).unwrap(), set);
    }

    #[test]
    fn empty_needs_are_refused() {
        let n = parse(
            r#"{"recipient_id":"x","context":{"cognition":0,"lives_alone":false},"needs":[]}"#,
        );
        let e = n.validate(&catalog()).unwrap_err();
        assert_eq!(e.violations[0].field, "needs");
    }
}
