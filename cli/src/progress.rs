//! The progress display while a run goes. On a terminal: a progress bar (phase, rows copied /
//! estimated, rows/s, ETA) made by [`crate::logging::init_logging`], with log lines printed above
//! it. Otherwise: one progress log line at most every [`LOG_EVERY`].

use std::time::{Duration, Instant};

use indicatif::ProgressBar;
use shadowswap_engine::progress::Progress;
use shadowswap_engine::Phase;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// How often the progress log line is written when stderr is not a terminal.
pub const LOG_EVERY: Duration = Duration::from_secs(5);

/// Show progress until `stop` fires.
pub async fn show(mut rx: watch::Receiver<Progress>, bar: Option<ProgressBar>, stop: CancellationToken) {
    let mut last_log = Instant::now();
    let mut last_rows = 0u64;
    let mut last_rate_at = Instant::now();
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            changed = rx.changed() => if changed.is_err() { return },
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
        let p = rx.borrow_and_update().clone();
        let done = match p.phase {
            Phase::Checksum => p.rows_checksummed,
            _ => p.rows_copied,
        };
        let total = p.rows_estimated.max(done);
        match &bar {
            Some(bar) => {
                if bar.prefix() != p.phase.to_string() {
                    bar.reset();
                }
                bar.set_prefix(p.phase.to_string());
                bar.set_length(total);
                bar.set_position(done);
                let note = match (&p.throttle_reason, &p.waiting_for) {
                    (Some(t), _) => format!("throttled: {t}"),
                    (None, Some(w)) => format!("waiting for {w}"),
                    (None, None) => String::new(),
                };
                bar.set_message(note);
            }
            None if last_log.elapsed() >= LOG_EVERY
                && matches!(p.phase, Phase::Backfill | Phase::Checksum | Phase::Postponed) =>
            {
                let secs = last_rate_at.elapsed().as_secs_f64().max(1e-3);
                let rate = done.saturating_sub(last_rows) as f64 / secs;
                let eta = if rate > 0.0 { format!("{:.0}s", total.saturating_sub(done) as f64 / rate) } else { "-".into() };
                tracing::info!(
                    phase = %p.phase,
                    rows = done,
                    estimated = total,
                    rows_per_s = rate.round() as u64,
                    chunk_rows = p.chunk_rows,
                    waiting_for = p.waiting_for.as_deref().unwrap_or(""),
                    throttled = p.throttle_reason.as_deref().unwrap_or(""),
                    "progress: {done}/{total} rows, {rate:.0} rows/s, ETA {eta}{}", p.throttle_reason.as_ref().map(|t| format!(", throttled: {t}")).unwrap_or_default()
                );
                last_log = Instant::now();
                last_rate_at = Instant::now();
                last_rows = done;
            }
            None => {}
        }
    }
}
