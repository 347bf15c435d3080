#!/usr/bin/env python3
"""Turns the ```sh blocks of a Markdown file into one bash script, in order.

The rule the README follows: every ```sh block is an example that CI runs against a live
server (with FAULTLINE, FAULTLINE_KEY exported); ```bash and ```text blocks are shown only.
All blocks run in one shell, so a variable a block sets (GROUP_ID, EVENT_ID) is seen by the
blocks after it. Before running, each block is printed with its line number.

Usage: readme_blocks.py README.md > readme.sh
"""

import re
import sys

FENCE = re.compile(r"^(\s*)(`{3,}|~{3,})\s*([^\s`]*)")


def blocks(path):
    """Yields (line_number, info, text) for each fenced block; line_number is the fence's."""
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        indent, fence, info = m.group(1), m.group(2), m.group(3).lower()
        start = i + 1
        body = []
        i += 1
        while i < len(lines) and not re.match(r"^\s*" + re.escape(fence[0]) + "{%d,}\\s*$" % len(fence), lines[i]):
            line = lines[i]
            body.append(line[len(indent):] if line.startswith(indent) else line.lstrip())
            i += 1
        if i == len(lines):
            sys.exit(f"{path}:{start}: unterminated code fence")
        i += 1
        yield start, info, "\n".join(body)


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    path = sys.argv[1]
    out = ["#!/usr/bin/env bash", f"# Generated from the ```sh blocks of {path} by .ci/readme_blocks.py.", "set -euo pipefail", ""]
    count = 0
    for line, info, text in blocks(path):
        if info != "sh":
            continue
        count += 1
        delim = f"__README_BLOCK_{count}__"
        if delim in text:
            sys.exit(f"{path}:{line}: block contains {delim}")
        out += [
            f"printf '\\n----- {path}:{line} (block {count}) -----\\n'",
            f"sed 's/^/  $ /' <<'{delim}'",
            text,
            delim,
            "printf '  ->\\n'",
            text,
            "echo",
            "",
        ]
    if count == 0:
        sys.exit(f"{path}: no ```sh blocks found")
    out.append(f"printf '\\n----- all {count} sh blocks of {path} ran -----\\n'")
    print("\n".join(out))
    print(f"readme_blocks: {count} sh blocks in {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
