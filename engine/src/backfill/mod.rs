//! Backfill: copy the rows that existed when the capture started, in key-ordered chunks.
//!
//! Rows are copied server-side by the dialect's `copy_chunk` (`INSERT … SELECT`), so they never
//! pass through shadowswap and its memory does not grow with the table. Capture triggers keep
//! every concurrent change flowing into the shadow meanwhile; `copy_chunk` is written so that a
//! chunk never resurrects a deleted row or overwrites a newer version.
//!
//! Each chunk advances the [checkpoint](crate::checkpoint) in its own transaction. A fresh
//! backfill takes the high watermark and records it first; a resumed one continues after the
//! checkpoint's low watermark up to the high watermark it recorded.

pub mod chunker;

use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::checkpoint::{Checkpoint, ChunkMark};
use crate::config::CopyConfig;
use crate::dialect::Dialect;
use crate::error::{Error, Result};
use crate::phase::Phase;
use crate::preflight::plan::Plan;
use crate::progress::Progress;
use crate::retry::{sleep_unless_cancelled, with_retry, RetryPolicy};
use crate::throttle::Throttle;
use chunker::{ChunkSizer, ChunkWalk};

/// What the backfill did.
#[derive(Debug, Clone, Copy, Default)]
pub struct BackfillStats {
    /// Rows copied by this run (rows).
    pub rows: u64,
    /// Rows an earlier, interrupted run had copied before this one resumed (rows).
    pub rows_before: u64,
    /// Chunks copied.
    pub chunks: u64,
    /// Chunk attempts that met a row an application transaction held and were rolled back at
    /// once and planned again smaller (see [`NOWAIT_ATTEMPTS`]).
    pub conflicts: u64,
    /// Chunks copied while writers were contending for row locks or writing rows ahead of the
    /// copy (a live table): each was aimed at [`CopyConfig::max_latency`] and followed by a pause
    /// as long as it took.
    pub contended_chunks: u64,
    /// Whether the copy's last chunks ran contended (writers were waiting for row locks, or
    /// writing rows ahead of the copy): the checksum then runs gently (`checksum::run`).
    pub ended_contended: bool,
    /// Rows copied when the shadow's deferred secondary indexes were built during the copy,
    /// because the table showed itself live early ([`EarlyIndexes`]); `None` when they were not (left to
    /// phase `build indexes`, or nothing was deferred, or this run resumed past that point).
    pub indexes_built_at_rows: Option<u64>,
    /// Wall time of the backfill.
    pub elapsed: Duration,
}

/// The shadow's deferred secondary indexes ([`Dialect::build_deferred_indexes`]), built during
/// the copy when the table shows itself live (writers contend for rows, or a chunk finds rows the
/// application wrote ahead of the copy, [`crate::dialect::ChunkCopied::written_ahead`]) while
/// less than [`EarlyIndexes::SHARE`] of the table is copied, instead of in bulk after it (phase
/// `build indexes`, which then finds them built and does nothing).
///
/// Why: the bulk build is the fastest way on an idle server, but it is one statement that cannot
/// be paced. On a busy one it takes a core for seconds, and at its end it holds the shadow's
/// metadata lock, for which the capture triggers of the application's writes wait. Under the
/// benchmark's load on MariaDB (`docs/benchmarks.md`) the seconds around it were the workload's
/// worst, p99 150 to 300 ms against 15 ms without a migration. Built while the shadow is still
/// small, the indexes cost little to build, and keeping them up row by row during the rest of the
/// copy is paced with it (contended chunks pause as long as they took).
#[derive(Debug, Clone, Copy)]
pub struct EarlyIndexes {
    /// How long one attempt of the build waits for its metadata locks (the cut-over's lock
    /// timeout, as for phase `build indexes`).
    pub lock_timeout: Duration,
    /// How the build is retried (the cut-over's retries).
    pub policy: RetryPolicy,
}

impl EarlyIndexes {
    /// The copied share of the table (by the plan's row estimate) below which a live table has
    /// the indexes built at once: past it, most of the bulk build's cost is incurred anyway.
    pub const SHARE: f64 = 0.25;

    /// Whether a live table seen with `copied` of `estimated` rows copied builds the indexes now.
    pub fn now(copied: u64, estimated: u64) -> bool {
        (copied as f64) < Self::SHARE * estimated as f64
    }
}

/// How many times in a row a chunk is tried without waiting for any row lock (the dialect's
/// `copy_chunk` with a zero lock wait: MariaDB `innodb_lock_wait_timeout = 0`, PostgreSQL
/// `lock_timeout = 1ms`) before it waits like any other statement, up to
/// [`CopyConfig::lock_wait_timeout`] with [`CopyConfig::retries`] retries.
///
/// The copy reads the chunk's rows with shared locks. Waiting for an application transaction
/// that holds one of them makes the copy part of that transaction's lock graph: the
/// transaction may then wait for a row the copy holds (on MariaDB also a gap of the shadow that
/// the capture trigger writes), and the server resolves the cycle by failing one side, usually
/// the application's smaller transaction, with a deadlock error. A copy that never waits cannot
/// close a cycle; it rolls its chunk back at once, halves it ([`ChunkSizer::shrink`]) and tries
/// again after a short pause ([`conflict_pause`]).
pub const NOWAIT_ATTEMPTS: u32 = 8;

/// The pause after the `n`-th conflict in a row (1-based): `n` × [`CONFLICT_PAUSE`], plus up to
/// as much again of jitter. Short and growing slowly: the transaction holding the row usually
/// ends within milliseconds, and the chunk is halved at each conflict anyway (at most
/// [`NOWAIT_ATTEMPTS`] pauses, under 0.75 s in all, before the chunk waits instead).
pub fn conflict_pause(n: u32) -> Duration {
    let base = CONFLICT_PAUSE * n.clamp(1, NOWAIT_ATTEMPTS);
    base + base.mul_f64(rand::random::<f64>())
}

/// The unit of [`conflict_pause`]: 10 ms.
pub const CONFLICT_PAUSE: Duration = Duration::from_millis(10);

/// The sizer the copy configuration asks for: adaptive to `target` from `initial` rows (a
/// resumed run: the chunk size its checkpoint recorded), or fixed; never below
/// [`CopyConfig::min_chunk_rows`]; steered by writers' lock waits down to
/// [`CopyConfig::max_latency`], after a cautious start at `chunker::CAUTIOUS_START` (see
/// [`ChunkSizer`]).
/// The shadow copy aims at `--chunk-time`, the staged backfill's `UPDATE`s at
/// [`CopyConfig::update_chunk_time`].
pub fn steered_sizer(cfg: &CopyConfig, target: Duration, initial: u64) -> ChunkSizer {
    let sizer = match cfg.fixed_chunk_rows {
        Some(n) => ChunkSizer::fixed(n),
        None => ChunkSizer::adaptive(target, initial, cfg.max_chunk_rows, cfg.max_growth),
    };
    sizer.with_min_rows(cfg.min_chunk_rows).with_contention_target(cfg.max_latency)
}

/// After a chunk that took `took` and saw `waiters` writers waiting for row locks as it
/// committed: size the next chunk ([`ChunkSizer::contended`], [`ChunkSizer::observe`]) and, while
/// writers are contending, pause as long as the chunk took, leaving them the server. Returns
/// whether the chunk counted as contended. For the shadow copy and the staged backfill alike.
pub(crate) async fn steer(sizer: &mut ChunkSizer, waiters: u64, took: Duration, cancel: &CancellationToken) -> bool {
    sizer.contended(waiters);
    sizer.observe(took);
    let contended = sizer.is_contended();
    if contended {
        sleep_unless_cancelled(took, cancel).await;
    }
    contended
}

/// Copy every chunk up to the high watermark: from the lowest key, taking the high watermark
/// now and recording it in the checkpoint (`ckpt.phase` before [`Phase::Backfill`]); or, resuming
/// (`ckpt.phase` is [`Phase::Backfill`] or later), after `ckpt.low_watermark` up to the recorded
/// high watermark. `ckpt` follows the copy (watermark, rows, chunk size).
///
/// With `early_indexes`, a table seen live early in the copy (writers contending for rows, or
/// rows written ahead of the copy) has the shadow's deferred indexes built at once
/// ([`EarlyIndexes`]); at most once per run.
///
/// Errors: the copy's ([`Dialect::copy_chunk`]) after its retries; the index build's
/// ([`Dialect::build_deferred_indexes`]) after its retries; [`Error::Cancelled`];
/// [`Error::Refused`] for a checkpoint whose keys this dialect cannot read.
#[allow(clippy::too_many_arguments)]
pub async fn run<D: Dialect>(
    dialect: &D,
    plan: &Plan,
    cfg: &CopyConfig,
    early_indexes: Option<EarlyIndexes>,
    cancel: &CancellationToken,
    progress: &watch::Sender<Progress>,
    throttle: &mut Throttle,
    ckpt: &mut Checkpoint,
) -> Result<BackfillStats> {
    let started = Instant::now();
    let mut stats = BackfillStats { rows_before: ckpt.rows_copied, ..BackfillStats::default() };
    let mut chunk_sizer = steered_sizer(cfg, cfg.chunk_time, cfg.initial_chunk_rows);
    let mut walk = if ckpt.phase >= Phase::Backfill {
        if ckpt.chunk_rows > 0 {
            chunk_sizer = steered_sizer(cfg, cfg.chunk_time, ckpt.chunk_rows);
        }
        let key = |text: &Option<String>| text.as_deref().map(|t| dialect.key_from_text(plan, t)).transpose();
        ChunkWalk::resume(dialect, plan, chunk_sizer, key(&ckpt.low_watermark)?, key(&ckpt.high_watermark)?)
    } else {
        let walk = ChunkWalk::new(dialect, plan, chunk_sizer).await?;
        ckpt.phase = Phase::Backfill;
        ckpt.high_watermark = walk.high_watermark().map(|k| dialect.key_to_text(k));
        dialect.checkpoint_write(&plan.names, ckpt).await?;
        walk
    };
    let policy = cfg.chunk_retry_policy();
    let mut last_publish = Instant::now();
    let mut conflicts = 0;
    let mut early_indexes = early_indexes;
    while let Some((after, upto)) = walk.next().await? {
        if cancel.is_cancelled() {
            return Err(Error::Cancelled("stopped during backfill".into()));
        }
        throttle.wait_clear(cancel).await?;
        let t0 = Instant::now();
        let mark = ChunkMark { low_watermark: dialect.key_to_text(&upto), chunk_rows: walk.sizer.rows() };
        let copied = if conflicts < NOWAIT_ATTEMPTS {
            match dialect.copy_chunk(plan, after.as_ref(), &upto, Duration::ZERO, &mark).await {
                Ok(copied) => copied,
                Err(e) if e.is_retryable() => {
                    // An application transaction holds a row of the chunk: the chunk rolled
                    // back at once rather than wait (and perhaps deadlock) with it. Plan the
                    // range again, smaller, after a short pause.
                    conflicts += 1;
                    stats.conflicts += 1;
                    walk.sizer.shrink();
                    walk.rewind(after);
                    let pause = conflict_pause(conflicts);
                    tracing::debug!(error = %e, conflicts, chunk_rows = walk.sizer.rows(), pause_ms = pause.as_millis() as u64, "chunk met a writer's lock; retrying it smaller");
                    sleep_unless_cancelled(pause, cancel).await;
                    continue;
                }
                Err(e) => return Err(e),
            }
        } else {
            // Met a lock NOWAIT_ATTEMPTS times in a row: wait for it, as long as the lock wait
            // timeout allows, with the usual retries.
            with_retry("copying a chunk", policy, cancel, || {
                dialect.copy_chunk(plan, after.as_ref(), &upto, cfg.lock_wait_timeout, &mark)
            })
            .await?
        };
        conflicts = 0;
        let (rows, took) = (copied.rows, t0.elapsed());
        // Rows written ahead of the copy count as one waiter: the table is live, and its copy
        // is paced as a contended one (see `steer`).
        let contended = steer(&mut walk.sizer, copied.waiters.max(u64::from(copied.written_ahead)), took, cancel).await;
        if contended {
            stats.contended_chunks += 1;
        }
        let at = ckpt.rows_copied + rows;
        // Contended covers both signals. A fixed chunk size is never steered: then only this
        // table's own signal counts (waiters are counted server-wide).
        let live = contended || copied.written_ahead;
        if let Some(build) = early_indexes.take_if(|_| live && EarlyIndexes::now(at, plan.estimated_rows())) {
            let why = if copied.written_ahead { "the application writes the table" } else { "writers contend for rows" };
            tracing::info!(
                rows = at,
                "{why} early in the copy: building the shadow's deferred indexes now, kept up row by row from here"
            );
            with_retry("building the shadow's secondary indexes", build.policy, cancel, || {
                dialect.build_deferred_indexes(plan, build.lock_timeout)
            })
            .await?;
            stats.indexes_built_at_rows = Some(at);
        }
        stats.rows += rows;
        stats.chunks += 1;
        ckpt.low_watermark = Some(mark.low_watermark);
        ckpt.rows_copied += rows;
        ckpt.chunk_rows = mark.chunk_rows;
        tracing::trace!(after = ?after, upto = %upto, rows, took_ms = took.as_millis() as u64, "chunk copied");
        if last_publish.elapsed() >= cfg.progress_interval {
            last_publish = Instant::now();
            publish(progress, ckpt.rows_copied, walk.sizer.rows());
        }
    }
    publish(progress, ckpt.rows_copied, walk.sizer.rows());
    stats.ended_contended = walk.sizer.is_contended();
    stats.elapsed = started.elapsed();
    Ok(stats)
}

fn publish(progress: &watch::Sender<Progress>, rows: u64, chunk_rows: u64) {
    progress.send_modify(|p| {
        p.rows_copied = rows;
        p.chunk_rows = chunk_rows;
    });
}
