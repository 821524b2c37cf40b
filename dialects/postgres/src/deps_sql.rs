//! Pure SQL builders for what [`crate::deps`] carries over to the new table: view options,
//! column statistics settings, constraints re-added `NOT VALID`, statistics objects, sequence
//! grants, `REPLICA IDENTITY USING INDEX` and `CLUSTER ON`. Nothing here talks to a server;
//! identifiers go through [`Ident`] / [`Qualified`], literals through [`literal`]. Arguments
//! documented as "as the catalog prints it" are already-quoted names read from the server
//! (`oid::regclass::text`, `quote_ident`, `pg_get_*def`).

use shadowswap_engine::model::TableRef;

use crate::sql::{literal, Ident, Qualified};

/// One storage parameter as `pg_class.reloptions` / `pg_attribute.attoptions` hold it
/// (`name=value`), written as `name = 'value'`. `None` when the name is not a plain
/// (optionally `toast.`-prefixed) lower-case word, which PostgreSQL never stores.
fn option(raw: &str, prefix: &str) -> Option<String> {
    let (k, v) = raw.split_once('=')?;
    let plain = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    plain(k).then(|| format!("{prefix}{k} = {}", literal(v)))
}

fn options(raw: &[String], prefix: &str) -> Option<String> {
    let list: Vec<String> = raw.iter().filter_map(|o| option(o, prefix)).collect();
    (!list.is_empty()).then(|| list.join(", "))
}

/// `ALTER VIEW <view> SET (…)` with a view's `reloptions` (`security_invoker`,
/// `security_barrier`, `check_option` — the last is how `WITH [LOCAL|CASCADED] CHECK OPTION` is
/// stored). `CREATE OR REPLACE VIEW` without a `WITH` clause resets them, so the swap sets them
/// again after re-creating the view. `view` as the catalog prints it. `None` without options.
pub fn view_options(view: &str, reloptions: &[String]) -> Option<String> {
    options(reloptions, "").map(|o| format!("ALTER VIEW {view} SET ({o})"))
}

/// `ALTER TABLE <table> SET (toast.… = …)` for the original's TOAST table's `reloptions`.
pub fn toast_options(table: &TableRef, reloptions: &[String]) -> Option<String> {
    options(reloptions, "toast.").map(|o| format!("ALTER TABLE {} SET ({o})", Qualified(table)))
}

/// A column's per-column statistics target and attribute options (`n_distinct`, …), which
/// `CREATE TABLE … (LIKE … INCLUDING ALL)` does not copy. `target` < 0 means the default.
pub fn column_settings(table: &TableRef, column: &str, target: i32, attoptions: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    if target >= 0 {
        out.push(format!("ALTER TABLE {} ALTER COLUMN {} SET STATISTICS {target}", Qualified(table), Ident(column)));
    }
    if let Some(o) = options(attoptions, "") {
        out.push(format!("ALTER TABLE {} ALTER COLUMN {} SET ({o})", Qualified(table), Ident(column)));
    }
    out
}

/// `ALTER TABLE <table> SET TABLESPACE <tablespace>`.
pub fn set_tablespace(table: &TableRef, tablespace: &str) -> String {
    format!("ALTER TABLE {} SET TABLESPACE {}", Qualified(table), Ident(tablespace))
}

/// `ALTER TABLE <table> DROP CONSTRAINT <name>`.
pub fn drop_constraint(table: &TableRef, name: &str) -> String {
    format!("ALTER TABLE {} DROP CONSTRAINT {}", Qualified(table), Ident(name))
}

/// `ALTER TABLE <table> ADD CONSTRAINT <name> <def>`; `def` as `pg_get_constraintdef` prints it
/// (ends in `NOT VALID` for a constraint that was never validated).
pub fn add_constraint(table: &TableRef, name: &str, def: &str) -> String {
    format!("ALTER TABLE {} ADD CONSTRAINT {} {def}", Qualified(table), Ident(name))
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

/// `ALTER STATISTICS <schema>.<name> OWNER TO <owner>`; `owner` quoted as the catalog prints it
/// (`quote_ident`).
pub fn statistics_owner(schema: &str, name: &str, owner: &str) -> String {
    format!("ALTER STATISTICS {}.{} OWNER TO {owner}", Ident(schema), Ident(name))
}

/// `COMMENT ON STATISTICS <schema>.<name> IS '…'`.
pub fn comment_on_statistics(schema: &str, name: &str, comment: &str) -> String {
    format!("COMMENT ON STATISTICS {}.{} IS {}", Ident(schema), Ident(name), literal(comment))
}

/// `GRANT <privilege> ON SEQUENCE <sequence> TO <grantee>`; `sequence`, `privilege` and
/// `grantee` (`PUBLIC` or a quoted role, optionally `WITH GRANT OPTION`) as the catalog prints them.
pub fn grant_on_sequence(sequence: &str, privilege: &str, grantee: &str) -> String {
    format!("GRANT {privilege} ON SEQUENCE {sequence} TO {grantee}")
}

/// `COMMENT ON SEQUENCE <sequence> IS '…'`; `sequence` as the catalog prints it.
pub fn comment_on_sequence(sequence: &str, comment: &str) -> String {
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
pub fn replace_rule(def: &str) -> String {
    match def.strip_prefix("CREATE RULE ") {
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

    #[test]
    fn view_and_table_options() {
        let o = ["security_invoker=true".to_string(), "check_option=local".into(), "security_barrier=on".into()];
        assert_eq!(
            view_options("public.v", &o).unwrap(),
            "ALTER VIEW public.v SET (security_invoker = E'true', check_option = E'local', security_barrier = E'on')"
        );
        assert_eq!(view_options("public.v", &[]), None);
        assert_eq!(view_options("public.v", &["Bad Name=1".into()]), None);
        assert_eq!(
            toast_options(&t(), &["autovacuum_enabled=false".into()]).unwrap(),
            "ALTER TABLE \"public\".\"T x\" SET (toast.autovacuum_enabled = E'false')"
        );
        assert_eq!(
            view_options("v", &["check_option=it's".into()]).unwrap(),
            format!("ALTER VIEW v SET (check_option = {})", literal("it's"))
        );
    }

    #[test]
    fn column_settings_statements() {
        assert_eq!(
            column_settings(&t(), "a\"b", 500, &["n_distinct=-0.5".into()]),
            [
                "ALTER TABLE \"public\".\"T x\" ALTER COLUMN \"a\"\"b\" SET STATISTICS 500",
                "ALTER TABLE \"public\".\"T x\" ALTER COLUMN \"a\"\"b\" SET (n_distinct = E'-0.5')"
            ]
        );
        assert!(column_settings(&t(), "a", -1, &[]).is_empty());
        assert_eq!(column_settings(&t(), "a", 0, &[]), ["ALTER TABLE \"public\".\"T x\" ALTER COLUMN \"a\" SET STATISTICS 0"]);
        assert_eq!(set_tablespace(&t(), "fast"), "ALTER TABLE \"public\".\"T x\" SET TABLESPACE \"fast\"");
    }

    #[test]
    fn constraints_statistics_sequences_indexes() {
        assert_eq!(drop_constraint(&t(), "ck"), "ALTER TABLE \"public\".\"T x\" DROP CONSTRAINT \"ck\"");
        assert_eq!(
            add_constraint(&t(), "ck", "CHECK ((n > 0)) NOT VALID"),
            "ALTER TABLE \"public\".\"T x\" ADD CONSTRAINT \"ck\" CHECK ((n > 0)) NOT VALID"
        );
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
        assert_eq!(statistics_owner("s", "st", "\"App\""), "ALTER STATISTICS \"s\".\"st\" OWNER TO \"App\"");
        assert_eq!(statistics_target("s", "st", 50), "ALTER STATISTICS \"s\".\"st\" SET STATISTICS 50");
        assert_eq!(comment_on_statistics("s", "st", "c"), format!("COMMENT ON STATISTICS \"s\".\"st\" IS {}", literal("c")));
        assert_eq!(grant_on_sequence("public.t_id_seq", "USAGE", "app"), "GRANT USAGE ON SEQUENCE public.t_id_seq TO app");
        assert_eq!(comment_on_sequence("public.s", "c"), format!("COMMENT ON SEQUENCE public.s IS {}", literal("c")));
        assert_eq!(replica_identity_index(&t(), "t_u"), "ALTER TABLE \"public\".\"T x\" REPLICA IDENTITY USING INDEX \"t_u\"");
        assert_eq!(
            index_column_statistics("public", "t_l", 1, 200),
            "ALTER INDEX \"public\".\"t_l\" ALTER COLUMN 1 SET STATISTICS 200"
        );
        assert_eq!(cluster_on(&t(), "t_u"), "ALTER TABLE \"public\".\"T x\" CLUSTER ON \"t_u\"");
        assert_eq!(
            replace_rule("CREATE RULE r AS\n    ON INSERT TO public.o DO  INSERT INTO public.t (id) VALUES (new.id);"),
            "CREATE OR REPLACE RULE r AS\n    ON INSERT TO public.o DO  INSERT INTO public.t (id) VALUES (new.id);"
        );
    }
}
