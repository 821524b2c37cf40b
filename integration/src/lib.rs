//! Test harness for shadowswap against real servers, and the demos' workloads. The tests
//! themselves are in `integration/tests/` (one binary per dialect, `mysql` and `postgres`, and
//! `both` for what spans the two), a module per phase or concept.
//!
//! Module map:
//! - [`cli`]          — the `shadowswap` binary: run to completion or in the background (its
//!   stderr watched line by line, with arrival times), what a failed or refused run must look
//!   like, and the refusal tables: rows ([`cli::Refusal`]) and their driver ([`cli::refuses`]).
//! - [`run`]          — in-process runs: [`run::fast_config`], flag files, a run held before its
//!   cut-over ([`run::PostponedRun`]).
//! - [`db`]           — a test's database on either server ([`db::TestDatabase`]), for the
//!   helpers both dialects' tests share.
//! - [`oracle`]       — the server as the oracle: a migrated table against a clone ALTERed
//!   natively.
//! - [`checksum`]     — the chunk checksum tells every kind of difference, on either server
//!   ([`checksum::tells_every_difference`]).
//! - [`compare`]      — snapshots compared value by value ([`compare::assert_same_rows`]).
//! - [`mysql`]        — MariaDB: a database per test ([`mysql::TestDb`]), the replica, load, and
//!   concurrent writers.
//! - [`postgres`]     — PostgreSQL: a database per test ([`postgres::PgTestDb`]), the standby,
//!   load, concurrent writers, and pgbench.
//! - [`proxy`]        — a TCP proxy that makes a server unreachable mid-test (refused or silent).
//! - [`resume`]       — crash and resume with the binary: a run killed at a log event or a
//!   server-side condition, run again, its JSON summary.
//! - [`model`]        — what both workloads share: keys, the model, op choice, counts, the writer
//!   loop, and the row-by-row comparison of a table with the model.
//! - [`differential`] — differential testing: the same generated ALTER natively on a clone and
//!   with shadowswap on the original, rows and definitions compared (`scripts/fuzz.sh`).
//! - [`demo`]         — what the two demos (`src/bin/`) share.

pub mod checksum;
pub mod cli;
pub mod compare;
pub mod db;
pub mod demo;
pub mod differential;
pub mod model;
pub mod mysql;
pub mod oracle;
pub mod postgres;
pub mod proxy;
pub mod resume;
pub mod run;
pub mod server;
