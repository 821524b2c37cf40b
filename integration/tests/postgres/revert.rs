//! The revert window on PostgreSQL (`--revert-window`, `shadowswap revert`, `shadowswap finish`;
//! docs/revert.md): the reverse capture starts in the swap transaction; a revert under
//! concurrent writers restores the old definition, with every row written in between and what the
//! swap carried over (a view, index and statistics names, the identity sequence's value, the
//! comment) carried back; a write the old definition cannot take succeeds and `revert` refuses;
//! `finish` and the window's end remove everything.

use std::time::Duration;

use shadowswap_engine::config::{CutOverConfig, DdlConfig};
use shadowswap_engine::revert::{self, WindowEnd};
use shadowswap_engine::runner::Outcome;
use shadowswap_engine::{Phase, Runner};
use shadowswap_integration::cli::{assert_refused, run_cli, stdout, Spawned};
use shadowswap_integration::postgres::workload::{self, Model, PgTable, Workload, WorkloadConfig};
use shadowswap_integration::postgres::PgTestDb;
use shadowswap_integration::run::chunked_config;
use tokio_util::sync::CancellationToken;

/// What the swap carries over and the revert must carry back, as text to compare.
async fn carried(db: &PgTestDb) -> Vec<Vec<Option<String>>> {
    let mut out = db.definition("public.t").await;
    for q in [
        "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' AND tablename = 't' ORDER BY 1",
        "SELECT stxname::text FROM pg_statistic_ext WHERE stxrelid = 'public.t'::regclass ORDER BY 1",
        "SELECT obj_description('public.t'::regclass, 'pg_class')",
        "SELECT pg_get_viewdef('public.tv'::regclass)",
        "SELECT count(*)::text FROM pg_depend d JOIN pg_rewrite r ON r.oid = d.objid WHERE d.refobjid = 'public.t'::regclass \
         AND r.ev_class = 'public.tv'::regclass",
    ] {
        out.extend(db.text_rows(q).await);
    }
    out
}

/// A revert within the window while writers run single statements and transactions at every
/// isolation level through the swap, the window and the swap back: the old definition is back,
/// the table equals the writers' model row by row, the view and names the swap carried over
/// are carried back, and nothing of shadowswap's is left. Prints the revert's writes-blocked
/// figure.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn revert_under_writers_restores_every_write_and_the_dependents() {
    let db = PgTestDb::new("pgrv_writers").await;
    let table = PgTable::single("t");
    table.create(&db.client).await.unwrap();
    table.load(&db.client, 5_000).await.unwrap();
    db.exec(
        "CREATE VIEW public.tv AS SELECT id, c FROM public.t; CREATE STATISTICS public.t_st ON id, c FROM public.t; \
         COMMENT ON TABLE public.t IS 'orders'",
    )
    .await;
    let before = carried(&db).await;
    let initial = Model::read(&db.client, &table).await.unwrap();

    let mut cfg = chunked_config(Some(500));
    cfg.revert_window = Some(Duration::from_secs(600));
    cfg.cut_over.poll_interval = Duration::from_millis(50);
    let runner = Runner::new(db.dialect().await, cfg);
    let mut progress = runner.progress();
    let writers = Workload::start(&db.dsn, initial, WorkloadConfig::default(), Some(runner.progress())).await.unwrap();
    writers.wait_for_ops(200).await.unwrap();

    let t = db.table("t");
    let run = {
        let t = t.clone();
        tokio::spawn(async move { runner.run(&t, "ADD COLUMN extra int NOT NULL DEFAULT 7, ALTER COLUMN v TYPE bigint").await })
    };
    progress
        .wait_for(|p| {
            p.phase == Phase::RevertWindow && p.waiting_for.as_deref().is_some_and(|w| w.starts_with("revert window until"))
        })
        .await
        .unwrap();
    assert_ne!(carried(&db).await, before, "the new table serves in the window");
    let at_window = writers.ops();
    writers.wait_for_ops(at_window + 500).await.unwrap();

    let d = db.dialect().await;
    let cut_over = CutOverConfig { blocker_wait: Duration::from_secs(5), ..CutOverConfig::default() };
    let report = revert::revert(&*d, &t, &cut_over, &DdlConfig::default(), true, &CancellationToken::new())
        .await
        .unwrap_or_else(|e| panic!("revert failed: {e}"));
    let stats = report.cut_over.expect("swapped back");
    eprintln!(
        "[pgrv_writers] revert: {} attempt(s), application writes blocked {} ms",
        stats.attempts,
        stats.swap_time.as_millis()
    );
    let at_revert = writers.ops();
    writers.wait_for_ops(at_revert + 300).await.unwrap();
    let (model, wreport) = writers.stop().await.unwrap_or_else(|e| panic!("{e:#}"));
    eprintln!("[pgrv_writers] {wreport}");
    assert!(wreport.ops_during("revert window") > 0, "no writes in the window: {wreport}");

    let Outcome::Swapped(summary) = run.await.unwrap().unwrap() else { panic!("expected a swap") };
    assert_eq!(summary.revert_window.map(|(_, end)| end), Some(WindowEnd::Reverted));

    let verification = workload::verify(&db.client, &model).await.unwrap();
    assert!(verification.ok(), "{verification}\nwriters: {wreport}");
    assert_eq!(carried(&db).await, before, "definition, names, view and comment carried back");
    db.assert_clean(&["t"]).await;
}

/// `alter … --revert-window` in the background, until it waits out the window.
async fn alter_with_window(db: &PgTestDb, alter: &str, window: &str) -> Spawned {
    let mut cli = Spawned::watched(
        &db.name,
        ["alter", "--dsn", &db.dsn, "--table", "t", "--alter", alter, "--execute", "--revert-window", window],
    );
    cli.wait_for_stderr("revert window open until", Duration::from_secs(60)).await;
    cli
}

/// A value the old column cannot hold is written to the new table: the write succeeds, the
/// reverse capture records why, `revert` refuses (dry run and --execute) naming `finish`, and
/// `finish` keeps the new table with the write and removes everything else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_the_old_table_cannot_take_succeeds_and_revert_refuses() {
    let db = PgTestDb::new("pgrv_broken").await;
    db.exec("CREATE TABLE public.t (id int PRIMARY KEY, v varchar(5) NOT NULL); INSERT INTO public.t VALUES (1, 'a'), (2, 'b')")
        .await;
    let cli = alter_with_window(&db, "ALTER COLUMN v TYPE varchar(50)", "10m").await;
    db.exec("INSERT INTO public.t VALUES (3, 'fits'), (4, 'far too long for the old column')").await;
    let broken = db.scalar("SELECT revert_broken FROM public._t_ssw_ckpt").await;
    assert!(broken.as_deref().is_some_and(|b| b.contains("an insert not carried back") && b.contains("too long")), "{broken:?}");
    for extra in [&[][..], &["--execute"][..]] {
        let mut args = vec!["revert", "--dsn", &db.dsn, "--table", "t"];
        args.extend_from_slice(extra);
        assert_refused(&run_cli(&args, &[]).await, &["a revert would lose them", "shadowswap finish"]);
    }
    let dry = run_cli(&["finish", "--dsn", &db.dsn, "--table", "t"], &[]).await;
    assert!(stdout(&dry).contains("DROP TABLE IF EXISTS \"public\".\"_t_old\";"), "{}", stdout(&dry));
    let out = run_cli(&["finish", "--dsn", &db.dsn, "--table", "t", "--execute"], &[]).await;
    assert!(out.status.success(), "{out:?}");
    let (status, out, _) = cli.finish(Duration::from_secs(30)).await;
    assert!(status.success());
    assert!(out.contains("closed by `shadowswap finish`"), "{out}");
    assert_eq!(db.count("SELECT count(*) FROM public.t WHERE length(v) > 5").await, 1);
    db.assert_clean(&["t"]).await;
}

/// A short window ends by itself: the waiting run closes it (reverse capture and old table
/// dropped), and the new table keeps the writes made in the window.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_window_closes_at_its_end() {
    let db = PgTestDb::new("pgrv_expiry").await;
    db.exec("CREATE TABLE public.t (id int PRIMARY KEY, v int NOT NULL); INSERT INTO public.t SELECT g, g FROM generate_series(1, 100) g")
        .await;
    let mut cfg = chunked_config(None);
    cfg.revert_window = Some(Duration::from_secs(3));
    cfg.cut_over.poll_interval = Duration::from_millis(50);
    let runner = Runner::new(db.dialect().await, cfg);
    let mut progress = runner.progress();
    let run = tokio::spawn(async move { runner.run(&TestTable::t(), "ALTER COLUMN v TYPE bigint").await });
    progress.wait_for(|p| p.waiting_for.as_deref().is_some_and(|w| w.starts_with("revert window until"))).await.unwrap();
    db.exec("INSERT INTO public.t VALUES (101, 101); UPDATE public.t SET v = 0 WHERE id = 1").await;
    assert_eq!(db.count("SELECT count(*) FROM public._t_old WHERE id = 101 OR (id = 1 AND v = 0)").await, 2);
    let Outcome::Swapped(summary) = run.await.unwrap().unwrap() else { panic!("expected a swap") };
    assert_eq!(summary.revert_window.map(|(_, end)| end), Some(WindowEnd::Expired));
    assert_eq!(db.count("SELECT count(*) FROM public.t").await, 101);
    db.assert_clean(&["t"]).await;
}

/// `public.t`.
struct TestTable;

impl TestTable {
    fn t() -> shadowswap_engine::TableRef {
        shadowswap_engine::TableRef::new("public", "t")
    }
}

/// A `TRUNCATE` of the new table in the window cannot be carried back: the reverse capture's
/// statement trigger records it, `revert` refuses naming `finish`, and the waiting run notices
/// the `finish` that follows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truncate_in_the_window_makes_revert_refuse() {
    let db = PgTestDb::new("pgrv_truncate").await;
    db.exec("CREATE TABLE public.t (id int PRIMARY KEY, v int NOT NULL); INSERT INTO public.t SELECT g, g FROM generate_series(1, 100) g")
        .await;
    let mut cfg = chunked_config(None);
    cfg.revert_window = Some(Duration::from_secs(600));
    cfg.cut_over.poll_interval = Duration::from_millis(50);
    let runner = Runner::new(db.dialect().await, cfg);
    let mut progress = runner.progress();
    let run = tokio::spawn(async move { runner.run(&TestTable::t(), "ALTER COLUMN v TYPE bigint").await });
    progress.wait_for(|p| p.waiting_for.as_deref().is_some_and(|w| w.starts_with("revert window until"))).await.unwrap();
    db.exec("TRUNCATE public.t").await;
    let d = db.dialect().await;
    let never = CancellationToken::new();
    let e =
        revert::revert(&*d, &TestTable::t(), &CutOverConfig::default(), &DdlConfig::default(), true, &never).await.unwrap_err();
    assert!(e.to_string().contains("a TRUNCATE of the table") && e.to_string().contains("shadowswap finish"), "{e}");
    revert::finish(&*d, &TestTable::t(), &DdlConfig::default(), true, &never).await.unwrap();
    let Outcome::Swapped(summary) = run.await.unwrap().unwrap() else { panic!("expected a swap") };
    assert_eq!(summary.revert_window.map(|(_, end)| end), Some(WindowEnd::Finished));
    db.assert_clean(&["t"]).await;
}
