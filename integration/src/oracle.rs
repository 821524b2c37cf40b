//! The server as the oracle: the right result of an ALTER is what a plain `ALTER TABLE` on a
//! clone produces. A test makes twin tables holding the same rows, runs the ALTER natively on the
//! clone and with shadowswap ([`migrate`]) on the original, and compares the two
//! ([`assert_matches_clone`], [`assert_rows_match_clone`]).

use shadowswap_engine::runner::Outcome;
use shadowswap_engine::{MigrationConfig, Runner};

use crate::db::TestDatabase;

/// Run `spec` on `table` with shadowswap in-process (`config`) to the swap; panics, naming the
/// spec, on any other outcome.
pub async fn migrate<D: TestDatabase>(db: &D, table: &str, spec: &str, config: MigrationConfig) {
    let runner = Runner::new(db.dialect().await, config);
    match runner.run(&db.table(table), spec).await {
        Ok(Outcome::Swapped(_)) => {}
        other => panic!("{spec}: {other:?}"),
    }
}

/// After `spec` ran on both: `t` (migrated by shadowswap) has the definition of `o` (the clone
/// ALTERed natively) and `rows` rows, each equal to the clone's, in key (`id`) order.
pub async fn assert_matches_clone<D: TestDatabase>(db: &D, t: &str, o: &str, spec: &str, rows: usize) {
    assert_eq!(db.definition(t).await, db.definition(o).await, "{spec}: definition");
    assert_eq!(assert_rows_match_clone(db, t, o, spec).await, rows, "{spec}");
}

/// `t` (migrated by shadowswap) holds exactly the rows of `o` (the clone ALTERed natively), in
/// key (`id`) order; `what` names the case in the messages. Returns the number of rows.
pub async fn assert_rows_match_clone<D: TestDatabase>(db: &D, t: &str, o: &str, what: &str) -> usize {
    let (got, want) = (db.rows(t, "id").await, db.rows(o, "id").await);
    assert_eq!(got.len(), want.len(), "{what}: row count");
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(g, w, "{what}: a row differs from the native ALTER's");
    }
    got.len()
}
