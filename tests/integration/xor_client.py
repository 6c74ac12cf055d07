#!/usr/bin/python3
"""Client of the xor_transport test filter (standard library only).

  xor_client.py --port P --key K --identity ID [--mode xor|plain-after-id]
                [--requests N] [--close] [--path /p]

Sends the plaintext line "ID <identity>\\n", then N pipelined HTTP/1.1
GETs on the same connection, every byte XORed with K (--mode
plain-after-id: the requests go out un-XORed, as a client that does not
speak the protocol would). With --close the last request says
"Connection: close" and the client reads until the server closes;
without, it reads until N complete responses (content-length framed)
have arrived, or the server closes, or 5 s pass. Prints the decoded bytes
(the raw HTTP responses) on stdout; stderr gets one line "read <n> bytes,
<k> complete responses, <how it ended>".
"""

import argparse
import re
import socket
import sys
import time


def complete_responses(data):
    """How many whole content-length framed responses data holds."""
    n, pos = 0, 0
    while True:
        end = data.find(b"\r\n\r\n", pos)
        if end < 0:
            return n
        head = data[pos:end].decode("latin-1")
        m = re.search(r"(?im)^content-length:\s*(\d+)\s*$", head)
        body_end = end + 4 + (int(m.group(1)) if m else 0)
        if body_end > len(data):
            return n
        n += 1
        pos = body_end


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--key", type=int, required=True)
    ap.add_argument("--identity", required=True)
    ap.add_argument("--mode", default="xor", choices=["xor", "plain-after-id"])
    ap.add_argument("--requests", type=int, default=1)
    ap.add_argument("--close", action="store_true")
    ap.add_argument("--path", default="/app/whoami")
    a = ap.parse_args()

    def x(data):
        return bytes(b ^ a.key for b in data)

    s = socket.create_connection(("127.0.0.1", a.port), timeout=5)
    # The ID line and the requests in separate writes: the filter must
    # handle the line arriving on its own.
    s.sendall(b"ID " + a.identity.encode() + b"\n")
    time.sleep(0.05)
    reqs = b""
    for i in range(a.requests):
        last = i == a.requests - 1
        reqs += ("GET %s/%d HTTP/1.1\r\nHost: xor.test\r\n%s\r\n" %
                 (a.path, i, "Connection: close\r\n" if a.close and last else "")).encode()
    s.sendall(x(reqs) if a.mode == "xor" else reqs)
    got, how = b"", "closed by the server"
    deadline = time.monotonic() + 5
    try:
        while True:
            if not a.close and complete_responses(x(got)) >= a.requests:
                how = "all responses read"
                break
            s.settimeout(max(0.01, deadline - time.monotonic()))
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
    except ConnectionResetError:
        how = "reset by the server"
    except socket.timeout:
        how = "timed out"
    s.close()
    plain = x(got)
    sys.stderr.write("read %d bytes, %d complete responses, %s\n" % (len(got), complete_responses(plain), how))
    sys.stdout.buffer.write(plain)


if __name__ == "__main__":
    main()
