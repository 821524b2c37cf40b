//! Load on the server: sessions kept busy in `pg_sleep`, which `--max-load active_backends=N` and
//! `--critical-load` count.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;
use tokio_postgres::Client;

use super::{client, PgTestDb};

/// `n` sessions on a database, connected (idle) in advance so that [`Sleepers::engage`] makes
/// them all `active` at once, each running `pg_sleep` until [`Sleepers::stop`].
pub struct Sleepers {
    app: String,
    clients: Vec<Arc<Client>>,
    tasks: Vec<JoinHandle<()>>,
}

impl Sleepers {
    /// Connect `n` sessions to `db` with `application_name` `app`.
    pub async fn connect(db: &PgTestDb, n: usize, app: &str) -> Sleepers {
        let dsn = format!("{}?application_name={app}", db.dsn);
        let mut clients = Vec::new();
        for _ in 0..n {
            clients.push(Arc::new(client(&dsn).await));
        }
        Sleepers { app: app.to_string(), clients, tasks: Vec::new() }
    }

    /// Start every session's `pg_sleep`; returns once all are active.
    pub async fn engage(&mut self, db: &PgTestDb) {
        for c in &self.clients {
            let c = c.clone();
            self.tasks.push(tokio::spawn(async move {
                let _ = c.simple_query("SELECT pg_sleep(120)").await;
            }));
        }
        let t0 = Instant::now();
        while self.active(db).await < self.clients.len() as i64 {
            assert!(t0.elapsed() < Duration::from_secs(10), "the sleeping sessions did not all become active");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn active(&self, db: &PgTestDb) -> i64 {
        db.client
            .query_one("SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND state = 'active'", &[&self.app])
            .await
            .unwrap()
            .get(0)
    }

    /// End the sessions (pg_terminate_backend).
    pub async fn stop(&mut self, db: &PgTestDb) {
        db.client
            .execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1", &[&self.app])
            .await
            .unwrap();
        for t in self.tasks.drain(..) {
            let _ = t.await;
        }
    }
}
