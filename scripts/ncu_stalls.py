#!/usr/bin/env python3
"""Summarises the warp-stall samples of an Nsight Compute source export.

Input: `ncu --import REPORT --page source --csv --print-source sass` (one kernel). Prints the
share of each stall reason over all samples and the instructions that collect the most samples
with their two main reasons.

    python3 scripts/ncu_stalls.py sass.csv [top]
"""
import csv
import sys


def main(argv):
    if len(argv) < 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    top = int(argv[2]) if len(argv) > 2 else 12
    with open(argv[1], newline="") as f:
        rows = list(csv.reader(f))
    header_at = next((i for i, r in enumerate(rows) if r and r[0] == "Address"), None)
    if header_at is None:
        print(f"{argv[1]}: no 'Address' header row (expected an ncu --page source --csv export)", file=sys.stderr)
        return 1
    header = rows[header_at]
    col = {h: i for i, h in enumerate(header)}
    samples_col = col.get("Warp Stall Sampling (All Samples)")
    if samples_col is None:
        print(f"{argv[1]}: no 'Warp Stall Sampling (All Samples)' column", file=sys.stderr)
        return 1
    reasons = [h for h in header if h.startswith("stall_") and "Not Issued" not in h]
    data = [r for r in rows[header_at + 1:] if len(r) == len(header)]

    def count(r, c):
        v = r[c].replace(",", "")
        return int(v) if v.isdigit() else 0

    total = sum(count(r, samples_col) for r in data)
    if total == 0:
        print(f"{argv[1]}: no samples", file=sys.stderr)
        return 1
    by_reason = {h: sum(count(r, col[h]) for r in data) for h in reasons}
    print(f"{total} samples over {len(data)} instructions")
    for h, v in sorted(by_reason.items(), key=lambda kv: -kv[1]):
        if v:
            print(f"  {h[6:]:<20} {v:7d}  {100.0 * v / total:5.1f} %")
    print(f"top {top} instructions:")
    for r in sorted(data, key=lambda r: -count(r, samples_col))[:top]:
        main_reasons = sorted(((count(r, col[h]), h[6:]) for h in reasons), reverse=True)[:2]
        why = ", ".join(f"{name} {n}" for n, name in main_reasons if n)
        print(f"  {count(r, samples_col):6d}  {r[col['Source']].strip()[:64]:<64}  {why}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
