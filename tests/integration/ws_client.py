#!/usr/bin/python3
"""ws_client.py: a WebSocket client (the `websockets` library) for weft's
tunnel tests.

    ws_client.py URL echo            text, binary, 1 MiB binary, ping/pong,
                                     close handshake (1000, "bye")
    ws_client.py URL idle --wait S   connects, sends nothing (no keepalive
                                     pings) and waits up to S seconds for
                                     the peer to end the connection

Prints one line per check, then END; exits 0 whatever the outcome (the
caller asserts on the lines):
  OK text | OK binary | OK big bytes=N | OK ping rtt_ms=N
  OK close code=1000 reason=bye
  FAIL <check> <why>
  CLOSED_BY_PEER after=<s> code=<n>   (idle: the connection ended)
  STILL_OPEN after=<s>                (idle: nothing happened)
  HANDSHAKE_FAILED <why>
  END
"""

import argparse
import asyncio
import os
import time

import websockets


async def echo(url):
    try:
        ws = await websockets.connect(url, max_size=16 << 20, ping_interval=None,
                                      compression=None, open_timeout=5, close_timeout=5)
    except Exception as e:  # the handshake outcome is what is reported
        print("HANDSHAKE_FAILED %s %s" % (e.__class__.__name__, e))
        return
    try:
        await ws.send("hello, weft")
        got = await asyncio.wait_for(ws.recv(), 5)
        print("OK text" if got == "hello, weft" else "FAIL text %r" % got[:50])

        blob = os.urandom(1000)
        await ws.send(blob)
        got = await asyncio.wait_for(ws.recv(), 5)
        print("OK binary" if got == blob else "FAIL binary")

        big = os.urandom(1 << 20)
        await ws.send(big)
        got = await asyncio.wait_for(ws.recv(), 10)
        print("OK big bytes=%d" % len(got) if got == big else "FAIL big len=%d" % len(got))

        t0 = time.monotonic()
        pong = await ws.ping(b"weft-ping")
        await asyncio.wait_for(pong, 5)
        print("OK ping rtt_ms=%d" % ((time.monotonic() - t0) * 1000))

        await asyncio.wait_for(ws.close(code=1000, reason="bye"), 5)
        # close_code/close_reason: what the server sent back in its Close frame
        if ws.close_code == 1000 and ws.close_reason == "bye":
            print("OK close code=1000 reason=bye")
        else:
            print("FAIL close code=%s reason=%s" % (ws.close_code, ws.close_reason))
    except Exception as e:  # a broken tunnel shows up here
        print("FAIL exception %s %s" % (e.__class__.__name__, e))


async def idle(url, wait):
    try:
        ws = await websockets.connect(url, ping_interval=None, open_timeout=5, close_timeout=2)
    except Exception as e:
        print("HANDSHAKE_FAILED %s %s" % (e.__class__.__name__, e))
        return
    t0 = time.monotonic()
    try:
        await asyncio.wait_for(ws.wait_closed(), wait)
        print("CLOSED_BY_PEER after=%.3f code=%s" % (time.monotonic() - t0, ws.close_code))
    except asyncio.TimeoutError:
        print("STILL_OPEN after=%.3f" % (time.monotonic() - t0))
        await ws.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("url")
    ap.add_argument("mode", choices=["echo", "idle"])
    ap.add_argument("--wait", type=float, default=5.0)
    a = ap.parse_args()
    if a.mode == "echo":
        asyncio.run(echo(a.url))
    else:
        asyncio.run(idle(a.url, a.wait))
    print("END")


if __name__ == "__main__":
    main()
