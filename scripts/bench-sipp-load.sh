#!/usr/bin/env bash
# Load benchmark: sipp's built-in uac against Tincan's answering example
# (sip-core/examples/uas.rs, release build) and, in the same run, against sipp's own built-in
# uas (the reference ceiling). Everything on 127.0.0.1, every run bounded in calls (-m) and
# time (-timeout).
#
# For each rate it records: successful and failed calls (sipp's final screen), the rate reached
# (sipp's cumulative "Call Rate": calls created / elapsed time), the wall time of the sipp run
# (with its start-up), the CPU time (user + system) used by the
# answering process (from /proc/PID/stat, utime + stime, before and after the run) and by the
# sipp uac (bash `times` of the subshell that runs it), the CPU per call, and how many INVITEs
# and BYEs sipp had to retransmit (the server was late by more than T1 = 500 ms).
#
# Usage: scripts/bench-sipp-load.sh [RATE...]      (default: 2000 4000 6000)
# Environment: SECONDS_PER_RATE (default 3), BUFF_SIZE (default 4194304 bytes),
#              CARGO_TARGET_DIR (default <repo>/target), OUT (result file, default
#              <target>/bench-sipp-load.txt).
set -euo pipefail

cd "$(dirname "$0")/.."
RATES=("$@")
[ ${#RATES[@]} -gt 0 ] || RATES=(2000 4000 6000)
SECONDS_PER_RATE=${SECONDS_PER_RATE:-3}
BUFF_SIZE=${BUFF_SIZE:-4194304}
TARGET=${CARGO_TARGET_DIR:-$PWD/target}
OUT=${OUT:-$TARGET/bench-sipp-load.txt}
TICK=$(getconf CLK_TCK)
WORK=$(mktemp -d /tmp/bench-sipp-load.XXXXXX)

command -v sipp >/dev/null || { echo "sipp is not installed (scripts/install-deps.sh --test)" >&2; exit 2; }

echo "building the uas example (release)..." >&2
CARGO_TARGET_DIR=$TARGET cargo build --quiet --release -p tincan-sip --example uas
UAS_BIN=$TARGET/release/examples/uas

# PIDS, cleanup (on exit), free_port.
source scripts/bench-common.sh  # the working directory is the repository root

# CPU seconds (user + system, all threads) used so far by a process.
cpu_of() {
    awk -v tick="$TICK" '{ sub(/^.*\) /, ""); print ($12 + $13) / tick }' "/proc/$1/stat"
}

# Tincan's uas: port 0 on UDP and TCP; the first line says which ports it got.
"$UAS_BIN" 127.0.0.1:0 >"$WORK/uas.log" 2>&1 &
UAS_PID=$!
PIDS+=("$UAS_PID")
for _ in $(seq 50); do
    grep -q '^listening' "$WORK/uas.log" && break
    sleep 0.1
done
UAS_ADDR=$(sed -n 's/^listening udp \([^ ]*\) .*/\1/p' "$WORK/uas.log")
[ -n "$UAS_ADDR" ] || { echo "the uas did not start:" >&2; cat "$WORK/uas.log" >&2; exit 1; }

# sipp's built-in uas, the reference.
SIPP_UAS_PORT=$(free_port)
sipp -sn uas -i 127.0.0.1 -p "$SIPP_UAS_PORT" -mp "$(free_port)" -cp "$(free_port)" \
    -buff_size "$BUFF_SIZE" -nostdin -timeout 3600s >"$WORK/sipp-uas.log" 2>&1 &
SIPP_UAS_PID=$!
PIDS+=("$SIPP_UAS_PID")
sleep 1
kill -0 "$SIPP_UAS_PID" || { echo "sipp uas did not start" >&2; cat "$WORK/sipp-uas.log" >&2; exit 1; }

# run_uac NAME ADDR SERVER_PID RATE: one bounded sipp uac run; prints one result line.
run_uac() {
    local name=$1 addr=$2 server=$3 rate=$4
    local calls=$((rate * SECONDS_PER_RATE))
    local dir="$WORK/$name-$rate"
    mkdir -p "$dir"
    local before after t0 t1
    before=$(cpu_of "$server")
    t0=$(date +%s.%N)
    # The subshell runs only sipp, so `times` (children's user and system time) is sipp's.
    (
        cd "$dir"
        # sipp's own -timeout has been seen not to fire (a uac stuck at start-up for 15
        # minutes on a loaded machine): coreutils timeout bounds it for certain.
        timeout -k 5 $((SECONDS_PER_RATE * 5 + 30)) \
        sipp -sn uac "$addr" -i 127.0.0.1 -p "$(free_port)" -mp "$(free_port)" -cp "$(free_port)" \
            -r "$rate" -m "$calls" -l $((rate * 2)) -buff_size "$BUFF_SIZE" \
            -timeout $((SECONDS_PER_RATE * 5 + 10))s -nostdin -trace_screen \
            >"$dir/sipp.log" 2>&1 || true
        times >"$dir/times"
    )
    t1=$(date +%s.%N)
    # Let the server finish absorbing the last messages before reading its CPU.
    sleep 0.5
    after=$(cpu_of "$server")
    local screen ok failed cps retrans uac_cpu
    screen=$(cat "$dir"/*_screen.log 2>/dev/null || cat "$dir/sipp.log")
    ok=$(echo "$screen" | awk '/Successful call/ { v = $(NF-0) } END { print v + 0 }')
    failed=$(echo "$screen" | awk '/Failed call/ { v = $(NF-0) } END { print v + 0 }')
    # Requests sipp had to retransmit (INVITE + BYE): the server did not answer within T1.
    retrans=$(echo "$screen" | awk '$1 ~ /^(INVITE|BYE)$/ && $2 ~ /^-+>$/ { v[$1] = $4 } END { print v["INVITE"] + v["BYE"] }')
    # sipp's cumulative call rate: calls created / elapsed time of the run.
    cps=$(echo "$screen" | awk '/Call Rate/ { v = $(NF-1) } END { print v + 0 }')
    # `times` line 2: children's "XmY.YYYs XmZ.ZZZs".
    uac_cpu=$(sed -n 2p "$dir/times" | awk '{
        split($1, u, "m"); split($2, s, "m"); sub(/s/, "", u[2]); sub(/s/, "", s[2]);
        print u[1] * 60 + u[2] + s[1] * 60 + s[2] }')
    awk -v name="$name" -v rate="$rate" -v calls="$calls" -v ok="$ok" -v failed="$failed" \
        -v cps="$cps" -v retrans="$retrans" -v t0="$t0" -v t1="$t1" -v before="$before" -v after="$after" -v uac="$uac_cpu" 'BEGIN {
        wall = t1 - t0; cpu = after - before;
        per = ok > 0 ? cpu / ok * 1e6 : 0; uper = ok > 0 ? uac / ok * 1e6 : 0;
        printf "%-6s %6d %7d %7d %6d %8.2f %9.0f %8.3f %9.1f %8.3f %9.1f %7d\n",
            name, rate, calls, ok, failed, wall, cps, cpu, per, uac, uper, retrans }'
}

{
    echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ) $(nproc) CPUs: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
    echo "# load average before the run: $(cut -d" " -f1-3 /proc/loadavg)"
    echo "# $(sipp -v 2>&1 | grep -m1 SIPp | sed 's/^ *//'); Tincan uas $UAS_ADDR; sipp uas 127.0.0.1:$SIPP_UAS_PORT; ${SECONDS_PER_RATE}s per rate; -buff_size $BUFF_SIZE"
    echo "# server  rate   calls      ok failed   wall_s  calls/s   srv_cpu_s srv_us/call uac_cpu_s uac_us/call retrans"
} | tee "$OUT"
for rate in "${RATES[@]}"; do
    run_uac tincan "$UAS_ADDR" "$UAS_PID" "$rate" | tee -a "$OUT"
    run_uac sipp "127.0.0.1:$SIPP_UAS_PORT" "$SIPP_UAS_PID" "$rate" | tee -a "$OUT"
done

# Ratios per rate: Tincan's CPU per call / sipp uas's.
awk '!/^#/ { per[$1, $2] = $9; rates[$2] = 1 }
    END { for (r in rates) if (per["sipp", r] > 0)
        printf "# rate %s: Tincan uas CPU per call / sipp uas CPU per call = %.2f\n", r, per["tincan", r] / per["sipp", r] }' \
    "$OUT" | sort -t' ' -k3 -n | tee -a "$OUT"

kill "$UAS_PID"
wait "$UAS_PID" 2>/dev/null || true
echo "# uas summary: $(tail -1 "$WORK/uas.log")" | tee -a "$OUT"
echo "results in $OUT (logs in $WORK)" >&2
