//! Versioned migrations: `shadowswap migrate`, a directory of migration files applied in order,
//! each phase (expand, backfill, contract) recorded in a history table on the server.
//!
//! A migration file is TOML, named `NNNN_name.toml` (`NNNN`: its version, digits; files are
//! applied in the order of their names), every section optional:
//!
//! ```toml
//! table = "orders"
//! [expand]
//! alter = "ADD COLUMN note varchar(64) NULL"
//! revert = "DROP COLUMN note"
//! [backfill]
//! set = "note = concat('#', id)"
//! where = "note IS NULL"
//! [contract]
//! alter = "ALTER COLUMN note SET NOT NULL"
//! revert = "ALTER COLUMN note DROP NOT NULL"
//! ```
//!
//! The pure part — the file model ([`parse_file`], [`load_dir`]), the checksum ([`checksum`]:
//! SHA-256 of the file's bytes, hex), the state of each phase from the history ([`state`]), what
//! is pending ([`pending`]) and what a rollback reverts ([`rollback_plan`]) — is unit-tested here.
//! The history's I/O goes through the `// ---- migrate ----` block of [`Staged`].
//!
//! Each phase goes the cheapest safe way: **expand** through [`Runner`] with
//! `attempt_instant_ddl` (in place when the server says the ALTER is metadata-only,
//! [`Dialect::metadata_only`], otherwise the shadow copy); **backfill** through
//! [`backfill::run`] (passes until no row matches `where`); **contract** through
//! [`contract::run`]. A phase is recorded `running` before it runs and `applied` (or `failed`,
//! with its error) after; a failure stops the run. One runner at a time per history table: the
//! run holds an advisory lock ([`Dialect::acquire_run_lock`] under [`lock_name`]); a second is
//! refused before it reads anything.
//!
//! [`Staged`]: crate::staged::Staged

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Deserialize;
use sha2::{Digest, Sha256};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::config::MigrationConfig;
use crate::dialect::Dialect;
use crate::error::{Error, Result};
use crate::model::TableRef;
use crate::progress::{Progress, LOG_TARGET};
use crate::runner::{Outcome, Runner};
use crate::staged::backfill::{self, BackfillOutcome, BackfillSpec};
use crate::staged::contract;

/// The history table's name, in the DSN's database (MariaDB) or current schema (PostgreSQL).
pub const HISTORY_TABLE: &str = "shadowswap_migrations";

/// A phase of a migration file, in the order a file's phases run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PhaseKind {
    /// The additive change (`[expand]`).
    Expand,
    /// The in-place backfill (`[backfill]`).
    Backfill,
    /// The constraints and drops (`[contract]`).
    Contract,
}

impl PhaseKind {
    /// The three phases in their order.
    pub const ALL: [PhaseKind; 3] = [PhaseKind::Expand, PhaseKind::Backfill, PhaseKind::Contract];

    /// The name used on the command line and in the history: `expand`, `backfill`, `contract`.
    pub fn as_str(self) -> &'static str {
        match self {
            PhaseKind::Expand => "expand",
            PhaseKind::Backfill => "backfill",
            PhaseKind::Contract => "contract",
        }
    }
}

impl fmt::Display for PhaseKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl std::str::FromStr for PhaseKind {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "expand" => Ok(PhaseKind::Expand),
            "backfill" => Ok(PhaseKind::Backfill),
            "contract" => Ok(PhaseKind::Contract),
            other => Err(format!("unknown phase {other:?}: expand, backfill or contract")),
        }
    }
}

/// An `[expand]` or `[contract]` section: the ALTER (what follows `ALTER TABLE t`) and what
/// undoes it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlterSection {
    /// What follows `ALTER TABLE t`, e.g. `ADD COLUMN note varchar(64) NULL`.
    pub alter: String,
    /// What undoes it (`--rollback`), e.g. `DROP COLUMN note`; without it the phase cannot be
    /// rolled back.
    pub revert: Option<String>,
}

/// A `[backfill]` section: the fragments of the in-place `UPDATE` (see [`BackfillSpec`]).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackfillSection {
    /// What follows `SET`.
    pub set: String,
    /// What selects the rows still to backfill.
    #[serde(rename = "where")]
    pub where_: String,
}

/// The TOML document of a migration file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileToml {
    table: String,
    expand: Option<AlterSection>,
    backfill: Option<BackfillSection>,
    contract: Option<AlterSection>,
}

/// One migration file, read and checksummed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationFile {
    /// The file's name, e.g. `0007_add_note.toml` (what the history records).
    pub name: String,
    /// Its version: the digits before the first `_`, e.g. `0007`.
    pub version: String,
    /// The table, `NAME` (in the DSN's database/schema) or `SCHEMA.NAME`.
    pub table: String,
    /// `[expand]`, when present.
    pub expand: Option<AlterSection>,
    /// `[backfill]`, when present.
    pub backfill: Option<BackfillSection>,
    /// `[contract]`, when present.
    pub contract: Option<AlterSection>,
    /// SHA-256 of the file's bytes, lower-case hex ([`checksum`]).
    pub checksum: String,
}

impl MigrationFile {
    /// The phases the file has, in order.
    pub fn phases(&self) -> Vec<PhaseKind> {
        PhaseKind::ALL.into_iter().filter(|p| self.has(*p)).collect()
    }

    /// Whether the file has `phase`'s section.
    pub fn has(&self, phase: PhaseKind) -> bool {
        match phase {
            PhaseKind::Expand => self.expand.is_some(),
            PhaseKind::Backfill => self.backfill.is_some(),
            PhaseKind::Contract => self.contract.is_some(),
        }
    }

    /// The table as a reference: `SCHEMA.NAME`, or `NAME` in `default_schema`.
    pub fn table_ref(&self, default_schema: &str) -> TableRef {
        match self.table.split_once('.') {
            Some((s, n)) => TableRef::new(s, n),
            None => TableRef::new(default_schema, &self.table),
        }
    }

    /// The backfill's fragments, when the file has `[backfill]`.
    pub fn backfill_spec(&self) -> Option<BackfillSpec> {
        self.backfill.as_ref().map(|b| BackfillSpec { set: b.set.clone(), where_: b.where_.clone() })
    }
}

/// SHA-256 of `bytes`, lower-case hex (64 characters).
pub fn checksum(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// The 1-based line of byte offset `at` in `text`.
fn line_of(text: &str, at: usize) -> usize {
    text.as_bytes()[..at.min(text.len())].iter().filter(|b| **b == b'\n').count() + 1
}

/// Read migration file `name` from its text. Pure.
///
/// Errors ([`Error::Refused`], one line): a name that is not `NNNN_name.toml`; a TOML or schema
/// error (an unknown key, a missing `table`/`alter`/`set`/`where`), naming the file and line; an
/// empty `table`, or a file with no section at all.
pub fn parse_file(name: &str, text: &str) -> Result<MigrationFile> {
    let version = version_of(name).ok_or_else(|| {
        Error::refused(format!("migration file {name:?} is not named NNNN_name.toml (digits, '_', a name); rename it"))
    })?;
    let doc: FileToml = toml::from_str(text).map_err(|e| {
        let line = e.span().map(|s| line_of(text, s.start)).unwrap_or(1);
        let msg = e.message().replace('\n', " ");
        Error::refused(format!("{name}:{line}: {}; fix the migration file", msg.trim()))
    })?;
    if doc.table.trim().is_empty() {
        return Err(Error::refused(format!("{name}:1: `table` is empty; name the table the migration changes")));
    }
    if doc.expand.is_none() && doc.backfill.is_none() && doc.contract.is_none() {
        return Err(Error::refused(format!(
            "{name}: no [expand], [backfill] or [contract] section; a migration file needs at least one"
        )));
    }
    Ok(MigrationFile {
        name: name.to_string(),
        version,
        table: doc.table.trim().to_string(),
        expand: doc.expand,
        backfill: doc.backfill,
        contract: doc.contract,
        checksum: checksum(text.as_bytes()),
    })
}

/// The version of a migration file's name: `0007` of `0007_add_note.toml`; `None` when the name
/// is not `NNNN_name.toml`.
pub fn version_of(name: &str) -> Option<String> {
    let stem = name.strip_suffix(".toml")?;
    let (v, rest) = stem.split_once('_')?;
    (!v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) && !rest.is_empty()).then(|| v.to_string())
}

/// Read every `*.toml` file in `dir`, in the order of their names. Other files are ignored.
///
/// Errors ([`Error::Refused`]): the directory cannot be read; a file [`parse_file`] refuses; two
/// files with the same version.
pub fn load_dir(dir: &Path) -> Result<Vec<MigrationFile>> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| Error::refused(format!("cannot read the migrations directory {}: {e}; check --dir", dir.display())))?;
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::refused(format!("cannot read {}: {e}", dir.display())))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".toml") && entry.path().is_file() {
            names.push(name);
        }
    }
    names.sort();
    let mut files: Vec<MigrationFile> = Vec::with_capacity(names.len());
    for name in names {
        let path = dir.join(&name);
        let text = std::fs::read_to_string(&path)
            .map_err(|e| Error::refused(format!("cannot read migration file {}: {e}", path.display())))?;
        let file = parse_file(&name, &text)?;
        if let Some(other) = files.iter().find(|f| f.version == file.version) {
            return Err(Error::refused(format!(
                "{} and {} have the same version {}; give each migration file its own",
                other.name, file.name, file.version
            )));
        }
        files.push(file);
    }
    Ok(files)
}

/// What a history row records about its phase.
pub mod outcome {
    /// Started, not finished (or the process was killed meanwhile).
    pub const RUNNING: &str = "running";
    /// Finished.
    pub const APPLIED: &str = "applied";
    /// Failed: the row's `error` says why.
    pub const FAILED: &str = "failed";
    /// A revert started (`--rollback`), not finished.
    pub const REVERTING: &str = "reverting";
    /// Reverted by `--rollback`: the phase is pending again.
    pub const REVERTED: &str = "reverted";
    /// The revert failed: the row's `error` says why; the phase counts as still applied.
    pub const REVERT_FAILED: &str = "revert_failed";
}

/// One row of the history table, as the dialect reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryRow {
    /// Increasing with time.
    pub id: i64,
    /// The migration file's name.
    pub file: String,
    /// `expand`, `backfill` or `contract`.
    pub phase: String,
    /// The file's checksum when the row was written.
    pub checksum: String,
    /// When it started (UTC, `YYYY-MM-DD HH:MM:SS`).
    pub started_at: String,
    /// When it finished, when it did.
    pub finished_at: Option<String>,
    /// The server's current user and the client's host.
    pub applied_by: String,
    /// See [`outcome`].
    pub outcome: String,
    /// The error of a failed phase or revert.
    pub error: Option<String>,
}

/// Where a phase of a file stands, from its latest history row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PhaseState {
    /// Never run, reverted, or failed: it runs next time.
    Pending {
        /// The latest row, when there is one (a failure, a revert, an interrupted run).
        last: Option<HistoryRow>,
    },
    /// Applied (a failed revert leaves it applied).
    Applied(HistoryRow),
}

impl PhaseState {
    /// Whether the phase is applied.
    pub fn applied(&self) -> bool {
        matches!(self, PhaseState::Applied(_))
    }
}

/// The state of `phase` of `file` from `history` (any order): the latest row for the pair
/// decides. `applied`/`revert_failed`/`reverting` → applied; `running`, `failed`,
/// `reverted` or none → pending (a `running` row is an interrupted run: every phase may be run
/// again — the expand's and contract's shadow copy resumes or starts over, the backfill touches
/// only rows still matching `where`).
pub fn state(history: &[HistoryRow], file: &str, phase: PhaseKind) -> PhaseState {
    let last = history.iter().filter(|r| r.file == file && r.phase == phase.as_str()).max_by_key(|r| r.id).cloned();
    match last {
        Some(r) if [outcome::APPLIED, outcome::REVERT_FAILED, outcome::REVERTING].contains(&r.outcome.as_str()) => {
            PhaseState::Applied(r)
        }
        last => PhaseState::Pending { last },
    }
}

/// Refuse a file applied (any phase) with a different checksum than it has now. Pure.
pub fn check_unedited(files: &[MigrationFile], history: &[HistoryRow]) -> Result<()> {
    for f in files {
        for p in PhaseKind::ALL {
            if let PhaseState::Applied(row) = state(history, &f.name, p) {
                if row.checksum != f.checksum {
                    return Err(Error::refused(format!(
                        "migration file {} was edited after its {p} was applied (checksum {} recorded, {} now); \
                         restore the applied version and put the change in a new migration file",
                        f.name,
                        short(&row.checksum),
                        short(&f.checksum)
                    )));
                }
            }
        }
    }
    Ok(())
}

fn short(sum: &str) -> &str {
    &sum[..sum.len().min(12)]
}

/// The phases to run, in order: for each file in order, its pending phases (only `only`'s when
/// given). Pure.
///
/// Errors ([`Error::Refused`]): an edited applied file ([`check_unedited`]); with `only`, a file
/// whose earlier phase is still pending (`--phase contract` before its backfill), naming both.
pub fn pending(files: &[MigrationFile], history: &[HistoryRow], only: Option<PhaseKind>) -> Result<Vec<(usize, PhaseKind)>> {
    check_unedited(files, history)?;
    let mut out = Vec::new();
    for (i, f) in files.iter().enumerate() {
        for p in f.phases() {
            if state(history, &f.name, p).applied() {
                continue;
            }
            match only {
                None => out.push((i, p)),
                Some(o) if o == p => out.push((i, p)),
                Some(o) if p < o && f.has(o) => {
                    return Err(Error::refused(format!(
                        "{}: its {p} is not applied yet, so its {o} cannot run; run `shadowswap migrate --phase {p}` first",
                        f.name
                    )))
                }
                Some(_) => {}
            }
        }
    }
    Ok(out)
}

/// One step of a rollback: the phase and the ALTER that reverts it (`None` for a backfill, which
/// has no revert: the values it wrote stay).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevertStep {
    /// The phase reverted.
    pub phase: PhaseKind,
    /// Its `revert` ALTER; `None` for the backfill.
    pub revert: Option<String>,
}

/// Find the file `which` names: its version (`0007`, or `7`) or its file name.
/// Errors: no such file in the directory.
pub fn find_file<'a>(files: &'a [MigrationFile], which: &str) -> Result<&'a MigrationFile> {
    let num = |v: &str| v.trim_start_matches('0').to_string();
    files.iter().find(|f| f.name == which || f.version == which || num(&f.version) == num(which)).ok_or_else(|| {
        Error::refused(format!("--rollback {which}: no migration file with that version or name in the directory"))
    })
}

/// The reverts of `file`'s applied phases, newest first (contract, backfill, expand). Pure.
///
/// Errors ([`Error::Refused`]): the file was edited after it was applied; an applied expand or
/// contract without `revert` (nothing is run then); nothing of the file is applied.
pub fn rollback_plan(file: &MigrationFile, history: &[HistoryRow]) -> Result<Vec<RevertStep>> {
    check_unedited(std::slice::from_ref(file), history)?;
    let mut steps = Vec::new();
    for p in PhaseKind::ALL.into_iter().rev() {
        if !state(history, &file.name, p).applied() {
            continue;
        }
        let revert = match p {
            PhaseKind::Expand => file.expand.as_ref().map(|s| s.revert.clone()),
            PhaseKind::Contract => file.contract.as_ref().map(|s| s.revert.clone()),
            PhaseKind::Backfill => {
                steps.push(RevertStep { phase: p, revert: None });
                continue;
            }
        };
        match revert.flatten() {
            Some(r) => steps.push(RevertStep { phase: p, revert: Some(r) }),
            None => {
                return Err(Error::refused(format!(
                    "{}: its {p} is applied but has no `revert`; add [{p}] revert = \"…\" (nothing was run)",
                    file.name
                )))
            }
        }
    }
    if steps.is_empty() {
        return Err(Error::refused(format!("{}: nothing of it is applied; nothing to roll back", file.name)));
    }
    Ok(steps)
}

/// The `migrate status` text: per file and phase, applied (when, by whom) or pending (and why:
/// never run, failed with …, reverted, interrupted), and files edited after applying. Pure.
pub fn render_status(files: &[MigrationFile], history: &[HistoryRow]) -> String {
    let mut s = String::new();
    let (mut applied, mut pend) = (0, 0);
    for f in files {
        s += &format!("{} (table {})\n", f.name, f.table);
        for p in f.phases() {
            match state(history, &f.name, p) {
                PhaseState::Applied(r) => {
                    applied += 1;
                    let edited = if r.checksum != f.checksum { " — EDITED since: the file's checksum differs" } else { "" };
                    s += &format!(
                        "  {p:<9} applied  {} by {}{edited}\n",
                        r.finished_at.as_deref().unwrap_or(&r.started_at),
                        r.applied_by
                    );
                }
                PhaseState::Pending { last } => {
                    pend += 1;
                    let why = match last {
                        None => String::new(),
                        Some(r) if r.outcome == outcome::FAILED => {
                            format!(" (failed {}: {})", r.started_at, r.error.as_deref().unwrap_or("no error recorded"))
                        }
                        Some(r) if r.outcome == outcome::REVERTED => {
                            format!(" (reverted {})", r.finished_at.as_deref().unwrap_or(&r.started_at))
                        }
                        Some(r) => format!(" (interrupted: started {} by {}, never finished)", r.started_at, r.applied_by),
                    };
                    s += &format!("  {p:<9} pending{why}\n");
                }
            }
        }
    }
    let known: Vec<&str> = files.iter().map(|f| f.name.as_str()).collect();
    let mut missing: BTreeMap<&str, ()> = BTreeMap::new();
    for r in history {
        if !known.contains(&r.file.as_str()) {
            missing.insert(&r.file, ());
        }
    }
    for m in missing.keys() {
        s += &format!("{m}: in the history but not in the directory\n");
    }
    s += &format!("{applied} phase(s) applied, {pend} pending\n");
    s
}

/// The advisory lock's name for the history table `history`: one migrate run per history table.
pub fn lock_name(history: &TableRef) -> String {
    let key = format!("{}.{}", history.schema, history.name);
    // MariaDB lock names are at most 64 characters.
    if key.len() <= 40 {
        format!("shadowswap:migrate:{key}")
    } else {
        format!("shadowswap:migrate:{}", short(&checksum(key.as_bytes())))
    }
}

/// What `migrate` is asked to do.
#[derive(Debug, Clone)]
pub struct MigrateOptions {
    /// Only this phase (of every file); all phases when `None`.
    pub only: Option<PhaseKind>,
    /// Roll back the file with this version or name instead of applying.
    pub rollback: Option<String>,
}

/// What one executed phase (or revert) did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhaseReport {
    /// The file.
    pub file: String,
    /// The phase.
    pub phase: PhaseKind,
    /// One line: how it went (in place / shadow copy / rows updated / steps), or "reverted …".
    pub detail: String,
    /// Wall time.
    pub elapsed: Duration,
}

/// How [`run`] ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MigrateOutcome {
    /// Dry run: per file and phase, what would run, with the statements.
    DryRun(String),
    /// Executed: the phases (or reverts) run, in order; empty when nothing was pending.
    Done(Vec<PhaseReport>),
}

/// The history table in `schema`.
pub fn history_table(schema: &str) -> TableRef {
    TableRef::new(schema, HISTORY_TABLE)
}

/// The history of `schema` (empty when the table does not exist yet). Reads only.
pub async fn read_history<D: Dialect>(d: &D, schema: &str) -> Result<Vec<HistoryRow>> {
    let h = history_table(schema);
    if !d.table_exists(&h).await? {
        return Ok(Vec::new());
    }
    d.migrate_history_read(&h).await
}

/// `shadowswap migrate`: apply the pending phases of `files` (or roll one back), the tables and
/// the history in `schema`. Dry run unless `config.execute`.
///
/// Errors: [`Error::AnotherRun`] when another migrate run holds the history's lock (nothing
/// read or changed); the refusals of [`pending`] / [`rollback_plan`]; the first failed phase's
/// error (recorded in the history; the phases before it stay applied).
#[allow(clippy::too_many_arguments)]
pub async fn run<D: Dialect>(
    d: &Arc<D>,
    replicas: &[Arc<D>],
    schema: &str,
    files: &[MigrationFile],
    opts: &MigrateOptions,
    config: &MigrationConfig,
    cancel: &CancellationToken,
    progress: &watch::Sender<Progress>,
) -> Result<MigrateOutcome> {
    let history = history_table(schema);
    if !config.execute {
        let rows = read_history(&**d, schema).await?;
        return dry_run(d, schema, files, &rows, opts, config).await.map(MigrateOutcome::DryRun);
    }
    let mut names = d.names(&history);
    names.lock = lock_name(&history);
    let lock = match d.acquire_run_lock(&names).await {
        Ok(l) => l,
        Err(Error::AnotherRun(_)) => {
            return Err(Error::refused(format!(
                "another shadowswap migrate is running against {history} (its advisory lock is held); nothing was done: \
                 wait for it to finish"
            )))
        }
        Err(e) => return Err(e),
    };
    let result = run_locked(d, replicas, schema, files, opts, config, cancel, progress).await;
    if let Err(e) = lock.release().await {
        tracing::warn!(error = %e, "releasing the migrate lock failed (it is released when the session closes)");
    }
    result.map(MigrateOutcome::Done)
}

#[allow(clippy::too_many_arguments)]
async fn run_locked<D: Dialect>(
    d: &Arc<D>,
    replicas: &[Arc<D>],
    schema: &str,
    files: &[MigrationFile],
    opts: &MigrateOptions,
    config: &MigrationConfig,
    cancel: &CancellationToken,
    progress: &watch::Sender<Progress>,
) -> Result<Vec<PhaseReport>> {
    let history = history_table(schema);
    let rows = read_history(&**d, schema).await?;
    let mut done = Vec::new();
    if let Some(which) = &opts.rollback {
        let file = find_file(files, which)?;
        let table = file.table_ref(schema);
        for step in rollback_plan(file, &rows)? {
            let started = Instant::now();
            let id =
                d.migrate_history_start(&history, &file.name, step.phase.as_str(), &file.checksum, outcome::REVERTING).await?;
            let result = match &step.revert {
                None => {
                    Ok("a backfill has no revert: the values it wrote stay (the expand's revert removes them with the column)"
                        .to_string())
                }
                Some(alter) => {
                    apply_alter(d, replicas, &table, alter, config, cancel).await.map(|how| format!("reverted: {how}"))
                }
            };
            match result {
                Ok(detail) => {
                    d.migrate_history_finish(&history, id, outcome::REVERTED, None).await?;
                    tracing::info!(target: LOG_TARGET, file = %file.name, phase = %step.phase, "{detail}");
                    done.push(PhaseReport { file: file.name.clone(), phase: step.phase, detail, elapsed: started.elapsed() });
                }
                Err(e) => {
                    let msg = e.to_string();
                    d.migrate_history_finish(&history, id, outcome::REVERT_FAILED, Some(&msg)).await?;
                    return Err(Error::refused(format!("{} revert of {} failed: {msg}", file.name, step.phase)));
                }
            }
        }
        return Ok(done);
    }
    let todo = pending(files, &rows, opts.only)?;
    precheck(files, &todo, d.sql_dialect())?;
    if !todo.is_empty() {
        // Created only once every check passed and there is something to record.
        d.migrate_history_ensure(&history).await?;
    }
    for (i, phase) in todo {
        if cancel.is_cancelled() {
            return Err(Error::Cancelled("stopped between migration phases".into()));
        }
        let file = &files[i];
        let table = file.table_ref(schema);
        let started = Instant::now();
        tracing::info!(target: LOG_TARGET, file = %file.name, phase = %phase, table = %table, "applying");
        let id = d.migrate_history_start(&history, &file.name, phase.as_str(), &file.checksum, outcome::RUNNING).await?;
        let result = apply_phase(d, replicas, file, phase, &table, config, cancel, progress).await;
        match result {
            Ok(detail) => {
                d.migrate_history_finish(&history, id, outcome::APPLIED, None).await?;
                tracing::info!(target: LOG_TARGET, file = %file.name, phase = %phase, "{detail}");
                done.push(PhaseReport { file: file.name.clone(), phase, detail, elapsed: started.elapsed() });
            }
            Err(e) => {
                let msg = e.to_string();
                if let Err(rec) = d.migrate_history_finish(&history, id, outcome::FAILED, Some(&msg)).await {
                    tracing::error!(error = %rec, "recording the failure in the history failed");
                }
                return Err(match e {
                    Error::Refused(_) => Error::refused(format!(
                        "{} {phase} failed (recorded in {history}; the phases before it stay applied): {msg}",
                        file.name
                    )),
                    // Keep the error's kind (cancelled, something left, the server away: each its
                    // exit status); the log says which phase.
                    other => {
                        tracing::error!(target: LOG_TARGET, file = %file.name, phase = %phase, "{} {phase} failed (recorded in {history}; the phases before it stay applied)", file.name);
                        other
                    }
                });
            }
        }
    }
    Ok(done)
}

/// Check the form of every operator fragment of the phases `todo` will run, before the first
/// of them changes anything: each `alter` (and the file's `revert`s) one ALTER clause list
/// ([`crate::preflight::alter::analyze`]: one statement, no `;`), the backfill's `set`/`where`
/// one `UPDATE` ([`sqlparser`], one statement). The server judges each fragment again when its
/// phase runs (its columns may not exist before the expand). Pure.
///
/// Errors: [`Error::Refused`] naming the file and section.
pub fn precheck(files: &[MigrationFile], todo: &[(usize, PhaseKind)], dialect: &dyn sqlparser::dialect::Dialect) -> Result<()> {
    let named = |f: &MigrationFile, what: &str, e: Error| Error::refused(format!("{} [{what}]: {e}", f.name));
    for &(i, phase) in todo {
        let f = &files[i];
        let alters: Vec<(&str, &str)> = match phase {
            PhaseKind::Expand => f.expand.iter().flat_map(|s| alter_texts("expand", s)).collect(),
            PhaseKind::Contract => f.contract.iter().flat_map(|s| alter_texts("contract", s)).collect(),
            PhaseKind::Backfill => Vec::new(),
        };
        for (what, text) in alters {
            crate::preflight::alter::analyze(text, dialect).map_err(|e| named(f, what, e))?;
        }
        if let (PhaseKind::Backfill, Some(b)) = (phase, &f.backfill) {
            let sql = format!("UPDATE t SET {} WHERE {}", b.set, b.where_);
            match sqlparser::parser::Parser::parse_sql(dialect, &sql) {
                Ok(stmts) if stmts.len() == 1 => {}
                Ok(_) => {
                    return Err(named(
                        f,
                        "backfill",
                        Error::refused("set/where hold more than one statement; give one assignment list and one expression"),
                    ))
                }
                Err(e) => return Err(named(f, "backfill", Error::refused(format!("set/where do not form one UPDATE: {e}")))),
            }
        }
    }
    Ok(())
}

fn alter_texts<'a>(section: &'static str, s: &'a AlterSection) -> Vec<(&'static str, &'a str)> {
    let (a, r) = match section {
        "expand" => ("expand alter", "expand revert"),
        _ => ("contract alter", "contract revert"),
    };
    let mut v = vec![(a, s.alter.as_str())];
    if let Some(rev) = &s.revert {
        v.push((r, rev.as_str()));
    }
    v
}

/// Run one phase of `file`; returns its one-line detail.
#[allow(clippy::too_many_arguments)]
async fn apply_phase<D: Dialect>(
    d: &Arc<D>,
    replicas: &[Arc<D>],
    file: &MigrationFile,
    phase: PhaseKind,
    table: &TableRef,
    config: &MigrationConfig,
    cancel: &CancellationToken,
    progress: &watch::Sender<Progress>,
) -> Result<String> {
    match phase {
        PhaseKind::Expand => {
            let alter = &file.expand.as_ref().expect("pending lists only present phases").alter;
            apply_alter(d, replicas, table, alter, config, cancel).await
        }
        PhaseKind::Backfill => {
            let spec = file.backfill_spec().expect("pending lists only present phases");
            match backfill::run(d, replicas, table, &spec, config, true, cancel, progress).await? {
                BackfillOutcome::Done(r) => Ok(format!(
                    "backfilled {} rows in {} chunk(s) over {} pass(es) in {:.1} s; {} rows still match",
                    r.rows_updated,
                    r.chunks,
                    r.passes,
                    r.elapsed.as_secs_f64(),
                    r.still_matching
                )),
                BackfillOutcome::DryRun(_) => unreachable!("config.execute is set"),
            }
        }
        PhaseKind::Contract => {
            let alter = &file.contract.as_ref().expect("pending lists only present phases").alter;
            let r = contract::run(d, table, alter, config, cancel).await?;
            let steps: Vec<String> = r
                .steps
                .iter()
                .map(|(what, t, attempts)| format!("{what} ({} ms, {attempts} attempt(s))", t.as_millis()))
                .collect();
            Ok(format!("contracted in {:.1} s: {}", r.elapsed.as_secs_f64(), steps.join("; ")))
        }
    }
}

/// Apply `alter` to `table` the cheapest safe way: through [`Runner`] with
/// `attempt_instant_ddl` (in place when metadata-only, otherwise the shadow copy). Returns how.
async fn apply_alter<D: Dialect>(
    d: &Arc<D>,
    replicas: &[Arc<D>],
    table: &TableRef,
    alter: &str,
    config: &MigrationConfig,
    cancel: &CancellationToken,
) -> Result<String> {
    let cfg = MigrationConfig { execute: true, attempt_instant_ddl: true, ..config.clone() };
    let runner = Runner::new(d.clone(), cfg).with_replicas(replicas.to_vec());
    let token = runner.cancel_token();
    let link = {
        let (outer, token) = (cancel.clone(), token.clone());
        tokio::spawn(async move {
            outer.cancelled().await;
            token.cancel();
        })
    };
    let result = runner.run(table, alter).await;
    link.abort();
    match result? {
        Outcome::Swapped(s) if s.in_place => {
            Ok(format!("{alter}: in place, metadata-only ({} ms under the lock)", s.cut_over.swap_time.as_millis()))
        }
        Outcome::Swapped(s) => Ok(format!(
            "{alter}: shadow copy ({} rows copied, swapped in {} ms)",
            s.backfill.rows + s.backfill.rows_before,
            s.cut_over.swap_time.as_millis()
        )),
        Outcome::DryRun(_) => unreachable!("execute is set"),
    }
}

/// The dry run's text: per pending file and phase, the way it goes and its statements, from the
/// same code the run uses (the Runner's plan, the backfill's and contract's dry runs). A phase
/// after a pending phase of the same file is shown by its fragments only: the server can judge
/// it once the phase before it is applied.
async fn dry_run<D: Dialect>(
    d: &Arc<D>,
    schema: &str,
    files: &[MigrationFile],
    history: &[HistoryRow],
    opts: &MigrateOptions,
    config: &MigrationConfig,
) -> Result<String> {
    let hist = history_table(schema);
    let mut out = String::new();
    if let Some(which) = &opts.rollback {
        let file = find_file(files, which)?;
        out += &format!("rollback {} (table {}), newest first:\n", file.name, file.table_ref(schema));
        for step in rollback_plan(file, history)? {
            match step.revert {
                None => out += &format!("  {}: no revert (a backfill's values stay); recorded as reverted\n", step.phase),
                Some(r) => {
                    out += &format!("  {}: ALTER TABLE … {r} (in place when metadata-only, else shadow copy)\n", step.phase)
                }
            }
        }
        out += &format!("each revert recorded in {hist}\n");
        return Ok(out);
    }
    let todo = pending(files, history, opts.only)?;
    precheck(files, &todo, d.sql_dialect())?;
    if todo.is_empty() {
        return Ok(format!("nothing pending: every phase of the {} migration file(s) is applied ({hist})\n", files.len()));
    }
    let dry = MigrationConfig { execute: false, attempt_instant_ddl: true, ..config.clone() };
    for (n, &(i, phase)) in todo.iter().enumerate() {
        let file = &files[i];
        let table = file.table_ref(schema);
        out += &format!("== {} {phase} (table {table})\n", file.name);
        let earlier_pending = todo[..n].iter().any(|&(j, _)| j == i);
        match phase {
            PhaseKind::Expand => {
                let alter = &file.expand.as_ref().expect("present").alter;
                match Runner::new(d.clone(), dry.clone()).run(&table, alter).await? {
                    Outcome::DryRun(plan) if plan.metadata_only == Some(true) => {
                        out += "way: in place, metadata-only (the server says so), under the cut-over lock timeout\n";
                        let sql = d.migrate_in_place_sql(&table, alter, config.cut_over.lock_timeout);
                        if sql.is_empty() {
                            out += &plan.render();
                        }
                        for q in sql {
                            out += &format!("  {q};\n");
                        }
                    }
                    Outcome::DryRun(plan) => {
                        out += "way: shadow copy (not metadata-only here, or the server cannot tell)\n";
                        out += &plan.render();
                    }
                    Outcome::Swapped(_) => unreachable!("dry run"),
                }
            }
            PhaseKind::Backfill => {
                let spec = file.backfill_spec().expect("present");
                if earlier_pending {
                    out += &format!(
                        "way: in-place batched UPDATE SET {} WHERE {} (passes until no row matches); \
                         checked against the server once the phase before it is applied\n",
                        spec.set, spec.where_
                    );
                } else {
                    let (tx, _) = watch::channel(Progress::default());
                    match backfill::run(d, &[], &table, &spec, &dry, true, &CancellationToken::new(), &tx).await? {
                        BackfillOutcome::DryRun(text) => out += &text,
                        BackfillOutcome::Done(_) => unreachable!("dry run"),
                    }
                }
            }
            PhaseKind::Contract => {
                let alter = &file.contract.as_ref().expect("present").alter;
                if earlier_pending {
                    out += &format!(
                        "way: contract steps for ALTER TABLE … {alter}; planned against the server once the phases before it are applied\n"
                    );
                } else {
                    out += &contract::plan(d, &table, alter, &dry).await?.render();
                }
            }
        }
        if !out.ends_with('\n') {
            out.push('\n');
        }
        out += &format!("  history: recorded in {hist} (running, then applied or failed)\n");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOTE: &str = r#"# migrations/0007_add_note.toml
table = "orders"
[expand]
alter = "ADD COLUMN note varchar(64) NULL"
revert = "DROP COLUMN note"
[backfill]
set = "note = concat('#', id)"
where = "note IS NULL"
[contract]
alter = "ALTER COLUMN note SET NOT NULL"
revert = "ALTER COLUMN note DROP NOT NULL"
"#;

    fn row(id: i64, file: &str, phase: &str, sum: &str, outcome: &str) -> HistoryRow {
        HistoryRow {
            id,
            file: file.into(),
            phase: phase.into(),
            checksum: sum.into(),
            started_at: "2026-12-05 07:00:00".into(),
            finished_at: Some("2026-12-05 07:00:01".into()),
            applied_by: "ssw from 127.0.0.1".into(),
            outcome: outcome.into(),
            error: (outcome == outcome::FAILED).then(|| "boom".into()),
        }
    }

    #[test]
    fn parses_the_issue_example() {
        let f = parse_file("0007_add_note.toml", NOTE).unwrap();
        assert_eq!(f.version, "0007");
        assert_eq!(f.table, "orders");
        assert_eq!(f.expand.as_ref().unwrap().revert.as_deref(), Some("DROP COLUMN note"));
        assert_eq!(f.backfill_spec().unwrap().where_, "note IS NULL");
        assert_eq!(f.phases(), PhaseKind::ALL.to_vec());
        assert_eq!(f.checksum, checksum(NOTE.as_bytes()));
        assert_eq!(f.checksum.len(), 64);
        assert_eq!(f.table_ref("shop"), TableRef::new("shop", "orders"));
        let only = parse_file("0008_x.toml", "table = \"app.t\"\n[contract]\nalter = \"ADD UNIQUE (a)\"\n").unwrap();
        assert_eq!(only.phases(), vec![PhaseKind::Contract]);
        assert_eq!(only.table_ref("shop"), TableRef::new("app", "t"));
    }

    #[test]
    fn checksum_is_sha256_hex() {
        assert_eq!(checksum(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }

    #[test]
    fn errors_name_the_file_and_line() {
        let bad = "table = \"t\"\n[expand]\nalter = \"ADD COLUMN a int\"\nrevret = \"DROP COLUMN a\"\n";
        let e = parse_file("0001_a.toml", bad).unwrap_err().to_string();
        assert!(e.starts_with("0001_a.toml:4: "), "{e}");
        assert!(e.contains("revret"), "{e}");
        assert!(!e.contains('\n'), "one line: {e}");
        let e = parse_file("0001_a.toml", "table = \"t\"\n\n[backfill]\nset = \"a = 1\"\n").unwrap_err().to_string();
        assert!(e.starts_with("0001_a.toml:") && e.contains("where"), "{e}");
        let e = parse_file("0001_a.toml", "table = \"t\"\n[expand\n").unwrap_err().to_string();
        assert!(e.starts_with("0001_a.toml:2: "), "{e}");
        let e = parse_file("0001_a.toml", "table = \"t\"\n").unwrap_err().to_string();
        assert!(e.contains("no [expand]"), "{e}");
        let e = parse_file("0001_a.toml", "[expand]\nalter = \"x\"\n").unwrap_err().to_string();
        assert!(e.contains("table"), "{e}");
        let e = parse_file("add_note.toml", NOTE).unwrap_err().to_string();
        assert!(e.contains("NNNN_name.toml"), "{e}");
        let e = parse_file("0001_a.toml", "table = \"t\"\nextra = 1\n[expand]\nalter = \"x\"\n").unwrap_err().to_string();
        assert!(e.starts_with("0001_a.toml:2: ") && e.contains("extra"), "{e}");
    }

    #[test]
    fn versions() {
        assert_eq!(version_of("0007_add_note.toml").as_deref(), Some("0007"));
        assert_eq!(version_of("12_x.toml").as_deref(), Some("12"));
        assert_eq!(version_of("0007_.toml"), None);
        assert_eq!(version_of("v7_x.toml"), None);
        assert_eq!(version_of("0007_x.yaml"), None);
    }

    #[test]
    fn load_dir_orders_by_name_and_refuses_duplicate_versions() {
        let dir = std::env::temp_dir().join(format!("ssw_migrate_unit_{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("0002_b.toml"), "table = \"t\"\n[expand]\nalter = \"ADD COLUMN b int\"\n").unwrap();
        std::fs::write(dir.join("0001_a.toml"), "table = \"t\"\n[expand]\nalter = \"ADD COLUMN a int\"\n").unwrap();
        std::fs::write(dir.join("README.md"), "not a migration").unwrap();
        let files = load_dir(&dir).unwrap();
        assert_eq!(files.iter().map(|f| f.name.as_str()).collect::<Vec<_>>(), ["0001_a.toml", "0002_b.toml"]);
        std::fs::write(dir.join("0002_c.toml"), "table = \"t\"\n[expand]\nalter = \"ADD COLUMN c int\"\n").unwrap();
        let e = load_dir(&dir).unwrap_err().to_string();
        assert!(e.contains("same version 0002"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(load_dir(&dir).unwrap_err().to_string().contains("--dir"));
    }

    fn two() -> Vec<MigrationFile> {
        vec![
            parse_file("0007_add_note.toml", NOTE).unwrap(),
            parse_file("0008_idx.toml", "table = \"orders\"\n[expand]\nalter = \"ADD COLUMN x int\"\n").unwrap(),
        ]
    }

    #[test]
    fn pending_in_file_order_and_by_phase() {
        let files = two();
        let all = pending(&files, &[], None).unwrap();
        use PhaseKind::*;
        assert_eq!(all, vec![(0, Expand), (0, Backfill), (0, Contract), (1, Expand)]);
        assert_eq!(pending(&files, &[], Some(Expand)).unwrap(), vec![(0, Expand), (1, Expand)]);
        let e = pending(&files, &[], Some(Contract)).unwrap_err().to_string();
        assert!(e.contains("0007_add_note.toml: its expand is not applied yet"), "{e}");
        let sum = files[0].checksum.clone();
        let h = vec![row(1, "0007_add_note.toml", "expand", &sum, outcome::APPLIED)];
        assert_eq!(pending(&files, &h, Some(Backfill)).unwrap(), vec![(0, Backfill)]);
        assert_eq!(pending(&files, &h, None).unwrap(), vec![(0, Backfill), (0, Contract), (1, Expand)]);
        // Everything applied: nothing pending (the second run is a no-op).
        let mut h: Vec<HistoryRow> = ["expand", "backfill", "contract"]
            .iter()
            .enumerate()
            .map(|(i, p)| row(i as i64 + 1, "0007_add_note.toml", p, &sum, outcome::APPLIED))
            .collect();
        h.push(row(9, "0008_idx.toml", "expand", &files[1].checksum, outcome::APPLIED));
        assert!(pending(&files, &h, None).unwrap().is_empty());
        // A failed, interrupted or reverted phase runs again.
        for o in [outcome::FAILED, outcome::RUNNING, outcome::REVERTED] {
            let mut h2 = h.clone();
            h2.push(row(10, "0008_idx.toml", "expand", &files[1].checksum, o));
            assert_eq!(pending(&files, &h2, None).unwrap(), vec![(1, Expand)], "{o}");
        }
        // A failed revert leaves the phase applied.
        let mut h3 = h.clone();
        h3.push(row(10, "0008_idx.toml", "expand", &files[1].checksum, outcome::REVERT_FAILED));
        assert!(pending(&files, &h3, None).unwrap().is_empty());
    }

    #[test]
    fn an_edited_applied_file_is_refused_by_name() {
        let files = two();
        let h = vec![row(1, "0007_add_note.toml", "expand", &checksum(b"the old text"), outcome::APPLIED)];
        let e = pending(&files, &h, None).unwrap_err().to_string();
        assert!(e.contains("migration file 0007_add_note.toml was edited after its expand was applied"), "{e}");
        assert!(rollback_plan(&files[0], &h).unwrap_err().to_string().contains("edited"));
        // A failed attempt with another checksum is not "applied": editing a failed file is fine.
        let h = vec![row(1, "0007_add_note.toml", "expand", &checksum(b"old"), outcome::FAILED)];
        assert_eq!(pending(&files, &h, None).unwrap().len(), 4);
        assert!(render_status(&files, &[row(1, "0007_add_note.toml", "expand", "0ld", outcome::APPLIED)]).contains("EDITED"));
    }

    #[test]
    fn rollback_newest_first() {
        let files = two();
        let sum = files[0].checksum.clone();
        let h: Vec<HistoryRow> = ["expand", "backfill", "contract"]
            .iter()
            .enumerate()
            .map(|(i, p)| row(i as i64 + 1, "0007_add_note.toml", p, &sum, outcome::APPLIED))
            .collect();
        let f = find_file(&files, "0007").unwrap();
        assert_eq!(find_file(&files, "7").unwrap().name, f.name);
        assert_eq!(find_file(&files, "0007_add_note.toml").unwrap().name, f.name);
        assert!(find_file(&files, "0009").is_err());
        let steps = rollback_plan(f, &h).unwrap();
        assert_eq!(
            steps,
            vec![
                RevertStep { phase: PhaseKind::Contract, revert: Some("ALTER COLUMN note DROP NOT NULL".into()) },
                RevertStep { phase: PhaseKind::Backfill, revert: None },
                RevertStep { phase: PhaseKind::Expand, revert: Some("DROP COLUMN note".into()) },
            ]
        );
        // Only the applied phases.
        assert_eq!(rollback_plan(f, &h[..1]).unwrap().len(), 1);
        assert!(rollback_plan(f, &[]).unwrap_err().to_string().contains("nothing of it is applied"));
        // An applied phase without revert: refused before anything runs.
        let g = &files[1];
        let h = vec![row(1, &g.name, "expand", &g.checksum, outcome::APPLIED)];
        let e = rollback_plan(g, &h).unwrap_err().to_string();
        assert!(e.contains("0008_idx.toml: its expand is applied but has no `revert`"), "{e}");
    }

    #[test]
    fn status_lists_applied_and_pending() {
        let files = two();
        let sum = files[0].checksum.clone();
        let mut h = vec![row(1, "0007_add_note.toml", "expand", &sum, outcome::APPLIED)];
        h.push(row(2, "0007_add_note.toml", "backfill", &sum, outcome::FAILED));
        h.push(row(3, "0006_gone.toml", "expand", "x", outcome::APPLIED));
        let s = render_status(&files, &h);
        assert!(s.contains("  expand    applied  2026-12-05 07:00:01 by ssw from 127.0.0.1\n"), "{s}");
        assert!(s.contains("  backfill  pending (failed 2026-12-05 07:00:00: boom)\n"), "{s}");
        assert!(s.contains("  contract  pending\n"), "{s}");
        assert!(s.contains("0006_gone.toml: in the history but not in the directory"), "{s}");
        assert!(s.ends_with("1 phase(s) applied, 3 pending\n"), "{s}");
    }

    #[test]
    fn fragments_are_checked_before_anything_runs() {
        let d = sqlparser::dialect::PostgreSqlDialect {};
        let files = two();
        let all = pending(&files, &[], None).unwrap();
        precheck(&files, &all, &d).unwrap();
        let bad = |text: &str| {
            let f = vec![parse_file("0009_bad.toml", text).unwrap()];
            let todo = pending(&f, &[], None).unwrap();
            precheck(&f, &todo, &d).unwrap_err().to_string()
        };
        let e = bad("table = \"t\"\n[expand]\nalter = \"ADD COLUMN a int; DROP TABLE t\"\n");
        assert!(e.starts_with("0009_bad.toml [expand alter]: "), "{e}");
        let e = bad("table = \"t\"\n[contract]\nalter = \"ALTER COLUMN a SET NOT NULL\"\nrevert = \"x; y\"\n");
        assert!(e.starts_with("0009_bad.toml [contract revert]: "), "{e}");
        let e = bad("table = \"t\"\n[backfill]\nset = \"a = 1; DELETE FROM t\"\nwhere = \"a IS NULL\"\n");
        assert!(e.starts_with("0009_bad.toml [backfill]: "), "{e}");
        let e = bad("table = \"t\"\n[backfill]\nset = \"a = \"\nwhere = \"a IS NULL\"\n");
        assert!(e.contains("do not form one UPDATE"), "{e}");
    }

    #[test]
    fn lock_names_fit_mariadb() {
        assert_eq!(lock_name(&history_table("shop")), "shadowswap:migrate:shop.shadowswap_migrations");
        let long = lock_name(&history_table(&"s".repeat(64)));
        assert!(long.len() <= 64, "{long}");
    }
}
