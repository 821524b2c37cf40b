//! The runner: drives the phases of one migration, owns every undo step, and implements
//! `cleanup` for what a killed run left behind.
//!
//! Undo discipline: each forward step that creates something records it before it runs; on any
//! failure before the swap the recorded steps are undone in reverse (capture triggers first, so no
//! application write ever hits a trigger whose shadow is gone, then the shadow). Undo only ever
//! touches shadowswap's own names (`_<t>_new`, the triggers), never `<t>` or `_<t>_old`, so it is
//! safe to run whatever state the server is in.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::alter;
use crate::backfill::{self, BackfillStats};
use crate::checksum;
use crate::config::{DdlConfig, MigrationConfig};
use crate::cutover::{self, CutOverStats};
use crate::dialect::Dialect;
use crate::error::{Error, Result};
use crate::model::TableRef;
use crate::names::Names;
use crate::phase::Phase;
use crate::plan::Plan;
use crate::progress::Progress;
use crate::retry::{with_retry, RetryPolicy};
use crate::throttle::heartbeat::HeartbeatLog;
use crate::throttle::{self, Throttle, ThrottleState};

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
}

/// What the run has created and must undo on failure.
#[derive(Debug, Default)]
struct Undo {
    shadow: bool,
    capture: bool,
    heartbeat: bool,
}

/// Background tasks of one run (heartbeat writer, throttler): owned by the run, stopped and
/// awaited on every path.
struct Tasks {
    stop: CancellationToken,
    handles: Vec<tokio::task::JoinHandle<()>>,
}

impl Tasks {
    async fn shutdown(self) {
        self.stop.cancel();
        for h in self.handles {
            let _ = h.await;
        }
    }
}

/// Drives one migration of one table. See the module docs.
pub struct Runner<D: Dialect> {
    dialect: Arc<D>,
    replicas: Vec<Arc<D>>,
    config: MigrationConfig,
    cancel: CancellationToken,
    progress: watch::Sender<Progress>,
}

impl<D: Dialect> Runner<D> {
    /// A runner for `dialect` with `config`.
    pub fn new(dialect: Arc<D>, config: MigrationConfig) -> Self {
        let (progress, _) = watch::channel(Progress::default());
        Self { dialect, replicas: Vec::new(), config, cancel: CancellationToken::new(), progress }
    }

    /// Measure replica lag on these replicas (each a connection to a replica of the primary):
    /// copying pauses while any lags more than `config.throttle.max_lag` or cannot be reached,
    /// and the cut-over waits until all are within it.
    pub fn with_replicas(mut self, replicas: Vec<Arc<D>>) -> Self {
        self.replicas = replicas;
        self
    }

    fn throttling(&self) -> bool {
        let t = &self.config.throttle;
        !self.replicas.is_empty()
            || !t.max_load.is_empty()
            || !t.critical_load.is_empty()
            || t.throttle_query.is_some()
            || t.flag_file.is_some()
    }

    /// Start the heartbeat writer (with replicas) and the throttler (with any signal).
    async fn start_throttler(&self, plan: &Plan, undo: &mut Undo) -> Result<(Throttle, Tasks)> {
        let stop = self.cancel.child_token();
        let mut handles = Vec::new();
        if !self.throttling() {
            return Ok((Throttle::never(), Tasks { stop, handles }));
        }
        let log = Arc::new(std::sync::Mutex::new(HeartbeatLog::new(100_000)));
        if !self.replicas.is_empty() {
            undo.heartbeat = true;
            self.dialect.heartbeat_create(&plan.names).await?;
            // The first heartbeat before the first verdict, so replica lag is known from the
            // first check (otherwise it reads "lag unknown" and throttles for a moment).
            let seq = log.lock().expect("heartbeat log").next_seq();
            self.dialect.heartbeat_write(&plan.names, seq).await?;
            log.lock().expect("heartbeat log").written(seq, Instant::now());
            handles.push(tokio::spawn(throttle::write_heartbeat(
                self.dialect.clone(),
                plan.names.clone(),
                self.config.throttle.heartbeat_interval,
                log.clone(),
                stop.clone(),
            )));
        }
        // Nothing is copied before the first verdict.
        let (tx, rx) = watch::channel(ThrottleState { reason: Some("first throttle check".into()), abort: None });
        handles.push(tokio::spawn(throttle::run_throttler(
            self.dialect.clone(),
            self.replicas.clone(),
            plan.names.clone(),
            self.config.throttle.clone(),
            log,
            tx,
            self.progress.clone(),
            stop.clone(),
        )));
        Ok((Throttle::new(rx), Tasks { stop, handles }))
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
        self.progress.send_modify(|p| {
            debug_assert!(p.phase.can_move_to(next), "phase {} -> {next} is not allowed", p.phase);
            tracing::info!(from = %p.phase, to = %next, "phase");
            p.phase = next;
            p.waiting_for = None;
        });
    }

    fn ddl_policy(&self) -> RetryPolicy {
        let d = &self.config.ddl;
        RetryPolicy { retries: d.retries, min_delay: d.backoff_min, max_delay: d.backoff_max }
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
        result
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
                let undone = self.undo(&plan.names, &undo).await;
                self.set_phase(Phase::Failed);
                match undone {
                    Ok(()) => Err(cause),
                    Err(leftover) => Err(Error::CleanupIncomplete { cause: Box::new(cause), leftover }),
                }
            }
        }
    }

    /// Every check that changes nothing, and the plan.
    pub async fn preflight(&self, names: &Names, spec: &str) -> Result<Plan> {
        let d = &*self.dialect;
        let analysis = alter::analyze(spec, d.sql_dialect())?;
        let original = d.inspect(&names.table).await?;
        d.preflight(names, &original).await?;
        let altered = d.trial_alter(names, &analysis).await?;
        let mut plan = Plan::build(names.clone(), analysis, original, altered, d.rules(), self.config.approve_renamed_columns)?;
        plan.sql = d.render_sql(&plan);
        plan.metadata_only = d.metadata_only(names, &plan.analysis).await?;
        for key in &plan.new_unique_keys {
            let Some(cols) = &key.source_columns else { continue };
            if let Some(value) = d.find_duplicate(&names.table, cols).await? {
                return Err(Error::DuplicateKey { key: key.name.clone(), table: names.table.clone(), value });
            }
        }
        self.progress.send_modify(|p| p.rows_estimated = plan.estimated_rows());
        Ok(plan)
    }

    async fn migrate(&self, plan: &Plan, undo: &mut Undo, started: Instant) -> Result<Summary> {
        let d = &*self.dialect;
        let cfg = &self.config;
        let ddl = self.ddl_policy();

        self.set_phase(Phase::CreateShadow);
        undo.shadow = true;
        d.create_shadow(plan, cfg.ddl.lock_timeout).await?;

        self.set_phase(Phase::InstallCapture);
        undo.capture = true;
        with_retry("installing capture triggers", ddl, &self.cancel, || d.install_capture(plan, cfg.ddl.lock_timeout)).await?;

        let (mut throttle, tasks) = self.start_throttler(plan, undo).await?;
        let swapped = self.copy_verify_swap(plan, &mut throttle).await;
        tasks.shutdown().await;
        let (backfill, rows_checksummed, cut_over) = swapped?;
        if let Err(e) = d.after_cut_over(plan).await {
            tracing::warn!(error = %e, "after the swap");
        }

        // The swap happened: from here on nothing is undone, problems become warnings.
        self.set_phase(Phase::Cleanup);
        let mut warnings = Vec::new();
        let never_cancelled = CancellationToken::new();
        if undo.heartbeat {
            if let Err(e) = d.drop_table(&plan.names.heartbeat, cfg.ddl.lock_timeout).await {
                warnings.push(format!("{} could not be dropped: {e}; drop it with DROP TABLE", plan.names.heartbeat));
            }
        }

        if let Err(e) =
            with_retry("dropping capture triggers", ddl, &never_cancelled, || d.remove_capture(&plan.names, cfg.ddl.lock_timeout))
                .await
        {
            warnings.push(format!(
                "the capture triggers ({}) on {} could not be dropped: {e}; drop them with DROP TRIGGER",
                plan.names.triggers().join(", "),
                plan.names.old
            ));
        }
        let old_table_kept = if cfg.cut_over.keep_old_table {
            Some(plan.names.old.clone())
        } else {
            match with_retry("dropping the old table", ddl, &never_cancelled, || {
                d.drop_table(&plan.names.old, cfg.ddl.lock_timeout)
            })
            .await
            {
                Ok(()) => None,
                // The summary must not say "dropped": the old table is still there.
                Err(e) => {
                    warnings.push(format!(
                        "{} could not be dropped: {e}; drop it with DROP TABLE {} when convenient",
                        plan.names.old, plan.names.old
                    ));
                    Some(plan.names.old.clone())
                }
            }
        };
        for w in &warnings {
            tracing::warn!("{w}");
        }
        self.set_phase(Phase::Done);
        Ok(Summary {
            table: plan.names.table.clone(),
            old_table_kept,
            backfill,
            rows_checksummed,
            cut_over,
            in_place: false,
            elapsed: started.elapsed(),
            warnings,
        })
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
        d.verify_before_cut_over(plan).await?;

        let rows_checksummed = if cfg.checksum.enabled {
            self.set_phase(Phase::Checksum);
            let rows = checksum::run(d, plan, &cfg.checksum, &cfg.copy, &self.cancel, &self.progress, throttle).await?;
            tracing::info!(rows, "checksum matches");
            Some(rows)
        } else {
            None
        };

        if cfg.cut_over.postpone_flag_file.as_ref().is_some_and(|f| f.exists()) {
            self.set_phase(Phase::Postponed);
            let flag = cfg.cut_over.postpone_flag_file.as_ref().expect("checked").display().to_string();
            self.progress.send_modify(|p| p.waiting_for = Some(format!("postpone flag file {flag}")));
            cutover::wait_while_postponed(&cfg.cut_over, &self.cancel).await?;
        }
        loop {
            if let Some(window) = &cfg.cut_over.window {
                if !window.contains(jiff::Timestamp::now()) {
                    if self.progress.borrow().phase != Phase::Postponed {
                        self.set_phase(Phase::Postponed);
                    }
                    self.progress.send_modify(|p| p.waiting_for = Some(format!("cut-over window {window}")));
                    cutover::wait_for_window(window, &cfg.cut_over, &self.cancel).await?;
                }
            }
            // Replicas within the max lag (and no other signal over its limit) before swapping.
            if throttle.reason().is_some() {
                tracing::info!(reason = ?throttle.reason(), "cut-over waits for the throttle to clear");
            }
            throttle.wait_clear(&self.cancel).await?;
            // Waiting for the throttle may have outlasted the window: then wait for the next one.
            if cfg.cut_over.window.as_ref().is_none_or(|w| w.contains(jiff::Timestamp::now())) {
                break;
            }
        }

        self.set_phase(Phase::CutOver);
        d.prepare_cut_over(plan).await?;
        let cut_over = cutover::cut_over(d, plan, &cfg.cut_over, &self.cancel).await?;
        tracing::info!(attempts = cut_over.attempts, writes_blocked_ms = cut_over.swap_time.as_millis() as u64, "tables swapped");
        Ok((backfill, rows_checksummed, cut_over))
    }

    /// The `--attempt-instant-ddl` path: the ALTER on the table itself, under the cut-over's lock
    /// timeout and retries. Nothing is created, so nothing needs undoing.
    async fn alter_in_place(&self, plan: &Plan, started: Instant) -> Result<Summary> {
        let d = &*self.dialect;
        let c = &self.config.cut_over;
        self.set_phase(Phase::InPlace);
        let policy = RetryPolicy { retries: c.retries, min_delay: c.backoff_min, max_delay: c.backoff_max };
        let mut attempts = 0u32;
        let t0 = Instant::now();
        let r = with_retry("in-place ALTER", policy, &self.cancel, || {
            attempts += 1;
            d.alter_in_place(&plan.names, &plan.analysis, c.lock_timeout)
        })
        .await;
        if let Err(e) = r {
            self.set_phase(Phase::Failed);
            return Err(match e.class() {
                crate::error::ErrorClass::LockTimeout | crate::error::ErrorClass::Deadlock => {
                    Error::CutOverExhausted { attempts, lock_timeout_ms: c.lock_timeout.as_millis() as u64, last: e.to_string() }
                }
                _ => e,
            });
        }
        tracing::info!(attempts, "ALTER applied in place (metadata only)");
        self.set_phase(Phase::Done);
        Ok(Summary {
            table: plan.names.table.clone(),
            old_table_kept: None,
            backfill: BackfillStats::default(),
            rows_checksummed: None,
            cut_over: CutOverStats { attempts, swap_time: t0.elapsed() },
            in_place: true,
            elapsed: started.elapsed(),
            warnings: Vec::new(),
        })
    }

    /// Undo in reverse order; never cancelled (it is what cancellation needs).
    async fn undo(&self, names: &Names, undo: &Undo) -> std::result::Result<(), String> {
        undo_steps(&*self.dialect, names, undo.capture, undo.shadow, undo.heartbeat, &self.config.ddl).await
    }
}

async fn undo_steps<D: Dialect>(
    d: &D,
    names: &Names,
    capture: bool,
    shadow: bool,
    heartbeat: bool,
    ddl: &DdlConfig,
) -> std::result::Result<(), String> {
    let policy = RetryPolicy { retries: ddl.retries, min_delay: ddl.backoff_min, max_delay: ddl.backoff_max };
    let never = CancellationToken::new();
    if capture {
        if let Err(e) =
            with_retry("dropping capture triggers", policy, &never, || d.remove_capture(names, ddl.lock_timeout)).await
        {
            // Keep the shadow: dropping it under live triggers would make every write to the table fail.
            return Err(format!(
                "capture triggers {} remain ({e}); {} was kept for them",
                names.triggers().join(", "),
                names.shadow
            ));
        }
    }
    if shadow {
        if let Err(e) =
            with_retry("dropping the shadow table", policy, &never, || d.drop_table(&names.shadow, ddl.lock_timeout)).await
        {
            return Err(format!("{} remains ({e})", names.shadow));
        }
    }
    if heartbeat {
        if let Err(e) =
            with_retry("dropping the heartbeat table", policy, &never, || d.drop_table(&names.heartbeat, ddl.lock_timeout)).await
        {
            return Err(format!("{} remains ({e})", names.heartbeat));
        }
    }
    Ok(())
}

/// What `cleanup` found and did.
#[derive(Debug, Clone, Default)]
pub struct CleanupReport {
    /// Capture triggers dropped.
    pub triggers_dropped: Vec<String>,
    /// The shadow table, if it was dropped.
    pub shadow_dropped: Option<TableRef>,
    /// The old table, if one exists (never dropped by cleanup: it may be the only copy of
    /// pre-migration data the operator wants).
    pub old_table_present: Option<TableRef>,
}

/// Remove what a killed or failed run left on `table`: the capture triggers, then the shadow.
/// Refuses while another run holds the table's advisory lock.
pub async fn cleanup<D: Dialect>(d: &D, table: &TableRef, ddl: &DdlConfig) -> Result<CleanupReport> {
    let names = d.names(table);
    let lock = d.acquire_run_lock(&names).await?;
    let result = async {
        let triggers = d.capture_present(&names).await?;
        let shadow = d.table_exists(&names.shadow).await?;
        let heartbeat = d.table_exists(&names.heartbeat).await?;
        undo_steps(d, &names, !triggers.is_empty(), shadow, heartbeat, ddl).await.map_err(|leftover| {
            Error::CleanupIncomplete {
                cause: Box::new(Error::refused(format!("cleanup of {} did not finish", names.table))),
                leftover,
            }
        })?;
        Ok(CleanupReport {
            triggers_dropped: triggers,
            shadow_dropped: shadow.then(|| names.shadow.clone()),
            old_table_present: d.table_exists(&names.old).await?.then(|| names.old.clone()),
        })
    }
    .await;
    let _ = lock.release().await;
    result
}
