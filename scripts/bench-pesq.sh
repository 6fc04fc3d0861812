#!/usr/bin/env bash
# Speech quality benchmark (issue 18): PESQ-WB (ITU-T P.862.2, the `pesq` package from PyPI) of
# the speech a callee receives against the speech the caller sent, Tincan to Tincan and, in the
# same run and the same conditions, baresip to baresip, with Opus, G.722 and PCMU at 0, 5, 10
# and 20 % random packet loss; median of 3 calls. Prints a markdown table with the ratios
# Tincan/baresip (docs/benchmarks-media.md, "Speech quality (PESQ)").
#
# The speech: a few Harvard sentences from espeak-ng, 16 kHz mono, about 10 s. The calls: two
# network namespaces (pesq-a 192.0.2.1, pesq-b 192.0.2.2, a veth pair, deleted at the end);
# the loss: an nftables rule on the callee's input hook, `udp dport != 5060 numgen random mod
# 100 < N drop` (RTP and RTCP, never SIP). Each side at its defaults: `tincan call --codec C
# --play speech.wav` to `tincan listen --auto-answer --record`; baresip's `aufile` source to
# baresip's `sndfile` recording (the lab config, interop-tests/lab/baresip/alice/config).
# The recording is resampled to 16 kHz, aligned to the reference by cross-correlation and
# trimmed to it (scripts/pesq_bench.py).
#
#   sudo scripts/bench-pesq.sh            the full table (~13 min: 72 calls of ~11 s)
#   sudo QUICK=1 scripts/bench-pesq.sh    Opus at 0 and 10 %, one call each (~1 min)
#
# Needs root (namespaces, nftables). Installs what is missing: espeak-ng, sox, baresip-core,
# nftables, iproute2 (scripts/install-deps.sh --test) and `pip install pesq numpy scipy`
# (pesq builds a C extension: needs a C compiler and the Python headers).
#
# Environment: QUICK=1; CODECS (default opus,g722,pcmu), LOSSES (0,5,10,20), RUNS (3),
#              IMPLS (tincan,baresip), KEEP=1 (keep the scratch dir with every recording and
#              log), TINCAN_BINARY (a tincan to measure instead of the release build),
#              CARGO_TARGET_DIR (default <repo>/target).
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ $(id -u) -ne 0 ]]; then
    echo "bench-pesq: needs root (network namespaces and nftables); run it with sudo" >&2
    exit 1
fi
scripts/install-deps.sh --test
if ! python3 -c 'import pesq, numpy, scipy' 2>/dev/null; then
    echo "bench-pesq: installing pesq numpy scipy (pip)" >&2
    python3 -m pip install --quiet pesq numpy scipy
fi
TARGET=${CARGO_TARGET_DIR:-$PWD/target}
if [[ -z "${TINCAN_BINARY:-}" ]]; then
    echo "building tincan (release)..." >&2
    CARGO_TARGET_DIR=$TARGET cargo build --quiet --release -p tincan --bin tincan
    TINCAN_BINARY=$TARGET/release/tincan
fi
if [[ -n "${QUICK:-}" ]]; then
    CODECS=${CODECS:-opus} LOSSES=${LOSSES:-0,10} RUNS=${RUNS:-1}
fi
echo "measuring $TINCAN_BINARY and $(baresip -h 2>&1 | head -1 | cut -d' ' -f1-2) on" \
    "$(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
args=(table --tincan "$TINCAN_BINARY"
      --baresip-template interop-tests/lab/baresip/alice/config
      --codecs "${CODECS:-opus,g722,pcmu}" --losses "${LOSSES:-0,5,10,20}"
      --runs "${RUNS:-3}" --impls "${IMPLS:-tincan,baresip}")
if [[ -n "${KEEP:-}" ]]; then
    args+=(--keep)
fi
exec python3 scripts/pesq_bench.py "${args[@]}"
