//! The differential runner on PostgreSQL: `t` migrated by shadowswap, `t_clone` by a plain
//! `ALTER TABLE`, in database `ssw_diff_pg_<slug>_<mode>`.

use std::sync::Arc;

use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, SimpleQueryMessage};

use super::{db_name, drive, judge, subst, ApplyOps, Case, Mode, OpResult, Ran, Snapshot, Verdict, DB, PANICKED};
use crate::postgres::{client, server_dsn, PgTestDb};

/// The application's session time zone for writers (+05:00, no daylight saving time).
const APP_TIME_ZONE: &str = "Asia/Karachi";

fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn err_text(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(d) => format!("{} [{}]", d.message(), d.code().code()),
        None => e.to_string(),
    }
}

async fn text_rows(c: &Client, sql: &str) -> Result<Vec<Vec<Option<String>>>, String> {
    let msgs = c.simple_query(sql).await.map_err(|e| format!("{sql}: {}", err_text(&e)))?;
    Ok(msgs
        .into_iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => Some((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect()),
            _ => None,
        })
        .collect())
}

/// Run `ops` (with [`super::T`]) on `table` in one application session (TimeZone
/// Asia/Karachi, +05:00), after `session`; deadlocks are retried.
async fn apply_ops(dsn: String, table: &'static str, session: Vec<String>, ops: Vec<String>) -> Vec<OpResult> {
    let c = client(&dsn).await;
    c.batch_execute(&format!("SET TimeZone = '{APP_TIME_ZONE}'")).await.expect("writer time zone");
    for s in &session {
        c.batch_execute(s).await.unwrap_or_else(|e| panic!("{s}: {e}"));
    }
    let mut out = Vec::new();
    for op in ops {
        let sql = subst(&op, table, &quoted(table));
        let mut tries = 0;
        let r = loop {
            match c.execute(sql.as_str(), &[]).await {
                Ok(n) => break Ok(n),
                Err(e) if e.code() == Some(&SqlState::T_R_DEADLOCK_DETECTED) && tries < 10 => tries += 1,
                Err(e) => break Err(err_text(&e)),
            }
        };
        out.push(r);
    }
    out
}

/// The definition of `table` — columns (type, NOT NULL, default, generated, identity,
/// collation, statistics target, ACL, comment), constraints (`pg_get_constraintdef`, validity),
/// indexes (`pg_get_indexdef`, replica identity), the table's replica identity, ACL, comment and
/// owner, its sequences' ACLs — with the name made `t`; and every row, every column as `::text`
/// (the `now` columns as epoch seconds).
pub async fn snapshot(c: &Client, table: &str, now: &[String]) -> Result<Snapshot, String> {
    let rel = format!("'public.{}'::regclass", quoted(table));
    let queries = [
        format!(
            "SELECT 'column ' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod) || ' notnull=' || a.attnotnull \
             || ' default=' || coalesce(pg_get_expr(d.adbin, d.adrelid), '-') || ' generated=' || a.attgenerated::text \
             || ' identity=' || a.attidentity::text || ' collation=' || coalesce(co.collname, '-') || ' statistics=' || a.attstattarget \
             || ' acl=' || coalesce(a.attacl::text, '-') || ' comment=' || coalesce(col_description(a.attrelid, a.attnum), '-') \
             FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum \
             LEFT JOIN pg_collation co ON co.oid = a.attcollation AND a.attcollation <> 0 \
             WHERE a.attrelid = {rel} AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum"
        ),
        format!(
            "SELECT 'constraint ' || conname || ' ' || contype::text || ' ' || pg_get_constraintdef(oid) || ' valid=' || convalidated \
             FROM pg_constraint WHERE conrelid = {rel} ORDER BY conname"
        ),
        format!(
            "SELECT 'index ' || pg_get_indexdef(indexrelid) || ' replica_identity=' || indisreplident \
             FROM pg_index WHERE indrelid = {rel} ORDER BY 1"
        ),
        format!(
            "SELECT 'table replica_identity=' || relreplident::text || ' acl=' || coalesce(relacl::text, '-') \
             || ' comment=' || coalesce(obj_description(oid, 'pg_class'), '-') || ' owner=' || relowner::regrole::text \
             FROM pg_class WHERE oid = {rel}"
        ),
        format!(
            "SELECT 'sequence acl=' || coalesce(s.relacl::text, '-') FROM pg_depend dp JOIN pg_class s ON s.oid = dp.objid \
             WHERE dp.classid = 'pg_class'::regclass AND dp.refobjid = {rel} AND s.relkind = 'S' ORDER BY 1"
        ),
    ];
    let mut definition = Vec::new();
    for q in &queries {
        for r in text_rows(c, q).await? {
            definition.push(r[0].clone().unwrap_or_default().replace("t_clone", "t"));
        }
    }
    let cols: Vec<String> = text_rows(
        c,
        &format!("SELECT attname FROM pg_attribute WHERE attrelid = {rel} AND attnum > 0 AND NOT attisdropped ORDER BY attnum"),
    )
    .await?
    .into_iter()
    .map(|r| r[0].clone().unwrap())
    .collect();
    let exprs: Vec<String> = cols
        .iter()
        .map(|name| {
            if now.contains(name) {
                format!("extract(epoch FROM {})::text", quoted(name))
            } else {
                format!("{}::text", quoted(name))
            }
        })
        .collect();
    let rows = text_rows(c, &format!("SELECT {} FROM public.{}", exprs.join(", "), quoted(table))).await?;
    Ok(Snapshot { definition, columns: cols, rows })
}

/// Run `case` in `mode` on PostgreSQL (see the module [`super`]); `Err` is the finding.
pub async fn run(case: &Case, mode: Mode) -> Result<Verdict, String> {
    let db = PgTestDb::new(&db_name(case, mode)).await;
    for s in &case.db_setup {
        db.client.batch_execute(&s.replace(DB, &quoted(&db.name))).await.map_err(|e| format!("{s}: {}", err_text(&e)))?;
    }
    // A session of its own after the database setup: it sees the database's settings, as a
    // plain ALTER by the operator would.
    let c = client(&db.dsn).await;
    for table in ["t", "t_clone"] {
        for s in &case.setup {
            let s = subst(s, table, &quoted(table));
            c.batch_execute(&s).await.map_err(|e| format!("setup failed (a generator bug): {s}: {}", err_text(&e)))?;
        }
    }
    let writers = mode == Mode::Writers && !case.ops.is_empty();
    let ops = if writers { case.ops.clone() } else { Vec::new() };
    let clone_ops = apply_ops(db.dsn.clone(), "t_clone", case.writer_session.clone(), ops.clone()).await;
    let pre = snapshot(&c, "t_clone", &[]).await?;
    let native = c.batch_execute(&format!("ALTER TABLE public.t_clone {}", case.alter)).await.map_err(|e| err_text(&e));
    let post = match &native {
        Ok(()) => Some(snapshot(&c, "t_clone", &case.now_columns).await?),
        Err(_) => None,
    };

    let dsn = db.dsn.clone();
    let session = case.writer_session.clone();
    let apply: ApplyOps = Arc::new(move |ops| Box::pin(apply_ops(dsn.clone(), "t", session.clone(), ops)));
    let (result, orig_ops) = drive(db.dialect().await, case, mode, db.table("t"), &db.name, apply).await;
    if let Err(e) = &result {
        if e.starts_with(PANICKED) {
            return Err(e.clone());
        }
    }

    let tables = db.tables().await;
    let leftovers = db.capture_leftovers().await;
    if tables != ["t", "t_clone"] || !leftovers.is_empty() {
        return Err(format!("left behind after the run ({result:?}): tables {tables:?}, capture objects {leftovers:?}"));
    }
    let ran = Ran { result, native, ops, orig_ops, clone_ops, pre, post };
    let verdict = judge(case, ran, false, |with_now| {
        let now: &[String] = if with_now { &case.now_columns } else { &[] };
        snapshot(&c, "t", now)
    })
    .await?;
    drop(c);
    let admin = client(&server_dsn()).await;
    let _ = admin.batch_execute(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", quoted(&db.name))).await;
    Ok(verdict)
}
