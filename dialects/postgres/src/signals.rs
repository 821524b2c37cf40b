//! The throttle's signals from this server (primary or replica): the replica-lag heartbeat,
//! load figures, the operator's throttle query, and the sessions a cut-over would queue behind.
//! The statements are [`crate::sql::signals`]'s.

use std::time::Duration;

use async_trait::async_trait;
use shadowswap_engine::dialect::Signals;
use shadowswap_engine::error::Result;
use shadowswap_engine::names::Names;
use shadowswap_engine::Error;

use crate::sql::signals as q;
use crate::sql::Qualified;
use crate::{errors, Postgres};

#[async_trait]
impl Signals for Postgres {
    fn target(&self) -> String {
        self.dsn.to_string()
    }

    async fn heartbeat_create(&self, names: &Names) -> Result<()> {
        let c = self.client().await?;
        c.batch_execute(&q::create_heartbeat(&names.heartbeat)).await.map_err(|e| errors::db("creating the heartbeat table", e))
    }

    async fn heartbeat_write(&self, names: &Names, seq: u64) -> Result<()> {
        let c = self.client().await?;
        c.execute(&q::write_heartbeat(&names.heartbeat), &[&(seq as i64)])
            .await
            .map(|_| ())
            .map_err(|e| errors::db("writing the heartbeat", e))
    }

    async fn heartbeat_read(&self, names: &Names) -> Result<Option<u64>> {
        let c = self.client().await?;
        match c.query_opt(&q::read_heartbeat(&names.heartbeat), &[]).await {
            Ok(row) => Ok(row.map(|r| r.get::<_, i64>(0) as u64)),
            // Not replayed on the standby yet.
            Err(e) if errors::is_undefined_table(&e) => Ok(None),
            Err(e) => Err(errors::db("reading the heartbeat", e)),
        }
    }

    async fn status_value(&self, name: &str) -> Result<f64> {
        let Some(query) = q::load_figure(name) else {
            return Err(Error::refused(format!(
                "{name} is not a PostgreSQL load figure shadowswap knows; use active_backends or total_backends, or --throttle-query"
            )));
        };
        let c = self.client().await?;
        let n: i64 = c.query_one(query, &[]).await.map_err(|e| errors::db("reading the load", e))?.get(0);
        Ok(n as f64)
    }

    async fn query_value(&self, sql: &str) -> Result<f64> {
        let c = self.client().await?;
        let msgs = c.simple_query(sql).await.map_err(|e| errors::db("running the throttle query", e))?;
        let first = msgs.iter().find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => Some(r.get(0).map(str::to_string)),
            _ => None,
        });
        Ok(throttle_value(first.flatten().as_deref()))
    }

    async fn cut_over_blockers(&self, names: &Names, older_than: Duration) -> Result<Vec<String>> {
        let c = self.client().await?;
        let rows = c
            .query(q::CUT_OVER_BLOCKERS, &[&Qualified(&names.table).to_string(), &older_than.as_secs_f64()])
            .await
            .map_err(|e| errors::db("looking for transactions that would block the cut-over", e))?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }
}

/// The throttle query's first value (as text) as a number: none (no row, or NULL) and false
/// are 0, true is 1, a number is itself, anything else 1.
fn throttle_value(first: Option<&str>) -> f64 {
    match first {
        None => 0.0,
        Some("f") | Some("false") => 0.0,
        Some("t") | Some("true") => 1.0,
        Some(v) => v.trim().parse().unwrap_or(1.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttle_query_values() {
        assert_eq!(throttle_value(None), 0.0);
        assert_eq!(throttle_value(Some("f")), 0.0);
        assert_eq!(throttle_value(Some("true")), 1.0);
        assert_eq!(throttle_value(Some(" 2.5 ")), 2.5);
        assert_eq!(throttle_value(Some("busy")), 1.0);
    }
}
