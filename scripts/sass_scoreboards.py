#!/usr/bin/env python3
"""Shows how a kernel's global loads are tracked, from `cuobjdump -sass` text on stdin.

Every sm_70+ instruction carries control bits in the top of its second 64-bit word: the
scoreboard it sets when it completes (write barrier, bits 46-48 of that word; 7 = none) and the
scoreboards it waits for before it issues (wait mask, bits 52-57). Loads that share a scoreboard
can only be waited for together. For the functions whose name matches PATTERN this prints every
global load and every instruction that waits for a scoreboard some global load sets, then a count
per scoreboard.

    cuobjdump -sass FILE | python3 scripts/sass_scoreboards.py PATTERN
"""
import re
import sys


def parse(text):
    functions, current, lines = {}, None, text.splitlines()
    i = 0
    while i < len(lines):
        f = re.search(r"Function : (\S+)", lines[i])
        if f:
            current = f.group(1)
            functions[current] = []
        m = re.match(r"\s+/\*([0-9a-f]{4,5})\*/\s+(.*?);\s+/\* (0x[0-9a-f]+) \*/", lines[i])
        if m and current and i + 1 < len(lines):
            hi = re.search(r"/\* (0x[0-9a-f]+) \*/", lines[i + 1])
            if hi:
                w = int(hi.group(1), 16)
                functions[current].append((int(m.group(1), 16), m.group(2).strip(), (w >> 46) & 7, (w >> 52) & 0x3F))
                i += 2
                continue
        i += 1
    return functions


def main(argv):
    if len(argv) != 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    functions = {n: ins for n, ins in parse(sys.stdin.read()).items() if re.search(argv[1], n)}
    if not functions:
        print(f"no function matches {argv[1]!r} (is the input cuobjdump -sass text?)", file=sys.stderr)
        return 1
    for name, ins in functions.items():
        print(f"== {name}")
        load_sbs = {wb for _, t, wb, _ in ins if "LDG" in t and wb != 7}
        for addr, text, wb, wait in ins:
            waits = [b for b in range(6) if wait >> b & 1]
            if "LDG" in text or set(waits) & load_sbs:
                sets = f"sets SB{wb}" if wb != 7 else "       "
                on = f"waits for {','.join(f'SB{b}' for b in waits)}" if waits else ""
                print(f"  {addr:05x}  {sets}  {on:<20} {text[:72]}")
        for b in sorted(load_sbs):
            n = sum(1 for _, t, wb, _ in ins if "LDG" in t and wb == b)
            w = sum(1 for _, _, _, wait in ins if wait >> b & 1)
            print(f"  SB{b}: set by {n} global loads, waited for by {w} instructions")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
