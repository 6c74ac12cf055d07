#!/usr/bin/python3
"""A TCP port whose accept queue is full: listens with backlog 0, never
accepts, and fills the queue with its own idle connections, so further
connects from anyone time out (Linux drops SYNs for a full queue).

    full_queue.py PORT
Prints "ready" once the queue is full, then sleeps until killed."""
import socket
import sys
import time

port = int(sys.argv[1])
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", port))
srv.listen(0)
fillers = []
for _ in range(8):
    c = socket.socket()
    c.setblocking(False)
    try:
        c.connect(("127.0.0.1", port))
    except BlockingIOError:
        pass
    fillers.append(c)
time.sleep(0.5)
print("ready", flush=True)
while True:
    time.sleep(3600)
