//! Checksum: compare the original and the shadow chunk by chunk before anything irreversible.
//!
//! Each chunk is read from both tables inside one consistent snapshot. The capture triggers
//! write the shadow inside the writer's own transaction, so in any snapshot the two tables agree
//! exactly; a difference is a real defect and stops the run before the cut-over. The first chunk
//! has no lower bound and the last no upper bound, so every row of both tables is compared, not
//! only the key range the backfill walked: a walk that stopped early cannot go unnoticed. Compared are the
//! row count and an order-independent hash of the columns whose type and collation the ALTER
//! leaves unchanged (the plan lists the others).

use std::time::Instant;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::backfill::chunker::ChunkSizer;
use crate::backfill::chunker::ChunkWalk;
use crate::config::{ChecksumConfig, CopyConfig};
use crate::dialect::Dialect;
use crate::error::{Error, Result};
use crate::preflight::plan::Plan;
use crate::progress::Progress;
use crate::retry::with_retry;
use crate::throttle::Throttle;

/// Compare every chunk; returns the number of rows compared.
pub async fn run<D: Dialect>(
    dialect: &D,
    plan: &Plan,
    cfg: &ChecksumConfig,
    copy: &CopyConfig,
    cancel: &CancellationToken,
    progress: &watch::Sender<Progress>,
    throttle: &mut Throttle,
) -> Result<u64> {
    let sizer = ChunkSizer::adaptive(cfg.chunk_time, copy.initial_chunk_rows * 10, copy.max_chunk_rows * 10, copy.max_growth);
    let mut walk = ChunkWalk::new(dialect, plan, sizer).await?;
    let policy = copy.chunk_retry_policy();
    let mut rows = 0;
    while let Some((after, upto)) = walk.next().await? {
        if cancel.is_cancelled() {
            return Err(Error::Cancelled("stopped during checksum".into()));
        }
        throttle.wait_clear(cancel).await?;
        let t0 = Instant::now();
        // The last chunk is open-ended: rows above the high watermark are compared too.
        let last = walk.high_watermark() == Some(&upto);
        let bound = (!last).then_some(&upto);
        let (orig, shadow) =
            with_retry("checksumming a chunk", policy, cancel, || dialect.checksum_chunk(plan, after.as_ref(), bound)).await?;
        walk.sizer.observe(t0.elapsed());
        if orig != shadow {
            return Err(Error::ChecksumMismatch {
                table: plan.names.table.clone(),
                chunk: format!(
                    "({}, {}]",
                    after.map(|k| k.to_string()).unwrap_or_else(|| "start".into()),
                    if last { "end".to_string() } else { upto.to_string() }
                ),
                detail: format!(
                    "original {} rows hash {:016x}, shadow {} rows hash {:016x}",
                    orig.rows, orig.hash, shadow.rows, shadow.hash
                ),
            });
        }
        rows += orig.rows;
        progress.send_modify(|p| p.rows_checksummed = rows);
    }
    Ok(rows)
}
