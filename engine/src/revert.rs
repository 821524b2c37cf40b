//! The revert window (`--revert-window DURATION`): after the swap the old table `_<t>_old` is kept
//! in sync with the new table by reverse capture triggers (`names.revert_*`, new → old), so
//! `shadowswap revert` can swap back without losing a write, until the window ends or
//! `shadowswap finish` closes it. See docs/revert.md.
//!
//! - `preflight` — refuses an `alter` on a table whose window is open (naming `finish`), and
//!   `--revert-window` for a plan whose reverse mapping cannot be exact
//!   ([`Dialect::revert_window_refusal`]); [`describe`] says what a revert restores.
//! - [`cut_over`] — the run's swap: with a window, [`Dialect::revert_prepare`] then
//!   [`Dialect::cut_over_with_revert`] under the cut-over controller ([`cutover::attempts`]).
//! - [`after_swap`] — replaces the cleanup after the swap while a window is open.
//! - [`wait`] — the `alter` process waits out the window (without the advisory lock), noticing a
//!   `revert`/`finish` from another process; at the end it runs [`finish`]; Ctrl-C leaves it open.
//! - [`revert`] and [`finish`] — the two commands, each a dry run without `execute`.
//!
//! The window's state lives on the server, in the checkpoint row (`names.checkpoint`): phase
//! `revert window`, `revert_until`, and `revert_broken`, which the reverse triggers' error
//! handler fills when a write could not be carried back (the application's write succeeds).

use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::checkpoint::Checkpoint;
use crate::cleanup::{AfterSwap, Undo};
use crate::config::{CutOverConfig, DdlConfig, MigrationConfig};
use crate::cutover::{self, CutOverStats};
use crate::dialect::Dialect;
use crate::error::{Error, Result};
use crate::model::TableRef;
use crate::names::Names;
use crate::phase::Phase;
use crate::preflight::plan::Plan;
use crate::progress::{Progress, LOG_TARGET};
use crate::retry::with_retry;

/// The revert window's part of the checkpoint row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevertState {
    /// The checkpoint's phase ([`Phase`]'s text): `revert window` while the window is open.
    pub phase: String,
    /// The ALTER the run applied.
    pub alter: String,
    /// End of the window (RFC 3339, UTC).
    pub revert_until: Option<String>,
    /// Why the old table can no longer be reverted to exactly (written by the reverse capture's
    /// error handler: when, which write, the server's message).
    pub revert_broken: Option<String>,
}

impl RevertState {
    /// Whether the window is open (the tables were swapped and the reverse capture runs).
    pub fn is_open(&self) -> bool {
        Phase::parse(&self.phase) == Some(Phase::RevertWindow)
    }

    /// The end of the window, parsed (`None` when absent or unreadable).
    pub fn until(&self) -> Option<jiff::Timestamp> {
        self.revert_until.as_deref().and_then(|t| t.parse().ok())
    }
}

/// The refusal when a revert would lose writes.
fn broken_refusal(table: &TableRef, why: &str) -> Error {
    Error::refused(format!(
        "the old table missed writes since the swap ({why}); a revert would lose them; run `shadowswap finish` for \
         {table} to keep the new table and close the window"
    ))
}

/// Refusals before anything is created: an `alter` on a table whose revert window is open (for any
/// ALTER, with or without `--revert-window`), and `--revert-window` for a plan the dialect cannot
/// revert exactly. The first runs before the dialect's preflight (see [`open_window_refusal`]).
pub fn refusal<D: Dialect>(d: &D, plan: &Plan, cfg: &MigrationConfig) -> Result<()> {
    if cfg.revert_window.is_none() {
        return Ok(());
    }
    match d.revert_window_refusal(plan) {
        None => Ok(()),
        Some(why) => Err(Error::refused(format!(
            "--revert-window cannot be used for this ALTER: {why}; run it without --revert-window (then the swap cannot be \
             reverted), or change the ALTER"
        ))),
    }
}

/// An open revert window on `names.table` refuses a new `alter`, naming `finish` and `revert`.
pub async fn open_window_refusal<D: Dialect>(d: &D, names: &Names) -> Result<()> {
    match d.revert_state(names).await? {
        Some(s) if s.is_open() => Err(Error::refused(format!(
            "{} has an open revert window (until {}) from an earlier run of {:?}; run `shadowswap finish` for this table \
             to keep that change (or `shadowswap revert` to undo it) before another ALTER",
            names.table,
            s.revert_until.as_deref().unwrap_or("?"),
            s.alter
        ))),
        _ => Ok(()),
    }
}

/// What a revert restores, one line each, for the dry run and docs: the columns carried back,
/// the dropped columns' values, the added columns lost.
pub fn describe(plan: &Plan) -> Vec<String> {
    let mut lines = vec![format!(
        "a revert swaps {} back to its definition before this ALTER, with every row inserted, updated or deleted in the \
         window",
        plan.names.table
    )];
    let carried: Vec<String> = plan
        .mapping
        .iter()
        .map(|m| if m.source == m.target { m.source.clone() } else { format!("{} <- {}", m.source, m.target) })
        .collect();
    lines.push(format!("columns carried back: {}", carried.join(", ")));
    if !plan.dropped_columns.is_empty() {
        lines.push(format!(
            "columns the ALTER drops ({}): rows inserted in the window get their default, updated rows keep their value",
            plan.dropped_columns.join(", ")
        ));
    }
    if !plan.added_columns.is_empty() {
        lines
            .push(format!("columns the ALTER adds ({}): not carried back, their values are lost", plan.added_columns.join(", ")));
    }
    if !plan.not_checksummed.is_empty() {
        lines.push(format!(
            "columns whose type changes ({}): a value the old type cannot hold is not carried back; the write still \
             succeeds, and `revert` then refuses (the window can only be finished)",
            plan.not_checksummed.join(", ")
        ));
    }
    lines
}

/// The run's swap: without a window, [`cutover::cut_over`]; with one, prepare the reverse capture
/// ([`Dialect::revert_prepare`], retried like DDL), then swap with it under the cut-over
/// controller. If no attempt swaps, what the preparation created is removed before returning.
pub async fn cut_over<D: Dialect>(d: &D, plan: &Plan, cfg: &MigrationConfig, cancel: &CancellationToken) -> Result<CutOverStats> {
    let Some(window) = cfg.revert_window else { return cutover::cut_over(d, plan, &cfg.cut_over, cancel).await };
    // Recorded before the swap (a run killed right after it still has an end), and counted
    // again from the swap once it happened ([`after_swap`]).
    let until = until_from_now(window);
    let ddl = &cfg.ddl;
    let prepared = async {
        // The window's end in the checkpoint row (written by the run at each phase; a run
        // without one gets a fresh row), then the dialect's preparation.
        let mut ckpt = d.checkpoint_read(&plan.names).await?.unwrap_or_else(|| Checkpoint::new(plan, d.dialect_name()));
        ckpt.phase = Phase::CutOver;
        ckpt.revert_until = Some(until.clone());
        d.checkpoint_write(&plan.names, &ckpt).await?;
        with_retry("preparing the revert window", ddl.retry_policy(), cancel, || d.revert_prepare(plan, &until, ddl.lock_timeout))
            .await
    }
    .await;
    let swapped = match prepared {
        Ok(()) => {
            cutover::attempts(d, &plan.names, &cfg.cut_over, cancel, "cut-over", |lock_timeout| async move {
                crate::capture::verify(d, plan).await?;
                d.cut_over_with_revert(plan, lock_timeout).await
            })
            .await
        }
        Err(e) => Err(e),
    };
    if swapped.is_err() {
        let never = CancellationToken::new();
        if let Err(e) = with_retry("removing the revert window's preparation", ddl.retry_policy(), &never, || {
            d.revert_unprepare(&plan.names, ddl.lock_timeout)
        })
        .await
        {
            tracing::warn!(error = %e, "could not remove the revert window's preparation");
        }
    }
    swapped
}

/// `now + window` as RFC 3339 text (UTC).
fn until_from_now(window: Duration) -> String {
    let span = jiff::SignedDuration::try_from(window).unwrap_or(jiff::SignedDuration::MAX);
    jiff::Timestamp::now().checked_add(span).unwrap_or(jiff::Timestamp::MAX).to_string()
}

/// After a swap with a revert window (instead of [`crate::cleanup::after_swap`]): drop the
/// heartbeat table, let the dialect drop what the swap no longer needs and record the window as
/// open with its end counted from now. The old table stays. Problems become warnings.
pub async fn after_swap<D: Dialect>(d: &D, plan: &Plan, undo: &Undo, cfg: &MigrationConfig) -> (AfterSwap, Option<String>) {
    let names = &plan.names;
    let mut warnings = Vec::new();
    if undo.heartbeat {
        if let Err(e) = d.drop_table(&names.heartbeat, cfg.ddl.lock_timeout).await {
            warnings.push(format!("{} could not be dropped: {e}; drop it with DROP TABLE", names.heartbeat));
        }
    }
    let never = CancellationToken::new();
    let until = until_from_now(cfg.revert_window.unwrap_or_default());
    let opened = with_retry("opening the revert window", cfg.ddl.retry_policy(), &never, || {
        d.revert_window_opened(plan, &until, cfg.ddl.lock_timeout)
    })
    .await;
    if let Err(e) = opened {
        warnings.push(format!(
            "the revert window of {} could not be fully set up: {e}; `shadowswap finish` for this table closes it",
            names.table
        ));
    }
    for w in &warnings {
        tracing::warn!(target: LOG_TARGET, "{w}");
    }
    let until = d.revert_state(names).await.ok().flatten().and_then(|s| s.revert_until);
    (AfterSwap { old_table_kept: Some(names.old.clone()), warnings }, until)
}

/// How the wait for the revert window ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WindowEnd {
    /// The window ended and this process closed it ([`finish`]).
    Expired,
    /// Another process ran `shadowswap revert`: the table has its old definition again.
    Reverted,
    /// Another process ran `shadowswap finish`.
    Finished,
    /// Interrupted (Ctrl-C / SIGTERM): the window stays open until `finish` or `revert`.
    LeftOpen {
        /// The window's end (RFC 3339).
        until: String,
    },
    /// The window ended but closing it failed: what to run.
    FinishFailed(String),
}

/// Wait out the revert window of a run that swapped `plan`'s table, without holding the advisory
/// lock: poll the checkpoint every `cfg.cut_over.poll_interval`; a `revert`/`finish` from another
/// process ends the wait; at the end of the window run [`finish`]; cancellation leaves it open.
/// The progress shows [`Phase::RevertWindow`] and what it waits for.
pub async fn wait<D: Dialect>(
    d: &D,
    plan: &Plan,
    until: &str,
    cfg: &MigrationConfig,
    progress: &watch::Sender<Progress>,
    cancel: &CancellationToken,
) -> WindowEnd {
    let names = &plan.names;
    let table = &names.table;
    tracing::info!(
        target: LOG_TARGET,
        "revert window open until {until}; `shadowswap revert --dsn … --table {table}` to swap back, `shadowswap finish \
         --dsn … --table {table}` to close it now"
    );
    progress.send_modify(|p| p.waiting_for = Some(format!("revert window until {until}")));
    let end: Option<jiff::Timestamp> = until.parse().ok();
    let mut read_failed = false;
    loop {
        match d.revert_state(names).await {
            Ok(Some(s)) if s.is_open() => read_failed = false,
            Ok(_) => return closed_elsewhere(d, plan).await,
            Err(e) => {
                if !read_failed {
                    tracing::warn!(error = %e, "cannot read the revert window's state; retrying");
                }
                read_failed = true;
            }
        }
        if end.is_none_or(|e| jiff::Timestamp::now() >= e) {
            tracing::info!(target: LOG_TARGET, "the revert window of {table} ended; closing it");
            let never = CancellationToken::new();
            return match finish(d, table, &cfg.ddl, true, &never).await {
                Ok(r) if r.executed => WindowEnd::Expired,
                Ok(_) => closed_elsewhere(d, plan).await,
                Err(Error::AnotherRun(_)) => closed_elsewhere(d, plan).await,
                Err(e) => {
                    WindowEnd::FinishFailed(format!("closing the revert window failed: {e}; run `shadowswap finish` for {table}"))
                }
            };
        }
        tokio::select! {
            _ = tokio::time::sleep(cfg.cut_over.poll_interval) => {}
            _ = cancel.cancelled() => {
                tracing::warn!(
                    target: LOG_TARGET,
                    "interrupted: the revert window of {table} stays open until {until}; `shadowswap finish` or \
                     `shadowswap revert` for this table closes it (nothing closes it at its end now)"
                );
                return WindowEnd::LeftOpen { until: until.to_string() };
            }
        }
    }
}

/// Another process closed the window: tell a revert from a finish by the table's columns.
async fn closed_elsewhere<D: Dialect>(d: &D, plan: &Plan) -> WindowEnd {
    // A revert or finish from another process may still be working: let it finish first.
    for _ in 0..50 {
        match d.acquire_run_lock(&plan.names).await {
            Ok(lock) => {
                let _ = lock.release().await;
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
    match d.inspect(&plan.names.table).await {
        Ok(shape) if shape.columns == plan.original.columns => WindowEnd::Reverted,
        _ => WindowEnd::Finished,
    }
}

/// What `revert` or `finish` did (or, as a dry run, would do).
#[derive(Debug, Clone, Default)]
pub struct WindowReport {
    /// The table.
    pub table: Option<TableRef>,
    /// Whether it ran (false: dry run, or nothing to do).
    pub executed: bool,
    /// The window's end, from the checkpoint.
    pub until: Option<String>,
    /// The statements it runs (dry run) or ran.
    pub sql: Vec<String>,
    /// The swap back's figures (`revert` only).
    pub cut_over: Option<CutOverStats>,
}

/// The open window of `table`, or the refusal saying there is none.
async fn open_state<D: Dialect>(d: &D, names: &Names) -> Result<RevertState> {
    match d.revert_state(names).await? {
        Some(s) if s.is_open() => Ok(s),
        Some(s) => Err(Error::refused(format!(
            "{} has no open revert window (its checkpoint is in phase {}); nothing to do",
            names.table, s.phase
        ))),
        None => Err(Error::refused(format!(
            "{} has no revert window (no checkpoint {}); it was finished or reverted already, or the run had no \
             --revert-window",
            names.table, names.checkpoint
        ))),
    }
}

/// `shadowswap revert`: swap the old table back in, under the cut-over controller (`cfg`: lock
/// timeout, blocker wait, retries), then drop the new table and the checkpoint. Without
/// `execute`, a dry run: checks and the SQL. Refuses when the reverse capture recorded a
/// failure (`revert_broken`). Takes the table's advisory lock.
pub async fn revert<D: Dialect>(
    d: &D,
    table: &TableRef,
    cfg: &CutOverConfig,
    ddl: &DdlConfig,
    execute: bool,
    cancel: &CancellationToken,
) -> Result<WindowReport> {
    let names = d.names(table);
    let lock = d.acquire_run_lock(&names).await?;
    let r = async {
        let state = open_state(d, &names).await?;
        if let Some(why) = &state.revert_broken {
            return Err(broken_refusal(table, why));
        }
        let mut report = WindowReport {
            table: Some(table.clone()),
            until: state.revert_until.clone(),
            sql: d.revert_swap_sql(&names),
            ..WindowReport::default()
        };
        if !execute {
            return Ok(report);
        }
        let stats = cutover::attempts(d, &names, cfg, cancel, "revert", |lock_timeout| {
            let names = &names;
            async move { d.revert_swap(names, lock_timeout).await }
        })
        .await?;
        tracing::info!(target: LOG_TARGET, attempts = stats.attempts, writes_blocked_ms = stats.swap_time.as_millis() as u64, "swapped back");
        let never = CancellationToken::new();
        with_retry("dropping the new table after the revert", ddl.retry_policy(), &never, || {
            d.revert_cleanup(&names, ddl.lock_timeout)
        })
        .await
        .map_err(|e| {
            Error::refused(format!(
                "{table} was swapped back, but removing the new table ({}) failed: {e}; drop it with DROP TABLE",
                names.shadow
            ))
        })?;
        report.executed = true;
        report.cut_over = Some(stats);
        Ok(report)
    }
    .await;
    let _ = lock.release().await;
    r
}

/// `shadowswap finish` (and the window's end): drop the reverse capture, then the old table and
/// the checkpoint; the new table stays. Without `execute`, a dry run. Takes the advisory lock;
/// `_cancel` is accepted for symmetry with [`revert`] (the drops are never interrupted).
pub async fn finish<D: Dialect>(
    d: &D,
    table: &TableRef,
    ddl: &DdlConfig,
    execute: bool,
    _cancel: &CancellationToken,
) -> Result<WindowReport> {
    let names = d.names(table);
    let lock = d.acquire_run_lock(&names).await?;
    let r = async {
        let state = open_state(d, &names).await?;
        let mut report = WindowReport {
            table: Some(table.clone()),
            until: state.revert_until.clone(),
            sql: d.revert_finish_sql(&names),
            ..WindowReport::default()
        };
        if !execute {
            return Ok(report);
        }
        let never = CancellationToken::new();
        with_retry("closing the revert window", ddl.retry_policy(), &never, || d.revert_finish(&names, ddl.lock_timeout)).await?;
        report.executed = true;
        Ok(report)
    }
    .await;
    let _ = lock.release().await;
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_is_open_only_in_its_phase() {
        let mut s = RevertState {
            phase: "revert window".into(),
            alter: "MODIFY v VARCHAR(50)".into(),
            revert_until: Some("2030-01-01T00:00:00Z".into()),
            revert_broken: None,
        };
        assert!(s.is_open());
        assert_eq!(s.until().unwrap().to_string(), "2030-01-01T00:00:00Z");
        s.phase = "cut-over".into();
        assert!(!s.is_open());
    }

    #[test]
    fn the_window_end_is_rfc3339() {
        let t: jiff::Timestamp = until_from_now(Duration::from_secs(60)).parse().unwrap();
        let d = t.duration_since(jiff::Timestamp::now());
        assert!(d > jiff::SignedDuration::from_secs(50) && d <= jiff::SignedDuration::from_secs(60), "{d:?}");
    }

    #[test]
    fn a_broken_window_names_finish() {
        let e = broken_refusal(&TableRef::new("d", "t"), "insert: Data too long").to_string();
        assert!(e.contains("a revert would lose them") && e.contains("shadowswap finish"), "{e}");
    }
}
