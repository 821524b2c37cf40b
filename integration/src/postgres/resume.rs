//! Harness for the PostgreSQL resume tests (`postgres resume::`): run `shadowswap alter …
//! --execute --log-format json` in the background ([`Run::spawn`]), wait for a JSON log event
//! ([`wait_phase`]) or for the checkpoint to reach a row count ([`wait_copied`]), kill it with
//! SIGKILL ([`kill`]), read the checkpoint the run left ([`checkpoint`]), run the same command
//! again to completion ([`Run::again`]) and read its JSON summary ([`summary`]).
//!
//! What does not depend on PostgreSQL (the JSON log lines, the summary) is written to be moved
//! into a dialect-neutral `integration/src/resume.rs`.

use std::os::unix::process::ExitStatusExt;
use std::process::Output;
use std::time::Duration;

use serde_json::Value;

use crate::cli::{run_cli, stderr, stdout, Spawned};
use crate::postgres::PgTestDb;

/// One `shadowswap alter` command, to start, kill and run again unchanged.
#[derive(Debug, Clone)]
pub struct Run {
    /// The arguments after the binary's name.
    pub args: Vec<String>,
}

impl Run {
    /// `alter --dsn <dsn> --table <table> --alter <alter> --execute --log-format json <extra…>`.
    pub fn alter(dsn: &str, table: &str, alter: &str, extra: &[&str]) -> Run {
        let mut args: Vec<String> =
            ["alter", "--dsn", dsn, "--table", table, "--alter", alter, "--execute", "--log-format", "json"]
                .iter()
                .map(|s| s.to_string())
                .collect();
        args.extend(extra.iter().map(|s| s.to_string()));
        Run { args }
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
/// `cut-over`): the checkpoint says that phase from then on.
pub async fn wait_phase(cli: &mut Spawned, phase: &str, within: Duration) {
    let to = format!("\"to\":\"{phase}\"");
    let line = cli.wait_line(&["\"message\":\"phase\"", &to], within).await;
    assert_eq!(entered(&line.text).as_deref(), Some(phase), "{}", line.text);
}

/// SIGKILL the run (no chance to clean up) and wait for it to die; returns its stderr.
pub async fn kill(cli: Spawned) -> String {
    cli.signal("KILL");
    let (status, _, err) = cli.finish(Duration::from_secs(20)).await;
    assert_eq!(status.signal(), Some(9), "killed by SIGKILL: {status:?}\n{err}");
    err
}

/// The checkpoint row of `table` as the server holds it (`None` without one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointRow {
    /// The phase it records.
    pub phase: String,
    /// Rows copied so far.
    pub rows_copied: u64,
    /// The low watermark's text, if any.
    pub low_watermark: Option<String>,
}

/// The checkpoint of `table` (in `public`), read with the test's own client.
pub async fn checkpoint(db: &PgTestDb, table: &str) -> Option<CheckpointRow> {
    let q = format!("SELECT phase, rows_copied, low_watermark FROM public.\"_{table}_ssw_ckpt\" WHERE id = 1");
    let row = db.client.query_opt(&q, &[]).await.ok()??;
    Some(CheckpointRow { phase: row.get(0), rows_copied: row.get::<_, i64>(1) as u64, low_watermark: row.get(2) })
}

/// Wait (at most `within`) until the checkpoint of `table` records at least `rows` rows copied
/// (what the chunks committed), while the run lives; returns the checkpoint then.
pub async fn wait_copied(cli: &mut Spawned, db: &PgTestDb, table: &str, rows: u64, within: Duration) -> CheckpointRow {
    let what = format!("the checkpoint of {table} did not reach {rows} rows copied");
    cli.wait_until(within, &what, || async { checkpoint(db, table).await.is_some_and(|c| c.rows_copied >= rows) }).await;
    checkpoint(db, table).await.unwrap()
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
