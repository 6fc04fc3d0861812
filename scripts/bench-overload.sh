#!/usr/bin/env bash
# Overload benchmark (issue 19, finding 2): sipp's built-in uac against
# `tincan listen --auto-answer` (release build) stepped past its capacity, and in the same run
# against sipp's own built-in uas (the reference); then a cold start at a rate above capacity.
# Everything on 127.0.0.1; every load bounded in calls (-m) and time (-timeout, and coreutils
# timeout around each sipp).
#
# It reports, per rate and server: successful and failed calls, the 503s sipp received, the
# INVITE/BYE retransmissions; the highest rate with 0 failed calls for each server and their
# ratio. Then the cold phase: a fresh `listen` hit at COLD_RATE for COLD_SECONDS: successful,
# failed, 503s, and the calls still up SETTLE seconds after the load (from listen's --json
# events: incoming minus ended). All along an OPTIONS pinger (sipp, lab options_uac.xml, 5/s)
# checks that Tincan answers OPTIONS: its successful and failed pings are reported per phase.
# RSS and open fds of the tincan process: before the load, at peak (sampled every 0.5 s) and
# after.
#
# Not a test: the figures depend on the machine. Run it on a quiet one.
#
# Usage: scripts/bench-overload.sh [RATE...]          (default: 500 1000 2000 4000)
# Environment: SECONDS_PER_RATE (default 3), CALL_MS (sipp -d, default 0), CALL_LIMIT
#              (listen --call-limit, default 100), COLD_RATE (default twice the highest
#              RATE), COLD_SECONDS
#              (default 3), SETTLE (default 70), BUFF_SIZE (sipp -buff_size, default 4194304),
#              UDP_BUFFER (tincan's [network] udp_buffer_size in bytes, default: its own 4 MiB;
#              0: the system's default),
#              CARGO_TARGET_DIR (default <repo>/target), OUT (default
#              <target>/bench-overload.txt).
set -euo pipefail

cd "$(dirname "$0")/.."
RATES=("$@")
[ ${#RATES[@]} -gt 0 ] || RATES=(500 1000 2000 4000)
SECONDS_PER_RATE=${SECONDS_PER_RATE:-3}
CALL_MS=${CALL_MS:-0}
CALL_LIMIT=${CALL_LIMIT:-100}
HIGHEST=$(printf '%s\n' "${RATES[@]}" | sort -n | tail -1)
COLD_RATE=${COLD_RATE:-$((HIGHEST * 2))}
COLD_SECONDS=${COLD_SECONDS:-3}
SETTLE=${SETTLE:-70}
BUFF_SIZE=${BUFF_SIZE:-4194304}
TARGET=${CARGO_TARGET_DIR:-$PWD/target}
OUT=${OUT:-$TARGET/bench-overload.txt}
WORK=$(mktemp -d /tmp/bench-overload.XXXXXX)
OPTIONS_XML=$PWD/interop-tests/lab/sipp/options_uac.xml
# The config tincan listen runs with: only what the environment asks for.
CONFIG=$WORK/config.toml
{
    echo "[network]"
    [ -n "${UDP_BUFFER:-}" ] && echo "udp_buffer_size = $UDP_BUFFER"
} >"$CONFIG"

command -v sipp >/dev/null || { echo "sipp is not installed (scripts/install-deps.sh --test)" >&2; exit 2; }

echo "building tincan (release)..." >&2
CARGO_TARGET_DIR=$TARGET cargo build --quiet --release -p tincan --bin tincan
TINCAN=$TARGET/release/tincan

# PIDS, cleanup (on exit), free_port.
source scripts/bench-common.sh  # the working directory is the repository root

# The kernel's count of UDP datagrams dropped because a socket's receive buffer was full
# (system-wide: sipp's sockets too).
rcvbuf_errors() {
    awk '/^Udp:/ { if (!h) { for (i = 1; i <= NF; i++) if ($i == "RcvbufErrors") c = i; h = 1 } else print $c }' /proc/net/snmp
}

# Datagrams the kernel dropped on the UDP socket bound to 127.0.0.1:PORT (its receive buffer
# was full): the last column of /proc/net/udp.
socket_drops() {
    awk -v a="0100007F:$(printf '%04X' "$1")" '$2 == a { print $NF }' /proc/net/udp
}

# "RSS_KiB fds" of a process now.
mem_of() {
    local rss fds
    rss=$(awk '/^VmRSS/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0)
    fds=$(find "/proc/$1/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
    echo "${rss:-0} $fds"
}

# sample PID FILE: the largest RSS and fd count seen, every 0.5 s, until killed.
sample() {
    local pid=$1 file=$2 max_rss=0 max_fds=0 rss fds
    while kill -0 "$pid" 2>/dev/null; do
        read -r rss fds < <(mem_of "$pid")
        [ "$rss" -gt "$max_rss" ] && max_rss=$rss
        [ "$fds" -gt "$max_fds" ] && max_fds=$fds
        echo "$max_rss $max_fds" >"$file"
        sleep 0.5
    done
}

# start_listen NAME: a fresh `tincan listen`; sets LISTEN_PID, LISTEN_ADDR, LISTEN_LOG.
start_listen() {
    local port
    port=$(free_port)
    LISTEN_LOG="$WORK/$1.jsonl"
    "$TINCAN" --config "$CONFIG" listen --auto-answer --no-audio --json --bind "127.0.0.1:$port" \
        --call-limit "$CALL_LIMIT" >"$LISTEN_LOG" 2>"$WORK/$1.err" &
    LISTEN_PID=$!
    PIDS+=("$LISTEN_PID")
    for _ in $(seq 100); do
        grep -q '"listening"' "$LISTEN_LOG" 2>/dev/null && break
        sleep 0.1
    done
    grep -q '"listening"' "$LISTEN_LOG" || { echo "tincan listen did not start" >&2; cat "$WORK/$1.err" >&2; exit 1; }
    LISTEN_ADDR=127.0.0.1:$port
    LISTEN_PORT=$port
}

# start_pinger NAME ADDR SECONDS: OPTIONS at 5/s for SECONDS in the background; sets PING_DIR.
start_pinger() {
    PING_DIR="$WORK/ping-$1"
    mkdir -p "$PING_DIR"
    local n=$(($3 * 5))
    (
        cd "$PING_DIR"
        timeout -k 5 $(($3 + 60)) \
        sipp "$2" -sf "$OPTIONS_XML" -s tincan -i 127.0.0.1 -p "$(free_port)" -cp "$(free_port)" \
            -r 5 -m "$n" -timeout $(($3 + 50))s -nostdin -trace_screen >sipp.log 2>&1 || true
    ) &
    PING_PID=$!
    PIDS+=("$PING_PID")
}

# "ok failed" of a finished pinger (wait for it first: `wait` works only in the main shell).
pinger_result() {
    local screen
    screen=$(cat "$PING_DIR"/*_screen.log 2>/dev/null || cat "$PING_DIR/sipp.log")
    echo "$screen" | awk '/Successful call/ { ok = $NF } /Failed call/ { f = $NF } END { print ok + 0, f + 0 }'
}

# run_uac NAME ADDR RATE SECONDS: one bounded sipp uac run; prints
# "ok failed 503s retransmissions".
run_uac() {
    local name=$1 addr=$2 rate=$3 secs=$4
    local calls=$((rate * secs))
    local dir="$WORK/$name-$rate"
    mkdir -p "$dir"
    (
        cd "$dir"
        timeout -k 5 $((secs * 5 + CALL_MS / 1000 + 60)) \
        sipp -sn uac "$addr" -i 127.0.0.1 -p "$(free_port)" -mp "$(free_port)" -cp "$(free_port)" \
            -r "$rate" -m "$calls" -l $((rate * (CALL_MS / 1000 + 4) + 100)) -d "$CALL_MS" -buff_size "$BUFF_SIZE" \
            -timeout $((secs * 5 + CALL_MS / 1000 + 50))s -nostdin -trace_screen -trace_err \
            >"$dir/sipp.log" 2>&1 || true
    )
    local screen ok failed retrans busy
    screen=$(cat "$dir"/*_screen.log 2>/dev/null || cat "$dir/sipp.log")
    ok=$(echo "$screen" | awk '/Successful call/ { v = $NF } END { print v + 0 }')
    failed=$(echo "$screen" | awk '/Failed call/ { v = $NF } END { print v + 0 }')
    retrans=$(echo "$screen" | awk '$1 ~ /^(INVITE|BYE)$/ && $2 ~ /^-+>$/ { v[$1] = $4 } END { print v["INVITE"] + v["BYE"] }')
    busy=$(cat "$dir"/*_errors.log 2>/dev/null | grep -c "received 'SIP/2.0 503" || true)
    echo "$ok $failed ${busy:-0} $retrans"
}

# sipp's own uas, the reference, for the whole run.
SIPP_UAS_PORT=$(free_port)
sipp -sn uas -i 127.0.0.1 -p "$SIPP_UAS_PORT" -mp "$(free_port)" -cp "$(free_port)" \
    -buff_size "$BUFF_SIZE" -nostdin -timeout 3600s >"$WORK/sipp-uas.log" 2>&1 &
SIPP_UAS_PID=$!
PIDS+=("$SIPP_UAS_PID")

start_listen steps
sleep 1
kill -0 "$SIPP_UAS_PID" || { echo "sipp uas did not start" >&2; cat "$WORK/sipp-uas.log" >&2; exit 1; }

{
    echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ) $(nproc) CPUs: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
    echo "# load average before the run: $(cut -d" " -f1-3 /proc/loadavg)"
    echo "# $(sipp -v 2>&1 | grep -m1 SIPp | sed 's/^ *//'); ${SECONDS_PER_RATE}s per rate, calls of ${CALL_MS} ms; listen --call-limit $CALL_LIMIT; tincan udp_buffer_size ${UDP_BUFFER:-default}; net.core.rmem_max $(cat /proc/sys/net/core/rmem_max)"
    echo "# phase  server  rate   calls      ok  failed    503s retrans"
} | tee "$OUT"

# --- steps ---------------------------------------------------------------------------------
read -r RSS0 FDS0 < <(mem_of "$LISTEN_PID")
DROPS0=$(rcvbuf_errors)
sample "$LISTEN_PID" "$WORK/peak-steps" &
PIDS+=("$!")
STEP_SECONDS=$(( ${#RATES[@]} * 2 * (SECONDS_PER_RATE + CALL_MS / 1000 + 2) ))
start_pinger steps "$LISTEN_ADDR" "$STEP_SECONDS"
BEST_TINCAN=0
BEST_SIPP=0
FIRST_FAIL_TINCAN=none
FIRST_FAIL_SIPP=none
for rate in "${RATES[@]}"; do
    calls=$((rate * SECONDS_PER_RATE))
    read -r ok failed busy retrans < <(run_uac tincan "$LISTEN_ADDR" "$rate" "$SECONDS_PER_RATE")
    printf "steps  %-7s %5d %7d %7d %7d %7d %7d\n" tincan "$rate" "$calls" "$ok" "$failed" "$busy" "$retrans" | tee -a "$OUT"
    if [ "$failed" -eq 0 ] && [ "$ok" -eq "$calls" ]; then
        [ "$rate" -gt "$BEST_TINCAN" ] && BEST_TINCAN=$rate
    elif [ "$FIRST_FAIL_TINCAN" = none ]; then
        FIRST_FAIL_TINCAN=$rate
    fi
    read -r ok failed busy retrans < <(run_uac sipp "127.0.0.1:$SIPP_UAS_PORT" "$rate" "$SECONDS_PER_RATE")
    printf "steps  %-7s %5d %7d %7d %7d %7d %7d\n" sipp "$rate" "$calls" "$ok" "$failed" "$busy" "$retrans" | tee -a "$OUT"
    if [ "$failed" -eq 0 ] && [ "$ok" -eq "$calls" ]; then
        [ "$rate" -gt "$BEST_SIPP" ] && BEST_SIPP=$rate
    elif [ "$FIRST_FAIL_SIPP" = none ]; then
        FIRST_FAIL_SIPP=$rate
    fi
done
wait "$PING_PID" 2>/dev/null || true
read -r PING_OK PING_FAILED < <(pinger_result)
sleep 2
read -r RSS1 FDS1 < <(mem_of "$LISTEN_PID")
read -r PEAK_RSS PEAK_FDS <"$WORK/peak-steps"
incoming=$(grep -c '"event":"incoming"' "$LISTEN_LOG" || true)
ended=$(grep -c '"event":"ended"' "$LISTEN_LOG" || true)
refused=$(grep -c '"event":"refused"' "$LISTEN_LOG" || true)
{
    echo "# steps: highest rate with 0 failed calls: tincan $BEST_TINCAN calls/s, sipp uas $BEST_SIPP calls/s$(
        [ "$BEST_SIPP" -gt 0 ] && awk -v t="$BEST_TINCAN" -v s="$BEST_SIPP" 'BEGIN { printf " (ratio %.2f)", t / s }')"
    echo "# steps: lowest rate with failed calls: tincan $FIRST_FAIL_TINCAN, sipp uas $FIRST_FAIL_SIPP"
    echo "# steps: listen saw $incoming calls, $ended ended, $refused refused (503 by the call limit); OPTIONS pings $PING_OK ok, $PING_FAILED failed"
    echo "# steps: UDP datagrams dropped by the kernel (full receive buffers): $(socket_drops "$LISTEN_PORT") on tincan's socket, $(($(rcvbuf_errors) - DROPS0)) on all sockets (sipp's too)"
    echo "# steps: tincan RSS ${RSS0} KiB / ${FDS0} fds before, ${PEAK_RSS} KiB / ${PEAK_FDS} fds at peak, ${RSS1} KiB / ${FDS1} fds after"
} | tee -a "$OUT"
kill "$LISTEN_PID" 2>/dev/null || true
wait "$LISTEN_PID" 2>/dev/null || true

# --- cold ----------------------------------------------------------------------------------
start_listen cold
read -r RSS0 FDS0 < <(mem_of "$LISTEN_PID")
DROPS0=$(rcvbuf_errors)
sample "$LISTEN_PID" "$WORK/peak-cold" &
PIDS+=("$!")
start_pinger cold "$LISTEN_ADDR" $((COLD_SECONDS + CALL_MS / 1000 + SETTLE))
calls=$((COLD_RATE * COLD_SECONDS))
# Its own directory name: a step at the same rate left its sipp screen in tincan-RATE.
read -r ok failed busy retrans < <(run_uac cold "$LISTEN_ADDR" "$COLD_RATE" "$COLD_SECONDS")
printf "cold   %-7s %5d %7d %7d %7d %7d %7d\n" tincan "$COLD_RATE" "$calls" "$ok" "$failed" "$busy" "$retrans" | tee -a "$OUT"
echo "waiting ${SETTLE}s after the load..." >&2
sleep "$SETTLE"
incoming=$(grep -c '"event":"incoming"' "$LISTEN_LOG" || true)
ended=$(grep -c '"event":"ended"' "$LISTEN_LOG" || true)
refused=$(grep -c '"event":"refused"' "$LISTEN_LOG" || true)
read -r RSS1 FDS1 < <(mem_of "$LISTEN_PID")
read -r PEAK_RSS PEAK_FDS <"$WORK/peak-cold"
wait "$PING_PID" 2>/dev/null || true
read -r PING_OK PING_FAILED < <(pinger_result)
{
    echo "# cold: ${SETTLE}s after the load: $((incoming - ended)) calls left up (listen saw $incoming, $ended ended, $refused refused by the call limit)"
    echo "# cold: OPTIONS pings during the load and after: $PING_OK ok, $PING_FAILED failed"
    echo "# cold: UDP datagrams dropped by the kernel (full receive buffers): $(socket_drops "$LISTEN_PORT") on tincan's socket, $(($(rcvbuf_errors) - DROPS0)) on all sockets (sipp's too)"
    echo "# cold: tincan RSS ${RSS0} KiB / ${FDS0} fds before, ${PEAK_RSS} KiB / ${PEAK_FDS} fds at peak, ${RSS1} KiB / ${FDS1} fds after"
} | tee -a "$OUT"
echo "results in $OUT (logs in $WORK)" >&2
