//! The driver-independent half of the concurrent writers of [`crate::mysql::workload`] (MariaDB) and
//! [`crate::postgres::workload`] (PostgreSQL): keys and which writer owns them, the model of what the
//! table should hold, which statement to run next and on which key, what the writers counted,
//! the writer loop and the set of running writers, and the row-by-row comparison of a table with
//! the model. The SQL and the drivers stay in the two workload modules.
//!
//! Every writer owns a disjoint key space (the first key column ≡ writer number mod N) and keeps
//! its share of the model: the rows of its keys, changed only after the server confirmed a
//! change. Keys are modelled as `(i64, i64)`; a single-column key uses the second part as 0.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use shadowswap_engine::progress::Progress;
use shadowswap_engine::runner::{Outcome, Summary};
use shadowswap_engine::{Dialect, Phase, Runner, TableRef};
use tokio::sync::watch;
use tokio::task::JoinHandle;
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
    /// One key column, `id` (MariaDB: sysbench's `id INT UNSIGNED NOT NULL AUTO_INCREMENT
    /// PRIMARY KEY`; PostgreSQL: `id bigint PRIMARY KEY`).
    Single,
    /// Two integer key columns, `PRIMARY KEY (a, b)`.
    Composite,
}

impl KeyKind {
    /// Key column names.
    pub fn columns(self) -> &'static [&'static str] {
        match self {
            KeyKind::Single => &["id"],
            KeyKind::Composite => &["a", "b"],
        }
    }

    /// How a key prints: `(5)` or `(5, 3)`.
    pub fn show(self, key: Key) -> String {
        match self {
            KeyKind::Single => format!("({})", key.0),
            KeyKind::Composite => format!("({}, {})", key.0, key.1),
        }
    }

    /// The values of the key columns, in order.
    pub fn values(self, key: Key) -> Vec<i64> {
        match self {
            KeyKind::Single => vec![key.0],
            KeyKind::Composite => vec![key.0, key.1],
        }
    }

    /// Rows per value of the first key column in the initial load (whose keys are dense from 1).
    fn rows_per_first(self) -> i64 {
        match self {
            KeyKind::Single => 1,
            KeyKind::Composite => COMPOSITE_B_PER_A,
        }
    }
}

/// A workload table: its name and key shape. The SQL for it is the dialect's, `D`
/// ([`crate::mysql::workload::MariaDb`]: [`crate::mysql::workload::TableSpec`]; [`crate::postgres::workload::Pg`]:
/// [`crate::postgres::workload::PgTable`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table<D> {
    /// Table name (in the connection's database, or PostgreSQL's `public` schema).
    pub name: String,
    /// Primary key shape.
    pub key: KeyKind,
    dialect: PhantomData<D>,
}

impl<D> Table<D> {
    /// `id` primary key (sysbench's layout on MariaDB).
    pub fn single(name: &str) -> Self {
        Table { name: name.to_string(), key: KeyKind::Single, dialect: PhantomData }
    }

    /// The composite-key layout: `PRIMARY KEY (a, b)`.
    pub fn composite(name: &str) -> Self {
        Table { name: name.to_string(), key: KeyKind::Composite, dialect: PhantomData }
    }

    /// Key column names.
    pub fn key_columns(&self) -> &'static [&'static str] {
        self.key.columns()
    }

    /// Key column names, comma-separated.
    pub(crate) fn key_list(&self) -> String {
        self.key_columns().join(", ")
    }
}

/// Which writer owns `key` among `n`: the first key column mod `n`.
pub(crate) fn owner(key: Key, n: usize) -> usize {
    key.0.rem_euclid(n as i64) as usize
}

/// `SHADOWSWAP_SEED` if set, else a seed from the clock (printed in the report, so a failure
/// can be rerun with the same writer choices; timing still differs between runs).
pub fn seed_from_env_or_clock() -> u64 {
    if let Some(s) = std::env::var("SHADOWSWAP_SEED").ok().and_then(|s| s.parse().ok()) {
        return s;
    }
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(1)
}

/// What the table should contain: every row (its non-key values `V`), by key.
#[derive(Debug, Clone)]
pub struct Model<T, V> {
    /// The table.
    pub table: T,
    /// Rows by key.
    pub rows: BTreeMap<Key, V>,
    /// New keys are drawn with the first key column in `1..=key_space`: twice the largest
    /// initial value, so half of the space lies above the backfill's high watermark.
    pub key_space: i64,
}

impl<T, V> Model<T, V> {
    /// The model of `table` holding `rows` (as read before the writers start).
    pub fn new(table: T, rows: BTreeMap<Key, V>) -> Self {
        let max = rows.keys().map(|k| k.0).max().unwrap_or(0);
        Model { table, rows, key_space: (2 * max).max(64) }
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

    /// How the report names it.
    pub(crate) fn name(self) -> &'static str {
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
    /// Applied (completed, or committed) statements by kind.
    pub by_kind: BTreeMap<OpKind, u64>,
    /// Applied statements by migration phase when they were counted (in the order phases were
    /// first seen).
    pub by_phase: Vec<(String, u64)>,
    /// Committed multi-statement transactions by isolation level (PostgreSQL workload only).
    pub txns: BTreeMap<String, u64>,
    /// Applied statements that ran inside a multi-statement transaction (PostgreSQL only).
    pub txn_statements: u64,
    /// Statements or transactions rolled back by the server and not applied, by error (and
    /// where, e.g. "serialization failure (40001) in repeatable read").
    pub errors: BTreeMap<String, u64>,
    /// Rollbacks by migration phase.
    pub errors_by_phase: Vec<(String, u64)>,
    /// Statements whose key was picked at the copy's position (PostgreSQL only).
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
            *self.txns.entry(i.clone()).or_default() += n;
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

    fn applied(&self) -> u64 {
        self.by_kind.values().sum()
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
        self.counts.applied()
    }

    /// Applied statements counted while the phase (display name, e.g. "backfill") was current.
    pub fn ops_during(&self, phase: &str) -> u64 {
        self.counts.by_phase.iter().filter(|(p, _)| p == phase).map(|(_, n)| n).sum()
    }

    /// Applied statements while the migration was in backfill.
    pub fn ops_during_backfill(&self) -> u64 {
        self.ops_during("backfill")
    }

    /// Applied statements of one kind.
    pub fn ops_of(&self, kind: OpKind) -> u64 {
        self.counts.by_kind.get(&kind).copied().unwrap_or(0)
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
        let c = &self.counts;
        if !c.txns.is_empty() || c.txn_statements > 0 || c.at_frontier > 0 {
            writeln!(
                f,
                "  transactions committed: {} ({} statements in them); at the copy's position: {} statements",
                list(c.txns.clone()),
                c.txn_statements,
                c.at_frontier
            )?;
        }
        write!(
            f,
            "  rolled back (not applied): {} — {}; by phase: {}",
            self.errors(),
            list(c.errors.clone()),
            list(c.errors_by_phase.clone())
        )
    }
}

/// The copy's position, to aim keys at while the migration is in backfill: the runner's progress
/// channel, and the percentage of keys aimed there.
pub(crate) struct Frontier {
    /// The runner's progress.
    pub progress: watch::Receiver<Progress>,
    /// Percentage of key choices, during the backfill, made at the copy's position.
    pub percent: u32,
}

/// A workload table's statements, one per kind of op, built once by each workload for its
/// dialect: insert a row, update its non-key columns, move it to a new key, delete it, read it,
/// and update a key that does not exist.
#[derive(Clone)]
pub(crate) struct Statements {
    pub insert: String,
    pub update: String,
    pub move_key: String,
    pub delete: String,
    pub read: String,
    pub absent: String,
}

/// One writer's share of the model: the keys it owns (first key column ≡ `w` mod `n`) and their
/// rows, its random choices, and what it counted.
pub(crate) struct Share<V> {
    /// Writer number.
    pub w: usize,
    n: usize,
    /// The table's key.
    pub kind: KeyKind,
    key_space: i64,
    /// The rows of this writer's keys.
    pub rows: BTreeMap<Key, V>,
    /// This writer's random generator (seeded `seed + w`).
    pub rng: StdRng,
    /// What this writer did.
    pub counts: Counts,
    /// Applied statements over all writers.
    ops: Arc<AtomicU64>,
    frontier: Option<Frontier>,
}

impl<V> Share<V> {
    /// The next statement: its kind (an Insert when the writer has no row for a kind that needs
    /// one) and an existing key of this writer, if it has any.
    pub fn draw_op(&mut self) -> (OpKind, Option<Key>) {
        let kind = match self.rng.random_range(0..100) {
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
            return (OpKind::Insert, None);
        }
        (kind, existing)
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
        match self.kind {
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
        let p = self.frontier.as_ref()?.progress.borrow().clone();
        if p.phase != Phase::Backfill {
            return None;
        }
        Some(p.rows_copied as i64 / self.kind.rows_per_first() + 1)
    }

    /// A first-key-column value at or just above the copy's position, if in backfill and chosen.
    fn near_copy(&mut self) -> Option<i64> {
        let pos = self.copy_position()?;
        let percent = self.frontier.as_ref()?.percent;
        if self.rng.random_range(0..100) >= percent {
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

    /// A key for a new row: near the copy's position sometimes, else anywhere in the key space.
    pub fn new_key(&mut self) -> Option<Key> {
        let space = self.key_space;
        let near = self.near_copy();
        self.unused_key(|rng| near.unwrap_or_else(|| rng.random_range(1..=space)))
    }

    /// A new key for the row at `old`, below (`down`) or above it: sometimes near (likely the same
    /// or the next chunk), sometimes at the copy's position, sometimes far (across many chunks,
    /// from the not-yet-copied range into the copied one or back, or beyond the high watermark);
    /// for the composite key sometimes only `b` changes.
    pub fn moved_key(&mut self, old: Key, down: bool) -> Option<Key> {
        let space = self.key_space;
        if self.kind == KeyKind::Composite && self.rng.random_bool(0.3) {
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

    /// Fails unless a statement of `kind` on `key` affected `want` rows.
    pub fn expect(&self, kind: OpKind, key: Key, got: u64, want: u64) -> Result<()> {
        if got != want {
            bail!(
                "{} of key {} affected {got} rows, expected {want} (the model says the key {})",
                kind.name(),
                self.kind.show(key),
                if self.rows.contains_key(&key) { "exists" } else { "does not exist" }
            );
        }
        Ok(())
    }

    /// Count applied statements of `kinds`, under the phase `label`.
    pub fn record(&mut self, kinds: &[OpKind], label: &str) {
        for k in kinds {
            *self.counts.by_kind.entry(*k).or_default() += 1;
        }
        bump(&mut self.counts.by_phase, label, kinds.len() as u64);
        self.ops.fetch_add(kinds.len() as u64, Ordering::Relaxed);
    }

    /// Count a rollback for the reason `what`, under the phase `label`.
    pub fn rolled_back(&mut self, what: String, label: &str) {
        *self.counts.errors.entry(what).or_default() += 1;
        bump(&mut self.counts.errors_by_phase, label, 1);
    }
}

impl<V: PartialEq + fmt::Display> Share<V> {
    /// Fails unless a read of `key` returned what the model has.
    pub fn check_read(&self, key: Key, got: Option<V>) -> Result<()> {
        let want = &self.rows[&key];
        match got {
            Some(g) if g == *want => Ok(()),
            Some(g) => bail!("read of key {} returned {g} but the model has {want}", self.kind.show(key)),
            None => bail!("read of key {}: row missing, the model has {want}", self.kind.show(key)),
        }
    }
}

/// The driver half of a writer, run by [`run_writer`] until cancelled.
pub(crate) trait Writer: Send + 'static {
    /// The non-key values of a row.
    type Row: Send + 'static;
    /// How the log names a writer ("workload writer").
    const NAME: &'static str;
    /// What one step is ("statement", "step").
    const STEP: &'static str;
    /// The writer's share of the model.
    fn share(&mut self) -> &mut Share<Self::Row>;
    /// The migration's phase now, as counted.
    fn label(&self) -> String;
    /// One step; an error ends the writer (and fails the workload).
    fn step(&mut self) -> impl Future<Output = Result<()>> + Send;
    /// Close the connection; returns the share.
    fn close(self) -> impl Future<Output = Share<Self::Row>> + Send;
}

/// What a writer leaves when it stops.
pub(crate) struct WriterEnd<V> {
    rows: BTreeMap<Key, V>,
    counts: Counts,
    failure: Option<String>,
}

/// Run `writer` step by step (pausing `pause` after each) until `cancel`; the first error stops
/// it. A step is never abandoned half way (the stop signal is looked at between steps only).
pub(crate) async fn run_writer<W: Writer>(mut writer: W, cancel: CancellationToken, pause: Duration) -> WriterEnd<W::Row> {
    let mut failure = None;
    while !cancel.is_cancelled() {
        let before = writer.label();
        if let Err(e) = writer.step().await {
            let msg = format!("{e:#} (phase {before} when the {} started, {} when it failed)", W::STEP, writer.label());
            eprintln!("{} {} FAILED: {msg}", W::NAME, writer.share().w);
            failure = Some(msg);
            break;
        }
        if !pause.is_zero() {
            tokio::time::sleep(pause).await;
        }
    }
    let share = writer.close().await;
    WriterEnd { rows: share.rows, counts: share.counts, failure }
}

/// Running writers on the table of a model. Stop them with [`Workload::stop`].
pub struct Workload<T, V> {
    table: T,
    key_space: i64,
    seed: u64,
    cancel: CancellationToken,
    ops: Arc<AtomicU64>,
    started: Instant,
    tasks: Vec<JoinHandle<WriterEnd<V>>>,
}

impl<T, V: Send + 'static> Workload<T, V> {
    /// The model split into `n` writers' shares (writer w owns the keys whose first column ≡ w
    /// mod n, and draws with the seed `seed + w`), each aiming at `frontier` if given; and the
    /// workload, without writers yet ([`Workload::spawn`] them).
    pub(crate) fn split(
        model: Model<T, V>,
        kind: KeyKind,
        n: usize,
        seed: u64,
        frontier: impl Fn() -> Option<Frontier>,
    ) -> (Workload<T, V>, Vec<Share<V>>) {
        let ops = Arc::new(AtomicU64::new(0));
        let mut parts: Vec<BTreeMap<Key, V>> = (0..n).map(|_| BTreeMap::new()).collect();
        for (k, v) in model.rows {
            parts[owner(k, n)].insert(k, v);
        }
        let shares = parts
            .into_iter()
            .enumerate()
            .map(|(w, rows)| Share {
                w,
                n,
                kind,
                key_space: model.key_space,
                rows,
                rng: StdRng::seed_from_u64(seed.wrapping_add(w as u64)),
                counts: Counts::default(),
                ops: ops.clone(),
                frontier: frontier(),
            })
            .collect();
        let workload = Workload {
            table: model.table,
            key_space: model.key_space,
            seed,
            cancel: CancellationToken::new(),
            ops,
            started: Instant::now(),
            tasks: Vec::with_capacity(n),
        };
        (workload, shares)
    }

    /// Start a writer (the clock of the report starts with the last one).
    pub(crate) fn spawn<W: Writer<Row = V>>(&mut self, writer: W, pause: Duration) {
        self.tasks.push(tokio::spawn(run_writer(writer, self.cancel.clone(), pause)));
        self.started = Instant::now();
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
    /// error other than an expected rollback (deadlock, lock timeout, serialization failure), or
    /// an unexpected row count or read.
    pub async fn stop(self) -> Result<(Model<T, V>, WorkloadReport)> {
        self.cancel.cancel();
        let mut rows = BTreeMap::new();
        let mut counts = Counts::default();
        let mut per_writer = Vec::new();
        let mut failures = Vec::new();
        for (w, t) in self.tasks.into_iter().enumerate() {
            match t.await {
                Ok(end) => {
                    per_writer.push(end.counts.applied());
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

/// What a migration under writers did ([`migrate_under_writers`]).
pub struct UnderWriters<T, V> {
    /// The runner's summary.
    pub summary: Summary,
    /// The writers' model once they stopped.
    pub model: Model<T, V>,
    /// What the writers did.
    pub report: WorkloadReport,
    /// Statements the writers applied after `run()` returned (in 300 ms).
    pub ops_after_swap: u64,
}

/// Run `alter` on `table` by `runner` while `writers` write; let them write on the new table for
/// 300 ms more, then stop them. Panics (`[label]` first) unless the run swapped and no writer
/// failed; prints the migration and the writers' report.
pub async fn migrate_under_writers<D: Dialect, T, V: Send + 'static>(
    label: &str,
    runner: &Runner<D>,
    table: &TableRef,
    alter: &str,
    writers: Workload<T, V>,
) -> UnderWriters<T, V> {
    let started = Instant::now();
    let result = runner.run(table, alter).await;
    let migration_secs = started.elapsed().as_secs_f64();
    // Keep writing a moment on the new table, then stop.
    let ops_at_swap = writers.ops();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let ops_after_swap = writers.ops() - ops_at_swap;
    let stopped = writers.stop().await;
    let summary = match (result, &stopped) {
        (Ok(Outcome::Swapped(summary)), _) => summary,
        (Ok(other), _) => panic!("[{label}] expected a swap, got {other:?}"),
        (Err(e), Ok((_, report))) => panic!("[{label}] migration failed: {e}\n{report}"),
        (Err(e), Err(w)) => panic!("[{label}] migration failed: {e}\nand {w:#}"),
    };
    let (model, report) = stopped.unwrap_or_else(|e| panic!("[{label}] {e:#}"));
    eprintln!(
        "[{label}] migration {migration_secs:.1} s: {}; {ops_after_swap} ops after run() returned",
        crate::run::summary_line(&summary)
    );
    eprintln!("[{label}] {report}");
    UnderWriters { summary, model, report, ops_after_swap }
}

/// The writers overlapped the copy: statements applied during the backfill, and every kind of
/// change at all. A concurrency test that could pass without that proves nothing.
pub fn assert_writes_during_backfill(label: &str, report: &WorkloadReport) {
    let in_backfill = report.ops_during(&Phase::Backfill.to_string());
    assert!(in_backfill > 0, "[{label}] no writer statement completed during the backfill: {report}");
    for kind in [OpKind::Insert, OpKind::Update, OpKind::MoveDown, OpKind::MoveUp, OpKind::Delete] {
        assert!(report.ops_of(kind) > 0, "[{label}] no {kind:?} at all: {report}");
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

/// A table compared with a model row by row as its rows arrive in key order ([`Diff::row`]);
/// [`Diff::finish`] gives the result, with up to 20 differences described.
pub(crate) struct Diff<'m, V> {
    kind: KeyKind,
    expected: std::iter::Peekable<std::collections::btree_map::Iter<'m, Key, V>>,
    v: Verification,
}

/// Describe a difference, unless 20 are described already.
fn note(v: &mut Verification, s: String) {
    const EXAMPLES: usize = 20;
    if v.examples.len() < EXAMPLES {
        v.examples.push(s);
    }
}

impl<'m, V: PartialEq + fmt::Display> Diff<'m, V> {
    /// A comparison with the model `rows`, whose keys are `kind`.
    pub fn new(rows: &'m BTreeMap<Key, V>, kind: KeyKind) -> Self {
        let v = Verification { model_rows: rows.len() as u64, ..Verification::default() };
        Diff { kind, expected: rows.iter().peekable(), v }
    }

    /// The table's next row, in key order.
    pub fn row(&mut self, key: Key, row: V) {
        let Diff { kind, expected, v } = self;
        v.table_rows += 1;
        while let Some((mk, mv)) = expected.next_if(|(mk, _)| **mk < key) {
            v.missing += 1;
            note(v, format!("missing {}: the model has {mv}", kind.show(*mk)));
        }
        match expected.next_if(|(mk, _)| **mk == key) {
            Some((_, mv)) if *mv == row => {}
            Some((_, mv)) => {
                v.differing += 1;
                note(v, format!("differs {}: table has {row}, the model has {mv}", kind.show(key)));
            }
            None => {
                v.extra += 1;
                note(v, format!("extra {}: table has {row}, not in the model", kind.show(key)));
            }
        }
    }

    /// The table has no more rows.
    pub fn finish(self) -> Verification {
        let Diff { kind, expected, mut v } = self;
        for (mk, mv) in expected {
            v.missing += 1;
            note(&mut v, format!("missing {}: the model has {mv}", kind.show(*mk)));
        }
        v
    }
}
