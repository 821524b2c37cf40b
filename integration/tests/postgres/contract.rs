//! `shadowswap contract` on PostgreSQL: each constraint step done without a long write lock,
//! with real concurrent writers checked against their model and a probe's write latency bounded
//! by the lock timeout; a failed step leaves nothing half-done.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use shadowswap_engine::staged::contract;
use shadowswap_engine::MigrationConfig;
use shadowswap_integration::cli::{assert_refused, run_cli, stdout};
use shadowswap_integration::postgres::{client, PgTestDb};
use shadowswap_integration::run::fast_config;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

const LOCK_TIMEOUT: Duration = Duration::from_millis(300);
/// What a probe write may take beyond the lock timeout: the write itself, scheduling on a
/// shared 2-core machine.
const MARGIN: Duration = Duration::from_millis(400);
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

async fn fixture(name: &str) -> PgTestDb {
    let db = PgTestDb::new(name).await;
    db.exec(&format!(
        "CREATE TABLE t (id bigint PRIMARY KEY, note text NULL, email text, hits int NOT NULL DEFAULT 0);
         INSERT INTO t (id, note, email) SELECT g, '#' || g, 'e' || g FROM generate_series(1, {SEED_ROWS}) g"
    ))
    .await;
    db
}

/// Writers, each owning the ids ≡ w (mod WRITERS): updates of its existing rows' `note` and
/// inserts of new rows, never a NULL `note`, until `stop`. Any error fails the test (the model
/// expects none). Returns each writer's model: id → note.
fn writers(dsn: &str, stop: &CancellationToken) -> Vec<JoinHandle<BTreeMap<i64, String>>> {
    (0..WRITERS)
        .map(|w| {
            let (dsn, stop) = (dsn.to_string(), stop.clone());
            tokio::spawn(async move {
                let c = client(&dsn).await;
                let mut model = BTreeMap::new();
                let mut next_new = 1_000_000 + w;
                let mut i = 0i64;
                while !stop.is_cancelled() {
                    i += 1;
                    if i % 3 == 0 {
                        let note = format!("new {next_new}");
                        c.execute(
                            "INSERT INTO t (id, note, email) VALUES ($1, $2, $3)",
                            &[&next_new, &note, &format!("n{next_new}")],
                        )
                        .await
                        .unwrap_or_else(|e| panic!("writer {w} insert: {e}"));
                        model.insert(next_new, note);
                        next_new += WRITERS;
                    } else {
                        let id = 1 + w + WRITERS * ((i * 7919) % (SEED_ROWS / WRITERS));
                        if id > SEED_ROWS {
                            continue;
                        }
                        let note = format!("w{w} #{i}");
                        c.execute("UPDATE t SET note = $2 WHERE id = $1", &[&id, &note])
                            .await
                            .unwrap_or_else(|e| panic!("writer {w} update: {e}"));
                        model.insert(id, note);
                    }
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                model
            })
        })
        .collect()
}

/// A probe session writing one row every 10 ms until `stop`; returns each write's latency.
fn probe(dsn: &str, stop: &CancellationToken) -> JoinHandle<Vec<Duration>> {
    let (dsn, stop) = (dsn.to_string(), stop.clone());
    tokio::spawn(async move {
        let c = client(&dsn).await;
        let mut lat = Vec::new();
        while !stop.is_cancelled() {
            let t0 = Instant::now();
            c.execute("UPDATE t SET hits = hits + 1 WHERE id = 1", &[]).await.expect("probe write");
            lat.push(t0.elapsed());
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        lat
    })
}

/// A session holding ACCESS SHARE on `t` (an open transaction that read it) for `hold`: every
/// write-blocking statement queues behind it, and every write behind that, until the lock
/// timeout ends the wait.
fn blocker(dsn: &str, hold: Duration) -> JoinHandle<()> {
    let dsn = dsn.to_string();
    tokio::spawn(async move {
        let c = client(&dsn).await;
        c.batch_execute("BEGIN; SELECT count(*) FROM t WHERE id = 1").await.unwrap();
        tokio::time::sleep(hold).await;
        c.batch_execute("COMMIT").await.unwrap();
    })
}

/// Runs `alter` as a contract while writers, a probe and (for `block`) a blocking reader run;
/// checks the probe's latency and the table against the writers' model. Returns the report.
async fn contract_under_load(db: &PgTestDb, alter: &str, block: Option<Duration>) -> contract::ContractReport {
    let stop = CancellationToken::new();
    let ws = writers(&db.dsn, &stop);
    let p = probe(&db.dsn, &stop);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let b = block.map(|hold| blocker(&db.dsn, hold));
    // Let the blocker take its lock first.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let d = db.dialect().await;
    let report = contract::run(&d, &db.table("t"), alter, &config(), &CancellationToken::new()).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.cancel();
    let lat = p.await.unwrap();
    let mut model = BTreeMap::new();
    for w in ws {
        model.extend(w.await.unwrap());
    }
    if let Some(b) = b {
        b.await.unwrap();
    }
    let report = report.unwrap_or_else(|e| panic!("contract {alter}: {e}"));
    let max = lat.iter().max().copied().unwrap_or_default();
    assert!(lat.len() > 20, "the probe wrote during the contract ({} writes)", lat.len());
    assert!(max < LOCK_TIMEOUT + MARGIN, "a probe write took {max:?} (lock timeout {LOCK_TIMEOUT:?}); report {report:?}");
    // Every row as the model says: seed rows not touched keep '#id'.
    let rows = db.text_rows("SELECT id, note FROM t ORDER BY id").await;
    let mut expected: BTreeMap<i64, String> = (1..=SEED_ROWS).map(|i| (i, format!("#{i}"))).collect();
    expected.extend(model);
    let got: BTreeMap<i64, String> =
        rows.into_iter().map(|r| (r[0].as_deref().unwrap().parse().unwrap(), r[1].clone().expect("no NULL note"))).collect();
    assert_eq!(got.len(), expected.len(), "row count");
    assert!(got == expected, "the table differs from the writers' model");
    report
}

async fn constraints(db: &PgTestDb) -> Vec<String> {
    db.text_rows("SELECT conname || ':' || contype::text || ':' || convalidated::text FROM pg_constraint WHERE conrelid = 't'::regclass ORDER BY 1")
        .await
        .into_iter()
        .map(|r| r[0].clone().unwrap())
        .collect()
}

async fn indexes(db: &PgTestDb) -> Vec<String> {
    db.text_rows(
        "SELECT c.relname || ':' || i.indisvalid::text FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid \
         WHERE i.indrelid = 't'::regclass ORDER BY 1",
    )
    .await
    .into_iter()
    .map(|r| r[0].clone().unwrap())
    .collect()
}

#[tokio::test]
async fn set_not_null_under_writers_and_a_blocker_never_blocks_writes_past_the_lock_timeout() {
    let db = fixture("sc_pg_not_null").await;
    let report = contract_under_load(&db, "ALTER COLUMN note SET NOT NULL", Some(Duration::from_millis(1500))).await;
    assert_eq!(
        db.scalar("SELECT attnotnull::text FROM pg_attribute WHERE attrelid = 't'::regclass AND attname = 'note'")
            .await
            .as_deref(),
        Some("true")
    );
    // The helper check is gone: only the primary key remains.
    assert_eq!(constraints(&db).await, vec!["t_pkey:p:true"]);
    let (_, _, attempts) = &report.steps[0];
    assert!(*attempts > 1, "the blocker made a statement wait out its lock timeout and retry: {report:?}");
}

#[tokio::test]
async fn a_null_fails_the_step_cleanly() {
    let db = fixture("sc_pg_null").await;
    db.exec("UPDATE t SET note = NULL WHERE id = 777").await;
    let d = db.dialect().await;
    let err = contract::run(&d, &db.table("t"), "ALTER COLUMN note SET NOT NULL", &config(), &CancellationToken::new())
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("failed and was undone") && err.contains("violated by some row"), "{err}");
    assert_eq!(constraints(&db).await, vec!["t_pkey:p:true"], "no NOT VALID check left");
    assert_eq!(
        db.scalar("SELECT attnotnull::text FROM pg_attribute WHERE attrelid = 't'::regclass AND attname = 'note'")
            .await
            .as_deref(),
        Some("false")
    );
    // A killed run's NOT VALID check is dropped first the next time.
    db.exec(
        "UPDATE t SET note = 'x' WHERE id = 777; ALTER TABLE t ADD CONSTRAINT _t_note_ssw_nn CHECK (note IS NOT NULL) NOT VALID",
    )
    .await;
    let plan = contract::plan(&d, &db.table("t"), "ALTER COLUMN note SET NOT NULL", &config()).await.unwrap();
    assert!(plan.steps[0].statements[0].ends_with(r#"DROP CONSTRAINT IF EXISTS "_t_note_ssw_nn""#), "{}", plan.render());
    contract::run(&d, &db.table("t"), "ALTER COLUMN note SET NOT NULL", &config(), &CancellationToken::new()).await.unwrap();
    assert_eq!(constraints(&db).await, vec!["t_pkey:p:true"]);
    let not_null =
        db.scalar("SELECT attnotnull::text FROM pg_attribute WHERE attrelid = 't'::regclass AND attname = 'note'").await;
    assert_eq!(not_null.as_deref(), Some("true"));
}

#[tokio::test]
async fn unique_concurrently_under_writers_and_duplicates_leave_no_invalid_index() {
    let db = fixture("sc_pg_unique").await;
    db.exec("UPDATE t SET email = 'dup' WHERE id IN (10, 20)").await;
    let d = db.dialect().await;
    let err =
        contract::run(&d, &db.table("t"), "ADD CONSTRAINT t_email_key UNIQUE (email)", &config(), &CancellationToken::new())
            .await
            .unwrap_err()
            .to_string();
    assert!(err.contains("is duplicated"), "{err}");
    assert_eq!(indexes(&db).await, vec!["t_pkey:true"], "the invalid index was removed");

    // An INVALID index left by someone's failed build of the same name is dropped first.
    let _ = db.client.batch_execute("CREATE UNIQUE INDEX CONCURRENTLY t_email_key ON t (email)").await;
    assert_eq!(indexes(&db).await, vec!["t_email_key:false", "t_pkey:true"]);
    db.exec("UPDATE t SET email = 'e20' WHERE id = 20").await;
    let plan = contract::plan(&d, &db.table("t"), "ADD CONSTRAINT t_email_key UNIQUE (email)", &config()).await.unwrap();
    assert!(plan.steps[0].statements[0].starts_with("DROP INDEX CONCURRENTLY IF EXISTS"), "{}", plan.render());
    assert_eq!(plan.steps[0].max_blocking, LOCK_TIMEOUT * 31, "one write-blocking statement");

    contract_under_load(&db, "ADD CONSTRAINT t_email_key UNIQUE (email)", None).await;
    assert_eq!(indexes(&db).await, vec!["t_email_key:true", "t_pkey:true"]);
    assert_eq!(constraints(&db).await, vec!["t_email_key:u:true", "t_pkey:p:true"]);
}

#[tokio::test]
async fn foreign_key_not_valid_then_validate() {
    let db = fixture("sc_pg_fk").await;
    db.exec(&format!(
        "CREATE TABLE parent (id bigint PRIMARY KEY); INSERT INTO parent SELECT g FROM generate_series(1, {SEED_ROWS}) g;
         ALTER TABLE t ADD COLUMN parent_id bigint; UPDATE t SET parent_id = id"
    ))
    .await;
    let d = db.dialect().await;
    let alter = "ADD CONSTRAINT t_parent_fk FOREIGN KEY (parent_id) REFERENCES parent (id) ON DELETE CASCADE";
    // An orphan: the validation fails, the NOT VALID constraint is dropped again.
    db.exec("UPDATE t SET parent_id = 99999999 WHERE id = 5").await;
    let err = contract::run(&d, &db.table("t"), alter, &config(), &CancellationToken::new()).await.unwrap_err().to_string();
    assert!(err.contains("violates foreign key constraint"), "{err}");
    assert_eq!(constraints(&db).await, vec!["t_pkey:p:true"]);
    db.exec("UPDATE t SET parent_id = 5 WHERE id = 5").await;
    let report = contract_under_load(&db, alter, Some(Duration::from_millis(800))).await;
    assert_eq!(report.steps.len(), 1);
    assert_eq!(constraints(&db).await, vec!["t_parent_fk:f:true", "t_pkey:p:true"], "validated");
}

#[tokio::test]
async fn check_validation_scans_without_blocking_writes() {
    let db = fixture("sc_pg_check").await;
    // A check slow to evaluate (5 ms on every 100th row: the validation of 20,000 rows takes
    // more than 1 s): were it validated under ACCESS EXCLUSIVE, the probe would wait for all of it.
    db.exec(
        "CREATE FUNCTION slow_ok(bigint) RETURNS boolean LANGUAGE plpgsql IMMUTABLE AS
         $$ BEGIN IF $1 % 100 = 0 THEN PERFORM pg_sleep(0.005); END IF; RETURN $1 > 0; END $$",
    )
    .await;
    let t0 = Instant::now();
    let report = contract_under_load(&db, "ADD CONSTRAINT t_slow CHECK (slow_ok(id))", None).await;
    assert!(t0.elapsed() > LOCK_TIMEOUT + MARGIN, "the validation took long enough to tell: {report:?}");
    assert_eq!(constraints(&db).await, vec!["t_pkey:p:true", "t_slow:c:true"]);
}

#[tokio::test]
async fn dry_run_and_refusals_through_the_cli() {
    let db = fixture("sc_pg_cli").await;
    let args = ["contract", "--dsn", &db.dsn, "--table", "t", "--alter", "ALTER COLUMN note SET NOT NULL, ADD UNIQUE (email)"];
    let out = run_cli(&[&args[..], &["--cut-over-lock-timeout", "250ms", "--cut-over-retries", "3"]].concat(), &[]).await;
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    for phrase in [
        "step 1: ALTER COLUMN note SET NOT NULL",
        r#"ALTER TABLE "public"."t" ADD CONSTRAINT "_t_note_ssw_nn" CHECK ("note" IS NOT NULL) NOT VALID;"#,
        r#"ALTER TABLE "public"."t" VALIDATE CONSTRAINT "_t_note_ssw_nn";"#,
        "blocks writes at most: 3000 ms",
        "step 2: ADD UNIQUE (email)",
        r#"CREATE UNIQUE INDEX CONCURRENTLY "t_email_key" ON "public"."t" ("email");"#,
        "blocks writes at most: 1000 ms",
        "add --execute",
    ] {
        assert!(text.contains(phrase), "{phrase:?} missing from\n{text}");
    }
    assert_eq!(constraints(&db).await, vec!["t_pkey:p:true"], "the dry run changed nothing");

    let out = run_cli(
        &[
            "contract",
            "--dsn",
            &db.dsn,
            "--table",
            "t",
            "--alter",
            "ALTER COLUMN note SET NOT NULL, DROP COLUMN hits",
            "--execute",
        ],
        &[],
    )
    .await;
    assert_refused(&out, &["DROP COLUMN hits", "no technique that avoids a long lock"]);
    assert_eq!(constraints(&db).await, vec!["t_pkey:p:true"], "refused before anything changed");
    // The server judges every clause (on an empty copy, rolled back) before the first step runs.
    for (alter, phrase) in [
        (
            "ALTER COLUMN note SET NOT NULL, ADD CONSTRAINT bad CHECK (no_such_fn(id) > 0)",
            "function no_such_fn(bigint) does not exist",
        ),
        (
            "ALTER COLUMN note SET NOT NULL, ADD FOREIGN KEY (id) REFERENCES nowhere (id)",
            "relation \"public.nowhere\" does not exist",
        ),
        ("ALTER COLUMN no_such_column SET NOT NULL", "column \"no_such_column\" does not exist"),
    ] {
        let out = run_cli(&["contract", "--dsn", &db.dsn, "--table", "t", "--alter", alter, "--execute"], &[]).await;
        assert_refused(&out, &["the server rejects contract clause", phrase, "nothing was changed"]);
        assert_eq!(constraints(&db).await, vec!["t_pkey:p:true"], "{alter}: nothing changed");
        let not_null =
            db.scalar("SELECT attnotnull::text FROM pg_attribute WHERE attrelid = 't'::regclass AND attname = 'note'").await;
        assert_eq!(not_null.as_deref(), Some("false"), "{alter}: step 1 did not run");
    }
    let out = run_cli(
        &["contract", "--dsn", &db.dsn, "--table", "t", "--alter", "ALTER COLUMN note SET NOT NULL; DROP TABLE t", "--execute"],
        &[],
    )
    .await;
    assert_refused(&out, &["';'"]);

    let out = run_cli(&[&args[..], &["--execute"]].concat(), &[]).await;
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout(&out).contains("contracted public.t: 2 step(s)"), "{}", stdout(&out));
    assert_eq!(constraints(&db).await, vec!["t_email_key:u:true", "t_pkey:p:true"]);
}

#[tokio::test]
async fn cancelled_while_waiting_for_a_lock_leaves_nothing() {
    let db = fixture("sc_pg_cancel").await;
    let b = blocker(&db.dsn, Duration::from_millis(2000));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let d = db.dialect().await;
    let cancel = CancellationToken::new();
    let run = {
        let (d, table, cancel) = (d.clone(), db.table("t"), cancel.clone());
        tokio::spawn(async move { contract::run(&d, &table, "ADD CONSTRAINT pos CHECK (id > 0)", &config(), &cancel).await })
    };
    // The first statement waits out its lock timeout at least once behind the blocker.
    tokio::time::sleep(LOCK_TIMEOUT * 2).await;
    cancel.cancel();
    let err = run.await.unwrap().unwrap_err();
    assert!(matches!(err, shadowswap_engine::Error::Cancelled(_)), "{err}");
    b.await.unwrap();
    assert_eq!(constraints(&db).await, vec!["t_pkey:p:true"], "nothing of the step is left");
}
