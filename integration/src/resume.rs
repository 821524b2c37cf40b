//! Crash and resume with the real binary, for either server: a run of `shadowswap alter …
//! --execute --log-format json` ([`ResumableRun`]) killed with SIGKILL at a moment read from its
//! JSON log (a phase entered, [`phase_line`]) or from the server (a condition polled while it
//! runs), then the very same command run again; its summary ([`Summary`]) read back from stdout.
//!
//! The moments are events, never sleeps: a phase's log line, or a row count in the checkpoint.

use std::future::Future;
use std::os::unix::process::ExitStatusExt;
use std::process::Output;
use std::time::Duration;

use serde_json::Value;

use crate::cli::{run_cli, stderr, stdout, Line, Spawned};

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
        ResumableRun { tag: tag.to_string(), args: alter_args(dsn, table, alter, extra), runs: 0 }
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

/// `alter --dsn <dsn> --table <table> --alter <alter> --execute --log-format json <extra…>`:
/// the arguments (after the binary's name) of a run to kill and run again.
pub fn alter_args(dsn: &str, table: &str, alter: &str, extra: &[&str]) -> Vec<String> {
    ["alter", "--dsn", dsn, "--table", table, "--alter", alter, "--execute", "--log-format", "json"]
        .iter()
        .chain(extra)
        .map(|s| s.to_string())
        .collect()
}

/// SIGKILL `cli` (no chance to clean up, as a deploy or the OOM killer would end it) and wait
/// for it to be gone; returns its stderr.
pub async fn kill(cli: Spawned) -> String {
    cli.signal("KILL");
    let (status, _, err) = cli.finish(WITHIN).await;
    assert_eq!(status.signal(), Some(9), "killed by SIGKILL: {status:?}\n{err}");
    err
}

/// One `shadowswap alter` command to start, kill and run again unchanged, run with
/// [`run_cli`] (the JSON summary read with [`summary`]).
#[derive(Debug, Clone)]
pub struct Run {
    /// The arguments after the binary's name.
    pub args: Vec<String>,
}

impl Run {
    /// See [`alter_args`].
    pub fn alter(dsn: &str, table: &str, alter: &str, extra: &[&str]) -> Run {
        Run { args: alter_args(dsn, table, alter, extra) }
    }

    /// Start it in the background, echoing its stderr tagged `tag`.
    pub fn spawn(&self, tag: &str) -> Spawned {
        Spawned::watched(tag, &self.args)
    }

    /// Run the same command again, to completion.
    pub async fn again(&self) -> Output {
        let args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        run_cli(&args, &[]).await
    }

    /// The same command as a dry run (without `--execute`), to completion.
    pub async fn dry_run(&self) -> Output {
        let args: Vec<&str> = self.args.iter().map(String::as_str).filter(|a| *a != "--execute").collect();
        run_cli(&args, &[]).await
    }
}

/// A `--log-format json` stderr line as JSON (`None` for any other line).
pub fn event(line: &str) -> Option<Value> {
    serde_json::from_str::<Value>(line).ok().filter(Value::is_object)
}

/// The phase a JSON log line says the run entered (its `phase` event's `to`).
pub fn entered(line: &str) -> Option<String> {
    let v = event(line)?;
    let f = v.get("fields")?;
    (f.get("message")?.as_str()? == "phase").then(|| f.get("to")?.as_str().map(str::to_string)).flatten()
}

/// Wait (at most `within`) until the run logs that it entered `phase` (e.g. `backfill`,
/// `cut-over`).
pub async fn wait_phase(cli: &mut Spawned, phase: &str, within: Duration) {
    let [a, b] = phase_line(phase);
    let line = cli.wait_line(&[&a, &b], within).await;
    assert_eq!(entered(&line.text).as_deref(), Some(phase), "{}", line.text);
}

/// The JSON summary a successful `--log-format json` run printed (its last stdout line);
/// panics with the run's output unless it exited 0.
pub fn summary(out: &Output) -> Value {
    assert_eq!(out.status.code(), Some(0), "the run failed:\nstdout:\n{}\nstderr:\n{}", stdout(out), stderr(out));
    let text = stdout(out);
    let last = text.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or_default();
    event(last).unwrap_or_else(|| panic!("no JSON summary on stdout:\n{text}"))
}

/// A number of the summary (`rows_copied`, `reconnects`, …).
pub fn figure(summary: &Value, name: &str) -> u64 {
    summary.get(name).and_then(Value::as_u64).unwrap_or_else(|| panic!("{name} missing in {summary}"))
}

/// The `message` of every JSON log line of `stderr` (in order), to look for one.
pub fn messages(stderr: &str) -> Vec<String> {
    stderr.lines().filter_map(event).filter_map(|v| v.get("fields")?.get("message")?.as_str().map(str::to_string)).collect()
}

/// The first log message of `stderr` that contains `needle`; panics with stderr without one.
pub fn message_with(stderr: &str, needle: &str) -> String {
    messages(stderr)
        .into_iter()
        .find(|m| m.contains(needle))
        .unwrap_or_else(|| panic!("no log message with {needle:?}:\n{stderr}"))
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
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
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
