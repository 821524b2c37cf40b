//! What the swap carries over to the new table ([`crate::deps`]): the catalog reads that fill
//! [`crate::deps::Deps`] (run inside the swap transaction, with `search_path = pg_catalog`, so
//! definitions print schema-qualified names) and the builders for view options, constraint,
//! trigger and policy comments, statistics objects, identity sequences' grants and comments,
//! `REPLICA IDENTITY USING INDEX`, `CLUSTER ON` and rules. `$1` is the table's quoted name as
//! text (`::text::regclass`) unless said otherwise.
//!
//! Server docs: "pg_depend" (System Catalogs), "ALTER POLICY", "CREATE RULE" (`OR REPLACE`),
//! "CREATE FUNCTION" (`sql_body`), "CREATE STATISTICS", "CREATE VIEW".

use shadowswap_engine::model::TableRef;

use super::{literal, storage_parameters, Ident, Qualified, ServerQuoted};

/// The table's owner (`quote_ident`), comment, `relrowsecurity`, `relforcerowsecurity` and
/// `relreplident`.
pub const TABLE_FACTS: &str = "SELECT quote_ident(pg_get_userbyid(relowner)), obj_description(oid, 'pg_class'), relrowsecurity, \
        relforcerowsecurity, relreplident::text FROM pg_class WHERE oid = $1::text::regclass";

/// `CREATE POLICY …` for each policy of `$1`, written by the server (name, command, roles,
/// `USING` and `WITH CHECK` expressions), by policy name.
pub const POLICIES: &str = "SELECT format('CREATE POLICY %I ON %s AS %s FOR %s TO %s%s%s', pol.polname, $1::text, \
        CASE WHEN pol.polpermissive THEN 'PERMISSIVE' ELSE 'RESTRICTIVE' END, \
        CASE pol.polcmd WHEN 'r' THEN 'SELECT' WHEN 'a' THEN 'INSERT' WHEN 'w' THEN 'UPDATE' WHEN 'd' THEN 'DELETE' ELSE 'ALL' END, \
        (SELECT string_agg(CASE WHEN r = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(r)) END, ', ') FROM unnest(pol.polroles) r), \
        coalesce(' USING (' || pg_get_expr(pol.polqual, pol.polrelid) || ')', ''), \
        coalesce(' WITH CHECK (' || pg_get_expr(pol.polwithcheck, pol.polrelid) || ')', '')) \
 FROM pg_policy pol WHERE pol.polrelid = $1::text::regclass ORDER BY pol.polname";

/// The views that use `$1`: `CREATE OR REPLACE VIEW <view> AS <definition>` (which keeps the
/// view's OID, owner, grants and comments but resets its options), the view's name and its
/// `reloptions` (set again with [`view_options`]).
pub const VIEWS: &str =
    "SELECT DISTINCT format('CREATE OR REPLACE VIEW %s AS %s', v.oid::regclass::text, pg_get_viewdef(v.oid)), \
        v.oid::regclass::text, coalesce(v.reloptions, '{}')::text[] \
 FROM pg_depend d JOIN pg_rewrite r ON r.oid = d.objid JOIN pg_class v ON v.oid = r.ev_class \
 WHERE d.classid = 'pg_rewrite'::regclass AND d.refobjid = $1::text::regclass AND v.oid <> d.refobjid AND v.relkind = 'v'";

/// The foreign keys of other tables that reference `$1`: name, referencing table, definition.
pub const INCOMING_FOREIGN_KEYS: &str =
    "SELECT conname::text, conrelid::regclass::text, pg_get_constraintdef(oid) FROM pg_constraint \
 WHERE confrelid = $1::text::regclass AND contype = 'f' AND conrelid <> confrelid";

/// The user's triggers on `$1` (not internal, not among the capture triggers `$2`, text[]):
/// name, definition (`CREATE TRIGGER …`), `tgenabled`.
pub const TRIGGERS: &str = "SELECT tgname::text, pg_get_triggerdef(oid), tgenabled::text FROM pg_trigger \
 WHERE tgrelid = $1::text::regclass AND NOT tgisinternal AND NOT (tgname::text = ANY($2))";

/// The sequences owned by a column of `$1` (`serial`, `OWNED BY`; not identity): sequence and
/// column.
pub const OWNED_SEQUENCES: &str = "SELECT s.oid::regclass::text, a.attname::text FROM pg_depend d \
     JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S' \
     JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid \
 WHERE d.refobjid = $1::text::regclass AND d.deptype = 'a'";

/// For each identity column of `$1` that is an identity column of the shadow `$2` too: the two
/// identity sequences (`pg_get_serial_sequence`), and the original's bare name (`pg_class.relname`,
/// unquoted, whatever characters it holds).
pub const IDENTITY_SEQUENCES: &str = "SELECT pg_get_serial_sequence($1, a.attname), pg_get_serial_sequence($2, b.attname), \
        (SELECT sc.relname::text FROM pg_class sc WHERE sc.oid = pg_get_serial_sequence($1, a.attname)::regclass) \
 FROM pg_attribute a JOIN pg_attribute b ON b.attrelid = $2::text::regclass AND b.attname = a.attname AND b.attidentity <> '' \
 WHERE a.attrelid = $1::text::regclass AND a.attidentity <> '' AND a.attnum > 0";

/// The indexes of `$1` by name, each with its definition after `USING` (`u ` first for a unique
/// one), to match the original's indexes with the shadow's.
pub const INDEX_DEFINITIONS: &str = "SELECT ic.relname::text, (CASE WHEN i.indisunique THEN 'u ' ELSE '' END) || \
        regexp_replace(pg_get_indexdef(i.indexrelid), '^.* USING ', '') \
 FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid WHERE i.indrelid = $1::text::regclass ORDER BY 1";

/// The functions with SQL-standard bodies that use `$1`: their definitions
/// (`CREATE OR REPLACE FUNCTION …`).
pub const SQL_BODY_FUNCTIONS: &str =
    "SELECT DISTINCT pg_get_functiondef(p.oid) FROM pg_depend d JOIN pg_proc p ON p.oid = d.objid \
 WHERE d.classid = 'pg_proc'::regclass AND d.refclassid = 'pg_class'::regclass AND d.refobjid = $1::text::regclass \
   AND p.prosqlbody IS NOT NULL";

/// The rules of other tables that use `$1`: their definitions (`CREATE RULE …`).
pub const RULES_OF_OTHER_TABLES: &str =
    "SELECT DISTINCT pg_get_ruledef(r.oid) FROM pg_depend d JOIN pg_rewrite r ON r.oid = d.objid \
     JOIN pg_class c ON c.oid = r.ev_class \
 WHERE d.classid = 'pg_rewrite'::regclass AND d.refclassid = 'pg_class'::regclass AND d.refobjid = $1::text::regclass \
   AND c.relkind IN ('r', 'p') AND c.oid <> d.refobjid";

/// The policies of other tables that use `$1`, as `ALTER POLICY … USING (…) WITH CHECK (…)`,
/// which re-parses both expressions against the names as they are now.
pub const POLICIES_OF_OTHER_TABLES: &str =
    "SELECT DISTINCT format('ALTER POLICY %I ON %s%s%s', pol.polname, pol.polrelid::regclass::text, \
        coalesce(' USING (' || pg_get_expr(pol.polqual, pol.polrelid) || ')', ''), \
        coalesce(' WITH CHECK (' || pg_get_expr(pol.polwithcheck, pol.polrelid) || ')', '')) \
 FROM pg_depend d JOIN pg_policy pol ON pol.oid = d.objid \
 WHERE d.classid = 'pg_policy'::regclass AND d.refclassid = 'pg_class'::regclass AND d.refobjid = $1::text::regclass \
   AND pol.polrelid <> d.refobjid";

/// The `NOT VALID` CHECK and foreign-key constraints of `$1`, by name: name and definition
/// (ending in `NOT VALID`).
pub const NOT_VALID_CONSTRAINTS: &str = "SELECT conname::text, pg_get_constraintdef(oid) FROM pg_constraint \
 WHERE conrelid = $1::text::regclass AND contype IN ('c', 'f') AND NOT convalidated ORDER BY conname";

/// Constraint comments of `$1` that the new table (the shadow `$2`) lacks: those of `NOT VALID`
/// constraints and of constraints the shadow has without a comment (outgoing foreign keys).
pub const CONSTRAINT_COMMENTS: &str = "SELECT o.conname::text, obj_description(o.oid, 'pg_constraint') FROM pg_constraint o \
 WHERE o.conrelid = $1::text::regclass AND obj_description(o.oid, 'pg_constraint') IS NOT NULL \
   AND (NOT o.convalidated OR EXISTS (SELECT 1 FROM pg_constraint x WHERE x.conrelid = $2::text::regclass \
        AND x.conname = o.conname AND obj_description(x.oid, 'pg_constraint') IS NULL))";

/// The extended statistics objects of `$1`, by name: schema, name, kinds and columns (the key
/// they are matched by), statistics target, comment, owner (`quote_ident`).
pub const STATISTICS_OBJECTS: &str =
    "SELECT n.nspname::text, s.stxname::text, s.stxkind::text || ' ' || pg_get_statisticsobjdef_columns(s.oid), \
        s.stxstattarget::int, obj_description(s.oid, 'pg_statistic_ext'), quote_ident(pg_get_userbyid(s.stxowner)) \
 FROM pg_statistic_ext s JOIN pg_namespace n ON n.oid = s.stxnamespace WHERE s.stxrelid = $1::text::regclass ORDER BY 2";

/// The indexes of `$1` that are its replica identity or its clustering index: name, replica
/// identity, clustered.
pub const INDEX_ROLES: &str = "SELECT ic.relname::text, i.indisreplident, i.indisclustered FROM pg_index i \
     JOIN pg_class ic ON ic.oid = i.indexrelid \
 WHERE i.indrelid = $1::text::regclass AND (i.indisreplident OR i.indisclustered)";

/// The index columns of `$1`'s indexes with a statistics target: index, column position,
/// target.
pub const INDEX_COLUMN_TARGETS: &str = "SELECT ic.relname::text, a.attnum, a.attstattarget::int FROM pg_index i \
     JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_attribute a ON a.attrelid = i.indexrelid \
 WHERE i.indrelid = $1::text::regclass AND a.attstattarget >= 0 ORDER BY 1, 2";

/// Comments of the table's own triggers (`'t'`) and policies (`'p'`): kind, name, comment, by
/// kind (policies first) and name.
pub const OWN_COMMENTS: &str = "SELECT 't', tgname::text, obj_description(oid, 'pg_trigger') FROM pg_trigger \
 WHERE tgrelid = $1::text::regclass AND NOT tgisinternal AND obj_description(oid, 'pg_trigger') IS NOT NULL \
 UNION ALL SELECT 'p', polname::text, obj_description(oid, 'pg_policy') FROM pg_policy \
 WHERE polrelid = $1::text::regclass AND obj_description(oid, 'pg_policy') IS NOT NULL ORDER BY 1, 2";

/// The grants on sequence `$1` (as `pg_get_serial_sequence` prints it) to roles other than its
/// owner: privilege, and grantee (`PUBLIC` or `quote_ident`) with ` WITH GRANT OPTION` when held
/// so.
pub const SEQUENCE_GRANTS: &str = "SELECT a.privilege_type::text, \
        CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(a.grantee)) END || \
        CASE WHEN a.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END \
 FROM pg_class c, aclexplode(c.relacl) a WHERE c.oid = $1::text::regclass AND a.grantee <> c.relowner";

/// The comment of sequence `$1`.
pub const SEQUENCE_COMMENT: &str = "SELECT obj_description($1::text::regclass, 'pg_class')";

/// `ALTER VIEW <view> SET (…)` with a view's `reloptions` (`security_invoker`,
/// `security_barrier`, `check_option` — the last is how `WITH [LOCAL|CASCADED] CHECK OPTION` is
/// stored). `CREATE OR REPLACE VIEW` without a `WITH` clause resets them, so the swap sets them
/// again after re-creating the view. `None` without options.
pub fn view_options(view: &ServerQuoted, reloptions: &[String]) -> Option<String> {
    storage_parameters(reloptions, "").map(|o| format!("ALTER VIEW {view} SET ({o})"))
}

/// `COMMENT ON CONSTRAINT <name> ON <table> IS '…'`.
pub fn comment_on_constraint(table: &TableRef, name: &str, comment: &str) -> String {
    format!("COMMENT ON CONSTRAINT {} ON {} IS {}", Ident(name), Qualified(table), literal(comment))
}

/// `COMMENT ON TRIGGER <name> ON <table> IS '…'`.
pub fn comment_on_trigger(table: &TableRef, name: &str, comment: &str) -> String {
    format!("COMMENT ON TRIGGER {} ON {} IS {}", Ident(name), Qualified(table), literal(comment))
}

/// `COMMENT ON POLICY <name> ON <table> IS '…'`.
pub fn comment_on_policy(table: &TableRef, name: &str, comment: &str) -> String {
    format!("COMMENT ON POLICY {} ON {} IS {}", Ident(name), Qualified(table), literal(comment))
}

/// `ALTER STATISTICS <schema>.<from> RENAME TO <to>`.
pub fn rename_statistics(schema: &str, from: &str, to: &str) -> String {
    format!("ALTER STATISTICS {}.{} RENAME TO {}", Ident(schema), Ident(from), Ident(to))
}

/// `ALTER STATISTICS <schema>.<name> SET SCHEMA <to>`.
pub fn statistics_schema(schema: &str, name: &str, to: &str) -> String {
    format!("ALTER STATISTICS {}.{} SET SCHEMA {}", Ident(schema), Ident(name), Ident(to))
}

/// `ALTER STATISTICS <schema>.<name> SET STATISTICS <target>`.
pub fn statistics_target(schema: &str, name: &str, target: i32) -> String {
    format!("ALTER STATISTICS {}.{} SET STATISTICS {target}", Ident(schema), Ident(name))
}

/// `ALTER STATISTICS <schema>.<name> OWNER TO <owner>`.
pub fn statistics_owner(schema: &str, name: &str, owner: &ServerQuoted) -> String {
    format!("ALTER STATISTICS {}.{} OWNER TO {owner}", Ident(schema), Ident(name))
}

/// `COMMENT ON STATISTICS <schema>.<name> IS '…'`.
pub fn comment_on_statistics(schema: &str, name: &str, comment: &str) -> String {
    format!("COMMENT ON STATISTICS {}.{} IS {}", Ident(schema), Ident(name), literal(comment))
}

/// `GRANT <privilege> ON SEQUENCE <sequence> TO <grantee>`, all three as the catalog prints
/// them ([`SEQUENCE_GRANTS`]).
pub fn grant_on_sequence(sequence: &ServerQuoted, privilege: &ServerQuoted, grantee: &ServerQuoted) -> String {
    format!("GRANT {privilege} ON SEQUENCE {sequence} TO {grantee}")
}

/// `COMMENT ON SEQUENCE <sequence> IS '…'`.
pub fn comment_on_sequence(sequence: &ServerQuoted, comment: &str) -> String {
    format!("COMMENT ON SEQUENCE {sequence} IS {}", literal(comment))
}

/// `ALTER TABLE <table> REPLICA IDENTITY USING INDEX <index>` (the index is in the table's schema).
pub fn replica_identity_index(table: &TableRef, index: &str) -> String {
    format!("ALTER TABLE {} REPLICA IDENTITY USING INDEX {}", Qualified(table), Ident(index))
}

/// `ALTER INDEX <schema>.<index> ALTER COLUMN <n> SET STATISTICS <target>` (an expression
/// column of the index, by position).
pub fn index_column_statistics(schema: &str, index: &str, column: i16, target: i32) -> String {
    format!("ALTER INDEX {}.{} ALTER COLUMN {column} SET STATISTICS {target}", Ident(schema), Ident(index))
}

/// `ALTER TABLE <table> CLUSTER ON <index>`.
pub fn cluster_on(table: &TableRef, index: &str) -> String {
    format!("ALTER TABLE {} CLUSTER ON {}", Qualified(table), Ident(index))
}

/// A rule definition (`pg_get_ruledef`, `CREATE RULE …`) as `CREATE OR REPLACE RULE …`, which
/// re-binds the rule's actions to the relations their names now denote, keeping the rule.
pub fn replace_rule(def: &ServerQuoted) -> String {
    match def.as_str().strip_prefix("CREATE RULE ") {
        Some(rest) => format!("CREATE OR REPLACE RULE {rest}"),
        None => def.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t() -> TableRef {
        TableRef::new("public", "T x")
    }

    fn q(s: &str) -> ServerQuoted {
        ServerQuoted::test(s)
    }

    #[test]
    fn view_options_are_set_again() {
        let o = ["security_invoker=true".to_string(), "check_option=local".into(), "security_barrier=on".into()];
        assert_eq!(
            view_options(&q("public.v"), &o).unwrap(),
            "ALTER VIEW public.v SET (security_invoker = E'true', check_option = E'local', security_barrier = E'on')"
        );
        assert_eq!(view_options(&q("public.v"), &[]), None);
        assert_eq!(view_options(&q("public.v"), &["Bad Name=1".into()]), None);
        assert_eq!(
            view_options(&q("v"), &["check_option=it's".into()]).unwrap(),
            format!("ALTER VIEW v SET (check_option = {})", literal("it's"))
        );
    }

    #[test]
    fn comments_statistics_sequences_indexes() {
        assert_eq!(
            comment_on_constraint(&t(), "ck", "it's"),
            format!("COMMENT ON CONSTRAINT \"ck\" ON \"public\".\"T x\" IS {}", literal("it's"))
        );
        assert_eq!(
            comment_on_trigger(&t(), "tg", "c"),
            format!("COMMENT ON TRIGGER \"tg\" ON \"public\".\"T x\" IS {}", literal("c"))
        );
        assert_eq!(
            comment_on_policy(&t(), "p", "c"),
            format!("COMMENT ON POLICY \"p\" ON \"public\".\"T x\" IS {}", literal("c"))
        );
        assert_eq!(rename_statistics("s", "st", "_st_old"), "ALTER STATISTICS \"s\".\"st\" RENAME TO \"_st_old\"");
        assert_eq!(statistics_schema("public", "st", "s"), "ALTER STATISTICS \"public\".\"st\" SET SCHEMA \"s\"");
        assert_eq!(statistics_owner("s", "st", &q("\"App\"")), "ALTER STATISTICS \"s\".\"st\" OWNER TO \"App\"");
        assert_eq!(statistics_target("s", "st", 50), "ALTER STATISTICS \"s\".\"st\" SET STATISTICS 50");
        assert_eq!(comment_on_statistics("s", "st", "c"), format!("COMMENT ON STATISTICS \"s\".\"st\" IS {}", literal("c")));
        assert_eq!(
            grant_on_sequence(&q("public.t_id_seq"), &q("USAGE"), &q("app WITH GRANT OPTION")),
            "GRANT USAGE ON SEQUENCE public.t_id_seq TO app WITH GRANT OPTION"
        );
        assert_eq!(comment_on_sequence(&q("public.s"), "c"), format!("COMMENT ON SEQUENCE public.s IS {}", literal("c")));
        assert_eq!(replica_identity_index(&t(), "t_u"), "ALTER TABLE \"public\".\"T x\" REPLICA IDENTITY USING INDEX \"t_u\"");
        assert_eq!(
            index_column_statistics("public", "t_l", 1, 200),
            "ALTER INDEX \"public\".\"t_l\" ALTER COLUMN 1 SET STATISTICS 200"
        );
        assert_eq!(cluster_on(&t(), "t_u"), "ALTER TABLE \"public\".\"T x\" CLUSTER ON \"t_u\"");
        assert_eq!(
            replace_rule(&q("CREATE RULE r AS\n    ON INSERT TO public.o DO  INSERT INTO public.t (id) VALUES (new.id);")),
            "CREATE OR REPLACE RULE r AS\n    ON INSERT TO public.o DO  INSERT INTO public.t (id) VALUES (new.id);"
        );
    }

    #[test]
    fn catalog_reads() {
        assert!(TABLE_FACTS.starts_with("SELECT quote_ident(pg_get_userbyid(relowner)), obj_description(oid, 'pg_class')"));
        assert!(POLICIES.starts_with("SELECT format('CREATE POLICY %I ON %s AS %s FOR %s TO %s%s%s', pol.polname, $1::text,"));
        assert!(VIEWS.contains("format('CREATE OR REPLACE VIEW %s AS %s', v.oid::regclass::text, pg_get_viewdef(v.oid))"));
        assert!(INCOMING_FOREIGN_KEYS.ends_with("AND contype = 'f' AND conrelid <> confrelid"));
        assert!(TRIGGERS.ends_with("AND NOT tgisinternal AND NOT (tgname::text = ANY($2))"));
        assert!(OWNED_SEQUENCES.ends_with("d.deptype = 'a'"));
        assert!(
            IDENTITY_SEQUENCES.starts_with("SELECT pg_get_serial_sequence($1, a.attname), pg_get_serial_sequence($2, b.attname), (SELECT sc.relname::text FROM pg_class sc WHERE sc.oid = pg_get_serial_sequence($1, a.attname)::regclass)")
        );
        assert!(INDEX_DEFINITIONS.contains("regexp_replace(pg_get_indexdef(i.indexrelid), '^.* USING ', '')"));
        assert!(SQL_BODY_FUNCTIONS.ends_with("AND p.prosqlbody IS NOT NULL"));
        assert!(RULES_OF_OTHER_TABLES.ends_with("AND c.relkind IN ('r', 'p') AND c.oid <> d.refobjid"));
        assert!(POLICIES_OF_OTHER_TABLES.ends_with("AND pol.polrelid <> d.refobjid"));
        assert!(NOT_VALID_CONSTRAINTS.ends_with("AND NOT convalidated ORDER BY conname"));
        assert!(CONSTRAINT_COMMENTS.contains("x.conrelid = $2::text::regclass"));
        assert!(STATISTICS_OBJECTS.ends_with("WHERE s.stxrelid = $1::text::regclass ORDER BY 2"));
        assert!(INDEX_ROLES.ends_with("AND (i.indisreplident OR i.indisclustered)"));
        assert!(INDEX_COLUMN_TARGETS.ends_with("AND a.attstattarget >= 0 ORDER BY 1, 2"));
        assert!(OWN_COMMENTS.ends_with("ORDER BY 1, 2"));
        assert!(SEQUENCE_GRANTS.ends_with("AND a.grantee <> c.relowner"));
        assert_eq!(SEQUENCE_COMMENT, "SELECT obj_description($1::text::regclass, 'pg_class')");
    }
}
