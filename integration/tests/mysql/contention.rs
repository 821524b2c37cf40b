//! The copy under contention for rows: a chunk never waits for a row an application transaction
//! holds (it rolls back at once and is planned again smaller), and writers waiting for row locks
//! when a chunk commits make the next chunks aim at `--max-latency` with a pause after each.

use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use shadowswap_engine::runner::Outcome;
use shadowswap_engine::{Phase, Runner};
use shadowswap_integration::mysql::TestDb;
use shadowswap_integration::run::{chunked_config, fast_config, flag_path};

const ALTER: &str = "ADD COLUMN extra INT NOT NULL DEFAULT 7";

async fn table_of(db: &TestDb, rows: u64) {
    db.exec("CREATE TABLE t (id INT PRIMARY KEY, v INT NOT NULL)").await;
    db.exec(&format!("INSERT INTO t (id, v) SELECT seq, seq * 10 FROM seq_1_to_{rows}")).await;
}

/// Waits until the checkpoint says `rows` rows were copied; panics after `within`.
async fn until_copied(db: &TestDb, rows: u64, within: Duration) {
    let t0 = Instant::now();
    loop {
        let mut c = db.pool.get_conn().await.unwrap();
        let copied: Option<u64> = c.query_first("SELECT rows_copied FROM _t_ssw_ckpt").await.ok().flatten();
        if copied.is_some_and(|n| n >= rows) {
            return;
        }
        assert!(t0.elapsed() < within, "the copy did not reach {rows} rows in {within:?} (at {copied:?})");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A session waiting for a row lock on a table of its own (`hot`), behind an open transaction:
/// `(holder, waiter)`. Returns once the server counts the wait; roll the holder back to end it.
async fn a_writer_waiting(
    db: &TestDb,
) -> (mysql_async::Conn, tokio::task::JoinHandle<(mysql_async::Conn, mysql_async::Result<()>)>) {
    db.exec("CREATE TABLE hot (id INT PRIMARY KEY, v INT); INSERT INTO hot VALUES (1, 0)").await;
    let (holder, _) = db.open_transaction("UPDATE hot SET v = 1 WHERE id = 1").await;
    let mut waiter = mysql_async::Conn::new(mysql_async::Opts::from_url(&db.dsn).unwrap()).await.unwrap();
    waiter.query_drop("SET SESSION innodb_lock_wait_timeout = 3600").await.unwrap();
    let wait = tokio::spawn(async move {
        let r = waiter.query_drop("UPDATE hot SET v = 2 WHERE id = 1").await;
        (waiter, r)
    });
    // The waiter is waiting before the copy starts.
    let t0 = Instant::now();
    loop {
        let n: u64 = db
            .scalar("SELECT CAST(VARIABLE_VALUE AS UNSIGNED) FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = 'INNODB_ROW_LOCK_CURRENT_WAITS'")
            .await;
        if n > 0 {
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(30), "the waiter never waited");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    (holder, wait)
}

/// Starts a run of [`ALTER`] on `t` in chunks of 10 rows and returns once it is held by its
/// throttle flag before the first chunk, the capture installed: the run, and the flag to remove.
async fn run_held_before_the_copy(
    db: &TestDb,
    name: &str,
) -> (tokio::task::JoinHandle<shadowswap_engine::Result<Outcome>>, std::path::PathBuf) {
    let throttle = flag_path(name);
    std::fs::write(&throttle, b"hold").unwrap();
    let mut cfg = chunked_config(Some(10));
    cfg.throttle.flag_file = Some(throttle.clone());
    let runner = Runner::new(db.dialect().await, cfg);
    let mut progress = runner.progress();
    let table = db.table("t");
    let run = tokio::spawn(async move { runner.run(&table, ALTER).await });
    progress.wait_for(|p| p.phase == Phase::Backfill && p.throttle_reason.is_some()).await.unwrap();
    (run, throttle)
}

/// Row 20 is held by an open transaction (`FOR UPDATE`). With chunks of 10 the chunk (10, 20] meets it: it must
/// not wait but roll back and copy what it can beside the held row, so rows up to 18 are copied
/// while the row is still held (a copy that waited would stop at 10; a chunk ending at 19 reads
/// row 20 to find the end of its range, and its locking read waits for that row too). Released, the run
/// completes and the table is exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_held_row_is_not_waited_for_the_chunk_is_retried_smaller() {
    let db = TestDb::new("contention_held").await;
    table_of(&db, 40).await;
    // Held before the first chunk, once the capture is installed (installing it needs the
    // table's metadata lock, which the holder's transaction would keep).
    let (run, throttle) = run_held_before_the_copy(&db, "contention_held").await;
    // A locking read holds the row alone (an UPDATE would also write the shadow through the
    // capture, and its trigger's search of the shadow locks a gap there).
    let (mut holder, _) = db.open_transaction("SELECT v FROM t WHERE id = 20 FOR UPDATE").await;
    std::fs::remove_file(&throttle).unwrap();
    until_copied(&db, 18, Duration::from_secs(60)).await;
    holder.query_drop("ROLLBACK").await.unwrap();
    let outcome = run.await.unwrap();
    let Ok(Outcome::Swapped(s)) = outcome else { panic!("{outcome:?}") };
    assert!(s.backfill.conflicts >= 1, "{:?}", s.backfill);
    assert_eq!(s.backfill.rows, 40);
    let wrong: u64 = db.scalar("SELECT COUNT(*) FROM t WHERE v <> id * 10 OR extra <> 7").await;
    assert_eq!((db.count("t").await, wrong), (Some(40), 0));
    db.assert_clean(&["t"]).await;
}

/// A session waits for a row lock (on a table of its own) through the whole copy, so every
/// chunk sees a waiter as it commits: every chunk is then a contended one (aimed at
/// `--max-latency`, followed by a pause).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn writers_waiting_for_row_locks_make_every_chunk_a_contended_one() {
    let db = TestDb::new("contention_waiters").await;
    table_of(&db, 3000).await;
    let (mut holder, wait) = a_writer_waiting(&db).await;
    let mut cfg = fast_config();
    cfg.copy.initial_chunk_rows = 100;
    let runner = Runner::new(db.dialect().await, cfg);
    let outcome = runner.run(&db.table("t"), ALTER).await;
    holder.query_drop("ROLLBACK").await.unwrap();
    let (_, r) = wait.await.unwrap();
    r.unwrap();
    let Ok(Outcome::Swapped(s)) = outcome else { panic!("{outcome:?}") };
    assert!(s.backfill.chunks > 1, "{:?}", s.backfill);
    assert_eq!(s.backfill.contended_chunks, s.backfill.chunks, "{:?}", s.backfill);
    let wrong: u64 = db.scalar("SELECT COUNT(*) FROM t WHERE v <> id * 10 OR extra <> 7").await;
    assert_eq!((db.count("t").await, wrong), (Some(3000), 0));
}

/// `t` with a plain secondary index, which the shadow is created without ([`ALTER`] keeps it),
/// `rows` rows and fresh statistics (the plan's row estimate).
async fn indexed_table_of(db: &TestDb, rows: u64) {
    db.exec("CREATE TABLE t (id INT PRIMARY KEY, v INT NOT NULL, KEY v_idx (v))").await;
    db.exec(&format!("INSERT INTO t (id, v) SELECT seq, seq * 10 FROM seq_1_to_{rows}")).await;
    db.exec("ANALYZE TABLE t").await;
}

/// Writers wait for row locks from the first chunk on: the shadow's deferred index is built at
/// once, while the shadow holds less than a quarter of the rows, and kept up during the rest of
/// the copy; a calm copy of the same table leaves it to phase `build indexes`. Both end with the
/// index and every row exact.
///
/// Without the early build, `indexes_built_at_rows` stays `None` and the first half fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn contention_early_in_the_copy_has_the_deferred_indexes_built_at_once() {
    let db = TestDb::new("contention_early_indexes").await;
    indexed_table_of(&db, 3000).await;
    let (mut holder, wait) = a_writer_waiting(&db).await;
    let mut cfg = fast_config();
    cfg.copy.initial_chunk_rows = 100;
    let outcome = Runner::new(db.dialect().await, cfg.clone()).run(&db.table("t"), ALTER).await;
    holder.query_drop("ROLLBACK").await.unwrap();
    let (_, r) = wait.await.unwrap();
    r.unwrap();
    let Ok(Outcome::Swapped(s)) = outcome else { panic!("{outcome:?}") };
    let at = s.backfill.indexes_built_at_rows.unwrap_or_else(|| panic!("not built during the copy: {:?}", s.backfill));
    assert!(at > 0 && at < 750, "built with {at} of 3000 rows copied");
    assert!(s.backfill.rows > at, "{:?}", s.backfill);
    index_and_rows_exact(&db).await;

    let calm = TestDb::new("contention_calm_indexes").await;
    indexed_table_of(&calm, 3000).await;
    let outcome = Runner::new(calm.dialect().await, cfg).run(&calm.table("t"), ALTER).await;
    let Ok(Outcome::Swapped(s)) = outcome else { panic!("{outcome:?}") };
    // Waiters are counted server-wide: a test running beside this one may make a chunk of this
    // copy a contended one too.
    if s.backfill.contended_chunks == 0 {
        assert_eq!(s.backfill.indexes_built_at_rows, None, "{:?}", s.backfill);
    }
    index_and_rows_exact(&calm).await;
}

/// The application deletes row 50 and inserts it again before the first chunk: the first chunk
/// (up to 10) finds it in the shadow beyond its range, written ahead of the copy, and the
/// deferred index is built then, with 10 rows copied (chunks of 10), not after the copy.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_write_ahead_of_the_copy_has_the_deferred_indexes_built_at_once() {
    let db = TestDb::new("contention_ahead_indexes").await;
    indexed_table_of(&db, 3000).await;
    let (run, throttle) = run_held_before_the_copy(&db, "contention_ahead_indexes").await;
    db.exec("DELETE FROM t WHERE id = 50; INSERT INTO t (id, v) VALUES (50, 500)").await;
    std::fs::remove_file(&throttle).unwrap();
    let outcome = run.await.unwrap();
    let Ok(Outcome::Swapped(s)) = outcome else { panic!("{outcome:?}") };
    assert_eq!(s.backfill.indexes_built_at_rows, Some(10), "{:?}", s.backfill);
    index_and_rows_exact(&db).await;
}

/// `t` has its index `v_idx`, and through it every one of its 3000 rows is exact.
async fn index_and_rows_exact(db: &TestDb) {
    let ddl = db.definition("t").await;
    assert!(ddl.contains("KEY `v_idx` (`v`)"), "{ddl}");
    let wrong: u64 = db.scalar("SELECT COUNT(*) FROM t FORCE INDEX (v_idx) WHERE v <> id * 10 OR extra <> 7").await;
    let through_index: u64 = db.scalar("SELECT COUNT(*) FROM t FORCE INDEX (v_idx) WHERE v > 0").await;
    assert_eq!((db.count("t").await, through_index, wrong), (Some(3000), 3000, 0));
}

/// The capture triggers of application writes to rows the copy has not reached take no gap lock
/// on the (still empty) shadow. Transaction A deletes row 50 and keeps its transaction open;
/// transaction B, with a one-second lock wait, deletes row 60 and inserts it again, and inserts a
/// new row 1000. Before the triggers inserted the row they delete first, A's trigger `DELETE`
/// of the absent shadow row 50 locked the shadow's whole gap, and each of B's trigger inserts
/// into it waited for A and failed with a lock wait timeout (1205). Then the run completes and
/// the table is exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn writes_ahead_of_the_copy_do_not_lock_a_gap_of_the_shadow() {
    let db = TestDb::new("contention_gap").await;
    table_of(&db, 100).await;
    let (run, throttle) = run_held_before_the_copy(&db, "contention_gap").await;
    assert_eq!(db.count("_t_new").await, Some(0), "the copy has not started");
    let (mut a, _) = db.open_transaction("DELETE FROM t WHERE id = 50").await;
    let mut b = mysql_async::Conn::new(mysql_async::Opts::from_url(&db.dsn).unwrap()).await.unwrap();
    b.query_drop("SET SESSION innodb_lock_wait_timeout = 1").await.unwrap();
    b.query_drop("START TRANSACTION").await.unwrap();
    for stmt in
        ["DELETE FROM t WHERE id = 60", "INSERT INTO t (id, v) VALUES (60, 600)", "INSERT INTO t (id, v) VALUES (1000, 10000)"]
    {
        b.query_drop(stmt)
            .await
            .unwrap_or_else(|e| panic!("{stmt}: {e} (a gap lock of the shadow held by the other transaction?)"));
    }
    b.query_drop("COMMIT").await.unwrap();
    a.query_drop("INSERT INTO t (id, v) VALUES (50, 500)").await.unwrap();
    a.query_drop("COMMIT").await.unwrap();
    std::fs::remove_file(&throttle).unwrap();
    let outcome = run.await.unwrap();
    let Ok(Outcome::Swapped(s)) = outcome else { panic!("{outcome:?}") };
    assert_eq!(s.backfill.rows, 100, "row 1000 is above the high watermark: the capture wrote it; {:?}", s.backfill);
    let wrong: u64 = db.scalar("SELECT COUNT(*) FROM t WHERE v <> id * 10 OR extra <> 7").await;
    assert_eq!((db.count("t").await, wrong), (Some(101), 0));
    db.assert_clean(&["t"]).await;
}
