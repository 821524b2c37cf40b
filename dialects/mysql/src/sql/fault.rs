//! Fault rehearsals (`--inject-fault`): the statements `fault.rs` runs. None changes data.
//!
//! - The session list: shadowswap's own working sessions are the pool's, whose connection ids
//!   the dialect records ([`crate::MySql`]); [`SESSIONS`] reads which of them still exist, and
//!   [`kill_connection`] ends one (MariaDB KB, "KILL": `KILL CONNECTION id` ends the session).
//! - The blocker: [`blocker`] — in an open transaction, a read of the table holds its metadata
//!   lock until the transaction ends (MariaDB KB, "Metadata Locking"), so `RENAME TABLE` waits.
//! - A lock-storm step: [`storm_step`] — a short transaction that locks a few rows as a write
//!   would (`FOR UPDATE SKIP LOCKED`: each session its own rows), holds them
//!   [`STORM_HOLD_SECONDS`], and rolls back.
//! - The replica: [`PAUSE_REPLICA`] / [`RESUME_REPLICA`] stop and start the SQL (apply) thread
//!   only; the IO thread keeps receiving (MariaDB KB, "STOP REPLICA").

use shadowswap_engine::model::TableRef;

use super::Qualified;

/// Id, command and seconds in that state of every session but this one, from the server's
/// session list (`information_schema.PROCESSLIST`).
pub const SESSIONS: &str = "SELECT ID, COMMAND, TIME FROM information_schema.PROCESSLIST WHERE ID <> CONNECTION_ID()";

/// End session `id` (its connection, not only its statement). The id is a number the server
/// gave; it is formatted, as `KILL` takes no bind parameter in the text protocol.
pub fn kill_connection(id: u32) -> String {
    format!("KILL CONNECTION {id}")
}

/// Open the transaction the blocker holds.
pub const BEGIN: &str = "START TRANSACTION";

/// End a fault's transaction without changing anything.
pub const ROLLBACK: &str = "ROLLBACK";

/// The blocker's read: inside [`BEGIN`], it holds the table's metadata lock until the
/// transaction ends.
pub fn blocker(table: &TableRef) -> String {
    format!("SELECT 1 FROM {} LIMIT 1", Qualified(table))
}

/// How long each lock-storm transaction holds its row locks, in seconds.
pub const STORM_HOLD_SECONDS: f64 = 0.05;

/// Rows each lock-storm transaction locks.
pub const STORM_ROWS: u32 = 10;

/// A lock-storm session's setup: wait at most 1 s for each lock (a storm session must not
/// queue for long either; a timed-out step is counted and the storm goes on).
pub const STORM_SETUP: &str = "SET SESSION lock_wait_timeout = 1, SESSION innodb_lock_wait_timeout = 1";

/// One lock-storm transaction: lock [`STORM_ROWS`] rows as a write would, hold them
/// [`STORM_HOLD_SECONDS`], roll back.
pub fn storm_step(table: &TableRef) -> String {
    format!(
        "START TRANSACTION; SELECT 1 FROM {} LIMIT {STORM_ROWS} FOR UPDATE SKIP LOCKED; DO SLEEP({STORM_HOLD_SECONDS}); ROLLBACK",
        Qualified(table)
    )
}

/// Stop the replica's apply (SQL) thread.
pub const PAUSE_REPLICA: &str = "STOP SLAVE SQL_THREAD";

/// Start the replica's apply (SQL) thread again (a no-op when it runs).
pub const RESUME_REPLICA: &str = "START SLAVE SQL_THREAD";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements() {
        let t = TableRef::new("d`b", "t`1");
        assert_eq!(kill_connection(42), "KILL CONNECTION 42");
        assert_eq!(blocker(&t), "SELECT 1 FROM `d``b`.`t``1` LIMIT 1");
        assert_eq!(
            storm_step(&t),
            "START TRANSACTION; SELECT 1 FROM `d``b`.`t``1` LIMIT 10 FOR UPDATE SKIP LOCKED; DO SLEEP(0.05); ROLLBACK"
        );
        assert_eq!(STORM_SETUP, "SET SESSION lock_wait_timeout = 1, SESSION innodb_lock_wait_timeout = 1");
        assert_eq!(SESSIONS, "SELECT ID, COMMAND, TIME FROM information_schema.PROCESSLIST WHERE ID <> CONNECTION_ID()");
        assert_eq!((PAUSE_REPLICA, RESUME_REPLICA), ("STOP SLAVE SQL_THREAD", "START SLAVE SQL_THREAD"));
    }
}
