//! The municipality's catalog (`catalog.toml`): insats codes with their schablon minutes, and
//! the context variables the model may use. See `shared/spec/data-contract.md`, section 2.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum CatalogError {
    #[error("cannot read catalog {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("catalog {path}: {message}")]
    Parse { path: String, message: String },
    #[error("catalog {path}: {entry}: {message}")]
    Invalid {
        path: String,
        entry: String,
        message: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    PersonalCare,
    Service,
    Supervision,
    Other,
}

impl Category {
    pub fn as_str(self) -> &'static str {
        match self {
            Category::PersonalCare => "personal_care",
            Category::Service => "service",
            Category::Supervision => "supervision",
            Category::Other => "other",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Insats {
    pub code: String,
    pub name: String,
    pub category: Category,
    pub schablon_min: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContextKind {
    Numeric,
    Ordinal,
    Boolean,
    Categorical,
}

/// One context variable. Values are held as `f64` everywhere: numeric and ordinal values as
/// themselves, booleans as 0/1 and categorical labels as the index of the label in `labels`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContextVar {
    pub name: String,
    pub kind: ContextKind,
    /// Ordinal: the allowed values, ascending.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ordinal_levels: Vec<f64>,
    /// Categorical: the allowed labels.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<String>,
    /// Numeric: optional bounds; values outside are refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
}

impl ContextVar {
    /// The CSV column that carries this variable in `visits.csv`.
    pub fn column(&self) -> String {
        format!("ctx_{}", self.name)
    }

    /// What a valid value looks like, for error messages.
    pub fn expected(&self) -> String {
        match self.kind {
            ContextKind::Numeric => match (self.min, self.max) {
                (Some(lo), Some(hi)) => format!("a number from {lo} to {hi}"),
                (Some(lo), None) => format!("a number ≥ {lo}"),
                (None, Some(hi)) => format!("a number ≤ {hi}"),
                (None, None) => "a number".to_string(),
            },
            ContextKind::Ordinal => format!(
                "one of {}",
                self.ordinal_levels
                    .iter()
                    .map(|l| l.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            ContextKind::Boolean => "true or false".to_string(),
            ContextKind::Categorical => format!("one of {}", self.labels.join(", ")),
        }
    }

    pub(crate) fn check_number(&self, x: f64) -> Result<f64, String> {
        if !x.is_finite() {
            return Err(format!("not a finite number; expected {}", self.expected()));
        }
        match self.kind {
            ContextKind::Numeric => {
                if self.min.is_some_and(|lo| x < lo) || self.max.is_some_and(|hi| x > hi) {
                    return Err(format!("{x} is out of range; expected {}", self.expected()));
                }
                Ok(x)
            }
            ContextKind::Ordinal => {
                if self.ordinal_levels.iter().any(|l| (*l - x).abs() < 1e-9) {
                    Ok(x)
                } else {
                    Err(format!("{x} is not a level; expected {}", self.expected()))
                }
            }
            ContextKind::Boolean if x == 0.0 || x == 1.0 => Ok(x),
            ContextKind::Boolean => Err(format!(
                "{x} is not a boolean; expected {}",
                self.expected()
            )),
            ContextKind::Categorical => Err(format!("expected {}", self.expected())),
        }
    }

    /// Parses a value as written in a CSV cell.
    pub fn parse_str(&self, raw: &str) -> Result<f64, String> {
        let s = raw.trim();
        if s.is_empty() {
            return Err(format!("is empty; expected {}", self.expected()));
        }
        match self.kind {
            ContextKind::Boolean => match s.to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" | "ja" | "t" => Ok(1.0),
                "false" | "0" | "no" | "nej" | "f" => Ok(0.0),
                _ => Err(format!(
                    "'{s}' is not a boolean; expected {}",
                    self.expected()
                )),
            },
            ContextKind::Categorical => self.label_index(s),
            ContextKind::Numeric | ContextKind::Ordinal => match s.parse::<f64>() {
                Ok(x) => self.check_number(x),
                Err(_) => Err(format!(
                    "'{s}' is not a number; expected {}",
                    self.expected()
                )),
            },
        }
    }

    /// Parses a value as sent in a needs object (JSON).
    pub fn parse_json(&self, v: &serde_json::Value) -> Result<f64, String> {
        use serde_json::Value;
        match (self.kind, v) {
            (ContextKind::Boolean, Value::Bool(b)) => Ok(if *b { 1.0 } else { 0.0 }),
            (ContextKind::Categorical, Value::String(s)) => self.label_index(s),
            (_, Value::Number(n)) => self.check_number(n.as_f64().unwrap_or(f64::NAN)),
            (_, Value::String(s)) => self.parse_str(s),
            (_, other) => Err(format!(
                "{other} is not valid; expected {}",
                self.expected()
            )),
        }
    }

    fn label_index(&self, s: &str) -> Result<f64, String> {
        self.labels
            .iter()
            .position(|l| l == s)
            .map(|i| i as f64)
            .ok_or_else(|| format!("'{s}' is not a known label; expected {}", self.expected()))
    }

    /// Label or number as a person reads it, for reports.
    pub fn display_value(&self, x: f64) -> String {
        match self.kind {
            ContextKind::Categorical => self
                .labels
                .get(x as usize)
                .cloned()
                .unwrap_or_else(|| x.to_string()),
            ContextKind::Boolean => (x != 0.0).to_string(),
            _ => x.to_string(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Catalog {
    pub insatser: Vec<Insats>,
    pub contexts: Vec<ContextVar>,
}

#[derive(Deserialize)]
struct RawCatalog {
    #[serde(default)]
    insats: Vec<RawInsats>,
    #[serde(default)]
    context: Vec<RawContext>,
}

#[derive(Deserialize)]
struct RawInsats {
    code: String,
    #[serde(default)]
    name: Option<String>,
    category: Category,
    schablon_min: f64,
}

#[derive(Deserialize)]
struct RawContext {
    name: String,
    kind: ContextKind,
    #[serde(default)]
    levels: Vec<toml::Value>,
    #[serde(default)]
    min: Option<f64>,
    #[serde(default)]
    max: Option<f64>,
}

impl Catalog {
    pub fn load(path: &Path) -> Result<Catalog, CatalogError> {
        let text = std::fs::read_to_string(path).map_err(|source| CatalogError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Catalog::from_toml(&text, &path.display().to_string())
    }

    /// Parses and validates a catalog. `origin` names the file in error messages.
    pub fn from_toml(text: &str, origin: &str) -> Result<Catalog, CatalogError> {
        let raw: RawCatalog = toml::from_str(text).map_err(|e| CatalogError::Parse {
            path: origin.to_string(),
            message: e.to_string(),
        })?;
        let invalid = |entry: String, message: String| CatalogError::Invalid {
            path: origin.to_string(),
            entry,
            message,
        };
        if raw.insats.is_empty() {
            return Err(invalid(
                "[[insats]]".into(),
                "the catalog defines no insats codes".into(),
            ));
        }
        let mut insatser = Vec::with_capacity(raw.insats.len());
        let mut seen = HashMap::new();
        for (i, r) in raw.insats.into_iter().enumerate() {
            let entry = format!("insats #{} ({})", i + 1, r.code);
            let code = r.code.trim().to_string();
            if code.is_empty() || code.contains('|') || code.contains(',') {
                return Err(invalid(
                    entry,
                    "code must be non-empty and contain neither '|' nor ','".into(),
                ));
            }
            if seen.insert(code.clone(), i).is_some() {
                return Err(invalid(entry, format!("code '{code}' is defined twice")));
            }
            if !r.schablon_min.is_finite() || r.schablon_min < 0.0 || r.schablon_min > 24.0 * 60.0 {
                return Err(invalid(
                    entry,
                    format!(
                        "schablon_min {} must be between 0 and 1440 minutes",
                        r.schablon_min
                    ),
                ));
            }
            insatser.push(Insats {
                name: r.name.unwrap_or_else(|| code.clone()),
                code,
                category: r.category,
                schablon_min: r.schablon_min,
            });
        }
        let mut contexts = Vec::with_capacity(raw.context.len());
        for (i, r) in raw.context.into_iter().enumerate() {
            let entry = format!("context #{} ({})", i + 1, r.name);
            let name = r.name.trim().to_string();
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(invalid(
                    entry,
                    "name must be non-empty ASCII letters, digits or '_'".into(),
                ));
            }
            if contexts.iter().any(|c: &ContextVar| c.name == name) {
                return Err(invalid(entry, format!("context '{name}' is defined twice")));
            }
            let mut var = ContextVar {
                name,
                kind: r.kind,
                ordinal_levels: Vec::new(),
                labels: Vec::new(),
                min: r.min,
                max: r.max,
            };
            match r.kind {
                ContextKind::Ordinal => {
                    for l in &r.levels {
                        let x = match l {
                            toml::Value::Integer(n) => *n as f64,
                            toml::Value::Float(f) => *f,
                            other => {
                                return Err(invalid(
                                    entry,
                                    format!("ordinal level {other} is not a number"),
                                ))
                            }
                        };
                        var.ordinal_levels.push(x);
                    }
                    if var.ordinal_levels.len() < 2 {
                        return Err(invalid(
                            entry,
                            "an ordinal needs at least two levels".into(),
                        ));
                    }
                    if var.ordinal_levels.windows(2).any(|w| w[0] >= w[1]) {
                        return Err(invalid(entry, "ordinal levels must ascend".into()));
                    }
                }
                ContextKind::Categorical => {
                    for l in &r.levels {
                        match l {
                            toml::Value::String(s) => var.labels.push(s.clone()),
                            other => {
                                return Err(invalid(
                                    entry,
                                    format!("categorical level {other} is not a string"),
                                ))
                            }
                        }
                    }
                    if var.labels.len() < 2 {
                        return Err(invalid(
                            entry,
                            "a categorical needs at least two labels".into(),
                        ));
                    }
                }
                ContextKind::Numeric | ContextKind::Boolean => {
                    if !r.levels.is_empty() {
                        return Err(invalid(
                            entry,
                            "levels are only for ordinal and categorical variables".into(),
                        ));
                    }
                }
            }
            contexts.push(var);
        }
        Ok(Catalog { insatser, contexts })
    }

    /// Writes the catalog in the data contract's TOML shape.
    pub fn to_toml(&self) -> String {
        let mut out = String::new();
        for i in &self.insatser {
            out.push_str(&format!(
                "[[insats]]\ncode = {:?}\nname = {:?}\ncategory = {:?}\nschablon_min = {}\n\n",
                i.code,
                i.name,
                i.category.as_str(),
                i.schablon_min
            ));
        }
        for c in &self.contexts {
            let kind = match c.kind {
                ContextKind::Numeric => "numeric",
                ContextKind::Ordinal => "ordinal",
                ContextKind::Boolean => "boolean",
                ContextKind::Categorical => "categorical",
            };
            out.push_str(&format!(
                "[[context]]\nname = {:?}\nkind = {:?}\n",
                c.name, kind
            ));
            match c.kind {
                ContextKind::Ordinal => out.push_str(&format!(
                    "levels = [{}]\n",
                    c.ordinal_levels
                        .iter()
                        .map(|l| format!("{l}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
                ContextKind::Categorical => out.push_str(&format!(
                    "levels = [{}]\n",
                    c.labels
                        .iter()
                        .map(|l| format!("{l:?}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
                _ => {}
            }
            if let Some(lo) = c.min {
                out.push_str(&format!("min = {lo}\n"));
            }
            if let Some(hi) = c.max {
                out.push_str(&format!("max = {hi}\n"));
            }
            out.push('\n');
        }
        out
    }

    pub fn code_index(&self) -> HashMap<&str, usize> {
        self.insatser
            .iter()
            .enumerate()
            .map(|(i, s)| (s.code.as_str(), i))
            .collect()
    }

    pub fn context_index(&self, name: &str) -> Option<usize> {
        self.contexts.iter().position(|c| c.name == name)
    }

    /// A fingerprint of the catalog's content (not its formatting), stored in model
    /// manifests so that a model is never used with a catalog it was not trained on.
    pub fn fingerprint(&self) -> String {
        let canonical = serde_json::to_string(self).expect("catalog serializes");
        format!(
            "fnv64:{:016x}",
            crate::fingerprint::fnv1a64(canonical.as_bytes())
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[[insats]]
code = "SHOWER"
name = "Dusch"
category = "personal_care"
schablon_min = 30

[[insats]]
code = "CLEANING"
category = "service"
schablon_min = 90

[[context]]
name = "cognition"
kind = "ordinal"
levels = [0, 1, 2, 3]

[[context]]
name = "area"
kind = "categorical"
levels = ["urban", "rural"]

[[context]]
name = "lives_alone"
kind = "boolean"

[[context]]
name = "age"
kind = "numeric"
min = 0
max = 120
"#;

    #[test]
    fn parses_the_contract_shape_and_round_trips() {
        let c = Catalog::from_toml(GOOD, "catalog.toml").unwrap();
        assert_eq!(c.insatser.len(), 2);
        assert_eq!(c.insatser[1].name, "CLEANING");
        assert_eq!(c.contexts[0].ordinal_levels, vec![0.0, 1.0, 2.0, 3.0]);
        let again = Catalog::from_toml(&c.to_toml(), "again").unwrap();
        assert_eq!(c, again);
        assert_eq!(c.fingerprint(), again.fingerprint());
    }

    #[test]
    fn context_values_are_checked() {
        let c = Catalog::from_toml(GOOD, "catalog.toml").unwrap();
        let cognition = &c.contexts[0];
        assert_eq!(cognition.parse_str("2").unwrap(), 2.0);
        assert!(cognition
            .parse_str("5")
            .unwrap_err()
            .contains("not a level"));
        assert!(cognition
            .parse_str("x")
            .unwrap_err()
            .contains("not a number"));
        let area = &c.contexts[1];
        assert_eq!(area.parse_str("rural").unwrap(), 1.0);
        assert!(area.parse_str("city").is_err());
        let alone = &c.contexts[2];
        assert_eq!(alone.parse_json(&serde_json::json!(true)).unwrap(), 1.0);
        assert_eq!(alone.parse_str("nej").unwrap(), 0.0);
        let age = &c.contexts[3];
        assert!(age.parse_json(&serde_json::json!(150)).is_err());
        assert!(age.parse_str("").unwrap_err().contains("empty"));
    }

    #[test]
    fn bad_catalogs_name_the_entry() {
        let dup = "[[insats]]\ncode='A'\ncategory='service'\nschablon_min=1\n[[insats]]\ncode='A'\ncategory='service'\nschablon_min=2\n";
        let e = Catalog::from_toml(dup, "c.toml").unwrap_err().to_string();
        assert!(
            e.contains("insats #2") && e.contains("defined twice"),
            "{e}"
        );
        let neg = "[[insats]]\ncode='A'\ncategory='service'\nschablon_min=-3\n";
        let e = Catalog::from_toml(neg, "c.toml").unwrap_err().to_string();
        assert!(e.contains("schablon_min"), "{e}");
        let bad_cat = "[[insats]]\ncode='A'\ncategory='food'\nschablon_min=3\n";
        let e = Catalog::from_toml(bad_cat, "c.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("c.toml"), "{e}");
        let one_level = "[[insats]]\ncode='A'\ncategory='service'\nschablon_min=3\n[[context]]\nname='x'\nkind='ordinal'\nlevels=[1]\n";
        let e = Catalog::from_toml(one_level, "c.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("context #1"), "{e}");
    }
}
