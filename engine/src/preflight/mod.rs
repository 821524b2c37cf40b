//! Preflight: every check that changes nothing, in order, and the [`Plan`] they produce.
//!
//! 1. [`alter::analyze`] — the ALTER spec is one statement that neither renames nor moves the
//!    table; which columns it renames, drops and adds.
//! 2. [`Dialect::inspect`] — the table exists; its columns, indexes and row estimate.
//! 3. [`Dialect::preflight`] — the server's own refusals (user triggers, foreign keys, leftovers
//!    of an earlier run, table kinds it cannot migrate, privileges).
//! 4. [`Dialect::trial_alter`] — the server applies the ALTER to a private trial copy: the shape
//!    after the ALTER.
//! 5. [`Plan::build`] — chunk key, column mapping, new unique keys, renames approved.
//! 6. [`Dialect::render_sql`] and [`Dialect::metadata_only`] — what will run (the dry run prints
//!    it) and whether the server could apply the ALTER in place.
//! 7. [`new_unique_keys_hold`] — every unique key the ALTER adds is free of duplicates in the
//!    original, so no row is ever lost to it.
//!
//! The run lock (no other run on this table) is taken by the runner before these checks and held
//! until the run ends.

pub mod alter;
pub mod plan;

use crate::config::MigrationConfig;
use crate::dialect::Dialect;
use crate::error::{Error, Result};
use crate::names::Names;
use plan::Plan;

/// Run the preflight checks in order (see the module docs) for the ALTER `spec` on
/// `names.table`; returns the plan. Creates nothing. `resuming`: a matching checkpoint exists,
/// so what its run created is not refused as leftovers.
///
/// Errors: the first refusal ([`Error::Refused`], [`Error::NoSuchTable`],
/// [`Error::AlterRejected`], [`Error::DuplicateKey`], ...).
pub async fn run<D: Dialect>(d: &D, names: &Names, spec: &str, config: &MigrationConfig, resuming: bool) -> Result<Plan> {
    let analysis = alter::analyze(spec, d.sql_dialect())?;
    let original = d.inspect(&names.table).await?;
    d.preflight(names, &original, resuming).await?;
    let altered = d.trial_alter(names, &analysis).await?;
    let mut plan = Plan::build(names.clone(), analysis, original, altered, d.rules(), config.approve_renamed_columns)?;
    plan.sql = d.render_sql(&plan);
    plan.metadata_only = d.metadata_only(names, &plan.analysis).await?;
    new_unique_keys_hold(d, &plan).await?;
    Ok(plan)
}

/// Every unique key the ALTER adds over columns the original already has is free of duplicates
/// there (a key over an added column is enforced by the copy itself). Errors:
/// [`Error::DuplicateKey`] naming the key and one duplicated value.
pub async fn new_unique_keys_hold<D: Dialect>(d: &D, plan: &Plan) -> Result<()> {
    for key in &plan.new_unique_keys {
        let Some(cols) = &key.source_columns else { continue };
        if let Some(value) = d.find_duplicate(&plan.names.table, cols).await? {
            return Err(Error::DuplicateKey { key: key.name.clone(), table: plan.names.table.clone(), value });
        }
    }
    Ok(())
}
