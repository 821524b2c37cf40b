//! `shadowswap migrate`'s history on PostgreSQL ([`shadowswap_engine::staged::migrate`]): the
//! history table's creation, reading, and each phase's start and end, each its own autocommit
//! statement. The statements are [`crate::sql::staged_migrate`]'s.

use shadowswap_engine::error::Result;
use shadowswap_engine::model::TableRef;
use shadowswap_engine::staged::migrate::HistoryRow;

use crate::sql::staged_migrate as q;
use crate::{errors, Postgres};

/// Create the history table when missing ([`q::create_history`]).
pub(crate) async fn ensure(pg: &Postgres, history: &TableRef) -> Result<()> {
    let c = pg.client().await?;
    c.batch_execute(&q::create_history(history)).await.map_err(|e| errors::db("creating the migration history table", e))
}

/// Every row, oldest first ([`q::read_history`]).
pub(crate) async fn read(pg: &Postgres, history: &TableRef) -> Result<Vec<HistoryRow>> {
    let c = pg.client().await?;
    let rows = c.query(&q::read_history(history), &[]).await.map_err(|e| errors::db("reading the migration history", e))?;
    Ok(rows
        .iter()
        .map(|r| HistoryRow {
            id: r.get(0),
            file: r.get(1),
            phase: r.get(2),
            checksum: r.get(3),
            started_at: r.get(4),
            finished_at: r.get(5),
            applied_by: r.get(6),
            outcome: r.get(7),
            error: r.get(8),
        })
        .collect())
}

/// A phase starts ([`q::start`]); returns the row's id.
pub(crate) async fn start(
    pg: &Postgres,
    history: &TableRef,
    file: &str,
    phase: &str,
    checksum: &str,
    outcome: &str,
) -> Result<i64> {
    let c = pg.client().await?;
    let row = c
        .query_one(&q::start(history), &[&file, &phase, &checksum, &outcome])
        .await
        .map_err(|e| errors::db("recording a migration phase's start", e))?;
    Ok(row.get(0))
}

/// A phase ends ([`q::finish`]).
pub(crate) async fn finish(pg: &Postgres, history: &TableRef, id: i64, outcome: &str, error: Option<&str>) -> Result<()> {
    let c = pg.client().await?;
    c.execute(&q::finish(history), &[&id, &outcome, &error])
        .await
        .map_err(|e| errors::db("recording a migration phase's end", e))?;
    Ok(())
}
