#!/usr/bin/env bash
# Installs what is missing and runs Videoflix on the embedded default (SQLite file under ./data,
# in-process cache/queue/limits, mail to ./data/outbox), with the web app (web/, built when
# missing or stale) at /app/. Extra arguments go to `videoflix serve`,
# e.g. `scripts/serve.sh --addr 0.0.0.0:8000`.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

ensure_build_deps
ensure_jwt_secret
build_web
log "building and starting (http://127.0.0.1:8000: the web app at /app/, docs at /swagger/ and /redoc/)"
exec cargo run --release --locked --bin videoflix -- serve "$@"
