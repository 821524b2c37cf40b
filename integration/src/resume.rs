//! Crash and resume with the real binary, for either server: a run of `shadowswap alter …
//! --execute --log-format json` ([`ResumableRun`]) killed with SIGKILL at a moment read from its
//! JSON log (a phase entered, [`phase_line`]) or from the server (a condition polled while it
//! runs), then the very same command run again; its summary ([`Summary`]) read back from stdout.
//!
//! The moments are events, never sleeps: a phase's log line, or a row count in the checkpoint.

use std::future::Future;
use std::time::Duration;

use crate::cli::{Line, Spawned};

/// How long a test waits for a run's event or exit before failing.
pub const WITHIN: Duration = Duration::from_secs(120);

/// The needles of the JSON log line the run writes when it enters `phase` (as
/// `Phase`'s `Display` spells it: `"backfill"`, `"install capture"`, `"cut-over"`, …).
pub fn phase_line(phase: &str) -> [String; 2] {
    ["\"message\":\"phase\"".to_string(), format!("\"to\":\"{phase}\"")]
}

/// One `shadowswap alter` command, run (and re-run) as a child process with `--execute
/// --log-format json`.
#[derive(Debug, Clone)]
pub struct ResumableRun {
    /// Tag for the echoed stderr lines (`[tag#n] …`).
    pub tag: String,
    /// The arguments after `shadowswap`.
    pub args: Vec<String>,
    runs: usize,
}

impl ResumableRun {
    /// `shadowswap alter --dsn <dsn> --table <table> --alter <alter> --execute --log-format json
    /// <extra…>`.
    pub fn new(tag: &str, dsn: &str, table: &str, alter: &str, extra: &[&str]) -> ResumableRun {
        let mut args: Vec<String> =
            ["alter", "--dsn", dsn, "--table", table, "--alter", alter, "--execute", "--log-format", "json"]
                .iter()
                .map(|s| s.to_string())
                .collect();
        args.extend(extra.iter().map(|s| s.to_string()));
        ResumableRun { tag: tag.to_string(), args, runs: 0 }
    }

    /// Start the command (again), watched: every stderr line echoed as `[tag#n]`.
    pub fn start(&mut self) -> Spawned {
        self.runs += 1;
        Spawned::watched(&format!("{}#{}", self.tag, self.runs), &self.args)
    }

    /// Start the command and SIGKILL it as soon as it logs the line with every one of `needles`
    /// (see [`phase_line`]); returns that line once the process is gone.
    pub async fn kill_at_line(&mut self, needles: &[&str]) -> Line {
        let mut cli = self.start();
        let line = cli.wait_line(needles, WITHIN).await;
        kill(cli).await;
        line
    }

    /// Start the command and SIGKILL it as soon as `done` holds (polled every 20 ms while it
    /// runs; e.g. the checkpoint has counted some rows).
    pub async fn kill_when<F: Future<Output = bool>>(&mut self, what: &str, done: impl FnMut() -> F) {
        let mut cli = self.start();
        cli.wait_until(WITHIN, what, done).await;
        kill(cli).await;
    }

    /// Run the command to its end; returns its exit status, stdout and stderr.
    pub async fn run_to_end(&mut self) -> (std::process::ExitStatus, String, String) {
        self.start().finish(WITHIN).await
    }

    /// Run the command to a successful swap and return its summary; panics (with stderr)
    /// otherwise.
    pub async fn complete(&mut self) -> (Summary, String) {
        let (status, out, err) = self.run_to_end().await;
        assert!(status.success(), "[{}] the run failed ({status}):\n{err}", self.tag);
        (Summary::parse(&out), err)
    }
}

/// SIGKILL `cli` and wait for it to be gone, as a deploy or the OOM killer would end it.
pub async fn kill(cli: Spawned) {
    cli.signal("KILL");
    let (status, _, _) = cli.finish(WITHIN).await;
    assert!(!status.success(), "killed, so not a success: {status}");
}

/// The figures of a run's JSON summary (its stdout with `--log-format json`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// Rows this run copied.
    pub rows_copied: u64,
    /// Rows the interrupted run had copied before this one resumed it.
    pub rows_copied_before_resume: u64,
    /// The phase the interrupted run stopped in, when this one resumed it.
    pub resumed_from: Option<String>,
    /// Times the run reconnected.
    pub reconnects: u64,
    /// Rows the checksum compared, when it ran.
    pub rows_checksummed: Option<u64>,
}

impl Summary {
    /// Read the summary from `stdout`, the last line that is a JSON object; panics otherwise.
    pub fn parse(stdout: &str) -> Summary {
        let line =
            stdout.lines().rev().find(|l| l.trim_start().starts_with('{')).unwrap_or_else(|| panic!("no summary:\n{stdout}"));
        let v: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        let n = |k: &str| v[k].as_u64().unwrap_or_else(|| panic!("{k} in {line}"));
        Summary {
            rows_copied: n("rows_copied"),
            rows_copied_before_resume: n("rows_copied_before_resume"),
            resumed_from: v["resumed_from"].as_str().map(str::to_string),
            reconnects: n("reconnects"),
            rows_checksummed: v["rows_checksummed"].as_u64(),
        }
    }
}

/// The run's "resuming at key K: N of M rows already copied" line, if it logged one.
pub fn resuming_line(stderr: &str) -> Option<&str> {
    stderr.lines().find(|l| l.contains("resuming at key"))
}
