//! The `shadowswap` command: clap arguments → [`MigrationConfig`] → engine, with the dialect the
//! DSN's scheme names (mysql:// or postgres://). Thin on purpose.
//!
//! Module map, in the order a command runs:
//! - [`secrets`]  — every password given is scrubbed from whatever reaches stderr.
//! - [`args`]     — the clap structs and [`args::AlterArgs::config`] (→ [`MigrationConfig`]).
//! - [`logging`]  — tracing on stderr, above the progress bar on a terminal.
//! - `connect`  — the primary and its replicas, for the server type the DSN's scheme names.
//! - [`signals`]  — Ctrl-C / SIGTERM cancel the run (which removes what it created).
//! - [`progress`] — the progress bar or progress log lines while the run goes.
//! - [`report`]   — the plan, the summary, the cleanup lines; the error line and exit status.
//!
//! `shadowswap backfill` (the staged path's in-place UPDATE) goes through the same modules:
//! [`args::BackfillArgs`] → `shadowswap_engine::staged::backfill::run` → [`report::print_backfill`];
//! `shadowswap contract` (the constraint steps without a long lock): [`args::ContractArgs`] →
//! `shadowswap_engine::staged::contract::{plan, run}` → [`report::print_contract`]; and
//! `shadowswap migrate`: [`args::MigrateArgs`] → `shadowswap_engine::staged::migrate` (`run`, or
//! `read_history` + `render_status` for `migrate status`) → [`report::print_migrate`].
//!
//! Exit status: 0 when the table was swapped (backfill: when it ran to the end) (or, for a dry run, when every preflight check
//! passed); 1 when the run failed and everything it created was removed; 3 when it failed and
//! something is left (the message says what; `shadowswap cleanup` removes it); 130 when
//! interrupted (after removing what it created); 2 for usage errors.
//!
//! [`MigrationConfig`]: shadowswap_engine::MigrationConfig

mod args;
mod connect;
mod logging;
mod progress;
mod report;
mod secrets;
mod signals;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use shadowswap_engine::cleanup::cleanup;
use shadowswap_engine::config::DdlConfig;
use shadowswap_engine::progress::Progress;
use shadowswap_engine::revert;
use shadowswap_engine::staged::{backfill, contract, migrate};
use shadowswap_engine::Runner;
use shadowswap_mysql::MySql;
use shadowswap_postgres::Postgres;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use args::{Cli, Command, LogFormat};
use connect::{connect, Connected, Server};
use report::Failure;

fn main() -> ExitCode {
    // Before anything is printed: every password given on the command line or in the environment
    // is removed from whatever reaches stderr (see `secrets`).
    let argv: Vec<String> = std::env::args_os().map(|a| a.to_string_lossy().into_owned()).collect();
    secrets::register_from_args_and_env(&argv);
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
    let json = cli.log_format == LogFormat::Json;
    let bar = logging::init_logging(json, std::io::stderr().is_terminal());
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("shadowswap: error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match rt.block_on(run(cli.command, bar, json)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => failure.exit(),
    }
}

/// Connect to the server the DSN names and run `command` with its dialect.
async fn run(command: Command, bar: Option<indicatif::ProgressBar>, json: bool) -> Result<(), Failure> {
    let (dsn, replicas) = command.dsns();
    if connect::names::<MySql>(dsn) {
        let servers = connect::<MySql>(dsn, replicas).await?;
        run_with(servers, command, bar, json).await
    } else if connect::names::<Postgres>(dsn) {
        let servers = connect::<Postgres>(dsn, replicas).await?;
        run_with(servers, command, bar, json).await
    } else {
        Err(connect::unknown_scheme())
    }
}

/// Run `command` on the connected servers and print its outcome.
async fn run_with<S: Server>(
    servers: Connected<S>,
    command: Command,
    bar: Option<indicatif::ProgressBar>,
    json: bool,
) -> Result<(), Failure> {
    let Connected { primary, replicas, default_schema } = servers;
    match command {
        Command::Alter(args) => {
            let table = args.target.table_ref(default_schema.as_deref()).map_err(Failure::Usage)?;
            args.check().map_err(Failure::Usage)?;
            let runner = Runner::new(primary.clone(), args.config()).with_replicas(replicas);
            let cancel = runner.cancel_token();
            let signals = tokio::spawn(signals::cancel_on_signal(cancel.clone(), signals::OnStop::Alter));
            let shown = tokio::spawn(progress::show(runner.progress(), bar.clone(), cancel.clone()));
            let result = runner.run(&table, &args.alter).await;
            signals.abort();
            cancel.cancel(); // stops the progress display
            let _ = shown.await;
            if let Some(b) = &bar {
                b.finish_and_clear();
            }
            let outcome = result?;
            report::print_outcome(&outcome, json);
            if let (shadowswap_engine::Outcome::DryRun(plan), Some(_)) = (&outcome, args.config().revert_window) {
                if !json {
                    let sql = shadowswap_engine::Dialect::revert_window_sql(&*primary, plan);
                    for line in report::revert_window_plan(&revert::describe(plan), &sql) {
                        println!("{line}");
                    }
                }
            }
            Ok(())
        }
        Command::Revert(args) => {
            let table = args.target.table_ref(default_schema.as_deref()).map_err(Failure::Usage)?;
            let (cut_over, ddl) = args.config();
            let cancel = tokio_util::sync::CancellationToken::new();
            let signals = tokio::spawn(signals::cancel_on_signal(cancel.clone(), signals::OnStop::Revert));
            let done = revert::revert(&*primary, &table, &cut_over, &ddl, args.execute, &cancel).await;
            signals.abort();
            for line in report::window_lines("revert", &table, &done?, json) {
                println!("{line}");
            }
            Ok(())
        }
        Command::Finish(args) => {
            let table = args.target.table_ref(default_schema.as_deref()).map_err(Failure::Usage)?;
            let never = tokio_util::sync::CancellationToken::new();
            let done = revert::finish(&*primary, &table, &DdlConfig::default(), args.execute, &never).await?;
            for line in report::window_lines("finish", &table, &done, json) {
                println!("{line}");
            }
            Ok(())
        }
        Command::Backfill(args) => {
            let table = args.target.table_ref(default_schema.as_deref()).map_err(Failure::Usage)?;
            let cancel = CancellationToken::new();
            let (progress_tx, progress_rx) = watch::channel(Progress::default());
            let signals = tokio::spawn(signals::cancel_on_signal(cancel.clone(), signals::OnStop::Backfill));
            let stop_display = CancellationToken::new();
            let shown = tokio::spawn(progress::show(progress_rx, bar.clone(), stop_display.clone()));
            let result =
                backfill::run(&primary, &replicas, &table, &args.spec(), &args.config(), args.until_none, &cancel, &progress_tx)
                    .await;
            signals.abort();
            stop_display.cancel();
            let _ = shown.await;
            if let Some(b) = &bar {
                b.finish_and_clear();
            }
            report::print_backfill(&table, &result?, json);
            Ok(())
        }
        Command::Migrate(args) => {
            let (_, dir) = args.place();
            let schema = default_schema.ok_or_else(|| {
                Failure::Usage("the DSN names no database: add /DATABASE to it (the tables and the history are there)".into())
            })?;
            let files = migrate::load_dir(dir)?;
            if args.status.is_some() {
                let history = migrate::read_history(&*primary, &schema).await?;
                print!("{}", migrate::render_status(&files, &history));
                return Ok(());
            }
            let cancel = CancellationToken::new();
            let (progress_tx, progress_rx) = watch::channel(Progress::default());
            let signals = tokio::spawn(signals::cancel_on_signal(cancel.clone(), signals::OnStop::Migrate));
            let stop_display = CancellationToken::new();
            let shown = tokio::spawn(progress::show(progress_rx, bar.clone(), stop_display.clone()));
            let result =
                migrate::run(&primary, &replicas, &schema, &files, &args.options(), &args.config(), &cancel, &progress_tx).await;
            signals.abort();
            stop_display.cancel();
            let _ = shown.await;
            if let Some(b) = &bar {
                b.finish_and_clear();
            }
            report::print_migrate(&result?, json);
            Ok(())
        }
        Command::Contract(args) => {
            let table = args.target.table_ref(default_schema.as_deref()).map_err(Failure::Usage)?;
            let config = args.config();
            if !config.execute {
                let plan = contract::plan(&primary, &table, &args.alter, &config).await?;
                report::print_contract_plan(&plan);
                return Ok(());
            }
            let cancel = CancellationToken::new();
            let signals = tokio::spawn(signals::cancel_on_signal(cancel.clone(), signals::OnStop::Contract));
            let result = contract::run(&primary, &table, &args.alter, &config, &cancel).await;
            signals.abort();
            report::print_contract(&table, &result?, json);
            Ok(())
        }
        Command::Cleanup(target) => {
            let table = target.table_ref(default_schema.as_deref()).map_err(Failure::Usage)?;
            let done = cleanup(&*primary, &table, &DdlConfig::default()).await?;
            for line in report::cleanup_lines(&table, &done) {
                println!("{line}");
            }
            Ok(())
        }
    }
}
