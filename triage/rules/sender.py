"""Is there exactly one sender address, and can it be parsed?

A message with no From, several From headers, several addresses in From, or an address that
does not parse (checked with email-validator, not ``parseaddr`` alone) cannot be answered
safely: the reply would go to a guess. Such messages are quarantined.
"""

from __future__ import annotations

from triage.parse import Address, MessageView
from triage.rules.base import Context, Finding, finding

NAME = "sender"
LABEL = "Expéditeur"
DESCRIPTION = "une et une seule adresse d'expéditeur lisible"


def check(message: MessageView, ctx: Context) -> Finding[Address | None]:
    address = message.sender_address
    if address is None:
        return finding(NAME, None, f"expéditeur illisible : {message.from_problem}")
    return finding(NAME, address, f"expéditeur {address}")
