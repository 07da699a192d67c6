"""The lifecycle's table and its owners: one writer of the state columns, a database that
refuses a second reply per draft, and the actions a ticket offers."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from tests.review.conftest import DEV, make_settings
from triage import lifecycle
from triage.lifecycle import Event, OutboxState, TicketState
from triage.pipeline import triage_bytes
from triage.store import DraftRow, OutboxItem, Store, Ticket

PACKAGE = Path(__file__).resolve().parent.parent / "triage"
WRITE = re.compile(r"\b(?!self\b)\w+\.(status|state)\s*=(?!=)")


def test_only_the_lifecycle_writes_state_columns():
    """No module but triage/lifecycle.py assigns a ticket's, draft's or outbox item's state."""
    writers = {str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py")
               if WRITE.search(p.read_text("utf-8"))}
    assert writers == {"lifecycle.py"}


def test_table_keeps_quarantine_and_sent_replies_closed():
    """A quarantined ticket cannot be drafted or approved; nothing but a follow-up moves a sent
    one; approve after approve is a no-op, not a move."""
    assert lifecycle.target(TicketState.QUARANTINED, Event.APPROVE) is None
    assert lifecycle.target(TicketState.QUARANTINED, Event.TEMPLATE) is None
    assert lifecycle.target(TicketState.QUARANTINED, Event.FOLLOW_UP) is TicketState.QUARANTINED
    assert {e for e in Event if lifecycle.target(TicketState.SENT, e) is not None} == {
        Event.DELIVERED, Event.FOLLOW_UP}
    assert (TicketState.APPROVED, Event.APPROVE) in lifecycle.NO_OPS
    assert lifecycle.target(OutboxState.SENDING, Event.CANCEL) is None


def test_database_refuses_a_second_live_reply_for_one_draft(tmp_path, store_url):
    """Even written around the lifecycle, a second queued reply for one draft is refused by
    the database; a failed one does not count."""
    settings = make_settings(tmp_path, store={"url": store_url})
    store = Store.open(settings)
    raw = (DEV / "065.eml").read_bytes()
    store.record(triage_bytes(raw, settings), raw, origin="test:065")

    def item(n: int, state: str) -> OutboxItem:
        return OutboxItem(ticket_id=ticket.id, draft_id=draft.id, department="38",
                          message_id=f"m{n}@test", from_addr="a@b", to_addr="c@d", raw=b"x",
                          state=state, approved_by="test")

    with store.session() as s:
        ticket = s.scalar(select(Ticket))
        draft = s.scalar(select(DraftRow))
        s.add_all([item(1, OutboxState.FAILED), item(2, OutboxState.SENT)])
        s.commit()
        s.add(item(3, OutboxState.QUEUED))
        with pytest.raises(IntegrityError):
            s.commit()
    store.dispose()


def test_allowed_actions_follow_the_state(tmp_path, store_url):
    """An open drafted ticket offers approve; a quarantined one only release (to admins),
    reassign and handled."""
    settings = make_settings(tmp_path, store={"url": store_url})
    store = Store.open(settings)
    for name in ("065.eml", "047.eml"):
        raw = (DEV / name).read_bytes()
        store.record(triage_bytes(raw, settings), raw, origin=f"test:{name}")
    with store.session() as s:
        drafted, quarantined = s.scalars(select(Ticket).order_by(Ticket.id)).all()
        assert Event.APPROVE in lifecycle.allowed(s, drafted, admin=False)
        assert lifecycle.allowed(s, quarantined, admin=False) == {Event.REASSIGN, Event.HANDLED}
        assert Event.RELEASE in lifecycle.allowed(s, quarantined, admin=True)
    store.dispose()
