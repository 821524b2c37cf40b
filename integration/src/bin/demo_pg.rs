//! `shadowswap-demo-pg`: the main job on a real local PostgreSQL, end to end, under pgbench.
//!
//! 1. creates database `shadowswap_demo` and initialises it with `pgbench -i -s 10` (the familiar
//!    `pgbench_accounts`, 1,000,000 accounts at scale 10);
//! 2. dry-runs the ALTER to show that it is not metadata-only: PostgreSQL itself would rewrite the
//!    table (a volatile default and a column type change), so this is a real copy;
//! 3. starts `pgbench -c 4 -j 2 -n -P 5` (its TPC-B-like default script: every transaction updates
//!    an account, a teller and a branch and appends to `pgbench_history`) and waits for its first
//!    progress report;
//! 4. runs the real `shadowswap alter … --execute` binary as a child process, its progress on this
//!    terminal, adding `opened_at timestamptz NOT NULL DEFAULT now()` and turning `filler` into a
//!    `varchar(100)`;
//! 5. lets pgbench run a few seconds more, then ends its run early with SIGALRM — the signal of
//!    pgbench's own `-T` timer, so it finishes cleanly and prints its summary — checks that the
//!    tables agree with the history pgbench wrote, and prints a short report. Exit status 0 only
//!    when the migration succeeded, pgbench had no failed transaction and the tables agree.
//!
//! `scripts/demo.sh` installs and starts PostgreSQL, builds, and runs this after the MariaDB demo.

use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Parser;
use shadowswap_integration::demo::{self, copy_report, migrate, redacted, shadowswap_bin, thousands, Migration};
use shadowswap_integration::postgres::pgbench::{
    find_pgbench, now_epoch, parse_progress, parse_summary, percentile, read_logs, Pgbench, ACCOUNTS_SQL, OFF_HISTORY_SQL,
    ORPHANS_SQL, TOTALS_SQL,
};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::sync::oneshot;
use tokio_postgres::{Client, NoTls, SimpleQueryMessage};

const DATABASE: &str = "shadowswap_demo";
const TABLE: &str = "pgbench_accounts";
const ALTER: &str = "ADD COLUMN opened_at timestamptz NOT NULL DEFAULT now(), ALTER COLUMN filler TYPE varchar(100)";
/// pgbench's `-T`: an upper bound only; the demo ends the run with SIGALRM once the migration is
/// over (pgbench's -T timer is an alarm, so that is a clean end of the run).
const PGBENCH_MAX_SECONDS: u64 = 3600;
/// pgbench keeps running this long after shadowswap exits.
const AFTER_SECONDS: u64 = 5;
/// pgbench's progress interval (`-P`), seconds.
const PROGRESS_SECONDS: u64 = 5;
/// The tables `pgbench -i` creates.
const PGBENCH_TABLES: [&str; 4] = ["pgbench_accounts", "pgbench_branches", "pgbench_history", "pgbench_tellers"];

/// Online ALTER TABLE demo on PostgreSQL: pgbench's tables, pgbench running, `shadowswap alter
/// --execute` on `pgbench_accounts`, and a check of the tables against pgbench's history.
#[derive(Parser, Debug)]
#[command(name = "shadowswap-demo-pg", version, about)]
struct Args {
    /// pgbench scale factor: 100,000 accounts per unit.
    #[arg(long, default_value_t = 10)]
    scale: u64,
    /// pgbench clients during the migration (`-c`; threads `-j` are half of them, at least 1).
    #[arg(long, default_value_t = 4)]
    clients: u32,
    /// Server DSN (postgres://USER:PASSWORD@HOST:PORT[/DATABASE]); only the server part is used:
    /// the demo (re)creates and uses database `shadowswap_demo`.
    #[arg(long, env = "SHADOWSWAP_PG_DSN", default_value = "postgres://shadowswap:shadowswap@127.0.0.1:54329/shadowswap_demo")]
    dsn: String,
    /// The shadowswap binary (default: `shadowswap` beside this executable).
    #[arg(long)]
    bin: Option<PathBuf>,
    /// The pgbench binary (default: the newest /usr/lib/postgresql/VERSION/bin/pgbench, else
    /// pgbench on PATH).
    #[arg(long)]
    pgbench: Option<PathBuf>,
}

fn say(msg: impl AsRef<str>) {
    println!("[demo-pg] {}", msg.as_ref());
}

/// The server part of a PostgreSQL DSN ([`demo::server_part`]).
fn server_part(dsn: &str) -> Result<&str> {
    demo::server_part(dsn, &["postgres", "postgresql"])
}

/// The database a DSN names, if any.
fn database_of(dsn: &str) -> Option<&str> {
    let rest = dsn.split_once("://")?.1;
    let path = &rest[rest.find('/')? + 1..];
    let db = path.split('?').next().unwrap_or("");
    (!db.is_empty()).then_some(db)
}

/// A plain client for `dsn`; its connection task ends when the client is dropped.
async fn connect(dsn: &str) -> Result<Client> {
    let (client, conn) = tokio_postgres::connect(dsn, NoTls).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(client)
}

/// The first row of `sql`, every column as text (NULL as None).
async fn row(client: &Client, sql: &str) -> Result<Vec<Option<String>>> {
    for m in client.simple_query(sql).await.with_context(|| sql.to_string())? {
        if let SimpleQueryMessage::Row(r) = m {
            return Ok((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect());
        }
    }
    Ok(Vec::new())
}

/// Every row's first column of `sql`, as text.
async fn column(client: &Client, sql: &str) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for m in client.simple_query(sql).await.with_context(|| sql.to_string())? {
        if let SimpleQueryMessage::Row(r) = m {
            out.push(r.get(0).unwrap_or("NULL").to_string());
        }
    }
    Ok(out)
}

/// A text value of `row` as a number (0 when NULL or not a number).
fn num(v: &Option<String>) -> u64 {
    v.as_deref().and_then(|s| s.parse().ok()).unwrap_or(0)
}

fn text(v: &Option<String>) -> &str {
    v.as_deref().unwrap_or("NULL")
}

/// Every line pgbench wrote to stderr, and the (epoch seconds, tps) of each progress report.
type StderrLines = (Vec<String>, Vec<(f64, f64)>);

/// A running `pgbench` (the benchmark during the migration) and the tasks reading its output.
struct Bench {
    child: tokio::process::Child,
    /// Its stdout (the summary), read to the end.
    stdout: tokio::task::JoinHandle<String>,
    /// Its stderr (progress and errors), each line echoed; all lines, and the (time, tps) of each
    /// progress report.
    stderr: tokio::task::JoinHandle<StderrLines>,
    /// When it was started, epoch seconds.
    started_at: f64,
}

impl Bench {
    /// Start the run and wait for pgbench's first progress report.
    async fn start(pgbench: &Pgbench, clients: u32, log_dir: &Path) -> Result<Bench> {
        std::fs::create_dir_all(log_dir).with_context(|| format!("creating {}", log_dir.display()))?;
        let c = clients.to_string();
        let j = (clients / 2).max(1).to_string();
        let t = PGBENCH_MAX_SECONDS.to_string();
        let p = PROGRESS_SECONDS.to_string();
        let prefix = format!("--log-prefix={}", log_dir.join("pgbench_log").display());
        let started_at = now_epoch();
        let mut child = pgbench
            .command(&["-c", &c, "-j", &j, "-T", &t, "-n", "-P", &p, "--progress-timestamp", "-l", &prefix])
            .spawn()
            .with_context(|| format!("starting {}", pgbench.bin.display()))?;
        let mut out = child.stdout.take().expect("piped");
        let stdout = tokio::spawn(async move {
            let mut s = String::new();
            let _ = out.read_to_string(&mut s).await;
            s
        });
        let err = child.stderr.take().expect("piped");
        let (first_tx, first_rx) = oneshot::channel();
        let stderr = tokio::spawn(async move {
            let mut first = Some(first_tx);
            let mut all = Vec::new();
            let mut progress = Vec::new();
            let mut lines = BufReader::new(err).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                match parse_progress(&line) {
                    Some(p) => {
                        // Seconds into the run are easier to read than epoch timestamps.
                        let rest = line.split_once(" s, ").map(|(_, r)| r).unwrap_or(&line);
                        println!("[pgbench] progress at {:.0} s: {rest}", p.at - started_at);
                        progress.push((p.at, p.tps));
                        if let Some(tx) = first.take() {
                            let _ = tx.send(());
                        }
                    }
                    None => println!("[pgbench] {line}"),
                }
                all.push(line);
            }
            (all, progress)
        });
        let mut bench = Bench { child, stdout, stderr, started_at };
        let wait = Duration::from_secs(PROGRESS_SECONDS * 4);
        match tokio::time::timeout(wait, first_rx).await {
            Ok(Ok(())) => Ok(bench),
            Ok(Err(_)) => {
                let status = bench.child.wait().await?;
                let (lines, _) = bench.stderr.await.unwrap_or_default();
                bail!("pgbench exited ({status}) before its first progress report: {}", lines.join(" / "))
            }
            Err(_) => bail!("pgbench made no progress report in {} s", wait.as_secs()),
        }
    }

    fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// End the run early and cleanly: SIGALRM is the signal of pgbench's own `-T` timer, so its
    /// clients finish, and it prints its summary and exits 0.
    async fn stop(mut self) -> Result<Ended> {
        if self.running() {
            if let Some(pid) = self.child.id() {
                let sent = tokio::process::Command::new("sh")
                    .args(["-c", "kill -s ALRM \"$1\"", "sh", &pid.to_string()])
                    .status()
                    .await
                    .map(|s| s.success())
                    .unwrap_or(false);
                if !sent {
                    say("could not send SIGALRM to pgbench; stopping it instead (no summary)");
                    let _ = self.child.start_kill();
                }
            }
        }
        let status = match tokio::time::timeout(Duration::from_secs(30), self.child.wait()).await {
            Ok(s) => s?,
            Err(_) => {
                let _ = self.child.start_kill();
                self.child.wait().await?
            }
        };
        let secs = now_epoch() - self.started_at;
        let stdout = self.stdout.await.unwrap_or_default();
        let (stderr, progress) = self.stderr.await.unwrap_or_default();
        Ok(Ended { status, stdout, stderr, progress, secs })
    }
}

/// A finished pgbench run.
struct Ended {
    status: std::process::ExitStatus,
    /// Its summary.
    stdout: String,
    /// Every line it wrote to stderr.
    stderr: Vec<String>,
    /// (epoch seconds, tps) of each progress report.
    progress: Vec<(f64, f64)>,
    /// Seconds from its start to its exit.
    secs: f64,
}

#[tokio::main]
async fn main() -> ExitCode {
    demo::exit_code("[demo-pg]", run(Args::parse()).await)
}

async fn run(args: Args) -> Result<bool> {
    let bin = shadowswap_bin(args.bin.as_deref())?;
    let pgbench_bin = match args.pgbench.clone().or_else(find_pgbench) {
        Some(b) => b,
        None => bail!(
            "pgbench not found under /usr/lib/postgresql/*/bin or on PATH: install postgresql-client \
             (`bash scripts/postgres.sh install` does), or pass --pgbench"
        ),
    };
    if args.scale == 0 || args.clients == 0 {
        bail!("--scale and --clients must be at least 1");
    }
    let accounts = args.scale * 100_000;
    let server = server_part(&args.dsn)?;
    let dsn = format!("{server}/{DATABASE}");
    // The database to connect to while (re)creating the demo's: the DSN's own, unless that is the
    // demo's (the default DSN), then `postgres`.
    let admin_db = database_of(&args.dsn).filter(|d| *d != DATABASE).unwrap_or("postgres");

    // 1. Database and pgbench's tables.
    let admin = connect(&format!("{server}/{admin_db}"))
        .await
        .with_context(|| format!("cannot reach {}; start the server with `bash scripts/postgres.sh start`", redacted(server)))?;
    admin.batch_execute(&format!("DROP DATABASE IF EXISTS \"{DATABASE}\" WITH (FORCE)")).await?;
    admin.batch_execute(&format!("CREATE DATABASE \"{DATABASE}\"")).await?;
    drop(admin);
    say(format!("created database {DATABASE} on {}", redacted(server)));
    let pgbench = Pgbench::new(pgbench_bin, &dsn)?;
    let scale = args.scale.to_string();
    say(format!("running: {} -i -s {scale} -q (pgbench's tables, {} accounts)", pgbench.bin.display(), thousands(accounts)));
    let t0 = Instant::now();
    let init = pgbench.command(&["-i", "-s", &scale, "-q"]).output().await.context("running pgbench -i")?;
    // (Its NOTICEs about the tables it would drop, in a new database, are noise.)
    for line in String::from_utf8_lossy(&init.stderr).lines().filter(|l| !l.trim().is_empty() && !l.contains("NOTICE:")) {
        println!("[pgbench] {line}");
    }
    if !init.status.success() {
        bail!("pgbench -i exited with {}", init.status);
    }
    say(format!("initialised {DATABASE} in {:.1} s", t0.elapsed().as_secs_f64()));
    let client = connect(&dsn).await.with_context(|| format!("connecting to {}", redacted(&dsn)))?;
    let before = num(&row(&client, &format!("SELECT count(*) FROM {TABLE}")).await?[0]);

    // 2. The dry run: the plan's "metadata-only:" line says whether PostgreSQL would rewrite.
    let dry = tokio::process::Command::new(&bin)
        .args(["alter", "--dsn", &dsn, "--table", TABLE, "--alter", ALTER])
        .stdin(Stdio::null())
        .output()
        .await
        .with_context(|| format!("starting {}", bin.display()))?;
    let plan = String::from_utf8_lossy(&dry.stdout);
    if !dry.status.success() {
        eprint!("{}", String::from_utf8_lossy(&dry.stderr));
        bail!("the dry run exited with {}", dry.status);
    }
    match plan.lines().find(|l| l.starts_with("metadata-only:")) {
        Some(l) if l.contains("no:") => say(format!("dry run: {}", l.split_whitespace().collect::<Vec<_>>().join(" "))),
        Some(l) => bail!("the dry run says {l:?}: this ALTER would not make the demo copy the table"),
        None => say("dry run: passed (the plan does not say whether the ALTER is metadata-only)"),
    }

    // 3. pgbench.
    let log_dir = std::env::temp_dir().join(format!("shadowswap_demo_pg_{}", std::process::id()));
    let j = (args.clients / 2).max(1);
    say(format!(
        "starting: pgbench -c {} -j {j} -n -P {PROGRESS_SECONDS} (TPC-B-like default script), ended once the migration is over",
        args.clients
    ));
    let mut bench = Bench::start(&pgbench, args.clients, &log_dir).await?;

    // 4. The migration, by the real binary.
    say(format!("running: {} alter --dsn {} --table {TABLE} --alter \"{ALTER}\" --execute", bin.display(), redacted(&dsn)));
    let started_epoch = now_epoch();
    let Migration { status, elapsed: migration, copied } = migrate(&bin, &dsn, TABLE, ALTER).await?;
    let ended_epoch = now_epoch();
    let bench_ran_through = bench.running();

    // 5. Let pgbench run a few seconds more, end it, verify, report.
    if status.success() && bench_ran_through {
        say(format!("shadowswap exited 0; pgbench runs {AFTER_SECONDS} s more"));
        tokio::time::sleep(Duration::from_secs(AFTER_SECONDS)).await;
    }
    let Ended { status: bench_status, stdout: bench_stdout, stderr: bench_stderr, progress, secs: bench_secs } =
        bench.stop().await?;
    let transactions = read_logs(&log_dir).unwrap_or_default();
    let _ = std::fs::remove_dir_all(&log_dir);
    // Its summary, but "duration: 3600 s": the demo ended the run early.
    for line in bench_stdout.lines().filter(|l| !l.trim().is_empty() && !l.starts_with("duration:")) {
        println!("[pgbench] {line}");
    }
    let summary = parse_summary(&bench_stdout);
    if !status.success() {
        bail!("shadowswap exited with {status}; the table was not migrated (its own message above says why)");
    }

    let mut problems: Vec<String> = Vec::new();
    if !bench_status.success() {
        let tail: Vec<&str> = bench_stderr.iter().rev().take(5).rev().map(String::as_str).collect();
        problems.push(format!("pgbench exited with {bench_status}: {}", tail.join(" / ")));
    }
    if !bench_ran_through {
        problems.push("pgbench was no longer running when the migration ended".to_string());
    }
    match summary.failed {
        Some(0) => {}
        Some(n) => problems.push(format!("pgbench reported {n} failed transactions")),
        None => problems.push("pgbench printed no summary (no \"number of failed transactions\" line)".to_string()),
    }

    // The table: every account once, the ALTER applied.
    let a = row(&client, ACCOUNTS_SQL).await?;
    let after = num(&a[0]);
    let expected = vec![Some(accounts.to_string()), Some(accounts.to_string()), Some("1".into()), Some(accounts.to_string())];
    if a != expected {
        problems.push(format!(
            "{TABLE}: {} rows, {} distinct aid from {} to {} (expected {accounts} rows, aid 1..{accounts})",
            text(&a[0]),
            text(&a[1]),
            text(&a[2]),
            text(&a[3])
        ));
    }
    let type_of = |col: &str| {
        format!(
            "SELECT format_type(atttypid, atttypmod) || CASE WHEN attnotnull THEN ' NOT NULL' ELSE '' END \
             FROM pg_attribute WHERE attrelid = '{TABLE}'::regclass AND attname = '{col}' AND NOT attisdropped"
        )
    };
    let opened_at = column(&client, &type_of("opened_at")).await?.pop();
    let filler = column(&client, &type_of("filler")).await?.pop();
    let has_column = opened_at.as_deref() == Some("timestamp with time zone NOT NULL");
    let filler_ok = filler.as_deref() == Some("character varying(100)");
    if !has_column {
        problems.push(format!("column opened_at: {}", opened_at.as_deref().unwrap_or("missing")));
    }
    if !filler_ok {
        problems.push(format!("column filler: {} (expected character varying(100))", filler.as_deref().unwrap_or("missing")));
    }

    // The tables against the history pgbench wrote.
    let t0 = Instant::now();
    let s = row(&client, TOTALS_SQL).await?;
    let history_rows = num(&s[4]);
    let totals_agree = s[0] == s[1] && s[1] == s[2] && s[2] == s[3];
    if !totals_agree {
        problems.push(format!(
            "totals disagree: sum(abalance) {}, sum(delta) {}, sum(tbalance) {}, sum(bbalance) {}",
            text(&s[0]),
            text(&s[1]),
            text(&s[2]),
            text(&s[3])
        ));
    }
    if history_rows == 0 {
        problems.push("pgbench wrote no history".to_string());
    }
    let mismatches = num(&row(&client, OFF_HISTORY_SQL).await?[0]);
    let orphans = num(&row(&client, ORPHANS_SQL).await?[0]);
    if mismatches != 0 {
        problems.push(format!("{} accounts whose balance is not the sum of their history", thousands(mismatches)));
    }
    if orphans != 0 {
        problems.push(format!("{} history rows whose account is gone", thousands(orphans)));
    }
    let check_secs = t0.elapsed().as_secs_f64();

    // Nothing of shadowswap's left behind.
    let listed = PGBENCH_TABLES.iter().map(|t| format!("'{t}'")).collect::<Vec<_>>().join(", ");
    let leftovers = column(
        &client,
        &format!(
            "SELECT relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = 'public' AND relkind IN ('r', 'p') AND relname NOT IN ({listed}) \
             UNION ALL SELECT proname::text FROM pg_proc WHERE proname LIKE '\\_%\\_ssw\\_%' \
             UNION ALL SELECT tgname::text FROM pg_trigger WHERE tgname LIKE '\\_%\\_ssw\\_%' ORDER BY 1"
        ),
    )
    .await?;
    if !leftovers.is_empty() {
        problems.push(format!("left behind: {}", leftovers.join(", ")));
    }

    // pgbench's transactions while shadowswap ran, from its per-transaction log.
    let secs = migration.as_secs_f64().max(1e-3);
    let during: Vec<&(f64, Option<u64>)> =
        transactions.iter().filter(|(t, _)| *t >= started_epoch && *t <= ended_epoch).collect();
    let failed_during = during.iter().filter(|(_, l)| l.is_none()).count() as u64;
    // The slowest transaction, and when it ended.
    let slowest = during.iter().filter_map(|(t, l)| Some((l.as_ref()?, *t))).max_by_key(|(l, _)| **l);
    let mut lat_during: Vec<u64> = during.iter().filter_map(|(_, l)| *l).collect();
    lat_during.sort_unstable();
    let done_during = lat_during.len() as u64;
    let tps_before: Vec<f64> = progress.iter().filter(|(t, _)| *t <= started_epoch).map(|(_, tps)| *tps).collect();

    println!();
    println!("shadowswap PostgreSQL demo — report");
    println!("  rows in the table:      {} before, {} after ({TABLE})", thousands(before), thousands(after));
    println!("  migration:              {secs:.1} s (shadowswap alter --execute, start to exit)");
    println!("{}", copy_report(copied, before, secs));
    println!(
        "  pgbench transactions:   {} during the migration ({:.0} tps over {} clients{}), {} failed",
        thousands(done_during),
        done_during as f64 / secs,
        args.clients,
        match tps_before.last() {
            Some(tps) => format!("; {tps:.0} tps in the {PROGRESS_SECONDS} s before it"),
            None => String::new(),
        },
        failed_during
    );
    if !lat_during.is_empty() {
        println!(
            "  pgbench latency:        during the migration p50 {:.1} ms, p99 {:.1} ms, max {}",
            percentile(&lat_during, 0.5) as f64 / 1000.0,
            percentile(&lat_during, 0.99) as f64 / 1000.0,
            match slowest {
                Some((lat, t)) => format!("{:.1} ms (ended {:.1} s into the migration)", *lat as f64 / 1000.0, t - started_epoch),
                None => "-".to_string(),
            }
        );
    }
    println!(
        "  pgbench, whole run:     {} transactions in {bench_secs:.1} s, tps {}, latency average {}, {} failed",
        summary.processed.map(thousands).unwrap_or_else(|| "?".into()),
        summary.tps.map(|t| format!("{t:.0}")).unwrap_or_else(|| "?".into()),
        summary.latency_avg_ms.map(|l| format!("{l:.2} ms")).unwrap_or_else(|| "?".into()),
        summary.failed.map(thousands).unwrap_or_else(|| "?".into())
    );
    println!(
        "  new column opened_at:   {}; filler: {}",
        match (&opened_at, has_column) {
            (Some(t), true) => format!("present ({t})"),
            (Some(t), false) => format!("WRONG ({t})"),
            (None, _) => "MISSING".to_string(),
        },
        filler.as_deref().unwrap_or("MISSING")
    );
    println!(
        "  balances:               sum(abalance) {}, sum(delta) {}, sum(tbalance) {}, sum(bbalance) {} over {} history rows; \
         {} accounts off their history (checked in {check_secs:.1} s)",
        text(&s[0]),
        text(&s[1]),
        text(&s[2]),
        text(&s[3]),
        thousands(history_rows),
        thousands(mismatches)
    );
    println!(
        "  left behind:            {}",
        if leftovers.is_empty() {
            "nothing (no shadow table, old table, capture triggers or functions)".to_string()
        } else {
            leftovers.join(", ")
        }
    );
    let ok = problems.is_empty();
    if ok {
        println!(
            "  verification: OK — {} accounts, each balance the sum of its history, totals equal across accounts, \
             history, tellers and branches; 0 failed pgbench transactions",
            thousands(after)
        );
    } else {
        println!("  verification: FAILED — {}", problems.join("; "));
    }
    Ok(ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helpers() {
        assert_eq!(thousands(1_000_000), "1,000,000");
        assert_eq!(server_part("postgres://u:p@h:1/db?x=1").unwrap(), "postgres://u:p@h:1");
        assert_eq!(server_part("postgresql://u:p@h:1").unwrap(), "postgresql://u:p@h:1");
        assert!(server_part("mysql://u:p@h:1").is_err());
        assert_eq!(database_of("postgres://u:p@h:1/db?x=1"), Some("db"));
        assert_eq!(database_of("postgres://u:p@h:1"), None);
        assert_eq!(database_of("postgres://u:p@h:1/"), None);
        assert_eq!(redacted("postgres://u:p@h:1/db"), "postgres://u:***@h:1/db");
        assert_eq!(
            demo::rows_copied("swapped public.t in 3.0 s: 1000000 rows copied in 2.5 s (400000 rows/s), checksum ok"),
            Some((1_000_000, 2.5))
        );
        let s = parse_summary(
            "number of transactions actually processed: 3426\nnumber of failed transactions: 0 (0.000%)\n\
             latency average = 3.382 ms\ntps = 1176.376061 (without initial connection time)\n",
        );
        assert_eq!((s.processed, s.failed, s.tps, s.latency_avg_ms), (Some(3426), Some(0), Some(1176.376061), Some(3.382)));
        assert_eq!(
            parse_progress("progress: 1712345678.123 s, 1234.5 tps, lat 3.210 ms stddev 1.234, 0 failed").map(|p| (p.at, p.tps)),
            Some((1712345678.123, 1234.5))
        );
        assert_eq!(
            shadowswap_integration::postgres::pgbench::parse_log_line("0 12 3401 0 1712345678 500000"),
            Some((1712345678.5, Some(3401)))
        );
        assert_eq!(
            shadowswap_integration::postgres::pgbench::parse_log_line("1 13 failed 0 1712345678 0"),
            Some((1712345678.0, None))
        );
    }
}
