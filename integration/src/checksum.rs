//! The chunk checksum against the real server, for both dialects ([`tells_every_difference`]):
//! a table and a shadow holding the same rows agree; every kind of difference a copy or a capture
//! could leave makes them differ, over the whole table (open bounds) and over one chunk.

use shadowswap_engine::dialect::ChunkChecksum;
use shadowswap_engine::plan::Plan;
use shadowswap_engine::Dialect;

use crate::db::TestDatabase;
use crate::run::fast_config;

/// Rows of the twin tables [`tells_every_difference`] works on (keys 1 to 200).
pub const ROWS: u64 = 200;

/// One difference between the twin tables, made in the shadow.
pub struct Difference {
    /// What it is, for the failure message.
    pub what: &'static str,
    /// Statements (separated by `;`) that make it.
    pub make: &'static str,
    /// Statements that undo it: the tables agree again.
    pub undo: &'static str,
}

/// The differences whose SQL both servers run alike (on the twin tables' columns `id`, `a`, `b`,
/// `c`; `b` is NULL where `id` is a multiple of 7).
pub const COMMON: &[Difference] = &[
    Difference {
        what: "a changed value",
        make: "UPDATE _t_new SET a = 'changed' WHERE id = 100",
        undo: "UPDATE _t_new SET a = 'a100' WHERE id = 100",
    },
    Difference {
        what: "NULL against ''",
        make: "UPDATE _t_new SET b = '' WHERE id = 98",
        undo: "UPDATE _t_new SET b = NULL WHERE id = 98",
    },
    Difference {
        what: "values moved between columns",
        make: "UPDATE _t_new SET a = b, b = a WHERE id = 100",
        undo: "UPDATE _t_new SET a = 'a100', b = 'b100' WHERE id = 100",
    },
    Difference {
        what: "a missing row",
        make: "DELETE FROM _t_new WHERE id = 100",
        undo: "INSERT INTO _t_new (id, a, b, c) SELECT id, a, b, c FROM t WHERE id = 100",
    },
];

/// In `db`, after `setup` has created `t` (id key, [`ROWS`] rows) and its shadow `_t_new` for
/// `alter` with the same rows: the checksum of the whole table and of the chunk `(50, 150]` agree;
/// then for each of [`COMMON`] and `differences`, made in the shadow, both differ, and agree again once undone.
/// `key` makes a chunk-key value of the dialect from an id.
pub async fn tells_every_difference<T: TestDatabase>(
    db: &T,
    setup: &str,
    alter: &str,
    key: impl Fn(i64) -> <T::Dialect as Dialect>::Key,
    differences: &[Difference],
) {
    let d = db.dialect().await;
    let names = d.names(&db.table("t"));
    db.exec(setup.split("-- shadow\n").next().unwrap()).await;
    let plan = shadowswap_engine::Runner::new(d.clone(), fast_config()).preflight(&names, alter, false).await.unwrap();
    db.exec(setup.split("-- shadow\n").nth(1).expect("setup has a '-- shadow' part")).await;
    let sums = |plan: &Plan| {
        let (d, lo, hi) = (d.clone(), key(50), key(150));
        let plan = plan.clone();
        async move {
            let whole: (ChunkChecksum, ChunkChecksum) = d.checksum_chunk(&plan, None, None).await.unwrap();
            let chunk = d.checksum_chunk(&plan, Some(&lo), Some(&hi)).await.unwrap();
            (whole, chunk)
        }
    };
    let (whole, chunk) = sums(&plan).await;
    assert_eq!(whole.0, whole.1, "equal tables, whole table");
    assert_eq!(chunk.0, chunk.1, "equal tables, one chunk");
    assert_eq!((whole.0.rows, chunk.0.rows), (ROWS, 100));
    for Difference { what, make, undo } in COMMON.iter().chain(differences) {
        db.exec(make).await;
        let (whole, chunk) = sums(&plan).await;
        assert_ne!(whole.0, whole.1, "{what}: the whole-table checksum must differ");
        assert_ne!(chunk.0, chunk.1, "{what}: the chunk's checksum must differ");
        db.exec(undo).await;
        let (whole, chunk) = sums(&plan).await;
        assert_eq!((whole.0, chunk.0), (whole.1, chunk.1), "{what}: undone, the tables agree again");
    }
}
