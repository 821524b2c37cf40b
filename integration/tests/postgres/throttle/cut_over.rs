//! The cut-over controller: a transaction holding a lock on the table through the cut-over (the
//! application is never blocked longer than the lock timeout), and the cut-over window.

use super::*;

// ---------------------------------------------------------------------------------------------
// Cut-over against a transaction holding the table
// ---------------------------------------------------------------------------------------------

/// What the application saw: each statement's latency.
#[derive(Default)]
struct Probed {
    /// (started, statement, latency)
    samples: Vec<(Instant, &'static str, Duration)>,
    /// Committed `v = v + 1` per id.
    increments: HashMap<i64, i64>,
    errors: Vec<String>,
}

/// The application: a plain SELECT and a small UPDATE on `t` every 50 ms until `stop`. Each is
/// sent as one simple-protocol query, i.e. one statement in one implicit transaction, like
/// libpq's PQexec/PQexecParams: tokio-postgres's `query` would prepare and execute in two
/// round trips, two transactions, each of which takes its own lock on `t` and may wait behind a
/// different lock request (shadowswap's failed cut-over attempt and then its undo's DDL, back to
/// back) — one statement waiting twice, which says nothing about any single lock wait.
fn probe(dsn: String, ids: i64, stop: CancellationToken) -> (Arc<Mutex<Probed>>, JoinHandle<()>) {
    let seen: Arc<Mutex<Probed>> = Arc::default();
    let out = seen.clone();
    let task = tokio::spawn(async move {
        let c = client(&dsn).await;
        let mut i: i64 = 0;
        while !stop.is_cancelled() {
            let id = 1 + (i * 7919) % ids;
            i += 1;
            let t0 = Instant::now();
            let r = c.simple_query(&format!("SELECT v FROM t WHERE id = {id}")).await;
            let d = t0.elapsed();
            {
                let mut s = out.lock().unwrap();
                s.samples.push((t0, "select", d));
                if let Err(e) = r {
                    s.errors.push(format!("select: {e}"));
                }
            }
            let t0 = Instant::now();
            let r = c.simple_query(&format!("UPDATE t SET v = v + 1 WHERE id = {id}")).await.map(|m| {
                m.iter()
                    .find_map(|m| match m {
                        tokio_postgres::SimpleQueryMessage::CommandComplete(n) => Some(*n),
                        _ => None,
                    })
                    .unwrap_or(0)
            });
            let d = t0.elapsed();
            {
                let mut s = out.lock().unwrap();
                s.samples.push((t0, "update", d));
                match r {
                    Ok(1) => *s.increments.entry(id).or_default() += 1,
                    Ok(n) => s.errors.push(format!("update of id {id} changed {n} rows")),
                    Err(e) => s.errors.push(format!("update: {e}")),
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    (seen, task)
}

/// `rows` with the probe's increments applied to `v`.
fn with_increments(rows: &Rows, inc: &HashMap<i64, i64>) -> Rows {
    rows.iter()
        .map(|r| {
            let id: i64 = r[0].as_deref().unwrap().parse().unwrap();
            let mut r = r.clone();
            if let Some(n) = inc.get(&id) {
                let v: i64 = r[1].as_deref().unwrap().parse().unwrap();
                r[1] = Some((v + n).to_string());
            }
            r
        })
        .collect()
}

fn latency_report(p: &Probed, from: Instant) -> (Duration, String) {
    let max = p.samples.iter().filter(|s| s.0 >= from).map(|s| s.2).max().unwrap_or_default();
    let mut top: Vec<_> = p.samples.iter().filter(|s| s.0 >= from).collect();
    top.sort_by_key(|s| std::cmp::Reverse(s.2));
    let top: Vec<String> = top
        .iter()
        .take(5)
        .map(|s| format!("{} {:.0} ms at +{:.1} s", s.1, s.2.as_secs_f64() * 1e3, (s.0 - from).as_secs_f64()))
        .collect();
    let n = p.samples.iter().filter(|s| s.0 >= from).count();
    (max, format!("{n} statements, max {:.0} ms; slowest: {}", max.as_secs_f64() * 1e3, top.join(", ")))
}

/// Until the postpone flag file is removed the run stays before the cut-over; then a session
/// holds a lock on `t` (`blocker`) while the probe runs. Returns the run, the probe, the
/// blocking session and its pid, the original rows.
struct CutOverScene {
    db: PgTestDb,
    run: Spawned,
    before: Rows,
    blocker: Client,
    blocker_pid: i32,
    probe: (Arc<Mutex<Probed>>, JoinHandle<()>),
    stop_probe: CancellationToken,
    t_blocked: Instant,
    flag_dir: std::path::PathBuf,
}

const CUT_OVER_ROWS: i64 = 20_000;

async fn cut_over_scene(name: &str, blocker_sql: &str, extra: &[&str]) -> CutOverScene {
    let db = PgTestDb::new(name).await;
    make_table(&db, CUT_OVER_ROWS).await;
    let before = snapshot(&db).await;
    let flag_dir = std::env::temp_dir().join(format!("ssw-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&flag_dir).unwrap();
    let flag = flag_dir.join("postpone");
    std::fs::write(&flag, b"").unwrap();
    let mut args = vec!["--postpone-cut-over-flag-file", flag.to_str().unwrap(), "--cut-over-lock-timeout", "1s"];
    args.extend_from_slice(extra);
    let mut run = Spawned::watched(name, alter_args(&db, &args));
    run.wait_line(&["cut-over postponed"], Duration::from_secs(60)).await;

    let blocker = client(&db.dsn).await;
    let blocker_pid: i32 = blocker.query_one("SELECT pg_backend_pid()", &[]).await.unwrap().get(0);
    blocker.batch_execute(blocker_sql).await.unwrap();
    let t_blocked = Instant::now();
    let stop_probe = CancellationToken::new();
    let probe = probe(db.dsn.clone(), CUT_OVER_ROWS, stop_probe.clone());
    // The blocker must be older than the lock timeout to count as one.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    std::fs::remove_file(&flag).unwrap();
    CutOverScene { db, run, before, blocker, blocker_pid, probe, stop_probe, t_blocked, flag_dir }
}

/// The lock timeout the runs use, and what the probe may see on top of it (a loaded machine).
const LOCK_TIMEOUT: Duration = Duration::from_secs(1);
const MARGIN: Duration = Duration::from_millis(600);

/// An open transaction that wrote a row holds `t` through the cut-over: the cut-over waits
/// (naming the pid) instead of queueing; once the transaction commits it swaps. The probe is
/// never blocked longer than the lock timeout; its updates and the blocker's row are all there.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lock_holding_transaction_delays_the_cut_over_which_succeeds_once_it_ends() {
    let mut s = cut_over_scene(
        "tp_cut_over_waits",
        &format!("BEGIN; INSERT INTO t VALUES ({}, 1, 'written by the blocker')", CUT_OVER_ROWS + 1),
        &["--cut-over-retries", "3"],
    )
    .await;
    let pid = format!("pid {}", s.blocker_pid);
    let waiting = s.run.wait_line(&["waits instead of queueing", &pid], Duration::from_secs(20)).await;
    eprintln!("{}", waiting.text);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(s.run.find(&["tables swapped"]).is_none(), "swapped while the transaction was open");
    assert!(s.run.find(&["cut-over attempt"]).is_none(), "attempted (queued a lock request) while the transaction was open");
    s.blocker.batch_execute("COMMIT").await.unwrap();
    let t_commit = Instant::now();
    let swapped = s.run.wait_line(&["tables swapped"], Duration::from_secs(30)).await;
    eprintln!("swapped {:.2} s after the blocker committed: {}", swapped.at.duration_since(t_commit).as_secs_f64(), swapped.text);
    let (status, _, log) = s.run.finish(Duration::from_secs(60)).await;
    tokio::time::sleep(Duration::from_millis(300)).await; // a few probes on the new table
    s.stop_probe.cancel();
    s.probe.1.await.unwrap();
    assert!(status.success(), "exit {status}:\n{log}");
    assert!(log.contains("the blocking transactions ended"), "{log}");
    let mut expected = {
        let p = s.probe.0.lock().unwrap();
        assert!(p.errors.is_empty(), "the application saw errors: {:?}", p.errors);
        let (max, report) = latency_report(&p, s.t_blocked);
        eprintln!("probe during the blocked cut-over: {report}");
        assert!(max <= LOCK_TIMEOUT + MARGIN, "the application was blocked {max:?} (lock timeout {LOCK_TIMEOUT:?}): {report}");
        with_increments(&s.before, &p.increments)
    };
    expected.push(vec![Some((CUT_OVER_ROWS + 1).to_string()), Some("1".into()), Some("written by the blocker".into())]);
    assert_eq!(snapshot(&s.db).await, altered(&expected));
    s.db.assert_clean(&["t"]).await;
    let _ = std::fs::remove_dir_all(&s.flag_dir);
}

/// A transaction holds `LOCK TABLE t IN ROW EXCLUSIVE MODE` through every attempt
/// (`--cut-over-retries 1`): each attempt waits for it first (`--cut-over-blocker-wait 3s`,
/// logging its pid), then
/// tries under the 1 s lock timeout and fails; when the retries run out the run fails cleanly
/// (exit 1, the original serving, nothing left: the undo's own DDL waits, bounded by the lock
/// timeout, until the transaction ends). The probe is never blocked longer than the lock
/// timeout, through the attempts and the undo.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lock_held_through_every_cut_over_attempt_fails_the_run_cleanly() {
    let mut s = cut_over_scene(
        "tp_cut_over_gives_up",
        "BEGIN; LOCK TABLE t IN ROW EXCLUSIVE MODE",
        &["--cut-over-retries", "1", "--cut-over-blocker-wait", "3s"],
    )
    .await;
    let pid = format!("pid {}", s.blocker_pid);
    s.run.wait_line(&["waits instead of queueing", &pid], Duration::from_secs(20)).await;
    let failed = s.run.wait_line(&["run failed before the swap"], Duration::from_secs(60)).await;
    let attempts = s.run.lines().iter().filter(|l| l.text.contains("cut-over attempt")).count();
    eprintln!("{attempts} attempts; {}", failed.text);
    // The undo drops the capture triggers, which needs a lock the transaction still holds: it
    // retries under the lock timeout; the transaction ends a moment later, then the undo finishes.
    tokio::time::sleep(Duration::from_secs(2)).await;
    s.blocker.batch_execute("ROLLBACK").await.unwrap();
    let (status, _, log) = s.run.finish(Duration::from_secs(120)).await;
    s.stop_probe.cancel();
    s.probe.1.await.unwrap();
    assert_eq!(status.code(), Some(1), "{log}");
    assert_eq!(attempts, 2, "one attempt and one retry:\n{log}");
    let last = log.lines().last().unwrap_or_default();
    assert!(last.contains("cut-over failed after 2 attempts") && last.contains("pg_stat_activity"), "says what to do: {last}");
    let expected = {
        let p = s.probe.0.lock().unwrap();
        assert!(p.errors.is_empty(), "the application saw errors: {:?}", p.errors);
        let (max, report) = latency_report(&p, s.t_blocked);
        eprintln!("probe through the attempts and the undo: {report}");
        assert!(max <= LOCK_TIMEOUT + MARGIN, "the application was blocked {max:?} (lock timeout {LOCK_TIMEOUT:?}): {report}");
        with_increments(&s.before, &p.increments)
    };
    s.db.assert_clean(&["t"]).await;
    assert_eq!(snapshot(&s.db).await, expected, "the original serves, with the probe's updates");
    let _ = std::fs::remove_dir_all(&s.flag_dir);
}

// ---------------------------------------------------------------------------------------------
// Cut-over window
// ---------------------------------------------------------------------------------------------

/// A cut-over window that opens at the next minute boundary (UTC; the one after when fewer
/// than 10 s remain): the run backfills, checksums, then waits in sync (writes made meanwhile
/// reach the shadow at once) and swaps only once the window is open.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_cut_over_waits_for_its_window() {
    let db = PgTestDb::new("tp_window").await;
    make_table(&db, 5_000).await;
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    let mut opens = (now / 60 + 1) * 60;
    if opens - now < 10 {
        opens += 60;
    }
    let hhmm = |t: u64| format!("{:02}:{:02}", (t / 3600) % 24, (t / 60) % 60);
    let window = format!("{}-{}", hhmm(opens), hhmm(opens + 120));
    eprintln!("window {window} UTC opens in {} s", opens - now);
    let mut run = Spawned::watched("window", alter_args(&db, &["--cut-over-window", &window]));
    let waiting = run.wait_line(&["cut-over waits for its window"], Duration::from_secs(60)).await;
    eprintln!("{}", waiting.text);

    // Writes while waiting reach the shadow, in the writer's own transaction.
    db.exec("INSERT INTO t SELECT g, 5, 'written while waiting' FROM generate_series(100001, 100020) g").await;
    db.exec("UPDATE t SET v = -1 WHERE id BETWEEN 10 AND 19").await;
    db.exec("DELETE FROM t WHERE id BETWEEN 20 AND 29").await;
    let shadow = db.text_rows("SELECT id, v, s, extra FROM _t_new WHERE id BETWEEN 10 AND 29 OR id > 100000 ORDER BY id").await;
    let original = db.text_rows("SELECT id, v, s, 7 FROM t WHERE id BETWEEN 10 AND 29 OR id > 100000 ORDER BY id").await;
    assert_eq!(shadow, original, "the shadow follows the writes while the cut-over waits");
    assert_eq!(shadow.len(), 30);
    let expected = altered(&snapshot(&db).await);

    // Not swapped until the window opens.
    loop {
        let secs = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs_f64();
        if secs >= opens as f64 - 1.0 {
            break;
        }
        assert!(run.find(&["tables swapped"]).is_none(), "swapped before the window opened:\n{}", run.stderr_text());
        let has_extra: bool = db
            .client
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM information_schema.columns WHERE table_name = 't' AND column_name = 'extra')",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert!(!has_extra, "t has the new column before the window opened");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let swapped = run.wait_line(&["tables swapped"], Duration::from_secs(30)).await;
    let at = swapped.wall.duration_since(UNIX_EPOCH).unwrap().as_secs_f64();
    eprintln!("swapped {:.2} s after the window opened", at - opens as f64);
    assert!(at >= opens as f64, "swapped {:.2} s before the window opened", opens as f64 - at);
    assert!(at < opens as f64 + 10.0, "swapped {:.2} s after the window opened", at - opens as f64);
    let (status, _, log) = run.finish(Duration::from_secs(60)).await;
    assert!(status.success(), "exit {status}:\n{log}");
    assert!(log.contains("cut-over window open"), "{log}");
    assert_eq!(snapshot(&db).await, expected);
    db.assert_clean(&["t"]).await;
}
