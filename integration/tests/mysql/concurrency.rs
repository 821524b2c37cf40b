//! Migrations under concurrent writers: several writer tasks run random INSERT, UPDATE (some
//! changing the key, across chunk boundaries and beyond the high watermark) and DELETE while the
//! backfill runs, through the checksum and across the cut-over; afterwards the table must equal,
//! row by row, the model the writers kept (see `shadowswap_integration::mysql::workload`).
//!
//! Each test asserts that the writers really overlapped the backfill: a test that could pass
//! without concurrency proves nothing. Op and error counts are printed (`--nocapture`, or in
//! nextest's output of a failing test) so we learn how often writers were disturbed.

use std::time::{Duration, Instant};

use shadowswap_engine::{Phase, Runner};
use shadowswap_integration::model::{assert_writes_during_backfill, migrate_under_writers, UnderWriters};
use shadowswap_integration::mysql::workload::{self, Model, PhaseSource, TableSpec, Workload, WorkloadConfig};
use shadowswap_integration::mysql::TestDb;
use shadowswap_integration::run::chunked_config;

struct Scenario {
    /// Database name (unique per test).
    db: &'static str,
    spec: TableSpec,
    rows: u64,
    writers: usize,
    /// `Some(n)`: fixed chunks of n rows; `None`: adaptive (the default, 500 ms per chunk).
    chunk_rows: Option<u64>,
    alter: &'static str,
}

/// What a scenario saw, for extra assertions.
struct Seen {
    db: TestDb,
    model: Model,
}

async fn run(s: Scenario) -> Seen {
    let db = TestDb::new(s.db).await;
    let t0 = Instant::now();
    s.spec.create(&db.pool).await.unwrap();
    s.spec.load(&db.pool, s.rows, |_| {}).await.unwrap();
    let initial = Model::read(&db.pool, &s.spec).await.unwrap();
    assert_eq!(initial.len() as u64, s.rows);
    eprintln!("[{}] loaded {} rows in {:.1} s", s.db, s.rows, t0.elapsed().as_secs_f64());

    let cfg = chunked_config(s.chunk_rows);
    let runner = Runner::new(db.dialect().await, cfg);
    let wcfg = WorkloadConfig { writers: s.writers, ..WorkloadConfig::default() };
    let writers = Workload::start(&db.dsn, initial, wcfg, PhaseSource::Runner(runner.progress())).await.unwrap();
    // Writers are warmed up (connected, statements prepared) before the migration starts.
    writers.wait_for_ops(200).await.unwrap();

    let UnderWriters { model, report, ops_after_swap, .. } =
        migrate_under_writers(s.db, &runner, &db.table(&s.spec.name), s.alter, writers).await;

    let verification = workload::verify(&db.pool, &model).await.unwrap();
    assert!(verification.ok(), "[{}] {verification}\nwriters: {report}", s.db);
    eprintln!("[{}] verification: {verification}", s.db);

    // The writers overlapped the copy (and the rest of the migration); otherwise this test proves nothing.
    assert_writes_during_backfill(s.db, &report);
    assert!(ops_after_swap > 0, "[{}] no writes after the swap", s.db);

    // The ALTER is visible on every row, and nothing of shadowswap's is left.
    let rows: u64 = db.scalar(&format!("SELECT COUNT(*) FROM `{}`", s.spec.name)).await;
    assert_eq!(rows, model.len() as u64);
    let not_seven: u64 = db.scalar(&format!("SELECT COUNT(*) FROM `{}` WHERE extra <> 7", s.spec.name)).await;
    assert_eq!(not_seven, 0, "[{}] rows whose new column is not its default", s.db);
    db.assert_clean(&[s.spec.name.as_str()]).await;
    Seen { db, model }
}

/// One-row chunks: thousands of chunk boundaries for rows to jump across while being copied.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn writers_during_one_row_chunks() {
    run(Scenario {
        db: "conc_one_row_chunks",
        spec: TableSpec::single("t"),
        rows: 2_500,
        writers: 4,
        chunk_rows: Some(1),
        alter: "ADD COLUMN extra INT NOT NULL DEFAULT 7, FORCE",
    })
    .await;
}

/// Adaptive chunks (the default, steered by a target time per chunk) on a larger table, with a
/// non-key column widened.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn writers_during_adaptive_chunks_widening_a_column() {
    let seen = run(Scenario {
        db: "conc_adaptive_chunks",
        spec: TableSpec::single("t"),
        rows: 50_000,
        writers: 4,
        chunk_rows: None,
        alter: "ADD COLUMN extra INT NOT NULL DEFAULT 7, MODIFY k BIGINT UNSIGNED NOT NULL DEFAULT 0",
    })
    .await;
    let ddl = seen.db.create_table("t").await;
    assert!(ddl.contains("`k` bigint(20) unsigned NOT NULL"), "{ddl}");
}

/// Large fixed chunks: few, long chunk transactions that writers queue behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn writers_during_large_fixed_chunks() {
    let seen = run(Scenario {
        db: "conc_large_chunks",
        spec: TableSpec::single("t"),
        rows: 50_000,
        writers: 4,
        chunk_rows: Some(5_000),
        alter: "ADD COLUMN extra INT NOT NULL DEFAULT 7, MODIFY pad VARCHAR(100) NOT NULL DEFAULT ''",
    })
    .await;
    let ddl = seen.db.create_table("t").await;
    assert!(ddl.contains("`pad` varchar(100)"), "{ddl}");
}

/// Composite key `(a, b)`: key changes move rows within one `a` (only `b` changes) and across
/// `a`s; chunk boundaries fall in the middle of an `a`, so the expanded keyset predicates are used.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn writers_during_composite_key_chunks() {
    let seen = run(Scenario {
        db: "conc_composite_key",
        spec: TableSpec::composite("t"),
        rows: 12_000,
        writers: 4,
        chunk_rows: Some(37),
        alter: "ADD COLUMN extra INT NOT NULL DEFAULT 7, MODIFY c VARCHAR(200) NOT NULL DEFAULT '', FORCE",
    })
    .await;
    // Rows where some b was moved beyond the initial spread exist: key changes really happened.
    assert!(seen.model.rows.keys().any(|(_, b)| *b > workload::COMPOSITE_B_PER_A), "no b beyond the initial spread");
}

/// A run cancelled in the middle of the backfill while writers keep writing: the undo drops the
/// capture triggers and the shadow under live writes, and the original table still equals the
/// model (no writer statement failed, nothing of shadowswap's is left).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn writers_during_a_run_cancelled_in_backfill() {
    let db = TestDb::new("conc_cancelled").await;
    let spec = TableSpec::single("t");
    spec.create(&db.pool).await.unwrap();
    spec.load(&db.pool, 3_000, |_| {}).await.unwrap();
    let initial = Model::read(&db.pool, &spec).await.unwrap();

    let cfg = chunked_config(Some(1));
    let runner = Runner::new(db.dialect().await, cfg);
    let mut progress = runner.progress();
    let cancel = runner.cancel_token();
    let wcfg = WorkloadConfig { writers: 4, ..WorkloadConfig::default() };
    let writers = Workload::start(&db.dsn, initial, wcfg, PhaseSource::Runner(runner.progress())).await.unwrap();
    writers.wait_for_ops(200).await.unwrap();

    // Cancel once a few hundred rows are copied.
    let canceller = tokio::spawn(async move {
        while progress.changed().await.is_ok() {
            let p = progress.borrow().clone();
            if p.phase == Phase::Backfill && p.rows_copied >= 300 {
                cancel.cancel();
                return p.rows_copied;
            }
        }
        0
    });
    let result = runner.run(&db.table("t"), "ADD COLUMN extra INT NOT NULL DEFAULT 7, FORCE").await;
    let copied_at_cancel = canceller.await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (model, report) = writers.stop().await.unwrap_or_else(|e| panic!("{e:#}"));
    eprintln!("[conc_cancelled] cancelled after {copied_at_cancel} rows copied; run: {result:?}");
    eprintln!("[conc_cancelled] {report}");
    assert!(matches!(result, Err(shadowswap_engine::Error::Cancelled(_))), "{result:?}");
    assert!(report.ops_during("backfill") > 0, "{report}");
    assert!(report.ops_during("aborting") + report.ops_during("failed") > 0, "no writes during and after the undo: {report}");

    let verification = workload::verify(&db.pool, &model).await.unwrap();
    assert!(verification.ok(), "{verification}\nwriters: {report}");
    db.assert_clean(&["t"]).await;
    let ddl = db.create_table("t").await;
    assert!(!ddl.contains("extra"), "the original table was changed: {ddl}");
}
