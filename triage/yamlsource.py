"""Load YAML while remembering the line of every key, so that errors can point at it.

PyYAML's composer gives nodes with their marks; this module turns the node tree into plain
Python values and a map from key path (a tuple of keys and indexes) to the 1-based line.
Duplicate keys, which PyYAML silently accepts, are reported here.
"""

from __future__ import annotations

from collections.abc import Hashable
from pathlib import Path
from typing import Any

import yaml

from triage.errors import ConfigError

KeyPath = tuple[str | int, ...]


def format_key(path: KeyPath) -> str:
    """``('departments', 2, 'mailbox')`` -> ``departments[2].mailbox``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


class LocatedYaml:
    """The data of a YAML file with the line of each key path."""

    def __init__(self, path: Path, data: Any, lines: dict[KeyPath, int]) -> None:
        self.path = path
        self.data = data
        self.lines = lines

    def line_of(self, key: KeyPath) -> int | None:
        """The line of ``key``, or of its nearest ancestor that has one."""
        while key:
            if key in self.lines:
                return self.lines[key]
            key = key[:-1]
        return self.lines.get((), None)

    def error(self, key: KeyPath, message: str) -> ConfigError:
        return ConfigError(self.path, self.line_of(key), format_key(key), message)


def load(path: Path) -> LocatedYaml:
    """Read and compose ``path``; raise :class:`ConfigError` on unreadable or invalid YAML."""
    try:
        text = path.read_text("utf-8")
    except OSError as exc:
        raise ConfigError(path, None, "", f"cannot read the file: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(path, None, "", f"the file is not UTF-8 ({exc.reason})") from exc
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else None
        raise ConfigError(path, line, "", f"invalid YAML: {exc.problem}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(path, None, "", f"invalid YAML: {exc}") from exc
    lines: dict[KeyPath, int] = {}
    if node is None:
        return LocatedYaml(path, {}, {(): 1})
    data = _construct(node, (), lines, path)
    return LocatedYaml(path, data, lines)


def _construct(node: yaml.Node, key: KeyPath, lines: dict[KeyPath, int], path: Path) -> Any:
    lines.setdefault(key, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        out: dict[Hashable, Any] = {}
        for knode, vnode in node.value:
            name = _scalar(knode)
            if not isinstance(name, (str, int)):
                raise ConfigError(path, knode.start_mark.line + 1, format_key(key),
                                  f"a key must be text, not {type(name).__name__}")
            name = str(name)
            child = (*key, name)
            if name in out:
                raise ConfigError(path, knode.start_mark.line + 1, format_key(child),
                                  "duplicate key")
            lines[child] = knode.start_mark.line + 1
            out[name] = _construct(vnode, child, lines, path)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_construct(item, (*key, i), lines, path) for i, item in enumerate(node.value)]
    return _scalar(node)


def _scalar(node: yaml.Node) -> Any:
    # A constructor needs a stream only to read; an empty one is enough to build one scalar.
    return yaml.SafeLoader("").construct_object(node, deep=True)
