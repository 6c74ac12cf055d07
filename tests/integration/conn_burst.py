#!/usr/bin/env python3
"""conn_burst.py: opens N keep-alive HTTP/1.1 connections to 127.0.0.1:PORT,
sends one GET on each and reads its answer, holds them all open, prints
"ready OK FAILED", then closes them all (RST, no TIME_WAIT) when stdin
reaches EOF or after --hold seconds.

    conn_burst.py --port 8080 -n 3000 --hold 1
"""
import argparse
import resource
import select
import socket
import struct
import sys


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("-n", type=int, default=1000)
    ap.add_argument("--hold", type=float, default=1.0)
    a = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, a.n + 100)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    socks, ok, failed = [], 0, 0
    req = b"GET / HTTP/1.1\r\nHost: burst\r\n\r\n"
    for i in range(0, a.n, 200):
        batch = []
        for _ in range(min(200, a.n - i)):
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            try:
                s.settimeout(10)
                s.connect(("127.0.0.1", a.port))
                s.sendall(req)
                batch.append(s)
            except OSError:
                failed += 1
                s.close()
        for s in batch:
            try:
                buf = b""
                while b"\r\n\r\n" not in buf:
                    chunk = s.recv(65536)
                    if not chunk:
                        raise OSError("closed")
                    buf += chunk
                ok += 1
                socks.append(s)
            except OSError:
                failed += 1
                s.close()
    print(f"ready {ok} {failed}", flush=True)
    select.select([sys.stdin], [], [], a.hold)
    for s in socks:
        s.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
