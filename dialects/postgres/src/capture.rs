//! Change capture: installing the four capture triggers (as the table's owner, in one
//! transaction), removing them wherever they are, and listing those that exist. The statements
//! are [`crate::sql::capture`]'s, the same the dry run prints.

use std::time::Duration;

use shadowswap_engine::error::Result;
use shadowswap_engine::names::Names;
use shadowswap_engine::plan::Plan;

use crate::sql::capture as q;
use crate::sql::checkpoint as qc;
use crate::sql::connect::set_lock_timeout;
use crate::sql::Qualified;
use crate::{errors, inspect, owner, Postgres};

/// Creates the capture triggers (each statement waits at most `lock_timeout` for its lock), all
/// together or none, and records their identity in the checkpoint (see
/// [`crate::sql::checkpoint::capture_identity`]) in the same transaction.
pub(crate) async fn install_capture(pg: &Postgres, plan: &Plan, lock_timeout: Duration) -> Result<()> {
    let ctx = "installing the capture triggers";
    let mut c = pg.client().await?;
    // Created by the owner: the SECURITY DEFINER capture functions then run as the owner (and
    // the shadow's expressions they evaluate with them), never as shadowswap's role. Creating
    // a function or a trigger evaluates none of the table's code.
    let owner = owner::owner_of(&**c, &plan.names.table).await.map_err(|e| errors::db(ctx, e))?;
    let always = inspect::always_identity(&**c, &plan.names.shadow).await.map_err(|e| errors::db(ctx, e))?;
    let key_eq = inspect::key_equality(&**c, plan).await?;
    let stmts = q::install(plan, &owner, &always, &key_eq, crate::sql::quote_seed());
    // One transaction: the triggers exist (and fire in every session_replication_role) all
    // together or not at all. Each statement goes through the extended protocol, which
    // runs exactly one statement: nothing in a statement's text can start another.
    let tx = c.transaction().await.map_err(|e| errors::db(ctx, e))?;
    tx.batch_execute(&set_lock_timeout(lock_timeout)).await.map_err(|e| errors::db(ctx, e))?;
    for s in &stmts {
        tx.execute(s.as_str(), &[]).await.map_err(|e| errors::db(ctx, e))?;
    }
    // The capture's identity, in the checkpoint when there is one (the run writes it before
    // installing), committed with the triggers: back in the session's own role for it.
    tx.batch_execute(crate::sql::owner::RESET_ROLE).await.map_err(|e| errors::db(ctx, e))?;
    let ckpt = Qualified(&plan.names.checkpoint).to_string();
    if tx.query_one(qc::RELATION_EXISTS, &[&ckpt]).await.map_err(|e| errors::db(ctx, e))?.get::<_, bool>(0) {
        let identity = crate::checkpoint::capture_identity_now(&*tx, plan).await?;
        tx.execute(&qc::set_capture_identity(&plan.names.checkpoint), &[&identity]).await.map_err(|e| errors::db(ctx, e))?;
    }
    tx.commit().await.map_err(|e| errors::db(ctx, e))
}

/// Drops the capture triggers and functions if they exist: on the table, or on the old table
/// after a swap; functions by name. Idempotent.
pub(crate) async fn remove_capture(pg: &Postgres, names: &Names, lock_timeout: Duration) -> Result<()> {
    let mut present_on = Vec::new();
    for on in [&names.table, &names.old] {
        if inspect::table_exists(pg, on).await? {
            present_on.push(on);
        }
    }
    pg.ddl("dropping the capture triggers", &q::remove(names, &present_on), lock_timeout).await
}

/// Names of the capture functions (one per trigger) that exist now.
pub(crate) async fn capture_present(pg: &Postgres, names: &Names) -> Result<Vec<String>> {
    let c = pg.client().await?;
    let triggers: Vec<String> = q::capture_triggers(names).into();
    let rows = c
        .query(q::CAPTURE_FUNCTIONS, &[&names.table.schema, &triggers])
        .await
        .map_err(|e| errors::db("listing capture triggers", e))?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}
