//! Run configuration. Plain structs with `Default`; every timing constant lives here so tests
//! can shrink it instead of sleeping.

use std::path::PathBuf;
use std::time::Duration;

/// Everything that shapes one migration.
#[derive(Debug, Clone, Default)]
pub struct MigrationConfig {
    /// False: dry run (preflight and plan only, nothing created). True: migrate.
    pub execute: bool,
    /// Allow ALTERs that rename columns; data is carried from the old to the new name.
    pub approve_renamed_columns: bool,
    /// When the server can apply the ALTER as a metadata-only change (see
    /// [`crate::Dialect::metadata_only`]), do that in place under the cut-over's short lock
    /// timeout and retries instead of copying. Otherwise copy as usual.
    pub attempt_instant_ddl: bool,
    /// Backfill (copy) settings.
    pub copy: CopyConfig,
    /// Checksum settings.
    pub checksum: ChecksumConfig,
    /// Cut-over settings.
    pub cut_over: CutOverConfig,
    /// Settings for the DDL shadowswap runs on the live table (creating/dropping triggers).
    pub ddl: DdlConfig,
    /// Throttle signals and limits.
    pub throttle: crate::throttle::ThrottleConfig,
}

/// Backfill settings.
#[derive(Debug, Clone)]
pub struct CopyConfig {
    /// Target wall time per chunk; the chunk size (rows) adapts to it. Default 500 ms.
    pub chunk_time: Duration,
    /// A fixed chunk size in rows, instead of adapting to `chunk_time`.
    pub fixed_chunk_rows: Option<u64>,
    /// Rows in the first chunk when adapting. Default 1000.
    pub initial_chunk_rows: u64,
    /// Upper bound for adaptive sizing, in rows. Default 100 000.
    pub max_chunk_rows: u64,
    /// Largest factor by which one chunk may be bigger than the one before (growth is slow;
    /// shrinking after an overrun is immediate). Default 1.5.
    pub max_growth: f64,
    /// How long one chunk's statements wait for a row lock before giving up and being retried.
    /// Short, so a chunk never makes the application wait long. Default 2 s (InnoDB counts whole seconds).
    pub lock_wait_timeout: Duration,
    /// Attempts per chunk on lock timeouts and deadlocks before the run fails. Default 20.
    pub retries: u32,
    /// Interval between progress publications during the copy. Default 1 s.
    pub progress_interval: Duration,
}

impl Default for CopyConfig {
    fn default() -> Self {
        Self {
            chunk_time: Duration::from_millis(500),
            fixed_chunk_rows: None,
            initial_chunk_rows: 1000,
            max_chunk_rows: 100_000,
            max_growth: 1.5,
            lock_wait_timeout: Duration::from_secs(2),
            retries: 20,
            progress_interval: Duration::from_secs(1),
        }
    }
}

/// Checksum settings.
#[derive(Debug, Clone)]
pub struct ChecksumConfig {
    /// Compare original and shadow before the cut-over. Default true.
    pub enabled: bool,
    /// Target wall time per checksum chunk. Default 500 ms.
    pub chunk_time: Duration,
}

impl Default for ChecksumConfig {
    fn default() -> Self {
        Self { enabled: true, chunk_time: Duration::from_millis(500) }
    }
}

/// Cut-over settings.
#[derive(Debug, Clone)]
pub struct CutOverConfig {
    /// How long one cut-over attempt waits for its locks. Default 2 s.
    pub lock_timeout: Duration,
    /// Attempts after the first one. Default 10.
    pub retries: u32,
    /// First backoff between attempts; doubles each time, with jitter. Default 1 s.
    pub backoff_min: Duration,
    /// Largest backoff between attempts. Default 30 s.
    pub backoff_max: Duration,
    /// Keep `_<t>_old` after the swap instead of dropping it.
    pub keep_old_table: bool,
    /// While this file exists, stay in sync and do not cut over.
    pub postpone_flag_file: Option<PathBuf>,
    /// How often the postpone flag file is checked. Default 1 s.
    pub poll_interval: Duration,
    /// Cut over only inside this daily window (stay in sync until it opens).
    pub window: Option<crate::throttle::window::CutOverWindow>,
    /// Before each attempt, wait at most this long for transactions that would make the lock
    /// request queue to finish, instead of queueing behind them. Default 30 s.
    pub blocker_wait: Duration,
}

impl Default for CutOverConfig {
    fn default() -> Self {
        Self {
            lock_timeout: Duration::from_secs(2),
            retries: 10,
            backoff_min: Duration::from_secs(1),
            backoff_max: Duration::from_secs(30),
            keep_old_table: false,
            postpone_flag_file: None,
            poll_interval: Duration::from_secs(1),
            window: None,
            blocker_wait: Duration::from_secs(30),
        }
    }
}

/// Settings for DDL on the live table outside the cut-over (installing and removing capture
/// triggers, dropping tables). Each statement needs a metadata lock on the table; it waits at
/// most `lock_timeout`, so the application's queries never queue behind it for longer.
#[derive(Debug, Clone)]
pub struct DdlConfig {
    /// Lock wait per attempt. Default 2 s.
    pub lock_timeout: Duration,
    /// Attempts after the first one. Default 10.
    pub retries: u32,
    /// First backoff between attempts. Default 500 ms.
    pub backoff_min: Duration,
    /// Largest backoff. Default 10 s.
    pub backoff_max: Duration,
}

impl Default for DdlConfig {
    fn default() -> Self {
        Self {
            lock_timeout: Duration::from_secs(2),
            retries: 10,
            backoff_min: Duration::from_millis(500),
            backoff_max: Duration::from_secs(10),
        }
    }
}
