#!/usr/bin/env bash
# Relay benchmark (issue 11): vpnd through vpnhub's UDP relay and its TCP relay against the
# direct (punched) path, in the same run (as root).
#
# Four network namespaces: A, B and HUB, each joined by a veth (MTU 1500) to a router
# namespace R that forwards between them, so A↔HUB and B↔HUB UDP work. vpnhub runs in HUB
# (`admission: allow_any: true`, `relay.rate_mbit: 100000` so the rate limit never binds);
# vpnd runs in A and in B with `hubs:` naming it, the other side's public key and allowed
# IPs and NO endpoint, so they find each other only through the hub. Three cases take turns
# (relay relay-tcp direct, ...) for several rounds, with fresh daemons every turn:
#   relay      an nftables rule in R drops UDP between A and B, so the only path is through
#              the hub; the turn starts once both vpnds report `path: relay`
#   relay-tcp  as relay, and R also drops UDP between A and the hub: A reaches the hub over
#              TCP (after 4 s of unanswered UDP) and relays over that connection, B over UDP;
#              the turn starts once both report `relay` and A's `relay_transport` is `tcp`
#   direct     no rule: the vpnds punch a direct path; the turn starts once both report
#              `punched` (or `direct`)
# The report gives medians over the rounds and each relay's median as % of the direct one.
#
# Tests (client in A, server in B, through the tunnel):
#   TCP 1             iperf3 TCP, 1 stream: received rate
#   UDP 1400 B        iperf3 UDP, 1400-byte payloads offered at --udp-rate (default 300M):
#                     received rate and loss
#   UDP 64 B          iperf3 UDP, 64-byte payloads, unlimited rate: received packets/s
#                     (the UDP tests use -w 2M, as in bench/tunnel.sh)
#   CPU               CPU seconds (user + system, from /proc/<pid>/stat) per GB received, of
#                     vpnhub and of both vpnds together, for TCP 1 and UDP 1400 B; and
#                     "Gb per relay CPU-second": gigabits received per second of vpnhub CPU
#                     (relay case only)
#   diagnostics       TCP retransmits; the whole machine's CPU busy % during a test (includes
#                     iperf3, the kernel and whatever else runs); UDP receive-buffer drops
#                     (RcvbufErrors) in the hub's namespace and in A's and B's
#
# Inner MTU 1432 in both cases: a relayed frame is the 1432-byte packet + 32 WireGuard + 8
# relay header + 28 IPv4/UDP = 1500 bytes, the veths' MTU, and a 1400-byte UDP payload
# (1428-byte packet) is not fragmented.
#
# Output: a table on the terminal, DIR/results.json (every round, the medians and the relay
# as % of direct), DIR/chart.png (gnuplot, via bench/relay-chart.sh), DIR/table.txt, and under DIR/raw the daemons' logs, their configurations
# without keys, every iperf3 report, `vpnctl show --json` of each turn and `lscpu`.
#
# Usage: bench/relay.sh [options]
#   --duration S      seconds per iperf3 test (default 10)
#   --rounds N        rounds (default 3)
#   --out DIR         output directory (default bench/results/relay-<date>-<time>)
#   --quick           CI smoke: 2 s per test, 1 round (--duration and --rounds still apply)
#   --udp-rate R      iperf3 -b for the 1400-byte UDP test (default 300M)
#   --vpnd PATH       use this vpnd binary instead of building one
#   --vpnhub PATH     use this vpnhub binary instead of building one
#   --vpnctl PATH     use this vpnctl binary instead of building one
#   --no-install      do not install missing packages
#   --cleanup         only remove namespaces left by killed runs, then exit
#
# Exit status: 0 all went well; 1 a setup error; 2 a case failed in some round (its figures
# from that round are missing; the others are still reported).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BENCH_NAME=relay
# shellcheck source=bench/lib.sh
source "$REPO/bench/lib.sh"

DURATION='' ROUNDS='' OUT='' QUICK=0 INSTALL=1 UDP_RATE=300M
VPND=${VPND:-} VPNHUB=${VPNHUB:-} VPNCTL=${VPNCTL:-}
NS_PREFIX=vprelay
CASES=(relay relay-tcp direct)

usage() { sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; }

while [[ $# -gt 0 ]]; do
    case "$1" in
        --duration) DURATION=$2; shift 2 ;;
        --rounds) ROUNDS=$2; shift 2 ;;
        --out) OUT=$2; shift 2 ;;
        --quick) QUICK=1; shift ;;
        --udp-rate) UDP_RATE=$2; shift 2 ;;
        --vpnd) VPND=$2; shift 2 ;;
        --vpnhub) VPNHUB=$2; shift 2 ;;
        --vpnctl) VPNCTL=$2; shift 2 ;;
        --no-install) INSTALL=0; shift ;;
        --cleanup)
            bench_require_root
            bench_cleanup_stale "$NS_PREFIX"
            exit 0
            ;;
        -h | --help) usage; exit 0 ;;
        *) echo "relay.sh: unknown argument: $1 (try --help)" >&2; exit 64 ;;
    esac
done
if [[ $QUICK == 1 ]]; then
    DURATION=${DURATION:-2} ROUNDS=${ROUNDS:-1}
fi
DURATION=${DURATION:-10} ROUNDS=${ROUNDS:-3}
if ! [[ $DURATION =~ ^[0-9]+$ ]] || ((DURATION < 2)); then
    bench_die "--duration must be a whole number of seconds, at least 2"
fi
if ! [[ $ROUNDS =~ ^[0-9]+$ ]] || ((ROUNDS < 1)); then
    bench_die "--rounds must be at least 1"
fi
[[ $UDP_RATE =~ ^[0-9]+[KMG]?$ ]] || bench_die "--udp-rate must be an iperf3 rate such as 300M"
bench_require_root

# ---------------------------------------------------------------- tools
packages=(iproute2 iputils-ping iperf3 jq util-linux procps nftables gnuplot-nox)
if [[ $INSTALL == 1 ]]; then bench_apt_install "${packages[@]}"; fi
for tool in ip ping iperf3 jq nsenter unshare setpriv ss nft; do
    command -v "$tool" >/dev/null || bench_die "missing $tool (install: ${packages[*]})"
done
if [[ -z $VPND || -z $VPNHUB || -z $VPNCTL ]]; then
    bench_cargo_path || bench_die "cargo not found; install Rust (see README.md) or pass --vpnd, --vpnhub and --vpnctl"
    bench_log "cargo build --release --bins"
    (cd "$REPO" && cargo build --release --bins --quiet)
    bindir="$(bench_cargo_target_dir "$REPO")/release"
    VPND=${VPND:-$bindir/vpnd} VPNHUB=${VPNHUB:-$bindir/vpnhub} VPNCTL=${VPNCTL:-$bindir/vpnctl}
fi
for bin in "$VPND" "$VPNHUB" "$VPNCTL"; do
    [[ -x $bin ]] || bench_die "no executable at $bin"
done

# ---------------------------------------------------------------- run state
OUT=${OUT:-$REPO/bench/results/relay-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT/raw"
OUT=$(cd "$OUT" && pwd)
WORK=$(mktemp -d /tmp/vpn-relay.XXXXXX)
chmod 700 "$WORK"

on_exit() {
    local status=$?
    trap '' INT TERM
    bench_cleanup
    rm -rf "$WORK"
    exit "$status"
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

NS_R="$NS_PREFIX-$$-r" NS_A="$NS_PREFIX-$$-a" NS_B="$NS_PREFIX-$$-b" NS_H="$NS_PREFIX-$$-hub"
UNDER_A=10.81.1.2 UNDER_B=10.81.2.2 UNDER_H=10.81.3.2   # the router is .1 on each link
TUN_A=10.82.0.1 TUN_B=10.82.0.2
HUB_PORT=3478 PORT=51820 IPERF_PORT=5201 MTU=1432
IFACE=wgr0
CLK_TCK=$(getconf CLK_TCK)

# ---------------------------------------------------------------- network
bench_cleanup_stale "$NS_PREFIX"
for ns in "$NS_R" "$NS_A" "$NS_B" "$NS_H"; do bench_netns_add "$ns"; done
ip netns exec "$NS_R" sysctl -q -w net.ipv4.ip_forward=1
i=1
for pair in "$NS_A:$UNDER_A:a" "$NS_B:$UNDER_B:b" "$NS_H:$UNDER_H:h"; do
    IFS=: read -r ns addr side <<<"$pair"
    ip link add "vr-$side" netns "$NS_R" type veth peer name "vr-$side-x" netns "$ns"
    ip -n "$NS_R" address add "10.81.$i.1/24" dev "vr-$side"
    ip -n "$NS_R" link set "vr-$side" up
    ip -n "$ns" link set "vr-$side-x" name eth0
    ip -n "$ns" address add "$addr/24" dev eth0
    ip -n "$ns" link set eth0 up
    ip -n "$ns" route add default via "10.81.$i.1"
    i=$((i + 1))
done
bench_wait_for 5 ip netns exec "$NS_A" ping -c 1 -W 1 "$UNDER_H" || bench_die "A cannot reach the hub's namespace"
bench_wait_for 5 ip netns exec "$NS_B" ping -c 1 -W 1 "$UNDER_H" || bench_die "B cannot reach the hub's namespace"
bench_wait_for 5 ip netns exec "$NS_A" ping -c 1 -W 1 "$UNDER_B" || bench_die "A cannot reach B's namespace"

# block_direct on|tcp|off: the nftables rules in R that drop UDP between A and B (both ways),
# and with `tcp` UDP between A and the hub too.
block_direct() {
    ip netns exec "$NS_R" nft delete table inet relaybench 2>/dev/null || true
    [[ $1 == off ]] && return 0
    local hub_rules=""
    if [[ $1 == tcp ]]; then
        hub_rules="ip saddr $UNDER_A ip daddr $UNDER_H meta l4proto udp drop
        ip saddr $UNDER_H ip daddr $UNDER_A meta l4proto udp drop"
    fi
    ip netns exec "$NS_R" nft -f - <<EOF
table inet relaybench {
    chain forward {
        type filter hook forward priority 0; policy accept;
        ip saddr $UNDER_A ip daddr $UNDER_B meta l4proto udp drop
        ip saddr $UNDER_B ip daddr $UNDER_A meta l4proto udp drop
        $hub_rules
    }
}
EOF
}

umask 077
KEY_A=$("$VPNCTL" genkey) KEY_B=$("$VPNCTL" genkey) KEY_H=$("$VPNCTL" genkey)
umask 022
PUB_A=$("$VPNCTL" pubkey <<<"$KEY_A") PUB_B=$("$VPNCTL" pubkey <<<"$KEY_B") PUB_H=$("$VPNCTL" pubkey <<<"$KEY_H")

hub_conf() {
    cat <<EOF
private_key: $KEY_H
listen: ["$UNDER_H:$HUB_PORT"]
admission:
  allow_any: true
relay:
  enabled: true
  rate_mbit: 100000
EOF
}

# vpnd_conf SIDE: vpnd's YAML for one side (no endpoint: the hub finds the peer).
vpnd_conf() {
    local key=$KEY_A peer_pub=$PUB_B tun=$TUN_A peer_tun=$TUN_B
    if [[ $1 == b ]]; then
        key=$KEY_B peer_pub=$PUB_A tun=$TUN_B peer_tun=$TUN_A
    fi
    cat <<EOF
interface:
  name: $IFACE
  private_key: $key
  listen_port: $PORT
  addresses: [$tun/24]
  mtu: $MTU
control:
  socket: $WORK/vpnd-$1.sock
hubs:
  - address: $UNDER_H:$HUB_PORT
    public_key: $PUB_H
peers:
  - public_key: $peer_pub
    allowed_ips: [$peer_tun/32]
EOF
}
(umask 077 && hub_conf >"$WORK/hub.yaml" && vpnd_conf a >"$WORK/vpnd-a.yaml" && vpnd_conf b >"$WORK/vpnd-b.yaml")
for f in hub vpnd-a vpnd-b; do
    grep -v 'private_key' "$WORK/$f.yaml" >"$OUT/raw/$f.yaml"
done

# ---------------------------------------------------------------- daemons
PID_A='' PID_B='' PID_H=''

show_json() { "$VPNCTL" --socket "$WORK/vpnd-$1.sock" show --json 2>/dev/null; }
# path_is SIDE REGEX: the side's one peer has a path matching REGEX.
path_is() { show_json "$1" | jq -e --arg re "$2" '(.peers // .result.peers)[0].path | test($re)' >/dev/null; }
both_on() { path_is a "$1" && path_is b "$1"; }
# a_relays_over_tcp: A is relayed over its TCP connection to the hub.
a_relays_over_tcp() {
    show_json a | jq -e '(.peers // .result.peers)[0] | .path == "relay" and .relay_transport == "tcp"' >/dev/null
}

start_all() {
    local tag=$1
    bench_spawn "$NS_H" "$OUT/raw/$tag-vpnhub.log" "$VPNHUB" --config "$WORK/hub.yaml"
    PID_H=$BENCH_SPAWNED_PID
    bench_wait_for 10 bash -c "[[ -n \$(ip netns exec '$NS_H' ss -Hlun 'sport = :$HUB_PORT') ]]" || {
        bench_log "vpnhub did not listen within 10 s:"
        tail -n 5 "$OUT/raw/$tag-vpnhub.log" >&2
        return 1
    }
    bench_spawn_private_run "$NS_A" "$OUT/raw/$tag-vpnd-a.log" "$VPND" --config "$WORK/vpnd-a.yaml"
    PID_A=$BENCH_SPAWNED_PID
    bench_spawn_private_run "$NS_B" "$OUT/raw/$tag-vpnd-b.log" "$VPND" --config "$WORK/vpnd-b.yaml"
    PID_B=$BENCH_SPAWNED_PID
    local side
    for side in a b; do
        bench_wait_for 15 show_json "$side" || {
            bench_log "vpnd ($side) did not answer vpnctl show within 15 s:"
            tail -n 5 "$OUT/raw/$tag-vpnd-$side.log" >&2
            return 1
        }
    done
}

stop_all() {
    local pid ns
    for pid in "$PID_A" "$PID_B" "$PID_H"; do
        [[ -n $pid ]] && bench_stop_pid "$pid" 5
    done
    PID_A='' PID_B='' PID_H=''
    for ns in "$NS_A" "$NS_B"; do
        bench_wait_for 5 bash -c "! ip -n '$ns' link show '$IFACE' >/dev/null 2>&1" ||
            ip -n "$ns" link del "$IFACE" 2>/dev/null || true
    done
}

alive() {
    local pid
    for pid in "$PID_A" "$PID_B" "$PID_H"; do
        kill -0 "$pid" 2>/dev/null || return 1
    done
}

ticks() { local t; t=$(bench_cpu_ticks "$1"); echo "${t:-0}"; }

# cpu_jiffies: "busy total" jiffies of the whole machine (all CPUs) from /proc/stat.
cpu_jiffies() { awk '$1 == "cpu" { t = 0; for (i = 2; i <= NF; i++) t += $i; print t - $5 - $6, t; exit }' /proc/stat; }

# rcvbuf_drops NS...: UDP datagrams the kernel dropped for a full socket receive buffer
# (Udp RcvbufErrors, per network namespace), summed over the namespaces.
rcvbuf_drops() {
    local ns sum=0 n
    for ns in "$@"; do
        n=$(ip netns exec "$ns" awk '$1 == "Udp:" { if (!h) { for (i = 2; i <= NF; i++) if ($i == "RcvbufErrors") c = i; h = 1 } else print $c }' /proc/net/snmp)
        sum=$((sum + ${n:-0}))
    done
    echo "$sum"
}

# ---------------------------------------------------------------- measurements
VALUES=
put() { printf '%s %s\n' "$1" "${2:-null}" >>"$VALUES"; }
jnum() { jq -r "($2) // null | if type == \"number\" then . else null end" "$1" 2>/dev/null || echo null; }

# iperf TAG NAME ARGS...: one iperf3 test from A to B through the tunnel with a one-shot
# server; the client's JSON report goes to $OUT/raw/TAG-NAME.json. Bounded by -t and timeout.
iperf() {
    local tag=$1 name=$2 spid i
    shift 2
    bench_spawn "$NS_B" "$OUT/raw/$tag-$name-server.log" iperf3 -s -1 -p "$IPERF_PORT"
    spid=$BENCH_SPAWNED_PID
    bench_wait_for 5 bash -c "[[ -n \$(ip netns exec '$NS_B' ss -Hltn 'sport = :$IPERF_PORT') ]]" ||
        bench_log "iperf3 server not listening after 5 s"
    ip netns exec "$NS_A" timeout $((DURATION + 15)) iperf3 -c "$TUN_B" -p "$IPERF_PORT" \
        -t "$DURATION" -J --connect-timeout 3000 "$@" >"$OUT/raw/$tag-$name.json" 2>"$OUT/raw/$tag-$name.stderr" || true
    for ((i = 0; i < 100; i++)); do
        kill -0 "$spid" 2>/dev/null || break
        sleep 0.05
    done
    bench_stop_pid "$spid" 1
}

# measured TAG NAME ARGS...: iperf with each daemon's CPU time; puts NAME_mbps,
# NAME_hub_cpu_s_per_gb, NAME_vpnd_cpu_s_per_gb (both vpnds), NAME_gb_per_hub_cpu_s and the
# receive-buffer drops in the hub's and in the vpnds' namespaces (NAME_hub_rcvbuf_drops,
# NAME_ab_rcvbuf_drops; the latter includes iperf3's own UDP socket in B).
measured() {
    local tag=$1 name=$2 h0 h1 v0 v1 d0h d0v b0 t0 b1 t1 report bytes err
    d0h=$(rcvbuf_drops "$NS_H") d0v=$(rcvbuf_drops "$NS_A" "$NS_B")
    read -r b0 t0 < <(cpu_jiffies)
    h0=$(ticks "$PID_H") v0=$(($(ticks "$PID_A") + $(ticks "$PID_B")))
    iperf "$@"
    h1=$(ticks "$PID_H") v1=$(($(ticks "$PID_A") + $(ticks "$PID_B")))
    read -r b1 t1 < <(cpu_jiffies)
    put "${name}_host_busy_pct" "$(awk -v b=$((b1 - b0)) -v t=$((t1 - t0)) 'BEGIN { if (t > 0) printf "%.1f", 100 * b / t; else print "null" }')"
    put "${name}_hub_rcvbuf_drops" $(($(rcvbuf_drops "$NS_H") - d0h))
    put "${name}_ab_rcvbuf_drops" $(($(rcvbuf_drops "$NS_A" "$NS_B") - d0v))
    report="$OUT/raw/$tag-$name.json"
    err=$(jq -r '.error // empty' "$report" 2>/dev/null || echo "no JSON report")
    [[ -z $err ]] || bench_log "$tag $name: iperf3: $err"
    bytes=$(jnum "$report" .end.sum_received.bytes)
    put "${name}_mbps" "$(jq -r '(.end.sum_received.bits_per_second // null) | if . then . / 1e6 else null end' "$report" 2>/dev/null || echo null)"
    if [[ $bytes != null && $bytes != 0 ]]; then
        put "${name}_vpnd_cpu_s_per_gb" "$(awk -v t=$((v1 - v0)) -v hz="$CLK_TCK" -v b="$bytes" 'BEGIN { printf "%.3f", t / hz / (b / 1e9) }')"
        put "${name}_hub_cpu_s_per_gb" "$(awk -v t=$((h1 - h0)) -v hz="$CLK_TCK" -v b="$bytes" 'BEGIN { printf "%.3f", t / hz / (b / 1e9) }')"
        # Only meaningful when the hub carries the traffic (null when it used no CPU).
        put "${name}_gb_per_hub_cpu_s" "$(awk -v t=$((h1 - h0)) -v hz="$CLK_TCK" -v b="$bytes" \
            'BEGIN { if (t > 0) printf "%.3f", b * 8 / 1e9 / (t / hz); else print "null" }')"
    else
        put "${name}_vpnd_cpu_s_per_gb" null
        put "${name}_hub_cpu_s_per_gb" null
        put "${name}_gb_per_hub_cpu_s" null
    fi
}

# run_case CASE ROUND: one case's turn; writes $OUT/raw/round-CASE-rROUND.json.
run_case() {
    local case=$1 round=$2 tag="$1-r$2" ok=true error="" want t0 ms
    VALUES="$OUT/raw/$tag.values"
    : >"$VALUES"
    bench_log "round $round/$ROUNDS: $case"
    if [[ $case == relay ]]; then
        block_direct on
        want='^relay$'
    elif [[ $case == relay-tcp ]]; then
        block_direct tcp
        want='^relay$'
    else
        block_direct off
        want='^(punched|direct)$'
    fi
    t0=$(bench_now_ms)
    if ! start_all "$tag"; then
        error="the daemons did not start"
    elif ! bench_wait_for 30 both_on "$want"; then
        error="both peers did not report path ${want//[\^\$()]/} within 30 s"
    elif [[ $case == relay-tcp ]] && ! bench_wait_for 30 a_relays_over_tcp; then
        error="A did not relay over TCP within 30 s"
    elif ! bench_wait_for 10 ip netns exec "$NS_A" ping -c 1 -W 1 "$TUN_B"; then
        error="no ping through the tunnel"
    fi
    ms=$(($(bench_now_ms) - t0))
    for side in a b; do show_json "$side" >"$OUT/raw/$tag-show-$side.json" || true; done
    if [[ -n $error ]]; then
        bench_log "$tag: $error"
        stop_all
        jq -n --arg case "$case" --argjson round "$round" --arg error "$error" \
            '{case: $case, round: $round, ok: false, error: $error, values: {}}' >"$OUT/raw/round-$tag.json"
        return 1
    fi
    put path_ready_s "$(awk -v m="$ms" 'BEGIN { printf "%.2f", m / 1000 }')"
    sleep 0.5

    measured "$tag" tcp1
    put tcp1_retransmits "$(jnum "$OUT/raw/$tag-tcp1.json" .end.sum_sent.retransmits)"
    measured "$tag" udp1400 -u -l 1400 -b "$UDP_RATE" -w 2M
    put udp1400_loss_pct "$(jnum "$OUT/raw/$tag-udp1400.json" .end.sum_received.lost_percent)"
    measured "$tag" udp64 -u -l 64 -b 0 -w 2M
    put udp64_kpps "$(jq -r '.end.sum_received | if . and .seconds > 0
        then (.packets - .lost_packets) / .seconds / 1000 else null end' \
        "$OUT/raw/$tag-udp64.json" 2>/dev/null || echo null)"

    # The path must not have changed under the load (a relay that upgraded would measure
    # the direct path).
    for side in a b; do show_json "$side" >"$OUT/raw/$tag-show-end-$side.json" || true; done
    if ! alive; then
        ok=false error="a daemon exited during the tests"
    elif ! path_is a "$want" || ! path_is b "$want"; then
        ok=false error="the path changed during the tests (see raw/$tag-show-end-*.json)"
    fi
    [[ $ok == true ]] || bench_log "$tag: $error"
    stop_all
    jq -Rn --arg case "$case" --argjson round "$round" --argjson ok "$ok" --arg error "$error" \
        '{case: $case, round: $round, ok: $ok, error: (if $error == "" then null else $error end),
          values: ([inputs | select(length > 0) | split(" ") | {(.[0]): (.[1] | tonumber? // null)}] | add // {})}' \
        <"$VALUES" >"$OUT/raw/round-$tag.json"
    [[ $ok == true ]]
}

# ---------------------------------------------------------------- the run
lscpu >"$OUT/raw/lscpu.txt" 2>&1 || true
STAT_START=$(head -n 1 /proc/stat)
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
GIT_REV=$(git -C "$REPO" describe --always --dirty 2>/dev/null || echo unknown)
bench_log "$ROUNDS round(s) of ${DURATION} s tests; inner MTU $MTU; UDP 1400 B at $UDP_RATE; load $LOAD_START"
bench_log "namespaces: $NS_A $NS_B $NS_H via $NS_R; output: $OUT"

FAILED=0
for ((round = 1; round <= ROUNDS; round++)); do
    for case in "${CASES[@]}"; do
        run_case "$case" "$round" || FAILED=1
    done
done
block_direct off

LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)
STEAL_PCT=$(printf '%s\n%s\n' "$STAT_START" "$(head -n 1 /proc/stat)" | awk '
    { total[NR] = 0; for (i = 2; i <= NF; i++) total[NR] += $i; steal[NR] = $9 }
    END { d = total[2] - total[1]; printf "%.1f", (d > 0 ? 100 * (steal[2] - steal[1]) / d : 0) }')

# ---------------------------------------------------------------- results.json
# The metrics, in table order: key, label, unit, whether the relay-as-%-of-direct applies.
METRICS='[
  ["tcp1_mbps", "TCP, 1 stream", "Mbit/s", true],
  ["udp1400_mbps", "UDP 1400 B @ RATE: received", "Mbit/s", true],
  ["udp1400_loss_pct", "UDP 1400 B @ RATE: loss", "%", false],
  ["udp64_kpps", "UDP 64 B, max rate: received", "kpps", true],
  ["tcp1_vpnd_cpu_s_per_gb", "vpnd CPU per GB (both), TCP", "s/GB", true],
  ["udp1400_vpnd_cpu_s_per_gb", "vpnd CPU per GB (both), UDP 1400 B", "s/GB", true],
  ["tcp1_hub_cpu_s_per_gb", "vpnhub CPU per GB, TCP", "s/GB", false],
  ["udp1400_hub_cpu_s_per_gb", "vpnhub CPU per GB, UDP 1400 B", "s/GB", false],
  ["tcp1_gb_per_hub_cpu_s", "Gb per relay CPU-second, TCP", "Gb/s", false],
  ["udp1400_gb_per_hub_cpu_s", "Gb per relay CPU-second, UDP 1400 B", "Gb/s", false],
  ["udp64_gb_per_hub_cpu_s", "Gb per relay CPU-second, UDP 64 B", "Gb/s", false],
  ["tcp1_host_busy_pct", "machine CPU busy (all cores), TCP", "%", false],
  ["udp64_host_busy_pct", "machine CPU busy (all cores), UDP 64 B", "%", false],
  ["tcp1_retransmits", "TCP retransmits", "", false],
  ["tcp1_hub_rcvbuf_drops", "hub rcvbuf drops, TCP", "", false],
  ["tcp1_ab_rcvbuf_drops", "A+B rcvbuf drops, TCP", "", false],
  ["udp64_hub_rcvbuf_drops", "hub rcvbuf drops, UDP 64 B", "", false],
  ["udp64_ab_rcvbuf_drops", "A+B rcvbuf drops, UDP 64 B", "", false],
  ["path_ready_s", "start to path ready", "s", false]
]'
METRICS=${METRICS//RATE/$UDP_RATE}
# shellcheck disable=SC2016 # jq program
jq -s \
    --argjson metrics "$METRICS" --arg git "$GIT_REV" \
    --argjson duration "$DURATION" --argjson rounds "$ROUNDS" --argjson mtu "$MTU" --argjson quick "$QUICK" \
    --arg udp_rate "$UDP_RATE" --arg vpnd_version "$("$VPND" --version 2>/dev/null || echo unknown)" \
    --arg cpu "$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)" \
    --argjson nproc "$(nproc)" --arg kernel "$(uname -r)" \
    --arg load_start "$LOAD_START" --arg load_end "$LOAD_END" --argjson steal "$STEAL_PCT" '
    def median: map(select(. != null)) | sort |
        if length == 0 then null
        elif length % 2 == 1 then .[length / 2 | floor]
        else (.[length / 2 - 1] + .[length / 2]) / 2 end;
    sort_by(.round) as $rounds |
    (["relay", "relay-tcp", "direct"] | map(. as $c | {key: $c, value: (
        $metrics | map(.[0] as $m | {key: $m, value: ([$rounds[] | select(.case == $c and .ok) | .values[$m]] | median)})
        | from_entries)}) | from_entries) as $median |
    {schema: "vpn-bench-relay/2", time: (now | todate), git: $git, vpnd_version: $vpnd_version,
     options: {duration_s: $duration, rounds: $rounds, inner_mtu: $mtu, quick: ($quick == 1),
               udp_payload_bytes: [1400, 64], udp_offered: [$udp_rate, "unlimited"], relay_rate_mbit: 100000},
     host: {cpu: $cpu, nproc: $nproc, kernel: $kernel, loadavg_start: $load_start,
            loadavg_end: $load_end, steal_pct: $steal},
     metrics: ($metrics | map({key: .[0], label: .[1], unit: .[2]})),
     rounds: $rounds,
     median: $median,
     relay_pct_of_direct: ($metrics | map(select(.[3])) | map(.[0] as $m |
        {key: $m, value: ($median.relay[$m] as $r | $median.direct[$m] as $d |
            if $r != null and $d != null and $d != 0 then 100 * $r / $d else null end)}) | from_entries),
     relay_tcp_pct_of_direct: ($metrics | map(select(.[3])) | map(.[0] as $m |
        {key: $m, value: ($median["relay-tcp"][$m] as $r | $median.direct[$m] as $d |
            if $r != null and $d != null and $d != 0 then 100 * $r / $d else null end)}) | from_entries)}' \
    "$OUT"/raw/round-*.json >"$OUT/results.json"

# ---------------------------------------------------------------- table
{
    printf '\nRelay benchmark: medians of %s round(s), %s s per test, inner MTU %s\n' "$ROUNDS" "$DURATION" "$MTU"
    printf 'host: %s, %s cores, kernel %s; load %s at start, %s at end; steal %s%%\n' \
        "$(jq -r .host.cpu "$OUT/results.json")" "$(nproc)" "$(uname -r)" "$LOAD_START" "$LOAD_END" "$STEAL_PCT"
    jq -r '
        def fmt: if . == null then "-" elif . >= 100 then (. | round | tostring)
                 elif . >= 10 then ((. * 10 | round) / 10 | tostring)
                 else ((. * 100 | round) / 100 | tostring) end;
        . as $r |
        def pct: if . != null then (. | round | tostring) + " %" else "" end;
        (["metric", "relay", "relay tcp", "direct", "relay %", "relay tcp %"] | @tsv),
        (.metrics[] | . as $m |
            [$m.label + (if $m.unit != "" then " (" + $m.unit + ")" else "" end),
             ($r.median.relay[$m.key] | fmt), ($r.median["relay-tcp"][$m.key] | fmt),
             ($r.median.direct[$m.key] | fmt),
             ($r.relay_pct_of_direct[$m.key] | pct), ($r.relay_tcp_pct_of_direct[$m.key] | pct)]
            | @tsv)
    ' "$OUT/results.json" | awk -F'\t' '
        { for (i = 1; i <= NF; i++) { cell[NR, i] = $i; if (length($i) > w[i]) w[i] = length($i) } n = NR; if (NF > nf) nf = NF }
        END { for (r = 1; r <= n; r++) { line = sprintf("%-" w[1] "s", cell[r, 1]);
                for (i = 2; i <= nf; i++) line = line sprintf("  %" w[i] "s", cell[r, i]); print line
                if (r == 1) { s = ""; for (i = 1; i <= nf; i++) s = s (i > 1 ? "  " : "") sprintf("%" w[i] "s", ""); gsub(/ /, "-", s); print s } } }'
    failed=$(jq -r '[.rounds[] | select(.ok | not) | "\(.case) round \(.round): \(.error)"] | join("\n")' "$OUT/results.json")
    [[ -z $failed ]] || printf '\nFAILED:\n%s\n' "$failed"
} | tee "$OUT/table.txt"
if command -v gnuplot >/dev/null; then
    "$REPO/bench/relay-chart.sh" "$OUT/results.json" "$OUT/chart.png" >/dev/null 2>"$OUT/raw/gnuplot.log" ||
        bench_log "the chart failed (see $OUT/raw/gnuplot.log)"
else
    bench_log "gnuplot not found: no chart"
fi
printf '\nresults: %s/results.json%s\n' "$OUT" "$([[ -f $OUT/chart.png ]] && echo ", chart: $OUT/chart.png")"
((FAILED == 0)) || exit 2
