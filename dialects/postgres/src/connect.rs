//! Connecting: [`Postgres`] (the DSN, the session settings every connection starts with, the
//! pool), running a list of DDL statements in one transaction under a lock timeout, and the run
//! lock (a session-level advisory lock on a session of its own).

use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use shadowswap_engine::dialect::RunLock;
use shadowswap_engine::error::Result;
use shadowswap_engine::names::Names;
use shadowswap_engine::Error;

use tokio_postgres::types::{ToSql, Type};

use crate::dsn::{self, Dsn};
use crate::errors;
use crate::sql;

/// A PostgreSQL server.
pub struct Postgres {
    pub(crate) pool: Pool,
    pub(crate) dsn: Dsn,
    /// `dsn.config` with the pinned session settings ([`Postgres::connect`]); every session uses it.
    pub(crate) session: tokio_postgres::Config,
    pub(crate) default_schema: String,
    /// The user's search path (see [`sql::owner::search_path_value`]), for the ALTER text only.
    pub(crate) user_search_path: String,
    pub(crate) parser: sqlparser::dialect::PostgreSqlDialect,
    /// Backend pids of the pool's sessions: shadowswap's own working sessions, for
    /// `--inject-fault kill-connection` ([`crate::fault`]).
    pub(crate) sessions: crate::fault::SessionPids,
    /// Chunks the copy redid with the upsert after its fast path rolled back
    /// ([`Postgres::copy_fallbacks`]).
    pub(crate) copy_fallbacks: std::sync::atomic::AtomicU64,
    /// The server's `server_version_num` (e.g. 150004; 0 if it could not be read).
    pub(crate) server_version_num: u32,
}

impl Postgres {
    /// Connect to `dsn` (password from the DSN or, failing that, `env_password`, i.e.
    /// `PGPASSWORD`). Verifies the connection at once.
    ///
    /// Every session starts with [`dsn::SESSION_OPTIONS`] and [`dsn::PINNED_SEARCH_PATH`] (and
    /// `session_replication_role = origin` for a superuser), which take precedence over what
    /// `ALTER DATABASE/ROLE … SET` configured; a first session reads the default schema and the
    /// user's search path (used for the ALTER text only) before the pin.
    ///
    /// Errors: [`Error::Unreachable`], [`Error::AccessDenied`], [`Error::Refused`] (malformed
    /// DSN, unknown database, a non-superuser whose sessions start with another
    /// `session_replication_role`).
    pub async fn connect(dsn: &str, env_password: Option<String>) -> Result<Postgres> {
        let dsn = Dsn::parse(dsn, env_password)?;
        // A first session with the database's and role's own search path: the default schema
        // and the user's search path (for the ALTER text) come from it; every later session has
        // its search path pinned. Everything here is schema-qualified, as the search path may
        // put a schema of the database owner's before pg_catalog.
        let (probe, conn) = dsn.tls.connect(&dsn.config).await.map_err(|e| connect_error(&dsn, e))?;
        let driver = tokio::spawn(async move {
            let _ = conn.await;
        });
        let row =
            probe.query_one(sql::connect::SESSION_PROBE, &[]).await.map_err(|e| errors::db("checking the connection", e))?;
        drop(probe);
        let _ = driver.await;
        let default_schema = row.get::<_, Option<String>>(0).unwrap_or_else(|| "public".into());
        let user_search_path = sql::owner::search_path_value(&row.get::<_, Vec<String>>(1));
        let replication_role: String = row.get(2);
        let superuser = row.get::<_, String>(3) == "on";
        // For anyone but a superuser only a superuser can have configured another
        // session_replication_role, which is refused here.
        if !superuser && replication_role != "origin" {
            return Err(Error::refused(format!(
                "sessions of the DSN's user start with session_replication_role = {replication_role} (set on the role or \
                 the database), where triggers and foreign keys do not fire; RESET it for that role or database"
            )));
        }
        let server_version_num = row.get::<_, String>(4).parse::<u32>().unwrap_or(0);
        let options = dsn::session_options(server_version_num, superuser);
        let mut session = dsn.config.clone();
        session.options(&options);
        // `Fast` recycling hands out a pooled session only if its connection is not closed: a
        // session the server ended while it sat idle (`pg_terminate_backend`, a restart, a proxy
        // cutting it) is closed by the driver as soon as the server's FATAL or the socket's end
        // arrives, and dropped here instead of being handed out. One that dies at the very
        // moment it is handed out fails its first statement as a connection error
        // ([`errors::class`]), and the runner reconnects (`postgres resume::every_dropped_…`).
        let mgr =
            Manager::from_connect(session.clone(), dsn.tls.clone(), ManagerConfig { recycling_method: RecyclingMethod::Fast });
        let sessions = crate::fault::SessionPids::default();
        // Sessions open only when needed. Room for the checksum's chunks in flight
        // (`--checksum-threads`, at most `MAX_THREADS`) next to the walk, the throttler and the
        // heartbeat writer (the other phases need fewer).
        let pool = Pool::builder(mgr)
            .max_size(shadowswap_engine::config::ChecksumConfig::MAX_THREADS + 4)
            .post_create(crate::fault::record_backend_pids(sessions.clone()))
            .build()
            .map_err(|e| Error::refused(format!("connection pool: {e}")))?;
        let parser = sqlparser::dialect::PostgreSqlDialect {};
        let me = Postgres {
            pool,
            dsn,
            session,
            default_schema,
            user_search_path,
            parser,
            sessions,
            copy_fallbacks: Default::default(),
            server_version_num,
        };
        drop(me.client().await?);
        Ok(me)
    }

    /// The schema unqualified table names resolve to (`current_schema()`).
    pub fn default_schema(&self) -> &str {
        &self.default_schema
    }

    /// A pooled session (with the pinned settings).
    pub(crate) async fn client(&self) -> Result<deadpool_postgres::Object> {
        self.pool.get().await.map_err(|e| match e {
            deadpool_postgres::PoolError::Backend(e) => connect_error(&self.dsn, e),
            other => Error::Unreachable { target: self.dsn.to_string(), reason: other.to_string() },
        })
    }

    /// Runs `stmts` in one transaction that waits at most `lock_timeout` for each lock.
    pub(crate) async fn ddl(&self, context: &str, stmts: &[String], lock_timeout: Duration) -> Result<()> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(|e| errors::db(context, e))?;
        tx.batch_execute(&sql::connect::set_lock_timeout(lock_timeout)).await.map_err(|e| errors::db(context, e))?;
        for s in stmts {
            tx.batch_execute(s).await.map_err(|e| errors::db(context, e))?;
        }
        tx.commit().await.map_err(|e| errors::db(context, e))
    }
}

/// The run lock: a session-level advisory lock, held by a session of its own as long as it lives.
struct PgRunLock {
    client: tokio_postgres::Client,
    driver: tokio::task::JoinHandle<()>,
    key: String,
}

#[async_trait]
impl RunLock for PgRunLock {
    async fn release(self: Box<Self>) -> Result<()> {
        let PgRunLock { client, driver, key } = *self;
        let r = client.execute(sql::connect::RELEASE_RUN_LOCK, &[&key]).await;
        drop(client);
        let _ = driver.await;
        r.map(|_| ()).map_err(|e| errors::db("releasing the advisory lock", e))
    }

    /// A session-level advisory lock lives as long as its session: the session answering a
    /// query holds it.
    async fn is_held(&mut self) -> Result<bool> {
        if self.client.is_closed() {
            return Ok(false);
        }
        match self.client.simple_query("SELECT 1").await {
            Ok(_) => Ok(true),
            Err(e) => match errors::db("checking the advisory lock's session", e) {
                e if e.is_connection() => Ok(false),
                e => Err(e),
            },
        }
    }
}

/// Takes the advisory lock for `names.table` on a session of its own.
/// Errors: [`Error::AnotherRun`] when another session holds it.
pub(crate) async fn acquire_run_lock(pg: &Postgres, names: &Names) -> Result<Box<dyn RunLock>> {
    let (client, conn) = pg.dsn.tls.connect(&pg.session).await.map_err(|e| connect_error(&pg.dsn, e))?;
    let driver = tokio::spawn(async move {
        let _ = conn.await;
    });
    let got: bool = client
        .query_one(sql::connect::TRY_RUN_LOCK, &[&names.lock])
        .await
        .map_err(|e| errors::db("taking the advisory lock", e))?
        .get(0);
    if !got {
        drop(client);
        let _ = driver.await;
        return Err(Error::AnotherRun(names.table.clone()));
    }
    Ok(Box::new(PgRunLock { client, driver, key: names.lock.clone() }))
}

/// A failed connection to `dsn`, as the user should read it: a TLS setup problem explained
/// (`sslmode`, certificates), otherwise as [`errors::connect`] classifies it.
pub(crate) fn connect_error(dsn: &Dsn, e: tokio_postgres::Error) -> Error {
    let target = dsn.to_string();
    if let Some(reason) = dsn.tls.explain(&e, &target) {
        return Error::refused(reason);
    }
    errors::connect(target, dsn.config.get_dbname().unwrap_or(""), e)
}

/// Parameters sent as `text` (the statements cast them: `$1::text::regclass`), for tokio-postgres'
/// `query_typed*`, which parses, binds and executes in one round trip instead of a prepare and
/// then an execute: what the copy's chunk statements and the swap transaction's catalog reads
/// (under the table's `ACCESS EXCLUSIVE` lock, where every round trip holds up the application)
/// use.
pub(crate) fn text_params<T: ToSql + Sync>(v: &[T]) -> Vec<(&(dyn ToSql + Sync), Type)> {
    v.iter().map(|s| (s as &(dyn ToSql + Sync), Type::TEXT)).collect()
}
