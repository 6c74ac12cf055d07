#!/usr/bin/python3
"""head_echo_backend.py: an HTTP/1.1 upstream that answers every request
with the request head exactly as received (request line and header lines,
bytes unchanged, repeated headers kept, in order) as a text/plain body.

Standard library only. Keep-alive; content-length and chunked request
bodies are read and discarded.

    head_echo_backend.py --port PORT
"""

import argparse
import signal
import socket
import sys
import threading


def read_until(conn, buf, sep):
    while sep not in buf:
        d = conn.recv(65536)
        if not d:
            return None, buf
        buf += d
    i = buf.index(sep) + len(sep)
    return buf[:i], buf[i:]


def skip_body(conn, head, buf):
    te = b""
    cl = 0
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        k = k.strip().lower()
        if k == b"transfer-encoding":
            te = v.strip().lower()
        elif k == b"content-length":
            cl = int(v.strip())
    if b"chunked" in te:
        while True:
            line, buf = read_until(conn, buf, b"\r\n")
            if line is None:
                return None
            n = int(line.split(b";")[0].strip(), 16)
            if n == 0:
                while True:
                    t, buf = read_until(conn, buf, b"\r\n")
                    if t is None or t == b"\r\n":
                        return buf
            while len(buf) < n + 2:
                d = conn.recv(65536)
                if not d:
                    return None
                buf += d
            buf = buf[n + 2:]
    while len(buf) < cl:
        d = conn.recv(65536)
        if not d:
            return None
        buf += d
    return buf[cl:]


def serve(conn):
    buf = b""
    try:
        while True:
            head, buf = read_until(conn, buf, b"\r\n\r\n")
            if head is None:
                return
            buf = skip_body(conn, head, buf)
            if buf is None:
                return
            body = head
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                         b"x-backend: head-echo\r\nContent-Length: %d\r\n\r\n%s"
                         % (len(body), body))
    except OSError:
        pass
    finally:
        conn.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, required=True)
    a = ap.parse_args()
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", a.port))
    ls.listen(128)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    sys.stderr.write("head-echo backend on 127.0.0.1:%d\n" % a.port)
    sys.stderr.flush()
    while True:
        c, _ = ls.accept()
        threading.Thread(target=serve, args=(c,), daemon=True).start()


if __name__ == "__main__":
    main()
