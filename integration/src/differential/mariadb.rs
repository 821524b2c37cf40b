//! The differential runner on MariaDB: `t` migrated by shadowswap, `t_clone` by
//! `ALTER TABLE … , ALGORITHM=COPY`, in database `ssw_diff_my_<slug>_<mode>`.

use std::sync::Arc;

use mysql_async::prelude::Queryable;
use mysql_async::{Pool, Row, Value};

use super::{db_name, drive, judge, subst, ApplyOps, Case, Mode, OpResult, Ran, Snapshot, Verdict, DB, PANICKED};
use crate::mysql::TestDb;

/// The application's session time zone for writers.
const APP_TIME_ZONE: &str = "+05:00";

fn quoted(table: &str) -> String {
    format!("`{}`", table.replace('`', "``"))
}

async fn exec(pool: &Pool, sql: &str) -> Result<(), String> {
    let mut c = pool.get_conn().await.map_err(|e| e.to_string())?;
    c.query_drop(sql).await.map_err(|e| format!("{sql}: {e}"))
}

/// Run `ops` (with [`super::T`]) on `table` in one application session at +05:00, after
/// `session`; deadlocks and lock wait timeouts are retried.
async fn apply_ops(pool: Pool, table: &'static str, session: Vec<String>, ops: Vec<String>) -> Vec<OpResult> {
    let mut c = pool.get_conn().await.expect("writer connection");
    c.query_drop(format!("SET time_zone = '{APP_TIME_ZONE}'")).await.expect("writer time zone");
    for s in &session {
        c.query_drop(s).await.unwrap_or_else(|e| panic!("{s}: {e}"));
    }
    let mut out = Vec::new();
    for op in ops {
        let sql = subst(&op, table, &quoted(table));
        let mut tries = 0;
        let r = loop {
            match c.query_drop(&sql).await {
                Ok(()) => break Ok(c.affected_rows()),
                Err(mysql_async::Error::Server(e)) if (e.code == 1213 || e.code == 1205) && tries < 10 => tries += 1,
                Err(e) => break Err(e.to_string()),
            }
        };
        out.push(r);
    }
    out
}

/// The definition (`SHOW CREATE TABLE`, the name made `t`, `AUTO_INCREMENT=` left out) and
/// every row of `table`, each value as the server renders it: numbers and temporal values as
/// text, strings, binaries, JSON, ENUM and SET as `HEX()` (their bytes), the `now` columns as
/// `UNIX_TIMESTAMP()`.
pub async fn snapshot(db: &TestDb, table: &str, now: &[String]) -> Result<Snapshot, String> {
    let mut c = db.pool.get_conn().await.map_err(|e| e.to_string())?;
    // As bytes: a binary column's default is shown as it is stored, not always UTF-8.
    let create: Option<Row> = c
        .query_first(format!("SHOW CREATE TABLE {}", quoted(table)))
        .await
        .map_err(|e| format!("SHOW CREATE TABLE {table}: {e}"))?;
    let create = match create.ok_or("no SHOW CREATE TABLE row")?.unwrap().pop() {
        Some(Value::Bytes(b)) => String::from_utf8_lossy(&b).into_owned(),
        other => return Err(format!("SHOW CREATE TABLE {table}: {other:?}")),
    };
    let create = create.replace(&quoted(table), "`t`");
    let definition = create.lines().map(|l| strip_auto_increment(l.trim())).collect();
    let cols: Vec<(String, String)> = c
        .exec(
            "SELECT COLUMN_NAME, DATA_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION",
            (&db.name, table),
        )
        .await
        .map_err(|e| e.to_string())?;
    let exprs: Vec<String> = cols
        .iter()
        .map(|(name, ty)| {
            let q = quoted(name);
            if now.contains(name) {
                format!("UNIX_TIMESTAMP({q})")
            } else {
                match ty.as_str() {
                    "tinyint" | "smallint" | "mediumint" | "int" | "bigint" | "decimal" | "float" | "double" | "year"
                    | "date" | "datetime" | "timestamp" | "time" => format!("CAST({q} AS CHAR)"),
                    _ => format!("HEX({q})"),
                }
            }
        })
        .collect();
    let rows: Vec<Row> = c
        .query(format!("SELECT {} FROM {}", exprs.join(", "), quoted(table)))
        .await
        .map_err(|e| format!("reading {table}: {e}"))?;
    let rows = rows
        .into_iter()
        .map(|r| {
            r.unwrap()
                .into_iter()
                .map(|v| match v {
                    Value::NULL => None,
                    Value::Bytes(b) => Some(String::from_utf8_lossy(&b).into_owned()),
                    other => Some(format!("{other:?}")),
                })
                .collect()
        })
        .collect();
    Ok(Snapshot { definition, columns: cols.into_iter().map(|c| c.0).collect(), rows })
}

/// `line` without ` AUTO_INCREMENT=<n>` (the counter differs legitimately).
fn strip_auto_increment(line: &str) -> String {
    match line.find(" AUTO_INCREMENT=") {
        Some(i) => {
            let rest = &line[i + " AUTO_INCREMENT=".len()..];
            let end = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
            format!("{}{}", &line[..i], &rest[end..])
        }
        None => line.to_string(),
    }
}

/// Run `case` in `mode` on MariaDB (see the module [`super`]); `Err` is the finding.
pub async fn run(case: &Case, mode: Mode) -> Result<Verdict, String> {
    let db = TestDb::new(&db_name(case, mode)).await;
    for s in &case.db_setup {
        exec(&db.pool, &s.replace(DB, &quoted(&db.name))).await?;
    }
    for table in ["t", "t_clone"] {
        for s in &case.setup {
            exec(&db.pool, &subst(s, table, &quoted(table))).await.map_err(|e| format!("setup failed (a generator bug): {e}"))?;
        }
    }
    let writers = mode == Mode::Writers && !case.ops.is_empty();
    let ops = if writers { case.ops.clone() } else { Vec::new() };
    let clone_ops = apply_ops(db.pool.clone(), "t_clone", case.writer_session.clone(), ops.clone()).await;
    let pre = snapshot(&db, "t_clone", &[]).await?;
    let native = exec(&db.pool, &format!("ALTER TABLE `t_clone` {}, ALGORITHM=COPY", case.alter)).await;
    let post = match &native {
        Ok(()) => Some(snapshot(&db, "t_clone", &case.now_columns).await?),
        Err(_) => None,
    };

    let pool = db.pool.clone();
    let session = case.writer_session.clone();
    let apply: ApplyOps = Arc::new(move |ops| Box::pin(apply_ops(pool.clone(), "t", session.clone(), ops)));
    let (result, orig_ops) = drive(db.dialect().await, case, mode, db.table("t"), &db.name, apply).await;
    if let Err(e) = &result {
        if e.starts_with(PANICKED) {
            return Err(e.clone());
        }
    }

    let tables = db.tables().await;
    let triggers = db.triggers().await;
    if tables != ["t", "t_clone"] || !triggers.is_empty() {
        return Err(format!("left behind after the run ({result:?}): tables {tables:?}, triggers {triggers:?}"));
    }
    let ran = Ran { result, native, ops, orig_ops, clone_ops, pre, post };
    let verdict = judge(case, ran, writers, |with_now| {
        let now: &[String] = if with_now { &case.now_columns } else { &[] };
        snapshot(&db, "t", now)
    })
    .await?;
    let _ = exec(&db.pool, &format!("DROP DATABASE {}", quoted(&db.name))).await;
    Ok(verdict)
}

#[cfg(test)]
mod tests {
    use super::strip_auto_increment;

    #[test]
    fn auto_increment_counters_are_left_out() {
        assert_eq!(
            strip_auto_increment(") ENGINE=InnoDB AUTO_INCREMENT=201 DEFAULT CHARSET=utf8mb4"),
            ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"
        );
        assert_eq!(strip_auto_increment("`id` int(11) NOT NULL AUTO_INCREMENT,"), "`id` int(11) NOT NULL AUTO_INCREMENT,");
    }
}
