#!/usr/bin/env bash
# Tincan behind a real NAT (issue 15), end to end, in network namespaces (see nat-lab.sh):
#
#   1. `tincan nat` from behind the cone NAT (masquerade) with two STUN servers on the WAN:
#      public address 203.0.113.1, mapping endpoint-independent, exit 0; from behind the
#      symmetric NAT (masquerade fully-random): endpoint-dependent, exit 3.
#   2. Tincan behind the cone NAT (account `uat`, `[network] stun_server`) registers at
#      kamailio on the WAN (kamailio-wan.cfg: no nathelper, the UA must make its Contact
#      reachable itself): its Contact is rewritten to 203.0.113.1 (received/rport).
#   3. A Tincan on the WAN (account `alice`) calls uat@example.test: the call reaches the phone
#      behind the NAT, its 200's SDP names the STUN-learned public address, and audio flows both
#      ways (a 440 Hz tone from behind the NAT, 880 Hz from the WAN, checked in the recordings).
#
# Needs root, nftables (`nft`), kamailio, python3 and a built `tincan` (TINCAN=path, default
# target/debug/tincan). Addresses are documentation ranges inside namespaces this script
# creates and deletes; everything it starts is stopped by PID. Prints PASS/FAIL lines; exit 0
# when everything passed.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
T=${TINCAN:-$root/target/debug/tincan}
P=tnc$$
W=$(mktemp -d /tmp/tincan-nat-lab.XXXXXX)
pids=()
fails=0
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
    sleep 0.5
    bash "$here/nat-lab.sh" down "$P"
    rm -rf "$W"
}
trap cleanup EXIT
for tool in nft kamailio python3 ip; do
    command -v $tool >/dev/null || { echo "SKIP: $tool is not installed"; exit 77; }
done
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root (network namespaces)"; exit 77; }
[ -x "$T" ] || { echo "SKIP: no tincan binary at $T (cargo build -p tincan)"; exit 77; }
pass() { echo "PASS $*"; }
fail() { echo "FAIL $*"; fails=$((fails + 1)); }

bash "$here/nat-lab.sh" up "$P" >/dev/null || { echo "FAIL: the lab did not come up"; exit 1; }
mkdir -p "$W/kam/run"
cp "$here/kamailio-wan.cfg" "$W/kam/"
ip netns exec "$P-wan" kamailio -f "$W/kam/kamailio-wan.cfg" -DD -E -n 2 -m 64 -M 8 \
    -P "$W/kam/kamailio.pid" -Y "$W/kam/run" -w "$W/kam" > "$W/kam/kamailio.log" 2>&1 &
pids+=($!)
for port in 3478 3479; do
    ip netns exec "$P-wan" python3 "$here/stun-server.py" 203.0.113.10 $port > "$W/stun-$port.log" 2>&1 &
    pids+=($!)
done
sleep 2

# 1. tincan nat
out=$(ip netns exec "$P-lan-a" "$T" nat --json --stun-server 203.0.113.10:3478 --stun-server 203.0.113.10:3479); rc=$?
if [ $rc = 0 ] && grep -q '"public":"203.0.113.1:' <<<"$out" && grep -q '"mapping":"endpoint-independent"' <<<"$out"; then
    pass "tincan nat behind the cone NAT: $out"
else fail "tincan nat behind the cone NAT (exit $rc): $out"; fi
out=$(ip netns exec "$P-lan-b" "$T" nat --json --stun-server 203.0.113.10:3478 --stun-server 203.0.113.10:3479); rc=$?
if [ $rc = 3 ] && grep -q '"mapping":"endpoint-dependent"' <<<"$out"; then
    pass "tincan nat behind the symmetric NAT: $out"
else fail "tincan nat behind the symmetric NAT (exit $rc): $out"; fi

# 2. and 3. register behind the NAT, a call from the WAN, audio both ways
python3 - "$W" <<'PY'
import math, struct, sys, wave
for name, f in (("lan-440.wav", 440), ("wan-880.wav", 880)):
    w = wave.open(f"{sys.argv[1]}/{name}", "wb"); w.setnchannels(1); w.setsampwidth(2); w.setframerate(8000)
    w.writeframes(b"".join(struct.pack("<h", int(8000 * math.sin(2 * math.pi * f * i / 8000))) for i in range(8000 * 8)))
    w.close()
PY
cat > "$W/lan.toml" <<CONF
[network]
stun_server = "203.0.113.10:3478"
[[account]]
name = "uat"
aor = "sip:uat@example.test"
username = "uat"
password = "uatpw"
registrars = ["sip:203.0.113.10"]
CONF
cat > "$W/wan.toml" <<CONF
[[account]]
name = "alice"
aor = "sip:alice@example.test"
username = "alice"
password = "alicepw"
registrars = ["sip:203.0.113.10"]
CONF
chmod 600 "$W"/*.toml
ip netns exec "$P-lan-a" timeout 30 "$T" --config "$W/lan.toml" listen --account uat --auto-answer \
    --play "$W/lan-440.wav" --record "$W/lan-heard.wav" --max-calls 1 --sip-trace "$W/lan.trace" \
    > "$W/listen.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 50); do grep -q "registered at" "$W/listen.log" 2>/dev/null && break; sleep 0.2; done
sleep 1
ip netns exec "$P-wan" timeout 30 "$T" --config "$W/wan.toml" call sip:uat@example.test --account alice \
    --bind 203.0.113.10:0 --play "$W/wan-880.wav" --record "$W/wan-heard.wav" --duration 5 \
    > "$W/call.log" 2>&1; rc=$?
for _ in $(seq 1 50); do grep -q "call ended" "$W/listen.log" 2>/dev/null && break; sleep 0.2; done
if grep -q "^Contact: <sip:uat@203.0.113.1:" "$W/lan.trace"; then
    pass "the Contact behind the NAT is rewritten to the public address"
else fail "no REGISTER with the public Contact"; fi
[ $rc = 0 ] && pass "the call from the WAN was answered" || fail "the call from the WAN (exit $rc): $(tail -3 "$W/call.log")"
if grep -q "^c=IN IP4 203.0.113.1" "$W/lan.trace"; then
    pass "the SDP behind the NAT names the STUN-learned public address"
else fail "the SDP behind the NAT does not name 203.0.113.1"; fi
check_tone() { # file, frequency
    python3 - "$1" "$2" <<'PY'
import math, struct, sys, wave
w = wave.open(sys.argv[1], "rb"); rate, n, ch = w.getframerate(), w.getnframes(), w.getnchannels()
s = struct.unpack("<%dh" % (n * ch), w.readframes(n))[::ch][rate // 2:]
rms = math.sqrt(sum(x * x for x in s) / max(len(s), 1))
zc = sum(1 for a, b in zip(s, s[1:]) if (a < 0) != (b < 0))
f = zc / 2 / max(len(s) / rate, 1e-9)
ok = rms > 1000 and abs(f - float(sys.argv[2])) < 30
print(f"{sys.argv[1].rsplit('/', 1)[-1]}: rms {rms:.0f}, ~{f:.0f} Hz")
sys.exit(0 if ok else 1)
PY
}
if r=$(check_tone "$W/lan-heard.wav" 880 2>&1); then pass "behind the NAT hears the WAN's 880 Hz: $r"; else fail "behind the NAT: $r"; fi
if r=$(check_tone "$W/wan-heard.wav" 440 2>&1); then pass "the WAN hears 440 Hz from behind the NAT: $r"; else fail "on the WAN: $r"; fi
if [ $fails = 0 ]; then echo "nat lab: all passed"; else echo "nat lab: $fails failed"; fi
[ $fails = 0 ]
