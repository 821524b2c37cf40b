//! PostgreSQL: constraints an ALTER creates without a name end with the name a plain ALTER gives
//! them (found by the differential test, PostgreSQL seed 4).
//!
//! `ADD UNIQUE (c2)` on `t` makes `t_c2_key`; shadowswap runs the ALTER on the shadow `_t_new`,
//! where PostgreSQL names it `_t_new_c2_key`, and that name used to survive the swap. The oracle
//! is the server: the same ALTER run natively on a table `t` in another schema, holding the same
//! rows and the same neighbours (PostgreSQL numbers a name that is taken in the schema:
//! `t_c2_key1`), compared constraint by constraint and index by index, names included. The
//! duplicate-key refusals name the key as the user will see it, not the trial copy's or the
//! shadow's internal name.

use shadowswap_engine::{Outcome, Runner, TableRef};
use shadowswap_integration::cli::{run_alter, stderr};
use shadowswap_integration::postgres::PgTestDb;
use shadowswap_integration::run::{chunked_config, fast_config};

const ROWS: i64 = 200;

/// Schema `a` (migrated by shadowswap) and `b` (ALTERed natively), each with the same `t` and the
/// same other relation `t_c3_key` (so `t_c3_key` is taken in both), and `public.r` for foreign
/// keys.
async fn twin_schemas(db: &PgTestDb, create: &str) {
    db.exec("CREATE TABLE IF NOT EXISTS public.r (id int PRIMARY KEY); INSERT INTO public.r SELECT generate_series(1, 10) ON CONFLICT DO NOTHING")
        .await;
    for s in ["a", "b"] {
        db.exec(&format!(
            "DROP SCHEMA IF EXISTS {s} CASCADE; CREATE SCHEMA {s}; SET search_path = {s}; {create}; \
             CREATE TABLE t_c3_key (x int); \
             INSERT INTO t (id, u, c2, c3, c4, c5, rid) SELECT g, g, g, g, g, g, g % 10 + 1 FROM generate_series(1, {ROWS}) g; \
             SET search_path = public"
        ))
        .await;
    }
}

/// Constraints (name, type, definition) and indexes (name, definition without the schema) of
/// `schema.t`, sorted by name.
async fn names_and_definitions(db: &PgTestDb, schema: &str) -> Vec<Vec<Option<String>>> {
    db.text_rows(&format!(
        "SELECT 'constraint', conname, contype::text, pg_get_constraintdef(oid) FROM pg_constraint \
           WHERE conrelid = '{schema}.t'::regclass \
         UNION ALL SELECT 'index', c.relname, '', replace(pg_get_indexdef(i.indexrelid), ' {schema}.t ', ' t ') \
           FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = '{schema}.t'::regclass \
         ORDER BY 1, 2"
    ))
    .await
}

/// Run `spec` natively on `b.t` and with shadowswap on `a.t`; both end with the same constraints
/// and indexes under the same names, and the same rows.
async fn compare(db: &PgTestDb, spec: &str) {
    db.exec(&format!("ALTER TABLE b.t {spec}")).await;
    let cfg = chunked_config(Some(37));
    let runner = Runner::new(db.dialect().await, cfg);
    match runner.run(&TableRef::new("a", "t"), spec).await {
        Ok(Outcome::Swapped(_)) => {}
        other => panic!("{spec}: {other:?}"),
    }
    assert_eq!(names_and_definitions(db, "a").await, names_and_definitions(db, "b").await, "{spec}: constraints and indexes");
    let rows = |s: &str| format!("SELECT * FROM {s}.t ORDER BY id");
    assert_eq!(db.text_rows(&rows("a")).await, db.text_rows(&rows("b")).await, "{spec}: rows");
    let leftovers = db
        .text_rows("SELECT relname FROM pg_class WHERE relname LIKE '\\_t\\_%' AND relnamespace = 'a'::regnamespace ORDER BY 1")
        .await;
    assert!(leftovers.is_empty(), "{spec}: left behind {leftovers:?}");
}

const TABLE: &str = "CREATE TABLE t (id int PRIMARY KEY, u int NOT NULL, c2 int, c3 int, c4 int, c5 int, rid int)";

/// Each kind of constraint an ALTER can add without a name, alone and several at once, with the
/// names PostgreSQL numbers because they are taken (by the table's own key, by another relation).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unnamed_constraints_the_alter_adds_get_the_names_a_plain_alter_gives() {
    let db = PgTestDb::new("gen_names").await;
    let shapes = [
        "ADD UNIQUE (c2)",
        "ADD CHECK (c4 > 0)",
        "ADD CHECK (c4 > 0 AND c5 > 0)",
        "ADD CHECK (c4 > 0), ADD CHECK (c4 < 1000000)",
        "ADD UNIQUE (c2, c4) INCLUDE (c5)",
        "ADD UNIQUE (c3)",
        "ADD EXCLUDE USING btree (c5 WITH =)",
        "ADD FOREIGN KEY (rid) REFERENCES public.r (id)",
        "ADD COLUMN n int NOT NULL DEFAULT 1, ADD UNIQUE (c2, n), ADD CHECK (n > 0)",
        "ADD UNIQUE (c2), ADD UNIQUE (c2), ADD CONSTRAINT named_by_user UNIQUE (c4)",
    ];
    for spec in shapes {
        twin_schemas(&db, TABLE).await;
        compare(&db, spec).await;
    }
    // The table already has a unique key on c2, named t_c2_key: the new one is t_c2_key1.
    twin_schemas(&db, &format!("{TABLE}; ALTER TABLE t ADD UNIQUE (c2)")).await;
    compare(&db, "ADD UNIQUE (c2)").await;
    // A primary key added to a table that has none (chunked on its unique NOT NULL key).
    twin_schemas(&db, "CREATE TABLE t (id int NOT NULL UNIQUE, u int NOT NULL, c2 int, c3 int, c4 int, c5 int, rid int)").await;
    compare(&db, "ADD PRIMARY KEY (u)").await;
}

/// A table name at the identifier limit: PostgreSQL shortens the generated names to 63 bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_names_of_a_long_table_are_shortened_like_postgres() {
    let db = PgTestDb::new("gen_names_long").await;
    let t = "t".repeat(60);
    for s in ["a", "b"] {
        db.exec(&format!(
            "CREATE SCHEMA {s}; CREATE TABLE {s}.{t} (id int PRIMARY KEY, a_rather_long_column_name int); \
             INSERT INTO {s}.{t} SELECT g, g FROM generate_series(1, 100) g"
        ))
        .await;
    }
    let spec = "ADD UNIQUE (a_rather_long_column_name), ADD CHECK (a_rather_long_column_name > 0)";
    db.exec(&format!("ALTER TABLE b.{t} {spec}")).await;
    let runner = Runner::new(db.dialect().await, fast_config());
    assert!(matches!(runner.run(&TableRef::new("a", t.as_str()), spec).await, Ok(Outcome::Swapped(_))));
    let names = |s: &str| format!("SELECT conname FROM pg_constraint WHERE conrelid = '{s}.{t}'::regclass ORDER BY 1");
    let got = db.text_rows(&names("a")).await;
    assert_eq!(got, db.text_rows(&names("b")).await);
    assert_eq!(got.len(), 3, "{got:?}");
}

/// The duplicate-key refusals name the key the ALTER would create on the table (`t_c2_key`),
/// found before anything is created (dry run and run) or by the copy (a key over an added
/// column), and change nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_key_refusals_name_the_key_as_a_plain_alter_names_it() {
    let db = PgTestDb::new("gen_names_dup").await;
    db.exec("CREATE TABLE t (id int PRIMARY KEY, c2 int); INSERT INTO t SELECT g, g % 3 FROM generate_series(1, 50) g").await;
    for extra in [&[][..], &["--execute"][..]] {
        let out = run_alter(&db.dsn, "t", "ADD UNIQUE (c2)", extra).await;
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{extra:?}: {err}");
        assert!(err.contains("unique key t_c2_key "), "{extra:?}: {err}");
        assert!(!err.contains("_t_"), "{extra:?}: an internal name shows: {err}");
    }
    let out = run_alter(&db.dsn, "t", "ADD COLUMN n int NOT NULL DEFAULT 1, ADD UNIQUE (c2, n)", &["--execute"]).await;
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("unique key t_c2_n_key "), "{err}");
    assert!(!err.contains("_t_new"), "an internal name shows: {err}");
    db.assert_clean(&["t"]).await;
    let names = db.text_rows("SELECT conname FROM pg_constraint WHERE conrelid = 't'::regclass ORDER BY 1").await;
    assert_eq!(names, [[Some("t_pkey".to_string())]], "the table is unchanged");
}
