//! The copy of one chunk on PostgreSQL, dialect-level, with other sessions placed between its
//! statements (each test waits for the chunk's session to be blocked by a session it holds, via
//! `pg_blocking_pids`, never on time): the fast path (lock the rows `FOR SHARE`, clear the
//! shadow's range, a plain `INSERT … SELECT`) commits a chunk whose rows the capture wrote ahead;
//! a row inserted into the range while the chunk locks it sends the chunk to the fallback (the
//! upsert) before a concurrent delete of that row could be missed, and so does a capture row the
//! plain insert would duplicate. Each time the shadow then equals the table.

use std::sync::Arc;
use std::time::{Duration, Instant};

use shadowswap_engine::checkpoint::{Checkpoint, ChunkMark};
use shadowswap_engine::plan::Plan;
use shadowswap_engine::{Dialect, Runner};
use shadowswap_integration::postgres::{client, PgTestDb};
use shadowswap_integration::run::fast_config;
use shadowswap_postgres::{PgKey, Postgres};
use tokio_postgres::Client;

const ALTER: &str = "ADD COLUMN extra integer NOT NULL DEFAULT 7";
const LOCK: Duration = Duration::from_secs(30);

fn key(k: i64) -> PgKey {
    PgKey(vec![k.to_string()])
}

/// Table `t` (`id bigint PRIMARY KEY, v int`) with the even ids up to `last` (`v = id`), its
/// checkpoint, shadow and capture installed, nothing copied.
async fn prepared(db: &PgTestDb, last: i64) -> (Arc<Postgres>, Plan) {
    db.exec(&format!(
        "CREATE TABLE t (id bigint PRIMARY KEY, v int NOT NULL); INSERT INTO t SELECT g, g FROM generate_series(2, {last}, 2) g"
    ))
    .await;
    let d = db.dialect().await;
    let names = d.names(&db.table("t"));
    let plan = Runner::new(d.clone(), fast_config()).preflight(&names, ALTER, false).await.unwrap();
    d.checkpoint_write(&names, &Checkpoint::new(&plan, d.dialect_name())).await.unwrap();
    d.create_shadow(&plan, LOCK).await.unwrap();
    d.install_capture(&plan, LOCK).await.unwrap();
    (d, plan)
}

/// Copies the chunk `(after, upto]` in a task of its own.
fn spawn_chunk(
    d: &Arc<Postgres>,
    plan: &Plan,
    after: Option<i64>,
    upto: i64,
) -> tokio::task::JoinHandle<shadowswap_engine::Result<u64>> {
    let (d, plan) = (d.clone(), plan.clone());
    tokio::spawn(async move {
        let mark = ChunkMark { low_watermark: d.key_to_text(&key(upto)), chunk_rows: 100 };
        d.copy_chunk(&plan, after.map(key).as_ref(), &key(upto), LOCK, &mark).await.map(|c| c.rows)
    })
}

async fn pid(c: &Client) -> i32 {
    c.query_one("SELECT pg_backend_pid()", &[]).await.unwrap().get(0)
}

/// Waits until a session (`waiter`, or any when `None`) is blocked by session `blocker`, and
/// returns its pid.
async fn blocked_by(db: &PgTestDb, blocker: i32, waiter: Option<i32>) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let rows = db
            .client
            .query(
                "SELECT pid FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid)) AND ($2::int IS NULL OR pid = $2)",
                &[&blocker, &waiter],
            )
            .await
            .unwrap();
        if let Some(r) = rows.first() {
            return r.get(0);
        }
        assert!(Instant::now() < deadline, "no session got blocked by {blocker} (waiter {waiter:?})");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The table's and the shadow's rows, which must be equal (the shadow's `extra` is 7 everywhere).
async fn assert_shadow_equals_table(db: &PgTestDb) {
    let t = db.text_rows("SELECT id, v, 7 FROM t ORDER BY id").await;
    let s = db.text_rows("SELECT id, v, extra FROM _t_new ORDER BY id").await;
    assert_eq!(s, t);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_row_inserted_into_the_range_while_the_chunk_locks_it_sends_the_chunk_to_the_fallback() {
    let db = PgTestDb::new("pgcopy_fast_count").await;
    let (d, plan) = prepared(&db, 200).await;

    // Quiet chunks take the fast path, rows the capture wrote ahead included.
    assert_eq!(spawn_chunk(&d, &plan, None, 20).await.unwrap().unwrap(), 10);
    db.exec("UPDATE t SET v = -30 WHERE id = 30; INSERT INTO t VALUES (31, 31)").await;
    assert_eq!(spawn_chunk(&d, &plan, Some(20), 40).await.unwrap().unwrap(), 11);
    assert_eq!(d.copy_fallbacks(), 0);
    assert_eq!(db.count("SELECT count(*) FROM _t_new WHERE id = 30 AND v = -30").await, 1);

    // The chunk (40, 200]: its row lock waits for A's update of row 100, and its insert for B's
    // uncommitted shadow row 50, so that row 51 is inserted after the chunk's lock statement
    // began, and deleted by W while the chunk has deleted its capture row and copied it again.
    let a = client(&db.dsn).await;
    a.batch_execute("BEGIN; UPDATE t SET v = v + 1000 WHERE id = 100").await.unwrap();
    let b = client(&db.dsn).await;
    b.batch_execute("BEGIN; INSERT INTO _t_new (id, v) VALUES (50, -1)").await.unwrap();
    let chunk = spawn_chunk(&d, &plan, Some(40), 200);
    let chunk_pid = blocked_by(&db, pid(&a).await, None).await;
    db.exec("INSERT INTO t VALUES (51, 51)").await;
    a.batch_execute("COMMIT").await.unwrap();
    blocked_by(&db, pid(&b).await, Some(chunk_pid)).await;
    let w = client(&db.dsn).await;
    let w_pid = pid(&w).await;
    let delete = tokio::spawn(async move { w.batch_execute("DELETE FROM t WHERE id = 51").await });
    // W's capture waits on the chunk's delete of the shadow's row 51.
    blocked_by(&db, chunk_pid, Some(w_pid)).await;
    b.batch_execute("ROLLBACK").await.unwrap();

    // The fast path copied 81 rows but locked 80: rolled back, and the upsert copied the chunk.
    let copied = chunk.await.unwrap().unwrap();
    delete.await.unwrap().unwrap();
    assert_eq!(db.count("SELECT count(*) FROM _t_new WHERE id = 51").await, 0, "a deleted row came back");
    assert_eq!((copied, d.copy_fallbacks()), (80, 1));
    assert_eq!(db.count("SELECT count(*) FROM _t_new WHERE id = 100 AND v = 1100").await, 1);
    assert_shadow_equals_table(&db).await;
    let c = d.checkpoint_read(&d.names(&db.table("t"))).await.unwrap().unwrap();
    assert_eq!((c.rows_copied, c.low_watermark.as_deref()), (10 + 11 + 80, Some("[\"200\"]")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_capture_row_the_plain_insert_would_duplicate_sends_the_chunk_to_the_fallback() {
    let db = PgTestDb::new("pgcopy_fast_dup").await;
    let (d, plan) = prepared(&db, 100).await;
    // The capture writes row 10 ahead of the copy; C holds it, so the chunk's delete of the
    // shadow's range waits there, after its snapshot; row 61, inserted meanwhile, is then in the
    // shadow (its capture) and read by the plain insert.
    db.exec("UPDATE t SET v = -10 WHERE id = 10").await;
    let c = client(&db.dsn).await;
    c.batch_execute("BEGIN; SELECT 1 FROM _t_new WHERE id = 10 FOR UPDATE").await.unwrap();
    let chunk = spawn_chunk(&d, &plan, None, 100);
    blocked_by(&db, pid(&c).await, None).await;
    db.exec("INSERT INTO t VALUES (61, 61)").await;
    c.batch_execute("COMMIT").await.unwrap();

    assert_eq!(chunk.await.unwrap().unwrap(), 51);
    assert_eq!(d.copy_fallbacks(), 1);
    assert_shadow_equals_table(&db).await;
}
