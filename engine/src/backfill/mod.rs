//! Backfill: copy the rows that existed when the capture started, in key-ordered chunks.
//!
//! Rows are copied server-side by the dialect's `copy_chunk` (`INSERT … SELECT`), so they never
//! pass through shadowswap and its memory does not grow with the table. Capture triggers keep
//! every concurrent change flowing into the shadow meanwhile; `copy_chunk` is written so that a
//! chunk never resurrects a deleted row or overwrites a newer version.

pub mod chunker;

use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::config::CopyConfig;
use crate::dialect::Dialect;
use crate::error::{Error, Result};
use crate::preflight::plan::Plan;
use crate::progress::Progress;
use crate::retry::with_retry;
use crate::throttle::Throttle;
use chunker::{ChunkSizer, ChunkWalk};

/// What the backfill did.
#[derive(Debug, Clone, Copy, Default)]
pub struct BackfillStats {
    /// Rows copied (rows).
    pub rows: u64,
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

/// Copy every chunk from the lowest key to the high watermark taken now.
pub async fn run<D: Dialect>(
    dialect: &D,
    plan: &Plan,
    cfg: &CopyConfig,
    cancel: &CancellationToken,
    progress: &watch::Sender<Progress>,
    throttle: &mut Throttle,
) -> Result<BackfillStats> {
    let started = Instant::now();
    let mut walk = ChunkWalk::new(dialect, plan, sizer(cfg, cfg.chunk_time)).await?;
    let mut stats = BackfillStats::default();
    let policy = cfg.chunk_retry_policy();
    let mut last_publish = Instant::now();
    while let Some((after, upto)) = walk.next().await? {
        if cancel.is_cancelled() {
            return Err(Error::Cancelled("stopped during backfill".into()));
        }
        throttle.wait_clear(cancel).await?;
        let t0 = Instant::now();
        let rows = with_retry("copying a chunk", policy, cancel, || {
            dialect.copy_chunk(plan, after.as_ref(), &upto, cfg.lock_wait_timeout)
        })
        .await?;
        let took = t0.elapsed();
        walk.sizer.observe(took);
        stats.rows += rows;
        stats.chunks += 1;
        tracing::trace!(after = ?after, upto = %upto, rows, took_ms = took.as_millis() as u64, "chunk copied");
        if last_publish.elapsed() >= cfg.progress_interval {
            last_publish = Instant::now();
            publish(progress, stats.rows, walk.sizer.rows());
        }
    }
    publish(progress, stats.rows, walk.sizer.rows());
    stats.elapsed = started.elapsed();
    Ok(stats)
}

fn publish(progress: &watch::Sender<Progress>, rows: u64, chunk_rows: u64) {
    progress.send_modify(|p| {
        p.rows_copied = rows;
        p.chunk_rows = chunk_rows;
    });
}
