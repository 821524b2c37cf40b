//! The throttler: pauses the backfill and the checksum (never the capture, which runs in the
//! application's own transactions) while any signal is over its limit, and aborts the run when a
//! critical limit is crossed.
//!
//! Signals: replica lag from shadowswap's own heartbeat ([`heartbeat`]), server load (a status
//! variable such as `Threads_running`, or PostgreSQL's active backends), an operator query, and a
//! flag file. [`start`] spawns, for the runner that owns them ([`Tasks`]), the heartbeat writer and
//! a task that reads the signals every [`ThrottleConfig::check_interval`] and publishes a
//! [`ThrottleState`]; chunk loops (and the cut-over) wait on it with [`Throttle::wait_clear`].
//! Each start, change of reason and end of throttling is logged once, with the measured value.
//!
//! The settings ([`ThrottleConfig`], [`Threshold`]) live in [`crate::config`] and are re-exported
//! here.

pub mod heartbeat;

/// The cut-over window's old path: it is configuration and lives in [`crate::config`].
pub mod window {
    pub use crate::config::CutOverWindow;
}

pub use crate::config::{Threshold, ThrottleConfig};

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::cleanup::Undo;
use crate::dialect::Signals;
use crate::error::{Error, Result};
use crate::names::Names;
use crate::progress::Progress;
use heartbeat::HeartbeatLog;

/// One signal, read once.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    /// Which signal and condition this is, without the measured value (`replica … lag`,
    /// `replica … unreachable`, `Threads_running`, …): throttling is logged again only when the
    /// set of signals over their limits changes, not each time a value moves while over it.
    pub signal: String,
    /// What was measured and its value, e.g. `replica mysql://…:33307 lag 3.2 s (max 1 s)`.
    pub text: String,
    /// Over its throttle limit.
    pub over: bool,
    /// Over a critical limit: abort.
    pub critical: bool,
}

/// What the throttler concluded from its last readings.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ThrottleState {
    /// Why copying is paused now (`None`: go).
    pub reason: Option<String>,
    /// Why the run must stop (critical load).
    pub abort: Option<String>,
}

/// The verdict for a set of readings: abort on any critical one, else throttle on the first over
/// its limit (all of them are named), else go.
pub fn judge(readings: &[Reading]) -> ThrottleState {
    if let Some(c) = readings.iter().find(|r| r.critical) {
        return ThrottleState { reason: Some(c.text.clone()), abort: Some(c.text.clone()) };
    }
    let over: Vec<&str> = readings.iter().filter(|r| r.over).map(|r| r.text.as_str()).collect();
    ThrottleState { reason: (!over.is_empty()).then(|| over.join("; ")), abort: None }
}

/// The chunk loops' view of the throttler.
#[derive(Clone)]
pub struct Throttle {
    rx: watch::Receiver<ThrottleState>,
}

impl Throttle {
    /// A throttle that never pauses (no signals configured).
    pub fn never() -> Self {
        let (_tx, rx) = watch::channel(ThrottleState::default());
        Self { rx }
    }

    /// Fed by a throttler task.
    pub fn new(rx: watch::Receiver<ThrottleState>) -> Self {
        Self { rx }
    }

    /// The current reason to pause, if any.
    pub fn reason(&self) -> Option<String> {
        self.rx.borrow().reason.clone()
    }

    /// Return once nothing is over its limit. Errors: [`Error::Refused`] with the reading when a
    /// critical limit is crossed; [`Error::Cancelled`].
    pub async fn wait_clear(&mut self, cancel: &CancellationToken) -> Result<()> {
        loop {
            let state = self.rx.borrow_and_update().clone();
            if let Some(why) = state.abort {
                return Err(Error::refused(format!("critical load: {why}; the run was stopped and what it created removed")));
            }
            if state.reason.is_none() {
                return Ok(());
            }
            tokio::select! {
                changed = self.rx.changed() => if changed.is_err() { return Ok(()) },
                _ = cancel.cancelled() => return Err(Error::Cancelled("stopped while throttled".into())),
            }
        }
    }
}

/// Heartbeat writes remembered for the lag figure (at the default 100 ms interval, almost three
/// hours' worth): a replica further behind reads as at least as old as the oldest.
const HEARTBEAT_WRITES_KEPT: usize = 100_000;

/// Background tasks of one run (heartbeat writer, throttler): owned by the run, stopped and
/// awaited on every path ([`Tasks::shutdown`]); none is detached.
pub struct Tasks {
    stop: CancellationToken,
    handles: Vec<tokio::task::JoinHandle<()>>,
}

impl Tasks {
    /// Stop every task and wait for each to end.
    pub async fn shutdown(self) {
        self.stop.cancel();
        for h in self.handles {
            let _ = h.await;
        }
    }
}

/// Start throttling for one run: with `replicas`, create the heartbeat table (recorded in `undo`
/// first), write the first heartbeat and spawn its writer; with any signal (replicas or
/// [`ThrottleConfig::primary_signals`]), spawn the throttler. Without signals: a
/// [`Throttle::never`] and no tasks. The tasks stop when `stop` is cancelled or at
/// [`Tasks::shutdown`]. Until the throttler's first verdict the returned throttle pauses.
///
/// Errors: creating the heartbeat table or writing the first heartbeat.
pub async fn start<D: Signals + 'static>(
    primary: &Arc<D>,
    replicas: &[Arc<D>],
    names: &Names,
    cfg: &ThrottleConfig,
    progress: &watch::Sender<Progress>,
    stop: CancellationToken,
    undo: &mut Undo,
) -> Result<(Throttle, Tasks)> {
    let mut handles = Vec::new();
    if replicas.is_empty() && !cfg.primary_signals() {
        return Ok((Throttle::never(), Tasks { stop, handles }));
    }
    let log = Arc::new(Mutex::new(HeartbeatLog::new(HEARTBEAT_WRITES_KEPT)));
    if !replicas.is_empty() {
        undo.heartbeat = true;
        primary.heartbeat_create(names).await?;
        // The first heartbeat before the first verdict, so replica lag is known from the
        // first check (otherwise it reads "lag unknown" and throttles for a moment).
        let seq = log.lock().expect("heartbeat log").next_seq();
        primary.heartbeat_write(names, seq).await?;
        log.lock().expect("heartbeat log").written(seq, Instant::now());
        handles.push(tokio::spawn(write_heartbeat(
            primary.clone(),
            names.clone(),
            cfg.heartbeat_interval,
            log.clone(),
            stop.clone(),
        )));
    }
    // Nothing is copied before the first verdict.
    let (tx, rx) = watch::channel(ThrottleState { reason: Some("first throttle check".into()), abort: None });
    handles.push(tokio::spawn(run_throttler(
        primary.clone(),
        replicas.to_vec(),
        names.clone(),
        cfg.clone(),
        log,
        tx,
        progress.clone(),
        stop.clone(),
    )));
    Ok((Throttle::new(rx), Tasks { stop, handles }))
}

/// Write the heartbeat on the primary every `interval` until `stop`.
pub async fn write_heartbeat<D: Signals + 'static>(
    primary: Arc<D>,
    names: Names,
    interval: Duration,
    log: Arc<Mutex<HeartbeatLog>>,
    stop: CancellationToken,
) {
    let mut failing = false;
    loop {
        let seq = log.lock().expect("heartbeat log").next_seq();
        let written = tokio::select! {
            r = primary.heartbeat_write(&names, seq) => r,
            _ = stop.cancelled() => return,
        };
        match written {
            Ok(()) => {
                log.lock().expect("heartbeat log").written(seq, Instant::now());
                if failing {
                    tracing::info!("heartbeat writes work again");
                    failing = false;
                }
            }
            Err(e) if !failing => {
                tracing::warn!(error = %e, "heartbeat write failed; replica lag cannot be measured until it works again");
                failing = true;
            }
            Err(_) => {}
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = stop.cancelled() => return,
        }
    }
}

fn fmt_secs(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

/// `read`, or why it gave no value: its error, or no answer within `timeout`.
async fn bounded<T>(timeout: Duration, read: impl std::future::Future<Output = Result<T>>) -> std::result::Result<T, String> {
    match tokio::time::timeout(timeout, read).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {}", fmt_secs(timeout))),
    }
}

/// Read every signal once.
pub async fn read_signals<D: Signals + 'static>(
    primary: &D,
    replicas: &[Arc<D>],
    names: &Names,
    cfg: &ThrottleConfig,
    log: &Mutex<HeartbeatLog>,
) -> Vec<Reading> {
    let mut out = Vec::new();
    for r in replicas {
        let target = r.target();
        match bounded(cfg.signal_timeout, r.heartbeat_read(names)).await {
            Ok(applied) => {
                let (lag, newest) = {
                    let log = log.lock().expect("heartbeat log");
                    (log.lag(applied, Instant::now()), log.newest_age(Instant::now()))
                };
                // Without recent heartbeat writes the lag cannot be known: that throttles too
                // (a replica must never be assumed caught up because the primary stopped saying).
                let stale_after = cfg.max_lag.max(cfg.heartbeat_interval * 10);
                match newest {
                    None => out.push(Reading {
                        signal: format!("replica {target} lag unknown"),
                        text: format!("replica {target} lag unknown: no heartbeat written on the primary yet"),
                        over: true,
                        critical: false,
                    }),
                    Some(age) if age > stale_after => out.push(Reading {
                        signal: format!("replica {target} lag unknown"),
                        text: format!(
                            "replica {target} lag unknown: the last heartbeat write on the primary was {} ago (writes are failing)",
                            fmt_secs(age)
                        ),
                        over: true,
                        critical: false,
                    }),
                    Some(_) => {}
                }
                if let Some(lag) = lag {
                    out.push(Reading {
                        signal: format!("replica {target} lag"),
                        text: format!("replica {target} lag {} (max {})", fmt_secs(lag), fmt_secs(cfg.max_lag)),
                        over: lag > cfg.max_lag,
                        critical: false,
                    });
                }
            }
            Err(e) => out.push(Reading {
                signal: format!("replica {target} unreachable"),
                text: format!("replica {target} unreachable: {e}"),
                over: true,
                critical: false,
            }),
        }
    }
    for (list, critical) in [(&cfg.max_load, false), (&cfg.critical_load, true)] {
        for t in list {
            match bounded(cfg.signal_timeout, primary.status_value(&t.name)).await {
                Ok(v) => out.push(Reading {
                    signal: t.name.clone(),
                    text: format!("{} = {v} (limit {})", t.name, t.limit),
                    over: v > t.limit,
                    critical: critical && v > t.limit,
                }),
                Err(e) => out.push(Reading {
                    signal: format!("{} unreadable", t.name),
                    text: format!("{} unreadable: {e}", t.name),
                    over: true,
                    critical: false,
                }),
            }
        }
    }
    if let Some(q) = &cfg.throttle_query {
        match bounded(cfg.signal_timeout, primary.query_value(q)).await {
            Ok(v) => out.push(Reading {
                signal: "throttle query".into(),
                text: format!("throttle query returned {v}"),
                over: v != 0.0,
                critical: false,
            }),
            Err(e) => out.push(Reading {
                signal: "throttle query failed".into(),
                text: format!("throttle query failed: {e}"),
                over: true,
                critical: false,
            }),
        }
    }
    if let Some(f) = &cfg.flag_file {
        if f.exists() {
            out.push(Reading {
                signal: "throttle flag file".into(),
                text: format!("throttle flag file {} exists", f.display()),
                over: true,
                critical: false,
            });
        }
    }
    out
}

/// The signals over their limits, by [`Reading::signal`]: what a logged change is.
fn over_signals(readings: &[Reading]) -> Vec<String> {
    readings.iter().filter(|r| r.over || r.critical).map(|r| r.signal.clone()).collect()
}

/// The throttler task: read the signals every `check_interval`, publish the verdict, log each
/// change once (start, change of the signals over their limits, end; not a value moving while
/// over), show the current reason with its values in the progress, until `stop`.
#[allow(clippy::too_many_arguments)]
pub async fn run_throttler<D: Signals + 'static>(
    primary: Arc<D>,
    replicas: Vec<Arc<D>>,
    names: Names,
    cfg: ThrottleConfig,
    log: Arc<Mutex<HeartbeatLog>>,
    tx: watch::Sender<ThrottleState>,
    progress: watch::Sender<Progress>,
    stop: CancellationToken,
) {
    let mut since = Instant::now();
    // The signals over their limits as last logged (not the channel's initial "first check"
    // placeholder), and the reason last shown in the progress.
    let mut announced: Vec<String> = Vec::new();
    let mut shown: Option<String> = None;
    loop {
        let readings = tokio::select! {
            r = read_signals(&*primary, &replicas, &names, &cfg, &log) => r,
            _ = stop.cancelled() => return,
        };
        let state = judge(&readings);
        let over = over_signals(&readings);
        if over != announced {
            match (&state.reason, announced.is_empty()) {
                (Some(r), true) => {
                    since = Instant::now();
                    tracing::warn!(reason = %r, "throttling: copying paused (capture keeps running)")
                }
                (Some(r), false) => tracing::warn!(reason = %r, "throttling: reason changed"),
                (None, false) => {
                    tracing::info!(throttled_s = since.elapsed().as_secs_f64(), "throttling ended: copying resumes")
                }
                (None, true) => {}
            }
            announced = over;
        }
        if state.reason != shown {
            progress.send_modify(|p| p.throttle_reason = state.reason.clone());
            shown = state.reason.clone();
        }
        let _ = tx.send(state);
        tokio::select! {
            _ = tokio::time::sleep(cfg.check_interval) => {}
            _ = stop.cancelled() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(text: &str, over: bool, critical: bool) -> Reading {
        Reading { signal: text.into(), text: text.into(), over, critical }
    }

    #[test]
    fn verdicts() {
        assert_eq!(judge(&[r("a", false, false)]), ThrottleState::default());
        let s = judge(&[r("lag", true, false), r("load", true, false), r("ok", false, false)]);
        assert_eq!(s.reason.as_deref(), Some("lag; load"));
        assert!(s.abort.is_none());
        let s = judge(&[r("lag", true, false), r("crit", true, true)]);
        assert_eq!(s.abort.as_deref(), Some("crit"));
    }

    #[test]
    fn a_value_moving_while_over_is_not_a_new_reason() {
        let lag = |secs: &str| Reading {
            signal: "replica r lag".into(),
            text: format!("replica r lag {secs} s (max 1.0 s)"),
            over: true,
            critical: false,
        };
        assert_eq!(over_signals(&[lag("1.1")]), over_signals(&[lag("3.4")]));
        assert_ne!(judge(&[lag("1.1")]).reason, judge(&[lag("3.4")]).reason, "the progress shows the value");
        assert_ne!(over_signals(&[lag("1.1")]), over_signals(&[lag("1.1"), r("flag", true, false)]));
    }

    #[tokio::test]
    async fn a_reading_without_answer_counts_as_failed() {
        let hung = bounded(Duration::from_millis(100), std::future::pending::<Result<u64>>()).await;
        assert_eq!(hung.unwrap_err(), "no answer within 0.1 s");
        assert_eq!(bounded(Duration::from_millis(100), async { Ok(7u64) }).await, Ok(7));
    }

    #[tokio::test]
    async fn wait_clear_follows_the_state() {
        let (tx, rx) = watch::channel(ThrottleState { reason: Some("lag".into()), abort: None });
        let mut t = Throttle::new(rx);
        let cancel = CancellationToken::new();
        let waiter = tokio::spawn(async move { t.wait_clear(&cancel).await });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished(), "paused while throttled");
        tx.send(ThrottleState::default()).unwrap();
        assert!(waiter.await.unwrap().is_ok());

        let (tx, rx) = watch::channel(ThrottleState::default());
        tx.send(ThrottleState { reason: Some("x".into()), abort: Some("Threads_running = 90 (limit 50)".into()) }).unwrap();
        let err = Throttle::new(rx).wait_clear(&CancellationToken::new()).await.unwrap_err();
        assert!(err.to_string().contains("critical load: Threads_running = 90"), "{err}");
    }
}
