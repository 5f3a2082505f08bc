#!/usr/bin/env bash
# Line coverage of the whole test suite (unit tests plus the API stories on SQLite/in-process and
# on PostgreSQL + Redis), instrumented with cargo-llvm-cov: an HTML report and a per-file summary
# with a TOTAL line. Installs what is missing (rustup's llvm-tools, cargo-llvm-cov, the build
# dependencies and test services of scripts/test.sh). Slow (an instrumented build of everything
# and the full suite), so not part of the test command. Extra arguments go to the test binaries'
# harness after `--`, e.g. `scripts/coverage.sh -- --test-threads 1`.
#
# Counted: src/ and gateway/src/. Left out: the tonic/prost code generated into OUT_DIR (under the
# target folder) and the test code under tests/. The `videoflix` binary that tests spawn is built
# instrumented too, so the runs that exit normally add their coverage.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

CARGO_LLVM_COV_VERSION="0.9.1"
# Generated code (OUT_DIR is <target>/<profile>/build/<crate>-<hash>/out) and tests. cargo-llvm-cov
# already drops the target folder, tests/ and dependencies by default; this keeps the rule
# explicit whatever the target folder is called.
IGNORE_REGEX='(^|/)tests/|/build/[^/]+/out/'

# rustc's own llvm-profdata/llvm-cov (matching its LLVM), never the distribution's.
ensure_llvm_tools() {
    local sysroot host
    sysroot="$(rustc --print sysroot)"
    host="$(rustc -vV | sed -n 's/^host: //p')"
    if ! [ -x "$sysroot/lib/rustlib/$host/bin/llvm-cov" ]; then
        if ! command -v rustup >/dev/null 2>&1; then
            echo "error: the llvm-tools of rustc are missing and rustup is not there to add them" >&2
            exit 1
        fi
        log "adding the llvm-tools component"
        rustup component add llvm-tools
    fi
}

ensure_cargo_llvm_cov() {
    if ! cargo llvm-cov --version 2>/dev/null | grep -q " $CARGO_LLVM_COV_VERSION\$"; then
        log "installing cargo-llvm-cov $CARGO_LLVM_COV_VERSION"
        # Its own temporary build folder, not the project's target folder.
        env -u CARGO_TARGET_DIR cargo install --locked --quiet cargo-llvm-cov \
            --version "$CARGO_LLVM_COV_VERSION"
    fi
}

ensure_build_deps
ensure_test_services
ensure_llvm_tools
ensure_cargo_llvm_cov

OUT="${CARGO_TARGET_DIR:-target}/coverage"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"

started=$SECONDS
log "cargo llvm-cov: the whole suite, instrumented"
cargo llvm-cov clean --workspace
cargo llvm-cov --no-report --locked --workspace "$@"

log "coverage report"
# `report` needs --workspace too: without it the members other than the root (gateway/) are
# dropped from the report.
report() { cargo llvm-cov report --workspace --ignore-filename-regex "$IGNORE_REGEX" "$@"; }
report --html --output-dir "$OUT"
report --json --summary-only --output-path "$OUT/summary.json"
report | tee "$OUT/summary.txt"

log "line coverage: $(awk '/^TOTAL/ {print $10}' "$OUT/summary.txt") of the lines in src/ and gateway/src/ ($(( (SECONDS - started) / 60 )) min)"
log "HTML report: $OUT/html/index.html; summary: $OUT/summary.txt"
