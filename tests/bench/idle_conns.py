#!/usr/bin/python3
"""Opens N idle keep-alive HTTP/1.1 connections and holds them.

Each connection sends one `GET PATH` with keep-alive and reads the whole
response (so the server has fully set the connection up), then stays open
and idle. When all are up the script prints `ready <ok> <failed>` on
stdout and holds them until SIGTERM/SIGINT, stdin closes (with --until-eof)
or --hold seconds pass. Connections are closed with RST (SO_LINGER 0) so
that 10,000 of them leave no TIME_WAIT behind.

  idle_conns.py --port 8080 -n 10000
"""

import argparse
import resource
import select
import signal
import socket
import struct
import sys
import time


def read_response(sock):
    """Reads one HTTP/1.1 response with a content-length (or no) body."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed before headers")
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
        elif name.strip().lower() == b"transfer-encoding":
            raise ConnectionError("chunked response not expected here")
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed mid-body")
        rest += chunk
    return status


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("-n", type=int, default=10000, help="connections (10000)")
    ap.add_argument("--path", default="/")
    ap.add_argument("--batch", type=int, default=200,
                    help="connections set up concurrently (200)")
    ap.add_argument("--hold", type=float, default=300.0,
                    help="seconds to hold the connections at most (300)")
    ap.add_argument("--until-eof", action="store_true",
                    help="also release when stdin reaches end of file")
    a = ap.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = a.n + 64
    if soft < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))
        except (ValueError, OSError):
            pass
        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        if soft < want:
            sys.stderr.write("idle_conns: RLIMIT_NOFILE %d is below %d; raise it "
                             "with `ulimit -n`\n" % (soft, want))
            return 2

    stop = {"flag": False}

    def on_signal(signum, frame):
        stop["flag"] = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    req = ("GET %s HTTP/1.1\r\nHost: %s:%d\r\nConnection: keep-alive\r\n"
           "User-Agent: weft-bench-idle\r\n\r\n" % (a.path, a.host, a.port)).encode()
    linger = struct.pack("ii", 1, 0)
    socks = []
    failed = 0
    errors = {}
    t0 = time.monotonic()
    remaining = a.n
    while remaining > 0 and not stop["flag"]:
        batch = []
        for _ in range(min(a.batch, remaining)):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
            s.settimeout(10)
            try:
                s.connect((a.host, a.port))
                s.sendall(req)
                batch.append(s)
            except OSError as e:
                failed += 1
                errors[type(e).__name__] = errors.get(type(e).__name__, 0) + 1
                s.close()
        for s in batch:
            try:
                status = read_response(s)
                if status >= 400:
                    raise ConnectionError("status %d" % status)
                socks.append(s)
            except (OSError, ValueError, IndexError) as e:
                failed += 1
                errors[type(e).__name__] = errors.get(type(e).__name__, 0) + 1
                s.close()
        remaining -= a.batch
    took = time.monotonic() - t0
    sys.stdout.write("ready %d %d %.2fs\n" % (len(socks), failed, took))
    if errors:
        sys.stdout.write("errors %s\n" % " ".join("%s=%d" % kv for kv in sorted(errors.items())))
    sys.stdout.flush()

    deadline = time.monotonic() + a.hold
    while not stop["flag"] and time.monotonic() < deadline:
        if a.until_eof:
            r, _, _ = select.select([sys.stdin], [], [], 0.2)
            if r and not sys.stdin.read(1):
                break
        else:
            time.sleep(0.2)
    for s in socks:
        s.close()
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
