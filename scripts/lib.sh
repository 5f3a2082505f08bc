# Shared helpers of scripts/serve.sh and scripts/test.sh: install only what is missing.
# shellcheck shell=bash

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

BUF_VERSION="1.75.0"
TOOLS_DIR="${VIDEOFLIX_TOOLS_DIR:-$HOME/.cache/videoflix-tools}"

log() { printf '\033[1;34m==>\033[0m %s\n' "$*" >&2; }

apt_updated=0
# Installs the Debian/Ubuntu packages given that are not installed yet.
need_packages() {
    local missing=()
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    if [ "${#missing[@]}" -gt 0 ]; then
        log "installing system packages: ${missing[*]}"
        if [ "$apt_updated" -eq 0 ]; then
            $SUDO apt-get update -qq
            apt_updated=1
        fi
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
    fi
}

# Rust must be there (the README assumes it); FFmpeg's dev libraries and a C toolchain come
# from apt.
ensure_build_deps() {
    if ! command -v cargo >/dev/null 2>&1; then
        echo "error: Rust is required (https://rustup.rs), then run this again" >&2
        exit 1
    fi
    ensure_toolchain
    need_packages build-essential pkg-config clang libclang-dev ffmpeg \
        libavcodec-dev libavformat-dev libavutil-dev libavfilter-dev libavdevice-dev \
        libswscale-dev libswresample-dev
}

# rust-toolchain.toml pins the Rust version. rustup installs it when missing; on a machine that
# cannot reach rustup's servers but whose default toolchain is that very version, the default
# one is registered under the pinned name instead.
ensure_toolchain() {
    command -v rustup >/dev/null 2>&1 || return 0
    local pinned default_version
    pinned="$(sed -n 's/^channel = "\(.*\)"/\1/p' rust-toolchain.toml)"
    if rustup toolchain list | grep -q "^$pinned"; then
        return 0
    fi
    default_version="$(RUSTUP_TOOLCHAIN=stable rustc --version 2>/dev/null | awk '{print $2}')"
    if [ "$default_version" = "$pinned" ]; then
        # `rustup toolchain link` refuses release-like names: link the folder itself.
        local host
        host="$(RUSTUP_TOOLCHAIN=stable rustc -vV | sed -n 's/^host: //p')"
        log "using the installed Rust $pinned for rust-toolchain.toml"
        ln -sfn "$(RUSTUP_TOOLCHAIN=stable rustc --print sysroot)" \
            "${RUSTUP_HOME:-$HOME/.rustup}/toolchains/$pinned-$host"
    fi
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# PostgreSQL and Redis for the tests of the real backends: use the running servers, or install
# and start local ones.
ensure_test_services() {
    if ! port_open 5432; then
        need_packages postgresql
        log "starting PostgreSQL"
        local version
        version="$(ls /etc/postgresql | sort -V | tail -n1)"
        $SUDO pg_ctlcluster --skip-systemctl-redirect "$version" main start || $SUDO pg_ctlcluster "$version" main start
        for _ in $(seq 1 30); do port_open 5432 && break; sleep 1; done
        # A freshly installed cluster has password auth on TCP: give the test user one.
        $SUDO -u postgres psql -qc "ALTER USER postgres PASSWORD 'postgres'" >/dev/null
        export TEST_POSTGRES_URL="${TEST_POSTGRES_URL:-postgres://postgres:postgres@127.0.0.1:5432/postgres}"
    fi
    if ! port_open 6379; then
        need_packages redis-server
        log "starting Redis"
        redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
        for _ in $(seq 1 30); do port_open 6379 && break; sleep 1; done
    fi
}

# The Buf CLI (lint, `buf curl`), from npm, into a tools folder outside the repository.
ensure_buf() {
    if ! command -v npm >/dev/null 2>&1; then
        need_packages nodejs npm
    fi
    BUF="$TOOLS_DIR/node_modules/.bin/buf"
    if ! [ -x "$BUF" ] || ! "$BUF" --version 2>/dev/null | grep -qx "$BUF_VERSION"; then
        log "installing buf $BUF_VERSION"
        mkdir -p "$TOOLS_DIR"
        npm install --silent --no-audit --no-fund --prefix "$TOOLS_DIR" "@bufbuild/buf@$BUF_VERSION" >/dev/null
    fi
    export BUF
}

# cargo-deny (licences, duplicate versions, registries of the dependency tree; deny.toml), from
# crates.io, built in a temporary folder rather than the project's target folder.
CARGO_DENY_VERSION="0.20.2"
ensure_cargo_deny() {
    if ! cargo deny --version 2>/dev/null | grep -q " $CARGO_DENY_VERSION\$"; then
        log "installing cargo-deny $CARGO_DENY_VERSION"
        env -u CARGO_TARGET_DIR cargo install --locked --quiet cargo-deny --version "$CARGO_DENY_VERSION"
    fi
}

# A random JWT secret in .env on first run, so the server starts without --dev and tokens
# survive restarts.
ensure_jwt_secret() {
    if [ -z "${JWT_SECRET:-}" ] && ! grep -qs '^JWT_SECRET=.\+' .env; then
        log "writing a random JWT_SECRET to .env"
        printf 'JWT_SECRET=%s\n' "$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')" >> .env
    fi
}

# Node.js (Vite needs ≥ 20.19) and the web app's npm packages, as web/package-lock.json pins
# them (`npm ci`, again whenever the lock file changes).
ensure_web() {
    if ! command -v npm >/dev/null 2>&1; then
        need_packages nodejs npm
    fi
    if ! node -e 'const [a, b] = process.versions.node.split(".").map(Number);
                  process.exit(a > 20 || (a === 20 && b >= 19) ? 0 : 1)'; then
        echo "error: the web app needs Node.js >= 20.19 (found $(node --version))" >&2
        exit 1
    fi
    if ! [ -f web/node_modules/.package-lock.json ] ||
        [ web/package-lock.json -nt web/node_modules/.package-lock.json ]; then
        log "installing the web app's npm packages (npm ci)"
        (cd web && npm ci --silent --no-audit --no-fund)
    fi
}

# Builds the web app into web/dist (served at /app/) when it is missing or older than its
# sources or the protos its API client is generated from.
build_web() {
    ensure_web
    if ! [ -f web/dist/index.html ] || [ -n "$(find proto web/src web/public web/index.html \
        web/vite.config.ts web/tsconfig.json web/buf.gen.yaml web/package-lock.json \
        -newer web/dist/index.html -not -path 'web/src/gen/*' -print -quit)" ]; then
        log "building the web app (web/dist)"
        (cd web && npm run --silent build >/dev/null)
    fi
}

# Debian's Chromium, which the browser tests drive (playwright-core downloads no browser).
ensure_chromium() {
    command -v chromium >/dev/null 2>&1 || need_packages chromium
}
