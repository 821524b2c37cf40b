//! The staged backfill's statements ([`crate::staged_backfill`]): one chunk's `UPDATE` along the
//! chunk key, the count of rows still matching `--where`, and the server's trial of the
//! fragments. The operator's `--set` and `--where` are inserted as given (the engine has checked
//! their form, `shadowswap_engine::staged::backfill::check_fragments`, and the server judges them
//! with [`check`] before anything runs); `--where` is always parenthesised. Chunk-key values are
//! text parameters cast to the column's type, as the copy's ([`super::copy::range_where`]).

use std::time::Duration;

use shadowswap_engine::plan::Plan;
use shadowswap_engine::staged::backfill::{BackfillSpec, BackfillSql};

use super::connect::set_lock_timeout;
use super::copy::{key_names, range_where};
use super::Qualified;

/// `UPDATE t SET <set> WHERE <chunk range> AND (<where>)`; `range` is the chunk's key predicate
/// ([`super::copy::chunk_range`]). Under READ COMMITTED an UPDATE that finds a row changed by a
/// concurrent transaction waits for it, then re-checks its WHERE on the new version and
/// evaluates SET on it (PostgreSQL documentation, 13.2.1 "Read Committed Isolation Level"), so
/// a value written meanwhile is never overwritten by a stale one.
pub fn update_chunk(plan: &Plan, spec: &BackfillSpec, range: &str) -> String {
    format!("UPDATE {} SET {} WHERE {range} AND ({})", Qualified(&plan.names.table), spec.set.trim(), spec.where_.trim())
}

/// Rows matching `--where`: `SELECT count(*) FROM t WHERE (<where>)`, or with `limit`, counted
/// over a subquery that stops after `limit` rows (a bounded scan).
pub fn count(plan: &Plan, spec: &BackfillSpec, limit: Option<u64>) -> String {
    let t = Qualified(&plan.names.table);
    match limit {
        None => format!("SELECT count(*)::bigint FROM {t} WHERE ({})", spec.where_.trim()),
        Some(n) => {
            format!("SELECT count(*)::bigint FROM (SELECT 1 FROM {t} WHERE ({}) LIMIT {n}) AS _ssw_matching", spec.where_.trim())
        }
    }
}

/// The server's trial: `EXPLAIN UPDATE t SET <set> WHERE (<where>)`, run in a transaction that
/// is rolled back. EXPLAIN without ANALYZE parses, analyses (names, types, functions) and plans
/// the statement but does not run it (PostgreSQL documentation, "EXPLAIN").
pub fn check(plan: &Plan, spec: &BackfillSpec) -> String {
    format!("EXPLAIN UPDATE {} SET {} WHERE ({})", Qualified(&plan.names.table), spec.set.trim(), spec.where_.trim())
}

/// Every statement the backfill runs, for the dry run: one chunk's transaction (row and table
/// lock waits at most `lock_wait`; `$n` are the chunk's bounds, `$1`… of the advance its upper
/// key, chunk size and rows updated), the counts, the trial, the checkpoint table.
pub fn outline(plan: &Plan, spec: &BackfillSpec, lock_wait: Duration) -> BackfillSql {
    let range = range_where(&key_names(plan).0, &plan.key.columns, true);
    BackfillSql {
        chunk: vec![
            "BEGIN".to_string(),
            set_lock_timeout(lock_wait),
            update_chunk(plan, spec, &range),
            super::checkpoint::advance_outline(&plan.names.checkpoint),
            super::copy::ROW_LOCK_WAITERS.to_string(),
            "COMMIT".to_string(),
        ],
        count: count(plan, spec, None),
        estimate: count(plan, spec, Some(shadowswap_engine::staged::backfill::ESTIMATE_LIMIT)),
        check: format!("BEGIN; {}; ROLLBACK", check(plan, spec)),
        checkpoint: vec![super::checkpoint::create(&plan.names.checkpoint), super::checkpoint::upsert(&plan.names.checkpoint)],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing;
    use shadowswap_engine::model::Column;

    fn spec() -> BackfillSpec {
        BackfillSpec { set: " note = '#' || id ".into(), where_: "note IS NULL".into() }
    }

    #[test]
    fn statements() {
        let p = testing::plan_for(
            "t",
            vec![testing::col("id", "integer"), Column { nullable: true, ..testing::col("note", "text") }],
            "ADD COLUMN x int",
        );
        let o = outline(&p, &spec(), Duration::from_millis(1500));
        assert_eq!(o.chunk[1], "SET LOCAL lock_timeout = '1500ms'");
        assert!(
            o.chunk[2].starts_with(&format!("UPDATE {} SET note = '#' || id WHERE ROW(", Qualified(&p.names.table))),
            "{}",
            o.chunk[2]
        );
        assert!(o.chunk[2].ends_with(" AND (note IS NULL)"), "{}", o.chunk[2]);
        assert!(o.chunk[2].contains("$1::text::"), "{}", o.chunk[2]);
        assert!(o.chunk[3].starts_with("UPDATE "), "{}", o.chunk[3]);
        assert_eq!(
            count(&p, &spec(), None),
            format!("SELECT count(*)::bigint FROM {} WHERE (note IS NULL)", Qualified(&p.names.table))
        );
        assert!(count(&p, &spec(), Some(7)).ends_with("WHERE (note IS NULL) LIMIT 7) AS _ssw_matching"));
        assert_eq!(
            check(&p, &spec()),
            format!("EXPLAIN UPDATE {} SET note = '#' || id WHERE (note IS NULL)", Qualified(&p.names.table))
        );
        assert!(o.checkpoint[0].starts_with("CREATE TABLE IF NOT EXISTS"), "{}", o.checkpoint[0]);
    }
}
