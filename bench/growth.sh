#!/usr/bin/env bash
# Catalog growth benchmark (issue #13): how list, search, page and detail answers and the
# server's memory grow with the catalog, on the embedded default (SQLite, in-process) and on
# PostgreSQL + Redis, side by side.
#
# One 2 s 1080p test clip is uploaded and transcoded by the server; its export is then grown to
# SIZES videos (default 100, 10,000, 100,000) by `videoflix import-video-data`, the store's own
# bulk write (each size imports only the videos it adds), into one SQLite file and one
# PostgreSQL database. Every video is ready with its own media folder name, so each answer
# signs its own URLs (only video 1's files exist on disk: nothing here fetches media). Titles
# are "<adjective> <noun> <n>" from 40 × 40 words and descriptions 12 words of a 160-word
# vocabulary (a fixed seed), so a search matches what it would in a real catalog:
#   - search "film 3": one noun, numbers starting with 3 — a selective search (~0.3 %);
#   - search "night": a word in 1 of 40 titles and in many descriptions — a broad one (~10 %).
# Per size and backend, with the cache off (every answer read from the database) and 32
# connections (wrk, HTTP/1.1 keep-alive, one thread): the list page of 50
# (`?page_size=50`, the bytes of the old 50-video list), both searches (page of 20), page 2 and
# the middle page of the list (page_size 20), a detail; with the cache on: the list page and
# the detail. Next to each cache-off row: nginx serving the same bytes from a file (the
# ceiling). Memory: the server's RSS once it answers /healthz (idle, before the login, whose
# argon2 hash takes 19 MiB) and its peak (VmHWM) after the cache-off runs.
#
# Only processes it started are measured (free ports, owners checked with ss before and after
# each run); a non-2xx answer, a socket error, or a body of another size before and after a
# run stops it. Usage: bench/growth.sh [seconds per run, default 4]; SIZES="100 1000" to
# choose sizes (ascending).
set -eEuo pipefail
trap 'echo "error: bench/growth.sh: line $LINENO failed (exit $?)" >&2' ERR
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh
# shellcheck source=bench/lib.sh
. bench/lib.sh
ensure_build_deps
ensure_test_services
need_packages wrk nginx-light curl jq python3 iproute2 procps ffmpeg postgresql-client

DURATION="${1:-4}"
case "$DURATION" in '' | *[!0-9]* | 0) echo "usage: bench/growth.sh [seconds per run]" >&2; exit 2 ;; esac
read -r -a SIZES <<<"${SIZES:-100 10000 100000}"
CONNECTIONS=32
WORK="$(mktemp -d)"
SERVER_PID="" NGINX_PID="" PORT=""
PG_DB="vf_bench_$(date +%s)_$$"
PG_ADMIN="${TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
cleanup() {
    if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; fi
    if [ -n "$NGINX_PID" ]; then kill "$NGINX_PID" 2>/dev/null || true; fi
    wait 2>/dev/null || true
    psql -q "$PG_ADMIN" -c "DROP DATABASE IF EXISTS $PG_DB" >/dev/null 2>&1 || true
    redis-cli -h 127.0.0.1 --scan --pattern "$PG_DB:*" 2>/dev/null | xargs -r redis-cli -h 127.0.0.1 del >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT

log "building the release binary"
cargo build --release --locked --bin videoflix >&2
BIN="${CARGO_TARGET_DIR:-target}/release/videoflix"

SQLITE_URL="sqlite://$WORK/bench.db?mode=rwc"
PG_URL="${PG_ADMIN%/*}/$PG_DB"
export MAIL_OUTBOX_DIR="$WORK/outbox" MEDIA_DIR="$WORK/media" EXPORT_DIR="$WORK/exports"
export JWT_SECRET="bench-secret-0123456789-abcdefghijklmnopqrstuvwxyz"
export PUBLIC_URL="https://videoflix.example/"
export THROTTLE_ENABLED=false RUST_LOG=warn TRANSCODE_PRESET=veryfast REDIS_PREFIX="$PG_DB"
unset SMTP_URL

use_sqlite() { export DATABASE_URL="$SQLITE_URL"; unset REDIS_URL; }
use_postgres() { export DATABASE_URL="$PG_URL" REDIS_URL="redis://127.0.0.1:6379"; }

start_server() { # extra flags of `videoflix serve`
    spawn_server "$@"
    SERVER_PID="$SPAWNED_PID" PORT="$SPAWNED_PORT" BASE="http://127.0.0.1:$SPAWNED_PORT"
}
stop_server() {
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
}
rss_kib() { awk -v k="$2" '$1 == k":" {print $2}' "/proc/$1/status"; }

# --- seeding ------------------------------------------------------------------------------------

log "seeding: one transcoded clip"
use_sqlite
create_admin
start_server
login
AUTH="Authorization: Token $TOKEN"
seed_upload
stop_server
"$BIN" export-video-data --output "$EXPORT_DIR" >/dev/null
TEMPLATE="$(find "$EXPORT_DIR" -name 'video_data_*.json' | head -n1)"
[ "$(jq length "$TEMPLATE")" = 1 ] || fail "the export holds $(jq length "$TEMPLATE") videos, expected 1"

psql -q "$PG_ADMIN" -c "CREATE DATABASE $PG_DB" >/dev/null
use_postgres
"$BIN" migrate >/dev/null
create_admin

# Writes videos $2..$3 of the grown catalog to file $1 (the template's media, each under its
# own folder name; video 1 keeps the real one).
grow_json() { # file from to
    python3 - "$TEMPLATE" "$1" "$2" "$3" <<'PY'
import json, random, re, sys, datetime
template, out, first, last = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
v = json.load(open(template))[0]
adjectives = """silent broken golden hidden last first wild dark bright lost final secret
frozen burning quiet endless little great strange savage gentle crimson hollow iron
electric distant northern ancient modern royal wicked lucky lonely brave restless
fading rising falling sacred""".split()
nouns = """film night river city road garden storm house heart ocean mountain shadow
summer winter engine forest island machine empire kingdom letter mirror harbor station
circus desert valley castle bridge signal planet voyage orchard canyon theater market
tower lantern""".split()
words = """a an the of in on at by for with about across after against along among
around before behind below beneath beside between beyond during inside into near
night day morning evening story journey life love war peace family friend enemy
stranger city town village country world home road river sea ocean mountain forest
desert island sky star moon sun fire water earth wind storm rain snow light dark
shadow dream memory secret truth lie hope fear courage power money time music song
dance game race fight chase escape return discovery adventure mystery crime murder
detective police doctor teacher soldier pilot captain king queen prince princess
child mother father brother sister son daughter wife husband woman man boy girl
young old new lost found hidden broken strange wild quiet loud fast slow small big
first last final great little long short deep high cold hot bright dark beautiful
follows meets finds loses discovers escapes returns becomes fights saves""".split()
t0 = datetime.datetime.fromisoformat(re.sub(r"\.[0-9]+", "", v["uploaded_at"]).replace("Z", "+00:00"))
rng = random.Random(13)
for _ in range(first - 1):  # the same titles whatever the sizes: draw the skipped ones
    rng.choice(adjectives); rng.choice(nouns); [rng.choice(words) for _ in range(12)]
genres = ["documentary", "action", "horror", "drama", "technic"]
languages = ["english", "german", "french"]
entries = []
for i in range(first, last + 1):
    e = json.loads(re.sub(r'"videos/1/', '"videos/%d/' % i, json.dumps(v))) if i > 1 else dict(v)
    title = "%s %s %d" % (rng.choice(adjectives).capitalize(), rng.choice(nouns), i)
    description = " ".join(rng.choice(words) for _ in range(12)).capitalize() + "."
    at = (t0 - datetime.timedelta(seconds=200000 - i)).isoformat()
    e.update(id=i, title=title, description=description, genre=genres[i % 5],
             language=languages[i % 3], uploaded_at=at, updated_at=at)
    entries.append(e)
json.dump(entries, open(out, "w"))
PY
}

# --- measuring ----------------------------------------------------------------------------------

WWW="$WORK/www"
mkdir -p "$WWW" "$WORK/nginx"
chmod 755 "$WORK"
NGINX_PORT="$(pick_port)"
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
    open_file_cache max=64 inactive=1h;
    open_file_cache_valid 1h;
    default_type application/json;
    types { }
    root $WWW;
    server { listen 127.0.0.1:$NGINX_PORT; }
}
CONF
echo '{}' >"$WWW/ping.json"
chmod -R a+rX "$WWW"
start_nginx "$WORK/nginx/nginx.conf" "$NGINX_PORT" /ping.json
assert_ours nginx "$NGINX_PID" "$NGINX_PORT"

RESULTS="$WORK/results.tsv" MEMORY="$WORK/memory.tsv"
: >"$RESULTS"
: >"$MEMORY"
ROWS=(list search_narrow search_broad page2 deep detail)
declare -A LABEL=([list]="list, page of 50" [search_narrow]="search \"film 3\", page of 20"
    [search_broad]="search \"night\", page of 20" [page2]="page 2 of 20" [deep]="middle page of 20"
    [detail]="detail")

# Measures every row against the server at $PORT for catalog size $1 and backend $2.
measure() { # size backend
    local size="$1" backend="$2" r path bytes idle peak crps cp99
    declare -A PATHS=([list]="/api/videos/?page_size=50" [search_narrow]="/api/videos/?search=film%203&page_size=20"
        [search_broad]="/api/videos/?search=night&page_size=20" [page2]="/api/videos/?page_size=20&page=2"
        [deep]="/api/videos/?page_size=20&page=$((size / 40 + 1))" [detail]="/api/videos/$((size / 2 + 1))/")
    start_server --cache-enabled false
    # Idle: answering /healthz, before any other request (a login hashes with argon2's 19 MiB).
    idle="$(rss_kib "$SERVER_PID" VmRSS)"
    login
    AUTH="Authorization: Token $TOKEN"
    for r in "${ROWS[@]}"; do
        path="${PATHS[$r]}"
        # The first request of each row after the start (lists: it builds the page index).
        first="$(curl -fsS "$BASE$path" -H "$AUTH" -o "$WWW/$r-$size.json" -w '%{time_total}')"
        printf '%s\t%s\t%s\t%.1f\n' "$size" "$backend" "${LABEL[$r]}" \
            "$(awk -v t="$first" 'BEGIN { print t * 1000 }')" >>"$WORK/first.tsv"
        bytes="$(wc -c <"$WWW/$r-$size.json")"
        case "$r" in
            list) jq -e 'has("count") and (.results | length) == 50 and all(.results[]; .status == "ready" and (.hls | startswith("https://")))' "$WWW/$r-$size.json" >/dev/null || fail "$path: not 50 ready videos with media URLs" ;;
            search_narrow) jq -e '(.results | length) == ([.count, 20] | min) and all(.results[]; .title | ascii_downcase | contains("film 3"))' "$WWW/$r-$size.json" >/dev/null || fail "$path: not only titles with \"film 3\"" ;;
            detail) jq -e --argjson id "$((size / 2 + 1))" '.id == $id' "$WWW/$r-$size.json" >/dev/null || fail "$path: not video $((size / 2 + 1))" ;;
            *) jq -e '.results | length > 0' "$WWW/$r-$size.json" >/dev/null || fail "$path: an empty page" ;;
        esac
        echo "$r-$size $(jq -r 'if has("count") then .count else 1 end' "$WWW/$r-$size.json")" >>"$WORK/counts"
        crps="" cp99=""
        if [ "$backend" = sqlite ]; then
            chmod a+r "$WWW/$r-$size.json"
            check_rest "$NGINX_PORT" "/$r-$size.json" "$bytes"
            run_wrk nginx "$NGINX_PID" "$NGINX_PORT" "/$r-$size.json"
            crps="$RUN_RPS" cp99="$RUN_P99"
            echo "$crps $cp99" >"$WORK/ceiling-$r-$size"
        else
            read -r crps cp99 <"$WORK/ceiling-$r-$size"
        fi
        check_rest "$PORT" "$path" "$bytes"
        run_wrk "the server" "$SERVER_PID" "$PORT" "$path"
        check_rest "$PORT" "$path" "$bytes"
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$size" "$backend" "${LABEL[$r]} (cache off)" "$bytes" \
            "$RUN_RPS" "$RUN_P99" "$crps" "$cp99" >>"$RESULTS"
    done
    peak="$(rss_kib "$SERVER_PID" VmHWM)"
    stop_server
    printf '%s\t%s\t%s\t%s\n' "$size" "$backend" "$((idle / 1024))" "$((peak / 1024))" >>"$MEMORY"

    start_server
    login
    AUTH="Authorization: Token $TOKEN"
    for r in list detail; do
        path="${PATHS[$r]}"
        bytes="$(curl -fsS "$BASE$path" -H "$AUTH" | wc -c)"
        check_rest "$PORT" "$path" "$bytes"
        run_wrk "the server" "$SERVER_PID" "$PORT" "$path"
        check_rest "$PORT" "$path" "$bytes"
        printf '%s\t%s\t%s\t%s\t%s\t%s\t\t\n' "$size" "$backend" "${LABEL[$r]} (cached)" "$bytes" \
            "$RUN_RPS" "$RUN_P99" >>"$RESULTS"
    done
    stop_server
}

have=1
for size in "${SIZES[@]}"; do
    log "growing the catalog to $size videos"
    grow_json "$WORK/grow.json" "$have" "$size"
    for backend in sqlite postgres; do
        "use_$backend"
        start="$(date +%s.%N)"
        "$BIN" import-video-data "$WORK/grow.json" >"$WORK/import.log" || { cat "$WORK/import.log" >&2; fail "the import failed"; }
        printf '%s\t%s\timport of %s videos\t%.1f s\n' "$size" "$backend" "$((size - have + 1))" \
            "$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { print b - a }')" >>"$WORK/imports.tsv"
    done
    have=$((size + 1))
    for backend in sqlite postgres; do
        log "measuring $size videos on $backend (${DURATION}s per run, $CONNECTIONS connections)"
        "use_$backend"
        measure "$size" "$backend"
    done
done

printf '\n%7s %-9s %-36s %7s %10s %8s %11s %8s %7s\n' videos backend what bytes "req/s" "p99 ms" "nginx req/s" "p99 ms" "of nginx"
while IFS=$'\t' read -r size backend what bytes rps p99 crps cp99; do
    pct="$(awk -v r="$rps" -v c="$crps" 'BEGIN { if (c > 0) printf "%.1f%%", 100 * r / c }')"
    printf '%7s %-9s %-36s %7s %10s %8s %11s %8s %7s\n' "$size" "$backend" "$what" "$bytes" "$rps" "$p99" "$crps" "$cp99" "$pct"
done <"$RESULTS"
printf '\n%7s %-9s %13s %13s\n' videos backend "idle RSS MiB" "peak RSS MiB"
while IFS=$'\t' read -r size backend idle peak; do
    printf '%7s %-9s %13s %13s\n' "$size" "$backend" "$idle" "$peak"
done <"$MEMORY"
echo
echo "First request of each row after a start, cache off (ms; a list's first builds its page index):"
awk -F'\t' '{printf "  %7s %-9s %-36s %8s\n", $1, $2, $3, $4}' "$WORK/first.tsv"
echo "Matches (count of each list answer):"
sort -u "$WORK/counts" | awk '{printf "  %s: %s\n", $1, $2}'
echo "Imports (the store's bulk write, each size adding its videos):"
awk -F'\t' '{printf "  %s videos, %s: %s, %s\n", $1, $2, $3, $4}' "$WORK/imports.tsv"
echo
echo "$(date), $(nproc) cores shared by the server, nginx, the databases and wrk,"
echo "commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD -- 2>/dev/null || echo ' (with local changes)')."
echo "Reproduce with: ${SIZES:+SIZES=\"${SIZES[*]}\" }bench/growth.sh $DURATION"
