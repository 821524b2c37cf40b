//! PostgreSQL preflight refusals, through the real `shadowswap` binary with `--execute`, so a
//! refusal is really what stops the run. Each test is a table: a setup (the tables it creates),
//! then rows of (table, ALTER, expected phrases) run by the refusal driver both dialects share,
//! [`refuses`], which checks for every row that
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
//! index or key. Refusals that leave something the driver would count as left behind (a
//! temporary table, a leftover of an earlier run) are checked by hand. Also: the dry run prints
//! the plan and changes nothing, and refusals that only the copy can find undo what the run
//! created (a run killed mid-backfill: `lifecycle.rs`).

use shadowswap_engine::names::{byte_len, Names};
use shadowswap_integration::cli::{assert_refused, dry_run, refuses, run_alter, run_cli, stderr, stdout, Refusal};
use shadowswap_integration::db::TestDatabase;
use shadowswap_integration::postgres::{client, PgTestDb};

/// The setup most tables share: `t` with a primary key, an email column with one duplicate value,
/// NULLs, a timestamptz, a plain index, a CHECK constraint, a comment and a grant.
const T: &str =
    "CREATE TABLE t (id int PRIMARY KEY, email text, n int CONSTRAINT t_n_check CHECK (n > 0), ts timestamptz, d timestamp);
     CREATE INDEX t_n_idx ON t (n);
     COMMENT ON TABLE t IS 'the t';
     GRANT SELECT ON t TO app;
     INSERT INTO t VALUES (1, 'ann@example.org', 10, '2021-10-31 00:30:00+00', '2021-10-31 02:30:00'),
                          (2, 'bob@example.org', NULL, NULL, NULL),
                          (3, 'ann@example.org', 30, '2021-10-31 01:30:00+00', NULL),
                          (4, NULL, 40, NULL, NULL)";

#[tokio::test]
async fn missing_table_schema_or_database() {
    let db = PgTestDb::with_setup("pgref_missing", T).await;
    refuses(
        &db,
        &["t"],
        [
            Refusal::new("nosuch", "ADD COLUMN c int", &["table public.nosuch does not exist", "check --table"]),
            Refusal::new("nosch.t", "ADD COLUMN c int", &["table nosch.t does not exist", "check --table"]),
            // Names are case-sensitive in the catalog: T is not t.
            Refusal::new("T", "ADD COLUMN c int", &["table public.T does not exist"]),
        ],
    )
    .await;

    let dsn = db.dsn.replace("ssw_pgref_missing", "ssw_pgref_missing_nosuch");
    let out = run_cli(&["alter", "--dsn", &dsn, "--table", "t", "--alter", "ADD COLUMN c int", "--execute"], &[]).await;
    assert_refused(&out, &["database ssw_pgref_missing_nosuch does not exist", "check the DSN"]);
    assert!(
        db.text_rows("SELECT 1 FROM pg_database WHERE datname = 'ssw_pgref_missing_nosuch'").await.is_empty(),
        "the database was created"
    );
    db.assert_clean_any_order(&["t"]).await;
}

#[tokio::test]
async fn tables_without_a_usable_key() {
    let db = PgTestDb::with_setup(
        "pgref_no_key",
        "CREATE TABLE nokey (a int NOT NULL, b text); CREATE INDEX nokey_a ON nokey (a);
         INSERT INTO nokey VALUES (1, 'x'), (1, 'x'), (2, NULL);
         CREATE TABLE nullable (a int, b int NOT NULL, CONSTRAINT nullable_ab UNIQUE (a, b));
         INSERT INTO nullable VALUES (NULL, 1), (NULL, 1), (2, 1);
         CREATE TABLE partial (a int NOT NULL); CREATE UNIQUE INDEX partial_a ON partial (a) WHERE a > 0;
         CREATE TABLE jkey (j jsonb PRIMARY KEY); INSERT INTO jkey VALUES ('{}'), ('[]')",
    )
    .await;
    let no_key = |t: &str| {
        let expect = format!("public.{t} has no primary key and no unique key over NOT NULL columns");
        Refusal::new(t, "ADD COLUMN c int", &[&expect, "add one before migrating"])
    };
    refuses(
        &db,
        &["jkey", "nokey", "nullable", "partial"],
        [
            no_key("nokey"),
            no_key("nullable"),
            no_key("partial"),
            Refusal::new(
                "jkey",
                "ADD COLUMN c int",
                &["no key of public.jkey can drive chunking", "jkey_pkey (j is jsonb)", "add a unique NOT NULL key"],
            ),
        ],
    )
    .await;
}

#[tokio::test]
async fn alter_leaves_no_usable_key() {
    let db = PgTestDb::with_setup("pgref_drop_key", T).await;
    db.exec("CREATE TABLE u (code text NOT NULL CONSTRAINT u_code_key UNIQUE, v int); INSERT INTO u VALUES ('a', 1), ('b', 2)")
        .await;
    let names_t = ["the ALTER names an index or key of public.t (t_pkey)", "run that clause directly with ALTER TABLE"];
    let mut rows = vec![
        // Dropping the key column drops the primary key with it.
        Refusal::new(
            "t",
            "DROP COLUMN id",
            &["the ALTER leaves no unique NOT NULL key", "t_pkey", "keep one of them unchanged in the ALTER"],
        ),
        // The only key stops being NOT NULL.
        Refusal::new("u", "ALTER COLUMN code DROP NOT NULL", &["the ALTER leaves no unique NOT NULL key", "u_code_key"]),
        // A new primary key over other columns carries nothing over.
        Refusal::new(
            "u",
            "DROP CONSTRAINT u_code_key, ADD PRIMARY KEY (v)",
            &["the ALTER names an index or key of public.u (u_code_key)", "run that clause directly with ALTER TABLE"],
        ),
    ];
    // Naming the key: the shadow copy's keys have other names until the swap.
    rows.extend(Refusal::each(
        "t",
        &["DROP CONSTRAINT t_pkey", "DROP CONSTRAINT IF EXISTS \"t_pkey\"", "REPLICA IDENTITY USING INDEX t_pkey"],
        &names_t,
    ));
    refuses(&db, &["t", "u"], rows).await;
}

#[tokio::test]
async fn alter_that_renames_or_moves_the_table() {
    let db = PgTestDb::with_setup("pgref_rename_table", T).await;
    db.exec("CREATE SCHEMA x").await;
    let mut rows = Refusal::each(
        "t",
        &["RENAME TO x", "ADD COLUMN c int, RENAME TO x", "rename to \"T2\""],
        &["the ALTER renames the table", "before or after the migration"],
    );
    rows.extend(Refusal::each(
        "t",
        &["SET SCHEMA x", "set schema public"],
        &["the ALTER moves the table to another schema", "do that separately"],
    ));
    refuses(&db, &["t"], rows).await;
    assert!(db.text_rows("SELECT 1 FROM pg_class WHERE relnamespace = 'x'::regnamespace").await.is_empty());
}

#[tokio::test]
async fn alter_the_server_rejects() {
    let db = PgTestDb::with_setup("pgref_server_rejects", T).await;
    let fix = "fix the ALTER spec (it is what follows ALTER TABLE t)";
    refuses(
        &db,
        &["t"],
        [
            Refusal::new(
                "t",
                "DROP COLUMN nosuch",
                &["the server rejected the ALTER", "column \"nosuch\"", "does not exist", fix],
            ),
            Refusal::new("t", "ADDD COLUMN x int", &["the server rejected the ALTER", "syntax error at or near \"ADDD\"", fix]),
            Refusal::new("t", "ADD COLUMN email int", &["the server rejected the ALTER", "column \"email\"", "already exists"]),
            Refusal::new("t", "ALTER COLUMN n TYPE nosuchtype", &["the server rejected the ALTER", "nosuchtype"]),
        ],
    )
    .await;
}

#[tokio::test]
async fn statement_injection_is_refused() {
    let db = PgTestDb::with_setup("pgref_injection", T).await;
    db.exec("CREATE TABLE victim (id int PRIMARY KEY); INSERT INTO victim VALUES (1)").await;
    refuses(
        &db,
        &["t", "victim"],
        Refusal::each(
            "t",
            &[
                "ADD COLUMN c int; DROP TABLE t",
                "ADD COLUMN c int; DROP TABLE victim",
                "ADD COLUMN c int;",
                "ADD COLUMN c text DEFAULT $$x$$; DROP TABLE victim",
                "ADD COLUMN c int -- a comment\n; DROP TABLE victim",
                "ADD COLUMN c text DEFAULT E'\\''; DROP TABLE victim; --'",
                // With standard_conforming_strings (on since PostgreSQL 9.1) a backslash is no
                // escape: the string ends at the second quote, as the server reads it.
                "ADD COLUMN c text DEFAULT 'a\\'; DROP TABLE victim; --'",
            ],
            &["the ALTER spec contains ';'", "give one ALTER spec, not several statements"],
        ),
    )
    .await;
    assert_eq!(db.text_rows("SELECT count(*) FROM victim").await, [[Some("1".to_string())]]);
}

#[tokio::test]
async fn empty_alter_and_whole_statement() {
    let db = PgTestDb::with_setup("pgref_empty", T).await;
    let mut rows = Refusal::each(
        "t",
        &["", "   ", "/* nothing */", " -- nothing"],
        &["the ALTER spec is empty", "give what follows ALTER TABLE t"],
    );
    rows.push(Refusal::new("t", "ADD COLUMN c int,", &["empty clause"]));
    rows.push(Refusal::new("t", "ALTER TABLE t ADD COLUMN c int", &["--alter takes what follows ALTER TABLE t"]));
    refuses(&db, &["t"], rows).await;
}

#[tokio::test]
async fn column_rename_needs_approval() {
    let db = PgTestDb::with_setup("pgref_rename_column", T).await;
    let mut rows = Refusal::each(
        "t",
        &["RENAME COLUMN email TO mail", "RENAME email TO mail", "rename column \"email\" to mail"],
        &["the ALTER renames columns (email -> mail)", "add --approve-renamed-columns"],
    );
    // Approved, but naming a column the table does not have.
    rows.push(Refusal::new("t", "RENAME COLUMN nosuch TO x", &["nosuch"]).with(&["--approve-renamed-columns"]));
    refuses(&db, &["t"], rows).await;
}

#[tokio::test]
async fn columns_the_online_copy_cannot_fill_or_convert() {
    let db = PgTestDb::with_setup("pgref_columns", T).await;
    let zone = ["depends on the session TimeZone", "add a new column and fill it yourself"];
    refuses(
        &db,
        &["t"],
        [
            Refusal::new(
                "t",
                "ADD COLUMN c int NOT NULL",
                &["the ALTER adds NOT NULL column c without a DEFAULT", "give it a DEFAULT (or make it NULL)"],
            ),
            Refusal::new(
                "t",
                "ALTER COLUMN ts TYPE timestamp",
                &["the ALTER changes column ts from timestamp with time zone to timestamp without time zone", zone[0], zone[1]],
            ),
            Refusal::new(
                "t",
                "ALTER COLUMN d TYPE timestamptz",
                &["the ALTER changes column d from timestamp without time zone to timestamp with time zone", zone[0], zone[1]],
            ),
        ],
    )
    .await;
}

#[tokio::test]
async fn new_unique_key_over_duplicate_data() {
    let db = PgTestDb::with_setup("pgref_duplicates", T).await;
    let expect = [
        "the ALTER adds unique key uk_email but public.t has duplicate values for it",
        "('ann@example.org') occurs 2 times",
        "remove the duplicates or drop the unique key from the ALTER",
    ];
    refuses(&db, &["t"], [Refusal::new("t", "ADD CONSTRAINT uk_email UNIQUE (email)", &expect)]).await;
    // The dry run finds them too.
    let out =
        run_cli(&["alter", "--dsn", &db.dsn, "--table", "t", "--alter", "ADD CONSTRAINT uk_email UNIQUE (email)"], &[]).await;
    assert_refused(&out, &expect);
    // Two columns; NULLs never collide.
    db.exec("INSERT INTO t (id, email, n) VALUES (5, 'cy@example.org', 7), (6, 'cy@example.org', 7), (7, NULL, 8), (8, NULL, 8)")
        .await;
    refuses(
        &db,
        &["t"],
        [Refusal::new(
            "t",
            "ADD COLUMN c int, ADD CONSTRAINT uk_email_n UNIQUE (email, n)",
            &["unique key uk_email_n", "('cy@example.org', '7') occurs 2 times"],
        )],
    )
    .await;
    // Duplicates that only the new column shows: found by the copy, which undoes what the run
    // created; no row is lost.
    db.exec("DELETE FROM t WHERE id > 2; UPDATE t SET email = 'ANN@example.org' WHERE id = 2").await;
    refuses(
        &db,
        &["t"],
        [Refusal::new(
            "t",
            "ADD COLUMN le text GENERATED ALWAYS AS (lower(email)) STORED, ADD CONSTRAINT uk_le UNIQUE (le)",
            &["unique key uk_le", "(le)=(ann@example.org)", "remove the duplicates"],
        )],
    )
    .await;
}

#[tokio::test]
async fn altered_table_rejects_existing_rows() {
    let db = PgTestDb::with_setup("pgref_rows_do_not_fit", T).await;
    let rejects = |alter: &str, why: &str| {
        Refusal::new(
            "t",
            alter,
            &["the altered table rejects a row of public.t", why, "change the ALTER so the existing data fits"],
        )
    };
    refuses(
        &db,
        &["t"],
        [
            rejects("ALTER COLUMN email TYPE varchar(5)", "value too long"),
            rejects("ALTER COLUMN n SET NOT NULL", "null value in column \"n\""),
            rejects("ADD CONSTRAINT t_n_small CHECK (n < 20)", "t_n_small"),
        ],
    )
    .await;
}

#[tokio::test]
async fn another_run_holds_the_table() {
    let db = PgTestDb::with_setup("pgref_advisory_lock", T).await;
    let lock = Names::new(&db.table("t"), shadowswap_postgres::MAX_IDENTIFIER_BYTES, byte_len).lock;
    assert_eq!(lock, "shadowswap:public.t");
    let holder = client(&db.dsn).await;
    let got: bool = holder.query_one("SELECT pg_try_advisory_lock(hashtextextended($1, 0))", &[&lock]).await.unwrap().get(0);
    assert!(got);
    let expect = ["another shadowswap run is working on public.t", "wait for it to finish, or stop it first"];
    refuses(&db, &["t"], [Refusal::new("t", "ADD COLUMN c int", &expect)]).await;
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
    db.assert_clean_any_order(&["t", "t2"]).await;
}

#[tokio::test]
async fn partitioned_and_inherited_tables() {
    let db = PgTestDb::with_setup(
        "pgref_partitions",
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
    refuses(
        &db,
        &["kid", "parent", "part", "part_1", "part_2"],
        [
            Refusal::new(
                "part",
                "ADD COLUMN c int",
                &["public.part is partitioned", "shadowswap does not migrate partitioned tables"],
            ),
            Refusal::new(
                "part_1",
                "ADD COLUMN c int",
                &["public.part_1 takes part in table inheritance (public.part)", "does not migrate inheritance trees"],
            ),
            Refusal::new("parent", "ADD COLUMN c int", &["public.parent takes part in table inheritance (public.kid)"]),
            Refusal::new("kid", "ADD COLUMN c int", &["public.kid takes part in table inheritance (public.parent)"]),
        ],
    )
    .await;
}

#[tokio::test]
async fn published_unlogged_and_temporary_tables() {
    let db = PgTestDb::with_setup(
        "pgref_persistence",
        "CREATE TABLE pub (id int PRIMARY KEY, v int); INSERT INTO pub VALUES (1, 1);
         CREATE PUBLICATION ssw_pgref_pub FOR TABLE pub;
         CREATE TABLE puball (id int PRIMARY KEY);
         CREATE UNLOGGED TABLE unl (id int PRIMARY KEY, v int); INSERT INTO unl VALUES (1, 1)",
    )
    .await;
    let tables = ["pub", "puball", "unl"];
    refuses(
        &db,
        &tables,
        [
            Refusal::new(
                "pub",
                "ADD COLUMN c int",
                &[
                    "public.pub is published for logical replication (publication ssw_pgref_pub)",
                    "Remove it with ALTER PUBLICATION … DROP TABLE for the migration, add it back afterwards and refresh the subscriptions",
                ],
            ),
            Refusal::new("unl", "ADD COLUMN c int", &["public.unl is UNLOGGED", "Make it LOGGED first"]),
        ],
    )
    .await;
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
    db.assert_clean_any_order(&tables).await;
    // A publication of all tables covers every table.
    db.exec("CREATE PUBLICATION ssw_pgref_all FOR ALL TABLES").await;
    refuses(&db, &tables, [Refusal::new("puball", "ADD COLUMN c int", &["public.puball is published", "ssw_pgref_all"])]).await;
    db.exec("DROP PUBLICATION ssw_pgref_all").await;
}

#[tokio::test]
async fn objects_the_swap_cannot_carry_over() {
    let db = PgTestDb::with_setup(
        "pgref_dependents",
        "CREATE TABLE selfref (id int PRIMARY KEY, parent int CONSTRAINT selfref_parent_fk REFERENCES selfref (id));
         INSERT INTO selfref VALUES (1, NULL), (2, 1);
         CREATE TABLE mv_src (id int PRIMARY KEY, v int); INSERT INTO mv_src VALUES (1, 1);
         CREATE MATERIALIZED VIEW mv AS SELECT id, v FROM mv_src;
         CREATE TABLE ruled (id int PRIMARY KEY);
         CREATE RULE ruled_no_delete AS ON DELETE TO ruled DO INSTEAD NOTHING;
         CREATE VIEW v AS SELECT id FROM mv_src",
    )
    .await;
    refuses(
        &db,
        &["mv_src", "ruled", "selfref"],
        [
            Refusal::new(
                "selfref",
                "ADD COLUMN c int",
                &["public.selfref has a foreign key to itself (selfref_parent_fk)", "drop it for the migration"],
            ),
            Refusal::new(
                "mv_src",
                "ADD COLUMN c int",
                &[
                    "materialized views depend on public.mv_src (public.mv)",
                    "drop them for the migration and recreate them afterwards",
                ],
            ),
            Refusal::new("ruled", "ADD COLUMN c int", &["public.ruled has rules (ruled_no_delete)", "drop them"]),
            Refusal::new("mv", "ADD COLUMN c int", &["public.mv is not a plain table (relkind m)", "shadowswap migrates tables"]),
            Refusal::new("v", "ADD COLUMN c int", &["public.v is not a plain table (relkind v)", "shadowswap migrates tables"]),
        ],
    )
    .await;
    assert_eq!(db.text_rows("SELECT count(*) FROM mv").await, [[Some("1".to_string())]]);
}

/// The swap re-creates views, policies, foreign keys and triggers from their definitions, which
/// name columns as they were: an ALTER that renames or drops a column they use (or changes the
/// type of one a view uses) is refused before anything is created, not after the copy.
#[tokio::test]
async fn columns_other_objects_use() {
    let db = PgTestDb::with_setup(
        "pgref_column_users",
        "CREATE TABLE t (id int PRIMARY KEY, n int, k int, free int); INSERT INTO t VALUES (1, 1, 1, 1), (2, 2, 2, 2);
         CREATE VIEW v AS SELECT id, n FROM t;
         CREATE TABLE child (id int PRIMARY KEY, t_id int CONSTRAINT child_t_fk REFERENCES t (id));
         CREATE TABLE p (id int PRIMARY KEY, k int, note text); INSERT INTO p VALUES (1, 5, 'x');
         ALTER TABLE p ENABLE ROW LEVEL SECURITY; CREATE POLICY p_k ON p USING (k > 0);
         CREATE FUNCTION noop() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$;
         CREATE TRIGGER p_note AFTER UPDATE OF note ON p FOR EACH ROW EXECUTE FUNCTION noop()",
    )
    .await;
    let used = |table: &str, alter: &str, users: &str| {
        let expect =
            format!("the ALTER renames, drops or changes the type of columns of public.{table} that other objects use: {users};");
        Refusal::new(table, alter, &[&expect, "Drop them for the migration and re-create them afterwards, or change the ALTER"])
    };
    let approve = ["--approve-renamed-columns"];
    refuses(
        &db,
        &["child", "p", "t"],
        [
            used("t", "RENAME COLUMN n TO n2", "view public.v (uses n)").with(&approve),
            used("t", "DROP COLUMN n", "view public.v (uses n)"),
            used("t", "ALTER COLUMN n TYPE bigint", "view public.v (uses n)"),
            used("t", "RENAME COLUMN id TO tid", "foreign key child_t_fk of public.child (uses id), view public.v (uses id)")
                .with(&approve),
            used("p", "RENAME COLUMN k TO k2", "policy p_k (uses k)").with(&approve),
            used("p", "DROP COLUMN note", "trigger p_note (uses note)"),
        ],
    )
    .await;
    // Columns nobody else uses are free to change.
    let out =
        run_alter(&db.dsn, "t", "ALTER COLUMN k TYPE bigint, DROP COLUMN free", &["--approve-renamed-columns", "--execute"])
            .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(db.text_rows("SELECT id, n FROM v ORDER BY id").await.len(), 2);
}

#[tokio::test]
async fn leftovers_of_an_earlier_run() {
    let db = PgTestDb::with_setup("pgref_leftovers", T).await;
    for leftover in ["_t_new", "_t_old"] {
        db.exec(&format!("CREATE TABLE {leftover} (id int PRIMARY KEY, half_done int); INSERT INTO {leftover} VALUES (1, 1)"))
            .await;
        refuses(
            &db,
            &["t", leftover],
            [Refusal::new(
                "t",
                "ADD COLUMN c int",
                &[&format!("public.{leftover} already exists"), "run `shadowswap cleanup` for this table, or drop or rename it"],
            )],
        )
        .await;
        db.exec(&format!("DROP TABLE {leftover}")).await;
    }
    // A capture function of a dead run (its trigger may be gone already).
    db.exec("CREATE FUNCTION _t_ssw_upd() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$").await;
    let before = db.snapshot(&["t"]).await;
    let out = run_cli(&["alter", "--dsn", &db.dsn, "--table", "t", "--alter", "ADD COLUMN c int", "--execute"], &[]).await;
    assert_refused(&out, &["public.t still has capture triggers from an earlier shadowswap run", "run `shadowswap cleanup`"]);
    assert_eq!(db.capture_leftovers().await, ["_t_ssw_upd"], "exactly the old function, nothing new");
    assert_eq!(db.snapshot(&["t"]).await, before);
    let out = run_cli(&["cleanup", "--dsn", &db.dsn, "--table", "t"], &[]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("dropped capture triggers: _t_ssw_upd"), "{}", stdout(&out));
    db.assert_clean_any_order(&["t"]).await;
}

#[tokio::test]
async fn dry_run_changes_nothing() {
    let db = PgTestDb::with_setup("pgref_dry_run", T).await;
    db.exec("ANALYZE t").await;
    let spec = "ADD COLUMN note varchar(20), DROP COLUMN n, ADD CONSTRAINT t_note_uq UNIQUE (note)";
    let out = dry_run(&db, &["t"], "t", spec, &[]).await;
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
        // The checkpoint table first: the run records its phase before creating the shadow.
        "shadow DDL:\n  CREATE TABLE IF NOT EXISTS \"public\".\"_t_ssw_ckpt\" (id integer PRIMARY KEY CHECK (id = 1), ",
        "\n  CREATE TABLE \"public\".\"_t_new\" (LIKE \"public\".\"t\" INCLUDING ALL);\n",
        &format!("  ALTER TABLE \"public\".\"_t_new\" {spec};\n"),
        "capture triggers:\n",
        "CREATE FUNCTION \"public\".\"_t_ssw_ins\"() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER",
        "CREATE TRIGGER \"_t_ssw_upd\" AFTER UPDATE ON \"public\".\"t\" FOR EACH ROW EXECUTE FUNCTION \"public\".\"_t_ssw_upd\"()",
        "CREATE TRIGGER \"_t_ssw_del\" AFTER DELETE ON \"public\".\"t\"",
        // The fast path (lock the rows, clear the shadow's range, a plain insert), then the fallback.
        "copy chunk:\n  LOCK TABLE \"public\".\"t\" IN ROW SHARE MODE;\n  SELECT 1 FROM \"public\".\"t\" WHERE ",
        " FOR SHARE;\n  DELETE FROM \"public\".\"_t_new\" WHERE ",
        ";\n  INSERT INTO \"public\".\"_t_new\"",
        "\n  -- on a unique violation, or when the INSERT copied rows the SELECT … FOR SHARE did not lock: rolled back, then\n  LOCK TABLE",
        // Each chunk advances the checkpoint in its own transaction.
        "FOR SHARE ON CONFLICT (\"id\") DO UPDATE SET",
        ";\n  UPDATE \"public\".\"_t_ssw_ckpt\" SET low_watermark = $1, chunk_rows = $2, rows_copied = rows_copied + $3, updated_at = pg_catalog.now() WHERE id = 1;\n",
        "cut-over:\n  BEGIN; SET LOCAL lock_timeout = …; LOCK TABLE \"public\".\"t\", \"public\".\"_t_new\" IN ACCESS EXCLUSIVE MODE;",
        "dry run: every preflight check passed and nothing was changed; add --execute to migrate",
    ] {
        assert!(plan.contains(expect), "the plan lacks {expect:?}:\n{plan}");
    }
    assert!(!stderr(&out).contains("ERROR"), "{}", stderr(&out));

    // A rename, approved, shows up in the mapping; still nothing changes.
    let out = dry_run(&db, &["t"], "t", "RENAME COLUMN n TO amount", &["--approve-renamed-columns"]).await;
    assert!(stdout(&out).contains("  amount <- n (renamed)\n"), "{}", stdout(&out));
}
