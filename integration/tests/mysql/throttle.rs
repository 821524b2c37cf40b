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

// ---------------------------------------------------------------------------------------------
// Replica lag
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replica_apply_paused_stops_the_backfill_until_it_resumes() {
    let db = TestDb::new("thr_lag").await;
    let replica = Replica::connect().await;
    let _lease = replica.lease(&db).await;
    db.seed_t(ROWS).await;
    let seeded = replica.catch_up(&db, Duration::from_secs(120)).await;
    let before = db.seeded("t").await;
    let replica_dsn = replica.dsn_for(&db);
    // What the log shows of it: the DSN without password.
    let shown = replica_dsn.replace("shadowswap:shadowswap@", "shadowswap@");

    let mut cli = Spawned::new(alter_args(&db, &["--replica", &replica_dsn, "--max-lag", "1s", "--chunk-size", SLOW_CHUNK]));
    db.wait_for_shadow_rows(&mut cli, 3_000).await;
    // The replica also applies what every other test writes to the shared primary, so it may
    // lag (and throttle this run) on its own now and then: look at what is logged from here on.
    let mark = cli.mark();
    let paused_at = Instant::now();
    let paused = replica.pause_apply().await;
    let (stopped_after, rows) = assert_copy_stops(&db, &mut cli, paused_at, Duration::from_secs(5)).await;
    assert!(rows < u64::from(ROWS), "paused mid-backfill, not after it ({rows} rows)");
    let line = cli.wait_for_stderr_from(mark, &format!("replica {shown} lag "), Duration::from_secs(5)).await;
    assert!(line.contains("throttling") && line.contains("(max 1.0 s)"), "{line}");
    assert_copy_stays(&db, &mut cli, rows, Duration::from_secs(1)).await;

    // The application keeps writing meanwhile; the capture does not pause.
    db.exec(CHANGE).await;
    let mark = cli.mark();
    let resumed_at = Instant::now();
    paused.resume().await;
    cli.wait_for_stderr_from(mark, "throttling ended: copying resumes", Duration::from_secs(30)).await;
    let resumed_after = resumed_at.elapsed();
    let (status, out, err) = cli.finish(Duration::from_secs(120)).await;
    assert_migrated(&db, status, &out, &err, &with_change(before)).await;
    let blocked = writes_blocked_ms(&out);
    // Transitions are logged, not every check: a lag that keeps growing while paused is not a
    // new reason (pauses of its own, see above, are transitions, hence no exact count).
    assert!(!err.contains("throttling: reason changed"), "one signal, one reason:\n{err}");

    // The replica has all of it: the new definition, the same rows, and no heartbeat table.
    let caught_up = replica.catch_up(&db, Duration::from_secs(60)).await;
    assert_eq!(replica.tables(&db.name).await, ["t"], "tables on the replica");
    assert_eq!(replica.create_table(&db.name, "t").await, db.create_table("t").await);
    assert_eq!(replica.rows(&db.name, "t", "id").await, db.rows("t", "id").await);
    println!(
        "replica lag: seeding replicated in {} ms; backfill stopped {} ms after apply was paused (at {rows} of {ROWS} rows); \
         copying resumed {} ms after apply resumed; writes blocked {blocked} ms; replica caught up {} ms after the run",
        ms(seeded),
        ms(stopped_after),
        ms(resumed_after),
        ms(caught_up)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_unreachable_at_start_is_refused_before_anything_is_created() {
    let db = TestDb::new("thr_replica_refused").await;
    db.seed_t(100).await;
    let port = dead_port();
    let dead = format!("mysql://shadowswap:shadowswap@127.0.0.1:{port}/{}", db.name);
    let cli = Spawned::new(alter_args(&db, &["--replica", &dead]));
    let (status, _, err) = cli.finish(Duration::from_secs(60)).await;
    assert_eq!(status.code(), Some(1), "{err}");
    let last = err.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or_default();
    assert!(last.contains(&format!("127.0.0.1:{port}")), "names the replica: {last}");
    db.assert_clean(&["t"]).await;
    assert_eq!(db.count("t").await, Some(100));
}

/// A run through a proxy to the replica, mid-backfill, loses it: the proxy is cut
/// ([`Link::Refuse`]) or goes silent ([`Link::Stall`]); the log says the replica is unreachable,
/// nothing is copied while it is, and SIGTERM leaves nothing behind.
///
/// Every step waits on an event, never on the copy being slow enough to still be running: the
/// run starts held by a throttle flag file (the backfill has begun and copies nothing), the
/// replica is lost, the log shows the throttler counting it among its reasons, and only then is
/// the flag removed: copying must stay paused on the replica alone.
async fn replica_lost_mid_run(name: &str, link: Link) {
    let db = TestDb::new(name).await;
    let replica = Replica::connect().await;
    let _lease = replica.lease(&db).await;
    db.seed_t(ROWS).await;
    replica.catch_up(&db, Duration::from_secs(120)).await;
    let before = db.seeded("t").await;
    let proxy = Proxy::start(address(&replica.dsn)).await;
    let via_proxy = proxy.route(&replica.dsn_for(&db));
    let hold = flag_path(&format!("{}-hold", db.name));
    std::fs::write(&hold, b"hold").unwrap();
    let hold_arg = hold.display().to_string();

    let mut cli =
        Spawned::new(alter_args(&db, &["--replica", &via_proxy, "--chunk-size", SLOW_CHUNK, "--throttle-flag-file", &hold_arg]));
    let held = cli.wait_for_stderr(&format!("throttle flag file {hold_arg} exists"), Duration::from_secs(30)).await;
    assert!(held.contains("throttling: copying paused"), "{held}");
    assert_eq!(db.count("_t_new").await, Some(0), "held by the flag file");

    let mark = cli.mark();
    let lost_at = Instant::now();
    proxy.set(link);
    let shown = format!("replica mysql://shadowswap@127.0.0.1:{}/{} unreachable", proxy.port, db.name);
    let line = cli.wait_for_stderr_from(mark, &shown, Duration::from_secs(10)).await;
    assert!(line.contains("throttling: reason changed"), "{line}");
    let noticed = lost_at.elapsed();

    let mark = cli.mark();
    std::fs::remove_file(&hold).unwrap();
    let line = cli.wait_for_stderr_from(mark, "throttling: reason changed", Duration::from_secs(10)).await;
    assert!(line.contains(&shown) && !line.contains("throttle flag file"), "the replica alone keeps copying paused: {line}");
    assert_copy_stays(&db, &mut cli, 0, Duration::from_secs(3)).await;
    assert!(!cli.stderr_text().contains("throttling ended"), "copying resumed:\n{}", cli.stderr_text());
    assert!(!swapped(&db).await);

    cli.signal("TERM");
    let (status, _, err) = cli.finish(Duration::from_secs(60)).await;
    assert_eq!(status.code(), Some(130), "{err}");
    db.assert_clean(&["t"]).await;
    assert_eq!(db.seeded("t").await, before);
    drop(proxy);
    replica.catch_up(&db, Duration::from_secs(60)).await;
    assert_eq!(replica.tables(&db.name).await, ["t"], "tables on the replica");
    println!(
        "replica {} mid-run: a throttle reason {} ms later",
        if link == Link::Stall { "silent" } else { "gone" },
        ms(noticed)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_lost_mid_run_pauses_the_copy() {
    replica_lost_mid_run("thr_replica_lost", Link::Refuse).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_that_stops_answering_pauses_the_copy() {
    replica_lost_mid_run("thr_replica_silent", Link::Stall).await;
}

// ---------------------------------------------------------------------------------------------
// Flag file, load, throttle query, critical load
// ---------------------------------------------------------------------------------------------

/// A throttle flag file that exists when the run starts: nothing is copied (the throttler's first
/// verdict comes before the first chunk) until it is removed; an application write meanwhile
/// reaches the shadow through the capture. Waits on events only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_throttle_flag_file_pauses_the_copy_while_it_exists() {
    let db = TestDb::new("thr_flag").await;
    db.seed_t(ROWS).await;
    let before = db.seeded("t").await;
    let flag = flag_path(&db.name);
    std::fs::write(&flag, b"pause").unwrap();
    let flag_arg = flag.display().to_string();
    let mut cli = Spawned::new(alter_args(&db, &["--throttle-flag-file", &flag_arg, "--chunk-size", SLOW_CHUNK]));
    let line = cli.wait_for_stderr("throttling: copying paused", Duration::from_secs(30)).await;
    assert!(line.contains(&format!("throttle flag file {flag_arg} exists")), "{line}");
    assert_copy_stays(&db, &mut cli, 0, Duration::from_secs(1)).await;
    db.exec(CHANGE).await;

    let removed_at = Instant::now();
    std::fs::remove_file(&flag).unwrap();
    cli.wait_for_stderr("throttling ended: copying resumes", Duration::from_secs(10)).await;
    let resumed_after = removed_at.elapsed();
    let (status, out, err) = cli.finish(Duration::from_secs(120)).await;
    assert_migrated(&db, status, &out, &err, &with_change(before)).await;
    println!("flag file: nothing copied while it existed, resumed {} ms after it was removed", ms(resumed_after));
}

/// Start with a hold flag file of the test's own (nothing copied); engage a signal; once the
/// log shows it among the reasons (`needle`), remove the hold: the signal alone keeps copying
/// paused. Returns the run.
async fn held_then_engaged<F: std::future::Future<Output = ()>>(db: &TestDb, args: &[&str], needle: &str, engage: F) -> Spawned {
    let hold = flag_path(&format!("{}-hold", db.name));
    std::fs::write(&hold, b"hold").unwrap();
    let hold_arg = hold.display().to_string();
    let mut all = args.to_vec();
    all.extend(["--throttle-flag-file", &hold_arg, "--chunk-size", SLOW_CHUNK]);
    let mut cli = Spawned::new(alter_args(db, &all));
    let held = cli.wait_for_stderr(&format!("throttle flag file {hold_arg} exists"), Duration::from_secs(30)).await;
    assert!(held.contains("throttling: copying paused"), "{held}");
    let mark = cli.mark();
    engage.await;
    let line = cli.wait_for_stderr_from(mark, needle, Duration::from_secs(15)).await;
    assert!(line.contains("throttling: reason changed"), "{line}");
    let mark = cli.mark();
    std::fs::remove_file(&hold).unwrap();
    let line = cli.wait_for_stderr_from(mark, "throttling: reason changed", Duration::from_secs(10)).await;
    assert!(line.contains(needle) && !line.contains("throttle flag file"), "the signal alone keeps copying paused: {line}");
    assert_copy_stays(db, &mut cli, 0, Duration::from_secs(1)).await;
    assert!(!cli.stderr_text().contains("throttling ended"), "copying resumed:\n{}", cli.stderr_text());
    cli
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_load_pauses_the_copy_while_the_server_is_busy() {
    let db = TestDb::new("thr_max_load").await;
    db.seed_t(ROWS).await;
    let before = db.seeded("t").await;
    // Far above what the tests running beside this one keep running, far below 60 sleepers.
    let mut sleepers = Vec::new();
    let mut cli = held_then_engaged(&db, &["--max-load", "Threads_running=30"], "Threads_running = ", async {
        sleepers = busy_server(&db, 60);
    })
    .await;
    assert!(cli.stderr_text().contains("(limit 30)"), "{}", cli.stderr_text());
    let idle_at = Instant::now();
    idle_server(&db, sleepers).await;
    cli.wait_for_stderr("throttling ended: copying resumes", Duration::from_secs(30)).await;
    let resumed_after = idle_at.elapsed();
    let (status, out, err) = cli.finish(Duration::from_secs(120)).await;
    assert_migrated(&db, status, &out, &err, &before).await;
    println!("max load: nothing copied while 60 sessions were busy, resumed {} ms after they ended", ms(resumed_after));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_max_load_that_is_always_exceeded_never_copies() {
    let db = TestDb::new("thr_max_load_zero").await;
    db.seed_t(1_000).await;
    let before = db.seeded("t").await;
    // Threads_running counts the session reading it: it is never 0.
    let mut cli = Spawned::new(alter_args(&db, &["--max-load", "Threads_running=0"]));
    let line = cli.wait_for_stderr("throttling: copying paused", Duration::from_secs(30)).await;
    assert!(line.contains("Threads_running = ") && line.contains("(limit 0)"), "{line}");
    assert_copy_stays(&db, &mut cli, 0, Duration::from_secs(3)).await;
    cli.signal("TERM");
    let (status, _, err) = cli.finish(Duration::from_secs(60)).await;
    assert_eq!(status.code(), Some(130), "{err}");
    db.assert_clean(&["t"]).await;
    assert_eq!(db.seeded("t").await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_throttle_query_pauses_the_copy_while_it_returns_non_zero() {
    let db = TestDb::new("thr_query").await;
    db.seed_t(ROWS).await;
    db.exec("CREATE TABLE ctl (id INT PRIMARY KEY, paused INT NOT NULL); INSERT INTO ctl VALUES (1, 0)").await;
    let before = db.seeded("t").await;
    let query = format!("SELECT paused FROM `{}`.ctl WHERE id = 1", db.name);
    let mut cli = held_then_engaged(&db, &["--throttle-query", &query], "throttle query returned 1", async {
        db.exec("UPDATE ctl SET paused = 1").await;
    })
    .await;

    let cleared_at = Instant::now();
    db.exec("UPDATE ctl SET paused = 0").await;
    cli.wait_for_stderr("throttling ended: copying resumes", Duration::from_secs(10)).await;
    let resumed_after = cleared_at.elapsed();
    let (status, out, err) = cli.finish(Duration::from_secs(120)).await;
    assert_eq!(status.code(), Some(0), "{err}");
    assert_eq!(db.seeded("t").await, before);
    db.assert_clean(&["ctl", "t"]).await;
    assert!(out.starts_with("swapped "), "{out}");
    println!("throttle query: nothing copied while it returned 1, resumed {} ms after it returned 0", ms(resumed_after));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn critical_load_aborts_the_run_and_removes_what_it_created() {
    let db = TestDb::new("thr_critical").await;
    db.seed_t(1_000).await;
    let before = db.seeded("t").await;
    let ddl = db.create_table("t").await;
    let cli = Spawned::new(alter_args(&db, &["--critical-load", "Threads_running=0"]));
    let (status, _, err) = cli.finish(Duration::from_secs(60)).await;
    assert_eq!(status.code(), Some(1), "{err}");
    let last = err.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or_default();
    assert!(last.contains("critical load: Threads_running = ") && last.contains("(limit 0)"), "{last}");
    assert!(last.contains("removed"), "says nothing is left: {last}");
    db.assert_clean(&["t"]).await;
    assert_eq!(db.create_table("t").await, ddl);
    assert_eq!(db.seeded("t").await, before);
}

// ---------------------------------------------------------------------------------------------
// Cut-over behind a long transaction
// ---------------------------------------------------------------------------------------------

/// Lock timeout of one cut-over attempt here, and what a queued statement may wait beyond it.
const LOCK_TIMEOUT: Duration = Duration::from_secs(1);
const MARGIN: Duration = Duration::from_millis(1000);

/// The application's plain read, and a write to a row no blocker holds (a no-op, so the data
/// stays as it was; the capture trigger still runs).
const PROBE_READ: &str = "SELECT COUNT(*) FROM t WHERE id BETWEEN 100 AND 200";
const PROBE_WRITE: &str = "UPDATE t SET u = u WHERE id = 2";
const PROBE_EVERY: Duration = Duration::from_millis(50);

/// Stop the probes; assert none waited longer than the lock timeout (plus margin); return
/// (count, longest, 99th percentile) per probe for the report.
async fn probe_report(
    stop: CancellationToken,
    probes: Vec<(&str, JoinHandle<Vec<Duration>>)>,
) -> Vec<(String, usize, Duration, Duration)> {
    stop.cancel();
    let mut out = Vec::new();
    for (what, p) in probes {
        let mut l = p.await.unwrap();
        assert!(l.len() >= 10, "{what}: only {} probes ran", l.len());
        l.sort();
        let longest = *l.last().unwrap();
        let p99 = l[(l.len() * 99 / 100).min(l.len() - 1)];
        assert!(longest <= LOCK_TIMEOUT + MARGIN, "a {what} on t waited {longest:?} during the cut-over");
        out.push((what.to_string(), l.len(), longest, p99));
    }
    out
}

/// Start a run that waits postponed (the backfill and the checksum done), so the test can open
/// its transaction after the triggers exist (installing them needs the same lock).
async fn postponed_run(db: &TestDb, flag: &std::path::Path, retries: &str) -> Spawned {
    std::fs::write(flag, b"postpone").unwrap();
    let flag_arg = flag.display().to_string();
    let mut cli = Spawned::new(alter_args(
        db,
        &["--postpone-cut-over-flag-file", &flag_arg, "--cut-over-lock-timeout", "1s", "--cut-over-retries", retries],
    ));
    cli.wait_for_stderr("cut-over postponed", Duration::from_secs(60)).await;
    cli
}

/// A run waiting to cut over behind `blocker` (an open transaction that ran a statement on `t`),
/// and the probes measuring other sessions meanwhile.
struct BlockedCutOver {
    cli: Spawned,
    blocker: Conn,
    stop: CancellationToken,
    probes: Vec<(&'static str, JoinHandle<Vec<Duration>>)>,
}

/// Postpone a run of the seeded `db` with `retries` cut-over retries ([`postponed_run`]), open a
/// transaction running `stmt` on `t`, start the probes, and let the run go once the transaction
/// is older than the lock timeout: returns when the controller says it waits for the transaction,
/// naming its session.
async fn blocked_cut_over(db: &TestDb, retries: &str, stmt: &str) -> BlockedCutOver {
    let flag = flag_path(&db.name);
    let mut cli = postponed_run(db, &flag, retries).await;
    let (blocker, blocker_id) = db.open_transaction(stmt).await;
    let stop = CancellationToken::new();
    let probes = vec![
        ("SELECT", db.probe(PROBE_READ, PROBE_EVERY, stop.clone())),
        ("UPDATE", db.probe(PROBE_WRITE, PROBE_EVERY, stop.clone())),
    ];
    // Older than the lock timeout: a transaction the swap would otherwise queue behind.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    std::fs::remove_file(&flag).unwrap();
    let line = cli.wait_for_stderr("cut-over waits instead of queueing", Duration::from_secs(30)).await;
    assert!(line.contains(&format!("session {blocker_id} ")), "names the blocking session {blocker_id}: {line}");
    BlockedCutOver { cli, blocker, stop, probes }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cut_over_waits_for_a_long_transaction_instead_of_queueing_behind_it() {
    let db = TestDb::new("thr_blocker_ends").await;
    db.seed_t(2_000).await;
    let before = db.seeded("t").await;
    // A report reading the table in a long transaction: it holds t's metadata lock, which the
    // swap needs; a RENAME queued behind it would block every query on t.
    let BlockedCutOver { mut cli, mut blocker, stop, probes } = blocked_cut_over(&db, "3", "SELECT COUNT(*) FROM t").await;
    // It waits: no attempt while the transaction is open.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(cli.line("cut-over attempt").is_none(), "attempted while the transaction was open:\n{}", cli.stderr_text());
    assert!(!swapped(&db).await);
    db.exec(CHANGE).await; // still in sync meanwhile

    let committed_at = Instant::now();
    blocker.query_drop("COMMIT").await.unwrap();
    cli.wait_for_stderr("tables swapped", Duration::from_secs(30)).await;
    let swapped_after = committed_at.elapsed();
    let (status, out, err) = cli.finish(Duration::from_secs(60)).await;
    let report = probe_report(stop, probes).await;
    drop(blocker);
    assert_migrated(&db, status, &out, &err, &with_change(before)).await;
    assert!(err.contains("the blocking transactions ended"), "{err}");
    assert!(out.contains("cut-over in 1 attempt(s)"), "one attempt, after the wait: {out}");
    let blocked = writes_blocked_ms(&out);
    assert!(blocked < ms(LOCK_TIMEOUT) as u64, "writes blocked {blocked} ms");
    println!(
        "blocker commits: swapped {} ms after the commit, writes blocked {blocked} ms; probes (n, longest, p99): {report:?}",
        ms(swapped_after)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cut_over_gives_up_cleanly_when_the_transaction_outlasts_its_retries() {
    let db = TestDb::new("thr_blocker_stays").await;
    db.seed_t(2_000).await;
    let before = db.seeded("t").await;
    let ddl = db.create_table("t").await;
    // A locking read left open (row 1 only; the probes use other rows).
    let BlockedCutOver { mut cli, mut blocker, stop, probes } =
        blocked_cut_over(&db, "0", "SELECT id FROM t WHERE id = 1 FOR UPDATE").await;
    // The blocker wait (30 s by default) runs out; one attempt under the lock timeout; no retry.
    cli.wait_for_stderr("still open after the blocker wait; attempting", Duration::from_secs(45)).await;
    cli.wait_for_stderr("run failed before the swap", Duration::from_secs(30)).await;
    // Removing the triggers needs the same lock: the transaction ends here, as an operator would
    // end it after reading the message.
    tokio::time::sleep(Duration::from_secs(1)).await;
    blocker.query_drop("ROLLBACK").await.unwrap();
    drop(blocker);

    let (status, _, err) = cli.finish(Duration::from_secs(90)).await;
    let report = probe_report(stop, probes).await;
    assert_eq!(status.code(), Some(1), "{err}");
    let last = err.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or_default();
    assert!(last.contains("cut-over failed after 1 attempts"), "{last}");
    db.assert_clean(&["t"]).await;
    assert_eq!(db.create_table("t").await, ddl);
    assert_eq!(db.seeded("t").await, before);
    db.exec("INSERT INTO t VALUES (1000001, 'after', 1, 'p')").await;
    assert_eq!(db.count("t").await, Some(2_001), "the original still serves");
    println!("blocker outlasts the retries: probes (n, longest, p99): {report:?}");
}

// ---------------------------------------------------------------------------------------------
// Cut-over window
// ---------------------------------------------------------------------------------------------

fn unix_now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs_f64()
}

fn hh_mm(unix_secs: u64) -> String {
    let minute_of_day = (unix_secs / 60) % 1440;
    format!("{:02}:{:02}", minute_of_day / 60, minute_of_day % 60)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outside_its_cut_over_window_the_run_stays_in_sync_and_swaps_when_it_opens() {
    let db = TestDb::new("thr_window").await;
    db.seed_t(2_000).await;
    let before = db.seeded("t").await;
    // The next minute boundary (the one after, when it is too close to reach the wait first),
    // for two minutes, in UTC.
    let now = unix_now();
    let mut start = (now as u64 / 60 + 1) * 60;
    if start as f64 - now < 10.0 {
        start += 60;
    }
    let window = format!("{}-{}", hh_mm(start), hh_mm(start + 120));
    let mut cli = Spawned::new(alter_args(&db, &["--cut-over-window", &window]));
    let line = cli.wait_for_stderr("cut-over waits for its window", Duration::from_secs(60)).await;
    assert!(line.contains(&window), "{line}");
    assert!(unix_now() < start as f64, "the backfill took until the window opened; nothing was tested");

    // Postponed and in sync: the application's writes reach the shadow.
    db.exec(CHANGE).await;
    let shadow: Vec<(i64, String)> = {
        let mut c = db.pool.get_conn().await.unwrap();
        c.query("SELECT id, a FROM _t_new WHERE id IN (7, 9, 1000000) ORDER BY id").await.unwrap()
    };
    assert_eq!(shadow, [(7, "changed".to_string()), (1_000_000, "inserted".to_string())]);

    // Watch for the swap.
    let swapped_at = loop {
        if swapped(&db).await {
            break unix_now();
        }
        assert!(cli.running() || swapped(&db).await, "shadowswap exited before swapping:\n{}", cli.stderr_text());
        assert!(unix_now() < start as f64 + 60.0, "not swapped a minute into the window:\n{}", cli.stderr_text());
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(swapped_at >= start as f64, "swapped at {swapped_at}, before the window opened at {start}");
    let (status, out, err) = cli.finish(Duration::from_secs(60)).await;
    assert_migrated(&db, status, &out, &err, &with_change(before)).await;
    assert!(err.contains("cut-over window open"), "{err}");
    println!("cut-over window {window}: swapped {:.2} s after it opened", swapped_at - start as f64);
}

// ---------------------------------------------------------------------------------------------
// How blockers are found, with and without the metadata_lock_info plugin
// ---------------------------------------------------------------------------------------------

/// Both ways the MariaDB dialect finds the transactions a cut-over would queue behind, on a real
/// server: with `information_schema.METADATA_LOCK_INFO` (the plugin `scripts/mariadb.sh` loads),
/// only sessions holding the table's metadata lock; without it, every InnoDB transaction open
/// longer than the lock timeout. Run on the replica (read-only queries, open read transactions),
/// where unloading the plugin for a moment disturbs no test running on the primary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blockers_are_found_with_and_without_the_metadata_lock_plugin() {
    use shadowswap_engine::{Dialect, Signals};

    let db = TestDb::new("thr_blocker_paths").await;
    let replica = Replica::connect().await;
    let _lease = replica.lease(&db).await;
    db.exec("CREATE TABLE t (id INT PRIMARY KEY); CREATE TABLE other (id INT PRIMARY KEY); INSERT INTO t VALUES (1); INSERT INTO other VALUES (1)")
        .await;
    replica.catch_up(&db, Duration::from_secs(60)).await;
    let dialect = shadowswap_mysql::MySql::connect(&replica.dsn_for(&db), None).await.unwrap();
    let names = dialect.names(&db.table("t"));
    // root: the application account cannot change plugins on the read-only replica.
    let root_dsn = format!("mysql://root@{}", replica.dsn.rsplit('@').next().unwrap());
    let mut root = Conn::new(mysql_async::Opts::from_url(&root_dsn).unwrap()).await.unwrap();

    let replica_db = TestDb { name: db.name.clone(), dsn: replica.dsn_for(&db), pool: replica.pool.clone() };
    let (on_t, on_t_id) = replica_db.open_transaction(&format!("SELECT COUNT(*) FROM `{}`.t", db.name)).await;
    let (elsewhere, elsewhere_id) = replica_db.open_transaction(&format!("SELECT COUNT(*) FROM `{}`.other", db.name)).await;
    tokio::time::sleep(Duration::from_millis(2_500)).await;

    let precise = dialect.cut_over_blockers(&names, Duration::from_secs(1)).await.unwrap();
    let unload = root.query_drop("UNINSTALL SONAME 'metadata_lock_info'").await;
    let fallback = dialect.cut_over_blockers(&names, Duration::from_secs(1)).await;
    // Load it again whatever happened (scripts/mariadb.sh start replica would, too).
    root.query_drop("INSTALL SONAME 'metadata_lock_info'").await.unwrap();
    unload.unwrap();
    let fallback = fallback.unwrap();
    let young = dialect.cut_over_blockers(&names, Duration::from_secs(30)).await.unwrap();
    drop((on_t, elsewhere));

    let has = |list: &[String], id: u64| list.iter().any(|b| b.starts_with(&format!("session {id} ")));
    assert!(has(&precise, on_t_id) && !has(&precise, elsewhere_id), "only t's lock holder: {precise:?}");
    assert!(precise.iter().any(|b| b.contains("MDL_SHARED_READ on the table")), "{precise:?}");
    assert!(has(&fallback, on_t_id) && has(&fallback, elsewhere_id), "every long transaction: {fallback:?}");
    assert!(young.is_empty(), "transactions younger than the lock timeout do not count: {young:?}");
    println!("blockers with the plugin: {precise:?}; without: {fallback:?}");
}
