//! pgbench against the table being migrated: `pgbench -c 4 -j 2` with its default TPC-B-like
//! script runs for the whole migration of `pgbench_accounts` (before the backfill starts, until
//! after the swap). Afterwards: zero failed transactions, and the tables agree with the history
//! pgbench wrote (each account's balance is the sum of its history deltas; accounts, tellers,
//! branches and history sum to the same total; no account lost or duplicated).
//!
//! The figures (tps, latency overall, per second around the cut-over, and of the transactions
//! that overlapped the swap) are printed, with a baseline run of the same pgbench without a
//! migration, for the docs: `cargo nextest run -p shadowswap-integration --test postgres pgbench:: --no-capture`.
//!
//! Needs `pgbench` (Debian: `postgresql-client`/`postgresql` put it under
//! `/usr/lib/postgresql/<version>/bin`; otherwise it is looked up on PATH).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use shadowswap_engine::runner::Outcome;
use shadowswap_engine::{Phase, Runner};
use shadowswap_integration::postgres::pgbench::{
    find_pgbench, now_epoch, parse_progress, parse_summary, percentile, read_logs, Pgbench, ACCOUNTS_SQL, OFF_HISTORY_SQL,
    ORPHANS_SQL, TOTALS_SQL,
};
use shadowswap_integration::postgres::PgTestDb;
use shadowswap_integration::run::{chunked_config, summary_line};

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

/// pgbench ([`find_pgbench`]); the test cannot run without it.
fn pgbench_bin() -> PathBuf {
    find_pgbench().expect("pgbench not found under /usr/lib/postgresql/*/bin or on PATH; install postgresql-client")
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

fn parse(stdout: &str, stderr: &str) -> Report {
    let summary = parse_summary(stdout);
    Report {
        processed: summary.processed.unwrap_or(0),
        failed: summary.failed,
        tps: summary.tps.unwrap_or(0.0),
        latency_avg_ms: summary.latency_avg_ms.unwrap_or(0.0),
        latency_stddev_ms: summary.latency_stddev_ms,
        progress: stderr.lines().filter_map(parse_progress).filter_map(|p| Some((p.at, p.tps, p.latency_ms?))).collect(),
        transactions: Vec::new(),
    }
}

/// The transactions of the `-l` logs in `dir` that did not fail: (epoch seconds at the end,
/// latency µs).
fn transactions(dir: &Path) -> Vec<(f64, u64)> {
    read_logs(dir).unwrap().into_iter().filter_map(|(t, latency)| Some((t, latency?))).collect()
}

/// Start pgbench's TPC-B-like default script: 4 clients, 2 threads, `seconds` long, no vacuum,
/// progress every second with epoch timestamps, per-transaction log into `log_dir`.
async fn start_pgbench(pgbench: &Pgbench, seconds: u64, log_dir: &Path) -> tokio::process::Child {
    std::fs::create_dir_all(log_dir).unwrap();
    let prefix = format!("--log-prefix={}", log_dir.join("pgbench_log").display());
    let t = seconds.to_string();
    pgbench
        .command(&["-c", "4", "-j", "2", "-T", &t, "-n", "-P", "1", "--progress-timestamp", "-l", &prefix])
        .spawn()
        .expect("start pgbench")
}

async fn finish_pgbench(child: tokio::process::Child, log_dir: &Path, what: &str) -> Report {
    let out = child.wait_with_output().await.expect("pgbench");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{what}: pgbench exited with {}\n{stdout}\n{stderr}", out.status);
    let mut r = parse(&stdout, &stderr);
    r.transactions = transactions(log_dir);
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
    let sums = db.text_rows(TOTALS_SQL).await;
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
    let mismatches = scalar(db, OFF_HISTORY_SQL).await;
    assert_eq!(mismatches, "0", "{when}: accounts whose balance is not the sum of their history");
    let orphans = scalar(db, ORPHANS_SQL).await;
    assert_eq!(orphans, "0", "{when}: history rows whose account is gone");
    let accounts = db.text_rows(ACCOUNTS_SQL).await;
    let a = &accounts[0];
    let n = ACCOUNTS.to_string();
    assert_eq!(a, &vec![Some(n.clone()), Some(n.clone()), Some("1".to_string()), Some(n)], "{when}: accounts lost or duplicated");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pgbench_runs_clean_through_a_migration_of_pgbench_accounts() {
    let db = PgTestDb::new("pgbench").await;
    let pgbench = Pgbench::new(pgbench_bin(), &db.dsn).expect("pgbench's connection options from the DSN");
    let init = pgbench.command(&["-i", "-s", "2", "-q"]).output().await.expect("pgbench -i");
    assert!(init.status.success(), "pgbench -i: {}", String::from_utf8_lossy(&init.stderr));
    let log_root = std::env::temp_dir().join(format!("ssw_pgbench_{}", std::process::id()));

    // Baseline: the same load without a migration.
    let baseline_dir = log_root.join("baseline");
    let child = start_pgbench(&pgbench, BASELINE_SECONDS, &baseline_dir).await;
    let baseline = finish_pgbench(child, &baseline_dir, "baseline (no migration)").await;
    assert_consistent(&db, "after the baseline").await;

    // pgbench for the whole migration.
    let run_dir = log_root.join("migration");
    let pgbench_started = now_epoch();
    let child = start_pgbench(&pgbench, RUN_SECONDS, &run_dir).await;
    let bench = tokio::spawn(async move {
        let out = child.wait_with_output().await;
        (out, now_epoch())
    });
    tokio::time::sleep(Duration::from_secs(1)).await;

    let cfg = chunked_config(Some(CHUNK_ROWS));
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
    r.transactions = transactions(&run_dir);
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
        "[pgbench] migration {:.1} s (from {:.1} s into pgbench): {}; pgbench ran {:.1} s past the swap",
        migration.as_secs_f64(),
        started - pgbench_started,
        summary_line(&summary),
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
