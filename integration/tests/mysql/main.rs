//! MariaDB, against the real server (`scripts/mariadb.sh start`, and its replica for
//! [`throttle`]): one test binary, a module per phase or concept, in phase order.
//!
//! - [`refusals`]        — preflight: every refusal as a table of (setup, ALTER, expected
//!   phrases); nothing left behind, the original unchanged; the dry run.
//! - [`columns`]         — the ALTER's column mapping: dropped and re-added columns, an added
//!   `CURRENT_TIMESTAMP` column, each against a native ALTER.
//! - [`types`]           — every column type round-trips through the backfill and the capture.
//! - [`binary_defaults`] — binary column defaults that are not UTF-8.
//! - [`chunk_keys`]      — which key drives the copy and the capture when the ALTER touches keys.
//! - [`checksum`]        — the chunk checksum agrees on equal tables and tells every kind of
//!   difference.
//! - [`concurrency`]     — capture and backfill under concurrent writers, checked against their
//!   model.
//! - [`contention`]      — the copy never waits for a row a writer holds (retried smaller), and
//!   writers waiting for row locks make its chunks aim at `--max-latency`.
//! - [`metadata_locks`]  — the capture's and the swap's metadata lock taken without queueing: an
//!   application transaction that has read the table writes it meanwhile, without a deadlock.
//! - [`indexes`]         — the shadow's plain secondary indexes built after the backfill (phase
//!   `build indexes`) under writers, against a native ALTER; the dry run; a crash in the phase.
//! - [`instant`]         — `--attempt-instant-ddl`: `ALGORITHM=INSTANT` in place, or copied.
//! - [`pre_swap_check`]  — what the capture cannot see (TRUNCATE, DDL) stops the run before the
//!   swap.
//! - [`throttle`]        — timed against the replica, run alone (`.config/nextest.toml`): the
//!   throttler on replica lag (`throttle::replica`) and the other signals (`throttle::signals`:
//!   flag file, load, query), and the cut-over controller (`throttle::cut_over`: blockers, window).
//! - [`rehearsal`]       — fault rehearsals (`--inject-fault`): each kind survived under writers;
//!   nothing injected without the flag; the replica pause (`rehearsal::alone`) runs alone.
//! - [`resume`]          — checkpoint, resume and reconnect: kill -9 in each phase and run again,
//!   a different ALTER, a TRUNCATE while dead, killed sessions, every connection cut.
//! - [`contract`]        — `shadowswap contract`: a clause in place (INSTANT / INPLACE, LOCK=NONE)
//!   under writers (model) and a probe (latency under the lock timeout), or by shadow copy; a
//!   failed step leaves the table as it was.
//! - [`revert`]          — the revert window: a revert under writers, a write the old table
//!   cannot take, `finish`, the window's end, the dry run, refusals while it is open.
//! - [`lifecycle`]       — a whole run: killed, terminated, postponed, the old table, the summary,
//!   a cut-over held up by a long transaction.
//! - [`restart`]         — the server restarted mid-backfill: the run reconnects and continues
//!   from its checkpoint (run alone).
//!
//! Each test uses a database of its own (`ssw_<name>`), so tests run in parallel. The harness
//! is `shadowswap_integration` (`integration/src/`).

mod binary_defaults;
mod checksum;
mod chunk_keys;
mod columns;
mod concurrency;
mod contention;
mod contract;
mod indexes;
mod instant;
mod lifecycle;
mod metadata_locks;
mod pre_swap_check;
mod refusals;
mod rehearsal;
mod restart;
mod resume;
mod revert;
mod throttle;
mod types;
