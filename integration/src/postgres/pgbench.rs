//! pgbench, for the pgbench test and the PostgreSQL demo: finding the binary, running it against
//! a DSN, reading its summary, its progress lines and its per-transaction logs, and the queries
//! that check the tables against the history it wrote.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};

/// The newest `/usr/lib/postgresql/<version>/bin/pgbench`, else `pgbench` on PATH (the lookup
/// order of `scripts/postgres.sh`).
pub fn find_pgbench() -> Option<PathBuf> {
    let mut found: Vec<(Vec<u32>, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version =
                e.file_name().to_string_lossy().split('.').map(|p| p.parse::<u32>().ok()).collect::<Option<Vec<_>>>()?;
            let bin = e.path().join("bin/pgbench");
            bin.exists().then_some((version, bin))
        })
        .collect();
    found.sort();
    if let Some((_, bin)) = found.pop() {
        return Some(bin);
    }
    std::env::var_os("PATH").and_then(|p| std::env::split_paths(&p).map(|d| d.join("pgbench")).find(|b| b.exists()))
}

/// How to run pgbench against the database of a DSN: connection options from the DSN, the
/// password in `PGPASSWORD` rather than on the command line.
pub struct Pgbench {
    /// The pgbench binary.
    pub bin: PathBuf,
    conn: Vec<String>,
    password: Option<String>,
}

impl Pgbench {
    /// pgbench `bin` against the database `dsn` names.
    pub fn new(bin: PathBuf, dsn: &str) -> Result<Pgbench> {
        let cfg: tokio_postgres::Config = dsn.parse().with_context(|| format!("parsing {}", crate::demo::redacted(dsn)))?;
        let host = match cfg.get_hosts().first() {
            Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
            #[cfg(unix)]
            Some(tokio_postgres::config::Host::Unix(p)) => p.display().to_string(),
            None => "localhost".to_string(),
        };
        let port = cfg.get_ports().first().copied().unwrap_or(5432);
        let mut conn = vec!["-h".into(), host, "-p".into(), port.to_string()];
        if let Some(user) = cfg.get_user() {
            conn.extend(["-U".to_string(), user.to_string()]);
        }
        let Some(database) = cfg.get_dbname() else { bail!("the DSN {} names no database", crate::demo::redacted(dsn)) };
        conn.push(database.to_string());
        let password = cfg.get_password().map(|p| String::from_utf8_lossy(p).into_owned());
        Ok(Pgbench { bin, conn, password })
    }

    /// `pgbench OPTIONS… CONNECTION…`, stdin closed, stdout and stderr piped, killed if dropped.
    pub fn command(&self, options: &[&str]) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(&self.bin);
        cmd.args(options).args(&self.conn).env_remove("PGSERVICE").kill_on_drop(true);
        if let Some(pw) = &self.password {
            cmd.env("PGPASSWORD", pw);
        }
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        cmd
    }
}

/// Seconds since the epoch, as pgbench's logs and progress lines give times.
pub fn now_epoch() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

/// pgbench's end-of-run summary (stdout); `None` where a line is missing.
#[derive(Debug, Default)]
pub struct Summary {
    /// "number of transactions actually processed".
    pub processed: Option<u64>,
    /// "number of failed transactions".
    pub failed: Option<u64>,
    /// "tps", without initial connection time.
    pub tps: Option<f64>,
    /// "latency average", ms.
    pub latency_avg_ms: Option<f64>,
    /// "latency stddev", ms (printed with `-P` or `-l`).
    pub latency_stddev_ms: Option<f64>,
}

fn value_after<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    text.lines().find_map(|l| l.trim().strip_prefix(prefix)).and_then(|r| r.split_whitespace().next())
}

/// Read the summary pgbench printed on stdout.
pub fn parse_summary(stdout: &str) -> Summary {
    let number = |prefix: &str| value_after(stdout, prefix).and_then(|v| v.parse::<f64>().ok());
    Summary {
        processed: value_after(stdout, "number of transactions actually processed:")
            .and_then(|v| v.split('/').next()?.parse().ok()),
        failed: value_after(stdout, "number of failed transactions:").and_then(|v| v.parse().ok()),
        tps: number("tps ="),
        latency_avg_ms: number("latency average ="),
        latency_stddev_ms: number("latency stddev ="),
    }
}

/// One progress report (stderr, `-P` with `--progress-timestamp`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProgressLine {
    /// Its time, epoch seconds.
    pub at: f64,
    /// Transactions per second over the interval.
    pub tps: f64,
    /// Latency average over the interval, ms.
    pub latency_ms: Option<f64>,
}

/// "progress: 1712345678.123 s, 1234.5 tps, lat 3.210 ms stddev 1.234, 0 failed" → its time, tps
/// and latency; `None` for any other line.
pub fn parse_progress(line: &str) -> Option<ProgressLine> {
    let w: Vec<&str> = line.strip_prefix("progress: ")?.split_whitespace().collect();
    Some(ProgressLine {
        at: w.first()?.parse().ok()?,
        tps: w.get(2)?.parse().ok()?,
        latency_ms: w.get(5).and_then(|v| v.parse().ok()),
    })
}

/// One transaction of pgbench's `-l` log: end time (epoch seconds), latency µs (None: failed).
/// Lines: "client_id transaction_no time script_no time_epoch time_us [...]", time "failed" for a
/// failed transaction.
pub fn parse_log_line(line: &str) -> Option<(f64, Option<u64>)> {
    let w: Vec<&str> = line.split_whitespace().collect();
    let latency = match *w.get(2)? {
        "failed" => None,
        v => Some(v.parse().ok()?),
    };
    let secs: u64 = w.get(4)?.parse().ok()?;
    let us: u64 = w.get(5)?.parse().ok()?;
    Some((secs as f64 + us as f64 / 1e6, latency))
}

/// Every transaction in the `-l` logs in `dir`, by end time.
pub fn read_logs(dir: &Path) -> std::io::Result<Vec<(f64, Option<u64>)>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir)? {
        let text = std::fs::read_to_string(e?.path())?;
        out.extend(text.lines().filter_map(parse_log_line));
    }
    out.sort_by(|a, b| a.0.total_cmp(&b.0));
    Ok(out)
}

/// The value at fraction `p` (0.5: the median) of `sorted`; 0 when empty.
pub fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// The totals pgbench keeps equal: sum(abalance), sum(delta), sum(tbalance), sum(bbalance), and
/// the number of history rows.
pub const TOTALS_SQL: &str = "SELECT (SELECT sum(abalance) FROM pgbench_accounts), (SELECT sum(delta) FROM pgbench_history), \
                              (SELECT sum(tbalance) FROM pgbench_tellers), (SELECT sum(bbalance) FROM pgbench_branches), \
                              (SELECT count(*) FROM pgbench_history)";

/// Accounts whose balance is not the sum of their history.
pub const OFF_HISTORY_SQL: &str = "SELECT count(*) FROM pgbench_accounts a \
                                   LEFT JOIN (SELECT aid, sum(delta) AS s FROM pgbench_history GROUP BY aid) h ON h.aid = a.aid \
                                   WHERE a.abalance <> coalesce(h.s, 0)";

/// History rows whose account is gone.
pub const ORPHANS_SQL: &str =
    "SELECT count(*) FROM pgbench_history h WHERE NOT EXISTS (SELECT FROM pgbench_accounts a WHERE a.aid = h.aid)";

/// Every account once: count, distinct aids, lowest and highest aid.
pub const ACCOUNTS_SQL: &str = "SELECT count(*), count(DISTINCT aid), min(aid), max(aid) FROM pgbench_accounts";
