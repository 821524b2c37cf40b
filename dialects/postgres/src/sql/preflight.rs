//! Catalog queries of the preflight's refusals (see [`crate::preflight`]): the table's kind and
//! owner, inheritance, publications, materialized views, rules, self-referencing foreign keys,
//! dependents the swap cannot carry over, columns the ALTER takes from other objects,
//! subscriptions, `NOT VALID` constraints in the ALTER's way, and duplicates of a new unique
//! key. Each returns what a refusal names. `$1` is a relation's quoted name as text
//! (`::text::regclass`) unless said otherwise.

use shadowswap_engine::model::TableRef;

use super::{column_list, Ident, Qualified};

/// The table `$2` in schema `$1` (names unquoted): its OID, `relkind` and `relpersistence`.
pub const TABLE_KIND: &str = "SELECT c.oid, c.relkind::text, c.relpersistence::text FROM pg_class c \
     JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2";

/// Whether the session's user may act as the owner of table `$2` in schema `$1` (a member of
/// its role, or a superuser).
pub const MAY_ACT_AS_OWNER: &str =
    "SELECT pg_has_role(current_user, c.relowner, 'USAGE') OR (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) \
     FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2";

/// The parents and children of the table with OID `$1` (an `oid`) in table inheritance.
pub const INHERITANCE: &str = "SELECT inhparent::regclass::text FROM pg_inherits WHERE inhrelid = $1 \
     UNION ALL SELECT inhrelid::regclass::text FROM pg_inherits WHERE inhparent = $1";

/// The publications of table `$2` in schema `$1`.
pub const PUBLICATIONS: &str = "SELECT pubname::text FROM pg_publication_tables WHERE schemaname = $1 AND tablename = $2";

/// The materialized views that depend on the table with OID `$1`.
pub const MATERIALIZED_VIEWS: &str =
    "SELECT DISTINCT v.oid::regclass::text FROM pg_depend d JOIN pg_rewrite r ON r.oid = d.objid \
     JOIN pg_class v ON v.oid = r.ev_class WHERE d.refobjid = $1 AND v.relkind = 'm'";

/// The rules of table `$2` in schema `$1`.
pub const RULES: &str = "SELECT rulename::text FROM pg_rules WHERE schemaname = $1 AND tablename = $2";

/// The foreign keys of the table with OID `$1` that reference the table itself.
pub const SELF_FOREIGN_KEYS: &str =
    "SELECT conname::text FROM pg_constraint WHERE contype = 'f' AND conrelid = $1 AND confrelid = $1";

/// Objects that use a column of `$1` that the ALTER renames or drops (`$2`, text[]) or whose
/// type it changes (`$3`, text[]; views only): `'<kind> <name> (uses <column>)'`, names as
/// the server quotes them. Views and rules (of other relations), policies, foreign keys,
/// triggers of the user's own and functions with SQL-standard bodies.
pub const LOST_COLUMN_DEPENDENTS: &str = "SELECT DISTINCT format('%s (uses %I)', obj, a.attname) FROM ( \
     SELECT d.refobjsubid, CASE d.classid \
         WHEN 'pg_rewrite'::regclass THEN CASE WHEN r.rulename = '_RETURN' THEN 'view ' || r.ev_class::regclass::text \
              ELSE 'rule ' || quote_ident(r.rulename) || ' on ' || r.ev_class::regclass::text END \
         WHEN 'pg_policy'::regclass THEN 'policy ' || quote_ident(p.polname) \
         WHEN 'pg_constraint'::regclass THEN 'foreign key ' || quote_ident(co.conname) || ' of ' || co.conrelid::regclass::text \
         WHEN 'pg_trigger'::regclass THEN 'trigger ' || quote_ident(tg.tgname) \
         WHEN 'pg_proc'::regclass THEN 'function ' || pr.oid::regprocedure::text END AS obj, \
         d.classid = 'pg_rewrite'::regclass AS is_view \
     FROM pg_depend d \
     LEFT JOIN pg_rewrite r ON d.classid = 'pg_rewrite'::regclass AND r.oid = d.objid \
     LEFT JOIN pg_policy p ON d.classid = 'pg_policy'::regclass AND p.oid = d.objid \
     LEFT JOIN pg_constraint co ON d.classid = 'pg_constraint'::regclass AND co.oid = d.objid AND co.contype = 'f' \
     LEFT JOIN pg_trigger tg ON d.classid = 'pg_trigger'::regclass AND tg.oid = d.objid AND NOT tg.tgisinternal \
     LEFT JOIN pg_proc pr ON d.classid = 'pg_proc'::regclass AND pr.oid = d.objid AND pr.prosqlbody IS NOT NULL \
     WHERE d.refclassid = 'pg_class'::regclass AND d.refobjid = $1::text::regclass AND d.refobjsubid > 0 \
       AND (r.ev_class <> d.refobjid OR p.oid IS NOT NULL OR co.oid IS NOT NULL OR tg.oid IS NOT NULL OR pr.oid IS NOT NULL) \
 ) x JOIN pg_attribute a ON a.attrelid = $1::text::regclass AND a.attnum = x.refobjsubid \
 WHERE a.attname::text = ANY($2) OR (x.is_view AND a.attname::text = ANY($3)) ORDER BY 1";

/// Subscriptions (logical replication, this database) that replicate into `$1`: name, the
/// table's sync state (`srsubstate`) and whether the current user may alter them (owner or
/// superuser).
pub const SUBSCRIPTIONS: &str = "SELECT s.subname::text, r.srsubstate::text, \
        pg_has_role(current_user, s.subowner, 'USAGE') OR (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) \
 FROM pg_subscription_rel r JOIN pg_subscription s ON s.oid = r.srsubid \
 WHERE r.srrelid = $1::text::regclass ORDER BY 1";

/// The extension `$1` is a member of (the other direction of `pg_depend`: a member table would
/// leave its extension at the swap).
pub const EXTENSION_MEMBER: &str = "SELECT e.extname::text FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid \
     WHERE d.classid = 'pg_class'::regclass AND d.objid = $1::text::regclass AND d.refclassid = 'pg_extension'::regclass \
       AND d.deptype = 'e'";

/// The composite type `$1` is a typed table of (`OF type`), or NULL.
pub const TYPED_TABLE: &str = "SELECT NULLIF(reloftype, 0)::regtype::text FROM pg_class WHERE oid = $1::text::regclass";

/// Every object bound to `$1` that the swap would leave bound to the old table, as
/// `(kind identity, reason)`. Dependents of the handled kinds are excluded: the table's own
/// parts (indexes, TOAST table, owned sequences, row type and its array type, defaults,
/// constraints, triggers, statistics objects), views (re-created), foreign keys from other
/// tables (re-pointed), policies on any table (re-created / `ALTER POLICY`), rules of other
/// tables (`CREATE OR REPLACE RULE`), functions with SQL-standard bodies (`CREATE OR REPLACE`),
/// and kinds the preflight refuses with messages of their own (publications, materialized
/// views, rules on the table itself). The handled kinds are listed here only (the `NOT (…)`),
/// so a kind a newer server adds is refused, not left bound to the old table; what the swap
/// does with each handled kind is in [`crate::deps`] and [`super::cutover::swap`].
pub const UNHANDLED_DEPENDENTS: &str = "\
WITH tbl AS (SELECT c.oid, c.reltype FROM pg_class c WHERE c.oid = $1::text::regclass), \
idseq AS (SELECT d.objid FROM pg_depend d, tbl WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass \
          AND d.refobjid = tbl.oid AND d.deptype = 'i' AND EXISTS (SELECT 1 FROM pg_class s WHERE s.oid = d.objid AND s.relkind = 'S')), \
dep AS ( \
  SELECT d.classid, d.objid, d.objsubid, d.deptype, 'table' AS via FROM pg_depend d, tbl \
   WHERE d.refclassid = 'pg_class'::regclass AND d.refobjid = tbl.oid \
  UNION ALL SELECT d.classid, d.objid, d.objsubid, d.deptype, 'rowtype' FROM pg_depend d, tbl \
   WHERE d.refclassid = 'pg_type'::regclass AND d.refobjid = tbl.reltype \
  UNION ALL SELECT d.classid, d.objid, d.objsubid, d.deptype, 'identity' FROM pg_depend d \
   WHERE d.refclassid = 'pg_class'::regclass AND d.refobjid IN (SELECT objid FROM idseq) \
     AND NOT (d.classid = 'pg_class'::regclass AND d.objid = $1::text::regclass) \
) \
SELECT DISTINCT (SELECT format('%s %s', o.type, o.identity) FROM pg_identify_object(dep.classid, dep.objid, dep.objsubid) o), \
       CASE dep.via WHEN 'rowtype' THEN 'uses the row type of the table, which the new table does not share' \
                    WHEN 'identity' THEN 'uses an identity sequence of the table, which the new table replaces' \
                    ELSE 'is bound to the table and shadowswap cannot carry this kind of object over' END \
FROM dep, tbl WHERE NOT ( \
     (dep.via = 'table' AND dep.classid = 'pg_class'::regclass AND dep.deptype IN ('a', 'i') \
      AND EXISTS (SELECT 1 FROM pg_class x WHERE x.oid = dep.objid AND x.relkind IN ('S', 't', 'i', 'I'))) \
  OR (dep.via IN ('table', 'rowtype') AND dep.classid = 'pg_type'::regclass AND dep.deptype = 'i') \
  OR (dep.classid = 'pg_attrdef'::regclass AND dep.via <> 'identity' \
      AND EXISTS (SELECT 1 FROM pg_attrdef x WHERE x.oid = dep.objid AND x.adrelid = tbl.oid)) \
  OR (dep.classid = 'pg_constraint'::regclass AND EXISTS (SELECT 1 FROM pg_constraint x WHERE x.oid = dep.objid \
      AND (x.conrelid = tbl.oid OR (dep.via = 'table' AND x.contype = 'f' AND x.confrelid = tbl.oid)))) \
  OR (dep.classid = 'pg_trigger'::regclass AND EXISTS (SELECT 1 FROM pg_trigger x WHERE x.oid = dep.objid AND x.tgrelid = tbl.oid)) \
  OR (dep.classid = 'pg_statistic_ext'::regclass AND EXISTS (SELECT 1 FROM pg_statistic_ext x WHERE x.oid = dep.objid AND x.stxrelid = tbl.oid)) \
  OR (dep.via = 'table' AND dep.classid = 'pg_policy'::regclass) \
  OR (dep.via = 'table' AND dep.classid = 'pg_rewrite'::regclass AND EXISTS (SELECT 1 FROM pg_rewrite r JOIN pg_class v ON v.oid = r.ev_class \
      WHERE r.oid = dep.objid AND (v.relkind IN ('v', 'm') OR v.oid = tbl.oid OR v.relkind IN ('r', 'p')))) \
  OR (dep.via = 'table' AND dep.classid = 'pg_proc'::regclass AND EXISTS (SELECT 1 FROM pg_proc p WHERE p.oid = dep.objid AND p.prosqlbody IS NOT NULL)) \
  OR (dep.via = 'table' AND dep.classid = 'pg_publication_rel'::regclass) \
) ORDER BY 1";

/// The objects of other owners the swap re-creates (`CREATE OR REPLACE FUNCTION`, `CREATE OR
/// REPLACE RULE` and `ALTER POLICY` on another table need that object's or table's owner), as
/// `'<object> (owned by <role>)'`, for those the session's user cannot act as.
pub const NOT_OURS: &str = "\
WITH dep AS (SELECT d.classid, d.objid FROM pg_depend d \
             WHERE d.refclassid = 'pg_class'::regclass AND d.refobjid = $1::text::regclass), \
obj AS ( \
  SELECT 'function ' || p.oid::regprocedure::text AS what, p.proowner AS owner FROM dep JOIN pg_proc p ON p.oid = dep.objid \
   WHERE dep.classid = 'pg_proc'::regclass AND p.prosqlbody IS NOT NULL \
  UNION SELECT format('rule %I on %s', r.rulename, c.oid::regclass), c.relowner FROM dep JOIN pg_rewrite r ON r.oid = dep.objid \
   JOIN pg_class c ON c.oid = r.ev_class WHERE dep.classid = 'pg_rewrite'::regclass AND c.relkind IN ('r', 'p') \
   AND c.oid <> $1::text::regclass \
  UNION SELECT format('policy %I on %s', pol.polname, c.oid::regclass), c.relowner FROM dep JOIN pg_policy pol ON pol.oid = dep.objid \
   JOIN pg_class c ON c.oid = pol.polrelid WHERE dep.classid = 'pg_policy'::regclass AND c.oid <> $1::text::regclass \
) \
SELECT DISTINCT format('%s (owned by %I)', what, pg_get_userbyid(owner)) FROM obj \
WHERE NOT pg_has_role(current_user, owner, 'USAGE') AND NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) ORDER BY 1";

/// The `NOT VALID` CHECK and foreign-key constraints of `$1` that the ALTER names (`$2`,
/// text[]) or that use a column it drops or renames (`$3`, text[]).
pub const NOT_VALID_CONFLICTS: &str = "SELECT DISTINCT co.conname::text FROM pg_constraint co \
     LEFT JOIN pg_attribute a ON a.attrelid = co.conrelid AND a.attnum = ANY (co.conkey) \
     WHERE co.conrelid = $1::text::regclass AND NOT co.convalidated AND co.contype IN ('c', 'f') \
       AND (co.conname::text = ANY ($2) OR a.attname::text = ANY ($3)) ORDER BY 1";

/// One value of `columns` that occurs more than once in `table`, as `'(v1, v2) occurs n times'`
/// (values through `quote_nullable`); rows with a NULL in any of them are left out, as a unique
/// key leaves them out.
pub fn find_duplicate(table: &TableRef, columns: &[String]) -> String {
    let cols = column_list("", columns.iter().map(String::as_str));
    let quoted = columns.iter().map(|c| format!("quote_nullable({}::text)", Ident(c))).collect::<Vec<_>>().join(", ");
    let not_null = columns.iter().map(|c| format!("{} IS NOT NULL", Ident(c))).collect::<Vec<_>>().join(" AND ");
    format!(
        "SELECT format('(%s) occurs %s times', concat_ws(', ', {quoted}), count(*)) FROM {} WHERE {not_null} \
         GROUP BY {cols} HAVING count(*) > 1 LIMIT 1",
        Qualified(table)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_of_a_new_unique_key() {
        assert_eq!(
            find_duplicate(&TableRef::new("public", "t"), &["a".into(), "B c".into()]),
            "SELECT format('(%s) occurs %s times', concat_ws(', ', quote_nullable(\"a\"::text), quote_nullable(\"B c\"::text)), \
             count(*)) FROM \"public\".\"t\" WHERE \"a\" IS NOT NULL AND \"B c\" IS NOT NULL GROUP BY \"a\", \"B c\" \
             HAVING count(*) > 1 LIMIT 1"
        );
    }

    #[test]
    fn table_refusal_queries() {
        assert!(TABLE_KIND.starts_with("SELECT c.oid, c.relkind::text, c.relpersistence::text FROM pg_class c"));
        assert!(MAY_ACT_AS_OWNER.starts_with("SELECT pg_has_role(current_user, c.relowner, 'USAGE') OR"));
        assert!(INHERITANCE.contains("WHERE inhrelid = $1 UNION ALL SELECT inhrelid::regclass::text"));
        assert!(PUBLICATIONS.ends_with("WHERE schemaname = $1 AND tablename = $2"));
        assert!(MATERIALIZED_VIEWS.ends_with("WHERE d.refobjid = $1 AND v.relkind = 'm'"));
        assert!(RULES.ends_with("WHERE schemaname = $1 AND tablename = $2"));
        assert!(SELF_FOREIGN_KEYS.ends_with("AND conrelid = $1 AND confrelid = $1"));
        assert!(SUBSCRIPTIONS.ends_with("WHERE r.srrelid = $1::text::regclass ORDER BY 1"));
    }

    #[test]
    fn dependent_refusal_queries() {
        assert!(LOST_COLUMN_DEPENDENTS
            .ends_with("WHERE a.attname::text = ANY($2) OR (x.is_view AND a.attname::text = ANY($3)) ORDER BY 1"));
        assert!(EXTENSION_MEMBER.contains("d.deptype = 'e'"));
        assert_eq!(TYPED_TABLE, "SELECT NULLIF(reloftype, 0)::regtype::text FROM pg_class WHERE oid = $1::text::regclass");
        // Every handled kind is in the one NOT (…) list.
        for kind in [
            "pg_attrdef",
            "pg_constraint",
            "pg_trigger",
            "pg_statistic_ext",
            "pg_policy",
            "pg_rewrite",
            "pg_proc",
            "pg_publication_rel",
        ] {
            assert!(UNHANDLED_DEPENDENTS.contains(&format!("dep.classid = '{kind}'::regclass")), "{kind}");
        }
        assert!(NOT_OURS.ends_with("AND NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) ORDER BY 1"));
        assert!(NOT_VALID_CONFLICTS.contains("NOT co.convalidated AND co.contype IN ('c', 'f')"));
    }
}
