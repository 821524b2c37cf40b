//! PostgreSQL: the check before the swap (issue 7, "the window between the checksum and the
//! swap"). What the capture triggers cannot follow — DDL on the table, a capture trigger dropped
//! or disabled by another session — while the cut-over waits must stop the run before anything
//! is swapped: the table stays as the other session left it, and nothing of the run is left.

use std::time::Duration;

use shadowswap_engine::runner::Outcome;
use shadowswap_integration::postgres::PgTestDb;
use shadowswap_integration::run::{chunked_config, PostponedRun};

const ALTER: &str = "ADD COLUMN extra int DEFAULT 7";

async fn seeded(name: &str) -> PgTestDb {
    let db = PgTestDb::new(name).await;
    db.exec("CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 300) g").await;
    db
}

async fn held(db: &PgTestDb) -> PostponedRun {
    let cfg = chunked_config(Some(25));
    PostponedRun::start(db.dialect().await, cfg, db.table("t"), ALTER, &db.name, Duration::from_secs(120)).await
}

fn refusal(r: shadowswap_engine::Result<Outcome>) -> String {
    match r {
        Err(e) => e.to_string(),
        Ok(o) => panic!("the run must stop before the swap, got {o:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_column_added_while_the_cut_over_waits_stops_the_swap() {
    let db = seeded("pgwin_ddl").await;
    let run = held(&db).await;
    db.exec("ALTER TABLE t ADD COLUMN z int NOT NULL DEFAULT 5").await;
    db.exec("UPDATE t SET z = 9 WHERE id = 1").await;
    let e = refusal(run.release().await);
    assert!(e.contains("public.t was altered by another session during the run"), "{e}");
    assert!(e.contains("without swapping"), "{e}");
    // t is the table the DDL left: its new column and its value are there, nothing was swapped.
    assert_eq!(db.text_rows("SELECT count(*)::text, sum(z)::text FROM t").await, [[Some("300".into()), Some("1504".into())]]);
    db.assert_clean(&["t"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_capture_trigger_disabled_while_the_cut_over_waits_stops_the_swap() {
    let db = seeded("pgwin_trigger").await;
    let run = held(&db).await;
    // A session disables one capture trigger, writes past it, and enables it again as ordinary
    // (not ALWAYS): the shadow has missed the delete, and replica-role sessions would be missed.
    db.exec("ALTER TABLE t DISABLE TRIGGER _t_ssw_del; DELETE FROM t WHERE id <= 10; ALTER TABLE t ENABLE TRIGGER _t_ssw_del")
        .await;
    let e = refusal(run.release().await);
    assert!(e.contains("capture trigger _t_ssw_del on public.t was dropped or disabled during the run"), "{e}");
    assert_eq!(db.text_rows("SELECT count(*)::text FROM t").await, [[Some("290".into())]]);
    db.assert_clean(&["t"]).await;
}
