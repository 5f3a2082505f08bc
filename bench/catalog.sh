#!/usr/bin/env bash
# Catalog benchmark (issue #3): seeds 50 videos into a throwaway SQLite deployment, then measures
# with wrk (REST, HTTP/1.1, 32 connections) and h2load (gRPC ListVideos, 32 connections):
#   - the ceiling: nginx serving the exact bytes of GET /api/videos/ from a static file
#   - GET /api/videos/, /api/videos/categorized_videos/, /api/videos/1/ (cache on)
#   - gRPC ListVideos (page_size 50, cache on)
#   - GET /api/videos/ with the cache off
# and prints requests/s and p99 latency next to the ceiling. Throttling is off (THROTTLE_ENABLED
# =false) so the limiter does not answer 429s; authentication and the session check stay on.
#
# Usage: bench/catalog.sh [seconds per run, default 10]
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh
ensure_build_deps
need_packages wrk nginx-light nghttp2-client curl jq

DURATION="${1:-10}"
CONNECTIONS=32
PORT=18080
NGINX_PORT=18081
WORK="$(mktemp -d)"
SERVER_PID=""
NGINX_PID=""
cleanup() {
    [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null || true
    [ -n "$NGINX_PID" ] && kill "$NGINX_PID" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

log "building the release binary"
cargo build --release --locked --bin videoflix >&2
BIN="${CARGO_TARGET_DIR:-target}/release/videoflix"

export DATABASE_URL="sqlite://$WORK/bench.db?mode=rwc"
export MAIL_OUTBOX_DIR="$WORK/outbox" MEDIA_DIR="$WORK/media"
export JWT_SECRET="bench-secret-0123456789-abcdefghijklmnopqrstuvwxyz"
export THROTTLE_ENABLED=false RUST_LOG=warn
unset REDIS_URL SMTP_URL

start_server() {
    "$BIN" serve --addr "127.0.0.1:$PORT" "$@" >"$WORK/server.log" 2>&1 &
    SERVER_PID=$!
    for _ in $(seq 1 100); do
        curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    cat "$WORK/server.log" >&2
    return 1
}
stop_server() { kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=""; }

log "seeding 50 videos"
echo "Bench-Admin-Pass-1" | "$BIN" createsuperuser --email bench@example.com --password-stdin >/dev/null
start_server
TOKEN="$(curl -fs "http://127.0.0.1:$PORT/login/" -H 'content-type: application/json' \
    -d '{"email":"bench@example.com","password":"Bench-Admin-Pass-1"}' | jq -r .token)"
genres=(documentary action horror drama technic)
languages=(english german french)
for i in $(seq 1 50); do
    curl -fs -o /dev/null "http://127.0.0.1:$PORT/api/videos/" -H "Authorization: Token $TOKEN" \
        -H 'content-type: application/json' \
        -d "{\"title\":\"Benchmark video $i\",\"description\":\"Seeded video number $i for the catalog benchmark.\",\"author\":\"Videoflix\",\"genre\":\"${genres[$((i % 5))]}\",\"language\":\"${languages[$((i % 3))]}\"}"
done
curl -fs "http://127.0.0.1:$PORT/api/videos/" -H "Authorization: Token $TOKEN" -o "$WORK/videos.json"
log "list response: $(wc -c <"$WORK/videos.json") bytes, $(jq length "$WORK/videos.json") videos"

# The ceiling: nginx serving the same bytes.
mkdir -p "$WORK/www/api/videos" "$WORK/nginx"
cp "$WORK/videos.json" "$WORK/www/api/videos/index.json"
# nginx workers run unprivileged: let them read the files.
chmod 755 "$WORK"
chmod -R a+rX "$WORK/www"
cat >"$WORK/nginx/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    keepalive_requests 1000000;
    types { application/json json; }
    server {
        listen 127.0.0.1:$NGINX_PORT;
        root $WORK/www;
        location /api/videos/ { default_type application/json; try_files /api/videos/index.json =404; }
    }
}
CONF
nginx -c "$WORK/nginx/nginx.conf" -p "$WORK/nginx" &
NGINX_PID=$!
sleep 0.5

# gRPC request body: one uncompressed frame holding ListVideosRequest{page_size: 50}.
printf '\x00\x00\x00\x00\x02\x48\x32' >"$WORK/list.grpc"

RESULTS="$WORK/results.tsv"
: >"$RESULTS"
run_wrk() { # name url
    local out rps p99
    out="$(wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" --latency -H "Authorization: Token $TOKEN" "$2")"
    rps="$(awk '/^Requests\/sec/ {print $2}' <<<"$out")"
    p99="$(awk '$1 == "99%" {print $2}' <<<"$out")"
    if grep -q "Non-2xx" <<<"$out"; then
        echo "error: $1 had non-2xx answers" >&2
        exit 1
    fi
    printf '%s\t%s\t%s\n' "$1" "$rps" "$p99" >>"$RESULTS"
}
run_h2load() { # name
    local out rps
    out="$(h2load -D "$DURATION" -c "$CONNECTIONS" -m 1 -t 1 \
        -H 'content-type: application/grpc' -H 'te: trailers' -H "authorization: Bearer $TOKEN" \
        -d "$WORK/list.grpc" "http://127.0.0.1:$PORT/videoflix.v1.VideoService/ListVideos")"
    rps="$(awk '/^finished in/ {print $4}' <<<"$out")"
    p99="$(awk '/^time for request:/ {print "mean " $6 ", max " $5}' <<<"$out")"
    printf '%s\t%s\t%s\n' "$1" "$rps" "$p99" >>"$RESULTS"
}

log "measuring (${DURATION}s per run, $CONNECTIONS connections)"
run_wrk "nginx ceiling (same bytes)" "http://127.0.0.1:$NGINX_PORT/api/videos/"
curl -fs -o /dev/null "http://127.0.0.1:$PORT/api/videos/categorized_videos/" -H "Authorization: Token $TOKEN"
run_wrk "GET /api/videos/ (cached)" "http://127.0.0.1:$PORT/api/videos/"
run_wrk "GET /api/videos/categorized_videos/" "http://127.0.0.1:$PORT/api/videos/categorized_videos/"
run_wrk "GET /api/videos/1/" "http://127.0.0.1:$PORT/api/videos/1/"
run_h2load "gRPC ListVideos (h2load)"
stop_server
start_server --cache-enabled false
run_wrk "GET /api/videos/ (cache off)" "http://127.0.0.1:$PORT/api/videos/"
stop_server

CEILING="$(awk -F'\t' 'NR == 1 {print $2}' "$RESULTS")"
printf '\n%-40s %12s %10s %12s\n' "what" "requests/s" "p99" "of ceiling"
while IFS=$'\t' read -r name rps p99; do
    pct="$(awk -v r="$rps" -v c="$CEILING" 'BEGIN { if (c > 0) printf "%.1f%%", 100 * r / c }')"
    printf '%-40s %12s %10s %12s\n' "$name" "$rps" "$p99" "$pct"
done <"$RESULTS"
