//! The cut-over: the check before it (the table is still the one the capture has been following,
//! [`identity`]) and the swap itself, `RENAME TABLE` ([`crate::sql::cutover`]), checked on both
//! sides in its own session. See docs/cut-over.md.

use std::time::Duration;

use mysql_async::Conn;
use shadowswap_engine::error::Result;
use shadowswap_engine::plan::Plan;
use shadowswap_engine::Error;

use crate::{errors, identity, mdl, sql, MySql};

/// Check that nothing changed the table behind the capture's back since the capture was
/// installed. Errors: [`Error::Refused`] saying what changed.
pub(crate) async fn verify_before_cut_over(my: &MySql, plan: &Plan) -> Result<()> {
    let mut c = my.conn().await?;
    verify_identity(my, &mut c, plan).await.map(|_| ())
}

/// The swap, checked on both sides in its own session. MariaDB refuses `RENAME TABLE` under
/// `LOCK TABLES` (error 1192), and `ALTER TABLE … RENAME` under the lock frees the name for a
/// moment (waiting sessions then fail with "doesn't exist"), so the check cannot share the
/// rename's lock: it runs immediately before the `RENAME TABLE`, and the old table the
/// rename took is checked again right after it. See docs/cut-over.md.
pub(crate) async fn cut_over(my: &MySql, plan: &Plan, lock_timeout: Duration) -> Result<Duration> {
    cut_over_with(my, plan, lock_timeout, &sql::cutover::rename_swap(plan)).await
}

/// [`cut_over`] with another swap statement `rename` (the revert window's four-way rename,
/// [`crate::sql::revert::rename_swap_with_revert`]), checked the same way.
pub(crate) async fn cut_over_with(my: &MySql, plan: &Plan, lock_timeout: Duration, rename: &str) -> Result<Duration> {
    let ctx = "swapping the tables";
    let mut c = my.conn().await?;
    let checked = verify_identity(my, &mut c, plan).await?;
    let (mut c, swapped) = mdl::take_without_queueing(c, rename, lock_timeout).await;
    let blocked = swapped.map_err(|e| errors::db(ctx, e))?;
    let Some(checked) = checked else { return Ok(blocked) };
    let n = &plan.names;
    match identity::Identity::read(&mut c, &n.old, n).await {
        Ok(old) => match checked.changed(&old) {
            None => Ok(blocked),
            Some(what) => Err(Error::refused(format!(
                "the tables were swapped, but {} {what} in the moment between the last check and the swap; \
                 {} is kept as the rename found it: compare it with {} before using either",
                n.table, n.old, n.table
            ))),
        },
        Err(e) => {
            tracing::warn!(error = %e, "could not re-read the old table after the swap");
            Ok(blocked)
        }
    }
}

/// Compare the table's identity now with the one recorded when the capture was installed
/// ([`identity`]); returns the identity read (`None` when no capture of this dialect's is
/// recorded for the table). Errors: [`Error::Refused`] saying what changed.
async fn verify_identity(my: &MySql, c: &mut Conn, plan: &Plan) -> Result<Option<identity::Identity>> {
    let n = &plan.names;
    let Some(recorded) = my.captured.lock().expect("identity map").get(&n.table).cloned() else { return Ok(None) };
    let now = identity::Identity::read(c, &n.table, n).await.map_err(|e| errors::db("checking the table before the swap", e))?;
    match recorded.changed(&now) {
        None => Ok(Some(now)),
        Some(what) => Err(Error::refused(format!(
            "{} {what}; nothing was swapped and {} is as that change left it; run the migration again",
            n.table, n.table
        ))),
    }
}
