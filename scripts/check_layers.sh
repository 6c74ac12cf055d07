#!/usr/bin/env bash
# check_layers.sh: the core's include graph follows docs/architecture.md
# "Layers". Every file of core/ (and sdk/common/) belongs to one component
# of the table below, each at a layer; a file may include only files of its
# own component or of a component at a lower layer, and the graph between
# components has no cycle. Directories that hold more than one layer
# (http/: the message model, the stream engine and the codecs; net/;
# upstream/; filter/) are split into components by file; a new file of
# filter/, http/ or upstream/ falls into the highest component of its
# directory until the table names it, and a file that matches no pattern
# (a new directory) fails the check.
#
#   scripts/check_layers.sh [ROOT]     (exit 0: clean; 1: violations)
#   scripts/check_layers.sh --graph    (prints the component graph)
set -euo pipefail
graph=0
if [ "${1:-}" = "--graph" ]; then
    graph=1
    shift
fi
root=${1:-$(cd "$(dirname "$0")/.." && pwd)}
exec python3 - "$root" "$graph" <<'PY'
import os, re, sys

root, graph = sys.argv[1], sys.argv[2] == "1"

# (layer, component, patterns relative to the repository); first match wins.
TABLE = [
    (1, "common", [r"core/common/", r"sdk/common/"]),
    (1, "stats", [r"core/stats/"]),
    (2, "config", [r"core/config/"]),
    (3, "net", [r"core/net/conn\.", r"core/net/conn_facts\.h"]),
    (3, "message", [r"core/http/message\.", r"core/http/path_norm\.",
                    r"core/http/h1/h1_(codec\.h|parser\.c|writer\.c)", r"core/http/h2/h2_(nv|mem)\."]),
    (3, "log", [r"core/log/"]),
    (4, "router", [r"core/router/"]),
    (4, "balancing", [r"core/upstream/(hostset|lb)\.", r"core/upstream/(attempt|up_user)\.h"]),
    (5, "filters", [r"core/filter/(filter\.h|filter_lib\.c|filter_setup\.h|transport\.|config_timer\.)"]),
    (5, "runtime", [r"core/runtime/"]),
    (6, "upstream", [r"core/upstream/(pool|h2_pool|dns|health)\."]),
    (7, "stream", [r"core/http/stream", r"core/filter/(filter_host|callout|filter_state|handles)\."]),
    (8, "codecs", [r"core/http/h1/h1_downstream\.", r"core/http/h2/h2_downstream\.",
                   r"core/net/tcp_proxy\."]),
    (9, "loop", [r"core/loop/"]),
    (10, "top", [r"core/admin/", r"core/main\.c", r"core/wiring\.c"]),
    # a file the table does not name yet: the highest component of its directory
    (6, "upstream", [r"core/upstream/"]),
    (7, "stream", [r"core/filter/", r"core/http/"]),
]

# Includes the layer order allows but the design does not: the worker loop
# reaches listener kinds, upstream pools, callouts and stream handles only
# through the module table of core/wiring.c (loop/worker.h).
FORBIDDEN = {
    ("loop", "codecs"): "the worker reaches listener kinds through weft_worker_modules (core/wiring.c)",
    ("loop", "stream"): "the worker reaches stream-layer modules through weft_worker_modules",
    ("loop", "upstream"): "the worker reaches the upstream pools through weft_worker_modules",
}

def component(rel):
    for layer, name, pats in TABLE:
        if any(re.match(p, rel) for p in pats):
            return layer, name
    return None

# include dirs, as the build has them (core/, sdk/include, sdk/common)
INC = ["core", "sdk/common", "sdk/include"]
files = []
for top in ("core", "sdk/common"):
    for d, _, fs in os.walk(os.path.join(root, top)):
        for f in fs:
            if f.endswith((".c", ".h")):
                files.append(os.path.relpath(os.path.join(d, f), root))
files.sort()

errors = []
edges = {}  # (from component, to component) -> first file include
inc_re = re.compile(r'^\s*#\s*include\s+"([^"]+)"')
for rel in files:
    me = component(rel)
    if me is None:
        errors.append(f"{rel}: in no component of scripts/check_layers.sh (add it to TABLE)")
        continue
    with open(os.path.join(root, rel), encoding="utf-8", errors="replace") as fh:
        for ln, line in enumerate(fh, 1):
            m = inc_re.match(line)
            if not m:
                continue
            target = None
            for base in [os.path.dirname(rel)] + INC:
                cand = os.path.normpath(os.path.join(base, m.group(1)))
                if os.path.exists(os.path.join(root, cand)):
                    target = cand
                    break
            if target is None or not target.startswith(("core/", "sdk/common/")):
                continue  # the ABI header, a generated file, a system header
            it = component(target)
            if it is None or it[1] == me[1]:
                continue
            edges.setdefault((me[1], it[1]), f"{rel}:{ln}: {m.group(1)}")
            why = FORBIDDEN.get((me[1], it[1]))
            if why:
                errors.append(f"{rel}:{ln}: includes {m.group(1)}: {me[1]} may not include "
                              f"{it[1]}: {why}")
            if it[0] > me[0]:
                errors.append(f"{rel}:{ln}: includes {m.group(1)}: layer {me[0]} ({me[1]}) "
                              f"may not include layer {it[0]} ({it[1]})")

# cycles between components (same-layer components may include each other
# in one direction only)
adj = {}
for (a, b) in edges:
    adj.setdefault(a, set()).add(b)
state, stack = {}, []
def visit(n):
    state[n] = 1
    stack.append(n)
    for m in sorted(adj.get(n, ())):
        if state.get(m) == 1:
            cyc = stack[stack.index(m):] + [m]
            errors.append("cycle: " + " -> ".join(cyc) + " (" +
                          "; ".join(edges[(cyc[i], cyc[i + 1])] for i in range(len(cyc) - 1)) + ")")
        elif m not in state:
            visit(m)
    stack.pop()
    state[n] = 2
if not errors:  # (an upward include already closes every cycle it makes)
    for n in sorted(adj):
        if n not in state:
            visit(n)

if graph:
    for (a, b) in sorted(edges):
        print(f"{a} -> {b}    ({edges[(a, b)]})")
for e in errors:
    print(e)
if errors:
    print(f"check_layers: {len(errors)} violation(s); the layers are in docs/architecture.md")
    sys.exit(1)
print(f"check_layers: {len(files)} files, {len(edges)} component edges, no upward include, no cycle")
PY
