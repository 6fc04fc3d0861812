#!/usr/bin/env bash
# Installs the Debian packages Tincan needs. Idempotent; runs apt-get only for what is missing.
#
#   scripts/install-deps.sh          build dependencies (what `cargo build` needs)
#   scripts/install-deps.sh --test   build dependencies plus the real peers the tests start
#                                    (sipp, kamailio with its presence modules, baresip,
#                                    dnsmasq, opus-tools, pulseaudio,
#                                    tmux for the full-screen phone's tests...) and the
#                                    Python packages of the speech-quality test and benchmark
#                                    (pip install pesq numpy scipy: interop-tests/tests/
#                                    pesq-clean.rs, scripts/bench-pesq.sh)
set -euo pipefail

build_pkgs=(pkg-config libasound2-dev cmake build-essential ca-certificates)
# kamailio: the lab registrar/proxy; its dispatcher module (the fleet test) is in the same package.
test_pkgs=(sip-tester kamailio kamailio-presence-modules kamailio-sqlite-modules sqlite3
           sipsak dnsmasq-base dnsutils baresip-core opus-tools sox
           espeak-ng pulseaudio pulseaudio-utils libasound2-plugins iproute2 openssl procps
           tmux nftables python3 python3-pip python3-dev)

want=("${build_pkgs[@]}")
if [[ "${1:-}" == "--test" ]]; then
    want+=("${test_pkgs[@]}")
fi

missing=()
for p in "${want[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done

# PESQ (ITU-T P.862) from PyPI: a C extension, built with the compiler of build-essential.
pip_missing() {
    [[ "${1:-}" == "--test" ]] && ! python3 -c 'import pesq, numpy, scipy' 2>/dev/null
}
# Debian's own python3 is "externally managed" (PEP 668): pip needs to be told.
pip_install() {
    echo "install-deps: pip install pesq numpy scipy" >&2
    python3 -m pip install --quiet pesq numpy scipy 2>/dev/null ||
        python3 -m pip install --quiet --break-system-packages pesq numpy scipy
}

if ((${#missing[@]} == 0)); then
    if pip_missing "${1:-}"; then
        pip_install
    fi
    exit 0
fi

sudo=""
if [[ $(id -u) -ne 0 ]]; then
    sudo="sudo"
fi
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
# On a systemd host the kamailio package starts a service on :5060; tests need the port.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet kamailio 2>/dev/null; then
    $sudo systemctl disable --now kamailio || true
fi
if pip_missing "${1:-}"; then
    pip_install
fi
