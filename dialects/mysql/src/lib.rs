//! The MySQL/MariaDB dialect of shadowswap, on `mysql_async`.
//!
//! Module map:
//! - [`dsn`]    — `mysql://` DSN parsing; the password may come from `MYSQL_PWD`; never displayed.
//! - [`errors`] — classification of driver errors (lock timeout, deadlock, duplicate key, …).
//! - [`sql`]    — pure SQL builders: quoting, keyset predicates, copy, triggers, checksum, swap.
//! - this file  — [`MySql`], the [`Dialect`] implementation that runs that SQL.
//!
//! Every session shadowswap opens is set up the same way (see [`SESSION_SETUP`]): UTC time zone,
//! so TIMESTAMP values round-trip exactly (no DST-ambiguous local times) — except the copy
//! statement, which runs in the server's default time zone so the defaults it evaluates equal a
//! plain ALTER's ([`sql::copy_time_zone`]); a strict `sql_mode` with
//! `NO_AUTO_VALUE_ON_ZERO`, so nothing is silently truncated and an AUTO_INCREMENT value of 0 is
//! copied as 0; REPEATABLE READ, for the next-key locks the chunk copy relies on. The capture
//! triggers are created in such a session, and a trigger runs with the `sql_mode` it was created
//! with (MariaDB KB, "CREATE TRIGGER"), so the triggers are strict too.

pub mod dsn;
pub mod errors;
pub mod identity;
pub mod sql;

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, OptsBuilder, Pool, Row, TxOpts, Value};
use shadowswap_engine::alter::AlterAnalysis;
use shadowswap_engine::dialect::{ChunkChecksum, Dialect, RunLock, Signals};
use shadowswap_engine::error::Result;
use shadowswap_engine::model::{Column, Index, TableRef, TableShape};
use shadowswap_engine::names::{char_len, Names};
use shadowswap_engine::plan::{Plan, PlanSql, Rules};
use shadowswap_engine::Error;

pub use dsn::Dsn;
use sql::{Ident, Qualified};

/// MySQL's identifier length limit, in characters.
pub const MAX_IDENTIFIER_CHARS: usize = 64;

/// Statements run on every session shadowswap opens (and after each pool reset).
pub const SESSION_SETUP: [&str; 4] = [
    "SET SESSION time_zone = '+00:00'",
    "SET SESSION sql_mode = 'STRICT_ALL_TABLES,NO_AUTO_VALUE_ON_ZERO,NO_ENGINE_SUBSTITUTION'",
    "SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ",
    "SET NAMES utf8mb4",
];

/// A chunk boundary: the chunk key's values of one row, as the server returned them (binary
/// protocol), so they bind back exactly.
#[derive(Debug, Clone, PartialEq)]
pub struct MyKey(pub Vec<Value>);

impl fmt::Display for MyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.0.iter().map(|v| v.as_sql(false)).collect();
        write!(f, "({})", parts.join(", "))
    }
}

/// A MySQL or MariaDB server.
pub struct MySql {
    pool: Pool,
    opts: OptsBuilder,
    dsn: Dsn,
    parser: sqlparser::dialect::MySqlDialect,
    /// The identity of each table whose capture this dialect installed, as read under the
    /// trigger lock ([`identity`]), for the checks before the swap.
    captured: std::sync::Mutex<std::collections::HashMap<TableRef, identity::Identity>>,
}

fn whole_seconds(d: Duration) -> u64 {
    // lock_wait_timeout and innodb_lock_wait_timeout take whole seconds on MariaDB.
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
            .setup(SESSION_SETUP.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        if let Some(db) = &dsn.database {
            opts = opts.db_name(Some(db.clone()));
        }
        let pool = Pool::new(opts.clone());
        let me = MySql { pool, opts, dsn, parser: sqlparser::dialect::MySqlDialect {}, captured: Default::default() };
        match me.pool.get_conn().await {
            Ok(mut c) => {
                let _: Option<u8> = c.query_first("SELECT 1").await.map_err(|e| errors::db("checking the connection", e))?;
                Ok(me)
            }
            Err(e) => Err(me.connect_error(e)),
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

    fn connect_error(&self, e: mysql_async::Error) -> Error {
        let target = self.dsn.to_string();
        match &e {
            mysql_async::Error::Server(s) if s.code == errors::ACCESS_DENIED => {
                Error::AccessDenied { target, reason: s.message.clone() }
            }
            mysql_async::Error::Server(s) if s.code == errors::BAD_DB => Error::refused(format!(
                "database {} does not exist on {target}; check the DSN",
                self.dsn.database.as_deref().unwrap_or("")
            )),
            mysql_async::Error::Server(_) => errors::db(&format!("connecting to {target}"), e),
            other => Error::Unreachable { target, reason: other.to_string() },
        }
    }

    async fn conn(&self) -> Result<Conn> {
        self.pool.get_conn().await.map_err(|e| self.connect_error(e))
    }

    async fn exec_ddl(&self, context: &str, stmt: &str, lock_timeout: Duration) -> Result<()> {
        let mut c = self.conn().await?;
        c.query_drop(sql::with_lock_timeout(whole_seconds(lock_timeout), stmt)).await.map_err(|e| errors::db(context, e))
    }

    async fn strings(&self, context: &str, query: &str, params: Vec<Value>) -> Result<Vec<String>> {
        let mut c = self.conn().await?;
        c.exec::<String, _, _>(query, params).await.map_err(|e| errors::db(context, e))
    }

    /// Read columns and indexes with SHOW statements, which (unlike information_schema) also
    /// work on the session's temporary trial table.
    async fn shape_on(c: &mut Conn, table: &TableRef) -> std::result::Result<TableShape, mysql_async::Error> {
        let t = Qualified(table);
        let rows: Vec<Row> = c.query(format!("SHOW FULL COLUMNS FROM {t}")).await?;
        let text =
            |r: &Row, name: &str| -> Option<String> { r.get_opt::<Option<String>, _>(name).and_then(|v| v.ok()).flatten() };
        let columns = rows
            .iter()
            .map(|r| Column {
                name: text(r, "Field").unwrap_or_default(),
                column_type: text(r, "Type").unwrap_or_default(),
                collation: text(r, "Collation"),
                nullable: text(r, "Null").as_deref() == Some("YES"),
                generated: text(r, "Extra").is_some_and(|e| e.to_ascii_uppercase().contains("GENERATED")),
                // Present, not NULL: read as bytes, since a binary column's default need not be
                // UTF-8 (a `String` read of `DEFAULT 0xFF00FE` fails and would look like no default).
                has_default: r.get_opt::<Option<Vec<u8>>, _>("Default").and_then(|v| v.ok()).flatten().is_some()
                    || text(r, "Extra").is_some_and(|e| {
                        let e = e.to_ascii_uppercase();
                        e.contains("AUTO_INCREMENT") || e.contains("GENERATED")
                    }),
                operator_schema: None,
            })
            .collect();
        let rows: Vec<Row> = c.query(format!("SHOW INDEX FROM {t}")).await?;
        let mut indexes: Vec<Index> = Vec::new();
        for r in &rows {
            let name = text(r, "Key_name").unwrap_or_default();
            let column = text(r, "Column_name");
            let partial = text(r, "Sub_part").is_some() || column.is_none();
            let unique = text(r, "Non_unique").as_deref() == Some("0");
            match indexes.iter_mut().find(|i| i.name == name) {
                Some(i) => {
                    i.columns.extend(column);
                    i.partial |= partial;
                }
                None => indexes.push(Index {
                    primary: name == "PRIMARY",
                    name,
                    columns: column.into_iter().collect(),
                    unique,
                    partial,
                }),
            }
        }
        Ok(TableShape { columns, indexes, estimated_rows: 0 })
    }

    /// The storage engine of `table`, from the table options line of `SHOW CREATE TABLE` (which,
    /// unlike information_schema, also shows the session's temporary tables).
    ///
    /// The statement is read as bytes: it holds column defaults verbatim, and a binary column's
    /// default need not be UTF-8 (`VARBINARY(4) DEFAULT 0xFF00FE`), which a `String` read would
    /// turn into a panic of the driver's row conversion.
    async fn engine_on(c: &mut Conn, table: &TableRef) -> std::result::Result<String, mysql_async::Error> {
        let ddl: Option<(Vec<u8>, Vec<u8>)> = c.query_first(sql::show_create_table(table)).await?;
        Ok(ddl.map(|(_, ddl)| sql::engine_of_create_table(&ddl)).unwrap_or_default())
    }

    /// Run trigger DDL `stmts` on `table` inside `LOCK TABLES table WRITE … UNLOCK TABLES`, so
    /// the application's statements see the table's set of triggers change in one step.
    ///
    /// Why: MariaDB (MDEV-26048, seen on 10.11) does not notice, in a prepared statement or a
    /// stored routine, that a trigger was added to (or dropped from) a table that already had
    /// triggers for other events; its next execution runs the new trigger without having opened
    /// the trigger's tables and fails with "Table '…_new' doesn't exist" (1146). Created one at a
    /// time, the insert, update and delete triggers made about one in three migrations under
    /// prepared-statement writers fail application statements (integration/tests/concurrency.rs).
    /// Under the lock, the table goes from no capture trigger to all three (and back) at once,
    /// which the server does handle. The lock is held for milliseconds, waits at most
    /// `lock_timeout`, and is released on every path (closing the session releases it too).
    ///
    /// With `identity_of`, also reads the table's [`identity::Identity`] under that lock, after
    /// the statements: the table the capture triggers start following.
    async fn trigger_ddl_locked(
        &self,
        context: &str,
        table: &TableRef,
        stmts: &[String],
        lock_timeout: Duration,
        identity_of: Option<&Names>,
    ) -> Result<Option<identity::Identity>> {
        let secs = whole_seconds(lock_timeout);
        let mut c = self.conn().await?;
        c.query_drop(sql::with_lock_timeout(secs, &format!("LOCK TABLES {} WRITE", Qualified(table))))
            .await
            .map_err(|e| errors::db(context, e))?;
        let mut result = Ok(None);
        for stmt in stmts {
            if let Err(e) = c.query_drop(sql::with_lock_timeout(secs, stmt)).await {
                result = Err(errors::db(context, e));
                break;
            }
        }
        if let (Ok(_), Some(names)) = (&result, identity_of) {
            result = identity::Identity::read(&mut c, table, names).await.map(Some).map_err(|e| errors::db(context, e));
        }
        if let Err(e) = c.query_drop("UNLOCK TABLES").await {
            let _ = c.disconnect().await;
            return result.and(Err(errors::db(context, e)));
        }
        result
    }

    /// Compare the table's identity now with the one recorded when the capture was installed
    /// ([`identity`]); returns the identity read (`None` when no capture of this dialect's is
    /// recorded for the table). Errors: [`Error::Refused`] saying what changed.
    async fn verify_identity(&self, c: &mut Conn, plan: &Plan) -> Result<Option<identity::Identity>> {
        let n = &plan.names;
        let Some(recorded) = self.captured.lock().expect("identity map").get(&n.table).cloned() else { return Ok(None) };
        let now =
            identity::Identity::read(c, &n.table, n).await.map_err(|e| errors::db("checking the table before the swap", e))?;
        match recorded.changed(&now) {
            None => Ok(Some(now)),
            Some(what) => Err(Error::refused(format!(
                "{} {what}; nothing was swapped and {} is as that change left it; run the migration again",
                n.table, n.table
            ))),
        }
    }

    async fn key_query(&self, context: &str, query: String, params: Vec<Value>) -> Result<Option<MyKey>> {
        let mut c = self.conn().await?;
        let row: Option<Row> = c.exec_first(query, params).await.map_err(|e| errors::db(context, e))?;
        Ok(row.map(|r| MyKey(r.unwrap())))
    }

    fn where_range(plan: &Plan, shadow: bool, after: Option<&MyKey>, upto: &MyKey) -> (String, Vec<Value>) {
        let (orig, shad) = sql::key_names(plan);
        let cols = if shadow { shad } else { orig };
        sql::key_range_where(&cols, &plan.key.columns, after.map(|k| k.0.as_slice()), Some(&upto.0))
    }
}

/// The blocker check reads INNODB_TRX and PROCESSLIST, which need the PROCESS privilege
/// (error 1227 without it). Without it shadowswap cannot see blockers: say so and let each
/// attempt rely on its lock timeout alone, rather than failing the run after the whole copy.
fn blockers_unknown(e: mysql_async::Error) -> Result<Vec<String>> {
    if errors::code(&e) == Some(1227) {
        tracing::warn!("cannot look for transactions that would block the cut-over (grant PROCESS to see them); attempting anyway, each attempt bounded by the lock timeout");
        return Ok(Vec::new());
    }
    Err(errors::db("looking for transactions that would block the cut-over", e))
}

struct MyRunLock {
    conn: Conn,
    name: String,
}

#[async_trait]
impl RunLock for MyRunLock {
    async fn release(self: Box<Self>) -> Result<()> {
        let MyRunLock { mut conn, name } = *self;
        let _: Option<Option<i64>> =
            conn.exec_first("SELECT RELEASE_LOCK(?)", (name,)).await.map_err(|e| errors::db("releasing the lock", e))?;
        conn.disconnect().await.map_err(|e| errors::db("closing the lock session", e))
    }
}

#[async_trait]
impl Dialect for MySql {
    type Key = MyKey;

    fn sql_dialect(&self) -> &dyn sqlparser::dialect::Dialect {
        &self.parser
    }

    fn rules(&self) -> Rules {
        Rules {
            eq: |a, b| a.eq_ignore_ascii_case(b),
            key_column_ok: sql::key_column_ok,
            type_change_refusal: sql::type_change_refusal,
            key_change_refusal: sql::key_change_refusal,
        }
    }

    fn names(&self, table: &TableRef) -> Names {
        Names::new(table, MAX_IDENTIFIER_CHARS, char_len)
    }

    async fn acquire_run_lock(&self, names: &Names) -> Result<Box<dyn RunLock>> {
        // A session of its own, outside the pool: the lock lives exactly as long as this session.
        let mut conn = Conn::new(self.opts.clone()).await.map_err(|e| self.connect_error(e))?;
        let got: Option<Option<i64>> = conn
            .exec_first("SELECT GET_LOCK(?, 0)", (names.lock.clone(),))
            .await
            .map_err(|e| errors::db("taking the advisory lock", e))?;
        if got.flatten() != Some(1) {
            let _ = conn.disconnect().await;
            return Err(Error::AnotherRun(names.table.clone()));
        }
        Ok(Box::new(MyRunLock { conn, name: names.lock.clone() }))
    }

    async fn inspect(&self, table: &TableRef) -> Result<TableShape> {
        let mut c = self.conn().await?;
        let mut shape = match Self::shape_on(&mut c, table).await {
            Ok(s) => s,
            Err(e) if errors::code(&e) == Some(errors::NO_SUCH_TABLE) => return Err(Error::NoSuchTable(table.clone())),
            Err(e) => return Err(errors::db(&format!("reading the definition of {table}"), e)),
        };
        let est: Option<Option<u64>> = c
            .exec_first(
                "SELECT TABLE_ROWS FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?",
                (&table.schema, &table.name),
            )
            .await
            .map_err(|e| errors::db("estimating rows", e))?;
        shape.estimated_rows = est.flatten().unwrap_or(0);
        Ok(shape)
    }

    async fn table_exists(&self, table: &TableRef) -> Result<bool> {
        let found = self
            .strings(
                "looking up a table",
                "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?",
                vec![table.schema.clone().into(), table.name.clone().into()],
            )
            .await?;
        Ok(!found.is_empty())
    }

    async fn preflight(&self, names: &Names, _original: &TableShape) -> Result<()> {
        let t = &names.table;
        let mut c = self.conn().await?;
        let info: Option<(String, Option<String>, Option<String>)> = c
            .exec_first(
                "SELECT TABLE_TYPE, ENGINE, CREATE_OPTIONS FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?",
                (&t.schema, &t.name),
            )
            .await
            .map_err(|e| errors::db("reading table status", e))?;
        let Some((kind, engine, options)) = info else { return Err(Error::NoSuchTable(t.clone())) };
        if kind != "BASE TABLE" {
            return Err(Error::refused(format!("{t} is a {kind}, not a table; shadowswap migrates base tables")));
        }
        if !engine.as_deref().is_some_and(|e| e.eq_ignore_ascii_case("InnoDB")) {
            return Err(Error::refused(format!(
                "{t} uses ENGINE={}; shadowswap needs InnoDB (transactions and row locks make the copy safe); convert it first",
                engine.unwrap_or_default()
            )));
        }
        if options.as_deref().is_some_and(|o| o.contains("partitioned")) {
            return Err(Error::refused(format!("{t} is partitioned; shadowswap does not migrate partitioned tables yet")));
        }
        let triggers: Vec<String> = c
            .exec(
                "SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE EVENT_OBJECT_SCHEMA = ? AND EVENT_OBJECT_TABLE = ? ORDER BY TRIGGER_NAME",
                (&t.schema, &t.name),
            )
            .await
            .map_err(|e| errors::db("listing triggers", e))?;
        if triggers.iter().any(|tr| names.triggers().contains(&tr.as_str())) {
            return Err(Error::refused(format!(
                "{t} still has capture triggers from an earlier shadowswap run; run `shadowswap cleanup` for this table first"
            )));
        }
        if !triggers.is_empty() {
            return Err(Error::refused(format!(
                "{t} has triggers of its own ({}); they would stay on the old table at the swap. Drop them for the \
                 migration and recreate them afterwards",
                triggers.join(", ")
            )));
        }
        let fks: Vec<String> = c
            .exec(
                "SELECT CONCAT(TABLE_NAME, '.', CONSTRAINT_NAME) FROM information_schema.REFERENTIAL_CONSTRAINTS \
                 WHERE (CONSTRAINT_SCHEMA = ? AND TABLE_NAME = ?) OR (UNIQUE_CONSTRAINT_SCHEMA = ? AND REFERENCED_TABLE_NAME = ?)",
                (&t.schema, &t.name, &t.schema, &t.name),
            )
            .await
            .map_err(|e| errors::db("listing foreign keys", e))?;
        if !fks.is_empty() {
            return Err(Error::refused(format!(
                "{t} has or is referenced by foreign keys ({}); a rename swap would leave them pointing at the old table. \
                 Drop them for the migration and recreate them afterwards",
                fks.join(", ")
            )));
        }
        // While binary logging is on, CREATE and DROP TRIGGER need SUPER unless
        // log_bin_trust_function_creators is set. Ask the server without creating anything: a
        // trigger on a session-private temporary table passes that check, then fails (1361).
        let probe = t.sibling(names.trial.clone());
        let ctx = "checking the privilege to create triggers";
        c.query_drop(format!("CREATE TEMPORARY TABLE {} (x INT)", Qualified(&probe))).await.map_err(|e| errors::db(ctx, e))?;
        let created = c
            .query_drop(format!(
                "CREATE TRIGGER {} AFTER INSERT ON {} FOR EACH ROW SET @shadowswap_probe = 1",
                sql::trigger_name(t, &names.trial),
                Qualified(&probe)
            ))
            .await;
        c.query_drop(format!("DROP TEMPORARY TABLE IF EXISTS {}", Qualified(&probe))).await.map_err(|e| errors::db(ctx, e))?;
        if errors::code_of(&created) == Some(errors::NEED_SUPER) {
            return Err(Error::refused(format!(
                "the capture triggers cannot be created: binary logging is on and {} lacks the SUPER privilege; \
                 grant it SUPER, or SET GLOBAL log_bin_trust_function_creators = 1",
                self.dsn.user
            )));
        }
        drop(c);
        if self.table_exists(&names.shadow).await? {
            return Err(Error::refused(format!(
                "{} already exists (left by an earlier run?); run `shadowswap cleanup` for this table, or drop or rename it",
                names.shadow
            )));
        }
        if self.table_exists(&names.old).await? {
            return Err(Error::refused(format!(
                "{} already exists (the old table an earlier run kept?); drop or rename it first",
                names.old
            )));
        }
        Ok(())
    }

    async fn trial_alter(&self, names: &Names, alter: &AlterAnalysis) -> Result<TableShape> {
        let spec = alter.spec.as_str();
        let trial = names.table.sibling(names.trial.clone());
        let mut c = self.conn().await?;
        let ctx = "trying the ALTER on a temporary copy";
        c.query_drop(format!("DROP TEMPORARY TABLE IF EXISTS {}", Qualified(&trial))).await.map_err(|e| errors::db(ctx, e))?;
        match c.query_drop(format!("CREATE TEMPORARY TABLE {} LIKE {}", Qualified(&trial), Qualified(&names.table))).await {
            Ok(()) => {}
            // E.g. a FULLTEXT or SPATIAL index (error 1796): InnoDB has no temporary tables with them.
            Err(mysql_async::Error::Server(s)) if s.message.to_ascii_lowercase().contains("temporary") => {
                return Err(Error::refused(format!(
                    "{} cannot be copied to a temporary table, where shadowswap tries the ALTER first ({}); \
                     tables with FULLTEXT or SPATIAL indexes are not supported yet, run this ALTER directly",
                    names.table, s.message
                )));
            }
            Err(e) => return Err(errors::db(ctx, e)),
        }
        let altered = c.query_drop(format!("ALTER TABLE {} {spec}", Qualified(&trial))).await;
        let shape = match altered {
            Ok(()) => match Self::engine_on(&mut c, &trial).await.map_err(|e| errors::db(ctx, e)) {
                // The capture triggers write the shadow inside the application's transactions and
                // the copy relies on row locks: a non-transactional shadow would keep the writes
                // of rolled-back transactions.
                Ok(engine) if !engine.eq_ignore_ascii_case("InnoDB") => Err(Error::refused(format!(
                    "the ALTER makes {} ENGINE={engine}; shadowswap's shadow table must be InnoDB (the capture \
                     triggers write it in the application's transactions), so run this ALTER directly",
                    names.table
                ))),
                Ok(_) => Self::shape_on(&mut c, &trial).await.map_err(|e| errors::db(ctx, e)),
                Err(e) => Err(e),
            },
            // Some ALTERs the server allows on the real table but not on a temporary one.
            Err(mysql_async::Error::Server(s)) if s.message.to_ascii_lowercase().contains("temporary") => {
                Err(Error::refused(format!(
                    "shadowswap tries the ALTER on a temporary copy of the table first, and the server does not allow it \
                     there ({}); shadowswap cannot run this ALTER yet, run it directly",
                    s.message
                )))
            }
            Err(mysql_async::Error::Server(s)) => Err(Error::AlterRejected(s.message)),
            Err(e) => Err(errors::db(ctx, e)),
        };
        c.query_drop(format!("DROP TEMPORARY TABLE IF EXISTS {}", Qualified(&trial))).await.map_err(|e| errors::db(ctx, e))?;
        shape
    }

    fn render_sql(&self, plan: &Plan) -> PlanSql {
        let n = &plan.names;
        let placeholders = vec!["?"; plan.key.columns.len()];
        let (where_, _) = sql::range_where(&sql::key_names(plan).0, &plan.key.columns, Some(&placeholders[..]), &placeholders);
        PlanSql {
            shadow: vec![
                format!("CREATE TABLE {} LIKE {}", Qualified(&n.shadow), Qualified(&n.table)),
                format!("ALTER TABLE {} {}", Qualified(&n.shadow), plan.analysis.spec),
            ],
            capture: sql::capture_triggers(plan).to_vec(),
            copy: sql::copy_chunk(plan, &where_),
            cut_over: sql::rename_swap(plan),
        }
    }

    async fn find_duplicate(&self, table: &TableRef, columns: &[String]) -> Result<Option<String>> {
        let cols = sql::column_list("", columns.iter().map(String::as_str));
        let quoted = columns.iter().map(|c| format!("QUOTE({})", Ident(c))).collect::<Vec<_>>().join(", ");
        let not_null = columns.iter().map(|c| format!("{} IS NOT NULL", Ident(c))).collect::<Vec<_>>().join(" AND ");
        let q = format!(
            "SELECT CONCAT('(', CONCAT_WS(', ', {quoted}), ') occurs ', COUNT(*), ' times') FROM {} WHERE {not_null} \
             GROUP BY {cols} HAVING COUNT(*) > 1 LIMIT 1",
            Qualified(table)
        );
        let mut c = self.conn().await?;
        // Bytes, shown lossily: QUOTE() of a binary key value need not be UTF-8, and the text is
        // only for the refusal message.
        let found =
            c.query_first::<Vec<u8>, _>(q).await.map_err(|e| errors::db("looking for duplicates of a new unique key", e))?;
        Ok(found.map(|b| String::from_utf8_lossy(&b).into_owned()))
    }

    async fn create_shadow(&self, plan: &Plan, lock_timeout: Duration) -> Result<()> {
        let n = &plan.names;
        let secs = whole_seconds(lock_timeout);
        let mut c = self.conn().await?;
        // The copy evaluates added defaults in the server's default zone, except when the chunk
        // key has a TIMESTAMP (its boundaries bind exactly only at UTC): then a clock default
        // would be filled in UTC, unlike a plain ALTER, unless the server's zone is UTC now.
        if sql::key_has_timestamp(plan) && sql::adds_zone_dependent_default(plan) {
            let offset: Option<Option<i64>> =
                c.query_first(sql::DEFAULT_ZONE_OFFSET).await.map_err(|e| errors::db("reading the server's time zone", e))?;
            if offset.flatten() != Some(0) {
                return Err(Error::refused(format!(
                    "the ALTER adds a column whose default reads the clock, and {}'s chunk key has a TIMESTAMP column: \
                     shadowswap copies such a table at UTC (the only zone where TIMESTAMP keys bind exactly), so the copy \
                     would fill that column in UTC while a plain ALTER uses the server's default time zone, which is not UTC; \
                     add that column with a plain ALTER TABLE and migrate the rest separately",
                    n.table
                )));
            }
        }
        let ctx = format!("creating {}", n.shadow);
        c.query_drop(sql::with_lock_timeout(
            secs,
            &format!("CREATE TABLE {} LIKE {}", Qualified(&n.shadow), Qualified(&n.table)),
        ))
        .await
        .map_err(|e| errors::db(&ctx, e))?;
        c.query_drop(format!("ALTER TABLE {} {}", Qualified(&n.shadow), plan.analysis.spec)).await.map_err(|e| match e {
            mysql_async::Error::Server(s) => Error::AlterRejected(s.message),
            e => errors::db(&ctx, e),
        })?;
        // CREATE TABLE … LIKE does not copy the AUTO_INCREMENT counter: carry it over so ids
        // freed by deletes at the top of the range are not handed out again after the swap.
        let next: Option<Option<u64>> = c
            .exec_first(
                "SELECT AUTO_INCREMENT FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?",
                (&n.table.schema, &n.table.name),
            )
            .await
            .map_err(|e| errors::db(&ctx, e))?;
        if let Some(next) = next.flatten() {
            c.query_drop(format!("ALTER TABLE {} AUTO_INCREMENT = {next}", Qualified(&n.shadow)))
                .await
                .map_err(|e| errors::db(&ctx, e))?;
        }
        Ok(())
    }

    async fn install_capture(&self, plan: &Plan, lock_timeout: Duration) -> Result<()> {
        // A retry starts from scratch: no trigger, and an empty shadow, since a failed attempt
        // may have left some of the triggers working for a while (the backfill has not started,
        // so the shadow holds only what they wrote). DELETE, not TRUNCATE, which would reset the
        // AUTO_INCREMENT carried over.
        self.remove_capture(&plan.names, lock_timeout).await?;
        let mut c = self.conn().await?;
        c.query_drop(format!("DELETE FROM {}", Qualified(&plan.names.shadow)))
            .await
            .map_err(|e| errors::db("emptying the shadow table", e))?;
        drop(c);
        let stmts = sql::capture_triggers(plan);
        let id = self
            .trigger_ddl_locked("creating the capture triggers", &plan.names.table, &stmts, lock_timeout, Some(&plan.names))
            .await?;
        if let Some(id) = id {
            self.captured.lock().expect("identity map").insert(plan.names.table.clone(), id);
        }
        Ok(())
    }

    async fn remove_capture(&self, names: &Names, lock_timeout: Duration) -> Result<()> {
        // On the table before the swap, on the old table after it: drop them where they are.
        let [a, b, c] = names.triggers();
        let mut conn = self.conn().await?;
        let found: Vec<(String, String)> = conn
            .exec(
                "SELECT TRIGGER_NAME, EVENT_OBJECT_TABLE FROM information_schema.TRIGGERS \
                 WHERE TRIGGER_SCHEMA = ? AND TRIGGER_NAME IN (?, ?, ?) ORDER BY EVENT_OBJECT_TABLE, TRIGGER_NAME",
                (&names.table.schema, a, b, c),
            )
            .await
            .map_err(|e| errors::db("listing capture triggers", e))?;
        drop(conn);
        let mut tables: Vec<&str> = found.iter().map(|(_, t)| t.as_str()).collect();
        tables.dedup();
        for t in tables {
            let stmts: Vec<String> = found
                .iter()
                .filter(|(_, on)| on == t)
                .map(|(name, _)| format!("DROP TRIGGER IF EXISTS {}", sql::trigger_name(&names.table, name)))
                .collect();
            self.trigger_ddl_locked(
                "dropping the capture triggers",
                &names.table.sibling(t.to_string()),
                &stmts,
                lock_timeout,
                None,
            )
            .await?;
        }
        Ok(())
    }

    async fn capture_present(&self, names: &Names) -> Result<Vec<String>> {
        let [a, b, c] = names.triggers();
        self.strings(
            "listing capture triggers",
            "SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ? AND TRIGGER_NAME IN (?, ?, ?) ORDER BY TRIGGER_NAME",
            vec![names.table.schema.clone().into(), a.into(), b.into(), c.into()],
        )
        .await
    }

    async fn drop_table(&self, table: &TableRef, lock_timeout: Duration) -> Result<()> {
        self.exec_ddl(&format!("dropping {table}"), &format!("DROP TABLE IF EXISTS {}", Qualified(table)), lock_timeout).await
    }

    async fn key_range(&self, plan: &Plan) -> Result<Option<(MyKey, MyKey)>> {
        let low = self.key_query("reading the lowest key", sql::key_edge(plan, false), vec![]).await?;
        let high = self.key_query("reading the high watermark", sql::key_edge(plan, true), vec![]).await?;
        Ok(low.zip(high))
    }

    async fn chunk_end(&self, plan: &Plan, after: Option<&MyKey>, high: &MyKey, rows: u64) -> Result<MyKey> {
        let (where_, params) = Self::where_range(plan, false, after, high);
        let end = self.key_query("finding the chunk's end", sql::chunk_end(plan, &where_, rows), params).await?;
        Ok(end.unwrap_or_else(|| high.clone()))
    }

    async fn copy_chunk(&self, plan: &Plan, after: Option<&MyKey>, upto: &MyKey, lock_wait: Duration) -> Result<u64> {
        let ctx = "copying a chunk";
        let (where_orig, p_orig) = Self::where_range(plan, false, after, upto);
        let (where_shadow, p_shadow) = Self::where_range(plan, true, after, upto);
        let mut c = self.conn().await?;
        c.query_drop(format!("SET SESSION innodb_lock_wait_timeout = {}", whole_seconds(lock_wait)))
            .await
            .map_err(|e| errors::db(ctx, e))?;
        let mut tx = c.start_transaction(TxOpts::default()).await.map_err(|e| errors::db(ctx, e))?;
        let _: Option<u64> =
            tx.exec_first(sql::lock_chunk(plan, &where_orig), p_orig.clone()).await.map_err(|e| errors::db(ctx, e))?;
        tx.exec_drop(sql::clear_shadow_chunk(plan, &where_shadow), p_shadow).await.map_err(|e| errors::db(ctx, e))?;
        match tx.exec_drop(sql::copy_chunk(plan, &where_orig), p_orig).await {
            Ok(()) => {}
            Err(mysql_async::Error::Server(s)) if s.code == errors::DUP_ENTRY => {
                let (value, key) = errors::duplicate_entry(&s.message).unwrap_or((s.message.clone(), "?".into()));
                return Err(Error::DuplicateKey { key, table: plan.names.table.clone(), value: format!("'{value}'") });
            }
            // Values that no longer fit, NULL into NOT NULL, and CHECK constraints (MariaDB 4025,
            // MySQL 3819) that existing rows violate.
            Err(mysql_async::Error::Server(s))
                if matches!(s.code, 1048 | 1263 | 1264 | 1265 | 1292 | 1364 | 1366 | 1406 | 3819 | 4025) =>
            {
                return Err(Error::refused(format!(
                    "the altered table rejects a row of {}: {} (error {}); change the ALTER so the existing data fits",
                    plan.names.table, s.message, s.code
                )));
            }
            Err(e) => return Err(errors::db(ctx, e)),
        }
        let rows = tx.affected_rows();
        tx.commit().await.map_err(|e| errors::db(ctx, e))?;
        Ok(rows)
    }

    async fn checksum_chunk(
        &self,
        plan: &Plan,
        after: Option<&MyKey>,
        upto: Option<&MyKey>,
    ) -> Result<(ChunkChecksum, ChunkChecksum)> {
        let ctx = "checksumming a chunk";
        let cols = &plan.checksum_columns;
        let (orig_keys, shadow_keys) = sql::key_names(plan);
        let bounds = |keys: &[&str]| {
            sql::key_range_where(keys, &plan.key.columns, after.map(|k| k.0.as_slice()), upto.map(|k| k.0.as_slice()))
        };
        let (where_orig, p_orig) = bounds(&orig_keys);
        let (where_shadow, p_shadow) = bounds(&shadow_keys);
        let q_orig = sql::checksum(&plan.names.table, &cols.iter().map(|m| m.source.as_str()).collect::<Vec<_>>(), &where_orig);
        let q_shadow =
            sql::checksum(&plan.names.shadow, &cols.iter().map(|m| m.target.as_str()).collect::<Vec<_>>(), &where_shadow);
        let mut c = self.conn().await?;
        let mut opts = TxOpts::default();
        opts.with_consistent_snapshot(true).with_readonly(true);
        let mut tx = c.start_transaction(opts).await.map_err(|e| errors::db(ctx, e))?;
        let a: Option<(u64, u64)> = tx.exec_first(q_orig, p_orig).await.map_err(|e| errors::db(ctx, e))?;
        let b: Option<(u64, u64)> = tx.exec_first(q_shadow, p_shadow).await.map_err(|e| errors::db(ctx, e))?;
        tx.commit().await.map_err(|e| errors::db(ctx, e))?;
        let sum = |v: Option<(u64, u64)>| v.map(|(rows, hash)| ChunkChecksum { rows, hash }).unwrap_or_default();
        Ok((sum(a), sum(b)))
    }

    async fn verify_before_cut_over(&self, plan: &Plan) -> Result<()> {
        let mut c = self.conn().await?;
        self.verify_identity(&mut c, plan).await.map(|_| ())
    }

    /// The swap, checked on both sides in its own session. MariaDB refuses `RENAME TABLE` under
    /// `LOCK TABLES` (error 1192), and `ALTER TABLE … RENAME` under the lock frees the name for a
    /// moment (waiting sessions then fail with "doesn't exist"), so the check cannot share the
    /// rename's lock: it runs immediately before the `RENAME TABLE`, and the old table the
    /// rename took is checked again right after it. See docs/cut-over.md.
    async fn cut_over(&self, plan: &Plan, lock_timeout: Duration) -> Result<()> {
        let ctx = "swapping the tables";
        let mut c = self.conn().await?;
        let checked = self.verify_identity(&mut c, plan).await?;
        c.query_drop(sql::with_lock_timeout(whole_seconds(lock_timeout), &sql::rename_swap(plan)))
            .await
            .map_err(|e| errors::db(ctx, e))?;
        let Some(checked) = checked else { return Ok(()) };
        let n = &plan.names;
        match identity::Identity::read(&mut c, &n.old, n).await {
            Ok(old) => match checked.changed(&old) {
                None => Ok(()),
                Some(what) => Err(Error::refused(format!(
                    "the tables were swapped, but {} {what} in the moment between the last check and the swap; \
                     {} is kept as the rename found it: compare it with {} before using either",
                    n.table, n.old, n.table
                ))),
            },
            Err(e) => {
                tracing::warn!(error = %e, "could not re-read the old table after the swap");
                Ok(())
            }
        }
    }
}

/// The throttle's signals from this server (primary or replica).
#[async_trait]
impl Signals for MySql {
    fn target(&self) -> String {
        self.dsn.to_string()
    }

    async fn heartbeat_create(&self, names: &Names) -> Result<()> {
        let mut c = self.conn().await?;
        c.query_drop(format!(
            "CREATE TABLE IF NOT EXISTS {} (id TINYINT UNSIGNED NOT NULL PRIMARY KEY, seq BIGINT UNSIGNED NOT NULL) ENGINE=InnoDB",
            Qualified(&names.heartbeat)
        ))
        .await
        .map_err(|e| errors::db("creating the heartbeat table", e))
    }

    async fn heartbeat_write(&self, names: &Names, seq: u64) -> Result<()> {
        let mut c = self.conn().await?;
        c.exec_drop(
            format!(
                "INSERT INTO {} (id, seq) VALUES (1, ?) ON DUPLICATE KEY UPDATE seq = VALUES(seq)",
                Qualified(&names.heartbeat)
            ),
            (seq,),
        )
        .await
        .map_err(|e| errors::db("writing the heartbeat", e))
    }

    async fn heartbeat_read(&self, names: &Names) -> Result<Option<u64>> {
        let mut c = self.conn().await?;
        match c.query_first::<u64, _>(format!("SELECT seq FROM {} WHERE id = 1", Qualified(&names.heartbeat))).await {
            Ok(v) => Ok(v),
            // Not replicated yet.
            Err(e) if errors::code(&e) == Some(errors::NO_SUCH_TABLE) => Ok(None),
            Err(e) => Err(errors::db("reading the heartbeat", e)),
        }
    }

    async fn status_value(&self, name: &str) -> Result<f64> {
        let mut c = self.conn().await?;
        let v: Option<String> = c
            .exec_first("SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = UPPER(?)", (name,))
            .await
            .map_err(|e| errors::db("reading a status variable", e))?;
        let v = v.ok_or_else(|| {
            Error::refused(format!("{name} is not a global status variable of this server (SHOW GLOBAL STATUS)"))
        })?;
        v.trim().parse().map_err(|_| Error::refused(format!("status variable {name} is not a number ({v})")))
    }

    async fn query_value(&self, sql: &str) -> Result<f64> {
        let mut c = self.conn().await?;
        let row: Option<Row> = c.query_first(sql).await.map_err(|e| errors::db("running the throttle query", e))?;
        let Some(v) = row.and_then(|r| r.unwrap().into_iter().next()) else { return Ok(0.0) };
        Ok(match v {
            Value::NULL => 0.0,
            Value::Int(i) => i as f64,
            Value::UInt(u) => u as f64,
            Value::Float(f) => f as f64,
            Value::Double(d) => d,
            Value::Bytes(b) => String::from_utf8_lossy(&b).trim().parse().unwrap_or(1.0),
            _ => 1.0,
        })
    }

    async fn cut_over_blockers(&self, names: &Names, older_than: Duration) -> Result<Vec<String>> {
        let mut c = self.conn().await?;
        let secs = whole_seconds(older_than);
        // Precise when the metadata_lock_info plugin is loaded: sessions holding a metadata lock
        // on the table in a transaction open longer than the lock timeout.
        let precise = c
            .exec::<String, _, _>(
                "SELECT CONCAT('session ', t.trx_mysql_thread_id, ' (', COALESCE(p.USER, '?'), ') in a transaction for ',                         TIMESTAMPDIFF(SECOND, t.trx_started, NOW()), ' s holding ', m.LOCK_MODE, ' on the table')                  FROM information_schema.METADATA_LOCK_INFO m                  JOIN information_schema.INNODB_TRX t ON t.trx_mysql_thread_id = m.THREAD_ID                  LEFT JOIN information_schema.PROCESSLIST p ON p.ID = m.THREAD_ID                  WHERE m.TABLE_SCHEMA = ? AND m.TABLE_NAME = ? AND m.THREAD_ID <> CONNECTION_ID()                    AND t.trx_started < NOW() - INTERVAL ? SECOND",
                (&names.table.schema, &names.table.name, secs),
            )
            .await;
        match precise {
            Ok(rows) => Ok(rows),
            // ER_UNKNOWN_TABLE (1109): plugin not loaded. Then any InnoDB transaction open longer
            // than the lock timeout may hold the table's metadata lock: wait for those.
            // The statement text (PROCESSLIST.INFO) holds the application's literals, which need
            // not be UTF-8: read bytes, shown lossily (the text is only for the message).
            Err(e) if errors::code(&e) == Some(1109) => c
                .exec::<Vec<u8>, _, _>(
                    "SELECT CONCAT('session ', t.trx_mysql_thread_id, ' (', COALESCE(p.USER, '?'), ') in a transaction for ',                             TIMESTAMPDIFF(SECOND, t.trx_started, NOW()), ' s: ', COALESCE(LEFT(p.INFO, 80), 'idle'))                      FROM information_schema.INNODB_TRX t LEFT JOIN information_schema.PROCESSLIST p ON p.ID = t.trx_mysql_thread_id                      WHERE t.trx_mysql_thread_id <> CONNECTION_ID() AND t.trx_started < NOW() - INTERVAL ? SECOND",
                    (secs,),
                )
                .await
                .map(|rows| rows.iter().map(|b| String::from_utf8_lossy(b).into_owned()).collect())
                .or_else(blockers_unknown),
            Err(e) => blockers_unknown(e),
        }
    }
}
