#!/usr/bin/env bash
# The project's test command (Debian 12, as root). CI runs exactly this (.ci/run).
#
# Installs what the tests need (scripts/install-deps.sh, rustup's rustfmt and
# clippy components), removes network namespaces that killed test runs left
# behind, then runs, stopping at the first failure:
#
#   1. cargo fmt --all --check
#   2. cargo clippy --workspace --all-targets -- -D warnings
#   3. cargo build --workspace --bins
#   4. cargo test --workspace      (CI=1: e2e tests fail instead of skipping when
#                                   root or tools are missing; VPN_E2E_BIN_DIR
#                                   points at the binaries built in step 3)
#   5. scripts/fuzz 10             (every fuzz target of protocol/fuzz and daemon/fuzz for
#                                   10 s; FUZZ_CI_SECONDS changes it, 0 skips the step)
#   6. scripts/demo.sh             (the two-peer demo, as a smoke test)
#   7. scripts/demo.sh --nat       (a hub and two peers behind two emulated NATs punch through)
#
# and prints how long each step took. Runs from any directory.
#
# Usage: scripts/test.sh
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"

case "${1:-}" in
    "") ;;
    -h|--help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "test.sh: unknown argument: $1 (try --help)" >&2; exit 64 ;;
esac

if [[ -t 1 ]]; then
    B=$'\e[1m' G=$'\e[32m' R=$'\e[31m' N=$'\e[0m'
else
    B='' G='' R='' N=''
fi

if [[ "$(id -u)" -ne 0 ]]; then
    echo "test.sh: must run as root (the end-to-end tests create network namespaces and TUN devices)" >&2
    exit 1
fi

names=()
times=()
results=()
total_start=$SECONDS
current=''

fmt_time() { printf '%dm%02ds' $(($1 / 60)) $(($1 % 60)); }

summary() {
    local i
    printf '\n%s==> Summary%s\n' "$B" "$N"
    for i in "${!names[@]}"; do
        printf '    %-8s %7s  %s\n' "${results[$i]}" "$(fmt_time "${times[$i]}")" "${names[$i]}"
    done
    printf '    %-8s %7s\n' total "$(fmt_time $((SECONDS - total_start)))"
}

on_exit() {
    local status=$?
    trap '' INT TERM
    if [[ -n $current ]]; then
        names+=("$current")
        times+=($((SECONDS - step_start)))
        results+=("FAILED")
    fi
    summary
    if [[ $status -ne 0 ]]; then
        # A killed or interrupted test binary may leave namespaces behind.
        scripts/cleanup-test-netns.sh >/dev/null 2>&1 || true
        printf '\n%sFAILED%s: %s (exit %d)\n' "$R" "$N" "${current:-setup}" "$status" >&2
    else
        printf '\n%sAll tests passed.%s\n' "$G" "$N"
    fi
    exit "$status"
}
trap on_exit EXIT
trap 'echo; echo "test.sh: interrupted" >&2; exit 130' INT
trap 'echo "test.sh: terminated" >&2; exit 143' TERM

# Runs one step: NAME COMMAND...; records its time, stops the script on failure.
step() {
    local name=$1
    shift
    printf '\n%s==> %s%s\n' "$B" "$name" "$N"
    current=$name
    step_start=$SECONDS
    "$@"
    names+=("$name")
    times+=($((SECONDS - step_start)))
    results+=("ok")
    current=''
    printf '%s    ok%s (%s)\n' "$G" "$N" "$(fmt_time $((SECONDS - step_start)))"
}

setup() {
    scripts/cleanup-test-netns.sh
    scripts/install-deps.sh
    # A non-login root shell (sudo) may lack rustup's directory in PATH.
    if ! command -v cargo >/dev/null 2>&1 && [[ -x "${HOME:-/root}/.cargo/bin/cargo" ]]; then
        export PATH="${HOME:-/root}/.cargo/bin:$PATH"
    fi
    if ! command -v cargo >/dev/null 2>&1; then
        cat >&2 <<'EOF'
test.sh: cargo (Rust) is not installed. Install a current toolchain with rustup (Debian 12's
own rustc is too old; the workspace needs Rust 1.85 or newer):

    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
    . "$HOME/.cargo/env"
EOF
        return 1
    fi
    local missing=() c
    for c in rustfmt clippy; do
        if ! cargo "${c/rustfmt/fmt}" --version >/dev/null 2>&1; then
            missing+=("$c")
        fi
    done
    if [[ ${#missing[@]} -gt 0 ]]; then
        if ! command -v rustup >/dev/null 2>&1; then
            echo "test.sh: cargo ${missing[*]} missing and rustup not found to install them" >&2
            return 1
        fi
        rustup component add "${missing[@]}"
    fi
    # A fresh clone builds everything once: incremental caches would only cost disk.
    export CARGO_INCREMENTAL=0
    # The build and test artifacts need a few GiB; say so up front when the disk is short.
    local avail_kib
    avail_kib=$(df -Pk . | awk 'NR == 2 { print $4 }')
    echo "    free disk here: $((avail_kib / 1024)) MiB"
    if [[ $avail_kib -lt $((4 * 1024 * 1024)) ]]; then
        echo "test.sh: warning: less than 4 GiB free; the build may run out of disk" >&2
    fi
    cargo --version
    cargo fmt --version
    cargo clippy --version
}

target_dir() {
    cargo metadata --format-version 1 --no-deps | jq -r .target_directory
}

# The supervision tests need a vpnd with the test-only `fault-injection` feature. Building it
# in the same target directory shares every dependency with the normal build (only the vpnd
# crate is compiled twice); it is copied aside, then the normal build puts back target/debug/vpnd.
build_bins() {
    local dir
    dir="$(target_dir)/debug"
    cargo build -p vpnd --bin vpnd --features fault-injection
    cp "$dir/vpnd" "$dir/vpnd-fault-injection"
    # cargo re-links target/debug/vpnd from the normal build only if the file is missing.
    rm -f "$dir/vpnd"
    cargo build --workspace --bins
}

run_tests() {
    local dir
    dir="$(target_dir)/debug"
    export VPN_E2E_BIN_DIR="$dir"
    export VPN_E2E_FAULT_VPND="$dir/vpnd-fault-injection"
    echo "    CI=1 VPN_E2E_BIN_DIR=$VPN_E2E_BIN_DIR VPN_E2E_FAULT_VPND=$VPN_E2E_FAULT_VPND"
    CI=1 cargo test --workspace
}

step "setup: clean leftover test namespaces, install dependencies" setup
step "cargo fmt --all --check" cargo fmt --all --check
step "cargo clippy --workspace --all-targets -- -D warnings" \
    cargo clippy --workspace --all-targets -- -D warnings
step "cargo build --workspace --bins (and a fault-injection vpnd for the supervision tests)" build_bins
step "cargo test --workspace" run_tests
fuzz_seconds="${FUZZ_CI_SECONDS:-10}"
if [[ "$fuzz_seconds" != 0 ]]; then
    # Crashing inputs are kept in <crate>/fuzz/regressions/ (and the step fails): commit them
    # with the fix, and `cargo test` replays them from then on.
    step "scripts/fuzz $fuzz_seconds (every fuzz target, bounded)" scripts/fuzz "$fuzz_seconds"
fi
step "scripts/demo.sh (smoke test)" env DEMO_PROFILE=dev scripts/demo.sh
step "scripts/demo.sh --nat (smoke test)" env DEMO_PROFILE=dev scripts/demo.sh --nat
