//! Concurrent writers that keep an exact model of what they wrote.
//!
//! The point: run random INSERT / UPDATE (some changing the key) / DELETE statements against a
//! table while shadowswap migrates it, and afterwards compare the table row by row with what the
//! writers know they did. The model is exact because
//!
//! - every writer owns a disjoint key space (the first key column ≡ writer number mod N), so no
//!   two writers ever touch the same row and there is no cross-writer ordering to guess;
//! - every statement is a single autocommit statement, applied to the writer's model only after
//!   the server confirmed it (affected rows, with `CLIENT_FOUND_ROWS` so an UPDATE counts the
//!   row it matched); the writer knows which of its keys exist, so it knows the exact count to
//!   expect, and any other count is a failure;
//! - a deadlock (1213) or lock wait timeout (1205) rolls the statement back: counted, not applied.
//!   Any other error stops that writer and fails [`Workload::stop`].
//!
//! A statement is never abandoned half way (the stop signal is looked at between statements
//! only), so there is never a statement whose effect is unknown.
//!
//! Table shapes: sysbench's `sbtest` layout (`id` primary key, `k`, `c CHAR(120)`,
//! `pad CHAR(60)`), and a composite-key variant with `PRIMARY KEY (a, b)` instead of `id`. Keys
//! are modelled as `(i64, i64)`; a single-column key uses the second part as 0.
//!
//! Usage: [`TableSpec::create`], [`TableSpec::load`], [`Model::read`], [`Workload::start`],
//! [`Workload::stop`], [`verify`].

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts, OptsBuilder, Pool, Row, Value};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use shadowswap_engine::progress::Progress;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// A key: `(id, 0)` for a single-column key, `(a, b)` for the composite one.
pub type Key = (i64, i64);

/// Rows of the composite-key table per value of `a` in the initial load.
pub const COMPOSITE_B_PER_A: i64 = 8;

/// Values of `b` new keys are drawn from (twice the initial spread, so moves create new `b`s).
const COMPOSITE_B_SPACE: i64 = 2 * COMPOSITE_B_PER_A;

/// Rows per statement of the initial load (each batch is one transaction).
const LOAD_BATCH: u64 = 50_000;

/// Which primary key the table has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// `id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY` (sysbench's `sbtest`).
    Single,
    /// `a INT NOT NULL, b INT NOT NULL, PRIMARY KEY (a, b)`.
    Composite,
}

/// A workload table: its name and key. The non-key columns are always `k`, `c`, `pad`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSpec {
    /// Table name (in the connection's database).
    pub name: String,
    /// Primary key shape.
    pub key: KeyKind,
}

impl TableSpec {
    /// sysbench's layout: `id` primary key.
    pub fn single(name: &str) -> Self {
        Self { name: name.to_string(), key: KeyKind::Single }
    }

    /// The composite-key layout: `PRIMARY KEY (a, b)`.
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
        format!("`{}`", self.name.replace('`', "``"))
    }

    fn key_list(&self) -> String {
        self.key_columns().join(", ")
    }

    /// `id = ?` or `a = ? AND b = ?`.
    fn key_where(&self) -> String {
        self.key_columns().iter().map(|c| format!("{c} = ?")).collect::<Vec<_>>().join(" AND ")
    }

    /// `id = ?` or `a = ?, b = ?` (SET list for a key change).
    fn key_set(&self) -> String {
        self.key_columns().iter().map(|c| format!("{c} = ?")).collect::<Vec<_>>().join(", ")
    }

    fn key_params(&self, key: Key) -> Vec<Value> {
        match self.key {
            KeyKind::Single => vec![key.0.into()],
            KeyKind::Composite => vec![key.0.into(), key.1.into()],
        }
    }

    /// How a key prints: `(5)` or `(5, 3)`.
    pub fn show_key(&self, key: Key) -> String {
        match self.key {
            KeyKind::Single => format!("({})", key.0),
            KeyKind::Composite => format!("({}, {})", key.0, key.1),
        }
    }

    /// `CREATE TABLE` statement.
    pub fn create_sql(&self) -> String {
        let key = match self.key {
            KeyKind::Single => "id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,".to_string(),
            KeyKind::Composite => "a INT NOT NULL, b INT NOT NULL,".to_string(),
        };
        let pk = match self.key {
            KeyKind::Single => "",
            KeyKind::Composite => "PRIMARY KEY (a, b), ",
        };
        format!(
            "CREATE TABLE {} ({key} k INT UNSIGNED NOT NULL DEFAULT 0, c CHAR(120) NOT NULL DEFAULT '', \
             pad CHAR(60) NOT NULL DEFAULT '', {pk}KEY k_1 (k)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
            self.quoted()
        )
    }

    /// Create the table (dropping any table of that name first).
    pub async fn create(&self, pool: &Pool) -> Result<()> {
        let mut c = pool.get_conn().await?;
        c.query_drop(format!("DROP TABLE IF EXISTS {}", self.quoted())).await?;
        c.query_drop(self.create_sql()).await.with_context(|| format!("creating {}", self.name))?;
        Ok(())
    }

    /// The server-side load of sequence numbers `lo..=hi` (MariaDB's sequence engine), with
    /// deterministic pseudo-random content in sysbench's format: `k` in `1..=total`, `c` ten and
    /// `pad` five dash-separated groups of 11 digits, all derived from hashes of the number.
    pub fn load_sql(&self, lo: u64, hi: u64, total: u64) -> String {
        let digits = |hash: &str, group: usize| {
            format!("LPAD(CAST(CONV(SUBSTRING({hash}, {}, 10), 16, 10) AS UNSIGNED) MOD 100000000000, 11, '0')", 1 + 10 * group)
        };
        let c = (0..10).map(|g| digits("hc", g)).collect::<Vec<_>>().join(", ");
        let pad = (0..5).map(|g| digits("hp", g)).collect::<Vec<_>>().join(", ");
        let (cols, key) = match self.key {
            KeyKind::Single => ("id", "seq".to_string()),
            KeyKind::Composite => {
                ("a, b", format!("(seq - 1) DIV {COMPOSITE_B_PER_A} + 1, (seq - 1) MOD {COMPOSITE_B_PER_A} + 1"))
            }
        };
        // The derived table has a LIMIT so it is materialised, not merged: each hash is computed
        // once per row instead of once per group.
        format!(
            "INSERT INTO {} ({cols}, k, c, pad) \
             SELECT {key}, CRC32(CONCAT('k', seq)) MOD {total} + 1, CONCAT_WS('-', {c}), CONCAT_WS('-', {pad}) \
             FROM (SELECT seq, SHA2(CONCAT('c', seq), 512) AS hc, SHA2(CONCAT('p', seq), 256) AS hp \
                   FROM seq_{lo}_to_{hi} LIMIT {}) AS g",
            self.quoted(),
            hi - lo + 1
        )
    }

    /// Load `rows` rows server-side, in batches of [`LOAD_BATCH`]; `progress` is called with the
    /// rows loaded so far after each batch.
    pub async fn load(&self, pool: &Pool, rows: u64, mut progress: impl FnMut(u64)) -> Result<()> {
        let mut c = pool.get_conn().await?;
        let mut lo = 1;
        while lo <= rows {
            let hi = (lo + LOAD_BATCH - 1).min(rows);
            c.query_drop(self.load_sql(lo, hi, rows)).await.with_context(|| format!("loading rows {lo}..={hi}"))?;
            progress(hi);
            lo = hi + 1;
        }
        c.query_drop(format!("ANALYZE TABLE {}", self.quoted())).await?;
        Ok(())
    }
}

/// The non-key values of a row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowValues {
    /// `k`.
    pub k: i64,
    /// `c`.
    pub c: String,
    /// `pad`.
    pub pad: String,
}

impl fmt::Display for RowValues {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let short = |s: &str| {
            if s.chars().count() > 23 {
                format!("{}…", s.chars().take(23).collect::<String>())
            } else {
                s.to_string()
            }
        };
        write!(f, "k={} c={:?} pad={:?}", self.k, short(&self.c), short(&self.pad))
    }
}

/// What the table should contain: every row, by key.
#[derive(Debug, Clone)]
pub struct Model {
    /// The table.
    pub spec: TableSpec,
    /// Rows by key.
    pub rows: BTreeMap<Key, RowValues>,
    /// New keys are drawn with the first key column in `1..=key_space`: twice the largest
    /// initial value, so half of the space lies above the backfill's high watermark.
    pub key_space: i64,
}

fn select_sql(spec: &TableSpec) -> String {
    format!("SELECT {}, k, c, pad FROM {} ORDER BY {}", spec.key_list(), spec.quoted(), spec.key_list())
}

fn decode(spec: &TableSpec, row: Row) -> Result<(Key, RowValues)> {
    let n = spec.key_columns().len();
    let get_i64 = |i: usize| -> Result<i64> {
        row.get_opt::<i64, _>(i).ok_or_else(|| anyhow!("column {i} missing"))?.map_err(|e| anyhow!("column {i}: {e}"))
    };
    let get_str = |i: usize| -> Result<String> {
        row.get_opt::<String, _>(i).ok_or_else(|| anyhow!("column {i} missing"))?.map_err(|e| anyhow!("column {i}: {e}"))
    };
    let key = if n == 1 { (get_i64(0)?, 0) } else { (get_i64(0)?, get_i64(1)?) };
    Ok((key, RowValues { k: get_i64(n)?, c: get_str(n + 1)?, pad: get_str(n + 2)? }))
}

/// Stream every row of the table in key order into `f`.
async fn scan(pool: &Pool, spec: &TableSpec, mut f: impl FnMut(Key, RowValues)) -> Result<()> {
    let mut c = pool.get_conn().await?;
    let mut failed = None;
    c.query_iter(select_sql(spec))
        .await
        .with_context(|| format!("reading {}", spec.name))?
        .for_each_and_drop(|row| {
            if failed.is_some() {
                return;
            }
            match decode(spec, row) {
                Ok((k, v)) => f(k, v),
                Err(e) => failed = Some(e),
            }
        })
        .await?;
    match failed {
        Some(e) => Err(e.context(format!("decoding a row of {}", spec.name))),
        None => Ok(()),
    }
}

impl Model {
    /// The model of the table as it is now (read in full; call it before writers start).
    pub async fn read(pool: &Pool, spec: &TableSpec) -> Result<Model> {
        let mut rows = BTreeMap::new();
        scan(pool, spec, |k, v| {
            rows.insert(k, v);
        })
        .await?;
        let max = rows.keys().map(|k| k.0).max().unwrap_or(0);
        Ok(Model { spec: spec.clone(), rows, key_space: (2 * max).max(64) })
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

/// Tells the writers which phase the migration is in, so they can count what they did when.
#[derive(Debug, Clone)]
pub enum PhaseSource {
    /// Not tracked: every op counts as "unknown".
    None,
    /// The runner's progress channel ([`shadowswap_engine::Runner::progress`]): ops are counted
    /// by [`shadowswap_engine::Phase`] (its display name, e.g. "backfill").
    Runner(watch::Receiver<Progress>),
    /// A flag that is true while a migration runs (e.g. while a `shadowswap` child process
    /// runs): ops are counted as "migration" or "no migration".
    Flag(watch::Receiver<bool>),
}

impl PhaseSource {
    fn label(&self) -> String {
        match self {
            PhaseSource::None => "unknown".into(),
            PhaseSource::Runner(rx) => rx.borrow().phase.to_string(),
            PhaseSource::Flag(rx) => if *rx.borrow() { "migration" } else { "no migration" }.into(),
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
    /// Pause after each statement, per writer (zero: as fast as the server answers).
    pub pause: Duration,
}

impl Default for WorkloadConfig {
    fn default() -> Self {
        Self { writers: 4, seed: seed_from_env_or_clock(), pause: Duration::ZERO }
    }
}

/// `SHADOWSWAP_SEED` if set, else a seed from the clock (print it, so a failure can be rerun
/// with the same writer choices; timing still differs between runs).
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
    const ALL: [OpKind; 7] =
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
    /// Completed statements by kind.
    pub by_kind: BTreeMap<OpKind, u64>,
    /// Completed statements by migration phase (in the order phases were first seen).
    pub by_phase: Vec<(String, u64)>,
    /// Statements rolled back by the server and not applied, by error kind (e.g. "deadlock (1213)").
    pub errors: BTreeMap<String, u64>,
    /// Rolled-back statements by migration phase.
    pub errors_by_phase: Vec<(String, u64)>,
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
        for (e, n) in &other.errors {
            *self.errors.entry(e.clone()).or_default() += n;
        }
        for (p, n) in &other.errors_by_phase {
            bump(&mut self.errors_by_phase, p, *n);
        }
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
    /// Completed statements per writer.
    pub per_writer: Vec<u64>,
}

impl WorkloadReport {
    /// Completed statements (errors not included).
    pub fn ops(&self) -> u64 {
        self.counts.by_kind.values().sum()
    }

    /// Completed statements while the phase (display name, e.g. "backfill") was current.
    pub fn ops_during(&self, phase: &str) -> u64 {
        self.counts.by_phase.iter().filter(|(p, _)| p == phase).map(|(_, n)| n).sum()
    }

    /// Completed statements while the migration was in backfill.
    pub fn ops_during_backfill(&self) -> u64 {
        self.ops_during("backfill")
    }

    /// Completed statements of one kind.
    pub fn ops_of(&self, kind: OpKind) -> u64 {
        self.counts.by_kind.get(&kind).copied().unwrap_or(0)
    }

    /// Rolled-back statements (deadlocks, lock wait timeouts).
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
            "{} writers (seed {}): {} statements in {:.1} s ({:.0}/s), per writer {:?}",
            self.writers,
            self.seed,
            self.ops(),
            secs,
            self.ops() as f64 / secs,
            self.per_writer
        )?;
        writeln!(f, "  by kind:  {}", list(OpKind::ALL.iter().map(|k| (k.name().to_string(), self.ops_of(*k)))))?;
        writeln!(f, "  by phase: {}", list(self.counts.by_phase.clone()))?;
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
    spec: TableSpec,
    key_space: i64,
    config: WorkloadConfig,
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
    /// to `dsn` (which names the database). Writer w owns the keys whose first column ≡ w mod N.
    pub async fn start(dsn: &str, model: Model, config: WorkloadConfig, phase: PhaseSource) -> Result<Workload> {
        let n = config.writers.max(1);
        let opts = Opts::from_url(dsn).with_context(|| "parsing the DSN".to_string())?;
        let opts = OptsBuilder::from_opts(opts).client_found_rows(true).prefer_socket(false);
        let mut parts: Vec<BTreeMap<Key, RowValues>> = (0..n).map(|_| BTreeMap::new()).collect();
        for (k, v) in model.rows {
            parts[owner(k, n)].insert(k, v);
        }
        let cancel = CancellationToken::new();
        let ops = Arc::new(AtomicU64::new(0));
        let mut tasks = Vec::with_capacity(n);
        for (w, rows) in parts.into_iter().enumerate() {
            let conn = Conn::new(opts.clone()).await.with_context(|| format!("connecting writer {w}"))?;
            let writer = Writer {
                w,
                n,
                spec: model.spec.clone(),
                key_space: model.key_space,
                rows,
                rng: StdRng::seed_from_u64(config.seed.wrapping_add(w as u64)),
                conn,
                phase: phase.clone(),
                counts: Counts::default(),
                ops: ops.clone(),
                sql: Sql::new(&model.spec),
            };
            tasks.push(tokio::spawn(writer.run(cancel.clone(), config.pause)));
        }
        Ok(Workload { spec: model.spec, key_space: model.key_space, config, cancel, ops, started: Instant::now(), tasks })
    }

    /// Statements completed so far, over all writers.
    pub fn ops(&self) -> u64 {
        self.ops.load(Ordering::Relaxed)
    }

    /// Wait until the writers have completed at least `n` statements in total (so they are
    /// warmed up before a migration starts). Fails if a writer stops first.
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

    /// Signal the writers to stop after their current statement, wait for them, and return the
    /// merged model and the report. Fails (with the report in the message) if any writer met an
    /// error other than a deadlock or lock wait timeout, or an unexpected row count.
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
        let report = WorkloadReport {
            writers: per_writer.len(),
            seed: self.config.seed,
            elapsed: self.started.elapsed(),
            counts,
            per_writer,
        };
        if !failures.is_empty() {
            bail!("workload failed:\n  {}\n{report}", failures.join("\n  "));
        }
        Ok((Model { spec: self.spec, rows, key_space: self.key_space }, report))
    }
}

fn owner(key: Key, n: usize) -> usize {
    key.0.rem_euclid(n as i64) as usize
}

/// The statements of one table, built once.
struct Sql {
    insert: String,
    update: String,
    move_key: String,
    delete: String,
    read: String,
    absent: String,
}

impl Sql {
    fn new(spec: &TableSpec) -> Self {
        let t = spec.quoted();
        let w = spec.key_where();
        let placeholders = vec!["?"; spec.key_columns().len()].join(", ");
        Sql {
            insert: format!("INSERT INTO {t} ({}, k, c, pad) VALUES ({placeholders}, ?, ?, ?)", spec.key_list()),
            update: format!("UPDATE {t} SET k = ?, c = ?, pad = ? WHERE {w}"),
            move_key: format!("UPDATE {t} SET {}, k = ? WHERE {w}", spec.key_set()),
            delete: format!("DELETE FROM {t} WHERE {w}"),
            read: format!("SELECT k, c, pad FROM {t} WHERE {w}"),
            absent: format!("UPDATE {t} SET k = k + 1 WHERE {w}"),
        }
    }
}

struct Writer {
    w: usize,
    n: usize,
    spec: TableSpec,
    key_space: i64,
    rows: BTreeMap<Key, RowValues>,
    rng: StdRng,
    conn: Conn,
    phase: PhaseSource,
    counts: Counts,
    ops: Arc<AtomicU64>,
    sql: Sql,
}

/// How a statement ended.
enum Outcome {
    Done(u64),
    RolledBack(&'static str),
}

impl Writer {
    async fn run(mut self, cancel: CancellationToken, pause: Duration) -> WriterEnd {
        let mut failure = None;
        while !cancel.is_cancelled() {
            let before = self.phase.label();
            if let Err(e) = self.step().await {
                let msg = format!("{e:#} (phase {before} when the statement started, {} when it failed)", self.phase.label());
                eprintln!("workload writer {} FAILED: {msg}", self.w);
                failure = Some(msg);
                break;
            }
            if !pause.is_zero() {
                tokio::time::sleep(pause).await;
            }
        }
        let _ = self.conn.disconnect().await;
        WriterEnd { rows: self.rows, counts: self.counts, failure }
    }

    /// Run a statement; a deadlock or lock wait timeout is a rollback, anything else an error.
    async fn exec(&mut self, stmt: &str, params: Vec<Value>) -> Result<Outcome> {
        match self.conn.exec_drop(stmt, params).await {
            Ok(()) => Ok(Outcome::Done(self.conn.affected_rows())),
            Err(mysql_async::Error::Server(s)) if s.code == 1213 => Ok(Outcome::RolledBack("deadlock (1213)")),
            Err(mysql_async::Error::Server(s)) if s.code == 1205 => Ok(Outcome::RolledBack("lock wait timeout (1205)")),
            Err(e) => Err(anyhow!(e)),
        }
    }

    fn random_values(&mut self) -> RowValues {
        let mut groups =
            |n: usize| (0..n).map(|_| format!("{:011}", self.rng.random_range(0..100_000_000_000u64))).collect::<Vec<_>>();
        let c = groups(10).join("-");
        let pad = groups(5).join("-");
        RowValues { k: self.rng.random_range(1..=1_000_000), c, pad }
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
        match self.spec.key {
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

    /// A random existing key of this writer.
    fn existing_key(&mut self) -> Option<Key> {
        let probe = (self.rng.random_range(1..=self.key_space), 0);
        self.rows.range(probe..).next().or_else(|| self.rows.iter().next()).map(|(k, _)| *k)
    }

    /// A new key for the row at `old`, below (`down`) or above it: sometimes far (across many
    /// chunks, from the not-yet-copied range into the copied one or back, or beyond the high
    /// watermark), sometimes near (likely the same or the next chunk); for the composite key
    /// sometimes only `b` changes.
    fn moved_key(&mut self, old: Key, down: bool) -> Option<Key> {
        let space = self.key_space;
        let near = self.rng.random_bool(0.3);
        if self.spec.key == KeyKind::Composite && self.rng.random_bool(0.3) {
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
        let key = self.unused_key(|rng| {
            if near {
                if down {
                    (old.0 - rng.random_range(1..=64)).max(lo)
                } else {
                    (old.0 + rng.random_range(1..=64)).min(hi)
                }
            } else {
                rng.random_range(lo..=hi)
            }
        })?;
        // make_key may round up past the bound or, for the composite key, land on the same `a`
        // with a `b` on the wrong side; keep the direction honest.
        let ok = if down { key < old } else { key > old };
        ok.then_some(key)
    }

    fn record(&mut self, kind: OpKind, label: &str) {
        *self.counts.by_kind.entry(kind).or_default() += 1;
        bump(&mut self.counts.by_phase, label, 1);
        self.ops.fetch_add(1, Ordering::Relaxed);
    }

    fn rolled_back(&mut self, what: &'static str, label: &str) {
        *self.counts.errors.entry(what.to_string()).or_default() += 1;
        bump(&mut self.counts.errors_by_phase, label, 1);
    }

    fn expect(&self, kind: OpKind, key: Key, got: u64, want: u64) -> Result<()> {
        if got != want {
            bail!(
                "{} of key {} affected {got} rows, expected {want} (the model says the key {})",
                kind.name(),
                self.spec.show_key(key),
                if self.rows.contains_key(&key) { "exists" } else { "does not exist" }
            );
        }
        Ok(())
    }

    async fn step(&mut self) -> Result<()> {
        let label = self.phase.label();
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
        let sql_key = |spec: &TableSpec, key: Key| spec.key_params(key);
        match kind {
            OpKind::Insert | OpKind::Absent => {
                let space = self.key_space;
                let Some(key) = self.unused_key(|rng| rng.random_range(1..=space)) else { return Ok(()) };
                if kind == OpKind::Absent {
                    match self.exec(&self.sql.absent.clone(), sql_key(&self.spec, key)).await? {
                        Outcome::Done(n) => {
                            self.expect(kind, key, n, 0)?;
                            self.record(kind, &label);
                        }
                        Outcome::RolledBack(e) => self.rolled_back(e, &label),
                    }
                    return Ok(());
                }
                let v = self.random_values();
                let mut params = sql_key(&self.spec, key);
                params.extend([v.k.into(), v.c.clone().into(), v.pad.clone().into()]);
                match self.exec(&self.sql.insert.clone(), params).await {
                    Ok(Outcome::Done(n)) => {
                        self.expect(kind, key, n, 1)?;
                        self.rows.insert(key, v);
                        self.record(kind, &label);
                    }
                    Ok(Outcome::RolledBack(e)) => self.rolled_back(e, &label),
                    Err(e) => return Err(e.context(format!("insert of key {}", self.spec.show_key(key)))),
                }
            }
            OpKind::Update => {
                let key = existing.expect("checked");
                let v = self.random_values();
                let mut params = vec![v.k.into(), v.c.clone().into(), v.pad.clone().into()];
                params.extend(sql_key(&self.spec, key));
                match self.exec(&self.sql.update.clone(), params).await? {
                    Outcome::Done(n) => {
                        self.expect(kind, key, n, 1)?;
                        self.rows.insert(key, v);
                        self.record(kind, &label);
                    }
                    Outcome::RolledBack(e) => self.rolled_back(e, &label),
                }
            }
            OpKind::MoveDown | OpKind::MoveUp => {
                let old = existing.expect("checked");
                let Some(new) = self.moved_key(old, kind == OpKind::MoveDown) else { return Ok(()) };
                let k = self.rng.random_range(1..=1_000_000i64);
                let mut params = sql_key(&self.spec, new);
                params.push(k.into());
                params.extend(sql_key(&self.spec, old));
                match self.exec(&self.sql.move_key.clone(), params).await {
                    Ok(Outcome::Done(n)) => {
                        self.expect(kind, old, n, 1)?;
                        let mut v = self.rows.remove(&old).expect("existing key");
                        v.k = k;
                        self.rows.insert(new, v);
                        self.record(kind, &label);
                    }
                    Ok(Outcome::RolledBack(e)) => self.rolled_back(e, &label),
                    Err(e) => {
                        return Err(e.context(format!("key move {} -> {}", self.spec.show_key(old), self.spec.show_key(new))))
                    }
                }
            }
            OpKind::Delete => {
                let key = existing.expect("checked");
                match self.exec(&self.sql.delete.clone(), sql_key(&self.spec, key)).await? {
                    Outcome::Done(n) => {
                        self.expect(kind, key, n, 1)?;
                        self.rows.remove(&key);
                        self.record(kind, &label);
                    }
                    Outcome::RolledBack(e) => self.rolled_back(e, &label),
                }
            }
            OpKind::Read => {
                let key = existing.expect("checked");
                let stmt = self.sql.read.clone();
                let got: Option<(i64, String, String)> = match self.conn.exec_first(stmt, sql_key(&self.spec, key)).await {
                    Ok(r) => r,
                    Err(mysql_async::Error::Server(s)) if s.code == 1213 || s.code == 1205 => {
                        self.rolled_back(if s.code == 1213 { "deadlock (1213)" } else { "lock wait timeout (1205)" }, &label);
                        return Ok(());
                    }
                    Err(e) => return Err(anyhow!(e).context(format!("read of key {}", self.spec.show_key(key)))),
                };
                let want = &self.rows[&key];
                match got {
                    Some((k, c, pad)) if RowValues { k, c: c.clone(), pad: pad.clone() } == *want => {}
                    Some((k, c, pad)) => bail!(
                        "read of key {} returned {} but the model has {}",
                        self.spec.show_key(key),
                        RowValues { k, c, pad },
                        want
                    ),
                    None => bail!("read of key {}: row missing, the model has {}", self.spec.show_key(key), want),
                }
                self.record(kind, &label);
            }
        }
        Ok(())
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

/// Compare the table with the model row by row (the key and `k`, `c`, `pad`; other columns are
/// ignored), streaming the table in key order. Reports up to 20 differences.
pub async fn verify(pool: &Pool, model: &Model) -> Result<Verification> {
    const EXAMPLES: usize = 20;
    let spec = &model.spec;
    let mut v = Verification { model_rows: model.rows.len() as u64, ..Verification::default() };
    let mut expected = model.rows.iter().peekable();
    fn note(v: &mut Verification, s: String) {
        if v.examples.len() < EXAMPLES {
            v.examples.push(s);
        }
    }
    scan(pool, spec, |key, row| {
        v.table_rows += 1;
        while let Some((mk, mv)) = expected.next_if(|(mk, _)| **mk < key) {
            v.missing += 1;
            note(&mut v, format!("missing {}: the model has {mv}", spec.show_key(*mk)));
        }
        match expected.next_if(|(mk, _)| **mk == key) {
            Some((_, mv)) if *mv == row => {}
            Some((_, mv)) => {
                v.differing += 1;
                note(&mut v, format!("differs {}: table has {row}, the model has {mv}", spec.show_key(key)));
            }
            None => {
                v.extra += 1;
                note(&mut v, format!("extra {}: table has {row}, not in the model", spec.show_key(key)));
            }
        }
    })
    .await?;
    for (mk, mv) in expected {
        v.missing += 1;
        note(&mut v, format!("missing {}: the model has {mv}", spec.show_key(*mk)));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_for_both_key_shapes() {
        let s = Sql::new(&TableSpec::composite("t"));
        assert_eq!(s.move_key, "UPDATE `t` SET a = ?, b = ?, k = ? WHERE a = ? AND b = ?");
        assert_eq!(s.insert, "INSERT INTO `t` (a, b, k, c, pad) VALUES (?, ?, ?, ?, ?)");
        let s = Sql::new(&TableSpec::single("sbtest1"));
        assert_eq!(s.delete, "DELETE FROM `sbtest1` WHERE id = ?");
        let load = TableSpec::single("t").load_sql(1, 10, 10);
        assert!(load.contains("FROM seq_1_to_10 LIMIT 10"), "{load}");
    }

    #[test]
    fn ownership_is_by_first_key_column() {
        assert_eq!(owner((7, 0), 4), 3);
        assert_eq!(owner((8, 99), 4), 0);
    }
}
