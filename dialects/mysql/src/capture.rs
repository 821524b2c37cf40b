//! Change capture: installing the three capture triggers ([`crate::sql::capture`]) under a
//! short `LOCK TABLES … WRITE`, recording the table's identity at that moment ([`identity`]),
//! and finding and dropping them again (on the table, or after the swap on the old table).

use std::time::Duration;

use mysql_async::prelude::Queryable;
use shadowswap_engine::error::Result;
use shadowswap_engine::model::TableRef;
use shadowswap_engine::names::Names;
use shadowswap_engine::plan::Plan;

use crate::connect::whole_seconds;
use crate::{checkpoint, errors, identity, mdl, sql, MySql};

/// Create the capture triggers, each statement waiting at most `lock_timeout` for its lock, and
/// record the table's identity under the same lock for the checks before the swap (in memory
/// and in the checkpoint's `capture_identity`, [`checkpoint::record_identity`]).
///
/// A retry starts from scratch: no trigger, and an empty shadow, since a failed attempt may have
/// left some of the triggers working for a while (the backfill has not started, so the shadow
/// holds only what they wrote).
pub(crate) async fn install_capture(my: &MySql, plan: &Plan, lock_timeout: Duration) -> Result<()> {
    remove_capture(my, &plan.names, lock_timeout).await?;
    let mut c = my.conn().await?;
    c.query_drop(sql::capture::empty_shadow(plan)).await.map_err(|e| errors::db("emptying the shadow table", e))?;
    drop(c);
    let stmts = sql::capture::capture_triggers(plan);
    let id = trigger_ddl_locked(my, "creating the capture triggers", &plan.names.table, &stmts, lock_timeout, Some(&plan.names))
        .await?;
    if let Some(id) = id {
        // Persisted too, so a resumed run compares with the identity the capture started with.
        checkpoint::record_identity(my, &plan.names, &id).await?;
        my.captured.lock().expect("identity map").insert(plan.names.table.clone(), id);
    }
    Ok(())
}

/// Drop the capture triggers wherever they are: on the table before the swap, on the old table
/// after it. Idempotent.
pub(crate) async fn remove_capture(my: &MySql, names: &Names, lock_timeout: Duration) -> Result<()> {
    let [a, b, c] = names.triggers();
    let mut conn = my.conn().await?;
    let found: Vec<(String, String)> = conn
        .exec(sql::capture::CAPTURE_TRIGGER_TABLES, (&names.table.schema, a, b, c))
        .await
        .map_err(|e| errors::db("listing capture triggers", e))?;
    drop(conn);
    let mut tables: Vec<&str> = found.iter().map(|(_, t)| t.as_str()).collect();
    tables.dedup();
    for t in tables {
        let stmts: Vec<String> =
            found.iter().filter(|(_, on)| on == t).map(|(name, _)| sql::capture::drop_trigger(&names.table, name)).collect();
        trigger_ddl_locked(my, "dropping the capture triggers", &names.table.sibling(t.to_string()), &stmts, lock_timeout, None)
            .await?;
    }
    Ok(())
}

/// Names of the capture triggers that exist now.
pub(crate) async fn capture_present(my: &MySql, names: &Names) -> Result<Vec<String>> {
    let [a, b, c] = names.triggers();
    my.strings(
        "listing capture triggers",
        sql::capture::CAPTURE_TRIGGER_NAMES,
        vec![names.table.schema.clone().into(), a.into(), b.into(), c.into()],
    )
    .await
}

/// Run trigger DDL `stmts` on `table` inside `LOCK TABLES table WRITE … UNLOCK TABLES`, so
/// the application's statements see the table's set of triggers change in one step.
///
/// Why: MariaDB (MDEV-26048, seen on 10.11) does not notice, in a prepared statement or a
/// stored routine, that a trigger was added to (or dropped from) a table that already had
/// triggers for other events; its next execution runs the new trigger without having opened
/// the trigger's tables and fails with "Table '…_new' doesn't exist" (1146). Created one at a
/// time, the insert, update and delete triggers made about one in three migrations under
/// prepared-statement writers fail application statements (integration/tests/mysql/concurrency.rs).
/// Under the lock, the table goes from no capture trigger to all three (and back) at once,
/// which the server does handle. The lock is held for milliseconds and is released on every path
/// (closing the session releases it too). It is taken without queueing the application behind it
/// while that succeeds within `lock_timeout`, then waiting at most `lock_timeout` ([`mdl`]).
///
/// With `identity_of`, also reads the table's [`identity::Identity`] under that lock, after
/// the statements: the table the capture triggers start following.
pub(crate) async fn trigger_ddl_locked(
    my: &MySql,
    context: &str,
    table: &TableRef,
    stmts: &[String],
    lock_timeout: Duration,
    identity_of: Option<&Names>,
) -> Result<Option<identity::Identity>> {
    let secs = whole_seconds(lock_timeout);
    let (mut c, locked) =
        mdl::take_without_queueing(my.conn().await?, &sql::capture::lock_table_write(table), lock_timeout).await;
    locked.map_err(|e| errors::db(context, e))?;
    let mut result = Ok(None);
    for stmt in stmts {
        if let Err(e) = c.query_drop(sql::with_lock_timeout(secs, stmt)).await {
            result = Err(errors::db(context, e));
            break;
        }
    }
    if let (Ok(_), Some(names)) = (&result, identity_of) {
        result = identity::Identity::read(&mut c, table, names).await.map(Some).map_err(|e| errors::db(context, e));
    }
    if let Err(e) = c.query_drop(sql::capture::UNLOCK_TABLES).await {
        let _ = c.disconnect().await;
        return result.and(Err(errors::db(context, e)));
    }
    result
}
