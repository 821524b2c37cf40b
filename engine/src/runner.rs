//! The runner: the phase script of one migration. Each phase has its own module; this one
//! calls them in order, publishes the phase, owns the background tasks and the undo record:
//!
//! [`preflight`] → shadow ([`Dialect::create_shadow`]) → [`capture`] → [`backfill`] (paused by the
//! [`throttle`]) → [`checksum`] → [`cutover`] (the wait, then the swap) → [`cleanup`](mod@cleanup).
//!
//! Any failure before the swap undoes what the run created ([`crate::cleanup::undo_steps`]);
//! after the swap nothing is undone and problems become warnings in the [`Summary`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::backfill::{self, BackfillStats};
use crate::capture;
use crate::checksum;
use crate::cleanup::{self, AfterSwap, Undo};
use crate::config::MigrationConfig;
use crate::cutover::{self, CutOverStats};
use crate::dialect::Dialect;
use crate::error::{Error, Result};
use crate::model::TableRef;
use crate::names::Names;
use crate::phase::Phase;
use crate::preflight::{self, plan::Plan};
use crate::progress::{self, Progress};
use crate::revert;
use crate::throttle::{self, Throttle};

/// `shadowswap cleanup` and its report, at their old paths (they live in [`crate::cleanup`](mod@crate::cleanup)).
pub use crate::cleanup::{cleanup, CleanupReport};

/// How a run ended successfully.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // one value per run; boxing buys nothing
pub enum Outcome {
    /// Dry run: every preflight check passed; this is what would run.
    DryRun(Box<Plan>),
    /// The table was swapped.
    Swapped(Summary),
}

/// Figures of a completed migration.
#[derive(Debug, Clone)]
pub struct Summary {
    /// The migrated table.
    pub table: TableRef,
    /// The old table, when it still exists: kept on request, or because dropping it failed
    /// (then [`Summary::warnings`] says why and what to run).
    pub old_table_kept: Option<TableRef>,
    /// Backfill figures.
    pub backfill: BackfillStats,
    /// Rows compared by the checksum (`None` when disabled).
    pub rows_checksummed: Option<u64>,
    /// Cut-over figures (for an in-place ALTER: its attempts and duration).
    pub cut_over: CutOverStats,
    /// True when the ALTER was applied in place (metadata only) instead of copying.
    pub in_place: bool,
    /// Wall time of the whole run.
    pub elapsed: Duration,
    /// Problems after the swap that need the operator (e.g. a trigger that could not be dropped).
    pub warnings: Vec<String>,
    /// With `--revert-window`: the window's end (RFC 3339) and how the wait for it ended.
    pub revert_window: Option<(String, revert::WindowEnd)>,
}

/// Drives one migration of one table. See the module docs.
pub struct Runner<D: Dialect> {
    dialect: Arc<D>,
    replicas: Vec<Arc<D>>,
    config: MigrationConfig,
    cancel: CancellationToken,
    progress: watch::Sender<Progress>,
    /// The plan of a run that opened a revert window, for the wait after the lock is released.
    window_plan: std::sync::Mutex<Option<Plan>>,
}

impl<D: Dialect> Runner<D> {
    /// A runner for `dialect` with `config`.
    pub fn new(dialect: Arc<D>, config: MigrationConfig) -> Self {
        let (progress, _) = watch::channel(Progress::default());
        Self {
            dialect,
            replicas: Vec::new(),
            config,
            cancel: CancellationToken::new(),
            progress,
            window_plan: std::sync::Mutex::new(None),
        }
    }

    /// Measure replica lag on these replicas (each a connection to a replica of the primary):
    /// copying pauses while any lags more than `config.throttle.max_lag` or cannot be reached,
    /// and the cut-over waits until all are within it.
    pub fn with_replicas(mut self, replicas: Vec<Arc<D>>) -> Self {
        self.replicas = replicas;
        self
    }

    /// Cancel the run: it stops at the next safe point, undoes what it created, and fails with
    /// [`Error::Cancelled`].
    pub fn cancel_token(&self) -> CancellationToken {
        self.cancel.clone()
    }

    /// Progress snapshots, updated as the run goes.
    pub fn progress(&self) -> watch::Receiver<Progress> {
        self.progress.subscribe()
    }

    fn set_phase(&self, next: Phase) {
        progress::set_phase(&self.progress, next);
    }

    /// Run the migration of `table` with the ALTER `spec`. With `config.execute == false` this is
    /// the dry run: preflight only, nothing created.
    ///
    /// Errors: preflight refusals ([`Error::Refused`], [`Error::NoSuchTable`], ...), and any failure
    /// before the swap, after which everything the run created has been removed. When that
    /// removal itself fails: [`Error::CleanupIncomplete`].
    pub async fn run(&self, table: &TableRef, spec: &str) -> Result<Outcome> {
        let started = Instant::now();
        let d = &*self.dialect;
        let names = d.names(table);
        let lock = d.acquire_run_lock(&names).await?;
        let result = self.run_locked(&names, spec, started).await;
        if let Err(e) = lock.release().await {
            tracing::warn!(error = %e, "releasing the advisory lock failed (it is released when the session closes)");
        }
        // The revert window is waited out without the advisory lock (`revert`/`finish` take it).
        match result {
            Ok(Outcome::Swapped(s)) if s.revert_window.is_some() => self.wait_revert_window(s).await,
            other => other,
        }
    }

    async fn run_locked(&self, names: &Names, spec: &str, started: Instant) -> Result<Outcome> {
        let plan = self.preflight(names, spec).await?;
        if !self.config.execute {
            return Ok(Outcome::DryRun(Box::new(plan)));
        }
        if self.config.attempt_instant_ddl {
            match plan.metadata_only {
                Some(true) => return self.alter_in_place(&plan, started).await.map(Outcome::Swapped),
                Some(false) => tracing::info!("--attempt-instant-ddl: the ALTER is not metadata-only here; copying"),
                None => {
                    tracing::info!("--attempt-instant-ddl: this server cannot tell whether the ALTER is metadata-only; copying")
                }
            }
        }
        let mut undo = Undo::default();
        match self.migrate(&plan, &mut undo, started).await {
            Ok(summary) => Ok(Outcome::Swapped(summary)),
            Err(cause) => {
                self.set_phase(Phase::Aborting);
                tracing::error!(error = %cause, "run failed before the swap; removing what it created");
                let undone = cleanup::undo_steps(&*self.dialect, &plan.names, &undo, &self.config.ddl).await;
                self.set_phase(Phase::Failed);
                match undone {
                    Ok(()) => Err(cause),
                    Err(leftover) => Err(Error::CleanupIncomplete { cause: Box::new(cause), leftover }),
                }
            }
        }
    }

    /// Every check that changes nothing, in order, and the plan (see [`crate::preflight`]).
    pub async fn preflight(&self, names: &Names, spec: &str) -> Result<Plan> {
        revert::open_window_refusal(&*self.dialect, names).await?;
        let plan = preflight::run(&*self.dialect, names, spec, &self.config).await?;
        revert::refusal(&*self.dialect, &plan, &self.config)?;
        self.progress.send_modify(|p| p.rows_estimated = plan.estimated_rows());
        Ok(plan)
    }

    /// The phases after preflight, up to and including the cleanup after the swap. Every step
    /// that creates something records it in `undo` first.
    async fn migrate(&self, plan: &Plan, undo: &mut Undo, started: Instant) -> Result<Summary> {
        let d = &*self.dialect;
        let cfg = &self.config;

        self.set_phase(Phase::CreateShadow);
        undo.shadow = true;
        d.create_shadow(plan, cfg.ddl.lock_timeout).await?;

        self.set_phase(Phase::InstallCapture);
        undo.capture = true;
        capture::install(d, plan, &cfg.ddl, &self.cancel).await?;

        let (mut throttle, tasks) = throttle::start(
            &self.dialect,
            &self.replicas,
            &plan.names,
            &cfg.throttle,
            &self.progress,
            self.cancel.child_token(),
            undo,
        )
        .await?;
        let swapped = self.copy_verify_swap(plan, &mut throttle).await;
        tasks.shutdown().await;
        let (backfill, rows_checksummed, cut_over) = swapped?;
        if let Err(e) = d.after_cut_over(plan).await {
            tracing::warn!(error = %e, "after the swap");
        }

        // The swap happened: from here on nothing is undone, problems become warnings.
        let mut revert_window = None;
        let AfterSwap { old_table_kept, warnings } = if cfg.revert_window.is_some() {
            self.set_phase(Phase::RevertWindow);
            let (after, until) = revert::after_swap(d, plan, undo, cfg).await;
            revert_window = until.map(|u| (u, revert::WindowEnd::Expired));
            *self.window_plan.lock().expect("window plan") = Some(plan.clone());
            after
        } else {
            self.set_phase(Phase::Cleanup);
            let after = cleanup::after_swap(d, plan, undo, cfg).await;
            self.set_phase(Phase::Done);
            after
        };
        Ok(Summary {
            table: plan.names.table.clone(),
            old_table_kept,
            backfill,
            rows_checksummed,
            cut_over,
            in_place: false,
            elapsed: started.elapsed(),
            warnings,
            revert_window,
        })
    }

    /// Wait out the revert window after the swap (see [`revert::wait`]), with the plan the run
    /// kept for it.
    async fn wait_revert_window(&self, mut summary: Summary) -> Result<Outcome> {
        let d = &*self.dialect;
        let Some((until, _)) = summary.revert_window.take() else { return Ok(Outcome::Swapped(summary)) };
        let plan = self.window_plan.lock().expect("window plan").take();
        let Some(plan) = plan else { return Ok(Outcome::Swapped(summary)) };
        let end = revert::wait(d, &plan, &until, &self.config, &self.progress, &self.cancel).await;
        match &end {
            revert::WindowEnd::Expired | revert::WindowEnd::Finished => {
                summary.old_table_kept = None;
                self.set_phase(Phase::Cleanup);
                self.set_phase(Phase::Done);
            }
            revert::WindowEnd::Reverted => {
                summary.old_table_kept = None;
                summary.warnings.push(format!(
                    "the swap was reverted by `shadowswap revert`: {} has its definition before the ALTER again",
                    summary.table
                ));
            }
            revert::WindowEnd::LeftOpen { .. } => {}
            revert::WindowEnd::FinishFailed(w) => summary.warnings.push(w.clone()),
        }
        summary.revert_window = Some((until, end));
        Ok(Outcome::Swapped(summary))
    }

    /// Backfill, checksum, wait for the cut-over conditions, swap.
    async fn copy_verify_swap(&self, plan: &Plan, throttle: &mut Throttle) -> Result<(BackfillStats, Option<u64>, CutOverStats)> {
        let d = &*self.dialect;
        let cfg = &self.config;
        self.set_phase(Phase::Backfill);
        let backfill = backfill::run(d, plan, &cfg.copy, &self.cancel, &self.progress, throttle).await?;
        tracing::info!(
            rows = backfill.rows,
            chunks = backfill.chunks,
            seconds = backfill.elapsed.as_secs_f64(),
            "backfill complete"
        );
        // A TRUNCATE or DDL during the backfill: stop now rather than checksum or wait for nothing.
        capture::verify(d, plan).await?;

        let rows_checksummed = if cfg.checksum.enabled {
            self.set_phase(Phase::Checksum);
            let rows = checksum::run(d, plan, &cfg.checksum, &cfg.copy, &self.cancel, &self.progress, throttle).await?;
            tracing::info!(rows, "checksum matches");
            Some(rows)
        } else {
            None
        };

        cutover::wait_until_ready(&cfg.cut_over, throttle, &self.progress, &self.cancel).await?;

        self.set_phase(Phase::CutOver);
        d.prepare_cut_over(plan).await?;
        let cut_over = revert::cut_over(d, plan, cfg, &self.cancel).await?;
        tracing::info!(attempts = cut_over.attempts, writes_blocked_ms = cut_over.swap_time.as_millis() as u64, "tables swapped");
        Ok((backfill, rows_checksummed, cut_over))
    }

    /// The `--attempt-instant-ddl` path (see [`cutover::alter_in_place`]): nothing is created, so
    /// nothing needs undoing.
    async fn alter_in_place(&self, plan: &Plan, started: Instant) -> Result<Summary> {
        self.set_phase(Phase::InPlace);
        let cut_over = match cutover::alter_in_place(&*self.dialect, plan, &self.config.cut_over, &self.cancel).await {
            Ok(stats) => stats,
            Err(e) => {
                self.set_phase(Phase::Failed);
                return Err(e);
            }
        };
        self.set_phase(Phase::Done);
        Ok(Summary {
            table: plan.names.table.clone(),
            old_table_kept: None,
            backfill: BackfillStats::default(),
            rows_checksummed: None,
            cut_over,
            in_place: true,
            elapsed: started.elapsed(),
            warnings: Vec::new(),
            revert_window: None,
        })
    }
}
