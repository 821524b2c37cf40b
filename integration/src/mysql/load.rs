//! Load on the server: sessions kept busy in `SELECT SLEEP(60)`, which `--max-load` and
//! `--critical-load` see as `Threads_running`.

use mysql_async::prelude::Queryable;
use mysql_async::Conn;
use tokio::task::JoinHandle;

use super::TestDb;

/// `n` sessions on `db` each running `SELECT SLEEP(60)` at once: `Threads_running` at least `n`
/// until [`idle_server`] ends them.
pub fn busy_server(db: &TestDb, n: usize) -> Vec<JoinHandle<()>> {
    (0..n)
        .map(|_| {
            let dsn = db.dsn.clone();
            tokio::spawn(async move {
                let mut c = Conn::new(mysql_async::Opts::from_url(&dsn).unwrap()).await.unwrap();
                // Ended by KILL QUERY: SLEEP then returns 1 (or the statement an error).
                let _ = c.query_drop("SELECT SLEEP(60)").await;
                let _ = c.disconnect().await;
            })
        })
        .collect()
}

/// End the sleeps of [`busy_server`] in `db` and wait for their sessions.
pub async fn idle_server(db: &TestDb, sleepers: Vec<JoinHandle<()>>) {
    let ids: Vec<u64> = db
        .pool
        .get_conn()
        .await
        .unwrap()
        .exec("SELECT ID FROM information_schema.PROCESSLIST WHERE DB = ? AND INFO = 'SELECT SLEEP(60)'", (&db.name,))
        .await
        .unwrap();
    for id in ids {
        db.exec(&format!("KILL QUERY {id}")).await;
    }
    for s in sleepers {
        s.await.unwrap();
    }
}
