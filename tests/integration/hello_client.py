#!/usr/bin/python3
"""Client of the hello_transport test filter (toy handshake, then plain bytes).

  hello_client.py --port P [--identity ID] [--sni NAME]
                  [--mode http|together|h2|silent|bye|rst|bad]
                  [--requests N] [--path /p] [--close]

First it waits, sending nothing, for the server's line "HELLO <name> <alpn>"
(the server must speak first) and prints it on stderr as "server: <line>".
Then by mode:
  http      sends "HELLO <identity> <sni>\\n", then N pipelined HTTP/1.1 GETs
            (the last with Connection: close when --close); reads until N
            complete responses, the server's close or 5 s
  together  the same, but the HELLO line and the requests in one write
  h2        HELLO line, then HTTP/2 (python h2) GET PATH; prints the
            response head as ":status: 200" and "name: value" lines
  silent    sends nothing and waits for the server to close (<= 10 s)
  bye / rst sends "BYE\\n" / "RST\\n" and reads until the close
  bad       sends "GARBAGE\\n" and reads until the close
stdout: the bytes the server sent after its HELLO line (CR stripped by the
caller); stderr ends with "read <n> bytes, <k> complete responses,
<closed by the server|timeout|...> after <s>s".
"""

import argparse
import re
import socket
import sys
import time


def complete_responses(data):
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


def read_line(s):
    buf = b""
    while not buf.endswith(b"\n"):
        ch = s.recv(1)
        if not ch:
            break
        buf += ch
    return buf


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--identity", default="")
    ap.add_argument("--sni", default="")
    ap.add_argument("--mode", default="http",
                    choices=["http", "together", "h2", "silent", "bye", "rst", "bad"])
    ap.add_argument("--requests", type=int, default=1)
    ap.add_argument("--path", default="/app/hello")
    ap.add_argument("--close", action="store_true")
    a = ap.parse_args()

    t0 = time.monotonic()
    s = socket.create_connection(("127.0.0.1", a.port), timeout=5)
    s.settimeout(5)
    line = read_line(s)
    print("server: " + line.decode("latin-1").rstrip("\n"), file=sys.stderr)
    if not line.startswith(b"HELLO "):
        print("read 0 bytes, 0 complete responses, no server hello", file=sys.stderr)
        return 1

    hello = b"HELLO"
    if a.identity:
        hello += b" " + a.identity.encode()
        if a.sni:
            hello += b" " + a.sni.encode()

    if a.mode == "h2":
        return h2_mode(s, hello, a)

    reqs = b""
    for i in range(a.requests):
        last = i == a.requests - 1
        reqs += (f"GET {a.path}/{i} HTTP/1.1\r\nHost: hello.test\r\n"
                 + ("Connection: close\r\n" if a.close and last else "")
                 + "\r\n").encode()
    if a.mode == "http":
        s.sendall(hello + b"\n")
        time.sleep(0.05)
        s.sendall(reqs)
    elif a.mode == "together":
        s.sendall(hello + b"\n" + reqs)
    elif a.mode == "bye":
        s.sendall(b"BYE\n")
    elif a.mode == "rst":
        s.sendall(b"RST\n")
    elif a.mode == "bad":
        s.sendall(b"GARBAGE\n")
    s.settimeout(10 if a.mode == "silent" else 5)

    data, how = b"", "timeout"
    want = a.requests if a.mode in ("http", "together") else None
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                how = "closed by the server"
                break
            data += chunk
            if want and not a.close and complete_responses(data) >= want:
                how = "all responses"
                break
    except socket.timeout:
        pass
    except ConnectionResetError:
        how = "reset by the server"
    sys.stdout.buffer.write(data)
    print(f"read {len(data)} bytes, {complete_responses(data)} complete responses, {how} "
          f"after {time.monotonic() - t0:.1f}s", file=sys.stderr)
    return 0


def h2_mode(s, hello, a):
    import h2.connection
    import h2.config
    import h2.events

    s.sendall(hello + b"\n")
    conn = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    conn.send_headers(1, [(":method", "GET"), (":path", a.path), (":scheme", "https"),
                          (":authority", "hello.test")], end_stream=True)
    s.sendall(conn.data_to_send())
    done = False
    while not done:
        data = s.recv(65536)
        if not data:
            break
        for ev in conn.receive_data(data):
            if isinstance(ev, h2.events.ResponseReceived):
                for k, v in ev.headers:
                    k = k.decode() if isinstance(k, bytes) else k
                    v = v.decode() if isinstance(v, bytes) else v
                    print(f"{k}: {v}")
            elif isinstance(ev, h2.events.DataReceived):
                conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            elif isinstance(ev, (h2.events.StreamEnded, h2.events.StreamReset)):
                done = True
        s.sendall(conn.data_to_send())
    print("read h2 response" if done else "h2: no complete response", file=sys.stderr)
    return 0 if done else 1


if __name__ == "__main__":
    sys.exit(main())
