#!/usr/bin/env bash
# Catalog benchmark (issue #3). Seeds a throwaway SQLite deployment with 50 *ready* videos that
# have media (one FFmpeg test clip uploaded over REST and transcoded by the server, then imported
# 50 times with `videoflix import-video-data`, each under its own id and media folder), so every
# answer carries signed media URLs. Then it measures, each route right after nginx serving that
# route's own bytes:
#   - GET /api/videos/ (cache on), /api/videos/categorized_videos/, /api/videos/1/ with wrk
#     (HTTP/1.1 keep-alive, 32 connections, one thread); nginx serves the exact body our server
#     gave for the route (saved with the same Authorization header) from a static file
#   - gRPC ListVideos (page_size 50, cache on) with h2load (32 connections, one stream each);
#     nginx serves the exact gRPC response body (the length-prefixed message) over h2c with a
#     `grpc-status: 0` trailer, to the same POST, so both sides do HTTP/2 framing and trailers
#   - GET /api/videos/ with the cache off, against the list's ceiling (same bytes)
# nginx runs with `worker_processes auto` (one worker per core, as our server has one runtime
# thread per core), sendfile and an open-file cache. Throttling is off (THROTTLE_ENABLED=false)
# so the limiter does not answer 429s; authentication and the session check stay on.
#
# It measures only what it started: every port is picked free (and checked to have no listener),
# and after each start and after each run the script checks that the process it started still
# runs and holds the listening socket (`ss -ltnp`); otherwise it stops with an error. Answers are
# checked too: wrk must see only 2xx and no socket errors; h2load only 2xx, succeeded == done and
# the full response bytes for every finished answer (a gRPC error is an HTTP 200 with an empty
# body and grpc-status in the trailers, which h2load does not read), allowing only for the one
# request per connection still in flight at the deadline; and before and after every run one
# request must get a body of the same size (gRPC: by nghttp, with `grpc-status: 0` in the
# trailers). Latency: wrk's p99; for h2load the p99 of its per-request log. The figures of a run
# are printed at the end with the command that reproduces it.
#
# Usage: bench/catalog.sh [seconds per run, default 10]. With PERF_OUT=<file>, `perf record -g`
# samples the server during the cache-off run into that file and the top of its report is printed
# (perf must be installed; the figures of that run include perf's overhead).
set -eEuo pipefail
trap 'echo "error: bench/catalog.sh: line $LINENO failed (exit $?)" >&2' ERR
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh
# shellcheck source=bench/lib.sh
. bench/lib.sh
ensure_build_deps
need_packages wrk nginx-light nghttp2-client curl jq python3 iproute2 procps ffmpeg

DURATION="${1:-10}"
case "$DURATION" in '' | *[!0-9]* | 0) echo "usage: bench/catalog.sh [seconds per run]" >&2; exit 2 ;; esac
CONNECTIONS=32
VIDEOS=50
WORK="$(mktemp -d)"
SERVER_PID=""
NGINX_PID=""
PORT=""
cleanup() {
    if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; fi
    if [ -n "$NGINX_PID" ]; then kill "$NGINX_PID" 2>/dev/null || true; fi
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

log "building the release binary"
cargo build --release --locked --bin videoflix >&2
BIN="${CARGO_TARGET_DIR:-target}/release/videoflix"

export DATABASE_URL="sqlite://$WORK/bench.db?mode=rwc"
export MAIL_OUTBOX_DIR="$WORK/outbox" MEDIA_DIR="$WORK/media" EXPORT_DIR="$WORK/exports"
export JWT_SECRET="bench-secret-0123456789-abcdefghijklmnopqrstuvwxyz"
export PUBLIC_URL="https://videoflix.example/"
export THROTTLE_ENABLED=false RUST_LOG=warn TRANSCODE_PRESET=veryfast
unset REDIS_URL SMTP_URL

start_server() { # extra flags of `videoflix serve`
    spawn_server "$@"
    SERVER_PID="$SPAWNED_PID" PORT="$SPAWNED_PORT" BASE="http://127.0.0.1:$SPAWNED_PORT"
}
stop_server() {
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
}

# --- seeding: 50 ready videos with media -------------------------------------------------------

log "seeding $VIDEOS ready videos with media"
create_admin
start_server
login
AUTH="Authorization: Token $TOKEN"

seed_upload
stop_server

seed_copies

# --- the answers to measure, saved byte for byte -----------------------------------------------

start_server
login
AUTH="Authorization: Token $TOKEN"
WWW="$WORK/www"
mkdir -p "$WWW"
ROUTES=(list categorized detail)
declare -A PATHS=([list]=/api/videos/ [categorized]=/api/videos/categorized_videos/ [detail]=/api/videos/1/)
for r in "${ROUTES[@]}"; do
    curl -fsS "$BASE${PATHS[$r]}" -H "$AUTH" -o "$WWW/$r.json"
done

# Ready, with signed URLs, and one of them (of the last video) really served.
jq -e --argjson n "$VIDEOS" '
    length == $n and all(.[];
        .status == "ready" and (.renditions | length) >= 4
        and all(.video_file, .poster, .vtt_file, .hls, .video_file_hd360, .video_file_hd1080;
                test("^https://videoflix\\.example/media/[0-9]+/[A-Za-z0-9_-]+/videos/[0-9]+/")))
' "$WWW/list.json" >/dev/null || fail "the list is not $VIDEOS ready videos with signed media URLs"
jq -e '.id == 1 and .status == "ready" and (.hls | length) > 0' "$WWW/detail.json" >/dev/null ||
    fail "the detail answer is not the ready video 1"
for field in poster hls; do
    url="$(jq -r ".[] | select(.id == $VIDEOS) | .$field" "$WWW/list.json")"
    code="$(curl -s -o /dev/null -w '%{http_code}' "$BASE/${url#"$PUBLIC_URL"}")"
    [ "$code" = 200 ] || fail "the signed $field URL of video $VIDEOS answers $code"
done

# gRPC: one uncompressed frame holding ListVideosRequest{page_size: 50}.
printf '\x00\x00\x00\x00\x02\x48\x32' >"$WORK/list.grpc"
GRPC_PATH=/videoflix.v1.VideoService/ListVideos
GRPC_FILE="$WWW${GRPC_PATH%/*}/${GRPC_PATH##*/}"
mkdir -p "${GRPC_FILE%/*}"
# nghttp, not curl: curl 7.88 fails now and then on nginx's RST_STREAM(NO_ERROR) after a complete
# answer (nginx answers a static file before the request body's END_STREAM arrives).
NGHTTP=(nghttp -H 'content-type: application/grpc' -H 'te: trailers' -d "$WORK/list.grpc")
grpc_body() { # port output-file: the body of one ListVideos over h2c, a well-formed frame
    local port="$1" out="$2" size
    "${NGHTTP[@]}" -H "authorization: Bearer $TOKEN" "http://127.0.0.1:$port$GRPC_PATH" >"$out" ||
        fail "port $port: nghttp failed"
    size="$(wc -c <"$out")"
    # The frame header: not compressed, and a length that covers the rest of the body.
    if [ "$size" -lt 5 ] || [ "$(od -An -tu1 -N1 "$out" | tr -d ' ')" != 0 ] ||
        [ "$(od -An -tu1 -j1 -N4 "$out" | awk '{print $1 * 16777216 + $2 * 65536 + $3 * 256 + $4}')" != $((size - 5)) ]; then
        fail "port $port: ListVideos answered a malformed gRPC body ($size bytes)"
    fi
}
grpc_check() { # port: prints the body size of one ListVideos; fails unless a 200 gRPC answer with grpc-status 0
    local port="$1" out
    out="$("${NGHTTP[@]}" -nv -H "authorization: Bearer $TOKEN" "http://127.0.0.1:$port$GRPC_PATH")" ||
        fail "port $port: nghttp failed"
    grep -qE 'recv \(stream_id=[0-9]+\) :status: 200$' <<<"$out" ||
        fail "port $port: ListVideos did not answer HTTP 200"
    grep -qE 'recv \(stream_id=[0-9]+\) content-type: application/grpc$' <<<"$out" ||
        fail "port $port: ListVideos did not answer application/grpc"
    if [ "$(grep -cE 'recv \(stream_id=[0-9]+\) grpc-status: ' <<<"$out")" != 1 ] ||
        ! grep -qE 'recv \(stream_id=[0-9]+\) grpc-status: 0$' <<<"$out"; then
        fail "port $port: ListVideos did not end with grpc-status 0: $(grep -E 'recv \(stream_id=[0-9]+\) grpc-' <<<"$out" | tr '\n' ' ')"
    fi
    awk '/recv DATA frame/ { sub(/.*length=/, ""); sub(/,.*/, ""); n += $0 } END { print n + 0 }' <<<"$out"
}
grpc_body "$PORT" "$GRPC_FILE"
[ "$(grep -ao 'https://videoflix\.example/media/' "$GRPC_FILE" | wc -l)" -ge $((VIDEOS * 4)) ] ||
    fail "the gRPC answer does not carry the signed media URLs of $VIDEOS videos"
declare -A BYTES=([grpc]="$(wc -c <"$GRPC_FILE")")
for r in "${ROUTES[@]}"; do BYTES[$r]="$(wc -c <"$WWW/$r.json")"; done
log "answers: list ${BYTES[list]} B, categorized ${BYTES[categorized]} B, detail ${BYTES[detail]} B, gRPC ListVideos ${BYTES[grpc]} B"

# --- nginx, serving those bytes ----------------------------------------------------------------

NGINX_PORT="$(pick_port)"
NGINX_H2_PORT="$(pick_port)"
[ "$NGINX_PORT" != "$NGINX_H2_PORT" ] || NGINX_H2_PORT="$(pick_port)"
mkdir -p "$WORK/nginx"
# nginx workers run unprivileged: let them read the files.
chmod 755 "$WORK"
chmod -R a+rX "$WWW"
cat >"$WORK/nginx/nginx.conf" <<CONF
worker_processes auto;
daemon off;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    sendfile on;
    keepalive_requests 1000000;
    open_file_cache max=16 inactive=1h;
    open_file_cache_valid 1h;
    default_type application/json;
    types { }
    root $WWW;
    server {
        listen 127.0.0.1:$NGINX_PORT;
        location = /api/videos/ { try_files /list.json =404; }
        location = /api/videos/categorized_videos/ { try_files /categorized.json =404; }
        location = /api/videos/1/ { try_files /detail.json =404; }
    }
    server {
        listen 127.0.0.1:$NGINX_H2_PORT http2;
        location = $GRPC_PATH {
            default_type application/grpc;
            add_trailer grpc-status 0;
            # The static module answers POST with 405: serve the file instead (as GET, 200).
            error_page 405 =200 \$uri;
        }
    }
}
CONF
start_nginx "$WORK/nginx/nginx.conf" "$NGINX_PORT" /api/videos/1/
assert_ours nginx "$NGINX_PID" "$NGINX_PORT"
assert_ours nginx "$NGINX_PID" "$NGINX_H2_PORT"
NGINX_WORKERS="$(pgrep -c -P "$NGINX_PID" || true)"
for r in "${ROUTES[@]}"; do
    curl -fsS "http://127.0.0.1:$NGINX_PORT${PATHS[$r]}" -o "$WORK/nginx-$r"
    cmp -s "$WORK/nginx-$r" "$WWW/$r.json" || fail "nginx does not serve the bytes of ${PATHS[$r]}"
done
grpc_body "$NGINX_H2_PORT" "$WORK/nginx-grpc"
cmp -s "$WORK/nginx-grpc" "$GRPC_FILE" || fail "nginx does not serve the gRPC bytes"

# --- the runs -------------------------------------------------------------------------------

check_grpc() { # port
    local got
    got="$(grpc_check "$1")"
    [ "$got" = "${BYTES[grpc]}" ] || fail "ListVideos on port $1 answered $got bytes, expected ${BYTES[grpc]}"
}

run_h2load() { # what pid port
    local out answered started succeeded ok data extra
    rm -f "$WORK/h2load.log"
    out="$(h2load -D "$DURATION" -c "$CONNECTIONS" -m 1 -t 1 --log-file="$WORK/h2load.log" \
        -H 'content-type: application/grpc' -H 'te: trailers' -H "authorization: Bearer $TOKEN" \
        -d "$WORK/list.grpc" "http://127.0.0.1:$3$GRPC_PATH")"
    assert_ours "$1" "$2" "$3"
    answered="$(awk '/^requests:/ {print $6}' <<<"$out")"
    started="$(awk '/^requests:/ {print $4}' <<<"$out")"
    succeeded="$(awk '/^requests:/ {print $8}' <<<"$out")"
    ok="$(awk '/^status codes:/ {print $3}' <<<"$out")"
    data="$(sed -n 's/^traffic:.* (\([0-9]*\)) data$/\1/p' <<<"$out")"
    # Every finished answer must be 2xx with the full body; at the deadline up to one request
    # per connection is still in flight, with its status and part of its body counted too.
    extra=$((data - answered * BYTES[grpc]))
    if ! grep -qE '^requests: .* 0 failed, 0 errored, 0 timeout$' <<<"$out" ||
        ! grep -qE "^status codes: [0-9]+ 2xx, 0 3xx, 0 4xx, 0 5xx$" <<<"$out" ||
        [ "$answered" -eq 0 ] || [ "$succeeded" != "$answered" ] ||
        [ "$ok" -lt "$answered" ] || [ "$ok" -gt "$started" ] ||
        [ "$extra" -lt 0 ] || [ "$extra" -gt $(((started - answered) * BYTES[grpc])) ] ||
        [ "$(wc -l <"$WORK/h2load.log")" != "$answered" ] ||
        awk -F'\t' '$2 != 200 { bad = 1 } END { exit !bad }' "$WORK/h2load.log"; then
        echo "$out" >&2
        fail "$1 ListVideos: h2load saw errors or short answers ($data data bytes for $answered answers of ${BYTES[grpc]} bytes)"
    fi
    RUN_RPS="$(awk '/^finished in/ {print $4}' <<<"$out")"
    RUN_P99="$(awk -F'\t' '{print $3}' "$WORK/h2load.log" | sort -n |
        awk '{ v[NR] = $1 } END { i = int(NR * 0.99); if (i < NR * 0.99) i++; printf "%.2f", v[i] / 1000 }')"
}

RESULTS="$WORK/results.tsv"
: >"$RESULTS"
record() { # what bytes ours-rps ours-p99 ceiling-rps ceiling-p99
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >>"$RESULTS"
}

log "measuring (${DURATION}s per run, $CONNECTIONS connections; nginx: $NGINX_WORKERS workers)"
declare -A LABELS=([list]="GET /api/videos/ (cached)" [categorized]="GET /api/videos/categorized_videos/" [detail]="GET /api/videos/1/")
for r in "${ROUTES[@]}"; do
    check_rest "$NGINX_PORT" "${PATHS[$r]}" "${BYTES[$r]}"
    run_wrk nginx "$NGINX_PID" "$NGINX_PORT" "${PATHS[$r]}"
    check_rest "$NGINX_PORT" "${PATHS[$r]}" "${BYTES[$r]}"
    ceiling_rps="$RUN_RPS" ceiling_p99="$RUN_P99"
    if [ "$r" = list ]; then list_ceiling_rps="$RUN_RPS" list_ceiling_p99="$RUN_P99"; fi
    check_rest "$PORT" "${PATHS[$r]}" "${BYTES[$r]}"
    run_wrk "the server" "$SERVER_PID" "$PORT" "${PATHS[$r]}"
    check_rest "$PORT" "${PATHS[$r]}" "${BYTES[$r]}"
    record "${LABELS[$r]}" "${BYTES[$r]}" "$RUN_RPS" "$RUN_P99" "$ceiling_rps" "$ceiling_p99"
done
check_grpc "$NGINX_H2_PORT"
run_h2load nginx "$NGINX_PID" "$NGINX_H2_PORT"
check_grpc "$NGINX_H2_PORT"
ceiling_rps="$RUN_RPS" ceiling_p99="$RUN_P99"
check_grpc "$PORT"
run_h2load "the server" "$SERVER_PID" "$PORT"
check_grpc "$PORT"
record "gRPC ListVideos (h2load)" "${BYTES[grpc]}" "$RUN_RPS" "$RUN_P99" "$ceiling_rps" "$ceiling_p99"
stop_server

start_server --cache-enabled false
login
AUTH="Authorization: Token $TOKEN"
check_rest "$PORT" /api/videos/ "${BYTES[list]}"
PERF_PID=""
if [ -n "${PERF_OUT:-}" ]; then
    command -v perf >/dev/null || fail "PERF_OUT is set but perf is not installed"
    perf record -g -o "$PERF_OUT" -p "$SERVER_PID" -- sleep "$DURATION" 2>"$WORK/perf.log" &
    PERF_PID=$!
fi
run_wrk "the server" "$SERVER_PID" "$PORT" /api/videos/
if [ -n "$PERF_PID" ]; then
    wait "$PERF_PID" || { cat "$WORK/perf.log" >&2; fail "perf record failed"; }
fi
check_rest "$PORT" /api/videos/ "${BYTES[list]}"
record "GET /api/videos/ (cache off)" "${BYTES[list]}" "$RUN_RPS" "$RUN_P99" "$list_ceiling_rps" "$list_ceiling_p99"
stop_server

printf '\n%-38s %7s %11s %9s %13s %9s %8s\n' "what" "bytes" "requests/s" "p99 ms" "nginx req/s" "p99 ms" "of nginx"
while IFS=$'\t' read -r name bytes rps p99 crps cp99; do
    pct="$(awk -v r="$rps" -v c="$crps" 'BEGIN { if (c > 0) printf "%.1f%%", 100 * r / c }')"
    printf '%-38s %7s %11s %9s %13s %9s %8s\n' "$name" "$bytes" "$rps" "$p99" "$crps" "$cp99" "$pct"
done <"$RESULTS"
echo
echo "nginx serves each route's own bytes (the cache-off row is compared with the list's); gRPC"
echo "is compared with nginx serving the same gRPC body over h2c with a grpc-status 0 trailer."
echo "$(date), $(nproc) cores shared by the server, nginx and the load generators,"
echo "commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD -- 2>/dev/null || echo ' (with local changes)')."
echo "Reproduce with: ${PERF_OUT:+PERF_OUT=$PERF_OUT }bench/catalog.sh $DURATION"
if [ -n "${PERF_OUT:-}" ]; then
    echo
    echo "Where the server spent the cache-off run (perf report --no-children, top entries):"
    perf report -i "$PERF_OUT" --stdio --no-children --percent-limit 1.5 2>/dev/null |
        grep -E '^ +[0-9]+\.[0-9]+%' | head -n 30
fi
