#!/usr/bin/python3
"""h2_seq.py: GETs one after the other on ONE HTTP/2 connection (h2c,
prior knowledge), each sent after the previous response ended, using
python3-h2.

    h2_seq.py PORT PATH [PATH ...]

For each request prints "STATUS <code>", each response header as
"name: value", "BODY <body>" (latin-1), then a line "--"."""

import socket
import sys

import h2.config
import h2.connection
import h2.events


def one(sock, conn, sid, path):
    conn.send_headers(sid, [(":method", "GET"), (":scheme", "http"), (":authority", "127.0.0.1"),
                            (":path", path)], end_stream=True)
    sock.sendall(conn.data_to_send())
    status, hdrs, body, done = None, [], b"", False
    while not done:
        data = sock.recv(65536)
        if not data:
            break
        for ev in conn.receive_data(data):
            if isinstance(ev, h2.events.ResponseReceived) and ev.stream_id == sid:
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
            elif isinstance(ev, (h2.events.StreamEnded, h2.events.StreamReset)) and \
                    ev.stream_id == sid:
                done = True
        sock.sendall(conn.data_to_send())
    print("STATUS %s" % status)
    for k, v in hdrs:
        print("%s: %s" % (k, v))
    print("BODY " + body.decode("latin-1"))
    print("--")


def main():
    port = int(sys.argv[1])
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    sock.sendall(conn.data_to_send())
    for i, path in enumerate(sys.argv[2:]):
        one(sock, conn, 1 + 2 * i, path)
    sock.close()


if __name__ == "__main__":
    main()
