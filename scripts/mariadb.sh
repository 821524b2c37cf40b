#!/usr/bin/env bash
#
# Private MariaDB server(s) for shadowswap's tests and demo.
#
# Usage: scripts/mariadb.sh COMMAND [INSTANCE]
#
#   INSTANCE is `primary` (the default), `replica`, or `bench`: a separate
#   server tuned for scripts/bench.sh (bigger buffer pool and redo log, its
#   own port and data directory under .local/bench/mariadb/), never used by
#   the tests.
#
#   install  Install MariaDB (server, client, tzdata) with apt-get if missing.
#   start    Install if needed, initialise the data directory on first start,
#            start the server in the background and wait until it answers.
#            Idempotent: prints "already running" if it is up, or restarts
#            it when the installed mariadbd is newer than the running server
#            (a package upgrade since it started). The replica
#            needs the primary running; on its first start it is seeded
#            with a dump of the primary and replicates from the dump's GTID
#            position on (see configure_replication).
#   stop     Stop the server (SIGTERM, SIGKILL after 60 s). Idempotent.
#   restart  Stop, then start; the data directory is kept.
#   status   Print running/stopped. Exit 0 if running, 3 if not (LSB style),
#            4 if the process is alive but does not answer on its port.
#            For the replica, a second line shows the replication threads.
#   dsn      Print the DSN the tests and the demo connect with.
#   reset    Stop, delete the data directory, start fresh (for the replica:
#            seed and attach it anew, e.g. after the primary was reset).
#   client   Open a `mariadb` client as the shadowswap user (extra args are
#            passed on, e.g. `scripts/mariadb.sh client -e 'select 1'` or
#            `scripts/mariadb.sh client replica -e 'show slave status\G'`).
#
# Environment:
#   SHADOWSWAP_MYSQL_PORT          TCP port of the primary (default 33306).
#   SHADOWSWAP_MYSQL_REPLICA_PORT  TCP port of the replica (default 33307).
#   SHADOWSWAP_MYSQL_BENCH_PORT    TCP port of the bench instance (default 33316).
#   SHADOWSWAP_BENCH_MYSQL_BUFFER_POOL
#                                  the bench instance's InnoDB buffer pool
#                                  (default 2G).
#
# Everything lives under <repo>/.local/mariadb/ (git-ignored), per instance
# (primary, replica):
#   <instance>/       data directory (the primary's binary logs included, see
#                     --log-bin; the replica's relay logs)
#   <instance>.sock   unix socket        <instance>.pid   pid file
#   <instance>.err    server error log   <instance>.tz.log  tz load warnings
#   <instance>.lock   flock serialising start/stop/reset of this instance
# The bench instance keeps the same files under <repo>/.local/bench/mariadb/.
#
# The server listens on 127.0.0.1 only and never on 3306, so it cannot clash
# with a system MariaDB/MySQL. It runs as the invoking user (root on CI).

set -euo pipefail

SCRIPT_DIR="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)"
LOG_PREFIX=mariadb
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$SCRIPT_DIR/lib.sh"

REPO_ROOT="$(repo_root)"
BASE_DIR="$REPO_ROOT/.local/mariadb"

# Account the tests and the demo use (see `dsn`). Deliberately trivial: the
# server only listens on loopback and holds throwaway data.
APP_USER=shadowswap
APP_PASSWORD=shadowswap
BIND_HOST=127.0.0.1

START_TIMEOUT=60 # seconds until the server must answer a ping
STOP_TIMEOUT=60  # seconds between SIGTERM and SIGKILL

# Debian packages providing everything below.
APT_PACKAGES=(mariadb-server mariadb-client tzdata)
ZONEINFO_DIR=/usr/share/zoneinfo

# --------------------------------------------------------------------------
# Instance definition
# --------------------------------------------------------------------------
#
# All per-instance settings are globals filled by select_instance; the
# start/stop/status code only ever reads INSTANCE_*. What differs between the
# primary and the replica beyond that is in launch_server (binary log vs.
# read-only) and after provisioning (configure_replication).

INSTANCE_NAME=""
INSTANCE_PORT=""
INSTANCE_SERVER_ID=""
INSTANCE_DATADIR=""
INSTANCE_SOCKET=""
INSTANCE_PIDFILE=""
INSTANCE_ERRLOG=""
INSTANCE_TZLOG=""
INSTANCE_LOCKFILE=""
INSTANCE_INIT_MARKER=""
INSTANCE_PROVISIONED_MARKER=""
INSTANCE_REPLICATING_MARKER=""

select_instance() {
    local name="$1"
    case "$name" in
        primary)
            INSTANCE_PORT="${SHADOWSWAP_MYSQL_PORT:-33306}"
            INSTANCE_SERVER_ID=1
            ;;
        replica)
            INSTANCE_PORT="${SHADOWSWAP_MYSQL_REPLICA_PORT:-33307}"
            INSTANCE_SERVER_ID=2
            ;;
        bench)
            INSTANCE_PORT="${SHADOWSWAP_MYSQL_BENCH_PORT:-33316}"
            INSTANCE_SERVER_ID=3
            # Its own tree, so that resetting the test servers never touches
            # the benchmark's prepared tables (and the other way round).
            BASE_DIR="$REPO_ROOT/.local/bench/mariadb"
            ;;
        *)
            die "unknown MariaDB instance '$name' (known: primary, replica, bench)"
            ;;
    esac
    valid_port "$INSTANCE_PORT" || die "invalid port '$INSTANCE_PORT' for instance $name"

    INSTANCE_NAME="$name"
    INSTANCE_DATADIR="$BASE_DIR/$name"
    INSTANCE_PIDFILE="$BASE_DIR/$name.pid"
    INSTANCE_ERRLOG="$BASE_DIR/$name.err"
    INSTANCE_TZLOG="$BASE_DIR/$name.tz.log"
    INSTANCE_LOCKFILE="$BASE_DIR/$name.lock"
    # Written once mariadb-install-db has finished / once users and time zone
    # tables are in place. Both live inside the data directory so that
    # deleting it (reset) starts everything over.
    INSTANCE_INIT_MARKER="$INSTANCE_DATADIR/.shadowswap-initialized"
    INSTANCE_PROVISIONED_MARKER="$INSTANCE_DATADIR/.shadowswap-provisioned"
    # Replica only: written once it has been attached to the primary; holds
    # the GTID position it started from.
    INSTANCE_REPLICATING_MARKER="$INSTANCE_DATADIR/.shadowswap-replicating"

    # A unix socket path must fit in sockaddr_un.sun_path (108 bytes on
    # Linux). A deeply nested checkout would overflow it, so fall back to a
    # per-checkout path in /tmp in that case.
    INSTANCE_SOCKET="$BASE_DIR/$name.sock"
    if ((${#INSTANCE_SOCKET} > 100)); then
        local hash
        hash="$(printf '%s' "$INSTANCE_DATADIR" | cksum | cut -d' ' -f1)"
        INSTANCE_SOCKET="${TMPDIR:-/tmp}/shadowswap-mariadb-$hash-$name.sock"
    fi
}

# --------------------------------------------------------------------------
# Binaries
# --------------------------------------------------------------------------

# find_bin NAME: print the path of NAME. mariadbd lives in /usr/sbin, which
# is not on a non-root user's PATH on Debian, hence the explicit fallbacks.
find_bin() {
    local name="$1" dir
    if command -v "$name" 2>/dev/null; then
        return 0
    fi
    for dir in /usr/sbin /usr/bin /usr/local/sbin /usr/local/bin; do
        if [[ -x "$dir/$name" ]]; then
            printf '%s\n' "$dir/$name"
            return 0
        fi
    done
    return 1
}

MARIADBD=""
MARIADB=""
MARIADB_ADMIN=""
MARIADB_INSTALL_DB=""
MARIADB_TZINFO_TO_SQL=""
LAUNCHED_PID="" # pid of the mariadbd started by this invocation

# missing_requirements: print what is missing (one per line), nothing if all
# is there.
missing_requirements() {
    local bin
    for bin in mariadbd mariadb-install-db mariadb mariadb-admin mariadb-tzinfo-to-sql; do
        find_bin "$bin" >/dev/null || printf '%s\n' "$bin"
    done
    [[ -e "$ZONEINFO_DIR/Europe/Berlin" ]] || printf '%s\n' "tzdata ($ZONEINFO_DIR)"
}

resolve_bins() {
    MARIADBD="$(find_bin mariadbd)" || die "mariadbd not found"
    MARIADB="$(find_bin mariadb)" || die "mariadb client not found"
    MARIADB_ADMIN="$(find_bin mariadb-admin)" || die "mariadb-admin not found"
    MARIADB_INSTALL_DB="$(find_bin mariadb-install-db)" || die "mariadb-install-db not found"
    MARIADB_TZINFO_TO_SQL="$(find_bin mariadb-tzinfo-to-sql)" || die "mariadb-tzinfo-to-sql not found"
}

# --------------------------------------------------------------------------
# install
# --------------------------------------------------------------------------

POLICY_RC_D=/usr/sbin/policy-rc.d
POLICY_RC_D_CREATED=0

remove_temp_policy_rc_d() {
    if ((POLICY_RC_D_CREATED)); then
        as_root rm -f "$POLICY_RC_D" || true
        POLICY_RC_D_CREATED=0
    fi
}

cmd_install() {
    local missing
    missing="$(missing_requirements)"
    if [[ -z "$missing" ]]; then
        resolve_bins
        return 0
    fi
    log "missing: $(printf '%s' "$missing" | tr '\n' ' ')- installing ${APT_PACKAGES[*]}"
    need_root_or_sudo "installing MariaDB with apt-get"

    # The package's postinst starts the system service (port 3306) through
    # invoke-rc.d. We never use it, so forbid service starts for the duration
    # of the install with a policy-rc.d returning 101 ("action forbidden"),
    # unless the machine already has a policy (Docker-style images do).
    if [[ ! -e "$POLICY_RC_D" ]]; then
        printf '#!/bin/sh\n# temporary, created by shadowswap scripts/mariadb.sh\nexit 101\n' |
            as_root tee "$POLICY_RC_D" >/dev/null
        as_root chmod 0755 "$POLICY_RC_D"
        POLICY_RC_D_CREATED=1
        trap remove_temp_policy_rc_d EXIT
    fi

    local started=$SECONDS
    # DPkg::Lock::Timeout: wait for a concurrent apt/dpkg (e.g. unattended
    # upgrades on a fresh CI machine) instead of failing at once.
    as_root env DEBIAN_FRONTEND=noninteractive \
        apt-get -o DPkg::Lock::Timeout=300 update -q ||
        die "apt-get update failed"
    # A postinst that tries (and fails) to start the service makes apt-get
    # return non-zero although the packages are unpacked and usable, so the
    # verdict is the check for the binaries below, not apt-get's exit code.
    as_root env DEBIAN_FRONTEND=noninteractive \
        apt-get -o DPkg::Lock::Timeout=300 install -y -q --no-install-recommends \
        "${APT_PACKAGES[@]}" ||
        warn "apt-get install returned non-zero (a refused service start is expected); checking binaries"

    remove_temp_policy_rc_d
    trap - EXIT

    missing="$(missing_requirements)"
    [[ -z "$missing" ]] || die "still missing after apt-get install: $(printf '%s' "$missing" | tr '\n' ' ')"
    log "installed MariaDB in $((SECONDS - started))s"

    stop_system_service
    resolve_bins
}

# Make sure the Debian system service (datadir /var/lib/mysql, port 3306) is
# not left running by the package install. Only touches the service's own pid
# file; other private instances are never affected.
stop_system_service() {
    local pidfile=/run/mysqld/mysqld.pid pid
    pid="$(read_pid_file "$pidfile")" || return 0
    pid_alive "$pid" || return 0
    log "the package started the system MariaDB service (pid $pid); stopping it, we do not use it"
    if [[ -x /etc/init.d/mariadb ]]; then
        as_root /etc/init.d/mariadb stop >/dev/null 2>&1 || true
    fi
    if pid_alive "$pid"; then
        as_root kill -TERM "$pid" 2>/dev/null || true
        wait_until "$STOP_TIMEOUT" not pid_alive "$pid" || as_root kill -KILL "$pid" 2>/dev/null || true
    fi
}

# --------------------------------------------------------------------------
# Talking to the server
# --------------------------------------------------------------------------
#
# Every client call passes --no-defaults first so that /etc/mysql/my.cnf and
# ~/.my.cnf (socket=/run/mysqld/mysqld.sock, user, password...) cannot
# redirect us to the system server or change credentials.

# TCP ping as root. mariadb-admin ping exits 0 as soon as the server answers,
# even with "Access denied" (root@127.0.0.1 does not exist before the first
# provisioning), which is exactly "the server is up".
server_answers() {
    "$MARIADB_ADMIN" --no-defaults --protocol=tcp -h"$BIND_HOST" -P"$INSTANCE_PORT" \
        -uroot --connect-timeout=2 ping >/dev/null 2>&1
}

# SQL as root over the unix socket (root@localhost, empty password).
root_sql() {
    "$MARIADB" --no-defaults --protocol=socket --socket="$INSTANCE_SOCKET" -uroot "$@"
}

# SQL as the application user over TCP, like the tests connect.
app_sql() {
    "$MARIADB" --no-defaults --protocol=tcp -h"$BIND_HOST" -P"$INSTANCE_PORT" \
        -u"$APP_USER" -p"$APP_PASSWORD" "$@"
}

# running_pid: print the pid of this instance's mariadbd if it is alive.
# Fails if there is no pid file, or if it names a dead process or a live
# process that is not our mariadbd for this data directory (pid reused after
# a crash or reboot). Has no side effects; see clear_stale_pid_file.
running_pid() {
    local pid
    pid="$(read_pid_file "$INSTANCE_PIDFILE")" || return 1
    pid_alive "$pid" || return 1
    pid_cmdline_has "$pid" "--datadir=$INSTANCE_DATADIR " || return 1
    printf '%s\n' "$pid"
}

# running_port PID: the --port=N the running server was started with (empty
# if it cannot be read), to notice SHADOWSWAP_MYSQL_PORT changing under a
# running instance.
running_port() {
    local pid="$1"
    [[ -r "/proc/$pid/cmdline" ]] || return 0
    tr '\0' '\n' <"/proc/$pid/cmdline" | sed -n 's/^--port=//p' | head -n 1
}

# Remove a pid file left behind by a server that died (kill -9, OOM, reboot).
clear_stale_pid_file() {
    local pid
    if [[ -e "$INSTANCE_PIDFILE" ]] && ! running_pid >/dev/null; then
        pid="$(read_pid_file "$INSTANCE_PIDFILE" || echo '?')"
        log "removing stale pid file $INSTANCE_PIDFILE (pid $pid is not running)"
        rm -f -- "$INSTANCE_PIDFILE"
    fi
}

error_log_tail() {
    if [[ -f "$INSTANCE_ERRLOG" ]]; then
        log "last lines of $INSTANCE_ERRLOG:"
        tail -n 40 -- "$INSTANCE_ERRLOG" | sed 's/^/    /' >&2
    else
        log "no error log at $INSTANCE_ERRLOG"
    fi
}

# --------------------------------------------------------------------------
# start
# --------------------------------------------------------------------------

# mariadb-install-db on first start. Flags:
#   --no-defaults   must be first; ignore /etc/mysql/*.cnf (datadir, socket,
#                   port and bind-address of the system service live there).
#   --auth-root-authentication-method=normal
#                   root@localhost gets an empty password instead of
#                   unix_socket auth, so root can log in without being the
#                   OS root user (and over TCP once root@127.0.0.1 exists).
#   --skip-test-db  no `test` database / anonymous access to test_%.
#   --skip-name-resolve
#                   do not resolve the hostname with resolveip (install-db
#                   aborts on machines whose hostname does not resolve). It
#                   still creates root@<hostname>; provision() drops it.
#   --user=root     only as root: mariadbd refuses to run as root otherwise.
init_datadir() {
    if [[ -f "$INSTANCE_INIT_MARKER" ]]; then
        return 0
    fi
    if [[ -d "$INSTANCE_DATADIR" ]] && [[ -n "$(ls -A -- "$INSTANCE_DATADIR")" ]]; then
        die "$INSTANCE_DATADIR exists but was never fully initialised (interrupted first start?); run '$0 reset $INSTANCE_NAME'"
    fi
    mkdir -p -- "$INSTANCE_DATADIR"
    log "initialising data directory $INSTANCE_DATADIR"
    local started=$SECONDS
    local -a args=(
        --no-defaults
        --datadir="$INSTANCE_DATADIR"
        --auth-root-authentication-method=normal
        --skip-test-db
        --skip-name-resolve
    )
    if [[ "$EUID" -eq 0 ]]; then
        args+=(--user=root)
    fi
    if ! "$MARIADB_INSTALL_DB" "${args[@]}" >"$BASE_DIR/$INSTANCE_NAME.install-db.log" 2>&1; then
        log "mariadb-install-db failed; output:"
        sed 's/^/    /' "$BASE_DIR/$INSTANCE_NAME.install-db.log" >&2
        rm -rf -- "$INSTANCE_DATADIR"
        die "could not initialise $INSTANCE_DATADIR"
    fi
    touch -- "$INSTANCE_INIT_MARKER"
    log "data directory initialised in $((SECONDS - started))s"
}

# Start mariadbd in the background, detached from this script. Flags:
#   --no-defaults   must be first; /etc/mysql/*.cnf (or a ~/.my.cnf) would
#                   add datadir=/var/lib/mysql, socket, bind-address etc. of
#                   the system service and make runs machine-dependent. Every
#                   setting the instance needs is on this command line.
#   --user=root     only when we are root: mariadbd refuses to run as root
#                   unless told explicitly (as non-root it runs as us).
#   --bind-address  loopback only; --port never 3306 (system service's port).
#   --server-id     unique per instance; required for binary logging and for
#                   the replica to tell its source apart.
#   --log-bin       (primary) binary log inside the data directory, so `reset`
#                   removes it with the data and a fresh start never sees old
#                   logs. The replica has none: nothing replicates from it.
#   --binlog-format=ROW
#                   an online schema change that tails the binlog needs row
#                   events (the before/after image of every changed row),
#                   not SQL text it would have to re-interpret; and with
#                   STATEMENT/MIXED, trigger-driven copies of
#                   non-deterministic statements can replicate differently.
#                   ROW is also what production servers run nowadays.
#   --character-set-server/--collation-server=utf8mb4
#                   real 4-byte UTF-8 (emoji etc.). Without a config file
#                   the server default is latin1 (utf8/utf8mb3 cannot hold
#                   4-byte characters either), so tables created without an
#                   explicit charset would mangle such data.
#   --max-connections=1000
#                   parallel test binaries each open pools of connections.
#   --innodb-buffer-pool-size=512M  enough for the tests' copy workloads.
#   --innodb-flush-log-at-trx-commit=2 / --sync-binlog=0
#                   no fsync per commit: throwaway data, much faster tests.
#   --skip-name-resolve
#                   no reverse DNS on connect (slow/unavailable offline);
#                   accounts are matched by IP, hence the @127.0.0.1 grants.
#
# Bench only (scripts/bench.sh; the tests never use this instance):
#   --log-bin       like the primary: production servers log binary, and
#                   every tool measured pays for it alike.
#   --innodb-buffer-pool-size (SHADOWSWAP_BENCH_MYSQL_BUFFER_POOL, 2G)
#                   the table, its pristine copy and the copy being built
#                   stay in memory at 1,000,000 rows (about 240 MB each), so
#                   the numbers measure the tools, not the disk.
#   --innodb-log-file-size=1G
#                   a bulk copy does not stall on redo log checkpoints
#                   (the default 96M fills in a second of copying).
#
# Replica only:
#   --read-only     no writes except by the replication thread. The
#                   shadowswap account loses READ_ONLY ADMIN on the replica
#                   (configure_replication), so read-only binds it too: a
#                   tool that wrote to the replica would fail loudly.
#   --relay-log     relay logs named after the instance, not the host name,
#                   inside the data directory.
#   --slave-net-timeout=10
#                   notice a restarted primary within seconds (the replica
#                   reconnects every MASTER_CONNECT_RETRY = 1 s).
launch_server() {
    local -a args=(
        --no-defaults
        --datadir="$INSTANCE_DATADIR"
        --port="$INSTANCE_PORT"
        --bind-address="$BIND_HOST"
        --socket="$INSTANCE_SOCKET"
        --pid-file="$INSTANCE_PIDFILE"
        --log-error="$INSTANCE_ERRLOG"
        --server-id="$INSTANCE_SERVER_ID"
        --binlog-format=ROW
        --character-set-server=utf8mb4
        --collation-server=utf8mb4_unicode_ci
        --max-connections=1000
        --innodb-buffer-pool-size=512M
        --innodb-flush-log-at-trx-commit=2
        --sync-binlog=0
        --skip-name-resolve
    )
    case "$INSTANCE_NAME" in
        primary)
            args+=(--log-bin="$INSTANCE_DATADIR/binlog")
            ;;
        bench)
            # Later options win over the common ones above.
            args+=(
                --log-bin="$INSTANCE_DATADIR/binlog"
                --innodb-buffer-pool-size="${SHADOWSWAP_BENCH_MYSQL_BUFFER_POOL:-2G}"
                --innodb-log-file-size=1G
            )
            ;;
        replica)
            args+=(
                --read-only
                --relay-log="$INSTANCE_DATADIR/relay-bin"
                --slave-net-timeout=10
            )
            ;;
    esac
    if [[ "$EUID" -eq 0 ]]; then
        args+=(--user=root)
    fi

    log "starting mariadbd ($INSTANCE_NAME) on $BIND_HOST:$INSTANCE_PORT, datadir $INSTANCE_DATADIR"
    # setsid: own session and process group, so the server survives this
    # script exiting and is not hit by signals sent to the caller's process
    # group (CI job runners, Ctrl-C in the terminal that ran `start`).
    # nohup: ignore SIGHUP as well. stdin/stdout/stderr are redirected (the
    # error log gets what mariadbd prints before it opens --log-error) and
    # every other inherited descriptor is closed first: the instance lock on
    # fd 9 must not be held by the server, and an inherited pipe would make a
    # caller like `out=$(scripts/mariadb.sh start)` wait for the server to
    # exit.
    (
        for fd in /proc/self/fd/*; do
            fd="${fd##*/}"
            if [[ "$fd" =~ ^[0-9]+$ ]] && ((fd > 2)); then
                exec {fd}>&- || true
            fi
        done
        exec setsid nohup "$MARIADBD" "${args[@]}" </dev/null >>"$INSTANCE_ERRLOG" 2>&1
    ) &
    LAUNCHED_PID=$!
}

# Up = answers a TCP ping and has written its pid file.
server_started() {
    server_answers && read_pid_file "$INSTANCE_PIDFILE" >/dev/null
}

wait_for_start() {
    local deadline=$((SECONDS + START_TIMEOUT))
    while ! server_started; do
        if ! pid_alive "$LAUNCHED_PID"; then
            # Reap it (it is our child) to get its exit status.
            local rc=0
            wait "$LAUNCHED_PID" 2>/dev/null || rc=$?
            error_log_tail
            die "mariadbd exited during startup (exit status $rc)"
        fi
        if ((SECONDS >= deadline)); then
            error_log_tail
            die "mariadbd did not answer on $BIND_HOST:$INSTANCE_PORT within ${START_TIMEOUT}s (pid $LAUNCHED_PID left running; '$0 stop $INSTANCE_NAME' to stop it)"
        fi
        sleep 0.5
    done
}

# First start only: accounts and time zone tables. Idempotent, so a start
# interrupted half-way simply redoes it. sql_log_bin=0 (and tzinfo's
# --skip-write-binlog) keep this setup out of the binary log: every instance
# provisions itself, and a replica replaying the primary's binlog from the
# beginning must not trip over CREATE USER / time zone loads it already has.
provision() {
    if [[ -f "$INSTANCE_PROVISIONED_MARKER" ]]; then
        return 0
    fi
    log "creating user '$APP_USER' and root@$BIND_HOST"
    local host sql="SET SESSION sql_log_bin = 0;"
    for host in 127.0.0.1 localhost %; do
        sql+="
CREATE USER IF NOT EXISTS '$APP_USER'@'$host' IDENTIFIED BY '$APP_PASSWORD';
ALTER USER '$APP_USER'@'$host' IDENTIFIED BY '$APP_PASSWORD';
GRANT ALL PRIVILEGES ON *.* TO '$APP_USER'@'$host' WITH GRANT OPTION;"
    done
    # root has an empty password (install-db --auth-root-authentication-method
    # =normal). With --skip-name-resolve a TCP client from 127.0.0.1 never
    # matches 'localhost', so root needs its own @127.0.0.1 account.
    sql+="
CREATE USER IF NOT EXISTS 'root'@'127.0.0.1';
GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;
GRANT PROXY ON ''@'%' TO 'root'@'127.0.0.1' WITH GRANT OPTION;"
    # Drop what install-db creates beyond that: anonymous accounts (they
    # would shadow '<user>'@'%' for local logins of users the tests create)
    # and root@<hostname>, which --skip-name-resolve ignores anyway (with a
    # warning in the error log on every start).
    local anon
    anon="$(root_sql -N -B -e "SELECT CONCAT('DROP USER IF EXISTS ', QUOTE(User), '@', QUOTE(Host), ';')
        FROM mysql.global_priv
        WHERE User = '' OR (User = 'root' AND Host NOT IN ('localhost', '127.0.0.1', '::1'))")" ||
        die "could not query accounts over $INSTANCE_SOCKET"
    sql+="
$anon"
    printf '%s\n' "$sql" | root_sql || die "creating accounts failed"

    log "loading time zone tables from $ZONEINFO_DIR (warnings go to $INSTANCE_TZLOG)"
    local started=$SECONDS
    # --skip-write-binlog: wraps the load in SQL_LOG_BIN=0 (see above). The
    # generated SQL starts with TRUNCATE TABLE time_zone*, so a rerun is safe.
    if ! "$MARIADB_TZINFO_TO_SQL" --skip-write-binlog "$ZONEINFO_DIR" 2>"$INSTANCE_TZLOG" |
        root_sql mysql 2>>"$INSTANCE_TZLOG"; then
        tail -n 20 -- "$INSTANCE_TZLOG" | sed 's/^/    /' >&2
        die "loading time zone tables failed"
    fi
    log "time zone tables loaded in $((SECONDS - started))s"

    # Check both: the app account works over TCP, and named zones resolve
    # (CONVERT_TZ returns NULL for an unknown zone).
    local converted
    converted="$(app_sql -N -B -e "SELECT CONVERT_TZ('2021-10-31 02:30:00','Europe/Berlin','UTC')")" ||
        die "cannot log in as $APP_USER over TCP on $BIND_HOST:$INSTANCE_PORT"
    if [[ -z "$converted" || "$converted" == "NULL" ]]; then
        die "time zone tables not usable: CONVERT_TZ(..., 'Europe/Berlin', 'UTC') returned '$converted'"
    fi
    log "verified: CONVERT_TZ('2021-10-31 02:30:00','Europe/Berlin','UTC') = $converted"
    touch -- "$INSTANCE_PROVISIONED_MARKER"
}

# Every start (also of an instance provisioned before this existed): the
# metadata_lock_info plugin, shipped with the server but not loaded by
# default. It adds information_schema.METADATA_LOCK_INFO, from which
# shadowswap's cut-over tells exactly which sessions hold the table's metadata
# lock and waits for them instead of queueing behind them (without it, it has
# to wait for every long InnoDB transaction on the server). INSTALL SONAME
# records it in mysql.plugin, so it stays loaded across restarts; out of the
# binary log like the rest of the setup.
ensure_plugins() {
    local active
    active="$(root_sql -N -B -e "SELECT COUNT(*) FROM information_schema.PLUGINS
        WHERE PLUGIN_NAME = 'METADATA_LOCK_INFO' AND PLUGIN_STATUS = 'ACTIVE'")" ||
        die "could not list plugins over $INSTANCE_SOCKET"
    if [[ "$active" == "0" ]]; then
        log "loading the metadata_lock_info plugin (information_schema.METADATA_LOCK_INFO)"
        root_sql -e "SET SESSION sql_log_bin = 0; INSTALL SONAME 'metadata_lock_info'" ||
            die "INSTALL SONAME 'metadata_lock_info' failed"
    fi
}

# --------------------------------------------------------------------------
# Replication (replica instance only)
# --------------------------------------------------------------------------

# The primary the replica replicates from, and the account it uses there.
PRIMARY_PORT="${SHADOWSWAP_MYSQL_PORT:-33306}"
REPL_USER=shadowswap_repl
REPL_PASSWORD=shadowswap_repl
REPLICATION_TIMEOUT=30 # seconds for the replication threads to come up

# SQL on the primary as root over TCP (root@127.0.0.1, empty password), from
# the replica's invocation (INSTANCE_* describe the replica then).
primary_sql() {
    "$MARIADB" --no-defaults --protocol=tcp -h"$BIND_HOST" -P"$PRIMARY_PORT" -uroot \
        --connect-timeout=5 "$@"
}

# slave_field NAME: one field of SHOW SLAVE STATUS on this instance (empty if
# replication is not configured).
slave_field() {
    root_sql -e 'SHOW SLAVE STATUS\G' 2>/dev/null | sed -n "s/^ *$1: //p" | head -n 1
}

replication_running() {
    [[ "$(slave_field Slave_IO_Running)" == "Yes" && "$(slave_field Slave_SQL_Running)" == "Yes" ]]
}

# One line describing the replication threads.
replication_summary() {
    local io sql behind gtid io_err sql_err
    io="$(slave_field Slave_IO_Running)"
    if [[ -z "$io" ]]; then
        echo "replication: not configured"
        return 0
    fi
    sql="$(slave_field Slave_SQL_Running)"
    behind="$(slave_field Seconds_Behind_Master)"
    gtid="$(root_sql -N -B -e 'SELECT @@GLOBAL.gtid_slave_pos' 2>/dev/null || true)"
    io_err="$(slave_field Last_IO_Error)"
    sql_err="$(slave_field Last_SQL_Error)"
    printf 'replication from %s:%s: IO thread %s, SQL thread %s, Seconds_Behind_Master %s, gtid_slave_pos %s%s%s\n' \
        "$BIND_HOST" "$PRIMARY_PORT" "$io" "$sql" "${behind:-NULL}" "${gtid:-none}" \
        "${io_err:+, last IO error: $io_err}" "${sql_err:+, last SQL error: $sql_err}"
}

# First start of the replica: attach it to the primary.
#
# Seeding: the replica gets its accounts and time zone tables from its own
# provisioning, like every instance (the primary's are kept out of its binary
# log, so they are never replayed onto it), and every other database from a
# dump of the primary (seed_from_primary), which ends by setting the GTID
# position the dump corresponds to. Replication then continues from exactly
# there. Why a dump and not simply "start empty at the primary's current
# position": the primary is shared (the demo's database, other developers'
# and earlier test runs' databases), and a single later write to a table the
# replica does not have stops its SQL thread for good (a row event on a
# missing table, error 1146, cannot be skipped: the server ignores
# --slave-skip-errors there). With the dump the replica is a real replica of
# the whole server. Only the first start (and `reset replica`) pays for it.
#
# MASTER_USE_GTID=slave_pos: the position lives in the replica's
# mysql.gtid_slave_pos, so restarts of either server resume exactly (the
# replica's threads start by themselves on its next start). If the primary is
# reset (new binary log history), the replica's position no longer exists
# there (IO error 1236): `reset replica` attaches a fresh one.
configure_replication() {
    [[ "$INSTANCE_NAME" == "replica" ]] || return 0
    [[ -f "$INSTANCE_REPLICATING_MARKER" ]] && return 0
    primary_sql -e 'SELECT 1' >/dev/null 2>&1 ||
        die "the primary does not answer on $BIND_HOST:$PRIMARY_PORT; start it first ('$0 start'), then '$0 start replica'"

    log "creating the replication account '$REPL_USER'@'$BIND_HOST' on the primary"
    primary_sql -e "SET SESSION sql_log_bin = 0;
CREATE USER IF NOT EXISTS '$REPL_USER'@'$BIND_HOST' IDENTIFIED BY '$REPL_PASSWORD';
ALTER USER '$REPL_USER'@'$BIND_HOST' IDENTIFIED BY '$REPL_PASSWORD';
GRANT REPLICATION SLAVE ON *.* TO '$REPL_USER'@'$BIND_HOST';" ||
        die "creating the replication account on the primary failed"

    # --read-only does not bind accounts with READ_ONLY ADMIN (part of ALL
    # PRIVILEGES): take it from the application account here, so that any
    # write shadowswap or a test sent to the replica would fail.
    local host sql="SET SESSION sql_log_bin = 0;"
    for host in 127.0.0.1 localhost %; do
        sql+="
REVOKE READ_ONLY ADMIN ON *.* FROM '$APP_USER'@'$host';"
    done
    printf '%s\n' "$sql" | root_sql || die "revoking READ_ONLY ADMIN from $APP_USER failed"

    root_sql -e "STOP SLAVE;
RESET SLAVE ALL;
CHANGE MASTER TO MASTER_HOST = '$BIND_HOST', MASTER_PORT = $PRIMARY_PORT,
    MASTER_USER = '$REPL_USER', MASTER_PASSWORD = '$REPL_PASSWORD',
    MASTER_USE_GTID = slave_pos, MASTER_CONNECT_RETRY = 1;" ||
        die "configuring replication failed"
    seed_from_primary
    local pos
    pos="$(root_sql -N -B -e 'SELECT @@GLOBAL.gtid_slave_pos')" || die "could not read gtid_slave_pos"
    log "starting replication from the primary $BIND_HOST:$PRIMARY_PORT at GTID position '${pos:-empty}'"
    root_sql -e "START SLAVE" || die "START SLAVE failed"

    if ! wait_until "$REPLICATION_TIMEOUT" replication_running; then
        replication_summary >&2
        die "the replication threads did not start within ${REPLICATION_TIMEOUT}s (see $INSTANCE_ERRLOG)"
    fi
    printf '%s\n' "$pos" >"$INSTANCE_REPLICATING_MARKER"
    log "replicating: the replica has the primary's databases and follows it"
}

# Copy every database of the primary except the system ones into the replica,
# from one consistent snapshot, and set gtid_slave_pos to the snapshot's
# position. mariadb-dump options:
#   --single-transaction  a consistent InnoDB snapshot, no table locks; with
#                   --master-data MariaDB reads the matching binlog position
#                   from the same snapshot (Binlog_snapshot_file/position,
#                   BINLOG_GTID_POS()), so no FLUSH TABLES WITH READ LOCK
#                   stalls the tests using the primary meanwhile.
#   --master-data=1 --gtid  the dump ends with SET GLOBAL gtid_slave_pos
#                   ='<snapshot position>' (and runs CHANGE MASTER TO
#                   MASTER_USE_GTID=slave_pos first), applied by the load.
#   --ignore-database=mysql/sys  accounts, time zones, the replica's own
#                   gtid_slave_pos table stay the replica's own.
#   --routines --events  triggers are included by default.
# A DDL statement on the primary during the dump (a test dropping its
# database) can make it fail; it is retried from scratch (the dump drops and
# recreates what it loads).
seed_from_primary() {
    local dump attempt
    dump="$(find_bin mariadb-dump)" || die "mariadb-dump not found"
    for attempt in 1 2 3; do
        log "seeding the replica from a dump of the primary (attempt $attempt)"
        local started=$SECONDS
        if "$dump" --no-defaults --protocol=tcp -h"$BIND_HOST" -P"$PRIMARY_PORT" -uroot \
            --single-transaction --master-data=1 --gtid --all-databases \
            --ignore-database=mysql --ignore-database=sys --routines --events --hex-blob \
            2>"$BASE_DIR/$INSTANCE_NAME.seed.log" | root_sql 2>>"$BASE_DIR/$INSTANCE_NAME.seed.log"; then
            log "seeded in $((SECONDS - started))s"
            return 0
        fi
        warn "seeding failed: $(tail -n 3 -- "$BASE_DIR/$INSTANCE_NAME.seed.log" | tr '\n' ' ')"
        sleep 1
    done
    die "could not seed the replica from the primary (see $BASE_DIR/$INSTANCE_NAME.seed.log)"
}

# Every start of an attached replica: say if replication is not running.
# (A stopped SQL thread may be deliberate, e.g. a test pausing apply, so this
# warns instead of failing.)
check_replication() {
    [[ "$INSTANCE_NAME" == "replica" ]] || return 0
    if wait_until 10 replication_running; then
        return 0
    fi
    warn "$(replication_summary)"
    local io_errno
    io_errno="$(slave_field Last_IO_Errno)"
    # 1236: the primary's binary log no longer has the replica's position; 1045: the replication
    # account is gone. Both mean the primary was reset (or its data directory replaced).
    if [[ "$io_errno" == "1236" || "$io_errno" == "1045" ]]; then
        warn "the primary looks reset since the replica was attached; '$0 reset replica' attaches a fresh replica"
    else
        warn "'$0 client replica -e \"START SLAVE\"' restarts stopped threads; '$0 reset replica' starts over"
    fi
}

# Everything after the server answers, on every start.
after_start() {
    provision
    ensure_plugins
    configure_replication
    check_replication
}

# binaries_replaced: prints "RUNNING -> INSTALLED" and succeeds when the running server is
# older than the installed mariadbd (a package upgrade since it started: its plugins and the
# server's own files no longer match what runs).
binaries_replaced() {
    local running installed
    running="$(root_sql -N -e 'SELECT VERSION()' 2>/dev/null | grep -oE '^[0-9]+(\.[0-9]+)+')" || return 1
    installed="$("$MARIADBD" --version 2>/dev/null | grep -oE 'Ver [0-9]+(\.[0-9]+)+' | grep -oE '[0-9]+(\.[0-9]+)+')"
    [[ -n "$running" && -n "$installed" && "$running" != "$installed" ]] || return 1
    printf '%s -> %s' "$running" "$installed"
}

do_start() {
    local pid
    mkdir -p -- "$BASE_DIR"
    clear_stale_pid_file
    if pid="$(running_pid)"; then
        local port
        port="$(running_port "$pid")"
        if [[ -n "$port" && "$port" != "$INSTANCE_PORT" ]]; then
            die "mariadb ($INSTANCE_NAME) is already running on port $port (pid $pid), not $INSTANCE_PORT; run '$0 stop $INSTANCE_NAME' first"
        fi
        # Our process is alive; it may still be starting (a concurrent or
        # interrupted `start`), so give it the normal startup time.
        if ! wait_until "$START_TIMEOUT" server_answers; then
            error_log_tail
            die "mariadbd (pid $pid) is alive but does not answer on $BIND_HOST:$INSTANCE_PORT; try '$0 stop $INSTANCE_NAME' then '$0 start $INSTANCE_NAME'"
        fi
        local replaced
        if replaced="$(binaries_replaced)"; then
            log "mariadb ($INSTANCE_NAME) runs $replaced installed since it started (a package upgrade); restarting it"
            do_stop
        else
            after_start
            log "mariadb ($INSTANCE_NAME) already running on $BIND_HOST:$INSTANCE_PORT (pid $pid)"
            return 0
        fi
    fi

    # A replica not attached yet is attached at the end of this start: check the primary first
    # rather than leave a replica running that replicates from nothing.
    if [[ "$INSTANCE_NAME" == "replica" && ! -f "$INSTANCE_REPLICATING_MARKER" ]] &&
        ! primary_sql -e 'SELECT 1' >/dev/null 2>&1; then
        die "the primary does not answer on $BIND_HOST:$PRIMARY_PORT; start it first ('$0 start'), then '$0 start replica'"
    fi

    if tcp_port_open "$BIND_HOST" "$INSTANCE_PORT"; then
        local var=SHADOWSWAP_MYSQL_PORT
        [[ "$INSTANCE_NAME" == "replica" ]] && var=SHADOWSWAP_MYSQL_REPLICA_PORT
        die "port $INSTANCE_PORT on $BIND_HOST is already in use by another process (not this checkout's $INSTANCE_NAME instance); set $var to another port"
    fi

    init_datadir
    # A socket file left over by a killed server is unlinked by mariadbd
    # itself; the pid file was handled by running_pid above.
    local started=$SECONDS
    launch_server
    wait_for_start
    pid="$(read_pid_file "$INSTANCE_PIDFILE")"
    log "mariadbd answered after $((SECONDS - started))s"
    after_start
    log "mariadb ($INSTANCE_NAME) running on $BIND_HOST:$INSTANCE_PORT (pid $pid)"
}

do_stop() {
    local pid
    clear_stale_pid_file
    if ! pid="$(running_pid)"; then
        log "mariadb ($INSTANCE_NAME) is not running"
        return 0
    fi
    stop_pid "$pid" "$STOP_TIMEOUT" "mariadbd ($INSTANCE_NAME)"
    # mariadbd removes its pid file on a clean shutdown, not after SIGKILL.
    rm -f -- "$INSTANCE_PIDFILE"
    log "mariadb ($INSTANCE_NAME) stopped"
}

do_reset() {
    do_stop
    log "deleting $INSTANCE_DATADIR"
    rm -rf -- "$INSTANCE_DATADIR"
    rm -f -- "$INSTANCE_ERRLOG" "$INSTANCE_TZLOG" "$INSTANCE_SOCKET" \
        "$BASE_DIR/$INSTANCE_NAME.install-db.log" "$BASE_DIR/$INSTANCE_NAME.seed.log"
    do_start
}

# --------------------------------------------------------------------------
# Commands
# --------------------------------------------------------------------------

cmd_start() {
    cmd_install
    with_lock "$INSTANCE_LOCKFILE" do_start
}

cmd_stop() {
    with_lock "$INSTANCE_LOCKFILE" do_stop
}

# restart: stop then start, keeping the data directory (the tests' server restart
# mid-migration uses it).
cmd_restart() {
    cmd_stop
    cmd_start
}

cmd_reset() {
    cmd_install
    with_lock "$INSTANCE_LOCKFILE" do_reset
}

cmd_status() {
    local pid
    if ! pid="$(running_pid)"; then
        echo "mariadb ($INSTANCE_NAME) stopped (port $INSTANCE_PORT)"
        return 3
    fi
    local port
    port="$(running_port "$pid")"
    if [[ -n "$port" && "$port" != "$INSTANCE_PORT" ]]; then
        echo "mariadb ($INSTANCE_NAME) running on $BIND_HOST:$port (pid $pid), not on the configured port $INSTANCE_PORT"
        return 4
    fi
    resolve_bins
    if server_answers; then
        echo "mariadb ($INSTANCE_NAME) running on $BIND_HOST:$INSTANCE_PORT (pid $pid)"
        if [[ "$INSTANCE_NAME" == "replica" ]]; then
            replication_summary
        fi
        return 0
    fi
    echo "mariadb ($INSTANCE_NAME) process alive (pid $pid) but not answering on $BIND_HOST:$INSTANCE_PORT"
    return 4
}

cmd_dsn() {
    printf 'mysql://%s:%s@%s:%s\n' "$APP_USER" "$APP_PASSWORD" "$BIND_HOST" "$INSTANCE_PORT"
}

cmd_client() {
    resolve_bins
    exec "$MARIADB" --no-defaults --protocol=tcp -h"$BIND_HOST" -P"$INSTANCE_PORT" \
        -u"$APP_USER" -p"$APP_PASSWORD" "$@"
}

# usage: the comment block at the top of this file.
usage() {
    awk 'NR > 2 && /^#/ { sub(/^# ?/, ""); print; next } NR > 2 { exit }' "$0" >&2
}

main() {
    local cmd="${1:-}"
    if [[ $# -gt 0 ]]; then
        shift
    fi
    # An optional instance name follows the command. `client` passes every
    # other argument on to the client, so there only a known name counts.
    local instance=primary
    if [[ $# -gt 0 ]]; then
        case "$cmd" in
            client)
                if [[ "$1" == "primary" || "$1" == "replica" || "$1" == "bench" ]]; then
                    instance="$1"
                    shift
                fi
                ;;
            install | start | stop | restart | status | dsn | reset)
                instance="$1"
                shift
                [[ $# -eq 0 ]] || die "unexpected arguments after '$cmd $instance': $*"
                ;;
        esac
    fi
    select_instance "$instance"
    case "$cmd" in
        install) cmd_install ;;
        start) cmd_start ;;
        stop) cmd_stop ;;
        restart) cmd_restart ;;
        status) cmd_status ;;
        dsn) cmd_dsn ;;
        reset) cmd_reset ;;
        client) cmd_client "$@" ;;
        -h | --help | help)
            usage
            ;;
        *)
            usage
            exit 2
            ;;
    esac
}

# Run main only when executed, so the functions can be sourced for testing.
if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
    main "$@"
fi
