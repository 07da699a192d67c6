"""Fixtures for the review tests: a store with the dev set replayed, agents, a web client."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from triage.config import Settings
from triage.pipeline import triage_bytes
from triage.review.agents import add_agent
from triage.review.web import create_app
from triage.store import Store
from triage.testing.desk import desk_settings

DEV = Path(__file__).resolve().parent.parent / "data" / "dev"
PASSWORD = "correct horse battery"


def make_settings(folder: Path, **extra: object) -> Settings:
    return desk_settings(folder, **extra)


@pytest.fixture
def settings(tmp_path: Path, store_url: str) -> Settings:
    return make_settings(tmp_path, store={"url": store_url})


@pytest.fixture
def store(settings: Settings) -> Iterator[Store]:
    store = Store.open(settings)
    with store.session() as s:
        add_agent(s, settings, "agent38", PASSWORD, ["38"], name="Agent Isère")
        add_agent(s, settings, "agent73", PASSWORD, ["73"])
        add_agent(s, settings, "admin", PASSWORD, ["07", "26", "38", "73", "74"], role="admin")
        s.commit()
    for name in ("020.eml", "063.eml", "065.eml", "006.eml", "047.eml", "002.eml"):
        raw = (DEV / name).read_bytes()
        store.record(triage_bytes(raw, settings), raw, origin=f"test:{name}")
    yield store
    store.dispose()


def ticket_id(store: Store, origin_suffix: str) -> int:
    from sqlalchemy import select

    from triage.store import Ticket

    with store.session() as s:
        found = s.scalar(select(Ticket.id).where(Ticket.origin.like(f"%{origin_suffix}")))
        assert found is not None
        return int(found)


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, "no CSRF field in the page"
    return match.group(1)


def login(client: TestClient, who: str, password: str = PASSWORD) -> str:
    """Log in; return the CSRF token of the new session."""
    page = client.get("/login")
    response = client.post("/login", data={"login": who, "password": password,
                                           "csrf": csrf_of(page.text), "next": "/"},
                           follow_redirects=False)
    assert response.status_code == 303, response.text
    return csrf_of(client.get("/").text)


@pytest.fixture
def client(settings: Settings, store: Store) -> Iterator[TestClient]:
    with TestClient(create_app(settings, store), base_url="http://127.0.0.1") as c:
        yield c
