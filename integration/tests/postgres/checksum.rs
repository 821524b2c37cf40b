//! The chunk checksum on PostgreSQL agrees on equal tables and tells every kind of difference
//! ([`shadowswap_integration::checksum`]): a changed value, one byte of a long value, `NULL`
//! against `''`, values moved between columns or between rows (a linear row hash such as a CRC
//! misses that one), a missing row, a row twice.
//!
//! Several chunks at once (`--checksum-threads 4`, the CLI): many small chunks under concurrent
//! writers agree (each chunk's own snapshot) and the table ends exactly as the writers' model; a
//! difference planted in the shadow is found, in the first differing chunk in key order.

use std::time::Duration;

use shadowswap_integration::checksum::{
    chunks_compared, mismatch_chunk, parallel_args, CHUNK_LOG, PARALLEL_ROWS, PLANTED, THREADS,
};
use shadowswap_integration::checksum::{tells_every_difference, Difference};
use shadowswap_integration::cli::{assert_fails, run_cli, stderr, stdout, Spawned};
use shadowswap_integration::postgres::workload::{self, Model, PgTable, Workload, WorkloadConfig};
use shadowswap_integration::postgres::PgTestDb;
use shadowswap_postgres::PgKey;

const SETUP: &str = "CREATE TABLE t (id int PRIMARY KEY, a varchar(20), b varchar(20), c text); \
     INSERT INTO t SELECT g, 'a' || g, CASE WHEN g % 7 = 0 THEN NULL ELSE 'b' || g END, repeat('long text ', 50) \
     FROM generate_series(1, 200) g;
-- shadow
CREATE TABLE _t_new (LIKE t INCLUDING ALL); ALTER TABLE _t_new ADD COLUMN x int; \
     INSERT INTO _t_new (id, a, b, c) SELECT id, a, b, c FROM t";

/// The differences whose SQL is this dialect's own (the rest: [`shadowswap_integration::checksum::COMMON`]).
const DIFFERENCES: &[Difference] = &[
    Difference {
        what: "one byte of a long value",
        make: "UPDATE _t_new SET c = left(c, 300) || 'X' || substr(c, 302) WHERE id = 100",
        undo: "UPDATE _t_new SET c = repeat('long text ', 50) WHERE id = 100",
    },
    Difference {
        what: "values moved between rows",
        make: "UPDATE _t_new SET a = CASE WHEN id = 100 THEN 'a101' ELSE 'a100' END WHERE id IN (100, 101)",
        undo: "UPDATE _t_new SET a = 'a' || id WHERE id IN (100, 101)",
    },
    Difference {
        what: "a row twice",
        make: "ALTER TABLE _t_new DROP CONSTRAINT _t_new_pkey; INSERT INTO _t_new (id, a, b, c) SELECT id, a, b, c FROM t WHERE id = 100",
        undo: "DELETE FROM _t_new WHERE ctid = (SELECT max(ctid) FROM _t_new WHERE id = 100); ALTER TABLE _t_new ADD PRIMARY KEY (id)",
    },
];

#[tokio::test]
async fn the_checksum_agrees_on_equal_tables_and_tells_every_difference() {
    let db = PgTestDb::new("pgc_checksum").await;
    tells_every_difference(&db, SETUP, "ADD COLUMN x int", |id| PgKey(vec![id.to_string()]), DIFFERENCES).await;
}

/// Columns hashed by value (integers, text under the default collation) next to columns hashed
/// by their text form (`numeric`, whose equal values `1.0` and `1.00` hash alike, and `jsonb`), in
/// one row hash; row 100 has NULL in both of those, so the common "a missing row" inserts it back
/// exactly.
const MIXED_SETUP: &str = "CREATE TABLE t (id int PRIMARY KEY, a varchar(20), b varchar(20), c text, n numeric(10,2), j jsonb); \
     INSERT INTO t SELECT g, 'a' || g, CASE WHEN g % 7 = 0 THEN NULL ELSE 'b' || g END, repeat('long text ', 50), \
     CASE WHEN g = 100 THEN NULL ELSE g * 1.25 END, CASE WHEN g = 100 THEN NULL ELSE jsonb_build_object('g', g) END \
     FROM generate_series(1, 200) g;
-- shadow
CREATE TABLE _t_new (LIKE t INCLUDING ALL); ALTER TABLE _t_new ADD COLUMN x int; \
     INSERT INTO _t_new (id, a, b, c, n, j) SELECT id, a, b, c, n, j FROM t";

const MIXED_DIFFERENCES: &[Difference] = &[
    Difference {
        what: "a numeric value's last digit",
        make: "UPDATE _t_new SET n = n + 0.01 WHERE id = 101",
        undo: "UPDATE _t_new SET n = id * 1.25 WHERE id = 101",
    },
    Difference {
        what: "numeric values moved between rows",
        make: "UPDATE _t_new SET n = CASE WHEN id = 101 THEN 102 * 1.25 ELSE 101 * 1.25 END WHERE id IN (101, 102)",
        undo: "UPDATE _t_new SET n = id * 1.25 WHERE id IN (101, 102)",
    },
    Difference {
        what: "a jsonb value",
        make: "UPDATE _t_new SET j = '{\"g\": 0}' WHERE id = 101",
        undo: "UPDATE _t_new SET j = jsonb_build_object('g', id) WHERE id = 101",
    },
    Difference {
        what: "a value moved between a column hashed by value and one hashed by its text form",
        make: "UPDATE _t_new SET a = j::text, j = to_jsonb(a) WHERE id = 101",
        undo: "UPDATE _t_new SET a = 'a101', j = jsonb_build_object('g', 101) WHERE id = 101",
    },
];

#[tokio::test]
async fn the_checksum_of_columns_hashed_by_value_and_by_text_tells_every_difference() {
    let db = PgTestDb::new("pgc_checksum_mixed").await;
    tells_every_difference(&db, MIXED_SETUP, "ADD COLUMN x int", |id| PgKey(vec![id.to_string()]), MIXED_DIFFERENCES).await;
}

/// A rewriting ALTER.
const ALTER: &str = "ADD COLUMN extra int NOT NULL DEFAULT 7, ALTER COLUMN v TYPE bigint";

/// A seeded table `t` of [`PARALLEL_ROWS`] rows and its model.
async fn seeded(name: &str) -> (PgTestDb, Model) {
    let db = PgTestDb::new(name).await;
    let table = PgTable::single("t");
    table.create(&db.client).await.unwrap();
    table.load(&db.client, PARALLEL_ROWS).await.unwrap();
    db.exec("ANALYZE t").await;
    let model = Model::read(&db.client, &table).await.unwrap();
    (db, model)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn four_chunks_at_once_under_writers_agree_and_swap_exactly() {
    let (db, initial) = seeded("pgc_cksum_threads").await;
    let writers = Workload::start(&db.dsn, initial, WorkloadConfig::default(), None).await.unwrap();
    writers.wait_for_ops(200).await.unwrap();
    // Chunks steered by contention would end in a gentle, one-at-a-time checksum: off here.
    let args = parallel_args(&db.dsn, ALTER, &["--max-latency", "500ms"]);
    let out = run_cli(&args.iter().map(String::as_str).collect::<Vec<_>>(), &[CHUNK_LOG]).await;
    let (model, report) = writers.stop().await.unwrap();
    let (err, text) = (stderr(&out), stdout(&out));
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(text.contains("checksum ok over "), "{text}");
    let (chunks, most) = chunks_compared(&err);
    assert!(chunks > THREADS, "more checksum chunks than threads: {chunks}\n{err}");
    assert!((2..=THREADS).contains(&most), "chunks in flight at once: {most}; more than one, never more than {THREADS}");
    let verification = workload::verify(&db.client, &model).await.unwrap();
    assert!(verification.ok(), "{verification}\nwriters: {report}");
    db.assert_clean(&["t"]).await;
    println!("{THREADS} checksum threads, {chunks} chunks under writers: {}", text.trim());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_chunks_at_once_find_a_planted_difference_in_key_order() {
    let (db, initial) = seeded("pgc_cksum_threads_diff").await;
    // Crash at the checksum's start, leaving shadow, capture and checkpoint for a resume.
    let args = parallel_args(&db.dsn, ALTER, &["--inject-fault", "crash@checksum"]);
    let (status, _, err) = Spawned::watched("crash", &args).finish(Duration::from_secs(120)).await;
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(6), "aborted at the checksum: {status}\n{err}");
    // Writes to the shadow itself are not captured: the rows now differ from the original's.
    let ids = PLANTED.map(|id| id.to_string()).join(", ");
    db.exec(&format!("UPDATE _t_new SET c = 'planted' WHERE id IN ({ids})")).await;

    let out = run_cli(&args.iter().map(String::as_str).collect::<Vec<_>>(), &[CHUNK_LOG]).await;
    let line = assert_fails(&out, 1, &["checksum mismatch between", "original ", "the original table was left serving"]);
    let (after, upto) = mismatch_chunk(&line);
    assert!(after < PLANTED[0] && PLANTED[0] <= upto, "the first planted row's chunk is named: {line}");
    let (chunks, most) = chunks_compared(&stderr(&out));
    assert!(chunks >= THREADS, "chunks compared before the difference: {chunks}");
    assert!((2..=THREADS).contains(&most), "chunks in flight at once: {most}; more than one, never more than {THREADS}");
    let verification = workload::verify(&db.client, &initial).await.unwrap();
    assert!(verification.ok(), "the original is unchanged: {verification}");
    db.assert_clean(&["t"]).await;
}
