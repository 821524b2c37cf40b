//! Test harness for MariaDB: a fresh database per test ([`TestDb`]) on the server
//! `scripts/mariadb.sh start` runs, snapshots, and checks that nothing was left behind. Its DSN
//! (without database) comes from `SHADOWSWAP_MYSQL_DSN`, default
//! `mysql://shadowswap:shadowswap@127.0.0.1:33306`.
//!
//! - [`replica`]  — the server's replica: lease, pause and resume apply, catch up.
//! - [`load`]     — sessions kept busy, for `--max-load` and `--critical-load`.
//! - [`workload`] — concurrent writers that keep an exact model of what they wrote.

pub mod load;
pub mod replica;
pub mod workload;

use std::sync::Arc;
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Pool, Row, Value};
use shadowswap_engine::TableRef;
use shadowswap_mysql::MySql;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::cli::Spawned;
use crate::db::TestDatabase;

/// DSN of the test server, without a database.
pub fn server_dsn() -> String {
    std::env::var("SHADOWSWAP_MYSQL_DSN").unwrap_or_else(|_| "mysql://shadowswap:shadowswap@127.0.0.1:33306".to_string())
}

/// Definition (`SHOW CREATE TABLE`) and every row (sorted) of some tables, by name
/// ([`TestDb::snapshot`]).
pub type Snapshot = Vec<(String, String, Vec<String>)>;

/// The seeded columns of rows of `t` ([`TestDb::seed_t`]): `(id, a, u, pad)`.
pub type Seeded = Vec<(i64, String, i64, String)>;

/// A database of its own for one test, dropped and created fresh.
pub struct TestDb {
    /// Database name.
    pub name: String,
    /// DSN including the database.
    pub dsn: String,
    /// A pool for the test's own queries (server defaults, not shadowswap's session setup).
    pub pool: Pool,
}

impl TestDb {
    /// Create (or re-create) database `ssw_<name>`. Panics with a hint when the server is down.
    pub async fn new(name: &str) -> TestDb {
        let name = format!("ssw_{name}");
        let base = server_dsn();
        let admin = Pool::new(base.as_str());
        let mut c = admin
            .get_conn()
            .await
            .unwrap_or_else(|e| panic!("cannot reach the test server at {base}: {e}; start it with scripts/mariadb.sh start"));
        c.query_drop(format!("DROP DATABASE IF EXISTS `{name}`")).await.unwrap();
        c.query_drop(format!("CREATE DATABASE `{name}`")).await.unwrap();
        drop(c);
        admin.disconnect().await.unwrap();
        let dsn = format!("{}/{name}", base.trim_end_matches('/'));
        let pool = Pool::new(dsn.as_str());
        TestDb { name, dsn, pool }
    }

    /// The existing database `ssw_<name>` on a fresh pool (after a server restart).
    pub async fn reconnect(name: &str) -> TestDb {
        let name = format!("ssw_{name}");
        let dsn = format!("{}/{name}", server_dsn().trim_end_matches('/'));
        let pool = Pool::new(dsn.as_str());
        TestDb { name, dsn, pool }
    }

    /// Run statements separated by `;` (no `;` inside literals, please).
    pub async fn exec(&self, sql: &str) {
        let mut c = self.pool.get_conn().await.unwrap();
        for stmt in sql.split(';').map(str::trim).filter(|s| !s.is_empty()) {
            c.query_drop(stmt).await.unwrap_or_else(|e| panic!("{stmt}: {e}"));
        }
    }

    /// All rows of `table` ordered by `order_by`, as raw values (binary protocol).
    pub async fn rows(&self, table: &str, order_by: &str) -> Vec<Vec<Value>> {
        let mut c = self.pool.get_conn().await.unwrap();
        let rows: Vec<Row> = c.exec(format!("SELECT * FROM `{table}` ORDER BY {order_by}"), ()).await.unwrap();
        rows.into_iter().map(Row::unwrap).collect()
    }

    /// One scalar.
    pub async fn scalar<T: mysql_async::prelude::FromValue + Send + 'static>(&self, sql: &str) -> T {
        let mut c = self.pool.get_conn().await.unwrap();
        c.query_first(sql).await.unwrap().unwrap_or_else(|| panic!("no row: {sql}"))
    }

    /// `SHOW CREATE TABLE`.
    pub async fn create_table(&self, table: &str) -> String {
        let mut c = self.pool.get_conn().await.unwrap();
        let r: Option<(String, String)> = c.query_first(format!("SHOW CREATE TABLE `{table}`")).await.unwrap();
        r.unwrap().1
    }

    /// Tables in this database, sorted.
    pub async fn tables(&self) -> Vec<String> {
        let mut c = self.pool.get_conn().await.unwrap();
        c.exec("SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? ORDER BY TABLE_NAME", (&self.name,))
            .await
            .unwrap()
    }

    /// Triggers in this database, sorted.
    pub async fn triggers(&self) -> Vec<String> {
        let mut c = self.pool.get_conn().await.unwrap();
        c.exec(
            "SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ? ORDER BY TRIGGER_NAME",
            (&self.name,),
        )
        .await
        .unwrap()
    }

    /// Rows in `table`; `None` when it does not exist.
    pub async fn count(&self, table: &str) -> Option<u64> {
        let mut c = self.pool.get_conn().await.unwrap();
        c.query_first(format!("SELECT COUNT(*) FROM `{table}`")).await.ok().flatten()
    }

    /// The table the CLI tests migrate, `t`, with `rows` rows: `id` = `u` = 1..=rows, `a` =
    /// `"a<id>"`, `pad` 40 × "x".
    pub async fn seed_t(&self, rows: u32) {
        self.exec(&format!(
            "CREATE TABLE t (id INT NOT NULL PRIMARY KEY, a VARCHAR(20) NOT NULL, u INT NOT NULL, pad VARCHAR(64) NOT NULL) \
             ENGINE=InnoDB DEFAULT CHARSET=utf8mb4; \
             INSERT INTO t SELECT seq, CONCAT('a', seq), seq, REPEAT('x', 40) FROM seq_1_to_{rows}"
        ))
        .await;
    }

    /// The seeded columns ([`TestDb::seed_t`]) of `table` (`t`, or its shadow or old copy),
    /// ordered by id; columns an ALTER added are left out.
    pub async fn seeded(&self, table: &str) -> Seeded {
        let mut c = self.pool.get_conn().await.unwrap();
        c.query(format!("SELECT id, a, u, pad FROM `{table}` ORDER BY id")).await.unwrap()
    }

    /// Wait (60 s at most) until the shadow table of `t` holds at least `rows` rows: the backfill
    /// `cli` runs is under way. Panics (with its stderr) if it exits first.
    pub async fn wait_for_shadow_rows(&self, cli: &mut Spawned, rows: u64) {
        let copied = move || async move { self.count("_t_new").await.is_some_and(|n| n >= rows) };
        cli.wait_until(Duration::from_secs(60), &format!("the backfill did not get to {rows} rows"), copied).await;
    }

    /// Another session running `sql` every `every` until `stop`; returns how long each run took.
    pub fn probe(&self, sql: &'static str, every: Duration, stop: CancellationToken) -> JoinHandle<Vec<Duration>> {
        let pool = self.pool.clone();
        tokio::spawn(async move {
            let mut c = pool.get_conn().await.unwrap();
            let mut latencies = Vec::new();
            while !stop.is_cancelled() {
                let t0 = Instant::now();
                c.query_drop(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
                latencies.push(t0.elapsed());
                tokio::time::sleep(every).await;
            }
            latencies
        })
    }

    /// A session of its own with an open transaction that has run `stmt`; returns it and its
    /// connection id.
    pub async fn open_transaction(&self, stmt: &str) -> (Conn, u64) {
        let mut c = Conn::new(mysql_async::Opts::from_url(&self.dsn).unwrap()).await.unwrap();
        c.query_drop("START TRANSACTION").await.unwrap();
        c.query_drop(stmt).await.unwrap();
        let id: u64 = c.query_first("SELECT CONNECTION_ID()").await.unwrap().unwrap();
        (c, id)
    }

    /// `SHOW CREATE TABLE` of `table` with the table's name taken out, to compare definitions
    /// of tables with different names.
    pub async fn definition(&self, table: &str) -> String {
        self.create_table(table).await.replacen(&format!("CREATE TABLE `{table}`"), "CREATE TABLE", 1)
    }

    /// Definition and every row of `tables`, to compare before and after a run that must change
    /// nothing.
    pub async fn snapshot(&self, tables: &[&str]) -> Snapshot {
        let mut out = Vec::new();
        for t in tables {
            let mut rows: Vec<String> = self.rows(t, "1").await.iter().map(|r| format!("{r:?}")).collect();
            rows.sort();
            out.push((t.to_string(), self.create_table(t).await, rows));
        }
        out
    }

    /// Panics unless the database holds exactly `tables` and no trigger: nothing left behind.
    pub async fn assert_clean(&self, tables: &[&str]) {
        assert_eq!(self.tables().await, tables, "tables left in {}", self.name);
        assert!(self.triggers().await.is_empty(), "triggers left in {}: {:?}", self.name, self.triggers().await);
    }

    /// The dialect, connected to this database.
    pub async fn dialect(&self) -> Arc<MySql> {
        Arc::new(MySql::connect(&self.dsn, None).await.unwrap())
    }

    /// A [`TableRef`] in this database.
    pub fn table(&self, name: &str) -> TableRef {
        TableRef::new(self.name.clone(), name)
    }
}

impl TestDatabase for TestDb {
    type Dialect = MySql;
    type Row = Vec<Value>;
    type Definition = String;
    type Snapshot = Snapshot;

    async fn new(name: &str) -> TestDb {
        TestDb::new(name).await
    }

    fn dsn(&self) -> &str {
        &self.dsn
    }

    fn table(&self, name: &str) -> TableRef {
        TestDb::table(self, name)
    }

    async fn dialect(&self) -> Arc<MySql> {
        TestDb::dialect(self).await
    }

    async fn exec(&self, sql: &str) {
        TestDb::exec(self, sql).await
    }

    async fn tables(&self) -> Vec<String> {
        TestDb::tables(self).await
    }

    async fn rows(&self, table: &str, order_by: &str) -> Vec<Vec<Value>> {
        TestDb::rows(self, table, order_by).await
    }

    async fn definition(&self, table: &str) -> String {
        TestDb::definition(self, table).await
    }

    async fn snapshot(&self, tables: &[&str]) -> Snapshot {
        TestDb::snapshot(self, tables).await
    }

    /// [`TestDb::assert_clean`] with the tables in the server's order (information_schema sorts
    /// case-insensitively, so `_t_new` comes after `t`).
    async fn assert_nothing_left(&self, tables: &[&str]) {
        let mut sorted = tables.to_vec();
        sorted.sort_by_key(|t| t.to_ascii_uppercase());
        self.assert_clean(&sorted).await;
    }
}
