#!/usr/bin/python3
"""check_doc_examples.py: compiles every ```c block of the given Markdown
files with -std=c11 -Wall -Wextra -Werror against the SDK headers, so the
examples in docs/sdk.md and docs/filtertest.md keep compiling.

    check_doc_examples.py CC INCLUDE_DIR... -- FILE.md...

A block is one translation unit, compiled as written (-c), unless the
line before its opening fence (blank lines skipped) is a marker:

    <!-- fragment -->          top-level code that needs the SDK headers:
                                weft/filter.h (and weft/filtertest.h), the
                                usual libc headers are included first, and
                                unused static functions are allowed
    <!-- fragment: members -->  declarations of struct members (hook
                                tables): wrapped in a struct as well
    <!-- fragment: body -->     statements: wrapped in a function that has
                                `weft_stream *s` and `wft_stream *st`
    <!-- fragment: skip -->     not compiled (say why next to it)

Prints one line per block (file:line: ok / FAILED) and the compiler's
output for failures; exits 1 if any block fails, 2 on bad usage."""

import os
import re
import subprocess
import sys
import tempfile

PRELUDE = """#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <weft/filter.h>
#include <weft/filtertest.h>
"""

MARKER = re.compile(r"^<!--\s*fragment(?::\s*(\w+))?\s*-->\s*$")


def blocks(path):
    lines = open(path, encoding="utf-8").read().split("\n")
    i = 0
    while i < len(lines):
        if lines[i].strip() == "```c":
            j = i + 1
            while j < len(lines) and lines[j].strip() != "```":
                j += 1
            k = i - 1
            while k >= 0 and not lines[k].strip():
                k -= 1
            kind = None
            m = MARKER.match(lines[k].strip()) if k >= 0 else None
            if m:
                kind = m.group(1) or "toplevel"
            yield i + 1, kind, "\n".join(lines[i + 1:j]) + "\n"
            i = j
        i += 1


def source_for(kind, code):
    if kind is None:
        return code, []
    if kind == "toplevel":
        return PRELUDE + code, ["-Wno-unused-function"]
    if kind == "members":
        return PRELUDE + "struct doc_fragment {\n" + code + "};\n", []
    if kind == "body":
        return (PRELUDE + "void doc_fragment(weft_stream *s, wft_stream *st);\n"
                "void doc_fragment(weft_stream *s, wft_stream *st) {\n(void)s;\n(void)st;\n"
                + code + "}\n"), []
    raise ValueError("unknown fragment kind: %s" % kind)


def main():
    if "--" not in sys.argv or len(sys.argv) < 4:
        print(__doc__, file=sys.stderr)
        return 2
    sep = sys.argv.index("--")
    cc, incs, files = sys.argv[1], sys.argv[2:sep], sys.argv[sep + 1:]
    failed = compiled = 0
    with tempfile.TemporaryDirectory() as tmp:
        for path in files:
            for line, kind, code in blocks(path):
                where = "%s:%d" % (path, line)
                if kind == "skip":
                    print("%s: skipped (<!-- fragment: skip -->)" % where)
                    continue
                try:
                    src, extra = source_for(kind, code)
                except ValueError as e:
                    print("%s: FAILED: %s" % (where, e))
                    failed += 1
                    continue
                c = os.path.join(tmp, "block_%d.c" % compiled)
                with open(c, "w", encoding="utf-8") as f:
                    f.write('#line 1 "%s (block at line %d)"\n' % (path, line)
                            if kind is None else "")
                    f.write(src)
                cmd = [cc, "-std=c11", "-Wall", "-Wextra", "-Werror"] + extra + \
                      ["-I" + d for d in incs] + ["-c", c, "-o", os.devnull]
                r = subprocess.run(cmd, capture_output=True, text=True)
                compiled += 1
                if r.returncode != 0:
                    failed += 1
                    print("%s: FAILED (%s)\n%s%s" % (where, kind or "translation unit",
                                                    r.stdout, r.stderr))
                else:
                    print("%s: ok (%s)" % (where, kind or "translation unit"))
    print("%d blocks compiled, %d failed" % (compiled, failed))
    if compiled == 0:
        print("no ```c block found: wrong files?")
        return 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
