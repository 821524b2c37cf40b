//! The throttler: pauses the backfill and the checksum (never the capture, which runs in the
//! application's own transactions) while any signal is over its limit, and aborts the run when a
//! critical limit is crossed.
//!
//! Signals ([`signals`]): replica lag from shadowswap's own heartbeat ([`heartbeat`]), server load
//! (a status variable such as `Threads_running`, or PostgreSQL's active backends), an operator
//! query, and a flag file. [`start`] spawns, for the runner that owns them ([`Tasks`]), the heartbeat writer and
//! a task that reads the signals every [`ThrottleConfig::check_interval`] and publishes a
//! [`ThrottleState`]; chunk loops (and the cut-over) wait on it with [`Throttle::wait_clear`].
//! Each start, change of reason and end of throttling is logged once, with the measured value.
//!
//! The settings ([`ThrottleConfig`], [`Threshold`]) live in [`crate::config`] and are re-exported
//! here.

pub mod heartbeat;
pub mod signals;

/// The cut-over window's old path: it is configuration and lives in [`crate::config`].
pub mod window {
    pub use crate::config::CutOverWindow;
}

pub use crate::config::{Threshold, ThrottleConfig};
pub use signals::{judge, read_signals, Reading, ThrottleState};

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
use signals::over_signals;

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
