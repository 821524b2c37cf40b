#!/usr/bin/env bash
#
# The shadowswap demo, in one command, on a fresh Debian machine with only the Rust toolchain:
#
#   bash scripts/demo.sh [DEMO OPTIONS]
#
# 1. installs (apt-get, first time only) and starts the private MariaDB and PostgreSQL of this
#    checkout (scripts/mariadb.sh: 127.0.0.1:33306, data under .local/mariadb/;
#    scripts/postgres.sh: 127.0.0.1:54329, data under .local/postgres/);
# 2. builds the release binaries `shadowswap`, `shadowswap-demo` and `shadowswap-demo-pg`;
# 3. runs the MariaDB demo: database `shadowswap_demo`, sysbench's table `sbtest1` with 1,000,000
#    rows, 4 concurrent writers, and the real `shadowswap alter … --execute` adding a column while
#    they write; then checks the table row by row against what the writers wrote, and reports;
# 4. runs the PostgreSQL demo: database `shadowswap_demo`, `pgbench -i -s 10` (pgbench_accounts
#    with 1,000,000 accounts), `pgbench -c 4 -j 2` running its TPC-B-like script throughout, and
#    the real `shadowswap alter … --execute` adding a column and changing a column's type (a
#    real rewrite); then checks the tables against the history pgbench wrote, and reports.
#
# Demo options:
#   --rows N       MariaDB: rows in sbtest1 (default 1000000)
#   --writers N    MariaDB: concurrent writers (default 4)
#   --seed N       MariaDB: seed of the writers' random choices
#   --scale N      PostgreSQL: pgbench scale factor, 100,000 accounts each (default 10)
#   --clients N    PostgreSQL: pgbench clients (default 4)
#   --only mariadb|postgres
#                  run only that demo (and start only that server)
# (see also `target/release/shadowswap-demo --help` and `target/release/shadowswap-demo-pg --help`)
#
# Environment:
#   SHADOWSWAP_MYSQL_PORT  port of the private MariaDB (default 33306)
#   SHADOWSWAP_MYSQL_DSN   use this server instead (mysql://USER:PASSWORD@HOST:PORT); the
#                          private MariaDB is then not started
#   SHADOWSWAP_PG_PORT     port of the private PostgreSQL (default 54329)
#   SHADOWSWAP_PG_DSN      use this server instead (postgres://USER:PASSWORD@HOST:PORT[/DB]; the
#                          demo uses its own database on it); the private PostgreSQL is then
#                          not started
#   CARGO_TARGET_DIR       honoured, as by cargo
#
# Exit status: 0 when both migrations succeeded and both checks passed; otherwise the status of
# the first demo that did not (1: the check found differences, 2: an error), or 2 for bad options.

set -euo pipefail

SCRIPT_DIR="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)"
LOG_PREFIX=demo
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$SCRIPT_DIR/lib.sh"
cd "$(repo_root)"

# usage: the comment block at the top of this file.
usage() {
    awk 'NR > 2 && /^#/ { sub(/^# ?/, ""); print; next } NR > 2 { exit }' "$0" >&2
}

MARIADB_ARGS=()
PG_ARGS=()
RUN_MARIADB=1
RUN_PG=1
while [[ $# -gt 0 ]]; do
    case "$1" in
        --rows | --writers | --seed)
            [[ $# -ge 2 ]] || die "$1 needs a value" 2
            MARIADB_ARGS+=("$1" "$2")
            shift 2
            ;;
        --rows=* | --writers=* | --seed=*)
            MARIADB_ARGS+=("$1")
            shift
            ;;
        --scale | --clients)
            [[ $# -ge 2 ]] || die "$1 needs a value" 2
            PG_ARGS+=("$1" "$2")
            shift 2
            ;;
        --scale=* | --clients=*)
            PG_ARGS+=("$1")
            shift
            ;;
        --only | --only=*)
            if [[ "$1" == --only ]]; then
                [[ $# -ge 2 ]] || die "--only needs a value: mariadb or postgres" 2
                only="$2"
                shift 2
            else
                only="${1#--only=}"
                shift
            fi
            case "$only" in
                mariadb | mysql) RUN_PG=0 ;;
                postgres | postgresql | pg) RUN_MARIADB=0 ;;
                *) die "--only $only: expected mariadb or postgres" 2 ;;
            esac
            ;;
        -h | --help)
            usage
            exit 0
            ;;
        *)
            usage
            die "unknown option: $1" 2
            ;;
    esac
done

have_cmd cargo || die "cargo not found: install the Rust toolchain (https://rustup.rs) and retry"

if ((RUN_MARIADB)) && [[ -z "${SHADOWSWAP_MYSQL_DSN:-}" ]]; then
    bash scripts/mariadb.sh start
    SHADOWSWAP_MYSQL_DSN="$(bash scripts/mariadb.sh dsn)"
fi
if ((RUN_PG)) && [[ -z "${SHADOWSWAP_PG_DSN:-}" ]]; then
    bash scripts/postgres.sh start
    SHADOWSWAP_PG_DSN="$(bash scripts/postgres.sh dsn)"
fi
export SHADOWSWAP_MYSQL_DSN SHADOWSWAP_PG_DSN

log "building the release binaries (the first build takes a few minutes)"
cargo build --release --locked -p shadowswap-cli -p shadowswap-integration

TARGET_DIR="${CARGO_TARGET_DIR:-target}"
status=0
if ((RUN_MARIADB)); then
    log "running the MariaDB demo"
    "$TARGET_DIR/release/shadowswap-demo" --bin "$TARGET_DIR/release/shadowswap" "${MARIADB_ARGS[@]}" || status=$?
fi
if ((RUN_PG)); then
    ((RUN_MARIADB)) && echo
    log "running the PostgreSQL demo"
    pg_status=0
    "$TARGET_DIR/release/shadowswap-demo-pg" --bin "$TARGET_DIR/release/shadowswap" "${PG_ARGS[@]}" || pg_status=$?
    ((status != 0)) || status=$pg_status
fi
if ((status != 0)); then
    log "a demo failed (exit status $status): see its report above"
fi
exit "$status"
