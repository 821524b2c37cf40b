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
//! What does not depend on the driver (keys, the model, op choice, counts, the writer loop, the
//! comparison) is in [`crate::model`], shared with [`crate::postgres::workload`]; this module has the
//! SQL and the `mysql_async` side.
//!
//! Usage: [`TableSpec::create`], [`TableSpec::load`], [`Model::read`], [`Workload::start`],
//! [`Workload::stop`], [`verify`].

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts, OptsBuilder, Pool, Row, Value};
use rand::Rng;
use shadowswap_engine::progress::Progress;
use tokio::sync::watch;

use crate::model::{self, Diff, Share, Statements};
pub use crate::model::{seed_from_env_or_clock, Counts, Key, KeyKind, OpKind, Verification, WorkloadReport, COMPOSITE_B_PER_A};

/// Rows per statement of the initial load (each batch is one transaction).
const LOAD_BATCH: u64 = 50_000;

/// The MariaDB workload's SQL dialect, for [`model::Table`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MariaDb;

/// A workload table: its name and key. The non-key columns are always `k`, `c`, `pad`.
pub type TableSpec = model::Table<MariaDb>;

impl TableSpec {
    fn quoted(&self) -> String {
        format!("`{}`", self.name.replace('`', "``"))
    }

    /// `id = ?` or `a = ? AND b = ?`.
    fn key_where(&self) -> String {
        self.key_columns().iter().map(|c| format!("{c} = ?")).collect::<Vec<_>>().join(" AND ")
    }

    /// `id = ?` or `a = ?, b = ?` (SET list for a key change).
    fn key_set(&self) -> String {
        self.key_columns().iter().map(|c| format!("{c} = ?")).collect::<Vec<_>>().join(", ")
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

    /// Load `rows` rows server-side, in batches of `LOAD_BATCH` (50,000); `progress` is called with the
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
pub type Model = model::Model<TableSpec, RowValues>;

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
        Ok(Model::new(spec.clone(), rows))
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

/// Running writers. Stop them with [`Workload::stop`].
pub type Workload = model::Workload<TableSpec, RowValues>;

impl Workload {
    /// Start `config.writers` writers on the table of `model`, each on a connection of its own
    /// to `dsn` (which names the database). Writer w owns the keys whose first column ≡ w mod N.
    pub async fn start(dsn: &str, model: Model, config: WorkloadConfig, phase: PhaseSource) -> Result<Workload> {
        let n = config.writers.max(1);
        let opts = Opts::from_url(dsn).with_context(|| "parsing the DSN".to_string())?;
        let opts = OptsBuilder::from_opts(opts).client_found_rows(true).prefer_socket(false);
        let sql = statements(&model.table);
        let kind = model.table.key;
        let (mut workload, shares) = Workload::split(model, kind, n, config.seed, || None);
        for share in shares {
            let conn = Conn::new(opts.clone()).await.with_context(|| format!("connecting writer {}", share.w))?;
            workload.spawn(Writer { share, conn, phase: phase.clone(), sql: sql.clone() }, config.pause);
        }
        Ok(workload)
    }
}

/// The statements of one table, built once.
fn statements(spec: &TableSpec) -> Statements {
    let t = spec.quoted();
    let w = spec.key_where();
    let placeholders = vec!["?"; spec.key_columns().len()].join(", ");
    Statements {
        insert: format!("INSERT INTO {t} ({}, k, c, pad) VALUES ({placeholders}, ?, ?, ?)", spec.key_list()),
        update: format!("UPDATE {t} SET k = ?, c = ?, pad = ? WHERE {w}"),
        move_key: format!("UPDATE {t} SET {}, k = ? WHERE {w}", spec.key_set()),
        delete: format!("DELETE FROM {t} WHERE {w}"),
        read: format!("SELECT k, c, pad FROM {t} WHERE {w}"),
        absent: format!("UPDATE {t} SET k = k + 1 WHERE {w}"),
    }
}

struct Writer {
    share: Share<RowValues>,
    conn: Conn,
    phase: PhaseSource,
    sql: Statements,
}

/// How a statement ended.
enum Outcome {
    Done(u64),
    RolledBack(&'static str),
}

/// A deadlock (1213) or lock wait timeout (1205): the server rolled the statement back.
fn rolled_back_by(e: &mysql_async::Error) -> Option<&'static str> {
    match e {
        mysql_async::Error::Server(s) if s.code == 1213 => Some("deadlock (1213)"),
        mysql_async::Error::Server(s) if s.code == 1205 => Some("lock wait timeout (1205)"),
        _ => None,
    }
}

impl model::Writer for Writer {
    type Row = RowValues;
    const NAME: &'static str = "workload writer";
    const STEP: &'static str = "statement";

    fn share(&mut self) -> &mut Share<RowValues> {
        &mut self.share
    }

    fn label(&self) -> String {
        self.phase.label()
    }

    async fn step(&mut self) -> Result<()> {
        self.statement().await
    }

    async fn close(self) -> Share<RowValues> {
        let _ = self.conn.disconnect().await;
        self.share
    }
}

impl Writer {
    /// Run a statement; a deadlock or lock wait timeout is a rollback, anything else an error.
    async fn exec(&mut self, stmt: &str, params: Vec<Value>) -> Result<Outcome> {
        match self.conn.exec_drop(stmt, params).await {
            Ok(()) => Ok(Outcome::Done(self.conn.affected_rows())),
            Err(e) => match rolled_back_by(&e) {
                Some(what) => Ok(Outcome::RolledBack(what)),
                None => Err(anyhow!(e)),
            },
        }
    }

    fn random_values(&mut self) -> RowValues {
        let rng = &mut self.share.rng;
        let mut groups =
            |n: usize| (0..n).map(|_| format!("{:011}", rng.random_range(0..100_000_000_000u64))).collect::<Vec<_>>();
        let c = groups(10).join("-");
        let pad = groups(5).join("-");
        RowValues { k: rng.random_range(1..=1_000_000), c, pad }
    }

    /// Count the outcome of a statement of `kind` on `key` that must affect `want` rows; true when
    /// it was applied (the caller then changes the model).
    fn counted(&mut self, outcome: Outcome, kind: OpKind, key: Key, want: u64, label: &str) -> Result<bool> {
        match outcome {
            Outcome::Done(n) => {
                self.share.expect(kind, key, n, want)?;
                self.share.record(&[kind], label);
                Ok(true)
            }
            Outcome::RolledBack(e) => {
                self.share.rolled_back(e.to_string(), label);
                Ok(false)
            }
        }
    }

    /// One random autocommit statement; the model changes once the server confirmed it.
    async fn statement(&mut self) -> Result<()> {
        let label = self.phase.label();
        let (kind, existing) = self.share.draw_op();
        let keys = self.share.kind;
        let key_values = |key: Key| keys.values(key).into_iter().map(Value::from).collect::<Vec<_>>();
        match kind {
            OpKind::Insert | OpKind::Absent => {
                let Some(key) = self.share.new_key() else { return Ok(()) };
                if kind == OpKind::Absent {
                    let outcome = self.exec(&self.sql.absent.clone(), key_values(key)).await?;
                    self.counted(outcome, kind, key, 0, &label)?;
                    return Ok(());
                }
                let v = self.random_values();
                let mut params = key_values(key);
                params.extend([v.k.into(), v.c.clone().into(), v.pad.clone().into()]);
                let outcome = self
                    .exec(&self.sql.insert.clone(), params)
                    .await
                    .map_err(|e| e.context(format!("insert of key {}", keys.show(key))))?;
                if self.counted(outcome, kind, key, 1, &label)? {
                    self.share.rows.insert(key, v);
                }
            }
            OpKind::Update => {
                let key = existing.expect("checked");
                let v = self.random_values();
                let mut params = vec![v.k.into(), v.c.clone().into(), v.pad.clone().into()];
                params.extend(key_values(key));
                let outcome = self.exec(&self.sql.update.clone(), params).await?;
                if self.counted(outcome, kind, key, 1, &label)? {
                    self.share.rows.insert(key, v);
                }
            }
            OpKind::MoveDown | OpKind::MoveUp => {
                let old = existing.expect("checked");
                let Some(new) = self.share.moved_key(old, kind == OpKind::MoveDown) else { return Ok(()) };
                let k = self.share.rng.random_range(1..=1_000_000i64);
                let mut params = key_values(new);
                params.push(k.into());
                params.extend(key_values(old));
                let outcome = self
                    .exec(&self.sql.move_key.clone(), params)
                    .await
                    .map_err(|e| e.context(format!("key move {} -> {}", keys.show(old), keys.show(new))))?;
                if self.counted(outcome, kind, old, 1, &label)? {
                    let mut v = self.share.rows.remove(&old).expect("existing key");
                    v.k = k;
                    self.share.rows.insert(new, v);
                }
            }
            OpKind::Delete => {
                let key = existing.expect("checked");
                let outcome = self.exec(&self.sql.delete.clone(), key_values(key)).await?;
                if self.counted(outcome, kind, key, 1, &label)? {
                    self.share.rows.remove(&key);
                }
            }
            OpKind::Read => {
                let key = existing.expect("checked");
                let stmt = self.sql.read.clone();
                let got: Option<(i64, String, String)> = match self.conn.exec_first(stmt, key_values(key)).await {
                    Ok(r) => r,
                    Err(e) => match rolled_back_by(&e) {
                        Some(what) => {
                            self.share.rolled_back(what.to_string(), &label);
                            return Ok(());
                        }
                        None => return Err(anyhow!(e).context(format!("read of key {}", keys.show(key)))),
                    },
                };
                self.share.check_read(key, got.map(|(k, c, pad)| RowValues { k, c, pad }))?;
                self.share.record(&[kind], &label);
            }
        }
        Ok(())
    }
}

/// Compare the table with the model row by row (the key and `k`, `c`, `pad`; other columns are
/// ignored), streaming the table in key order. Reports up to 20 differences.
pub async fn verify(pool: &Pool, model: &Model) -> Result<Verification> {
    let mut diff = Diff::new(&model.rows, model.table.key);
    scan(pool, &model.table, |key, row| diff.row(key, row)).await?;
    Ok(diff.finish())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::owner;

    #[test]
    fn statements_for_both_key_shapes() {
        let s = statements(&TableSpec::composite("t"));
        assert_eq!(s.move_key, "UPDATE `t` SET a = ?, b = ?, k = ? WHERE a = ? AND b = ?");
        assert_eq!(s.insert, "INSERT INTO `t` (a, b, k, c, pad) VALUES (?, ?, ?, ?, ?)");
        let s = statements(&TableSpec::single("sbtest1"));
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
