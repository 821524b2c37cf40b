//! Preflight, MariaDB's part: the refusals that need the server (table kind, engine,
//! partitioning, triggers of the user's own, foreign keys, the privilege to create triggers,
//! leftovers of an earlier run), the trial ALTER on a temporary copy, and the search for a
//! duplicate of a new unique key. Creates nothing that outlives its session.

use mysql_async::prelude::Queryable;
use shadowswap_engine::alter::AlterAnalysis;
use shadowswap_engine::error::Result;
use shadowswap_engine::model::{TableRef, TableShape};
use shadowswap_engine::names::Names;
use shadowswap_engine::Error;

use crate::inspect::{engine_on, shape_on, table_exists};
use crate::{errors, sql, MySql};

/// Server-specific refusals for `names.table`: not a base table, not InnoDB, partitioned, still
/// carrying capture triggers of an earlier run or triggers of its own, foreign keys either way,
/// no privilege to create triggers while binary logging is on, a shadow, old table or checkpoint
/// table left over. When `resuming` (a checkpoint of this same ALTER exists), the capture
/// triggers, the shadow and the checkpoint table are the run's own, not leftovers
/// (`verify_resumable` checks them); the old table and the table's own triggers still refuse.
pub(crate) async fn preflight(my: &MySql, names: &Names, resuming: bool) -> Result<()> {
    let t = &names.table;
    let mut c = my.conn().await?;
    let info: Option<(String, Option<String>, Option<String>)> = c
        .exec_first(sql::preflight::TABLE_STATUS, (&t.schema, &t.name))
        .await
        .map_err(|e| errors::db("reading table status", e))?;
    let Some((kind, engine, options)) = info else { return Err(Error::NoSuchTable(t.clone())) };
    if kind != "BASE TABLE" {
        return Err(Error::refused(format!("{t} is a {kind}, not a table; shadowswap migrates base tables")));
    }
    if !engine.as_deref().is_some_and(|e| e.eq_ignore_ascii_case("InnoDB")) {
        return Err(Error::refused(format!(
            "{t} uses ENGINE={}; shadowswap needs InnoDB (transactions and row locks make the copy safe); convert it first",
            engine.unwrap_or_default()
        )));
    }
    if options.as_deref().is_some_and(|o| o.contains("partitioned")) {
        return Err(Error::refused(format!("{t} is partitioned; shadowswap does not migrate partitioned tables yet")));
    }
    let mut triggers: Vec<String> =
        c.exec(sql::preflight::TABLE_TRIGGERS, (&t.schema, &t.name)).await.map_err(|e| errors::db("listing triggers", e))?;
    if resuming {
        triggers.retain(|tr| !names.triggers().contains(&tr.as_str()));
    }
    if triggers.iter().any(|tr| names.triggers().contains(&tr.as_str())) {
        return Err(Error::refused(format!(
            "{t} still has capture triggers from an earlier shadowswap run; run `shadowswap cleanup` for this table first"
        )));
    }
    if !triggers.is_empty() {
        return Err(Error::refused(format!(
            "{t} has triggers of its own ({}); they would stay on the old table at the swap. Drop them for the \
             migration and recreate them afterwards",
            triggers.join(", ")
        )));
    }
    let fks: Vec<String> = c
        .exec(sql::preflight::FOREIGN_KEYS, (&t.schema, &t.name, &t.schema, &t.name))
        .await
        .map_err(|e| errors::db("listing foreign keys", e))?;
    if !fks.is_empty() {
        return Err(Error::refused(format!(
            "{t} has or is referenced by foreign keys ({}); a rename swap would leave them pointing at the old table. \
             Drop them for the migration and recreate them afterwards",
            fks.join(", ")
        )));
    }
    // While binary logging is on, CREATE and DROP TRIGGER need SUPER unless
    // log_bin_trust_function_creators is set. Ask the server without creating anything: a
    // trigger on a session-private temporary table passes that check, then fails (1361).
    let ctx = "checking the privilege to create triggers";
    c.query_drop(sql::preflight::create_probe_table(names)).await.map_err(|e| errors::db(ctx, e))?;
    let created = c.query_drop(sql::preflight::create_probe_trigger(names)).await;
    c.query_drop(sql::preflight::drop_temporary_table(&sql::preflight::trial_table(names)))
        .await
        .map_err(|e| errors::db(ctx, e))?;
    if errors::code_of(&created) == Some(errors::NEED_SUPER) {
        return Err(Error::refused(format!(
            "the capture triggers cannot be created: binary logging is on and {} lacks the SUPER privilege; \
             grant it SUPER, or SET GLOBAL log_bin_trust_function_creators = 1",
            my.dsn.user
        )));
    }
    drop(c);
    if !resuming && table_exists(my, &names.checkpoint).await? {
        return Err(Error::refused(format!(
            "{} already exists without a checkpoint of this table's run (left by an earlier run?); run `shadowswap \
             cleanup` for this table first",
            names.checkpoint
        )));
    }
    if !resuming && table_exists(my, &names.shadow).await? {
        return Err(Error::refused(format!(
            "{} already exists (left by an earlier run?); run `shadowswap cleanup` for this table, or drop or rename it",
            names.shadow
        )));
    }
    if table_exists(my, &names.old).await? {
        return Err(Error::refused(format!(
            "{} already exists (the old table an earlier run kept?); drop or rename it first",
            names.old
        )));
    }
    Ok(())
}

/// Apply `alter.spec` to a session-private temporary copy of the table and return the resulting
/// shape; drops the copy again. Errors: [`Error::AlterRejected`] (the server's message), a
/// refusal when the ALTER or the table cannot go through a temporary copy, or when the ALTER
/// makes the table anything but InnoDB.
pub(crate) async fn trial_alter(my: &MySql, names: &Names, alter: &AlterAnalysis) -> Result<TableShape> {
    let trial = sql::preflight::trial_table(names);
    let mut c = my.conn().await?;
    let ctx = "trying the ALTER on a temporary copy";
    c.query_drop(sql::preflight::drop_temporary_table(&trial)).await.map_err(|e| errors::db(ctx, e))?;
    match c.query_drop(sql::preflight::create_trial_copy(names)).await {
        Ok(()) => {}
        // E.g. a FULLTEXT or SPATIAL index (error 1796): InnoDB has no temporary tables with them.
        Err(mysql_async::Error::Server(s)) if errors::about_temporary_tables(&s.message) => {
            return Err(Error::refused(format!(
                "{} cannot be copied to a temporary table, where shadowswap tries the ALTER first ({}); \
                 tables with FULLTEXT or SPATIAL indexes are not supported yet, run this ALTER directly",
                names.table, s.message
            )));
        }
        Err(e) => return Err(errors::db(ctx, e)),
    }
    let altered = c.query_drop(sql::preflight::alter_trial_copy(names, alter)).await;
    let shape = match altered {
        Ok(()) => match engine_on(&mut c, &trial).await.map_err(|e| errors::db(ctx, e)) {
            // The capture triggers write the shadow inside the application's transactions and
            // the copy relies on row locks: a non-transactional shadow would keep the writes
            // of rolled-back transactions.
            Ok(engine) if !engine.eq_ignore_ascii_case("InnoDB") => Err(Error::refused(format!(
                "the ALTER makes {} ENGINE={engine}; shadowswap's shadow table must be InnoDB (the capture \
                 triggers write it in the application's transactions), so run this ALTER directly",
                names.table
            ))),
            Ok(_) => match crate::indexes::show_create(&mut c, &trial).await {
                Ok(ddl) => {
                    my.trial_definitions.lock().expect("trial definitions").insert(names.table.clone(), ddl);
                    shape_on(&mut c, &trial).await.map_err(|e| errors::db(ctx, e))
                }
                Err(e) => Err(errors::db(ctx, e)),
            },
            Err(e) => Err(e),
        },
        // Some ALTERs the server allows on the real table but not on a temporary one.
        Err(mysql_async::Error::Server(s)) if errors::about_temporary_tables(&s.message) => Err(Error::refused(format!(
            "shadowswap tries the ALTER on a temporary copy of the table first, and the server does not allow it \
             there ({}); shadowswap cannot run this ALTER yet, run it directly",
            s.message
        ))),
        Err(e) => Err(errors::alter_rejected(ctx, e)),
    };
    c.query_drop(sql::preflight::drop_temporary_table(&trial)).await.map_err(|e| errors::db(ctx, e))?;
    shape
}

/// One value of `columns` that occurs more than once in `table`, rendered for a message.
pub(crate) async fn find_duplicate(my: &MySql, table: &TableRef, columns: &[String]) -> Result<Option<String>> {
    let mut c = my.conn().await?;
    // Bytes, shown lossily: QUOTE() of a binary key value need not be UTF-8, and the text is
    // only for the refusal message.
    let found = c
        .query_first::<Vec<u8>, _>(sql::preflight::find_duplicate(table, columns))
        .await
        .map_err(|e| errors::db("looking for duplicates of a new unique key", e))?;
    Ok(found.map(|b| String::from_utf8_lossy(&b).into_owned()))
}
