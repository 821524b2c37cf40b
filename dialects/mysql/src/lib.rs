//! The MySQL/MariaDB dialect of shadowswap, on `mysql_async`.
//!
//! Module map, in phase order (each I/O module runs the statements its namesake in [`sql`]
//! builds; to change a statement, open `sql/<phase>.rs`, to change what is done with it,
//! `<phase>.rs`):
//! - [`dsn`]        — `mysql://` DSN parsing; the password may come from `MYSQL_PWD`; never displayed.
//! - `connect.rs`   — [`MySql`]: the pool, the session setup ([`SESSION_SETUP`]), statement
//!   helpers, the run lock (`GET_LOCK`).
//! - `inspect.rs`   — columns, indexes, engine and row estimate of a table.
//! - [`alter`]      — what MariaDB makes of an ALTER: the plan's rules (chunk-key types, refused
//!   type changes), DATETIME ↔ TIMESTAMP conversion, clock defaults in the spec.
//! - `preflight.rs` — refusals that need the server (leftovers of an earlier run, except what a
//!   resumed run created), the trial ALTER on a temporary copy, the duplicate search for a new
//!   unique key.
//! - `shadow.rs`    — the shadow table (create, ALTER, AUTO_INCREMENT carry-over) and `DROP TABLE`.
//! - `indexes.rs`   — the shadow's plain secondary indexes: dropped while it is empty, built in
//!   bulk after the backfill (phase `build indexes`), online.
//! - `capture.rs`   — the capture triggers, installed and removed under `LOCK TABLES … WRITE`.
//! - `copy.rs`      — backfill (key range, chunk end, chunk copy with the checkpoint's advance in
//!   its transaction) and the chunk checksum.
//! - [`checkpoint`] — the checkpoint row (write, read), the chunk key's text form for its
//!   watermarks, the capture identity kept in it, and the checks before a resume.
//! - `signals.rs`   — the throttle's signals (heartbeat, status variables, throttle query,
//!   cut-over blockers): the engine's `Signals` trait.
//! - [`identity`]   — the table identity recorded at capture and compared before the swap.
//! - `in_place.rs`  — `--attempt-instant-ddl`: the ALTER on the table with `ALGORITHM=INSTANT`
//!   (the server refuses, unchanged, what it cannot do as a catalog change).
//! - `cutover.rs`   — the check before the cut-over and the `RENAME TABLE` swap.
//! - `fault.rs`     — fault rehearsals (`--inject-fault`): the engine's `Rehearsal` (kill
//!   shadowswap's own pool sessions, a blocker, a lock storm, pausing a replica's SQL thread).
//! - `revert.rs`    — the revert window: reverse capture started by a four-way `RENAME TABLE`,
//!   the swap back, `finish` (docs/revert.md).
//! - `staged_backfill.rs` — the staged path's backfill (`shadowswap backfill`): a chunk's UPDATE
//!   with the checkpoint's advance in its transaction, the counts, the `EXPLAIN UPDATE` trial.
//! - `staged_migrate.rs` — `shadowswap migrate`'s history table (create, read, a phase's start
//!   and end).
//! - `staged_contract.rs` — the staged path's contract (`shadowswap contract`): which way each
//!   clause goes (asked on a probe table), each statement under its `lock_wait_timeout`.
//! - [`errors`]     — classification of driver errors, and every server error code and message
//!   text shadowswap looks at.
//! - [`sql`]        — the pure SQL builders, one submodule per phase, and the dry run ([`sql::dry_run`]).
//! - this file      — [`MyKey`] and the [`Dialect`] implementation: one-line delegations in
//!   phase order.
//!
//! Every session shadowswap opens is set up the same way (see [`SESSION_SETUP`]): UTC time zone,
//! so TIMESTAMP values round-trip exactly (no DST-ambiguous local times) — except the copy
//! statement, which runs in the server's default time zone so the defaults it evaluates equal a
//! plain ALTER's ([`sql::copy_time_zone`]); a strict `sql_mode` with
//! `NO_AUTO_VALUE_ON_ZERO`, so nothing is silently truncated and an AUTO_INCREMENT value of 0 is
//! copied as 0; REPEATABLE READ, for the next-key locks the chunk copy relies on. The capture
//! triggers are created in such a session, and a trigger runs with the `sql_mode` it was created
//! with (MariaDB KB, "CREATE TRIGGER"), so the triggers are strict too.

pub mod alter;
mod capture;
pub mod checkpoint;
mod connect;
mod copy;
mod cutover;
pub mod dsn;
pub mod errors;
mod fault;
pub mod identity;
mod in_place;
mod indexes;
mod inspect;
mod mdl;
mod preflight;
mod revert;
mod shadow;
mod signals;
pub mod sql;
mod staged_backfill;
mod staged_contract;
mod staged_migrate;

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use mysql_async::Value;
use shadowswap_engine::alter::AlterAnalysis;
use shadowswap_engine::checkpoint::{Checkpoint, ChunkMark};
use shadowswap_engine::config::CutOverConfig;
use shadowswap_engine::dialect::{ChunkChecksum, ChunkCopied, Dialect, RunLock};
use shadowswap_engine::error::Result;
use shadowswap_engine::model::{TableRef, TableShape};
use shadowswap_engine::names::Names;
use shadowswap_engine::plan::{Plan, PlanSql, Rules};
use shadowswap_engine::staged::backfill::{BackfillSpec, BackfillSql};
use shadowswap_engine::staged::contract::{ContractClause, ContractStep};
use shadowswap_engine::staged::migrate::HistoryRow;
use shadowswap_engine::staged::Staged;

pub use connect::MySql;
pub use dsn::Dsn;
pub use sql::connect::SESSION_SETUP;

/// MySQL's identifier length limit, in characters.
pub const MAX_IDENTIFIER_CHARS: usize = 64;

/// A chunk boundary: the chunk key's values of one row, as the server returned them (binary
/// protocol), so they bind back exactly.
#[derive(Debug, Clone, PartialEq)]
pub struct MyKey(pub Vec<Value>);

impl fmt::Display for MyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.0.iter().map(|v| v.as_sql(false)).collect();
        write!(f, "({})", parts.join(", "))
    }
}

// ---- the staged path (shadowswap_engine::staged), one block per part ----
#[async_trait]
impl Staged for MySql {
    // ---- backfill ----
    fn backfill_sql(&self, plan: &Plan, spec: &BackfillSpec, lock_wait: Duration) -> BackfillSql {
        sql::staged_backfill::outline(plan, spec, connect::whole_seconds(lock_wait))
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
        after: Option<&MyKey>,
        upto: &MyKey,
        lock_wait: Duration,
        mark: &ChunkMark,
    ) -> Result<ChunkCopied> {
        staged_backfill::chunk(self, plan, spec, after, upto, lock_wait, mark).await
    }

    // ---- contract ----
    async fn contract_step(&self, table: &TableRef, clause: &ContractClause, cut_over: &CutOverConfig) -> Result<ContractStep> {
        staged_contract::step(self, table, clause, cut_over).await
    }

    async fn contract_exec(&self, _table: &TableRef, _clause: &ContractClause, sql: &str, lock_timeout: Duration) -> Result<()> {
        staged_contract::exec(self, sql, lock_timeout).await
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
}

#[async_trait]
impl Dialect for MySql {
    type Key = MyKey;

    // connect
    fn sql_dialect(&self) -> &dyn sqlparser::dialect::Dialect {
        &self.parser
    }

    fn rules(&self) -> Rules {
        alter::rules()
    }

    fn names(&self, table: &TableRef) -> Names {
        connect::names(table)
    }

    async fn acquire_run_lock(&self, names: &Names) -> Result<Box<dyn RunLock>> {
        connect::acquire_run_lock(self, names).await
    }

    // inspect
    async fn inspect(&self, table: &TableRef) -> Result<TableShape> {
        inspect::inspect(self, table).await
    }

    async fn table_exists(&self, table: &TableRef) -> Result<bool> {
        inspect::table_exists(self, table).await
    }

    // preflight
    async fn preflight(&self, names: &Names, _original: &TableShape, resuming: bool) -> Result<()> {
        preflight::preflight(self, names, resuming).await
    }

    async fn alter_in_place(&self, names: &Names, alter: &AlterAnalysis, lock_timeout: Duration) -> Result<Option<Duration>> {
        in_place::alter_in_place(self, names, alter, lock_timeout).await
    }

    async fn trial_alter(&self, names: &Names, alter: &AlterAnalysis) -> Result<TableShape> {
        preflight::trial_alter(self, names, alter).await
    }

    fn render_sql(&self, plan: &Plan) -> PlanSql {
        let mut out = sql::dry_run(plan);
        let trial = self.trial_definitions.lock().expect("trial definitions").get(&plan.names.table).cloned();
        if let Some(ddl) = trial {
            let split = sql::indexes::split(&ddl);
            out.shadow.extend(sql::indexes::drop_deferred(&plan.names.shadow, &split.deferred));
            out.shadow.extend(
                sql::indexes::add_deferred(&plan.names.shadow, &split.deferred)
                    .map(|add| format!("{}{add}", sql::indexes::AFTER_BACKFILL)),
            );
        }
        out
    }

    async fn find_duplicate(&self, table: &TableRef, columns: &[String]) -> Result<Option<String>> {
        preflight::find_duplicate(self, table, columns).await
    }

    // shadow
    async fn create_shadow(&self, plan: &Plan, lock_timeout: Duration) -> Result<()> {
        shadow::create_shadow(self, plan, lock_timeout).await
    }

    // capture
    async fn install_capture(&self, plan: &Plan, lock_timeout: Duration) -> Result<()> {
        capture::install_capture(self, plan, lock_timeout).await
    }

    async fn remove_capture(&self, names: &Names, lock_timeout: Duration) -> Result<()> {
        capture::remove_capture(self, names, lock_timeout).await
    }

    async fn capture_present(&self, names: &Names) -> Result<Vec<String>> {
        capture::capture_present(self, names).await
    }

    // cleanup (the shadow's undo, the old table)
    async fn drop_table(&self, table: &TableRef, lock_timeout: Duration) -> Result<()> {
        shadow::drop_table(self, table, lock_timeout).await
    }

    // copy: backfill and checksum
    async fn key_range(&self, plan: &Plan) -> Result<Option<(MyKey, MyKey)>> {
        copy::key_range(self, plan).await
    }

    async fn chunk_end(&self, plan: &Plan, after: Option<&MyKey>, high: &MyKey, rows: u64) -> Result<MyKey> {
        copy::chunk_end(self, plan, after, high, rows).await
    }

    async fn copy_chunk(
        &self,
        plan: &Plan,
        after: Option<&MyKey>,
        upto: &MyKey,
        lock_wait: Duration,
        mark: &ChunkMark,
    ) -> Result<ChunkCopied> {
        copy::copy_chunk(self, plan, after, upto, lock_wait, mark).await
    }

    // checkpoint and resume
    fn dialect_name(&self) -> &'static str {
        "mariadb"
    }

    async fn checkpoint_write(&self, names: &Names, ckpt: &Checkpoint) -> Result<()> {
        checkpoint::write(self, names, ckpt).await
    }

    async fn checkpoint_read(&self, names: &Names) -> Result<Option<Checkpoint>> {
        checkpoint::read(self, names).await
    }

    fn key_to_text(&self, key: &MyKey) -> String {
        checkpoint::key_to_text(key)
    }

    fn key_from_text(&self, plan: &Plan, text: &str) -> Result<MyKey> {
        checkpoint::key_from_text(plan, text)
    }

    async fn verify_resumable(&self, plan: &Plan) -> Result<()> {
        checkpoint::verify_resumable(self, plan).await
    }

    async fn build_deferred_indexes(&self, plan: &Plan, lock_timeout: Duration) -> Result<()> {
        indexes::build(self, plan, lock_timeout).await
    }

    async fn checksum_chunk(
        &self,
        plan: &Plan,
        after: Option<&MyKey>,
        upto: Option<&MyKey>,
    ) -> Result<(ChunkChecksum, ChunkChecksum)> {
        copy::checksum_chunk(self, plan, after, upto).await
    }

    // cut-over
    async fn verify_before_cut_over(&self, plan: &Plan) -> Result<()> {
        cutover::verify_before_cut_over(self, plan).await
    }

    async fn cut_over(&self, plan: &Plan, lock_timeout: Duration) -> Result<Duration> {
        cutover::cut_over(self, plan, lock_timeout).await
    }

    // ---- revert window (see crate::revert) ----
    fn revert_window_refusal(&self, plan: &Plan) -> Option<String> {
        sql::revert::refusal(plan)
    }

    fn revert_window_sql(&self, plan: &Plan) -> Vec<String> {
        revert::window_sql(plan)
    }

    async fn revert_prepare(&self, plan: &Plan, until: &str, lock_timeout: Duration) -> Result<()> {
        revert::prepare(self, plan, until, lock_timeout).await
    }

    async fn revert_unprepare(&self, names: &Names, lock_timeout: Duration) -> Result<()> {
        revert::unprepare(self, names, lock_timeout).await
    }

    async fn cut_over_with_revert(&self, plan: &Plan, lock_timeout: Duration) -> Result<Duration> {
        revert::cut_over_with_revert(self, plan, lock_timeout).await
    }

    async fn revert_window_opened(&self, plan: &Plan, until: &str, lock_timeout: Duration) -> Result<()> {
        revert::window_opened(self, plan, until, lock_timeout).await
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
        revert::finish_sql(names)
    }
}
