#!/usr/bin/python3
"""A backend for the retry API test (standard library only).

  retry_backend.py --port P --name N [--mode ok|503]

Every answer carries x-backend: <name> and x-seen-attempt: the request's
x-weft-attempt-count. Requests are counted per key (the query string's
k=...), and the attempt-count values each key saw are kept in order.

  /slowfirst?k=K   the first request of key K waits 3 s, then 200; later ones 200 at once
  /fail503first?k=K  the first request of key K answers 503, later ones 200
  /hits?k=K        200, body "<count> <attempt values comma-separated>" for K
                   (not counted itself); /hits without k: the total count
  anything else    --mode ok: 200; --mode 503: 503
"""

import argparse
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, fmt, *args):  # noqa: N802 (stdlib name)
        pass

    def answer(self, code, body):
        data = body.encode()
        try:
            self.send_response(code)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("x-backend", self.server.name)
            self.send_header("x-seen-attempt", self.headers.get("x-weft-attempt-count", "-"))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)
        except OSError:
            self.close_connection = True

    def handle_any(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            self.rfile.read(n)
        u = urlsplit(self.path)
        key = parse_qs(u.query).get("k", [""])[0]
        srv = self.server
        if u.path == "/hits":
            with srv.lock:
                if key:
                    seen = srv.seen.get(key, [])
                    body = "%d %s" % (len(seen), ",".join(seen))
                else:
                    body = str(srv.total)
            self.answer(200, body)
            return
        with srv.lock:
            srv.total += 1
            seen = srv.seen.setdefault(key, [])
            seen.append(self.headers.get("x-weft-attempt-count", "-"))
            k = len(seen)
        if u.path == "/slowfirst":
            if k == 1:
                time.sleep(3)
            self.answer(200, "slowfirst %d\n" % k)
        elif u.path == "/fail503first":
            self.answer(503 if k == 1 else 200, "fail503first %d\n" % k)
        else:
            self.answer(503 if srv.mode == "503" else 200, "%s %d\n" % (srv.name, k))

    do_GET = do_POST = do_PUT = do_HEAD = handle_any

    def handle(self):
        try:
            super().handle()
        except OSError:
            self.close_connection = True


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def handle_error(self, request, client_address):
        if isinstance(sys.exc_info()[1], OSError):
            return
        super().handle_error(request, client_address)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--name", default="retry-backend")
    ap.add_argument("--mode", default="ok", choices=["ok", "503"])
    a = ap.parse_args()
    srv = Server((a.host, a.port), Handler)
    srv.name = a.name
    srv.mode = a.mode
    srv.total = 0
    srv.seen = {}
    srv.lock = threading.Lock()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    srv.serve_forever()


if __name__ == "__main__":
    main()
