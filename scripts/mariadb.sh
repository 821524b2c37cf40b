#!/usr/bin/env bash
#
# Private MariaDB server(s) for shadowswap's tests and demo.
#
# Usage: scripts/mariadb.sh COMMAND
#
#   install  Install MariaDB (server, client, tzdata) with apt-get if missing.
#   start    Install if needed, initialise the data directory on first start,
#            start the server in the background and wait until it answers.
#            Idempotent: prints "already running" if it is up.
#   stop     Stop the server (SIGTERM, SIGKILL after 60 s). Idempotent.
#   status   Print running/stopped. Exit 0 if running, 3 if not (LSB style),
#            4 if the process is alive but does not answer on its port.
#   dsn      Print the DSN the tests and the demo connect with.
#   reset    Stop, delete the data directory, start fresh.
#   client   Open a `mariadb` client as the shadowswap user (extra args are
#            passed on, e.g. `scripts/mariadb.sh client -e 'select 1'`).
#
# Environment:
#   SHADOWSWAP_MYSQL_PORT  TCP port of the primary instance (default 33306).
#
# Everything lives under <repo>/.local/mariadb/ (git-ignored):
#   primary/        data directory (binary logs included, see --log-bin)
#   primary.sock    unix socket        primary.pid   pid file
#   primary.err     server error log   primary.tz.log  warnings of the tz load
#   primary.lock    flock serialising start/stop/reset of this instance
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
# start/stop/status code only ever reads INSTANCE_*. To add the replica later,
# add a `replica)` branch (own port variable, server-id 2) and pass the
# instance name through from the command line; nothing else needs copying.

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

select_instance() {
    local name="$1"
    case "$name" in
        primary)
            INSTANCE_PORT="${SHADOWSWAP_MYSQL_PORT:-33306}"
            INSTANCE_SERVER_ID=1
            ;;
        # replica)
        #     INSTANCE_PORT="${SHADOWSWAP_MYSQL_REPLICA_PORT:-33307}"
        #     INSTANCE_SERVER_ID=2
        #     ;;
        *)
            die "unknown MariaDB instance '$name' (known: primary)"
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
        die "$INSTANCE_DATADIR exists but was never fully initialised (interrupted first start?); run '$0 reset'"
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
#                   the future replica to tell its source apart.
#   --log-bin       binary log inside the data directory, so `reset` removes
#                   it with the data and a fresh start never sees old logs.
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
        --log-bin="$INSTANCE_DATADIR/binlog"
        --binlog-format=ROW
        --character-set-server=utf8mb4
        --collation-server=utf8mb4_unicode_ci
        --max-connections=1000
        --innodb-buffer-pool-size=512M
        --innodb-flush-log-at-trx-commit=2
        --sync-binlog=0
        --skip-name-resolve
    )
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
            die "mariadbd did not answer on $BIND_HOST:$INSTANCE_PORT within ${START_TIMEOUT}s (pid $LAUNCHED_PID left running; '$0 stop' to stop it)"
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

do_start() {
    local pid
    mkdir -p -- "$BASE_DIR"
    clear_stale_pid_file
    if pid="$(running_pid)"; then
        local port
        port="$(running_port "$pid")"
        if [[ -n "$port" && "$port" != "$INSTANCE_PORT" ]]; then
            die "mariadb ($INSTANCE_NAME) is already running on port $port (pid $pid), not $INSTANCE_PORT; run '$0 stop' first"
        fi
        # Our process is alive; it may still be starting (a concurrent or
        # interrupted `start`), so give it the normal startup time.
        if wait_until "$START_TIMEOUT" server_answers; then
            provision
            log "mariadb already running on $BIND_HOST:$INSTANCE_PORT (pid $pid)"
            return 0
        fi
        error_log_tail
        die "mariadbd (pid $pid) is alive but does not answer on $BIND_HOST:$INSTANCE_PORT; try '$0 stop' then '$0 start'"
    fi

    if tcp_port_open "$BIND_HOST" "$INSTANCE_PORT"; then
        die "port $INSTANCE_PORT on $BIND_HOST is already in use by another process (not this checkout's $INSTANCE_NAME instance); set SHADOWSWAP_MYSQL_PORT to another port"
    fi

    init_datadir
    # A socket file left over by a killed server is unlinked by mariadbd
    # itself; the pid file was handled by running_pid above.
    local started=$SECONDS
    launch_server
    wait_for_start
    pid="$(read_pid_file "$INSTANCE_PIDFILE")"
    log "mariadbd answered after $((SECONDS - started))s"
    provision
    log "mariadb running on $BIND_HOST:$INSTANCE_PORT (pid $pid)"
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
        "$BASE_DIR/$INSTANCE_NAME.install-db.log"
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
    select_instance primary
    case "$cmd" in
        install) cmd_install ;;
        start) cmd_start ;;
        stop) cmd_stop ;;
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
