//! The life of a PostgreSQL run, end to end with the real binary: a run killed mid-backfill
//! leaves exactly what `shadowswap cleanup` removes, and a new run then migrates the table.

use std::os::unix::process::ExitStatusExt;
use std::time::{Duration, Instant};

use shadowswap_integration::cli::{run_cli, stderr, stdout, Spawned};
use shadowswap_integration::postgres::PgTestDb;

/// The killed-run test's rows, ordered by id.
async fn data(db: &PgTestDb) -> Vec<Vec<Option<String>>> {
    db.text_rows("SELECT id, a, pad FROM t ORDER BY id").await
}

async fn shadow_rows(db: &PgTestDb) -> Option<i64> {
    let rows = db.client.query_opt("SELECT count(*) FROM _t_new", &[]).await.ok()??;
    Some(rows.get(0))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_mid_backfill_leaves_a_state_that_cleanup_removes() {
    let db = PgTestDb::new("pgref_killed").await;
    db.exec(
        "CREATE TABLE t (id int PRIMARY KEY, a text NOT NULL, pad text NOT NULL);
         INSERT INTO t SELECT g, 'a' || g, repeat('x', 40) FROM generate_series(1, 3000) g",
    )
    .await;

    let before = data(&db).await;

    let args = ["alter", "--dsn", &db.dsn, "--table", "t", "--alter", "ADD COLUMN extra int", "--execute", "--chunk-size", "1"];
    let mut cli = Spawned::new(args);
    let copying = || async { shadow_rows(&db).await.unwrap_or(0) >= 50 };
    cli.wait_until(Duration::from_secs(60), "the backfill did not start", copying).await;
    cli.signal("KILL"); // SIGKILL: no chance to clean up
    let (status, _, _) = cli.finish(Duration::from_secs(10)).await;
    assert_eq!(status.signal(), Some(9), "killed: {status:?}");

    // What a killed run leaves: the capture functions and triggers, and a partial shadow; the
    // original is untouched.
    let mut tables = db.tables().await;
    tables.sort();
    assert_eq!(tables, ["_t_new", "_t_ssw_ckpt", "t"], "the shadow and the checkpoint beside the table");
    assert_eq!(
        db.capture_leftovers().await,
        ["_t_ssw_del", "_t_ssw_del", "_t_ssw_ins", "_t_ssw_ins", "_t_ssw_trn", "_t_ssw_trn", "_t_ssw_upd", "_t_ssw_upd"],
        "four functions and their four triggers (insert, update, delete, truncate)"
    );
    assert_eq!(data(&db).await, before, "the original is unchanged");
    let copied = shadow_rows(&db).await.unwrap();
    assert!((50..3000).contains(&copied), "killed mid-backfill: {copied} rows copied");

    // The application keeps writing; the orphaned triggers still replay into the shadow.
    db.exec(
        "INSERT INTO t VALUES (5000, 'new', 'p');
         UPDATE t SET a = 'copied-upd' WHERE id = 10;
         UPDATE t SET a = 'uncopied-upd' WHERE id = 2990;
         UPDATE t SET id = 6000 WHERE id = 11;
         DELETE FROM t WHERE id = 20",
    )
    .await;
    let shadow = |id: i64| {
        let db = &db;
        async move {
            db.client
                .query_opt("SELECT a FROM _t_new WHERE id = $1", &[&(id as i32)])
                .await
                .unwrap()
                .map(|r| r.get::<_, String>(0))
        }
    };
    assert_eq!(shadow(5000).await.as_deref(), Some("new"));
    assert_eq!(shadow(10).await.as_deref(), Some("copied-upd"));
    assert_eq!(shadow(2990).await.as_deref(), Some("uncopied-upd"));
    assert_eq!(shadow(6000).await.as_deref(), Some("a11"));
    assert_eq!(shadow(11).await, None);
    assert_eq!(shadow(20).await, None);
    let expected = data(&db).await;
    assert_eq!(expected.len(), 3000);

    // The killed run's sessions end with it; its advisory lock goes with them.
    let deadline = Instant::now() + Duration::from_secs(10);
    // Only this test's database: other tests' runs hold advisory locks of their own meanwhile.
    let ours = "SELECT 1 FROM pg_locks WHERE locktype = 'advisory' \
                AND database = (SELECT oid FROM pg_database WHERE datname = current_database())";
    while !db.text_rows(ours).await.is_empty() {
        assert!(Instant::now() < deadline, "the killed run's advisory lock is still held");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let cleanup_args = ["cleanup", "--dsn", &db.dsn, "--table", "t"];
    let out = run_cli(&cleanup_args, &[]).await;
    assert_eq!(out.status.code(), Some(0), "cleanup: {}", stderr(&out));
    let said = stdout(&out);
    assert!(said.contains("dropped capture triggers: _t_ssw_del, _t_ssw_ins, _t_ssw_trn, _t_ssw_upd"), "{said}");
    assert!(said.contains("dropped shadow table public._t_new"), "{said}");
    db.assert_clean_any_order(&["t"]).await;
    assert_eq!(data(&db).await, expected, "cleanup leaves the original's rows and the application's writes alone");
    // The application's writes no longer touch anything of ours.
    db.exec("INSERT INTO t VALUES (5001, 'after', 'p')").await;

    let out = run_cli(&cleanup_args, &[]).await;
    assert_eq!(out.status.code(), Some(0), "second cleanup: {}", stderr(&out));
    assert!(stdout(&out).contains("nothing to clean up on public.t"), "{}", stdout(&out));

    // A new run after cleanup migrates the table.
    let expected = data(&db).await;
    let out = run_cli(&args[..8], &[]).await;
    assert_eq!(out.status.code(), Some(0), "a new run after cleanup: {}", stderr(&out));
    db.assert_clean_any_order(&["t"]).await;
    assert_eq!(db.text_rows("SELECT count(*) FROM t WHERE extra IS NULL").await, [[Some("3001".to_string())]]);
    assert_eq!(data(&db).await, expected, "the same rows");
}
