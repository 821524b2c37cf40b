//! The revert window on PostgreSQL ([`shadowswap_engine::revert`], docs/revert.md), running the
//! statements of [`crate::sql::revert`].
//!
//! DDL is transactional here, so the reverse capture is created inside the swap transaction
//! (`crate::cutover::swap_transaction` with `SwapKind::WithRevertWindow`): after the forward
//! capture is dropped and the renames ran, before the commit; no write can fall between them.
//! The swap back is the same transaction with the roles flipped (`SwapKind::Back` on
//! [`crate::sql::revert::reverse_plan`]), so whatever the swap carried over to the new table
//! (views, functions, rules and policies of other tables, foreign keys from other tables,
//! triggers, policies, grants, owner, comments, identity sequences and their values, index and
//! statistics names) is carried back by the same code.

use std::time::Duration;

use shadowswap_engine::alter;
use shadowswap_engine::error::Result;
use shadowswap_engine::names::Names;
use shadowswap_engine::plan::Plan;
use shadowswap_engine::revert::RevertState;
use shadowswap_engine::Error;
use tokio_postgres::{GenericClient, Transaction};

use crate::cutover::{swap_transaction, SwapKind};
use crate::sql::capture::drop_capture;
use crate::sql::connect::set_lock_timeout;
use crate::sql::cutover::{rename_index, rename_table};
use crate::sql::deps::rename_statistics;
use crate::sql::revert as q;
use crate::sql::Qualified;
use crate::{errors, inspect, Postgres};

/// Seed of the reverse capture's dollar-quote tags.
const SEED: u64 = 0x5eed_7e7e;

/// See [`shadowswap_engine::Dialect::revert_prepare`]: `revert_broken` cleared (the reverse
/// capture is created in the swap transaction).
pub(crate) async fn prepare(pg: &Postgres, plan: &Plan) -> Result<()> {
    let c = pg.client().await?;
    c.batch_execute(&q::clear_broken(&plan.names)).await.map_err(|e| errors::db("recording the revert window", e))
}

/// See [`shadowswap_engine::Dialect::revert_unprepare`]: clear the window from the checkpoint.
pub(crate) async fn unprepare(pg: &Postgres, names: &Names) -> Result<()> {
    if !inspect::table_exists(pg, &names.checkpoint).await? {
        return Ok(());
    }
    let c = pg.client().await?;
    c.batch_execute(&q::clear_window(names)).await.map_err(|e| errors::db("clearing the revert window", e))
}

/// The forward swap with the reverse capture in its transaction.
pub(crate) async fn cut_over_with_revert(pg: &Postgres, plan: &Plan, lock_timeout: Duration) -> Result<Duration> {
    swap_transaction(pg, plan, lock_timeout, SwapKind::WithRevertWindow).await
}

/// After the swap (whose transaction created the reverse capture and set the phase): the
/// window's end, counted from the swap.
pub(crate) async fn window_opened(pg: &Postgres, plan: &Plan, until: &str) -> Result<()> {
    let c = pg.client().await?;
    c.execute(&q::set_end(&plan.names), &[&until]).await.map_err(|e| errors::db("recording the revert window", e))?;
    Ok(())
}

/// What the swap transaction of `kind` runs after the swap's own statements: the reverse capture
/// and the phase for [`SwapKind::WithRevertWindow`], the phase `failed` ("ended without a swap")
/// for [`SwapKind::Back`].
pub(crate) fn in_swap(plan: &Plan, kind: SwapKind) -> Vec<String> {
    match kind {
        SwapKind::Plain => Vec::new(),
        SwapKind::WithRevertWindow => q::in_swap(plan, SEED),
        SwapKind::Back => {
            vec![format!("UPDATE {} SET phase = 'failed', updated_at = now() WHERE id = 1", Qualified(&plan.names.checkpoint))]
        }
    }
}

/// Under the swap back's lock: refuse when the reverse capture recorded a failure.
pub(crate) async fn refuse_if_broken(c: &impl GenericClient, names: &Names) -> Result<()> {
    let row = c.query_opt(&q::read_state(names), &[]).await.map_err(|e| errors::db("reading the checkpoint", e))?;
    if let Some(why) = row.and_then(|r| r.get::<_, Option<String>>(3)) {
        return Err(Error::refused(format!(
            "the old table missed writes since the swap ({why}); a revert would lose them; run `shadowswap finish` for {} \
             to keep the new table and close the window",
            names.table
        )));
    }
    Ok(())
}

/// In the swap back's transaction, before its catalog reads: move `_<t>_old`'s indexes,
/// statistics objects and identity sequences that carry the forward swap's aside names
/// (`_<name>_old`) to `_<name>_ssw_rv`, so the new table's can move aside to those names; the
/// swap then gives `_<t>_old`'s their original names back, matched by definition.
pub(crate) async fn clear_the_way(tx: &Transaction<'_>, n: &Names) -> Result<()> {
    let ctx = "preparing the swap back";
    let (t, o) = (Qualified(&n.table).to_string(), Qualified(&n.shadow).to_string());
    let names_of = |query: &'static str, rel: String| async move {
        let rows = tx.query(query, &[&rel]).await.map_err(|e| errors::db(ctx, e))?;
        Ok::<_, Error>(rows.iter().map(|r| r.get::<_, String>(0)).collect::<Vec<String>>())
    };
    let pairs = |query: &'static str, rel: String| async move {
        let rows = tx.query(query, &[&rel]).await.map_err(|e| errors::db(ctx, e))?;
        Ok::<_, Error>(rows.iter().map(|r| (r.get::<_, String>(0), r.get::<_, String>(1))).collect::<Vec<(String, String)>>())
    };
    let mut stmts = Vec::new();
    for (aside, to) in q::collisions(&names_of(q::INDEX_NAMES, t.clone()).await?, &names_of(q::INDEX_NAMES, o.clone()).await?) {
        stmts.push(rename_index(&n.table.schema, &aside, &to));
    }
    let (ts, os) = (pairs(q::STATISTICS_NAMES, t.clone()).await?, pairs(q::STATISTICS_NAMES, o.clone()).await?);
    let names = |v: &[(String, String)]| v.iter().map(|(_, n)| n.clone()).collect::<Vec<_>>();
    for (aside, to) in q::collisions(&names(&ts), &names(&os)) {
        let schema = os.iter().find(|(_, n)| *n == aside).map(|(s, _)| s.clone()).unwrap_or_default();
        stmts.push(rename_statistics(&schema, &aside, &to));
    }
    let (tq, oq) = (pairs(q::OWNED_SEQUENCE_NAMES, t).await?, pairs(q::OWNED_SEQUENCE_NAMES, o).await?);
    for (aside, to) in q::collisions(&names(&tq), &names(&oq)) {
        let schema = oq.iter().find(|(_, n)| *n == aside).map(|(s, _)| s.clone()).unwrap_or_default();
        stmts.push(q::rename_sequence(&schema, &aside, &to));
    }
    for s in stmts {
        tracing::debug!(sql = %s, "revert");
        tx.batch_execute(&s).await.map_err(|err| errors::db_running(ctx, &s, err))?;
    }
    Ok(())
}

/// The checkpoint's revert-window fields; `None` without a checkpoint table or row.
pub(crate) async fn state(pg: &Postgres, names: &Names) -> Result<Option<RevertState>> {
    if !inspect::table_exists(pg, &names.checkpoint).await? {
        return Ok(None);
    }
    let c = pg.client().await?;
    let row = c.query_opt(&q::read_state(names), &[]).await.map_err(|e| errors::db("reading the checkpoint", e))?;
    Ok(row.map(|r| RevertState { phase: r.get(0), alter: r.get(1), revert_until: r.get(2), revert_broken: r.get(3) }))
}

/// One attempt of the swap back: the reverse plan from both tables as they are now and the
/// checkpoint's ALTER (for its column renames), then the swap transaction with the roles flipped.
pub(crate) async fn swap_back(pg: &Postgres, names: &Names, lock_timeout: Duration) -> Result<Duration> {
    let Some(s) = state(pg, names).await? else {
        return Err(Error::refused(format!("{} has no revert window", names.table)));
    };
    let analysis = alter::analyze(&s.alter, &sqlparser::dialect::PostgreSqlDialect {})?;
    let current = inspect::inspect(pg, &names.table).await?;
    let old = inspect::inspect(pg, &names.old).await?;
    let plan = q::reverse_plan(names, analysis, current, old);
    let blocked = swap_transaction(pg, &plan, lock_timeout, SwapKind::Back).await?;
    // As after the swap, with the roles flipped: subscriptions that replicated into the new table
    // follow the table back, and the foreign keys re-added NOT VALID are validated.
    if let Err(e) = crate::cutover::after_cut_over(pg, &plan).await {
        tracing::warn!(error = %e, "after the swap back");
    }
    Ok(blocked)
}

/// After the swap back: the new table (now `_<t>_new`) and the checkpoint, in one transaction.
pub(crate) async fn cleanup_after_revert(pg: &Postgres, names: &Names, lock_timeout: Duration) -> Result<()> {
    let mut c = pg.client().await?;
    let e = |e| errors::db("dropping the new table after the revert", e);
    let tx = c.transaction().await.map_err(e)?;
    tx.batch_execute(&format!(
        "{}; {}; {}",
        set_lock_timeout(lock_timeout),
        q::drop_table_if_exists(&names.shadow),
        q::drop_table_if_exists(&names.checkpoint)
    ))
    .await
    .map_err(e)?;
    tx.commit().await.map_err(e)
}

/// `shadowswap finish`'s statements after the lock timeout: the reverse capture (triggers and
/// functions), the old table, the checkpoint.
pub(crate) fn finish_statements(names: &Names) -> Vec<String> {
    let mut out: Vec<String> = reverse_trigger_names(names).iter().flat_map(|t| drop_capture(&names.table, t)).collect();
    out.push(q::drop_table_if_exists(&names.old));
    out.push(q::drop_table_if_exists(&names.checkpoint));
    out
}

/// The reverse capture's four trigger (and function) names.
fn reverse_trigger_names(names: &Names) -> [String; 4] {
    let [i, u, d] = names.revert_triggers();
    [i.to_string(), u.to_string(), d.to_string(), q::reverse_truncate_trigger(names)]
}

/// `shadowswap finish`: one transaction under the lock timeout ([`finish_statements`]).
pub(crate) async fn finish(pg: &Postgres, names: &Names, lock_timeout: Duration) -> Result<()> {
    let mut c = pg.client().await?;
    let e = |e| errors::db("closing the revert window", e);
    let tx = c.transaction().await.map_err(e)?;
    tx.batch_execute(&set_lock_timeout(lock_timeout)).await.map_err(e)?;
    for s in finish_statements(names) {
        tx.batch_execute(&s).await.map_err(|err| errors::db_running("closing the revert window", &s, err))?;
    }
    tx.commit().await.map_err(e)
}

/// What `revert` runs, for its dry run: the swap back's outline, then the drops.
pub(crate) fn swap_back_sql(names: &Names) -> Vec<String> {
    let r = q::reverse_names(names);
    vec![
        format!(
            "BEGIN; SET LOCAL lock_timeout = …; {}; -- refuse if {}.revert_broken is set",
            crate::sql::cutover::lock_tables(&r),
            Qualified(&names.checkpoint)
        ),
        format!(
            "DROP TRIGGER … (reverse capture); {}; {}",
            rename_table(&names.table, &names.shadow.name),
            rename_table(&names.old, &names.table.name)
        ),
        "-- then, as the swap did: index and constraint names, statistics objects, identity sequences and their values, \
         views, functions with SQL-standard bodies, rules and policies of other tables, foreign keys from other tables, \
         grants, row-level security and policies, replica identity, comment, owner, triggers of the table's own; COMMIT"
            .to_string(),
        q::drop_table_if_exists(&names.shadow),
        q::drop_table_if_exists(&names.checkpoint),
    ]
}

/// The window's SQL for the `alter` dry run: the reverse capture the swap transaction creates.
pub(crate) fn window_sql(plan: &Plan) -> Vec<String> {
    q::in_swap(plan, SEED)
}
