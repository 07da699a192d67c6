"""Bytes in, :class:`MessageView` out; the parser never gives up.

Any bytes become a view: headers decoded from RFC 2047 words or raw 8-bit, bodies decoded from
whatever charset they claim or really use, HTML turned into text, the sender's new text told
apart from quoted replies and forwarded blocks. What could not be read is recorded in
``defects``; what exceeds a configured limit is recorded in ``violations`` (the decision
quarantines such messages) instead of being processed.
"""

from triage.parse.message import Address, Attachment, MessageView
from triage.parse.parts import attachment_content, html_body
from triage.parse.reader import display_name, parse_message

__all__ = ["Address", "Attachment", "MessageView", "attachment_content", "display_name",
           "html_body", "parse_message"]
