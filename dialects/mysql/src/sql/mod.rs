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

/// Whether a column type can be part of a chunk key: its `ORDER BY` order must be the order the
/// keyset predicates select. ENUM sorts by its index (declaration order) and compares with a
/// string as a string, so an ENUM key's bounds are its index numbers and its ranges are written
/// as lists of indexes ([`is_enum`], [`key_range_where`]). SET, FLOAT/DOUBLE (inexact), BIT,
/// JSON, BLOB/TEXT and spatial types are excluded.
pub fn key_column_ok(c: &Column) -> bool {
    let t = c.column_type.to_ascii_lowercase();
    const OK: [&str; 16] = [
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
        "enum",
    ];
    let base = t.split(['(', ' ']).next().unwrap_or("");
    OK.contains(&base)
}

/// Whether `c` is an ENUM column.
pub fn is_enum(c: &Column) -> bool {
    c.column_type.to_ascii_lowercase().starts_with("enum(")
}

/// How many values an ENUM column type (`enum('a','b,c','it''s')`) declares: its index numbers
/// run 1..=count (0 is the empty error value, which strict mode never stores).
pub fn enum_count(column_type: &str) -> u32 {
    let mut count = 0;
    let mut in_quote = false;
    let mut chars = column_type.chars().peekable();
    while let Some(ch) = chars.next() {
        if ch == '\'' {
            if in_quote && chars.peek() == Some(&'\'') {
                chars.next();
            } else {
                in_quote = !in_quote;
                if in_quote {
                    count += 1;
                }
            }
        }
    }
    count
}

/// [`shadowswap_engine::plan::Rules::key_change_refusal`] for MariaDB: a chunk-key column stays
/// usable only when equality and order are the same before and after the ALTER: the same
/// collation (hence charset and PAD attribute), and the same type, or a widened integer of the
/// same signedness, or a longer or shorter CHAR/VARCHAR/VARBINARY (values and comparisons do not
/// depend on the length), or an ENUM with values appended at the end (the others keep their index
/// numbers). Anything else (a charset or collation change, INT to VARCHAR, a changed
/// ENUM list, BINARY(n) whose zero padding changes) may make the triggers' key match and the
/// copy's range delete hit other rows.
pub fn key_change_refusal(from: &Column, to: &Column) -> Option<String> {
    let show = |c: &Column| match &c.collation {
        Some(coll) => format!("{} {coll}", c.column_type),
        None => c.column_type.clone(),
    };
    let why = || Some(format!("{} becomes {}", show(from), show(to)));
    if from.collation != to.collation {
        return why();
    }
    let (a, b) = (from.column_type.to_ascii_lowercase(), to.column_type.to_ascii_lowercase());
    if a == b {
        return None;
    }
    let base = |t: &str| t.split(['(', ' ']).next().unwrap_or("").to_string();
    let unsigned = |t: &str| t.contains("unsigned");
    const INTS: [&str; 5] = ["tinyint", "smallint", "mediumint", "int", "bigint"];
    let rank = |t: &str| INTS.iter().position(|i| *i == base(t));
    if let (Some(ra), Some(rb)) = (rank(&a), rank(&b)) {
        if rb >= ra && unsigned(&a) == unsigned(&b) && a.contains("zerofill") == b.contains("zerofill") {
            return None;
        }
        return why();
    }
    if base(&a) == base(&b) && ["char", "varchar", "varbinary"].contains(&base(&a).as_str()) {
        return None;
    }
    // ENUM values appended at the end: the existing values keep their index numbers.
    if base(&a) == "enum" && base(&b) == "enum" && b.starts_with(&format!("{},", a.trim_end_matches(')'))) {
        return None;
    }
    why()
}

/// Refuses type changes whose result depends on the session time zone: converting to or from
/// TIMESTAMP uses `time_zone`, which differs between shadowswap's sessions and the application's
/// sessions that fire the capture triggers. DATETIME ↔ TIMESTAMP is the exception: it is
/// converted explicitly, as a plain ALTER run in the server's default time zone would
/// ([`timestamp_conversion`]).
pub fn type_change_refusal(from: &Column, to: &Column) -> Option<String> {
    let ts = |c: &Column| c.column_type.to_ascii_lowercase().starts_with("timestamp");
    if timestamp_conversion(from, to).is_some() {
        return None;
    }
    (ts(from) != ts(to)).then(|| {
        "converting to or from TIMESTAMP (other than from or to DATETIME) depends on the session time zone, which \
         differs between shadowswap's copy and the application's sessions; add a new column and fill it yourself, or \
         use a plain ALTER TABLE"
            .to_string()
    })
}

/// A DATETIME ↔ TIMESTAMP change of a copied column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampConversion {
    /// DATETIME → TIMESTAMP: the local time is read in the server's default time zone.
    ToTimestamp,
    /// TIMESTAMP → DATETIME: the instant is written as local time in the server's default zone.
    ToDatetime,
}

/// Whether `from` → `to` is a DATETIME ↔ TIMESTAMP change (any fractional precision).
pub fn timestamp_conversion(from: &Column, to: &Column) -> Option<TimestampConversion> {
    let base = |c: &Column| c.column_type.to_ascii_lowercase().split(['(', ' ']).next().unwrap_or("").to_string();
    match (base(from).as_str(), base(to).as_str()) {
        ("datetime", "timestamp") => Some(TimestampConversion::ToTimestamp),
        ("timestamp", "datetime") => Some(TimestampConversion::ToDatetime),
        _ => None,
    }
}

/// The value written to the shadow for copied column `m`, read from `prefix` + the source column
/// (`""` in the copy's `SELECT`, `"NEW."` in the triggers). Usually the column itself; a DATETIME
/// ↔ TIMESTAMP change gets the semantics of a plain ALTER run in the server's default time zone
/// (`@@global.time_zone`; `'SYSTEM'` is accepted by `CONVERT_TZ`), whatever the time zone of
/// the session evaluating it (shadowswap's copy, or the application's session for a trigger):
/// - to TIMESTAMP: `CONVERT_TZ(c, @@global.time_zone, @@session.time_zone)`: the instant the
///   DATETIME denotes in the default zone (resolved exactly as the ALTER resolves it, DST
///   included), as local time of the session, which the TIMESTAMP column converts back with the
///   session's zone. Exact unless the session's zone has daylight saving and is not the
///   default zone, for values that fall into the session's repeated autumn hour.
/// - to DATETIME: from the stored instant (`UNIX_TIMESTAMP` of a TIMESTAMP column reads it
///   without a time zone) as UTC by arithmetic, then `CONVERT_TZ` from `'+00:00'` to the default
///   zone: exact in every session. The zero date stays the zero date.
pub fn source_expr(plan: &Plan, m: &shadowswap_engine::plan::ColumnMap, prefix: &str) -> String {
    let col = format!("{prefix}{}", Ident(&m.source));
    let eq = |a: &str, b: &str| a.eq_ignore_ascii_case(b);
    let (Some(from), Some(to)) = (plan.original.column(&m.source, eq), plan.altered.column(&m.target, eq)) else {
        return col;
    };
    match timestamp_conversion(from, to) {
        None => col,
        Some(TimestampConversion::ToTimestamp) => format!("CONVERT_TZ({col}, @@global.time_zone, @@session.time_zone)"),
        // A TIMESTAMP cannot hold the epoch itself: 0 is the zero date, which stays the zero date.
        Some(TimestampConversion::ToDatetime) => format!(
            "IF(UNIX_TIMESTAMP({col}) = 0, {col}, CONVERT_TZ(TIMESTAMP'1970-01-01 00:00:00' + INTERVAL \
             UNIX_TIMESTAMP({col}) * 1000000 MICROSECOND, '+00:00', @@global.time_zone))"
        ),
    }
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

/// The WHERE clause of a chunk with either end open (`None`), and its parameters, for key
/// values as the server returned them. Without an ENUM column this is [`open_range_where`]. An
/// ENUM column's bound is its index number (see [`key_select_list`]), and its strict or inclusive
/// inequality is written as the list of index numbers it admits (`e IN (?, ?)`, or `FALSE` when
/// none): MariaDB compares an ENUM with a string as a string, not in index order, and its range
/// optimizer uses an ENUM index for equalities and IN lists but not for `<`/`>` (a full index
/// scan per chunk otherwise).
pub fn key_range_where(
    cols: &[&str],
    types: &[Column],
    after: Option<&[mysql_async::Value]>,
    upto: Option<&[mysql_async::Value]>,
) -> (String, Vec<mysql_async::Value>) {
    if !types.iter().any(is_enum) {
        return open_range_where(cols, types, after, upto);
    }
    let mut params = Vec::new();
    let mut preds = Vec::new();
    for (bound, key) in [(Bound::After, after), (Bound::UpTo, upto)] {
        let Some(key) = key else { continue };
        let n = cols.len();
        let mut disjuncts = Vec::with_capacity(n);
        for i in 0..n {
            let mut terms = Vec::new();
            let mut term_params = Vec::new();
            for j in 0..i {
                terms.push(format!("{} = {}", Ident(cols[j]), placeholder(&types[j])));
                term_params.push(key[j].clone());
            }
            let op = match (bound, i + 1 == n) {
                (Bound::After, _) => ">",
                (Bound::UpTo, false) => "<",
                (Bound::UpTo, true) => "<=",
            };
            if is_enum(&types[i]) {
                let at = enum_ordinal(&key[i]);
                let admitted: Vec<u32> = (1..=enum_count(&types[i].column_type))
                    .filter(|o| match op {
                        ">" => *o > at,
                        "<" => *o < at,
                        _ => *o <= at,
                    })
                    .collect();
                if admitted.is_empty() {
                    disjuncts.push("(FALSE)".to_string());
                    continue;
                }
                terms.push(format!("{} IN ({})", Ident(cols[i]), vec!["?"; admitted.len()].join(", ")));
                term_params.extend(admitted.into_iter().map(|o| mysql_async::Value::UInt(u64::from(o))));
            } else {
                terms.push(format!("{} {op} {}", Ident(cols[i]), placeholder(&types[i])));
                term_params.push(key[i].clone());
            }
            disjuncts.push(format!("({})", terms.join(" AND ")));
            params.extend(term_params);
        }
        preds.push(format!("({})", disjuncts.join(" OR ")));
    }
    if preds.is_empty() {
        preds.push("TRUE".to_string());
    }
    (preds.join(" AND "), params)
}

/// An ENUM key value's index number, as [`key_select_list`] reads it (an integer, or its text).
fn enum_ordinal(v: &mysql_async::Value) -> u32 {
    match v {
        mysql_async::Value::Int(i) => u32::try_from(*i).unwrap_or(0),
        mysql_async::Value::UInt(u) => u32::try_from(*u).unwrap_or(0),
        mysql_async::Value::Bytes(b) => std::str::from_utf8(b).ok().and_then(|t| t.trim().parse().ok()).unwrap_or(0),
        _ => 0,
    }
}

/// The select list that reads a row's chunk key: the key columns, an ENUM column as its index
/// number (`` `e` + 0 ``) so that it binds back as a number in index order.
pub fn key_select_list(plan: &Plan) -> String {
    plan.key
        .columns
        .iter()
        .map(|c| if is_enum(c) { format!("{} + 0", Ident(&c.name)) } else { Ident(&c.name).to_string() })
        .collect::<Vec<_>>()
        .join(", ")
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

/// Whether the chunk key has a TIMESTAMP column. Its boundary values are read and bound as
/// local times of the session's time zone, which in a zone with DST name two instants in the
/// hour the clocks go back: only a session at UTC (shadowswap's, see `SESSION_SETUP`) binds
/// them exactly.
pub fn key_has_timestamp(plan: &Plan) -> bool {
    plan.key.columns.iter().any(|c| c.column_type.to_ascii_lowercase().starts_with("timestamp"))
}

/// The prefix that runs the copy statement in the server's default time zone (what a fresh
/// session, and so a plain `ALTER TABLE`, uses): `SET STATEMENT time_zone = @@global.time_zone
/// FOR` (MariaDB KB, "SET STATEMENT"). Defaults the copy evaluates for columns it does not write
/// (an added `DATETIME DEFAULT CURRENT_TIMESTAMP`, `CURDATE()`) then equal a plain ALTER's;
/// TIMESTAMP values copied TIMESTAMP to TIMESTAMP keep their instant in any zone. Empty when the
/// chunk key has a TIMESTAMP column ([`key_has_timestamp`]): its bound boundaries are only
/// exact at UTC, so the copy stays at UTC (docs/backfill.md, "Time zones").
pub fn copy_time_zone(plan: &Plan) -> &'static str {
    if key_has_timestamp(plan) {
        ""
    } else {
        "SET STATEMENT time_zone = @@global.time_zone FOR "
    }
}

/// Whether the ALTER adds a column whose default depends on the session time zone: a column the
/// copy does not write (no source), not a TIMESTAMP (which stores an instant), while the spec
/// calls a clock function (`CURRENT_TIMESTAMP`, `NOW()`, `CURDATE()`, …). Errs on the side of
/// yes: it only decides whether to look at the server's zone.
pub fn adds_zone_dependent_default(plan: &Plan) -> bool {
    const CLOCKS: [&str; 8] =
        ["CURRENT_TIMESTAMP", "NOW(", "CURDATE", "CURTIME", "CURRENT_DATE", "CURRENT_TIME", "LOCALTIME", "SYSDATE"];
    let spec = plan.analysis.spec.to_ascii_uppercase();
    CLOCKS.iter().any(|c| spec.contains(c))
        && plan.added_columns.iter().any(|name| {
            plan.altered
                .columns
                .iter()
                .find(|c| c.name.eq_ignore_ascii_case(name))
                .is_some_and(|c| !c.column_type.to_ascii_lowercase().starts_with("timestamp"))
        })
}

/// The server's default time zone's offset from UTC now, in seconds (NULL when the server
/// cannot convert to it).
pub const DEFAULT_ZONE_OFFSET: &str =
    "SELECT TIMESTAMPDIFF(SECOND, UTC_TIMESTAMP(), CONVERT_TZ(UTC_TIMESTAMP(), '+00:00', @@global.time_zone))";

/// The server-side copy of one chunk. No `IGNORE`: a row the new definition rejects (a duplicate
/// for a new unique key, a value that no longer fits) fails the chunk instead of being dropped or
/// truncated. Runs in the server's default time zone ([`copy_time_zone`]).
pub fn copy_chunk(plan: &Plan, where_: &str) -> String {
    let targets = column_list("", plan.mapping.iter().map(|m| m.target.as_str()));
    let sources = plan.mapping.iter().map(|m| source_expr(plan, m, "")).collect::<Vec<_>>().join(", ");
    format!(
        "{}INSERT INTO {} ({targets}) SELECT {sources} FROM {} {} WHERE {where_} LOCK IN SHARE MODE",
        copy_time_zone(plan),
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
    format!("SELECT {} FROM {} {} ORDER BY {order} LIMIT 1", key_select_list(plan), Qualified(&plan.names.table), force_key(plan))
}

/// The key `rows` rows into the range (a consistent, non-locking read).
pub fn chunk_end(plan: &Plan, where_: &str, rows: u64) -> String {
    let (cols, _) = key_names(plan);
    format!(
        "SELECT {} FROM {} {} WHERE {where_} ORDER BY {} LIMIT 1 OFFSET {}",
        key_select_list(plan),
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
        plan.mapping.iter().map(|m| source_expr(plan, m, "NEW.")).collect::<Vec<_>>().join(", ")
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

/// InnoDB's internal id of a table: `information_schema.INNODB_SYS_TABLES` (needs `PROCESS`),
/// parameter the InnoDB name, see [`innodb_name`]. `TRUNCATE TABLE` and every ALTER that
/// rebuilds the table give it a new id (MariaDB 10.3+ implements TRUNCATE as create-new and
/// drop-old), while row changes and instant ALTERs keep it.
pub const TABLE_ID: &str = "SELECT TABLE_ID FROM information_schema.INNODB_SYS_TABLES WHERE NAME = ?";

/// The name InnoDB knows `table` by, `schema/table`, when both are plain ASCII letters, digits
/// and underscores (other characters are stored in MariaDB's filename encoding, which
/// shadowswap does not reproduce: `None`, and the table id is not checked).
pub fn innodb_name(table: &TableRef) -> Option<String> {
    let plain = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    (plain(&table.schema) && plain(&table.name)).then(|| format!("{}/{}", table.schema, table.name))
}

/// A table definition from `SHOW CREATE TABLE`, comparable across a rename and across inserts:
/// without its first line (which names the table) and without the `AUTO_INCREMENT=n` option.
pub fn normalized_definition(ddl: &str) -> String {
    let body = ddl.split_once('\n').map(|(_, rest)| rest).unwrap_or(ddl);
    body.split(' ').filter(|w| !w.starts_with("AUTO_INCREMENT=")).collect::<Vec<_>>().join(" ")
}

/// Name and body of the capture triggers that exist now, wherever they are; parameters: the
/// schema, then the three trigger names.
pub const CAPTURE_TRIGGER_BODIES: &str = "SELECT TRIGGER_NAME, ACTION_STATEMENT FROM information_schema.TRIGGERS \
     WHERE TRIGGER_SCHEMA = ? AND TRIGGER_NAME IN (?, ?, ?) ORDER BY TRIGGER_NAME";

/// Run `stmt` waiting at most `secs` seconds for metadata locks (MariaDB `SET STATEMENT`).
pub fn with_lock_timeout(secs: u64, stmt: &str) -> String {
    format!("SET STATEMENT lock_wait_timeout = {secs} FOR {stmt}")
}

/// `SHOW CREATE TABLE db.t`: the table's definition; unlike information_schema it also shows the
/// session's temporary tables. Its result is `(name, definition)`, the definition holding column
/// defaults verbatim (not necessarily UTF-8: read it as bytes).
pub fn show_create_table(table: &TableRef) -> String {
    format!("SHOW CREATE TABLE {}", Qualified(table))
}

/// The storage engine named on the table options line (`) ENGINE=InnoDB …`, the last line) of a
/// `SHOW CREATE TABLE` definition, given as bytes; empty when there is none. Engine names are
/// ASCII; the rest of the definition (defaults of binary columns) may be any bytes.
pub fn engine_of_create_table(ddl: &[u8]) -> String {
    ddl.split(|b| *b == b'\n')
        .rev()
        .find_map(|l| l.strip_prefix(b") ENGINE="))
        .map(|rest| String::from_utf8_lossy(rest.split(|b| *b == b' ').next().unwrap_or_default()).into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(name: &str, ty: &str) -> Column {
        Column::new(name, ty)
    }

    #[test]
    fn the_engine_is_read_from_a_definition_that_is_not_utf8() {
        assert_eq!(show_create_table(&TableRef::new("d`b", "t")), "SHOW CREATE TABLE `d``b`.`t`");
        let ddl = b"CREATE TABLE `t` (\n  `b` varbinary(4) DEFAULT '\xff\x00\xfe',\n  `c` text COMMENT ') ENGINE=MyISAM'\n) ENGINE=InnoDB DEFAULT CHARSET=latin1";
        assert_eq!(engine_of_create_table(ddl), "InnoDB");
        assert_eq!(engine_of_create_table(b"CREATE TEMPORARY TABLE `t` (\n  `a` int\n) ENGINE=Aria"), "Aria");
        assert_eq!(engine_of_create_table(b"CREATE VIEW v AS SELECT 1"), "");
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
        for t in ["set('x')", "float", "double", "bit(1)", "longtext", "blob"] {
            assert!(!key_column_ok(&col("x", t)), "{t}");
        }
    }

    #[test]
    fn checksum_distinguishes_null_positions() {
        let q = checksum(&TableRef::new("d", "t"), &["a", "b"], "1");
        assert!(q.contains("CONCAT_WS('#', `a`, `b`, CONCAT(ISNULL(`a`), ISNULL(`b`)))"), "{q}");
    }

    fn plan(key_type: &str, spec: &str) -> Plan {
        use shadowswap_engine::model::{Index, TableShape};
        use shadowswap_engine::names::{char_len, Names};
        let cols = vec![Column::new("id", key_type), Column { nullable: true, ..Column::new("c", "int") }];
        let pk = vec![Index { name: "PRIMARY".into(), columns: vec!["id".into()], unique: true, primary: true, partial: false }];
        let shape = TableShape { columns: cols, indexes: pk, estimated_rows: 1 };
        let mut altered = shape.clone();
        altered.columns.push(Column { has_default: true, ..Column::new("created", "datetime") });
        let analysis = shadowswap_engine::alter::analyze(spec, &sqlparser::dialect::MySqlDialect {}).unwrap();
        let rules = shadowswap_engine::plan::Rules {
            eq: |a, b| a.eq_ignore_ascii_case(b),
            key_column_ok,
            type_change_refusal,
            key_change_refusal,
        };
        let names = Names::new(&TableRef::new("d", "t"), 64, char_len);
        Plan::build(names, analysis, shape, altered, rules, false).unwrap()
    }

    #[test]
    fn zone_dependent_defaults_are_recognised() {
        assert!(adds_zone_dependent_default(&plan("int", "ADD COLUMN created DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP")));
        assert!(adds_zone_dependent_default(&plan("int", "ADD created datetime default now()")));
        assert!(!adds_zone_dependent_default(&plan("int", "ADD COLUMN created DATETIME NOT NULL DEFAULT '2020-01-01'")));
        let mut p = plan("int", "ADD COLUMN created TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP");
        p.altered.columns[2].column_type = "timestamp".into();
        assert!(!adds_zone_dependent_default(&p), "a TIMESTAMP stores an instant");
    }

    #[test]
    fn the_copy_runs_in_the_servers_default_zone_unless_the_key_has_a_timestamp() {
        let spec = "ADD COLUMN created DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP";
        assert_eq!(
            copy_chunk(&plan("int", spec), "W"),
            "SET STATEMENT time_zone = @@global.time_zone FOR INSERT INTO `d`.`_t_new` (`id`, `c`) SELECT `id`, `c` \
             FROM `d`.`t` FORCE INDEX (`PRIMARY`) WHERE W LOCK IN SHARE MODE"
        );
        assert_eq!(
            copy_chunk(&plan("timestamp(6)", spec), "W"),
            "INSERT INTO `d`.`_t_new` (`id`, `c`) SELECT `id`, `c` FROM `d`.`t` FORCE INDEX (`PRIMARY`) WHERE W LOCK IN SHARE MODE"
        );
    }

    #[test]
    fn key_changes_that_keep_equality_and_order() {
        let c = |ty: &str, coll: Option<&str>| Column { collation: coll.map(String::from), ..col("k", ty) };
        assert!(key_change_refusal(&c("int(11)", None), &c("bigint(20)", None)).is_none());
        assert!(key_change_refusal(&c("varchar(10)", Some("latin1_bin")), &c("varchar(40)", Some("latin1_bin"))).is_none());
        let e = key_change_refusal(&c("varchar(10)", Some("latin1_swedish_ci")), &c("varchar(10)", Some("utf8mb4_unicode_ci")));
        assert_eq!(e.unwrap(), "varchar(10) latin1_swedish_ci becomes varchar(10) utf8mb4_unicode_ci");
        assert!(key_change_refusal(&c("int(10) unsigned", None), &c("bigint(20)", None)).is_some());
        assert!(key_change_refusal(&c("bigint(20)", None), &c("int(11)", None)).is_some());
        assert!(key_change_refusal(&c("binary(4)", None), &c("binary(8)", None)).is_some());
        assert!(key_change_refusal(&c("enum('a','b')", None), &c("enum('b','a')", None)).is_some());
        assert!(key_change_refusal(&c("enum('a','b')", None), &c("enum('a','b','c')", None)).is_none());
        assert!(key_change_refusal(&c("enum('a','b')", None), &c("enum('a','bc')", None)).is_some());
    }

    #[test]
    fn enum_keys_bind_index_numbers_and_use_in_lists() {
        use mysql_async::Value;
        assert_eq!(enum_count("enum('zeta','a,b','it''s')"), 3);
        assert!(key_column_ok(&col("e", "enum('a','b')")));
        let types = [col("e", "enum('z','a','m')"), col("i", "int")];
        let after = [Value::UInt(1), Value::Int(7)];
        let upto = [Value::UInt(3), Value::Int(2)];
        let (w, p) = key_range_where(&["e", "i"], &types, Some(&after), Some(&upto));
        assert_eq!(w, "((`e` IN (?, ?)) OR (`e` = ? AND `i` > ?)) AND ((`e` IN (?, ?)) OR (`e` = ? AND `i` <= ?))");
        let u = |v: u64| Value::UInt(v);
        assert_eq!(p, vec![u(2), u(3), u(1), Value::Int(7), u(1), u(2), u(3), Value::Int(2)]);
        let (w, p) = key_range_where(&["e"], &types[..1], Some(&[Value::UInt(3)]), None);
        assert_eq!(w, "((FALSE))");
        assert!(p.is_empty());
        // Without an ENUM column: the plain predicate.
        let (w, _) = key_range_where(&["i"], &types[1..], Some(&[Value::Int(1)]), None);
        assert_eq!(w, "((`i` > ?))");
    }

    #[test]
    fn identity_queries() {
        assert_eq!(innodb_name(&TableRef::new("ssw_a", "t_1")).as_deref(), Some("ssw_a/t_1"));
        assert_eq!(innodb_name(&TableRef::new("d", "t-x")), None);
        let a = "CREATE TABLE `t` (\n  `id` int(11) NOT NULL,\n  PRIMARY KEY (`id`)\n) ENGINE=InnoDB AUTO_INCREMENT=7 DEFAULT CHARSET=latin1";
        let b = "CREATE TABLE `_t_old` (\n  `id` int(11) NOT NULL,\n  PRIMARY KEY (`id`)\n) ENGINE=InnoDB AUTO_INCREMENT=9 DEFAULT CHARSET=latin1";
        assert_eq!(normalized_definition(a), normalized_definition(b));
        assert!(!normalized_definition(a).contains("AUTO_INCREMENT"));
        assert!(CAPTURE_TRIGGER_BODIES.contains("ACTION_STATEMENT"));
        assert!(TABLE_ID.contains("INNODB_SYS_TABLES"));
    }

    #[test]
    fn datetime_timestamp_changes_are_converted_not_refused() {
        let (dt, ts) = (col("c", "datetime(3)"), col("c", "timestamp(3)"));
        assert_eq!(timestamp_conversion(&dt, &ts), Some(TimestampConversion::ToTimestamp));
        assert_eq!(timestamp_conversion(&ts, &dt), Some(TimestampConversion::ToDatetime));
        assert!(type_change_refusal(&dt, &ts).is_none());
        assert!(type_change_refusal(&ts, &col("c", "datetime")).is_none());
        assert!(type_change_refusal(&col("c", "date"), &ts).is_some());
        assert!(type_change_refusal(&ts, &col("c", "varchar(30)")).is_some());
    }
}
