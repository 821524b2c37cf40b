//! Concurrent writers for PostgreSQL that keep an exact model of what they wrote.
//!
//! The PostgreSQL counterpart of [`crate::mysql::workload`] (same ideas, its own code: tokio-postgres,
//! and MVCC snapshots as the point). Writers run random INSERT / UPDATE / key-changing UPDATE /
//! DELETE against a table while shadowswap migrates it; afterwards [`verify`] compares the table
//! row by row with what the writers know they did. The model is exact because
//!
//! - every writer owns a disjoint key space (first key column ≡ writer number mod N), so no two
//!   writers touch the same row and there is no cross-writer ordering to guess;
//! - a change is applied to the model only after the server confirmed it: an autocommit statement
//!   when it returns with the expected row count (the writer knows which of its keys exist, so any
//!   other count is a failure), a statement inside a transaction when its `COMMIT` returns;
//! - a deadlock (40P01), lock_not_available (55P03) or serialization failure (40001) rolls the
//!   statement or the whole transaction back: counted, not applied (the model changes of the
//!   transaction so far are undone). Any other error stops that writer and fails
//!   [`Workload::stop`].
//!
//! A statement or transaction is never abandoned half way (the stop signal is looked at between
//! steps only), so there is never a change whose outcome is unknown.
//!
//! Besides single autocommit statements, writers run multi-statement transactions
//! (`BEGIN ISOLATION LEVEL …; 2–N statements with short pauses; COMMIT`) in READ COMMITTED,
//! REPEATABLE READ and SERIALIZABLE: their snapshots and row locks are held across statements,
//! which is what the copy's `FOR SHARE` and the capture triggers must get right. While the
//! migration is in backfill, a share of the statements picks keys just above the copy's current
//! position (estimated from the runner's `rows_copied`), where a chunk is about to copy them.
//!
//! Table shapes: `id bigint` primary key, or `PRIMARY KEY (a, b)` (two `integer`s); non-key
//! columns `v integer` (indexed) and `c text`. Keys are modelled as `(i64, i64)`; a
//! single-column key uses the second part as 0. Values are read back as `v::bigint`, so the
//! model holds across an ALTER that widens `v`.
//!
//! What does not depend on the driver (keys, the model, op choice, aiming at the copy's
//! position, counts, the writer loop, the comparison) is in [`crate::model`], shared with
//! [`crate::mysql::workload`]; this module has the SQL, transactions and the `tokio-postgres` side.
//!
//! Usage: [`PgTable::create`], [`PgTable::load`], [`Model::read`], [`Workload::start`],
//! [`Workload::stop`], [`verify`].

use std::fmt;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use rand::Rng;
use shadowswap_engine::progress::Progress;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, NoTls};

use crate::model::{self, Diff, Frontier, Share, Statements};
pub use crate::model::{seed_from_env_or_clock, Counts, Key, KeyKind, OpKind, Verification, WorkloadReport, COMPOSITE_B_PER_A};

/// The PostgreSQL workload's SQL dialect, for [`model::Table`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pg;

/// A workload table in the connection's `public` schema: its name and key shape.
pub type PgTable = model::Table<Pg>;

fn ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

impl PgTable {
    fn quoted(&self) -> String {
        format!("public.{}", ident(&self.name))
    }

    /// `id = $first::bigint` or `a = $first::bigint AND b = $(first+1)::bigint`.
    fn key_where(&self, first: usize) -> String {
        self.key_columns()
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c} = ${}::bigint", first + i))
            .collect::<Vec<_>>()
            .join(" AND ")
    }

    /// `CREATE TABLE` and its secondary index.
    pub fn create_sql(&self) -> String {
        let t = self.quoted();
        let cols = match self.key {
            KeyKind::Single => "id bigint PRIMARY KEY, v integer NOT NULL, c text NOT NULL".to_string(),
            KeyKind::Composite => {
                "a integer NOT NULL, b integer NOT NULL, v integer NOT NULL, c text NOT NULL, PRIMARY KEY (a, b)".to_string()
            }
        };
        format!("CREATE TABLE {t} ({cols}); CREATE INDEX {} ON {t} (v)", ident(&format!("{}_v", self.name)))
    }

    /// Create the table (dropping any table of that name first).
    pub async fn create(&self, c: &Client) -> Result<()> {
        c.batch_execute(&format!("DROP TABLE IF EXISTS {}; {}", self.quoted(), self.create_sql()))
            .await
            .with_context(|| format!("creating {}", self.name))
    }

    /// The server-side load of `rows` rows: keys `1..=rows` (composite: `COMPOSITE_B_PER_A`
    /// values of `b` per `a`), deterministic pseudo-random `v` and `c`.
    pub fn load_sql(&self, rows: u64) -> String {
        let key = match self.key {
            KeyKind::Single => "g".to_string(),
            KeyKind::Composite => format!("(g - 1) / {COMPOSITE_B_PER_A} + 1, (g - 1) % {COMPOSITE_B_PER_A} + 1"),
        };
        format!(
            "INSERT INTO {} ({}, v, c) SELECT {key}, hashtext('v' || g) & 1048575, md5('c' || g) \
             FROM generate_series(1, {rows}) g",
            self.quoted(),
            self.key_list()
        )
    }

    /// Load `rows` rows server-side in one statement, then `ANALYZE`.
    pub async fn load(&self, c: &Client, rows: u64) -> Result<()> {
        c.batch_execute(&self.load_sql(rows)).await.with_context(|| format!("loading {rows} rows"))?;
        c.batch_execute(&format!("ANALYZE {}", self.quoted())).await?;
        Ok(())
    }
}

/// The non-key values of a row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowValues {
    /// `v`.
    pub v: i64,
    /// `c`.
    pub c: String,
}

impl fmt::Display for RowValues {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v={} c={:?}", self.v, self.c)
    }
}

/// What the table should contain: every row, by key.
pub type Model = model::Model<PgTable, RowValues>;

fn select_sql(t: &PgTable) -> String {
    let keys = t.key_columns().iter().map(|c| format!("{c}::bigint")).collect::<Vec<_>>().join(", ");
    format!("SELECT {keys}, v::bigint, c FROM {} ORDER BY {}", t.quoted(), t.key_list())
}

async fn scan(c: &Client, t: &PgTable) -> Result<Vec<(Key, RowValues)>> {
    let rows = c.query(&select_sql(t), &[]).await.with_context(|| format!("reading {}", t.name))?;
    let n = t.key_columns().len();
    rows.iter()
        .map(|r| {
            let key = if n == 1 { (r.try_get(0)?, 0) } else { (r.try_get(0)?, r.try_get(1)?) };
            Ok((key, RowValues { v: r.try_get(n)?, c: r.try_get(n + 1)? }))
        })
        .collect::<Result<Vec<_>, tokio_postgres::Error>>()
        .with_context(|| format!("decoding a row of {}", t.name))
}

impl Model {
    /// The model of the table as it is now (call it before writers start).
    pub async fn read(c: &Client, t: &PgTable) -> Result<Model> {
        Ok(Model::new(t.clone(), scan(c, t).await?.into_iter().collect()))
    }
}

/// Isolation level of a writer's multi-statement transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Isolation {
    /// READ COMMITTED: a new snapshot per statement (the triggers' statements too).
    ReadCommitted,
    /// REPEATABLE READ: one snapshot for the whole transaction, trigger statements included.
    RepeatableRead,
    /// SERIALIZABLE: as REPEATABLE READ, plus SSI.
    Serializable,
}

impl Isolation {
    /// All three.
    pub const ALL: [Isolation; 3] = [Isolation::ReadCommitted, Isolation::RepeatableRead, Isolation::Serializable];

    fn sql(self) -> &'static str {
        match self {
            Isolation::ReadCommitted => "READ COMMITTED",
            Isolation::RepeatableRead => "REPEATABLE READ",
            Isolation::Serializable => "SERIALIZABLE",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Isolation::ReadCommitted => "read committed",
            Isolation::RepeatableRead => "repeatable read",
            Isolation::Serializable => "serializable",
        }
    }
}

impl WorkloadReport {
    /// Committed transactions at one isolation level.
    pub fn txns_of(&self, iso: Isolation) -> u64 {
        self.counts.txns.get(iso.name()).copied().unwrap_or(0)
    }
}

/// Workload settings.
#[derive(Debug, Clone)]
pub struct WorkloadConfig {
    /// Writer tasks (each with a connection of its own). Default 4.
    pub writers: usize,
    /// Seed of the writers' random generators (writer w uses `seed + w`).
    pub seed: u64,
    /// Percentage of steps that are a multi-statement transaction (the rest: one autocommit
    /// statement). Default 30.
    pub txn_percent: u32,
    /// Statements per transaction: 2 up to this. Default 5.
    pub max_txn_statements: usize,
    /// Isolation levels transactions are drawn from (uniformly). Default: all three.
    pub isolation: Vec<Isolation>,
    /// Longest random pause between the statements of a transaction: it keeps snapshots and row
    /// locks open while chunks commit. Default 3 ms.
    pub think_time: Duration,
    /// Percentage of statements, during the backfill, whose key is picked just above the copy's
    /// current position. Default 30.
    pub frontier_percent: u32,
}

impl Default for WorkloadConfig {
    fn default() -> Self {
        Self {
            writers: 4,
            seed: seed_from_env_or_clock(),
            txn_percent: 30,
            max_txn_statements: 5,
            isolation: Isolation::ALL.to_vec(),
            think_time: Duration::from_millis(3),
            frontier_percent: 30,
        }
    }
}

/// Running writers. Stop them with [`Workload::stop`].
pub type Workload = model::Workload<PgTable, RowValues>;

impl Workload {
    /// Start `config.writers` writers on the table of `model`, each on a connection of its own
    /// to `dsn`. Writer w owns the keys whose first column ≡ w mod N. `progress` (the runner's
    /// channel) labels ops by phase and lets writers aim at the copy's position.
    pub async fn start(
        dsn: &str,
        model: Model,
        config: WorkloadConfig,
        progress: Option<watch::Receiver<Progress>>,
    ) -> Result<Workload> {
        let n = config.writers.max(1);
        let sql = statements(&model.table);
        let kind = model.table.key;
        let frontier = || progress.clone().map(|progress| Frontier { progress, percent: config.frontier_percent });
        let (mut workload, shares) = Workload::split(model, kind, n, config.seed, frontier);
        for share in shares {
            let w = share.w;
            let (client, conn) = tokio_postgres::connect(dsn, NoTls).await.with_context(|| format!("connecting writer {w}"))?;
            let driver = tokio::spawn(async move {
                let _ = conn.await;
            });
            // A hang would be a bug; make it an error instead of a stuck test.
            client.batch_execute("SET application_name = 'shadowswap-pg-workload'; SET statement_timeout = '60s'").await?;
            let writer = Writer { share, client, driver, progress: progress.clone(), sql: sql.clone(), config: config.clone() };
            workload.spawn(writer, Duration::ZERO);
        }
        Ok(workload)
    }
}

/// The statements of one table, built once. Every parameter is a `bigint` (or `text`) cast in
/// the statement, so the same statements work before and after an ALTER that widens a column.
fn statements(t: &PgTable) -> Statements {
    let q = t.quoted();
    let nk = t.key_columns().len();
    let key_values = (1..=nk).map(|i| format!("${i}::bigint")).collect::<Vec<_>>().join(", ");
    let key_set =
        t.key_columns().iter().enumerate().map(|(i, c)| format!("{c} = ${}::bigint", i + 1)).collect::<Vec<_>>().join(", ");
    Statements {
        insert: format!("INSERT INTO {q} ({}, v, c) VALUES ({key_values}, ${}::bigint, ${}::text)", t.key_list(), nk + 1, nk + 2),
        update: format!("UPDATE {q} SET v = $1::bigint, c = $2::text WHERE {}", t.key_where(3)),
        move_key: format!("UPDATE {q} SET {key_set}, v = ${}::bigint WHERE {}", nk + 1, t.key_where(nk + 2)),
        delete: format!("DELETE FROM {q} WHERE {}", t.key_where(1)),
        read: format!("SELECT v::bigint, c FROM {q} WHERE {}", t.key_where(1)),
        absent: format!("UPDATE {q} SET v = v + 1 WHERE {}", t.key_where(1)),
    }
}

/// A statement parameter.
enum Param {
    Int(i64),
    Text(String),
}

impl Param {
    fn as_sql(&self) -> &(dyn ToSql + Sync) {
        match self {
            Param::Int(i) => i,
            Param::Text(s) => s,
        }
    }
}

/// How one statement ended.
enum Step {
    /// Applied (to the model too) as `OpKind`.
    Done(OpKind),
    /// Nothing to do (no suitable key); nothing was sent.
    Skipped,
    /// Rolled back by the server for this reason; not applied.
    RolledBack(String),
}

/// A rollback the workload expects now and then: the SQLSTATE's name, and whether a capture
/// trigger's statement raised it (its function names contain `_ssw_`), or `None` for any other
/// error.
fn expected_rollback(e: &tokio_postgres::Error) -> Option<String> {
    let s = e.code()?;
    let what = if *s == SqlState::T_R_DEADLOCK_DETECTED {
        "deadlock (40P01)"
    } else if *s == SqlState::LOCK_NOT_AVAILABLE {
        "lock not available (55P03)"
    } else if *s == SqlState::T_R_SERIALIZATION_FAILURE {
        "serialization failure (40001)"
    } else {
        return None;
    };
    let in_trigger = e.as_db_error().and_then(|d| d.where_()).is_some_and(|w| w.contains("_ssw_"));
    Some(if in_trigger { format!("{what} in a capture trigger") } else { what.to_string() })
}

/// The server's message with code, detail and context (where in a trigger it happened).
fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => {
            let mut s = format!("{} [{}]", db.message(), db.code().code());
            if let Some(d) = db.detail() {
                s.push_str(&format!(" DETAIL: {d}"));
            }
            if let Some(w) = db.where_() {
                s.push_str(&format!(" CONTEXT: {}", w.replace('\n', " / ")));
            }
            s
        }
        None => e.to_string(),
    }
}

/// Model changes of the open transaction, to undo on rollback: (key, value before).
type UndoLog = Vec<(Key, Option<RowValues>)>;

struct Writer {
    share: Share<RowValues>,
    client: Client,
    driver: JoinHandle<()>,
    progress: Option<watch::Receiver<Progress>>,
    sql: Statements,
    config: WorkloadConfig,
}

impl model::Writer for Writer {
    type Row = RowValues;
    const NAME: &'static str = "pg workload writer";
    const STEP: &'static str = "step";

    fn share(&mut self) -> &mut Share<RowValues> {
        &mut self.share
    }

    fn label(&self) -> String {
        match &self.progress {
            Some(rx) => rx.borrow().phase.to_string(),
            None => "no migration".into(),
        }
    }

    async fn step(&mut self) -> Result<()> {
        if self.share.rng.random_range(0..100) < self.config.txn_percent {
            self.transaction().await
        } else {
            self.autocommit().await
        }
    }

    async fn close(self) -> Share<RowValues> {
        drop(self.client);
        let _ = self.driver.await;
        self.share
    }
}

impl Writer {
    fn label(&self) -> String {
        model::Writer::label(self)
    }

    fn record(&mut self, kinds: &[OpKind], in_txn: bool) {
        let label = self.label();
        if in_txn {
            self.share.counts.txn_statements += kinds.len() as u64;
        }
        self.share.record(kinds, &label);
    }

    fn rolled_back(&mut self, what: &str, context: &str) {
        let label = self.label();
        self.share.rolled_back(format!("{what} in {context}"), &label);
    }

    fn undo(&mut self, log: UndoLog) {
        for (key, before) in log.into_iter().rev() {
            match before {
                Some(v) => self.share.rows.insert(key, v),
                None => self.share.rows.remove(&key),
            };
        }
    }

    async fn autocommit(&mut self) -> Result<()> {
        let mut log = UndoLog::new();
        match self.statement(&mut log).await? {
            Step::Done(kind) => self.record(&[kind], false),
            Step::Skipped => {}
            Step::RolledBack(e) => {
                self.undo(log);
                self.rolled_back(&e, "autocommit");
            }
        }
        Ok(())
    }

    async fn transaction(&mut self) -> Result<()> {
        let iso = self.config.isolation[self.share.rng.random_range(0..self.config.isolation.len())];
        let context = iso.name();
        self.client.batch_execute(&format!("BEGIN ISOLATION LEVEL {}", iso.sql())).await.context("BEGIN")?;
        let statements = self.share.rng.random_range(2..=self.config.max_txn_statements.max(2));
        let mut log = UndoLog::new();
        let mut done = Vec::new();
        for i in 0..statements {
            if i > 0 && !self.config.think_time.is_zero() {
                let pause = self.share.rng.random_range(Duration::ZERO..=self.config.think_time);
                tokio::time::sleep(pause).await;
            }
            match self.statement(&mut log).await {
                Ok(Step::Done(kind)) => done.push(kind),
                Ok(Step::Skipped) => {}
                Ok(Step::RolledBack(e)) => {
                    self.client.batch_execute("ROLLBACK").await.context("ROLLBACK")?;
                    self.undo(log);
                    self.rolled_back(&e, context);
                    return Ok(());
                }
                Err(e) => {
                    let _ = self.client.batch_execute("ROLLBACK").await;
                    return Err(e.context(format!("statement {} of a {context} transaction", i + 1)));
                }
            }
        }
        match self.client.batch_execute("COMMIT").await {
            Ok(()) => {
                self.record(&done, true);
                *self.share.counts.txns.entry(context.to_string()).or_default() += 1;
            }
            Err(e) => match expected_rollback(&e) {
                Some(what) => {
                    self.undo(log);
                    self.rolled_back(&what, &format!("{context} (at COMMIT)"));
                }
                None => bail!("COMMIT of a {context} transaction: {}", describe(&e)),
            },
        }
        Ok(())
    }

    /// Run a statement that changes rows; `Ok(Err(reason))` for an expected rollback.
    async fn exec(&self, stmt: &str, params: &[Param]) -> Result<std::result::Result<u64, String>> {
        let p: Vec<&(dyn ToSql + Sync)> = params.iter().map(Param::as_sql).collect();
        match self.client.execute(stmt, &p).await {
            Ok(n) => Ok(Ok(n)),
            Err(e) => match expected_rollback(&e) {
                Some(what) => Ok(Err(what)),
                None => Err(anyhow!("{}", describe(&e))),
            },
        }
    }

    fn random_values(&mut self) -> RowValues {
        let rng = &mut self.share.rng;
        let c = format!("{:016x}{:016x}", rng.random::<u64>(), rng.random::<u64>());
        RowValues { v: rng.random_range(0..1_000_000), c }
    }

    fn set(&mut self, log: &mut UndoLog, key: Key, value: Option<RowValues>) {
        let before = match value {
            Some(v) => self.share.rows.insert(key, v),
            None => self.share.rows.remove(&key),
        };
        log.push((key, before));
    }

    fn key_params(&self, key: Key) -> Vec<Param> {
        self.share.kind.values(key).into_iter().map(Param::Int).collect()
    }

    /// The outcome of a statement of `kind` on `key` that must affect `want` rows; on success
    /// `apply` changes the model (logged in `log`).
    fn counted(
        &mut self,
        outcome: std::result::Result<u64, String>,
        kind: OpKind,
        key: Key,
        want: u64,
        apply: impl FnOnce(&mut Self),
    ) -> Result<Step> {
        match outcome {
            Ok(n) => {
                self.share.expect(kind, key, n, want)?;
                apply(self);
                Ok(Step::Done(kind))
            }
            Err(e) => Ok(Step::RolledBack(e)),
        }
    }

    /// One random statement; on success the model is changed and the change logged in `log`.
    async fn statement(&mut self, log: &mut UndoLog) -> Result<Step> {
        let (kind, existing) = self.share.draw_op();
        let keys = self.share.kind;
        match kind {
            OpKind::Insert | OpKind::Absent => {
                let Some(key) = self.share.new_key() else { return Ok(Step::Skipped) };
                if kind == OpKind::Absent {
                    let outcome = self.exec(&self.sql.absent, &self.key_params(key)).await?;
                    return self.counted(outcome, kind, key, 0, |_| {});
                }
                let v = self.random_values();
                let mut params = self.key_params(key);
                params.extend([Param::Int(v.v), Param::Text(v.c.clone())]);
                let outcome =
                    self.exec(&self.sql.insert, &params).await.with_context(|| format!("insert of key {}", keys.show(key)))?;
                self.counted(outcome, kind, key, 1, |w| w.set(log, key, Some(v)))
            }
            OpKind::Update => {
                let key = existing.expect("checked");
                let v = self.random_values();
                let mut params = vec![Param::Int(v.v), Param::Text(v.c.clone())];
                params.extend(self.key_params(key));
                let outcome =
                    self.exec(&self.sql.update, &params).await.with_context(|| format!("update of key {}", keys.show(key)))?;
                self.counted(outcome, kind, key, 1, |w| w.set(log, key, Some(v)))
            }
            OpKind::MoveDown | OpKind::MoveUp => {
                let old = existing.expect("checked");
                let Some(new) = self.share.moved_key(old, kind == OpKind::MoveDown) else { return Ok(Step::Skipped) };
                let v_new = self.share.rng.random_range(0..1_000_000i64);
                let mut params = self.key_params(new);
                params.push(Param::Int(v_new));
                params.extend(self.key_params(old));
                let outcome = self
                    .exec(&self.sql.move_key, &params)
                    .await
                    .with_context(|| format!("key move {} -> {}", keys.show(old), keys.show(new)))?;
                self.counted(outcome, kind, old, 1, |w| {
                    let mut v = w.share.rows.get(&old).cloned().expect("existing key");
                    v.v = v_new;
                    w.set(log, old, None);
                    w.set(log, new, Some(v));
                })
            }
            OpKind::Delete => {
                let key = existing.expect("checked");
                let outcome = self
                    .exec(&self.sql.delete, &self.key_params(key))
                    .await
                    .with_context(|| format!("delete of key {}", keys.show(key)))?;
                self.counted(outcome, kind, key, 1, |w| w.set(log, key, None))
            }
            OpKind::Read => {
                let key = existing.expect("checked");
                let params = self.key_params(key);
                let p: Vec<&(dyn ToSql + Sync)> = params.iter().map(Param::as_sql).collect();
                let got = match self.client.query_opt(&self.sql.read, &p).await {
                    Ok(r) => r.map(|r| RowValues { v: r.get(0), c: r.get(1) }),
                    Err(e) => match expected_rollback(&e) {
                        Some(what) => return Ok(Step::RolledBack(what)),
                        None => bail!("read of key {}: {}", keys.show(key), describe(&e)),
                    },
                };
                self.share.check_read(key, got)?;
                Ok(Step::Done(kind))
            }
        }
    }
}

/// Compare the table with the model row by row (the key, `v`, `c`; other columns are ignored).
/// Reports up to 20 differences.
pub async fn verify(c: &Client, model: &Model) -> Result<Verification> {
    let mut diff = Diff::new(&model.rows, model.table.key);
    for (key, row) in scan(c, &model.table).await? {
        diff.row(key, row);
    }
    Ok(diff.finish())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::owner;

    #[test]
    fn statements_for_both_key_shapes() {
        let s = statements(&PgTable::composite("t"));
        assert_eq!(
            s.move_key,
            "UPDATE public.\"t\" SET a = $1::bigint, b = $2::bigint, v = $3::bigint WHERE a = $4::bigint AND b = $5::bigint"
        );
        assert_eq!(s.insert, "INSERT INTO public.\"t\" (a, b, v, c) VALUES ($1::bigint, $2::bigint, $3::bigint, $4::text)");
        let s = statements(&PgTable::single("t"));
        assert_eq!(s.update, "UPDATE public.\"t\" SET v = $1::bigint, c = $2::text WHERE id = $3::bigint");
        assert_eq!(s.delete, "DELETE FROM public.\"t\" WHERE id = $1::bigint");
        assert!(PgTable::composite("t").load_sql(16).contains("(g - 1) / 8 + 1, (g - 1) % 8 + 1"));
    }

    #[test]
    fn ownership_is_by_first_key_column() {
        assert_eq!(owner((7, 0), 4), 3);
        assert_eq!(owner((8, 99), 4), 0);
    }
}
