//! Pure SQL builders for MySQL/MariaDB. Nothing here talks to a server; every identifier goes
//! through [`Ident`] / [`Qualified`], never through a raw `format!`.

use std::fmt;

use shadowswap_engine::model::{Column, TableRef};
use shadowswap_engine::plan::Plan;

/// A backtick-quoted identifier; backticks inside the name are doubled.
#[derive(Debug, Clone, Copy)]
pub struct Ident<'a>(pub &'a str);

impl fmt::Display for Ident<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}`", self.0.replace('`', "``"))
    }
}

/// A quoted `schema`.`table`.
#[derive(Debug, Clone, Copy)]
pub struct Qualified<'a>(pub &'a TableRef);

impl fmt::Display for Qualified<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", Ident(&self.0.schema), Ident(&self.0.name))
    }
}

/// A quoted trigger name in the table's schema.
pub fn trigger_name(table: &TableRef, name: &str) -> String {
    format!("{}.{}", Ident(&table.schema), Ident(name))
}

/// `a`, `b`, `c` (optionally each prefixed, e.g. `NEW.`).
pub fn column_list<'a>(prefix: &str, names: impl IntoIterator<Item = &'a str>) -> String {
    names.into_iter().map(|n| format!("{prefix}{}", Ident(n))).collect::<Vec<_>>().join(", ")
}

/// Whether a column type can be part of a chunk key: its `ORDER BY` order must be the order of
/// `<`/`>` comparisons with a bound parameter. ENUM and SET sort by their index but compare as
/// strings; FLOAT/DOUBLE compare inexactly; BIT, JSON, BLOB/TEXT and spatial types are excluded.
pub fn key_column_ok(c: &Column) -> bool {
    let t = c.column_type.to_ascii_lowercase();
    const OK: [&str; 15] = [
        "tinyint",
        "smallint",
        "mediumint",
        "int",
        "bigint",
        "decimal",
        "char",
        "varchar",
        "binary",
        "varbinary",
        "date",
        "datetime",
        "timestamp",
        "time",
        "year",
    ];
    let base = t.split(['(', ' ']).next().unwrap_or("");
    OK.contains(&base)
}

/// Refuses type changes whose result depends on the session time zone: converting to or from
/// TIMESTAMP uses `time_zone`, which is UTC in shadowswap's copy sessions but whatever the
/// application set in the sessions that fire the capture triggers.
pub fn type_change_refusal(from: &Column, to: &Column) -> Option<String> {
    let ts = |c: &Column| c.column_type.to_ascii_lowercase().starts_with("timestamp");
    (ts(from) != ts(to)).then(|| {
        "converting to or from TIMESTAMP depends on the session time zone, which differs between shadowswap's copy (UTC) \
         and the application's sessions; add a new column and fill it yourself, or use a plain ALTER TABLE"
            .to_string()
    })
}

/// The placeholder for one key column's bound value. DECIMAL compares with a string parameter
/// as a double, so it is cast back to the column's exact type.
pub fn placeholder(c: &Column) -> String {
    let t = c.column_type.to_ascii_lowercase();
    if t.starts_with("decimal") {
        let exact = t.split(' ').next().unwrap_or("decimal");
        format!("CAST(? AS {exact})")
    } else {
        "?".to_string()
    }
}

/// Which side of a chunk boundary a predicate selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    /// Keys strictly above the boundary (a chunk's lower end, exclusive).
    After,
    /// Keys at or below the boundary (a chunk's upper end, inclusive).
    UpTo,
}

/// A keyset predicate over the key `cols` (names in the table being queried; `types` give each
/// column's placeholder) against one boundary row, expanded so MariaDB's range optimizer uses the
/// index: for (a, b) After is `(a > ?) OR (a = ? AND b > ?)`. The matching parameters come from
/// [`bound_params`].
pub fn bound_predicate(cols: &[&str], types: &[Column], bound: Bound) -> String {
    let n = cols.len();
    let mut disjuncts = Vec::with_capacity(n);
    for i in 0..n {
        let mut terms: Vec<String> = (0..i).map(|j| format!("{} = {}", Ident(cols[j]), placeholder(&types[j]))).collect();
        let op = match (bound, i + 1 == n) {
            (Bound::After, _) => ">",
            (Bound::UpTo, false) => "<",
            (Bound::UpTo, true) => "<=",
        };
        terms.push(format!("{} {op} {}", Ident(cols[i]), placeholder(&types[i])));
        disjuncts.push(format!("({})", terms.join(" AND ")));
    }
    format!("({})", disjuncts.join(" OR "))
}

/// Parameters for [`bound_predicate`]: for each disjunct i, the first i+1 key values.
pub fn bound_params<V: Clone>(key: &[V]) -> Vec<V> {
    (0..key.len()).flat_map(|i| key[..=i].iter().cloned()).collect()
}

/// The WHERE clause of a chunk `(after, upto]`, and its parameters.
pub fn range_where<V: Clone>(cols: &[&str], types: &[Column], after: Option<&[V]>, upto: &[V]) -> (String, Vec<V>) {
    open_range_where(cols, types, after, Some(upto))
}

/// [`range_where`] where either end may be open (`None`): `TRUE` when both are.
pub fn open_range_where<V: Clone>(cols: &[&str], types: &[Column], after: Option<&[V]>, upto: Option<&[V]>) -> (String, Vec<V>) {
    let mut params = Vec::new();
    let mut preds = Vec::new();
    if let Some(a) = after {
        preds.push(bound_predicate(cols, types, Bound::After));
        params.extend(bound_params(a));
    }
    if let Some(u) = upto {
        preds.push(bound_predicate(cols, types, Bound::UpTo));
        params.extend(bound_params(u));
    }
    if preds.is_empty() {
        preds.push("TRUE".to_string());
    }
    (preds.join(" AND "), params)
}

/// Key column names of the original and of the shadow.
pub fn key_names(plan: &Plan) -> (Vec<&str>, Vec<&str>) {
    (plan.key.columns.iter().map(|c| c.name.as_str()).collect(), plan.key.shadow_columns.iter().map(String::as_str).collect())
}

/// `FORCE INDEX (`k`)` for the chunk key, so range scans never pick another index.
pub fn force_key(plan: &Plan) -> String {
    format!("FORCE INDEX ({})", Ident(&plan.key.index))
}

/// `SELECT COUNT(*) … LOCK IN SHARE MODE`: takes shared next-key locks on the chunk's rows in the
/// original before the shadow is touched, so writers in the chunk wait (briefly) instead of
/// racing the copy, and lock order is always original → shadow, as in the triggers.
pub fn lock_chunk(plan: &Plan, where_: &str) -> String {
    format!("SELECT COUNT(*) FROM {} {} WHERE {where_} LOCK IN SHARE MODE", Qualified(&plan.names.table), force_key(plan))
}

/// `DELETE` of the chunk's range in the shadow: rows the capture wrote there ahead of the copy
/// are replaced by the copy, which reads the same (latest, locked) versions.
pub fn clear_shadow_chunk(plan: &Plan, where_: &str) -> String {
    format!("DELETE FROM {} WHERE {where_}", Qualified(&plan.names.shadow))
}

/// The server-side copy of one chunk. No `IGNORE`: a row the new definition rejects (a duplicate
/// for a new unique key, a value that no longer fits) fails the chunk instead of being dropped or
/// truncated.
pub fn copy_chunk(plan: &Plan, where_: &str) -> String {
    let targets = column_list("", plan.mapping.iter().map(|m| m.target.as_str()));
    let sources = column_list("", plan.mapping.iter().map(|m| m.source.as_str()));
    format!(
        "INSERT INTO {} ({targets}) SELECT {sources} FROM {} {} WHERE {where_} LOCK IN SHARE MODE",
        Qualified(&plan.names.shadow),
        Qualified(&plan.names.table),
        force_key(plan)
    )
}

/// First or last key of the original in key order.
pub fn key_edge(plan: &Plan, last: bool) -> String {
    let (cols, _) = key_names(plan);
    let dir = if last { " DESC" } else { "" };
    let order = cols.iter().map(|c| format!("{}{dir}", Ident(c))).collect::<Vec<_>>().join(", ");
    format!(
        "SELECT {} FROM {} {} ORDER BY {order} LIMIT 1",
        column_list("", cols.iter().copied()),
        Qualified(&plan.names.table),
        force_key(plan)
    )
}

/// The key `rows` rows into the range (a consistent, non-locking read).
pub fn chunk_end(plan: &Plan, where_: &str, rows: u64) -> String {
    let (cols, _) = key_names(plan);
    format!(
        "SELECT {} FROM {} {} WHERE {where_} ORDER BY {} LIMIT 1 OFFSET {}",
        column_list("", cols.iter().copied()),
        Qualified(&plan.names.table),
        force_key(plan),
        column_list("", cols.iter().copied()),
        rows.saturating_sub(1)
    )
}

/// Row count and XOR of a 64-bit MD5 prefix of each row's checksummed columns. `CONCAT_WS` skips
/// NULLs, so the NULL-ness of every column is appended to tell `(NULL, 'a')` from `('a', NULL)`.
/// With no comparable column (every type changed) only the row count is compared.
pub fn checksum(table: &TableRef, cols: &[&str], where_: &str) -> String {
    let (values, nulls) = if cols.is_empty() {
        ("1".to_string(), "0".to_string())
    } else {
        (
            column_list("", cols.iter().copied()),
            cols.iter().map(|c| format!("ISNULL({})", Ident(c))).collect::<Vec<_>>().join(", "),
        )
    };
    format!(
        "SELECT COUNT(*), COALESCE(BIT_XOR(CAST(CONV(SUBSTRING(MD5(CONCAT_WS('#', {values}, CONCAT({nulls}))), 1, 16), 16, 10) AS UNSIGNED)), 0) \
         FROM {} WHERE {where_}",
        Qualified(table)
    )
}

/// `shadow.k = ROW.k AND …` for the triggers (`row` is `NEW` or `OLD`).
fn key_match(plan: &Plan, row: &str) -> String {
    plan.key
        .shadow_columns
        .iter()
        .zip(&plan.key.columns)
        .map(|(t, s)| format!("{} = {row}.{}", Ident(t), Ident(&s.name)))
        .collect::<Vec<_>>()
        .join(" AND ")
}

fn insert_new_row(plan: &Plan) -> String {
    format!(
        "INSERT INTO {} ({}) VALUES ({})",
        Qualified(&plan.names.shadow),
        column_list("", plan.mapping.iter().map(|m| m.target.as_str())),
        column_list("NEW.", plan.mapping.iter().map(|m| m.source.as_str()))
    )
}

/// The three capture triggers: `[insert, update, delete]`.
///
/// They write the shadow in the writer's own transaction. Each write first deletes the shadow
/// row by key and then inserts the new version: a REPLACE restricted to the chunk key. REPLACE
/// itself is not used because it also deletes rows that collide on *other* unique keys, which
/// silently loses rows when the ALTER adds a unique key. An UPDATE that changes the key deletes
/// the old key's row and the new key's row (if any) before inserting.
pub fn capture_triggers(plan: &Plan) -> [String; 3] {
    let n = &plan.names;
    let t = Qualified(&n.table);
    let s = Qualified(&n.shadow);
    let key_changed =
        plan.key.columns.iter().map(|c| format!("NEW.{0} <=> OLD.{0}", Ident(&c.name))).collect::<Vec<_>>().join(" AND ");
    [
        format!(
            "CREATE TRIGGER {} AFTER INSERT ON {t} FOR EACH ROW BEGIN\n  DELETE FROM {s} WHERE {};\n  {};\nEND",
            trigger_name(&n.table, &n.trigger_insert),
            key_match(plan, "NEW"),
            insert_new_row(plan)
        ),
        format!(
            "CREATE TRIGGER {} AFTER UPDATE ON {t} FOR EACH ROW BEGIN\n  DELETE FROM {s} WHERE {};\n  IF NOT ({key_changed}) THEN\n    DELETE FROM {s} WHERE {};\n  END IF;\n  {};\nEND",
            trigger_name(&n.table, &n.trigger_update),
            key_match(plan, "OLD"),
            key_match(plan, "NEW"),
            insert_new_row(plan)
        ),
        format!(
            "CREATE TRIGGER {} AFTER DELETE ON {t} FOR EACH ROW DELETE FROM {s} WHERE {}",
            trigger_name(&n.table, &n.trigger_delete),
            key_match(plan, "OLD")
        ),
    ]
}

/// The atomic swap.
pub fn rename_swap(plan: &Plan) -> String {
    let n = &plan.names;
    format!("RENAME TABLE {} TO {}, {} TO {}", Qualified(&n.table), Qualified(&n.old), Qualified(&n.shadow), Qualified(&n.table))
}

/// Run `stmt` waiting at most `secs` seconds for metadata locks (MariaDB `SET STATEMENT`).
pub fn with_lock_timeout(secs: u64, stmt: &str) -> String {
    format!("SET STATEMENT lock_wait_timeout = {secs} FOR {stmt}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(name: &str, ty: &str) -> Column {
        Column::new(name, ty)
    }

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(Ident("a`b").to_string(), "`a``b`");
        assert_eq!(Qualified(&TableRef::new("d b", "t")).to_string(), "`d b`.`t`");
    }

    #[test]
    fn composite_bounds_expand_for_the_range_optimizer() {
        let types = [col("a", "int"), col("b", "varchar(10)")];
        assert_eq!(bound_predicate(&["a", "b"], &types, Bound::After), "((`a` > ?) OR (`a` = ? AND `b` > ?))");
        assert_eq!(bound_predicate(&["a", "b"], &types, Bound::UpTo), "((`a` < ?) OR (`a` = ? AND `b` <= ?))");
        assert_eq!(bound_params(&[1, 2]), vec![1, 1, 2]);
        let (w, p) = range_where(&["a"], &types[..1], Some(&[5]), &[9]);
        assert_eq!(w, "((`a` > ?)) AND ((`a` <= ?))");
        assert_eq!(p, vec![5, 9]);
    }

    #[test]
    fn decimal_keys_are_cast_and_unordered_types_refused() {
        assert_eq!(placeholder(&col("d", "decimal(10,2) unsigned")), "CAST(? AS decimal(10,2))");
        assert!(key_column_ok(&col("i", "int(10) unsigned")));
        assert!(key_column_ok(&col("v", "varbinary(16)")));
        for t in ["enum('a','b')", "set('x')", "float", "double", "bit(1)", "longtext", "blob"] {
            assert!(!key_column_ok(&col("x", t)), "{t}");
        }
    }

    #[test]
    fn checksum_distinguishes_null_positions() {
        let q = checksum(&TableRef::new("d", "t"), &["a", "b"], "1");
        assert!(q.contains("CONCAT_WS('#', `a`, `b`, CONCAT(ISNULL(`a`), ISNULL(`b`)))"), "{q}");
    }
}
