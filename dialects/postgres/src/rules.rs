//! The [`Rules`] the engine's plan applies for PostgreSQL: which column types can be part of a
//! chunk key, and which type changes the copy and the capture cannot follow.

use shadowswap_engine::model::Column;
use shadowswap_engine::plan::Rules;

/// PostgreSQL's rules: names compare exactly (the server folds unquoted names already).
pub fn rules() -> Rules {
    Rules { eq: |a, b| a == b, key_column_ok, type_change_refusal, key_change_refusal }
}

/// Whether a column type can be part of a chunk key: it needs a default btree ordering (used by
/// both `ORDER BY` and row comparisons) and an exact text round trip (key values travel as text).
pub fn key_column_ok(c: &Column) -> bool {
    let t = c.column_type.to_ascii_lowercase();
    const NO: [&str; 13] =
        ["json", "jsonb", "xml", "money", "point", "line", "lseg", "box", "path", "polygon", "circle", "tsvector", "tsquery"];
    !NO.iter().any(|n| t == *n || t.starts_with(&format!("{n}(")))
}

/// Refuses type changes whose result depends on the session `TimeZone`: to or from
/// `timestamp with time zone` / `time with time zone`. shadowswap's sessions use the server's default zone, the
/// application's sessions that fire the capture triggers use theirs.
pub fn type_change_refusal(from: &Column, to: &Column) -> Option<String> {
    let tz = |c: &Column| c.column_type.contains("with time zone");
    (tz(from) != tz(to)).then(|| {
        "converting to or from a \"with time zone\" type depends on the session TimeZone, which differs between \
         shadowswap's copy (the server's default TimeZone) and the application's sessions; add a new column and fill it yourself"
            .to_string()
    })
}

/// [`Rules::key_change_refusal`] for PostgreSQL: a chunk-key column may change type only where
/// equality and btree order stay the same for every value it holds, under the same collation:
/// a wider integer (`smallint` → `integer` → `bigint`, which share the `integer_ops` btree family,
/// or → `numeric`, which holds every integer exactly),
/// and a length change among `character varying`/`text` (both compare with `text`'s operators).
/// Anything else falls back to [`shadowswap_engine::plan::unchanged_key_column`].
pub fn key_change_refusal(from: &Column, to: &Column) -> Option<String> {
    fn class(ty: &str) -> Option<(u8, u8)> {
        let base = ty.split('(').next().unwrap_or(ty).trim();
        match base {
            "smallint" => Some((0, 2)),
            "integer" => Some((0, 4)),
            "bigint" => Some((0, 8)),
            // Every integer is exact in numeric, with the same equality and order.
            "numeric" => Some((0, 16)),
            "text" | "character varying" => Some((1, 0)),
            _ => None,
        }
    }
    if from.collation == to.collation {
        if let (Some((a, wa)), Some((b, wb))) = (class(&from.column_type), class(&to.column_type)) {
            if a == b && wb >= wa {
                return None;
            }
        }
    }
    shadowswap_engine::plan::unchanged_key_column(from, to)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::col;

    #[test]
    fn key_changes_that_keep_equality_and_order() {
        let c = |ty: &str, coll: Option<&str>| Column { collation: coll.map(String::from), ..col("k", ty) };
        assert!(key_change_refusal(&c("integer", None), &c("bigint", None)).is_none());
        assert!(key_change_refusal(&c("smallint", None), &c("integer", None)).is_none());
        assert!(key_change_refusal(&c("bigint", None), &c("integer", None)).is_some());
        assert!(key_change_refusal(&c("character varying(10)", Some("default")), &c("text", Some("default"))).is_none());
        assert!(key_change_refusal(&c("text", Some("default")), &c("text", Some("C"))).is_some());
        assert!(key_change_refusal(&c("bigint", None), &c("numeric", None)).is_none());
        assert!(key_change_refusal(&c("numeric", None), &c("bigint", None)).is_some());
        assert!(key_change_refusal(&c("integer", None), &c("text", None)).is_some());
        assert!(key_change_refusal(&c("text", None), &c("text", None)).is_none());
    }

    #[test]
    fn key_types() {
        assert!(key_column_ok(&col("a", "bigint")));
        assert!(key_column_ok(&col("a", "uuid")));
        assert!(!key_column_ok(&col("a", "jsonb")));
        assert!(!key_column_ok(&col("a", "point")));
    }
}
