#!/usr/bin/env bash
# The test command (README): installs what the build and the interop tests need, then runs
# every test of the workspace, the interop tests against real peers included.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh --test
cargo test --workspace --locked "$@"
