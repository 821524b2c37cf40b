//! PostgreSQL: columns are mapped by what the ALTER does, not by name (issue 7, defects 7 and 8).
//!
//! A column the ALTER drops and adds again under the same name is a new column: a plain ALTER
//! fills it with its default, so shadowswap must too, in the backfill and in the capture
//! triggers. The oracle is the server: the same ALTER run natively on a clone holding the same
//! rows, compared row by row as text.
//!
//! An added `timestamp DEFAULT now()` column is filled for existing rows in the session's
//! TimeZone by a plain ALTER, which a new session takes from the server, the database or the
//! role: shadowswap's backfill must match it, while rows the application writes during the run
//! get the application session's clock.

use std::time::Duration;

use shadowswap_integration::cli::{assert_plan_re_adds, dry_run, stdout};
use shadowswap_integration::oracle::{assert_matches_clone, assert_rows_match_clone, migrate};
use shadowswap_integration::postgres::{client, PgTestDb};
use shadowswap_integration::run::{chunked_config, PostponedRun};

const ROWS: i64 = 300;

/// Create `t` (migrated by shadowswap) and `o` (the oracle clone) with the same rows.
async fn twin_tables(db: &PgTestDb, t: &str, o: &str) {
    for name in [t, o] {
        db.exec(&format!(
            "CREATE TABLE {name} (id int PRIMARY KEY, c int, k text NOT NULL DEFAULT 'k'); \
             INSERT INTO {name} (id, c, k) SELECT g, g * 10, 'k' || g FROM generate_series(1, {ROWS}) g"
        ))
        .await;
    }
}

/// Every shape that drops a column and adds one of the same name (COLUMN keyword or not, IF
/// EXISTS, CASCADE, an unquoted name in upper case), plus a type change that keeps the data,
/// each against a native ALTER.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_drop_and_re_add_shape_matches_a_native_alter() {
    let db = PgTestDb::new("pgcols_shapes").await;
    let shapes = [
        "DROP COLUMN c, ADD COLUMN c int NOT NULL DEFAULT 7",
        "DROP c, ADD c int",
        "DROP COLUMN IF EXISTS c CASCADE, ADD COLUMN c text DEFAULT 'new'",
        "DROP COLUMN C RESTRICT, ADD COLUMN C bigint DEFAULT 8",
        "ALTER COLUMN c TYPE bigint",
    ];
    for (i, spec) in shapes.iter().enumerate() {
        let (t, o) = (format!("t{i}"), format!("o{i}"));
        twin_tables(&db, &t, &o).await;
        db.exec(&format!("ALTER TABLE {o} {spec}")).await;
        let cfg = chunked_config(Some(37));
        migrate(&db, &t, spec, cfg).await;
        assert_matches_clone(&db, &t, &o, spec, ROWS as usize).await;
    }
}

/// The dry run shows the re-added column as dropped and added, not as copied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_shows_a_re_added_column_as_dropped_and_added() {
    let db = PgTestDb::new("pgcols_dry_run").await;
    twin_tables(&db, "t", "o").await;
    // Exit 0, nothing created, both tables unchanged.
    let plan = stdout(&dry_run(&db, &["o", "t"], "t", "DROP COLUMN c, ADD COLUMN c int DEFAULT 7", &[]).await);
    assert_plan_re_adds(&plan, "c");
}

/// Application writes during the run (while the backfill copies and while the run waits before
/// its cut-over) never carry the old column's value into the new column of that name. Each write
/// goes to the clone too, which is then ALTERed natively.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_during_the_run_do_not_carry_the_old_value_into_the_re_added_column() {
    let db = PgTestDb::new("pgcols_writers").await;
    twin_tables(&db, "t", "o").await;
    let spec = "DROP COLUMN c, ADD COLUMN c int DEFAULT 7";

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (dsn, stop) = (db.dsn.clone(), stop.clone());
        tokio::spawn(async move {
            let c = client(&dsn).await;
            let mut n: i64 = 0;
            let mut state: u64 = 42;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) || n < 50 {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                let id = (state >> 33) as i64 % (ROWS + 100) + 1;
                let stmt = match n % 3 {
                    0 => format!(
                        "INSERT INTO {{t}} (id, c, k) VALUES ({id}, {}, 'w') ON CONFLICT (id) DO UPDATE SET c = {{t}}.c + 1",
                        id * 1000
                    ),
                    1 => format!("UPDATE {{t}} SET c = c + 5, k = k || 'u' WHERE id = {id}"),
                    _ => format!("DELETE FROM {{t}} WHERE id = {id}"),
                };
                for table in ["t", "o"] {
                    c.batch_execute(&stmt.replace("{t}", table)).await.unwrap();
                }
                n += 1;
            }
            n
        })
    };
    let cfg = chunked_config(Some(5));
    let run = PostponedRun::start(db.dialect().await, cfg, db.table("t"), spec, &db.name, Duration::from_secs(120)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(writer.await.unwrap() >= 50);

    // While the run waits: a new row and updates with explicit values for the old column.
    let app = client(&db.dsn).await;
    for table in ["t", "o"] {
        app.batch_execute(&format!(
            "INSERT INTO {table} (id, c, k) VALUES (100000, 999, 'late'); UPDATE {table} SET c = 555 WHERE id BETWEEN 1 AND 20"
        ))
        .await
        .unwrap();
    }
    run.swap().await;
    db.exec(&format!("ALTER TABLE o {spec}")).await;

    assert_rows_match_clone(&db, "t", "o", spec).await;
    let carried = db.text_rows("SELECT count(*) FROM t WHERE c IS DISTINCT FROM 7").await;
    assert_eq!(carried[0][0].as_deref(), Some("0"), "every row's new c is the new default");
}

/// Defect 8: an added `timestamp DEFAULT now()` column, with the database's default TimeZone
/// Asia/Kolkata (+05:30) and the application's sessions at +05:00 (Asia/Karachi). Backfilled rows get what a
/// plain ALTER from a new session gives (Kolkata time), not UTC; the application's rows get its
/// own clock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_added_now_column_is_filled_in_the_databases_default_zone() {
    let db = PgTestDb::new("pgcols_now").await;
    db.exec(&format!("ALTER DATABASE {} SET TimeZone = 'Asia/Kolkata'", db.name)).await;
    twin_tables(&db, "t", "o").await;
    let spec = "ADD COLUMN created timestamp NOT NULL DEFAULT now()";

    let cfg = chunked_config(Some(50));
    let run = PostponedRun::start(db.dialect().await, cfg, db.table("t"), spec, &db.name, Duration::from_secs(120)).await;
    let app = client(&db.dsn).await;
    app.batch_execute(
        "SET TimeZone = 'Asia/Karachi'; INSERT INTO t (id, c, k) VALUES (100001, 1, 'app'); UPDATE t SET c = 2 WHERE id = 100001",
    )
    .await
    .unwrap();
    drop(app);
    run.swap().await;

    // The oracle: a new session (the database's TimeZone), a plain ALTER.
    let fresh = client(&db.dsn).await;
    fresh.batch_execute(&format!("ALTER TABLE o {spec}")).await.unwrap();
    let worst = fresh
        .query_one("SELECT max(abs(extract(epoch FROM t.created - o.created)))::float8 FROM t JOIN o USING (id)", &[])
        .await
        .unwrap()
        .get::<_, f64>(0);
    assert!(worst <= 60.0, "backfilled values differ from a native ALTER's by up to {worst} s");
    // The application's row: its own +05:00 clock.
    let app_row = fresh
        .query_one(
            "SELECT extract(epoch FROM created - (now() AT TIME ZONE 'Asia/Karachi'))::float8 FROM t WHERE id = 100001",
            &[],
        )
        .await
        .unwrap()
        .get::<_, f64>(0);
    assert!(app_row.abs() <= 120.0, "the application's row is stamped with its +05:00 clock: {app_row} s off");
    drop(fresh);
}

/// Every row of `table` (the `k` of the test below): the exact instant, the key's second column, `v`.
async fn instants(db: &PgTestDb, table: &str) -> Vec<Vec<Option<String>>> {
    db.text_rows(&format!("SELECT extract(epoch FROM ts)::text, n, v FROM {table} ORDER BY ts, n")).await
}

/// Sessions no longer pin `TimeZone = UTC`: with the database's default zone Europe/Berlin,
/// `timestamptz` chunk keys in the hour Berlin passes twice still bind exactly (one-row chunks:
/// every row is a boundary), the capture finds rows by those keys from a Berlin session, and
/// every instant is what it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timestamptz_keys_stay_exact_when_the_default_zone_has_dst() {
    let db = PgTestDb::new("pgcols_dst_keys").await;
    db.exec(&format!("ALTER DATABASE {} SET TimeZone = 'Europe/Berlin'", db.name)).await;
    db.exec(
        "CREATE TABLE k (ts timestamptz NOT NULL, n int NOT NULL, v text, PRIMARY KEY (ts, n)); \
         INSERT INTO k SELECT ts, n, 'v' FROM unnest(ARRAY['2021-10-31 00:30:00.123456+00', '2021-10-31 01:30:00.654321+00', \
         '2021-10-31 00:59:59.999999+00', '2021-10-31 01:00:00+00', '2021-03-28 01:00:00+00']::timestamptz[]) ts \
         CROSS JOIN generate_series(1, 3) n",
    )
    .await;
    let before = instants(&db, "k").await;
    assert_eq!(before.len(), 15);
    let cfg = chunked_config(Some(1));
    let run = PostponedRun::start(
        db.dialect().await,
        cfg,
        db.table("k"),
        "ALTER COLUMN v TYPE varchar(20)",
        &db.name,
        Duration::from_secs(120),
    )
    .await;
    assert_eq!(run.rows_copied(), 15, "one-row chunks copied every row once");
    assert_eq!(instants(&db, "_k_new").await, before, "the backfill copied every instant exactly");
    let app = client(&db.dsn).await;
    app.batch_execute(
        "SET TimeZone = 'Europe/Berlin'; \
         UPDATE k SET v = 'upd' WHERE ts = '2021-10-31 00:30:00.123456+00' AND n = 1; \
         DELETE FROM k WHERE ts = '2021-10-31 01:30:00.654321+00' AND n = 2; \
         UPDATE k SET n = 9 WHERE ts = '2021-10-31 01:00:00+00' AND n = 3",
    )
    .await
    .unwrap();
    let expected = instants(&db, "k").await;
    assert_eq!(expected.len(), 14);
    assert_eq!(instants(&db, "_k_new").await, expected, "the triggers replayed every change by key");
    run.swap().await;
    assert_eq!(instants(&db, "k").await, expected);
    db.assert_clean(&["k"]).await;
}
