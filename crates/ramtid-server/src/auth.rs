//! Access control: bearer tokens mapped to roles, checked by a tower layer keyed on the
//! gRPC method path before any handler runs.
//!
//! - Tokens are configured as hashes only (`sha256:<hex>`, see [`hash_token`] and
//!   `ramtid hash-token`); the presented token is hashed and compared, never logged.
//! - [`required_role`] is the one permission table. Methods it does not name need `admin`
//!   (so a new RPC is closed until it is placed in the table); the health and reflection
//!   services are open.
//! - A missing or unknown token is `UNAUTHENTICATED`, a known token with too small a role
//!   is `PERMISSION_DENIED` naming the role needed.
//! - The authenticated [`Caller`] is put into the request's extensions for the handlers
//!   (audit log, history).

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tonic::codegen::http;
use tonic::Status;

/// Roles, each including the permissions of the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Needs assessors: estimates and the catalog.
    Assessor,
    /// Data and model staff: also list, inspect, activate, reload and train models.
    Data,
    /// Everything.
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Assessor => "assessor",
            Role::Data => "data",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who is calling: the configured token's name and role. In the request extensions of
/// every call that passed the check (absent when access control is disabled).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub name: String,
    pub role: Role,
}

/// Services anyone may call (load balancers, orchestrators, grpcurl).
const OPEN_SERVICES: [&str; 3] = [
    "grpc.health.v1.Health",
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
];

/// The permission table: the smallest role allowed to call a method, by gRPC path
/// (`/package.Service/Method`). `None`: open to anyone. Unlisted methods need `admin`.
pub fn required_role(path: &str) -> Option<Role> {
    let mut parts = path.trim_start_matches('/').splitn(2, '/');
    let service = parts.next().unwrap_or("");
    let method = parts.next().unwrap_or("");
    if OPEN_SERVICES.contains(&service) {
        return None;
    }
    Some(match (service, method) {
        ("ramtid.v1.EstimationService", "Estimate" | "EstimateBatch" | "ExplainVisit") => {
            Role::Assessor
        }
        ("ramtid.v1.ModelService", "GetCatalog") => Role::Assessor,
        // Assessors only on calculations they made themselves: the handlers check that.
        (
            "ramtid.v1.HistoryService",
            "ListCalculations"
            | "GetCalculation"
            | "RecalculateCalculation"
            | "CompareCalculations",
        ) => Role::Assessor,
        ("ramtid.v1.HistoryService", "EraseCase") => Role::Admin,
        // An assessor gets only their own cases' rows: the handler limits them.
        ("ramtid.v1.FollowUpService", "FollowUp") => Role::Assessor,
        ("ramtid.v1.HistoryService", "RebudgetCaseload") => Role::Data,
        (
            "ramtid.v1.ModelService",
            "ListModels" | "GetModel" | "ActivateModel" | "ReloadModels" | "TrainModel",
        ) => Role::Data,
        _ => Role::Admin,
    })
}

/// The configured form of a token: `sha256:` and the lowercase hex SHA-256 of the token.
pub fn hash_token(token: &str) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(token.as_bytes())))
}

/// Parses `sha256:<64 hex digits>`.
pub fn parse_hash(text: &str) -> Result<[u8; 32], String> {
    let expected = || "expected 'sha256:<64 hex digits>' (see `ramtid hash-token`)".to_string();
    let digits = text.trim().strip_prefix("sha256:").ok_or_else(expected)?;
    let mut out = [0u8; 32];
    hex::decode_to_slice(digits, &mut out).map_err(|_| expected())?;
    Ok(out)
}

/// Parses a client certificate's SHA-256 fingerprint: `sha256:<64 hex digits>` (what
/// `ramtid cert-fingerprint` prints) or OpenSSL's `AB:CD:…` (32 colon-separated bytes, from
/// `openssl x509 -noout -fingerprint -sha256`).
pub fn parse_fingerprint(text: &str) -> Result<[u8; 32], String> {
    let t = text.trim();
    let t = t
        .strip_prefix("sha256 Fingerprint=")
        .or_else(|| t.strip_prefix("SHA256 Fingerprint="))
        .unwrap_or(t);
    if t.starts_with("sha256:") {
        return parse_hash(&t.to_ascii_lowercase());
    }
    let hex: String = t.split(':').collect();
    if t.contains(':') && t.split(':').all(|p| p.len() == 2) {
        return parse_hash(&format!("sha256:{}", hex.to_ascii_lowercase()));
    }
    Err(
        "expected 'sha256:<64 hex digits>' (see `ramtid cert-fingerprint`) or OpenSSL's 'AB:CD:…'"
            .into(),
    )
}

/// The SHA-256 fingerprint of a certificate (its DER bytes).
pub fn fingerprint(der: &[u8]) -> [u8; 32] {
    Sha256::digest(der).into()
}

/// `sha256:<hex>` of a fingerprint.
pub fn fingerprint_text(f: &[u8; 32]) -> String {
    format!("sha256:{}", hex::encode(f))
}

/// The configured tokens and client certificates, ready for checking.
#[derive(Clone, Default)]
pub struct Tokens {
    entries: Vec<([u8; 32], Caller)>,
    /// Client certificate fingerprints (mutual TLS, system-to-system callers).
    certificates: Vec<([u8; 32], Caller)>,
}

impl fmt::Debug for Tokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Names and roles only: no hashes in logs.
        f.debug_list()
            .entries(
                self.entries
                    .iter()
                    .chain(&self.certificates)
                    .map(|(_, c)| (&c.name, c.role)),
            )
            .finish()
    }
}

impl Tokens {
    /// From (name, role, `sha256:<hex>`) triples; the configuration validated the hashes.
    pub fn new<'a>(
        entries: impl IntoIterator<Item = (&'a str, Role, &'a str)>,
    ) -> Result<Tokens, String> {
        let entries = entries
            .into_iter()
            .map(|(name, role, hash)| {
                let h = parse_hash(hash).map_err(|e| format!("token '{name}': {e}"))?;
                Ok((
                    h,
                    Caller {
                        name: name.to_string(),
                        role,
                    },
                ))
            })
            .collect::<Result<_, String>>()?;
        Ok(Tokens {
            entries,
            certificates: Vec::new(),
        })
    }

    /// Adds client certificates from (name, role, fingerprint) triples: a caller that
    /// presents no token is known by its verified client certificate.
    pub fn with_certificates<'a>(
        mut self,
        entries: impl IntoIterator<Item = (&'a str, Role, &'a str)>,
    ) -> Result<Tokens, String> {
        for (name, role, fp) in entries {
            let f = parse_fingerprint(fp).map_err(|e| format!("certificate '{name}': {e}"))?;
            self.certificates.push((
                f,
                Caller {
                    name: name.to_string(),
                    role,
                },
            ));
        }
        Ok(self)
    }

    /// Whether any client certificate is mapped (so that the layer fingerprints them).
    pub fn has_certificates(&self) -> bool {
        !self.certificates.is_empty()
    }

    /// The caller a presented token belongs to. Compares every entry in full and in
    /// constant time (`subtle`), without stopping early, so the time taken says nothing
    /// about which hash came close.
    pub fn lookup(&self, token: &str) -> Option<&Caller> {
        use subtle::ConstantTimeEq;
        let presented: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let mut found = None;
        for (hash, caller) in &self.entries {
            if bool::from(hash.ct_eq(&presented)) {
                found = Some(caller);
            }
        }
        found
    }

    /// Decides a call: the caller to record, or the status to answer with. A bearer token,
    /// when sent, decides; without one, a verified client certificate listed in
    /// `[[auth.certificates]]` (its fingerprint is `client_certificate`) does.
    pub fn check(
        &self,
        path: &str,
        authorization: Option<&http::HeaderValue>,
        client_certificate: Option<[u8; 32]>,
    ) -> Result<Option<Caller>, Status> {
        let Some(needed) = required_role(path) else {
            return Ok(None);
        };
        let Some(header) = authorization else {
            let known = client_certificate
                .and_then(|f| self.certificates.iter().find(|(c, _)| *c == f))
                .map(|(_, caller)| caller);
            return match known {
                Some(caller) if caller.role < needed => Err(Status::permission_denied(format!(
                    "{path} needs the role '{needed}' (or higher); the client certificate '{}' has the role '{}'",
                    caller.name, caller.role
                ))),
                Some(caller) => Ok(Some(caller.clone())),
                None if client_certificate.is_some() && self.has_certificates() => {
                    Err(Status::unauthenticated(
                        "no credentials: the client certificate is not listed in [[auth.certificates]]; send the header 'authorization: Bearer <token>'",
                    ))
                }
                None => Err(Status::unauthenticated(
                    "no credentials: send the header 'authorization: Bearer <token>'",
                )),
            };
        };
        let token = header
            .to_str()
            .ok()
            .and_then(|v| {
                let (scheme, rest) = v.trim().split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
            })
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                Status::unauthenticated(
                    "malformed credentials: expected the header 'authorization: Bearer <token>'",
                )
            })?;
        let caller = self
            .lookup(token)
            .ok_or_else(|| Status::unauthenticated("the bearer token is not valid"))?;
        if caller.role < needed {
            return Err(Status::permission_denied(format!(
                "{path} needs the role '{needed}' (or higher); the token '{}' has the role '{}'",
                caller.name, caller.role
            )));
        }
        Ok(Some(caller.clone()))
    }
}

/// The tower layer applying [`Tokens::check`] to every call. `None`: access control is
/// disabled and every call passes (the default for a local `ramtid serve`).
#[derive(Debug, Clone)]
pub struct AuthLayer {
    tokens: Option<Arc<Tokens>>,
}

impl AuthLayer {
    pub fn new(tokens: Option<Tokens>) -> Self {
        AuthLayer {
            tokens: tokens.map(Arc::new),
        }
    }
}

impl<S> tower_layer::Layer<S> for AuthLayer {
    type Service = Auth<S>;

    fn layer(&self, inner: S) -> Auth<S> {
        Auth {
            inner,
            tokens: self.tokens.clone(),
        }
    }
}

/// The service [`AuthLayer`] wraps around the router.
#[derive(Debug, Clone)]
pub struct Auth<S> {
    inner: S,
    tokens: Option<Arc<Tokens>>,
}

type BoxFuture<T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send + 'static>>;

impl<S, B> tonic::codegen::Service<http::Request<B>> for Auth<S>
where
    S: tonic::codegen::Service<http::Request<B>, Response = http::Response<tonic::body::Body>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<S::Response, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<B>) -> Self::Future {
        if let Some(tokens) = &self.tokens {
            let authorization = req.headers().get(http::header::AUTHORIZATION);
            // Fingerprint the client certificate only when it can matter.
            let client_certificate = if authorization.is_none() && tokens.has_certificates() {
                req.extensions()
                    .get::<tonic::transport::server::TlsConnectInfo<
                        tonic::transport::server::TcpConnectInfo,
                    >>()
                    .and_then(|info| info.peer_certs())
                    .and_then(|certs| certs.first().map(|leaf| fingerprint(leaf.as_ref())))
            } else {
                None
            };
            let decision = tokens.check(req.uri().path(), authorization, client_certificate);
            match decision {
                Ok(Some(caller)) => {
                    // The token's name (never the token) on the call's span.
                    tracing::Span::current().record("caller", caller.name.as_str());
                    req.extensions_mut().insert(caller);
                }
                Ok(None) => {}
                Err(status) => {
                    tracing::info!(
                        method = req.uri().path(),
                        code = ?status.code(),
                        "call refused by access control"
                    );
                    return Box::pin(std::future::ready(Ok(status.into_http())));
                }
            }
        }
        Box::pin(self.inner.call(req))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::Code;

    fn tokens() -> Tokens {
        let (a, d, x) = (
            hash_token("assessor-secret"),
            hash_token("data-secret"),
            hash_token("admin-secret"),
        );
        Tokens::new([
            ("anna", Role::Assessor, a.as_str()),
            ("dora", Role::Data, d.as_str()),
            ("adam", Role::Admin, x.as_str()),
        ])
        .unwrap()
    }

    fn bearer(t: &str) -> http::HeaderValue {
        http::HeaderValue::from_str(&format!("Bearer {t}")).unwrap()
    }

    #[test]
    fn the_hash_is_sha256_hex() {
        // printf abc | sha256sum
        assert_eq!(
            hash_token("abc"),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(parse_hash(&hash_token("x")).is_ok());
        for bad in [
            "",
            "abc",
            "sha256:12",
            "md5:ba7816bf",
            &hash_token("x").replace('a', "g"),
        ] {
            assert!(parse_hash(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_table_orders_roles() {
        let t = tokens();
        let path = "/ramtid.v1.ModelService/ActivateModel";
        let e = t
            .check(path, Some(&bearer("assessor-secret")), None)
            .unwrap_err();
        assert_eq!(e.code(), Code::PermissionDenied);
        assert!(e.message().contains("'data'"), "{}", e.message());
        assert!(!e.message().contains("secret"));
        let c = t
            .check(path, Some(&bearer("data-secret")), None)
            .unwrap()
            .unwrap();
        assert_eq!((c.name.as_str(), c.role), ("dora", Role::Data));
        assert!(t.check(path, Some(&bearer("admin-secret")), None).is_ok());
        // Unlisted methods are admin-only; health is open without a token.
        let e = t
            .check(
                "/ramtid.v1.HistoryService/Erase",
                Some(&bearer("data-secret")),
                None,
            )
            .unwrap_err();
        assert!(e.message().contains("'admin'"));
        assert_eq!(
            t.check("/grpc.health.v1.Health/Check", None, None).unwrap(),
            None
        );
    }

    #[test]
    fn missing_malformed_and_unknown_tokens_are_unauthenticated() {
        let t = tokens();
        let path = "/ramtid.v1.EstimationService/Estimate";
        for h in [
            None,
            Some(http::HeaderValue::from_static("Basic abc")),
            Some(http::HeaderValue::from_static("Bearer ")),
            Some(bearer("guess")),
        ] {
            let e = t.check(path, h.as_ref(), None).unwrap_err();
            assert_eq!(e.code(), Code::Unauthenticated, "{h:?}");
        }
        assert!(t
            .check(path, Some(&bearer("assessor-secret")), None)
            .is_ok());
        let lower = http::HeaderValue::from_static("bearer assessor-secret");
        assert!(t.check(path, Some(&lower), None).is_ok());
    }

    #[test]
    fn a_listed_client_certificate_stands_in_for_a_token() {
        let der = b"not really DER, but fingerprinted all the same";
        let fp = fingerprint(der);
        let t = tokens()
            .with_certificates([("procapita", Role::Assessor, fingerprint_text(&fp).as_str())])
            .unwrap();
        let estimate = "/ramtid.v1.EstimationService/Estimate";
        let activate = "/ramtid.v1.ModelService/ActivateModel";
        let c = t.check(estimate, None, Some(fp)).unwrap().unwrap();
        assert_eq!((c.name.as_str(), c.role), ("procapita", Role::Assessor));
        let e = t.check(activate, None, Some(fp)).unwrap_err();
        assert_eq!(e.code(), Code::PermissionDenied);
        assert!(
            e.message().contains("client certificate 'procapita'"),
            "{}",
            e.message()
        );
        // A token, when sent, decides.
        let c = t
            .check(activate, Some(&bearer("data-secret")), Some(fp))
            .unwrap()
            .unwrap();
        assert_eq!(c.name, "dora");
        // An unlisted certificate is no credential.
        let e = t
            .check(estimate, None, Some(fingerprint(b"other")))
            .unwrap_err();
        assert_eq!(e.code(), Code::Unauthenticated);
        assert!(e.message().contains("not listed"), "{}", e.message());
    }

    #[test]
    fn fingerprints_parse_in_both_notations() {
        let fp = fingerprint(b"x");
        let ours = fingerprint_text(&fp);
        let openssl: Vec<String> = fp.iter().map(|b| format!("{b:02X}")).collect();
        let openssl = openssl.join(":");
        assert_eq!(parse_fingerprint(&ours).unwrap(), fp);
        assert_eq!(parse_fingerprint(&openssl).unwrap(), fp);
        assert_eq!(
            parse_fingerprint(&format!("sha256 Fingerprint={openssl}")).unwrap(),
            fp
        );
        for bad in ["", "AB:CD", "sha256:12", &openssl.replace(':', "")] {
            assert!(parse_fingerprint(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn debug_output_has_no_hashes() {
        let s = format!("{:?}", tokens());
        assert!(s.contains("anna") && !s.contains("sha256") && !s.contains("ba78"));
    }
}
