//! `shadowswap migrate`'s history on MariaDB ([`shadowswap_engine::staged::migrate`]): the
//! history table's creation, reading, and each phase's start and end, each its own autocommit
//! statement. The statements are [`crate::sql::staged_migrate`]'s.

use mysql_async::prelude::Queryable;
use shadowswap_engine::error::Result;
use shadowswap_engine::model::TableRef;
use shadowswap_engine::staged::migrate::HistoryRow;

use crate::sql::staged_migrate as q;
use crate::{errors, MySql};

/// Create the history table when missing ([`q::create_history`]).
pub(crate) async fn ensure(my: &MySql, history: &TableRef) -> Result<()> {
    let mut c = my.conn().await?;
    c.query_drop(q::create_history(history)).await.map_err(|e| errors::db("creating the migration history table", e))
}

type Row = (i64, String, String, String, String, Option<String>, String, String, Option<String>);

/// Every row, oldest first ([`q::read_history`]).
pub(crate) async fn read(my: &MySql, history: &TableRef) -> Result<Vec<HistoryRow>> {
    let mut c = my.conn().await?;
    let rows: Vec<Row> = c.query(q::read_history(history)).await.map_err(|e| errors::db("reading the migration history", e))?;
    Ok(rows
        .into_iter()
        .map(|(id, file, phase, checksum, started_at, finished_at, applied_by, outcome, error)| HistoryRow {
            id,
            file,
            phase,
            checksum,
            started_at,
            finished_at,
            applied_by,
            outcome,
            error,
        })
        .collect())
}

/// A phase starts ([`q::start`]); returns the row's id.
pub(crate) async fn start(my: &MySql, history: &TableRef, file: &str, phase: &str, checksum: &str, outcome: &str) -> Result<i64> {
    let ctx = "recording a migration phase's start";
    let mut c = my.conn().await?;
    c.exec_drop(q::start(history), (file, phase, checksum, outcome)).await.map_err(|e| errors::db(ctx, e))?;
    let id = c.last_insert_id().unwrap_or(0);
    Ok(i64::try_from(id).unwrap_or(i64::MAX))
}

/// A phase ends ([`q::finish`]).
pub(crate) async fn finish(my: &MySql, history: &TableRef, id: i64, outcome: &str, error: Option<&str>) -> Result<()> {
    let mut c = my.conn().await?;
    c.exec_drop(q::finish(history), (outcome, error, id)).await.map_err(|e| errors::db("recording a migration phase's end", e))
}
