//! The change capture's statements ([`crate::capture`]): the four `SECURITY DEFINER` trigger
//! functions and their triggers (insert, update, delete, truncate), installing and removing
//! them, and the catalog reads that find them. [`outline`] is what the dry run prints.

use shadowswap_engine::model::TableRef;
use shadowswap_engine::names::{byte_len, Names};
use shadowswap_engine::plan::Plan;

use super::copy::upsert_on_key;
use super::owner::set_local_role;
use super::{column_list, dollar_quote, Ident, Qualified};

/// `OPERATOR("schema".op)`: an operator named by its schema, so that it resolves the same under
/// any `search_path` (the capture functions run with `search_path = pg_catalog, pg_temp`, where
/// an extension type's `=`, e.g. `citext`'s or `ltree`'s in `public`, is not visible; an
/// unqualified `=` then fails with "operator does not exist" or, through an implicit cast to
/// text, compares case-sensitively). `None` when `name` is not an operator name (only the
/// characters PostgreSQL allows in one: `+ - * / < > = ~ ! @ # % ^ & | ` ?`), so nothing read
/// from the catalog reaches the SQL text unquoted. See "Operator Invocation" in the PostgreSQL
/// documentation (section 4.1.3 / 4.2.5).
pub fn qualified_operator(schema: &str, name: &str) -> Option<String> {
    const OP_CHARS: &str = "+-*/<>=~!@#%^&|`?";
    (!name.is_empty() && name.len() <= 63 && name.chars().all(|c| OP_CHARS.contains(c)))
        .then(|| format!("OPERATOR({}.{name})", Ident(schema)))
}

/// The equality operator of each chunk-key column, in key order: `key_eq[i]` compares shadow
/// key column `i` (see [`qualified_operator`]); an empty slice means a plain `=` (the dry run,
/// which cannot read the catalog).
fn key_eq_op(key_eq: &[String], i: usize) -> &str {
    key_eq.get(i).map(String::as_str).unwrap_or("=")
}

fn key_match(plan: &Plan, row: &str, key_eq: &[String]) -> String {
    plan.key
        .shadow_columns
        .iter()
        .zip(&plan.key.columns)
        .enumerate()
        .map(|(i, (t, s))| format!("{} {} {row}.{}", Ident(t), key_eq_op(key_eq, i), Ident(&s.name)))
        .collect::<Vec<_>>()
        .join(" AND ")
}

/// A capture trigger function name, schema-qualified.
pub fn function_name(table: &TableRef, name: &str) -> String {
    format!("{}.{}", Ident(&table.schema), Ident(name))
}

/// Name of the capture's statement-level `AFTER TRUNCATE` trigger (and its function),
/// `_<t>_ssw_trn`, made by the same generator as every other name ([`generated_name`]).
///
/// [`generated_name`]: shadowswap_engine::names::generated_name
pub fn truncate_trigger(names: &Names) -> String {
    shadowswap_engine::names::generated_name(&names.table.name, "ssw_trn", crate::MAX_IDENTIFIER_BYTES, byte_len)
}

/// The names of the four capture triggers (and their functions): the engine's three row
/// triggers (insert, update, delete) and [`truncate_trigger`].
pub fn capture_triggers(names: &Names) -> [String; 4] {
    let [i, u, d] = names.triggers();
    [i.to_string(), u.to_string(), d.to_string(), truncate_trigger(names)]
}

/// The capture triggers on table `$1` (a qualified name, as text) among the names `$2`, with
/// their `tgenabled` state (`'A'`: fires in every `session_replication_role`).
pub const CAPTURE_TRIGGERS_ENABLED: &str =
    "SELECT tgname::text, tgenabled::text FROM pg_catalog.pg_trigger WHERE tgrelid = $1::text::regclass AND tgname::text = ANY($2)";

/// The capture functions that exist in schema `$1` among the names `$2` (text[]), by name: what
/// an earlier run left, or what this run installed.
pub const CAPTURE_FUNCTIONS: &str = "SELECT p.proname::text FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace \
     WHERE n.nspname = $1 AND p.proname = ANY($2) ORDER BY 1";

/// The four capture trigger functions and their triggers, in order insert, update, delete,
/// truncate: `(CREATE FUNCTION, CREATE TRIGGER, ALTER TABLE … ENABLE ALWAYS TRIGGER)` each.
///
/// The functions are `SECURITY DEFINER` (the application's role need not have any privilege on
/// the shadow table) with a fixed `search_path`, as PostgreSQL's documentation advises for such
/// functions ("Writing SECURITY DEFINER Functions Safely"); key comparisons therefore use
/// `key_eq`, the schema-qualified equality operator of each shadow key column's unique-index
/// operator class ([`qualified_operator`]; empty: plain `=`). An insert or update upserts the new
/// row on the chunk key, key columns included (see `upsert_on_key`); an update that changes
/// the key (or a column of `always_identity`, the shadow's `GENERATED ALWAYS AS IDENTITY`
/// columns, which an upsert cannot set) first deletes the old key's row; a delete deletes by key.
/// A `TRUNCATE` of the table (statement level) truncates the shadow. They run in the writer's
/// transaction, after its change.
///
/// Every trigger fires `ALWAYS`, in any `session_replication_role`: ordinary triggers do not
/// fire in sessions with `session_replication_role = replica` (logical replication apply
/// workers, many ETL tools), whose writes would otherwise be lost ("ALTER TABLE … ENABLE ALWAYS
/// TRIGGER", PostgreSQL documentation of ALTER TABLE). The bodies are dollar-quoted with a tag
/// derived from `seed` that does not occur in them ([`dollar_quote`]).
///
/// Deleting by the old key under REPEATABLE READ or SERIALIZABLE: there the trigger's statements
/// run with the writer's transaction snapshot, in which a row that a chunk copied after that
/// snapshot was taken does not exist, so the DELETE would miss it and leave a deleted (or
/// moved-away) row in the shadow. When the DELETE finds nothing at those levels, an insert of
/// the old row with `ON CONFLICT (key) DO NOTHING` tells "not copied yet" from "copied, but
/// invisible to this snapshot": PostgreSQL raises `serialization_failure` for a conflicting row
/// the snapshot cannot see (the writer's transaction rolls back, as it would for any concurrent
/// update at those levels); otherwise the probe row is inserted and deleted again. A copied row
/// holds exactly the old row's values (a change to the row after the chunk would have failed the
/// same way first), so a constraint error from the probe means there was no such row.
/// `TRUNCATE` is not MVCC-bound, so the truncate trigger empties the shadow at any isolation.
pub fn capture(plan: &Plan, always_identity: &[String], key_eq: &[String], seed: u64) -> [(String, String, String); 4] {
    let n = &plan.names;
    let function = |name: &str, source: &str| {
        format!(
            "CREATE FUNCTION {}() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = {FUNCTION_SEARCH_PATH} AS {}",
            function_name(&n.table, name),
            dollar_quote(source, seed)
        )
    };
    let trigger = |name: &str, event: &str, level: &str| {
        (
            format!(
                "CREATE TRIGGER {} AFTER {event} ON {} FOR EACH {level} EXECUTE FUNCTION {}()",
                Ident(name),
                Qualified(&n.table),
                function_name(&n.table, name)
            ),
            format!("ALTER TABLE {} ENABLE ALWAYS TRIGGER {}", Qualified(&n.table), Ident(name)),
        )
    };
    let events = [("INSERT", "ROW"), ("UPDATE", "ROW"), ("DELETE", "ROW"), ("TRUNCATE", "STATEMENT")];
    let sources = capture_sources(plan, always_identity, key_eq);
    std::array::from_fn(|i| {
        let (name, source) = &sources[i];
        let (t, a) = trigger(name, events[i].0, events[i].1);
        (function(name, source), t, a)
    })
}

/// The `search_path` every capture function is created with (`SET search_path = …`), as
/// `pg_proc.proconfig` then holds it: `search_path=pg_catalog, pg_temp`.
pub const FUNCTION_SEARCH_PATH: &str = "pg_catalog, pg_temp";

/// `pg_trigger.tgtype` of each capture trigger, in [`capture_triggers`] order: `AFTER … FOR
/// EACH ROW` insert (`ROW` 1 + `INSERT` 4), update (1 + 16), delete (1 + 8), and `AFTER
/// TRUNCATE FOR EACH STATEMENT` (32). Bits from PostgreSQL's `catalog/pg_trigger.h`.
pub const CAPTURE_TRIGGER_TYPES: [i32; 4] = [5, 17, 9, 32];

/// The name and the source (`pg_proc.prosrc`: the text inside the dollar quotes) of each capture
/// function, in [`capture_triggers`] order; [`capture`] creates them, and a resume compares the
/// functions it finds with them ([`CAPTURE_DEFINITIONS`]). See [`capture`] for what they do.
pub fn capture_sources(plan: &Plan, always_identity: &[String], key_eq: &[String]) -> [(String, String); 4] {
    let n = &plan.names;
    let s = Qualified(&n.shadow);
    let upsert = format!(
        "INSERT INTO {s} ({}) OVERRIDING SYSTEM VALUE VALUES ({}) {}",
        column_list("", plan.mapping.iter().map(|m| m.target.as_str())),
        column_list("NEW.", plan.mapping.iter().map(|m| m.source.as_str())),
        upsert_on_key(plan, always_identity)
    );
    let identity_sources = plan
        .mapping
        .iter()
        .filter(|m| always_identity.contains(&m.target) && !plan.key.shadow_columns.contains(&m.target))
        .map(|m| format!("NEW.{0} IS DISTINCT FROM OLD.{0}", Ident(&m.source)));
    // Key columns are NOT NULL (a chunk key is a primary key or a unique key over NOT NULL
    // columns), so `NOT (a = b)` is the key's own inequality.
    let key_changed = plan
        .key
        .columns
        .iter()
        .enumerate()
        .map(|(i, c)| format!("NOT (NEW.{0} {1} OLD.{0})", Ident(&c.name), key_eq_op(key_eq, i)))
        .chain(identity_sources)
        .collect::<Vec<_>>()
        .join(" OR ");
    let source = |body: String| format!("\nBEGIN\n{body}  RETURN NULL;\nEND\n");
    let old_key = key_match(plan, "OLD", key_eq);
    let delete_old = |indent: &str| {
        format!(
            "{indent}DELETE FROM {s} WHERE {old_key};\n\
             {indent}IF NOT FOUND AND current_setting('transaction_isolation') IN ('repeatable read', 'serializable') THEN\n\
             {indent}  BEGIN\n\
             {indent}    INSERT INTO {s} ({}) OVERRIDING SYSTEM VALUE VALUES ({}) ON CONFLICT ({}) DO NOTHING;\n\
             {indent}    DELETE FROM {s} WHERE {old_key};\n\
             {indent}  EXCEPTION WHEN integrity_constraint_violation OR data_exception THEN NULL;\n\
             {indent}  END;\n\
             {indent}END IF;\n",
            column_list("", plan.mapping.iter().map(|m| m.target.as_str())),
            column_list("OLD.", plan.mapping.iter().map(|m| m.source.as_str())),
            column_list("", plan.key.shadow_columns.iter().map(String::as_str)),
        )
    };
    [
        (n.trigger_insert.to_string(), source(format!("  {upsert};\n"))),
        (
            n.trigger_update.to_string(),
            source(format!("  IF {key_changed} THEN\n{}  END IF;\n  {upsert};\n", delete_old("    "))),
        ),
        (n.trigger_delete.to_string(), source(delete_old("  "))),
        (truncate_trigger(n), source(format!("  TRUNCATE TABLE {s};\n"))),
    ]
}

/// What a resume checks of each capture trigger on table `$1` (a qualified name, as text) among
/// the names `$2` (text[]): its name, `tgtype`, `tgenabled`, whether it is plain (no `WHEN`, no
/// `UPDATE OF` columns, no arguments), and its function's schema, name, source, `SECURITY
/// DEFINER` flag and settings (`proconfig`).
pub const CAPTURE_DEFINITIONS: &str = "SELECT t.tgname::text, t.tgtype::int, t.tgenabled::text, \
     (t.tgqual IS NULL AND t.tgnargs = 0 AND pg_catalog.cardinality(t.tgattr::int2[]) = 0), \
     n.nspname::text, p.proname::text, p.prosrc, p.prosecdef, coalesce(p.proconfig, '{}')::text[] \
     FROM pg_catalog.pg_trigger t JOIN pg_catalog.pg_proc p ON p.oid = t.tgfoid \
     JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace \
     WHERE t.tgrelid = $1::text::regclass AND t.tgname::text = ANY($2)";

/// Drop one capture trigger and its function (idempotent).
pub fn drop_capture(on: &TableRef, name: &str) -> [String; 2] {
    [format!("DROP TRIGGER IF EXISTS {} ON {}", Ident(name), Qualified(on)), drop_function(on, name)]
}

/// Installing the capture, in one transaction, in this order: act as the table's `owner` (the
/// functions are then the owner's, and as `SECURITY DEFINER` run as the owner), drop what an
/// earlier attempt left, then [`capture`]'s function, trigger and `ENABLE ALWAYS` for each.
pub fn install(plan: &Plan, owner: &str, always_identity: &[String], key_eq: &[String], seed: u64) -> Vec<String> {
    let mut out = vec![set_local_role(owner)];
    out.extend(capture_triggers(&plan.names).iter().flat_map(|t| drop_capture(&plan.names.table, t)));
    out.extend(capture(plan, always_identity, key_eq, seed).into_iter().flat_map(|(f, t, a)| [f, t, a]));
    out
}

/// What the dry run shows of the capture: [`capture`] without the catalog facts the run reads
/// (no `GENERATED ALWAYS` identity columns, plain `=` for key equality) and with a fixed seed.
pub fn outline(plan: &Plan) -> Vec<String> {
    capture(plan, &[], &[], 0).into_iter().flat_map(|(f, t, a)| [f, t, a]).collect()
}

/// Removing the capture (idempotent): each trigger and its function from every table in
/// `present_on` (the table, or after the swap the old table, whichever exists), then the
/// functions by name.
pub fn remove(names: &Names, present_on: &[&TableRef]) -> Vec<String> {
    let triggers = capture_triggers(names);
    let mut out: Vec<String> = present_on.iter().flat_map(|on| triggers.iter().flat_map(|t| drop_capture(on, t))).collect();
    out.extend(triggers.iter().map(|t| drop_function(&names.table, t)));
    out
}

/// `DROP FUNCTION IF EXISTS "schema"."name"()`: a capture function of `table`'s schema.
pub fn drop_function(table: &TableRef, name: &str) -> String {
    format!("DROP FUNCTION IF EXISTS {}()", function_name(table, name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::copy::copy_chunk;
    use crate::testing::{col, plan_for};

    #[test]
    fn generated_always_identity_columns_are_never_upserted() {
        let plan = plan_for("t", vec![col("id", "integer"), col("code", "integer"), col("v", "text")], "ADD COLUMN x int");
        let always = ["code".to_string()];
        let copy = copy_chunk(&plan, "TRUE", &always);
        assert!(copy.ends_with("ON CONFLICT (\"id\") DO UPDATE SET \"id\" = EXCLUDED.\"id\", \"v\" = EXCLUDED.\"v\""), "{copy}");
        let [_, (upd, _, _), _, _] = capture(&plan, &always, &[], 1);
        assert!(upd.contains("IF NOT (NEW.\"id\" = OLD.\"id\") OR NEW.\"code\" IS DISTINCT FROM OLD.\"code\" THEN"), "{upd}");
        assert!(!upd.contains("\"code\" = EXCLUDED"), "{upd}");
        assert!(copy_chunk(&plan, "TRUE", &[]).contains("\"code\" = EXCLUDED.\"code\""));
    }

    #[test]
    fn upserts_write_key_columns_too() {
        // 'bob' -> 'Bob' under a case-insensitive collation, 1.5 -> 1.50: the unique index calls the
        // values equal, the upsert conflicts, and only a SET of the key writes the new spelling.
        let plan = plan_for("t", vec![col("id", "numeric"), col("v", "text")], "ADD COLUMN x int");
        let want = "ON CONFLICT (\"id\") DO UPDATE SET \"id\" = EXCLUDED.\"id\", \"v\" = EXCLUDED.\"v\"";
        assert!(copy_chunk(&plan, "TRUE", &[]).ends_with(want));
        let [(ins, _, _), (upd, _, _), _, _] = capture(&plan, &[], &[], 1);
        assert!(ins.contains(want), "{ins}");
        assert!(upd.contains(want), "{upd}");
        // A key-only table still writes its key.
        let plan = plan_for("t", vec![col("id", "numeric")], "ADD COLUMN x int");
        assert!(copy_chunk(&plan, "TRUE", &[]).ends_with("ON CONFLICT (\"id\") DO UPDATE SET \"id\" = EXCLUDED.\"id\""));
    }

    #[test]
    fn capture_compares_keys_with_schema_qualified_operators() {
        let plan = plan_for("t", vec![col("id", "citext"), col("v", "text")], "ADD COLUMN x int");
        let eq = [qualified_operator("public", "=").unwrap()];
        assert_eq!(eq[0], "OPERATOR(\"public\".=)");
        let [_, (upd, _, _), (del, _, _), _] = capture(&plan, &[], &eq, 1);
        assert!(upd.contains("IF NOT (NEW.\"id\" OPERATOR(\"public\".=) OLD.\"id\") THEN"), "{upd}");
        assert!(upd.contains("DELETE FROM \"public\".\"_t_new\" WHERE \"id\" OPERATOR(\"public\".=) OLD.\"id\";"), "{upd}");
        assert!(del.contains("WHERE \"id\" OPERATOR(\"public\".=) OLD.\"id\";"), "{del}");
        assert!(!upd.contains(" = OLD."), "no unqualified equality left: {upd}");
        assert_eq!(qualified_operator("my \"ext\"", "~=~").unwrap(), "OPERATOR(\"my \"\"ext\"\"\".~=~)");
        for bad in ["", "=; DROP", "a", "=)", "= ="] {
            assert_eq!(qualified_operator("public", bad), None, "{bad}");
        }
    }

    #[test]
    fn every_capture_trigger_fires_always_and_truncate_is_captured() {
        let plan = plan_for("t", vec![col("id", "integer"), col("v", "text")], "ADD COLUMN x int");
        let all = capture(&plan, &[], &[], 7);
        let names: Vec<String> = capture_triggers(&plan.names).into();
        assert_eq!(names, ["_t_ssw_ins", "_t_ssw_upd", "_t_ssw_del", "_t_ssw_trn"]);
        for ((f, t, a), name) in all.iter().zip(&names) {
            assert!(f.starts_with(&format!("CREATE FUNCTION \"public\".\"{name}\"() RETURNS trigger")), "{f}");
            assert!(t.starts_with(&format!("CREATE TRIGGER \"{name}\" AFTER ")), "{t}");
            assert_eq!(a, &format!("ALTER TABLE \"public\".\"t\" ENABLE ALWAYS TRIGGER \"{name}\""));
        }
        let (f, t, _) = &all[3];
        assert!(f.contains("TRUNCATE TABLE \"public\".\"_t_new\";"), "{f}");
        assert_eq!(t, "CREATE TRIGGER \"_t_ssw_trn\" AFTER TRUNCATE ON \"public\".\"t\" FOR EACH STATEMENT EXECUTE FUNCTION \"public\".\"_t_ssw_trn\"()");
        assert!(all[0].1.contains("AFTER INSERT ON \"public\".\"t\" FOR EACH ROW"));
    }

    /// The tag a `$tag$` dollar quote opens with.
    fn opening_tag(quoted: &str) -> &str {
        let end = quoted[1..].find('$').unwrap() + 2;
        &quoted[..end]
    }

    #[test]
    fn a_column_named_like_a_dollar_tag_stays_inside_the_function_body() {
        let evil = "c$shadowswap$;ALTER ROLE r SUPERUSER;SELECT $shadowswap$";
        let plan = plan_for("t", vec![col("id", "integer"), col(evil, "text")], "ADD COLUMN x int");
        for seed in [0, 1, 42] {
            for (f, _, _) in capture(&plan, &[], &[], seed) {
                let at = f.find(" AS $ssw_").unwrap() + 4;
                let tag = opening_tag(&f[at..]);
                // Exactly two occurrences of the run's tag: the opening and the closing one.
                assert_eq!(f.matches(tag).count(), 2, "{f}");
                assert!(f.ends_with(tag), "{f}");
            }
        }
    }

    #[test]
    fn installing_and_removing() {
        let plan = plan_for("t", vec![col("id", "integer"), col("v", "text")], "ADD COLUMN x int");
        let run = install(&plan, "Own\"er", &[], &[], 7);
        assert_eq!(run.len(), 1 + 8 + 12);
        assert_eq!(run[0], "SET LOCAL ROLE \"Own\"\"er\"");
        assert_eq!(run[1], "DROP TRIGGER IF EXISTS \"_t_ssw_ins\" ON \"public\".\"t\"");
        assert_eq!(run[2], "DROP FUNCTION IF EXISTS \"public\".\"_t_ssw_ins\"()");
        assert_eq!(run[9..], capture(&plan, &[], &[], 7).into_iter().flat_map(|(f, t, a)| [f, t, a]).collect::<Vec<_>>()[..]);
        // The dry run's outline is the run's capture with no catalog facts.
        assert_eq!(outline(&plan), capture(&plan, &[], &[], 0).into_iter().flat_map(|(f, t, a)| [f, t, a]).collect::<Vec<_>>());
        let n = &plan.names;
        let gone = remove(n, &[&n.old]);
        assert_eq!(gone.len(), 8 + 4);
        assert_eq!(gone[0], "DROP TRIGGER IF EXISTS \"_t_ssw_ins\" ON \"public\".\"_t_old\"");
        assert_eq!(gone[11], "DROP FUNCTION IF EXISTS \"public\".\"_t_ssw_trn\"()");
        assert_eq!(remove(n, &[]), ["_t_ssw_ins", "_t_ssw_upd", "_t_ssw_del", "_t_ssw_trn"].map(|t| drop_function(&n.table, t)));
        assert!(CAPTURE_FUNCTIONS.ends_with("WHERE n.nspname = $1 AND p.proname = ANY($2) ORDER BY 1"));
        assert!(CAPTURE_TRIGGERS_ENABLED.ends_with("tgrelid = $1::text::regclass AND tgname::text = ANY($2)"));
    }
}
