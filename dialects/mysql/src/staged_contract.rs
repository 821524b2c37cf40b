//! The staged contract on MariaDB ([`shadowswap_engine::staged::contract`]): which way each
//! clause goes, asked of the server on an empty copy of the table's definition (the probe table,
//! created and dropped at once), and each statement run under its `lock_wait_timeout`. The
//! statements are [`crate::sql::staged_contract`]'s.

use std::time::Duration;

use mysql_async::prelude::Queryable;
use shadowswap_engine::config::CutOverConfig;
use shadowswap_engine::error::Result;
use shadowswap_engine::model::TableRef;
use shadowswap_engine::staged::contract::{ContractClause, ContractStep};
use shadowswap_engine::Error;

use crate::connect::whole_seconds;
use crate::sql::shadow::drop_table;
use crate::sql::staged_contract::{self as q, Algorithm};
use crate::sql::with_lock_timeout;
use crate::{errors, MySql};

/// The step for `clause`: the first algorithm the server accepts for it on the probe table, in
/// place on the table; otherwise, when the probe accepts the clause with no algorithm named, the
/// shadow copy. Changes nothing on the table. Errors: [`Error::Refused`] quoting the server when
/// it rejects the clause outright.
pub(crate) async fn step(
    my: &MySql,
    table: &TableRef,
    clause: &ContractClause,
    cut_over: &CutOverConfig,
) -> Result<ContractStep> {
    let ctx = "asking the server how the contract clause can run";
    let lock_secs = whole_seconds(cut_over.lock_timeout);
    let attempts = cut_over.retries + 1;
    let probe = q::probe_table(table);
    let mut c = my.conn().await?;
    c.query_drop(with_lock_timeout(lock_secs, &drop_table(&probe))).await.map_err(|e| errors::db(ctx, e))?;
    c.query_drop(with_lock_timeout(lock_secs, &q::create_probe(table))).await.map_err(|e| errors::db(ctx, e))?;
    let mut found = None;
    for algorithm in Algorithm::ALL {
        if c.query_drop(q::alter_clause(&probe, &clause.text, Some(algorithm))).await.is_ok() {
            found = Some(algorithm);
            break;
        }
    }
    let plain = match found {
        Some(_) => Ok(()),
        None => c.query_drop(q::alter_clause(&probe, &clause.text, None)).await,
    };
    c.query_drop(with_lock_timeout(lock_secs, &drop_table(&probe))).await.map_err(|e| errors::db(ctx, e))?;
    match (found, plain) {
        (Some(a), _) => Ok(q::in_place_step(table, &clause.text, a, lock_secs, attempts)),
        (None, Ok(())) => Ok(q::shadow_copy_step(&clause.text, lock_secs, attempts)),
        (None, Err(e)) => Err(Error::refused(format!(
            "the server rejects contract clause {:?} (tried on an empty copy of {table}): {}; fix the clause",
            clause.text,
            errors::db(ctx, e)
        ))),
    }
}

/// Runs `sql` (already bounded by its `SET STATEMENT lock_wait_timeout`) in a pooled session.
pub(crate) async fn exec(my: &MySql, sql: &str, _lock_timeout: Duration) -> Result<()> {
    let mut c = my.conn().await?;
    c.query_drop(sql).await.map_err(|e| errors::db(&format!("contract (while running: {sql})"), e))
}
