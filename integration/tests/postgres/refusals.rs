//! PostgreSQL preflight refusals, through the real `shadowswap` binary with `--execute`, so a
//! refusal is really what stops the run. For every kind of bad input the test checks that
//! 1. the exit status is 1 (not 0, not a panic's 101),
//! 2. the last line of stderr is the one error line, `shadowswap: error: …`, naming the problem
//!    and the remedy,
//! 3. nothing was left behind: no `_t_new`, no `_t_old`, no capture function or trigger,
//! 4. the original is unchanged: columns, indexes, constraints, triggers, its relfilenode (no
//!    rewrite) and every row.
//!
//! Besides the refusals MariaDB shares, PostgreSQL refuses partitioned tables and partitions,
//! inheritance, tables published for logical replication, unlogged and temporary tables, rules,
//! self-referencing foreign keys, materialized views over the table, and ALTERs that name an
//! index or key. Also: the dry run prints the plan and changes nothing, and refusals that only the
//! copy can find undo what the run created (a run killed mid-backfill: `lifecycle.rs`).

use std::process::Output;

use shadowswap_engine::names::{byte_len, Names};
use shadowswap_integration::cli::{assert_refused, run_alter, run_cli, stderr, stdout, Unchanged};
use shadowswap_integration::postgres::{client, PgTestDb};

/// Definition and rows of some tables, to compare before and after a run.
#[derive(Debug, PartialEq, Eq)]
struct Snapshot(Vec<(String, Vec<Vec<Option<String>>>)>);

async fn snapshot(db: &PgTestDb, tables: &[&str]) -> Snapshot {
    let mut out = Vec::new();
    for t in tables {
        let mut parts = Vec::new();
        for q in [
            format!(
                "SELECT column_name, data_type, udt_name, is_nullable, column_default, character_maximum_length::text, \
                        is_identity, is_generated, generation_expression \
                 FROM information_schema.columns WHERE table_schema = 'public' AND table_name = '{t}' ORDER BY ordinal_position"
            ),
            format!("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' AND tablename = '{t}' ORDER BY 1"),
            format!(
                "SELECT conname, pg_get_constraintdef(oid), convalidated::text FROM pg_constraint \
                 WHERE conrelid = 'public.{t}'::regclass ORDER BY 1"
            ),
            format!(
                "SELECT tgname, pg_get_triggerdef(oid), tgenabled::text FROM pg_trigger \
                 WHERE tgrelid = 'public.{t}'::regclass AND NOT tgisinternal ORDER BY 1"
            ),
            format!(
                "SELECT relkind::text, relpersistence::text, relfilenode::text, coalesce(array_to_string(relacl, ','), ''), \
                        coalesce(obj_description(oid, 'pg_class'), '') FROM pg_class WHERE oid = 'public.{t}'::regclass"
            ),
            format!("SELECT x::text FROM public.{t} x ORDER BY 1"),
        ] {
            parts.extend(db.text_rows(&q).await);
        }
        out.push((t.to_string(), parts));
    }
    Snapshot(out)
}

/// `public` holds exactly `tables` (in any order) and no capture function or trigger is left.
async fn assert_clean(db: &PgTestDb, tables: &[&str]) {
    let mut want: Vec<String> = tables.iter().map(|t| t.to_string()).collect();
    want.sort();
    let mut got = db.tables().await;
    got.sort();
    assert_eq!(got, want, "tables left in {}", db.name);
    assert!(db.capture_leftovers().await.is_empty(), "capture objects left: {:?}", db.capture_leftovers().await);
}

/// Run `shadowswap alter --execute --table <table> --alter <alter> <extra…>` against `db` and
/// check all four points ([`Unchanged::refused`]); `tables` are the tables the test created (they
/// must stay exactly as they were, and be the only ones). Returns the error line.
async fn refused(db: &PgTestDb, table: &str, alter: &str, extra: &[&str], tables: &[&str], expect: &[&str]) -> String {
    let checks = Unchanged { snapshot: || snapshot(db, tables), assert_clean: || assert_clean(db, tables) };
    checks.refused(&db.dsn, table, alter, extra, expect).await
}

/// A dry run of `alter` on `t` ([`Unchanged::dry_run`]): it must pass and change nothing.
async fn dry_run(db: &PgTestDb, alter: &str, extra: &[&str]) -> Output {
    let checks = Unchanged { snapshot: || snapshot(db, &["t"]), assert_clean: || assert_clean(db, &["t"]) };
    checks.dry_run(&db.dsn, "t", alter, extra).await
}

/// A small table `t` with a primary key, an email column with one duplicate value, NULLs, a
/// timestamptz, a plain index, a CHECK constraint, a comment and a grant.
async fn table_t(name: &str) -> PgTestDb {
    let db = PgTestDb::new(name).await;
    db.exec(
        "CREATE TABLE t (id int PRIMARY KEY, email text, n int CONSTRAINT t_n_check CHECK (n > 0), ts timestamptz, d timestamp);
         CREATE INDEX t_n_idx ON t (n);
         COMMENT ON TABLE t IS 'the t';
         GRANT SELECT ON t TO app;
         INSERT INTO t VALUES (1, 'ann@example.org', 10, '2021-10-31 00:30:00+00', '2021-10-31 02:30:00'),
                              (2, 'bob@example.org', NULL, NULL, NULL),
                              (3, 'ann@example.org', 30, '2021-10-31 01:30:00+00', NULL),
                              (4, NULL, 40, NULL, NULL)",
    )
    .await;
    db
}

#[tokio::test]
async fn missing_table_schema_or_database() {
    let db = table_t("pgref_missing").await;
    refused(&db, "nosuch", "ADD COLUMN c int", &[], &["t"], &["table public.nosuch does not exist", "check --table"]).await;
    refused(&db, "nosch.t", "ADD COLUMN c int", &[], &["t"], &["table nosch.t does not exist", "check --table"]).await;
    // Names are case-sensitive in the catalog: T is not t.
    refused(&db, "T", "ADD COLUMN c int", &[], &["t"], &["table public.T does not exist"]).await;

    let dsn = db.dsn.replace("ssw_pgref_missing", "ssw_pgref_missing_nosuch");
    let out = run_cli(&["alter", "--dsn", &dsn, "--table", "t", "--alter", "ADD COLUMN c int", "--execute"], &[]).await;
    assert_refused(&out, &["database ssw_pgref_missing_nosuch does not exist", "check the DSN"]);
    assert!(
        db.text_rows("SELECT 1 FROM pg_database WHERE datname = 'ssw_pgref_missing_nosuch'").await.is_empty(),
        "the database was created"
    );
    assert_clean(&db, &["t"]).await;
}

#[tokio::test]
async fn tables_without_a_usable_key() {
    let db = PgTestDb::new("pgref_no_key").await;
    db.exec(
        "CREATE TABLE nokey (a int NOT NULL, b text); CREATE INDEX nokey_a ON nokey (a);
         INSERT INTO nokey VALUES (1, 'x'), (1, 'x'), (2, NULL);
         CREATE TABLE nullable (a int, b int NOT NULL, CONSTRAINT nullable_ab UNIQUE (a, b));
         INSERT INTO nullable VALUES (NULL, 1), (NULL, 1), (2, 1);
         CREATE TABLE partial (a int NOT NULL); CREATE UNIQUE INDEX partial_a ON partial (a) WHERE a > 0;
         CREATE TABLE jkey (j jsonb PRIMARY KEY); INSERT INTO jkey VALUES ('{}'), ('[]')",
    )
    .await;
    let tables = ["jkey", "nokey", "nullable", "partial"];
    for t in ["nokey", "nullable", "partial"] {
        refused(
            &db,
            t,
            "ADD COLUMN c int",
            &[],
            &tables,
            &[&format!("public.{t} has no primary key and no unique key over NOT NULL columns"), "add one before migrating"],
        )
        .await;
    }
    refused(
        &db,
        "jkey",
        "ADD COLUMN c int",
        &[],
        &tables,
        &["no key of public.jkey can drive chunking", "jkey_pkey (j is jsonb)", "add a unique NOT NULL key"],
    )
    .await;
}

#[tokio::test]
async fn alter_leaves_no_usable_key() {
    let db = table_t("pgref_drop_key").await;
    db.exec("CREATE TABLE u (code text NOT NULL CONSTRAINT u_code_key UNIQUE, v int); INSERT INTO u VALUES ('a', 1), ('b', 2)")
        .await;
    let tables = ["t", "u"];
    // Dropping the key column drops the primary key with it.
    refused(
        &db,
        "t",
        "DROP COLUMN id",
        &[],
        &tables,
        &["the ALTER leaves no unique NOT NULL key", "t_pkey", "keep one of them unchanged in the ALTER"],
    )
    .await;
    // The only key stops being NOT NULL.
    refused(
        &db,
        "u",
        "ALTER COLUMN code DROP NOT NULL",
        &[],
        &tables,
        &["the ALTER leaves no unique NOT NULL key", "u_code_key"],
    )
    .await;
    // A new primary key over other columns carries nothing over.
    refused(
        &db,
        "u",
        "DROP CONSTRAINT u_code_key, ADD PRIMARY KEY (v)",
        &[],
        &tables,
        &["the ALTER names an index or key of public.u (u_code_key)", "run that clause directly with ALTER TABLE"],
    )
    .await;
    // Naming the key: the shadow copy's keys have other names until the swap.
    for spec in ["DROP CONSTRAINT t_pkey", "DROP CONSTRAINT IF EXISTS \"t_pkey\"", "REPLICA IDENTITY USING INDEX t_pkey"] {
        refused(
            &db,
            "t",
            spec,
            &[],
            &tables,
            &["the ALTER names an index or key of public.t (t_pkey)", "run that clause directly with ALTER TABLE"],
        )
        .await;
    }
}

#[tokio::test]
async fn alter_that_renames_or_moves_the_table() {
    let db = table_t("pgref_rename_table").await;
    db.exec("CREATE SCHEMA x").await;
    for spec in ["RENAME TO x", "ADD COLUMN c int, RENAME TO x", "rename to \"T2\""] {
        refused(&db, "t", spec, &[], &["t"], &["the ALTER renames the table", "before or after the migration"]).await;
    }
    for spec in ["SET SCHEMA x", "set schema public"] {
        refused(&db, "t", spec, &[], &["t"], &["the ALTER moves the table to another schema", "do that separately"]).await;
    }
    assert!(db.text_rows("SELECT 1 FROM pg_class WHERE relnamespace = 'x'::regnamespace").await.is_empty());
}

#[tokio::test]
async fn alter_the_server_rejects() {
    let db = table_t("pgref_server_rejects").await;
    let fix = "fix the ALTER spec (it is what follows ALTER TABLE t)";
    refused(
        &db,
        "t",
        "DROP COLUMN nosuch",
        &[],
        &["t"],
        &["the server rejected the ALTER", "column \"nosuch\"", "does not exist", fix],
    )
    .await;
    refused(
        &db,
        "t",
        "ADDD COLUMN x int",
        &[],
        &["t"],
        &["the server rejected the ALTER", "syntax error at or near \"ADDD\"", fix],
    )
    .await;
    refused(
        &db,
        "t",
        "ADD COLUMN email int",
        &[],
        &["t"],
        &["the server rejected the ALTER", "column \"email\"", "already exists"],
    )
    .await;
    refused(&db, "t", "ALTER COLUMN n TYPE nosuchtype", &[], &["t"], &["the server rejected the ALTER", "nosuchtype"]).await;
}

#[tokio::test]
async fn statement_injection_is_refused() {
    let db = table_t("pgref_injection").await;
    db.exec("CREATE TABLE victim (id int PRIMARY KEY); INSERT INTO victim VALUES (1)").await;
    let tables = ["t", "victim"];
    for spec in [
        "ADD COLUMN c int; DROP TABLE t",
        "ADD COLUMN c int; DROP TABLE victim",
        "ADD COLUMN c int;",
        "ADD COLUMN c text DEFAULT $$x$$; DROP TABLE victim",
        "ADD COLUMN c int -- a comment\n; DROP TABLE victim",
        "ADD COLUMN c text DEFAULT E'\\''; DROP TABLE victim; --'",
        // With standard_conforming_strings (on since PostgreSQL 9.1) a backslash is no escape:
        // the string ends at the second quote, as the server reads it.
        "ADD COLUMN c text DEFAULT 'a\\'; DROP TABLE victim; --'",
    ] {
        refused(&db, "t", spec, &[], &tables, &["the ALTER spec contains ';'", "give one ALTER spec, not several statements"])
            .await;
    }
    assert_eq!(db.text_rows("SELECT count(*) FROM victim").await, [[Some("1".to_string())]]);
}

#[tokio::test]
async fn empty_alter_and_whole_statement() {
    let db = table_t("pgref_empty").await;
    for spec in ["", "   ", "/* nothing */", " -- nothing"] {
        refused(&db, "t", spec, &[], &["t"], &["the ALTER spec is empty", "give what follows ALTER TABLE t"]).await;
    }
    refused(&db, "t", "ADD COLUMN c int,", &[], &["t"], &["empty clause"]).await;
    refused(&db, "t", "ALTER TABLE t ADD COLUMN c int", &[], &["t"], &["--alter takes what follows ALTER TABLE t"]).await;
}

#[tokio::test]
async fn column_rename_needs_approval() {
    let db = table_t("pgref_rename_column").await;
    for spec in ["RENAME COLUMN email TO mail", "RENAME email TO mail", "rename column \"email\" to mail"] {
        refused(&db, "t", spec, &[], &["t"], &["the ALTER renames columns (email -> mail)", "add --approve-renamed-columns"])
            .await;
    }
    // Approved, but naming a column the table does not have.
    refused(&db, "t", "RENAME COLUMN nosuch TO x", &["--approve-renamed-columns"], &["t"], &["nosuch"]).await;
}

#[tokio::test]
async fn columns_the_online_copy_cannot_fill_or_convert() {
    let db = table_t("pgref_columns").await;
    refused(
        &db,
        "t",
        "ADD COLUMN c int NOT NULL",
        &[],
        &["t"],
        &["the ALTER adds NOT NULL column c without a DEFAULT", "give it a DEFAULT (or make it NULL)"],
    )
    .await;
    for (spec, from, to) in [
        ("ALTER COLUMN ts TYPE timestamp", "timestamp with time zone", "timestamp without time zone"),
        ("ALTER COLUMN d TYPE timestamptz", "timestamp without time zone", "timestamp with time zone"),
    ] {
        let col = if spec.contains(" ts ") { "ts" } else { "d" };
        refused(
            &db,
            "t",
            spec,
            &[],
            &["t"],
            &[
                &format!("the ALTER changes column {col} from {from} to {to}"),
                "depends on the session TimeZone",
                "add a new column and fill it yourself",
            ],
        )
        .await;
    }
}

#[tokio::test]
async fn new_unique_key_over_duplicate_data() {
    let db = table_t("pgref_duplicates").await;
    let expect = [
        "the ALTER adds unique key uk_email but public.t has duplicate values for it",
        "('ann@example.org') occurs 2 times",
        "remove the duplicates or drop the unique key from the ALTER",
    ];
    refused(&db, "t", "ADD CONSTRAINT uk_email UNIQUE (email)", &[], &["t"], &expect).await;
    // The dry run finds them too.
    let out =
        run_cli(&["alter", "--dsn", &db.dsn, "--table", "t", "--alter", "ADD CONSTRAINT uk_email UNIQUE (email)"], &[]).await;
    assert_refused(&out, &expect);
    // Two columns; NULLs never collide.
    db.exec("INSERT INTO t (id, email, n) VALUES (5, 'cy@example.org', 7), (6, 'cy@example.org', 7), (7, NULL, 8), (8, NULL, 8)")
        .await;
    refused(
        &db,
        "t",
        "ADD COLUMN c int, ADD CONSTRAINT uk_email_n UNIQUE (email, n)",
        &[],
        &["t"],
        &["unique key uk_email_n", "('cy@example.org', '7') occurs 2 times"],
    )
    .await;
    // Duplicates that only the new column shows: found by the copy, which undoes what the run
    // created; no row is lost.
    db.exec("DELETE FROM t WHERE id > 2; UPDATE t SET email = 'ANN@example.org' WHERE id = 2").await;
    refused(
        &db,
        "t",
        "ADD COLUMN le text GENERATED ALWAYS AS (lower(email)) STORED, ADD CONSTRAINT uk_le UNIQUE (le)",
        &[],
        &["t"],
        &["unique key uk_le", "(le)=(ann@example.org)", "remove the duplicates"],
    )
    .await;
}

#[tokio::test]
async fn altered_table_rejects_existing_rows() {
    let db = table_t("pgref_rows_do_not_fit").await;
    for (spec, why) in [
        ("ALTER COLUMN email TYPE varchar(5)", "value too long"),
        ("ALTER COLUMN n SET NOT NULL", "null value in column \"n\""),
        ("ADD CONSTRAINT t_n_small CHECK (n < 20)", "t_n_small"),
    ] {
        refused(
            &db,
            "t",
            spec,
            &[],
            &["t"],
            &["the altered table rejects a row of public.t", why, "change the ALTER so the existing data fits"],
        )
        .await;
    }
}

#[tokio::test]
async fn another_run_holds_the_table() {
    let db = table_t("pgref_advisory_lock").await;
    let lock = Names::new(&db.table("t"), shadowswap_postgres::MAX_IDENTIFIER_BYTES, byte_len).lock;
    assert_eq!(lock, "shadowswap:public.t");
    let holder = client(&db.dsn).await;
    let got: bool = holder.query_one("SELECT pg_try_advisory_lock(hashtextextended($1, 0))", &[&lock]).await.unwrap().get(0);
    assert!(got);
    let expect = ["another shadowswap run is working on public.t", "wait for it to finish, or stop it first"];
    refused(&db, "t", "ADD COLUMN c int", &[], &["t"], &expect).await;
    // The dry run and cleanup respect it too.
    let out = run_cli(&["alter", "--dsn", &db.dsn, "--table", "t", "--alter", "ADD COLUMN c int"], &[]).await;
    assert_refused(&out, &expect);
    let out = run_cli(&["cleanup", "--dsn", &db.dsn, "--table", "t"], &[]).await;
    assert_refused(&out, &expect);
    // Another table is not held up by it.
    db.exec("CREATE TABLE t2 (id int PRIMARY KEY)").await;
    let out = run_cli(&["alter", "--dsn", &db.dsn, "--table", "t2", "--alter", "ADD COLUMN c int"], &[]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // Once it is released, the same run passes preflight: the lock was the only reason.
    let released: bool = holder.query_one("SELECT pg_advisory_unlock(hashtextextended($1, 0))", &[&lock]).await.unwrap().get(0);
    assert!(released);
    let out = run_cli(&["alter", "--dsn", &db.dsn, "--table", "t", "--alter", "ADD COLUMN c int"], &[]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_clean(&db, &["t", "t2"]).await;
}

#[tokio::test]
async fn partitioned_and_inherited_tables() {
    let db = PgTestDb::new("pgref_partitions").await;
    db.exec(
        "CREATE TABLE part (id int PRIMARY KEY, v int) PARTITION BY RANGE (id);
         CREATE TABLE part_1 PARTITION OF part FOR VALUES FROM (0) TO (100);
         CREATE TABLE part_2 PARTITION OF part FOR VALUES FROM (100) TO (200);
         INSERT INTO part VALUES (1, 1), (150, 2);
         CREATE TABLE parent (id int PRIMARY KEY, v int);
         CREATE TABLE kid (extra int) INHERITS (parent);
         ALTER TABLE kid ADD PRIMARY KEY (id);
         INSERT INTO parent VALUES (1, 1); INSERT INTO kid VALUES (2, 2, 2)",
    )
    .await;
    let tables = ["kid", "parent", "part", "part_1", "part_2"];
    refused(
        &db,
        "part",
        "ADD COLUMN c int",
        &[],
        &tables,
        &["public.part is partitioned", "shadowswap does not migrate partitioned tables"],
    )
    .await;
    refused(
        &db,
        "part_1",
        "ADD COLUMN c int",
        &[],
        &tables,
        &["public.part_1 takes part in table inheritance (public.part)", "does not migrate inheritance trees"],
    )
    .await;
    refused(&db, "parent", "ADD COLUMN c int", &[], &tables, &["public.parent takes part in table inheritance (public.kid)"])
        .await;
    refused(&db, "kid", "ADD COLUMN c int", &[], &tables, &["public.kid takes part in table inheritance (public.parent)"]).await;
}

#[tokio::test]
async fn published_unlogged_and_temporary_tables() {
    let db = PgTestDb::new("pgref_persistence").await;
    db.exec(
        "CREATE TABLE pub (id int PRIMARY KEY, v int); INSERT INTO pub VALUES (1, 1);
         CREATE PUBLICATION ssw_pgref_pub FOR TABLE pub;
         CREATE TABLE puball (id int PRIMARY KEY);
         CREATE UNLOGGED TABLE unl (id int PRIMARY KEY, v int); INSERT INTO unl VALUES (1, 1)",
    )
    .await;
    let tables = ["pub", "puball", "unl"];
    refused(
        &db,
        "pub",
        "ADD COLUMN c int",
        &[],
        &tables,
        &[
            "public.pub is published for logical replication (publication ssw_pgref_pub)",
            "Remove it with ALTER PUBLICATION … DROP TABLE for the migration, add it back afterwards and refresh the subscriptions",
        ],
    )
    .await;
    refused(&db, "unl", "ADD COLUMN c int", &[], &tables, &["public.unl is UNLOGGED", "Make it LOGGED first"]).await;
    // A temporary table lives in the creating session's temporary schema.
    db.exec("CREATE TEMPORARY TABLE tmp (id int PRIMARY KEY); INSERT INTO tmp VALUES (1)").await;
    let schema = db.text_rows("SELECT nspname FROM pg_namespace WHERE oid = pg_my_temp_schema()").await[0][0].clone().unwrap();
    let out = run_cli(
        &["alter", "--dsn", &db.dsn, "--table", &format!("{schema}.tmp"), "--alter", "ADD COLUMN c int", "--execute"],
        &[],
    )
    .await;
    assert_refused(&out, &[&format!("{schema}.tmp is a temporary table"), "migrate it with a plain ALTER TABLE"]);
    assert_eq!(
        db.text_rows("SELECT count(*) FROM pg_class WHERE relnamespace = pg_my_temp_schema() AND relkind = 'r'").await,
        [[Some("1".to_string())]]
    );
    assert_clean(&db, &tables).await;
    // A publication of all tables covers every table.
    db.exec("CREATE PUBLICATION ssw_pgref_all FOR ALL TABLES").await;
    refused(&db, "puball", "ADD COLUMN c int", &[], &tables, &["public.puball is published", "ssw_pgref_all"]).await;
    db.exec("DROP PUBLICATION ssw_pgref_all").await;
}

#[tokio::test]
async fn objects_the_swap_cannot_carry_over() {
    let db = PgTestDb::new("pgref_dependents").await;
    db.exec(
        "CREATE TABLE selfref (id int PRIMARY KEY, parent int CONSTRAINT selfref_parent_fk REFERENCES selfref (id));
         INSERT INTO selfref VALUES (1, NULL), (2, 1);
         CREATE TABLE mv_src (id int PRIMARY KEY, v int); INSERT INTO mv_src VALUES (1, 1);
         CREATE MATERIALIZED VIEW mv AS SELECT id, v FROM mv_src;
         CREATE TABLE ruled (id int PRIMARY KEY);
         CREATE RULE ruled_no_delete AS ON DELETE TO ruled DO INSTEAD NOTHING;
         CREATE VIEW v AS SELECT id FROM mv_src",
    )
    .await;
    let tables = ["mv_src", "ruled", "selfref"];
    refused(
        &db,
        "selfref",
        "ADD COLUMN c int",
        &[],
        &tables,
        &["public.selfref has a foreign key to itself (selfref_parent_fk)", "drop it for the migration"],
    )
    .await;
    refused(
        &db,
        "mv_src",
        "ADD COLUMN c int",
        &[],
        &tables,
        &["materialized views depend on public.mv_src (public.mv)", "drop them for the migration and recreate them afterwards"],
    )
    .await;
    refused(&db, "ruled", "ADD COLUMN c int", &[], &tables, &["public.ruled has rules (ruled_no_delete)", "drop them"]).await;
    for (rel, kind) in [("mv", "m"), ("v", "v")] {
        refused(
            &db,
            rel,
            "ADD COLUMN c int",
            &[],
            &tables,
            &[&format!("public.{rel} is not a plain table (relkind {kind})"), "shadowswap migrates tables"],
        )
        .await;
    }
    assert_eq!(db.text_rows("SELECT count(*) FROM mv").await, [[Some("1".to_string())]]);
}

/// The swap re-creates views, policies, foreign keys and triggers from their definitions, which
/// name columns as they were: an ALTER that renames or drops a column they use (or changes the
/// type of one a view uses) is refused before anything is created, not after the copy.
#[tokio::test]
async fn columns_other_objects_use() {
    let db = PgTestDb::new("pgref_column_users").await;
    db.exec(
        "CREATE TABLE t (id int PRIMARY KEY, n int, k int, free int); INSERT INTO t VALUES (1, 1, 1, 1), (2, 2, 2, 2);
         CREATE VIEW v AS SELECT id, n FROM t;
         CREATE TABLE child (id int PRIMARY KEY, t_id int CONSTRAINT child_t_fk REFERENCES t (id));
         CREATE TABLE p (id int PRIMARY KEY, k int, note text); INSERT INTO p VALUES (1, 5, 'x');
         ALTER TABLE p ENABLE ROW LEVEL SECURITY; CREATE POLICY p_k ON p USING (k > 0);
         CREATE FUNCTION noop() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$;
         CREATE TRIGGER p_note AFTER UPDATE OF note ON p FOR EACH ROW EXECUTE FUNCTION noop()",
    )
    .await;
    let tables = ["child", "p", "t"];
    let remedy = "Drop them for the migration and re-create them afterwards, or change the ALTER";
    let approve = ["--approve-renamed-columns"];
    for (table, spec, extra, users) in [
        ("t", "RENAME COLUMN n TO n2", &approve[..], "view public.v (uses n)"),
        ("t", "DROP COLUMN n", &[][..], "view public.v (uses n)"),
        ("t", "ALTER COLUMN n TYPE bigint", &[][..], "view public.v (uses n)"),
        (
            "t",
            "RENAME COLUMN id TO tid",
            &approve[..],
            "foreign key child_t_fk of public.child (uses id), view public.v (uses id)",
        ),
        ("p", "RENAME COLUMN k TO k2", &approve[..], "policy p_k (uses k)"),
        ("p", "DROP COLUMN note", &[][..], "trigger p_note (uses note)"),
    ] {
        let expect =
            format!("the ALTER renames, drops or changes the type of columns of public.{table} that other objects use: {users};");
        refused(&db, table, spec, extra, &tables, &[&expect, remedy]).await;
    }
    // Columns nobody else uses are free to change.
    let out =
        run_alter(&db.dsn, "t", "ALTER COLUMN k TYPE bigint, DROP COLUMN free", &["--approve-renamed-columns", "--execute"])
            .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(db.text_rows("SELECT id, n FROM v ORDER BY id").await.len(), 2);
}

#[tokio::test]
async fn leftovers_of_an_earlier_run() {
    let db = table_t("pgref_leftovers").await;
    for leftover in ["_t_new", "_t_old"] {
        db.exec(&format!("CREATE TABLE {leftover} (id int PRIMARY KEY, half_done int); INSERT INTO {leftover} VALUES (1, 1)"))
            .await;
        refused(
            &db,
            "t",
            "ADD COLUMN c int",
            &[],
            &["t", leftover],
            &[&format!("public.{leftover} already exists"), "run `shadowswap cleanup` for this table, or drop or rename it"],
        )
        .await;
        db.exec(&format!("DROP TABLE {leftover}")).await;
    }
    // A capture function of a dead run (its trigger may be gone already).
    db.exec("CREATE FUNCTION _t_ssw_upd() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$").await;
    let before = snapshot(&db, &["t"]).await;
    let out = run_cli(&["alter", "--dsn", &db.dsn, "--table", "t", "--alter", "ADD COLUMN c int", "--execute"], &[]).await;
    assert_refused(&out, &["public.t still has capture triggers from an earlier shadowswap run", "run `shadowswap cleanup`"]);
    assert_eq!(db.capture_leftovers().await, ["_t_ssw_upd"], "exactly the old function, nothing new");
    assert_eq!(snapshot(&db, &["t"]).await, before);
    let out = run_cli(&["cleanup", "--dsn", &db.dsn, "--table", "t"], &[]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("dropped capture triggers: _t_ssw_upd"), "{}", stdout(&out));
    assert_clean(&db, &["t"]).await;
}

#[tokio::test]
async fn dry_run_changes_nothing() {
    let db = table_t("pgref_dry_run").await;
    db.exec("ANALYZE t").await;
    let spec = "ADD COLUMN note varchar(20), DROP COLUMN n, ADD CONSTRAINT t_note_uq UNIQUE (note)";
    let out = dry_run(&db, spec, &[]).await;
    let plan = stdout(&out);
    for expect in [
        "table:          public.t\n",
        &format!("alter:          {spec}\n"),
        "shadow table:   public._t_new\n",
        "old table:      public._t_old (after the swap)\n",
        "chunk key:      t_pkey (id)\n",
        "estimated rows: 4\n",
        "column mapping:\n  id\n  email\n  ts\n  d\n  note (added: default or computed value)\n  n (dropped)\n",
        "new unique key: t_note_uq (covers added columns: a duplicate stops the copy)\n",
        "shadow DDL:\n  CREATE TABLE \"public\".\"_t_new\" (LIKE \"public\".\"t\" INCLUDING ALL);\n",
        &format!("  ALTER TABLE \"public\".\"_t_new\" {spec};\n"),
        "capture triggers:\n",
        "CREATE FUNCTION \"public\".\"_t_ssw_ins\"() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER",
        "CREATE TRIGGER \"_t_ssw_upd\" AFTER UPDATE ON \"public\".\"t\" FOR EACH ROW EXECUTE FUNCTION \"public\".\"_t_ssw_upd\"()",
        "CREATE TRIGGER \"_t_ssw_del\" AFTER DELETE ON \"public\".\"t\"",
        "copy chunk:\n  INSERT INTO \"public\".\"_t_new\"",
        "cut-over:\n  BEGIN; SET LOCAL lock_timeout = …; LOCK TABLE \"public\".\"t\", \"public\".\"_t_new\" IN ACCESS EXCLUSIVE MODE;",
        "dry run: every preflight check passed and nothing was changed; add --execute to migrate",
    ] {
        assert!(plan.contains(expect), "the plan lacks {expect:?}:\n{plan}");
    }
    assert!(!stderr(&out).contains("ERROR"), "{}", stderr(&out));

    // A rename, approved, shows up in the mapping; still nothing changes.
    let out = dry_run(&db, "RENAME COLUMN n TO amount", &["--approve-renamed-columns"]).await;
    assert!(stdout(&out).contains("  amount <- n (renamed)\n"), "{}", stdout(&out));
}
