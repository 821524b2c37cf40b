//! The test server's replica (`scripts/mariadb.sh start replica`): read-only, replicating from the
//! primary with GTID. Its DSN (without database) comes from `SHADOWSWAP_MYSQL_REPLICA_DSN`,
//! default `mysql://shadowswap:shadowswap@127.0.0.1:33307`.
//!
//! There is one replica for every test binary, and pausing its SQL thread affects whoever else
//! measures lag on it, so a test that uses it holds a [`ReplicaLease`] (an advisory lock on the
//! primary, released when the test's session closes, whatever way the test ends).
//!
//! Also here: [`TcpProxy`], a loopback TCP forwarder a test can cut or freeze, to make a replica
//! unreachable in the middle of a run without touching the shared replica itself.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Pool, Row};

use crate::TestDb;

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

const FORWARD: u8 = 0;
const FREEZE: u8 = 1;
const CLOSED: u8 = 2;

/// A TCP forwarder on a loopback port to `upstream`, for making a server unreachable mid-test:
/// [`TcpProxy::close`] refuses new connections and resets open ones (a server that went away);
/// [`TcpProxy::freeze`] keeps every connection open but forwards nothing, and accepts new ones
/// that never get an answer (a network partition: packets dropped, nothing refused).
pub struct TcpProxy {
    /// The port it listens on, on 127.0.0.1.
    pub port: u16,
    mode: Arc<AtomicU8>,
    streams: Arc<Mutex<Vec<TcpStream>>>,
    acceptor: Option<std::thread::JoinHandle<()>>,
}

impl TcpProxy {
    /// Start forwarding to `upstream` (`host:port`).
    pub fn start(upstream: &str) -> TcpProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let mode = Arc::new(AtomicU8::new(FORWARD));
        let streams: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let upstream = upstream.to_string();
        let acceptor = std::thread::spawn({
            let (mode, streams) = (mode.clone(), streams.clone());
            move || loop {
                if mode.load(Ordering::SeqCst) == CLOSED {
                    drop(listener);
                    for s in streams.lock().unwrap().drain(..) {
                        let _ = s.shutdown(Shutdown::Both);
                    }
                    return;
                }
                match listener.accept() {
                    Ok((client, _)) => {
                        client.set_nonblocking(false).unwrap();
                        streams.lock().unwrap().push(client.try_clone().unwrap());
                        if mode.load(Ordering::SeqCst) == FREEZE {
                            continue; // held open, never answered
                        }
                        let Ok(server) = TcpStream::connect(&upstream) else {
                            let _ = client.shutdown(Shutdown::Both);
                            continue;
                        };
                        streams.lock().unwrap().push(server.try_clone().unwrap());
                        for (from, to) in [(client.try_clone().unwrap(), server.try_clone().unwrap()), (server, client)] {
                            let mode = mode.clone();
                            std::thread::spawn(move || pump(from, to, &mode));
                        }
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => std::thread::sleep(Duration::from_millis(10)),
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        TcpProxy { port, mode, streams, acceptor: Some(acceptor) }
    }

    /// Stop forwarding; keep every connection open and accept new ones without answering.
    pub fn freeze(&self) {
        self.mode.store(FREEZE, Ordering::SeqCst);
    }

    /// Refuse new connections and reset the open ones.
    pub fn close(&mut self) {
        self.mode.store(CLOSED, Ordering::SeqCst);
        if let Some(a) = self.acceptor.take() {
            let _ = a.join();
        }
        for s in self.streams.lock().unwrap().drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.close();
    }
}

/// Copy `from` → `to` while forwarding; stall while frozen; stop when closed or at EOF.
fn pump(mut from: TcpStream, mut to: TcpStream, mode: &AtomicU8) {
    from.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    let mut buf = [0u8; 16 * 1024];
    loop {
        match mode.load(Ordering::SeqCst) {
            CLOSED => break,
            FREEZE => {
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
            _ => {}
        }
        match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                if mode.load(Ordering::SeqCst) != FORWARD {
                    continue; // frozen or closed while reading: drop the bytes, as a partition would
                }
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => break,
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}
