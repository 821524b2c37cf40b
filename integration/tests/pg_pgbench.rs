//! pgbench against the table being migrated: `pgbench -c 4 -j 2` with its default TPC-B-like
//! script runs for the whole migration of `pgbench_accounts` (before the backfill starts, until
//! after the swap). Afterwards: zero failed transactions, and the tables agree with the history
//! pgbench wrote (each account's balance is the sum of its history deltas; accounts, tellers,
//! branches and history sum to the same total; no account lost or duplicated).
//!
//! The figures (tps, latency overall, per second around the cut-over, and of the transactions
//! that overlapped the swap) are printed, with a baseline run of the same pgbench without a
//! migration, for the docs: `cargo nextest run -p shadowswap-integration --test pg_pgbench --no-capture`.
//!
//! Needs `pgbench` (Debian: `postgresql-client`/`postgresql` put it under
//! `/usr/lib/postgresql/<version>/bin`; otherwise it is looked up on PATH).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use shadowswap_engine::runner::Outcome;
use shadowswap_engine::{Phase, Runner};
use shadowswap_integration::fast_config;
use shadowswap_integration::pg::PgTestDb;

/// Accounts at scale 2.
const ACCOUNTS: u64 = 200_000;
/// pgbench's run during the migration, seconds: long enough to cover the migration (which
/// starts 1 s in) with a margin; the test asserts that pgbench was still running at the swap.
const RUN_SECONDS: u64 = 20;
/// The baseline run without migration, seconds.
const BASELINE_SECONDS: u64 = 5;
/// Fixed chunk size: small enough that the backfill takes several seconds under pgbench.
const CHUNK_ROWS: u64 = 500;

const ALTER: &str = "ADD COLUMN note text NOT NULL DEFAULT 'x', ALTER COLUMN abalance TYPE bigint";

/// The newest `/usr/lib/postgresql/<version>/bin/pgbench`, else `pgbench` on PATH (the same
/// lookup order as `scripts/postgres.sh`).
fn pgbench_bin() -> PathBuf {
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
        return bin;
    }
    let on_path =
        std::env::var_os("PATH").and_then(|p| std::env::split_paths(&p).map(|d| d.join("pgbench")).find(|b| b.exists()));
    on_path.expect("pgbench not found under /usr/lib/postgresql/*/bin or on PATH; install postgresql-client")
}

/// Connection options for pgbench from the test database's DSN; the password goes in
/// `PGPASSWORD`, not on the command line.
struct Conn {
    args: Vec<String>,
    password: String,
}

impl Conn {
    fn from_dsn(dsn: &str) -> Conn {
        let cfg: tokio_postgres::Config = dsn.parse().expect("DSN");
        let host = match cfg.get_hosts().first() {
            Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
            other => panic!("expected a TCP host in the DSN, got {other:?}"),
        };
        let port = cfg.get_ports().first().copied().unwrap_or(5432);
        let args = vec![
            "-h".into(),
            host,
            "-p".into(),
            port.to_string(),
            "-U".into(),
            cfg.get_user().expect("user in the DSN").to_string(),
            cfg.get_dbname().expect("database in the DSN").to_string(),
        ];
        let password = cfg.get_password().map(|p| String::from_utf8_lossy(p).into_owned()).unwrap_or_default();
        Conn { args, password }
    }

    fn command(&self, extra: &[&str]) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(pgbench_bin());
        cmd.args(extra).args(&self.args).env("PGPASSWORD", &self.password).env_remove("PGSERVICE").kill_on_drop(true);
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        cmd
    }
}

fn now_epoch() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs_f64()
}

/// What one pgbench run reported.
#[derive(Debug, Default)]
struct Report {
    processed: u64,
    failed: Option<u64>,
    tps: f64,
    latency_avg_ms: f64,
    latency_stddev_ms: Option<f64>,
    /// (epoch seconds, tps, latency average ms) per progress interval.
    progress: Vec<(f64, f64, f64)>,
    /// (epoch seconds at the end, latency µs) per transaction, from `-l`.
    transactions: Vec<(f64, u64)>,
}

fn number_after<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    text.lines().find_map(|l| l.trim().strip_prefix(prefix)).map(|r| r.split_whitespace().next().unwrap_or(""))
}

fn parse(stdout: &str, stderr: &str) -> Report {
    let f = |s: Option<&str>| s.and_then(|v| v.parse::<f64>().ok());
    let mut r = Report {
        processed: number_after(stdout, "number of transactions actually processed:")
            .and_then(|v| v.split('/').next()?.parse().ok())
            .unwrap_or(0),
        failed: number_after(stdout, "number of failed transactions:").and_then(|v| v.parse().ok()),
        tps: f(number_after(stdout, "tps =")).unwrap_or(0.0),
        latency_avg_ms: f(number_after(stdout, "latency average =")).unwrap_or(0.0),
        latency_stddev_ms: f(number_after(stdout, "latency stddev =")),
        ..Report::default()
    };
    // "progress: 1712345678.123 s, 1234.5 tps, lat 3.210 ms stddev 1.234, 0 failed"
    for l in stderr.lines().filter_map(|l| l.strip_prefix("progress: ")) {
        let w: Vec<&str> = l.split_whitespace().collect();
        if let (Some(t), Some(tps), Some(lat)) =
            (w.first().and_then(|v| v.parse().ok()), w.get(2).and_then(|v| v.parse().ok()), w.get(5).and_then(|v| v.parse().ok()))
        {
            r.progress.push((t, tps, lat));
        }
    }
    r
}

/// Per-transaction lines of `-l` logs: "client_id transaction_no time script_no time_epoch time_us".
fn read_logs(dir: &Path) -> Vec<(f64, u64)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let text = std::fs::read_to_string(e.path()).unwrap();
        for l in text.lines() {
            let w: Vec<&str> = l.split_whitespace().collect();
            if let (Some(lat), Some(s), Some(us)) = (
                w.get(2).and_then(|v| v.parse::<u64>().ok()),
                w.get(4).and_then(|v| v.parse::<u64>().ok()),
                w.get(5).and_then(|v| v.parse::<u64>().ok()),
            ) {
                out.push((s as f64 + us as f64 / 1e6, lat));
            }
        }
    }
    out.sort_by(|a, b| a.0.total_cmp(&b.0));
    out
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Start pgbench's TPC-B-like default script: 4 clients, 2 threads, `seconds` long, no vacuum,
/// progress every second with epoch timestamps, per-transaction log into `log_dir`.
async fn start_pgbench(conn: &Conn, seconds: u64, log_dir: &Path) -> tokio::process::Child {
    std::fs::create_dir_all(log_dir).unwrap();
    let prefix = format!("--log-prefix={}", log_dir.join("pgbench_log").display());
    let t = seconds.to_string();
    conn.command(&["-c", "4", "-j", "2", "-T", &t, "-n", "-P", "1", "--progress-timestamp", "-l", &prefix])
        .spawn()
        .expect("start pgbench")
}

async fn finish_pgbench(child: tokio::process::Child, log_dir: &Path, what: &str) -> Report {
    let out = child.wait_with_output().await.expect("pgbench");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{what}: pgbench exited with {}\n{stdout}\n{stderr}", out.status);
    let mut r = parse(&stdout, &stderr);
    r.transactions = read_logs(log_dir);
    let _ = std::fs::remove_dir_all(log_dir);
    eprintln!("[pgbench] {what}: pgbench summary:\n{}", stdout.trim_end());
    assert_eq!(r.failed, Some(0), "{what}: failed transactions (or no such line in pgbench's output):\n{stdout}\n{stderr}");
    assert!(r.processed > 0, "{what}: no transaction processed:\n{stdout}");
    r
}

async fn scalar(db: &PgTestDb, q: &str) -> String {
    db.text_rows(q).await[0][0].clone().unwrap_or_else(|| "NULL".into())
}

/// The tables agree with the history pgbench wrote.
async fn assert_consistent(db: &PgTestDb, when: &str) {
    let sums = db
        .text_rows(
            "SELECT (SELECT sum(abalance) FROM pgbench_accounts)::text, (SELECT sum(delta) FROM pgbench_history)::text, \
                    (SELECT sum(tbalance) FROM pgbench_tellers)::text, (SELECT sum(bbalance) FROM pgbench_branches)::text, \
                    (SELECT count(*) FROM pgbench_history)::text",
        )
        .await;
    let s = &sums[0];
    eprintln!(
        "[pgbench] {when}: sum(abalance) {:?}, sum(delta) {:?}, sum(tbalance) {:?}, sum(bbalance) {:?}, history rows {:?}",
        s[0], s[1], s[2], s[3], s[4]
    );
    assert!(s[4].as_deref() != Some("0"), "{when}: pgbench wrote no history");
    assert!(
        s[0] == s[1] && s[1] == s[2] && s[2] == s[3],
        "{when}: totals disagree (accounts, history, tellers, branches): {s:?}"
    );
    let mismatches = scalar(
        db,
        "SELECT count(*) FROM pgbench_accounts a LEFT JOIN (SELECT aid, sum(delta) AS s FROM pgbench_history GROUP BY aid) h \
         ON h.aid = a.aid WHERE a.abalance <> coalesce(h.s, 0)",
    )
    .await;
    assert_eq!(mismatches, "0", "{when}: accounts whose balance is not the sum of their history");
    let orphans = scalar(
        db,
        "SELECT count(*) FROM pgbench_history h WHERE NOT EXISTS (SELECT FROM pgbench_accounts a WHERE a.aid = h.aid)",
    )
    .await;
    assert_eq!(orphans, "0", "{when}: history rows whose account is gone");
    let accounts = db
        .text_rows("SELECT count(*)::text, count(DISTINCT aid)::text, min(aid)::text, max(aid)::text FROM pgbench_accounts")
        .await;
    let a = &accounts[0];
    let n = ACCOUNTS.to_string();
    assert_eq!(a, &vec![Some(n.clone()), Some(n.clone()), Some("1".to_string()), Some(n)], "{when}: accounts lost or duplicated");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pgbench_runs_clean_through_a_migration_of_pgbench_accounts() {
    let db = PgTestDb::new("pgbench").await;
    let conn = Conn::from_dsn(&db.dsn);
    let init = conn.command(&["-i", "-s", "2", "-q"]).output().await.expect("pgbench -i");
    assert!(init.status.success(), "pgbench -i: {}", String::from_utf8_lossy(&init.stderr));
    let log_root = std::env::temp_dir().join(format!("ssw_pgbench_{}", std::process::id()));

    // Baseline: the same load without a migration.
    let baseline_dir = log_root.join("baseline");
    let child = start_pgbench(&conn, BASELINE_SECONDS, &baseline_dir).await;
    let baseline = finish_pgbench(child, &baseline_dir, "baseline (no migration)").await;
    assert_consistent(&db, "after the baseline").await;

    // pgbench for the whole migration.
    let run_dir = log_root.join("migration");
    let pgbench_started = now_epoch();
    let child = start_pgbench(&conn, RUN_SECONDS, &run_dir).await;
    let bench = tokio::spawn(async move {
        let out = child.wait_with_output().await;
        (out, now_epoch())
    });
    tokio::time::sleep(Duration::from_secs(1)).await;

    let mut cfg = fast_config();
    cfg.copy.fixed_chunk_rows = Some(CHUNK_ROWS);
    let runner = Runner::new(db.dialect().await, cfg);
    // Wall-clock times of the phases, to relate pgbench's per-second figures to them.
    let mut progress = runner.progress();
    let phases = tokio::spawn(async move {
        let mut seen: Vec<(Phase, f64)> = Vec::new();
        while progress.changed().await.is_ok() {
            let phase = progress.borrow().phase;
            if seen.last().map(|(p, _)| *p) != Some(phase) {
                seen.push((phase, now_epoch()));
            }
        }
        seen
    });
    let started = now_epoch();
    let t0 = Instant::now();
    let result = runner.run(&db.table("pgbench_accounts"), ALTER).await;
    let migration = t0.elapsed();
    let swapped_at = now_epoch();
    let pgbench_running_at_swap = !bench.is_finished();
    drop(runner);
    let phases = phases.await.unwrap();
    let summary = match result {
        Ok(Outcome::Swapped(s)) => s,
        other => panic!("expected a swap, got {other:?}"),
    };
    assert!(
        pgbench_running_at_swap,
        "pgbench ended before the swap ({:.1} s migration): raise RUN_SECONDS",
        migration.as_secs_f64()
    );

    let (out, pgbench_ended) = bench.await.unwrap();
    let out = out.expect("pgbench");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    eprintln!("[pgbench] during the migration: pgbench summary:\n{}", stdout.trim_end());
    assert!(out.status.success(), "pgbench exited with {}\n{stdout}\n{stderr}", out.status);
    let mut r = parse(&stdout, &stderr);
    r.transactions = read_logs(&run_dir);
    let _ = std::fs::remove_dir_all(&log_root);
    assert_eq!(r.failed, Some(0), "failed transactions (or no such line in pgbench's output):\n{stdout}\n{stderr}");
    assert!(r.processed > 0, "no transaction processed:\n{stdout}");
    assert!(pgbench_ended > swapped_at, "pgbench must end after the swap");

    // The figures.
    let at = |p: Phase| phases.iter().find(|(q, _)| *q == p).map(|(_, t)| *t);
    let backfill = at(Phase::Backfill).unwrap_or(started);
    let cut_over = at(Phase::CutOver).expect("cut-over phase seen");
    let cleanup = at(Phase::Cleanup).unwrap_or(swapped_at);
    eprintln!(
        "[pgbench] migration {:.1} s (from {:.1} s into pgbench): backfill {} rows in {} chunks ({:.1} s), checksum {:?} rows, \
         cut-over {} attempt(s), swap {} ms; pgbench ran {:.1} s past the swap",
        migration.as_secs_f64(),
        started - pgbench_started,
        summary.backfill.rows,
        summary.backfill.chunks,
        summary.backfill.elapsed.as_secs_f64(),
        summary.rows_checksummed,
        summary.cut_over.attempts,
        summary.cut_over.swap_time.as_millis(),
        pgbench_ended - swapped_at
    );
    let window = |from: f64, to: f64| {
        let mut lat: Vec<u64> = r.transactions.iter().filter(|(t, _)| *t >= from && *t <= to).map(|(_, l)| *l).collect();
        lat.sort_unstable();
        lat
    };
    let describe = |what: &str, lat: &[u64], secs: f64| {
        eprintln!(
            "[pgbench] {what}: {} transactions ({:.0} tps), latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            lat.len(),
            lat.len() as f64 / secs.max(1e-3),
            percentile(lat, 0.5) as f64 / 1000.0,
            percentile(lat, 0.99) as f64 / 1000.0,
            lat.last().copied().unwrap_or(0) as f64 / 1000.0
        );
    };
    let mut base_lat: Vec<u64> = baseline.transactions.iter().map(|(_, l)| *l).collect();
    base_lat.sort_unstable();
    eprintln!(
        "[pgbench] baseline: tps {:.0}, latency average {:.2} ms (stddev {:?})",
        baseline.tps, baseline.latency_avg_ms, baseline.latency_stddev_ms
    );
    describe("baseline, per transaction", &base_lat, BASELINE_SECONDS as f64);
    eprintln!(
        "[pgbench] whole run with the migration: tps {:.0}, latency average {:.2} ms (stddev {:?}), {} transactions, 0 failed",
        r.tps, r.latency_avg_ms, r.latency_stddev_ms, r.processed
    );
    describe("during the backfill and checksum", &window(backfill, cut_over), cut_over - backfill);
    // Transactions that ended while the cut-over ran or within a second after it: those that
    // queued behind the swap's lock.
    describe("ending during the cut-over or the second after it", &window(cut_over, cleanup + 1.0), cleanup + 1.0 - cut_over);
    for (t, tps, lat) in r.progress.iter().filter(|(t, _, _)| *t >= cut_over - 2.0 && *t <= cleanup + 3.0) {
        eprintln!("[pgbench]   progress at {:+.1} s from the cut-over start: {tps:.0} tps, lat {lat:.1} ms", t - cut_over);
    }

    // The history agrees with the tables; the ALTER is applied; nothing of shadowswap's is left.
    assert_consistent(&db, "after the migration").await;
    let facts = db
        .text_rows(
            "SELECT count(*) FILTER (WHERE note = 'x')::text, \
                    (SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'pgbench_accounts'::regclass AND attname = 'abalance') \
             FROM pgbench_accounts",
        )
        .await;
    assert_eq!(facts[0], vec![Some(ACCOUNTS.to_string()), Some("bigint".to_string())], "the ALTER is not applied everywhere");
    let pk =
        scalar(&db, "SELECT conname::text FROM pg_constraint WHERE conrelid = 'pgbench_accounts'::regclass AND contype = 'p'")
            .await;
    assert_eq!(pk, "pgbench_accounts_pkey");
    db.assert_clean(&["pgbench_accounts", "pgbench_branches", "pgbench_history", "pgbench_tellers"]).await;
}
