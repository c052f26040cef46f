//! Service configuration, layered: built-in defaults < `ramtid.toml` (or `--config`) <
//! environment `RAMTID__SECTION__KEY` < command-line overrides. Unknown keys and invalid
//! values stop start-up with a message naming the key.

use ramtid_core::params::{FitParams, ParamError, ParamGuard};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The configuration file read when `--config` is not given (optional).
pub const DEFAULT_FILE: &str = "ramtid.toml";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Load(#[from] config::ConfigError),
    #[error("configuration key {key}: {message}")]
    Invalid { key: &'static str, message: String },
    #[error("configuration file {0} does not exist")]
    Missing(String),
    /// A `[training]` setting breaks a rule of `ramtid_core::params` (the same check as
    /// `ramtid train` and `TrainModel`).
    #[error("configuration key training.{}", .0)]
    Training(#[from] ParamError),
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub models: ModelsConfig,
    pub data: DataConfig,
    pub limits: LimitsConfig,
    pub log: LogConfig,
    pub auth: AuthConfig,
    pub tls: TlsConfig,
    pub audit: AuditConfig,
    pub history: HistoryConfig,
    /// `TrainModel`: the worker, its limits, and the fit settings and cleaning rules where a
    /// request leaves them unset (the flat table of `ramtid_core::params::FitParams`:
    /// `folds`, `reference_quantile`, `min_visit_min`, …), all in `[training]`.
    pub training: TrainingConfig,
}

/// Calculation history (see `ramtid_history`).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct HistoryConfig {
    /// `sqlite://PATH` or `postgres://…`. Absent: `sqlite://<data.dir>/history.db`; empty:
    /// the history is disabled.
    pub url: Option<String>,
    /// Calculations older than this many days are purged at start-up and once a day (each
    /// purge is audited); 0 keeps them.
    #[serde(deserialize_with = "whole_number")]
    pub retention_days: u32,
}

/// Access control (bearer tokens). Off by default so that `ramtid serve` works on a fresh
/// clone; production sets `enabled = true`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Require a bearer token on every call except health and reflection.
    pub enabled: bool,
    /// `[[auth.tokens]]`: the accepted tokens, as hashes.
    pub tokens: Vec<TokenConfig>,
    /// `[[auth.certificates]]`: client certificates (mutual TLS) that stand in for a token,
    /// for system-to-system callers. Needs `tls.client_ca`.
    pub certificates: Vec<CertificateConfig>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CertificateConfig {
    /// Which system holds the certificate (recorded in the audit log and history).
    pub name: String,
    /// assessor, data or admin.
    pub role: crate::auth::Role,
    /// SHA-256 fingerprint of the client certificate: `ramtid cert-fingerprint client.pem`,
    /// or `openssl x509 -noout -fingerprint -sha256` (`AB:CD:…`).
    pub sha256: String,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    /// Who holds the token (recorded in the audit log and history; never the token).
    pub name: String,
    /// assessor, data or admin.
    pub role: crate::auth::Role,
    /// `sha256:<hex>` of the token (`ramtid hash-token`).
    pub hash: String,
}

/// TLS (rustls). Empty `cert`: plaintext gRPC.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// Server certificate chain (PEM).
    pub cert: PathBuf,
    /// Server private key (PEM).
    pub key: PathBuf,
    /// CA certificates (PEM) client certificates are verified against; empty: no client
    /// certificates are asked for.
    pub client_ca: PathBuf,
    /// With `client_ca`: also accept clients without a certificate (they still need a
    /// token). Default false: a verified client certificate is required (mTLS).
    pub client_auth_optional: bool,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// The audit log (JSON lines); empty: `audit.log` in the data directory.
    pub file: PathBuf,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// gRPC listen address.
    pub listen: String,
    /// Prometheus `/metrics` listen address; empty disables the endpoint.
    pub metrics_listen: String,
    /// Seconds in-flight calls get to finish after SIGTERM.
    #[serde(deserialize_with = "whole_number")]
    pub shutdown_grace_s: u64,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ModelsConfig {
    /// Models root: `<dir>/<name>/<version>/`.
    pub dir: PathBuf,
    /// What `production` points at on start-up: "name", "name/version" or empty (the newest
    /// version of the only model name, or of the first name in alphabetical order).
    pub active: String,
    /// What `candidate` points at on start-up (same forms); empty: none.
    pub candidate: String,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DataConfig {
    /// The only directory TrainModel reads catalogs and visit logs from.
    pub dir: PathBuf,
}

/// TrainModel: runs in a worker process with a memory limit, within these limits, with
/// these fit settings where a request leaves them unset.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainingConfig {
    /// The program run as the training worker (`<program> train-worker`); empty: this
    /// server's own executable.
    pub worker: PathBuf,
    /// Most insats codes in a catalog.
    pub max_codes: usize,
    /// Most encoded context columns in a catalog.
    pub max_context_columns: usize,
    /// Most coefficients in a model.
    pub max_features: usize,
    /// Memory for the fit, MiB; the worker's address space is limited to this plus 1 GiB.
    pub max_memory_mb: u64,
    /// Fit settings and cleaning rules (checked in [`Config::validate`], with the same
    /// rules as `ramtid train` and `TrainModel`).
    pub fit: FitParams,
}

impl Default for TrainingConfig {
    fn default() -> Self {
        let l = ramtid_core::train::TrainLimits::default();
        TrainingConfig {
            worker: PathBuf::new(),
            max_codes: l.max_codes,
            max_context_columns: l.max_context_columns,
            max_features: l.max_features,
            max_memory_mb: l.max_memory_mb,
            fit: FitParams::default(),
        }
    }
}

/// The worker's own keys of `[training]`; every other key is a fit setting.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TrainingOwn {
    worker: Option<PathBuf>,
    max_codes: Option<usize>,
    max_context_columns: Option<usize>,
    max_features: Option<usize>,
    max_memory_mb: Option<u64>,
}

const TRAINING_OWN_KEYS: [&str; 5] = [
    "worker",
    "max_codes",
    "max_context_columns",
    "max_features",
    "max_memory_mb",
];

// One flat `[training]` table holds two groups of keys; serde's `flatten` cannot refuse
// unknown keys across both, so the table is split by key and each group read strictly.
impl<'de> Deserialize<'de> for TrainingConfig {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let mut rest = serde_json::Map::<String, serde_json::Value>::deserialize(d)?;
        let mut own = serde_json::Map::new();
        for key in TRAINING_OWN_KEYS {
            if let Some(v) = rest.remove(key) {
                own.insert(key.to_string(), v);
            }
        }
        let own: TrainingOwn =
            serde_json::from_value(serde_json::Value::Object(own)).map_err(D::Error::custom)?;
        let fit: FitParams =
            serde_json::from_value(serde_json::Value::Object(rest)).map_err(D::Error::custom)?;
        let d = TrainingConfig::default();
        Ok(TrainingConfig {
            worker: own.worker.unwrap_or(d.worker),
            max_codes: own.max_codes.unwrap_or(d.max_codes),
            max_context_columns: own.max_context_columns.unwrap_or(d.max_context_columns),
            max_features: own.max_features.unwrap_or(d.max_features),
            max_memory_mb: own.max_memory_mb.unwrap_or(d.max_memory_mb),
            fit,
        })
    }
}

impl TrainingConfig {
    pub fn limits(&self) -> ramtid_core::train::TrainLimits {
        ramtid_core::train::TrainLimits {
            max_codes: self.max_codes,
            max_context_columns: self.max_context_columns,
            max_features: self.max_features,
            max_memory_mb: self.max_memory_mb,
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Largest request message accepted, in bytes (larger: RESOURCE_EXHAUSTED).
    #[serde(deserialize_with = "whole_number")]
    pub max_message_bytes: usize,
    /// Most needs in one needs set.
    #[serde(deserialize_with = "whole_number")]
    pub max_needs: usize,
    /// Most needs sets in one EstimateBatch call.
    #[serde(deserialize_with = "whole_number")]
    pub max_batch: u64,
    /// Most calls handled at once; further calls wait for a free slot.
    #[serde(deserialize_with = "whole_number")]
    pub concurrency: usize,
}

/// Ranges every number in the configuration is checked against (inclusive), so that a typo
/// (`1e309`, `99999999999999999999`, `0`) stops start-up naming the key instead of becoming
/// a timer that overflows or a limit nothing can reach.
pub mod ranges {
    pub const SHUTDOWN_GRACE_S: (u64, u64) = (0, 3600);
    pub const MAX_MESSAGE_BYTES: (u64, u64) = (1024, 1 << 30);
    pub const MAX_NEEDS: (u64, u64) = (1, 10_000);
    pub const MAX_BATCH: (u64, u64) = (1, 1_000_000_000);
    pub const CONCURRENCY: (u64, u64) = (1, 65_536);
    pub const RETENTION_DAYS: (u64, u64) = (0, 36_500);
}

/// A whole number for a configuration key, from whatever the layer gave: an integer, or a
/// string of digits (environment variables). The `config` crate would otherwise round a
/// float (`1e309` becomes `u64::MAX`, `2.5` becomes 3) and read `true` as 1; those are
/// refused here, and the key is added to the message by the caller.
fn whole_number<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: TryFrom<u64>,
{
    use serde::de::{Error, Visitor};
    struct Whole;
    impl Visitor<'_> for Whole {
        type Value = u64;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a whole number")
        }
        fn visit_u64<E: Error>(self, v: u64) -> Result<u64, E> {
            Ok(v)
        }
        fn visit_i64<E: Error>(self, v: i64) -> Result<u64, E> {
            u64::try_from(v).map_err(|_| E::custom(format!("{v} is negative")))
        }
        fn visit_u128<E: Error>(self, v: u128) -> Result<u64, E> {
            u64::try_from(v).map_err(|_| E::custom(format!("{v} is far out of range")))
        }
        fn visit_i128<E: Error>(self, v: i128) -> Result<u64, E> {
            u64::try_from(v).map_err(|_| E::custom(format!("{v} is out of range")))
        }
        fn visit_f64<E: Error>(self, v: f64) -> Result<u64, E> {
            Err(E::custom(format!("{v} is not a whole number")))
        }
        fn visit_bool<E: Error>(self, v: bool) -> Result<u64, E> {
            Err(E::custom(format!("{v} is not a number")))
        }
        fn visit_str<E: Error>(self, v: &str) -> Result<u64, E> {
            v.trim().parse::<u64>().map_err(|_| {
                let shown = crate::error::truncate_for_message(v);
                E::custom(format!("'{shown}' is not a whole number in range"))
            })
        }
    }
    let v = d.deserialize_any(Whole)?;
    T::try_from(v).map_err(|_| D::Error::custom(format!("{v} is out of range")))
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// "text" or "json".
    pub format: String,
    /// A tracing filter: "info", "warn", "ramtid=debug,info".
    pub level: String,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: "127.0.0.1:50051".into(),
            metrics_listen: "127.0.0.1:9464".into(),
            shutdown_grace_s: 10,
        }
    }
}

impl Default for ModelsConfig {
    fn default() -> Self {
        ModelsConfig {
            dir: PathBuf::from("models"),
            active: String::new(),
            candidate: String::new(),
        }
    }
}

impl Default for DataConfig {
    fn default() -> Self {
        DataConfig {
            dir: PathBuf::from("data"),
        }
    }
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_message_bytes: 4 * 1024 * 1024,
            max_needs: 64,
            max_batch: 1_000_000,
            concurrency: 256,
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: "text".into(),
            level: "info".into(),
        }
    }
}

/// Where the layers come from.
#[derive(Debug, Default, Clone)]
pub struct Sources {
    /// `--config`: must exist. None: `ramtid.toml` in the working directory if present.
    pub file: Option<PathBuf>,
    /// Highest layer: (key, value) pairs such as ("server.listen", "127.0.0.1:0").
    pub overrides: Vec<(String, String)>,
    /// Read `RAMTID__SECTION__KEY` variables (tests turn this off).
    pub environment: bool,
}

impl Config {
    /// Builds the layered configuration and validates it.
    pub fn load(sources: &Sources) -> Result<Config, ConfigError> {
        let mut b = config::Config::builder();
        match &sources.file {
            Some(path) => {
                if !path.is_file() {
                    return Err(ConfigError::Missing(path.display().to_string()));
                }
                b = b.add_source(file_source(path, true));
            }
            None => b = b.add_source(file_source(Path::new(DEFAULT_FILE), false)),
        }
        if sources.environment {
            b = b.add_source(
                config::Environment::with_prefix("RAMTID")
                    .prefix_separator("__")
                    .separator("__")
                    .try_parsing(true),
            );
        }
        for (k, v) in &sources.overrides {
            b = b.set_override(k.as_str(), v.as_str())?;
        }
        let cfg: Config = b.build()?.try_deserialize()?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks values that parse but make no sense.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid =
            |key: &'static str, message: String| Err(ConfigError::Invalid { key, message });
        if self.server.listen.parse::<SocketAddr>().is_err() {
            return invalid(
                "server.listen",
                format!(
                    "'{}' is not a socket address like 127.0.0.1:50051",
                    self.server.listen
                ),
            );
        }
        if !self.server.metrics_listen.is_empty()
            && self.server.metrics_listen.parse::<SocketAddr>().is_err()
        {
            return invalid(
                "server.metrics_listen",
                format!(
                    "'{}' is not a socket address like 127.0.0.1:9464 (empty disables metrics)",
                    self.server.metrics_listen
                ),
            );
        }
        if self.models.dir.as_os_str().is_empty() {
            return invalid("models.dir", "must not be empty".into());
        }
        if self.data.dir.as_os_str().is_empty() {
            return invalid("data.dir", "must not be empty".into());
        }
        for (key, value, (lo, hi)) in [
            (
                "server.shutdown_grace_s",
                self.server.shutdown_grace_s,
                ranges::SHUTDOWN_GRACE_S,
            ),
            (
                "limits.max_message_bytes",
                self.limits.max_message_bytes as u64,
                ranges::MAX_MESSAGE_BYTES,
            ),
            (
                "limits.max_needs",
                self.limits.max_needs as u64,
                ranges::MAX_NEEDS,
            ),
            ("limits.max_batch", self.limits.max_batch, ranges::MAX_BATCH),
            (
                "limits.concurrency",
                self.limits.concurrency as u64,
                ranges::CONCURRENCY,
            ),
        ] {
            if !(lo..=hi).contains(&value) {
                return invalid(key, format!("{value} is outside {lo} to {hi}"));
            }
        }
        let t = &self.training;
        for (key, value, lo, hi) in [
            ("training.max_codes", t.max_codes as u64, 1, 65_535),
            (
                "training.max_context_columns",
                t.max_context_columns as u64,
                0,
                10_000,
            ),
            (
                "training.max_features",
                t.max_features as u64,
                16,
                10_000_000,
            ),
            ("training.max_memory_mb", t.max_memory_mb, 16, 1 << 30),
        ] {
            if !(lo..=hi).contains(&value) {
                return invalid(key, format!("{value} is outside {lo} to {hi}"));
            }
        }
        if !matches!(self.log.format.as_str(), "text" | "json") {
            return invalid(
                "log.format",
                format!(
                    "'{}' is not a log format; expected text or json",
                    self.log.format
                ),
            );
        }
        self.validate_access()?;
        self.training.fit.check_ref()?;
        if let Some(url) = self.history_url() {
            if let Err(e) = ramtid_history::Target::parse(&url) {
                return invalid("history.url", e.to_string());
            }
        }
        if u64::from(self.history.retention_days) > ranges::RETENTION_DAYS.1 {
            return invalid(
                "history.retention_days",
                format!(
                    "{} days is more than a century; 0 keeps calculations forever",
                    self.history.retention_days
                ),
            );
        }
        if tracing_subscriber::EnvFilter::try_new(&self.log.level).is_err() {
            return invalid(
                "log.level",
                format!(
                    "'{}' is not a log filter such as info or warn",
                    self.log.level
                ),
            );
        }
        Ok(())
    }

    fn validate_access(&self) -> Result<(), ConfigError> {
        let invalid =
            |key: &'static str, message: String| Err(ConfigError::Invalid { key, message });
        if self.auth.enabled && self.auth.tokens.is_empty() && self.auth.certificates.is_empty() {
            return invalid(
                "auth.tokens",
                "auth.enabled is true but no [[auth.tokens]] (or [[auth.certificates]]) are configured".into(),
            );
        }
        let mut names = std::collections::BTreeSet::new();
        let mut hashes = std::collections::BTreeSet::new();
        for t in &self.auth.tokens {
            if t.name.trim().is_empty() {
                return invalid("auth.tokens.name", "must not be empty".into());
            }
            if !names.insert(t.name.as_str()) {
                return invalid(
                    "auth.tokens.name",
                    format!("'{}' is configured twice", t.name),
                );
            }
            let h = crate::auth::parse_hash(&t.hash).map_err(|e| ConfigError::Invalid {
                key: "auth.tokens.hash",
                message: format!("token '{}': {e}", t.name),
            })?;
            if !hashes.insert(h) {
                return invalid(
                    "auth.tokens.hash",
                    format!("token '{}' has the same hash as another token", t.name),
                );
            }
        }
        let mut fingerprints = std::collections::BTreeSet::new();
        for c in &self.auth.certificates {
            if c.name.trim().is_empty() {
                return invalid("auth.certificates.name", "must not be empty".into());
            }
            if !names.insert(c.name.as_str()) {
                return invalid(
                    "auth.certificates.name",
                    format!(
                        "'{}' is configured twice (names are shared with auth.tokens)",
                        c.name
                    ),
                );
            }
            let f =
                crate::auth::parse_fingerprint(&c.sha256).map_err(|e| ConfigError::Invalid {
                    key: "auth.certificates.sha256",
                    message: format!("certificate '{}': {e}", c.name),
                })?;
            if !fingerprints.insert(f) {
                return invalid(
                    "auth.certificates.sha256",
                    format!("certificate '{}' is listed twice", c.name),
                );
            }
        }
        if !self.auth.certificates.is_empty() && self.tls.client_ca.as_os_str().is_empty() {
            return invalid(
                "auth.certificates",
                "client certificates are only asked for with tls.client_ca set".into(),
            );
        }
        let tls = &self.tls;
        let set = |p: &PathBuf| !p.as_os_str().is_empty();
        if set(&tls.cert) != set(&tls.key) {
            return invalid(
                "tls.key",
                "tls.cert and tls.key must be set together".into(),
            );
        }
        if set(&tls.client_ca) && !set(&tls.cert) {
            return invalid(
                "tls.client_ca",
                "client certificates need TLS: set tls.cert and tls.key".into(),
            );
        }
        for (key, p) in [
            ("tls.cert", &tls.cert),
            ("tls.key", &tls.key),
            ("tls.client_ca", &tls.client_ca),
        ] {
            if set(p) && !p.is_file() {
                return invalid(key, format!("{} is not a readable file", p.display()));
            }
        }
        Ok(())
    }

    /// The tokens the access-control layer checks, or None when it is disabled.
    pub fn tokens(&self) -> Option<crate::auth::Tokens> {
        self.auth.enabled.then(|| {
            crate::auth::Tokens::new(
                self.auth
                    .tokens
                    .iter()
                    .map(|t| (t.name.as_str(), t.role, t.hash.as_str())),
            )
            .and_then(|t| {
                t.with_certificates(
                    self.auth
                        .certificates
                        .iter()
                        .map(|c| (c.name.as_str(), c.role, c.sha256.as_str())),
                )
            })
            .expect("validated")
        })
    }

    /// Where the audit log is written.
    pub fn audit_path(&self) -> PathBuf {
        if self.audit.file.as_os_str().is_empty() {
            self.data.dir.join("audit.log")
        } else {
            self.audit.file.clone()
        }
    }

    /// The history URL, or None when the history is disabled (`history.url = ""`).
    pub fn history_url(&self) -> Option<String> {
        match &self.history.url {
            None => Some(format!(
                "sqlite://{}",
                self.data.dir.join("history.db").display()
            )),
            Some(u) if u.trim().is_empty() => None,
            Some(u) => Some(u.trim().to_string()),
        }
    }

    pub fn listen_addr(&self) -> SocketAddr {
        self.server.listen.parse().expect("validated")
    }

    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        (!self.server.metrics_listen.is_empty())
            .then(|| self.server.metrics_listen.parse().expect("validated"))
    }
}

fn file_source(
    path: &Path,
    required: bool,
) -> config::File<config::FileSourceFile, config::FileFormat> {
    config::File::from(path)
        .format(config::FileFormat::Toml)
        .required(required)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_toml(text: &str, overrides: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ramtid.toml");
        std::fs::write(&path, text).unwrap();
        Config::load(&Sources {
            file: Some(path),
            overrides: overrides
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            environment: false,
        })
    }

    #[test]
    fn layers_apply_in_order() {
        let c = load_toml(
            "[server]\nlisten = \"127.0.0.1:6000\"\n[limits]\nmax_needs = 10\n",
            &[("limits.max_needs", "12")],
        )
        .unwrap();
        assert_eq!(c.server.listen, "127.0.0.1:6000");
        assert_eq!(c.limits.max_needs, 12);
        assert_eq!(c.limits.max_batch, LimitsConfig::default().max_batch);
    }

    #[test]
    fn bad_configuration_names_the_key() {
        for (text, key) in [
            ("[server]\nlisten = \"nowhere\"\n", "server.listen"),
            ("[limits]\nmax_needs = 0\n", "limits.max_needs"),
            ("[limits]\nmax_needs = \"many\"\n", "max_needs"),
            ("[log]\nformat = \"xml\"\n", "log.format"),
            ("[server]\nlisen = \"x\"\n", "lisen"),
            ("[auth]\nenabled = true\n", "auth.tokens"),
            (
                "[[auth.tokens]]\nname = \"a\"\nrole = \"assessor\"\nhash = \"abc\"\n",
                "auth.tokens.hash",
            ),
            (
                "[[auth.tokens]]\nname = \"a\"\nrole = \"boss\"\nhash = \"abc\"\n",
                "boss",
            ),
            (
                "[[auth.certificates]]\nname = \"sys\"\nrole = \"assessor\"\nsha256 = \"AB:CD\"\n",
                "auth.certificates.sha256",
            ),
            (
                "[[auth.certificates]]\nname = \"sys\"\nrole = \"assessor\"\nsha256 = \"sha256:0000000000000000000000000000000000000000000000000000000000000000\"\n",
                "auth.certificates",
            ),
            ("[tls]\ncert = \"server.pem\"\n", "tls.key"),
            ("[tls]\nclient_ca = \"ca.pem\"\n", "tls.client_ca"),
            ("[history]\nurl = \"mysql://x\"\n", "history.url"),
            ("[history]\nretention_days = -3\n", "retention_days"),
            (
                "[history]\nretention_days = 99999\n",
                "history.retention_days",
            ),
            // TOML itself refuses a float that overflows (naming the file, not the key);
            // through the environment it reaches the check below (next test).
            ("[server]\nshutdown_grace_s = 1e309\n", "overflow"),
            ("[server]\nshutdown_grace_s = 1e300\n", "shutdown_grace_s"),
            ("[server]\nshutdown_grace_s = 2.5\n", "shutdown_grace_s"),
            ("[server]\nshutdown_grace_s = 86400\n", "server.shutdown_grace_s"),
            ("[server]\nshutdown_grace_s = true\n", "shutdown_grace_s"),
            ("[limits]\nmax_message_bytes = 1e300\n", "max_message_bytes"),
            (
                "[limits]\nmax_message_bytes = 18446744073709551615\n",
                "too large",
            ),
            (
                "[limits]\nmax_message_bytes = 9223372036854775807\n",
                "limits.max_message_bytes",
            ),
            ("[limits]\nmax_message_bytes = 100\n", "limits.max_message_bytes"),
            ("[limits]\nconcurrency = 0\n", "limits.concurrency"),
            ("[limits]\nconcurrency = -4\n", "concurrency"),
            (
                "[limits]\nconcurrency = 4611686018427387904\n",
                "limits.concurrency",
            ),
            ("[limits]\nmax_needs = 1000000000\n", "limits.max_needs"),
            ("[limits]\nmax_batch = 0\n", "limits.max_batch"),
            ("[limits]\nmax_batch = -1\n", "max_batch"),
            ("[history]\nretention_days = 1.5\n", "retention_days"),
            (
                "[training]\nreference_quantile = 1.5\n",
                "training.reference_quantile: 1.5 is outside 0 < q <= 1",
            ),
            ("[training]\nfolds = 1\n", "training.folds"),
            ("[training]\nfold = 3\n", "fold"),
            ("[training]\nmin_visit_min = -1\n", "training.min_visit_min"),
        ] {
            let e = load_toml(text, &[]).unwrap_err().to_string();
            assert!(e.contains(key), "{text}: {e}");
        }
    }

    #[test]
    fn tokens_are_read_from_the_file() {
        let h = crate::auth::hash_token("s3cret");
        let c = load_toml(
            &format!(
                "[auth]\nenabled = true\n[[auth.tokens]]\nname = \"dora\"\nrole = \"data\"\nhash = \"{h}\"\n"
            ),
            &[],
        )
        .unwrap();
        let tokens = c.tokens().unwrap();
        assert_eq!(tokens.lookup("s3cret").unwrap().name, "dora");
        assert!(tokens.lookup("other").is_none());
        assert!(Config::default().tokens().is_none());
        assert_eq!(
            Config::default().history_url().as_deref(),
            Some("sqlite://data/history.db")
        );
        let off = load_toml("[history]\nurl = \"\"\n", &[]).unwrap();
        assert_eq!(off.history_url(), None);
        assert_eq!(
            Config::default().audit_path(),
            std::path::Path::new("data/audit.log")
        );
    }

    /// Numbers from the environment (strings) go through the same checks, naming the key.
    #[test]
    fn numbers_from_overrides_are_range_checked() {
        for (key, value) in [
            ("limits.max_message_bytes", "99999999999999999999"),
            ("server.shutdown_grace_s", "1e309"),
            ("limits.concurrency", "-1"),
            ("limits.concurrency", "0"),
            ("limits.max_needs", "lots"),
        ] {
            let e = load_toml("", &[(key, value)]).unwrap_err().to_string();
            let short = key.split('.').nth(1).unwrap();
            assert!(e.contains(short), "{key}={value}: {e}");
        }
        let ok = load_toml("", &[("limits.concurrency", "8")]).unwrap();
        assert_eq!(ok.limits.concurrency, 8);
    }

    #[test]
    fn a_missing_explicit_file_is_an_error() {
        let e = Config::load(&Sources {
            file: Some("/nonexistent/ramtid.toml".into()),
            ..Sources::default()
        })
        .unwrap_err();
        assert!(e.to_string().contains("does not exist"));
    }
}
