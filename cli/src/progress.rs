//! Logging, progress display and signal handling for the CLI.
//!
//! On a terminal: a progress bar (phase, rows copied / estimated, rows/s, ETA), with log lines
//! printed above it. Otherwise: one progress log line at most every [`LOG_EVERY`].

use std::io::Write;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use shadowswap_engine::progress::Progress;
use shadowswap_engine::runner::Summary;
use shadowswap_engine::Phase;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::EnvFilter;

/// How often the progress log line is written when stderr is not a terminal.
pub const LOG_EVERY: Duration = Duration::from_secs(5);

/// Writes log lines to stderr, above the progress bar when there is one.
#[derive(Clone)]
struct StderrAboveBar(Option<ProgressBar>);

impl Write for StderrAboveBar {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        // One call per log event: no password given to the command is ever logged.
        let text = crate::secrets::scrub(&String::from_utf8_lossy(buf));
        match &self.0 {
            Some(bar) => bar.suspend(|| std::io::stderr().write_all(text.as_bytes())).map(|_| buf.len()),
            None => std::io::stderr().write_all(text.as_bytes()).map(|_| buf.len()),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

impl<'a> MakeWriter<'a> for StderrAboveBar {
    type Writer = StderrAboveBar;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// Set up tracing (level from `RUST_LOG`, default info) and, on a terminal, the progress bar.
pub fn init_logging(json: bool, terminal: bool) -> Option<ProgressBar> {
    let bar = (terminal && !json).then(|| {
        let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template("{prefix:>10} [{bar:30}] {human_pos}/{human_len} rows  {per_sec}  ETA {eta}  {msg}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        bar
    });
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let writer = StderrAboveBar(bar.clone());
    if json {
        tracing_subscriber::fmt().json().with_env_filter(filter).with_writer(writer).init();
    } else {
        tracing_subscriber::fmt().with_env_filter(filter).with_ansi(terminal).with_writer(writer).init();
    }
    bar
}

/// Show progress until `stop` fires.
pub async fn report(mut rx: watch::Receiver<Progress>, bar: Option<ProgressBar>, stop: CancellationToken) {
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

/// Cancel the run on SIGINT or SIGTERM; the runner then removes what it created.
pub async fn cancel_on_signal(cancel: CancellationToken) {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    let term_recv = async {
        match term.as_mut() {
            Some(t) => {
                t.recv().await;
            }
            None => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => tracing::warn!("interrupted (SIGINT): stopping and removing what this run created; interrupt again to exit at once"),
        _ = term_recv => tracing::warn!("terminated (SIGTERM): stopping and removing what this run created; signal again to exit at once"),
    }
    cancel.cancel();
    // A second signal: the operator does not want to wait for the undo. Leave at once; what is
    // left (triggers, shadow) is harmless to the application and `shadowswap cleanup` removes it.
    let again = async {
        match term.as_mut() {
            Some(t) => {
                t.recv().await;
            }
            None => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = again => {}
    }
    eprintln!(
        "shadowswap: error: interrupted twice: exiting without finishing the cleanup; run `shadowswap cleanup` for this table"
    );
    std::process::exit(130);
}

/// The final summary on stdout: one line, or one JSON object with `--log-format json`.
pub fn print_summary(s: &Summary, json: bool) {
    let secs = s.elapsed.as_secs_f64();
    let copy_secs = s.backfill.elapsed.as_secs_f64().max(1e-3);
    let rate = s.backfill.rows as f64 / copy_secs;
    if json {
        let v = serde_json::json!({
            "in_place": s.in_place,
            "table": s.table.to_string(),
            "swapped": true,
            "elapsed_s": secs,
            "rows_copied": s.backfill.rows,
            "chunks": s.backfill.chunks,
            "backfill_s": s.backfill.elapsed.as_secs_f64(),
            "rows_per_s": rate.round(),
            "rows_checksummed": s.rows_checksummed,
            "cut_over_attempts": s.cut_over.attempts,
            "cut_over_swap_ms": s.cut_over.swap_time.as_millis() as u64,
            "writes_blocked_ms": s.cut_over.swap_time.as_millis() as u64,
            "old_table": s.old_table_kept.as_ref().map(|t| t.to_string()),
            "warnings": s.warnings,
        });
        println!("{v}");
    } else {
        if s.in_place {
            println!(
                "altered {} in place (metadata only) in {secs:.1} s: {} attempt(s), {} ms under the table lock",
                s.table,
                s.cut_over.attempts,
                s.cut_over.swap_time.as_millis()
            );
            return;
        }
        let check = match s.rows_checksummed {
            Some(n) => format!("checksum ok over {n} rows"),
            None => "checksum skipped".into(),
        };
        let old = match &s.old_table_kept {
            Some(t) => format!("old table kept as {t}"),
            None => "old table dropped".into(),
        };
        println!(
            "swapped {} in {secs:.1} s: {} rows copied in {copy_secs:.1} s ({rate:.0} rows/s), {check}, cut-over in {} attempt(s) (application writes blocked {} ms), {old}",
            s.table,
            s.backfill.rows,
            s.cut_over.attempts,
            s.cut_over.swap_time.as_millis()
        );
    }
}
