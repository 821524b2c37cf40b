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
use crate::retry::with_retry;
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
    /// Wall time of the backfill.
    pub elapsed: Duration,
}

/// The sizer the copy configuration asks for.
pub fn sizer(cfg: &CopyConfig, target: Duration) -> ChunkSizer {
    match cfg.fixed_chunk_rows {
        Some(n) => ChunkSizer::fixed(n),
        None => ChunkSizer::adaptive(target, cfg.initial_chunk_rows, cfg.max_chunk_rows, cfg.max_growth),
    }
}

/// Copy every chunk up to the high watermark: from the lowest key, taking the high watermark
/// now and recording it in the checkpoint (`ckpt.phase` before [`Phase::Backfill`]); or, resuming
/// (`ckpt.phase` is [`Phase::Backfill`] or later), after `ckpt.low_watermark` up to the recorded
/// high watermark. `ckpt` follows the copy (watermark, rows, chunk size).
///
/// Errors: the copy's ([`Dialect::copy_chunk`]) after its retries; [`Error::Cancelled`];
/// [`Error::Refused`] for a checkpoint whose keys this dialect cannot read.
pub async fn run<D: Dialect>(
    dialect: &D,
    plan: &Plan,
    cfg: &CopyConfig,
    cancel: &CancellationToken,
    progress: &watch::Sender<Progress>,
    throttle: &mut Throttle,
    ckpt: &mut Checkpoint,
) -> Result<BackfillStats> {
    let started = Instant::now();
    let mut stats = BackfillStats { rows_before: ckpt.rows_copied, ..BackfillStats::default() };
    let mut chunk_sizer = sizer(cfg, cfg.chunk_time);
    let mut walk = if ckpt.phase >= Phase::Backfill {
        if ckpt.chunk_rows > 0 && cfg.fixed_chunk_rows.is_none() {
            chunk_sizer = ChunkSizer::adaptive(cfg.chunk_time, ckpt.chunk_rows, cfg.max_chunk_rows, cfg.max_growth);
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
    while let Some((after, upto)) = walk.next().await? {
        if cancel.is_cancelled() {
            return Err(Error::Cancelled("stopped during backfill".into()));
        }
        throttle.wait_clear(cancel).await?;
        let t0 = Instant::now();
        let mark = ChunkMark { low_watermark: dialect.key_to_text(&upto), chunk_rows: walk.sizer.rows() };
        let rows = with_retry("copying a chunk", policy, cancel, || {
            dialect.copy_chunk(plan, after.as_ref(), &upto, cfg.lock_wait_timeout, &mark)
        })
        .await?;
        let took = t0.elapsed();
        walk.sizer.observe(took);
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
    stats.elapsed = started.elapsed();
    Ok(stats)
}

fn publish(progress: &watch::Sender<Progress>, rows: u64, chunk_rows: u64) {
    progress.send_modify(|p| {
        p.rows_copied = rows;
        p.chunk_rows = chunk_rows;
    });
}
