//! Keyset chunking: chunk sizing that targets a time per chunk, and the walk over key ranges.

use std::time::Duration;

use crate::dialect::Dialect;
use crate::error::Result;
use crate::preflight::plan::Plan;

/// Chooses the next chunk's size (rows) from how long the last one took.
///
/// Adaptive sizing aims each chunk at `target` wall time: after an overrun the size shrinks at
/// once to what would have fit; after a fast chunk it grows by at most `max_growth` (so one lucky
/// chunk does not produce a huge one). A fixed size never changes.
#[derive(Debug, Clone)]
pub struct ChunkSizer {
    rows: u64,
    target: Duration,
    max_rows: u64,
    max_growth: f64,
    fixed: bool,
}

impl ChunkSizer {
    /// Adaptive sizing starting at `initial` rows, never above `max_rows`.
    pub fn adaptive(target: Duration, initial: u64, max_rows: u64, max_growth: f64) -> Self {
        Self { rows: initial.clamp(1, max_rows.max(1)), target, max_rows: max_rows.max(1), max_growth, fixed: false }
    }

    /// Always `rows` rows.
    pub fn fixed(rows: u64) -> Self {
        Self { rows: rows.max(1), target: Duration::ZERO, max_rows: rows.max(1), max_growth: 1.0, fixed: true }
    }

    /// Rows for the next chunk.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Record that a chunk of `self.rows()` rows took `elapsed`.
    pub fn observe(&mut self, elapsed: Duration) {
        if self.fixed {
            return;
        }
        let secs = elapsed.as_secs_f64().max(1e-4);
        let ideal = self.rows as f64 * self.target.as_secs_f64() / secs;
        let next = if ideal < self.rows as f64 { ideal } else { ideal.min(self.rows as f64 * self.max_growth) };
        self.rows = (next.floor() as u64).clamp(1, self.max_rows);
    }
}

/// A walk over `(after, upto]` key ranges from the lowest key to the high watermark.
pub struct ChunkWalk<'a, D: Dialect> {
    dialect: &'a D,
    plan: &'a Plan,
    high: Option<D::Key>,
    after: Option<D::Key>,
    /// The chunk sizer; call `observe` after each chunk.
    pub sizer: ChunkSizer,
}

impl<'a, D: Dialect> ChunkWalk<'a, D> {
    /// A walk up to the table's current highest key (nothing to walk when the table is empty).
    pub async fn new(dialect: &'a D, plan: &'a Plan, sizer: ChunkSizer) -> Result<Self> {
        let high = dialect.key_range(plan).await?.map(|(_, high)| high);
        if let Some(h) = &high {
            tracing::debug!(high_watermark = %h, "key range");
        }
        Ok(Self { dialect, plan, high, after: None, sizer })
    }

    /// A walk that continues after `after` (the checkpoint's low watermark; `None`: from the
    /// start) up to `high` (the high watermark the backfill took when it began; `None`: the table
    /// was empty).
    pub fn resume(dialect: &'a D, plan: &'a Plan, sizer: ChunkSizer, after: Option<D::Key>, high: Option<D::Key>) -> Self {
        Self { dialect, plan, high, after, sizer }
    }

    /// The high watermark, if the table had rows.
    pub fn high_watermark(&self) -> Option<&D::Key> {
        self.high.as_ref()
    }

    /// The low watermark: every key at or below it has been handed out.
    pub fn low_watermark(&self) -> Option<&D::Key> {
        self.after.as_ref()
    }

    /// The next range `(after, upto]`, or `None` when the walk reached the high watermark.
    pub async fn next(&mut self) -> Result<Option<(Option<D::Key>, D::Key)>> {
        let Some(high) = &self.high else { return Ok(None) };
        if self.after.as_ref() == Some(high) {
            return Ok(None);
        }
        let upto = self.dialect.chunk_end(self.plan, self.after.as_ref(), high, self.sizer.rows()).await?;
        let after = self.after.replace(upto.clone());
        Ok(Some((after, upto)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[test]
    fn grows_slowly_and_shrinks_at_once() {
        let mut s = ChunkSizer::adaptive(MS(500), 1000, 1_000_000, 1.5);
        s.observe(MS(50)); // ten times too fast: grow by 1.5 only
        assert_eq!(s.rows(), 1500);
        s.observe(MS(3000)); // six times too slow: shrink to what fits
        assert_eq!(s.rows(), 250);
        s.observe(MS(500));
        assert_eq!(s.rows(), 250, "on target: stay");
    }

    #[test]
    fn bounds_and_fixed() {
        let mut s = ChunkSizer::adaptive(MS(500), 10, 20, 10.0);
        s.observe(MS(1));
        assert_eq!(s.rows(), 20, "capped at max");
        s.observe(Duration::from_secs(3600));
        assert_eq!(s.rows(), 1, "never below one row");
        let mut f = ChunkSizer::fixed(7);
        f.observe(Duration::from_secs(100));
        assert_eq!(f.rows(), 7);
    }
}
