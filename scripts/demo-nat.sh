#!/usr/bin/env bash
# NAT demo on one machine (Debian 12, as root): a vpnhub and two vpnd peers behind two
# emulated home routers punch a direct UDP path through both NATs.
#
#   host A 192.168.1.2 -- router A (NAT, WAN 198.18.1.2) --+
#                                                          inet (vpnhub on 198.18.0.1:3478
#                                                                and 198.18.0.2:3478)
#   host B 192.168.2.2 -- router B (NAT, WAN 198.18.2.2) --+
#
# The routers masquerade what leaves (Linux keeps the port: endpoint-independent mapping)
# and drop everything unsolicited from outside, in the forward and the input hook, as real
# ones do. Each peer knows only the hub and the other's public key (no endpoint). The
# script waits until both see `path: punched`, prints how long it took, pings across the
# tunnel both ways, shows both sides (`vpnctl show`) and `vpnctl netcheck` on side A, and
# tears everything down, also on failure or Ctrl-C. Exits 0 only if the punch and the
# pings worked; on failure it prints the logs.
#
# Usage: scripts/demo.sh --nat [--keep]   set up, test, and tear down (or keep running)
#        scripts/demo.sh --nat --down     tear down a NAT demo left running by --keep
#
# Needs what scripts/demo.sh needs (root, /dev/net/tun, cargo) plus nftables, which
# scripts/install-deps.sh installs.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# Remembers what a --keep run left behind, for --down (apart from the plain demo's).
STATE_DIR=/run/vpndemo-nat
STATE_FILE="$STATE_DIR/state"
SOCK_A=/run/vpnd/demo-nat-a.sock
SOCK_B=/run/vpnd/demo-nat-b.sock
NS_PREFIX=vpndemo-nat-
HUB_IP=198.18.0.1
# The hub also answers STUN on a second address, so each vpnd learns its mapping from two
# servers and can tell endpoint-independent from endpoint-dependent mapping.
HUB_IP2=198.18.0.2
HUB_PORT=3478
# Bounded waits (seconds).
SOCKET_WAIT=15
STOP_WAIT=5
# Registration plus a few probe rounds; the NAT lab measures well under 2 s.
PUNCH_WAIT=30
PING_DEADLINE=10
PING_COUNT=3

usage() { sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; }

mode=run
keep=0
for arg in "$@"; do
    case "$arg" in
        --nat) ;; # how demo.sh got here
        --keep) keep=1 ;;
        --down) mode=down ;;
        -h|--help) usage; exit 0 ;;
        *) echo "demo.sh --nat: unknown argument: $arg (try --help)" >&2; exit 64 ;;
    esac
done
if [[ $mode == down && $keep -eq 1 ]]; then
    echo "demo.sh: --keep and --down do not go together" >&2
    exit 64
fi

# ---------------------------------------------------------------------------
# Output helpers (as in demo.sh)

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
die()  { printf '\n%sdemo.sh --nat: %s%s\n' "$R" "$*" "$N" >&2; exit 1; }

# ---------------------------------------------------------------------------
# Teardown (shared by the normal exit, failures, Ctrl-C and --down)

is_proc() { # PID COMM: is this PID running COMM? (guards against PID reuse)
    [[ -n "$1" && -r /proc/$1/comm ]] && [[ "$(cat "/proc/$1/comm" 2>/dev/null)" == "$2" ]]
}

stop_pid() { # PID COMM NAME: SIGTERM, wait up to STOP_WAIT s, then SIGKILL
    local pid=$1 comm=$2 name=$3 i
    is_proc "$pid" "$comm" || return 0
    kill -TERM "$pid" 2>/dev/null || return 0
    for ((i = 0; i < STOP_WAIT * 10; i++)); do
        is_proc "$pid" "$comm" || break
        sleep 0.1
    done
    if is_proc "$pid" "$comm"; then
        echo "    $name (pid $pid) did not stop within ${STOP_WAIT}s; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        sleep 0.2
    else
        echo "    stopped $name (pid $pid)"
    fi
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
    [[ -n "${VPNCTL:-}" && -x "${VPNCTL:-}" ]] || return 0
    if timeout 5 "$VPNCTL" --socket "$sock" show >/dev/null 2>&1; then
        echo "    $sock is still served by a running daemon; left alone" >&2
        return 0
    fi
    rm -f -- "$sock" && echo "    removed stale socket $sock"
}

# The namespaces of run $1, hosts first (their veths go with them), the internet last.
namespaces_of() { local r; for r in a b ra rb inet; do echo "${NS_PREFIX}$1-$r"; done; }

teardown() { # uses RUN_ID PID_A PID_B PID_HUB WORKDIR RUN_VPND_CREATED
    stop_pid "${PID_A:-}" vpnd "vpnd A"
    stop_pid "${PID_B:-}" vpnd "vpnd B"
    stop_pid "${PID_HUB:-}" vpnhub "vpnhub"
    if [[ -n "${RUN_ID:-}" ]]; then
        for ns in $(namespaces_of "$RUN_ID"); do delete_ns "$ns"; done
    fi
    remove_stale_socket "$SOCK_A"
    remove_stale_socket "$SOCK_B"
    if [[ "${RUN_VPND_CREATED:-0}" == 1 ]]; then
        rmdir /run/vpnd 2>/dev/null || true
    fi
    if [[ -n "${WORKDIR:-}" && -d "${WORKDIR:-}" && "$WORKDIR" == /tmp/vpndemo-nat.* ]]; then
        rm -rf -- "$WORKDIR" && echo "    removed $WORKDIR"
    fi
    rm -f -- "$STATE_FILE"
    rmdir "$STATE_DIR" 2>/dev/null || true
}

# Namespaces `vpndemo-nat-<pid>-<role>` whose creating script no longer runs and that no
# kept demo owns: left behind by a killed run.
stale_namespaces() {
    local ns owner
    while read -r ns _; do
        [[ $ns =~ ^vpndemo-nat-([0-9]+)-(a|b|ra|rb|inet)$ ]] || continue
        owner=${BASH_REMATCH[1]}
        [[ -d /proc/$owner && "$owner" != "$$" ]] && continue
        [[ "$owner" == "${RUN_ID:-}" ]] && continue
        echo "$ns"
    done < <(ip netns list 2>/dev/null)
}

read_state() {
    local key value
    while IFS='=' read -r key value; do
        case "$key" in
            RUN_ID|PID_A|PID_B|PID_HUB|WORKDIR|RUN_VPND_CREATED|VPNCTL) printf -v "$key" '%s' "$value" ;;
        esac
    done <"$STATE_FILE"
}

write_state() {
    mkdir -p "$STATE_DIR"
    {
        echo "RUN_ID=$RUN_ID"
        echo "PID_A=${PID_A:-}"
        echo "PID_B=${PID_B:-}"
        echo "PID_HUB=${PID_HUB:-}"
        echo "WORKDIR=$WORKDIR"
        echo "RUN_VPND_CREATED=$RUN_VPND_CREATED"
        echo "VPNCTL=${VPNCTL:-}"
    } >"$STATE_FILE"
}

if [[ "$(id -u)" -ne 0 ]]; then
    echo "demo.sh --nat: must run as root (it creates network namespaces, nftables rules and TUN devices)" >&2
    exit 1
fi

if [[ $mode == down ]]; then
    echo "${B}==> Tearing down the vpnd NAT demo${N}"
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
        echo "    nothing to tear down (no kept NAT demo, no leftover ${NS_PREFIX}* namespaces)"
    else
        echo "    done"
    fi
    exit 0
fi

# ---------------------------------------------------------------------------
# The demo run

RUN_ID='' PID_A='' PID_B='' PID_HUB='' WORKDIR='' RUN_VPND_CREATED=0 VPNCTL='' VPND='' VPNHUB=''
succeeded=0

show_logs() {
    local log
    for log in "$WORKDIR"/vpnhub.log "$WORKDIR"/vpnd-a.log "$WORKDIR"/vpnd-b.log; do
        [[ -f $log ]] || continue
        printf '\n%s----- %s -----%s\n' "$B" "$log" "$N"
        tail -n 200 "$log"
    done
}

on_exit() {
    local status=$?
    trap '' INT TERM
    if [[ $succeeded -eq 1 && $keep -eq 1 ]]; then
        exit 0
    fi
    if [[ $succeeded -ne 1 && -n $WORKDIR ]]; then
        show_logs
    fi
    if [[ -n "$RUN_ID$WORKDIR" ]]; then
        printf '\n%s==> Cleaning up%s\n' "$B" "$N"
        teardown
    fi
    if [[ $succeeded -eq 1 ]]; then
        printf '\n%sNAT demo passed:%s both peers punched through their NATs, pings answered both ways.\n' "$G" "$N"
        exit 0
    fi
    [[ $status -eq 0 ]] && status=1
    printf '\n%sNAT demo FAILED%s (exit %d)\n' "$R" "$N" "$status" >&2
    exit "$status"
}
trap on_exit EXIT
trap 'echo; echo "demo.sh --nat: interrupted" >&2; exit 130' INT
trap 'echo "demo.sh --nat: terminated" >&2; exit 143' TERM

cd "$REPO"

step "Checking prerequisites and installing system packages"
if [[ -f $STATE_FILE ]]; then
    die "a NAT demo is already set up (left running by --keep, or by a run that was killed); run 'scripts/demo.sh --nat --down' first"
fi
"$REPO/scripts/install-deps.sh" | sed 's/^/    /'
if ! command -v cargo >/dev/null 2>&1 && [[ -x "${HOME:-/root}/.cargo/bin/cargo" ]]; then
    export PATH="${HOME:-/root}/.cargo/bin:$PATH"
fi
command -v cargo >/dev/null 2>&1 ||
    die "cargo (Rust 1.85 or newer) is not installed; run scripts/demo.sh without --nat for how to install it"
ok "$(cargo --version)"
for tool in nft jq ping; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool is missing (scripts/install-deps.sh should have installed it)"
done
ok "nft, jq and ping present"
[[ -c /dev/net/tun ]] || modprobe tun 2>/dev/null || true
[[ -c /dev/net/tun ]] || die "/dev/net/tun is missing (load the tun module: modprobe tun)"
ok "/dev/net/tun present"
for ns in $(stale_namespaces); do
    info "removing leftover namespace $ns from an earlier, killed run"
    delete_ns "$ns" | sed 's/^/    /'
done

WORKDIR="$(mktemp -d /tmp/vpndemo-nat.XXXXXX)"
ok "working directory $WORKDIR"

# Same profile logic as demo.sh: DEMO_PROFILE=dev reuses the debug build.
PROFILE="${DEMO_PROFILE:-release}"
PROFILE_DIR=$([[ $PROFILE == dev ]] && echo debug || echo "$PROFILE")
step "Building vpnd, vpnctl and vpnhub (cargo build --profile $PROFILE --bins)"
info "the first build compiles all dependencies and takes a few minutes; log: $WORKDIR/build.log"
build_start=$SECONDS
if ! cargo build --profile "$PROFILE" --bins --color never >"$WORKDIR/build.log" 2>&1; then
    echo "----- last lines of $WORKDIR/build.log -----"
    tail -n 60 "$WORKDIR/build.log"
    die "the build failed"
fi
target_dir="$(cargo metadata --format-version 1 --no-deps 2>/dev/null | jq -r .target_directory)"
VPND="$target_dir/$PROFILE_DIR/vpnd"
VPNCTL="$target_dir/$PROFILE_DIR/vpnctl"
VPNHUB="$target_dir/$PROFILE_DIR/vpnhub"
[[ -x $VPND && -x $VPNCTL && -x $VPNHUB ]] || die "built binaries not found in $target_dir/$PROFILE_DIR"
ok "built in $((SECONDS - build_start))s: vpnd, vpnctl, vpnhub in $target_dir/$PROFILE_DIR"
for sock in "$SOCK_A" "$SOCK_B"; do
    if [[ -S $sock ]] && timeout 5 "$VPNCTL" --socket "$sock" show >/dev/null 2>&1; then
        VPNCTL='' # not ours: keep teardown away from it
        die "$sock is in use by a running vpnd; stop that daemon (or run 'scripts/demo.sh --nat --down') first"
    fi
done

step "Creating the internet, two NAT routers and a host behind each"
RUN_ID=$$
NS_INET="${NS_PREFIX}$RUN_ID-inet"
[[ -d /run/vpnd ]] || RUN_VPND_CREATED=1
write_state
ip netns add "$NS_INET"
ip -n "$NS_INET" link set lo up
ip -n "$NS_INET" addr add "$HUB_IP/32" dev lo
ip -n "$NS_INET" addr add "$HUB_IP2/32" dev lo
ip netns exec "$NS_INET" sysctl -qw net.ipv4.ip_forward=1

nat_rules() { # WAN_IF: masquerade out, drop unsolicited in (forward and input hooks)
    # The input hook matters too: a peer's first probe reaches the router's own address; if
    # the router accepted it, conntrack would keep that flow and the router's own outgoing
    # translation to the same address and port would lose its port (a tuple clash).
    cat <<EOF
table ip nat {
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    oifname "$1" masquerade
  }
}
table ip filter {
  chain forward {
    type filter hook forward priority filter; policy drop;
    ct state established,related accept
    iifname != "$1" accept
  }
  chain input {
    type filter hook input priority filter; policy accept;
    iifname "$1" ct state new drop
  }
}
EOF
}

make_side() { # SIDE N: router r<side> on 198.18.N.0/24, host <side> on 192.168.N.0/24
    local side=$1 n=$2 ns_r="${NS_PREFIX}$RUN_ID-r$1" ns_h="${NS_PREFIX}$RUN_ID-$1"
    ip netns add "$ns_r"
    ip netns add "$ns_h"
    ip -n "$ns_r" link set lo up
    ip -n "$ns_h" link set lo up
    # Created directly inside the namespaces: no names in the host namespace.
    ip -n "$ns_r" link add wan type veth peer name "to-r$side" netns "$NS_INET"
    ip -n "$ns_r" link add lan type veth peer name eth0 netns "$ns_h"
    ip -n "$NS_INET" addr add "198.18.$n.1/24" dev "to-r$side"
    ip -n "$ns_r" addr add "198.18.$n.2/24" dev wan
    ip -n "$ns_r" addr add "192.168.$n.1/24" dev lan
    ip -n "$ns_h" addr add "192.168.$n.2/24" dev eth0
    ip -n "$NS_INET" link set "to-r$side" up
    ip -n "$ns_r" link set wan up
    ip -n "$ns_r" link set lan up
    ip -n "$ns_h" link set eth0 up
    ip -n "$ns_r" route add default via "198.18.$n.1"
    ip -n "$ns_h" route add default via "192.168.$n.1"
    ip netns exec "$ns_r" sysctl -qw net.ipv4.ip_forward=1
    nat_rules wan >"$WORKDIR/router-$side.nft"
    ip netns exec "$ns_r" nft -f "$WORKDIR/router-$side.nft"
    ok "host ${side^^} 192.168.$n.2 behind router ${side^^} (NAT, public 198.18.$n.2)"
}
make_side a 1
make_side b 2
NS_A="${NS_PREFIX}$RUN_ID-a"
NS_B="${NS_PREFIX}$RUN_ID-b"
for ns in "$NS_A" "$NS_B"; do
    ip netns exec "$ns" ping -c 1 -W 2 "$HUB_IP" >/dev/null ||
        ip netns exec "$ns" ping -c 1 -W 3 "$HUB_IP" >/dev/null ||
        die "the hub's address $HUB_IP is unreachable from $ns"
done
ok "underlay: both hosts reach $HUB_IP through their NATs"
if ip netns exec "$NS_A" ping -c 1 -W 1 198.18.2.2 >/dev/null 2>&1; then
    die "router B answers an unsolicited ping from outside: its NAT does not filter"
fi
ok "the NATs drop unsolicited traffic (host A cannot ping router B's public address)"

step "Generating keys and writing the configurations"
(
    umask 077
    for who in hub a b; do "$VPNCTL" genkey >"$WORKDIR/$who.key"; done
)
pub_hub="$("$VPNCTL" pubkey <"$WORKDIR/hub.key")"
pub_a="$("$VPNCTL" pubkey <"$WORKDIR/a.key")"
pub_b="$("$VPNCTL" pubkey <"$WORKDIR/b.key")"
ok "hub public key    $pub_hub"
ok "side A public key $pub_a"
ok "side B public key $pub_b"
# The hub listens on its address, not 0.0.0.0, so replies leave from the address peers use.
cat >"$WORKDIR/hub.yaml" <<EOF
private_key_file: $WORKDIR/hub.key
listen: ["$HUB_IP:$HUB_PORT", "$HUB_IP2:$HUB_PORT"]
admission:
  allow: ["$pub_a", "$pub_b"]
store: memory
EOF
write_vpnd_config() { # SIDE N OTHER_PUB OTHER_N: no endpoint for the peer, only the hub
    cat >"$WORKDIR/demo-nat-$1.yaml" <<EOF
interface:
  name: vpn0
  private_key_file: $WORKDIR/$1.key
  listen_port: 51820
  addresses: [10.20.0.$2/24]
control:
  socket: /run/vpnd/demo-nat-$1.sock
hubs:
  - address: "$HUB_IP:$HUB_PORT"
    public_key: "$pub_hub"
stun_servers: ["$HUB_IP2:$HUB_PORT"]
peers:
  - name: demo-nat-$4
    public_key: "$3"
    allowed_ips: [10.20.0.$5/32]
EOF
}
write_vpnd_config a 1 "$pub_b" b 2
write_vpnd_config b 2 "$pub_a" a 1
chmod 600 "$WORKDIR"/*.yaml
"$VPNHUB" --check --config "$WORKDIR/hub.yaml" >/dev/null 2>"$WORKDIR/check-hub.log" || {
    cat "$WORKDIR/check-hub.log" >&2
    die "vpnhub --check refused $WORKDIR/hub.yaml"
}
for side in a b; do
    "$VPND" --check --config "$WORKDIR/demo-nat-$side.yaml" >/dev/null 2>"$WORKDIR/check-$side.log" || {
        cat "$WORKDIR/check-$side.log" >&2
        die "vpnd --check refused $WORKDIR/demo-nat-$side.yaml"
    }
done
ok "vpnhub --check and vpnd --check accept $WORKDIR/hub.yaml, demo-nat-a.yaml, demo-nat-b.yaml"

step "Starting vpnhub on the internet and vpnd behind each NAT"
start_in() { # NS LOG VAR PROGRAM ARGS...: in its own session so it can outlive this script
    local ns=$1 log=$2 var=$3
    shift 3
    # setsid does not fork here (a background job is no process-group leader), and
    # `ip netns exec` execs the program, so $! is the program's own PID.
    setsid ip netns exec "$ns" "$@" </dev/null >"$log" 2>&1 &
    printf -v "$var" '%s' "$!"
}
start_in "$NS_INET" "$WORKDIR/vpnhub.log" PID_HUB "$VPNHUB" --config "$WORKDIR/hub.yaml"
write_state
hub_listens() { # on both addresses
    local l
    l=$(ip netns exec "$NS_INET" ss -Hnul)
    grep -q "$HUB_IP:$HUB_PORT" <<<"$l" && grep -q "$HUB_IP2:$HUB_PORT" <<<"$l"
}
for ((i = 0; i < SOCKET_WAIT * 10; i++)); do
    hub_listens && break
    kill -0 "$PID_HUB" 2>/dev/null || die "vpnhub exited during start-up"
    sleep 0.1
done
hub_listens || die "vpnhub does not listen on $HUB_IP:$HUB_PORT and $HUB_IP2:$HUB_PORT within ${SOCKET_WAIT}s"
ok "vpnhub pid $PID_HUB listens on $HUB_IP:$HUB_PORT and $HUB_IP2:$HUB_PORT (log $WORKDIR/vpnhub.log)"
punch_start=$(date +%s.%N)
start_in "$NS_A" "$WORKDIR/vpnd-a.log" PID_A "$VPND" --config "$WORKDIR/demo-nat-a.yaml"
start_in "$NS_B" "$WORKDIR/vpnd-b.log" PID_B "$VPND" --config "$WORKDIR/demo-nat-b.yaml"
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

step "Waiting (at most ${PUNCH_WAIT}s) until both peers see path: punched"
peer_field() { # SOCK FIELD: the (only) peer's FIELD from `vpnctl show --json`
    timeout 5 "$VPNCTL" --socket "$1" show --json 2>/dev/null | jq -r ".peers[0].$2 // \"\"" 2>/dev/null || true
}
path_a='' path_b=''
for ((i = 0; i < PUNCH_WAIT * 10; i++)); do
    path_a=$(peer_field "$SOCK_A" path)
    path_b=$(peer_field "$SOCK_B" path)
    [[ $path_a == punched && $path_b == punched ]] && break
    kill -0 "$PID_A" 2>/dev/null || die "vpnd A exited"
    kill -0 "$PID_B" 2>/dev/null || die "vpnd B exited"
    sleep 0.1
done
if [[ $path_a != punched || $path_b != punched ]]; then
    bad "A sees path '${path_a:-?}' ($(peer_field "$SOCK_A" why_not_direct)), B sees '${path_b:-?}' ($(peer_field "$SOCK_B" why_not_direct))"
    die "not punched within ${PUNCH_WAIT}s"
fi
ok "punched $(awk -v s="$punch_start" -v e="$(date +%s.%N)" 'BEGIN { printf "%.2f", e - s }') s after starting both daemons (registration included)"
ok "A reaches B via $(peer_field "$SOCK_A" path_endpoint) (router B's public address)"
ok "B reaches A via $(peer_field "$SOCK_B" path_endpoint) (router A's public address)"

step "Pinging through the tunnel both ways"
failures=0
ping_check() { # NS ADDRESS: PING_COUNT answers within PING_DEADLINE seconds
    local ns=$1 addr=$2 out
    info "ip netns exec $ns ping -c $PING_COUNT -w $PING_DEADLINE $addr"
    if out="$(ip netns exec "$ns" ping -c "$PING_COUNT" -i 0.5 -w "$PING_DEADLINE" "$addr" 2>&1)"; then
        ok "$(grep -E 'packets transmitted' <<<"$out")"
        grep -E '^rtt' <<<"$out" | sed 's/^/        /' || true
    else
        bad "ping $addr: $(grep -E 'packets transmitted' <<<"$out" || echo "$out")"
        failures=$((failures + 1))
    fi
}
ping_check "$NS_A" 10.20.0.2
ping_check "$NS_B" 10.20.0.1

step "vpnctl show on side A ($SOCK_A)"
"$VPNCTL" --socket "$SOCK_A" show || failures=$((failures + 1))
step "vpnctl show on side B ($SOCK_B)"
"$VPNCTL" --socket "$SOCK_B" show || failures=$((failures + 1))
step "vpnctl netcheck on side A"
"$VPNCTL" --socket "$SOCK_A" netcheck || failures=$((failures + 1))

if [[ $failures -ne 0 ]]; then
    die "$failures check(s) failed"
fi
succeeded=1

if [[ $keep -eq 1 ]]; then
    write_state
    cat <<EOF

${G}The NAT demo is running${N} (--keep). Try:

    ip netns exec $NS_A ping 10.20.0.2
    $VPNCTL --socket $SOCK_A show
    $VPNCTL --socket $SOCK_B show --json
    $VPNCTL --socket $SOCK_A netcheck
    ip netns exec ${NS_PREFIX}$RUN_ID-ra conntrack -L -p udp     # router A's mappings
    tail -f $WORKDIR/vpnhub.log $WORKDIR/vpnd-a.log $WORKDIR/vpnd-b.log

Configurations and keys are in $WORKDIR. Tear it all down with:

    $REPO/scripts/demo.sh --nat --down
EOF
fi
