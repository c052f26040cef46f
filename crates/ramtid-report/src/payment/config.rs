//! The payment configuration: [`PaymentConfig`] as written in TOML, [`PaymentParams`] with
//! setters, and [`CheckedPayment`], the only form [`crate::payment::compute`] accepts.

use ramtid_core::params::ParamGuard;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// Highest tolerance over ramtid: the capped basis pays at most twice the ramtid.
pub const MAX_TOLERANCE: f64 = 1.0;

/// What the provider is paid for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Basis {
    /// The granted time as the schablon (the sum of the tasks' standard times).
    GrantedSchablon,
    /// The granted frame time (ramtid).
    GrantedRamtid,
    /// The performed (logged) time.
    Performed,
    /// The performed time, at most ramtid × (1 + tolerance).
    PerformedCapped,
}

impl Basis {
    /// Every basis, in the order of `payment.csv`'s side-by-side columns.
    pub const ALL: [Basis; 4] = [
        Basis::GrantedSchablon,
        Basis::GrantedRamtid,
        Basis::Performed,
        Basis::PerformedCapped,
    ];

    /// The basis's name as the configuration and `payment.csv` spell it.
    pub fn name(self) -> &'static str {
        match self {
            Basis::GrantedSchablon => "granted_schablon",
            Basis::GrantedRamtid => "granted_ramtid",
            Basis::Performed => "performed",
            Basis::PerformedCapped => "performed_capped",
        }
    }

    /// The basis's index in [`Basis::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Basis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Basis {
    type Err = PaymentError;
    fn from_str(s: &str) -> Result<Basis, PaymentError> {
        Basis::ALL.into_iter().find(|b| b.name() == s).ok_or_else(|| {
            PaymentError::new(
                "basis",
                format!(
                    "'{s}' is not a basis; expected granted_schablon, granted_ramtid, performed or performed_capped"
                ),
            )
        })
    }
}

/// The declined-visit and absence rules (`[declined]`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeclinedConfig {
    /// Share paid of the planned minutes of a visit the recipient declined with short notice.
    pub short_notice_share: f64,
    /// Share paid of the granted time of the recipient's absence days (0: not paid).
    pub absence_share: f64,
}

impl Default for DeclinedConfig {
    fn default() -> Self {
        DeclinedConfig {
            short_notice_share: 1.0,
            absence_share: 0.0,
        }
    }
}

/// The payment configuration as written in TOML (see the [module](crate::payment) docs).
/// Unknown keys are refused by name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaymentConfig {
    pub basis: Basis,
    #[serde(default)]
    pub tolerance: f64,
    /// kr per hour, per category.
    pub rates: BTreeMap<String, f64>,
    #[serde(default)]
    pub declined: DeclinedConfig,
    #[serde(default)]
    pub goal_premium_kr: f64,
}

/// The configuration could not be read or parsed (an unknown key or a bad value's type is
/// named, with its line and column); a value that parses but breaks a rule is a
/// [`PaymentError`].
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read payment config {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("payment config {path}: {message}")]
    Parse { path: String, message: String },
    #[error("payment config {path}: {source}")]
    Check { path: String, source: PaymentError },
}

impl PaymentConfig {
    /// Parses a configuration; `origin` names it in errors (a path, or e.g. `<string>`).
    pub fn from_toml_str(s: &str, origin: &str) -> Result<PaymentConfig, ConfigError> {
        toml::from_str(s).map_err(|e: toml::de::Error| {
            let at = e.span().map_or(String::new(), |span| {
                let before = &s[..span.start.min(s.len())];
                let line = before.matches('\n').count() + 1;
                let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
                format!("line {line}, column {column}: ")
            });
            ConfigError::Parse {
                path: origin.to_string(),
                message: format!("{at}{}", e.message()),
            }
        })
    }

    /// Reads and parses a configuration file.
    pub fn load(path: &Path) -> Result<PaymentConfig, ConfigError> {
        let s = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        PaymentConfig::from_toml_str(&s, &path.display().to_string())
    }

    /// The configuration's parameters, to be checked.
    pub fn params(self) -> PaymentParams {
        PaymentParams(CheckedPayment(self))
    }
}

impl CheckedPayment {
    /// Reads, parses and checks a configuration file.
    pub fn load(path: &Path) -> Result<CheckedPayment, ConfigError> {
        PaymentConfig::load(path)?
            .params()
            .check()
            .map_err(|source| ConfigError::Check {
                path: path.display().to_string(),
                source,
            })
    }
}

/// A setting that breaks a rule: which key (as the TOML spells it, e.g. `rates.service`)
/// and why.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{key}: {message}")]
pub struct PaymentError {
    pub key: String,
    pub message: String,
}

impl PaymentError {
    pub(crate) fn new(key: impl Into<String>, message: impl Into<String>) -> PaymentError {
        PaymentError {
            key: key.into(),
            message: message.into(),
        }
    }
}

/// Unchecked payment parameters, built from a [`PaymentConfig`] or with the setters.
#[derive(Debug, Clone, PartialEq)]
pub struct PaymentParams(CheckedPayment);

impl PaymentParams {
    /// A basis with no rates yet (at least one rate is needed to pass the check).
    pub fn new(basis: Basis) -> PaymentParams {
        PaymentParams(CheckedPayment(PaymentConfig {
            basis,
            tolerance: 0.0,
            rates: BTreeMap::new(),
            declined: DeclinedConfig::default(),
            goal_premium_kr: 0.0,
        }))
    }

    pub fn basis(mut self, basis: Basis) -> Self {
        self.0 .0.basis = basis;
        self
    }

    pub fn tolerance(mut self, tolerance: f64) -> Self {
        self.0 .0.tolerance = tolerance;
        self
    }

    /// The rate in kr per hour of a category.
    pub fn rate(mut self, category: &str, kr_per_hour: f64) -> Self {
        self.0 .0.rates.insert(category.to_string(), kr_per_hour);
        self
    }

    pub fn short_notice_share(mut self, share: f64) -> Self {
        self.0 .0.declined.short_notice_share = share;
        self
    }

    pub fn absence_share(mut self, share: f64) -> Self {
        self.0 .0.declined.absence_share = share;
        self
    }

    pub fn goal_premium_kr(mut self, kr: f64) -> Self {
        self.0 .0.goal_premium_kr = kr;
        self
    }
}

/// Payment parameters that have passed [`ParamGuard::check`]: the only way to obtain one.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckedPayment(PaymentConfig);

impl CheckedPayment {
    pub fn basis(&self) -> Basis {
        self.0.basis
    }

    pub fn tolerance(&self) -> f64 {
        self.0.tolerance
    }

    /// The rate in kr per hour of a category, if it has one.
    pub fn rate(&self, category: &str) -> Option<f64> {
        self.0.rates.get(category).copied()
    }

    pub fn rates(&self) -> &BTreeMap<String, f64> {
        &self.0.rates
    }

    pub fn short_notice_share(&self) -> f64 {
        self.0.declined.short_notice_share
    }

    pub fn absence_share(&self) -> f64 {
        self.0.declined.absence_share
    }

    pub fn goal_premium_kr(&self) -> f64 {
        self.0.goal_premium_kr
    }

    /// The configuration as checked.
    pub fn config(&self) -> &PaymentConfig {
        &self.0
    }
}

fn share(key: &str, v: f64) -> Result<(), PaymentError> {
    if (0.0..=1.0).contains(&v) {
        Ok(())
    } else {
        Err(PaymentError::new(
            key,
            format!("{v} is not a share 0 <= s <= 1"),
        ))
    }
}

/// Every rule, in one place.
fn validate(c: &PaymentConfig) -> Result<(), PaymentError> {
    if !(0.0..=MAX_TOLERANCE).contains(&c.tolerance) {
        return Err(PaymentError::new(
            "tolerance",
            format!(
                "{} is outside 0 <= tolerance <= {MAX_TOLERANCE}",
                c.tolerance
            ),
        ));
    }
    if c.rates.is_empty() {
        return Err(PaymentError::new(
            "rates",
            "no rates: give kr per hour per category, e.g. personal_care = 464",
        ));
    }
    for (category, &r) in &c.rates {
        if category.trim().is_empty() {
            return Err(PaymentError::new("rates", "a category's name is empty"));
        }
        if !(r.is_finite() && r >= 0.0) {
            return Err(PaymentError::new(
                format!("rates.{category}"),
                format!("{r} is not a rate >= 0 kr/h"),
            ));
        }
    }
    share("declined.short_notice_share", c.declined.short_notice_share)?;
    share("declined.absence_share", c.declined.absence_share)?;
    if !(c.goal_premium_kr.is_finite() && c.goal_premium_kr >= 0.0) {
        return Err(PaymentError::new(
            "goal_premium_kr",
            format!("{} is not an amount >= 0 kr", c.goal_premium_kr),
        ));
    }
    Ok(())
}

impl ParamGuard for PaymentParams {
    type Checked = CheckedPayment;
    type Error = PaymentError;

    fn check_ref(&self) -> Result<&CheckedPayment, PaymentError> {
        validate(&self.0 .0)?;
        Ok(&self.0)
    }

    fn check(self) -> Result<CheckedPayment, PaymentError> {
        validate(&self.0 .0)?;
        Ok(self.0)
    }
}
