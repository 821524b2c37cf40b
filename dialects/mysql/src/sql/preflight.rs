//! Builders for the preflight checks: the table's kind, engine and partitioning, its triggers and
//! foreign keys, whether this account may create triggers, the trial ALTER on a temporary copy,
//! and the search for a duplicate of a new unique key. None of them changes the table.

use shadowswap_engine::alter::AlterAnalysis;
use shadowswap_engine::model::TableRef;
use shadowswap_engine::names::Names;

use super::{column_list, trigger_name, Ident, Qualified};

/// `(TABLE_TYPE, ENGINE, CREATE_OPTIONS)` of a table; parameters schema and table.
pub const TABLE_STATUS: &str =
    "SELECT TABLE_TYPE, ENGINE, CREATE_OPTIONS FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?";

/// Names of the triggers on a table, sorted; parameters schema and table.
pub const TABLE_TRIGGERS: &str = "SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE EVENT_OBJECT_SCHEMA = ? \
     AND EVENT_OBJECT_TABLE = ? ORDER BY TRIGGER_NAME";

/// `table.constraint` of each foreign key on a table or referencing it; parameters schema,
/// table, schema, table.
pub const FOREIGN_KEYS: &str = "SELECT CONCAT(TABLE_NAME, '.', CONSTRAINT_NAME) FROM information_schema.REFERENTIAL_CONSTRAINTS \
     WHERE (CONSTRAINT_SCHEMA = ? AND TABLE_NAME = ?) OR (UNIQUE_CONSTRAINT_SCHEMA = ? AND REFERENCED_TABLE_NAME = ?)";

/// The session-private temporary table the preflight works on (the trial name in the table's
/// schema): the trial copy of the table, and the trigger privilege probe's table.
pub fn trial_table(names: &Names) -> TableRef {
    names.table.sibling(names.trial.clone())
}

/// `DROP TEMPORARY TABLE IF EXISTS`: never drops a real table of that name.
pub fn drop_temporary_table(table: &TableRef) -> String {
    format!("DROP TEMPORARY TABLE IF EXISTS {}", Qualified(table))
}

/// The trigger privilege probe's table: `CREATE TEMPORARY TABLE trial (x INT)`.
pub fn create_probe_table(names: &Names) -> String {
    format!("CREATE TEMPORARY TABLE {} (x INT)", Qualified(&trial_table(names)))
}

/// The trigger privilege probe. While binary logging is on, CREATE and DROP TRIGGER need SUPER
/// unless `log_bin_trust_function_creators` is set; a trigger on a session-private temporary
/// table passes that check, then fails (error 1361), so asking creates nothing.
pub fn create_probe_trigger(names: &Names) -> String {
    format!(
        "CREATE TRIGGER {} AFTER INSERT ON {} FOR EACH ROW SET @shadowswap_probe = 1",
        trigger_name(&names.table, &names.trial),
        Qualified(&trial_table(names))
    )
}

/// The trial copy: `CREATE TEMPORARY TABLE trial LIKE t`, where the ALTER is tried first
/// ([`super::shadow::alter_table`]).
pub fn create_trial_copy(names: &Names) -> String {
    format!("CREATE TEMPORARY TABLE {} LIKE {}", Qualified(&trial_table(names)), Qualified(&names.table))
}

/// The ALTER tried on the trial copy ([`super::shadow::alter_table`] of [`trial_table`]).
pub fn alter_trial_copy(names: &Names, alter: &AlterAnalysis) -> String {
    super::shadow::alter_table(&trial_table(names), alter)
}

/// One value of `columns` that occurs more than once in `table`, as
/// `(QUOTE(a), QUOTE(b)) occurs n times` (rows with a NULL in any of them are ignored, as unique
/// keys ignore them); no row when there is none.
pub fn find_duplicate(table: &TableRef, columns: &[String]) -> String {
    let cols = column_list("", columns.iter().map(String::as_str));
    let quoted = columns.iter().map(|c| format!("QUOTE({})", Ident(c))).collect::<Vec<_>>().join(", ");
    let not_null = columns.iter().map(|c| format!("{} IS NOT NULL", Ident(c))).collect::<Vec<_>>().join(" AND ");
    format!(
        "SELECT CONCAT('(', CONCAT_WS(', ', {quoted}), ') occurs ', COUNT(*), ' times') FROM {} WHERE {not_null} \
         GROUP BY {cols} HAVING COUNT(*) > 1 LIMIT 1",
        Qualified(table)
    )
}

#[cfg(test)]
mod tests {
    use shadowswap_engine::names::char_len;

    use super::*;

    fn names() -> Names {
        Names::new(&TableRef::new("d`b", "t"), crate::MAX_IDENTIFIER_CHARS, char_len)
    }

    #[test]
    fn catalog_queries() {
        assert_eq!(
            TABLE_STATUS,
            "SELECT TABLE_TYPE, ENGINE, CREATE_OPTIONS FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?"
        );
        assert_eq!(
            TABLE_TRIGGERS,
            "SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE EVENT_OBJECT_SCHEMA = ? AND EVENT_OBJECT_TABLE = ? \
             ORDER BY TRIGGER_NAME"
        );
        assert_eq!(
            FOREIGN_KEYS,
            "SELECT CONCAT(TABLE_NAME, '.', CONSTRAINT_NAME) FROM information_schema.REFERENTIAL_CONSTRAINTS WHERE \
             (CONSTRAINT_SCHEMA = ? AND TABLE_NAME = ?) OR (UNIQUE_CONSTRAINT_SCHEMA = ? AND REFERENCED_TABLE_NAME = ?)"
        );
    }

    #[test]
    fn the_probe_and_the_trial_copy_are_temporary() {
        let n = names();
        let trial = format!("`d``b`.`{}`", n.trial);
        assert_eq!(create_probe_table(&n), format!("CREATE TEMPORARY TABLE {trial} (x INT)"));
        assert_eq!(
            create_probe_trigger(&n),
            format!("CREATE TRIGGER {trial} AFTER INSERT ON {trial} FOR EACH ROW SET @shadowswap_probe = 1")
        );
        assert_eq!(drop_temporary_table(&trial_table(&n)), format!("DROP TEMPORARY TABLE IF EXISTS {trial}"));
        assert_eq!(create_trial_copy(&n), format!("CREATE TEMPORARY TABLE {trial} LIKE `d``b`.`t`"));
        let alter = shadowswap_engine::alter::analyze("ADD COLUMN x INT", &sqlparser::dialect::MySqlDialect {}).unwrap();
        assert_eq!(alter_trial_copy(&n, &alter), format!("ALTER TABLE {trial} ADD COLUMN x INT"));
    }

    #[test]
    fn duplicates_are_searched_ignoring_nulls() {
        assert_eq!(
            find_duplicate(&TableRef::new("d", "t"), &["a".into(), "b`c".into()]),
            "SELECT CONCAT('(', CONCAT_WS(', ', QUOTE(`a`), QUOTE(`b``c`)), ') occurs ', COUNT(*), ' times') FROM `d`.`t` \
             WHERE `a` IS NOT NULL AND `b``c` IS NOT NULL GROUP BY `a`, `b``c` HAVING COUNT(*) > 1 LIMIT 1"
        );
    }
}
