#!/usr/bin/python3
"""h2_get.py: one HTTP/2 (h2c, prior knowledge) GET with the :path sent
exactly as given (no client-side normalization), using python3-h2.

    h2_get.py PORT PATH [HEADER:VALUE ...]

Prints "STATUS <code>", then each response header as "name: value", then
"BODY <body>" (decoded as latin-1)."""

import socket
import sys

import h2.config
import h2.connection
import h2.events


def main():
    port, path = int(sys.argv[1]), sys.argv[2]
    extra = [tuple(h.split(":", 1)) for h in sys.argv[3:]]
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True,
                                                                normalize_outbound_headers=False,
                                                                validate_outbound_headers=False))
    conn.initiate_connection()
    headers = [(":method", "GET"), (":scheme", "http"), (":authority", "127.0.0.1"),
               (":path", path)] + [(k.strip().lower(), v.strip()) for k, v in extra]
    conn.send_headers(1, headers, end_stream=True)
    sock.sendall(conn.data_to_send())
    status, hdrs, body, done = None, [], b"", False
    while not done:
        data = sock.recv(65536)
        if not data:
            break
        for ev in conn.receive_data(data):
            if isinstance(ev, h2.events.ResponseReceived):
                for k, v in ev.headers:
                    k = k.decode() if isinstance(k, bytes) else k
                    v = v.decode() if isinstance(v, bytes) else v
                    if k == ":status":
                        status = v
                    else:
                        hdrs.append((k, v))
            elif isinstance(ev, h2.events.DataReceived):
                body += ev.data
                conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            elif isinstance(ev, (h2.events.StreamEnded, h2.events.StreamReset)):
                done = True
        sock.sendall(conn.data_to_send())
    print("STATUS %s" % status)
    for k, v in hdrs:
        print("%s: %s" % (k, v))
    print("BODY " + body.decode("latin-1"))


if __name__ == "__main__":
    main()
