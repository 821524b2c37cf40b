//! The staged backfill's statements (`staged_backfill.rs` of this crate): one chunk's `UPDATE` along the
//! chunk key, the count of rows still matching `--where`, and the server's trial of the
//! fragments. The operator's `--set` and `--where` are inserted as given (the engine has checked
//! their form, `shadowswap_engine::staged::backfill::check_fragments`, and the server judges them
//! with [`check`] before anything runs); `--where` is always parenthesised.

use shadowswap_engine::plan::Plan;
use shadowswap_engine::staged::backfill::{BackfillSpec, BackfillSql};

use super::copy::{copy_time_zone, force_key, innodb_lock_wait_timeout, key_names};
use super::Qualified;

/// `UPDATE t FORCE INDEX (key) SET <set> WHERE <chunk range> AND (<where>)`, in the server's
/// default time zone like the copy ([`copy_time_zone`]: the time zone an application session
/// evaluates the same expressions in). `range` is the chunk's key predicate
/// ([`super::copy::key_range_where`]). InnoDB's UPDATE reads each row's latest committed version under an
/// exclusive row lock and evaluates `SET` and `WHERE` on it (MariaDB KB, "InnoDB Lock Modes":
/// locking reads see the latest version), so a value written meanwhile is never overwritten by
/// a stale one.
pub fn update_chunk(plan: &Plan, spec: &BackfillSpec, range: &str) -> String {
    format!(
        "{}UPDATE {} {} SET {} WHERE {range} AND ({})",
        copy_time_zone(plan),
        Qualified(&plan.names.table),
        force_key(plan),
        spec.set.trim(),
        spec.where_.trim()
    )
}

/// Rows matching `--where`: `SELECT COUNT(*) FROM t WHERE (<where>)`, or with `limit`, counted
/// over a subquery that stops after `limit` rows (a bounded scan).
pub fn count(plan: &Plan, spec: &BackfillSpec, limit: Option<u64>) -> String {
    let t = Qualified(&plan.names.table);
    match limit {
        None => format!("SELECT COUNT(*) FROM {t} WHERE ({})", spec.where_.trim()),
        Some(n) => format!("SELECT COUNT(*) FROM (SELECT 1 FROM {t} WHERE ({}) LIMIT {n}) AS _ssw_matching", spec.where_.trim()),
    }
}

/// The server's trial: `EXPLAIN UPDATE t SET <set> WHERE (<where>)` resolves every name and
/// function of both fragments and plans the statement without running it (MariaDB KB,
/// "EXPLAIN": EXPLAIN works with UPDATE and DELETE).
pub fn check(plan: &Plan, spec: &BackfillSpec) -> String {
    format!("EXPLAIN UPDATE {} SET {} WHERE ({})", Qualified(&plan.names.table), spec.set.trim(), spec.where_.trim())
}

/// The chunk `(after, upto]`'s key predicate with placeholders, for the dry run (a chunk in
/// the middle of the table: both ends given), as the alter's dry run shows it
/// ([`super::dry_run`]): the generic keyset range. For an ENUM chunk key the run writes the
/// range as lists of index numbers ([`super::copy::key_range_where`]), which depend on the bounds' values.
fn outline_range(plan: &Plan) -> String {
    let placeholders = vec!["?"; plan.key.columns.len()];
    super::copy::range_where(&key_names(plan).0, &plan.key.columns, Some(&placeholders[..]), &placeholders).0
}

/// Every statement the backfill runs, for the dry run: one chunk's transaction (with the lock
/// wait `lock_wait_s` in whole seconds), the counts, the trial, the checkpoint table.
pub fn outline(plan: &Plan, spec: &BackfillSpec, lock_wait_s: u64) -> BackfillSql {
    BackfillSql {
        chunk: vec![
            innodb_lock_wait_timeout(lock_wait_s),
            "START TRANSACTION".to_string(),
            update_chunk(plan, spec, &outline_range(plan)),
            super::checkpoint::advance_checkpoint(&plan.names),
            super::copy::ROW_LOCK_WAITERS.to_string(),
            "COMMIT".to_string(),
        ],
        count: count(plan, spec, None),
        estimate: count(plan, spec, Some(shadowswap_engine::staged::backfill::ESTIMATE_LIMIT)),
        check: check(plan, spec),
        checkpoint: vec![
            super::checkpoint::create_checkpoint_table(&plan.names),
            super::checkpoint::upsert_checkpoint(&plan.names),
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::super::copy::key_range_where;
    use super::super::test_plans::{enum_key_plan, plan};
    use super::*;

    fn spec() -> BackfillSpec {
        BackfillSpec { set: " c = id * 2 ".into(), where_: "c IS NULL OR c = 0".into() }
    }

    #[test]
    fn the_chunk_update_is_along_the_key_with_the_where_parenthesised() {
        let p = plan("int", "ADD COLUMN created datetime");
        assert_eq!(
            update_chunk(&p, &spec(), "(`id` > ?) AND (`id` <= ?)"),
            "SET STATEMENT time_zone = @@global.time_zone FOR UPDATE `d`.`t` FORCE INDEX (`PRIMARY`) SET c = id * 2 \
             WHERE (`id` > ?) AND (`id` <= ?) AND (c IS NULL OR c = 0)"
        );
        let o = outline(&p, &spec(), 2);
        assert_eq!(o.chunk[0], "SET SESSION innodb_lock_wait_timeout = 2");
        assert!(o.chunk[2].contains("WHERE ((`id` > ?)) AND ((`id` <= ?)) AND (c IS NULL OR c = 0)"), "{}", o.chunk[2]);
        assert!(o.chunk[3].starts_with("UPDATE `d`.`_t_ssw_ckpt` SET low_watermark = ?"), "{}", o.chunk[3]);
        assert!(o.checkpoint[0].starts_with("CREATE TABLE IF NOT EXISTS `d`.`_t_ssw_ckpt`"));
    }

    #[test]
    fn counts_and_the_trial() {
        let p = plan("int", "ADD COLUMN created datetime");
        assert_eq!(count(&p, &spec(), None), "SELECT COUNT(*) FROM `d`.`t` WHERE (c IS NULL OR c = 0)");
        assert_eq!(
            count(&p, &spec(), Some(10)),
            "SELECT COUNT(*) FROM (SELECT 1 FROM `d`.`t` WHERE (c IS NULL OR c = 0) LIMIT 10) AS _ssw_matching"
        );
        assert_eq!(check(&p, &spec()), "EXPLAIN UPDATE `d`.`t` SET c = id * 2 WHERE (c IS NULL OR c = 0)");
    }

    #[test]
    fn names_are_quoted_and_an_enum_key_is_bound_by_index_number() {
        let p = enum_key_plan();
        let s = BackfillSpec { set: "name = 'x'".into(), where_: "name = ''".into() };
        let o = outline(&p, &s, 1);
        assert!(o.chunk[2].contains("UPDATE `d``b`.`t x` FORCE INDEX (`PRIMARY`) SET name = 'x' WHERE "), "{}", o.chunk[2]);
        let (cols, _) = key_names(&p);
        let (range, params) = key_range_where(
            &cols,
            &p.key.columns,
            Some(&[mysql_async::Value::UInt(1), mysql_async::Value::Int(5)]),
            Some(&[mysql_async::Value::UInt(2), mysql_async::Value::Int(9)]),
        );
        let run = update_chunk(&p, &s, &range);
        assert!(run.contains("`e` IN (?)") && run.ends_with("AND (name = '')"), "{run}");
        assert_eq!(params.len(), 6, "{params:?}");
    }
}
