//! Tests that span both servers (MariaDB and PostgreSQL): one test binary.
//!
//! - [`credentials`]  — connecting through the CLI: unreachable servers, wrong or special
//!   passwords, either scheme; one clear error line, never a password.
//! - [`dsn_secrecy`]  — no error path shows a password, whatever the DSN, on either scheme.
//! - [`differential`] — the same generated ALTER natively on a clone and with shadowswap, on
//!   either server (`scripts/fuzz.sh` runs `differential::fuzz_from_env`).
//! - [`staged_backfill`] — `shadowswap backfill` on either server: under concurrent writers
//!   against their model, killed and resumed, `--until-none` and its bound, dry run, bad input.
//! - [`staged_migrate`] — `shadowswap migrate` on either server: expand → backfill → contract
//!   from a migration file under writers against their model, the probe's latency during the
//!   contract; killed mid-backfill and re-run, a second runner refused, an edited file refused,
//!   rollback, `migrate status`.

mod credentials;
mod differential;
mod dsn_secrecy;
mod staged_backfill;
mod staged_migrate;
