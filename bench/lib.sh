# Shared by the benchmarks: free ports that only our own processes hold, the seeded catalog
# (50 ready videos with media), wrk runs whose answers are checked. Sourced after scripts/lib.sh;
# the caller sets BIN, WORK, MEDIA_DIR, EXPORT_DIR, VIDEOS, CONNECTIONS and DURATION.
# shellcheck shell=bash
# It sets globals (SPAWNED_*, TOKEN, RUN_*) for the scripts that source it:
# shellcheck disable=SC2034

fail() {
    printf '\033[1;31merror:\033[0m %s\n' "$*" >&2
    exit 1
}

# --- ports: free ones, and only ever measured while our own process holds them ---------------

has_listener() { [ -n "$(ss -Hltn "sport = :$1")" ]; }

# A port nothing listens on (on any address): the kernel picks one, then ss confirms.
pick_port() {
    local port
    for _ in 1 2 3 4 5 6 7 8 9 10; do
        port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
        if ! has_listener "$port"; then
            echo "$port"
            return 0
        fi
    done
    fail "found no free port"
}

# Fails unless process $2 (or one of its children: nginx workers) is running and holds every
# listening socket on port $3.
assert_ours() { # what pid port
    local what="$1" pid="$2" port="$3" owners allowed
    kill -0 "$pid" 2>/dev/null || fail "$what (pid $pid) is not running"
    has_listener "$port" || fail "nothing listens on port $port, where $what (pid $pid) should"
    owners="$(ss -Hltnp "sport = :$port" | grep -o 'pid=[0-9]*' | cut -d= -f2 | sort -u)"
    [ -n "$owners" ] || fail "cannot tell who listens on port $port (ss -p shows no process)"
    allowed=" $pid $({ pgrep -P "$pid" || true; } | tr '\n' ' ') "
    for owner in $owners; do
        case "$allowed" in
            *" $owner "*) ;;
            *) fail "port $port is held by pid $owner ($(ps -o comm= -p "$owner" || true)), not by $what (pid $pid)" ;;
        esac
    done
}

# Starts `videoflix serve` on a free port with the flags given and waits for /healthz; sets
# SPAWNED_PID and SPAWNED_PORT. Its output goes to $WORK/server.log.
spawn_server() {
    local port pid
    port="$(pick_port)"
    echo "--- serve --addr 127.0.0.1:$port $*" >>"$WORK/server.log"
    "$BIN" serve --addr "127.0.0.1:$port" "$@" >>"$WORK/server.log" 2>&1 &
    pid=$!
    for _ in $(seq 1 300); do
        if ! kill -0 "$pid" 2>/dev/null; then
            cat "$WORK/server.log" >&2
            fail "the server exited at start"
        fi
        if [ "$(curl -fs "http://127.0.0.1:$port/healthz" 2>/dev/null)" = '{"status":"ok"}' ]; then
            assert_ours "the server" "$pid" "$port"
            SPAWNED_PID="$pid" SPAWNED_PORT="$port"
            return 0
        fi
        sleep 0.1
    done
    cat "$WORK/server.log" >&2
    fail "the server did not answer /healthz within 30 s"
}

# Starts nginx with the config $1 (its folder is the prefix and holds error.log) and waits until
# http://127.0.0.1:$2$3 answers; sets NGINX_PID.
start_nginx() { # conf port path
    local dir
    dir="$(dirname "$1")"
    nginx -c "$1" -p "$dir" -e "$dir/error.log" &
    NGINX_PID=$!
    for _ in $(seq 1 50); do
        kill -0 "$NGINX_PID" 2>/dev/null || { cat "$dir/error.log" >&2 || true; fail "nginx exited at start"; }
        curl -fs -o /dev/null "http://127.0.0.1:$2$3" && return 0
        sleep 0.1
    done
    fail "nginx did not answer on port $2 within 5 s"
}

# The benchmark's administrator, and a fresh token of it from $BASE in TOKEN.
create_admin() {
    echo "Bench-Admin-Pass-1" | "$BIN" createsuperuser --email bench@example.com --password-stdin >/dev/null
}
login() {
    TOKEN="$(curl -fsS "$BASE/login/" -H 'content-type: application/json' \
        -d '{"email":"bench@example.com","password":"Bench-Admin-Pass-1"}' | jq -er .token)"
}

# --- seeding: ready videos with media -----------------------------------------------------------

# Uploads one generated clip through the server at $BASE (as $AUTH) and waits until it is ready.
seed_upload() {
    local created status video ID
    # A 2 s 1080p test pattern with a tone (generated, nothing downloaded): four renditions.
    ffmpeg -hide_banner -loglevel error -y \
        -f lavfi -i "testsrc2=size=1920x1080:rate=30:duration=2" \
        -f lavfi -i "sine=frequency=440:sample_rate=48000:duration=2" \
        -c:v libx264 -preset ultrafast -pix_fmt yuv420p -c:a aac -shortest "$WORK/clip.mp4"
    created="$(curl -fsS "$BASE/api/videos/" -H "$AUTH" \
        -F "title=Benchmark video 1" -F "description=Seeded video number 1 for the catalog benchmark." \
        -F "author=Videoflix" -F "genre=action" -F "language=german" \
        -F "video_file=@$WORK/clip.mp4;type=video/mp4")"
    ID="$(jq -er .id <<<"$created")"
    [ "$ID" = 1 ] || fail "the first upload got id $ID, expected 1 in a fresh database"
    status=""
    for _ in $(seq 1 600); do
        video="$(curl -fsS "$BASE/api/videos/$ID/" -H "$AUTH")"
        status="$(jq -r .status <<<"$video")"
        case "$status" in
            ready) break ;;
            failed) fail "the transcode failed: $(jq -r .status_reason <<<"$video")" ;;
        esac
        sleep 0.5
    done
    [ "$status" = ready ] || fail "the upload was not ready after 300 s (status $status)"
}

# With the server stopped: the transcoded video, exported, becomes $VIDEOS entries.
seed_copies() {
    local EXPORT i
    # Own id, title, genre, language, upload time and media folder (hard links to the same
    # files), imported in one transaction.
    "$BIN" export-video-data --output "$EXPORT_DIR" >/dev/null
    EXPORT="$(find "$EXPORT_DIR" -name 'video_data_*.json' | head -n1)"
    [ "$(jq length "$EXPORT")" = 1 ] || fail "the export holds $(jq length "$EXPORT") videos, expected 1"
    for i in $(seq 2 "$VIDEOS"); do
        cp -al "$MEDIA_DIR/videos/1" "$MEDIA_DIR/videos/$i"
    done
    jq --argjson n "$VIDEOS" '
        .[0] as $v
        | ["documentary", "action", "horror", "drama", "technic"] as $genres
        | ["english", "german", "french"] as $languages
        | ($v.uploaded_at | sub("\\.[0-9]+"; "") | fromdateiso8601) as $t
        | [range(1; $n + 1) as $i
            | ($v | walk(if type == "string" then sub("^videos/1/"; "videos/\($i)/") else . end))
            + {id: $i,
               title: "Benchmark video \($i)",
               description: "Seeded video number \($i) for the catalog benchmark.",
               genre: $genres[$i % 5],
               language: $languages[$i % 3],
               uploaded_at: ($t - $n + $i | todate),
               updated_at: ($t - $n + $i | todate)}]
    ' "$EXPORT" >"$WORK/seed.json"
    "$BIN" import-video-data "$WORK/seed.json" >"$WORK/import.log"
}

# --- measuring --------------------------------------------------------------------------------

to_ms() { # a wrk latency (850.00us, 1.20ms, 1.01s) in ms
    awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n += 0; else if (v ~ /s$/) n *= 1000; printf "%.2f", n }'
}

# Before and after every run: the route still answers a body of the same size.
check_rest() { # port path bytes
    local got
    got="$(curl -fsS "http://127.0.0.1:$1$2" -H "$AUTH" | wc -c)"
    [ "$got" = "$3" ] || fail "port $1 $2 answered $got bytes, expected $3"
}

RUN_RPS="" RUN_P99=""
# wrk against port $3 (where process $2, "$1", must still listen afterwards); fails on any
# non-2xx answer or socket error. Sets RUN_RPS and RUN_P99 (ms).
run_wrk() { # what pid port path
    local out
    out="$(wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" --latency -H "$AUTH" "http://127.0.0.1:$3$4")"
    assert_ours "$1" "$2" "$3"
    if grep -qE "Non-2xx|Socket errors" <<<"$out"; then
        echo "$out" >&2
        fail "$1 $4: wrk saw errors"
    fi
    RUN_RPS="$(awk '/^Requests\/sec/ {print $2}' <<<"$out")"
    RUN_P99="$(to_ms "$(awk '$1 == "99%" {print $2}' <<<"$out")")"
}
