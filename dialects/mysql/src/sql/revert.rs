//! Builders for the revert window (`crate::revert`, docs/revert.md): the reverse capture
//! triggers (new table → old table, each with an error handler that records the failure in the
//! checkpoint instead of failing the application's write), the placeholders and the four-way
//! `RENAME TABLE` that starts the reverse capture atomically with the swap, the swap back, and
//! the checkpoint row the window's state lives in.

use shadowswap_engine::model::TableRef;
use shadowswap_engine::names::{char_len, generated_name, Names};
use shadowswap_engine::plan::Plan;

use super::capture::drop_trigger;
use super::{column_list, trigger_name, Ident, Qualified};
use crate::alter::timestamp_conversion;
use crate::MAX_IDENTIFIER_CHARS;

/// `_<t>_ssw_rold`: where the empty placeholder `_<t>_old` moves aside at the swap.
pub fn old_placeholder_sink(names: &Names) -> TableRef {
    names.table.sibling(generated_name(&names.table.name, "ssw_rold", MAX_IDENTIFIER_CHARS, char_len))
}

/// `_<t>_ssw_rnew`: the empty table (shaped like the shadow, no triggers) that takes the name
/// `_<t>_new` at the swap, so the forward capture triggers, which move with the original to
/// `_<t>_old`, have somewhere harmless to write until they are dropped.
pub fn new_placeholder(names: &Names) -> TableRef {
    names.table.sibling(generated_name(&names.table.name, "ssw_rnew", MAX_IDENTIFIER_CHARS, char_len))
}

/// Why the reverse triggers could not write the old table exactly, for
/// [`shadowswap_engine::Dialect::revert_window_refusal`]: a DATETIME ↔ TIMESTAMP change (the
/// copy converts it by time zone, which the reverse would have to undo), a column the ALTER
/// drops that has no default (rows inserted in the window would have no value for it), a
/// generated column of the original that the new table stores.
pub fn refusal(plan: &Plan) -> Option<String> {
    let eq = |a: &str, b: &str| a.eq_ignore_ascii_case(b);
    for m in &plan.mapping {
        let (Some(from), Some(to)) = (plan.original.column(&m.source, eq), plan.altered.column(&m.target, eq)) else {
            continue;
        };
        if timestamp_conversion(from, to).is_some() {
            return Some(format!(
                "column {} changes between DATETIME and TIMESTAMP, which the reverse capture cannot convert back exactly",
                m.target
            ));
        }
        if from.generated {
            return Some(format!("column {} is generated in the original table and cannot be written back", m.source));
        }
    }
    for name in &plan.dropped_columns {
        if let Some(c) = plan.original.column(name, eq) {
            if !c.nullable && !c.has_default && !c.generated {
                return Some(format!(
                    "the ALTER drops NOT NULL column {name}, which has no DEFAULT: rows inserted in the window would have no \
                     value for it in the old table; give it a DEFAULT first"
                ));
            }
        }
    }
    None
}

/// `old.k = ROW.k AND …` (old table's key column names, new table's row).
fn old_key_match(plan: &Plan, row: &str) -> String {
    plan.key
        .columns
        .iter()
        .zip(&plan.key.shadow_columns)
        .map(|(o, n)| format!("{} = {row}.{}", Ident(&o.name), Ident(n)))
        .collect::<Vec<_>>()
        .join(" AND ")
}

/// The error handlers every reverse trigger declares first: a lock wait timeout (1205) or a
/// deadlock (1213) is raised again, as the application's own statement would meet it (InnoDB
/// rolls back the statement or the whole transaction then; swallowing it would hide that);
/// any other error is caught: the failing statement's change is undone (statement atomicity),
/// the application's write goes on, and the first failure is recorded in the checkpoint row's
/// `revert_broken` (MariaDB KB "DECLARE HANDLER": a handler for an error code is chosen over one
/// for `SQLEXCEPTION`; "GET DIAGNOSTICS"). In the writer's transaction: if it rolls back, so does
/// the record.
fn handler(names: &Names, event: &str) -> String {
    format!(
        "  DECLARE ssw_msg TEXT DEFAULT NULL;\n  DECLARE EXIT HANDLER FOR 1205, 1213 RESIGNAL;\n  DECLARE CONTINUE HANDLER FOR \
         SQLEXCEPTION BEGIN\n    GET DIAGNOSTICS \
         CONDITION 1 ssw_msg = MESSAGE_TEXT;\n    UPDATE {} SET revert_broken = COALESCE(revert_broken, CONCAT(UTC_TIMESTAMP(6), \
         ' UTC, {event} not carried back to the old table: ', ssw_msg)) WHERE id = 1;\n  END;\n",
        Qualified(&names.checkpoint)
    )
}

/// The three reverse capture triggers on the shadow (the new table after the swap), writing
/// into `_<t>_old`: `[insert, update, delete]`. Plain replay, since the two tables are in sync at
/// the swap: an insert writes the mapped columns (the old table's dropped columns get their
/// defaults), an update sets the mapped columns of the row with the old key (dropped columns keep
/// their values; a key change moves the row), a delete deletes by key. Added columns are not
/// carried back. A value the old definition cannot take is caught by `handler`.
pub fn reverse_triggers(plan: &Plan) -> [String; 3] {
    let n = &plan.names;
    let s = Qualified(&n.shadow);
    let o = Qualified(&n.old);
    let old_cols = column_list("", plan.mapping.iter().map(|m| m.source.as_str()));
    let new_vals = column_list("NEW.", plan.mapping.iter().map(|m| m.target.as_str()));
    let sets =
        plan.mapping.iter().map(|m| format!("{} = NEW.{}", Ident(&m.source), Ident(&m.target))).collect::<Vec<_>>().join(", ");
    [
        format!(
            "CREATE TRIGGER {} AFTER INSERT ON {s} FOR EACH ROW BEGIN\n{}  INSERT INTO {o} ({old_cols}) VALUES ({new_vals});\nEND",
            trigger_name(&n.table, &n.revert_insert),
            handler(n, "an insert")
        ),
        format!(
            "CREATE TRIGGER {} AFTER UPDATE ON {s} FOR EACH ROW BEGIN\n{}  UPDATE {o} SET {sets} WHERE {};\nEND",
            trigger_name(&n.table, &n.revert_update),
            handler(n, "an update"),
            old_key_match(plan, "OLD")
        ),
        format!(
            "CREATE TRIGGER {} AFTER DELETE ON {s} FOR EACH ROW BEGIN\n{}  DELETE FROM {o} WHERE {};\nEND",
            trigger_name(&n.table, &n.revert_delete),
            handler(n, "a delete"),
            old_key_match(plan, "OLD")
        ),
    ]
}

/// The placeholders, created before the cut-over attempts: `_<t>_old` shaped like the table
/// (the reverse triggers need a table of that name to exist from the moment they are created;
/// before the swap what they write there is discarded), and [`new_placeholder`].
pub fn create_placeholders(names: &Names) -> [String; 2] {
    [
        format!("CREATE TABLE IF NOT EXISTS {} LIKE {}", Qualified(&names.old), Qualified(&names.table)),
        format!("CREATE TABLE IF NOT EXISTS {} LIKE {}", Qualified(&new_placeholder(names)), Qualified(&names.shadow)),
    ]
}

/// The swap that starts the reverse capture: one atomic `RENAME TABLE` (MariaDB KB "RENAME
/// TABLE") that moves the placeholder `_<t>_old` aside, the table to `_<t>_old`, the shadow
/// (with the reverse triggers) to the table's name, and [`new_placeholder`] to `_<t>_new`. The
/// instant the table is the new one, `_<t>_old` is the original, so every write after the swap
/// reaches it through the reverse triggers.
pub fn rename_swap_with_revert(names: &Names) -> String {
    format!(
        "RENAME TABLE {} TO {}, {} TO {}, {} TO {}, {} TO {}",
        Qualified(&names.old),
        Qualified(&old_placeholder_sink(names)),
        Qualified(&names.table),
        Qualified(&names.old),
        Qualified(&names.shadow),
        Qualified(&names.table),
        Qualified(&new_placeholder(names)),
        Qualified(&names.shadow)
    )
}

/// `shadowswap revert`'s swap back: `RENAME TABLE t TO _t_new, _t_old TO t`.
pub fn rename_swap_back(names: &Names) -> String {
    format!(
        "RENAME TABLE {} TO {}, {} TO {}",
        Qualified(&names.table),
        Qualified(&names.shadow),
        Qualified(&names.old),
        Qualified(&names.table)
    )
}

/// `DROP TRIGGER IF EXISTS` for the three reverse triggers.
pub fn drop_reverse_triggers(names: &Names) -> Vec<String> {
    names.revert_triggers().iter().map(|t| drop_trigger(&names.table, t)).collect()
}

/// `DROP TABLE IF EXISTS <table>`.
pub fn drop_table_if_exists(table: &TableRef) -> String {
    format!("DROP TABLE IF EXISTS {}", Qualified(table))
}

/// Clears `revert_broken` in the checkpoint row (a new window starts with none).
pub fn clear_broken(names: &Names) -> String {
    format!("UPDATE {} SET revert_broken = NULL WHERE id = 1", Qualified(&names.checkpoint))
}

/// Sets the checkpoint's phase; parameter: the phase.
pub fn set_phase(names: &Names) -> String {
    format!("UPDATE {} SET phase = ? WHERE id = 1", Qualified(&names.checkpoint))
}

/// Sets the checkpoint's phase and the window's end; parameters: the phase, the end (RFC 3339).
pub fn set_phase_and_end(names: &Names) -> String {
    format!("UPDATE {} SET phase = ?, revert_until = ? WHERE id = 1", Qualified(&names.checkpoint))
}

/// Clears the window from the checkpoint (the swap did not happen).
pub fn clear_window(names: &Names) -> String {
    format!("UPDATE {} SET revert_until = NULL, revert_broken = NULL WHERE id = 1", Qualified(&names.checkpoint))
}

/// `phase, alter_text, revert_until, revert_broken` of the checkpoint row.
pub fn read_state(names: &Names) -> String {
    format!("SELECT phase, alter_text, revert_until, revert_broken FROM {} WHERE id = 1", Qualified(&names.checkpoint))
}

#[cfg(test)]
mod tests {
    use super::super::test_plans::{build, enum_key_plan, plan};
    use super::*;
    use shadowswap_engine::model::Column;

    #[test]
    fn the_reverse_triggers_replay_into_the_old_table_and_never_fail_the_write() {
        let p = plan("int", "ADD COLUMN created DATETIME NOT NULL DEFAULT '2020-01-01'");
        let [ins, upd, del] = reverse_triggers(&p);
        let handler = |ev: &str| {
            format!(
                "  DECLARE ssw_msg TEXT DEFAULT NULL;\n  DECLARE EXIT HANDLER FOR 1205, 1213 RESIGNAL;\n  DECLARE CONTINUE \
                 HANDLER FOR SQLEXCEPTION BEGIN\n    GET DIAGNOSTICS \
                 CONDITION 1 ssw_msg = MESSAGE_TEXT;\n    UPDATE `d`.`_t_ssw_ckpt` SET revert_broken = COALESCE(revert_broken, \
                 CONCAT(UTC_TIMESTAMP(6), ' UTC, {ev} not carried back to the old table: ', ssw_msg)) WHERE id = 1;\n  END;\n"
            )
        };
        assert_eq!(
            ins,
            format!(
                "CREATE TRIGGER `d`.`_t_ssw_rins` AFTER INSERT ON `d`.`_t_new` FOR EACH ROW BEGIN\n{}  INSERT INTO `d`.`_t_old` \
                 (`id`, `c`) VALUES (NEW.`id`, NEW.`c`);\nEND",
                handler("an insert")
            )
        );
        assert_eq!(
            upd,
            format!(
                "CREATE TRIGGER `d`.`_t_ssw_rupd` AFTER UPDATE ON `d`.`_t_new` FOR EACH ROW BEGIN\n{}  UPDATE `d`.`_t_old` SET \
                 `id` = NEW.`id`, `c` = NEW.`c` WHERE `id` = OLD.`id`;\nEND",
                handler("an update")
            )
        );
        assert_eq!(
            del,
            format!(
                "CREATE TRIGGER `d`.`_t_ssw_rdel` AFTER DELETE ON `d`.`_t_new` FOR EACH ROW BEGIN\n{}  DELETE FROM `d`.`_t_old` \
                 WHERE `id` = OLD.`id`;\nEND",
                handler("a delete")
            )
        );
    }

    #[test]
    fn the_swap_moves_the_placeholders_in_the_same_statement() {
        let n = enum_key_plan().names;
        assert_eq!(
            rename_swap_with_revert(&n),
            "RENAME TABLE `d``b`.`_t x_old` TO `d``b`.`_t x_ssw_rold`, `d``b`.`t x` TO `d``b`.`_t x_old`, `d``b`.`_t x_new` TO \
             `d``b`.`t x`, `d``b`.`_t x_ssw_rnew` TO `d``b`.`_t x_new`"
        );
        assert_eq!(rename_swap_back(&n), "RENAME TABLE `d``b`.`t x` TO `d``b`.`_t x_new`, `d``b`.`_t x_old` TO `d``b`.`t x`");
        assert_eq!(
            create_placeholders(&n),
            [
                "CREATE TABLE IF NOT EXISTS `d``b`.`_t x_old` LIKE `d``b`.`t x`",
                "CREATE TABLE IF NOT EXISTS `d``b`.`_t x_ssw_rnew` LIKE `d``b`.`_t x_new`"
            ]
        );
        assert_eq!(drop_reverse_triggers(&n)[0], "DROP TRIGGER IF EXISTS `d``b`.`_t x_ssw_rins`");
        assert_eq!(
            read_state(&n),
            "SELECT phase, alter_text, revert_until, revert_broken FROM `d``b`.`_t x_ssw_ckpt` WHERE id = 1"
        );
    }

    #[test]
    fn refusals_name_the_column() {
        assert!(refusal(&enum_key_plan()).unwrap().contains("column ts changes between DATETIME and TIMESTAMP"));
        assert_eq!(refusal(&plan("int", "ADD COLUMN created DATETIME NOT NULL DEFAULT '2020-01-01'")), None);
        let cols = vec![Column::new("id", "int"), Column::new("d", "int")];
        let p = build(TableRef::new("d", "t"), cols.clone(), &["id"], cols[..1].to_vec(), "DROP COLUMN d");
        assert!(refusal(&p).unwrap().contains("drops NOT NULL column d, which has no DEFAULT"), "{:?}", refusal(&p));
        let with_default = vec![Column::new("id", "int"), Column { has_default: true, ..Column::new("d", "int") }];
        let p = build(TableRef::new("d", "t"), with_default.clone(), &["id"], with_default[..1].to_vec(), "DROP COLUMN d");
        assert_eq!(refusal(&p), None);
    }
}
