//! Checkpoint and resume (see `shadowswap_engine::checkpoint`): the checkpoint table's one row
//! written (`write`) and read (`read`), the chunk key's exact text form (`key_to_text`,
//! `key_from_text`), and the checks before a resume (`verify_resumable`). Each chunk's
//! advance of the checkpoint runs in the chunk's own transaction, in [`crate::copy`]. The
//! statements are [`crate::sql::checkpoint`]'s.
//!
//! What a resumed process needs for the cut-over's own checks
//! (`crate::cutover::verify_unchanged`) is read from the server, not kept in memory: the
//! table's columns and indexes (the plan, made again, whose fingerprint the engine compares with
//! the checkpoint's) and the capture triggers (checked here). What the install saw is persisted
//! in the checkpoint's `capture_identity` (the table's and the shadow's OIDs, written by
//! [`crate::capture`] in the install's transaction), so a table or shadow dropped and created
//! again while no run was active is refused. A `TRUNCATE` while no shadowswap runs is captured
//! like any other write (the truncate trigger empties the shadow too).

use shadowswap_engine::checkpoint::Checkpoint;
use shadowswap_engine::error::Result;
use shadowswap_engine::model::Index;
use shadowswap_engine::names::Names;
use shadowswap_engine::phase::Phase;
use shadowswap_engine::plan::Plan;
use shadowswap_engine::Error;
use tokio_postgres::types::ToSql;
use tokio_postgres::GenericClient;

use crate::sql::capture::{capture_sources, capture_triggers, CAPTURE_DEFINITIONS, CAPTURE_TRIGGER_TYPES, FUNCTION_SEARCH_PATH};
use crate::sql::checkpoint as q;
use crate::sql::Qualified;
use crate::{errors, inspect, PgKey, Postgres};

/// Makes the checkpoint row of `names.table` `ckpt` (every field; `capture_identity` and
/// `revert_broken` keep their values), creating the table first when it is missing.
/// Autocommitted.
pub(crate) async fn write(pg: &Postgres, names: &Names, ckpt: &Checkpoint) -> Result<()> {
    let ctx = "writing the checkpoint";
    let c = pg.client().await?;
    let int = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    let (phase, copied, estimated, chunk) =
        (ckpt.phase.to_string(), int(ckpt.rows_copied), int(ckpt.rows_estimated), int(ckpt.chunk_rows));
    let p: [&(dyn ToSql + Sync); 13] = [
        &ckpt.table,
        &ckpt.alter,
        &ckpt.fingerprint,
        &ckpt.version,
        &ckpt.dialect,
        &phase,
        &ckpt.low_watermark,
        &ckpt.high_watermark,
        &copied,
        &estimated,
        &chunk,
        &ckpt.started_at,
        &ckpt.revert_until,
    ];
    let upsert = q::upsert(&names.checkpoint);
    match c.execute(&upsert, &p).await {
        Ok(_) => Ok(()),
        // Created on first use only: `CREATE TABLE IF NOT EXISTS` of an existing table is a
        // NOTICE on every phase change.
        Err(e) if errors::is_undefined_table(&e) => {
            c.batch_execute(&q::create(&names.checkpoint)).await.map_err(|e| errors::db(ctx, e))?;
            c.execute(&upsert, &p).await.map(|_| ()).map_err(|e| errors::db(ctx, e))
        }
        Err(e) => Err(errors::db(ctx, e)),
    }
}

/// The checkpoint row of `names.table`; `None` without the table or its row.
/// Errors: [`Error::Refused`] when the table exists but is not a checkpoint shadowswap wrote.
pub(crate) async fn read(pg: &Postgres, names: &Names) -> Result<Option<Checkpoint>> {
    let c = pg.client().await?;
    let row = match c.query_opt(&q::select(&names.checkpoint), &[]).await {
        Ok(row) => row,
        Err(e) if errors::is_missing_relation(&e) => return Ok(None),
        Err(e) => {
            let err = errors::db("reading the checkpoint", e);
            if err.is_connection() {
                return Err(err);
            }
            return Err(not_a_checkpoint(names, &err.to_string()));
        }
    };
    let Some(r) = row else { return Ok(None) };
    let phase: String = r.get(5);
    let Some(phase) = Phase::parse(&phase) else {
        return Err(not_a_checkpoint(names, &format!("unknown phase {phase:?}")));
    };
    let count = |i: usize| r.get::<_, i64>(i).max(0) as u64;
    Ok(Some(Checkpoint {
        table: r.get(0),
        alter: r.get(1),
        fingerprint: r.get(2),
        version: r.get(3),
        dialect: r.get(4),
        phase,
        low_watermark: r.get(6),
        high_watermark: r.get(7),
        rows_copied: count(8),
        rows_estimated: count(9),
        chunk_rows: count(10),
        started_at: r.get(11),
        revert_until: r.get(12),
    }))
}

/// The capture's identity now ([`q::capture_identity`]: the table's and the shadow's OIDs).
pub(crate) async fn capture_identity_now(c: &impl GenericClient, plan: &Plan) -> Result<String> {
    let n = &plan.names;
    let r = c
        .query_one(q::RELATION_OIDS, &[&Qualified(&n.table).to_string(), &Qualified(&n.shadow).to_string()])
        .await
        .map_err(|e| errors::db("reading the capture's identity", e))?;
    Ok(q::capture_identity(r.get(0), r.get(1)))
}

fn not_a_checkpoint(names: &Names, why: &str) -> Error {
    Error::refused(format!(
        "{} exists but cannot be read as shadowswap's checkpoint ({why}); run `shadowswap cleanup` for {} or drop it",
        names.checkpoint, names.table
    ))
}

/// The key as a JSON array of its columns' text forms (each value exactly as the server printed
/// it; PostgreSQL text has no NUL, and JSON escapes every other character that needs it).
pub fn key_to_text(key: &PgKey) -> String {
    serde_json::to_string(&key.0).expect("a list of strings is always JSON")
}

/// The key [`key_to_text`] wrote, for `plan`'s chunk key.
/// Errors: [`Error::Refused`] for text that is not a JSON array of strings, or one whose length
/// differs from the chunk key's column count.
pub fn key_from_text(plan: &Plan, text: &str) -> Result<PgKey> {
    let refuse = |why: String| {
        Error::refused(format!(
            "the checkpoint of {} holds the key {text:?}, which {why}; run `shadowswap cleanup` for this table and start again",
            plan.names.table
        ))
    };
    let values: Vec<String> =
        serde_json::from_str(text).map_err(|e| refuse(format!("is not a key this shadowswap wrote ({e})")))?;
    if values.len() != plan.key.columns.len() {
        return Err(refuse(format!(
            "has {} column(s) where the chunk key {} has {}",
            values.len(),
            plan.key.index,
            plan.key.columns.len()
        )));
    }
    Ok(PgKey(values))
}

/// What a resume checks (see `Dialect::verify_resumable`): the table and the shadow are the
/// ones the capture was installed on (their OIDs, recorded in the checkpoint's
/// `capture_identity` by the install: [`q::capture_identity`]); the shadow exists with the columns
/// and indexes of the altered table (`plan.altered`, indexes compared without their names, which
/// differ between the shadow and the trial copy), and the four capture triggers exist on the
/// table exactly as [`crate::sql::capture::capture`] creates them for this plan (event and
/// level, `ENABLE ALWAYS`, no condition; their functions in the table's schema, `SECURITY
/// DEFINER` with the fixed `search_path`, and the same source text). Errors: [`Error::Refused`]
/// naming the first thing missing or changed.
pub(crate) async fn verify_resumable(pg: &Postgres, plan: &Plan) -> Result<()> {
    let n = &plan.names;
    let ctx = "checking what the unfinished run left";
    let refuse = |what: String| {
        Error::refused(format!(
            "cannot resume the unfinished run on {}: {what}; run `shadowswap cleanup` for this table and start again",
            n.table
        ))
    };
    if !inspect::table_exists(pg, &n.shadow).await? {
        return Err(refuse(format!("its shadow table {} is missing", n.shadow)));
    }
    let c = pg.client().await?;
    // The table and the shadow are the ones the capture was installed on.
    let recorded: Option<String> = match c.query_opt(&q::select(&n.checkpoint), &[]).await {
        Ok(row) => row.and_then(|r| r.get(13)),
        Err(e) => return Err(errors::db(ctx, e)),
    };
    let Some(recorded) = recorded else {
        return Err(refuse(format!("its checkpoint {} records no capture identity", n.checkpoint)));
    };
    let now = capture_identity_now(&**c, plan).await?;
    if recorded != now {
        return Err(refuse(format!(
            "{} or its shadow {} was dropped and created again since the capture was installed ({recorded}; now {now}), \
             so the shadow may have missed writes",
            n.table, n.shadow
        )));
    }
    let shadow = inspect::shape_on(&**c, &Qualified(&n.shadow).to_string()).await.map_err(|e| errors::db(ctx, e))?;
    if shadow.columns != plan.altered.columns || index_shapes(&shadow.indexes) != index_shapes(&plan.altered.indexes) {
        return Err(refuse(format!(
            "its shadow table {} was changed (its columns or indexes are not what the ALTER gives)",
            n.shadow
        )));
    }
    let always = inspect::always_identity(&**c, &n.shadow).await.map_err(|e| errors::db(ctx, e))?;
    let key_eq = inspect::key_equality(&**c, plan).await?;
    let names: Vec<String> = capture_triggers(n).into();
    let rows = c.query(CAPTURE_DEFINITIONS, &[&Qualified(&n.table).to_string(), &names]).await.map_err(|e| errors::db(ctx, e))?;
    let config = [format!("search_path={FUNCTION_SEARCH_PATH}")];
    for ((name, source), tgtype) in capture_sources(plan, &always, &key_eq).iter().zip(CAPTURE_TRIGGER_TYPES) {
        let Some(r) = rows.iter().find(|r| r.get::<_, String>(0) == *name) else {
            return Err(refuse(format!("its capture trigger {name} on {} is missing", n.table)));
        };
        let ok = r.get::<_, i32>(1) == tgtype
            && r.get::<_, String>(2) == "A"
            && r.get::<_, bool>(3)
            && r.get::<_, String>(4) == n.table.schema
            && r.get::<_, String>(5) == *name
            && r.get::<_, String>(6) == *source
            && r.get::<_, bool>(7)
            && r.get::<_, Vec<String>>(8) == config;
        if !ok {
            return Err(refuse(format!(
                "its capture trigger {name} on {} was disabled or replaced (it is not the one this ALTER installs)",
                n.table
            )));
        }
    }
    Ok(())
}

/// Indexes without their names, in a stable order: what must agree between the shadow and the
/// trial copy the plan's target shape was read from.
fn index_shapes(indexes: &[Index]) -> Vec<(bool, bool, bool, Vec<String>)> {
    let mut v: Vec<_> = indexes.iter().map(|i| (i.primary, i.unique, i.partial, i.columns.clone())).collect();
    v.sort();
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{col, plan_for};
    use shadowswap_engine::model::Index;

    #[test]
    fn keys_round_trip_exactly() {
        let plan = plan_for("t", vec![col("id", "integer"), col("v", "text")], "ADD COLUMN c int");
        for v in [
            "0",
            "-2147483648",
            "it's a \"quoted\" \\ back\\slash",
            "\\x00ff10",
            "2024-02-29 23:59:59.999999+00",
            "1 day 02:00:00",
            "12345678901234567890.000000000000000001",
            "NaN",
            "ünï\u{1F600}code\ttab\nnewline\u{7f}",
            "",
            "[\"looks\",\"like json\"]",
        ] {
            let key = PgKey(vec![v.to_string()]);
            let text = key_to_text(&key);
            assert_eq!(key_from_text(&plan, &text).unwrap(), key, "{text}");
        }
    }

    #[test]
    fn multi_column_keys_round_trip_and_foreign_text_is_refused() {
        let mut plan = plan_for("t", vec![col("a", "integer"), col("b", "date"), col("id", "integer")], "ADD COLUMN c int");
        let two = PgKey(vec!["2024-01-01".into(), "a,b".into()]);
        let text = key_to_text(&two);
        assert_eq!(text, r#"["2024-01-01","a,b"]"#);
        // The plan's key has one column: a two-column key is refused.
        let e = key_from_text(&plan, &text).unwrap_err().to_string();
        assert!(e.contains("has 2 column(s)") && e.contains("shadowswap cleanup"), "{e}");
        plan.key.columns.push(col("b", "date"));
        assert_eq!(key_from_text(&plan, &text).unwrap(), two);
        for bad in ["(1)", "[1, 2]", "", "E'1'", "[\"a\"", "{\"a\": 1}"] {
            let e = key_from_text(&plan, bad).unwrap_err().to_string();
            assert!(e.contains("not a key this shadowswap wrote") || e.contains("column(s)"), "{bad}: {e}");
        }
    }

    #[test]
    fn index_names_do_not_matter_but_everything_else_does() {
        let i = |name: &str, cols: &[&str], unique: bool| Index {
            name: name.into(),
            columns: cols.iter().map(|c| c.to_string()).collect(),
            unique,
            primary: false,
            partial: false,
        };
        let a = [i("_t_new_pkey", &["id"], true), i("_t_new_v_idx", &["v"], false)];
        let b = [i("t_v_idx", &["v"], false), i("_t_trial_pkey", &["id"], true)];
        assert_eq!(index_shapes(&a), index_shapes(&b));
        assert_ne!(index_shapes(&a), index_shapes(&[i("x", &["id"], true), i("y", &["v"], true)]));
    }
}
