#!/usr/bin/env bash
# The run command (README): installs the build dependencies, then runs Tincan's main job.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cargo run --release --locked -q -p tincan -- parse sip-core/tests/data/samples/invite.sip sip-core/tests/data/rfc4475/badvers.dat "$@"
