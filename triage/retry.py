"""Retrying: the one backoff and the one "is that process still alive" check.

Every retry of the project (a mailbox pass, an IDLE connection, a reply to send) waits
:func:`delay`: exponential, capped, with jitter so that instances restarting together do not
hammer a server in step. Every claim held by a process (a mailbox lease, an outbox item) is
named ``host:pid[:…]``; :func:`process_gone` recognises at once a dead process of this machine.
"""

from __future__ import annotations

import os
import random
import socket
import time


def delay(attempt: int, cap: float, base: float = 1.0) -> float:
    """Seconds to wait before retry number ``attempt`` (1, 2, …)."""
    return min(cap, base * 2.0 ** max(0, attempt - 1)) * random.uniform(0.5, 1.0)


class Backoff:
    """Consecutive failures of one thing and when it may be tried again."""

    def __init__(self, cap: float, base: float = 1.0) -> None:
        self.cap, self.base = cap, base
        self.attempt = 0
        self.until = 0.0

    def failed(self, cap: float | None = None) -> float:
        """Count a failure; returns the pause (``cap`` overrides, e.g. for permanent errors)."""
        self.attempt += 1
        pause = delay(self.attempt, self.cap if cap is None else cap, self.base)
        self.until = time.monotonic() + pause
        return pause

    def succeeded(self) -> None:
        self.attempt, self.until = 0, 0.0

    @property
    def waiting(self) -> bool:
        return time.monotonic() < self.until


def process_name() -> str:
    """``host:pid``: how a process names itself in leases and claims."""
    return f"{socket.gethostname()}:{os.getpid()}"


def process_gone(owner: str | None) -> bool:
    """True when ``owner`` (``host:pid[:…]``) was a process of this machine that has ended.

    A process of another machine, or one we may not signal, counts as alive: its claim then
    expires by time only.
    """
    if not owner:
        return True
    parts = owner.split(":")
    if len(parts) < 2 or parts[0] != socket.gethostname() or not parts[1].isdigit():
        return False
    try:
        os.kill(int(parts[1]), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False
