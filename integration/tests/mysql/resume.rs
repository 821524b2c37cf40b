//! Checkpoint, resume and reconnect on MariaDB, with the real binary and concurrent writers
//! (issue 9): a run killed with SIGKILL in each phase and run again ends with the table the
//! writers' model and a native ALTER say it must be, having copied only what remained; a
//! different ALTER, a TRUNCATE while no shadowswap ran, and `cleanup`; copy sessions killed on the
//! server, and every connection cut at once (a restart as the client sees it), survived by
//! reconnecting. Plus the dialect's own pieces against the server: the checkpoint commits and
//! rolls back with its chunk, and a killed session comes out as a connection error.
//!
//! Harness: `shadowswap_integration::resume` (kill at an event, run the same command again).

use std::os::unix::process::ExitStatusExt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use shadowswap_engine::checkpoint::{Checkpoint, ChunkMark};
use shadowswap_engine::{Dialect, Runner};
use shadowswap_integration::cli::run_cli;
use shadowswap_integration::mysql::workload::{self, Model, PhaseSource, TableSpec, Workload, WorkloadConfig};
use shadowswap_integration::mysql::TestDb;
use shadowswap_integration::proxy::{address, Link, Proxy};
use shadowswap_integration::resume::{phase_line, resuming_line, ResumableRun, Summary, WITHIN};
use shadowswap_integration::run::chunked_config;
use shadowswap_mysql::{MyKey, MySql};

/// The ALTER of these tests: a new column (every row must get 7) and a real rebuild.
const ALTER: &str = "ADD COLUMN extra INT NOT NULL DEFAULT 7, FORCE";

/// A test's table `t` (sysbench layout) with `rows` rows, its native-ALTER twin `o` (the
/// definition oracle, empty), and writers warmed up on `t`.
async fn setup(name: &str, rows: u64) -> (TestDb, TableSpec, Workload) {
    let db = TestDb::new(name).await;
    let spec = TableSpec::single("t");
    spec.create(&db.pool).await.unwrap();
    spec.load(&db.pool, rows, |_| {}).await.unwrap();
    db.exec(&format!("CREATE TABLE o LIKE t; ALTER TABLE o {ALTER}")).await;
    let initial = Model::read(&db.pool, &spec).await.unwrap();
    let writers = start_writers(&db, initial).await;
    (db, spec, writers)
}

async fn start_writers(db: &TestDb, model: Model) -> Workload {
    let cfg = WorkloadConfig { writers: 3, ..WorkloadConfig::default() };
    let writers = Workload::start(&db.dsn, model, cfg, PhaseSource::None).await.unwrap();
    writers.wait_for_ops(100).await.unwrap();
    writers
}

/// Stop the writers and check the end state: `t` equals the writers' model row for row, every
/// row has the new column's default, its definition is the native ALTER's (`o`), and nothing of
/// shadowswap's is left.
async fn assert_exact(label: &str, db: &TestDb, writers: Workload) {
    let (model, report) = writers.stop().await.unwrap_or_else(|e| panic!("[{label}] {e:#}"));
    eprintln!("[{label}] {report}");
    let verification = workload::verify(&db.pool, &model).await.unwrap();
    assert!(verification.ok(), "[{label}] {verification}\nwriters: {report}");
    let rows: u64 = db.scalar("SELECT COUNT(*) FROM t").await;
    assert_eq!(rows, model.len() as u64, "[{label}] rows");
    let not_seven: u64 = db.scalar("SELECT COUNT(*) FROM t WHERE extra <> 7").await;
    assert_eq!(not_seven, 0, "[{label}] rows whose new column is not its default");
    // The native twin is empty: its AUTO_INCREMENT counter is not comparable.
    let counterless = |d: String| d.split(' ').filter(|w| !w.starts_with("AUTO_INCREMENT=")).collect::<Vec<_>>().join(" ");
    assert_eq!(
        counterless(db.definition("t").await),
        counterless(db.definition("o").await),
        "[{label}] definition against the native ALTER"
    );
    db.assert_clean(&["o", "t"]).await;
}

/// `rows_copied` of the checkpoint now (0 when there is none yet).
async fn checkpoint_rows(db: &TestDb) -> u64 {
    let mut c = db.pool.get_conn().await.unwrap();
    c.query_first::<u64, _>("SELECT rows_copied FROM _t_ssw_ckpt").await.ok().flatten().unwrap_or(0)
}

/// kill -9 in the middle of the backfill under writers, the same command again: it says where it
/// resumes, copies only what remained, and the table is exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killed_in_backfill_resumes_and_copies_only_the_rest() {
    const ROWS: u64 = 20_000;
    let (db, _spec, writers) = setup("myresume_backfill", ROWS).await;
    let mut run = ResumableRun::new("backfill", &db.dsn, "t", ALTER, &["--chunk-size", "50"]);
    run.kill_when("the backfill did not reach 4000 rows", || async { checkpoint_rows(&db).await >= 4_000 }).await;
    let ops_at_kill = writers.ops();
    let copied_before = checkpoint_rows(&db).await;
    assert!((4_000..ROWS).contains(&copied_before), "{copied_before}");
    // The capture keeps the shadow in sync while no shadowswap runs.
    writers.wait_for_ops(ops_at_kill + 300).await.unwrap();

    let (summary, err) = run.complete().await;
    let line = resuming_line(&err).unwrap_or_else(|| panic!("no 'resuming at key' line:\n{err}"));
    assert!(line.contains(&format!("{copied_before} of")), "{line}");
    assert_eq!(summary.resumed_from.as_deref(), Some("backfill"), "{summary:?}");
    assert_eq!(summary.rows_copied_before_resume, copied_before, "{summary:?}");
    assert!(summary.rows_copied < ROWS - 3_000, "the second run copied only what remained: {summary:?}");
    let total = summary.rows_copied + summary.rows_copied_before_resume;
    assert!(total.abs_diff(ROWS) < ROWS / 10, "rows copied by both runs ≈ the table: {summary:?}");
    assert!(writers.ops() > ops_at_kill + 300, "writers ran during the resumed run too");
    assert_exact("backfill", &db, writers).await;
}

/// kill -9 in every phase the log shows (the cleanup by `crash@cleanup`, which aborts the same
/// way), under writers; the same command again finishes with the exact table and nothing left
/// behind (before the capture is complete it starts over; after the swap it only cleans up).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killed_in_each_phase_then_run_again() {
    // `build indexes`: the sysbench table's `k_1` is built on the shadow after the backfill.
    for phase in ["create shadow", "install capture", "backfill", "build indexes", "checksum", "cut-over", "cleanup"] {
        let label = format!("phase {phase}");
        let (db, _spec, writers) = setup("myresume_phases", 3_000).await;
        let mut extra = vec!["--chunk-size", "100"];
        if phase == "cleanup" {
            // The cleanup after the swap is over in a few milliseconds, before a kill sent on
            // its log line lands: the rehearsal's crash stops the run there at once instead.
            extra.extend(["--inject-fault", "crash@cleanup"]);
        }
        let mut run = ResumableRun::new(&label, &db.dsn, "t", ALTER, &extra);
        if phase == "cleanup" {
            let (status, _, err) = run.run_to_end().await;
            assert_eq!(status.signal(), Some(6), "[{label}] aborted at the cleanup's entry: {status}\n{err}");
            assert!(db.tables().await.contains(&"_t_old".to_string()), "[{label}] crashed after the swap, before any drop");
        } else if phase == "backfill" {
            // The phase's log line comes before the backfill records itself in the checkpoint
            // (with its high watermark): wait for copied chunks instead.
            run.kill_when("no chunk copied", || async { checkpoint_rows(&db).await >= 500 }).await;
        } else {
            let [a, b] = phase_line(phase);
            run.kill_at_line(&[&a, &b]).await;
        }
        let ops_at_kill = writers.ops();
        writers.wait_for_ops(ops_at_kill + 100).await.unwrap();
        let (summary, err) = run.complete().await;
        eprintln!("[{label}] {summary:?}");
        let finished_the_swap = err.contains("the unfinished run had swapped the tables; finishing its cleanup");
        match phase {
            "backfill" | "build indexes" | "checksum" => {
                assert!(resuming_line(&err).is_some(), "[{label}] no 'resuming at key' line:\n{err}")
            }
            // The swap is atomic: killed in the cut-over, the rerun finds it done or not done.
            "cut-over" => assert!(resuming_line(&err).is_some() || finished_the_swap, "[{label}]:\n{err}"),
            "cleanup" => assert!(finished_the_swap, "[{label}]:\n{err}"),
            _ => {}
        }
        if matches!(phase, "create shadow" | "install capture") {
            // Killed before its capture was complete: the unfinished run is removed and redone,
            // unless the kill came late enough that the log line was its last word.
            let started_over = err.contains("removing what it created and starting over");
            assert!(started_over || summary.resumed_from.is_some(), "[{label}] neither started over nor resumed:\n{err}");
        } else {
            assert!(summary.resumed_from.is_some(), "[{label}] {summary:?}");
        }
        assert_exact(&label, &db, writers).await;
    }
}

/// After a kill: the dry run shows the pending checkpoint; a different ALTER is refused naming
/// `shadowswap cleanup` and changes nothing; `cleanup` removes everything, checkpoint included;
/// then the different ALTER runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_different_alter_is_refused_until_cleanup() {
    let db = TestDb::new("myresume_other_alter").await;
    db.seed_t(20_000).await;
    let mut run = ResumableRun::new("other", &db.dsn, "t", ALTER, &["--chunk-size", "50"]);
    run.kill_when("the backfill did not reach 2000 rows", || async { checkpoint_rows(&db).await >= 2_000 }).await;
    let mut left = db.tables().await;
    left.sort();
    assert_eq!(left, ["_t_new", "_t_ssw_ckpt", "t"]);

    let dry = run_cli(&["alter", "--dsn", &db.dsn, "--table", "t", "--alter", ALTER], &[]).await;
    let plan = String::from_utf8_lossy(&dry.stdout).into_owned();
    assert!(dry.status.success(), "{plan}");
    assert!(plan.contains("pending:") && plan.contains("--execute resumes it"), "{plan}");
    assert!(plan.contains("UPDATE `ssw_myresume_other_alter`.`_t_ssw_ckpt` SET low_watermark = ?"), "{plan}");
    assert!(plan.contains("CREATE TABLE IF NOT EXISTS `ssw_myresume_other_alter`.`_t_ssw_ckpt`"), "{plan}");

    let before = db.snapshot(&["t", "_t_new", "_t_ssw_ckpt"]).await;
    let other = ResumableRun::new("other2", &db.dsn, "t", "ADD COLUMN other INT", &[]).run_to_end().await;
    assert!(!other.0.success());
    let line = other.2.lines().last().unwrap_or_default().to_string();
    assert!(line.contains("different ALTER") && line.contains("shadowswap cleanup"), "{line}");
    assert_eq!(db.snapshot(&["t", "_t_new", "_t_ssw_ckpt"]).await, before, "the refused run changed something");

    let cleaned = run_cli(&["cleanup", "--dsn", &db.dsn, "--table", "t"], &[]).await;
    let out = String::from_utf8_lossy(&cleaned.stdout).into_owned();
    assert!(cleaned.status.success(), "{out}{}", String::from_utf8_lossy(&cleaned.stderr));
    assert!(out.contains("dropped checkpoint table"), "{out}");
    db.assert_clean(&["t"]).await;

    let (summary, _) = ResumableRun::new("other3", &db.dsn, "t", "ADD COLUMN other INT", &[]).complete().await;
    assert_eq!((summary.resumed_from, summary.rows_copied), (None, 20_000));
    db.assert_clean(&["t"]).await;
}

/// A TRUNCATE while no shadowswap runs fires no trigger: the rerun must refuse (naming the
/// TRUNCATE and `shadowswap cleanup`), swap nothing and keep the shadow for inspection.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_truncate_while_dead_is_refused() {
    let db = TestDb::new("myresume_truncate").await;
    db.seed_t(20_000).await;
    let mut run = ResumableRun::new("truncate", &db.dsn, "t", ALTER, &["--chunk-size", "50"]);
    run.kill_when("the backfill did not reach 2000 rows", || async { checkpoint_rows(&db).await >= 2_000 }).await;
    db.exec("TRUNCATE TABLE t; INSERT INTO t VALUES (1, 'new', 1, 'x')").await;
    let shadow_rows = db.count("_t_new").await.unwrap();
    let (status, _, err) = run.run_to_end().await;
    assert!(!status.success(), "{err}");
    let line = err.lines().last().unwrap_or_default();
    assert!(line.contains("truncated or rebuilt") && line.contains("shadowswap cleanup"), "{line}");
    assert_eq!(db.seeded("t").await, vec![(1, "new".to_string(), 1, "x".to_string())], "t untouched");
    assert_eq!(db.count("_t_new").await, Some(shadow_rows), "the shadow is kept as it was");
    assert!(db.create_table("t").await.contains("`pad`") && !db.create_table("t").await.contains("extra"));
}

/// The copy session killed on the server (`KILL CONNECTION`), twice, mid-backfill under writers:
/// the run reconnects, continues from its checkpoint, and the table is exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killed_copy_sessions_are_survived() {
    let (db, _spec, writers) = setup("myresume_kill_session", 20_000).await;
    let mut run = ResumableRun::new("kill-session", &db.dsn, "t", ALTER, &["--chunk-size", "50"]);
    let mut cli = run.start();
    let mut admin = db.pool.get_conn().await.unwrap();
    let copying = "SELECT ID FROM information_schema.PROCESSLIST WHERE DB = DATABASE() AND ID <> CONNECTION_ID() \
                   AND INFO LIKE '%INSERT INTO%_t_new%SELECT%'";
    for round in 1..=2 {
        let mark = cli.mark();
        let deadline = Instant::now() + WITHIN;
        // Kill the session caught running the copy statement, until the run says it reconnected
        // (a kill that lands after the statement finished hits an idle pooled session, which the
        // pool replaces without anyone noticing).
        while cli.line_from(mark, RECONNECTED).is_none() {
            assert!(cli.running(), "[kill-session] exited in round {round}:\n{}", cli.stderr_text());
            assert!(Instant::now() < deadline, "[kill-session] no reconnect in round {round}:\n{}", cli.stderr_text());
            if let Some(id) = admin.query_first::<u64, _>(copying).await.unwrap() {
                // Error 1094 (unknown thread) when the session ended meanwhile.
                let _ = admin.query_drop(format!("KILL CONNECTION {id}")).await;
                tokio::time::sleep(Duration::from_millis(100)).await;
            } else {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }
    }
    let (status, out, err) = cli.finish(WITHIN).await;
    assert!(status.success(), "{err}");
    let summary = Summary::parse(&out);
    assert!(summary.reconnects >= 2, "{summary:?}");
    assert!(err.contains("lost the connection to the server; reconnecting"), "{err}");
    assert_exact("kill-session", &db, writers).await;
}

/// Every connection of the run cut at once, and new ones refused for a few seconds (a server
/// restart as the client sees it, made by a proxy in front of the shared server): the run waits,
/// reconnects, takes its lock again, and finishes with the exact table.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_connection_cut_and_refused_for_a_while_is_survived() {
    let (db, _spec, writers) = setup("myresume_restart", 20_000).await;
    let proxy = Proxy::start(address(&db.dsn)).await;
    let mut run = ResumableRun::new("restart", &proxy.route(&db.dsn), "t", ALTER, &["--chunk-size", "50"]);
    let mut cli = run.start();
    cli.wait_until(WITHIN, "the backfill did not reach 3000 rows", || async { checkpoint_rows(&db).await >= 3_000 }).await;
    let mark = cli.mark();
    proxy.set(Link::Reset);
    cli.wait_line_from(mark, &["lost the connection to the server; reconnecting"], WITHIN).await;
    // The outage itself: how long the server is away, not a wait for the machine.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(cli.line_from(mark, RECONNECTED).is_none(), "reconnected while every connection was refused");
    proxy.set(Link::Forward);
    cli.wait_line_from(mark, &[RECONNECTED], WITHIN).await;
    let (status, out, err) = cli.finish(WITHIN).await;
    assert!(status.success(), "{err}");
    let summary = Summary::parse(&out);
    assert!(summary.reconnects >= 1, "{summary:?}");
    assert_exact("restart", &db, writers).await;
}

const RECONNECTED: &str = "reconnected; continuing from the checkpoint";

/// A plan, the checkpoint row, the shadow and the capture for `t` of `db`, as a run makes them
/// before its backfill.
async fn prepared(db: &TestDb, spec: &str) -> (Arc<MySql>, shadowswap_engine::Plan) {
    let d = db.dialect().await;
    let runner = Runner::new(d.clone(), chunked_config(Some(10)));
    let names = d.names(&db.table("t"));
    let plan = runner.preflight(&names, spec, false).await.unwrap();
    d.checkpoint_write(&names, &Checkpoint::new(&plan, d.dialect_name())).await.unwrap();
    d.create_shadow(&plan, Duration::from_secs(5)).await.unwrap();
    d.install_capture(&plan, Duration::from_secs(5)).await.unwrap();
    (d, plan)
}

fn key(id: i64) -> MyKey {
    MyKey(vec![mysql_async::Value::Int(id)])
}

/// The checkpoint's advance is part of the chunk's transaction: a chunk whose copy fails leaves
/// it unchanged, a chunk whose advance fails leaves no copied row behind, and a chunk that
/// commits advances it by exactly its rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_checkpoint_commits_and_rolls_back_with_its_chunk() {
    let db = TestDb::new("myresume_chunk_tx").await;
    db.seed_t(100).await;
    db.exec("UPDATE t SET u = 1000 WHERE id = 60").await;
    let (d, plan) = prepared(&db, "ADD CONSTRAINT small_u CHECK (u < 1000)").await;
    let names = &plan.names;
    let mark = |k: i64| ChunkMark { low_watermark: d.key_to_text(&key(k)), chunk_rows: 50 };
    let read = || async { d.checkpoint_read(names).await.unwrap().unwrap() };
    let lock_wait = Duration::from_secs(1);

    // A chunk that commits.
    assert_eq!(d.copy_chunk(&plan, None, &key(50), lock_wait, &mark(50)).await.unwrap().rows, 50);
    let c = read().await;
    assert_eq!((c.low_watermark.as_deref(), c.rows_copied, c.chunk_rows), (Some("[50]"), 50, 50));
    assert_eq!(d.key_from_text(&plan, c.low_watermark.as_deref().unwrap()).unwrap(), key(50));

    // A chunk whose copy fails (row 60 breaks the new CHECK): the checkpoint is unchanged.
    let e = d.copy_chunk(&plan, Some(&key(50)), &key(70), lock_wait, &mark(70)).await.unwrap_err();
    assert!(e.to_string().contains("rejects a row"), "{e}");
    assert_eq!(read().await, c);
    assert_eq!(db.count("_t_new").await, Some(50));

    // A chunk whose copy succeeds but whose advance cannot be written (another session holds
    // the checkpoint row): its copied rows are rolled back with it.
    let (mut holder, _) = db.open_transaction("SELECT * FROM _t_ssw_ckpt WHERE id = 1 FOR UPDATE").await;
    let e = d.copy_chunk(&plan, Some(&key(50)), &key(55), lock_wait, &mark(55)).await.unwrap_err();
    assert!(e.to_string().contains("Lock wait timeout"), "{e}");
    holder.query_drop("ROLLBACK").await.unwrap();
    assert_eq!(db.count("_t_new").await, Some(50), "the chunk's rows went with its failed advance");
    assert_eq!(read().await, c);

    // And then it goes through.
    assert_eq!(d.copy_chunk(&plan, Some(&key(50)), &key(55), lock_wait, &mark(55)).await.unwrap().rows, 5);
    let after = read().await;
    assert_eq!((after.low_watermark.as_deref(), after.rows_copied), (Some("[55]"), 55));
    d.remove_capture(names, lock_wait).await.unwrap();
}

/// What the driver really returns when the server ends a session: a statement's session killed
/// while it runs is a connection error (the runner reconnects), and a pooled session killed
/// while idle is never handed out again (the pool checks it and opens a new one).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_session_is_a_connection_error_and_the_pool_heals() {
    let db = TestDb::new("myresume_killed_session").await;
    db.seed_t(100).await;
    let (d, plan) = prepared(&db, "ADD COLUMN extra INT NOT NULL DEFAULT 7").await;
    let mut admin = db.pool.get_conn().await.unwrap();
    let others = "SELECT ID FROM information_schema.PROCESSLIST WHERE DB = DATABASE() AND ID <> CONNECTION_ID()";

    // Idle pooled sessions killed (and gone: KILL returns before the session has closed its
    // socket): the next calls work.
    let idle = admin.query::<u64, _>(others).await.unwrap();
    assert!(!idle.is_empty(), "the dialect's pool keeps idle sessions");
    for id in &idle {
        admin.query_drop(format!("KILL CONNECTION {id}")).await.unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while admin.query::<u64, _>(others).await.unwrap().iter().any(|id| idle.contains(id)) {
        assert!(Instant::now() < deadline, "killed sessions still listed");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(d.table_exists(&plan.names.shadow).await.unwrap());
    assert!(d.checkpoint_read(&plan.names).await.unwrap().is_some());

    // A chunk copy waiting on a row lock, its session killed.
    let (mut holder, holder_id) = db.open_transaction("SELECT * FROM t WHERE id = 5 FOR UPDATE").await;
    let mark = ChunkMark { low_watermark: d.key_to_text(&key(10)), chunk_rows: 10 };
    let copy = {
        let (d, plan, mark) = (d.clone(), plan.clone(), mark.clone());
        tokio::spawn(async move { d.copy_chunk(&plan, None, &key(10), Duration::from_secs(30), &mark).await })
    };
    let waiting = format!("{others} AND ID <> {holder_id} AND INFO LIKE '%LOCK IN SHARE MODE%'");
    let deadline = Instant::now() + Duration::from_secs(30);
    let id = loop {
        if let Some(id) = admin.query_first::<u64, _>(waiting.as_str()).await.unwrap() {
            break id;
        }
        assert!(Instant::now() < deadline, "the copy never waited on the lock");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    admin.query_drop(format!("KILL CONNECTION {id}")).await.unwrap();
    let e = copy.await.unwrap().unwrap_err();
    eprintln!("killed mid-statement: {e:?}");
    assert!(e.is_connection(), "{e:?}");
    holder.query_drop("ROLLBACK").await.unwrap();
    assert_eq!(d.checkpoint_read(&plan.names).await.unwrap().unwrap().rows_copied, 0);
    assert_eq!(d.copy_chunk(&plan, None, &key(10), Duration::from_secs(5), &mark).await.unwrap().rows, 10);
    d.remove_capture(&plan.names, Duration::from_secs(5)).await.unwrap();
}

/// A fresh process (a new dialect, nothing in memory) resuming what another one prepared:
/// `verify_resumable` passes on the untouched state and restores the capture identity, so the
/// resumed process's own check before the swap still sees a TRUNCATE; and it refuses, naming
/// `shadowswap cleanup`, each thing changed while no shadowswap ran.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn what_changed_while_no_shadowswap_ran_is_refused() {
    let db = TestDb::new("myresume_tamper").await;
    db.seed_t(100).await;
    let spec = "ADD COLUMN extra INT NOT NULL DEFAULT 7";
    let (first, plan) = prepared(&db, spec).await;
    drop(first);
    let resumed = db.dialect().await;
    resumed.verify_resumable(&plan).await.unwrap();
    db.exec("TRUNCATE TABLE t").await;
    let e = resumed.verify_before_cut_over(&plan).await.unwrap_err().to_string();
    assert!(e.contains("truncated"), "the resumed process checks against the recorded identity: {e}");

    let lock = Duration::from_secs(5);
    let refused = |e: shadowswap_engine::Error, what: &str| {
        let e = e.to_string();
        assert!(e.contains("cannot resume") && e.contains(what) && e.contains("shadowswap cleanup"), "{what}: {e}");
    };
    type Tamper = (&'static str, &'static str, &'static str);
    let cases: [Tamper; 5] = [
        (
            "a capture trigger replaced",
            "DROP TRIGGER _t_ssw_del; CREATE TRIGGER _t_ssw_del AFTER DELETE ON t FOR EACH ROW SET @x = 1",
            "capture triggers",
        ),
        ("the shadow altered", "ALTER TABLE _t_new ADD COLUMN z INT", "does not have the definition"),
        ("the shadow dropped", "DROP TABLE _t_new", "is missing"),
        ("the table altered", "ALTER TABLE t ADD COLUMN z INT", "definition changed"),
        ("the identity lost", "UPDATE _t_ssw_ckpt SET capture_identity = NULL", "records no capture identity"),
    ];
    for (what, tamper, expect) in cases {
        db.exec("DROP TABLE IF EXISTS t, _t_new, _t_ssw_ckpt").await;
        db.seed_t(100).await;
        let (_, plan) = prepared(&db, spec).await;
        db.exec(tamper).await;
        let fresh = db.dialect().await;
        refused(fresh.verify_resumable(&plan).await.expect_err(what), expect);
        fresh.remove_capture(&plan.names, lock).await.unwrap();
    }

    // A checkpoint row that is not one shadowswap wrote.
    db.exec("UPDATE _t_ssw_ckpt SET phase = 'somewhere'").await;
    let e = resumed.checkpoint_read(&plan.names).await.unwrap_err().to_string();
    assert!(e.contains("cannot be read") && e.contains("shadowswap cleanup"), "{e}");
}

/// The checkpoint row reads back exactly as written (texts with quotes, backslashes and
/// non-ASCII, every optional field both ways), the upsert replaces it whole but keeps the
/// columns others own (`capture_identity`, `revert_broken`), and no table means no checkpoint.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_checkpoint_row_round_trips() {
    let db = TestDb::new("myresume_row").await;
    db.seed_t(10).await;
    let d = db.dialect().await;
    let runner = Runner::new(d.clone(), chunked_config(Some(10)));
    let names = d.names(&db.table("t"));
    assert_eq!(d.checkpoint_read(&names).await.unwrap(), None, "no table, no checkpoint");
    let spec = "ADD COLUMN note VARCHAR(20) NOT NULL DEFAULT 'it''s \\\\ \"ü\"'";
    let plan = runner.preflight(&names, spec, false).await.unwrap();
    let mut ckpt = Checkpoint::new(&plan, d.dialect_name());
    d.checkpoint_write(&names, &ckpt).await.unwrap();
    assert_eq!(d.checkpoint_read(&names).await.unwrap().as_ref(), Some(&ckpt));

    db.exec("UPDATE _t_ssw_ckpt SET capture_identity = 'id', revert_broken = 'why'").await;
    ckpt.phase = shadowswap_engine::Phase::Checksum;
    ckpt.low_watermark = Some(d.key_to_text(&key(7)));
    ckpt.high_watermark = Some("[\"a'b\\\\c\"]".into());
    (ckpt.rows_copied, ckpt.rows_estimated, ckpt.chunk_rows) = (u64::MAX, 5, 1000);
    ckpt.revert_until = Some("2030-01-01T00:00:00Z".into());
    d.checkpoint_write(&names, &ckpt).await.unwrap();
    assert_eq!(d.checkpoint_read(&names).await.unwrap().as_ref(), Some(&ckpt));
    let kept: String = db.scalar("SELECT CONCAT(capture_identity, '/', revert_broken) FROM _t_ssw_ckpt").await;
    assert_eq!(kept, "id/why");
    let rows: u64 = db.scalar("SELECT COUNT(*) FROM _t_ssw_ckpt").await;
    assert_eq!(rows, 1);

    // A leftover checkpoint table without its row is refused as a leftover when not resuming.
    db.exec("DELETE FROM _t_ssw_ckpt").await;
    assert_eq!(d.checkpoint_read(&names).await.unwrap(), None);
    let e = runner.preflight(&names, spec, false).await.unwrap_err().to_string();
    assert!(e.contains("_t_ssw_ckpt already exists") && e.contains("shadowswap cleanup"), "{e}");
}
