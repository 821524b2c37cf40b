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

/// One difference: what it is, the statements that make it in the shadow, the statements that
/// undo it.
pub struct Difference {
    pub what: &'static str,
    pub make: &'static str,
    pub undo: &'static str,
}

/// In `db`, after `setup` has created `t` (id key, [`ROWS`] rows) and its shadow `_t_new` for
/// `alter` with the same rows: the checksum of the whole table and of the chunk `(50, 150]` agree;
/// then for each of `differences`, made in the shadow, both differ, and agree again once undone.
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
    let plan = shadowswap_engine::Runner::new(d.clone(), fast_config()).preflight(&names, alter).await.unwrap();
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
    for Difference { what, make, undo } in differences {
        db.exec(make).await;
        let (whole, chunk) = sums(&plan).await;
        assert_ne!(whole.0, whole.1, "{what}: the whole-table checksum must differ");
        assert_ne!(chunk.0, chunk.1, "{what}: the chunk's checksum must differ");
        db.exec(undo).await;
        let (whole, chunk) = sums(&plan).await;
        assert_eq!((whole.0, chunk.0), (whole.1, chunk.1), "{what}: undone, the tables agree again");
    }
}
