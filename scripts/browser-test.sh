#!/usr/bin/env bash
# The browser tests (web/tests/): the real `videoflix serve` (debug build) on a free port with a
# temporary SQLite database and a real SMTP sink, driven in headless Debian Chromium through
# playwright-core. Installs Chromium and the npm packages when missing and builds web/ when
# stale. Screenshots go to web/test-results/; UPDATE_DOCS_SCREENSHOTS=1 also copies the catalog
# and player ones to docs/ for the README.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

ensure_chromium
need_packages ffmpeg
build_web
cargo build --locked --quiet --bin videoflix
export VIDEOFLIX_BIN="${CARGO_TARGET_DIR:-$PWD/target}/debug/videoflix"
cd web
exec node --test --test-concurrency=1 tests/
