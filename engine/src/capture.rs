//! Change capture: the AFTER INSERT/UPDATE/DELETE triggers on `<t>` that replay every change
//! into the shadow inside the writer's own transaction, from before the backfill starts until the
//! swap.
//!
//! - [`install`] creates the triggers (each DDL statement under [`DdlConfig::lock_timeout`],
//!   retried with backoff); the runner records the undo step (`Undo::capture`) first;
//! - [`verify`] checks that nothing bypassed them (a TRUNCATE, DDL on the table, the triggers
//!   dropped or replaced): after the backfill and before every cut-over attempt;
//! - [`remove`] drops them, wherever they are (on `<t>`, or after the swap on `_<t>_old`): the
//!   undo step of a failed run, and the first step of the cleanup after a swap.

use tokio_util::sync::CancellationToken;

use crate::config::DdlConfig;
use crate::dialect::Dialect;
use crate::error::Result;
use crate::names::Names;
use crate::preflight::plan::Plan;
use crate::retry::with_retry;

/// Install the capture triggers of `plan`, retried with `ddl`'s policy on lock timeouts and
/// deadlocks. The caller records the undo step before calling, so a failure halfway is undone
/// too. Errors: the last attempt's, or [`crate::Error::Cancelled`].
pub async fn install<D: Dialect>(d: &D, plan: &Plan, ddl: &DdlConfig, cancel: &CancellationToken) -> Result<()> {
    with_retry("installing capture triggers", ddl.retry_policy(), cancel, || d.install_capture(plan, ddl.lock_timeout)).await
}

/// Check that the capture has seen every change to the table since it was installed (see
/// [`Dialect::verify_before_cut_over`]). Errors: [`crate::Error::Refused`] naming what changed.
pub async fn verify<D: Dialect>(d: &D, plan: &Plan) -> Result<()> {
    d.verify_before_cut_over(plan).await
}

/// Drop the capture triggers of `names` if they exist, retried with `ddl`'s policy. Never
/// cancelled: it is what a cancelled run needs. Idempotent.
pub async fn remove<D: Dialect>(d: &D, names: &Names, ddl: &DdlConfig) -> Result<()> {
    let never = CancellationToken::new();
    with_retry("dropping capture triggers", ddl.retry_policy(), &never, || d.remove_capture(names, ddl.lock_timeout)).await
}
