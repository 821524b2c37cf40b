//! PostgreSQL: what binds to a table's OID rather than its name follows the new table across the
//! swap. One table carries all of it: an owned `serial` sequence and an identity column, a primary
//! key, a unique constraint, a plain index and a CHECK constraint (named by hand, so a generated
//! name cannot pass by accident), a view and a view on that view, a child table whose foreign key
//! cascades deletes, table and column grants to role `app`, row-level security (enabled and forced)
//! with a policy for `app`, a table and a column comment, a storage parameter, REPLICA IDENTITY
//! FULL, an owner that is not the migrating user, and a trigger of the user's own that keeps an
//! audit table.
//!
//! The migration runs through the real `shadowswap` binary with `--execute`, postponed by a flag
//! file so the test can write while the capture triggers run: the user's trigger must fire exactly
//! once per write then, and after the swap, on the new table. Afterwards every dependent object
//! is checked against the new table, by behaviour and in the catalog.

use std::time::Duration;

use shadowswap_integration::cli::Spawned;
use shadowswap_integration::postgres::{client, PgTestDb};
use shadowswap_integration::run::postpone_flag;

/// The ALTER: a column with a default and a new CHECK constraint; every existing object stays.
const ALTER: &str = "ADD COLUMN note text NOT NULL DEFAULT 'none', ADD CONSTRAINT t_note_len CHECK (length(note) < 100)";

/// The table owner, a role of its own (not the migrating superuser, not `app`).
const OWNER: &str = "ssw_dep_owner";

const SETUP: &str = "
CREATE TABLE t (
    id serial,
    code int GENERATED ALWAYS AS IDENTITY,
    email text NOT NULL,
    n int,
    owner_name text NOT NULL DEFAULT current_user,
    CONSTRAINT t_id_pk PRIMARY KEY (id),
    CONSTRAINT t_email_uq UNIQUE (email),
    CONSTRAINT t_n_nonneg CHECK (n >= 0)
) WITH (fillfactor = 90);
CREATE INDEX t_n_idx ON t (n);
CREATE TABLE audit (seq bigserial PRIMARY KEY, op text NOT NULL, row_id int, tbl name NOT NULL);
CREATE FUNCTION t_audit_fn() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER AS $$
BEGIN
    INSERT INTO public.audit (op, row_id, tbl) VALUES (TG_OP, coalesce(NEW.id, OLD.id), TG_TABLE_NAME);
    RETURN NULL;
END $$;
CREATE TRIGGER t_audit AFTER INSERT OR UPDATE OR DELETE ON t FOR EACH ROW EXECUTE FUNCTION t_audit_fn();
CREATE FUNCTION t_refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 't_refuse fired'; END $$;
CREATE TRIGGER t_disabled BEFORE UPDATE ON t FOR EACH ROW EXECUTE FUNCTION t_refuse();
ALTER TABLE t DISABLE TRIGGER t_disabled;
INSERT INTO t (email, n, owner_name)
    SELECT 'u' || g || '@example.org', g, CASE WHEN g % 3 = 0 THEN 'app' ELSE 'someone' END FROM generate_series(1, 30) g;
CREATE VIEW t_v AS SELECT id, email, n FROM t;
CREATE VIEW t_vv AS SELECT id, email FROM t_v WHERE n > 10;
CREATE TABLE child (id int PRIMARY KEY, t_id int NOT NULL, CONSTRAINT child_t_fk FOREIGN KEY (t_id) REFERENCES t (id) ON DELETE CASCADE);
INSERT INTO child SELECT g, g FROM generate_series(1, 10) g;
GRANT SELECT, INSERT ON t TO app;
GRANT UPDATE (n) ON t TO app;
GRANT USAGE ON SEQUENCE t_id_seq TO app;
GRANT SELECT ON t_v TO app;
ALTER TABLE t ENABLE ROW LEVEL SECURITY;
ALTER TABLE t FORCE ROW LEVEL SECURITY;
CREATE POLICY t_app_rows ON t TO app USING (owner_name = current_user) WITH CHECK (owner_name = current_user);
ALTER TABLE t REPLICA IDENTITY FULL;
COMMENT ON TABLE t IS 'customers, migrated online';
COMMENT ON COLUMN t.email IS 'login';
ALTER TABLE t OWNER TO ssw_dep_owner;
";

async fn setup(name: &str) -> PgTestDb {
    let db = PgTestDb::new(name).await;
    // Roles are cluster-wide: create the owner once, tolerating a concurrent test doing the same.
    db.exec(&format!(
        "DO $$ BEGIN CREATE ROLE {OWNER} NOLOGIN; EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$; \
         ALTER ROLE {OWNER} BYPASSRLS; GRANT USAGE, CREATE ON SCHEMA public TO {OWNER}"
    ))
    .await;
    db.exec(SETUP).await;
    db
}

/// One value of `query` as text.
/// Rows as text (NULL as None).
type Rows = Vec<Vec<Option<String>>>;

/// Index names and definitions of `table`, and its constraints with their definitions.
async fn names_of(db: &PgTestDb, table: &str) -> (Rows, Rows) {
    let indexes = db
        .text_rows(&format!(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' AND tablename = '{table}' ORDER BY 1"
        ))
        .await;
    let constraints = db
        .text_rows(&format!(
            "SELECT conname, contype, pg_get_constraintdef(oid), convalidated::text, \
                    coalesce((SELECT relname FROM pg_class WHERE oid = conindid), '') \
             FROM pg_constraint WHERE conrelid = '{table}'::regclass ORDER BY 1"
        ))
        .await;
    (indexes, constraints)
}

/// Privileges on `t` (table level, and column level as granted), comments, RLS and replica identity flags,
/// storage parameters, owner.
async fn table_properties(db: &PgTestDb) -> Vec<Vec<Option<String>>> {
    let mut rows = db
        .text_rows(
            "SELECT grantor, grantee, privilege_type, is_grantable FROM information_schema.role_table_grants \
             WHERE table_schema = 'public' AND table_name = 't' ORDER BY 1, 2, 3",
        )
        .await;
    rows.extend(
        db.text_rows(
            "SELECT attname, attacl::text FROM pg_attribute WHERE attrelid = 'public.t'::regclass AND attacl IS NOT NULL ORDER BY 1",
        )
        .await,
    );
    rows.extend(
        db.text_rows(
            "SELECT obj_description(c.oid, 'pg_class'), col_description(c.oid, 3), relrowsecurity::text, \
                    relforcerowsecurity::text, relreplident::text, array_to_string(reloptions, ','), pg_get_userbyid(relowner)::text \
             FROM pg_class c WHERE oid = 'public.t'::regclass",
        )
        .await,
    );
    rows.extend(
        db.text_rows(
            "SELECT policyname, permissive, roles::text, cmd, qual, with_check FROM pg_policies \
             WHERE schemaname = 'public' AND tablename = 't' ORDER BY 1",
        )
        .await,
    );
    rows
}

/// The relations the rewrite rule of view `view` depends on (besides the view itself).
async fn view_depends_on(db: &PgTestDb, view: &str) -> Vec<String> {
    db.text_rows(&format!(
        "SELECT DISTINCT d.refobjid::regclass::text FROM pg_depend d JOIN pg_rewrite r ON r.oid = d.objid \
         WHERE d.classid = 'pg_rewrite'::regclass AND r.ev_class = '{view}'::regclass \
           AND d.refclassid = 'pg_class'::regclass AND d.refobjid <> '{view}'::regclass ORDER BY 1"
    ))
    .await
    .into_iter()
    .map(|r| r[0].clone().unwrap())
    .collect()
}

/// Non-internal triggers on `table`, with their firing state (`O` enabled, `D` disabled).
async fn triggers_on(db: &PgTestDb, table: &str) -> Vec<String> {
    db.text_rows(&format!(
        "SELECT tgname || ' ' || tgenabled::text FROM pg_trigger WHERE tgrelid = '{table}'::regclass AND NOT tgisinternal ORDER BY 1"
    ))
    .await
    .into_iter()
    .map(|r| r[0].clone().unwrap())
    .collect()
}

/// Run the migration through the CLI, postponed; while it waits, write to the table (each write
/// fires the user's trigger once) and check the capture kept the shadow in sync and did not fire
/// the user's trigger a second time. Returns after the swap; `extra` are more CLI arguments.
async fn migrate_with_writes_while_postponed(db: &PgTestDb, extra: &[&str]) -> String {
    let flag = postpone_flag(&db.name);
    let flag_arg = flag.display().to_string();
    let mut args = vec!["alter", "--dsn", &db.dsn, "--table", "t", "--alter", ALTER, "--execute"];
    args.extend(["--postpone-cut-over-flag-file", &flag_arg, "--chunk-size", "7"]);
    args.extend_from_slice(extra);
    let mut cli = Spawned::new(&args);
    cli.wait_for_stderr("cut-over postponed", Duration::from_secs(60)).await;

    assert_eq!(db.count("SELECT count(*) FROM audit").await, 30, "the backfill fired no user trigger");
    assert_eq!(triggers_on(db, "_t_new").await, Vec::<String>::new(), "the shadow has no trigger of the user's own");
    // Writes during the migration, each firing the user's trigger once on the original.
    db.exec(
        "INSERT INTO t (email, n, owner_name) VALUES ('during1@example.org', 31, 'app'), ('during2@example.org', 32, 'someone');
         UPDATE t SET n = n + 100 WHERE id = 5;
         UPDATE t SET id = 1025 WHERE id = 25;
         DELETE FROM t WHERE id = 2",
    )
    .await;
    assert_eq!(db.count("SELECT count(*) FROM audit").await, 35, "5 row changes fired the user's trigger 5 times");
    assert_eq!(db.count("SELECT count(*) FROM audit WHERE tbl <> 't'").await, 0, "only on t");
    assert_eq!(
        db.text_rows("SELECT id, code, email, n, owner_name FROM t ORDER BY id").await,
        db.text_rows("SELECT id, code, email, n, owner_name FROM _t_new ORDER BY id").await,
        "the capture kept the shadow in sync"
    );
    assert_eq!(db.count("SELECT count(*) FROM child WHERE id = 2").await, 0, "the cascade ran on the original");

    std::fs::remove_file(&flag).unwrap();
    let (status, out, err) = cli.finish(Duration::from_secs(60)).await;
    assert_eq!(status.code(), Some(0), "stdout:\n{out}\nstderr:\n{err}");
    assert!(out.contains("swapped public.t"), "{out}");
    assert!(!err.contains(" WARN "), "no warnings after the swap:\n{err}");
    out
}

/// Every dependent object works against the new table (which by now has `note`).
async fn assert_dependents_follow(db: &PgTestDb, before_names: &(Rows, Rows)) {
    // The ALTER was applied to the table that now has the name.
    assert_eq!(db.count("SELECT count(*) FROM t WHERE note = 'none'").await, 31);

    // Index and constraint names are the original ones (plus the constraint the ALTER added).
    let (indexes, constraints) = names_of(db, "t").await;
    assert_eq!(indexes, before_names.0, "index names and definitions");
    let mut expected = before_names.1.clone();
    expected.push(vec![
        Some("t_note_len".into()),
        Some("c".into()),
        Some("CHECK ((length(note) < 100))".into()),
        Some("true".into()),
        Some(String::new()),
    ]);
    expected.sort();
    assert_eq!(constraints, expected, "constraint names and definitions");

    // Views: read the new table, and their rules depend on its OID.
    assert_eq!(view_depends_on(db, "t_v").await, ["t"]);
    assert_eq!(view_depends_on(db, "t_vv").await, ["t_v"]);
    db.exec("INSERT INTO t (email, n, owner_name, note) VALUES ('after@example.org', 77, 'someone', 'x')").await;
    assert_eq!(db.count("SELECT count(*) FROM t_v WHERE email = 'after@example.org'").await, 1, "the view sees a new row");
    assert_eq!(db.count("SELECT count(*) FROM t_vv WHERE email = 'after@example.org'").await, 1, "the view on the view too");
    assert_eq!(db.count("SELECT count(*) FROM t_v").await, db.count("SELECT count(*) FROM t").await);

    // Serial: the sequence is owned by the new table's column and continues after the old max.
    assert_eq!(db.scalar("SELECT pg_get_serial_sequence('t', 'id')").await.as_deref(), Some("public.t_id_seq"));
    assert_eq!(
        db.text_rows("SELECT refobjid::regclass::text, refobjsubid::text FROM pg_depend WHERE objid = 't_id_seq'::regclass AND deptype = 'a'")
            .await,
        [[Some("t".into()), Some("1".into())]],
        "t_id_seq OWNED BY t.id"
    );
    assert_eq!(db.scalar("SELECT max(id) FROM t").await.as_deref(), Some("1025"), "the key changed during the run");
    assert_eq!(
        db.scalar("SELECT id FROM t WHERE email = 'after@example.org'").await.as_deref(),
        Some("33"),
        "nextval continues after the 32 ids handed out before"
    );
    // Identity: the new table's identity sequence continues the old one's values, under its name.
    assert_eq!(db.scalar("SELECT pg_get_serial_sequence('t', 'code')").await.as_deref(), Some("public.t_code_seq"));
    assert_eq!(db.scalar("SELECT code FROM t WHERE email = 'after@example.org'").await.as_deref(), Some("33"));
    assert_eq!(db.count("SELECT count(DISTINCT code) FROM t").await, db.count("SELECT count(*) FROM t").await);

    // Foreign key from the child: validated, enforced, cascading.
    let fk = db
        .text_rows(
            "SELECT conname, confrelid::regclass::text, pg_get_constraintdef(oid), convalidated::text FROM pg_constraint \
             WHERE conrelid = 'child'::regclass AND contype = 'f'",
        )
        .await;
    assert_eq!(
        fk,
        [[
            Some("child_t_fk".into()),
            Some("t".into()),
            Some("FOREIGN KEY (t_id) REFERENCES t(id) ON DELETE CASCADE".into()),
            Some("true".into())
        ]]
    );
    let err = db.client.batch_execute("INSERT INTO child VALUES (100, 99999)").await.expect_err("a child without parent");
    assert_eq!(err.code(), Some(&tokio_postgres::error::SqlState::FOREIGN_KEY_VIOLATION), "{err}");
    db.exec("INSERT INTO child VALUES (100, 33); DELETE FROM t WHERE id IN (3, 33)").await;
    assert_eq!(db.count("SELECT count(*) FROM child WHERE id IN (3, 100)").await, 0, "deletes cascade to the child");
    assert_eq!(db.count("SELECT count(*) FROM child").await, 8);

    // Grants, RLS, policies, comments, storage parameters, replica identity, owner.
    let props = table_properties(db).await;
    let flat: Vec<String> = props.iter().map(|r| format!("{r:?}")).collect();
    for expect in [
        r#"[Some("ssw_dep_owner"), Some("app"), Some("INSERT"), Some("NO")]"#,
        r#"[Some("ssw_dep_owner"), Some("app"), Some("SELECT"), Some("NO")]"#,
        r#"[Some("n"), Some("{app=w/ssw_dep_owner}")]"#,
        r#"[Some("customers, migrated online"), Some("login"), Some("true"), Some("true"), Some("f"), Some("fillfactor=90"), Some("ssw_dep_owner")]"#,
        r#"[Some("t_app_rows"), Some("PERMISSIVE"), Some("{app}"), Some("ALL"), Some("(owner_name = CURRENT_USER)"), Some("(owner_name = CURRENT_USER)")]"#,
    ] {
        assert!(flat.contains(&expect.to_string()), "{expect} missing from:\n{}", flat.join("\n"));
    }
    let privilege = |q: &'static str| async move { db.scalar(q).await };
    assert_eq!(privilege("SELECT has_table_privilege('app', 'public.t', 'SELECT')::text").await.as_deref(), Some("true"));
    assert_eq!(privilege("SELECT has_table_privilege('app', 'public.t_v', 'SELECT')::text").await.as_deref(), Some("true"));
    assert_eq!(privilege("SELECT has_table_privilege('app', 'public.t', 'DELETE')::text").await.as_deref(), Some("false"));
    assert_eq!(privilege("SELECT has_column_privilege('app', 'public.t', 'n', 'UPDATE')::text").await.as_deref(), Some("true"));
    assert_eq!(
        privilege("SELECT has_column_privilege('app', 'public.t', 'email', 'UPDATE')::text").await.as_deref(),
        Some("false")
    );

    // As `app`: the policy filters rows and checks writes; the grants allow exactly what they say.
    let app = client(&db.dsn).await;
    app.batch_execute("SET ROLE app").await.unwrap();
    let visible: i64 = app.query_one("SELECT count(*) FROM t", &[]).await.unwrap().get(0);
    let mine = db.count("SELECT count(*) FROM t WHERE owner_name = 'app'").await;
    assert!(mine > 0 && mine < db.count("SELECT count(*) FROM t").await);
    assert_eq!(visible, mine, "app sees only its own rows");
    app.batch_execute("INSERT INTO t (email, n, owner_name) VALUES ('app@example.org', 1, 'app')").await.unwrap();
    let e =
        app.batch_execute("INSERT INTO t (email, n, owner_name) VALUES ('spoof@example.org', 1, 'someone')").await.unwrap_err();
    let msg = e.as_db_error().map(|d| d.message().to_string()).unwrap_or_else(|| e.to_string());
    assert!(msg.contains("violates row-level security policy for table \"t\""), "{msg}");
    let n: u64 = app.execute("UPDATE t SET n = n + 1 WHERE owner_name = 'app'", &[]).await.unwrap();
    assert_eq!(n as i64, mine + 1, "app updates its own rows' n");
    let e = app.batch_execute("UPDATE t SET email = 'x' WHERE id = 6").await.unwrap_err();
    assert_eq!(e.code(), Some(&tokio_postgres::error::SqlState::INSUFFICIENT_PRIVILEGE), "{e}");
    let e = app.batch_execute("DELETE FROM t").await.unwrap_err();
    assert_eq!(e.code(), Some(&tokio_postgres::error::SqlState::INSUFFICIENT_PRIVILEGE), "{e}");
    drop(app);

    // The user's trigger is on the new table, alone, and fires exactly once per row change.
    assert_eq!(triggers_on(db, "t").await, ["t_audit O", "t_disabled D"], "the user's triggers, the disabled one disabled");
    let audit = db.count("SELECT count(*) FROM audit").await;
    db.exec("INSERT INTO t (email, n) VALUES ('last@example.org', 5); UPDATE t SET n = 6 WHERE email = 'last@example.org'; DELETE FROM t WHERE email = 'last@example.org'").await;
    assert_eq!(db.count("SELECT count(*) FROM audit").await, audit + 3, "one audit row per change");
    assert_eq!(
        db.text_rows("SELECT op, tbl FROM audit ORDER BY seq DESC LIMIT 3").await,
        [
            [Some("DELETE".into()), Some("t".into())],
            [Some("UPDATE".into()), Some("t".into())],
            [Some("INSERT".into()), Some("t".into())]
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dependents_follow_the_new_table_and_the_old_one_is_dropped() {
    let db = setup("dep_default").await;
    let before = names_of(&db, "t").await;
    let before_props = table_properties(&db).await;
    let out = migrate_with_writes_while_postponed(&db, &[]).await;
    assert!(out.contains("old table dropped"), "{out}");
    db.assert_clean(&["audit", "child", "t"]).await;
    // Nothing else was created or left: the old identity sequence went with the old table.
    assert_eq!(
        db.text_rows(
            "SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relkind IN ('S', 'v') ORDER BY 1"
        )
        .await
        .concat(),
        ["audit_seq_seq", "t_code_seq", "t_id_seq", "t_v", "t_vv"].map(|s| Some(s.to_string()))
    );
    assert_eq!(table_properties(&db).await, before_props, "grants, comments, RLS, options, owner, policies as before");
    assert_dependents_follow(&db, &before).await;
    // Audit rows: 30 inserts, 5 changes during the run, then the checks' own writes; no doubles.
    assert_eq!(db.count("SELECT count(*) FROM audit WHERE op = 'INSERT' AND row_id <= 30").await, 30);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_old_table_keeps_it_detached_from_every_dependent() {
    let db = setup("dep_keep_old").await;
    let before = names_of(&db, "t").await;
    let before_rows = db.text_rows("SELECT id, code, email, n, owner_name FROM t ORDER BY id").await;
    let out = migrate_with_writes_while_postponed(&db, &["--keep-old-table"]).await;
    assert!(out.contains("_t_old"), "{out}");
    assert_eq!(db.tables().await, ["_t_old", "audit", "child", "t"]);
    assert!(db.capture_leftovers().await.is_empty(), "{:?}", db.capture_leftovers().await);

    // The old table holds the data as of the swap (the writes during the run included), under
    // names of its own; nothing of ours is on it.
    let old_rows = db.text_rows("SELECT id, code, email, n, owner_name FROM _t_old ORDER BY id").await;
    assert_eq!(old_rows, db.text_rows("SELECT id, code, email, n, owner_name FROM t ORDER BY id").await);
    assert_ne!(old_rows, before_rows);
    let (old_indexes, _) = names_of(&db, "_t_old").await;
    let old_names: Vec<_> = old_indexes.iter().map(|r| r[0].clone().unwrap()).collect();
    assert_eq!(old_names, ["_t_email_uq_old", "_t_id_pk_old", "_t_n_idx_old"]);
    assert_eq!(
        triggers_on(&db, "_t_old").await,
        ["t_audit O", "t_disabled D"],
        "the user's triggers stay on the old table, no capture trigger"
    );
    // Nothing depends on the old table any more: it drops without CASCADE, and every check on
    // the new table holds afterwards.
    db.exec("DROP TABLE _t_old").await;
    db.assert_clean(&["audit", "child", "t"]).await;
    assert_dependents_follow(&db, &before).await;
}

/// Renamed and dropped columns: sequences owned by a renamed column and column privileges follow
/// it to its new name; a dropped column's privileges go with the old table.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renamed_and_dropped_columns_take_their_sequences_and_grants_along() {
    let db = PgTestDb::new("dep_renamed_columns").await;
    db.exec(
        "CREATE TABLE t (id int PRIMARY KEY, ticket serial UNIQUE, n int, m int);
         CREATE INDEX t_m_idx ON t (m) WHERE m > 0;
         INSERT INTO t (id, n, m) SELECT g, g, g FROM generate_series(1, 20) g;
         GRANT SELECT (id, m), UPDATE (n) ON t TO app;
         GRANT INSERT (m) ON t TO PUBLIC",
    )
    .await;
    // PostgreSQL runs RENAME on its own, not with other clauses: one migration each.
    let approve: &[&str] = &["--approve-renamed-columns"];
    for (spec, extra) in [
        ("RENAME COLUMN ticket TO ticket_no", approve),
        ("RENAME m TO mm", approve),
        ("DROP COLUMN n", &[]),
        ("RENAME COLUMN id TO tid", approve),
    ] {
        let mut args = vec!["alter", "--dsn", &db.dsn, "--table", "t", "--alter", spec, "--execute"];
        args.extend_from_slice(extra);
        let out = shadowswap_integration::cli::run_cli(&args, &[]).await;
        assert_eq!(out.status.code(), Some(0), "{spec}: {}", shadowswap_integration::cli::stderr(&out));
    }
    db.assert_clean(&["t"]).await;
    assert_eq!(db.scalar("SELECT pg_get_serial_sequence('t', 'ticket_no')").await.as_deref(), Some("public.t_ticket_seq"));
    db.exec("INSERT INTO t (tid, mm) VALUES (21, 21)").await;
    assert_eq!(db.scalar("SELECT ticket_no FROM t WHERE tid = 21").await.as_deref(), Some("21"), "the sequence continues");
    // Index and constraint names survive migrations that rename their columns.
    assert_eq!(
        db.text_rows("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 't' ORDER BY 1").await.concat(),
        [
            "t_m_idx",
            "CREATE INDEX t_m_idx ON public.t USING btree (mm) WHERE (mm > 0)",
            "t_pkey",
            "CREATE UNIQUE INDEX t_pkey ON public.t USING btree (tid)",
            "t_ticket_key",
            "CREATE UNIQUE INDEX t_ticket_key ON public.t USING btree (ticket_no)",
        ]
        .map(|s| Some(s.to_string()))
    );
    assert_eq!(
        db.text_rows("SELECT conname FROM pg_constraint WHERE conrelid = 't'::regclass ORDER BY 1").await.concat(),
        [Some("t_pkey".to_string()), Some("t_ticket_key".to_string())]
    );
    assert_eq!(
        db.text_rows(
            "SELECT attname, attacl::text FROM pg_attribute WHERE attrelid = 't'::regclass AND attacl IS NOT NULL ORDER BY 1"
        )
        .await,
        [
            [Some("mm".to_string()), Some("{app=r/shadowswap,=a/shadowswap}".to_string())],
            [Some("tid".to_string()), Some("{app=r/shadowswap}".to_string())],
        ],
        "column privileges on the renamed column, none for the dropped one"
    );
}
