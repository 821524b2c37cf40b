//! PostgreSQL cases where a copy could silently differ from the table, each of which must fail
//! loudly with nothing lost: a type change with a USING expression the copy cannot apply,
//! row-level security hiding rows from the copy, and a user that does not own the table.

use shadowswap_integration::cli::{last_error_line, run_cli, stderr};
use shadowswap_integration::postgres::PgTestDb;

async fn role(db: &PgTestDb, name: &str, password: &str) {
    db.exec(&format!(
        "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{name}') THEN \
         CREATE ROLE {name} LOGIN NOSUPERUSER NOBYPASSRLS PASSWORD '{password}'; END IF; END $$; \
         GRANT CREATE, USAGE ON SCHEMA public TO {name}"
    ))
    .await;
}

async fn snapshot(db: &PgTestDb) -> Vec<Vec<Option<String>>> {
    db.text_rows("SELECT * FROM t ORDER BY id").await
}

#[tokio::test]
async fn type_change_with_using_is_refused_not_ignored() {
    let db = PgTestDb::new("pg_safety_using").await;
    db.exec("CREATE TABLE t (id int PRIMARY KEY, amount numeric(10,2)); INSERT INTO t VALUES (1, 12.34), (2, 0.5)").await;
    let before = snapshot(&db).await;
    let out = run_cli(
        &[
            "alter",
            "--dsn",
            &db.dsn,
            "--table",
            "t",
            "--alter",
            "ALTER COLUMN amount TYPE bigint USING (amount * 100)::bigint",
            "--execute",
        ],
        &[],
    )
    .await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(last_error_line(&out).contains("USING expression"), "{}", last_error_line(&out));
    assert_eq!(snapshot(&db).await, before);
    db.assert_clean(&["t"]).await;
}

#[tokio::test]
async fn forced_row_level_security_cannot_hide_rows_from_the_copy() {
    // The table's owner is subject to its own policy (FORCE): a copy that ran under the policy
    // would see half the rows and swap in a half-empty table with a matching checksum.
    let db = PgTestDb::new("pg_safety_rls").await;
    let (owner, pw) = ("ssw_safety_rls_owner", "Rls-Pa55");
    role(&db, owner, pw).await;
    db.exec(&format!(
        "CREATE TABLE t (id int PRIMARY KEY, visible boolean NOT NULL); \
         INSERT INTO t SELECT g, g % 2 = 0 FROM generate_series(1, 1000) g; \
         ALTER TABLE t OWNER TO {owner}; ALTER TABLE t ENABLE ROW LEVEL SECURITY; ALTER TABLE t FORCE ROW LEVEL SECURITY; \
         CREATE POLICY only_visible ON t USING (visible)"
    ))
    .await;
    let before = snapshot(&db).await;
    assert_eq!(before.len(), 1000);
    let out = run_cli(
        &["alter", "--dsn", &db.dsn_as(owner, pw), "--table", "t", "--alter", "ADD COLUMN c int DEFAULT 1", "--execute"],
        &[],
    )
    .await;
    assert_ne!(out.status.code(), Some(0), "a copy under row-level security must not swap: {}", stderr(&out));
    assert!(stderr(&out).contains("row-level security"), "{}", stderr(&out));
    assert_eq!(snapshot(&db).await, before, "the original keeps all 1000 rows");
    db.assert_clean(&["t"]).await;
}

#[tokio::test]
async fn a_user_that_does_not_own_the_table_is_refused_up_front() {
    let db = PgTestDb::new("pg_safety_owner").await;
    let (other, pw) = ("ssw_safety_not_owner", "NotOwner-Pa55");
    role(&db, other, pw).await;
    db.exec(&format!("CREATE TABLE t (id int PRIMARY KEY, v int); INSERT INTO t VALUES (1, 1); GRANT ALL ON t TO {other}")).await;
    let before = snapshot(&db).await;
    for execute in [false, true] {
        let mut args = vec!["alter".to_string(), "--dsn".into(), db.dsn_as(other, pw), "--table".into(), "t".into()];
        args.extend(["--alter".into(), "ADD COLUMN c int".into()]);
        if execute {
            args.push("--execute".into());
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = run_cli(&args, &[]).await;
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        assert!(last_error_line(&out).contains("does not own"), "{}", last_error_line(&out));
        assert!(!stderr(&out).contains(pw));
    }
    assert_eq!(snapshot(&db).await, before);
    db.assert_clean(&["t"]).await;
}
