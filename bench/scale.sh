#!/usr/bin/env bash
# Two servers against one (issue #12), in one run. A throwaway PostgreSQL database and Redis
# prefix hold the catalog of bench/catalog.sh (50 ready videos with media, so every answer carries
# signed URLs); two `videoflix serve` processes share them (the cache in Redis). nginx is the load
# balancer in both set-ups, so both sides pay the same proxy hop: one upstream block with server A,
# one with A and B (round robin, keep-alive to the upstreams). wrk (HTTP/1.1, 32 connections, one
# thread) measures GET /api/videos/ (cached) and GET /api/videos/1/ through each, alternating
# one, two, one, two; the figures are the means of each set-up's runs.
#
# It checks what it measures: free ports held only by our processes (`ss -ltnp`) before and after
# every run, wrk with only 2xx answers and no socket errors, one answer of the same size before
# and after every run, and from each server's /metrics that the two-server runs really spread the
# requests over both (each at least a third) and the one-server runs reached only A.
#
# Usage: bench/scale.sh [seconds per run, default 10]. PostgreSQL and Redis: BENCH_POSTGRES_URL
# (default postgres://postgres@127.0.0.1:5432) and BENCH_REDIS_URL (redis://127.0.0.1:6379/).
set -eEuo pipefail
trap 'echo "error: bench/scale.sh: line $LINENO failed (exit $?)" >&2' ERR
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh
# shellcheck source=bench/lib.sh
. bench/lib.sh
ensure_build_deps
need_packages wrk nginx-light curl jq python3 iproute2 procps ffmpeg postgresql-client redis-tools

DURATION="${1:-10}"
case "$DURATION" in '' | *[!0-9]* | 0) echo "usage: bench/scale.sh [seconds per run]" >&2; exit 2 ;; esac
CONNECTIONS=32
VIDEOS=50
WORK="$(mktemp -d)"
POSTGRES="${BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432}"
REDIS="${BENCH_REDIS_URL:-redis://127.0.0.1:6379/}"
NAME="vf_bench_$(date +%s)_$$"
PIDS=()
NGINX_PID=""
cleanup() {
    for pid in "${PIDS[@]}" $NGINX_PID; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    psql -q "$POSTGRES/postgres" -c "DROP DATABASE IF EXISTS $NAME" >/dev/null 2>&1 || true
    redis-cli -u "$REDIS" --scan --pattern "$NAME:*" 2>/dev/null | xargs -r redis-cli -u "$REDIS" del >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT

log "building the release binary"
cargo build --release --locked --bin videoflix >&2
BIN="${CARGO_TARGET_DIR:-target}/release/videoflix"

psql -q "$POSTGRES/postgres" -c "CREATE DATABASE $NAME" >/dev/null || fail "cannot create a database on $POSTGRES"
export DATABASE_URL="$POSTGRES/$NAME" REDIS_URL="$REDIS" REDIS_PREFIX="$NAME"
export MAIL_OUTBOX_DIR="$WORK/outbox" MEDIA_DIR="$WORK/media" EXPORT_DIR="$WORK/exports"
export JWT_SECRET="bench-secret-0123456789-abcdefghijklmnopqrstuvwxyz"
export PUBLIC_URL="https://videoflix.example/"
export THROTTLE_ENABLED=false RUST_LOG=warn TRANSCODE_PRESET=veryfast
unset SMTP_URL

# --- the catalog -------------------------------------------------------------------------------

log "seeding $VIDEOS ready videos with media (PostgreSQL database $NAME)"
"$BIN" migrate >/dev/null
create_admin
spawn_server --worker
SEEDER="$SPAWNED_PID" BASE="http://127.0.0.1:$SPAWNED_PORT"
PIDS+=("$SEEDER")
login
AUTH="Authorization: Token $TOKEN"
seed_upload
kill "$SEEDER"
wait "$SEEDER" 2>/dev/null || true
seed_copies

# --- two servers and the load balancer ---------------------------------------------------------

spawn_server
A_PID="$SPAWNED_PID" A_PORT="$SPAWNED_PORT"
PIDS+=("$A_PID")
spawn_server
B_PID="$SPAWNED_PID" B_PORT="$SPAWNED_PORT"
PIDS+=("$B_PID")
BASE="http://127.0.0.1:$A_PORT"
login
AUTH="Authorization: Token $TOKEN"

ONE_PORT="$(pick_port)"
TWO_PORT="$(pick_port)"
[ "$ONE_PORT" != "$TWO_PORT" ] || TWO_PORT="$(pick_port)"
mkdir -p "$WORK/nginx"
cat >"$WORK/nginx/nginx.conf" <<CONF
worker_processes auto;
daemon off;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    upstream one { server 127.0.0.1:$A_PORT; keepalive 64; }
    upstream two { server 127.0.0.1:$A_PORT; server 127.0.0.1:$B_PORT; keepalive 64; }
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    proxy_set_header Host \$host;
    server { listen 127.0.0.1:$ONE_PORT; location / { proxy_pass http://one; } }
    server { listen 127.0.0.1:$TWO_PORT; location / { proxy_pass http://two; } }
}
CONF
start_nginx "$WORK/nginx/nginx.conf" "$ONE_PORT" /healthz
assert_ours nginx "$NGINX_PID" "$ONE_PORT"
assert_ours nginx "$NGINX_PID" "$TWO_PORT"

ROUTES=(list detail)
declare -A PATHS=([list]=/api/videos/ [detail]=/api/videos/1/)
declare -A LABELS=([list]="GET /api/videos/ (cached)" [detail]="GET /api/videos/1/")
# The route templates the servers count requests under.
declare -A TEMPLATES=([list]=/api/videos/ [detail]="/api/videos/{id}/")
declare -A BYTES
for r in "${ROUTES[@]}"; do
    curl -fsS "http://127.0.0.1:$A_PORT${PATHS[$r]}" -H "$AUTH" -o "$WORK/$r.json"
    BYTES[$r]="$(wc -c <"$WORK/$r.json")"
    for port in "$B_PORT" "$ONE_PORT" "$TWO_PORT"; do
        curl -fsS "http://127.0.0.1:$port${PATHS[$r]}" -H "$AUTH" -o "$WORK/check.json"
        cmp -s "$WORK/check.json" "$WORK/$r.json" || fail "port $port answers other bytes for ${PATHS[$r]}"
    done
done
jq -e --argjson n "$VIDEOS" 'length == $n and all(.[]; .status == "ready" and (.renditions | length) >= 4)' \
    "$WORK/list.json" >/dev/null || fail "the list is not $VIDEOS ready videos with media"

# Answered 200s of route $2 so far on the server at port $1 (from its /metrics).
served() { # port route
    curl -fsS "http://127.0.0.1:$1/metrics" | awk -v route="route=\"$2\"" '
        /^videoflix_requests_total\{/ && index($0, route) && index($0, "status=\"200\"") { n += $NF }
        END { printf "%d", n }'
}

# --- the runs -------------------------------------------------------------------------------

RESULTS="$WORK/results.tsv"
: >"$RESULTS"
log "measuring (${DURATION}s per run, $CONNECTIONS connections, one and two servers alternating)"
for r in "${ROUTES[@]}"; do
    for round in 1 2; do
        for setup in one two; do
            port="$ONE_PORT"
            [ "$setup" = two ] && port="$TWO_PORT"
            a_before="$(served "$A_PORT" "${TEMPLATES[$r]}")"
            b_before="$(served "$B_PORT" "${TEMPLATES[$r]}")"
            check_rest "$port" "${PATHS[$r]}" "${BYTES[$r]}"
            run_wrk "nginx ($setup)" "$NGINX_PID" "$port" "${PATHS[$r]}"
            check_rest "$port" "${PATHS[$r]}" "${BYTES[$r]}"
            assert_ours "server A" "$A_PID" "$A_PORT"
            assert_ours "server B" "$B_PID" "$B_PORT"
            a=$(($(served "$A_PORT" "${TEMPLATES[$r]}") - a_before))
            b=$(($(served "$B_PORT" "${TEMPLATES[$r]}") - b_before))
            if [ "$setup" = one ]; then
                [ "$b" = 0 ] || fail "the one-server run reached server B ($b requests)"
            elif [ $((a * 3)) -lt $((a + b)) ] || [ $((b * 3)) -lt $((a + b)) ]; then
                fail "the two-server run did not spread the load: A $a, B $b requests"
            fi
            printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$r" "$setup" "$round" "$RUN_RPS" "$RUN_P99" "$a/$b" >>"$RESULTS"
        done
    done
done

printf '\n%-28s %7s %14s %9s %14s %9s %7s\n' "what" "bytes" "one: req/s" "p99 ms" "two: req/s" "p99 ms" "ratio"
for r in "${ROUTES[@]}"; do
    awk -F'\t' -v r="$r" -v label="${LABELS[$r]}" -v bytes="${BYTES[$r]}" '
        $1 == r { rps[$2] += $4; p99[$2] += $5; n[$2]++ }
        END {
            one = rps["one"] / n["one"]; two = rps["two"] / n["two"]
            printf "%-28s %7s %14.0f %9.2f %14.0f %9.2f %6.2fx\n", label, bytes, one,
                p99["one"] / n["one"], two, p99["two"] / n["two"], two / one
        }' "$RESULTS"
done
echo
echo "Each figure is the mean of two runs; requests per server (A/B) of every run:"
awk -F'\t' '{ printf "  %s %s round %s: %s req/s, A/B %s\n", $1, $2, $3, $4, $6 }' "$RESULTS"
echo "$(date), $(nproc) cores shared by both servers, PostgreSQL, Redis, nginx and wrk,"
echo "commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD -- 2>/dev/null || echo ' (with local changes)')."
echo "Reproduce with: bench/scale.sh $DURATION"
