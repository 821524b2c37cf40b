//! The shadow's plain secondary indexes, built after the backfill (phase `build indexes`):
//! dropped while the shadow is empty, added back in one online `ALTER TABLE … ADD INDEX …,
//! ALGORITHM=INPLACE, LOCK=NONE` after the copy, under writers; the result is the native ALTER's
//! definition and the writers' model. A crash in the phase is resumed by the same command; the
//! resume check accepts a shadow without its deferred indexes only until the phase is done.
//!
//! Database names: `ssw_myidx_<test>`.

use mysql_async::prelude::Queryable;
use shadowswap_integration::cli::run_cli;
use shadowswap_integration::mysql::workload::{self, Model, PhaseSource, TableSpec, Workload, WorkloadConfig};
use shadowswap_integration::mysql::TestDb;
use shadowswap_integration::resume::{phase_line, ResumableRun};

/// A rebuild that also adds a composite plain index over the new column.
const ALTER: &str = "ADD COLUMN extra INT NOT NULL DEFAULT 7, ADD INDEX k_extra (extra, k), FORCE";

/// Secondary indexes of every kind the split must carry exactly (besides the sysbench `k_1`): a
/// prefix with DESC and a comment, a quoted name with a backquote, an IGNORED one, and a UNIQUE
/// one that stays during the copy.
const MORE_INDEXES: &str = "ALTER TABLE t ADD INDEX kc (c(10), k DESC) COMMENT 'prefix, desc', \
     ADD INDEX `we``ird` (pad(5), id) IGNORED, ADD UNIQUE KEY u_k_id (k, id)";

/// The plain indexes the shadow is created without, in definition order.
const DEFERRED: [&str; 4] = ["k_1", "kc", "we`ird", "k_extra"];

/// `t` (sysbench layout plus [`MORE_INDEXES`]) with `rows` rows, its native-ALTER twin `o`
/// (empty: the definition oracle), and 3 writers warmed up on `t`.
async fn setup(name: &str, rows: u64) -> (TestDb, Workload) {
    let db = quiet_setup(name, rows).await;
    let writers = start_writers(&db).await;
    (db, writers)
}

/// [`setup`] without the writers: a copy that sees no application write leaves the deferred
/// indexes to phase `build indexes` (with writers it builds them as soon as it sees their rows
/// ahead of it, `backfill::EarlyIndexes`). Run it with a fixed `--chunk-size`: adaptive chunks
/// would also take row lock waiters as a sign of life, and those are counted server-wide (other
/// tests' too).
async fn quiet_setup(name: &str, rows: u64) -> TestDb {
    let db = TestDb::new(name).await;
    let spec = TableSpec::single("t");
    spec.create(&db.pool).await.unwrap();
    db.exec(MORE_INDEXES).await;
    spec.load(&db.pool, rows, |_| {}).await.unwrap();
    db.exec(&format!("CREATE TABLE o LIKE t; ALTER TABLE o {ALTER}")).await;
    db
}

/// Three writers on `t` from its rows now; returns once they have done 100 operations.
async fn start_writers(db: &TestDb) -> Workload {
    let initial = Model::read(&db.pool, &TableSpec::single("t")).await.unwrap();
    let cfg = WorkloadConfig { writers: 3, ..WorkloadConfig::default() };
    let writers = Workload::start(&db.dsn, initial, cfg, PhaseSource::None).await.unwrap();
    writers.wait_for_ops(100).await.unwrap();
    writers
}

/// A definition without its AUTO_INCREMENT counter (the twin is empty).
fn counterless(d: String) -> String {
    d.split(' ').filter(|w| !w.starts_with("AUTO_INCREMENT=")).collect::<Vec<_>>().join(" ")
}

/// Stop the writers; `t` equals their model row for row, every row has the new column's
/// default, its definition is the native ALTER's (`o`), nothing of shadowswap's is left.
async fn assert_exact(label: &str, db: &TestDb, writers: Workload) {
    let (model, report) = writers.stop().await.unwrap_or_else(|e| panic!("[{label}] {e:#}"));
    eprintln!("[{label}] {report}");
    let verification = workload::verify(&db.pool, &model).await.unwrap();
    assert!(verification.ok(), "[{label}] {verification}\nwriters: {report}");
    let not_seven: u64 = db.scalar("SELECT COUNT(*) FROM t WHERE extra <> 7").await;
    assert_eq!(not_seven, 0, "[{label}] rows whose new column is not its default");
    let (t, o) = (counterless(db.definition("t").await), counterless(db.definition("o").await));
    assert_eq!(t, o, "[{label}] definition against the native ALTER");
    for name in DEFERRED {
        assert!(t.contains(&format!("KEY `{}`", name.replace('`', "``"))), "[{label}] {name} in {t}");
    }
    db.assert_clean(&["o", "t"]).await;
}

/// The shadow's definition now.
async fn shadow_definition(db: &TestDb) -> String {
    db.definition("_t_new").await
}

/// Under writers: the shadow is created without its plain indexes (the log names them, the
/// UNIQUE one is not among them), gets them in the phase `build indexes`, and the swapped table
/// is the native ALTER's, row for row.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deferred_indexes_under_writers_equal_a_native_alter() {
    let (db, writers) = setup("myidx_writers", 6_000).await;
    let mut run = ResumableRun::new("writers", &db.dsn, "t", ALTER, &["--chunk-size", "200"]);
    let (summary, err) = run.complete().await;
    assert_eq!(summary.resumed_from, None);
    let deferred_line = err
        .lines()
        .find(|l| l.contains("built after the backfill"))
        .unwrap_or_else(|| panic!("no line naming the deferred indexes:\n{err}"));
    assert!(deferred_line.contains(r#""indexes":"k_1, kc, we`ird, k_extra""#), "{deferred_line}");
    let [a, b] = phase_line("build indexes");
    assert!(err.lines().any(|l| l.contains(&a) && l.contains(&b)), "no phase build indexes:\n{err}");
    assert_exact("writers", &db, writers).await;
}

/// The dry run prints the DROP INDEX after the shadow's ALTER and the ADD INDEX of the phase,
/// from the builders the run executes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dry_run_shows_the_drop_and_the_online_add() {
    let db = TestDb::new("myidx_dry").await;
    TableSpec::single("t").create(&db.pool).await.unwrap();
    db.exec(MORE_INDEXES).await;
    let out = run_cli(&["alter", "--dsn", &db.dsn, "--table", "t", "--alter", ALTER], &[]).await;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    let shadow = format!("`{}`.`_t_new`", db.name);
    let drop = format!("ALTER TABLE {shadow} DROP INDEX `k_1`, DROP INDEX `kc`, DROP INDEX `we``ird`, DROP INDEX `k_extra`;");
    let add = format!(
        "ALTER TABLE {shadow} ADD KEY `k_1` (`k`), ADD KEY `kc` (`c`(10),`k` DESC) COMMENT 'prefix, desc', \
         ADD KEY `we``ird` (`pad`(5),`id`) IGNORED, ADD KEY `k_extra` (`extra`,`k`), ALGORITHM=INPLACE, LOCK=NONE;"
    );
    assert!(text.contains(&drop), "{drop}\nnot in:\n{text}");
    assert!(text.contains(&add), "{add}\nnot in:\n{text}");
    assert!(text.contains("after the backfill (phase build indexes)"), "{text}");
    assert!(!text.contains("DROP INDEX `u_k_id`") && !text.contains("DROP INDEX `PRIMARY`"), "{text}");
    db.assert_clean(&["t"]).await;
}

/// `crash@build-indexes`: the process aborts at the phase's entry, the shadow without its
/// deferred indexes (no writer during the copy, so it left them to the phase); the writers start
/// (the capture keeps the shadow in sync); the same command resumes in the phase, builds them
/// and swaps: the native ALTER's table, row for row.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_crash_while_building_indexes_is_resumed_by_the_same_command() {
    let db = quiet_setup("myidx_crash", 5_000).await;
    let mut run =
        ResumableRun::new("crash", &db.dsn, "t", ALTER, &["--chunk-size", "200", "--inject-fault", "crash@build-indexes"]);
    let (status, _, err) = run.run_to_end().await;
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(6), "aborted (SIGABRT) as a crash would: {status}\n{err}");
    let phase: String = db.scalar("SELECT phase FROM _t_ssw_ckpt").await;
    assert_eq!(phase, "build indexes");
    let shadow = shadow_definition(&db).await;
    assert!(!shadow.contains("KEY `k_1`") && shadow.contains("UNIQUE KEY `u_k_id`"), "{shadow}");
    let writers = start_writers(&db).await;
    let ops = writers.ops();
    writers.wait_for_ops(ops + 200).await.unwrap();

    let (summary, err) = run.complete().await;
    assert_eq!(summary.resumed_from.as_deref(), Some("build indexes"), "{summary:?}\n{err}");
    assert!(!err.contains("injected crash"), "not injected again on the resumed run: {err}");
    assert_exact("crash", &db, writers).await;
}

/// The resume check: a shadow whose indexes were built before the crash could record the phase
/// (the ADD done, the checkpoint still in `build indexes`) resumes and builds nothing; a shadow
/// without them in a later phase (someone dropped one) is refused, naming `shadowswap cleanup`,
/// and nothing changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_resume_check_accepts_the_built_indexes_and_refuses_missing_ones_later() {
    // Built before the checkpoint recorded it: resumes and completes.
    let db = quiet_setup("myidx_built", 3_000).await;
    let mut run =
        ResumableRun::new("built", &db.dsn, "t", ALTER, &["--chunk-size", "200", "--inject-fault", "crash@build-indexes"]);
    let (status, _, _) = run.run_to_end().await;
    assert!(!status.success());
    let writers = start_writers(&db).await;
    db.exec(
        "ALTER TABLE _t_new ADD KEY `k_1` (`k`), ADD KEY `kc` (`c`(10),`k` DESC) COMMENT 'prefix, desc', \
         ADD KEY `we``ird` (`pad`(5),`id`) IGNORED, ADD KEY `k_extra` (`extra`,`k`), ALGORITHM=INPLACE, LOCK=NONE",
    )
    .await;
    let (summary, _) = run.complete().await;
    assert_eq!(summary.resumed_from.as_deref(), Some("build indexes"));
    assert_exact("built", &db, writers).await;

    // Missing in a phase past the build: refused.
    let db = quiet_setup("myidx_missing", 3_000).await;
    let mut run =
        ResumableRun::new("missing", &db.dsn, "t", ALTER, &["--chunk-size", "200", "--inject-fault", "crash@build-indexes"]);
    let (status, _, _) = run.run_to_end().await;
    assert!(!status.success());
    let writers = start_writers(&db).await;
    let mut c = db.pool.get_conn().await.unwrap();
    c.query_drop("UPDATE _t_ssw_ckpt SET phase = 'checksum'").await.unwrap();
    drop(c);
    // The writers stop first: their inserts, through the capture, move the shadow's
    // AUTO_INCREMENT, which the definition compared below includes.
    writers.stop().await.unwrap();
    let before = shadow_definition(&db).await;
    let (status, _, err) = run.run_to_end().await;
    assert!(!status.success(), "{err}");
    let last = err.lines().last().unwrap_or_default();
    assert!(last.contains("does not have the definition this ALTER gives it") && last.contains("shadowswap cleanup"), "{last}");
    assert_eq!(shadow_definition(&db).await, before, "the refused resume changed the shadow");
    let cleaned = run_cli(&["cleanup", "--dsn", &db.dsn, "--table", "t"], &[]).await;
    assert!(cleaned.status.success(), "{}", String::from_utf8_lossy(&cleaned.stderr));
    db.assert_clean(&["o", "t"]).await;
}
