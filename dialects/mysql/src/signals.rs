//! The throttle's signals from this server, a primary or a replica (the engine's [`Signals`]):
//! the replica-lag heartbeat, global status variables, the operator's throttle query, and the
//! sessions a cut-over would queue behind. The statements are [`crate::sql::signals`]'s.

use std::time::Duration;

use async_trait::async_trait;
use mysql_async::prelude::Queryable;
use mysql_async::{Row, Value};
use shadowswap_engine::dialect::Signals;
use shadowswap_engine::error::Result;
use shadowswap_engine::names::Names;
use shadowswap_engine::Error;

use crate::connect::whole_seconds;
use crate::{errors, sql, MySql};

/// The throttle's signals from this server (primary or replica).
#[async_trait]
impl Signals for MySql {
    fn target(&self) -> String {
        self.dsn.to_string()
    }

    async fn heartbeat_create(&self, names: &Names) -> Result<()> {
        let mut c = self.conn().await?;
        c.query_drop(sql::signals::create_heartbeat(&names.heartbeat))
            .await
            .map_err(|e| errors::db("creating the heartbeat table", e))
    }

    async fn heartbeat_write(&self, names: &Names, seq: u64) -> Result<()> {
        let mut c = self.conn().await?;
        c.exec_drop(sql::signals::write_heartbeat(&names.heartbeat), (seq,))
            .await
            .map_err(|e| errors::db("writing the heartbeat", e))
    }

    async fn heartbeat_read(&self, names: &Names) -> Result<Option<u64>> {
        let mut c = self.conn().await?;
        match c.query_first::<u64, _>(sql::signals::read_heartbeat(&names.heartbeat)).await {
            Ok(v) => Ok(v),
            // Not replicated yet.
            Err(e) if errors::code(&e) == Some(errors::NO_SUCH_TABLE) => Ok(None),
            Err(e) => Err(errors::db("reading the heartbeat", e)),
        }
    }

    async fn status_value(&self, name: &str) -> Result<f64> {
        let mut c = self.conn().await?;
        let v: Option<String> =
            c.exec_first(sql::signals::GLOBAL_STATUS, (name,)).await.map_err(|e| errors::db("reading a status variable", e))?;
        let v = v.ok_or_else(|| {
            Error::refused(format!("{name} is not a global status variable of this server (SHOW GLOBAL STATUS)"))
        })?;
        v.trim().parse().map_err(|_| Error::refused(format!("status variable {name} is not a number ({v})")))
    }

    async fn query_value(&self, sql: &str) -> Result<f64> {
        let mut c = self.conn().await?;
        let row: Option<Row> = c.query_first(sql).await.map_err(|e| errors::db("running the throttle query", e))?;
        Ok(row.and_then(|r| r.unwrap().into_iter().next()).map_or(0.0, number))
    }

    async fn cut_over_blockers(&self, names: &Names, older_than: Duration) -> Result<Vec<String>> {
        let mut c = self.conn().await?;
        let secs = whole_seconds(older_than);
        // Precise when the metadata_lock_info plugin is loaded: sessions holding a metadata lock
        // on the table in a transaction open longer than the lock timeout.
        let precise = c
            .exec::<String, _, _>(sql::signals::BLOCKERS_HOLDING_THE_TABLE, (&names.table.schema, &names.table.name, secs))
            .await;
        match precise {
            Ok(rows) => Ok(rows),
            // Plugin not loaded. Then any InnoDB transaction open longer than the lock timeout
            // may hold the table's metadata lock: wait for those. The statement text
            // (PROCESSLIST.INFO) holds the application's literals, which need not be UTF-8: read
            // bytes, shown lossily (the text is only for the message).
            Err(e) if errors::code(&e) == Some(errors::UNKNOWN_TABLE) => c
                .exec::<Vec<u8>, _, _>(sql::signals::BLOCKERS_BY_TRANSACTION_AGE, (secs,))
                .await
                .map(|rows| rows.iter().map(|b| String::from_utf8_lossy(b).into_owned()).collect())
                .or_else(errors::blockers_unknown),
            Err(e) => errors::blockers_unknown(e),
        }
    }
}

/// The throttle query's first value as a number: NULL is 0, text is parsed (1 when it is not a
/// number), any other value (a date, a time) counts as 1.
fn number(v: Value) -> f64 {
    match v {
        Value::NULL => 0.0,
        Value::Int(i) => i as f64,
        Value::UInt(u) => u as f64,
        Value::Float(f) => f as f64,
        Value::Double(d) => d,
        Value::Bytes(b) => String::from_utf8_lossy(&b).trim().parse().unwrap_or(1.0),
        _ => 1.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttle_query_values_are_numbers() {
        assert_eq!(number(Value::NULL), 0.0);
        assert_eq!(number(Value::Int(-3)), -3.0);
        assert_eq!(number(Value::UInt(7)), 7.0);
        assert_eq!(number(Value::Double(0.5)), 0.5);
        assert_eq!(number(Value::Bytes(b" 12.5 ".to_vec())), 12.5);
        assert_eq!(number(Value::Bytes(b"yes".to_vec())), 1.0);
        assert_eq!(number(Value::Date(2024, 1, 1, 0, 0, 0, 0)), 1.0);
    }
}
