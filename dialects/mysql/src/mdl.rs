//! Taking a table's exclusive metadata lock without queueing the application behind it.
//!
//! A statement that waits for a table's exclusive metadata lock (MDL) stands in the lock's queue
//! ahead of every later request: while it waits, the application's statements on the table wait
//! behind it. Worse, a transaction that has already read the table (it holds a shared MDL) and
//! then writes it asks for a stronger shared MDL, which queues behind the waiting exclusive
//! request, which waits for that same transaction: MariaDB's MDL deadlock detector then picks the
//! application's transaction as the victim (DDL weighs more), and the application gets error 1213
//! "Deadlock found". Under the benchmark's `oltp_read_write` load that happened at almost every
//! capture install and cut-over (`docs/benchmarks.md`).
//!
//! MariaDB does not queue a metadata lock request made with `lock_wait_timeout = 0`: when the
//! lock is not free at once, the statement fails with 1205 and leaves no request behind
//! (`MDL_context::acquire_lock` in MariaDB's `sql/mdl.cc`; the KB's "WAIT and NOWAIT" page).
//! [`take_without_queueing`] therefore tries its statement that way every
//! [`NO_QUEUE_INTERVAL`] (plus jitter), lock timeout ÷ 10 ms times (2 to 4 s at the default 2 s),
//! which succeeds at the first moment no transaction has the table open, and only then falls
//! back to waiting in the queue for at most the lock timeout (so a table that never has such a
//! moment still gets its lock).
//!
//! Only for statements that take the lock first and hold it for milliseconds (`LOCK TABLES …
//! WRITE`, `RENAME TABLE`, `ALTER TABLE … ALGORITHM=INSTANT`). Not for an `ALTER TABLE …
//! ALGORITHM=INPLACE`, which upgrades its lock again at its end: without waiting, that upgrade
//! could fail after the whole build.

use std::time::{Duration, Instant};

use backon::{ConstantBuilder, RetryableWithContext};
use mysql_async::prelude::Queryable;
use mysql_async::Conn;

use crate::connect::whole_seconds;
use crate::{errors, sql};

/// How long to wait between two tries without queueing (plus a random part of up to as much
/// again). At 200 short transactions a second on the table, one of the first few tries finds it
/// free.
pub(crate) const NO_QUEUE_INTERVAL: Duration = Duration::from_millis(10);

/// How many tries without queueing fit in `lock_timeout` at [`NO_QUEUE_INTERVAL`] (at least one).
pub(crate) fn no_queue_tries(lock_timeout: Duration) -> usize {
    (lock_timeout.as_millis() / NO_QUEUE_INTERVAL.as_millis()).max(1) as usize
}

/// Run `stmt` (one that takes an exclusive metadata lock first and holds it briefly) in session
/// `c`: first as [`sql::without_queueing`] every [`NO_QUEUE_INTERVAL`] while it fails with
/// 1205, [`no_queue_tries`]`(lock_timeout)` times in all; then, if none got the lock, once as
/// [`sql::with_lock_timeout`], waiting in the queue for at most `lock_timeout`. Returns the
/// session and, on success, the wall time of the execution that took the lock (the time the
/// application's statements on the table may have waited for it). Errors: the server's error
/// of the last execution (1205 when the queued wait timed out too).
pub(crate) async fn take_without_queueing(
    c: Conn,
    stmt: &str,
    lock_timeout: Duration,
) -> (Conn, Result<Duration, mysql_async::Error>) {
    take_without_queueing_as(c, stmt, |secs| sql::with_lock_timeout(secs, stmt), lock_timeout).await
}

/// [`take_without_queueing`] for a statement that sets its own lock wait: `build(secs)` is the
/// statement waiting at most `secs` seconds (0: not queueing); `what` names it in the log.
pub(crate) async fn take_without_queueing_as(
    c: Conn,
    what: &str,
    build: impl Fn(u64) -> String,
    lock_timeout: Duration,
) -> (Conn, Result<Duration, mysql_async::Error>) {
    let nowait = build(0);
    let once = |q: String| {
        move |mut c: Conn| {
            let q = q.clone();
            async move {
                let t0 = Instant::now();
                let r = c.query_drop(q).await.map(|()| t0.elapsed());
                (c, r)
            }
        }
    };
    let backoff =
        ConstantBuilder::default().with_delay(NO_QUEUE_INTERVAL).with_jitter().with_max_times(no_queue_tries(lock_timeout) - 1);
    let (c, r) = once(nowait).retry(backoff).context(c).when(|e| errors::code(e) == Some(errors::LOCK_WAIT_TIMEOUT)).await;
    match r {
        Err(e) if errors::code(&e) == Some(errors::LOCK_WAIT_TIMEOUT) => {
            tracing::info!(
                statement = what,
                lock_timeout_ms = lock_timeout.as_millis() as u64,
                "the table was never free of open transactions while trying without queueing; waiting in the queue for its metadata lock"
            );
            once(build(whole_seconds(lock_timeout)))(c).await
        }
        r => (c, r),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tries_fill_the_lock_timeout_and_there_is_always_one() {
        assert_eq!(no_queue_tries(Duration::from_secs(2)), 200);
        assert_eq!(no_queue_tries(Duration::from_millis(15)), 1);
        assert_eq!(no_queue_tries(Duration::ZERO), 1);
    }
}
