"""Messages from the command line: .eml files, folders of them, and mbox files.

A message is first a :class:`Location` (a file, or a span of an mbox), read only when needed:
bulk commands send locations to their worker processes, which read the bytes themselves, and
counting the messages of an archive reads none of them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from triage.config import compile_bytes_pattern
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


@dataclass(frozen=True)
class Location:
    """Where one message lies: the whole file at ``path``, or, in an mbox, the bytes from
    ``start`` (its ``From `` line, which is not part of the message) to ``stop``."""

    name: str  # as :attr:`Source.name`
    path: str
    start: int = 0
    stop: int | None = None  # None: the whole file

    def read(self) -> bytes:
        try:
            with open(self.path, "rb") as fh:
                if self.stop is None:
                    return fh.read()
                fh.seek(self.start)
                fh.readline()
                return fh.read(max(0, self.stop - fh.tell()))
        except OSError as exc:
            raise SourceError(f"{self.name}: {exc.strerror or exc}") from exc


def is_mbox(path: Path) -> bool:
    if path.suffix.lower() in (".mbox", ".mbx"):
        return True
    try:
        with path.open("rb") as fh:
            return fh.read(5) == b"From "
    except OSError:
        return False


def iter_locations(paths: list[str]) -> Iterator[Location]:
    """Where each message of each path lies; folders are walked in name order."""
    for given in paths:
        path = Path(given)
        if path.is_dir():
            for child in sorted(p for p in path.rglob("*") if p.is_file()):
                if looks_like_mail(child):
                    yield from _file(str(child), child)
        else:
            check_paths([given])
            yield from _file(given, path)


def check_paths(paths: list[str]) -> None:
    """Raise :class:`SourceError` for the first path that is neither a file nor a folder
    (before any work, without reading a message)."""
    for given in paths:
        if not (Path(given).is_dir() or Path(given).is_file()):
            raise SourceError(f"{given}: no such file or folder")


def iter_sources(paths: list[str]) -> Iterator[Source]:
    """Each message of each path, read; folders are walked in name order."""
    for location in iter_locations(paths):
        yield Source(location.name, location.read())


def count_sources(paths: list[str]) -> int:
    """How many messages ``paths`` hold (a missing path raises :class:`SourceError`)."""
    return sum(1 for _ in iter_locations(paths))


def _file(name: str, path: Path) -> Iterator[Location]:
    if not is_mbox(path):
        yield Location(name, str(path))
        return
    try:
        for i, (start, stop) in enumerate(mbox_spans(path), 1):
            yield Location(f"{name}#{i}", str(path), start, stop)
    except OSError as exc:
        raise SourceError(f"{name}: {exc.strerror or exc}") from exc


def mbox_spans(path: Path, block_size: int = 1 << 20) -> Iterator[tuple[int, int]]:
    """``(start, stop)`` of each message of an mbox, as the standard library's
    :class:`mailbox.mbox` finds them: a message begins at each line starting with ``From ``
    and ends before the next one, or before the empty line that precedes it, or at the end of
    the file (before a last empty line). Found block by block with RE2 (:func:`_finds`) rather
    than line by line, because a 2 GB archive is 30 million lines for Python to read."""
    with open(path, "rb") as fh:
        start = 0 if fh.read(len(_FROM) - 1) == _FROM[1:] else None
        fh.seek(0)
        before = b""  # the last bytes of the previous block
        at = 0  # where ``block`` begins in the file
        while block := fh.read(block_size):
            # A "\nFrom " across the boundary, then those inside the block.
            edge = before + block[:len(_FROM) - 1]
            hits = [(i - len(before), edge[i - 1:i]) for i in _finds(edge)
                    if i < len(before) < i + len(_FROM)]
            hits += [(i, block[i - 1:i] if i else before[-1:]) for i in _finds(block)]
            for i, previous in hits:
                line = at + i + 1
                if start is not None:
                    yield start, line - 1 if previous == b"\n" else line
                start = line
            before = (before + block[-len(_FROM) - 1:])[-len(_FROM) - 1:]
            at += len(block)
    if start is not None:
        yield start, at - 1 if before.endswith(b"\n\n") else at


_FROM = b"\nFrom "


# RE2 crosses an attachment's bytes three to five times as fast as ``bytes.find``, on which
# the parent process of a bulk run spent most of its own time over a whole archive.
_FROM_LINE = compile_bytes_pattern(_FROM)  # only literal characters


def _finds(data: bytes) -> Iterator[int]:
    """Where ``\\nFrom `` begins in ``data``, in order (it cannot overlap itself)."""
    return (match.start() for match in _FROM_LINE.finditer(data))
