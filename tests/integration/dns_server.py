#!/usr/bin/python3
"""A tiny authoritative DNS server for weft's integration tests (UDP only,
standard library only).

  dns_server.py --port P --name churn.test --addr 127.0.0.2 --addr 127.0.0.3 ...
                [--host 127.0.0.1] [--fixed]

For NAME (case-insensitive: evdns randomizes the case of its queries and
checks that the answer repeats the question exactly, which it does):
  - A queries are answered with a different non-empty subset of the --addr
    list each time, TTL 0: the k-th A query gets the subset whose bit mask
    is (k mod (2^n - 1)) + 1, so two answers in a row always differ and
    every subset comes round (with --fixed: always the whole list);
  - AAAA and other types get NOERROR with no records.
Any other name gets NXDOMAIN. Malformed packets are dropped.

Prints "ready <port>" on stdout once bound; on SIGTERM prints
"answered <A queries> <other queries>" and exits.
"""

import argparse
import signal
import socket
import struct
import sys

TYPE_A = 1
CLASS_IN = 1


def parse_question(pkt):
    """(id, flags, qname_lower, qtype, qclass, question_bytes) or None."""
    if len(pkt) < 12:
        return None
    qid, flags, qd = struct.unpack("!HHH", pkt[:6])
    if flags & 0x8000 or qd != 1:  # a response, or not exactly one question
        return None
    pos = 12
    labels = []
    while True:
        if pos >= len(pkt):
            return None
        n = pkt[pos]
        pos += 1
        if n == 0:
            break
        if n & 0xC0 or pos + n > len(pkt):  # no compression in questions
            return None
        labels.append(pkt[pos:pos + n].decode("ascii", "replace").lower())
        pos += n
    if pos + 4 > len(pkt):
        return None
    qtype, qclass = struct.unpack("!HH", pkt[pos:pos + 4])
    return qid, flags, ".".join(labels), qtype, qclass, pkt[12:pos + 4]


def answer(qid, flags, question, rcode, addrs):
    rd = flags & 0x0100
    opcode = flags & 0x7800
    out_flags = 0x8000 | opcode | 0x0400 | rd | 0x0080 | rcode  # QR AA RD RA
    head = struct.pack("!HHHHHH", qid, out_flags, 1, len(addrs), 0, 0)
    body = bytearray(question)
    for a in addrs:
        # name: pointer to the question's name (offset 12); TTL 0
        body += struct.pack("!HHHIH", 0xC00C, TYPE_A, CLASS_IN, 0, 4)
        body += socket.inet_aton(a)
    return head + bytes(body)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--name", required=True)
    ap.add_argument("--addr", action="append", required=True)
    ap.add_argument("--fixed", action="store_true")
    args = ap.parse_args()
    name = args.name.lower().rstrip(".")
    addrs = args.addr
    if len(addrs) > 16:
        ap.error("at most 16 addresses")
    n_subsets = (1 << len(addrs)) - 1

    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((args.host, args.port))
    counts = {"a": 0, "other": 0}

    def on_term(signum, frame):
        print("answered %d %d" % (counts["a"], counts["other"]), flush=True)
        sys.exit(0)

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    print("ready %d" % sock.getsockname()[1], flush=True)

    while True:
        try:
            pkt, peer = sock.recvfrom(4096)
        except InterruptedError:
            continue
        q = parse_question(pkt)
        if q is None:
            continue
        qid, flags, qname, qtype, qclass, question = q
        if qname != name:
            reply = answer(qid, flags, question, 3, [])  # NXDOMAIN
        elif qtype == TYPE_A and qclass == CLASS_IN:
            if args.fixed:
                chosen = addrs
            else:
                mask = (counts["a"] % n_subsets) + 1
                chosen = [a for i, a in enumerate(addrs) if mask & (1 << i)]
            counts["a"] += 1
            reply = answer(qid, flags, question, 0, chosen)
        else:
            counts["other"] += 1
            reply = answer(qid, flags, question, 0, [])  # NOERROR, no records
        try:
            sock.sendto(reply, peer)
        except OSError:
            pass


if __name__ == "__main__":
    main()
