#!/usr/bin/env bash
# Fuzzes the REST API against its own OpenAPI document with Schemathesis (pinned, fixed seed,
# bounded examples): every answer must be documented (status, content type, schema), no input
# may cause a server error, and every request the document forbids must be refused.
#
# Runs the debug binary on the embedded default (SQLite, in-process everything) in a temporary
# folder on a free port, with throttling off (the fuzzer sends thousands of requests) and a
# superuser's token, so the admin writes are exercised too. Logout revokes the token, so it runs
# in passes of its own.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

SCHEMATHESIS_VERSION="4.32.5"
SEED="${SCHEMATHESIS_SEED:-20261201}"
EXAMPLES="${SCHEMATHESIS_EXAMPLES:-100}"
CHECKS="not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,negative_data_rejection"

ensure_schemathesis() {
    local venv="$TOOLS_DIR/schemathesis-$SCHEMATHESIS_VERSION"
    if ! [ -x "$venv/bin/schemathesis" ]; then
        need_packages python3-venv
        log "installing schemathesis $SCHEMATHESIS_VERSION"
        python3 -m venv "$venv"
        "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
    fi
    ST="$venv/bin/schemathesis"
}

ensure_schemathesis
cargo build --locked --quiet --bin videoflix
BIN="${CARGO_TARGET_DIR:-target}/debug/videoflix"

WORK="$(mktemp -d)"
SERVER_PID=""
cleanup() {
    if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
BASE="http://127.0.0.1:$PORT"
export DATABASE_URL="sqlite://$WORK/videoflix.db?mode=rwc" MEDIA_DIR="$WORK/media" \
    MAIL_OUTBOX_DIR="$WORK/outbox" EXPORT_DIR="$WORK/exports" THROTTLE_ENABLED=false PUBLIC_URL="$BASE/" \
    JWT_SECRET="schemathesis-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
PASSWORD="Fuzz-admin-$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')"
"$BIN" migrate >/dev/null
printf '%s\n' "$PASSWORD" | "$BIN" createsuperuser --email fuzz-admin@example.com --password-stdin >/dev/null
"$BIN" serve --no-migrate --addr "127.0.0.1:$PORT" >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 100); do
    if curl -fsS "$BASE/healthz" >/dev/null 2>&1; then break; fi
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then cat "$WORK/server.log" >&2; echo "error: the server did not start" >&2; exit 1; fi
    sleep 0.1
done
# The answer must come from the server just started (not from something else on the port).
curl -fsS "$BASE/openapi.json" | grep -q '"title":"Videoflix API"' || { echo "error: $BASE is not our server" >&2; exit 1; }

token() {
    curl -fsS -X POST "$BASE/login/" -H 'content-type: application/json' \
        -d "{\"email\":\"fuzz-admin@example.com\",\"password\":\"$PASSWORD\"}" |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["token"])'
}

run() {
    local bearer
    bearer="$(token)" || { echo "error: the admin could not log in" >&2; exit 1; }
    "$ST" run "$BASE/openapi.json" --checks "$CHECKS" --seed "$SEED" --max-examples "$EXAMPLES" \
        --phases examples,coverage,fuzzing --workers 1 --suppress-health-check all \
        -H "Authorization: Bearer $bearer" "$@"
}

log "schemathesis: every operation but logout (seed $SEED, $EXAMPLES examples)"
run --exclude-path /logout/
# Each logout revokes the token it is sent with: one pass (and one fresh token) per method.
# The first pass may have deactivated the admin (another superuser it made allows that):
# createsuperuser activates it again and sets its password.
for method in DELETE POST; do
    log "schemathesis: $method /logout/"
    printf '%s\n' "$PASSWORD" | "$BIN" createsuperuser --email fuzz-admin@example.com --password-stdin >/dev/null
    run --include-name "$method /logout/"
done
if grep -q "panicked" "$WORK/server.log"; then
    grep -B2 -A10 "panicked" "$WORK/server.log" >&2
    echo "error: the server panicked during the run" >&2
    exit 1
fi
