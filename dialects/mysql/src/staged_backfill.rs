//! The staged backfill on MariaDB ([`shadowswap_engine::staged::backfill`]): one chunk's
//! `UPDATE` and the checkpoint's advance in one transaction, the counts, the server's trial of
//! the fragments. The statements are [`crate::sql::staged_backfill`]'s.

use std::time::Duration;

use mysql_async::prelude::Queryable;
use mysql_async::TxOpts;
use shadowswap_engine::checkpoint::ChunkMark;
use shadowswap_engine::dialect::ChunkCopied;
use shadowswap_engine::error::{Error, Result};
use shadowswap_engine::plan::Plan;
use shadowswap_engine::staged::backfill::BackfillSpec;

use crate::connect::whole_seconds;
use crate::sql::staged_backfill as q;
use crate::{checkpoint, errors, sql, MyKey, MySql};

/// `EXPLAIN UPDATE …` ([`q::check`]): the server resolves and plans the whole UPDATE without
/// running it. Errors: [`Error::Refused`] with the server's message when it rejects the
/// fragments; connection errors as they are.
pub(crate) async fn check(my: &MySql, plan: &Plan, spec: &BackfillSpec) -> Result<()> {
    let mut c = my.conn().await?;
    match c.query_drop(q::check(plan, spec)).await {
        Ok(()) => Ok(()),
        Err(mysql_async::Error::Server(s)) => Err(Error::refused(format!(
            "the server rejects --set {:?} / --where {:?} on {}: {} (error {}); fix the fragment",
            spec.set, spec.where_, plan.names.table, s.message, s.code
        ))),
        Err(e) => Err(errors::db("checking --set and --where", e)),
    }
}

/// Rows matching `--where`, counting at most `limit` ([`q::count`]).
pub(crate) async fn count(my: &MySql, plan: &Plan, spec: &BackfillSpec, limit: Option<u64>) -> Result<u64> {
    let mut c = my.conn().await?;
    let n: Option<u64> =
        c.query_first(q::count(plan, spec, limit)).await.map_err(|e| errors::db("counting rows matching --where", e))?;
    Ok(n.unwrap_or(0))
}

/// One chunk in one transaction: the UPDATE of the rows in `(after, upto]` still matching
/// `--where` ([`q::update_chunk`]), then the checkpoint's advance by `mark` and the rows updated
/// ([`sql::checkpoint::advance_checkpoint`]). Row lock waits last at most `lock_wait` (whole
/// seconds). Returns the rows updated (changed).
pub(crate) async fn chunk(
    my: &MySql,
    plan: &Plan,
    spec: &BackfillSpec,
    after: Option<&MyKey>,
    upto: &MyKey,
    lock_wait: Duration,
    mark: &ChunkMark,
) -> Result<ChunkCopied> {
    let ctx = "updating a chunk";
    let (cols, _) = sql::copy::key_names(plan);
    let (range, params) = sql::copy::key_range_where(&cols, &plan.key.columns, after.map(|k| k.0.as_slice()), Some(&upto.0));
    let mut c = my.conn().await?;
    c.query_drop(sql::copy::innodb_lock_wait_timeout(whole_seconds(lock_wait))).await.map_err(|e| errors::db(ctx, e))?;
    let mut tx = c.start_transaction(TxOpts::default()).await.map_err(|e| errors::db(ctx, e))?;
    tx.exec_drop(q::update_chunk(plan, spec, &range), params).await.map_err(|e| errors::db(ctx, e))?;
    let rows = tx.affected_rows();
    if checkpoint::advance(&mut tx, &plan.names, mark, rows, "recording the chunk in the checkpoint").await? != 1 {
        return Err(Error::refused(format!(
            "the checkpoint row of {} is missing ({} has no row), so the backfill cannot record its progress; \
             run `shadowswap cleanup` for this table and run the backfill again",
            plan.names.table, plan.names.checkpoint
        )));
    }
    let waiters = crate::copy::count_waiters(my, &mut tx, ctx).await?;
    tx.commit().await.map_err(|e| errors::db(ctx, e))?;
    Ok(ChunkCopied { rows, waiters, written_ahead: false })
}
