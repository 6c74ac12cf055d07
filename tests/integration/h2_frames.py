#!/usr/bin/python3
"""h2_frames.py: a raw HTTP/2 (h2c, prior knowledge) client for weft's tests.

    h2_frames.py PORT SCENARIO [options]

The connection preface, the client SETTINGS and the HPACK encoder come from
the `h2` library (H2Connection); frames are then written by hand, so that a
scenario can send what a library refuses to send: uppercase or
connection-specific header names, pseudo-headers out of order, oversized
frames, WINDOW_UPDATE of 0, floods. Every frame the server sends is parsed
here (9-byte frame header + hpack.Decoder) and reported one line each, in
arrival order, on stdout:

    SETTINGS NAME=VALUE ...              the server's SETTINGS (not ACKs)
    RESPONSE stream=N status=S           a response head
    HEADER stream=N name: value          each header of a response head
    DATA stream=N len=L                  (only with --print-data)
    BODY stream=N len=L sha256=H         when the stream ended
    TRAILER stream=N name: value         each trailer field
    ENDED stream=N                       END_STREAM from the server
    RST_STREAM stream=N code=NAME
    GOAWAY last_stream=N code=NAME debug=TEXT
    ACKS settings=N ping=N               ACKs read (printed at the end)
    SENT frames=N                        floods: frames written in full
    SEND_ERROR frames=N error=TEXT       writing failed (peer closed/reset)
    SEND_STALLED frames=N                writing blocked for --send-timeout
    NOTE text                            scenario-specific facts
    RSS_PEAK kb=N                        with --pid: highest VmRSS of that
                                         process sampled during the scenario
    END CLOSED|OPEN|RESET elapsed=S

CLOSED: the server closed the connection (EOF); RESET: reset by the server;
OPEN: still open when the scenario stopped reading (no byte for
--timeout seconds, or the scenario's condition was met and --linger ran
out). Error codes are printed by name (PROTOCOL_ERROR, FLOW_CONTROL_ERROR,
...). The exit status is 0 unless the connection could not be made or the
scenario name is unknown.

Scenarios (paths are sent as given; the default :authority is
127.0.0.1:PORT):

  get                 GET --path, read the response
  post                POST --path with --body-bytes of 'x' (content-length)
  uppercase-header    GET with the header "X-Upper: 1"
  conn-header         GET with the header --name: --value (connection,
                      transfer-encoding, keep-alive, proxy-connection, upgrade)
  te                  GET with "te: --value" (trailers / gzip)
  missing-pseudo      GET without the pseudo-header --name (:method, ...)
  pseudo-after-regular  GET whose :path comes after a regular header
  data-half-closed    HEADERS with END_STREAM (stream half-closed (remote)
                      on the server), then a DATA frame on it
  oversized-frame     POST HEADERS, then one DATA frame of 16385 bytes
  window-update-zero  WINDOW_UPDATE with increment 0 on --stream-id
                      (0: connection; otherwise an open POST stream)
  window-overflow     WINDOW_UPDATE of 2^31-1 on --stream-id (0 or a
                      stream), overflowing the 65535 window
  cl-mismatch         POST with content-length --value and --body-bytes of
                      DATA, END_STREAM
  rapid-reset         --count times: HEADERS (GET --path/<i>) + RST_STREAM
                      (CANCEL), written back to back
  continuation-flood  HEADERS without END_HEADERS, then up to --count
                      CONTINUATION frames (each a 1000-byte header), never
                      ending the block
  settings-flood      --count SETTINGS frames, ACKs not read during the flood
  ping-flood          --count PING frames, ACKs not read during the flood
  empty-data-flood    POST HEADERS, then --count empty DATA frames
  hpack-bomb          --count streams; each HEADERS block inserts a
                      4000-byte header into the dynamic table once (first
                      stream) and references it --refs times
  big-header-list     GET with one header of --value-bytes bytes, split over
                      CONTINUATION frames
  zero-window         SETTINGS_INITIAL_WINDOW_SIZE=0, GET --path, never
                      send WINDOW_UPDATE; read until the server gives up
  grpc-unary          POST --path as gRPC (content-type application/grpc,
                      te: trailers, grpc-timeout --value if given) with one
                      length-prefixed message of --body-bytes
  connect             CONNECT --authority (no :scheme/:path), then DATA of
                      --body-bytes random bytes; NOTE echo=ok|mismatch
  bad-preface         instead of the client preface, "PRI * HTTP/2.0\\r\\n\\r\\n"
                      followed by --value (backslash escapes decoded; default
                      XX\\r\\n\\r\\n): not the preface, though it begins like it
  lower-stream-id     GET --path on stream 5; once its response ended (or at
                      once with --value open), HEADERS on stream 3: an id
                      below one already opened (RFC 9113 5.1.1)
  drain               GET --path on stream 1, prints NOTE ready and waits
                      (--timeout) for a GOAWAY; on the first one, before
                      answering the PING that may follow it, opens stream 3
                      (GET --path) as a request crossing the GOAWAY would;
                      then reads until both streams ended and the server
                      closed
"""

import argparse
import hashlib
import os
import select
import socket
import struct
import sys
import time

import hpack
from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.settings import SettingCodes, Settings

DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, \
    WINDOW_UPDATE, CONTINUATION = range(10)
END_STREAM, ACK, END_HEADERS, PADDED, PRIORITY_FLAG = 0x1, 0x1, 0x4, 0x8, 0x20

ERROR_NAMES = {
    0x0: "NO_ERROR", 0x1: "PROTOCOL_ERROR", 0x2: "INTERNAL_ERROR",
    0x3: "FLOW_CONTROL_ERROR", 0x4: "SETTINGS_TIMEOUT", 0x5: "STREAM_CLOSED",
    0x6: "FRAME_SIZE_ERROR", 0x7: "REFUSED_STREAM", 0x8: "CANCEL",
    0x9: "COMPRESSION_ERROR", 0xa: "CONNECT_ERROR", 0xb: "ENHANCE_YOUR_CALM",
    0xc: "INADEQUATE_SECURITY", 0xd: "HTTP_1_1_REQUIRED",
}
SETTING_NAMES = {
    0x1: "HEADER_TABLE_SIZE", 0x2: "ENABLE_PUSH", 0x3: "MAX_CONCURRENT_STREAMS",
    0x4: "INITIAL_WINDOW_SIZE", 0x5: "MAX_FRAME_SIZE", 0x6: "MAX_HEADER_LIST_SIZE",
    0x8: "ENABLE_CONNECT_PROTOCOL", 0x9: "NO_RFC7540_PRIORITIES",
}


def out(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def esc(b, limit=200):
    if isinstance(b, str):
        b = b.encode("utf-8", "replace")
    return b[:limit].decode("latin-1").encode("unicode_escape").decode("ascii")


def frame(ftype, flags, sid, payload=b""):
    n = len(payload)
    return struct.pack(">BHBBI", n >> 16, n & 0xFFFF, ftype, flags, sid & 0x7FFFFFFF) + payload


def rss_kb(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class Stream:
    def __init__(self):
        self.status = None
        self.headers = []
        self.trailers = []
        self.body = bytearray()
        self.ended = False
        self.reset = None


class Client:
    def __init__(self, args, settings=None, preface=True):
        self.args = args
        self.t0 = time.monotonic()
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if args.rcvbuf:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, args.rcvbuf)
        s.settimeout(5)
        s.connect(("127.0.0.1", args.port))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = s
        self.buf = bytearray()
        self.state = None  # CLOSED / RESET once the connection ended
        self.streams = {}
        self.goaway = None
        self.server_settings = None
        self.acks = {"settings": 0, "ping": 0}
        self.decoder = hpack.Decoder()
        self.decoder.max_header_list_size = 1 << 30
        self.block = None  # (sid, flags, bytearray) while a header block is open
        self.auto_window = True
        self.pid = args.pid
        self.rss_peak = rss_kb(self.pid) if self.pid else 0
        self.send_failed = False
        self.on_goaway = None  # scenario hook, called with (last, code)

        conn = H2Connection(config=H2Configuration(
            client_side=True, header_encoding=None, validate_outbound_headers=False,
            normalize_outbound_headers=False, validate_inbound_headers=False))
        values = {SettingCodes.ENABLE_PUSH: 0}
        values.update(settings or {})
        # a fresh Settings object: values given to update() would stay
        # pending (unacknowledged) and not be sent in the first SETTINGS
        conn.local_settings = Settings(client=True, initial_values=values)
        conn.initiate_connection()
        self.encoder = conn.encoder
        if preface:
            self.send(conn.data_to_send())

    # -- writing ---------------------------------------------------------

    def send(self, data, frames=0):
        """Writes data; False (and one SEND_ line) when the peer is gone."""
        if self.send_failed:
            return False
        self.sock.settimeout(self.args.send_timeout)
        try:
            self.sock.sendall(data)
            return True
        except socket.timeout:
            out("SEND_STALLED frames=%d" % frames)
        except OSError as e:
            out("SEND_ERROR frames=%d error=%s" % (frames, e.__class__.__name__))
        self.send_failed = True
        return False

    def header_block(self, headers):
        return self.encoder.encode([(k.encode() if isinstance(k, str) else k,
                                     v.encode() if isinstance(v, str) else v)
                                    for k, v in headers])

    def send_headers(self, sid, headers, end_stream=True):
        block = self.header_block(headers)
        flags = END_HEADERS | (END_STREAM if end_stream else 0)
        self.streams.setdefault(sid, Stream())
        return self.send(frame(HEADERS, flags, sid, block))

    def send_data(self, sid, payload, end_stream=True):
        return self.send(frame(DATA, END_STREAM if end_stream else 0, sid, payload))

    def request_headers(self, method="GET", path="/", extra=()):
        return [(":method", method), (":scheme", "http"), (":path", path),
                (":authority", self.args.authority)] + list(extra)

    # -- reading ---------------------------------------------------------

    def sample_rss(self):
        if self.pid:
            self.rss_peak = max(self.rss_peak, rss_kb(self.pid))

    def pump(self, timeout):
        """Reads and handles frames; returns after `timeout` seconds with no
        byte, or when the connection ended."""
        while not self.state:
            self.sample_rss()
            r, _, _ = select.select([self.sock], [], [], timeout)
            if not r:
                return
            try:
                d = self.sock.recv(1 << 20)
            except (ConnectionResetError, BrokenPipeError):
                self.state = "RESET"
                return
            except OSError:
                self.state = "RESET"
                return
            if not d:
                self.state = "CLOSED"
                return
            self.buf += d
            self.parse()

    def wait(self, cond, timeout):
        """Pumps until cond() is true, the connection ended or timeout."""
        deadline = time.monotonic() + timeout
        while not cond() and not self.state:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self.pump(min(left, 0.1))
        return cond()

    def parse(self):
        while len(self.buf) >= 9:
            n = (self.buf[0] << 16) | (self.buf[1] << 8) | self.buf[2]
            if len(self.buf) < 9 + n:
                return
            ftype, flags = self.buf[3], self.buf[4]
            sid = struct.unpack(">I", bytes(self.buf[5:9]))[0] & 0x7FFFFFFF
            payload = bytes(self.buf[9:9 + n])
            del self.buf[:9 + n]
            self.handle(ftype, flags, sid, payload)

    def stream(self, sid):
        return self.streams.setdefault(sid, Stream())

    def handle(self, ftype, flags, sid, payload):
        if ftype == SETTINGS:
            if flags & ACK:
                self.acks["settings"] += 1
                return
            vals = []
            for i in range(0, len(payload) - 5, 6):
                k, v = struct.unpack(">HI", payload[i:i + 6])
                vals.append("%s=%d" % (SETTING_NAMES.get(k, "0x%x" % k), v))
            if self.server_settings is None:
                self.server_settings = dict(v.split("=") for v in vals)
                out("SETTINGS " + " ".join(vals))
            self.send(frame(SETTINGS, ACK, 0))
        elif ftype == PING:
            if flags & ACK:
                self.acks["ping"] += 1
            else:
                self.send(frame(PING, ACK, 0, payload))
        elif ftype == GOAWAY:
            last, code = struct.unpack(">II", payload[:8])
            self.goaway = ERROR_NAMES.get(code, "0x%x" % code)
            out("GOAWAY last_stream=%d code=%s debug=%s" % (last & 0x7FFFFFFF, self.goaway,
                                                            esc(payload[8:])))
            if self.on_goaway:
                self.on_goaway(last & 0x7FFFFFFF, code)
        elif ftype == RST_STREAM:
            code = struct.unpack(">I", payload[:4])[0]
            name = ERROR_NAMES.get(code, "0x%x" % code)
            self.stream(sid).reset = name
            out("RST_STREAM stream=%d code=%s" % (sid, name))
        elif ftype in (HEADERS, CONTINUATION):
            if ftype == HEADERS:
                pad = 0
                if flags & PADDED:
                    pad = payload[0]
                    payload = payload[1:]
                if flags & PRIORITY_FLAG:
                    payload = payload[5:]
                if pad:
                    payload = payload[:-pad]
                self.block = (sid, flags, bytearray(payload))
            elif self.block:
                self.block[2].extend(payload)
            if flags & END_HEADERS and self.block:
                bsid, bflags, data = self.block
                self.block = None
                self.on_headers(bsid, bflags, bytes(data))
        elif ftype == DATA:
            if flags & PADDED and payload:
                payload = payload[1:len(payload) - payload[0]]
            st = self.stream(sid)
            st.body += payload
            if self.args.print_data:
                out("DATA stream=%d len=%d" % (sid, len(payload)))
            if self.auto_window and len(payload):
                inc = struct.pack(">I", len(payload))
                self.send(frame(WINDOW_UPDATE, 0, 0, inc) + frame(WINDOW_UPDATE, 0, sid, inc))
            if flags & END_STREAM:
                self.end_stream(sid)
        elif ftype == PUSH_PROMISE:
            out("NOTE push_promise stream=%d" % sid)

    def on_headers(self, sid, flags, block):
        try:
            fields = self.decoder.decode(block, raw=True)
        except Exception as e:  # a server's bad HPACK is a finding, reported
            out("NOTE hpack_error %s" % e.__class__.__name__)
            return
        st = self.stream(sid)
        pairs = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in fields]
        status = [v for k, v in pairs if k == ":status"]
        if status and (st.status is None or st.status.startswith("1")):
            st.status = status[0]
            st.headers = pairs
            out("RESPONSE stream=%d status=%s" % (sid, st.status))
            for k, v in pairs:
                out("HEADER stream=%d %s: %s" % (sid, k, esc(v)))
        else:
            st.trailers = pairs
            for k, v in pairs:
                out("TRAILER stream=%d %s: %s" % (sid, k, esc(v)))
        if flags & END_STREAM:
            self.end_stream(sid)

    def end_stream(self, sid):
        st = self.stream(sid)
        st.ended = True
        out("BODY stream=%d len=%d sha256=%s" % (sid, len(st.body),
                                                 hashlib.sha256(bytes(st.body)).hexdigest()))
        out("ENDED stream=%d" % sid)

    def done(self, sid):
        st = self.streams.get(sid)
        return bool(self.goaway) or (st is not None and (st.ended or st.reset is not None))

    def finish(self):
        """Reads what is left for --linger seconds (or until the server
        closes), prints ACKS, RSS_PEAK and END."""
        if not self.state:
            self.wait(lambda: False, self.args.linger)
        out("ACKS settings=%d ping=%d" % (self.acks["settings"], self.acks["ping"]))
        if self.pid:
            self.sample_rss()
            out("RSS_PEAK kb=%d" % self.rss_peak)
        out("END %s elapsed=%.3f" % (self.state or "OPEN", time.monotonic() - self.t0))
        try:
            self.sock.close()
        except OSError:
            pass

    def flood(self, frames_iter, count, batch, read_between):
        """Writes `count` frames from frames_iter in batches; stops early when
        the connection ended or a write failed. Prints SENT."""
        sent = 0
        while sent < count and not self.state and not self.send_failed:
            n = min(batch, count - sent)
            data = b"".join(next(frames_iter) for _ in range(n))
            if not self.send(data, sent):
                break
            sent += n
            if read_between:
                self.pump(0)
            else:
                self.sample_rss()
        out("SENT frames=%d" % sent)
        return sent


# -- scenarios -------------------------------------------------------------

def sc_get(c, a):
    c.send_headers(1, c.request_headers("GET", a.path, a.header))
    c.wait(lambda: c.done(1), a.timeout)


def sc_post(c, a):
    body = b"x" * a.body_bytes
    c.send_headers(1, c.request_headers("POST", a.path, [("content-length", str(len(body)))]
                                        + a.header), end_stream=False)
    for i in range(0, len(body), 16384):
        c.send_data(1, body[i:i + 16384], end_stream=False)
    c.send_data(1, b"", end_stream=True)
    c.wait(lambda: c.done(1), a.timeout)


def sc_uppercase_header(c, a):
    c.send_headers(1, c.request_headers("GET", a.path, [("X-Upper", "1")]))
    c.wait(lambda: c.done(1), a.timeout)


def sc_conn_header(c, a):
    c.send_headers(1, c.request_headers("GET", a.path, [(a.name, a.value)]))
    c.wait(lambda: c.done(1), a.timeout)


def sc_te(c, a):
    c.send_headers(1, c.request_headers("GET", a.path, [("te", a.value)]))
    c.wait(lambda: c.done(1), a.timeout)


def sc_missing_pseudo(c, a):
    hdrs = [h for h in c.request_headers("GET", a.path) if h[0] != a.name]
    c.send_headers(1, hdrs)
    c.wait(lambda: c.done(1), a.timeout)


def sc_pseudo_after_regular(c, a):
    hdrs = [(":method", "GET"), (":scheme", "http"), (":authority", a.authority),
            ("x-regular", "1"), (":path", a.path)]
    c.send_headers(1, hdrs)
    c.wait(lambda: c.done(1), a.timeout)


def sc_data_half_closed(c, a):
    block = c.header_block(c.request_headers("GET", a.path))
    c.streams[1] = Stream()
    c.send(frame(HEADERS, END_HEADERS | END_STREAM, 1, block) + frame(DATA, 0, 1, b"late"))
    c.wait(lambda: c.done(1), a.timeout)


def open_post(c, a, sid=1):
    c.send_headers(sid, c.request_headers("POST", a.path, a.header), end_stream=False)


def sc_oversized_frame(c, a):
    open_post(c, a)
    c.send(frame(DATA, 0, 1, b"y" * 16385))
    c.wait(lambda: c.goaway is not None, a.timeout)


def sc_window_update_zero(c, a):
    if a.stream_id:
        open_post(c, a, a.stream_id)
    c.send(frame(WINDOW_UPDATE, 0, a.stream_id, struct.pack(">I", 0)))
    c.wait(lambda: c.goaway is not None or (a.stream_id and c.done(a.stream_id)), a.timeout)


def sc_window_overflow(c, a):
    if a.stream_id:
        open_post(c, a, a.stream_id)
    c.send(frame(WINDOW_UPDATE, 0, a.stream_id, struct.pack(">I", 0x7FFFFFFF)))
    c.wait(lambda: c.goaway is not None or (a.stream_id and c.done(a.stream_id)), a.timeout)


def sc_cl_mismatch(c, a):
    c.send_headers(1, c.request_headers("POST", a.path, [("content-length", a.value)]),
                   end_stream=False)
    c.send_data(1, b"z" * a.body_bytes, end_stream=True)
    c.wait(lambda: c.done(1), a.timeout)


def sc_rapid_reset(c, a):
    def gen():
        sid = 1
        while True:
            block = c.header_block(c.request_headers("GET", "%s/%d" % (a.path, sid)))
            yield frame(HEADERS, END_HEADERS | END_STREAM, sid, block) + \
                frame(RST_STREAM, 0, sid, struct.pack(">I", 0x8))
            sid += 2
    c.flood(gen(), a.count, 50, True)
    c.wait(lambda: c.goaway is not None, a.timeout)


def sc_continuation_flood(c, a):
    c.streams[1] = Stream()
    first = c.header_block(c.request_headers("GET", a.path))
    c.send(frame(HEADERS, 0, 1, first))

    def gen():
        i = 0
        while True:
            # literal without indexing, new name: never grows the dynamic table
            name = b"x-flood-%d" % i
            value = b"v" * 1000
            yield frame(CONTINUATION, 0, 1, b"\x00" + hpack_len(name) + name + hpack_len(value) + value)
            i += 1
    c.flood(gen(), a.count, 20, True)
    c.wait(lambda: c.goaway is not None, a.timeout)


def hpack_len(b):
    """An HPACK string length prefix (7-bit prefix, no Huffman) and nothing else."""
    n = len(b)
    if n < 127:
        return bytes([n])
    out_b = bytearray([127])
    n -= 127
    while n >= 128:
        out_b.append((n & 0x7F) | 0x80)
        n >>= 7
    out_b.append(n)
    return bytes(out_b)


def sc_settings_flood(c, a):
    def gen():
        while True:
            yield frame(SETTINGS, 0, 0, struct.pack(">HI", 0x4, 65535))
    c.flood(gen(), a.count, 500, False)
    c.wait(lambda: c.goaway is not None, a.timeout)


def sc_ping_flood(c, a):
    def gen():
        i = 0
        while True:
            yield frame(PING, 0, 0, struct.pack(">Q", i))
            i += 1
    c.flood(gen(), a.count, 500, False)
    c.wait(lambda: c.goaway is not None, a.timeout)


def sc_empty_data_flood(c, a):
    open_post(c, a)

    def gen():
        while True:
            yield frame(DATA, 0, 1, b"")
    c.flood(gen(), a.count, 500, True)
    c.wait(lambda: c.goaway is not None or c.done(1), a.timeout)


def sc_hpack_bomb(c, a):
    # Built by hand, not with the shared encoder: the first block inserts an
    # entry into the server's dynamic table that our encoder does not know,
    # so this connection sends nothing else through the encoder.
    name, value = b"x-bomb", b"b" * 4000
    auth = a.authority.encode()
    path = a.path.encode()
    base = (b"\x82"                                   # :method GET
            + b"\x86"                                 # :scheme http
            + b"\x04" + hpack_len(path) + path        # :path, literal, not indexed
            + b"\x01" + hpack_len(auth) + auth)       # :authority, literal, not indexed
    insert = b"\x40" + hpack_len(name) + name + hpack_len(value) + value
    sid = 1
    for i in range(a.count):
        block = base + (insert if i == 0 else b"") + b"\xbe" * a.refs  # 0xbe: dynamic index 62
        c.streams[sid] = Stream()
        chunks = [block[j:j + 16384] for j in range(0, len(block), 16384)]
        data = bytearray()
        for k, ch in enumerate(chunks):
            last = k == len(chunks) - 1
            if k == 0:
                data += frame(HEADERS, END_STREAM | (END_HEADERS if last else 0), sid, ch)
            else:
                data += frame(CONTINUATION, END_HEADERS if last else 0, sid, ch)
        if not c.send(bytes(data), i):
            break
        c.pump(0)
        if c.state or c.goaway:
            break
        sid += 2
    last_sid = sid
    c.wait(lambda: c.goaway is not None or all(c.done(s) for s in range(1, last_sid + 1, 2)),
           a.timeout)


def sc_big_header_list(c, a):
    hdrs = c.request_headers("GET", a.path) + [("x-big", "v" * a.value_bytes)]
    block = c.encoder.encode([(k.encode(), v.encode()) for k, v in hdrs], huffman=False)
    chunks = [block[j:j + 16384] for j in range(0, len(block), 16384)]
    data = bytearray()
    for k, ch in enumerate(chunks):
        last = k == len(chunks) - 1
        if k == 0:
            data += frame(HEADERS, END_STREAM | (END_HEADERS if last else 0), 1, ch)
        else:
            data += frame(CONTINUATION, END_HEADERS if last else 0, 1, ch)
    c.streams[1] = Stream()
    c.send(bytes(data))
    c.wait(lambda: c.done(1), a.timeout)


def sc_zero_window(c, a):
    c.auto_window = False
    c.send_headers(1, c.request_headers("GET", a.path))
    c.wait(lambda: c.done(1), a.timeout)
    st = c.streams[1]
    out("NOTE zero_window status=%s body=%d" % (st.status, len(st.body)))


def sc_grpc_unary(c, a):
    msg = os.urandom(a.body_bytes)
    extra = [("content-type", "application/grpc"), ("te", "trailers")]
    if a.value:
        extra.append(("grpc-timeout", a.value))
    c.send_headers(1, c.request_headers("POST", a.path, extra + a.header), end_stream=False)
    c.send_data(1, struct.pack(">BI", 0, len(msg)) + msg, end_stream=True)
    c.wait(lambda: c.done(1), a.timeout)


def sc_connect(c, a):
    c.send_headers(1, [(":method", "CONNECT"), (":authority", a.authority)], end_stream=False)
    c.wait(lambda: c.stream(1).status is not None or c.done(1), a.timeout)
    st = c.stream(1)
    if st.status != "200":
        return
    payload = os.urandom(a.body_bytes)
    for i in range(0, len(payload), 16384):
        c.send_data(1, payload[i:i + 16384], end_stream=False)
    ok = c.wait(lambda: len(st.body) >= len(payload), a.timeout)
    out("NOTE echo=%s bytes=%d" % ("ok" if ok and bytes(st.body[:len(payload)]) == payload
                                   else "mismatch", len(st.body)))
    c.send_data(1, b"", end_stream=True)
    c.wait(lambda: c.done(1), a.timeout)


def sc_bad_preface(c, a):
    tail = (a.value or "XX\\r\\n\\r\\n").encode("latin-1").decode("unicode_escape").encode("latin-1")
    c.send(b"PRI * HTTP/2.0\r\n\r\n" + tail)
    c.wait(lambda: c.goaway is not None, a.timeout)


def sc_lower_stream_id(c, a):
    c.send_headers(5, c.request_headers("GET", a.path))
    if a.value != "open":
        c.wait(lambda: c.stream(5).ended or c.stream(5).reset is not None, a.timeout)
    c.send_headers(3, c.request_headers("GET", a.path))
    c.wait(lambda: c.goaway is not None, a.timeout)


def sc_drain(c, a):
    goaways = []

    def on_goaway(last, code):
        goaways.append(last)
        if len(goaways) == 1:
            c.send_headers(3, c.request_headers("GET", a.path))

    c.on_goaway = on_goaway
    c.send_headers(1, c.request_headers("GET", a.path))
    out("NOTE ready")
    c.wait(lambda: bool(goaways), a.timeout)
    c.wait(lambda: all(c.stream(s).ended or c.stream(s).reset is not None for s in (1, 3)),
           a.timeout)
    c.wait(lambda: False, a.timeout)  # until the server closes


SCENARIOS = {
    "get": sc_get, "post": sc_post, "uppercase-header": sc_uppercase_header,
    "conn-header": sc_conn_header, "te": sc_te, "missing-pseudo": sc_missing_pseudo,
    "pseudo-after-regular": sc_pseudo_after_regular, "data-half-closed": sc_data_half_closed,
    "oversized-frame": sc_oversized_frame, "window-update-zero": sc_window_update_zero,
    "window-overflow": sc_window_overflow, "cl-mismatch": sc_cl_mismatch,
    "rapid-reset": sc_rapid_reset, "continuation-flood": sc_continuation_flood,
    "settings-flood": sc_settings_flood, "ping-flood": sc_ping_flood,
    "empty-data-flood": sc_empty_data_flood, "hpack-bomb": sc_hpack_bomb,
    "big-header-list": sc_big_header_list, "zero-window": sc_zero_window,
    "grpc-unary": sc_grpc_unary, "connect": sc_connect, "bad-preface": sc_bad_preface,
    "lower-stream-id": sc_lower_stream_id, "drain": sc_drain,
}


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("port", type=int)
    ap.add_argument("scenario", choices=sorted(SCENARIOS))
    ap.add_argument("--path", default="/")
    ap.add_argument("--authority", default=None)
    ap.add_argument("--name", default="connection")
    ap.add_argument("--value", default="")
    ap.add_argument("--header", action="append", default=[], metavar="NAME:VALUE",
                    help="an extra request header (repeatable)")
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--refs", type=int, default=4000)
    ap.add_argument("--value-bytes", type=int, default=20000)
    ap.add_argument("--body-bytes", type=int, default=5)
    ap.add_argument("--stream-id", type=int, default=0)
    ap.add_argument("--timeout", type=float, default=5.0,
                    help="how long a scenario waits for its answer")
    ap.add_argument("--linger", type=float, default=0.3,
                    help="reading after the scenario, for late frames")
    ap.add_argument("--send-timeout", type=float, default=5.0)
    ap.add_argument("--rcvbuf", type=int, default=0, help="SO_RCVBUF before connect")
    ap.add_argument("--window", type=int, default=None, help="SETTINGS_INITIAL_WINDOW_SIZE")
    ap.add_argument("--pid", type=int, default=0, help="sample this process's VmRSS")
    ap.add_argument("--print-data", action="store_true")
    a = ap.parse_args()
    a.authority = a.authority or "127.0.0.1:%d" % a.port
    a.header = [tuple(h.split(":", 1)) for h in a.header]
    settings = {}
    if a.scenario == "zero-window":
        settings[SettingCodes.INITIAL_WINDOW_SIZE] = 0
    elif a.window is not None:
        settings[SettingCodes.INITIAL_WINDOW_SIZE] = a.window
    try:
        c = Client(a, settings, preface=a.scenario != "bad-preface")
    except OSError as e:
        out("CONNECT_FAILED %s" % e)
        return 2
    try:
        SCENARIOS[a.scenario](c, a)
    finally:
        c.finish()
    return 0


if __name__ == "__main__":
    sys.exit(main())
