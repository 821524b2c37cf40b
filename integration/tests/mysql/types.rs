//! Column types round-trip exactly: every MariaDB column type, at its edges, survives both
//! paths into the shadow table unchanged — the backfill (`INSERT … SELECT` of rows present
//! before the run) and the capture triggers (rows written during the run, here from a session in
//! a DST time zone) — and is what the table holds after the swap.
//!
//! Values are compared value by value (binary protocol), from a session at `+00:00`, plus
//! `UNIX_TIMESTAMP(ts)` and `HEX()` of every binary, bit, string and JSON column, so neither a
//! time zone conversion nor a character set conversion can hide behind equal-looking text.

use std::time::Duration;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Row, Value};
use shadowswap_engine::{Outcome, Runner};
use shadowswap_integration::compare::assert_same_rows;
use shadowswap_integration::mysql::TestDb;
use shadowswap_integration::run::{fast_config, PostponedRun};

/// The ALTER of every test here: a real rebuild (a plain ADD COLUMN is instant on MariaDB 10.11).
const ALTER: &str = "ADD COLUMN extra INT NULL, FORCE";

const CREATE: &str = "CREATE TABLE t (
    id INT NOT NULL PRIMARY KEY,
    i8 TINYINT NULL, u8 TINYINT UNSIGNED NULL,
    i16 SMALLINT NULL, u16 SMALLINT UNSIGNED NULL,
    i24 MEDIUMINT NULL, u24 MEDIUMINT UNSIGNED NULL,
    i32 INT NULL, u32 INT UNSIGNED NULL,
    i64 BIGINT NULL, u64 BIGINT UNSIGNED NULL,
    dec65 DECIMAL(65,30) NULL,
    f FLOAT NULL, d DOUBLE NULL,
    b1 BIT(1) NULL, b64 BIT(64) NULL,
    c_l CHAR(10) CHARACTER SET latin1 NULL,
    v_l VARCHAR(50) CHARACTER SET latin1 NULL,
    t_l TEXT CHARACTER SET latin1 NULL,
    c_u CHAR(10) CHARACTER SET utf8mb4 NULL,
    v_u VARCHAR(50) CHARACTER SET utf8mb4 NULL,
    t_u TEXT CHARACTER SET utf8mb4 NULL,
    bin4 BINARY(4) NULL, vbin VARBINARY(64) NULL, bl BLOB NULL,
    e ENUM('a', 'b', 'é', '🦀') NULL, s SET('x', 'y', 'z') NULL,
    dt DATE NULL, tm TIME(6) NULL, dtm DATETIME(6) NULL, ts TIMESTAMP(6) NULL, yr YEAR NULL,
    j JSON NULL,
    g_v VARCHAR(200) AS (CONCAT_WS('|', v_u, i32, e)) VIRTUAL,
    g_s VARCHAR(200) AS (CONCAT_WS('/', HEX(b64), yr, dec65)) STORED
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4";

/// Every column of the original table, generated ones included.
const COLUMNS: &[&str] = &[
    "id", "i8", "u8", "i16", "u16", "i24", "u24", "i32", "u32", "i64", "u64", "dec65", "f", "d", "b1", "b64", "c_l", "v_l",
    "t_l", "c_u", "v_u", "t_u", "bin4", "vbin", "bl", "e", "s", "dt", "tm", "dtm", "ts", "yr", "j", "g_v", "g_s",
];

/// Columns a row is inserted with (all but the generated ones).
const WRITABLE: &[&str] = &[
    "id", "i8", "u8", "i16", "u16", "i24", "u24", "i32", "u32", "i64", "u64", "dec65", "f", "d", "b1", "b64", "c_l", "v_l",
    "t_l", "c_u", "v_u", "t_u", "bin4", "vbin", "bl", "e", "s", "dt", "tm", "dtm", "ts", "yr", "j",
];

/// Exact renderings compared in addition to the raw values.
const DERIVED: &[&str] = &[
    "UNIX_TIMESTAMP(ts)",
    "HEX(b1)",
    "HEX(b64)",
    "HEX(bin4)",
    "HEX(vbin)",
    "HEX(bl)",
    "HEX(c_l)",
    "HEX(v_l)",
    "HEX(t_l)",
    "HEX(c_u)",
    "HEX(v_u)",
    "HEX(t_u)",
    "HEX(e)",
    "HEX(s)",
    "HEX(j)",
    "JSON_VALID(j)",
    "HEX(g_v)",
    "HEX(g_s)",
];

/// `UNIX_TIMESTAMP` of the two TIMESTAMPs in the hour Europe/Berlin passes twice
/// (2021-10-31 00:30:00.123456 and 01:30:00.654321 UTC; both 02:30 local).
const AMBIGUOUS_1: &str = "1635640200.123456";
const AMBIGUOUS_2: &str = "1635643800.654321";

fn all_bytes() -> String {
    (0..=255u8).map(|b| format!("{b:02X}")).collect()
}

/// TIMESTAMP literals of the edge rows as typed in a session at `+00:00`: the smallest and the
/// largest TIMESTAMP, and the two instants Europe/Berlin shows as 02:30 on 2021-10-31.
const TS_UTC: [&str; 4] =
    ["1970-01-01 00:00:01.000000", "2038-01-19 03:14:07.999999", "2021-10-31 00:30:00.123456", "2021-10-31 01:30:00.654321"];

/// The same literals typed in Europe/Berlin (CET in winter): the range edges shifted by an hour;
/// 02:30 local is ambiguous and the server picks one of the two instants.
const TS_BERLIN: [&str; 4] =
    ["1970-01-01 01:00:01.000000", "2038-01-19 04:14:07.999999", "2021-10-31 02:30:00.123456", "2021-10-31 02:30:00.654321"];

/// The edge rows as SQL value lists (in [`WRITABLE`] order, without the id), with the TIMESTAMP
/// literals `ts`. The last one is all NULLs.
fn edge_rows(ts: [&str; 4]) -> Vec<String> {
    let dec_max = format!("{}.{}", "9".repeat(35), "9".repeat(30));
    let json = r#"{"a": [1, 2.5, "🦀", null, true], "b": {"c": "é", "d": 12345678901234567890}}"#;
    vec![
        // Minimums and empties.
        format!(
            "-128, 0, -32768, 0, -8388608, 0, -2147483648, 0, -9223372036854775808, 0, -{dec_max}, \
             -3.40282e38, -1.7976931348623157e308, b'0', b'0', '', '', '', '', '', '', \
             X'00000000', X'', X'', 'a', '', '1000-01-01', '-838:59:59.999999', '1000-01-01 00:00:00.000000', \
             '{ts0}', 1901, 'null'",
            ts0 = ts[0]
        ),
        // Maximums, 0xFF bytes, latin1 é/ß, emoji, trailing spaces.
        format!(
            "127, 255, 32767, 65535, 8388607, 16777215, 2147483647, 4294967295, 9223372036854775807, \
             18446744073709551615, {dec_max}, 3.40282e38, 1.7976931348623157e308, b'1', \
             X'FFFFFFFFFFFFFFFF', 'éß', 'Ünïcödé ß é  ', 'ÿ trailing   ', '🦀', '🦀 trailing  ', \
             '𝄞🦀😀 4-byte ', X'FFFFFFFF', X'FF000000', X'{all}', '🦀', 'x,y,z', '9999-12-31', \
             '838:59:59.999999', '9999-12-31 23:59:59.999999', '{ts1}', 2155, '{json}'",
            all = all_bytes(),
            ts1 = ts[1]
        ),
        // Small and inexact values; the first ambiguous TIMESTAMP.
        format!(
            "-1, 1, -1, 1, -1, 1, -1, 1, -1, 1, 0.000000000000000000000000000001, 0.1, 0.1, b'1', \
             X'8000000000000001', 'ab   ', ' lead', ' ', 'ab   ', ' lead', ' ', X'FF', X'00', X'00', 'é', 'y', \
             '2021-10-31', '-00:00:00.000001', '2021-10-31 02:30:00.000000', '{ts2}', 2021, \
             '{{ \"k\" :  1 , \"e\":\"\\\\u00e9\" }}'",
            ts2 = ts[2]
        ),
        // Other inexact floats, >24 h TIME; the second ambiguous TIMESTAMP.
        format!(
            "42, 200, 1234, 60000, -4242, 4242, 123456789, 3000000000, -1234567890123456789, 12345678901234567890, \
             -12345.678901234567890123456789012345, 1.17549e-38, 2.2250738585072014e-308, b'0', \
             X'0123456789ABCDEF', 'Ä', 'x', 'Grüße', 'ü', 'ü🦀', 'Grüße 🦀\\n\\ttab', X'00FF', X'00FF00', X'FF00FF', \
             'b', 'x,z', '2024-02-29', '100:00:00.5', '2021-03-28 02:30:00.000001', '{ts3}', 1999, \
             '[\"🦀\", 1e2, -0.0, \"\"]'",
            ts3 = ts[3]
        ),
        // All NULLs.
        vec!["NULL"; WRITABLE.len() - 1].join(", "),
    ]
}

async fn session(db: &TestDb, time_zone: &str) -> Conn {
    let mut c = db.pool.get_conn().await.unwrap();
    c.query_drop(format!("SET time_zone = '{time_zone}'")).await.unwrap();
    c
}

async fn insert_edge_rows(c: &mut Conn, first_id: i64, ts: [&str; 4]) {
    for (i, values) in edge_rows(ts).iter().enumerate() {
        let stmt = format!("INSERT INTO t ({}) VALUES ({}, {values})", WRITABLE.join(", "), first_id + i as i64);
        c.query_drop(&stmt).await.unwrap_or_else(|e| panic!("{stmt}: {e}"));
    }
}

/// Every original column and its exact renderings, per row, ordered by id, read at `+00:00`.
async fn snapshot(db: &TestDb, table: &str) -> Vec<(i64, Vec<Value>)> {
    let mut c = session(db, "+00:00").await;
    let q = format!("SELECT {}, {} FROM `{table}` ORDER BY id", COLUMNS.join(", "), DERIVED.join(", "));
    let rows: Vec<Row> = c.exec(q, ()).await.unwrap();
    rows.into_iter()
        .map(|r| {
            let id: i64 = r.get(0).unwrap();
            (id, r.unwrap())
        })
        .collect()
}

/// Compare two snapshots value by value ([`assert_same_rows`]); the message names the row and
/// the column.
fn assert_same(before: &[(i64, Vec<Value>)], after: &[(i64, Vec<Value>)]) {
    let names: Vec<&str> = COLUMNS.iter().chain(DERIVED).copied().collect();
    assert_same_rows(&names, before, after);
}

/// The values of `expr` by id, read at `+00:00`.
async fn column_text(db: &TestDb, expr: &str) -> Vec<(i64, Option<String>)> {
    let mut c = session(db, "+00:00").await;
    c.query(format!("SELECT id, CAST({expr} AS CHAR) FROM t ORDER BY id")).await.unwrap()
}

/// Things the snapshots alone would not show: the edge values really are what the test meant.
async fn assert_known_values(db: &TestDb, ids: (i64, i64, i64)) {
    let (ambiguous_1, ambiguous_2, all_null) = ids;
    let ts: Vec<_> = column_text(db, "UNIX_TIMESTAMP(ts)").await;
    let at = |id: i64| ts.iter().find(|(i, _)| *i == id).and_then(|(_, v)| v.clone());
    assert_eq!(at(ambiguous_1).as_deref(), Some(AMBIGUOUS_1), "first ambiguous TIMESTAMP");
    assert_eq!(at(ambiguous_2).as_deref(), Some(AMBIGUOUS_2), "second ambiguous TIMESTAMP");
    let mut c = session(db, "+00:00").await;
    let nulls: Option<(u64, Option<String>, Option<String>)> = c
        .exec_first(
            format!(
                "SELECT {}, g_v, g_s FROM t WHERE id = ?",
                WRITABLE[1..].iter().map(|c| format!("({c} IS NULL)")).collect::<Vec<_>>().join(" + ")
            ),
            (all_null,),
        )
        .await
        .unwrap();
    let (null_count, g_v, g_s) = nulls.expect("the all-NULL row exists");
    assert_eq!(null_count as usize, WRITABLE.len() - 1, "every column of row {all_null} is NULL");
    assert_eq!((g_v.as_deref(), g_s.as_deref()), (Some(""), Some("")), "generated columns over NULLs");
}

async fn assert_new_definition(db: &TestDb) {
    let ddl = db.create_table("t").await;
    assert!(ddl.contains("`extra` int(11) DEFAULT NULL"), "the ALTER was applied: {ddl}");
    assert!(ddl.contains("VIRTUAL") && ddl.contains("STORED"), "generated columns kept: {ddl}");
    assert!(ddl.contains("CHARACTER SET latin1"), "latin1 columns kept: {ddl}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backfill_round_trips_every_type() {
    let db = TestDb::new("types_backfill").await;
    db.exec(CREATE).await;
    insert_edge_rows(&mut session(&db, "+00:00").await, 1, TS_UTC).await;
    assert_known_values(&db, (3, 4, 5)).await;
    let before = snapshot(&db, "t").await;
    assert_eq!(before.len(), 5);

    let runner = Runner::new(db.dialect().await, fast_config());
    let outcome = runner.run(&db.table("t"), ALTER).await.expect("migration succeeds");
    let Outcome::Swapped(summary) = outcome else { panic!("not swapped: {outcome:?}") };
    assert_eq!(summary.backfill.rows, 5, "every row was copied by the backfill");
    assert_eq!(summary.rows_checksummed, Some(5));

    db.assert_clean(&["t"]).await;
    assert_new_definition(&db).await;
    assert_same(&before, &snapshot(&db, "t").await);
    assert_known_values(&db, (3, 4, 5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capture_triggers_round_trip_every_type_through_a_dst_time_zone() {
    let db = TestDb::new("types_capture").await;
    db.exec(CREATE).await;
    insert_edge_rows(&mut session(&db, "+00:00").await, 1, TS_UTC).await;

    let run =
        PostponedRun::start(db.dialect().await, fast_config(), db.table("t"), ALTER, &db.name, Duration::from_secs(60)).await;

    // Application writes while the run waits, from a session in a time zone with DST: every
    // value reaches the shadow through the capture triggers only (the backfill is done).
    let mut app = session(&db, "Europe/Berlin").await;
    for stmt in [
        // Insert trigger: copies of every edge row, ambiguous TIMESTAMPs and the NULL row included.
        format!("INSERT INTO t ({0}) SELECT id + 100, {1} FROM t WHERE id <= 5", WRITABLE.join(", "), WRITABLE[1..].join(", ")),
        // Update trigger: rows 3 and 4 hold the ambiguous TIMESTAMPs; the trigger rewrites every column.
        "UPDATE t SET i32 = i32 + 1 WHERE id IN (3, 4)".to_string(),
        // Update trigger with a key change.
        "UPDATE t SET id = 1002 WHERE id = 2".to_string(),
        // Update of a NULL row into values and of a value row into NULLs.
        format!(
            "UPDATE t a JOIN t b ON b.id = 102 SET {} WHERE a.id = 105",
            WRITABLE[1..].iter().map(|c| format!("a.{c} = b.{c}")).collect::<Vec<_>>().join(", ")
        ),
        format!(
            "UPDATE t SET {} WHERE id = 101",
            WRITABLE[1..].iter().map(|c| format!("{c} = NULL")).collect::<Vec<_>>().join(", ")
        ),
        // Delete trigger.
        "DELETE FROM t WHERE id = 1".to_string(),
    ] {
        app.query_drop(&stmt).await.unwrap_or_else(|e| panic!("{stmt}: {e}"));
    }
    // Insert trigger with literals typed in Berlin local time.
    insert_edge_rows(&mut app, 201, TS_BERLIN).await;
    drop(app);

    let expected = snapshot(&db, "t").await;
    assert_eq!(expected.len(), 14);
    // Already in the shadow before the swap (its generated columns are computed there too).
    assert_same(&expected, &snapshot(&db, "_t_new").await);

    assert!(!run.is_finished(), "the run waits while the flag file exists");
    run.swap().await;

    db.assert_clean(&["t"]).await;
    assert_new_definition(&db).await;
    assert_same(&expected, &snapshot(&db, "t").await);
    assert_known_values(&db, (3, 4, 5)).await;
    assert_known_values(&db, (103, 104, 101)).await;
}

/// A primary key over one column of each type that can drive chunking, with values at the
/// awkward places: an empty string and latin1 letters, both ambiguous TIMESTAMPs, a negative
/// DECIMAL, empty and 0x00 / 0xFF VARBINARY, a negative and a >24 h TIME, the largest BIGINT
/// UNSIGNED. Rows differ in every key column, so every predicate of the keyset walk matters.
const KEYED: &str = "CREATE TABLE k (
    s VARCHAR(10) CHARACTER SET latin1 NOT NULL,
    ts TIMESTAMP(6) NOT NULL,
    d DECIMAL(12,4) NOT NULL,
    vb VARBINARY(8) NOT NULL,
    tm TIME(6) NOT NULL,
    u BIGINT UNSIGNED NOT NULL,
    dt DATETIME(6) NOT NULL,
    y YEAR NOT NULL,
    payload VARCHAR(20) NULL,
    PRIMARY KEY (s, ts, d, vb, tm, u, dt, y)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4";

const KEYED_ROWS: &str = "INSERT INTO k (s, ts, d, vb, tm, u, dt, y, payload)
    SELECT s.v, ts.v, d.v, vb.v, tm.v, u.v, '2021-10-31 02:30:00.000001', 2155, 'p'
    FROM (SELECT '' v UNION ALL SELECT 'A' UNION ALL SELECT 'é' UNION ALL SELECT 'Ö') s
    CROSS JOIN (SELECT '2021-10-31 00:30:00.123456' v UNION ALL SELECT '2021-10-31 01:30:00.654321') ts
    CROSS JOIN (SELECT -1.5 v UNION ALL SELECT 99999999.9999) d
    CROSS JOIN (SELECT X'' v UNION ALL SELECT X'00' UNION ALL SELECT X'FF') vb
    CROSS JOIN (SELECT '-01:00:00.000001' v UNION ALL SELECT '100:00:00') tm
    CROSS JOIN (SELECT 0 v UNION ALL SELECT 18446744073709551615) u";

async fn keyed_snapshot(db: &TestDb, table: &str) -> Vec<Vec<Value>> {
    let mut c = session(db, "+00:00").await;
    let q = format!(
        "SELECT s, HEX(s), ts, UNIX_TIMESTAMP(ts), d, vb, HEX(vb), tm, u, dt, y, payload FROM `{table}` \
         ORDER BY s, ts, d, vb, tm, u, dt, y"
    );
    let rows: Vec<Row> = c.exec(q, ()).await.unwrap();
    rows.into_iter().map(Row::unwrap).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunk_keys_of_every_orderable_type_bound_and_replay_exactly() {
    let db = TestDb::new("types_keys").await;
    db.exec(KEYED).await;
    session(&db, "+00:00").await.query_drop(KEYED_ROWS).await.unwrap();
    let before = keyed_snapshot(&db, "k").await;
    assert_eq!(before.len(), 192);

    let mut cfg = fast_config();
    cfg.copy.fixed_chunk_rows = Some(1); // every row is a chunk boundary
    let run = PostponedRun::start(db.dialect().await, cfg, db.table("k"), ALTER, &db.name, Duration::from_secs(120)).await;
    assert_eq!(run.rows_copied(), 192, "one-row chunks copied every row once");
    assert_eq!(keyed_snapshot(&db, "_k_new").await, before, "the backfill copied every row exactly");

    // The capture triggers find shadow rows by key (`=` on each key column), here from a session
    // in which both TIMESTAMPs of a pair read as the same local time.
    let mut app = session(&db, "Europe/Berlin").await;
    for stmt in [
        format!("UPDATE k SET payload = 'upd' WHERE UNIX_TIMESTAMP(ts) = {AMBIGUOUS_1} AND d = -1.5"),
        format!("DELETE FROM k WHERE UNIX_TIMESTAMP(ts) = {AMBIGUOUS_2} AND vb = X'00'"),
        format!("UPDATE k SET u = 5, payload = 'key' WHERE UNIX_TIMESTAMP(ts) = {AMBIGUOUS_1} AND u = 0 AND s = 'é'"),
        format!("UPDATE k SET ts = ts WHERE UNIX_TIMESTAMP(ts) = {AMBIGUOUS_2} AND s = 'Ö'"),
    ] {
        app.query_drop(&stmt).await.unwrap_or_else(|e| panic!("{stmt}: {e}"));
        assert!(app.affected_rows() > 0 || stmt.contains("ts = ts"), "{stmt} matched rows");
    }
    drop(app);
    let expected = keyed_snapshot(&db, "k").await;
    assert_eq!(expected.len(), 192 - 32, "4 s × 2 d × 2 tm × 2 u rows deleted");
    assert_eq!(keyed_snapshot(&db, "_k_new").await, expected, "the triggers replayed every change by key");

    let summary = run.swap().await;
    assert_eq!(summary.backfill.chunks, 192);
    db.assert_clean(&["k"]).await;
    assert_eq!(keyed_snapshot(&db, "k").await, expected);
}
