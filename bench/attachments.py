"""CPU per message of the triage engine, messages with an attachment apart from the others.

In process, no I/O: the messages of a folder (e.g. ``bench/generate.py --count 300 --seed 3
--out /tmp/att``: one in ten carries an attachment) are read into memory and split by whether
their manifest lists an attachment; each group then goes through
``triage.pipeline.triage_bytes`` ``--rounds`` times, and the best round's CPU time
(``time.process_time``) per message is printed, one JSON object. Another revision: run it with
``PYTHONPATH=/path/to/other/checkout`` (from outside that checkout), as ``bench/engine.py``.

    python bench/attachments.py /tmp/att --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import triage
from triage.config import load_settings
from triage.parse import parse_message
from triage.pipeline import triage_bytes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    settings = load_settings()
    groups: dict[str, list[bytes]] = {"with_attachment": [], "without": []}
    for path in sorted(args.folder.glob("*.eml")):
        raw = path.read_bytes()
        groups["with_attachment" if parse_message(raw).attachments else "without"].append(raw)
    out: dict[str, object] = {"engine": str(Path(triage.__file__).parent),
                              "load": os.getloadavg()[0]}
    for name, raws in groups.items():
        best = float("inf")
        for _ in range(args.rounds):
            started = time.process_time()
            for raw in raws:
                triage_bytes(raw, settings)
            best = min(best, time.process_time() - started)
        out[name] = {"messages": len(raws), "mean_bytes": sum(map(len, raws)) // max(len(raws), 1),
                     "ms_per_message": round(best * 1000 / max(len(raws), 1), 2)}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
