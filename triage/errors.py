"""The project's exceptions, in one place.

::

    TriageError                  base of everything raised on purpose by triage
    ├── ConfigError              the configuration file is invalid (file, line, key path)
    │   └── NoConfigError        no configuration file was given and none was found
    ├── TemplateError            a reply template cannot be rendered
    ├── MessageLimitError        a message is over a configured limit (quarantined, never fatal)
    ├── SourceError              a path given on the command line cannot be read as mail
    ├── StoreError               the ticket store cannot be opened or is at the wrong schema
    └── PeerError                an IMAP or SMTP server failed us (.peer, .command, .folder)
        ├── ImapError                      anything from an IMAP server
        │   ├── ImapTransient    Transient   network loss, timeout, [UNAVAILABLE], [INUSE], BYE
        │   └── ImapPermanent    Permanent   refused for good until an admin acts:
        │       ├── LoginRefused               AUTHENTICATIONFAILED, no credential
        │       ├── FolderRefused              CREATE/SELECT/APPEND/MOVE answered NO
        │       └── CapabilityMissing          the server lacks what we need
        └── SmtpError                      anything from the SMTP relay
            ├── SmtpTransient    Transient   relay down, timeout, 4xx
            └── SmtpPermanent    Permanent   5xx

    Transient, Permanent         the two kinds, as mixins: ``except Transient`` retries soon
                                 (backoff up to ``imap.max_backoff``), ``except Permanent``
                                 tells an admin (``triage status`` exits 1, ``/readyz`` fails)
                                 and retries slowly, since the admin may fix it meanwhile.

A failure on one message never stops the service: the pipeline turns any exception into a
quarantine outcome that records the error. :func:`describe` writes a peer error as one line
that starts with its kind (``transient:`` or ``permanent:``); :func:`kind_of` reads it back
from the store, so the worker, ``status`` and ``/readyz`` agree on what an error means.
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


class Transient(Exception):
    """Try again later: the peer may answer next time without anyone doing anything."""

    kind = "transient"


class Permanent(Exception):
    """The peer refused for good: an admin must act (retried slowly meanwhile)."""

    kind = "permanent"


class PeerError(TriageError):
    """A server we talk to failed; names it, the command and the folder when there is one."""

    kind = "transient"

    def __init__(self, peer: str, message: str, *, command: str | None = None,
                 folder: str | None = None) -> None:
        self.peer, self.command, self.folder, self.detail = peer, command, folder, message
        where = " ".join(x for x in (command, f"« {folder} »" if folder else None) if x)
        super().__init__(f"{peer}: {where + ': ' if where else ''}{message}")


class ImapError(PeerError):
    """An IMAP server failed or refused."""


class ImapTransient(ImapError, Transient):
    """The IMAP server is unreachable, timed out, busy, or dropped the connection."""

    kind = "transient"


class ImapPermanent(ImapError, Permanent):
    """The IMAP server refused a command in a way that retrying will not change."""

    kind = "permanent"


class LoginRefused(ImapPermanent):
    """The login was refused, or no credential could be read."""


class FolderRefused(ImapPermanent):
    """A folder cannot be created, opened or written (names the folder and the command)."""


class CapabilityMissing(ImapPermanent):
    """The server lacks a capability the intake cannot do without safely."""


class SmtpError(PeerError):
    """The SMTP relay failed or refused."""


class SmtpTransient(SmtpError, Transient):
    """The relay is down, timed out, or answered 4xx: try again later."""

    kind = "transient"


class SmtpPermanent(SmtpError, Permanent):
    """The relay answered 5xx: an agent must look at the reply."""

    kind = "permanent"


def describe(exc: BaseException) -> str:
    """One line for the store and the logs: ``"<kind>: <message>"``."""
    kind = exc.kind if isinstance(exc, (PeerError, Transient, Permanent)) else "transient"
    return f"{kind}: {exc}".splitlines()[0] if str(exc) else f"{kind}: {type(exc).__name__}"


def kind_of(described: str | None) -> str | None:
    """The kind of an error written by :func:`describe` (older rows count as transient)."""
    if not described:
        return None
    return "permanent" if described.startswith("permanent:") else "transient"
