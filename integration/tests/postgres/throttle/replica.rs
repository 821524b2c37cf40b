//! The standby lags (replay paused) or cannot be reached (refused at start; refused, or
//! answering nothing, mid-run): copying pauses, and resumes only when the standby is back.

use super::*;

// ---------------------------------------------------------------------------------------------
// Replica lag
// ---------------------------------------------------------------------------------------------

/// Pause the standby's replay once some rows are copied: the backfill stops within a few seconds
/// (max lag 1 s, checks every 250 ms), the log names the replica and its lag, and the lag it
/// reports is the real time since replay stopped; resuming replay resumes the backfill; exact
/// data, and the standby ends with the new definition and without the heartbeat table.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replica_apply_paused_throttles_the_backfill_until_resumed() {
    const ROWS: i64 = 100_000;
    let _lease = StandbyLease::take(true).await;
    let db = PgTestDb::new("tp_replica_pause").await;
    make_table(&db, ROWS).await;
    let before = snapshot(&db).await;
    let replica = standby::client_for(&db).await;
    // A paused standby left by an interrupted earlier run of this test would stall everything.
    replica.batch_execute("SELECT pg_wal_replay_resume()").await.unwrap();
    wait_caught_up(&db.client, &replica, Duration::from_secs(60)).await;
    // The standby has the table: once (on one fresh-clone CI run) it still answered "relation t
    // does not exist" right after its replay position had passed the primary's; wait for the
    // rows themselves rather than trust the position alone.
    let t0 = std::time::Instant::now();
    loop {
        match replica.query_one("SELECT count(*) FROM t", &[]).await {
            Ok(r) if r.get::<_, i64>(0) == ROWS => break,
            Ok(r) => assert!(t0.elapsed() < Duration::from_secs(60), "the standby has {} rows of {ROWS}", r.get::<_, i64>(0)),
            Err(e) => assert!(t0.elapsed() < Duration::from_secs(60), "the standby cannot read t: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // An idle primary: PostgreSQL's own figure (time since the last replayed commit) grows
    // although the standby has everything; shadowswap's heartbeat must not take that for lag.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let pg_figure: Option<f64> = replica
        .query_one("SELECT extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8", &[])
        .await
        .unwrap()
        .get(0);
    let caught_up: bool =
        replica.query_one("SELECT pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn()", &[]).await.unwrap().get(0);
    eprintln!(
        "before the run: standby caught up = {caught_up}; PostgreSQL's own lag figure (now - pg_last_xact_replay_timestamp()) = \
         {pg_figure:?} s (stale when the primary is idle; other tests' commits may freshen it)"
    );

    let rdsn = standby::dsn_for(&db);
    let mut run =
        Spawned::watched("replica-pause", alter_args(&db, &["--replica", &rdsn, "--max-lag", "1s", "--chunk-size", "200"]));
    let t_start = Instant::now();
    let first = wait_copied(&db.client, 1, Duration::from_secs(30)).await;
    let first_after = t_start.elapsed();
    let at_pause = wait_copied(&db.client, 10_000, Duration::from_secs(30)).await;
    assert!(
        run.find(&["throttling"]).is_none(),
        "throttled before the standby's replay was paused (the heartbeat lag must be ~0 on an idle primary):\n{}",
        run.stderr_text()
    );

    let paused = ReplayPaused::pause(&replica, standby::server_dsn()).await;
    let t_pause = Instant::now();
    let (stopped_after, rows_at_stop) =
        wait_copy_stopped(&db.client, t_pause, Duration::from_millis(2500), Duration::from_secs(8), ROWS).await;
    let line = run.wait_line(&["throttling: copying paused", "lag"], Duration::from_secs(5)).await;
    let target = format!("{}/{}", address(&rdsn), db.name);
    assert!(line.text.contains(&target), "names the replica ({target}): {}", line.text);
    assert!(!line.text.contains("shadowswap:shadowswap@"), "the password must not be logged: {}", line.text);
    let reported = number_after(&line.text, "lag ").expect("lag value in the throttling line");
    let real = line.at.duration_since(t_pause).as_secs_f64();
    eprintln!(
        "first rows copied {:.2} s after start (first count seen: {first}); replay paused at {at_pause} rows; copy stopped {:.2} s after the pause at {rows_at_stop} rows; \
         throttling line {real:.2} s after the pause reports lag {reported} s",
        first_after.as_secs_f64(),
        stopped_after.as_secs_f64()
    );
    assert!(stopped_after < Duration::from_secs(3), "the backfill went on for {stopped_after:?} after replay paused");
    assert!((1.0..2.5).contains(&reported), "reported lag {reported} s when throttling began (max lag 1 s)");
    // The lag is at least the time since replay paused (within the heartbeat and check
    // intervals); it can be more by whatever the standby already lagged before the pause, which
    // under a loaded machine (the whole suite in parallel) is up to about a second.
    assert!(reported >= real - 0.4, "reported lag {reported} s, but replay was paused {real:.2} s before");
    assert!(reported <= real + 1.5, "reported lag {reported} s, but replay was paused only {real:.2} s before");

    // Stays paused while replay is paused (3 s more), and logs the pause once, not every check.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(copied(&db.client).await, rows_at_stop, "copied while the standby lagged");
    let throttle_lines = run.lines().iter().filter(|l| l.text.contains("throttling")).count();
    assert_eq!(throttle_lines, 1, "one line when throttling starts, none while the lag grows:\n{}", run.stderr_text());

    paused.resume(&replica).await;
    let t_resume = Instant::now();
    wait_copied(&db.client, rows_at_stop + 1, Duration::from_secs(10)).await;
    let resumed_after = t_resume.elapsed();
    let ended = run.wait_line(&["throttling ended"], Duration::from_secs(5)).await;
    eprintln!("replay resumed: copying resumed {:.2} s later; {}", resumed_after.as_secs_f64(), ended.text);

    let (status, _, log) = run.finish(Duration::from_secs(120)).await;
    assert!(status.success(), "exit {status}:\n{log}");
    assert_eq!(snapshot(&db).await, altered(&before), "data after the migration");
    db.assert_clean(&["t"]).await;

    // The standby follows: new definition, same rows, no heartbeat table.
    wait_caught_up(&db.client, &replica, Duration::from_secs(60)).await;
    let cols: Vec<String> = replica
        .query("SELECT column_name::text FROM information_schema.columns WHERE table_name = 't' ORDER BY ordinal_position", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(cols, ["id", "v", "s", "extra"]);
    let replica_rows: i64 = replica.query_one("SELECT count(*) FROM t WHERE extra = 7", &[]).await.unwrap().get(0);
    assert_eq!(replica_rows, ROWS);
    let hb: Option<String> = replica.query_one("SELECT to_regclass('_t_ssw_hb')::text", &[]).await.unwrap().get(0);
    assert_eq!(hb, None, "heartbeat table on the standby");
}

/// A replica that cannot be reached when the run starts: refused at once, nothing created.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_unreachable_at_start_refuses_the_run() {
    let db = PgTestDb::new("tp_replica_down").await;
    make_table(&db, 1000).await;
    let before = snapshot(&db).await;
    let port = dead_port();
    let dead = with_port(&standby::dsn_for(&db), port);
    let run = Spawned::watched("replica-down", alter_args(&db, &["--replica", &dead]));
    let (status, _, log) = run.finish(Duration::from_secs(60)).await;
    assert_eq!(status.code(), Some(1), "{log}");
    let last = log.lines().last().unwrap_or_default();
    assert!(last.contains(&format!("127.0.0.1:{port}")) && last.contains("cannot connect"), "{last}");
    db.assert_clean(&["t"]).await;
    assert_eq!(snapshot(&db).await, before);
}

/// The replica becomes unreachable mid-backfill (`link`: connections refused, or the host
/// stops answering): copying pauses and never resumes while it is, the log says so; SIGTERM
/// then stops the run and removes everything it created.
///
/// Every step waits on an event, never on the table being big enough for the copy to still be
/// running: the run starts held by a throttle flag file (the backfill has begun and copies
/// nothing), the replica is lost, the log shows the throttler counting the replica among its
/// reasons, and only then is the flag removed: copying must stay paused on the replica alone.
async fn replica_lost_mid_run(name: &str, link: Link) {
    const ROWS: i64 = 10_000;
    let _lease = StandbyLease::take(false).await;
    let db = PgTestDb::new(name).await;
    make_table(&db, ROWS).await;
    let before = snapshot(&db).await;
    drop(standby::client_for(&db).await); // the standby has the database
    let rdsn = standby::dsn_for(&db);
    let proxy = Proxy::start(address(&rdsn)).await;
    let via_proxy = proxy.route(&rdsn);
    let dir = std::env::temp_dir().join(format!("ssw-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let hold = dir.join("hold");
    std::fs::write(&hold, b"").unwrap();
    let hold_s = hold.to_str().unwrap().to_string();
    let replica = format!("127.0.0.1:{}", proxy.port);

    let mut run = Spawned::watched(
        name,
        alter_args(&db, &["--replica", &via_proxy, "--max-lag", "1s", "--chunk-size", "200", "--throttle-flag-file", &hold_s]),
    );
    run.wait_line(&["throttling: copying paused", "throttle flag file"], Duration::from_secs(30)).await;
    assert_eq!(copied(&db.client).await, 0, "held by the flag file");

    proxy.set(link);
    let t_lost = Instant::now();
    let line = run.wait_line(&["throttling: reason changed", &replica], Duration::from_secs(10)).await;
    eprintln!("[{name}] replica {link:?}: a throttle reason {:.2} s later; {}", t_lost.elapsed().as_secs_f64(), line.text);
    let mark = run.lines().len();
    std::fs::remove_file(&hold).unwrap();
    let line = run.wait_line_from(mark, &["throttling: reason changed", &replica], Duration::from_secs(10)).await;
    assert!(!line.text.contains("throttle flag file"), "the flag is gone, the replica keeps copying paused: {}", line.text);
    assert!(
        run.find(&["throttling ended"]).is_none(),
        "copying resumed while the replica was unreachable:\n{}",
        run.stderr_text()
    );
    // Nothing is copied while the replica stays unreachable.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(copied(&db.client).await, 0, "copied while the replica was unreachable");
    assert!(
        run.find(&["throttling ended"]).is_none(),
        "copying resumed while the replica was unreachable:\n{}",
        run.stderr_text()
    );

    run.signal("TERM");
    let t_term = Instant::now();
    let (status, _, log) = run.finish(Duration::from_secs(60)).await;
    eprintln!("[{name}] SIGTERM -> exit in {:.2} s", t_term.elapsed().as_secs_f64());
    assert_eq!(status.code(), Some(130), "{log}");
    db.assert_clean(&["t"]).await;
    assert_eq!(snapshot(&db).await, before);
    drop(proxy);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replica_refusing_connections_mid_run_throttles_until_stopped() {
    replica_lost_mid_run("tp_replica_refused", Link::Refuse).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replica_that_stops_answering_mid_run_throttles_until_stopped() {
    replica_lost_mid_run("tp_replica_stalled", Link::Stall).await;
}
