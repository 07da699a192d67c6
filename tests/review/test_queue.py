"""The queue in SQL: who sees what, pages, counts, order, and a constant number of statements."""

from __future__ import annotations

import re

from sqlalchemy import event, select

from triage.pipeline import triage_bytes
from triage.review import views
from triage.store import Agent
from triage.store.store import Seen

from .conftest import DEV

BOX38 = "ddfip38.pgp.spl-pes@dgfip.finances.gouv.fr"


def _agent(s, login: str) -> Agent:
    agent = s.scalar(select(Agent).where(Agent.login == login))
    assert agent is not None
    return agent


def test_queue_pages_counts_and_scope_in_a_few_statements(store, settings):
    """Sixty requests to 38 and one undecided message received in 38's mailbox: agent 38 gets
    them newest first in pages of 50 with exact counts, agent 73 none of them, and a page
    costs the same few statements whatever the number of tickets."""
    raw = (DEV / "065.eml").read_bytes()
    for n in range(60):
        one = re.sub(rb"(?im)^Message-ID:.*$", f"Message-ID: <q{n}@test>".encode(), raw,
                     count=1)
        store.record(triage_bytes(one, settings), one, origin=f"test:q{n}")
    undecided = (b"From: Jean Dupont <jean.dupont@example.org>\r\nTo: " + BOX38.encode() +
                 b", ddfip73.pgp.spl-pes@dgfip.finances.gouv.fr\r\nSubject: mot de passe\r\n"
                 b"Message-ID: <undecided@test>\r\n\r\nJ'ai oubli\xc3\xa9 mon mot de passe "
                 b"jdupont-xt.\r\n")
    outcome = triage_bytes(undecided, settings, BOX38)
    assert outcome.decision.department is None
    ticket, _ = store.record(outcome, undecided, origin="test:undecided",
                             seen=Seen(BOX38, 1, 1))
    statements: list[str] = []
    event.listen(store.engine, "before_cursor_execute",
                 lambda *args: statements.append(args[2]))
    with store.session() as s:
        agent38, agent73 = _agent(s, "agent38"), _agent(s, "agent73")
        first = views.queue(s, settings, agent38, views.Filters())
        used = len(statements)
        second = views.queue(s, settings, agent38, views.Filters(page=2))
        other = views.queue(s, settings, agent73, views.Filters())
    mine = first.rows + second.rows
    assert len(first.rows) == 50 and first.pages == 2 and first.total == len(mine)
    assert mine[0].id == ticket.id  # the newest first
    assert [r.created_at for r in mine] == sorted((r.created_at for r in mine), reverse=True)
    assert sum(first.counts.values()) == first.total and first.counts["human"] >= 1
    assert ticket.id not in {r.id for r in other.rows}
    assert used <= 8, statements
