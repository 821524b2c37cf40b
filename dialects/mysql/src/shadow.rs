//! The shadow table `_<t>_new`: created like the table, with the ALTER applied, its plain
//! secondary indexes dropped until after the backfill (`indexes.rs`) and the AUTO_INCREMENT
//! counter carried over ([`crate::sql::shadow`]); and `drop_table`, the undo of the shadow and
//! the cleanup of the old table.

use std::time::Duration;

use mysql_async::prelude::Queryable;
use shadowswap_engine::error::Result;
use shadowswap_engine::model::TableRef;
use shadowswap_engine::plan::Plan;
use shadowswap_engine::Error;

use crate::connect::whole_seconds;
use crate::{alter, errors, indexes, sql, MySql};

/// Create the shadow table with the ALTER applied, its `CREATE TABLE` waiting at most
/// `lock_timeout` for the table's metadata lock. Refuses first when the copy would fill a clock
/// default in another time zone than a plain ALTER would (see below).
pub(crate) async fn create_shadow(my: &MySql, plan: &Plan, lock_timeout: Duration) -> Result<()> {
    let n = &plan.names;
    let secs = whole_seconds(lock_timeout);
    let mut c = my.conn().await?;
    // The copy evaluates added defaults in the server's default zone, except when the chunk
    // key has a TIMESTAMP (its boundaries bind exactly only at UTC): then a clock default
    // would be filled in UTC, unlike a plain ALTER, unless the server's zone is UTC now.
    if sql::copy::key_has_timestamp(plan) && alter::adds_zone_dependent_default(plan) {
        let offset: Option<Option<i64>> =
            c.query_first(sql::shadow::DEFAULT_ZONE_OFFSET).await.map_err(|e| errors::db("reading the server's time zone", e))?;
        if offset.flatten() != Some(0) {
            return Err(Error::refused(format!(
                "the ALTER adds a column whose default reads the clock, and {}'s chunk key has a TIMESTAMP column: \
                 shadowswap copies such a table at UTC (the only zone where TIMESTAMP keys bind exactly), so the copy \
                 would fill that column in UTC while a plain ALTER uses the server's default time zone, which is not UTC; \
                 add that column with a plain ALTER TABLE and migrate the rest separately",
                n.table
            )));
        }
    }
    let ctx = format!("creating {}", n.shadow);
    let [create, alter] = sql::shadow::create_shadow(plan);
    c.query_drop(sql::with_lock_timeout(secs, &create)).await.map_err(|e| errors::db(&ctx, e))?;
    c.query_drop(alter).await.map_err(|e| errors::alter_rejected(&ctx, e))?;
    // Its plain secondary indexes are built after the backfill, in bulk (phase build indexes).
    indexes::drop_deferred(&mut c, plan, &ctx).await?;
    // CREATE TABLE … LIKE does not copy the AUTO_INCREMENT counter: carry it over so ids
    // freed by deletes at the top of the range are not handed out again after the swap.
    let next: Option<Option<u64>> = c
        .exec_first(sql::shadow::NEXT_AUTO_INCREMENT, (&n.table.schema, &n.table.name))
        .await
        .map_err(|e| errors::db(&ctx, e))?;
    if let Some(next) = next.flatten() {
        c.query_drop(sql::shadow::set_auto_increment(&n.shadow, next)).await.map_err(|e| errors::db(&ctx, e))?;
    }
    Ok(())
}

/// `DROP TABLE IF EXISTS table`, waiting at most `lock_timeout` for its metadata lock. Idempotent.
pub(crate) async fn drop_table(my: &MySql, table: &TableRef, lock_timeout: Duration) -> Result<()> {
    my.exec_ddl(&format!("dropping {table}"), &sql::shadow::drop_table(table), lock_timeout).await
}
