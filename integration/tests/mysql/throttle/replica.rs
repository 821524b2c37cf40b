//! The replica lags (apply paused) or cannot be reached (refused at start; lost or silent
//! mid-run): copying pauses, and resumes only when the replica is back.

use super::*;

// ---------------------------------------------------------------------------------------------
// Replica lag
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replica_apply_paused_stops_the_backfill_until_it_resumes() {
    let db = TestDb::new("thr_lag").await;
    let replica = Replica::connect().await;
    let _lease = replica.lease(&db).await;
    db.seed_t(ROWS).await;
    let seeded = replica.catch_up(&db, Duration::from_secs(120)).await;
    let before = db.seeded("t").await;
    let replica_dsn = replica.dsn_for(&db);
    // What the log shows of it: the DSN without password.
    let shown = replica_dsn.replace("shadowswap:shadowswap@", "shadowswap@");

    let mut cli = Spawned::new(alter_args(&db, &["--replica", &replica_dsn, "--max-lag", "1s", "--chunk-size", SLOW_CHUNK]));
    db.wait_for_shadow_rows(&mut cli, 3_000).await;
    // The replica also applies what every other test writes to the shared primary, so it may
    // lag (and throttle this run) on its own now and then: look at what is logged from here on.
    let mark = cli.mark();
    let paused_at = Instant::now();
    let paused = replica.pause_apply().await;
    let (stopped_after, rows) = assert_copy_stops(&db, &mut cli, paused_at, Duration::from_secs(5)).await;
    assert!(rows < u64::from(ROWS), "paused mid-backfill, not after it ({rows} rows)");
    let line = cli.wait_for_stderr_from(mark, &format!("replica {shown} lag "), Duration::from_secs(5)).await;
    assert!(line.contains("throttling") && line.contains("(max 1.0 s)"), "{line}");
    assert_copy_stays(&db, &mut cli, rows, Duration::from_secs(1)).await;

    // The application keeps writing meanwhile; the capture does not pause.
    db.exec(CHANGE).await;
    let mark = cli.mark();
    let resumed_at = Instant::now();
    paused.resume().await;
    cli.wait_for_stderr_from(mark, "throttling ended: copying resumes", Duration::from_secs(30)).await;
    let resumed_after = resumed_at.elapsed();
    let (status, out, err) = cli.finish(Duration::from_secs(120)).await;
    assert_migrated(&db, status, &out, &err, &with_change(before)).await;
    let blocked = writes_blocked_ms(&out);
    // Transitions are logged, not every check: a lag that keeps growing while paused is not a
    // new reason (pauses of its own, see above, are transitions, hence no exact count).
    assert!(!err.contains("throttling: reason changed"), "one signal, one reason:\n{err}");

    // The replica has all of it: the new definition, the same rows, and no heartbeat table.
    let caught_up = replica.catch_up(&db, Duration::from_secs(60)).await;
    assert_eq!(replica.tables(&db.name).await, ["t"], "tables on the replica");
    assert_eq!(replica.create_table(&db.name, "t").await, db.create_table("t").await);
    assert_eq!(replica.rows(&db.name, "t", "id").await, db.rows("t", "id").await);
    println!(
        "replica lag: seeding replicated in {} ms; backfill stopped {} ms after apply was paused (at {rows} of {ROWS} rows); \
         copying resumed {} ms after apply resumed; writes blocked {blocked} ms; replica caught up {} ms after the run",
        ms(seeded),
        ms(stopped_after),
        ms(resumed_after),
        ms(caught_up)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_unreachable_at_start_is_refused_before_anything_is_created() {
    let db = TestDb::new("thr_replica_refused").await;
    db.seed_t(100).await;
    let port = dead_port();
    let dead = format!("mysql://shadowswap:shadowswap@127.0.0.1:{port}/{}", db.name);
    let cli = Spawned::new(alter_args(&db, &["--replica", &dead]));
    let (status, _, err) = cli.finish(Duration::from_secs(60)).await;
    assert_eq!(status.code(), Some(1), "{err}");
    let last = err.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or_default();
    assert!(last.contains(&format!("127.0.0.1:{port}")), "names the replica: {last}");
    db.assert_clean(&["t"]).await;
    assert_eq!(db.count("t").await, Some(100));
}

/// A run through a proxy to the replica, mid-backfill, loses it: the proxy is cut
/// ([`Link::Refuse`]) or goes silent ([`Link::Stall`]); the log says the replica is unreachable,
/// nothing is copied while it is, and SIGTERM leaves nothing behind.
///
/// Every step waits on an event, never on the copy being slow enough to still be running: the
/// run starts held by a throttle flag file (the backfill has begun and copies nothing), the
/// replica is lost, the log shows the throttler counting it among its reasons, and only then is
/// the flag removed: copying must stay paused on the replica alone.
async fn replica_lost_mid_run(name: &str, link: Link) {
    let db = TestDb::new(name).await;
    let replica = Replica::connect().await;
    let _lease = replica.lease(&db).await;
    db.seed_t(ROWS).await;
    replica.catch_up(&db, Duration::from_secs(120)).await;
    let before = db.seeded("t").await;
    let proxy = Proxy::start(address(&replica.dsn)).await;
    let via_proxy = proxy.route(&replica.dsn_for(&db));
    let hold = flag_path(&format!("{}-hold", db.name));
    std::fs::write(&hold, b"hold").unwrap();
    let hold_arg = hold.display().to_string();

    let mut cli =
        Spawned::new(alter_args(&db, &["--replica", &via_proxy, "--chunk-size", SLOW_CHUNK, "--throttle-flag-file", &hold_arg]));
    let held = cli.wait_for_stderr(&format!("throttle flag file {hold_arg} exists"), Duration::from_secs(30)).await;
    assert!(held.contains("throttling: copying paused"), "{held}");
    assert_eq!(db.count("_t_new").await, Some(0), "held by the flag file");

    let mark = cli.mark();
    let lost_at = Instant::now();
    proxy.set(link);
    let shown = format!("replica mysql://shadowswap@127.0.0.1:{}/{} unreachable", proxy.port, db.name);
    let line = cli.wait_for_stderr_from(mark, &shown, Duration::from_secs(10)).await;
    assert!(line.contains("throttling: reason changed"), "{line}");
    let noticed = lost_at.elapsed();

    let mark = cli.mark();
    std::fs::remove_file(&hold).unwrap();
    let line = cli.wait_for_stderr_from(mark, "throttling: reason changed", Duration::from_secs(10)).await;
    assert!(line.contains(&shown) && !line.contains("throttle flag file"), "the replica alone keeps copying paused: {line}");
    assert_copy_stays(&db, &mut cli, 0, Duration::from_secs(3)).await;
    assert!(!cli.stderr_text().contains("throttling ended"), "copying resumed:\n{}", cli.stderr_text());
    assert!(!swapped(&db).await);

    cli.signal("TERM");
    let (status, _, err) = cli.finish(Duration::from_secs(60)).await;
    assert_eq!(status.code(), Some(130), "{err}");
    db.assert_clean(&["t"]).await;
    assert_eq!(db.seeded("t").await, before);
    drop(proxy);
    replica.catch_up(&db, Duration::from_secs(60)).await;
    assert_eq!(replica.tables(&db.name).await, ["t"], "tables on the replica");
    println!(
        "replica {} mid-run: a throttle reason {} ms later",
        if link == Link::Stall { "silent" } else { "gone" },
        ms(noticed)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_lost_mid_run_pauses_the_copy() {
    replica_lost_mid_run("thr_replica_lost", Link::Refuse).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_that_stops_answering_pauses_the_copy() {
    replica_lost_mid_run("thr_replica_silent", Link::Stall).await;
}
