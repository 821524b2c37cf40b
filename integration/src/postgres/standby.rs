//! The test server's hot standby (`scripts/postgres.sh start replica`), streaming from the
//! primary. Its DSN (maintenance database) comes from `SHADOWSWAP_PG_REPLICA_DSN`, default
//! `postgres://shadowswap:shadowswap@127.0.0.1:54330/shadowswap`.
//!
//! One standby serves every test, and pausing its replay throttles any other run measuring lag
//! on it: a test that pauses it holds a [`StandbyLease`] exclusively, the other tests that use the
//! standby hold it shared. Replay paused by [`ReplayPaused`] resumes on every path.

use std::time::{Duration, Instant};

use tokio_postgres::{Client, NoTls};

use super::{client, with_db, PgTestDb};

/// DSN of the standby (its maintenance database).
pub fn server_dsn() -> String {
    std::env::var("SHADOWSWAP_PG_REPLICA_DSN")
        .unwrap_or_else(|_| "postgres://shadowswap:shadowswap@127.0.0.1:54330/shadowswap".to_string())
}

/// The standby's DSN for the test database `db`.
pub fn dsn_for(db: &PgTestDb) -> String {
    with_db(&server_dsn(), &db.name)
}

/// A client for `db` on the standby, once the standby has replayed its creation (90 s at most).
pub async fn client_for(db: &PgTestDb) -> Client {
    let dsn = dsn_for(db);
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        match tokio_postgres::connect(&dsn, NoTls).await {
            Ok((c, conn)) => {
                tokio::spawn(async move {
                    let _ = conn.await;
                });
                return c;
            }
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => {
                panic!("cannot reach database {} on the standby ({e}); start it with scripts/postgres.sh start replica", db.name)
            }
        }
    }
}

/// A hold on the standby for one test: a test that pauses its replay (which would throttle any
/// other run measuring lag on it) holds it exclusively and the other tests that use the standby
/// hold it shared (a session-level advisory lock on the primary, released when the session
/// closes, however the test ends).
pub struct StandbyLease {
    _session: Client,
}

impl StandbyLease {
    const KEY: &'static str = "shadowswap tests: the PostgreSQL standby";

    /// Wait for the lease and take it, `exclusive` or shared.
    pub async fn take(exclusive: bool) -> StandbyLease {
        let c = client(&super::server_dsn()).await;
        let f = if exclusive { "pg_advisory_lock" } else { "pg_advisory_lock_shared" };
        c.execute(&format!("SELECT {f}(hashtext($1))"), &[&Self::KEY]).await.unwrap();
        StandbyLease { _session: c }
    }
}

/// Wait until the standby (`replica`) has replayed everything the primary had written when
/// called, at most `timeout`; returns how long that took.
pub async fn wait_caught_up(primary: &Client, replica: &Client, timeout: Duration) -> Duration {
    let lsn: String = primary.query_one("SELECT pg_current_wal_lsn()::text", &[]).await.unwrap().get(0);
    let t0 = Instant::now();
    loop {
        let done: bool = replica
            .query_one("SELECT coalesce(pg_last_wal_replay_lsn() >= $1::text::pg_lsn, false)", &[&lsn])
            .await
            .unwrap()
            .get(0);
        if done {
            return t0.elapsed();
        }
        assert!(t0.elapsed() < timeout, "the standby did not replay up to {lsn} within {timeout:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Replay paused on the standby; resumed by [`ReplayPaused::resume`] or, on any other path (a
/// failed assertion), when dropped, so that no other test finds the standby stuck.
pub struct ReplayPaused {
    dsn: String,
    resumed: bool,
}

impl ReplayPaused {
    /// `pg_wal_replay_pause()` through `replica`; `dsn` reaches the standby to resume on drop.
    pub async fn pause(replica: &Client, dsn: String) -> ReplayPaused {
        replica.batch_execute("SELECT pg_wal_replay_pause()").await.unwrap();
        ReplayPaused { dsn, resumed: false }
    }

    /// `pg_wal_replay_resume()` through `replica`.
    pub async fn resume(mut self, replica: &Client) {
        replica.batch_execute("SELECT pg_wal_replay_resume()").await.unwrap();
        self.resumed = true;
    }
}

impl Drop for ReplayPaused {
    fn drop(&mut self) {
        if self.resumed {
            return;
        }
        let dsn = self.dsn.clone();
        // Drop cannot await: resume from a runtime of its own on another thread.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async {
                if let Ok((c, conn)) = tokio_postgres::connect(&dsn, NoTls).await {
                    tokio::spawn(conn);
                    let _ = c.batch_execute("SELECT pg_wal_replay_resume()").await;
                }
            })
        })
        .join();
    }
}
