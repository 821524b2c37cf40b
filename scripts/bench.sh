#!/usr/bin/env bash
#
# shadowswap against its peers and against the server's own limit, on one machine, in one run:
#
#   bash scripts/bench.sh [--rows N] [--runs K] [--only mariadb|postgres]
#                         [--load-only | --idle-only | --resume-only] [--write-doc] [OPTIONS]
#
# 1. installs what is missing, with apt-get (Debian): sysbench, percona-toolkit (pt-online-schema-
#    change), postgresql-15-repack (pg_repack), time (GNU time, for peak RSS); the servers as
#    scripts/mariadb.sh and scripts/postgres.sh install them;
# 2. builds shadowswap (cargo build --release --locked -p shadowswap-cli) unless --bin is given;
# 3. starts private servers tuned for the benchmark, never the test servers: the `bench` instances
#    of scripts/mariadb.sh (127.0.0.1:33316) and scripts/postgres.sh (127.0.0.1:54339), data under
#    .local/bench/; prepares database `bench`: sysbench's sbtest1 with N rows (MariaDB) and
#    `pgbench -i` with pgbench_accounts cut to N rows (PostgreSQL), plus a pristine copy of each
#    (bench_pristine) from which the table is re-created before every run;
# 4. idle: K runs of each (interleaved), every one on the freshly re-created table:
#      MariaDB    limit (INSERT … SELECT into a copy with the table's indexes), limit with the
#                 secondary indexes built after the copy, native ALTER … FORCE, ALGORITHM=INPLACE,
#                 pt-online-schema-change (defaults), shadowswap (defaults), shadowswap
#                 --no-checksum; the ALTER is always ADD COLUMN c3 INT NULL
#      PostgreSQL limit (INSERT … SELECT into a copy with the primary key), limit with the primary
#                 key built after the copy, pg_repack (defaults, rebuilds pgbench_accounts),
#                 shadowswap and shadowswap --no-checksum (ADD COLUMN c3 INT NULL)
# 5. under load: a run with no migration (the baseline, as long as the slowest online tool took
#    idle), then each online tool again while a fixed-rate workload runs: sysbench
#    oltp_read_write --threads=4 --rate=200 (MariaDB) / pgbench TPC-B-like -c 4 -R 200
#    (PostgreSQL), both counting latency from each transaction's intended start;
# 6. prints the medians as one table (and a detail table for the runs under load); with
#    --write-doc also writes them into docs/benchmarks.md with the machine's facts.
# With --resume-only, instead: what a kill -9 at 50% of the backfill costs. K times: a whole
# shadowswap run (defaults); then a run killed (SIGKILL) once its checkpoint says half the rows
# are copied, followed by the same command again (the resume), and by `shadowswap cleanup`
# plus a whole run (starting over) on a table restored the same way; prints the time each way
# loses against the uninterrupted run (results/<time>/resume.tsv).
#
# A run during which other work used the machine (its CPU time from /proc, minus the servers',
# the tools' and the workload's own, over --busy-threshold of all CPUs' time; or steal over 5%)
# is redone, at most --max-redo times; then it is kept and marked busy in the table.
#
# Options:
#   --rows N            rows in the table (default 1000000)
#   --runs K            runs per tool and phase; the table shows medians (default 2)
#   --only mariadb|postgres
#   --idle-only         skip the runs under load
#   --load-only         skip the idle runs (the baseline then lasts --baseline-seconds)
#   --resume-only       only the kill -9 at 50% measurement (see above)
#   --tools LIST        only these tools (comma-separated names as in the table: limit,
#                       limit-indexes-after, native-inplace, pt-osc, pg_repack, shadowswap,
#                       shadowswap-no-checksum, backfill; the baseline always runs under load).
#                       `backfill` is the staged path: the column added natively (instant,
#                       untimed), then `shadowswap backfill --set "c3 = …" --where "c3 IS NULL"`
#   --write-doc         write the results into docs/benchmarks.md
#   --max-redo N        redo a busy run at most N times (default 2)
#   --busy-threshold F  other work's largest share of the machine's CPU (default 0.10)
#   --baseline-seconds S  length of the no-migration run when there are no idle runs (default 20)
#   --rate R            workload transactions per second (default 200)
#   --threads T         workload threads / clients (default 4)
#   --tool-timeout S    a tool still running after S seconds is stopped, the run failed (3600)
#   --bin PATH          the shadowswap binary to measure (default: build target/release/shadowswap)
#   --keep-servers      leave the bench servers running at the end (default: stop them)
#
# Environment: SHADOWSWAP_MYSQL_BENCH_PORT (33316), SHADOWSWAP_PG_BENCH_PORT (54339),
# SHADOWSWAP_BENCH_MYSQL_BUFFER_POOL (2G), CARGO_TARGET_DIR.
#
# Everything a run produces is kept under .local/bench/results/<UTC time>/: runs.jsonl (one record
# per run and attempt), facts.tsv (the machine), and per run the tool's and the workload's output.
# Exit status: 0 when every run succeeded, 1 when one failed (the table says which), 2 bad usage.

set -euo pipefail

SCRIPT_DIR="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)"
LOG_PREFIX=bench
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$SCRIPT_DIR/lib.sh"
REPO_ROOT="$(repo_root)"
cd "$REPO_ROOT"

usage() {
    awk 'NR > 2 && /^#/ { sub(/^# ?/, ""); print; next } NR > 2 { exit }' "$0" >&2
}

COMMAND_LINE="bash scripts/bench.sh${*:+ $*}"
ROWS=1000000
RUNS=2
RUN_MARIADB=1
RUN_PG=1
DO_IDLE=1
DO_LOAD=1
DO_RESUME=0
TOOLS=""
WRITE_DOC=0
MAX_REDO=2
BUSY_THRESHOLD=0.10
BASELINE_SECONDS=20
RATE=200
THREADS=4
TOOL_TIMEOUT=3600
BIN=""
KEEP_SERVERS=0

need_value() {
    [[ $# -ge 2 && -n "$2" ]] || die "$1 needs a value" 2
}
is_uint() {
    [[ "$1" =~ ^[0-9]+$ ]]
}

while [[ $# -gt 0 ]]; do
    case "$1" in
        --*=*)
            # --opt=value -> --opt value
            set -- "${1%%=*}" "${1#*=}" "${@:2}"
            continue
            ;;
        --rows) need_value "$@"; ROWS="$2"; shift 2 ;;
        --runs) need_value "$@"; RUNS="$2"; shift 2 ;;
        --only)
            need_value "$@"
            case "$2" in
                mariadb | mysql) RUN_PG=0 ;;
                postgres | postgresql | pg) RUN_MARIADB=0 ;;
                *) die "--only $2: expected mariadb or postgres" 2 ;;
            esac
            shift 2
            ;;
        --idle-only) DO_LOAD=0; shift ;;
        --load-only) DO_IDLE=0; shift ;;
        --resume-only) DO_IDLE=0; DO_LOAD=0; DO_RESUME=1; shift ;;
        --tools) need_value "$@"; TOOLS=",$2,"; shift 2 ;;
        --write-doc) WRITE_DOC=1; shift ;;
        --max-redo) need_value "$@"; MAX_REDO="$2"; shift 2 ;;
        --busy-threshold) need_value "$@"; BUSY_THRESHOLD="$2"; shift 2 ;;
        --baseline-seconds) need_value "$@"; BASELINE_SECONDS="$2"; shift 2 ;;
        --rate) need_value "$@"; RATE="$2"; shift 2 ;;
        --threads) need_value "$@"; THREADS="$2"; shift 2 ;;
        --tool-timeout) need_value "$@"; TOOL_TIMEOUT="$2"; shift 2 ;;
        --bin) need_value "$@"; BIN="$2"; shift 2 ;;
        --keep-servers) KEEP_SERVERS=1; shift ;;
        -h | --help) usage; exit 0 ;;
        *) usage; die "unknown option: $1" 2 ;;
    esac
done
for v in ROWS RUNS MAX_REDO BASELINE_SECONDS RATE THREADS TOOL_TIMEOUT; do
    is_uint "${!v}" || die "--$(tr '[:upper:]_' '[:lower:]-' <<<"$v") must be a whole number, got '${!v}'" 2
done
((ROWS >= 1000)) || die "--rows must be at least 1000" 2
((RUNS >= 1)) || die "--runs must be at least 1" 2
((DO_IDLE || DO_LOAD || DO_RESUME)) || die "--idle-only and --load-only exclude each other" 2
[[ "$BUSY_THRESHOLD" =~ ^(0(\.[0-9]+)?|1(\.0+)?)$ ]] || die "--busy-threshold must be a fraction between 0 and 1" 2

# The callers' PG* variables (PGHOST, PGPORT, PGSSLMODE, ...) must not redirect our connections.
while IFS= read -r _var; do
    unset "$_var"
done < <(compgen -e | grep '^PG' || true)
unset _var

PY=python3
MEASURE="$SCRIPT_DIR/bench/measure.py"
REPORT="$SCRIPT_DIR/bench/report.py"
have_cmd "$PY" || die "python3 not found"

# --------------------------------------------------------------------------
# Servers, connections, tables
# --------------------------------------------------------------------------

HOST=127.0.0.1
USER_NAME=shadowswap
USER_PASSWORD=shadowswap
DB=bench
MY_PORT="${SHADOWSWAP_MYSQL_BENCH_PORT:-33316}"
PG_PORT="${SHADOWSWAP_PG_BENCH_PORT:-54339}"
MY_PIDFILE="$REPO_ROOT/.local/bench/mariadb/bench.pid"
PG_PIDFILE="$REPO_ROOT/.local/bench/postgres/bench/postmaster.pid"
MY_DSN="mysql://$USER_NAME:$USER_PASSWORD@$HOST:$MY_PORT/$DB"
PG_DSN="postgres://$USER_NAME:$USER_PASSWORD@$HOST:$PG_PORT/$DB"
export PGPASSWORD="$USER_PASSWORD" PGCONNECT_TIMEOUT=10
ALTER="ADD COLUMN c3 INT NULL"
PG_MAJOR=""
PG_BIN=""
PEERS_INSTALLED=0
PG_SCALE=$(((ROWS + 99999) / 100000))

# SQL on the bench MariaDB as the shadowswap user (ALL PRIVILEGES), in database bench.
my_sql() {
    mariadb --no-defaults --protocol=tcp -h"$HOST" -P"$MY_PORT" -u"$USER_NAME" -p"$USER_PASSWORD" \
        -N -B "$@"
}
# SQL on the bench PostgreSQL as the shadowswap role (a superuser there), in database bench.
pg_sql() {
    "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -At -h "$HOST" -p "$PG_PORT" -U "$USER_NAME" -d "$DB" "$@"
}

start_servers() {
    if ((RUN_MARIADB)); then
        bash scripts/mariadb.sh start bench
        my_sql -e "CREATE DATABASE IF NOT EXISTS $DB"
    fi
    if ((RUN_PG)); then
        bash scripts/postgres.sh start bench
        PG_MAJOR="$(bash scripts/postgres.sh client bench -Atc 'SHOW server_version_num' | cut -c1-2)"
        PG_BIN="/usr/lib/postgresql/$PG_MAJOR/bin"
        [[ -x "$PG_BIN/psql" ]] || PG_BIN="$(dirname -- "$(command -v psql)")"
        if [[ "$(bash scripts/postgres.sh client bench -Atc "SELECT count(*) FROM pg_database WHERE datname = '$DB'")" == 0 ]]; then
            bash scripts/postgres.sh client bench -qc "CREATE DATABASE $DB OWNER $USER_NAME"
        fi
    fi
}

stop_servers() {
    if ((KEEP_SERVERS)); then
        log "leaving the bench servers running (scripts/mariadb.sh stop bench, scripts/postgres.sh stop bench)"
        return 0
    fi
    if ((RUN_MARIADB)); then
        bash scripts/mariadb.sh stop bench || true
    fi
    if ((RUN_PG)); then
        bash scripts/postgres.sh stop bench || true
    fi
}

# Peers and helpers, from Debian's packages. Installs only what is missing.
install_peers() {
    local -a pkgs=()
    have_cmd sysbench || pkgs+=(sysbench)
    [[ -x /usr/bin/time ]] || pkgs+=(time)
    if ((RUN_MARIADB)); then
        have_cmd pt-online-schema-change || pkgs+=(percona-toolkit)
        # pt-osc talks to MariaDB through DBI/DBD::mysql (a dependency of the package).
        perl -MDBD::mysql -e 1 2>/dev/null || pkgs+=(libdbd-mysql-perl)
    fi
    if ((RUN_PG)); then
        [[ -x "$PG_BIN/pg_repack" ]] || pkgs+=("postgresql-$PG_MAJOR-repack")
    fi
    if ((${#pkgs[@]})); then
        log "installing ${pkgs[*]} (apt-get)"
        need_root_or_sudo "installing ${pkgs[*]}"
        apt_install_without_services "${pkgs[@]}" || warn "apt-get install returned non-zero; checking"
        PEERS_INSTALLED=1
    fi
    have_cmd sysbench || die "sysbench still missing"
    [[ -x /usr/bin/time ]] || die "/usr/bin/time still missing"
    if ((RUN_MARIADB)); then
        have_cmd pt-online-schema-change || die "pt-online-schema-change still missing"
    fi
    if ((RUN_PG)); then
        [[ -x "$PG_BIN/pg_repack" ]] || die "$PG_BIN/pg_repack still missing"
    fi
}

build_shadowswap() {
    if [[ -n "$BIN" ]]; then
        [[ -x "$BIN" ]] || die "--bin $BIN: not an executable"
        return 0
    fi
    have_cmd cargo || die "cargo not found: install the Rust toolchain or pass --bin"
    log "building shadowswap (release)"
    cargo build --release --locked -p shadowswap-cli >&2
    BIN="${CARGO_TARGET_DIR:-target}/release/shadowswap"
    [[ -x "$BIN" ]] || die "build did not produce $BIN"
}

# MariaDB: sysbench's sbtest1 (id PK, k with secondary index k_1, c, pad) with ROWS rows, and
# bench_pristine, a copy with the same definition. Reused when the copy already has ROWS rows.
prepare_mariadb() {
    local have
    have="$(my_sql "$DB" -e "SELECT COUNT(*) FROM bench_pristine" 2>/dev/null || echo 0)"
    if [[ "$have" == "$ROWS" ]]; then
        log "MariaDB: bench_pristine already has $ROWS rows"
        return 0
    fi
    log "MariaDB: preparing sbtest1 with $ROWS rows (sysbench oltp_read_write prepare)"
    my_sql "$DB" -e "DROP TABLE IF EXISTS sbtest1, bench_pristine"
    sysbench "${SB_ARGS[@]}" oltp_read_write prepare >"$OUT/prepare-mariadb.log" 2>&1 ||
        die "sysbench prepare failed (see $OUT/prepare-mariadb.log)"
    my_sql "$DB" -e "CREATE TABLE bench_pristine LIKE sbtest1;
        INSERT INTO bench_pristine SELECT * FROM sbtest1;"
}

# Re-create sbtest1 from bench_pristine: every other table in the database goes (what a tool
# created or left: _sbtest1_new/_old, triggers with their tables, the limit's copy). The binary
# logs of earlier runs go too (each run logs every row it copies, ~1 GB per 1M-row run).
restore_mariadb() {
    local drop
    drop="$(my_sql -e "SELECT GROUP_CONCAT(CONCAT('\`', TABLE_NAME, '\`')) FROM information_schema.TABLES
        WHERE TABLE_SCHEMA = '$DB' AND TABLE_NAME <> 'bench_pristine'")"
    [[ "$drop" != NULL ]] || drop=""
    my_sql "$DB" -e "${drop:+DROP TABLE IF EXISTS $drop;}
        CREATE TABLE sbtest1 LIKE bench_pristine;
        INSERT INTO sbtest1 SELECT * FROM bench_pristine;
        ANALYZE TABLE sbtest1;
        SET GLOBAL innodb_max_purge_lag_wait = 0;
        FLUSH BINARY LOGS;
        PURGE BINARY LOGS BEFORE NOW();" >/dev/null
    flush_mariadb
}

# MariaDB's counterpart of the CHECKPOINT that ends restore_pg: write every dirty page of the
# buffer pool, so that each run starts with an empty redo log. Without it the restore's 1M rows
# (and the previous run's) were still being flushed at innodb_io_capacity (200 pages/s) during
# the next run, and when the redo log filled, InnoDB's furious flushing stalled the workload
# for 200 to 700 ms at a time, whichever tool was running. The page cleaner works at up to
# 2000 pages/s meanwhile; the server's settings are put back before the run.
flush_mariadb() {
    my_sql -e "SET GLOBAL innodb_io_capacity = 2000, GLOBAL innodb_max_dirty_pages_pct = 0"
    wait_until 600 mariadb_flushed || warn "MariaDB still has dirty pages after 600 s; running anyway"
    my_sql -e "SET GLOBAL innodb_io_capacity = DEFAULT, GLOBAL innodb_max_dirty_pages_pct = DEFAULT"
}

# True when the buffer pool holds (almost) no dirty page and the redo log is (almost) all
# checkpointed: under 1% of the pool, under 16 MiB of redo.
mariadb_flushed() {
    local dirty age
    read -r dirty age < <(my_sql -e "SELECT SUM(IF(VARIABLE_NAME = 'INNODB_BUFFER_POOL_PAGES_DIRTY', VARIABLE_VALUE, 0)),
        SUM(IF(VARIABLE_NAME = 'INNODB_CHECKPOINT_AGE', VARIABLE_VALUE, 0)) FROM information_schema.GLOBAL_STATUS
        WHERE VARIABLE_NAME IN ('INNODB_BUFFER_POOL_PAGES_DIRTY', 'INNODB_CHECKPOINT_AGE')")
    local total
    total="$(my_sql -e "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = 'INNODB_BUFFER_POOL_PAGES_TOTAL'")"
    ((dirty * 100 < total && age < 16 * 1024 * 1024))
}

# PostgreSQL: pgbench -i at the scale that covers ROWS accounts, pgbench_accounts cut to ROWS
# rows, and bench_pristine, a plain copy of it. Reused when the copy already has ROWS rows.
prepare_pg() {
    local have
    have="$(pg_sql -c "SELECT count(*) FROM bench_pristine" 2>/dev/null || echo 0)"
    if [[ "$have" == "$ROWS" ]]; then
        log "PostgreSQL: bench_pristine already has $ROWS rows"
    else
        log "PostgreSQL: preparing pgbench_accounts with $ROWS rows (pgbench -i -s $PG_SCALE)"
        pg_sql -c "DROP TABLE IF EXISTS bench_pristine"
        "$PG_BIN/pgbench" -i -s "$PG_SCALE" -h "$HOST" -p "$PG_PORT" -U "$USER_NAME" "$DB" \
            >"$OUT/prepare-postgres.log" 2>&1 || die "pgbench -i failed (see $OUT/prepare-postgres.log)"
        pg_sql -c "DELETE FROM pgbench_accounts WHERE aid > $ROWS" \
            -c "CREATE TABLE bench_pristine AS SELECT * FROM pgbench_accounts ORDER BY aid"
    fi
    pg_sql -c "CREATE EXTENSION IF NOT EXISTS pg_repack"
}

# Re-create pgbench_accounts as pgbench -i makes it (fillfactor 100, primary key on aid) from
# bench_pristine; every other table but pgbench's goes; then VACUUM ANALYZE (hint bits and
# visibility map set, so no tool pays for them) and a CHECKPOINT.
restore_pg() {
    local drop
    drop="$(pg_sql -c "SELECT string_agg(format('%I.%I', schemaname, tablename), ', ') FROM pg_tables
        WHERE schemaname = 'public'
          AND tablename NOT IN ('bench_pristine', 'pgbench_branches', 'pgbench_tellers', 'pgbench_history')")"
    pg_sql -c "${drop:+DROP TABLE IF EXISTS $drop CASCADE;}
        CREATE TABLE pgbench_accounts (aid int NOT NULL, bid int, abalance int, filler char(84))
            WITH (fillfactor = 100);
        INSERT INTO pgbench_accounts SELECT * FROM bench_pristine ORDER BY aid;
        ALTER TABLE pgbench_accounts ADD PRIMARY KEY (aid);
        TRUNCATE pgbench_history;" \
        -c "VACUUM ANALYZE pgbench_accounts" -c "VACUUM ANALYZE pgbench_tellers" \
        -c "VACUUM ANALYZE pgbench_branches" -c "CHECKPOINT"
}

# --------------------------------------------------------------------------
# One run
# --------------------------------------------------------------------------

RUN_DIR=""
T0=""
T1=""
TOOL_RC=0

seconds_between() {
    awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'
}

# timed_tool NAME CMD...: run CMD (stdout/stderr to RUN_DIR/NAME.out/.err) under GNU time -v (peak
# RSS, RUN_DIR/NAME.time) and --tool-timeout; sets T0/T1 (epoch seconds) and TOOL_RC.
timed_tool() {
    local name="$1"
    shift
    T0="$EPOCHREALTIME"
    TOOL_RC=0
    /usr/bin/time -v -o "$RUN_DIR/$name.time" timeout -k 30 "$TOOL_TIMEOUT" "$@" \
        >"$RUN_DIR/$name.out" 2>"$RUN_DIR/$name.err" </dev/null || TOOL_RC=$?
    T1="$EPOCHREALTIME"
}

# timed_sql NAME PRE TIMED POST: the limit. PRE (untimed) prepares the copy, TIMED is timed, POST
# (untimed) cleans up. No RSS: the work is the server's.
timed_sql() {
    local db="$1" name="$2" pre="$3" timed="$4" post="$5" client
    if [[ "$db" == mariadb ]]; then client=(my_sql "$DB" -e); else client=(pg_sql -c); fi
    T0="$EPOCHREALTIME"
    if ! "${client[@]}" "$pre" >"$RUN_DIR/$name.out" 2>"$RUN_DIR/$name.err"; then
        TOOL_RC=1
        T1="$T0"
        return 0
    fi
    T0="$EPOCHREALTIME"
    TOOL_RC=0
    "${client[@]}" "$timed" >>"$RUN_DIR/$name.out" 2>>"$RUN_DIR/$name.err" || TOOL_RC=$?
    T1="$EPOCHREALTIME"
    "${client[@]}" "$post" >>"$RUN_DIR/$name.out" 2>>"$RUN_DIR/$name.err" || true
}

shadowswap_cmd() {
    local dsn="$1" table="$2"
    shift 2
    printf '%s\0' "$BIN" --log-format json alter --dsn "$dsn" --table "$table" --alter "$ALTER" --execute "$@"
}

# tool_setup DB TOOL: what a tool's run needs done first, before the workload starts and untimed:
# the staged path's column, added natively (instantly). Under the workload, a native ALTER queues
# for the table's metadata lock with the server's default lock_wait_timeout, and the workload's
# transactions that had read the table and then wrote it died of the MDL deadlock (1213), which
# the table then counted against the backfill.
tool_setup() {
    case "$1:$2" in
        mariadb:backfill) my_sql "$DB" -e "ALTER TABLE sbtest1 $ALTER, ALGORITHM=INSTANT" ;;
        postgres:backfill) pg_sql -c "ALTER TABLE pgbench_accounts $ALTER" ;;
    esac
}

# run_tool DB TOOL: the migration (or the limit, or the baseline's wait) itself.
run_tool() {
    local db="$1" tool="$2" baseline_s="${3:-0}"
    local -a cmd
    case "$db:$tool" in
        *:baseline)
            T0="$EPOCHREALTIME"
            sleep "$baseline_s"
            T1="$EPOCHREALTIME"
            TOOL_RC=0
            ;;
        mariadb:limit)
            timed_sql mariadb limit \
                "CREATE TABLE bench_copy LIKE sbtest1; ALTER TABLE bench_copy $ALTER" \
                "INSERT INTO bench_copy (id, k, c, pad) SELECT id, k, c, pad FROM sbtest1" \
                "DROP TABLE bench_copy"
            ;;
        mariadb:limit-indexes-after)
            timed_sql mariadb limit-indexes-after \
                "CREATE TABLE bench_copy LIKE sbtest1; ALTER TABLE bench_copy DROP INDEX k_1, $ALTER" \
                "INSERT INTO bench_copy (id, k, c, pad) SELECT id, k, c, pad FROM sbtest1;
                 ALTER TABLE bench_copy ADD INDEX k_1 (k)" \
                "DROP TABLE bench_copy"
            ;;
        mariadb:native-inplace)
            # FORCE: without it MariaDB adds the column instantly (metadata only), no rebuild.
            timed_sql mariadb native-inplace "SELECT 1" \
                "ALTER TABLE sbtest1 $ALTER, FORCE, ALGORITHM=INPLACE, LOCK=NONE" "SELECT 1"
            ;;
        mariadb:pt-osc)
            # --no-version-check: the default check calls Percona's server over the network.
            timed_tool pt-osc pt-online-schema-change --no-version-check --alter "$ALTER" --execute \
                "h=$HOST,P=$MY_PORT,u=$USER_NAME,p=$USER_PASSWORD,D=$DB,t=sbtest1"
            ;;
        mariadb:shadowswap)
            mapfile -d '' cmd < <(shadowswap_cmd "$MY_DSN" sbtest1)
            timed_tool shadowswap "${cmd[@]}"
            ;;
        mariadb:shadowswap-no-checksum)
            mapfile -d '' cmd < <(shadowswap_cmd "$MY_DSN" sbtest1 --no-checksum)
            timed_tool shadowswap "${cmd[@]}"
            ;;
        mariadb:backfill)
            timed_tool backfill "$BIN" --log-format json backfill --dsn "$MY_DSN" --table sbtest1 \
                --set "c3 = k + 1" --where "c3 IS NULL" --execute
            ;;
        postgres:limit)
            timed_sql postgres limit \
                "CREATE TABLE bench_copy (LIKE pgbench_accounts INCLUDING ALL); ALTER TABLE bench_copy $ALTER" \
                "INSERT INTO bench_copy (aid, bid, abalance, filler) SELECT aid, bid, abalance, filler FROM pgbench_accounts" \
                "DROP TABLE bench_copy"
            ;;
        postgres:limit-indexes-after)
            timed_sql postgres limit-indexes-after \
                "CREATE TABLE bench_copy (LIKE pgbench_accounts INCLUDING DEFAULTS); ALTER TABLE bench_copy $ALTER" \
                "INSERT INTO bench_copy (aid, bid, abalance, filler) SELECT aid, bid, abalance, filler FROM pgbench_accounts;
                 ALTER TABLE bench_copy ADD PRIMARY KEY (aid)" \
                "DROP TABLE bench_copy"
            ;;
        postgres:pg_repack)
            timed_tool pg_repack "$PG_BIN/pg_repack" --no-password -h "$HOST" -p "$PG_PORT" \
                -U "$USER_NAME" -d "$DB" -t pgbench_accounts
            ;;
        postgres:shadowswap)
            mapfile -d '' cmd < <(shadowswap_cmd "$PG_DSN" pgbench_accounts)
            timed_tool shadowswap "${cmd[@]}"
            ;;
        postgres:shadowswap-no-checksum)
            mapfile -d '' cmd < <(shadowswap_cmd "$PG_DSN" pgbench_accounts --no-checksum)
            timed_tool shadowswap "${cmd[@]}"
            ;;
        postgres:backfill)
            timed_tool backfill "$BIN" --log-format json backfill --dsn "$PG_DSN" --table pgbench_accounts \
                --set "c3 = bid + 1" --where "c3 IS NULL" --execute
            ;;
        *) die "unknown tool $tool for $db" ;;
    esac
}

# After a failed run: what the tool may have left. The table itself is re-created anyway.
clean_after_failure() {
    local db="$1" tool="$2"
    case "$db:$tool" in
        mariadb:shadowswap*) "$BIN" cleanup --dsn "$MY_DSN" --table sbtest1 >&2 || true ;;
        postgres:shadowswap*) "$BIN" cleanup --dsn "$PG_DSN" --table pgbench_accounts >&2 || true ;;
        postgres:pg_repack)
            # pg_repack's documented cleanup: drop and re-create the extension.
            pg_sql -c "DROP EXTENSION IF EXISTS pg_repack CASCADE" -c "CREATE EXTENSION pg_repack" || true
            ;;
    esac
}

# verify DB PHASE TOOL: the table has ROWS rows and (when the tool added it) column c3. Not the
# row count after MariaDB runs under load: sysbench retries a transaction after a lock wait timeout
# with a new BEGIN, which commits the part that had succeeded (a DELETE without its INSERT).
verify() {
    local db="$1" phase="$2" tool="$3" count cols want_c3=1
    case "$tool" in
        baseline | limit | limit-indexes-after | pg_repack) want_c3=0 ;;
    esac
    if [[ "$db" == mariadb ]]; then
        count="$(my_sql "$DB" -e "SELECT COUNT(*) FROM sbtest1")" || return 1
        cols="$(my_sql -e "SELECT COUNT(*) FROM information_schema.COLUMNS
            WHERE TABLE_SCHEMA = '$DB' AND TABLE_NAME = 'sbtest1' AND COLUMN_NAME = 'c3'")" || return 1
    else
        count="$(pg_sql -c "SELECT count(*) FROM pgbench_accounts")" || return 1
        cols="$(pg_sql -c "SELECT count(*) FROM information_schema.columns
            WHERE table_schema = 'public' AND table_name = 'pgbench_accounts' AND column_name = 'c3'")" || return 1
    fi
    if [[ "$count" != "$ROWS" && ! ("$db" == mariadb && "$phase" == load) ]]; then
        printf 'the table has %s rows, expected %s' "$count" "$ROWS"
        return 1
    fi
    if [[ "$cols" != "$want_c3" ]]; then
        printf 'column c3 %s' "$( ((want_c3)) && echo missing || echo unexpected)"
        return 1
    fi
}

WL_PID=""
WL_STOP=""

# The fixed-rate workload, in the background, until workload_stop.
workload_start() {
    local db="$1"
    WL_STOP="$RUN_DIR/workload.stop"
    rm -f -- "$WL_STOP"
    if [[ "$db" == mariadb ]]; then
        # --rate: paced arrivals; latency includes the time each transaction waited in the queue,
        # i.e. it is counted from the intended start. 1213 deadlock, 1205 lock wait timeout: the
        # transaction is retried (counted by oltp_rw.lua), as an application would.
        BENCH_STOP_FILE="$WL_STOP" sysbench "${SB_ARGS[@]}" "$SCRIPT_DIR/bench/oltp_rw.lua" \
            --threads="$THREADS" --rate="$RATE" --time=0 --report-interval=1 \
            --histogram=on --percentile=99 --mysql-ignore-errors=1213,1205 run \
            >"$RUN_DIR/workload.out" 2>&1 </dev/null &
        WL_PID=$!
        # sysbench connects its threads before it says so and counts from then on: the migration
        # starts right away, so that sysbench's totals cover the migration and little else.
        local deadline=$((SECONDS + 30))
        until grep -qs 'Threads started' "$RUN_DIR/workload.out"; do
            if ((SECONDS >= deadline)) || ! pid_alive "$WL_PID"; then
                die "sysbench did not start (see $RUN_DIR/workload.out)"
            fi
            sleep 0.02
        done
    else
        # -R: latency from each transaction's scheduled start. --max-tries: deadlocks and
        # serialization failures are retried (each retry counted), --failures-detailed names
        # them. -l: one line per transaction, so that exactly the migration's window counts.
        "$PG_BIN/pgbench" -h "$HOST" -p "$PG_PORT" -U "$USER_NAME" -n \
            -c "$THREADS" -j 2 -R "$RATE" -T $((TOOL_TIMEOUT + 600)) \
            --max-tries=10 --failures-detailed -l --log-prefix="$RUN_DIR/pgbench" \
            -f "$SCRIPT_DIR/bench/tpcb-like.sql" -D naccounts="$ROWS" -D scale="$PG_SCALE" "$DB" \
            >"$RUN_DIR/workload.out" 2>&1 </dev/null &
        WL_PID=$!
        # Connections made and the pace steady before the window (the log is cut to it) opens.
        sleep 2
    fi
    pid_alive "$WL_PID" || die "the workload exited at once (see $RUN_DIR/workload.out)"
}

# Stop the workload and summarise it (RUN_DIR/workload.json).
workload_stop() {
    local db="$1"
    if [[ "$db" == mariadb ]]; then
        local -a early=()
        pid_alive "$WL_PID" || early=(--ended-early)
        touch -- "$WL_STOP"
        if ! wait_until 120 not pid_alive "$WL_PID"; then
            warn "sysbench did not stop within 120 s of the stop file; killing it"
            kill -TERM "$WL_PID" 2>/dev/null || true
        fi
        wait "$WL_PID" 2>/dev/null || true
        "$PY" "$MEASURE" sysbench "$RUN_DIR/workload.out" "${early[@]}" >"$RUN_DIR/workload.json"
    else
        # Transactions scheduled before T1 that are still running finish meanwhile, and the log
        # lines of the window are flushed by the ones written after it (pgbench buffers its log).
        sleep 5
        kill -TERM "$WL_PID" 2>/dev/null || true
        wait "$WL_PID" 2>/dev/null || true
        "$PY" "$MEASURE" pgbench "$RUN_DIR/pgbench" --start "$T0" --end "$T1" \
            --out-file "$RUN_DIR/workload.out" >"$RUN_DIR/workload.json"
    fi
    WL_PID=""
}

cpu_sample() {
    local -a roots=(--root "$$")
    local pid
    for pid in "$(read_pid_file "$MY_PIDFILE" 2>/dev/null || true)" \
        "$(read_pid_file "$PG_PIDFILE" 2>/dev/null || true)"; do
        [[ -n "$pid" ]] && roots+=(--root "$pid")
    done
    "$PY" "$MEASURE" sample "$1" "${roots[@]}"
}

FAILED_RUNS=0

# measure DB PHASE TOOL RUN [BASELINE_SECONDS]: one run, redone while the machine was busy.
measure() {
    local db="$1" phase="$2" tool="$3" run="$4" baseline_s="${5:-0}"
    local attempt=1 ok err busy
    while true; do
        RUN_DIR="$OUT/$db/$phase/$tool/run$run.$attempt"
        mkdir -p -- "$RUN_DIR"
        "restore_${db/postgres/pg}"
        tool_setup "$db" "$tool"
        if [[ "$phase" == load ]]; then
            workload_start "$db"
        fi
        cpu_sample "$RUN_DIR/cpu.start.json"
        run_tool "$db" "$tool" "$baseline_s"
        cpu_sample "$RUN_DIR/cpu.end.json"
        if [[ "$phase" == load ]]; then
            workload_stop "$db"
        fi
        "$PY" "$MEASURE" busy "$RUN_DIR/cpu.start.json" "$RUN_DIR/cpu.end.json" \
            --threshold "$BUSY_THRESHOLD" >"$RUN_DIR/busy.json"
        ok=1
        err=""
        if ((TOOL_RC != 0)); then
            ok=0
            err="exit status $TOOL_RC"
            if ((TOOL_RC == 124)); then
                err+=" (timed out after ${TOOL_TIMEOUT}s)"
            fi
            err+=": $(cat -- "$RUN_DIR"/*.err 2>/dev/null | tail -n 2 | tr '\n' ' ' | cut -c1-300 || true)"
        elif ! err="$(verify "$db" "$phase" "$tool")"; then
            ok=0
        fi
        local -a extra=()
        case "$tool" in
            shadowswap*) extra+=(--summary "$RUN_DIR/shadowswap.out" --time-file "$RUN_DIR/shadowswap.time") ;;
            pt-osc | pg_repack | backfill) extra+=(--time-file "$RUN_DIR/$tool.time") ;;
        esac
        if [[ -f "$RUN_DIR/workload.json" ]]; then
            extra+=(--workload "$RUN_DIR/workload.json")
        fi
        "$PY" "$MEASURE" record "$OUT/runs.jsonl" --db "$db" --phase "$phase" --tool "$tool" \
            --run "$run" --attempt "$attempt" --ok "$ok" --error "$err" --rows "$ROWS" \
            --wall "$(seconds_between "$T0" "$T1")" --busy "$RUN_DIR/busy.json" "${extra[@]}"
        if ((!ok)); then
            clean_after_failure "$db" "$tool"
            FAILED_RUNS=$((FAILED_RUNS + 1))
            return 0
        fi
        busy="$("$PY" -c 'import json,sys; print(int(json.load(open(sys.argv[1]))["busy"]))' "$RUN_DIR/busy.json")"
        if ((busy && attempt <= MAX_REDO)); then
            log "other work used the machine during that run: redoing it"
            attempt=$((attempt + 1))
            continue
        fi
        return 0
    done
}

# --------------------------------------------------------------------------
# Phases
# --------------------------------------------------------------------------

bench_db() {
    local db="$1" run tool baseline_s
    local -a idle_tools load_tools
    if [[ "$db" == mariadb ]]; then
        idle_tools=(limit limit-indexes-after native-inplace pt-osc shadowswap shadowswap-no-checksum backfill)
        load_tools=(pt-osc shadowswap shadowswap-no-checksum backfill)
        prepare_mariadb
    else
        idle_tools=(limit limit-indexes-after pg_repack shadowswap shadowswap-no-checksum backfill)
        load_tools=(pg_repack shadowswap shadowswap-no-checksum backfill)
        prepare_pg
    fi
    if [[ -n "$TOOLS" ]]; then
        local -a keep=()
        for tool in "${idle_tools[@]}"; do [[ "$TOOLS" == *",$tool,"* ]] && keep+=("$tool"); done
        idle_tools=("${keep[@]}")
        keep=()
        for tool in "${load_tools[@]}"; do [[ "$TOOLS" == *",$tool,"* ]] && keep+=("$tool"); done
        load_tools=("${keep[@]}")
    fi
    if ((DO_IDLE)); then
        log "$db: idle runs ($RUNS each)"
        for ((run = 1; run <= RUNS; run++)); do
            for tool in "${idle_tools[@]}"; do
                measure "$db" idle "$tool" "$run"
            done
        done
    fi
    if ((DO_LOAD)); then
        baseline_s="$("$PY" "$REPORT" baseline-seconds "$OUT" "$db" --default "$BASELINE_SECONDS")"
        log "$db: runs under load ($THREADS clients at $RATE tx/s; the no-migration run lasts ${baseline_s}s)"
        for ((run = 1; run <= RUNS; run++)); do
            measure "$db" load baseline "$run" "$baseline_s"
            for tool in "${load_tools[@]}"; do
                measure "$db" load "$tool" "$run"
            done
        done
    fi
}

# resume_db DB: K times, on a freshly restored table each time: a whole shadowswap run; a run
# killed with SIGKILL once its checkpoint counts half the rows, then the same command again (the
# resume); the same kill, then `shadowswap cleanup` and a whole run (starting over). Appends
# "db run whole_s kill_at_s resume_s cleanup_s restart_s rows_after_resume" to resume.tsv.
resume_db() {
    local db="$1" run dsn table ckpt whole kill_at kill_at2 resume cleanup restart rows_after t0
    local -a cmd
    if [[ "$db" == mariadb ]]; then
        dsn="$MY_DSN" table=sbtest1 ckpt=_sbtest1_ssw_ckpt
        count_sql=(my_sql "$DB" -e)
        prepare_mariadb
    else
        dsn="$PG_DSN" table=pgbench_accounts ckpt=_pgbench_accounts_ssw_ckpt
        count_sql=(pg_sql -c)
        prepare_pg
    fi
    mapfile -d '' cmd < <(shadowswap_cmd "$dsn" "$table")
    restore() { if [[ "$db" == mariadb ]]; then restore_mariadb; else restore_pg; fi; }
    # killed_at_half: start the run, SIGKILL it once the checkpoint counts ROWS/2 rows; prints
    # the seconds it ran.
    killed_at_half() {
        local pid t0 copied
        t0="$EPOCHREALTIME"
        "${cmd[@]}" >"$OUT/resume-$db-$run-killed.out" 2>"$OUT/resume-$db-$run-killed.err" &
        pid=$!
        while :; do
            copied="$("${count_sql[@]}" "SELECT rows_copied FROM $ckpt" 2>/dev/null || true)"
            if [[ -n "$copied" ]] && ((copied >= ROWS / 2)); then
                break
            fi
            pid_alive "$pid" || die "$db: the run ended before half the rows were copied (see $OUT/resume-$db-$run-killed.err)"
            sleep 0.02
        done
        kill -KILL "$pid"
        wait "$pid" 2>/dev/null || true
        seconds_between "$t0" "$EPOCHREALTIME"
    }
    for ((run = 1; run <= RUNS; run++)); do
        restore
        t0="$EPOCHREALTIME"
        "${cmd[@]}" >"$OUT/resume-$db-$run-whole.out" 2>"$OUT/resume-$db-$run-whole.err" || die "$db: the whole run failed"
        whole="$(seconds_between "$t0" "$EPOCHREALTIME")"

        restore
        kill_at="$(killed_at_half)"
        t0="$EPOCHREALTIME"
        "${cmd[@]}" >"$OUT/resume-$db-$run-resume.out" 2>"$OUT/resume-$db-$run-resume.err" || die "$db: the resume failed"
        resume="$(seconds_between "$t0" "$EPOCHREALTIME")"
        rows_after="$("$PY" -c 'import json,sys; print(json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])["rows_copied"])' \
            "$OUT/resume-$db-$run-resume.out")"

        restore
        kill_at2="$(killed_at_half)"
        t0="$EPOCHREALTIME"
        "$BIN" cleanup --dsn "$dsn" --table "$table" >"$OUT/resume-$db-$run-cleanup.out" 2>&1 || die "$db: cleanup failed"
        cleanup="$(seconds_between "$t0" "$EPOCHREALTIME")"
        t0="$EPOCHREALTIME"
        "${cmd[@]}" >"$OUT/resume-$db-$run-restart.out" 2>"$OUT/resume-$db-$run-restart.err" || die "$db: the run from scratch failed"
        restart="$(seconds_between "$t0" "$EPOCHREALTIME")"
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$db" "$run" "$whole" "$kill_at" "$resume" "$kill_at2" "$cleanup" \
            "$restart" "$rows_after" >>"$OUT/resume.tsv"
        log "$db run $run: whole ${whole}s; killed at ${kill_at}s, resumed in ${resume}s (copied $rows_after rows);" \
            "killed at ${kill_at2}s, cleanup ${cleanup}s, from scratch ${restart}s"
    done
}

# resume_report: the medians of resume.tsv, and the time lost each way against the whole run.
resume_report() {
    "$PY" - "$OUT/resume.tsv" <<'PYEOF'
import statistics, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
print("| server | whole run s | killed at s | resume s | time lost, resume | cleanup + from scratch s | time lost, start over | rows copied by the resume |")
print("|---|---|---|---|---|---|---|---|")
for db in dict.fromkeys(r[0] for r in rows):
    rs = [r for r in rows if r[0] == db]
    med = lambda i: statistics.median(float(r[i]) for r in rs)
    whole, kill, resume, kill2, cleanup, restart = (med(i) for i in (2, 3, 4, 5, 6, 7))
    lost_resume = kill + resume - whole
    lost_restart = kill2 + cleanup + restart - whole
    print(f"| {db} | {whole:.2f} | {kill:.2f} | {resume:.2f} | {lost_resume:.2f} s | {cleanup + restart:.2f} | {lost_restart:.2f} s | {int(statistics.median(int(r[8]) for r in rs))} |")
PYEOF
}

# The machine and the software, for the report (key TAB value).
write_facts() {
    local f="$OUT/facts.tsv" commit
    commit="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
    if [[ -n "$(git status --porcelain --untracked-files=no 2>/dev/null || true)" ]]; then
        commit+=" (with uncommitted changes)"
    fi
    {
        printf 'date\t%s\n' "$(date -u '+%Y-%m-%d %H:%M UTC')"
        printf 'command\t%s\n' "$COMMAND_LINE"
        printf 'cpus\t%s\n' "$(nproc)"
        printf 'cpu model\t%s\n' "$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
        printf 'memory\t%s GiB\n' "$(awk '/^MemTotal/ { printf "%.1f", $2 / 1048576 }' /proc/meminfo)"
        printf 'kernel\t%s\n' "$(uname -r)"
        printf 'os\t%s\n' "$(. /etc/os-release && echo "$PRETTY_NAME")"
        printf 'rows\t%s\n' "$ROWS"
        printf 'runs\t%s\n' "$RUNS"
        printf 'workload\t%s clients at %s tx/s\n' "$THREADS" "$RATE"
        printf 'shadowswap\t%s, commit %s\n' "$("$BIN" --version)" "$commit"
        printf 'sysbench\t%s\n' "$(sysbench --version)"
        if ((RUN_MARIADB)); then
            printf 'MariaDB\t%s\n' "$(my_sql -e 'SELECT VERSION()')"
            printf 'pt-online-schema-change\t%s\n' "$(pt-online-schema-change --version 2>&1 | head -n 1)"
        fi
        if ((RUN_PG)); then
            printf 'PostgreSQL\t%s\n' "$(pg_sql -c 'SHOW server_version')"
            printf 'pg_repack\t%s\n' "$("$PG_BIN/pg_repack" --version 2>&1 | head -n 1)"
            printf 'pgbench\t%s\n' "$("$PG_BIN/pgbench" --version 2>&1 | head -n 1)"
        fi
    } >"$f"
}

on_exit() {
    local rc=$?
    if [[ -n "$WL_PID" ]] && pid_alive "$WL_PID"; then
        kill -TERM "$WL_PID" 2>/dev/null || true
    fi
    stop_servers
    exit "$rc"
}

main() {
    OUT="$REPO_ROOT/.local/bench/results/$(date -u +%Y%m%dT%H%M%SZ)"
    mkdir -p -- "$OUT"
    log "results go to $OUT"
    trap on_exit EXIT
    trap 'exit 130' INT TERM
    start_servers
    install_peers
    if ((PEERS_INSTALLED)); then
        # postgresql-15-repack can pull a newer postgresql-15: a server started before it would
        # load the new release's libraries (plpgsql.so: "undefined symbol"). Start them afresh.
        log "restarting the bench servers on the binaries just installed"
        KEEP_SERVERS=0 stop_servers
        start_servers
    fi
    build_shadowswap
    SB_ARGS=(--db-driver=mysql --mysql-host="$HOST" --mysql-port="$MY_PORT" --mysql-user="$USER_NAME"
        --mysql-password="$USER_PASSWORD" --mysql-db="$DB" --tables=1 --table-size="$ROWS")
    write_facts
    if ((DO_RESUME)); then
        if ((RUN_MARIADB)); then
            resume_db mariadb
        fi
        if ((RUN_PG)); then
            resume_db postgres
        fi
        resume_report
        return 0
    fi
    if ((RUN_MARIADB)); then
        bench_db mariadb
    fi
    if ((RUN_PG)); then
        bench_db postgres
    fi
    local -a doc=()
    if ((WRITE_DOC)); then
        doc=(--write-doc "$REPO_ROOT/docs/benchmarks.md")
    fi
    "$PY" "$REPORT" table "$OUT" "${doc[@]}"
    if ((FAILED_RUNS)); then
        warn "$FAILED_RUNS run(s) failed: see the table and $OUT"
        return 1
    fi
}

SB_ARGS=()
OUT=""
main
