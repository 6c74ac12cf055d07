#!/usr/bin/python3
"""h1_raw.py: send exact bytes to an HTTP/1.x server, report what came back.

Standard library only. Used by the integration tests where curl would
normalise the request (smuggling, pipelining, HTTP/1.0, slow clients).

    h1_raw.py PORT DATA [options]

DATA is a Python bytes literal body without the quotes: escapes such as
\\r\\n, \\x00 and \\t are decoded ("GET / HTTP/1.1\\r\\nHost: a\\r\\n\\r\\n").
With --data-file, DATA is a file whose bytes are sent as they are.

The request is written in one send() (or a byte at a time with --drip),
then responses are read until the server closes the connection or no byte
arrives for --timeout seconds. Responses are framed (content-length,
chunked, 1xx, 204/304, and no body for a response to a HEAD request: the
request methods are read from DATA, in order), and printed:

    HTTP/1.1 200 OK              the status line
      name: value                each header, indented by two spaces
    BODY <n> <first 2000 bytes, escaped>
    ...                          one block per response, in order
    END CLOSED|OPEN|RESET elapsed=<seconds>

CLOSED: the server closed (EOF); RESET: connection reset; OPEN: still open
at the read timeout. Bytes that do not parse as a response are printed as
`GARBAGE <escaped bytes>` before END.
"""

import argparse
import codecs
import re
import socket
import sys
import time


def esc(b, limit=2000):
    s = b[:limit].decode("latin-1")
    return s.encode("unicode_escape").decode("ascii")


class Reader:
    def __init__(self, sock, timeout):
        self.sock = sock
        self.buf = b""
        self.timeout = timeout
        self.state = None  # CLOSED / RESET / OPEN once the stream ended

    def fill(self):
        if self.state:
            return False
        self.sock.settimeout(self.timeout)
        try:
            d = self.sock.recv(65536)
        except socket.timeout:
            self.state = "OPEN"
            return False
        except (ConnectionResetError, BrokenPipeError):
            self.state = "RESET"
            return False
        if not d:
            self.state = "CLOSED"
            return False
        self.buf += d
        return True

    def line(self):
        while b"\r\n" not in self.buf:
            if not self.fill():
                return None
        ln, self.buf = self.buf.split(b"\r\n", 1)
        return ln

    def exact(self, n):
        while len(self.buf) < n:
            if not self.fill():
                return None
        d, self.buf = self.buf[:n], self.buf[n:]
        return d

    def rest(self):
        while self.fill():
            pass
        d, self.buf = self.buf, b""
        return d


def read_response(r, methods, out):
    status = r.line()
    if status is None:
        return False
    if not status.startswith(b"HTTP/1."):
        out.append("GARBAGE " + esc(status + b"\r\n" + r.buf))
        r.buf = b""
        r.rest()
        return False
    out.append(status.decode("latin-1"))
    headers = []
    while True:
        ln = r.line()
        if ln is None:
            out.append("TRUNCATED headers")
            return False
        if ln == b"":
            break
        headers.append(ln)
        out.append("  " + ln.decode("latin-1"))
    code = int(status.split()[1])
    hmap = {}
    for h in headers:
        k, _, v = h.partition(b":")
        hmap.setdefault(k.strip().lower(), v.strip())
    if 100 <= code < 200:
        out.append("BODY 0 ")
        return True
    head = bool(methods) and methods.pop(0) == b"HEAD"
    if code in (204, 304) or head:
        out.append("BODY 0 ")
        return True
    te = hmap.get(b"transfer-encoding", b"").lower()
    if b"chunked" in te:
        body = b""
        while True:
            ln = r.line()
            if ln is None:
                out.append("TRUNCATED chunked body")
                return False
            try:
                size = int(ln.split(b";")[0].strip(), 16)
            except ValueError:
                out.append("GARBAGE bad chunk line " + esc(ln))
                return False
            if size == 0:
                while True:
                    t = r.line()
                    if t is None or t == b"":
                        break
                break
            d = r.exact(size)
            if d is None or r.exact(2) is None:
                out.append("TRUNCATED chunk")
                return False
            body += d
        out.append("BODY %d %s" % (len(body), esc(body)))
        return True
    if b"content-length" in hmap:
        n = int(hmap[b"content-length"])
        body = r.exact(n)
        if body is None:
            out.append("TRUNCATED body (want %d, have %d)" % (n, len(r.buf)))
            return False
        out.append("BODY %d %s" % (n, esc(body)))
        return True
    body = r.rest()
    out.append("BODY %d %s" % (len(body), esc(body)))
    return False


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("port", type=int)
    ap.add_argument("data")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--data-file", action="store_true",
                    help="DATA names a file holding the bytes to send")
    ap.add_argument("--timeout", type=float, default=3.0,
                    help="read gives up after this many idle seconds (default 3)")
    ap.add_argument("--drip", type=float, default=0.0,
                    help="send one byte, sleep this long, repeat")
    ap.add_argument("--then", default=None,
                    help="more bytes (same escapes) sent after the first response")
    a = ap.parse_args()

    if a.data_file:
        with open(a.data, "rb") as f:
            data = f.read()
    else:
        data = codecs.escape_decode(a.data.encode("latin-1"))[0]

    then = None
    if a.then is not None:
        then = codecs.escape_decode(a.then.encode("latin-1"))[0]
    methods = re.findall(rb"(?:^|\r\n\r\n|\n\n)([A-Z]+) [^ \r\n]+ HTTP/",
                         data + (then or b""))
    t0 = time.monotonic()
    s = socket.create_connection((a.host, a.port), timeout=5)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    out = []
    r = Reader(s, a.timeout)
    try:
        if a.drip > 0:
            for i in range(len(data)):
                s.sendall(data[i:i + 1])
                time.sleep(a.drip)
                # stop dripping once the server answered or closed
                s.setblocking(False)
                try:
                    d = s.recv(65536)
                    if not d:
                        r.state = "CLOSED"
                        break
                    r.buf += d
                    break
                except BlockingIOError:
                    pass
                except ConnectionResetError:
                    r.state = "RESET"
                    break
                finally:
                    s.setblocking(True)
        else:
            s.sendall(data)
    except (BrokenPipeError, ConnectionResetError):
        pass
    first = True
    while True:
        ok = read_response(r, methods, out)
        if not ok:
            break
        if first and then is not None:
            first = False
            try:
                s.sendall(then)
            except OSError:
                pass
    if r.buf:
        out.append("GARBAGE " + esc(r.buf))
    state = r.state or "OPEN"
    out.append("END %s elapsed=%.2f" % (state, time.monotonic() - t0))
    s.close()
    sys.stdout.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
