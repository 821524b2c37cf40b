//! The checksum on the real server: the dialect's chunk checksum of a table and a shadow that
//! hold the same rows agrees, and it tells apart every kind of difference the copy or the capture
//! could leave — a changed value, one byte of a long value, `NULL` against `''`, values moved
//! between columns or between rows, a missing row, a row twice — over one chunk and over the whole
//! table (open bounds).

use shadowswap_engine::dialect::{ChunkChecksum, Dialect};
use shadowswap_engine::plan::Plan;
use shadowswap_integration::mysql::TestDb;
use shadowswap_integration::run::fast_config;
use shadowswap_mysql::{MyKey, MySql};

const ROWS: u32 = 200;

/// The table `t` (id, a, b, c) and its shadow `_t_new` (an added column `x`) with the same rows,
/// and the plan for `ADD COLUMN x INT NULL`.
async fn twins(db: &TestDb) -> (std::sync::Arc<MySql>, Plan) {
    db.exec(&format!(
        "CREATE TABLE t (id INT PRIMARY KEY, a VARCHAR(20) NULL, b VARCHAR(20) NULL, c TEXT NULL); \
         INSERT INTO t SELECT seq, CONCAT('a', seq), IF(seq % 7 = 0, NULL, CONCAT('b', seq)), REPEAT('long text ', 50) \
         FROM seq_1_to_{ROWS}"
    ))
    .await;
    let d = db.dialect().await;
    let names = d.names(&db.table("t"));
    let plan = shadowswap_engine::Runner::new(d.clone(), fast_config()).preflight(&names, "ADD COLUMN x INT NULL").await.unwrap();
    db.exec("CREATE TABLE _t_new LIKE t; ALTER TABLE _t_new ADD COLUMN x INT NULL; INSERT INTO _t_new (id, a, b, c) SELECT id, a, b, c FROM t")
        .await;
    (d, plan)
}

fn key(id: i64) -> MyKey {
    MyKey(vec![mysql_async::Value::Int(id)])
}

/// The whole table (open bounds) and the chunk `(50, 150]`: `(original, shadow)` of each.
async fn sums(d: &MySql, plan: &Plan) -> [(ChunkChecksum, ChunkChecksum); 2] {
    [d.checksum_chunk(plan, None, None).await.unwrap(), d.checksum_chunk(plan, Some(&key(50)), Some(&key(150))).await.unwrap()]
}

#[tokio::test]
async fn the_checksum_agrees_on_equal_tables_and_tells_every_difference() {
    let db = TestDb::new("mc_checksum").await;
    let (d, plan) = twins(&db).await;
    let [whole, chunk] = sums(&d, &plan).await;
    assert_eq!(whole.0, whole.1, "equal tables, whole table");
    assert_eq!(chunk.0, chunk.1, "equal tables, one chunk");
    assert_eq!((whole.0.rows, chunk.0.rows), (u64::from(ROWS), 100));
    // Each change is made to the shadow, checked, and undone (the tables agree again).
    let cases = [
        ("a changed value", "UPDATE _t_new SET a = 'changed' WHERE id = 100", "UPDATE _t_new SET a = 'a100' WHERE id = 100"),
        (
            "one byte of a long value",
            "UPDATE _t_new SET c = CONCAT(LEFT(c, 300), 'X', SUBSTRING(c, 302)) WHERE id = 100",
            "UPDATE _t_new SET c = REPEAT('long text ', 50) WHERE id = 100",
        ),
        ("NULL against ''", "UPDATE _t_new SET b = '' WHERE id = 98", "UPDATE _t_new SET b = NULL WHERE id = 98"),
        (
            "values moved between columns",
            "UPDATE _t_new SET a = b, b = a WHERE id = 100",
            "UPDATE _t_new SET a = 'a100', b = 'b100' WHERE id = 100",
        ),
        (
            "values moved between rows",
            "UPDATE _t_new SET a = IF(id = 100, 'a101', 'a100') WHERE id IN (100, 101)",
            "UPDATE _t_new SET a = CONCAT('a', id) WHERE id IN (100, 101)",
        ),
        (
            "a missing row",
            "DELETE FROM _t_new WHERE id = 100",
            "INSERT INTO _t_new (id, a, b, c) SELECT id, a, b, c FROM t WHERE id = 100",
        ),
        (
            "a row twice (the key dropped from the shadow for it)",
            "ALTER TABLE _t_new DROP PRIMARY KEY; INSERT INTO _t_new (id, a, b, c) SELECT id, a, b, c FROM t WHERE id = 100",
            "DELETE FROM _t_new WHERE id = 100 LIMIT 1; ALTER TABLE _t_new ADD PRIMARY KEY (id)",
        ),
    ];
    for (what, change, undo) in cases {
        db.exec(change).await;
        let [whole, chunk] = sums(&d, &plan).await;
        assert_ne!(whole.0, whole.1, "{what}: the whole-table checksum must differ");
        assert_ne!(chunk.0, chunk.1, "{what}: the chunk's checksum must differ");
        db.exec(undo).await;
        let [whole, chunk] = sums(&d, &plan).await;
        assert_eq!((whole.0, chunk.0), (whole.1, chunk.1), "{what}: undone, the tables agree again");
    }
}
