#!/usr/bin/env bash
# Installs what is missing and runs every check: proto lint (buf), formatting, clippy, the API
# docs (rustdoc, warnings denied), cargo-deny (licences, duplicate versions and registries of
# the dependencies; deny.toml), the whole
# test suite — unit tests plus API stories on SQLite/in-process and PostgreSQL + Redis — a
# Schemathesis run of the REST API against its own OpenAPI document, and the web app's browser
# tests in headless Chromium (scripts/browser-test.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

ensure_build_deps
ensure_test_services
ensure_buf
ensure_cargo_deny

log "buf lint"
"$BUF" lint
log "cargo fmt --check"
cargo fmt --all --check
log "cargo clippy"
cargo clippy --locked --workspace --all-targets -- -D warnings
log "cargo doc"
RUSTDOCFLAGS="-D warnings" cargo doc --locked --workspace --no-deps --quiet
log "cargo deny"
cargo deny check bans licenses sources
log "schemathesis: the REST API against its OpenAPI document"
scripts/schemathesis.sh
log "cargo test"
cargo test --locked --workspace "$@"
log "browser tests: the web app in headless Chromium"
scripts/browser-test.sh
