//! Fault rehearsals (`--inject-fault`, docs/rehearsal.md) against the real MariaDB server, each
//! under concurrent writers and ending with an exact comparison of the table with the writers'
//! model: every kind of fault is survived.
//!
//! - `kill-connection@backfill:50%` — shadowswap's own sessions are killed mid-backfill (never
//!   the writers'); the run reconnects and completes.
//! - `blocker@cut-over` — a transaction holds the table's metadata lock at the cut-over; the
//!   controller waits and retries, and swaps once it ends; the report says so.
//! - `lock-storm@cut-over` — sessions hammer the table with short locking transactions; the
//!   swap waits its turn and succeeds.
//! - `crash@checksum` — the process aborts at the checksum without any cleanup; the same command
//!   run again resumes and completes (the CLI, as a DBA would run it).
//! - without `--inject-fault` nothing is injected (no warning, no fault line), and
//!   `--inject-fault` without `--execute` is a usage error.
//! - [`alone`]: `replica-pause@backfill` — the replica's SQL thread is stopped for a while; the
//!   throttle holds the copy meanwhile. Uses the shared replica: run alone
//!   (`.config/nextest.toml`).
//!
//! Database names: `ssw_ft_<test>`.

use std::sync::Arc;
use std::time::Duration;

use shadowswap_engine::fault::{FaultKind, FaultReport};
use shadowswap_engine::runner::Summary;
use shadowswap_engine::{MigrationConfig, Phase, Runner};
use shadowswap_integration::cli::{run_cli, stderr, stdout, Spawned};
use shadowswap_integration::model::{assert_writes_during_backfill, migrate_under_writers, UnderWriters};
use shadowswap_integration::mysql::workload::{self, Model, PhaseSource, TableSpec, Workload, WorkloadConfig};
use shadowswap_integration::mysql::TestDb;
use shadowswap_integration::run::chunked_config;
use shadowswap_mysql::MySql;
use tokio::sync::watch;

/// A rebuilding ALTER (a plain ADD COLUMN is instant on MariaDB 10.11).
const ALTER: &str = "ADD COLUMN extra INT NOT NULL DEFAULT 7, FORCE";

/// A seeded table `t` and its model.
async fn seeded(name: &str, rows: u64) -> (TestDb, TableSpec, Model) {
    let db = TestDb::new(name).await;
    let spec = TableSpec::single("t");
    spec.create(&db.pool).await.unwrap();
    spec.load(&db.pool, rows, |_| {}).await.unwrap();
    db.exec("ANALYZE TABLE t").await;
    let model = Model::read(&db.pool, &spec).await.unwrap();
    (db, spec, model)
}

/// Run the ALTER in-process with `faults` injected, under 4 writers; assert the swap, the exact
/// table, that the writers overlapped the backfill, and that the fault fired. Returns the
/// summary and the one fault's report.
async fn rehearse(
    label: &str,
    rows: u64,
    chunk_rows: u64,
    faults: &[&str],
    tweak: impl FnOnce(&mut MigrationConfig),
) -> (Summary, FaultReport) {
    rehearse_on(label, seeded(label, rows).await, chunk_rows, faults, vec![], tweak).await
}

/// [`rehearse`] on a seeded table, watching `replicas`.
async fn rehearse_on(
    label: &str,
    (db, spec, initial): (TestDb, TableSpec, Model),
    chunk_rows: u64,
    faults: &[&str],
    replicas: Vec<Arc<MySql>>,
    tweak: impl FnOnce(&mut MigrationConfig),
) -> (Summary, FaultReport) {
    let mut cfg = chunked_config(Some(chunk_rows));
    cfg.faults = faults.iter().map(|f| f.parse().unwrap()).collect();
    tweak(&mut cfg);
    let runner = Runner::new(db.dialect().await, cfg).with_replicas(replicas);
    let writers =
        Workload::start(&db.dsn, initial, WorkloadConfig::default(), PhaseSource::Runner(runner.progress())).await.unwrap();
    writers.wait_for_ops(200).await.unwrap();
    let UnderWriters { summary, model, report, .. } =
        migrate_under_writers(label, &runner, &db.table(&spec.name), ALTER, writers).await;
    let verification = workload::verify(&db.pool, &model).await.unwrap();
    assert!(verification.ok(), "[{label}] {verification}\nwriters: {report}");
    assert_writes_during_backfill(label, &report);
    let not_seven: u64 = db.scalar("SELECT COUNT(*) FROM t WHERE extra <> 7").await;
    assert_eq!(not_seven, 0);
    db.assert_clean(&["t"]).await;
    assert_eq!(summary.faults.len(), 1, "{:?}", summary.faults);
    let fault = summary.faults[0].clone();
    println!("[{label}] {fault}");
    assert!(fault.fired_at.is_some(), "[{label}] the fault did not fire: {fault}");
    assert!(!fault.injected.starts_with("could not inject"), "[{label}] {fault}");
    (summary, fault)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_connection_mid_backfill_is_survived() {
    let (summary, fault) = rehearse("ft_kill", 20_000, 200, &["kill-connection@backfill:50%"], |_| {}).await;
    assert_eq!(fault.phase, Some(Phase::Backfill));
    assert!(fault.injected.starts_with("terminated "), "shadowswap's own sessions were killed: {fault}");
    assert_eq!(summary.rows_checksummed.map(|_| true), fault.checksum_matched, "{fault}");
    assert!(fault.response.contains("reconnected") || fault.response.contains("retried on a new session"), "{fault}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_blocker_at_the_cut_over_is_waited_out() {
    let hold = Duration::from_secs(3);
    let (summary, fault) = rehearse("ft_blocker", 3_000, 500, &["blocker@cut-over:3s"], |c| {
        c.cut_over.lock_timeout = Duration::from_secs(1);
    })
    .await;
    assert_eq!(fault.phase, Some(Phase::CutOver));
    let fired = fault.fired_at.unwrap();
    // The swap came only after the blocker's transaction ended.
    assert!(summary.elapsed >= fired + hold, "swapped {:?} into the run, the blocker fired at {fired:?}", summary.elapsed);
    assert!(fault.response.starts_with("the cut-over waited"), "{fault}");
    let blocked = fault.writes_blocked_ms.unwrap();
    assert!(blocked <= 1_000 + 500, "writes blocked {blocked} ms, more than the lock timeout");
    println!("blocker: {} attempt(s), writes blocked {blocked} ms", summary.cut_over.attempts);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lock_storm_at_the_cut_over_is_survived() {
    let (summary, fault) = rehearse("ft_storm", 3_000, 500, &["lock-storm@cut-over:3s"], |_| {}).await;
    assert_eq!(fault.phase, Some(Phase::CutOver));
    assert!(fault.injected.starts_with("4 sessions ran short locking transactions"), "{fault}");
    let ran = storm_transactions(&fault);
    assert!(ran >= 1, "the storm ran no transaction: {fault}");
    println!(
        "lock storm: {ran} transactions; {} attempt(s), writes blocked {} ms",
        summary.cut_over.attempts,
        summary.cut_over.swap_time.as_millis()
    );
}

/// How many transactions the storm ran, from its report ("N short locking transactions ran in …").
fn storm_transactions(fault: &FaultReport) -> u64 {
    let part = fault.response.split("; ").find(|p| p.contains(" short locking transactions ran in "));
    part.and_then(|p| p.split(' ').next()).and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("no storm count: {fault}"))
}

/// The CLI's arguments for `db` (the ALTER executed, small fixed chunks).
fn cli_args(db: &TestDb, extra: &[&str]) -> Vec<String> {
    let mut a: Vec<String> = ["alter", "--dsn", &db.dsn, "--table", "t", "--alter", ALTER, "--execute", "--chunk-size", "200"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    a.extend(extra.iter().map(|s| s.to_string()));
    a
}

/// Run the CLI with `--inject-fault <fault>` (a crash) under writers: it aborts; run the very
/// same command again: it resumes from the phase `stopped_in` and completes, exactly. Returns
/// the second run's summary.
async fn crash_then_the_same_command(label: &str, rows: u64, fault: &str, stopped_in: &str) -> String {
    let (db, _spec, initial) = seeded(label, rows).await;
    let (running, rx) = watch::channel(true);
    let writers = Workload::start(&db.dsn, initial, WorkloadConfig::default(), PhaseSource::Flag(rx)).await.unwrap();
    writers.wait_for_ops(200).await.unwrap();
    let args = cli_args(&db, &["--inject-fault", fault]);

    let (status, out, err) = Spawned::watched(&format!("{label} crash"), &args).finish(Duration::from_secs(120)).await;
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(6), "aborted (SIGABRT) as a crash would: {status}\n{err}");
    assert!(err.contains("FAULT INJECTION"), "the loud warning: {err}");
    assert!(err.contains("injected crash: aborting now"), "{err}");
    assert!(out.is_empty(), "no summary after a crash: {out}");
    assert!(db.count("_t_new").await.is_some(), "the crash left the shadow for a resume");
    // The capture keeps the shadow in sync while no shadowswap runs.
    let ops = writers.ops();
    writers.wait_for_ops(ops + 200).await.unwrap();

    let (status, out, err) = Spawned::watched(&format!("{label} again"), &args).finish(Duration::from_secs(180)).await;
    running.send_replace(false);
    let (model, report) = writers.stop().await.unwrap();
    assert_eq!(status.code(), Some(0), "{err}");
    assert!(out.starts_with("swapped "), "{out}");
    assert!(out.contains(&format!("fault {fault}: fired in the run this one resumed")), "the summary reports the fault: {out}");
    assert!(out.contains(&format!("resumed a run stopped in {stopped_in}")), "{out}");
    assert!(!err.contains("injected crash"), "not injected again on the resumed run: {err}");
    let verification = workload::verify(&db.pool, &model).await.unwrap();
    assert!(verification.ok(), "[{label}] {verification}\nwriters: {report}");
    db.assert_clean(&["t"]).await;
    println!("[{label}] {fault} then the same command: {}", out.trim());
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_crash_at_the_checksum_is_resumed_by_the_same_command() {
    crash_then_the_same_command("ft_crash", 10_000, "crash@checksum", "checksum").await;
}

/// The rehearsal DBAs ask for most: a crash at half the backfill. The second run copies only
/// what remained.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_crash_at_half_the_backfill_is_resumed_and_copies_only_the_rest() {
    const ROWS: u64 = 20_000;
    let out = crash_then_the_same_command("ft_crash_half", ROWS, "crash@backfill:50%", "backfill").await;
    let number_after = |marker: &str| -> u64 {
        let tail = out.split(marker).nth(1).unwrap_or_else(|| panic!("no {marker:?} in {out}"));
        tail.split(' ').next().and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("no number after {marker:?} in {out}"))
    };
    let before = number_after("that had copied ");
    let now = number_after("s: ");
    assert!(before >= ROWS * 4 / 10, "the crashed run had copied {before} rows, not about half of {ROWS}");
    assert!(now <= ROWS - before + ROWS / 10, "the second run copied {now} rows after {before}: more than what remained");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_inject_fault_nothing_is_injected() {
    let (db, ..) = seeded("ft_none", 2_000).await;
    let out = run_cli(&cli_args(&db, &[]).iter().map(String::as_str).collect::<Vec<_>>(), &[]).await;
    let (err, text) = (stderr(&out), stdout(&out));
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(!err.contains("FAULT INJECTION") && !err.contains("injecting fault"), "{err}");
    assert_eq!(text.lines().count(), 1, "one summary line, no fault lines: {text}");
    assert!(!text.contains("fault"), "{text}");

    // Only with --execute: a dry run injects nothing and says so.
    let dsn = db.dsn.clone();
    let dry =
        run_cli(&["alter", "--dsn", &dsn, "--table", "t", "--alter", ALTER, "--inject-fault", "crash@preflight"], &[]).await;
    assert_eq!(dry.status.code(), Some(2), "{}", stderr(&dry));
    assert!(stderr(&dry).contains("--inject-fault needs --execute"), "{}", stderr(&dry));
    let bad =
        run_cli(&["alter", "--dsn", &dsn, "--table", "t", "--alter", ALTER, "--execute", "--inject-fault", "crash@copy"], &[])
            .await;
    assert_eq!(bad.status.code(), Some(2), "{}", stderr(&bad));
    assert!(stderr(&bad).contains("unknown phase \"copy\""), "{}", stderr(&bad));
}

/// The JSON summary reports each fault (`--log-format json`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_json_summary_reports_the_fault() {
    let (db, ..) = seeded("ft_json", 2_000).await;
    let mut args = cli_args(&db, &["--inject-fault", "blocker@cut-over:2s", "--cut-over-lock-timeout", "1s"]);
    args.push("--log-format".into());
    args.push("json".into());
    let out = run_cli(&args.iter().map(String::as_str).collect::<Vec<_>>(), &[]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    let f = &v["faults"][0];
    assert_eq!(f["fault"], "blocker@cut-over:2s");
    assert_eq!(f["fired"], true);
    assert_eq!(f["phase"], "cut-over");
    assert!(f["at_s"].as_f64().unwrap() > 0.0);
    assert!(f["writes_blocked_ms"].as_u64().is_some(), "{f}");
    assert!(f["response"].as_str().unwrap().contains("waited"), "{f}");
    assert_eq!(v["swapped"], true);
}

/// Tests that use the shared replica: run alone (`.config/nextest.toml`).
mod alone {
    use shadowswap_integration::mysql::replica::Replica;

    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn replica_pause_throttles_the_copy_then_completes() {
        let replica = Replica::connect().await;
        let lease_db = TestDb::new("ft_replica_lease").await;
        let _lease = replica.lease(&lease_db).await;
        let name = "ft_replica";
        let table = seeded(name, 20_000).await;
        // The database and table are on the replica before the run reads its heartbeat there.
        replica.catch_up(&table.0, Duration::from_secs(120)).await;
        let replica_dialect = Arc::new(MySql::connect(&replica.dsn_for(&table.0), None).await.unwrap());
        let faults = ["replica-pause@backfill:4s"];
        let (summary, fault) = rehearse_on(name, table, 50, &faults, vec![replica_dialect], |c| {
            // Lag seen within a few heartbeats of the pause, while the copy (400 small chunks)
            // still runs: the assertion below does not depend on how fast the copy is.
            c.throttle.max_lag = Duration::from_millis(300);
            c.throttle.heartbeat_interval = Duration::from_millis(100);
            c.throttle.check_interval = Duration::from_millis(50);
        })
        .await;
        assert_eq!(fault.spec.kind, FaultKind::ReplicaPause);
        assert_eq!(fault.phase, Some(Phase::Backfill));
        let throttled = fault.throttled.expect("measured");
        assert!(
            throttled >= Duration::from_secs(1),
            "the copy was throttled only {throttled:?} while the replica was paused: {fault}"
        );
        assert!(fault.response.starts_with("throttled"), "{fault}");
        replica.ensure_applying().await;
        assert_eq!(replica.status_field("Slave_SQL_Running").await.as_deref(), Some("Yes"), "resumed after the fault");
        println!("replica pause: throttled {throttled:?}; run {:.1} s", summary.elapsed.as_secs_f64());
    }
}
