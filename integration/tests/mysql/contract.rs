//! `shadowswap contract` on MariaDB: a clause the server can apply in place without blocking
//! writes (`ALGORITHM=INSTANT`, else `INPLACE, LOCK=NONE`) runs that way under a short
//! `lock_wait_timeout` with retries, with real concurrent writers checked against their model and
//! a probe's write latency bounded by the lock timeout; what the server cannot do that way goes
//! through the shadow copy; a failed step leaves the table as it was.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use shadowswap_engine::staged::contract::{self, SHADOW_COPY};
use shadowswap_engine::MigrationConfig;
use shadowswap_integration::cli::{assert_refused, run_cli, stdout};
use shadowswap_integration::mysql::TestDb;
use shadowswap_integration::run::fast_config;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// MariaDB's `lock_wait_timeout` counts whole seconds.
const LOCK_TIMEOUT: Duration = Duration::from_secs(1);
/// What a probe write may take beyond the lock timeout: the write itself, scheduling on a
/// shared 2-core machine.
const MARGIN: Duration = Duration::from_millis(600);
const SEED_ROWS: i64 = 20_000;
const WRITERS: i64 = 3;

fn config() -> MigrationConfig {
    let mut c = fast_config();
    c.cut_over.lock_timeout = LOCK_TIMEOUT;
    c.cut_over.retries = 30;
    c.cut_over.backoff_min = Duration::from_millis(20);
    c.cut_over.backoff_max = Duration::from_millis(200);
    c
}

async fn fixture(name: &str) -> TestDb {
    let db = TestDb::new(name).await;
    db.exec(
        "CREATE TABLE t (id bigint PRIMARY KEY, note varchar(64) NULL, c int NOT NULL DEFAULT 1, hits int NOT NULL DEFAULT 0) \
         ENGINE=InnoDB",
    )
    .await;
    db.exec(&format!("INSERT INTO t (id, note) SELECT seq, concat('#', seq) FROM seq_1_to_{SEED_ROWS}")).await;
    db
}

/// A deadlock (1213) or lock wait timeout (1205): the server rolled the statement back (as in
/// the workload's model, `shadowswap_integration::mysql::workload`).
fn rolled_back(r: &Result<(), mysql_async::Error>) -> bool {
    matches!(r, Err(mysql_async::Error::Server(s)) if s.code == 1213 || s.code == 1205)
}

/// Writers, each owning the ids ≡ w (mod WRITERS): updates of its rows' `note` and inserts of new
/// rows, never a NULL `note`, until `stop`. A statement rolled back ([`rolled_back`]) is counted
/// and not applied; any other error fails the test. Returns each writer's model (id → note)
/// and its rollbacks.
fn writers(db: &TestDb, stop: &CancellationToken) -> Vec<JoinHandle<(BTreeMap<i64, String>, u32)>> {
    (0..WRITERS)
        .map(|w| {
            let (pool, stop) = (db.pool.clone(), stop.clone());
            tokio::spawn(async move {
                let mut c = pool.get_conn().await.unwrap();
                let mut model = BTreeMap::new();
                let mut next_new = 1_000_000 + w;
                let mut i = 0i64;
                let mut rollbacks = 0u32;
                while !stop.is_cancelled() {
                    i += 1;
                    let (id, note, r) = if i % 3 == 0 {
                        let note = format!("new {next_new}");
                        let r = c.exec_drop("INSERT INTO t (id, note) VALUES (?, ?)", (next_new, &note)).await;
                        (next_new, note, r)
                    } else {
                        let id = 1 + w + WRITERS * ((i * 7919) % (SEED_ROWS / WRITERS));
                        if id > SEED_ROWS {
                            continue;
                        }
                        let note = format!("w{w} #{i}");
                        let r = c.exec_drop("UPDATE t SET note = ? WHERE id = ?", (&note, id)).await;
                        (id, note, r)
                    };
                    if rolled_back(&r) {
                        rollbacks += 1;
                    } else {
                        r.unwrap_or_else(|e| panic!("writer {w}: {e}"));
                        if id == next_new {
                            next_new += WRITERS;
                        }
                        model.insert(id, note);
                    }
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                (model, rollbacks)
            })
        })
        .collect()
}

/// A probe session writing one row every 10 ms until `stop`; returns each write's latency (a
/// write rolled back as a deadlock victim by the shadow copy's locking reads included, and
/// counted) and the rollbacks.
fn probe(db: &TestDb, stop: &CancellationToken) -> JoinHandle<(Vec<Duration>, u32)> {
    let (pool, stop) = (db.pool.clone(), stop.clone());
    tokio::spawn(async move {
        let mut c = pool.get_conn().await.unwrap();
        let (mut lat, mut rollbacks) = (Vec::new(), 0);
        while !stop.is_cancelled() {
            let t0 = Instant::now();
            let r = c.query_drop("UPDATE t SET hits = hits + 1 WHERE id = 1").await;
            lat.push(t0.elapsed());
            if rolled_back(&r) {
                rollbacks += 1;
            } else {
                r.expect("probe write");
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        (lat, rollbacks)
    })
}

/// A session holding a shared metadata lock on `t` (an open transaction that read it) for
/// `hold`: the ALTER's exclusive metadata lock waits behind it, and every write behind that, until
/// `lock_wait_timeout` ends the wait.
fn blocker(db: &TestDb, hold: Duration) -> JoinHandle<()> {
    let pool = db.pool.clone();
    tokio::spawn(async move {
        let mut c = pool.get_conn().await.unwrap();
        c.query_drop("START TRANSACTION").await.unwrap();
        c.query_drop("SELECT id FROM t WHERE id = 1").await.unwrap();
        tokio::time::sleep(hold).await;
        c.query_drop("COMMIT").await.unwrap();
    })
}

/// Runs `alter` as a contract under writers, a probe and (for `block`) a blocker; checks the
/// probe's latency and the table against the writers' model. Returns the report and the
/// writers' rollbacks.
async fn contract_under_load(db: &TestDb, alter: &str, block: Option<Duration>) -> (contract::ContractReport, u32) {
    let stop = CancellationToken::new();
    let ws = writers(db, &stop);
    let probe = probe(db, &stop);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let b = block.map(|hold| blocker(db, hold));
    tokio::time::sleep(Duration::from_millis(100)).await;
    let d = db.dialect().await;
    let report = contract::run(&d, &db.table("t"), alter, &config(), &CancellationToken::new()).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.cancel();
    let (lat, probe_rollbacks) = probe.await.unwrap();
    let (mut model, mut rollbacks) = (BTreeMap::new(), 0);
    for w in ws {
        let (m, r) = w.await.unwrap();
        model.extend(m);
        rollbacks += r;
    }
    if let Some(b) = b {
        b.await.unwrap();
    }
    let report = report.unwrap_or_else(|e| panic!("contract {alter}: {e}"));
    let max = lat.iter().max().copied().unwrap_or_default();
    assert!(lat.len() > 20, "the probe wrote during the contract ({} writes)", lat.len());
    assert!(max < LOCK_TIMEOUT + MARGIN, "a probe write took {max:?} (lock timeout {LOCK_TIMEOUT:?}); report {report:?}");
    let rows: Vec<(i64, Option<String>)> =
        db.pool.get_conn().await.unwrap().query("SELECT id, note FROM t ORDER BY id").await.unwrap();
    let mut expected: BTreeMap<i64, String> = (1..=SEED_ROWS).map(|i| (i, format!("#{i}"))).collect();
    expected.extend(model);
    let got: BTreeMap<i64, String> = rows.into_iter().map(|(id, note)| (id, note.expect("no NULL note"))).collect();
    assert_eq!(got.len(), expected.len(), "row count");
    assert!(got == expected, "the table differs from the writers' model");
    (report, rollbacks + probe_rollbacks)
}

async fn note_nullable(db: &TestDb) -> String {
    db.scalar("SELECT IS_NULLABLE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 't' AND COLUMN_NAME = 'note'")
        .await
}

#[tokio::test]
async fn modify_not_null_in_place_under_writers_and_a_blocker() {
    let db = fixture("sc_my_not_null").await;
    let alter = "MODIFY note varchar(64) NOT NULL";
    let d = db.dialect().await;
    let plan = contract::plan(&d, &db.table("t"), alter, &config()).await.unwrap();
    assert_eq!(plan.steps[0].technique, "ALGORITHM=INPLACE, LOCK=NONE (built in place while writes go on)", "{}", plan.render());
    let (report, rollbacks) = contract_under_load(&db, alter, Some(Duration::from_millis(2500))).await;
    assert_eq!(rollbacks, 0, "in place: no writer statement rolled back");
    assert_eq!(note_nullable(&db).await, "NO");
    let (_, _, attempts) = &report.steps[0];
    assert!(*attempts > 1, "the blocker made the ALTER wait out its lock_wait_timeout and retry: {report:?}");
    db.assert_clean(&["t"]).await;
}

#[tokio::test]
async fn a_null_fails_the_step_and_leaves_the_table_as_it_was() {
    let db = fixture("sc_my_null").await;
    db.exec("UPDATE t SET note = NULL WHERE id = 777").await;
    let before = db.definition("t").await;
    let d = db.dialect().await;
    let t0 = Instant::now();
    let err = contract::run(&d, &db.table("t"), "MODIFY note varchar(64) NOT NULL", &config(), &CancellationToken::new())
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("failed and was undone"), "{err}");
    assert!(t0.elapsed() < Duration::from_secs(20), "fails fast");
    assert_eq!(db.definition("t").await, before);
    assert_eq!(note_nullable(&db).await, "YES");
    db.assert_clean(&["t"]).await;
}

#[tokio::test]
async fn a_step_the_server_cannot_do_in_place_goes_through_the_shadow_copy() {
    let db = fixture("sc_my_copy").await;
    // Changing a column's type needs a copy (not INSTANT, not INPLACE with LOCK=NONE).
    let alter = "MODIFY c bigint NOT NULL DEFAULT 1";
    let d = db.dialect().await;
    let plan = contract::plan(&d, &db.table("t"), alter, &config()).await.unwrap();
    assert_eq!(plan.steps[0].technique, SHADOW_COPY, "{}", plan.render());
    // The shadow copy's locking reads may make a writer's statement a deadlock victim: rolled
    // back, as the workload's model allows, never applied half.
    let (report, _rollbacks) = contract_under_load(&db, alter, None).await;
    assert_eq!(report.steps.len(), 1);
    assert!(db.definition("t").await.contains("`c` bigint(20) NOT NULL DEFAULT 1"), "{}", db.definition("t").await);
    db.assert_clean(&["t"]).await;
}

#[tokio::test]
async fn dry_run_through_the_cli_changes_nothing() {
    let db = fixture("sc_my_cli").await;
    let before = db.definition("t").await;
    let alter = "MODIFY note varchar(64) NOT NULL, ADD INDEX ix_note (note), MODIFY c bigint NOT NULL DEFAULT 1";
    let out = run_cli(
        &[
            "contract",
            "--dsn",
            &db.dsn,
            "--table",
            "t",
            "--alter",
            alter,
            "--cut-over-lock-timeout",
            "1s",
            "--cut-over-retries",
            "2",
        ],
        &[],
    )
    .await;
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    let t = format!("`{}`.`t`", db.name);
    for phrase in [
        format!("SET STATEMENT lock_wait_timeout = 1 FOR ALTER TABLE {t} MODIFY note varchar(64) NOT NULL, ALGORITHM=INPLACE, LOCK=NONE;"),
        "blocks writes at most: 6000 ms".to_string(),
        format!("SET STATEMENT lock_wait_timeout = 1 FOR ALTER TABLE {t} ADD INDEX ix_note (note), ALGORITHM="),
        "step 3: MODIFY c bigint NOT NULL DEFAULT 1\n  technique: shadow copy".to_string(),
        "add --execute".to_string(),
    ] {
        assert!(text.contains(&phrase), "{phrase:?} missing from\n{text}");
    }
    assert_eq!(db.definition("t").await, before);
    // The server judges every clause (on the empty probe copy) before the first step runs.
    let out = run_cli(
        &[
            "contract",
            "--dsn",
            &db.dsn,
            "--table",
            "t",
            "--alter",
            "MODIFY note varchar(64) NOT NULL, MODIFY no_such int",
            "--execute",
        ],
        &[],
    )
    .await;
    assert_refused(&out, &["the server rejects contract clause \"MODIFY no_such int\"", "Unknown column"]);
    assert_eq!(db.definition("t").await, before, "step 1 did not run");
    db.assert_clean(&["t"]).await;
}
