# shellcheck shell=bash
# Helpers shared by bench/tunnel.sh and bench/scale.sh. Source it; do not run it.
#
# What they guarantee, so that a benchmark never leaves anything behind:
#   - every namespace is created through bench_netns_add and deleted by bench_cleanup
#     (processes still inside are stopped by PID first);
#   - every background process is started through bench_spawn, which records its PID for
#     bench_cleanup and sets PR_SET_PDEATHSIG (setpriv --pdeathsig), so it dies with this
#     shell even if the shell itself is SIGKILLed;
#   - every wait is bounded.

BENCH_NAME=${BENCH_NAME:-bench}
BENCH_PIDS=()
BENCH_NETNS=()
BENCH_SPAWNED_PID=

bench_log() { printf '[%s %(%T)T] %s\n' "$BENCH_NAME" -1 "$*" >&2; }
bench_die() {
    bench_log "error: $*"
    exit 1
}

bench_require_root() {
    [[ "$(id -u)" -eq 0 ]] || bench_die "must run as root (network namespaces, TUN devices)"
}

# Installs the Debian packages named (with --no-install-recommends) unless every one is
# already installed. Refreshes the package lists once if an install fails.
bench_apt_install() {
    local missing=() pkg
    for pkg in "$@"; do
        if [[ "$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)" != "install ok installed" ]]; then
            missing+=("$pkg")
        fi
    done
    [[ ${#missing[@]} -eq 0 ]] && return 0
    command -v apt-get >/dev/null || bench_die "missing packages ${missing[*]} and no apt-get to install them"
    bench_log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y -q --no-install-recommends "${missing[@]}" >&2; then
        apt-get update -q >&2
        apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
    fi
}

# Stops one PID: SIGTERM, up to $2 seconds (default 3) for it to go, then SIGKILL.
bench_stop_pid() {
    local pid=$1 limit=${2:-3} i
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < limit * 20; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    if kill -0 "$pid" 2>/dev/null; then
        bench_log "pid $pid ignored SIGTERM for ${limit}s; killing it"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}

bench_netns_add() {
    local ns=$1
    [[ -e /run/netns/$ns ]] && bench_die "network namespace $ns already exists"
    ip netns add "$ns" || bench_die "cannot create network namespace $ns"
    BENCH_NETNS+=("$ns")
    ip -n "$ns" link set lo up
}

# Deletes one namespace, first stopping (by PID) whatever still runs in it.
bench_netns_del() {
    local ns=$1 pid
    [[ -e /run/netns/$ns ]] || return 0
    for pid in $(ip netns pids "$ns" 2>/dev/null); do
        bench_stop_pid "$pid" 2
    done
    ip netns del "$ns" 2>/dev/null || bench_log "warning: could not delete network namespace $ns"
}

# Stops everything this run started, newest first, and deletes its namespaces.
bench_cleanup() {
    local i
    for ((i = ${#BENCH_PIDS[@]} - 1; i >= 0; i--)); do
        bench_stop_pid "${BENCH_PIDS[$i]}" 3
    done
    BENCH_PIDS=()
    for i in "${BENCH_NETNS[@]}"; do
        bench_netns_del "$i"
    done
    BENCH_NETNS=()
}

# Removes namespaces called PREFIX-<pid>[-…] whose <pid> no longer runs (left by a run that
# was killed with SIGKILL).
bench_cleanup_stale() {
    local prefix=$1 ns owner
    while read -r ns _; do
        [[ "$ns" =~ ^${prefix}-([0-9]+)(-.*)?$ ]] || continue
        owner=${BASH_REMATCH[1]}
        [[ -d /proc/$owner ]] && continue
        bench_log "removing $ns (left by run $owner)"
        bench_netns_del "$ns"
    done < <(ip netns list)
}

# bench_spawn NETNS LOG CMD... — runs CMD in the background inside NETNS ("" for none), with
# stdout and stderr to LOG, and sets BENCH_SPAWNED_PID to its PID (the command itself: every
# wrapper on the way execs). Killed with this shell via PR_SET_PDEATHSIG.
bench_spawn() {
    local ns=$1 log=$2
    shift 2
    if [[ -n $ns ]]; then
        setpriv --pdeathsig KILL ip netns exec "$ns" "$@" >"$log" 2>&1 </dev/null &
    else
        setpriv --pdeathsig KILL "$@" >"$log" 2>&1 </dev/null &
    fi
    BENCH_SPAWNED_PID=$!
    BENCH_PIDS+=("$BENCH_SPAWNED_PID")
}

# bench_spawn_private_run NETNS LOG CMD... — like bench_spawn, but in a new mount namespace
# with an empty tmpfs on /run (so /var/run/wireguard/<if>.sock of one daemon cannot collide
# with another's). Run tools against that /run with bench_in_ns_of.
bench_spawn_private_run() {
    local ns=$1 log=$2
    shift 2
    # shellcheck disable=SC2016 # $0 and $@ belong to the inner shell
    bench_spawn "$ns" "$log" unshare --mount --propagation private \
        sh -c 'mount -t tmpfs -o mode=0755,size=16m bench-run /run && exec "$@"' sh "$@"
}

# bench_in_ns_of PID CMD... — runs CMD in PID's network and mount namespaces.
bench_in_ns_of() {
    local pid=$1
    shift
    nsenter --target "$pid" --net --mount "$@"
}

# bench_wait_for SECONDS CMD... — runs CMD every 20 ms until it succeeds; fails after SECONDS.
bench_wait_for() {
    local limit=$1 deadline
    shift
    deadline=$(($(date +%s%N) + limit * 1000000000))
    until "$@" >/dev/null 2>&1; do
        (($(date +%s%N) < deadline)) || return 1
        sleep 0.02
    done
}

# CPU time (user + system, all threads) PID has used, in clock ticks; empty if it is gone.
bench_cpu_ticks() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
    # Fields after the command name, which is in parentheses and may contain spaces:
    # utime and stime are fields 14 and 15 of the line, 12 and 13 after "pid (comm) ".
    awk '{ print $12 + $13 }' <<<"${stat##*) }"
}

# A /proc/PID/status field in KiB (VmRSS, VmHWM); empty if PID is gone.
bench_status_kib() {
    awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status" 2>/dev/null || true
}

# Wall clock in milliseconds.
bench_now_ms() { echo $(($(date +%s%N) / 1000000)); }

# The target directory cargo uses for this workspace (honours CARGO_TARGET_DIR).
bench_cargo_target_dir() {
    cargo metadata --format-version 1 --no-deps --manifest-path "$1/Cargo.toml" | jq -r .target_directory
}

# Makes cargo findable from a non-login root shell.
bench_cargo_path() {
    if ! command -v cargo >/dev/null 2>&1 && [[ -x "${HOME:-/root}/.cargo/bin/cargo" ]]; then
        export PATH="${HOME:-/root}/.cargo/bin:$PATH"
    fi
    command -v cargo >/dev/null 2>&1
}
