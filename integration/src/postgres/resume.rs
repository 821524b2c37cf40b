//! Harness for the PostgreSQL resume tests (`postgres resume::`): the checkpoint row as the
//! server holds it ([`checkpoint`], [`wait_copied`]); the rest — a run to start, kill and run
//! again, its JSON log and summary — is the dialect-neutral [`crate::resume`], re-exported here.

use std::time::Duration;

use crate::cli::Spawned;
use crate::postgres::PgTestDb;
pub use crate::resume::{entered, event, figure, kill, message_with, messages, summary, wait_phase, Run};

/// The checkpoint row of `table` as the server holds it (`None` without one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointRow {
    /// The phase it records.
    pub phase: String,
    /// Rows copied so far.
    pub rows_copied: u64,
    /// The low watermark's text, if any.
    pub low_watermark: Option<String>,
}

/// The checkpoint of `table` (in `public`), read with the test's own client.
pub async fn checkpoint(db: &PgTestDb, table: &str) -> Option<CheckpointRow> {
    let q = format!("SELECT phase, rows_copied, low_watermark FROM public.\"_{table}_ssw_ckpt\" WHERE id = 1");
    let row = db.client.query_opt(&q, &[]).await.ok()??;
    Some(CheckpointRow { phase: row.get(0), rows_copied: row.get::<_, i64>(1) as u64, low_watermark: row.get(2) })
}

/// Wait (at most [`crate::resume::WITHIN`]) until no session of a killed run is left in this
/// test's database. A backend finishes what its client had already sent (a chunk's `COMMIT`)
/// before it notices the client is gone, so the checkpoint is only final once they are.
pub async fn killed_sessions_gone(db: &PgTestDb) {
    let q = "SELECT count(*)::text FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'shadowswap'";
    let t0 = std::time::Instant::now();
    while db.count(q).await > 0 {
        assert!(t0.elapsed() < crate::resume::WITHIN, "the killed run's sessions are still there");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Wait (at most `within`) until the checkpoint of `table` records at least `rows` rows copied
/// (what the chunks committed), while the run lives; returns the checkpoint then.
pub async fn wait_copied(cli: &mut Spawned, db: &PgTestDb, table: &str, rows: u64, within: Duration) -> CheckpointRow {
    let what = format!("the checkpoint of {table} did not reach {rows} rows copied");
    cli.wait_until(within, &what, || async { checkpoint(db, table).await.is_some_and(|c| c.rows_copied >= rows) }).await;
    checkpoint(db, table).await.unwrap()
}
