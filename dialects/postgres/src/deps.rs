//! Everything in the catalog that is bound to the table's OID (or to its row type, or to its
//! identity sequences), found through `pg_depend`, and what becomes of each at the swap.
//!
//! [`refuse_unhandled`] runs in the preflight, before anything is created: it lists every
//! dependent in `pg_depend` and refuses, naming it, each one of a kind the swap does not carry
//! over. The handled kinds are listed in one place (the query's `NOT (…)`), so a kind a newer
//! server adds is refused, not left bound to the old table. [`read`] (inside the swap
//! transaction, before the renames) reads the definitions the swap re-applies once the new table
//! has the name: SQL-standard function bodies, policies and rules of other tables, statistics
//! objects, constraints that are `NOT VALID`, identity sequences' grants and comments,
//! `REPLICA IDENTITY USING INDEX` and `CLUSTER ON`. [`prepare_shadow`] gives the new shadow
//! what `CREATE TABLE … (LIKE … INCLUDING ALL)` does not copy.
//!
//! Server docs: "pg_depend" (System Catalogs), "CREATE TABLE … LIKE", "ALTER POLICY",
//! "CREATE RULE" (`OR REPLACE`), "CREATE FUNCTION" (`sql_body`), "CREATE STATISTICS".

use shadowswap_engine::names::{byte_len, generated_name, Names};
use shadowswap_engine::plan::Plan;
use shadowswap_engine::{Error, Result};
use tokio_postgres::{GenericClient, Transaction};

use crate::deps_sql as q;
use crate::errors;
use crate::sql::{self, Qualified};
use crate::MAX_IDENTIFIER_BYTES;

/// Lists every object bound to the table that the swap would leave bound to the old table, as
/// `(kind identity, reason)`. Dependents of the handled kinds are excluded:
/// the table's own parts (indexes, TOAST table, owned sequences, row type and its array type,
/// defaults, constraints, triggers, statistics objects), views (re-created), foreign keys from
/// other tables (re-pointed), policies on any table (re-created / `ALTER POLICY`), rules of other
/// tables (`CREATE OR REPLACE RULE`), functions with SQL-standard bodies (`CREATE OR REPLACE`),
/// and kinds the preflight refuses with messages of their own (publications, materialized views,
/// rules on the table itself).
const UNHANDLED: &str = "\
WITH tbl AS (SELECT c.oid, c.reltype FROM pg_class c WHERE c.oid = $1::text::regclass), \
idseq AS (SELECT d.objid FROM pg_depend d, tbl WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass \
          AND d.refobjid = tbl.oid AND d.deptype = 'i' AND EXISTS (SELECT 1 FROM pg_class s WHERE s.oid = d.objid AND s.relkind = 'S')), \
dep AS ( \
  SELECT d.classid, d.objid, d.objsubid, d.deptype, 'table' AS via FROM pg_depend d, tbl \
   WHERE d.refclassid = 'pg_class'::regclass AND d.refobjid = tbl.oid \
  UNION ALL SELECT d.classid, d.objid, d.objsubid, d.deptype, 'rowtype' FROM pg_depend d, tbl \
   WHERE d.refclassid = 'pg_type'::regclass AND d.refobjid = tbl.reltype \
  UNION ALL SELECT d.classid, d.objid, d.objsubid, d.deptype, 'identity' FROM pg_depend d \
   WHERE d.refclassid = 'pg_class'::regclass AND d.refobjid IN (SELECT objid FROM idseq) \
     AND NOT (d.classid = 'pg_class'::regclass AND d.objid = $1::text::regclass) \
) \
SELECT DISTINCT (SELECT format('%s %s', o.type, o.identity) FROM pg_identify_object(dep.classid, dep.objid, dep.objsubid) o), \
       CASE dep.via WHEN 'rowtype' THEN 'uses the row type of the table, which the new table does not share' \
                    WHEN 'identity' THEN 'uses an identity sequence of the table, which the new table replaces' \
                    ELSE 'is bound to the table and shadowswap cannot carry this kind of object over' END \
FROM dep, tbl WHERE NOT ( \
     (dep.via = 'table' AND dep.classid = 'pg_class'::regclass AND dep.deptype IN ('a', 'i') \
      AND EXISTS (SELECT 1 FROM pg_class x WHERE x.oid = dep.objid AND x.relkind IN ('S', 't', 'i', 'I'))) \
  OR (dep.via IN ('table', 'rowtype') AND dep.classid = 'pg_type'::regclass AND dep.deptype = 'i') \
  OR (dep.classid = 'pg_attrdef'::regclass AND dep.via <> 'identity' \
      AND EXISTS (SELECT 1 FROM pg_attrdef x WHERE x.oid = dep.objid AND x.adrelid = tbl.oid)) \
  OR (dep.classid = 'pg_constraint'::regclass AND EXISTS (SELECT 1 FROM pg_constraint x WHERE x.oid = dep.objid \
      AND (x.conrelid = tbl.oid OR (dep.via = 'table' AND x.contype = 'f' AND x.confrelid = tbl.oid)))) \
  OR (dep.classid = 'pg_trigger'::regclass AND EXISTS (SELECT 1 FROM pg_trigger x WHERE x.oid = dep.objid AND x.tgrelid = tbl.oid)) \
  OR (dep.classid = 'pg_statistic_ext'::regclass AND EXISTS (SELECT 1 FROM pg_statistic_ext x WHERE x.oid = dep.objid AND x.stxrelid = tbl.oid)) \
  OR (dep.via = 'table' AND dep.classid = 'pg_policy'::regclass) \
  OR (dep.via = 'table' AND dep.classid = 'pg_rewrite'::regclass AND EXISTS (SELECT 1 FROM pg_rewrite r JOIN pg_class v ON v.oid = r.ev_class \
      WHERE r.oid = dep.objid AND (v.relkind IN ('v', 'm') OR v.oid = tbl.oid OR v.relkind IN ('r', 'p')))) \
  OR (dep.via = 'table' AND dep.classid = 'pg_proc'::regclass AND EXISTS (SELECT 1 FROM pg_proc p WHERE p.oid = dep.objid AND p.prosqlbody IS NOT NULL)) \
  OR (dep.via = 'table' AND dep.classid = 'pg_publication_rel'::regclass) \
) ORDER BY 1";

/// The objects of other owners the swap re-creates (`CREATE OR REPLACE FUNCTION`, `CREATE OR
/// REPLACE RULE` and `ALTER POLICY` on another table need that object's or table's owner), as
/// `(object, owner)`, for those the session's user cannot act as.
const NOT_OURS: &str = "\
WITH dep AS (SELECT d.classid, d.objid FROM pg_depend d \
             WHERE d.refclassid = 'pg_class'::regclass AND d.refobjid = $1::text::regclass), \
obj AS ( \
  SELECT 'function ' || p.oid::regprocedure::text AS what, p.proowner AS owner FROM dep JOIN pg_proc p ON p.oid = dep.objid \
   WHERE dep.classid = 'pg_proc'::regclass AND p.prosqlbody IS NOT NULL \
  UNION SELECT format('rule %I on %s', r.rulename, c.oid::regclass), c.relowner FROM dep JOIN pg_rewrite r ON r.oid = dep.objid \
   JOIN pg_class c ON c.oid = r.ev_class WHERE dep.classid = 'pg_rewrite'::regclass AND c.relkind IN ('r', 'p') \
   AND c.oid <> $1::text::regclass \
  UNION SELECT format('policy %I on %s', pol.polname, c.oid::regclass), c.relowner FROM dep JOIN pg_policy pol ON pol.oid = dep.objid \
   JOIN pg_class c ON c.oid = pol.polrelid WHERE dep.classid = 'pg_policy'::regclass AND c.oid <> $1::text::regclass \
) \
SELECT DISTINCT format('%s (owned by %I)', what, pg_get_userbyid(owner)) FROM obj \
WHERE NOT pg_has_role(current_user, owner, 'USAGE') AND NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) ORDER BY 1";

/// Refuses a table that objects the swap cannot carry over are bound to, naming each: anything
/// in `pg_depend` that refers to the table, its row type or its identity sequences and is not of
/// a kind the swap re-creates or re-points (see the module doc); and objects the swap would
/// re-create that belong to a role the session's user is not a member of. Runs in the
/// preflight; creates nothing. Errors: [`Error::Refused`] naming the objects, [`Error::Database`].
pub async fn refuse_unhandled(c: &impl GenericClient, names: &Names) -> Result<()> {
    let t = Qualified(&names.table).to_string();
    // The other direction: a table that is a member of an extension would leave it at the swap.
    let ext = c
        .query(
            "SELECT e.extname::text FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid \
             WHERE d.classid = 'pg_class'::regclass AND d.objid = $1::text::regclass AND d.refclassid = 'pg_extension'::regclass \
               AND d.deptype = 'e'",
            &[&t],
        )
        .await
        .map_err(|e| errors::db("checking what depends on the table", e))?;
    if let Some(r) = ext.first() {
        return Err(Error::refused(format!(
            "{} is a member of extension {}; the swap would replace it with a table that is not. Migrate it with the \
             extension's own upgrade scripts, or detach it with ALTER EXTENSION … DROP TABLE first",
            names.table,
            r.get::<_, String>(0)
        )));
    }
    let typed: Option<String> = c
        .query_one("SELECT NULLIF(reloftype, 0)::regtype::text FROM pg_class WHERE oid = $1::text::regclass", &[&t])
        .await
        .map_err(|e| errors::db("checking what depends on the table", e))?
        .get(0);
    if let Some(ty) = typed {
        return Err(Error::refused(format!(
            "{} is a typed table (OF {ty}); the swap would replace it with a table that is not. Run ALTER TABLE … NOT OF \
             first, or use a plain ALTER TABLE",
            names.table
        )));
    }
    let rows = c.query(UNHANDLED, &[&t]).await.map_err(|e| errors::db("checking what depends on the table", e))?;
    if rows.is_empty() {
        let others: Vec<String> = c
            .query(NOT_OURS, &[&t])
            .await
            .map_err(|e| errors::db("checking what depends on the table", e))?
            .iter()
            .map(|r| r.get(0))
            .collect();
        if others.is_empty() {
            return Ok(());
        }
        return Err(Error::refused(format!(
            "the swap re-creates objects that use {} and belong to other roles: {}; only their owner may do that. Connect \
             as a member of those roles (or a superuser), or drop them for the migration and re-create them afterwards",
            names.table,
            others.join(", ")
        )));
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

/// Refuses an ALTER that names a `NOT VALID` constraint of the table or drops or renames one of
/// its columns: those constraints are left off the shadow (its copy would reject the old rows
/// they never checked) and re-added `NOT VALID` at the swap, from their definitions. Runs
/// before anything is created. Errors: [`Error::Refused`], [`Error::Database`].
pub async fn refuse_not_valid_conflicts(c: &impl GenericClient, plan: &Plan) -> Result<()> {
    let lost = plan.renamed_or_dropped_columns();
    let named = sql::referenced_index_or_constraint_names(&plan.analysis.spec);
    let rows = c
        .query(
            "SELECT DISTINCT co.conname::text FROM pg_constraint co \
             LEFT JOIN pg_attribute a ON a.attrelid = co.conrelid AND a.attnum = ANY (co.conkey) \
             WHERE co.conrelid = $1::text::regclass AND NOT co.convalidated AND co.contype IN ('c', 'f') \
               AND (co.conname::text = ANY ($2) OR a.attname::text = ANY ($3)) ORDER BY 1",
            &[&Qualified(&plan.names.table).to_string(), &named, &lost],
        )
        .await
        .map_err(|e| errors::db("checking the NOT VALID constraints", e))?;
    if rows.is_empty() {
        return Ok(());
    }
    let found: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    Err(Error::refused(format!(
        "the ALTER names, or drops or renames a column of, NOT VALID constraints of {} ({}); shadowswap keeps NOT VALID \
         constraints off the shadow and re-adds them at the swap. Validate or drop them first, or change the ALTER",
        plan.names.table,
        found.join(", ")
    )))
}

/// Gives the shadow, right after `CREATE TABLE … (LIKE … INCLUDING ALL)` and before the user's
/// ALTER, what `LIKE` does not copy or copies wrongly: per-column statistics targets and
/// attribute options, the TOAST table's storage parameters, the tablespace; and it drops the
/// copies of `NOT VALID` CHECK constraints, which `LIKE` makes valid (the copy would then reject
/// old rows the original never checked). They are re-added `NOT VALID` at the swap ([`read`]).
pub async fn prepare_shadow(tx: &Transaction<'_>, plan: &Plan) -> Result<()> {
    let ctx = "giving the shadow table the original's settings";
    let e = |e| errors::db(ctx, e);
    let t = Qualified(&plan.names.table).to_string();
    let shadow = &plan.names.shadow;
    let mut stmts = Vec::new();
    for r in tx
        .query(
            "SELECT attname::text, attstattarget::int, coalesce(attoptions, '{}')::text[] FROM pg_attribute \
             WHERE attrelid = $1::text::regclass AND attnum > 0 AND NOT attisdropped AND (attstattarget >= 0 OR attoptions IS NOT NULL) \
             ORDER BY attnum",
            &[&t],
        )
        .await
        .map_err(e)?
    {
        stmts.extend(q::column_settings(shadow, r.get::<_, &str>(0), r.get(1), &r.get::<_, Vec<String>>(2)));
    }
    let row = tx
        .query_one(
            "SELECT coalesce((SELECT reloptions FROM pg_class WHERE oid = c.reltoastrelid), '{}')::text[], \
                    (SELECT spcname::text FROM pg_tablespace WHERE oid = c.reltablespace) \
             FROM pg_class c WHERE c.oid = $1::text::regclass",
            &[&t],
        )
        .await
        .map_err(e)?;
    stmts.extend(q::toast_options(shadow, &row.get::<_, Vec<String>>(0)));
    if let Some(space) = row.get::<_, Option<String>>(1) {
        stmts.push(q::set_tablespace(shadow, &space));
    }
    for r in tx
        .query(
            "SELECT conname::text FROM pg_constraint WHERE conrelid = $1::text::regclass AND contype = 'c' AND NOT convalidated",
            &[&t],
        )
        .await
        .map_err(e)?
    {
        stmts.push(q::drop_constraint(shadow, r.get(0)));
    }
    for s in &stmts {
        tracing::debug!(sql = %s, "shadow");
        tx.batch_execute(s).await.map_err(e)?;
    }
    Ok(())
}

/// What the swap re-applies once the new table has the name, in order. Read inside the swap
/// transaction (with `search_path = pg_catalog`, so definitions print qualified names), before
/// the renames.
pub(crate) struct Carried {
    /// After the views: functions with SQL-standard bodies, rules and policies of other tables.
    pub bodies: Vec<String>,
    /// `NOT VALID` constraints of the table's own, re-added `NOT VALID`, with their comments.
    pub not_valid: Vec<String>,
    /// Statistics objects: the old table's move aside, the new table's copies take their names.
    pub statistics: Vec<String>,
    /// `(index name, replica identity, clustered)` of the original's indexes that are either.
    pub index_roles: Vec<(String, bool, bool)>,
    /// `(index name, column position, statistics target)` of the original's index columns
    /// with a statistics target (`ALTER INDEX … ALTER COLUMN n SET STATISTICS`).
    pub index_column_targets: Vec<(String, i16, i32)>,
    /// Comments of the table's own triggers and policies, which the swap re-creates from their
    /// definitions: to run after them.
    pub own_comments: Vec<String>,
    /// Constraint comments the new table lacks (`NOT VALID` and outgoing foreign keys).
    pub constraint_comments: Vec<(String, String)>,
}

/// An extended statistics object: schema, name, `stxkind` and columns (the matching key),
/// statistics target (< 0: default), comment and owner (quoted).
struct Stats {
    schema: String,
    name: String,
    key: String,
    target: i32,
    comment: Option<String>,
    owner: String,
}

fn old_name(name: &str) -> String {
    generated_name(name, "old", MAX_IDENTIFIER_BYTES, byte_len)
}

/// Reads what [`Carried`] describes. `renamed` are the ALTER's column renames (new, old).
pub(crate) async fn read(tx: &Transaction<'_>, plan: &Plan, renamed: &[(&str, &str)]) -> Result<Carried> {
    let ctx = "reading what depends on the table";
    let e = |e| errors::db(ctx, e);
    let n = &plan.names;
    let t = Qualified(&n.table).to_string();
    let s = Qualified(&n.shadow).to_string();
    let strings = |rows: Vec<tokio_postgres::Row>| rows.iter().map(|r| r.get::<_, String>(0)).collect::<Vec<_>>();
    let mut bodies = strings(
        tx.query(
            "SELECT DISTINCT pg_get_functiondef(p.oid) FROM pg_depend d JOIN pg_proc p ON p.oid = d.objid \
             WHERE d.classid = 'pg_proc'::regclass AND d.refclassid = 'pg_class'::regclass AND d.refobjid = $1::text::regclass \
               AND p.prosqlbody IS NOT NULL",
            &[&t],
        )
        .await
        .map_err(e)?,
    );
    bodies.extend(
        strings(
            tx.query(
                "SELECT DISTINCT pg_get_ruledef(r.oid) FROM pg_depend d JOIN pg_rewrite r ON r.oid = d.objid \
                 JOIN pg_class c ON c.oid = r.ev_class \
                 WHERE d.classid = 'pg_rewrite'::regclass AND d.refclassid = 'pg_class'::regclass AND d.refobjid = $1::text::regclass \
                   AND c.relkind IN ('r', 'p') AND c.oid <> d.refobjid",
                &[&t],
            )
            .await
            .map_err(e)?,
        )
        .iter()
        .map(|d| q::replace_rule(d)),
    );
    // ALTER POLICY with both expressions re-parses them against the names as they are now.
    bodies.extend(strings(
        tx.query(
            "SELECT DISTINCT format('ALTER POLICY %I ON %s%s%s', pol.polname, pol.polrelid::regclass::text, \
                    coalesce(' USING (' || pg_get_expr(pol.polqual, pol.polrelid) || ')', ''), \
                    coalesce(' WITH CHECK (' || pg_get_expr(pol.polwithcheck, pol.polrelid) || ')', '')) \
             FROM pg_depend d JOIN pg_policy pol ON pol.oid = d.objid \
             WHERE d.classid = 'pg_policy'::regclass AND d.refclassid = 'pg_class'::regclass AND d.refobjid = $1::text::regclass \
               AND pol.polrelid <> d.refobjid",
            &[&t],
        )
        .await
        .map_err(e)?,
    ));
    let mut not_valid = Vec::new();
    for r in tx
        .query(
            "SELECT conname::text, pg_get_constraintdef(oid) FROM pg_constraint \
             WHERE conrelid = $1::text::regclass AND contype IN ('c', 'f') AND NOT convalidated ORDER BY conname",
            &[&t],
        )
        .await
        .map_err(e)?
    {
        not_valid.push(q::add_constraint(&n.table, r.get(0), r.get(1)));
    }
    let constraint_comments = tx
        .query(
            "SELECT o.conname::text, obj_description(o.oid, 'pg_constraint') FROM pg_constraint o \
             WHERE o.conrelid = $1::text::regclass AND obj_description(o.oid, 'pg_constraint') IS NOT NULL \
               AND (NOT o.convalidated OR EXISTS (SELECT 1 FROM pg_constraint x WHERE x.conrelid = $2::text::regclass \
                    AND x.conname = o.conname AND obj_description(x.oid, 'pg_constraint') IS NULL))",
            &[&t, &s],
        )
        .await
        .map_err(e)?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    // Statistics objects: LIKE copied them to the shadow under generated names (and the ALTER
    // dropped or followed them as it would on the table); matched by kinds and columns.
    let stats = |rel: String| async move {
        let rows = tx
            .query(
                "SELECT n.nspname::text, s.stxname::text, s.stxkind::text || ' ' || pg_get_statisticsobjdef_columns(s.oid), \
                        s.stxstattarget::int, obj_description(s.oid, 'pg_statistic_ext'), quote_ident(pg_get_userbyid(s.stxowner)) \
                 FROM pg_statistic_ext s JOIN pg_namespace n ON n.oid = s.stxnamespace WHERE s.stxrelid = $1::text::regclass ORDER BY 2",
                &[&rel],
            )
            .await
            .map_err(|e| errors::db(ctx, e))?;
        let read = |r: &tokio_postgres::Row| Stats {
            schema: r.get(0),
            name: r.get(1),
            key: r.get(2),
            target: r.get(3),
            comment: r.get(4),
            owner: r.get(5),
        };
        Ok::<_, Error>(rows.iter().map(read).collect::<Vec<Stats>>())
    };
    let (old_stats, new_stats) = (stats(t.clone()).await?, stats(s.clone()).await?);
    let mut used = vec![false; new_stats.len()];
    let new_keys: Vec<String> = new_stats.iter().map(|x| sql::index_def_key(&x.key, renamed)).collect();
    let (mut aside, mut take) = (Vec::new(), Vec::new());
    for old in &old_stats {
        let (schema, name) = (&old.schema, &old.name);
        let key = sql::index_def_key(&old.key, &[]);
        let Some(i) = (0..new_stats.len()).find(|&i| !used[i] && new_keys[i] == key) else { continue };
        used[i] = true;
        let new = &new_stats[i];
        aside.push(q::rename_statistics(schema, name, &old_name(name)));
        take.push(q::rename_statistics(&new.schema, &new.name, name));
        if new.schema != *schema {
            take.push(q::statistics_schema(&new.schema, name, schema));
        }
        if new.owner != old.owner {
            take.push(q::statistics_owner(schema, name, &old.owner));
        }
        if old.target >= 0 {
            take.push(q::statistics_target(schema, name, old.target));
        }
        if let Some(c) = &old.comment {
            take.push(q::comment_on_statistics(schema, name, c));
        }
    }
    aside.extend(take);
    let index_roles = tx
        .query(
            "SELECT ic.relname::text, i.indisreplident, i.indisclustered FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid \
             WHERE i.indrelid = $1::text::regclass AND (i.indisreplident OR i.indisclustered)",
            &[&t],
        )
        .await
        .map_err(e)?
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    let index_column_targets = tx
        .query(
            "SELECT ic.relname::text, a.attnum, a.attstattarget::int FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid \
             JOIN pg_attribute a ON a.attrelid = i.indexrelid WHERE i.indrelid = $1::text::regclass AND a.attstattarget >= 0 \
             ORDER BY 1, 2",
            &[&t],
        )
        .await
        .map_err(e)?
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    let mut own_comments = Vec::new();
    for r in tx
        .query(
            "SELECT 't', tgname::text, obj_description(oid, 'pg_trigger') FROM pg_trigger \
             WHERE tgrelid = $1::text::regclass AND NOT tgisinternal AND obj_description(oid, 'pg_trigger') IS NOT NULL \
             UNION ALL SELECT 'p', polname::text, obj_description(oid, 'pg_policy') FROM pg_policy \
             WHERE polrelid = $1::text::regclass AND obj_description(oid, 'pg_policy') IS NOT NULL ORDER BY 1, 2",
            &[&t],
        )
        .await
        .map_err(e)?
    {
        let (kind, name, comment): (&str, &str, &str) = (r.get(0), r.get(1), r.get(2));
        own_comments.push(match kind {
            "t" => q::comment_on_trigger(&n.table, name, comment),
            _ => q::comment_on_policy(&n.table, name, comment),
        });
    }
    Ok(Carried { bodies, not_valid, statistics: aside, index_roles, index_column_targets, own_comments, constraint_comments })
}

/// Grants and comment of an identity sequence of the original, for its replacement: the new
/// table's identity sequence, which takes the old one's name (`old_seq`, as
/// `pg_get_serial_sequence` prints it) in the swap.
pub(crate) async fn identity_sequence_extras(tx: &Transaction<'_>, old_seq: &str) -> Result<Vec<String>> {
    let rows = tx
        .query(
            "SELECT a.privilege_type::text, \
                    CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(a.grantee)) END || \
                    CASE WHEN a.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END \
             FROM pg_class c, aclexplode(c.relacl) a WHERE c.oid = $1::text::regclass AND a.grantee <> c.relowner",
            &[&old_seq],
        )
        .await
        .map_err(|e| errors::db("reading the identity sequences' grants", e))?;
    let mut out: Vec<String> = rows.iter().map(|r| q::grant_on_sequence(old_seq, r.get(0), r.get(1))).collect();
    let comment: Option<String> = tx
        .query_one("SELECT obj_description($1::text::regclass, 'pg_class')", &[&old_seq])
        .await
        .map_err(|e| errors::db("reading the identity sequences' comments", e))?
        .get(0);
    if let Some(c) = comment {
        out.push(q::comment_on_sequence(old_seq, &c));
    }
    Ok(out)
}

/// Statements for [`Carried::index_roles`] and [`Carried::index_column_targets`] once the new
/// table's indexes have the old names:
/// only for indexes the new table has under that name (`new_names`).
pub(crate) fn index_role_statements(plan: &Plan, carried: &Carried, new_names: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for (index, replident, clustered) in &carried.index_roles {
        if !new_names.contains(index) {
            continue;
        }
        if *replident {
            out.push(q::replica_identity_index(&plan.names.table, index));
        }
        if *clustered {
            out.push(q::cluster_on(&plan.names.table, index));
        }
    }
    for (index, column, target) in &carried.index_column_targets {
        if new_names.contains(index) {
            out.push(q::index_column_statistics(&plan.names.table.schema, index, *column, *target));
        }
    }
    out
}

/// The constraint comments of [`Carried::constraint_comments`] as statements.
pub(crate) fn constraint_comment_statements(plan: &Plan, carried: &Carried) -> Vec<String> {
    carried.constraint_comments.iter().map(|(name, c)| q::comment_on_constraint(&plan.names.table, name, c)).collect()
}
