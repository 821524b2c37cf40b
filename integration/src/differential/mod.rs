//! Differential testing: the server is the oracle.
//!
//! A [`Case`] is a table (its DDL, its rows), an ALTER spec and, optionally, a list of writer
//! operations. [`run_case`] builds the table twice in a database of the case's own — `t` and
//! `t_clone`, from the same statements — then
//! 1. applies the writer operations to `t_clone` and runs `ALTER TABLE t_clone <spec>` natively
//!    (MariaDB with `ALGORITHM=COPY`, so it really rebuilds);
//! 2. runs shadowswap (the library [`shadowswap_engine::Runner`]) on `t` with tiny chunks, and
//!    applies the same writer operations to `t` while it runs: the first part as soon as the run
//!    starts (racing the backfill), the rest while the run is held before its cut-over by a
//!    postpone flag file. Writers run in an application session at `+05:00`;
//! 3. compares: each writer operation's outcome (error or not, rows affected) on both sides,
//!    then the definition (MariaDB: `SHOW CREATE TABLE`, normalized; PostgreSQL: columns,
//!    defaults, nullability, collations, generated expressions, constraints with their validity,
//!    indexes) and every row, every column, as the server renders it (text, `HEX()` of strings
//!    and binaries on MariaDB; `::text` on PostgreSQL). Columns the ALTER adds with a
//!    `CURRENT_TIMESTAMP`/`now()` default are compared within [`NOW_TOLERANCE_S`].
//!
//! If shadowswap fails: that is fine when the native ALTER failed too, or when its one-line
//! error contains a phrase of the reviewed [`DOCUMENTED_REFUSALS`] (or of the case's own
//! `accepted_refusals`); otherwise it is a finding ("unexpected refusal"). Either way `t` must
//! then hold exactly what `t_clone` held before its ALTER, and nothing of shadowswap's may be left
//! behind. A native ALTER that succeeds while shadowswap's result differs is always a finding.
//!
//! Cases come from a seed ([`gen::case`], reproducible: the same seed gives the same case) or by
//! name ([`shapes::shape`], the shapes of the defects of issue 7). `scripts/fuzz.sh` runs many
//! seeds; see docs/differential-testing.md.

pub mod gen;
pub mod mariadb;
pub mod postgres;
pub mod shapes;

use std::fmt;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use shadowswap_engine::runner::Outcome;
use shadowswap_engine::{Dialect, MigrationConfig, Phase, Runner, TableRef};

/// Which server a case is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Db {
    /// MariaDB 10.11 (`SHADOWSWAP_MYSQL_DSN`).
    MariaDb,
    /// PostgreSQL 15 (`SHADOWSWAP_PG_DSN`).
    Postgres,
}

impl Db {
    /// `mariadb` / `postgres`: the name `scripts/fuzz.sh --dialect` takes.
    pub fn name(self) -> &'static str {
        match self {
            Db::MariaDb => "mariadb",
            Db::Postgres => "postgres",
        }
    }

    /// Short tag used in database names (`my` / `pg`).
    fn tag(self) -> &'static str {
        match self {
            Db::MariaDb => "my",
            Db::Postgres => "pg",
        }
    }
}

/// Placeholder for the table's (quoted) name in a case's statements: replaced by `t` or
/// `t_clone`, quoted for the dialect.
pub const T: &str = "{t}";
/// Placeholder for the table's bare name (`t` or `t_clone`), for names derived from it
/// (`{tn}_u_idx`).
pub const TN: &str = "{tn}";
/// Placeholder for the case's (quoted) database name in its database setup statements.
pub const DB: &str = "{db}";

/// Columns added with a `CURRENT_TIMESTAMP`/`now()` default: values may differ by this many
/// seconds between the two sides (the two ALTERs run a few seconds apart).
pub const NOW_TOLERANCE_S: f64 = 180.0;

/// The application's session time zone offset for writers, in seconds (+05:00).
pub const APP_OFFSET_S: f64 = 5.0 * 3600.0;

/// Error phrases of refusals that are documented (docs/requirements-and-limitations.md,
/// docs/postgresql.md): a shadowswap error containing one of these, with the native ALTER
/// succeeding, is not a finding. Reviewed list: add a phrase only together with the docs that
/// say why the shape is refused.
pub const DOCUMENTED_REFUSALS: &[(&str, &str)] = &[
    // requirements-and-limitations.md, "The ALTER": FULLTEXT, PARTITION BY.
    ("shadowswap tries the ALTER on a temporary copy", "ALTERs a temporary table does not allow"),
    // requirements-and-limitations.md: "A NOT NULL column needs a DEFAULT".
    ("without a DEFAULT", "added NOT NULL column without DEFAULT"),
    // requirements-and-limitations.md, "TIMESTAMP and time zones" (issue 7 asks to support it on MariaDB:
    // the `mariadb_datetime_to_timestamp` shape checks that, strictly).
    ("converting to or from TIMESTAMP depends on the session time zone", "TIMESTAMP conversions"),
    // postgresql.md, "Refusals".
    ("converting to or from a \"with time zone\" type", "timestamptz conversions"),
    ("the ALTER names an index or key", "ALTERs naming an index or constraint (PostgreSQL)"),
    ("converts with a USING expression", "USING (PostgreSQL)"),
    // requirements-and-limitations.md: a key both tables share is needed (issue 7 asks to
    // support DROP PRIMARY KEY, ADD PRIMARY KEY (id, x): the `mariadb_pk_widened` shape checks
    // that, strictly).
    ("leaves no unique NOT NULL key that both the original and the altered table have", "no shared key"),
    ("no key of", "no usable chunk key"),
    ("has no primary key and no unique key over NOT NULL columns", "no key"),
    // requirements-and-limitations.md / backfill.md "Keys": a chunk key whose type, charset or
    // collation the ALTER changes, with no unchanged unique key left (issue 7 defect 4).
    ("so the capture triggers and the copy could not match rows by that key safely", "changed chunk key"),
    // cut-over.md "The check before the swap": a TRUNCATE or a rebuilding ALTER on MariaDB
    // during the run (issue 7 defect 9).
    ("was truncated or rebuilt by another session during the run", "TRUNCATE during the run (MariaDB)"),
    // backfill.md "Time zones": a clock default on a table whose chunk key has a TIMESTAMP, on a
    // MariaDB server whose default zone is not UTC (issue 7 defect 8).
    ("the ALTER adds a column whose default reads the clock", "clock default with a TIMESTAMP key (MariaDB)"),
];

/// One differential case.
#[derive(Debug, Clone)]
pub struct Case {
    /// What the case is: `seed 42` or `shape mariadb_key_latin1_to_utf8mb4`.
    pub label: String,
    /// Part of the database name (`ssw_diff_<db tag>_<slug>`): letters, digits, `_`.
    pub slug: String,
    /// The server.
    pub db: Db,
    /// Statements run once in the database (with [`DB`] for its quoted name): types,
    /// collations, `ALTER DATABASE … SET TimeZone`.
    pub db_setup: Vec<String>,
    /// Statements creating and filling the table (with [`T`]), run for `t` and for `t_clone`.
    pub setup: Vec<String>,
    /// The ALTER spec (what follows `ALTER TABLE t`).
    pub alter: String,
    /// Writer operations (with [`T`]); used by [`Mode::Writers`].
    pub ops: Vec<String>,
    /// Statements run in the writers' session before their operations (after the time zone).
    pub writer_session: Vec<String>,
    /// How many of `ops` run while the backfill runs; the rest while the run is postponed.
    pub ops_during_backfill: usize,
    /// Columns (names after the ALTER) filled by a `CURRENT_TIMESTAMP`/`now()` default.
    pub now_columns: Vec<String>,
    /// Fixed chunk size of the run, in rows.
    pub chunk_rows: u64,
    /// Whether the run checksums (`--no-checksum` when false).
    pub checksum: bool,
    /// Refusal phrases accepted for this case, besides [`DOCUMENTED_REFUSALS`] (unless `strict`).
    pub accepted_refusals: Vec<String>,
    /// A refusal is accepted only when it contains one of `accepted_refusals`
    /// ([`DOCUMENTED_REFUSALS`] do not apply): for shapes shadowswap must support.
    pub strict: bool,
}

/// Quiet: only the ALTER. Writers: also the case's writer operations, on both sides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// No writes during the run.
    Quiet,
    /// The case's writer operations, during the run on `t`, before the ALTER on `t_clone`.
    Writers,
}

impl Mode {
    fn tag(self) -> &'static str {
        match self {
            Mode::Quiet => "q",
            Mode::Writers => "w",
        }
    }
}

/// How a case ended when it found nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Both ALTERs succeeded and the tables are equal.
    Same,
    /// Both failed (shadowswap's error given); the original is unchanged.
    BothFailed(String),
    /// The native ALTER succeeded, shadowswap refused with an accepted phrase; the original is
    /// unchanged.
    Refused(String),
}

/// What a case found: a difference between shadowswap and the server.
#[derive(Debug, Clone)]
pub struct Finding {
    /// The case's label and mode.
    pub case: String,
    /// What differs, precisely.
    pub what: String,
    /// The command that runs this case again.
    pub repro: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}\n  reproduce: {}", self.case, self.what, self.repro)
    }
}

/// The outcome of one writer operation: rows affected, or the error's text.
pub type OpResult = Result<u64, String>;

/// A snapshot of a table: its normalized definition and its rendered rows (sorted).
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// Definition lines, normalized for the table name.
    pub definition: Vec<String>,
    /// Column names, in order.
    pub columns: Vec<String>,
    /// Rows, each value as the server renders it (None: NULL), sorted.
    pub rows: Vec<Vec<Option<String>>>,
}

/// `stmt` for table `table` (bare name): [`T`] becomes the quoted name (`quoted`), [`TN`] the
/// bare one.
pub fn subst(stmt: &str, table: &str, quoted: &str) -> String {
    stmt.replace(T, quoted).replace(TN, table)
}

/// The command line that reproduces `case` (a seed or a shape).
pub fn repro(case: &Case, mode: Mode) -> String {
    let what = match case.label.strip_prefix("seed ") {
        Some(seed) => format!("--seed {seed} --runs 1"),
        None => format!("--shape {}", case.label.trim_start_matches("shape ")),
    };
    let mode = match mode {
        Mode::Quiet => "quiet",
        Mode::Writers => "writers",
    };
    format!("scripts/fuzz.sh --dialect {} {what} --mode {mode}", case.db.name())
}

/// The database name of a case's run: `diff_<tag>_<slug>_<mode>` (the harness adds `ssw_`).
pub fn db_name(case: &Case, mode: Mode) -> String {
    format!("diff_{}_{}_{}", case.db.tag(), case.slug, mode.tag())
}

/// Run `case` in `mode` against its server. `Ok` when shadowswap agreed with the server
/// (its database is dropped then); `Err` names the first difference (the database is kept for
/// inspection).
pub async fn run_case(case: &Case, mode: Mode) -> Result<Verdict, Finding> {
    let r = match case.db {
        Db::MariaDb => mariadb::run(case, mode).await,
        Db::Postgres => postgres::run(case, mode).await,
    };
    r.map_err(|what| Finding { case: format!("{} ({})", case.label, mode.tag()), what, repro: repro(case, mode) })
}

/// Whether shadowswap's error `err` is an accepted refusal for `case`.
pub fn accepted_refusal(case: &Case, err: &str) -> bool {
    case.accepted_refusals.iter().any(|p| err.contains(p.as_str()))
        || (!case.strict && DOCUMENTED_REFUSALS.iter().any(|(p, _)| err.contains(p)))
}

/// The shadowswap config of a case: executing, short waits, fixed tiny chunks, renames approved.
pub fn config(case: &Case) -> MigrationConfig {
    let mut c = crate::run::fast_config();
    c.copy.fixed_chunk_rows = Some(case.chunk_rows);
    c.checksum.enabled = case.checksum;
    c.approve_renamed_columns = true;
    c
}

/// Applies writer operations on the original table (in the application's session) and returns
/// their outcomes.
pub type ApplyOps = Arc<dyn Fn(Vec<String>) -> Pin<Box<dyn Future<Output = Vec<OpResult>> + Send>> + Send + Sync>;

/// Run shadowswap on `table` with `case`'s ALTER; in [`Mode::Writers`] apply its operations
/// through `apply` while it runs (the first `ops_during_backfill` as soon as it starts, the
/// rest while it is postponed before the cut-over). Returns the run's result (its error's one
/// line) and the operations' outcomes; every operation is applied whatever the run does.
pub async fn drive<D: Dialect + 'static>(
    dialect: Arc<D>,
    case: &Case,
    mode: Mode,
    table: TableRef,
    flag_name: &str,
    apply: ApplyOps,
) -> (Result<(), String>, Vec<OpResult>) {
    let mut config = config(case);
    let ops = if mode == Mode::Writers { case.ops.clone() } else { Vec::new() };
    let flag: Option<PathBuf> = if ops.is_empty() { None } else { Some(crate::run::postpone_flag(flag_name)) };
    config.cut_over.postpone_flag_file = flag.clone();
    let runner = Arc::new(Runner::new(dialect, config));
    let mut progress = runner.progress();
    let alter = case.alter.clone();
    let mut run = tokio::spawn({
        let runner = runner.clone();
        async move { runner.run(&table, &alter).await }
    });
    let mut results = Vec::new();
    let mut finished = None;
    if let Some(flag) = &flag {
        let split = case.ops_during_backfill.min(ops.len());
        let early = tokio::spawn(apply(ops[..split].to_vec()));
        // Wait until the run is held before its cut-over, or has ended.
        let waited = tokio::time::timeout(Duration::from_secs(120), async {
            tokio::select! {
                r = &mut run => Some(r),
                _ = progress.wait_for(|p| p.phase == Phase::Postponed) => None,
            }
        })
        .await;
        match waited {
            Ok(Some(r)) => finished = Some(r),
            Ok(None) => {}
            Err(_) => {
                let _ = std::fs::remove_file(flag);
                return (Err("the run did not reach its postponed cut-over within 120 s".into()), results);
            }
        }
        results.extend(early.await.expect("writer task"));
        results.extend(apply(ops[split..].to_vec()).await);
        let _ = std::fs::remove_file(flag);
    }
    let outcome = match finished {
        Some(r) => r,
        None => match tokio::time::timeout(Duration::from_secs(120), run).await {
            Ok(r) => r,
            Err(_) => return (Err("the run did not end within 120 s".into()), results),
        },
    };
    let outcome = match outcome {
        Ok(o) => o,
        Err(e) => return (Err(format!("{PANICKED}: {}", panic_message(e))), results),
    };
    let outcome = match outcome {
        Ok(Outcome::Swapped(_)) => Ok(()),
        Ok(Outcome::DryRun(_)) => Err("dry run (not executed)".into()),
        Err(e) => Err(e.to_string()),
    };
    (outcome, results)
}

/// What both sides of a case did, for [`judge`].
pub struct Ran {
    /// shadowswap's result on `t` (its error's one line).
    pub result: Result<(), String>,
    /// The native ALTER's on `t_clone` (its error's text).
    pub native: Result<(), String>,
    /// The writer operations applied to both tables (none in quiet mode).
    pub ops: Vec<String>,
    /// Their outcomes on `t`, while shadowswap ran.
    pub orig_ops: Vec<OpResult>,
    /// Their outcomes on `t_clone`, before its ALTER.
    pub clone_ops: Vec<OpResult>,
    /// `t_clone` before its ALTER.
    pub pre: Snapshot,
    /// `t_clone` after its ALTER, when that succeeded (the `now` columns as epoch seconds).
    pub post: Option<Snapshot>,
}

/// The verdict on `case` once both sides ran (and nothing was left behind): the writers'
/// outcomes agree, and either both succeeded and `t` equals `t_clone` (`app_offset`: the `now`
/// values the writers wrote carry the application's offset, [`compare`]), or shadowswap failed,
/// `t` is as `t_clone` was before its ALTER, and the native ALTER failed too or the refusal is an
/// accepted one. `t_now(with_now)` reads `t` (with the `now` columns as epoch seconds, or none).
/// `Err` is the finding.
pub async fn judge<F>(case: &Case, ran: Ran, app_offset: bool, t_now: impl Fn(bool) -> F) -> Result<Verdict, String>
where
    F: Future<Output = Result<Snapshot, String>>,
{
    let Ran { result, native, ops, orig_ops, clone_ops, pre, post } = ran;
    if native.is_ok() {
        if let Some(d) = compare_ops(&ops, &orig_ops, &clone_ops) {
            return Err(d);
        }
    }
    match (result, native) {
        (Ok(()), Ok(())) => {
            let got = t_now(true).await?;
            if let Some(d) = compare(&got, post.as_ref().unwrap(), &case.now_columns, app_offset) {
                return Err(d);
            }
            Ok(Verdict::Same)
        }
        (Ok(()), Err(e)) => Err(format!("shadowswap swapped, but the native ALTER fails on the same data: {e}")),
        (Err(e), native) => {
            let got = t_now(false).await?;
            if let Some(d) = compare(&got, &pre, &[], false) {
                return Err(format!("shadowswap failed ({e}) and the original table is not as it was: {d}"));
            }
            match native {
                Err(_) => Ok(Verdict::BothFailed(e)),
                Ok(()) if accepted_refusal(case, &e) => Ok(Verdict::Refused(e)),
                Ok(()) => Err(format!("unexpected refusal (the native ALTER succeeds): {e}")),
            }
        }
    }
}

/// The start of [`drive`]'s error when shadowswap panicked (always a finding).
pub const PANICKED: &str = "shadowswap panicked";

fn panic_message(e: tokio::task::JoinError) -> String {
    match e.try_into_panic() {
        Ok(p) => p
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "(no message)".into()),
        Err(e) => e.to_string(),
    }
}

/// Compare the writer operations' outcomes on the original (during the run) and on the clone
/// (before its ALTER); the first difference.
pub fn compare_ops(ops: &[String], orig: &[OpResult], clone: &[OpResult]) -> Option<String> {
    for (i, op) in ops.iter().enumerate() {
        let (o, c) = (orig.get(i), clone.get(i));
        let same = match (o, c) {
            (Some(Ok(a)), Some(Ok(b))) => a == b,
            (Some(Err(_)), Some(Err(_))) => true,
            _ => false,
        };
        if !same {
            return Some(format!("writer op #{i} `{op}`: during the shadowswap run {}, on the clone {}", show_op(o), show_op(c)));
        }
    }
    None
}

fn show_op(r: Option<&OpResult>) -> String {
    match r {
        None => "not run".into(),
        Some(Ok(n)) => format!("affected {n} row(s)"),
        Some(Err(e)) => format!("failed: {e}"),
    }
}

/// Compare two snapshots: `got` (the original after shadowswap) against `want` (the clone after
/// the native ALTER). Columns in `now_columns` (seconds since the epoch) may differ by
/// [`NOW_TOLERANCE_S`] (or, with `app_offset`, also by the application's offset: rows the
/// application wrote during the run get its clock). Returns the first difference.
pub fn compare(got: &Snapshot, want: &Snapshot, now_columns: &[String], app_offset: bool) -> Option<String> {
    if got.definition != want.definition {
        let g = got.definition.iter().filter(|l| !want.definition.contains(l)).cloned().collect::<Vec<_>>();
        let w = want.definition.iter().filter(|l| !got.definition.contains(l)).cloned().collect::<Vec<_>>();
        let order = if g.is_empty() && w.is_empty() { " (the same lines in another order)" } else { "" };
        return Some(format!("definitions differ{order}: shadowswap has {g:?}, the native ALTER has {w:?}"));
    }
    if got.columns != want.columns {
        return Some(format!("columns differ: shadowswap {:?}, native {:?}", got.columns, want.columns));
    }
    let now_idx: Vec<usize> = got.columns.iter().enumerate().filter(|(_, c)| now_columns.contains(c)).map(|(i, _)| i).collect();
    let key = |r: &Vec<Option<String>>| -> Vec<Option<String>> {
        r.iter().enumerate().filter(|(i, _)| !now_idx.contains(i)).map(|(_, v)| v.clone()).collect()
    };
    let mut g: Vec<_> = got.rows.iter().map(|r| (key(r), r)).collect();
    let mut w: Vec<_> = want.rows.iter().map(|r| (key(r), r)).collect();
    g.sort();
    w.sort();
    let show = |r: &Vec<Option<String>>| -> String {
        got.columns.iter().zip(r).map(|(c, v)| format!("{c}={}", v.as_deref().unwrap_or("NULL"))).collect::<Vec<_>>().join(", ")
    };
    let missing: Vec<_> = w.iter().filter(|(k, _)| g.binary_search_by(|(gk, _)| gk.cmp(k)).is_err()).collect();
    let extra: Vec<_> = g.iter().filter(|(k, _)| w.binary_search_by(|(wk, _)| wk.cmp(k)).is_err()).collect();
    if !missing.is_empty() || !extra.is_empty() || g.len() != w.len() {
        let mut s = format!(
            "rows differ: shadowswap has {} rows, the native ALTER {}; {} row(s) only native, {} only shadowswap",
            g.len(),
            w.len(),
            missing.len(),
            extra.len()
        );
        if let Some((_, r)) = missing.first() {
            s += &format!("; first only in native: ({})", show(r));
        }
        if let Some((_, r)) = extra.first() {
            s += &format!("; first only in shadowswap: ({})", show(r));
        }
        return Some(s);
    }
    for ((_, gr), (_, wr)) in g.iter().zip(&w) {
        for &i in &now_idx {
            let (a, b) = (&gr[i], &wr[i]);
            let ok = match (a, b) {
                (None, None) => true,
                (Some(a), Some(b)) => match (a.parse::<f64>(), b.parse::<f64>()) {
                    (Ok(a), Ok(b)) => {
                        let d = (a - b).abs();
                        d <= NOW_TOLERANCE_S || (app_offset && (d - APP_OFFSET_S).abs() <= NOW_TOLERANCE_S)
                    }
                    _ => a == b,
                },
                _ => false,
            };
            if !ok {
                return Some(format!(
                    "column {} (a CURRENT_TIMESTAMP/now() default, epoch seconds) differs beyond {NOW_TOLERANCE_S} s: \
                     shadowswap {}, native {} (row: {})",
                    got.columns[i],
                    a.as_deref().unwrap_or("NULL"),
                    b.as_deref().unwrap_or("NULL"),
                    show(wr)
                ));
            }
        }
    }
    None
}

/// What `scripts/fuzz.sh` passes: `SHADOWSWAP_FUZZ_RUNS`, `SHADOWSWAP_FUZZ_SEED`,
/// `SHADOWSWAP_FUZZ_DIALECT`, `SHADOWSWAP_FUZZ_SHAPE`, `SHADOWSWAP_FUZZ_MODE`.
#[derive(Debug, Clone)]
pub struct FuzzEnv {
    /// Seeds to run per dialect.
    pub runs: u64,
    /// First seed (the others follow it).
    pub seed: u64,
    /// Dialects to run.
    pub dialects: Vec<Db>,
    /// A named shape instead of seeds.
    pub shape: Option<String>,
    /// Modes to run each case in.
    pub modes: Vec<Mode>,
}

impl FuzzEnv {
    /// Read the environment; panics with the accepted values on a bad one.
    pub fn from_env() -> FuzzEnv {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let runs = var("SHADOWSWAP_FUZZ_RUNS").map(|v| v.parse().expect("SHADOWSWAP_FUZZ_RUNS: a number")).unwrap_or(20);
        let seed = var("SHADOWSWAP_FUZZ_SEED").map(|v| v.parse().expect("SHADOWSWAP_FUZZ_SEED: a number")).unwrap_or_else(|| {
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() % 1_000_000_000
        });
        let dialects = match var("SHADOWSWAP_FUZZ_DIALECT").as_deref() {
            None | Some("both") => vec![Db::MariaDb, Db::Postgres],
            Some("mariadb") => vec![Db::MariaDb],
            Some("postgres") => vec![Db::Postgres],
            Some(o) => panic!("SHADOWSWAP_FUZZ_DIALECT={o}: expected mariadb, postgres or both"),
        };
        let modes = match var("SHADOWSWAP_FUZZ_MODE").as_deref() {
            None | Some("both") => vec![Mode::Quiet, Mode::Writers],
            Some("quiet") => vec![Mode::Quiet],
            Some("writers") => vec![Mode::Writers],
            Some(o) => panic!("SHADOWSWAP_FUZZ_MODE={o}: expected quiet, writers or both"),
        };
        FuzzEnv { runs, seed, dialects, shape: var("SHADOWSWAP_FUZZ_SHAPE"), modes }
    }
}

/// Run `cases` in `modes`, printing one line per case run; returns the findings.
pub async fn run_all(cases: &[Case], modes: &[Mode]) -> Vec<Finding> {
    let mut findings = Vec::new();
    for case in cases {
        for &mode in modes {
            let t0 = std::time::Instant::now();
            match run_case(case, mode).await {
                Ok(v) => eprintln!("[diff] {} ({}) ok in {:.1} s: {v:?}", case.label, mode.tag(), t0.elapsed().as_secs_f64()),
                Err(f) => {
                    eprintln!("[diff] FAILED {f}");
                    findings.push(f);
                }
            }
        }
    }
    findings
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(rows: &[&[Option<&str>]]) -> Snapshot {
        Snapshot {
            definition: vec!["CREATE TABLE `t` (".into()],
            columns: vec!["id".into(), "c".into(), "now".into()],
            rows: rows.iter().map(|r| r.iter().map(|v| v.map(str::to_string)).collect()).collect(),
        }
    }

    #[test]
    fn compare_names_the_first_row_only_one_side_has() {
        let a = snap(&[&[Some("1"), Some("x"), Some("100")], &[Some("2"), None, Some("100")]]);
        let b = snap(&[&[Some("2"), None, Some("100")], &[Some("1"), Some("y"), Some("100")]]);
        let d = compare(&a, &b, &[], false).unwrap();
        assert!(d.contains("first only in native: (id=1, c=y, now=100)"), "{d}");
        assert!(d.contains("first only in shadowswap: (id=1, c=x, now=100)"), "{d}");
        assert_eq!(compare(&a, &a.clone(), &[], false), None);
    }

    #[test]
    fn now_columns_are_compared_within_the_tolerance() {
        let now = vec!["now".to_string()];
        let a = snap(&[&[Some("1"), None, Some("1000")]]);
        let near = snap(&[&[Some("1"), None, Some("1100")]]);
        let app = snap(&[&[Some("1"), None, Some("19000")]]);
        assert_eq!(compare(&a, &near, &now, false), None);
        assert!(compare(&a, &app, &now, false).unwrap().contains("column now"));
        assert_eq!(compare(&a, &app, &now, true), None);
        assert!(compare(&a, &near, &[], false).is_some());
    }

    #[test]
    fn definitions_are_compared_line_by_line() {
        let a = snap(&[]);
        let mut b = a.clone();
        b.definition.push("  KEY `ix` (`c`)".into());
        let d = compare(&a, &b, &[], false).unwrap();
        assert!(d.starts_with("definitions differ: shadowswap has [], the native ALTER has [\"  KEY `ix` (`c`)\"]"), "{d}");
    }

    #[test]
    fn writer_outcomes_compare_success_and_counts() {
        let ops = vec!["UPDATE {t} SET v = 1".to_string()];
        assert_eq!(compare_ops(&ops, &[Ok(2)], &[Ok(2)]), None);
        assert_eq!(compare_ops(&ops, &[Err("a".into())], &[Err("b".into())]), None);
        let d = compare_ops(&ops, &[Err("ERROR 1267".into())], &[Ok(1)]).unwrap();
        assert_eq!(
            d,
            "writer op #0 `UPDATE {t} SET v = 1`: during the shadowswap run failed: ERROR 1267, on the clone affected 1 row(s)"
        );
    }

    #[test]
    fn repro_lines() {
        let c = gen::case(Db::Postgres, 42);
        assert_eq!(repro(&c, Mode::Writers), "scripts/fuzz.sh --dialect postgres --seed 42 --runs 1 --mode writers");
        let s = shapes::shape("mariadb_enum_pk").unwrap();
        assert_eq!(repro(&s, Mode::Quiet), "scripts/fuzz.sh --dialect mariadb --shape mariadb_enum_pk --mode quiet");
        assert_eq!(db_name(&s, Mode::Quiet), "diff_my_mariadb_enum_pk_q");
    }

    #[test]
    fn every_shape_is_named_and_built() {
        for (name, _, _) in shapes::SHAPES {
            let c = shapes::shape(name).unwrap_or_else(|| panic!("{name}"));
            assert_eq!(c.db.name(), &name[..name.find('_').unwrap()]);
            assert!(db_name(&c, Mode::Writers).len() < 60, "{name}");
        }
    }
}
