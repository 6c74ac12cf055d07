#!/usr/bin/env bash
# quickstart.sh: build weft and see it proxy, in one command.
#
#   scripts/quickstart.sh
#
# Installs what is missing (scripts/setup.sh), builds a Release weft in
# build/, starts a test backend on 127.0.0.1:8080 and weft with
# examples/quickstart/weft.yaml (listener 127.0.0.1:10000, admin
# 127.0.0.1:15000), sends a few requests through the proxy, shows some
# metrics, then stops both. Logs stay in a temp dir that is removed at exit.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

CONFIG="examples/quickstart/weft.yaml"
BACKEND_PORT=8080
LISTEN_PORT=10000
ADMIN_PORT=15000
PYTHON=/usr/bin/python3
[[ -x "$PYTHON" ]] || PYTHON=python3

if [[ -t 1 ]]; then
    say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
else
    say() { printf '\n== %s\n' "$*"; }
fi
die() {
    printf 'quickstart: %s\n' "$*" >&2
    exit 1
}

"$ROOT/scripts/setup.sh"

# Warnings are errors in the test builds (scripts/test.sh); here a new
# compiler's new warning must not stand between a user and a running proxy.
say "building weft (Release, build/)"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DWEFT_SANITIZE= -DWEFT_FUZZ=OFF -DWEFT_WERROR=OFF >/dev/null
cmake --build build -j "$(nproc)" --target weft
[[ -f "$CONFIG" ]] || die "$CONFIG not found"

port_busy() {
    "$PYTHON" - "$1" <<'PY'
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(0)
sys.exit(1)
PY
}
for p in "$BACKEND_PORT" "$LISTEN_PORT" "$ADMIN_PORT"; do
    if port_busy "$p"; then
        die "port 127.0.0.1:$p is in use; stop whatever listens there and rerun"
    fi
done

LOGS="$(mktemp -d "${TMPDIR:-/tmp}/weft-quickstart.XXXXXX")"
BACKEND_PID=""
WEFT_PID=""
cleanup() {
    local rc=$? pid i
    set +e
    for pid in "$WEFT_PID" "$BACKEND_PID"; do
        [[ -n "$pid" ]] || continue
        kill -TERM "$pid" 2>/dev/null
        for ((i = 0; i < 50; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    if ((rc != 0)) && [[ -f "$LOGS/weft.log" ]]; then
        printf '\n-- weft log --\n' >&2
        tail -n 50 "$LOGS/weft.log" >&2
    fi
    rm -rf "$LOGS"
    if ((rc == 0)); then
        say "stopped weft and the backend"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

wait_ready() { # URL PID WHAT
    local i
    for ((i = 0; i < 100; i++)); do
        if curl -fs -o /dev/null --max-time 1 "$1"; then
            return 0
        fi
        kill -0 "$2" 2>/dev/null || die "$3 exited during start-up"
        sleep 0.1
    done
    die "$3 not ready after 10 s ($1)"
}

say "starting the backend on 127.0.0.1:$BACKEND_PORT"
"$PYTHON" tests/integration/backend.py --port "$BACKEND_PORT" --name quickstart-backend \
    >"$LOGS/backend.log" 2>&1 &
BACKEND_PID=$!
wait_ready "http://127.0.0.1:$BACKEND_PORT/healthz" "$BACKEND_PID" backend

say "starting weft: build/bin/weft -c $CONFIG"
build/bin/weft -c "$CONFIG" >"$LOGS/weft.log" 2>&1 &
WEFT_PID=$!
wait_ready "http://127.0.0.1:$ADMIN_PORT/ready" "$WEFT_PID" weft
echo "weft is ready (admin http://127.0.0.1:$ADMIN_PORT/ready)"

# show CMD...: prints the command as one could paste it, then runs it.
show() {
    local a line="$"
    for a in "$@"; do
        if [[ "$a" =~ [^A-Za-z0-9_./:=%@,+-] ]]; then
            line+=" '${a//\'/\'\\\'\'}'"
        else
            line+=" $a"
        fi
    done
    printf '\n%s\n' "$line"
    "$@"
    echo
}

say "requests through the proxy on 127.0.0.1:$LISTEN_PORT"
show curl -sS -i --max-time 5 "http://127.0.0.1:$LISTEN_PORT/hello?from=quickstart"
show curl -sS -i --max-time 5 -X POST -H 'Content-Type: text/plain' \
    --data-binary 'hello through weft' "http://127.0.0.1:$LISTEN_PORT/echo"
show curl -sS -o /dev/null --max-time 5 \
    -w 'GET /status/404 -> HTTP %{http_code}\n' "http://127.0.0.1:$LISTEN_PORT/status/404"

say "a few metrics: curl http://127.0.0.1:$ADMIN_PORT/stats/prometheus | grep weft_"
metrics=$(curl -sS --max-time 5 "http://127.0.0.1:$ADMIN_PORT/stats/prometheus")
if grep -q '^weft_' <<<"$metrics"; then
    awk '/^weft_/ && n++ < 15' <<<"$metrics"
else
    echo "(no weft_ samples in /stats/prometheus)"
fi
