#!/usr/bin/env bash
# Starts a PulseAudio server with a null sink (and its monitor as the default source) for the
# cpal device tests, on a private socket; prints the shell lines that export its address:
#   eval "$(bash scripts/pulseaudio-null-sink.sh start)"   ...   bash scripts/pulseaudio-null-sink.sh stop
# `.ci/run` does this so the real audio path is tested in CI. Stopped by PID, never by name.
set -euo pipefail
dir="${TINCAN_CI_PULSE_DIR:-/tmp/tincan-ci-pulse}"
case "${1:-start}" in
start)
    command -v pulseaudio >/dev/null || { echo "pulseaudio-null-sink: pulseaudio is not installed" >&2; exit 1; }
    rm -rf "$dir" && mkdir -p "$dir"
    # PulseAudio refuses root unless told otherwise; the CI runs as root.
    root_flags=()
    [ "$(id -u)" = 0 ] && root_flags=(--system=false)
    HOME="$dir" XDG_RUNTIME_DIR="$dir" XDG_CONFIG_HOME="$dir" PULSE_RUNTIME_PATH="$dir" \
        setsid pulseaudio -n "${root_flags[@]}" --daemonize=no --exit-idle-time=-1 --use-pid-file=no \
        --disallow-exit \
        -L "module-native-protocol-unix socket=$dir/native auth-anonymous=1" \
        -L "module-null-sink sink_name=nullsink rate=48000 channels=2" \
        -L "module-null-source source_name=nullsource rate=48000 channels=1" \
        </dev/null >"$dir/pulseaudio.log" 2>&1 &
    echo $! >"$dir/pid"
    for _ in $(seq 1 300); do
        [ -S "$dir/native" ] && break
        sleep 0.05
    done
    if [ ! -S "$dir/native" ]; then
        echo "pulseaudio-null-sink: no socket after 15 s; log:" >&2
        cat "$dir/pulseaudio.log" >&2 || true
        exit 1
    fi
    PULSE_SERVER="unix:$dir/native" pactl set-default-sink nullsink >&2
    PULSE_SERVER="unix:$dir/native" pactl set-default-source nullsink.monitor >&2
    echo "export TINCAN_CI_PULSE_SERVER=unix:$dir/native"
    echo "echo 'PulseAudio null sink at unix:$dir/native (pid $(cat "$dir/pid"))' >&2"
    ;;
stop)
    if [ -f "$dir/pid" ]; then
        kill "$(cat "$dir/pid")" 2>/dev/null || true
        rm -f "$dir/pid"
    fi
    ;;
*)
    echo "usage: $0 start|stop" >&2
    exit 2
    ;;
esac
