"""Messages from the command line: .eml files, folders of them, and mbox files."""

from __future__ import annotations

import mailbox
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from triage.errors import SourceError

_MAIL_SUFFIXES = {".eml", ".msg", ".mail", ".txt", ".box", ".mbox", ".mbx", ""}
# Files that sit beside mail in a folder but are not mail (labels, notes).
_NOT_MAIL = {".tsv", ".md", ".json", ".py", ".yaml", ".yml", ".csv", ".html", ".pdf", ".png",
             ".jpg", ".gif", ".gz", ".zip", ".sh", ".toml", ".ini", ".cfg", ".log"}


def looks_like_mail(path: Path) -> bool:
    """Mail by its name: a mail suffix, none, or a maildir name (``123.host:2,S``)."""
    name = path.name
    if name.startswith("."):
        return False
    if ":2," in name or "!2," in name or path.parent.name in ("cur", "new"):
        return True
    suffix = path.suffix.lower()
    return suffix in _MAIL_SUFFIXES or (suffix not in _NOT_MAIL and not suffix[1:].isalpha())


@dataclass(frozen=True)
class Source:
    name: str  # the path as given, with "#N" for the Nth message of an mbox
    raw: bytes


def is_mbox(path: Path) -> bool:
    if path.suffix.lower() in (".mbox", ".mbx"):
        return True
    try:
        with path.open("rb") as fh:
            return fh.read(5) == b"From "
    except OSError:
        return False


def iter_sources(paths: list[str]) -> Iterator[Source]:
    """Each message of each path; folders are walked in name order."""
    for given in paths:
        path = Path(given)
        if path.is_dir():
            for child in sorted(p for p in path.rglob("*") if p.is_file()):
                if looks_like_mail(child):
                    yield from _file(str(child), child)
        elif path.is_file():
            yield from _file(given, path)
        else:
            raise SourceError(f"{given}: no such file or folder")


def _file(name: str, path: Path) -> Iterator[Source]:
    if is_mbox(path):
        box = mailbox.mbox(str(path), create=False)
        try:
            for i, key in enumerate(box.iterkeys(), 1):
                yield Source(f"{name}#{i}", box.get_bytes(key))
        finally:
            box.close()
        return
    try:
        yield Source(name, path.read_bytes())
    except OSError as exc:
        raise SourceError(f"{name}: {exc.strerror or exc}") from exc


def count_sources(paths: list[str]) -> int:
    return sum(1 for _ in iter_sources(paths))
