#!/usr/bin/env bash
# Differential fuzzing: shadowswap against the server itself (docs/differential-testing.md).
#
# Usage: scripts/fuzz.sh [--runs N] [--seed S] [--dialect mariadb|postgres|both]
#                        [--mode quiet|writers|both] [--shape NAME]
#
#   --runs N     seeds per dialect (default 20): S, S+1, …, S+N-1
#   --seed S     the first seed (default: from the clock; printed, so a run can be repeated)
#   --dialect D  mariadb, postgres or both (default both)
#   --mode M     quiet (the ALTER alone), writers (with the writer operations) or both (default)
#   --shape NAME one named defect shape instead of seeds (see
#                integration/src/differential/shapes.rs); the dialect follows from the name
#
# Each generated table and ALTER runs twice: natively on a clone, and with shadowswap on the
# original; rows and definitions must be equal. Every failing case is printed with a one-line
# command that reproduces it. Exit status 0 when nothing was found, 1 otherwise.
#
# Servers: when SHADOWSWAP_MYSQL_DSN / SHADOWSWAP_PG_DSN are set, those servers are used and
# nothing is started. Otherwise the private servers are started as scripts/test.sh does
# (scripts/mariadb.sh start, scripts/postgres.sh start), unless `status` says they already run.
set -euo pipefail
SCRIPT_DIR="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)"
cd "$SCRIPT_DIR/.."

usage() {
    sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'
    exit "${1:-2}"
}

runs=20
seed=""
dialect=both
mode=both
shape=""
while [[ $# -gt 0 ]]; do
    case "$1" in
        --runs) runs="${2:?--runs needs a number}"; shift 2 ;;
        --seed) seed="${2:?--seed needs a number}"; shift 2 ;;
        --dialect) dialect="${2:?--dialect needs mariadb, postgres or both}"; shift 2 ;;
        --mode) mode="${2:?--mode needs quiet, writers or both}"; shift 2 ;;
        --shape) shape="${2:?--shape needs a name}"; shift 2 ;;
        -h|--help) usage 0 ;;
        *) echo "fuzz.sh: unknown argument $1" >&2; usage 2 ;;
    esac
done
[[ "$runs" =~ ^[0-9]+$ ]] || { echo "fuzz.sh: --runs takes a number, not $runs" >&2; exit 2; }
[[ -z "$seed" || "$seed" =~ ^[0-9]+$ ]] || { echo "fuzz.sh: --seed takes a number, not $seed" >&2; exit 2; }
case "$dialect" in mariadb|postgres|both) ;; *) echo "fuzz.sh: --dialect takes mariadb, postgres or both" >&2; exit 2 ;; esac
case "$mode" in quiet|writers|both) ;; *) echo "fuzz.sh: --mode takes quiet, writers or both" >&2; exit 2 ;; esac
if [[ -n "$shape" ]]; then
    case "$shape" in
        mariadb_*) dialect=mariadb ;;
        postgres_*) dialect=postgres ;;
        *) echo "fuzz.sh: shape names start with mariadb_ or postgres_" >&2; exit 2 ;;
    esac
fi
if [[ -z "$seed" ]]; then
    seed=$(( $(date +%s) % 1000000000 ))
fi

# A server of ours: the DSN given, or the private one (started unless it already runs).
if [[ "$dialect" != postgres && -z "${SHADOWSWAP_MYSQL_DSN:-}" ]]; then
    bash scripts/mariadb.sh status >/dev/null 2>&1 || bash scripts/mariadb.sh start
    SHADOWSWAP_MYSQL_DSN="$(bash scripts/mariadb.sh dsn)"
fi
if [[ "$dialect" != mariadb && -z "${SHADOWSWAP_PG_DSN:-}" ]]; then
    bash scripts/postgres.sh status >/dev/null 2>&1 || bash scripts/postgres.sh start
    SHADOWSWAP_PG_DSN="$(bash scripts/postgres.sh dsn)"
fi
export SHADOWSWAP_MYSQL_DSN SHADOWSWAP_PG_DSN

if [[ -n "$shape" ]]; then
    echo "[fuzz] shape $shape ($dialect), mode $mode" >&2
else
    echo "[fuzz] $runs seed(s) per dialect from $seed ($dialect), mode $mode" >&2
fi
export SHADOWSWAP_FUZZ_RUNS="$runs" SHADOWSWAP_FUZZ_SEED="$seed" SHADOWSWAP_FUZZ_DIALECT="$dialect" \
    SHADOWSWAP_FUZZ_MODE="$mode" SHADOWSWAP_FUZZ_SHAPE="$shape"
if cargo test --locked -p shadowswap-integration --test both -- --ignored --exact differential::fuzz_from_env --nocapture; then
    exit 0
fi
exit 1
