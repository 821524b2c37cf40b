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

pub mod load;
pub mod pgbench;
pub mod standby;
pub mod workload;

use std::sync::Arc;
use std::time::{Duration, Instant};

use shadowswap_engine::TableRef;
use shadowswap_postgres::Postgres;
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, NoTls};

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
    pub async fn text_rows(&self, query: &str) -> Vec<Vec<Option<String>>> {
        let rows = self.client.simple_query(query).await.unwrap_or_else(|e| panic!("{query}: {e}"));
        rows.into_iter()
            .filter_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(r) => Some((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect()),
                _ => None,
            })
            .collect()
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
