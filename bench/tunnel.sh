#!/usr/bin/env bash
# Side-by-side tunnel benchmark: vpnd, wireguard-go, boringtun and the bare veth (as root).
#
# Creates two network namespaces joined by a veth link (MTU 1500) and, for each
# implementation in turn, runs a pair of its daemons over that link, one per namespace, and
# pushes traffic from side A to side B through the tunnel. The implementations take turns
# (A B C D, A B C D, ...) for several rounds, so that a change in the machine's load hits all
# of them alike; the report gives medians over the rounds and each median's ratio to
# wireguard-go's from the same run. `veth` runs the same tests over the bare link, as the
# ceiling.
#
# Tests (client in A, server in B):
#   ping idle         RTT of 100 pings (50 for tests under 5 s), 20 ms apart, on an idle
#                     tunnel (median)
#   TCP 1 / 4         iperf3 TCP, 1 stream and 4 streams: received rate
#   ping under load   RTT of pings 50 ms apart during the TCP 1-stream test (median)
#   UDP 1400 B        iperf3 UDP, 1400-byte payloads offered at 300 Mb/s and at 1 Gb/s:
#                     received rate and loss
#   UDP 64 B          iperf3 UDP, 64-byte payloads, unlimited rate: received packets/s
#                     (the UDP tests give iperf3 2 MiB socket buffers, -w 2M, so that a
#                     receiving iperf3 that waits for a CPU does not drop what the tunnel
#                     delivered)
#   CPU               CPU seconds (user + system, from /proc/<pid>/stat) both daemons used
#                     per GB received, for the TCP and 1 Gb/s UDP tests
#   memory            VmRSS of each daemon once the tunnel is up (idle) and VmHWM (peak) at
#                     the end; the larger of the two daemons is reported
#
# Inner MTU 1440 over the 1500-byte veth (1500 - 20 IPv4 - 8 UDP - 32 WireGuard), so that a
# 1400-byte UDP payload (1428-byte packet) is not fragmented; --mtu changes it.
#
# How each implementation is set up: every daemon runs in its side's network namespace and
# in a mount namespace of its own with a private tmpfs on /run, so each serves
# /var/run/wireguard/<if>.sock without colliding with the other side's; `wg` for a side runs
# in that daemon's namespaces (nsenter).
#   vpnd          `vpnd --config side.yaml` (its YAML: key, port, address, MTU, the peer), built
#                 with `cargo build --release --bins`; `wg show` reads it through its UAPI socket.
#   wireguard-go  `wireguard-go -f <if>` (Debian package), then `wg setconf`, `ip address`,
#                 `ip link set mtu … up`.
#   boringtun     `boringtun-cli --foreground --disable-drop-privileges <if>`, installed with
#                 `cargo install boringtun-cli --locked` into the cache directory if it is not
#                 on PATH; configured like wireguard-go.
# Each daemon keeps its default log level and thread count.
#
# Output: a table on the terminal, DIR/results.json (every round and the medians and ratios),
# DIR/chart.png (gnuplot), DIR/table.txt, and under DIR/raw the daemons' logs, every iperf3
# report and ping output, the chart's data and `lscpu`.
#
# Usage: bench/tunnel.sh [options]
#   --impls LIST      comma-separated, from vpnd,wireguard-go,boringtun,veth (default: all)
#   --duration S      seconds per iperf3 test (default 10)
#   --rounds N        rounds (default 3)
#   --out DIR         output directory (default bench/results/tunnel-<date>-<time>)
#   --quick           CI smoke: 2 s per test, 1 round, vpnd and veth (--impls, --duration and
#                     --rounds still apply when given)
#   --mtu N           inner MTU of the tunnels (default 1440)
#   --vpnd PATH       use this vpnd binary instead of building one
#   --no-install      do not install missing packages (the chart is skipped without gnuplot)
#   --cleanup         only remove namespaces left by killed runs, then exit
# Environment: VPN_BENCH_CACHE (default ~/.cache/vpn-bench) holds boringtun-cli.
#
# Exit status: 0 all went well; 1 a setup error; 2 an implementation failed in some round
# (its figures from that round are missing; the others are still reported).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BENCH_NAME=tunnel
# shellcheck source=bench/lib.sh
source "$REPO/bench/lib.sh"

ALL_IMPLS=vpnd,wireguard-go,boringtun,veth
IMPLS='' DURATION='' ROUNDS='' OUT='' VPND=${VPND:-} QUICK=0 MTU=1440 INSTALL=1
NS_PREFIX=vpbench
CACHE=${VPN_BENCH_CACHE:-${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/vpn-bench}

usage() { sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; }

while [[ $# -gt 0 ]]; do
    case "$1" in
        --impls) IMPLS=$2; shift 2 ;;
        --duration) DURATION=$2; shift 2 ;;
        --rounds) ROUNDS=$2; shift 2 ;;
        --out) OUT=$2; shift 2 ;;
        --quick) QUICK=1; shift ;;
        --mtu) MTU=$2; shift 2 ;;
        --vpnd) VPND=$2; shift 2 ;;
        --no-install) INSTALL=0; shift ;;
        --cleanup)
            bench_require_root
            bench_cleanup_stale "$NS_PREFIX"
            exit 0
            ;;
        -h | --help) usage; exit 0 ;;
        *) echo "tunnel.sh: unknown argument: $1 (try --help)" >&2; exit 64 ;;
    esac
done
if [[ $QUICK == 1 ]]; then
    IMPLS=${IMPLS:-vpnd,veth} DURATION=${DURATION:-2} ROUNDS=${ROUNDS:-1}
fi
IMPLS=${IMPLS:-$ALL_IMPLS} DURATION=${DURATION:-10} ROUNDS=${ROUNDS:-3}
if ! [[ $DURATION =~ ^[0-9]+$ ]] || ((DURATION < 2)); then
    bench_die "--duration must be a whole number of seconds, at least 2"
fi
if ! [[ $ROUNDS =~ ^[0-9]+$ ]] || ((ROUNDS < 1)); then
    bench_die "--rounds must be at least 1"
fi
if ! [[ $MTU =~ ^[0-9]+$ ]] || ((MTU < 1280 || MTU > 1440)); then
    bench_die "--mtu must be 1280 to 1440"
fi
IFS=, read -r -a IMPL_LIST <<<"$IMPLS"
[[ ${#IMPL_LIST[@]} -gt 0 ]] || bench_die "--impls is empty"
declare -A SEEN=()
for impl in "${IMPL_LIST[@]}"; do
    case "$impl" in
        vpnd | wireguard-go | boringtun | veth) ;;
        *) bench_die "unknown implementation '$impl' (choose from $ALL_IMPLS)" ;;
    esac
    [[ -z ${SEEN[$impl]:-} ]] || bench_die "--impls names $impl twice"
    SEEN[$impl]=1
done
uses() { [[ -n ${SEEN[$1]:-} ]]; }
bench_require_root

# ---------------------------------------------------------------- tools
packages=(iproute2 iputils-ping iperf3 jq util-linux procps)
TUNNELS=0
if uses vpnd || uses wireguard-go || uses boringtun; then
    TUNNELS=1
    packages+=(wireguard-tools)
fi
if uses wireguard-go; then packages+=(wireguard-go); fi
if [[ $INSTALL == 1 ]]; then
    bench_apt_install "${packages[@]}" gnuplot-nox
fi
for tool in ip ping iperf3 jq nsenter unshare setpriv ss; do
    command -v "$tool" >/dev/null || bench_die "missing $tool (install: ${packages[*]})"
done
if [[ $TUNNELS == 1 ]]; then
    command -v wg >/dev/null || bench_die "missing wg (install wireguard-tools)"
fi
uses wireguard-go && { command -v wireguard-go >/dev/null || bench_die "missing wireguard-go"; }
HAVE_GNUPLOT=0
command -v gnuplot >/dev/null && HAVE_GNUPLOT=1
[[ $HAVE_GNUPLOT == 1 ]] || bench_log "gnuplot not found: no chart"

BORINGTUN=
if uses boringtun; then
    BORINGTUN=$(command -v boringtun-cli || true)
    [[ -n $BORINGTUN ]] || BORINGTUN="$CACHE/bin/boringtun-cli"
    if [[ ! -x $BORINGTUN ]]; then
        [[ $INSTALL == 1 ]] || bench_die "boringtun-cli not found (on PATH or in $CACHE/bin)"
        bench_cargo_path || bench_die "cargo is needed to install boringtun-cli"
        bench_log "cargo install boringtun-cli --locked --root $CACHE (once; takes a few minutes)"
        cargo install boringtun-cli --locked --root "$CACHE" >&2
    fi
fi
if uses vpnd && [[ -z $VPND ]]; then
    bench_cargo_path || bench_die "cargo not found; install Rust (see README.md) or pass --vpnd"
    bench_log "cargo build --release --bins"
    (cd "$REPO" && cargo build --release --bins --quiet)
    VPND="$(bench_cargo_target_dir "$REPO")/release/vpnd"
fi
if uses vpnd; then
    [[ -x $VPND ]] || bench_die "no executable vpnd at $VPND"
fi

# ---------------------------------------------------------------- run state
OUT=${OUT:-$REPO/bench/results/tunnel-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT/raw"
OUT=$(cd "$OUT" && pwd)
WORK=$(mktemp -d /tmp/vpn-tunnel.XXXXXX)
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

NS_A="$NS_PREFIX-$$-a" NS_B="$NS_PREFIX-$$-b"
UNDER_A=10.77.0.1 UNDER_B=10.77.0.2   # veth
TUN_A=10.78.0.1 TUN_B=10.78.0.2       # tunnel
IFACE=wgb0
PORT=51820
IPERF_PORT=5201
CLK_TCK=$(getconf CLK_TCK)
PING_INTERVAL=0.02
PING_IDLE_COUNT=$((DURATION >= 5 ? 100 : 50))

# ---------------------------------------------------------------- topology
bench_cleanup_stale "$NS_PREFIX"
bench_netns_add "$NS_A"
bench_netns_add "$NS_B"
ip link add vb-a mtu 1500 netns "$NS_A" type veth peer name vb-b mtu 1500 netns "$NS_B"
ip -n "$NS_A" address add "$UNDER_A/24" dev vb-a
ip -n "$NS_B" address add "$UNDER_B/24" dev vb-b
ip -n "$NS_A" link set vb-a up
ip -n "$NS_B" link set vb-b up
bench_wait_for 5 ip netns exec "$NS_A" ping -c 1 -W 1 "$UNDER_B" || bench_die "the veth link does not work"

umask 077
KEY_A=$(wg genkey 2>/dev/null || head -c 32 /dev/urandom | base64 -w0)
KEY_B=$(wg genkey 2>/dev/null || head -c 32 /dev/urandom | base64 -w0)
umask 022

# ---------------------------------------------------------------- daemons
PID_A='' PID_B=''

# wg_conf SIDE: a wg(8) configuration for one side.
wg_conf() {
    local key=$KEY_A peer_key=$KEY_B peer_tun=$TUN_B peer_under=$UNDER_B
    if [[ $1 == b ]]; then
        key=$KEY_B peer_key=$KEY_A peer_tun=$TUN_A peer_under=$UNDER_A
    fi
    printf '[Interface]\nPrivateKey = %s\nListenPort = %s\n\n[Peer]\nPublicKey = %s\nAllowedIPs = %s/32\nEndpoint = %s:%s\n' \
        "$key" "$PORT" "$(wg pubkey <<<"$peer_key")" "$peer_tun" "$peer_under" "$PORT"
}

# vpnd_conf SIDE: vpnd's YAML for one side.
vpnd_conf() {
    local key=$KEY_A peer_key=$KEY_B tun=$TUN_A peer_tun=$TUN_B peer_under=$UNDER_B
    if [[ $1 == b ]]; then
        key=$KEY_B peer_key=$KEY_A tun=$TUN_B peer_tun=$TUN_A peer_under=$UNDER_A
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
peers:
  - public_key: $(wg pubkey <<<"$peer_key")
    allowed_ips: [$peer_tun/32]
    endpoint: $peer_under:$PORT
EOF
}

uapi_ready() { bench_in_ns_of "$1" test -S "/run/wireguard/$IFACE.sock"; }

# start_side IMPL SIDE TAG: starts and configures one daemon; sets PID_A or PID_B.
start_side() {
    local impl=$1 side=$2 tag=$3 ns=$NS_A tun=$TUN_A pid log
    [[ $side == b ]] && ns=$NS_B tun=$TUN_B
    log="$OUT/raw/$tag-daemon-$side.log"
    case "$impl" in
        vpnd)
            (umask 077 && vpnd_conf "$side" >"$WORK/vpnd-$side.yaml")
            bench_spawn_private_run "$ns" "$log" "$VPND" --config "$WORK/vpnd-$side.yaml"
            ;;
        wireguard-go)
            bench_spawn_private_run "$ns" "$log" wireguard-go -f "$IFACE"
            ;;
        boringtun)
            bench_spawn_private_run "$ns" "$log" "$BORINGTUN" --foreground --disable-drop-privileges "$IFACE"
            ;;
    esac
    pid=$BENCH_SPAWNED_PID
    if [[ $side == a ]]; then PID_A=$pid; else PID_B=$pid; fi
    if ! bench_wait_for 15 uapi_ready "$pid"; then
        bench_log "$impl ($side) did not serve its UAPI socket within 15 s:"
        tail -n 5 "$log" >&2
        return 1
    fi
    if [[ $impl != vpnd ]]; then
        (umask 077 && wg_conf "$side" >"$WORK/wg-$side.conf")
        bench_in_ns_of "$pid" wg setconf "$IFACE" "$WORK/wg-$side.conf" || return 1
        ip -n "$ns" address add "$tun/24" dev "$IFACE" || return 1
        ip -n "$ns" link set "$IFACE" mtu "$MTU" up || return 1
    fi
}

stop_pair() {
    local pid ns
    for pid in "$PID_A" "$PID_B"; do
        [[ -n $pid ]] && bench_stop_pid "$pid" 5
    done
    PID_A='' PID_B=''
    # A daemon's TUN goes with its last descriptor; make sure before the next one starts.
    for ns in "$NS_A" "$NS_B"; do
        bench_wait_for 5 bash -c "! ip -n '$ns' link show '$IFACE' >/dev/null 2>&1" ||
            ip -n "$ns" link del "$IFACE" 2>/dev/null || true
    done
}

daemons_alive() {
    [[ -z $PID_A ]] || kill -0 "$PID_A" 2>/dev/null || return 1
    [[ -z $PID_B ]] || kill -0 "$PID_B" 2>/dev/null || return 1
}

cpu_ticks_both() {
    local sum=0 pid t
    for pid in "$PID_A" "$PID_B"; do
        [[ -n $pid ]] || continue
        t=$(bench_cpu_ticks "$pid")
        sum=$((sum + ${t:-0}))
    done
    echo "$sum"
}

# Larger of the two daemons' /proc/<pid>/status FIELD, in MiB; "null" without daemons.
max_status_mib() {
    local best='' pid kib
    for pid in "$PID_A" "$PID_B"; do
        [[ -n $pid ]] || continue
        kib=$(bench_status_kib "$pid" "$1")
        [[ -n $kib ]] && { [[ -z $best ]] || ((kib > best)); } && best=$kib
    done
    if [[ -n $best ]]; then awk -v k="$best" 'BEGIN { printf "%.1f", k / 1024 }'; else echo null; fi
}

# ---------------------------------------------------------------- measurements
# Each measurement appends "key value" lines to $VALUES ("null" when it could not be taken).
VALUES=
put() { printf '%s %s\n' "$1" "${2:-null}" >>"$VALUES"; }

# median_rtt FILE: median of the "time=X ms" values in ping output; "null" if none.
median_rtt() {
    sed -n 's/.* time=\([0-9.]*\) ms.*/\1/p' "$1" | sort -n |
        awk '{ v[NR] = $1 } END { if (NR == 0) print "null"; else if (NR % 2) print v[(NR + 1) / 2];
              else printf "%.4g\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# iperf TAG NAME DST ARGS...: one iperf3 test from A to DST in B with a one-shot server;
# the client's JSON report goes to $OUT/raw/TAG-NAME.json. Bounded by -t and timeout.
iperf() {
    local tag=$1 name=$2 dst=$3 spid i
    shift 3
    bench_spawn "$NS_B" "$OUT/raw/$tag-$name-server.log" iperf3 -s -1 -p "$IPERF_PORT"
    spid=$BENCH_SPAWNED_PID
    bench_wait_for 5 bash -c "[[ -n \$(ip netns exec '$NS_B' ss -Hltn 'sport = :$IPERF_PORT') ]]" ||
        bench_log "iperf3 server not listening after 5 s"
    ip netns exec "$NS_A" timeout $((DURATION + 15)) iperf3 -c "$dst" -p "$IPERF_PORT" \
        -t "$DURATION" -J --connect-timeout 3000 "$@" >"$OUT/raw/$tag-$name.json" 2>"$OUT/raw/$tag-$name.stderr" || true
    for ((i = 0; i < 100; i++)); do
        kill -0 "$spid" 2>/dev/null || break
        sleep 0.05
    done
    bench_stop_pid "$spid" 1
}

# jnum FILE FILTER: a number from an iperf3 report, or "null".
jnum() { jq -r "($2) // null | if type == \"number\" then . else null end" "$1" 2>/dev/null || echo null; }

# measured TAG NAME DST ARGS...: iperf with the daemons' CPU time; puts NAME_mbps, and
# NAME_cpu_s_per_gb for tunnels.
measured() {
    local tag=$1 name=$2 before after report bytes
    before=$(cpu_ticks_both)
    iperf "$@"
    after=$(cpu_ticks_both)
    report="$OUT/raw/$tag-$name.json"
    local err
    err=$(jq -r '.error // empty' "$report" 2>/dev/null || echo "no JSON report")
    [[ -z $err ]] || bench_log "$tag $name: iperf3: $err"
    bytes=$(jnum "$report" .end.sum_received.bytes)
    put "${name}_mbps" "$(jq -r '(.end.sum_received.bits_per_second // null) | if . then . / 1e6 else null end' "$report" 2>/dev/null || echo null)"
    if [[ -n $PID_A && $bytes != null && $bytes != 0 ]]; then
        put "${name}_cpu_s_per_gb" "$(awk -v t=$((after - before)) -v hz="$CLK_TCK" -v b="$bytes" \
            'BEGIN { printf "%.3f", t / hz / (b / 1e9) }')"
    else
        put "${name}_cpu_s_per_gb" null
    fi
}

# run_impl IMPL ROUND: one implementation's turn; writes $OUT/raw/IMPL-rROUND.values.
run_impl() {
    local impl=$1 round=$2 tag="$1-r$2" dst=$TUN_B src_ns=$NS_A ok=true error="" ppid n
    VALUES="$OUT/raw/$tag.values"
    : >"$VALUES"
    bench_log "round $round/$ROUNDS: $impl"
    if [[ $impl == veth ]]; then
        dst=$UNDER_B
    else
        if ! start_side "$impl" a "$tag" || ! start_side "$impl" b "$tag"; then
            error="$impl did not start or could not be configured"
        fi
    fi
    if [[ -z $error ]]; then
        # Handshake and both directions: up to 10 tries of 1 s each way.
        if ! bench_wait_for 10 ip netns exec "$src_ns" ping -c 1 -W 1 "$dst" ||
            { [[ $impl != veth ]] && ! bench_wait_for 10 ip netns exec "$NS_B" ping -c 1 -W 1 "$TUN_A"; }; then
            error="no ping through the $impl tunnel"
        fi
    fi
    if [[ -n $error ]]; then
        bench_log "$tag: $error"
        stop_pair
        jq -n --arg impl "$impl" --argjson round "$round" --arg error "$error" \
            '{impl: $impl, round: $round, ok: false, error: $error, values: {}}' >"$OUT/raw/round-$tag.json"
        return 1
    fi
    sleep 0.5
    put rss_idle_mib "$(max_status_mib VmRSS)"

    ip netns exec "$NS_A" timeout 30 ping -n -c "$PING_IDLE_COUNT" -i "$PING_INTERVAL" -W 1 "$dst" \
        >"$OUT/raw/$tag-ping-idle.txt" 2>&1 || true
    put ping_idle_ms "$(median_rtt "$OUT/raw/$tag-ping-idle.txt")"

    # Pings during the TCP 1-stream test, from 1 s after it starts until 1 s before it ends.
    n=$(((DURATION - 2) * 20))
    ((n >= 10)) || n=10
    # shellcheck disable=SC2016 # $0, $1 and $2 belong to the inner shell
    bench_spawn "$NS_A" "$OUT/raw/$tag-ping-load.txt" \
        sh -c 'sleep 1 && exec timeout "$0" ping -n -c "$1" -i 0.05 -W 1 "$2"' $((DURATION + 10)) "$n" "$dst"
    ppid=$BENCH_SPAWNED_PID
    measured "$tag" tcp1 "$dst"
    bench_stop_pid "$ppid" 5
    put ping_load_ms "$(median_rtt "$OUT/raw/$tag-ping-load.txt")"
    put tcp1_retransmits "$(jnum "$OUT/raw/$tag-tcp1.json" .end.sum_sent.retransmits)"

    measured "$tag" tcp4 "$dst" -P 4
    put tcp4_retransmits "$(jnum "$OUT/raw/$tag-tcp4.json" .end.sum_sent.retransmits)"

    measured "$tag" udp300 "$dst" -u -l 1400 -b 300M -w 2M
    put udp300_loss_pct "$(jnum "$OUT/raw/$tag-udp300.json" .end.sum_received.lost_percent)"
    measured "$tag" udp1g "$dst" -u -l 1400 -b 1G -w 2M
    put udp1g_loss_pct "$(jnum "$OUT/raw/$tag-udp1g.json" .end.sum_received.lost_percent)"
    measured "$tag" udp64 "$dst" -u -l 64 -b 0 -w 2M
    put udp64_kpps "$(jq -r '.end.sum_received | if . and .seconds > 0
        then (.packets - .lost_packets) / .seconds / 1000 else null end' \
        "$OUT/raw/$tag-udp64.json" 2>/dev/null || echo null)"
    put udp64_loss_pct "$(jnum "$OUT/raw/$tag-udp64.json" .end.sum_received.lost_percent)"

    put rss_peak_mib "$(max_status_mib VmHWM)"
    if ! daemons_alive; then
        ok=false error="a $impl daemon exited during the tests"
        bench_log "$tag: $error"
    fi
    if [[ $impl != veth && $ok == true ]]; then
        bench_in_ns_of "$PID_A" wg show "$IFACE" >"$OUT/raw/$tag-wg-show-a.txt" 2>&1 || true
    fi
    stop_pair
    jq -Rn --arg impl "$impl" --argjson round "$round" --argjson ok "$ok" --arg error "$error" \
        '{impl: $impl, round: $round, ok: $ok, error: (if $error == "" then null else $error end),
          values: ([inputs | select(length > 0) | split(" ") | {(.[0]): (.[1] | tonumber? // null)}] | add // {})}' \
        <"$VALUES" >"$OUT/raw/round-$tag.json"
    [[ $ok == true ]]
}

# ---------------------------------------------------------------- environment
version_of() {
    case "$1" in
        vpnd) "$VPND" --version 2>/dev/null | awk '{ print $2 }' ;;
        wireguard-go) wireguard-go --version 2>/dev/null | awk 'NR == 1 { print $2 }' ;;
        boringtun) "$BORINGTUN" --version 2>/dev/null | awk '{ print $2 }' ;;
        veth) echo "kernel $(uname -r)" ;;
    esac
}
lscpu >"$OUT/raw/lscpu.txt" 2>&1 || true
STAT_START=$(head -n 1 /proc/stat)
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
GIT_REV=$(git -C "$REPO" describe --always --dirty 2>/dev/null || echo unknown)
bench_log "implementations: ${IMPL_LIST[*]}; $ROUNDS round(s) of ${DURATION} s tests; inner MTU $MTU; load $LOAD_START"
bench_log "namespaces: $NS_A $NS_B; output: $OUT"

# ---------------------------------------------------------------- the run
FAILED=0
for ((round = 1; round <= ROUNDS; round++)); do
    for impl in "${IMPL_LIST[@]}"; do
        run_impl "$impl" "$round" || FAILED=1
    done
done

LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)
STEAL_PCT=$(printf '%s\n%s\n' "$STAT_START" "$(head -n 1 /proc/stat)" | awk '
    { total[NR] = 0; for (i = 2; i <= NF; i++) total[NR] += $i; steal[NR] = $9 }
    END { d = total[2] - total[1]; printf "%.1f", (d > 0 ? 100 * (steal[2] - steal[1]) / d : 0) }')

versions='{}'
for impl in "${IMPL_LIST[@]}"; do
    versions=$(jq --arg k "$impl" --arg v "$(version_of "$impl")" '. + {($k): $v}' <<<"$versions")
done
rustc_version=$( (bench_cargo_path && rustc --version) 2>/dev/null || echo unknown)

# ---------------------------------------------------------------- results.json
# The metrics, in table order: key, label, unit, whether higher is better.
METRICS='[
  ["tcp1_mbps", "TCP, 1 stream", "Mbit/s", true],
  ["tcp4_mbps", "TCP, 4 streams", "Mbit/s", true],
  ["udp300_mbps", "UDP 1400 B @ 300M: received", "Mbit/s", true],
  ["udp300_loss_pct", "UDP 1400 B @ 300M: loss", "%", false],
  ["udp1g_mbps", "UDP 1400 B @ 1G: received", "Mbit/s", true],
  ["udp1g_loss_pct", "UDP 1400 B @ 1G: loss", "%", false],
  ["udp64_kpps", "UDP 64 B, max rate: received", "kpps", true],
  ["ping_idle_ms", "ping, idle (median)", "ms", false],
  ["ping_load_ms", "ping, during TCP 1 stream", "ms", false],
  ["tcp1_cpu_s_per_gb", "CPU per GB, TCP 1 stream", "s/GB", false],
  ["tcp4_cpu_s_per_gb", "CPU per GB, TCP 4 streams", "s/GB", false],
  ["udp1g_cpu_s_per_gb", "CPU per GB, UDP @ 1G", "s/GB", false],
  ["rss_idle_mib", "RSS idle (VmRSS)", "MiB", false],
  ["rss_peak_mib", "RSS peak (VmHWM)", "MiB", false],
  ["tcp1_retransmits", "TCP 1 stream retransmits", "", false],
  ["tcp4_retransmits", "TCP 4 streams retransmits", "", false]
]'
# shellcheck disable=SC2016 # jq program
jq -s \
    --argjson metrics "$METRICS" --argjson impls "$(printf '%s\n' "${IMPL_LIST[@]}" | jq -R . | jq -s .)" \
    --argjson versions "$versions" --arg rustc "$rustc_version" --arg git "$GIT_REV" \
    --argjson duration "$DURATION" --argjson rounds "$ROUNDS" --argjson mtu "$MTU" --argjson quick "$QUICK" \
    --arg cpu "$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)" \
    --argjson nproc "$(nproc)" --arg kernel "$(uname -r)" \
    --arg load_start "$LOAD_START" --arg load_end "$LOAD_END" --argjson steal "$STEAL_PCT" '
    def median: map(select(. != null)) | sort |
        if length == 0 then null
        elif length % 2 == 1 then .[length / 2 | floor]
        else (.[length / 2 - 1] + .[length / 2]) / 2 end;
    sort_by(.round) as $rounds |
    ($impls | map(. as $i | {key: $i, value: (
        $metrics | map(.[0] as $m | {key: $m, value: ([$rounds[] | select(.impl == $i and .ok) | .values[$m]] | median)})
        | from_entries)}) | from_entries) as $median |
    {schema: "vpn-bench-tunnel/1", time: (now | todate), git: $git,
     options: {impls: $impls, duration_s: $duration, rounds: $rounds, inner_mtu: $mtu, quick: ($quick == 1),
               udp_payload_bytes: [1400, 64], udp_offered: ["300M", "1G", "unlimited"]},
     host: {cpu: $cpu, nproc: $nproc, kernel: $kernel, loadavg_start: $load_start,
            loadavg_end: $load_end, steal_pct: $steal},
     versions: ($versions + {rustc: $rustc}),
     metrics: ($metrics | map({key: .[0], label: .[1], unit: .[2], higher_is_better: .[3]})),
     rounds: $rounds,
     median: $median,
     ratio_to_wireguard_go: (if $median["wireguard-go"] then
        ($impls | map(. as $i | {key: $i, value: ($metrics | map(.[0] as $m |
            {key: $m, value: ($median[$i][$m] as $v | $median["wireguard-go"][$m] as $w |
                if $v != null and $w != null and $w != 0 then $v / $w else null end)}) | from_entries)})
         | from_entries) else null end)}' \
    "$OUT"/raw/round-*.json >"$OUT/results.json"

# ---------------------------------------------------------------- table
{
    printf '\nSide-by-side tunnel benchmark: medians of %s round(s), %s s per test, inner MTU %s\n' \
        "$ROUNDS" "$DURATION" "$MTU"
    printf 'host: %s, %s cores, kernel %s; load %s at start, %s at end; steal %s%%\n' \
        "$(jq -r .host.cpu "$OUT/results.json")" "$(nproc)" "$(uname -r)" "$LOAD_START" "$LOAD_END" "$STEAL_PCT"
    uses wireguard-go && printf '(x.xx) = ratio to wireguard-go\n'
    jq -r '
        def fmt: if . == null then "-" elif . >= 100 then (. | round | tostring)
                 elif . >= 10 then ((. * 10 | round) / 10 | tostring)
                 else ((. * 100 | round) / 100 | tostring) end;
        . as $r |
        (["metric"] + .options.impls | @tsv),
        (.metrics[] | . as $m |
            ([$m.label + (if $m.unit != "" then " (" + $m.unit + ")" else "" end)] +
             ($r.options.impls | map(. as $i | ($r.median[$i][$m.key] | fmt) +
                (if $r.ratio_to_wireguard_go and $r.ratio_to_wireguard_go[$i][$m.key] != null
                    and $i != "wireguard-go" and $i != "veth" and ($m.key | test("retransmits|loss") | not)
                 then " (" + ($r.ratio_to_wireguard_go[$i][$m.key] | fmt) + ")" else "" end)))) | @tsv)
    ' "$OUT/results.json" | awk -F'\t' '
        { for (i = 1; i <= NF; i++) { cell[NR, i] = $i; if (length($i) > w[i]) w[i] = length($i) } n = NR; if (NF > nf) nf = NF }
        END { for (r = 1; r <= n; r++) { line = sprintf("%-" w[1] "s", cell[r, 1]);
                for (i = 2; i <= nf; i++) line = line sprintf("  %" w[i] "s", cell[r, i]); print line
                if (r == 1) { s = ""; for (i = 1; i <= nf; i++) s = s (i > 1 ? "  " : "") sprintf("%" w[i] "s", ""); gsub(/ /, "-", s); print s } } }'
    failed=$(jq -r '[.rounds[] | select(.ok | not) | "\(.impl) round \(.round): \(.error)"] | join("\n")' "$OUT/results.json")
    [[ -z $failed ]] || printf '\nFAILED:\n%s\n' "$failed"
} | tee "$OUT/table.txt"

# ---------------------------------------------------------------- chart
if [[ $HAVE_GNUPLOT == 1 ]]; then
    # One data file per panel: a row per test, a column per implementation ("?" = missing).
    # panel FILE TITLE KEY:LABEL... prints the gnuplot commands for one panel ("_" in a label
    # is a space); set LOGSCALE=1 for a logarithmic y axis.
    NIMPL=${#IMPL_LIST[@]}
    panel() {
        local file=$WORK/$1 title=$2
        shift 2
        jq -r --arg rows "$*" '
            . as $r | ($rows | split(" ") | map(split(":"))) as $rows |
            (["test"] + .options.impls | map("\"" + . + "\"") | join(" ")),
            ($rows[] | . as $row | (["\"" + ($row[1] | gsub("_"; " ")) + "\""] +
                ($r.options.impls | map($r.median[.][$row[0]] | if . == null then "?" else tostring end))) | join(" "))
        ' "$OUT/results.json" >"$file"
        printf 'set title "%s"\nset xrange [-0.6:%s.4]\n' "$title" $(($# - 1))
        if [[ ${LOGSCALE:-0} == 1 ]]; then
            printf 'set logscale y\nset yrange [*:*]\n'
        else
            printf 'unset logscale y\nset yrange [0:*]\n'
        fi
        # Any number in the implementations' columns (the last ones; the label has spaces)?
        if awk -v n="$NIMPL" 'NR > 1 { for (i = NF - n + 1; i <= NF; i++) if ($i != "?") found = 1 }
                END { exit !found }' "$file"; then
            # Bar k (0-based) of a cluster of n with gap 1 sits at x = row + (k - (n-1)/2) / (n+1).
            printf 'plot for [i=2:%s] "%s" using i:xtic(1), \\\n' $((NIMPL + 1)) "$file"
            # shellcheck disable=SC2016 # gnuplot's $0
            printf '  for [i=2:%s] "%s" using ($0 + (i - 2 - (%s - 1) / 2.0) / %s.0):i:(fmt(column(i))) with labels offset 0,0.7 font ",8" notitle\n' \
                $((NIMPL + 1)) "$file" "$NIMPL" $((NIMPL + 1))
        else
            printf 'unset logscale y\nset yrange [0:1]\nunset xtics\nset label 1 "no data for these implementations" at graph 0.5, 0.5 center\n'
            printf 'plot -1 notitle\nunset label 1\nset xtics\n'
        fi
    }
    title="${IMPL_LIST[*]}: medians of $ROUNDS round(s), $DURATION s per test, inner MTU $MTU, $(nproc) cores, load $LOAD_START at start ($(date +%F))"
    {
        printf '%s\n' 'set terminal pngcairo size 1600,900 font "sans,10"' \
            "set output \"$OUT/chart.png\"" \
            'set datafile missing "?"' 'set style data histograms' \
            'set style histogram clustered gap 1' 'set style fill solid 0.85 border -1' \
            'set boxwidth 0.9' 'set key top left autotitle columnhead' 'set grid ytics' \
            'fmt(x) = x >= 100 ? sprintf("%.0f", x) : x >= 10 ? sprintf("%.1f", x) : x >= 1 ? sprintf("%.2f", x) : sprintf("%.3f", x)' \
            'set offsets 0, 0, graph 0.1, 0' \
            "set multiplot layout 2,3 title \"$title\""
        LOGSCALE=1 panel tcp.dat "TCP received (Mbit/s, log scale; higher is better)" \
            tcp1_mbps:1_stream tcp4_mbps:4_streams
        panel udp.dat "UDP 1400 B received at an offered rate (Mbit/s; higher is better)" \
            udp300_mbps:300_Mbit/s udp1g_mbps:1_Gbit/s
        panel pps.dat "UDP 64 B at max rate (kpps received; higher is better)" udp64_kpps:64-byte_payloads
        panel ping.dat "Ping RTT, median (ms; lower is better)" ping_idle_ms:idle ping_load_ms:during_TCP_1_stream
        panel cpu.dat "Daemon CPU per GB received, both ends (s/GB; lower is better)" \
            tcp1_cpu_s_per_gb:TCP_1_stream tcp4_cpu_s_per_gb:TCP_4_streams udp1g_cpu_s_per_gb:UDP_1_Gbit/s
        panel rss.dat "Daemon memory, larger of the two (MiB; lower is better)" \
            rss_idle_mib:idle_VmRSS rss_peak_mib:peak_VmHWM
        echo "unset multiplot"
    } >"$WORK/chart.gp"
    cp "$WORK"/*.dat "$WORK/chart.gp" "$OUT/raw/"
    gnuplot "$WORK/chart.gp" >"$OUT/raw/gnuplot.log" 2>&1 || bench_log "gnuplot failed (see $OUT/raw/gnuplot.log)"
fi
printf '\nresults: %s/results.json%s\n' "$OUT" "$([[ -f $OUT/chart.png ]] && echo ", chart: $OUT/chart.png")"
((FAILED == 0)) || exit 2
