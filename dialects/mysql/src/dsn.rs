//! `mysql://USER[:PASS]@HOST[:PORT][/DB]` parsing. The password may instead come from the
//! `MYSQL_PWD` environment variable (as with the `mysql` client), so it stays out of process
//! listings. [`Dsn`]'s `Display` never shows the password.

use std::fmt;

use shadowswap_engine::{Error, Result};

/// A parsed DSN.
#[derive(Clone, PartialEq, Eq)]
pub struct Dsn {
    /// Host name or IP address.
    pub host: String,
    /// TCP port (default 3306).
    pub port: u16,
    /// User name (percent-decoded).
    pub user: String,
    /// Password (percent-decoded), from the DSN or `MYSQL_PWD`.
    pub password: Option<String>,
    /// Default database (schema), if given.
    pub database: Option<String>,
}

impl fmt::Debug for Dsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Dsn({self})")
    }
}

impl fmt::Display for Dsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "mysql://{}@{}:{}/{}", self.user, self.host, self.port, self.database.as_deref().unwrap_or(""))
    }
}

impl Dsn {
    /// Parse `dsn`; `env_password` is the value of `MYSQL_PWD`, used when the DSN has no password.
    /// Errors: not a `mysql://` URL, no host, no user.
    pub fn parse(dsn: &str, env_password: Option<String>) -> Result<Dsn> {
        let bad =
            |why: &str| Error::refused(format!("invalid --dsn: {why}; expected mysql://USER[:PASSWORD]@HOST[:PORT]/DATABASE"));
        let url = url::Url::parse(dsn).map_err(|e| bad(&e.to_string()))?;
        if url.scheme() != "mysql" && url.scheme() != "mariadb" {
            return Err(bad(&format!("scheme {}:// is not mysql://", url.scheme())));
        }
        let host = url.host_str().filter(|h| !h.is_empty()).ok_or_else(|| bad("no host"))?;
        let user = percent_decode(url.username()).filter(|u| !u.is_empty()).ok_or_else(|| bad("no user"))?;
        let password = url.password().and_then(percent_decode).or(env_password);
        let database = Some(url.path().trim_start_matches('/')).filter(|d| !d.is_empty()).and_then(percent_decode);
        Ok(Dsn {
            host: host.trim_start_matches('[').trim_end_matches(']').to_string(),
            port: url.port().unwrap_or(3306),
            user,
            password,
            database,
        })
    }
}

/// Percent-decoding of a URL component (RFC 3986: `+` and `&` are data, not form encoding).
/// `None` when the result is not UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    percent_encoding::percent_decode_str(s).decode_utf8().ok().map(|c| c.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_never_shows_the_password() {
        let d = Dsn::parse("mysql://app:s%40cret@127.0.0.1:33306/shop", None).unwrap();
        assert_eq!((d.user.as_str(), d.password.as_deref(), d.port), ("app", Some("s@cret"), 33306));
        assert_eq!(d.database.as_deref(), Some("shop"));
        assert_eq!(d.to_string(), "mysql://app@127.0.0.1:33306/shop");
        assert!(!format!("{d:?}").contains("cret"));
    }

    #[test]
    fn passwords_keep_plus_and_ampersand() {
        let d = Dsn::parse("mysql://app:a+b&c=d!%2B%25@127.0.0.1/x", None).unwrap();
        assert_eq!(d.password.as_deref(), Some("a+b&c=d!+%"));
        let d = Dsn::parse("mysql://app:100%@127.0.0.1/x", None).unwrap();
        assert_eq!(d.password.as_deref(), Some("100%"), "a stray % stays");
        assert_eq!(percent_decode("%C3%A9t%c3%a9"), Some("été".to_string()));
    }

    #[test]
    fn password_from_environment_and_errors() {
        let d = Dsn::parse("mysql://app@db/x", Some("envpw".into())).unwrap();
        assert_eq!((d.password.as_deref(), d.port), (Some("envpw"), 3306));
        let d = Dsn::parse("mysql://app:dsnpw@db/x", Some("envpw".into())).unwrap();
        assert_eq!(d.password.as_deref(), Some("dsnpw"), "the DSN wins");
        assert!(Dsn::parse("postgres://a@b/c", None).unwrap_err().to_string().contains("not mysql://"));
        assert!(Dsn::parse("mysql://b/c", None).unwrap_err().to_string().contains("no user"));
        assert!(Dsn::parse("nonsense", None).is_err());
    }

    #[test]
    fn errors_never_quote_the_password() {
        let pw = "Sentin3l-pw";
        for dsn in [
            format!("mysql://:{pw}@h/db"),
            format!("mysql://u:{pw}@/db"),
            format!("mysql://u:{pw}@h:99999/db"),
            format!("postgres://u:{pw}@h/db"),
            format!("u:{pw}@h"),
            format!("mysql://u:{pw}@h:x/db"),
        ] {
            let e = Dsn::parse(&dsn, None).unwrap_err().to_string();
            assert!(!e.contains(pw), "{dsn}: {e}");
        }
    }
}
