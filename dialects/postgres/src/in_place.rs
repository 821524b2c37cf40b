//! The metadata-only path (`--attempt-instant-ddl`): whether the server applies the ALTER
//! without a rewrite or a scan (`metadata_only`, asked on a scratch copy in a transaction that
//! is rolled back), and applying it to the table itself (`alter_in_place`).

use std::time::Duration;

use shadowswap_engine::alter::AlterAnalysis;
use shadowswap_engine::error::Result;
use shadowswap_engine::names::Names;

use crate::sql::connect::set_lock_timeout;
use crate::sql::shadow::{alter_table, create_like};
use crate::sql::trial::{RELFILENODES, TRIAL_LOCK_WAIT};
use crate::sql::Qualified;
use crate::{alter, errors, owner, Postgres};

/// Whether the ALTER is metadata-only: every clause may be ([`alter::may_be_metadata_only`]) and,
/// on a scratch copy, it gives neither the table nor any of its indexes a new relfilenode (a
/// rewrite) nor adds an index. An ALTER the copy rejects is not. Creates nothing.
pub(crate) async fn metadata_only(pg: &Postgres, names: &Names, alter: &AlterAnalysis) -> Result<Option<bool>> {
    if !alter::may_be_metadata_only(alter) {
        return Ok(Some(false));
    }
    let trial = names.table.sibling(names.trial.clone());
    let q = Qualified(&trial).to_string();
    let ctx = "checking whether the ALTER is metadata-only";
    let mut c = pg.client().await?;
    let tx = c.transaction().await.map_err(|e| errors::db(ctx, e))?;
    tx.batch_execute(&set_lock_timeout(TRIAL_LOCK_WAIT)).await.map_err(|e| errors::db(ctx, e))?;
    let owner = owner::enter(&tx, &names.table).await.map_err(|e| errors::db(ctx, e))?;
    owner::exec(&tx, owner, &create_like(&trial, &names.table), &[], None).await.map_err(|e| errors::db(ctx, e))?;
    let read = |rows: Vec<tokio_postgres::Row>| rows.iter().map(|r| (r.get::<_, i64>(0), r.get::<_, i64>(1))).collect::<Vec<_>>();
    let before = read(tx.query(RELFILENODES, &[&q]).await.map_err(|e| errors::db(ctx, e))?);
    let altered = owner::exec(&tx, owner, &alter_table(&trial, &alter.spec), &[], Some(&pg.user_search_path)).await;
    let after = match altered {
        Ok(_) => Some(read(tx.query(RELFILENODES, &[&q]).await.map_err(|e| errors::db(ctx, e))?)),
        Err(_) => None,
    };
    tx.rollback().await.map_err(|e| errors::db(ctx, e))?;
    Ok(Some(after.is_some_and(|after| after.iter().all(|f| before.contains(f)))))
}

/// Applies the ALTER to the table itself, as its owner (a rewrite evaluates the table's
/// defaults, CHECKs and index expressions), waiting at most `lock_timeout` for its lock.
pub(crate) async fn alter_in_place(pg: &Postgres, names: &Names, alter: &AlterAnalysis, lock_timeout: Duration) -> Result<()> {
    let ctx = "altering the table in place";
    let mut c = pg.client().await?;
    let tx = c.transaction().await.map_err(|e| errors::db(ctx, e))?;
    tx.batch_execute(&set_lock_timeout(lock_timeout)).await.map_err(|e| errors::db(ctx, e))?;
    let owner = owner::enter(&tx, &names.table).await.map_err(|e| errors::db(ctx, e))?;
    owner::exec(&tx, owner, &alter_table(&names.table, &alter.spec), &[], Some(&pg.user_search_path))
        .await
        .map_err(|e| errors::db(ctx, e))?;
    owner::leave(&tx).await.map_err(|e| errors::db(ctx, e))?;
    tx.commit().await.map_err(|e| errors::db(ctx, e))
}
