#!/usr/bin/env bash
# Remove network namespaces left behind by killed e2e test runs.
#
# The harness (crate `e2e` in tests/) names every namespace it creates
# `vpnt-<pid>-<counter>`, where <pid> is the test process, and removes them
# itself, even when a test fails. Only a test process that was killed
# (SIGKILL, OOM, power loss) leaves some behind; its daemons die with it
# (PR_SET_PDEATHSIG), but the namespace files stay in /run/netns.
#
# By default this removes only `vpnt-<pid>-<n>` namespaces whose <pid> no
# longer runs, so it is safe while other test runs are in progress. With
# --all it removes every `vpnt-*` namespace. Before deleting a namespace it
# stops the processes inside it (by PID, from `ip netns pids`): SIGTERM,
# then SIGKILL. Nothing outside the `vpnt-` prefix is touched.
#
# Usage: scripts/cleanup-test-netns.sh [--all] [--dry-run]
set -euo pipefail

all=0
dry=0
for arg in "$@"; do
    case "$arg" in
        --all) all=1 ;;
        --dry-run|-n) dry=1 ;;
        -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
        *) echo "unknown argument: $arg" >&2; exit 64 ;;
    esac
done

if [[ "$(id -u)" -ne 0 ]]; then
    echo "cleanup-test-netns.sh: must run as root" >&2
    exit 1
fi

removed=0
kept=0
while read -r ns _; do
    [[ "$ns" == vpnt-* ]] || continue
    if [[ $all -eq 0 ]]; then
        if [[ ! "$ns" =~ ^vpnt-([0-9]+)-[0-9]+$ ]]; then
            echo "keep   $ns (not a harness name; use --all)"
            kept=$((kept + 1))
            continue
        fi
        owner="${BASH_REMATCH[1]}"
        if [[ -d "/proc/$owner" ]]; then
            echo "keep   $ns (test process $owner is still running)"
            kept=$((kept + 1))
            continue
        fi
    fi
    pids="$(ip netns pids "$ns" 2>/dev/null || true)"
    if [[ $dry -eq 1 ]]; then
        echo "would remove $ns${pids:+ (processes: $(echo $pids))}"
        continue
    fi
    if [[ -n "$pids" ]]; then
        echo "stop   processes in $ns: $(echo $pids)"
        for pid in $pids; do kill -TERM "$pid" 2>/dev/null || true; done
        for _ in $(seq 30); do
            [[ -z "$(ip netns pids "$ns" 2>/dev/null || true)" ]] && break
            sleep 0.1
        done
        for pid in $(ip netns pids "$ns" 2>/dev/null || true); do kill -KILL "$pid" 2>/dev/null || true; done
    fi
    if ip netns del "$ns"; then
        echo "remove $ns"
        removed=$((removed + 1))
    fi
done < <(ip netns list)

echo "cleanup-test-netns.sh: removed $removed, kept $kept"
