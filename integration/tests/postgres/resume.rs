//! Checkpoint and resume on PostgreSQL, with the real binary and concurrent writers: a run
//! killed with SIGKILL (in the backfill, and in each phase it logs) is finished by running the
//! same command again, which copies only what remained; the table then equals the writers'
//! model row by row and the native ALTER's definition, and nothing of shadowswap's is left. A
//! different ALTER is refused until `shadowswap cleanup`; sessions terminated mid-backfill and
//! a server that goes away for a few seconds (a proxy cutting every connection) do not stop the
//! run. Dialect-level: a chunk and its checkpoint advance commit together or not at all, and a
//! resume refuses a shadow or capture trigger that was changed.
//!
//! The harness (kill at a log event or checkpoint, run again, the JSON summary) is
//! `shadowswap_integration::postgres::resume`.

use std::os::unix::process::ExitStatusExt;
use std::time::Duration;

use shadowswap_engine::checkpoint::{Checkpoint, ChunkMark};
use shadowswap_engine::{Dialect, Error, Runner};
use shadowswap_integration::cli::{assert_refused, run_cli, stderr, stdout};
use shadowswap_integration::postgres::resume::{
    checkpoint, figure, kill, killed_sessions_gone, message_with, summary, wait_copied, wait_phase, Run,
};
use shadowswap_integration::postgres::workload::{self, Model, PgTable, Workload, WorkloadConfig};
use shadowswap_integration::postgres::PgTestDb;
use shadowswap_integration::proxy::{address, Link, Proxy};
use shadowswap_integration::run::fast_config;
use shadowswap_postgres::PgKey;

const ALTER: &str = "ADD COLUMN extra integer NOT NULL DEFAULT 7";
const MINUTE: Duration = Duration::from_secs(60);

/// A workload table `name` with `rows` rows, and its clone `o_<name>` ALTERed natively (the
/// oracle of the definition).
async fn table_and_clone(db: &PgTestDb, name: &str, rows: u64) -> PgTable {
    let t = PgTable::single(name);
    t.create(&db.client).await.unwrap();
    t.load(&db.client, rows).await.unwrap();
    let o = PgTable::single(&format!("o_{name}"));
    o.create(&db.client).await.unwrap();
    db.exec(&format!("ALTER TABLE o_{name} {ALTER}")).await;
    t
}

/// Writers on `t` for the whole test.
async fn writers(db: &PgTestDb, t: &PgTable, n: usize) -> Workload {
    let model = Model::read(&db.client, t).await.unwrap();
    Workload::start(&db.dsn, model, WorkloadConfig { writers: n, ..WorkloadConfig::default() }, None).await.unwrap()
}

/// Stop the writers; the table must equal their model row by row, have the native ALTER's
/// definition and the new column's default in every row; nothing of shadowswap's is left.
async fn assert_exact(db: &PgTestDb, name: &str, writers: Workload, tables: &[&str]) {
    let (model, report) = writers.stop().await.unwrap();
    assert!(report.ops() > 0, "the writers wrote nothing");
    let v = workload::verify(&db.client, &model).await.unwrap();
    assert!(v.ok(), "{name} differs from the writers' model: {v:?}");
    assert_eq!(db.definition(name).await, db.definition(&format!("o_{name}")).await, "{name}: definition");
    assert_eq!(db.count(&format!("SELECT count(*) FROM {name} WHERE extra IS DISTINCT FROM 7")).await, 0);
    db.assert_clean_any_order(tables).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killed_mid_backfill_the_same_command_resumes_and_copies_only_the_rest() {
    let db = PgTestDb::new("pgresume_backfill").await;
    let rows = 20_000;
    let t = table_and_clone(&db, "t", rows).await;
    let writers = writers(&db, &t, 3).await;
    let run = Run::alter(&db.dsn, "t", ALTER, &["--chunk-size", "20"]);

    let mut cli = run.spawn("first");
    wait_phase(&mut cli, "backfill", MINUTE).await;
    wait_copied(&mut cli, &db, "t", 2_000, 2 * MINUTE).await;
    kill(cli).await;
    killed_sessions_gone(&db).await;
    let left = checkpoint(&db, "t").await.expect("the killed run's checkpoint");
    assert_eq!(left.phase, "backfill");
    assert!((2_000..rows).contains(&left.rows_copied), "{left:?}");
    // The application keeps writing while no shadowswap runs: the capture triggers follow.
    let ops = writers.ops();
    writers.wait_for_ops(ops + 300).await.unwrap();

    let out = run.again().await;
    let s = summary(&out);
    let said = message_with(&stderr(&out), "resuming at key");
    let low = left.low_watermark.as_deref().unwrap();
    assert!(said.contains(low) && said.contains(&format!(": {} of ", left.rows_copied)), "{said} / {left:?}");
    assert_eq!(s["resumed_from"], "backfill", "{s}");
    let (before, now) = (figure(&s, "rows_copied_before_resume"), figure(&s, "rows_copied"));
    assert_eq!(before, left.rows_copied, "{s}");
    assert!(now < rows, "{s}");
    // Only what remained: the writers insert and delete meanwhile, but far fewer rows than the
    // first run had copied, so copying those again would show.
    let total = before + now;
    assert!(total.abs_diff(rows) < before / 2, "copied {before} + {now} of about {rows}: {s}");
    eprintln!("[pgresume_backfill] {before} rows before the kill, {now} after; {s}");
    assert_exact(&db, "t", writers, &["t", "o_t"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killed_in_each_phase_the_same_command_finishes_the_run() {
    let db = PgTestDb::new("pgresume_phases").await;
    let flag = shadowswap_integration::run::postpone_flag("pgresume_phases");
    for (i, phase) in
        ["create shadow", "install capture", "backfill", "checksum", "postponed", "cut-over", "cleanup"].iter().enumerate()
    {
        let name = format!("t{i}");
        // The checksum is quick: enough small chunks of it that the kill lands inside it.
        let (rows, chunk) = match *phase {
            "checksum" => (20_000, "20"),
            "backfill" => (3_000, "10"),
            _ => (3_000, "50"),
        };
        let t = table_and_clone(&db, &name, rows).await;
        let writers = writers(&db, &t, 2).await;
        let mut extra = vec!["--chunk-size", chunk];
        let flag_text = flag.to_string_lossy().to_string();
        if *phase == "postponed" {
            std::fs::write(&flag, "").unwrap();
            extra.extend(["--postpone-cut-over-flag-file", flag_text.as_str()]);
        }
        if *phase == "cleanup" {
            // The cleanup after the swap is over before a kill sent on its log line lands: the
            // rehearsal's crash aborts the run at its entry instead.
            extra.extend(["--inject-fault", "crash@cleanup"]);
        }
        let run = Run::alter(&db.dsn, &name, ALTER, &extra);
        let mut cli = run.spawn(&format!("{name} {phase}"));
        if *phase == "cleanup" {
            let (status, _, err) = cli.finish(MINUTE).await;
            assert_eq!(status.signal(), Some(6), "aborted at the cleanup's entry: {status}\n{err}");
        } else {
            wait_phase(&mut cli, phase, MINUTE).await;
            if *phase == "backfill" {
                // The backfill records itself in the checkpoint with its high watermark, after
                // the phase is logged: kill it once some chunks are in.
                wait_copied(&mut cli, &db, &name, 200, MINUTE).await;
            }
            kill(cli).await;
        }
        let left = checkpoint(&db, &name).await.expect("a checkpoint");
        eprintln!("[pgresume_phases] killed in {phase}: checkpoint {left:?}");
        let _ = std::fs::remove_file(&flag);

        let out = run.again().await;
        let s = summary(&out);
        eprintln!("[pgresume_phases] {phase}: {s}");
        match left.phase.as_str() {
            // Before the capture was complete: what the run created is removed, and it starts over.
            "create shadow" | "install capture" => assert_eq!(s["resumed_from"], serde_json::Value::Null, "{s}"),
            "backfill" | "checksum" | "postponed" => {
                assert_eq!(s["resumed_from"], left.phase.as_str(), "{s}");
                assert_eq!(figure(&s, "rows_copied_before_resume"), left.rows_copied, "{s}");
                assert!(stderr(&out).contains("resuming at key"), "{}", stderr(&out));
            }
            _ => assert_eq!(s["resumed_from"], left.phase.as_str(), "{s}"),
        }
        if matches!(*phase, "backfill" | "checksum" | "cleanup") {
            assert_eq!(left.phase, *phase, "killed in the phase");
        }
        let clone = format!("o_{name}");
        assert_exact(&db, &name, writers, &[name.as_str(), clone.as_str()]).await;
        db.exec(&format!("DROP TABLE {name}, o_{name}")).await;
    }
    db.assert_clean(&[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_alter_after_a_kill_is_refused_until_cleanup_which_removes_the_checkpoint() {
    let db = PgTestDb::new("pgresume_other").await;
    let t = PgTable::single("t");
    t.create(&db.client).await.unwrap();
    t.load(&db.client, 5_000).await.unwrap();
    let before = db.rows("t", "id").await;
    let run = Run::alter(&db.dsn, "t", ALTER, &["--chunk-size", "10"]);
    let mut cli = run.spawn("first");
    wait_copied(&mut cli, &db, "t", 500, 2 * MINUTE).await;
    kill(cli).await;
    killed_sessions_gone(&db).await;
    let left = checkpoint(&db, "t").await.unwrap();

    // The dry run shows the pending checkpoint, and the checkpoint's statements among the plan's.
    let out = run.dry_run().await;
    let plan = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{plan}\n{}", stderr(&out));
    assert!(plan.contains("pending:") && plan.contains(&format!("{} of about", left.rows_copied)), "{plan}");
    assert!(plan.contains("CREATE TABLE IF NOT EXISTS \"public\".\"_t_ssw_ckpt\""), "{plan}");
    assert!(plan.contains("UPDATE \"public\".\"_t_ssw_ckpt\" SET low_watermark = $1"), "{plan}");

    let other = Run::alter(&db.dsn, "t", "ADD COLUMN other int", &[]);
    let out = other.again().await;
    assert_refused(&out, &["different ALTER", "shadowswap cleanup"]);
    assert_eq!(checkpoint(&db, "t").await.as_ref(), Some(&left), "the refusal changed nothing");

    let out = run_cli(&["cleanup", "--dsn", &db.dsn, "--table", "t"], &[]).await;
    assert_eq!(out.status.code(), Some(0), "cleanup: {}", stderr(&out));
    assert!(stdout(&out).contains("dropped checkpoint table public._t_ssw_ckpt"), "{}", stdout(&out));
    db.assert_clean(&["t"]).await;
    assert_eq!(db.rows("t", "id").await, before, "the table is untouched");

    let out = other.again().await;
    let s = summary(&out);
    assert_eq!(s["resumed_from"], serde_json::Value::Null, "{s}");
    assert_eq!(db.count("SELECT count(*) FROM t WHERE other IS NULL").await, 5_000);
    db.assert_clean(&["t"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truncate_while_no_shadowswap_runs_is_followed_by_the_resume() {
    let db = PgTestDb::new("pgresume_truncate").await;
    let t = table_and_clone(&db, "t", 5_000).await;
    let run = Run::alter(&db.dsn, "t", ALTER, &["--chunk-size", "10"]);
    let mut cli = run.spawn("first");
    wait_copied(&mut cli, &db, "t", 500, 2 * MINUTE).await;
    kill(cli).await;
    // The truncate trigger empties the shadow too; the checkpoint's watermark stays right.
    db.exec("TRUNCATE t; INSERT INTO t (id, v, c) SELECT g, g, 'after' FROM generate_series(1, 30) g").await;
    let writers = writers(&db, &t, 2).await;
    let s = summary(&run.again().await);
    assert_eq!(s["resumed_from"], "backfill", "{s}");
    assert_exact(&db, "t", writers, &["t", "o_t"]).await;
}

/// Terminate the sessions of `db` whose `application_name` is shadowswap's and that match
/// `filter` (SQL over `pg_stat_activity`); returns how many.
async fn terminate(db: &PgTestDb, filter: &str) -> i64 {
    db.count(&format!(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
         WHERE datname = current_database() AND application_name = 'shadowswap' AND pid <> pg_backend_pid() AND {filter}"
    ))
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn terminated_sessions_mid_backfill_reconnect_and_the_run_completes() {
    let db = PgTestDb::new("pgresume_terminate").await;
    let t = table_and_clone(&db, "t", 20_000).await;
    let writers = writers(&db, &t, 3).await;
    let run = Run::alter(&db.dsn, "t", ALTER, &["--chunk-size", "20", "--reconnect-timeout", "1m"]);
    let mut cli = run.spawn("terminated");
    wait_copied(&mut cli, &db, "t", 1_000, 2 * MINUTE).await;

    // The copy session in the middle of a chunk: hold the table's lock so the chunk waits on
    // it, terminate exactly the waiting session, release.
    let blocker = shadowswap_integration::postgres::client(&db.dsn).await;
    blocker.batch_execute("BEGIN; LOCK TABLE t IN EXCLUSIVE MODE").await.unwrap();
    // The copy first tries each chunk without waiting (a 1 ms lock timeout), then, after
    // several tries in a row, waits up to its lock wait timeout: terminate it once it waits.
    let waiting = "wait_event_type = 'Lock'";
    cli.wait_until(MINUTE, "no shadowswap session waited for the table's lock", || async { terminate(&db, waiting).await >= 1 })
        .await;
    blocker.batch_execute("COMMIT").await.unwrap();
    // Every other session of the run, idle in its pool or holding the advisory lock.
    let copied = checkpoint(&db, "t").await.unwrap().rows_copied;
    wait_copied(&mut cli, &db, "t", copied + 1_000, 2 * MINUTE).await;
    assert!(terminate(&db, "true").await >= 1);

    let (status, out, err) = cli.finish(5 * MINUTE).await;
    assert!(status.success(), "{err}");
    assert!(message_with(&err, "lost the connection").contains("reconnecting"), "{err}");
    let s = shadowswap_integration::postgres::resume::event(out.lines().last().unwrap_or_default()).expect("JSON summary");
    assert!(figure(&s, "reconnects") >= 1, "{s}");
    eprintln!("[pgresume_terminate] {s}");
    assert_exact(&db, "t", writers, &["t", "o_t"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_server_gone_for_seconds_mid_backfill_is_waited_for() {
    let db = PgTestDb::new("pgresume_proxy").await;
    let t = table_and_clone(&db, "t", 20_000).await;
    let writers = writers(&db, &t, 2).await;
    let proxy = Proxy::start(address(&db.dsn)).await;
    let run = Run::alter(&proxy.route(&db.dsn), "t", ALTER, &["--chunk-size", "20", "--reconnect-timeout", "1m"]);
    let mut cli = run.spawn("restart");
    wait_copied(&mut cli, &db, "t", 1_000, 2 * MINUTE).await;
    // As the client sees a restart: every connection cut, new ones cut too for a while.
    proxy.set(Link::Reset);
    let mark = cli.mark();
    cli.wait_for_stderr_from(mark, "lost the connection", MINUTE).await;
    // The outage lasts a few seconds of wall time (what is tested is the wait, not a speed).
    tokio::time::sleep(Duration::from_secs(3)).await;
    proxy.set(Link::Forward);
    cli.wait_for_stderr_from(mark, "reconnected", MINUTE).await;
    let (status, out, err) = cli.finish(5 * MINUTE).await;
    assert!(status.success(), "{err}");
    let s = shadowswap_integration::postgres::resume::event(out.lines().last().unwrap_or_default()).expect("JSON summary");
    assert!(figure(&s, "reconnects") >= 1, "{s}");
    assert_exact(&db, "t", writers, &["t", "o_t"]).await;
}

/// The key `k` of a single-column key.
fn key(k: i64) -> PgKey {
    PgKey(vec![k.to_string()])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunk_and_its_checkpoint_advance_commit_together() {
    let db = PgTestDb::new("pgresume_chunk_tx").await;
    db.exec("CREATE TABLE t (id bigint PRIMARY KEY, v int NOT NULL); INSERT INTO t SELECT g, g FROM generate_series(1, 300) g")
        .await;
    let d = db.dialect().await;
    let names = d.names(&db.table("t"));
    let plan = Runner::new(d.clone(), fast_config()).preflight(&names, ALTER, false).await.unwrap();
    let lock = Duration::from_secs(2);
    d.checkpoint_write(&names, &Checkpoint::new(&plan, d.dialect_name())).await.unwrap();
    d.create_shadow(&plan, lock).await.unwrap();
    d.install_capture(&plan, lock).await.unwrap();
    let mark = |k: i64| ChunkMark { low_watermark: d.key_to_text(&key(k)), chunk_rows: 100 };
    let in_shadow = |lo: i64, hi: i64| {
        let db = &db;
        async move { db.count(&format!("SELECT count(*) FROM _t_new WHERE id > {lo} AND id <= {hi}")).await }
    };

    assert_eq!(d.copy_chunk(&plan, None, &key(100), lock, &mark(100)).await.unwrap().rows, 100);
    let after_first = d.checkpoint_read(&names).await.unwrap().unwrap();
    assert_eq!((after_first.rows_copied, after_first.low_watermark.as_deref()), (100, Some("[\"100\"]")));

    // The copy fails (the shadow rejects row 150): the checkpoint does not move.
    db.exec("ALTER TABLE _t_new ADD CONSTRAINT no_150 CHECK (id <> 150) NOT VALID").await;
    let e = d.copy_chunk(&plan, Some(&key(100)), &key(200), lock, &mark(200)).await.unwrap_err();
    assert!(matches!(e, Error::Refused(_)), "{e:?}");
    assert_eq!(d.checkpoint_read(&names).await.unwrap().unwrap(), after_first);
    assert_eq!(in_shadow(100, 200).await, 0);
    db.exec("ALTER TABLE _t_new DROP CONSTRAINT no_150").await;

    // The advance fails (its row is gone): the chunk's rows are not in the shadow either.
    db.exec("DELETE FROM _t_ssw_ckpt").await;
    let e = d.copy_chunk(&plan, Some(&key(100)), &key(200), lock, &mark(200)).await.unwrap_err();
    assert!(e.to_string().contains("checkpoint row") && e.to_string().contains("shadowswap cleanup"), "{e}");
    assert_eq!(in_shadow(100, 200).await, 0);
    assert_eq!(d.checkpoint_read(&names).await.unwrap(), None);
    // The checkpoint table gone: the same, as a database error.
    db.exec("DROP TABLE _t_ssw_ckpt").await;
    assert!(d.copy_chunk(&plan, Some(&key(100)), &key(200), lock, &mark(200)).await.is_err());
    assert_eq!(in_shadow(100, 200).await, 0);

    d.checkpoint_write(&names, &after_first).await.unwrap();
    assert_eq!(d.copy_chunk(&plan, Some(&key(100)), &key(200), lock, &mark(200)).await.unwrap().rows, 100);
    let c = d.checkpoint_read(&names).await.unwrap().unwrap();
    assert_eq!((c.rows_copied, c.low_watermark.as_deref(), c.chunk_rows), (200, Some("[\"200\"]"), 100));
    assert_eq!(in_shadow(100, 200).await, 100);

    d.remove_capture(&names, lock).await.unwrap();
    for t in [&names.shadow, &names.checkpoint] {
        d.drop_table(t, lock).await.unwrap();
    }
    db.assert_clean(&["t"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_refuses_a_changed_shadow_or_capture_trigger() {
    let db = PgTestDb::new("pgresume_verify").await;
    db.exec("CREATE TABLE t (id bigint PRIMARY KEY, v int NOT NULL); INSERT INTO t SELECT g, g FROM generate_series(1, 50) g")
        .await;
    let d = db.dialect().await;
    let names = d.names(&db.table("t"));
    let runner = Runner::new(d.clone(), fast_config());
    let plan = runner.preflight(&names, ALTER, false).await.unwrap();
    let lock = Duration::from_secs(2);
    let ckpt = Checkpoint::new(&plan, d.dialect_name());
    d.checkpoint_write(&names, &ckpt).await.unwrap();
    d.create_shadow(&plan, lock).await.unwrap();
    d.install_capture(&plan, lock).await.unwrap();
    d.verify_resumable(&plan).await.unwrap();
    // When resuming, the run's own shadow, triggers and checkpoint are not leftovers.
    runner.preflight(&names, ALTER, true).await.unwrap();
    let refused = |e: Error, what: &str| {
        let text = e.to_string();
        assert!(matches!(e, Error::Refused(_)) && text.contains(what) && text.contains("shadowswap cleanup"), "{what}: {text}");
    };

    db.exec("ALTER TABLE t DISABLE TRIGGER _t_ssw_upd").await;
    refused(d.verify_resumable(&plan).await.unwrap_err(), "_t_ssw_upd");
    db.exec("ALTER TABLE t ENABLE ALWAYS TRIGGER _t_ssw_upd").await;
    d.verify_resumable(&plan).await.unwrap();

    db.exec(
        "CREATE OR REPLACE FUNCTION public._t_ssw_del() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER \
         SET search_path = pg_catalog, pg_temp AS $$ BEGIN RETURN NULL; END $$",
    )
    .await;
    refused(d.verify_resumable(&plan).await.unwrap_err(), "_t_ssw_del");
    d.install_capture(&plan, lock).await.unwrap();
    d.verify_resumable(&plan).await.unwrap();

    db.exec("DROP TRIGGER _t_ssw_trn ON t").await;
    refused(d.verify_resumable(&plan).await.unwrap_err(), "_t_ssw_trn");
    d.install_capture(&plan, lock).await.unwrap();

    // The table dropped and created again with the same definition, rows and capture triggers
    // (as a restore from a dump would, its data loaded before its triggers): refused.
    let identity = db.scalar("SELECT capture_identity FROM _t_ssw_ckpt").await.expect("recorded at install");
    db.exec(
        "ALTER TABLE t RENAME TO t_gone; CREATE TABLE t (LIKE t_gone INCLUDING ALL); INSERT INTO t SELECT * FROM t_gone; \
         DROP TABLE t_gone",
    )
    .await;
    d.install_capture(&plan, lock).await.unwrap();
    d.verify_resumable(&plan).await.unwrap();
    db.exec(&format!("UPDATE _t_ssw_ckpt SET capture_identity = '{identity}'")).await;
    refused(d.verify_resumable(&plan).await.unwrap_err(), "dropped and created again");
    db.exec("UPDATE _t_ssw_ckpt SET capture_identity = NULL").await;
    refused(d.verify_resumable(&plan).await.unwrap_err(), "records no capture identity");
    d.install_capture(&plan, lock).await.unwrap();
    d.verify_resumable(&plan).await.unwrap();

    // The added column's default fills the copied rows: a shadow without it is not the plan's.
    db.exec("ALTER TABLE _t_new ALTER COLUMN extra DROP DEFAULT").await;
    refused(d.verify_resumable(&plan).await.unwrap_err(), "_t_new");
    db.exec("ALTER TABLE _t_new ALTER COLUMN extra SET DEFAULT 7").await;
    d.verify_resumable(&plan).await.unwrap();
    db.exec("CREATE INDEX ON _t_new (v)").await;
    refused(d.verify_resumable(&plan).await.unwrap_err(), "_t_new");
    db.exec("DROP TABLE _t_new CASCADE").await;
    refused(d.verify_resumable(&plan).await.unwrap_err(), "missing");

    // Not resuming: a checkpoint table left behind, even without its row, is a leftover.
    d.remove_capture(&names, lock).await.unwrap();
    db.exec("DELETE FROM _t_ssw_ckpt").await;
    let e = runner.preflight(&names, ALTER, false).await.unwrap_err().to_string();
    assert!(e.contains("_t_ssw_ckpt") && e.contains("shadowswap cleanup"), "{e}");
    d.drop_table(&names.checkpoint, lock).await.unwrap();
    db.assert_clean(&["t"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_dropped_session_is_a_connection_error_and_the_pool_drops_dead_sessions() {
    let db = PgTestDb::new("pgresume_errors").await;
    db.exec("CREATE TABLE t (id bigint PRIMARY KEY, v int NOT NULL); INSERT INTO t SELECT g, g FROM generate_series(1, 50) g")
        .await;
    let d = db.dialect().await;
    let t = db.table("t");
    let cols = ["v".to_string()];
    d.find_duplicate(&t, &cols).await.unwrap();
    let sessions = "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'shadowswap'";

    // Idle pooled sessions terminated while unused: at most one call fails, as a connection
    // error, and the pool hands out live sessions after it.
    assert!(terminate(&db, "true").await >= 1);
    while db.count(sessions).await > 0 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    match d.find_duplicate(&t, &cols).await {
        Ok(_) => {}
        Err(e) => assert!(e.is_connection(), "{e:?}"),
    }
    d.find_duplicate(&t, &cols).await.expect("a live session after the dead ones");

    // A session terminated in the middle of a query.
    let blocker = shadowswap_integration::postgres::client(&db.dsn).await;
    blocker.batch_execute("BEGIN; LOCK TABLE t IN ACCESS EXCLUSIVE MODE").await.unwrap();
    let query = tokio::spawn({
        let (d, t) = (d.clone(), t.clone());
        async move { d.find_duplicate(&t, &["v".to_string()]).await }
    });
    let waiting = "wait_event_type = 'Lock'";
    let deadline = std::time::Instant::now() + MINUTE;
    while terminate(&db, waiting).await == 0 {
        assert!(std::time::Instant::now() < deadline, "the query never waited for the lock");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let e = query.await.unwrap().unwrap_err();
    assert!(e.is_connection(), "terminated mid-query: {e:?}");
    assert!(e.to_string().contains("57P01"), "{e}");
    blocker.batch_execute("COMMIT").await.unwrap();

    // The server gone (a proxy refusing and cutting every connection).
    let proxy = Proxy::start(address(&db.dsn)).await;
    let via = std::sync::Arc::new(shadowswap_postgres::Postgres::connect(&proxy.route(&db.dsn), None).await.unwrap());
    via.find_duplicate(&t, &cols).await.unwrap();
    proxy.set(Link::Refuse);
    for _ in 0..2 {
        let e = via.find_duplicate(&t, &cols).await.unwrap_err();
        assert!(e.is_connection(), "server gone: {e:?}");
    }
    let names = via.names(&t);
    let e = via.acquire_run_lock(&names).await.err().expect("no lock while the server is gone");
    assert!(matches!(e, Error::Unreachable { .. }), "{e:?}");
}
