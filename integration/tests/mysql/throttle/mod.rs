//! The throttler and the cut-over controller, end to end with the real binary against the real
//! MariaDB primary and its replica (`scripts/mariadb.sh start replica`):
//!
//! - replica apply paused: the backfill stops within seconds, the log names the replica and its
//!   lag; resuming apply resumes it; the result is exact, on the replica too;
//! - a replica that cannot be reached (refused at start; lost or silent mid-run) is never
//!   ignored: no copying while it is gone;
//! - `--throttle-flag-file`, `--max-load`, `--throttle-query` engage and release;
//!   `--critical-load` aborts with nothing left behind;
//! - a transaction holding the table through the cut-over: the controller waits instead of
//!   queueing (other sessions' queries never wait longer than the lock timeout), then swaps, or
//!   gives up cleanly when the transaction outlasts its retries;
//! - `--cut-over-window`: in sync and not swapped until the window opens;
//! - how blockers are found, with and without the `metadata_lock_info` plugin.
//!
//! Tests that use the replica hold its lease ([`Replica::lease`]): one at a time. Timings are
//! printed (`--no-capture`, or nextest's `--success-output final`) so a run documents them.

use std::process::ExitStatus;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mysql_async::prelude::Queryable;
use mysql_async::Conn;
use shadowswap_integration::cli::Spawned;
use shadowswap_integration::mysql::load::{busy_server, idle_server};
use shadowswap_integration::mysql::replica::Replica;
use shadowswap_integration::mysql::{Seeded, TestDb};
use shadowswap_integration::proxy::{address, dead_port, Link, Proxy};
use shadowswap_integration::run::flag_path;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

mod cut_over;
mod replica;
mod signals;

/// A rebuild (a plain ADD COLUMN is instant on MariaDB 10.11, and the point is the copy).
const ALTER: &str = "ADD COLUMN extra INT NULL, FORCE";

/// The rows a backfill copies for a while: about 5 s with `--chunk-size` [`SLOW_CHUNK`] here.
const ROWS: u32 = 30_000;
const SLOW_CHUNK: &str = "40";

/// Whether `t` has the column the ALTER adds: the swap happened.
async fn swapped(db: &TestDb) -> bool {
    let n: u64 = db
        .scalar(&format!(
            "SELECT COUNT(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = '{}' AND TABLE_NAME = 't' AND COLUMN_NAME = 'extra'",
            db.name
        ))
        .await;
    n == 1
}

/// A write the application makes during the run, and the same change applied to a snapshot.
const CHANGE: &str = "UPDATE t SET a = 'changed' WHERE id = 7; DELETE FROM t WHERE id = 9; \
                      INSERT INTO t VALUES (1000000, 'inserted', 1000000, 'p')";
fn with_change(mut rows: Seeded) -> Seeded {
    rows.iter_mut().find(|r| r.0 == 7).unwrap().1 = "changed".into();
    rows.retain(|r| r.0 != 9);
    rows.push((1_000_000, "inserted".into(), 1_000_000, "p".into()));
    rows
}

fn alter_args(db: &TestDb, extra: &[&str]) -> Vec<String> {
    let mut a: Vec<String> =
        ["alter", "--dsn", &db.dsn, "--table", "t", "--alter", ALTER, "--execute"].iter().map(|s| s.to_string()).collect();
    a.extend(extra.iter().map(|s| s.to_string()));
    a
}

fn ms(d: Duration) -> u128 {
    d.as_millis()
}

/// How long the shadow's row count must stay unchanged to count as stopped.
const STILL: Duration = Duration::from_secs(2);

/// After something that should pause the copy happened at `since`: poll the shadow's row count
/// until it has not changed for [`STILL`], and assert it stopped changing within `within` of
/// `since`. Returns how long after `since` the last row arrived, and the count.
async fn assert_copy_stops(db: &TestDb, cli: &mut Spawned, since: Instant, within: Duration) -> (Duration, u64) {
    let shadow_rows = |n: Option<u64>, cli: &Spawned| {
        n.unwrap_or_else(|| panic!("the shadow table is gone: the run swapped instead of pausing:\n{}", cli.stderr_text()))
    };
    let mut last = shadow_rows(db.count("_t_new").await, cli);
    let mut last_change = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(cli.running(), "shadowswap exited while it should be paused:\n{}", cli.stderr_text());
        let n = shadow_rows(db.count("_t_new").await, cli);
        if n != last {
            last = n;
            last_change = Instant::now();
        }
        assert!(
            last_change.duration_since(since) <= within,
            "the copy did not stop within {within:?} (still at {n} rows):\n{}",
            cli.stderr_text()
        );
        if last_change.elapsed() >= STILL {
            return (last_change.saturating_duration_since(since), last);
        }
    }
}

/// Assert that the shadow's row count is `rows` and stays so for `how_long`.
async fn assert_copy_stays(db: &TestDb, cli: &mut Spawned, rows: u64, how_long: Duration) {
    let until = Instant::now() + how_long;
    while Instant::now() < until {
        assert_eq!(db.count("_t_new").await, Some(rows), "the copy moved while paused:\n{}", cli.stderr_text());
        assert!(cli.running(), "shadowswap exited while paused:\n{}", cli.stderr_text());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The "application writes blocked N ms" figure of the summary line.
fn writes_blocked_ms(out: &str) -> u64 {
    out.split("application writes blocked ")
        .nth(1)
        .and_then(|s| s.split(" ms").next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no 'application writes blocked N ms' in the summary: {out}"))
}

/// Successful end of a run: exit 0, the ALTER applied, the data exactly `expected`, nothing left.
async fn assert_migrated(db: &TestDb, status: ExitStatus, out: &str, err: &str, expected: &Seeded) {
    assert_eq!(status.code(), Some(0), "{err}");
    assert!(out.starts_with("swapped "), "{out}");
    assert!(db.create_table("t").await.contains("`extra` int(11) DEFAULT NULL"), "{}", db.create_table("t").await);
    assert_eq!(&db.seeded("t").await, expected, "the migrated table differs from the original");
    db.assert_clean(&["t"]).await;
}
