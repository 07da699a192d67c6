"""The review desk on loopback for browser tests and screenshots: settings from the example
configuration, a store seeded with sample mail and agents, uvicorn in a thread."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import uvicorn
import yaml

from triage.config import DEFAULT_CONFIG, Settings, load_settings
from triage.pipeline import triage_bytes
from triage.review.agents import add_agent
from triage.review.web import create_app
from triage.store import Store
from triage.testing.dovecot import free_port

#: Agents of the sample desk: (login, departments, role, name).
AGENTS = (("agent38", ["38"], "agent", "Claire Agent"),
          ("collegue38", ["38"], "agent", "Paul Collègue"),
          ("admin", ["07", "26", "38", "73", "74"], "admin",
           "Administratrice du service départemental"))


def desk_settings(folder: Path, **extra: Any) -> Settings:
    """The example configuration, with its data under ``folder`` and ``extra`` keys."""
    data = yaml.safe_load(DEFAULT_CONFIG.read_text("utf-8"))
    data["templates_dir"] = str(DEFAULT_CONFIG.parent.parent / "templates")
    data["data_dir"] = str(folder / "var")
    data.update(extra)
    path = folder / "departments.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), "utf-8")
    return load_settings(path)


def seed(store: Store, settings: Settings, mail: list[Path], password: str
         ) -> dict[str, int]:
    """The sample agents (all with ``password``) and the tickets of ``mail``, by file name."""
    with store.session() as s:
        for login, codes, role, name in AGENTS:
            add_agent(s, settings, login, password, codes, role=role, name=name)
        s.commit()
    ids = {}
    for path in mail:
        raw = path.read_bytes()
        ticket, _ = store.record(triage_bytes(raw, settings), raw, origin=f"sample:{path.name}")
        ids[path.name] = ticket.id
    return ids


@contextmanager
def serve(settings: Settings, store: Store) -> Iterator[str]:
    """The review application on a free loopback port; yields its base URL."""
    server = uvicorn.Server(uvicorn.Config(create_app(settings, store), host="127.0.0.1",
                                           port=free_port(), log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the review application did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{server.config.port}"
    finally:
        server.should_exit = True
        thread.join(10)
