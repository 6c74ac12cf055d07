#!/usr/bin/python3
"""Backends for the filter runtime tests (standard library only).

  filter_backend.py --port P [--host 127.0.0.1] [--name N]

Endpoints (every answer carries x-backend: <name> and a JSON body):
  /check     an auth service: the x-token request header decides
               good -> 200 (x-user: alice)
               slow -> 200 after 2 s (callers with a shorter timeout give up)
               anything else -> 401
  /flaky     fails every other request: the 1st, 3rd, 5th... request to
             /flaky answers 503, the others 200 (one counter per process)
  /count     200 with {"flaky": <requests /flaky has seen>}
  anything   200 echoing method, path and headers
"""

import argparse
import json
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, fmt, *args):  # noqa: N802 (stdlib name)
        pass

    def send_json(self, code, doc, extra=()):
        body = (json.dumps(doc, sort_keys=True) + "\n").encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("x-backend", self.server.name)
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def handle_any(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            self.rfile.read(n)
        path = self.path.split("?", 1)[0]
        if path == "/check":
            token = self.headers.get("x-token", "")
            if token == "slow":
                time.sleep(2)
            if token in ("good", "slow"):
                self.send_json(200, {"allow": True}, [("x-user", "alice")])
            else:
                self.send_json(401, {"allow": False, "token": token})
        elif path == "/flaky":
            with self.server.lock:
                self.server.flaky += 1
                k = self.server.flaky
            self.send_json(503 if k % 2 else 200, {"flaky": k})
        elif path == "/count":
            with self.server.lock:
                k = self.server.flaky
            self.send_json(200, {"flaky": k})
        else:
            self.send_json(200, {"method": self.command, "path": self.path,
                                 "headers": {k.lower(): v for k, v in self.headers.items()}})

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
    ap.add_argument("--name", default="filter-backend")
    a = ap.parse_args()
    srv = Server((a.host, a.port), Handler)
    srv.name = a.name
    srv.flaky = 0
    srv.lock = threading.Lock()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    srv.serve_forever()


if __name__ == "__main__":
    main()
