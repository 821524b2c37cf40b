//! The command line: clap's argument structs, and [`AlterArgs::config`] / [`BackfillArgs::config`] / [`ContractArgs::config`],
//! which turn them into the engine's [`MigrationConfig`]. The chunk and throttle flags are one
//! group each ([`ChunkArgs`], [`ThrottleArgs`], and the lock flags [`LockArgs`]), flattened into every command that has them. Defaults not offered as flags come from the engine's
//! `Default`s.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use shadowswap_engine::config::{
    ChecksumConfig, CopyConfig, CutOverConfig, DdlConfig, ReconnectConfig, Threshold, ThrottleConfig,
};
use shadowswap_engine::fault::{FaultKind, FaultSpec};
use shadowswap_engine::staged::backfill::BackfillSpec;
use shadowswap_engine::staged::migrate::{MigrateOptions, PhaseKind};
use shadowswap_engine::throttle::window::CutOverWindow;
use shadowswap_engine::{MigrationConfig, Phase, TableRef};

/// Online ALTER TABLE for MariaDB/MySQL and PostgreSQL: shadow table, capture triggers, chunked backfill,
/// checksum, atomic cut-over.
#[derive(Parser, Debug)]
// `about` without a value: the first line of `--help` is the package description in
// cli/Cargo.toml.
#[command(name = "shadowswap", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// `--log-format`: text (human-readable lines, a progress bar on a terminal) or json (one JSON
/// object per line, the summary too).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    // (No doc comments on the variants: clap would show them in --help.)
    Text,
    Json,
}

// Parsed once per process: the size of the larger variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
/// The subcommands.
pub enum Command {
    /// Run an ALTER TABLE online. Without --execute: a dry run that checks and prints the plan.
    Alter(AlterArgs),
    /// Remove what an interrupted run left on a table (capture triggers, shadow table).
    Cleanup(TargetArgs),
    /// Swap back to the table as it was before the ALTER, within its revert window. Without
    /// --execute: print what it would do.
    Revert(RevertArgs),
    /// Close a revert window now: drop the reverse capture and the old table, keep the new table.
    /// Without --execute: print what it would do.
    Finish(FinishArgs),
    /// Update a table in place, chunk by chunk (the staged path's backfill): UPDATE t SET --set
    /// WHERE --where. Without --execute: a dry run.
    Backfill(BackfillArgs),
    /// Apply versioned migration files (expand → backfill → contract) from --dir, recorded in
    /// the server's shadowswap_migrations table; `migrate status` lists them. Without
    /// --execute: a dry run.
    Migrate(MigrateArgs),
    /// Add constraints without a long lock (the staged path's contract): SET NOT NULL, UNIQUE,
    /// FOREIGN KEY, CHECK, each the non-blocking way. Without --execute: a dry run.
    Contract(ContractArgs),
}

/// `shadowswap contract`: the target, the contract ALTER, the lock flags.
#[derive(Args, Debug)]
pub struct ContractArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// What follows ALTER TABLE t, e.g. "ALTER COLUMN note SET NOT NULL" (PostgreSQL) or
    /// "MODIFY note varchar(64) NOT NULL" (MariaDB); several clauses separated by commas.
    #[arg(long)]
    pub alter: String,
    /// Run the steps. Without it, a dry run: each step's technique, statements, lock, longest
    /// write blocking and whether it scans, printed; nothing changed.
    #[arg(long)]
    pub execute: bool,
    #[command(flatten)]
    lock: LockArgs,
}

impl ContractArgs {
    /// The engine's configuration: the lock flags as the cut-over's (and the DDL's) lock timeout
    /// and retries; everything else the engine's defaults (used by a MariaDB step that goes
    /// through the shadow copy).
    pub fn config(&self) -> MigrationConfig {
        MigrationConfig {
            execute: self.execute,
            cut_over: CutOverConfig {
                lock_timeout: self.lock.cut_over_lock_timeout,
                retries: self.lock.cut_over_retries,
                ..CutOverConfig::default()
            },
            ddl: DdlConfig { lock_timeout: self.lock.cut_over_lock_timeout, ..DdlConfig::default() },
            ..MigrationConfig::default()
        }
    }
}

/// `shadowswap revert`: the target and the cut-over controller's settings for the swap back.
#[derive(Args, Debug)]
pub struct RevertArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// Swap back. Without it, a dry run: the checks, and the SQL it would run.
    #[arg(long)]
    pub execute: bool,
    /// How long each attempt of the swap back waits for its locks. MariaDB counts whole seconds.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "2s")]
    cut_over_lock_timeout: Duration,
    /// Before each attempt, wait at most this long for open transactions that would make the lock
    /// request queue; 0s attempts at once.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "30s")]
    cut_over_blocker_wait: Duration,
    /// Attempts after the first, with exponential backoff and jitter between them.
    #[arg(long, default_value_t = 10)]
    cut_over_retries: u32,
}

impl RevertArgs {
    /// The cut-over controller's settings for the swap back, and the DDL settings.
    pub fn config(&self) -> (CutOverConfig, DdlConfig) {
        (
            CutOverConfig {
                lock_timeout: self.cut_over_lock_timeout,
                retries: self.cut_over_retries,
                blocker_wait: self.cut_over_blocker_wait,
                ..CutOverConfig::default()
            },
            DdlConfig { lock_timeout: self.cut_over_lock_timeout, ..DdlConfig::default() },
        )
    }
}

/// `shadowswap finish`: the target.
#[derive(Args, Debug)]
pub struct FinishArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// Close the window. Without it, a dry run: the checks, and the SQL it would run.
    #[arg(long)]
    pub execute: bool,
}

/// The server and table a command works on.
#[derive(Args, Debug)]
pub struct TargetArgs {
    /// mysql://USER:PASSWORD@HOST:PORT/DATABASE or postgres://USER:PASSWORD@HOST:PORT/DATABASE?sslmode=…
    /// (the password, the port and sslmode are optional). The password may instead be given in
    /// MYSQL_PWD or PGPASSWORD.
    #[arg(long)]
    pub dsn: String,
    /// The table: NAME (in the DSN's database; PostgreSQL: the current schema) or DATABASE.NAME / SCHEMA.NAME.
    #[arg(long)]
    pub table: String,
}

/// `shadowswap alter`: the target, the ALTER, and every setting of the run.
#[derive(Args, Debug)]
pub struct AlterArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// What follows ALTER TABLE t, e.g. "ADD COLUMN c INT NULL, DROP COLUMN d".
    #[arg(long)]
    pub alter: String,
    /// Migrate. Without it, a dry run: every preflight check, the plan printed, nothing changed.
    #[arg(long)]
    execute: bool,
    #[command(flatten)]
    chunk: ChunkArgs,
    /// Keep the old table as _T_old after the swap (default: drop it).
    #[arg(long)]
    keep_old_table: bool,
    /// While this file exists, stay in sync and do not cut over; cut over once it is removed.
    #[arg(long, value_name = "PATH")]
    postpone_cut_over_flag_file: Option<PathBuf>,
    /// Allow an ALTER that renames columns (CHANGE old new …, RENAME COLUMN); data is carried over.
    #[arg(long)]
    approve_renamed_columns: bool,
    #[command(flatten)]
    lock: LockArgs,
    /// Before each cut-over attempt, wait at most this long for open transactions that would make
    /// the lock request queue (and every query behind it) to end; 0s attempts at once.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "30s")]
    cut_over_blocker_wait: Duration,
    /// Skip the checksum of original against shadow before the cut-over.
    #[arg(long)]
    no_checksum: bool,
    /// Checksum chunks compared at once, each in its own session and snapshot (1 to 16). More
    /// than the server's cores buys nothing.
    #[arg(long, value_name = "N", default_value_t = ChecksumConfig::default().threads as u64,
          value_parser = clap::value_parser!(u64).range(1..=ChecksumConfig::MAX_THREADS as u64))]
    checksum_threads: u64,
    /// Target time per checksum chunk; the chunk size adapts to it (--chunk-time and --chunk-size
    /// are the copy's).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "500ms")]
    checksum_chunk_time: Duration,
    /// When the server can apply the ALTER without rewriting or scanning the table (PostgreSQL:
    /// the dry run says "metadata-only: yes"), apply it in place under the cut-over lock timeout
    /// and retries instead of copying. Otherwise copy as usual.
    #[arg(long)]
    attempt_instant_ddl: bool,
    #[command(flatten)]
    pub throttle: ThrottleArgs,
    /// Cut over only inside this daily window, e.g. "02:00-04:30" or "02:00-04:30 Europe/Berlin"
    /// (default UTC); until it opens the run stays in sync.
    #[arg(long, value_name = "HH:MM-HH:MM [TZ]")]
    cut_over_window: Option<CutOverWindow>,
    /// After the swap, keep the old table in sync with the new one for this long (e.g. 30m), so
    /// `shadowswap revert` can swap back; `shadowswap finish` closes the window early.
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration, conflicts_with_all = ["attempt_instant_ddl", "keep_old_table"])]
    revert_window: Option<Duration>,
    /// When the connection to the server breaks (restart, KILL, a proxy), keep reconnecting this
    /// long, then continue from the checkpoint; after it, stop leaving everything for a resume.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "5m")]
    reconnect_timeout: Duration,
    /// Rehearsal on a clone: inject a fault (repeatable), KIND@PHASE optionally followed by :N%
    /// and :DURATION, e.g. kill-connection@backfill:50%, blocker@cut-over:10s,
    /// replica-pause@backfill:20s, crash@checksum, lock-storm@cut-over:10s, crash@cleanup (after the
    /// swap; crash only, not with --revert-window). Only with --execute.
    /// See docs/rehearsal.md.
    #[arg(long = "inject-fault", value_name = "SPEC")]
    faults: Vec<FaultSpec>,
}

/// The lock flags `alter`, `contract` and `migrate` share: how long each statement that takes a
/// write-blocking lock waits for it, and how often it is tried.
#[derive(Args, Debug)]
pub struct LockArgs {
    /// How long each cut-over attempt (and each trigger DDL; contract: each statement) waits for
    /// its locks. MariaDB counts whole seconds, and first asks for the swap's and the triggers'
    /// lock without queueing, every 10 ms, for this long (docs/cut-over.md).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "2s")]
    pub cut_over_lock_timeout: Duration,
    /// Cut-over attempts (contract: attempts of each statement) after the first, with exponential
    /// backoff and jitter between them.
    #[arg(long, default_value_t = 10)]
    pub cut_over_retries: u32,
}

/// The chunk flags `alter`, `backfill` and `migrate` share: how big each chunk is.
#[derive(Args, Debug)]
pub struct ChunkArgs {
    /// Target time per chunk; the chunk size adapts to it. Default: 500ms for the copy (`alter`),
    /// 100ms for the in-place UPDATE of a backfill (the application's writes wait on its rows).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub chunk_time: Option<Duration>,
    /// A fixed chunk size in rows, instead of adapting to --chunk-time.
    #[arg(long, conflicts_with = "chunk_time")]
    pub chunk_size: Option<u64>,
    /// The longest a chunk of the copy aims to hold its row locks while the application's
    /// writers wait for them: when a chunk sees writers waiting as it commits (or finds rows the
    /// application wrote ahead of the copy), the next chunks aim at it and the copy pauses after
    /// each as long as it took. The copy starts at 10 ms (or
    /// at this time if longer). The time doubles towards --chunk-time after 20 chunks and 2 s of
    /// copying that no writer waited for. Not with --chunk-size.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "5ms")]
    pub max_latency: Duration,
}

impl ChunkArgs {
    /// The engine's copy settings for these flags (the rest: the engine's defaults).
    pub fn config(&self) -> CopyConfig {
        let d = CopyConfig::default();
        CopyConfig {
            chunk_time: self.chunk_time.unwrap_or(d.chunk_time),
            update_chunk_time: self.chunk_time.unwrap_or(d.update_chunk_time),
            fixed_chunk_rows: self.chunk_size,
            max_latency: self.max_latency,
            ..d
        }
    }
}

/// The throttle flags `alter`, `backfill` and `migrate` share: what pauses the work between chunks.
#[derive(Args, Debug)]
pub struct ThrottleArgs {
    /// A replica of the server to watch for lag (repeatable). Copying pauses while one lags more
    /// than --max-lag or cannot be reached; the cut-over waits for all to be within it.
    #[arg(long = "replica", value_name = "DSN")]
    pub replicas: Vec<String>,
    /// Largest replica lag tolerated, measured with shadowswap's own heartbeat.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "1s")]
    pub max_lag: Duration,
    /// Pause copying while a load figure is above a limit: VAR=N (repeatable, or comma-separated).
    /// MySQL: global status variables such as Threads_running=25; PostgreSQL: active_backends=N.
    #[arg(long, value_name = "VAR=N", value_delimiter = ',')]
    pub max_load: Vec<Threshold>,
    /// Stop the run (removing what it created) when a load figure is above a limit: VAR=N.
    #[arg(long, value_name = "VAR=N", value_delimiter = ',')]
    pub critical_load: Vec<Threshold>,
    /// Pause copying while this query's first column is non-zero (run on the primary).
    #[arg(long, value_name = "SQL")]
    pub throttle_query: Option<String>,
    /// Pause copying while this file exists.
    #[arg(long, value_name = "PATH")]
    pub throttle_flag_file: Option<PathBuf>,
}

impl ThrottleArgs {
    /// The engine's throttle settings for these flags (the rest: the engine's defaults).
    pub fn config(&self) -> ThrottleConfig {
        ThrottleConfig {
            max_lag: self.max_lag,
            max_load: self.max_load.clone(),
            critical_load: self.critical_load.clone(),
            throttle_query: self.throttle_query.clone(),
            flag_file: self.throttle_flag_file.clone(),
            ..ThrottleConfig::default()
        }
    }
}

/// `shadowswap backfill`: the target, the fragments of the in-place UPDATE, the chunk and
/// throttle settings.
#[derive(Args, Debug)]
pub struct BackfillArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// What follows SET in the UPDATE, e.g. "note = concat('#', id)". Never a chunk-key column.
    #[arg(long)]
    pub set: String,
    /// The rows still to backfill, e.g. "note IS NULL": only rows matching it are updated, so
    /// running again is harmless.
    #[arg(long = "where", value_name = "EXPR")]
    pub where_: String,
    /// Update. Without it, a dry run: every check, the statements, the chunk key and an
    /// estimate of the matching rows printed, nothing changed.
    #[arg(long)]
    pub execute: bool,
    /// After a pass, walk the table again while rows still match --where (writers may still
    /// write old-shape rows), at most 10 passes.
    #[arg(long)]
    pub until_none: bool,
    #[command(flatten)]
    pub chunk: ChunkArgs,
    #[command(flatten)]
    pub throttle: ThrottleArgs,
}

impl BackfillArgs {
    /// The engine's configuration for these arguments; everything not given as a flag keeps the
    /// engine's default.
    pub fn config(&self) -> MigrationConfig {
        MigrationConfig {
            execute: self.execute,
            copy: self.chunk.config(),
            throttle: self.throttle.config(),
            ..MigrationConfig::default()
        }
    }

    /// The fragments, as the engine takes them.
    pub fn spec(&self) -> BackfillSpec {
        BackfillSpec { set: self.set.clone(), where_: self.where_.clone() }
    }
}

/// How often progress is published when a fault fires at a percentage (`--inject-fault …:N%`).
const FAULT_PROGRESS_INTERVAL: Duration = Duration::from_millis(100);

impl AlterArgs {
    /// The engine's configuration for these arguments; everything not given as a flag keeps the
    /// engine's default.
    pub fn config(&self) -> MigrationConfig {
        MigrationConfig {
            execute: self.execute,
            approve_renamed_columns: self.approve_renamed_columns,
            attempt_instant_ddl: self.attempt_instant_ddl,
            copy: CopyConfig {
                // A fault at N% of the backfill or checksum fires on the published progress:
                // publish it often enough to fire close to the mark.
                progress_interval: if self.faults.iter().any(|f| f.at_percent.is_some()) {
                    FAULT_PROGRESS_INTERVAL
                } else {
                    CopyConfig::default().progress_interval
                },
                ..self.chunk.config()
            },
            checksum: ChecksumConfig {
                enabled: !self.no_checksum,
                threads: self.checksum_threads as usize,
                chunk_time: self.checksum_chunk_time,
                gentle: false,
            },
            cut_over: CutOverConfig {
                lock_timeout: self.lock.cut_over_lock_timeout,
                retries: self.lock.cut_over_retries,
                keep_old_table: self.keep_old_table,
                postpone_flag_file: self.postpone_cut_over_flag_file.clone(),
                window: self.cut_over_window.clone(),
                blocker_wait: self.cut_over_blocker_wait,
                ..CutOverConfig::default()
            },
            ddl: DdlConfig { lock_timeout: self.lock.cut_over_lock_timeout, ..DdlConfig::default() },
            throttle: self.throttle.config(),
            revert_window: self.revert_window,
            faults: self.faults.clone(),
            reconnect: ReconnectConfig { timeout: self.reconnect_timeout, ..ReconnectConfig::default() },
        }
    }

    /// Combinations the flags cannot express: `--inject-fault` only with `--execute` (a dry run
    /// injects nothing), `replica-pause` only with a `--replica`, `crash@cleanup` not with
    /// `--revert-window`. Errors: the usage message.
    pub fn check(&self) -> Result<(), String> {
        if !self.faults.is_empty() && !self.execute {
            return Err(
                "--inject-fault needs --execute (a dry run injects nothing); rehearse on a clone, never on production".into()
            );
        }
        if let Some(f) = self.faults.iter().find(|f| f.kind == FaultKind::ReplicaPause) {
            if self.throttle.replicas.is_empty() {
                return Err(format!("--inject-fault {f} needs a --replica whose apply it pauses"));
            }
        }
        if let Some(f) = self.faults.iter().find(|f| f.phase == Phase::Cleanup) {
            if self.revert_window.is_some() {
                return Err(format!(
                    "--inject-fault {f} rehearses the cleanup right after the swap, which --revert-window postpones; drop one of the two"
                ));
            }
        }
        Ok(())
    }
}

impl TargetArgs {
    /// `--table` as a table reference: `DATABASE.NAME` / `SCHEMA.NAME`, or `NAME` in
    /// `default_schema` (the DSN's database; PostgreSQL: the current schema). Errors: the usage
    /// message.
    pub fn table_ref(&self, default_schema: Option<&str>) -> Result<TableRef, String> {
        let table = &self.table;
        match table.split_once('.') {
            Some((schema, name)) if !schema.is_empty() && !name.is_empty() => Ok(TableRef::new(schema, name)),
            Some(_) => Err(format!("--table {table:?} is not NAME or DATABASE.NAME")),
            None => match default_schema {
                Some(s) => Ok(TableRef::new(s, table)),
                None => Err("the DSN names no database: add /DATABASE to it, or give --table DATABASE.NAME".into()),
            },
        }
    }
}

/// `shadowswap migrate`: the server, the migrations directory, what to run, and the settings
/// its phases share with `alter`, `backfill` and `contract`.
#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct MigrateArgs {
    /// `migrate status`: list applied and pending phases (changes nothing).
    #[command(subcommand)]
    pub status: Option<MigrateCommand>,
    #[command(flatten)]
    pub place: MigratePlace,
    /// Only this phase of every pending file: expand (before deploying the code that writes the
    /// new shape), backfill, or contract (after). Default: every pending phase, file by file.
    #[arg(long)]
    pub phase: Option<PhaseKind>,
    /// Run the reverts of this file's applied phases, newest first (contract, then expand; a
    /// backfill has none): its version (0007) or file name.
    #[arg(long, value_name = "VERSION", conflicts_with = "phase")]
    pub rollback: Option<String>,
    /// Apply. Without it, a dry run: per file and phase, the way it goes and its statements.
    #[arg(long)]
    pub execute: bool,
    // Lock flags: the expand's in-place ALTER or the shadow copy's swap, and each contract step.
    #[command(flatten)]
    lock: LockArgs,
    #[command(flatten)]
    pub chunk: ChunkArgs,
    #[command(flatten)]
    pub throttle: ThrottleArgs,
}

/// Where `migrate` works: the server and the migration files.
#[derive(Args, Debug)]
pub struct MigratePlace {
    /// mysql://…/DATABASE or postgres://…/DATABASE: the tables and the history table
    /// (shadowswap_migrations) are in its database (PostgreSQL: the current schema).
    #[arg(long, required = true)]
    pub dsn: Option<String>,
    /// The directory of migration files, NNNN_name.toml, applied in the order of their names.
    #[arg(long, required = true)]
    pub dir: Option<PathBuf>,
}

/// `migrate`'s subcommand.
#[derive(Subcommand, Debug)]
pub enum MigrateCommand {
    /// List each file's phases, applied (when, by whom) or pending; files edited after applying.
    Status(MigrateStatusArgs),
}

/// `migrate status`'s arguments.
#[derive(Args, Debug)]
pub struct MigrateStatusArgs {
    /// As for `migrate`.
    #[arg(long)]
    pub dsn: String,
    /// As for `migrate`.
    #[arg(long)]
    pub dir: PathBuf,
}

impl MigrateArgs {
    /// The DSN and the directory, of `migrate` or of `migrate status`.
    pub fn place(&self) -> (&str, &std::path::Path) {
        match &self.status {
            Some(MigrateCommand::Status(s)) => (&s.dsn, &s.dir),
            None => {
                (self.place.dsn.as_deref().expect("clap requires --dsn"), self.place.dir.as_deref().expect("clap requires --dir"))
            }
        }
    }

    /// The engine's configuration for the phases (everything not given as a flag keeps the
    /// engine's default).
    pub fn config(&self) -> MigrationConfig {
        MigrationConfig {
            execute: self.execute,
            copy: self.chunk.config(),
            throttle: self.throttle.config(),
            cut_over: CutOverConfig {
                lock_timeout: self.lock.cut_over_lock_timeout,
                retries: self.lock.cut_over_retries,
                ..CutOverConfig::default()
            },
            ddl: DdlConfig { lock_timeout: self.lock.cut_over_lock_timeout, ..DdlConfig::default() },
            ..MigrationConfig::default()
        }
    }

    /// What to run.
    pub fn options(&self) -> MigrateOptions {
        MigrateOptions { only: self.phase, rollback: self.rollback.clone() }
    }
}

impl Command {
    /// The `--dsn` of the command and its `--replica` DSNs (none for `cleanup`).
    pub fn dsns(&self) -> (&str, &[String]) {
        match self {
            Command::Migrate(m) => (m.place().0, &m.throttle.replicas),
            Command::Alter(a) => (&a.target.dsn, &a.throttle.replicas),
            Command::Backfill(b) => (&b.target.dsn, &b.throttle.replicas),
            Command::Contract(c) => (&c.target.dsn, &[]),
            Command::Cleanup(t) => (&t.dsn, &[]),
            Command::Revert(r) => (&r.target.dsn, &[]),
            Command::Finish(f) => (&f.target.dsn, &[]),
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    fn parse(args: &[&str]) -> Cli {
        Cli::try_parse_from(["shadowswap"].iter().chain(args)).unwrap()
    }

    fn alter(extra: &[&str]) -> AlterArgs {
        let mut args = vec!["alter", "--dsn", "mysql://u@h/db", "--table", "t", "--alter", "ADD c INT"];
        args.extend_from_slice(extra);
        match parse(&args).command {
            Command::Alter(a) => a,
            _ => unreachable!(),
        }
    }

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn defaults_are_the_engines() {
        let c = alter(&[]).config();
        assert!(!c.execute && c.checksum.enabled && c.cut_over.window.is_none());
        assert_eq!(c.copy.chunk_time, CopyConfig::default().chunk_time);
        assert_eq!(
            (c.checksum.threads, c.checksum.chunk_time),
            (ChecksumConfig::default().threads, ChecksumConfig::default().chunk_time)
        );
        assert_eq!(c.cut_over.lock_timeout, CutOverConfig::default().lock_timeout);
        assert_eq!(c.cut_over.blocker_wait, CutOverConfig::default().blocker_wait);
        assert_eq!(c.cut_over.retries, CutOverConfig::default().retries);
        assert_eq!(c.ddl.lock_timeout, DdlConfig::default().lock_timeout);
        assert_eq!(c.throttle.max_lag, ThrottleConfig::default().max_lag);
    }

    #[test]
    fn flags_reach_the_config() {
        let c = alter(&[
            "--execute",
            "--chunk-size",
            "50",
            "--cut-over-lock-timeout",
            "3s",
            "--no-checksum",
            "--max-load",
            "Threads_running=25,Threads_connected=100",
            "--cut-over-window",
            "02:00-04:30 Europe/Berlin",
            "--replica",
            "mysql://u@r1/db",
        ])
        .config();
        assert!(c.execute && !c.checksum.enabled);
        assert_eq!(c.copy.fixed_chunk_rows, Some(50));
        let k = alter(&["--checksum-threads", "4", "--checksum-chunk-time", "50ms"]).config().checksum;
        assert_eq!((k.threads, k.chunk_time), (4, Duration::from_millis(50)));
        for bad in ["0", "17", "-1", "two"] {
            assert!(
                Cli::try_parse_from([
                    "shadowswap",
                    "alter",
                    "--dsn",
                    "mysql://u@h/db",
                    "--table",
                    "t",
                    "--alter",
                    "ADD c INT",
                    "--checksum-threads",
                    bad
                ])
                .is_err(),
                "--checksum-threads {bad}"
            );
        }
        assert_eq!((c.cut_over.lock_timeout, c.ddl.lock_timeout), (Duration::from_secs(3), Duration::from_secs(3)));
        assert_eq!(c.throttle.max_load.len(), 2);
        assert_eq!(c.cut_over.window.unwrap().to_string(), "02:00-04:30 Europe/Berlin");
        assert_eq!(alter(&["--revert-window", "30m"]).config().revert_window, Some(Duration::from_secs(1800)));
        assert_eq!(alter(&[]).config().revert_window, None);
        match parse(&["revert", "--dsn", "mysql://u@h/db", "--table", "t", "--cut-over-retries", "3"]).command {
            Command::Revert(r) => assert!(!r.execute && r.config().0.retries == 3),
            _ => unreachable!(),
        }
        let a = alter(&["--replica", "mysql://u@r1/db", "--replica", "mysql://u@r2/db"]);
        assert_eq!(
            Command::Alter(a).dsns(),
            ("mysql://u@h/db", &["mysql://u@r1/db".to_string(), "mysql://u@r2/db".to_string()][..])
        );
    }

    #[test]
    fn contract_shares_the_lock_flags() {
        let args = ["contract", "--dsn", "postgres://u@h/db", "--table", "t", "--alter", "ALTER COLUMN c SET NOT NULL"];
        let Command::Contract(c) = parse(&args).command else { unreachable!() };
        let cfg = c.config();
        assert!(!cfg.execute);
        assert_eq!((cfg.cut_over.lock_timeout, cfg.cut_over.retries), (Duration::from_secs(2), 10));
        let args = [&args[..], &["--execute", "--cut-over-lock-timeout", "300ms", "--cut-over-retries", "4"]].concat();
        let Command::Contract(c) = parse(&args).command else { unreachable!() };
        let cfg = c.config();
        assert!(cfg.execute);
        assert_eq!((cfg.cut_over.lock_timeout, cfg.cut_over.retries), (Duration::from_millis(300), 4));
    }

    #[test]
    fn faults_reach_the_config_only_when_given() {
        assert!(alter(&["--execute"]).config().faults.is_empty(), "no fault without --inject-fault");
        let a = alter(&["--execute", "--inject-fault", "blocker@cut-over:3s", "--inject-fault", "crash@backfill:50%"]);
        assert!(a.check().is_ok());
        assert_eq!(a.config().copy.progress_interval, Duration::from_millis(100), "a percentage fault: frequent progress");
        assert_eq!(alter(&["--execute"]).config().copy.progress_interval, CopyConfig::default().progress_interval);
        let f = a.config().faults;
        assert_eq!(f.iter().map(|f| f.to_string()).collect::<Vec<_>>(), ["blocker@cut-over:3s", "crash@backfill:50%"]);
        assert!(alter(&["--inject-fault", "crash@checksum"]).check().unwrap_err().contains("needs --execute"));
        let e = alter(&["--execute", "--inject-fault", "replica-pause@backfill"]).check().unwrap_err();
        assert!(e.contains("needs a --replica"), "{e}");
        assert!(alter(&["--execute", "--replica", "mysql://u@r/db", "--inject-fault", "replica-pause@backfill"]).check().is_ok());
        let e = alter(&["--execute", "--revert-window", "10m", "--inject-fault", "crash@cleanup"]).check().unwrap_err();
        assert!(e.contains("--revert-window postpones"), "{e}");
        assert!(alter(&["--execute", "--inject-fault", "crash@cleanup"]).check().is_ok());
        let bad = ["shadowswap", "alter", "--dsn", "d", "--table", "t", "--alter", "x", "--inject-fault", "boom@backfill"];
        let e = Cli::try_parse_from(bad).unwrap_err().to_string();
        assert!(e.contains("unknown fault kind \"boom\""), "{e}");
    }

    #[test]
    fn migrate_and_migrate_status() {
        let Command::Migrate(m) = parse(&["migrate", "--dsn", "mysql://u@h/db", "--dir", "migrations"]).command else {
            unreachable!()
        };
        assert!(m.status.is_none() && m.options().only.is_none() && m.options().rollback.is_none());
        assert_eq!(m.place(), ("mysql://u@h/db", std::path::Path::new("migrations")));
        let c = m.config();
        assert!(!c.execute);
        assert_eq!((c.cut_over.lock_timeout, c.cut_over.retries), (Duration::from_secs(2), 10));
        let args = ["migrate", "--dsn", "d", "--dir", "m", "--phase", "expand", "--execute", "--cut-over-lock-timeout", "500ms"];
        let Command::Migrate(m) = parse(&args).command else { unreachable!() };
        assert_eq!(m.options().only, Some(PhaseKind::Expand));
        assert!(m.config().execute);
        assert_eq!(m.config().cut_over.lock_timeout, Duration::from_millis(500));
        let Command::Migrate(m) = parse(&["migrate", "--dsn", "d", "--dir", "m", "--rollback", "0007"]).command else {
            unreachable!()
        };
        assert_eq!(m.options().rollback.as_deref(), Some("0007"));
        let Command::Migrate(m) = parse(&["migrate", "status", "--dsn", "d", "--dir", "m"]).command else { unreachable!() };
        assert!(matches!(m.status, Some(MigrateCommand::Status(_))));
        assert_eq!(m.place().0, "d");
        let e = Cli::try_parse_from(["shadowswap", "migrate", "--dsn", "d", "--dir", "m", "--phase", "cleanup"]).unwrap_err();
        assert!(e.to_string().contains("unknown phase"), "{e}");
        assert!(Cli::try_parse_from(["shadowswap", "migrate", "--dsn", "d"]).is_err(), "--dir is required");
        let both = ["shadowswap", "migrate", "--dsn", "d", "--dir", "m", "--phase", "expand", "--rollback", "7"];
        assert!(Cli::try_parse_from(both).is_err());
    }

    #[test]
    fn table_names() {
        let t = |table: &str| TargetArgs { dsn: String::new(), table: table.into() };
        assert_eq!(t("s.n").table_ref(None).unwrap(), TableRef::new("s", "n"));
        assert_eq!(t("n").table_ref(Some("db")).unwrap(), TableRef::new("db", "n"));
        assert!(t("n").table_ref(None).unwrap_err().starts_with("the DSN names no database"));
        assert_eq!(t(".n").table_ref(Some("db")).unwrap_err(), "--table \".n\" is not NAME or DATABASE.NAME");
    }
}
