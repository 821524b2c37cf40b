//! The signals, read once each, and the verdict on them: replica lag from the heartbeat (and
//! "lag unknown" when the primary's heartbeat writes stop), load figures, the throttle query, the
//! flag file. A reading that fails or takes longer than [`ThrottleConfig::signal_timeout`] counts
//! as over its limit.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::heartbeat::HeartbeatLog;
use crate::config::ThrottleConfig;
use crate::dialect::Signals;
use crate::error::Result;
use crate::names::Names;

/// One signal, read once.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    /// Which signal and condition this is, without the measured value (`replica … lag`,
    /// `replica … unreachable`, `Threads_running`, …): throttling is logged again only when the
    /// set of signals over their limits changes, not each time a value moves while over it.
    pub signal: String,
    /// What was measured and its value, e.g. `replica mysql://…:33307 lag 3.2 s (max 1 s)`.
    pub text: String,
    /// Over its throttle limit.
    pub over: bool,
    /// Over a critical limit: abort.
    pub critical: bool,
}

/// What the throttler concluded from its last readings.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ThrottleState {
    /// Why copying is paused now (`None`: go).
    pub reason: Option<String>,
    /// Why the run must stop (critical load).
    pub abort: Option<String>,
}

/// The verdict for a set of readings: abort on any critical one, else throttle on the first over
/// its limit (all of them are named), else go.
pub fn judge(readings: &[Reading]) -> ThrottleState {
    if let Some(c) = readings.iter().find(|r| r.critical) {
        return ThrottleState { reason: Some(c.text.clone()), abort: Some(c.text.clone()) };
    }
    let over: Vec<&str> = readings.iter().filter(|r| r.over).map(|r| r.text.as_str()).collect();
    ThrottleState { reason: (!over.is_empty()).then(|| over.join("; ")), abort: None }
}

fn fmt_secs(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

/// `read`, or why it gave no value: its error, or no answer within `timeout`.
async fn bounded<T>(timeout: Duration, read: impl std::future::Future<Output = Result<T>>) -> std::result::Result<T, String> {
    match tokio::time::timeout(timeout, read).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {}", fmt_secs(timeout))),
    }
}

/// Read every signal once.
pub async fn read_signals<D: Signals + 'static>(
    primary: &D,
    replicas: &[Arc<D>],
    names: &Names,
    cfg: &ThrottleConfig,
    log: &Mutex<HeartbeatLog>,
) -> Vec<Reading> {
    let mut out = Vec::new();
    for r in replicas {
        let target = r.target();
        match bounded(cfg.signal_timeout, r.heartbeat_read(names)).await {
            Ok(applied) => {
                let (lag, newest) = {
                    let log = log.lock().expect("heartbeat log");
                    (log.lag(applied, Instant::now()), log.newest_age(Instant::now()))
                };
                // Without recent heartbeat writes the lag cannot be known: that throttles too
                // (a replica must never be assumed caught up because the primary stopped saying).
                let stale_after = cfg.max_lag.max(cfg.heartbeat_interval * 10);
                match newest {
                    None => out.push(Reading {
                        signal: format!("replica {target} lag unknown"),
                        text: format!("replica {target} lag unknown: no heartbeat written on the primary yet"),
                        over: true,
                        critical: false,
                    }),
                    Some(age) if age > stale_after => out.push(Reading {
                        signal: format!("replica {target} lag unknown"),
                        text: format!(
                            "replica {target} lag unknown: the last heartbeat write on the primary was {} ago (writes are failing)",
                            fmt_secs(age)
                        ),
                        over: true,
                        critical: false,
                    }),
                    Some(_) => {}
                }
                if let Some(lag) = lag {
                    out.push(Reading {
                        signal: format!("replica {target} lag"),
                        text: format!("replica {target} lag {} (max {})", fmt_secs(lag), fmt_secs(cfg.max_lag)),
                        over: lag > cfg.max_lag,
                        critical: false,
                    });
                }
            }
            Err(e) => out.push(Reading {
                signal: format!("replica {target} unreachable"),
                text: format!("replica {target} unreachable: {e}"),
                over: true,
                critical: false,
            }),
        }
    }
    for (list, critical) in [(&cfg.max_load, false), (&cfg.critical_load, true)] {
        for t in list {
            match bounded(cfg.signal_timeout, primary.status_value(&t.name)).await {
                Ok(v) => out.push(Reading {
                    signal: t.name.clone(),
                    text: format!("{} = {v} (limit {})", t.name, t.limit),
                    over: v > t.limit,
                    critical: critical && v > t.limit,
                }),
                Err(e) => out.push(Reading {
                    signal: format!("{} unreadable", t.name),
                    text: format!("{} unreadable: {e}", t.name),
                    over: true,
                    critical: false,
                }),
            }
        }
    }
    if let Some(q) = &cfg.throttle_query {
        match bounded(cfg.signal_timeout, primary.query_value(q)).await {
            Ok(v) => out.push(Reading {
                signal: "throttle query".into(),
                text: format!("throttle query returned {v}"),
                over: v != 0.0,
                critical: false,
            }),
            Err(e) => out.push(Reading {
                signal: "throttle query failed".into(),
                text: format!("throttle query failed: {e}"),
                over: true,
                critical: false,
            }),
        }
    }
    if let Some(f) = &cfg.flag_file {
        if f.exists() {
            out.push(Reading {
                signal: "throttle flag file".into(),
                text: format!("throttle flag file {} exists", f.display()),
                over: true,
                critical: false,
            });
        }
    }
    out
}

/// The signals over their limits, by [`Reading::signal`]: what a logged change is.
pub(super) fn over_signals(readings: &[Reading]) -> Vec<String> {
    readings.iter().filter(|r| r.over || r.critical).map(|r| r.signal.clone()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(text: &str, over: bool, critical: bool) -> Reading {
        Reading { signal: text.into(), text: text.into(), over, critical }
    }

    #[test]
    fn verdicts() {
        assert_eq!(judge(&[r("a", false, false)]), ThrottleState::default());
        let s = judge(&[r("lag", true, false), r("load", true, false), r("ok", false, false)]);
        assert_eq!(s.reason.as_deref(), Some("lag; load"));
        assert!(s.abort.is_none());
        let s = judge(&[r("lag", true, false), r("crit", true, true)]);
        assert_eq!(s.abort.as_deref(), Some("crit"));
    }

    #[test]
    fn a_value_moving_while_over_is_not_a_new_reason() {
        let lag = |secs: &str| Reading {
            signal: "replica r lag".into(),
            text: format!("replica r lag {secs} s (max 1.0 s)"),
            over: true,
            critical: false,
        };
        assert_eq!(over_signals(&[lag("1.1")]), over_signals(&[lag("3.4")]));
        assert_ne!(judge(&[lag("1.1")]).reason, judge(&[lag("3.4")]).reason, "the progress shows the value");
        assert_ne!(over_signals(&[lag("1.1")]), over_signals(&[lag("1.1"), r("flag", true, false)]));
    }

    #[tokio::test]
    async fn a_reading_without_answer_counts_as_failed() {
        let hung = bounded(Duration::from_millis(100), std::future::pending::<Result<u64>>()).await;
        assert_eq!(hung.unwrap_err(), "no answer within 0.1 s");
        assert_eq!(bounded(Duration::from_millis(100), async { Ok(7u64) }).await, Ok(7));
    }
}
