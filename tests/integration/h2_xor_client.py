#!/usr/bin/python3
"""HTTP/2 over the xor_transport test filter: proves that a transport
filter publishing ALPN "h2" hands the connection to weft's HTTP/2 codec
(the path TLS with ALPN takes).

  h2_xor_client.py PORT KEY IDENTITY PATH

Sends "ID <identity>\\n" in plaintext, then an HTTP/2 connection (preface,
SETTINGS, one GET) with every byte XORed with KEY, decodes the answer with
the h2 library and prints the response headers, one "name: value" per line,
then "BODY <len>".
"""
import socket
import sys

import h2.config
import h2.connection
import h2.events


def xor(data, key):
    return bytes(b ^ key for b in data)


def main():
    port, key, identity, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(b"ID " + identity.encode() + b"\n")
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    sid = conn.get_next_available_stream_id()
    conn.send_headers(sid, [(":method", "GET"), (":path", path), (":scheme", "http"),
                            (":authority", "xor.test")], end_stream=True)
    s.sendall(xor(conn.data_to_send(), key))
    headers, body, done = None, b"", False
    while not done:
        data = s.recv(65536)
        if not data:
            break
        for ev in conn.receive_data(xor(data, key)):
            if isinstance(ev, h2.events.ResponseReceived):
                headers = ev.headers
            elif isinstance(ev, h2.events.DataReceived):
                body += ev.data
                conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            elif isinstance(ev, h2.events.StreamEnded):
                done = True
        s.sendall(xor(conn.data_to_send(), key))
    for name, value in headers or []:
        n = name.decode() if isinstance(name, bytes) else name
        v = value.decode() if isinstance(value, bytes) else value
        print(f"{n}: {v}")
    print(f"BODY {len(body)}")
    return 0 if headers else 1


if __name__ == "__main__":
    sys.exit(main())
