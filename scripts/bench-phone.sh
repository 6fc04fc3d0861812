#!/usr/bin/env bash
# Benchmark of the full-screen phone in a real terminal (tmux), with a release build of
# `tincan`: the startup to a usable screen with an account registered at the lab kamailio on
# loopback (10 runs: median and max), and the idle phone's CPU over 30 s (utime+stime of
# /proc/PID/stat), the bytes it wrote meanwhile, and (with strace installed) how many writes
# went to the terminal in 10 s more. Runs the ignored test
# interop-tests/tests/phone-tmux-bench.rs; needs tmux and kamailio
# (scripts/install-deps.sh --test). Bounded: every wait times out after 30 s.
#
#   scripts/bench-phone.sh
#
# Environment: TINCAN_BENCH_RUNS (default 10), TINCAN_BENCH_IDLE_SECS (default 30),
#              TINCAN_BINARY (a tincan to measure instead of the release build),
#              CARGO_TARGET_DIR (default <repo>/target).
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET=${CARGO_TARGET_DIR:-$PWD/target}
if [[ -z "${TINCAN_BINARY:-}" ]]; then
    echo "building tincan (release)..." >&2
    CARGO_TARGET_DIR=$TARGET cargo build --quiet --release -p tincan --bin tincan
    TINCAN_BINARY=$TARGET/release/tincan
fi
export TINCAN_BINARY
echo "measuring $TINCAN_BINARY on $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
CARGO_TARGET_DIR=$TARGET cargo test --quiet -p tincan-interop-tests --test phone-tmux-bench \
    -- --ignored --nocapture 2>&1 |
    grep -E '^(run [0-9]+:|startup|CPU time|idle|tincan:|strace)|panicked|FAILED'
