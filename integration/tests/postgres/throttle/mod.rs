//! The throttler and the cut-over controller against the real PostgreSQL primary and its hot
//! standby (`scripts/postgres.sh start` and `scripts/postgres.sh start replica`), through the
//! real `shadowswap` binary, watched live (its stderr is read line by line as it runs):
//!
//! - replica apply paused (`pg_wal_replay_pause()`): the backfill stops within a few seconds, the
//!   log names the replica and its lag; resuming apply resumes the backfill; exact data, the
//!   standby has the new definition, the heartbeat table is gone. Before the run the primary is
//!   left idle, where PostgreSQL's own replay timestamp goes stale; shadowswap's heartbeat is not
//!   fooled by that;
//! - an unreachable replica (refused at start; refused, or answering nothing, mid-run) throttles
//!   instead of being ignored, and SIGTERM then leaves nothing behind;
//! - `--throttle-flag-file`, `--max-load active_backends=N` (sessions kept busy in `pg_sleep`)
//!   and `--throttle-query` engage mid-backfill and release;
//! - `--critical-load` aborts with nothing left behind;
//! - a transaction holding a lock on the table through the cut-over: the application's queries
//!   on the table (a probe running a SELECT and an UPDATE every 50 ms) are never blocked longer
//!   than the lock timeout; the cut-over succeeds once the transaction ends, or fails cleanly
//!   when its retries run out;
//! - a cut-over window that excludes now: the run stays in sync and swaps only once it opens.
//!
//! The replica's DSN (maintenance database) comes from `SHADOWSWAP_PG_REPLICA_DSN`, default
//! `postgres://shadowswap:shadowswap@127.0.0.1:54330/shadowswap`. Only
//! [`replica_apply_paused_throttles_the_backfill_until_resumed`] pauses the standby's replay (and
//! resumes it on every path), holding a [`StandbyLease`] exclusively; the other tests that use
//! the standby hold it shared, so none of them sees that pause. Run `cargo build -p
//! shadowswap-cli` first (scripts/test.sh does). Figures are printed (`--nocapture`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use shadowswap_integration::cli::Spawned;
use shadowswap_integration::postgres::load::Sleepers;
use shadowswap_integration::postgres::standby::{self, wait_caught_up, ReplayPaused, StandbyLease};
use shadowswap_integration::postgres::{client, PgTestDb};
use shadowswap_integration::proxy::{address, dead_port, with_port, Link, Proxy};
use tokio::task::JoinHandle;
use tokio_postgres::Client;
use tokio_util::sync::CancellationToken;

mod cut_over;
mod replica;
mod signals;

const ALTER: &str = "ADD COLUMN extra int NOT NULL DEFAULT 7";

fn alter_args(db: &PgTestDb, extra: &[&str]) -> Vec<String> {
    let mut a: Vec<String> =
        ["alter", "--dsn", &db.dsn, "--table", "t", "--alter", ALTER, "--execute"].map(String::from).to_vec();
    a.extend(extra.iter().map(|s| s.to_string()));
    a
}

// ---------------------------------------------------------------------------------------------
// Tables, rows, copy progress
// ---------------------------------------------------------------------------------------------

/// `t (id bigint PRIMARY KEY, v int, s text)` with ids 1..=rows.
async fn make_table(db: &PgTestDb, rows: i64) {
    db.exec(&format!(
        "CREATE TABLE t (id bigint PRIMARY KEY, v int NOT NULL, s text NOT NULL); \
         INSERT INTO t SELECT g, g % 1000, md5(g::text) FROM generate_series(1, {rows}) g; ANALYZE t"
    ))
    .await;
}

type Rows = Vec<Vec<Option<String>>>;

async fn snapshot(db: &PgTestDb) -> Rows {
    db.text_rows("SELECT * FROM t ORDER BY id").await
}

/// What `rows` of `t` look like after the ALTER.
fn altered(rows: &Rows) -> Rows {
    rows.iter().map(|r| r.iter().cloned().chain([Some("7".to_string())]).collect()).collect()
}

/// Rows in the shadow table so far (0 while it does not exist).
async fn copied(c: &Client) -> i64 {
    match c.query_one("SELECT count(*) FROM _t_new", &[]).await {
        Ok(r) => r.get(0),
        Err(_) => 0,
    }
}

/// Wait until at least `n` rows are in the shadow; the count reached.
async fn wait_copied(c: &Client, n: i64, timeout: Duration) -> i64 {
    let t0 = Instant::now();
    loop {
        let k = copied(c).await;
        if k >= n {
            return k;
        }
        assert!(t0.elapsed() < timeout, "only {k} rows copied after {timeout:?} (waiting for {n})");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Watch the shadow's row count (every 50 ms) from `since` until it has not changed for
/// `quiet`. Returns when it last changed (relative to `since`) and the count then. Panics when
/// it keeps growing for `limit`, or when the whole table (`total` rows) got copied.
async fn wait_copy_stopped(c: &Client, since: Instant, quiet: Duration, limit: Duration, total: i64) -> (Duration, i64) {
    let mut last = copied(c).await;
    let mut changed = since;
    loop {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let k = copied(c).await;
        if k != last {
            last = k;
            changed = Instant::now();
        }
        assert!(last < total, "the backfill copied all {total} rows: it never stopped");
        if changed.elapsed() >= quiet {
            return (changed.saturating_duration_since(since), last);
        }
        assert!(since.elapsed() < limit, "the backfill still copies {limit:?} after it should have stopped ({last} rows)");
    }
}

/// The number in `text` right after `prefix`, e.g. the lag in "lag 1.3 s".
fn number_after(text: &str, prefix: &str) -> Option<f64> {
    let rest = &text[text.find(prefix)? + prefix.len()..];
    let end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
    rest[..end].parse().ok()
}
