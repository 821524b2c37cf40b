//! The shadow table's statements ([`crate::shadow`]): created like the table, given what
//! `LIKE` does not copy, altered with the user's ALTER, given the table's outgoing foreign keys;
//! and dropped. [`outline`] is what the dry run prints of it, from the same builders. The trial
//! copy ([`crate::trial`]) and the in-place ALTER use [`create_like`] and [`alter_table`] too.

use shadowswap_engine::model::TableRef;
use shadowswap_engine::plan::Plan;

use super::{storage_parameters, Ident, Qualified, ServerQuoted};

/// `DROP TABLE IF EXISTS <table>`.
pub fn drop_table(table: &TableRef) -> String {
    format!("DROP TABLE IF EXISTS {}", Qualified(table))
}

/// `CREATE TABLE <new> (LIKE <like> INCLUDING ALL)`: columns, defaults, identity, generated
/// columns, constraints, indexes, statistics objects, storage and comments of `like`
/// (PostgreSQL docs, CREATE TABLE, `LIKE`).
pub fn create_like(new: &TableRef, like: &TableRef) -> String {
    format!("CREATE TABLE {} (LIKE {} INCLUDING ALL)", Qualified(new), Qualified(like))
}

/// `ALTER TABLE <table> <spec>`: the user's ALTER text, verbatim (analysed by the engine, run as
/// the table's owner with the user's search path: see [`crate::owner`]).
pub fn alter_table(table: &TableRef, spec: &str) -> String {
    format!("ALTER TABLE {} {spec}", Qualified(table))
}

/// The shadow's creation: [`create_like`] and the ALTER on it, as
/// `crate::shadow::create_shadow` runs them and the dry run prints them (between the two the
/// run gives the shadow the original's settings, [`prepare`], which need the catalog).
pub fn outline(plan: &Plan) -> [String; 2] {
    let n = &plan.names;
    [create_like(&n.shadow, &n.table), alter_table(&n.shadow, &plan.analysis.spec)]
}

/// The columns of `$1` with a statistics target or attribute options: name, `attstattarget`
/// (-1: default), `attoptions` (`name=value` each).
pub const COLUMN_SETTINGS: &str =
    "SELECT attname::text, attstattarget::int, coalesce(attoptions, '{}')::text[] FROM pg_attribute \
     WHERE attrelid = $1::text::regclass AND attnum > 0 AND NOT attisdropped AND (attstattarget >= 0 OR attoptions IS NOT NULL) \
     ORDER BY attnum";

/// The `reloptions` of the TOAST table of `$1` (empty without one) and the table's tablespace
/// (NULL: the database's default).
pub const TOAST_OPTIONS_AND_TABLESPACE: &str =
    "SELECT coalesce((SELECT reloptions FROM pg_class WHERE oid = c.reltoastrelid), '{}')::text[], \
        (SELECT spcname::text FROM pg_tablespace WHERE oid = c.reltablespace) \
 FROM pg_class c WHERE c.oid = $1::text::regclass";

/// The `NOT VALID` CHECK constraints of `$1`, by name.
pub const NOT_VALID_CHECKS: &str =
    "SELECT conname::text FROM pg_constraint WHERE conrelid = $1::text::regclass AND contype = 'c' AND NOT convalidated";

/// What the original has that `CREATE TABLE … (LIKE … INCLUDING ALL)` does not copy, or copies
/// wrongly, as read by [`COLUMN_SETTINGS`], [`TOAST_OPTIONS_AND_TABLESPACE`] and
/// [`NOT_VALID_CHECKS`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    /// `(column, statistics target (< 0: default), attribute options)`.
    pub columns: Vec<(String, i32, Vec<String>)>,
    /// The TOAST table's `reloptions`.
    pub toast: Vec<String>,
    /// The table's tablespace, when not the database's default.
    pub tablespace: Option<String>,
    /// The `NOT VALID` CHECK constraints, which `LIKE` copies as valid.
    pub not_valid_checks: Vec<String>,
}

/// The statements that give `shadow` the original's [`Settings`], right after [`create_like`]
/// and before the user's ALTER: per-column statistics targets and attribute options, the TOAST
/// table's storage parameters, the tablespace; and dropping the copies of `NOT VALID` CHECK
/// constraints (the copy would reject old rows the original never checked; the swap re-adds
/// them `NOT VALID`).
pub fn prepare(shadow: &TableRef, s: &Settings) -> Vec<String> {
    let mut out: Vec<String> = s.columns.iter().flat_map(|(c, target, o)| column_settings(shadow, c, *target, o)).collect();
    out.extend(toast_options(shadow, &s.toast));
    out.extend(s.tablespace.iter().map(|t| set_tablespace(shadow, t)));
    out.extend(s.not_valid_checks.iter().map(|c| drop_constraint(shadow, c)));
    out
}

/// `ALTER TABLE <table> SET (toast.… = …)` for the original's TOAST table's `reloptions`.
pub fn toast_options(table: &TableRef, reloptions: &[String]) -> Option<String> {
    storage_parameters(reloptions, "toast.").map(|o| format!("ALTER TABLE {} SET ({o})", Qualified(table)))
}

/// `ALTER TABLE <table> SET (…)` for the original table's `reloptions` (`fillfactor`,
/// autovacuum settings, …).
pub fn table_options(table: &TableRef, reloptions: &[String]) -> Option<String> {
    storage_parameters(reloptions, "").map(|o| format!("ALTER TABLE {} SET ({o})", Qualified(table)))
}

/// A column's per-column statistics target and attribute options (`n_distinct`, …), which
/// `CREATE TABLE … (LIKE … INCLUDING ALL)` does not copy. `target` < 0 means the default.
pub fn column_settings(table: &TableRef, column: &str, target: i32, attoptions: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    if target >= 0 {
        out.push(format!("ALTER TABLE {} ALTER COLUMN {} SET STATISTICS {target}", Qualified(table), Ident(column)));
    }
    if let Some(o) = storage_parameters(attoptions, "") {
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
pub fn add_constraint(table: &TableRef, name: &str, def: &ServerQuoted) -> String {
    format!("ALTER TABLE {} ADD CONSTRAINT {} {def}", Qualified(table), Ident(name))
}

/// `SET LOCAL search_path = pg_catalog, pg_temp`: catalog definitions (`pg_get_*def`) print
/// every name schema-qualified under it.
pub const CATALOG_SEARCH_PATH: &str = "SET LOCAL search_path = pg_catalog, pg_temp";

/// Back to the session's search path after [`CATALOG_SEARCH_PATH`].
pub const RESET_SEARCH_PATH: &str = "RESET search_path";

/// The validated foreign keys of `$1` to other tables: name and definition
/// (`pg_get_constraintdef`). `NOT VALID` ones are left to the swap: on the shadow they would
/// check the old rows the copy inserts, which the original never checked.
pub const OUTGOING_FOREIGN_KEYS: &str = "SELECT conname::text, pg_get_constraintdef(oid) FROM pg_constraint \
     WHERE conrelid = $1::text::regclass AND contype = 'f' AND convalidated";

/// The `reloptions` of `$1` (`name=value` each; empty without any).
pub const TABLE_OPTIONS: &str = "SELECT coalesce(reloptions, '{}')::text[] FROM pg_class WHERE oid = $1::text::regclass";

/// The original's storage parameters ([`TABLE_OPTIONS`]) and validated outgoing foreign keys
/// ([`OUTGOING_FOREIGN_KEYS`], with their names) for the shadow, after the user's ALTER.
pub fn outgoing_foreign_keys(shadow: &TableRef, reloptions: &[String], foreign_keys: &[(String, ServerQuoted)]) -> Vec<String> {
    let mut out: Vec<String> = table_options(shadow, reloptions).into_iter().collect();
    out.extend(foreign_keys.iter().map(|(name, def)| add_constraint(shadow, name, def)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{col, plan_for};

    fn t() -> TableRef {
        TableRef::new("public", "T x")
    }

    #[test]
    fn creation_and_the_dry_run_outline() {
        let plan = plan_for("t", vec![col("id", "integer")], "ADD COLUMN c int");
        assert_eq!(
            outline(&plan),
            [
                "CREATE TABLE \"public\".\"_t_new\" (LIKE \"public\".\"t\" INCLUDING ALL)",
                "ALTER TABLE \"public\".\"_t_new\" ADD COLUMN c int"
            ]
        );
        assert_eq!(drop_table(&t()), "DROP TABLE IF EXISTS \"public\".\"T x\"");
    }

    #[test]
    fn what_like_does_not_copy() {
        let s = Settings {
            columns: vec![("a\"b".into(), 500, vec!["n_distinct=-0.5".into()]), ("c".into(), -1, vec![])],
            toast: vec!["autovacuum_enabled=false".into()],
            tablespace: Some("fast".into()),
            not_valid_checks: vec!["ck".into()],
        };
        assert_eq!(
            prepare(&t(), &s),
            [
                "ALTER TABLE \"public\".\"T x\" ALTER COLUMN \"a\"\"b\" SET STATISTICS 500",
                "ALTER TABLE \"public\".\"T x\" ALTER COLUMN \"a\"\"b\" SET (n_distinct = E'-0.5')",
                "ALTER TABLE \"public\".\"T x\" SET (toast.autovacuum_enabled = E'false')",
                "ALTER TABLE \"public\".\"T x\" SET TABLESPACE \"fast\"",
                "ALTER TABLE \"public\".\"T x\" DROP CONSTRAINT \"ck\"",
            ]
        );
        assert!(prepare(&t(), &Settings::default()).is_empty());
        assert_eq!(column_settings(&t(), "a", 0, &[]), ["ALTER TABLE \"public\".\"T x\" ALTER COLUMN \"a\" SET STATISTICS 0"]);
        assert!(NOT_VALID_CHECKS.ends_with("AND contype = 'c' AND NOT convalidated"));
        assert!(COLUMN_SETTINGS.contains("(attstattarget >= 0 OR attoptions IS NOT NULL)"));
        assert!(TOAST_OPTIONS_AND_TABLESPACE
            .starts_with("SELECT coalesce((SELECT reloptions FROM pg_class WHERE oid = c.reltoastrelid)"));
    }

    #[test]
    fn outgoing_foreign_keys_and_options() {
        let fk = ServerQuoted::test("FOREIGN KEY (p) REFERENCES public.parent(id)");
        assert_eq!(
            outgoing_foreign_keys(&t(), &["fillfactor=70".into()], &[("t_p_fkey".into(), fk.clone())]),
            [
                "ALTER TABLE \"public\".\"T x\" SET (fillfactor = E'70')",
                "ALTER TABLE \"public\".\"T x\" ADD CONSTRAINT \"t_p_fkey\" FOREIGN KEY (p) REFERENCES public.parent(id)",
            ]
        );
        assert_eq!(outgoing_foreign_keys(&t(), &[], &[]), Vec::<String>::new());
        assert!(OUTGOING_FOREIGN_KEYS.ends_with("AND contype = 'f' AND convalidated"));
        assert_eq!(TABLE_OPTIONS, "SELECT coalesce(reloptions, '{}')::text[] FROM pg_class WHERE oid = $1::text::regclass");
        assert_eq!(CATALOG_SEARCH_PATH, "SET LOCAL search_path = pg_catalog, pg_temp");
        assert_eq!(RESET_SEARCH_PATH, "RESET search_path");
    }
}
