//! The dialect-agnostic shadowswap engine.
//!
//! shadowswap runs an `ALTER TABLE` on a copy of a table (the *shadow table*) while the
//! application keeps writing, then swaps the copy in. This crate drives that; it never names a
//! database driver. Everything a server does is behind the [`Dialect`] trait.
//!
//! Module map:
//! - [`config`]   — [`MigrationConfig`] and its parts; every timing constant has a default here.
//! - [`model`]    — what a table looks like: [`TableRef`], [`Column`], [`Index`], [`TableShape`].
//! - [`names`]    — the one function that makes every generated name (`_t_new`, triggers, locks).
//! - [`alter`]    — lexical analysis of the user's ALTER spec (renames, injected statements).
//! - [`plan`]     — preflight logic that needs no server: chunk key, column mapping, new unique keys.
//! - [`dialect`]  — the [`Dialect`] trait: the seam between engine and database.
//! - [`phase`]    — [`Phase`] and its allowed transitions.
//! - [`backfill`] — keyset chunking with time-targeted chunk sizing, and the copy loop.
//! - [`checksum`] — chunk-by-chunk comparison of original and shadow before the cut-over.
//! - [`cutover`]  — the postponement wait and the bounded, backed-off cut-over attempts.
//! - [`retry`]    — the engine's one retry policy (exponential backoff with jitter).
//! - [`throttle`] — replica-lag heartbeat, load/query/flag-file signals, the cut-over window.
//! - [`progress`] — the progress snapshot published to the CLI.
//! - [`runner`]   — drives the phases, owns the undo steps, and the `cleanup` of a dead run.
//! - [`error`]    — [`Error`]: every message says what to do next.

pub mod alter;
pub mod backfill;
pub mod checksum;
pub mod config;
pub mod cutover;
pub mod dialect;
pub mod error;
pub mod model;
pub mod names;
pub mod phase;
pub mod plan;
pub mod progress;
pub mod retry;
pub mod runner;
pub mod throttle;

pub use config::MigrationConfig;
pub use dialect::{Dialect, Signals};
pub use error::{Error, Result};
pub use model::{Column, Index, TableRef, TableShape};
pub use phase::Phase;
pub use plan::Plan;
pub use runner::{cleanup, Outcome, Runner};
