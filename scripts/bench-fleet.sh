#!/usr/bin/env bash
# Fleet benchmark (issue 20, docs/scale-out.md): the capacity of 1, 2 and 3 fleet members
# (today `tincan listen --auto-answer`, release build) behind kamailio's dispatcher, and of the
# dispatcher alone (one member that is sipp's bare fleet_uas.xml), in one run, on loopback.
# sipp's fleet_uac.xml calls (INVITE, a digit in an INFO, 1 s, BYE) at increasing rates; the
# capacity is the highest rate with < 1 % failed calls; each line also has kamailio's and the
# members' CPU time per call. The harness is interop-tests/examples/fleet-bench.rs (it starts
# and stops every process by PID).
#
# Usage: scripts/bench-fleet.sh
# Environment: RATES (default "20 40 60 80 120 160 240 320"), PROXY_RATES (default "160 320 640 1280"),
#              SIZES (default "1 2 3"), SECONDS_PER_RATE (default 5),
#              TINCAN_IVR (the members' binary; default: a release build of the IVR example),
#              CARGO_TARGET_DIR (default <repo>/target),
#              OUT (result file, default <target>/bench-fleet.txt).
# Bounded: every sipp run has a timeout, and the whole benchmark at most 10 minutes.
set -euo pipefail

cd "$(dirname "$0")/.."
TARGET=${CARGO_TARGET_DIR:-$PWD/target}
OUT=${OUT:-$TARGET/bench-fleet.txt}

command -v sipp >/dev/null || { echo "sipp is not installed (scripts/install-deps.sh --test)" >&2; exit 2; }
[ -x /usr/sbin/kamailio ] || command -v kamailio >/dev/null ||
    { echo "kamailio is not installed (scripts/install-deps.sh --test)" >&2; exit 2; }

if [ -z "${TINCAN_IVR:-}" ]; then
    echo "building the IVR example (release)..." >&2
    CARGO_TARGET_DIR=$TARGET cargo build --quiet --release -p tincan --example ivr
    TINCAN_IVR=$TARGET/release/examples/ivr
fi
export TINCAN_IVR
echo "building the benchmark harness..." >&2
CARGO_TARGET_DIR=$TARGET cargo build --quiet -p tincan-interop-tests --example fleet-bench

{
    echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ) $(nproc) CPUs: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
    echo "# load average before the run: $(cut -d" " -f1-3 /proc/loadavg)"
    echo "# $(sipp -v 2>&1 | grep -m1 SIPp | sed 's/^ *//'); $( (/usr/sbin/kamailio -v 2>/dev/null || kamailio -v) | head -1); ${SECONDS_PER_RATE:-5} s per rate"
    echo "# members: $TINCAN_IVR --max-calls 200 (the IVR example; interop-tests/src/fleet.rs fleet_member)"
} | tee "$OUT"
timeout -k 10 600 "$TARGET/debug/examples/fleet-bench" | tee -a "$OUT"
echo "# load average after the run: $(cut -d" " -f1-3 /proc/loadavg)" | tee -a "$OUT"
echo "results in $OUT" >&2
