//! The chunk checksum on MariaDB agrees on equal tables and tells every kind of difference
//! ([`shadowswap_integration::checksum`]): a changed value, one byte of a long value, `NULL`
//! against `''`, values moved between columns or between rows (a linear row hash such as a CRC
//! misses that one), a missing row, a row twice.

use shadowswap_integration::checksum::{tells_every_difference, Difference};
use shadowswap_integration::mysql::TestDb;
use shadowswap_mysql::MyKey;

const SETUP: &str = "CREATE TABLE t (id INT PRIMARY KEY, a VARCHAR(20) NULL, b VARCHAR(20) NULL, c TEXT NULL); \
     INSERT INTO t SELECT seq, CONCAT('a', seq), IF(seq % 7 = 0, NULL, CONCAT('b', seq)), REPEAT('long text ', 50) \
     FROM seq_1_to_200;
-- shadow
CREATE TABLE _t_new LIKE t; ALTER TABLE _t_new ADD COLUMN x INT NULL; \
     INSERT INTO _t_new (id, a, b, c) SELECT id, a, b, c FROM t";

/// The differences whose SQL is this dialect's own (the rest: [`shadowswap_integration::checksum::COMMON`]).
const DIFFERENCES: &[Difference] = &[
    Difference {
        what: "one byte of a long value",
        make: "UPDATE _t_new SET c = CONCAT(LEFT(c, 300), 'X', SUBSTRING(c, 302)) WHERE id = 100",
        undo: "UPDATE _t_new SET c = REPEAT('long text ', 50) WHERE id = 100",
    },
    Difference {
        what: "values moved between rows",
        make: "UPDATE _t_new SET a = IF(id = 100, 'a101', 'a100') WHERE id IN (100, 101)",
        undo: "UPDATE _t_new SET a = CONCAT('a', id) WHERE id IN (100, 101)",
    },
    Difference {
        what: "a row twice",
        make: "ALTER TABLE _t_new DROP PRIMARY KEY; INSERT INTO _t_new (id, a, b, c) SELECT id, a, b, c FROM t WHERE id = 100",
        undo: "DELETE FROM _t_new WHERE id = 100 LIMIT 1; ALTER TABLE _t_new ADD PRIMARY KEY (id)",
    },
];

#[tokio::test]
async fn the_checksum_agrees_on_equal_tables_and_tells_every_difference() {
    let db = TestDb::new("mc_checksum").await;
    tells_every_difference(&db, SETUP, "ADD COLUMN x INT NULL", |id| MyKey(vec![mysql_async::Value::Int(id)]), DIFFERENCES).await;
}
