//! The chunk checksum on PostgreSQL agrees on equal tables and tells every kind of difference
//! ([`shadowswap_integration::checksum`]): a changed value, one byte of a long value, `NULL`
//! against `''`, values moved between columns or between rows (a linear row hash such as a CRC
//! misses that one), a missing row, a row twice.

use shadowswap_integration::checksum::{tells_every_difference, Difference};
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
