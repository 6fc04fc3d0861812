#!/usr/bin/env bash
# The run command (README): installs the build dependencies, builds Tincan and runs its main job,
# `tincan demo`: two Tincan phones in one process call each other on loopback over SIP with
# SRTP and Opus; a voice-like signal flows both ways, live call state and quality are shown, and
# the summary says whether the audio arrived intact (exit 0 when it did). No provider and no
# sound card needed. Extra arguments go to `tincan demo` (e.g. --json, --seconds 10, --audio).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cargo build --release --locked -q -p tincan
exec target/release/tincan demo "$@"
