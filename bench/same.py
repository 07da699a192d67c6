"""Dump everything the engine concludes of many messages, to prove that a speed change changed
no result: run it before and after, then ``diff`` the two files.

For each message, one JSON line: every :class:`~triage.parse.MessageView` field, every rule's
finding with its evidence, the decision as ``explain --json`` prints it and the draft, all
with a fixed "now" (and no sender history), so that two runs of the same code print the same
bytes. The messages: ``tests/data``, ``../shared/corpora``, ``../shared/dataset/dev`` (every
file, labelled or not) and, with ``--mbox``, the first ``--count`` messages of an mbox (the
replay archive of ``bench/replay.py``)::

    PYTHONHASHSEED=0 python bench/same.py /tmp/before.txt --mbox ARCHIVE --count 3000
    (change the code)
    PYTHONHASHSEED=0 python bench/same.py /tmp/after.txt --mbox ARCHIVE --count 3000
    diff /tmp/before.txt /tmp/after.txt && echo same

``PYTHONHASHSEED=0`` keeps the order of any set printed in a finding's evidence.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from triage.cli import _record  # noqa: E402
from triage.config import load_settings  # noqa: E402
from triage.pipeline import conclude, examine  # noqa: E402
from triage.sources import iter_locations  # noqa: E402

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
FOLDERS = (ROOT / "tests" / "data", ROOT.parent / "shared" / "corpora",
           ROOT.parent / "shared" / "dataset" / "dev")


def _files() -> Iterator[tuple[str, bytes]]:
    for folder in FOLDERS:
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            if path.suffix.lower() in {".md", ".tsv", ".json", ".yaml", ".yml", ".py"}:
                continue
            yield str(path.relative_to(folder.parent)), path.read_bytes()


def _mbox(path: Path, count: int) -> Iterator[tuple[str, bytes]]:
    for location in islice(iter_locations([str(path)]), count):
        yield location.name, location.read()


def _plain(value: Any) -> Any:
    """A JSON-able form of a finding's value or evidence, in a stable order."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (frozenset, set)):
        return sorted((_plain(v) for v in value), key=repr)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return repr(value)


def dump(settings: Any, name: str, raw: bytes) -> dict[str, Any]:
    examined = examine(raw, settings, at=NOW)
    outcome = conclude(examined, settings)
    return {
        "name": name,
        "view": _plain(examined.message),
        "findings": _plain(examined.findings.by_rule if examined.findings else None),
        "error": examined.error,
        "record": _record(name, outcome),
        "draft": _plain(outcome.draft),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--mbox", type=Path)
    parser.add_argument("--count", type=int, default=3000)
    parser.add_argument("--config", type=Path, default=ROOT / "config" / "departments.yaml")
    args = parser.parse_args()
    settings = load_settings(args.config)
    messages: Iterator[tuple[str, bytes]] = _files()
    n = 0
    with args.out.open("w", encoding="utf-8") as out:
        for name, raw in messages:
            out.write(json.dumps(dump(settings, name, raw), ensure_ascii=False) + "\n")
            n += 1
        if args.mbox is not None:
            for name, raw in _mbox(args.mbox, args.count):
                out.write(json.dumps(dump(settings, name, raw), ensure_ascii=False) + "\n")
                n += 1
    print(f"{n} messages dumped to {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
