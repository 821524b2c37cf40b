//! The shadow table: created like the table by its owner, given what `LIKE` does not copy
//! (`prepare_shadow`), altered with the user's ALTER, given the table's validated outgoing
//! foreign keys and storage parameters (`copy_outgoing_foreign_keys`), all in one
//! transaction; and dropped again (`drop_table`). The statements are
//! [`crate::sql::shadow`]'s, the same the dry run prints.

use std::time::Duration;

use shadowswap_engine::error::Result;
use shadowswap_engine::model::TableRef;
use shadowswap_engine::plan::Plan;
use tokio_postgres::Transaction;

use crate::sql::connect::set_lock_timeout;
use crate::sql::shadow as q;
use crate::sql::{Qualified, ServerQuoted};
use crate::{errors, owner, preflight, Postgres};

/// Creates the shadow table with the ALTER applied, after the refusals that need the plan
/// ([`preflight::refuse_lost_column_dependents`], [`preflight::refuse_not_valid_conflicts`]).
/// Waits at most `lock_timeout` for each lock. Errors: [`shadowswap_engine::Error::AlterRejected`]
/// when the server rejects the ALTER on the shadow.
pub(crate) async fn create_shadow(pg: &Postgres, plan: &Plan, lock_timeout: Duration) -> Result<()> {
    let n = &plan.names;
    let ctx = format!("creating {}", n.shadow);
    let mut c = pg.client().await?;
    preflight::refuse_lost_column_dependents(&**c, plan).await?;
    preflight::refuse_not_valid_conflicts(&**c, plan).await?;
    let tx = c.transaction().await.map_err(|e| errors::db(&ctx, e))?;
    tx.batch_execute(&set_lock_timeout(lock_timeout)).await.map_err(|e| errors::db(&ctx, e))?;
    tx.batch_execute(&q::drop_table(&n.shadow)).await.map_err(|e| errors::db(&ctx, e))?;
    // The shadow is the owner's (so the owner's default privileges, not shadowswap's role's,
    // apply, and its expressions run as the owner), and so is the ALTER on it.
    let [create, alter] = q::outline(plan);
    let owner = owner::enter(&tx, &n.table).await.map_err(|e| errors::db(&ctx, e))?;
    owner::exec(&tx, owner, &create, &[], None).await.map_err(|e| errors::db(&ctx, e))?;
    prepare_shadow(&tx, plan).await?;
    owner::exec(&tx, owner, &alter, &[], Some(&pg.user_search_path))
        .await
        .map_err(|e| errors::alter_rejected_unless_lock_timeout(&ctx, e))?;
    owner::leave(&tx).await.map_err(|e| errors::db(&ctx, e))?;
    copy_outgoing_foreign_keys(&tx, plan).await?;
    tx.commit().await.map_err(|e| errors::db(&ctx, e))
}

/// Gives the shadow, right after `CREATE TABLE … (LIKE … INCLUDING ALL)` and before the user's
/// ALTER, what `LIKE` does not copy or copies wrongly ([`q::Settings`], [`q::prepare`]).
async fn prepare_shadow(tx: &Transaction<'_>, plan: &Plan) -> Result<()> {
    let ctx = "giving the shadow table the original's settings";
    let e = |e| errors::db(ctx, e);
    let t = Qualified(&plan.names.table).to_string();
    let columns = tx.query(q::COLUMN_SETTINGS, &[&t]).await.map_err(e)?.iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect();
    let row = tx.query_one(q::TOAST_OPTIONS_AND_TABLESPACE, &[&t]).await.map_err(e)?;
    let not_valid_checks = tx.query(q::NOT_VALID_CHECKS, &[&t]).await.map_err(e)?.iter().map(|r| r.get(0)).collect();
    let settings = q::Settings { columns, toast: row.get(0), tablespace: row.get(1), not_valid_checks };
    for s in q::prepare(&plan.names.shadow, &settings) {
        tracing::debug!(sql = %s, "shadow");
        tx.batch_execute(&s).await.map_err(e)?;
    }
    Ok(())
}

/// Adds the original table's storage parameters and validated foreign keys (to other tables)
/// to the shadow, with their names ([`q::outgoing_foreign_keys`]); read with
/// `search_path = pg_catalog`, so the definitions name their tables schema-qualified.
/// `NOT VALID` ones are left to the swap ([`crate::deps`]): on the shadow they would check the
/// old rows the copy inserts, which the original never checked.
async fn copy_outgoing_foreign_keys(tx: &Transaction<'_>, plan: &Plan) -> Result<()> {
    let ctx = "copying foreign keys to the shadow table";
    let e = |e| errors::db(ctx, e);
    tx.batch_execute(q::CATALOG_SEARCH_PATH).await.map_err(e)?;
    let t = Qualified(&plan.names.table).to_string();
    let fks: Vec<(String, ServerQuoted)> =
        tx.query(q::OUTGOING_FOREIGN_KEYS, &[&t]).await.map_err(e)?.iter().map(|r| (r.get(0), r.get(1))).collect();
    let options: Vec<String> = tx.query_one(q::TABLE_OPTIONS, &[&t]).await.map_err(e)?.get(0);
    for s in q::outgoing_foreign_keys(&plan.names.shadow, &options, &fks) {
        tx.batch_execute(&s).await.map_err(e)?;
    }
    tx.batch_execute(q::RESET_SEARCH_PATH).await.map_err(e)
}

/// `DROP TABLE IF EXISTS`, waiting at most `lock_timeout` for its lock. Idempotent.
pub(crate) async fn drop_table(pg: &Postgres, table: &TableRef, lock_timeout: Duration) -> Result<()> {
    pg.ddl(&format!("dropping {table}"), &[q::drop_table(table)], lock_timeout).await
}
