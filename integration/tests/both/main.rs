//! Tests that span both servers (MariaDB and PostgreSQL): one test binary.
//!
//! - [`credentials`]  — connecting through the CLI: unreachable servers, wrong or special
//!   passwords, either scheme; one clear error line, never a password.
//! - [`dsn_secrecy`]  — no error path shows a password, whatever the DSN, on either scheme.
//! - [`differential`] — the same generated ALTER natively on a clone and with shadowswap, on
//!   either server (`scripts/fuzz.sh` runs `differential::fuzz_from_env`).
//! - [`staged_backfill`] — `shadowswap backfill` on either server: under concurrent writers
//!   against their model, killed and resumed, `--until-none` and its bound, dry run, bad input.

mod credentials;
mod differential;
mod dsn_secrecy;
mod staged_backfill;
