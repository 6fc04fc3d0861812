#!/usr/bin/env bash
# Captures the full-screen phone's screens for docs/phone.md: `tincan phone` registered as
# alice at the lab kamailio with a call up to baresip bob, in tmux at 80x24 (and its help
# overlay) and resized to 200x50. Runs interop-tests/tests/phone-tmux-screens.rs with
# TINCAN_PHONE_SCREENS set; needs tmux, kamailio and baresip (scripts/install-deps.sh --test).
# Bounded: every wait of the test times out after 30 s.
#
#   scripts/phone-screens.sh          writes $OUT/80x24.txt, 80x24-help.txt, 200x50.txt
#                                     and prints them
#
# Environment: OUT (default <repo>/target/phone-screens), CARGO_TARGET_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/target/phone-screens}
mkdir -p "$OUT"
TINCAN_PHONE_SCREENS=$OUT cargo test --quiet -p tincan-interop-tests \
    --test phone-tmux-screens >/dev/null
for f in 80x24 80x24-help 200x50; do
    echo "== $f ($OUT/$f.txt)"
    cat "$OUT/$f.txt"
done
