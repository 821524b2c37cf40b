//! TLS for PostgreSQL connections, with libpq's `sslmode` semantics, on rustls (ring provider;
//! nothing links OpenSSL).
//!
//! The DSN's `sslmode` and `sslrootcert` parameters mean what they mean to libpq (PostgreSQL
//! documentation, "Connection Parameters" and "SSL Support"). [`crate::dsn`] takes them out of
//! the DSN before tokio-postgres sees it (tokio-postgres itself knows only `disable`, `prefer`
//! and `require`), and [`Tls`] carries them out: which connection attempts are made, in which
//! order, and what is checked of the server's certificate.
//!
//! | `sslmode`          | connection attempts                 | server certificate checked                        |
//! |--------------------|-------------------------------------|---------------------------------------------------|
//! | `disable`          | plain                               | —                                                 |
//! | `allow`            | plain; if that fails, TLS           | not checked                                       |
//! | `prefer` (default) | TLS if the server offers it, else plain; if TLS fails, plain | not checked              |
//! | `require`          | TLS only                            | not checked, unless a root CA file is there: then as `verify-ca` |
//! | `verify-ca`        | TLS only                            | chain must lead to a CA in `sslrootcert`          |
//! | `verify-full`      | TLS only                            | chain as `verify-ca`, and the host name (or IP address) the DSN connects to must be in the certificate |
//!
//! libpq's words for each mode ("Connection Parameters", `sslmode`):
//! - `disable`: "only try a non-SSL connection"
//! - `allow`: "first try a non-SSL connection; if that fails, try an SSL connection"
//! - `prefer` (default): "first try an SSL connection; if that fails, try a non-SSL connection"
//! - `require`: "only try an SSL connection. If a root CA file is present, verify the certificate
//!   in the same way as if verify-ca was specified"
//! - `verify-ca`: "only try an SSL connection, and verify that the server certificate is issued by
//!   a trusted certificate authority (CA)"
//! - `verify-full`: "only try an SSL connection, verify that the server certificate is issued by a
//!   trusted CA and that the requested server host name matches that in the certificate"
//!
//! and what each protects against ("SSL Support", table "SSL Mode Descriptions"): `disable`,
//! `allow` and `prefer` give no protection against a man in the middle ("I don't care about
//! security/encryption"); `require` encrypts ("I trust that the network will make sure I always
//! connect to the server I want"); `verify-ca` makes sure "I connect to a server that I trust";
//! `verify-full` also that "it's the one I specify".
//!
//! `sslrootcert` is "the name of a file containing SSL certificate authority (CA)
//! certificate(s). If the file exists, the server's certificate will be verified to be signed by
//! one of these authorities. The default is `~/.postgresql/root.crt`." The special value `system`
//! loads the system's trusted CAs; then "the default sslmode is changed to verify-full, and any
//! weaker setting will result in an error."
//!
//! Where this differs from libpq, on purpose:
//! - `allow`/`prefer` never check the certificate, even when a root CA file exists (libpq checks
//!   it and, failing that, falls back to a plain connection: the outcome is an unauthenticated
//!   connection either way).
//! - An `sslrootcert` file named in the DSN must exist and hold a certificate, in every mode that
//!   uses it; libpq silently skips verification in `require` mode when the file is missing.
//!   (Only libpq's default, `~/.postgresql/root.crt`, is used just "if it exists".)
//! - `verify-full` matches the host against the certificate's subjectAltName entries only (DNS
//!   names, IP addresses), never the Common Name: rustls/webpki do not support that fallback.
//! - Client certificates (`sslcert`, `sslkey`) and CRLs (`sslcrl`) are not supported; the DSN
//!   parser refuses them.
//!
//! The PEM reader is `rustls::pki_types` (`PemObject`), which replaced the archived
//! `rustls-pemfile` crate. Channel binding (`SCRAM-SHA-256-PLUS`) works over TLS:
//! tokio-postgres-rustls provides the `tls-server-end-point` data.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::verify_server_cert_signed_by_trust_anchor;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use shadowswap_engine::{Error, Result};
use tokio::task::JoinHandle;
use tokio_postgres::config::SslMode as WireMode;
use tokio_postgres::tls::MakeTlsConnect;
use tokio_postgres::{Client, Config, Connection, Socket};
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::errors;

/// libpq's `sslmode` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// Plain connections only.
    Disable,
    /// Plain first; TLS (unverified) if the plain connection is refused.
    Allow,
    /// TLS (unverified) if the server offers it, else plain. libpq's default.
    Prefer,
    /// TLS only; the certificate is verified as in `VerifyCa` when a root CA file is given.
    Require,
    /// TLS only; the certificate chain must lead to a CA in `sslrootcert`.
    VerifyCa,
    /// TLS only; chain as `VerifyCa`, and the certificate must name the host connected to.
    VerifyFull,
}

impl SslMode {
    /// Every mode, weakest first.
    pub const ALL: [SslMode; 6] =
        [SslMode::Disable, SslMode::Allow, SslMode::Prefer, SslMode::Require, SslMode::VerifyCa, SslMode::VerifyFull];

    /// The mode named `s` (exactly as libpq spells it: lower case).
    pub fn parse(s: &str) -> Option<SslMode> {
        SslMode::ALL.into_iter().find(|m| m.as_str() == s)
    }

    /// libpq's name of the mode.
    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Allow => "allow",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }
}

/// Where the trusted CA certificates come from (`sslrootcert`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootCert {
    /// A PEM file of CA certificates.
    File(PathBuf),
    /// `sslrootcert=system`: the operating system's trusted CAs.
    System,
}

/// What is checked of the server's certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verification {
    /// Nothing (the TLS handshake still proves the server holds the certificate's key).
    None,
    /// The chain leads to a trusted CA (`verify-ca`).
    Ca,
    /// The chain, and the host name or IP address (`verify-full`).
    Full,
}

/// The TLS policy of one DSN, and the connector carrying it out. Cheap to clone.
#[derive(Clone)]
pub struct Tls {
    mode: SslMode,
    verification: Verification,
    /// The CA certificates in use, as the error messages name them ("sslrootcert=/x/ca.crt").
    roots_label: Option<String>,
    connector: MakeRustlsConnect,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("mode", &self.mode)
            .field("verification", &self.verification)
            .field("roots", &self.roots_label)
            .finish()
    }
}

/// The stream of a connection made by [`Tls`] (plain or TLS).
pub type TlsStream = <MakeRustlsConnect as MakeTlsConnect<Socket>>::Stream;

/// A tokio-postgres connection made by [`Tls::connect`]; it must be polled (spawned).
pub type PgConnection = Connection<Socket, TlsStream>;

/// libpq's default `sslrootcert`, under `home`.
pub fn default_root_cert(home: &Path) -> PathBuf {
    home.join(".postgresql").join("root.crt")
}

impl Tls {
    /// The policy for `sslmode` = `mode` (`None`: not given) and `sslrootcert` = `root_cert`, with
    /// libpq's default root CA file looked for under `home`. Reads the CA certificates now, so a
    /// missing or unreadable file is reported before any connection is attempted.
    ///
    /// Errors: [`Error::Refused`], one line naming the parameter and what to do.
    pub fn new(mode: Option<SslMode>, root_cert: Option<&str>, home: Option<&Path>) -> Result<Tls> {
        let explicit = root_cert.map(|r| if r == "system" { RootCert::System } else { RootCert::File(PathBuf::from(r)) });
        let mode = match (mode, &explicit) {
            (Some(m), _) => m,
            (None, Some(RootCert::System)) => SslMode::VerifyFull,
            (None, _) => SslMode::Prefer,
        };
        if explicit == Some(RootCert::System) && mode != SslMode::VerifyFull {
            return Err(Error::refused(format!(
                "invalid --dsn: sslmode={} may not be used with sslrootcert=system (libpq allows only verify-full there); use sslmode=verify-full, or name a CA file in sslrootcert",
                mode.as_str()
            )));
        }
        let default_file = home.map(default_root_cert);
        let existing_default = || default_file.clone().filter(|p| p.is_file());
        let (roots, is_default) = match mode {
            SslMode::Disable | SslMode::Allow | SslMode::Prefer => (None, false),
            SslMode::Require => match explicit {
                Some(r) => (Some(r), false),
                None => (existing_default().map(RootCert::File), true),
            },
            SslMode::VerifyCa | SslMode::VerifyFull => match explicit {
                Some(r) => (Some(r), false),
                None => match existing_default() {
                    Some(p) => (Some(RootCert::File(p)), true),
                    None => {
                        let default = match &default_file {
                            Some(p) => format!("libpq's default {} does not exist", p.display()),
                            None => "there is no home directory to find libpq's default ~/.postgresql/root.crt in".into(),
                        };
                        return Err(Error::refused(format!(
                            "sslmode={} verifies the server's certificate and needs the CA certificate that signed it, but none is given ({default}); add sslrootcert=/path/to/ca.crt (or sslrootcert=system) to the DSN, or use sslmode=require to encrypt without verifying the server",
                            mode.as_str()
                        )));
                    }
                },
            },
        };
        let verification = match (mode, &roots) {
            (SslMode::VerifyFull, _) => Verification::Full,
            (_, Some(_)) => Verification::Ca,
            (_, None) => Verification::None,
        };
        let roots_label = roots.as_ref().map(|r| match r {
            RootCert::System => "the system's trusted CAs (sslrootcert=system)".to_string(),
            RootCert::File(p) if is_default => format!("{} (libpq's default sslrootcert)", p.display()),
            RootCert::File(p) => format!("sslrootcert={}", p.display()),
        });

        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::refused(format!("TLS setup failed: {e}; please report this")))?;
        let store = roots.as_ref().map(load_roots).transpose()?;
        let mut config = match (verification, store) {
            (Verification::Full, Some(store)) => builder.with_root_certificates(store).with_no_client_auth(),
            (_, store) => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(LibpqVerifier { roots: store.map(Arc::new), provider }))
                .with_no_client_auth(),
        };
        // As libpq 17: the ALPN protocol PostgreSQL registered. Older servers ignore it; it is
        // what `sslnegotiation=direct` needs.
        config.alpn_protocols = vec![b"postgresql".to_vec()];
        Ok(Tls { mode, verification, roots_label, connector: MakeRustlsConnect::new(config) })
    }

    /// The effective `sslmode` (libpq's default `prefer` when none was given, `verify-full` with
    /// `sslrootcert=system`).
    pub fn mode(&self) -> SslMode {
        self.mode
    }

    /// What is checked of the server's certificate.
    pub fn verification(&self) -> Verification {
        self.verification
    }

    /// tokio-postgres' mode for the first connection attempt.
    pub fn first_wire_mode(&self) -> WireMode {
        self.attempts().0
    }

    /// The first attempt's mode, and the fallback attempt's if there is one.
    fn attempts(&self) -> (WireMode, Option<WireMode>) {
        match self.mode {
            SslMode::Disable => (WireMode::Disable, None),
            SslMode::Allow => (WireMode::Disable, Some(WireMode::Require)),
            SslMode::Prefer => (WireMode::Prefer, Some(WireMode::Disable)),
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => (WireMode::Require, None),
        }
    }

    /// Open a connection as libpq would with this `sslmode`: `allow` tries plain then TLS,
    /// `prefer` TLS (when offered) then plain, when the first attempt is refused by the server
    /// or its TLS handshake fails; a server that cannot be reached is not tried twice. When both
    /// attempts fail, the TLS failure is returned if there was one (it is the one to fix), else
    /// the last error.
    pub async fn connect(&self, config: &Config) -> std::result::Result<(Client, PgConnection), tokio_postgres::Error> {
        let (first, fallback) = self.attempts();
        let first_err = match self.attempt(config, first).await {
            Ok(c) => return Ok(c),
            Err(e) => e,
        };
        let Some(fallback) = fallback.filter(|_| first_err.as_db_error().is_some() || is_tls_failure(&first_err)) else {
            return Err(first_err);
        };
        tracing::debug!(
            sslmode = self.mode.as_str(),
            "connection attempt failed ({first_err}); retrying {}",
            if fallback == WireMode::Disable { "without TLS" } else { "with TLS" }
        );
        match self.attempt(config, fallback).await {
            Ok(c) => Ok(c),
            Err(second) if is_tls_failure(&first_err) && !is_tls_failure(&second) => Err(first_err),
            Err(second) => Err(second),
        }
    }

    async fn attempt(
        &self,
        config: &Config,
        mode: WireMode,
    ) -> std::result::Result<(Client, PgConnection), tokio_postgres::Error> {
        let mut config = config.clone();
        config.ssl_mode(mode);
        config.connect(self.connector.clone()).await
    }

    /// If `e` is a TLS failure, the one-line message for it: what went wrong and what to do.
    /// `target` is the DSN without its password. Never includes the password (tokio-postgres
    /// and rustls errors do not carry it).
    pub fn explain(&self, e: &tokio_postgres::Error, target: &str) -> Option<String> {
        let mode = self.mode.as_str();
        let roots = self.roots_label.as_deref().unwrap_or("the given CA certificates");
        let head = format!("cannot connect to {target} with sslmode={mode}");
        let text = crate::errors::full_message(e);
        if errors::says_server_has_no_tls(&text) {
            return Some(format!(
                "{head}: the server does not accept TLS connections (its ssl setting is off) but sslmode={mode} requires TLS; enable ssl on the server (ssl = on, ssl_cert_file, ssl_key_file), or use sslmode=prefer or disable if the network is trusted"
            ));
        }
        if let Some(refusal) = errors::refused_without_tls(e).filter(|_| self.mode == SslMode::Disable) {
            return Some(format!(
                "{head}: the server accepts this connection only over TLS ({refusal} [28000]); use sslmode=require, verify-ca or verify-full"
            ));
        }
        let msg = match rustls_error(e) {
            Some(rustls::Error::InvalidCertificate(c)) => match c {
                CertificateError::UnknownIssuer => format!(
                    "{head}: the server's certificate is not signed by a CA in {roots} (invalid peer certificate: UnknownIssuer); point sslrootcert at the CA certificate (PEM) that signed the server's certificate, or use sslmode=require to encrypt without verifying the server"
                ),
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                    let (host, names) = match c {
                        CertificateError::NotValidForNameContext { expected, presented } => {
                            // rustls shows them as `DnsName("localhost")`, `IpAddress(127.0.0.1)`.
                            let bare = |n: &String| {
                                let inner = n.split_once('(').and_then(|(_, r)| r.strip_suffix(')')).unwrap_or(n);
                                inner.trim_matches('"').to_string()
                            };
                            (expected.to_str().into_owned(), presented.iter().map(bare).collect::<Vec<_>>().join(", "))
                        }
                        _ => (target.to_string(), String::new()),
                    };
                    let names = if names.is_empty() { String::new() } else { format!(" (it names {names})") };
                    format!(
                        "{head}: the server's certificate is not valid for host {host}{names}; connect with a host name or IP address the certificate lists, or use sslmode=verify-ca to verify only that a trusted CA signed it"
                    )
                }
                CertificateError::Expired | CertificateError::ExpiredContext { .. } => format!(
                    "{head}: the server's certificate has expired ({c:?}); renew the server's certificate (ssl_cert_file), or check this machine's clock"
                ),
                CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => format!(
                    "{head}: the server's certificate is not valid yet ({c:?}); check this machine's and the server's clocks"
                ),
                other => format!(
                    "{head}: the server's certificate was rejected ({other:?}); check the server's certificate against {roots}, or use sslmode=require to encrypt without verifying the server"
                ),
            },
            Some(other) => format!(
                "{head}: the TLS handshake failed ({other}); check the server's TLS settings (ssl, ssl_min_protocol_version, its certificate), or use another sslmode"
            ),
            None if is_tls_failure(e) => format!(
                "{head}: the TLS handshake failed ({text}); check the server's TLS settings, or use another sslmode"
            ),
            None => return None,
        };
        Some(msg)
    }
}

/// deadpool-postgres opens the pool's connections through [`Tls::connect`], so they follow the
/// same `sslmode` rules as every other connection.
impl deadpool_postgres::Connect for Tls {
    fn connect(
        &self,
        pg_config: &Config,
    ) -> Pin<Box<dyn Future<Output = std::result::Result<(Client, JoinHandle<()>), tokio_postgres::Error>> + Send + '_>> {
        let pg_config = pg_config.clone();
        Box::pin(async move {
            let (client, connection) = Tls::connect(self, &pg_config).await?;
            let task = tokio::spawn(async move {
                if let Err(e) = connection.await {
                    tracing::warn!(target: "deadpool.postgres", "Connection error: {}", e);
                }
            });
            Ok((client, task))
        })
    }
}

/// The rustls error inside `e`, if any. (`io::Error::source` skips the wrapped error itself, so
/// each link is also looked into as an `io::Error`.)
fn rustls_error(e: &tokio_postgres::Error) -> Option<&rustls::Error> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(r) = err.downcast_ref::<rustls::Error>() {
            return Some(r);
        }
        if let Some(r) = err.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref()).and_then(|i| i.downcast_ref()) {
            return Some(r);
        }
        cur = err.source();
    }
    None
}

/// Whether `e` is a failure of TLS itself (handshake, certificate, server without TLS).
fn is_tls_failure(e: &tokio_postgres::Error) -> bool {
    rustls_error(e).is_some() || errors::is_tls_handshake_error(e)
}

/// The CA certificates of `root`.
fn load_roots(root: &RootCert) -> Result<RootCertStore> {
    let mut store = RootCertStore::empty();
    match root {
        RootCert::File(path) => {
            let shown = path.display();
            let hint =
                "give sslrootcert the path of the PEM file holding the CA certificate that signed the server's certificate";
            let bytes =
                std::fs::read(path).map_err(|e| Error::refused(format!("cannot read sslrootcert file {shown}: {e}; {hint}")))?;
            let certs = CertificateDer::pem_slice_iter(&bytes)
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(|e| Error::refused(format!("sslrootcert file {shown} is not valid PEM ({e}); {hint}")))?;
            if certs.is_empty() {
                return Err(Error::refused(format!(
                    "sslrootcert file {shown} holds no certificate (no -----BEGIN CERTIFICATE----- block); {hint}"
                )));
            }
            for (i, cert) in certs.into_iter().enumerate() {
                store.add(cert).map_err(|e| {
                    Error::refused(format!(
                        "certificate {} in sslrootcert file {shown} cannot be used as a CA: {e}; {hint}",
                        i + 1
                    ))
                })?;
            }
        }
        RootCert::System => {
            let found = rustls_native_certs::load_native_certs();
            let (added, _ignored) = store.add_parsable_certificates(found.certs);
            if added == 0 {
                let why = found.errors.first().map(|e| format!(" ({e})")).unwrap_or_default();
                return Err(Error::refused(format!(
                    "sslrootcert=system: no trusted CA certificates found on this system{why}; install the system's CA certificates (e.g. the ca-certificates package), or give sslrootcert a CA file"
                )));
            }
        }
    }
    Ok(store)
}

/// The certificate check of `allow`, `prefer`, `require` and `verify-ca`: with `roots`, the chain
/// must lead to one of them (the host name is not looked at); without, nothing is checked. In
/// both cases the handshake signatures are verified, so the server must hold the private key of
/// the certificate it shows.
#[derive(Debug)]
struct LibpqVerifier {
    roots: Option<Arc<RootCertStore>>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for LibpqVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        if let Some(roots) = &self.roots {
            let cert = ParsedCertificate::try_from(end_entity)?;
            verify_server_cert_signed_by_trust_anchor(
                &cert,
                roots,
                intermediates,
                now,
                self.provider.signature_verification_algorithms.all,
            )?;
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(r: Result<Tls>) -> String {
        match r {
            Err(e) => e.to_string(),
            Ok(t) => panic!("expected a refusal, got {t:?}"),
        }
    }

    #[test]
    fn modes_round_trip_and_are_case_sensitive() {
        for m in SslMode::ALL {
            assert_eq!(SslMode::parse(m.as_str()), Some(m));
        }
        assert_eq!(SslMode::parse("REQUIRE"), None);
        assert_eq!(SslMode::parse("verify_full"), None);
    }

    #[test]
    fn defaults_follow_libpq() {
        let home = Path::new("/nonexistent-home");
        let t = Tls::new(None, None, Some(home)).unwrap();
        assert_eq!((t.mode(), t.verification(), t.first_wire_mode()), (SslMode::Prefer, Verification::None, WireMode::Prefer));
        let t = Tls::new(Some(SslMode::Require), None, Some(home)).unwrap();
        assert_eq!((t.verification(), t.first_wire_mode()), (Verification::None, WireMode::Require));
        let t = Tls::new(Some(SslMode::Allow), None, None).unwrap();
        assert_eq!(t.first_wire_mode(), WireMode::Disable);
    }

    #[test]
    fn verifying_modes_need_a_ca() {
        for m in [SslMode::VerifyCa, SslMode::VerifyFull] {
            let e = refusal(Tls::new(Some(m), None, Some(Path::new("/nonexistent-home"))));
            assert!(e.contains(&format!("sslmode={} verifies", m.as_str())), "{e}");
            assert!(e.contains("/nonexistent-home/.postgresql/root.crt does not exist"), "{e}");
            assert!(e.contains("add sslrootcert="), "{e}");
        }
        let e = refusal(Tls::new(Some(SslMode::VerifyCa), Some("/nonexistent/ca.crt"), None));
        assert!(e.starts_with("cannot read sslrootcert file /nonexistent/ca.crt: "), "{e}");
        // A file named explicitly is used (and must exist) in require mode too.
        let e = refusal(Tls::new(Some(SslMode::Require), Some("/nonexistent/ca.crt"), None));
        assert!(e.starts_with("cannot read sslrootcert file"), "{e}");
    }

    #[test]
    fn root_cert_files_are_checked() {
        let dir = std::env::temp_dir().join(format!("shadowswap-tls-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let e = refusal(Tls::new(Some(SslMode::VerifyCa), Some(empty.to_str().unwrap()), None));
        assert!(e.contains("holds no certificate"), "{e}");
        // libpq's default file makes `require` verify, as `verify-ca`; `prefer` never verifies.
        let home = dir.join("home");
        std::fs::create_dir_all(home.join(".postgresql")).unwrap();
        std::fs::write(default_root_cert(&home), "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n").unwrap();
        let e = refusal(Tls::new(Some(SslMode::Require), None, Some(&home)));
        assert!(e.contains("(libpq's default sslrootcert)") || e.contains(".postgresql/root.crt"), "{e}");
        let t = Tls::new(Some(SslMode::Prefer), None, Some(&home)).unwrap();
        assert_eq!(t.verification(), Verification::None);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn system_roots_only_with_verify_full() {
        let e = refusal(Tls::new(Some(SslMode::Require), Some("system"), None));
        assert!(e.contains("sslmode=require may not be used with sslrootcert=system"), "{e}");
        // Without sslmode, sslrootcert=system means verify-full (if the system has CAs at all).
        if let Ok(t) = Tls::new(None, Some("system"), None) {
            assert_eq!((t.mode(), t.verification()), (SslMode::VerifyFull, Verification::Full));
        }
    }
}
