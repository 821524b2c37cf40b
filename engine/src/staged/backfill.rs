//! The staged backfill: `shadowswap backfill`, an in-place, batched `UPDATE` along the chunk key.
//!
//! The table is walked like the shadow copy's backfill walks it ([`ChunkWalk`], [`ChunkSizer`]:
//! keyset ranges `(after, upto]` on the primary key or a usable unique key, sized to
//! `config.copy.update_chunk_time`), and each chunk is one short transaction
//! ([`Staged::backfill_chunk`](super::Staged::backfill_chunk)): `UPDATE t SET <set> WHERE <key in (after, upto]> AND (<where>)`,
//! then the checkpoint's advance. The `SET` is evaluated on each row's current version inside
//! that transaction, so a value a writer wrote meanwhile is never overwritten with a stale one,
//! and only rows still matching `<where>` are touched: the backfill is idempotent. Locks are
//! held on one chunk at a time; the [`throttle`] pauses between chunks.
//!
//! **Checkpoint.** The run records itself in the checkpoint table `_<t>_ssw_ckpt` with the text
//! `backfill SET … WHERE …` ([`BackfillSpec::text`]) in place of an ALTER, and each chunk advances
//! its low watermark in the chunk's own transaction. Running the same command after a crash
//! continues after the low watermark up to the recorded high watermark, without re-scanning the
//! chunks done. A finished backfill drops its checkpoint. A checkpoint of another run (an
//! `alter`, or a backfill with other fragments) is refused, as `alter` refuses a backfill's.
//!
//! **Passes.** After walking the table once, the rows still matching `<where>` are counted (one
//! `COUNT`): writers may still produce old-shape rows. With `until_none` the walk repeats while
//! any remain, at most [`MAX_PASSES`] times.
//!
//! **Validation, before anything changes** ([`check_fragments`] and the server's trial,
//! [`Staged::backfill_check`](super::Staged::backfill_check)): `--set` must parse as one
//! assignment list and `--where` as one
//! expression (no `;`, no comments); every assigned column must exist, not be generated, and not
//! be a column of the chunk key; then the server plans the whole `UPDATE` without running it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlparser::ast::AssignmentTarget;
use sqlparser::parser::Parser;
use sqlparser::tokenizer::{Token, Tokenizer, Whitespace};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::backfill::chunker::ChunkWalk;
use crate::checkpoint::{Checkpoint, ChunkMark};
use crate::cleanup::{self, Undo};
use crate::config::MigrationConfig;
use crate::dialect::Dialect;
use crate::error::{Error, Result};
use crate::model::TableRef;
use crate::names::Names;
use crate::phase::Phase;
use crate::preflight::plan::Plan;
use crate::progress::{Progress, LOG_TARGET};
use crate::retry::with_retry;
use crate::throttle::{self, Throttle};

/// Passes `until_none` makes at most before giving up on writers that keep producing rows
/// matching `--where`.
pub const MAX_PASSES: u32 = 10;

/// The dry run's estimate of matching rows counts at most this many (a `COUNT` over a
/// `LIMIT`ed subquery, so the estimate of a huge table stays cheap).
pub const ESTIMATE_LIMIT: u64 = 1_000_000;

/// The operator's fragments: what follows `SET` and what follows `WHERE` in the backfill's
/// `UPDATE` (`note = concat('#', id)`, `note IS NULL`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackfillSpec {
    /// An assignment list: `c = expr[, d = expr …]`.
    pub set: String,
    /// One boolean expression selecting the rows still to backfill; rows it no longer matches
    /// are never touched.
    pub where_: String,
}

impl BackfillSpec {
    /// The run's text, as its checkpoint records it in place of an ALTER:
    /// `backfill SET <set> WHERE <where>` (fragments trimmed).
    pub fn text(&self) -> String {
        format!("backfill SET {} WHERE {}", self.set.trim(), self.where_.trim())
    }
}

/// The backfill's statements, rendered by the dialect from the builders the run uses
/// ([`Staged::backfill_sql`](super::Staged::backfill_sql)), with their placeholders.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BackfillSql {
    /// One chunk's transaction, in order (the lock wait, the `UPDATE`, the checkpoint's advance).
    pub chunk: Vec<String>,
    /// The count of rows still matching `--where` (after each pass; the dry run's estimate is
    /// [`BackfillSql::estimate`]).
    pub count: String,
    /// The dry run's bounded count of matching rows.
    pub estimate: String,
    /// The server's trial of the fragments (run before anything changes).
    pub check: String,
    /// The checkpoint table's creation.
    pub checkpoint: Vec<String>,
}

/// What an executed backfill did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackfillReport {
    /// Rows updated by this process (rows an interrupted earlier run updated are not counted).
    pub rows_updated: u64,
    /// Chunks run by this process.
    pub chunks: u64,
    /// Wall time of this process's backfill.
    pub elapsed: Duration,
    /// Rows matching `--where` after the last pass (writers may still produce old-shape rows).
    pub still_matching: u64,
    /// Passes over the table (1 without `until_none`).
    pub passes: u32,
    /// Chunks run while writers were waiting for row locks: each aimed at
    /// [`CopyConfig::max_latency`](crate::config::CopyConfig::max_latency) and was followed by a
    /// pause as long as it took.
    pub contended_chunks: u64,
    /// When this run resumed an interrupted one: the key it continued after (the checkpoint's
    /// low watermark in the dialect's key text; `(start)` when no chunk had finished).
    pub resumed_at: Option<String>,
}

/// How [`run`] ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackfillOutcome {
    /// Dry run: every check passed; the plan text (statements, chunk key, estimate).
    DryRun(String),
    /// The backfill ran to the end.
    Done(BackfillReport),
}

/// Backfill `table` with `spec`: validate, then (with `config.execute`) walk the table chunk by
/// chunk, pass after pass while `until_none` and rows still match (at most [`MAX_PASSES`]).
/// Without `config.execute`: the dry run, nothing changed. Chunk sizing and retries come from
/// `config.copy`, the throttle from `config.throttle` (and `replicas`, watched for lag).
/// Progress is published on `progress` (phase [`Phase::Backfill`], rows walked).
///
/// Errors: [`Error::NoSuchTable`]; [`Error::Refused`] for bad fragments, a table without a usable
/// key, another run's checkpoint, or rows still matching after [`MAX_PASSES`];
/// [`Error::AnotherRun`]; [`Error::Cancelled`] (the checkpoint is kept: the same command
/// continues); a chunk's error after its retries.
#[allow(clippy::too_many_arguments)] // the migrate helper's agreed shape, plus the replicas
pub async fn run<D: Dialect>(
    d: &Arc<D>,
    replicas: &[Arc<D>],
    table: &TableRef,
    spec: &BackfillSpec,
    config: &MigrationConfig,
    until_none: bool,
    cancel: &CancellationToken,
    progress: &watch::Sender<Progress>,
) -> Result<BackfillOutcome> {
    let names = d.names(table);
    let lock = d.acquire_run_lock(&names).await?;
    let result = run_locked(d, replicas, &names, spec, config, until_none, cancel, progress).await;
    if let Err(e) = lock.release().await {
        tracing::warn!(error = %e, "releasing the advisory lock failed (it is released when the session closes)");
    }
    result
}

#[allow(clippy::too_many_arguments)]
async fn run_locked<D: Dialect>(
    d: &Arc<D>,
    replicas: &[Arc<D>],
    names: &Names,
    spec: &BackfillSpec,
    config: &MigrationConfig,
    until_none: bool,
    cancel: &CancellationToken,
    progress: &watch::Sender<Progress>,
) -> Result<BackfillOutcome> {
    let pending = d.checkpoint_read(names).await?;
    if let Some(ckpt) = &pending {
        if let Some(refusal) = ckpt.refusal(&names.table, &spec.text()) {
            return Err(refusal);
        }
    }
    let plan = prepare(&**d, names, spec).await?;
    if let Some(ckpt) = &pending {
        if let Some(refusal) = ckpt.plan_refusal(&plan, d.dialect_name()) {
            return Err(refusal);
        }
    }
    if !config.execute {
        let estimate = d.backfill_count(&plan, spec, Some(ESTIMATE_LIMIT)).await?;
        return Ok(BackfillOutcome::DryRun(render(
            &plan,
            &d.backfill_sql(&plan, spec, config.copy.lock_wait_timeout),
            estimate,
            pending.as_ref(),
        )));
    }
    progress.send_modify(|p| {
        p.phase = Phase::Backfill;
        p.rows_estimated = plan.estimated_rows();
    });
    let mut undo = Undo::default();
    let started = throttle::start(d, replicas, names, &config.throttle, progress, cancel.child_token(), &mut undo).await;
    let result = match started {
        Ok((mut throttle, tasks)) => {
            let r = passes(&**d, &plan, spec, config, until_none, cancel, progress, &mut throttle, pending).await;
            tasks.shutdown().await;
            r
        }
        Err(e) => Err(e),
    };
    if undo.heartbeat {
        let heartbeat_only = Undo { heartbeat: true, ..Undo::default() };
        if let Err(left) = cleanup::undo_steps(&**d, names, &heartbeat_only, &config.ddl).await {
            tracing::warn!(target: LOG_TARGET, "{left}");
        }
    }
    let report = result?;
    progress.send_modify(|p| p.phase = Phase::Done);
    Ok(BackfillOutcome::Done(report))
}

/// Every check that changes nothing: the table and its shape, the chunk key, the fragments'
/// form ([`check_fragments`]) and the server's trial
/// ([`Staged::backfill_check`](super::Staged::backfill_check)). Returns the backfill's plan
/// ([`Plan::unchanged`], its text [`BackfillSpec::text`]).
pub async fn prepare<D: Dialect>(d: &D, names: &Names, spec: &BackfillSpec) -> Result<Plan> {
    let shape = d.inspect(&names.table).await?;
    let plan = Plan::unchanged(names.clone(), &spec.text(), shape, d.rules())?;
    check_fragments(&plan, spec, d.sql_dialect(), d.rules().eq, d.dialect_name() == "postgresql")?;
    d.backfill_check(&plan, spec).await?;
    Ok(plan)
}

/// The walk, pass after pass, then the checkpoint dropped. `pending`: the checkpoint of an
/// interrupted run of this backfill, continued first.
#[allow(clippy::too_many_arguments)]
async fn passes<D: Dialect>(
    d: &D,
    plan: &Plan,
    spec: &BackfillSpec,
    config: &MigrationConfig,
    until_none: bool,
    cancel: &CancellationToken,
    progress: &watch::Sender<Progress>,
    throttle: &mut Throttle,
    mut pending: Option<Checkpoint>,
) -> Result<BackfillReport> {
    let began = Instant::now();
    let cfg = &config.copy;
    let mut report = BackfillReport {
        rows_updated: 0,
        chunks: 0,
        elapsed: Duration::ZERO,
        still_matching: 0,
        passes: 0,
        resumed_at: None,
        contended_chunks: 0,
    };
    let mut walked = 0u64;
    loop {
        report.passes += 1;
        let mut sizer = crate::backfill::steered_sizer(cfg, cfg.update_chunk_time, cfg.initial_chunk_rows);
        let (mut walk, mut ckpt) = match pending.take() {
            Some(ckpt) => {
                if ckpt.chunk_rows > 0 {
                    sizer = crate::backfill::steered_sizer(cfg, cfg.update_chunk_time, ckpt.chunk_rows);
                }
                let key = |text: &Option<String>| text.as_deref().map(|t| d.key_from_text(plan, t)).transpose();
                let walk = ChunkWalk::resume(d, plan, sizer, key(&ckpt.low_watermark)?, key(&ckpt.high_watermark)?);
                let at = ckpt.low_watermark.clone().unwrap_or_else(|| "(start)".to_string());
                tracing::info!(
                    target: LOG_TARGET,
                    resumed_at = %at,
                    rows_updated_before = ckpt.rows_copied,
                    "resuming the backfill after key {at}: the interrupted run had updated {} rows; the chunks up to it are not scanned again",
                    ckpt.rows_copied
                );
                report.resumed_at = Some(at);
                (walk, ckpt)
            }
            None => {
                let walk = ChunkWalk::new(d, plan, sizer).await?;
                let mut ckpt = Checkpoint::new(plan, d.dialect_name());
                ckpt.phase = Phase::Backfill;
                ckpt.high_watermark = walk.high_watermark().map(|k| d.key_to_text(k));
                d.checkpoint_write(&plan.names, &ckpt).await?;
                (walk, ckpt)
            }
        };
        tracing::info!(
            target: LOG_TARGET,
            pass = report.passes,
            high_watermark = ckpt.high_watermark.as_deref().unwrap_or("(empty table)"),
            "backfill pass {} started",
            report.passes
        );
        let policy = cfg.chunk_retry_policy();
        let mut last_publish = Instant::now();
        while let Some((after, upto)) = walk.next().await? {
            if cancel.is_cancelled() {
                return Err(stopped());
            }
            throttle.wait_clear(cancel).await?;
            let t0 = Instant::now();
            let mark = ChunkMark { low_watermark: d.key_to_text(&upto), chunk_rows: walk.sizer.rows() };
            let chunk = with_retry("updating a chunk", policy, cancel, || {
                d.backfill_chunk(plan, spec, after.as_ref(), &upto, cfg.lock_wait_timeout, &mark)
            })
            .await
            .map_err(|e| match e {
                Error::Cancelled(_) => stopped(),
                e => e,
            })?;
            let (rows, took) = (chunk.rows, t0.elapsed());
            walked += walk.sizer.rows();
            if crate::backfill::steer(&mut walk.sizer, chunk.waiters, took, cancel).await {
                report.contended_chunks += 1;
            }
            report.rows_updated += rows;
            report.chunks += 1;
            ckpt.low_watermark = Some(mark.low_watermark);
            ckpt.rows_copied += rows;
            tracing::debug!(after = ?after, upto = %upto, rows, took_ms = took.as_millis() as u64, "chunk updated");
            if last_publish.elapsed() >= cfg.progress_interval {
                last_publish = Instant::now();
                publish(progress, walked, walk.sizer.rows());
            }
        }
        publish(progress, walked, walk.sizer.rows());
        report.still_matching = d.backfill_count(plan, spec, None).await?;
        tracing::info!(
            target: LOG_TARGET,
            pass = report.passes,
            rows_updated = ckpt.rows_copied,
            still_matching = report.still_matching,
            "backfill pass {} done: {} rows updated, {} rows still match --where",
            report.passes,
            ckpt.rows_copied,
            report.still_matching
        );
        if !until_none || report.still_matching == 0 {
            break;
        }
        if report.passes >= MAX_PASSES {
            drop_checkpoint(d, plan, config).await?;
            return Err(Error::refused(format!(
                "after {MAX_PASSES} passes {} rows of {} still match --where: writers keep producing old-shape rows; \
                 deploy the code that writes the new shape everywhere, then run the backfill again",
                report.still_matching, plan.names.table
            )));
        }
    }
    drop_checkpoint(d, plan, config).await?;
    report.elapsed = began.elapsed();
    Ok(report)
}

fn stopped() -> Error {
    Error::Cancelled("stopped during the backfill; its checkpoint is kept: run the same command again to continue".into())
}

async fn drop_checkpoint<D: Dialect>(d: &D, plan: &Plan, config: &MigrationConfig) -> Result<()> {
    with_retry("dropping the checkpoint table", config.ddl.retry_policy(), &CancellationToken::new(), || {
        d.drop_table(&plan.names.checkpoint, config.ddl.lock_timeout)
    })
    .await
}

fn publish(progress: &watch::Sender<Progress>, rows: u64, chunk_rows: u64) {
    progress.send_modify(|p| {
        // Rows walked count each chunk as full; the last chunk of a pass is usually shorter.
        p.rows_copied = if p.rows_estimated > 0 { rows.min(p.rows_estimated) } else { rows };
        p.chunk_rows = chunk_rows;
    });
}

/// The dry run's text: the chunk key, the statements exactly as run, the estimate of matching
/// rows (and how it was made), the checkpoint the run would continue.
pub fn render(plan: &Plan, sql: &BackfillSql, estimate: u64, pending: Option<&Checkpoint>) -> String {
    let key = plan.key.columns.iter().map(|c| c.name.as_str()).collect::<Vec<_>>().join(", ");
    let mut s = format!("backfill of {}\n", plan.names.table);
    s += &format!("chunk key: {} ({key})\n", plan.key.index);
    s += &format!("rows in the table (server estimate): {}\n", plan.estimated_rows());
    let bound = if estimate >= ESTIMATE_LIMIT { "at least " } else { "" };
    s += &format!(
        "rows matching --where: {bound}{estimate} (counted with COUNT(*) over at most {ESTIMATE_LIMIT} matching rows)\n"
    );
    match pending {
        Some(c) => {
            s += &format!(
                "resumes the interrupted run after key {} ({} rows updated before)\n",
                c.low_watermark.as_deref().unwrap_or("(start)"),
                c.rows_copied
            )
        }
        None => s += "a fresh run (no checkpoint)\n",
    }
    s += &format!("checked by the server, nothing run:\n  {}\n", sql.check);
    s += &format!("checkpoint ({}):\n", plan.names.checkpoint);
    for q in &sql.checkpoint {
        s += &format!("  {q}\n");
    }
    s += "each chunk, one transaction:\n";
    for q in &sql.chunk {
        s += &format!("  {q}\n");
    }
    s += &format!("after each pass:\n  {}\n", sql.count);
    s += &format!("estimate (dry run only):\n  {}", sql.estimate);
    s
}

/// The fragments' form, before the server sees them: `spec.set` one assignment list and
/// `spec.where_` one expression, each parsed whole with `sql_dialect` (so a `;` and a second
/// statement are refused), no comments (MariaDB runs the text of some); every assigned column
/// exists in the table, is not generated and is not a chunk-key column (the walk is along it).
/// Column names compare with `eq` (the dialect's [`crate::plan::Rules::eq`]); `fold_lower`:
/// unquoted names fold to lower case (PostgreSQL). Errors: [`Error::Refused`].
pub fn check_fragments(
    plan: &Plan,
    spec: &BackfillSpec,
    sql_dialect: &dyn sqlparser::dialect::Dialect,
    eq: fn(&str, &str) -> bool,
    fold_lower: bool,
) -> Result<()> {
    for (flag, text) in [("--set", &spec.set), ("--where", &spec.where_)] {
        if text.trim().is_empty() {
            return Err(Error::refused(format!("{flag} is empty; give {}", example(flag))));
        }
        let tokens = Tokenizer::new(sql_dialect, text)
            .tokenize()
            .map_err(|e| Error::refused(format!("cannot parse {flag} {text:?}: {e}; check its quoting")))?;
        // MySQL's tokenizer expands `/*!…*/` (an executable comment) into code: refused as well.
        let executable = text.contains("/*!") || text.contains("/*M!");
        let comment =
            |t: &Token| matches!(t, Token::Whitespace(Whitespace::SingleLineComment { .. } | Whitespace::MultiLineComment(_)));
        if executable || tokens.iter().any(comment) {
            return Err(Error::refused(format!("{flag} {text:?} contains a comment; remove it")));
        }
        if tokens.iter().any(|t| matches!(t, Token::SemiColon)) {
            return Err(Error::refused(format!(
                "{flag} {text:?} contains ';': give one {} only, e.g. {}",
                if flag == "--set" { "assignment list" } else { "expression" },
                example(flag)
            )));
        }
    }
    let parse_err = |flag: &str, text: &str, e: &dyn std::fmt::Display| {
        Error::refused(format!("{flag} {text:?} is not one {}: {e}; e.g. {}", what(flag), example(flag)))
    };
    let mut p = Parser::new(sql_dialect).try_with_sql(&spec.set).map_err(|e| parse_err("--set", &spec.set, &e))?;
    let assignments = p.parse_comma_separated(Parser::parse_assignment).map_err(|e| parse_err("--set", &spec.set, &e))?;
    if p.peek_token().token != Token::EOF {
        return Err(parse_err("--set", &spec.set, &format!("unexpected {}", p.peek_token().token)));
    }
    let mut p = Parser::new(sql_dialect).try_with_sql(&spec.where_).map_err(|e| parse_err("--where", &spec.where_, &e))?;
    p.parse_expr().map_err(|e| parse_err("--where", &spec.where_, &e))?;
    if p.peek_token().token != Token::EOF {
        return Err(parse_err("--where", &spec.where_, &format!("unexpected {}", p.peek_token().token)));
    }

    let table = &plan.names.table;
    for a in &assignments {
        let targets = match &a.target {
            AssignmentTarget::ColumnName(n) => vec![n],
            AssignmentTarget::Tuple(ns) => ns.iter().collect(),
        };
        for name in targets {
            let Some(ident) = name.0.last().and_then(|part| part.as_ident()) else {
                return Err(Error::refused(format!("--set assigns to {name}, which is not a column name")));
            };
            let col = if ident.quote_style.is_none() && fold_lower { ident.value.to_lowercase() } else { ident.value.clone() };
            let Some(c) = plan.original.column(&col, eq) else {
                return Err(Error::refused(format!("--set assigns column {col}, which {table} does not have; check the name")));
            };
            if c.generated {
                return Err(Error::refused(format!(
                    "--set assigns column {col} of {table}, a generated column; it cannot be written"
                )));
            }
            if plan.key.columns.iter().any(|k| eq(&k.name, &c.name)) {
                return Err(Error::refused(format!(
                    "--set assigns column {col}, a column of the chunk key {} of {table}: the backfill walks the table along it \
                     and cannot change it; backfill other columns only",
                    plan.key.index
                )));
            }
        }
    }
    Ok(())
}

fn what(flag: &str) -> &'static str {
    if flag == "--set" {
        "assignment list"
    } else {
        "expression"
    }
}

fn example(flag: &str) -> &'static str {
    if flag == "--set" {
        "--set \"note = concat('#', id)\""
    } else {
        "--where \"note IS NULL\""
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Column, Index, TableShape};
    use crate::names::{char_len, Names};
    use crate::preflight::plan::Rules;

    fn rules() -> Rules {
        Rules {
            eq: |a, b| a.eq_ignore_ascii_case(b),
            key_column_ok: |_| true,
            type_change_refusal: |_, _| None,
            key_change_refusal: crate::preflight::plan::unchanged_key_column,
        }
    }

    fn plan() -> Plan {
        let shape = TableShape {
            columns: vec![
                Column::new("id", "int"),
                Column { nullable: true, ..Column::new("note", "varchar(64)") },
                Column { generated: true, nullable: true, ..Column::new("g", "int") },
            ],
            indexes: vec![Index {
                name: "PRIMARY".into(),
                columns: vec!["id".into()],
                unique: true,
                primary: true,
                partial: false,
            }],
            estimated_rows: 10,
        };
        let names = Names::new(&TableRef::new("db", "t"), 64, char_len);
        Plan::unchanged(names, "backfill SET x WHERE y", shape, rules()).unwrap()
    }

    fn check(set: &str, where_: &str) -> std::result::Result<(), String> {
        let spec = BackfillSpec { set: set.into(), where_: where_.into() };
        check_fragments(&plan(), &spec, &sqlparser::dialect::MySqlDialect {}, rules().eq, false).map_err(|e| e.to_string())
    }

    #[test]
    fn the_plan_of_a_backfill_keeps_the_shape_and_records_its_text() {
        let p = plan();
        assert_eq!(p.key.index, "PRIMARY");
        assert_eq!(p.analysis.spec, "backfill SET x WHERE y");
        assert!(p.added_columns.is_empty() && p.dropped_columns.is_empty() && p.new_unique_keys.is_empty());
        let spec = BackfillSpec { set: " note = concat('#', id) ".into(), where_: " note IS NULL\n".into() };
        assert_eq!(spec.text(), "backfill SET note = concat('#', id) WHERE note IS NULL");
    }

    #[test]
    fn good_fragments_pass() {
        assert_eq!(check("note = concat('#', id)", "note IS NULL"), Ok(()));
        assert_eq!(check("NOTE = 'a;b', note = 'c'", "note IS NULL OR note = ';'"), Ok(()), "a ';' inside a literal is text");
        assert_eq!(check("t.note = 'x'", "id > 5"), Ok(()), "a qualified column");
    }

    #[test]
    fn bad_fragments_are_refused_in_one_line() {
        let cases = [
            ("note = 1; DROP TABLE t", "note IS NULL", "contains ';'"),
            ("note = 1", "note IS NULL; DELETE FROM t", "contains ';'"),
            ("note = 1 -- x", "note IS NULL", "contains a comment"),
            ("note = 1", "/*!50000 note IS NULL */", "comment"),
            ("note = 1", "/*M!100000 note IS NULL */", "comment"),
            ("note = 1 note = 2", "note IS NULL", "is not one assignment list"),
            ("note", "note IS NULL", "is not one assignment list"),
            ("note = 1", "note IS NULL note", "is not one expression"),
            ("", "note IS NULL", "--set is empty"),
            ("note = 1", " ", "--where is empty"),
            ("id = id + 1", "note IS NULL", "a column of the chunk key PRIMARY"),
            ("(note, ID) = (1, 2)", "note IS NULL", "a column of the chunk key"),
            ("nope = 1", "note IS NULL", "which db.t does not have"),
            ("g = 1", "note IS NULL", "a generated column"),
        ];
        for (set, where_, expect) in cases {
            let e = check(set, where_).expect_err(&format!("{set} / {where_}"));
            assert!(e.contains(expect) && !e.contains('\n'), "{set} / {where_}: {e}");
        }
    }
}
