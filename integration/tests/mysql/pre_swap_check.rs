//! The window the capture does not see, on MariaDB (issue 7, defect 9 and the pre-swap window):
//! MariaDB fires no trigger for TRUNCATE and none for DDL, so a `TRUNCATE TABLE`, a column added
//! by another session, or a dropped capture trigger, while the run copies or waits to cut over,
//! would leave the shadow stale, and the swap would bring truncated rows back. The run must notice
//! and stop without swapping: the table stays as that change left it, and nothing of the run's
//! is left behind.

use std::sync::Arc;
use std::time::Duration;

use mysql_async::prelude::Queryable;
use shadowswap_engine::runner::Outcome;
use shadowswap_engine::{MigrationConfig, Phase, Runner};
use shadowswap_integration::mysql::TestDb;
use shadowswap_integration::run::{fast_config, PostponedRun};

const ALTER: &str = "ADD COLUMN note VARCHAR(10) NOT NULL DEFAULT 'n'";

/// A run of [`ALTER`] on `t` held before its cut-over by a postpone flag file: `interfere` runs
/// while it waits, then the flag is removed and the run's result returned.
async fn postponed_then<F: std::future::Future<Output = ()>>(
    db: &TestDb,
    cfg: MigrationConfig,
    interfere: impl FnOnce() -> F,
) -> shadowswap_engine::Result<Outcome> {
    let run = PostponedRun::start(db.dialect().await, cfg, db.table("t"), ALTER, &db.name, Duration::from_secs(120)).await;
    interfere().await;
    run.release().await
}

/// The run failed with a refusal containing every fragment of `expect`.
fn assert_refused(r: shadowswap_engine::Result<Outcome>, expect: &[&str]) -> String {
    let e = match r {
        Ok(_) => panic!("the run swapped"),
        Err(e) => e.to_string(),
    };
    for x in expect {
        assert!(e.contains(x), "the error lacks {x:?}: {e}");
    }
    assert!(!e.contains('\n'), "one line: {e}");
    e
}

/// Defect 9: a TRUNCATE while the cut-over is postponed. Before the fix the swap brought the
/// 500 truncated rows back. Now the run stops: `t` stays empty, as the TRUNCATE left it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truncate_while_the_cut_over_is_postponed_stops_the_run() {
    let db = TestDb::new("mw_truncate_postponed").await;
    db.seed_t(500).await;
    let before = db.create_table("t").await;
    let r = postponed_then(&db, fast_config(), || async {
        db.exec("TRUNCATE TABLE t").await;
        db.exec("INSERT INTO t VALUES (1000, 'after', 1000, 'p')").await;
    })
    .await;
    let e = assert_refused(r, &["was truncated or rebuilt", "nothing was swapped"]);
    eprintln!("{e}");
    assert_eq!(db.seeded("t").await, vec![(1000, "after".into(), 1000, "p".into())], "t is as the TRUNCATE left it");
    assert_eq!(db.create_table("t").await, before);
    db.assert_clean(&["t"]).await;
}

/// The pre-swap window: a column added to `t` by another session (an instant ALTER, which keeps
/// the InnoDB table id) while the cut-over waits, and one of the capture triggers dropped: each
/// refused, `t` as the DDL left it, nothing left behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ddl_on_the_table_while_the_cut_over_waits_stops_the_run() {
    let db = TestDb::new("mw_ddl_postponed").await;
    db.seed_t(300).await;
    let r = postponed_then(&db, fast_config(), || async {
        db.exec("ALTER TABLE t ADD COLUMN z INT NOT NULL DEFAULT 5").await;
    })
    .await;
    assert_refused(r, &["had its definition changed", "nothing was swapped"]);
    assert!(db.create_table("t").await.contains("`z` int(11) NOT NULL DEFAULT 5"));
    assert_eq!(db.count("t").await, Some(300));
    db.assert_clean(&["t"]).await;

    let db = TestDb::new("mw_trigger_dropped").await;
    db.seed_t(300).await;
    let before = db.create_table("t").await;
    let r = postponed_then(&db, fast_config(), || async {
        db.exec("DROP TRIGGER `_t_ssw_del`").await;
        db.exec("DELETE FROM t WHERE id <= 10").await;
    })
    .await;
    assert_refused(r, &["capture triggers", "nothing was swapped"]);
    assert_eq!(db.count("t").await, Some(290));
    assert_eq!(db.create_table("t").await, before);
    db.assert_clean(&["t"]).await;
}

/// Defect 9 during the backfill, with the checksum off (so the identity check alone must catch
/// it): a row lock held in the middle of `t` (taken while a throttle flag holds the copy) stops
/// the copy there; a TRUNCATE is queued behind the
/// copy; the lock is released, the TRUNCATE runs between two chunks, and the copy goes on over an
/// empty table. The run must stop before the swap, with `t` empty as the TRUNCATE left it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truncate_during_the_backfill_stops_the_run() {
    let db = TestDb::new("mw_truncate_backfill").await;
    db.seed_t(2000).await;
    // The copy waits on a throttle flag file until the row lock is taken (after the capture
    // triggers are installed: taking it before would block their installation).
    let throttle = shadowswap_integration::run::flag_path("mw_truncate_backfill_throttle");
    std::fs::write(&throttle, b"throttle").unwrap();
    let mut cfg = fast_config();
    cfg.throttle.flag_file = Some(throttle.clone());
    cfg.checksum.enabled = false;
    cfg.copy.fixed_chunk_rows = Some(100);
    cfg.copy.lock_wait_timeout = Duration::from_secs(50);
    let runner = Arc::new(Runner::new(db.dialect().await, cfg));
    let table = db.table("t");
    let mut progress = runner.progress();
    let run = tokio::spawn({
        let runner = runner.clone();
        async move { runner.run(&table, ALTER).await }
    });
    tokio::time::timeout(Duration::from_secs(60), progress.wait_for(|p| p.phase == Phase::Backfill))
        .await
        .expect("the run reaches the backfill")
        .expect("progress channel open");
    let (mut holder, _) = db.open_transaction("SELECT id FROM t WHERE id = 1000 FOR UPDATE").await;
    std::fs::remove_file(&throttle).unwrap();
    // The copy is stopped at the held row: the chunks below it are in the shadow.
    let copied = || async { db.count("_t_new").await.is_some_and(|n| n >= 900) };
    tokio::time::timeout(Duration::from_secs(60), async {
        while !copied().await {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the copy reaches the held row");
    // The TRUNCATE waits for the copy's and the holder's transactions.
    let truncate = tokio::spawn({
        let pool = db.pool.clone();
        async move {
            let mut c = pool.get_conn().await.unwrap();
            c.query_drop("TRUNCATE TABLE t").await.unwrap();
        }
    });
    let mut probe = db.pool.get_conn().await.unwrap();
    tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let waiting: Option<u64> = probe
                .query_first("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE INFO = 'TRUNCATE TABLE t'")
                .await
                .unwrap();
            if waiting == Some(1) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the TRUNCATE is queued");
    holder.query_drop("ROLLBACK").await.unwrap();
    drop(holder);
    truncate.await.unwrap();
    let r = tokio::time::timeout(Duration::from_secs(60), run).await.expect("the run ends").unwrap();
    assert_refused(r, &["was truncated or rebuilt", "nothing was swapped"]);
    assert_eq!(db.count("t").await, Some(0), "t is as the TRUNCATE left it");
    db.assert_clean(&["t"]).await;
}
