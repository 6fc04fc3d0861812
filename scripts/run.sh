#!/usr/bin/env bash
# The run command (README): installs the build dependencies, builds Tincan and runs its main
# job. Until calls exist (issue 6 makes this `tincan demo`), the main job shows the verdicts a
# Tincan user agent gives a good INVITE and an RFC 4475 torture message.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cargo build --release --locked -q -p tincan
tincan=target/release/tincan
echo "== a well-formed INVITE with SDP"
"$tincan" parse sip-core/tests/data/samples/invite.sip "$@"
echo "== RFC 4475 torture messages (badvers, ncl, wsinv)"
# Rejections are the expected verdicts here: the exit status of this line is not the job's.
"$tincan" parse sip-core/tests/data/rfc4475/badvers.dat sip-core/tests/data/rfc4475/ncl.dat \
    sip-core/tests/data/rfc4475/wsinv.dat "$@" || true
