//! The cut-over controller: a long transaction holding the table (the controller waits instead
//! of queueing, then swaps or gives up cleanly), the cut-over window, and how blockers are found.

use super::*;

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
