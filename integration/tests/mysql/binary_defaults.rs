//! MariaDB: binary column defaults that are not UTF-8 (found by the differential test, MariaDB
//! seed 22).
//!
//! `SHOW CREATE TABLE` and `SHOW FULL COLUMNS` print a binary column's default verbatim, so the
//! catalog text of a table with `VARBINARY(4) DEFAULT 0xFF00FE` is not UTF-8. shadowswap read
//! that text as `String` (to find the trial table's engine) and the driver's row conversion
//! panicked: the CLI exited with status 101 in the dry run and in the real run. Reading it as
//! bytes, the run completes; the oracle is the server, the same ALTER run natively on a clone
//! holding the same rows.

use mysql_async::prelude::Queryable;
use mysql_async::Value;
use shadowswap_integration::cli::{run_alter, stderr, stdout};
use shadowswap_integration::mysql::TestDb;

const ROWS: u32 = 200;

/// Create `t` (migrated by shadowswap) and `o` (the clone ALTERed natively) with the same rows:
/// binary columns whose defaults are not UTF-8, every other row left at its defaults.
async fn twin_tables(db: &TestDb) {
    for name in ["t", "o"] {
        db.exec(&format!(
            "CREATE TABLE `{name}` (id INT NOT NULL PRIMARY KEY, \
             vb VARBINARY(4) NULL DEFAULT 0xFF00FE, \
             bn BINARY(3) NOT NULL DEFAULT 0xC3FF80, \
             bl BLOB NULL DEFAULT 0xFEFF00, \
             k INT NULL) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"
        ))
        .await;
        db.exec(&format!("INSERT INTO `{name}` (id, k) SELECT seq, seq FROM seq_1_to_{ROWS} WHERE seq % 2 = 0")).await;
        db.exec(&format!(
            "INSERT INTO `{name}` (id, vb, bn, bl, k) SELECT seq, UNHEX(HEX(seq * 7919)), 0x80FFFE, 0xFF, seq \
             FROM seq_1_to_{ROWS} WHERE seq % 2 = 1"
        ))
        .await;
    }
}

/// `SHOW CREATE TABLE` of `table` as bytes (it is not UTF-8 here), the table's name taken out.
async fn definition(db: &TestDb, table: &str) -> Vec<u8> {
    let mut c = db.pool.get_conn().await.unwrap();
    let (_, ddl): (Vec<u8>, Vec<u8>) = c.query_first(format!("SHOW CREATE TABLE `{table}`")).await.unwrap().unwrap();
    let prefix = format!("CREATE TABLE `{table}`");
    assert!(ddl.starts_with(prefix.as_bytes()), "{}", String::from_utf8_lossy(&ddl));
    ddl[prefix.len()..].to_vec()
}

/// Every row of `table`, every column, in key order.
async fn all_rows(db: &TestDb, table: &str) -> Vec<Vec<Value>> {
    db.rows(table, "id").await
}

/// The dry run and the real run of an ALTER on a table with non-UTF-8 binary defaults succeed,
/// and the result (rows, defaults, definition) equals a native ALTER's on a clone; rows inserted
/// afterwards get the same defaults on both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_with_binary_defaults_that_are_not_utf8_migrates_like_a_native_alter() {
    let db = TestDb::new("bin_defaults").await;
    twin_tables(&db).await;
    assert!(std::str::from_utf8(&definition(&db, "t").await).is_err(), "the definition is not UTF-8, as the test needs");
    let spec = "ADD COLUMN n VARBINARY(8) NOT NULL DEFAULT 0xFFFEFD00, MODIFY vb VARBINARY(6) NULL DEFAULT 0xFF00FE";

    let before = (definition(&db, "t").await, all_rows(&db, "t").await);
    let out = run_alter(&db.dsn, "t", spec, &[]).await;
    assert_eq!(out.status.code(), Some(0), "dry run: {}", stderr(&out));
    assert!(stdout(&out).contains("n"), "{}", stdout(&out));
    assert_eq!((definition(&db, "t").await, all_rows(&db, "t").await), before, "a dry run changes nothing");
    assert_eq!(db.tables().await, ["o", "t"], "a dry run creates nothing");

    db.exec(&format!("ALTER TABLE o {spec}, ALGORITHM=COPY")).await;
    let out = run_alter(&db.dsn, "t", spec, &["--execute"]).await;
    assert_eq!(out.status.code(), Some(0), "run: {}", stderr(&out));
    db.assert_clean(&["o", "t"]).await;

    assert_eq!(
        String::from_utf8_lossy(&definition(&db, "t").await),
        String::from_utf8_lossy(&definition(&db, "o").await),
        "definition"
    );
    assert_eq!(definition(&db, "t").await, definition(&db, "o").await, "definition, byte for byte");
    for table in ["t", "o"] {
        db.exec(&format!("INSERT INTO `{table}` (id) VALUES ({})", ROWS + 1)).await;
    }
    let (got, want) = (all_rows(&db, "t").await, all_rows(&db, "o").await);
    assert_eq!(got.len(), ROWS as usize + 1);
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(g, w, "a row differs from the native ALTER's");
    }
}

/// A new unique key over a binary column whose duplicate values are not UTF-8 is refused with
/// the one-line error naming the duplicate (shown lossily), not a panic; nothing is changed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duplicate_binary_value_that_is_not_utf8_is_refused_not_a_panic() {
    let db = TestDb::new("bin_defaults_dup").await;
    db.exec(
        "CREATE TABLE t (id INT NOT NULL PRIMARY KEY, vb VARBINARY(4) NULL DEFAULT 0xFF00FE) ENGINE=InnoDB; \
         INSERT INTO t (id) SELECT seq FROM seq_1_to_20",
    )
    .await;
    let before = (definition(&db, "t").await, all_rows(&db, "t").await);
    for extra in [&[][..], &["--execute"][..]] {
        let out = run_alter(&db.dsn, "t", "ADD UNIQUE KEY u (vb)", extra).await;
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{extra:?}: {err}");
        assert!(err.contains("occurs 20 times"), "{extra:?}: {err}");
        db.assert_clean(&["t"]).await;
        assert_eq!((definition(&db, "t").await, all_rows(&db, "t").await), before, "{extra:?}: the table changed");
    }
}
