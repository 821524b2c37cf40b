//! The checkpoint on MariaDB ([`shadowswap_engine::checkpoint`]): writing and reading its one
//! row ([`crate::sql::checkpoint`] builds the statements; the per-chunk advance runs inside the
//! chunk's transaction in `copy.rs`), the chunk key's text form for the watermarks
//! ([`key_to_text`], [`key_from_text`]), the capture identity kept in it, and the checks before a
//! resume (`verify_resumable`).
//!
//! The capture identity ([`Identity`]) is what the cut-over compares to find a TRUNCATE, a
//! rebuild or DDL the capture triggers could not follow. A run keeps it in memory; it is also
//! written to the checkpoint (`capture_identity`, JSON) the moment it is taken, so a resumed
//! process compares the table with the identity recorded when the capture *started*, and so a
//! TRUNCATE while no shadowswap ran is found too.

use mysql_async::prelude::Queryable;
use mysql_async::{Row, Value};
use serde_json::{json, Value as Json};
use shadowswap_engine::checkpoint::{Checkpoint, ChunkMark};
use shadowswap_engine::error::Result;
use shadowswap_engine::names::Names;
use shadowswap_engine::phase::Phase;
use shadowswap_engine::plan::Plan;
use shadowswap_engine::Error;

use crate::identity::Identity;
use crate::inspect::table_exists;
use crate::{errors, sql, MyKey, MySql};

/// Create the checkpoint table when missing and make its row `ckpt` (autocommitted), keeping
/// `capture_identity` and `revert_broken`.
pub(crate) async fn write(my: &MySql, names: &Names, ckpt: &Checkpoint) -> Result<()> {
    let ctx = "writing the checkpoint";
    let mut c = my.conn().await?;
    c.query_drop(sql::checkpoint::create_checkpoint_table(names)).await.map_err(|e| errors::db(ctx, e))?;
    let params: Vec<Value> = vec![
        ckpt.table.clone().into(),
        ckpt.alter.clone().into(),
        ckpt.fingerprint.clone().into(),
        ckpt.version.clone().into(),
        ckpt.dialect.clone().into(),
        ckpt.phase.to_string().into(),
        ckpt.low_watermark.clone().into(),
        ckpt.high_watermark.clone().into(),
        ckpt.rows_copied.into(),
        ckpt.rows_estimated.into(),
        ckpt.chunk_rows.into(),
        ckpt.started_at.clone().into(),
        ckpt.revert_until.clone().into(),
    ];
    c.exec_drop(sql::checkpoint::upsert_checkpoint(names), params).await.map_err(|e| errors::db(ctx, e))
}

/// The checkpoint row; `None` when there is no checkpoint table or no row. Errors:
/// [`Error::Refused`] for a row that cannot be read as a checkpoint.
/// Advance the checkpoint in the chunk's own transaction `tx` (before its commit, so the two
/// commit or roll back together): low watermark and chunk size from `mark`, `rows_copied` by
/// `rows` ([`sql::checkpoint::advance_checkpoint`]). Returns the rows the `UPDATE` matched (1, or
/// 0 without a checkpoint row). `context` names the work for the error.
pub(crate) async fn advance(
    tx: &mut mysql_async::Transaction<'_>,
    names: &Names,
    mark: &ChunkMark,
    rows: u64,
    context: &str,
) -> Result<u64> {
    tx.exec_drop(sql::checkpoint::advance_checkpoint(names), (&mark.low_watermark, mark.chunk_rows, rows))
        .await
        .map_err(|e| errors::db(context, e))?;
    Ok(tx.affected_rows())
}

pub(crate) async fn read(my: &MySql, names: &Names) -> Result<Option<Checkpoint>> {
    let Some(mut row) = read_row(my, names, &sql::checkpoint::select_checkpoint(names)).await? else { return Ok(None) };
    let bad = |what: &str| {
        Error::refused(format!(
            "{} cannot be read as shadowswap's checkpoint ({what}); run `shadowswap cleanup` for {} and start again",
            names.checkpoint, names.table
        ))
    };
    fn take<T: mysql_async::prelude::FromValue>(row: &mut Row, i: usize) -> Option<T> {
        row.take_opt::<T, usize>(i).and_then(|r| r.ok())
    }
    let text = |row: &mut Row, i: usize| take::<String>(row, i).ok_or_else(|| bad(sql::checkpoint::CHECKPOINT_COLUMNS[i]));
    let opt = |row: &mut Row, i: usize| take::<Option<String>>(row, i).ok_or_else(|| bad(sql::checkpoint::CHECKPOINT_COLUMNS[i]));
    let num = |row: &mut Row, i: usize| take::<u64>(row, i).ok_or_else(|| bad(sql::checkpoint::CHECKPOINT_COLUMNS[i]));
    let phase_text = text(&mut row, 5)?;
    Ok(Some(Checkpoint {
        table: text(&mut row, 0)?,
        alter: text(&mut row, 1)?,
        fingerprint: text(&mut row, 2)?,
        version: text(&mut row, 3)?,
        dialect: text(&mut row, 4)?,
        phase: Phase::parse(&phase_text).ok_or_else(|| bad(&format!("unknown phase {phase_text:?}")))?,
        low_watermark: opt(&mut row, 6)?,
        high_watermark: opt(&mut row, 7)?,
        rows_copied: num(&mut row, 8)?,
        rows_estimated: num(&mut row, 9)?,
        chunk_rows: num(&mut row, 10)?,
        started_at: text(&mut row, 11)?,
        revert_until: opt(&mut row, 12)?,
    }))
}

/// Row 1 of `query` on the checkpoint table; `None` when the table or the row is missing.
async fn read_row(my: &MySql, names: &Names, query: &str) -> Result<Option<Row>> {
    let mut c = my.conn().await?;
    match c.query_first::<Row, _>(query).await {
        Ok(row) => Ok(row),
        Err(e) if errors::code(&e) == Some(errors::NO_SUCH_TABLE) => Ok(None),
        Err(e) if errors::code(&e) == Some(errors::BAD_FIELD) => Err(Error::refused(format!(
            "{} is not shadowswap's checkpoint table (it lacks a column shadowswap writes); run `shadowswap cleanup` \
             for {} and start again",
            names.checkpoint, names.table
        ))),
        Err(e) => Err(errors::db(&format!("reading the checkpoint {}", names.checkpoint), e)),
    }
}

/// Record `id`, the identity the capture started with, in the checkpoint. Without a checkpoint
/// table (a capture installed outside a run, as some tests do) there is nothing to record it in.
pub(crate) async fn record_identity(my: &MySql, names: &Names, id: &Identity) -> Result<()> {
    let text = serde_json::to_string(id).expect("an identity serializes");
    let mut c = my.conn().await?;
    match c.exec_drop(sql::checkpoint::set_capture_identity(names), (text,)).await {
        Ok(()) => Ok(()),
        Err(e) if errors::code(&e) == Some(errors::NO_SUCH_TABLE) => Ok(()),
        Err(e) => Err(errors::db("recording the capture's identity in the checkpoint", e)),
    }
}

/// The identity recorded by [`record_identity`]; `None` when none is.
async fn recorded_identity(my: &MySql, names: &Names) -> Result<Option<Identity>> {
    let Some(mut row) = read_row(my, names, &sql::checkpoint::select_capture_identity(names)).await? else { return Ok(None) };
    let Some(Some(text)) = row.take_opt::<Option<String>, usize>(0).and_then(|r| r.ok()) else { return Ok(None) };
    serde_json::from_str(&text).map(Some).map_err(|e| {
        Error::refused(format!(
            "the capture identity in {} cannot be read ({e}); run `shadowswap cleanup` for {} and start again",
            names.checkpoint, names.table
        ))
    })
}

/// Before a resume or after a reconnect: the identity recorded when the capture started is in
/// the checkpoint and the table still has it (no TRUNCATE, rebuild or DDL since, the capture
/// triggers unchanged), the capture triggers are exactly the ones this plan installs, and the
/// shadow's definition is the one this plan gives it (compared, as `SHOW CREATE TABLE` text, with
/// a temporary copy made now as [`crate::sql::shadow::create_shadow`] makes the shadow). Then
/// restores the identity in memory, for the cut-over's checks. Errors: [`Error::Refused`] naming
/// what is missing or changed and saying to run `shadowswap cleanup`.
pub(crate) async fn verify_resumable(my: &MySql, plan: &Plan) -> Result<()> {
    let n = &plan.names;
    let refuse = |what: String| {
        Error::refused(format!(
            "cannot resume the unfinished run on {}: {what}; run `shadowswap cleanup` for this table and start again",
            n.table
        ))
    };
    let ctx = "checking what the unfinished run created";
    let Some(recorded) = recorded_identity(my, n).await? else {
        return Err(refuse(format!("its checkpoint {} records no capture identity", n.checkpoint)));
    };
    if !table_exists(my, &n.shadow).await? {
        return Err(refuse(format!("the shadow table {} is missing", n.shadow)));
    }
    let mut c = my.conn().await?;
    let now = Identity::read(&mut c, &n.table, n).await.map_err(|e| errors::db(ctx, e))?;
    if let Some(what) = recorded.changed(&now) {
        let what = what.replace("during the run", "since the capture started");
        return Err(refuse(format!("{} {what}", n.table)));
    }
    let expected = expected_trigger_bodies(plan);
    let mut found = now.triggers.clone();
    found.sort();
    if found != expected {
        let have: Vec<&str> = now.triggers.iter().map(|(name, _)| name.as_str()).collect();
        return Err(refuse(format!(
            "the capture triggers on {} are not the ones this ALTER installs (found: {})",
            n.table,
            if have.is_empty() { "none".to_string() } else { have.join(", ") }
        )));
    }
    // The shadow's definition against a temporary copy made from the table now (which the
    // identity shows unchanged) exactly as the shadow was made. Until its secondary indexes are
    // built (phase build indexes, recorded in the checkpoint once they are), the shadow may lack
    // the plain ones it was created without.
    let raw = crate::indexes::expected_definition(&mut c, plan).await.map_err(|e| errors::db(ctx, e))?;
    let want = sql::identity::normalized_definition(&raw);
    let without = sql::identity::normalized_definition(&sql::indexes::split(&raw).without);
    let have = definition(&mut c, &n.shadow).await.map_err(|e| errors::db(ctx, e))?;
    drop(c);
    let phase = read(my, n).await?.map(|ck| ck.phase);
    let built = phase.is_some_and(|p| p > Phase::BuildIndexes);
    if have != want && (built || have != without) {
        return Err(refuse(format!("the shadow table {} does not have the definition this ALTER gives it", n.shadow)));
    }
    my.captured.lock().expect("identity map").insert(n.table.clone(), recorded);
    Ok(())
}

/// The capture triggers' `(name, body)` as `information_schema.TRIGGERS.ACTION_STATEMENT` shows
/// them for [`sql::capture::capture_triggers`] of `plan`, sorted by name.
fn expected_trigger_bodies(plan: &Plan) -> Vec<(String, String)> {
    let n = &plan.names;
    let names = [&n.trigger_insert, &n.trigger_update, &n.trigger_delete];
    let mut out: Vec<(String, String)> = names
        .iter()
        .zip(sql::capture::capture_triggers(plan))
        .map(|(name, stmt)| {
            let body = stmt.split_once(" FOR EACH ROW ").map(|(_, b)| b.to_string()).unwrap_or(stmt);
            (name.to_string(), body)
        })
        .collect();
    out.sort();
    out
}

/// `SHOW CREATE TABLE` of `table`, without its name and AUTO_INCREMENT
/// ([`sql::identity::normalized_definition`]).
async fn definition(c: &mut mysql_async::Conn, table: &shadowswap_engine::model::TableRef) -> mysql_async::Result<String> {
    let ddl: Option<(Vec<u8>, Vec<u8>)> = c.query_first(sql::inspect::show_create_table(table)).await?;
    Ok(sql::identity::normalized_definition(&String::from_utf8_lossy(&ddl.map(|(_, d)| d).unwrap_or_default())))
}

/// A chunk key as JSON text that [`key_from_text`] reads back to the same values of the same
/// types: an array with one element per key column, each
/// - `null` for NULL; a number for a signed integer (`Value::Int`); `{"u": n}` for an unsigned one;
/// - a string for bytes that are UTF-8 text (DECIMALs and character keys come as such bytes),
///   `{"x": "<hex>"}` for other bytes;
/// - `{"f": "<text>"}` / `{"d": "<text>"}` for FLOAT / DOUBLE (Rust's shortest exact text);
/// - `{"date": [y, m, d, h, mi, s, µs]}`, `{"time": [negative, days, h, mi, s, µs]}`.
pub fn key_to_text(key: &MyKey) -> String {
    let parts: Vec<Json> = key
        .0
        .iter()
        .map(|v| match v {
            Value::NULL => Json::Null,
            Value::Int(i) => json!(i),
            Value::UInt(u) => json!({ "u": u }),
            Value::Float(f) => json!({ "f": f.to_string() }),
            Value::Double(d) => json!({ "d": d.to_string() }),
            Value::Bytes(b) => match std::str::from_utf8(b) {
                Ok(s) => json!(s),
                Err(_) => json!({ "x": b.iter().map(|x| format!("{x:02x}")).collect::<String>() }),
            },
            Value::Date(y, mo, d, h, mi, s, us) => json!({ "date": [y, mo, d, h, mi, s, us] }),
            Value::Time(neg, days, h, mi, s, us) => json!({ "time": [neg, days, h, mi, s, us] }),
        })
        .collect();
    Json::Array(parts).to_string()
}

/// The key [`key_to_text`] wrote, for `plan`'s chunk key. Errors: [`Error::Refused`] for text it
/// did not write, or a key whose column count is not the chunk key's.
pub fn key_from_text(plan: &Plan, text: &str) -> Result<MyKey> {
    let bad = |why: String| {
        Error::refused(format!(
            "the checkpoint's key {text:?} cannot be read ({why}); run `shadowswap cleanup` for {} and start again",
            plan.names.table
        ))
    };
    let parsed: Json = serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
    let Json::Array(items) = parsed else { return Err(bad("not a JSON array".into())) };
    if items.len() != plan.key.columns.len() {
        return Err(bad(format!("{} values for a chunk key of {} columns", items.len(), plan.key.columns.len())));
    }
    items.iter().map(value_from_json).collect::<std::result::Result<Vec<_>, String>>().map(MyKey).map_err(bad)
}

/// One key value of [`key_to_text`]'s form.
fn value_from_json(j: &Json) -> std::result::Result<Value, String> {
    let int = |j: &Json| j.as_u64().ok_or_else(|| format!("{j} is not a whole number"));
    let small = |j: &Json, max: u64| int(j).and_then(|n| if n <= max { Ok(n) } else { Err(format!("{n} is out of range")) });
    let parts = |j: &Json, n: usize| match j.as_array() {
        Some(a) if a.len() == n => Ok(a.clone()),
        _ => Err(format!("{j} is not an array of {n}")),
    };
    Ok(match j {
        Json::Null => Value::NULL,
        Json::Number(n) => Value::Int(n.as_i64().ok_or_else(|| format!("{n} is not a signed 64-bit integer"))?),
        Json::String(s) => Value::Bytes(s.as_bytes().to_vec()),
        Json::Object(o) if o.len() == 1 => {
            let (kind, v) = o.iter().next().expect("one entry");
            match kind.as_str() {
                "u" => Value::UInt(int(v)?),
                "f" => Value::Float(v.as_str().and_then(|s| s.parse().ok()).ok_or_else(|| format!("{v} is not a FLOAT"))?),
                "d" => Value::Double(v.as_str().and_then(|s| s.parse().ok()).ok_or_else(|| format!("{v} is not a DOUBLE"))?),
                "x" => {
                    let hex = v.as_str().ok_or_else(|| format!("{v} is not hex text"))?;
                    if hex.len() % 2 != 0 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                        return Err(format!("{hex:?} is not hex"));
                    }
                    Value::Bytes(
                        (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex")).collect(),
                    )
                }
                "date" => {
                    let a = parts(v, 7)?;
                    Value::Date(
                        small(&a[0], 9999)? as u16,
                        small(&a[1], 12)? as u8,
                        small(&a[2], 31)? as u8,
                        small(&a[3], 23)? as u8,
                        small(&a[4], 59)? as u8,
                        small(&a[5], 59)? as u8,
                        small(&a[6], 999_999)? as u32,
                    )
                }
                "time" => {
                    let a = parts(v, 6)?;
                    let neg = a[0].as_bool().ok_or_else(|| format!("{} is not a sign", a[0]))?;
                    Value::Time(
                        neg,
                        small(&a[1], 34)? as u32,
                        small(&a[2], 23)? as u8,
                        small(&a[3], 59)? as u8,
                        small(&a[4], 59)? as u8,
                        small(&a[5], 999_999)? as u32,
                    )
                }
                other => return Err(format!("unknown value kind {other:?}")),
            }
        }
        other => return Err(format!("{other} is not a key value")),
    })
}

#[cfg(test)]
mod tests {
    use shadowswap_engine::model::{Column, TableRef};

    use super::*;
    use crate::sql::test_plans::build;

    fn plan_with_key(n: usize) -> Plan {
        let cols: Vec<Column> = (0..n).map(|i| Column::new(format!("k{i}"), "varbinary(10)")).collect();
        let key: Vec<String> = cols.iter().map(|c| c.name.clone()).collect();
        let key: Vec<&str> = key.iter().map(String::as_str).collect();
        build(TableRef::new("d", "t"), cols.clone(), &key, cols, "FORCE")
    }

    fn round_trip(values: Vec<Value>) -> String {
        let key = MyKey(values);
        let text = key_to_text(&key);
        let back = key_from_text(&plan_with_key(key.0.len()), &text).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(back, key, "{text}");
        text
    }

    #[test]
    fn keys_round_trip_exactly_with_their_types() {
        assert_eq!(round_trip(vec![Value::Int(-42)]), "[-42]");
        assert_eq!(round_trip(vec![Value::Int(i64::MIN)]), format!("[{}]", i64::MIN));
        assert_eq!(round_trip(vec![Value::UInt(u64::MAX)]), format!("[{{\"u\":{}}}]", u64::MAX));
        // Text with quotes, backslashes, control characters and non-ASCII.
        assert_eq!(round_trip(vec![Value::Bytes(b"it's a \"k\" \\ x".to_vec())]), r#"["it's a \"k\" \\ x"]"#);
        round_trip(vec![Value::Bytes("tab\tnl\n nul\0 ü €".as_bytes().to_vec())]);
        round_trip(vec![Value::Bytes(Vec::new())]);
        // Binary keys that are not UTF-8.
        assert_eq!(round_trip(vec![Value::Bytes(vec![0xff, 0x00, 0x80, 0x27])]), r#"[{"x":"ff008027"}]"#);
        // Decimals come as text bytes, exactly.
        assert_eq!(
            round_trip(vec![Value::Bytes(b"-12345678901234567890.000000001".to_vec())]),
            r#"["-12345678901234567890.000000001"]"#
        );
        // Dates, datetimes with microseconds, the zero date, times (negative, over a day).
        round_trip(vec![Value::Date(2024, 2, 29, 23, 59, 58, 999_999)]);
        round_trip(vec![Value::Date(0, 0, 0, 0, 0, 0, 0)]);
        round_trip(vec![Value::Time(true, 34, 22, 59, 59, 1)]);
        round_trip(vec![Value::Float(0.1), Value::Double(-1.0e-300), Value::Double(0.30000000000000004)]);
        // Multi-column keys, a NULL among them.
        assert_eq!(
            round_trip(vec![Value::Bytes(b"a".to_vec()), Value::Int(7), Value::UInt(3), Value::NULL]),
            r#"["a",7,{"u":3},null]"#
        );
    }

    #[test]
    fn foreign_text_and_wrong_column_counts_are_refused() {
        let p = plan_with_key(2);
        for text in [
            "(1, 2)",
            "",
            "[1]",
            "[1,2,3]",
            r#"{"a":1}"#,
            r#"[1, {"z": 1}]"#,
            r#"[1, {"x": "abc"}]"#,
            "[1, 1.5]",
            r#"[1, {"date": [1,2]}]"#,
            r#"[1, {"u": -1}]"#,
        ] {
            let e = key_from_text(&p, text).expect_err(text).to_string();
            assert!(e.contains("cannot be read") && e.contains("shadowswap cleanup"), "{text}: {e}");
        }
        let e = key_from_text(&p, "[1]").unwrap_err().to_string();
        assert!(e.contains("1 values for a chunk key of 2 columns"), "{e}");
    }

    #[test]
    fn the_expected_trigger_bodies_are_the_created_ones() {
        let p = plan_with_key(1);
        let bodies = expected_trigger_bodies(&p);
        assert_eq!(bodies.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(), ["_t_ssw_del", "_t_ssw_ins", "_t_ssw_upd"]);
        assert!(bodies[0].1.starts_with("BEGIN\n  INSERT IGNORE INTO `d`.`_t_new`"), "{}", bodies[0].1);
        assert!(bodies[0].1.ends_with("DELETE FROM `d`.`_t_new` WHERE `k0` = OLD.`k0`;\nEND"), "{}", bodies[0].1);
        assert!(bodies[1].1.starts_with("BEGIN\n  INSERT IGNORE INTO `d`.`_t_new`"), "{}", bodies[1].1);
    }
}
