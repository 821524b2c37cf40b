//! The server restarted in the middle of the backfill (`scripts/postgres.sh restart`): the run
//! goes on — its pool replaces the sessions the restart ended (or it reconnects when a statement
//! meets one), its lock keeper takes the advisory lock again — without being restarted. Run
//! alone (`.config/nextest.toml`): the restart cuts every session of every test.
//!
//! The writers stop for the restart itself (a transaction cut off at its commit has an unknown
//! outcome, which no model can follow) and start again on the restarted server, so the rows
//! written before and after it are all checked against their model.

use std::sync::Arc;
use std::time::Duration;

use shadowswap_engine::runner::Outcome;
use shadowswap_engine::{Phase, Runner};
use shadowswap_integration::postgres::workload::{self, Model, PgTable, Workload, WorkloadConfig};
use shadowswap_integration::postgres::{client, PgTestDb};
use shadowswap_integration::run::{chunked_config, flag_path};
use shadowswap_integration::server::restart;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_server_restarted_mid_backfill_the_same_run_completes() {
    let db = PgTestDb::new("pgrestart_mid_backfill").await;
    let table = PgTable::single("t");
    table.create(&db.client).await.unwrap();
    table.load(&db.client, 20_000).await.unwrap();
    let initial = Model::read(&db.client, &table).await.unwrap();

    // Held by the throttle flag once some rows are copied, so the restart lands mid-backfill.
    let throttle = flag_path("pgrestart_mid_backfill");
    let mut cfg = chunked_config(Some(500));
    cfg.throttle.flag_file = Some(throttle.clone());
    cfg.reconnect.timeout = Duration::from_secs(120);
    cfg.reconnect.lock_check = Duration::from_millis(100);
    let runner = Arc::new(Runner::new(db.dialect().await, cfg));
    let mut progress = runner.progress();
    let writers = Workload::start(&db.dsn, initial, WorkloadConfig::default(), Some(runner.progress())).await.unwrap();
    writers.wait_for_ops(100).await.unwrap();

    let (r, t) = (runner.clone(), db.table("t"));
    let run = tokio::spawn(async move { r.run(&t, "ADD COLUMN extra int NOT NULL DEFAULT 7, ALTER COLUMN v TYPE bigint").await });
    progress.wait_for(|p| p.rows_copied >= 2_000).await.unwrap();
    std::fs::write(&throttle, b"hold").unwrap();
    progress.wait_for(|p| p.throttle_reason.is_some()).await.unwrap();
    let (model, before) = writers.stop().await.unwrap();
    let copied_before = progress.borrow().rows_copied;
    assert!(copied_before < 20_000, "the restart must land mid-backfill ({copied_before} rows copied)");

    restart("postgres");
    // The restart ended the advisory lock's session: the run takes its lock again while it waits.
    let fresh = client(&db.dsn).await;
    let held = || async {
        fresh
            .query_one("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())", &[])
            .await
            .unwrap()
            .get::<_, i64>(0)
            > 0
    };
    tokio::time::timeout(Duration::from_secs(60), async {
        while !held().await {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the run took its advisory lock again after the restart");

    let writers = Workload::start(&db.dsn, model, WorkloadConfig::default(), Some(runner.progress())).await.unwrap();
    writers.wait_for_ops(100).await.unwrap();
    std::fs::remove_file(&throttle).unwrap();
    let outcome = tokio::time::timeout(Duration::from_secs(120), run).await.expect("the run ends").unwrap();
    let (model, after) = writers.stop().await.unwrap();
    let Ok(Outcome::Swapped(summary)) = outcome else { panic!("{outcome:?}\nwriters: {before}\n{after}") };

    // The same run went on (no resume, nothing copied twice): its pool replaced the sessions the
    // restart ended, or it reconnected when a statement met one.
    assert_eq!(summary.resumed_from, None, "{summary:?}");
    eprintln!("reconnects: {}; {} rows copied", summary.reconnects, summary.backfill.rows);
    assert!(after.ops_during(&Phase::Backfill.to_string()) > 0, "writers wrote after the restart, during the backfill: {after}");
    let verification = workload::verify(&fresh, &model).await.unwrap();
    assert!(verification.ok(), "{verification}\nbefore the restart: {before}\nafter it: {after}");
    let not_seven: i64 = fresh.query_one("SELECT count(*) FROM t WHERE extra <> 7", &[]).await.unwrap().get(0);
    assert_eq!(not_seven, 0);
    let left: i64 = fresh
        .query_one("SELECT count(*) FROM pg_class WHERE relname LIKE '\\_t\\_%' AND relnamespace = 'public'::regnamespace", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(left, 0, "nothing of shadowswap's is left");
}
