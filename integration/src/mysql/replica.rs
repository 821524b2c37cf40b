//! The test server's replica (`scripts/mariadb.sh start replica`): read-only, replicating from the
//! primary with GTID. Its DSN (without database) comes from `SHADOWSWAP_MYSQL_REPLICA_DSN`,
//! default `mysql://shadowswap:shadowswap@127.0.0.1:33307`.
//!
//! One replica serves every test, and pausing its SQL thread affects whoever else
//! measures lag on it, so a test that uses it holds a [`ReplicaLease`] (an advisory lock on the
//! primary, released when the test's session closes, whatever way the test ends).
//!
//! To make the replica unreachable in the middle of a run, route the run through a
//! [`crate::proxy::Proxy`].

use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Pool, Row};

use super::TestDb;

/// DSN of the replica, without a database.
pub fn replica_dsn() -> String {
    std::env::var("SHADOWSWAP_MYSQL_REPLICA_DSN").unwrap_or_else(|_| "mysql://shadowswap:shadowswap@127.0.0.1:33307".to_string())
}

/// The replica, for a test's own queries.
pub struct Replica {
    /// DSN without database.
    pub dsn: String,
    /// Connections to the replica (server defaults).
    pub pool: Pool,
}

/// Exclusive use of the replica by one test, until dropped.
pub struct ReplicaLease {
    _conn: Conn,
}

/// Replication paused (`STOP SLAVE SQL_THREAD`) until [`ApplyPaused::resume`] or drop.
pub struct ApplyPaused {
    dsn: Option<String>,
}

impl Replica {
    /// Connect, panicking with a hint when the replica is not running.
    pub async fn connect() -> Replica {
        let dsn = replica_dsn();
        let pool = Pool::new(dsn.as_str());
        let mut c = pool.get_conn().await.unwrap_or_else(|e| {
            panic!("cannot reach the test replica at {dsn}: {e}; start it with scripts/mariadb.sh start replica")
        });
        let _: Option<u8> = c.query_first("SELECT 1").await.unwrap();
        drop(c);
        Replica { dsn, pool }
    }

    /// Wait (up to 10 min) until no other test holds the replica, then hold it. Also makes sure
    /// replication is applying (a test that died while apply was paused leaves it stopped).
    pub async fn lease(&self, primary: &TestDb) -> ReplicaLease {
        // A session of its own (not pooled): the lock lives exactly as long as it.
        let mut conn = Conn::new(mysql_async::Opts::from_url(&primary.dsn).unwrap()).await.unwrap();
        let got: Option<Option<i64>> = conn.query_first("SELECT GET_LOCK('shadowswap_tests:replica', 600)").await.unwrap();
        assert_eq!(got.flatten(), Some(1), "could not get the replica's test lock");
        self.ensure_applying().await;
        ReplicaLease { _conn: conn }
    }

    /// The DSN of `db` on the replica.
    pub fn dsn_for(&self, db: &TestDb) -> String {
        format!("{}/{}", self.dsn.trim_end_matches('/'), db.name)
    }

    /// One field of `SHOW SLAVE STATUS` (`None`: no such field, or replication not configured).
    pub async fn status_field(&self, name: &str) -> Option<String> {
        let mut c = self.pool.get_conn().await.unwrap();
        let row: Option<Row> = c.query_first("SHOW SLAVE STATUS").await.unwrap();
        let row = row?;
        let idx = row.columns_ref().iter().position(|c| c.name_str() == name)?;
        row.get_opt::<Option<String>, _>(idx).and_then(|v| v.ok()).flatten()
    }

    /// `START SLAVE` when a thread is stopped; panics when replication is broken (an error a
    /// restart does not fix, e.g. the primary was reset: `scripts/mariadb.sh reset replica`).
    pub async fn ensure_applying(&self) {
        let running = |v: Option<String>| v.as_deref() == Some("Yes");
        let io = self.status_field("Slave_IO_Running").await;
        let sql = self.status_field("Slave_SQL_Running").await;
        if running(io.clone()) && running(sql.clone()) {
            return;
        }
        assert!(io.is_some(), "the replica at {} is not replicating (scripts/mariadb.sh reset replica)", self.dsn);
        let mut c = self.pool.get_conn().await.unwrap();
        c.query_drop("START SLAVE").await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(15);
        while !(running(self.status_field("Slave_IO_Running").await) && running(self.status_field("Slave_SQL_Running").await)) {
            assert!(
                Instant::now() < deadline,
                "replication does not run on {}: IO error {:?}, SQL error {:?}; scripts/mariadb.sh status replica",
                self.dsn,
                self.status_field("Last_IO_Error").await,
                self.status_field("Last_SQL_Error").await,
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Wait until the replica has applied everything the primary had committed when this was
    /// called (`MASTER_GTID_WAIT`), at most `within`; returns how long that took.
    pub async fn catch_up(&self, primary: &TestDb, within: Duration) -> Duration {
        let t0 = Instant::now();
        let pos: String = primary.scalar("SELECT @@GLOBAL.gtid_binlog_pos").await;
        let mut c = self.pool.get_conn().await.unwrap();
        let r: Option<i64> = c.exec_first("SELECT MASTER_GTID_WAIT(?, ?)", (&pos, within.as_secs_f64())).await.unwrap();
        assert_eq!(
            r,
            Some(0),
            "the replica did not reach the primary's position {pos} within {within:?} (SQL thread: {:?}, last error {:?})",
            self.status_field("Slave_SQL_Running").await,
            self.status_field("Last_SQL_Error").await
        );
        t0.elapsed()
    }

    /// Stop applying (the IO thread keeps receiving). Resumes on drop of the guard.
    pub async fn pause_apply(&self) -> ApplyPaused {
        let mut c = self.pool.get_conn().await.unwrap();
        c.query_drop("STOP SLAVE SQL_THREAD").await.unwrap();
        ApplyPaused { dsn: Some(self.dsn.clone()) }
    }

    /// Tables of `db` on the replica, sorted.
    pub async fn tables(&self, db: &str) -> Vec<String> {
        let mut c = self.pool.get_conn().await.unwrap();
        c.exec("SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? ORDER BY TABLE_NAME", (db,))
            .await
            .unwrap()
    }

    /// `SHOW CREATE TABLE db.table` on the replica.
    pub async fn create_table(&self, db: &str, table: &str) -> String {
        let mut c = self.pool.get_conn().await.unwrap();
        let r: Option<(String, String)> = c.query_first(format!("SHOW CREATE TABLE `{db}`.`{table}`")).await.unwrap();
        r.unwrap().1
    }

    /// All rows of `db.table` on the replica, ordered by `order_by`.
    pub async fn rows(&self, db: &str, table: &str, order_by: &str) -> Vec<Vec<mysql_async::Value>> {
        let mut c = self.pool.get_conn().await.unwrap();
        let rows: Vec<Row> = c.exec(format!("SELECT * FROM `{db}`.`{table}` ORDER BY {order_by}"), ()).await.unwrap();
        rows.into_iter().map(Row::unwrap).collect()
    }
}

impl ApplyPaused {
    /// `START SLAVE SQL_THREAD`.
    pub async fn resume(mut self) {
        let dsn = self.dsn.take().expect("not resumed yet");
        let pool = Pool::new(dsn.as_str());
        let mut c = pool.get_conn().await.unwrap();
        c.query_drop("START SLAVE SQL_THREAD").await.unwrap();
        drop(c);
        pool.disconnect().await.unwrap();
    }
}

impl Drop for ApplyPaused {
    fn drop(&mut self) {
        // A failing test must not leave the shared replica paused. Drop cannot await, so use a
        // runtime of its own on a thread of its own.
        if let Some(dsn) = self.dsn.take() {
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
                rt.block_on(async {
                    let pool = Pool::new(dsn.as_str());
                    if let Ok(mut c) = pool.get_conn().await {
                        let _ = c.query_drop("START SLAVE SQL_THREAD").await;
                    }
                    let _ = pool.disconnect().await;
                });
            })
            .join();
        }
    }
}
