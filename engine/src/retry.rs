//! The engine's one retry policy: exponential backoff with jitter, bounded attempts, retrying
//! only errors the dialect classified as retryable, and stopping at once when cancelled.

use std::future::Future;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use tokio_util::sync::CancellationToken;

use crate::error::{Error, Result};

/// How often and how patiently to retry.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub retries: u32,
    /// First delay; doubles each retry.
    pub min_delay: Duration,
    /// Largest delay.
    pub max_delay: Duration,
}

/// Run `op` until it succeeds, fails with a non-retryable error, or `policy.retries` retries
/// are used up (then the last error is returned). Each retry is logged with its delay.
/// Returns [`Error::Cancelled`] as soon as `cancel` fires.
pub async fn with_retry<T, F, Fut>(what: &str, policy: RetryPolicy, cancel: &CancellationToken, op: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let backoff = ExponentialBuilder::default()
        .with_min_delay(policy.min_delay)
        .with_max_delay(policy.max_delay)
        .with_max_times(policy.retries as usize)
        .with_jitter();
    let attempt = op.retry(backoff).sleep(tokio::time::sleep).when(Error::is_retryable).notify(|e: &Error, delay: Duration| {
        tracing::warn!(what, error = %e, retry_in_ms = delay.as_millis() as u64, "{what} failed, retrying");
    });
    tokio::select! {
        r = attempt => r,
        _ = cancel.cancelled() => Err(Error::Cancelled(format!("stopped during {what}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorClass;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn timeout() -> Error {
        Error::Database { context: "x".into(), message: "lock wait timeout".into(), class: ErrorClass::LockTimeout }
    }
    const FAST: RetryPolicy =
        RetryPolicy { retries: 3, min_delay: Duration::from_millis(1), max_delay: Duration::from_millis(2) };

    #[tokio::test]
    async fn retries_retryable_errors_then_gives_up() {
        let n = AtomicU32::new(0);
        let r: Result<()> = with_retry("t", FAST, &CancellationToken::new(), || async {
            n.fetch_add(1, Ordering::SeqCst);
            Err(timeout())
        })
        .await;
        assert!(r.is_err());
        assert_eq!(n.load(Ordering::SeqCst), 4, "one attempt plus three retries");
    }

    #[tokio::test]
    async fn fatal_errors_are_not_retried_and_success_stops() {
        let n = AtomicU32::new(0);
        let r: Result<()> = with_retry("t", FAST, &CancellationToken::new(), || async {
            n.fetch_add(1, Ordering::SeqCst);
            Err(Error::refused("no"))
        })
        .await;
        assert!(matches!(r, Err(Error::Refused(_))));
        assert_eq!(n.load(Ordering::SeqCst), 1);

        let n = AtomicU32::new(0);
        let r = with_retry("t", FAST, &CancellationToken::new(), || async {
            if n.fetch_add(1, Ordering::SeqCst) < 2 {
                Err(timeout())
            } else {
                Ok(7)
            }
        })
        .await;
        assert_eq!(r.unwrap(), 7);
    }

    #[tokio::test]
    async fn cancellation_interrupts_backoff() {
        let cancel = CancellationToken::new();
        cancel.cancel();
        let slow = RetryPolicy { retries: 5, min_delay: Duration::from_secs(60), max_delay: Duration::from_secs(60) };
        let r: Result<()> = with_retry("t", slow, &cancel, || async { Err(timeout()) }).await;
        assert!(matches!(r, Err(Error::Cancelled(_))));
    }
}
