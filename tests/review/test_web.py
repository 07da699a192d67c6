"""The review application: department scope, CSRF, sessions, moderation actions, safe display."""

from __future__ import annotations

from sqlalchemy import select

from triage.review.agents import disable_agent
from triage.store import AuditEvent, DraftRow, OutboxItem, Ticket

from .conftest import PASSWORD, csrf_of, login, ticket_id


def test_login_required(client):
    """Pages redirect to the login form without a session."""
    r = client.get("/", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login")


def test_cookie_flags_and_security_headers(client):
    """The session cookie is HttpOnly and SameSite; pages carry a strict CSP."""
    page = client.get("/login")
    cookie = page.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"


def test_wrong_password_and_rate_limit(client, settings):
    """Bad passwords are refused; past the limit even the right one waits (429)."""
    for _ in range(settings.web.login_attempts):
        page = client.get("/login")
        r = client.post("/login", data={"login": "agent38", "password": "nope",
                                        "csrf": csrf_of(page.text)})
        assert r.status_code == 401
    page = client.get("/login")
    r = client.post("/login", data={"login": "agent38", "password": PASSWORD,
                                    "csrf": csrf_of(page.text)})
    assert r.status_code == 429 and "Trop de tentatives" in r.text


def test_queue_shows_only_own_department(client, store):
    """Agent 38 sees the 38 tickets and not the 26 or 73 ones; counts are shown."""
    login(client, "agent38")
    page = client.get("/").text
    assert f"/tickets/{ticket_id(store, '063.eml')}" in page
    assert f"/tickets/{ticket_id(store, '020.eml')}\"" not in page  # Drôme
    assert f"/tickets/{ticket_id(store, '006.eml')}\"" not in page  # Savoie
    assert "Brouillon à valider : " in page


def test_other_department_gets_403_everywhere(client, store):
    """Page, attachment and every action of a 73 ticket answer 403 to agent 38."""
    csrf = login(client, "agent38")
    other = ticket_id(store, "006.eml")
    assert client.get(f"/tickets/{other}").status_code == 403
    assert client.get(f"/tickets/{other}/attachments/0").status_code == 403
    for verb in ("approve", "save", "reject", "reassign", "template", "handled", "release"):
        r = client.post(f"/tickets/{other}/{verb}", data={"csrf": csrf, "reason": "x",
                                                         "department": "38"})
        assert r.status_code == 403, verb
    with store.session() as s:
        assert s.get(Ticket, other).status == "open"


def test_post_without_csrf_is_403(client, store):
    """A form post without (or with a wrong) CSRF token changes nothing."""
    login(client, "agent38")
    own = ticket_id(store, "063.eml")
    assert client.post(f"/tickets/{own}/handled", data={}).status_code == 403
    assert client.post(f"/tickets/{own}/handled", data={"csrf": "forged"}).status_code == 403
    with store.session() as s:
        assert s.get(Ticket, own).status == "open"


def test_approve_requires_address_confirmation_then_queues(client, store):
    """Approving a reset draft needs the address check; then the edited text is queued."""
    csrf = login(client, "agent38")
    own = ticket_id(store, "065.eml")
    r = client.post(f"/tickets/{own}/approve", data={"csrf": csrf, "body": "Texte modifié."})
    assert "confirmez que l" in r.text
    r = client.post(f"/tickets/{own}/approve", data={"csrf": csrf, "body": "Texte modifié.",
                                                    "address_confirmed": "yes",
                                                    "reset_confirmed": "yes"})
    assert "Réponse validée" in r.text
    with store.session() as s:
        item = s.scalar(select(OutboxItem).where(OutboxItem.ticket_id == own))
        assert item is not None and item.state == "approved"
        assert b"Texte modifi" in item.raw and item.to_addr == "aurelie.martin@ville-voiron.fr"
        events = [e.event for e in s.scalars(select(AuditEvent).where(
            AuditEvent.ticket_id == own))]
        assert "draft.edited" in events and "draft.approved" in events
        approved = s.scalar(select(AuditEvent).where(AuditEvent.event == "draft.approved"))
        assert approved.detail["address_confirmed"] is True and approved.actor == "agent38"
    # A second approval is refused: one reply per draft.
    again = client.post(f"/tickets/{own}/approve", data={"csrf": csrf, "address_confirmed": "yes",
                                                                       "reset_confirmed": "yes"})
    assert "déjà" in again.text


def test_reject_needs_reason_and_keeps_ticket_open(client, store):
    """Rejecting asks for a reason and leaves the request for an agent."""
    csrf = login(client, "agent38")
    own = ticket_id(store, "063.eml")
    assert "motif" in client.post(f"/tickets/{own}/reject", data={"csrf": csrf}).text
    client.post(f"/tickets/{own}/reject", data={"csrf": csrf, "reason": "doublon"})
    with store.session() as s:
        assert s.get(Ticket, own).action == "human"
        assert s.scalar(select(DraftRow.status).where(DraftRow.ticket_id == own)) == "rejected"


def test_reassign_moves_ticket_out_of_reach(client, store):
    """Reassigning to 73 re-signs the draft for 73; agent 38 then loses access."""
    csrf = login(client, "agent38")
    own = ticket_id(store, "063.eml")
    r = client.post(f"/tickets/{own}/reassign", data={"csrf": csrf, "department": "73"})
    assert r.status_code == 403 or "réaffectée" in r.text
    with store.session() as s:
        ticket = s.get(Ticket, own)
        assert ticket.department == "73"
        body = s.scalar(select(DraftRow.body).where(DraftRow.ticket_id == own))
        assert "de la Savoie" in body
    assert client.get(f"/tickets/{own}").status_code == 403


def test_release_is_admin_only(client, store):
    """Only an admin can release a quarantined message."""
    quarantined = ticket_id(store, "047.eml")
    csrf = login(client, "agent38")
    with store.session() as s:  # make it visible to agent 38
        s.get(Ticket, quarantined).department = "38"
        s.commit()
    assert client.post(f"/tickets/{quarantined}/release", data={"csrf": csrf}).status_code == 403
    client.post("/logout", data={"csrf": csrf})
    csrf = login(client, "admin")
    r = client.post(f"/tickets/{quarantined}/release", data={"csrf": csrf})
    assert "libéré" in r.text
    with store.session() as s:
        assert s.get(Ticket, quarantined).status == "open"


def test_disabled_agent_sessions_end(client, store):
    """Disabling an agent ends the session already open in a browser."""
    login(client, "agent38")
    assert client.get("/", follow_redirects=False).status_code == 200
    with store.session() as s:
        disable_agent(s, "agent38")
        s.commit()
    assert client.get("/", follow_redirects=False).status_code == 303


def test_hostile_content_is_inert(client, store, settings):
    """<script> and {{ 7*7 }} in a message are shown as text, never run or evaluated."""
    from triage.pipeline import triage_bytes

    raw = (b"From: Paul Martin <paul.martin@ville-voiron.fr>\r\n"
           b"To: ddfip38.pgp.spl-pes@dgfip.finances.gouv.fr\r\nSubject: {{ 7*7 }}\r\n"
           b"Message-ID: <hostile@test>\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
           b"<p>Mot de passe oubli\xc3\xa9, pmartin-xt</p><script>alert(1)</script>"
           b"<img src=x onerror=alert(2)>{{ 7*7 }}\r\n")
    ticket, _ = store.record(triage_bytes(raw, settings), raw, origin="test:hostile")
    login(client, "agent38")
    page = client.get(f"/tickets/{ticket.id}").text
    assert "<script>alert(1)</script>" not in page
    assert "onerror" not in page
    assert "{{ 7*7 }}" in page and ">49<" not in page


def test_ticket_page_shows_reasons_history_and_warning(client, store, settings):
    """The ticket page lists every reason, the history, and warns on a Reply-To mismatch."""
    from triage.pipeline import triage_bytes

    raw = (b"From: Paul Martin <paul.martin@ville-voiron.fr>\r\n"
           b"Reply-To: attacker@evil.example\r\n"
           b"To: ddfip38.pgp.spl-pes@dgfip.finances.gouv.fr\r\nSubject: mot de passe\r\n"
           b"Message-ID: <replyto@test>\r\n\r\nJ'ai oubli\xc3\xa9 mon mot de passe, pmartin-xt\r\n")
    ticket, _ = store.record(triage_bytes(raw, settings), raw, origin="test:replyto")
    login(client, "agent38")
    page = client.get(f"/tickets/{ticket.id}").text
    assert "attacker@evil.example" in page and "diffère de From" in page
    assert "non authentifié" in page
    for reason in ticket.reasons:
        assert reason.split(":")[0] in page
    assert "consultée" in page and "demande reçue et triée" in page
