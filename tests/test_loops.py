"""Loop protection: a sender gets at most N drafts a day; automatic mail is never drafted."""

from __future__ import annotations

from sqlalchemy import select

from tests.review.conftest import make_settings
from triage.pipeline import triage_bytes
from triage.rules import reasons_of
from triage.store import DraftRow, Store, Ticket

REQUEST = ("From: Paul Martin <paul.martin@ville-voiron.fr>\r\n"
           "To: ddfip38.pgp.spl-pes@dgfip.finances.gouv.fr\r\nSubject: mot de passe\r\n"
           "Message-ID: <loop-{n}@test>\r\n\r\nJ'ai oublie mon mot de passe, pmartin-xt ({n})\r\n")


def test_fourth_draft_of_the_day_goes_to_an_agent(tmp_path, store_url):
    """With the default of 3 drafts per sender and day, the fourth request goes to an agent:
    the decision chain decides it from the store's sender history."""
    settings = make_settings(tmp_path, store={"url": store_url})
    store = Store.open(settings)
    actions = []
    for n in range(5):
        raw = REQUEST.format(n=n).encode()
        outcome = triage_bytes(raw, settings, history=store.history())  # the daemon's port
        ticket, _ = store.record(outcome, raw, origin=f"test:{n}")
        actions.append(ticket.action)
    assert actions == ["draft", "draft", "draft", "human", "human"]
    with store.session() as s:
        assert len(s.scalars(select(DraftRow)).all()) == 3
        last = s.scalar(select(Ticket).order_by(Ticket.id.desc()).limit(1))
        assert any(r.startswith("déjà 3 brouillons") for r in reasons_of("loop", last.reasons))


def test_our_own_replies_and_auto_replies_are_never_drafted(tmp_path):
    """A message carrying our loop header, and a vacation reply to it, are ignored."""
    settings = make_settings(tmp_path)
    ours = (b"From: Paul Martin <paul.martin@ville-voiron.fr>\r\n"
            b"To: ddfip38.pgp.spl-pes@dgfip.finances.gouv.fr\r\nSubject: Re: mot de passe\r\n"
            b"X-Triage-Loop: triage.dgfip.finances.gouv.fr\r\n\r\nJ'ai oublie mon mot de passe\r\n")
    assert triage_bytes(ours, settings).decision.action.value == "ignore"
    vacation = (b"From: Paul Martin <paul.martin@ville-voiron.fr>\r\n"
                b"To: ddfip38.pgp.spl-pes@dgfip.finances.gouv.fr\r\n"
                b"Subject: Auto: Re: mot de passe [r\xc3\xa9f. T12]\r\n"
                b"Auto-Submitted: auto-replied\r\n"
                b"\r\nJe suis absent. Pour un mot de passe oublie, ecrivez a la DDFIP.\r\n")
    assert triage_bytes(vacation, settings).decision.action.value == "ignore"


def test_replay_decides_the_daily_limit_as_of_each_messages_date(tmp_path):
    """`triage replay` of four requests of one sender dated the same day stores three drafts
    and a fourth for an agent, as the daemon would; four more, one a day on the days after,
    are drafts again (the limit counts as of each message's date, not of the replay)."""
    import subprocess
    import sys

    settings = make_settings(tmp_path)
    files = []
    for n, day in enumerate((1, 1, 1, 1, 2, 3, 4, 5)):
        path = tmp_path / f"m{n}.eml"
        path.write_bytes(REQUEST.format(n=n).replace(
            "Subject:", f"Date: Mon, {day:02d} Dec 2025 10:00:0{n} +0100\r\nSubject:").encode())
        files.append(str(path))
    run = subprocess.run([sys.executable, "-m", "triage", "replay", "--config", settings.source,
                          *files], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    store = Store.open(settings)
    with store.session() as s:
        actions = [t.action for t in s.scalars(select(Ticket).order_by(Ticket.id))]
    store.dispose()
    assert actions == ["draft"] * 3 + ["human"] + ["draft"] * 4
