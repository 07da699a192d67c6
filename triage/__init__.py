"""triage: e-mail triage and ticket routing for the Chorus Pro -xt password helpdesks.

The package follows the data flow of a helpdesk message::

    mailbox -> parse -> rules -> decision -> draft -> review -> send

``triage.parse`` turns bytes into a :class:`~triage.parse.MessageView`; each module of
``triage.rules`` answers one question about it; ``triage.decision`` applies the precedence of
the specification to the findings; ``triage.draft`` renders the reply; ``triage.pipeline`` ties
the pure steps together and ``triage.store`` records the outcome.
"""

__version__ = "0.1.0"
