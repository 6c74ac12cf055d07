#!/usr/bin/python3
"""A small, real HTTP/1.1 backend for weft's integration tests.

Standard library only. Keep-alive, chunked request and response bodies.

Endpoints:
  /status/<code>   responds with that status (JSON body unless 1xx/204/304)
  /delay/<ms>      sleeps, then answers like /
  /bytes/<n>       n bytes of body, with content-length
  /chunked/<n>     chunked response of n chunks
  /echo            returns the request body (content-length or chunked)
  /healthz         200, or 503 when --health-file exists and contains "fail"
  /close           answers with Connection: close and closes
  /truncate/<n>    promises n bytes (content-length), sends n/2, then closes
  /headers/<n>     200 with n extra headers x-h-0: v0 .. x-h-<n-1> (n <= 1000)
  /conn            200 with x-conn-seq: which accepted connection (1, 2, ...) served it
  anything else    200 with JSON echoing method, path, query, headers, backend

Every response carries `x-backend: <name>`.

Options for upstream-behaviour tests (all off by default):
  --host ::1          IPv6 literals listen on an AF_INET6 socket
  --latency-ms N      every request except /healthz is answered N ms late
  --idle-close-ms N   a keep-alive connection idle for N ms is closed
  --drop-reused       the 2nd, 3rd... request on a connection is read, then
                      the connection is closed without an answer (a server
                      that closed a pooled connection under the client)
  --request-log FILE  appends "METHOD PATH" for every request read
  --fail-status N     every request except /healthz is answered with status N
  --fail-file FILE    with --fail-status: only while FILE exists
  --reset-prefix P    a request whose path starts with P is read, then the
                      connection is reset (RST) without an answer (an
                      endpoint dying under a request); may be repeated
  --hello NAME        every connection starts with hello_transport's toy
                      handshake (tests/filters/hello_transport.c), server
                      side: "HELLO NAME http/1.1\n" first, then the
                      client's line, which must start with HELLO (else the
                      connection is closed; the JSON answers carry it as
                      "hello"); HTTP/1.1 follows. Probe it with a TCP
                      connect, not curl
"""

import argparse
import json
import os
import signal
import socket
import struct
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

MAX_BODY = 64 * 1024 * 1024


class BadRequest(Exception):
    pass


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # head and body are separate writes: without TCP_NODELAY every answer
    # on a reused connection waits ~40 ms for the peer's delayed ACK
    disable_nagle_algorithm = True

    def version_string(self):
        return "weft-test-backend"

    # -- helpers ---------------------------------------------------------

    def log_message(self, fmt, *args):  # noqa: N802 (stdlib name)
        if self.server.verbose:
            sys.stderr.write("%s %s\n" % (self.server.name, fmt % args))

    def read_body(self):
        te = self.headers.get("Transfer-Encoding", "")
        if "chunked" in te.lower():
            return self.read_chunked()
        length = self.headers.get("Content-Length")
        if length is None:
            return b""
        try:
            n = int(length)
        except ValueError:
            raise BadRequest("bad content-length")
        if n < 0 or n > MAX_BODY:
            raise BadRequest("bad content-length")
        return self.read_exact(n)

    def read_exact(self, n):
        parts = []
        while n > 0:
            chunk = self.rfile.read(n)
            if not chunk:
                raise ConnectionResetError("client closed mid-body")
            parts.append(chunk)
            n -= len(chunk)
        return b"".join(parts)

    def read_chunked(self):
        body = bytearray()
        while True:
            line = self.rfile.readline(65537)
            if not line:
                raise ConnectionResetError("client closed mid-chunk")
            size_s = line.split(b";", 1)[0].strip()
            try:
                size = int(size_s, 16)
            except ValueError:
                raise BadRequest("bad chunk size")
            if size == 0:
                # trailers until the empty line
                while True:
                    t = self.rfile.readline(65537)
                    if not t or t in (b"\r\n", b"\n"):
                        break
                return bytes(body)
            if len(body) + size > MAX_BODY:
                raise BadRequest("body too large")
            body += self.read_exact(size)
            if self.rfile.readline(3) not in (b"\r\n", b"\n"):
                raise BadRequest("missing chunk terminator")

    def send(self, code, body=b"", ctype="application/json", extra=None):
        self.send_response(code)
        self.send_header("x-backend", self.server.name)
        for k, v in (extra or []):
            self.send_header(k, v)
        no_body = code < 200 or code in (204, 304)
        if not no_body:
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not no_body and self.command != "HEAD":
            self.wfile.write(body)

    def describe(self, body=None):
        u = urlsplit(self.path)
        doc = {
            "backend": self.server.name,
            "method": self.command,
            "path": u.path,
            "query": u.query,
            "args": {k: v for k, v in parse_qs(u.query, keep_blank_values=True).items()},
            "headers": {k.lower(): v for k, v in self.headers.items()},
            "client": "%s:%d" % self.client_address[:2],
        }
        if body is not None:
            doc["body_len"] = len(body)
        if getattr(self, "hello_line", None):
            doc["hello"] = self.hello_line
        return (json.dumps(doc, sort_keys=True) + "\n").encode()

    # -- dispatch --------------------------------------------------------

    def handle_any(self):
        self.requests_on_conn = getattr(self, "requests_on_conn", 0) + 1
        try:
            body = self.read_body()
        except BadRequest as e:
            self.close_connection = True
            self.send(400, (str(e) + "\n").encode(), "text/plain",
                      [("Connection", "close")])
            return
        if self.headers.get("Connection", "").lower() == "close":
            self.close_connection = True

        path = urlsplit(self.path).path
        parts = [p for p in path.split("/") if p]
        head = parts[0] if parts else ""
        arg = parts[1] if len(parts) > 1 else None

        if self.server.request_log:
            with self.server.log_lock, open(self.server.request_log, "a") as f:
                f.write("%s %s\n" % (self.command, self.path))
        if self.server.drop_reused and self.requests_on_conn > 1:
            self.close_connection = True
            return
        if any(path.startswith(p) for p in self.server.reset_prefixes):
            self.close_connection = True
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       struct.pack("ii", 1, 0))
            return
        if self.server.latency_ms and head != "healthz":
            time.sleep(self.server.latency_ms / 1000.0)
        if self.server.fail_status and head != "healthz" and (
                not self.server.fail_file or os.path.exists(self.server.fail_file)):
            self.send(self.server.fail_status, self.describe(body))
            return

        if head == "status" and arg is not None and arg.isdigit():
            code = int(arg)
            if code < 200 or code > 599:
                code = 400
            self.send(code, self.describe(body))
        elif head == "delay" and arg is not None and arg.isdigit():
            time.sleep(min(int(arg), 600000) / 1000.0)
            self.send(200, self.describe(body))
        elif head == "bytes" and arg is not None and arg.isdigit():
            n = min(int(arg), MAX_BODY)
            self.send(200, b"x" * n, "application/octet-stream")
        elif head == "chunked" and arg is not None and arg.isdigit():
            self.send_chunked(min(int(arg), 100000))
        elif head == "echo":
            ctype = self.headers.get("Content-Type", "application/octet-stream")
            self.send(200, body, ctype)
        elif head == "healthz":
            if self.health_failing():
                self.send(503, b"unhealthy\n", "text/plain")
            else:
                self.send(200, b"ok\n", "text/plain")
        elif head == "truncate" and arg is not None and arg.isdigit():
            n = min(int(arg), MAX_BODY)
            self.send_response(200)
            self.send_header("x-backend", self.server.name)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(n))
            self.end_headers()
            self.wfile.write(b"x" * (n // 2))
            self.wfile.flush()
            self.close_connection = True
        elif head == "headers" and arg is not None and arg.isdigit():
            n = min(int(arg), 1000)
            self.send(200, self.describe(body), extra=[("x-h-%d" % i, "v%d" % i) for i in range(n)])
        elif head == "conn":
            # which accepted connection served this request (1, 2, ...):
            # tells a client's connection reuse apart from new connections
            self.send(200, self.describe(body), extra=[("x-conn-seq", str(self.conn_seq))])
        elif head == "close":
            self.close_connection = True
            self.send(200, self.describe(body), extra=[("Connection", "close")])
        else:
            self.send(200, self.describe(body))

    def health_failing(self):
        hf = self.server.health_file
        if not hf:
            return False
        try:
            with open(hf, "r", encoding="utf-8", errors="replace") as f:
                return "fail" in f.read()
        except OSError:
            return False

    def send_chunked(self, n):
        self.send_response(200)
        self.send_header("x-backend", self.server.name)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        if self.command == "HEAD":
            return
        for i in range(n):
            data = ("chunk %d\n" % i).encode()
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.write(b"0\r\n\r\n")

    def setup(self):
        with self.server.log_lock:
            self.server.conns_accepted += 1
            self.conn_seq = self.server.conns_accepted
        if self.server.idle_close_ms:
            self.timeout = self.server.idle_close_ms / 1000.0
        super().setup()
        self.hello_ok = True
        if self.server.hello:
            # hello_transport's handshake, server side: our line, then theirs
            try:
                self.wfile.write(("HELLO %s http/1.1\n" % self.server.hello).encode())
                self.wfile.flush()
                line = self.rfile.readline(512)
                self.hello_line = line.decode("latin-1").strip()
                self.hello_ok = line.startswith(b"HELLO")
            except OSError:
                self.hello_ok = False

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = handle_any

    def handle(self):
        if not self.hello_ok:
            self.close_connection = True
            return
        try:
            super().handle()
        except (ConnectionError, BrokenPipeError, socket.timeout, TimeoutError, OSError):
            self.close_connection = True


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024
    latency_ms = 0
    idle_close_ms = 0
    drop_reused = False
    request_log = None
    fail_status = 0
    fail_file = None
    reset_prefixes = ()
    hello = None
    conns_accepted = 0
    log_lock = threading.Lock()

    def handle_error(self, request, client_address):
        # client disconnects and resets are normal in proxy tests
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, OSError)):
            return
        super().handle_error(request, client_address)


class Server6(Server):
    address_family = socket.AF_INET6


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--name", default="backend")
    ap.add_argument("--health-file", default=None)
    ap.add_argument("--verbose", action="store_true")
    ap.add_argument("--latency-ms", type=int, default=0)
    ap.add_argument("--idle-close-ms", type=int, default=0)
    ap.add_argument("--drop-reused", action="store_true")
    ap.add_argument("--request-log", default=None)
    ap.add_argument("--fail-status", type=int, default=0)
    ap.add_argument("--fail-file", default=None)
    ap.add_argument("--reset-prefix", action="append", default=[])
    ap.add_argument("--hello", default=None)
    a = ap.parse_args()

    srv = (Server6 if ":" in a.host else Server)((a.host, a.port), Handler)
    srv.latency_ms = a.latency_ms
    srv.idle_close_ms = a.idle_close_ms
    srv.drop_reused = a.drop_reused
    srv.request_log = a.request_log
    srv.fail_status = a.fail_status
    srv.fail_file = a.fail_file
    srv.reset_prefixes = tuple(a.reset_prefix)
    srv.hello = a.hello
    srv.name = a.name
    srv.health_file = a.health_file
    srv.verbose = a.verbose

    def stop(signum, frame):
        threading.Thread(target=srv.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    sys.stderr.write("backend %s listening on %s:%d pid %d\n" % (a.name, a.host, a.port, os.getpid()))
    sys.stderr.flush()
    try:
        srv.serve_forever(poll_interval=0.2)
    finally:
        srv.server_close()


if __name__ == "__main__":
    main()
