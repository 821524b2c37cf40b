//! Builders for `shadowswap migrate`'s history table (`shadowswap_migrations`) on MariaDB: its
//! creation, reading it, and recording a phase's start and end. Values are bound parameters
//! (`?`); the table's name is quoted ([`Qualified`]). Timestamps are UTC (`UTC_TIMESTAMP(6)`).

use shadowswap_engine::model::TableRef;

use super::Qualified;

/// `CREATE TABLE IF NOT EXISTS` the history table (InnoDB, utf8mb4): one row per phase run (or
/// revert).
pub fn create_history(history: &TableRef) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {} (id bigint NOT NULL AUTO_INCREMENT PRIMARY KEY, file varchar(255) NOT NULL, \
         phase varchar(16) NOT NULL, checksum char(64) NOT NULL, started_at datetime(6) NOT NULL, \
         finished_at datetime(6) NULL, applied_by varchar(400) NOT NULL, outcome varchar(16) NOT NULL, error text NULL) \
         ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
        Qualified(history)
    )
}

/// Every row, oldest first; timestamps as text `YYYY-MM-DD HH:MM:SS`.
pub fn read_history(history: &TableRef) -> String {
    format!(
        "SELECT id, file, phase, checksum, DATE_FORMAT(started_at, '%Y-%m-%d %H:%i:%s'), \
         DATE_FORMAT(finished_at, '%Y-%m-%d %H:%i:%s'), applied_by, outcome, error FROM {} ORDER BY id",
        Qualified(history)
    )
}

/// A phase starts: parameters file, phase, checksum, outcome; `applied_by` is the account the
/// server authenticated (`CURRENT_USER()`) and the client's host (from `USER()`). The id is the
/// session's `LAST_INSERT_ID()`.
pub fn start(history: &TableRef) -> String {
    format!(
        "INSERT INTO {} (file, phase, checksum, started_at, applied_by, outcome) VALUES (?, ?, ?, UTC_TIMESTAMP(6), \
         CONCAT(CURRENT_USER(), ' from ', SUBSTRING_INDEX(USER(), '@', -1)), ?)",
        Qualified(history)
    )
}

/// A phase ends: parameters outcome, error (NULL when none), id.
pub fn finish(history: &TableRef) -> String {
    format!("UPDATE {} SET finished_at = UTC_TIMESTAMP(6), outcome = ?, error = ? WHERE id = ?", Qualified(history))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_statements() {
        let h = TableRef::new("app`s", "shadowswap_migrations");
        assert!(create_history(&h).starts_with("CREATE TABLE IF NOT EXISTS `app``s`.`shadowswap_migrations` (id bigint"));
        assert!(create_history(&h).ends_with("ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"));
        assert!(read_history(&h).ends_with("FROM `app``s`.`shadowswap_migrations` ORDER BY id"));
        assert!(start(&h).contains(
            "VALUES (?, ?, ?, UTC_TIMESTAMP(6), CONCAT(CURRENT_USER(), ' from ', SUBSTRING_INDEX(USER(), '@', -1)), ?)"
        ));
        assert_eq!(
            finish(&h),
            "UPDATE `app``s`.`shadowswap_migrations` SET finished_at = UTC_TIMESTAMP(6), outcome = ?, error = ? WHERE id = ?"
        );
    }
}
