//! The other throttle signals: `--throttle-flag-file`, `--max-load active_backends=N`,
//! `--throttle-query` engage and release; `--critical-load` aborts with nothing left behind.

use super::*;

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
    let mut run = Spawned::watched(name, alter_args(db, &all));
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
        alter_args(&db, &["--chunk-size", "100", "--replica", &rdsn, "--critical-load", "active_backends=40"]),
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
