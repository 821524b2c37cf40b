//! Fault rehearsals (`--inject-fault`) on PostgreSQL: the engine's [`Rehearsal`]. The
//! statements are [`crate::sql::fault`]'s.
//!
//! shadowswap's own working sessions are the pool's: each new pooled session records its
//! backend pid ([`record_backend_pids`], a deadpool `post_create` hook), and `kill-connection`
//! terminates those of them still alive. Every shadowswap session has `application_name`
//! `shadowswap`, but so do other shadowswap runs; the pids make it this run's alone. The run
//! lock's session, the blocker's and the storm's are outside the pool and never killed.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use deadpool_postgres::{ClientWrapper, Hook};
use shadowswap_engine::error::Result;
use shadowswap_engine::fault::{FaultSession, Rehearsal};
use shadowswap_engine::model::TableRef;
use shadowswap_engine::names::Names;
use tokio::task::JoinHandle;

use crate::{errors, sql, Postgres};

/// The backend pids of the pool's sessions.
pub(crate) type SessionPids = Arc<Mutex<BTreeSet<i32>>>;

/// A pool hook that records each new session's backend pid in `pids`. A failure to read it
/// only means that session cannot be killed by a rehearsal: it never fails the connection.
pub(crate) fn record_backend_pids(pids: SessionPids) -> Hook {
    Hook::async_fn(move |client: &mut ClientWrapper, _| {
        let pids = pids.clone();
        Box::pin(async move {
            if let Ok(row) = client.query_one(sql::fault::BACKEND_PID, &[]).await {
                pids.lock().unwrap().insert(row.get(0));
            }
            Ok(())
        })
    })
}

#[async_trait]
impl Rehearsal for Postgres {
    async fn kill_own_sessions(&self) -> Result<Vec<String>> {
        let ours: Vec<i32> = self.sessions.lock().unwrap().iter().copied().collect();
        let s = self.session().await?;
        let rows = s
            .client
            .query(sql::fault::TERMINATE_OWN_SESSIONS, &[&ours])
            .await
            .map_err(|e| errors::db("terminating shadowswap's own sessions", e))?;
        s.close().await;
        Ok(rows
            .iter()
            .filter(|r| r.get::<_, bool>(3))
            .map(|r| format!("pid {} ({} for {} s)", r.get::<_, i32>(0), r.get::<_, String>(1), r.get::<_, i32>(2)))
            .collect())
    }

    async fn open_blocker(&self, names: &Names) -> Result<Box<dyn FaultSession>> {
        let s = self.session().await?;
        s.client
            .batch_execute(&sql::fault::blocker(&names.table))
            .await
            .map_err(|e| errors::db("taking the blocker's lock", e))?;
        Ok(Box::new(Held { session: s, table: None }))
    }

    async fn open_storm_session(&self, names: &Names) -> Result<Box<dyn FaultSession>> {
        let s = self.session().await?;
        s.client.batch_execute(sql::fault::STORM_SETUP).await.map_err(|e| errors::db("setting up a lock-storm session", e))?;
        Ok(Box::new(Held { session: s, table: Some(names.table.clone()) }))
    }

    async fn pause_replica_apply(&self) -> Result<()> {
        let c = self.client().await?;
        c.batch_execute(sql::fault::PAUSE_REPLAY)
            .await
            .map_err(|e| errors::db("pausing the standby's replay (pg_wal_replay_pause)", e))
    }

    async fn resume_replica_apply(&self) -> Result<()> {
        let c = self.client().await?;
        c.batch_execute(sql::fault::RESUME_REPLAY)
            .await
            .map_err(|e| errors::db("resuming the standby's replay (pg_wal_replay_resume)", e))
    }
}

/// A session outside the pool, with its connection driver.
struct Session {
    client: tokio_postgres::Client,
    driver: JoinHandle<()>,
}

impl Session {
    async fn close(self) {
        drop(self.client);
        let _ = self.driver.await;
    }
}

impl Postgres {
    /// A session of its own, outside the pool (so it is never taken for one of shadowswap's
    /// working sessions), with the pinned settings.
    async fn session(&self) -> Result<Session> {
        let (client, conn) =
            self.dsn.tls.connect(&self.session).await.map_err(|e| crate::connect::connect_error(&self.dsn, e))?;
        let driver = tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(Session { client, driver })
    }
}

/// A blocker's open transaction (`table: None`) or a lock-storm session.
struct Held {
    session: Session,
    table: Option<TableRef>,
}

#[async_trait]
impl FaultSession for Held {
    async fn step(&mut self) -> Result<()> {
        let Some(table) = &self.table else { return Ok(()) };
        let r = self.session.client.batch_execute(&sql::fault::storm_step(table)).await;
        if r.is_err() {
            // A lock wait timed out mid-transaction: end it before the next step.
            let _ = self.session.client.batch_execute(sql::fault::ROLLBACK).await;
        }
        r.map_err(|e| errors::db("a lock-storm transaction", e))
    }

    async fn release(self: Box<Self>) -> Result<()> {
        let r = self.session.client.batch_execute(sql::fault::ROLLBACK).await;
        self.session.close().await;
        r.map_err(|e| errors::db("ending an injected fault's transaction", e))
    }
}
