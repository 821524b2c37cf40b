//! The staged backfill on PostgreSQL ([`shadowswap_engine::staged::backfill`]): one chunk's
//! `UPDATE` and the checkpoint's advance in one transaction, the counts, the server's trial of
//! the fragments. The statements are [`crate::sql::staged_backfill`]'s. The UPDATE runs as the
//! session's own role (what the operator could run in psql), not as the table's owner.

use std::time::Duration;

use shadowswap_engine::checkpoint::ChunkMark;
use shadowswap_engine::dialect::ChunkCopied;
use shadowswap_engine::error::{ErrorClass, Result};
use shadowswap_engine::plan::Plan;
use shadowswap_engine::staged::backfill::BackfillSpec;
use shadowswap_engine::Error;
use tokio_postgres::types::ToSql;

use crate::sql::checkpoint as qc;
use crate::sql::connect::set_lock_timeout;
use crate::sql::copy::chunk_range;
use crate::sql::staged_backfill as q;
use crate::{errors, PgKey, Postgres};

/// `EXPLAIN UPDATE …` ([`q::check`]) in a transaction rolled back: the server parses, analyses
/// and plans the whole UPDATE without running it. Errors: [`Error::Refused`] with the server's
/// message when it rejects the fragments; connection errors as they are.
pub(crate) async fn check(pg: &Postgres, plan: &Plan, spec: &BackfillSpec) -> Result<()> {
    let ctx = "checking --set and --where";
    let mut c = pg.client().await?;
    let tx = c.transaction().await.map_err(|e| errors::db(ctx, e))?;
    let result = tx.simple_query(&q::check(plan, spec)).await;
    let _ = tx.rollback().await;
    match result {
        Ok(_) => Ok(()),
        Err(e) if e.as_db_error().is_some() && errors::class(errors::state(&e)) != ErrorClass::Connection => {
            Err(Error::refused(format!(
                "the server rejects --set {:?} / --where {:?} on {}: {}; fix the fragment",
                spec.set,
                spec.where_,
                plan.names.table,
                errors::message(&e)
            )))
        }
        Err(e) => Err(errors::db(ctx, e)),
    }
}

/// Rows matching `--where`, counting at most `limit` ([`q::count`]).
pub(crate) async fn count(pg: &Postgres, plan: &Plan, spec: &BackfillSpec, limit: Option<u64>) -> Result<u64> {
    let c = pg.client().await?;
    let row =
        c.query_one(&q::count(plan, spec, limit), &[]).await.map_err(|e| errors::db("counting rows matching --where", e))?;
    Ok(u64::try_from(row.get::<_, i64>(0)).unwrap_or(0))
}

/// One chunk in one transaction: the lock timeout `lock_wait` (row locks included), the UPDATE
/// of the rows in `(after, upto]` still matching `--where` ([`q::update_chunk`]), then the
/// checkpoint's advance by `mark` and the rows updated ([`qc::advance`]). Returns the rows
/// updated. Errors: lock timeouts and deadlocks (retryable); a row the table rejects (a CHECK,
/// a too-long value) as a fatal database error quoting the server; [`Error::Refused`] when the
/// checkpoint row is missing.
pub(crate) async fn chunk(
    pg: &Postgres,
    plan: &Plan,
    spec: &BackfillSpec,
    after: Option<&PgKey>,
    upto: &PgKey,
    lock_wait: Duration,
    mark: &ChunkMark,
) -> Result<ChunkCopied> {
    let ctx = "updating a chunk";
    let (range, p) = chunk_range(plan, after.map(|k| &k.0[..]), &upto.0);
    let params: Vec<&(dyn ToSql + Sync)> = p.iter().map(|s| s as &(dyn ToSql + Sync)).collect();
    let mut c = pg.client().await?;
    let tx = c.transaction().await.map_err(|e| errors::db(ctx, e))?;
    tx.batch_execute(&set_lock_timeout(lock_wait)).await.map_err(|e| errors::db(ctx, e))?;
    let rows = tx.execute(&q::update_chunk(plan, spec, &range), &params).await.map_err(|e| errors::db(ctx, e))?;
    let advanced = tx
        .execute(&qc::advance(&plan.names.checkpoint, &mark.low_watermark, mark.chunk_rows, rows), &[])
        .await
        .map_err(|e| errors::db("recording the chunk in the checkpoint", e))?;
    if advanced != 1 {
        drop(tx);
        return Err(Error::refused(format!(
            "the checkpoint row of {} is missing ({} has no row), so the backfill cannot record its progress; \
             run `shadowswap cleanup` for this table and run the backfill again",
            plan.names.table, plan.names.checkpoint
        )));
    }
    let waiters = crate::copy::count_waiters(&tx).await?;
    tx.commit().await.map_err(|e| errors::db(ctx, e))?;
    Ok(ChunkCopied { rows, waiters, written_ahead: false })
}
