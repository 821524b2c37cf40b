//! Builders for the backfill and the checksum: keyset predicates over the chunk key, the key
//! range and a chunk's end, the chunk's lock, clear and copy, and the checksum of one chunk.
//! How the values written to the shadow are computed ([`source_expr`]) is shared with the capture
//! triggers ([`super::capture`]), so the copy and the triggers write the same thing.

use shadowswap_engine::model::{Column, TableRef};
use shadowswap_engine::plan::{ColumnMap, Plan};

use super::{column_list, Ident, Qualified};
use crate::alter::{timestamp_conversion, TimestampConversion};

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
pub fn source_expr(plan: &Plan, m: &ColumnMap, prefix: &str) -> String {
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

/// Whether the shadow holds any row in the chunk's range (`where_` over the shadow's key
/// columns): one row of `1` or none. A plain consistent read: it takes no lock.
pub fn shadow_chunk_has_rows(plan: &Plan, where_: &str) -> String {
    format!("SELECT 1 FROM {} WHERE {where_} LIMIT 1", Qualified(&plan.names.shadow))
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

/// Row count and XOR of a 64-bit SHA1 prefix of each row's checksummed columns. `CONCAT_WS` skips
/// NULLs, so the NULL-ness of every column is appended to tell `(NULL, 'a')` from `('a', NULL)`.
/// The row hash must not be linear: with a CRC, XOR over the chunk cancels a value swapped between
/// two rows (`mysql checksum::` tests it). SHA1 rather than MD5: MariaDB computes it in about half
/// the time (0.82 s against 1.45 s for this statement over a 1,000,000-row sysbench table on the
/// benchmark server), and both exist on every MySQL and MariaDB.
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
        "SELECT COUNT(*), COALESCE(BIT_XOR(CAST(CONV(SUBSTRING(SHA1(CONCAT_WS('#', {values}, CONCAT({nulls}))), 1, 16), 16, 10) AS UNSIGNED)), 0) \
         FROM {} WHERE {where_}",
        Qualified(table)
    )
}

/// Row lock waits: how many transactions wait for a row lock now, and how many waits InnoDB has
/// counted since the server started (the `Innodb_row_lock_current_waits` and
/// `Innodb_row_lock_waits` status variables, "Server Status Variables" in the MariaDB docs). One
/// row of two unsigned numbers. Read in a chunk's transaction just before its commit: the first
/// counts the writers the chunk's shared locks are holding up (and any waiting for each other);
/// the second, compared with the previous chunk's reading, also counts the waits that began and
/// ended in between, which a look at one instant misses (a writer that waited 20 ms for a chunk
/// of 40 ms is gone by the time it commits).
pub const ROW_LOCK_WAITERS: &str = "SELECT CAST(SUM(IF(VARIABLE_NAME = 'INNODB_ROW_LOCK_CURRENT_WAITS', VARIABLE_VALUE, 0)) AS \
     UNSIGNED), CAST(SUM(IF(VARIABLE_NAME = 'INNODB_ROW_LOCK_WAITS', VARIABLE_VALUE, 0)) AS UNSIGNED) FROM \
     information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME IN ('INNODB_ROW_LOCK_CURRENT_WAITS', 'INNODB_ROW_LOCK_WAITS')";

/// `SET SESSION innodb_lock_wait_timeout = secs`: how long the copy's locking read waits for a
/// row lock (whole seconds on MariaDB; 0: not at all) before the chunk fails as retryable.
pub fn innodb_lock_wait_timeout(secs: u64) -> String {
    format!("SET SESSION innodb_lock_wait_timeout = {secs}")
}

#[cfg(test)]
mod tests {
    use super::super::test_plans::{build, enum_key_plan, plan};
    use super::*;

    fn col(name: &str, ty: &str) -> Column {
        Column::new(name, ty)
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
        let (w, p) = open_range_where::<u8>(&["a"], &types[..1], None, None);
        assert_eq!((w.as_str(), p.len()), ("TRUE", 0));
    }

    #[test]
    fn decimal_keys_are_cast() {
        assert_eq!(placeholder(&col("d", "decimal(10,2) unsigned")), "CAST(? AS decimal(10,2))");
        assert_eq!(placeholder(&col("i", "int")), "?");
    }

    #[test]
    fn the_range_check_reads_the_shadow_without_locking() {
        assert_eq!(shadow_chunk_has_rows(&plan("int", "ADD COLUMN x INT"), "W"), "SELECT 1 FROM `d`.`_t_new` WHERE W LIMIT 1");
    }

    #[test]
    fn checksum_distinguishes_null_positions() {
        let q = checksum(&TableRef::new("d", "t"), &["a", "b"], "1");
        assert!(q.contains("CONCAT_WS('#', `a`, `b`, CONCAT(ISNULL(`a`), ISNULL(`b`)))"), "{q}");
        assert_eq!(
            checksum(&TableRef::new("d", "t"), &[], "W"),
            "SELECT COUNT(*), COALESCE(BIT_XOR(CAST(CONV(SUBSTRING(SHA1(CONCAT_WS('#', 1, CONCAT(0))), 1, 16), 16, 10) AS \
             UNSIGNED)), 0) FROM `d`.`t` WHERE W"
        );
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
    fn chunk_reads_and_writes() {
        let p = enum_key_plan();
        assert_eq!(
            key_edge(&p, false),
            "SELECT `e` + 0, `id` FROM `d``b`.`t x` FORCE INDEX (`PRIMARY`) ORDER BY `e`, `id` LIMIT 1"
        );
        assert_eq!(
            key_edge(&p, true),
            "SELECT `e` + 0, `id` FROM `d``b`.`t x` FORCE INDEX (`PRIMARY`) ORDER BY `e` DESC, `id` DESC LIMIT 1"
        );
        assert_eq!(
            chunk_end(&p, "W", 100),
            "SELECT `e` + 0, `id` FROM `d``b`.`t x` FORCE INDEX (`PRIMARY`) WHERE W ORDER BY `e`, `id` LIMIT 1 OFFSET 99"
        );
        assert_eq!(lock_chunk(&p, "W"), "SELECT COUNT(*) FROM `d``b`.`t x` FORCE INDEX (`PRIMARY`) WHERE W LOCK IN SHARE MODE");
        assert_eq!(clear_shadow_chunk(&p, "W"), "DELETE FROM `d``b`.`_t x_new` WHERE W");
        assert_eq!(innodb_lock_wait_timeout(2), "SET SESSION innodb_lock_wait_timeout = 2");
        assert_eq!(key_names(&p), (vec!["e", "id"], vec!["e", "id"]));
    }

    #[test]
    fn datetime_timestamp_changes_are_written_as_a_plain_alter_would() {
        let c = |n: &str, t: &str| Column { nullable: true, ..col(n, t) };
        let p = build(
            TableRef::new("d", "t"),
            vec![col("id", "int"), c("v", "timestamp(6)")],
            &["id"],
            vec![col("id", "int"), c("v", "datetime(6)")],
            "MODIFY v DATETIME(6) NULL",
        );
        assert_eq!(source_expr(&p, &p.mapping[0], "NEW."), "NEW.`id`");
        assert_eq!(
            source_expr(&p, &p.mapping[1], ""),
            "IF(UNIX_TIMESTAMP(`v`) = 0, `v`, CONVERT_TZ(TIMESTAMP'1970-01-01 00:00:00' + INTERVAL UNIX_TIMESTAMP(`v`) * \
             1000000 MICROSECOND, '+00:00', @@global.time_zone))"
        );
    }

    #[test]
    fn enum_keys_bind_index_numbers_and_use_in_lists() {
        use mysql_async::Value;
        assert_eq!(enum_count("enum('zeta','a,b','it''s')"), 3);
        assert!(is_enum(&col("e", "ENUM('a')")) && !is_enum(&col("e", "int")));
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
}
