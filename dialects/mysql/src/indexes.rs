//! The shadow's deferred secondary indexes ([`crate::sql::indexes`] decides which and builds the
//! statements): dropped right after the shadow is created, while it is empty and unused, and
//! built again in bulk after the backfill (phase `build indexes`), online, each attempt waiting at
//! most the cut-over's lock timeout for its metadata locks.
//!
//! Nothing is recorded: which indexes are deferred follows from the definition the ALTER gives
//! the shadow (a temporary copy of the table altered the same way, as the resume check makes it),
//! so a resumed process knows it too.

use std::time::Duration;

use mysql_async::prelude::Queryable;
use mysql_async::Conn;
use shadowswap_engine::error::Result;
use shadowswap_engine::model::TableRef;
use shadowswap_engine::plan::Plan;
use shadowswap_engine::Error;

use crate::connect::whole_seconds;
use crate::{errors, sql, MySql};

/// `SHOW CREATE TABLE` of `table`, as the server prints it (empty when it returned no row).
pub(crate) async fn show_create(c: &mut Conn, table: &TableRef) -> mysql_async::Result<String> {
    let ddl: Option<(Vec<u8>, Vec<u8>)> = c.query_first(sql::inspect::show_create_table(table)).await?;
    Ok(String::from_utf8_lossy(&ddl.map(|(_, d)| d).unwrap_or_default()).into_owned())
}

/// `SHOW CREATE TABLE` of the table as the ALTER makes it, with every index: a session-private
/// temporary copy of the table now, altered exactly as the shadow was, then dropped again.
pub(crate) async fn expected_definition(c: &mut Conn, plan: &Plan) -> mysql_async::Result<String> {
    let n = &plan.names;
    let trial = sql::preflight::trial_table(n);
    c.query_drop(sql::preflight::drop_temporary_table(&trial)).await?;
    c.query_drop(sql::preflight::create_trial_copy(n)).await?;
    let want = match c.query_drop(sql::preflight::alter_trial_copy(n, &plan.analysis)).await {
        Ok(()) => show_create(c, &trial).await,
        Err(e) => Err(e),
    };
    let _ = c.query_drop(sql::preflight::drop_temporary_table(&trial)).await;
    want
}

/// Right after the shadow was created and altered (still empty, nothing uses it yet): drop the
/// indexes [`sql::indexes::split`] defers, read from the shadow's own definition. Instant.
pub(crate) async fn drop_deferred(c: &mut Conn, plan: &Plan, context: &str) -> Result<()> {
    let n = &plan.names;
    let ddl = show_create(c, &n.shadow).await.map_err(|e| errors::db(context, e))?;
    let split = sql::indexes::split(&ddl);
    if let Some(drop) = sql::indexes::drop_deferred(&n.shadow, &split.deferred) {
        let names: Vec<&str> = split.deferred.iter().map(|d| d.name.as_str()).collect();
        tracing::info!(indexes = %names.join(", "), "the shadow's plain secondary indexes are built after the backfill");
        c.query_drop(drop).await.map_err(|e| errors::db(context, e))?;
    }
    Ok(())
}

/// Phase `build indexes`: add the deferred indexes to the shadow in one online
/// `ALTER TABLE … ALGORITHM=INPLACE, LOCK=NONE` under `lock_wait_timeout = lock_timeout`
/// (rounded up to whole seconds). Does nothing when nothing is deferred or the shadow has them
/// already (a resumed run). Errors: a lock wait timeout (retryable; the failed attempt changed
/// nothing); [`Error::Refused`] when the shadow has neither the definition without the deferred
/// indexes nor the full one.
pub(crate) async fn build(my: &MySql, plan: &Plan, lock_timeout: Duration) -> Result<()> {
    let n = &plan.names;
    let ctx = format!("building the secondary indexes of {}", n.shadow);
    let mut c = my.conn().await?;
    let want = expected_definition(&mut c, plan).await.map_err(|e| errors::db(&ctx, e))?;
    let split = sql::indexes::split(&want);
    let Some(add) = sql::indexes::add_deferred(&n.shadow, &split.deferred) else { return Ok(()) };
    let have = show_create(&mut c, &n.shadow).await.map_err(|e| errors::db(&ctx, e))?;
    let norm = sql::identity::normalized_definition;
    if norm(&have) == norm(&want) {
        return Ok(());
    }
    if norm(&have) != norm(&split.without) {
        return Err(Error::refused(format!(
            "the shadow table {} does not have the definition this ALTER gives it (with or without its plain \
             secondary indexes); run `shadowswap cleanup` for {} and start again",
            n.shadow, n.table
        )));
    }
    c.query_drop(sql::with_lock_timeout(whole_seconds(lock_timeout), &add)).await.map_err(|e| errors::db(&ctx, e))
}
