#!/usr/bin/python3
"""Request loop for weft's integration tests (standard library only).

  rqloop.py URL [--count N | --duration S] [--interval-ms MS]
            [--concurrency C] [--new-conn] [--header 'Name: value']...
            [--method M] [--data BODY] [--timeout S] [--epoch] [--mod N]

Sends GETs (or M) to URL and prints one line per request:

  <start_ms> <status> <x-backend> <x-weft-reason> <elapsed_ms>

start_ms is relative to the loop's start (--epoch: Unix time in ms); status is 000 when there was no
HTTP answer; missing headers print as "-". With --concurrency C, C threads
each run the loop on their own keep-alive connection (--new-conn: a new
connection per request). A header value may contain {i}, replaced by the
request's index, and {m}, replaced by the index modulo --mod N.
"""

import argparse
import http.client
import sys
import threading
import time
from urllib.parse import urlsplit


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("--count", type=int, default=0)
    ap.add_argument("--duration", type=float, default=0.0)
    ap.add_argument("--interval-ms", type=float, default=0.0)
    ap.add_argument("--concurrency", type=int, default=1)
    ap.add_argument("--new-conn", action="store_true")
    ap.add_argument("--header", action="append", default=[])
    ap.add_argument("--method", default="GET")
    ap.add_argument("--data", default=None)
    ap.add_argument("--timeout", type=float, default=10.0)
    ap.add_argument("--epoch", action="store_true")
    ap.add_argument("--mod", type=int, default=1)
    a = ap.parse_args()
    if not a.count and not a.duration:
        a.count = 1

    u = urlsplit(a.url)
    host = u.hostname
    port = u.port or 80
    path = u.path or "/"
    if u.query:
        path += "?" + u.query
    t0 = time.monotonic()
    base_ms = time.time() * 1000 if a.epoch else 0.0
    lock = threading.Lock()
    counter = [0]
    out = []

    def next_index():
        with lock:
            i = counter[0]
            if a.count and i >= a.count:
                return None
            if a.duration and time.monotonic() - t0 >= a.duration:
                return None
            counter[0] += 1
            return i

    def worker():
        conn = None
        while True:
            i = next_index()
            if i is None:
                break
            headers = {}
            for h in a.header:
                k, _, v = h.partition(":")
                headers[k.strip()] = v.strip().replace("{i}", str(i)).replace(
                    "{m}", str(i % max(1, a.mod)))
            body = a.data.encode() if a.data is not None else None
            start = time.monotonic()
            status, backend, reason = "000", "-", "-"
            try:
                if conn is None:
                    conn = http.client.HTTPConnection(host, port, timeout=a.timeout)
                conn.request(a.method, path, body=body, headers=headers)
                r = conn.getresponse()
                r.read()
                status = "%03d" % r.status
                backend = r.getheader("x-backend") or "-"
                reason = r.getheader("x-weft-reason") or "-"
                if a.new_conn or r.will_close:
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException):
                if conn is not None:
                    conn.close()
                conn = None
            end = time.monotonic()
            with lock:
                out.append("%d %s %s %s %d" % (base_ms + (start - t0) * 1000, status, backend, reason,
                                              (end - start) * 1000))
            if a.interval_ms:
                time.sleep(a.interval_ms / 1000.0)
        if conn is not None:
            conn.close()

    threads = [threading.Thread(target=worker) for _ in range(max(1, a.concurrency))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out.sort(key=lambda line: int(line.split(" ", 1)[0]))
    sys.stdout.write("".join(line + "\n" for line in out))


if __name__ == "__main__":
    main()
