//! Every refusal the PostgreSQL dialect makes before anything is created, with the reason and
//! what to do: table kinds the rename swap cannot migrate (`preflight`), dependents it cannot
//! carry over (`refuse_unhandled`, also run again under the swap's lock), subscriptions it
//! could not refresh, leftovers of an earlier run, and — once the plan is made, right before the
//! shadow is created — columns the ALTER takes away from other objects
//! (`refuse_lost_column_dependents`) and `NOT VALID` constraints in its way
//! (`refuse_not_valid_conflicts`). The owner's privileges are checked by
//! [`crate::owner::preflight`]; the ALTER itself by [`crate::trial`]. Creates nothing.

use shadowswap_engine::error::Result;
use shadowswap_engine::model::{TableRef, TableShape};
use shadowswap_engine::names::Names;
use shadowswap_engine::plan::Plan;
use shadowswap_engine::Error;
use tokio_postgres::types::ToSql;
use tokio_postgres::GenericClient;

use crate::sql::capture::{capture_triggers, CAPTURE_FUNCTIONS};
use crate::sql::preflight as q;
use crate::sql::Qualified;
use crate::{alter, errors, inspect, owner, Postgres};

/// The dialect's preflight: the table checks ([`table_checks`]), the owner's privileges,
/// subscriptions ([`refuse_subscriptions`]), and no shadow, old table or checkpoint table left
/// by an earlier run. When `resuming` (a checkpoint of this same ALTER exists), the shadow, the
/// capture triggers and the checkpoint are the run's own (`verify_resumable` checks them); an
/// old table is still refused.
pub(crate) async fn preflight(pg: &Postgres, names: &Names, _original: &TableShape, resuming: bool) -> Result<()> {
    let c = pg.client().await?;
    table_checks(&**c, names, resuming).await?;
    owner::preflight(&**c, &names.table).await?;
    drop(c);
    refuse_subscriptions(pg, names).await?;
    let leftovers = if resuming { vec![&names.old] } else { vec![&names.shadow, &names.old, &names.checkpoint] };
    for leftover in leftovers {
        if inspect::table_exists(pg, leftover).await? {
            return Err(Error::refused(format!(
                "{leftover} already exists (left by an earlier run?); run `shadowswap cleanup` for this table, or drop or rename it"
            )));
        }
    }
    Ok(())
}

/// The first column of every row of `query`, as text.
async fn strings(c: &impl GenericClient, ctx: &str, query: &str, p: &[&(dyn ToSql + Sync)]) -> Result<Vec<String>> {
    let rows = c.query(query, p).await.map_err(|e| errors::db(ctx, e))?;
    Ok(rows.iter().map(|r| r.get::<_, String>(0)).collect())
}

/// [`strings`] of a query whose parameters are all text, in one round trip (`query_typed`): for
/// the checks the swap transaction repeats under its lock ([`refuse_unhandled`]).
async fn text_strings(c: &impl GenericClient, ctx: &str, query: &str, p: &[&str]) -> Result<Vec<String>> {
    let rows = c.query_typed(query, &crate::connect::text_params(p)).await.map_err(|e| errors::db(ctx, e))?;
    Ok(rows.iter().map(|r| r.get::<_, String>(0)).collect())
}

/// `Ok` when `found` is empty, else a refusal with `msg` of the list.
fn refuse_if(found: Vec<String>, msg: impl Fn(String) -> String) -> Result<()> {
    if found.is_empty() {
        Ok(())
    } else {
        Err(Error::refused(msg(found.join(", "))))
    }
}

/// Refusals for tables the rename swap cannot migrate safely: not a plain, logged, permanent
/// table; not owned by (a role of) the session's user; inheritance; publications; materialized
/// views; rules; a foreign key to itself; capture functions left by an earlier run (unless
/// `resuming` it); and dependents of kinds the swap cannot carry over ([`refuse_unhandled`]).
pub(crate) async fn table_checks(c: &impl GenericClient, names: &Names, resuming: bool) -> Result<()> {
    let t = &names.table;
    let ctx = "checking the table";
    let row = c.query_opt(q::TABLE_KIND, &[&t.schema, &t.name]).await.map_err(|e| errors::db(ctx, e))?;
    let Some(row) = row else { return Err(Error::NoSuchTable(t.clone())) };
    let may_own: bool = c.query_one(q::MAY_ACT_AS_OWNER, &[&t.schema, &t.name]).await.map_err(|e| errors::db(ctx, e))?.get(0);
    if !may_own {
        return Err(Error::refused(format!(
            "the DSN's user does not own {t} (nor is a member of its owner role or a superuser); the swap renames it and \
             re-creates what depends on it, which only the owner may do: connect as the owner"
        )));
    }
    let oid: u32 = row.get(0);
    let kind: String = row.get(1);
    let persistence: String = row.get(2);
    match kind.as_str() {
        "r" => {}
        "p" => return Err(Error::refused(format!("{t} is partitioned; shadowswap does not migrate partitioned tables yet"))),
        _ => return Err(Error::refused(format!("{t} is not a plain table (relkind {kind}); shadowswap migrates tables"))),
    }
    match persistence.as_str() {
        "u" => {
            return Err(Error::refused(format!(
                "{t} is UNLOGGED; its shadow copy would not survive a crash. Make it LOGGED first"
            )))
        }
        "t" => return Err(Error::refused(format!("{t} is a temporary table; migrate it with a plain ALTER TABLE"))),
        _ => {}
    }
    refuse_if(strings(c, ctx, q::INHERITANCE, &[&oid]).await?, |l| {
        format!("{t} takes part in table inheritance ({l}); shadowswap does not migrate inheritance trees")
    })?;
    refuse_if(strings(c, ctx, q::PUBLICATIONS, &[&t.schema, &t.name]).await?, |l| {
        format!(
            "{t} is published for logical replication (publication {l}); a swap would stop its changes reaching subscribers. \
             Remove it with ALTER PUBLICATION … DROP TABLE for the migration, add it back afterwards and refresh the subscriptions"
        )
    })?;
    refuse_if(strings(c, ctx, q::MATERIALIZED_VIEWS, &[&oid]).await?, |l| {
        format!("materialized views depend on {t} ({l}); drop them for the migration and recreate them afterwards")
    })?;
    refuse_if(strings(c, ctx, q::RULES, &[&t.schema, &t.name]).await?, |l| {
        format!("{t} has rules ({l}); shadowswap cannot carry rules over, drop them for the migration")
    })?;
    refuse_if(strings(c, ctx, q::SELF_FOREIGN_KEYS, &[&oid]).await?, |l| {
        format!("{t} has a foreign key to itself ({l}); shadowswap cannot re-point it, drop it for the migration")
    })?;
    if !resuming {
        let ours: Vec<String> = capture_triggers(names).into();
        refuse_if(strings(c, ctx, CAPTURE_FUNCTIONS, &[&t.schema, &ours]).await?, |_| {
            format!(
                "{t} still has capture triggers from an earlier shadowswap run; run `shadowswap cleanup` for this table first"
            )
        })?;
    }
    refuse_unhandled(c, names).await
}

/// Refuses a table that objects the swap cannot carry over are bound to, naming each: a table
/// that is a member of an extension or a typed table; anything in `pg_depend` that refers to
/// the table, its row type or its identity sequences and is not of a kind the swap re-creates
/// or re-points ([`q::UNHANDLED_DEPENDENTS`]); and objects the swap would re-create that belong
/// to a role the session's user is not a member of ([`q::NOT_OURS`]). Runs in the preflight and
/// again in the swap transaction, under its lock (dependents created since). Creates nothing.
/// Errors: [`Error::Refused`] naming the objects, [`Error::Database`].
pub(crate) async fn refuse_unhandled(c: &impl GenericClient, names: &Names) -> Result<()> {
    let t = Qualified(&names.table).to_string();
    let ctx = "checking what depends on the table";
    // One round trip each: the swap transaction runs this under its lock.
    let text = crate::connect::text_params(std::slice::from_ref(&t));
    if let Some(ext) = text_strings(c, ctx, q::EXTENSION_MEMBER, &[&t]).await?.first() {
        return Err(Error::refused(format!(
            "{} is a member of extension {ext}; the swap would replace it with a table that is not. Migrate it with the \
             extension's own upgrade scripts, or detach it with ALTER EXTENSION … DROP TABLE first",
            names.table
        )));
    }
    let typed: Option<String> = c.query_typed_one(q::TYPED_TABLE, &text).await.map_err(|e| errors::db(ctx, e))?.get(0);
    if let Some(ty) = typed {
        return Err(Error::refused(format!(
            "{} is a typed table (OF {ty}); the swap would replace it with a table that is not. Run ALTER TABLE … NOT OF \
             first, or use a plain ALTER TABLE",
            names.table
        )));
    }
    let rows = c.query_typed(q::UNHANDLED_DEPENDENTS, &text).await.map_err(|e| errors::db(ctx, e))?;
    if rows.is_empty() {
        return refuse_if(text_strings(c, ctx, q::NOT_OURS, &[&t]).await?, |l| {
            format!(
                "the swap re-creates objects that use {} and belong to other roles: {l}; only their owner may do that. Connect \
                 as a member of those roles (or a superuser), or drop them for the migration and re-create them afterwards",
                names.table
            )
        });
    }
    let found: Vec<String> = rows
        .iter()
        .map(|r| format!("{} ({})", r.get::<_, Option<String>>(0).unwrap_or_else(|| "an object".into()), r.get::<_, String>(1)))
        .collect();
    Err(Error::refused(format!(
        "objects depend on {} that would stay bound to the old table after the swap: {}; drop them (or change them not to \
         use the table) for the migration and re-create them afterwards, or use a plain ALTER TABLE",
        names.table,
        found.join("; ")
    )))
}

/// Refuses an ALTER that renames or drops a column which views, policies, foreign keys
/// (from other tables or of the table's own) or triggers of the user's own use, or changes the
/// type of a column a view uses. The swap re-creates those objects from their definitions,
/// which name the columns as they were: it would fail after the whole copy. Runs before the
/// shadow is created.
pub(crate) async fn refuse_lost_column_dependents(c: &impl GenericClient, plan: &Plan) -> Result<()> {
    let renamed_or_dropped = plan.renamed_or_dropped_columns();
    let retyped: Vec<String> =
        plan.mapping.iter().filter(|m| plan.not_checksummed.contains(&m.target)).map(|m| m.source.clone()).collect();
    if renamed_or_dropped.is_empty() && retyped.is_empty() {
        return Ok(());
    }
    let found = strings(
        c,
        "checking what uses the columns the ALTER changes",
        q::LOST_COLUMN_DEPENDENTS,
        &[&Qualified(&plan.names.table).to_string(), &renamed_or_dropped, &retyped],
    )
    .await?;
    refuse_if(found, |l| {
        format!(
            "the ALTER renames, drops or changes the type of columns of {} that other objects use: {l}; the swap re-creates \
             them from their definitions, which would no longer fit. Drop them for the migration and re-create them \
             afterwards, or change the ALTER",
            plan.names.table
        )
    })
}

/// Refuses an ALTER that names a `NOT VALID` constraint of the table or drops or renames one of
/// its columns: those constraints are left off the shadow (its copy would reject the old rows
/// they never checked) and re-added `NOT VALID` at the swap, from their definitions. Runs
/// before the shadow is created. Errors: [`Error::Refused`], [`Error::Database`].
pub(crate) async fn refuse_not_valid_conflicts(c: &impl GenericClient, plan: &Plan) -> Result<()> {
    let lost = plan.renamed_or_dropped_columns();
    let named = alter::referenced_names(&plan.analysis);
    let found = strings(
        c,
        "checking the NOT VALID constraints",
        q::NOT_VALID_CONFLICTS,
        &[&Qualified(&plan.names.table).to_string(), &named, &lost],
    )
    .await?;
    refuse_if(found, |l| {
        format!(
            "the ALTER names, or drops or renames a column of, NOT VALID constraints of {} ({l}); shadowswap keeps NOT VALID \
             constraints off the shadow and re-adds them at the swap. Validate or drop them first, or change the ALTER",
            plan.names.table
        )
    })
}

/// Subscriptions (logical replication, this database) that replicate into `table`: name, the
/// table's sync state, and whether the current user may alter them (owner or superuser).
pub(crate) async fn subscriptions_of(
    c: &impl GenericClient,
    table: &TableRef,
) -> std::result::Result<Vec<(String, String, bool)>, tokio_postgres::Error> {
    let rows = c.query(q::SUBSCRIPTIONS, &[&Qualified(table).to_string()]).await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect())
}

/// A subscription binds the tables it replicates into by OID (`pg_subscription_rel`): after
/// the swap its apply worker keeps writing into the table by name only until it restarts;
/// then it skips (and so loses) every change to a table it has no state for. The swap is
/// followed by `ALTER SUBSCRIPTION … REFRESH PUBLICATION WITH (copy_data = false)`
/// ([`crate::cutover::refresh_subscriptions`]), which needs the subscription's owner and a
/// table whose initial copy is done: refuse otherwise, before anything is created.
async fn refuse_subscriptions(pg: &Postgres, names: &Names) -> Result<()> {
    let c = pg.client().await?;
    let subs = subscriptions_of(&**c, &names.table).await.map_err(|e| errors::db("looking for subscriptions of the table", e))?;
    for (sub, state, may_alter) in subs {
        if state != "r" {
            return Err(Error::refused(format!(
                "{} is still being synchronized by subscription {sub} (state {state}); wait until its initial copy is done \
                 (pg_subscription_rel.srsubstate = 'r')",
                names.table
            )));
        }
        if !may_alter {
            return Err(Error::refused(format!(
                "{} is replicated into by subscription {sub}, which shadowswap must refresh after the swap \
                 (ALTER SUBSCRIPTION … REFRESH PUBLICATION); connect as the subscription's owner or a superuser",
                names.table
            )));
        }
    }
    Ok(())
}

/// One value of `columns` that occurs more than once in `table` (rows with a NULL in any of
/// them are ignored, as unique keys ignore them), rendered for a message.
pub(crate) async fn find_duplicate(pg: &Postgres, table: &TableRef, columns: &[String]) -> Result<Option<String>> {
    let c = pg.client().await?;
    let r = c
        .query_opt(&q::find_duplicate(table, columns), &[])
        .await
        .map_err(|e| errors::db("looking for duplicates of a new unique key", e))?;
    Ok(r.map(|r| r.get(0)))
}
