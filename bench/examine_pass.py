"""CPU of one pass of ``examine`` (parse and rules) over the first N messages of an mbox, as
the replay's workers do it: each message read from its span, a fresh process, so that caches
are as cold as in a real replay (repeated rounds over the same messages flatter them)::

    python bench/examine_pass.py /tmp/triage-bench/archive-100000-seed1.mbox --count 10000
    PYTHONPATH=/tmp/other python bench/examine_pass.py ARCHIVE   # another tree, same pass

Prints the mean CPU a message (``time.process_time``, so another process's load counts less
than in wall time) for messages under and over 150 KB (those with an attachment, in the
replay archive) and for all of them.
"""

from __future__ import annotations

import argparse
import gc
import time
from itertools import islice
from pathlib import Path

from triage.config import load_settings
from triage.pipeline import examine, prepare
from triage.sources import iter_locations

ROOT = Path(__file__).resolve().parent.parent
BIG = 150_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mbox")
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--config", type=Path, default=ROOT / "config" / "departments.yaml")
    args = parser.parse_args()
    settings = load_settings(args.config)
    prepare(settings)  # as a replay's worker, before its first message
    gc.freeze()
    spent = {False: 0.0, True: 0.0}
    seen = {False: 0, True: 0}
    for location in islice(iter_locations([args.mbox]), args.count):
        raw = location.read()
        started = time.process_time()
        examine(raw, settings, dated=True)
        big = len(raw) > BIG
        spent[big] += time.process_time() - started
        seen[big] += 1
    total = sum(seen.values()) or 1
    print(f"under {BIG // 1000} KB: {spent[False] / max(seen[False], 1) * 1e3:.2f} ms "
          f"({seen[False]}); over: {spent[True] / max(seen[True], 1) * 1e3:.2f} ms "
          f"({seen[True]}); all: {sum(spent.values()) / total * 1e3:.2f} ms a message")


if __name__ == "__main__":
    main()
