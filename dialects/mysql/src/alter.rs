//! What MariaDB makes of an ALTER, as far as shadowswap needs to know, in one place: the plan's
//! rules ([`rules`]: which columns can drive the chunk key, which type changes of a copied column
//! or of the key are refused), the DATETIME ↔ TIMESTAMP conversion the copy and the triggers
//! apply ([`timestamp_conversion`]), and what the ALTER's text says beyond the shapes the trial
//! ALTER returns ([`calls_clock`], [`adds_zone_dependent_default`]). Everything here reads the
//! engine's [`AlterAnalysis`] (done once, in the plan) and the shapes; nothing re-parses the spec.

use shadowswap_engine::alter::AlterAnalysis;
use shadowswap_engine::model::Column;
use shadowswap_engine::plan::{Plan, Rules};

/// The plan's rules for MariaDB: names compare case-insensitively (columns, indexes), and the
/// chunk-key and type-change rules of this module.
pub fn rules() -> Rules {
    Rules { eq: |a, b| a.eq_ignore_ascii_case(b), key_column_ok, type_change_refusal, key_change_refusal }
}

/// Whether a column type can be part of a chunk key: its `ORDER BY` order must be the order the
/// keyset predicates select. ENUM sorts by its index (declaration order) and compares with a
/// string as a string, so an ENUM key's bounds are its index numbers and its ranges are written
/// as lists of indexes ([`crate::sql::copy::is_enum`], [`crate::sql::copy::key_range_where`]). SET, FLOAT/DOUBLE (inexact), BIT,
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

/// Whether the ALTER's text calls a clock function (`CURRENT_TIMESTAMP`, `NOW()`, `CURDATE()`,
/// …), anywhere in the spec. Errs on the side of yes (a comment or a string naming one counts).
pub fn calls_clock(alter: &AlterAnalysis) -> bool {
    const CLOCKS: [&str; 8] =
        ["CURRENT_TIMESTAMP", "NOW(", "CURDATE", "CURTIME", "CURRENT_DATE", "CURRENT_TIME", "LOCALTIME", "SYSDATE"];
    let spec = alter.spec.to_ascii_uppercase();
    CLOCKS.iter().any(|c| spec.contains(c))
}

/// Whether the ALTER adds a column whose default depends on the session time zone: a column the
/// copy does not write (no source), not a TIMESTAMP (which stores an instant), while the spec
/// calls a clock function ([`calls_clock`]). Errs on the side of yes: it only decides whether to
/// look at the server's zone.
pub fn adds_zone_dependent_default(plan: &Plan) -> bool {
    calls_clock(&plan.analysis)
        && plan.added_columns.iter().any(|name| {
            plan.altered
                .columns
                .iter()
                .find(|c| c.name.eq_ignore_ascii_case(name))
                .is_some_and(|c| !c.column_type.to_ascii_lowercase().starts_with("timestamp"))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::test_plans::plan;

    fn col(name: &str, ty: &str) -> Column {
        Column::new(name, ty)
    }

    #[test]
    fn unordered_types_cannot_be_chunk_keys() {
        assert!(key_column_ok(&col("i", "int(10) unsigned")));
        assert!(key_column_ok(&col("v", "varbinary(16)")));
        assert!(key_column_ok(&col("e", "enum('a','b')")));
        assert!(key_column_ok(&col("d", "decimal(10,2) unsigned")));
        for t in ["set('x')", "float", "double", "bit(1)", "longtext", "blob"] {
            assert!(!key_column_ok(&col("x", t)), "{t}");
        }
        assert!((rules().eq)("Id", "iD"));
    }

    #[test]
    fn zone_dependent_defaults_are_recognised() {
        assert!(adds_zone_dependent_default(&plan("int", "ADD COLUMN created DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP")));
        assert!(adds_zone_dependent_default(&plan("int", "ADD created datetime default now()")));
        assert!(!adds_zone_dependent_default(&plan("int", "ADD COLUMN created DATETIME NOT NULL DEFAULT '2020-01-01'")));
        let mut p = plan("int", "ADD COLUMN created TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP");
        p.altered.columns[2].column_type = "timestamp".into();
        assert!(!adds_zone_dependent_default(&p), "a TIMESTAMP stores an instant");
        assert!(calls_clock(&plan("int", "ADD created date default (curdate())").analysis));
        assert!(!calls_clock(&plan("int", "ADD created date default '2020-01-01'").analysis));
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
