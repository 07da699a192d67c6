"""A real SMTP server for tests and the demo: aiosmtpd's Controller on a loopback port.

It keeps every message it accepts (envelope and bytes) and can be told to answer 4xx or 5xx to
the next transactions, as a relay under load or a refusing relay would.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from aiosmtpd.controller import Controller

from triage.testing.dovecot import free_port


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes


@dataclass
class RelayHandler:
    messages: list[Received] = field(default_factory=list)
    temporary_failures: int = 0  # answer 451 to this many DATA commands first
    refuse: bool = False  # answer 550 to every DATA
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            if self.refuse:
                return "550 5.7.1 Message refused by policy"
            if self.temporary_failures > 0:
                self.temporary_failures -= 1
                return "451 4.3.0 Try again later"
            self.messages.append(Received(envelope.mail_from, list(envelope.rcpt_tos),
                                          bytes(envelope.original_content or envelope.content)))
        return "250 2.0.0 Ok: queued"


class SmtpRelay:
    """``with SmtpRelay() as relay:`` → ``relay.port``, ``relay.messages``; stop()/start()."""

    def __init__(self, port: int | None = None) -> None:
        self.handler = RelayHandler()
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self.controller: Controller | None = None

    def start(self) -> None:
        self.controller = Controller(self.handler, hostname=self.host, port=self.port,
                                     decode_data=False)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    @property
    def messages(self) -> list[Received]:
        return self.handler.messages

    def __enter__(self) -> SmtpRelay:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
