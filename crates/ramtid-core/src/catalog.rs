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
    /// Where the TOML is broken and why, never the text found there (the file may be any
    /// file a caller named: toml's own message prints the source line).
    #[error("catalog {path}, line {line}, column {column}: {reason}")]
    Parse {
        path: String,
        line: usize,
        column: usize,
        reason: String,
    },
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

/// Largest magnitude of a numeric context value, in the log and in needs. Far beyond any
/// real context (ages, hours, counts), and small enough that every model figure computed
/// from it stays finite.
pub const MAX_ABS_NUMERIC: f64 = 1e9;

/// The range of a numeric context variable over the visits a model was trained on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContextRange {
    pub name: String,
    pub min: f64,
    pub max: f64,
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
    /// Numeric: the range of values a loaded model accepts in needs, set by
    /// [`crate::model::Model::load`] (the range seen in training, see
    /// [`crate::model::Params::context_ranges`]). Not part of the catalog file nor of its
    /// fingerprint: it belongs to the model, and lives here so that every validation of a
    /// needs object against a model's catalog checks it.
    #[serde(skip)]
    pub trained: Option<[f64; 2]>,
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
            ContextKind::Numeric if x.abs() > MAX_ABS_NUMERIC => Err(format!(
                "{x} is out of range: context numbers beyond ±{MAX_ABS_NUMERIC:e} are refused"
            )),
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
                    "'{}' is not a boolean; expected {}",
                    crate::echo::echo(s),
                    self.expected()
                )),
            },
            ContextKind::Categorical => self.label_index(s),
            ContextKind::Numeric | ContextKind::Ordinal => match s.parse::<f64>() {
                Ok(x) => self.check_number(x),
                Err(_) => Err(format!(
                    "'{}' is not a number; expected {}",
                    crate::echo::echo(s),
                    self.expected()
                )),
            },
        }
    }

    /// For needs: refuses a numeric value outside the range the model was trained on.
    ///
    /// Refused rather than clamped: a clamped value answers for another recipient than the
    /// one asked about, and the linear context terms are not validated beyond the data they
    /// were fitted on (age 10⁶ once gave 101 230 minutes in a week of 10 080). The caller
    /// learns what the model can answer and decides.
    pub fn check_trained(&self, x: f64) -> Result<f64, String> {
        match self.trained {
            Some([lo, hi]) if self.kind == ContextKind::Numeric && !(lo..=hi).contains(&x) => Err(
                format!("{x} is outside the range the model was trained on ({lo} to {hi})"),
            ),
            _ => Ok(x),
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
                "{} is not valid; expected {}",
                crate::echo::echo(&other.to_string()),
                self.expected()
            )),
        }
    }

    fn label_index(&self, s: &str) -> Result<f64, String> {
        self.labels
            .iter()
            .position(|l| l == s)
            .map(|i| i as f64)
            .ok_or_else(|| {
                format!(
                    "'{}' is not a known label; expected {}",
                    crate::echo::echo(s),
                    self.expected()
                )
            })
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
    /// Broad codes (`[[cluster]]`), see [`crate::cluster`]. Left out of the serialized form
    /// when empty, so that a catalog without clusters keeps its fingerprint.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub clusters: Vec<crate::cluster::Cluster>,
    /// `[[ibic]]`: ICF codes and levels mapped to insats codes (see [`crate::ibic`]). Left
    /// out of the serialized form when empty, so that catalogs without a mapping keep their
    /// fingerprint.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ibic: Vec<crate::ibic::IbicRow>,
}

// Unknown keys are refused, naming the key: the data contract lists the catalog's keys, and
// a misspelt or misplaced key (`context = "age"` under an `[[insats]]`) silently ignored
// trains a different model than the one the municipality wrote down.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCatalog {
    #[serde(default)]
    insats: Vec<RawInsats>,
    #[serde(default)]
    context: Vec<RawContext>,
    #[serde(default)]
    cluster: Vec<crate::cluster::RawCluster>,
    #[serde(default)]
    ibic: Vec<crate::ibic::IbicRow>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInsats {
    code: String,
    #[serde(default)]
    name: Option<String>,
    category: Category,
    schablon_min: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
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

/// Largest catalog file read. Catalogs hold tens to thousands of codes (a few hundred bytes
/// each); anything larger is not a catalog.
pub const MAX_CATALOG_BYTES: u64 = 16 << 20;

impl Catalog {
    pub fn load(path: &Path) -> Result<Catalog, CatalogError> {
        let origin = path.display().to_string();
        let file = std::fs::File::open(path).map_err(|source| CatalogError::Io {
            path: origin.clone(),
            source,
        })?;
        Catalog::read(file, &origin)
    }

    /// Reads a catalog from an open file (the service opens it confined to its data
    /// directory), at most [`MAX_CATALOG_BYTES`] of it. Invalid UTF-8 is reported by
    /// position, not by content.
    pub fn read(file: std::fs::File, origin: &str) -> Result<Catalog, CatalogError> {
        let text = Catalog::read_text(file, origin)?;
        Catalog::from_toml(&text, origin)
    }

    /// The text of a catalog file: [`Catalog::read`] without the parse, for a caller that
    /// looks at the text first (training counts the codes before parsing them).
    pub fn read_text(file: std::fs::File, origin: &str) -> Result<String, CatalogError> {
        let bytes =
            crate::files::read_capped_file(file, MAX_CATALOG_BYTES).map_err(|e| match e {
                crate::files::CappedReadError::Io(source) => CatalogError::Io {
                    path: origin.to_string(),
                    source,
                },
                other => CatalogError::Parse {
                    path: origin.to_string(),
                    line: 1,
                    column: 1,
                    reason: format!("the file {other}"),
                },
            })?;
        let text = match String::from_utf8(bytes) {
            Ok(t) => t,
            Err(e) => {
                let valid = e.utf8_error().valid_up_to();
                let prefix = std::str::from_utf8(&e.as_bytes()[..valid]).unwrap_or_default();
                let (line, column) = crate::redact::line_column(prefix, valid);
                return Err(CatalogError::Parse {
                    path: origin.to_string(),
                    line,
                    column,
                    reason: "the file is not valid UTF-8".into(),
                });
            }
        };
        Ok(text)
    }

    /// How many `[[insats]]` table headers a catalog's text has: a count without parsing,
    /// exact for catalogs written as the data contract writes them (one table per code).
    pub fn count_insats_tables(text: &str) -> usize {
        text.lines()
            .filter(|l| {
                let l = l.trim();
                l.strip_prefix("[[")
                    .and_then(|r| r.split_once("]]"))
                    .is_some_and(|(name, rest)| {
                        name.trim() == "insats" && {
                            let rest = rest.trim_start();
                            rest.is_empty() || rest.starts_with('#')
                        }
                    })
            })
            .count()
    }

    /// Parses and validates a catalog. `origin` names the file in error messages, which
    /// give the line and column of a syntax error but never quote the file.
    pub fn from_toml(text: &str, origin: &str) -> Result<Catalog, CatalogError> {
        let raw: RawCatalog = toml::from_str(text).map_err(|e| {
            let (line, column) = e
                .span()
                .map(|s| crate::redact::line_column(text, s.start))
                .unwrap_or((1, 1));
            CatalogError::Parse {
                path: origin.to_string(),
                line,
                column,
                reason: crate::redact::reason(e.message()),
            }
        })?;
        let invalid = |entry: String, message: String| CatalogError::Invalid {
            path: origin.to_string(),
            entry,
            message,
        };
        let mut insatser = Vec::with_capacity(raw.insats.len());
        for r in raw.insats {
            let code = r.code.trim().to_string();
            insatser.push(Insats {
                name: r.name.unwrap_or_else(|| code.clone()),
                code,
                category: r.category,
                schablon_min: r.schablon_min,
            });
        }
        let mut contexts = Vec::with_capacity(raw.context.len());
        for (i, r) in raw.context.into_iter().enumerate() {
            let entry = format!("context #{} ({})", i + 1, crate::echo::echo(&r.name));
            let mut var = ContextVar {
                name: r.name.trim().to_string(),
                kind: r.kind,
                ordinal_levels: Vec::new(),
                labels: Vec::new(),
                min: r.min,
                max: r.max,
                trained: None,
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
                                    format!(
                                        "ordinal level {} is not a number",
                                        crate::echo::echo(&other.to_string())
                                    ),
                                ))
                            }
                        };
                        var.ordinal_levels.push(x);
                    }
                }
                ContextKind::Categorical => {
                    for l in &r.levels {
                        match l {
                            toml::Value::String(s) => var.labels.push(s.clone()),
                            other => {
                                return Err(invalid(
                                    entry,
                                    format!(
                                        "categorical level {} is not a string",
                                        crate::echo::echo(&other.to_string())
                                    ),
                                ))
                            }
                        }
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
        let catalog = Catalog {
            insatser,
            contexts,
            clusters: crate::cluster::from_raw(raw.cluster),
            ibic: raw.ibic,
        };
        catalog
            .validate()
            .map_err(|(entry, message)| invalid(entry, message))?;
        Ok(catalog)
    }

    /// Checks everything a catalog promises the rest of the code: at least one code, codes
    /// unique and printable, schablon minutes in a day, context variables with usable and
    /// unique levels or labels, and bounds in order. Used on a catalog file and on the
    /// catalog a model file carries (which is deserialized, not parsed from TOML). The
    /// error is (entry, what is wrong).
    pub fn validate(&self) -> Result<(), (String, String)> {
        use crate::echo::echo;
        if self.insatser.is_empty() {
            return Err((
                "[[insats]]".into(),
                "the catalog defines no insats codes".into(),
            ));
        }
        let mut seen: HashMap<&str, usize> = HashMap::with_capacity(self.insatser.len());
        for (i, r) in self.insatser.iter().enumerate() {
            let entry = format!("insats #{} ({})", i + 1, echo(&r.code));
            let code = r.code.as_str();
            if code.is_empty()
                || code.trim() != code
                || code.contains(['|', ','])
                || code.chars().any(char::is_control)
            {
                return Err((
                    entry,
                    "code must be non-empty and contain neither '|', ',' nor control characters"
                        .into(),
                ));
            }
            if let Some(first) = seen.insert(code, i) {
                return Err((
                    entry,
                    format!(
                        "code '{}' is defined twice (first as insats #{})",
                        echo(code),
                        first + 1
                    ),
                ));
            }
            if r.name.chars().any(char::is_control) {
                return Err((entry, "name must not contain control characters".into()));
            }
            if !r.schablon_min.is_finite() || r.schablon_min < 0.0 || r.schablon_min > 24.0 * 60.0 {
                return Err((
                    entry,
                    format!(
                        "schablon_min {} must be between 0 and 1440 minutes",
                        r.schablon_min
                    ),
                ));
            }
        }
        let mut names: HashMap<&str, usize> = HashMap::with_capacity(self.contexts.len());
        for (i, c) in self.contexts.iter().enumerate() {
            let entry = format!("context #{} ({})", i + 1, echo(&c.name));
            let name = c.name.as_str();
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err((
                    entry,
                    "name must be non-empty ASCII letters, digits or '_'".into(),
                ));
            }
            if names.insert(name, i).is_some() {
                return Err((entry, format!("context '{name}' is defined twice")));
            }
            if c.kind != ContextKind::Numeric && (c.min.is_some() || c.max.is_some()) {
                return Err((entry, "min and max are only for numeric variables".into()));
            }
            if c.kind != ContextKind::Ordinal && !c.ordinal_levels.is_empty()
                || c.kind != ContextKind::Categorical && !c.labels.is_empty()
            {
                return Err((
                    entry,
                    "levels are only for ordinal and categorical variables".into(),
                ));
            }
            match c.kind {
                ContextKind::Ordinal => {
                    if c.ordinal_levels.len() < 2 {
                        return Err((entry, "an ordinal needs at least two levels".into()));
                    }
                    if c.ordinal_levels.iter().any(|l| !l.is_finite()) {
                        return Err((entry, "ordinal levels must be finite numbers".into()));
                    }
                    if c.ordinal_levels.windows(2).any(|w| w[0] >= w[1]) {
                        return Err((entry, "ordinal levels must ascend".into()));
                    }
                }
                ContextKind::Categorical => {
                    if c.labels.len() < 2 {
                        return Err((entry, "a categorical needs at least two labels".into()));
                    }
                    let mut seen: HashMap<&str, usize> = HashMap::with_capacity(c.labels.len());
                    for (k, l) in c.labels.iter().enumerate() {
                        if l.trim().is_empty() || l.chars().any(char::is_control) {
                            return Err((
                                entry,
                                format!(
                                    "label #{} must be non-empty and free of control characters",
                                    k + 1
                                ),
                            ));
                        }
                        if let Some(first) = seen.insert(l.as_str(), k) {
                            return Err((
                                entry,
                                format!(
                                    "label '{}' appears twice (labels #{} and #{})",
                                    echo(l),
                                    first + 1,
                                    k + 1
                                ),
                            ));
                        }
                    }
                }
                ContextKind::Numeric => {
                    for (key, bound) in [("min", c.min), ("max", c.max)] {
                        if bound.is_some_and(|b| !b.is_finite()) {
                            return Err((entry, format!("{key} must be a finite number")));
                        }
                    }
                    if let (Some(lo), Some(hi)) = (c.min, c.max) {
                        if lo > hi {
                            return Err((entry, format!("min {lo} is greater than max {hi}")));
                        }
                    }
                }
                ContextKind::Boolean => {}
            }
        }
        let codes: Vec<&str> = self.insatser.iter().map(|i| i.code.as_str()).collect();
        crate::ibic::validate(&self.ibic, &codes)?;
        crate::cluster::validate(self)
    }

    /// Writes the catalog in the data contract's TOML shape.
    pub fn to_toml(&self) -> String {
        let mut out = String::new();
        for i in &self.insatser {
            out.push_str(&format!(
                "[[insats]]\ncode = {}\nname = {}\ncategory = {}\nschablon_min = {}\n\n",
                toml_str(&i.code),
                toml_str(&i.name),
                toml_str(i.category.as_str()),
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
                "[[context]]\nname = {}\nkind = {}\n",
                toml_str(&c.name),
                toml_str(kind)
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
                        .map(|l| toml_str(l))
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
        crate::cluster::write_toml(&self.clusters, &mut out);
        out.push_str(&crate::ibic::to_toml(&self.ibic));
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

/// A string as a TOML basic string (Rust's `{:?}` escapes differently: `\u{ad}`).
fn toml_str(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
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

    const ONE: &str = "[[insats]]\ncode='A'\ncategory='service'\nschablon_min=3\n";

    fn refusal(text: &str) -> String {
        Catalog::from_toml(text, "c.toml").unwrap_err().to_string()
    }

    #[test]
    fn insats_tables_are_counted_without_parsing() {
        let text = format!("{ONE}[[ insats ]] # second\ncode='B'\n[[insats_x]]\n# [[insats]]\n");
        assert_eq!(Catalog::count_insats_tables(&text), 2);
    }

    #[test]
    fn a_context_given_as_a_string_is_an_error_not_ignored() {
        // Under an [[insats]] table the key belongs to that insats: once silently ignored,
        // training then used no context at all.
        let e = refusal(&format!("{ONE}context = \"age\"\n"));
        assert!(
            e.contains("c.toml") && e.contains("line 5") && e.contains("unknown field `context`"),
            "{e}"
        );
        // At the top, a string where a list of tables belongs.
        let e = refusal(&format!("context = \"age\"\n{ONE}"));
        assert!(e.contains("line 1") && e.contains("invalid type"), "{e}");
    }

    #[test]
    fn unknown_keys_are_refused_naming_the_key() {
        let e = refusal(&format!("{ONE}schablon_mins = 4\n"));
        assert!(e.contains("unknown field `schablon_mins`"), "{e}");
        let e = refusal(&format!(
            "{ONE}[[context]]\nname='age'\nkind='numeric'\nmaximum=3\n"
        ));
        assert!(
            e.contains("unknown field `maximum`") && e.contains("line 8"),
            "{e}"
        );
        let e = refusal(&format!("{ONE}[[contexts]]\nname='age'\n"));
        assert!(e.contains("unknown field `contexts`"), "{e}");
    }

    #[test]
    fn a_parse_error_does_not_quote_the_file() {
        let secret = "root:x:0:0:root:/root:/bin/bash";
        let e = refusal(&format!("{secret}\n"));
        assert!(!e.contains("root"), "{e}");
        assert!(e.contains("line 1"), "{e}");
    }

    #[test]
    fn duplicate_labels_bounds_out_of_order_and_control_characters_are_refused() {
        let e = refusal(&format!(
            "{ONE}[[context]]\nname='area'\nkind='categorical'\nlevels=['urban','rural','urban']\n"
        ));
        assert!(
            e.contains("context #1 (area)") && e.contains("label 'urban' appears twice"),
            "{e}"
        );
        let e = refusal(&format!(
            "{ONE}[[context]]\nname='age'\nkind='numeric'\nmin=110\nmax=60\n"
        ));
        assert!(e.contains("min 110 is greater than max 60"), "{e}");
        let e = refusal(&format!(
            "{ONE}[[context]]\nname='c'\nkind='ordinal'\nlevels=[0,1]\nmax=3\n"
        ));
        assert!(e.contains("only for numeric"), "{e}");
        for code in ["A\\u0000B", "A\\nB", "A\\u001bB"] {
            let e = refusal(&format!(
                "[[insats]]\ncode=\"{code}\"\ncategory='service'\nschablon_min=3\n"
            ));
            assert!(
                e.contains("insats #1") && e.contains("control characters"),
                "{e}"
            );
            assert!(
                !e.contains('\u{0}') && !e.contains('\u{1b}') && !e.contains("A\nB"),
                "{e:?}"
            );
        }
        let e = refusal(&format!(
            "{ONE}[[context]]\nname='area'\nkind='categorical'\nlevels=['a',\"b\\u0000\"]\n"
        ));
        assert!(e.contains("label #2"), "{e}");
        // With a name of its own (a code without one is also its name, checked too).
        let e = refusal(
            "[[insats]]\ncode=\"A\\u0000B\"\nname='Shower'\ncategory='service'\nschablon_min=3\n",
        );
        assert!(e.contains("insats #1") && e.contains("code must be"), "{e}");
    }

    #[test]
    fn to_toml_escapes_what_it_writes() {
        let mut c = Catalog::from_toml(GOOD, "catalog.toml").unwrap();
        c.insatser[0].name = "Dusch \"varm\" \\ \u{ad}".into();
        c.contexts[1].labels[0] = "stad\u{e9}".into();
        let again = Catalog::from_toml(&c.to_toml(), "again").unwrap();
        assert_eq!(c, again);
    }

    #[test]
    fn a_catalog_file_that_is_not_a_file_or_too_large_is_refused() {
        #[cfg(unix)]
        {
            let e = Catalog::load(Path::new("/dev/zero"))
                .unwrap_err()
                .to_string();
            assert!(e.contains("not a regular file"), "{e}");
        }
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.toml");
        std::fs::write(&p, b"[[insats]]\ncode='\xff'\n").unwrap();
        let e = Catalog::load(&p).unwrap_err().to_string();
        assert!(
            e.contains("line 2, column 7") && e.contains("not valid UTF-8"),
            "{e}"
        );
    }
}
