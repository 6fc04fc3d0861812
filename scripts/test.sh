#!/usr/bin/env bash
# The test command (README): installs what the build and the interop tests need, then runs
# every test of the workspace, the interop tests against real peers included. A test that
# cannot run here appends a `TINCAN-SKIP:` line to $TINCAN_SKIP_LOG (interop-tests/src/skip.rs;
# with CI=true it fails instead); the skips are listed at the end, since `cargo test` hides a
# passing test's output.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh --test
TINCAN_SKIP_LOG="$(mktemp "${TMPDIR:-/tmp}/tincan-skips.XXXXXX")"
export TINCAN_SKIP_LOG
list_skips() {
    if [[ -s "$TINCAN_SKIP_LOG" ]]; then
        echo "test.sh: $(wc -l <"$TINCAN_SKIP_LOG") test(s) or part(s) of tests skipped:" >&2
        sort "$TINCAN_SKIP_LOG" >&2
    else
        echo "test.sh: no test skipped" >&2
    fi
    rm -f "$TINCAN_SKIP_LOG"
}
trap list_skips EXIT
cargo test --workspace --locked "$@"
