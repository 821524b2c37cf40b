//! PostgreSQL metadata-only ALTERs: the dry run says whether the server would rewrite or scan
//! the table, and `--attempt-instant-ddl` applies a metadata-only ALTER in place (the table keeps
//! its OID and storage) while anything else is still copied (new OID) with the same guarantees.

use shadowswap_integration::cli::{run_alter, stderr, stdout};
use shadowswap_integration::postgres::PgTestDb;

async fn storage(db: &PgTestDb) -> (String, String) {
    let r = db.text_rows("SELECT oid::text, relfilenode::text FROM pg_class WHERE oid = 'public.t'::regclass").await;
    (r[0][0].clone().unwrap(), r[0][1].clone().unwrap())
}

async fn fixture(name: &str) -> PgTestDb {
    let db = PgTestDb::new(name).await;
    db.exec("CREATE TABLE t (id int PRIMARY KEY, v varchar(10), n int); INSERT INTO t SELECT g, 'x' || g, g FROM generate_series(1, 2000) g")
        .await;
    db
}

#[tokio::test]
async fn dry_run_tells_metadata_only_from_rewrites_and_scans() {
    let db = fixture("pg_instant_dry").await;
    let cases = [
        ("ADD COLUMN c int DEFAULT 7", "metadata-only:  yes"),
        ("ALTER COLUMN v TYPE varchar(40)", "metadata-only:  yes"),
        ("DROP COLUMN n", "metadata-only:  yes"),
        ("ADD COLUMN r float8 DEFAULT random()", "metadata-only:  no"),
        ("ALTER COLUMN n TYPE bigint", "metadata-only:  no"),
        ("ALTER COLUMN n SET NOT NULL", "metadata-only:  no"),
    ];
    let before = storage(&db).await;
    for (spec, expected) in cases {
        let out = run_alter(&db.dsn, "t", spec, &[]).await;
        assert_eq!(out.status.code(), Some(0), "{spec}: {}", stderr(&out));
        assert!(stdout(&out).contains(expected), "{spec}: expected {expected:?} in\n{}", stdout(&out));
    }
    assert_eq!(storage(&db).await, before, "dry runs change nothing");
    db.assert_clean(&["t"]).await;
}

#[tokio::test]
async fn attempt_instant_ddl_alters_in_place_or_copies() {
    let db = fixture("pg_instant_exec").await;
    let rows = "SELECT id, v, n FROM t ORDER BY id";
    let data = db.text_rows(rows).await;

    let before = storage(&db).await;
    let out = run_alter(&db.dsn, "t", "ADD COLUMN c int DEFAULT 7", &["--execute", "--attempt-instant-ddl"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("in place (metadata only)"), "{}", stdout(&out));
    assert_eq!(storage(&db).await, before, "in place: same table, same storage");
    assert_eq!(db.text_rows(rows).await, data);
    assert_eq!(db.text_rows("SELECT count(*) FROM t WHERE c = 7").await[0][0].as_deref(), Some("2000"));

    // A rewriting ALTER is copied even with the flag: a new table (OID) with the same rows.
    let out = run_alter(&db.dsn, "t", "ALTER COLUMN n TYPE bigint", &["--execute", "--attempt-instant-ddl"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).starts_with("swapped"), "{}", stdout(&out));
    assert_ne!(storage(&db).await.0, before.0, "copied: the table is the new one");
    assert_eq!(db.text_rows(rows).await, data);
    db.assert_clean(&["t"]).await;
}
