//! Test harness for shadowswap against real servers, and the demo's workload.
//!
//! Module map:
//! - this file    — [`TestDb`] (a fresh database per test), the `shadowswap` binary, snapshots,
//!   and checks that nothing was left behind.
//! - [`workload`] — concurrent writers that keep an exact model of what they wrote.
//! - [`pg`]       — the same harness for PostgreSQL ([`pg::PgTestDb`]).
//! - [`replica`]   — the test server's replica (`scripts/mariadb.sh start replica`): lease, pause
//!   and resume apply, catch up; a TCP proxy that makes a server unreachable mid-test.
//! - [`pg_workload`] — concurrent PostgreSQL writers (autocommit and multi-statement
//!   transactions in all three isolation levels) that keep an exact model of what they wrote.
//!
//! The server is the one `scripts/mariadb.sh start` runs; its DSN (without database) comes from
//! `SHADOWSWAP_MYSQL_DSN`, default `mysql://shadowswap:shadowswap@127.0.0.1:33306`.

pub mod pg;
pub mod pg_workload;
pub mod replica;
pub mod workload;

use std::path::PathBuf;
use std::process::Output;
use std::sync::Arc;

use mysql_async::prelude::Queryable;
use mysql_async::{Pool, Row, Value};
use shadowswap_engine::{MigrationConfig, TableRef};
use shadowswap_mysql::MySql;

/// DSN of the test server, without a database.
pub fn server_dsn() -> String {
    std::env::var("SHADOWSWAP_MYSQL_DSN").unwrap_or_else(|_| "mysql://shadowswap:shadowswap@127.0.0.1:33306".to_string())
}

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

/// A config for tests: executing, with short waits so tests do not sleep long.
pub fn fast_config() -> MigrationConfig {
    use std::time::Duration;
    let mut c = MigrationConfig { execute: true, ..MigrationConfig::default() };
    c.cut_over.backoff_min = Duration::from_millis(50);
    c.cut_over.backoff_max = Duration::from_millis(500);
    c.cut_over.poll_interval = Duration::from_millis(50);
    c.ddl.backoff_min = Duration::from_millis(50);
    c.ddl.backoff_max = Duration::from_millis(500);
    c.copy.progress_interval = Duration::from_millis(100);
    c
}

/// Path of the `shadowswap` binary built beside the test binary (`cargo build` builds it;
/// `scripts/test.sh` does so before running tests).
pub fn shadowswap_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe.parent().and_then(|p| p.parent()).expect("target/<profile>");
    let bin = dir.join("shadowswap");
    assert!(bin.exists(), "{} not found: run `cargo build -p shadowswap-cli` first (scripts/test.sh does)", bin.display());
    bin
}

/// Run the `shadowswap` binary with `args` and extra environment, to completion.
pub async fn run_cli(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = tokio::process::Command::new(shadowswap_bin());
    cmd.args(args).env_remove("MYSQL_PWD").env("RUST_LOG", "info");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().await.expect("run shadowswap")
}

/// stderr as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// stdout as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The last non-empty line of stderr: the one-line reason of a failed run.
pub fn last_error_line(o: &Output) -> String {
    stderr(o).lines().rev().find(|l| !l.trim().is_empty()).unwrap_or_default().to_string()
}
