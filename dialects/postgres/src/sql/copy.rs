//! The backfill's and checksum's statements ([`crate::copy`]): the key range, a chunk's end,
//! the copy of one chunk, and the checksum of one chunk on both sides. Chunk-key values travel
//! as text parameters and are cast back to each column's type in the query, so any
//! btree-ordered type with an exact text form can be a key (see [`crate::rules::key_column_ok`]).

use std::time::Duration;

use shadowswap_engine::model::{Column, TableRef};
use shadowswap_engine::plan::{ColumnMap, Plan};

use super::connect::set_lock_timeout;
use super::{column_list, Ident, Qualified};

/// `ROW("a", "b") OPERATOR(pg_catalog.>) ROW($1::text::int, $2::text::text)`: PostgreSQL
/// compares rows lexicographically with each column's btree ordering and uses a multicolumn
/// index for it. `first` is the first parameter number; key values are bound as text and cast
/// to the column's type. The operator is schema-qualified with the schema of the key index's
/// operators ([`Column::operator_schema`]: `OPERATOR("public".>)` for `ltree`), so the
/// comparison is the index's own under the pinned `search_path`; a key whose columns' operators
/// come from different schemas is compared column by column (`a > x OR (a = x AND b > y)`), each with
/// its own qualified operators.
pub fn row_compare(cols: &[&str], types: &[Column], op: &str, first: usize) -> String {
    let schema = |c: &Column| c.operator_schema.clone().unwrap_or_else(|| "pg_catalog".to_string());
    let qop = |c: &Column, op: &str| format!("OPERATOR({}.{op})", Ident(&schema(c)));
    let param = |i: usize, c: &Column| format!("${}::text::{}", first + i, c.column_type);
    let schemas: Vec<String> = types.iter().map(schema).collect();
    if schemas.iter().all(|s| *s == schemas[0]) {
        let lhs = column_list("", cols.iter().copied());
        let rhs = types.iter().enumerate().map(|(i, c)| param(i, c)).collect::<Vec<_>>().join(", ");
        return format!("ROW({lhs}) {} ROW({rhs})", qop(&types[0], op));
    }
    // Lexicographic expansion: the last column takes `op`, every earlier one its strict form.
    let strict = op.trim_end_matches('=');
    let terms: Vec<String> = (0..cols.len())
        .map(|k| {
            let mut parts: Vec<String> =
                (0..k).map(|j| format!("{} {} {}", Ident(cols[j]), qop(&types[j], "="), param(j, &types[j]))).collect();
            let this = if k + 1 == cols.len() { op } else { strict };
            parts.push(format!("{} {} {}", Ident(cols[k]), qop(&types[k], this), param(k, &types[k])));
            format!("({})", parts.join(" AND "))
        })
        .collect();
    format!("({})", terms.join(" OR "))
}

/// The WHERE clause of a chunk `(after, upto]`; parameters are the after-key's values (when
/// present) then the upto-key's.
pub fn range_where(cols: &[&str], types: &[Column], has_after: bool) -> String {
    open_range_where(cols, types, has_after, true)
}

/// [`range_where`] where either end may be open: `TRUE` when both are.
pub fn open_range_where(cols: &[&str], types: &[Column], has_after: bool, has_upto: bool) -> String {
    let mut preds = Vec::new();
    if has_after {
        preds.push(row_compare(cols, types, ">", 1));
    }
    if has_upto {
        preds.push(row_compare(cols, types, "<=", if has_after { cols.len() + 1 } else { 1 }));
    }
    if preds.is_empty() {
        preds.push("TRUE".to_string());
    }
    preds.join(" AND ")
}

/// Key column names in the original and in the shadow.
pub fn key_names(plan: &Plan) -> (Vec<&str>, Vec<&str>) {
    (plan.key.columns.iter().map(|c| c.name.as_str()).collect(), plan.key.shadow_columns.iter().map(String::as_str).collect())
}

/// First or last key in key order, as text.
pub fn key_edge(plan: &Plan, last: bool) -> String {
    let (cols, _) = key_names(plan);
    let dir = if last { " DESC" } else { "" };
    let order = cols.iter().map(|c| format!("{}{dir}", Ident(c))).collect::<Vec<_>>().join(", ");
    format!("SELECT {} FROM {} ORDER BY {order} LIMIT 1", as_text(&cols), Qualified(&plan.names.table))
}

/// The key columns as text, aliased: PostgreSQL resolves a bare name in ORDER BY to an output
/// column first, so `SELECT id::text … ORDER BY id` would sort the *text* ('9999' > '20003').
fn as_text(cols: &[&str]) -> String {
    cols.iter().enumerate().map(|(i, c)| format!("{}::text AS _ssw_k{i}", Ident(c))).collect::<Vec<_>>().join(", ")
}

/// The key `rows` rows into the range, as text.
pub fn chunk_end(plan: &Plan, where_: &str, rows: u64) -> String {
    let (cols, _) = key_names(plan);
    format!(
        "SELECT {} FROM {} WHERE {where_} ORDER BY {} LIMIT 1 OFFSET {}",
        as_text(&cols),
        Qualified(&plan.names.table),
        column_list("", cols.iter().copied()),
        rows.saturating_sub(1)
    )
}

/// `ON CONFLICT (key) DO UPDATE SET c = EXCLUDED.c, …` — an upsert whose conflict target is the
/// chunk key only, so a row that collides on any *other* unique key (one the ALTER adds) raises
/// `unique_violation` instead of being skipped.
///
/// The key columns are in the SET list too: a key can change to a value its unique index calls
/// equal but that is not the same value (`'bob'` → `'Bob'` under a nondeterministic collation or
/// `citext`, numeric `1.5` → `1.50`). The upsert then conflicts with the row it replaces and must
/// write the new spelling, or the shadow keeps the old one and the swap reverts the update.
/// Setting a key column to a value equal to the one it has keeps the unique index satisfied.
///
/// `always_identity` are the shadow's `GENERATED ALWAYS AS IDENTITY` columns: PostgreSQL refuses
/// any UPDATE of them to a value other than DEFAULT, ON CONFLICT's included, so they are left out
/// of the SET list. The conflicting row already holds the same value (the copy reads the row's
/// latest version, which its capture wrote), and the update trigger re-inserts a row whose value
/// changed instead of upserting it (see [`capture`]).
pub(crate) fn upsert_on_key(plan: &Plan, always_identity: &[String]) -> String {
    let key = column_list("", plan.key.shadow_columns.iter().map(String::as_str));
    let set: Vec<String> = plan
        .mapping
        .iter()
        .filter(|m| !always_identity.contains(&m.target))
        .map(|m| format!("{0} = EXCLUDED.{0}", Ident(&m.target)))
        .collect();
    if set.is_empty() {
        format!("ON CONFLICT ({key}) DO NOTHING")
    } else {
        format!("ON CONFLICT ({key}) DO UPDATE SET {}", set.join(", "))
    }
}

/// The fallback copy of one chunk: one statement, `INSERT … SELECT … FOR SHARE ON CONFLICT (key)
/// DO UPDATE …`, run when the fast path ([`lock_chunk_rows`], [`clear_shadow_range`],
/// [`insert_chunk`]) cannot commit the chunk (see `crate::copy::copy_chunk`).
///
/// Under MVCC a plain `INSERT … SELECT` reads a snapshot that can be older than a change the
/// capture already replayed. `FOR SHARE` makes the read wait for any writer holding a row of
/// the chunk and return that row's latest committed version (READ COMMITTED re-checks the
/// updated row against the WHERE clause), and it keeps the rows from changing until the chunk
/// commits; a change after that runs its capture trigger after the chunk and overwrites it.
/// Rows inserted meanwhile are not seen and reach the shadow through the capture. So a deleted
/// row never reappears and an old version never overwrites a newer one. The upsert on the key
/// makes the copy agree with rows the capture wrote ahead of it (it updates them in place, so a
/// writer waiting on such a row follows the update). `always_identity`: see `upsert_on_key`.
pub fn copy_chunk(plan: &Plan, where_: &str, always_identity: &[String]) -> String {
    format!("{} FOR SHARE {}", insert_chunk(plan, where_), upsert_on_key(plan, always_identity))
}

/// The fast path's first step: `SELECT 1 FROM t WHERE <range> FOR SHARE`, which takes a share
/// lock on every row of the chunk (waiting for writers holding one, and locking each row's latest
/// committed version, as [`copy_chunk`]'s read does) and ships nothing: the run executes it in
/// the owner's helper function (`crate::owner::exec`), where the rows are discarded and the row
/// count (`GET DIAGNOSTICS … ROW_COUNT`) is the number of rows locked. The plan's top node is
/// `LockRows`, so every row returned is locked.
pub fn lock_chunk_rows(plan: &Plan, where_: &str) -> String {
    format!("SELECT 1 FROM {} WHERE {where_} FOR SHARE", Qualified(&plan.names.table))
}

/// The fast path's second step: `DELETE FROM shadow WHERE <range on the shadow's key columns>`
/// (`shadow_where`, from [`shadow_chunk_range`]): the rows the capture wrote ahead of the copy
/// in this range, whose originals [`lock_chunk_rows`] has just locked; [`insert_chunk`] writes
/// their latest version again.
pub fn clear_shadow_range(plan: &Plan, shadow_where: &str) -> String {
    format!("DELETE FROM {} WHERE {shadow_where}", Qualified(&plan.names.shadow))
}

/// The fast path's third step: the plain `INSERT INTO shadow (…) OVERRIDING SYSTEM VALUE SELECT …
/// FROM t WHERE <range>` (no `FOR SHARE`, no `ON CONFLICT`). `OVERRIDING SYSTEM VALUE` keeps the
/// original's values of the shadow's `GENERATED ALWAYS AS IDENTITY` columns.
pub fn insert_chunk(plan: &Plan, where_: &str) -> String {
    format!(
        "INSERT INTO {} ({}) OVERRIDING SYSTEM VALUE SELECT {} FROM {} WHERE {where_}",
        Qualified(&plan.names.shadow),
        column_list("", plan.mapping.iter().map(|m| m.target.as_str())),
        column_list("", plan.mapping.iter().map(|m| m.source.as_str())),
        Qualified(&plan.names.table),
    )
}

/// The WHERE clause of the chunk `(after, upto]` on the shadow's key columns (the same
/// parameters as [`chunk_range`]'s, compared with the same operators: a key column may change
/// type only where equality and order stay the same, see [`crate::rules::key_change_refusal`]).
pub fn shadow_chunk_range(plan: &Plan, has_after: bool) -> String {
    range_where(&key_names(plan).1, &plan.key.columns, has_after)
}

/// How many lock requests wait now, server-wide: ungranted entries of `pg_locks` ("pg_locks" in
/// the PostgreSQL docs' system views; readable by every role). One `bigint`. Read in a chunk's
/// transaction just before its commit, it counts the writers the chunk's row locks are holding
/// up (a writer waiting for a row the chunk locked waits on the chunk's transaction id), and any
/// waiting for each other.
pub const ROW_LOCK_WAITERS: &str = "SELECT count(*) FROM pg_catalog.pg_locks WHERE NOT granted";

/// `LOCK TABLE t IN ROW SHARE MODE`, first in a chunk's transaction: the lock the copy's
/// `SELECT … FOR SHARE` takes anyway, taken before the `INSERT` locks the shadow. Every session
/// that locks both tables then locks the table first and the shadow second (application writes
/// and their capture, `TRUNCATE` and its capture trigger's `TRUNCATE` of the shadow, the
/// checksum, the swap), so a `TRUNCATE` during a chunk waits for the chunk instead of
/// deadlocking with it (the `INSERT … SELECT` alone would lock the shadow first).
pub fn lock_for_copy(table: &TableRef) -> String {
    format!("LOCK TABLE {} IN ROW SHARE MODE", Qualified(table))
}

/// Row count and XOR of a 64-bit hash of each row. `by_value` are the columns hashed by value and
/// `as_text` those hashed by their text form; both lists name the same columns, in the same order,
/// on either side.
///
/// - Without `by_value` columns: `hashtextextended` (the server's own 64-bit text hash, PostgreSQL
///   11 and later; "Hash functions" in the docs' system information functions) of the row's text
///   form (`ROW(…)::text` writes NULL as an empty field, so `(NULL,'a')` and `('a',NULL)` differ),
///   about a third of the time of the MD5 prefix it replaced (0.24 s against 0.81 s for this
///   statement over 1,000,000 `pgbench_accounts` rows on the benchmark server).
/// - With them: `hash_record_extended` (PostgreSQL 14 and later) of the row of the `by_value`
///   columns followed by the text form of the others, which hashes each value with its type's own
///   hash function instead of printing it: 0.14 s against 0.22 s over the same rows. Only for types
///   whose hash is equal exactly for identical values ([`hashes_by_identity`]).
///
/// Neither hash is linear: a value swapped between two rows changes the XOR (`postgres
/// checksum::` tests it). With no comparable column (every type changed) only the row count is
/// compared.
pub fn checksum(table: &TableRef, by_value: &[&str], as_text: &[&str], where_: &str) -> String {
    let text = |cols: &[&str]| format!("ROW({}, 0)::text", column_list("", cols.iter().copied()));
    let hash = match (by_value.is_empty(), as_text.is_empty()) {
        (true, true) => "pg_catalog.hashtextextended(ROW(1, 0)::text, 0)".to_string(),
        (true, false) => format!("pg_catalog.hashtextextended({}, 0)", text(as_text)),
        (false, true) => format!("pg_catalog.hash_record_extended(ROW({}), 0)", column_list("", by_value.iter().copied())),
        (false, false) => {
            format!("pg_catalog.hash_record_extended(ROW({}, {}), 0)", column_list("", by_value.iter().copied()), text(as_text))
        }
    };
    format!("SELECT count(*)::bigint, coalesce(bit_xor({hash}), 0)::bigint FROM {} WHERE {where_}", Qualified(table))
}

/// Whether a value of column `c` (as the catalog describes it: `format_type`, collation name) can
/// be hashed by value in the checksum ([`checksum`]): its type's hash function gives equal hashes
/// exactly to identical values, so hashing by value tells what the text form would. Integers,
/// `boolean`, `date`, `uuid`, `bytea`, timestamps (with or without time zone: both store the
/// instant), and `text`, `character varying` and `character` under a deterministic collation (the
/// database default, `C`, `POSIX`). Not `numeric` (`1.0` and `1.00` are equal), floats (`-0` and
/// `0`), `time with time zone`, JSON, arrays, extension types (`citext` is equal ignoring case),
/// nor a text column under another collation (an ICU collation may be nondeterministic).
pub fn hashes_by_identity(c: &Column) -> bool {
    let t = c.column_type.as_str();
    let plain = matches!(t, "smallint" | "integer" | "bigint" | "boolean" | "date" | "uuid" | "bytea")
        || (t.starts_with("timestamp") && !t.ends_with("[]"));
    let text = matches!(t, "text" | "character varying" | "character")
        || ((t.starts_with("character varying(") || t.starts_with("character(")) && t.ends_with(')'));
    plain || (text && matches!(c.collation.as_deref(), None | Some("default" | "C" | "POSIX")))
}

/// The first statement batch of a chunk's transaction, in one round trip: the lock timeout
/// (`lock_wait`), then [`lock_for_copy`].
pub fn begin_chunk(table: &TableRef, lock_wait: Duration) -> String {
    format!("{}; {}", set_lock_timeout(lock_wait), lock_for_copy(table))
}

/// The WHERE clause and parameters of the chunk `(after, upto]` of the original table: `after`
/// (when given) and `upto` are key values as text, in key order.
pub fn chunk_range(plan: &Plan, after: Option<&[String]>, upto: &[String]) -> (String, Vec<String>) {
    let (cols, _) = key_names(plan);
    let w = range_where(&cols, &plan.key.columns, after.is_some());
    let mut params: Vec<String> = after.map(<[String]>::to_vec).unwrap_or_default();
    params.extend(upto.iter().cloned());
    (w, params)
}

/// The two checksum queries of the chunk `(after, upto]` (either end open when `None`):
/// `(original's, shadow's, parameters)`, both over the plan's checksummed columns (each
/// side's own names) and both with the same parameters. `by_value`: the server has
/// `hash_record_extended` (PostgreSQL 14 and later), so columns that [`hashes_by_identity`] are
/// hashed by value ([`checksum`]).
pub fn checksum_pair(
    plan: &Plan,
    after: Option<&[String]>,
    upto: Option<&[String]>,
    by_value: bool,
) -> (String, String, Vec<String>) {
    let cols = &plan.checksum_columns;
    let (orig_keys, shadow_keys) = key_names(plan);
    let w_orig = open_range_where(&orig_keys, &plan.key.columns, after.is_some(), upto.is_some());
    let w_shadow = open_range_where(&shadow_keys, &plan.key.columns, after.is_some(), upto.is_some());
    let p: Vec<String> = after.iter().chain(upto.iter()).flat_map(|k| k.iter().cloned()).collect();
    // Same type and collation on both sides (the plan's checksum columns), so one judgement.
    let hashed = |m: &&ColumnMap| by_value && plan.original.columns.iter().any(|c| c.name == m.source && hashes_by_identity(c));
    let (value_cols, text_cols): (Vec<&ColumnMap>, Vec<&ColumnMap>) = cols.iter().partition(hashed);
    fn names<'a>(ms: &[&'a ColumnMap], source: bool) -> Vec<&'a str> {
        ms.iter().map(|m| if source { m.source.as_str() } else { m.target.as_str() }).collect()
    }
    let query = |table: &TableRef, source: bool, where_: &str| {
        checksum(table, &names(&value_cols, source), &names(&text_cols, source), where_)
    };
    (query(&plan.names.table, true, &w_orig), query(&plan.names.shadow, false, &w_shadow), p)
}

/// What the dry run shows of the copy: the statements of a chunk in the middle of the table
/// (both ends given), each followed by the checkpoint's `advance` (the text of
/// [`super::checkpoint::advance_outline`]) and the waiters' count ([`ROW_LOCK_WAITERS`]): the fast path ([`lock_for_copy`],
/// [`lock_chunk_rows`], [`clear_shadow_range`], [`insert_chunk`]), then, after a comment line,
/// the fallback that redoes the chunk in a new transaction ([`lock_for_copy`], [`copy_chunk`],
/// shown without the shadow's `GENERATED ALWAYS` identity columns, which the run reads from the
/// shadow and leaves out of the SET list).
pub fn outline(plan: &Plan, advance: &str) -> Vec<String> {
    let where_ = range_where(&key_names(plan).0, &plan.key.columns, true);
    let lock = lock_for_copy(&plan.names.table);
    vec![
        lock.clone(),
        lock_chunk_rows(plan, &where_),
        clear_shadow_range(plan, &shadow_chunk_range(plan, true)),
        insert_chunk(plan, &where_),
        advance.to_string(),
        ROW_LOCK_WAITERS.to_string(),
        format!("{OUTLINE_FALLBACK}\n  {lock}"),
        copy_chunk(plan, &where_, &[]),
        advance.to_string(),
        ROW_LOCK_WAITERS.to_string(),
    ]
}

/// The comment of [`outline`] before the fallback.
pub const OUTLINE_FALLBACK: &str =
    "-- on a unique violation, or when the INSERT copied rows the SELECT … FOR SHARE did not lock: rolled back, then";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{col, plan_for};

    #[test]
    fn row_comparisons_cast_text_parameters() {
        let types = [col("a", "integer"), col("b", "character varying(10)")];
        assert_eq!(
            range_where(&["a", "b"], &types, true),
            "ROW(\"a\", \"b\") OPERATOR(\"pg_catalog\".>) ROW($1::text::integer, $2::text::character varying(10)) AND ROW(\"a\", \"b\") OPERATOR(\"pg_catalog\".<=) ROW($3::text::integer, $4::text::character varying(10))"
        );
        assert_eq!(range_where(&["a"], &types[..1], false), "ROW(\"a\") OPERATOR(\"pg_catalog\".<=) ROW($1::text::integer)");
    }

    #[test]
    fn key_text_outputs_never_shadow_the_order_by_columns() {
        let q = chunk_end_sql_for_test();
        assert!(q.contains("\"id\"::text AS _ssw_k0"), "{q}");
        assert!(q.contains("ORDER BY \"id\""), "{q}");
    }

    fn chunk_end_sql_for_test() -> String {
        format!("SELECT {} FROM t WHERE TRUE ORDER BY {} LIMIT 1", as_text(&["id"]), column_list("", ["id"]))
    }

    #[test]
    fn key_comparisons_use_the_types_own_schema_qualified_operators() {
        let ext = |name: &str, ty: &str| Column { operator_schema: Some("public".into()), ..col(name, ty) };
        assert_eq!(
            row_compare(&["a", "b"], &[col("a", "integer"), col("b", "text")], ">", 1),
            "ROW(\"a\", \"b\") OPERATOR(\"pg_catalog\".>) ROW($1::text::integer, $2::text::text)"
        );
        assert_eq!(
            row_compare(&["p"], &[ext("p", "public.ltree")], "<=", 3),
            "ROW(\"p\") OPERATOR(\"public\".<=) ROW($3::text::public.ltree)"
        );
        assert_eq!(
            row_compare(&["a", "p"], &[col("a", "integer"), ext("p", "public.ltree")], "<=", 1),
            "((\"a\" OPERATOR(\"pg_catalog\".<) $1::text::integer) OR (\"a\" OPERATOR(\"pg_catalog\".=) $1::text::integer \
             AND \"p\" OPERATOR(\"public\".<=) $2::text::public.ltree))"
        );
    }

    #[test]
    fn chunk_statements() {
        let plan = plan_for("t", vec![col("id", "integer"), col("v", "text")], "ADD COLUMN x int");
        assert_eq!(lock_for_copy(&TableRef::new("public", "t")), "LOCK TABLE \"public\".\"t\" IN ROW SHARE MODE");
        assert_eq!(
            begin_chunk(&plan.names.table, Duration::from_millis(250)),
            "SET LOCAL lock_timeout = '250ms'; LOCK TABLE \"public\".\"t\" IN ROW SHARE MODE"
        );
        assert_eq!(key_edge(&plan, false), "SELECT \"id\"::text AS _ssw_k0 FROM \"public\".\"t\" ORDER BY \"id\" LIMIT 1");
        assert_eq!(key_edge(&plan, true), "SELECT \"id\"::text AS _ssw_k0 FROM \"public\".\"t\" ORDER BY \"id\" DESC LIMIT 1");
        let (w, p) = chunk_range(&plan, Some(&["10".to_string()]), &["20".to_string()]);
        assert_eq!(w, "ROW(\"id\") OPERATOR(\"pg_catalog\".>) ROW($1::text::integer) AND ROW(\"id\") OPERATOR(\"pg_catalog\".<=) ROW($2::text::integer)");
        assert_eq!(p, ["10", "20"]);
        assert_eq!(
            chunk_end(&plan, &w, 1000),
            format!("SELECT \"id\"::text AS _ssw_k0 FROM \"public\".\"t\" WHERE {w} ORDER BY \"id\" LIMIT 1 OFFSET 999")
        );
        assert_eq!(
            copy_chunk(&plan, &w, &[]),
            format!(
                "INSERT INTO \"public\".\"_t_new\" (\"id\", \"v\") OVERRIDING SYSTEM VALUE SELECT \"id\", \"v\" FROM \"public\".\"t\" \
                 WHERE {w} FOR SHARE ON CONFLICT (\"id\") DO UPDATE SET \"id\" = EXCLUDED.\"id\", \"v\" = EXCLUDED.\"v\""
            )
        );
        // The fast path: lock the rows, clear the shadow's range, a plain insert.
        assert_eq!(lock_chunk_rows(&plan, &w), format!("SELECT 1 FROM \"public\".\"t\" WHERE {w} FOR SHARE"));
        assert_eq!(
            insert_chunk(&plan, &w),
            format!(
                "INSERT INTO \"public\".\"_t_new\" (\"id\", \"v\") OVERRIDING SYSTEM VALUE SELECT \"id\", \"v\" FROM \"public\".\"t\" \
                 WHERE {w}"
            )
        );
        assert!(copy_chunk(&plan, &w, &[]).starts_with(&format!("{} FOR SHARE ON CONFLICT", insert_chunk(&plan, &w))));
        // The dry run shows a middle chunk's fast path, then the fallback, each with the advance.
        let sw = shadow_chunk_range(&plan, true);
        assert_eq!(clear_shadow_range(&plan, &sw), format!("DELETE FROM \"public\".\"_t_new\" WHERE {sw}"));
        let lock = lock_for_copy(&plan.names.table);
        assert_eq!(
            outline(&plan, "ADVANCE"),
            [
                lock.clone(),
                lock_chunk_rows(&plan, &w),
                clear_shadow_range(&plan, &sw),
                insert_chunk(&plan, &w),
                "ADVANCE".into(),
                ROW_LOCK_WAITERS.into(),
                format!("{OUTLINE_FALLBACK}\n  {lock}"),
                copy_chunk(&plan, &w, &[]),
                "ADVANCE".into(),
                ROW_LOCK_WAITERS.into()
            ]
        );
        let (w, p) = chunk_range(&plan, None, &["20".to_string()]);
        assert_eq!((w.as_str(), p), ("ROW(\"id\") OPERATOR(\"pg_catalog\".<=) ROW($1::text::integer)", vec!["20".to_string()]));
    }

    #[test]
    fn the_shadows_range_uses_its_own_key_names_and_the_same_parameters() {
        let mut plan = plan_for("t", vec![col("id", "integer"), col("v", "text")], "ADD COLUMN x int");
        plan.key.shadow_columns = vec!["key".into()];
        assert_eq!(
            shadow_chunk_range(&plan, true),
            "ROW(\"key\") OPERATOR(\"pg_catalog\".>) ROW($1::text::integer) AND ROW(\"key\") OPERATOR(\"pg_catalog\".<=) ROW($2::text::integer)"
        );
        assert_eq!(shadow_chunk_range(&plan, false), "ROW(\"key\") OPERATOR(\"pg_catalog\".<=) ROW($1::text::integer)");
        // Its parameters are the original's range's.
        let (w, p) = chunk_range(&plan, None, &["5".to_string()]);
        assert_eq!((w.replace("\"id\"", "\"key\""), p.len()), (shadow_chunk_range(&plan, false), 1));
    }

    #[test]
    fn checksums_of_both_sides() {
        let plan = plan_for("t", vec![col("id", "integer"), col("v", "text")], "ADD COLUMN x int");
        let (a, b, p) = checksum_pair(&plan, None, None, false);
        assert!(p.is_empty());
        assert_eq!(
            a,
            "SELECT count(*)::bigint, coalesce(bit_xor(pg_catalog.hashtextextended(ROW(\"id\", \"v\", 0)::text, 0)), 0)::bigint \
             FROM \"public\".\"t\" WHERE TRUE"
        );
        assert!(b.ends_with("FROM \"public\".\"_t_new\" WHERE TRUE"), "{b}");
        let (a, _, p) = checksum_pair(&plan, Some(&["1".to_string()]), Some(&["9".to_string()]), false);
        assert!(a.ends_with("WHERE ROW(\"id\") OPERATOR(\"pg_catalog\".>) ROW($1::text::integer) AND ROW(\"id\") OPERATOR(\"pg_catalog\".<=) ROW($2::text::integer)"), "{a}");
        assert_eq!(p, ["1", "9"]);
        assert_eq!(checksum(&TableRef::new("s", "t"), &[], &[], "TRUE").matches("ROW(1, 0)").count(), 1);
    }

    #[test]
    fn columns_whose_hash_is_exact_are_hashed_by_value() {
        let numeric = col("n", "numeric(10,2)");
        let icu = Column { collation: Some("und-x-icu".into()), ..col("s", "text") };
        let plan = plan_for("t", vec![col("id", "integer"), numeric, col("v", "text"), icu], "ADD COLUMN x int");
        let (a, b, _) = checksum_pair(&plan, None, None, true);
        assert_eq!(
            a,
            "SELECT count(*)::bigint, coalesce(bit_xor(pg_catalog.hash_record_extended(ROW(\"id\", \"v\", \
             ROW(\"n\", \"s\", 0)::text), 0)), 0)::bigint FROM \"public\".\"t\" WHERE TRUE"
        );
        assert!(b.contains("hash_record_extended(ROW(\"id\", \"v\", ROW(\"n\", \"s\", 0)::text), 0)"), "{b}");
        // Without hash_record_extended (before PostgreSQL 14): the text form only, as before.
        assert!(checksum_pair(&plan, None, None, false)
            .0
            .contains("hashtextextended(ROW(\"id\", \"n\", \"v\", \"s\", 0)::text, 0)"));
        let t = &TableRef::new("s", "t");
        assert!(checksum(t, &["a"], &[], "TRUE").contains("hash_record_extended(ROW(\"a\"), 0)"));

        let by_identity = |t: &str, collation: Option<&str>| {
            hashes_by_identity(&Column { collation: collation.map(String::from), ..col("c", t) })
        };
        for t in ["smallint", "integer", "bigint", "boolean", "date", "uuid", "bytea", "timestamp(3) with time zone"] {
            assert!(by_identity(t, None), "{t}");
        }
        for t in ["text", "character varying(20)", "character(84)", "character varying"] {
            assert!(by_identity(t, Some("default")) && by_identity(t, Some("C")), "{t}");
            assert!(!by_identity(t, Some("und-x-icu")), "{t} under an ICU collation");
        }
        for t in ["numeric(10,2)", "double precision", "real", "jsonb", "json", "integer[]", "citext", "time with time zone"] {
            assert!(!by_identity(t, None), "{t}");
        }
    }
}
