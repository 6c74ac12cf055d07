#!/usr/bin/env bash
# HTTP/2 responses on their way out: heads whose frames wait behind a full
# output buffer, and small bodies that wait in the stream object itself.
#
# weft hands nghttp2 the response header fields without a copy (views of
# the stream's arena, config and request buffers), so every HEADERS frame
# must be packed before the stream's end releases that memory, even when
# the connection's output is above its high watermark and the flush packed
# nothing. A listener with buffer_high_watermark 1 makes that the common
# case: a flush packs at most one frame while anything is queued, so
# streams finish with their HEADERS still queued in nghttp2.
#
# Asserts, through that listener to an HTTP/1.1 backend:
#   - 3 rounds of 40 concurrent streams on one connection, each a GET of
#     /headers/90 (about 1.5 KB of header fields with the request's: past the arena's inline
#     block, in blocks that a stream's end poisons under ASan): every
#     response 200 with all 90 x-h-i: vi fields intact, the route's added
#     header (config memory) and x-backend;
#   - h2load -n 400 -m 20 on the same path: 400 succeeded, 0 failed;
#   - bodies: a small body is kept in the stream object (up to 256 bytes)
#     and what follows it in a buffer. A client whose stream windows are 10
#     bytes (so nghttp2 asks for a few bytes at a time) reads 10 concurrent
#     chunked bodies of 3, 40 and 200 chunks ("chunk <i>\n" each, sent as
#     separate writes: the first small reads go inline, later ones after
#     them) and /bytes/100, 3 times over: every body byte for byte;
#   - weft exits cleanly after SIGTERM (no sanitizer report).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib_h2.sh"
h2_need_tools

BACKEND_PORT=$(free_port)
LISTEN_PORT=$(free_port)
# shellcheck disable=SC2034 # read by render_config through @ADMIN_PORT@
ADMIN_PORT=$(free_port)
start_backend b1 "$BACKEND_PORT"

CONFIG=$(render_config - <<'YAML'
workers: 1
drain_timeout: 1s
admin:
  address: 127.0.0.1
  port: @ADMIN_PORT@
listeners:
  - name: ingress
    address: 127.0.0.1
    port: @LISTEN_PORT@
    limits: { buffer_high_watermark: 1 }
    virtual_hosts:
      - name: default
        domains: ["*"]
        routes:
          - match: { prefix: / }
            cluster: b
            response_headers_to_add:
              - { name: x-route-added, value: "from-the-route-config" }
clusters:
  - name: b
    endpoints:
      - { address: 127.0.0.1, port: @BACKEND_PORT@ }
YAML
)
start_weft "$CONFIG"

cat >"$TEST_TMP/heads_client.py" <<'PY'
import socket, sys
import h2.config, h2.connection, h2.events

port, streams, rounds, n = (int(x) for x in sys.argv[1:5])
want = {"x-h-%d" % i: "v%d" % i for i in range(n)}
want["x-route-added"] = "from-the-route-config"
want["x-backend"] = "b1"
sock = socket.create_connection(("127.0.0.1", port), timeout=20)
conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
conn.initiate_connection()
sock.sendall(conn.data_to_send())
bad = ok = 0
sid = 1
for r in range(rounds):
    heads, ended = {}, set()
    ids = []
    for _ in range(streams):
        conn.send_headers(sid, [(":method", "GET"), (":scheme", "http"),
                                (":authority", "127.0.0.1"), (":path", "/headers/%d" % n)],
                          end_stream=True)
        ids.append(sid)
        sid += 2
    sock.sendall(conn.data_to_send())
    while len(ended) < streams:
        data = sock.recv(65536)
        if not data:
            print("EOF after %d of %d streams in round %d" % (len(ended), streams, r))
            sys.exit(1)
        for ev in conn.receive_data(data):
            if isinstance(ev, h2.events.ResponseReceived):
                heads[ev.stream_id] = {k.decode(): v.decode() for k, v in ev.headers}
            elif isinstance(ev, h2.events.DataReceived):
                conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            elif isinstance(ev, (h2.events.StreamEnded, h2.events.StreamReset)):
                ended.add(ev.stream_id)
        sock.sendall(conn.data_to_send())
    for i in ids:
        h = heads.get(i, {})
        diff = [k for k, v in want.items() if h.get(k) != v]
        if h.get(":status") != "200" or diff:
            bad += 1
            print("stream %d: status %s, %d fields wrong, e.g. %s" %
                  (i, h.get(":status"), len(diff), [(k, h.get(k)) for k in diff[:3]]))
        else:
            ok += 1
print("OK %d BAD %d" % (ok, bad))
PY

out=$("$PYTHON" "$TEST_TMP/heads_client.py" "$LISTEN_PORT" 40 3 90 2>&1) ||
    fail "client failed: $(tail -n 5 <<<"$out")"
assert_contains "$out" "OK 120 BAD 0" "120 response heads of 93 fields behind a full output buffer"

load=$(timeout 60 h2load -n 400 -c 1 -m 20 "http://127.0.0.1:$LISTEN_PORT/headers/90" 2>&1) ||
    fail "h2load did not finish: $(tail -n 5 <<<"$load")"
assert_contains "$load" "400 succeeded, 0 failed, 0 errored" "h2load through the 1-byte watermark"
assert_contains "$load" "status codes: 400 2xx" "h2load all 2xx"

cat >"$TEST_TMP/body_client.py" <<'PY'
import socket, sys
import h2.config, h2.connection, h2.events, h2.settings

port = int(sys.argv[1])
paths = {"/chunked/3": None, "/chunked/40": None, "/chunked/200": None, "/bytes/100": None}
for p in paths:
    if p.startswith("/chunked/"):
        paths[p] = "".join("chunk %d\n" % i for i in range(int(p.split("/")[2]))).encode()
sock = socket.create_connection(("127.0.0.1", port), timeout=20)
conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
conn.local_settings = h2.settings.Settings(client=True, initial_values={
    h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 10})
conn.initiate_connection()
sock.sendall(conn.data_to_send())
ok = bad = 0
sid = 1
for r in range(3):
    want, bodies, ended = {}, {}, set()
    for p in list(paths) * 3:
        conn.send_headers(sid, [(":method", "GET"), (":scheme", "http"),
                                (":authority", "127.0.0.1"), (":path", p)], end_stream=True)
        want[sid] = p
        bodies[sid] = b""
        sid += 2
    sock.sendall(conn.data_to_send())
    while len(ended) < len(want):
        data = sock.recv(65536)
        if not data:
            print("EOF after %d of %d streams" % (len(ended), len(want)))
            sys.exit(1)
        for ev in conn.receive_data(data):
            if isinstance(ev, h2.events.DataReceived):
                bodies[ev.stream_id] += ev.data
                conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            elif isinstance(ev, (h2.events.StreamEnded, h2.events.StreamReset)):
                ended.add(ev.stream_id)
        sock.sendall(conn.data_to_send())
    for i, p in want.items():
        exp = paths[p]
        got = bodies[i]
        if (exp is not None and got != exp) or (exp is None and len(got) != 100):
            bad += 1
            print("stream %d %s: %d bytes, want %s: %r" %
                  (i, p, len(got), len(exp) if exp else 100, got[:80]))
        else:
            ok += 1
print("OK %d BAD %d" % (ok, bad))
PY

out=$("$PYTHON" "$TEST_TMP/body_client.py" "$LISTEN_PORT" 2>&1) ||
    fail "body client failed: $(tail -n 5 <<<"$out")"
assert_contains "$out" "OK 36 BAD 0" "36 bodies through 10-byte stream windows"

stop_weft
