#!/usr/bin/env python3
"""queued_conns.py: connections waiting in a listener's accept queue
across SIGTERM (test_drain_accept_queue.sh).

    queued_conns.py --port P --pid WEFT_PID [-n 16] [--after-term-ms 300]
                    [--timeout 15] [--tcp] [--late]

1. Opens n connections to 127.0.0.1:P and sends nothing. After they
   settle, tells which ones no worker has accepted, from /proc/net/tcp:
   the server side of a connection still in an accept queue has no socket
   inode yet (0); an accepted one has one. Checks that the listening
   sockets' accept queues (rx_queue of a LISTEN entry) hold exactly those,
   then closes the accepted ones (so no connection is open in weft).
2. Sends SIGTERM to WEFT_PID, sleeps --after-term-ms (many 50 ms drain
   polls: time enough for an early exit), then sends one GET on each
   queued connection and reads the answer (--timeout from SIGTERM); with
   --tcp (a tcp_proxy listener to an echo server) sends "ping I\n" and
   reads it back instead.
--late: SIGTERM and the sleep come first, then 1. (connections the
kernel completes after SIGTERM, on a socket whose worker has not seen the
drain yet).

Prints "queued K accepted M listen_queue Q", then one line per queued
connection: "conn I: STATUS connection=VALUE x-worker=N ms=T" (T: ms from
SIGTERM to the answer), with --tcp "conn I: echo ms=T", or "conn I: ERROR
what". Exits 0 when at least one connection was queued and every queued
one got its answer, else 1.
"""
import argparse
import os
import signal
import socket
import sys
import time


def proc_tcp(port):
    """(listen_queue, {client_port: server_inode}) for 127.0.0.1:port."""
    listen_q, server = 0, {}
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fld = line.split()
            lport = int(fld[1].split(":")[1], 16)
            rport = int(fld[2].split(":")[1], 16)
            if lport != port:
                continue
            if fld[3] == "0A":  # LISTEN: rx_queue is the accept queue
                listen_q += int(fld[4].split(":")[1], 16)
            elif fld[3] == "01":  # ESTABLISHED
                server[rport] = int(fld[9])
    return listen_q, server


def classify(port, conns):
    """Indices of the queued connections and the accept queues' total, once
    two reads 100 ms apart agree and the queues hold exactly those (or
    after 2 s: the last read)."""
    prev = None
    for _ in range(20):
        listen_q, server = proc_tcp(port)
        queued = [i for i, c in enumerate(conns) if server.get(c.getsockname()[1], -1) == 0]
        if queued == prev and listen_q == len(queued):
            break
        prev = queued
        time.sleep(0.1)
    return queued, listen_q


def read_until(sock, done, deadline):
    """Reads until done(data) (EOF or the deadline first: an error)."""
    data = b""
    while not done(data):
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("no answer in time")
        sock.settimeout(left)
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("EOF before an answer (%d bytes)" % len(data))
        data += chunk
    return data


def http_exchange(sock, i, deadline):
    """One GET; (ok, "STATUS connection=V x-worker=N")."""
    sock.sendall(b"GET /queued/%d HTTP/1.1\r\nHost: queued\r\n\r\n" % i)
    data = read_until(sock, lambda d: b"\r\n\r\n" in d, deadline)
    head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    hdrs = {}
    for h in head[1:]:
        name, _, value = h.partition(":")
        hdrs[name.strip().lower()] = value.strip()
    status = head[0].split(" ")[1]
    return status == "200", "%s connection=%s x-worker=%s" % (
        status, hdrs.get("connection", "-"), hdrs.get("x-worker", "-"))


def tcp_exchange(sock, i, deadline):
    """"ping I\n" echoed back; (ok, "echo")."""
    ping = b"ping %d\n" % i
    sock.sendall(ping)
    data = read_until(sock, lambda d: len(d) >= len(ping), deadline)
    return data == ping, "echo" if data == ping else "wrong echo %r" % data


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("-n", type=int, default=16)
    ap.add_argument("--after-term-ms", type=int, default=300)
    ap.add_argument("--timeout", type=float, default=15.0)
    ap.add_argument("--tcp", action="store_true")
    ap.add_argument("--late", action="store_true")
    a = ap.parse_args()

    def term():
        os.kill(a.pid, signal.SIGTERM)
        time.sleep(a.after_term_ms / 1000.0)
        return time.monotonic() - a.after_term_ms / 1000.0

    if a.late:
        t_term = term()
    try:
        conns = [socket.create_connection(("127.0.0.1", a.port), timeout=2) for _ in range(a.n)]
    except OSError as e:
        print("connect: ERROR %s: %s" % (type(e).__name__, e))
        return 1
    time.sleep(0.2)
    queued, listen_q = classify(a.port, conns)
    print("queued %d accepted %d listen_queue %d" % (len(queued), a.n - len(queued), listen_q),
          flush=True)
    for i, c in enumerate(conns):
        if i not in queued:
            c.close()
    if not queued or listen_q != len(queued):
        return 1
    if not a.late:
        t_term = term()
    deadline = t_term + a.timeout
    ok = True
    for i in queued:
        c = conns[i]
        try:
            good, what = (tcp_exchange if a.tcp else http_exchange)(c, i, deadline)
            ms = int((time.monotonic() - t_term) * 1000)
            print("conn %d: %s ms=%d" % (i, what, ms))
            ok = ok and good
        except OSError as e:
            print("conn %d: ERROR %s: %s" % (i, type(e).__name__, e))
            ok = False
        c.close()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
