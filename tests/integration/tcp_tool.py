#!/usr/bin/env python3
"""tcp_tool.py: raw TCP clients and servers for test_tcp_proxy.sh.

Clients (print one result line, exit 0 on success, 1 with a reason):
  bigvalue PORT SIZE            RESP SET/GET of SIZE random bytes, compared
  halfclose-redis PORT          PING, shutdown(SHUT_WR), reads +PONG then EOF
  halfclose-echo PORT SIZE      sends SIZE bytes, shutdown(SHUT_WR), expects
                                the sha256 line then SIZE bytes back, then EOF
  idle PORT MIN_S MAX_S         sends nothing; EOF must come in [MIN_S, MAX_S]
  closed PORT MAX_S             expects the connection closed (EOF or reset)
                                within MAX_S, without sending anything
  banner PORT MAX_MS            connects, sends nothing, expects the banner
                                within MAX_MS milliseconds
  flood PORT MAX_MB              writes to a server that never reads until
                                writes block for 0.5 s; fails if more than
                                MAX_MB were taken (weft must stop reading)
  hold PORT DIR                 PING/PONG, writes DIR/ready, waits for DIR/go,
                                PING/PONG again, closes
Servers (run until killed):
  banner-server PORT            writes a banner at once on accept
  echo-after-eof-server PORT    reads until EOF, then writes a sha256 line of
                                what it read and the same bytes back, closes
  stall-server PORT             accepts and never reads
  blackhole-server PORT FILE    listens with a full accept queue, never
                                accepts: new connects hang (SYNs dropped);
                                creates FILE when ready
"""
import hashlib
import os
import socket
import sys
import threading
import time

BANNER = b"220 weft-test ready\r\n"


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def connect(port, timeout=10.0):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def recv_exact(s, n):
    buf = bytearray()
    while len(buf) < n:
        chunk = s.recv(min(1 << 20, n - len(buf)))
        if not chunk:
            fail("EOF after %d of %d bytes" % (len(buf), n))
        buf += chunk
    return bytes(buf)


def recv_line(s):
    buf = bytearray()
    while not buf.endswith(b"\r\n"):
        c = s.recv(1)
        if not c:
            fail("EOF inside a line: %r" % bytes(buf))
        buf += c
    return bytes(buf[:-2])


def recv_all(s):
    buf = bytearray()
    while True:
        chunk = s.recv(1 << 20)
        if not chunk:
            return bytes(buf)
        buf += chunk


def resp_cmd(*args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        if isinstance(a, str):
            a = a.encode()
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out


def bigvalue(port, size):
    value = os.urandom(size)
    s = connect(port)
    s.sendall(resp_cmd("SET", "weft:big", value))
    line = recv_line(s)
    if line != b"+OK":
        fail("SET answered %r" % line)
    s.sendall(resp_cmd("GET", "weft:big"))
    head = recv_line(s)
    if head != b"$%d" % size:
        fail("GET head %r" % head)
    got = recv_exact(s, size + 2)[:-2]
    if got != value:
        fail("value differs")
    s.close()
    print("ok %d bytes" % size)


def halfclose_redis(port):
    s = connect(port)
    s.sendall(resp_cmd("PING"))
    s.shutdown(socket.SHUT_WR)
    data = recv_all(s)
    if data != b"+PONG\r\n":
        fail("after SHUT_WR got %r" % data)
    s.close()
    print("ok")


def halfclose_echo(port, size):
    payload = os.urandom(size)
    s = connect(port, timeout=20)
    s.sendall(payload)
    s.shutdown(socket.SHUT_WR)
    data = recv_all(s)
    want = hashlib.sha256(payload).hexdigest().encode() + b"\r\n" + payload
    if data != want:
        fail("echo after half-close: got %d bytes, want %d" % (len(data), len(want)))
    s.close()
    print("ok %d bytes" % size)


def idle(port, lo, hi):
    s = connect(port)
    t0 = time.monotonic()
    s.settimeout(hi + 2)
    try:
        data = s.recv(1)
    except ConnectionResetError:
        data = b""
    except socket.timeout:
        fail("still open after %.1fs" % (time.monotonic() - t0))
    dt = time.monotonic() - t0
    if data:
        fail("got data %r" % data)
    if dt < lo or dt > hi:
        fail("closed after %.2fs, want %.1f..%.1f" % (dt, lo, hi))
    print("ok closed after %.2fs" % dt)


def closed(port, hi):
    s = connect(port)
    s.settimeout(hi)
    t0 = time.monotonic()
    try:
        data = s.recv(1)
    except ConnectionResetError:
        data = b""
    except socket.timeout:
        fail("still open after %.1fs" % hi)
    if data:
        fail("got data %r" % data)
    print("ok closed after %.3fs" % (time.monotonic() - t0))


def banner(port, max_ms):
    t0 = time.monotonic()
    s = connect(port)
    s.settimeout(5)
    got = b""
    while len(got) < len(BANNER):
        chunk = s.recv(len(BANNER) - len(got))
        if not chunk:
            fail("EOF before the banner: %r" % got)
        got += chunk
    ms = (time.monotonic() - t0) * 1000
    if got != BANNER:
        fail("banner %r" % got)
    if ms > max_ms:
        fail("banner after %.1f ms (limit %d ms)" % (ms, max_ms))
    s.close()
    print("ok banner after %.1f ms" % ms)


def hold(port, d):
    s = connect(port)
    s.sendall(resp_cmd("PING"))
    if recv_line(s) != b"+PONG":
        fail("first PING")
    open(os.path.join(d, "ready"), "w").close()
    deadline = time.monotonic() + 30
    while not os.path.exists(os.path.join(d, "go")):
        if time.monotonic() > deadline:
            fail("no go")
        time.sleep(0.05)
    s.sendall(resp_cmd("PING"))
    if recv_line(s) != b"+PONG":
        fail("PING while draining")
    s.close()
    print("ok")


def flood(port, max_mb):
    import select
    s = connect(port)
    s.setblocking(False)
    chunk = b"x" * 65536
    sent = 0
    limit = 256 << 20
    while sent < limit:
        try:
            sent += s.send(chunk)
        except BlockingIOError:
            _, w, _ = select.select([], [s], [], 0.5)
            if not w:
                break
        except OSError as e:
            fail("connection failed after %.1f MB: %s" % (sent / 1048576.0, e))
    s.close()
    if sent >= max_mb << 20:
        fail("%d MB taken by a server that does not read" % (sent >> 20))
    print("ok writes blocked after %.1f MB" % (sent / 1048576.0))


def stall_handler(c):
    time.sleep(60)
    c.close()


def serve(port, handler):
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", port))
    ls.listen(64)
    while True:
        c, _ = ls.accept()
        threading.Thread(target=handler, args=(c,), daemon=True).start()


def banner_handler(c):
    try:
        c.sendall(BANNER)
        recv_all(c)
    except OSError:
        pass
    c.close()


def echo_after_eof_handler(c):
    try:
        data = recv_all(c)
        c.sendall(hashlib.sha256(data).hexdigest().encode() + b"\r\n" + data)
    except OSError:
        pass
    c.close()


def blackhole(port, ready):
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", port))
    ls.listen(0)
    fillers = []
    for _ in range(2):
        f = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        f.setblocking(False)
        f.connect_ex(("127.0.0.1", port))
        fillers.append(f)
    time.sleep(0.2)
    open(ready, "w").close()
    while True:
        time.sleep(3600)


def main():
    a = sys.argv[1:]
    if not a:
        fail("usage: see the header")
    cmd = a[0]
    if cmd == "bigvalue":
        bigvalue(int(a[1]), int(a[2]))
    elif cmd == "halfclose-redis":
        halfclose_redis(int(a[1]))
    elif cmd == "halfclose-echo":
        halfclose_echo(int(a[1]), int(a[2]))
    elif cmd == "idle":
        idle(int(a[1]), float(a[2]), float(a[3]))
    elif cmd == "closed":
        closed(int(a[1]), float(a[2]))
    elif cmd == "banner":
        banner(int(a[1]), int(a[2]))
    elif cmd == "flood":
        flood(int(a[1]), int(a[2]))
    elif cmd == "stall-server":
        serve(int(a[1]), stall_handler)
    elif cmd == "hold":
        hold(int(a[1]), a[2])
    elif cmd == "banner-server":
        serve(int(a[1]), banner_handler)
    elif cmd == "echo-after-eof-server":
        serve(int(a[1]), echo_after_eof_handler)
    elif cmd == "blackhole-server":
        blackhole(int(a[1]), a[2])
    else:
        fail("unknown command " + cmd)


if __name__ == "__main__":
    main()
