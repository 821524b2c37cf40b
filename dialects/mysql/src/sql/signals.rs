//! Builders for the throttle's signals: the replica-lag heartbeat table, global status variables,
//! and the sessions a cut-over would queue behind (INNODB_TRX, PROCESSLIST and, when the
//! `metadata_lock_info` plugin is loaded, METADATA_LOCK_INFO; MariaDB KB "Information Schema
//! METADATA_LOCK_INFO Table"). Reading them needs the PROCESS privilege.

use shadowswap_engine::model::TableRef;

use super::Qualified;

/// Creates the heartbeat table (idempotent): one row, `id = 1`, holding the last sequence number.
pub fn create_heartbeat(table: &TableRef) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {} (id TINYINT UNSIGNED NOT NULL PRIMARY KEY, seq BIGINT UNSIGNED NOT NULL) ENGINE=InnoDB",
        Qualified(table)
    )
}

/// Writes the heartbeat's sequence number; parameter the number.
pub fn write_heartbeat(table: &TableRef) -> String {
    format!("INSERT INTO {} (id, seq) VALUES (1, ?) ON DUPLICATE KEY UPDATE seq = VALUES(seq)", Qualified(table))
}

/// Reads the heartbeat's sequence number (on a replica: the last one it applied).
pub fn read_heartbeat(table: &TableRef) -> String {
    format!("SELECT seq FROM {} WHERE id = 1", Qualified(table))
}

/// A global status variable's value as text (`SHOW GLOBAL STATUS`); parameter its name, in any case.
pub const GLOBAL_STATUS: &str = "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = UPPER(?)";

/// Sessions holding a metadata lock on the table in a transaction open longer than the lock
/// timeout, one line each (needs the `metadata_lock_info` plugin: error 1109 without it);
/// parameters schema, table, seconds.
pub const BLOCKERS_HOLDING_THE_TABLE: &str = "SELECT CONCAT('session ', t.trx_mysql_thread_id, ' (', COALESCE(p.USER, '?'), \
     ') in a transaction for ', TIMESTAMPDIFF(SECOND, t.trx_started, NOW()), ' s holding ', m.LOCK_MODE, ' on the table') \
     FROM information_schema.METADATA_LOCK_INFO m \
     JOIN information_schema.INNODB_TRX t ON t.trx_mysql_thread_id = m.THREAD_ID \
     LEFT JOIN information_schema.PROCESSLIST p ON p.ID = m.THREAD_ID \
     WHERE m.TABLE_SCHEMA = ? AND m.TABLE_NAME = ? AND m.THREAD_ID <> CONNECTION_ID() \
     AND t.trx_started < NOW() - INTERVAL ? SECOND";

/// Without the plugin: every InnoDB transaction open longer than the lock timeout (it may hold
/// the table's metadata lock), with the start of its statement text, one line each; parameter
/// seconds. The text holds the application's literals, which need not be UTF-8: read bytes.
pub const BLOCKERS_BY_TRANSACTION_AGE: &str = "SELECT CONCAT('session ', t.trx_mysql_thread_id, ' (', COALESCE(p.USER, '?'), \
     ') in a transaction for ', TIMESTAMPDIFF(SECOND, t.trx_started, NOW()), ' s: ', COALESCE(LEFT(p.INFO, 80), 'idle')) \
     FROM information_schema.INNODB_TRX t LEFT JOIN information_schema.PROCESSLIST p ON p.ID = t.trx_mysql_thread_id \
     WHERE t.trx_mysql_thread_id <> CONNECTION_ID() AND t.trx_started < NOW() - INTERVAL ? SECOND";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heartbeat_statements() {
        let t = TableRef::new("d", "_t_ssw_hb");
        assert_eq!(
            create_heartbeat(&t),
            "CREATE TABLE IF NOT EXISTS `d`.`_t_ssw_hb` (id TINYINT UNSIGNED NOT NULL PRIMARY KEY, seq BIGINT UNSIGNED NOT NULL) \
             ENGINE=InnoDB"
        );
        assert_eq!(
            write_heartbeat(&t),
            "INSERT INTO `d`.`_t_ssw_hb` (id, seq) VALUES (1, ?) ON DUPLICATE KEY UPDATE seq = VALUES(seq)"
        );
        assert_eq!(read_heartbeat(&t), "SELECT seq FROM `d`.`_t_ssw_hb` WHERE id = 1");
        assert_eq!(GLOBAL_STATUS, "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = UPPER(?)");
    }

    #[test]
    fn blocker_queries() {
        assert_eq!(
            BLOCKERS_HOLDING_THE_TABLE,
            "SELECT CONCAT('session ', t.trx_mysql_thread_id, ' (', COALESCE(p.USER, '?'), ') in a transaction for ', \
             TIMESTAMPDIFF(SECOND, t.trx_started, NOW()), ' s holding ', m.LOCK_MODE, ' on the table') FROM \
             information_schema.METADATA_LOCK_INFO m JOIN information_schema.INNODB_TRX t ON t.trx_mysql_thread_id = \
             m.THREAD_ID LEFT JOIN information_schema.PROCESSLIST p ON p.ID = m.THREAD_ID WHERE m.TABLE_SCHEMA = ? AND \
             m.TABLE_NAME = ? AND m.THREAD_ID <> CONNECTION_ID() AND t.trx_started < NOW() - INTERVAL ? SECOND"
        );
        assert_eq!(
            BLOCKERS_BY_TRANSACTION_AGE,
            "SELECT CONCAT('session ', t.trx_mysql_thread_id, ' (', COALESCE(p.USER, '?'), ') in a transaction for ', \
             TIMESTAMPDIFF(SECOND, t.trx_started, NOW()), ' s: ', COALESCE(LEFT(p.INFO, 80), 'idle')) FROM \
             information_schema.INNODB_TRX t LEFT JOIN information_schema.PROCESSLIST p ON p.ID = t.trx_mysql_thread_id WHERE \
             t.trx_mysql_thread_id <> CONNECTION_ID() AND t.trx_started < NOW() - INTERVAL ? SECOND"
        );
    }
}
