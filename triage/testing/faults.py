"""Fault injection for crash tests, from the test harness only (never in production code).

Runs the ``triage`` command with a fault planted in the process:

    python -m triage.testing.faults after-smtp-accept run --once --config FILE

``after-smtp-accept``: the process SIGKILLs itself right after the relay's 250 to the final
dot, before the outbox records the delivery (the sender must then never send it again).
``after-imap-move``: it SIGKILLs itself right after the server answered its first move of
messages to an outcome folder, before the move is recorded in the store.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Any


def _after_smtp_accept() -> None:
    from triage.send import sender

    transaction = sender._transaction

    async def killed_after(*args: Any, **kwargs: Any) -> str:
        reply: str = await transaction(*args, **kwargs)
        os.kill(os.getpid(), signal.SIGKILL)
        return reply

    sender._transaction = killed_after


def _after_imap_move() -> None:
    from triage.mailbox.connection import Connection

    move = Connection.move

    def killed_after(self: Connection, *args: Any, **kwargs: Any) -> None:
        move(self, *args, **kwargs)
        os.kill(os.getpid(), signal.SIGKILL)

    Connection.move = killed_after  # type: ignore[method-assign]


FAULTS = {"after-smtp-accept": _after_smtp_accept, "after-imap-move": _after_imap_move}


def main(argv: list[str]) -> None:
    if not argv or argv[0] not in FAULTS:
        raise SystemExit(f"usage: python -m triage.testing.faults {{{','.join(FAULTS)}}} "
                         "TRIAGE-ARGS…")
    FAULTS[argv[0]]()
    from triage.cli import main as triage

    triage(argv[1:])


if __name__ == "__main__":
    main(sys.argv[1:])
