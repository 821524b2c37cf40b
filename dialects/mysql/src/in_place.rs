//! The `--attempt-instant-ddl` path on MariaDB: the ALTER applied to the table itself with
//! `ALGORITHM=INSTANT` ([`crate::sql::in_place`]); the server judges, and refuses without
//! changing anything what it cannot do as a catalog change. MariaDB cannot tell beforehand
//! without DDL of its own, so `metadata_only` stays "cannot tell" and this tells by trying.

use std::time::Duration;

use mysql_async::prelude::Queryable;
use shadowswap_engine::alter::AlterAnalysis;
use shadowswap_engine::error::Result;
use shadowswap_engine::names::Names;

use crate::connect::whole_seconds;
use crate::{errors, sql, MySql};

/// Apply the ALTER in place if the server can do it instantly: `Ok(true)` when applied,
/// `Ok(false)` when the server refused `ALGORITHM=INSTANT` (nothing changed). Errors: a lock
/// wait timeout (retryable), anything else the server says.
pub(crate) async fn alter_in_place(my: &MySql, names: &Names, alter: &AlterAnalysis, lock_timeout: Duration) -> Result<bool> {
    let mut c = my.conn().await?;
    let stmt = sql::in_place::alter_instant(&names.table, alter, whole_seconds(lock_timeout));
    match c.query_drop(stmt).await {
        Ok(()) => Ok(true),
        Err(e) if errors::code(&e).is_some_and(|code| errors::ALTER_NOT_SUPPORTED.contains(&code)) => {
            tracing::info!(reason = %errors::db("ALGORITHM=INSTANT", e), "the server cannot apply the ALTER instantly");
            Ok(false)
        }
        Err(e) => Err(errors::db("applying the ALTER in place", e)),
    }
}
