//! Chunk keys on MariaDB: which key drives the copy and the capture when the ALTER touches keys.
//!
//! - A key whose collation or charset the ALTER changes is not a chunk key (issue 7, defect 4):
//!   the capture triggers' key match and the copy's range delete compare under the shadow's
//!   collation, so `'Äpfel'` deleted `'Apfel'`, or every application write failed with error 1267.
//!   Refused when no other key is left (dry run too); another unchanged unique key is used when
//!   there is one.
//! - An ENUM column in the primary key: chunked in index (declaration) order.
//! - `DROP PRIMARY KEY, ADD PRIMARY KEY (id, i)`: the original's key `(id)` leads the new one.
//!
//! Each run is checked against the server itself: the old table is kept, a clone of it gets the
//! same ALTER natively, and the migrated table must equal the clone row by row; and the rows equal
//! the model the concurrent writers kept of what they wrote.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts, Value};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use shadowswap_integration::cli::{assert_refused, run_cli, stderr, Unchanged};
use shadowswap_integration::mysql::TestDb;
use shadowswap_integration::run::{chunked_config, fast_config, PostponedRun};
use tokio_util::sync::CancellationToken;

/// One row of the test tables: `(k, i, v)` by `id`.
type Model = BTreeMap<i64, (String, i64, i64)>;

/// What the writers may put in column `k`.
#[derive(Clone, Copy)]
enum KeyValues {
    /// Fresh, unique strings.
    Names,
    /// One of the ENUM's values.
    Enum(&'static [&'static str]),
}

/// Rows of `t` (`id, k, i, v`), ordered by id.
async fn read_model(db: &TestDb, table: &str) -> Model {
    let mut c = db.pool.get_conn().await.unwrap();
    let rows: Vec<(i64, String, i64, i64)> = c.query(format!("SELECT id, k, i, v FROM `{table}` ORDER BY id")).await.unwrap();
    rows.into_iter().map(|(id, k, i, v)| (id, (k, i, v))).collect()
}

/// Run one autocommit statement, again after a deadlock or lock wait timeout (the server rolled
/// it back whole): what an application does. Panics on any other error.
async fn exec_retrying<P: Into<mysql_async::Params> + Clone + Send>(c: &mut Conn, sql: &str, params: P) {
    loop {
        match c.exec_drop(sql, params.clone()).await {
            Ok(()) => return,
            Err(mysql_async::Error::Server(e)) if e.code == 1213 || e.code == 1205 => continue,
            Err(e) => panic!("{sql}: {e}"),
        }
    }
}

/// A writer on its own session, in autocommit, on the ids `id % writers == me`: updates `v`, `i`
/// and the key column `k`, inserts fresh ids and deletes, and records each statement's effect in
/// the shared model. Runs until `stop`; returns the statements it ran.
#[allow(clippy::too_many_arguments)]
fn writer(
    dsn: String,
    model: Arc<Mutex<Model>>,
    values: KeyValues,
    me: i64,
    writers: i64,
    seed: u64,
    stop: CancellationToken,
    done: Arc<AtomicU64>,
) -> tokio::task::JoinHandle<u64> {
    tokio::spawn(async move {
        let mut c = Conn::new(Opts::from_url(&dsn).unwrap()).await.unwrap();
        let mut rng = StdRng::seed_from_u64(seed);
        let mut next_id = 1_000_000 + me;
        let mut ops = 0u64;
        while !stop.is_cancelled() {
            ops += 1;
            let ids: Vec<i64> = model.lock().unwrap().keys().copied().filter(|id| id % writers == me).collect();
            let pick = ids[rng.random_range(0..ids.len())];
            let fresh_k = |rng: &mut StdRng, id: i64, ops: u64| match values {
                KeyValues::Names => format!("w{id}x{ops}"),
                KeyValues::Enum(vals) => vals[rng.random_range(0..vals.len())].to_string(),
            };
            match rng.random_range(0..5) {
                0 => {
                    let v: i64 = rng.random_range(0..1_000_000);
                    exec_retrying(&mut c, "UPDATE t SET v = ? WHERE id = ?", (v, pick)).await;
                    model.lock().unwrap().get_mut(&pick).unwrap().2 = v;
                }
                1 => {
                    let k = fresh_k(&mut rng, pick, ops);
                    exec_retrying(&mut c, "UPDATE t SET k = ? WHERE id = ?", (&k, pick)).await;
                    model.lock().unwrap().get_mut(&pick).unwrap().0 = k;
                }
                2 => {
                    let i: i64 = rng.random_range(0..1000);
                    exec_retrying(&mut c, "UPDATE t SET i = ? WHERE id = ?", (i, pick)).await;
                    model.lock().unwrap().get_mut(&pick).unwrap().1 = i;
                }
                3 => {
                    let id = next_id;
                    next_id += writers;
                    let k = fresh_k(&mut rng, id, ops);
                    let (i, v): (i64, i64) = (rng.random_range(0..1000), rng.random_range(0..1_000_000));
                    exec_retrying(&mut c, "INSERT INTO t (id, k, i, v) VALUES (?, ?, ?, ?)", (id, &k, i, v)).await;
                    model.lock().unwrap().insert(id, (k, i, v));
                }
                _ => {
                    if ids.len() > 10 {
                        exec_retrying(&mut c, "DELETE FROM t WHERE id = ?", (pick,)).await;
                        model.lock().unwrap().remove(&pick);
                    }
                }
            }
            done.fetch_add(1, Ordering::SeqCst);
        }
        ops
    })
}

/// Migrate `t` with `alter` in process, under two writers, with the old table kept: the run is
/// held before its cut-over until the writers have written at least 200 more statements after the
/// backfill (and the checksum), then swapped. Then check it against the model, and against a clone of the old table
/// altered natively by the server (rows and definition). Returns the dry-run style plan's chunk
/// key index.
async fn migrate_and_compare(db: &TestDb, alter: &str, values: KeyValues, checksum: bool) -> String {
    let model = Arc::new(Mutex::new(read_model(db, "t").await));
    let stop = CancellationToken::new();
    let seed = shadowswap_integration::model::seed_from_env_or_clock();
    eprintln!("seed {seed}");
    let done = Arc::new(AtomicU64::new(0));
    let writers: Vec<_> = (0..2)
        .map(|me| writer(db.dsn.clone(), model.clone(), values, me, 2, seed + me as u64, stop.clone(), done.clone()))
        .collect();
    let mut cfg = chunked_config(Some(50));
    cfg.checksum.enabled = checksum;
    cfg.cut_over.keep_old_table = true;
    let d = db.dialect().await;
    let names = shadowswap_engine::Dialect::names(&*d, &db.table("t"));
    let plan = shadowswap_engine::Runner::new(d.clone(), fast_config()).preflight(&names, alter, false).await.unwrap();
    let run = PostponedRun::start(d, cfg, db.table("t"), alter, &db.name, Duration::from_secs(120)).await;
    // Writes while the capture alone keeps the shadow in sync.
    let before: u64 = db.scalar("SELECT COUNT(*) FROM _t_new").await;
    assert!(before > 0);
    let target = done.load(Ordering::SeqCst) + 200;
    tokio::time::timeout(Duration::from_secs(120), async {
        while done.load(Ordering::SeqCst) < target {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the writers wrote 200 statements while the run was postponed");
    // The writers stop before the swap, so that the old table (kept) is exactly what the server's
    // own ALTER gets below.
    stop.cancel();
    let mut ops = 0;
    for w in writers {
        ops += w.await.unwrap();
    }
    let summary = run.swap().await;
    assert!(ops > 100, "the writers ran ({ops} statements)");
    eprintln!("{}", shadowswap_integration::run::summary_line(&summary));
    let model = model.lock().unwrap().clone();
    assert_eq!(read_model(db, "t").await, model, "the migrated table equals what the writers wrote");
    // The server's own ALTER on a clone of the old table (which stopped changing at the swap).
    db.exec(&format!("CREATE TABLE clone LIKE _t_old; INSERT INTO clone SELECT * FROM _t_old; ALTER TABLE clone {alter}")).await;
    assert_eq!(db.rows("t", "id").await, db.rows("clone", "id").await, "rows equal the native ALTER's");
    let norm = |s: String, name: &str| {
        s.replacen(&format!("CREATE TABLE `{name}`"), "CREATE TABLE x", 1)
            .split(' ')
            .filter(|w| !w.starts_with("AUTO_INCREMENT="))
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_eq!(norm(db.create_table("t").await, "t"), norm(db.create_table("clone").await, "clone"));
    plan.key.index
}

/// Definition and rows of `t`.
async fn snapshot(db: &TestDb) -> (String, Vec<Vec<Value>>) {
    (db.create_table("t").await, db.rows("t", "1").await)
}

/// Defect 4: the only key is converted from latin1_bin to utf8mb4_unicode_ci (under which `'Äpfel'`
/// equals `'Apfel'`), or from utf8mb4_general_ci to utf8mb4_unicode_ci (error 1267 on every
/// application write). Both are refused before anything is created, the dry run included, with a
/// line naming the column and what to do; an application writing colliding values meanwhile is
/// never disturbed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_whose_collation_changes_is_refused_even_in_the_dry_run() {
    // Each case: the table's charset, the ALTER, and an existing and an inserted value that are
    // distinct under the old collation and equal under the new one.
    for (n, (charset, alter, existing, colliding)) in [
        ("latin1 COLLATE latin1_bin", "CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci", "Apfel", "Äpfel"),
        ("utf8mb4 COLLATE utf8mb4_general_ci", "MODIFY k VARCHAR(20) COLLATE utf8mb4_unicode_ci NOT NULL", "Strasse", "Straße"),
    ]
    .into_iter()
    .enumerate()
    {
        let db = TestDb::new(&format!("mk_coll_refused_{n}")).await;
        db.exec(&format!(
            "CREATE TABLE t (k VARCHAR(20) NOT NULL PRIMARY KEY, v INT NOT NULL) ENGINE=InnoDB DEFAULT CHARSET={charset};
             INSERT INTO t VALUES ('{existing}', 1), ('Birne', 2)"
        ))
        .await;
        // An application writing a value that collides under the new collation, all along.
        let stop = CancellationToken::new();
        let app = {
            let dsn = db.dsn.clone();
            let stop = stop.clone();
            tokio::spawn(async move {
                let mut c = Conn::new(Opts::from_url(&dsn).unwrap()).await.unwrap();
                let mut n = 0u64;
                while !stop.is_cancelled() || n == 0 {
                    c.exec_drop("INSERT INTO t VALUES (?, 3)", (colliding,)).await.unwrap();
                    c.exec_drop("DELETE FROM t WHERE k = ?", (colliding,)).await.unwrap();
                    n += 1;
                }
                n
            })
        };
        let dry = run_cli(&["alter", "--dsn", &db.dsn, "--table", "t", "--alter", alter], &[]).await;
        let line = assert_refused(&dry, &["column k of key PRIMARY", "becomes", "plain ALTER TABLE"]);
        assert!(line.contains("utf8mb4_unicode_ci"), "{line}");
        stop.cancel();
        assert!(app.await.unwrap() > 0);
        let checks = Unchanged { snapshot: || snapshot(&db), assert_clean: || db.assert_clean(&["t"]) };
        checks.refused(&db.dsn, "t", alter, &[], &["column k of key PRIMARY", "becomes"]).await;
        assert_eq!(db.rows("t", "k").await.len(), 2, "{}", stderr(&dry));
    }
}

/// Defect 4 with another key: `t` has a latin1_bin primary key on `k` and a unique `id` the ALTER
/// leaves alone. The run chunks and captures by `id` (with and without the checksum, which once
/// hid the range delete that removed copied rows), under writers that change `k`; an insert of
/// `'Äpfel'`, equal to the existing `'Apfel'` under the new collation, is rejected by the new
/// primary key instead of replacing `'Apfel'`. The result equals the server's own ALTER.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_whose_collation_changes_gives_way_to_an_unchanged_unique_key() {
    for checksum in [false, true] {
        let db = TestDb::new(&format!("mk_coll_other_key_{checksum}")).await;
        db.exec(
            "CREATE TABLE t (id INT NOT NULL, k VARCHAR(40) NOT NULL, i INT NOT NULL, v INT NOT NULL, PRIMARY KEY (k), \
             UNIQUE KEY uid (id)) ENGINE=InnoDB DEFAULT CHARSET=latin1 COLLATE=latin1_bin;
             INSERT INTO t SELECT seq, CONCAT('n', seq), seq % 7, seq FROM seq_1_to_3000;
             INSERT INTO t VALUES (5000, 'Apfel', 0, 0)",
        )
        .await;
        let alter = "CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci";
        let dry = run_cli(&["alter", "--dsn", &db.dsn, "--table", "t", "--alter", alter], &[]).await;
        assert_eq!(dry.status.code(), Some(0), "{}", stderr(&dry));
        let plan = String::from_utf8_lossy(&dry.stdout).to_string();
        assert!(plan.contains("chunk key:      uid (id)"), "{plan}");

        // The colliding insert while the run is under way: the shadow's new primary key rejects it.
        let d = db.dialect().await;
        let mut cfg = fast_config();
        cfg.checksum.enabled = checksum;
        let run = PostponedRun::start(d, cfg, db.table("t"), alter, &db.name, Duration::from_secs(120)).await;
        let mut c = db.pool.get_conn().await.unwrap();
        let e = c.query_drop("INSERT INTO t VALUES (5001, 'Äpfel', 0, 1)").await.unwrap_err();
        assert!(e.to_string().contains("Duplicate entry"), "{e}");
        c.query_drop("UPDATE t SET v = 7 WHERE k = 'Apfel'").await.unwrap();
        drop(c);
        run.swap().await;
        let apfel: Vec<(i64, String, i64)> = {
            let mut c = db.pool.get_conn().await.unwrap();
            c.query("SELECT id, k, v FROM t WHERE id >= 5000").await.unwrap()
        };
        assert_eq!(apfel, vec![(5000, "Apfel".to_string(), 7)]);
        db.exec("DROP TABLE IF EXISTS _t_old").await;

        // And under concurrent writers, against the server's own ALTER.
        let key = migrate_and_compare(&db, "MODIFY k VARCHAR(40) COLLATE utf8mb4_bin NOT NULL", KeyValues::Names, checksum).await;
        assert_eq!(key, "uid");
    }
}

/// An ENUM column in the primary key, with values whose string order (alpha, beta, mid, zeta)
/// differs from their declaration order: chunked in index order, bounds bound as index numbers,
/// under writers that move rows between ENUM values; equals the native ALTER.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_enum_primary_key_is_chunked_in_declaration_order() {
    const VALUES: &[&str] = &["zeta", "alpha", "mid", "beta"];
    let db = TestDb::new("mk_enum_key").await;
    db.exec(
        "CREATE TABLE t (id INT NOT NULL, k ENUM('zeta','alpha','mid','beta') NOT NULL, i INT NOT NULL, v INT NOT NULL, \
         PRIMARY KEY (k, id), KEY by_id (id)) ENGINE=InnoDB;
         INSERT INTO t SELECT seq, ELT(1 + seq % 4, 'zeta', 'alpha', 'mid', 'beta'), seq % 7, seq FROM seq_1_to_3000",
    )
    .await;
    let key = migrate_and_compare(&db, "ADD COLUMN note VARCHAR(10) NOT NULL DEFAULT 'n'", KeyValues::Enum(VALUES), true).await;
    assert_eq!(key, "PRIMARY");

    // A single-column ENUM key, one row per value, and a chunk per row.
    let db = TestDb::new("mk_enum_key_single").await;
    db.exec(
        "CREATE TABLE t (k ENUM('zeta','alpha','mid','beta') NOT NULL PRIMARY KEY, v INT NOT NULL) ENGINE=InnoDB;
         INSERT INTO t VALUES ('beta', 4), ('zeta', 1), ('mid', 3), ('alpha', 2)",
    )
    .await;
    let cfg = chunked_config(Some(1));
    let run = PostponedRun::start(
        db.dialect().await,
        cfg,
        db.table("t"),
        "ADD COLUMN w INT NOT NULL DEFAULT 0",
        &db.name,
        Duration::from_secs(60),
    )
    .await;
    assert_eq!(run.rows_copied(), 4);
    run.swap().await;
    let rows: Vec<(String, i64, i64)> = {
        let mut c = db.pool.get_conn().await.unwrap();
        c.query("SELECT k, v, w FROM t ORDER BY k").await.unwrap()
    };
    let want: Vec<(String, i64, i64)> =
        ["zeta", "alpha", "mid", "beta"].iter().zip(1..).map(|(k, v)| (k.to_string(), v, 0)).collect();
    assert_eq!(rows, want);
}

/// `DROP PRIMARY KEY, ADD PRIMARY KEY (id, i)`: the original's primary key `(id)` leads the new
/// one, so it stays the chunk key (the shadow matches rows on `id`, through the new key's prefix),
/// under writers that change `i`, insert and delete; equals the native ALTER.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_primary_key_that_extends_the_old_one() {
    let db = TestDb::new("mk_pk_superset").await;
    db.exec(
        "CREATE TABLE t (id INT NOT NULL PRIMARY KEY, k VARCHAR(40) NOT NULL, i INT NOT NULL, v INT NOT NULL) ENGINE=InnoDB;
         INSERT INTO t SELECT seq, CONCAT('n', seq), seq % 7, seq FROM seq_1_to_3000",
    )
    .await;
    let alter = "DROP PRIMARY KEY, ADD PRIMARY KEY (id, i)";
    let dry = run_cli(&["alter", "--dsn", &db.dsn, "--table", "t", "--alter", alter], &[]).await;
    assert_eq!(dry.status.code(), Some(0), "{}", stderr(&dry));
    let key = migrate_and_compare(&db, alter, KeyValues::Names, true).await;
    assert_eq!(key, "PRIMARY");
    assert!(db.create_table("t").await.contains("PRIMARY KEY (`id`,`i`)"));
}

/// Rows of `table` for comparing DATETIME/TIMESTAMP columns exactly whatever the session's time
/// zone: a TIMESTAMP as its instant (`UNIX_TIMESTAMP` reads it without a zone), a DATETIME as text.
async fn time_rows(db: &TestDb, table: &str, d_is_timestamp: bool) -> Vec<(i64, Option<String>, Option<String>, i64)> {
    let mut c = db.pool.get_conn().await.unwrap();
    let (d, ts) = if d_is_timestamp {
        ("CAST(UNIX_TIMESTAMP(d) AS CHAR)", "CAST(ts AS CHAR)")
    } else {
        ("CAST(d AS CHAR)", "CAST(UNIX_TIMESTAMP(ts) AS CHAR)")
    };
    c.query(format!("SELECT id, {d}, {ts}, v FROM `{table}` ORDER BY id")).await.unwrap()
}

/// `MODIFY d TIMESTAMP, MODIFY ts DATETIME` (a DATETIME column becomes TIMESTAMP and a TIMESTAMP
/// column DATETIME), then back: the result equals the same ALTER run natively, in a session at the
/// server's default time zone, on a clone of the old table, row by row: seeded values (NULLs, a
/// DST-ambiguous and a DST-gap local time of Europe's zones, the ends of the TIMESTAMP range) and
/// values a concurrent application session at `+05:00` writes during the run (captured by the
/// triggers in that session's time zone).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn datetime_to_timestamp_and_back_as_a_plain_alter_in_the_default_time_zone() {
    let db = TestDb::new("mk_datetime_timestamp").await;
    db.exec(
        "CREATE TABLE t (id INT NOT NULL PRIMARY KEY, d DATETIME(3) NULL, ts TIMESTAMP(3) NULL DEFAULT NULL, v INT NOT NULL) ENGINE=InnoDB;
         SET time_zone = @@global.time_zone;
         INSERT INTO t VALUES (1, NULL, NULL, 1), (2, '2026-10-25 02:30:00.250', '2026-10-25 02:30:00.250', 2),
           (3, '2026-03-29 02:30:00', '2026-03-29 03:30:00', 3), (4, '1970-01-02 00:00:00', '1970-01-02 00:00:00', 4),
           (5, '2038-01-18 03:14:07.999', '2038-01-18 03:14:07.999', 5);
         INSERT INTO t SELECT 10 + seq, '2026-01-01 00:00:00' + INTERVAL seq * 2003 MINUTE, FROM_UNIXTIME(1700000000 + seq * 86399), seq \
           FROM seq_1_to_1000",
    )
    .await;
    for (n, (alter, d_is_timestamp)) in [
        ("MODIFY d TIMESTAMP(3) NULL DEFAULT NULL, MODIFY ts DATETIME(3) NULL", true),
        ("MODIFY d DATETIME(3) NULL, MODIFY ts TIMESTAMP(3) NULL DEFAULT NULL", false),
    ]
    .into_iter()
    .enumerate()
    {
        db.exec("DROP TABLE IF EXISTS _t_old; DROP TABLE IF EXISTS clone").await;
        // An application session at +05:00 writing all through the run.
        let stop = CancellationToken::new();
        let done = Arc::new(AtomicU64::new(0));
        let app = {
            let (dsn, stop, done) = (db.dsn.clone(), stop.clone(), done.clone());
            tokio::spawn(async move {
                let mut c = Conn::new(Opts::from_url(&dsn).unwrap()).await.unwrap();
                c.query_drop("SET time_zone = '+05:00'").await.unwrap();
                let mut rng = StdRng::seed_from_u64(n as u64);
                let mut next = 100_000 * (n as i64 + 1);
                while !stop.is_cancelled() {
                    let minutes: i64 = rng.random_range(0..5_000_000);
                    let id: i64 = rng.random_range(1..1010);
                    let stmt = match rng.random_range(0..3) {
                        0 => format!(
                            "UPDATE t SET d = '2020-01-01' + INTERVAL {minutes} MINUTE, ts = '2021-06-01 12:00:00.5' + INTERVAL {minutes} MINUTE WHERE id = {id}"
                        ),
                        1 => {
                            next += 1;
                            format!(
                                "INSERT INTO t VALUES ({next}, '2026-10-25 01:00:00' + INTERVAL {} MINUTE, '2026-10-25 03:00:00' + INTERVAL {} MINUTE, 0)",
                                minutes % 240,
                                minutes % 300
                            )
                        }
                        _ => format!("UPDATE t SET v = v + 1, ts = NULL WHERE id = {id}"),
                    };
                    loop {
                        match c.query_drop(&stmt).await {
                            Ok(()) => break,
                            Err(mysql_async::Error::Server(e)) if e.code == 1213 || e.code == 1205 => continue,
                            Err(e) => panic!("{stmt}: {e}"),
                        }
                    }
                    done.fetch_add(1, Ordering::SeqCst);
                }
            })
        };
        let mut cfg = chunked_config(Some(50));
        cfg.cut_over.keep_old_table = true;
        let run = PostponedRun::start(
            db.dialect().await,
            cfg,
            db.table("t"),
            alter,
            &format!("{}_{n}", db.name),
            Duration::from_secs(120),
        )
        .await;
        let target = done.load(Ordering::SeqCst) + 200;
        tokio::time::timeout(Duration::from_secs(120), async {
            while done.load(Ordering::SeqCst) < target {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .expect("the application wrote while the run was postponed");
        stop.cancel();
        app.await.unwrap();
        run.swap().await;
        db.exec(&format!(
            "CREATE TABLE clone LIKE _t_old; INSERT INTO clone SELECT * FROM _t_old; \
             SET time_zone = @@global.time_zone; ALTER TABLE clone {alter}"
        ))
        .await;
        let (got, want) = (time_rows(&db, "t", d_is_timestamp).await, time_rows(&db, "clone", d_is_timestamp).await);
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(&want) {
            assert_eq!(g, w, "{alter}: row {} differs from the server's own ALTER", w.0);
        }
    }
}
