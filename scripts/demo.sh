#!/usr/bin/env bash
# Two-peer vpnd demo on one machine (Debian 12, as root).
#
# Builds vpnd and vpnctl, creates two network namespaces joined by a veth pair
# (10.99.0.1/24 <-> 10.99.0.2/24), starts one vpnd in each from the shipped
# configs packaging/examples/demo-a.yaml and demo-b.yaml with freshly generated
# keys, pings across the tunnel (10.10.0.2 and fd10::2 from side A), shows both
# sides with `vpnctl show`, and tears everything down again, also on failure or
# Ctrl-C. Exits 0 only if the handshake and both pings worked; on failure it
# prints the daemons' logs.
#
# Usage: scripts/demo.sh [--keep]   set up, test, and tear down (or keep running)
#        scripts/demo.sh --down     tear down a demo left running by --keep
#        scripts/demo.sh --nat [--keep|--down]
#
#   --keep   leave the tunnel running and print how to inspect and stop it
#   --down   stop the daemons, delete the namespaces and the demo's temp dir
#   --nat    the NAT demo instead (scripts/demo-nat.sh): a vpnhub and two peers
#            behind two emulated NATs punch a direct path (--down: tears it down)
#
# Needs: root, /dev/net/tun, Rust (cargo; https://rustup.rs). System packages
# come from scripts/install-deps.sh, which this script runs.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# Remembers what a --keep run left behind, for --down.
STATE_DIR=/run/vpndemo
STATE_FILE="$STATE_DIR/state"
SOCK_A=/run/vpnd/demo-a.sock
SOCK_B=/run/vpnd/demo-b.sock
NS_PREFIX=vpndemo-
# Bounded waits (seconds).
SOCKET_WAIT=15
STOP_WAIT=5
PING_DEADLINE=10
PING_COUNT=3

usage() { sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; }

# The NAT demo lives in its own script, so this one stays the plain two-peer demo.
for arg in "$@"; do
    [[ $arg == --nat ]] && exec "$REPO/scripts/demo-nat.sh" "$@"
done

mode=run
keep=0
for arg in "$@"; do
    case "$arg" in
        --keep) keep=1 ;;
        --down) mode=down ;;
        -h|--help) usage; exit 0 ;;
        *) echo "demo.sh: unknown argument: $arg (try --help)" >&2; exit 64 ;;
    esac
done
if [[ $mode == down && $keep -eq 1 ]]; then
    echo "demo.sh: --keep and --down do not go together" >&2
    exit 64
fi

# ---------------------------------------------------------------------------
# Output helpers

if [[ -t 1 ]]; then
    B=$'\e[1m' G=$'\e[32m' R=$'\e[31m' N=$'\e[0m'
else
    B='' G='' R='' N=''
fi
step_no=0
step() { step_no=$((step_no + 1)); printf '\n%s==> %d. %s%s\n' "$B" "$step_no" "$*" "$N"; }
info() { printf '    %s\n' "$*"; }
ok()   { printf '    %sok%s  %s\n' "$G" "$N" "$*"; }
bad()  { printf '    %sFAILED%s  %s\n' "$R" "$N" "$*"; }
die()  { printf '\n%sdemo.sh: %s%s\n' "$R" "$*" "$N" >&2; exit 1; }

# ---------------------------------------------------------------------------
# Teardown (shared by the normal exit, failures, Ctrl-C and --down)

is_vpnd() { # PID: is this PID a running vpnd? (guards against PID reuse)
    [[ -n "$1" && -r /proc/$1/comm ]] && [[ "$(cat "/proc/$1/comm" 2>/dev/null)" == vpnd ]]
}

stop_pid() { # PID NAME: SIGTERM, wait up to STOP_WAIT s, then SIGKILL
    local pid=$1 name=$2 i
    is_vpnd "$pid" || return 0
    kill -TERM "$pid" 2>/dev/null || return 0
    for ((i = 0; i < STOP_WAIT * 10; i++)); do
        is_vpnd "$pid" || break
        sleep 0.1
    done
    if is_vpnd "$pid"; then
        echo "    $name (pid $pid) did not stop within ${STOP_WAIT}s; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        sleep 0.2
    else
        echo "    stopped $name (pid $pid)"
    fi
    # Reap it if it is our child (no-op otherwise).
    wait "$pid" 2>/dev/null || true
}

delete_ns() { # NS: stop whatever still runs inside (by PID), then delete it
    local ns=$1 pid i
    ip netns list 2>/dev/null | awk '{print $1}' | grep -qx -- "$ns" || return 0
    for pid in $(ip netns pids "$ns" 2>/dev/null || true); do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for ((i = 0; i < STOP_WAIT * 10; i++)); do
        [[ -z "$(ip netns pids "$ns" 2>/dev/null || true)" ]] && break
        sleep 0.1
    done
    for pid in $(ip netns pids "$ns" 2>/dev/null || true); do
        kill -KILL "$pid" 2>/dev/null || true
    done
    if ip netns del "$ns" 2>/dev/null; then
        echo "    deleted namespace $ns"
    else
        echo "    could not delete namespace $ns" >&2
    fi
}

remove_stale_socket() { # PATH: remove a socket file no daemon answers on
    local sock=$1
    [[ -S $sock ]] || return 0
    # Without vpnctl there is no telling whether some daemon still serves it.
    [[ -n "${VPNCTL:-}" && -x "${VPNCTL:-}" ]] || return 0
    if timeout 5 "$VPNCTL" --socket "$sock" show >/dev/null 2>&1; then
        echo "    $sock is still served by a running daemon; left alone" >&2
        return 0
    fi
    rm -f -- "$sock" && echo "    removed stale socket $sock"
}

teardown() { # uses NS_A NS_B PID_A PID_B WORKDIR RUN_VPND_CREATED
    stop_pid "${PID_A:-}" "vpnd A"
    stop_pid "${PID_B:-}" "vpnd B"
    [[ -n "${NS_A:-}" ]] && delete_ns "$NS_A"
    [[ -n "${NS_B:-}" ]] && delete_ns "$NS_B"
    remove_stale_socket "$SOCK_A"
    remove_stale_socket "$SOCK_B"
    if [[ "${RUN_VPND_CREATED:-0}" == 1 ]]; then
        rmdir /run/vpnd 2>/dev/null || true
    fi
    if [[ -n "${WORKDIR:-}" && -d "${WORKDIR:-}" && "$WORKDIR" == /tmp/vpndemo.* ]]; then
        rm -rf -- "$WORKDIR" && echo "    removed $WORKDIR"
    fi
    rm -f -- "$STATE_FILE"
    rmdir "$STATE_DIR" 2>/dev/null || true
}

# Namespaces `vpndemo-<pid>-<side>` whose creating script no longer runs and
# that no kept demo owns: left behind by a killed run.
stale_namespaces() {
    local ns owner
    while read -r ns _; do
        [[ $ns =~ ^vpndemo-([0-9]+)-[ab]$ ]] || continue
        owner=${BASH_REMATCH[1]}
        [[ -d /proc/$owner && "$owner" != "$$" ]] && continue
        [[ "$ns" == "${NS_A:-}" || "$ns" == "${NS_B:-}" ]] && continue
        echo "$ns"
    done < <(ip netns list 2>/dev/null)
}

read_state() {
    local key value
    while IFS='=' read -r key value; do
        case "$key" in
            NS_A|NS_B|PID_A|PID_B|WORKDIR|RUN_VPND_CREATED|VPNCTL) printf -v "$key" '%s' "$value" ;;
        esac
    done <"$STATE_FILE"
}

write_state() {
    mkdir -p "$STATE_DIR"
    {
        echo "NS_A=$NS_A"
        echo "NS_B=$NS_B"
        echo "PID_A=${PID_A:-}"
        echo "PID_B=${PID_B:-}"
        echo "WORKDIR=$WORKDIR"
        echo "RUN_VPND_CREATED=$RUN_VPND_CREATED"
        echo "VPNCTL=${VPNCTL:-}"
    } >"$STATE_FILE"
}

need_root() {
    if [[ "$(id -u)" -ne 0 ]]; then
        echo "demo.sh: must run as root (it creates network namespaces and TUN devices): sudo $0 $*" >&2
        exit 1
    fi
}

if [[ $mode == down ]]; then
    need_root "$@"
    echo "${B}==> Tearing down the vpnd demo${N}"
    found=0
    if [[ -f $STATE_FILE ]]; then
        read_state
        found=1
        teardown
    fi
    for ns in $(stale_namespaces); do
        found=1
        delete_ns "$ns"
    done
    if [[ $found -eq 0 ]]; then
        echo "    nothing to tear down (no kept demo, no leftover ${NS_PREFIX}* namespaces)"
    else
        echo "    done"
    fi
    exit 0
fi

# ---------------------------------------------------------------------------
# The demo run

NS_A='' NS_B='' PID_A='' PID_B='' WORKDIR='' RUN_VPND_CREATED=0 VPNCTL='' VPND=''
TICKER_PID=''
succeeded=0

show_logs() {
    local side log
    for side in a b; do
        log="$WORKDIR/vpnd-$side.log"
        [[ -f $log ]] || continue
        printf '\n%s----- vpnd %s log (%s) -----%s\n' "$B" "${side^^}" "$log" "$N"
        tail -n 200 "$log"
    done
}

on_exit() {
    local status=$?
    trap '' INT TERM
    if [[ -n $TICKER_PID ]]; then
        kill -TERM "$TICKER_PID" 2>/dev/null || true
        wait "$TICKER_PID" 2>/dev/null || true
    fi
    if [[ $succeeded -eq 1 && $keep -eq 1 ]]; then
        exit 0
    fi
    if [[ $succeeded -ne 1 && -n $WORKDIR ]]; then
        show_logs
    fi
    if [[ -n "$NS_A$NS_B$PID_A$PID_B$WORKDIR" ]]; then
        printf '\n%s==> Cleaning up%s\n' "$B" "$N"
        teardown
    fi
    if [[ $succeeded -eq 1 ]]; then
        printf '\n%sDemo passed:%s handshake done, IPv4 and IPv6 pings answered through the tunnel.\n' "$G" "$N"
        exit 0
    fi
    [[ $status -eq 0 ]] && status=1
    printf '\n%sDemo FAILED%s (exit %d)\n' "$R" "$N" "$status" >&2
    exit "$status"
}
trap on_exit EXIT
trap 'echo; echo "demo.sh: interrupted" >&2; exit 130' INT
trap 'echo "demo.sh: terminated" >&2; exit 143' TERM

need_root "$@"
cd "$REPO"

step "Checking prerequisites and installing system packages"
if [[ -f $STATE_FILE ]]; then
    die "a demo is already set up (left running by --keep, or by a run that was killed); run 'scripts/demo.sh --down' first"
fi
"$REPO/scripts/install-deps.sh" | sed 's/^/    /'
# A non-login root shell (sudo) may lack rustup's directory in PATH.
if ! command -v cargo >/dev/null 2>&1 && [[ -x "${HOME:-/root}/.cargo/bin/cargo" ]]; then
    export PATH="${HOME:-/root}/.cargo/bin:$PATH"
fi
if ! command -v cargo >/dev/null 2>&1; then
    cat >&2 <<'EOF'

demo.sh: cargo (Rust) is not installed. Install a current Rust toolchain with rustup
(Debian 12's own rustc is too old for this workspace, which needs Rust 1.85 or newer):

    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
    . "$HOME/.cargo/env"

then run scripts/demo.sh again.
EOF
    exit 1
fi
ok "$(cargo --version)"
[[ -c /dev/net/tun ]] || modprobe tun 2>/dev/null || true
[[ -c /dev/net/tun ]] || die "/dev/net/tun is missing (load the tun module: modprobe tun)"
ok "/dev/net/tun present"
for ns in $(stale_namespaces); do
    info "removing leftover namespace $ns from an earlier, killed run"
    delete_ns "$ns" | sed 's/^/    /'
done

WORKDIR="$(mktemp -d /tmp/vpndemo.XXXXXX)"
ok "working directory $WORKDIR"

# DEMO_PROFILE=dev reuses the debug build (scripts/test.sh has just made it); the default is an
# optimised release build.
PROFILE="${DEMO_PROFILE:-release}"
PROFILE_DIR=$([[ $PROFILE == dev ]] && echo debug || echo "$PROFILE")
step "Building vpnd and vpnctl (cargo build --profile $PROFILE --bins)"
info "the first build compiles all dependencies and takes a few minutes"
build_log="$WORKDIR/build.log"
ticker() { # prints build progress from the log until killed
    local start=$SECONDS printed=$SECONDS n last line nap=''
    trap '[[ -n $nap ]] && kill -TERM "$nap" 2>/dev/null; exit 0' TERM
    while :; do
        sleep 2 &
        nap=$!
        wait "$nap" || true
        n=$(grep -c '^ *Compiling ' "$build_log" 2>/dev/null || true)
        last=$(grep '^ *Compiling ' "$build_log" 2>/dev/null | tail -n 1 | awk '{print $2}' || true)
        line=$(printf '    [%ds] compiling %s (crate %d)' $((SECONDS - start)) "${last:-...}" "${n:-0}")
        if [[ -t 1 ]]; then
            printf '\r\e[K%s' "$line"
        elif ((SECONDS - printed >= 30)); then
            echo "$line"
            printed=$SECONDS
        fi
    done
}
ticker &
TICKER_PID=$!
build_start=$SECONDS
if ! cargo build --profile "$PROFILE" --bins --color never >"$build_log" 2>&1; then
    kill -TERM "$TICKER_PID" 2>/dev/null || true
    wait "$TICKER_PID" 2>/dev/null || true
    TICKER_PID=''
    [[ -t 1 ]] && printf '\r\e[K'
    echo "----- last lines of $build_log -----"
    tail -n 60 "$build_log"
    die "the build failed"
fi
kill -TERM "$TICKER_PID" 2>/dev/null || true
wait "$TICKER_PID" 2>/dev/null || true
TICKER_PID=''
[[ -t 1 ]] && printf '\r\e[K'
target_dir="$(cargo metadata --format-version 1 --no-deps 2>/dev/null | jq -r .target_directory)"
VPND="$target_dir/$PROFILE_DIR/vpnd"
VPNCTL="$target_dir/$PROFILE_DIR/vpnctl"
[[ -x $VPND && -x $VPNCTL ]] || die "built binaries not found in $target_dir/$PROFILE_DIR"
ok "built in $((SECONDS - build_start))s: $VPND, $VPNCTL"
for sock in "$SOCK_A" "$SOCK_B"; do
    if [[ -S $sock ]] && timeout 5 "$VPNCTL" --socket "$sock" show >/dev/null 2>&1; then
        VPNCTL='' # not ours: keep teardown away from it
        die "$sock is in use by a running vpnd; stop that daemon (or run 'scripts/demo.sh --down') first"
    fi
done

step "Creating network namespaces joined by a veth pair"
NS_A="${NS_PREFIX}$$-a"
NS_B="${NS_PREFIX}$$-b"
[[ -d /run/vpnd ]] || RUN_VPND_CREATED=1
ip netns add "$NS_A"
ip netns add "$NS_B"
# Created directly inside the namespaces: no names in the host namespace.
ip -n "$NS_A" link add veth-a type veth peer name veth-b netns "$NS_B"
ip -n "$NS_A" link set lo up
ip -n "$NS_B" link set lo up
ip -n "$NS_A" addr add 10.99.0.1/24 dev veth-a
ip -n "$NS_B" addr add 10.99.0.2/24 dev veth-b
ip -n "$NS_A" link set veth-a up
ip -n "$NS_B" link set veth-b up
ok "$NS_A (veth-a 10.99.0.1/24) <-> $NS_B (veth-b 10.99.0.2/24)"
ip netns exec "$NS_A" ping -c 1 -W 2 10.99.0.2 >/dev/null ||
    ip netns exec "$NS_A" ping -c 1 -W 3 10.99.0.2 >/dev/null ||
    die "the veth link does not carry traffic (ping 10.99.0.2 from $NS_A failed)"
ok "underlay: 10.99.0.1 reaches 10.99.0.2"

step "Generating keys and writing the configurations"
cp "$REPO/packaging/examples/demo-a.yaml" "$REPO/packaging/examples/demo-b.yaml" "$WORKDIR/"
(
    umask 077
    "$VPNCTL" genkey >"$WORKDIR/a.key"
    "$VPNCTL" genkey >"$WORKDIR/b.key"
)
chmod 600 "$WORKDIR/a.key" "$WORKDIR/b.key"
pub_a="$("$VPNCTL" pubkey <"$WORKDIR/a.key")"
pub_b="$("$VPNCTL" pubkey <"$WORKDIR/b.key")"
# Base64 never contains '|' or '&', so the keys are safe in this sed replacement.
sed -i "s|@PEER_PUBLIC_KEY@|$pub_b|" "$WORKDIR/demo-a.yaml"
sed -i "s|@PEER_PUBLIC_KEY@|$pub_a|" "$WORKDIR/demo-b.yaml"
ok "side A public key $pub_a"
ok "side B public key $pub_b"
for side in a b; do
    "$VPND" --check --config "$WORKDIR/demo-$side.yaml" >/dev/null 2>"$WORKDIR/check-$side.log" || {
        cat "$WORKDIR/check-$side.log" >&2
        die "vpnd --check refused $WORKDIR/demo-$side.yaml"
    }
done
ok "vpnd --check accepts $WORKDIR/demo-a.yaml and demo-b.yaml"
write_state

step "Starting vpnd in each namespace"
start_vpnd() { # NS SIDE: starts vpnd in its own session so it can outlive this script (--keep)
    local ns=$1 side=$2
    # setsid does not fork here (a background job is no process-group leader), and
    # `ip netns exec` execs vpnd, so $! is vpnd's own PID.
    setsid ip netns exec "$ns" "$VPND" --config "$WORKDIR/demo-$side.yaml" \
        </dev/null >"$WORKDIR/vpnd-$side.log" 2>&1 &
    printf -v "PID_${side^^}" '%s' "$!"
}
start_vpnd "$NS_A" a
start_vpnd "$NS_B" b
write_state
info "vpnd A pid $PID_A in $NS_A, log $WORKDIR/vpnd-a.log"
info "vpnd B pid $PID_B in $NS_B, log $WORKDIR/vpnd-b.log"

wait_socket() { # SOCK PID NAME: until vpnctl gets an answer, the daemon dies, or the deadline
    local sock=$1 pid=$2 name=$3 i
    for ((i = 0; i < SOCKET_WAIT * 10; i++)); do
        if [[ -S $sock ]] && timeout 5 "$VPNCTL" --socket "$sock" show >/dev/null 2>&1; then
            ok "$name answers on $sock"
            return 0
        fi
        kill -0 "$pid" 2>/dev/null || { bad "$name exited during start-up"; return 1; }
        sleep 0.1
    done
    bad "$name did not answer on $sock within ${SOCKET_WAIT}s"
    return 1
}
wait_socket "$SOCK_A" "$PID_A" "vpnd A" || die "vpnd A did not start"
wait_socket "$SOCK_B" "$PID_B" "vpnd B" || die "vpnd B did not start"

step "Pinging through the tunnel from side A"
failures=0
ping_check() { # ADDRESS: PING_COUNT answers within PING_DEADLINE seconds
    local addr=$1 out
    info "ip netns exec $NS_A ping -c $PING_COUNT -w $PING_DEADLINE $addr"
    if out="$(ip netns exec "$NS_A" ping -c "$PING_COUNT" -i 0.5 -w "$PING_DEADLINE" "$addr" 2>&1)"; then
        ok "$(grep -E 'packets transmitted' <<<"$out")"
        grep -E '^rtt' <<<"$out" | sed 's/^/        /' || true
    else
        bad "ping $addr: $(grep -E 'packets transmitted' <<<"$out" || echo "$out")"
        failures=$((failures + 1))
    fi
}
ping_check 10.10.0.2
ping_check fd10::2

step "vpnctl show on side A ($SOCK_A)"
"$VPNCTL" --socket "$SOCK_A" show || failures=$((failures + 1))
step "vpnctl show on side B ($SOCK_B)"
"$VPNCTL" --socket "$SOCK_B" show || failures=$((failures + 1))

step "Checking the handshake"
for side in A B; do
    sock=$SOCK_A
    [[ $side == B ]] && sock=$SOCK_B
    hs="$(timeout 5 "$VPNCTL" --socket "$sock" show --json 2>/dev/null |
        jq -r '[.peers[] | select(.last_handshake != null and .handshakes > 0)] | length' 2>/dev/null || true)"
    if [[ "$hs" =~ ^[0-9]+$ && $hs -ge 1 ]]; then
        ok "side $side: handshake with its peer completed"
    else
        bad "side $side: no completed handshake"
        failures=$((failures + 1))
    fi
done

if [[ $failures -ne 0 ]]; then
    die "$failures check(s) failed"
fi
succeeded=1

if [[ $keep -eq 1 ]]; then
    write_state
    cat <<EOF

${G}The demo is running${N} (--keep). Try:

    ip netns exec $NS_A ping 10.10.0.2
    ip netns exec $NS_A ping fd10::2
    $VPNCTL --socket $SOCK_A show
    $VPNCTL --socket $SOCK_B show --json
    ip netns exec $NS_A ip address show vpn0
    tail -f $WORKDIR/vpnd-a.log $WORKDIR/vpnd-b.log

Configurations and keys are in $WORKDIR. Tear it all down with:

    $REPO/scripts/demo.sh --down
EOF
fi
