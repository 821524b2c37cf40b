//! Test harness for PostgreSQL: a fresh database per test ([`PgTestDb`]) on the server
//! `scripts/postgres.sh` runs, and checks that nothing was left behind. Its DSN (pointing at the
//! maintenance database) comes from `SHADOWSWAP_PG_DSN`, default
//! `postgres://shadowswap:shadowswap@127.0.0.1:54329/shadowswap`.
//!
//! - [`standby`]  — the server's hot standby: lease, pause and resume replay, catch up.
//! - [`load`]     — sessions kept busy, for `--max-load` and `--critical-load`.
//! - [`workload`] — concurrent writers (autocommit and multi-statement transactions in all three
//!   isolation levels) that keep an exact model of what they wrote.
//! - [`pgbench`]  — pgbench for the demo and the tests.
//! - [`resume`]   — kill a run at a log event or checkpoint, run the same command again.

pub mod load;
pub mod pgbench;
pub mod resume;
pub mod standby;
pub mod workload;

use std::sync::Arc;
use std::time::{Duration, Instant};

use shadowswap_engine::TableRef;
use shadowswap_postgres::Postgres;
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, NoTls};

use crate::db::TestDatabase;

/// Rows as text, NULL as `None` ([`PgTestDb::text_rows`]).
pub type Rows = Vec<Vec<Option<String>>>;

/// Per table, by name: its columns, indexes, constraints, triggers, `pg_class` facts
/// (relfilenode: no rewrite; ACL; comment) and every row ([`PgTestDb::snapshot`]).
pub type Snapshot = Vec<(String, Rows)>;

/// DSN of the test server (its maintenance database).
pub fn server_dsn() -> String {
    std::env::var("SHADOWSWAP_PG_DSN")
        .unwrap_or_else(|_| "postgres://shadowswap:shadowswap@127.0.0.1:54329/shadowswap".to_string())
}

/// `dsn` with its database replaced by `db`.
pub fn with_db(dsn: &str, db: &str) -> String {
    format!("{}/{db}", dsn.rsplit_once('/').expect("DSN with a database").0)
}

/// A plain client for `dsn`; its connection task ends when the client is dropped.
pub async fn client(dsn: &str) -> Client {
    let (client, conn) = tokio_postgres::connect(dsn, NoTls)
        .await
        .unwrap_or_else(|e| panic!("cannot reach the PostgreSQL test server ({e}); start it with scripts/postgres.sh start"));
    tokio::spawn(async move {
        let _ = conn.await;
    });
    client
}

/// A database of its own for one test, dropped and created fresh.
pub struct PgTestDb {
    /// Database name.
    pub name: String,
    /// DSN of this database.
    pub dsn: String,
    /// A client for the test's own statements.
    pub client: Client,
}

impl PgTestDb {
    /// Create (or re-create) database `ssw_<name>`. `CREATE DATABASE` copies `template1` and
    /// fails while another session is connected to it (55006, e.g. another test creating its
    /// database at the same moment): retried for up to 30 s.
    pub async fn new(name: &str) -> PgTestDb {
        let name = format!("ssw_{name}");
        let base = server_dsn();
        let admin = client(&base).await;
        admin.batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)")).await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match admin.batch_execute(&format!("CREATE DATABASE \"{name}\"")).await {
                Ok(()) => break,
                Err(e) if e.code() == Some(&SqlState::OBJECT_IN_USE) && Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("CREATE DATABASE {name}: {e}"),
            }
        }
        let dsn = with_db(&base, &name);
        let client = client(&dsn).await;
        PgTestDb { name, dsn, client }
    }

    /// Run statements (a batch; `;` separated, dollar quotes allowed).
    pub async fn exec(&self, sql: &str) {
        self.client.batch_execute(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    /// Every row of `query` as text (NULL as None), for exact comparisons.
    pub async fn text_rows(&self, query: &str) -> Rows {
        let rows = self.client.simple_query(query).await.unwrap_or_else(|e| panic!("{query}: {e}"));
        rows.into_iter()
            .filter_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(r) => Some((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect()),
                _ => None,
            })
            .collect()
    }

    /// The one value of `query`, which must return exactly one row (NULL as `None`).
    pub async fn scalar(&self, query: &str) -> Option<String> {
        let rows = self.text_rows(query).await;
        assert_eq!(rows.len(), 1, "{query}: one row expected, got {rows:?}");
        rows[0][0].clone()
    }

    /// The count `query` returns (one row, one non-NULL integer).
    pub async fn count(&self, query: &str) -> i64 {
        self.scalar(query).await.expect("a count").parse().unwrap()
    }

    /// This database's DSN, logging in as `role` with `password`.
    pub fn dsn_as(&self, role: &str, password: &str) -> String {
        let rest = self.dsn.split_once('@').expect("DSN with a user").1;
        format!("postgres://{role}:{password}@{rest}")
    }

    /// All rows of `table` (in `public`) ordered by `order_by`, as text.
    pub async fn rows(&self, table: &str, order_by: &str) -> Rows {
        self.text_rows(&format!("SELECT * FROM {table} ORDER BY {order_by}")).await
    }

    /// Columns of `table`: name, type, NOT NULL, default; to compare definitions of tables with
    /// different names.
    pub async fn definition(&self, table: &str) -> Rows {
        self.text_rows(&format!(
            "SELECT attname, format_type(atttypid, atttypmod), attnotnull::text, pg_get_expr(d.adbin, d.adrelid) \
             FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum \
             WHERE attrelid = '{table}'::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum"
        ))
        .await
    }

    /// Definition and every row of `tables` (in `public`), to compare before and after a run that
    /// must change nothing: columns, indexes, constraints, triggers, the relation's kind,
    /// persistence, relfilenode (no rewrite), ACL and comment, and the rows.
    pub async fn snapshot(&self, tables: &[&str]) -> Snapshot {
        let mut out = Vec::new();
        for t in tables {
            let mut parts = Vec::new();
            for q in [
                format!(
                    "SELECT column_name, data_type, udt_name, is_nullable, column_default, character_maximum_length::text, \
                            is_identity, is_generated, generation_expression \
                     FROM information_schema.columns WHERE table_schema = 'public' AND table_name = '{t}' ORDER BY ordinal_position"
                ),
                format!("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' AND tablename = '{t}' ORDER BY 1"),
                format!(
                    "SELECT conname, pg_get_constraintdef(oid), convalidated::text FROM pg_constraint \
                     WHERE conrelid = 'public.{t}'::regclass ORDER BY 1"
                ),
                format!(
                    "SELECT tgname, pg_get_triggerdef(oid), tgenabled::text FROM pg_trigger \
                     WHERE tgrelid = 'public.{t}'::regclass AND NOT tgisinternal ORDER BY 1"
                ),
                format!(
                    "SELECT relkind::text, relpersistence::text, relfilenode::text, coalesce(array_to_string(relacl, ','), ''), \
                            coalesce(obj_description(oid, 'pg_class'), '') FROM pg_class WHERE oid = 'public.{t}'::regclass"
                ),
                format!("SELECT x::text FROM public.{t} x ORDER BY 1"),
            ] {
                parts.extend(self.text_rows(&q).await);
            }
            out.push((t.to_string(), parts));
        }
        out
    }

    /// Relations of kind table in `public`, sorted.
    pub async fn tables(&self) -> Vec<String> {
        let rows = self
            .client
            .query("SELECT relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND relkind IN ('r', 'p') ORDER BY 1", &[])
            .await
            .unwrap();
        rows.iter().map(|r| r.get(0)).collect()
    }

    /// Functions and triggers shadowswap would leave behind (`_…_ssw_…`).
    pub async fn capture_leftovers(&self) -> Vec<String> {
        let rows = self
            .client
            .query(
                "SELECT proname::text FROM pg_proc WHERE proname LIKE '\\_%\\_ssw\\_%' \
                 UNION ALL SELECT tgname::text FROM pg_trigger WHERE tgname LIKE '\\_%\\_ssw\\_%' ORDER BY 1",
                &[],
            )
            .await
            .unwrap();
        rows.iter().map(|r| r.get(0)).collect()
    }

    /// Panics unless `public` holds exactly `tables` and no capture function or trigger remains.
    pub async fn assert_clean(&self, tables: &[&str]) {
        assert_eq!(self.tables().await, tables, "tables left in {}", self.name);
        assert!(
            self.capture_leftovers().await.is_empty(),
            "capture objects left in {}: {:?}",
            self.name,
            self.capture_leftovers().await
        );
    }

    /// [`PgTestDb::assert_clean`] with `tables` in any order (the server sorts names by the
    /// database's collation).
    pub async fn assert_clean_any_order(&self, tables: &[&str]) {
        let mut want: Vec<String> = tables.iter().map(|t| t.to_string()).collect();
        want.sort();
        let mut got = self.tables().await;
        got.sort();
        assert_eq!(got, want, "tables left in {}", self.name);
        assert!(self.capture_leftovers().await.is_empty(), "capture objects left: {:?}", self.capture_leftovers().await);
    }

    /// The dialect, connected to this database.
    pub async fn dialect(&self) -> Arc<Postgres> {
        Arc::new(Postgres::connect(&self.dsn, None).await.unwrap())
    }

    /// A [`TableRef`] in `public`.
    pub fn table(&self, name: &str) -> TableRef {
        TableRef::new("public", name)
    }
}

impl TestDatabase for PgTestDb {
    type Dialect = Postgres;
    type Row = Vec<Option<String>>;
    type Definition = Rows;
    type Snapshot = Snapshot;

    async fn new(name: &str) -> PgTestDb {
        PgTestDb::new(name).await
    }

    fn dsn(&self) -> &str {
        &self.dsn
    }

    fn table(&self, name: &str) -> TableRef {
        PgTestDb::table(self, name)
    }

    async fn dialect(&self) -> Arc<Postgres> {
        PgTestDb::dialect(self).await
    }

    async fn exec(&self, sql: &str) {
        PgTestDb::exec(self, sql).await
    }

    async fn tables(&self) -> Vec<String> {
        PgTestDb::tables(self).await
    }

    async fn rows(&self, table: &str, order_by: &str) -> Rows {
        PgTestDb::rows(self, table, order_by).await
    }

    async fn definition(&self, table: &str) -> Rows {
        PgTestDb::definition(self, table).await
    }

    async fn snapshot(&self, tables: &[&str]) -> Snapshot {
        PgTestDb::snapshot(self, tables).await
    }

    async fn assert_nothing_left(&self, tables: &[&str]) {
        self.assert_clean_any_order(tables).await
    }
}
