//! Builders for the revert window ([`crate::revert`], docs/revert.md): the reverse capture
//! (`SECURITY DEFINER` trigger functions on the new table writing into `_<t>_old`, each in an
//! `EXCEPTION WHEN OTHERS` block that records a failure in the checkpoint instead of failing the
//! application's write), created in the swap transaction; the checkpoint row; the renames that
//! clear the way for the swap back; and the reverse plan whose swap is the forward swap with the
//! roles flipped ([`super::cutover::swap`]).

use shadowswap_engine::model::{TableRef, TableShape};
use shadowswap_engine::names::{byte_len, generated_name, Names};
use shadowswap_engine::plan::{ChunkKey, ColumnMap, Plan, PlanSql};

use super::capture::{function_name, truncate_trigger};
use super::{column_list, dollar_quote, literal, Ident, Qualified};
use crate::MAX_IDENTIFIER_BYTES;

/// Why the reverse capture could not write the old table exactly, for
/// [`shadowswap_engine::Dialect::revert_window_refusal`]: a chunk-key column compared by an
/// extension's operators, a generated column of the original that the new table stores, a
/// dropped NOT NULL column without a default.
pub fn refusal(plan: &Plan) -> Option<String> {
    let eq = |a: &str, b: &str| a == b;
    if let Some(c) = plan.key.columns.iter().find(|c| c.operator_schema.is_some()) {
        return Some(format!("chunk-key column {} is compared with an extension's operators", c.name));
    }
    for m in &plan.mapping {
        if plan.original.column(&m.source, eq).is_some_and(|c| c.generated) {
            return Some(format!("column {} is generated in the original table and cannot be written back", m.source));
        }
    }
    for name in &plan.dropped_columns {
        if let Some(c) = plan.original.column(name, eq) {
            if !c.nullable && !c.has_default && !c.generated {
                return Some(format!(
                    "the ALTER drops NOT NULL column {name}, which has no DEFAULT: rows inserted in the window would have no \
                     value for it in the old table; give it a DEFAULT first"
                ));
            }
        }
    }
    None
}

/// `_<t>_ssw_trn`: the reverse capture's `AFTER TRUNCATE` trigger takes the forward capture's
/// truncate trigger name (that one is dropped in the same swap transaction), so the swap back,
/// which is the forward swap with the roles flipped, finds and drops the reverse capture as its
/// own ([`super::capture::capture_triggers`] of [`reverse_names`]).
pub fn reverse_truncate_trigger(names: &Names) -> String {
    truncate_trigger(names)
}

/// `old.k = ROW.k AND …` (old table's key columns, new table's row).
fn old_key_match(plan: &Plan, row: &str) -> String {
    plan.key
        .columns
        .iter()
        .zip(&plan.key.shadow_columns)
        .map(|(o, n)| format!("{} = {row}.{}", Ident(&o.name), Ident(n)))
        .collect::<Vec<_>>()
        .join(" AND ")
}

/// The statement in a sub-block whose failure is recorded, not raised (PL/pgSQL "Trapping
/// Errors": the sub-block's changes are rolled back to its start, the writer's are kept).
/// Errors of concurrency and cancellation (class 40 `transaction_rollback`: serialization
/// failures, deadlocks; `lock_not_available`; `query_canceled`) are raised again: the writer's
/// transaction meets them as it would without the trigger, and must retry; caught, they would
/// mark the window broken for nothing (seen with SERIALIZABLE writers).
fn guarded(names: &Names, event: &str, stmt: &str, i: &str) -> String {
    format!(
        "{i}BEGIN\n{i}  {stmt};\n{i}EXCEPTION WHEN transaction_rollback OR lock_not_available OR query_canceled THEN\n{i}  \
         RAISE;\n{i}WHEN OTHERS THEN\n{i}  UPDATE {} SET revert_broken = COALESCE(revert_broken, \
         to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || {} || SQLERRM) WHERE id = 1;\n{i}END;\n",
        Qualified(&names.checkpoint),
        literal(&format!(" UTC, {event} not carried back to the old table: "))
    )
}

/// The reverse capture, in order insert, update, delete, truncate: `(CREATE FUNCTION, CREATE
/// TRIGGER, ALTER TABLE … ENABLE ALWAYS TRIGGER)` each, on `names.table` (the new table, once
/// the swap's renames ran) writing into `names.old`. Plain replay (the tables are in sync at
/// the swap): an insert writes the mapped columns (`OVERRIDING SYSTEM VALUE`; the old table's
/// dropped columns get their defaults); an update sets the non-key mapped columns of the row with
/// the old key, and the key columns only when they changed (dropped columns keep their values);
/// a delete deletes by key; a `TRUNCATE` cannot be carried back and is recorded as such. Added
/// columns are not carried back. Functions as [`super::capture::capture`]'s: `SECURITY
/// DEFINER`, fixed `search_path`, `ENABLE ALWAYS` (replica-role sessions are captured too).
pub fn reverse_capture(plan: &Plan, seed: u64) -> [(String, String, String); 4] {
    let n = &plan.names;
    let t = &n.table;
    let o = Qualified(&n.old);
    let key_sources: Vec<&str> = plan.key.columns.iter().map(|c| c.name.as_str()).collect();
    let insert = format!(
        "INSERT INTO {o} ({}) OVERRIDING SYSTEM VALUE VALUES ({})",
        column_list("", plan.mapping.iter().map(|m| m.source.as_str())),
        column_list("NEW.", plan.mapping.iter().map(|m| m.target.as_str()))
    );
    let sets = |key: bool| {
        plan.mapping
            .iter()
            .filter(|m| key_sources.contains(&m.source.as_str()) == key)
            .map(|m| format!("{} = NEW.{}", Ident(&m.source), Ident(&m.target)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let key_changed = plan
        .key
        .shadow_columns
        .iter()
        .map(|c| format!("NEW.{0} IS DISTINCT FROM OLD.{0}", Ident(c)))
        .collect::<Vec<_>>()
        .join(" OR ");
    let non_key = sets(false);
    let mut update = String::new();
    if !non_key.is_empty() {
        update.push_str(&format!("UPDATE {o} SET {non_key} WHERE {}", old_key_match(plan, "OLD")));
    }
    let move_key = format!("UPDATE {o} SET {} WHERE {}", sets(true), old_key_match(plan, "OLD"));
    let update_body = format!(
        "{}  IF {key_changed} THEN\n{}  END IF;\n",
        if update.is_empty() { String::new() } else { guarded(n, "an update", &update, "  ") },
        guarded(n, "an update", &move_key, "    ")
    );
    let delete = format!("DELETE FROM {o} WHERE {}", old_key_match(plan, "OLD"));
    let truncate_body = format!(
        "  UPDATE {} SET revert_broken = COALESCE(revert_broken, to_char(clock_timestamp() AT TIME ZONE 'UTC', \
         'YYYY-MM-DD HH24:MI:SS.US') || {}) WHERE id = 1;\n",
        Qualified(&n.checkpoint),
        literal(" UTC, a TRUNCATE of the table, which the old table did not follow")
    );
    let function = |name: &str, body: String| {
        format!(
            "CREATE FUNCTION {}() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS {}",
            function_name(t, name),
            dollar_quote(&format!("\nBEGIN\n{body}  RETURN NULL;\nEND\n"), seed)
        )
    };
    let trigger = |name: &str, event: &str, level: &str| {
        (
            format!(
                "CREATE TRIGGER {} AFTER {event} ON {} FOR EACH {level} EXECUTE FUNCTION {}()",
                Ident(name),
                Qualified(t),
                function_name(t, name)
            ),
            format!("ALTER TABLE {} ENABLE ALWAYS TRIGGER {}", Qualified(t), Ident(name)),
        )
    };
    let with = |f: String, (tr, a): (String, String)| (f, tr, a);
    let trn = reverse_truncate_trigger(n);
    [
        with(function(&n.revert_insert, guarded(n, "an insert", &insert, "  ")), trigger(&n.revert_insert, "INSERT", "ROW")),
        with(function(&n.revert_update, update_body), trigger(&n.revert_update, "UPDATE", "ROW")),
        with(function(&n.revert_delete, guarded(n, "a delete", &delete, "  ")), trigger(&n.revert_delete, "DELETE", "ROW")),
        with(function(&trn, truncate_body), trigger(&trn, "TRUNCATE", "STATEMENT")),
    ]
}

/// The statements the swap transaction runs after the forward swap's: the reverse capture
/// ([`reverse_capture`]) and the checkpoint's phase `revert window`.
pub fn in_swap(plan: &Plan, seed: u64) -> Vec<String> {
    let mut out: Vec<String> = reverse_capture(plan, seed).into_iter().flat_map(|(f, t, a)| [f, t, a]).collect();
    out.push(format!("UPDATE {} SET phase = 'revert window' WHERE id = 1", Qualified(&plan.names.checkpoint)));
    out
}

/// The names of the swap back: the table stays the table, `_<t>_old` plays the shadow, the new
/// table moves aside to `_<t>_new`, and the reverse triggers play the capture.
pub fn reverse_names(n: &Names) -> Names {
    Names {
        shadow: n.old.clone(),
        old: n.shadow.clone(),
        trigger_insert: n.revert_insert.clone(),
        trigger_update: n.revert_update.clone(),
        trigger_delete: n.revert_delete.clone(),
        ..n.clone()
    }
}

/// The plan of the swap back, for the forward swap's code with the roles flipped: from `current`
/// (the new table) to `old` (`_<t>_old`), each old column read from its name in the new table
/// (across the ALTER's column `renamed`, `(old, new)` pairs). Only what the swap reads is
/// meaningful: names, shapes, mapping (the key is the new table's primary key, or its first
/// unique index).
pub fn reverse_plan(
    forward: &Names,
    analysis: shadowswap_engine::alter::AlterAnalysis,
    current: TableShape,
    old: TableShape,
) -> Plan {
    let renamed = analysis.renamed_columns.clone();
    let mapping: Vec<ColumnMap> = old
        .columns
        .iter()
        .filter(|c| !c.generated)
        .filter_map(|c| {
            let source = renamed.iter().find(|(o, _)| *o == c.name).map(|(_, n)| n.clone()).unwrap_or_else(|| c.name.clone());
            current.column(&source, |a, b| a == b).map(|_| ColumnMap { source, target: c.name.clone() })
        })
        .collect();
    let index = current.indexes.iter().find(|i| i.primary).or_else(|| current.indexes.iter().find(|i| i.unique));
    let key = ChunkKey {
        index: index.map(|i| i.name.clone()).unwrap_or_default(),
        columns: index
            .map(|i| i.columns.iter().filter_map(|c| current.column(c, |a, b| a == b).cloned()).collect())
            .unwrap_or_default(),
        shadow_columns: index.map(|i| i.columns.clone()).unwrap_or_default(),
    };
    let dropped_columns =
        current.columns.iter().filter(|c| !mapping.iter().any(|m| m.source == c.name)).map(|c| c.name.clone()).collect();
    let added_columns =
        old.columns.iter().filter(|c| !mapping.iter().any(|m| m.target == c.name)).map(|c| c.name.clone()).collect();
    Plan {
        names: reverse_names(forward),
        analysis,
        original: current,
        altered: old,
        key,
        checksum_columns: mapping.clone(),
        mapping,
        not_checksummed: Vec::new(),
        dropped_columns,
        added_columns,
        new_unique_keys: Vec::new(),
        sql: PlanSql::default(),
        metadata_only: None,
        checkpoint: None,
    }
}

/// Where a relation of `_<t>_old` named like the forward swap's aside name `_<name>_old` moves
/// before the swap back, so the new table's `<name>` can move aside to `_<name>_old`:
/// `_<name>_ssw_rv`.
pub fn clear_way_name(name: &str) -> String {
    generated_name(name, "ssw_rv", MAX_IDENTIFIER_BYTES, byte_len)
}

/// For each name the swap back moves aside (`new_names`, the new table's indexes, statistics
/// objects or identity sequences), whether `old_names` (`_<t>_old`'s) already uses its aside name
/// `_<name>_old`: then `(that name, where it moves first)`.
pub fn collisions(new_names: &[String], old_names: &[String]) -> Vec<(String, String)> {
    new_names
        .iter()
        .filter_map(|n| {
            let aside = super::cutover::old_name(n);
            old_names.contains(&aside).then(|| (aside, clear_way_name(n)))
        })
        .collect()
}

/// `ALTER SEQUENCE "schema"."from" RENAME TO "to"`.
pub fn rename_sequence(schema: &str, from: &str, to: &str) -> String {
    format!("ALTER SEQUENCE {}.{} RENAME TO {}", Ident(schema), Ident(from), Ident(to))
}

/// Indexes of `$1` (a qualified name, as text): names.
pub const INDEX_NAMES: &str =
    "SELECT i.relname::text FROM pg_catalog.pg_index x JOIN pg_catalog.pg_class i ON i.oid = x.indexrelid WHERE x.indrelid = $1::text::regclass";

/// Statistics objects of `$1`: schema, name.
pub const STATISTICS_NAMES: &str = "SELECT n.nspname::text, s.stxname::text FROM pg_catalog.pg_statistic_ext s JOIN \
     pg_catalog.pg_namespace n ON n.oid = s.stxnamespace WHERE s.stxrelid = $1::text::regclass";

/// Sequences owned by a column of `$1` (identity and serial): schema, name.
pub const OWNED_SEQUENCE_NAMES: &str = "SELECT n.nspname::text, s.relname::text FROM pg_catalog.pg_depend d JOIN \
     pg_catalog.pg_class s ON s.oid = d.objid AND d.classid = 'pg_catalog.pg_class'::regclass JOIN pg_catalog.pg_namespace n \
     ON n.oid = s.relnamespace WHERE d.refobjid = $1::text::regclass AND d.refclassid = 'pg_catalog.pg_class'::regclass AND \
     s.relkind = 'S' AND d.deptype IN ('a', 'i')";

/// Clears `revert_broken` in the checkpoint row (a new window starts with none).
pub fn clear_broken(names: &Names) -> String {
    format!("UPDATE {} SET revert_broken = NULL WHERE id = 1", Qualified(&names.checkpoint))
}

/// Sets the checkpoint's phase; parameter `$1`: the phase.
pub fn set_phase(names: &Names) -> String {
    format!("UPDATE {} SET phase = $1, updated_at = now() WHERE id = 1", Qualified(&names.checkpoint))
}

/// Sets the window's end; parameter `$1`: the end (RFC 3339).
pub fn set_end(names: &Names) -> String {
    format!("UPDATE {} SET revert_until = $1, updated_at = now() WHERE id = 1", Qualified(&names.checkpoint))
}

/// Clears the window from the checkpoint (the swap did not happen).
pub fn clear_window(names: &Names) -> String {
    format!("UPDATE {} SET revert_until = NULL, revert_broken = NULL WHERE id = 1", Qualified(&names.checkpoint))
}

/// `phase, alter_text, revert_until, revert_broken` of the checkpoint row.
pub fn read_state(names: &Names) -> String {
    format!("SELECT phase, alter_text, revert_until, revert_broken FROM {} WHERE id = 1", Qualified(&names.checkpoint))
}

/// `DROP TABLE IF EXISTS <table>`.
pub fn drop_table_if_exists(table: &TableRef) -> String {
    format!("DROP TABLE IF EXISTS {}", Qualified(table))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{col, plan_for};

    #[test]
    fn the_reverse_capture_writes_the_old_table_and_records_failures() {
        let plan = plan_for("t", vec![col("id", "integer"), col("v", "text")], "ADD COLUMN x int");
        let [(fi, ti, ai), (fu, _, _), (fd, _, _), (ft, tt, _)] = reverse_capture(&plan, 0);
        assert!(
            fi.starts_with("CREATE FUNCTION \"public\".\"_t_ssw_rins\"() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER"),
            "{fi}"
        );
        assert!(
            fi.contains("INSERT INTO \"public\".\"_t_old\" (\"id\", \"v\") OVERRIDING SYSTEM VALUE VALUES (NEW.\"id\", NEW.\"v\");\n  EXCEPTION WHEN transaction_rollback OR lock_not_available OR query_canceled THEN\n    RAISE;\n  WHEN OTHERS THEN\n    UPDATE \"public\".\"_t_ssw_ckpt\" SET revert_broken = COALESCE(revert_broken"),
            "{fi}"
        );
        assert!(fi.contains("E' UTC, an insert not carried back to the old table: ' || SQLERRM"), "{fi}");
        assert_eq!(ti, "CREATE TRIGGER \"_t_ssw_rins\" AFTER INSERT ON \"public\".\"t\" FOR EACH ROW EXECUTE FUNCTION \"public\".\"_t_ssw_rins\"()");
        assert_eq!(ai, "ALTER TABLE \"public\".\"t\" ENABLE ALWAYS TRIGGER \"_t_ssw_rins\"");
        assert!(fu.contains("UPDATE \"public\".\"_t_old\" SET \"v\" = NEW.\"v\" WHERE \"id\" = OLD.\"id\""), "{fu}");
        assert!(fu.contains("IF NEW.\"id\" IS DISTINCT FROM OLD.\"id\" THEN"), "{fu}");
        assert!(fu.contains("UPDATE \"public\".\"_t_old\" SET \"id\" = NEW.\"id\" WHERE \"id\" = OLD.\"id\""), "{fu}");
        assert!(fd.contains("DELETE FROM \"public\".\"_t_old\" WHERE \"id\" = OLD.\"id\""), "{fd}");
        assert!(ft.contains("a TRUNCATE of the table"), "{ft}");
        assert_eq!(tt, "CREATE TRIGGER \"_t_ssw_trn\" AFTER TRUNCATE ON \"public\".\"t\" FOR EACH STATEMENT EXECUTE FUNCTION \"public\".\"_t_ssw_trn\"()");
    }

    #[test]
    fn the_swap_back_flips_the_roles() {
        let plan = plan_for("t", vec![col("id", "integer"), col("v", "text")], "ADD COLUMN x int");
        let r = reverse_names(&plan.names);
        assert_eq!((r.shadow.name.as_str(), r.old.name.as_str()), ("_t_old", "_t_new"));
        assert_eq!(r.triggers(), ["_t_ssw_rins", "_t_ssw_rupd", "_t_ssw_rdel"]);
        assert_eq!(
            collisions(&["t_pkey".into(), "t_v_idx".into()], &["_t_pkey_old".into(), "t_other".into()]),
            vec![("_t_pkey_old".to_string(), "_t_pkey_ssw_rv".to_string())]
        );
    }

    #[test]
    fn refusals_name_the_column() {
        let mut v = col("v", "text");
        v.generated = true;
        let plan = plan_for("t", vec![col("id", "integer"), col("v", "text")], "ADD COLUMN x int");
        assert_eq!(refusal(&plan), None);
        let mut p = plan.clone();
        p.original.columns[1] = v;
        assert!(refusal(&p).unwrap().contains("column v is generated"));
    }
}
