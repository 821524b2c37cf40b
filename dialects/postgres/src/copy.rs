//! The backfill and the checksum: the key range (low key and high watermark), each chunk's
//! end, the copy of one chunk (as the table's owner, under `ROW SHARE` on the table, advancing
//! the checkpoint in the same transaction), and the checksum of one chunk on both sides from
//! one snapshot. The statements are [`crate::sql::copy`]'s (and the checkpoint's advance,
//! [`crate::sql::checkpoint`]'s).

use std::time::Duration;

use shadowswap_engine::checkpoint::ChunkMark;
use shadowswap_engine::dialect::ChunkChecksum;
use shadowswap_engine::error::Result;
use shadowswap_engine::plan::Plan;
use shadowswap_engine::Error;
use tokio_postgres::types::ToSql;
use tokio_postgres::SimpleQueryMessage;

use crate::sql::checkpoint as qc;
use crate::sql::copy as q;
use crate::sql::Qualified;
use crate::{errors, generated_names, inspect, owner, PgKey, Postgres};

fn params(v: &[String]) -> Vec<&(dyn ToSql + Sync)> {
    v.iter().map(|s| s as &(dyn ToSql + Sync)).collect()
}

/// The one row of `query` (with text parameters) as a key, or `None` without a row.
async fn key_query(pg: &Postgres, context: &str, query: String, p: &[String]) -> Result<Option<PgKey>> {
    let c = pg.client().await?;
    let row = c.query_opt(&query, &params(p)).await.map_err(|e| errors::db(context, e))?;
    Ok(row.map(|r| PgKey((0..r.len()).map(|i| r.get::<_, String>(i)).collect())))
}

/// Lowest and highest chunk-key value in the table now (`None` when empty).
pub(crate) async fn key_range(pg: &Postgres, plan: &Plan) -> Result<Option<(PgKey, PgKey)>> {
    let low = key_query(pg, "reading the lowest key", q::key_edge(plan, false), &[]).await?;
    let high = key_query(pg, "reading the high watermark", q::key_edge(plan, true), &[]).await?;
    Ok(low.zip(high))
}

/// The key `rows` rows after `after`, or `high` when fewer remain.
pub(crate) async fn chunk_end(pg: &Postgres, plan: &Plan, after: Option<&PgKey>, high: &PgKey, rows: u64) -> Result<PgKey> {
    let (where_, p) = q::chunk_range(plan, after.map(|k| &k.0[..]), &high.0);
    let end = key_query(pg, "finding the chunk's end", q::chunk_end(plan, &where_, rows), &p).await?;
    Ok(end.unwrap_or_else(|| high.clone()))
}

/// Copies the rows with key in `(after, upto]` into the shadow in one transaction, as the
/// table's owner (the insert evaluates the shadow's CHECKs, defaults and index expressions),
/// and in the same transaction, back in the session's own role, advances the checkpoint by
/// `mark` and the rows copied ([`crate::sql::checkpoint::chunk_end`]): both commit or neither.
/// Errors: [`Error::DuplicateKey`] (a new unique key rejects a row; named as a plain ALTER
/// would name it), [`Error::Refused`] (the altered table rejects a row's values; the checkpoint
/// row is missing), [`Error::Database`] (the checkpoint table is missing, among others).
pub(crate) async fn copy_chunk(
    pg: &Postgres,
    plan: &Plan,
    after: Option<&PgKey>,
    upto: &PgKey,
    lock_wait: Duration,
    mark: &ChunkMark,
) -> Result<u64> {
    let ctx = "copying a chunk";
    let (where_, p) = q::chunk_range(plan, after.map(|k| &k.0[..]), &upto.0);
    let mut c = pg.client().await?;
    let tx = c.transaction().await.map_err(|e| errors::db(ctx, e))?;
    // One round trip: the lock timeout, then the table's lock (see `sql::copy::lock_for_copy`).
    tx.batch_execute(&q::begin_chunk(&plan.names.table, lock_wait)).await.map_err(|e| errors::db(ctx, e))?;
    let always = inspect::always_identity(&*tx, &plan.names.shadow).await.map_err(|e| errors::db(ctx, e))?;
    let owner = owner::enter(&tx, &plan.names.table).await.map_err(|e| errors::db(ctx, e))?;
    let rows = match owner::exec(&tx, owner, &q::copy_chunk(plan, &where_, &always), &p, None).await {
        Ok(n) => n,
        Err(e) => {
            if let Some((raw, value)) = errors::unique_violation(&e) {
                drop(tx);
                return Err(Error::DuplicateKey {
                    key: final_key_name(pg, plan, &raw).await,
                    table: plan.names.table.clone(),
                    value,
                });
            }
            return Err(errors::rejected_row(&plan.names.table, &e).unwrap_or_else(|| errors::db(ctx, e)));
        }
    };
    // Back to the session's role (the owner need not have any privilege on the checkpoint
    // table) and the checkpoint's advance, in one round trip, before the commit.
    let advance = qc::chunk_end(&plan.names.checkpoint, &mark.low_watermark, mark.chunk_rows, rows);
    let done = tx.simple_query(&advance).await.map_err(|e| errors::db("recording the chunk in the checkpoint", e))?;
    let updated = done.iter().rev().find_map(|m| match m {
        SimpleQueryMessage::CommandComplete(n) => Some(*n),
        _ => None,
    });
    if updated != Some(1) {
        drop(tx);
        return Err(Error::refused(format!(
            "the checkpoint row of {} is missing ({} has no row), so the copy cannot record its progress; \
             run `shadowswap cleanup` for this table and start again",
            plan.names.table, plan.names.checkpoint
        )));
    }
    tx.commit().await.map_err(|e| errors::db(ctx, e))?;
    Ok(rows)
}

/// The name a unique key the copy found violated (`raw`, a constraint of the shadow) has for
/// the user: the name a plain ALTER on the table gives it when PostgreSQL generated it for the
/// shadow (`_t_new_c2_key` → `t_c2_key`), else `raw`. Best effort: `raw` when the catalog
/// cannot be read.
async fn final_key_name(pg: &Postgres, plan: &Plan, raw: &str) -> String {
    let n = &plan.names;
    let Ok(c) = pg.client().await else { return raw.to_string() };
    let shadow = Qualified(&n.shadow).to_string();
    match generated_names::final_constraint_names(&**c, &shadow, &n.shadow.name, &n.table.name, &[], Some(raw)).await {
        Ok(found) => found.into_iter().next().map_or_else(|| raw.to_string(), |(_, chosen)| chosen),
        Err(_) => raw.to_string(),
    }
}

/// Checksums the rows with key in `(after, upto]` of the table and of the shadow, both from one
/// REPEATABLE READ, read-only snapshot. Returns `(original, shadow)`.
pub(crate) async fn checksum_chunk(
    pg: &Postgres,
    plan: &Plan,
    after: Option<&PgKey>,
    upto: Option<&PgKey>,
) -> Result<(ChunkChecksum, ChunkChecksum)> {
    let ctx = "checksumming a chunk";
    let (q_orig, q_shadow, p) = q::checksum_pair(plan, after.map(|k| &k.0[..]), upto.map(|k| &k.0[..]));
    let mut c = pg.client().await?;
    let tx = c
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await
        .map_err(|e| errors::db(ctx, e))?;
    let a = tx.query_one(&q_orig, &params(&p)).await.map_err(|e| errors::db(ctx, e))?;
    let b = tx.query_one(&q_shadow, &params(&p)).await.map_err(|e| errors::db(ctx, e))?;
    tx.commit().await.map_err(|e| errors::db(ctx, e))?;
    let sum = |r: &tokio_postgres::Row| ChunkChecksum { rows: r.get::<_, i64>(0) as u64, hash: r.get::<_, i64>(1) as u64 };
    Ok((sum(&a), sum(&b)))
}
