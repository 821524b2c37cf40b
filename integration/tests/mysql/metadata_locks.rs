//! The table's metadata lock, taken for the capture triggers (`LOCK TABLES … WRITE`) and for the
//! swap (`RENAME TABLE`) without queueing the application behind it: while an application
//! transaction has the table open, shadowswap keeps asking without waiting, so that transaction's
//! next write neither waits nor deadlocks. A queued request made MariaDB's metadata-lock deadlock
//! detector fail a transaction that had read the table and then wrote it, with 1213 (the
//! benchmark's `oltp_read_write` met it at almost every capture install and cut-over).

use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use shadowswap_engine::runner::Outcome;
use shadowswap_engine::{Phase, Runner};
use shadowswap_integration::mysql::TestDb;
use shadowswap_integration::run::{fast_config, flag_path};

const ALTER: &str = "ADD COLUMN extra INT NOT NULL DEFAULT 7";

/// Long enough that, with the old queued request, the application's write would have met the
/// waiting lock request (and its deadlock); the tries without queueing take this long at most.
const LOCK_TIMEOUT: Duration = Duration::from_secs(60);

async fn table_of(db: &TestDb, rows: u64) {
    db.exec("CREATE TABLE t (id INT PRIMARY KEY, v INT NOT NULL)").await;
    db.exec(&format!("INSERT INTO t (id, v) SELECT seq, seq * 10 FROM seq_1_to_{rows}")).await;
}

/// The server's count of statements of `command` (`lock_tables`, `rename_table`), failed ones
/// included: `Com_<command>` of `SHOW GLOBAL STATUS`.
async fn executed(db: &TestDb, command: &str) -> u64 {
    db.scalar(&format!(
        "SELECT CAST(VARIABLE_VALUE AS UNSIGNED) FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = 'COM_{}'",
        command.to_uppercase()
    ))
    .await
}

/// Waits until `command` was executed `tries` more times (shadowswap trying for the lock while
/// the application's transaction has the table open), or a session of this test's database
/// waits in the queue for a metadata lock (what a request that queues does: the application's
/// write then meets it); panics after 60 s.
async fn until_tried(db: &TestDb, command: &str, tries: u64) {
    let base = executed(db, command).await;
    let t0 = Instant::now();
    loop {
        let queued: u64 = db
            .scalar(
                "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE DB = DATABASE() \
                 AND STATE = 'Waiting for table metadata lock'",
            )
            .await;
        if queued > 0 || executed(db, command).await >= base + tries {
            return;
        }
        assert!(t0.elapsed() < Duration::from_secs(60), "shadowswap did not try {command} {tries} times");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The application's transaction writes row 2 (`v = -1`) and commits: with a queued lock request
/// on the table, that write failed with 1213 (or waited behind it for [`LOCK_TIMEOUT`]).
async fn write_and_commit(app: &mut mysql_async::Conn) {
    app.query_drop("UPDATE t SET v = -1 WHERE id = 2").await.expect("the application's write");
    app.query_drop("COMMIT").await.unwrap();
}

/// The run's summary once it swapped; then `t` holds the application's write and every other
/// row as seeded, with the added column (`extra`, 7 unless `in_place`), and nothing is left behind.
async fn swapped_with_the_write(
    db: &TestDb,
    run: tokio::task::JoinHandle<shadowswap_engine::Result<Outcome>>,
    in_place: bool,
) -> shadowswap_engine::runner::Summary {
    let outcome = run.await.unwrap();
    let Ok(Outcome::Swapped(s)) = outcome else { panic!("{outcome:?}") };
    assert_eq!(s.in_place, in_place, "{s:?}");
    let v: i64 = db.scalar("SELECT v FROM t WHERE id = 2").await;
    assert_eq!(v, -1, "the application's write reached the new table");
    let extra = if in_place { "extra IS NOT NULL" } else { "extra <> 7" };
    let wrong: u64 = db.scalar(&format!("SELECT COUNT(*) FROM t WHERE (v <> id * 10 AND id <> 2) OR {extra}")).await;
    assert_eq!((db.count("t").await, wrong), (Some(100), 0));
    db.assert_clean(&["t"]).await;
    s
}

/// The application's transaction has read `t` (it holds the table's shared metadata lock) when
/// the capture install starts. Its write, made while the install keeps trying, succeeds at once;
/// the triggers go in after its commit, and the write is in the migrated table.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_transaction_that_read_the_table_writes_it_while_the_capture_waits_for_the_lock() {
    let db = TestDb::new("mdl_capture").await;
    table_of(&db, 100).await;
    let (mut app, _) = db.open_transaction("SELECT v FROM t WHERE id = 1").await;
    let mut cfg = fast_config();
    cfg.ddl.lock_timeout = LOCK_TIMEOUT;
    let runner = Runner::new(db.dialect().await, cfg);
    let mut progress = runner.progress();
    let table = db.table("t");
    let run = tokio::spawn(async move { runner.run(&table, ALTER).await });
    progress.wait_for(|p| p.phase == Phase::InstallCapture).await.unwrap();
    until_tried(&db, "lock_tables", 20).await;
    let triggers: u64 = db.scalar("SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE()").await;
    assert_eq!(triggers, 0, "the capture waits for the transaction");

    write_and_commit(&mut app).await;
    swapped_with_the_write(&db, run, false).await;
}

/// The same at the swap: held in the postponed wait, the run finds a transaction that has read
/// `t`; while the swap keeps trying, that transaction's write (through the capture) succeeds at
/// once, and the swap follows its commit. Writes were blocked only for the `RENAME` that got the
/// lock, not for the time the swap waited for the table to be free.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_transaction_that_read_the_table_writes_it_while_the_swap_waits_for_the_lock() {
    let db = TestDb::new("mdl_swap").await;
    table_of(&db, 100).await;
    let flag = flag_path("mdl_swap");
    std::fs::write(&flag, b"postpone").unwrap();
    let mut cfg = fast_config();
    cfg.cut_over.lock_timeout = LOCK_TIMEOUT;
    cfg.cut_over.postpone_flag_file = Some(flag.clone());
    let runner = Runner::new(db.dialect().await, cfg);
    let mut progress = runner.progress();
    let table = db.table("t");
    let run = tokio::spawn(async move { runner.run(&table, ALTER).await });
    progress.wait_for(|p| p.phase == Phase::Postponed).await.unwrap();

    let (mut app, _) = db.open_transaction("SELECT v FROM t WHERE id = 1").await;
    std::fs::remove_file(&flag).unwrap();
    progress.wait_for(|p| p.phase == Phase::CutOver).await.unwrap();
    let held = Instant::now();
    until_tried(&db, "rename_table", 50).await;
    write_and_commit(&mut app).await;
    let held = held.elapsed();
    let s = swapped_with_the_write(&db, run, false).await;
    assert_eq!(s.cut_over.attempts, 1, "{:?}", s.cut_over);
    assert!(s.cut_over.swap_time < held, "writes blocked {:?}, not the {held:?} the swap waited", s.cut_over.swap_time);
}

/// `--attempt-instant-ddl` (and `migrate`'s expand step): the `ALTER TABLE … ALGORITHM=INSTANT`
/// on the table itself asks for its lock the same way, so a transaction that has read the table
/// writes it meanwhile; the column is added once that transaction commits.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_transaction_that_read_the_table_writes_it_while_the_instant_alter_waits_for_the_lock() {
    let db = TestDb::new("mdl_instant").await;
    table_of(&db, 100).await;
    let (mut app, _) = db.open_transaction("SELECT v FROM t WHERE id = 1").await;
    let mut cfg = fast_config();
    cfg.cut_over.lock_timeout = LOCK_TIMEOUT;
    cfg.attempt_instant_ddl = true;
    let runner = Runner::new(db.dialect().await, cfg);
    let mut progress = runner.progress();
    let table = db.table("t");
    let run = tokio::spawn(async move { runner.run(&table, "ADD COLUMN extra INT NULL").await });
    progress.wait_for(|p| p.phase == Phase::InPlace).await.unwrap();
    until_tried(&db, "alter_table", 20).await;
    write_and_commit(&mut app).await;
    swapped_with_the_write(&db, run, true).await;
    assert!(db.create_table("t").await.contains("`extra` int(11) DEFAULT NULL"), "{}", db.create_table("t").await);
}
