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

/// Rows of the tables the `--checksum-threads` tests migrate: the first [`THREADS`] checksum
/// chunks are sized before any has finished (10,000 rows each); the rest adapt to
/// `--checksum-chunk-time 200ms` and grow at most 1.5 times a chunk, so there are more chunks
/// than threads. (A target near one chunk's fixed cost, a few ms on a busy test server with
/// four sessions at once, shrinks chunks to single rows: tens of thousands of chunks.)
pub const PARALLEL_ROWS: u64 = 100_000;

/// `--checksum-threads` of those tests.
pub const THREADS: usize = 4;

/// Keys the mismatch tests change in the shadow, in key order, far enough apart to fall in
/// different chunks: the error must name the first one's.
pub const PLANTED: [u64; 2] = [61_234, 97_000];

/// The environment that makes the CLI log each checksum chunk (`checksum chunk compared`, at
/// debug level, with `in_flight`).
pub const CHUNK_LOG: (&str, &str) = ("RUST_LOG", "info,shadowswap_engine::checksum=debug");

/// `alter` of table `t` at `dsn` with `alter`, executed, [`THREADS`] checksum chunks at once
/// with a 200 ms chunk time, and `extra`.
pub fn parallel_args(dsn: &str, alter: &str, extra: &[&str]) -> Vec<String> {
    let threads = THREADS.to_string();
    let mut a: Vec<String> = [
        "alter",
        "--dsn",
        dsn,
        "--table",
        "t",
        "--alter",
        alter,
        "--execute",
        "--checksum-threads",
        &threads,
        "--checksum-chunk-time",
        "200ms",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    a.extend(extra.iter().map(|s| s.to_string()));
    a
}

/// From stderr logged with [`CHUNK_LOG`]: how many checksum chunks were compared, and the most
/// that were in flight at once.
pub fn chunks_compared(stderr: &str) -> (usize, usize) {
    let lines: Vec<&str> = stderr.lines().filter(|l| l.contains("checksum chunk compared")).collect();
    let in_flight = |l: &str| -> usize {
        let tail = l.split("in_flight=").nth(1).unwrap_or_else(|| panic!("no in_flight in {l}"));
        tail.split(|c: char| !c.is_ascii_digit()).next().and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("{l}"))
    };
    (lines.len(), lines.iter().map(|l| in_flight(l)).max().unwrap_or(0))
}

/// The bounds of the chunk a checksum-mismatch error line names, `(after, upto]` of a one-column
/// integer key (`start`: 0, `end`: `u64::MAX`). Works for both dialects' key texts (`(10000)`,
/// `('10000')`).
pub fn mismatch_chunk(line: &str) -> (u64, u64) {
    let range = line.split(" in chunk (").nth(1).and_then(|r| r.split("]: ").next()).unwrap_or_else(|| panic!("{line}"));
    let (after, upto) = range.split_once(", ").unwrap_or_else(|| panic!("{line}"));
    let number = |s: &str, open: u64| -> u64 {
        if s == "start" || s == "end" {
            return open;
        }
        s.chars().filter(char::is_ascii_digit).collect::<String>().parse().unwrap_or_else(|_| panic!("{s} in {line}"))
    };
    (number(after, 0), number(upto, u64::MAX))
}
