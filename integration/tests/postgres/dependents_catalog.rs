//! PostgreSQL: everything `pg_depend` binds to the table's OID is either carried over to the new
//! table at the swap or refused, by name, before anything is created; and every property
//! `pg_dump` would emit for the table survives the swap.
//!
//! Carried over (each checked by behaviour after the swap): a function with a SQL-standard
//! (`BEGIN ATOMIC`) body that inserts into the table, a row-level security policy of another
//! table that reads the table, a rule of another table that writes into it, an extended
//! statistics object, views with `security_invoker`, `security_barrier` and `WITH CHECK OPTION`,
//! `NOT VALID` CHECK constraints (still not valid, still enforced). Refused: another table's
//! column of the table's row type, a function returning the row type, another table's default
//! on the table's identity sequence, a constraint trigger of another table `FROM` the table (a
//! kind the swap does not handle). The summary tells the truth when the old table could not be
//! dropped. A normalized `pg_dump --schema-only -t t` of a richly configured table is the same
//! before and after a migration, but for the ALTER's own change.

use std::time::Duration;

use shadowswap_integration::cli::{assert_refused, run_alter, stderr, stdout, Spawned};
use shadowswap_integration::postgres::PgTestDb;
use shadowswap_integration::run::postpone_flag;

/// Create role `name` (roles are cluster-wide), tolerating a concurrent test doing the same.
async fn role(db: &PgTestDb, name: &str) {
    db.exec(&format!(
        "DO $$ BEGIN CREATE ROLE {name} NOLOGIN; EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$"
    ))
    .await;
}

/// The server's message of a failed statement.
fn message(e: &tokio_postgres::Error) -> String {
    e.as_db_error().map(|d| format!("{} ({:?})", d.message(), d.constraint())).unwrap_or_else(|| e.to_string())
}

/// Run the ALTER to completion and require success; returns stdout.
async fn migrate(db: &PgTestDb, alter: &str) -> String {
    let out = run_alter(&db.dsn, "t", alter, &["--execute", "--chunk-size", "7"]).await;
    assert_eq!(out.status.code(), Some(0), "stdout:\n{}\nstderr:\n{}", stdout(&out), stderr(&out));
    stdout(&out)
}

/// The relations `pg_depend` says the objects of class `class` satisfying `filter` (a condition
/// on `d`) reference: after the swap, the table itself, never `_t_old`.
async fn referenced_relations(db: &PgTestDb, class: &str, filter: &str) -> Vec<String> {
    db.text_rows(&format!(
        "SELECT DISTINCT d.refobjid::regclass::text FROM pg_depend d WHERE d.classid = '{class}'::regclass \
         AND d.refclassid = 'pg_class'::regclass AND {filter} ORDER BY 1"
    ))
    .await
    .into_iter()
    .map(|r| r[0].clone().unwrap())
    .collect()
}

#[tokio::test]
async fn sql_functions_policies_and_rules_of_other_tables_and_statistics_follow_the_new_table() {
    let db = PgTestDb::new("pgdc_bodies").await;
    let app = "ssw_pgdc_bodies_app";
    role(&db, app).await;
    db.exec(&format!(
        "CREATE TABLE t (id int PRIMARY KEY, granted boolean NOT NULL, who text, n int);
         INSERT INTO t SELECT g, true, 'u' || g, g % 4 FROM generate_series(1, 20) g;
         CREATE FUNCTION add_t(i int) RETURNS void LANGUAGE sql BEGIN ATOMIC INSERT INTO t (id, granted, who) VALUES (i, true, 'fn'); END;
         CREATE TABLE docs (id int PRIMARY KEY, body text);
         INSERT INTO docs SELECT g, 'secret ' || g FROM generate_series(1, 20) g;
         ALTER TABLE docs ENABLE ROW LEVEL SECURITY;
         CREATE POLICY docs_granted ON docs TO {app} USING (EXISTS (SELECT 1 FROM t WHERE t.id = docs.id AND t.granted));
         GRANT SELECT ON docs, t TO {app};
         CREATE TABLE inbox (id int);
         CREATE RULE inbox_to_t AS ON INSERT TO inbox DO INSTEAD INSERT INTO t (id, granted, who) VALUES (NEW.id, false, 'rule');
         CREATE STATISTICS t_st (ndistinct, dependencies) ON who, n FROM t;
         ALTER STATISTICS t_st SET STATISTICS 321;
         COMMENT ON STATISTICS t_st IS 'who and n';
         ALTER STATISTICS t_st OWNER TO {app};"
    ))
    .await;
    migrate(&db, "ADD COLUMN note text DEFAULT 'x'").await;
    assert_eq!(db.tables().await, ["docs", "inbox", "t"], "the old table is gone");

    // The BEGIN ATOMIC function inserts into the live table.
    db.exec("SELECT add_t(100)").await;
    assert_eq!(db.count("SELECT count(*) FROM t WHERE id = 100 AND who = 'fn' AND note = 'x'").await, 1);
    assert_eq!(referenced_relations(&db, "pg_proc", "d.objid = 'add_t(int)'::regprocedure").await, ["t"]);

    // The rule of another table writes into the live table.
    db.exec("INSERT INTO inbox VALUES (101)").await;
    assert_eq!(db.count("SELECT count(*) FROM t WHERE id = 101 AND who = 'rule'").await, 1);

    // The policy of another table reads the live table: revoking row 2 hides doc 2.
    db.exec("UPDATE t SET granted = false WHERE id = 2").await;
    db.exec(&format!("SET ROLE {app}")).await;
    let seen = db.text_rows("SELECT id FROM docs WHERE id IN (1, 2) ORDER BY 1").await;
    db.exec("RESET ROLE").await;
    assert_eq!(seen, [[Some("1".to_string())]], "the revoked row's secret document must be hidden");
    assert_eq!(
        referenced_relations(&db, "pg_policy", "d.objid = (SELECT oid FROM pg_policy WHERE polname = 'docs_granted')").await,
        ["docs", "t"]
    );

    // The statistics object is the new table's, under its name, with its target, comment and owner.
    assert_eq!(
        db.text_rows(
            "SELECT stxname::text, stxrelid::regclass::text, stxstattarget::text, obj_description(oid, 'pg_statistic_ext'), \
                    pg_get_userbyid(stxowner)::text FROM pg_statistic_ext ORDER BY 1"
        )
        .await,
        [[Some("t_st".into()), Some("t".into()), Some("321".into()), Some("who and n".into()), Some(app.into())]]
    );
}

#[tokio::test]
async fn views_keep_security_invoker_security_barrier_and_check_option() {
    let db = PgTestDb::new("pgdc_views").await;
    let app = "ssw_pgdc_views_app";
    role(&db, app).await;
    db.exec(&format!(
        "CREATE TABLE t (id int PRIMARY KEY, owner_name text NOT NULL, n int NOT NULL);
         INSERT INTO t SELECT g, CASE WHEN g % 2 = 0 THEN '{app}' ELSE 'other' END, g FROM generate_series(1, 10) g;
         ALTER TABLE t ENABLE ROW LEVEL SECURITY;
         CREATE POLICY mine ON t TO {app} USING (owner_name = current_user);
         GRANT SELECT, INSERT ON t TO {app};
         CREATE VIEW t_invoker WITH (security_invoker = true) AS SELECT id, n FROM t;
         CREATE VIEW t_barrier WITH (security_barrier) AS SELECT id, n FROM t WHERE n > 0;
         CREATE VIEW t_small AS SELECT id, owner_name, n FROM t WHERE n < 100 WITH LOCAL CHECK OPTION;
         GRANT SELECT ON t_invoker TO {app};"
    ))
    .await;
    migrate(&db, "ADD COLUMN note text").await;

    db.exec(&format!("SET ROLE {app}")).await;
    let seen = db.count("SELECT count(*) FROM t_invoker").await;
    db.exec("RESET ROLE").await;
    assert_eq!(seen, 5, "security_invoker: the policy applies to the view's user");
    let err = db.client.batch_execute("INSERT INTO t_small VALUES (50, 'x', 500)").await.expect_err("check option");
    assert!(message(&err).contains("check option"), "{}", message(&err));
    assert_eq!(
        db.text_rows("SELECT relname::text, array_to_string(reloptions, ',') FROM pg_class WHERE relkind = 'v' AND relnamespace = 'public'::regnamespace ORDER BY 1").await,
        [
            [Some("t_barrier".into()), Some("security_barrier=true".into())],
            [Some("t_invoker".into()), Some("security_invoker=true".into())],
            [Some("t_small".into()), Some("check_option=local".into())],
        ]
    );
}

#[tokio::test]
async fn not_valid_check_constraints_stay_not_valid() {
    let db = PgTestDb::new("pgdc_notvalid").await;
    db.exec(
        "CREATE TABLE t (id int PRIMARY KEY, n int);
         INSERT INTO t SELECT g, g FROM generate_series(1, 30) g;
         INSERT INTO t VALUES (31, -5);
         ALTER TABLE t ADD CONSTRAINT t_n_pos CHECK (n > 0) NOT VALID;
         COMMENT ON CONSTRAINT t_n_pos ON t IS 'new rows only';
         CREATE TABLE p (id int PRIMARY KEY); INSERT INTO p VALUES (1);
         ALTER TABLE t ADD COLUMN pid int DEFAULT 7;
         ALTER TABLE t ADD CONSTRAINT t_pid_fk FOREIGN KEY (pid) REFERENCES p (id) NOT VALID;",
    )
    .await;
    let before = db.text_rows("SELECT id, n, pid FROM t ORDER BY id").await;
    migrate(&db, "ADD COLUMN note text").await;
    assert_eq!(db.text_rows("SELECT id, n, pid FROM t ORDER BY id").await, before, "rows identical");
    assert_eq!(
        db.text_rows(
            "SELECT conname::text, convalidated::text, pg_get_constraintdef(oid), obj_description(oid, 'pg_constraint') \
             FROM pg_constraint WHERE conrelid = 't'::regclass AND contype IN ('c', 'f') ORDER BY 1"
        )
        .await,
        [
            [
                Some("t_n_pos".into()),
                Some("false".into()),
                Some("CHECK ((n > 0)) NOT VALID".into()),
                Some("new rows only".into())
            ],
            [Some("t_pid_fk".into()), Some("false".into()), Some("FOREIGN KEY (pid) REFERENCES p(id) NOT VALID".into()), None],
        ]
    );
    let err = db.client.batch_execute("INSERT INTO t (id, n, pid) VALUES (40, -1, 1)").await.expect_err("still enforced");
    assert!(message(&err).contains("t_n_pos"), "{}", message(&err));
    let err = db.client.batch_execute("INSERT INTO t (id, n, pid) VALUES (41, 1, 99)").await.expect_err("still enforced");
    assert!(message(&err).contains("t_pid_fk"), "{}", message(&err));
}

/// `pg_dump --schema-only -t public.t`, without comment lines, blank lines and the random
/// `\restrict` keys of newer pg_dump releases.
fn dump(dsn: &str) -> String {
    let out = std::process::Command::new("pg_dump")
        .args(["--schema-only", "--no-tablespaces", "-t", "public.t", "-d", dsn])
        .output()
        .expect("run pg_dump");
    assert!(out.status.success(), "pg_dump: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| {
            !l.starts_with("--") && !l.starts_with("\\restrict") && !l.starts_with("\\unrestrict") && !l.trim().is_empty()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn pg_dump_of_the_table_is_the_same_after_the_migration_but_for_the_alter() {
    let db = PgTestDb::new("pgdc_dump").await;
    let app = "ssw_pgdc_dump_app";
    role(&db, app).await;
    db.exec(&format!(
        "CREATE TABLE parent (id int PRIMARY KEY);
         INSERT INTO parent SELECT generate_series(1, 5);
         CREATE TABLE t (
             id bigint GENERATED BY DEFAULT AS IDENTITY (START WITH 100 INCREMENT BY 5 CACHE 3) PRIMARY KEY,
             s serial,
             u text NOT NULL,
             x int,
             big text,
             n numeric CONSTRAINT t_n_pos CHECK (n > 0),
             pid int CONSTRAINT t_pid_fk REFERENCES parent (id) ON DELETE SET NULL,
             w int,
             CONSTRAINT t_u_key UNIQUE (u),
             CONSTRAINT t_w_excl EXCLUDE USING btree (w WITH =) DEFERRABLE INITIALLY DEFERRED,
             CONSTRAINT t_n_uq UNIQUE NULLS NOT DISTINCT (n, u) DEFERRABLE
         ) WITH (fillfactor = 80, autovacuum_enabled = false, toast.autovacuum_enabled = false);
         INSERT INTO t (u, x, big, n, pid) SELECT 'u' || g, g, repeat('b', g), g, 1 + g % 5 FROM generate_series(1, 40) g;
         INSERT INTO t (u, x, n) VALUES ('bad', 13, 1);
         CREATE INDEX t_x_idx ON t (x) WITH (fillfactor = 70);
         CREATE INDEX t_lower_u ON t (lower(u));
         CREATE UNIQUE INDEX t_s_inc ON t (s) INCLUDE (x) WHERE s > 0;
         ALTER TABLE t REPLICA IDENTITY USING INDEX t_u_key;
         ALTER TABLE t CLUSTER ON t_lower_u;
         ALTER INDEX t_lower_u ALTER COLUMN 1 SET STATISTICS 200;
         ALTER TABLE t ALTER COLUMN u SET STATISTICS 500, ALTER COLUMN u SET (n_distinct = -0.5),
             ALTER COLUMN big SET STORAGE EXTERNAL, ALTER COLUMN big SET COMPRESSION pglz;
         ALTER TABLE t ADD CONSTRAINT t_x_nv CHECK (x <> 13) NOT VALID;
         CREATE STATISTICS t_st (ndistinct, dependencies) ON u, n FROM t;
         ALTER STATISTICS t_st SET STATISTICS 300;
         COMMENT ON TABLE t IS 'it''s \\ t';
         COMMENT ON COLUMN t.u IS 'user';
         COMMENT ON INDEX t_x_idx IS 'x index';
         COMMENT ON CONSTRAINT t_n_pos ON t IS 'positive';
         COMMENT ON CONSTRAINT t_x_nv ON t IS 'not 13';
         COMMENT ON CONSTRAINT t_pid_fk ON t IS 'parent';
         COMMENT ON STATISTICS t_st IS 'stats';
         COMMENT ON SEQUENCE t_id_seq IS 'ids';
         GRANT SELECT, INSERT ON t TO {app};
         GRANT USAGE, SELECT ON SEQUENCE t_id_seq TO {app};
         GRANT USAGE ON SEQUENCE t_s_seq TO {app};
         ALTER TABLE t ENABLE ROW LEVEL SECURITY;
         ALTER TABLE t FORCE ROW LEVEL SECURITY;
         CREATE POLICY t_all ON t TO {app} USING (true);
         CREATE FUNCTION t_touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
         CREATE TRIGGER t_touch BEFORE UPDATE ON t FOR EACH ROW EXECUTE FUNCTION t_touch();
         COMMENT ON TRIGGER t_touch ON t IS 'touch';
         COMMENT ON POLICY t_all ON t IS 'everything';"
    ))
    .await;
    let before = dump(&db.dsn);
    assert!(before.contains("x integer,"), "{before}");
    migrate(&db, "ALTER COLUMN x TYPE bigint").await;
    let after = dump(&db.dsn);
    let expected = before.replacen("x integer,", "x bigint,", 1);
    if after != expected {
        let diff: Vec<String> = expected
            .lines()
            .filter(|l| !after.lines().any(|a| a == *l))
            .map(|l| format!("- {l}"))
            .chain(after.lines().filter(|l| !expected.lines().any(|e| e == *l)).map(|l| format!("+ {l}")))
            .collect();
        panic!("pg_dump differs:\n{}\n\nafter:\n{after}", diff.join("\n"));
    }
    // The application role can still use the identity sequence.
    db.exec(&format!("SET ROLE {app}")).await;
    let next = db.client.batch_execute("INSERT INTO t (u, x, n) VALUES ('app', 1, 1); SELECT currval('t_id_seq')").await;
    db.exec("RESET ROLE").await;
    next.expect("the application role keeps its grant on the identity sequence");
}

/// Refused before anything is created: nothing but the test's own tables remains.
async fn refused(db: &PgTestDb, expect: &[&str]) {
    let tables = db.tables().await;
    let out = run_alter(&db.dsn, "t", "ADD COLUMN note text", &["--execute"]).await;
    assert_refused(&out, expect);
    assert_eq!(db.tables().await, tables, "nothing left behind");
    assert!(db.capture_leftovers().await.is_empty());
}

#[tokio::test]
async fn dependents_the_swap_cannot_carry_over_are_refused_by_name() {
    let db = PgTestDb::new("pgdc_refused").await;
    db.exec("CREATE TABLE t (id int PRIMARY KEY, code int GENERATED ALWAYS AS IDENTITY); INSERT INTO t (id) VALUES (1)").await;

    db.exec("CREATE TABLE holder (id int, r t)").await;
    refused(&db, &["table column public.holder.r (uses the row type of the table", "drop them"]).await;
    db.exec("DROP TABLE holder").await;

    db.exec("CREATE TABLE checker (id int CONSTRAINT checker_row CHECK ((ROW(id, 1)::t).id > 0))").await;
    refused(&db, &["table constraint checker_row on public.checker (uses the row type of the table"]).await;
    db.exec("DROP TABLE checker").await;

    db.exec("CREATE DOMAIN t_dom AS t").await;
    refused(&db, &["type public.t_dom (uses the row type of the table"]).await;
    db.exec("DROP DOMAIN t_dom").await;

    db.exec("CREATE FUNCTION all_t() RETURNS SETOF t LANGUAGE sql AS 'SELECT * FROM t'").await;
    refused(&db, &["function public.all_t() (uses the row type of the table"]).await;
    db.exec("DROP FUNCTION all_t()").await;

    db.exec("CREATE TABLE borrower (id int DEFAULT nextval('t_code_seq'))").await;
    refused(&db, &["default value for public.borrower.id", "uses an identity sequence of the table"]).await;
    db.exec("DROP TABLE borrower").await;

    // A kind the swap does not handle: a constraint trigger of another table FROM t.
    db.exec(
        "CREATE TABLE watcher (id int);
         CREATE FUNCTION w() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$;
         CREATE CONSTRAINT TRIGGER watcher_t AFTER INSERT ON watcher FROM t FOR EACH ROW EXECUTE FUNCTION w()",
    )
    .await;
    refused(&db, &["trigger watcher_t on public.watcher", "cannot carry this kind of object over"]).await;
    db.exec("DROP TABLE watcher").await;

    db.exec("CREATE MATERIALIZED VIEW mv AS SELECT id FROM t").await;
    refused(&db, &["materialized views depend on public.t (public.mv)"]).await;
    db.exec("DROP MATERIALIZED VIEW mv").await;

    // The other direction: the table belongs to an extension.
    db.exec("CREATE EXTENSION hstore; ALTER EXTENSION hstore ADD TABLE t").await;
    refused(&db, &["public.t is a member of extension hstore"]).await;
    db.exec("ALTER EXTENSION hstore DROP TABLE t; DROP EXTENSION hstore").await;

    // A typed table.
    db.exec("CREATE TYPE t_shape AS (id int, code int); ALTER TABLE t OF t_shape").await;
    refused(&db, &["public.t is a typed table (OF public.t_shape)"]).await;
    db.exec("ALTER TABLE t NOT OF; DROP TYPE t_shape").await;

    // An ALTER that drops a column of a NOT VALID constraint.
    db.exec("ALTER TABLE t ADD COLUMN n int; ALTER TABLE t ADD CONSTRAINT t_n_pos CHECK (n > 0) NOT VALID").await;
    let tables = db.tables().await;
    let out = run_alter(&db.dsn, "t", "DROP COLUMN n", &["--execute"]).await;
    assert_refused(&out, &["NOT VALID constraints of public.t (t_n_pos)"]);
    assert_eq!(db.tables().await, tables);

    // With those gone, the same table migrates.
    db.exec("ALTER TABLE t DROP CONSTRAINT t_n_pos").await;
    migrate(&db, "ADD COLUMN note text").await;
}

#[tokio::test]
async fn the_summary_says_the_old_table_was_kept_when_dropping_it_failed() {
    let db = PgTestDb::new("pgdc_dropfail").await;
    db.exec(
        "CREATE TABLE t (id int PRIMARY KEY, v text);
         INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 20) g;
         CREATE FUNCTION no_drop() RETURNS event_trigger LANGUAGE plpgsql AS $$
         BEGIN
             IF EXISTS (SELECT 1 FROM pg_event_trigger_dropped_objects() WHERE object_name = '_t_old') THEN
                 RAISE EXCEPTION 'dropping _t_old is not allowed here';
             END IF;
         END $$;
         CREATE EVENT TRIGGER no_drop ON sql_drop EXECUTE FUNCTION no_drop();",
    )
    .await;
    let out = migrate(&db, "ADD COLUMN note text").await;
    assert!(out.contains("old table kept as public._t_old"), "{out}");
    assert!(!out.contains("old table dropped"), "{out}");
    assert_eq!(db.tables().await, ["_t_old", "t"]);
}

#[tokio::test]
async fn objects_the_swap_would_recreate_must_be_the_migrating_users_or_columns_they_use_must_stay() {
    let db = PgTestDb::new("pgdc_owners").await;
    let (owner, pw) = ("ssw_pgdc_owners_login", "Own-Pa55");
    db.exec(&format!(
        "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{owner}') THEN \
         CREATE ROLE {owner} LOGIN NOSUPERUSER NOBYPASSRLS PASSWORD '{pw}'; END IF; END $$; \
         GRANT CREATE, USAGE ON SCHEMA public TO {owner};
         CREATE TABLE t (id int PRIMARY KEY, who text);
         INSERT INTO t VALUES (1, 'a');
         ALTER TABLE t OWNER TO {owner};
         CREATE FUNCTION add_t(i int) RETURNS void LANGUAGE sql BEGIN ATOMIC INSERT INTO t (id, who) VALUES (i, 'fn'); END;"
    ))
    .await;
    // The function belongs to the superuser: the table's owner could not re-create it at the swap.
    let rest = db.dsn.split_once('@').expect("DSN with a user").1;
    let as_owner = format!("postgres://{owner}:{pw}@{rest}");
    let out = run_alter(&as_owner, "t", "ADD COLUMN note text", &["--execute"]).await;
    assert_refused(&out, &["function public.add_t(integer) (owned by shadowswap)", "only their owner may do that"]);
    assert_eq!(db.tables().await, ["t"]);

    // A column the function's body uses cannot be dropped by the ALTER: the re-created body would not fit.
    let out = run_alter(&db.dsn, "t", "DROP COLUMN who", &["--execute"]).await;
    assert_refused(&out, &["function public.add_t(integer) (uses who)"]);
    assert_eq!(db.tables().await, ["t"]);

    db.exec(&format!("ALTER FUNCTION add_t(int) OWNER TO {owner}")).await;
    let out = run_alter(&as_owner, "t", "ADD COLUMN note text DEFAULT 'n'", &["--execute"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    db.exec("SELECT add_t(2)").await;
    assert_eq!(db.count("SELECT count(*) FROM t WHERE id = 2 AND note = 'n'").await, 1);
}

#[tokio::test]
async fn a_dependent_created_during_the_run_stops_the_swap() {
    let db = PgTestDb::new("pgdc_late").await;
    db.exec("CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 50) g").await;
    let flag = postpone_flag(&db.name);
    let flag_arg = flag.display().to_string();
    let mut cli = Spawned::new([
        "alter",
        "--dsn",
        &db.dsn,
        "--table",
        "t",
        "--alter",
        "ADD COLUMN note text",
        "--execute",
        "--postpone-cut-over-flag-file",
        &flag_arg,
    ]);
    cli.wait_for_stderr("cut-over postponed", Duration::from_secs(60)).await;
    // After the preflight, before the swap: a column of t's row type in another table.
    db.exec("CREATE TABLE holder (id int, r t)").await;
    let before = db.text_rows("SELECT * FROM t ORDER BY id").await;
    std::fs::remove_file(&flag).unwrap();
    let (status, out, err) = cli.finish(Duration::from_secs(60)).await;
    assert_eq!(status.code(), Some(1), "stdout:\n{out}\nstderr:\n{err}");
    assert!(err.contains("table column public.holder.r (uses the row type of the table"), "{err}");
    assert_eq!(db.text_rows("SELECT * FROM t ORDER BY id").await, before);
    db.assert_clean(&["holder", "t"]).await;
}

/// An identity sequence whose name holds a `.` and a `"` keeps exactly that name on the new table
/// and continues from the old value (the swap once parsed the bare name out of
/// `pg_get_serial_sequence`'s quoted text, and renamed the sequence to a fragment of it).
#[tokio::test]
async fn an_identity_sequence_named_with_a_dot_and_a_quote_keeps_its_name_and_value() {
    let db = PgTestDb::new("pgdc_seq_name").await;
    db.exec(
        "CREATE TABLE t (id int GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, v text); \
         ALTER SEQUENCE t_id_seq RENAME TO \"ids.of\"\"t\"; \
         INSERT INTO t (v) SELECT 'x' FROM generate_series(1, 20)",
    )
    .await;
    migrate(&db, "ADD COLUMN note text").await;
    let seq = "SELECT c.relname::text FROM pg_class c WHERE c.oid = pg_get_serial_sequence('public.t', 'id')::regclass";
    assert_eq!(db.scalar(seq).await.as_deref(), Some("ids.of\"t"));
    db.exec("INSERT INTO t (v) VALUES ('after')").await;
    assert_eq!(db.scalar("SELECT id::text FROM t WHERE v = 'after'").await.as_deref(), Some("21"));
    assert_eq!(db.count("SELECT count(*) FROM pg_class WHERE relkind = 'S' AND relname LIKE '%old%'").await, 0);
}
