//! `--cut-over-window HH:MM-HH:MM [TZ]`: a daily window, in a time zone (default UTC), inside
//! which the cut-over may happen. A window whose end is before its start spans midnight.
//! Time zones come from the IANA database through `jiff`.

use std::fmt;
use std::str::FromStr;

use jiff::civil::Time;
use jiff::tz::TimeZone;
use jiff::Timestamp;

/// A daily cut-over window.
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
}
