//! The PostgreSQL dialect of shadowswap, on `tokio-postgres`.
//!
//! Module map, in phase order (each phase's I/O; its SQL is in the [`sql`] submodule of the
//! same name, as pure, string-tested builders):
//! - [`connect`]   — [`Postgres`]: the DSN, pinned session settings, the pool, the run lock;
//!   [`dsn`] parses `postgres://` DSNs (never displays passwords), [`tls`] gives libpq's
//!   `sslmode`/`sslrootcert` semantics on rustls.
//! - [`inspect`]   — a table's columns, indexes, identity columns and key operators.
//! - [`preflight`] — every refusal before anything is created (table kinds, dependents the swap
//!   cannot carry over, subscriptions, leftovers, columns other objects use, duplicates).
//! - [`trial`]     — the ALTER on a scratch copy, rolled back: the server judges it.
//! - [`in_place`]  — the metadata-only question and the in-place ALTER.
//! - [`shadow`]    — the shadow table: created like the table, prepared, altered, foreign keys.
//! - [`capture`]   — the capture triggers: installed, removed, listed.
//! - [`copy`]      — the backfill (key range, chunk end, chunk copy) and the checksum.
//! - [`signals`]   — the throttle's signals (`impl Signals`): heartbeat, load, blockers.
//! - [`cutover`]   — verify, the swap transaction, generated names, ACLs, after the swap.
//! - [`checkpoint`] — checkpoint and resume: the checkpoint row written and read, the chunk
//!   key's exact text form, the checks before a resume (each chunk's advance is in [`copy`]).
//! - [`revert`]    — the revert window: reverse capture created in the swap transaction, the
//!   swap back (the swap with the roles flipped), `finish` (docs/revert.md).
//! - [`dry_run`]   — the dry run's SQL, from the same builders as the run.
//! - `fault.rs`    — fault rehearsals (`--inject-fault`): the engine's `Rehearsal` (terminate
//!   shadowswap's own pool sessions, a blocker, a lock storm, pausing a standby's replay).
//! - [`staged_backfill`] — the staged path's backfill (`shadowswap backfill`): a chunk's UPDATE
//!   with the checkpoint's advance in its transaction, the counts, the rolled-back EXPLAIN trial.
//! - [`staged_migrate`] — `shadowswap migrate`'s history table (create, read, a phase's start
//!   and end).
//! - [`staged_contract`] — the staged path's contract (`shadowswap contract`): each step planned
//!   from the catalog, each statement outside a transaction under the session's lock timeout.
//!
//! By concept:
//! - [`sql`]       — SQL builders per phase, and the quoting they all use (`Ident`,
//!   `Qualified`, `literal`, `dollar_quote`, `ServerQuoted` for what the server printed).
//! - [`alter`]     — what the dialect knows about an ALTER's text, from the engine's analysis.
//! - [`rules`]     — the plan's rules: key column types, type changes the copy cannot follow.
//! - [`deps`]      — what the swap carries over (`Deps`, read from `pg_depend` and friends).
//! - [`owner`]     — working as the table's owner, so its code never runs with more privileges.
//! - [`generated_names`] — the names PostgreSQL gives unnamed constraints, for the swap's renames.
//! - [`errors`]    — every SQLSTATE and server-message check, once.
//! - this file     — [`PgKey`], and the [`Dialect`] implementation: one-line delegations in
//!   phase order.
//!
//! Chunk-key values travel as text and are cast back to the column's type in the query, so any
//! btree-ordered type with an exact text form can be a key (see [`rules::key_column_ok`]).

pub mod connect;
pub mod dsn;
pub mod tls;

pub mod inspect;
pub mod preflight;
pub mod trial;

pub mod in_place;
pub mod shadow;

pub mod capture;
pub mod copy;

pub mod signals;

pub mod cutover;
pub mod revert;

pub mod checkpoint;
pub mod dry_run;

mod fault;

pub mod alter;
pub mod deps;
pub mod errors;
pub mod generated_names;
pub mod owner;
pub mod rules;
pub mod sql;
pub mod staged_backfill;
pub mod staged_contract;
pub mod staged_migrate;

#[cfg(test)]
mod testing;

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use shadowswap_engine::alter::AlterAnalysis;
use shadowswap_engine::checkpoint::{Checkpoint, ChunkMark};
use shadowswap_engine::config::CutOverConfig;
use shadowswap_engine::dialect::{ChunkChecksum, ChunkCopied, Dialect, RunLock};
use shadowswap_engine::error::Result;
use shadowswap_engine::model::{TableRef, TableShape};
use shadowswap_engine::names::{byte_len, Names};
use shadowswap_engine::plan::{Plan, PlanSql, Rules};
use shadowswap_engine::staged::backfill::{BackfillSpec, BackfillSql};
use shadowswap_engine::staged::contract::{ContractClause, ContractStep};
use shadowswap_engine::staged::migrate::HistoryRow;
use shadowswap_engine::staged::Staged;

pub use connect::Postgres;
pub use dsn::Dsn;

/// PostgreSQL's identifier limit: NAMEDATALEN - 1 = 63 bytes.
pub const MAX_IDENTIFIER_BYTES: usize = 63;

/// A chunk boundary: the chunk key's values of one row, as text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgKey(pub Vec<String>);

impl fmt::Display for PgKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "({})", self.0.iter().map(|v| sql::literal(v)).collect::<Vec<_>>().join(", "))
    }
}

// ---- the staged path (shadowswap_engine::staged), one block per part ----
#[async_trait]
impl Staged for Postgres {
    // ---- backfill ----
    fn backfill_sql(&self, plan: &Plan, spec: &BackfillSpec, lock_wait: Duration) -> BackfillSql {
        sql::staged_backfill::outline(plan, spec, lock_wait)
    }

    async fn backfill_check(&self, plan: &Plan, spec: &BackfillSpec) -> Result<()> {
        staged_backfill::check(self, plan, spec).await
    }

    async fn backfill_count(&self, plan: &Plan, spec: &BackfillSpec, limit: Option<u64>) -> Result<u64> {
        staged_backfill::count(self, plan, spec, limit).await
    }

    async fn backfill_chunk(
        &self,
        plan: &Plan,
        spec: &BackfillSpec,
        after: Option<&PgKey>,
        upto: &PgKey,
        lock_wait: Duration,
        mark: &ChunkMark,
    ) -> Result<ChunkCopied> {
        staged_backfill::chunk(self, plan, spec, after, upto, lock_wait, mark).await
    }

    // ---- contract ----
    async fn contract_step(&self, table: &TableRef, clause: &ContractClause, cut_over: &CutOverConfig) -> Result<ContractStep> {
        staged_contract::step(self, table, clause, cut_over).await
    }

    async fn contract_exec(&self, table: &TableRef, clause: &ContractClause, sql: &str, lock_timeout: Duration) -> Result<()> {
        staged_contract::exec(self, table, clause, sql, lock_timeout).await
    }

    fn contract_undo(&self, table: &TableRef, clause: &ContractClause) -> Vec<String> {
        sql::staged_contract::undo(table, &clause.op)
    }

    // ---- migrate ----
    async fn migrate_history_ensure(&self, history: &TableRef) -> Result<()> {
        staged_migrate::ensure(self, history).await
    }

    async fn migrate_history_read(&self, history: &TableRef) -> Result<Vec<HistoryRow>> {
        staged_migrate::read(self, history).await
    }

    async fn migrate_history_start(
        &self,
        history: &TableRef,
        file: &str,
        phase: &str,
        checksum: &str,
        outcome: &str,
    ) -> Result<i64> {
        staged_migrate::start(self, history, file, phase, checksum, outcome).await
    }

    async fn migrate_history_finish(&self, history: &TableRef, id: i64, outcome: &str, error: Option<&str>) -> Result<()> {
        staged_migrate::finish(self, history, id, outcome, error).await
    }

    fn migrate_in_place_sql(&self, table: &TableRef, alter: &str, lock_timeout: Duration) -> Vec<String> {
        sql::staged_migrate::in_place(table, alter, lock_timeout)
    }
}

#[async_trait]
impl Dialect for Postgres {
    type Key = PgKey;

    fn sql_dialect(&self) -> &dyn sqlparser::dialect::Dialect {
        &self.parser
    }

    fn rules(&self) -> Rules {
        rules::rules()
    }

    fn names(&self, table: &TableRef) -> Names {
        Names::new(table, MAX_IDENTIFIER_BYTES, byte_len)
    }

    async fn acquire_run_lock(&self, names: &Names) -> Result<Box<dyn RunLock>> {
        connect::acquire_run_lock(self, names).await
    }

    async fn inspect(&self, table: &TableRef) -> Result<TableShape> {
        inspect::inspect(self, table).await
    }

    async fn table_exists(&self, table: &TableRef) -> Result<bool> {
        inspect::table_exists(self, table).await
    }

    async fn preflight(&self, names: &Names, original: &TableShape, resuming: bool) -> Result<()> {
        preflight::preflight(self, names, original, resuming).await
    }

    async fn trial_alter(&self, names: &Names, alter: &AlterAnalysis) -> Result<TableShape> {
        trial::trial_alter(self, names, alter).await
    }

    async fn metadata_only(&self, names: &Names, alter: &AlterAnalysis) -> Result<Option<bool>> {
        in_place::metadata_only(self, names, alter).await
    }

    async fn alter_in_place(&self, names: &Names, alter: &AlterAnalysis, lock_timeout: Duration) -> Result<Option<Duration>> {
        let t0 = std::time::Instant::now();
        in_place::alter_in_place(self, names, alter, lock_timeout).await.map(|()| Some(t0.elapsed()))
    }

    fn render_sql(&self, plan: &Plan) -> PlanSql {
        dry_run::plan_sql(plan)
    }

    async fn find_duplicate(&self, table: &TableRef, columns: &[String]) -> Result<Option<String>> {
        preflight::find_duplicate(self, table, columns).await
    }

    async fn create_shadow(&self, plan: &Plan, lock_timeout: Duration) -> Result<()> {
        shadow::create_shadow(self, plan, lock_timeout).await
    }

    async fn install_capture(&self, plan: &Plan, lock_timeout: Duration) -> Result<()> {
        capture::install_capture(self, plan, lock_timeout).await
    }

    async fn remove_capture(&self, names: &Names, lock_timeout: Duration) -> Result<()> {
        capture::remove_capture(self, names, lock_timeout).await
    }

    async fn capture_present(&self, names: &Names) -> Result<Vec<String>> {
        capture::capture_present(self, names).await
    }

    async fn drop_table(&self, table: &TableRef, lock_timeout: Duration) -> Result<()> {
        shadow::drop_table(self, table, lock_timeout).await
    }

    async fn key_range(&self, plan: &Plan) -> Result<Option<(PgKey, PgKey)>> {
        copy::key_range(self, plan).await
    }

    async fn chunk_end(&self, plan: &Plan, after: Option<&PgKey>, high: &PgKey, rows: u64) -> Result<PgKey> {
        copy::chunk_end(self, plan, after, high, rows).await
    }

    async fn copy_chunk(
        &self,
        plan: &Plan,
        after: Option<&PgKey>,
        upto: &PgKey,
        lock_wait: Duration,
        mark: &ChunkMark,
    ) -> Result<ChunkCopied> {
        copy::copy_chunk(self, plan, after, upto, lock_wait, mark).await
    }

    fn dialect_name(&self) -> &'static str {
        "postgresql"
    }

    async fn checkpoint_write(&self, names: &Names, ckpt: &Checkpoint) -> Result<()> {
        checkpoint::write(self, names, ckpt).await
    }

    async fn checkpoint_read(&self, names: &Names) -> Result<Option<Checkpoint>> {
        checkpoint::read(self, names).await
    }

    fn key_to_text(&self, key: &PgKey) -> String {
        checkpoint::key_to_text(key)
    }

    fn key_from_text(&self, plan: &Plan, text: &str) -> Result<PgKey> {
        checkpoint::key_from_text(plan, text)
    }

    async fn verify_resumable(&self, plan: &Plan) -> Result<()> {
        checkpoint::verify_resumable(self, plan).await
    }

    async fn checksum_chunk(
        &self,
        plan: &Plan,
        after: Option<&PgKey>,
        upto: Option<&PgKey>,
    ) -> Result<(ChunkChecksum, ChunkChecksum)> {
        copy::checksum_chunk(self, plan, after, upto).await
    }

    async fn prepare_cut_over(&self, plan: &Plan) -> Result<()> {
        cutover::prepare_cut_over(self, plan).await
    }

    async fn verify_before_cut_over(&self, plan: &Plan) -> Result<()> {
        cutover::verify_before_cut_over(self, plan).await
    }

    async fn cut_over(&self, plan: &Plan, lock_timeout: Duration) -> Result<Duration> {
        cutover::cut_over(self, plan, lock_timeout).await
    }

    async fn after_cut_over(&self, plan: &Plan) -> Result<()> {
        cutover::after_cut_over(self, plan).await
    }

    // ---- revert window (see crate::revert) ----
    fn revert_window_refusal(&self, plan: &Plan) -> Option<String> {
        sql::revert::refusal(plan)
    }

    fn revert_window_sql(&self, plan: &Plan) -> Vec<String> {
        revert::window_sql(plan)
    }

    async fn revert_prepare(&self, plan: &Plan, _until: &str, _lock_timeout: Duration) -> Result<()> {
        revert::prepare(self, plan).await
    }

    async fn revert_unprepare(&self, names: &Names, _lock_timeout: Duration) -> Result<()> {
        revert::unprepare(self, names).await
    }

    async fn cut_over_with_revert(&self, plan: &Plan, lock_timeout: Duration) -> Result<Duration> {
        revert::cut_over_with_revert(self, plan, lock_timeout).await
    }

    async fn revert_window_opened(&self, plan: &Plan, until: &str, _lock_timeout: Duration) -> Result<()> {
        revert::window_opened(self, plan, until).await
    }

    async fn revert_state(&self, names: &Names) -> Result<Option<shadowswap_engine::revert::RevertState>> {
        revert::state(self, names).await
    }

    async fn revert_swap(&self, names: &Names, lock_timeout: Duration) -> Result<Duration> {
        revert::swap_back(self, names, lock_timeout).await
    }

    async fn revert_cleanup(&self, names: &Names, lock_timeout: Duration) -> Result<()> {
        revert::cleanup_after_revert(self, names, lock_timeout).await
    }

    async fn revert_finish(&self, names: &Names, lock_timeout: Duration) -> Result<()> {
        revert::finish(self, names, lock_timeout).await
    }

    fn revert_swap_sql(&self, names: &Names) -> Vec<String> {
        revert::swap_back_sql(names)
    }

    fn revert_finish_sql(&self, names: &Names) -> Vec<String> {
        let mut out = vec!["BEGIN; SET LOCAL lock_timeout = …".to_string()];
        out.extend(revert::finish_statements(names));
        out.push("COMMIT".into());
        out
    }
}
