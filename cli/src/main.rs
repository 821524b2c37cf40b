//! The `shadowswap` command: clap arguments → [`MigrationConfig`] → engine, with the dialect the
//! DSN's scheme names (mysql:// or postgres://). Thin on purpose.
//!
//! Exit status: 0 when the table was swapped (or, for a dry run, when every preflight check
//! passed); 1 when the run failed and everything it created was removed; 3 when it failed and
//! something is left (the message says what; `shadowswap cleanup` removes it); 130 when
//! interrupted (after removing what it created); 2 for usage errors.

mod progress;
mod secrets;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use shadowswap_engine::config::{ChecksumConfig, CopyConfig, CutOverConfig, DdlConfig};
use shadowswap_engine::runner::{cleanup, Outcome};
use shadowswap_engine::throttle::window::CutOverWindow;
use shadowswap_engine::throttle::{Threshold, ThrottleConfig};
use shadowswap_engine::Dialect;
use shadowswap_engine::{Error, MigrationConfig, Runner, TableRef};
use shadowswap_mysql::MySql;
use shadowswap_postgres::Postgres;

/// Online ALTER TABLE for MariaDB/MySQL and PostgreSQL: shadow table, capture triggers, chunked backfill,
/// checksum, atomic cut-over.
#[derive(Parser, Debug)]
#[command(name = "shadowswap", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

// Parsed once per process: the size of the larger variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
enum Command {
    /// Run an ALTER TABLE online. Without --execute: a dry run that checks and prints the plan.
    Alter(AlterArgs),
    /// Remove what an interrupted run left on a table (capture triggers, shadow table).
    Cleanup(TargetArgs),
}

#[derive(Args, Debug)]
struct TargetArgs {
    /// mysql://USER[:PASSWORD]@HOST[:PORT]/DATABASE or postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?sslmode=…].
    /// The password may instead be given in MYSQL_PWD or PGPASSWORD.
    #[arg(long)]
    dsn: String,
    /// The table: NAME (in the DSN's database; PostgreSQL: the current schema) or DATABASE.NAME / SCHEMA.NAME.
    #[arg(long)]
    table: String,
}

#[derive(Args, Debug)]
struct AlterArgs {
    #[command(flatten)]
    target: TargetArgs,
    /// What follows ALTER TABLE t, e.g. "ADD COLUMN c INT NULL, DROP COLUMN d".
    #[arg(long)]
    alter: String,
    /// Migrate. Without it, a dry run: every preflight check, the plan printed, nothing changed.
    #[arg(long)]
    execute: bool,
    /// Target time per chunk; the chunk size adapts to it.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "500ms")]
    chunk_time: Duration,
    /// A fixed chunk size in rows, instead of adapting to --chunk-time.
    #[arg(long, conflicts_with = "chunk_time")]
    chunk_size: Option<u64>,
    /// Keep the old table as _T_old after the swap (default: drop it).
    #[arg(long)]
    keep_old_table: bool,
    /// While this file exists, stay in sync and do not cut over; cut over once it is removed.
    #[arg(long, value_name = "PATH")]
    postpone_cut_over_flag_file: Option<PathBuf>,
    /// Allow an ALTER that renames columns (CHANGE old new …, RENAME COLUMN); data is carried over.
    #[arg(long)]
    approve_renamed_columns: bool,
    /// How long each cut-over attempt (and each trigger DDL) waits for its locks. MariaDB counts whole seconds.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "2s")]
    cut_over_lock_timeout: Duration,
    /// Before each cut-over attempt, wait at most this long for open transactions that would make
    /// the lock request queue (and every query behind it) to end; 0s attempts at once.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "30s")]
    cut_over_blocker_wait: Duration,
    /// Cut-over attempts after the first, with exponential backoff and jitter between them.
    #[arg(long, default_value_t = 10)]
    cut_over_retries: u32,
    /// Skip the checksum of original against shadow before the cut-over.
    #[arg(long)]
    no_checksum: bool,
    /// When the server can apply the ALTER without rewriting or scanning the table (PostgreSQL:
    /// the dry run says "metadata-only: yes"), apply it in place under the cut-over lock timeout
    /// and retries instead of copying. Otherwise copy as usual.
    #[arg(long)]
    attempt_instant_ddl: bool,
    /// A replica of the server to watch for lag (repeatable). Copying pauses while one lags more
    /// than --max-lag or cannot be reached; the cut-over waits for all to be within it.
    #[arg(long = "replica", value_name = "DSN")]
    replicas: Vec<String>,
    /// Largest replica lag tolerated, measured with shadowswap's own heartbeat.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "1s")]
    max_lag: Duration,
    /// Pause copying while a load figure is above a limit: VAR=N (repeatable, or comma-separated).
    /// MySQL: global status variables such as Threads_running=25; PostgreSQL: active_backends=N.
    #[arg(long, value_name = "VAR=N", value_delimiter = ',')]
    max_load: Vec<Threshold>,
    /// Stop the run (removing what it created) when a load figure is above a limit: VAR=N.
    #[arg(long, value_name = "VAR=N", value_delimiter = ',')]
    critical_load: Vec<Threshold>,
    /// Pause copying while this query's first column is non-zero (run on the primary).
    #[arg(long, value_name = "SQL")]
    throttle_query: Option<String>,
    /// Pause copying while this file exists.
    #[arg(long, value_name = "PATH")]
    throttle_flag_file: Option<PathBuf>,
    /// Cut over only inside this daily window, e.g. "02:00-04:30" or "02:00-04:30 Europe/Berlin"
    /// (default UTC); until it opens the run stays in sync.
    #[arg(long, value_name = "HH:MM-HH:MM [TZ]")]
    cut_over_window: Option<CutOverWindow>,
}

impl AlterArgs {
    fn config(&self) -> MigrationConfig {
        MigrationConfig {
            execute: self.execute,
            approve_renamed_columns: self.approve_renamed_columns,
            attempt_instant_ddl: self.attempt_instant_ddl,
            copy: CopyConfig { chunk_time: self.chunk_time, fixed_chunk_rows: self.chunk_size, ..CopyConfig::default() },
            checksum: ChecksumConfig { enabled: !self.no_checksum, ..ChecksumConfig::default() },
            cut_over: CutOverConfig {
                lock_timeout: self.cut_over_lock_timeout,
                retries: self.cut_over_retries,
                keep_old_table: self.keep_old_table,
                postpone_flag_file: self.postpone_cut_over_flag_file.clone(),
                window: self.cut_over_window.clone(),
                blocker_wait: self.cut_over_blocker_wait,
                ..CutOverConfig::default()
            },
            ddl: DdlConfig { lock_timeout: self.cut_over_lock_timeout, ..DdlConfig::default() },
            throttle: ThrottleConfig {
                max_lag: self.max_lag,
                max_load: self.max_load.clone(),
                critical_load: self.critical_load.clone(),
                throttle_query: self.throttle_query.clone(),
                flag_file: self.throttle_flag_file.clone(),
                ..ThrottleConfig::default()
            },
        }
    }
}

/// How a command failed, for the exit status.
enum Failure {
    Error(Error),
    Usage(String),
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::Error(e)
    }
}

fn main() -> ExitCode {
    // Before anything is printed: every password given on the command line or in the environment
    // is removed from whatever reaches stderr (see `secrets`).
    let args: Vec<String> = std::env::args_os().map(|a| a.to_string_lossy().into_owned()).collect();
    secrets::register_from_args_and_env(&args);
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // --help and --version print to stdout as usual.
        Err(e) if !e.use_stderr() => e.exit(),
        Err(e) => {
            // clap echoes a mistyped argument (a DSN given without --dsn, say): scrubbed.
            eprint!("{}", secrets::scrub(&e.render().to_string()));
            return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2));
        }
    };
    let terminal = std::io::stderr().is_terminal();
    let bar = progress::init_logging(cli.log_format == LogFormat::Json, terminal);
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("shadowswap: error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let json = cli.log_format == LogFormat::Json;
    match rt.block_on(run(cli.command, bar, json)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(m)) => {
            eprintln!("shadowswap: error: {}", secrets::scrub(&m));
            ExitCode::from(2)
        }
        Err(Failure::Error(e)) => {
            eprintln!("shadowswap: error: {}", secrets::scrub(&e.to_string()));
            let code = match &e {
                Error::Cancelled(_) => 130,
                Error::CleanupIncomplete { .. } => 3,
                _ => 1,
            };
            ExitCode::from(code)
        }
    }
}

fn table_ref(table: &str, default_schema: Option<&str>) -> Result<TableRef, Failure> {
    match table.split_once('.') {
        Some((schema, name)) if !schema.is_empty() && !name.is_empty() => Ok(TableRef::new(schema, name)),
        Some(_) => Err(Failure::Usage(format!("--table {table:?} is not NAME or DATABASE.NAME"))),
        None => match default_schema {
            Some(s) => Ok(TableRef::new(s, table)),
            None => Err(Failure::Usage("the DSN names no database: add /DATABASE to it, or give --table DATABASE.NAME".into())),
        },
    }
}

/// The usage error for a `--replica` DSN whose scheme is not `expected` (the --dsn's). It names
/// the replica by its scheme only: the DSN itself may hold a password.
fn replica_scheme_mismatch(replica: &str, expected: &str) -> Failure {
    let given = match replica.split_once("://") {
        Some((scheme, _)) if !scheme.is_empty() && scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c)) => {
            format!("a {scheme}:// DSN")
        }
        _ => "not a URL".to_string(),
    };
    Failure::Usage(format!(
        "a --replica DSN is {given}; it must be a {expected} DSN like --dsn (replicas run the same server type)"
    ))
}

/// Connect to the server the DSN names and run `command` with its dialect.
async fn run(command: Command, bar: Option<indicatif::ProgressBar>, json: bool) -> Result<(), Failure> {
    let dsn = match &command {
        Command::Alter(a) => a.target.dsn.clone(),
        Command::Cleanup(t) => t.dsn.clone(),
    };
    let replica_dsns = match &command {
        Command::Alter(a) => a.replicas.clone(),
        Command::Cleanup(_) => Vec::new(),
    };
    let scheme = |d: &str| d.split("://").next().unwrap_or_default().to_string();
    match scheme(&dsn).as_str() {
        "mysql" | "mariadb" => {
            let pw = std::env::var("MYSQL_PWD").ok();
            let d = MySql::connect(&dsn, pw.clone()).await?;
            let mut replicas = Vec::new();
            for r in &replica_dsns {
                if !matches!(scheme(r).as_str(), "mysql" | "mariadb") {
                    return Err(replica_scheme_mismatch(r, "mysql://"));
                }
                replicas.push(Arc::new(MySql::connect(r, pw.clone()).await?));
            }
            let schema = d.default_schema().map(str::to_string);
            run_with(Arc::new(d), replicas, schema, command, bar, json).await
        }
        "postgres" | "postgresql" => {
            let pw = std::env::var("PGPASSWORD").ok();
            let d = Postgres::connect(&dsn, pw.clone()).await?;
            let mut replicas = Vec::new();
            for r in &replica_dsns {
                if !matches!(scheme(r).as_str(), "postgres" | "postgresql") {
                    return Err(replica_scheme_mismatch(r, "postgres://"));
                }
                replicas.push(Arc::new(Postgres::connect(r, pw.clone()).await?));
            }
            let schema = Some(d.default_schema().to_string());
            run_with(Arc::new(d), replicas, schema, command, bar, json).await
        }
        _ => Err(Failure::Usage(
            "--dsn must start with mysql:// or postgres:// (e.g. mysql://user@127.0.0.1:3306/db, postgres://user@127.0.0.1:5432/db)"
                .into(),
        )),
    }
}

async fn run_with<D: Dialect>(
    dialect: Arc<D>,
    replicas: Vec<Arc<D>>,
    default_schema: Option<String>,
    command: Command,
    bar: Option<indicatif::ProgressBar>,
    json: bool,
) -> Result<(), Failure> {
    match command {
        Command::Alter(args) => {
            let table = table_ref(&args.target.table, default_schema.as_deref())?;
            let runner = Runner::new(dialect.clone(), args.config()).with_replicas(replicas);
            let cancel = runner.cancel_token();
            let signals = tokio::spawn(progress::cancel_on_signal(cancel.clone()));
            let reporter = tokio::spawn(progress::report(runner.progress(), bar.clone(), cancel.clone()));
            let result = runner.run(&table, &args.alter).await;
            signals.abort();
            cancel.cancel(); // stops the reporter
            let _ = reporter.await;
            if let Some(b) = &bar {
                b.finish_and_clear();
            }
            let outcome = result?;
            match outcome {
                Outcome::DryRun(plan) => {
                    println!("{}", plan.render());
                    println!("dry run: every preflight check passed and nothing was changed; add --execute to migrate");
                }
                Outcome::Swapped(s) => progress::print_summary(&s, json),
            }
            Ok(())
        }
        Command::Cleanup(target) => {
            let table = table_ref(&target.table, default_schema.as_deref())?;
            let report = cleanup(&*dialect, &table, &DdlConfig::default()).await?;
            if report.triggers_dropped.is_empty() && report.shadow_dropped.is_none() {
                println!("nothing to clean up on {table}");
            }
            if !report.triggers_dropped.is_empty() {
                println!("dropped capture triggers: {}", report.triggers_dropped.join(", "));
            }
            if let Some(s) = report.shadow_dropped {
                println!("dropped shadow table {s}");
            }
            if let Some(old) = report.old_table_present {
                println!("{old} exists (the table as it was before an earlier swap); drop it with DROP TABLE when you no longer need it");
            }
            Ok(())
        }
    }
}
