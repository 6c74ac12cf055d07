#!/usr/bin/python3
"""Summarises a benchmark's per-round measurements as markdown tables.

Input: a TSV file with a header line; every row is one measured run of one
target in one round and has at least the columns `round` and `target`;
the other columns are numbers (empty = not measured).

  stats.py rounds.tsv \\
      --targets "direct weft haproxy nginx" \\
      --column "rps:req/s:%.0f" --column "proxy_us:proxy CPU µs/req:%.2f:spread" \\
      --sum errors --max tw_new \\
      --ratio "weft/haproxy:proxy_us:CPU per request" ...

Prints two tables:
  1. per target: the median over the rounds of every --column ("spread"
     adds the min-max range), the sum of every --sum column and the
     maximum of every --max column;
  2. per --ratio "A/B:COLUMN:LABEL": the ratios A/B of COLUMN taken within
     each round (the two runs of a pair were measured back to back), then
     their median, min-max, interquartile range and the number of pairs.
     B may be "X|Y|Z": the lowest of those targets' COLUMN in that round.
"""

import argparse
import csv
import statistics
import sys


def num(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def quartiles(xs):
    if len(xs) < 2:
        return xs[0], xs[0]
    q = statistics.quantiles(xs, n=4, method="inclusive")
    return q[0], q[2]


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("tsv")
    ap.add_argument("--targets", required=True)
    ap.add_argument("--column", action="append", default=[],
                    help="NAME:TITLE:FORMAT[:spread]")
    ap.add_argument("--sum", action="append", default=[], help="NAME:TITLE")
    ap.add_argument("--max", action="append", default=[], help="NAME:TITLE")
    ap.add_argument("--ratio", action="append", default=[], help="A/B:COLUMN:LABEL")
    ap.add_argument("--note", action="append", default=[], help="TARGET=text")
    a = ap.parse_args()

    with open(a.tsv, newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    targets = a.targets.split()
    notes = dict(n.split("=", 1) for n in a.note)
    by = {}  # (target, round) -> row
    for r in rows:
        by[(r["target"], r["round"])] = r
    rounds = sorted({r["round"] for r in rows}, key=lambda x: int(x))

    cols = [c.split(":") for c in a.column]
    sums = [c.split(":", 1) for c in a.sum]
    maxs = [c.split(":", 1) for c in a.max]
    head = ["target", "runs"] + [c[1] for c in cols] + [s[1] for s in sums] + [m[1] for m in maxs]
    head.append("note")
    print("| " + " | ".join(head) + " |")
    print("| --- | ---: | " + " | ".join("---:" for _ in head[2:-1]) + " | --- |")
    for t in targets:
        mine = [by[(t, rd)] for rd in rounds if (t, rd) in by]
        cells = [t, str(len(mine))]
        for c in cols:
            name, fmt = c[0], c[2]
            xs = [x for x in (num(r.get(name)) for r in mine) if x is not None]
            if not xs:
                cells.append("–")
                continue
            s = fmt % statistics.median(xs)
            if len(c) > 3 and c[3] == "spread" and len(xs) > 1:
                s += " (" + fmt % min(xs) + "–" + fmt % max(xs) + ")"
            cells.append(s)
        for name, _ in sums:
            xs = [x for x in (num(r.get(name)) for r in mine) if x is not None]
            cells.append("%.0f" % sum(xs) if xs else "–")
        for name, _ in maxs:
            xs = [x for x in (num(r.get(name)) for r in mine) if x is not None]
            cells.append("%.0f" % max(xs) if xs else "–")
        cells.append(notes.get(t, ""))
        print("| " + " | ".join(cells) + " |")

    if not a.ratio:
        return 0
    print()
    print("| ratio | of | median | min–max | IQR | pairs |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for spec in a.ratio:
        pair, col, label = spec.split(":", 2)
        na, nb = pair.split("/")
        # "x|y|z": the best (lowest) of those targets in the same round
        bs = nb.split("|")
        title = nb if len(bs) == 1 else "best of " + ", ".join(bs)
        rs = []
        for rd in rounds:
            ra = by.get((na, rd))
            x = num(ra.get(col)) if ra else None
            ys = [num(by[(b, rd)].get(col)) for b in bs if (b, rd) in by]
            ys = [y for y in ys if y is not None and y > 0]
            if x is None or not ys:
                continue
            rs.append(x / min(ys))
        if not rs:
            print("| %s / %s | %s | n/a | | | 0 |" % (na, title, label))
            continue
        q1, q3 = quartiles(rs)
        print("| %s / %s | %s | **%.3f** | %.3f–%.3f | %.3f–%.3f | %d |"
              % (na, title, label, statistics.median(rs), min(rs), max(rs), q1, q3, len(rs)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
