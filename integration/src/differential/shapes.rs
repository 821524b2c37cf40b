//! Named shapes: the defects of issue 7 that fit a differential case, and the coverage gaps it
//! lists, each a fixed [`Case`] (`scripts/fuzz.sh --shape <name>`). Each is run quietly and with
//! its writer operations. [`SHAPES`] gives every name with the defect (issue 7 item) it
//! reproduces.

use super::{Case, Db};

/// Every shape: name, the issue 7 item it reproduces (0: a coverage gap of the issue, not a
/// numbered defect), and what it is.
pub const SHAPES: &[(&str, u32, &str)] = &[
    (
        "mariadb_key_latin1_to_utf8mb4",
        4,
        "latin1 PK converted to utf8mb4_unicode_ci; the application inserts 'Äpfel' next to 'Apfel'",
    ),
    ("mariadb_key_general_to_unicode", 4, "utf8mb4_general_ci PK converted to utf8mb4_unicode_ci; the application writes"),
    ("mariadb_key_collation_no_checksum", 4, "latin1 PK to utf8mb4_unicode_ci (other order), --no-checksum, tiny chunks"),
    ("mariadb_case_equal_key_update", 6, "'bob' -> 'Bob' key update under utf8mb4_unicode_ci (control: MariaDB)"),
    ("mariadb_drop_add_same_name", 7, "DROP COLUMN c, ADD COLUMN c: the new column holds its default"),
    ("mariadb_rename_add_same_name", 7, "RENAME COLUMN c TO c_old, ADD COLUMN c"),
    ("mariadb_now_default_app_tz", 8, "ADD COLUMN created DATETIME DEFAULT CURRENT_TIMESTAMP, the application at +05:00"),
    ("mariadb_truncate_during_run", 9, "TRUNCATE among the application's writes"),
    ("mariadb_datetime_to_timestamp", 0, "MODIFY dt TIMESTAMP from DATETIME (issue 7: support it)"),
    ("mariadb_timestamp_to_datetime", 0, "MODIFY ts DATETIME from TIMESTAMP (issue 7: support it)"),
    ("mariadb_enum_pk", 0, "an ENUM column in the primary key (issue 7: chunk on it)"),
    ("mariadb_pk_widened", 0, "DROP PRIMARY KEY, ADD PRIMARY KEY (id, i) (issue 7: use the shared unique key)"),
    ("postgres_comment_backslash_scs_off", 1, "standard_conforming_strings=off and a backslash in the table comment"),
    ("postgres_replica_role_writer", 5, "writes from a session_replication_role = replica session"),
    ("postgres_ci_key_equal_update", 6, "'bob' -> 'Bob' key update under a nondeterministic case-insensitive collation"),
    ("postgres_numeric_key_rescale", 6, "numeric key 1.5 -> 1.50"),
    ("postgres_drop_add_same_name", 7, "DROP COLUMN c, ADD COLUMN c: the new column holds its default"),
    ("postgres_now_default_app_tz", 8, "ADD COLUMN created timestamp DEFAULT now(), database and application at +05:00"),
    ("postgres_truncate_during_run", 9, "TRUNCATE among the application's writes"),
    ("postgres_citext_key", 10, "a citext primary key; the application updates and deletes"),
    ("postgres_ltree_key", 10, "an ltree primary key; the application updates and deletes"),
    ("postgres_not_valid_check", 12, "a NOT VALID CHECK constraint with an old violating row"),
    ("postgres_table_properties", 13, "sequence grants, REPLICA IDENTITY USING INDEX, a statistics target"),
    ("postgres_default_privileges", 15, "ALTER DEFAULT PRIVILEGES of shadowswap's role and a revoked grant"),
];

/// Every shape's name.
pub fn names() -> Vec<&'static str> {
    SHAPES.iter().map(|s| s.0).collect()
}

/// Every shape of `db`.
pub fn all(db: Db) -> Vec<Case> {
    names().into_iter().filter_map(shape).filter(|c| c.db == db).collect()
}

fn base(name: &str, db: Db, setup: &[&str], alter: &str, ops: &[&str]) -> Case {
    Case {
        label: format!("shape {name}"),
        slug: name.to_string(),
        db,
        db_setup: Vec::new(),
        setup: setup.iter().map(|s| s.to_string()).collect(),
        alter: alter.to_string(),
        ops: ops.iter().map(|s| s.to_string()).collect(),
        writer_session: Vec::new(),
        ops_during_backfill: 0,
        now_columns: Vec::new(),
        chunk_rows: 7,
        checksum: true,
        accepted_refusals: Vec::new(),
        strict: true,
    }
}

fn strs(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

const MY_ID_C_V: &[&str] = &[
    "CREATE TABLE {t} (id INT NOT NULL PRIMARY KEY, c VARCHAR(20) NOT NULL, v INT NULL) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
    "INSERT INTO {t} SELECT seq, CONCAT('old-', seq), seq FROM seq_1_to_200",
];
const MY_ID_C_V_OPS: &[&str] = &[
    "INSERT INTO {t} (id, c, v) VALUES (1001, 'app', 1)",
    "UPDATE {t} SET c = 'app-upd', v = v + 1 WHERE id = 5",
    "DELETE FROM {t} WHERE id = 6",
    "UPDATE {t} SET id = 2000 WHERE id = 7",
];
const PG_ID_C_V: &[&str] = &[
    "CREATE TABLE {t} (id int PRIMARY KEY, c text NOT NULL, v int)",
    "INSERT INTO {t} SELECT i, 'old-' || i, i FROM generate_series(1, 200) i",
];
const PG_ID_C_V_OPS: &[&str] = &[
    "INSERT INTO {t} (id, c, v) VALUES (1001, 'app', 1)",
    "UPDATE {t} SET c = 'app-upd', v = v + 1 WHERE id = 5",
    "DELETE FROM {t} WHERE id = 6",
    "UPDATE {t} SET id = 2000 WHERE id = 7",
];

/// The shape named `name` (see [`SHAPES`]).
pub fn shape(name: &str) -> Option<Case> {
    use Db::{MariaDb as My, Postgres as Pg};
    let c = match name {
        "mariadb_key_latin1_to_utf8mb4" => {
            let mut c = base(
                name,
                My,
                &[
                    "CREATE TABLE {t} (k VARCHAR(32) CHARACTER SET latin1 NOT NULL PRIMARY KEY, v INT NOT NULL) ENGINE=InnoDB",
                    "INSERT INTO {t} SELECT CONCAT('w', LPAD(seq, 4, '0')), seq FROM seq_1_to_200",
                    "INSERT INTO {t} VALUES ('Apfel', 1), ('Birne', 2)",
                ],
                "MODIFY k VARCHAR(32) CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci NOT NULL",
                &["INSERT INTO {t} VALUES ('Äpfel', 3)", "UPDATE {t} SET v = v + 1 WHERE k = 'Birne'"],
            );
            c.accepted_refusals = strs(&["could not match rows by that key safely"]);
            c
        }
        "mariadb_key_general_to_unicode" => {
            let mut c = base(
                name,
                My,
                &[
                    "CREATE TABLE {t} (k VARCHAR(32) CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci NOT NULL PRIMARY KEY, v INT NOT NULL) ENGINE=InnoDB",
                    "INSERT INTO {t} SELECT CONCAT('w', LPAD(seq, 4, '0')), seq FROM seq_1_to_200",
                ],
                "MODIFY k VARCHAR(32) CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci NOT NULL",
                &[
                    "INSERT INTO {t} VALUES ('neu', 1)",
                    "UPDATE {t} SET v = v + 1 WHERE k = 'w0005'",
                    "DELETE FROM {t} WHERE k = 'w0007'",
                    "UPDATE {t} SET k = 'w9999' WHERE k = 'w0009'",
                ],
            );
            c.accepted_refusals = strs(&["could not match rows by that key safely"]);
            c
        }
        "mariadb_key_collation_no_checksum" => {
            let mut c = base(
                name,
                My,
                &[
                    "CREATE TABLE {t} (k VARCHAR(32) CHARACTER SET latin1 NOT NULL PRIMARY KEY, v INT NOT NULL) ENGINE=InnoDB",
                    // Ä, Ö, Å sort after Z in latin1_swedish_ci, as A and O in utf8mb4_unicode_ci.
                    "INSERT INTO {t} SELECT CONCAT(ELT(1 + seq % 6, 'Ä', 'Z', 'A', 'Ö', 'O', 'Å'), LPAD(seq, 4, '0')), seq FROM seq_1_to_240",
                ],
                "MODIFY k VARCHAR(32) CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci NOT NULL",
                &["INSERT INTO {t} VALUES ('Äpfel', 1)", "UPDATE {t} SET v = 0 WHERE k = 'Z0001'"],
            );
            c.checksum = false;
            c.chunk_rows = 5;
            c.accepted_refusals = strs(&["could not match rows by that key safely"]);
            c
        }
        "mariadb_case_equal_key_update" => base(
            name,
            My,
            &[
                "CREATE TABLE {t} (k VARCHAR(32) CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci NOT NULL PRIMARY KEY, v INT NOT NULL) ENGINE=InnoDB",
                "INSERT INTO {t} SELECT CONCAT('w', LPAD(seq, 4, '0')), seq FROM seq_1_to_200",
                "INSERT INTO {t} VALUES ('bob', 1), ('alice', 2)",
            ],
            "ADD COLUMN x INT NULL, FORCE",
            &["UPDATE {t} SET k = 'Bob' WHERE k = 'bob'", "UPDATE {t} SET k = 'ALICE' WHERE k = 'alice'"],
        ),
        "mariadb_drop_add_same_name" => base(name, My, MY_ID_C_V, "DROP COLUMN c, ADD COLUMN c VARCHAR(20) NULL DEFAULT 'new'", MY_ID_C_V_OPS),
        "mariadb_rename_add_same_name" => {
            base(name, My, MY_ID_C_V, "RENAME COLUMN c TO c_old, ADD COLUMN c VARCHAR(20) NULL DEFAULT 'new'", MY_ID_C_V_OPS)
        }
        "mariadb_now_default_app_tz" => {
            let mut c = base(name, My, MY_ID_C_V, "ADD COLUMN created DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP", MY_ID_C_V_OPS);
            c.now_columns = strs(&["created"]);
            c.accepted_refusals = strs(&["time zone"]);
            c
        }
        "mariadb_truncate_during_run" => {
            let mut c = base(
                name,
                My,
                MY_ID_C_V,
                "ADD COLUMN x INT NULL, FORCE",
                &["INSERT INTO {t} (id, c, v) VALUES (1001, 'before', 1)", "TRUNCATE TABLE {t}", "INSERT INTO {t} (id, c, v) VALUES (1002, 'after', 2)"],
            );
            c.accepted_refusals = strs(&["TRUNCATE", "truncat"]);
            c
        }
        "mariadb_datetime_to_timestamp" => base(
            name,
            My,
            &[
                "CREATE TABLE {t} (id INT NOT NULL PRIMARY KEY, dt DATETIME NOT NULL, v INT NULL) ENGINE=InnoDB",
                "INSERT INTO {t} SELECT seq, '2021-10-31 00:00:00' + INTERVAL seq * 97 MINUTE, seq FROM seq_1_to_200",
            ],
            "MODIFY dt TIMESTAMP NOT NULL DEFAULT '2000-01-01 00:00:00'",
            &["INSERT INTO {t} VALUES (1001, '2022-01-01 12:00:00', 1)", "UPDATE {t} SET dt = '2021-03-28 02:30:00' WHERE id = 3"],
        ),
        "mariadb_timestamp_to_datetime" => base(
            name,
            My,
            &[
                "CREATE TABLE {t} (id INT NOT NULL PRIMARY KEY, ts TIMESTAMP NULL, v INT NULL) ENGINE=InnoDB",
                "INSERT INTO {t} SELECT seq, '2021-10-31 00:00:00' + INTERVAL seq * 97 MINUTE, seq FROM seq_1_to_200",
            ],
            "MODIFY ts DATETIME NULL",
            &["INSERT INTO {t} VALUES (1001, '2022-01-01 12:00:00', 1)", "UPDATE {t} SET ts = '2021-06-01 10:00:00' WHERE id = 3"],
        ),
        "mariadb_enum_pk" => base(
            name,
            My,
            &[
                "CREATE TABLE {t} (kind ENUM('b', 'a', 'c') NOT NULL, id INT NOT NULL, v INT NULL, PRIMARY KEY (kind, id)) ENGINE=InnoDB",
                "INSERT INTO {t} SELECT ELT(1 + seq % 3, 'a', 'b', 'c'), seq, seq FROM seq_1_to_200",
            ],
            "ADD COLUMN x INT NULL, FORCE",
            &["INSERT INTO {t} VALUES ('c', 1001, 1)", "UPDATE {t} SET kind = 'b' WHERE kind = 'a' AND id = 3", "DELETE FROM {t} WHERE kind = 'b' AND id = 4"],
        ),
        "mariadb_pk_widened" => base(
            name,
            My,
            &[
                "CREATE TABLE {t} (id INT NOT NULL PRIMARY KEY, i INT NOT NULL, v INT NULL) ENGINE=InnoDB",
                "INSERT INTO {t} SELECT seq, seq % 5, seq FROM seq_1_to_200",
            ],
            "DROP PRIMARY KEY, ADD PRIMARY KEY (id, i)",
            &["INSERT INTO {t} VALUES (1001, 1, 1)", "UPDATE {t} SET v = 0 WHERE id = 3", "DELETE FROM {t} WHERE id = 4", "UPDATE {t} SET id = 2000 WHERE id = 5"],
        ),
        "postgres_comment_backslash_scs_off" => {
            let mut c = base(
                name,
                Pg,
                &[PG_ID_C_V[0], PG_ID_C_V[1], "COMMENT ON TABLE {t} IS E'C:\\\\temp\\\\new ''quoted'''"],
                "ADD COLUMN x int DEFAULT 1",
                PG_ID_C_V_OPS,
            );
            c.db_setup = strs(&["ALTER DATABASE {db} SET standard_conforming_strings = off"]);
            c
        }
        "postgres_replica_role_writer" => {
            let mut c = base(name, Pg, PG_ID_C_V, "ADD COLUMN x int DEFAULT 1", PG_ID_C_V_OPS);
            c.writer_session = strs(&["SET session_replication_role = replica"]);
            c
        }
        "postgres_ci_key_equal_update" => {
            let mut c = base(
                name,
                Pg,
                &[
                    "CREATE TABLE {t} (k varchar(32) COLLATE ci PRIMARY KEY, v int NOT NULL)",
                    "INSERT INTO {t} SELECT 'w' || lpad(i::text, 4, '0'), i FROM generate_series(1, 200) i",
                    "INSERT INTO {t} VALUES ('bob', 1), ('alice', 2)",
                ],
                "ADD COLUMN x int DEFAULT 1",
                &["UPDATE {t} SET k = 'Bob' WHERE k = 'bob'", "UPDATE {t} SET k = 'ALICE' WHERE k = 'alice'"],
            );
            c.db_setup = strs(&["CREATE COLLATION ci (provider = icu, locale = 'und-u-ks-level2', deterministic = false)"]);
            c
        }
        "postgres_numeric_key_rescale" => base(
            name,
            Pg,
            &["CREATE TABLE {t} (k numeric PRIMARY KEY, v int NOT NULL)", "INSERT INTO {t} SELECT i + 0.5, i FROM generate_series(1, 200) i"],
            "ADD COLUMN x int DEFAULT 1",
            &["UPDATE {t} SET k = 1.50 WHERE k = 1.5", "UPDATE {t} SET k = 7.500 WHERE k = 7.5"],
        ),
        "postgres_drop_add_same_name" => base(name, Pg, PG_ID_C_V, "DROP COLUMN c, ADD COLUMN c text DEFAULT 'new'", PG_ID_C_V_OPS),
        "postgres_now_default_app_tz" => {
            let mut c = base(name, Pg, PG_ID_C_V, "ADD COLUMN created timestamp DEFAULT now()", PG_ID_C_V_OPS);
            c.db_setup = strs(&["ALTER DATABASE {db} SET TimeZone = 'Asia/Karachi'"]);
            c.now_columns = strs(&["created"]);
            c.accepted_refusals = strs(&["time zone", "TimeZone"]);
            c
        }
        "postgres_truncate_during_run" => base(
            name,
            Pg,
            PG_ID_C_V,
            "ADD COLUMN x int DEFAULT 1",
            &["INSERT INTO {t} (id, c, v) VALUES (1001, 'before', 1)", "TRUNCATE TABLE {t}", "INSERT INTO {t} (id, c, v) VALUES (1002, 'after', 2)"],
        ),
        "postgres_citext_key" | "postgres_ltree_key" => {
            let (ext, ty, val) =
                if name == "postgres_citext_key" { ("citext", "citext", "'Key' || i") } else { ("ltree", "ltree", "('top.k' || i)::ltree") };
            let (u1, u2, d) = if ext == "citext" {
                ("UPDATE {t} SET v = -1 WHERE k = 'KEY5'", "UPDATE {t} SET k = 'moved' WHERE k = 'key9'", "DELETE FROM {t} WHERE k = 'key7'")
            } else {
                ("UPDATE {t} SET v = -1 WHERE k = 'top.k5'", "UPDATE {t} SET k = 'top.moved' WHERE k = 'top.k9'", "DELETE FROM {t} WHERE k = 'top.k7'")
            };
            let create = format!("CREATE TABLE {{t}} (k {ty} PRIMARY KEY, v int NOT NULL)");
            let insert = format!("INSERT INTO {{t}} SELECT {val}, i FROM generate_series(1, 200) i");
            let mut c = base(name, Pg, &[], "ADD COLUMN x int DEFAULT 1", &[u1, u2, d]);
            c.setup = vec![create, insert];
            c.db_setup = vec![format!("CREATE EXTENSION {ext}")];
            c.accepted_refusals = strs(&[ext, "extension", "operator"]);
            c
        }
        "postgres_not_valid_check" => base(
            name,
            Pg,
            &[
                PG_ID_C_V[0],
                PG_ID_C_V[1],
                "UPDATE {t} SET v = -5 WHERE id = 3",
                "ALTER TABLE {t} ADD CONSTRAINT v_nonneg CHECK (v >= 0) NOT VALID",
            ],
            "ADD COLUMN x int DEFAULT 1",
            &["INSERT INTO {t} (id, c, v) VALUES (1001, 'app', 1)", "UPDATE {t} SET c = 'app-upd' WHERE id = 3"],
        ),
        "postgres_table_properties" => {
            let mut c = base(
                name,
                Pg,
                &[
                    "CREATE TABLE {t} (id int GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, u int NOT NULL, v int)",
                    "INSERT INTO {t} (id, u, v) SELECT i, i * 7, i FROM generate_series(1, 200) i",
                    "CREATE UNIQUE INDEX {tn}_u_idx ON {t} (u)",
                    "ALTER TABLE {t} REPLICA IDENTITY USING INDEX {tn}_u_idx",
                    "ALTER TABLE {t} ALTER COLUMN v SET STATISTICS 500",
                    "GRANT SELECT ON {t} TO ssw_diff_reader",
                    "GRANT USAGE ON SEQUENCE {tn}_id_seq TO ssw_diff_reader",
                ],
                "ADD COLUMN x int DEFAULT 1",
                &["INSERT INTO {t} (id, u, v) VALUES (1001, 1001, 1)", "UPDATE {t} SET v = 0 WHERE id = 3"],
            );
            c.db_setup = strs(&[READER_ROLE]);
            c
        }
        "postgres_default_privileges" => {
            let mut c = base(
                name,
                Pg,
                &[PG_ID_C_V[0], PG_ID_C_V[1], "REVOKE SELECT ON {t} FROM ssw_diff_reader"],
                "ADD COLUMN x int DEFAULT 1",
                PG_ID_C_V_OPS,
            );
            c.db_setup = strs(&[READER_ROLE, "ALTER DEFAULT PRIVILEGES GRANT SELECT ON TABLES TO ssw_diff_reader"]);
            c
        }
        _ => return None,
    };
    Some(c)
}

/// A role of this test's own (roles are server-wide): created once, kept.
const READER_ROLE: &str =
    "DO $$ BEGIN CREATE ROLE ssw_diff_reader NOLOGIN; EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$";
