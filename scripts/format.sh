#!/usr/bin/env bash
# format.sh: applies .clang-format to every C file of the project
# (core, sdk, tests, examples; not the frozen ABI 1.0 header).
#   scripts/format.sh           rewrite in place
#   scripts/format.sh --check   list files that differ, exit 1 if any
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
mapfile -t files < <(find core sdk tests examples controlplane filters -name '*.[ch]' \
    ! -path tests/abi/filter_v1_0.h ! -path tests/abi/filter_v1_1.h ! -path tests/abi/filter_v1_2.h 2>/dev/null | sort)
if [[ "${1:-}" == "--check" ]]; then
    bad=0
    for f in "${files[@]}"; do
        if ! clang-format --dry-run --Werror --style=file "$f" >/dev/null 2>&1; then
            echo "format.sh: $f differs from .clang-format" >&2
            bad=1
        fi
    done
    exit "$bad"
fi
clang-format -i --style=file "${files[@]}"
