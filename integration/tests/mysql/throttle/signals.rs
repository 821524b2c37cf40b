//! The other throttle signals: `--throttle-flag-file`, `--max-load`, `--throttle-query` engage
//! and release; `--critical-load` aborts with nothing left behind.

use super::*;

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
