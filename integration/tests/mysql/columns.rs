//! MariaDB: columns are mapped by what the ALTER does, not by name (issue 7, defects 7 and 8).
//!
//! A column the ALTER drops (or renames away) and adds again under the same name is a new
//! column: a plain ALTER fills it with its default, so shadowswap must too — in the backfill
//! and in the capture triggers. The oracle is the server: the same ALTER run natively
//! (`ALGORITHM=COPY`) on a clone holding the same rows, compared row by row.
//!
//! An added `DATETIME DEFAULT CURRENT_TIMESTAMP` column is filled for existing rows in the
//! server's default time zone by a plain ALTER; shadowswap's backfill must match it, while rows
//! the application writes during the run get the application session's clock (as they would
//! with a plain ALTER run before them).

use std::sync::Arc;
use std::time::Duration;

use mysql_async::prelude::Queryable;
use mysql_async::Conn;
use shadowswap_engine::MigrationConfig;
use shadowswap_integration::cli::{assert_plan_re_adds, dry_run, stdout};
use shadowswap_integration::mysql::TestDb;
use shadowswap_integration::oracle::{assert_matches_clone, assert_rows_match_clone, migrate};
use shadowswap_integration::run::{chunked_config, PostponedRun};

const ROWS: i64 = 300;

/// Create `t` (the table shadowswap migrates) and `o` (the oracle clone) with the same rows.
async fn twin_tables(db: &TestDb, t: &str, o: &str) {
    for name in [t, o] {
        db.exec(&format!(
            "CREATE TABLE `{name}` (id INT NOT NULL PRIMARY KEY, c INT NULL, k VARCHAR(20) NOT NULL DEFAULT 'k') ENGINE=InnoDB"
        ))
        .await;
        db.exec(&format!("INSERT INTO `{name}` (id, c, k) SELECT seq, seq * 10, CONCAT('k', seq) FROM seq_1_to_{ROWS}")).await;
    }
}

/// Fixed chunks of `rows` rows, renames approved.
fn config(chunk_rows: u64) -> MigrationConfig {
    let mut cfg = chunked_config(Some(chunk_rows));
    cfg.approve_renamed_columns = true;
    cfg
}

/// Every shape that drops (or renames away) a column and adds one of the same name, plus the
/// clauses that keep data (MODIFY, CHANGE to the same name), each against a native ALTER.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_drop_and_re_add_shape_matches_a_native_alter() {
    let db = TestDb::new("cols_shapes").await;
    let shapes = [
        "DROP COLUMN c, ADD COLUMN c INT NOT NULL DEFAULT 7",
        "DROP c, ADD c INT NULL",
        "DROP COLUMN IF EXISTS C, ADD COLUMN c VARCHAR(10) NULL DEFAULT 'new'",
        "RENAME COLUMN c TO x, ADD COLUMN c INT NULL DEFAULT 7",
        "CHANGE c x BIGINT NULL, ADD c INT NULL DEFAULT 7 AFTER id",
        "CHANGE COLUMN C x INT NULL, ADD COLUMN (c INT NULL DEFAULT 8, d INT NULL DEFAULT 9)",
        "MODIFY c BIGINT NULL",
        "CHANGE c c BIGINT NULL, ADD COLUMN n INT NULL DEFAULT 3",
    ];
    for (i, spec) in shapes.iter().enumerate() {
        let (t, o) = (format!("t{i}"), format!("o{i}"));
        twin_tables(&db, &t, &o).await;
        db.exec(&format!("ALTER TABLE `{o}` {spec}, ALGORITHM=COPY")).await;
        migrate(&db, &t, spec, config(37)).await;
        assert_matches_clone(&db, &t, &o, spec, ROWS as usize).await;
    }
}

/// The dry run shows the re-added column as dropped and added, not as copied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_shows_a_re_added_column_as_dropped_and_added() {
    let db = TestDb::new("cols_dry_run").await;
    twin_tables(&db, "t", "o").await;
    // Exit 0, nothing created, both tables unchanged.
    let plan = stdout(&dry_run(&db, &["o", "t"], "t", "DROP COLUMN c, ADD COLUMN c INT NULL DEFAULT 7", &[]).await);
    assert_plan_re_adds(&plan, "c");
}

/// Application writes during the run (through the capture triggers, both while the backfill
/// copies and while the run waits before its cut-over) never carry the old column's value into
/// the new column of that name. The same writes go to the clone, which is then ALTERed natively.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_during_the_run_do_not_carry_the_old_value_into_the_re_added_column() {
    let db = TestDb::new("cols_writers").await;
    twin_tables(&db, "t", "o").await;
    let spec = "DROP COLUMN c, ADD COLUMN c INT NULL DEFAULT 7";

    // One writer applies each statement to `t` and then to `o` until told to stop.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (pool, stop) = (db.pool.clone(), stop.clone());
        tokio::spawn(async move {
            let mut c = pool.get_conn().await.unwrap();
            let mut n: i64 = 0;
            let mut state: u64 = 42;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) || n < 50 {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                let id = (state >> 33) as i64 % (ROWS + 100) + 1;
                let stmt = match n % 3 {
                    0 => format!(
                        "INSERT INTO `{{t}}` (id, c, k) VALUES ({id}, {}, 'w') ON DUPLICATE KEY UPDATE c = c + 1",
                        id * 1000
                    ),
                    1 => format!("UPDATE `{{t}}` SET c = c + 5, k = CONCAT(k, 'u') WHERE id = {id}"),
                    _ => format!("DELETE FROM `{{t}}` WHERE id = {id}"),
                };
                for table in ["t", "o"] {
                    // A deadlock with the copy's locking read (1213) rolls the statement back:
                    // run it again, as an application would, so both tables get it once.
                    loop {
                        match c.query_drop(stmt.replace("{t}", table)).await {
                            Ok(()) => break,
                            Err(mysql_async::Error::Server(e)) if e.code == 1213 => continue,
                            Err(e) => panic!("{e}"),
                        }
                    }
                }
                n += 1;
            }
            n
        })
    };
    let cfg = chunked_config(Some(5));
    let run = PostponedRun::start(db.dialect().await, cfg, db.table("t"), spec, &db.name, Duration::from_secs(120)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let writes = writer.await.unwrap();
    assert!(writes >= 50);

    // While the run waits: new rows and updates with explicit values for the old column.
    let mut app: Conn = db.pool.get_conn().await.unwrap();
    for table in ["t", "o"] {
        app.query_drop(format!("INSERT INTO `{table}` (id, c, k) VALUES (100000, 999, 'late')")).await.unwrap();
        app.query_drop(format!("UPDATE `{table}` SET c = 555 WHERE id BETWEEN 1 AND 20")).await.unwrap();
    }
    drop(app);
    run.swap().await;
    db.exec(&format!("ALTER TABLE o {spec}, ALGORITHM=COPY")).await;

    assert_rows_match_clone(&db, "t", "o", spec).await;
    let carried: u64 = db.scalar("SELECT COUNT(*) FROM t WHERE c <> 7 OR c IS NULL").await;
    assert_eq!(carried, 0, "every row's new c is the new default");
}

/// An application session at +05:00, with shadowswap's session setup not applied.
async fn app_session(db: &TestDb) -> Conn {
    let mut c = db.pool.get_conn().await.unwrap();
    c.query_drop("SET time_zone = '+05:00'").await.unwrap();
    c
}

/// `(id, seconds)` rows of `sql`, run in a session in the server's default time zone.
async fn seconds(db: &TestDb, sql: &str) -> Vec<(i64, i64)> {
    let mut c = db.pool.get_conn().await.unwrap();
    c.query_drop("SET time_zone = DEFAULT").await.unwrap();
    c.query(sql).await.unwrap()
}

/// Defect 8: an added `DATETIME DEFAULT CURRENT_TIMESTAMP` column. Backfilled rows get what a
/// plain ALTER gives them (the server's default time zone: the oracle is a clone ALTERed natively
/// from a fresh session that does not set `time_zone`); rows the application (at +05:00) writes
/// during the run get the application's clock, as with a plain ALTER and application writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_added_current_timestamp_column_is_filled_in_the_servers_default_zone() {
    let db = TestDb::new("cols_now").await;
    twin_tables(&db, "t", "o").await;
    let spec = "ADD COLUMN created DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP, FORCE";

    let cfg = chunked_config(Some(50));
    let run = PostponedRun::start(db.dialect().await, cfg, db.table("t"), spec, &db.name, Duration::from_secs(120)).await;
    let mut app = app_session(&db).await;
    app.query_drop("INSERT INTO t (id, c, k) VALUES (100001, 1, 'app')").await.unwrap();
    app.query_drop("UPDATE t SET c = 2 WHERE id = 100001").await.unwrap();
    drop(app);
    run.swap().await;

    // The oracle: a fresh session, the server's default zone.
    let mut fresh: Conn = db.pool.get_conn().await.unwrap();
    fresh.query_drop("SET time_zone = DEFAULT").await.unwrap();
    fresh.query_drop(format!("ALTER TABLE o {spec}, ALGORITHM=COPY")).await.unwrap();
    drop(fresh);

    // Backfilled rows: within a minute of the oracle's values (both are "now" at ALTER time).
    let diffs =
        seconds(&db, "SELECT t.id, ABS(TIMESTAMPDIFF(SECOND, t.created, o.created)) FROM t JOIN o USING (id) ORDER BY t.id")
            .await;
    assert_eq!(diffs.len(), ROWS as usize);
    let worst = diffs.iter().map(|(_, d)| *d).max().unwrap();
    assert!(worst <= 60, "backfilled values differ from a native ALTER's by up to {worst} s");

    // The application's row: its own clock (+05:00), as its INSERT would give after a plain ALTER.
    let app_row = seconds(
        &db,
        "SELECT id, TIMESTAMPDIFF(SECOND, CONVERT_TZ(UTC_TIMESTAMP(), '+00:00', '+05:00'), created) FROM t WHERE id = 100001",
    )
    .await;
    assert_eq!(app_row.len(), 1);
    assert!(app_row[0].1.abs() <= 120, "the application's row is stamped with its +05:00 clock: {app_row:?}");
}
