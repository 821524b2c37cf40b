#!/usr/bin/env bash
#
# Private PostgreSQL server(s) for shadowswap's tests and demo.
#
# Usage: scripts/postgres.sh COMMAND [INSTANCE]
#
# INSTANCE is `primary` (the default) or `replica`, a hot standby of the
# primary (see "The replica" below), or `bench`: a separate primary tuned for
# scripts/bench.sh (bigger shared_buffers, no checkpoints in the middle of a
# copy; its own port and data directory under .local/bench/postgres/), never
# used by the tests. `install` ignores it.
#
#   install  Install PostgreSQL (postgresql, postgresql-contrib) with apt-get
#            if missing. Debian's own cluster (port 5432) is never left
#            running.
#   start    Install if needed, initdb on first start (the replica: clone the
#            primary), start the server in the background and wait until it
#            answers. Idempotent: prints "already running" if it is up,
#            or restarts it when the installed binaries are newer than the
#            running server (a package upgrade since it started).
#   stop     Stop the server (pg_ctl stop -m fast; immediate shutdown, then
#            SIGKILL, as fallbacks). Idempotent.
#   restart  Stop, then start; the data directory is kept.
#   status   Print running/stopped (the replica: also its replication state).
#            Exit 0 if running, 3 if not (LSB style), 4 if the process is
#            alive but does not answer on its port.
#   dsn      Print the DSN the tests and the demo connect with.
#   ca       Print the path of the CA certificate that signed the server's
#            TLS certificate (for sslmode=verify-ca/verify-full, sslrootcert).
#   reset    Stop, delete the data directory, start fresh (the replica: a new
#            clone of the primary).
#   client   Open `psql` as the shadowswap user (extra args are passed on,
#            e.g. `scripts/postgres.sh client -c 'select 1'` or
#            `scripts/postgres.sh client replica -c 'select 1'`).
#
# Environment:
#   SHADOWSWAP_PG_PORT          TCP port of the primary (default 54329).
#   SHADOWSWAP_PG_REPLICA_PORT  TCP port of the replica (default 54330).
#   SHADOWSWAP_PG_BENCH_PORT    TCP port of the bench instance (default 54339).
#
# Everything lives under <repo>/.local/postgres/ (git-ignored):
#   primary/, replica/  data directories (initdb / pg_basebackup; their
#                       shadowswap.conf holds our settings and is rewritten
#                       on every start)
#   .s.PGSQL.<port>     unix socket (+ .lock) of each instance
#   <instance>.log      server log (pg_ctl -l)
#   primary.initdb.log  output of initdb; replica.initdb.log: of pg_basebackup
#   <instance>.lock     flock serialising start/stop/reset of the instance
#   <instance>.ca.crt   copy of the instance's CA certificate (public), for
#                       clients' sslrootcert; refreshed on every start
# The bench instance keeps the same files under <repo>/.local/bench/postgres/.
#
# The replica: a streaming hot standby of the primary (hot_standby = on, so
# it answers read-only queries; `SELECT pg_wal_replay_pause()` /
# `pg_wal_replay_resume()` on it stop and resume its replay, which is how the
# tests make it lag). Its data directory is made by
# `pg_basebackup -R -X stream -C -S shadowswap_replica` from the primary over
# TCP as the `shadowswap` role (which has REPLICATION): -R writes
# standby.signal and primary_conninfo/primary_slot_name to
# postgresql.auto.conf, and -C -S creates the physical replication slot
# `shadowswap_replica` on the primary, so the primary keeps the WAL the
# standby has not received yet (while it is stopped or falls behind)
# instead of the standby losing its way. max_slot_wal_keep_size caps what a
# long-stopped standby can hold back (2GB); past that the slot is
# invalidated. `start replica` starts the primary first if it must clone,
# and clones anew by itself (logging why) when the copy cannot follow the
# primary any more: the primary was reset (another system identifier), or
# the slot is gone or invalidated. `reset replica` drops the slot and clones
# anew. Clones are made in replica.partial/ and renamed when complete, so an
# interrupted clone is never started. The replica shares the primary's TLS
# files (copied with the data directory; its certificate names 127.0.0.1 and
# localhost, so verify-full works on either port) and gets the same
# pg_hba.conf. Stopping or resetting the primary does not touch the replica.
#
# TLS: the server accepts TLS and plain connections alike (ssl = on; the
# pg_hba.conf `host` lines match both). On first start (or when a file is
# missing) a private CA and a server certificate signed by it are generated
# with openssl into the data directory: shadowswap-ca.crt/.key, server.crt/
# .key (ECDSA P-256, 10 years; the server's subjectAltName is DNS:localhost
# and IP:127.0.0.1, so sslmode=verify-full works with either host). `reset`
# deletes them with the data directory, so a new CA comes with it.
#
# The server listens on 127.0.0.1 only and never on 5432, so it cannot clash
# with Debian's cluster. PostgreSQL refuses to run as root: when this script
# runs as root (CI), the server runs as the system user `postgres` (created
# if missing) through runuser, .local/postgres/ is owned by that user, and
# any directory above it that `postgres` cannot traverse gets o+x. As any
# other user, the server runs as that user.

set -euo pipefail

SCRIPT_DIR="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)"
LOG_PREFIX=postgres
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$SCRIPT_DIR/lib.sh"

REPO_ROOT="$(repo_root)"
BASE_DIR="$REPO_ROOT/.local/postgres"

# Accounts the tests and the demo use (see `dsn`). Deliberately trivial: the
# server only listens on loopback and holds throwaway data.
APP_USER=shadowswap
APP_PASSWORD=shadowswap
APP_DB=shadowswap
# A non-superuser, for tests of grants and missing privileges.
LIMITED_USER=app
LIMITED_PASSWORD=app
# Bootstrap superuser (initdb -U). It has no password: it can only log in
# over the unix socket (local trust), which is how this script provisions.
SUPERUSER=postgres
BIND_HOST=127.0.0.1
SYSTEM_PORT=5432 # Debian's cluster; never ours

START_TIMEOUT=60 # seconds until the server must accept connections
STOP_TIMEOUT=60  # seconds for a fast shutdown before harsher measures

# Debian packages providing everything below (pgbench is in postgresql-<N>,
# which postgresql depends on).
APT_PACKAGES=(postgresql postgresql-contrib openssl)
REQUIRED_BINS=(postgres initdb pg_ctl psql pg_isready pgbench pg_basebackup)
# The OS account the server runs as when we are root.
PG_OS_USER=postgres

# PG* variables of the caller (PGHOST, PGPORT, PGSERVICE, PGOPTIONS,
# PGSSLMODE, PGCHANNELBINDING...) would redirect or alter our own
# connections and the server's defaults; every PostgreSQL program this
# script runs gets them removed (see pg_env/as_pg).
PG_ENV_UNSET=()
while IFS= read -r _var; do
    PG_ENV_UNSET+=(-u "$_var")
done < <(compgen -e | grep '^PG' || true)
unset _var

# --------------------------------------------------------------------------
# Instance definition
# --------------------------------------------------------------------------
#
# All per-instance settings are globals filled by select_instance; the
# start/stop/status code only ever reads INSTANCE_*. The replica (kind
# `standby`) differs only where INSTANCE_KIND is tested: its data directory
# is a pg_basebackup copy of the primary (init_datadir), it is never
# provisioned (it is read-only and has everything from the primary), and its
# status says how replication goes.

INSTANCE_NAME=""
INSTANCE_KIND=""  # primary: initdb + provisioning; standby: pg_basebackup copy
INSTANCE_PORT=""
INSTANCE_DATADIR=""
INSTANCE_SOCKET_DIR=""
INSTANCE_PIDFILE=""
INSTANCE_CONF=""
INSTANCE_LOG=""
INSTANCE_INITDB_LOG=""
INSTANCE_LOCKFILE=""
INSTANCE_INIT_MARKER=""
INSTANCE_PROVISIONED_MARKER=""
INSTANCE_CA_COPY=""

# The primary a standby follows, and the physical replication slot on the
# primary that keeps WAL for it.
PRIMARY_PORT="${SHADOWSWAP_PG_PORT:-54329}"
REPLICA_SLOT=shadowswap_replica
# Most WAL a slot may hold back on the primary (see the header).
MAX_SLOT_WAL_KEEP=2GB

# The variable that sets this instance's port, for messages.
port_variable() {
    if [[ "$INSTANCE_KIND" == standby ]]; then
        printf 'SHADOWSWAP_PG_REPLICA_PORT\n'
    else
        printf 'SHADOWSWAP_PG_PORT\n'
    fi
}

select_instance() {
    local name="$1"
    case "$name" in
        primary)
            INSTANCE_PORT="${SHADOWSWAP_PG_PORT:-54329}"
            INSTANCE_KIND=primary
            ;;
        replica)
            INSTANCE_PORT="${SHADOWSWAP_PG_REPLICA_PORT:-54330}"
            INSTANCE_KIND=standby
            [[ "$INSTANCE_PORT" != "$PRIMARY_PORT" ]] ||
                die "the replica cannot use the primary's port $PRIMARY_PORT; set SHADOWSWAP_PG_REPLICA_PORT"
            ;;
        bench)
            INSTANCE_PORT="${SHADOWSWAP_PG_BENCH_PORT:-54339}"
            INSTANCE_KIND=primary
            # Its own tree (data, socket, log, lock), so that resetting the
            # test servers never touches the benchmark's tables.
            BASE_DIR="$REPO_ROOT/.local/bench/postgres"
            ;;
        *)
            die "unknown PostgreSQL instance '$name' (known: primary, replica, bench)"
            ;;
    esac
    valid_port "$INSTANCE_PORT" || die "invalid port '$INSTANCE_PORT' for instance $name"
    [[ "$INSTANCE_PORT" != "$SYSTEM_PORT" ]] ||
        die "port $SYSTEM_PORT is the system cluster's; choose another one for instance $name"

    INSTANCE_NAME="$name"
    INSTANCE_DATADIR="$BASE_DIR/$name"
    # Written by the postmaster itself; first line is its pid, 4th its port.
    INSTANCE_PIDFILE="$INSTANCE_DATADIR/postmaster.pid"
    INSTANCE_CONF="$INSTANCE_DATADIR/shadowswap.conf"
    INSTANCE_LOG="$BASE_DIR/$name.log"
    INSTANCE_INITDB_LOG="$BASE_DIR/$name.initdb.log"
    INSTANCE_LOCKFILE="$BASE_DIR/$name.lock"
    # Written once initdb has finished / once roles and database exist. Both
    # live inside the data directory so that deleting it (reset) starts
    # everything over. pg_basebackup copies them to a standby, which is
    # right: it is a copy of an initialised, provisioned primary. A
    # standby's own marker says that its clone is complete (the primary's
    # is copied early in the clone, so it proves nothing there).
    INSTANCE_INIT_MARKER="$INSTANCE_DATADIR/.shadowswap-initialized"
    if [[ "$INSTANCE_KIND" == standby ]]; then
        INSTANCE_INIT_MARKER="$INSTANCE_DATADIR/.shadowswap-cloned"
    fi
    INSTANCE_PROVISIONED_MARKER="$INSTANCE_DATADIR/.shadowswap-provisioned"
    # Published copy of the CA certificate (the data directory is 0700).
    INSTANCE_CA_COPY="$BASE_DIR/$name.ca.crt"

    # The socket is <dir>/.s.PGSQL.<port>, and a unix socket path must fit
    # in sockaddr_un.sun_path (108 bytes on Linux). A deeply nested checkout
    # would overflow it, so fall back to a per-checkout directory in /tmp in
    # that case. All instances share the directory (the name has the port).
    INSTANCE_SOCKET_DIR="$BASE_DIR"
    if ((${#INSTANCE_SOCKET_DIR} + 17 > 100)); then
        local hash
        hash="$(printf '%s' "$BASE_DIR" | cksum | cut -d' ' -f1)"
        INSTANCE_SOCKET_DIR="${TMPDIR:-/tmp}/shadowswap-postgres-$hash"
    fi
}

# --------------------------------------------------------------------------
# Binaries and the OS user
# --------------------------------------------------------------------------

PG_BINDIR=""
INITDB=""
PG_CTL=""
PSQL=""
PG_ISREADY=""
PG_RUN_AS="" # OS user the server runs as; empty = the invoking user

# pg_bindirs: directories holding a PostgreSQL server, newest major version
# first. Debian installs each major version under /usr/lib/postgresql/<N>/bin,
# off PATH (/usr/bin only has pg_wrapper links for the client programs).
pg_bindirs() {
    local dir
    for dir in /usr/lib/postgresql/*/bin; do
        if [[ -x "$dir/postgres" ]]; then
            printf '%s\n' "$dir"
        fi
    done | sort -t/ -k5,5Vr
    # Other layouts (source builds, other distributions): whatever is on PATH.
    if have_cmd pg_config && dir="$(pg_config --bindir 2>/dev/null)" && [[ -x "$dir/postgres" ]]; then
        printf '%s\n' "$dir"
    fi
    if dir="$(command -v postgres 2>/dev/null)"; then
        dirname -- "$dir"
    fi
}

# bindir_major DIR: the major version of the server in DIR ("15", "9.6").
bindir_major() {
    local dir="$1" version
    if [[ "$dir" =~ ^/usr/lib/postgresql/([0-9.]+)/bin$ ]]; then
        printf '%s\n' "${BASH_REMATCH[1]}"
        return 0
    fi
    # "postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)"
    version="$("$dir/postgres" --version 2>/dev/null | awk '{ print $3 }')"
    case "$version" in
        [0-9].*) printf '%s\n' "${version%.*}" ;; # 9.6.24 -> 9.6
        *) printf '%s\n' "${version%%.*}" ;;      # 15.18 -> 15
    esac
}

# missing_requirements: print what is missing (one per line), nothing if all
# is there. Looks at the newest installed version only.
missing_requirements() {
    local dir bin
    dir="$(pg_bindirs | head -n 1)"
    if [[ -z "$dir" ]]; then
        printf '%s\n' "postgres"
        return 0
    fi
    for bin in "${REQUIRED_BINS[@]}"; do
        [[ -x "$dir/$bin" ]] || printf '%s\n' "$bin"
    done
    have_cmd openssl || printf '%s\n' "openssl"
    if [[ "${EUID:-$(id -u)}" -eq 0 ]] && ! have_cmd runuser; then
        printf '%s\n' "runuser"
    fi
}

# resolve_bins: pick the server version. An existing data directory can only
# be run by the major version that created it (PG_VERSION), so that one is
# used if installed; a new data directory gets the newest installed version.
resolve_bins() {
    local want="" dir candidates
    if [[ -f "$INSTANCE_DATADIR/PG_VERSION" ]]; then
        want="$(tr -d '[:space:]' <"$INSTANCE_DATADIR/PG_VERSION" 2>/dev/null || true)"
    fi
    candidates="$(pg_bindirs)"
    PG_BINDIR=""
    while IFS= read -r dir; do
        [[ -n "$dir" ]] || continue
        if [[ -z "$want" || "$(bindir_major "$dir")" == "$want" ]]; then
            PG_BINDIR="$dir"
            break
        fi
    done <<<"$candidates"
    if [[ -z "$PG_BINDIR" ]]; then
        if [[ -n "$want" && -n "$candidates" ]]; then
            die "$INSTANCE_DATADIR was created by PostgreSQL $want, which is not installed (found: $(printf '%s' "$candidates" | tr '\n' ' ')); run '$0 reset $INSTANCE_NAME' to recreate it"
        fi
        die "PostgreSQL server binaries not found; run '$0 install'"
    fi
    local bin
    for bin in postgres initdb pg_ctl psql pg_isready; do
        [[ -x "$PG_BINDIR/$bin" ]] || die "$PG_BINDIR/$bin not found"
    done
    INITDB="$PG_BINDIR/initdb"
    PG_CTL="$PG_BINDIR/pg_ctl"
    PSQL="$PG_BINDIR/psql"
    PG_ISREADY="$PG_BINDIR/pg_isready"
}

# The server (initdb, pg_ctl, postgres) runs as $PG_OS_USER when we are root.
detect_run_as() {
    if [[ "${EUID:-$(id -u)}" -eq 0 ]]; then
        PG_RUN_AS="$PG_OS_USER"
    else
        PG_RUN_AS=""
    fi
}

# The Debian package creates the user; other installs may not have.
ensure_os_user() {
    [[ -n "$PG_RUN_AS" ]] || return 0
    if ! id -u "$PG_RUN_AS" >/dev/null 2>&1; then
        log "creating system user $PG_RUN_AS"
        useradd --system --user-group --home-dir /var/lib/postgresql --no-create-home \
            --shell /bin/bash "$PG_RUN_AS" || die "could not create user $PG_RUN_AS"
    fi
}

# pg_env CMD [ARGS...]: run CMD without the caller's PG* variables.
pg_env() {
    env "${PG_ENV_UNSET[@]}" "$@"
}

# as_pg CMD [ARGS...]: run CMD as the server's OS user (see detect_run_as),
# without the caller's PG* variables, from / (postgres may not be allowed to
# enter our working directory; initdb and pg_ctl would complain).
as_pg() {
    if [[ -n "$PG_RUN_AS" ]]; then
        (cd / && runuser -u "$PG_RUN_AS" -- env "${PG_ENV_UNSET[@]}" "$@")
    else
        pg_env "$@"
    fi
}

# --------------------------------------------------------------------------
# install
# --------------------------------------------------------------------------

cmd_install() {
    local missing
    detect_run_as
    missing="$(missing_requirements)"
    if [[ -z "$missing" ]]; then
        ensure_os_user
        return 0
    fi
    log "missing: $(printf '%s' "$missing" | tr '\n' ' ')- installing ${APT_PACKAGES[*]}"
    need_root_or_sudo "installing PostgreSQL with apt-get"

    local started=$SECONDS
    # The postinst creates Debian's cluster <N>/main (port 5432) and starts
    # it through invoke-rc.d; the helper forbids that start for the duration
    # of the install. A refused start can make apt-get return non-zero
    # although the packages are usable, so the verdict is the check below.
    apt_install_without_services "${APT_PACKAGES[@]}" ||
        warn "apt-get install returned non-zero (a refused service start is expected); checking binaries"

    missing="$(missing_requirements)"
    [[ -z "$missing" ]] || die "still missing after apt-get install: $(printf '%s' "$missing" | tr '\n' ' ')"
    log "installed PostgreSQL $(bindir_major "$(pg_bindirs | head -n 1)") in $((SECONDS - started))s"

    stop_system_clusters
    ensure_os_user
}

# Make sure no Debian cluster (15/main on port 5432...) is left running by
# the package install, e.g. on a machine whose policy-rc.d allowed the start.
# Only clusters listed by pg_lsclusters are touched, never private instances.
stop_system_clusters() {
    have_cmd pg_lsclusters || return 0
    local version cluster port status _rest
    while read -r version cluster port status _rest; do
        [[ "$status" == online* ]] || continue
        log "the package started the system cluster $version/$cluster (port $port); stopping it, we do not use it"
        as_root pg_ctlcluster "$version" "$cluster" stop -m fast >&2 ||
            warn "could not stop system cluster $version/$cluster"
    done < <(pg_lsclusters -h 2>/dev/null || true)
}

# --------------------------------------------------------------------------
# Talking to the server
# --------------------------------------------------------------------------
#
# Every client call has the host, port, user and database on its command
# line, runs without the caller's PG* variables, and psql gets -X (no
# ~/.psqlrc).

# Accepting connections on the TCP port (pg_isready does not need a valid
# account: it only asks whether the server would accept one).
server_answers() {
    pg_env "$PG_ISREADY" -q -h "$BIND_HOST" -p "$INSTANCE_PORT" -U "$SUPERUSER" -d postgres -t 2
}

# SQL as the bootstrap superuser over the unix socket (local trust).
super_sql() {
    pg_env PGCONNECT_TIMEOUT=10 "$PSQL" -X -q -v ON_ERROR_STOP=1 \
        -h "$INSTANCE_SOCKET_DIR" -p "$INSTANCE_PORT" -U "$SUPERUSER" -d postgres "$@"
}

# user_sql USER PASSWORD [PSQL ARGS...]: SQL over TCP with a password, like
# the tests connect.
user_sql() {
    local user="$1" password="$2"
    shift 2
    pg_env PGPASSWORD="$password" PGCONNECT_TIMEOUT=10 "$PSQL" -X -q -v ON_ERROR_STOP=1 \
        -h "$BIND_HOST" -p "$INSTANCE_PORT" -U "$user" -d "$APP_DB" "$@"
}

# running_pid: print the pid of this instance's postmaster if it is alive.
# Fails if there is no postmaster.pid, or if it names a dead (or zombie)
# process or a live process that is not working in this data directory (pid
# reused after a crash or reboot). Has no side effects; see
# clear_stale_state.
running_pid() {
    local pid
    pid="$(read_pid_file "$INSTANCE_PIDFILE")" || return 1
    pid_alive "$pid" || return 1
    pid_cwd_is "$pid" "$INSTANCE_DATADIR" || return 1
    printf '%s\n' "$pid"
}

# running_port: the port recorded in postmaster.pid (4th line), to notice
# SHADOWSWAP_PG_PORT changing under a running instance.
running_port() {
    sed -n '4p' -- "$INSTANCE_PIDFILE" 2>/dev/null | tr -d '[:space:]' || true
}

# server_leftovers: pids of live PostgreSQL processes working in this data
# directory (the postmaster and its children all chdir into it), whatever
# their parent. Only postgres executables count: a shell someone left in the
# directory is not a leftover.
server_leftovers() {
    local pid exe
    for pid in $(pids_with_cwd "$INSTANCE_DATADIR"); do
        exe="$(readlink -- "/proc/$pid/exe" 2>/dev/null || true)"
        exe="${exe% (deleted)}" # binary replaced by a package upgrade
        if [[ "${exe##*/}" == postgres ]]; then
            printf '%s\n' "$pid"
        fi
    done
}

datadir_idle() {
    [[ -z "$(server_leftovers)" ]]
}

# Clean up after a postmaster that died without shutting down (kill -9, OOM,
# reboot). Does nothing while this instance's postmaster is alive.
#   * Its children (checkpointer, backends...) notice the postmaster's death
#     and exit within moments. A new postmaster must not start while any of
#     them still has the old shared memory attached, so wait for them (see
#     server_leftovers), SIGKILL after 30 s.
#   * postmaster.pid and the socket's .lock file still name the dead pid.
#     PostgreSQL removes such files itself only if kill(pid, 0) fails; a
#     zombie (containers whose PID 1 does not reap) or a reused pid makes it
#     refuse to start ("Is another postmaster running?"), so remove them.
clear_stale_state() {
    if running_pid >/dev/null; then
        return 0
    fi
    local leftovers stale_pid="" stale_port pid lock
    leftovers="$(server_leftovers)"
    if [[ -n "$leftovers" ]]; then
        log "waiting for leftover server processes in $INSTANCE_DATADIR to exit: $(printf '%s' "$leftovers" | tr '\n' ' ')"
        if ! wait_until 30 datadir_idle; then
            warn "still running after 30s; sending SIGKILL"
            for pid in $(server_leftovers); do
                kill -KILL "$pid" 2>/dev/null || true
            done
            wait_until 10 datadir_idle || die "could not stop leftover server processes in $INSTANCE_DATADIR"
        fi
    fi
    if [[ -e "$INSTANCE_PIDFILE" ]]; then
        stale_pid="$(read_pid_file "$INSTANCE_PIDFILE" || true)"
        stale_port="$(running_port)"
        log "removing stale $INSTANCE_PIDFILE (pid ${stale_pid:-?} is not running)"
        rm -f -- "$INSTANCE_PIDFILE"
    else
        stale_port=""
    fi
    for lock in "$INSTANCE_SOCKET_DIR/.s.PGSQL.$INSTANCE_PORT.lock" \
        ${stale_port:+"$INSTANCE_SOCKET_DIR/.s.PGSQL.$stale_port.lock"}; do
        [[ -e "$lock" ]] || continue
        pid="$(read_pid_file "$lock" || true)"
        if [[ -z "$pid" || "$pid" == "$stale_pid" ]] || ! pid_alive "$pid"; then
            log "removing stale $lock (pid ${pid:-?} is not running)"
            rm -f -- "$lock"
        fi
    done
}

log_tail() {
    if [[ -f "$INSTANCE_LOG" ]]; then
        log "last lines of $INSTANCE_LOG:"
        tail -n 40 -- "$INSTANCE_LOG" | sed 's/^/    /' >&2
    else
        log "no server log at $INSTANCE_LOG"
    fi
}

# --------------------------------------------------------------------------
# start
# --------------------------------------------------------------------------

# Directories the server writes to (the base directory: socket, log; the
# data directory) must belong to the server's OS user, and it must be able
# to traverse every directory above them: a checkout under /root or in a
# mktemp -d directory (mode 0700) is not traversable for `postgres`. Such
# directories get o+x (search only: names inside stay unlistable), which is
# logged. Nothing to do when the server runs as ourselves.
prepare_dirs() {
    mkdir -p -- "$BASE_DIR" "$INSTANCE_SOCKET_DIR"
    [[ -n "$PG_RUN_AS" ]] || return 0
    local dir
    for dir in "$BASE_DIR" "$INSTANCE_SOCKET_DIR"; do
        chown "$PG_RUN_AS:" "$dir"
        chmod 0755 "$dir"
        ensure_traversable "$dir"
    done
    if [[ -e "$INSTANCE_LOG" ]]; then
        chown "$PG_RUN_AS:" "$INSTANCE_LOG"
    fi
    # A data directory created by another user (or restored by root) would
    # make initdb/postgres fail with "permission denied" or "wrong owner".
    if [[ -d "$INSTANCE_DATADIR" && "$(stat -c %U -- "$INSTANCE_DATADIR")" != "$PG_RUN_AS" ]]; then
        log "giving $INSTANCE_DATADIR to $PG_RUN_AS"
        chown -R "$PG_RUN_AS:" "$INSTANCE_DATADIR"
    fi
}

# ensure_traversable DIR: make sure $PG_RUN_AS can reach DIR.
ensure_traversable() {
    local target="$1" path="" part
    if as_pg test -x "$target"; then
        return 0
    fi
    local -a parts
    IFS=/ read -r -a parts <<<"$target"
    for part in "${parts[@]}"; do
        [[ -n "$part" ]] || continue
        path="$path/$part"
        if ! as_pg test -x "$path"; then
            log "chmod o+x $path (user $PG_RUN_AS must traverse it to reach $target)"
            chmod o+x -- "$path" || die "cannot make $path traversable for $PG_RUN_AS"
        fi
    done
    as_pg test -x "$target" || die "user $PG_RUN_AS still cannot reach $target"
}

# The locale for initdb: C.UTF-8 (byte-order collation like C, but UTF-8
# character classification) where the C library has it, else C.
initdb_locale() {
    if locale -a 2>/dev/null | grep -qix 'C\.utf-\?8'; then
        printf 'C.UTF-8\n'
    else
        printf 'C\n'
    fi
}

# initdb on first start. Flags:
#   -U postgres        bootstrap superuser, with no password (see SUPERUSER).
#   --auth-local=trust unix socket logins need no password (provisioning).
#   --auth-host=scram-sha-256
#                      TCP logins need a password, like a real server; the
#                      pg_hba.conf written on start says the same.
#   --encoding=UTF8 / --locale=C.UTF-8 (C where missing)
#                      deterministic, machine-independent text handling; the
#                      system locale (LANG) does not leak in.
init_datadir() {
    if [[ -f "$INSTANCE_INIT_MARKER" ]]; then
        return 0
    fi
    if [[ -d "$INSTANCE_DATADIR" ]] && [[ -n "$(ls -A -- "$INSTANCE_DATADIR")" ]]; then
        die "$INSTANCE_DATADIR exists but was never fully initialised (interrupted first start?); run '$0 reset $INSTANCE_NAME'"
    fi
    case "$INSTANCE_KIND" in
        primary) ;;
        standby)
            clone_standby
            return 0
            ;;
        *) die "unknown instance kind $INSTANCE_KIND" ;;
    esac
    mkdir -p -- "$INSTANCE_DATADIR"
    chmod 0700 "$INSTANCE_DATADIR"
    if [[ -n "$PG_RUN_AS" ]]; then
        chown "$PG_RUN_AS:" "$INSTANCE_DATADIR"
    fi
    local locale started=$SECONDS
    locale="$(initdb_locale)"
    log "initialising data directory $INSTANCE_DATADIR (PostgreSQL $(bindir_major "$PG_BINDIR"), locale $locale)"
    if ! as_pg "$INITDB" -D "$INSTANCE_DATADIR" -U "$SUPERUSER" \
        --auth-local=trust --auth-host=scram-sha-256 \
        --encoding=UTF8 --locale="$locale" >"$INSTANCE_INITDB_LOG" 2>&1; then
        log "initdb failed; output:"
        sed 's/^/    /' "$INSTANCE_INITDB_LOG" >&2
        rm -rf -- "$INSTANCE_DATADIR"
        die "could not initialise $INSTANCE_DATADIR"
    fi
    as_pg touch -- "$INSTANCE_INIT_MARKER"
    log "data directory initialised in $((SECONDS - started))s"
}

# --------------------------------------------------------------------------
# The replica (a streaming standby of the primary; see the header)
# --------------------------------------------------------------------------

# SQL on the primary as the bootstrap superuser over the unix socket (the
# instances share the socket directory).
primary_sql() {
    pg_env PGCONNECT_TIMEOUT=10 "$PSQL" -X -q -v ON_ERROR_STOP=1 \
        -h "$INSTANCE_SOCKET_DIR" -p "$PRIMARY_PORT" -U "$SUPERUSER" -d postgres "$@"
}

primary_answers() {
    pg_env "$PG_ISREADY" -q -h "$BIND_HOST" -p "$PRIMARY_PORT" -U "$SUPERUSER" -d postgres -t 2
}

# Start the primary (a clone needs it) through this script, in a process of
# its own that takes the primary's lock; fd 9 (our own instance's lock) is
# closed for it.
ensure_primary_running() {
    if primary_answers; then
        return 0
    fi
    log "the primary (port $PRIMARY_PORT) is not running; starting it to clone it"
    bash "$SCRIPT_DIR/postgres.sh" start primary 9>&- || die "could not start the primary"
}

# The state of our slot on the primary: nothing if it does not exist, else
# its wal_status (reserved, extended, unreserved, lost) and whether a
# standby streams from it, e.g. "reserved f".
replica_slot_state() {
    primary_sql -At -F ' ' \
        -c "SELECT coalesce(wal_status, '?'), active FROM pg_replication_slots WHERE slot_name = '$REPLICA_SLOT'"
}

slot_inactive() {
    [[ "$(replica_slot_state)" != *" t" ]]
}

# Drop our slot on the primary if it exists (a stopped standby's walsender
# may take a moment to go away, so wait for it to be inactive first).
drop_replica_slot() {
    [[ -n "$(replica_slot_state)" ]] || return 0
    wait_until 15 slot_inactive ||
        die "replication slot $REPLICA_SLOT on the primary is in use by a running standby (not this checkout's replica?); stop it first"
    log "dropping replication slot $REPLICA_SLOT on the primary"
    primary_sql -c "SELECT pg_drop_replication_slot('$REPLICA_SLOT') FROM pg_replication_slots WHERE slot_name = '$REPLICA_SLOT'" >/dev/null ||
        die "could not drop replication slot $REPLICA_SLOT on the primary"
}

# standby_stale_reason: succeeds, printing why, when the replica's copy can
# no longer follow the primary and must be cloned anew. Says nothing (and
# fails) when the primary is not running: then it cannot be told, and a
# standby simply waits for its primary.
standby_stale_reason() {
    primary_answers || return 1
    local primary_id replica_id slot
    primary_id="$(primary_sql -At -c 'SELECT system_identifier FROM pg_control_system()')" || return 1
    replica_id="$(as_pg "$PG_BINDIR/pg_controldata" "$INSTANCE_DATADIR" 2>/dev/null |
        awk -F: '/^Database system identifier/ { gsub(/[[:space:]]/, "", $2); print $2 }')" || true
    if [[ -n "$replica_id" && "$replica_id" != "$primary_id" ]]; then
        printf 'it is a copy of another primary (system identifier %s, the primary has %s; was the primary reset?)\n' \
            "$replica_id" "$primary_id"
        return 0
    fi
    slot="$(replica_slot_state)" || return 1
    case "$slot" in
        "")
            printf 'its replication slot %s does not exist on the primary\n' "$REPLICA_SLOT"
            return 0
            ;;
        lost\ *)
            printf 'its replication slot %s was invalidated (it fell more than max_slot_wal_keep_size = %s behind)\n' \
                "$REPLICA_SLOT" "$MAX_SLOT_WAL_KEEP"
            return 0
            ;;
    esac
    return 1
}

# clone_standby: make the replica's data directory, a copy of the running
# primary (see the header). The copy is made in <instance>.partial/ and
# renamed once complete, so an interrupted clone is never started.
#   -R            standby.signal + primary_conninfo (host, port, user and
#                 password of this connection) in postgresql.auto.conf
#   -X stream     the WAL written during the copy is streamed alongside it,
#                 so the copy is consistent by itself
#   -C -S SLOT    create the physical replication slot SLOT on the primary
#                 (primary_slot_name is written by -R)
#   --checkpoint=fast
#                 start at once instead of waiting for a spread checkpoint
clone_standby() {
    local partial="$BASE_DIR/$INSTANCE_NAME.partial" started=$SECONDS
    [[ -x "$PG_BINDIR/pg_basebackup" ]] || die "$PG_BINDIR/pg_basebackup not found"
    ensure_primary_running
    if [[ -e "$partial" ]]; then
        log "removing the interrupted clone $partial"
        rm -rf -- "$partial"
    fi
    drop_replica_slot
    log "cloning the primary ($BIND_HOST:$PRIMARY_PORT) into $INSTANCE_DATADIR with pg_basebackup (replication slot $REPLICA_SLOT)"
    if ! as_pg env PGPASSWORD="$APP_PASSWORD" PGCONNECT_TIMEOUT=10 "$PG_BINDIR/pg_basebackup" \
        -D "$partial" -R -X stream -C -S "$REPLICA_SLOT" --checkpoint=fast --no-password \
        -d "host=$BIND_HOST port=$PRIMARY_PORT user=$APP_USER" >"$INSTANCE_INITDB_LOG" 2>&1; then
        log "pg_basebackup failed; output:"
        sed 's/^/    /' "$INSTANCE_INITDB_LOG" >&2
        rm -rf -- "$partial"
        drop_replica_slot
        die "could not clone the primary into $INSTANCE_DATADIR"
    fi
    as_pg touch -- "$partial/${INSTANCE_INIT_MARKER##*/}"
    rm -rf -- "$INSTANCE_DATADIR"
    mv -- "$partial" "$INSTANCE_DATADIR"
    log "replica cloned in $((SECONDS - started))s"
}

# One line about the standby's replication, for status.
standby_state() {
    super_sql -At -c "SELECT format('%s, %s, wal receiver %s', \
        CASE WHEN pg_is_in_recovery() THEN 'standby' ELSE 'promoted (no longer a standby)' END, \
        CASE WHEN pg_is_in_recovery() AND pg_is_wal_replay_paused() THEN 'replay paused' ELSE 'replay running' END, \
        coalesce((SELECT status || ' from ' || sender_host || ':' || sender_port FROM pg_stat_wal_receiver), 'not running'))" 2>/dev/null
}

# sql_literal VALUE: VALUE as a single-quoted configuration/SQL literal.
sql_literal() {
    printf "'%s'" "${1//\'/\'\'}"
}

# TLS files in the data directory (names relative to it; see the header).
TLS_CA_CERT=shadowswap-ca.crt
TLS_CA_KEY=shadowswap-ca.key
TLS_SERVER_CERT=server.crt
TLS_SERVER_KEY=server.key
TLS_DAYS=3650

# ensure_tls_files: generate the CA and the server certificate if any of the
# four files is missing (all four are made anew then, so they always match),
# and publish the CA certificate at $INSTANCE_CA_COPY. Everything runs as the
# server's OS user inside the data directory, under umask 077, so the keys
# are 0600 and owned by that user as PostgreSQL demands. Extensions: the CA
# is CA:TRUE with keyCertSign; the server certificate CA:FALSE, serverAuth,
# subjectAltName DNS:localhost + IP:$BIND_HOST (rustls/webpki, like modern
# libpq, match host names against subjectAltName only).
ensure_tls_files() {
    local f missing=0
    for f in "$TLS_CA_CERT" "$TLS_CA_KEY" "$TLS_SERVER_CERT" "$TLS_SERVER_KEY"; do
        as_pg test -s "$INSTANCE_DATADIR/$f" || missing=1
    done
    if ((missing)); then
        log "generating a CA and the server's TLS certificate in $INSTANCE_DATADIR (openssl, ECDSA P-256, $TLS_DAYS days; SAN DNS:localhost, IP:$BIND_HOST)"
        local work
        # shellcheck disable=SC2016 # expanded by the inner shell
        if ! as_pg sh -c '
            set -eu
            cd "$1"
            umask 077
            days="$2" host="$3"
            printf "%s\n" \
                "[ssw_ca]" \
                "basicConstraints = critical, CA:TRUE" \
                "keyUsage = critical, keyCertSign, cRLSign" \
                "subjectKeyIdentifier = hash" \
                "[ssw_server]" \
                "basicConstraints = critical, CA:FALSE" \
                "keyUsage = critical, digitalSignature" \
                "extendedKeyUsage = serverAuth" \
                "subjectAltName = DNS:localhost, IP:$host" \
                "subjectKeyIdentifier = hash" \
                "authorityKeyIdentifier = keyid, issuer" >tls-ext.cnf
            openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$4.tmp"
            openssl req -new -key "$4.tmp" -subj "/CN=shadowswap test CA" -out ca.csr
            openssl x509 -req -in ca.csr -signkey "$4.tmp" -days "$days" \
                -set_serial "0x$(openssl rand -hex 16)" \
                -extfile tls-ext.cnf -extensions ssw_ca -out "$5.tmp"
            openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$6.tmp"
            openssl req -new -key "$6.tmp" -subj "/CN=localhost" -out server.csr
            openssl x509 -req -in server.csr -CA "$5.tmp" -CAkey "$4.tmp" -days "$days" \
                -set_serial "0x$(openssl rand -hex 16)" \
                -extfile tls-ext.cnf -extensions ssw_server -out "$7.tmp"
            openssl verify -CAfile "$5.tmp" "$7.tmp" >/dev/null
            rm -f ca.csr server.csr tls-ext.cnf
            chmod 0644 "$5.tmp" "$7.tmp"
            mv -f "$4.tmp" "$4"; mv -f "$5.tmp" "$5"; mv -f "$6.tmp" "$6"; mv -f "$7.tmp" "$7"
        ' ensure_tls_files "$INSTANCE_DATADIR" "$TLS_DAYS" "$BIND_HOST" \
            "$TLS_CA_KEY" "$TLS_CA_CERT" "$TLS_SERVER_KEY" "$TLS_SERVER_CERT" >"$BASE_DIR/$INSTANCE_NAME.openssl.log" 2>&1; then
            sed 's/^/    /' "$BASE_DIR/$INSTANCE_NAME.openssl.log" >&2
            die "could not generate the TLS certificates in $INSTANCE_DATADIR (openssl output above)"
        fi
        work="$(openssl x509 -in "$INSTANCE_DATADIR/$TLS_SERVER_CERT" -noout -enddate 2>/dev/null || true)"
        log "TLS certificates generated (server certificate ${work:-valid for $TLS_DAYS days})"
    fi
    # Publish the CA certificate where clients can read it (0644).
    as_pg cp -f -- "$INSTANCE_DATADIR/$TLS_CA_CERT" "$INSTANCE_CA_COPY.tmp"
    as_pg chmod 0644 -- "$INSTANCE_CA_COPY.tmp"
    as_pg mv -f -- "$INSTANCE_CA_COPY.tmp" "$INSTANCE_CA_COPY"
}

# Our settings, in <datadir>/shadowswap.conf, included at the end of
# postgresql.conf (so they override initdb's values there) and rewritten on
# every start, so that a changed SHADOWSWAP_PG_PORT takes effect and a
# standby copied from the primary gets its own port. ALTER SYSTEM settings
# (postgresql.auto.conf, e.g. primary_conninfo from pg_basebackup -R) still
# override these, except the port: launch_server also gives it on the
# command line, so not even an ALTER SYSTEM SET port copied from the primary
# can make the replica take the primary's port.
#   listen_addresses   loopback only; port never 5432 (Debian's cluster).
#   wal_level=logical  publications/logical decoding can be tested, and
#                      implies what streaming standbys need.
#   max_wal_senders / max_replication_slots / hot_standby
#                      room for pg_basebackup and a streaming standby that
#                      accepts read-only queries.
#   max_slot_wal_keep_size
#                      a stopped replica's slot cannot fill the disk.
#   max_connections=300
#                      parallel test binaries each open pools of connections.
#   shared_buffers=256MB  enough for the tests' copy workloads.
#   synchronous_commit=off
#                      no WAL flush wait per commit: throwaway data, much
#                      faster tests. fsync stays on, so a crash (kill -9)
#                      loses at most the last commits, never consistency.
#   log_min_messages=warning / logging_collector=off
#                      quiet log; it goes to pg_ctl -l's file.
#   ssl=on / ssl_cert_file / ssl_key_file
#                      TLS offered (not required) with the certificate from
#                      ensure_tls_files; plain connections keep working.
# The bench instance (scripts/bench.sh) adds, overriding the above:
#   shared_buffers=1GB the table, its pristine copy and the copy being built
#                      stay in memory at 1,000,000 rows (about 130 MB each).
#   max_wal_size=8GB / checkpoint_timeout=30min
#                      no checkpoint forced in the middle of a bulk copy (the
#                      default 1GB of WAL is a few seconds of copying); the
#                      benchmark runs CHECKPOINT itself before each run.
#   maintenance_work_mem=512MB
#                      index builds (pg_repack's, CREATE INDEX) sort in memory.
write_instance_conf() {
    {
        printf '# Written by scripts/postgres.sh on every start; edits are lost.\n'
        printf 'listen_addresses = %s\n' "$(sql_literal "$BIND_HOST")"
        printf 'port = %s\n' "$INSTANCE_PORT"
        printf 'unix_socket_directories = %s\n' "$(sql_literal "$INSTANCE_SOCKET_DIR")"
        printf 'cluster_name = %s\n' "$(sql_literal "shadowswap-$INSTANCE_NAME")"
        printf '%s\n' \
            'wal_level = logical' \
            'max_wal_senders = 10' \
            'max_replication_slots = 10' \
            'hot_standby = on' \
            "max_slot_wal_keep_size = $MAX_SLOT_WAL_KEEP" \
            'max_connections = 300' \
            'shared_buffers = 256MB' \
            'synchronous_commit = off' \
            'logging_collector = off' \
            'log_min_messages = warning' \
            'ssl = on'
        printf 'ssl_cert_file = %s\n' "$(sql_literal "$TLS_SERVER_CERT")"
        printf 'ssl_key_file = %s\n' "$(sql_literal "$TLS_SERVER_KEY")"
        if [[ "$INSTANCE_NAME" == bench ]]; then
            printf '%s\n' \
                '# bench instance (scripts/bench.sh)' \
                'shared_buffers = 1GB' \
                'max_wal_size = 8GB' \
                'min_wal_size = 1GB' \
                'checkpoint_timeout = 30min' \
                'maintenance_work_mem = 512MB'
        fi
    } | as_pg tee -- "$INSTANCE_CONF" >/dev/null

    local include="include 'shadowswap.conf'"
    if ! grep -qxF -- "$include" "$INSTANCE_DATADIR/postgresql.conf"; then
        printf '\n# Added by shadowswap scripts/postgres.sh\n%s\n' "$include" |
            as_pg tee -a -- "$INSTANCE_DATADIR/postgresql.conf" >/dev/null
    fi

    # Replaces initdb's pg_hba.conf. `local replication` lets pg_basebackup
    # run as the server's OS user over the socket. `host` lines match TLS and
    # plain connections alike, except for two roles the TLS tests create
    # (integration/tests/postgres/tls.rs): ssw_tls_only may log in over TLS only,
    # ssw_plain_only without TLS only, so sslmode's fallbacks can be seen.
    printf '%s\n' \
        '# Written by scripts/postgres.sh on every start; edits are lost.' \
        '# TYPE     DATABASE     USER            ADDRESS       METHOD' \
        'local      all          all                           trust' \
        'local      replication  all                           trust' \
        'hostnossl  all          ssw_tls_only    127.0.0.1/32  reject' \
        'hostssl    all          ssw_plain_only  127.0.0.1/32  reject' \
        'host       all          all             127.0.0.1/32  scram-sha-256' \
        'host       replication  all             127.0.0.1/32  scram-sha-256' |
        as_pg tee -- "$INSTANCE_DATADIR/pg_hba.conf" >/dev/null
}

# Start the server with pg_ctl and wait (-w) until it accepts connections.
# pg_ctl starts the postmaster in a session of its own (setsid), with
# stdin from /dev/null and stdout/stderr appended to the log (-l), so it
# survives this script and is not hit by signals sent to the caller's
# process group. Every inherited descriptor above stderr is closed first:
# the instance lock on fd 9 must not be held by the server, and an inherited
# pipe would make a caller like `out=$(scripts/postgres.sh start)` wait for
# the server to exit.
launch_server() {
    log "starting postgres ($INSTANCE_NAME) on $BIND_HOST:$INSTANCE_PORT, datadir $INSTANCE_DATADIR"
    (
        for fd in /proc/self/fd/*; do
            fd="${fd##*/}"
            if [[ "$fd" =~ ^[0-9]+$ ]] && ((fd > 2)); then
                exec {fd}>&- || true
            fi
        done
        as_pg "$PG_CTL" start -D "$INSTANCE_DATADIR" -l "$INSTANCE_LOG" \
            -o "-p $INSTANCE_PORT" -w -t "$START_TIMEOUT" >/dev/null
    )
}

# First start only: the application roles and database. Idempotent, so a
# start interrupted half-way simply redoes it. A standby gets all of it from
# the primary (and is read-only anyway).
provision() {
    if [[ -f "$INSTANCE_PROVISIONED_MARKER" || "$INSTANCE_KIND" != primary ]]; then
        return 0
    fi
    log "creating roles '$APP_USER' (superuser), '$LIMITED_USER' and database '$APP_DB'"
    super_sql -v app_user="$APP_USER" -v app_password="$APP_PASSWORD" \
        -v limited_user="$LIMITED_USER" -v limited_password="$LIMITED_PASSWORD" \
        -v app_db="$APP_DB" <<'SQL' || die "creating roles and database failed"
SELECT format('CREATE ROLE %I', :'app_user')
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'app_user') \gexec
ALTER ROLE :"app_user" WITH LOGIN SUPERUSER REPLICATION PASSWORD :'app_password';
SELECT format('CREATE ROLE %I', :'limited_user')
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'limited_user') \gexec
ALTER ROLE :"limited_user" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION
    PASSWORD :'limited_password';
SELECT format('CREATE DATABASE %I OWNER %I', :'app_db', :'app_user')
WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'app_db') \gexec
ALTER DATABASE :"app_db" OWNER TO :"app_user";
SQL

    # Check that both accounts work over TCP with their passwords, and that
    # the settings took effect.
    local settings
    settings="$(user_sql "$APP_USER" "$APP_PASSWORD" -At -F ' ' \
        -c "SELECT current_setting('wal_level'), current_setting('server_version')")" ||
        die "cannot log in as $APP_USER over TCP on $BIND_HOST:$INSTANCE_PORT"
    [[ "$settings" == logical\ * ]] || die "wal_level is not logical: got '$settings'"
    user_sql "$LIMITED_USER" "$LIMITED_PASSWORD" -At -c 'SELECT 1' >/dev/null ||
        die "cannot log in as $LIMITED_USER over TCP on $BIND_HOST:$INSTANCE_PORT"
    log "verified: logins over TCP work; wal_level, server_version = $settings"
    as_pg touch -- "$INSTANCE_PROVISIONED_MARKER"
}

# binaries_replaced: prints "RUNNING -> INSTALLED" and succeeds when the running server is
# older than the installed binaries. A package upgrade (apt installing postgresql-15-repack, for
# one, pulls in a newer postgresql-15) replaces the libraries the running postmaster loads on
# demand: every PL/pgSQL call then fails ("could not load library plpgsql.so: undefined symbol")
# until the server is restarted.
binaries_replaced() {
    local running installed
    running="$(super_sql -tAc 'SHOW server_version' 2>/dev/null | grep -oE '^[0-9]+(\.[0-9]+)+')" || return 1
    installed="$("$PG_BINDIR/postgres" --version 2>/dev/null | grep -oE '[0-9]+(\.[0-9]+)+' | head -n 1)"
    [[ -n "$running" && -n "$installed" && "$running" != "$installed" ]] || return 1
    printf '%s -> %s' "$running" "$installed"
}

do_start() {
    local pid
    prepare_dirs
    clear_stale_state
    resolve_bins
    if [[ "$INSTANCE_KIND" == standby && -f "$INSTANCE_INIT_MARKER" ]]; then
        local why
        if why="$(standby_stale_reason)"; then
            log "the replica cannot follow the primary any more: $why; cloning it anew"
            do_stop
            rm -rf -- "$INSTANCE_DATADIR"
            resolve_bins
        fi
    fi
    if pid="$(running_pid)"; then
        local port
        port="$(running_port)"
        if [[ -n "$port" && "$port" != "$INSTANCE_PORT" ]]; then
            die "postgres ($INSTANCE_NAME) is already running on port $port (pid $pid), not $INSTANCE_PORT; run '$0 stop $INSTANCE_NAME' first"
        fi
        # Our postmaster is alive; it may still be starting or in crash
        # recovery, so give it the normal startup time.
        if ! wait_until "$START_TIMEOUT" server_answers; then
            log_tail
            die "postgres (pid $pid) is alive but does not answer on $BIND_HOST:$INSTANCE_PORT; try '$0 stop $INSTANCE_NAME' then '$0 start $INSTANCE_NAME'"
        fi
        local replaced
        if replaced="$(binaries_replaced)"; then
            log "postgres ($INSTANCE_NAME) runs $replaced installed since it started (a package upgrade); restarting it"
            do_stop
        else
            provision
            log "postgres already running on $BIND_HOST:$INSTANCE_PORT (pid $pid)"
            return 0
        fi
    fi

    if tcp_port_open "$BIND_HOST" "$INSTANCE_PORT"; then
        die "port $INSTANCE_PORT on $BIND_HOST is already in use by another process (not this checkout's $INSTANCE_NAME instance); set $(port_variable) to another port"
    fi

    init_datadir
    ensure_tls_files
    write_instance_conf
    local started=$SECONDS
    if ! launch_server; then
        log_tail
        if pid="$(running_pid)"; then
            die "postgres did not accept connections on $BIND_HOST:$INSTANCE_PORT within ${START_TIMEOUT}s (pid $pid left running; '$0 stop $INSTANCE_NAME' to stop it)"
        fi
        die "postgres ($INSTANCE_NAME) failed to start"
    fi
    pid="$(running_pid)" || {
        log_tail
        die "pg_ctl reported success but no postmaster is running in $INSTANCE_DATADIR"
    }
    log "postgres accepted connections after $((SECONDS - started))s"
    provision
    log "postgres running on $BIND_HOST:$INSTANCE_PORT (pid $pid)"
}

do_stop() {
    local pid
    clear_stale_state
    if ! pid="$(running_pid)"; then
        log "postgres ($INSTANCE_NAME) is not running"
        return 0
    fi
    resolve_bins
    log "stopping postgres ($INSTANCE_NAME) (pid $pid, fast shutdown)"
    # -m fast: roll back open transactions, disconnect clients, checkpoint.
    if ! as_pg "$PG_CTL" stop -D "$INSTANCE_DATADIR" -m fast -w -t "$STOP_TIMEOUT" >/dev/null; then
        warn "fast shutdown did not finish within ${STOP_TIMEOUT}s; trying an immediate shutdown"
        if ! as_pg "$PG_CTL" stop -D "$INSTANCE_DATADIR" -m immediate -w -t 30 >/dev/null; then
            warn "immediate shutdown failed too; sending SIGKILL to pid $pid"
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    wait_until 10 not pid_alive "$pid" || die "could not stop postgres ($INSTANCE_NAME, pid $pid)"
    # After SIGKILL: leftover children, postmaster.pid, socket lock.
    clear_stale_state
    log "postgres ($INSTANCE_NAME) stopped"
}

do_reset() {
    do_stop
    log "deleting $INSTANCE_DATADIR"
    rm -rf -- "$INSTANCE_DATADIR"
    rm -f -- "$INSTANCE_LOG" "$INSTANCE_INITDB_LOG"
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
    detect_run_as
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
        echo "postgres ($INSTANCE_NAME) stopped (port $INSTANCE_PORT)"
        return 3
    fi
    local port
    port="$(running_port)"
    if [[ -n "$port" && "$port" != "$INSTANCE_PORT" ]]; then
        echo "postgres ($INSTANCE_NAME) running on $BIND_HOST:$port (pid $pid), not on the configured port $INSTANCE_PORT"
        return 4
    fi
    resolve_bins
    if server_answers; then
        if [[ "$INSTANCE_KIND" == standby ]]; then
            echo "postgres ($INSTANCE_NAME) running on $BIND_HOST:$INSTANCE_PORT (pid $pid); $(standby_state || echo 'replication state unknown'); primary $BIND_HOST:$PRIMARY_PORT, slot $REPLICA_SLOT"
        else
            echo "postgres ($INSTANCE_NAME) running on $BIND_HOST:$INSTANCE_PORT (pid $pid)"
        fi
        return 0
    fi
    echo "postgres ($INSTANCE_NAME) process alive (pid $pid) but not answering on $BIND_HOST:$INSTANCE_PORT"
    return 4
}

cmd_dsn() {
    printf 'postgres://%s:%s@%s:%s/%s\n' "$APP_USER" "$APP_PASSWORD" "$BIND_HOST" "$INSTANCE_PORT" "$APP_DB"
}

cmd_ca() {
    printf '%s\n' "$INSTANCE_CA_COPY"
}

cmd_client() {
    resolve_bins
    exec env "${PG_ENV_UNSET[@]}" PGPASSWORD="$APP_PASSWORD" \
        "$PSQL" -h "$BIND_HOST" -p "$INSTANCE_PORT" -U "$APP_USER" -d "$APP_DB" "$@"
}

# usage: the comment block at the top of this file.
usage() {
    awk 'NR > 2 && /^#/ { sub(/^# ?/, ""); print; next } NR > 2 { exit }' "$0" >&2
}

main() {
    local cmd="${1:-}" instance=primary
    if [[ $# -gt 0 ]]; then
        shift
    fi
    case "${1:-}" in
        primary | replica | bench)
            instance="$1"
            shift
            ;;
    esac
    if [[ $# -gt 0 && "$cmd" != client ]]; then
        usage
        exit 2
    fi
    select_instance "$instance"
    case "$cmd" in
        install) cmd_install ;;
        start) cmd_start ;;
        stop) cmd_stop ;;
        restart) cmd_restart ;;
        status) cmd_status ;;
        dsn) cmd_dsn ;;
        ca) cmd_ca ;;
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
