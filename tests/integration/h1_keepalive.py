#!/usr/bin/python3
"""h1_keepalive.py: one HTTP/1.1 keep-alive connection across a drain.

    h1_keepalive.py PORT MODE GO_FILE [--timeout S]

Sends GET /first, reads the response, prints its line and READY, then:

  reuse   waits until GO_FILE exists, then 0.1 s, sends GET /second on the
          same connection and reads its response
  idle    sends nothing more and waits for the server to close

Then reads until EOF. One line per event on stdout:

    RESPONSE <path> <status> connection=<value of Connection or ->
    READY
    SEND_ERROR <exception>               writing the second request failed
    END CLOSED|RESET|OPEN elapsed=<s>    how the connection ended

Standard library only.
"""

import argparse
import os
import socket
import sys
import time


def out(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


class Conn:
    def __init__(self, port, timeout):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""
        self.state = None

    def recv(self):
        try:
            d = self.sock.recv(65536)
        except socket.timeout:
            return None
        except OSError:
            self.state = "RESET"
            return b""
        if not d:
            self.state = "CLOSED"
        return d

    def response(self, path):
        while b"\r\n\r\n" not in self.buf:
            d = self.recv()
            if not d:
                return False
            self.buf += d
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        status = lines[0].split(" ")[1]
        hdrs = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            hdrs[k.strip().lower()] = v.strip()
        n = int(hdrs.get("content-length", "0"))
        while len(self.buf) < n:
            d = self.recv()
            if not d:
                return False
            self.buf += d
        self.buf = self.buf[n:]
        out("RESPONSE %s %s connection=%s" % (path, status, hdrs.get("connection", "-")))
        return True

    def get(self, path):
        try:
            self.sock.sendall(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: drain\r\n\r\n")
        except OSError as e:
            out("SEND_ERROR %s" % e.__class__.__name__)
            return False
        return self.response(path)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("port", type=int)
    ap.add_argument("mode", choices=["reuse", "idle"])
    ap.add_argument("go_file")
    ap.add_argument("--timeout", type=float, default=10.0)
    a = ap.parse_args()
    t0 = time.monotonic()
    c = Conn(a.port, a.timeout)
    c.get("/first")
    out("READY")
    if a.mode == "reuse" and not c.state:
        deadline = time.monotonic() + a.timeout
        while not os.path.exists(a.go_file) and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.1)
        c.get("/second")
    while not c.state:
        if c.recv() is None:
            break
    out("END %s elapsed=%.3f" % (c.state or "OPEN", time.monotonic() - t0))
    return 0


if __name__ == "__main__":
    sys.exit(main())
