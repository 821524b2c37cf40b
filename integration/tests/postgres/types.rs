//! PostgreSQL: column types round-trip exactly. Every value, at its edges, survives both paths
//! into the shadow table unchanged — the backfill (`INSERT … SELECT` of rows present before the
//! run) and the capture triggers (rows written while the run waits on its postpone flag file, from
//! a session in Europe/Berlin, through the hour that clock passes twice) — and is what the table
//! holds after the swap.
//!
//! Values are compared value by value as the server prints them, read from a session in
//! Europe/Berlin, before against after, plus renderings that equal-looking text could hide:
//! the bytes of every float (`float8send`: -0 and NaN payloads), the epoch of every timestamp,
//! bytea as hex, the stored length of `char(n)`. `json` keeps its exact text (whitespace, key
//! order, duplicate keys).

use std::time::Duration;

use shadowswap_engine::{Outcome, Runner};
use shadowswap_integration::compare::assert_same_rows;
use shadowswap_integration::postgres::{client, PgTestDb};
use shadowswap_integration::run::{chunked_config, fast_config, PostponedRun};
use tokio_postgres::Client;

/// The ALTER of every test here: a new column with a default (a real copy either way).
const ALTER: &str = "ADD COLUMN extra int DEFAULT 7";

const CREATE: &str = "
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy', 'ünïcödé 🦀');
CREATE DOMAIN posint AS int CHECK (VALUE > 0);
CREATE TABLE t (
    id int PRIMARY KEY,
    i16 smallint, i32 integer, i64 bigint,
    num numeric, nump numeric(40, 20),
    r real, d double precision,
    b boolean,
    tx text, vc varchar(20), ch char(10),
    by bytea,
    u uuid,
    j json, jb jsonb,
    ai int[], at text[],
    ts timestamp(6), tstz timestamptz(6), dt date, tm time, ttz timetz, iv interval,
    e mood, ea mood[], dom posint,
    ip inet, net cidr, bits bit varying(16),
    gen text GENERATED ALWAYS AS (coalesce(tx, '∅') || '/' || coalesce(i32::text, 'null') || '/' || coalesce(i64::text, '-')) STORED,
    ident bigint GENERATED ALWAYS AS IDENTITY
)";

/// Columns a row is inserted with, after `id` (the generated and the identity column fill
/// themselves).
const WRITABLE: &[&str] = &[
    "i16", "i32", "i64", "num", "nump", "r", "d", "b", "tx", "vc", "ch", "by", "u", "j", "jb", "ai", "at", "ts", "tstz", "dt",
    "tm", "ttz", "iv", "e", "ea", "dom", "ip", "net", "bits",
];

/// Exact renderings compared in addition to every column's own text.
const DERIVED: &[&str] = &[
    "encode(float4send(r), 'hex')",
    "encode(float8send(d), 'hex')",
    "encode(by, 'hex')",
    "octet_length(ch)",
    "extract(epoch FROM ts)",
    "extract(epoch FROM tstz)",
    "array_dims(ai)",
    "array_dims(at)",
    "md5(tx)",
    "md5(j::text)",
    "num::text",
];

/// The instants Europe/Berlin shows as 02:30:00.123456 / 02:30:00.654321 on 2021-10-31 — once
/// in summer time (+02), once in winter time (+01) — as epochs, and as UTC literals.
const AMBIGUOUS_1: &str = "1635640200.123456";
const AMBIGUOUS_2: &str = "1635643800.654321";
const TSTZ_UTC: [&str; 3] = ["2021-10-31 00:30:00.123456+00", "2021-10-31 01:30:00.654321+00", "2021-03-28 01:30:00+00"];
/// The same typed in Berlin local time: 02:30 is ambiguous (the server picks one instant), and
/// 2021-03-28 02:30 does not exist there (the clock jumps from 02:00 to 03:00).
const TSTZ_BERLIN: [&str; 3] = ["2021-10-31 02:30:00.123456", "2021-10-31 02:30:00.654321", "2021-03-28 02:30:00"];

fn all_bytes() -> String {
    (0..=255u8).map(|b| format!("{b:02x}")).collect()
}

/// The edge rows as SQL value lists in [`WRITABLE`] order (without the id); `tstz` are the three
/// timestamptz literals. The last row is all NULLs.
fn edge_rows(tstz: [&str; 3]) -> Vec<String> {
    let big = "('-' || repeat('9', 500) || '.' || repeat('9', 500))::numeric";
    let tiny = format!("'0.{}1'", "0".repeat(300));
    vec![
        // Minimums, empties, -infinity.
        format!(
            "-32768, -2147483648, -9223372036854775808, {big}, -99999999999999999999.99999999999999999999, \
             '-Infinity', '-Infinity', false, '', '', '', '\\x00', '00000000-0000-0000-0000-000000000000', \
             '[]', '{{}}', '{{}}', '{{}}', '-infinity', '-infinity', '-infinity', '00:00:00', '00:00:00+15:59', \
             '-178000000 years', 'sad', '{{}}', 1, '0.0.0.0', '0.0.0.0/0', B''"
        ),
        // Maximums, infinity, NaN, every byte, emoji and odd characters, trailing spaces, json
        // with whitespace, key order and a duplicate key, multi-dimensional arrays with NULLs.
        format!(
            "32767, 2147483647, 9223372036854775807, 'NaN', 99999999999999999999.99999999999999999999, \
             'Infinity', 'Infinity', true, E'Grüße 🦀😀𝄞 \\t tab\\nnewline ''quote'' \"dq\" \\\\ backslash \\u00a0nbsp \\u200bzwsp', \
             'exactly twenty chars', 'ab   ', decode('{all}', 'hex'), 'ffffffff-ffff-ffff-ffff-ffffffffffff', \
             '{{ \"z\" : 1,\n   \"a\" : [ 1 , 2.50 , \"🦀\", 1e400 ] , \"z\":2 }}', \
             '{{\"a\": 12345678901234567890.123, \"b\": null, \"é\": \"\\u00e9\", \"arr\": [true, false, -0.0]}}', \
             '{{{{1,2}},{{3,NULL}}}}', '{{NULL,\"\",\"with space\",\"quote\\\"\",\"NULL\",\"🦀\"}}', \
             'infinity', 'infinity', 'infinity', '24:00:00', '24:00:00-15:59', '178000000 years', \
             'ünïcödé 🦀', '{{happy,NULL,sad}}', 2147483647, 'ffff:ffff::1/64', '2001:db8::/32', B'1010101010101010'",
            all = all_bytes()
        ),
        // Inexact floats needing 17 digits, tiny numeric, 3-d array; the first ambiguous instant.
        format!(
            "-1, -1, -1, {tiny}, 0.00000000000000000001, 0.1, 0.30000000000000004, NULL, ' lead and trail ', ' ', ' a', \
             '\\x', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{{\"k\":1,\"e\":\"\\u00e9\"}}', '[1, \"two\", {{\"three\": 3}}]', \
             '{{{{{{1}}}},{{{{2}}}}}}', '{{{{a,b}},{{c,d}}}}', '2021-10-31 02:30:00.123456', '{t0}', '2024-02-29', \
             '23:59:59.999999', '12:00:00+05:30', '1 year 2 mons 3 days 04:05:06.789', 'ok', '{{ok}}', 42, '192.168.0.1/24', \
             '10.0.0.0/8', B'1'",
            t0 = tstz[0]
        ),
        // Float extremes (denormal, smallest normal real), long numeric, mixed-sign interval,
        // json that is a padded scalar; the second ambiguous instant.
        format!(
            "1234, 123456789, -1234567890123456789, -12345.678901234567890123456789012345, -0.5, 1.17549435e-38, 5e-324, \
             true, 'ü', 'ü🦀', '🦀', '\\xdeadbeef', '6ba7b810-9dad-11d1-80b4-00c04fd430c8', '  \"padded scalar\"  ', '\"🦀\"', \
             '{{-2147483648,2147483647}}', '{{\"{{}}\",\"a,b\"}}', '2021-03-28 02:30:00', '{t1}', '4713-01-01 BC', \
             '12:34:56.789', '00:00:00.000001+00', '-1 days +01:00:00', 'happy', '{{sad,sad}}', 7, '::1', '::/0', B'0000'",
            t1 = tstz[1]
        ),
        // NaN and -0 floats, numeric display scale; the hour Berlin skips.
        format!(
            "0, 0, 0, -0.00, 0, 'NaN', '-0', false, 'x', 'x', 'x', '\\x00ff', '00000000-0000-0000-0000-000000000001', \
             'null', 'null', '{{NULL}}', '{{NULL}}', '2021-10-31 02:30:00.5', '{t2}', '2000-01-01', '00:00:00.5', \
             '00:00:00-00:30', '0', 'ok', '{{}}', 3, '10.1.2.3', '10.1.2.0/24', B''",
            t2 = tstz[2]
        ),
        // All NULLs.
        vec!["NULL"; WRITABLE.len()].join(", "),
    ]
}

async fn session(db: &PgTestDb, time_zone: &str) -> Client {
    let c = client(&db.dsn).await;
    c.batch_execute(&format!("SET TimeZone = '{time_zone}'")).await.unwrap();
    c
}

async fn insert_edge_rows(c: &Client, first_id: i64, tstz: [&str; 3]) {
    for (i, values) in edge_rows(tstz).iter().enumerate() {
        let stmt = format!("INSERT INTO t (id, {}) VALUES ({}, {values})", WRITABLE.join(", "), first_id + i as i64);
        c.batch_execute(&stmt).await.unwrap_or_else(|e| panic!("{stmt}: {e:?}"));
    }
}

/// What a snapshot reads: every column (the added one aside), generated ones included, and the
/// exact renderings.
fn columns() -> Vec<&'static str> {
    ["id"].iter().chain(WRITABLE).chain(&["gen", "ident"]).chain(DERIVED).copied().collect()
}

/// Every column of `table` (the added one aside), generated ones included, and the exact
/// renderings, per row ordered by id, read in Europe/Berlin.
async fn snapshot(db: &PgTestDb, table: &str) -> Vec<Vec<Option<String>>> {
    let c = session(db, "Europe/Berlin").await;
    let rows = c.simple_query(&format!("SELECT {} FROM {table} ORDER BY id", columns().join(", "))).await.unwrap();
    rows.into_iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => Some((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect()),
            _ => None,
        })
        .collect()
}

/// Compare two snapshots value by value ([`assert_same_rows`], rows by their id); the message
/// names the row and the column.
fn assert_same(before: &[Vec<Option<String>>], after: &[Vec<Option<String>>]) {
    let by_id = |s: &[Vec<Option<String>>]| s.iter().map(|r| (r[0].clone(), r.clone())).collect::<Vec<_>>();
    assert_same_rows(&columns(), &by_id(before), &by_id(after));
}

/// The column definitions of `table` (name, type, NOT NULL, default/generation expression,
/// identity and generated kind), the added column left out.
async fn definition(db: &PgTestDb, table: &str) -> Vec<Vec<Option<String>>> {
    db.text_rows(&format!(
        "SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull::text, pg_get_expr(d.adbin, d.adrelid), \
                a.attidentity::text, a.attgenerated::text, coalesce(co.collname, '') \
         FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum \
         LEFT JOIN pg_collation co ON co.oid = a.attcollation \
         WHERE a.attrelid = '{table}'::regclass AND a.attnum > 0 AND NOT a.attisdropped AND a.attname <> 'extra' ORDER BY a.attnum"
    ))
    .await
}

/// The values the snapshots alone would not prove: the edge values are what the test meant.
/// `ids` are the rows holding the six edge rows written from a UTC session, in order.
async fn assert_known_values(db: &PgTestDb, ids: [i64; 6]) {
    let c = session(db, "Europe/Berlin").await;
    let one = |q: String| {
        let c = &c;
        async move {
            let rows = c.simple_query(&q).await.unwrap_or_else(|e| panic!("{q}: {e:?}"));
            rows.into_iter()
                .find_map(|m| match m {
                    tokio_postgres::SimpleQueryMessage::Row(r) => Some(r.get(0).map(str::to_string)),
                    _ => None,
                })
                .unwrap_or_else(|| panic!("no row: {q}"))
        }
    };
    let id = |k: usize| ids[k];
    assert_eq!(one(format!("SELECT extract(epoch FROM tstz) FROM t WHERE id = {}", id(2))).await.as_deref(), Some(AMBIGUOUS_1));
    assert_eq!(one(format!("SELECT extract(epoch FROM tstz) FROM t WHERE id = {}", id(3))).await.as_deref(), Some(AMBIGUOUS_2));
    assert_eq!(
        one(format!("SELECT tstz::text FROM t WHERE id = {}", id(2))).await.as_deref(),
        Some("2021-10-31 02:30:00.123456+02"),
        "summer time, shown in Berlin"
    );
    assert_eq!(
        one(format!("SELECT tstz::text FROM t WHERE id = {}", id(3))).await.as_deref(),
        Some("2021-10-31 02:30:00.654321+01")
    );
    // json keeps its text exactly; jsonb normalises (keys by length, then bytes; -0.0 is 0.0).
    assert_eq!(
        one(format!("SELECT j::text FROM t WHERE id = {}", id(1))).await.as_deref(),
        Some("{ \"z\" : 1,\n   \"a\" : [ 1 , 2.50 , \"🦀\", 1e400 ] , \"z\":2 }")
    );
    assert_eq!(one(format!("SELECT j::text FROM t WHERE id = {}", id(3))).await.as_deref(), Some("  \"padded scalar\"  "));
    assert_eq!(
        one(format!("SELECT jb::text FROM t WHERE id = {}", id(1))).await.as_deref(),
        Some("{\"a\": 12345678901234567890.123, \"b\": null, \"é\": \"é\", \"arr\": [true, false, 0.0]}")
    );
    assert_eq!(one(format!("SELECT d::text FROM t WHERE id = {}", id(2))).await.as_deref(), Some("0.30000000000000004"));
    assert_eq!(
        one(format!("SELECT encode(float8send(d), 'hex') FROM t WHERE id = {}", id(4))).await.as_deref(),
        Some("8000000000000000"),
        "-0"
    );
    assert_eq!(
        one(format!("SELECT octet_length(ch) FROM t WHERE id = {}", id(1))).await.as_deref(),
        Some("10"),
        "char(10) padded"
    );
    assert_eq!(one(format!("SELECT length(encode(by, 'hex')) FROM t WHERE id = {}", id(1))).await.as_deref(), Some("512"));
    assert_eq!(one(format!("SELECT length(num::text) FROM t WHERE id = {}", id(0))).await.as_deref(), Some("1002"));
    assert_eq!(one(format!("SELECT gen FROM t WHERE id = {}", id(5))).await.as_deref(), Some("∅/null/-"));
    let nulls = WRITABLE.iter().map(|c| format!("({c} IS NULL)::int")).collect::<Vec<_>>().join(" + ");
    assert_eq!(
        one(format!("SELECT {nulls} FROM t WHERE id = {}", id(5))).await,
        Some(WRITABLE.len().to_string()),
        "every column of row {} is NULL",
        id(5)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backfill_round_trips_every_type() {
    let db = PgTestDb::new("pgtypes_backfill").await;
    db.exec(CREATE).await;
    insert_edge_rows(&session(&db, "UTC").await, 1, TSTZ_UTC).await;
    insert_edge_rows(&session(&db, "Europe/Berlin").await, 11, TSTZ_BERLIN).await;
    assert_known_values(&db, [1, 2, 3, 4, 5, 6]).await;
    let before = snapshot(&db, "t").await;
    assert_eq!(before.len(), 12);
    let def = definition(&db, "t").await;

    let cfg = chunked_config(Some(5));
    let runner = Runner::new(db.dialect().await, cfg);
    let outcome = runner.run(&db.table("t"), ALTER).await.expect("migration succeeds");
    let Outcome::Swapped(summary) = outcome else { panic!("not swapped: {outcome:?}") };
    assert_eq!(summary.backfill.rows, 12, "every row was copied by the backfill");
    assert_eq!(summary.rows_checksummed, Some(12));

    db.assert_clean(&["t"]).await;
    assert_eq!(definition(&db, "t").await, def, "column definitions kept");
    assert_same(&before, &snapshot(&db, "t").await);
    assert_known_values(&db, [1, 2, 3, 4, 5, 6]).await;
    assert_eq!(db.text_rows("SELECT count(*) FROM t WHERE extra = 7").await, [[Some("12".to_string())]], "the ALTER was applied");
    // The identity column continues after the copied values.
    db.exec("INSERT INTO t (id) VALUES (1000)").await;
    assert_eq!(db.text_rows("SELECT ident FROM t WHERE id = 1000").await, [[Some("13".to_string())]]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capture_triggers_round_trip_every_type_from_a_berlin_session() {
    let db = PgTestDb::new("pgtypes_capture").await;
    db.exec(CREATE).await;
    insert_edge_rows(&session(&db, "UTC").await, 1, TSTZ_UTC).await;
    let def = definition(&db, "t").await;

    let cfg = chunked_config(Some(2));
    let run = PostponedRun::start(db.dialect().await, cfg, db.table("t"), ALTER, &db.name, Duration::from_secs(60)).await;

    // Application writes while the run waits, from a session in Europe/Berlin: every value
    // reaches the shadow through the capture triggers only (the backfill is done).
    let app = session(&db, "Europe/Berlin").await;
    let cols = WRITABLE.join(", ");
    for stmt in [
        // Insert trigger: copies of every edge row, the ambiguous instants and the NULL row included.
        format!("INSERT INTO t (id, {cols}) SELECT id + 100, {cols} FROM t WHERE id <= 6"),
        // Update trigger: the whole row is rewritten.
        "UPDATE t SET i32 = i32 + 1 WHERE id IN (3, 4)".to_string(),
        // Update trigger with a key change.
        "UPDATE t SET id = 1002 WHERE id = 2".to_string(),
        // A NULL row into values, a value row into NULLs.
        format!("UPDATE t SET ({cols}) = (SELECT {cols} FROM t WHERE id = 102) WHERE id = 106"),
        format!("UPDATE t SET {} WHERE id = 101", WRITABLE.iter().map(|c| format!("{c} = NULL")).collect::<Vec<_>>().join(", ")),
        // A new identity value (GENERATED ALWAYS: only DEFAULT may be assigned).
        "UPDATE t SET ident = DEFAULT WHERE id IN (3, 5)".to_string(),
        // Delete trigger.
        "DELETE FROM t WHERE id = 1".to_string(),
    ] {
        app.batch_execute(&stmt).await.unwrap_or_else(|e| panic!("{stmt}: {e:?}"));
    }
    // Insert trigger with literals typed in Berlin local time.
    insert_edge_rows(&app, 201, TSTZ_BERLIN).await;
    drop(app);

    let expected = snapshot(&db, "t").await;
    assert_eq!(expected.len(), 17);
    // Already in the shadow before the swap (its generated column is computed there).
    assert_same(&expected, &snapshot(&db, "_t_new").await);

    assert!(!run.is_finished(), "the run waits while the flag file exists");
    run.swap().await;

    db.assert_clean(&["t"]).await;
    assert_eq!(definition(&db, "t").await, def, "column definitions kept");
    assert_same(&expected, &snapshot(&db, "t").await);
    // Row 1 is deleted and its copy set to NULLs, row 2 has a new key, row 106 has values now:
    // the edge rows as the insert trigger copied them, and the untouched NULL row.
    assert_known_values(&db, [201, 102, 103, 104, 105, 6]).await;
    let idents = db.text_rows("SELECT ident FROM t WHERE id IN (3, 5) ORDER BY id").await;
    assert!(idents.iter().all(|r| r[0].as_deref().unwrap().parse::<i64>().unwrap() > 12), "new identity values: {idents:?}");
}

/// A primary key over one column of several orderable types, with values at the awkward places:
/// the empty string and a non-ASCII letter under `COLLATE "C"`, both ambiguous instants, a
/// numeric with trailing zeros, the nil and the max uuid, enum labels whose order is not their
/// text order, empty and 0x00ff bytea, -0 and NaN doubles. Rows differ in every key column, so
/// every part of the keyset walk (key values travel as text and are cast back) matters.
const KEYED: &str = "
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE TABLE k (
    s text COLLATE \"C\" NOT NULL, ts timestamptz NOT NULL, n numeric NOT NULL, u uuid NOT NULL,
    e mood NOT NULL, by bytea NOT NULL, f float8 NOT NULL, payload text,
    PRIMARY KEY (s, ts, n, u, e, by, f)
);
INSERT INTO k
    SELECT s, ts, n, u, e, by, f, 'p'
    FROM unnest(ARRAY['', 'é']) s
    CROSS JOIN unnest(ARRAY['2021-10-31 00:30:00.123456+00', '2021-10-31 01:30:00.654321+00']::timestamptz[]) ts
    CROSS JOIN unnest(ARRAY[-1.50, 100000000000000000000]::numeric[]) n
    CROSS JOIN unnest(ARRAY['00000000-0000-0000-0000-000000000000', 'ffffffff-ffff-ffff-ffff-ffffffffffff']::uuid[]) u
    CROSS JOIN unnest(ARRAY['happy', 'sad']::mood[]) e
    CROSS JOIN unnest(ARRAY['\\x', '\\x00ff']::bytea[]) by
    CROSS JOIN unnest(ARRAY['-0', 'NaN']::float8[]) f";

async fn keyed_snapshot(db: &PgTestDb, table: &str) -> Vec<Vec<Option<String>>> {
    let c = session(db, "Europe/Berlin").await;
    let q = format!(
        "SELECT s, ts, extract(epoch FROM ts), n, u, e, by, encode(float8send(f), 'hex'), payload FROM {table} \
         ORDER BY s, ts, n, u, e, by, f"
    );
    c.simple_query(&q)
        .await
        .unwrap()
        .into_iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => Some((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect()),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunk_keys_of_several_types_bound_and_replay_exactly() {
    let db = PgTestDb::new("pgtypes_keys").await;
    db.exec(KEYED).await;
    let before = keyed_snapshot(&db, "k").await;
    assert_eq!(before.len(), 128);

    let mut cfg = fast_config();
    cfg.copy.fixed_chunk_rows = Some(1); // every row is a chunk boundary
    let run = PostponedRun::start(db.dialect().await, cfg, db.table("k"), ALTER, &db.name, Duration::from_secs(120)).await;
    assert_eq!(run.rows_copied(), 128, "one-row chunks copied every row once");
    assert_eq!(keyed_snapshot(&db, "_k_new").await, before, "the backfill copied every row exactly");

    // The capture triggers find shadow rows by key (`=` on each key column), here from a session
    // in which both instants of the pair read as the same local time.
    let app = session(&db, "Europe/Berlin").await;
    for (stmt, rows) in [
        (format!("UPDATE k SET payload = 'upd' WHERE extract(epoch FROM ts) = {AMBIGUOUS_1} AND n = -1.5"), 32),
        (format!("DELETE FROM k WHERE extract(epoch FROM ts) = {AMBIGUOUS_2} AND by = '\\x00ff'"), 32),
        ("UPDATE k SET f = 1, payload = 'key' WHERE s = 'é' AND e = 'sad' AND f = 'NaN' AND by = '\\x'".to_string(), 8),
        ("UPDATE k SET ts = ts + interval '1 hour', payload = 'ts' WHERE s = '' AND u = 'ffffffff-ffff-ffff-ffff-ffffffffffff' AND e = 'happy' AND by = '\\x'".to_string(), 8),
    ] {
        let n = app.execute(stmt.as_str(), &[]).await.unwrap_or_else(|e| panic!("{stmt}: {e:?}"));
        assert_eq!(n, rows, "{stmt}");
    }
    drop(app);
    let expected = keyed_snapshot(&db, "k").await;
    assert_eq!(expected.len(), 128 - 32);
    assert_eq!(keyed_snapshot(&db, "_k_new").await, expected, "the triggers replayed every change by key");

    let summary = run.swap().await;
    assert_eq!(summary.backfill.chunks, 128);
    db.assert_clean(&["k"]).await;
    assert_eq!(keyed_snapshot(&db, "k").await, expected);
}
