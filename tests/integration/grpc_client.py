#!/usr/bin/python3
"""grpc_client.py: calls grpc_backend.py's service (or anything in front of
it) with grpcio over an insecure (h2c) channel, raw bytes, no protobuf.

    grpc_client.py PORT CALL [--timeout S] [--arg X] [--count N] [--bytes N]
                   [--service weft.test.Echo]

CALL is one of:
  unary          sends --bytes random bytes; OK when the same bytes return
  server-stream  asks for --count messages; OK when msg-0..msg-<count-1>
                 arrive in order
  client-stream  sends --count messages of --bytes bytes; OK when the reply
                 names the same count, size and sha256
  bidi           --count messages, each read back before the next is sent
  sleep          Sleep with request --arg (milliseconds)
  fail           Fail with request --arg
  call           the unary method --arg (any name), empty request

Prints one line, then exits 0 whatever the outcome:
  OK <call> elapsed=<s> <detail>
  MISMATCH <call> elapsed=<s> <detail>
  STATUS <CODE_NAME> elapsed=<s> details=<the status message, one line>
"""

import argparse
import hashlib
import os
import sys
import time

import grpc


def one_line(s):
    return (s or "").replace("\r", "\\r").replace("\n", "\\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("port", type=int)
    ap.add_argument("call")
    ap.add_argument("--timeout", type=float, default=10.0)
    ap.add_argument("--arg", default="")
    ap.add_argument("--count", type=int, default=100)
    ap.add_argument("--bytes", type=int, default=1000)
    ap.add_argument("--service", default="weft.test.Echo")
    a = ap.parse_args()

    opts = [("grpc.max_receive_message_length", 16 << 20),
            ("grpc.max_send_message_length", 16 << 20),
            ("grpc.enable_retries", 0)]
    ch = grpc.insecure_channel("127.0.0.1:%d" % a.port, options=opts)
    svc = "/" + a.service + "/"
    raw = {"request_serializer": None, "response_deserializer": None}
    t0 = time.monotonic()

    def done(word, detail):
        print("%s %s elapsed=%.3f %s" % (word, a.call, time.monotonic() - t0, detail))

    try:
        if a.call == "unary":
            req = os.urandom(a.bytes)
            resp = ch.unary_unary(svc + "Unary", **raw)(req, timeout=a.timeout)
            done("OK" if resp == req else "MISMATCH", "bytes=%d" % len(resp))
        elif a.call == "server-stream":
            got = list(ch.unary_stream(svc + "ServerStream", **raw)(b"%d" % a.count, timeout=a.timeout))
            want = [b"msg-%d" % i for i in range(a.count)]
            done("OK" if got == want else "MISMATCH", "messages=%d" % len(got))
        elif a.call == "client-stream":
            msgs = [os.urandom(a.bytes) for _ in range(a.count)]
            h = hashlib.sha256(b"".join(msgs)).hexdigest().encode()
            want = b"%d %d %s" % (len(msgs), sum(map(len, msgs)), h)
            resp = ch.stream_unary(svc + "ClientStream", **raw)(iter(msgs), timeout=a.timeout)
            done("OK" if resp == want else "MISMATCH", resp.decode("ascii", "replace").replace(" ", "/"))
        elif a.call == "bidi":
            import queue
            q = queue.Queue()

            def gen():
                while True:
                    m = q.get()
                    if m is None:
                        return
                    yield m
            call = ch.stream_stream(svc + "Bidi", **raw)(gen(), timeout=a.timeout)
            ok = 0
            for i in range(a.count):
                m = b"ping-%d-" % i + os.urandom(16)
                q.put(m)
                if next(call) == m:
                    ok += 1
            q.put(None)
            rest = list(call)
            done("OK" if ok == a.count and not rest else "MISMATCH", "echoed=%d" % ok)
        elif a.call == "sleep":
            resp = ch.unary_unary(svc + "Sleep", **raw)(a.arg.encode(), timeout=a.timeout)
            done("OK", resp.decode("ascii", "replace"))
        elif a.call == "fail":
            resp = ch.unary_unary(svc + "Fail", **raw)(a.arg.encode(), timeout=a.timeout)
            done("OK", "unexpected-success")
        elif a.call == "call":
            resp = ch.unary_unary(svc + a.arg, **raw)(b"", timeout=a.timeout)
            done("OK", "bytes=%d" % len(resp))
        else:
            sys.stderr.write("unknown call %s\n" % a.call)
            return 2
    except grpc.RpcError as e:
        print("STATUS %s elapsed=%.3f details=%s" % (e.code().name, time.monotonic() - t0,
                                                   one_line(e.details())))
    finally:
        ch.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
