//! TLS to PostgreSQL with rustls (already in the build for the gRPC server), for a history
//! on another host: the calculations are personal data and must not cross the network in
//! clear text.
//!
//! The URL names the CA with `sslrootcert=PATH` (PEM), as libpq does; the server's
//! certificate must chain to it and name the host the URL connects to. tokio-postgres does
//! not know that option, so [`split_root_cert`] takes it out before the URL is parsed.
//! Channel binding is not offered: SCRAM then authenticates without it, as over libpq with
//! `channel_binding=prefer` when the binding is not available.

use super::{HistoryError, Result};
use postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect, TlsStream};
use postgres::Socket;
use rustls::pki_types::ServerName;
use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The URL without `sslrootcert=…`, and that path when it was there.
pub(crate) fn split_root_cert(url: &str) -> (String, Option<PathBuf>) {
    let Some((head, query)) = url.split_once('?') else {
        return (url.to_string(), None);
    };
    let mut root = None;
    let rest: Vec<&str> = query
        .split('&')
        .filter(|kv| match kv.strip_prefix("sslrootcert=") {
            Some(path) => {
                root = Some(PathBuf::from(path));
                false
            }
            None => true,
        })
        .collect();
    let url = if rest.is_empty() {
        head.to_string()
    } else {
        format!("{head}?{}", rest.join("&"))
    };
    (url, root)
}

/// The URL with `sslmode=require` unless it already says so; `disable` or `prefer` beside a
/// CA is a contradiction and refused.
pub(crate) fn with_tls_required(url: &str) -> Result<String> {
    match ssl_mode(url) {
        Some("require") => Ok(url.to_string()),
        None if url.contains('?') => Ok(format!("{url}&sslmode=require")),
        None => Ok(format!("{url}?sslmode=require")),
        Some(other) => Err(HistoryError::PgTls(format!(
            "sslmode={other} with sslrootcert: a CA is named to verify the server over TLS; use sslmode=require (or leave sslmode out)"
        ))),
    }
}

/// Whether the URL asks for TLS (`sslmode=require`).
pub(crate) fn requires_tls(url: &str) -> bool {
    ssl_mode(url) == Some("require")
}

/// The URL's `sslmode=` value, if it has one.
fn ssl_mode(url: &str) -> Option<&str> {
    let (_, query) = url.split_once('?')?;
    query.split('&').find_map(|kv| kv.strip_prefix("sslmode="))
}

/// A connector that trusts only the CA certificates in `ca_file`.
pub(crate) fn connector(ca_file: &Path) -> Result<RustlsConnect> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;
    let bad =
        |why: String| HistoryError::PgTls(format!("sslrootcert {}: {why}", ca_file.display()));
    let mut roots = rustls::RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(ca_file).map_err(|e| bad(e.to_string()))?;
    for cert in certs {
        let cert = cert.map_err(|e| bad(e.to_string()))?;
        roots.add(cert).map_err(|e| bad(e.to_string()))?;
    }
    if roots.is_empty() {
        return Err(bad("no certificate in the file".into()));
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| bad(e.to_string()))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(RustlsConnect(Arc::new(config)))
}

/// [`MakeTlsConnect`] for the `postgres` crate.
#[derive(Clone)]
pub(crate) struct RustlsConnect(Arc<rustls::ClientConfig>);

impl MakeTlsConnect<Socket> for RustlsConnect {
    type Stream = RustlsStream;
    type TlsConnect = RustlsConnectOne;
    type Error = io::Error;

    fn make_tls_connect(&mut self, host: &str) -> io::Result<RustlsConnectOne> {
        let name = ServerName::try_from(host.to_string())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        Ok(RustlsConnectOne {
            config: self.0.clone(),
            name,
        })
    }
}

pub(crate) struct RustlsConnectOne {
    config: Arc<rustls::ClientConfig>,
    name: ServerName<'static>,
}

impl TlsConnect<Socket> for RustlsConnectOne {
    type Stream = RustlsStream;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<RustlsStream>> + Send>>;

    fn connect(self, socket: Socket) -> Self::Future {
        Box::pin(async move {
            let stream = tokio_rustls::TlsConnector::from(self.config)
                .connect(self.name, socket)
                .await?;
            Ok(RustlsStream(stream))
        })
    }
}

pub(crate) struct RustlsStream(tokio_rustls::client::TlsStream<Socket>);

impl TlsStream for RustlsStream {
    fn channel_binding(&self) -> ChannelBinding {
        ChannelBinding::none()
    }
}

impl AsyncRead for RustlsStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for RustlsStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_root_cert_option_is_taken_out_of_the_url() {
        let (url, root) =
            split_root_cert("postgres://u@db:5432/h?sslmode=require&sslrootcert=/etc/ca.pem");
        assert_eq!(url, "postgres://u@db:5432/h?sslmode=require");
        assert_eq!(root.as_deref(), Some(Path::new("/etc/ca.pem")));
        let (url, root) = split_root_cert("postgres://u@db/h?sslrootcert=/ca.pem");
        assert_eq!((url.as_str(), root.is_some()), ("postgres://u@db/h", true));
        let (url, root) = split_root_cert("postgres://u@db/h");
        assert_eq!((url.as_str(), root), ("postgres://u@db/h", None));
        assert!(requires_tls(
            "postgres://db/h?connect_timeout=3&sslmode=require"
        ));
        assert!(!requires_tls("postgres://db/h?sslmode=prefer"));
        assert_eq!(
            with_tls_required("postgres://db/h").unwrap(),
            "postgres://db/h?sslmode=require"
        );
        assert_eq!(
            with_tls_required("postgres://db/h?connect_timeout=3").unwrap(),
            "postgres://db/h?connect_timeout=3&sslmode=require"
        );
        assert_eq!(
            with_tls_required("postgres://db/h?sslmode=require").unwrap(),
            "postgres://db/h?sslmode=require"
        );
        let e = with_tls_required("postgres://db/h?sslmode=disable").unwrap_err();
        assert!(e.to_string().contains("sslmode=disable"), "{e}");
    }

    #[test]
    fn a_missing_or_empty_ca_file_is_a_clear_error() {
        let e = connector(Path::new("/no/such/ca.pem")).err().unwrap();
        assert!(e.to_string().contains("sslrootcert /no/such/ca.pem"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "").unwrap();
        let e = connector(&empty).err().unwrap();
        assert!(e.to_string().contains("no certificate"), "{e}");
    }
}
