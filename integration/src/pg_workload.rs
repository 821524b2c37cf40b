//! Concurrent writers for PostgreSQL that keep an exact model of what they wrote.
//!
//! The PostgreSQL counterpart of [`crate::workload`] (same ideas, its own code: tokio-postgres,
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
//! Usage: [`PgTable::create`], [`PgTable::load`], [`Model::read`], [`Workload::start`],
//! [`Workload::stop`], [`verify`].

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use shadowswap_engine::progress::Progress;
use shadowswap_engine::Phase;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, NoTls};
use tokio_util::sync::CancellationToken;

/// A key: `(id, 0)` for a single-column key, `(a, b)` for the composite one.
pub type Key = (i64, i64);

/// Rows of the composite-key table per value of `a` in the initial load.
pub const COMPOSITE_B_PER_A: i64 = 8;

/// Values of `b` new keys are drawn from (twice the initial spread, so moves create new `b`s).
const COMPOSITE_B_SPACE: i64 = 2 * COMPOSITE_B_PER_A;

/// Which primary key the table has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// `id bigint PRIMARY KEY`.
    Single,
    /// `a integer, b integer, PRIMARY KEY (a, b)`.
    Composite,
}

/// A workload table in the connection's `public` schema: its name and key shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgTable {
    /// Table name.
    pub name: String,
    /// Primary key shape.
    pub key: KeyKind,
}

fn ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

impl PgTable {
    /// `id bigint PRIMARY KEY`.
    pub fn single(name: &str) -> Self {
        Self { name: name.to_string(), key: KeyKind::Single }
    }

    /// `PRIMARY KEY (a, b)`.
    pub fn composite(name: &str) -> Self {
        Self { name: name.to_string(), key: KeyKind::Composite }
    }

    /// Key column names.
    pub fn key_columns(&self) -> &'static [&'static str] {
        match self.key {
            KeyKind::Single => &["id"],
            KeyKind::Composite => &["a", "b"],
        }
    }

    fn quoted(&self) -> String {
        format!("public.{}", ident(&self.name))
    }

    fn key_list(&self) -> String {
        self.key_columns().join(", ")
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

    fn key_params(&self, key: Key) -> Vec<i64> {
        match self.key {
            KeyKind::Single => vec![key.0],
            KeyKind::Composite => vec![key.0, key.1],
        }
    }

    /// How a key prints: `(5)` or `(5, 3)`.
    pub fn show_key(&self, key: Key) -> String {
        match self.key {
            KeyKind::Single => format!("({})", key.0),
            KeyKind::Composite => format!("({}, {})", key.0, key.1),
        }
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
#[derive(Debug, Clone)]
pub struct Model {
    /// The table.
    pub table: PgTable,
    /// Rows by key.
    pub rows: BTreeMap<Key, RowValues>,
    /// New keys are drawn with the first key column in `1..=key_space`: twice the largest
    /// initial value, so half of the space lies above the backfill's high watermark.
    pub key_space: i64,
}

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
        let rows: BTreeMap<Key, RowValues> = scan(c, t).await?.into_iter().collect();
        let max = rows.keys().map(|k| k.0).max().unwrap_or(0);
        Ok(Model { table: t.clone(), rows, key_space: (2 * max).max(64) })
    }

    /// Rows in the model.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether the model has no rows.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
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

/// `SHADOWSWAP_SEED` if set, else a seed from the clock (printed in the report, so a failure
/// can be rerun with the same writer choices; timing still differs between runs).
pub fn seed_from_env_or_clock() -> u64 {
    if let Some(s) = std::env::var("SHADOWSWAP_SEED").ok().and_then(|s| s.parse().ok()) {
        return s;
    }
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(1)
}

/// Statement kinds the writers run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum OpKind {
    /// INSERT of a new key.
    Insert,
    /// UPDATE of the non-key columns.
    Update,
    /// UPDATE that changes the key to a new one below the old key.
    MoveDown,
    /// UPDATE that changes the key to a new one above the old key.
    MoveUp,
    /// DELETE of an existing key.
    Delete,
    /// SELECT of an existing key, compared with the model at once.
    Read,
    /// UPDATE of a key that does not exist: must match no row.
    Absent,
}

impl OpKind {
    /// Every kind.
    pub const ALL: [OpKind; 7] =
        [OpKind::Insert, OpKind::Update, OpKind::MoveDown, OpKind::MoveUp, OpKind::Delete, OpKind::Read, OpKind::Absent];

    fn name(self) -> &'static str {
        match self {
            OpKind::Insert => "insert",
            OpKind::Update => "update",
            OpKind::MoveDown => "key move down",
            OpKind::MoveUp => "key move up",
            OpKind::Delete => "delete",
            OpKind::Read => "read",
            OpKind::Absent => "update of absent key",
        }
    }
}

/// Counts that add up over writers.
#[derive(Debug, Clone, Default)]
pub struct Counts {
    /// Applied (committed) statements by kind.
    pub by_kind: BTreeMap<OpKind, u64>,
    /// Applied statements by migration phase at the time they committed (in the order phases
    /// were first seen).
    pub by_phase: Vec<(String, u64)>,
    /// Committed multi-statement transactions by isolation level.
    pub txns: BTreeMap<Isolation, u64>,
    /// Applied statements that ran inside a multi-statement transaction.
    pub txn_statements: u64,
    /// Statements or transactions rolled back by the server and not applied, by error and where
    /// (e.g. "serialization failure (40001) in repeatable read").
    pub errors: BTreeMap<String, u64>,
    /// Rollbacks by migration phase.
    pub errors_by_phase: Vec<(String, u64)>,
    /// Statements whose key was picked at the copy's position.
    pub at_frontier: u64,
}

fn bump(v: &mut Vec<(String, u64)>, label: &str, n: u64) {
    match v.iter_mut().find(|(l, _)| l == label) {
        Some((_, c)) => *c += n,
        None => v.push((label.to_string(), n)),
    }
}

impl Counts {
    fn merge(&mut self, other: &Counts) {
        for (k, n) in &other.by_kind {
            *self.by_kind.entry(*k).or_default() += n;
        }
        for (p, n) in &other.by_phase {
            bump(&mut self.by_phase, p, *n);
        }
        for (i, n) in &other.txns {
            *self.txns.entry(*i).or_default() += n;
        }
        self.txn_statements += other.txn_statements;
        for (e, n) in &other.errors {
            *self.errors.entry(e.clone()).or_default() += n;
        }
        for (p, n) in &other.errors_by_phase {
            bump(&mut self.errors_by_phase, p, *n);
        }
        self.at_frontier += other.at_frontier;
    }
}

/// What the writers did.
#[derive(Debug, Clone)]
pub struct WorkloadReport {
    /// Number of writers.
    pub writers: usize,
    /// The seed used.
    pub seed: u64,
    /// How long the writers ran.
    pub elapsed: Duration,
    /// Counts over all writers.
    pub counts: Counts,
    /// Applied statements per writer.
    pub per_writer: Vec<u64>,
}

impl WorkloadReport {
    /// Applied statements (rolled-back ones not included).
    pub fn ops(&self) -> u64 {
        self.counts.by_kind.values().sum()
    }

    /// Applied statements that committed while the phase (display name, e.g. "backfill") was current.
    pub fn ops_during(&self, phase: &str) -> u64 {
        self.counts.by_phase.iter().filter(|(p, _)| p == phase).map(|(_, n)| n).sum()
    }

    /// Applied statements of one kind.
    pub fn ops_of(&self, kind: OpKind) -> u64 {
        self.counts.by_kind.get(&kind).copied().unwrap_or(0)
    }

    /// Committed transactions at one isolation level.
    pub fn txns_of(&self, iso: Isolation) -> u64 {
        self.counts.txns.get(&iso).copied().unwrap_or(0)
    }

    /// Rollbacks (deadlocks, lock timeouts, serialization failures).
    pub fn errors(&self) -> u64 {
        self.counts.errors.values().sum()
    }
}

fn list(v: impl IntoIterator<Item = (String, u64)>) -> String {
    let parts: Vec<String> = v.into_iter().map(|(k, n)| format!("{k} {n}")).collect();
    if parts.is_empty() {
        "none".into()
    } else {
        parts.join(", ")
    }
}

impl fmt::Display for WorkloadReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.elapsed.as_secs_f64().max(1e-3);
        writeln!(
            f,
            "{} writers (seed {}): {} statements applied in {:.1} s ({:.0}/s), per writer {:?}",
            self.writers,
            self.seed,
            self.ops(),
            secs,
            self.ops() as f64 / secs,
            self.per_writer
        )?;
        writeln!(f, "  by kind:  {}", list(OpKind::ALL.iter().map(|k| (k.name().to_string(), self.ops_of(*k)))))?;
        writeln!(f, "  by phase: {}", list(self.counts.by_phase.clone()))?;
        writeln!(
            f,
            "  transactions committed: {} ({} statements in them); at the copy's position: {} statements",
            list(self.counts.txns.iter().map(|(i, n)| (i.name().to_string(), *n))),
            self.counts.txn_statements,
            self.counts.at_frontier
        )?;
        write!(
            f,
            "  rolled back (not applied): {} — {}; by phase: {}",
            self.errors(),
            list(self.counts.errors.clone()),
            list(self.counts.errors_by_phase.clone())
        )
    }
}

/// Running writers. Stop them with [`Workload::stop`].
pub struct Workload {
    table: PgTable,
    key_space: i64,
    seed: u64,
    cancel: CancellationToken,
    ops: Arc<AtomicU64>,
    started: Instant,
    tasks: Vec<JoinHandle<WriterEnd>>,
}

struct WriterEnd {
    rows: BTreeMap<Key, RowValues>,
    counts: Counts,
    failure: Option<String>,
}

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
        let mut parts: Vec<BTreeMap<Key, RowValues>> = (0..n).map(|_| BTreeMap::new()).collect();
        for (k, v) in model.rows {
            parts[owner(k, n)].insert(k, v);
        }
        let cancel = CancellationToken::new();
        let ops = Arc::new(AtomicU64::new(0));
        let mut tasks = Vec::with_capacity(n);
        for (w, rows) in parts.into_iter().enumerate() {
            let (client, conn) = tokio_postgres::connect(dsn, NoTls).await.with_context(|| format!("connecting writer {w}"))?;
            let driver = tokio::spawn(async move {
                let _ = conn.await;
            });
            // A hang would be a bug; make it an error instead of a stuck test.
            client.batch_execute("SET application_name = 'shadowswap-pg-workload'; SET statement_timeout = '60s'").await?;
            let writer = Writer {
                w,
                n,
                table: model.table.clone(),
                key_space: model.key_space,
                rows,
                rng: StdRng::seed_from_u64(config.seed.wrapping_add(w as u64)),
                client,
                driver,
                progress: progress.clone(),
                counts: Counts::default(),
                ops: ops.clone(),
                sql: Sql::new(&model.table),
                config: config.clone(),
            };
            tasks.push(tokio::spawn(writer.run(cancel.clone())));
        }
        Ok(Workload {
            table: model.table,
            key_space: model.key_space,
            seed: config.seed,
            cancel,
            ops,
            started: Instant::now(),
            tasks,
        })
    }

    /// Statements applied so far, over all writers.
    pub fn ops(&self) -> u64 {
        self.ops.load(Ordering::Relaxed)
    }

    /// Wait until the writers have applied at least `n` statements in total (so they are warmed
    /// up before a migration starts). Fails if a writer stops first.
    pub async fn wait_for_ops(&self, n: u64) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.ops() < n {
            if self.tasks.iter().any(|t| t.is_finished()) {
                bail!("a writer stopped before the workload reached {n} statements");
            }
            if Instant::now() > deadline {
                bail!("the writers did not reach {n} statements in 60 s (at {})", self.ops());
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok(())
    }

    /// Signal the writers to stop after their current step, wait for them, and return the
    /// merged model and the report. Fails (with the report in the message) if any writer met an
    /// error other than a deadlock, lock timeout or serialization failure, or an unexpected row
    /// count or read.
    pub async fn stop(self) -> Result<(Model, WorkloadReport)> {
        self.cancel.cancel();
        let mut rows = BTreeMap::new();
        let mut counts = Counts::default();
        let mut per_writer = Vec::new();
        let mut failures = Vec::new();
        for (w, t) in self.tasks.into_iter().enumerate() {
            match t.await {
                Ok(end) => {
                    per_writer.push(end.counts.by_kind.values().sum());
                    counts.merge(&end.counts);
                    if let Some(f) = end.failure {
                        failures.push(format!("writer {w}: {f}"));
                    }
                    rows.extend(end.rows);
                }
                Err(e) => failures.push(format!("writer {w} panicked: {e}")),
            }
        }
        let report =
            WorkloadReport { writers: per_writer.len(), seed: self.seed, elapsed: self.started.elapsed(), counts, per_writer };
        if !failures.is_empty() {
            bail!("workload failed:\n  {}\n{report}", failures.join("\n  "));
        }
        Ok((Model { table: self.table, rows, key_space: self.key_space }, report))
    }
}

fn owner(key: Key, n: usize) -> usize {
    key.0.rem_euclid(n as i64) as usize
}

/// The statements of one table, built once. Every parameter is a `bigint` (or `text`) cast in
/// the statement, so the same statements work before and after an ALTER that widens a column.
struct Sql {
    insert: String,
    update: String,
    move_key: String,
    delete: String,
    read: String,
    absent: String,
}

impl Sql {
    fn new(t: &PgTable) -> Self {
        let q = t.quoted();
        let nk = t.key_columns().len();
        let key_values = (1..=nk).map(|i| format!("${i}::bigint")).collect::<Vec<_>>().join(", ");
        let key_set =
            t.key_columns().iter().enumerate().map(|(i, c)| format!("{c} = ${}::bigint", i + 1)).collect::<Vec<_>>().join(", ");
        Sql {
            insert: format!(
                "INSERT INTO {q} ({}, v, c) VALUES ({key_values}, ${}::bigint, ${}::text)",
                t.key_list(),
                nk + 1,
                nk + 2
            ),
            update: format!("UPDATE {q} SET v = $1::bigint, c = $2::text WHERE {}", t.key_where(3)),
            move_key: format!("UPDATE {q} SET {key_set}, v = ${}::bigint WHERE {}", nk + 1, t.key_where(nk + 2)),
            delete: format!("DELETE FROM {q} WHERE {}", t.key_where(1)),
            read: format!("SELECT v::bigint, c FROM {q} WHERE {}", t.key_where(1)),
            absent: format!("UPDATE {q} SET v = v + 1 WHERE {}", t.key_where(1)),
        }
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
    w: usize,
    n: usize,
    table: PgTable,
    key_space: i64,
    rows: BTreeMap<Key, RowValues>,
    rng: StdRng,
    client: Client,
    driver: JoinHandle<()>,
    progress: Option<watch::Receiver<Progress>>,
    counts: Counts,
    ops: Arc<AtomicU64>,
    sql: Sql,
    config: WorkloadConfig,
}

impl Writer {
    async fn run(mut self, cancel: CancellationToken) -> WriterEnd {
        let mut failure = None;
        while !cancel.is_cancelled() {
            let before = self.label();
            let r = if self.rng.random_range(0..100) < self.config.txn_percent {
                self.transaction().await
            } else {
                self.autocommit().await
            };
            if let Err(e) = r {
                let msg = format!("{e:#} (phase {before} when the step started, {} when it failed)", self.label());
                eprintln!("pg workload writer {} FAILED: {msg}", self.w);
                failure = Some(msg);
                break;
            }
        }
        drop(self.client);
        let _ = self.driver.await;
        WriterEnd { rows: self.rows, counts: self.counts, failure }
    }

    fn label(&self) -> String {
        match &self.progress {
            Some(rx) => rx.borrow().phase.to_string(),
            None => "no migration".into(),
        }
    }

    fn record(&mut self, kinds: &[OpKind], in_txn: bool) {
        let label = self.label();
        for k in kinds {
            *self.counts.by_kind.entry(*k).or_default() += 1;
        }
        if in_txn {
            self.counts.txn_statements += kinds.len() as u64;
        }
        bump(&mut self.counts.by_phase, &label, kinds.len() as u64);
        self.ops.fetch_add(kinds.len() as u64, Ordering::Relaxed);
    }

    fn rolled_back(&mut self, what: &str, context: &str) {
        let label = self.label();
        *self.counts.errors.entry(format!("{what} in {context}")).or_default() += 1;
        bump(&mut self.counts.errors_by_phase, &label, 1);
    }

    fn undo(&mut self, log: UndoLog) {
        for (key, before) in log.into_iter().rev() {
            match before {
                Some(v) => self.rows.insert(key, v),
                None => self.rows.remove(&key),
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
        let iso = self.config.isolation[self.rng.random_range(0..self.config.isolation.len())];
        let context = iso.name();
        self.client.batch_execute(&format!("BEGIN ISOLATION LEVEL {}", iso.sql())).await.context("BEGIN")?;
        let statements = self.rng.random_range(2..=self.config.max_txn_statements.max(2));
        let mut log = UndoLog::new();
        let mut done = Vec::new();
        for i in 0..statements {
            if i > 0 && !self.config.think_time.is_zero() {
                let pause = self.rng.random_range(Duration::ZERO..=self.config.think_time);
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
                *self.counts.txns.entry(iso).or_default() += 1;
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
        let c = format!("{:016x}{:016x}", self.rng.random::<u64>(), self.rng.random::<u64>());
        RowValues { v: self.rng.random_range(0..1_000_000), c }
    }

    /// The smallest value ≥ `x` owned by this writer (first key column ≡ w mod n), at least 1.
    fn owned_at_or_above(&self, x: i64) -> i64 {
        let n = self.n as i64;
        let w = self.w as i64;
        let mut v = x - x.rem_euclid(n) + w;
        if v < x {
            v += n;
        }
        while v < 1 {
            v += n;
        }
        v
    }

    fn make_key(&mut self, first: i64) -> Key {
        let a = self.owned_at_or_above(first.clamp(1, self.key_space));
        match self.table.key {
            KeyKind::Single => (a, 0),
            KeyKind::Composite => (a, self.rng.random_range(1..=COMPOSITE_B_SPACE)),
        }
    }

    /// A key of this writer that is not in use, drawn by `draw` (a first-key-column value).
    fn unused_key(&mut self, mut draw: impl FnMut(&mut StdRng) -> i64) -> Option<Key> {
        for _ in 0..20 {
            let first = draw(&mut self.rng);
            let key = self.make_key(first);
            if !self.rows.contains_key(&key) {
                return Some(key);
            }
        }
        None
    }

    /// Where the copy is now, as a first-key-column value, while the migration is in backfill.
    /// The initial keys are dense from 1, so after `rows_copied` rows the copy is near there
    /// (the estimate lags by up to one progress interval).
    fn copy_position(&self) -> Option<i64> {
        let p = self.progress.as_ref()?.borrow().clone();
        if p.phase != Phase::Backfill {
            return None;
        }
        let per_first = match self.table.key {
            KeyKind::Single => 1,
            KeyKind::Composite => COMPOSITE_B_PER_A,
        };
        Some(p.rows_copied as i64 / per_first + 1)
    }

    /// A first-key-column value at or just above the copy's position, if in backfill and chosen.
    fn near_copy(&mut self) -> Option<i64> {
        let pos = self.copy_position()?;
        if self.rng.random_range(0..100) >= self.config.frontier_percent {
            return None;
        }
        let spread = [4i64, 32, 256, 2048][self.rng.random_range(0..4)];
        self.counts.at_frontier += 1;
        Some(pos + self.rng.random_range(0..=spread))
    }

    /// An existing key of this writer: near the copy's position sometimes, else at random.
    fn existing_key(&mut self) -> Option<Key> {
        let first = match self.near_copy() {
            Some(f) => f,
            None => self.rng.random_range(1..=self.key_space),
        };
        self.rows.range((first, 0)..).next().or_else(|| self.rows.iter().next()).map(|(k, _)| *k)
    }

    /// A new key for the row at `old`, below (`down`) or above it: sometimes near (likely the same
    /// or the next chunk), sometimes at the copy's position, sometimes far (across many chunks,
    /// from the not-yet-copied range into the copied one or back, or beyond the high watermark);
    /// for the composite key sometimes only `b` changes.
    fn moved_key(&mut self, old: Key, down: bool) -> Option<Key> {
        let space = self.key_space;
        if self.table.key == KeyKind::Composite && self.rng.random_bool(0.3) {
            let b_range = if down { 1..=old.1 - 1 } else { old.1 + 1..=COMPOSITE_B_SPACE };
            if !b_range.is_empty() {
                for _ in 0..5 {
                    let key = (old.0, self.rng.random_range(b_range.clone()));
                    if !self.rows.contains_key(&key) {
                        return Some(key);
                    }
                }
            }
        }
        let lo = if down { 1 } else { old.0 + 1 };
        let hi = if down { old.0 - 1 } else { space };
        if lo > hi {
            return None;
        }
        let target = self.near_copy().filter(|t| (lo..=hi).contains(t));
        let near = self.rng.random_bool(0.3);
        let key = self.unused_key(|rng| match target {
            Some(t) => t,
            None if near && down => (old.0 - rng.random_range(1..=64)).max(lo),
            None if near => (old.0 + rng.random_range(1..=64)).min(hi),
            None => rng.random_range(lo..=hi),
        })?;
        // make_key may round up past the bound or, for the composite key, land on the same `a`
        // with a `b` on the wrong side; keep the direction honest.
        let ok = if down { key < old } else { key > old };
        ok.then_some(key)
    }

    fn expect(&self, kind: OpKind, key: Key, got: u64, want: u64) -> Result<()> {
        if got != want {
            bail!(
                "{} of key {} affected {got} rows, expected {want} (the model says the key {})",
                kind.name(),
                self.table.show_key(key),
                if self.rows.contains_key(&key) { "exists" } else { "does not exist" }
            );
        }
        Ok(())
    }

    fn set(&mut self, log: &mut UndoLog, key: Key, value: Option<RowValues>) {
        let before = match value {
            Some(v) => self.rows.insert(key, v),
            None => self.rows.remove(&key),
        };
        log.push((key, before));
    }

    fn key_params(&self, key: Key) -> Vec<Param> {
        self.table.key_params(key).into_iter().map(Param::Int).collect()
    }

    /// One random statement; on success the model is changed and the change logged in `log`.
    async fn statement(&mut self, log: &mut UndoLog) -> Result<Step> {
        let roll = self.rng.random_range(0..100);
        let mut kind = match roll {
            0..18 => OpKind::Insert,
            18..43 => OpKind::Update,
            43..53 => OpKind::MoveDown,
            53..63 => OpKind::MoveUp,
            63..81 => OpKind::Delete,
            81..95 => OpKind::Read,
            _ => OpKind::Absent,
        };
        let existing = self.existing_key();
        if existing.is_none() && kind != OpKind::Absent {
            kind = OpKind::Insert;
        }
        let t = self.table.clone();
        match kind {
            OpKind::Insert | OpKind::Absent => {
                let space = self.key_space;
                let near = self.near_copy();
                let Some(key) = self.unused_key(|rng| near.unwrap_or_else(|| rng.random_range(1..=space))) else {
                    return Ok(Step::Skipped);
                };
                if kind == OpKind::Absent {
                    return match self.exec(&self.sql.absent, &self.key_params(key)).await? {
                        Ok(n) => {
                            self.expect(kind, key, n, 0)?;
                            Ok(Step::Done(kind))
                        }
                        Err(e) => Ok(Step::RolledBack(e)),
                    };
                }
                let v = self.random_values();
                let mut params = self.key_params(key);
                params.extend([Param::Int(v.v), Param::Text(v.c.clone())]);
                match self.exec(&self.sql.insert, &params).await.with_context(|| format!("insert of key {}", t.show_key(key)))? {
                    Ok(n) => {
                        self.expect(kind, key, n, 1)?;
                        self.set(log, key, Some(v));
                        Ok(Step::Done(kind))
                    }
                    Err(e) => Ok(Step::RolledBack(e)),
                }
            }
            OpKind::Update => {
                let key = existing.expect("checked");
                let v = self.random_values();
                let mut params = vec![Param::Int(v.v), Param::Text(v.c.clone())];
                params.extend(self.key_params(key));
                match self.exec(&self.sql.update, &params).await.with_context(|| format!("update of key {}", t.show_key(key)))? {
                    Ok(n) => {
                        self.expect(kind, key, n, 1)?;
                        self.set(log, key, Some(v));
                        Ok(Step::Done(kind))
                    }
                    Err(e) => Ok(Step::RolledBack(e)),
                }
            }
            OpKind::MoveDown | OpKind::MoveUp => {
                let old = existing.expect("checked");
                let Some(new) = self.moved_key(old, kind == OpKind::MoveDown) else { return Ok(Step::Skipped) };
                let v_new = self.rng.random_range(0..1_000_000i64);
                let mut params = self.key_params(new);
                params.push(Param::Int(v_new));
                params.extend(self.key_params(old));
                let r = self
                    .exec(&self.sql.move_key, &params)
                    .await
                    .with_context(|| format!("key move {} -> {}", t.show_key(old), t.show_key(new)))?;
                match r {
                    Ok(n) => {
                        self.expect(kind, old, n, 1)?;
                        let mut v = self.rows.get(&old).cloned().expect("existing key");
                        v.v = v_new;
                        self.set(log, old, None);
                        self.set(log, new, Some(v));
                        Ok(Step::Done(kind))
                    }
                    Err(e) => Ok(Step::RolledBack(e)),
                }
            }
            OpKind::Delete => {
                let key = existing.expect("checked");
                match self
                    .exec(&self.sql.delete, &self.key_params(key))
                    .await
                    .with_context(|| format!("delete of key {}", t.show_key(key)))?
                {
                    Ok(n) => {
                        self.expect(kind, key, n, 1)?;
                        self.set(log, key, None);
                        Ok(Step::Done(kind))
                    }
                    Err(e) => Ok(Step::RolledBack(e)),
                }
            }
            OpKind::Read => {
                let key = existing.expect("checked");
                let params = self.key_params(key);
                let p: Vec<&(dyn ToSql + Sync)> = params.iter().map(Param::as_sql).collect();
                let got = match self.client.query_opt(&self.sql.read, &p).await {
                    Ok(r) => r.map(|r| RowValues { v: r.get(0), c: r.get(1) }),
                    Err(e) => match expected_rollback(&e) {
                        Some(what) => return Ok(Step::RolledBack(what)),
                        None => bail!("read of key {}: {}", t.show_key(key), describe(&e)),
                    },
                };
                let want = &self.rows[&key];
                match got {
                    Some(g) if g == *want => Ok(Step::Done(kind)),
                    Some(g) => bail!("read of key {} returned {g} but the model has {want}", t.show_key(key)),
                    None => bail!("read of key {}: row missing, the model has {want}", t.show_key(key)),
                }
            }
        }
    }
}

/// The result of comparing a table with a model.
#[derive(Debug, Clone, Default)]
pub struct Verification {
    /// Rows in the table.
    pub table_rows: u64,
    /// Rows in the model.
    pub model_rows: u64,
    /// Keys in the model but not in the table.
    pub missing: u64,
    /// Keys in the table but not in the model.
    pub extra: u64,
    /// Keys in both with different values.
    pub differing: u64,
    /// The first differences, described.
    pub examples: Vec<String>,
}

impl Verification {
    /// True when the table equals the model row by row.
    pub fn ok(&self) -> bool {
        self.missing == 0 && self.extra == 0 && self.differing == 0 && self.table_rows == self.model_rows
    }
}

impl fmt::Display for Verification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.ok() {
            return write!(f, "table matches the model: {} rows", self.table_rows);
        }
        write!(
            f,
            "table differs from the model: {} rows in the table, {} in the model; {} missing, {} extra, {} differing",
            self.table_rows, self.model_rows, self.missing, self.extra, self.differing
        )?;
        for e in &self.examples {
            write!(f, "\n  {e}")?;
        }
        Ok(())
    }
}

/// Compare the table with the model row by row (the key, `v`, `c`; other columns are ignored).
/// Reports up to 20 differences.
pub async fn verify(c: &Client, model: &Model) -> Result<Verification> {
    const EXAMPLES: usize = 20;
    let t = &model.table;
    let mut v = Verification { model_rows: model.rows.len() as u64, ..Verification::default() };
    let mut expected = model.rows.iter().peekable();
    fn note(v: &mut Verification, s: String) {
        if v.examples.len() < EXAMPLES {
            v.examples.push(s);
        }
    }
    for (key, row) in scan(c, t).await? {
        v.table_rows += 1;
        while let Some((mk, mv)) = expected.next_if(|(mk, _)| **mk < key) {
            v.missing += 1;
            note(&mut v, format!("missing {}: the model has {mv}", t.show_key(*mk)));
        }
        match expected.next_if(|(mk, _)| **mk == key) {
            Some((_, mv)) if *mv == row => {}
            Some((_, mv)) => {
                v.differing += 1;
                note(&mut v, format!("differs {}: table has {row}, the model has {mv}", t.show_key(key)));
            }
            None => {
                v.extra += 1;
                note(&mut v, format!("extra {}: table has {row}, not in the model", t.show_key(key)));
            }
        }
    }
    for (mk, mv) in expected {
        v.missing += 1;
        note(&mut v, format!("missing {}: the model has {mv}", t.show_key(*mk)));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_for_both_key_shapes() {
        let s = Sql::new(&PgTable::composite("t"));
        assert_eq!(
            s.move_key,
            "UPDATE public.\"t\" SET a = $1::bigint, b = $2::bigint, v = $3::bigint WHERE a = $4::bigint AND b = $5::bigint"
        );
        assert_eq!(s.insert, "INSERT INTO public.\"t\" (a, b, v, c) VALUES ($1::bigint, $2::bigint, $3::bigint, $4::text)");
        let s = Sql::new(&PgTable::single("t"));
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
