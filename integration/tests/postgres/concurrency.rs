//! PostgreSQL migrations under concurrent writers.
//!
//! Several writer tasks (`shadowswap_integration::postgres::workload`) run random INSERT, UPDATE (some
//! changing the key, across chunk boundaries, into copied and not-yet-copied ranges and beyond
//! the high watermark) and DELETE — single autocommit statements and multi-statement
//! transactions in READ COMMITTED, REPEATABLE READ and SERIALIZABLE — while the backfill runs,
//! through the checksum and across the cut-over; afterwards the table must equal, row by row,
//! the model the writers kept.
//!
//! The MVCC point: a chunk's snapshot (and a writer's REPEATABLE READ snapshot) can be older
//! than a change made meanwhile. The copy (`INSERT … SELECT … FOR SHARE … ON CONFLICT (key) DO
//! UPDATE`) and the capture triggers must never let a deleted row reappear or an old version
//! overwrite a newer one. `repeatable_read_writers_whose_snapshot_predates_a_chunk` pins, step
//! by step, the case that needed a fix: a REPEATABLE READ or SERIALIZABLE writer whose snapshot
//! predates a chunk deleting (or moving away) a row that chunk copied. Before the fix the random
//! tests failed on it too (checksum mismatch: the shadow kept rows such writers had deleted).
//!
//! Each test asserts that the writers really overlapped the backfill: a test that could pass
//! without concurrency proves nothing. Op and error counts are printed (`--nocapture`, or in
//! nextest's output of a failing test).

use std::time::{Duration, Instant};

use shadowswap_engine::checkpoint::Checkpoint;
use shadowswap_engine::{Dialect, Runner};
use shadowswap_integration::model::{assert_writes_during_backfill, migrate_under_writers, UnderWriters};
use shadowswap_integration::postgres::workload::{self, Isolation, Model, PgTable, Workload, WorkloadConfig};
use shadowswap_integration::postgres::{client, PgTestDb};
use shadowswap_integration::run::{chunked_config, fast_config};

const ALTER: &str = "ADD COLUMN extra int NOT NULL DEFAULT 7, ALTER COLUMN v TYPE bigint";

struct Scenario {
    /// Database name (unique per test).
    db: &'static str,
    table: PgTable,
    rows: u64,
    writers: usize,
    /// `Some(n)`: fixed chunks of n rows; `None`: adaptive (the default, 500 ms per chunk).
    chunk_rows: Option<u64>,
}

/// What a scenario saw, for extra assertions.
struct Seen {
    db: PgTestDb,
    model: Model,
}

async fn run(s: Scenario) -> Seen {
    let db = PgTestDb::new(s.db).await;
    let t0 = Instant::now();
    s.table.create(&db.client).await.unwrap();
    s.table.load(&db.client, s.rows).await.unwrap();
    let initial = Model::read(&db.client, &s.table).await.unwrap();
    assert_eq!(initial.len() as u64, s.rows);
    eprintln!("[{}] loaded {} rows in {:.1} s", s.db, s.rows, t0.elapsed().as_secs_f64());

    let cfg = chunked_config(s.chunk_rows);
    let runner = Runner::new(db.dialect().await, cfg);
    let wcfg = WorkloadConfig { writers: s.writers, ..WorkloadConfig::default() };
    let writers = Workload::start(&db.dsn, initial, wcfg, Some(runner.progress())).await.unwrap();
    // Writers are warmed up (connected, transactions in flight) before the migration starts.
    writers.wait_for_ops(200).await.unwrap();

    let UnderWriters { model, report, ops_after_swap, .. } =
        migrate_under_writers(s.db, &runner, &db.table(&s.table.name), ALTER, writers).await;

    let verification = workload::verify(&db.client, &model).await.unwrap();
    assert!(verification.ok(), "[{}] {verification}\nwriters: {report}", s.db);
    eprintln!("[{}] verification: {verification}", s.db);

    // The writers overlapped the copy (and the rest of the migration); otherwise this test proves nothing.
    assert_writes_during_backfill(s.db, &report);
    for iso in Isolation::ALL {
        assert!(report.txns_of(iso) > 0, "[{}] no {iso:?} transaction committed: {report}", s.db);
    }
    assert!(report.counts.at_frontier > 0, "[{}] no statement aimed at the copy's position: {report}", s.db);
    assert!(ops_after_swap > 0, "[{}] no writes after the swap", s.db);

    // The ALTER is visible on every row, and nothing of shadowswap's is left.
    let facts = db
        .text_rows(
            "SELECT count(*), count(*) FILTER (WHERE extra <> 7), \
                    (SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 't'::regclass AND attname = 'v') \
             FROM t",
        )
        .await;
    let row = &facts[0];
    assert_eq!(row[0].as_deref(), Some(model.len().to_string().as_str()), "[{}] row count", s.db);
    assert_eq!(row[1].as_deref(), Some("0"), "[{}] rows whose new column is not its default", s.db);
    assert_eq!(row[2].as_deref(), Some("bigint"), "[{}] v was not widened", s.db);
    db.assert_clean(&["t"]).await;
    Seen { db, model }
}

/// One-row chunks: thousands of chunk boundaries for rows to jump across while being copied, and
/// a chunk commit every few milliseconds inside the writers' open transactions.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn writers_during_one_row_chunks() {
    run(Scenario { db: "pgconc_one_row_chunks", table: PgTable::single("t"), rows: 2_500, writers: 4, chunk_rows: Some(1) })
        .await;
}

/// Large fixed chunks: few, long chunk statements holding share locks on thousands of rows that
/// writers queue behind (and deadlock with, inside transactions).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn writers_during_large_fixed_chunks() {
    run(Scenario { db: "pgconc_large_chunks", table: PgTable::single("t"), rows: 50_000, writers: 4, chunk_rows: Some(5_000) })
        .await;
}

/// Adaptive chunks (the default, steered by a target time per chunk) on the larger table.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn writers_during_adaptive_chunks() {
    run(Scenario { db: "pgconc_adaptive_chunks", table: PgTable::single("t"), rows: 50_000, writers: 4, chunk_rows: None }).await;
}

/// Composite key `(a, b)`: key changes move rows within one `a` (only `b` changes) and across
/// `a`s; chunk boundaries fall in the middle of an `a`, so the row-comparison keyset predicates
/// (`ROW(a, b) > ROW($1, $2)`) are used, and re-checked by `FOR SHARE` on moved rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn writers_during_composite_key_chunks() {
    let seen = run(Scenario {
        db: "pgconc_composite_key",
        table: PgTable::composite("t"),
        rows: 12_000,
        writers: 4,
        chunk_rows: Some(37),
    })
    .await;
    // Rows where some b was moved beyond the initial spread exist: key changes really happened.
    assert!(seen.model.rows.keys().any(|(_, b)| *b > workload::COMPOSITE_B_PER_A), "no b beyond the initial spread");
    let pk = seen
        .db
        .text_rows("SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 't'::regclass AND contype = 'p'")
        .await;
    assert_eq!(pk, vec![vec![Some("PRIMARY KEY (a, b)".to_string())]]);
}

/// The MVCC case, step by step. Transactions take their snapshot, then a chunk copies rows
/// 1..=12 and commits, then they delete rows, move keys and update rows; rows 13..=20 are copied
/// by a second chunk after they finished. At REPEATABLE READ and SERIALIZABLE the triggers'
/// statements run with the transaction's snapshot, in which the rows the first chunk wrote to the
/// shadow do not exist yet. Every transaction must either commit with the shadow following it
/// exactly, or fail with a serialization failure and change nothing; a deleted or moved-away row
/// must never stay behind in the shadow. READ COMMITTED transactions, transactions touching rows
/// not copied yet, and transactions whose snapshot is newer than the chunk must commit.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn repeatable_read_writers_whose_snapshot_predates_a_chunk() {
    use tokio_postgres::error::SqlState;
    let db = PgTestDb::new("pgconc_rr_snapshot").await;
    db.exec(
        "CREATE TABLE t (id bigint PRIMARY KEY, v integer NOT NULL, c text NOT NULL); \
         INSERT INTO t SELECT g, g, 'row ' || g FROM generate_series(1, 20) g; DELETE FROM t WHERE id = 2",
    )
    .await;
    let d = db.dialect().await;
    let runner = Runner::new(d.clone(), fast_config());
    let names = d.names(&db.table("t"));
    let plan = runner.preflight(&names, ALTER, false).await.unwrap();
    let lock = Duration::from_secs(2);
    d.create_shadow(&plan, lock).await.unwrap();
    d.install_capture(&plan, lock).await.unwrap();
    // Each chunk advances the checkpoint in its own transaction: the run writes the row first.
    d.checkpoint_write(&names, &Checkpoint::new(&plan, d.dialect_name())).await.unwrap();

    // (isolation, snapshot taken before the first chunk, statements, must commit)
    let cases: [(&str, bool, &str, bool); 11] = [
        ("REPEATABLE READ", true, "DELETE FROM t WHERE id = 3", false),
        ("REPEATABLE READ", true, "UPDATE t SET id = 103 WHERE id = 4", false),
        ("REPEATABLE READ", true, "UPDATE t SET v = -5 WHERE id = 5", false),
        ("SERIALIZABLE", true, "DELETE FROM t WHERE id = 6", false),
        ("SERIALIZABLE", true, "UPDATE t SET id = 2 WHERE id = 7", false),
        ("REPEATABLE READ", true, "DELETE FROM t WHERE id = 8; INSERT INTO t VALUES (8, 88, 'again')", false),
        ("READ COMMITTED", true, "DELETE FROM t WHERE id = 9; UPDATE t SET id = 109 WHERE id = 10", true),
        ("REPEATABLE READ", false, "DELETE FROM t WHERE id = 11; UPDATE t SET id = 111, v = 0 WHERE id = 12", true),
        ("REPEATABLE READ", true, "DELETE FROM t WHERE id = 13; UPDATE t SET id = 1 WHERE id = 14", true),
        ("SERIALIZABLE", true, "UPDATE t SET id = 115 WHERE id = 15; UPDATE t SET v = 0 WHERE id = 16", true),
        ("REPEATABLE READ", true, "DELETE FROM t WHERE id = 17; UPDATE t SET id = 118 WHERE id = 18", true),
    ];
    // Row 1 is needed free for case 9's move onto it: delete it before any snapshot.
    db.exec("DELETE FROM t WHERE id = 1").await;
    let mut writers = Vec::new();
    for (iso, early, _, _) in &cases {
        let c = client(&db.dsn).await;
        if *early {
            // The snapshot is taken by the first statement; `SELECT 1` reads no table, so the
            // serializable transactions do not conflict with each other through their reads.
            c.batch_execute(&format!("BEGIN ISOLATION LEVEL {iso}; SELECT 1")).await.unwrap();
        }
        writers.push(c);
    }
    // The first chunk copies rows up to 12 and commits after the early snapshots were taken.
    let key = |k: &str| shadowswap_postgres::PgKey(vec![k.to_string()]);
    assert_eq!(d.copy_chunk(&plan, None, &key("12"), lock, &mark(&d, &key("12"))).await.unwrap().rows, 10);
    let mut outcomes = Vec::new();
    for ((iso, early, stmts, must_commit), c) in cases.iter().zip(&writers) {
        if !*early {
            c.batch_execute(&format!("BEGIN ISOLATION LEVEL {iso}; SELECT 1")).await.unwrap();
        }
        let r = match c.batch_execute(stmts).await {
            Ok(()) => c.batch_execute("COMMIT").await,
            Err(e) => {
                c.batch_execute("ROLLBACK").await.unwrap();
                Err(e)
            }
        };
        let outcome = match r {
            Ok(()) => "committed".to_string(),
            Err(e) if e.code() == Some(&SqlState::T_R_SERIALIZATION_FAILURE) => {
                let db = e.as_db_error().expect("server error");
                format!(
                    "serialization failure, rolled back ({}; {})",
                    db.message(),
                    db.where_().unwrap_or("").replace('\n', " / ")
                )
            }
            Err(e) => panic!("{iso}: {stmts}: unexpected error {e:?}"),
        };
        eprintln!("[pgconc_rr_snapshot] {iso}{}: {stmts} -> {outcome}", if *early { "" } else { " (after the chunk)" });
        if *must_commit {
            assert_eq!(outcome, "committed", "{iso}: {stmts}");
        }
        outcomes.push(outcome);
    }
    // The second chunk copies the rest; then the shadow must equal the table.
    let (_, high) = d.key_range(&plan).await.unwrap().expect("rows");
    d.copy_chunk(&plan, Some(&key("12")), &high, lock, &mark(&d, &high)).await.unwrap();
    let diff = db
        .text_rows(&format!(
            "SELECT coalesce(o.id, s.id)::text, o.v::text, s.v::text FROM t o FULL JOIN public.\"{}\" s ON s.id = o.id \
             WHERE o.id IS NULL OR s.id IS NULL OR o.v::bigint <> s.v OR o.c <> s.c ORDER BY 1",
            plan.names.shadow.name
        ))
        .await;
    assert!(diff.is_empty(), "the shadow differs from the table (id, table v, shadow v): {diff:?}; outcomes {outcomes:?}");
    d.remove_capture(&names, lock).await.unwrap();
    d.drop_table(&plan.names.shadow, lock).await.unwrap();
    d.drop_table(&plan.names.checkpoint, lock).await.unwrap();
    db.assert_clean(&["t"]).await;
}

/// The checkpoint mark of a chunk ending at `upto`, as the backfill passes it.
fn mark(d: &shadowswap_postgres::Postgres, upto: &shadowswap_postgres::PgKey) -> shadowswap_engine::checkpoint::ChunkMark {
    use shadowswap_engine::Dialect;
    shadowswap_engine::checkpoint::ChunkMark { low_watermark: d.key_to_text(upto), chunk_rows: 10 }
}
