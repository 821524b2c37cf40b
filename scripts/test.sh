#!/usr/bin/env bash
# The whole test suite, on a fresh machine or this one:
#   installs and starts the private MariaDB and PostgreSQL (scripts/mariadb.sh, scripts/postgres.sh),
#   builds once, runs every test (engine unit tests and integration tests against the real servers) with cargo-nextest, in
#   parallel: each integration test uses a database of its own.
# Extra arguments go to `cargo nextest run` (e.g. a test name filter).
set -euo pipefail
SCRIPT_DIR="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)"
cd "$SCRIPT_DIR/.."

bash scripts/mariadb.sh start
bash scripts/mariadb.sh start replica # after the primary: it is seeded from it
bash scripts/postgres.sh start
bash scripts/postgres.sh start replica # after the primary: cloned from it (pg_basebackup)
SHADOWSWAP_MYSQL_DSN="$(bash scripts/mariadb.sh dsn)"
SHADOWSWAP_MYSQL_REPLICA_DSN="$(bash scripts/mariadb.sh dsn replica)"
SHADOWSWAP_PG_DSN="$(bash scripts/postgres.sh dsn)"
SHADOWSWAP_PG_REPLICA_DSN="$(bash scripts/postgres.sh dsn replica)"
export SHADOWSWAP_MYSQL_DSN SHADOWSWAP_MYSQL_REPLICA_DSN SHADOWSWAP_PG_DSN SHADOWSWAP_PG_REPLICA_DSN

cargo build --workspace --all-targets --locked
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast "$@"
else
  echo "[test] cargo-nextest not found; using cargo test" >&2
  cargo test --workspace --locked --no-fail-fast "$@"
fi
