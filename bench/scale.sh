#!/usr/bin/env bash
# Start-up time and memory of vpnd with many peers and allowed-IP prefixes (as root).
#
# Writes a configuration with N peers and M allowed-IP prefixes in all, starts vpnd with it in
# a network namespace of its own, and measures:
#   ready_ms      launch until the control socket answers `stats` (the daemon is up: TUN,
#                 sockets, every peer and every route installed)
#   cpu_ms        CPU time (user + system) vpnd used until then: less sensitive to the load
#                 of a shared machine than ready_ms
#   check_ms      `vpnd --check` of the same file (reading and validating it alone)
#   rss           VmRSS when ready, 2 s later and after the queries below; VmHWM (peak) when
#                 ready (the target applies to this one) and after the queries
#   show_ms       `vpnctl show --json` (the whole state as JSON), and its size
#   wg_show_ms    `wg show <if> dump` through the UAPI socket, and its peer count
#   reload_ms     SIGHUP with every peer's allowed IPs changed until the reload has been
#                 applied (its `reload: peer changed` lines are logged), and reload_cpu_ms, the
#                 CPU time vpnd used for it: the cost of re-routing every peer while packet
#                 lookups wait on the allowed-IPs table
#   stop_ms       SIGTERM until the process is gone (routes and link removed)
# and the number of kernel routes vpnd installed. Prints a summary, writes scale.json to the
# output directory and exits 1 if the start-up or memory target is missed.
#
# Layout of the configuration (a hub with N spokes): the interface has 10.0.0.1/16 and
# fd00::1/64; peer i gets 10.0.x.y/32 and fd00::i/128 (covered by the interface's own
# prefixes, so no route), then its remaining prefixes alternate between IPv4 /28s out of
# 10.64.0.0/10 and IPv6 /64s out of fd10::/16 (each needs a route). No endpoints: nothing is
# sent, start-up is measured alone. The reload moves every peer's IPv6 host prefix to
# fd00::1:i/128 (still inside the interface's subnet, so the kernel routes stay as they are).
#
# Usage: bench/scale.sh [options]
#   --peers N           peers (default 10000, at most 65000)
#   --prefixes M        allowed-IP prefixes in all, at least 2 per peer (default 100000)
#   --max-start-ms T    start-up target in ms (default 2000)
#   --max-rss-mib R     memory target in MiB, VmHWM (default 200)
#   --out DIR           where scale.json and the logs go (default bench/results/scale-<time>)
#   --vpnd PATH         vpnd binary (default: build with `cargo build --release`)
#   --vpnctl PATH       vpnctl binary (default: next to vpnd)
#   --log-level LEVEL   vpnd's log level (default info, as in production)
#   --write-config FILE only write the configuration to FILE (for profiling), then exit
#   --cleanup           only remove namespaces left by killed runs, then exit
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BENCH_NAME=scale
# shellcheck source=bench/lib.sh
source "$REPO/bench/lib.sh"

PEERS=10000
PREFIXES=100000
MAX_START_MS=2000
MAX_RSS_MIB=200
OUT=
VPND=${VPND:-}
VPNCTL=${VPNCTL:-}
LOG_LEVEL=info
NS_PREFIX=vpscale
WRITE_CONFIG=

usage() { sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; }

while [[ $# -gt 0 ]]; do
    case "$1" in
        --peers) PEERS=$2; shift 2 ;;
        --prefixes) PREFIXES=$2; shift 2 ;;
        --max-start-ms) MAX_START_MS=$2; shift 2 ;;
        --max-rss-mib) MAX_RSS_MIB=$2; shift 2 ;;
        --out) OUT=$2; shift 2 ;;
        --vpnd) VPND=$2; shift 2 ;;
        --vpnctl) VPNCTL=$2; shift 2 ;;
        --log-level) LOG_LEVEL=$2; shift 2 ;;
        --write-config) WRITE_CONFIG=$2; shift 2 ;;
        --cleanup)
            bench_require_root
            bench_cleanup_stale "$NS_PREFIX"
            exit 0
            ;;
        -h | --help) usage; exit 0 ;;
        *) echo "scale.sh: unknown argument: $1 (try --help)" >&2; exit 64 ;;
    esac
done
for v in PEERS PREFIXES MAX_START_MS MAX_RSS_MIB; do
    [[ ${!v} =~ ^[0-9]+$ ]] || bench_die "${v,,} must be a number, got '${!v}'"
done
((PEERS >= 1 && PEERS <= 65000)) || bench_die "--peers must be 1 to 65000"
((PREFIXES >= 2 * PEERS)) || bench_die "--prefixes must be at least 2 per peer"
[[ -n $WRITE_CONFIG ]] || bench_require_root

if [[ -z $WRITE_CONFIG ]]; then
    for tool in ip awk jq nsenter unshare setpriv wg; do
        command -v "$tool" >/dev/null || bench_apt_install iproute2 jq util-linux wireguard-tools
    done
    if [[ -z $VPND ]]; then
        bench_cargo_path || bench_die "cargo not found; install Rust (see README.md) or pass --vpnd"
        bench_log "cargo build --release --bins"
        (cd "$REPO" && cargo build --release --bins --quiet)
        VPND="$(bench_cargo_target_dir "$REPO")/release/vpnd"
    fi
    VPNCTL=${VPNCTL:-$(dirname "$VPND")/vpnctl}
    [[ -x $VPND && -x $VPNCTL ]] || bench_die "no executable vpnd/vpnctl at $VPND / $VPNCTL"
    OUT=${OUT:-$REPO/bench/results/scale-$(date +%Y%m%d-%H%M%S)}
    mkdir -p "$OUT"
fi
WORK=$(mktemp -d /tmp/vpn-scale.XXXXXX)
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

NS="$NS_PREFIX-$$"
IFACE="vs$$"
IFACE=${IFACE:0:15}
CONF="$WORK/scale.yaml"
CTL="$WORK/ctl.sock"

# ---------------------------------------------------------------- configuration
bench_log "writing a configuration with $PEERS peers and $PREFIXES prefixes"
gen_start=$(bench_now_ms)
key_prefix=$(head -c 30 /dev/urandom | base64 -w0) # 40 characters: 30 random bytes
private_key=$(head -c 32 /dev/urandom | base64 -w0)
# write_config VARIANT FILE: variant 1 is the configuration the reload switches to.
write_config() {
awk -v peers="$PEERS" -v prefixes="$PREFIXES" -v kp="$key_prefix" -v priv="$private_key" \
    -v iface="$IFACE" -v ctl="$CTL" -v variant="$1" '
# Peer i has public key <30 random bytes><i as 2 bytes>; base64 of the last two bytes is
# three characters and "=".
function key(i,   b0, b1) {
    b0 = int(i / 256); b1 = i % 256
    return kp substr(B, int(b0 / 4) + 1, 1) substr(B, (b0 % 4) * 16 + int(b1 / 16) + 1, 1) \
        substr(B, (b1 % 16) * 4 + 1, 1) "="
}
BEGIN {
    B = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    print "interface:"
    print "  name: " iface
    print "  private_key: " priv
    print "  addresses: [10.0.0.1/16, fd00::1/64]"
    print "control:"
    print "  socket: " ctl
    print "peers:"
    v4 = 0; v6 = 0
    for (i = 0; i < peers; i++) {
        # Spread the prefixes evenly: the first (prefixes % peers) peers get one more.
        n = int(prefixes / peers) + (i < prefixes % peers ? 1 : 0)
        host = i + 2
        line = "10.0." int(host / 256) "." host % 256 "/32, fd00::" (variant ? "1:" : "") \
            sprintf("%x", host) "/128"
        for (j = 2; j < n; j++) {
            if (j % 2 == 0) {
                a = v4 * 16; v4++
                line = line ", 10." 64 + int(a / 65536) "." int(a / 256) % 256 "." a % 256 "/28"
            } else {
                line = line sprintf(", fd10:%x:%x::/64", int(v6 / 65536) + 1, v6 % 65536); v6++
            }
        }
        print "  - public_key: " key(i)
        print "    allowed_ips: [" line "]"
    }
}' >"$2"
chmod 600 "$2"
}
write_config 0 "$CONF"
gen_ms=$(($(bench_now_ms) - gen_start))
if [[ -n $WRITE_CONFIG ]]; then
    cp "$CONF" "$WRITE_CONFIG"
    bench_log "wrote $WRITE_CONFIG ($(stat -c %s "$CONF") bytes)"
    exit 0
fi
conf_bytes=$(stat -c %s "$CONF")
bench_log "configuration: $conf_bytes bytes in ${gen_ms} ms"

t=$(bench_now_ms)
check_ok=true
"$VPND" --check --config "$CONF" >"$OUT/check.log" 2>&1 || check_ok=false
check_ms=$(($(bench_now_ms) - t))
if [[ $check_ok != true ]]; then
    head -n 5 "$OUT/check.log" >&2
    bench_die "vpnd --check refuses the generated configuration (see $OUT/check.log)"
fi
bench_log "vpnd --check: ${check_ms} ms"

# ---------------------------------------------------------------- start
bench_cleanup_stale "$NS_PREFIX"
bench_netns_add "$NS"
ctl() { "$VPNCTL" --socket "$CTL" "$@"; }

start=$(bench_now_ms)
bench_spawn_private_run "$NS" "$OUT/vpnd.log" "$VPND" --config "$CONF" --log-level "$LOG_LEVEL"
PID=$BENCH_SPAWNED_PID
ready=false
deadline=$((start + 120000))
while (($(bench_now_ms) < deadline)); do
    kill -0 "$PID" 2>/dev/null || break
    if ctl stats >/dev/null 2>&1; then
        ready=true
        break
    fi
    sleep 0.01
done
ready_ms=$(($(bench_now_ms) - start))
if [[ $ready != true ]]; then
    tail -n 20 "$OUT/vpnd.log" >&2
    bench_die "vpnd did not answer on its control socket within 120 s"
fi
rss_ready_kib=$(bench_status_kib "$PID" VmRSS)
hwm_ready_kib=$(bench_status_kib "$PID" VmHWM)
cpu_ready_ms=$(($(bench_cpu_ticks "$PID") * 1000 / $(getconf CLK_TCK)))
threads=$(awk '$1 == "Threads:" { print $2 }' "/proc/$PID/status")
bench_log "ready after ${ready_ms} ms, VmRSS $((rss_ready_kib / 1024)) MiB"

routes4=$(ip -n "$NS" -4 route show dev "$IFACE" proto static | wc -l)
routes6=$(ip -n "$NS" -6 route show dev "$IFACE" proto static | wc -l)
sleep 2
rss_settled_kib=$(bench_status_kib "$PID" VmRSS)

# ---------------------------------------------------------------- queries
t=$(bench_now_ms)
show_ok=true
ctl show --json >"$WORK/show.json" 2>"$OUT/show.err" || show_ok=false
show_ms=$(($(bench_now_ms) - t))
show_bytes=$(stat -c %s "$WORK/show.json")
show_peers=null
if [[ $show_ok == true ]]; then
    show_peers=$(jq '.peers | length' "$WORK/show.json")
else
    bench_log "vpnctl show --json failed: $(head -c 300 "$OUT/show.err")"
fi

t=$(bench_now_ms)
wg_ok=true
bench_in_ns_of "$PID" wg show "$IFACE" dump >"$WORK/wg.dump" 2>"$OUT/wg.err" || wg_ok=false
wg_ms=$(($(bench_now_ms) - t))
wg_peers=$(($(wc -l <"$WORK/wg.dump") - 1))
[[ $wg_ok == true ]] || { bench_log "wg show dump failed: $(head -c 300 "$OUT/wg.err")"; wg_peers=null; }

t=$(bench_now_ms)
ctl stats >/dev/null
stats_ms=$(($(bench_now_ms) - t))
rss_hwm_kib=$(bench_status_kib "$PID" VmHWM)
rss_after_kib=$(bench_status_kib "$PID" VmRSS)

# ---------------------------------------------------------------- reload
# Every peer's allowed IPs change. The new file replaces the old by rename and SIGHUP follows
# at once; the file watcher's own reload (0.5 to 1 s later) then finds nothing to do. The
# root logs the `reload:` lines once the whole change is applied.
write_config 1 "$WORK/reload.yaml"
mv "$WORK/reload.yaml" "$CONF"
cpu_before=$(bench_cpu_ticks "$PID")
t=$(bench_now_ms)
kill -HUP "$PID"
reload_ok=false
deadline=$((t + 120000))
while (($(bench_now_ms) < deadline)); do
    kill -0 "$PID" 2>/dev/null || break
    changed=$(grep -c 'reload: peer changed' "$OUT/vpnd.log" || true)
    if ((changed >= PEERS)); then
        reload_ok=true
        break
    fi
    grep -q 'reload refused\|reload: nothing changed' "$OUT/vpnd.log" && break
    sleep 0.01
done
reload_ms=$(($(bench_now_ms) - t))
reload_cpu_ms=$((($(bench_cpu_ticks "$PID") - cpu_before) * 1000 / $(getconf CLK_TCK)))
[[ $reload_ok == true ]] || bench_log "the reload did not report $PEERS changed peers (see $OUT/vpnd.log)"
bench_log "reload of $PEERS changed peers: ${reload_ms} ms, CPU ${reload_cpu_ms} ms"

# ---------------------------------------------------------------- stop
t=$(bench_now_ms)
kill -TERM "$PID"
for ((i = 0; i < 60 * 50; i++)); do
    kill -0 "$PID" 2>/dev/null || break
    sleep 0.02
done
stop_ms=$(($(bench_now_ms) - t))
kill -0 "$PID" 2>/dev/null && bench_log "vpnd still running 60 s after SIGTERM"
bench_cleanup

# ---------------------------------------------------------------- report
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
pass=true
((ready_ms <= MAX_START_MS)) || pass=false
((hwm_ready_kib <= MAX_RSS_MIB * 1024)) || pass=false

jq -n \
    --argjson peers "$PEERS" --argjson prefixes "$PREFIXES" \
    --argjson conf_bytes "$conf_bytes" --argjson gen_ms "$gen_ms" --argjson check_ms "$check_ms" \
    --argjson ready_ms "$ready_ms" --argjson routes4 "$routes4" --argjson routes6 "$routes6" \
    --argjson threads "$threads" \
    --argjson rss_ready "$(mib "$rss_ready_kib")" --argjson rss_settled "$(mib "$rss_settled_kib")" \
    --argjson rss_after "$(mib "$rss_after_kib")" --argjson rss_hwm "$(mib "$rss_hwm_kib")" \
    --argjson hwm_ready "$(mib "$hwm_ready_kib")" --argjson cpu_ready_ms "$cpu_ready_ms" \
    --argjson show_ok "$show_ok" --argjson show_ms "$show_ms" --argjson show_bytes "$show_bytes" \
    --argjson show_peers "$show_peers" \
    --argjson wg_ok "$wg_ok" --argjson wg_ms "$wg_ms" --argjson wg_peers "$wg_peers" \
    --argjson stats_ms "$stats_ms" --argjson stop_ms "$stop_ms" \
    --argjson reload_ok "$reload_ok" --argjson reload_ms "$reload_ms" \
    --argjson reload_cpu_ms "$reload_cpu_ms" \
    --argjson max_start_ms "$MAX_START_MS" --argjson max_rss_mib "$MAX_RSS_MIB" --argjson pass "$pass" \
    --arg log_level "$LOG_LEVEL" --arg vpnd "$("$VPND" --version 2>/dev/null || echo unknown)" \
    --arg kernel "$(uname -r)" --argjson nproc "$(nproc)" --arg load "$(cut -d' ' -f1-3 /proc/loadavg)" \
    '{schema: "vpn-bench-scale/1", time: (now | todate), vpnd: $vpnd, log_level: $log_level,
      host: {kernel: $kernel, nproc: $nproc, loadavg_end: $load},
      peers: $peers, prefixes: $prefixes, config_bytes: $conf_bytes, generate_ms: $gen_ms,
      check_ms: $check_ms, ready_ms: $ready_ms, cpu_ms_until_ready: $cpu_ready_ms, routes: {ipv4: $routes4, ipv6: $routes6},
      threads: $threads,
      rss_mib: {ready: $rss_ready, peak_at_ready: $hwm_ready, settled_2s: $rss_settled,
                after_queries: $rss_after, peak_after_queries: $rss_hwm},
      show: {ok: $show_ok, ms: $show_ms, bytes: $show_bytes, peers: $show_peers},
      wg_show_dump: {ok: $wg_ok, ms: $wg_ms, peers: $wg_peers},
      stats_ms: $stats_ms, reload: {ok: $reload_ok, ms: $reload_ms, cpu_ms: $reload_cpu_ms},
      stop_ms: $stop_ms,
      targets: {start_ms: $max_start_ms, rss_mib: $max_rss_mib}, pass: $pass}' >"$OUT/scale.json"

printf '\nvpnd scale: %d peers, %d allowed-IP prefixes (%s MB of YAML), log level %s\n' \
    "$PEERS" "$PREFIXES" "$(awk -v b="$conf_bytes" 'BEGIN { printf "%.1f", b / 1e6 }')" "$LOG_LEVEL"
printf '  %-34s %8s ms\n' "vpnd --check (read + validate)" "$check_ms"
printf '  %-34s %8s ms   (target %s ms)\n' "start until control socket answers" "$ready_ms" "$MAX_START_MS"
printf '  %-34s %8s ms   (user + system, all threads)\n' "CPU time until then" "$cpu_ready_ms"
printf '  %-34s %8s      (IPv4 %s, IPv6 %s)\n' "kernel routes installed" $((routes4 + routes6)) "$routes4" "$routes6"
printf '  %-34s %8s MiB  (2 s later %s, after queries %s)\n' "VmRSS when ready" \
    "$(mib "$rss_ready_kib")" "$(mib "$rss_settled_kib")" "$(mib "$rss_after_kib")"
printf '  %-34s %8s MiB  (target %s MiB; after the queries below %s)\n' "VmHWM (peak) when ready" \
    "$(mib "$hwm_ready_kib")" "$MAX_RSS_MIB" "$(mib "$rss_hwm_kib")"
printf '  %-34s %8s ms   (%s bytes, %s peers%s)\n' "vpnctl show --json" "$show_ms" "$show_bytes" \
    "$show_peers" "$([[ $show_ok == true ]] || echo ', FAILED')"
printf '  %-34s %8s ms   (%s peers%s)\n' "wg show dump (UAPI)" "$wg_ms" "$wg_peers" \
    "$([[ $wg_ok == true ]] || echo ', FAILED')"
printf '  %-34s %8s ms\n' "vpnctl stats" "$stats_ms"
printf '  %-34s %8s ms   (CPU %s ms%s)\n' "reload, every peer changed" "$reload_ms" \
    "$reload_cpu_ms" "$([[ $reload_ok == true ]] || echo ', FAILED')"
printf '  %-34s %8s ms\n' "SIGTERM until exit" "$stop_ms"
printf '  %-34s %8s\n' "threads" "$threads"
printf '  result: %s   (%s)\n' "$([[ $pass == true ]] && echo PASS || echo FAIL)" "$OUT/scale.json"
[[ $pass == true ]]
