//! `postgres://` / `postgresql://` DSNs (and libpq's `key=value` strings), parsed by
//! tokio-postgres, with libpq's TLS parameters `sslmode` and `sslrootcert` taken out first and
//! handed to [`Tls`] (tokio-postgres knows only `sslmode=disable|prefer|require`; see
//! [`crate::tls`] for what each mode does). The password may instead come from `PGPASSWORD`, as
//! with libpq. [`Dsn`]'s `Display` and `Debug` never show the password, and no error built here
//! quotes the DSN.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use percent_encoding::percent_decode_str;
use shadowswap_engine::{Error, Result};
use tokio_postgres::config::Host;
use tokio_postgres::Config;

use crate::tls::{SslMode, Tls};

/// How long connecting may take when the DSN gives no `connect_timeout` (seconds: 10).
pub(crate) const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// Idle time before TCP keepalive probes a session (seconds: 30), so a dead peer is noticed.
pub(crate) const KEEPALIVE_IDLE: std::time::Duration = std::time::Duration::from_secs(30);

/// Session settings shadowswap's connections start with (passed as libpq `options`, which take
/// precedence over anything `ALTER DATABASE … SET` / `ALTER ROLE … SET` configured — a database
/// or role owner controls those, so shadowswap's SQL must not depend on them):
/// - `row_security=off`, so a query that row-level security would filter fails instead of
///   silently seeing fewer rows (a copy or checksum must see every row);
/// - ISO dates, `IntervalStyle=postgres`, enough float digits and hex bytea, so key values and
///   timestamps travel as exact text. `TimeZone` is deliberately not set: the session gets the
///   one the server, database or role gives a new session, so defaults the copy evaluates
///   (`now()` into a `timestamp without time zone` column) equal what a plain `ALTER TABLE`
///   gives; `timestamptz` text carries its UTC offset in ISO style, so key values still
///   round-trip exactly in any zone;
/// - `standard_conforming_strings=on` (what catalog deparsing and quoting assume; literals are
///   built to be correct either way, see [`crate::sql::literal`]), `backslash_quote`,
///   `array_nulls`, `transform_null_equals` at their defaults, `check_function_bodies=on`, so a
///   capture function's body is checked when it is created;
/// - `role=none` (a database-level `SET role` would make the sessions act as another role),
///   READ COMMITTED read-write transactions (the copy's `FOR SHARE` relies on READ COMMITTED),
///   and no statement, lock or idle timeouts (shadowswap sets `lock_timeout` per transaction;
///   an idle timeout would end the session that holds the run's advisory lock).
///
/// `search_path` is pinned per connection as well (see [`PINNED_SEARCH_PATH`]), so is
/// `idle_session_timeout` where the server has it ([`IDLE_SESSION_OPTION`]), and
/// `session_replication_role`, which only a superuser may set, is pinned or checked at connect.
pub const SESSION_OPTIONS: &str = "-c row_security=off -c DateStyle=ISO,YMD -c IntervalStyle=postgres \
     -c extra_float_digits=3 -c bytea_output=hex -c client_min_messages=warning -c standard_conforming_strings=on \
     -c backslash_quote=safe_encoding -c array_nulls=on -c transform_null_equals=off -c check_function_bodies=on \
     -c role=none -c default_transaction_isolation=read\\ committed -c default_transaction_read_only=off \
     -c default_transaction_deferrable=off -c statement_timeout=0 -c lock_timeout=0 \
     -c idle_in_transaction_session_timeout=0";

/// `idle_session_timeout=0`, for servers that have the setting (PostgreSQL 14 and later; an
/// unknown parameter at connect would fail the connection on older ones).
pub const IDLE_SESSION_OPTION: &str = "-c idle_session_timeout=0";

/// The `search_path` of every session shadowswap works in: built-in objects only (`pg_temp`
/// last, so a temporary object never hides one). A database owner can put a schema of theirs
/// first (`ALTER DATABASE … SET search_path = evil, pg_catalog`), where a function named like a
/// built-in one would then run with shadowswap's privileges. The user's own search path is used
/// only for the ALTER text itself, which runs as the table's owner.
pub const PINNED_SEARCH_PATH: &str = "-c search_path=pg_catalog,pg_temp";

/// The libpq `options` of every session after the first: [`SESSION_OPTIONS`],
/// [`PINNED_SEARCH_PATH`], [`IDLE_SESSION_OPTION`] on PostgreSQL 14 and later
/// (`server_version_num` >= 140000), and `session_replication_role=origin` for a superuser (only
/// a superuser may set it, at connect too).
pub fn session_options(server_version_num: u32, superuser: bool) -> String {
    let mut options = format!("{SESSION_OPTIONS} {PINNED_SEARCH_PATH}");
    if server_version_num >= 140000 {
        options.push(' ');
        options.push_str(IDLE_SESSION_OPTION);
    }
    if superuser {
        options.push_str(" -c session_replication_role=origin");
    }
    options
}

/// A parsed DSN.
#[derive(Clone)]
pub struct Dsn {
    /// The driver configuration (password included). Its `ssl_mode` is that of the first
    /// connection attempt; connect through [`Dsn::tls`], which applies the whole `sslmode`.
    pub config: Config,
    /// The TLS policy (`sslmode`, `sslrootcert`) and connector.
    pub tls: Tls,
}

impl fmt::Debug for Dsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Dsn({self}, sslmode={})", self.tls.mode().as_str())
    }
}

impl fmt::Display for Dsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let host = match self.config.get_hosts().first() {
            Some(Host::Tcp(h)) => h.clone(),
            Some(Host::Unix(p)) => p.display().to_string(),
            None => "localhost".into(),
        };
        let port = self.config.get_ports().first().copied().unwrap_or(5432);
        write!(f, "postgres://{}@{host}:{port}/{}", self.config.get_user().unwrap_or(""), self.config.get_dbname().unwrap_or(""))
    }
}

/// libpq's TLS parameters found in a DSN (the last occurrence of each wins, as in libpq).
#[derive(Debug, Default, PartialEq, Eq)]
struct TlsParams {
    sslmode: Option<String>,
    sslrootcert: Option<String>,
}

impl TlsParams {
    /// Take `key` if it is ours. Other `ssl*` parameters libpq knows (client certificates, CRLs,
    /// protocol bounds) are refused here rather than reported by tokio-postgres as unknown.
    fn take(&mut self, key: &str, value: String) -> Result<bool> {
        match key {
            "sslmode" => self.sslmode = Some(value),
            "sslrootcert" => self.sslrootcert = Some(value),
            // tokio-postgres implements this one itself.
            "sslnegotiation" => return Ok(false),
            k if k.starts_with("ssl") || k == "requiressl" => {
                return Err(Error::refused(format!(
                    "invalid --dsn: the parameter {k} is not supported (shadowswap knows sslmode, sslrootcert and sslnegotiation; client certificates and CRLs are not supported); remove it from the DSN"
                )))
            }
            _ => return Ok(false),
        }
        Ok(true)
    }
}

impl Dsn {
    /// Parse `dsn`; `env_password` (the caller passes `PGPASSWORD`) is used when the DSN has none.
    /// `sslmode` (default `prefer`) and `sslrootcert` follow libpq (see [`crate::tls`]); libpq's
    /// default root CA file is looked for under `$HOME`. CA files are read now.
    pub fn parse(dsn: &str, env_password: Option<String>) -> Result<Dsn> {
        let home = std::env::var_os("HOME").filter(|h| !h.is_empty()).map(PathBuf::from);
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        Dsn::parse_with_env(dsn, env_password, home, env("PGSSLMODE"), env("PGSSLROOTCERT"))
    }

    /// [`Dsn::parse`], with libpq's default `~/.postgresql/root.crt` looked for under `home`.
    pub fn parse_with_home(dsn: &str, env_password: Option<String>, home: Option<PathBuf>) -> Result<Dsn> {
        Dsn::parse_with_env(dsn, env_password, home, None, None)
    }

    /// [`Dsn::parse_with_home`] with libpq's environment defaults for the TLS parameters
    /// (`PGSSLMODE`, `PGSSLROOTCERT`): used when the DSN does not give them.
    pub fn parse_with_env(
        dsn: &str,
        env_password: Option<String>,
        home: Option<PathBuf>,
        env_sslmode: Option<String>,
        env_sslrootcert: Option<String>,
    ) -> Result<Dsn> {
        let (rest, params) = split_tls_params(dsn)?;
        let mut config = Config::from_str(&rest).map_err(|e| {
            Error::refused(format!(
                "invalid --dsn: {}; expected postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?sslmode=...]",
                crate::errors::full_message(&e)
            ))
        })?;
        if config.get_user().is_none() {
            return Err(Error::refused("invalid --dsn: no user; expected postgres://USER@HOST[:PORT]/DATABASE"));
        }
        if config.get_password().is_none() {
            if let Some(p) = env_password {
                config.password(p);
            }
        }
        // A stalled network (no reset, no answer) must not hang a run past --reconnect-timeout:
        // connecting gives up after CONNECT_TIMEOUT unless the DSN says otherwise, and TCP
        // keepalive probes an idle session after KEEPALIVE_IDLE.
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        config.keepalives(true).keepalives_idle(KEEPALIVE_IDLE);
        let params = TlsParams { sslmode: params.sslmode.or(env_sslmode), sslrootcert: params.sslrootcert.or(env_sslrootcert) };
        let mode = match params.sslmode.as_deref() {
            None => None,
            Some(m) => Some(SslMode::parse(m).ok_or_else(|| {
                Error::refused(format!(
                    "invalid --dsn: sslmode={m:?} is not one of {}",
                    SslMode::ALL.map(SslMode::as_str).join(", ")
                ))
            })?),
        };
        if params.sslrootcert.as_deref() == Some("") {
            return Err(Error::refused("invalid --dsn: sslrootcert is empty; give the path of the CA certificate file"));
        }
        let tls = Tls::new(mode, params.sslrootcert.as_deref(), home.as_deref())?;
        config.ssl_mode(tls.first_wire_mode());
        config.options(SESSION_OPTIONS);
        config.application_name("shadowswap");
        Ok(Dsn { config, tls })
    }
}

/// `dsn` without `sslmode`/`sslrootcert` (which tokio-postgres does not understand), and their
/// values. A DSN this cannot take apart is returned whole, for tokio-postgres' parser to report.
fn split_tls_params(dsn: &str) -> Result<(String, TlsParams)> {
    let mut params = TlsParams::default();
    let rest = match ["postgres://", "postgresql://"].iter().find(|p| dsn.starts_with(*p)) {
        Some(scheme) => split_url(dsn, scheme.len(), &mut params)?,
        None => split_key_values(dsn, &mut params)?,
    };
    Ok((rest, params))
}

/// URL form. As tokio-postgres reads it: credentials end at the first `@` (a password may hold
/// `?`), the query string starts at the next `?`, parameters are `&`-separated, percent-encoded.
fn split_url(dsn: &str, scheme_len: usize, params: &mut TlsParams) -> Result<String> {
    let after_creds = dsn[scheme_len..].find('@').map_or(scheme_len, |i| scheme_len + i + 1);
    let Some(q) = dsn[after_creds..].find('?').map(|i| after_creds + i) else {
        return Ok(dsn.to_string());
    };
    let mut kept = Vec::new();
    for pair in dsn[q + 1..].split('&') {
        let Some((k, v)) = pair.split_once('=') else {
            kept.push(pair);
            continue;
        };
        let (Ok(key), Ok(value)) = (percent_decode_str(k).decode_utf8(), percent_decode_str(v).decode_utf8()) else {
            kept.push(pair);
            continue;
        };
        if !params.take(&key, value.into_owned())? {
            kept.push(pair);
        }
    }
    let mut rest = dsn[..q].to_string();
    if !kept.is_empty() {
        rest.push('?');
        rest.push_str(&kept.join("&"));
    }
    Ok(rest)
}

/// libpq's `key=value` form (values optionally single-quoted, backslash escapes), with the same
/// rules as tokio-postgres' parser. The remaining pairs are written back quoted.
fn split_key_values(dsn: &str, params: &mut TlsParams) -> Result<String> {
    let mut kept = Vec::new();
    let mut it = dsn.chars().peekable();
    loop {
        while it.next_if(|c| c.is_whitespace()).is_some() {}
        let mut key = String::new();
        while let Some(c) = it.next_if(|c| !c.is_whitespace() && *c != '=') {
            key.push(c);
        }
        if key.is_empty() {
            break;
        }
        while it.next_if(|c| c.is_whitespace()).is_some() {}
        if it.next() != Some('=') {
            return Ok(dsn.to_string());
        }
        while it.next_if(|c| c.is_whitespace()).is_some() {}
        let quoted = it.next_if_eq(&'\'').is_some();
        let mut value = String::new();
        let mut closed = !quoted;
        while let Some(c) = it.peek().copied() {
            if (quoted && c == '\'') || (!quoted && c.is_whitespace()) {
                if quoted {
                    it.next();
                    closed = true;
                }
                break;
            }
            it.next();
            if c == '\\' {
                if let Some(c2) = it.next() {
                    value.push(c2);
                }
            } else {
                value.push(c);
            }
        }
        if !closed || (!quoted && value.is_empty()) {
            return Ok(dsn.to_string());
        }
        if !params.take(&key, value.clone())? {
            kept.push(format!("{key}='{}'", value.replace('\\', "\\\\").replace('\'', "\\'")));
        }
    }
    Ok(kept.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_postgres::config::SslMode as WireMode;

    const NO_HOME: Option<PathBuf> = None;

    #[test]
    fn session_options_follow_version_and_role() {
        let base = format!("{SESSION_OPTIONS} {PINNED_SEARCH_PATH}");
        assert_eq!(session_options(130012, false), base);
        assert_eq!(session_options(150004, false), format!("{base} -c idle_session_timeout=0"));
        assert_eq!(session_options(150004, true), format!("{base} -c idle_session_timeout=0 -c session_replication_role=origin"));
        assert_eq!(session_options(0, true), format!("{base} -c session_replication_role=origin"));
    }

    fn parse(dsn: &str) -> Result<Dsn> {
        Dsn::parse_with_home(dsn, None, NO_HOME)
    }

    #[test]
    fn parses_and_never_shows_the_password() {
        let d = parse("postgresql://app:s3cret@127.0.0.1:54329/shop").unwrap();
        assert_eq!(d.to_string(), "postgres://app@127.0.0.1:54329/shop");
        assert!(!format!("{d:?}").contains("s3cret"));
        assert_eq!(d.config.get_password(), Some(&b"s3cret"[..]));
        let e = Dsn::parse_with_home("postgres://app@h/db", Some("envpw".into()), NO_HOME).unwrap();
        assert_eq!(e.config.get_password(), Some(&b"envpw"[..]));
        assert!(parse("postgres://h/db").is_err());
    }

    #[test]
    fn sslmode_defaults_to_prefer_and_require_is_accepted() {
        let d = parse("postgres://app:pw@h/db").unwrap();
        assert_eq!((d.tls.mode(), d.config.get_ssl_mode()), (SslMode::Prefer, WireMode::Prefer));
        let d = parse("postgres://app:pw@h/db?sslmode=require").unwrap();
        assert_eq!((d.tls.mode(), d.config.get_ssl_mode()), (SslMode::Require, WireMode::Require));
        let d = parse("postgres://app:pw@h/db?sslmode=disable").unwrap();
        assert_eq!(d.config.get_ssl_mode(), WireMode::Disable);
        let d = parse("postgres://app:pw@h/db?sslmode=allow").unwrap();
        assert_eq!((d.tls.mode(), d.config.get_ssl_mode()), (SslMode::Allow, WireMode::Disable));
    }

    #[test]
    fn tls_parameters_are_taken_out_of_urls() {
        let mut p = TlsParams::default();
        let rest = split_url(
            "postgres://u:p?w&sslmode=x@h:1/db?sslmode=verify-full&connect_timeout=5&sslrootcert=%2Ftmp%2Fmy%20ca.crt",
            "postgres://".len(),
            &mut p,
        )
        .unwrap();
        assert_eq!(rest, "postgres://u:p?w&sslmode=x@h:1/db?connect_timeout=5");
        assert_eq!(p, TlsParams { sslmode: Some("verify-full".into()), sslrootcert: Some("/tmp/my ca.crt".into()) });
        let mut p = TlsParams::default();
        assert_eq!(split_url("postgres://u@h/db?sslmode=require", 11, &mut p).unwrap(), "postgres://u@h/db");
        assert_eq!(p.sslmode.as_deref(), Some("require"));
        let d = parse("postgres://u:p%3Fw@h:1/db?connect_timeout=5&sslmode=require").unwrap();
        assert_eq!(d.config.get_password(), Some(&b"p?w"[..]));
        assert_eq!(d.config.get_connect_timeout(), Some(&std::time::Duration::from_secs(5)));
        let d = parse("postgres://u@h:1/db").unwrap();
        assert_eq!(d.config.get_connect_timeout(), Some(&CONNECT_TIMEOUT), "a default when the DSN gives none");
        assert_eq!(d.config.get_keepalives_idle(), KEEPALIVE_IDLE);
    }

    #[test]
    fn tls_parameters_are_taken_out_of_key_value_strings() {
        let mut p = TlsParams::default();
        let rest = split_key_values(
            r"host=h  user = u password='it\'s a \\ secret' sslmode=require sslrootcert='/tmp/a b.crt' dbname=d",
            &mut p,
        )
        .unwrap();
        assert_eq!(p, TlsParams { sslmode: Some("require".into()), sslrootcert: Some("/tmp/a b.crt".into()) });
        let c = Config::from_str(&rest).unwrap();
        assert_eq!(c.get_password(), Some(&br"it's a \ secret"[..]));
        assert_eq!((c.get_user(), c.get_dbname()), (Some("u"), Some("d")));
        let d = parse("host=h user=u password=pw sslmode=disable").unwrap();
        assert_eq!((d.tls.mode(), d.config.get_ssl_mode()), (SslMode::Disable, WireMode::Disable));
    }

    #[test]
    fn bad_tls_parameters_are_refused_without_the_password() {
        for (dsn, expect) in [
            ("postgres://u:Sentinel-pw@h/db?sslmode=verify_full", "sslmode=\"verify_full\" is not one of disable, allow, prefer"),
            ("postgres://u:Sentinel-pw@h/db?sslcert=/x.crt", "the parameter sslcert is not supported"),
            ("postgres://u:Sentinel-pw@h/db?sslmode=verify-ca", "sslmode=verify-ca verifies the server's certificate"),
            (
                "postgres://u:Sentinel-pw@h/db?sslmode=verify-full&sslrootcert=/nonexistent/ca.crt",
                "cannot read sslrootcert file /nonexistent/ca.crt",
            ),
            (
                "postgres://u:Sentinel-pw@h/db?sslmode=prefer&sslrootcert=system",
                "sslmode=prefer may not be used with sslrootcert=system",
            ),
            ("postgres://u:Sentinel-pw@h/db?sslrootcert=", "sslrootcert is empty"),
        ] {
            let e = parse(dsn).unwrap_err().to_string();
            assert!(e.contains(expect), "{dsn}: {e}");
            assert!(!e.contains("Sentinel-pw"), "{e}");
        }
    }

    #[test]
    fn tls_parameters_fall_back_to_the_environment_like_libpq() {
        let d = Dsn::parse_with_env("postgres://app:pw@h/db", None, None, Some("disable".into()), None).unwrap();
        assert_eq!(d.tls.mode().as_str(), "disable");
        let d = Dsn::parse_with_env("postgres://app:pw@h/db?sslmode=require", None, None, Some("disable".into()), None).unwrap();
        assert_eq!(d.tls.mode().as_str(), "require", "the DSN wins over PGSSLMODE");
        assert!(Dsn::parse_with_env("postgres://app:pw@h/db", None, None, Some("bogus".into()), None).is_err());
    }

    #[test]
    fn errors_never_quote_the_password() {
        let pw = "Sentin3l-pw";
        for dsn in [
            format!("postgres://u:{pw}@h:notaport/db"),
            format!("postgres://u:{pw}@h/db?bogus=1"),
            format!("postgres://u:{pw}@h/db?sslcert=/x"),
            format!("postgres://u:{pw}@h/db?sslmode=bogus"),
            format!("postgres://u:{pw}@h/db?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem"),
            format!("postgres://:{pw}@h/db"),
            format!("host=h password={pw} port=x"),
            format!("host=h password='{pw}"),
            format!("host=h password={pw} bogus=1"),
        ] {
            let e = match parse(&dsn) {
                Err(e) => e.to_string(),
                Ok(d) => format!("{d} {d:?}"),
            };
            assert!(!e.contains(pw), "{dsn}: {e}");
        }
    }
}
