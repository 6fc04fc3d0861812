#!/usr/bin/env bash
# Memory benchmark: what `tincan listen --auto-answer` (release build, --no-audio, on
# 127.0.0.1) keeps after calls, read from /proc/PID (VmRSS, VmHWM, threads, open fds).
# Every run is bounded in calls (sipp -m) and in time (sipp -timeout and coreutils timeout).
#
#   scripts/bench-memory.sh calls   ROUNDS rounds of CALLS calls of sipp's built-in uac
#                                   (INVITE, 200, ACK, BYE) at RATE calls/s; after each round
#                                   it waits SETTLE seconds (every SIP timer has fired: Timers
#                                   J and L are 32 s) and reads the process.
#   scripts/bench-memory.sh noack   NOACK_CALLS INVITEs at RATE calls/s that are answered and
#                                   never ACKed (scripts/sipp/uac-no-ack.xml): it reads the
#                                   process when sipp has its last 200 (every call answered and
#                                   waiting for its ACK), again after Timer H (32 s) and the
#                                   BYEs that follow, and the largest RSS and fd count seen,
#                                   and counts the RTP packets the callee sent to the callers'
#                                   c=/m= address meanwhile.
#
# RSS is what the process holds from the system, not what it uses: glibc keeps the heap a
# burst touched unless the freed memory is at its top or was mmap()ed. With
# TINCAN_ENV=GLIBC_TUNABLES=glibc.malloc.mmap_threshold=131072 every block of 128 KiB and more
# (the tables of calls and transactions) is mmap()ed and given back to the system when freed
# or shrunk, so RSS follows the live tables (a fixed threshold also stops glibc from raising
# it after the first free, which it does by default).
#
# Environment: ROUNDS (default 5), CALLS (2000), RATE (200), SETTLE (36 s), NOACK_CALLS
#              (2000), NOACK_WAIT (40 s), TINCAN_ENV (NAME=VALUE words put in tincan's
#              environment, e.g. MALLOC_ARENA_MAX=2 or the GLIBC_TUNABLES above),
#              LISTEN_ARGS (default --no-audio; empty: each call opens the default audio
#              devices, or sends silence when there are none), CARGO_TARGET_DIR (default
#              <repo>/target), OUT (default
#              <target>/bench-memory-MODE.txt), TINCAN (a tincan binary to measure instead of
#              building one).
set -euo pipefail

cd "$(dirname "$0")/.."
MODE=${1:-calls}
ROUNDS=${ROUNDS:-5}
CALLS=${CALLS:-2000}
RATE=${RATE:-200}
SETTLE=${SETTLE:-36}
NOACK_CALLS=${NOACK_CALLS:-2000}
NOACK_WAIT=${NOACK_WAIT:-40}
LISTEN_ARGS=${LISTEN_ARGS---no-audio}
TARGET=${CARGO_TARGET_DIR:-$PWD/target}
OUT=${OUT:-$TARGET/bench-memory-$MODE.txt}
WORK=$(mktemp -d /tmp/bench-memory.XXXXXX)

case "$MODE" in
    calls | noack) ;;
    *)
        echo "usage: $0 calls|noack" >&2
        exit 2
        ;;
esac
command -v sipp >/dev/null || { echo "sipp is not installed (scripts/install-deps.sh --test)" >&2; exit 2; }

if [ -z "${TINCAN:-}" ]; then
    echo "building tincan (release)..." >&2
    CARGO_TARGET_DIR=$TARGET cargo build --quiet --release -p tincan --bin tincan
    TINCAN=$TARGET/release/tincan
fi

# PIDS, cleanup (on exit), free_port.
source scripts/bench-common.sh  # the working directory is the repository root

# "rss_kb hwm_kb threads fds" of a process.
reading() {
    local pid=$1
    awk '/^VmRSS:/ { rss = $2 } /^VmHWM:/ { hwm = $2 } /^Threads:/ { th = $2 }
        END { printf "%d %d %d", rss, hwm, th }' "/proc/$pid/status"
    printf ' %d\n' "$(find "/proc/$pid/fd" -mindepth 1 -maxdepth 1 | wc -l)"
}

SIP_PORT=$(free_port)
# An empty configuration directory: no user config file is read.
mkdir -p "$WORK/config"
: >"$WORK/tincan.log"
# shellcheck disable=SC2086 # TINCAN_ENV is a list of words.
env XDG_CONFIG_HOME="$WORK/config" ${TINCAN_ENV:-} \
    "$TINCAN" listen --auto-answer $LISTEN_ARGS --bind "127.0.0.1:$SIP_PORT" \
    >"$WORK/tincan.log" 2>&1 &
TINCAN_PID=$!
PIDS+=("$TINCAN_PID")
for _ in $(seq 50); do
    grep -q '^listening' "$WORK/tincan.log" && break
    sleep 0.1
done
grep -q '^listening' "$WORK/tincan.log" || { echo "tincan did not start:" >&2; cat "$WORK/tincan.log" >&2; exit 1; }
sleep 1

# One bounded sipp uac run against tincan: run_sipp DIR CALLS [sipp arguments...].
run_sipp() {
    local dir=$1 calls=$2
    shift 2
    mkdir -p "$dir"
    (
        cd "$dir"
        timeout -k 5 $((calls / RATE + 60)) \
            sipp "127.0.0.1:$SIP_PORT" -i 127.0.0.1 -p "$(free_port)" -mp "$(free_port)" \
            -r "$RATE" -m "$calls" -l "$calls" -nostdin -trace_screen \
            -timeout $((calls / RATE + 50))s "$@" >"$dir/sipp.log" 2>&1 || true
    )
    local screen
    screen=$(cat "$dir"/*_screen.log 2>/dev/null || cat "$dir/sipp.log")
    echo "$(echo "$screen" | awk '/Successful call/ { v = $NF } END { print v + 0 }') $(echo "$screen" | awk '/Failed call/ { v = $NF } END { print v + 0 }')"
}

{
    echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ) $(nproc) CPUs, load average $(cut -d" " -f1-3 /proc/loadavg)"
    echo "# $(sipp -v 2>&1 | grep -m1 SIPp | sed 's/^ *//'); tincan $("$TINCAN" --version 2>/dev/null | head -1) listen --auto-answer $LISTEN_ARGS on 127.0.0.1:$SIP_PORT; environment: ${TINCAN_ENV:-as is}"
} | tee "$OUT"

if [ "$MODE" = calls ]; then
    echo "# $ROUNDS rounds of $CALLS calls (sipp -sn uac) at $RATE calls/s, read ${SETTLE}s after each round" | tee -a "$OUT"
    echo "# round  calls_ok failed   rss_kb   hwm_kb threads fds  rss_growth_kb bytes/call_since_round_1" | tee -a "$OUT"
    read -r rss hwm th fds < <(reading "$TINCAN_PID")
    printf '%7s %9s %6s %8d %8d %7d %3d\n' idle - - "$rss" "$hwm" "$th" "$fds" | tee -a "$OUT"
    first=""
    total=0
    for round in $(seq "$ROUNDS"); do
        read -r ok failed < <(run_sipp "$WORK/round-$round" "$CALLS" -sn uac)
        total=$((total + ok))
        sleep "$SETTLE"
        read -r rss hwm th fds < <(reading "$TINCAN_PID")
        [ -n "$first" ] || { first=$rss; first_total=$total; }
        awk -v r="$round" -v ok="$ok" -v f="$failed" -v rss="$rss" -v hwm="$hwm" -v th="$th" \
            -v fds="$fds" -v first="$first" -v total="$total" -v ft="$first_total" 'BEGIN {
            per = total > ft ? (rss - first) * 1024 / (total - ft) : 0;
            printf "%7d %9d %6d %8d %8d %7d %3d %14d %10.0f\n", r, ok, f, rss, hwm, th, fds, rss - first, per }' |
            tee -a "$OUT"
    done
else
    RTP_PORT=$(free_port)
    # Counts the datagrams arriving on the callers' m= port, per 4-second bucket.
    python3 -c '
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
s.bind(("127.0.0.1", int(sys.argv[1])))
end = time.monotonic() + float(sys.argv[2])
start = time.monotonic()
buckets = {}
s.settimeout(0.2)
while time.monotonic() < end:
    try:
        s.recv(2048)
    except socket.timeout:
        continue
    b = int((time.monotonic() - start) // 4) * 4
    buckets[b] = buckets.get(b, 0) + 1
print("total", sum(buckets.values()))
for b in sorted(buckets):
    print("%d-%ds %d" % (b, b + 4, buckets[b]))
' "$RTP_PORT" $((NOACK_CALLS / RATE + NOACK_WAIT + 5)) >"$WORK/rtp.txt" 2>&1 &
    COUNTER_PID=$!
    PIDS+=("$COUNTER_PID")
    sleep 0.5
    echo "# $NOACK_CALLS INVITEs never ACKed (scripts/sipp/uac-no-ack.xml) at $RATE calls/s; RTP counted on 127.0.0.1:$RTP_PORT" | tee -a "$OUT"
    echo "# when                          calls_ok failed   rss_kb   hwm_kb threads   fds" | tee -a "$OUT"
    read -r rss hwm th fds < <(reading "$TINCAN_PID")
    printf '%-31s %8s %6s %8d %8d %7d %5d\n' idle - - "$rss" "$hwm" "$th" "$fds" | tee -a "$OUT"
    # The largest RSS and fd count seen, sampled every half second.
    (
        max_rss=0 max_fds=0
        while kill -0 "$TINCAN_PID" 2>/dev/null; do
            read -r rss _ _ fds < <(reading "$TINCAN_PID") || break
            [ "$rss" -gt "$max_rss" ] && max_rss=$rss
            [ "$fds" -gt "$max_fds" ] && max_fds=$fds
            echo "$max_rss $max_fds" >"$WORK/peak"
            sleep 0.5
        done
    ) &
    PIDS+=("$!")
    read -r ok failed < <(run_sipp "$WORK/noack" "$NOACK_CALLS" -sf "$PWD/scripts/sipp/uac-no-ack.xml" -key rtp_port "$RTP_PORT")
    read -r rss hwm th fds < <(reading "$TINCAN_PID")
    printf '%-31s %8d %6d %8d %8d %7d %5d\n' "all answered, none ACKed" "$ok" "$failed" "$rss" "$hwm" "$th" "$fds" | tee -a "$OUT"
    sleep "$NOACK_WAIT"
    read -r rss hwm th fds < <(reading "$TINCAN_PID")
    printf '%-31s %8s %6s %8d %8d %7d %5d\n' "${NOACK_WAIT}s later (Timer H fired)" - - "$rss" "$hwm" "$th" "$fds" | tee -a "$OUT"
    read -r max_rss max_fds <"$WORK/peak"
    echo "# largest seen (sampled every 0.5 s): rss $max_rss kB, $max_fds fds" | tee -a "$OUT"
    wait "$COUNTER_PID" || true
    echo "# RTP packets received on the callers' m= port: $(head -1 "$WORK/rtp.txt")" | tee -a "$OUT"
    sed 's/^/#   /' "$WORK/rtp.txt" | tail -n +2 | tee -a "$OUT"
fi

kill "$TINCAN_PID"
wait "$TINCAN_PID" 2>/dev/null || true
echo "results in $OUT (logs in $WORK)" >&2
