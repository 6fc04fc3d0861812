# Sourced by the bench-*.sh scripts: what each of them needs to start peers on loopback and
# stop exactly what it started.

# PIDs of everything the script started; each is killed and reaped on exit (by PID, never by
# name).
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
}
trap cleanup EXIT

# A free UDP port on 127.0.0.1.
free_port() {
    python3 -c 'import socket
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("127.0.0.1", 0))
print(u.getsockname()[1])'
}
