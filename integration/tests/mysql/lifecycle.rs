//! The life of a run, end to end against the real server and (mostly) the real binary: killed
//! and terminated mid-backfill, postponed cut-over, the old table kept or dropped, renamed
//! columns, a new unique key meeting duplicates during the run, exit status and summary,
//! progress lines, and a cut-over held up by a long transaction.

use std::os::unix::process::ExitStatusExt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use shadowswap_engine::{Error, Outcome, Runner};
use shadowswap_integration::cli::{run_cli, stderr, stdout, Spawned};
use shadowswap_integration::mysql::TestDb;
use shadowswap_integration::run::{chunked_config, postpone_flag};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// A rebuild (a plain ADD COLUMN is instant on MariaDB 10.11).
const ALTER: &str = "ADD COLUMN extra INT NULL, FORCE";

fn alter_args<'a>(db: &'a TestDb, alter: &'a str) -> Vec<&'a str> {
    vec!["alter", "--dsn", &db.dsn, "--table", "t", "--alter", alter, "--execute"]
}

fn capture_triggers() -> Vec<String> {
    ["_t_ssw_del", "_t_ssw_ins", "_t_ssw_upd"].map(String::from).to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_mid_backfill_leaves_a_state_that_cleanup_removes() {
    let db = TestDb::new("lc_killed").await;
    db.seed_t(3000).await;
    let before = db.seeded("t").await;

    let mut args = alter_args(&db, ALTER);
    args.extend(["--chunk-size", "1"]);
    let mut cli = Spawned::new(&args);
    db.wait_for_shadow_rows(&mut cli, 50).await;
    cli.signal("KILL");
    let (status, _, err) = cli.finish(Duration::from_secs(10)).await;
    assert_eq!(status.signal(), Some(9), "killed: {status:?}\n{err}");

    // What a killed run leaves (tables listed in the server's collation order): the triggers, a partial shadow and the checkpoint; the original is untouched.
    assert_eq!(db.tables().await, ["t", "_t_new", "_t_ssw_ckpt"]);
    assert_eq!(db.triggers().await, capture_triggers());
    assert_eq!(db.seeded("t").await, before, "the original is unchanged");
    let copied = db.count("_t_new").await.unwrap();
    assert!((50..3000).contains(&copied), "killed mid-backfill: {copied} rows copied");

    // The application keeps writing; the orphaned triggers still replay into the shadow.
    db.exec(
        "INSERT INTO t VALUES (5000, 'new', 5000, 'p'); \
         UPDATE t SET a = 'copied-upd' WHERE id = 10; \
         UPDATE t SET a = 'uncopied-upd' WHERE id = 2990; \
         DELETE FROM t WHERE id = 20",
    )
    .await;
    let shadow = db.seeded("_t_new").await;
    let find = |id: i64| shadow.iter().find(|r| r.0 == id).map(|r| r.1.clone());
    assert_eq!(find(5000).as_deref(), Some("new"));
    assert_eq!(find(10).as_deref(), Some("copied-upd"));
    assert_eq!(find(2990).as_deref(), Some("uncopied-upd"));
    assert_eq!(find(20), None);
    let expected = db.seeded("t").await;
    assert_eq!(expected.len(), 3000);

    let cleanup_args = ["cleanup", "--dsn", &db.dsn, "--table", "t"];
    let out = run_cli(&cleanup_args, &[]).await;
    assert_eq!(out.status.code(), Some(0), "cleanup: {}", stderr(&out));
    let said = stdout(&out);
    for name in ["_t_ssw_ins", "_t_ssw_upd", "_t_ssw_del", "_t_new"] {
        assert!(said.contains(name), "cleanup names {name}: {said}");
    }
    db.assert_clean(&["t"]).await;
    assert_eq!(db.seeded("t").await, expected, "cleanup leaves the original's rows alone");

    let out = run_cli(&cleanup_args, &[]).await;
    assert_eq!(out.status.code(), Some(0), "second cleanup: {}", stderr(&out));
    assert!(stdout(&out).contains("nothing to clean up"), "{}", stdout(&out));

    let out = run_cli(&alter_args(&db, ALTER), &[]).await;
    assert_eq!(out.status.code(), Some(0), "a new run after cleanup: {}", stderr(&out));
    db.assert_clean(&["t"]).await;
    assert!(db.create_table("t").await.contains("`extra`"));
    assert_eq!(db.seeded("t").await, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_mid_backfill_removes_what_the_run_created_and_exits_130() {
    let db = TestDb::new("lc_sigterm").await;
    db.seed_t(3000).await;
    let before = db.seeded("t").await;
    let ddl = db.create_table("t").await;

    let mut args = alter_args(&db, ALTER);
    args.extend(["--chunk-size", "1"]);
    let mut cli = Spawned::new(&args);
    db.wait_for_shadow_rows(&mut cli, 50).await;
    cli.signal("TERM");
    let (status, _, err) = cli.finish(Duration::from_secs(30)).await;
    assert_eq!(status.code(), Some(130), "{err}");
    assert!(err.contains("SIGTERM") && err.contains("cancelled"), "{err}");

    db.assert_clean(&["t"]).await;
    assert_eq!(db.create_table("t").await, ddl);
    assert_eq!(db.seeded("t").await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postpone_flag_file_holds_the_cut_over_in_sync_until_removed() {
    let db = TestDb::new("lc_postpone").await;
    db.seed_t(200).await;
    let ddl = db.create_table("t").await;
    let flag = postpone_flag(&db.name);

    let mut args = alter_args(&db, ALTER);
    let flag_arg = flag.display().to_string();
    args.extend(["--postpone-cut-over-flag-file", &flag_arg]);
    let mut cli = Spawned::new(&args);
    cli.wait_for_stderr("cut-over postponed", Duration::from_secs(60)).await;

    // A few seconds in sync: nothing swaps, and writes reach the shadow.
    for i in 0..6i64 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(cli.running(), "the run must wait while the flag file exists:\n{}", cli.stderr_text());
        assert_eq!(db.tables().await, ["t", "_t_new", "_t_ssw_ckpt"]);
        assert_eq!(db.triggers().await, capture_triggers());
        assert_eq!(db.create_table("t").await, ddl, "not swapped while postponed");
        db.exec(&format!(
            "INSERT INTO t VALUES ({0}, 'during', {0}, 'p'); UPDATE t SET a = 'during' WHERE id = {1}; \
             DELETE FROM t WHERE id = {2}",
            1000 + i,
            i + 1,
            100 + i
        ))
        .await;
    }
    let expected = db.seeded("t").await;
    assert_eq!(db.seeded("_t_new").await, expected, "the shadow is in sync");

    std::fs::remove_file(&flag).unwrap();
    let removed = Instant::now();
    let (status, out, err) = cli.finish(Duration::from_secs(30)).await;
    assert_eq!(status.code(), Some(0), "{err}");
    assert!(removed.elapsed() < Duration::from_secs(5), "cut over quickly after the flag went: {:?}", removed.elapsed());
    assert!(out.contains("swapped"), "{out}");
    db.assert_clean(&["t"]).await;
    assert!(db.create_table("t").await.contains("`extra` int(11) DEFAULT NULL"));
    assert_eq!(db.seeded("t").await, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_old_table_keeps_the_original_definition_and_rows() {
    let db = TestDb::new("lc_keep_old").await;
    db.seed_t(100).await;
    let ddl = db.create_table("t").await;
    let before = db.seeded("t").await;

    let mut args = alter_args(&db, ALTER);
    args.push("--keep-old-table");
    let out = run_cli(&args, &[]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("old table kept as"), "{}", stdout(&out));

    db.assert_clean(&["t", "_t_old"]).await;
    assert_eq!(db.create_table("_t_old").await, ddl.replacen("CREATE TABLE `t`", "CREATE TABLE `_t_old`", 1));
    assert_eq!(db.seeded("_t_old").await, before);
    assert!(db.create_table("t").await.contains("`extra`"));
    assert_eq!(db.seeded("t").await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_old_table_is_dropped_by_default() {
    let db = TestDb::new("lc_drop_old").await;
    db.seed_t(100).await;
    let before = db.seeded("t").await;

    let out = run_cli(&alter_args(&db, ALTER), &[]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("old table dropped"), "{}", stdout(&out));
    db.assert_clean(&["t"]).await;
    assert_eq!(db.seeded("t").await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renamed_column_carries_its_data_with_approval() {
    let db = TestDb::new("lc_rename").await;
    db.seed_t(100).await;
    db.exec("UPDATE t SET a = 'é🦀 ' WHERE id = 7").await;
    let before: Vec<(i64, String)> = db.seeded("t").await.into_iter().map(|r| (r.0, r.1)).collect();

    let mut args = alter_args(&db, "CHANGE a b VARCHAR(20)");
    args.push("--approve-renamed-columns");
    let out = run_cli(&args, &[]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    db.assert_clean(&["t"]).await;
    let ddl = db.create_table("t").await;
    assert!(ddl.contains("`b` varchar(20)") && !ddl.contains("`a`"), "{ddl}");
    let mut c = db.pool.get_conn().await.unwrap();
    let after: Vec<(i64, String)> = c.query("SELECT id, b FROM t ORDER BY id").await.unwrap();
    assert_eq!(after, before);
}

/// A fresh 3,000-row table `t` (`name`: the database) and an in-process run adding unique key
/// `uk_u (u)` one row per chunk, returned once it copied 20 rows and is still far from row 2000:
/// the test can write while the backfill goes on.
async fn unique_key_run_under_way(name: &str) -> (TestDb, JoinHandle<shadowswap_engine::Result<Outcome>>) {
    let db = TestDb::new(name).await;
    db.seed_t(3000).await;
    let cfg = chunked_config(Some(1));
    let runner = Arc::new(Runner::new(db.dialect().await, cfg));
    let mut progress = runner.progress();
    let run = tokio::spawn({
        let (runner, table) = (runner.clone(), db.table("t"));
        async move { runner.run(&table, "ADD UNIQUE KEY uk_u (u)").await }
    });
    tokio::time::timeout(Duration::from_secs(60), progress.wait_for(|p| p.rows_copied > 20))
        .await
        .expect("the backfill makes progress")
        .expect("progress channel open");
    let copied_upto: i64 = db.scalar("SELECT MAX(id) FROM _t_new").await;
    assert!(copied_upto < 2000, "rows from 2000 on must not be copied yet (copied up to {copied_upto})");
    (db, run)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_unique_key_fails_on_a_duplicate_that_appears_during_the_backfill() {
    let (db, run) = unique_key_run_under_way("lc_uk_backstop").await;

    // Row 5 is copied: the trigger rewrites it in the shadow with u = 2900, which no shadow row
    // has yet. The original now holds u = 2900 twice; preflight could not have seen it.
    db.exec("UPDATE t SET u = 2900 WHERE id = 5").await;
    assert_eq!(db.scalar::<i64>("SELECT u FROM _t_new WHERE id = 5").await, 2900);

    let err = tokio::time::timeout(Duration::from_secs(120), run).await.expect("run ends").unwrap().unwrap_err();
    match &err {
        Error::DuplicateKey { key, value, .. } => {
            assert_eq!(key, "uk_u");
            assert!(value.contains("2900"), "{value}");
        }
        other => panic!("expected a duplicate key error, got {other:?}"),
    }
    let msg = err.to_string();
    assert!(msg.contains("uk_u") && msg.contains("2900"), "{msg}");

    db.assert_clean(&["t"]).await;
    let rows = db.seeded("t").await;
    assert_eq!(rows.len(), 3000, "no row lost");
    for (id, a, u, pad) in rows {
        let expected_u = if id == 5 { 2900 } else { id };
        assert_eq!((a, u, pad), (format!("a{id}"), expected_u, "x".repeat(40)), "row {id}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_violating_the_new_unique_key_is_rejected_not_lost() {
    let (db, run) = unique_key_run_under_way("lc_uk_reject").await;
    let before = db.seeded("t").await;

    // Each statement gives a row the `u` of an already copied row: the capture trigger's insert
    // into the shadow hits uk_u, so the application's statement fails as a whole.
    let mut app = db.pool.get_conn().await.unwrap();
    for stmt in [
        "UPDATE t SET u = 3 WHERE id = 10",   // a copied row
        "UPDATE t SET u = 4 WHERE id = 2500", // a row the backfill has not reached
        "INSERT INTO t VALUES (5000, 'new', 6, 'p')",
    ] {
        match app.query_drop(stmt).await {
            Err(mysql_async::Error::Server(e)) => {
                assert_eq!(e.code, 1062, "{stmt}: {e:?}");
                assert!(e.message.contains("uk_u"), "{stmt}: {}", e.message);
            }
            other => panic!("{stmt}: expected error 1062, got {other:?}"),
        }
    }
    assert_eq!(db.seeded("t").await, before, "the rejected statements changed nothing");

    // Writes that keep u unique go through.
    app.query_drop("UPDATE t SET u = 100000, a = 'moved' WHERE id = 7").await.unwrap();
    app.query_drop("INSERT INTO t VALUES (5001, 'new', 5001, 'p')").await.unwrap();
    drop(app);
    let expected = db.seeded("t").await;

    let outcome = tokio::time::timeout(Duration::from_secs(120), run).await.expect("run ends").unwrap();
    assert!(matches!(outcome, Ok(Outcome::Swapped(_))), "{outcome:?}");
    db.assert_clean(&["t"]).await;
    assert!(db.create_table("t").await.contains("UNIQUE KEY `uk_u` (`u`)"));
    assert_eq!(db.seeded("t").await, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_status_and_summary_in_text_and_json() {
    let db = TestDb::new("lc_summary").await;
    db.seed_t(100).await;

    let out = run_cli(&alter_args(&db, ALTER), &[]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    let summary = text.lines().find(|l| l.starts_with("swapped ")).unwrap_or_else(|| panic!("no summary: {text}"));
    assert!(summary.contains(&format!("{}.t", db.name)) && summary.contains("100 rows copied"), "{summary}");

    let mut args = vec!["--log-format", "json"];
    args.extend(alter_args(&db, "ADD COLUMN extra2 INT NULL, FORCE"));
    let out = run_cli(&args, &[]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let json = stdout(&out).trim().to_string();
    assert_eq!(json.lines().count(), 1, "one JSON object on stdout: {json}");
    // The server's JSON functions judge the JSON (the tests need no JSON parser of their own).
    let mut c = db.pool.get_conn().await.unwrap();
    let (valid, rows, swapped): (i64, Option<String>, Option<String>) = c
        .exec_first("SELECT JSON_VALID(?), JSON_VALUE(?, '$.rows_copied'), JSON_EXTRACT(?, '$.swapped')", (&json, &json, &json))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(valid, 1, "valid JSON: {json}");
    assert_eq!(rows.as_deref(), Some("100"), "{json}");
    assert_eq!(swapped.as_deref(), Some("true"), "{json}");
    for line in stderr(&out).lines().filter(|l| !l.trim().is_empty()) {
        let valid: Option<i64> = c.exec_first("SELECT JSON_VALID(?)", (line,)).await.unwrap();
        assert_eq!(valid, Some(1), "JSON log line: {line}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_is_logged_when_stderr_is_not_a_terminal() {
    let db = TestDb::new("lc_progress").await;
    db.seed_t(3000).await;
    let mut args = alter_args(&db, ALTER);
    args.extend(["--chunk-size", "1"]);
    let started = Instant::now();
    let out = run_cli(&args, &[]).await;
    let took = started.elapsed();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(took > Duration::from_secs(6), "the run must outlast the 5 s log interval (took {took:?})");
    let line = err.lines().find(|l| l.contains("progress:")).unwrap_or_else(|| panic!("no progress line:\n{err}"));
    assert!(line.contains("rows/s") && line.contains(" rows=") && line.contains("rows_per_s="), "{line}");
}

/// The application's plain read, and a write to a row no blocker holds (a no-op, so the data
/// stays as it was), each run every [`PROBE_EVERY`] by another session.
const PROBE_READ: &str = "SELECT COUNT(*) FROM t";
const PROBE_WRITE: &str = "UPDATE t SET u = u WHERE id = 2";
const PROBE_EVERY: Duration = Duration::from_millis(100);

/// The longest of a probe's waits, and how many ran.
fn longest(latencies: Vec<Duration>) -> (Duration, usize) {
    (latencies.iter().max().copied().unwrap_or_default(), latencies.len())
}

/// Start a run that waits postponed, so the test can take its lock after the triggers exist
/// (installing them needs the same metadata lock).
async fn postponed_run(db: &TestDb, flag: &std::path::Path, retries: &str) -> Spawned {
    let mut args = alter_args(db, ALTER);
    let flag_arg = flag.display().to_string();
    // No blocker wait: these tests are about attempts that time out on the lock (the controller's
    // wait for blockers is tested in throttle.rs).
    args.extend([
        "--postpone-cut-over-flag-file",
        &flag_arg,
        "--cut-over-lock-timeout",
        "1s",
        "--cut-over-retries",
        retries,
        "--cut-over-blocker-wait",
        "0s",
    ]);
    let mut cli = Spawned::new(&args);
    cli.wait_for_stderr("cut-over postponed", Duration::from_secs(60)).await;
    cli
}

/// Lock timeout of one cut-over attempt in these tests, and what a queued statement may wait
/// beyond it. A probe that queued at all (waited at least `QUEUED`) shows the measurement
/// covered an attempt.
const LOCK_TIMEOUT: Duration = Duration::from_secs(1);
const MARGIN: Duration = Duration::from_millis(1000);
const QUEUED: Duration = Duration::from_millis(300);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cut_over_blocked_by_a_long_transaction_fails_cleanly_after_its_retries() {
    let db = TestDb::new("lc_cutover_fail").await;
    db.seed_t(200).await;
    let before = db.seeded("t").await;
    let ddl = db.create_table("t").await;
    let flag = postpone_flag(&db.name);
    let mut cli = postponed_run(&db, &flag, "2").await;

    // A locking read left open: it holds the metadata lock on `t` that RENAME TABLE needs, so
    // every cut-over attempt waits on `t`, and statements on `t` queue behind the attempt.
    let (mut blocker, _) = db.open_transaction("SELECT id FROM t WHERE id = 1 FOR UPDATE").await;
    let stop = CancellationToken::new();
    let reads = db.probe(PROBE_READ, PROBE_EVERY, stop.clone());
    let writes = db.probe(PROBE_WRITE, PROBE_EVERY, stop.clone());
    std::fs::remove_file(&flag).unwrap();
    cli.wait_for_stderr("attempt=3", Duration::from_secs(60)).await;
    // The run gives up; its undo (dropping the triggers) needs the same lock, so the
    // transaction ends here, as an operator would end it after reading the message.
    cli.wait_for_stderr("run failed before the swap", Duration::from_secs(30)).await;
    stop.cancel();
    blocker.query_drop("ROLLBACK").await.unwrap();
    drop(blocker);

    let (status, _, err) = cli.finish(Duration::from_secs(60)).await;
    assert_eq!(status.code(), Some(1), "{err}");
    let last = err.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or_default();
    assert!(last.contains("cut-over failed after 3 attempts"), "{last}");
    assert!(last.contains("long transaction") && last.contains("SHOW PROCESSLIST"), "says what to do: {last}");

    for (what, probe) in [("SELECT", reads), ("UPDATE", writes)] {
        let (longest, n) = longest(probe.await.unwrap());
        assert!(n >= 5, "{n} probes");
        assert!(longest >= QUEUED, "a {what} ran during an attempt and queued behind it ({longest:?})");
        assert!(longest <= LOCK_TIMEOUT + MARGIN, "a plain {what} waited {longest:?} behind a cut-over attempt");
    }

    db.assert_clean(&["t"]).await;
    assert_eq!(db.create_table("t").await, ddl);
    assert_eq!(db.seeded("t").await, before);
    db.exec("INSERT INTO t VALUES (9999, 'after', 9999, 'p'); UPDATE t SET a = 'after' WHERE id = 2").await;
    assert_eq!(db.count("t").await, Some(201), "the original still serves");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cut_over_retries_until_the_long_transaction_commits() {
    let db = TestDb::new("lc_cutover_retry").await;
    db.seed_t(200).await;
    let flag = postpone_flag(&db.name);
    let mut cli = postponed_run(&db, &flag, "10").await;

    // An uncommitted write: through the capture trigger it also holds the shadow's metadata
    // lock, which RENAME TABLE requests first, so attempts wait on the shadow; writes to `t`
    // (whose triggers open the shadow) queue behind them, plain reads of `t` do not.
    let (mut blocker, _) = db.open_transaction("UPDATE t SET a = 'blocker' WHERE id = 1").await;
    let stop = CancellationToken::new();
    let reads = db.probe(PROBE_READ, PROBE_EVERY, stop.clone());
    let writes = db.probe(PROBE_WRITE, PROBE_EVERY, stop.clone());
    std::fs::remove_file(&flag).unwrap();
    // Held until the second attempt starts: the first (tries without queueing for the lock
    // timeout, then one queued wait as long) timed out.
    cli.wait_for_stderr("attempt=2", Duration::from_secs(60)).await;
    blocker.query_drop("COMMIT").await.unwrap();
    drop(blocker);

    let (status, out, err) = cli.finish(Duration::from_secs(60)).await;
    stop.cancel();
    assert_eq!(status.code(), Some(0), "{err}");
    let attempts: u32 = out
        .split("cut-over in ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("attempts in the summary: {out}"));
    assert!(attempts >= 2, "the first attempt timed out: {out}");
    for (what, probe) in [("SELECT", reads), ("UPDATE", writes)] {
        let (longest, _) = longest(probe.await.unwrap());
        assert!(longest <= LOCK_TIMEOUT + MARGIN, "a plain {what} waited {longest:?} behind a cut-over attempt");
        if what == "UPDATE" {
            assert!(longest >= QUEUED, "an UPDATE ran during an attempt and queued behind it ({longest:?})");
        }
    }

    db.assert_clean(&["t"]).await;
    assert!(db.create_table("t").await.contains("`extra`"));
    let rows = db.seeded("t").await;
    assert_eq!(rows.len(), 200);
    assert_eq!(rows[0].1, "blocker", "the blocking transaction's committed write is in the new table");
}
