"""Instructions of one warm pass of the triage engine over a set of messages (callgrind).

Wall clock on a shared two-core machine moves by 10 % or more between runs; the number of
instructions executed does not. This script runs itself under ``valgrind --tool=callgrind``
with instrumentation off; inside, it loads the settings, triages every message once (the lazy
data and caches warm, as in ``bench/engine.py``), then switches instrumentation on for one
more pass only, through callgrind's client requests (a four-line C helper compiled with the
system's ``gcc`` against ``valgrind/callgrind.h``), and prints the pass's instruction count.

    python bench/engine_instructions.py                     # the labelled sets
    python bench/engine_instructions.py tests/data/variants
    PYTHONPATH=/path/to/other/checkout python bench/engine_instructions.py   # another revision

Needs valgrind and gcc (``apt-get install valgrind gcc``). About one minute for the 723
labelled messages.
"""

from __future__ import annotations

import ctypes
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_HELPER = """#include <valgrind/callgrind.h>
void measure_on(void) {
    CALLGRIND_START_INSTRUMENTATION; CALLGRIND_ZERO_STATS; CALLGRIND_TOGGLE_COLLECT;
}
void measure_off(void) {
    CALLGRIND_TOGGLE_COLLECT; CALLGRIND_DUMP_STATS_AT("pass"); CALLGRIND_STOP_INSTRUMENTATION;
}
"""


def _pass(paths: list[str], helper: str) -> None:
    """Inside valgrind: warm pass, then the measured pass between the client requests."""
    from triage.config import load_settings
    from triage.pipeline import triage_bytes
    from triage.sources import iter_sources

    items = [s.raw for s in iter_sources(paths)]
    settings = load_settings(None)
    for raw in items:
        triage_bytes(raw, settings)
    lib = ctypes.CDLL(helper)
    lib.measure_on()
    for raw in items:
        triage_bytes(raw, settings)
    lib.measure_off()
    print(len(items))


def main() -> None:
    if os.environ.get("TRIAGE_INSTRUCTIONS_HELPER"):
        _pass(sys.argv[1:], os.environ["TRIAGE_INSTRUCTIONS_HELPER"])
        return
    paths = sys.argv[1:] or [str(p) for p in sorted((ROOT / "tests" / "data").iterdir())
                             if (p / "labels.tsv").is_file()]
    import triage

    with tempfile.TemporaryDirectory() as work:
        source, helper = Path(work) / "measure.c", Path(work) / "libmeasure.so"
        source.write_text(_HELPER)
        subprocess.run(["gcc", "-O1", "-shared", "-fPIC", "-o", str(helper), str(source)],
                       check=True)
        out = Path(work) / "callgrind.out"
        done = subprocess.run(
            ["valgrind", "--tool=callgrind", "--collect-atstart=no", "--instr-atstart=no",
             f"--callgrind-out-file={out}", sys.executable, str(Path(__file__).resolve()),
             *paths],
            env={**os.environ, "TRIAGE_INSTRUCTIONS_HELPER": str(helper)},
            check=True, capture_output=True, text=True)
        dump = Path(f"{out}.1").read_text()
        summary = next(line for line in dump.splitlines() if line.startswith("summary:"))
        print(json.dumps({"engine": str(Path(triage.__file__).parent),
                          "messages": int(done.stdout.split()[-1]),
                          "instructions": int(summary.split()[1])}))


if __name__ == "__main__":
    main()
