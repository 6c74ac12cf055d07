#!/usr/bin/env python3
"""gen_config.py: writes a large, valid weft config for memory tests.

    gen_config.py --size 5000000 OUT            # about 5 MB: clusters + routes
    gen_config.py --clusters 1000 --endpoints 10 OUT

With --size, "units" are added until the file reaches the size: each unit
is one cluster (--endpoints endpoints, default 4, a health check on every
4th by default) and one route to it (prefix match, some with header matches and
header edits), spread over virtual hosts of 50 routes on one listener.
With --clusters, exactly that many clusters and one route each.
--health-every N puts a health check on every Nth cluster (0: none).
--port sets the listener port (default 10000), --admin-port the admin
port (default 0: no admin server), --backend-port the endpoints' port.
"""
import argparse
import sys


def unit(i, endpoints, backend_port, health_every):
    c = [f"  - name: cluster-{i:06d}\n",
         "    lb_policy: round_robin\n" if i % 3 else "    lb_policy: least_request\n",
         "    connect_timeout: 2s\n",
         "    endpoints:\n"]
    for e in range(endpoints):
        c.append(f"      - address: 127.0.{(i // 250) % 250}.{1 + e}\n"
                 f"        port: {backend_port}\n")
    if health_every and i % health_every == 0:
        c.append("    health_check:\n      path: /healthz\n      interval: 5s\n")
    r = [f"          - name: route-{i:06d}\n",
         "            match:\n",
         f"              prefix: /service-{i:06d}/\n"]
    if i % 5 == 0:
        r.append("              headers:\n"
                 f"                - name: x-tenant\n                  exact: tenant-{i}\n")
    r.append(f"            cluster: cluster-{i:06d}\n")
    if i % 7 == 0:
        r.append("            request_headers_to_add:\n"
                 f"              - name: x-route\n                value: route-{i}\n")
    return "".join(c), "".join(r)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--size", type=int, default=0)
    ap.add_argument("--clusters", type=int, default=0)
    ap.add_argument("--endpoints", type=int, default=4)
    ap.add_argument("--port", type=int, default=10000)
    ap.add_argument("--admin-port", type=int, default=0)
    ap.add_argument("--backend-port", type=int, default=8080)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--health-every", type=int, default=4)
    a = ap.parse_args()
    if not a.size and not a.clusters:
        ap.error("give --size or --clusters")
    head = (f"workers: {a.workers}\nadmin:\n  address: 127.0.0.1\n  port: {a.admin_port}\n")
    clusters, routes = [], []
    total = len(head) + 200
    i = 0
    while (a.clusters and i < a.clusters) or (not a.clusters and total < a.size):
        c, r = unit(i, a.endpoints, a.backend_port, a.health_every)
        clusters.append(c)
        routes.append(r)
        total += len(c) + len(r) + (60 if i % 50 == 0 else 0)
        i += 1
    with open(a.out, "w") as f:
        f.write(head)
        f.write("listeners:\n  - name: ingress\n    address: 127.0.0.1\n"
                f"    port: {a.port}\n    virtual_hosts:\n")
        for v in range(0, i, 50):
            f.write(f"      - name: vhost-{v // 50:05d}\n"
                    f"        domains: [\"svc-{v // 50}.example.com\"]\n"
                    "        routes:\n")
            f.write("".join(routes[v:v + 50]))
        f.write("      - name: fallback\n        domains: [\"*\"]\n        routes:\n"
                "          - name: all\n            match:\n              prefix: /\n"
                "            cluster: cluster-000000\n")
        f.write("clusters:\n")
        f.write("".join(clusters))
    return 0


if __name__ == "__main__":
    sys.exit(main())
