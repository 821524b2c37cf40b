//! Replica lag from a heartbeat that needs no clock on any server.
//!
//! shadowswap writes an increasing sequence number `n` to a heartbeat table on the primary every
//! heartbeat interval and remembers, on its own monotonic clock, when it wrote each one. A replica
//! that shows `n` has applied everything up to write `n` and nothing after it; it is therefore
//! behind by the time since write `n + 1` was made (or not behind at all when `n` is the newest).
//! This is exact up to one heartbeat interval, needs no clock synchronisation between servers, and
//! does not depend on the server's own lag figure (MariaDB's `Seconds_Behind_Master` is NULL when
//! the SQL thread stops; PostgreSQL's replay timestamp goes stale on an idle primary).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// The heartbeat writes made so far, newest last; keeps the last `capacity` of them.
#[derive(Debug)]
pub struct HeartbeatLog {
    writes: VecDeque<(u64, Instant)>,
    capacity: usize,
    next: u64,
}

impl HeartbeatLog {
    /// A log keeping at most `capacity` writes (older ones are forgotten; a replica further
    /// behind than that is reported as behind by at least the oldest remembered write's age).
    pub fn new(capacity: usize) -> Self {
        Self { writes: VecDeque::with_capacity(capacity), capacity: capacity.max(2), next: 1 }
    }

    /// The sequence number to write next.
    pub fn next_seq(&self) -> u64 {
        self.next
    }

    /// Record that `seq` was written (committed on the primary) at `at`.
    pub fn written(&mut self, seq: u64, at: Instant) {
        if self.writes.len() == self.capacity {
            self.writes.pop_front();
        }
        self.writes.push_back((seq, at));
        self.next = seq + 1;
    }

    /// How long ago the newest write was made (`None`: no write yet). While heartbeat writes
    /// fail this grows, and a replica's lag cannot be known beyond it.
    pub fn newest_age(&self, now: Instant) -> Option<Duration> {
        self.writes.back().map(|(_, at)| now.saturating_duration_since(*at))
    }

    /// The lag of a replica that shows sequence number `applied` (`None`: no heartbeat row yet),
    /// at `now`. `None` when nothing has been written yet (no basis for a figure).
    pub fn lag(&self, applied: Option<u64>, now: Instant) -> Option<Duration> {
        let (oldest_seq, oldest_at) = *self.writes.front()?;
        let applied = applied.unwrap_or(0);
        if applied < oldest_seq {
            // Behind even the oldest remembered write: at least that old.
            return Some(now.saturating_duration_since(oldest_at));
        }
        match self.writes.iter().find(|(seq, _)| *seq == applied + 1) {
            Some((_, at)) => Some(now.saturating_duration_since(*at)),
            None => Some(Duration::ZERO), // applied the newest write
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lag_is_the_age_of_the_first_write_not_applied() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut log = HeartbeatLog::new(100);
        assert_eq!(log.lag(Some(0), t0), None, "no writes yet");
        for i in 1..=10u64 {
            log.written(i, t0 + ms(100 * i));
        }
        let now = t0 + ms(1_050);
        assert_eq!(log.lag(Some(10), now), Some(Duration::ZERO), "caught up");
        assert_eq!(log.lag(Some(9), now), Some(ms(50)), "write 10 made 50 ms ago is missing");
        assert_eq!(log.lag(Some(5), now), Some(ms(450)), "write 6 made at 600 ms");
        assert_eq!(log.lag(None, now), Some(ms(950)), "nothing applied: since the first write");
    }

    #[test]
    fn forgets_old_writes_but_never_underestimates() {
        let t0 = Instant::now();
        let mut log = HeartbeatLog::new(3);
        for i in 1..=10u64 {
            log.written(i, t0 + Duration::from_secs(i));
        }
        assert_eq!(log.next_seq(), 11);
        // Write 2 is forgotten; the oldest remembered (8, at 8 s) bounds the lag from below.
        assert_eq!(log.lag(Some(2), t0 + Duration::from_secs(20)), Some(Duration::from_secs(12)));
    }
}
