#!/usr/bin/python3
"""tcp_echo.py: a TCP echo server for weft's CONNECT tunnel tests.

    tcp_echo.py --port P [--events FILE]

Echoes every byte back on each connection until the client half-closes,
then closes. --events FILE gets "CONN <peer>" per accepted connection and
"DONE <peer> bytes=<n>" when one ends.
"""

import argparse
import signal
import socket
import sys
import threading

EVENTS = None
LOCK = threading.Lock()


def event(line):
    if EVENTS:
        with LOCK:
            EVENTS.write(line + "\n")
            EVENTS.flush()


def serve_one(c, peer):
    n = 0
    try:
        while True:
            d = c.recv(65536)
            if not d:
                break
            c.sendall(d)
            n += len(d)
    except OSError:
        pass
    finally:
        event("DONE %s bytes=%d" % (peer, n))
        c.close()


def main():
    global EVENTS
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--events", default=None)
    a = ap.parse_args()
    if a.events:
        EVENTS = open(a.events, "a", buffering=1)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((a.host, a.port))
    s.listen(128)
    sys.stderr.write("tcp echo listening on %s:%d\n" % (a.host, a.port))
    sys.stderr.flush()
    while True:
        c, addr = s.accept()
        peer = "%s:%d" % addr[:2]
        event("CONN %s" % peer)
        threading.Thread(target=serve_one, args=(c, peer), daemon=True).start()


if __name__ == "__main__":
    main()
