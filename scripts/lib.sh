# shellcheck shell=bash
#
# Shared helpers for the local database scripts (scripts/mariadb.sh, and later
# scripts/postgres.sh). Source it; do not execute it:
#
#     # shellcheck source=scripts/lib.sh
#     source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#
# The caller is expected to run under `set -euo pipefail`. Every function here
# is written to behave under those options (no unguarded failing commands, no
# unset variables).
#
# Conventions:
#   * Log lines go to stderr, prefixed with "[$LOG_PREFIX]", so that a command
#     whose stdout is meant to be captured (e.g. `dsn`) stays clean.
#   * Set LOG_PREFIX before sourcing or right after (defaults to the name of
#     the calling script without ".sh").

if [[ -n "${_SHADOWSWAP_LIB_SH:-}" ]]; then
    return 0
fi
_SHADOWSWAP_LIB_SH=1

# --------------------------------------------------------------------------
# Locations
# --------------------------------------------------------------------------

# Absolute path of the repository root: the parent of the scripts/ directory
# that holds this file. Resolved from this file's own location, not from $PWD
# or git, so the scripts work from any working directory and in a tarball.
repo_root() {
    local here
    here="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)"
    dirname -- "$here"
}

# --------------------------------------------------------------------------
# Logging
# --------------------------------------------------------------------------

: "${LOG_PREFIX:=$(basename -- "${0%.sh}")}"

log() {
    printf '[%s] %s\n' "$LOG_PREFIX" "$*" >&2
}

warn() {
    printf '[%s] WARNING: %s\n' "$LOG_PREFIX" "$*" >&2
}

# die MESSAGE [EXIT_CODE]
die() {
    printf '[%s] ERROR: %s\n' "$LOG_PREFIX" "$1" >&2
    exit "${2:-1}"
}

have_cmd() {
    command -v "$1" >/dev/null 2>&1
}

# --------------------------------------------------------------------------
# Privileges
# --------------------------------------------------------------------------

# Succeeds if we are root or passwordless sudo is available; otherwise dies
# with a message naming WHAT needs the privileges.
need_root_or_sudo() {
    local what="${1:-this operation}"
    if [[ "${EUID:-$(id -u)}" -eq 0 ]]; then
        return 0
    fi
    if have_cmd sudo && sudo -n true >/dev/null 2>&1; then
        return 0
    fi
    die "$what needs root (or passwordless sudo); re-run as root or install the packages yourself"
}

# as_root CMD [ARGS...]: run a command as root, via `sudo -n` when needed.
# Environment variables must be passed explicitly, e.g.
#     as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y foo
as_root() {
    if [[ "${EUID:-$(id -u)}" -eq 0 ]]; then
        "$@"
    else
        need_root_or_sudo "running '$1'"
        sudo -n "$@"
    fi
}

# --------------------------------------------------------------------------
# Processes
# --------------------------------------------------------------------------

# pid_alive PID: true if PID names a live (non-zombie) process.
#
# `kill -0` alone is not enough: a daemon started with setsid is re-parented
# to PID 1, and in containers PID 1 often reaps late or never, so a process
# that has exited can linger as a zombie for which `kill -0` still succeeds.
pid_alive() {
    local pid="${1:-}" state
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    [[ "$pid" -gt 1 ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    if [[ -r "/proc/$pid/status" ]]; then
        state="$(awk '/^State:/ { print $2; exit }' "/proc/$pid/status" 2>/dev/null || true)"
        [[ "$state" != "Z" && "$state" != "X" ]] || return 1
    fi
    return 0
}

# pid_cmdline_has PID STRING: true if the NUL-separated command line of PID
# contains STRING. Used to make sure a pid read from a pid file still belongs
# to the program we started (pids get reused after a crash or reboot).
# Returns true when /proc is unavailable (cannot check, assume yes).
pid_cmdline_has() {
    local pid="$1" needle="$2" cmdline
    [[ -r "/proc/$pid/cmdline" ]] || return 0
    cmdline="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null || true)"
    [[ "$cmdline" == *"$needle"* ]]
}

# read_pid_file FILE: print the pid stored in FILE; fails if the file is
# missing, empty or does not hold a number.
read_pid_file() {
    local file="$1" pid
    [[ -f "$file" ]] || return 1
    pid="$(head -n 1 -- "$file" 2>/dev/null | tr -d '[:space:]' || true)"
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    printf '%s\n' "$pid"
}

# wait_until TIMEOUT_SECONDS CMD [ARGS...]: run CMD every 0.5 s until it
# succeeds (return 0) or TIMEOUT_SECONDS have passed (return 1). CMD's output
# is discarded.
wait_until() {
    local timeout="$1"
    shift
    local deadline=$((SECONDS + timeout))
    while true; do
        if "$@" >/dev/null 2>&1; then
            return 0
        fi
        if ((SECONDS >= deadline)); then
            return 1
        fi
        sleep 0.5
    done
}

# stop_pid PID TIMEOUT_SECONDS DESCRIPTION: SIGTERM, wait up to TIMEOUT for
# the process to be gone, then SIGKILL. Returns 0 once the process is gone.
stop_pid() {
    local pid="$1" timeout="$2" what="$3"
    pid_alive "$pid" || return 0
    log "stopping $what (pid $pid, SIGTERM)"
    kill -TERM "$pid" 2>/dev/null || true
    if wait_until "$timeout" not pid_alive "$pid"; then
        return 0
    fi
    warn "$what (pid $pid) still alive after ${timeout}s; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    if wait_until 10 not pid_alive "$pid"; then
        return 0
    fi
    die "could not stop $what (pid $pid)"
}

# not CMD [ARGS...]: negate a command, for use with wait_until.
not() {
    ! "$@"
}

# --------------------------------------------------------------------------
# Network
# --------------------------------------------------------------------------

# tcp_port_open HOST PORT: true if something accepts TCP connections on
# HOST:PORT. Uses bash's /dev/tcp, so it needs neither ss nor nc.
tcp_port_open() {
    local host="$1" port="$2"
    # shellcheck disable=SC2016 # $1/$2 are expanded by the inner bash
    if have_cmd timeout; then
        timeout 2 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$host" "$port" 2>/dev/null
    else
        # shellcheck disable=SC2016
        bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$host" "$port" 2>/dev/null
    fi
}

# valid_port VALUE: true if VALUE is a TCP port number (1-65535).
valid_port() {
    [[ "${1:-}" =~ ^[0-9]+$ ]] && (( $1 >= 1 && $1 <= 65535 ))
}

# --------------------------------------------------------------------------
# Locking
# --------------------------------------------------------------------------

# with_lock LOCKFILE CMD [ARGS...]: run CMD while holding an exclusive flock
# on LOCKFILE (waits up to 300 s), so that two invocations for the same
# instance (e.g. parallel test jobs both running `start`) do not race.
# The lock lives on file descriptor 9; anything CMD starts in the background
# that must outlive it has to close fd 9 (`9>&-`), or it would hold the lock.
with_lock() {
    local lockfile="$1"
    shift
    if ! have_cmd flock; then
        "$@"
        return
    fi
    mkdir -p -- "$(dirname -- "$lockfile")"
    (
        flock -w 300 9 || die "timed out waiting for lock $lockfile"
        "$@"
    ) 9>"$lockfile"
}
