//! The backfill and the checksum: the key range (low key and high watermark), a chunk's end,
//! the copy of one chunk in one short transaction, and the checksum of one chunk of both tables
//! from one snapshot. The statements are [`crate::sql::copy`]'s.

use std::time::Duration;

use mysql_async::prelude::Queryable;
use mysql_async::{Row, TxOpts, Value};
use shadowswap_engine::checkpoint::ChunkMark;
use shadowswap_engine::dialect::{ChunkChecksum, ChunkCopied};
use shadowswap_engine::error::Result;
use shadowswap_engine::plan::Plan;

use crate::connect::whole_seconds;
use crate::{checkpoint, errors, sql, MyKey, MySql};

/// Lowest and highest chunk-key value in the original table now (`None` when empty); the
/// highest is the backfill's high watermark.
pub(crate) async fn key_range(my: &MySql, plan: &Plan) -> Result<Option<(MyKey, MyKey)>> {
    let low = key_query(my, "reading the lowest key", sql::copy::key_edge(plan, false), vec![]).await?;
    let high = key_query(my, "reading the high watermark", sql::copy::key_edge(plan, true), vec![]).await?;
    Ok(low.zip(high))
}

/// The key `rows` rows after `after`, or `high` when fewer remain at or below it.
pub(crate) async fn chunk_end(my: &MySql, plan: &Plan, after: Option<&MyKey>, high: &MyKey, rows: u64) -> Result<MyKey> {
    let (where_, params) = where_range(plan, false, after, high);
    let end = key_query(my, "finding the chunk's end", sql::copy::chunk_end(plan, &where_, rows), params).await?;
    Ok(end.unwrap_or_else(|| high.clone()))
}

/// Copy the rows with key in `(after, upto]` into the shadow in one transaction: lock the
/// chunk's rows in the original (shared), clear the chunk's range in the shadow if the capture
/// wrote rows there ahead of the copy, copy, and advance the checkpoint by `mark` and the rows
/// copied ([`sql::checkpoint::advance_checkpoint`]), so the checkpoint commits or rolls back
/// with the chunk, and count the row lock waiters just before the commit
/// ([`sql::copy::ROW_LOCK_WAITERS`], see [`waiters`]). Row lock waits last at most `lock_wait`, rounded up to whole seconds; zero
/// does not wait at all (`innodb_lock_wait_timeout = 0`: a row another transaction holds fails
/// the statement at once with error 1205, a lock timeout). Returns the rows copied, the
/// waiters, and whether the shadow had rows written ahead of the copy, in the chunk's range or
/// beyond it (a second look, only when the range had none). Errors: see
/// [`errors::copy_failed`].
///
/// Why the range check is exact: after the shared next-key locks of the first statement, no
/// transaction can insert, update or delete a row of the range in the original, and every one
/// that had (and so wrote the shadow through its capture trigger) has committed, or the lock
/// would have waited for it. The check is the transaction's first consistent read, so its
/// snapshot is taken after the locks and sees every such capture write.
pub(crate) async fn copy_chunk(
    my: &MySql,
    plan: &Plan,
    after: Option<&MyKey>,
    upto: &MyKey,
    lock_wait: Duration,
    mark: &ChunkMark,
) -> Result<ChunkCopied> {
    let ctx = "copying a chunk";
    let (where_orig, p_orig) = where_range(plan, false, after, upto);
    let (where_shadow, p_shadow) = where_range(plan, true, after, upto);
    let mut c = my.conn().await?;
    let wait = if lock_wait.is_zero() { 0 } else { whole_seconds(lock_wait) };
    c.query_drop(sql::copy::innodb_lock_wait_timeout(wait)).await.map_err(|e| errors::db(ctx, e))?;
    let mut tx = c.start_transaction(TxOpts::default()).await.map_err(|e| errors::db(ctx, e))?;
    let _: Option<u64> =
        tx.exec_first(sql::copy::lock_chunk(plan, &where_orig), p_orig.clone()).await.map_err(|e| errors::db(ctx, e))?;
    // Rows the capture wrote ahead into this range are cleared; most chunks have none, and a
    // DELETE over an empty range would still lock the shadow's gap there (next-key locks), the
    // gap the capture triggers of application writes insert into.
    let ahead: Option<u8> = tx
        .exec_first(sql::copy::shadow_chunk_has_rows(plan, &where_shadow), p_shadow.clone())
        .await
        .map_err(|e| errors::db(ctx, e))?;
    let written_ahead = if ahead.is_some() {
        tx.exec_drop(sql::copy::clear_shadow_chunk(plan, &where_shadow), p_shadow).await.map_err(|e| errors::db(ctx, e))?;
        true
    } else {
        // Anywhere beyond the chunk: an application's writes need not fall where the copy is
        // (sysbench's land in the middle of the key range).
        let (beyond, p_beyond) = where_beyond(plan, upto);
        let found: Option<u8> =
            tx.exec_first(sql::copy::shadow_chunk_has_rows(plan, &beyond), p_beyond).await.map_err(|e| errors::db(ctx, e))?;
        found.is_some()
    };
    tx.exec_drop(sql::copy::copy_chunk(plan, &where_orig), p_orig)
        .await
        .map_err(|e| errors::copy_failed(&plan.names.table, ctx, e))?;
    let rows = tx.affected_rows();
    checkpoint::advance(&mut tx, &plan.names, mark, rows, ctx).await?;
    let waiters = count_waiters(my, &mut tx, ctx).await?;
    tx.commit().await.map_err(|e| errors::db(ctx, e))?;
    Ok(ChunkCopied { rows, waiters, written_ahead })
}

/// The writers that waited for a row lock around the chunk of `tx`, just before it commits
/// ([`sql::copy::ROW_LOCK_WAITERS`], [`waiters`]); records InnoDB's count for the next chunk.
pub(crate) async fn count_waiters(my: &MySql, tx: &mut mysql_async::Transaction<'_>, ctx: &str) -> Result<u64> {
    let waits: Option<(u64, u64)> = tx.query_first(sql::copy::ROW_LOCK_WAITERS).await.map_err(|e| errors::db(ctx, e))?;
    let (now, total) = waits.unwrap_or_default();
    let before = my.row_lock_waits_seen.lock().expect("row lock waits").replace(total);
    Ok(waiters(now, before, total))
}

/// Writers that waited for a row lock around a chunk: those waiting `now`, or the waits InnoDB
/// counted since the previous chunk read `before` (its count, `total` now), whichever is more.
/// Without a previous reading (the first chunk; a count that went back, after a server restart)
/// only `now`.
fn waiters(now: u64, before: Option<u64>, total: u64) -> u64 {
    now.max(before.map_or(0, |b| total.saturating_sub(b)))
}

/// Checksum the rows with key in `(after, upto]` (either end open when `None`) of the original
/// and of the shadow, in one read-only transaction with a consistent snapshot. Returns
/// `(original, shadow)`.
pub(crate) async fn checksum_chunk(
    my: &MySql,
    plan: &Plan,
    after: Option<&MyKey>,
    upto: Option<&MyKey>,
) -> Result<(ChunkChecksum, ChunkChecksum)> {
    let ctx = "checksumming a chunk";
    let cols = &plan.checksum_columns;
    let (orig_keys, shadow_keys) = sql::copy::key_names(plan);
    let bounds = |keys: &[&str]| {
        sql::copy::key_range_where(keys, &plan.key.columns, after.map(|k| k.0.as_slice()), upto.map(|k| k.0.as_slice()))
    };
    let (where_orig, p_orig) = bounds(&orig_keys);
    let (where_shadow, p_shadow) = bounds(&shadow_keys);
    let q_orig = sql::copy::checksum(&plan.names.table, &cols.iter().map(|m| m.source.as_str()).collect::<Vec<_>>(), &where_orig);
    let q_shadow =
        sql::copy::checksum(&plan.names.shadow, &cols.iter().map(|m| m.target.as_str()).collect::<Vec<_>>(), &where_shadow);
    let mut c = my.conn().await?;
    let mut opts = TxOpts::default();
    opts.with_consistent_snapshot(true).with_readonly(true);
    let mut tx = c.start_transaction(opts).await.map_err(|e| errors::db(ctx, e))?;
    let a: Option<(u64, u64)> = tx.exec_first(q_orig, p_orig).await.map_err(|e| errors::db(ctx, e))?;
    let b: Option<(u64, u64)> = tx.exec_first(q_shadow, p_shadow).await.map_err(|e| errors::db(ctx, e))?;
    tx.commit().await.map_err(|e| errors::db(ctx, e))?;
    let sum = |v: Option<(u64, u64)>| v.map(|(rows, hash)| ChunkChecksum { rows, hash }).unwrap_or_default();
    Ok((sum(a), sum(b)))
}

/// The chunk key of the first row `query` returns.
async fn key_query(my: &MySql, context: &str, query: String, params: Vec<Value>) -> Result<Option<MyKey>> {
    let mut c = my.conn().await?;
    let row: Option<Row> = c.exec_first(query, params).await.map_err(|e| errors::db(context, e))?;
    Ok(row.map(|r| MyKey(r.unwrap())))
}

/// The WHERE clause over the shadow's key columns of every key after `upto`, and its parameters.
fn where_beyond(plan: &Plan, upto: &MyKey) -> (String, Vec<Value>) {
    let (_, shad) = sql::copy::key_names(plan);
    sql::copy::key_range_where(&shad, &plan.key.columns, Some(&upto.0), None)
}

/// The WHERE clause and parameters of the chunk `(after, upto]`, over the original's key columns
/// or (`shadow`) the shadow's.
fn where_range(plan: &Plan, shadow: bool, after: Option<&MyKey>, upto: &MyKey) -> (String, Vec<Value>) {
    let (orig, shad) = sql::copy::key_names(plan);
    let cols = if shadow { shad } else { orig };
    sql::copy::key_range_where(&cols, &plan.key.columns, after.map(|k| k.0.as_slice()), Some(&upto.0))
}

#[cfg(test)]
mod tests {
    use super::waiters;

    #[test]
    fn waiters_are_those_waiting_now_or_the_waits_since_the_last_chunk() {
        assert_eq!(waiters(0, None, 500), 0, "first chunk: the server's history is not ours");
        assert_eq!(waiters(2, None, 500), 2);
        assert_eq!(waiters(0, Some(500), 503), 3, "three waits began and ended between the two readings");
        assert_eq!(waiters(1, Some(500), 500), 1);
        assert_eq!(waiters(0, Some(500), 7), 0, "the server restarted: the count went back");
    }
}
