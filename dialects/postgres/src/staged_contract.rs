//! The staged contract on PostgreSQL ([`shadowswap_engine::staged::contract`]): each step
//! planned from the catalog (an INVALID index left by an earlier failed attempt is dropped
//! first; a name already taken is refused) and each statement run outside a transaction under
//! the session's `lock_timeout`. The statements are [`crate::sql::staged_contract`]'s. They run
//! as the session's own role, as the operator would run them in psql.

use std::time::Duration;

use shadowswap_engine::config::CutOverConfig;
use shadowswap_engine::error::Result;
use shadowswap_engine::model::TableRef;
use shadowswap_engine::staged::contract::{ContractClause, ContractOp, ContractStep};
use shadowswap_engine::Error;

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

/// The step for `clause` ([`q::step`]), after the catalog checks. Errors: [`Error::Refused`] for
/// a clause with no non-blocking technique, a name already taken by a valid index or a
/// constraint, or a NOT NULL check left by an interrupted run (with the statement to drop it).
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
    let mut drop_invalid = false;
    match &clause.op {
        ContractOp::AddIndex { .. } => match index_state(pg, table, &name).await? {
            None => {}
            Some((true, false)) => drop_invalid = true,
            Some(_) => {
                return Err(Error::refused(format!(
                "contract clause {:?}: a relation named {name:?} already exists in schema {:?}; name the constraint differently",
                clause.text, table.schema
            )))
            }
        },
        ContractOp::SetNotNull { .. } if has_constraint(pg, table, &name).await? => {
            return Err(Error::refused(format!(
                "{table} still has the check {name:?} of an interrupted shadowswap contract; drop it first ({}) and run again",
                q::undo(table, &clause.op).join("; ")
            )));
        }
        ContractOp::AddForeignKey { .. } | ContractOp::AddCheck { .. } if has_constraint(pg, table, &name).await? => {
            return Err(Error::refused(format!(
                "contract clause {:?}: {table} already has a constraint named {name:?}; name it differently",
                clause.text
            )));
        }
        _ => {}
    }
    let attempts = cut_over.retries + 1;
    Ok(q::step(table, &clause.text, &clause.op, cut_over.lock_timeout, attempts, drop_invalid)
        .expect("object_name said it has a step"))
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
