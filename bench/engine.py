"""The triage engine per message, side by side with the standard library's parse of the same bytes.

In process, no I/O: every message of the given folders (default: the labelled sets under
tests/data) is read once into memory; then, round after round, the same list goes through

- ``stdlib``: ``email.message_from_bytes(raw, policy=email.policy.default)`` and the text of
  its body (``get_body(("plain", "html"))`` then ``get_content()``), what a naive reader does;
- ``triage``: ``triage.pipeline.triage_bytes(raw, settings)``: parse, rules, decision, draft.

Each figure is the best of ``--rounds`` rounds (CPU time of this process), so that a busy
machine perturbs it less; the ratio triage / stdlib is the figure to compare between
revisions (both sides are measured in the same run, on the same machine and load).

    python bench/engine.py                         # labelled sets
    python bench/engine.py --rounds 7 tests/data/dev ../shared/corpora
    PYTHONPATH=/path/to/other/checkout python bench/engine.py   # another revision's engine
    python bench/engine.py --compare /path/to/other/checkout --repeat 3

It prints one JSON object (messages, seconds per side, messages/s, ratio, load average).
With ``--compare``, this checkout's engine and the other's (a source tree, e.g. from
``git archive``) are measured alternately, ``--repeat`` times each, each in its own process
(one ``triage`` package per process), and one JSON object gives every run and the best
ratio of each.
"""

from __future__ import annotations

import argparse
import email
import email.policy
import json
import os
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _stdlib(raw: bytes) -> int:
    # The standard library raises on some hostile or broken messages of the corpus (a charset
    # parameter the codec rejects, in the middle of the parse): the time spent up to the error
    # counts, as it would for a naive reader that gives up there.
    try:
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        body = msg.get_body(("plain", "html"))  # type: ignore[attr-defined]
        text = body.get_content() if body is not None else ""
    except Exception:  # any failure ends this message's parse, as above
        text = ""
    return len(text)


def _best(label: str, fn, items: list[bytes], rounds: int) -> float:  # type: ignore[no-untyped-def]
    best = float("inf")
    for _ in range(rounds):
        start = time.process_time()
        for raw in items:
            fn(raw)
        best = min(best, time.process_time() - start)
    return best


def main() -> None:
    from triage.config import load_settings
    from triage.pipeline import triage_bytes
    from triage.sources import iter_sources

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", help="folders or files (default: tests/data sets)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--config", default=None)
    parser.add_argument("--compare", metavar="CHECKOUT", default=None,
                        help="another revision's source tree, measured alternately with this one")
    parser.add_argument("--repeat", type=int, default=2, help="runs of each side (--compare)")
    args = parser.parse_args()
    if args.compare:
        _compare(args)
        return
    paths = args.paths or [str(p) for p in sorted((ROOT / "tests" / "data").iterdir())
                           if (p / "labels.tsv").is_file()]
    items = [s.raw for s in iter_sources(paths)]
    settings = load_settings(args.config)
    triage_bytes(items[0], settings)  # warm: lazy data (communes, patterns) loaded once
    stdlib = _best("stdlib", _stdlib, items, args.rounds)
    engine = _best("triage", lambda raw: triage_bytes(raw, settings), items, args.rounds)
    import triage

    print(json.dumps({
        "engine": str(Path(triage.__file__).parent),
        "messages": len(items),
        "rounds": args.rounds,
        "stdlib_seconds": round(stdlib, 3),
        "triage_seconds": round(engine, 3),
        "stdlib_per_second": round(len(items) / stdlib, 1),
        "triage_per_second": round(len(items) / engine, 1),
        "ratio_triage_over_stdlib": round(engine / stdlib, 2),
        "load_average": os.getloadavg(),
    }, indent=2))


def _compare(args: argparse.Namespace) -> None:
    """Alternate runs of this checkout's engine and another's, each in a fresh process."""
    import subprocess
    import sys

    command = [sys.executable, str(Path(__file__).resolve()), "--rounds", str(args.rounds),
               *(["--config", args.config] if args.config else []), *args.paths]
    runs: dict[str, list[dict[str, object]]] = {"this": [], "other": []}
    for _ in range(args.repeat):
        for side, tree in (("this", str(ROOT)), ("other", str(Path(args.compare).resolve()))):
            env = {**os.environ, "PYTHONPATH": tree}
            done = subprocess.run(command, env=env, check=True, capture_output=True, text=True)
            runs[side].append(json.loads(done.stdout))
    print(json.dumps({
        "this": str(ROOT), "other": str(Path(args.compare).resolve()), "runs": runs,
        "best_ratio_this": min(float(str(r["ratio_triage_over_stdlib"])) for r in runs["this"]),
        "best_ratio_other": min(float(str(r["ratio_triage_over_stdlib"])) for r in runs["other"]),
    }, indent=2))


if __name__ == "__main__":
    main()
