//! Builders for the shadow table `_<t>_new`: created like the table, the ALTER applied to it,
//! its AUTO_INCREMENT counter carried over; and `DROP TABLE` for the shadow and the old table.

use shadowswap_engine::alter::AlterAnalysis;
use shadowswap_engine::model::TableRef;
use shadowswap_engine::plan::Plan;

use super::Qualified;

/// `ALTER TABLE db.t <spec>`: the user's ALTER, verbatim, applied to a copy of the table (the
/// shadow, or the trial copy of the preflight). The server is the judge of its meaning.
pub fn alter_table(table: &TableRef, alter: &AlterAnalysis) -> String {
    format!("ALTER TABLE {} {}", Qualified(table), alter.spec)
}

/// The shadow's statements, `[create, alter]`: `CREATE TABLE shadow LIKE t` (which the run waits
/// for under [`super::with_lock_timeout`]) and the ALTER ([`alter_table`]). The dry run prints
/// these two.
pub fn create_shadow(plan: &Plan) -> [String; 2] {
    let n = &plan.names;
    [format!("CREATE TABLE {} LIKE {}", Qualified(&n.shadow), Qualified(&n.table)), alter_table(&n.shadow, &plan.analysis)]
}

/// The server's default time zone's offset from UTC now, in seconds (NULL when the server
/// cannot convert to it).
pub const DEFAULT_ZONE_OFFSET: &str =
    "SELECT TIMESTAMPDIFF(SECOND, UTC_TIMESTAMP(), CONVERT_TZ(UTC_TIMESTAMP(), '+00:00', @@global.time_zone))";

/// The table's next AUTO_INCREMENT value (NULL without an AUTO_INCREMENT column); parameters
/// schema and table.
pub const NEXT_AUTO_INCREMENT: &str =
    "SELECT AUTO_INCREMENT FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?";

/// `ALTER TABLE shadow AUTO_INCREMENT = next`: `CREATE TABLE … LIKE` does not copy the counter,
/// and ids freed by deletes at the top of the range must not be handed out again after the swap.
/// `next` is the number [`NEXT_AUTO_INCREMENT`] read.
pub fn set_auto_increment(table: &TableRef, next: u64) -> String {
    format!("ALTER TABLE {} AUTO_INCREMENT = {next}", Qualified(table))
}

/// `DROP TABLE IF EXISTS db.t` (the shadow or the old table; idempotent).
pub fn drop_table(table: &TableRef) -> String {
    format!("DROP TABLE IF EXISTS {}", Qualified(table))
}

#[cfg(test)]
mod tests {
    use super::super::test_plans::plan;
    use super::*;

    #[test]
    fn the_shadow_is_created_like_the_table_and_altered() {
        let p = plan("int", "ADD COLUMN created DATETIME NOT NULL DEFAULT '2020-01-01'");
        assert_eq!(
            create_shadow(&p),
            [
                "CREATE TABLE `d`.`_t_new` LIKE `d`.`t`".to_string(),
                "ALTER TABLE `d`.`_t_new` ADD COLUMN created DATETIME NOT NULL DEFAULT '2020-01-01'".to_string()
            ]
        );
        assert_eq!(set_auto_increment(&p.names.shadow, 42), "ALTER TABLE `d`.`_t_new` AUTO_INCREMENT = 42");
        assert_eq!(drop_table(&TableRef::new("d", "_t`old")), "DROP TABLE IF EXISTS `d`.`_t``old`");
        assert_eq!(
            NEXT_AUTO_INCREMENT,
            "SELECT AUTO_INCREMENT FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?"
        );
        assert_eq!(
            DEFAULT_ZONE_OFFSET,
            "SELECT TIMESTAMPDIFF(SECOND, UTC_TIMESTAMP(), CONVERT_TZ(UTC_TIMESTAMP(), '+00:00', @@global.time_zone))"
        );
    }
}
