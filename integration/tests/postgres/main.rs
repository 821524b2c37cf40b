//! PostgreSQL, against the real server (`scripts/postgres.sh start`, and its standby for
//! [`throttle`]): one test binary, a module per phase or concept, in phase order.
//!
//! - [`tls`]                — connecting: libpq's `sslmode` semantics, through the CLI too.
//! - [`refusals`]           — preflight: every refusal as a table of (setup, ALTER, expected
//!   phrases); nothing left behind, the original unchanged; the dry run.
//! - [`revert`]             — the revert window: a revert under writers with its dependents
//!   carried back, a write the old table cannot take, `finish`, the window's end.
//! - [`safety`]             — copies that could silently differ fail loudly instead.
//! - [`security`]           — the owner's code and settings never run as the migrating user;
//!   privileges carried exactly.
//! - [`columns`]            — the ALTER's column mapping: dropped and re-added columns, an added
//!   `now()` column, timestamptz keys.
//! - [`generated_names`]    — unnamed constraints get the names a plain ALTER gives.
//! - [`types`]              — every column type round-trips through the backfill and the capture.
//! - [`instant`]            — metadata-only ALTERs: the dry run tells, `--attempt-instant-ddl`.
//! - [`capture`]            — every write path reaches the shadow table.
//! - [`checksum`]           — the chunk checksum agrees on equal tables and tells every kind of
//!   difference.
//! - [`copy`]               — one chunk's copy: the fast path, and the fallback when a row
//!   inserted into its range meanwhile or a capture row in the way would make it wrong.
//! - [`concurrency`]        — capture and backfill under concurrent writers (all isolation
//!   levels), checked against their model.
//! - [`dependents`]         — the swap: what binds to the table's OID follows the new table.
//! - [`dependents_catalog`] — the swap: everything in `pg_depend` carried over or refused by name.
//! - [`pre_swap_check`]     — what the capture cannot follow stops the run before the swap.
//! - [`throttle`]           — timed against the standby, run alone (`.config/nextest.toml`):
//!   the throttler on standby lag (`throttle::replica`) and the other signals
//!   (`throttle::signals`: flag file, load, query), and the cut-over controller
//!   (`throttle::cut_over`: blockers, window).
//! - [`pgbench`]            — pgbench through a whole migration, timed: run alone too.
//! - [`contract`]           — `shadowswap contract`: NOT NULL, UNIQUE, FOREIGN KEY, CHECK without a
//!   long lock, under writers (model) and a probe (latency under the lock timeout); failures
//!   undone.
//! - [`lifecycle`]          — a whole run: killed mid-backfill, then `shadowswap cleanup`.
//! - [`rehearsal`]          — fault rehearsals (`--inject-fault`): each kind survived under
//!   writers; nothing injected without the flag; the replay pause (`rehearsal::alone`) runs alone.
//! - [`resume`]             — killed in each phase, the same command resumes; reconnects;
//!   a different ALTER refused until cleanup; a chunk and its checkpoint commit together.
//! - [`restart`]            — the server restarted mid-backfill: the run reconnects and
//!   continues from its checkpoint (run alone).
//!
//! Each test uses a database of its own (`ssw_<name>`), so tests run in parallel. The harness
//! is `shadowswap_integration` (`integration/src/`).

mod capture;
mod checksum;
mod columns;
mod concurrency;
mod contract;
mod copy;
mod dependents;
mod dependents_catalog;
mod generated_names;
mod instant;
mod lifecycle;
mod pgbench;
mod pre_swap_check;
mod refusals;
mod rehearsal;
mod restart;
mod resume;
mod revert;
mod safety;
mod security;
mod throttle;
mod tls;
mod types;
