//! The backfill and the checksum: the key range (low key and high watermark), each chunk's
//! end, the copy of one chunk (as the table's owner, under `ROW SHARE` on the table, advancing
//! the checkpoint in the same transaction), and the checksum of one chunk on both sides from
//! one snapshot. The statements are [`crate::sql::copy`]'s (and the checkpoint's advance,
//! [`crate::sql::checkpoint`]'s).

use std::sync::atomic::Ordering;
use std::time::Duration;

use shadowswap_engine::checkpoint::ChunkMark;
use shadowswap_engine::dialect::{ChunkChecksum, ChunkCopied};
use shadowswap_engine::error::Result;
use shadowswap_engine::plan::Plan;
use shadowswap_engine::Error;
use tokio_postgres::SimpleQueryMessage;

use crate::connect::text_params;
use crate::sql::checkpoint as qc;
use crate::sql::copy as q;
use crate::sql::Qualified;
use crate::{errors, generated_names, inspect, owner, PgKey, Postgres};

/// The one row of `query` (with text parameters) as a key, or `None` without a row.
async fn key_query(pg: &Postgres, context: &str, query: String, p: &[String]) -> Result<Option<PgKey>> {
    let c = pg.client().await?;
    let row = c.query_typed_opt(&query, &text_params(p)).await.map_err(|e| errors::db(context, e))?;
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
/// Returns the rows copied.
///
/// First the fast path, one READ COMMITTED transaction (each statement has its own snapshot):
/// 1. `SET LOCAL lock_timeout`, `LOCK TABLE t IN ROW SHARE MODE` ([`q::begin_chunk`]);
/// 2. `SELECT 1 FROM t WHERE <range> FOR SHARE` ([`q::lock_chunk_rows`]): every row of the
///    range that exists now is locked in its latest committed version (the statement waits for
///    writers holding one); `locked` rows;
/// 3. `DELETE FROM shadow WHERE <range>` ([`q::clear_shadow_range`]): what the capture wrote ahead;
/// 4. a plain `INSERT … SELECT` ([`q::insert_chunk`]): `copied` rows;
/// 5. the checkpoint's advance and the commit, only when `copied == locked`.
///
/// The locked rows cannot change until the commit, and their latest version is committed
/// before step 4's snapshot, so step 4 reads each of them in its latest version; any other row
/// step 4 reads is *new*: inserted into the range (or moved into it by a key-changing UPDATE)
/// by a transaction that committed after step 2's snapshot. So `copied == locked` exactly when
/// the chunk copied only locked rows, and then, interleaving by interleaving (W is an
/// application transaction, its capture trigger runs in it right after its change):
/// - W's INSERT, UPDATE, DELETE or key-changing UPDATE committed before step 2 locks the row (or
///   step 2 waited for it): the shadow holds what W's capture wrote, committed, step 3 deletes
///   it and step 4 writes the row's latest version (a row W deleted or moved out of the range is
///   neither locked nor read, and its capture already removed it from the shadow);
/// - W changes or deletes a locked row after step 2: W waits for the chunk's commit before its
///   change, so its capture runs afterwards and (READ COMMITTED: a new snapshot per statement)
///   sees and overwrites or deletes the copied row; at REPEATABLE READ or SERIALIZABLE the
///   capture's DELETE meets a row changed after its snapshot and fails with
///   `serialization_failure`, as with the upsert;
/// - W inserts into the range (or moves a row into it) and is not committed at step 4's
///   snapshot: step 4 does not read the row, nothing of this chunk touches its key, and W's
///   capture writes it;
/// - W inserts into the range and commits between step 2's and step 4's snapshots: the row is
///   new, and the chunk does not commit. Committed after step 3's snapshot, W's capture row is
///   still in the shadow and step 4 fails with `unique_violation` (the hole of the plain
///   insert). Committed before it, step 3 deletes W's capture row and step 4 inserts the row
///   again as a new tuple; a later W2 that deletes the row (or moves its key away), not locked
///   out by step 2, would have its capture's DELETE wait for the chunk on the deleted tuple and
///   then skip it, never seeing the inserted one: a deleted row brought back. `copied !=
///   locked` rolls such a chunk back before W2 can miss anything;
/// - `TRUNCATE` takes `ACCESS EXCLUSIVE`, which conflicts with step 1's `ROW SHARE`: it runs
///   wholly before the chunk or after it (its capture trigger empties the shadow after);
/// - the shadow's `GENERATED ALWAYS AS IDENTITY` columns take the original's values through
///   `OVERRIDING SYSTEM VALUE`, and the fast path has no SET list, so it does not read them.
///
/// Steps 2 to 4 run as the table's owner ([`owner::exec`], entered once per transaction, which
/// also checks the owner's helper function is intact): step 2 needs what `FOR SHARE` needs, and
/// row-level security would hide rows from the session's own role; the shadow has no triggers,
/// rules or incoming foreign keys, so step 3 runs none of the table's code.
///
/// When the fast path cannot commit (a `unique_violation`, which is also how a real duplicate of
/// a new unique key shows, or `copied != locked`), it is rolled back and the chunk is redone in a
/// new transaction with the one-statement upsert [`q::copy_chunk`], as copies did before the
/// fast path ([`Postgres::copy_fallbacks`] counts them).
///
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
) -> Result<ChunkCopied> {
    match fast_copy(pg, plan, after, upto, lock_wait, mark).await? {
        Ok(copied) => Ok(copied),
        Err(why) => {
            pg.copy_fallbacks.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(table = %plan.names.table, why, "the chunk's fast copy was rolled back; copying it with the upsert");
            upsert_copy(pg, plan, after, upto, lock_wait, mark).await
        }
    }
}

impl Postgres {
    /// How many chunks this connection's copy redid with the upsert after the fast path could
    /// not commit them (see `copy_chunk` in this module): a figure for tests and diagnostics.
    pub fn copy_fallbacks(&self) -> u64 {
        self.copy_fallbacks.load(Ordering::Relaxed)
    }
}

/// The fast path of [`copy_chunk`]: `Ok(Ok(rows))` when the chunk committed, `Ok(Err(why))`
/// when it was rolled back for the fallback.
async fn fast_copy(
    pg: &Postgres,
    plan: &Plan,
    after: Option<&PgKey>,
    upto: &PgKey,
    lock_wait: Duration,
    mark: &ChunkMark,
) -> Result<std::result::Result<ChunkCopied, &'static str>> {
    let ctx = "copying a chunk";
    let (where_, p) = q::chunk_range(plan, after.map(|k| &k.0[..]), &upto.0);
    let mut c = pg.client().await?;
    let tx = c.transaction().await.map_err(|e| errors::db(ctx, e))?;
    tx.batch_execute(&q::begin_chunk(&plan.names.table, lock_wait)).await.map_err(|e| errors::db(ctx, e))?;
    let owner = owner::enter(&tx, &plan.names.table).await.map_err(|e| errors::db(ctx, e))?;
    let locked = owner::exec(&tx, owner, &q::lock_chunk_rows(plan, &where_), &p, None).await.map_err(|e| errors::db(ctx, e))?;
    let clear = q::clear_shadow_range(plan, &q::shadow_chunk_range(plan, after.is_some()));
    let cleared = owner::exec(&tx, owner, &clear, &p, None).await.map_err(|e| errors::db(ctx, e))?;
    let copied = match owner::exec(&tx, owner, &q::insert_chunk(plan, &where_), &p, None).await {
        Ok(n) => n,
        Err(e) if errors::unique_violation(&e).is_some() => {
            tx.rollback().await.map_err(|e| errors::db(ctx, e))?;
            return Ok(Err("a unique violation"));
        }
        Err(e) => return Err(errors::rejected_row(&plan.names.table, &e).unwrap_or_else(|| errors::db(ctx, e))),
    };
    if copied != locked {
        tx.rollback().await.map_err(|e| errors::db(ctx, e))?;
        return Ok(Err("rows inserted into the chunk's range meanwhile"));
    }
    finish(tx, plan, mark, copied, cleared > 0).await.map(Ok)
}

/// The fallback of [`copy_chunk`]: the chunk in one transaction with the one-statement upsert
/// ([`q::copy_chunk`]).
async fn upsert_copy(
    pg: &Postgres,
    plan: &Plan,
    after: Option<&PgKey>,
    upto: &PgKey,
    lock_wait: Duration,
    mark: &ChunkMark,
) -> Result<ChunkCopied> {
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
    finish(tx, plan, mark, rows, false).await
}

/// The end of a chunk's transaction: back to the session's role (the owner need not have any
/// privilege on the checkpoint table) and the checkpoint's advance by `mark` and `rows`, in one
/// round trip, then the commit. `written_ahead`: see [`ChunkCopied::written_ahead`] (the upsert
/// fallback does not tell). Errors: [`Error::Refused`] when the checkpoint row is missing.
async fn finish(
    tx: deadpool_postgres::Transaction<'_>,
    plan: &Plan,
    mark: &ChunkMark,
    rows: u64,
    written_ahead: bool,
) -> Result<ChunkCopied> {
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
    let waiters = count_waiters(&tx).await?;
    tx.commit().await.map_err(|e| errors::db("copying a chunk", e))?;
    Ok(ChunkCopied { rows, waiters, written_ahead })
}

/// The sessions waiting for a lock as the chunk of `tx` is about to commit
/// ([`q::ROW_LOCK_WAITERS`]), for the copy and the staged backfill alike.
pub(crate) async fn count_waiters(tx: &tokio_postgres::Transaction<'_>) -> Result<u64> {
    let row = tx.query_typed_one(q::ROW_LOCK_WAITERS, &[]).await.map_err(|e| errors::db("counting lock waiters", e))?;
    Ok(u64::try_from(row.get::<_, i64>(0)).unwrap_or(0))
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
    // hash_record_extended: PostgreSQL 14 and later.
    let by_value = pg.server_version_num >= 140000;
    let (q_orig, q_shadow, p) = q::checksum_pair(plan, after.map(|k| &k.0[..]), upto.map(|k| &k.0[..]), by_value);
    let mut c = pg.client().await?;
    let tx = c
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await
        .map_err(|e| errors::db(ctx, e))?;
    let a = tx.query_typed_one(&q_orig, &text_params(&p)).await.map_err(|e| errors::db(ctx, e))?;
    let b = tx.query_typed_one(&q_shadow, &text_params(&p)).await.map_err(|e| errors::db(ctx, e))?;
    tx.commit().await.map_err(|e| errors::db(ctx, e))?;
    let sum = |r: &tokio_postgres::Row| ChunkChecksum { rows: r.get::<_, i64>(0) as u64, hash: r.get::<_, i64>(1) as u64 };
    Ok((sum(&a), sum(&b)))
}
