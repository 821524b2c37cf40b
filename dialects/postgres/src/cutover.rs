//! PostgreSQL's table-level preflight checks and the swap transaction.
//!
//! Views, foreign keys, grants, policies, comments, sequences and triggers bind to a table's OID,
//! not its name: after `ALTER TABLE … RENAME` they follow the old table. [`swap`] therefore, in
//! the same transaction as the renames and under the same short `lock_timeout`, carries each of
//! them over to the new table and restores the original index and constraint names. Catalog
//! definitions are read with `search_path = pg_catalog`, so `pg_get_viewdef` and friends print
//! schema-qualified names that resolve to the new table once it has the old name.

use std::time::Duration;

use shadowswap_engine::model::TableRef;
use shadowswap_engine::names::{byte_len, generated_name, Names};
use shadowswap_engine::plan::Plan;
use shadowswap_engine::{Error, Result};
use tokio_postgres::{GenericClient, Transaction};

use crate::errors;
use crate::sql::{self, literal, Ident, Qualified};
use crate::MAX_IDENTIFIER_BYTES;

async fn strings(
    c: &impl GenericClient,
    ctx: &str,
    q: &str,
    p: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<Vec<String>> {
    let rows = c.query(q, p).await.map_err(|e| errors::db(ctx, e))?;
    Ok(rows.iter().map(|r| r.get::<_, String>(0)).collect())
}

/// Refusals for tables the rename swap cannot migrate safely. Creates nothing.
pub async fn preflight(c: &impl GenericClient, names: &Names) -> Result<()> {
    let t = &names.table;
    let ctx = "checking the table";
    let row = c
        .query_opt(
            "SELECT c.oid, c.relkind::text, c.relpersistence::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = $1 AND c.relname = $2",
            &[&t.schema, &t.name],
        )
        .await
        .map_err(|e| errors::db(ctx, e))?;
    let Some(row) = row else { return Err(Error::NoSuchTable(t.clone())) };
    let may_own: bool = c
        .query_one(
            "SELECT pg_has_role(current_user, c.relowner, 'USAGE') OR (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) \
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2",
            &[&t.schema, &t.name],
        )
        .await
        .map_err(|e| errors::db(ctx, e))?
        .get(0);
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
    let refuse_if = |found: Vec<String>, msg: &dyn Fn(String) -> String| -> Result<()> {
        if found.is_empty() {
            Ok(())
        } else {
            Err(Error::refused(msg(found.join(", "))))
        }
    };
    refuse_if(
        strings(c, ctx, "SELECT inhparent::regclass::text FROM pg_inherits WHERE inhrelid = $1 UNION ALL SELECT inhrelid::regclass::text FROM pg_inherits WHERE inhparent = $1", &[&oid]).await?,
        &|l| format!("{t} takes part in table inheritance ({l}); shadowswap does not migrate inheritance trees"),
    )?;
    refuse_if(
        strings(
            c,
            ctx,
            "SELECT pubname::text FROM pg_publication_tables WHERE schemaname = $1 AND tablename = $2",
            &[&t.schema, &t.name],
        )
        .await?,
        &|l| {
            format!(
            "{t} is published for logical replication (publication {l}); a swap would stop its changes reaching subscribers. \
             Remove it with ALTER PUBLICATION … DROP TABLE for the migration, add it back afterwards and refresh the subscriptions"
        )
        },
    )?;
    refuse_if(
        strings(
            c,
            ctx,
            "SELECT DISTINCT v.oid::regclass::text FROM pg_depend d JOIN pg_rewrite r ON r.oid = d.objid \
             JOIN pg_class v ON v.oid = r.ev_class WHERE d.refobjid = $1 AND v.relkind = 'm'",
            &[&oid],
        )
        .await?,
        &|l| format!("materialized views depend on {t} ({l}); drop them for the migration and recreate them afterwards"),
    )?;
    refuse_if(
        strings(c, ctx, "SELECT rulename::text FROM pg_rules WHERE schemaname = $1 AND tablename = $2", &[&t.schema, &t.name])
            .await?,
        &|l| format!("{t} has rules ({l}); shadowswap cannot carry rules over, drop them for the migration"),
    )?;
    refuse_if(
        strings(
            c,
            ctx,
            "SELECT conname::text FROM pg_constraint WHERE contype = 'f' AND conrelid = $1 AND confrelid = $1",
            &[&oid],
        )
        .await?,
        &|l| format!("{t} has a foreign key to itself ({l}); shadowswap cannot re-point it, drop it for the migration"),
    )?;
    let ours: Vec<String> = sql::capture_triggers(names).into();
    refuse_if(
        strings(
            c,
            ctx,
            "SELECT p.proname::text FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = $1 AND p.proname = ANY($2)",
            &[&t.schema, &ours],
        )
        .await?,
        &|_| format!("{t} still has capture triggers from an earlier shadowswap run; run `shadowswap cleanup` for this table first"),
    )?;
    crate::deps::refuse_unhandled(c, names).await
}

/// Refuses an ALTER that renames or drops a column which views, policies, foreign keys
/// (from other tables or of the table's own) or triggers of the user's own use, or changes the
/// type of a column a view uses. The swap re-creates those objects from their definitions,
/// which name the columns as they were: it would fail after the whole copy. Runs before anything
/// is created.
pub async fn refuse_lost_column_dependents(c: &impl GenericClient, plan: &Plan) -> Result<()> {
    let renamed_or_dropped = plan.renamed_or_dropped_columns();
    let retyped: Vec<String> =
        plan.mapping.iter().filter(|m| plan.not_checksummed.contains(&m.target)).map(|m| m.source.clone()).collect();
    if renamed_or_dropped.is_empty() && retyped.is_empty() {
        return Ok(());
    }
    let found = strings(
        c,
        "checking what uses the columns the ALTER changes",
        "SELECT DISTINCT format('%s (uses %I)', obj, a.attname) FROM ( \
             SELECT d.refobjsubid, CASE d.classid \
                 WHEN 'pg_rewrite'::regclass THEN CASE WHEN r.rulename = '_RETURN' THEN 'view ' || r.ev_class::regclass::text \
                      ELSE 'rule ' || quote_ident(r.rulename) || ' on ' || r.ev_class::regclass::text END \
                 WHEN 'pg_policy'::regclass THEN 'policy ' || quote_ident(p.polname) \
                 WHEN 'pg_constraint'::regclass THEN 'foreign key ' || quote_ident(co.conname) || ' of ' || co.conrelid::regclass::text \
                 WHEN 'pg_trigger'::regclass THEN 'trigger ' || quote_ident(tg.tgname) \
                 WHEN 'pg_proc'::regclass THEN 'function ' || pr.oid::regprocedure::text END AS obj, \
                 d.classid = 'pg_rewrite'::regclass AS is_view \
             FROM pg_depend d \
             LEFT JOIN pg_rewrite r ON d.classid = 'pg_rewrite'::regclass AND r.oid = d.objid \
             LEFT JOIN pg_policy p ON d.classid = 'pg_policy'::regclass AND p.oid = d.objid \
             LEFT JOIN pg_constraint co ON d.classid = 'pg_constraint'::regclass AND co.oid = d.objid AND co.contype = 'f' \
             LEFT JOIN pg_trigger tg ON d.classid = 'pg_trigger'::regclass AND tg.oid = d.objid AND NOT tg.tgisinternal \
             LEFT JOIN pg_proc pr ON d.classid = 'pg_proc'::regclass AND pr.oid = d.objid AND pr.prosqlbody IS NOT NULL \
             WHERE d.refclassid = 'pg_class'::regclass AND d.refobjid = $1::text::regclass AND d.refobjsubid > 0 \
               AND (r.ev_class <> d.refobjid OR p.oid IS NOT NULL OR co.oid IS NOT NULL OR tg.oid IS NOT NULL OR pr.oid IS NOT NULL) \
         ) x JOIN pg_attribute a ON a.attrelid = $1::text::regclass AND a.attnum = x.refobjsubid \
         WHERE a.attname::text = ANY($2) OR (x.is_view AND a.attname::text = ANY($3)) ORDER BY 1",
        &[&Qualified(&plan.names.table).to_string(), &renamed_or_dropped, &retyped],
    )
    .await?;
    if found.is_empty() {
        return Ok(());
    }
    Err(Error::refused(format!(
        "the ALTER renames, drops or changes the type of columns of {} that other objects use: {}; the swap re-creates \
         them from their definitions, which would no longer fit. Drop them for the migration and re-create them \
         afterwards, or change the ALTER",
        plan.names.table,
        found.join(", ")
    )))
}

/// Add the original table's foreign keys (to other tables) to the shadow, with their names.
/// `NOT VALID` ones are left to the swap ([`crate::deps`]): on the shadow they would check the
/// old rows the copy inserts, which the original never checked.
pub async fn copy_outgoing_foreign_keys(tx: &Transaction<'_>, plan: &Plan) -> Result<()> {
    let ctx = "copying foreign keys to the shadow table";
    tx.batch_execute("SET LOCAL search_path = pg_catalog, pg_temp").await.map_err(|e| errors::db(ctx, e))?;
    let q = Qualified(&plan.names.table).to_string();
    let rows = tx
        .query(
            "SELECT conname::text, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = $1::text::regclass AND contype = 'f' \
             AND convalidated",
            &[&q],
        )
        .await
        .map_err(|e| errors::db(ctx, e))?;
    let options: Option<String> = tx
        .query_one("SELECT array_to_string(reloptions, ', ') FROM pg_class WHERE oid = $1::text::regclass", &[&q])
        .await
        .map_err(|e| errors::db(ctx, e))?
        .get(0);
    if let Some(o) = options.filter(|o| !o.is_empty()) {
        tx.batch_execute(&format!("ALTER TABLE {} SET ({o})", Qualified(&plan.names.shadow)))
            .await
            .map_err(|e| errors::db(ctx, e))?;
    }
    for r in rows {
        let (name, def): (String, String) = (r.get(0), r.get(1));
        tx.batch_execute(&format!("ALTER TABLE {} ADD CONSTRAINT {} {def}", Qualified(&plan.names.shadow), Ident(&name)))
            .await
            .map_err(|e| errors::db(ctx, e))?;
    }
    tx.batch_execute("RESET search_path").await.map_err(|e| errors::db(ctx, e))
}

/// The cut-over, as text for the dry run.
pub fn summary(plan: &Plan) -> String {
    let n = &plan.names;
    format!(
        "BEGIN; SET LOCAL lock_timeout = …; LOCK TABLE {t}, {s} IN ACCESS EXCLUSIVE MODE; DROP TRIGGER … (capture); \
         ALTER TABLE {t} RENAME TO {o}; ALTER TABLE {s} RENAME TO {tn}; \
         -- then: index and constraint names, statistics objects, owned sequences and identity values (with their grants), \
         views (with their options), functions with SQL-standard bodies, rules and policies of other tables, NOT VALID \
         constraints, foreign keys from other tables, grants, row-level security and policies, replica identity, \
         CLUSTER ON, comment, owner, triggers of the table's own; COMMIT",
        t = Qualified(&n.table),
        s = Qualified(&n.shadow),
        o = Ident(&n.old.name),
        tn = Ident(&n.table.name)
    )
}

struct Deps {
    owner: String,
    comment: Option<String>,
    rls: (bool, bool),
    replica_identity: String,
    policies: Vec<String>,
    /// `CREATE OR REPLACE VIEW …` and, when the view has options, `ALTER VIEW … SET (…)`.
    views: Vec<String>,
    foreign_keys: Vec<(String, String, String)>,
    triggers: Vec<(String, String, String)>,
    serial_sequences: Vec<(String, String)>,
    identity: Vec<(String, String)>,
    old_indexes: Vec<(String, String)>,
    new_indexes: Vec<(String, String)>,
}

async fn read_deps(tx: &Transaction<'_>, plan: &Plan) -> Result<Deps> {
    let ctx = "reading what depends on the table";
    let q = |e| errors::db(ctx, e);
    let t = Qualified(&plan.names.table).to_string();
    let s = Qualified(&plan.names.shadow).to_string();
    let ours: Vec<String> = sql::capture_triggers(&plan.names).into();
    let row = tx
        .query_one(
            "SELECT quote_ident(pg_get_userbyid(relowner)), obj_description(oid, 'pg_class'), relrowsecurity, relforcerowsecurity, \
                    relreplident::text FROM pg_class WHERE oid = $1::text::regclass",
            &[&t],
        )
        .await
        .map_err(q)?;
    let policies = strings(
        tx,
        ctx,
        "SELECT format('CREATE POLICY %I ON %s AS %s FOR %s TO %s%s%s', pol.polname, $1::text, \
                CASE WHEN pol.polpermissive THEN 'PERMISSIVE' ELSE 'RESTRICTIVE' END, \
                CASE pol.polcmd WHEN 'r' THEN 'SELECT' WHEN 'a' THEN 'INSERT' WHEN 'w' THEN 'UPDATE' WHEN 'd' THEN 'DELETE' ELSE 'ALL' END, \
                (SELECT string_agg(CASE WHEN r = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(r)) END, ', ') FROM unnest(pol.polroles) r), \
                coalesce(' USING (' || pg_get_expr(pol.polqual, pol.polrelid) || ')', ''), \
                coalesce(' WITH CHECK (' || pg_get_expr(pol.polwithcheck, pol.polrelid) || ')', '')) \
         FROM pg_policy pol WHERE pol.polrelid = $1::text::regclass ORDER BY pol.polname",
        &[&t],
    )
    .await?;
    // CREATE OR REPLACE VIEW keeps the view's OID, owner, grants and comments but resets its
    // options (security_invoker, security_barrier, check_option): set them again.
    let mut views = Vec::new();
    for r in tx
        .query(
            "SELECT DISTINCT format('CREATE OR REPLACE VIEW %s AS %s', v.oid::regclass::text, pg_get_viewdef(v.oid)), \
                    v.oid::regclass::text, coalesce(v.reloptions, '{}')::text[] \
             FROM pg_depend d JOIN pg_rewrite r ON r.oid = d.objid JOIN pg_class v ON v.oid = r.ev_class \
             WHERE d.classid = 'pg_rewrite'::regclass AND d.refobjid = $1::text::regclass AND v.oid <> d.refobjid AND v.relkind = 'v'",
            &[&t],
        )
        .await
        .map_err(q)?
    {
        views.push(r.get::<_, String>(0));
        views.extend(crate::deps_sql::view_options(r.get(1), &r.get::<_, Vec<String>>(2)));
    }
    let fk_rows = tx
        .query(
            "SELECT conname::text, conrelid::regclass::text, pg_get_constraintdef(oid) FROM pg_constraint \
             WHERE confrelid = $1::text::regclass AND contype = 'f' AND conrelid <> confrelid",
            &[&t],
        )
        .await
        .map_err(q)?;
    let trig_rows = tx
        .query(
            "SELECT tgname::text, pg_get_triggerdef(oid), tgenabled::text FROM pg_trigger \
             WHERE tgrelid = $1::text::regclass AND NOT tgisinternal AND NOT (tgname::text = ANY($2))",
            &[&t, &ours],
        )
        .await
        .map_err(q)?;
    let seq_rows = tx
        .query(
            "SELECT s.oid::regclass::text, a.attname::text FROM pg_depend d JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S' \
             JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid \
             WHERE d.refobjid = $1::text::regclass AND d.deptype = 'a'",
            &[&t],
        )
        .await
        .map_err(q)?;
    let ident_rows = tx
        .query(
            "SELECT pg_get_serial_sequence($1, a.attname), pg_get_serial_sequence($2, b.attname) \
             FROM pg_attribute a JOIN pg_attribute b ON b.attrelid = $2::text::regclass AND b.attname = a.attname AND b.attidentity <> '' \
             WHERE a.attrelid = $1::text::regclass AND a.attidentity <> '' AND a.attnum > 0",
            &[&t, &s],
        )
        .await
        .map_err(q)?;
    let indexes = |rel: String| async move {
        let rows = tx
            .query(
                "SELECT ic.relname::text, (CASE WHEN i.indisunique THEN 'u ' ELSE '' END) || \
                        regexp_replace(pg_get_indexdef(i.indexrelid), '^.* USING ', '') \
                 FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid WHERE i.indrelid = $1::text::regclass ORDER BY 1",
                &[&rel],
            )
            .await
            .map_err(|e| errors::db(ctx, e))?;
        Ok::<_, Error>(rows.iter().map(|r| (r.get(0), r.get(1))).collect::<Vec<(String, String)>>())
    };
    Ok(Deps {
        owner: row.get(0),
        comment: row.get(1),
        rls: (row.get(2), row.get(3)),
        replica_identity: row.get(4),
        policies,
        views,
        foreign_keys: fk_rows.iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect(),
        triggers: trig_rows.iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect(),
        serial_sequences: seq_rows.iter().map(|r| (r.get(0), r.get(1))).collect(),
        identity: ident_rows
            .iter()
            .filter_map(|r| Some((r.get::<_, Option<String>>(0)?, r.get::<_, Option<String>>(1)?)))
            .collect(),
        old_indexes: indexes(t.clone()).await?,
        new_indexes: indexes(s.clone()).await?,
    })
}

/// The final names of the constraints of `rel` (a qualified name) whose names PostgreSQL
/// generated for the table named `generated_on` (the shadow or the trial copy): for each, in
/// creation order, `(name, the name a plain ALTER on the table named target would give it)`
/// ([`generated_names`]), checked against the relations and constraints of the schema and the
/// names chosen before it. Constraints named in `skip` (those that were there before the ALTER
/// ran) and those `only` does not name (when given) are left out.
///
/// [`generated_names`]: crate::generated_names
pub async fn final_constraint_names(
    c: &impl GenericClient,
    rel: &str,
    generated_on: &str,
    target: &str,
    skip: &[String],
    only: Option<&str>,
) -> std::result::Result<Vec<(String, String)>, tokio_postgres::Error> {
    use crate::generated_names::{addition, choose_name, is_generated, make_object_name, Kind};
    let mut found = Vec::new();
    for r in c.query(sql::CONSTRAINTS_FOR_NAMING, &[&rel]).await? {
        let (name, contype, columns): (String, String, Vec<Option<String>>) = (r.get(0), r.get(1), r.get(2));
        let Some(kind) = Kind::from_contype(&contype) else { continue };
        if skip.contains(&name) || only.is_some_and(|o| o != name) {
            continue;
        }
        let add = addition(kind, &columns);
        if is_generated(&name, generated_on, add.as_deref(), kind) {
            found.push((name, kind, add));
        }
    }
    if found.is_empty() {
        return Ok(Vec::new());
    }
    // Which of the names the choice may try are taken (the first 100 numbered labels each; a
    // name taken beyond that makes the rename fail and the swap roll back).
    let tries: Vec<String> = found
        .iter()
        .flat_map(|(_, kind, add)| {
            (0..100u32).map(move |pass| {
                let label = if pass == 0 { kind.label().to_string() } else { format!("{}{pass}", kind.label()) };
                make_object_name(target, add.as_deref(), &label)
            })
        })
        .collect();
    let mut relations = std::collections::HashSet::new();
    let mut constraints = std::collections::HashSet::new();
    for r in c.query(sql::NAMES_TAKEN_IN_SCHEMA, &[&rel, &tries]).await? {
        let (kind, name): (&str, String) = (r.get(0), r.get(1));
        if kind == "r" {
            relations.insert(name);
        } else {
            constraints.insert(name);
        }
    }
    let mut out = Vec::new();
    for (name, kind, add) in found {
        let chosen =
            choose_name(target, add.as_deref(), kind, |n| constraints.contains(n) || (kind.has_index() && relations.contains(n)));
        constraints.insert(chosen.clone());
        if kind.has_index() {
            relations.insert(chosen.clone());
        }
        out.push((name, chosen));
    }
    Ok(out)
}

/// `_<name>_old`, within the identifier limit.
fn old_name(name: &str) -> String {
    generated_name(name, "old", MAX_IDENTIFIER_BYTES, byte_len)
}

/// The check before the swap: the table still has the columns and indexes the plan was made
/// from, and all four capture triggers are present and fire in every session role
/// (`tgenabled = 'A'`, see [`sql::capture_triggers`]). Run by the swap transaction under its
/// `ACCESS EXCLUSIVE` lock, so nothing can change between the check and the renames, and earlier
/// without the lock for an early error.
///
/// Errors: [`shadowswap_engine::Error::Refused`] naming what changed and what to do.
pub async fn verify_unchanged(c: &impl GenericClient, plan: &Plan) -> Result<()> {
    let n = &plan.names;
    let ctx = "checking the table before the swap";
    let now = crate::Postgres::shape_on(c, &Qualified(&n.table).to_string()).await.map_err(|e| errors::db(ctx, e))?;
    if now.columns != plan.original.columns || now.indexes != plan.original.indexes {
        return Err(shadowswap_engine::Error::refused(format!(
            "{} was altered by another session during the run (its columns or indexes differ from when the run began); \
             the shadow no longer mirrors it, so the run stops without swapping: run the migration again",
            n.table
        )));
    }
    let names: Vec<String> = sql::capture_triggers(n).to_vec();
    let rows = c
        .query(sql::CAPTURE_TRIGGERS_ENABLED, &[&Qualified(&n.table).to_string(), &names])
        .await
        .map_err(|e| errors::db(ctx, e))?;
    let ok: Vec<String> = rows.iter().filter(|r| r.get::<_, String>(1) == "A").map(|r| r.get(0)).collect();
    if let Some(missing) = names.iter().find(|t| !ok.contains(t)) {
        return Err(shadowswap_engine::Error::refused(format!(
            "capture trigger {missing} on {} was dropped or disabled during the run, so writes may have missed the shadow; \
             the run stops without swapping: run the migration again",
            n.table
        )));
    }
    Ok(())
}

/// The swap transaction. On any error it rolls back: the original keeps serving, unchanged.
/// Foreign keys from other tables are re-added `NOT VALID` inside the transaction (no scan under
/// the lock) and validated right after it, which takes only a SHARE UPDATE EXCLUSIVE lock.
pub async fn swap(c: &mut deadpool_postgres::Object, plan: &Plan, lock_timeout: Duration) -> Result<()> {
    let n = &plan.names;
    let ctx = "swapping the tables";
    let e = |e| errors::db(ctx, e);
    let tx = c.transaction().await.map_err(e)?;
    tx.batch_execute(&format!(
        "SET LOCAL lock_timeout = '{}ms'; LOCK TABLE {}, {} IN ACCESS EXCLUSIVE MODE; SET LOCAL search_path = pg_catalog, pg_temp",
        lock_timeout.as_millis().max(1),
        Qualified(&n.table),
        Qualified(&n.shadow)
    ))
    .await
    .map_err(e)?;
    // Dependents created since the preflight: refuse under the lock rather than leave one bound
    // to the old table (the transaction rolls back; the original keeps serving).
    crate::deps::refuse_unhandled(&*tx, n).await?;
    // DDL on the table, or a capture trigger dropped or disabled, since the preflight: the shadow
    // no longer mirrors the table; refuse under the lock (the transaction rolls back).
    verify_unchanged(&*tx, plan).await?;
    let d = read_deps(&tx, plan).await?;
    let renamed: Vec<(&str, &str)> =
        plan.mapping.iter().filter(|m| m.source != m.target).map(|m| (m.target.as_str(), m.source.as_str())).collect();
    let carried = crate::deps::read(&tx, plan, &renamed).await?;
    let t = Qualified(&n.table).to_string();
    let schema = Ident(&n.table.schema).to_string();
    let mut stmts: Vec<String> = Vec::new();
    for (_, child, _) in &d.foreign_keys {
        stmts.push(format!("LOCK TABLE {child} IN SHARE ROW EXCLUSIVE MODE"));
    }
    stmts.extend(sql::capture_triggers(n).iter().flat_map(|name| sql::drop_capture(&n.table, name)));
    stmts.push(format!("ALTER TABLE {t} RENAME TO {}", Ident(&n.old.name)));
    stmts.push(format!("ALTER TABLE {} RENAME TO {}", Qualified(&n.shadow), Ident(&n.table.name)));
    // Index (and so constraint) names: the old table's move aside, the new table's take them.
    let mut renames_new = Vec::new();
    let mut used = vec![false; d.new_indexes.len()];
    // A renamed column shows under its new name in the new table's index definitions.
    let new_defs: Vec<String> = d.new_indexes.iter().map(|(_, nd)| sql::index_def_key(nd, &renamed)).collect();
    let mut new_index_names = Vec::new();
    for (old, def) in &d.old_indexes {
        let def = sql::index_def_key(def, &[]);
        if let Some(i) = new_defs.iter().enumerate().position(|(i, nd)| !used[i] && *nd == def) {
            used[i] = true;
            new_index_names.push(old.clone());
            stmts.push(format!("ALTER INDEX {schema}.{} RENAME TO {}", Ident(old), Ident(&old_name(old))));
            renames_new.push(format!("ALTER INDEX {schema}.{} RENAME TO {}", Ident(&d.new_indexes[i].0), Ident(old)));
        }
    }
    stmts.extend(renames_new);
    stmts.extend(carried.statistics.iter().cloned());
    // The owner first: `OWNED BY` needs the sequence and the table to have the same owner, and
    // the new table (created by shadowswap's user) takes its owned identity sequences along.
    if d.owner != "CURRENT_USER" {
        stmts.push(format!("ALTER TABLE {t} OWNER TO {}", d.owner));
    }
    // Sequences owned by a column, and column privileges, follow the column to its name in the
    // new table (the ALTER may rename it); a dropped column's go with the old table.
    let target_of = |col: &str| plan.mapping.iter().find(|m| m.source == col).map(|m| m.target.as_str());
    for (seq, col) in &d.serial_sequences {
        if let Some(target) = target_of(col) {
            stmts.push(format!("ALTER SEQUENCE {seq} OWNED BY {t}.{}", Ident(target)));
        }
    }
    for (old_seq, new_seq) in &d.identity {
        stmts.push(format!("SELECT setval({}, s.last_value, s.is_called) FROM {old_seq} s", literal(new_seq)));
        let bare = old_seq.rsplit('.').next().unwrap_or(old_seq).trim_matches('"').to_string();
        stmts.push(format!("ALTER SEQUENCE {old_seq} RENAME TO {}", Ident(&old_name(&bare))));
        stmts.push(format!("ALTER SEQUENCE {new_seq} RENAME TO {}", Ident(&bare)));
        stmts.extend(crate::deps::identity_sequence_extras(&tx, old_seq).await?);
    }
    stmts.extend(d.views.iter().cloned());
    stmts.extend(carried.bodies.iter().cloned());
    stmts.extend(carried.not_valid.iter().cloned());
    stmts.extend(crate::deps::constraint_comment_statements(plan, &carried));
    for (name, child, def) in &d.foreign_keys {
        stmts.push(format!("ALTER TABLE {child} DROP CONSTRAINT {}", Ident(name)));
        stmts.push(format!("ALTER TABLE {child} ADD CONSTRAINT {} {def} NOT VALID", Ident(name)));
    }
    for (name, def, enabled) in &d.triggers {
        stmts.push(def.clone());
        match enabled.as_str() {
            "D" => stmts.push(format!("ALTER TABLE {t} DISABLE TRIGGER {}", Ident(name))),
            "R" => stmts.push(format!("ALTER TABLE {t} ENABLE REPLICA TRIGGER {}", Ident(name))),
            "A" => stmts.push(format!("ALTER TABLE {t} ENABLE ALWAYS TRIGGER {}", Ident(name))),
            _ => {}
        }
    }
    if d.rls.0 {
        stmts.push(format!("ALTER TABLE {t} ENABLE ROW LEVEL SECURITY"));
    }
    if d.rls.1 {
        stmts.push(format!("ALTER TABLE {t} FORCE ROW LEVEL SECURITY"));
    }
    stmts.extend(d.policies.iter().cloned());
    stmts.extend(carried.own_comments.iter().cloned());
    match d.replica_identity.as_str() {
        "f" => stmts.push(format!("ALTER TABLE {t} REPLICA IDENTITY FULL")),
        "n" => stmts.push(format!("ALTER TABLE {t} REPLICA IDENTITY NOTHING")),
        _ => {}
    }
    // REPLICA IDENTITY USING INDEX and CLUSTER ON name an index: the new table's, by its old name.
    stmts.extend(crate::deps::index_role_statements(plan, &carried, &new_index_names));
    if let Some(comment) = &d.comment {
        stmts.push(format!("COMMENT ON TABLE {t} IS {}", literal(comment)));
    }
    for s in &stmts {
        tracing::debug!(sql = %s, "cut-over");
        tx.batch_execute(s).await.map_err(|err| {
            let class = errors::db(ctx, err);
            match class {
                Error::Database { class: shadowswap_engine::error::ErrorClass::Fatal, message, .. } => Error::Database {
                    context: format!("{ctx} (while running: {s})"),
                    message,
                    class: shadowswap_engine::error::ErrorClass::Fatal,
                },
                other => other,
            }
        })?;
    }
    // Constraints the ALTER created without a name carry names generated for the shadow
    // (`_t_new_c2_key`): give each the name a plain ALTER on the table would have given it
    // (`t_c2_key`), chosen now that the old table's names moved aside and the new table's took
    // the original names, as PostgreSQL would (in creation order, checked against the schema).
    let old_names = strings(
        &*tx,
        ctx,
        "SELECT conname::text FROM pg_constraint WHERE conrelid = $1::text::regclass",
        &[&Qualified(&n.old).to_string()],
    )
    .await?;
    for (generated, chosen) in
        final_constraint_names(&*tx, &t, &n.shadow.name, &n.table.name, &old_names, None).await.map_err(e)?
    {
        let s = sql::rename_constraint(&n.table, &generated, &chosen);
        tracing::debug!(sql = %s, "cut-over");
        tx.batch_execute(&s).await.map_err(|err| errors::db(&format!("{ctx} (while running: {s})"), err))?;
    }
    // Privileges last, once the owner is set: the new table's and its columns' ACLs become
    // exactly the original's.
    for s in acl_statements(&tx, plan).await? {
        tracing::debug!(sql = %s, "cut-over");
        tx.batch_execute(&s).await.map_err(|err| errors::db(&format!("{ctx} (while running: {s})"), err))?;
    }
    tx.commit().await.map_err(e)?;
    Ok(())
}

/// The ACL entries of a relation (`column` NULL) or of its columns, as
/// `(column, sql::AclEntry)`; a NULL table ACL as its default (`acldefault`), a NULL column ACL
/// as empty.
async fn acl_entries(tx: &Transaction<'_>, table: &TableRef) -> Result<Vec<(Option<String>, sql::AclEntry)>> {
    let rows = tx
        .query(
            "SELECT col, pg_get_userbyid(a.grantor)::text, CASE WHEN a.grantee = 0 THEN NULL ELSE pg_get_userbyid(a.grantee)::text END, \
                    a.privilege_type, a.is_grantable \
             FROM (SELECT NULL::text AS col, coalesce(c.relacl, acldefault('r', c.relowner)) AS acl FROM pg_class c \
                   WHERE c.oid = $1::text::regclass \
                   UNION ALL SELECT att.attname::text, att.attacl FROM pg_attribute att \
                   WHERE att.attrelid = $1::text::regclass AND att.attnum > 0 AND NOT att.attisdropped AND att.attacl IS NOT NULL) x, \
                  aclexplode(x.acl) a ORDER BY 1, 2, 3, 4",
            &[&Qualified(table).to_string()],
        )
        .await
        .map_err(|e| errors::db("reading the table's privileges", e))?;
    Ok(rows
        .iter()
        .map(|r| (r.get(0), sql::AclEntry { grantor: r.get(1), grantee: r.get(2), privilege: r.get(3), grantable: r.get(4) }))
        .collect())
}

/// After the renames: the statements that make the new table's ACL, and each column's, equal
/// the original's (now `plan.names.old`) — grants the original has are added, with their
/// grantors and grant options, and any other (those of the role that created the shadow, its
/// default privileges) removed. A column follows the ALTER's renames; a column the ALTER adds
/// has no column privileges, as with a plain ALTER.
async fn acl_statements(tx: &Transaction<'_>, plan: &Plan) -> Result<Vec<String>> {
    let n = &plan.names;
    let owner: String = tx
        .query_one(
            "SELECT pg_get_userbyid(relowner)::text FROM pg_class WHERE oid = $1::text::regclass",
            &[&Qualified(&n.table).to_string()],
        )
        .await
        .map_err(|e| errors::db("reading the table's owner", e))?
        .get(0);
    // Roles the session may act as, to make a grant in its grantor's name.
    let can_set_role: Vec<String> = tx
        .query("SELECT rolname::text FROM pg_roles WHERE pg_has_role(current_user, oid, 'MEMBER') ORDER BY 1", &[])
        .await
        .map_err(|e| errors::db("reading the table's privileges", e))?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let old = acl_entries(tx, &n.old).await?;
    let new = acl_entries(tx, &n.table).await?;
    let of = |list: &[(Option<String>, sql::AclEntry)], col: Option<&str>| -> Vec<sql::AclEntry> {
        list.iter().filter(|(c, _)| c.as_deref() == col).map(|(_, e)| e.clone()).collect()
    };
    let mut stmts = sql::acl_statements(&n.table, None, &owner, &can_set_role, &of(&new, None), &of(&old, None));
    let mut columns: Vec<&str> = plan.mapping.iter().map(|m| m.target.as_str()).collect();
    for (c, _) in &new {
        if let Some(c) = c.as_deref().filter(|c| !columns.contains(c)) {
            columns.push(c);
        }
    }
    for target in columns {
        let want = match plan.mapping.iter().find(|m| m.target == target) {
            Some(m) => of(&old, Some(&m.source)),
            None => Vec::new(),
        };
        stmts.extend(sql::acl_statements(&n.table, Some(target), &owner, &can_set_role, &of(&new, Some(target)), &want));
    }
    Ok(stmts)
}

/// After the swap: validate the foreign keys from other tables that the swap re-added
/// `NOT VALID` (a scan under SHARE UPDATE EXCLUSIVE, which blocks no reads or writes). Outside
/// the swap's measured time. A failure is a warning: the constraint still holds for new rows.
pub async fn validate_foreign_keys(c: &impl GenericClient, plan: &Plan) -> Result<()> {
    let rows = c
        .query(
            "SELECT conrelid::regclass::text, conname::text FROM pg_constraint \
             WHERE confrelid = $1::text::regclass AND contype = 'f' AND NOT convalidated",
            &[&Qualified(&plan.names.table).to_string()],
        )
        .await
        .map_err(|e| errors::db("listing foreign keys to validate", e))?;
    for r in rows {
        let (child, name): (String, String) = (r.get(0), r.get(1));
        if let Err(err) = c.batch_execute(&format!("ALTER TABLE {child} VALIDATE CONSTRAINT {}", Ident(&name))).await {
            tracing::warn!(constraint = %name, table = %child, error = %errors::message(&err), "foreign key re-added NOT VALID; validate it later");
        }
    }
    Ok(())
}
