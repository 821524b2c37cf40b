//! The revert window on MariaDB ([`shadowswap_engine::revert`], docs/revert.md), running the
//! statements of [`crate::sql::revert`].
//!
//! MariaDB has no transactional DDL, so the reverse capture cannot be created "in the swap".
//! Instead it exists before the swap, on the shadow, writing into an empty placeholder named
//! `_<t>_old`, and the swap is one four-way `RENAME TABLE` that moves the placeholder aside in
//! the same atomic statement ([`crate::sql::revert::rename_swap_with_revert`]): triggers move
//! with their table, and their bodies name tables that are resolved when a statement opens them,
//! so the instant `t` is the new table, its reverse triggers write into the original. The forward
//! capture triggers, now on `_<t>_old`, write into the empty `_<t>_new` placeholder until
//! [`window_opened`] drops them. Checked on the test server (docs/revert.md, "MariaDB").

use std::time::Duration;

use mysql_async::prelude::Queryable;
use mysql_async::Conn;
use shadowswap_engine::error::Result;
use shadowswap_engine::names::Names;
use shadowswap_engine::phase::Phase;
use shadowswap_engine::plan::Plan;
use shadowswap_engine::revert::RevertState;
use shadowswap_engine::Error;

use crate::capture::{remove_capture, trigger_ddl_locked};
use crate::connect::whole_seconds;
use crate::inspect::table_exists;
use crate::sql::revert as q;
use crate::{cutover, errors, mdl, sql, MySql};

/// Reverse triggers that exist now, with the table each is on.
async fn reverse_triggers_present(my: &MySql, names: &Names) -> Result<Vec<(String, String)>> {
    let [a, b, c] = names.revert_triggers();
    let mut conn = my.conn().await?;
    conn.exec(sql::capture::CAPTURE_TRIGGER_TABLES, (&names.table.schema, a, b, c))
        .await
        .map_err(|e| errors::db("listing the reverse capture triggers", e))
}

/// Run `stmt` with the lock timeout in session `c`.
async fn ddl(c: &mut Conn, ctx: &str, stmt: &str, lock_timeout: Duration) -> Result<()> {
    c.query_drop(sql::with_lock_timeout(whole_seconds(lock_timeout), stmt)).await.map_err(|e| errors::db(ctx, e))
}

/// See [`shadowswap_engine::Dialect::revert_prepare`]: `revert_broken` cleared, the placeholders,
/// then the reverse triggers on the shadow (all three at once under `LOCK TABLES … WRITE`, see
/// [`trigger_ddl_locked`]).
pub(crate) async fn prepare(my: &MySql, plan: &Plan, until: &str, lock_timeout: Duration) -> Result<()> {
    let n = &plan.names;
    let ctx = "preparing the revert window";
    let _ = until;
    let mut c = my.conn().await?;
    c.query_drop(q::clear_broken(n)).await.map_err(|e| errors::db(ctx, e))?;
    for stmt in q::create_placeholders(n) {
        ddl(&mut c, ctx, &stmt, lock_timeout).await?;
    }
    drop(c);
    let present = reverse_triggers_present(my, n).await?;
    if present.len() < 3 {
        let mut stmts = q::drop_reverse_triggers(n);
        stmts.extend(q::reverse_triggers(plan));
        trigger_ddl_locked(my, "creating the reverse capture triggers", &n.shadow, &stmts, lock_timeout, None).await?;
    }
    Ok(())
}

/// See [`shadowswap_engine::Dialect::revert_unprepare`]. Does nothing once the swap happened
/// (the reverse triggers are on the table then).
pub(crate) async fn unprepare(my: &MySql, names: &Names, lock_timeout: Duration) -> Result<()> {
    let present = reverse_triggers_present(my, names).await?;
    if present.iter().any(|(_, on)| *on == names.table.name) {
        return Ok(());
    }
    if !present.is_empty() {
        trigger_ddl_locked(
            my,
            "dropping the reverse capture triggers",
            &names.shadow,
            &q::drop_reverse_triggers(names),
            lock_timeout,
            None,
        )
        .await?;
    }
    let ctx = "removing the revert window's placeholders";
    let mut c = my.conn().await?;
    for t in [&names.old, &q::new_placeholder(names), &q::old_placeholder_sink(names)] {
        ddl(&mut c, ctx, &q::drop_table_if_exists(t), lock_timeout).await?;
    }
    if table_exists(my, &names.checkpoint).await? {
        c.query_drop(q::clear_window(names)).await.map_err(|e| errors::db(ctx, e))?;
    }
    Ok(())
}

/// The swap with the reverse capture: [`cutover::cut_over_with`] the four-way rename.
pub(crate) async fn cut_over_with_revert(my: &MySql, plan: &Plan, lock_timeout: Duration) -> Result<Duration> {
    cutover::cut_over_with(my, plan, lock_timeout, &q::rename_swap_with_revert(&plan.names)).await
}

/// After the swap: drop the forward capture (now on `_<t>_old`, under its lock) and then the
/// placeholders, and record the window as open until `until` (counted from the swap).
pub(crate) async fn window_opened(my: &MySql, plan: &Plan, until: &str, lock_timeout: Duration) -> Result<()> {
    let n = &plan.names;
    drop_forward_leftovers(my, n, lock_timeout).await?;
    let mut c = my.conn().await?;
    c.exec_drop(q::set_phase_and_end(n), (Phase::RevertWindow.to_string(), until))
        .await
        .map_err(|e| errors::db("recording the revert window", e))
}

/// The forward capture triggers (wherever they are) first, so nothing writes the placeholders,
/// then the placeholders. Idempotent.
async fn drop_forward_leftovers(my: &MySql, n: &Names, lock_timeout: Duration) -> Result<()> {
    remove_capture(my, n, lock_timeout).await?;
    let mut c = my.conn().await?;
    // `_<t>_new` is the placeholder only while the reverse triggers are on the table.
    let on_table = reverse_triggers_present(my, n).await?.iter().any(|(_, on)| *on == n.table.name);
    let mut drops = vec![q::old_placeholder_sink(n), q::new_placeholder(n)];
    if on_table {
        drops.push(n.shadow.clone());
    }
    for t in drops {
        ddl(&mut c, "dropping the revert window's placeholders", &q::drop_table_if_exists(&t), lock_timeout).await?;
    }
    Ok(())
}

/// The checkpoint's revert-window fields; `None` without a checkpoint table or row.
pub(crate) async fn state(my: &MySql, names: &Names) -> Result<Option<RevertState>> {
    if !table_exists(my, &names.checkpoint).await? {
        return Ok(None);
    }
    let mut c = my.conn().await?;
    let row: Option<(String, String, Option<String>, Option<String>)> =
        c.query_first(q::read_state(names)).await.map_err(|e| errors::db("reading the checkpoint", e))?;
    drop(c);
    let Some((mut phase, alter, revert_until, revert_broken)) = row else { return Ok(None) };
    // The phase is recorded just after the rename (MariaDB cannot do both in one step): a run
    // killed in between left the window open, which the reverse triggers on the table show.
    if revert_until.is_some() && phase == Phase::CutOver.to_string() {
        let on_table = reverse_triggers_present(my, names).await?.iter().any(|(_, on)| *on == names.table.name);
        if on_table {
            phase = Phase::RevertWindow.to_string();
        }
    }
    Ok(Some(RevertState { phase, alter, revert_until, revert_broken }))
}

/// One attempt of the swap back: refuse if the reverse capture recorded a failure, make sure the
/// forward capture and the placeholders are gone, `RENAME TABLE t TO _t_new, _t_old TO t`, then
/// read the record again: a failure in the moment between the check and the rename (MariaDB
/// cannot rename under `LOCK TABLES`) keeps the new table as `_<t>_new` and says so.
pub(crate) async fn swap_back(my: &MySql, names: &Names, lock_timeout: Duration) -> Result<Duration> {
    let broken = |s: Option<RevertState>| s.and_then(|s| s.revert_broken);
    if let Some(why) = broken(state(my, names).await?) {
        return Err(Error::refused(format!(
            "the old table missed writes since the swap ({why}); a revert would lose them; run `shadowswap finish` for {} \
             to keep the new table and close the window",
            names.table
        )));
    }
    drop_forward_leftovers(my, names, lock_timeout).await?;
    // The application writes the table: its lock is asked for without queueing first (crate::mdl).
    let (mut c, swapped) = mdl::take_without_queueing(my.conn().await?, &q::rename_swap_back(names), lock_timeout).await;
    let blocked = swapped.map_err(|e| errors::db("swapping the tables back", e))?;
    c.exec_drop(q::set_phase(names), (Phase::Failed.to_string(),)).await.map_err(|e| errors::db("recording the revert", e))?;
    if let Some(why) = broken(state(my, names).await?) {
        return Err(Error::refused(format!(
            "{} was swapped back, but a write in the moment before the swap could not be carried back ({why}); the new \
             table is kept as {}: compare the two and copy what is missing",
            names.table, names.shadow
        )));
    }
    Ok(blocked)
}

/// After the swap back: the new table (now `_<t>_new`, its reverse triggers go with it) and the
/// checkpoint.
pub(crate) async fn cleanup_after_revert(my: &MySql, names: &Names, lock_timeout: Duration) -> Result<()> {
    let mut c = my.conn().await?;
    for t in [&names.shadow, &names.checkpoint] {
        ddl(&mut c, "dropping the new table after the revert", &q::drop_table_if_exists(t), lock_timeout).await?;
    }
    Ok(())
}

/// `shadowswap finish`: forward leftovers, the reverse triggers on the table (all three at once
/// under its lock), then the old table and the checkpoint.
pub(crate) async fn finish(my: &MySql, names: &Names, lock_timeout: Duration) -> Result<()> {
    drop_forward_leftovers(my, names, lock_timeout).await?;
    let present = reverse_triggers_present(my, names).await?;
    let mut tables: Vec<&str> = present.iter().map(|(_, t)| t.as_str()).collect();
    tables.dedup();
    for t in tables {
        trigger_ddl_locked(
            my,
            "dropping the reverse capture triggers",
            &names.table.sibling(t.to_string()),
            &q::drop_reverse_triggers(names),
            lock_timeout,
            None,
        )
        .await?;
    }
    let mut c = my.conn().await?;
    for t in [&names.old, &names.checkpoint] {
        ddl(&mut c, "closing the revert window", &q::drop_table_if_exists(t), lock_timeout).await?;
    }
    Ok(())
}

/// What `revert` runs, for its dry run.
pub(crate) fn swap_back_sql(names: &Names) -> Vec<String> {
    let mut out = vec![q::rename_swap_back(names)];
    out.push(q::drop_table_if_exists(&names.shadow));
    out.push(q::drop_table_if_exists(&names.checkpoint));
    out
}

/// What `finish` runs, for its dry run.
pub(crate) fn finish_sql(names: &Names) -> Vec<String> {
    let mut out = vec![sql::capture::lock_table_write(&names.table)];
    out.extend(q::drop_reverse_triggers(names));
    out.push(sql::capture::UNLOCK_TABLES.to_string());
    out.push(q::drop_table_if_exists(&names.old));
    out.push(q::drop_table_if_exists(&names.checkpoint));
    out
}

/// The window's SQL for the `alter` dry run: the placeholders, the reverse triggers, the swap.
pub(crate) fn window_sql(plan: &Plan) -> Vec<String> {
    let mut out: Vec<String> = q::create_placeholders(&plan.names).to_vec();
    out.extend(q::reverse_triggers(plan));
    out.push(q::rename_swap_with_revert(&plan.names));
    out
}
