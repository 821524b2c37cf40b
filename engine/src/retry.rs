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
    /// Largest wait between attempts, jitter included (the exponential delay is capped at half
    /// of it, and jitter adds a random part of up to the same again).
    pub max_delay: Duration,
}

/// Run `op` until it succeeds, fails with a non-retryable error, or `policy.retries` retries
/// are used up (then the last error is returned). Each retry is logged with its delay.
///
/// Cancellation never interrupts a statement in flight (a cut-over `RENAME` that is already
/// running must be allowed to finish, or the run could not tell whether it swapped): it cuts
/// short the backoff wait and stops further attempts, returning [`Error::Cancelled`].
pub async fn with_retry<T, F, Fut>(what: &str, policy: RetryPolicy, cancel: &CancellationToken, mut op: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    if cancel.is_cancelled() {
        return Err(Error::Cancelled(format!("stopped before {what}")));
    }
    let backoff = ExponentialBuilder::default()
        .with_min_delay(policy.min_delay)
        .with_max_delay(policy.max_delay / 2)
        .with_max_times(policy.retries as usize)
        .with_jitter();
    let sleep_token = cancel.clone();
    let sleeper = move |delay: Duration| {
        let token = sleep_token.clone();
        async move {
            sleep_unless_cancelled(delay, &token).await;
        }
    };
    // backon starts the next attempt as soon as a (cut short) wait ends: each attempt first
    // checks for cancellation, so none starts after it.
    let attempt = || {
        let cancelled = cancel.is_cancelled();
        let fut = op();
        async move {
            if cancelled {
                return Err(Error::Cancelled(String::new()));
            }
            fut.await
        }
    };
    let result = attempt
        .retry(backoff)
        .sleep(sleeper)
        .when(|e: &Error| e.is_retryable() && !cancel.is_cancelled())
        .notify(|e: &Error, delay: Duration| {
            tracing::warn!(what, error = %e, retry_in_ms = delay.as_millis() as u64, "{what} failed, retrying");
        })
        .await;
    match result {
        Err(Error::Cancelled(_)) => Err(Error::Cancelled(format!("stopped during {what}"))),
        Err(e) if e.is_retryable() && cancel.is_cancelled() => Err(Error::Cancelled(format!("stopped during {what} ({e})"))),
        other => other,
    }
}

/// Sleep for `delay`, cut short by `cancel`. Returns true when cancelled (at once if it
/// already was), false when the whole delay passed.
pub async fn sleep_unless_cancelled(delay: Duration, cancel: &CancellationToken) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(delay) => false,
        _ = cancel.cancelled() => true,
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
    async fn cancellation_cuts_the_backoff_but_not_the_attempt() {
        let cancel = CancellationToken::new();
        let slow = RetryPolicy { retries: 5, min_delay: Duration::from_secs(60), max_delay: Duration::from_secs(60) };
        let n = AtomicU32::new(0);
        let started = std::time::Instant::now();
        let r: Result<()> = with_retry("t", slow, &cancel, || async {
            n.fetch_add(1, Ordering::SeqCst);
            // The attempt runs to completion even though cancellation arrives meanwhile.
            cancel.cancel();
            tokio::time::sleep(Duration::from_millis(20)).await;
            Err(timeout())
        })
        .await;
        assert!(matches!(r, Err(Error::Cancelled(_))), "{r:?}");
        assert_eq!(n.load(Ordering::SeqCst), 1, "no attempt after cancellation");
        assert!(started.elapsed() < Duration::from_secs(5), "the 60 s backoff was cut short");
    }

    #[tokio::test]
    async fn no_attempt_starts_after_a_cancelled_wait() {
        // Cancellation arrives during the backoff wait (not during an attempt): the wait ends
        // early and no further attempt runs.
        let cancel = CancellationToken::new();
        let slow = RetryPolicy { retries: 5, min_delay: Duration::from_secs(60), max_delay: Duration::from_secs(60) };
        let n = AtomicU32::new(0);
        let canceller = {
            let c = cancel.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(50)).await;
                c.cancel();
            })
        };
        let r: Result<()> = with_retry("t", slow, &cancel, || async {
            n.fetch_add(1, Ordering::SeqCst);
            Err(timeout())
        })
        .await;
        canceller.await.unwrap();
        assert!(matches!(r, Err(Error::Cancelled(_))), "{r:?}");
        assert_eq!(n.load(Ordering::SeqCst), 1, "the attempt after the cut-short wait must not run");
    }

    #[tokio::test]
    async fn cancelled_before_start_runs_nothing() {
        let cancel = CancellationToken::new();
        cancel.cancel();
        let slow = RetryPolicy { retries: 5, min_delay: Duration::from_secs(60), max_delay: Duration::from_secs(60) };
        let r: Result<()> = with_retry("t", slow, &cancel, || async { Err(timeout()) }).await;
        assert!(matches!(r, Err(Error::Cancelled(_))));
    }
}
