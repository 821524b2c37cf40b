//! The server restarted in the middle of the backfill (`scripts/postgres.sh restart`): the run
//! reconnects, takes its advisory lock again, re-verifies the shadow and the capture, and
//! continues from its checkpoint — without being restarted. Run alone (`.config/nextest.toml`):
//! the restart cuts every session of every test.
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
async fn the_server_restarted_mid_backfill_the_run_completes_from_its_checkpoint() {
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

    let writers = Workload::start(&db.dsn, model, WorkloadConfig::default(), Some(runner.progress())).await.unwrap();
    writers.wait_for_ops(100).await.unwrap();
    std::fs::remove_file(&throttle).unwrap();
    let outcome = tokio::time::timeout(Duration::from_secs(120), run).await.expect("the run ends").unwrap();
    let (model, after) = writers.stop().await.unwrap();
    let Ok(Outcome::Swapped(summary)) = outcome else { panic!("{outcome:?}\nwriters: {before}\n{after}") };

    assert!(summary.reconnects >= 1, "the run reconnected: {summary:?}");
    assert!(summary.backfill.rows < 20_000, "it continued, it did not copy everything again: {summary:?}");
    assert!(after.ops_during(&Phase::Backfill.to_string()) > 0, "writers wrote after the restart, during the backfill: {after}");
    let fresh = client(&db.dsn).await;
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
