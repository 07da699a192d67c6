"""What an attack on the running demo got through (issue 14), one test per finding, and a scan
of every route with malformed input: no 500, the security headers on every response."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import pytest
from sqlalchemy import select
from starlette.routing import Route
from starlette.testclient import TestClient

from triage.config import Settings
from triage.pipeline import triage_bytes
from triage.review import agents
from triage.review.web import ReviewApp, create_app
from triage.rules import reasons_of
from triage.store import LoginAttempt, Store, Ticket

from .conftest import PASSWORD, csrf_of, login, make_settings, ticket_id

HEADERS = ("content-security-policy", "x-content-type-options", "x-frame-options",
           "referrer-policy", "cache-control")
TO = b"To: ddfip38.pgp.spl-pes@dgfip.finances.gouv.fr\r\n"


def secured(response) -> bool:
    return all(h in response.headers for h in HEADERS)


def record(store: Store, settings: Settings, raw: bytes, name: str, partial: bool = False
           ) -> int:
    ticket, _ = store.record(triage_bytes(raw, settings, partial=partial), raw,
                             origin=f"test:{name}")
    return ticket.id


def client_at(settings: Settings, store: Store, address: str) -> TestClient:
    return TestClient(create_app(settings, store), base_url="http://127.0.0.1",
                      client=(address, 40000))


def try_login(client: TestClient, who: str, password: str) -> int:
    page = client.get("/login")
    return client.post("/login", data={"login": who, "password": password, "next": "/",
                                       "csrf": csrf_of(page.text)},
                       follow_redirects=False).status_code


def pdf(name: bytes, content: bytes) -> bytes:
    return (b"Content-Type: application/pdf\r\nContent-Disposition: attachment; filename="
            + name + b"\r\nContent-Transfer-Encoding: base64\r\n\r\n"
            + base64.b64encode(content) + b"\r\n")


def multipart(*parts: bytes, boundary: bytes = b"b1", head: bytes = b"") -> bytes:
    body = b"".join(b"--" + boundary + b"\r\n" + p for p in parts)
    return (head + b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"" + boundary
            + b"\"\r\n\r\n" + body + b"--" + boundary + b"--\r\n")


HEAD = (b"From: Paul Martin <paul.martin@ville-voiron.fr>\r\n" + TO
        + b"Subject: mot de passe\r\nMessage-ID: <att-%d@test>\r\n")
TEXT = b"Content-Type: text/plain; charset=utf-8\r\n\r\nJ'ai oubli\xc3\xa9 mon mot de passe.\r\n"


# -- sessions and logins -------------------------------------------------------------------
def test_logout_ends_a_copied_cookie(client, store):
    """A session cookie copied before logout no longer opens any page after it."""
    csrf = login(client, "agent38")
    copied = dict(client.cookies)
    assert client.post("/logout", data={"csrf": csrf}, follow_redirects=False).status_code == 303
    client.cookies.clear()
    for name, value in copied.items():
        client.cookies.set(name, value)
    r = client.get("/", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login")


def test_admin_lists_and_revokes_sessions(settings, store):
    """An admin sees the open sessions and ends one; that browser is logged out at once."""
    from triage.store import WebSession

    victim = client_at(settings, store, "10.0.0.38")
    login(victim, "agent38")
    admin = client_at(settings, store, "10.0.0.1")
    csrf = login(admin, "admin")
    page = admin.get("/admin/sessions").text
    assert "agent38" in page and "10.0.0.38" in page
    with store.session() as s:
        row = s.scalar(select(WebSession).join(agents.Agent,
                                               agents.Agent.id == WebSession.agent_id)
                       .where(agents.Agent.login == "agent38"))
        assert row is not None
    r = admin.post(f"/admin/sessions/{row.id}/revoke", data={"csrf": csrf})
    assert r.status_code == 200 and "Session terminée" in r.text
    assert victim.get("/", follow_redirects=False).status_code == 303
    assert login(victim, "agent38")  # a new login works
    agent = client_at(settings, store, "10.0.0.2")
    agent_csrf = login(agent, "agent73")
    assert agent.get("/admin/sessions").status_code == 403
    assert agent.post(f"/admin/sessions/{row.id}/revoke",
                      data={"csrf": agent_csrf}).status_code == 403


def test_failures_from_elsewhere_do_not_lock_an_agent_out(settings, store):
    """Wrong passwords for agent38 from one address do not refuse agent38's right password
    from another address."""
    attacker = client_at(settings, store, "203.0.113.9")
    for _ in range(settings.web.login_attempts + 1):
        assert try_login(attacker, "agent38", "wrong password") in (401, 429)
    agent = client_at(settings, store, "10.0.0.38")
    assert try_login(agent, "agent38", PASSWORD) == 303


def test_failures_for_one_login_do_not_lock_out_the_address(settings, store):
    """Failures for one login from a shared address (a proxy, a NAT) do not refuse the other
    agents behind it."""
    shared = client_at(settings, store, "192.0.2.1")
    for _ in range(settings.web.login_attempts + 1):
        assert try_login(shared, "agent73", "wrong password") in (401, 429)
    assert try_login(shared, "agent38", PASSWORD) == 303


def test_backoff_grows_and_per_client_cap_holds(tmp_path, store_url):
    """Past the free failures each attempt waits longer; past the per-minute cap one client's
    attempts wait without a password check, and neither is a hard lock (Retry-After)."""
    settings = make_settings(tmp_path, store={"url": store_url},
                             web={"login_attempts": 2, "login_delay_seconds": 100,
                                  "login_global_per_minute": 6})
    store = Store.open(settings)
    with store.session() as s:
        agents.add_agent(s, settings, "agent38", PASSWORD, ["38"])
        s.commit()
    c = client_at(settings, store, "198.51.100.1")
    assert [try_login(c, "agent38", "x") for _ in range(3)] == [401, 401, 429]
    page = c.get("/login")
    r = c.post("/login", data={"login": "agent38", "password": "x", "csrf": csrf_of(page.text)})
    assert r.status_code == 429 and 90 <= int(r.headers["retry-after"]) <= 101
    codes = [try_login(c, f"nobody{n}", "x") for n in range(6)]
    assert codes == [401] * 4 + [429] * 2  # 6 checks a minute from one client
    with store.session() as s:
        assert s.scalar(select(LoginAttempt.id).where(LoginAttempt.login == "nobody5")) is None
    store.dispose()


def test_one_client_cannot_lock_every_agent_out(tmp_path, store_url):
    """One client that spends the whole per-minute budget of password checks does not refuse
    an agent's right password from another client."""
    settings = make_settings(tmp_path, store={"url": store_url},
                             web={"login_global_per_minute": 6})
    store = Store.open(settings)
    with store.session() as s:
        agents.add_agent(s, settings, "agent38", PASSWORD, ["38"])
        s.commit()
    evil = client_at(settings, store, "203.0.113.9")
    assert [try_login(evil, f"nobody{n}", "x") for n in range(7)] == [401] * 6 + [429]
    assert try_login(client_at(settings, store, "198.51.100.7"), "agent38", PASSWORD) == 303
    store.dispose()


def test_global_ceiling_spares_a_known_good_client(tmp_path, store_url):
    """Past twice the per-client cap from all clients together no new client's password is
    checked, but an agent who logged in from this client before still gets in."""
    settings = make_settings(tmp_path, store={"url": store_url},
                             web={"login_global_per_minute": 3})
    store = Store.open(settings)
    with store.session() as s:
        agents.add_agent(s, settings, "agent38", PASSWORD, ["38"])
        s.commit()
    assert try_login(client_at(settings, store, "10.0.0.38"), "agent38", PASSWORD) == 303
    crowd = [try_login(client_at(settings, store, f"203.0.113.{n}"), "nobody", "x")
             for n in range(6)]
    assert crowd == [401] * 5 + [429]  # 6 checks a minute from all clients together
    assert try_login(client_at(settings, store, "198.51.100.7"), "agent38", PASSWORD) == 429
    assert try_login(client_at(settings, store, "10.0.0.38"), "agent38", PASSWORD) == 303
    store.dispose()


@pytest.mark.parametrize("page", ["%C2%B2", "1" * 5000, "%D9%A3", "-1", "+1", " 1"])
def test_malformed_queue_page_number_is_the_first_page(client, page):
    """A page number that is not 1 to 6 ASCII digits (a superscript, Arabic-Indic digits,
    5,000 digits) shows the first page, never a 500."""
    login(client, "agent38")
    r = client.get(f"/?page={page}")
    assert r.status_code == 200 and secured(r)
    r = client.get(f"/?older={page}")  # the age filter is read the same way
    assert r.status_code == 200 and secured(r)


def test_unknown_login_costs_one_password_check(client, monkeypatch):
    """An unknown login is checked against a dummy argon2 hash, as a known one is against its
    own, so the time taken does not tell which logins exist. (A spy counts the checks: timing
    itself is not tested.)"""
    calls: list[str] = []
    real = agents._hasher

    class Spy:
        def verify(self, hash_: str, password: str) -> bool:
            calls.append(hash_)
            return real.verify(hash_, password)

        def hash(self, password: str) -> str:
            return real.hash(password)

    monkeypatch.setattr(agents, "_hasher", Spy())
    assert try_login(client, "no-such-agent", "whatever password") == 401
    assert try_login(client, "agent38", "whatever password") == 401
    assert len(calls) == 2 and all(c.startswith("$argon2") for c in calls)


def test_forwarded_for_is_ignored_without_trusted_proxy(tmp_path, store_url):
    """Served as the CLI serves it (uvicorn, real sockets), X-Forwarded-For from a loopback peer
    does not change the client address unless that peer is a configured trusted proxy; an error
    response keeps the connection open and carries the headers."""
    import socket
    import threading
    import time

    import httpx
    import uvicorn

    from triage.review.http import server_config
    from triage.testing.dovecot import free_port

    for trusted, expected in (((), "127.0.0.1"), (("127.0.0.1",), "203.0.113.77")):
        settings = make_settings(tmp_path, store={"url": store_url},
                                 web={"port": free_port(), "trusted_proxies": list(trusted)})
        store = Store.open(settings)
        review = ReviewApp(lambda s=settings: s, store)

        async def boom(request):
            raise RuntimeError("boom")

        review.extra_routes.append(Route("/boom", boom))
        server = uvicorn.Server(server_config(review.app(), settings))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        try:
            deadline = time.monotonic() + 10
            while not server.started:
                assert time.monotonic() < deadline
                time.sleep(0.05)
            base = f"http://127.0.0.1:{settings.web.port}"
            with httpx.Client(base_url=base) as c:
                page = c.get("/login")
                c.post("/login", headers={"X-Forwarded-For": "203.0.113.77"}, data={
                    "login": "x", "password": "y", "csrf": csrf_of(page.text)})
            with store.session() as s:
                assert s.scalar(select(LoginAttempt.address)) == expected
                s.query(LoginAttempt).delete()
                s.commit()
            with socket.create_connection(("127.0.0.1", settings.web.port), timeout=5) as sock:
                request = b"GET /boom HTTP/1.1\r\nHost: x\r\n\r\n"
                sock.sendall(request + b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                received = b""
                while received.count(b"HTTP/1.1 ") < 2 or not received.endswith(b"ok\n"):
                    chunk = sock.recv(65536)
                    assert chunk, f"connection closed after the error: {received[:300]!r}"
                    received += chunk
            first = received.split(b"HTTP/1.1 200")[0]
            assert first.startswith(b"HTTP/1.1 500") and b"content-security-policy" in first
            assert b"Erreur interne" in first
        finally:
            server.should_exit = True
            thread.join(10)
            store.dispose()


# -- errors and route parameters -----------------------------------------------------------
def test_huge_ids_are_404_with_headers(client, store):
    """A ticket or attachment id past 64 bits is a French 404 with the security headers."""
    login(client, "admin")
    own = ticket_id(store, "063.eml")
    for url in ("/tickets/9223372036854775808", "/tickets/99999999999999999999999",
                f"/tickets/{own}/attachments/9223372036854775808", "/tickets/0"):
        r = client.get(url)
        assert r.status_code == 404 and secured(r), url
        assert "introuvable" in r.text


def test_unknown_route_and_method_are_french_with_headers(client):
    """No such page and a wrong method answer the French error page with the headers."""
    r = client.get("/nowhere")
    assert r.status_code == 404 and secured(r) and "Page introuvable" in r.text
    r = client.put("/login")
    assert r.status_code == 405 and secured(r) and "Méthode non autorisée" in r.text


def test_unexpected_error_is_a_french_500_with_headers(settings, store):
    """An exception in a page gives the French 500 page with every security header."""
    review = ReviewApp(lambda: settings, store)

    async def boom(request):
        raise RuntimeError("boom")

    review.extra_routes.append(Route("/boom", boom))
    with TestClient(review.app(), raise_server_exceptions=False) as c:
        r = c.get("/boom")
    assert r.status_code == 500 and secured(r) and "Erreur interne" in r.text


# -- attachments ---------------------------------------------------------------------------
def test_deeply_nested_attachment_is_no_500(client, store, settings):
    """A message nested 1,200 deep: its page shows, its attachment link is a 404, not a 500."""
    inner = pdf(b"x.pdf", b"%PDF-deep")
    for _ in range(1200):
        inner = b"Content-Type: message/rfc822\r\n\r\nSubject: s\r\n" + inner
    raw = multipart(TEXT, inner, head=HEAD % 1)
    tid = record(store, settings, raw, "deep")
    login(client, "admin")
    assert client.get(f"/tickets/{tid}").status_code == 200
    r = client.get(f"/tickets/{tid}/attachments/0")
    assert r.status_code == 404 and secured(r)


@pytest.mark.parametrize("name, fallback, encoded", [
    (b"*=utf-8''Facture_c%C5%93ur.pdf", "Facture_c_ur.pdf", "Facture_c%C5%93ur.pdf"),
    ("=\"=?utf-8?b?{}?=\"".format(base64.b64encode("Счёт.pdf".encode()).decode()).encode(),
     ".pdf", "%D0%A1%D1%87%D1%91%D1%82.pdf"),
])
def test_non_latin_attachment_names_download(client, store, settings, name, fallback, encoded):
    """Names in UTF-8 (RFC 2231) or Cyrillic download, named as RFC 6266 says."""
    part = (b"Content-Type: application/pdf\r\nContent-Disposition: attachment; filename"
            + name + b"\r\n\r\n%PDF-1\r\n")
    tid = record(store, settings, multipart(TEXT, part, head=HEAD % 2), "names")
    login(client, "admin")
    r = client.get(f"/tickets/{tid}/attachments/0")
    assert r.status_code == 200 and r.content.startswith(b"%PDF-1")
    disposition = r.headers["content-disposition"]
    assert disposition.isascii() and f"filename*=UTF-8''{encoded}" in disposition
    assert re.search(r'filename="[\w.-]*' + re.escape(fallback) + '"', disposition)


def test_forwarded_message_attachments_download_the_listed_file(client, store, settings):
    """With a message attached among files, each link of the page downloads the file it names."""
    forwarded = (b"Content-Type: message/rfc822\r\n\r\nFrom: a@b.example\r\nSubject: fwd\r\n"
                 + multipart(b"Content-Type: text/plain\r\n\r\ninner text\r\n",
                             pdf(b"inner.pdf", b"%PDF-inner"), boundary=b"b2"))
    raw = multipart(TEXT, pdf(b"first.pdf", b"%PDF-first"), forwarded,
                    pdf(b"last.pdf", b"%PDF-last"), head=HEAD % 3)
    tid = record(store, settings, raw, "forwarded")
    login(client, "admin")
    page = client.get(f"/tickets/{tid}").text
    links = re.findall(r'href="(/tickets/\d+/attachments/\d+)" download><bdi>([^<]+)</bdi>', page)
    assert [name for _u, name in links] == ["first.pdf", "message.eml", "inner.pdf", "last.pdf"]
    contents = [client.get(url) for url, _n in links]
    assert all(r.status_code == 200 for r in contents)
    assert contents[0].content == b"%PDF-first" and contents[3].content == b"%PDF-last"
    assert contents[2].content == b"%PDF-inner" and b"Subject: fwd" in contents[1].content
    with store.session() as s:
        manifest = s.get(Ticket, tid).attachments
    assert [(a["index"], a["part"], a["name"]) for a in manifest] == [
        (0, "2", "first.pdf"), (1, "3", "message.eml"), (2, "3.2", "inner.pdf"),
        (3, "4", "last.pdf")]


def test_attachment_of_a_large_message_is_never_an_empty_file(client, store, settings):
    """A part the intake did not fetch (message over full_fetch_bytes) is listed as such and its
    link never downloads 0 bytes."""
    from triage.mailbox.fetch import PartInfo, _rebuild

    parts = [PartInfo("1", "text/plain", None, 40, True),
             PartInfo("2", "application/pdf", "gros.pdf", 5_000_000, False)]
    raw = _rebuild(7, parts, {b"BODY[HEADER]": HEAD % 4, b"BODY[1.MIME]": b"Content-Type: "
                              b"text/plain\r\n\r\n", b"BODY[1]": b"J'ai perdu mon mot de passe"})
    tid = record(store, settings, raw, "large", partial=True)
    login(client, "admin")
    page = client.get(f"/tickets/{tid}").text
    assert "gros.pdf" in page and "lue dans la boîte aux lettres" in page
    assert "5000000 octets" in page
    r = client.get(f"/tickets/{tid}/attachments/0")  # no mailbox holds it: a clear 404
    assert r.status_code == 404 and r.headers["content-type"].startswith("text/html")
    assert "pas été récupérée" in r.text


def test_attachment_of_a_large_message_comes_from_the_mailbox(dovecot, tmp_path):
    """Through Dovecot: a message over full_fetch_bytes is triaged from its text, and its
    attachment downloads whole, fetched from the folder it was moved to by its section."""
    import subprocess
    import sys

    from triage.testing.intake import deploy

    if not dovecot.running:
        dovecot.start()
    dep = deploy(dovecot, tmp_path, codes=("38",), imap={"full_fetch_bytes": 4096})
    content = bytes(range(256)) * 400  # 100 kB, every byte value
    forwarded = (b"Content-Type: message/rfc822\r\n\r\nFrom: a@b.example\r\nSubject: fwd"
                 b"\r\n\r\ninner\r\n")
    raw = multipart(TEXT, pdf(b"releve.pdf", content), forwarded, pdf(b"b.pdf", b"%PDF-b"),
                    head=HEAD % 9)
    account = dep.account_of("38")
    dovecot.append(account.user, account.password, "INBOX", raw)
    run = subprocess.run([sys.executable, "-m", "triage", "run", "--once", "--config",
                          str(dep.config_path)], capture_output=True, text=True, timeout=300,
                         check=False)
    assert run.returncode == 0, run.stderr
    store = Store.open(dep.settings)
    try:
        with store.session() as s:
            ticket = s.scalar(select(Ticket))
            assert ticket is not None and len(ticket.raw) < len(raw) // 2
            assert [(a["name"], a["stored"]) for a in ticket.attachments] == [
                ("releve.pdf", False), ("sans-nom", False), ("b.pdf", False)]
            agents.add_agent(s, dep.settings, "admin", PASSWORD, ["38"], role="admin")
            s.commit()
        with TestClient(create_app(dep.settings, store), base_url="http://127.0.0.1") as c:
            login(c, "admin")
            got = [c.get(f"/tickets/{ticket.id}/attachments/{i}") for i in range(3)]
        assert [r.status_code for r in got] == [200, 200, 200]
        assert got[0].content == content and got[2].content == b"%PDF-b"
        assert b"Subject: fwd" in got[1].content
    finally:
        store.dispose()


def _intake(dovecot, tmp_path, *raws: bytes, **imap: int):
    """Deploy one department on Dovecot, deliver ``raws`` and run the daemon once."""
    import subprocess
    import sys

    from triage.testing.intake import deploy

    if not dovecot.running:
        dovecot.start()
    dep = deploy(dovecot, tmp_path, codes=("38",), imap=imap)
    account = dep.account_of("38")
    for raw in raws:
        dovecot.append(account.user, account.password, "INBOX", raw)
    run = subprocess.run([sys.executable, "-m", "triage", "run", "--once", "--config",
                          str(dep.config_path)], capture_output=True, text=True, timeout=300,
                         check=False)
    assert run.returncode == 0, run.stderr
    return dep


def _download(dep, requester: str) -> tuple[list[bool], list]:
    """(the stored flags of the requester's manifest, the download of each entry) as admin."""
    store = Store.open(dep.settings)
    try:
        with store.session() as s:
            ticket = s.scalar(select(Ticket).where(Ticket.requester == requester))
            assert ticket is not None and ticket.attachments is not None
            agents.add_agent(s, dep.settings, "admin", PASSWORD, ["38"], role="admin")
            s.commit()
        with TestClient(create_app(dep.settings, store), base_url="http://127.0.0.1") as c:
            login(c, "admin")
            got = [c.get(f"/tickets/{ticket.id}/attachments/{i}")
                   for i in range(len(ticket.attachments))]
        return [a["stored"] for a in ticket.attachments], got
    finally:
        store.dispose()


VICTIM = (b"From: Paul Martin <paul.martin@ville-voiron.fr>\r\n" + TO
          + b"Subject: mot de passe\r\nMessage-ID: <victim.1@ville-voiron.fr>\r\n")
SECRET = b"%PDF-SECRET-OF-VICTIM" * 300


def _eve(message_id: bytes) -> bytes:
    return (b"From: Eve <eve@ville-voiron.fr>\r\n" + TO + b"Subject: mot de passe\r\n"
            b"Message-ID: " + message_id + b"\r\n")


def test_a_sender_cannot_mark_a_part_as_not_fetched(dovecot, tmp_path):
    """Through Dovecot: an X-Triage-Partial header written by the sender is ignored, so the
    sender's part is served from the stored message, never looked up in the mailbox."""
    forged = (b"Content-Type: application/pdf\r\nContent-Disposition: attachment; "
              b"filename=mien.pdf\r\nX-Triage-Partial: 10 bytes not fetched\r\n\r\nxx\r\n")
    dep = _intake(dovecot, tmp_path, multipart(TEXT, pdf(b"victime.pdf", SECRET), head=VICTIM),
                  multipart(TEXT, forged, head=_eve(b"<.>")))
    stored, got = _download(dep, "eve@ville-voiron.fr")
    assert stored == [True]
    assert got[0].status_code == 200 and b"SECRET-OF-VICTIM" not in got[0].content


def test_a_part_not_fetched_comes_from_the_message_with_that_exact_message_id(dovecot, tmp_path):
    """Through Dovecot: a large message's attachment is read from the message whose Message-ID
    is exactly the ticket's, never from another one that merely contains it."""
    mine = b"%PDF-EVE-" + bytes(range(256)) * 40
    dep = _intake(dovecot, tmp_path, multipart(TEXT, pdf(b"victime.pdf", SECRET), head=VICTIM),
                  multipart(TEXT, pdf(b"mien.pdf", mine), head=_eve(b"<.>")),
                  full_fetch_bytes=4096)
    stored, got = _download(dep, "eve@ville-voiron.fr")
    assert stored == [False]
    assert got[0].status_code == 200 and got[0].content == mine


def test_a_non_ascii_message_id_is_no_500_on_download(dovecot, tmp_path):
    """Through Dovecot: the attachment of a large message with a non-ASCII Message-ID downloads
    (searched with CHARSET UTF-8), never a 500."""
    mine = b"%PDF-ETE-" + bytes(range(256)) * 40
    dep = _intake(dovecot, tmp_path,
                  multipart(TEXT, pdf(b"mien.pdf", mine), head=_eve(b"<\xc3\xa9t\xc3\xa9@x>")),
                  full_fetch_bytes=4096)
    stored, got = _download(dep, "eve@ville-voiron.fr")
    assert stored == [False]
    assert got[0].status_code == 200 and got[0].content == mine


def test_lookup_by_message_id_is_exact_and_pins_a_known_uid(dovecot, tmp_path):
    """Through Dovecot: the lookup by Message-ID answers only the message whose Message-ID is
    exactly the one asked (not every one containing it), UTF-8 ones too, and checks a recorded
    UID the same way."""
    from triage.mailbox.connection import Connection
    from triage.mailbox.message_ids import uids_with_message_id
    from triage.testing.intake import deploy

    if not dovecot.running:
        dovecot.start()
    dep = deploy(dovecot, tmp_path, codes=("38",))
    account = dep.account_of("38")
    for head in (VICTIM, _eve(b"<.>"), _eve(b"<\xc3\xa9t\xc3\xa9@x>")):
        dovecot.append(account.user, account.password, "INBOX", head + b"\r\ntexte\r\n")
    box = dep.settings.mailboxes[0]
    with Connection(dep.settings, box).open() as conn:
        conn.examine(dep.settings.mailbox_folders(box).watch)
        victim, eve, ete = conn.uids()
        assert uids_with_message_id(conn, ".") == [eve]
        assert uids_with_message_id(conn, "<.>") == [eve]
        assert uids_with_message_id(conn, "victim.1@ville-voiron.fr") == [victim]
        assert uids_with_message_id(conn, "ville-voiron.fr") == []
        assert uids_with_message_id(conn, "\u00e9t\u00e9@x") == [ete]
        assert uids_with_message_id(conn, ".", among=[victim]) == []
        assert uids_with_message_id(conn, ".", among=[eve]) == [eve]


def test_bidi_controls_are_removed_from_names(client, store, settings):
    """A right-to-left override in a name is not shown (it would display exe.pdf as fdp.exe)."""
    part = ("Content-Type: application/octet-stream\r\nContent-Disposition: attachment; "
            "filename*=utf-8''facture\u202efdp.exe\r\n\r\nMZ\r\n").encode()
    part = part.replace("\u202e".encode(), b"%E2%80%AE")
    tid = record(store, settings, multipart(TEXT, part, head=HEAD % 5), "bidi")
    login(client, "admin")
    page = client.get(f"/tickets/{tid}").text
    assert "\u202e" not in page and "&#8238;" not in page and "facturefdp.exe" in page
    r = client.get(f"/tickets/{tid}/attachments/0")
    assert "%E2%80%AE" not in r.headers["content-disposition"]


def test_html_view_respects_the_parser_limits(tmp_path, store_url):
    """The HTML view of a message over the parser's limits is not shown (it would be parsed
    again without them)."""
    settings = make_settings(tmp_path, store={"url": store_url}, limits={"max_parts": 4})
    store = Store.open(settings)
    with store.session() as s:
        agents.add_agent(s, settings, "admin", PASSWORD, ["38"], role="admin")
        s.commit()
    html = b"Content-Type: text/html; charset=utf-8\r\n\r\n<p>MARQUEUR-HTML</p>\r\n"
    filler = [b"Content-Type: text/plain\r\n\r\nx\r\n"] * 6
    tid = record(store, settings, multipart(html, *filler, head=HEAD % 6), "limits")
    with TestClient(create_app(settings, store), base_url="http://127.0.0.1") as c:
        login(c, "admin")
        page = c.get(f"/tickets/{tid}").text
    assert "MARQUEUR-HTML" not in page
    store.dispose()


def test_warnings_are_the_trust_rule_findings(client, store, settings):
    """The page's warnings are the trust rule's, as decided at intake, in its words."""
    raw = (b'From: "ddfip38.pgp.spl-pes@dgfip.finances.gouv.fr" <paul@ville-voiron.fr>\r\n'
           + TO + b"Subject: mot de passe\r\nMessage-ID: <w@test>\r\n\r\nJ'ai oubli\xc3\xa9 "
           b"mon mot de passe, pmartin-xt\r\n")
    tid = record(store, settings, raw, "warnings")
    with store.session() as s:
        stored = reasons_of("trust", s.get(Ticket, tid).reasons)
    assert stored
    login(client, "admin")
    page = client.get(f"/tickets/{tid}").text
    shown = re.findall(r'<p class="warning">⚠ ([^<]+)</p>', page)
    assert [w.replace("&#39;", "'") for w in shown] == stored


def test_notices_never_come_from_the_url(client, store):
    """Text in ?ok= or ?err= is not shown; the notice after an action is."""
    csrf = login(client, "agent38")
    own = ticket_id(store, "063.eml")
    page = client.get(f"/tickets/{own}?ok=Votre+mot+de+passe+est+X&err=Appelez+le+0800").text
    assert "Votre mot de passe est" not in page and "0800" not in page
    r = client.post(f"/tickets/{own}/handled", data={"csrf": csrf, "note": "fait"})
    assert r.status_code == 200 and "?ok=" not in str(r.url) and 'class="notice"' in r.text
    assert 'class="notice"' not in client.get(f"/tickets/{own}").text  # shown once


# -- /metrics and the demo's pages ---------------------------------------------------------
def test_metrics_can_require_a_bearer_token(tmp_path, store_url, monkeypatch):
    """With web.metrics_token_env set, /metrics answers 401 without the token, 200 with it."""
    monkeypatch.setenv("TRIAGE_TEST_METRICS_TOKEN", "s3cret-token")
    settings = make_settings(tmp_path, store={"url": store_url},
                             web={"metrics_token_env": "TRIAGE_TEST_METRICS_TOKEN"})
    store = Store.open(settings)
    with TestClient(create_app(settings, store)) as c:
        r = c.get("/metrics")
        assert r.status_code == 401 and secured(r)
        assert c.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
        r = c.get("/metrics", headers={"Authorization": "Bearer s3cret-token"})
        assert r.status_code == 200 and "triage_tickets" in r.text
    store.dispose()


def test_demo_sent_page_is_scoped_by_department(settings, store):
    """/demo/sent shows an agent only the replies to tickets of the agent's departments (the
    replies go through a real aiosmtpd relay)."""
    import smtplib

    from triage.demo.web import install
    from triage.lifecycle import Event
    from triage.review.moderation import handle
    from triage.testing.smtp import SmtpRelay

    own = ticket_id(store, "065.eml")
    with store.session() as s:
        ticket = s.get(Ticket, own)
        admin = s.scalar(select(agents.Agent).where(agents.Agent.login == "admin"))
        handle(s, settings, admin, ticket, Event.APPROVE, {"address_confirmed": "yes",
                                                          "reset_confirmed": "yes"})
        s.commit()
        from triage.store import OutboxItem

        item = s.scalar(select(OutboxItem).where(OutboxItem.ticket_id == own))
    relay = SmtpRelay()
    relay.start()
    try:
        with smtplib.SMTP(relay.host, relay.port) as smtp:
            smtp.sendmail(item.from_addr, [item.to_addr], item.raw)
        review = ReviewApp(lambda: settings, store)
        install(review, relay)
        seen = {}
        for who in ("agent38", "agent73", "admin"):
            with TestClient(review.app(), base_url="http://127.0.0.1") as c:
                login(c, who)
                seen[who] = c.get("/demo/sent").text
        assert "1 réponse(s) reçue(s)" in seen["agent38"] and "1 réponse" in seen["admin"]
        assert "0 réponse(s) reçue(s)" in seen["agent73"]
        assert item.to_addr not in seen["agent73"]
    finally:
        relay.stop()


def test_demo_password_and_imap_secrets_are_random_and_private(tmp_path):
    """Each demo run has its own agents' password and IMAP passwords, and the IMAP server's
    password files are readable by no other user."""
    from triage.demo.run import Demo

    first, second = Demo(root=tmp_path / "a", imap_kind="dovecot"), Demo(root=tmp_path / "b")
    assert first.password != second.password and len(first.password) >= 16
    (tmp_path / "a").mkdir()
    first.start_servers()
    try:
        first.configure()
        secrets = {a.password for a in first.accounts.values()}
        assert len(secrets) == len(first.accounts) == 5
        assert not any(s.startswith("imap-secret") for s in secrets)
        imap_root = Path(first.imap.root)  # type: ignore[union-attr]
        for folder in (imap_root, tmp_path / "a"):
            for path in folder.rglob("*"):
                if path.is_file() and any(x.encode() in path.read_bytes() for x in secrets):
                    assert path.stat().st_mode & 0o004 == 0, path
    finally:
        first.close()


# -- the scan ------------------------------------------------------------------------------
def test_scan_every_route_as_every_role(client, store, settings):
    """Every route, anonymous and as each role, with malformed ids, methods and bodies: never a
    500, and the security headers on every response."""
    own = ticket_id(store, "063.eml")
    ids = [str(own), "0", "-1", "9223372036854775808", "1e3", "%00", "abc", "1/..", "é"]
    paths = ["/", "/login", "/dashboard", "/dashboard?jours=-1", "/healthz",
             "/metrics", "/readyz", "/admin/sessions", "/admin/sessions/%00/revoke",
             f"/admin/sessions/{'a' * 64}/revoke", "/static/style.css", "/static/../web.py",
             "/?status=%ff&order=%00&action[]=x", "/login?next=//evil.example"]
    for i in ids:
        paths += [f"/tickets/{i}", f"/tickets/{i}/attachments/0", f"/tickets/{i}/approve",
                  f"/tickets/{own}/attachments/{i}", f"/tickets/{own}/{i}"]
    paths.append("/logout")  # last: it ends the session
    bodies = [None, {"csrf": "x"}, b"\xff\xfe\x00garbage", b"a=" + b"%" * 50,
              b"--x\r\nContent-Disposition: form-data\r\n\r\n"]
    roles = [None, "agent38", "admin"]
    from triage.review.agents import add_agent

    with store.session() as s:
        add_agent(s, settings, "lead38", PASSWORD, ["38"], role="lead")
        s.commit()
    roles.append("lead38")
    count = 0
    for role in roles:
        with TestClient(create_app(settings, store), base_url="http://127.0.0.1",
                        raise_server_exceptions=False) as c:
            csrf = login(c, role) if role else ""
            for path in paths:
                # A form post to /login (a bad token, a wrong password) starts an anonymous
                # session: sign in again, so that every path is scanned as the role.
                if role and c.get("/", follow_redirects=False).status_code != 200:
                    csrf = login(c, role)
                for method in ("GET", "POST", "PUT", "DELETE", "HEAD"):
                    for body in (bodies if method == "POST" else [None]):
                        if isinstance(body, dict):
                            body = {**body, "csrf": csrf}
                        kwargs = ({"data": body} if isinstance(body, dict) else
                                  {"content": body, "headers": {
                                      "content-type": "multipart/form-data; boundary=x"
                                      if body and body.startswith(b"--") else
                                      "application/x-www-form-urlencoded"}}
                                  if body else {})
                        r = c.request(method, path, follow_redirects=False, **kwargs)
                        count += 1
                        assert r.status_code < 500, (role, method, path, body, r.text[:300])
                        assert secured(r), (role, method, path, r.status_code)
    assert count > 1000
