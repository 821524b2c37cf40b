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

# --------------------------------------------------------------------------
# Processes by working directory
# --------------------------------------------------------------------------

# dir_id PATH: print "<device>:<inode>" of PATH (following symlinks, so
# /proc/<pid>/cwd gives the process's working directory itself).
dir_id() {
    stat -L -c '%d:%i' -- "$1" 2>/dev/null
}

# pid_cwd_is PID DIR: true if the working directory of PID is DIR. Daemons
# that chdir into their data directory (PostgreSQL's postmaster and all its
# children) are identified this way more reliably than by their command
# line. Compares device and inode, not path strings, so a process in another
# mount namespace or chroot whose directory merely has the same name does not
# match. False if the directory cannot be checked (another user's process,
# DIR missing); true when /proc is unavailable (cannot check, assume yes,
# like pid_cmdline_has).
pid_cwd_is() {
    local pid="$1" dir="$2" want have
    [[ -d /proc/self ]] || return 0
    want="$(dir_id "$dir")" || return 1
    have="$(dir_id "/proc/$pid/cwd")" || return 1
    [[ "$have" == "$want" ]]
}

# pids_with_cwd DIR: print the pids of live (non-zombie) processes whose
# working directory is DIR (same device and inode), one per line; nothing if
# there are none, DIR does not exist or /proc is unavailable. Finds the
# leftover children of a daemon whose parent died (kill -9), which no pid
# file names. Without root, only our own processes are visible. Callers that
# act on the result should also check what the processes are (a shell can
# sit in any directory).
pids_with_cwd() {
    local dir="$1" want proc target pid
    [[ -d /proc/self ]] || return 0
    want="$(dir_id "$dir")" || return 0
    # The path comparison is a cheap pre-filter; the inode check decides.
    while IFS=' ' read -r proc target; do
        [[ "$target" == "$dir" ]] || continue
        pid="${proc#/proc/}"
        pid_alive "$pid" || continue
        [[ "$(dir_id "$proc/cwd" || true)" == "$want" ]] || continue
        printf '%s\n' "$pid"
    done < <(find /proc -mindepth 2 -maxdepth 2 -path '/proc/[0-9]*/cwd' \
        -printf '%h %l\n' 2>/dev/null || true)
    return 0
}

# --------------------------------------------------------------------------
# Packages
# --------------------------------------------------------------------------

_LIB_POLICY_RC_D=/usr/sbin/policy-rc.d
_LIB_POLICY_RC_D_CREATED=0

_lib_remove_temp_policy_rc_d() {
    if ((_LIB_POLICY_RC_D_CREATED)); then
        as_root rm -f "$_LIB_POLICY_RC_D" || true
        _LIB_POLICY_RC_D_CREATED=0
    fi
}

# apt_install_without_services PACKAGE...: `apt-get update`, then
# `apt-get install --no-install-recommends PACKAGE...`, non-interactively
# and as root (via sudo if needed), with apt's output on stderr.
#
# Package postinsts start their system service (a database on its default
# port, say) through invoke-rc.d. For the duration of the install a
# policy-rc.d returning 101 ("action forbidden") prevents that, unless the
# machine already has a policy-rc.d (Docker-style images do); the temporary
# one is removed afterwards, also when the script dies half-way (EXIT trap;
# a trap the caller had set on EXIT is restored afterwards).
#
# Dies if `apt-get update` fails. Returns the status of `apt-get install`: a
# postinst whose refused service start fails makes it non-zero although the
# packages are unpacked and usable, so callers should check for the files
# they need rather than trust that status.
apt_install_without_services() {
    local rc=0 old_exit_trap=""
    if [[ ! -e "$_LIB_POLICY_RC_D" ]]; then
        old_exit_trap="$(trap -p EXIT)"
        printf '#!/bin/sh\n# temporary, created by shadowswap scripts (%s)\nexit 101\n' "$LOG_PREFIX" |
            as_root tee "$_LIB_POLICY_RC_D" >/dev/null
        as_root chmod 0755 "$_LIB_POLICY_RC_D"
        _LIB_POLICY_RC_D_CREATED=1
        trap _lib_remove_temp_policy_rc_d EXIT
    fi
    # DPkg::Lock::Timeout: wait for a concurrent apt/dpkg (e.g. unattended
    # upgrades on a fresh CI machine) instead of failing at once.
    as_root env DEBIAN_FRONTEND=noninteractive \
        apt-get -o DPkg::Lock::Timeout=300 update -q >&2 ||
        die "apt-get update failed"
    as_root env DEBIAN_FRONTEND=noninteractive \
        apt-get -o DPkg::Lock::Timeout=300 install -y -q --no-install-recommends "$@" >&2 ||
        rc=$?
    if ((_LIB_POLICY_RC_D_CREATED)); then
        _lib_remove_temp_policy_rc_d
        if [[ -n "$old_exit_trap" ]]; then
            eval "$old_exit_trap"
        else
            trap - EXIT
        fi
    fi
    return "$rc"
}
