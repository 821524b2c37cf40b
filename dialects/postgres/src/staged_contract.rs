//! The staged contract on PostgreSQL ([`shadowswap_engine::staged::contract`]): each step
//! planned from the catalog (an INVALID index left by an earlier failed attempt is dropped
//! first; a name already taken is refused) and each statement run outside a transaction under
//! the session's `lock_timeout`. The statements are [`crate::sql::staged_contract`]'s. They run
//! as the session's own role, as the operator would run them in psql.

use std::time::Duration;

use shadowswap_engine::config::CutOverConfig;
use shadowswap_engine::dialect::Dialect;
use shadowswap_engine::error::{ErrorClass, Result};
use shadowswap_engine::model::TableRef;
use shadowswap_engine::staged::contract::{ContractClause, ContractOp, ContractStep};
use shadowswap_engine::Error;

use crate::sql::connect::set_lock_timeout;
use crate::sql::shadow::create_like;
use crate::sql::staged_contract as q;
use crate::sql::Qualified;
use crate::{errors, Postgres};

/// Whether an index named `name` exists in `table`'s schema: `None` when no relation has the
/// name, `Some((is_index, valid))` otherwise.
async fn index_state(pg: &Postgres, table: &TableRef, name: &str) -> Result<Option<(bool, bool)>> {
    let c = pg.client().await?;
    let row = c
        .query_opt(q::INDEX_STATE, &[&table.schema, &name])
        .await
        .map_err(|e| errors::db("reading the catalog for the contract", e))?;
    Ok(row.map(|r| (r.get(0), r.get(1))))
}

async fn has_constraint(pg: &Postgres, table: &TableRef, name: &str) -> Result<bool> {
    let c = pg.client().await?;
    let row = c
        .query_one(q::HAS_CONSTRAINT, &[&Qualified(table).to_string(), &name])
        .await
        .map_err(|e| errors::db("reading the catalog for the contract", e))?;
    Ok(row.get(0))
}

/// The step for `clause` ([`q::step`]), after the catalog checks (an INVALID index of the step's
/// name, or shadowswap's NOT NULL check, left by an interrupted attempt: dropped first) and the
/// server's trial ([`trial`]). Errors: [`Error::Refused`] for a clause with no non-blocking
/// technique, a name already taken by a valid index or a constraint, or a clause the server
/// rejects.
pub(crate) async fn step(
    pg: &Postgres,
    table: &TableRef,
    clause: &ContractClause,
    cut_over: &CutOverConfig,
) -> Result<ContractStep> {
    let Some(name) = q::object_name(table, &clause.op) else {
        return Err(Error::refused(format!(
            "contract clause {:?} has no technique that avoids a long lock on PostgreSQL (shadowswap contract does: \
             ALTER COLUMN c SET NOT NULL, ADD [CONSTRAINT n] UNIQUE (cols), ADD [CONSTRAINT n] FOREIGN KEY (…) REFERENCES …, \
             ADD [CONSTRAINT n] CHECK (…)); run it with shadowswap alter, or on its own",
            clause.text
        )));
    };
    let mut drop_leftover = false;
    match &clause.op {
        ContractOp::AddIndex { .. } => match index_state(pg, table, &name).await? {
            None => {}
            Some((true, false)) => drop_leftover = true,
            Some(_) => {
                return Err(Error::refused(format!(
                "contract clause {:?}: a relation named {name:?} already exists in schema {:?}; name the constraint differently",
                clause.text, table.schema
            )))
            }
        },
        // shadowswap's own check, left by a killed run: dropped first.
        ContractOp::SetNotNull { .. } => drop_leftover = has_constraint(pg, table, &name).await?,
        ContractOp::AddForeignKey { .. } | ContractOp::AddCheck { .. } if has_constraint(pg, table, &name).await? => {
            return Err(Error::refused(format!(
                "contract clause {:?}: {table} already has a constraint named {name:?}; name it differently",
                clause.text
            )));
        }
        _ => {}
    }
    trial(pg, table, clause, cut_over.lock_timeout, drop_leftover).await?;
    let attempts = cut_over.retries + 1;
    Ok(q::step(table, &clause.text, &clause.op, cut_over.lock_timeout, attempts, drop_leftover)
        .expect("object_name said it has a step"))
}

/// The server's judgement of `clause` before anything changes: the step's `NOT VALID` statement
/// (after the drop of a `leftover`, the constraint which carries the operator's CHECK expression or the FOREIGN KEY's
/// references) on an empty copy of the table's definition (`names.trial`), with the user's search
/// path, in a transaction rolled back; locks wait at most `lock_wait`. A UNIQUE step names only
/// quoted columns (and its concurrent build fails leaving nothing). Errors: [`Error::Refused`]
/// quoting the server.
async fn trial(pg: &Postgres, table: &TableRef, clause: &ContractClause, lock_wait: Duration, leftover: bool) -> Result<()> {
    if !matches!(clause.op, ContractOp::SetNotNull { .. } | ContractOp::AddForeignKey { .. } | ContractOp::AddCheck { .. }) {
        return Ok(());
    }
    let ctx = "trying the contract clause on an empty copy";
    let scratch = table.sibling(pg.names(table).trial);
    let Some(step) = q::step(&scratch, &clause.text, &clause.op, lock_wait, 1, leftover) else { return Ok(()) };
    let mut c = pg.client().await?;
    let tx = c.transaction().await.map_err(|e| errors::db(ctx, e))?;
    tx.batch_execute(&set_lock_timeout(lock_wait)).await.map_err(|e| errors::db(ctx, e))?;
    tx.batch_execute(&create_like(&scratch, table)).await.map_err(|e| errors::db(ctx, e))?;
    tx.query_one(q::SET_LOCAL_SEARCH_PATH, &[&pg.user_search_path]).await.map_err(|e| errors::db(ctx, e))?;
    // The copy has the leftover check too: dropped first there as well.
    let r = tx.batch_execute(&step.statements[..=usize::from(leftover)].join("; ")).await;
    let _ = tx.rollback().await;
    match r {
        Ok(()) => Ok(()),
        Err(e) if e.as_db_error().is_some() && errors::class(errors::state(&e)) == ErrorClass::Fatal => {
            Err(Error::refused(format!(
                "the server rejects contract clause {:?}: {}; fix the clause (nothing was changed)",
                clause.text,
                errors::message(&e)
            )))
        }
        Err(e) => Err(errors::db(ctx, e)),
    }
}

/// Runs `sql` outside a transaction with the session's lock timeout at `lock_timeout` and the
/// user's search path (for the operator's CHECK expression), both reset after. When a `CREATE INDEX CONCURRENTLY` fails, the INVALID index it leaves is dropped
/// (`DROP INDEX CONCURRENTLY`) before the error returns, so a retry starts clean.
pub(crate) async fn exec(
    pg: &Postgres,
    table: &TableRef,
    clause: &ContractClause,
    sql: &str,
    lock_timeout: Duration,
) -> Result<()> {
    let ctx = "contract";
    let c = pg.client().await?;
    c.batch_execute(&q::set_session_lock_timeout(lock_timeout)).await.map_err(|e| errors::db(ctx, e))?;
    // The operator's expressions (a CHECK) resolve names as in the operator's own session.
    let pinned: String = c.query_one(q::CURRENT_SEARCH_PATH, &[]).await.map_err(|e| errors::db(ctx, e))?.get(0);
    c.query_one(q::SET_SEARCH_PATH, &[&pg.user_search_path]).await.map_err(|e| errors::db(ctx, e))?;
    let r = c.batch_execute(sql).await;
    let mut reset = c.batch_execute(q::RESET_LOCK_TIMEOUT).await;
    if reset.is_ok() {
        reset = c.query_one(q::SET_SEARCH_PATH, &[&pinned]).await.map(drop);
    }
    drop(c);
    if let Err(e) = r {
        if matches!(clause.op, ContractOp::AddIndex { .. }) && sql.starts_with("CREATE ") {
            if let Some(name) = q::object_name(table, &clause.op) {
                if let Some((true, false)) = index_state(pg, table, &name).await? {
                    let drop = q::drop_index_concurrently(table, &name);
                    tracing::info!(index = %name, "dropping the invalid index the failed build left");
                    let c = pg.client().await?;
                    c.batch_execute(&drop).await.map_err(|e| errors::db_running(ctx, &drop, e))?;
                }
            }
        }
        return Err(errors::db_running_if_fatal(ctx, sql, e));
    }
    reset.map_err(|e| errors::db(ctx, e))
}
