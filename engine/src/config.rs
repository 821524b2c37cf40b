//! Run configuration, in one place. Plain structs with `Default`; every timing constant of the
//! engine lives here with its default and unit, so tests shrink it instead of sleeping.
//!
//! [`MigrationConfig`] holds one part per concern, in phase order: [`CopyConfig`] (backfill),
//! [`ChecksumConfig`], [`CutOverConfig`] (with its daily [`CutOverWindow`]), [`DdlConfig`] (DDL
//! on the live table outside the cut-over), [`ThrottleConfig`] (with its [`Threshold`]s) and
//! [`ReconnectConfig`].

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use jiff::civil::Time;
use jiff::tz::TimeZone;
use jiff::Timestamp;

use crate::retry::RetryPolicy;

/// Everything that shapes one migration.
#[derive(Debug, Clone, Default)]
pub struct MigrationConfig {
    /// False: dry run (preflight and plan only, nothing created). True: migrate.
    pub execute: bool,
    /// Allow ALTERs that rename columns; data is carried from the old to the new name.
    pub approve_renamed_columns: bool,
    /// When the server can apply the ALTER as a metadata-only change (see
    /// [`crate::Dialect::metadata_only`]), do that in place under the cut-over's short lock
    /// timeout and retries instead of copying. Otherwise copy as usual.
    pub attempt_instant_ddl: bool,
    /// Backfill (copy) settings.
    pub copy: CopyConfig,
    /// Checksum settings.
    pub checksum: ChecksumConfig,
    /// Cut-over settings.
    pub cut_over: CutOverConfig,
    /// Settings for the DDL shadowswap runs on the live table (creating/dropping triggers).
    pub ddl: DdlConfig,
    /// Throttle signals and limits.
    pub throttle: ThrottleConfig,
    /// `--revert-window`: after the swap keep the old table in sync by reverse capture for this
    /// long, so `shadowswap revert` can swap back (see [`crate::revert`]). `None`: no window.
    pub revert_window: Option<Duration>,
    /// What to do when the connection to the server breaks mid-run.
    pub reconnect: ReconnectConfig,
    /// Faults to inject on purpose (`--inject-fault`, rehearsals on a clone); empty by default,
    /// and then nothing is injected. See [`crate::fault`].
    pub faults: Vec<crate::fault::FaultSpec>,
}

/// Reconnecting after a dropped connection (server restart, `KILL CONNECTION`,
/// `pg_terminate_backend`, a proxy resetting sessions): the runner retries with backoff, takes
/// its advisory lock again, re-verifies the shadow and the capture triggers, and continues from
/// the checkpoint.
#[derive(Debug, Clone)]
pub struct ReconnectConfig {
    /// How long to keep trying before stopping, resumable (`--reconnect-timeout`). Default 5 min.
    pub timeout: Duration,
    /// First pause between attempts. Default 250 ms.
    pub backoff_min: Duration,
    /// Longest pause between attempts. Default 10 s.
    pub backoff_max: Duration,
    /// How often the advisory lock's session is checked (and kept busy) while the run executes;
    /// a lost session is replaced. Default 5 s.
    pub lock_check: Duration,
}

impl Default for ReconnectConfig {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(300),
            backoff_min: Duration::from_millis(250),
            backoff_max: Duration::from_secs(10),
            lock_check: Duration::from_secs(5),
        }
    }
}

/// Backfill settings.
#[derive(Debug, Clone)]
pub struct CopyConfig {
    /// Target wall time per chunk; the chunk size (rows) adapts to it. Default 500 ms.
    pub chunk_time: Duration,
    /// Target wall time per chunk of the staged backfill's in-place `UPDATE` (`shadowswap
    /// backfill`, a migration's backfill phase). Shorter than the copy's: an application write
    /// to a row of the chunk waits for the chunk's commit (measured on PostgreSQL under pgbench:
    /// p99 847 ms with 500 ms chunks, 25 ms with 100 ms; docs/staged-migrations.md). Default 100 ms.
    pub update_chunk_time: Duration,
    /// A fixed chunk size in rows, instead of adapting to `chunk_time`.
    pub fixed_chunk_rows: Option<u64>,
    /// Rows in the first chunk when adapting. Default 1000.
    pub initial_chunk_rows: u64,
    /// Upper bound for adaptive sizing, in rows. Default 100 000.
    pub max_chunk_rows: u64,
    /// Largest factor by which one chunk may be bigger than the one before (growth is slow;
    /// shrinking after an overrun is immediate). Default 1.5.
    pub max_growth: f64,
    /// How long one chunk's statements wait for a row lock before giving up and being retried.
    /// Short, so a chunk never makes the application wait long. Default 2 s (InnoDB counts whole seconds).
    pub lock_wait_timeout: Duration,
    /// The longest a chunk of the copy aims to hold its row locks while application writers
    /// wait for them: when sessions waited for row locks around a chunk (or the chunk found rows
    /// the application wrote ahead of the copy: a live table), the next chunks aim at it instead
    /// of [`CopyConfig::chunk_time`] and the copy pauses after each as long as it took.
    /// The copy starts at `backfill::chunker::CAUTIOUS_START` (10 ms), or at this time if longer
    /// (a cautious start). The target doubles back after `CALM_CHUNKS` chunks and `CALM_TIME`
    /// (2 s) of copying without a waiter. Default 5 ms (under the benchmark's load the workload's
    /// p99 was 2.5× (PostgreSQL) and 2.7× (MariaDB) its p99 without a migration, against 3.9×
    /// and 4.1× at 10 ms; the copy took longer under load); at or above `chunk_time`: no steering.
    pub max_latency: Duration,
    /// The smallest chunk adaptive sizing goes to (rows): below it a chunk's fixed cost (its
    /// round trips) dominates and a short target would shrink chunks to a row each. Default 100.
    pub min_chunk_rows: u64,
    /// Attempts per chunk on lock timeouts and deadlocks before the run fails. Default 20.
    pub retries: u32,
    /// Interval between progress publications during the copy. Default 1 s.
    pub progress_interval: Duration,
    /// First backoff before retrying a chunk (copy or checksum) after a lock timeout or deadlock;
    /// doubles each time, with jitter. Default 50 ms.
    pub retry_backoff_min: Duration,
    /// Largest backoff between attempts of one chunk. Default 5 s.
    pub retry_backoff_max: Duration,
}

impl CopyConfig {
    /// How a chunk (of the copy or of the checksum) is retried: [`CopyConfig::retries`] times,
    /// backing off from [`CopyConfig::retry_backoff_min`] to [`CopyConfig::retry_backoff_max`].
    pub fn chunk_retry_policy(&self) -> RetryPolicy {
        RetryPolicy { retries: self.retries, min_delay: self.retry_backoff_min, max_delay: self.retry_backoff_max }
    }
}

impl Default for CopyConfig {
    fn default() -> Self {
        Self {
            chunk_time: Duration::from_millis(500),
            update_chunk_time: Duration::from_millis(100),
            fixed_chunk_rows: None,
            initial_chunk_rows: 1000,
            max_chunk_rows: 100_000,
            max_growth: 1.5,
            lock_wait_timeout: Duration::from_secs(2),
            max_latency: Duration::from_millis(5),
            min_chunk_rows: 100,
            retries: 20,
            progress_interval: Duration::from_secs(1),
            retry_backoff_min: Duration::from_millis(50),
            retry_backoff_max: Duration::from_secs(5),
        }
    }
}

/// Checksum settings.
#[derive(Debug, Clone)]
pub struct ChecksumConfig {
    /// Compare original and shadow before the cut-over. Default true.
    pub enabled: bool,
    /// Target wall time per checksum chunk. Default 500 ms.
    pub chunk_time: Duration,
    /// Chunks compared at once, each in its own session and snapshot (`--checksum-threads`);
    /// at least 1 (0 counts as 1), at most [`ChecksumConfig::MAX_THREADS`]. Default 2.
    pub threads: usize,
    /// One chunk at a time, each followed by a pause as long as it took. Not a flag: the runner
    /// sets it when the copy ended with writers contending for rows
    /// (`backfill::BackfillStats::ended_contended`), so the checksum leaves the server's CPU to
    /// the application half the time. Default false.
    pub gentle: bool,
}

impl ChecksumConfig {
    /// The largest `threads` the CLI accepts; the PostgreSQL connection pool has room for this
    /// many checksum sessions besides the run's others.
    pub const MAX_THREADS: usize = 16;
}

impl Default for ChecksumConfig {
    fn default() -> Self {
        Self { enabled: true, chunk_time: Duration::from_millis(500), threads: 2, gentle: false }
    }
}

/// Cut-over settings.
#[derive(Debug, Clone)]
pub struct CutOverConfig {
    /// How long one cut-over attempt waits for its locks. Default 2 s.
    pub lock_timeout: Duration,
    /// Attempts after the first one. Default 10.
    pub retries: u32,
    /// First backoff between attempts; doubles each time, with jitter. Default 1 s.
    pub backoff_min: Duration,
    /// Largest backoff between attempts. Default 30 s.
    pub backoff_max: Duration,
    /// Keep `_<t>_old` after the swap instead of dropping it.
    pub keep_old_table: bool,
    /// While this file exists, stay in sync and do not cut over.
    pub postpone_flag_file: Option<PathBuf>,
    /// How often the postpone flag file and the cut-over window are checked. Default 1 s.
    pub poll_interval: Duration,
    /// Cut over only inside this daily window (stay in sync until it opens).
    pub window: Option<CutOverWindow>,
    /// Before each attempt, wait at most this long for transactions that would make the lock
    /// request queue to finish, instead of queueing behind them. Default 30 s.
    pub blocker_wait: Duration,
    /// The longest sleep between two looks for blocking transactions (the sleep is the smaller
    /// of this and [`CutOverConfig::poll_interval`]). Default 500 ms.
    pub blocker_poll_max: Duration,
}

impl CutOverConfig {
    /// How cut-over attempts (and the in-place ALTER) are retried: [`CutOverConfig::retries`]
    /// times, backing off from [`CutOverConfig::backoff_min`] to [`CutOverConfig::backoff_max`].
    pub fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy { retries: self.retries, min_delay: self.backoff_min, max_delay: self.backoff_max }
    }

    /// How long to sleep between two looks for blocking transactions: the smaller of
    /// [`CutOverConfig::poll_interval`] and [`CutOverConfig::blocker_poll_max`].
    pub fn blocker_poll_interval(&self) -> Duration {
        self.poll_interval.min(self.blocker_poll_max)
    }
}

impl Default for CutOverConfig {
    fn default() -> Self {
        Self {
            lock_timeout: Duration::from_secs(2),
            retries: 10,
            backoff_min: Duration::from_secs(1),
            backoff_max: Duration::from_secs(30),
            keep_old_table: false,
            postpone_flag_file: None,
            poll_interval: Duration::from_secs(1),
            window: None,
            blocker_wait: Duration::from_secs(30),
            blocker_poll_max: Duration::from_millis(500),
        }
    }
}

/// `--cut-over-window HH:MM-HH:MM [TZ]`: a daily window, in a time zone (default UTC), inside
/// which the cut-over may happen. A window whose end is before its start spans midnight. Time
/// zones come from the IANA database through `jiff`.
#[derive(Debug, Clone)]
pub struct CutOverWindow {
    start: Time,
    end: Time,
    tz: TimeZone,
    text: String,
}

impl CutOverWindow {
    /// Whether `now` falls inside the window (start inclusive, end exclusive).
    pub fn contains(&self, now: Timestamp) -> bool {
        let t = now.to_zoned(self.tz.clone()).time();
        if self.start <= self.end {
            self.start <= t && t < self.end
        } else {
            t >= self.start || t < self.end
        }
    }

    /// How long from `now` until the window next opens (zero when open).
    pub fn until_open(&self, now: Timestamp) -> std::time::Duration {
        if self.contains(now) {
            return std::time::Duration::ZERO;
        }
        let zoned = now.to_zoned(self.tz.clone());
        let today = zoned.date().to_datetime(self.start);
        let mut open = today.to_zoned(self.tz.clone()).expect("valid zoned time");
        if open.timestamp() <= now {
            open = open.tomorrow().expect("in range");
        }
        let secs = open.timestamp().as_second() - now.as_second();
        std::time::Duration::from_secs(secs.max(0) as u64)
    }
}

impl fmt::Display for CutOverWindow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl FromStr for CutOverWindow {
    type Err = String;

    /// `HH:MM-HH:MM` optionally followed by a space and an IANA time zone (`Europe/Berlin`);
    /// UTC when none is given.
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = |why: &str| {
            format!("invalid --cut-over-window {s:?}: {why}; expected HH:MM-HH:MM [TIME_ZONE], e.g. 02:00-04:30 Europe/Berlin")
        };
        let mut parts = s.split_whitespace();
        let range = parts.next().ok_or_else(|| bad("empty"))?;
        let tz = match parts.next() {
            Some(name) => TimeZone::get(name).map_err(|e| bad(&format!("unknown time zone {name}: {e}")))?,
            None => TimeZone::UTC,
        };
        if parts.next().is_some() {
            return Err(bad("too many words"));
        }
        let (a, b) = range.split_once('-').ok_or_else(|| bad("no '-' between start and end"))?;
        let time = |x: &str| Time::strptime("%H:%M", x).map_err(|_| bad(&format!("{x} is not HH:MM")));
        let (start, end) = (time(a)?, time(b)?);
        if start == end {
            return Err(bad("start and end are equal"));
        }
        Ok(CutOverWindow { start, end, tz, text: s.to_string() })
    }
}

/// Settings for DDL on the live table outside the cut-over (installing and removing capture
/// triggers, dropping tables). Each statement needs a metadata lock on the table; it waits at
/// most `lock_timeout`, so the application's queries never queue behind it for longer.
#[derive(Debug, Clone)]
pub struct DdlConfig {
    /// Lock wait per attempt. Default 2 s.
    pub lock_timeout: Duration,
    /// Attempts after the first one. Default 10.
    pub retries: u32,
    /// First backoff between attempts. Default 500 ms.
    pub backoff_min: Duration,
    /// Largest backoff. Default 10 s.
    pub backoff_max: Duration,
}

impl DdlConfig {
    /// How each DDL statement on the live table is retried: [`DdlConfig::retries`] times,
    /// backing off from [`DdlConfig::backoff_min`] to [`DdlConfig::backoff_max`].
    pub fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy { retries: self.retries, min_delay: self.backoff_min, max_delay: self.backoff_max }
    }
}

impl Default for DdlConfig {
    fn default() -> Self {
        Self {
            lock_timeout: Duration::from_secs(2),
            retries: 10,
            backoff_min: Duration::from_millis(500),
            backoff_max: Duration::from_secs(10),
        }
    }
}

/// Throttle settings: which signals pause the backfill and the checksum (never the capture), and
/// their limits. See [`crate::throttle`].
#[derive(Debug, Clone)]
pub struct ThrottleConfig {
    /// Replicas are "lagging" above this; the cut-over also waits until every replica is within
    /// it. Default 1 s.
    pub max_lag: Duration,
    /// Throttle while any of these load figures is above its limit. Default none.
    pub max_load: Vec<Threshold>,
    /// Abort the run (cleanly) when any of these load figures is above its limit. Default none.
    pub critical_load: Vec<Threshold>,
    /// Throttle while this query's first column is non-zero. Default none.
    pub throttle_query: Option<String>,
    /// Throttle while this file exists. Default none.
    pub flag_file: Option<PathBuf>,
    /// How often the signals are read. Default 250 ms.
    pub check_interval: Duration,
    /// How often the heartbeat is written on the primary (the lag figure's resolution).
    /// Default 100 ms.
    pub heartbeat_interval: Duration,
    /// How long one reading (a replica's heartbeat, a load figure, the throttle query) may take.
    /// One that takes longer counts as over its limit: a replica that stops answering must
    /// throttle, not freeze the throttler with its last verdict ("go"). Default 2 s.
    pub signal_timeout: Duration,
}

impl ThrottleConfig {
    /// Whether any signal of the primary itself is configured (load figures, critical load, the
    /// throttle query, the flag file). Replicas are the other source of signals.
    pub fn primary_signals(&self) -> bool {
        !self.max_load.is_empty() || !self.critical_load.is_empty() || self.throttle_query.is_some() || self.flag_file.is_some()
    }
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        Self {
            max_lag: Duration::from_secs(1),
            max_load: Vec::new(),
            critical_load: Vec::new(),
            throttle_query: None,
            flag_file: None,
            check_interval: Duration::from_millis(250),
            heartbeat_interval: Duration::from_millis(100),
            signal_timeout: Duration::from_secs(2),
        }
    }
}

/// A load limit, `NAME=LIMIT`, e.g. `Threads_running=25` (`--max-load`, `--critical-load`).
#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    /// Variable name (MySQL global status variable; PostgreSQL `active_backends`).
    pub name: String,
    /// Limit: the signal is over when the value is greater than this.
    pub limit: f64,
}

impl FromStr for Threshold {
    type Err = String;

    /// `NAME=NUMBER`; the name is letters, digits and `_`. Errors say what is wrong.
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let (name, limit) = s.split_once('=').ok_or_else(|| format!("{s:?} is not NAME=NUMBER, e.g. Threads_running=25"))?;
        let limit: f64 = limit.trim().parse().map_err(|_| format!("{s:?}: {limit:?} is not a number"))?;
        if name.trim().is_empty() || !name.trim().chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("{s:?}: {name:?} is not a variable name"));
        }
        Ok(Threshold { name: name.trim().to_string(), limit })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn plain_and_midnight_spanning_windows() {
        let w: CutOverWindow = "02:00-04:30".parse().unwrap();
        assert!(w.contains(at("2026-11-22T02:00:00Z")));
        assert!(w.contains(at("2026-11-22T04:29:59Z")));
        assert!(!w.contains(at("2026-11-22T04:30:00Z")));
        assert_eq!(w.until_open(at("2026-11-22T01:00:00Z")).as_secs(), 3600);
        assert_eq!(w.until_open(at("2026-11-22T05:00:00Z")).as_secs(), 21 * 3600);
        let n: CutOverWindow = "23:00-01:00".parse().unwrap();
        assert!(n.contains(at("2026-11-22T23:30:00Z")) && n.contains(at("2026-11-22T00:30:00Z")));
        assert!(!n.contains(at("2026-11-22T12:00:00Z")));
    }

    #[test]
    fn time_zones_and_errors() {
        let w: CutOverWindow = "02:00-03:00 Europe/Berlin".parse().unwrap();
        // 01:30 UTC on a winter day is 02:30 in Berlin.
        assert!(w.contains(at("2026-11-22T01:30:00Z")));
        assert!(!w.contains(at("2026-11-22T02:30:00Z")));
        assert!("2-3".parse::<CutOverWindow>().is_err());
        assert!("02:00-03:00 Mars/Base".parse::<CutOverWindow>().unwrap_err().contains("unknown time zone"));
        assert!("02:00-02:00".parse::<CutOverWindow>().is_err());
    }

    #[test]
    fn thresholds_parse() {
        assert_eq!("Threads_running=25".parse::<Threshold>().unwrap(), Threshold { name: "Threads_running".into(), limit: 25.0 });
        assert!("Threads_running".parse::<Threshold>().is_err());
        assert!("x=abc".parse::<Threshold>().is_err());
        assert!("a;b=1".parse::<Threshold>().is_err());
    }

    #[test]
    fn retry_policies_and_poll_intervals_come_from_the_settings() {
        let copy = CopyConfig::default().chunk_retry_policy();
        assert_eq!((copy.retries, copy.min_delay, copy.max_delay), (20, Duration::from_millis(50), Duration::from_secs(5)));
        let c = CutOverConfig::default();
        let p = c.retry_policy();
        assert_eq!((p.retries, p.min_delay, p.max_delay), (10, Duration::from_secs(1), Duration::from_secs(30)));
        assert_eq!(c.blocker_poll_interval(), Duration::from_millis(500), "1 s poll, at most 500 ms between looks");
        let fast = CutOverConfig { poll_interval: Duration::from_millis(50), ..c };
        assert_eq!(fast.blocker_poll_interval(), Duration::from_millis(50));
        let d = DdlConfig::default().retry_policy();
        assert_eq!((d.retries, d.min_delay, d.max_delay), (10, Duration::from_millis(500), Duration::from_secs(10)));
    }

    #[test]
    fn primary_signals() {
        assert!(!ThrottleConfig::default().primary_signals());
        assert!(ThrottleConfig { flag_file: Some("f".into()), ..ThrottleConfig::default() }.primary_signals());
        let load = vec!["Threads_running=25".parse().unwrap()];
        assert!(ThrottleConfig { critical_load: load, ..ThrottleConfig::default() }.primary_signals());
    }
}
