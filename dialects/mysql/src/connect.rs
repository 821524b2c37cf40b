//! Connecting: [`MySql`] (the pool and the DSN), the session setup every session runs
//! ([`crate::sql::connect::SESSION_SETUP`]), the helpers the phases use to run statements, and
//! the run lock (`GET_LOCK` in a session of its own).

use std::time::Duration;

use async_trait::async_trait;
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, OptsBuilder, Pool};
use shadowswap_engine::dialect::RunLock;
use shadowswap_engine::error::Result;
use shadowswap_engine::model::TableRef;
use shadowswap_engine::names::{char_len, Names};
use shadowswap_engine::Error;

use crate::dsn::Dsn;
use crate::{errors, identity, sql, MAX_IDENTIFIER_CHARS};

/// A MySQL or MariaDB server.
pub struct MySql {
    pub(crate) pool: Pool,
    pub(crate) opts: OptsBuilder,
    pub(crate) dsn: Dsn,
    pub(crate) parser: sqlparser::dialect::MySqlDialect,
    /// The identity of each table whose capture this dialect installed, as read under the
    /// trigger lock ([`identity`]), for the checks before the swap.
    pub(crate) captured: std::sync::Mutex<std::collections::HashMap<TableRef, identity::Identity>>,
    /// Connection ids of the pool's sessions, recorded by [`MySql::conn`]: shadowswap's own
    /// working sessions, for `--inject-fault kill-connection` ([`crate::fault`]).
    pub(crate) sessions: std::sync::Mutex<std::collections::BTreeSet<u32>>,
    /// `SHOW CREATE TABLE` of each table's trial copy (the preflight's), by table: the dry run's
    /// deferred-index statements come from it (`sql::indexes`).
    pub(crate) trial_definitions: std::sync::Mutex<std::collections::HashMap<TableRef, String>>,
    /// InnoDB's count of row lock waits so far (`Innodb_row_lock_waits`) as the last chunk read
    /// it before committing; `None` before the first chunk ([`crate::copy::copy_chunk`]).
    pub(crate) row_lock_waits_seen: std::sync::Mutex<Option<u64>>,
}

/// A duration in whole seconds, rounded up, at least 1: `lock_wait_timeout` and
/// `innodb_lock_wait_timeout` take whole seconds on MariaDB, and 0 would mean "do not wait".
pub(crate) fn whole_seconds(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0).max(u64::from(d.as_secs() == 0))
}

impl MySql {
    /// Connect to the server named by `dsn`, with the password from the DSN or, failing that,
    /// from `env_password` (the caller passes `MYSQL_PWD`). Verifies the connection at once.
    ///
    /// Errors: [`Error::Unreachable`] (nothing answers), [`Error::AccessDenied`] (bad user or
    /// password), [`Error::Refused`] (malformed DSN, unknown database).
    pub async fn connect(dsn: &str, env_password: Option<String>) -> Result<MySql> {
        let dsn = Dsn::parse(dsn, env_password)?;
        let mut opts = OptsBuilder::default()
            .ip_or_hostname(dsn.host.clone())
            .tcp_port(dsn.port)
            .user(Some(dsn.user.clone()))
            .pass(dsn.password.clone())
            .prefer_socket(false)
            // A dead peer (a stalled network, no reset) is noticed by TCP keepalive probes after
            // 30 s of silence rather than never.
            .tcp_keepalive(Some(std::time::Duration::from_secs(30)))
            .setup(sql::connect::SESSION_SETUP.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        if let Some(db) = &dsn.database {
            opts = opts.db_name(Some(db.clone()));
        }
        let pool = Pool::new(opts.clone());
        let me = MySql {
            pool,
            opts,
            dsn,
            parser: sqlparser::dialect::MySqlDialect {},
            captured: Default::default(),
            trial_definitions: Default::default(),
            sessions: Default::default(),
            row_lock_waits_seen: std::sync::Mutex::new(None),
        };
        match me.pool.get_conn().await {
            Ok(mut c) => {
                let _: Option<u8> =
                    c.query_first(sql::connect::PING).await.map_err(|e| errors::db("checking the connection", e))?;
                Ok(me)
            }
            Err(e) => Err(errors::connect(&me.dsn, e)),
        }
    }

    /// The database named in the DSN, used for tables given without a schema.
    pub fn default_schema(&self) -> Option<&str> {
        self.dsn.database.as_deref()
    }

    /// Close every pooled connection.
    pub async fn disconnect(self) {
        let _ = self.pool.disconnect().await;
    }

    /// A pooled session, set up with [`sql::connect::SESSION_SETUP`]; its connection id is
    /// recorded in [`MySql::sessions`].
    pub(crate) async fn conn(&self) -> Result<Conn> {
        let c = self.pool.get_conn().await.map_err(|e| errors::connect(&self.dsn, e))?;
        self.sessions.lock().unwrap().insert(c.id());
        Ok(c)
    }

    /// Run DDL `stmt` in a pooled session, waiting at most `lock_timeout` for metadata locks.
    pub(crate) async fn exec_ddl(&self, context: &str, stmt: &str, lock_timeout: Duration) -> Result<()> {
        let mut c = self.conn().await?;
        c.query_drop(sql::with_lock_timeout(whole_seconds(lock_timeout), stmt)).await.map_err(|e| errors::db(context, e))
    }

    /// The first column of each row of `query` with `params`, as text.
    pub(crate) async fn strings(&self, context: &str, query: &str, params: Vec<mysql_async::Value>) -> Result<Vec<String>> {
        let mut c = self.conn().await?;
        c.exec::<String, _, _>(query, params).await.map_err(|e| errors::db(context, e))
    }
}

/// Generated names for `table` within MySQL's identifier limit ([`MAX_IDENTIFIER_CHARS`]).
pub(crate) fn names(table: &TableRef) -> Names {
    Names::new(table, MAX_IDENTIFIER_CHARS, char_len)
}

/// Take the advisory lock for `names.table` in a session of its own, outside the pool: the lock
/// lives exactly as long as this session. Errors: [`Error::AnotherRun`] when another session
/// holds it.
pub(crate) async fn acquire_run_lock(my: &MySql, names: &Names) -> Result<Box<dyn RunLock>> {
    let mut conn = Conn::new(my.opts.clone()).await.map_err(|e| errors::connect(&my.dsn, e))?;
    let got: Option<Option<i64>> = conn
        .exec_first(sql::connect::GET_LOCK, (names.lock.clone(),))
        .await
        .map_err(|e| errors::db("taking the advisory lock", e))?;
    if got.flatten() != Some(1) {
        let _ = conn.disconnect().await;
        return Err(Error::AnotherRun(names.table.clone()));
    }
    Ok(Box::new(MyRunLock { conn, name: names.lock.clone() }))
}

/// The held run lock and its session.
struct MyRunLock {
    conn: Conn,
    name: String,
}

#[async_trait]
impl RunLock for MyRunLock {
    async fn release(self: Box<Self>) -> Result<()> {
        let MyRunLock { mut conn, name } = *self;
        let _: Option<Option<i64>> =
            conn.exec_first(sql::connect::RELEASE_LOCK, (name,)).await.map_err(|e| errors::db("releasing the lock", e))?;
        conn.disconnect().await.map_err(|e| errors::db("closing the lock session", e))
    }

    /// A `GET_LOCK` lock lives as long as its session: the session answering a ping holds it.
    async fn is_held(&mut self) -> Result<bool> {
        match self.conn.ping().await {
            Ok(()) => Ok(true),
            Err(e) => match errors::db("checking the lock session", e) {
                e if e.is_connection() => Ok(false),
                e => Err(e),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_timeouts_are_whole_seconds_rounded_up() {
        assert_eq!(whole_seconds(Duration::ZERO), 1);
        assert_eq!(whole_seconds(Duration::from_millis(200)), 1);
        assert_eq!(whole_seconds(Duration::from_secs(2)), 2);
        assert_eq!(whole_seconds(Duration::from_millis(2100)), 3);
    }
}
