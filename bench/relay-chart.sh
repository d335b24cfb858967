#!/usr/bin/env bash
# Draws bench/relay.sh's results as a PNG (gnuplot): relayed over UDP, relayed over TCP and
# direct side by side, per metric. Called by bench/relay.sh when gnuplot is installed; run it
# by hand to redraw a saved run.
#
# Usage: bench/relay-chart.sh RESULTS_JSON OUT_PNG
set -euo pipefail

if [[ $# -ne 2 || $1 == -h || $1 == --help ]]; then
    sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//'
    exit 64
fi
RESULTS=$1 PNG=$2
command -v gnuplot >/dev/null || { echo "relay-chart.sh: gnuplot is not installed (apt-get install gnuplot-nox)" >&2; exit 1; }
WORK=$(mktemp -d /tmp/vpn-relay-chart.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

# panel FILE TITLE KEY:LABEL...: one data file (a row per metric, a column per case; "?" when
# missing) and the gnuplot commands for its panel ("_" in a label is a space).
panel() {
    local file=$WORK/$1 title=$2
    shift 2
    jq -r --arg rows "$*" '
        . as $r | ($rows | split(" ") | map(split(":"))) as $rows |
        "metric \"relay (UDP)\" \"relay (TCP)\" direct",
        ($rows[] | . as $row | (["\"" + ($row[1] | gsub("_"; " ")) + "\""] +
            (["relay", "relay-tcp", "direct"] | map($r.median[.][$row[0]] | if . == null then "?" else tostring end))) | join(" "))
    ' "$RESULTS" >"$file"
    printf 'set title "%s"\nset xrange [-0.6:%s.4]\nset yrange [0:*]\n' "$title" $(($# - 1))
    printf 'plot for [i=2:4] "%s" using i:xtic(1), \\\n' "$file"
    # shellcheck disable=SC2016 # gnuplot's $0
    printf '  for [i=2:4] "%s" using ($0 + (i - 3) / 4.0):i:(fmt(column(i))) with labels offset 0,0.7 font ",8" notitle\n' "$file"
}

title=$(jq -r '"relay vs direct: medians of \([.rounds[].round] | max) round(s), \(.options.duration_s) s per test, inner MTU \(.options.inner_mtu), \(.host.nproc) cores (\(.time[:10]))"' "$RESULTS")
{
    printf '%s\n' 'set terminal pngcairo size 1600,900 font "sans,10"' \
        "set output \"$PNG\"" 'set datafile missing "?"' 'set style data histograms' \
        'set style histogram clustered gap 1' 'set style fill solid 0.85 border -1' \
        'set boxwidth 0.9' 'set key top right autotitle columnhead' 'set grid ytics' \
        'fmt(x) = x >= 100 ? sprintf("%.0f", x) : x >= 10 ? sprintf("%.1f", x) : sprintf("%.2f", x)' \
        'set offsets 0, 0, graph 0.1, 0' "set multiplot layout 2,2 title \"$title\""
    panel tcp.dat "TCP 1 stream through the tunnel (Mbit/s; higher is better)" tcp1_mbps:TCP_1_stream
    panel pps.dat "UDP 64 B at max rate (kpps received; higher is better)" udp64_kpps:UDP_64_B
    panel cpu.dat "CPU per GB received under TCP (s/GB; lower is better)" \
        tcp1_vpnd_cpu_s_per_gb:both_vpnds tcp1_hub_cpu_s_per_gb:vpnhub
    panel eff.dat "Gb relayed per vpnhub CPU-second (higher is better)" \
        tcp1_gb_per_hub_cpu_s:TCP udp1400_gb_per_hub_cpu_s:UDP_1400_B udp64_gb_per_hub_cpu_s:UDP_64_B
    echo "unset multiplot"
} >"$WORK/chart.gp"
gnuplot "$WORK/chart.gp"
echo "chart: $PNG"
