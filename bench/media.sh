#!/usr/bin/env bash
# Media benchmark (issue #4), in one run on a generated 10 s 1920x1080 30 fps clip with audio:
#   (a) four ffmpeg CLI runs, one per rendition (the original's way)
#   (b) one ffmpeg CLI run with split=4
#   (c) our ladder (`videoflix transcode`: MP4 + HLS from the same encode, poster, sprites)
# all at the same encoder settings (libx264 preset medium, rc-lookahead 10, 2 threads, 800k/1200k/2500k/5000k, fixed
# 4 s GOP, AAC 128k), with times, ratios and our peak RSS; then the streaming throughput of
# REST Range and gRPC StreamVideo next to nginx serving the same 200 MiB file.
#
# Usage: bench/media.sh [seconds of source video, default 10]
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh
ensure_build_deps
need_packages nginx-light curl jq time python3

SECONDS_OF_VIDEO="${1:-10}"
PORT=18090
NGINX_PORT=18091
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

SRC="$WORK/source.mp4"
log "generating a ${SECONDS_OF_VIDEO} s 1920x1080 30 fps source with audio"
ffmpeg -hide_banner -loglevel error -y \
    -f lavfi -i "testsrc2=size=1920x1080:rate=30:duration=$SECONDS_OF_VIDEO" \
    -f lavfi -i "sine=frequency=440:sample_rate=48000:duration=$SECONDS_OF_VIDEO" \
    -c:v libx264 -preset veryfast -crf 18 -pix_fmt yuv420p -c:a aac -b:a 192k "$SRC"

X264=(-c:v libx264 -preset medium -g 120 -keyint_min 120 -sc_threshold 0 -x264-params rc-lookahead=10:threads=2 -pix_fmt yuv420p)
AAC=(-c:a aac -b:a 128k)
RUNGS=("360 800k" "480 1200k" "720 2500k" "1080 5000k")

timed() { # seconds of wall time of "$@"
    local start end
    start="$(date +%s.%N)"
    "$@"
    end="$(date +%s.%N)"
    awk -v s="$start" -v e="$end" 'BEGIN { printf "%.2f", e - s }'
}

separate() {
    for rung in "${RUNGS[@]}"; do
        set -- $rung
        ffmpeg -hide_banner -loglevel error -y -i "$SRC" -vf "scale=-2:$1" "${X264[@]}" -b:v "$2" \
            "${AAC[@]}" -movflags +faststart "$WORK/a_$1.mp4"
    done
}

split4() {
    local maps=() graph="[0:v]split=4[s0][s1][s2][s3]" i=0
    for rung in "${RUNGS[@]}"; do
        set -- $rung
        graph="$graph;[s$i]scale=-2:$1[v$i]"
        maps+=(-map "[v$i]" -map 0:a "${X264[@]}" -b:v "$2" "${AAC[@]}" -movflags +faststart "$WORK/b_$1.mp4")
        i=$((i + 1))
    done
    ffmpeg -hide_banner -loglevel error -y -i "$SRC" -filter_complex "$graph" "${maps[@]}"
}

ours() {
    rm -rf "$WORK/c"
    /usr/bin/time -v -o "$WORK/c.time" "$BIN" transcode "$SRC" "$WORK/c" --preset medium >"$WORK/c.log"
}

log "(a) four ffmpeg runs"
A="$(timed separate)"
log "(b) one ffmpeg run with split=4"
B="$(timed split4)"
log "(c) videoflix transcode"
C="$(timed ours)"
RSS_KB="$(awk -F': ' '/Maximum resident set size/ {print $2}' "$WORK/c.time")"
cat "$WORK/c.log" >&2

# Streaming: one 200 MiB file, served by nginx, by our REST /media (Range) and by StreamVideo.
log "streaming a 200 MiB file"
export DATABASE_URL="sqlite://$WORK/bench.db?mode=rwc" MEDIA_DIR="$WORK/media"
export MAIL_OUTBOX_DIR="$WORK/outbox" JWT_SECRET="bench-secret-0123456789-abcdefghijklmnop"
export PUBLIC_URL="http://127.0.0.1:$PORT/" THROTTLE_ENABLED=false RUST_LOG=warn
unset REDIS_URL SMTP_URL
echo "Bench-Admin-Pass-1" | "$BIN" createsuperuser --email bench@example.com --password-stdin >/dev/null
"$BIN" serve --addr "127.0.0.1:$PORT" >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 100); do
    curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break
    sleep 0.1
done
TOKEN="$(curl -fs "http://127.0.0.1:$PORT/login/" -H 'content-type: application/json' \
    -d '{"email":"bench@example.com","password":"Bench-Admin-Pass-1"}' | jq -r .token)"
ID="$(curl -fs "http://127.0.0.1:$PORT/api/videos/" -H "Authorization: Token $TOKEN" \
    -H 'content-type: application/json' -d '{"title":"Streaming benchmark"}' | jq -r .id)"
mkdir -p "$WORK/media/videos/$ID/bench"
BIG="$WORK/media/videos/$ID/bench/big.mp4"
head -c $((200 * 1024 * 1024)) /dev/urandom >"$BIG"
# The bench file stands in for the video's original (a real upload of 200 MiB would transcode).
python3 - "$WORK/bench.db" "$ID" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.execute("UPDATE videos SET video_file = ?, status = 'ready' WHERE id = ?",
           (f"videos/{sys.argv[2]}/bench/big.mp4", int(sys.argv[2])))
db.commit()
PY
URL="$("$BIN" media-url "videos/$ID/bench/big.mp4")"

mkdir -p "$WORK/nginx" "$WORK/www"
cp "$BIG" "$WORK/www/big.mp4"
chmod 755 "$WORK"
chmod -R a+rX "$WORK/www"
cat >"$WORK/nginx/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log warn;
events { worker_connections 64; }
http {
    access_log off;
    sendfile on;
    types { video/mp4 mp4; }
    server { listen 127.0.0.1:$NGINX_PORT; root $WORK/www; }
}
CONF
nginx -c "$WORK/nginx/nginx.conf" -p "$WORK/nginx" &
NGINX_PID=$!
sleep 0.5

# Single-connection downloads on two shared cores vary a lot from one to the next (nginx alone
# was seen between 2.5 and 6.8 GB/s): each figure is the median of 7, the three interleaved.
median() { sort -n | awk '{ v[NR] = $1 } END { printf "%.0f", v[int((NR + 1) / 2)] }'; }
: >"$WORK/nginx.mbs"; : >"$WORK/rest.mbs"; : >"$WORK/grpc.mbs"
for _ in 1 2 3 4 5 6 7; do
    curl -fs -o /dev/null -H 'Range: bytes=0-' -w '%{speed_download}\n' \
        "http://127.0.0.1:$NGINX_PORT/big.mp4" | awk '{ print $1 / 1e6 }' >>"$WORK/nginx.mbs"
    curl -fs -o /dev/null -H 'Range: bytes=0-' -w '%{speed_download}\n' "$URL" |
        awk '{ print $1 / 1e6 }' >>"$WORK/rest.mbs"
    "$BIN" download "$ID" --rendition original --output - \
        --server "http://127.0.0.1:$PORT" --token "$TOKEN" | awk '{ print $(NF-1) }' >>"$WORK/grpc.mbs"
done
NGINX_MBS="$(median <"$WORK/nginx.mbs")"
REST_MBS="$(median <"$WORK/rest.mbs")"
GRPC_MBS="$(median <"$WORK/grpc.mbs")"

printf '\n%-52s %10s %10s\n' "transcode (${SECONDS_OF_VIDEO} s of 1080p30)" "seconds" "÷ (b)"
printf '%-52s %10s %10s\n' "(a) four ffmpeg runs, one per rendition" "$A" "$(awk -v x="$A" -v b="$B" 'BEGIN { printf "%.2f", x / b }')"
printf '%-52s %10s %10s\n' "(b) one ffmpeg run, split=4" "$B" "1.00"
printf '%-52s %10s %10s\n' "(c) videoflix: MP4 + HLS + poster + sprites" "$C" "$(awk -v x="$C" -v b="$B" 'BEGIN { printf "%.2f", x / b }')"
printf '%-52s %10s\n' "(c) peak RSS (MB)" "$(awk -v k="$RSS_KB" 'BEGIN { printf "%.0f", k / 1024 }')"
printf '\n%-52s %10s %10s\n' "streaming 200 MiB (median of 7)" "MB/s" "of nginx"
printf '%-52s %10s %10s\n' "nginx (sendfile)" "$NGINX_MBS" "100%"
printf '%-52s %10s %10s\n' "REST /media (signed URL, Range)" "$REST_MBS" "$(awk -v x="$REST_MBS" -v n="$NGINX_MBS" 'BEGIN { printf "%.0f%%", 100 * x / n }')"
printf '%-52s %10s %10s\n' "gRPC StreamVideo (256 KiB chunks)" "$GRPC_MBS" "$(awk -v x="$GRPC_MBS" -v n="$NGINX_MBS" 'BEGIN { printf "%.0f%%", 100 * x / n }')"
