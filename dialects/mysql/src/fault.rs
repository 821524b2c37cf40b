//! Fault rehearsals (`--inject-fault`) on MariaDB: the engine's [`Rehearsal`]. The statements
//! are [`crate::sql::fault`]'s.
//!
//! shadowswap's own working sessions are found by the connection ids of the pool's sessions,
//! which [`MySql::conn`] records as it hands them out (MariaDB's `performance_schema`, where
//! connection attributes would be visible, is off by default); the run lock's session is not
//! in the pool and is never killed. The blocker and the storm run on sessions of their own,
//! outside the pool.

use async_trait::async_trait;
use mysql_async::prelude::Queryable;
use mysql_async::Conn;
use shadowswap_engine::error::Result;
use shadowswap_engine::fault::{FaultSession, Rehearsal};
use shadowswap_engine::model::TableRef;
use shadowswap_engine::names::Names;

use crate::{errors, sql, MySql};

#[async_trait]
impl Rehearsal for MySql {
    async fn kill_own_sessions(&self) -> Result<Vec<String>> {
        let ours = self.sessions.lock().unwrap().clone();
        let mut c = self.session().await?;
        let all: Vec<(u32, String, u64)> =
            c.query(sql::fault::SESSIONS).await.map_err(|e| errors::db("reading the session list", e))?;
        let mut killed = Vec::new();
        for (id, command, secs) in all.into_iter().filter(|(id, ..)| ours.contains(id)) {
            match c.query_drop(sql::fault::kill_connection(id)).await {
                Ok(()) => killed.push(format!("session {id} ({command} for {secs} s)")),
                // Gone in between.
                Err(e) if errors::code(&e) == Some(errors::UNKNOWN_THREAD) => {}
                Err(e) => return Err(errors::db("killing a session of shadowswap", e)),
            }
        }
        let _ = c.disconnect().await;
        Ok(killed)
    }

    async fn open_blocker(&self, names: &Names) -> Result<Box<dyn FaultSession>> {
        let mut c = self.session().await?;
        c.query_drop(sql::fault::BEGIN).await.map_err(|e| errors::db("opening the blocker's transaction", e))?;
        c.query_drop(sql::fault::blocker(&names.table)).await.map_err(|e| errors::db("taking the blocker's lock", e))?;
        Ok(Box::new(Held { conn: c, table: None }))
    }

    async fn open_storm_session(&self, names: &Names) -> Result<Box<dyn FaultSession>> {
        let mut c = self.session().await?;
        c.query_drop(sql::fault::STORM_SETUP).await.map_err(|e| errors::db("setting up a lock-storm session", e))?;
        Ok(Box::new(Held { conn: c, table: Some(names.table.clone()) }))
    }

    async fn pause_replica_apply(&self) -> Result<()> {
        let mut c = self.conn().await?;
        c.query_drop(sql::fault::PAUSE_REPLICA)
            .await
            .map_err(|e| errors::db("pausing the replica's apply (STOP SLAVE SQL_THREAD)", e))
    }

    async fn resume_replica_apply(&self) -> Result<()> {
        let mut c = self.conn().await?;
        c.query_drop(sql::fault::RESUME_REPLICA)
            .await
            .map_err(|e| errors::db("resuming the replica's apply (START SLAVE SQL_THREAD)", e))
    }
}

impl MySql {
    /// A session of its own, outside the pool (so it is never taken for one of shadowswap's
    /// working sessions), set up like every other.
    async fn session(&self) -> Result<Conn> {
        Conn::new(self.opts.clone()).await.map_err(|e| errors::connect(&self.dsn, e))
    }
}

/// A blocker's open transaction (`table: None`) or a lock-storm session.
struct Held {
    conn: Conn,
    table: Option<TableRef>,
}

#[async_trait]
impl FaultSession for Held {
    async fn step(&mut self) -> Result<()> {
        let Some(table) = &self.table else { return Ok(()) };
        let r = self.conn.query_drop(sql::fault::storm_step(table)).await;
        if r.is_err() {
            // A lock wait timed out mid-transaction: end it before the next step.
            let _ = self.conn.query_drop(sql::fault::ROLLBACK).await;
        }
        r.map_err(|e| errors::db("a lock-storm transaction", e))
    }

    async fn release(self: Box<Self>) -> Result<()> {
        let Held { mut conn, .. } = *self;
        conn.query_drop(sql::fault::ROLLBACK).await.map_err(|e| errors::db("ending an injected fault's transaction", e))?;
        conn.disconnect().await.map_err(|e| errors::db("closing an injected fault's session", e))
    }
}
