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

// ---------------------------------------------------------------------------------------------
// Replica lag
// ---------------------------------------------------------------------------------------------

/// Pause the standby's replay once some rows are copied: the backfill stops within a few seconds
/// (max lag 1 s, checks every 250 ms), the log names the replica and its lag, and the lag it
/// reports is the real time since replay stopped; resuming replay resumes the backfill; exact
/// data, and the standby ends with the new definition and without the heartbeat table.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replica_apply_paused_throttles_the_backfill_until_resumed() {
    const ROWS: i64 = 100_000;
    let _lease = StandbyLease::take(true).await;
    let db = PgTestDb::new("tp_replica_pause").await;
    make_table(&db, ROWS).await;
    let before = snapshot(&db).await;
    let replica = standby::client_for(&db).await;
    // A paused standby left by an interrupted earlier run of this test would stall everything.
    replica.batch_execute("SELECT pg_wal_replay_resume()").await.unwrap();
    wait_caught_up(&db.client, &replica, Duration::from_secs(60)).await;
    let on_replica: i64 = replica.query_one("SELECT count(*) FROM t", &[]).await.unwrap().get(0);
    assert_eq!(on_replica, ROWS);

    // An idle primary: PostgreSQL's own figure (time since the last replayed commit) grows
    // although the standby has everything; shadowswap's heartbeat must not take that for lag.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let pg_figure: Option<f64> = replica
        .query_one("SELECT extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8", &[])
        .await
        .unwrap()
        .get(0);
    let caught_up: bool =
        replica.query_one("SELECT pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn()", &[]).await.unwrap().get(0);
    eprintln!(
        "before the run: standby caught up = {caught_up}; PostgreSQL's own lag figure (now - pg_last_xact_replay_timestamp()) = \
         {pg_figure:?} s (stale when the primary is idle; other tests' commits may freshen it)"
    );

    let rdsn = standby::dsn_for(&db);
    let mut run =
        Spawned::watched("replica-pause", &alter_args(&db, &["--replica", &rdsn, "--max-lag", "1s", "--chunk-size", "200"]));
    let t_start = Instant::now();
    let first = wait_copied(&db.client, 1, Duration::from_secs(30)).await;
    let first_after = t_start.elapsed();
    let at_pause = wait_copied(&db.client, 10_000, Duration::from_secs(30)).await;
    assert!(
        run.find(&["throttling"]).is_none(),
        "throttled before the standby's replay was paused (the heartbeat lag must be ~0 on an idle primary):\n{}",
        run.stderr_text()
    );

    let paused = ReplayPaused::pause(&replica, standby::server_dsn()).await;
    let t_pause = Instant::now();
    let (stopped_after, rows_at_stop) =
        wait_copy_stopped(&db.client, t_pause, Duration::from_millis(2500), Duration::from_secs(8), ROWS).await;
    let line = run.wait_line(&["throttling: copying paused", "lag"], Duration::from_secs(5)).await;
    let target = format!("{}/{}", address(&rdsn), db.name);
    assert!(line.text.contains(&target), "names the replica ({target}): {}", line.text);
    assert!(!line.text.contains("shadowswap:shadowswap@"), "the password must not be logged: {}", line.text);
    let reported = number_after(&line.text, "lag ").expect("lag value in the throttling line");
    let real = line.at.duration_since(t_pause).as_secs_f64();
    eprintln!(
        "first rows copied {:.2} s after start (first count seen: {first}); replay paused at {at_pause} rows; copy stopped {:.2} s after the pause at {rows_at_stop} rows; \
         throttling line {real:.2} s after the pause reports lag {reported} s",
        first_after.as_secs_f64(),
        stopped_after.as_secs_f64()
    );
    assert!(stopped_after < Duration::from_secs(3), "the backfill went on for {stopped_after:?} after replay paused");
    assert!((1.0..2.5).contains(&reported), "reported lag {reported} s when throttling began (max lag 1 s)");
    // The lag is at least the time since replay paused (within the heartbeat and check
    // intervals); it can be more by whatever the standby already lagged before the pause, which
    // under a loaded machine (the whole suite in parallel) is up to about a second.
    assert!(reported >= real - 0.4, "reported lag {reported} s, but replay was paused {real:.2} s before");
    assert!(reported <= real + 1.5, "reported lag {reported} s, but replay was paused only {real:.2} s before");

    // Stays paused while replay is paused (3 s more), and logs the pause once, not every check.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(copied(&db.client).await, rows_at_stop, "copied while the standby lagged");
    let throttle_lines = run.lines().iter().filter(|l| l.text.contains("throttling")).count();
    assert_eq!(throttle_lines, 1, "one line when throttling starts, none while the lag grows:\n{}", run.stderr_text());

    paused.resume(&replica).await;
    let t_resume = Instant::now();
    wait_copied(&db.client, rows_at_stop + 1, Duration::from_secs(10)).await;
    let resumed_after = t_resume.elapsed();
    let ended = run.wait_line(&["throttling ended"], Duration::from_secs(5)).await;
    eprintln!("replay resumed: copying resumed {:.2} s later; {}", resumed_after.as_secs_f64(), ended.text);

    let (status, _, log) = run.finish(Duration::from_secs(120)).await;
    assert!(status.success(), "exit {status}:\n{log}");
    assert_eq!(snapshot(&db).await, altered(&before), "data after the migration");
    db.assert_clean(&["t"]).await;

    // The standby follows: new definition, same rows, no heartbeat table.
    wait_caught_up(&db.client, &replica, Duration::from_secs(60)).await;
    let cols: Vec<String> = replica
        .query("SELECT column_name::text FROM information_schema.columns WHERE table_name = 't' ORDER BY ordinal_position", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(cols, ["id", "v", "s", "extra"]);
    let replica_rows: i64 = replica.query_one("SELECT count(*) FROM t WHERE extra = 7", &[]).await.unwrap().get(0);
    assert_eq!(replica_rows, ROWS);
    let hb: Option<String> = replica.query_one("SELECT to_regclass('_t_ssw_hb')::text", &[]).await.unwrap().get(0);
    assert_eq!(hb, None, "heartbeat table on the standby");
}

/// A replica that cannot be reached when the run starts: refused at once, nothing created.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_unreachable_at_start_refuses_the_run() {
    let db = PgTestDb::new("tp_replica_down").await;
    make_table(&db, 1000).await;
    let before = snapshot(&db).await;
    let port = dead_port();
    let dead = with_port(&standby::dsn_for(&db), port);
    let run = Spawned::watched("replica-down", &alter_args(&db, &["--replica", &dead]));
    let (status, _, log) = run.finish(Duration::from_secs(60)).await;
    assert_eq!(status.code(), Some(1), "{log}");
    let last = log.lines().last().unwrap_or_default();
    assert!(last.contains(&format!("127.0.0.1:{port}")) && last.contains("cannot connect"), "{last}");
    db.assert_clean(&["t"]).await;
    assert_eq!(snapshot(&db).await, before);
}

/// The replica becomes unreachable mid-backfill (`link`: connections refused, or the host
/// stops answering): copying pauses and never resumes while it is, the log says so; SIGTERM
/// then stops the run and removes everything it created.
///
/// Every step waits on an event, never on the table being big enough for the copy to still be
/// running: the run starts held by a throttle flag file (the backfill has begun and copies
/// nothing), the replica is lost, the log shows the throttler counting the replica among its
/// reasons, and only then is the flag removed: copying must stay paused on the replica alone.
async fn replica_lost_mid_run(name: &str, link: Link) {
    const ROWS: i64 = 10_000;
    let _lease = StandbyLease::take(false).await;
    let db = PgTestDb::new(name).await;
    make_table(&db, ROWS).await;
    let before = snapshot(&db).await;
    drop(standby::client_for(&db).await); // the standby has the database
    let rdsn = standby::dsn_for(&db);
    let proxy = Proxy::start(address(&rdsn)).await;
    let via_proxy = proxy.route(&rdsn);
    let dir = std::env::temp_dir().join(format!("ssw-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let hold = dir.join("hold");
    std::fs::write(&hold, b"").unwrap();
    let hold_s = hold.to_str().unwrap().to_string();
    let replica = format!("127.0.0.1:{}", proxy.port);

    let mut run = Spawned::watched(
        name,
        &alter_args(&db, &["--replica", &via_proxy, "--max-lag", "1s", "--chunk-size", "200", "--throttle-flag-file", &hold_s]),
    );
    run.wait_line(&["throttling: copying paused", "throttle flag file"], Duration::from_secs(30)).await;
    assert_eq!(copied(&db.client).await, 0, "held by the flag file");

    proxy.set(link);
    let t_lost = Instant::now();
    let line = run.wait_line(&["throttling: reason changed", &replica], Duration::from_secs(10)).await;
    eprintln!("[{name}] replica {link:?}: a throttle reason {:.2} s later; {}", t_lost.elapsed().as_secs_f64(), line.text);
    let mark = run.lines().len();
    std::fs::remove_file(&hold).unwrap();
    let line = run.wait_line_from(mark, &["throttling: reason changed", &replica], Duration::from_secs(10)).await;
    assert!(!line.text.contains("throttle flag file"), "the flag is gone, the replica keeps copying paused: {}", line.text);
    assert!(
        run.find(&["throttling ended"]).is_none(),
        "copying resumed while the replica was unreachable:\n{}",
        run.stderr_text()
    );
    // Nothing is copied while the replica stays unreachable.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(copied(&db.client).await, 0, "copied while the replica was unreachable");
    assert!(
        run.find(&["throttling ended"]).is_none(),
        "copying resumed while the replica was unreachable:\n{}",
        run.stderr_text()
    );

    run.signal("TERM");
    let t_term = Instant::now();
    let (status, _, log) = run.finish(Duration::from_secs(60)).await;
    eprintln!("[{name}] SIGTERM -> exit in {:.2} s", t_term.elapsed().as_secs_f64());
    assert_eq!(status.code(), Some(130), "{log}");
    db.assert_clean(&["t"]).await;
    assert_eq!(snapshot(&db).await, before);
    drop(proxy);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replica_refusing_connections_mid_run_throttles_until_stopped() {
    replica_lost_mid_run("tp_replica_refused", Link::Refuse).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replica_that_stops_answering_mid_run_throttles_until_stopped() {
    replica_lost_mid_run("tp_replica_stalled", Link::Stall).await;
}

// ---------------------------------------------------------------------------------------------
// Load, throttle query, flag file
// ---------------------------------------------------------------------------------------------

/// A signal engaged during the backfill pauses copying until it is released, then the run
/// completes with exact data. Every step waits on an event, never on the table being big enough
/// for the copy to still be running (nothing is copied before the throttler's first verdict):
/// - `hold`: the run starts held by a throttle flag file of the test's own; `engage()` runs while
///   it is held, the log shows the signal (`needle`) joining the reasons, the hold is removed and
///   the signal alone must keep copying paused;
/// - no `hold` (the signal under test is the flag file itself): `engage()` runs before the run
///   starts and copying must stay paused from the first verdict.
///
/// Then `release()`: "throttling ended", and the run completes.
async fn engage_and_release<E, R>(db: &PgTestDb, name: &str, args: &[&str], needle: &str, engage: E, release: R, hold: bool)
where
    E: std::future::Future<Output = ()>,
    R: std::future::Future<Output = ()>,
{
    const ROWS: i64 = 10_000;
    make_table(db, ROWS).await;
    let before = snapshot(db).await;
    let mut all: Vec<String> = ["--chunk-size", "200"].iter().map(|s| s.to_string()).collect();
    all.extend(args.iter().map(|s| s.to_string()));
    let dir = std::env::temp_dir().join(format!("ssw-{}-hold-{}", db.name, std::process::id()));
    let hold = hold.then(|| {
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("hold");
        std::fs::write(&f, b"").unwrap();
        all.extend(["--throttle-flag-file".to_string(), f.to_str().unwrap().to_string()]);
        f
    });
    let mut engage = Some(engage);
    if hold.is_none() {
        engage.take().unwrap().await;
    }
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    let mut run = Spawned::watched(name, &alter_args(db, &all));
    match &hold {
        None => {
            let line = run.wait_line(&["throttling: copying paused", needle], Duration::from_secs(30)).await;
            eprintln!("[{name}] engaged before the start: {}", line.text);
        }
        Some(h) => {
            run.wait_line(&["throttling: copying paused", "throttle flag file"], Duration::from_secs(30)).await;
            engage.take().unwrap().await;
            let t_engaged = Instant::now();
            run.wait_line(&["throttling: reason changed", needle], Duration::from_secs(10)).await;
            eprintln!("[{name}] engaged: a throttle reason {:.2} s later", t_engaged.elapsed().as_secs_f64());
            let mark = run.lines().len();
            std::fs::remove_file(h).unwrap();
            let line = run.wait_line_from(mark, &["throttling: reason changed", needle], Duration::from_secs(10)).await;
            assert!(!line.text.contains("throttle flag file"), "the signal alone keeps copying paused: {}", line.text);
        }
    }
    assert_eq!(copied(&db.client).await, 0, "nothing is copied while the signal is over its limit");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(copied(&db.client).await, 0, "nothing is copied while the signal is over its limit");
    assert!(run.find(&["throttling ended"]).is_none(), "copying resumed while the signal was engaged:\n{}", run.stderr_text());

    release.await;
    let t_released = Instant::now();
    let ended = run.wait_line(&["throttling ended"], Duration::from_secs(30)).await;
    eprintln!("[{name}] released: copying resumed {:.2} s later; {}", t_released.elapsed().as_secs_f64(), ended.text);
    let (status, _, log) = run.finish(Duration::from_secs(120)).await;
    assert!(status.success(), "exit {status}:\n{log}");
    assert_eq!(snapshot(db).await, altered(&before));
    db.assert_clean(&["t"]).await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_throttle_flag_file_engages_and_releases() {
    let db = PgTestDb::new("tp_flag_file").await;
    let dir = std::env::temp_dir().join(format!("ssw-tp-flag-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let flag = dir.join("throttle");
    let _ = std::fs::remove_file(&flag);
    let flag_s = flag.to_str().unwrap().to_string();
    engage_and_release(
        &db,
        "flag-file",
        &["--throttle-flag-file", &flag_s],
        "throttle flag file",
        async { std::fs::write(&flag, b"").unwrap() },
        async { std::fs::remove_file(&flag).unwrap() },
        false,
    )
    .await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// `--max-load active_backends=15`, crossed by 25 sessions sleeping in `pg_sleep`, released by
/// ending them. The figure is server-wide: concurrent tests can only delay the release (the
/// critical-load test's limit, 40, is far enough above this test's load that neither trips the
/// other's abort).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn max_load_active_backends_engages_and_releases() {
    let db = PgTestDb::new("tp_max_load").await;
    let sleepers = tokio::sync::Mutex::new(Sleepers::connect(&db, 25, "ssw_tp_max_load_sleeper").await);
    engage_and_release(
        &db,
        "max-load",
        &["--max-load", "active_backends=15"],
        "active_backends = ",
        async { sleepers.lock().await.engage(&db).await },
        async { sleepers.lock().await.stop(&db).await },
        true,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_throttle_query_engages_and_releases() {
    let db = PgTestDb::new("tp_throttle_query").await;
    // In a schema of its own: the test checks that `public` holds nothing but `t` afterwards.
    db.exec("CREATE SCHEMA ctl; CREATE TABLE ctl.throttle (paused int NOT NULL); INSERT INTO ctl.throttle VALUES (0)").await;
    engage_and_release(
        &db,
        "throttle-query",
        &["--throttle-query", "SELECT paused FROM ctl.throttle"],
        "throttle query returned 1",
        async { db.exec("UPDATE ctl.throttle SET paused = 1").await },
        async { db.exec("UPDATE ctl.throttle SET paused = 0").await },
        true,
    )
    .await;
}

/// `--critical-load` crossed mid-backfill: exit 1 naming the figure and its value; nothing
/// left (no shadow, capture functions or triggers, heartbeat table), the original unchanged.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn critical_load_aborts_and_leaves_nothing_behind() {
    const ROWS: i64 = 100_000;
    let _lease = StandbyLease::take(false).await;
    let db = PgTestDb::new("tp_critical_load").await;
    make_table(&db, ROWS).await;
    let before = snapshot(&db).await;
    let replica = standby::client_for(&db).await; // with a replica: a heartbeat table to remove too
    drop(replica);
    let rdsn = standby::dsn_for(&db);
    let mut sleepers = Sleepers::connect(&db, 50, "ssw_tp_critical_sleeper").await;
    let run = Spawned::watched(
        "critical-load",
        &alter_args(&db, &["--chunk-size", "100", "--replica", &rdsn, "--critical-load", "active_backends=40"]),
    );
    wait_copied(&db.client, 5_000, Duration::from_secs(60)).await;
    let hb: Option<String> = db.client.query_one("SELECT to_regclass('_t_ssw_hb')::text", &[]).await.unwrap().get(0);
    assert!(hb.is_some(), "the heartbeat table exists during the run");
    sleepers.engage(&db).await;
    let (status, _, log) = run.finish(Duration::from_secs(60)).await;
    sleepers.stop(&db).await;
    assert_eq!(status.code(), Some(1), "{log}");
    let last = log.lines().last().unwrap_or_default();
    let value = number_after(last, "active_backends = ");
    assert!(
        last.contains("critical load") && value.is_some_and(|v| v > 40.0) && last.contains("(limit 40)"),
        "the message names the figure, its value and the limit: {last}"
    );
    db.assert_clean(&["t"]).await;
    assert_eq!(snapshot(&db).await, before, "the original is unchanged");
}

// ---------------------------------------------------------------------------------------------
// Cut-over against a transaction holding the table
// ---------------------------------------------------------------------------------------------

/// What the application saw: each statement's latency.
#[derive(Default)]
struct Probed {
    /// (started, statement, latency)
    samples: Vec<(Instant, &'static str, Duration)>,
    /// Committed `v = v + 1` per id.
    increments: HashMap<i64, i64>,
    errors: Vec<String>,
}

/// The application: a plain SELECT and a small UPDATE on `t` every 50 ms until `stop`. Each is
/// sent as one simple-protocol query, i.e. one statement in one implicit transaction, like
/// libpq's PQexec/PQexecParams: tokio-postgres's `query` would prepare and execute in two
/// round trips, two transactions, each of which takes its own lock on `t` and may wait behind a
/// different lock request (shadowswap's failed cut-over attempt and then its undo's DDL, back to
/// back) — one statement waiting twice, which says nothing about any single lock wait.
fn probe(dsn: String, ids: i64, stop: CancellationToken) -> (Arc<Mutex<Probed>>, JoinHandle<()>) {
    let seen: Arc<Mutex<Probed>> = Arc::default();
    let out = seen.clone();
    let task = tokio::spawn(async move {
        let c = client(&dsn).await;
        let mut i: i64 = 0;
        while !stop.is_cancelled() {
            let id = 1 + (i * 7919) % ids;
            i += 1;
            let t0 = Instant::now();
            let r = c.simple_query(&format!("SELECT v FROM t WHERE id = {id}")).await;
            let d = t0.elapsed();
            {
                let mut s = out.lock().unwrap();
                s.samples.push((t0, "select", d));
                if let Err(e) = r {
                    s.errors.push(format!("select: {e}"));
                }
            }
            let t0 = Instant::now();
            let r = c.simple_query(&format!("UPDATE t SET v = v + 1 WHERE id = {id}")).await.map(|m| {
                m.iter()
                    .find_map(|m| match m {
                        tokio_postgres::SimpleQueryMessage::CommandComplete(n) => Some(*n),
                        _ => None,
                    })
                    .unwrap_or(0)
            });
            let d = t0.elapsed();
            {
                let mut s = out.lock().unwrap();
                s.samples.push((t0, "update", d));
                match r {
                    Ok(1) => *s.increments.entry(id).or_default() += 1,
                    Ok(n) => s.errors.push(format!("update of id {id} changed {n} rows")),
                    Err(e) => s.errors.push(format!("update: {e}")),
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    (seen, task)
}

/// `rows` with the probe's increments applied to `v`.
fn with_increments(rows: &Rows, inc: &HashMap<i64, i64>) -> Rows {
    rows.iter()
        .map(|r| {
            let id: i64 = r[0].as_deref().unwrap().parse().unwrap();
            let mut r = r.clone();
            if let Some(n) = inc.get(&id) {
                let v: i64 = r[1].as_deref().unwrap().parse().unwrap();
                r[1] = Some((v + n).to_string());
            }
            r
        })
        .collect()
}

fn latency_report(p: &Probed, from: Instant) -> (Duration, String) {
    let max = p.samples.iter().filter(|s| s.0 >= from).map(|s| s.2).max().unwrap_or_default();
    let mut top: Vec<_> = p.samples.iter().filter(|s| s.0 >= from).collect();
    top.sort_by_key(|s| std::cmp::Reverse(s.2));
    let top: Vec<String> = top
        .iter()
        .take(5)
        .map(|s| format!("{} {:.0} ms at +{:.1} s", s.1, s.2.as_secs_f64() * 1e3, (s.0 - from).as_secs_f64()))
        .collect();
    let n = p.samples.iter().filter(|s| s.0 >= from).count();
    (max, format!("{n} statements, max {:.0} ms; slowest: {}", max.as_secs_f64() * 1e3, top.join(", ")))
}

/// Until the postpone flag file is removed the run stays before the cut-over; then a session
/// holds a lock on `t` (`blocker`) while the probe runs. Returns the run, the probe, the
/// blocking session and its pid, the original rows.
struct CutOverScene {
    db: PgTestDb,
    run: Spawned,
    before: Rows,
    blocker: Client,
    blocker_pid: i32,
    probe: (Arc<Mutex<Probed>>, JoinHandle<()>),
    stop_probe: CancellationToken,
    t_blocked: Instant,
    flag_dir: std::path::PathBuf,
}

const CUT_OVER_ROWS: i64 = 20_000;

async fn cut_over_scene(name: &str, blocker_sql: &str, extra: &[&str]) -> CutOverScene {
    let db = PgTestDb::new(name).await;
    make_table(&db, CUT_OVER_ROWS).await;
    let before = snapshot(&db).await;
    let flag_dir = std::env::temp_dir().join(format!("ssw-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&flag_dir).unwrap();
    let flag = flag_dir.join("postpone");
    std::fs::write(&flag, b"").unwrap();
    let mut args = vec!["--postpone-cut-over-flag-file", flag.to_str().unwrap(), "--cut-over-lock-timeout", "1s"];
    args.extend_from_slice(extra);
    let mut run = Spawned::watched(name, &alter_args(&db, &args));
    run.wait_line(&["cut-over postponed"], Duration::from_secs(60)).await;

    let blocker = client(&db.dsn).await;
    let blocker_pid: i32 = blocker.query_one("SELECT pg_backend_pid()", &[]).await.unwrap().get(0);
    blocker.batch_execute(blocker_sql).await.unwrap();
    let t_blocked = Instant::now();
    let stop_probe = CancellationToken::new();
    let probe = probe(db.dsn.clone(), CUT_OVER_ROWS, stop_probe.clone());
    // The blocker must be older than the lock timeout to count as one.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    std::fs::remove_file(&flag).unwrap();
    CutOverScene { db, run, before, blocker, blocker_pid, probe, stop_probe, t_blocked, flag_dir }
}

/// The lock timeout the runs use, and what the probe may see on top of it (a loaded machine).
const LOCK_TIMEOUT: Duration = Duration::from_secs(1);
const MARGIN: Duration = Duration::from_millis(600);

/// An open transaction that wrote a row holds `t` through the cut-over: the cut-over waits
/// (naming the pid) instead of queueing; once the transaction commits it swaps. The probe is
/// never blocked longer than the lock timeout; its updates and the blocker's row are all there.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lock_holding_transaction_delays_the_cut_over_which_succeeds_once_it_ends() {
    let mut s = cut_over_scene(
        "tp_cut_over_waits",
        &format!("BEGIN; INSERT INTO t VALUES ({}, 1, 'written by the blocker')", CUT_OVER_ROWS + 1),
        &["--cut-over-retries", "3"],
    )
    .await;
    let pid = format!("pid {}", s.blocker_pid);
    let waiting = s.run.wait_line(&["waits instead of queueing", &pid], Duration::from_secs(20)).await;
    eprintln!("{}", waiting.text);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(s.run.find(&["tables swapped"]).is_none(), "swapped while the transaction was open");
    assert!(s.run.find(&["cut-over attempt"]).is_none(), "attempted (queued a lock request) while the transaction was open");
    s.blocker.batch_execute("COMMIT").await.unwrap();
    let t_commit = Instant::now();
    let swapped = s.run.wait_line(&["tables swapped"], Duration::from_secs(30)).await;
    eprintln!("swapped {:.2} s after the blocker committed: {}", swapped.at.duration_since(t_commit).as_secs_f64(), swapped.text);
    let (status, _, log) = s.run.finish(Duration::from_secs(60)).await;
    tokio::time::sleep(Duration::from_millis(300)).await; // a few probes on the new table
    s.stop_probe.cancel();
    s.probe.1.await.unwrap();
    assert!(status.success(), "exit {status}:\n{log}");
    assert!(log.contains("the blocking transactions ended"), "{log}");
    let mut expected = {
        let p = s.probe.0.lock().unwrap();
        assert!(p.errors.is_empty(), "the application saw errors: {:?}", p.errors);
        let (max, report) = latency_report(&p, s.t_blocked);
        eprintln!("probe during the blocked cut-over: {report}");
        assert!(max <= LOCK_TIMEOUT + MARGIN, "the application was blocked {max:?} (lock timeout {LOCK_TIMEOUT:?}): {report}");
        with_increments(&s.before, &p.increments)
    };
    expected.push(vec![Some((CUT_OVER_ROWS + 1).to_string()), Some("1".into()), Some("written by the blocker".into())]);
    assert_eq!(snapshot(&s.db).await, altered(&expected));
    s.db.assert_clean(&["t"]).await;
    let _ = std::fs::remove_dir_all(&s.flag_dir);
}

/// A transaction holds `LOCK TABLE t IN ROW EXCLUSIVE MODE` through every attempt
/// (`--cut-over-retries 1`): each attempt waits for it first (`--cut-over-blocker-wait 3s`,
/// logging its pid), then
/// tries under the 1 s lock timeout and fails; when the retries run out the run fails cleanly
/// (exit 1, the original serving, nothing left: the undo's own DDL waits, bounded by the lock
/// timeout, until the transaction ends). The probe is never blocked longer than the lock
/// timeout, through the attempts and the undo.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lock_held_through_every_cut_over_attempt_fails_the_run_cleanly() {
    let mut s = cut_over_scene(
        "tp_cut_over_gives_up",
        "BEGIN; LOCK TABLE t IN ROW EXCLUSIVE MODE",
        &["--cut-over-retries", "1", "--cut-over-blocker-wait", "3s"],
    )
    .await;
    let pid = format!("pid {}", s.blocker_pid);
    s.run.wait_line(&["waits instead of queueing", &pid], Duration::from_secs(20)).await;
    let failed = s.run.wait_line(&["run failed before the swap"], Duration::from_secs(60)).await;
    let attempts = s.run.lines().iter().filter(|l| l.text.contains("cut-over attempt")).count();
    eprintln!("{attempts} attempts; {}", failed.text);
    // The undo drops the capture triggers, which needs a lock the transaction still holds: it
    // retries under the lock timeout; the transaction ends a moment later, then the undo finishes.
    tokio::time::sleep(Duration::from_secs(2)).await;
    s.blocker.batch_execute("ROLLBACK").await.unwrap();
    let (status, _, log) = s.run.finish(Duration::from_secs(120)).await;
    s.stop_probe.cancel();
    s.probe.1.await.unwrap();
    assert_eq!(status.code(), Some(1), "{log}");
    assert_eq!(attempts, 2, "one attempt and one retry:\n{log}");
    let last = log.lines().last().unwrap_or_default();
    assert!(last.contains("cut-over failed after 2 attempts") && last.contains("pg_stat_activity"), "says what to do: {last}");
    let expected = {
        let p = s.probe.0.lock().unwrap();
        assert!(p.errors.is_empty(), "the application saw errors: {:?}", p.errors);
        let (max, report) = latency_report(&p, s.t_blocked);
        eprintln!("probe through the attempts and the undo: {report}");
        assert!(max <= LOCK_TIMEOUT + MARGIN, "the application was blocked {max:?} (lock timeout {LOCK_TIMEOUT:?}): {report}");
        with_increments(&s.before, &p.increments)
    };
    s.db.assert_clean(&["t"]).await;
    assert_eq!(snapshot(&s.db).await, expected, "the original serves, with the probe's updates");
    let _ = std::fs::remove_dir_all(&s.flag_dir);
}

// ---------------------------------------------------------------------------------------------
// Cut-over window
// ---------------------------------------------------------------------------------------------

/// A cut-over window that opens at the next minute boundary (UTC; the one after when fewer
/// than 10 s remain): the run backfills, checksums, then waits in sync (writes made meanwhile
/// reach the shadow at once) and swaps only once the window is open.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_cut_over_waits_for_its_window() {
    let db = PgTestDb::new("tp_window").await;
    make_table(&db, 5_000).await;
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    let mut opens = (now / 60 + 1) * 60;
    if opens - now < 10 {
        opens += 60;
    }
    let hhmm = |t: u64| format!("{:02}:{:02}", (t / 3600) % 24, (t / 60) % 60);
    let window = format!("{}-{}", hhmm(opens), hhmm(opens + 120));
    eprintln!("window {window} UTC opens in {} s", opens - now);
    let mut run = Spawned::watched("window", &alter_args(&db, &["--cut-over-window", &window]));
    let waiting = run.wait_line(&["cut-over waits for its window"], Duration::from_secs(60)).await;
    eprintln!("{}", waiting.text);

    // Writes while waiting reach the shadow, in the writer's own transaction.
    db.exec("INSERT INTO t SELECT g, 5, 'written while waiting' FROM generate_series(100001, 100020) g").await;
    db.exec("UPDATE t SET v = -1 WHERE id BETWEEN 10 AND 19").await;
    db.exec("DELETE FROM t WHERE id BETWEEN 20 AND 29").await;
    let shadow = db.text_rows("SELECT id, v, s, extra FROM _t_new WHERE id BETWEEN 10 AND 29 OR id > 100000 ORDER BY id").await;
    let original = db.text_rows("SELECT id, v, s, 7 FROM t WHERE id BETWEEN 10 AND 29 OR id > 100000 ORDER BY id").await;
    assert_eq!(shadow, original, "the shadow follows the writes while the cut-over waits");
    assert_eq!(shadow.len(), 30);
    let expected = altered(&snapshot(&db).await);

    // Not swapped until the window opens.
    loop {
        let secs = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs_f64();
        if secs >= opens as f64 - 1.0 {
            break;
        }
        assert!(run.find(&["tables swapped"]).is_none(), "swapped before the window opened:\n{}", run.stderr_text());
        let has_extra: bool = db
            .client
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM information_schema.columns WHERE table_name = 't' AND column_name = 'extra')",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert!(!has_extra, "t has the new column before the window opened");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let swapped = run.wait_line(&["tables swapped"], Duration::from_secs(30)).await;
    let at = swapped.wall.duration_since(UNIX_EPOCH).unwrap().as_secs_f64();
    eprintln!("swapped {:.2} s after the window opened", at - opens as f64);
    assert!(at >= opens as f64, "swapped {:.2} s before the window opened", opens as f64 - at);
    assert!(at < opens as f64 + 10.0, "swapped {:.2} s after the window opened", at - opens as f64);
    let (status, _, log) = run.finish(Duration::from_secs(60)).await;
    assert!(status.success(), "exit {status}:\n{log}");
    assert!(log.contains("cut-over window open"), "{log}");
    assert_eq!(snapshot(&db).await, expected);
    db.assert_clean(&["t"]).await;
}
