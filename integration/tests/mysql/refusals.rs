//! Preflight refusals, through the real `shadowswap` binary with `--execute`, so a refusal is
//! really what stops the run. Each test is a table: a setup (the tables it creates), then rows of
//! (table, ALTER, expected phrases) run by the refusal driver both dialects share, [`refuses`],
//! which checks for every row that
//! 1. the exit status is 1 (not 0, not a panic's 101),
//! 2. the last line of stderr is the one error line, `shadowswap: error: …`, and names the
//!    problem and the remedy,
//! 3. nothing was left behind: no `_t_new`, no `_t_old`, no triggers (except the user's own),
//! 4. the original is unchanged: `SHOW CREATE TABLE` and every row are identical.
//!
//! Refusals that leave something of the user's that the driver would count as left behind (a
//! trigger of the user's own, a leftover of an earlier run) are checked by hand. Also: the dry
//! run prints the plan and changes nothing.

use mysql_async::prelude::Queryable;
use shadowswap_engine::names::{char_len, Names};
use shadowswap_integration::cli::{assert_refused, dry_run, last_error_line, refuses, run_cli, stderr, stdout, Refusal};
use shadowswap_integration::db::TestDatabase;
use shadowswap_integration::mysql::TestDb;

/// The setup most tables share: `t` with a primary key, an email column with one duplicate value,
/// and NULLs.
const T: &str = "CREATE TABLE t (id INT NOT NULL PRIMARY KEY, email VARCHAR(50) NULL, n INT NULL, KEY k_n (n)) ENGINE=InnoDB;
     INSERT INTO t VALUES (1, 'ann@example.org', 10), (2, 'bob@example.org', NULL), (3, 'ann@example.org', 30), (4, NULL, 40)";

#[tokio::test]
async fn missing_table() {
    let db = TestDb::with_setup("ref_missing_table", T).await;
    refuses(
        &db,
        &["t"],
        [
            Refusal::new("nosuch", "ADD COLUMN c INT", &["table ssw_ref_missing_table.nosuch does not exist", "check --table"]),
            // In another database, named in --table.
            Refusal::new("ssw_ref_no_such_db.t", "ADD COLUMN c INT", &["ssw_ref_no_such_db.t does not exist"]),
        ],
    )
    .await;
}

#[tokio::test]
async fn missing_database_in_dsn() {
    let db = TestDb::with_setup("ref_missing_db", T).await;
    let dsn = db.dsn.replace("ssw_ref_missing_db", "ssw_ref_missing_db_nosuch");
    let out = run_cli(&["alter", "--dsn", &dsn, "--table", "t", "--alter", "ADD COLUMN c INT", "--execute"], &[]).await;
    assert_refused(&out, &["database ssw_ref_missing_db_nosuch does not exist", "check the DSN"]);
    let dbs: Vec<String> =
        db.pool.get_conn().await.unwrap().query("SHOW DATABASES LIKE 'ssw_ref_missing_db_nosuch'").await.unwrap();
    assert!(dbs.is_empty(), "the database was created");

    // A DSN naming no database at all is a usage error (exit 2) unless --table names one.
    let no_db = db.dsn.trim_end_matches("/ssw_ref_missing_db").to_string();
    assert!(!no_db.ends_with("ssw_ref_missing_db"));
    let out = run_cli(&["alter", "--dsn", &no_db, "--table", "t", "--alter", "ADD COLUMN c INT", "--execute"], &[]).await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let line = last_error_line(&out);
    assert!(line.starts_with("shadowswap: error: the DSN names no database"), "{line}");
    assert!(line.contains("give --table DATABASE.NAME"), "{line}");
    db.assert_nothing_left(&["t"]).await;
}

#[tokio::test]
async fn table_without_any_key() {
    let db = TestDb::with_setup(
        "ref_no_key",
        "CREATE TABLE t (a INT NOT NULL, b VARCHAR(10), KEY ka (a)); INSERT INTO t VALUES (1, 'x'), (1, 'x'), (2, NULL)",
    )
    .await;
    refuses(
        &db,
        &["t"],
        [Refusal::new(
            "t",
            "ADD COLUMN c INT",
            &["ssw_ref_no_key.t has no primary key and no unique key over NOT NULL columns", "add one before migrating"],
        )],
    )
    .await;
}

#[tokio::test]
async fn only_unique_key_is_over_nullable_columns() {
    let db = TestDb::with_setup(
        "ref_nullable_unique",
        "CREATE TABLE t (a INT NULL, b INT NOT NULL, UNIQUE KEY u_ab (a, b)); INSERT INTO t VALUES (NULL, 1), (NULL, 1), (2, 1)",
    )
    .await;
    refuses(
        &db,
        &["t"],
        [Refusal::new("t", "ADD COLUMN c INT", &["no unique key over NOT NULL columns", "add one before migrating"])],
    )
    .await;
}

#[tokio::test]
async fn alter_drops_the_only_usable_key() {
    let db = TestDb::with_setup("ref_drop_pk", T).await;
    refuses(
        &db,
        &["t"],
        [
            Refusal::new(
                "t",
                "DROP PRIMARY KEY",
                &["the ALTER leaves no unique NOT NULL key", "PRIMARY", "keep one of them unchanged in the ALTER"],
            ),
            // Replacing it with a key that does not start with the old key's columns is no better:
            // the shadow has no index to find rows by id (a new key that starts with them is used,
            // see chunk_keys.rs).
            Refusal::new("t", "DROP PRIMARY KEY, ADD PRIMARY KEY (n, id)", &["the ALTER leaves no unique NOT NULL key"]),
        ],
    )
    .await;
}

#[tokio::test]
async fn alter_that_renames_the_table() {
    let db = TestDb::with_setup("ref_rename_table", T).await;
    refuses(
        &db,
        &["t"],
        Refusal::each(
            "t",
            &[
                "RENAME TO x",
                "RENAME x",
                "RENAME AS x",
                "ADD COLUMN c INT, RENAME TO x",
                "ADD COLUMN c INT /*!40000 , RENAME TO x */",
            ],
            &["the ALTER renames the table", "rename it in a separate statement before or after"],
        ),
    )
    .await;
}

#[tokio::test]
async fn alter_the_server_rejects() {
    let db = TestDb::with_setup("ref_server_rejects", T).await;
    refuses(
        &db,
        &["t"],
        [
            Refusal::new(
                "t",
                "DROP COLUMN nosuch",
                &["the server rejected the ALTER", "nosuch", "fix the ALTER spec (it is what follows ALTER TABLE t)"],
            ),
            // A misspelt keyword: the server reads `COLUMNN` as the column name and `x` as its type.
            Refusal::new("t", "ADD COLUMNN x INT", &["the server rejected the ALTER", "'x'", "fix the ALTER spec"]),
            // A plain syntax error.
            Refusal::new("t", "ADDD COLUMN x INT", &["the server rejected the ALTER", "SQL syntax", "near 'COLUMN x INT'"]),
            Refusal::new("t", "ADD COLUMN email INT", &["the server rejected the ALTER", "Duplicate column name 'email'"]),
        ],
    )
    .await;
}

#[tokio::test]
async fn alter_to_a_non_transactional_engine() {
    let db = TestDb::with_setup("ref_alter_engine", T).await;
    refuses(
        &db,
        &["t"],
        [
            Refusal::new(
                "t",
                "ENGINE=MyISAM",
                &["the ALTER makes ssw_ref_alter_engine.t ENGINE=MyISAM", "must be InnoDB", "run this ALTER directly"],
            ),
            Refusal::new(
                "t",
                "FORCE, engine aria",
                &["the ALTER makes ssw_ref_alter_engine.t ENGINE=Aria", "must be InnoDB", "run this ALTER directly"],
            ),
        ],
    )
    .await;
}

/// The ALTER is tried on a temporary copy first; what the server allows only on real tables is
/// refused with a message that says so, rather than blaming the ALTER.
#[tokio::test]
async fn alter_the_server_allows_only_on_real_tables() {
    let db = TestDb::with_setup("ref_not_on_temporary", T).await;
    let tried = "shadowswap tries the ALTER on a temporary copy of the table first";
    let remedy = "shadowswap cannot run this ALTER yet";
    refuses(
        &db,
        &["t"],
        [
            Refusal::new(
                "t",
                "ADD FULLTEXT KEY ft_email (email)",
                &[tried, "Cannot create FULLTEXT index on temporary InnoDB table", remedy],
            ),
            Refusal::new(
                "t",
                "PARTITION BY HASH (id) PARTITIONS 2",
                &[tried, "does not support the create option 'TEMPORARY'", remedy],
            ),
        ],
    )
    .await;
}

#[tokio::test]
async fn statement_injection_is_refused() {
    let db = TestDb::with_setup("ref_injection", T).await;
    db.exec("CREATE TABLE victim (id INT PRIMARY KEY); INSERT INTO victim VALUES (1)").await;
    let semicolon = ["the ALTER spec contains ';'", "give one ALTER spec, not several statements"];
    let mut rows = Refusal::each(
        "t",
        &[
            "ADD COLUMN c INT; DROP TABLE t",
            "ADD COLUMN c INT; DROP TABLE victim",
            "ADD COLUMN c INT;",
            "ADD COLUMN c INT /*! ; DROP TABLE victim */",
            "ADD COLUMN c INT /*!50000 ; DROP TABLE victim */",
        ],
        &semicolon,
    );
    // MariaDB also runs the text of `/*M!…*/` comments: they are read as code too.
    rows.extend(Refusal::each(
        "t",
        &["ADD COLUMN c INT /*M! ; DROP TABLE victim; SELECT 1 */", "ADD COLUMN c INT /*M!100000 ; DROP TABLE victim */"],
        &["the ALTER spec contains ';'"],
    ));
    rows.extend(Refusal::each(
        "t",
        &["ADD COLUMN c INT /*M! , RENAME TO x */", "ADD COLUMN c INT /*M!100301 , RENAME x */"],
        &["the ALTER renames the table"],
    ));
    rows.extend([
        // `#` starts a comment up to the end of the line, as on the server.
        Refusal::new("t", "ADD COLUMN c INT # '\n; DROP TABLE victim; -- '", &["the ALTER spec contains ';'"]),
        // A ';' inside a string (with a backslash-escaped quote, as the server reads it) is data:
        // the spec is one statement, which the server then judges.
        Refusal::new(
            "t",
            r"ADD COLUMN c VARCHAR(5) NOT NULL DEFAULT 'a\'; DROP TABLE victim; -- '",
            &["the server rejected the ALTER", "Invalid default value for 'c'"],
        ),
    ]);
    refuses(&db, &["t", "victim"], rows).await;
    assert_eq!(db.scalar::<u64>("SELECT COUNT(*) FROM t").await, 4, "t keeps its rows");
    assert_eq!(db.scalar::<u64>("SELECT COUNT(*) FROM victim").await, 1);
}

#[tokio::test]
async fn empty_alter_and_whole_statement() {
    let db = TestDb::with_setup("ref_empty_alter", T).await;
    let mut rows =
        Refusal::each("t", &["", "   ", "/* nothing */"], &["the ALTER spec is empty", "give what follows ALTER TABLE t"]);
    rows.push(Refusal::new("t", "ADD COLUMN c INT,", &["empty clause"]));
    rows.extend(Refusal::each(
        "t",
        &["ALTER TABLE t ADD COLUMN c INT", "alter table `t` add column c int"],
        &["--alter takes what follows ALTER TABLE t", "not the whole statement"],
    ));
    refuses(&db, &["t"], rows).await;
}

#[tokio::test]
async fn table_with_a_trigger_of_its_own() {
    let db = TestDb::with_setup("ref_user_trigger", T).await;
    db.exec(
        "CREATE TABLE audit (id INT); CREATE TRIGGER t_audit AFTER INSERT ON t FOR EACH ROW INSERT INTO audit VALUES (NEW.id)",
    )
    .await;
    let tables = ["audit", "t"];
    let before = db.snapshot(&tables).await;
    let out = run_cli(&["alter", "--dsn", &db.dsn, "--table", "t", "--alter", "ADD COLUMN c INT", "--execute"], &[]).await;
    assert_refused(&out, &["has triggers of its own (t_audit)", "Drop them for the migration and recreate them afterwards"]);
    assert_eq!(db.tables().await, ["audit", "t"]);
    assert_eq!(db.triggers().await, ["t_audit"], "exactly the user's trigger, nothing of ours");
    assert_eq!(db.snapshot(&tables).await, before);
    // The user's trigger still works.
    db.exec("INSERT INTO t VALUES (9, NULL, NULL)").await;
    assert_eq!(db.scalar::<u64>("SELECT COUNT(*) FROM audit WHERE id = 9").await, 1);
}

#[tokio::test]
async fn leftover_capture_triggers_of_an_earlier_run() {
    let db = TestDb::with_setup("ref_leftover_trigger", T).await;
    db.exec("CREATE TRIGGER _t_ssw_upd AFTER UPDATE ON t FOR EACH ROW SET @x = 1").await;
    let out = run_cli(&["alter", "--dsn", &db.dsn, "--table", "t", "--alter", "ADD COLUMN c INT", "--execute"], &[]).await;
    assert_refused(&out, &["still has capture triggers from an earlier shadowswap run", "run `shadowswap cleanup`"]);
    assert_eq!(db.tables().await, ["t"]);
    assert_eq!(db.triggers().await, ["_t_ssw_upd"]);
}

#[tokio::test]
async fn foreign_keys_either_way() {
    let db = TestDb::with_setup("ref_foreign_keys",
        "CREATE TABLE parent (id INT PRIMARY KEY, name VARCHAR(20)) ENGINE=InnoDB;
         CREATE TABLE child (id INT PRIMARY KEY, parent_id INT, CONSTRAINT fk_child_parent FOREIGN KEY (parent_id) REFERENCES parent (id)) ENGINE=InnoDB;
         INSERT INTO parent VALUES (1, 'a'), (2, 'b');
         INSERT INTO child VALUES (10, 1), (11, 1), (12, 2)",
    )
    .await;
    let remedy = "Drop them for the migration and recreate them afterwards";
    refuses(
        &db,
        &["child", "parent"],
        [
            Refusal::new(
                "child",
                "ADD COLUMN c INT",
                &["ssw_ref_foreign_keys.child has or is referenced by foreign keys (child.fk_child_parent)", remedy],
            ),
            Refusal::new(
                "parent",
                "ADD COLUMN c INT",
                &["ssw_ref_foreign_keys.parent has or is referenced by foreign keys (child.fk_child_parent)", remedy],
            ),
        ],
    )
    .await;
}

#[tokio::test]
async fn non_innodb_tables() {
    let db = TestDb::with_setup(
        "ref_engines",
        "CREATE TABLE t_myisam (id INT PRIMARY KEY, v INT) ENGINE=MyISAM; INSERT INTO t_myisam VALUES (1, 1), (2, 2);
         CREATE TABLE t_aria (id INT PRIMARY KEY, v INT) ENGINE=Aria; INSERT INTO t_aria VALUES (1, 1), (2, 2)",
    )
    .await;
    refuses(
        &db,
        &["t_aria", "t_myisam"],
        [
            Refusal::new("t_myisam", "ADD COLUMN c INT", &["uses ENGINE=MyISAM", "shadowswap needs InnoDB", "convert it first"]),
            Refusal::new("t_aria", "ADD COLUMN c INT", &["uses ENGINE=Aria", "shadowswap needs InnoDB", "convert it first"]),
            // Converting is itself an ALTER shadowswap cannot do on a MyISAM table: still refused.
            Refusal::new("t_myisam", "ENGINE=InnoDB", &["uses ENGINE=MyISAM"]),
        ],
    )
    .await;
}

#[tokio::test]
async fn views_are_not_tables() {
    let db = TestDb::with_setup("ref_view", T).await;
    db.exec("CREATE VIEW v AS SELECT id, email FROM t").await;
    let out = run_cli(&["alter", "--dsn", &db.dsn, "--table", "v", "--alter", "ADD COLUMN c INT", "--execute"], &[]).await;
    assert_refused(&out, &["ssw_ref_view.v is a VIEW, not a table"]);
    assert_eq!(db.tables().await, ["t", "v"]);
}

#[tokio::test]
async fn leftover_shadow_or_old_table() {
    let db = TestDb::with_setup("ref_leftovers", T).await;
    // cleanup removes a leftover shadow, never an old table (it may be the only copy of the data
    // as it was before an earlier swap).
    for (leftover, remedy) in [
        ("_t_new", "run `shadowswap cleanup` for this table, or drop or rename it"),
        ("_t_old", "the old table an earlier run kept?); drop or rename it first"),
    ] {
        db.exec(&format!("CREATE TABLE {leftover} (id INT PRIMARY KEY, half_done INT); INSERT INTO {leftover} VALUES (1, 1)"))
            .await;
        refuses(
            &db,
            &["t", leftover],
            [Refusal::new("t", "ADD COLUMN c INT", &[&format!("ssw_ref_leftovers.{leftover} already exists"), remedy])],
        )
        .await;
        db.exec(&format!("DROP TABLE {leftover}")).await;
    }
}

#[tokio::test]
async fn column_rename_needs_approval() {
    let db = TestDb::with_setup("ref_rename_column", T).await;
    let approve = "add --approve-renamed-columns";
    refuses(
        &db,
        &["t"],
        [
            Refusal::new("t", "CHANGE n amount INT NULL", &["the ALTER renames columns (n -> amount)", approve]),
            Refusal::new("t", "CHANGE COLUMN n amount BIGINT NULL", &["the ALTER renames columns (n -> amount)", approve]),
            Refusal::new("t", "RENAME COLUMN email TO mail", &["the ALTER renames columns (email -> mail)", approve]),
            // Approved, but naming a column the table does not have.
            Refusal::new("t", "CHANGE nosuch amount INT", &["the server rejected the ALTER"])
                .with(&["--approve-renamed-columns"]),
        ],
    )
    .await;
}

#[tokio::test]
async fn new_unique_key_over_duplicate_data() {
    let db = TestDb::with_setup("ref_duplicates", T).await;
    let expect =
        ["unique key uk_email", "ssw_ref_duplicates.t has duplicate values", "'ann@example.org'", "remove the duplicates"];
    refuses(&db, &["t"], [Refusal::new("t", "ADD UNIQUE KEY uk_email (email)", &expect)]).await;
    // The dry run finds them too.
    let out = run_cli(&["alter", "--dsn", &db.dsn, "--table", "t", "--alter", "ADD UNIQUE KEY uk_email (email)"], &[]).await;
    assert_refused(&out, &expect);
    // Two columns; NULLs never collide.
    db.exec("INSERT INTO t VALUES (5, 'cy@example.org', 7), (6, 'cy@example.org', 7), (7, NULL, 8), (8, NULL, 8)").await;
    refuses(
        &db,
        &["t"],
        [Refusal::new(
            "t",
            "ADD COLUMN c INT, ADD UNIQUE KEY uk_email_n (email, n)",
            &["unique key uk_email_n", "('cy@example.org', '7') occurs 2 times"],
        )],
    )
    .await;
    // Duplicates only under the new collation: found by the copy, still no row lost.
    db.exec("DELETE FROM t WHERE id > 2; UPDATE t SET email = 'ANN@example.org' WHERE id = 2; ALTER TABLE t MODIFY email VARCHAR(50) COLLATE utf8mb4_bin NULL").await;
    refuses(
        &db,
        &["t"],
        [Refusal::new(
            "t",
            "MODIFY email VARCHAR(50) COLLATE utf8mb4_general_ci NULL, ADD UNIQUE KEY uk_email_ci (email)",
            &["uk_email_ci", "example.org"],
        )],
    )
    .await;
}

#[tokio::test]
async fn altered_table_rejects_existing_rows() {
    let db = TestDb::with_setup("ref_rows_do_not_fit", T).await;
    refuses(
        &db,
        &["t"],
        [
            Refusal::new(
                "t",
                "MODIFY email VARCHAR(5) NULL",
                &["the altered table rejects a row of ssw_ref_rows_do_not_fit.t", "change the ALTER so the existing data fits"],
            ),
            Refusal::new("t", "MODIFY n INT NOT NULL", &["the altered table rejects a row", "change the ALTER"]),
            Refusal::new(
                "t",
                "ADD CONSTRAINT chk_n CHECK (n < 20)",
                &["the altered table rejects a row", "chk_n", "change the ALTER so the existing data fits"],
            ),
        ],
    )
    .await;
}

#[tokio::test]
async fn another_run_holds_the_table() {
    let db = TestDb::with_setup("ref_advisory_lock", T).await;
    let lock = Names::new(&db.table("t"), shadowswap_mysql::MAX_IDENTIFIER_CHARS, char_len).lock;
    assert_eq!(lock, "shadowswap:ssw_ref_advisory_lock.t");
    let mut holder = db.pool.get_conn().await.unwrap();
    let got: Option<i64> = holder.exec_first("SELECT GET_LOCK(?, 0)", (&lock,)).await.unwrap();
    assert_eq!(got, Some(1));
    refuses(
        &db,
        &["t"],
        [Refusal::new(
            "t",
            "ADD COLUMN c INT",
            &["another shadowswap run is working on ssw_ref_advisory_lock.t", "wait for it to finish, or stop it first"],
        )],
    )
    .await;
    // The dry run and cleanup respect it too.
    let out = run_cli(&["alter", "--dsn", &db.dsn, "--table", "t", "--alter", "ADD COLUMN c INT"], &[]).await;
    assert_refused(&out, &["another shadowswap run is working on"]);
    let out = run_cli(&["cleanup", "--dsn", &db.dsn, "--table", "t"], &[]).await;
    assert_refused(&out, &["another shadowswap run is working on"]);
    // Once it is released, the same run passes preflight: the lock was the only reason.
    let _: Option<i64> = holder.exec_first("SELECT RELEASE_LOCK(?)", (&lock,)).await.unwrap();
    let out = run_cli(&["alter", "--dsn", &db.dsn, "--table", "t", "--alter", "ADD COLUMN c INT"], &[]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    db.assert_nothing_left(&["t"]).await;
}

#[tokio::test]
async fn set_only_primary_key() {
    // (ENUM keys are chunked by index number: chunk_keys.rs.)
    let db = TestDb::with_setup(
        "ref_set_key",
        "CREATE TABLE t (k SET('b', 'a') NOT NULL PRIMARY KEY, v INT); INSERT INTO t VALUES ('a', 1), ('b', 2)",
    )
    .await;
    refuses(
        &db,
        &["t"],
        [Refusal::new(
            "t",
            "ADD COLUMN c INT",
            &["no key of ssw_ref_set_key.t can drive chunking", "PRIMARY (k is set('b','a'))", "add a unique NOT NULL key"],
        )],
    )
    .await;
}

#[tokio::test]
async fn dry_run_changes_nothing() {
    let db = TestDb::with_setup("ref_dry_run", T).await;
    db.exec("ANALYZE TABLE t").await;
    let spec = "ADD COLUMN note VARCHAR(20) NULL, DROP COLUMN n, ADD KEY k_note (note)";
    let out = dry_run(&db, &["t"], "t", spec, &[]).await;
    let plan = stdout(&out);
    for expect in [
        "table:          ssw_ref_dry_run.t\n",
        &format!("alter:          {spec}\n"),
        "shadow table:   ssw_ref_dry_run._t_new\n",
        "chunk key:      PRIMARY (id)\n",
        "estimated rows: 4\n",
        "column mapping:\n  id\n  email\n  note (added: default or computed value)\n  n (dropped)\n",
        "shadow DDL:\n  CREATE TABLE IF NOT EXISTS `ssw_ref_dry_run`.`_t_ssw_ckpt` (",
        "  CREATE TABLE `ssw_ref_dry_run`.`_t_new` LIKE `ssw_ref_dry_run`.`t`;\n",
        &format!("  ALTER TABLE `ssw_ref_dry_run`.`_t_new` {spec};\n"),
        "capture triggers:\n  -- tried without queueing every 10 ms, --cut-over-lock-timeout ÷ 10 ms times, then once as SET STATEMENT lock_wait_timeout = <--cut-over-lock-timeout> FOR …:\n  SET STATEMENT lock_wait_timeout = 0 FOR LOCK TABLES `ssw_ref_dry_run`.`t` WRITE;\n",
        "CREATE TRIGGER `ssw_ref_dry_run`.`_t_ssw_ins` AFTER INSERT ON `ssw_ref_dry_run`.`t`",
        "CREATE TRIGGER `ssw_ref_dry_run`.`_t_ssw_upd` AFTER UPDATE ON `ssw_ref_dry_run`.`t`",
        "CREATE TRIGGER `ssw_ref_dry_run`.`_t_ssw_del` AFTER DELETE ON `ssw_ref_dry_run`.`t`",
        "copy chunk:\n  SET SESSION innodb_lock_wait_timeout = 0;\n  START TRANSACTION;\n  SELECT COUNT(*) FROM `ssw_ref_dry_run`.`t`",
        "  SELECT 1 FROM `ssw_ref_dry_run`.`_t_new` WHERE",
        "  SET STATEMENT time_zone = @@global.time_zone FOR INSERT INTO `ssw_ref_dry_run`.`_t_new`",
        "  UPDATE `ssw_ref_dry_run`.`_t_ssw_ckpt` SET low_watermark = ?, chunk_rows = ?, rows_copied = rows_copied + ?",
        "  UNLOCK TABLES;\ncopy chunk:",
        "cut-over:\n  -- tried without queueing every 10 ms, --cut-over-lock-timeout ÷ 10 ms times, then once as SET STATEMENT lock_wait_timeout = <--cut-over-lock-timeout> FOR …:\n  SET STATEMENT lock_wait_timeout = 0 FOR RENAME TABLE `ssw_ref_dry_run`.`t` TO `ssw_ref_dry_run`.`_t_old`, `ssw_ref_dry_run`.`_t_new` TO `ssw_ref_dry_run`.`t`;",
        "dry run: every preflight check passed and nothing was changed; add --execute to migrate",
    ] {
        assert!(plan.contains(expect), "the plan lacks {expect:?}:\n{plan}");
    }
    assert!(!stderr(&out).contains("error"), "{}", stderr(&out));

    // A rename, approved, shows up in the mapping.
    let out = dry_run(&db, &["t"], "t", "CHANGE n amount INT NULL", &["--approve-renamed-columns"]).await;
    assert!(stdout(&out).contains("  amount <- n (renamed)\n"), "{}", stdout(&out));
}
