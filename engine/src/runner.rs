//! The runner: the phase script of one migration. Each phase has its own module; this one
//! calls them in order, publishes the phase, owns the background tasks and the undo record:
//!
//! [`preflight`] → shadow ([`Dialect::create_shadow`]) → [`capture`] → [`backfill`] (paused by the
//! [`throttle`]) → deferred indexes ([`Dialect::build_deferred_indexes`]) → [`checksum`] → [`cutover`] (the wait, then the swap) → [`cleanup`](mod@cleanup).
//!
//! Any failure before the swap undoes what the run created ([`crate::cleanup::undo_steps`]);
//! after the swap nothing is undone and problems become warnings in the [`Summary`].
//!
//! Every phase is recorded in the [checkpoint](crate::checkpoint) before it starts, and the
//! backfill advances it chunk by chunk. Running the same ALTER again after a crash **resumes**
//! ([`Runner::run`] reads the checkpoint first); a dropped connection is not a failure either:
//! the run reconnects ([`crate::config::ReconnectConfig`]) and continues from the checkpoint, and
//! only when the server stays away does it stop, leaving everything for a resume.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{watch, Mutex};
use tokio_util::sync::CancellationToken;

use crate::backfill::{self, BackfillStats};
use crate::capture;
use crate::checkpoint::{Checkpoint, Resume};
use crate::checksum;
use crate::cleanup::{self, AfterSwap, Undo};
use crate::config::{ChecksumConfig, MigrationConfig};
use crate::cutover::{self, CutOverStats};
use crate::dialect::{Dialect, RunLock};
use crate::error::{Error, Result};
use crate::fault::{FaultReport, Injector, Rehearsal, RunFacts};
use crate::model::TableRef;
use crate::names::Names;
use crate::phase::Phase;
use crate::preflight::{self, plan::Plan};
use crate::progress::{self, Progress};
use crate::retry;
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
    /// Wall time of the whole run (of this process, when it resumed an earlier one).
    pub elapsed: Duration,
    /// Set when this run resumed an interrupted one: the phase it stopped in. The rows that run
    /// had copied are [`BackfillStats::rows_before`].
    pub resumed_from: Option<Phase>,
    /// Times the connection broke and the run reconnected and continued.
    pub reconnects: u32,
    /// Problems after the swap that need the operator (e.g. a trigger that could not be dropped).
    pub warnings: Vec<String>,
    /// With `--revert-window`: the window's end (RFC 3339) and how the wait for it ended.
    pub revert_window: Option<(String, revert::WindowEnd)>,
    /// The injected faults (`--inject-fault`) and how the run met each; empty without them.
    pub faults: Vec<FaultReport>,
}

/// Drives one migration of one table. See the module docs.
pub struct Runner<D: Dialect> {
    dialect: Arc<D>,
    replicas: Vec<Arc<D>>,
    config: MigrationConfig,
    cancel: CancellationToken,
    /// Cancelled by the lock keeper when another run took the advisory lock.
    lock_lost: CancellationToken,
    progress: watch::Sender<Progress>,
    /// The plan of a run that opened a revert window, for the wait after the lock is released.
    window_plan: std::sync::Mutex<Option<Plan>>,
    faults: Injector,
}

/// The run's advisory lock, shared by the run and its lock keeper.
type SharedLock = Arc<Mutex<Box<dyn RunLock>>>;

impl<D: Dialect> Runner<D> {
    /// A runner for `dialect` with `config`.
    pub fn new(dialect: Arc<D>, config: MigrationConfig) -> Self {
        let (progress, _) = watch::channel(Progress::default());
        let faults = Injector::new(&config.faults, dialect.clone() as Arc<dyn Rehearsal>, Vec::new());
        Self {
            faults,
            dialect,
            replicas: Vec::new(),
            config,
            cancel: CancellationToken::new(),
            lock_lost: CancellationToken::new(),
            progress,
            window_plan: std::sync::Mutex::new(None),
        }
    }

    /// Measure replica lag on these replicas (each a connection to a replica of the primary):
    /// copying pauses while any lags more than `config.throttle.max_lag` or cannot be reached,
    /// and the cut-over waits until all are within it.
    pub fn with_replicas(mut self, replicas: Vec<Arc<D>>) -> Self {
        self.faults.set_replicas(replicas.iter().map(|r| r.clone() as Arc<dyn Rehearsal>).collect());
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

    /// Fire the faults injected at `phase`'s entry (`--inject-fault`; nothing without it).
    async fn inject(&self, phase: Phase, names: &Names) {
        self.faults.enter(phase, names, &self.progress.subscribe()).await;
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
        let lock = Arc::new(Mutex::new(d.acquire_run_lock(&names).await?));
        let keeper = self.config.execute.then(|| self.keep_lock(&names, &lock));
        self.faults.start(&names, self.progress.subscribe());
        let mut result = self.run_locked(&names, spec, started, &lock).await;
        let facts = match &result {
            Ok(Outcome::Swapped(s)) => RunFacts {
                swapped: true,
                cut_over_attempts: s.cut_over.attempts,
                writes_blocked: s.cut_over.swap_time,
                rows_checksummed: s.rows_checksummed,
                reconnects: s.reconnects,
                resumed_from: s.resumed_from,
                lock_timeout: self.config.cut_over.lock_timeout,
            },
            _ => RunFacts::default(),
        };
        let reports = self.faults.finish(&facts).await;
        if let Ok(Outcome::Swapped(s)) = &mut result {
            s.faults = reports;
        }
        if let Some((stop, task)) = keeper {
            stop.cancel();
            let _ = task.await;
        }
        if self.lock_lost.is_cancelled() && result.is_err() {
            result = Err(Error::LockLost(names.table.clone()));
        }
        let lock = Arc::into_inner(lock).expect("the lock keeper has ended").into_inner();
        if let Err(e) = lock.release().await {
            tracing::warn!(error = %e, "releasing the advisory lock failed (it is released when the session closes)");
        }
        // The revert window is waited out without the advisory lock (`revert`/`finish` take it).
        match result {
            Ok(Outcome::Swapped(s)) if s.revert_window.is_some() => self.wait_revert_window(s).await,
            other => other,
        }
    }

    /// The lock keeper: every `config.reconnect.lock_check` it checks that the advisory lock's
    /// session is alive (which also keeps it from looking idle to a proxy that resets idle
    /// sessions) and takes the lock again on a new session when it was lost. When another run
    /// took it meanwhile, this run stops at its next safe point without removing anything: the
    /// other run owns the table's shadow now ([`Error::LockLost`]).
    fn keep_lock(&self, names: &Names, lock: &SharedLock) -> (CancellationToken, tokio::task::JoinHandle<()>) {
        let stop = CancellationToken::new();
        let (d, names, lock, every) = (self.dialect.clone(), names.clone(), lock.clone(), self.config.reconnect.lock_check);
        let (cancel, lost, stopped) = (self.cancel.clone(), self.lock_lost.clone(), stop.clone());
        let task = tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(every) => {}
                    _ = stopped.cancelled() => return,
                }
                let mut held = lock.lock().await;
                if let Ok(true) = held.is_held().await {
                    continue;
                }
                match d.acquire_run_lock(&names).await {
                    Ok(fresh) => {
                        *held = fresh;
                        tracing::warn!(target: progress::LOG_TARGET, "the advisory lock's session was lost; took the lock again");
                    }
                    Err(Error::AnotherRun(_)) => {
                        tracing::error!(target: progress::LOG_TARGET, "another shadowswap run took the advisory lock; stopping without removing anything");
                        lost.cancel();
                        cancel.cancel();
                        return;
                    }
                    // The server is away: the run's own reconnect takes the lock again.
                    Err(_) => {}
                }
            }
        });
        (stop, task)
    }

    async fn run_locked(&self, names: &Names, spec: &str, started: Instant, lock: &SharedLock) -> Result<Outcome> {
        let d = &*self.dialect;
        // An open revert window is not a run to resume: refuse, naming finish and revert.
        revert::open_window_refusal(d, names).await?;
        let pending = d.checkpoint_read(names).await?;
        if pending.is_some() && self.config.execute {
            // A crash fault of the same command already fired in the run this one resumes.
            self.faults.set_resumed();
        }
        self.inject(Phase::Preflight, names).await;
        if let Some(ckpt) = &pending {
            if let Some(refusal) = ckpt.refusal(&names.table, spec) {
                return Err(refusal);
            }
            if self.config.execute && self.swapped_already(names, ckpt).await? {
                return Ok(Outcome::Swapped(self.finish_after_swap(names, ckpt, started).await));
            }
        }
        let mut plan = self.preflight(names, spec, pending.is_some()).await?;
        if let Some(ckpt) = &pending {
            if let Some(refusal) = ckpt.plan_refusal(&plan, d.dialect_name()) {
                return Err(refusal);
            }
        }
        plan.checkpoint = pending.clone();
        if !self.config.execute {
            return Ok(Outcome::DryRun(Box::new(plan)));
        }
        if self.config.attempt_instant_ddl && pending.is_none() {
            match plan.metadata_only {
                Some(false) => tracing::info!("--attempt-instant-ddl: the ALTER is not metadata-only here; copying"),
                // Some(true), or None: the dialect tells by trying, changing nothing if it cannot.
                _ => match self.alter_in_place(&plan, started).await? {
                    Some(summary) => return Ok(Outcome::Swapped(summary)),
                    None => tracing::info!(
                        "--attempt-instant-ddl: the server cannot apply the ALTER without a rebuild (nothing changed); copying"
                    ),
                },
            }
        }
        let mut resume = pending;
        let mut reconnects = 0;
        loop {
            let mut broken = match self.execute(&plan, resume.take(), started).await {
                Ok(mut summary) => {
                    summary.reconnects = reconnects;
                    return Ok(Outcome::Swapped(summary));
                }
                Err(e) if e.is_connection() => e,
                Err(e) => return Err(e),
            };
            // Reconnect, then read where the run stands: the checkpoint, and whether the swap
            // happened (the connection may have broken during it). A break meanwhile starts over.
            resume = loop {
                self.reconnect(names, lock, broken).await?;
                reconnects += 1;
                let stands = async {
                    let ckpt = d.checkpoint_read(names).await?;
                    let swapped = match &ckpt {
                        Some(c) => self.swapped_already(names, c).await?,
                        None => false,
                    };
                    Ok::<_, Error>((ckpt, swapped))
                };
                match stands.await {
                    Ok((Some(ckpt), true)) => {
                        let mut summary = self.finish_after_swap(names, &ckpt, started).await;
                        summary.reconnects = reconnects;
                        return Ok(Outcome::Swapped(summary));
                    }
                    Ok((ckpt, _)) => break ckpt,
                    Err(e) if e.is_connection() => broken = e,
                    Err(e) => return Err(e),
                }
            };
        }
    }

    /// One pass of the executing run, fresh (`resume` is `None`) or from a checkpoint. A failure
    /// undoes what the run created, except a broken connection: then everything stays, for the
    /// reconnect (or a later run) to resume.
    async fn execute(&self, plan: &Plan, resume: Option<Checkpoint>, started: Instant) -> Result<Summary> {
        let d = &*self.dialect;
        let mut undo = Undo::default();
        let resume = match resume {
            Some(ckpt) if ckpt.resumes_at() == Resume::StartOver => {
                tracing::info!(
                    target: progress::LOG_TARGET,
                    phase = %ckpt.phase,
                    "the unfinished run stopped before its capture was complete; removing what it created and starting over"
                );
                cleanup::undo_steps(d, &plan.names, &Undo::all(), &self.config.ddl).await.map_err(|leftover| {
                    Error::CleanupIncomplete { cause: Box::new(Error::refused("starting over")), leftover }
                })?;
                None
            }
            other => other,
        };
        if let Some(ckpt) = &resume {
            undo = Undo::all();
            d.verify_resumable(plan).await?;
            tracing::info!(
                target: progress::LOG_TARGET,
                phase = %ckpt.phase,
                rows_copied = ckpt.rows_copied,
                rows_estimated = ckpt.rows_estimated,
                "resuming at key {}: {} of {} rows already copied",
                ckpt.low_watermark.as_deref().unwrap_or("(start)"),
                ckpt.rows_copied,
                ckpt.rows_estimated
            );
        }
        match self.migrate(plan, &mut undo, started, resume).await {
            Ok(summary) => Ok(summary),
            Err(cause) if cause.is_connection() => Err(cause),
            Err(_) if self.lock_lost.is_cancelled() => Err(Error::LockLost(plan.names.table.clone())),
            Err(cause) => {
                self.set_phase(Phase::Aborting);
                tracing::error!(error = %cause, "run failed before the swap; removing what it created");
                let undone = cleanup::undo_steps(d, &plan.names, &undo, &self.config.ddl).await;
                self.set_phase(Phase::Failed);
                match undone {
                    Ok(()) => Err(cause),
                    Err(leftover) => Err(Error::CleanupIncomplete { cause: Box::new(cause), leftover }),
                }
            }
        }
    }

    /// Wait for the server after a broken connection: retry with backoff for up to
    /// `config.reconnect.timeout`, then take the advisory lock again if its session was lost.
    /// Errors: [`Error::ConnectionLost`] after the timeout; [`Error::AnotherRun`] when another run
    /// took the lock meanwhile; [`Error::Cancelled`].
    async fn reconnect(&self, names: &Names, lock: &SharedLock, cause: Error) -> Result<()> {
        let cfg = &self.config.reconnect;
        let d = &*self.dialect;
        let mut lock = lock.lock().await;
        tracing::warn!(target: progress::LOG_TARGET, error = %cause, timeout_s = cfg.timeout.as_secs(), "lost the connection to the server; reconnecting");
        let began = Instant::now();
        let mut delay = cfg.backoff_min;
        let mut last: String;
        loop {
            match lock.is_held().await {
                Ok(true) => break,
                Ok(false) => match d.acquire_run_lock(names).await {
                    Ok(fresh) => {
                        *lock = fresh;
                        break;
                    }
                    Err(e) if e.is_connection() => last = e.to_string(),
                    Err(e) => return Err(e),
                },
                Err(e) if e.is_connection() => last = e.to_string(),
                Err(e) => return Err(e),
            }
            if began.elapsed() >= cfg.timeout {
                self.set_phase(Phase::Failed);
                return Err(Error::ConnectionLost { target: d.target(), waited_s: began.elapsed().as_secs(), last });
            }
            tokio::select! {
                _ = tokio::time::sleep(delay.min(cfg.timeout.saturating_sub(began.elapsed()))) => {}
                _ = self.cancel.cancelled() => return Err(Error::Cancelled("stopped while reconnecting".into())),
            }
            delay = (delay * 2).min(cfg.backoff_max);
        }
        tracing::info!(target: progress::LOG_TARGET, after_ms = began.elapsed().as_millis() as u64, "reconnected; continuing from the checkpoint");
        Ok(())
    }

    /// Whether the run `ckpt` records got as far as the swap: its checkpoint says so, or it was
    /// in its cut-over and the tables show the swap happened (the shadow gone, the old table
    /// present; the swap is atomic, so it is one or the other).
    async fn swapped_already(&self, names: &Names, ckpt: &Checkpoint) -> Result<bool> {
        let d = &*self.dialect;
        Ok(match ckpt.resumes_at() {
            Resume::AfterSwap => true,
            Resume::CutOverOrAfter => !d.table_exists(&names.shadow).await? && d.table_exists(&names.old).await?,
            _ => false,
        })
    }

    /// A resume that finds the swap done: the cleanup after it, as a run would have done it.
    async fn finish_after_swap(&self, names: &Names, ckpt: &Checkpoint, started: Instant) -> Summary {
        tracing::info!(target: progress::LOG_TARGET, phase = %ckpt.phase, "the unfinished run had swapped the tables; finishing its cleanup");
        self.progress.send_modify(|p| p.phase = Phase::CutOver);
        self.set_phase(Phase::Cleanup);
        let AfterSwap { old_table_kept, warnings } = cleanup::after_swap(&*self.dialect, names, &Undo::all(), &self.config).await;
        self.set_phase(Phase::Done);
        Summary {
            table: names.table.clone(),
            old_table_kept,
            backfill: BackfillStats { rows_before: ckpt.rows_copied, ..BackfillStats::default() },
            rows_checksummed: None,
            cut_over: CutOverStats::default(),
            in_place: false,
            elapsed: started.elapsed(),
            warnings,
            resumed_from: Some(ckpt.phase),
            reconnects: 0,
            revert_window: None,
            faults: Vec::new(),
        }
    }

    /// Every check that changes nothing, in order, and the plan (see [`crate::preflight`]).
    /// `resuming`: a checkpoint of the same ALTER exists (what its run created is expected).
    pub async fn preflight(&self, names: &Names, spec: &str, resuming: bool) -> Result<Plan> {
        let plan = preflight::run(&*self.dialect, names, spec, &self.config, resuming).await?;
        revert::refusal(&*self.dialect, &plan, &self.config)?;
        self.progress.send_modify(|p| p.rows_estimated = plan.estimated_rows());
        Ok(plan)
    }

    /// Record `phase` in the checkpoint, then publish it.
    async fn enter(&self, plan: &Plan, ckpt: &mut Checkpoint, phase: Phase) -> Result<()> {
        ckpt.phase = phase;
        self.dialect.checkpoint_write(&plan.names, ckpt).await?;
        self.set_phase(phase);
        self.inject(phase, &plan.names).await;
        Ok(())
    }

    /// The phases after preflight, up to and including the cleanup after the swap, fresh or
    /// from `resume`. Every step that creates something records it in `undo` (and the phase in
    /// the checkpoint) first.
    async fn migrate(&self, plan: &Plan, undo: &mut Undo, started: Instant, resume: Option<Checkpoint>) -> Result<Summary> {
        let d = &*self.dialect;
        let cfg = &self.config;
        let resumed_from = resume.as_ref().map(|c| c.phase);
        let mut ckpt = match resume {
            Some(ckpt) => {
                // Published as the phase to redo: the backfill, or the checksum (a run past it
                // goes on to the wait and the cut-over from there).
                self.progress.send_modify(|p| {
                    p.phase = ckpt.phase.min(Phase::Checksum).max(Phase::Backfill);
                    p.rows_copied = ckpt.rows_copied;
                });
                ckpt
            }
            None => {
                let mut ckpt = Checkpoint::new(plan, d.dialect_name());
                undo.checkpoint = true;
                undo.shadow = true;
                self.enter(plan, &mut ckpt, Phase::CreateShadow).await?;
                d.create_shadow(plan, cfg.ddl.lock_timeout).await?;

                undo.capture = true;
                self.enter(plan, &mut ckpt, Phase::InstallCapture).await?;
                capture::install(d, plan, &cfg.ddl, &self.cancel).await?;
                ckpt
            }
        };

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
        let swapped = self.copy_verify_swap(plan, &mut throttle, &mut ckpt).await;
        tasks.shutdown().await;
        let (backfill, rows_checksummed, cut_over) = swapped?;
        if let Err(e) = d.after_cut_over(plan).await {
            tracing::warn!(error = %e, "after the swap");
        }

        // The swap happened: from here on nothing is undone, problems become warnings.
        let mut revert_window = None;
        let AfterSwap { old_table_kept, warnings } = if cfg.revert_window.is_some() {
            // The old table and the checkpoint stay for the window (see crate::revert).
            self.set_phase(Phase::RevertWindow);
            let (after, until) = revert::after_swap(d, plan, undo, cfg).await;
            revert_window = until.map(|u| (u, revert::WindowEnd::Expired));
            *self.window_plan.lock().expect("window plan") = Some(plan.clone());
            after
        } else {
            ckpt.phase = Phase::Cleanup;
            if let Err(e) = d.checkpoint_write(&plan.names, &ckpt).await {
                tracing::warn!(error = %e, "recording the swap in the checkpoint");
            }
            self.set_phase(Phase::Cleanup);
            self.inject(Phase::Cleanup, &plan.names).await;
            let after = cleanup::after_swap(d, &plan.names, undo, cfg).await;
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
            resumed_from,
            reconnects: 0,
            revert_window,
            faults: Vec::new(),
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
    /// A resumed run skips the phases its checkpoint is past: a checkpoint in `Checksum` had
    /// finished its backfill, one in `Postponed` or `CutOver` its checksum too.
    async fn copy_verify_swap(
        &self,
        plan: &Plan,
        throttle: &mut Throttle,
        ckpt: &mut Checkpoint,
    ) -> Result<(BackfillStats, Option<u64>, CutOverStats)> {
        let d = &*self.dialect;
        let cfg = &self.config;
        let mut backfill = BackfillStats { rows_before: ckpt.rows_copied, ..BackfillStats::default() };
        if ckpt.phase <= Phase::Backfill {
            self.set_phase(Phase::Backfill);
            self.inject(Phase::Backfill, &plan.names).await;
            let early_indexes =
                backfill::EarlyIndexes { lock_timeout: cfg.cut_over.lock_timeout, policy: cfg.cut_over.retry_policy() };
            backfill =
                backfill::run(d, plan, &cfg.copy, Some(early_indexes), &self.cancel, &self.progress, throttle, ckpt).await?;
            tracing::info!(
                rows = backfill.rows,
                chunks = backfill.chunks,
                seconds = backfill.elapsed.as_secs_f64(),
                "backfill complete"
            );
        }
        // A TRUNCATE or DDL during the backfill: stop now rather than checksum or wait for nothing.
        capture::verify(d, plan).await?;

        // The secondary indexes the shadow was created without (a dialect's choice: MariaDB's
        // plain indexes), built in bulk now; each attempt bounded like a cut-over's.
        if ckpt.phase <= Phase::BuildIndexes {
            self.enter(plan, ckpt, Phase::BuildIndexes).await?;
            let lock_timeout = cfg.cut_over.lock_timeout;
            retry::with_retry("building the shadow's secondary indexes", cfg.cut_over.retry_policy(), &self.cancel, || {
                d.build_deferred_indexes(plan, lock_timeout)
            })
            .await?;
        }

        let rows_checksummed = if cfg.checksum.enabled && ckpt.phase <= Phase::Checksum {
            self.enter(plan, ckpt, Phase::Checksum).await?;
            // Writers were contending for rows as the copy ended: compare gently too.
            let ck = ChecksumConfig { gentle: backfill.ended_contended, ..cfg.checksum.clone() };
            let rows = checksum::run(d, plan, &ck, &cfg.copy, &self.cancel, &self.progress, throttle).await?;
            tracing::info!(rows, "checksum matches");
            Some(rows)
        } else {
            None
        };

        cutover::wait_until_ready(&cfg.cut_over, throttle, &self.progress, &self.cancel).await?;

        self.enter(plan, ckpt, Phase::CutOver).await?;
        d.prepare_cut_over(plan).await?;
        let cut_over = revert::cut_over(d, plan, cfg, &self.cancel).await?;
        tracing::info!(attempts = cut_over.attempts, writes_blocked_ms = cut_over.swap_time.as_millis() as u64, "tables swapped");
        Ok((backfill, rows_checksummed, cut_over))
    }

    /// The `--attempt-instant-ddl` path (see [`cutover::alter_in_place`]): nothing is created, so
    /// nothing needs undoing.
    /// `None`: the server refused to apply it in place and nothing changed (the run copies).
    async fn alter_in_place(&self, plan: &Plan, started: Instant) -> Result<Option<Summary>> {
        self.set_phase(Phase::InPlace);
        let cut_over = match cutover::alter_in_place(&*self.dialect, plan, &self.config.cut_over, &self.cancel).await {
            Ok(Some(stats)) => stats,
            Ok(None) => return Ok(None),
            Err(e) => {
                self.set_phase(Phase::Failed);
                return Err(e);
            }
        };
        self.set_phase(Phase::Done);
        Ok(Some(Summary {
            table: plan.names.table.clone(),
            old_table_kept: None,
            backfill: BackfillStats::default(),
            rows_checksummed: None,
            cut_over,
            in_place: true,
            elapsed: started.elapsed(),
            warnings: Vec::new(),
            resumed_from: None,
            reconnects: 0,
            revert_window: None,
            faults: Vec::new(),
        }))
    }
}
