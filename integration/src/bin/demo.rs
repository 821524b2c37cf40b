//! `shadowswap-demo`: the main job on a real local database, end to end.
//!
//! 1. creates database `shadowswap_demo` and sysbench's table `sbtest1` with `--rows` rows,
//!    generated server-side (deterministic pseudo-random content in sysbench's format);
//! 2. starts `--writers` concurrent writers (random INSERT / UPDATE / key-changing UPDATE /
//!    DELETE, each writer on its own connection and key space, keeping an exact model);
//! 3. runs the real `shadowswap alter … --execute` binary as a child process, its progress on
//!    this terminal, adding a `created_at DATETIME(6)` column (MariaDB could do that ALTER
//!    instantly; shadowswap always rebuilds through the shadow copy, so this is a real copy);
//! 4. stops the writers shortly after it exits, compares the table row by row with the writers'
//!    model, and prints a short report. Exit status 0 only when the migration succeeded and the
//!    table matches.
//!
//! `scripts/demo.sh` installs and starts MariaDB, builds, and runs this.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Parser;
use mysql_async::prelude::Queryable;
use mysql_async::Pool;
use shadowswap_integration::demo::{self, copy_report, migrate, redacted, shadowswap_bin, thousands, Migration};
use shadowswap_integration::mysql::workload::{self, Model, PhaseSource, TableSpec, Workload, WorkloadConfig};
use tokio::sync::watch;

const DATABASE: &str = "shadowswap_demo";
const TABLE: &str = "sbtest1";
const ALTER: &str = "ADD COLUMN created_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)";

/// Online ALTER TABLE demo: a sysbench table, concurrent writers, `shadowswap alter --execute`,
/// and a row-by-row check of the result.
#[derive(Parser, Debug)]
#[command(name = "shadowswap-demo", version, about)]
struct Args {
    /// Rows in sbtest1 before the migration.
    #[arg(long, default_value_t = 1_000_000)]
    rows: u64,
    /// Concurrent writers during the migration.
    #[arg(long, default_value_t = 4)]
    writers: usize,
    /// Server DSN (mysql://USER:PASSWORD@HOST:PORT, no database: the demo uses `shadowswap_demo`).
    #[arg(long, env = "SHADOWSWAP_MYSQL_DSN", default_value = "mysql://shadowswap:shadowswap@127.0.0.1:33306")]
    dsn: String,
    /// The shadowswap binary (default: `shadowswap` beside this executable).
    #[arg(long)]
    bin: Option<PathBuf>,
    /// Seed of the writers' random choices (default: from the clock; printed).
    #[arg(long)]
    seed: Option<u64>,
}

fn say(msg: impl AsRef<str>) {
    println!("[demo] {}", msg.as_ref());
}

/// The server part of a MariaDB DSN ([`demo::server_part`]).
fn server_part(dsn: &str) -> Result<&str> {
    demo::server_part(dsn, &["mysql", "mariadb"])
}

#[tokio::main]
async fn main() -> ExitCode {
    demo::exit_code("[demo]", run(Args::parse()).await)
}

async fn run(args: Args) -> Result<bool> {
    let bin = shadowswap_bin(args.bin.as_deref())?;
    let server = server_part(&args.dsn)?;
    let dsn = format!("{server}/{DATABASE}");

    // 1. Database and table.
    let admin = Pool::new(server);
    let mut c = admin
        .get_conn()
        .await
        .with_context(|| format!("cannot reach {}; start the server with `bash scripts/mariadb.sh start`", redacted(server)))?;
    c.query_drop(format!("DROP DATABASE IF EXISTS `{DATABASE}`")).await?;
    c.query_drop(format!("CREATE DATABASE `{DATABASE}`")).await?;
    drop(c);
    admin.disconnect().await?;
    let pool = Pool::new(dsn.as_str());
    let spec = TableSpec::single(TABLE);
    spec.create(&pool).await?;
    say(format!("created {DATABASE}.{TABLE} (sysbench layout) on {}", redacted(server)));
    let t0 = Instant::now();
    let mut last = Instant::now();
    spec.load(&pool, args.rows, |done| {
        if last.elapsed() >= Duration::from_secs(2) || done == args.rows {
            last = Instant::now();
            say(format!("loading: {} / {} rows", thousands(done), thousands(args.rows)));
        }
    })
    .await?;
    say(format!("loaded {} rows in {:.1} s", thousands(args.rows), t0.elapsed().as_secs_f64()));

    let t0 = Instant::now();
    let model = Model::read(&pool, &spec).await?;
    say(format!(
        "read the table into the writers' model ({} rows) in {:.1} s",
        thousands(model.len() as u64),
        t0.elapsed().as_secs_f64()
    ));

    // 2. Writers.
    let (migrating, migrating_rx) = watch::channel(false);
    let mut wcfg = WorkloadConfig { writers: args.writers, ..WorkloadConfig::default() };
    if let Some(seed) = args.seed {
        wcfg.seed = seed;
    }
    let writers = Workload::start(&dsn, model, wcfg.clone(), PhaseSource::Flag(migrating_rx)).await?;
    writers.wait_for_ops(100).await?;
    say(format!("{} writers running (seed {})", args.writers, wcfg.seed));

    // 3. The migration, by the real binary.
    say(format!("running: {} alter --dsn {} --table {TABLE} --alter \"{ALTER}\" --execute", bin.display(), redacted(&dsn)));
    migrating.send_replace(true);
    let Migration { status, elapsed: migration, copied } = migrate(&bin, &dsn, TABLE, ALTER).await?;
    migrating.send_replace(false);

    // 4. Stop the writers a moment later, verify, report.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let stopped = writers.stop().await;
    if !status.success() {
        match &stopped {
            Ok((_, report)) => say(format!("writers: {report}")),
            Err(e) => say(format!("{e:#}")),
        }
        bail!("shadowswap exited with {status}; the table was not migrated (its own message above says why)");
    }
    let (model, report) = stopped?;
    let verification = workload::verify(&pool, &model).await?;
    let ddl: Option<(String, String)> = pool.get_conn().await?.query_first(format!("SHOW CREATE TABLE `{TABLE}`")).await?;
    let has_column = ddl.is_some_and(|(_, d)| d.contains("`created_at` datetime(6)"));
    let leftovers: Vec<String> = pool
        .get_conn()
        .await?
        .exec(
            "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME <> ? \
             UNION ALL SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ?",
            (DATABASE, TABLE, DATABASE),
        )
        .await?;

    let secs = migration.as_secs_f64().max(1e-3);
    let during = report.ops_during("migration");
    let errors: Vec<String> = report.counts.errors.iter().map(|(k, n)| format!("{k}: {n}")).collect();
    let errors_during: u64 = report.counts.errors_by_phase.iter().filter(|(p, _)| p == "migration").map(|(_, n)| n).sum();
    println!();
    println!("shadowswap demo — report");
    println!("  rows in the table:      {} before, {} after", thousands(args.rows), thousands(verification.table_rows));
    println!("  migration:              {secs:.1} s (shadowswap alter --execute, start to exit)");
    println!("{}", copy_report(copied, args.rows, secs));
    println!(
        "  writer ops:             {} during the migration ({:.0}/s over {} writers), {} in all",
        thousands(during),
        during as f64 / secs,
        args.writers,
        thousands(report.ops())
    );
    println!(
        "  writer rollbacks:       {} (statements the server rolled back, not applied; {} during the migration){}",
        report.errors(),
        errors_during,
        if errors.is_empty() { String::new() } else { format!(": {}", errors.join(", ")) }
    );
    println!("  new column created_at:  {}", if has_column { "present" } else { "MISSING" });
    println!(
        "  left behind:            {}",
        if leftovers.is_empty() { "nothing (no shadow table, old table or triggers)".to_string() } else { leftovers.join(", ") }
    );
    let ok = verification.ok() && has_column && leftovers.is_empty();
    if verification.ok() {
        println!("  verification: OK — table matches what the writers wrote ({} rows)", thousands(verification.table_rows));
    } else {
        println!("  verification: FAILED — {verification}");
    }
    pool.disconnect().await?;
    Ok(ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helpers() {
        assert_eq!(thousands(1_000_000), "1,000,000");
        assert_eq!(thousands(999), "999");
        assert_eq!(server_part("mysql://u:p@h:1/db?x=1").unwrap(), "mysql://u:p@h:1");
        assert_eq!(server_part("mysql://u:p@h:1").unwrap(), "mysql://u:p@h:1");
        assert_eq!(redacted("mysql://u:p@h:1/db"), "mysql://u:***@h:1/db");
        assert_eq!(
            demo::rows_copied("swapped `d`.`t` in 3.0 s: 1000000 rows copied in 2.5 s (400000 rows/s), checksum ok"),
            Some((1_000_000, 2.5))
        );
    }
}
