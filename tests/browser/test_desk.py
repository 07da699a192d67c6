"""The agents' desk in a real browser: Debian's Chromium driven by Playwright against the review
application served by uvicorn, with aiosmtpd as the relay, and axe-core (axe-playwright-python)
checking every page for serious or critical accessibility violations."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, Page, sync_playwright

from triage.config import Settings
from triage.send.sender import send_due
from triage.store import Store
from triage.testing.desk import desk_settings, seed, serve
from triage.testing.smtp import SmtpRelay

DEV = Path(__file__).resolve().parent.parent / "data" / "dev"
PASSWORD = "mot de passe solide"
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
MAIL = ("065.eml", "063.eml", "002.eml", "047.eml", "006.eml")
FRENCH_TIME = re.compile(r"\d{1,2} (janv\.|févr\.|mars|avr\.|mai|juin|juil\.|août|sept\.|oct\.|"
                         r"nov\.|déc\.) \d{4} à \d\d:\d\d")
AXE = Axe()


@dataclass
class Desk:
    base: str
    settings: Settings
    store: Store
    relay: SmtpRelay
    ids: dict[str, int]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture
def desk(tmp_path: Path) -> Iterator[Desk]:
    with SmtpRelay() as relay:
        settings = desk_settings(tmp_path, smtp={"host": "127.0.0.1", "port": relay.port,
                                                 "security": "plain"})
        store = Store.open(settings)
        ids = seed(store, settings, [DEV / name for name in MAIL], PASSWORD)
        try:
            with serve(settings, store) as base:
                yield Desk(base, settings, store, relay, ids)
        finally:
            store.dispose()


def signed_in(browser: Browser, desk: Desk, login: str, width: int = 1280) -> Page:
    page = browser.new_page(viewport={"width": width, "height": 900})
    page.goto(f"{desk.base}/login")
    page.fill("input[name=login]", login)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("h1")
    return page


def serious(page: Page) -> list[str]:
    """The serious and critical axe-core violations of the page, with where they are."""
    found = AXE.run(page).response["violations"]
    return [f"{v['id']} ({v['impact']}): {[n['target'] for n in v['nodes']][:3]}"
            for v in found if v["impact"] in ("serious", "critical")]


def send(desk: Desk) -> None:
    """The sender's pass, in a thread of its own (it runs an event loop; Playwright's sync
    API holds one in this thread)."""
    worker = threading.Thread(target=send_due, args=(desk.settings, desk.store, "test"))
    worker.start()
    worker.join(60)


def approve(page: Page) -> None:
    page.check("input[name=reset_confirmed]")
    page.check("input[name=address_confirmed]")
    page.click("button[value=approve]")
    page.wait_for_selector("p.notice")


def test_every_page_passes_axe_core(browser, desk):
    """Login, queue, a ticket in each state (open, quarantined, approved, sent, handled),
    the dashboard and the sessions admin have no serious or critical axe-core violation."""
    page = browser.new_page()
    page.goto(f"{desk.base}/login")
    assert serious(page) == [], "login"
    page.close()
    page = signed_in(browser, desk, "admin")
    checked = {"queue": "/", "search": "/?q=a.martin-xt", "dashboard": "/dashboard",
               "sessions": "/admin/sessions",
               "open": f"/tickets/{desk.ids['063.eml']}",
               "quarantined": f"/tickets/{desk.ids['047.eml']}"}
    for what, path in checked.items():
        page.goto(desk.base + path)
        assert serious(page) == [], what
    page.goto(f"{desk.base}/tickets/{desk.ids['065.eml']}")
    approve(page)
    assert serious(page) == [], "approved"
    send(desk)
    page.reload()
    assert "Réponse envoyée" in page.inner_text("h1")
    assert serious(page) == [], "sent"
    page.goto(f"{desk.base}/tickets/{desk.ids['002.eml']}")
    page.fill("input[name=note]", "réglé par téléphone")
    page.click("text=Marquer comme traitée sans réponse")
    page.wait_for_selector("p.notice")
    assert serious(page) == [], "handled"


def test_french_reasons_times_and_history(browser, desk):
    """Reasons start with French labels, never an English rule key; times are Paris times in
    French; the history panel lists the view and the hold, with their times; template names
    are the configured display names."""
    page = signed_in(browser, desk, "agent38")
    page.goto(f"{desk.base}/tickets/{desk.ids['065.eml']}")
    reasons = page.locator("ul.reasons li").all_inner_texts()
    assert reasons and not [r for r in reasons if re.match(r"[a-z_]+: ", r)]
    assert any(r.startswith("Identifiant : ") for r in reasons)
    assert FRENCH_TIME.search(page.inner_text("section.sender"))
    assert "UTC" not in page.inner_text("main")
    assert "Réinitialisation du mot de passe" in page.inner_text("section.draft h2")
    assert "reset_password" not in page.inner_text("main")
    page.click("button:text('Je m\\'en occupe')")
    page.wait_for_selector("p.notice")
    history = page.locator("section.history li").all_inner_texts()
    assert any("consultée" in h for h in history)
    assert any("prise en charge : agent38" in h and FRENCH_TIME.search(h) for h in history)


def test_collision_take_and_release_between_two_agents(browser, desk):
    """Agent A takes a ticket; B sees who holds it and since when, and cannot act until B
    ticks the confirmation; when A releases it, B sees nobody holds it."""
    own = f"{desk.base}/tickets/{desk.ids['065.eml']}"
    a = signed_in(browser, desk, "agent38")
    a.goto(own)
    a.click("button:text('Je m\\'en occupe')")
    a.wait_for_selector("p.notice")
    assert "Vous vous occupez de cette demande" in a.inner_text("#holder")
    b = signed_in(browser, desk, "collegue38")
    b.goto(own)
    assert re.search(r"agent38 s'occupe de cette demande depuis .* à \d\d:\d\d",
                     b.inner_text("#holder"))
    b.fill("input[name=reason]", "doublon")
    b.click("text=Rejeter le brouillon")  # the required confirmation stops the form
    assert b.locator("p.notice").count() == 0
    assert b.evaluate("document.querySelector('#override-reject').validity.valueMissing")
    b.check("#override-reject")
    b.click("text=Rejeter le brouillon")
    b.wait_for_selector("p.notice")
    assert "Brouillon rejeté" in b.inner_text("p.notice")
    a.reload()
    a.click("text=Rendre à l'équipe")
    a.wait_for_selector("p.notice")
    b.reload()
    assert "Personne ne s'occupe de cette demande" in b.inner_text("#holder")


def test_search_from_the_queue(browser, desk):
    """The search box finds a request by identifier, by sender address and by number, in
    every state (a closed request too), with the keyboard alone."""
    page = signed_in(browser, desk, "agent38")
    page.goto(f"{desk.base}/tickets/{desk.ids['002.eml']}")  # answered: found all the same
    page.fill("input[name=note]", "réglé par téléphone")
    page.click("text=Marquer comme traitée sans réponse")
    page.wait_for_selector("p.notice")
    page.goto(f"{desk.base}/")
    for term, wanted in (("a.martin-xt", "065.eml"), ("claire.bouvier@ville-crolles.fr",
                                                       "063.eml"),
                         (f"#{desk.ids['002.eml']}", "002.eml")):
        page.fill("#q", term)
        page.press("#q", "Enter")
        page.wait_for_load_state()
        links = page.locator("table.queue tbody a[href^='/tickets/']")
        found = {links.nth(i).get_attribute("href") for i in range(links.count())}
        assert found == {f"/tickets/{desk.ids[wanted]}"}, term


def test_reset_confirmation_required_then_sent_text_shown(browser, desk):
    """The reply to a reset cannot be approved without ticking « J'ai réinitialisé le mot de
    passe de a.martin-xt … »; once sent, the page shows the exact text, Message-ID and time."""
    page = signed_in(browser, desk, "agent38")
    page.goto(f"{desk.base}/tickets/{desk.ids['065.eml']}")
    label = page.inner_text("label[for=reset_confirmed]")
    assert label == ("J'ai réinitialisé le mot de passe de a.martin-xt dans l'outil "
                     "d'administration")
    page.fill("#body", page.input_value("#body") + "\nRéférence de contrôle 7781.\n")
    page.check("input[name=address_confirmed]")
    page.click("button[value=approve]")
    assert page.locator("p.notice").count() == 0  # stopped: the reset is not confirmed
    approve(page)
    send(desk)
    assert len(desk.relay.messages) == 1
    page.reload()
    sent = page.inner_text("section.outbox")
    assert "Référence de contrôle 7781." in page.inner_text("pre.sent-text")
    message_id = re.search(rb"(?im)^Message-ID:\s*(<[^>]+>)", desk.relay.messages[0].data)
    assert message_id and message_id.group(1).decode().strip("<>") in sent
    assert re.search(r"envoyée le " + FRENCH_TIME.pattern, sent)
    history = " ".join(page.locator("section.history li").all_inner_texts())
    assert "J'ai réinitialisé le mot de passe de a.martin-xt" in history


def test_reassign_returns_to_the_queue(browser, desk):
    """Reassigning to 73 lands on the queue with a confirmation; the history says 38 → 73."""
    page = signed_in(browser, desk, "agent38")
    own = desk.ids["065.eml"]
    page.goto(f"{desk.base}/tickets/{own}")
    page.select_option("#department", "73")
    page.click("text=Réaffecter")
    page.wait_for_selector("p.notice")
    assert page.url == f"{desk.base}/"
    assert f"Demande #{own} : Demande réaffectée au département 73" in page.inner_text(
        "p.notice")
    admin = signed_in(browser, desk, "admin")
    admin.goto(f"{desk.base}/tickets/{own}")
    assert "38 → 73" in admin.inner_text("section.history")


def test_header_on_one_line_at_1366_and_keyboard_focus_visible(browser, desk):
    """At 1,366 px the admin's header holds on one line; Tab reaches the skip link first and
    every focused control shows an outline."""
    page = signed_in(browser, desk, "admin", width=1366)
    brand = page.locator("header.top .brand").bounding_box()
    logout = page.locator("header.top button").bounding_box()
    assert brand and logout and abs(brand["y"] - logout["y"]) < 20
    assert page.locator("header.top").bounding_box()["height"] < 70
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip"
    for _ in range(4):
        page.keyboard.press("Tab")
        style = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
        assert style not in ("none", ""), page.evaluate("document.activeElement.outerHTML")
