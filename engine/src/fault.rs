//! Fault rehearsals (`--inject-fault SPEC`): make a run on a clone meet real faults at chosen
//! moments, and report how shadowswap handled each one. Nothing here runs unless the operator
//! gave `--inject-fault` ([`MigrationConfig::faults`](crate::MigrationConfig::faults) is empty
//! otherwise, and [`Injector`] then does nothing at all).
//!
//! - [`FaultSpec`] — the grammar, a pure parser: `KIND@PHASE[:N%][:DURATION]`, e.g.
//!   `kill-connection@backfill:50%`, `blocker@cut-over:10s`, `replica-pause@backfill:20s`,
//!   `crash@checksum`, `lock-storm@cut-over:5s`.
//! - [`Rehearsal`] — the server-side actions a dialect implements (kill its own sessions, hold a
//!   blocking transaction, a storm of short locking transactions, pause a replica's apply); each
//!   default refuses "not supported". A supertrait of [`crate::Dialect`].
//! - [`Injector`] — fires the faults as the run moves through its phases, owns the tasks that
//!   hold a fault for its duration, and ends them (releasing locks, resuming replicas) when the
//!   run ends, however it ends.
//! - [`FaultReport`] — what fired when, what shadowswap did about it; in the
//!   [`Summary`](crate::runner::Summary).
//!
//! # When a fault fires
//!
//! - Without `N%`: at the phase's **entry**, before the phase does any work; the runner waits
//!   until the fault is in place (the blocker's lock is held, the storm's sessions are open, the
//!   replica's apply is paused), so e.g. `blocker@cut-over` is always there when the first
//!   cut-over attempt looks for blockers.
//! - With `N%` (backfill and checksum only): once the phase's progress reaches N% of the
//!   table's estimated rows (rows copied, or rows checksummed). Progress is published once per
//!   [progress interval](crate::config::CopyConfig::progress_interval) (the CLI makes it 100 ms
//!   when such a fault is given), so the fault fires within about one interval of the mark,
//!   while chunks keep running. When the server has no estimate (0 rows), it fires at
//!   the first progress the phase publishes. When the phase ends before reaching the mark
//!   (the estimate was too high) the fault did not fire, and the report says so.
//! - `postponed` faults fire when the run enters the postponed wait (only with
//!   `--postpone-cut-over-flag-file` or `--cut-over-window`), observed from the progress.
//! - A phase the run never reaches: the fault does not fire, and the report says so.
//!
//! Held faults (blocker, storm, replica pause) last their duration or until the run ends,
//! whichever is first. A `crash` fault aborts the process at once (no cleanup, no summary; only a
//! replica an injected pause holds is resumed first), leaving the state for a resume; when the
//! same command is run again and resumes (the runner finds a checkpoint), crash faults are not
//! injected again ([`Injector::set_resumed`]), so that "the same command" completes, and the
//! report says the crash fired in the run it resumed.

use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::error::{Error, Result};
use crate::names::Names;
use crate::phase::Phase;
use crate::progress::{Progress, LOG_TARGET};

/// What a fault does. See the module docs for when each fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// Terminate shadowswap's own working sessions on the primary (MariaDB `KILL CONNECTION`,
    /// PostgreSQL `pg_terminate_backend`); never the run lock's session, never anyone else's.
    KillConnection,
    /// From a separate session, hold a transaction with a lock the swap needs, for the duration.
    Blocker,
    /// Pause the apply of every `--replica` for the duration (MariaDB `STOP SLAVE SQL_THREAD`,
    /// PostgreSQL `pg_wal_replay_pause()`).
    ReplicaPause,
    /// Abort shadowswap itself at once, as a crash would: no cleanup.
    Crash,
    /// Several sessions running short locking transactions on the table for the duration.
    LockStorm,
}

impl FaultKind {
    /// Every kind, in the order the help lists them.
    pub const ALL: [FaultKind; 5] =
        [FaultKind::KillConnection, FaultKind::Blocker, FaultKind::ReplicaPause, FaultKind::Crash, FaultKind::LockStorm];

    /// The kind's name in a spec.
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::KillConnection => "kill-connection",
            FaultKind::Blocker => "blocker",
            FaultKind::ReplicaPause => "replica-pause",
            FaultKind::Crash => "crash",
            FaultKind::LockStorm => "lock-storm",
        }
    }

    /// How long the fault lasts when the spec gives no duration; `None` for the instantaneous
    /// kinds (which take no duration).
    pub fn default_duration(self) -> Option<Duration> {
        match self {
            FaultKind::Blocker => Some(Duration::from_secs(10)),
            FaultKind::ReplicaPause => Some(Duration::from_secs(20)),
            FaultKind::LockStorm => Some(Duration::from_secs(10)),
            FaultKind::KillConnection | FaultKind::Crash => None,
        }
    }
}

/// The phases a fault may be attached to, with their names in a spec.
pub const FAULT_PHASES: [(&str, Phase); 9] = [
    ("preflight", Phase::Preflight),
    ("create-shadow", Phase::CreateShadow),
    ("install-capture", Phase::InstallCapture),
    ("backfill", Phase::Backfill),
    ("build-indexes", Phase::BuildIndexes),
    ("checksum", Phase::Checksum),
    ("postponed", Phase::Postponed),
    ("cut-over", Phase::CutOver),
    ("cleanup", Phase::Cleanup),
];

/// A phase's name in a spec (`create-shadow`), or its display text for the others.
fn phase_name(phase: Phase) -> String {
    FAULT_PHASES.iter().find(|(_, p)| *p == phase).map(|(n, _)| n.to_string()).unwrap_or_else(|| phase.to_string())
}

/// Number of sessions in a lock storm.
pub const LOCK_STORM_SESSIONS: usize = 4;

/// One `--inject-fault` value: `KIND@PHASE[:N%][:DURATION]`.
///
/// - `KIND`: `kill-connection`, `blocker`, `replica-pause`, `crash`, `lock-storm`.
/// - `PHASE`: `preflight`, `create-shadow`, `install-capture`, `backfill`, `build-indexes`,
///   `checksum`, `postponed`, `cut-over`, `cleanup` (`crash` only: after the swap, once the
///   checkpoint records it and before anything is dropped; without `--revert-window`, whose
///   cleanup comes at the window's end).
/// - `N%` (0–99, backfill and checksum only): fire at N% of the phase instead of at its entry.
/// - `DURATION` (`blocker`, `replica-pause`, `lock-storm` only; humantime, e.g. `10s`, `1m`):
///   how long the fault lasts; defaults 10 s, 20 s, 10 s.
///
/// The two optional parts may come in either order. Errors are one line and list the kinds and
/// phases.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultSpec {
    /// What the fault does.
    pub kind: FaultKind,
    /// The phase it fires in.
    pub phase: Phase,
    /// `Some(N)`: at N% of the phase (backfill, checksum); `None`: at the phase's entry.
    pub at_percent: Option<u8>,
    /// How long it lasts (for the kinds that last), the default filled in; `None` otherwise.
    pub duration: Option<Duration>,
}

impl FaultSpec {
    /// Whether this fault fires at the phase's entry (rather than at a percentage, or observed
    /// from the progress, as `postponed` is).
    pub fn at_entry(&self) -> bool {
        self.at_percent.is_none() && self.phase != Phase::Postponed
    }
}

/// The usage text appended to every parse error.
fn spec_usage() -> String {
    let kinds: Vec<&str> = FaultKind::ALL.iter().map(|k| k.name()).collect();
    let phases: Vec<&str> = FAULT_PHASES.iter().map(|(n, _)| *n).collect();
    format!(
        "expected KIND@PHASE[:N%][:DURATION], KIND one of {}, PHASE one of {}, e.g. blocker@cut-over:10s or kill-connection@backfill:50%",
        kinds.join(", "),
        phases.join(", ")
    )
}

impl FromStr for FaultSpec {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let bad = |why: String| format!("invalid --inject-fault {s:?}: {why}; {}", spec_usage());
        let (kind_text, rest) = s.trim().split_once('@').ok_or_else(|| bad("no '@' between kind and phase".into()))?;
        let kind = FaultKind::ALL
            .into_iter()
            .find(|k| k.name() == kind_text)
            .ok_or_else(|| bad(format!("unknown fault kind {kind_text:?}")))?;
        let mut parts = rest.split(':');
        let phase_text = parts.next().unwrap_or("");
        let phase = FAULT_PHASES
            .iter()
            .find(|(n, _)| *n == phase_text)
            .map(|(_, p)| *p)
            .ok_or_else(|| bad(format!("unknown phase {phase_text:?}")))?;
        if phase == Phase::Cleanup && kind != FaultKind::Crash {
            // After the swap nothing waits for a lock or a replica, and nothing is retried: only a
            // crash there is a moment worth rehearsing (the rerun finishes the cleanup).
            return Err(bad(format!("{} at cleanup rehearses nothing: only crash@cleanup is meaningful", kind.name())));
        }
        let (mut at_percent, mut duration) = (None, None);
        for arg in parts {
            if let Some(n) = arg.strip_suffix('%') {
                let n: u8 =
                    n.parse().ok().filter(|n| *n < 100).ok_or_else(|| bad(format!("{arg:?} is not a percentage 0-99%")))?;
                if at_percent.replace(n).is_some() {
                    return Err(bad("more than one percentage".into()));
                }
                if !matches!(phase, Phase::Backfill | Phase::Checksum) {
                    return Err(bad(format!("a percentage ({arg}) is only meaningful for backfill and checksum")));
                }
            } else {
                let d =
                    humantime::parse_duration(arg).map_err(|_| bad(format!("{arg:?} is neither N% nor a duration like 10s")))?;
                if kind.default_duration().is_none() {
                    return Err(bad(format!("{} takes no duration", kind.name())));
                }
                if d.is_zero() {
                    return Err(bad("the duration must be more than 0s".into()));
                }
                if duration.replace(d).is_some() {
                    return Err(bad("more than one duration".into()));
                }
            }
        }
        Ok(FaultSpec { kind, phase, at_percent, duration: duration.or(kind.default_duration()) })
    }
}

impl fmt::Display for FaultSpec {
    /// The canonical spec text (the duration always shown for the kinds that last).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.kind.name(), phase_name(self.phase))?;
        if let Some(n) = self.at_percent {
            write!(f, ":{n}%")?;
        }
        if let Some(d) = self.duration {
            write!(f, ":{}", humantime::format_duration(d))?;
        }
        Ok(())
    }
}

/// A server-side session a fault holds open: a blocker's transaction, or one session of a lock
/// storm.
#[async_trait]
pub trait FaultSession: Send {
    /// One short locking transaction (lock storm sessions); a blocker does nothing here.
    async fn step(&mut self) -> Result<()> {
        Ok(())
    }

    /// End the transaction (rolling back: faults change no data) and close the session.
    async fn release(self: Box<Self>) -> Result<()>;
}

/// The server-side actions of fault rehearsals. Each default refuses ("not supported"), so a
/// dialect implements what its server supports. None of them changes data.
#[async_trait]
pub trait Rehearsal: Send + Sync {
    /// Terminate shadowswap's own working sessions on this server (the connection pool's
    /// sessions of this process; never the run lock's session, never another process's). Returns
    /// one line per session terminated.
    async fn kill_own_sessions(&self) -> Result<Vec<String>> {
        Err(Error::refused("--inject-fault kill-connection is not supported on this server"))
    }

    /// Open a session of its own and, in an open transaction, take a lock on `names.table`
    /// that the swap needs (MariaDB: a read, which holds the metadata lock; PostgreSQL:
    /// `LOCK TABLE … IN ACCESS SHARE MODE`). Returns once the lock is held.
    async fn open_blocker(&self, names: &Names) -> Result<Box<dyn FaultSession>> {
        Err(Error::refused(format!("--inject-fault blocker is not supported for {}", names.table)))
    }

    /// Open one lock-storm session on `names.table`; each [`FaultSession::step`] runs one short
    /// transaction that locks a few rows as a write would (`SELECT … FOR UPDATE`) and holds them
    /// briefly, changing nothing.
    async fn open_storm_session(&self, names: &Names) -> Result<Box<dyn FaultSession>> {
        Err(Error::refused(format!("--inject-fault lock-storm is not supported for {}", names.table)))
    }

    /// Pause this server's (a replica's) apply of the primary's changes.
    async fn pause_replica_apply(&self) -> Result<()> {
        Err(Error::refused("--inject-fault replica-pause is not supported on this server"))
    }

    /// Resume this server's (a replica's) apply. Idempotent.
    async fn resume_replica_apply(&self) -> Result<()> {
        Err(Error::refused("--inject-fault replica-pause is not supported on this server"))
    }
}

/// What happened to one fault, for the summary.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultReport {
    /// The fault, as given.
    pub spec: FaultSpec,
    /// When it fired, into the run; `None` when it did not fire (see [`FaultReport::injected`]).
    pub fired_at: Option<Duration>,
    /// The phase the run was in when it fired.
    pub phase: Option<Phase>,
    /// What was injected ("terminated 2 sessions", "held ACCESS SHARE for 3 s"), or why nothing
    /// was ("the run never reached checksum", the server's refusal).
    pub injected: String,
    /// What shadowswap did about it (retried, waited, throttled, reconnected, resumed).
    pub response: String,
    /// For faults at or before the cut-over: how long application writes were blocked by the
    /// successful swap (ms).
    pub writes_blocked_ms: Option<u64>,
    /// Whether the checksum matched after the fault (`None` when checksumming was off or the
    /// fault came after it).
    pub checksum_matched: Option<bool>,
    /// `replica-pause`: how long the copy was throttled while the replica was paused.
    pub throttled: Option<Duration>,
}

/// What the run tells the injector when it ends, to describe shadowswap's response.
#[derive(Debug, Clone, Default)]
pub struct RunFacts {
    /// The run swapped the tables.
    pub swapped: bool,
    /// Cut-over attempts made (the successful one included).
    pub cut_over_attempts: u32,
    /// The successful swap's duration.
    pub writes_blocked: Duration,
    /// Rows compared by the checksum, when it ran and matched.
    pub rows_checksummed: Option<u64>,
    /// Times the connection broke and the run reconnected.
    pub reconnects: u32,
    /// The phase of the interrupted run this one resumed, if it did.
    pub resumed_from: Option<Phase>,
    /// The cut-over's lock timeout: how long a failed attempt may have queued the application.
    pub lock_timeout: Duration,
}

/// One fault and its state during the run.
#[derive(Debug)]
struct Armed {
    spec: FaultSpec,
    fired: Option<(Duration, Phase)>,
    injected: String,
    /// Set by the holding task: seconds the copy was throttled while a replica was paused, or
    /// transactions a storm ran.
    measured: Option<String>,
    throttled: Option<Duration>,
    /// When the fault was in place (into the run), after its setup.
    ready: Option<Duration>,
    error: bool,
}

#[derive(Default)]
struct State {
    armed: Vec<Armed>,
    tasks: Vec<JoinHandle<()>>,
    /// When each phase began, in order, into the run.
    phases: Vec<(Phase, Duration)>,
    resumed: bool,
    /// Replicas whose apply an injected `replica-pause` holds paused now.
    paused: Vec<Arc<dyn Rehearsal>>,
}

/// Fires the configured faults as the run moves through its phases (see the module docs), owns
/// the tasks that hold them, and reports. With no faults configured every method returns at
/// once and nothing is spawned.
pub struct Injector {
    primary: Arc<dyn Rehearsal>,
    replicas: Vec<Arc<dyn Rehearsal>>,
    /// When the run started ([`Injector::start`]); the clock of `fired_at`.
    started: Arc<Mutex<Instant>>,
    stop: CancellationToken,
    state: Arc<Mutex<State>>,
}

impl Injector {
    /// An injector for `faults` on `primary` (and, for `replica-pause`, `replicas`).
    pub fn new(faults: &[FaultSpec], primary: Arc<dyn Rehearsal>, replicas: Vec<Arc<dyn Rehearsal>>) -> Self {
        let armed = faults
            .iter()
            .map(|spec| Armed {
                spec: spec.clone(),
                fired: None,
                injected: String::new(),
                measured: None,
                throttled: None,
                ready: None,
                error: false,
            })
            .collect();
        Injector {
            primary,
            replicas,
            started: Arc::new(Mutex::new(Instant::now())),
            stop: CancellationToken::new(),
            state: Arc::new(Mutex::new(State { armed, ..State::default() })),
        }
    }

    /// Whether any fault is configured.
    pub fn active(&self) -> bool {
        !self.state.lock().unwrap().armed.is_empty()
    }

    /// The replicas whose apply `replica-pause` pauses.
    pub fn set_replicas(&mut self, replicas: Vec<Arc<dyn Rehearsal>>) {
        self.replicas = replicas;
    }

    /// The run resumes an earlier one: crash faults are not injected again (the earlier run
    /// crashed at them), and their reports say the run resumed.
    pub fn set_resumed(&self) {
        self.state.lock().unwrap().resumed = true;
    }

    /// Start the run's clock, log the loud warning, and watch `progress` for the faults that
    /// fire at a percentage or in the postponed wait (and for the phase times the report uses).
    /// Call once, when the run starts.
    pub fn start(&self, names: &Names, progress: watch::Receiver<Progress>) {
        if !self.active() {
            return;
        }
        *self.started.lock().unwrap() = Instant::now();
        let specs: Vec<String> = self.state.lock().unwrap().armed.iter().map(|a| a.spec.to_string()).collect();
        tracing::warn!(
            target: LOG_TARGET,
            faults = %specs.join(", "),
            "FAULT INJECTION: this run will inject faults on purpose (--inject-fault); run it on a clone, never on production"
        );
        let me = self.handle();
        let names = names.clone();
        let watcher = tokio::spawn(async move { me.watch(names, progress).await });
        self.state.lock().unwrap().tasks.push(watcher);
    }

    /// Time since the run started.
    fn elapsed(&self) -> Duration {
        self.started.lock().unwrap().elapsed()
    }

    /// A cheap clone for tasks.
    fn handle(&self) -> Injector {
        Injector {
            primary: self.primary.clone(),
            replicas: self.replicas.clone(),
            started: self.started.clone(),
            stop: self.stop.clone(),
            state: self.state.clone(),
        }
    }

    /// The run enters `phase`: fire its entry faults, returning once each is in place.
    pub async fn enter(&self, phase: Phase, names: &Names, progress: &watch::Receiver<Progress>) {
        let due: Vec<usize> = {
            let st = self.state.lock().unwrap();
            st.armed
                .iter()
                .enumerate()
                .filter(|(_, a)| a.fired.is_none() && a.spec.phase == phase && a.spec.at_entry())
                .map(|(i, _)| i)
                .collect()
        };
        for i in due {
            self.fire(i, phase, names, progress.clone()).await;
        }
    }

    /// Record a phase change and fire the faults due by `p`.
    async fn watch(&self, names: Names, mut progress: watch::Receiver<Progress>) {
        loop {
            let p = progress.borrow_and_update().clone();
            {
                let mut st = self.state.lock().unwrap();
                if st.phases.last().map(|(ph, _)| *ph) != Some(p.phase) {
                    let at = self.elapsed();
                    st.phases.push((p.phase, at));
                }
            }
            let due: Vec<usize> = {
                let st = self.state.lock().unwrap();
                st.armed
                    .iter()
                    .enumerate()
                    .filter(|(_, a)| a.fired.is_none() && due_by_progress(&a.spec, &p))
                    .map(|(i, _)| i)
                    .collect()
            };
            for i in due {
                self.fire(i, p.phase, &names, progress.clone()).await;
            }
            tokio::select! {
                changed = progress.changed() => if changed.is_err() { return },
                _ = self.stop.cancelled() => return,
            }
        }
    }

    /// Fire fault `i` now, in `phase`: put it in place, and spawn what holds it for its duration.
    async fn fire(&self, i: usize, phase: Phase, names: &Names, progress: watch::Receiver<Progress>) {
        let spec = {
            let mut st = self.state.lock().unwrap();
            let resumed = st.resumed;
            let a = &mut st.armed[i];
            // A crash fault of a resumed run fired in the run it resumes: not again (the report
            // says so).
            if a.fired.is_some() || (a.spec.kind == FaultKind::Crash && resumed) {
                return;
            }
            a.fired = Some((self.elapsed(), phase));
            a.spec.clone()
        };
        let at_s = self.elapsed().as_secs_f64();
        tracing::warn!(target: LOG_TARGET, fault = %spec, phase = %phase, at_s, "injecting fault");
        let duration = spec.duration.unwrap_or_default();
        let outcome: Result<String> = match spec.kind {
            FaultKind::Crash => {
                // The rehearsal's own pause is the environment, not shadowswap's state: a crash of
                // shadowswap would not leave a replica paused, so neither does this one. Blocker
                // and storm sessions end with the process (the server rolls them back).
                let paused = std::mem::take(&mut self.state.lock().unwrap().paused);
                for r in &paused {
                    resume(r).await;
                }
                crash(&spec)
            }
            FaultKind::KillConnection => self.primary.kill_own_sessions().await.map(|killed| {
                if killed.is_empty() {
                    "no working session of shadowswap was open to terminate".into()
                } else {
                    format!("terminated {} session(s) of shadowswap: {}", killed.len(), killed.join(", "))
                }
            }),
            FaultKind::Blocker => match self.primary.open_blocker(names).await {
                Ok(session) => {
                    self.hold(i, duration, vec![session], false);
                    Ok(format!(
                        "a separate session held a lock on {} in an open transaction, for up to {}",
                        names.table,
                        secs(duration)
                    ))
                }
                Err(e) => Err(e),
            },
            FaultKind::LockStorm => {
                let mut sessions = Vec::new();
                let mut failed = None;
                for _ in 0..LOCK_STORM_SESSIONS {
                    match self.primary.open_storm_session(names).await {
                        Ok(s) => sessions.push(s),
                        Err(e) => {
                            failed = Some(e);
                            break;
                        }
                    }
                }
                match failed {
                    Some(e) => {
                        release_all(sessions).await;
                        Err(e)
                    }
                    None => {
                        let n = sessions.len();
                        self.hold(i, duration, sessions, true);
                        Ok(format!(
                            "{n} sessions ran short locking transactions on {}, for up to {}",
                            names.table,
                            secs(duration)
                        ))
                    }
                }
            }
            FaultKind::ReplicaPause => self.pause_replicas(i, duration, progress).await,
        };
        let ready = self.elapsed();
        let mut st = self.state.lock().unwrap();
        let a = &mut st.armed[i];
        a.ready = Some(ready);
        match outcome {
            Ok(text) => a.injected = text,
            Err(e) => {
                tracing::warn!(target: LOG_TARGET, fault = %spec, error = %e, "could not inject the fault; the run goes on without it");
                a.injected = format!("could not inject: {e}");
                a.error = true;
            }
        }
    }

    /// Pause every replica's apply, and spawn the task that resumes them after `duration`
    /// (or when the run ends), measuring how long the copy was throttled meanwhile.
    async fn pause_replicas(&self, i: usize, duration: Duration, mut progress: watch::Receiver<Progress>) -> Result<String> {
        if self.replicas.is_empty() {
            return Err(Error::refused("replica-pause needs a --replica to pause"));
        }
        let mut paused = Vec::new();
        for r in &self.replicas {
            if let Err(e) = r.pause_replica_apply().await {
                for p in paused {
                    resume(&p).await;
                }
                return Err(e);
            }
            paused.push(r.clone());
        }
        self.state.lock().unwrap().paused.extend(paused.iter().cloned());
        let (stop, state) = (self.stop.clone(), self.state.clone());
        let task = tokio::spawn(async move {
            let until = Instant::now() + duration;
            let mut throttled = Duration::ZERO;
            let mut since = progress.borrow().throttle_reason.as_ref().map(|_| Instant::now());
            loop {
                tokio::select! {
                    _ = tokio::time::sleep_until(until.into()) => break,
                    _ = stop.cancelled() => break,
                    changed = progress.changed() => {
                        if changed.is_err() { break }
                        let now_throttled = progress.borrow().throttle_reason.is_some();
                        match (since, now_throttled) {
                            (None, true) => since = Some(Instant::now()),
                            (Some(t), false) => { throttled += t.elapsed(); since = None; }
                            _ => {}
                        }
                    }
                }
            }
            if let Some(t) = since {
                throttled += t.elapsed();
            }
            let still: Vec<_> = {
                let mut st = state.lock().unwrap();
                let mine: Vec<_> = st.paused.iter().filter(|r| paused.iter().any(|p| Arc::ptr_eq(p, r))).cloned().collect();
                st.paused.retain(|r| !paused.iter().any(|p| Arc::ptr_eq(p, r)));
                mine
            };
            for p in &still {
                resume(p).await;
            }
            tracing::warn!(target: LOG_TARGET, throttled_s = throttled.as_secs_f64(), "injected replica pause ended; replica apply resumed");
            let mut st = state.lock().unwrap();
            st.armed[i].throttled = Some(throttled);
            st.armed[i].measured =
                Some(format!("the copy was throttled {} of the {} the replica was paused", secs(throttled), secs(duration)));
        });
        self.state.lock().unwrap().tasks.push(task);
        Ok(format!("paused the apply of {} replica(s) for {}", self.replicas.len(), secs(duration)))
    }

    /// Spawn the task that keeps `sessions` (a blocker, or a storm) for `duration` (or until the
    /// run ends), stepping each storm session in a loop, then releases them.
    fn hold(&self, i: usize, duration: Duration, sessions: Vec<Box<dyn FaultSession>>, storm: bool) {
        let (stop, state) = (self.stop.clone(), self.state.clone());
        let task = tokio::spawn(async move {
            let began = Instant::now();
            let until = began + duration;
            let mut handles = Vec::new();
            for mut s in sessions {
                let stop = stop.clone();
                handles.push(tokio::spawn(async move {
                    let (mut steps, mut failed) = (0u64, 0u64);
                    let mut last_error = None;
                    if storm {
                        // A step is one short transaction: never cut off mid-statement.
                        while Instant::now() < until && !stop.is_cancelled() {
                            match s.step().await {
                                Ok(()) => steps += 1,
                                Err(e) => {
                                    failed += 1;
                                    last_error = Some(e.to_string());
                                }
                            }
                        }
                    } else {
                        tokio::select! {
                            _ = tokio::time::sleep_until(until.into()) => {}
                            _ = stop.cancelled() => {}
                        }
                    }
                    if let Err(e) = s.release().await {
                        tracing::warn!(target: LOG_TARGET, error = %e, "releasing an injected fault's session");
                    }
                    (steps, failed, last_error)
                }));
            }
            let (mut steps, mut failed) = (0, 0);
            let mut last_error = None;
            for h in handles {
                if let Ok((n, f, e)) = h.await {
                    steps += n;
                    failed += f;
                    last_error = last_error.or(e);
                }
            }
            let held = began.elapsed();
            tracing::warn!(target: LOG_TARGET, held_s = held.as_secs_f64(), transactions = steps, "injected fault released");
            let ended = if held + Duration::from_millis(100) < duration { " (the run ended first)" } else { "" };
            let mut text = if storm {
                format!("{steps} short locking transactions ran in {}{ended}", secs(held))
            } else {
                format!("the blocker was released after {}{ended}", secs(held))
            };
            if failed > 0 {
                text.push_str(&format!(", {failed} of them gave up waiting (last: {})", last_error.unwrap_or_default()));
            }
            state.lock().unwrap().armed[i].measured = Some(text);
        });
        self.state.lock().unwrap().tasks.push(task);
    }

    /// The run ended: end every fault still held (release locks, resume replicas), wait for
    /// the tasks, and report each fault, describing shadowswap's response from `facts`.
    pub async fn finish(&self, facts: &RunFacts) -> Vec<FaultReport> {
        if !self.active() {
            return Vec::new();
        }
        self.stop.cancel();
        let tasks = std::mem::take(&mut self.state.lock().unwrap().tasks);
        for t in tasks {
            let _ = t.await;
        }
        let st = self.state.lock().unwrap();
        st.armed.iter().map(|a| report(a, &st, facts)).collect()
    }
}

/// Whether a fault observed from the progress (a percentage, or the postponed wait) is due.
fn due_by_progress(spec: &FaultSpec, p: &Progress) -> bool {
    if spec.phase != p.phase {
        return false;
    }
    match spec.at_percent {
        None => spec.phase == Phase::Postponed,
        Some(n) => {
            let done = if p.phase == Phase::Backfill { p.rows_copied } else { p.rows_checksummed };
            if p.rows_estimated == 0 {
                done > 0
            } else {
                done * 100 >= u64::from(n) * p.rows_estimated
            }
        }
    }
}

/// Abort the process as a crash would, after flushing what was logged.
fn crash(spec: &FaultSpec) -> ! {
    use std::io::Write as _;
    tracing::error!(target: LOG_TARGET, fault = %spec, "injected crash: aborting now, without any cleanup; run the same command again to resume");
    let _ = std::io::stderr().flush();
    let _ = std::io::stdout().flush();
    std::process::abort()
}

async fn release_all(sessions: Vec<Box<dyn FaultSession>>) {
    for s in sessions {
        let _ = s.release().await;
    }
}

async fn resume(r: &Arc<dyn Rehearsal>) {
    if let Err(e) = r.resume_replica_apply().await {
        tracing::error!(target: LOG_TARGET, error = %e, "resuming a replica's apply after an injected pause failed; resume it by hand (START SLAVE SQL_THREAD / SELECT pg_wal_replay_resume())");
    }
}

/// `3.2 s`.
fn secs(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

/// When the run left `phase` (the next phase's entry, into the run), when it was seen.
fn end_of(st: &State, phase: Phase) -> Option<Duration> {
    let i = st.phases.iter().position(|(p, _)| *p == phase)?;
    st.phases.get(i + 1).map(|(_, t)| *t)
}

/// One fault's report.
fn report(a: &Armed, st: &State, facts: &RunFacts) -> FaultReport {
    let spec = a.spec.clone();
    let Some((at, phase)) = a.fired else {
        // A resumed run may start past the point where the crash fired in the run it resumes.
        let crashed_before = a.spec.kind == FaultKind::Crash && st.resumed;
        let (injected, response) = if crashed_before {
            (
                "fired in the run this one resumed (which crashed there)".to_string(),
                match (facts.swapped, facts.resumed_from) {
                    (true, Some(p)) => {
                        format!("resumed: the same command continued the crashed run (stopped in {p}) and swapped")
                    }
                    (true, None) => "swapped".to_string(),
                    _ => "the run did not complete".to_string(),
                },
            )
        } else {
            let at =
                a.spec.at_percent.map_or_else(|| phase_name(a.spec.phase), |n| format!("{n}% of {}", phase_name(a.spec.phase)));
            (format!("did not fire: the run did not reach {at}"), String::new())
        };
        return FaultReport {
            spec,
            fired_at: None,
            phase: None,
            injected,
            response,
            writes_blocked_ms: (crashed_before && facts.swapped).then_some(facts.writes_blocked.as_millis() as u64),
            checksum_matched: (crashed_before && facts.swapped && facts.rows_checksummed.is_some()).then_some(true),
            throttled: None,
        };
    };
    let before_cut_over = !phase.swapped();
    // From the moment the fault was in place to the end of the cut-over (the swap).
    let cut_over = end_of(st, Phase::CutOver).zip(a.ready).map(|(end, ready)| end.saturating_sub(ready));
    let response = if a.error {
        "nothing to respond to".to_string()
    } else if !facts.swapped {
        "the run did not complete".to_string()
    } else {
        match spec.kind {
            FaultKind::Crash => match facts.resumed_from {
                Some(p) => format!("resumed: the same command continued the crashed run (stopped in {p}) and swapped"),
                None => "swapped".into(),
            },
            FaultKind::KillConnection => match facts.reconnects {
                0 => "retried on a new session and continued; swapped".into(),
                n => format!("reconnected {n} time(s) and continued from the checkpoint; swapped"),
            },
            FaultKind::Blocker | FaultKind::LockStorm => {
                let mut t = match (phase, cut_over) {
                    (Phase::CutOver, Some(d)) if facts.cut_over_attempts > 1 => {
                        format!("the cut-over waited and retried: {} from the fault in place to the swap", secs(d))
                    }
                    (Phase::CutOver, Some(d)) => {
                        format!("the cut-over waited its turn: {} from the fault in place to the swap", secs(d))
                    }
                    _ => "waited for the locks and went on".into(),
                };
                t.push_str(&format!(", swapped in {} attempt(s)", facts.cut_over_attempts));
                if facts.cut_over_attempts > 1 {
                    // A failed attempt waited for its lock: the application's queries on the
                    // table queued behind it meanwhile.
                    t.push_str(&format!(
                        " (each of the {} failed attempt(s) may have held up the application's queries on the table for up to the lock timeout, {})",
                        facts.cut_over_attempts - 1,
                        secs(facts.lock_timeout)
                    ));
                }
                if let Some(m) = &a.measured {
                    t.push_str(&format!("; {m}"));
                }
                t
            }
            FaultKind::ReplicaPause => match &a.measured {
                Some(m) => format!("throttled: {m}; then completed"),
                None => "throttled while the replica was paused; then completed".into(),
            },
        }
    };
    FaultReport {
        spec,
        fired_at: Some(at),
        phase: Some(phase),
        injected: a.injected.clone(),
        response,
        writes_blocked_ms: (facts.swapped && before_cut_over).then_some(facts.writes_blocked.as_millis() as u64),
        checksum_matched: (facts.swapped
            && facts.rows_checksummed.is_some()
            && phase != Phase::CutOver
            && phase != Phase::Postponed)
            .then_some(true),
        throttled: a.throttled,
    }
}

impl fmt::Display for FaultReport {
    /// One line: `blocker@cut-over:3s fired at 4.2 s (cut-over): …; shadowswap: …`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.fired_at, self.phase) {
            (Some(at), Some(phase)) => write!(f, "fault {} fired at {} ({phase}): {}", self.spec, secs(at), self.injected)?,
            _ => write!(f, "fault {}: {}", self.spec, self.injected)?,
        }
        if !self.response.is_empty() {
            write!(f, "; shadowswap: {}", self.response)?;
        }
        if let Some(ms) = self.writes_blocked_ms {
            write!(f, "; application writes blocked {ms} ms")?;
        }
        if self.checksum_matched == Some(true) {
            f.write_str("; checksum still matched")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(s: &str) -> FaultSpec {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn the_issue_examples_parse() {
        let k = spec("kill-connection@backfill");
        assert_eq!((k.kind, k.phase, k.at_percent, k.duration), (FaultKind::KillConnection, Phase::Backfill, None, None));
        let b = spec("blocker@cut-over:10s");
        assert_eq!((b.kind, b.phase, b.duration), (FaultKind::Blocker, Phase::CutOver, Some(Duration::from_secs(10))));
        let r = spec("replica-pause@backfill:20s");
        assert_eq!((r.kind, r.duration), (FaultKind::ReplicaPause, Some(Duration::from_secs(20))));
        let c = spec("crash@checksum");
        assert_eq!((c.kind, c.phase, c.duration), (FaultKind::Crash, Phase::Checksum, None));
        assert_eq!(spec("lock-storm@cut-over").duration, Some(Duration::from_secs(10)), "default duration");
    }

    #[test]
    fn percentages_and_durations_in_either_order() {
        let a = spec("replica-pause@backfill:50%:5s");
        let b = spec("replica-pause@backfill:5s:50%");
        assert_eq!(a, b);
        assert_eq!((a.at_percent, a.duration), (Some(50), Some(Duration::from_secs(5))));
        assert_eq!(spec("crash@backfill:0%").at_percent, Some(0));
        assert!(!spec("crash@backfill:50%").at_entry());
        assert!(spec("crash@backfill").at_entry());
        assert!(!spec("crash@postponed").at_entry(), "postponed is observed from the progress");
        assert_eq!(spec("blocker@cut-over:1m").duration, Some(Duration::from_secs(60)));
        assert_eq!(spec("kill-connection@checksum:99%").at_percent, Some(99));
    }

    #[test]
    fn every_phase_name_parses_and_displays_back() {
        for (name, phase) in FAULT_PHASES {
            let s = spec(&format!("crash@{name}"));
            assert_eq!(s.phase, phase);
            assert_eq!(s.to_string(), format!("crash@{name}"));
        }
        for text in ["blocker@cut-over:10s", "replica-pause@backfill:50%:20s", "kill-connection@checksum:25%"] {
            assert_eq!(spec(text).to_string(), text);
            assert_eq!(spec(&spec(text).to_string()), spec(text));
        }
    }

    #[test]
    fn errors_are_one_line_and_list_kinds_and_phases() {
        for (bad, why) in [
            ("crash", "no '@'"),
            ("explode@backfill", "unknown fault kind \"explode\""),
            ("crash@copy", "unknown phase \"copy\""),
            ("crash@cut-over:50%", "only meaningful for backfill and checksum"),
            ("crash@backfill:100%", "not a percentage"),
            ("crash@backfill:5s", "crash takes no duration"),
            ("kill-connection@backfill:1s", "kill-connection takes no duration"),
            ("blocker@cut-over:soon", "neither N% nor a duration"),
            ("blocker@cut-over:0s", "more than 0s"),
            ("blocker@cut-over:1s:2s", "more than one duration"),
            ("crash@backfill:1%:2%", "more than one percentage"),
            ("blocker@cleanup", "only crash@cleanup"),
            ("kill-connection@cleanup", "only crash@cleanup"),
            ("", "no '@'"),
        ] {
            let e = bad.parse::<FaultSpec>().unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
            assert!(!e.contains('\n'), "{e}");
            assert!(e.contains("kill-connection, blocker, replica-pause, crash, lock-storm"), "{e}");
            assert!(
                e.contains(
                    "preflight, create-shadow, install-capture, backfill, build-indexes, checksum, postponed, cut-over, cleanup"
                ),
                "{e}"
            );
        }
    }

    #[test]
    fn percent_faults_fire_by_progress() {
        let s = spec("kill-connection@backfill:50%");
        let p = |phase, copied, est| Progress { phase, rows_copied: copied, rows_estimated: est, ..Progress::default() };
        assert!(!due_by_progress(&s, &p(Phase::Backfill, 49, 100)));
        assert!(due_by_progress(&s, &p(Phase::Backfill, 50, 100)));
        assert!(!due_by_progress(&s, &p(Phase::Checksum, 100, 100)), "another phase");
        assert!(due_by_progress(&s, &p(Phase::Backfill, 1, 0)), "no estimate: the first progress");
        assert!(!due_by_progress(&s, &p(Phase::Backfill, 0, 0)));
        let c = spec("crash@checksum:10%");
        let q = Progress { phase: Phase::Checksum, rows_checksummed: 10, rows_estimated: 100, ..Progress::default() };
        assert!(due_by_progress(&c, &q));
        assert!(due_by_progress(&spec("blocker@postponed"), &p(Phase::Postponed, 0, 0)));
        assert!(!due_by_progress(&spec("blocker@cut-over"), &p(Phase::CutOver, 0, 0)), "entry faults fire in enter()");
    }

    /// A server that records what the injector asked of it.
    #[derive(Default)]
    struct Fake {
        log: Arc<Mutex<Vec<String>>>,
    }

    struct FakeSession {
        log: Arc<Mutex<Vec<String>>>,
    }

    #[async_trait]
    impl FaultSession for FakeSession {
        async fn step(&mut self) -> Result<()> {
            tokio::time::sleep(Duration::from_millis(5)).await;
            Ok(())
        }
        async fn release(self: Box<Self>) -> Result<()> {
            self.log.lock().unwrap().push("release".into());
            Ok(())
        }
    }

    #[async_trait]
    impl Rehearsal for Fake {
        async fn kill_own_sessions(&self) -> Result<Vec<String>> {
            self.log.lock().unwrap().push("kill".into());
            Ok(vec!["session 7".into()])
        }
        async fn open_blocker(&self, _names: &Names) -> Result<Box<dyn FaultSession>> {
            self.log.lock().unwrap().push("blocker".into());
            Ok(Box::new(FakeSession { log: self.log.clone() }))
        }
        async fn pause_replica_apply(&self) -> Result<()> {
            self.log.lock().unwrap().push("pause".into());
            Ok(())
        }
        async fn resume_replica_apply(&self) -> Result<()> {
            self.log.lock().unwrap().push("resume".into());
            Ok(())
        }
    }

    fn names() -> Names {
        Names::new(&crate::model::TableRef::new("s", "t"), 64, |s| s.chars().count())
    }

    #[tokio::test]
    async fn without_faults_nothing_is_asked_of_the_server() {
        let fake = Arc::new(Fake::default());
        let log = fake.log.clone();
        let inj = Injector::new(&[], fake.clone(), vec![fake]);
        let (tx, rx) = watch::channel(Progress::default());
        inj.start(&names(), rx.clone());
        for phase in [Phase::Preflight, Phase::CreateShadow, Phase::Backfill, Phase::Checksum, Phase::CutOver] {
            tx.send_modify(|p| p.phase = phase);
            inj.enter(phase, &names(), &rx).await;
        }
        assert!(inj.finish(&RunFacts::default()).await.is_empty());
        assert!(log.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn entry_faults_are_in_place_before_enter_returns_and_released_at_finish() {
        let fake = Arc::new(Fake::default());
        let log = fake.log.clone();
        let faults = [spec("blocker@cut-over:1h"), spec("kill-connection@backfill"), spec("replica-pause@checksum:1h")];
        let inj = Injector::new(&faults, fake.clone(), vec![fake]);
        let (tx, rx) = watch::channel(Progress::default());
        inj.start(&names(), rx.clone());
        for phase in [Phase::CreateShadow, Phase::InstallCapture, Phase::Backfill] {
            tx.send_modify(|p| p.phase = phase);
            inj.enter(phase, &names(), &rx).await;
        }
        assert_eq!(*log.lock().unwrap(), ["kill"]);
        tx.send_modify(|p| p.phase = Phase::Checksum);
        inj.enter(Phase::Checksum, &names(), &rx).await;
        tx.send_modify(|p| p.phase = Phase::CutOver);
        inj.enter(Phase::CutOver, &names(), &rx).await;
        assert_eq!(*log.lock().unwrap(), ["kill", "pause", "blocker"], "in place when enter returns");
        let facts = RunFacts {
            swapped: true,
            cut_over_attempts: 2,
            writes_blocked: Duration::from_millis(12),
            rows_checksummed: Some(5),
            reconnects: 1,
            lock_timeout: Duration::from_secs(2),
            ..RunFacts::default()
        };
        let reports = inj.finish(&facts).await;
        let mut l = log.lock().unwrap().clone();
        l.sort();
        assert_eq!(l, ["blocker", "kill", "pause", "release", "resume"], "held faults end with the run");
        assert_eq!(reports.len(), 3);
        assert!(reports.iter().all(|r| r.fired_at.is_some()));
        assert_eq!(reports[0].phase, Some(Phase::CutOver));
        assert!(reports[0].response.contains("2 attempt(s) (each of the 1 failed attempt(s) may have held up"), "{}", reports[0]);
        assert!(reports[0].response.contains("for up to the lock timeout, 2.0 s)"), "{}", reports[0]);
        assert_eq!(reports[0].writes_blocked_ms, Some(12));
        assert_eq!(reports[1].checksum_matched, Some(true));
        assert!(reports[1].to_string().contains("terminated 1 session(s)"), "{}", reports[1]);
        assert!(reports[1].response.starts_with("reconnected 1 time(s)"), "{}", reports[1]);
        assert!(reports[2].response.starts_with("throttled"), "{}", reports[2]);
    }

    #[tokio::test]
    async fn percent_faults_fire_from_the_progress_and_unreached_ones_say_so() {
        let fake = Arc::new(Fake::default());
        let log = fake.log.clone();
        let faults = [spec("kill-connection@backfill:50%"), spec("kill-connection@postponed")];
        let inj = Injector::new(&faults, fake.clone(), vec![]);
        let (tx, rx) = watch::channel(Progress { rows_estimated: 100, ..Progress::default() });
        inj.start(&names(), rx.clone());
        tx.send_modify(|p| p.phase = Phase::Backfill);
        inj.enter(Phase::Backfill, &names(), &rx).await;
        tx.send_modify(|p| p.rows_copied = 40);
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(log.lock().unwrap().is_empty(), "not at 40%");
        tx.send_modify(|p| p.rows_copied = 60);
        for _ in 0..100 {
            if !log.lock().unwrap().is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(*log.lock().unwrap(), ["kill"]);
        let reports = inj.finish(&RunFacts { swapped: true, ..RunFacts::default() }).await;
        assert_eq!(reports[0].phase, Some(Phase::Backfill));
        assert!(reports[1].fired_at.is_none());
        assert!(reports[1].to_string().contains("did not reach postponed"), "{}", reports[1]);
    }

    #[tokio::test]
    async fn a_resumed_run_does_not_crash_again_and_says_it_resumed() {
        let fake = Arc::new(Fake::default());
        let faults = [spec("crash@backfill"), spec("crash@checksum:50%")];
        let inj = Injector::new(&faults, fake, vec![]);
        let (_tx, rx) = watch::channel(Progress { rows_estimated: 100, ..Progress::default() });
        inj.start(&names(), rx.clone());
        inj.set_resumed();
        inj.enter(Phase::Backfill, &names(), &rx).await; // would abort the test process otherwise
        let facts = RunFacts {
            swapped: true,
            resumed_from: Some(Phase::Checksum),
            rows_checksummed: Some(100),
            writes_blocked: Duration::from_millis(9),
            ..RunFacts::default()
        };
        let reports = inj.finish(&facts).await;
        for r in &reports {
            assert!(r.fired_at.is_none() && r.injected.starts_with("fired in the run this one resumed"), "{r}");
            assert_eq!((r.writes_blocked_ms, r.checksum_matched), (Some(9), Some(true)), "{r}");
            assert!(r.response.contains("resumed: the same command continued the crashed run (stopped in checksum)"), "{r}");
        }
    }

    #[tokio::test]
    async fn unsupported_faults_are_reported_and_the_run_goes_on() {
        let fake = Arc::new(Fake::default());
        let faults = [spec("lock-storm@cut-over:1s"), spec("replica-pause@backfill")];
        let inj = Injector::new(&faults, fake, vec![]);
        let (_tx, rx) = watch::channel(Progress::default());
        inj.start(&names(), rx.clone());
        inj.enter(Phase::Backfill, &names(), &rx).await;
        inj.enter(Phase::CutOver, &names(), &rx).await;
        let reports = inj.finish(&RunFacts::default()).await;
        assert!(reports[0].injected.contains("could not inject: --inject-fault lock-storm is not supported"), "{}", reports[0]);
        assert!(reports[1].injected.contains("needs a --replica"), "{}", reports[1]);
    }
}
