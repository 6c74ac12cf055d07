#!/usr/bin/python3
"""ws_backend.py: a WebSocket echo server (the `websockets` library) for
weft's tunnel tests.

    ws_backend.py --port P [--events FILE]

Every WebSocket connection, on any path, echoes each message back (text as
text, binary as binary) until the client closes. A plain HTTP GET of
/healthz answers 200 "ok" (so readiness can be polled with curl); any other
non-WebSocket request gets the library's 426/400 refusal.

--events FILE gets one line per event, flushed:
  OPEN <path> upgrade=<Upgrade header> via=<Via header or ->
  MSG <text|binary> <length>
  CLOSE code=<close code> reason=<close reason>
"""

import argparse
import asyncio
import http
import signal
import sys

import websockets

EVENTS = None


def event(line):
    if EVENTS:
        EVENTS.write(line + "\n")
        EVENTS.flush()


async def handler(ws, path):
    event("OPEN %s upgrade=%s via=%s" % (path, ws.request_headers.get("Upgrade", "-"),
                                         ws.request_headers.get("Via", "-")))
    try:
        async for msg in ws:
            event("MSG %s %d" % ("text" if isinstance(msg, str) else "binary", len(msg)))
            await ws.send(msg)
    except websockets.ConnectionClosed:
        pass
    event("CLOSE code=%s reason=%s" % (ws.close_code, ws.close_reason or ""))


async def process_request(path, headers):
    if path == "/healthz":
        return http.HTTPStatus.OK, [("Content-Type", "text/plain")], b"ok\n"
    return None


async def serve(a):
    stop = asyncio.get_running_loop().create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set_result, None)
    async with websockets.serve(handler, a.host, a.port, process_request=process_request,
                                max_size=16 << 20, ping_interval=None, compression=None):
        sys.stderr.write("ws backend listening on %s:%d\n" % (a.host, a.port))
        sys.stderr.flush()
        await stop


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
    asyncio.run(serve(a))


if __name__ == "__main__":
    main()
