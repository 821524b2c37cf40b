//! The [`Dialect`] trait: everything the engine asks of a database server.
//!
//! A dialect turns each step into SQL, runs it, and classifies its driver's errors into
//! [`crate::error::Error`] (lock timeouts and deadlocks as retryable; the engine decides whether to
//! retry). Every method that creates something has an idempotent undo (`remove_capture`,
//! `drop_table`), so a failed run and `shadowswap cleanup` can use the same calls.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;

use crate::checkpoint::{Checkpoint, ChunkMark};
use crate::error::{Error, Result};
use crate::model::{TableRef, TableShape};
use crate::names::Names;
use crate::preflight::alter::AlterAnalysis;
use crate::preflight::plan::{Plan, PlanSql, Rules};

/// What one chunk's copy did ([`Dialect::copy_chunk`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ChunkCopied {
    /// Rows copied (rows).
    pub rows: u64,
    /// Sessions waiting for a row lock the moment before the chunk committed (MariaDB:
    /// `Innodb_row_lock_current_waits`; PostgreSQL: ungranted locks in `pg_locks`): 0 when no
    /// one waited. Anyone waiting then waits for a lock the chunk holds or for another writer;
    /// either way the workload is contending for rows, and the backfill shrinks its chunks
    /// (see `backfill::chunker::ChunkSizer::contended`). A dialect that cannot tell says 0.
    pub waiters: u64,
    /// The capture had already written rows of this chunk's range into the shadow (the
    /// application wrote rows the copy had not reached yet: the table is being written). The
    /// copy counts it as a waiter (a live table is copied in short chunks with pauses, like a
    /// contended one) and builds the deferred indexes early (`backfill::EarlyIndexes`). A
    /// dialect that cannot tell says false.
    pub written_ahead: bool,
}

/// Row count and order-independent hash of one side of a checksum chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ChunkChecksum {
    /// Rows in the chunk.
    pub rows: u64,
    /// XOR of a 64-bit hash of each row's checksummed columns.
    pub hash: u64,
}

/// A held advisory lock that keeps a second shadowswap run off the same table.
#[async_trait]
pub trait RunLock: Send {
    /// Release the lock and close its session.
    async fn release(self: Box<Self>) -> Result<()>;

    /// Whether the lock's session is still alive and holds the lock (a dropped connection, e.g.
    /// a server restart, loses it). Errors only for what is not a lost connection.
    async fn is_held(&mut self) -> Result<bool>;
}

/// The throttle's and cut-over controller's read-only signals from one server (a primary or a
/// replica): the replica-lag heartbeat, load figures, the operator's throttle query, and the
/// sessions a cut-over would queue behind. Each method's default refuses (or, for blockers, says
/// "cannot tell"), so a dialect implements only what its server supports.
#[async_trait]
pub trait Signals: Send + Sync {
    /// The server this dialect talks to, for messages: the DSN without its password.
    fn target(&self) -> String;

    /// Create the heartbeat table `names.heartbeat` on the primary (idempotent).
    async fn heartbeat_create(&self, names: &Names) -> Result<()> {
        Err(Error::refused(format!("replica lag measurement is not supported for {}", names.table)))
    }

    /// Write heartbeat sequence number `seq` on the primary.
    async fn heartbeat_write(&self, names: &Names, seq: u64) -> Result<()> {
        let _ = seq;
        Err(Error::refused(format!("replica lag measurement is not supported for {}", names.table)))
    }

    /// Read the heartbeat sequence number this server (a replica) has applied; `None` before the
    /// first one arrives.
    async fn heartbeat_read(&self, names: &Names) -> Result<Option<u64>> {
        Err(Error::refused(format!("replica lag measurement is not supported for {}", names.table)))
    }

    /// A load figure: a MySQL global status variable (e.g. `Threads_running`), or PostgreSQL's
    /// `active_backends`. Errors name what is supported.
    async fn status_value(&self, name: &str) -> Result<f64> {
        Err(Error::refused(format!("load variable {name} is not supported by this server")))
    }

    /// The first column of the first row of `sql` (the operator's throttle query) as a number;
    /// no row counts as 0.
    async fn query_value(&self, sql: &str) -> Result<f64> {
        let _ = sql;
        Err(Error::refused("--throttle-query is not supported by this server"))
    }

    /// Sessions whose open transactions would make the cut-over's lock request queue (and every
    /// application query behind it): one line each, naming the session and its age. Empty when
    /// the dialect cannot tell.
    async fn cut_over_blockers(&self, names: &Names, older_than: Duration) -> Result<Vec<String>> {
        let _ = (names, older_than);
        Ok(Vec::new())
    }
}

/// A database server, as the engine needs it for the phases of a run, in phase order:
/// connect (target, run lock), inspect, preflight, shadow, capture, copy (backfill and
/// checksum), cut-over, cleanup. See the module docs.
#[async_trait]
pub trait Dialect: Signals + crate::fault::Rehearsal + crate::staged::Staged + 'static {
    /// A chunk boundary: the values of the chunk key's columns for one row. Opaque to the engine.
    type Key: Clone + PartialEq + Send + Sync + fmt::Debug + fmt::Display + 'static;

    /// The `sqlparser` dialect whose tokenizer reads ALTER specs for this server.
    fn sql_dialect(&self) -> &dyn sqlparser::dialect::Dialect;

    /// Name comparison and chunk-key type rules.
    fn rules(&self) -> Rules;

    /// Generated names for `table` within this server's identifier limits.
    fn names(&self, table: &TableRef) -> Names;

    /// Take the advisory lock for `names.table`. Errors: [`crate::Error::AnotherRun`] when held.
    async fn acquire_run_lock(&self, names: &Names) -> Result<Box<dyn RunLock>>;

    /// Columns, indexes and row estimate of `table`. Errors: [`crate::Error::NoSuchTable`].
    async fn inspect(&self, table: &TableRef) -> Result<TableShape>;

    /// Whether `table` exists.
    async fn table_exists(&self, table: &TableRef) -> Result<bool>;

    /// Server-specific refusals: triggers of the user's own, foreign keys, leftovers of an
    /// earlier run, table kinds the dialect cannot migrate. Creates nothing.
    /// When `resuming`, the shadow, the capture triggers and the checkpoint of the run being
    /// resumed are not leftovers ([`Dialect::verify_resumable`] checks them instead).
    async fn preflight(&self, names: &Names, original: &TableShape, resuming: bool) -> Result<()>;

    /// Apply `alter.spec` to a private, temporary copy of the table's definition and return the
    /// resulting shape; leaves nothing behind. Errors: [`crate::Error::AlterRejected`].
    async fn trial_alter(&self, names: &Names, alter: &AlterAnalysis) -> Result<TableShape>;

    /// Whether the server applies `alter.spec` to the table as a metadata-only change: no rewrite and
    /// no scan, only a brief exclusive lock. `None` when the dialect cannot tell beforehand (the
    /// default): then [`Dialect::alter_in_place`] tells by trying. Creates nothing.
    async fn metadata_only(&self, _names: &Names, _alter: &AlterAnalysis) -> Result<Option<bool>> {
        Ok(None)
    }

    /// Apply `alter.spec` to the table itself as a metadata-only change, waiting at most
    /// `lock_timeout` for its lock: the `--attempt-instant-ddl` path. `Ok(Some(blocked))`:
    /// applied, with application writes blocked for `blocked` (the statement that held or queued
    /// for the lock, as [`Dialect::cut_over`] counts it). `Ok(None)`: the server refused to apply
    /// it without a rebuild and **nothing changed** — a dialect whose `metadata_only` says `None`
    /// must guarantee that (MariaDB: `ALGORITHM=INSTANT`). Errors like `cut_over`'s. Default:
    /// `Ok(None)`.
    async fn alter_in_place(&self, _names: &Names, _alter: &AlterAnalysis, _lock_timeout: Duration) -> Result<Option<Duration>> {
        Ok(None)
    }

    /// The SQL this plan will run, for the dry run.
    fn render_sql(&self, plan: &Plan) -> PlanSql;

    /// One value of `columns` that occurs more than once in `table` (rows with a NULL in any
    /// of them are ignored, as unique keys ignore them), rendered for a message.
    async fn find_duplicate(&self, table: &TableRef, columns: &[String]) -> Result<Option<String>>;

    /// Create the shadow table with the ALTER applied.
    async fn create_shadow(&self, plan: &Plan, lock_timeout: Duration) -> Result<()>;

    /// Create the capture triggers (each statement waits at most `lock_timeout` for its lock).
    async fn install_capture(&self, plan: &Plan, lock_timeout: Duration) -> Result<()>;

    /// Drop the capture triggers if they exist, wherever they are (on the table or, after the
    /// swap, on the old table). Idempotent.
    async fn remove_capture(&self, names: &Names, lock_timeout: Duration) -> Result<()>;

    /// Names of the capture triggers that exist now.
    async fn capture_present(&self, names: &Names) -> Result<Vec<String>>;

    /// `DROP TABLE IF EXISTS`. Idempotent.
    async fn drop_table(&self, table: &TableRef, lock_timeout: Duration) -> Result<()>;

    // ---- checkpoint and resume (see crate::checkpoint) ----

    /// The dialect's name as checkpoints record it (`mariadb`, `postgresql`).
    fn dialect_name(&self) -> &'static str;

    /// Create the checkpoint table `names.checkpoint` when missing and make its one row `ckpt`
    /// (every field; dialect-owned columns, such as a recorded capture identity, keep their
    /// values). Autocommitted.
    async fn checkpoint_write(&self, names: &Names, ckpt: &Checkpoint) -> Result<()>;

    /// The checkpoint row of `names.table`; `None` when there is no checkpoint table or row.
    /// Errors: [`crate::Error::Refused`] when the table exists but cannot be read as a checkpoint.
    async fn checkpoint_read(&self, names: &Names) -> Result<Option<Checkpoint>>;

    /// A chunk key as text that [`Dialect::key_from_text`] reads back exactly (every column's
    /// value and type), for the checkpoint's watermarks.
    fn key_to_text(&self, key: &Self::Key) -> String;

    /// The key [`Dialect::key_to_text`] wrote. Errors: [`crate::Error::Refused`] for text it did
    /// not write, or a key whose column count differs from `plan.key`.
    fn key_from_text(&self, plan: &Plan, text: &str) -> Result<Self::Key>;

    /// Before a resume (or after a reconnect): check that what the earlier run created is still
    /// there and untouched — the shadow with the definition this plan gives it, the capture
    /// triggers this plan installs (names and bodies), and the table itself unchanged since the
    /// capture started (MariaDB: the identity recorded in the checkpoint) — and restore any state
    /// the dialect keeps in memory for the cut-over's checks. Errors: [`crate::Error::Refused`]
    /// naming what is missing or changed and saying to run `shadowswap cleanup`.
    async fn verify_resumable(&self, plan: &Plan) -> Result<()>;

    /// Lowest and highest chunk-key value in the original table now (`None` when empty).
    /// The highest is the backfill's high watermark.
    async fn key_range(&self, plan: &Plan) -> Result<Option<(Self::Key, Self::Key)>>;

    /// The key of the `rows`-th row after `after` (from the start when `None`), or `high` when
    /// fewer rows than that remain at or below `high`.
    async fn chunk_end(&self, plan: &Plan, after: Option<&Self::Key>, high: &Self::Key, rows: u64) -> Result<Self::Key>;

    /// Copy the rows with key in `(after, upto]` into the shadow, server-side, in one short
    /// transaction that is correct against concurrent writes and capture, and in the same
    /// transaction advance the checkpoint: `low_watermark` and `chunk_rows` from `mark`,
    /// `rows_copied` by the rows copied. Returns the rows copied and the lock waiters seen before
    /// the commit ([`ChunkCopied`]). Copying a chunk again gives the same shadow (a resume
    /// re-copies the chunk a crash interrupted). `lock_wait`: how long a row lock may be waited
    /// for; zero: not at all (the chunk fails at once with a lock timeout, which is retryable).
    /// Errors: [`crate::Error::DuplicateKey`] when a new unique key rejects a row.
    async fn copy_chunk(
        &self,
        plan: &Plan,
        after: Option<&Self::Key>,
        upto: &Self::Key,
        lock_wait: Duration,
        mark: &ChunkMark,
    ) -> Result<ChunkCopied>;

    /// After the backfill, before the checksum ([`crate::phase::Phase::BuildIndexes`]): add to the
    /// shadow the secondary indexes it was created without, for a bulk build instead of row-by-row
    /// maintenance during the copy. One attempt waits at most `lock_timeout` for its locks, so the
    /// application's capture triggers never queue behind it for longer; a failed attempt changes
    /// nothing, and a lock timeout or deadlock is retryable (the engine retries it like a cut-over).
    /// Idempotent: indexes the shadow has already are not built again (a resumed run calls it
    /// again). Default: nothing deferred (PostgreSQL creates the shadow with all its indexes).
    async fn build_deferred_indexes(&self, plan: &Plan, lock_timeout: Duration) -> Result<()> {
        let _ = (plan, lock_timeout);
        Ok(())
    }

    /// Checksum the rows with key in `(after, upto]` of the original and of the shadow, both
    /// from one consistent snapshot. `after = None` starts at the lowest key, `upto = None` runs
    /// to the highest, so a walk whose first and last chunks are open covers the whole table
    /// (rows above the high watermark included). Returns `(original, shadow)`.
    async fn checksum_chunk(
        &self,
        plan: &Plan,
        after: Option<&Self::Key>,
        upto: Option<&Self::Key>,
    ) -> Result<(ChunkChecksum, ChunkChecksum)>;

    /// Work that must precede the swap but not hold its locks (PostgreSQL: ANALYZE the shadow so
    /// the planner has statistics the moment it becomes the table). Runs once, before the first
    /// cut-over attempt, outside the measured swap. Default: nothing.
    async fn prepare_cut_over(&self, plan: &Plan) -> Result<()> {
        let _ = plan;
        Ok(())
    }

    /// Work that follows a successful swap but must not count as blocking (PostgreSQL: validate
    /// the foreign keys re-added `NOT VALID`). Failures are the dialect's to log. Default: nothing.
    async fn after_cut_over(&self, plan: &Plan) -> Result<()> {
        let _ = plan;
        Ok(())
    }

    /// Check that nothing changed the table behind the capture's back since the capture
    /// triggers were installed: a TRUNCATE (which fires no trigger), a rebuild or any other DDL on
    /// the table, the capture triggers dropped or replaced. Called after the backfill and before
    /// every cut-over attempt (dialects should check again inside the swap itself, as close to the
    /// rename as they can). Errors: [`crate::Error::Refused`] naming what changed; the run then
    /// stops without swapping and removes what it created. Default: nothing to check.
    async fn verify_before_cut_over(&self, plan: &Plan) -> Result<()> {
        let _ = plan;
        Ok(())
    }

    /// Swap atomically: table → old, shadow → table, waiting at most `lock_timeout` for locks.
    /// On failure the original keeps serving under its name. Returns how long the application's
    /// writes to the table were blocked: the wall time of the statement (or transaction) that
    /// held or queued for the table's lock, lock wait included, and not the tries that asked for
    /// the lock without queueing (MariaDB, see the dialect's `mdl` module).
    async fn cut_over(&self, plan: &Plan, lock_timeout: Duration) -> Result<Duration>;

    // ---- revert window (see crate::revert) ----

    /// Why `plan` cannot get a revert window on this server, naming the column or object (a
    /// reverse mapping that cannot be exact, a dependent the revert could not carry back);
    /// `None` when it can. Default: not supported.
    fn revert_window_refusal(&self, plan: &Plan) -> Option<String> {
        let _ = plan;
        Some("this server does not support --revert-window".into())
    }

    /// The SQL of the revert window for the dry run: the reverse capture the swap installs, and
    /// the statements of `shadowswap revert` and `shadowswap finish`. Default: none.
    fn revert_window_sql(&self, plan: &Plan) -> Vec<String> {
        let _ = plan;
        Vec::new()
    }

    /// Before the cut-over attempts of a run with a revert window (the engine has written the
    /// window's end, `until` (RFC 3339), into the checkpoint row): clear the row's
    /// `revert_broken` and create whatever the swap needs to start the reverse capture atomically
    /// (MariaDB: placeholders and the reverse triggers on the shadow). Idempotent; each DDL waits
    /// at most `lock_timeout`.
    async fn revert_prepare(&self, plan: &Plan, until: &str, lock_timeout: Duration) -> Result<()> {
        let _ = (until, lock_timeout);
        Err(Error::refused(format!("--revert-window is not supported for {}", plan.names.table)))
    }

    /// Undo [`Dialect::revert_prepare`] after the cut-over failed (nothing swapped). Idempotent.
    async fn revert_unprepare(&self, names: &Names, lock_timeout: Duration) -> Result<()> {
        let _ = (names, lock_timeout);
        Ok(())
    }

    /// The swap of a run with a revert window: like [`Dialect::cut_over`], and the reverse capture
    /// (new table → old table) starts in the same atomic step, so no write is lost between them.
    async fn cut_over_with_revert(&self, plan: &Plan, lock_timeout: Duration) -> Result<Duration> {
        let _ = lock_timeout;
        Err(Error::refused(format!("--revert-window is not supported for {}", plan.names.table)))
    }

    /// After that swap: drop what it no longer needs (the forward capture, placeholders), set
    /// the checkpoint's phase to `revert window` and its `revert_until` to `until` (RFC 3339: the
    /// window counted from the swap). Idempotent.
    async fn revert_window_opened(&self, plan: &Plan, until: &str, lock_timeout: Duration) -> Result<()> {
        let _ = (plan, until, lock_timeout);
        Ok(())
    }

    /// The revert window's state from the checkpoint row; `None` when there is no checkpoint.
    async fn revert_state(&self, names: &Names) -> Result<Option<crate::revert::RevertState>> {
        let _ = names;
        Ok(None)
    }

    /// One attempt of `shadowswap revert`'s swap back (the old table becomes the table again),
    /// waiting at most `lock_timeout` for its locks; refuses, without swapping, when the reverse
    /// capture recorded a failure. On failure the new table keeps serving. Returns the wall time
    /// of the swap statement or transaction itself (lock wait included): how long application
    /// writes were blocked, as [`crate::cutover::CutOverStats::swap_time`] measures the swap.
    async fn revert_swap(&self, names: &Names, lock_timeout: Duration) -> Result<Duration> {
        let _ = lock_timeout;
        Err(Error::refused(format!("shadowswap revert is not supported for {}", names.table)))
    }

    /// After the swap back: drop the new table (now `_<t>_new`) with its reverse capture, and the
    /// checkpoint. Idempotent.
    async fn revert_cleanup(&self, names: &Names, lock_timeout: Duration) -> Result<()> {
        let _ = (names, lock_timeout);
        Ok(())
    }

    /// `shadowswap finish`: drop the reverse capture (first), then the old table and the
    /// checkpoint. Idempotent.
    async fn revert_finish(&self, names: &Names, lock_timeout: Duration) -> Result<()> {
        let _ = lock_timeout;
        Err(Error::refused(format!("shadowswap finish is not supported for {}", names.table)))
    }

    /// The statements `shadowswap revert` runs (swap back and cleanup), for its dry run.
    fn revert_swap_sql(&self, names: &Names) -> Vec<String> {
        let _ = names;
        Vec::new()
    }

    /// The statements `shadowswap finish` runs, for its dry run.
    fn revert_finish_sql(&self, names: &Names) -> Vec<String> {
        let _ = names;
        Vec::new()
    }
}
