//! The dry run's SQL ([`plan_sql`]): what each phase will run, printed by the same builders the
//! run uses — the shadow's creation ([`sql::shadow::outline`]), the capture
//! ([`sql::capture::outline`]), one chunk's copy ([`sql::copy::outline`]) and the cut-over's
//! outline ([`sql::cutover::outline`]). What the run reads from the catalog first (identity
//! kinds, key operators, dependents) is not known to the dry run and left out.

use shadowswap_engine::plan::{Plan, PlanSql};

use crate::sql;

/// The SQL `plan` will run, for the dry run: the checkpoint table's creation first (it is
/// written before the shadow is created), and each chunk's copy followed by the checkpoint's
/// advance in the same transaction: the fast path, then the fallback that redoes a chunk the
/// fast path rolled back ([`sql::copy::outline`]).
///
/// The capture has no shadow to read identity kinds from: `GENERATED ALWAYS` identity columns
/// still show in the SET lists here, the run leaves them out. Nor key operators: the run
/// compares keys with their unique index's equality operator, schema-qualified (e.g.
/// `OPERATOR("public".=)` for `citext`).
pub fn plan_sql(plan: &Plan) -> PlanSql {
    PlanSql {
        shadow: std::iter::once(sql::checkpoint::create(&plan.names.checkpoint)).chain(sql::shadow::outline(plan)).collect(),
        capture: sql::capture::outline(plan),
        copy: sql::copy::outline(plan, &sql::checkpoint::advance_outline(&plan.names.checkpoint)).join(";\n  "),
        cut_over: sql::cutover::outline(plan),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deps::Deps;
    use crate::testing::{col, plan_for};

    /// The dry run prints exactly what the run's builders produce, given what the run reads.
    #[test]
    fn the_dry_run_prints_what_runs() {
        let plan = plan_for("t", vec![col("id", "integer"), col("v", "text")], "ADD COLUMN c int DEFAULT 7");
        let dry = plan_sql(&plan);
        let n = &plan.names;
        // The shadow: the run's create and ALTER (see `shadow::create_shadow`).
        assert_eq!(
            dry.shadow,
            [
                sql::checkpoint::create(&n.checkpoint),
                sql::shadow::create_like(&n.shadow, &n.table),
                sql::shadow::alter_table(&n.shadow, &plan.analysis.spec)
            ]
        );
        assert_eq!(dry.shadow[2], "ALTER TABLE \"public\".\"_t_new\" ADD COLUMN c int DEFAULT 7");
        // The capture: the run's statements after it acts as the owner and drops leftovers,
        // for a table without identity columns or extension key types, seed aside.
        let run = sql::capture::install(&plan, "owner", &[], &[], 0);
        assert_eq!(dry.capture, run[9..]);
        assert_eq!(dry.capture.len(), 12);
        // The copy: the run's statements for a chunk with both ends, fast path then fallback,
        // each followed by the checkpoint's advance in the chunk's transaction.
        let (where_, _) = sql::copy::chunk_range(&plan, Some(&["1".to_string()]), &["2".to_string()]);
        let shadow_where = sql::copy::shadow_chunk_range(&plan, true);
        let copy: Vec<&str> = dry.copy.split(";\n  ").collect();
        let lock = sql::copy::lock_for_copy(&n.table);
        assert!(sql::copy::begin_chunk(&n.table, std::time::Duration::from_secs(1)).ends_with(&lock));
        assert_eq!(
            copy[..4],
            [
                lock.as_str(),
                &sql::copy::lock_chunk_rows(&plan, &where_),
                &sql::copy::clear_shadow_range(&plan, &shadow_where),
                &sql::copy::insert_chunk(&plan, &where_)
            ]
        );
        assert_eq!(copy[5], sql::copy::ROW_LOCK_WAITERS);
        assert_eq!(copy[6], format!("{}\n  {lock}", sql::copy::OUTLINE_FALLBACK));
        assert_eq!(copy[7], sql::copy::copy_chunk(&plan, &where_, &[]));
        assert_eq!(copy.len(), 10);
        assert_eq!((copy[4], copy[5]), (copy[8], copy[9]));
        let advance = copy[4];
        assert_eq!(
            advance.replace("$1", "E'[\"2\"]'").replace("$2", "10").replace("$3", "9"),
            sql::checkpoint::advance(&n.checkpoint, "[\"2\"]", 10, 9)
        );
        // The cut-over: its locks and renames are the run's statements.
        let swap = sql::cutover::swap(&plan, &Deps::default());
        assert!(sql::cutover::begin_swap(n, std::time::Duration::from_secs(1)).contains(&sql::cutover::lock_tables(n)));
        assert!(dry.cut_over.contains(&sql::cutover::lock_tables(n)));
        for rename in &swap[8..10] {
            assert!(rename.starts_with("ALTER TABLE") && dry.cut_over.contains(rename.as_str()), "{rename}");
        }
    }
}
