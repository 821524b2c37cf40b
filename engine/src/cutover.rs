//! Cut-over: wait while postponed, then swap under a short lock timeout with bounded,
//! backed-off retries. A failed attempt leaves the original serving; the capture keeps the
//! shadow in sync between attempts.

use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::config::CutOverConfig;
use crate::dialect::{Dialect, Signals};
use crate::error::{Error, ErrorClass, Result};
use crate::plan::Plan;
use crate::retry::{with_retry, RetryPolicy};

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
        tokio::select! {
            _ = tokio::time::sleep(cfg.poll_interval) => {}
            _ = cancel.cancelled() => return Err(Error::Cancelled("stopped while the cut-over was postponed".into())),
        }
    }
    tracing::info!(waited_s = started.elapsed().as_secs(), "postpone flag file removed; cutting over");
    Ok(started.elapsed())
}

/// Wait until the cut-over window opens, checking every `poll_interval`.
pub async fn wait_for_window(
    window: &crate::throttle::window::CutOverWindow,
    cfg: &CutOverConfig,
    cancel: &CancellationToken,
) -> Result<()> {
    let until = window.until_open(jiff::Timestamp::now());
    tracing::info!(window = %window, opens_in_s = until.as_secs(), "cut-over waits for its window; capture keeps the shadow in sync");
    while !window.contains(jiff::Timestamp::now()) {
        tokio::select! {
            _ = tokio::time::sleep(cfg.poll_interval) => {}
            _ = cancel.cancelled() => return Err(Error::Cancelled("stopped while waiting for the cut-over window".into())),
        }
    }
    tracing::info!(window = %window, "cut-over window open");
    Ok(())
}

/// Before an attempt: wait (at most `cfg.blocker_wait`) while transactions that would make the
/// lock request queue are open, logging them once. Attempting anyway after that is still
/// bounded by the lock timeout.
async fn wait_for_blockers<D: Signals>(dialect: &D, plan: &Plan, cfg: &CutOverConfig, cancel: &CancellationToken) -> Result<()> {
    if cfg.blocker_wait.is_zero() {
        return Ok(());
    }
    let deadline = Instant::now() + cfg.blocker_wait;
    let mut logged = false;
    loop {
        let blockers = dialect.cut_over_blockers(&plan.names, cfg.lock_timeout).await?;
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
        tokio::select! {
            _ = tokio::time::sleep(cfg.poll_interval.min(Duration::from_millis(500))) => {}
            _ = cancel.cancelled() => return Err(Error::Cancelled("stopped while waiting for blocking transactions".into())),
        }
    }
}

/// Result of a successful cut-over.
#[derive(Debug, Clone, Copy)]
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
    let policy = RetryPolicy { retries: cfg.retries, min_delay: cfg.backoff_min, max_delay: cfg.backoff_max };
    let mut attempts = 0u32;
    let r = with_retry("cut-over", policy, cancel, || {
        attempts += 1;
        let n = attempts;
        async move {
            wait_for_blockers(dialect, plan, cfg, cancel).await?;
            // Whatever happened while waiting (postponed, window, blockers, replicas): a TRUNCATE or
            // DDL the capture did not see stops the run here, before any lock is taken.
            dialect.verify_before_cut_over(plan).await?;
            tracing::info!(attempt = n, lock_timeout_ms = cfg.lock_timeout.as_millis() as u64, "cut-over attempt");
            let t0 = Instant::now();
            dialect.cut_over(plan, cfg.lock_timeout).await?;
            Ok(t0.elapsed())
        }
    })
    .await;
    match r {
        Ok(swap_time) => Ok(CutOverStats { attempts, swap_time }),
        Err(e) if matches!(e.class(), ErrorClass::LockTimeout | ErrorClass::Deadlock) => {
            Err(Error::CutOverExhausted { attempts, lock_timeout_ms: cfg.lock_timeout.as_millis() as u64, last: e.to_string() })
        }
        Err(e) => Err(e),
    }
}
