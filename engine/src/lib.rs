//! The dialect-agnostic shadowswap engine.
//!
//! shadowswap runs an `ALTER TABLE` on a copy of a table (the *shadow table*) while the
//! application keeps writing, then swaps the copy in. This crate drives that; it never names a
//! database driver. Everything a server does is behind the [`Dialect`] trait.
//!
//! Module map, in phase order (a run: preflight → shadow → capture → backfill → checksum →
//! cut-over → cleanup):
//! - [`config`]    — [`MigrationConfig`] and its parts, the throttle's and the cut-over window's
//!   included; every timing constant has its default here.
//! - [`model`]     — what a table looks like: [`TableRef`], [`Column`], [`Index`], [`TableShape`].
//! - [`names`]     — the one function that makes every generated name (`_t_new`, triggers, locks).
//! - [`dialect`]   — the [`Dialect`] trait (the seam between engine and database) and its
//!   [`Signals`] (heartbeat, load, throttle query, cut-over blockers).
//! - [`phase`]     — [`Phase`] and its allowed transitions.
//! - [`runner`]    — the phase script: calls the phase modules below in order, owns the
//!   background tasks and the undo record.
//! - [`preflight`] — the ordered checks that change nothing; inside: [`alter`] (lexical analysis
//!   of the ALTER spec) and [`plan`] (chunk key, column mapping, new unique keys).
//! - (shadow)      — one dialect call, [`Dialect::create_shadow`], made by the runner.
//! - [`capture`]   — installing the capture triggers, verifying nothing bypassed them, removing them.
//! - [`backfill`]  — keyset chunking with time-targeted chunk sizing, and the copy loop.
//! - [`throttle`]  — pauses the backfill and the checksum: replica-lag heartbeat, load, query and
//!   flag-file signals.
//! - [`checksum`]  — chunk-by-chunk comparison of original and shadow before the cut-over.
//! - [`cutover`]   — the wait before the cut-over (postpone flag file, window, replicas caught
//!   up), the bounded, backed-off attempts, and the in-place ALTER.
//! - [`staged`]    — the staged path (expand → backfill → contract) and its dialect seam
//!   [`staged::Staged`]: [`staged::backfill`] is the in-place, batched UPDATE, [`staged::contract`]
//!   the constraint steps done without a long lock.
//! - [`cleanup`](mod@cleanup) — the undo record and steps, `cleanup` of a dead run, the drops
//!   after the swap.
//! - [`fault`]     — fault rehearsals (`--inject-fault`): the spec grammar, the [`fault::Rehearsal`]
//!   server actions, the injector the runner calls at each phase entry, the fault reports.
//! - [`revert`]    — the revert window (`--revert-window`): the swap with reverse capture, the
//!   wait, `shadowswap revert` and `shadowswap finish`.
//! - [`retry`]     — the engine's one retry policy (exponential backoff with jitter).
//! - [`progress`]  — the progress snapshot published to the CLI.
//! - [`error`]     — [`Error`]: every message says what to do next.

pub mod config;
pub mod dialect;
pub mod model;
pub mod names;
pub mod phase;
pub mod runner;

pub mod preflight;
pub use preflight::{alter, plan};
pub mod backfill;
pub mod capture;
pub mod checkpoint;
pub mod checksum;
pub mod cleanup;
pub mod cutover;
pub mod revert;
pub mod staged;
pub mod throttle;

pub mod error;
pub mod fault;
pub mod progress;
pub mod retry;

pub use config::MigrationConfig;
pub use dialect::{Dialect, Signals};
pub use error::{Error, Result};
pub use model::{Column, Index, TableRef, TableShape};
pub use phase::Phase;
pub use plan::Plan;
pub use runner::{cleanup, Outcome, Runner};
