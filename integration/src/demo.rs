//! What the two demos (`shadowswap-demo` for MariaDB, `shadowswap-demo-pg` for PostgreSQL)
//! share: number and DSN formatting, finding the `shadowswap` binary, the migration run by it
//! with its output on this terminal, the report's line about the copy, and the exit status.

use std::path::{Path, PathBuf};
use std::process::{ExitCode, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use tokio::io::{AsyncBufReadExt, BufReader};

/// `1234567` → `1,234,567`.
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut groups: Vec<&str> = s.as_bytes().rchunks(3).map(|g| std::str::from_utf8(g).unwrap_or("?")).collect();
    groups.reverse();
    groups.join(",")
}

/// The server part of a DSN (scheme, user, password, host, port), without database or options.
/// `schemes` are the accepted ones, the first the one the messages name.
pub fn server_part<'a>(dsn: &'a str, schemes: &[&str]) -> Result<&'a str> {
    let name = schemes.first().copied().unwrap_or("");
    let Some((scheme, rest)) = dsn.split_once("://") else { bail!("--dsn {dsn:?} is not a {name}:// URL") };
    if !schemes.contains(&scheme) {
        bail!("--dsn must start with {name}://");
    }
    let end = rest.find(['/', '?']).map(|i| scheme.len() + 3 + i).unwrap_or(dsn.len());
    Ok(&dsn[..end])
}

/// The DSN with its password hidden, for display.
pub fn redacted(dsn: &str) -> String {
    match (dsn.find("://"), dsn.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &dsn[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &dsn[..s + 3], &dsn[at..]),
                None => dsn.to_string(),
            }
        }
        _ => dsn.to_string(),
    }
}

/// The `shadowswap` binary: `bin` if given, else `shadowswap` beside this executable. It must
/// exist.
pub fn shadowswap_bin(bin: Option<&Path>) -> Result<PathBuf> {
    let bin = match bin {
        Some(b) => b.to_path_buf(),
        None => {
            let exe = std::env::current_exe().context("locating this executable")?;
            exe.with_file_name(format!("shadowswap{}", std::env::consts::EXE_SUFFIX))
        }
    };
    if !bin.exists() {
        bail!("{} not found: build it with `cargo build --release -p shadowswap-cli`, or pass --bin", bin.display());
    }
    Ok(bin)
}

/// Rows copied and backfill seconds from the CLI's summary line
/// ("… 1000000 rows copied in 12.9 s …").
pub fn rows_copied(line: &str) -> Option<(u64, f64)> {
    let at = line.find(" rows copied in ")?;
    let rows = line[..at].rsplit(' ').next()?.parse().ok()?;
    let secs = line[at + " rows copied in ".len()..].split(' ').next()?.parse().ok()?;
    Some((rows, secs))
}

/// How the migration by the real binary went.
pub struct Migration {
    /// The binary's exit status.
    pub status: ExitStatus,
    /// Start to exit.
    pub elapsed: Duration,
    /// Rows copied and backfill seconds, from its summary line (if it printed one).
    pub copied: Option<(u64, f64)>,
}

/// Run `bin alter --dsn <dsn> --table <table> --alter <alter> --execute` to its end, its stderr
/// (progress, log) on this terminal and its stdout passed through line by line.
pub async fn migrate(bin: &Path, dsn: &str, table: &str, alter: &str) -> Result<Migration> {
    let started = Instant::now();
    let mut child = tokio::process::Command::new(bin)
        .args(["alter", "--dsn", dsn, "--table", table, "--alter", alter, "--execute"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))?;
    let stdout = child.stdout.take().expect("piped");
    let forward = tokio::spawn(async move {
        let mut copied = None;
        let mut lines = BufReader::new(stdout).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            println!("{line}");
            copied = copied.or_else(|| rows_copied(&line));
        }
        copied
    });
    let status = child.wait().await.context("waiting for shadowswap")?;
    let elapsed = started.elapsed();
    let copied = forward.await.unwrap_or(None);
    Ok(Migration { status, elapsed, copied })
}

/// The report's line on the copy: the rows `copied` (or `estimated` when the summary line was
/// not found) over the migration's `secs`, and the backfill's own rate.
pub fn copy_report(copied: Option<(u64, f64)>, estimated: u64, secs: f64) -> String {
    let rows = copied.map(|(rows, _)| rows).unwrap_or(estimated);
    format!(
        "  rows copied:            {} -> {} rows/s over the whole migration{}",
        thousands(rows),
        thousands((rows as f64 / secs).round() as u64),
        match copied {
            Some((rows, backfill_secs)) => format!(
                " ({} rows/s during the backfill's {backfill_secs:.1} s; the rest is the checksum and cut-over)",
                thousands((rows as f64 / backfill_secs.max(1e-3)).round() as u64)
            ),
            None => " (rows estimated: the summary line was not found)".to_string(),
        }
    )
}

/// A demo's exit status: 0 when it succeeded, 1 when it ran but a check failed, 2 when it could
/// not run (the error printed with the demo's `prefix`).
pub fn exit_code(prefix: &str, result: Result<bool>) -> ExitCode {
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("{prefix} error: {e:#}");
            ExitCode::from(2)
        }
    }
}
