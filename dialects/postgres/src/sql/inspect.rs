//! Catalog reads of the inspect phase (and of every later look at a table's shape): columns,
//! indexes, row estimate, identity columns, the chunk key's equality operators, and the names
//! of constraints PostgreSQL generated. `$1` is always a relation's quoted name as text
//! (`Qualified(..).to_string()`), cast with `::text::regclass`.

/// A correlated subquery over `pg_attribute a`: the schema of the btree `<` operator of the
/// operator class of an index that has column `a` as a key, when that schema is not
/// `pg_catalog` (an extension type's: `ltree`, `citext`), else NULL. Read into
/// [`shadowswap_engine::model::Column::operator_schema`].
pub const KEY_OPERATOR_SCHEMA: &str = "SELECT n.nspname::text FROM pg_catalog.pg_index i \
     CROSS JOIN LATERAL unnest(i.indkey::int2[], i.indclass::oid[]) AS k(attnum, opclass) \
     JOIN pg_catalog.pg_opclass oc ON oc.oid = k.opclass \
     JOIN pg_catalog.pg_amop ao ON ao.amopfamily = oc.opcfamily AND ao.amoplefttype = oc.opcintype \
          AND ao.amoprighttype = oc.opcintype AND ao.amopstrategy = 1 AND ao.amopmethod = oc.opcmethod \
     JOIN pg_catalog.pg_operator o ON o.oid = ao.amopopr \
     JOIN pg_catalog.pg_namespace n ON n.oid = o.oprnamespace \
     WHERE i.indrelid = a.attrelid AND k.attnum = a.attnum AND n.nspname <> 'pg_catalog' LIMIT 1";

/// The columns of `$1` in order: name, type (`format_type`), collation name (NULL for none),
/// nullable, generated, has a default (or identity, or generated), and the schema of its key
/// operators ([`KEY_OPERATOR_SCHEMA`]).
pub fn columns() -> String {
    format!(
        "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod), co.collname::text, NOT a.attnotnull, a.attgenerated <> '', \
                a.atthasdef OR a.attidentity <> '' OR a.attgenerated <> '', \
                ({KEY_OPERATOR_SCHEMA}) \
         FROM pg_attribute a LEFT JOIN pg_collation co ON co.oid = a.attcollation AND a.attcollation <> 0 \
         WHERE a.attrelid = $1::text::regclass AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum"
    )
}

/// The indexes of `$1`, the primary key first, then by name: name, unique, primary, partial
/// (a predicate, an expression, a deferrable constraint), key columns in order.
pub const INDEXES: &str = "SELECT ic.relname::text, i.indisunique, i.indisprimary, \
        (i.indexprs IS NOT NULL OR i.indpred IS NOT NULL OR NOT i.indimmediate OR 0 = ANY (i.indkey::int2[])), \
        array(SELECT a.attname::text FROM unnest(i.indkey::int2[]) WITH ORDINALITY k(attnum, ord) \
              JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum \
              WHERE k.ord <= i.indnkeyatts ORDER BY k.ord) \
 FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid \
 WHERE i.indrelid = $1::text::regclass ORDER BY NOT i.indisprimary, ic.relname";

/// The planner's row estimate of `$1` (`pg_class.reltuples`, a `real`; -1 before the first
/// `VACUUM`/`ANALYZE`).
pub const ESTIMATED_ROWS: &str = "SELECT reltuples FROM pg_class WHERE oid = $1::text::regclass";

/// One row when a relation named `$2` exists in schema `$1` (names unquoted).
pub const TABLE_EXISTS: &str =
    "SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2";

/// The `GENERATED ALWAYS AS IDENTITY` columns of `$1`, in column order.
pub const ALWAYS_IDENTITY: &str = "SELECT attname::text FROM pg_attribute WHERE attrelid = $1::text::regclass AND attnum > 0 \
 AND NOT attisdropped AND attidentity = 'a' ORDER BY attnum";

/// The equality operator of each column of every unique, non-partial, non-expression index on
/// `$1`: index oid, column name, operator schema, operator name, in index column order. The
/// operator is the btree equality (strategy 3) of the column's operator class for the class's
/// input type, i.e. the equality the unique index (and so `ON CONFLICT`) uses.
pub const UNIQUE_INDEX_EQUALITY: &str = "SELECT i.indexrelid::bigint, a.attname::text, n.nspname::text, o.oprname::text \
     FROM pg_index i \
     CROSS JOIN LATERAL unnest(i.indkey::int2[], i.indclass::oid[]) WITH ORDINALITY AS k(attnum, opclass, ord) \
     JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum \
     JOIN pg_opclass oc ON oc.oid = k.opclass \
     JOIN pg_amop ao ON ao.amopfamily = oc.opcfamily AND ao.amoplefttype = oc.opcintype \
          AND ao.amoprighttype = oc.opcintype AND ao.amopstrategy = 3 AND ao.amopmethod = oc.opcmethod \
     JOIN pg_operator o ON o.oid = ao.amopopr \
     JOIN pg_namespace n ON n.oid = o.oprnamespace \
     WHERE i.indrelid = $1::text::regclass AND i.indisunique AND i.indpred IS NULL AND i.indexprs IS NULL \
       AND k.ord <= i.indnkeyatts \
     ORDER BY 1, k.ord";

/// The constraints of `$1` that PostgreSQL may have named itself, in creation order:
/// `(name, contype, columns)`, the columns in the constraint's order (an index's key and INCLUDE
/// columns for keys; NULL for an expression). See [`crate::generated_names`].
pub const CONSTRAINTS_FOR_NAMING: &str = "SELECT c.conname::text, c.contype::text, \
       CASE WHEN c.contype IN ('p', 'u', 'x') THEN \
         array(SELECT a.attname::text FROM unnest((SELECT i.indkey::int2[] FROM pg_index i WHERE i.indexrelid = c.conindid)) \
               WITH ORDINALITY k(attnum, ord) LEFT JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum \
               ORDER BY k.ord) \
       ELSE array(SELECT a.attname::text FROM unnest(c.conkey) WITH ORDINALITY k(attnum, ord) \
               LEFT JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum ORDER BY k.ord) END \
FROM pg_constraint c WHERE c.conrelid = $1::text::regclass AND c.contype IN ('p', 'u', 'x', 'c', 'f') ORDER BY c.oid";

/// Which of the names `$2` (text[]) are taken in the schema of `$1`: `('r', name)` for a
/// relation of that name, `('c', name)` for a constraint: what a generated name must not
/// collide with.
pub const NAMES_TAKEN_IN_SCHEMA: &str = "SELECT 'r', relname::text FROM pg_class \
        WHERE relnamespace = (SELECT relnamespace FROM pg_class WHERE oid = $1::text::regclass) AND relname = ANY($2::text[]::name[]) \
      UNION ALL SELECT 'c', conname::text FROM pg_constraint \
        WHERE connamespace = (SELECT relnamespace FROM pg_class WHERE oid = $1::text::regclass) AND conname = ANY($2::text[]::name[])";

/// The names of every constraint of `$1`.
pub const CONSTRAINT_NAMES: &str = "SELECT conname::text FROM pg_constraint WHERE conrelid = $1::text::regclass";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shape_queries() {
        let c = columns();
        assert!(c.starts_with("SELECT a.attname::text, format_type(a.atttypid, a.atttypmod), co.collname::text"), "{c}");
        assert!(c.contains(&format!("({KEY_OPERATOR_SCHEMA}) FROM pg_attribute a")), "{c}");
        assert!(c.ends_with("WHERE a.attrelid = $1::text::regclass AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum"));
        assert!(INDEXES.ends_with("WHERE i.indrelid = $1::text::regclass ORDER BY NOT i.indisprimary, ic.relname"));
        assert!(KEY_OPERATOR_SCHEMA.contains("ao.amopstrategy = 1") && KEY_OPERATOR_SCHEMA.ends_with("LIMIT 1"));
        assert_eq!(ESTIMATED_ROWS, "SELECT reltuples FROM pg_class WHERE oid = $1::text::regclass");
        assert!(TABLE_EXISTS.ends_with("WHERE n.nspname = $1 AND c.relname = $2"));
        assert!(ALWAYS_IDENTITY.contains("attidentity = 'a' ORDER BY attnum"));
    }

    #[test]
    fn key_and_naming_queries() {
        assert!(UNIQUE_INDEX_EQUALITY.contains("ao.amopstrategy = 3"));
        assert!(UNIQUE_INDEX_EQUALITY.contains("i.indisunique AND i.indpred IS NULL AND i.indexprs IS NULL"));
        assert!(UNIQUE_INDEX_EQUALITY.ends_with("ORDER BY 1, k.ord"));
        assert!(CONSTRAINTS_FOR_NAMING.ends_with("c.contype IN ('p', 'u', 'x', 'c', 'f') ORDER BY c.oid"));
        assert!(NAMES_TAKEN_IN_SCHEMA.starts_with("SELECT 'r', relname::text FROM pg_class"));
        assert!(NAMES_TAKEN_IN_SCHEMA.contains("UNION ALL SELECT 'c', conname::text FROM pg_constraint"));
        assert_eq!(CONSTRAINT_NAMES, "SELECT conname::text FROM pg_constraint WHERE conrelid = $1::text::regclass");
    }
}
