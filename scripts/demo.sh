#!/usr/bin/env bash
#
# The shadowswap demo, in one command, on a fresh Debian machine with only the Rust toolchain:
#
#   bash scripts/demo.sh [DEMO OPTIONS]
#
# 1. installs (apt-get, first time only) and starts the private MariaDB of this checkout
#    (scripts/mariadb.sh: 127.0.0.1:33306, data under .local/mariadb/);
# 2. builds the release binaries `shadowswap` and `shadowswap-demo`;
# 3. runs the demo: database `shadowswap_demo`, sysbench's table `sbtest1` with 1,000,000 rows,
#    4 concurrent writers, and the real `shadowswap alter … --execute` adding a column while they
#    write; then checks the table row by row against what the writers wrote, and reports.
#
# Demo options (passed on to shadowswap-demo; see `target/release/shadowswap-demo --help`):
#   --rows N       rows in sbtest1 (default 1000000)
#   --writers N    concurrent writers (default 4)
#   --seed N       seed of the writers' random choices
#
# Environment:
#   SHADOWSWAP_MYSQL_PORT  port of the private MariaDB (default 33306)
#   SHADOWSWAP_MYSQL_DSN   use this server instead (mysql://USER:PASSWORD@HOST:PORT); the
#                          private MariaDB is then not started
#   CARGO_TARGET_DIR       honoured, as by cargo
#
# Exit status: 0 when the migration succeeded and the table matches the writers' model.

set -euo pipefail

SCRIPT_DIR="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)"
LOG_PREFIX=demo
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$SCRIPT_DIR/lib.sh"
cd "$(repo_root)"

have_cmd cargo || die "cargo not found: install the Rust toolchain (https://rustup.rs) and retry"

if [[ -z "${SHADOWSWAP_MYSQL_DSN:-}" ]]; then
    bash scripts/mariadb.sh start
    SHADOWSWAP_MYSQL_DSN="$(bash scripts/mariadb.sh dsn)"
fi
export SHADOWSWAP_MYSQL_DSN

log "building the release binaries (the first build takes a few minutes)"
cargo build --release --locked -p shadowswap-cli -p shadowswap-integration

TARGET_DIR="${CARGO_TARGET_DIR:-target}"
log "running the demo"
exec "$TARGET_DIR/release/shadowswap-demo" --bin "$TARGET_DIR/release/shadowswap" "$@"
