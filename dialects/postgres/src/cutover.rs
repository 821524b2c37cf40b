//! The cut-over: `ANALYZE` of the shadow before it (`prepare_cut_over`), the check that
//! nothing changed behind the capture's back (`verify_unchanged`), the swap transaction
//! (`cut_over`), and the work after it (`after_cut_over`: subscriptions refreshed, foreign
//! keys validated).
//!
//! The swap runs, in one transaction under a short `lock_timeout`: the locks; the refusals and
//! the check again, under the lock; [`crate::deps::read_deps`]; the statements of the pure
//! [`crate::sql::cutover::swap`] (the renames, and everything bound to the table's OID carried
//! over to the new table); then the generated constraint names and the ACLs, each read after
//! the renames. On any error it rolls back: the original keeps serving, unchanged.

use std::time::Duration;

use shadowswap_engine::error::Result;
use shadowswap_engine::model::TableRef;
use shadowswap_engine::plan::Plan;
use shadowswap_engine::Error;
use tokio_postgres::types::Type;
use tokio_postgres::{GenericClient, Transaction};

use crate::connect::text_params;
use crate::sql::acl::{self, AclEntry};
use crate::sql::capture::{capture_triggers, CAPTURE_TRIGGERS_ENABLED};
use crate::sql::cutover as q;
use crate::sql::inspect::CONSTRAINT_NAMES;
use crate::sql::owner::OWNER_OF;
use crate::sql::{Qualified, ServerQuoted};
use crate::{deps, errors, generated_names, inspect, preflight, Postgres};

/// `ANALYZE` the shadow, so the planner has statistics the moment it becomes the table.
pub(crate) async fn prepare_cut_over(pg: &Postgres, plan: &Plan) -> Result<()> {
    let c = pg.client().await?;
    c.batch_execute(&q::analyze(&plan.names.shadow)).await.map_err(|e| errors::db("analyzing the shadow table", e))
}

/// [`verify_unchanged`] on a session of its own, for an early error before the swap.
pub(crate) async fn verify_before_cut_over(pg: &Postgres, plan: &Plan) -> Result<()> {
    let c = pg.client().await?;
    verify_unchanged(&**c, plan).await
}

/// The check before the swap: the table still has the columns and indexes the plan was made
/// from, and all four capture triggers are present and fire in every session role
/// (`tgenabled = 'A'`, see [`crate::sql::capture::capture_triggers`]). Run by the swap
/// transaction under its `ACCESS EXCLUSIVE` lock, so nothing can change between the check and
/// the renames, and earlier without the lock for an early error.
///
/// Errors: [`Error::Refused`] naming what changed and what to do.
pub(crate) async fn verify_unchanged(c: &impl GenericClient, plan: &Plan) -> Result<()> {
    let n = &plan.names;
    let ctx = "checking the table before the swap";
    let now = inspect::shape_on(c, &Qualified(&n.table).to_string()).await.map_err(|e| errors::db(ctx, e))?;
    if now.columns != plan.original.columns || now.indexes != plan.original.indexes {
        return Err(Error::refused(format!(
            "{} was altered by another session during the run (its columns or indexes differ from when the run began); \
             the shadow no longer mirrors it, so the run stops without swapping: run the migration again",
            n.table
        )));
    }
    let names: Vec<String> = capture_triggers(n).to_vec();
    let table = Qualified(&n.table).to_string();
    let rows = c
        .query_typed(CAPTURE_TRIGGERS_ENABLED, &[(&table, Type::TEXT), (&names, Type::TEXT_ARRAY)])
        .await
        .map_err(|e| errors::db(ctx, e))?;
    let ok: Vec<String> = rows.iter().filter(|r| r.get::<_, String>(1) == "A").map(|r| r.get(0)).collect();
    if let Some(missing) = names.iter().find(|t| !ok.contains(t)) {
        return Err(Error::refused(format!(
            "capture trigger {missing} on {} was dropped or disabled during the run, so writes may have missed the shadow; \
             the run stops without swapping: run the migration again",
            n.table
        )));
    }
    Ok(())
}

/// The swap transaction (see the module docs), waiting at most `lock_timeout` for each lock.
/// On any error it rolls back: the original keeps serving under its name. Returns its wall
/// time, lock waits included: how long the application's writes were blocked.
pub(crate) async fn cut_over(pg: &Postgres, plan: &Plan, lock_timeout: Duration) -> Result<Duration> {
    swap_transaction(pg, plan, lock_timeout, SwapKind::Plain).await
}

/// Which swap [`swap_transaction`] runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SwapKind {
    /// The cut-over.
    Plain,
    /// The cut-over of a run with a revert window: the reverse capture is created, and the
    /// checkpoint's phase set, in the same transaction ([`crate::revert`]).
    WithRevertWindow,
    /// `shadowswap revert`: the same swap with the roles flipped (`plan` from
    /// [`crate::sql::revert::reverse_plan`]); refuses under the lock when the reverse capture
    /// recorded a failure, and first moves aside `_<t>_old`'s names that the new table's would
    /// move to ([`crate::revert::clear_the_way`]).
    Back,
}

/// The swap transaction (see the module docs) of `kind`, waiting at most `lock_timeout` for each
/// lock. On any error it rolls back: the table keeps serving as it was. Returns its wall time,
/// from `BEGIN` to the end of `COMMIT`, lock waits included: how long the application's writes
/// were blocked.
pub(crate) async fn swap_transaction(pg: &Postgres, plan: &Plan, lock_timeout: Duration, kind: SwapKind) -> Result<Duration> {
    let n = &plan.names;
    let ctx = "swapping the tables";
    let e = |e| errors::db(ctx, e);
    let mut c = pg.client().await?;
    let t0 = std::time::Instant::now();
    let tx = c.transaction().await.map_err(e)?;
    tx.batch_execute(&q::begin_swap(n, lock_timeout)).await.map_err(e)?;
    if kind == SwapKind::Back {
        // Under the lock no write reaches the reverse capture: what it recorded is final.
        crate::revert::refuse_if_broken(&*tx, n).await?;
    }
    // Dependents created since the preflight: refuse under the lock rather than leave one bound
    // to the old table (the transaction rolls back; the original keeps serving).
    preflight::refuse_unhandled(&*tx, n).await?;
    // DDL on the table, or a capture trigger dropped or disabled, since the preflight: the shadow
    // no longer mirrors the table; refuse under the lock (the transaction rolls back).
    verify_unchanged(&*tx, plan).await?;
    if kind == SwapKind::Back {
        crate::revert::clear_the_way(&tx, n).await?;
    }
    let deps = deps::read_deps(&tx, plan).await?;
    for s in q::swap(plan, &deps) {
        tracing::debug!(sql = %s, "cut-over");
        tx.batch_execute(&s).await.map_err(|err| errors::db_running_if_fatal(ctx, &s, err))?;
    }
    // Constraints the ALTER created without a name carry names generated for the shadow
    // (`_t_new_c2_key`): give each the name a plain ALTER on the table would have given it
    // (`t_c2_key`), chosen now that the old table's names moved aside and the new table's took
    // the original names, as PostgreSQL would (in creation order, checked against the schema).
    let t = Qualified(&n.table).to_string();
    let old_names: Vec<String> = tx
        .query_typed(CONSTRAINT_NAMES, &text_params(&[Qualified(&n.old).to_string()]))
        .await
        .map_err(e)?
        .iter()
        .map(|r| r.get(0))
        .collect();
    for (generated, chosen) in
        generated_names::final_constraint_names(&*tx, &t, &n.shadow.name, &n.table.name, &old_names, None).await.map_err(e)?
    {
        let s = q::rename_constraint(&n.table, &generated, &chosen);
        tracing::debug!(sql = %s, "cut-over");
        tx.batch_execute(&s).await.map_err(|err| errors::db_running(ctx, &s, err))?;
    }
    // Privileges last, once the owner is set: the new table's and its columns' ACLs become
    // exactly the original's.
    for s in acl_statements(&tx, plan).await? {
        tracing::debug!(sql = %s, "cut-over");
        tx.batch_execute(&s).await.map_err(|err| errors::db_running(ctx, &s, err))?;
    }
    for s in crate::revert::in_swap(plan, kind) {
        tracing::debug!(sql = %s, "cut-over");
        tx.batch_execute(&s).await.map_err(|err| errors::db_running(ctx, &s, err))?;
    }
    tx.commit().await.map_err(e)?;
    Ok(t0.elapsed())
}

/// The ACL entries of `table` and of its columns ([`acl::ACL_ENTRIES`]).
async fn acl_entries(tx: &Transaction<'_>, table: &TableRef) -> Result<Vec<(Option<String>, AclEntry)>> {
    let rows = tx
        .query_typed(acl::ACL_ENTRIES, &text_params(&[Qualified(table).to_string()]))
        .await
        .map_err(|e| errors::db("reading the table's privileges", e))?;
    Ok(rows
        .iter()
        .map(|r| (r.get(0), AclEntry { grantor: r.get(1), grantee: r.get(2), privilege: r.get(3), grantable: r.get(4) }))
        .collect())
}

/// After the renames: reads the owner, the roles the session may act as, and the old and the
/// new table's ACLs, for [`acl::acls`].
async fn acl_statements(tx: &Transaction<'_>, plan: &Plan) -> Result<Vec<String>> {
    let n = &plan.names;
    let owner: String = tx
        .query_typed_one(OWNER_OF, &text_params(&[Qualified(&n.table).to_string()]))
        .await
        .map_err(|e| errors::db("reading the table's owner", e))?
        .get(0);
    let can_set_role: Vec<String> = tx
        .query_typed(acl::SETTABLE_ROLES, &[])
        .await
        .map_err(|e| errors::db("reading the table's privileges", e))?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let old = acl_entries(tx, &n.old).await?;
    let new = acl_entries(tx, &n.table).await?;
    Ok(acl::acls(plan, &owner, &can_set_role, &old, &new))
}

/// After a successful swap: refresh the subscriptions ([`refresh_subscriptions`]) and validate
/// the foreign keys re-added `NOT VALID` ([`validate_foreign_keys`]); a failed refresh is
/// returned after the validation ran.
pub(crate) async fn after_cut_over(pg: &Postgres, plan: &Plan) -> Result<()> {
    let c = pg.client().await?;
    let refreshed = refresh_subscriptions(&**c, plan).await;
    validate_foreign_keys(&**c, plan).await?;
    refreshed
}

/// Re-registers the new table with every subscription that replicated into the old one (see
/// [`crate::preflight`]'s subscription refusals). Errors name the statement to run.
pub(crate) async fn refresh_subscriptions(c: &impl GenericClient, plan: &Plan) -> Result<()> {
    let subs = preflight::subscriptions_of(c, &plan.names.old)
        .await
        .map_err(|e| errors::db("looking for subscriptions of the old table", e))?;
    for (sub, _, _) in subs {
        let stmt = q::refresh_subscription(&sub);
        c.batch_execute(&stmt).await.map_err(|e| {
            Error::refused(format!(
                "subscription {sub} still names {} (now the old table): {}; run {stmt} now, or its changes to {} \
                 are skipped once its apply worker restarts",
                plan.names.old,
                errors::message(&e),
                plan.names.table
            ))
        })?;
    }
    Ok(())
}

/// Validates the foreign keys from other tables that the swap re-added `NOT VALID` (a scan
/// under `SHARE UPDATE EXCLUSIVE`, which blocks no reads or writes). Outside the swap's
/// measured time. A failure is a warning: the constraint still holds for new rows.
pub(crate) async fn validate_foreign_keys(c: &impl GenericClient, plan: &Plan) -> Result<()> {
    let rows = c
        .query(q::FOREIGN_KEYS_TO_VALIDATE, &[&Qualified(&plan.names.table).to_string()])
        .await
        .map_err(|e| errors::db("listing foreign keys to validate", e))?;
    for r in rows {
        let (child, name): (ServerQuoted, String) = (r.get(0), r.get(1));
        if let Err(err) = c.batch_execute(&q::validate_constraint(&child, &name)).await {
            tracing::warn!(constraint = %name, table = %child, error = %errors::message(&err), "foreign key re-added NOT VALID; validate it later");
        }
    }
    Ok(())
}
