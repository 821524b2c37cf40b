//! Session statements: what the first session reads, the lock timeout every locking transaction
//! starts with, and the run lock (a session-level advisory lock).

use std::time::Duration;

/// What the first session of [`crate::Postgres::connect`] reads, before the search path is
/// pinned: `current_schema()` (NULL when the search path names no existing schema),
/// `current_schemas(false)`, `session_replication_role`, `is_superuser` (`on`/`off`) and
/// `server_version_num`. Everything schema-qualified: the database owner's search path may put
/// a schema of theirs before `pg_catalog`.
pub const SESSION_PROBE: &str = "SELECT pg_catalog.current_schema(), pg_catalog.current_schemas(false), \
        pg_catalog.current_setting('session_replication_role'), pg_catalog.current_setting('is_superuser'), \
        pg_catalog.current_setting('server_version_num')";

/// A duration in whole milliseconds, at least 1 (`lock_timeout = 0` would mean "wait forever").
pub fn millis(d: Duration) -> u128 {
    d.as_millis().max(1)
}

/// `SET LOCAL lock_timeout = '<n>ms'`: the first statement of every transaction that takes a
/// lock on the table or the shadow, so no lock request queues longer than that (and no
/// application query queues behind it). Units: milliseconds, at least 1.
pub fn set_lock_timeout(d: Duration) -> String {
    format!("SET LOCAL lock_timeout = '{}ms'", millis(d))
}

/// Takes the run lock: `pg_try_advisory_lock` on a 64-bit hash of `$1` (the run's lock name,
/// `Names::lock`); one boolean, false when another session holds it.
pub const TRY_RUN_LOCK: &str = "SELECT pg_try_advisory_lock(hashtextextended($1, 0))";

/// Releases the run lock taken with [`TRY_RUN_LOCK`] for the same `$1`.
pub const RELEASE_RUN_LOCK: &str = "SELECT pg_advisory_unlock(hashtextextended($1, 0))";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_timeouts_are_whole_milliseconds_never_zero() {
        assert_eq!(set_lock_timeout(Duration::from_millis(1500)), "SET LOCAL lock_timeout = '1500ms'");
        assert_eq!(set_lock_timeout(Duration::from_secs(2)), "SET LOCAL lock_timeout = '2000ms'");
        assert_eq!(set_lock_timeout(Duration::ZERO), "SET LOCAL lock_timeout = '1ms'");
        assert_eq!(millis(Duration::from_micros(10)), 1);
    }

    #[test]
    fn session_and_run_lock_queries() {
        assert!(SESSION_PROBE.starts_with("SELECT pg_catalog.current_schema(), pg_catalog.current_schemas(false)"));
        assert!(SESSION_PROBE.ends_with("pg_catalog.current_setting('server_version_num')"));
        assert_eq!(TRY_RUN_LOCK, "SELECT pg_try_advisory_lock(hashtextextended($1, 0))");
        assert_eq!(RELEASE_RUN_LOCK, "SELECT pg_advisory_unlock(hashtextextended($1, 0))");
    }
}
