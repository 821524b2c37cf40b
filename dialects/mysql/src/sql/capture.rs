//! Builders for change capture: the three AFTER triggers that replay every write into the shadow
//! inside the writer's own transaction, the table lock they are created and dropped under, and
//! the catalog queries that find them again (on the table, or after the swap on the old table).

use shadowswap_engine::model::TableRef;
use shadowswap_engine::plan::Plan;

use super::copy::source_expr;
use super::{column_list, trigger_name, Ident, Qualified};

/// The three capture triggers: `[insert, update, delete]`. The dry run prints these.
///
/// They write the shadow in the writer's own transaction. Each write first deletes the shadow
/// row by key and then inserts the new version: a REPLACE restricted to the chunk key. REPLACE
/// itself is not used because it also deletes rows that collide on *other* unique keys, which
/// silently loses rows when the ALTER adds a unique key. An UPDATE that changes the key deletes
/// the old key's row and the new key's row (if any) before inserting.
///
/// Each delete by key is preceded by an `INSERT IGNORE` of the same row ([`materialize`]), so
/// that the `DELETE` always finds a row. Under REPEATABLE READ, InnoDB locks the *gap* where an
/// absent key would be: a `DELETE` of a key the copy has not reached locked the gap over the
/// whole uncopied rest of the shadow, every application transaction took that one gap lock,
/// and each one's insert then waited for all the others' (lock waits and deadlocks between
/// application transactions, the p99 of `docs/benchmarks.md`). An insert takes no gap lock, a
/// duplicate on the primary key locks only that record, and a `DELETE` that finds its row locks
/// only that record (MariaDB KB "InnoDB Lock Modes"; MySQL manual 17.7.3 "Locks Set by Different
/// SQL Statements in InnoDB"). The row inserted is deleted again in the same statement, so no
/// other session ever sees it; `IGNORE` only turns a value the shadow cannot take into a warning
/// there, as that row is never kept.
pub fn capture_triggers(plan: &Plan) -> [String; 3] {
    let n = &plan.names;
    let t = Qualified(&n.table);
    let s = Qualified(&n.shadow);
    let key_changed =
        plan.key.columns.iter().map(|c| format!("NEW.{0} <=> OLD.{0}", Ident(&c.name))).collect::<Vec<_>>().join(" AND ");
    [
        format!(
            "CREATE TRIGGER {} AFTER INSERT ON {t} FOR EACH ROW BEGIN\n  {};\n  DELETE FROM {s} WHERE {};\n  {};\nEND",
            trigger_name(&n.table, &n.trigger_insert),
            materialize(plan, "NEW"),
            key_match(plan, "NEW"),
            insert_new_row(plan)
        ),
        format!(
            "CREATE TRIGGER {} AFTER UPDATE ON {t} FOR EACH ROW BEGIN\n  {};\n  DELETE FROM {s} WHERE {};\n  IF NOT ({key_changed}) THEN\n    {};\n    DELETE FROM {s} WHERE {};\n  END IF;\n  {};\nEND",
            trigger_name(&n.table, &n.trigger_update),
            materialize(plan, "OLD"),
            key_match(plan, "OLD"),
            materialize(plan, "NEW"),
            key_match(plan, "NEW"),
            insert_new_row(plan)
        ),
        format!(
            "CREATE TRIGGER {} AFTER DELETE ON {t} FOR EACH ROW BEGIN\n  {};\n  DELETE FROM {s} WHERE {};\nEND",
            trigger_name(&n.table, &n.trigger_delete),
            materialize(plan, "OLD"),
            key_match(plan, "OLD")
        ),
    ]
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

/// The triggers' insert of the new row version, each column written as the copy writes it.
fn insert_new_row(plan: &Plan) -> String {
    insert_row(plan, "INSERT", "NEW")
}

/// `INSERT IGNORE INTO shadow (…) VALUES (ROW.…)`: makes sure the shadow has a row at `row`'s key
/// (`row` is `NEW` or `OLD`) before the trigger deletes by that key, so that the delete locks
/// that one record and never a gap (see [`capture_triggers`]).
fn materialize(plan: &Plan, row: &str) -> String {
    insert_row(plan, "INSERT IGNORE", row)
}

fn insert_row(plan: &Plan, verb: &str, row: &str) -> String {
    let prefix = format!("{row}.");
    format!(
        "{verb} INTO {} ({}) VALUES ({})",
        Qualified(&plan.names.shadow),
        column_list("", plan.mapping.iter().map(|m| m.target.as_str())),
        plan.mapping.iter().map(|m| source_expr(plan, m, &prefix)).collect::<Vec<_>>().join(", ")
    )
}

/// `LOCK TABLES db.t WRITE`: the capture triggers are created and dropped under it, so the
/// application's statements see the table's set of triggers change in one step (MDEV-26048).
pub fn lock_table_write(table: &TableRef) -> String {
    format!("LOCK TABLES {} WRITE", Qualified(table))
}

/// Releases [`lock_table_write`].
pub const UNLOCK_TABLES: &str = "UNLOCK TABLES";

/// `DELETE FROM shadow`: empties the shadow before the capture is (re)installed. Not TRUNCATE,
/// which would reset the AUTO_INCREMENT counter carried over.
pub fn empty_shadow(plan: &Plan) -> String {
    format!("DELETE FROM {}", Qualified(&plan.names.shadow))
}

/// `(TRIGGER_NAME, EVENT_OBJECT_TABLE)` of the capture triggers that exist now, wherever they are,
/// sorted by table; parameters the schema, then the three trigger names.
pub const CAPTURE_TRIGGER_TABLES: &str = "SELECT TRIGGER_NAME, EVENT_OBJECT_TABLE FROM information_schema.TRIGGERS \
     WHERE TRIGGER_SCHEMA = ? AND TRIGGER_NAME IN (?, ?, ?) ORDER BY EVENT_OBJECT_TABLE, TRIGGER_NAME";

/// Names of the capture triggers that exist now, sorted; parameters the schema, then the three
/// trigger names.
pub const CAPTURE_TRIGGER_NAMES: &str =
    "SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ? AND TRIGGER_NAME IN (?, ?, ?) ORDER BY TRIGGER_NAME";

/// `DROP TRIGGER IF EXISTS schema.name` (a trigger lives in its table's schema).
pub fn drop_trigger(table: &TableRef, name: &str) -> String {
    format!("DROP TRIGGER IF EXISTS {}", trigger_name(table, name))
}

#[cfg(test)]
mod tests {
    use super::super::test_plans::{enum_key_plan, plan};
    use super::*;

    #[test]
    fn the_triggers_replay_each_write_by_key() {
        let [ins, upd, del] = capture_triggers(&plan("int", "ADD COLUMN created DATETIME NOT NULL DEFAULT '2020-01-01'"));
        let ensure = |row: &str| format!("INSERT IGNORE INTO `d`.`_t_new` (`id`, `c`) VALUES ({row}.`id`, {row}.`c`);");
        assert_eq!(
            ins,
            format!(
                "CREATE TRIGGER `d`.`_t_ssw_ins` AFTER INSERT ON `d`.`t` FOR EACH ROW BEGIN\n  {}\n  DELETE FROM `d`.`_t_new` \
                 WHERE `id` = NEW.`id`;\n  INSERT INTO `d`.`_t_new` (`id`, `c`) VALUES (NEW.`id`, NEW.`c`);\nEND",
                ensure("NEW")
            )
        );
        assert_eq!(
            upd,
            format!(
                "CREATE TRIGGER `d`.`_t_ssw_upd` AFTER UPDATE ON `d`.`t` FOR EACH ROW BEGIN\n  {}\n  DELETE FROM `d`.`_t_new` \
                 WHERE `id` = OLD.`id`;\n  IF NOT (NEW.`id` <=> OLD.`id`) THEN\n    {}\n    DELETE FROM `d`.`_t_new` WHERE \
                 `id` = NEW.`id`;\n  END IF;\n  INSERT INTO `d`.`_t_new` (`id`, `c`) VALUES (NEW.`id`, NEW.`c`);\nEND",
                ensure("OLD"),
                ensure("NEW")
            )
        );
        assert_eq!(
            del,
            format!(
                "CREATE TRIGGER `d`.`_t_ssw_del` AFTER DELETE ON `d`.`t` FOR EACH ROW BEGIN\n  {}\n  DELETE FROM `d`.`_t_new` \
                 WHERE `id` = OLD.`id`;\nEND",
                ensure("OLD")
            )
        );
    }

    #[test]
    fn the_triggers_convert_as_the_copy_does() {
        let [ins, _, del] = capture_triggers(&enum_key_plan());
        assert!(
            ins.contains(
                "INSERT INTO `d``b`.`_t x_new` (`e`, `id`, `ts`, `name`) VALUES (NEW.`e`, NEW.`id`, \
                 CONVERT_TZ(NEW.`ts`, @@global.time_zone, @@session.time_zone), NEW.`name`)"
            ),
            "{ins}"
        );
        assert!(del.ends_with("WHERE `e` = OLD.`e` AND `id` = OLD.`id`;\nEND"), "{del}");
        assert!(
            del.contains(
                "INSERT IGNORE INTO `d``b`.`_t x_new` (`e`, `id`, `ts`, `name`) VALUES (OLD.`e`, OLD.`id`, \
                 CONVERT_TZ(OLD.`ts`, @@global.time_zone, @@session.time_zone), OLD.`name`)"
            ),
            "{del}"
        );
    }

    #[test]
    fn lock_list_and_drop() {
        let p = plan("int", "ADD COLUMN created DATETIME NOT NULL DEFAULT '2020-01-01'");
        assert_eq!(lock_table_write(&p.names.table), "LOCK TABLES `d`.`t` WRITE");
        assert_eq!(UNLOCK_TABLES, "UNLOCK TABLES");
        assert_eq!(empty_shadow(&p), "DELETE FROM `d`.`_t_new`");
        assert_eq!(drop_trigger(&TableRef::new("d`b", "x"), "_t_ssw_ins"), "DROP TRIGGER IF EXISTS `d``b`.`_t_ssw_ins`");
        assert_eq!(
            CAPTURE_TRIGGER_TABLES,
            "SELECT TRIGGER_NAME, EVENT_OBJECT_TABLE FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ? AND \
             TRIGGER_NAME IN (?, ?, ?) ORDER BY EVENT_OBJECT_TABLE, TRIGGER_NAME"
        );
        assert_eq!(
            CAPTURE_TRIGGER_NAMES,
            "SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ? AND TRIGGER_NAME IN (?, ?, ?) \
             ORDER BY TRIGGER_NAME"
        );
    }
}
