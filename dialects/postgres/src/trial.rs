//! The trial ALTER (part of the preflight): DDL is transactional in PostgreSQL, so the ALTER
//! runs on a real copy of the table's definition (`CREATE TABLE … (LIKE … INCLUDING ALL)`, the
//! shadow's own builders) inside a transaction that is always rolled back; the server is the
//! judge of the ALTER, and the copy's shape after it is the plan's target.

use shadowswap_engine::alter::AlterAnalysis;
use shadowswap_engine::error::Result;
use shadowswap_engine::model::TableShape;
use shadowswap_engine::names::Names;
use shadowswap_engine::Error;

use crate::sql::connect::set_lock_timeout;
use crate::sql::inspect::CONSTRAINT_NAMES;
use crate::sql::shadow::{alter_table, create_like};
use crate::sql::trial::{NAMED_INDEXES_OR_KEYS, TRIAL_LOCK_WAIT};
use crate::sql::Qualified;
use crate::{alter, errors, generated_names, inspect, owner, Postgres};

/// Applies the ALTER to a scratch copy of the table's definition and returns the copy's shape;
/// leaves nothing behind. Keys the ALTER adds without a name show under the name a plain ALTER
/// on the table gives them ([`generated_names`]).
///
/// Errors: [`Error::AlterRejected`] with the server's message; [`Error::Refused`] for a type
/// change with `USING` ([`alter::refuse_type_change_with_using`]) or an ALTER that names an
/// index or key of the table (on the shadow copy they carry other names until the swap).
pub(crate) async fn trial_alter(pg: &Postgres, names: &Names, alter: &AlterAnalysis) -> Result<TableShape> {
    alter::refuse_type_change_with_using(alter)?;
    let trial = names.table.sibling(names.trial.clone());
    let ctx = "trying the ALTER on a scratch copy";
    let mut c = pg.client().await?;
    // The copy's indexes (and so its primary, unique and exclusion keys) have generated
    // names, and foreign keys are added to the shadow after the ALTER: an ALTER that names
    // one of them would fail there, or act on the wrong object. Refuse it with the reason.
    let referenced = alter::referenced_names(alter);
    if !referenced.is_empty() {
        let found: Vec<String> = c
            .query(NAMED_INDEXES_OR_KEYS, &[&Qualified(&names.table).to_string(), &referenced])
            .await
            .map_err(|e| errors::db(ctx, e))?
            .iter()
            .map(|r| r.get(0))
            .collect();
        if !found.is_empty() {
            return Err(Error::refused(format!(
                "the ALTER names {} of {} ({}); on the shadow copy indexes, primary/unique/exclusion keys and foreign keys \
                 carry other names until the swap, so shadowswap cannot run an ALTER that names them yet; \
                 run that clause directly with ALTER TABLE, or change the ALTER to name columns instead",
                if found.len() == 1 { "an index or key" } else { "indexes or keys" },
                names.table,
                found.join(", ")
            )));
        }
    }
    let tx = c.transaction().await.map_err(|e| errors::db(ctx, e))?;
    tx.batch_execute(&set_lock_timeout(TRIAL_LOCK_WAIT)).await.map_err(|e| errors::db(ctx, e))?;
    // As the owner (see the `owner` module): the ALTER may evaluate the owner's functions.
    let owner = owner::enter(&tx, &names.table).await.map_err(|e| errors::db(ctx, e))?;
    owner::exec(&tx, owner, &create_like(&trial, &names.table), &[], None).await.map_err(|e| errors::db(ctx, e))?;
    let trial_q = Qualified(&trial).to_string();
    let before: Vec<String> =
        tx.query(CONSTRAINT_NAMES, &[&trial_q]).await.map_err(|e| errors::db(ctx, e))?.iter().map(|r| r.get(0)).collect();
    let altered = owner::exec(&tx, owner, &alter_table(&trial, &alter.spec), &[], Some(&pg.user_search_path)).await;
    let altered = match altered {
        Ok(_) => owner::leave(&tx).await.map(|_| ()),
        Err(e) => Err(e),
    };
    let shape = match altered {
        Ok(()) => match inspect::shape_on(&*tx, &trial_q).await {
            // Keys the ALTER adds without a name show (in the plan and the duplicate-key
            // refusal) under the name a plain ALTER on the table gives them, not the trial's.
            Ok(mut shape) => {
                match generated_names::final_constraint_names(&*tx, &trial_q, &trial.name, &names.table.name, &before, None).await
                {
                    Ok(renames) => {
                        for i in &mut shape.indexes {
                            if let Some((_, chosen)) = renames.iter().find(|(g, _)| *g == i.name) {
                                i.name = chosen.clone();
                            }
                        }
                        Ok(shape)
                    }
                    Err(e) => Err(errors::db(ctx, e)),
                }
            }
            Err(e) => Err(errors::db(ctx, e)),
        },
        Err(e) => Err(errors::alter_rejected(ctx, e)),
    };
    tx.rollback().await.map_err(|e| errors::db(ctx, e))?;
    shape
}
