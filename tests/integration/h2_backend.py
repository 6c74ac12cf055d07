#!/usr/bin/python3
"""h2_backend.py: an HTTP/2 cleartext (h2c, prior knowledge) backend for
weft's upstream tests, built on the `h2` library and asyncio.

    h2_backend.py --port P [--name N] [--max-streams N] [--goaway-after N]
                  [--events FILE]

Endpoints (any method):
  /echo            the request body back (content-type kept)
  /delay/<ms>      waits, then answers like /
  /bytes/<n>       n bytes of 'x'
  /trailers        a small body, then trailers x-trailer-a: 1, x-trailer-b: two
  /status/<code>   that status
  anything else    200 with a JSON document: backend, protocol ("h2"),
                   method, path, authority, scheme, conn (this connection's
                   number), stream, headers, body_len
Every response carries x-backend: <name> and x-backend-conn: <conn>.

--max-streams N   SETTINGS_MAX_CONCURRENT_STREAMS advertised (default 100)
--goaway-after N  on each connection, when the N-th request arrives on
                  stream S, a GOAWAY (NO_ERROR, last_stream_id=S) is sent;
                  streams up to S are answered, streams above S are refused
                  with RST_STREAM REFUSED_STREAM (never processed, so a
                  client may retry them), and the connection is closed once
                  the last answered stream is done.

--hello NAME      speak hello_transport's toy handshake (tests/filters) before
                  HTTP/2: send "HELLO NAME h2\n", read the client's line
                  (event HELLO <n> <line>), then h2 as usual.

--events FILE gets one line per event, flushed:
  CONN <n>                       a connection was accepted
  CLOSE <n> max_concurrent=<m>   it ended; m = most streams open at once
  REQ <n> <stream> <METHOD> <path>
  GOAWAY <n> last_stream=<s>
  REFUSED <n> <stream>            refused after our GOAWAY
  OVER_LIMIT <n> <stream>         refused: --max-streams already open
  ERROR <n> <text>               a protocol error raised by h2
"""

import argparse
import asyncio
import collections
import json
import signal
import sys

from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.errors import ErrorCodes
from h2.events import (ConnectionTerminated, DataReceived, RequestReceived, StreamEnded,
                       StreamReset, WindowUpdated)
from h2.exceptions import ProtocolError, StreamClosedError
from h2.settings import SettingCodes, Settings

ARGS = None
EVENTS = None
CONN_SEQ = 0


def event(line):
    if EVENTS:
        EVENTS.write(line + "\n")
        EVENTS.flush()


class Req:
    def __init__(self, headers):
        self.headers = headers
        self.body = bytearray()


class H2Server(asyncio.Protocol):
    def __init__(self):
        global CONN_SEQ
        CONN_SEQ += 1
        self.n = CONN_SEQ
        self.conn = H2Connection(config=H2Configuration(client_side=False, header_encoding="utf-8"))
        self.conn.local_settings = Settings(client=False, initial_values={
            SettingCodes.MAX_CONCURRENT_STREAMS: ARGS.max_streams,
            SettingCodes.INITIAL_WINDOW_SIZE: 1 << 20,
        })
        self.reqs = {}
        self.open_streams = set()
        self.max_open = 0
        self.count = 0
        self.goaway_last = None
        self.windows = {}
        self.transport = None
        self.closed = False

    def connection_made(self, transport):
        self.transport = transport
        event("CONN %d" % self.n)
        self.hello = None
        if ARGS.hello:
            # hello_transport's toy handshake, server side: our line first,
            # then the client's line, then HTTP/2.
            self.hello = bytearray()
            transport.write(("HELLO %s h2\n" % ARGS.hello).encode())
            return
        self.start_h2()

    def start_h2(self):
        self.conn.initiate_connection()
        # The advertised limit is enforced below (on_request), stream by
        # stream with REFUSED_STREAM as RFC 9113 5.1.2 allows; h2's own check
        # would end the whole connection when a client opens streams before
        # it has read our SETTINGS.
        self.conn.local_settings._settings[SettingCodes.MAX_CONCURRENT_STREAMS] = \
            collections.deque([1 << 30])
        self.conn.increment_flow_control_window(1 << 24)
        self.flush()

    def connection_lost(self, exc):
        self.closed = True
        event("CLOSE %d max_concurrent=%d" % (self.n, self.max_open))
        for ev in self.windows.values():
            ev.set()

    def flush(self):
        data = self.conn.data_to_send()
        if data and not self.closed:
            self.transport.write(data)

    def data_received(self, data):
        if self.hello is not None:
            self.hello += data
            if b"\n" not in self.hello:
                return
            line, _, data = bytes(self.hello).partition(b"\n")
            event("HELLO %d %s" % (self.n, line.decode(errors="replace")))
            self.hello = None
            self.start_h2()
            if not data:
                return
        try:
            events = self.conn.receive_data(data)
        except ProtocolError as e:
            event("ERROR %d %s" % (self.n, e.__class__.__name__))
            self.flush()
            self.transport.close()
            return
        for ev in events:
            if isinstance(ev, RequestReceived):
                self.on_request(ev)
            elif isinstance(ev, DataReceived):
                req = self.reqs.get(ev.stream_id)
                if req is not None:
                    req.body += ev.data
                self.conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            elif isinstance(ev, StreamEnded):
                req = self.reqs.get(ev.stream_id)
                if req is not None:
                    asyncio.ensure_future(self.respond(ev.stream_id, req))
            elif isinstance(ev, StreamReset):
                self.stream_done(ev.stream_id)
            elif isinstance(ev, WindowUpdated):
                for ev2 in self.windows.values():
                    ev2.set()
            elif isinstance(ev, ConnectionTerminated):
                self.transport.close()
        self.flush()

    def on_request(self, ev):
        sid = ev.stream_id
        hdrs = dict(ev.headers)
        if self.goaway_last is not None and sid > self.goaway_last:
            event("REFUSED %d %d" % (self.n, sid))
            self.conn.reset_stream(sid, ErrorCodes.REFUSED_STREAM)
            return
        if len(self.open_streams) >= ARGS.max_streams:
            event("OVER_LIMIT %d %d" % (self.n, sid))
            self.conn.reset_stream(sid, ErrorCodes.REFUSED_STREAM)
            return
        self.count += 1
        self.open_streams.add(sid)
        self.max_open = max(self.max_open, len(self.open_streams))
        self.reqs[sid] = Req(ev.headers)
        event("REQ %d %d %s %s" % (self.n, sid, hdrs.get(":method"), hdrs.get(":path")))
        if ARGS.goaway_after and self.count == ARGS.goaway_after and self.goaway_last is None:
            self.goaway_last = sid
            self.flush()
            # written by hand: h2's own close_connection() would stop the
            # state machine from answering the streams still in flight
            payload = sid.to_bytes(4, "big") + (0).to_bytes(4, "big")
            self.transport.write(len(payload).to_bytes(3, "big") + b"\x07\x00\x00\x00\x00\x00" + payload)
            event("GOAWAY %d last_stream=%d" % (self.n, sid))

    def stream_done(self, sid):
        self.open_streams.discard(sid)
        self.reqs.pop(sid, None)
        if self.goaway_last is not None and not self.open_streams and not self.closed:
            self.flush()
            self.transport.close()

    async def send_body(self, sid, body, end_stream):
        view = memoryview(body)
        while view:
            if self.closed:
                return False
            try:
                window = min(self.conn.local_flow_control_window(sid), self.conn.max_outbound_frame_size)
            except (StreamClosedError, KeyError, ProtocolError):
                return False
            if window <= 0:
                ev = self.windows.setdefault(sid, asyncio.Event())
                ev.clear()
                await ev.wait()
                continue
            chunk, view = view[:window], view[window:]
            try:
                self.conn.send_data(sid, bytes(chunk), end_stream=end_stream and not view)
            except (StreamClosedError, ProtocolError):
                return False
            self.flush()
        if not body and end_stream:
            try:
                self.conn.end_stream(sid)
            except (StreamClosedError, ProtocolError):
                return False
            self.flush()
        self.windows.pop(sid, None)
        return True

    async def respond(self, sid, req):
        h = dict(req.headers)
        path = h.get(":path", "/")
        parts = [p for p in path.split("?", 1)[0].split("/") if p]
        head = parts[0] if parts else ""
        arg = parts[1] if len(parts) > 1 else ""
        status, body, ctype, trailers = 200, None, "application/json", None
        if head == "delay" and arg.isdigit():
            await asyncio.sleep(int(arg) / 1000.0)
        if head == "echo":
            body = bytes(req.body)
            ctype = h.get("content-type", "application/octet-stream")
        elif head == "bytes" and arg.isdigit():
            body = b"x" * min(int(arg), 64 << 20)
            ctype = "application/octet-stream"
        elif head == "trailers":
            body = b"trailer body\n"
            ctype = "text/plain"
            trailers = [("x-trailer-a", "1"), ("x-trailer-b", "two")]
        elif head == "status" and arg.isdigit() and 200 <= int(arg) <= 599:
            status = int(arg)
        if body is None:
            doc = {
                "backend": ARGS.name, "protocol": "h2", "method": h.get(":method"),
                "path": path, "authority": h.get(":authority"), "scheme": h.get(":scheme"),
                "conn": self.n, "stream": sid, "body_len": len(req.body),
                "headers": {k: v for k, v in req.headers if not k.startswith(":")},
            }
            body = (json.dumps(doc, sort_keys=True) + "\n").encode()
        if self.closed:
            return
        try:
            self.conn.send_headers(sid, [
                (":status", str(status)), ("content-type", ctype),
                ("content-length", str(len(body))), ("x-backend", ARGS.name),
                ("x-backend-conn", str(self.n))])
        except (StreamClosedError, ProtocolError):
            self.stream_done(sid)
            return
        self.flush()
        ok = await self.send_body(sid, body, trailers is None)
        if ok and trailers:
            try:
                self.conn.send_headers(sid, trailers, end_stream=True)
            except (StreamClosedError, ProtocolError):
                pass
            self.flush()
        self.stream_done(sid)


def main():
    global ARGS, EVENTS
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--name", default="h2backend")
    ap.add_argument("--max-streams", type=int, default=100)
    ap.add_argument("--goaway-after", type=int, default=0)
    ap.add_argument("--events", default=None)
    ap.add_argument("--hello", default=None)
    ARGS = ap.parse_args()
    if ARGS.events:
        EVENTS = open(ARGS.events, "a", buffering=1)

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    server = loop.run_until_complete(
        loop.create_server(H2Server, ARGS.host, ARGS.port, reuse_address=True, backlog=1024))
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, loop.stop)
    sys.stderr.write("h2 backend %s listening on %s:%d\n" % (ARGS.name, ARGS.host, ARGS.port))
    sys.stderr.flush()
    try:
        loop.run_forever()
    finally:
        server.close()


if __name__ == "__main__":
    main()
