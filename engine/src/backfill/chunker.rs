//! Keyset chunking: chunk sizing that targets a time per chunk, and the walk over key ranges.

use std::time::Duration;

use crate::dialect::Dialect;
use crate::error::Result;
use crate::preflight::plan::Plan;

/// Chooses the next chunk's size (rows) from how long the last one took.
///
/// Adaptive sizing aims each chunk at `target` wall time: after an overrun the size shrinks at
/// once to what would have fit; after a fast chunk it grows by at most `max_growth` (so one lucky
/// chunk does not produce a huge one).
/// A fixed size never changes.
///
/// Under contention ([`Self::contended`]: writers were waiting for row locks when a chunk
/// committed) the target drops to a shorter one, so each chunk holds its locks for less time;
/// after [`CALM_CHUNKS`] chunks in a row that no one waited for, spanning at least
/// [`CALM_TIME`] of copying, it doubles back towards the configured target (and again after as
/// many more).
///
/// With a contention target, the sizer also *starts* short, at [`CAUTIOUS_START`] (or the
/// contention target if that is longer), and earns the configured target the same way, by calm
/// chunks and calm time (a cautious start): waiters are only counted when a chunk commits, so the
/// first chunk to hold its locks long enough to make writers wait would otherwise be a full
/// `target` long (500 ms by default) before anything noticed. Short chunks cost little on an idle
/// table (`docs/benchmarks.md`). A cautious start is not contention: no pause, and
/// [`Self::is_contended`] stays false until writers are seen waiting.
#[derive(Debug, Clone)]
pub struct ChunkSizer {
    rows: u64,
    target: Duration,
    base_target: Duration,
    contended_target: Option<Duration>,
    calm: u32,
    /// Copy time (the calm chunks' `elapsed`) since writers were last seen waiting or the target
    /// last doubled.
    calm_time: Duration,
    /// The last chunk passed to [`Self::contended`] saw no waiter.
    last_calm: bool,
    /// Writers were seen waiting, and the target has not yet climbed back to `base_target`.
    contended: bool,
    min_rows: u64,
    max_rows: u64,
    max_growth: f64,
    fixed: bool,
}

/// Where a steered sizer's target starts (unless its contention target is longer): 10 ms. Not the
/// contention target itself, 5 ms by default: starting there cost 10% (MariaDB) and 18%
/// (PostgreSQL) of an idle 1,000,000-row copy's time on the benchmark machine, against a few
/// percent at 10 ms (`docs/benchmarks.md`).
pub const CAUTIOUS_START: Duration = Duration::from_millis(10);

/// Chunks in a row without lock waiters after which a contended sizer doubles its target back
/// towards the configured one.
pub const CALM_CHUNKS: u32 = 20;

/// Copy time without lock waiters after which a steered sizer doubles its target (with
/// [`CALM_CHUNKS`]), each time, during the cautious start as after contention. Twenty 10 ms
/// chunks without a waiter are common under a steady write load; doubling after them alone made
/// chunks of 40 to 100 ms within two seconds, and the workload's p99 under the benchmark's load
/// followed (50 to 100 ms against 11 to 22 ms with this rule, `docs/benchmarks.md`).
pub const CALM_TIME: Duration = Duration::from_secs(2);

impl ChunkSizer {
    /// Adaptive sizing starting at `initial` rows, never above `max_rows`.
    pub fn adaptive(target: Duration, initial: u64, max_rows: u64, max_growth: f64) -> Self {
        Self {
            rows: initial.clamp(1, max_rows.max(1)),
            target,
            base_target: target,
            contended_target: None,
            calm: 0,
            calm_time: Duration::ZERO,
            last_calm: false,
            contended: false,
            min_rows: 1,
            max_rows: max_rows.max(1),
            max_growth,
            fixed: false,
        }
    }

    /// Always `rows` rows.
    pub fn fixed(rows: u64) -> Self {
        Self {
            rows: rows.max(1),
            target: Duration::ZERO,
            base_target: Duration::ZERO,
            contended_target: None,
            calm: 0,
            calm_time: Duration::ZERO,
            last_calm: false,
            contended: false,
            min_rows: 1,
            max_rows: rows.max(1),
            max_growth: 1.0,
            fixed: true,
        }
    }

    /// Never adapt below `rows` rows (at most the maximum): a chunk has a fixed cost (its
    /// statements' round trips), and a target time near that cost would otherwise shrink chunks
    /// to one row. [`Self::shrink`] may still go below it for one retried chunk.
    pub fn with_min_rows(mut self, rows: u64) -> Self {
        self.min_rows = rows.clamp(1, self.max_rows);
        self
    }

    /// Steer by contention: start at [`CAUTIOUS_START`] (or `target` if longer; never above the
    /// configured target) and, while writers wait for row locks, aim chunks at `target` (shorter
    /// than the configured target). No effect on a fixed size.
    pub fn with_contention_target(mut self, target: Duration) -> Self {
        if !self.fixed && target < self.base_target {
            self.contended_target = Some(target);
            self.target = target.max(CAUTIOUS_START).min(self.base_target);
        }
        self
    }

    /// Record how many sessions were waiting for row locks when the last chunk committed; call
    /// before [`Self::observe`]. Waiters switch to the contention target at once; calm chunks
    /// ([`CALM_CHUNKS`] in a row) double the target back towards the configured one.
    pub fn contended(&mut self, waiters: u64) {
        let Some(low) = self.contended_target else { return };
        self.last_calm = waiters == 0;
        if waiters > 0 {
            self.target = low;
            self.calm = 0;
            self.calm_time = Duration::ZERO;
            self.contended = true;
        } else if self.target < self.base_target {
            self.calm += 1;
            if self.calm >= CALM_CHUNKS && self.calm_time >= CALM_TIME {
                self.target = (self.target * 2).min(self.base_target);
                self.calm = 0;
                self.calm_time = Duration::ZERO;
                self.contended &= self.target < self.base_target;
            }
        }
    }

    /// Whether the sizer is aiming below the configured target because writers waited (not
    /// merely because it started cautiously).
    pub fn is_contended(&self) -> bool {
        self.contended
    }

    /// The time the next chunk aims at.
    pub fn target(&self) -> Duration {
        self.target
    }

    /// Rows for the next chunk.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Halve the next chunk (at least one row; a fixed size too, until the next
    /// [`Self::observe`]): after a chunk met a
    /// row an application transaction holds, a smaller range is less likely to meet one and
    /// holds its own locks for less time.
    pub fn shrink(&mut self) {
        self.rows = (self.rows / 2).max(1);
    }

    /// Record that a chunk of `self.rows()` rows took `elapsed`.
    pub fn observe(&mut self, elapsed: Duration) {
        if self.last_calm {
            self.calm_time += elapsed;
        }
        if self.fixed {
            // A fixed size shrinks for a retried chunk only ([`Self::shrink`]); back to it.
            self.rows = self.max_rows;
            return;
        }
        let secs = elapsed.as_secs_f64().max(1e-4);
        let ideal = self.rows as f64 * self.target.as_secs_f64() / secs;
        let next = if ideal < self.rows as f64 { ideal } else { ideal.min(self.rows as f64 * self.max_growth) };
        self.rows = (next.floor() as u64).clamp(self.min_rows, self.max_rows);
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

    /// Step back to `after` (the start of a range [`Self::next`] handed out and that was not
    /// done), so the next call plans that range again with the sizer's current size.
    pub fn rewind(&mut self, after: Option<D::Key>) {
        self.after = after;
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
    fn waiters_shrink_chunks_at_once_and_calm_brings_them_back() {
        let mut s = ChunkSizer::adaptive(MS(500), 10_000, 1_000_000, 1.5).with_contention_target(MS(10));
        s.target = MS(500); // past the cautious start
        s.contended(0);
        s.observe(MS(500));
        assert_eq!((s.rows(), s.is_contended()), (10_000, false));
        s.contended(2);
        s.observe(MS(500));
        assert_eq!((s.rows(), s.is_contended()), (200, true), "a 500 ms chunk had waiters: aim at 10 ms");
        for _ in 0..CALM_CHUNKS {
            s.contended(0);
            s.observe(MS(10));
        }
        assert!(s.is_contended(), "{CALM_CHUNKS} calm chunks, but only 200 ms of them");
        assert_eq!(s.target(), MS(10));
        let needed = (CALM_TIME.as_millis() / 10) as u32;
        for _ in CALM_CHUNKS..needed {
            s.contended(0);
            s.observe(MS(10));
        }
        assert_eq!(s.target(), MS(10), "2 s of calm copying not yet reached when the last chunk was sized");
        s.contended(0);
        s.observe(MS(10));
        assert_eq!((s.target(), s.rows()), (MS(20), 300), "target 20 ms now, growth capped at 1.5");
        for _ in 0..CALM_CHUNKS {
            s.contended(0);
            s.observe(MS(20));
        }
        assert_eq!(s.target(), MS(20), "each doubling needs its own {CALM_TIME:?} of calm");
        s.contended(3);
        assert_eq!(s.target(), MS(10), "a wait starts the calm over");
        let mut f = ChunkSizer::fixed(7).with_contention_target(MS(10));
        f.contended(5);
        f.observe(MS(100));
        assert_eq!((f.rows(), f.is_contended()), (7, false), "a fixed size is the operator's choice");
    }

    #[test]
    fn a_steered_sizer_starts_at_the_contention_target_and_earns_the_configured_one() {
        let mut s = ChunkSizer::adaptive(MS(500), 1000, 1_000_000, 1.5).with_contention_target(MS(10));
        assert_eq!((s.target(), s.is_contended()), (MS(10), false), "cautious, but nobody waited");
        s.contended(0);
        s.observe(MS(20));
        assert_eq!(s.rows(), 500, "aims at 10 ms from the first chunk");
        // Chunks that each take their target: how many at each target before it doubles.
        let mut s = ChunkSizer::adaptive(MS(500), 1000, 1_000_000, 1.5).with_contention_target(MS(10));
        let mut levels: Vec<(Duration, u32)> = vec![(s.target(), 0)];
        while s.target() < MS(500) {
            s.contended(0);
            assert!(!s.is_contended());
            s.observe(s.target());
            levels.last_mut().unwrap().1 += 1;
            if s.target() != levels.last().unwrap().0 {
                levels.push((s.target(), 0));
            }
        }
        assert_eq!(
            levels,
            [(MS(10), 201), (MS(20), 100), (MS(40), 50), (MS(80), 25), (MS(160), 20), (MS(320), 20), (MS(500), 0)],
            "doubling after {CALM_CHUNKS} calm chunks and {CALM_TIME:?} of calm copying (a chunk is sized before its \
             time counts, and the doubling chunk's time counts towards the next level)"
        );
        let plain = ChunkSizer::adaptive(MS(500), 1000, 1_000_000, 1.5);
        assert_eq!(plain.target(), MS(500), "no contention target: the configured one from the start");
        let mut waited = ChunkSizer::adaptive(MS(500), 1000, 1_000_000, 1.5).with_contention_target(MS(10));
        waited.contended(1);
        assert!(waited.is_contended(), "waiters during the cautious start are contention");
    }

    #[test]
    fn a_shorter_contention_target_starts_at_the_cautious_start_and_is_aimed_at_under_contention() {
        let mut s = ChunkSizer::adaptive(MS(500), 1000, 1_000_000, 1.5).with_contention_target(MS(5));
        assert_eq!(s.target(), CAUTIOUS_START, "idle, the copy starts at 10 ms, not 5");
        s.contended(2);
        assert_eq!((s.target(), s.is_contended()), (MS(5), true), "writers waited: 5 ms chunks");
        let long = ChunkSizer::adaptive(MS(500), 1000, 1_000_000, 1.5).with_contention_target(MS(50));
        assert_eq!(long.target(), MS(50), "a longer contention target is its own start");
        let short_base = ChunkSizer::adaptive(MS(8), 1000, 1_000_000, 1.5).with_contention_target(MS(5));
        assert_eq!(short_base.target(), MS(8), "never above the configured target");
    }

    #[test]
    fn adaptive_sizing_stops_at_the_minimum() {
        let mut s = ChunkSizer::adaptive(MS(10), 1000, 100_000, 1.5).with_min_rows(100);
        s.observe(MS(1000));
        assert_eq!(s.rows(), 100, "a chunk a hundred times too slow still keeps 100 rows");
        s.shrink();
        assert_eq!(s.rows(), 50, "a retried chunk may go below it");
        s.observe(MS(1000));
        assert_eq!(s.rows(), 100);
    }

    #[test]
    fn shrink_halves_down_to_one_row() {
        let mut s = ChunkSizer::adaptive(MS(500), 1000, 1_000_000, 1.5);
        s.shrink();
        assert_eq!(s.rows(), 500);
        let mut f = ChunkSizer::fixed(3);
        f.shrink();
        f.shrink();
        assert_eq!(f.rows(), 1);
        f.observe(MS(1));
        assert_eq!(f.rows(), 3, "a fixed size comes back after the retried chunk");
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
