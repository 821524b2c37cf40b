//! The PostgreSQL dialect of shadowswap, on `tokio-postgres`.
//!
//! Module map:
//! - [`dsn`]     — `postgres://` DSN parsing, `PGPASSWORD`, session options; never displays passwords.
//! - [`tls`]     — libpq `sslmode`/`sslrootcert` semantics on rustls; every connection goes through it.
//! - [`errors`]  — SQLSTATE classification (lock_not_available, deadlock, …).
//! - [`sql`]     — pure SQL builders: quoting, row-comparison keysets, copy, capture, checksum.
//! - [`cutover`] — the swap transaction and everything that binds to the table's OID.
//! - [`deps`]    — every dependent in `pg_depend`: refused by name, or carried over at the swap;
//!   [`deps_sql`] its statement builders.
//! - this file   — [`Postgres`], the [`Dialect`] implementation.
//!
//! Chunk-key values travel as text and are cast back to the column's type in the query, so any
//! btree-ordered type with an exact text form can be a key (see [`sql::key_column_ok`]).

pub mod cutover;
pub mod deps;
pub mod deps_sql;
pub mod dsn;
pub mod errors;
pub mod generated_names;
pub mod owner;
pub mod sql;
pub mod tls;

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use shadowswap_engine::alter::AlterAnalysis;
use shadowswap_engine::dialect::{ChunkChecksum, Dialect, RunLock, Signals};
use shadowswap_engine::error::Result;
use shadowswap_engine::model::{Column, Index, TableRef, TableShape};
use shadowswap_engine::names::{byte_len, Names};
use shadowswap_engine::plan::{Plan, PlanSql, Rules};
use shadowswap_engine::Error;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::GenericClient;

pub use dsn::Dsn;
use sql::{Ident, Qualified};

/// PostgreSQL's identifier limit: NAMEDATALEN - 1 = 63 bytes.
pub const MAX_IDENTIFIER_BYTES: usize = 63;

/// A chunk boundary: the chunk key's values of one row, as text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgKey(pub Vec<String>);

impl fmt::Display for PgKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "({})", self.0.iter().map(|v| sql::literal(v)).collect::<Vec<_>>().join(", "))
    }
}

/// A PostgreSQL server.
pub struct Postgres {
    pool: Pool,
    dsn: Dsn,
    /// `dsn.config` with the pinned session settings ([`Postgres::connect`]); every session uses it.
    session: tokio_postgres::Config,
    default_schema: String,
    /// The user's search path (see [`sql::search_path_value`]), for the ALTER text only.
    user_search_path: String,
    parser: sqlparser::dialect::PostgreSqlDialect,
}

fn connect_error(dsn: &Dsn, e: tokio_postgres::Error) -> Error {
    let target = dsn.to_string();
    if let Some(reason) = dsn.tls.explain(&e, &target) {
        return Error::refused(reason);
    }
    match errors::state(&e) {
        Some(s) if *s == SqlState::INVALID_PASSWORD || *s == SqlState::INVALID_AUTHORIZATION_SPECIFICATION => {
            Error::AccessDenied { target, reason: errors::message(&e) }
        }
        Some(s) if *s == SqlState::INVALID_CATALOG_NAME => Error::refused(format!(
            "database {} does not exist on {target}; check the DSN",
            dsn.config.get_dbname().unwrap_or("")
        )),
        Some(_) => errors::db(&format!("connecting to {target}"), e),
        None => Error::Unreachable { target, reason: tls::full_message(&e) },
    }
}

fn millis(d: Duration) -> u128 {
    d.as_millis().max(1)
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
        let row = probe
            .query_one(
                "SELECT pg_catalog.current_schema(), pg_catalog.current_schemas(false), \
                        pg_catalog.current_setting('session_replication_role'), pg_catalog.current_setting('is_superuser'), \
                        pg_catalog.current_setting('server_version_num')",
                &[],
            )
            .await
            .map_err(|e| errors::db("checking the connection", e))?;
        drop(probe);
        let _ = driver.await;
        let default_schema = row.get::<_, Option<String>>(0).unwrap_or_else(|| "public".into());
        let user_search_path = sql::search_path_value(&row.get::<_, Vec<String>>(1));
        let replication_role: String = row.get(2);
        let superuser = row.get::<_, String>(3) == "on";
        let mut options = format!("{} {}", dsn::SESSION_OPTIONS, dsn::PINNED_SEARCH_PATH);
        if row.get::<_, String>(4).parse::<u32>().unwrap_or(0) >= 140000 {
            options.push(' ');
            options.push_str(dsn::IDLE_SESSION_OPTION);
        }
        if superuser {
            // Only a superuser may set it, at connect too; for anyone else only a superuser can
            // have configured another value, which is refused below.
            options.push_str(" -c session_replication_role=origin");
        } else if replication_role != "origin" {
            return Err(Error::refused(format!(
                "sessions of the DSN's user start with session_replication_role = {replication_role} (set on the role or \
                 the database), where triggers and foreign keys do not fire; RESET it for that role or database"
            )));
        }
        let mut session = dsn.config.clone();
        session.options(&options);
        let mgr =
            Manager::from_connect(session.clone(), dsn.tls.clone(), ManagerConfig { recycling_method: RecyclingMethod::Fast });
        let pool = Pool::builder(mgr).max_size(8).build().map_err(|e| Error::refused(format!("connection pool: {e}")))?;
        let me =
            Postgres { pool, dsn, session, default_schema, user_search_path, parser: sqlparser::dialect::PostgreSqlDialect {} };
        drop(me.client().await?);
        Ok(me)
    }

    /// The schema unqualified table names resolve to (`current_schema()`).
    pub fn default_schema(&self) -> &str {
        &self.default_schema
    }

    fn connect_error(&self, e: tokio_postgres::Error) -> Error {
        connect_error(&self.dsn, e)
    }

    async fn client(&self) -> Result<deadpool_postgres::Object> {
        self.pool.get().await.map_err(|e| match e {
            deadpool_postgres::PoolError::Backend(e) => self.connect_error(e),
            other => Error::Unreachable { target: self.dsn.to_string(), reason: other.to_string() },
        })
    }

    async fn ddl(&self, context: &str, stmts: &[String], lock_timeout: Duration) -> Result<()> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(|e| errors::db(context, e))?;
        tx.batch_execute(&format!("SET LOCAL lock_timeout = '{}ms'", millis(lock_timeout)))
            .await
            .map_err(|e| errors::db(context, e))?;
        for s in stmts {
            tx.batch_execute(s).await.map_err(|e| errors::db(context, e))?;
        }
        tx.commit().await.map_err(|e| errors::db(context, e))
    }

    /// Columns and indexes of the relation `qualified` (a quoted name or `pg_temp.x`).
    /// The name a unique key the copy found violated (`raw`, a constraint of the shadow) has for
    /// the user: the name a plain ALTER on the table gives it when PostgreSQL generated it for
    /// the shadow (`_t_new_c2_key` → `t_c2_key`), else `raw`. Best effort: `raw` when the
    /// catalog cannot be read.
    async fn final_key_name(&self, plan: &Plan, raw: &str) -> String {
        let n = &plan.names;
        let Ok(c) = self.client().await else { return raw.to_string() };
        let shadow = Qualified(&n.shadow).to_string();
        match cutover::final_constraint_names(&**c, &shadow, &n.shadow.name, &n.table.name, &[], Some(raw)).await {
            Ok(found) => found.into_iter().next().map_or_else(|| raw.to_string(), |(_, chosen)| chosen),
            Err(_) => raw.to_string(),
        }
    }

    pub(crate) async fn shape_on(
        c: &impl GenericClient,
        qualified: &str,
    ) -> std::result::Result<TableShape, tokio_postgres::Error> {
        let rows = c
            .query(
                &format!("SELECT a.attname::text, format_type(a.atttypid, a.atttypmod), co.collname::text, NOT a.attnotnull, a.attgenerated <> '', \
                        a.atthasdef OR a.attidentity <> '' OR a.attgenerated <> '', \
                        ({}) \
                 FROM pg_attribute a LEFT JOIN pg_collation co ON co.oid = a.attcollation AND a.attcollation <> 0 \
                 WHERE a.attrelid = $1::text::regclass AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
                    sql::KEY_OPERATOR_SCHEMA
                ),
                &[&qualified],
            )
            .await?;
        let columns = rows
            .iter()
            .map(|r| Column {
                name: r.get(0),
                column_type: r.get(1),
                collation: r.get(2),
                nullable: r.get(3),
                generated: r.get(4),
                has_default: r.get(5),
                operator_schema: r.get(6),
            })
            .collect();
        let rows = c
            .query(
                "SELECT ic.relname::text, i.indisunique, i.indisprimary, \
                        (i.indexprs IS NOT NULL OR i.indpred IS NOT NULL OR NOT i.indimmediate OR 0 = ANY (i.indkey::int2[])), \
                        array(SELECT a.attname::text FROM unnest(i.indkey::int2[]) WITH ORDINALITY k(attnum, ord) \
                              JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum \
                              WHERE k.ord <= i.indnkeyatts ORDER BY k.ord) \
                 FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid \
                 WHERE i.indrelid = $1::text::regclass ORDER BY NOT i.indisprimary, ic.relname",
                &[&qualified],
            )
            .await?;
        let indexes = rows
            .iter()
            .map(|r| Index { name: r.get(0), unique: r.get(1), primary: r.get(2), partial: r.get(3), columns: r.get(4) })
            .collect();
        Ok(TableShape { columns, indexes, estimated_rows: 0 })
    }

    /// The `GENERATED ALWAYS AS IDENTITY` columns of `table` (see [`sql::capture`]).
    async fn always_identity(
        c: &impl GenericClient,
        table: &TableRef,
    ) -> std::result::Result<Vec<String>, tokio_postgres::Error> {
        let rows = c
            .query(
                "SELECT attname::text FROM pg_attribute WHERE attrelid = $1::text::regclass AND attnum > 0 \
                 AND NOT attisdropped AND attidentity = 'a' ORDER BY attnum",
                &[&Qualified(table).to_string()],
            )
            .await?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    /// The schema-qualified equality operator of each shadow key column, in key order (see
    /// [`sql::capture`]): the one the shadow's unique index on exactly the key columns uses.
    ///
    /// Errors: [`Error::Refused`] when no such index exists on the shadow or its operator's
    /// name is not a plain operator name.
    async fn key_equality(c: &impl GenericClient, plan: &Plan) -> Result<Vec<String>> {
        let ctx = "reading the chunk key's equality operators";
        let rows = c
            .query(sql::UNIQUE_INDEX_EQUALITY, &[&Qualified(&plan.names.shadow).to_string()])
            .await
            .map_err(|e| errors::db(ctx, e))?;
        // (index oid, [(column, operator schema, operator name)]) in index column order.
        type IndexOps = (i64, Vec<(String, String, String)>);
        let mut by_index: Vec<IndexOps> = Vec::new();
        for r in &rows {
            let (oid, col, schema, op): (i64, String, String, String) = (r.get(0), r.get(1), r.get(2), r.get(3));
            match by_index.last_mut() {
                Some((o, cols)) if *o == oid => cols.push((col, schema, op)),
                _ => by_index.push((oid, vec![(col, schema, op)])),
            }
        }
        let key = &plan.key.shadow_columns;
        let found =
            by_index.iter().find(|(_, cols)| cols.len() == key.len() && key.iter().all(|k| cols.iter().any(|(c, _, _)| c == k)));
        let Some((_, cols)) = found else {
            return Err(Error::refused(format!(
                "{} has no unique index on exactly the chunk key ({}); the capture cannot replay changes by key",
                plan.names.shadow,
                key.join(", ")
            )));
        };
        key.iter()
            .map(|k| {
                let (_, schema, op) = cols.iter().find(|(c, _, _)| c == k).expect("checked above");
                sql::qualified_operator(schema, op).ok_or_else(|| {
                    Error::refused(format!(
                        "the equality operator {schema}.{op} of key column {k} is not a plain operator name; \
                         choose another key"
                    ))
                })
            })
            .collect()
    }

    /// Subscriptions (logical replication, this database) that replicate into `table`, with
    /// the table's sync state and whether the current user may alter them (owner or superuser).
    async fn subscriptions_of(
        c: &impl GenericClient,
        table: &TableRef,
    ) -> std::result::Result<Vec<(String, String, bool)>, tokio_postgres::Error> {
        let rows = c
            .query(
                "SELECT s.subname::text, r.srsubstate::text, \
                        pg_has_role(current_user, s.subowner, 'USAGE') OR (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) \
                 FROM pg_subscription_rel r JOIN pg_subscription s ON s.oid = r.srsubid \
                 WHERE r.srrelid = $1::text::regclass ORDER BY 1",
                &[&Qualified(table).to_string()],
            )
            .await?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect())
    }

    /// A subscription binds the tables it replicates into by OID (`pg_subscription_rel`): after
    /// the swap its apply worker keeps writing into the table by name only until it restarts;
    /// then it skips (and so loses) every change to a table it has no state for. The swap is
    /// followed by `ALTER SUBSCRIPTION … REFRESH PUBLICATION WITH (copy_data = false)`
    /// ([`Self::refresh_subscriptions`]), which needs the subscription's owner and a table whose
    /// initial copy is done: refuse otherwise, before anything is created.
    async fn subscriptions_preflight(&self, names: &Names) -> Result<()> {
        let c = self.client().await?;
        let subs = Self::subscriptions_of(&**c, &names.table)
            .await
            .map_err(|e| errors::db("looking for subscriptions of the table", e))?;
        for (sub, state, may_alter) in subs {
            if state != "r" {
                return Err(Error::refused(format!(
                    "{} is still being synchronized by subscription {sub} (state {state}); wait until its initial copy is done \
                     (pg_subscription_rel.srsubstate = 'r')",
                    names.table
                )));
            }
            if !may_alter {
                return Err(Error::refused(format!(
                    "{} is replicated into by subscription {sub}, which shadowswap must refresh after the swap \
                     (ALTER SUBSCRIPTION … REFRESH PUBLICATION); connect as the subscription's owner or a superuser",
                    names.table
                )));
            }
        }
        Ok(())
    }

    /// After the swap: re-register the new table with every subscription that replicated into
    /// the old one (see [`Self::subscriptions_preflight`]). Errors name the statement to run.
    async fn refresh_subscriptions(c: &impl GenericClient, plan: &Plan) -> Result<()> {
        let subs = Self::subscriptions_of(c, &plan.names.old)
            .await
            .map_err(|e| errors::db("looking for subscriptions of the old table", e))?;
        for (sub, _, _) in subs {
            let stmt = sql::refresh_subscription(&sub);
            c.batch_execute(&stmt).await.map_err(|e| {
                Error::refused(format!(
                    "subscription {sub} still names {} (now the old table): {}; run {stmt} now, or its changes to {} \
                     are skipped once its apply worker restarts",
                    plan.names.old,
                    errors::message(&e),
                    plan.names.table
                ))
            })?;
        }
        Ok(())
    }

    async fn key_query(&self, context: &str, query: String, params: &[String]) -> Result<Option<PgKey>> {
        let c = self.client().await?;
        let p: Vec<&(dyn ToSql + Sync)> = params.iter().map(|s| s as &(dyn ToSql + Sync)).collect();
        let row = c.query_opt(&query, &p).await.map_err(|e| errors::db(context, e))?;
        Ok(row.map(|r| PgKey((0..r.len()).map(|i| r.get::<_, String>(i)).collect())))
    }

    fn where_range(plan: &Plan, shadow: bool, after: Option<&PgKey>, upto: &PgKey) -> (String, Vec<String>) {
        let (orig, shad) = sql::key_names(plan);
        let cols = if shadow { shad } else { orig };
        let w = sql::range_where(&cols, &plan.key.columns, after.is_some());
        let mut params: Vec<String> = after.map(|a| a.0.clone()).unwrap_or_default();
        params.extend(upto.0.iter().cloned());
        (w, params)
    }
}

fn params(v: &[String]) -> Vec<&(dyn ToSql + Sync)> {
    v.iter().map(|s| s as &(dyn ToSql + Sync)).collect()
}

struct PgRunLock {
    client: tokio_postgres::Client,
    driver: tokio::task::JoinHandle<()>,
    key: String,
}

#[async_trait]
impl RunLock for PgRunLock {
    async fn release(self: Box<Self>) -> Result<()> {
        let PgRunLock { client, driver, key } = *self;
        let r = client.execute("SELECT pg_advisory_unlock(hashtextextended($1, 0))", &[&key]).await;
        drop(client);
        let _ = driver.await;
        r.map(|_| ()).map_err(|e| errors::db("releasing the advisory lock", e))
    }
}

#[async_trait]
impl Dialect for Postgres {
    type Key = PgKey;

    fn sql_dialect(&self) -> &dyn sqlparser::dialect::Dialect {
        &self.parser
    }

    fn rules(&self) -> Rules {
        Rules {
            eq: |a, b| a == b,
            key_column_ok: sql::key_column_ok,
            type_change_refusal: sql::type_change_refusal,
            key_change_refusal: sql::key_change_refusal,
        }
    }

    fn names(&self, table: &TableRef) -> Names {
        Names::new(table, MAX_IDENTIFIER_BYTES, byte_len)
    }

    async fn acquire_run_lock(&self, names: &Names) -> Result<Box<dyn RunLock>> {
        // A session of its own: a session-level advisory lock lives exactly as long as it.
        let (client, conn) = self.dsn.tls.connect(&self.session).await.map_err(|e| self.connect_error(e))?;
        let driver = tokio::spawn(async move {
            let _ = conn.await;
        });
        let got: bool = client
            .query_one("SELECT pg_try_advisory_lock(hashtextextended($1, 0))", &[&names.lock])
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

    async fn inspect(&self, table: &TableRef) -> Result<TableShape> {
        let c = self.client().await?;
        let q = Qualified(table).to_string();
        let mut shape = match Self::shape_on(&**c, &q).await {
            Ok(s) => s,
            Err(e)
                if errors::state(&e) == Some(&SqlState::UNDEFINED_TABLE)
                    || errors::state(&e) == Some(&SqlState::INVALID_SCHEMA_NAME) =>
            {
                return Err(Error::NoSuchTable(table.clone()))
            }
            Err(e) => return Err(errors::db(&format!("reading the definition of {table}"), e)),
        };
        let est: f32 = c
            .query_one("SELECT reltuples FROM pg_class WHERE oid = $1::text::regclass", &[&q])
            .await
            .map_err(|e| errors::db("estimating rows", e))?
            .get(0);
        shape.estimated_rows = est.max(0.0) as u64;
        Ok(shape)
    }

    async fn table_exists(&self, table: &TableRef) -> Result<bool> {
        let c = self.client().await?;
        let r = c
            .query_opt(
                "SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2",
                &[&table.schema, &table.name],
            )
            .await
            .map_err(|e| errors::db("looking up a table", e))?;
        Ok(r.is_some())
    }

    async fn preflight(&self, names: &Names, _original: &TableShape) -> Result<()> {
        let c = self.client().await?;
        cutover::preflight(&**c, names).await?;
        owner::preflight(&**c, &names.table).await?;
        drop(c);
        self.subscriptions_preflight(names).await?;
        for leftover in [&names.shadow, &names.old] {
            if self.table_exists(leftover).await? {
                return Err(Error::refused(format!(
                    "{leftover} already exists (left by an earlier run?); run `shadowswap cleanup` for this table, or drop or rename it"
                )));
            }
        }
        Ok(())
    }

    async fn trial_alter(&self, names: &Names, alter: &AlterAnalysis) -> Result<TableShape> {
        let spec = alter.spec.as_str();
        // The copy converts a column's values with the type's assignment cast, which is what
        // `ALTER COLUMN … TYPE` does without USING; an expression given with USING would be
        // silently ignored, so it is refused.
        let analysis = shadowswap_engine::alter::analyze(spec, &self.parser)?;
        if let Some(c) = analysis.clauses.iter().find(|c| sql::type_change_with_using(c)) {
            return Err(Error::refused(format!(
                "the clause \"{c}\" converts with a USING expression, which shadowswap's copy cannot apply (it uses the \
                 type's assignment cast); add a new column and fill it yourself, or run that clause directly"
            )));
        }
        // DDL is transactional in PostgreSQL: try the ALTER on a real copy of the definition
        // inside a transaction that is always rolled back.
        let trial = names.table.sibling(names.trial.clone());
        let ctx = "trying the ALTER on a scratch copy";
        let mut c = self.client().await?;
        // The copy's indexes (and so its primary, unique and exclusion keys) have generated
        // names, and foreign keys are added to the shadow after the ALTER: an ALTER that names
        // one of them would fail there, or act on the wrong object. Refuse it with the reason.
        let referenced = sql::referenced_index_or_constraint_names(spec);
        if !referenced.is_empty() {
            let found: Vec<String> = c
                .query(
                    "SELECT conname::text FROM pg_constraint WHERE conrelid = $1::text::regclass AND contype IN ('p', 'u', 'x', 'f') \
                       AND conname::text = ANY($2) \
                     UNION SELECT ic.relname::text FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid \
                     WHERE i.indrelid = $1::text::regclass AND ic.relname::text = ANY($2) ORDER BY 1",
                    &[&Qualified(&names.table).to_string(), &referenced],
                )
                .await
                .map_err(|e| errors::db(ctx, e))?
                .iter()
                .map(|r| r.get(0))
                .collect();
            if !found.is_empty() {
                return Err(Error::refused(format!(
                    "the ALTER names {} of {} ({}); on the shadow copy indexes, primary/unique/exclusion keys and foreign keys \
                     carry other names until the swap, so shadowswap cannot run an ALTER that names them yet; \
                     run that clause directly with ALTER TABLE, or change the ALTER to name columns instead",
                    if found.len() == 1 { "an index or key" } else { "indexes or keys" },
                    names.table,
                    found.join(", ")
                )));
            }
        }
        let tx = c.transaction().await.map_err(|e| errors::db(ctx, e))?;
        tx.batch_execute("SET LOCAL lock_timeout = '2s'").await.map_err(|e| errors::db(ctx, e))?;
        // As the owner (see the `owner` module): the ALTER may evaluate the owner's functions.
        let owner = owner::enter(&tx, &names.table).await.map_err(|e| errors::db(ctx, e))?;
        owner::exec(
            &tx,
            owner,
            &format!("CREATE TABLE {} (LIKE {} INCLUDING ALL)", Qualified(&trial), Qualified(&names.table)),
            &[],
            None,
        )
        .await
        .map_err(|e| errors::db(ctx, e))?;
        let trial_q = Qualified(&trial).to_string();
        let before: Vec<String> = tx
            .query("SELECT conname::text FROM pg_constraint WHERE conrelid = $1::text::regclass", &[&trial_q])
            .await
            .map_err(|e| errors::db(ctx, e))?
            .iter()
            .map(|r| r.get(0))
            .collect();
        let altered =
            owner::exec(&tx, owner, &format!("ALTER TABLE {} {spec}", Qualified(&trial)), &[], Some(&self.user_search_path))
                .await;
        let altered = match altered {
            Ok(_) => owner::leave(&tx).await.map(|_| ()),
            Err(e) => Err(e),
        };
        let shape = match altered {
            Ok(()) => match Self::shape_on(&*tx, &trial_q).await {
                // Keys the ALTER adds without a name show (in the plan and the duplicate-key
                // refusal) under the name a plain ALTER on the table gives them, not the trial's.
                Ok(mut shape) => {
                    match cutover::final_constraint_names(&*tx, &trial_q, &trial.name, &names.table.name, &before, None).await {
                        Ok(renames) => {
                            for i in &mut shape.indexes {
                                if let Some((_, chosen)) = renames.iter().find(|(g, _)| *g == i.name) {
                                    i.name = chosen.clone();
                                }
                            }
                            Ok(shape)
                        }
                        Err(e) => Err(errors::db(ctx, e)),
                    }
                }
                Err(e) => Err(errors::db(ctx, e)),
            },
            Err(e) if e.as_db_error().is_some() => Err(Error::AlterRejected(errors::message(&e))),
            Err(e) => Err(errors::db(ctx, e)),
        };
        tx.rollback().await.map_err(|e| errors::db(ctx, e))?;
        shape
    }

    async fn metadata_only(&self, names: &Names, analysis: &AlterAnalysis) -> Result<Option<bool>> {
        let spec = analysis.spec.as_str();
        if !analysis.clauses.iter().all(|c| sql::metadata_only_clause(c)) {
            return Ok(Some(false));
        }
        // Ask the server: on a scratch copy, in a transaction that is rolled back, does the ALTER
        // give the table or any of its indexes a new relfilenode (a rewrite), or add an index?
        let trial = names.table.sibling(names.trial.clone());
        let q = Qualified(&trial).to_string();
        let ctx = "checking whether the ALTER is metadata-only";
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(|e| errors::db(ctx, e))?;
        tx.batch_execute("SET LOCAL lock_timeout = '2s'").await.map_err(|e| errors::db(ctx, e))?;
        let owner = owner::enter(&tx, &names.table).await.map_err(|e| errors::db(ctx, e))?;
        owner::exec(&tx, owner, &format!("CREATE TABLE {q} (LIKE {} INCLUDING ALL)", Qualified(&names.table)), &[], None)
            .await
            .map_err(|e| errors::db(ctx, e))?;
        let files = "SELECT c.oid::bigint, c.relfilenode::bigint FROM pg_class c                      WHERE c.oid = $1::text::regclass OR c.oid IN (SELECT indexrelid FROM pg_index WHERE indrelid = $1::text::regclass)                      ORDER BY 1";
        let read =
            |rows: Vec<tokio_postgres::Row>| rows.iter().map(|r| (r.get::<_, i64>(0), r.get::<_, i64>(1))).collect::<Vec<_>>();
        let before = read(tx.query(files, &[&q]).await.map_err(|e| errors::db(ctx, e))?);
        let altered = owner::exec(&tx, owner, &format!("ALTER TABLE {q} {spec}"), &[], Some(&self.user_search_path)).await;
        let after = match altered {
            Ok(_) => Some(read(tx.query(files, &[&q]).await.map_err(|e| errors::db(ctx, e))?)),
            Err(_) => None,
        };
        tx.rollback().await.map_err(|e| errors::db(ctx, e))?;
        Ok(Some(after.is_some_and(|after| after.iter().all(|f| before.contains(f)))))
    }

    async fn alter_in_place(&self, names: &Names, alter: &AlterAnalysis, lock_timeout: Duration) -> Result<()> {
        let spec = alter.spec.as_str();
        // As the owner: a rewrite evaluates the table's defaults, CHECKs and index expressions.
        let ctx = "altering the table in place";
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(|e| errors::db(ctx, e))?;
        tx.batch_execute(&format!("SET LOCAL lock_timeout = '{}ms'", millis(lock_timeout)))
            .await
            .map_err(|e| errors::db(ctx, e))?;
        let owner = owner::enter(&tx, &names.table).await.map_err(|e| errors::db(ctx, e))?;
        owner::exec(&tx, owner, &format!("ALTER TABLE {} {spec}", Qualified(&names.table)), &[], Some(&self.user_search_path))
            .await
            .map_err(|e| errors::db(ctx, e))?;
        owner::leave(&tx).await.map_err(|e| errors::db(ctx, e))?;
        tx.commit().await.map_err(|e| errors::db(ctx, e))
    }

    fn render_sql(&self, plan: &Plan) -> PlanSql {
        let n = &plan.names;
        let (where_, _) = (sql::range_where(&sql::key_names(plan).0, &plan.key.columns, true), ());
        PlanSql {
            shadow: vec![
                format!("CREATE TABLE {} (LIKE {} INCLUDING ALL)", Qualified(&n.shadow), Qualified(&n.table)),
                format!("ALTER TABLE {} {}", Qualified(&n.shadow), plan.analysis.spec),
            ],
            // The dry run has no shadow to read identity kinds from: GENERATED ALWAYS identity
            // columns still show in the SET lists here; the run leaves them out.
            // Nor key operators: the run compares keys with their unique index's equality
            // operator, schema-qualified (e.g. OPERATOR("public".=) for citext).
            capture: sql::capture(plan, &[], &[], 0).into_iter().flat_map(|(f, t, a)| [f, t, a]).collect(),
            copy: sql::copy_chunk(plan, &where_, &[]),
            cut_over: cutover::summary(plan),
        }
    }

    async fn find_duplicate(&self, table: &TableRef, columns: &[String]) -> Result<Option<String>> {
        let cols = sql::column_list("", columns.iter().map(String::as_str));
        let quoted = columns.iter().map(|c| format!("quote_nullable({}::text)", Ident(c))).collect::<Vec<_>>().join(", ");
        let not_null = columns.iter().map(|c| format!("{} IS NOT NULL", Ident(c))).collect::<Vec<_>>().join(" AND ");
        let q = format!(
            "SELECT format('(%s) occurs %s times', concat_ws(', ', {quoted}), count(*)) FROM {} WHERE {not_null} \
             GROUP BY {cols} HAVING count(*) > 1 LIMIT 1",
            Qualified(table)
        );
        let c = self.client().await?;
        let r = c.query_opt(&q, &[]).await.map_err(|e| errors::db("looking for duplicates of a new unique key", e))?;
        Ok(r.map(|r| r.get(0)))
    }

    async fn create_shadow(&self, plan: &Plan, lock_timeout: Duration) -> Result<()> {
        let n = &plan.names;
        let ctx = format!("creating {}", n.shadow);
        let mut c = self.client().await?;
        cutover::refuse_lost_column_dependents(&**c, plan).await?;
        deps::refuse_not_valid_conflicts(&**c, plan).await?;
        let tx = c.transaction().await.map_err(|e| errors::db(&ctx, e))?;
        tx.batch_execute(&format!("SET LOCAL lock_timeout = '{}ms'", millis(lock_timeout)))
            .await
            .map_err(|e| errors::db(&ctx, e))?;
        tx.batch_execute(&format!("DROP TABLE IF EXISTS {}", Qualified(&n.shadow))).await.map_err(|e| errors::db(&ctx, e))?;
        // The shadow is the owner's (so the owner's default privileges, not shadowswap's role's,
        // apply, and its expressions run as the owner), and so is the ALTER on it.
        let owner = owner::enter(&tx, &n.table).await.map_err(|e| errors::db(&ctx, e))?;
        owner::exec(
            &tx,
            owner,
            &format!("CREATE TABLE {} (LIKE {} INCLUDING ALL)", Qualified(&n.shadow), Qualified(&n.table)),
            &[],
            None,
        )
        .await
        .map_err(|e| errors::db(&ctx, e))?;
        deps::prepare_shadow(&tx, plan).await?;
        owner::exec(
            &tx,
            owner,
            &format!("ALTER TABLE {} {}", Qualified(&n.shadow), plan.analysis.spec),
            &[],
            Some(&self.user_search_path),
        )
        .await
        .map_err(|e| {
            if e.as_db_error().is_some() && errors::state(&e) != Some(&SqlState::LOCK_NOT_AVAILABLE) {
                Error::AlterRejected(errors::message(&e))
            } else {
                errors::db(&ctx, e)
            }
        })?;
        owner::leave(&tx).await.map_err(|e| errors::db(&ctx, e))?;
        cutover::copy_outgoing_foreign_keys(&tx, plan).await?;
        tx.commit().await.map_err(|e| errors::db(&ctx, e))
    }

    async fn install_capture(&self, plan: &Plan, lock_timeout: Duration) -> Result<()> {
        let ctx = "installing the capture triggers";
        let triggers = sql::capture_triggers(&plan.names);
        let mut stmts: Vec<String> = triggers.iter().flat_map(|t| sql::drop_capture(&plan.names.table, t)).collect();
        let mut c = self.client().await?;
        // Created by the owner: the SECURITY DEFINER capture functions then run as the owner (and
        // the shadow's expressions they evaluate with them), never as shadowswap's role. Creating
        // a function or a trigger evaluates none of the table's code.
        let owner = owner::owner_of(&**c, &plan.names.table).await.map_err(|e| errors::db(ctx, e))?;
        stmts.insert(0, sql::set_local_role(&owner));
        let always = Self::always_identity(&**c, &plan.names.shadow).await.map_err(|e| errors::db(ctx, e))?;
        let key_eq = Self::key_equality(&**c, plan).await?;
        stmts.extend(sql::capture(plan, &always, &key_eq, sql::quote_seed()).into_iter().flat_map(|(f, t, a)| [f, t, a]));
        // One transaction: the triggers exist (and fire in every session_replication_role) all
        // together or not at all. Each statement goes through the extended protocol, which
        // runs exactly one statement: nothing in a statement's text can start another.
        let tx = c.transaction().await.map_err(|e| errors::db(ctx, e))?;
        tx.batch_execute(&format!("SET LOCAL lock_timeout = '{}ms'", millis(lock_timeout)))
            .await
            .map_err(|e| errors::db(ctx, e))?;
        for s in &stmts {
            tx.execute(s.as_str(), &[]).await.map_err(|e| errors::db(ctx, e))?;
        }
        tx.commit().await.map_err(|e| errors::db(ctx, e))
    }

    async fn remove_capture(&self, names: &Names, lock_timeout: Duration) -> Result<()> {
        // The triggers live on the table, or on the old table after a swap; functions by name.
        let triggers = sql::capture_triggers(names);
        let mut stmts = Vec::new();
        for on in [&names.table, &names.old] {
            if self.table_exists(on).await? {
                stmts.extend(triggers.iter().flat_map(|t| sql::drop_capture(on, t)));
            }
        }
        stmts.extend(triggers.iter().map(|t| format!("DROP FUNCTION IF EXISTS {}()", sql::function_name(&names.table, t))));
        self.ddl("dropping the capture triggers", &stmts, lock_timeout).await
    }

    async fn capture_present(&self, names: &Names) -> Result<Vec<String>> {
        let c = self.client().await?;
        let triggers: Vec<String> = sql::capture_triggers(names).into();
        let rows = c
            .query(
                "SELECT p.proname::text FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace \
                 WHERE n.nspname = $1 AND p.proname = ANY($2) ORDER BY 1",
                &[&names.table.schema, &triggers],
            )
            .await
            .map_err(|e| errors::db("listing capture triggers", e))?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    async fn drop_table(&self, table: &TableRef, lock_timeout: Duration) -> Result<()> {
        self.ddl(&format!("dropping {table}"), &[format!("DROP TABLE IF EXISTS {}", Qualified(table))], lock_timeout).await
    }

    async fn key_range(&self, plan: &Plan) -> Result<Option<(PgKey, PgKey)>> {
        let low = self.key_query("reading the lowest key", sql::key_edge(plan, false), &[]).await?;
        let high = self.key_query("reading the high watermark", sql::key_edge(plan, true), &[]).await?;
        Ok(low.zip(high))
    }

    async fn chunk_end(&self, plan: &Plan, after: Option<&PgKey>, high: &PgKey, rows: u64) -> Result<PgKey> {
        let (where_, p) = Self::where_range(plan, false, after, high);
        let end = self.key_query("finding the chunk's end", sql::chunk_end(plan, &where_, rows), &p).await?;
        Ok(end.unwrap_or_else(|| high.clone()))
    }

    async fn copy_chunk(&self, plan: &Plan, after: Option<&PgKey>, upto: &PgKey, lock_wait: Duration) -> Result<u64> {
        let ctx = "copying a chunk";
        let (where_, p) = Self::where_range(plan, false, after, upto);
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(|e| errors::db(ctx, e))?;
        // One round trip: the lock timeout, then the table's lock (see `sql::lock_for_copy`).
        tx.batch_execute(&format!(
            "SET LOCAL lock_timeout = '{}ms'; {}",
            millis(lock_wait),
            sql::lock_for_copy(&plan.names.table)
        ))
        .await
        .map_err(|e| errors::db(ctx, e))?;
        let always = Self::always_identity(&*tx, &plan.names.shadow).await.map_err(|e| errors::db(ctx, e))?;
        // As the owner: the insert evaluates the shadow's CHECKs, defaults and index expressions.
        let owner = owner::enter(&tx, &plan.names.table).await.map_err(|e| errors::db(ctx, e))?;
        let rows = match owner::exec(&tx, owner, &sql::copy_chunk(plan, &where_, &always), &p, None).await {
            Ok(n) => n,
            Err(e) if errors::state(&e) == Some(&SqlState::UNIQUE_VIOLATION) => {
                let db = e.as_db_error();
                let raw = db.and_then(|d| d.constraint()).unwrap_or("?").to_string();
                drop(tx);
                return Err(Error::DuplicateKey {
                    key: self.final_key_name(plan, &raw).await,
                    table: plan.names.table.clone(),
                    value: db.and_then(|d| d.detail()).unwrap_or("").to_string(),
                });
            }
            Err(e)
                if errors::state(&e).is_some_and(|s| {
                    s.code().starts_with("22") || *s == SqlState::NOT_NULL_VIOLATION || *s == SqlState::CHECK_VIOLATION
                }) =>
            {
                return Err(Error::refused(format!(
                    "the altered table rejects a row of {}: {}; change the ALTER so the existing data fits",
                    plan.names.table,
                    errors::message(&e)
                )));
            }
            Err(e) => return Err(errors::db(ctx, e)),
        };
        // The commit ends acting as the owner (SET LOCAL).
        tx.commit().await.map_err(|e| errors::db(ctx, e))?;
        Ok(rows)
    }

    async fn checksum_chunk(
        &self,
        plan: &Plan,
        after: Option<&PgKey>,
        upto: Option<&PgKey>,
    ) -> Result<(ChunkChecksum, ChunkChecksum)> {
        let ctx = "checksumming a chunk";
        let cols = &plan.checksum_columns;
        let (orig_keys, shadow_keys) = sql::key_names(plan);
        let w_orig = sql::open_range_where(&orig_keys, &plan.key.columns, after.is_some(), upto.is_some());
        let w_shadow = sql::open_range_where(&shadow_keys, &plan.key.columns, after.is_some(), upto.is_some());
        let p: Vec<String> = after.iter().chain(upto.iter()).flat_map(|k| k.0.iter().cloned()).collect();
        let q_orig = sql::checksum(&plan.names.table, &cols.iter().map(|m| m.source.as_str()).collect::<Vec<_>>(), &w_orig);
        let q_shadow = sql::checksum(&plan.names.shadow, &cols.iter().map(|m| m.target.as_str()).collect::<Vec<_>>(), &w_shadow);
        let mut c = self.client().await?;
        let tx = c
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(|e| errors::db(ctx, e))?;
        let a = tx.query_one(&q_orig, &params(&p)).await.map_err(|e| errors::db(ctx, e))?;
        let b = tx.query_one(&q_shadow, &params(&p)).await.map_err(|e| errors::db(ctx, e))?;
        tx.commit().await.map_err(|e| errors::db(ctx, e))?;
        let sum = |r: &tokio_postgres::Row| ChunkChecksum { rows: r.get::<_, i64>(0) as u64, hash: r.get::<_, i64>(1) as u64 };
        Ok((sum(&a), sum(&b)))
    }

    async fn prepare_cut_over(&self, plan: &Plan) -> Result<()> {
        let c = self.client().await?;
        c.batch_execute(&format!("ANALYZE {}", Qualified(&plan.names.shadow)))
            .await
            .map_err(|e| errors::db("analyzing the shadow table", e))
    }

    async fn after_cut_over(&self, plan: &Plan) -> Result<()> {
        let c = self.client().await?;
        let refreshed = Self::refresh_subscriptions(&**c, plan).await;
        cutover::validate_foreign_keys(&**c, plan).await?;
        refreshed
    }

    async fn verify_before_cut_over(&self, plan: &Plan) -> Result<()> {
        let c = self.client().await?;
        cutover::verify_unchanged(&**c, plan).await
    }

    async fn cut_over(&self, plan: &Plan, lock_timeout: Duration) -> Result<()> {
        let mut c = self.client().await?;
        cutover::swap(&mut c, plan, lock_timeout).await
    }
}

/// The throttle's signals from this server (primary or replica).
#[async_trait]
impl Signals for Postgres {
    fn target(&self) -> String {
        self.dsn.to_string()
    }

    async fn heartbeat_create(&self, names: &Names) -> Result<()> {
        let c = self.client().await?;
        c.batch_execute(&format!(
            "CREATE TABLE IF NOT EXISTS {} (id int PRIMARY KEY, seq bigint NOT NULL)",
            Qualified(&names.heartbeat)
        ))
        .await
        .map_err(|e| errors::db("creating the heartbeat table", e))
    }

    async fn heartbeat_write(&self, names: &Names, seq: u64) -> Result<()> {
        let c = self.client().await?;
        c.execute(
            &format!(
                "INSERT INTO {} (id, seq) VALUES (1, $1) ON CONFLICT (id) DO UPDATE SET seq = EXCLUDED.seq",
                Qualified(&names.heartbeat)
            ),
            &[&(seq as i64)],
        )
        .await
        .map(|_| ())
        .map_err(|e| errors::db("writing the heartbeat", e))
    }

    async fn heartbeat_read(&self, names: &Names) -> Result<Option<u64>> {
        let c = self.client().await?;
        match c.query_opt(&format!("SELECT seq FROM {} WHERE id = 1", Qualified(&names.heartbeat)), &[]).await {
            Ok(row) => Ok(row.map(|r| r.get::<_, i64>(0) as u64)),
            // Not replayed on the standby yet.
            Err(e) if errors::state(&e) == Some(&SqlState::UNDEFINED_TABLE) => Ok(None),
            Err(e) => Err(errors::db("reading the heartbeat", e)),
        }
    }

    async fn status_value(&self, name: &str) -> Result<f64> {
        let q = match name.to_ascii_lowercase().as_str() {
            "active_backends" => "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND pid <> pg_backend_pid()",
            "total_backends" => "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'",
            _ => {
                return Err(Error::refused(format!(
                    "{name} is not a PostgreSQL load figure shadowswap knows; use active_backends or total_backends, or --throttle-query"
                )))
            }
        };
        let c = self.client().await?;
        let n: i64 = c.query_one(q, &[]).await.map_err(|e| errors::db("reading the load", e))?.get(0);
        Ok(n as f64)
    }

    async fn query_value(&self, sql: &str) -> Result<f64> {
        let c = self.client().await?;
        let msgs = c.simple_query(sql).await.map_err(|e| errors::db("running the throttle query", e))?;
        let first = msgs.iter().find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => Some(r.get(0).map(str::to_string)),
            _ => None,
        });
        Ok(match first.flatten().as_deref() {
            None => 0.0,
            Some("f") | Some("false") => 0.0,
            Some("t") | Some("true") => 1.0,
            Some(v) => v.trim().parse().unwrap_or(1.0),
        })
    }

    async fn cut_over_blockers(&self, names: &Names, older_than: Duration) -> Result<Vec<String>> {
        let c = self.client().await?;
        let rows = c
            .query(
                "SELECT DISTINCT format('pid %s (%s) in a transaction for %s s holding %s: %s', a.pid, a.usename,                         extract(epoch FROM now() - a.xact_start)::int, l.mode, left(coalesce(a.query, ''), 80))                  FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid                  WHERE l.relation = $1::text::regclass AND l.granted AND a.pid <> pg_backend_pid()                    AND a.xact_start < now() - make_interval(secs => $2)",
                &[&Qualified(&names.table).to_string(), &older_than.as_secs_f64()],
            )
            .await
            .map_err(|e| errors::db("looking for transactions that would block the cut-over", e))?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }
}
