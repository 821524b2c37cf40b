//! PostgreSQL change capture against the real server: every write path reaches the shadow table
//! and the migrated table ends byte-identical to what the application wrote.
//!
//! - A column named after the old fixed dollar-quote tag cannot run SQL from inside a capture
//!   function (`check_function_bodies = off`, non-superuser owner): no role changes.
//! - Writes from `session_replication_role = replica` sessions, including a real logical
//!   replication subscription's apply worker, are captured (triggers fire `ALWAYS`).
//! - Key updates to a value the key's unique index calls equal (`'bob'` → `'Bob'` under a
//!   nondeterministic collation, numeric `1.5` → `1.50`, citext `'Bob'` → `'bob'`) are replayed.
//! - A `TRUNCATE` during the backfill or while the run waits before its cut-over is not undone.
//! - Keys of extension types (`citext`, `ltree`) whose operators live outside `pg_catalog`.
//!
//! Each test holds its run before the cut-over ([`PostponedRun`]) or blocks a chunk with a row
//! lock, and waits on events (a phase, a lock wait, a replicated row), never on time.

use std::future::Future;
use std::time::{Duration, Instant};

use shadowswap_engine::{Outcome, Phase, Runner};
use shadowswap_integration::postgres::{client, server_dsn, PgTestDb};
use shadowswap_integration::run::{chunked_config, fast_config, PostponedRun};
use tokio_postgres::Client;

/// The ALTER of every test here: a new column with a default (a real copy).
const ALTER: &str = "ADD COLUMN extra int DEFAULT 7";

type Rows = Vec<Vec<Option<String>>>;

/// Poll `query` (one boolean) every 20 ms until it is true; panics after `within`.
async fn wait_until(c: &Client, query: &str, within: Duration, what: &str) {
    let start = Instant::now();
    loop {
        let done: bool = c.query_one(query, &[]).await.unwrap_or_else(|e| panic!("{query}: {e}")).get(0);
        if done {
            return;
        }
        assert!(start.elapsed() < within, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Start a held run of [`ALTER`] on `table` (chunks of 7 rows).
async fn held_run(db: &PgTestDb, table: &str) -> PostponedRun {
    let cfg = chunked_config(Some(7));
    PostponedRun::start(db.dialect().await, cfg, db.table(table), ALTER, &db.name, Duration::from_secs(120)).await
}

async fn exec_all(c: &Client, stmts: &[&str]) {
    for s in stmts {
        c.batch_execute(s).await.unwrap_or_else(|e| panic!("{s}: {e}"));
    }
}

// ---------------------------------------------------------------------------------------------
// Defect 1, second vector: the capture functions' dollar quote.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_column_named_after_a_dollar_tag_cannot_run_sql_from_the_capture_functions() {
    let db = PgTestDb::new("pgcap_dollar").await;
    let owner = "ssw_pgcap_dollar_owner";
    db.exec(&format!(
        "DROP ROLE IF EXISTS {owner}; CREATE ROLE {owner} NOSUPERUSER NOCREATEROLE; GRANT CREATE ON SCHEMA public TO {owner}"
    ))
    .await;
    // Function bodies are not parsed at CREATE FUNCTION: a body cut short by its tag is accepted
    // and what follows the tag runs as SQL. The run's sessions connect after this.
    db.exec(&format!("ALTER DATABASE {} SET check_function_bodies = off", db.name)).await;
    let payload = format!("c$shadowswap$;ALTER ROLE {owner} SUPERUSER;SELECT $shadowswap$");
    db.exec(&format!(
        "SET ROLE {owner}; CREATE TABLE t (id int PRIMARY KEY, \"{payload}\" text); \
         INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 30) g; RESET ROLE"
    ))
    .await;
    let role_query = format!(
        "SELECT rolsuper, rolcreaterole, rolcreatedb, rolbypassrls, rolreplication FROM pg_roles WHERE rolname = '{owner}'"
    );
    let role_before = db.text_rows(&role_query).await;
    assert_eq!(role_before[0][0].as_deref(), Some("f"));

    let run = held_run(&db, "t").await;
    // The capture functions run on each write.
    let app = client(&db.dsn).await;
    let q = format!("\"{payload}\"");
    exec_all(
        &app,
        &[
            &format!("INSERT INTO t (id, {q}) VALUES (100, 'new')"),
            &format!("UPDATE t SET {q} = 'changed' WHERE id = 3"),
            "UPDATE t SET id = 101 WHERE id = 4",
            "DELETE FROM t WHERE id = 5",
        ],
    )
    .await;
    let select = format!("SELECT id, {q} FROM t ORDER BY id");
    let expected = db.text_rows(&select).await;
    run.swap().await;

    assert_eq!(db.text_rows(&role_query).await, role_before, "the owner role is unchanged (not SUPERUSER)");
    assert_eq!(db.text_rows(&select).await, expected, "rows identical");
    assert_eq!(db.text_rows("SELECT bool_and(extra = 7) FROM t").await, [[Some("t".to_string())]], "the ALTER was applied");
    db.assert_clean(&["t"]).await;
    // The role stays (dropped and re-created at the start): the run's pooled sessions may still
    // be ending, each holding the owner's function in its temporary schema until it has.
    db.exec(&format!("DROP TABLE t; REVOKE CREATE ON SCHEMA public FROM {owner}")).await;
}

// ---------------------------------------------------------------------------------------------
// Defect 5: session_replication_role = replica.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_from_replica_role_sessions_are_captured() {
    let db = PgTestDb::new("pgcap_replica_role").await;
    db.exec("CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 50) g").await;
    let run = held_run(&db, "t").await;
    let etl = client(&db.dsn).await;
    exec_all(
        &etl,
        &[
            "SET session_replication_role = replica",
            "INSERT INTO t SELECT g, 'etl' || g FROM generate_series(1001, 1010) g",
            "UPDATE t SET v = 'updated' WHERE id BETWEEN 10 AND 14",
            "UPDATE t SET id = id + 2000 WHERE id BETWEEN 20 AND 22",
            "DELETE FROM t WHERE id BETWEEN 30 AND 39",
        ],
    )
    .await;
    let select = "SELECT id, v FROM t ORDER BY id";
    let expected = db.text_rows(select).await;
    assert_eq!(expected.len(), 50);
    assert_eq!(db.text_rows("SELECT id, v FROM _t_new ORDER BY id").await, expected, "the shadow has the writes already");
    run.swap().await;
    assert_eq!(db.text_rows(select).await, expected);
    db.assert_clean(&["t"]).await;
}

const SLOT: &str = "ssw_pgcap_slot";
const SUBSCRIPTION: &str = "ssw_pgcap_sub";
const PUB_DB: &str = "pgcap_pub";
const SUB_DB: &str = "pgcap_sub";

/// Drop the test's subscription (without touching the slot through it) and its slot, if they
/// exist. Best effort, for the start and the end of the test, failed or not.
async fn drop_subscription_and_slot() {
    let admin = client(&server_dsn()).await;
    let base = server_dsn();
    let base = base.rsplit_once('/').unwrap().0.to_string();
    let sub_db_exists: bool = admin
        .query_one("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", &[&format!("ssw_{SUB_DB}")])
        .await
        .unwrap()
        .get(0);
    if sub_db_exists {
        let sub = client(&format!("{base}/ssw_{SUB_DB}")).await;
        let exists: bool = sub
            .query_one("SELECT EXISTS (SELECT 1 FROM pg_subscription WHERE subname = $1)", &[&SUBSCRIPTION])
            .await
            .unwrap()
            .get(0);
        if exists {
            for s in [
                format!("ALTER SUBSCRIPTION {SUBSCRIPTION} DISABLE"),
                format!("ALTER SUBSCRIPTION {SUBSCRIPTION} SET (slot_name = NONE)"),
                format!("DROP SUBSCRIPTION {SUBSCRIPTION}"),
            ] {
                if let Err(e) = sub.batch_execute(&s).await {
                    eprintln!("{s}: {e}");
                }
            }
        }
    }
    // The slot is released when the publisher's walsender for it exits.
    let start = Instant::now();
    loop {
        let row = admin.query_opt("SELECT active FROM pg_replication_slots WHERE slot_name = $1", &[&SLOT]).await.unwrap();
        match row.map(|r| r.get::<_, bool>(0)) {
            None => break,
            Some(false) => {
                let _ = admin.execute("SELECT pg_drop_replication_slot($1)", &[&SLOT]).await;
            }
            Some(true) if start.elapsed() > Duration::from_secs(60) => {
                panic!("slot {SLOT} still active after 60 s; drop it with pg_drop_replication_slot")
            }
            Some(true) => {}
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Run `body`, then drop the subscription and slot whether it passed or panicked.
async fn with_subscription_cleanup<F: Future<Output = ()> + Send + 'static>(body: F) {
    drop_subscription_and_slot().await;
    let result = tokio::spawn(body).await;
    drop_subscription_and_slot().await;
    if let Err(e) = result {
        std::panic::resume_unwind(e.into_panic());
    }
}

/// Rows of `t` on both sides as text, in key order.
async fn both(publisher: &PgTestDb, subscriber: &PgTestDb) -> (Rows, Rows) {
    let q = "SELECT id, v FROM t ORDER BY id";
    (publisher.text_rows(q).await, subscriber.text_rows(q).await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscribed_tables_replicated_writes_during_the_run_reach_the_migrated_table() {
    with_subscription_cleanup(async {
        let publisher = PgTestDb::new(PUB_DB).await;
        let subscriber = PgTestDb::new(SUB_DB).await;
        let create = "CREATE TABLE t (id int PRIMARY KEY, v text)";
        publisher.exec(create).await;
        publisher.exec("INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 200) g").await;
        publisher.exec("CREATE PUBLICATION ssw_pgcap_publication FOR TABLE t").await;
        publisher.exec(&format!("SELECT pg_create_logical_replication_slot('{SLOT}', 'pgoutput')")).await;
        subscriber.exec(create).await;
        subscriber
            .exec(&format!(
                "CREATE SUBSCRIPTION {SUBSCRIPTION} CONNECTION '{}' PUBLICATION ssw_pgcap_publication \
                 WITH (create_slot = false, slot_name = '{SLOT}')",
                publisher.dsn
            ))
            .await;
        wait_until(
            &subscriber.client,
            "SELECT NOT EXISTS (SELECT 1 FROM pg_subscription_rel WHERE srsubstate <> 'r') AND (SELECT count(*) FROM t) = 200",
            Duration::from_secs(120),
            "the subscription's initial copy",
        )
        .await;

        // A table owner who may not refresh the subscription after the swap is refused before
        // anything is created.
        let owner = "ssw_pgcap_sub_owner";
        subscriber
            .exec(&format!(
                "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{owner}') THEN \
                 CREATE ROLE {owner} LOGIN NOSUPERUSER PASSWORD 'pw'; END IF; END $$; ALTER TABLE t OWNER TO {owner}; \
                 GRANT USAGE, CREATE ON SCHEMA public TO {owner}"
            ))
            .await;
        let as_owner = format!("postgres://{owner}:pw@{}", subscriber.dsn.split_once('@').unwrap().1);
        let as_owner = std::sync::Arc::new(shadowswap_postgres::Postgres::connect(&as_owner, None).await.unwrap());
        let refused = Runner::new(as_owner, fast_config()).run(&subscriber.table("t"), ALTER).await.expect_err("refused");
        assert!(
            refused
                .to_string()
                .contains(&format!("is replicated into by subscription {SUBSCRIPTION}, which shadowswap must refresh")),
            "{refused}"
        );
        subscriber.exec(&format!("ALTER TABLE t OWNER TO CURRENT_USER; REVOKE ALL ON SCHEMA public FROM {owner}")).await;
        subscriber.assert_clean(&["t"]).await;

        let run = held_run(&subscriber, "t").await;
        // The apply worker writes with session_replication_role = replica.
        exec_all(
            &publisher.client,
            &[
                "INSERT INTO t SELECT g, 'new' || g FROM generate_series(1001, 1020) g",
                "UPDATE t SET v = 'updated' WHERE id BETWEEN 10 AND 19",
                "UPDATE t SET id = id + 5000 WHERE id BETWEEN 20 AND 24",
                "DELETE FROM t WHERE id BETWEEN 30 AND 49",
                "INSERT INTO t VALUES (9999, 'last')",
            ],
        )
        .await;
        wait_until(
            &subscriber.client,
            "SELECT EXISTS (SELECT 1 FROM t WHERE id = 9999)",
            Duration::from_secs(120),
            "the last write",
        )
        .await;
        let (p, s) = both(&publisher, &subscriber).await;
        assert_eq!(s, p, "replicated");
        assert_eq!(
            subscriber.text_rows("SELECT id, v FROM _t_new ORDER BY id").await,
            p,
            "the apply worker's writes reached the shadow"
        );
        run.swap().await;
        let (p, s) = both(&publisher, &subscriber).await;
        assert_eq!(s, p, "the migrated subscriber table equals the publisher's exactly");
        assert_eq!(
            subscriber.text_rows("SELECT bool_and(extra = 7) FROM t").await,
            [[Some("t".to_string())]],
            "the ALTER was applied"
        );
        subscriber.assert_clean(&["t"]).await;

        // The subscription replicates into the new table, also once its apply worker restarts
        // (server restart, failover, disable/enable): it knows the table by its new OID.
        assert_eq!(
            subscriber.text_rows("SELECT srrelid::regclass::text, srsubstate::text FROM pg_subscription_rel").await,
            [[Some("t".to_string()), Some("r".to_string())]]
        );
        subscriber.exec(&format!("ALTER SUBSCRIPTION {SUBSCRIPTION} DISABLE")).await;
        let worker = |running: bool| {
            format!(
                "SELECT {} EXISTS (SELECT 1 FROM pg_stat_subscription WHERE pid IS NOT NULL)",
                if running { "" } else { "NOT" }
            )
        };
        wait_until(&subscriber.client, &worker(false), Duration::from_secs(60), "the apply worker to stop").await;
        subscriber.exec(&format!("ALTER SUBSCRIPTION {SUBSCRIPTION} ENABLE")).await;
        wait_until(&subscriber.client, &worker(true), Duration::from_secs(60), "the apply worker to start").await;
        exec_all(&publisher.client, &["UPDATE t SET v = 'after the swap' WHERE id <= 5", "INSERT INTO t VALUES (10000, 'last')"])
            .await;
        wait_until(
            &subscriber.client,
            "SELECT EXISTS (SELECT 1 FROM t WHERE id = 10000)",
            Duration::from_secs(120),
            "the write after the swap",
        )
        .await;
        let (p, s) = both(&publisher, &subscriber).await;
        assert_eq!(s, p, "still replicating after the swap");
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// Defect 6: key updates to an equal but different value.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_changed_to_a_value_its_nondeterministic_collation_calls_equal_is_replayed() {
    let db = PgTestDb::new("pgcap_ci_collation").await;
    db.exec(
        "CREATE COLLATION ci (provider = icu, locale = 'und-u-ks-level2', deterministic = false); \
         CREATE TABLE t (name text COLLATE ci PRIMARY KEY, v int); \
         INSERT INTO t VALUES ('alice', 1), ('bob', 2), ('carol', 3), ('dave', 4), ('erin', 5)",
    )
    .await;
    assert_eq!(db.text_rows("SELECT 'bob' = 'Bob' COLLATE ci").await[0][0].as_deref(), Some("t"));
    let run = held_run(&db, "t").await;
    exec_all(
        &db.client,
        &[
            "UPDATE t SET name = 'Bob' WHERE name = 'bob'",
            "UPDATE t SET name = 'CAROL', v = 30 WHERE name = 'carol'",
            "UPDATE t SET name = 'zed' WHERE name = 'dave'",
        ],
    )
    .await;
    let select = "SELECT name, v FROM t ORDER BY name COLLATE \"C\"";
    let expected = db.text_rows(select).await;
    assert_eq!(
        db.text_rows("SELECT name, v FROM _t_new ORDER BY name COLLATE \"C\"").await,
        expected,
        "the shadow spells them so"
    );
    run.swap().await;
    assert_eq!(db.text_rows(select).await, expected, "byte-identical keys after the swap");
    db.assert_clean(&["t"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_numeric_key_changed_to_an_equal_value_of_another_scale_is_replayed() {
    let db = PgTestDb::new("pgcap_numeric_key").await;
    db.exec("CREATE TABLE t (id numeric PRIMARY KEY, v int); INSERT INTO t VALUES (1.5, 1), (2.25, 2), (3, 3), (4, 4)").await;
    let run = held_run(&db, "t").await;
    exec_all(
        &db.client,
        &[
            "UPDATE t SET id = 1.50 WHERE id = 1.5",
            "UPDATE t SET id = 2.2500, v = 20 WHERE id = 2.25",
            "UPDATE t SET id = 3.0 WHERE id = 3",
        ],
    )
    .await;
    let select = "SELECT id::text, v FROM t ORDER BY id";
    let expected = db.text_rows(select).await;
    assert_eq!(expected[0][0].as_deref(), Some("1.50"));
    run.swap().await;
    assert_eq!(db.text_rows(select).await, expected);
    db.assert_clean(&["t"]).await;
}

// ---------------------------------------------------------------------------------------------
// Defect 9: TRUNCATE.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truncate_while_the_run_waits_for_its_cut_over_is_not_undone() {
    let db = PgTestDb::new("pgcap_truncate_held").await;
    db.exec("CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 100) g").await;
    let run = held_run(&db, "t").await;
    assert_eq!(run.rows_copied(), 100);
    // From a replica-role session too: the truncate trigger fires ALWAYS.
    let etl = client(&db.dsn).await;
    exec_all(&etl, &["SET session_replication_role = replica", "TRUNCATE t"]).await;
    assert!(db.text_rows("SELECT * FROM _t_new").await.is_empty(), "the shadow is emptied with the table");
    db.exec("INSERT INTO t VALUES (7, 'after'), (200, 'after')").await;
    let select = "SELECT id, v FROM t ORDER BY id";
    let expected = db.text_rows(select).await;
    run.swap().await;
    assert_eq!(db.text_rows(select).await, expected, "only the rows written after the TRUNCATE");
    db.assert_clean(&["t"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truncate_during_the_backfill_is_not_undone() {
    let db = PgTestDb::new("pgcap_truncate_backfill").await;
    db.exec("CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 1000) g")
        .await;
    // Hold row 500: the chunk that reaches it waits (chunks before it are copied), and the
    // TRUNCATE queues behind that chunk.
    let holder = client(&db.dsn).await;
    holder.batch_execute("BEGIN; SELECT 1 FROM t WHERE id = 500 FOR UPDATE").await.unwrap();

    let mut cfg = chunked_config(Some(50));
    cfg.copy.lock_wait_timeout = Duration::from_secs(120);
    let runner = std::sync::Arc::new(Runner::new(db.dialect().await, cfg));
    let progress = runner.progress();
    let table = db.table("t");
    let run = tokio::spawn({
        let runner = runner.clone();
        async move { runner.run(&table, ALTER).await }
    });
    let waiting = |query_like: &str| {
        format!(
            "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE datname = current_database() \
             AND wait_event_type = 'Lock' AND query LIKE '{query_like}')"
        )
    };
    // The copy runs as the table's owner, through shadowswap's owner function (see the dialect's
    // `owner` module): its statement is that function's call.
    wait_until(&db.client, &waiting("%shadowswap_as_owner%"), Duration::from_secs(120), "the chunk at row 500").await;
    let truncater = client(&db.dsn).await;
    let truncate = tokio::spawn(async move { truncater.batch_execute("TRUNCATE t").await });
    wait_until(&db.client, &waiting("TRUNCATE t"), Duration::from_secs(120), "the TRUNCATE to queue").await;
    assert_eq!(progress.borrow().phase, Phase::Backfill);
    let copied_before: i64 = db.client.query_one("SELECT count(*) FROM _t_new", &[]).await.unwrap().get(0);
    assert!(copied_before > 0 && copied_before < 1000, "the truncate lands mid-backfill ({copied_before} rows copied)");
    holder.batch_execute("COMMIT").await.unwrap();
    truncate.await.unwrap().expect("TRUNCATE succeeds");
    db.exec("INSERT INTO t VALUES (7, 'after'), (2000, 'after')").await;
    let select = "SELECT id, v FROM t ORDER BY id";
    let expected = db.text_rows(select).await;

    let outcome = run.await.unwrap().expect("migration succeeds");
    assert!(matches!(outcome, Outcome::Swapped(_)), "{outcome:?}");
    assert_eq!(db.text_rows(select).await, expected, "only the rows written after the TRUNCATE");
    db.assert_clean(&["t"]).await;
}

// ---------------------------------------------------------------------------------------------
// Defect 10: keys of extension types.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn citext_keys_are_compared_case_insensitively_by_the_capture() {
    let db = PgTestDb::new("pgcap_citext").await;
    db.exec(
        "CREATE EXTENSION citext; CREATE TABLE t (k citext PRIMARY KEY, v int); \
         INSERT INTO t VALUES ('Alice', 1), ('Bob', 2), ('Carol', 3), ('Dave', 4), ('Eve', 5), ('Frank', 6)",
    )
    .await;
    let run = held_run(&db, "t").await;
    // citext's own equality (its index's), not text's through an implicit cast: case-insensitive
    // and an index lookup in the shadow.
    for f in ["_t_ssw_upd", "_t_ssw_del"] {
        let src = db.text_rows(&format!("SELECT prosrc FROM pg_proc WHERE proname = '{f}'")).await;
        let src = src[0][0].as_deref().unwrap();
        assert!(src.contains("\"k\" OPERATOR(\"public\".=) OLD.\"k\""), "{f}: {src}");
    }
    let app = client(&db.dsn).await;
    exec_all(
        &app,
        &[
            "UPDATE t SET v = 10 WHERE k = 'alice'",
            "UPDATE t SET k = 'bob' WHERE k = 'Bob'",
            "UPDATE t SET k = 'Zed', v = 40 WHERE k = 'DAVE'",
            "DELETE FROM t WHERE k = 'CAROL'",
            "INSERT INTO t VALUES ('Gina', 7)",
        ],
    )
    .await;
    let select = "SELECT k::text, v FROM t ORDER BY k::text COLLATE \"C\"";
    let expected = db.text_rows(select).await;
    assert_eq!(db.text_rows("SELECT k::text, v FROM _t_new ORDER BY k::text COLLATE \"C\"").await, expected);
    run.swap().await;
    assert_eq!(db.text_rows(select).await, expected, "'Bob' became 'bob'; every write replayed");
    db.assert_clean(&["t"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ltree_keys_can_be_updated_and_deleted_during_the_run() {
    let db = PgTestDb::new("pgcap_ltree").await;
    db.exec(
        "CREATE EXTENSION ltree; CREATE TABLE t (path ltree PRIMARY KEY, v int); \
         INSERT INTO t SELECT ('top.n' || g)::ltree, g FROM generate_series(1, 40) g",
    )
    .await;
    let run = held_run(&db, "t").await;
    let app = client(&db.dsn).await;
    exec_all(
        &app,
        &[
            "UPDATE t SET v = v + 100 WHERE path = 'top.n1'",
            "UPDATE t SET path = 'top.moved.n2' WHERE path = 'top.n2'",
            "DELETE FROM t WHERE path = 'top.n3'",
            "DELETE FROM t WHERE path <@ 'top' AND v BETWEEN 30 AND 35",
            "INSERT INTO t VALUES ('top.new', 0)",
        ],
    )
    .await;
    let select = "SELECT path::text, v FROM t ORDER BY path::text COLLATE \"C\"";
    let expected = db.text_rows(select).await;
    assert_eq!(expected.len(), 40 - 1 - 6 + 1);
    run.swap().await;
    assert_eq!(db.text_rows(select).await, expected);
    db.assert_clean(&["t"]).await;
}
