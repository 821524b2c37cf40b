//! Cut-over: wait until the cut-over may happen, then swap under a short lock timeout with
//! bounded, backed-off retries. A failed attempt leaves the original serving; the capture keeps
//! the shadow in sync while waiting and between attempts.
//!
//! - [`wait_until_ready`] — the wait before the cut-over: while the postpone flag file exists,
//!   until the cut-over window is open, and until the throttle is clear (replicas within the max
//!   lag); the progress shows [`Phase::Postponed`] and what is waited for.
//! - [`cut_over`] — the attempts: each waits for blocking transactions to end (at most
//!   [`CutOverConfig::blocker_wait`]), checks the capture ([`capture::verify`]), then swaps.
//! - [`alter_in_place`] — the `--attempt-instant-ddl` path: the ALTER on the table itself, under
//!   the same lock timeout and retries.

use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::capture;
use crate::config::{CutOverConfig, CutOverWindow};
use crate::dialect::{Dialect, Signals};
use crate::error::{Error, ErrorClass, Result};
use crate::names::Names;
use crate::phase::Phase;
use crate::preflight::plan::Plan;
use crate::progress::LOG_TARGET;
use crate::progress::{self, Progress};
use crate::retry::{sleep_unless_cancelled, with_retry};
use crate::throttle::Throttle;

/// Wait until the cut-over may happen: first while the postpone flag file exists, then, until
/// both hold at the same moment, for the cut-over window to open and for the throttle to clear
/// (replicas within the max lag, no other signal over its limit). While postponed or outside the
/// window the progress shows [`Phase::Postponed`] and what the run waits for.
///
/// Errors: [`Error::Cancelled`]; [`Error::Refused`] when a critical load limit is crossed.
pub async fn wait_until_ready(
    cfg: &CutOverConfig,
    throttle: &mut Throttle,
    progress: &watch::Sender<Progress>,
    cancel: &CancellationToken,
) -> Result<()> {
    if let Some(flag) = cfg.postpone_flag_file.as_ref().filter(|f| f.exists()) {
        progress::set_phase(progress, Phase::Postponed);
        progress.send_modify(|p| p.waiting_for = Some(format!("postpone flag file {}", flag.display())));
        wait_while_postponed(cfg, cancel).await?;
    }
    loop {
        if let Some(window) = &cfg.window {
            if !window.contains(jiff::Timestamp::now()) {
                if progress.borrow().phase != Phase::Postponed {
                    progress::set_phase(progress, Phase::Postponed);
                }
                progress.send_modify(|p| p.waiting_for = Some(format!("cut-over window {window}")));
                wait_for_window(window, cfg, cancel).await?;
            }
        }
        // Replicas within the max lag (and no other signal over its limit) before swapping.
        if throttle.reason().is_some() {
            tracing::info!(target: LOG_TARGET, reason = ?throttle.reason(), "cut-over waits for the throttle to clear");
        }
        throttle.wait_clear(cancel).await?;
        // Waiting for the throttle may have outlasted the window: then wait for the next one.
        if cfg.window.as_ref().is_none_or(|w| w.contains(jiff::Timestamp::now())) {
            return Ok(());
        }
    }
}

/// Wait while the postpone flag file exists, checking every `poll_interval`. Logs once when the
/// wait starts and once when it ends.
pub async fn wait_while_postponed(cfg: &CutOverConfig, cancel: &CancellationToken) -> Result<Duration> {
    let Some(flag) = &cfg.postpone_flag_file else { return Ok(Duration::ZERO) };
    let started = Instant::now();
    if !flag.exists() {
        return Ok(Duration::ZERO);
    }
    tracing::info!(flag = %flag.display(), "cut-over postponed while the flag file exists; capture keeps the shadow in sync");
    while flag.exists() {
        if sleep_unless_cancelled(cfg.poll_interval, cancel).await {
            return Err(Error::Cancelled("stopped while the cut-over was postponed".into()));
        }
    }
    tracing::info!(waited_s = started.elapsed().as_secs(), "postpone flag file removed; cutting over");
    Ok(started.elapsed())
}

/// Wait until the cut-over window opens, checking every `poll_interval`.
pub async fn wait_for_window(window: &CutOverWindow, cfg: &CutOverConfig, cancel: &CancellationToken) -> Result<()> {
    let until = window.until_open(jiff::Timestamp::now());
    tracing::info!(window = %window, opens_in_s = until.as_secs(), "cut-over waits for its window; capture keeps the shadow in sync");
    while !window.contains(jiff::Timestamp::now()) {
        if sleep_unless_cancelled(cfg.poll_interval, cancel).await {
            return Err(Error::Cancelled("stopped while waiting for the cut-over window".into()));
        }
    }
    tracing::info!(window = %window, "cut-over window open");
    Ok(())
}

/// Before an attempt: wait (at most `cfg.blocker_wait`) while transactions that would make the
/// lock request queue are open, logging them once. Attempting anyway after that is still
/// bounded by the lock timeout.
async fn wait_for_blockers<D: Signals>(
    dialect: &D,
    names: &Names,
    cfg: &CutOverConfig,
    cancel: &CancellationToken,
) -> Result<()> {
    if cfg.blocker_wait.is_zero() {
        return Ok(());
    }
    let deadline = Instant::now() + cfg.blocker_wait;
    let mut logged = false;
    loop {
        let blockers = dialect.cut_over_blockers(names, cfg.lock_timeout).await?;
        if blockers.is_empty() {
            if logged {
                tracing::info!("the blocking transactions ended");
            }
            return Ok(());
        }
        if !logged {
            tracing::warn!(blockers = %blockers.join("; "), "cut-over waits instead of queueing behind open transactions");
            logged = true;
        }
        if Instant::now() >= deadline {
            tracing::warn!(blockers = %blockers.join("; "), "still open after the blocker wait; attempting (bounded by the lock timeout)");
            return Ok(());
        }
        if sleep_unless_cancelled(cfg.blocker_poll_interval(), cancel).await {
            return Err(Error::Cancelled("stopped while waiting for blocking transactions".into()));
        }
    }
}

/// Result of a successful cut-over.
#[derive(Debug, Clone, Copy, Default)]
pub struct CutOverStats {
    /// Attempts made, the successful one included.
    pub attempts: u32,
    /// Wall time of the successful swap statement, lock wait included: how long application
    /// writes (and reads, while its lock request was queued) on the table were blocked by it.
    pub swap_time: Duration,
}

/// Swap the tables; on exhaustion returns [`Error::CutOverExhausted`].
pub async fn cut_over<D: Dialect>(
    dialect: &D,
    plan: &Plan,
    cfg: &CutOverConfig,
    cancel: &CancellationToken,
) -> Result<CutOverStats> {
    attempts(dialect, &plan.names, cfg, cancel, "cut-over", |lock_timeout| async move {
        // Whatever happened while waiting (postponed, window, blockers, replicas): a TRUNCATE or
        // DDL the capture did not see stops the run here, before any lock is taken.
        capture::verify(dialect, plan).await?;
        dialect.cut_over(plan, lock_timeout).await
    })
    .await
}

/// The cut-over controller, for any swap: each attempt waits for blocking transactions on
/// `names.table` (at most [`CutOverConfig::blocker_wait`]), then runs `swap(lock_timeout)`,
/// retried with backoff on lock timeouts and deadlocks. `what` names it in the log ("cut-over",
/// "revert"). `swap` returns the wall time of its blocking part (the swap statement or
/// transaction, lock wait included), which becomes [`CutOverStats::swap_time`].
/// Used by [`cut_over`] and by the revert window ([`crate::revert`]). Errors:
/// [`Error::CutOverExhausted`] on exhaustion; `swap`'s otherwise.
pub async fn attempts<D, F, Fut>(
    dialect: &D,
    names: &Names,
    cfg: &CutOverConfig,
    cancel: &CancellationToken,
    what: &str,
    swap: F,
) -> Result<CutOverStats>
where
    D: Signals,
    F: Fn(Duration) -> Fut,
    Fut: std::future::Future<Output = Result<Duration>>,
{
    let mut attempts = 0u32;
    let swap = &swap;
    let r = with_retry(what, cfg.retry_policy(), cancel, || {
        attempts += 1;
        let n = attempts;
        async move {
            wait_for_blockers(dialect, names, cfg, cancel).await?;
            tracing::info!(attempt = n, lock_timeout_ms = cfg.lock_timeout.as_millis() as u64, "{what} attempt");
            swap(cfg.lock_timeout).await
        }
    })
    .await;
    r.map(|swap_time| CutOverStats { attempts, swap_time }).map_err(|e| exhausted(e, attempts, cfg))
}

/// The `--attempt-instant-ddl` path: apply the ALTER to the table itself, each attempt waiting at
/// most [`CutOverConfig::lock_timeout`] for its lock, retried like the cut-over. Nothing is
/// created, so nothing needs undoing. Returns the attempts made and the duration of the whole
/// (as [`CutOverStats::swap_time`]); `None` when the server refused to apply it in place (nothing
/// changed: the run copies). Errors: [`Error::CutOverExhausted`] when every attempt timed out on
/// its lock; the dialect's otherwise.
pub async fn alter_in_place<D: Dialect>(
    dialect: &D,
    plan: &Plan,
    cfg: &CutOverConfig,
    cancel: &CancellationToken,
) -> Result<Option<CutOverStats>> {
    let mut attempts = 0u32;
    let applied = with_retry("in-place ALTER", cfg.retry_policy(), cancel, || {
        attempts += 1;
        dialect.alter_in_place(&plan.names, &plan.analysis, cfg.lock_timeout)
    })
    .await
    .map_err(|e| exhausted(e, attempts, cfg))?;
    let Some(swap_time) = applied else { return Ok(None) };
    tracing::info!(target: LOG_TARGET, attempts, "ALTER applied in place (metadata only)");
    Ok(Some(CutOverStats { attempts, swap_time }))
}

/// A lock timeout or deadlock on the last of `attempts` becomes [`Error::CutOverExhausted`]
/// (which says what to look for); any other error stays as it is.
fn exhausted(e: Error, attempts: u32, cfg: &CutOverConfig) -> Error {
    match e.class() {
        ErrorClass::LockTimeout | ErrorClass::Deadlock => {
            Error::CutOverExhausted { attempts, lock_timeout_ms: cfg.lock_timeout.as_millis() as u64, last: e.to_string() }
        }
        _ => e,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::throttle::ThrottleState;

    fn at_checksum() -> watch::Sender<Progress> {
        watch::Sender::new(Progress { phase: Phase::Checksum, ..Progress::default() })
    }

    fn fast() -> CutOverConfig {
        CutOverConfig { poll_interval: Duration::from_millis(5), ..CutOverConfig::default() }
    }

    #[tokio::test]
    async fn nothing_to_wait_for_leaves_the_phase_alone() {
        let progress = at_checksum();
        wait_until_ready(&fast(), &mut Throttle::never(), &progress, &CancellationToken::new()).await.unwrap();
        assert_eq!(progress.borrow().phase, Phase::Checksum);
        assert_eq!(progress.borrow().waiting_for, None);
    }

    #[tokio::test]
    async fn postponed_while_the_flag_file_exists() {
        let flag = std::env::temp_dir().join(format!("ssw-cutover-test-{}", std::process::id()));
        std::fs::write(&flag, b"").unwrap();
        let cfg = CutOverConfig { postpone_flag_file: Some(flag.clone()), ..fast() };
        let progress = at_checksum();
        let mut rx = progress.subscribe();
        let waiter = {
            let progress = progress.clone();
            tokio::spawn(
                async move { wait_until_ready(&cfg, &mut Throttle::never(), &progress, &CancellationToken::new()).await },
            )
        };
        rx.wait_for(|p| p.phase == Phase::Postponed).await.unwrap();
        assert_eq!(progress.borrow().waiting_for, Some(format!("postpone flag file {}", flag.display())));
        tokio::time::sleep(Duration::from_millis(30)).await;
        assert!(!waiter.is_finished(), "waits while the file exists");
        std::fs::remove_file(&flag).unwrap();
        waiter.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn waits_for_the_throttle_and_stops_when_cancelled() {
        let (tx, rx) = watch::channel(ThrottleState { reason: Some("replica r lag 3.0 s (max 1.0 s)".into()), abort: None });
        let progress = at_checksum();
        let waiter = {
            let progress = progress.clone();
            tokio::spawn(
                async move { wait_until_ready(&fast(), &mut Throttle::new(rx), &progress, &CancellationToken::new()).await },
            )
        };
        tokio::time::sleep(Duration::from_millis(30)).await;
        assert!(!waiter.is_finished(), "the cut-over waits for the replicas");
        tx.send(ThrottleState::default()).unwrap();
        waiter.await.unwrap().unwrap();
        assert_eq!(progress.borrow().phase, Phase::Checksum, "a throttle is not a postponement");

        let (_tx, rx) = watch::channel(ThrottleState { reason: Some("lag".into()), abort: None });
        let cancel = CancellationToken::new();
        cancel.cancel();
        let err = wait_until_ready(&fast(), &mut Throttle::new(rx), &at_checksum(), &cancel).await.unwrap_err();
        assert!(matches!(err, Error::Cancelled(_)), "{err}");
    }

    #[test]
    fn lock_timeouts_on_the_last_attempt_say_what_to_do() {
        let cfg = CutOverConfig { lock_timeout: Duration::from_millis(1500), ..CutOverConfig::default() };
        let db = |class| Error::Database { context: "swapping the tables".into(), message: "Lock wait timeout".into(), class };
        let e = exhausted(db(ErrorClass::LockTimeout), 11, &cfg);
        assert!(
            e.to_string().starts_with("cut-over failed after 11 attempts (each waited at most 1500 ms for its locks): swapping the tables: Lock wait timeout;"),
            "{e}"
        );
        assert!(matches!(exhausted(db(ErrorClass::Deadlock), 2, &cfg), Error::CutOverExhausted { attempts: 2, .. }));
        assert!(matches!(exhausted(db(ErrorClass::Fatal), 2, &cfg), Error::Database { .. }));
    }
}
