//! The `--attempt-instant-ddl` path on MariaDB: the ALTER applied to the table itself with
//! `ALGORITHM=INSTANT` ([`crate::sql::in_place`]); the server judges, and refuses without
//! changing anything what it cannot do as a catalog change. MariaDB cannot tell beforehand
//! without DDL of its own, so `metadata_only` stays "cannot tell" and this tells by trying.

use std::time::Duration;

use shadowswap_engine::alter::AlterAnalysis;
use shadowswap_engine::error::Result;
use shadowswap_engine::names::Names;

use crate::{errors, mdl, sql, MySql};

/// Apply the ALTER in place if the server can do it instantly: `Ok(Some(blocked))` when applied
/// (application writes blocked for `blocked`, the statement that got the lock), `Ok(None)` when
/// the server refused `ALGORITHM=INSTANT` (nothing changed). The table's lock
/// is asked for without queueing first, then waited for at most `lock_timeout` ([`mdl`]).
/// Errors: a lock wait timeout (retryable), anything else the server says.
pub(crate) async fn alter_in_place(
    my: &MySql,
    names: &Names,
    alter: &AlterAnalysis,
    lock_timeout: Duration,
) -> Result<Option<Duration>> {
    // Its exclusive lock is asked for without queueing first ([`mdl`]): an ALGORITHM=INSTANT
    // change holds it for milliseconds.
    let build = |secs| sql::in_place::alter_instant(&names.table, alter, secs);
    let (_, applied) =
        mdl::take_without_queueing_as(my.conn().await?, "ALTER TABLE … ALGORITHM=INSTANT", build, lock_timeout).await;
    match applied {
        Ok(blocked) => Ok(Some(blocked)),
        Err(e) if errors::code(&e).is_some_and(|code| errors::ALTER_NOT_SUPPORTED.contains(&code)) => {
            tracing::info!(reason = %errors::db("ALGORITHM=INSTANT", e), "the server cannot apply the ALTER instantly");
            Ok(None)
        }
        Err(e) => Err(errors::db("applying the ALTER in place", e)),
    }
}
