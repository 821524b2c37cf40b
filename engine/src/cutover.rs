//! Cut-over: wait while postponed, then swap under a short lock timeout with bounded,
//! backed-off retries. A failed attempt leaves the original serving; the capture keeps the
//! shadow in sync between attempts.

use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::config::CutOverConfig;
use crate::dialect::Dialect;
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

/// Result of a successful cut-over.
#[derive(Debug, Clone, Copy)]
pub struct CutOverStats {
    /// Attempts made, the successful one included.
    pub attempts: u32,
    /// Wall time of the successful swap statement: an upper bound on how long application
    /// queries on the table waited for it (milliseconds precision).
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
