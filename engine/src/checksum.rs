//! Checksum: compare the original and the shadow chunk by chunk before anything irreversible.
//!
//! Each chunk is read from both tables inside one consistent snapshot. The capture triggers
//! write the shadow inside the writer's own transaction, so in any snapshot the two tables agree
//! exactly; a difference is a real defect and stops the run before the cut-over. The first chunk
//! has no lower bound and the last no upper bound, so every row of both tables is compared, not
//! only the key range the backfill walked: a walk that stopped early cannot go unnoticed. Compared are the
//! row count and an order-independent hash of the columns whose type and collation the ALTER
//! leaves unchanged (the plan lists the others).
//!
//! Up to [`ChecksumConfig::threads`] chunks are compared at once, each in its own session and
//! snapshot (the server reads them on as many cores). The walk still hands out the key ranges in
//! order, and results are taken in key order too: the first mismatching chunk in key order is the
//! one reported, whichever finished first, and `rows_checksummed` counts only a gap-free prefix of
//! compared chunks.

use std::collections::VecDeque;
use std::fmt;
use std::future::{poll_fn, Future};
use std::pin::{pin, Pin};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::backfill::chunker::ChunkSizer;
use crate::backfill::chunker::ChunkWalk;
use crate::config::{ChecksumConfig, CopyConfig};
use crate::dialect::{ChunkChecksum, Dialect};
use crate::error::{Error, Result};
use crate::preflight::plan::Plan;
use crate::progress::Progress;
use crate::retry::{sleep_unless_cancelled, with_retry};
use crate::throttle::Throttle;

/// Compare every chunk, up to `cfg.threads` at once (one when [`ChecksumConfig::gentle`], each
/// then followed by a pause as long as it took); returns the number of rows compared.
///
/// Errors: [`Error::ChecksumMismatch`] naming the first differing chunk in key order (the chunks
/// still in flight are dropped, their read-only transactions rolled back); [`Error::Cancelled`];
/// the throttle's refusal; a chunk's database error once its retries are spent.
pub async fn run<D: Dialect>(
    dialect: &D,
    plan: &Plan,
    cfg: &ChecksumConfig,
    copy: &CopyConfig,
    cancel: &CancellationToken,
    progress: &watch::Sender<Progress>,
    throttle: &mut Throttle,
) -> Result<u64> {
    let sizer = ChunkSizer::adaptive(cfg.chunk_time, copy.initial_chunk_rows * 10, copy.max_chunk_rows * 10, copy.max_growth)
        .with_min_rows(copy.min_chunk_rows * 10);
    let mut walk = ChunkWalk::new(dialect, plan, sizer).await?;
    let policy = copy.chunk_retry_policy();
    let gentle = cfg.gentle;
    let threads = if gentle { 1 } else { cfg.threads.max(1) };
    let mut in_flight = InFlight::default();
    let mut walked = false;
    let mut rows = 0;
    loop {
        let room = !walked && in_flight.len() < threads;
        // With room for another chunk, take only a result that is already there; otherwise
        // wait for the oldest chunk (the others keep running meanwhile).
        let done = if room { in_flight.take_oldest_done() } else { in_flight.oldest().await };
        if let Some((chunk, outcome)) = done {
            let ((orig, shadow), elapsed) = outcome?;
            tracing::debug!(
                chunk = %chunk,
                rows = orig.rows,
                ms = elapsed.as_millis() as u64,
                in_flight = in_flight.len() + 1,
                "checksum chunk compared"
            );
            walk.sizer.observe(elapsed);
            if orig != shadow {
                return Err(mismatch(plan, &chunk, orig, shadow));
            }
            rows += orig.rows;
            progress.send_modify(|p| p.rows_checksummed = rows);
            if gentle {
                // One chunk at a time, and as long again left to the application.
                sleep_unless_cancelled(elapsed, cancel).await;
            }
            continue;
        }
        if !room {
            break; // walked to the end and nothing in flight
        }
        let Some((after, upto)) = in_flight.alongside(walk.next()).await? else {
            walked = true;
            continue;
        };
        if cancel.is_cancelled() {
            return Err(Error::Cancelled("stopped during checksum".into()));
        }
        // Chunks in flight keep running while throttled (their snapshots end sooner so).
        in_flight.alongside(throttle.wait_clear(cancel)).await?;
        // The last chunk is open-ended: rows above the high watermark are compared too.
        let last = walk.high_watermark() == Some(&upto);
        let chunk = Chunk { after: after.clone(), upto: upto.clone(), last };
        in_flight.start(
            chunk,
            Box::pin(async move {
                let t0 = Instant::now();
                let bound = (!last).then_some(&upto);
                let sums =
                    with_retry("checksumming a chunk", policy, cancel, || dialect.checksum_chunk(plan, after.as_ref(), bound))
                        .await?;
                Ok((sums, t0.elapsed()))
            }),
        );
    }
    Ok(rows)
}

/// The error for a chunk whose two sides differ.
fn mismatch<K: fmt::Display>(plan: &Plan, chunk: &Chunk<K>, orig: ChunkChecksum, shadow: ChunkChecksum) -> Error {
    Error::ChecksumMismatch {
        table: plan.names.table.clone(),
        chunk: chunk.to_string(),
        detail: format!(
            "original {} rows hash {:016x}, shadow {} rows hash {:016x}",
            orig.rows, orig.hash, shadow.rows, shadow.hash
        ),
    }
}

/// A key range handed out by the walk: `(after, upto]`, or `(after, end]` when `last`.
struct Chunk<K> {
    after: Option<K>,
    upto: K,
    last: bool,
}

/// `(after, upto]`, with `start` and `end` for the open bounds.
impl<K: fmt::Display> fmt::Display for Chunk<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.after {
            Some(k) => write!(f, "({k}, ")?,
            None => write!(f, "(start, ")?,
        }
        if self.last {
            write!(f, "end]")
        } else {
            write!(f, "{}]", self.upto)
        }
    }
}

/// One chunk's result: `(original, shadow)` and the chunk's own wall time (for the sizer).
type ChunkOutcome = Result<((ChunkChecksum, ChunkChecksum), Duration)>;

/// A chunk's comparison, running or finished.
enum State<'a> {
    Running(Pin<Box<dyn Future<Output = ChunkOutcome> + Send + 'a>>),
    Done(ChunkOutcome),
}

/// The chunks in flight, in key order (oldest first). They run in this task, not spawned (they
/// borrow the dialect and the plan): every wait of the loop goes through [`InFlight::alongside`]
/// or [`InFlight::oldest`], which poll them all.
struct InFlight<'a, K> {
    chunks: VecDeque<(Chunk<K>, State<'a>)>,
}

impl<K> Default for InFlight<'_, K> {
    fn default() -> Self {
        Self { chunks: VecDeque::new() }
    }
}

impl<'a, K> InFlight<'a, K> {
    fn len(&self) -> usize {
        self.chunks.len()
    }

    /// Add a chunk (after every chunk already in flight: call in key order). It first runs at
    /// the next [`InFlight::alongside`] or [`InFlight::oldest`].
    fn start(&mut self, chunk: Chunk<K>, run: Pin<Box<dyn Future<Output = ChunkOutcome> + Send + 'a>>) {
        self.chunks.push_back((chunk, State::Running(run)));
    }

    /// Poll every running chunk once, keeping the results of those that finished.
    fn poll_all(&mut self, cx: &mut Context<'_>) {
        for (_, state) in &mut self.chunks {
            if let State::Running(run) = state {
                if let Poll::Ready(outcome) = run.as_mut().poll(cx) {
                    *state = State::Done(outcome);
                }
            }
        }
    }

    /// The oldest chunk, if it has finished.
    fn take_oldest_done(&mut self) -> Option<(Chunk<K>, ChunkOutcome)> {
        if !matches!(self.chunks.front(), Some((_, State::Done(_)))) {
            return None;
        }
        match self.chunks.pop_front() {
            Some((chunk, State::Done(outcome))) => Some((chunk, outcome)),
            _ => None,
        }
    }

    /// Run `other` to its end while the chunks in flight keep running.
    async fn alongside<T>(&mut self, other: impl Future<Output = T>) -> T {
        let mut other = pin!(other);
        poll_fn(|cx| {
            self.poll_all(cx);
            other.as_mut().poll(cx)
        })
        .await
    }

    /// Wait for the oldest chunk to finish (the others keep running) and take it; `None` when
    /// nothing is in flight.
    async fn oldest(&mut self) -> Option<(Chunk<K>, ChunkOutcome)> {
        poll_fn(|cx| {
            self.poll_all(cx);
            match self.chunks.front() {
                None => Poll::Ready(None),
                Some((_, State::Running(_))) => Poll::Pending,
                Some((_, State::Done(_))) => Poll::Ready(self.take_oldest_done()),
            }
        })
        .await
    }
}
