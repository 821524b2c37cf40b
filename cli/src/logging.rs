//! Logging: tracing on stderr (text or JSON, level from `RUST_LOG`), every line scrubbed of
//! passwords ([`crate::secrets::scrub`]) and, on a terminal, printed above the progress bar.

use std::io::Write;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::EnvFilter;

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
