//! The engine's error type. Every message is one line and says what to do next.

use crate::model::TableRef;

/// Result alias used throughout the engine and the dialects.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// How a database error should be handled. Each dialect classifies its driver's errors once;
/// only the engine decides to retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// A lock could not be had in time (MySQL error 1205, metadata-lock wait timeout; PostgreSQL
    /// `lock_not_available`). Retry with backoff.
    LockTimeout,
    /// The server chose this transaction as a deadlock victim (MySQL 1213, PostgreSQL `40P01`).
    /// Retry with backoff.
    Deadlock,
    /// The connection broke mid-statement. Retrying may work once the server is back.
    Connection,
    /// Anything else: do not retry.
    Fatal,
}

/// Everything that can stop a migration. `Display` is the one-line message shown to the operator.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The server could not be reached at all.
    #[error("cannot connect to {target}: {reason}; check that the server is running and the DSN's host and port are right")]
    Unreachable {
        /// The DSN with the password removed.
        target: String,
        /// What the driver said.
        reason: String,
    },
    /// The server refused the credentials.
    #[error("access denied for {target}: {reason}; check the user and the password (DSN or MYSQL_PWD/PGPASSWORD)")]
    AccessDenied {
        /// The DSN with the password removed.
        target: String,
        /// What the server said.
        reason: String,
    },
    /// The table named by `--table` does not exist.
    #[error("table {0} does not exist; check --table and the database named in the DSN")]
    NoSuchTable(TableRef),
    /// A preflight check refused the migration. The message names the problem and the remedy.
    #[error("{0}")]
    Refused(String),
    /// Another shadowswap run holds the advisory lock for this table.
    #[error("another shadowswap run is working on {0} (its advisory lock is held); wait for it to finish, or stop it first")]
    AnotherRun(TableRef),
    /// While this run worked, its advisory lock's session was lost and another run took the lock:
    /// this run stopped without removing anything (the other run owns the shadow now).
    #[error("another shadowswap run took the advisory lock of {0} after this run's lock session was lost; this run stopped without removing anything: let the other run finish (or stop it and run `shadowswap cleanup`)")]
    LockLost(TableRef),
    /// The server rejected the ALTER when it was applied to the shadow table.
    #[error("the server rejected the ALTER: {0}; fix the ALTER spec (it is what follows ALTER TABLE t)")]
    AlterRejected(String),
    /// A unique key in the altered table would reject rows the original table holds.
    #[error("the ALTER adds unique key {key} but {table} has duplicate values for it: {value}; remove the duplicates or drop the unique key from the ALTER")]
    DuplicateKey {
        /// The unique key's name as the ALTER creates it.
        key: String,
        /// The table holding the duplicates.
        table: TableRef,
        /// One duplicated value, as the server shows it.
        value: String,
    },
    /// Original and shadow differ after the backfill: the cut-over is not attempted.
    #[error("checksum mismatch between {table} and its shadow in chunk {chunk}: {detail}; the original table was left serving, please report this")]
    ChecksumMismatch {
        /// The original table.
        table: TableRef,
        /// The key range of the chunk, as text.
        chunk: String,
        /// Row counts and hashes on each side.
        detail: String,
    },
    /// Every cut-over attempt timed out waiting for its locks.
    #[error("cut-over failed after {attempts} attempts (each waited at most {lock_timeout_ms} ms for its locks): {last}; a long transaction is probably holding the table, find it (SHOW PROCESSLIST on MariaDB/MySQL, pg_stat_activity on PostgreSQL) and retry, or raise --cut-over-retries")]
    CutOverExhausted {
        /// How many attempts were made.
        attempts: u32,
        /// The lock timeout of each attempt, in milliseconds.
        lock_timeout_ms: u64,
        /// The last attempt's error.
        last: String,
    },
    /// The run failed, and removing what it had created failed too: something is left.
    #[error("{cause}; and removing what the run created failed: {leftover}; run `shadowswap cleanup` for this table")]
    CleanupIncomplete {
        /// Why the run failed.
        cause: Box<Error>,
        /// What is left and why it could not be removed.
        leftover: String,
    },
    /// The server could not be reached again within `--reconnect-timeout`; the run stopped
    /// without removing anything, so running the same command again resumes it.
    #[error("lost the connection to {target} and could not reconnect within {waited_s} s: {last}; nothing was removed: run the same command again to resume once the server is back (or `shadowswap cleanup` for this table to give the run up)")]
    ConnectionLost {
        /// The DSN with the password removed.
        target: String,
        /// How long reconnecting was tried (seconds).
        waited_s: u64,
        /// The last error.
        last: String,
    },
    /// The run was cancelled (signal or caller).
    #[error("cancelled: {0}")]
    Cancelled(String),
    /// A database statement failed.
    #[error("{context}: {message}")]
    Database {
        /// What shadowswap was doing.
        context: String,
        /// What the server or driver said.
        message: String,
        /// How the engine should treat it.
        class: ErrorClass,
    },
}

impl Error {
    /// How the engine should treat this error; everything not from the database is fatal.
    pub fn class(&self) -> ErrorClass {
        match self {
            Error::Database { class, .. } => *class,
            _ => ErrorClass::Fatal,
        }
    }

    /// True when retrying the statement with backoff may succeed: lock timeouts and deadlocks.
    /// A broken connection is not retried statement by statement: the runner reconnects, takes
    /// its advisory lock again, re-verifies and continues from the checkpoint
    /// ([`Error::is_connection`]).
    pub fn is_retryable(&self) -> bool {
        matches!(self.class(), ErrorClass::LockTimeout | ErrorClass::Deadlock)
    }

    /// True when the connection to the server broke (or could not be made again): the run
    /// reconnects for up to `--reconnect-timeout`, then stops, resumable.
    pub fn is_connection(&self) -> bool {
        self.class() == ErrorClass::Connection || matches!(self, Error::Unreachable { .. })
    }

    /// Shorthand for a preflight refusal.
    pub fn refused(msg: impl Into<String>) -> Self {
        Error::Refused(msg.into())
    }
}
