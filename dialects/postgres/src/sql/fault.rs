//! Fault rehearsals (`--inject-fault`): the statements `fault.rs` runs. None changes data.
//!
//! - The session list: shadowswap's own working sessions are the pool's, whose backend pids
//!   [`BACKEND_PID`] records as each is created; [`TERMINATE_OWN_SESSIONS`] ends those still
//!   alive, found in `pg_stat_activity` (PostgreSQL docs, "Server Signaling Functions":
//!   `pg_terminate_backend`).
//! - The blocker: [`blocker`] — `LOCK TABLE … IN ACCESS SHARE MODE` in an open transaction,
//!   which the swap's `ACCESS EXCLUSIVE` lock conflicts with (docs, "Explicit Locking").
//! - A lock-storm step: [`storm_step`] — a short transaction that locks a few rows as a write
//!   would (`FOR UPDATE SKIP LOCKED`: each session its own rows), holds them
//!   [`STORM_HOLD_SECONDS`], and rolls back.
//! - The replica: [`PAUSE_REPLAY`] / [`RESUME_REPLAY`] (docs, "Recovery Control Functions";
//!   superuser, or `EXECUTE` granted on them).

use shadowswap_engine::model::TableRef;

use super::Qualified;

/// This session's backend pid.
pub const BACKEND_PID: &str = "SELECT pg_catalog.pg_backend_pid()";

/// Terminate the sessions whose pids are in `$1` (`int4[]`) and still exist, but this one; one
/// row per session: pid, state, seconds in that state, and whether the signal was sent.
pub const TERMINATE_OWN_SESSIONS: &str = "SELECT a.pid, coalesce(a.state, ''), \
     coalesce(extract(epoch FROM now() - a.state_change)::int, 0), pg_catalog.pg_terminate_backend(a.pid) \
     FROM pg_catalog.pg_stat_activity a WHERE a.pid = ANY($1::int4[]) AND a.pid <> pg_catalog.pg_backend_pid()";

/// Open the blocker's transaction and take its lock.
pub fn blocker(table: &TableRef) -> String {
    format!("BEGIN; LOCK TABLE {} IN ACCESS SHARE MODE", Qualified(table))
}

/// End a fault's transaction without changing anything.
pub const ROLLBACK: &str = "ROLLBACK";

/// How long each lock-storm transaction holds its row locks, in seconds.
pub const STORM_HOLD_SECONDS: f64 = 0.05;

/// Rows each lock-storm transaction locks.
pub const STORM_ROWS: u32 = 10;

/// A lock-storm session's setup: wait at most 1 s for each lock (a timed-out step is counted
/// and the storm goes on).
pub const STORM_SETUP: &str = "SET lock_timeout = '1s'";

/// One lock-storm transaction: lock [`STORM_ROWS`] rows as a write would, hold them
/// [`STORM_HOLD_SECONDS`], roll back.
pub fn storm_step(table: &TableRef) -> String {
    format!(
        "BEGIN; SELECT 1 FROM {} LIMIT {STORM_ROWS} FOR UPDATE SKIP LOCKED; SELECT pg_catalog.pg_sleep({STORM_HOLD_SECONDS}); ROLLBACK",
        Qualified(table)
    )
}

/// Pause WAL replay on a standby.
pub const PAUSE_REPLAY: &str = "SELECT pg_catalog.pg_wal_replay_pause()";

/// Resume WAL replay on a standby (a no-op when it is not paused).
pub const RESUME_REPLAY: &str = "SELECT pg_catalog.pg_wal_replay_resume()";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements() {
        let t = TableRef::new("s\"x", "t\"1");
        assert_eq!(blocker(&t), "BEGIN; LOCK TABLE \"s\"\"x\".\"t\"\"1\" IN ACCESS SHARE MODE");
        assert_eq!(
            storm_step(&t),
            "BEGIN; SELECT 1 FROM \"s\"\"x\".\"t\"\"1\" LIMIT 10 FOR UPDATE SKIP LOCKED; SELECT pg_catalog.pg_sleep(0.05); ROLLBACK"
        );
        assert!(TERMINATE_OWN_SESSIONS.contains("WHERE a.pid = ANY($1::int4[]) AND a.pid <> pg_catalog.pg_backend_pid()"));
        assert_eq!(PAUSE_REPLAY, "SELECT pg_catalog.pg_wal_replay_pause()");
        assert_eq!(RESUME_REPLAY, "SELECT pg_catalog.pg_wal_replay_resume()");
    }
}
