#!/usr/bin/python3
"""grpc_backend.py: a gRPC server (grpcio, h2c) for weft's gRPC tests.

    grpc_backend.py --port P [--events FILE]

No protobuf: the service is registered with grpcio's generic handlers and
request_deserializer / response_serializer = None, so messages are raw
bytes. Service "weft.test.Echo":

  Unary          (unary-unary)    the request bytes back
  ServerStream   (unary-stream)   N messages "msg-<i>", N = int(request)
  ClientStream   (stream-unary)   b"<count> <total bytes> <sha256 hex>"
  Bidi           (stream-stream)  each request message echoed as it arrives
  Sleep          (unary-unary)    sleeps int(request) ms (in 10 ms steps,
                                  stopping early when the call is cancelled),
                                  then answers b"woke"
  Fail           (unary-unary)    aborts with INVALID_ARGUMENT and the
                                  message "bad input: <request>"

--events FILE gets one line per event, flushed:
  CALL <method> deadline_ms=<ms left of the call's deadline, or ->
  CANCELLED <method> after_ms=<n>    the call went inactive before it ended
"""

import argparse
import hashlib
import signal
import sys
import threading
import time
from concurrent import futures

import grpc

EVENTS = None
LOCK = threading.Lock()


def event(line):
    if EVENTS:
        with LOCK:
            EVENTS.write(line + "\n")
            EVENTS.flush()


def note_call(method, ctx):
    # grpc-timeout is consumed by grpcio; time_remaining() is what is left of it
    left = ctx.time_remaining()
    event("CALL %s deadline_ms=%s" % (method, "-" if left is None else int(left * 1000)))


def unary(req, ctx):
    note_call("Unary", ctx)
    return req


def server_stream(req, ctx):
    note_call("ServerStream", ctx)
    for i in range(int(req or b"0")):
        yield b"msg-%d" % i


def client_stream(it, ctx):
    note_call("ClientStream", ctx)
    h = hashlib.sha256()
    n = total = 0
    for m in it:
        n += 1
        total += len(m)
        h.update(m)
    return b"%d %d %s" % (n, total, h.hexdigest().encode())


def bidi(it, ctx):
    note_call("Bidi", ctx)
    for m in it:
        yield m


def sleep(req, ctx):
    note_call("Sleep", ctx)
    ms = int(req or b"0")
    t0 = time.monotonic()
    while (time.monotonic() - t0) * 1000 < ms:
        if not ctx.is_active():
            event("CANCELLED Sleep after_ms=%d" % int((time.monotonic() - t0) * 1000))
            return b""
        time.sleep(0.01)
    return b"woke"


def fail(req, ctx):
    note_call("Fail", ctx)
    ctx.abort(grpc.StatusCode.INVALID_ARGUMENT, "bad input: " + req.decode("utf-8", "replace"))


def main():
    global EVENTS
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--events", default=None)
    a = ap.parse_args()
    if a.events:
        EVENTS = open(a.events, "a", buffering=1)

    raw = {"request_deserializer": None, "response_serializer": None}
    handlers = {
        "Unary": grpc.unary_unary_rpc_method_handler(unary, **raw),
        "ServerStream": grpc.unary_stream_rpc_method_handler(server_stream, **raw),
        "ClientStream": grpc.stream_unary_rpc_method_handler(client_stream, **raw),
        "Bidi": grpc.stream_stream_rpc_method_handler(bidi, **raw),
        "Sleep": grpc.unary_unary_rpc_method_handler(sleep, **raw),
        "Fail": grpc.unary_unary_rpc_method_handler(fail, **raw),
    }
    opts = [("grpc.max_receive_message_length", 16 << 20),
            ("grpc.max_send_message_length", 16 << 20)]
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=32), options=opts)
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("weft.test.Echo", handlers),))
    if server.add_insecure_port("%s:%d" % (a.host, a.port)) == 0:
        sys.stderr.write("grpc backend: cannot bind %s:%d\n" % (a.host, a.port))
        return 1
    server.start()
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    sys.stderr.write("grpc backend listening on %s:%d\n" % (a.host, a.port))
    sys.stderr.flush()
    while not done.wait(0.2):
        pass
    server.stop(0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
