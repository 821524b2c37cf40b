//! MariaDB `--attempt-instant-ddl`: the ALTER is tried on the table itself with
//! `ALGORITHM=INSTANT`; what the server can do as a catalog change is applied in place (the table
//! keeps its InnoDB table id), anything else is refused by the server without a change and then
//! copied as usual. Both end as a native ALTER on a clone does.

use shadowswap_integration::cli::{run_alter, stderr, stdout};
use shadowswap_integration::mysql::TestDb;

const TABLE_ID: &str = "SELECT TABLE_ID FROM information_schema.INNODB_SYS_TABLES WHERE NAME = 'ssw_my_instant/t'";

#[tokio::test]
async fn attempt_instant_ddl_alters_in_place_or_copies() {
    let db = TestDb::new("my_instant").await;
    db.exec(
        "CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(10), n INT); CREATE TABLE o LIKE t;
         INSERT INTO t SELECT seq, CONCAT('x', seq), seq FROM seq_1_to_2000; INSERT INTO o SELECT * FROM t",
    )
    .await;
    let before: u64 = db.scalar(TABLE_ID).await;

    let spec = "ADD COLUMN c INT NULL DEFAULT 7";
    let out = run_alter(&db.dsn, "t", spec, &["--execute", "--attempt-instant-ddl"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("in place (metadata only)"), "{}", stdout(&out));
    assert_eq!(db.scalar::<u64>(TABLE_ID).await, before, "in place: the same table");
    db.exec(&format!("ALTER TABLE o {spec}")).await;
    assert_eq!(db.rows("t", "id").await, db.rows("o", "id").await);

    // A change the server cannot make instantly is refused by it, unchanged, and copied.
    let spec = "MODIFY n BIGINT";
    let out = run_alter(&db.dsn, "t", spec, &["--execute", "--attempt-instant-ddl"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).starts_with("swapped"), "copied: {}", stdout(&out));
    assert!(stderr(&out).contains("cannot apply the ALTER without a rebuild"), "{}", stderr(&out));
    assert_ne!(db.scalar::<u64>(TABLE_ID).await, before, "copied: a new table");
    db.exec(&format!("ALTER TABLE o {spec}")).await;
    assert_eq!(db.rows("t", "id").await, db.rows("o", "id").await);
    assert_eq!(db.definition("t").await.replace("`t`", "`o`"), db.definition("o").await);
    db.assert_clean(&["o", "t"]).await;
}
