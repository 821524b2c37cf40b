//! Fault rehearsals (`--inject-fault`, docs/rehearsal.md) against the real PostgreSQL server,
//! each under concurrent writers and ending with an exact comparison of the table with the
//! writers' model: every kind of fault is survived.
//!
//! - `kill-connection@backfill:50%` — shadowswap's own pooled sessions are terminated
//!   (`pg_terminate_backend`) mid-backfill, never the writers'; the run reconnects and completes.
//! - `blocker@cut-over` — `LOCK TABLE … IN ACCESS SHARE MODE` held in an open transaction at the
//!   cut-over; the controller waits and retries, and swaps once it ends.
//! - `lock-storm@cut-over` — sessions hammer the table with short locking transactions; the swap
//!   waits its turn and succeeds.
//! - `crash@backfill:50%` — the process aborts mid-backfill without any cleanup; the same command
//!   run again resumes and completes (the CLI, as a DBA would run it).
//! - without `--inject-fault` nothing is injected.
//! - [`alone`]: `replica-pause@backfill` — the standby's replay is paused
//!   (`pg_wal_replay_pause()`) for a while; the throttle holds the copy meanwhile. Uses the shared
//!   standby: run alone (`.config/nextest.toml`).
//!
//! Database names: `ssw_ft_<test>` (`PgTestDb` prefixes `ssw_`).

use std::sync::Arc;
use std::time::Duration;

use shadowswap_engine::fault::{FaultKind, FaultReport};
use shadowswap_engine::runner::Summary;
use shadowswap_engine::{MigrationConfig, Phase, Runner};
use shadowswap_integration::cli::{run_cli, stderr, stdout, Spawned};
use shadowswap_integration::model::{assert_writes_during_backfill, migrate_under_writers, UnderWriters};
use shadowswap_integration::postgres::workload::{self, Model, PgTable, Workload, WorkloadConfig};
use shadowswap_integration::postgres::PgTestDb;
use shadowswap_integration::run::chunked_config;
use shadowswap_postgres::Postgres;

/// A rewriting ALTER.
const ALTER: &str = "ADD COLUMN extra int NOT NULL DEFAULT 7, ALTER COLUMN v TYPE bigint";

/// A seeded table `t` (analyzed, so the row estimate a percentage fault uses is right) and its
/// model.
async fn seeded(name: &str, rows: u64) -> (PgTestDb, PgTable, Model) {
    let db = PgTestDb::new(name).await;
    let table = PgTable::single("t");
    table.create(&db.client).await.unwrap();
    table.load(&db.client, rows).await.unwrap();
    db.exec("ANALYZE t").await;
    let model = Model::read(&db.client, &table).await.unwrap();
    (db, table, model)
}

/// Run the ALTER in-process with `faults` injected under 4 writers, watching `replicas`; assert
/// the swap, the exact table, that the writers overlapped the backfill, and that the one fault
/// fired. Returns the summary and the fault's report.
async fn rehearse_on(
    label: &str,
    (db, table, initial): (PgTestDb, PgTable, Model),
    chunk_rows: u64,
    faults: &[&str],
    replicas: Vec<Arc<Postgres>>,
    tweak: impl FnOnce(&mut MigrationConfig),
) -> (Summary, FaultReport) {
    let mut cfg = chunked_config(Some(chunk_rows));
    cfg.faults = faults.iter().map(|f| f.parse().unwrap()).collect();
    tweak(&mut cfg);
    let runner = Runner::new(db.dialect().await, cfg).with_replicas(replicas);
    let writers = Workload::start(&db.dsn, initial, WorkloadConfig::default(), Some(runner.progress())).await.unwrap();
    writers.wait_for_ops(200).await.unwrap();
    let UnderWriters { summary, model, report, .. } =
        migrate_under_writers(label, &runner, &db.table(&table.name), ALTER, writers).await;
    let verification = workload::verify(&db.client, &model).await.unwrap();
    assert!(verification.ok(), "[{label}] {verification}\nwriters: {report}");
    assert_writes_during_backfill(label, &report);
    assert_eq!(db.count("SELECT count(*) FROM t WHERE extra <> 7").await, 0);
    db.assert_clean(&["t"]).await;
    assert_eq!(summary.faults.len(), 1, "{:?}", summary.faults);
    let fault = summary.faults[0].clone();
    println!("[{label}] {fault}");
    assert!(fault.fired_at.is_some(), "[{label}] the fault did not fire: {fault}");
    assert!(!fault.injected.starts_with("could not inject"), "[{label}] {fault}");
    (summary, fault)
}

async fn rehearse(
    label: &str,
    rows: u64,
    chunk_rows: u64,
    faults: &[&str],
    tweak: impl FnOnce(&mut MigrationConfig),
) -> (Summary, FaultReport) {
    rehearse_on(label, seeded(label, rows).await, chunk_rows, faults, vec![], tweak).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_connection_mid_backfill_is_survived() {
    let (summary, fault) = rehearse("ft_pg_kill", 20_000, 200, &["kill-connection@backfill:50%"], |_| {}).await;
    assert_eq!(fault.phase, Some(Phase::Backfill));
    assert!(fault.injected.starts_with("terminated "), "shadowswap's own sessions were terminated: {fault}");
    assert!(fault.response.contains("reconnected") || fault.response.contains("retried on a new session"), "{fault}");
    println!("kill-connection: {} reconnect(s)", summary.reconnects);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_blocker_at_the_cut_over_is_waited_out() {
    let hold = Duration::from_secs(3);
    let (summary, fault) = rehearse("ft_pg_blocker", 3_000, 500, &["blocker@cut-over:3s"], |c| {
        c.cut_over.lock_timeout = Duration::from_secs(1);
    })
    .await;
    assert_eq!(fault.phase, Some(Phase::CutOver));
    let fired = fault.fired_at.unwrap();
    assert!(summary.elapsed >= fired + hold, "swapped {:?} into the run, the blocker fired at {fired:?}", summary.elapsed);
    assert!(fault.response.starts_with("the cut-over waited"), "{fault}");
    let blocked = fault.writes_blocked_ms.unwrap();
    assert!(blocked <= 1_000 + 500, "writes blocked {blocked} ms, more than the lock timeout");
    println!("blocker: {} attempt(s), writes blocked {blocked} ms", summary.cut_over.attempts);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lock_storm_at_the_cut_over_is_survived() {
    let (summary, fault) = rehearse("ft_pg_storm", 3_000, 500, &["lock-storm@cut-over:3s"], |_| {}).await;
    assert_eq!(fault.phase, Some(Phase::CutOver));
    assert!(fault.injected.starts_with("4 sessions ran short locking transactions"), "{fault}");
    let part = fault.response.split("; ").find(|p| p.contains(" short locking transactions ran in "));
    let ran: u64 = part.and_then(|p| p.split(' ').next()).and_then(|n| n.parse().ok()).expect("storm count");
    assert!(ran >= 1, "the storm ran no transaction: {fault}");
    println!(
        "lock storm: {ran} transactions; {} attempt(s), writes blocked {} ms",
        summary.cut_over.attempts,
        summary.cut_over.swap_time.as_millis()
    );
}

fn cli_args(db: &PgTestDb, extra: &[&str]) -> Vec<String> {
    let mut a: Vec<String> = ["alter", "--dsn", &db.dsn, "--table", "t", "--alter", ALTER, "--execute", "--chunk-size", "200"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    a.extend(extra.iter().map(|s| s.to_string()));
    a
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_crash_mid_backfill_is_resumed_by_the_same_command() {
    let (db, _table, initial) = seeded("ft_pg_crash", 20_000).await;
    let writers = Workload::start(&db.dsn, initial, WorkloadConfig::default(), None).await.unwrap();
    writers.wait_for_ops(200).await.unwrap();
    let args = cli_args(&db, &["--inject-fault", "crash@backfill:50%"]);

    let (status, out, err) = Spawned::watched("crash", &args).finish(Duration::from_secs(120)).await;
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(6), "aborted (SIGABRT) as a crash would: {status}\n{err}");
    assert!(err.contains("injected crash: aborting now"), "{err}");
    assert!(out.is_empty(), "no summary after a crash: {out}");
    let copied = db.count("SELECT count(*) FROM _t_new").await;
    assert!(copied > 0 && copied < 20_000, "crashed mid-backfill: {copied} rows in the shadow");
    let ops = writers.ops();
    writers.wait_for_ops(ops + 200).await.unwrap();

    let (status, out, err) = Spawned::watched("resume", &args).finish(Duration::from_secs(180)).await;
    let (model, report) = writers.stop().await.unwrap();
    assert_eq!(status.code(), Some(0), "{err}");
    assert!(out.starts_with("swapped "), "{out}");
    assert!(out.contains("fault crash@backfill:50%: fired in the run this one resumed"), "the summary reports the fault: {out}");
    assert!(!err.contains("injected crash"), "not injected again on the resumed run: {err}");
    let verification = workload::verify(&db.client, &model).await.unwrap();
    assert!(verification.ok(), "{verification}\nwriters: {report}");
    db.assert_clean(&["t"]).await;
    println!("crash@backfill:50% then the same command: {}", out.trim());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_inject_fault_nothing_is_injected() {
    let (db, ..) = seeded("ft_pg_none", 2_000).await;
    let out = run_cli(&cli_args(&db, &[]).iter().map(String::as_str).collect::<Vec<_>>(), &[]).await;
    let (err, text) = (stderr(&out), stdout(&out));
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(!err.contains("FAULT INJECTION") && !err.contains("injecting fault"), "{err}");
    assert_eq!(text.lines().count(), 1, "one summary line, no fault lines: {text}");
    assert!(!text.contains("fault"), "{text}");
}

/// Tests that use the shared standby: run alone (`.config/nextest.toml`).
mod alone {
    use shadowswap_integration::postgres::standby::{self, wait_caught_up, StandbyLease};

    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn replica_pause_throttles_the_copy_then_completes() {
        const ROWS: u64 = 20_000;
        let _lease = StandbyLease::take(true).await;
        let name = "ft_pg_replica";
        let table = seeded(name, ROWS).await;
        let replica = standby::client_for(&table.0).await;
        replica.batch_execute("SELECT pg_wal_replay_resume()").await.unwrap();
        wait_caught_up(&table.0.client, &replica, Duration::from_secs(60)).await;
        // The standby has the rows themselves (not only the replay position).
        let t0 = std::time::Instant::now();
        while replica.query_one("SELECT count(*) FROM t", &[]).await.map(|r| r.get::<_, i64>(0) as u64).ok() != Some(ROWS) {
            assert!(t0.elapsed() < Duration::from_secs(60), "the standby does not have t's rows");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let standby_dialect = Arc::new(Postgres::connect(&standby::dsn_for(&table.0), None).await.unwrap());
        let faults = ["replica-pause@backfill:4s"];
        let (summary, fault) = rehearse_on(name, table, 50, &faults, vec![standby_dialect], |c| {
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
            "the copy was throttled only {throttled:?} while replay was paused: {fault}"
        );
        assert!(fault.response.starts_with("throttled"), "{fault}");
        let paused: bool = replica.query_one("SELECT pg_is_wal_replay_paused()", &[]).await.unwrap().get(0);
        assert!(!paused, "replay resumed after the fault");
        println!("replica pause: throttled {throttled:?}; run {:.1} s", summary.elapsed.as_secs_f64());
    }
}
