#!/usr/bin/env python3
"""Sums the time of each SQL statement in a log written with RUST_LOG=sqlx::query=debug
(for example `PACE_LOG=warn,sqlx::query=debug scripts/fleet-pace.sh …`, then
`scripts/statement-times.py /tmp/tmp.*/ingest.log`): per statement summary, how many ran,
their total and mean time, largest total first."""
import re
import sys
from collections import defaultdict

SUMMARY = re.compile(r'summary="((?:[^"\\]|\\.)*)"')
ELAPSED = re.compile(r"elapsed_secs=([0-9.eE+-]+)")
COLOURS = re.compile(r"\x1b\[[0-9;]*m")

totals = defaultdict(lambda: [0, 0.0])
for path in sys.argv[1:]:
    with open(path, encoding="utf-8", errors="replace") as log:
        for line in log:
            line = COLOURS.sub("", line)
            summary, elapsed = SUMMARY.search(line), ELAPSED.search(line)
            if summary and elapsed:
                entry = totals[summary.group(1)]
                entry[0] += 1
                entry[1] += float(elapsed.group(1))
whole = sum(t for _, t in totals.values())
print(f"{'total s':>9} {'share':>6} {'count':>7} {'mean ms':>8}  statement")
for summary, (count, seconds) in sorted(totals.items(), key=lambda kv: -kv[1][1]):
    share = seconds / whole if whole else 0.0
    print(f"{seconds:9.3f} {share:6.1%} {count:7d} {1000 * seconds / count:8.3f}  {summary[:90]}")
