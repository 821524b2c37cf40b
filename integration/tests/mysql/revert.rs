//! The revert window on MariaDB (`--revert-window`, `shadowswap revert`, `shadowswap finish`;
//! docs/revert.md): a revert under concurrent writers restores the old definition with every row
//! written in between, exactly as the writers' model says; a write the old definition cannot take
//! still succeeds and then `revert` refuses; `finish` and the window's end remove everything; the
//! dry run of `revert` prints its SQL; `cleanup` and another `alter` leave an open window alone.

use std::time::Duration;

use shadowswap_engine::config::{CutOverConfig, DdlConfig};
use shadowswap_engine::revert::{self, WindowEnd};
use shadowswap_engine::runner::Outcome;
use shadowswap_engine::{Phase, Runner};
use shadowswap_integration::cli::{assert_refused, run_cli, stdout, Spawned};
use shadowswap_integration::mysql::workload::{self, Model, PhaseSource, TableSpec, Workload, WorkloadConfig};
use shadowswap_integration::mysql::TestDb;
use shadowswap_integration::run::chunked_config;
use tokio_util::sync::CancellationToken;

/// A revert within the window while four writers insert, update (moving keys too) and delete
/// through the swap, the window and the swap back: the table has its old definition again and
/// equals the writers' model row by row; nothing of shadowswap's is left; the runner's wait
/// noticed the revert. Prints the revert's writes-blocked figure.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn revert_under_writers_restores_every_write() {
    let db = TestDb::new("rv_writers").await;
    let spec = TableSpec::single("t");
    spec.create(&db.pool).await.unwrap();
    spec.load(&db.pool, 5_000, |_| {}).await.unwrap();
    let before = db.create_table("t").await;
    let initial = Model::read(&db.pool, &spec).await.unwrap();

    let mut cfg = chunked_config(Some(500));
    cfg.revert_window = Some(Duration::from_secs(600));
    cfg.cut_over.poll_interval = Duration::from_millis(50);
    let runner = Runner::new(db.dialect().await, cfg);
    let mut progress = runner.progress();
    let writers =
        Workload::start(&db.dsn, initial, WorkloadConfig::default(), PhaseSource::Runner(runner.progress())).await.unwrap();
    writers.wait_for_ops(200).await.unwrap();

    let table = db.table("t");
    let alter = "ADD COLUMN extra INT NOT NULL DEFAULT 7, MODIFY pad VARCHAR(100) NOT NULL DEFAULT '', FORCE";
    let run = {
        let table = table.clone();
        async move { runner.run(&table, alter).await }
    };
    let run = tokio::spawn(run);
    // The wait has begun (the run released its advisory lock): what the progress shows then.
    progress
        .wait_for(|p| {
            p.phase == Phase::RevertWindow && p.waiting_for.as_deref().is_some_and(|w| w.starts_with("revert window until"))
        })
        .await
        .unwrap();
    let during: String = db.create_table("t").await;
    assert!(during.contains("`extra`"), "the new table serves in the window: {during}");
    // Writes on the new table in the window.
    let at_window = writers.ops();
    writers.wait_for_ops(at_window + 500).await.unwrap();

    let d = db.dialect().await;
    let cut_over = CutOverConfig { blocker_wait: Duration::from_secs(5), ..CutOverConfig::default() };
    let report = revert::revert(&*d, &table, &cut_over, &DdlConfig::default(), true, &CancellationToken::new())
        .await
        .unwrap_or_else(|e| panic!("revert failed: {e}"));
    let stats = report.cut_over.expect("swapped back");
    eprintln!(
        "[rv_writers] revert: {} attempt(s), application writes blocked {} ms",
        stats.attempts,
        stats.swap_time.as_millis()
    );
    // Writes on the reverted table.
    let at_revert = writers.ops();
    writers.wait_for_ops(at_revert + 300).await.unwrap();
    let (model, wreport) = writers.stop().await.unwrap_or_else(|e| panic!("{e:#}"));
    eprintln!("[rv_writers] {wreport}");
    assert!(wreport.ops_during("revert window") > 0, "no writes in the window: {wreport}");

    let outcome = run.await.unwrap().unwrap();
    let Outcome::Swapped(summary) = outcome else { panic!("expected a swap") };
    assert_eq!(summary.revert_window.map(|(_, end)| end), Some(WindowEnd::Reverted));

    let verification = workload::verify(&db.pool, &model).await.unwrap();
    assert!(verification.ok(), "{verification}\nwriters: {wreport}");
    // The definition as before, but for the AUTO_INCREMENT counter the writers advanced.
    let no_counter = |ddl: String| ddl.split(' ').filter(|w| !w.starts_with("AUTO_INCREMENT=")).collect::<Vec<_>>().join(" ");
    assert_eq!(no_counter(db.create_table("t").await), no_counter(before), "the old definition is back");
    db.assert_clean(&["t"]).await;
}

/// `alter … --revert-window` in the background: the line that says how to revert or finish.
async fn alter_with_window(db: &TestDb, alter: &str, window: &str) -> Spawned {
    let mut cli = Spawned::watched(
        &db.name,
        ["alter", "--dsn", &db.dsn, "--table", "t", "--alter", alter, "--execute", "--revert-window", window],
    );
    let line = cli.wait_for_stderr("revert window open until", Duration::from_secs(60)).await;
    assert!(line.contains("`shadowswap revert") && line.contains("`shadowswap finish"), "{line}");
    cli
}

/// A write the old definition cannot take (a value longer than the old column) succeeds on the
/// new table; the reverse capture records it; `revert` (dry run and --execute) refuses, naming
/// `finish`; `finish` then keeps the new table with the write and removes everything else, and
/// the waiting `alter` notices it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_the_old_table_cannot_take_succeeds_and_revert_refuses() {
    let db = TestDb::new("rv_broken").await;
    db.exec("CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(5) NOT NULL) ENGINE=InnoDB; INSERT INTO t VALUES (1, 'a'), (2, 'b')")
        .await;
    let cli = alter_with_window(&db, "MODIFY v VARCHAR(50) NOT NULL", "10m").await;
    db.exec("INSERT INTO t VALUES (3, 'fits'); INSERT INTO t VALUES (4, 'far too long for the old column')").await;
    let broken: Option<String> = db.scalar("SELECT revert_broken FROM _t_ssw_ckpt").await;
    assert!(
        broken.as_deref().is_some_and(|b| b.contains("an insert not carried back") && b.contains("Data too long")),
        "{broken:?}"
    );
    for extra in [&[][..], &["--execute"][..]] {
        let mut args = vec!["revert", "--dsn", &db.dsn, "--table", "t"];
        args.extend_from_slice(extra);
        assert_refused(&run_cli(&args, &[]).await, &["a revert would lose them", "shadowswap finish"]);
    }
    let out = run_cli(&["finish", "--dsn", &db.dsn, "--table", "t", "--execute"], &[]).await;
    assert!(out.status.success(), "{out:?}");
    assert!(stdout(&out).contains("closed the revert window"), "{}", stdout(&out));
    let (status, out, _) = cli.finish(Duration::from_secs(30)).await;
    assert!(status.success());
    assert!(out.contains("closed by `shadowswap finish`"), "{out}");
    let long: u64 = db.scalar("SELECT COUNT(*) FROM t WHERE id = 4 AND CHAR_LENGTH(v) > 5").await;
    assert_eq!(long, 1);
    assert!(db.create_table("t").await.contains("varchar(50)"));
    db.assert_clean(&["t"]).await;
}

/// While the window is open: the dry run of `revert` prints the exact SQL and changes nothing;
/// `cleanup` and another `alter` refuse, naming `finish`; at the window's end the waiting
/// `alter` closes it (reverse triggers and old table dropped).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_refusals_and_the_window_closing_at_its_end() {
    let db = TestDb::new("rv_expiry").await;
    db.exec(
        "CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(5) NOT NULL, d INT NOT NULL DEFAULT 3) ENGINE=InnoDB; \
         INSERT INTO t VALUES (1, 'a', 1), (2, 'b', 2)",
    )
    .await;
    let cli = alter_with_window(&db, "MODIFY v VARCHAR(50) NOT NULL, DROP COLUMN d", "12s").await;

    let dry = run_cli(&["revert", "--dsn", &db.dsn, "--table", "t"], &[]).await;
    assert!(dry.status.success(), "{dry:?}");
    let text = stdout(&dry);
    let q = |t: &str| format!("`{}`.`{t}`", db.name);
    assert!(text.contains(&format!("RENAME TABLE {} TO {}, {} TO {};", q("t"), q("_t_new"), q("_t_old"), q("t"))), "{text}");
    assert!(text.contains("add --execute"), "{text}");
    let mut tables = db.tables().await;
    tables.sort();
    assert_eq!(tables, ["_t_old", "_t_ssw_ckpt", "t"]);

    assert_refused(
        &run_cli(&["cleanup", "--dsn", &db.dsn, "--table", "t"], &[]).await,
        &["open revert window", "shadowswap finish"],
    );
    let again = run_cli(&["alter", "--dsn", &db.dsn, "--table", "t", "--alter", "ADD COLUMN z INT NULL", "--execute"], &[]).await;
    assert_refused(&again, &["open revert window", "shadowswap finish"]);

    // An update in the window keeps the dropped column's value in the old table; an insert gets its default.
    db.exec("UPDATE t SET v = 'up' WHERE id = 2; INSERT INTO t VALUES (3, 'new')").await;
    let old: Vec<(i32, String, i32)> = {
        use mysql_async::prelude::Queryable;
        let mut c = db.pool.get_conn().await.unwrap();
        c.query("SELECT id, v, d FROM _t_old ORDER BY id").await.unwrap()
    };
    assert_eq!(old, vec![(1, "a".into(), 1), (2, "up".into(), 2), (3, "new".into(), 3)]);

    let (status, out, _) = cli.finish(Duration::from_secs(60)).await;
    assert!(status.success());
    assert!(out.contains("revert window until") && out.contains("ended; reverse capture and old table dropped"), "{out}");
    db.assert_clean(&["t"]).await;
}

/// SIGTERM while `alter` waits out the window: it exits 0 saying the window stays open (nothing
/// is closed or dropped), and `finish` closes it afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_alter_leaves_the_window_open() {
    let db = TestDb::new("rv_interrupted").await;
    db.exec("CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(5) NOT NULL) ENGINE=InnoDB; INSERT INTO t VALUES (1, 'a')").await;
    let cli = alter_with_window(&db, "MODIFY v VARCHAR(50) NOT NULL", "10m").await;
    cli.signal("TERM");
    let (status, out, err) = cli.finish(Duration::from_secs(30)).await;
    assert!(status.success(), "{err}");
    assert!(out.contains("interrupted, the window stays open until") && out.contains("shadowswap finish"), "{out}");
    assert!(err.contains("stays open"), "{err}");
    db.exec("INSERT INTO t VALUES (2, 'b')").await;
    let in_old: u64 = db.scalar("SELECT COUNT(*) FROM _t_old").await;
    assert_eq!(in_old, 2, "the reverse capture still runs");
    let out = run_cli(&["finish", "--dsn", &db.dsn, "--table", "t", "--execute"], &[]).await;
    assert!(out.status.success(), "{out:?}");
    db.assert_clean(&["t"]).await;
}

/// The dry run of `alter … --revert-window` says what a revert restores and prints the reverse
/// capture; an ALTER whose reverse cannot be exact is refused up front, naming the column.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dry_run_says_what_a_revert_restores_and_inexact_reverses_are_refused() {
    let db = TestDb::new("rv_dry_run").await;
    db.exec("CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(5) NOT NULL, d INT NOT NULL DEFAULT 3, n INT NOT NULL) ENGINE=InnoDB")
        .await;
    let args = |alter: &'static str| {
        ["alter", "--dsn", &db.dsn, "--table", "t", "--alter", alter, "--revert-window", "5m"].map(String::from)
    };
    let out =
        run_cli(&args("MODIFY v VARCHAR(50) NOT NULL, DROP COLUMN d, ADD COLUMN x INT NULL").each_ref().map(|s| s.as_str()), &[])
            .await;
    assert!(out.status.success(), "{out:?}");
    let text = stdout(&out);
    for want in [
        "columns the ALTER drops (d): rows inserted in the window get their default, updated rows keep their value",
        "columns the ALTER adds (x): not carried back",
        "columns whose type changes (v)",
        "CREATE TRIGGER `ssw_rv_dry_run`.`_t_ssw_rins` AFTER INSERT ON `ssw_rv_dry_run`.`_t_new`",
        "RENAME TABLE `ssw_rv_dry_run`.`_t_old` TO `ssw_rv_dry_run`.`_t_ssw_rold`",
    ] {
        assert!(text.contains(want), "{want:?} missing:\n{text}");
    }
    let refused = run_cli(&args("DROP COLUMN n").each_ref().map(|s| s.as_str()), &[]).await;
    assert_refused(&refused, &["--revert-window cannot be used for this ALTER", "drops NOT NULL column n, which has no DEFAULT"]);
    db.assert_clean(&["t"]).await;
}
