"""The project's exceptions, in one place.

::

    TriageError                  base of everything raised on purpose by triage
    ├── ConfigError              the configuration file is invalid (file, line, key path)
    │   └── NoConfigError        no configuration file was given and none was found
    ├── TemplateError            a reply template cannot be rendered
    ├── MessageLimitError        a message is over a configured limit (quarantined, never fatal)
    ├── SourceError              a path given on the command line cannot be read as mail
    └── StoreError               the ticket store cannot be opened or is at the wrong schema

A failure on one message never stops the service: the pipeline turns any exception into a
quarantine outcome that records the error.
"""

from __future__ import annotations

from pathlib import Path


class TriageError(Exception):
    """Base class of the project's exceptions."""


class ConfigError(TriageError):
    """An invalid configuration: names the file, the line and the key path."""

    def __init__(self, path: Path | str, line: int | None, key: str, message: str) -> None:
        self.path = str(path)
        self.line = line
        self.key = key
        self.message = message
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {key or '(top level)'}: {message}")


class NoConfigError(ConfigError):
    """No configuration file was given and none was found; says how to give one."""

    def __init__(self, message: str) -> None:
        self.path = ""
        self.line = None
        self.key = ""
        self.message = message
        Exception.__init__(self, message)


class TemplateError(TriageError):
    """A reply template is missing or failed to render."""


class MessageLimitError(TriageError):
    """A message exceeds a configured limit; the reason is shown to the agent."""

    def __init__(self, limit: str, message: str) -> None:
        self.limit = limit
        super().__init__(message)


class SourceError(TriageError):
    """A path given to explain/eval/replay is not a readable message, folder or mbox."""


class StoreError(TriageError):
    """The store cannot be opened, or its schema is not the one this code expects."""
