//! Connecting: the DSN's scheme picks the server type ([`Server`]); [`connect`] opens the primary
//! and every replica with it, the same way for each server type.

use std::future::Future;
use std::sync::Arc;

use shadowswap_engine::Dialect;
use shadowswap_mysql::MySql;
use shadowswap_postgres::Postgres;

use crate::report::Failure;

/// A server type the CLI can connect to: which DSNs name it and how to connect.
pub trait Server: Dialect + Sized {
    /// The URL schemes of its DSNs; the first is the one named in messages.
    const SCHEMES: &'static [&'static str];
    /// The environment variable that may hold the password.
    const PASSWORD_ENV: &'static str;
    /// Connect to `dsn` (the password, when the DSN has none, from `env_password`).
    fn connect(dsn: &str, env_password: Option<String>) -> impl Future<Output = shadowswap_engine::Result<Self>> + Send;
    /// The schema a bare `--table NAME` is in (`None`: the DSN names none).
    fn default_schema(&self) -> Option<String>;
}

impl Server for MySql {
    const SCHEMES: &'static [&'static str] = &["mysql", "mariadb"];
    const PASSWORD_ENV: &'static str = "MYSQL_PWD";
    fn connect(dsn: &str, env_password: Option<String>) -> impl Future<Output = shadowswap_engine::Result<Self>> + Send {
        MySql::connect(dsn, env_password)
    }
    fn default_schema(&self) -> Option<String> {
        MySql::default_schema(self).map(str::to_string)
    }
}

impl Server for Postgres {
    const SCHEMES: &'static [&'static str] = &["postgres", "postgresql"];
    const PASSWORD_ENV: &'static str = "PGPASSWORD";
    fn connect(dsn: &str, env_password: Option<String>) -> impl Future<Output = shadowswap_engine::Result<Self>> + Send {
        Postgres::connect(dsn, env_password)
    }
    fn default_schema(&self) -> Option<String> {
        Some(Postgres::default_schema(self).to_string())
    }
}

/// The scheme of a DSN: what comes before `://` (the whole text when there is none).
fn scheme(dsn: &str) -> &str {
    dsn.split("://").next().unwrap_or_default()
}

/// Whether `dsn` names a server of type `S`.
pub fn names<S: Server>(dsn: &str) -> bool {
    S::SCHEMES.contains(&scheme(dsn))
}

/// The usage error for a `--dsn` no server type accepts.
pub fn unknown_scheme() -> Failure {
    Failure::Usage(
        "--dsn must start with mysql:// or postgres:// (e.g. mysql://user@127.0.0.1:3306/db, postgres://user@127.0.0.1:5432/db)"
            .into(),
    )
}

/// The usage error for a `--replica` DSN whose scheme is not `expected` (the --dsn's). It names
/// the replica by its scheme only: the DSN itself may hold a password.
fn replica_scheme_mismatch(replica: &str, expected: &str) -> Failure {
    let given = match replica.split_once("://") {
        Some((scheme, _)) if !scheme.is_empty() && scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c)) => {
            format!("a {scheme}:// DSN")
        }
        _ => "not a URL".to_string(),
    };
    Failure::Usage(format!(
        "a --replica DSN is {given}; it must be a {expected} DSN like --dsn (replicas run the same server type)"
    ))
}

/// A primary and its replicas, connected.
pub struct Connected<S> {
    /// The primary (the `--dsn`).
    pub primary: Arc<S>,
    /// The `--replica`s, in the order given.
    pub replicas: Vec<Arc<S>>,
    /// The schema a bare `--table NAME` is in.
    pub default_schema: Option<String>,
}

/// Connect to the primary `dsn`, then to each replica in turn (each must be a DSN of the same
/// server type), with the password from `S::PASSWORD_ENV` for DSNs that have none. Errors: the
/// first connection that fails, or [`Failure::Usage`] for a replica of another type.
pub async fn connect<S: Server>(dsn: &str, replica_dsns: &[String]) -> Result<Connected<S>, Failure> {
    let password = std::env::var(S::PASSWORD_ENV).ok();
    let primary = S::connect(dsn, password.clone()).await?;
    let mut replicas = Vec::new();
    for r in replica_dsns {
        if !names::<S>(r) {
            return Err(replica_scheme_mismatch(r, &format!("{}://", S::SCHEMES[0])));
        }
        replicas.push(Arc::new(S::connect(r, password.clone()).await?));
    }
    let default_schema = primary.default_schema();
    Ok(Connected { primary: Arc::new(primary), replicas, default_schema })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(f: Failure) -> String {
        match f {
            Failure::Usage(m) => m,
            Failure::Error(e) => panic!("not a usage error: {e}"),
        }
    }

    #[test]
    fn schemes_pick_the_server_type() {
        assert!(names::<MySql>("mysql://u@h/db") && names::<MySql>("mariadb://u@h/db"));
        assert!(names::<Postgres>("postgres://u@h/db") && names::<Postgres>("postgresql://u@h/db"));
        assert!(!names::<MySql>("postgres://u@h/db") && !names::<Postgres>("mysql://u@h/db"));
        assert!(!names::<MySql>("u@h/db") && !names::<Postgres>("u@h/db"));
    }

    #[test]
    fn a_replica_of_another_type_is_named_by_its_scheme_only() {
        let m = usage(replica_scheme_mismatch("postgres://u:secret@h/db", "mysql://"));
        assert_eq!(
            m,
            "a --replica DSN is a postgres:// DSN; it must be a mysql:// DSN like --dsn (replicas run the same server type)"
        );
        assert!(usage(replica_scheme_mismatch("u:secret@h", "postgres://")).starts_with("a --replica DSN is not a URL;"));
        assert!(usage(replica_scheme_mismatch("a b://x", "mysql://")).starts_with("a --replica DSN is not a URL;"));
    }
}
