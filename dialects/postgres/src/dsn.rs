//! `postgres://` / `postgresql://` DSNs, parsed by tokio-postgres (libpq's URI format, with
//! `sslmode`). The password may instead come from `PGPASSWORD`, as with libpq. [`Dsn`]'s
//! `Display` never shows the password.

use std::fmt;
use std::str::FromStr;

use shadowswap_engine::{Error, Result};
use tokio_postgres::config::{Host, SslMode};
use tokio_postgres::Config;

/// Session settings shadowswap's connections start with (passed as libpq `options`): UTC time
/// zone and ISO dates so key values and timestamps travel as exact text; enough float digits
/// for an exact text round trip; hex bytea.
pub const SESSION_OPTIONS: &str =
    "-c TimeZone=UTC -c DateStyle=ISO,YMD -c IntervalStyle=postgres -c extra_float_digits=3 -c bytea_output=hex -c client_min_messages=warning";

/// A parsed DSN.
#[derive(Clone)]
pub struct Dsn {
    /// The driver configuration (password included).
    pub config: Config,
}

impl fmt::Debug for Dsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Dsn({self})")
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

impl Dsn {
    /// Parse `dsn`; `env_password` (the caller passes `PGPASSWORD`) is used when the DSN has none.
    /// `sslmode=disable|prefer` are accepted; modes that demand TLS are refused until TLS support lands.
    pub fn parse(dsn: &str, env_password: Option<String>) -> Result<Dsn> {
        let mut config = Config::from_str(dsn).map_err(|e| {
            Error::refused(format!("invalid --dsn: {e}; expected postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE"))
        })?;
        if config.get_user().is_none() {
            return Err(Error::refused("invalid --dsn: no user; expected postgres://USER@HOST[:PORT]/DATABASE"));
        }
        if config.get_password().is_none() {
            if let Some(p) = env_password {
                config.password(p);
            }
        }
        if config.get_ssl_mode() == SslMode::Require {
            return Err(Error::refused(
                "sslmode=require is not supported yet; use sslmode=disable or prefer on a trusted network",
            ));
        }
        config.options(SESSION_OPTIONS);
        config.application_name("shadowswap");
        Ok(Dsn { config })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_never_shows_the_password() {
        let d = Dsn::parse("postgresql://app:s3cret@127.0.0.1:54329/shop", None).unwrap();
        assert_eq!(d.to_string(), "postgres://app@127.0.0.1:54329/shop");
        assert!(!format!("{d:?}").contains("s3cret"));
        assert_eq!(d.config.get_password(), Some(&b"s3cret"[..]));
        let e = Dsn::parse("postgres://app@h/db", Some("envpw".into())).unwrap();
        assert_eq!(e.config.get_password(), Some(&b"envpw"[..]));
        assert!(Dsn::parse("postgres://h/db", None).is_err());
    }
}
