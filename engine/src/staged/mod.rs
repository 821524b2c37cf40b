//! The staged path: expand → backfill → contract, for changes a team rolls out in steps rather
//! than through a shadow copy.
//!
//! - **expand**: an additive change (a nullable column, a new table) applied as it is, usually
//!   metadata-only on both servers.
//! - **backfill** ([`backfill`]): the existing rows brought to the new shape *in place*, by a
//!   batched `UPDATE` along the chunk key, each chunk its own short transaction, throttled like
//!   the shadow copy's backfill, resumable from its checkpoint.
//! - **contract**: the constraints (`NOT NULL`, indexes, foreign keys) and drops that follow,
//!   each done the way that does not block the application ([`contract`]).
//! - **migration files** ([`migrate`]): `shadowswap migrate` applies the three phases from
//!   versioned TOML files, in file order, recorded in a history table on the server.
//!
//! The dialect seam is [`Staged`]: a supertrait of [`crate::Dialect`] whose default methods
//! refuse ("not supported"), so a dialect implements only what its server supports. Each part
//! of the staged path has its own block of methods.

pub mod backfill;
pub mod contract;
pub mod migrate;

use async_trait::async_trait;

use crate::checkpoint::ChunkMark;
use crate::dialect::Dialect;
use crate::error::{Error, Result};
use crate::model::TableRef;
use crate::preflight::plan::Plan;
use backfill::{BackfillSpec, BackfillSql};
use contract::{ContractClause, ContractStep};
use migrate::HistoryRow;

/// What the staged path asks of a database server. Every method's default refuses, naming the
/// table; see the module docs.
#[async_trait]
pub trait Staged: Send + Sync {
    // ---- backfill ----

    /// The backfill's statements for `spec` on `plan`'s table, exactly as
    /// [`Staged::backfill_chunk`] and [`Staged::backfill_count`] run them (with their
    /// placeholders; row lock waits at most `lock_wait`), for the dry run. Default: nothing (the
    /// dialect has no backfill).
    fn backfill_sql(&self, plan: &Plan, spec: &BackfillSpec, lock_wait: std::time::Duration) -> BackfillSql {
        let _ = (plan, spec, lock_wait);
        BackfillSql::default()
    }

    /// Let the server judge `spec`'s fragments before anything changes: the `UPDATE` of the
    /// whole table with `spec`'s `SET` and `WHERE`, planned but not run (MariaDB `EXPLAIN
    /// UPDATE`; PostgreSQL `EXPLAIN UPDATE` in a transaction rolled back). Changes nothing.
    /// Errors: [`Error::Refused`] quoting the server's message (unknown column or function, a
    /// type mismatch, a syntax error).
    async fn backfill_check(&self, plan: &Plan, spec: &BackfillSpec) -> Result<()> {
        let _ = spec;
        Err(Error::refused(format!("shadowswap backfill is not supported for {} on this server", plan.names.table)))
    }

    /// Rows of `plan`'s table matching `spec.where_`, counting at most `limit` (`None`: all):
    /// one `SELECT COUNT(*)`.
    async fn backfill_count(&self, plan: &Plan, spec: &BackfillSpec, limit: Option<u64>) -> Result<u64> {
        let _ = (spec, limit);
        Err(Error::refused(format!("shadowswap backfill is not supported for {} on this server", plan.names.table)))
    }

    /// In one short transaction: `UPDATE t SET <set> WHERE <key in (after, upto]> AND (<where>)`
    /// (row lock waits at most `lock_wait`), then advance the checkpoint `plan.names.checkpoint`
    /// by `mark` and the rows updated, so both commit or neither. The `SET` is evaluated on each
    /// row's current version and the `WHERE` re-checked on it, so a row a writer changed meanwhile
    /// is not overwritten with a stale value. Just before the commit it counts the writers
    /// waiting for row locks, as [`crate::Dialect::copy_chunk`] does. Returns the rows updated
    /// and those waiters.
    /// Errors: lock timeouts and deadlocks as retryable; [`Error::Refused`] when the server
    /// rejects a row's new value or the checkpoint row is missing.
    async fn backfill_chunk(
        &self,
        plan: &Plan,
        spec: &BackfillSpec,
        after: Option<&<Self as Dialect>::Key>,
        upto: &<Self as Dialect>::Key,
        lock_wait: std::time::Duration,
        mark: &ChunkMark,
    ) -> Result<crate::dialect::ChunkCopied>
    where
        Self: Dialect,
    {
        let _ = (spec, after, upto, lock_wait, mark);
        Err(Error::refused(format!("shadowswap backfill is not supported for {} on this server", plan.names.table)))
    }

    // ---- contract ----

    /// How this server does `clause` of the contract of `table` without blocking writes: the
    /// technique, the exact statements (built by the dialect's `sql::staged_contract`), the
    /// lock and how long it may block writes at most given `cut_over`'s lock timeout and
    /// retries, and whether it scans. May read the catalog (an invalid index left by an earlier
    /// attempt, a name already taken) and, on MariaDB, try the clause on an empty copy of the
    /// table's definition; changes nothing on the table.
    /// Errors: [`Error::Refused`] naming a clause the server has no non-blocking technique for.
    async fn contract_step(
        &self,
        table: &TableRef,
        clause: &ContractClause,
        cut_over: &crate::config::CutOverConfig,
    ) -> Result<ContractStep> {
        let _ = (clause, cut_over);
        Err(Error::refused(format!("shadowswap contract is not supported for {table} on this server")))
    }

    /// Run one statement of `clause`'s step (one of [`ContractStep::statements`] or of
    /// [`Staged::contract_undo`]), its lock request waiting at most `lock_timeout`, outside any
    /// transaction. A failed `CREATE INDEX CONCURRENTLY` has its invalid index dropped before
    /// the error returns, so a retry starts clean.
    /// Errors: lock timeouts and deadlocks as retryable; the server's otherwise.
    async fn contract_exec(
        &self,
        table: &TableRef,
        clause: &ContractClause,
        sql: &str,
        lock_timeout: std::time::Duration,
    ) -> Result<()> {
        let _ = (clause, sql, lock_timeout);
        Err(Error::refused(format!("shadowswap contract is not supported for {table} on this server")))
    }

    /// The statements that remove what a failed step of `clause` may have left (the NOT VALID
    /// check, the invalid index), each harmless when there is nothing to remove. Empty by default.
    fn contract_undo(&self, table: &TableRef, clause: &ContractClause) -> Vec<String> {
        let _ = (table, clause);
        Vec::new()
    }

    // ---- migrate ----

    /// Create the migration history table `history` when it does not exist (columns: `id`,
    /// `file`, `phase`, `checksum`, `started_at`, `finished_at`, `applied_by`, `outcome`,
    /// `error`; see [`HistoryRow`]). Harmless when it exists.
    async fn migrate_history_ensure(&self, history: &TableRef) -> Result<()> {
        Err(Error::refused(format!("shadowswap migrate is not supported on this server ({history})")))
    }

    /// Every row of the existing history table `history`, oldest first.
    async fn migrate_history_read(&self, history: &TableRef) -> Result<Vec<HistoryRow>> {
        Err(Error::refused(format!("shadowswap migrate is not supported on this server ({history})")))
    }

    /// Record that `phase` of `file` (checksum `checksum`) starts now, with `outcome` (running,
    /// reverting) and `applied_by` the server's current user and the client's host, committed
    /// at once. Returns the row's id.
    async fn migrate_history_start(
        &self,
        history: &TableRef,
        file: &str,
        phase: &str,
        checksum: &str,
        outcome: &str,
    ) -> Result<i64> {
        let _ = (file, phase, checksum, outcome);
        Err(Error::refused(format!("shadowswap migrate is not supported on this server ({history})")))
    }

    /// Record that row `id` finished now with `outcome` (and `error`, one line), committed at once.
    async fn migrate_history_finish(&self, history: &TableRef, id: i64, outcome: &str, error: Option<&str>) -> Result<()> {
        let _ = (id, outcome, error);
        Err(Error::refused(format!("shadowswap migrate is not supported on this server ({history})")))
    }

    /// The statements the in-place (metadata-only) ALTER of `table` runs, for the dry run, as
    /// [`Dialect::alter_in_place`] runs them; empty when the dialect does not apply ALTERs in
    /// place (the default).
    fn migrate_in_place_sql(&self, table: &TableRef, alter: &str, lock_timeout: std::time::Duration) -> Vec<String> {
        let _ = (table, alter, lock_timeout);
        Vec::new()
    }
}
