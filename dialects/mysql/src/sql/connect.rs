//! Builders for connecting: the session setup every session runs, the connection check, and the
//! advisory lock that keeps a second run off the table (`GET_LOCK`, MariaDB KB "GET_LOCK").

/// Statements run on every session shadowswap opens (and after each pool reset): UTC time zone,
/// so TIMESTAMP values round-trip exactly; a strict `sql_mode` with `NO_AUTO_VALUE_ON_ZERO`, so
/// nothing is silently truncated and an AUTO_INCREMENT value of 0 is copied as 0 (a trigger runs
/// with the `sql_mode` it was created with, MariaDB KB "CREATE TRIGGER", so the capture triggers
/// are strict too); REPEATABLE READ, for the next-key locks the chunk copy relies on; utf8mb4.
pub const SESSION_SETUP: [&str; 4] = [
    "SET SESSION time_zone = '+00:00'",
    "SET SESSION sql_mode = 'STRICT_ALL_TABLES,NO_AUTO_VALUE_ON_ZERO,NO_ENGINE_SUBSTITUTION'",
    "SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ",
    "SET NAMES utf8mb4",
];

/// Checks a new connection; result `1`.
pub const PING: &str = "SELECT 1";

/// Takes the run lock without waiting; parameter the lock's name ([`shadowswap_engine::names::Names::lock`]).
/// Result `1` when taken, `0` when another session holds it, NULL on error.
pub const GET_LOCK: &str = "SELECT GET_LOCK(?, 0)";

/// Releases the run lock; parameter the lock's name.
pub const RELEASE_LOCK: &str = "SELECT RELEASE_LOCK(?)";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_setup_and_run_lock() {
        assert_eq!(SESSION_SETUP[0], "SET SESSION time_zone = '+00:00'");
        assert!(SESSION_SETUP[1].contains("STRICT_ALL_TABLES") && SESSION_SETUP[1].contains("NO_AUTO_VALUE_ON_ZERO"));
        assert_eq!(PING, "SELECT 1");
        assert_eq!(GET_LOCK, "SELECT GET_LOCK(?, 0)");
        assert_eq!(RELEASE_LOCK, "SELECT RELEASE_LOCK(?)");
    }
}
