"""Logs: JSON lines with the message's identifiers; personal addresses masked at INFO."""

from __future__ import annotations

import json
import logging

from triage.logs import JsonFormatter, mask


def record(level: int, message: str, **extra: object) -> logging.LogRecord:
    rec = logging.LogRecord("triage.test", level, __file__, 1, message, None, None)
    for key, value in extra.items():
        setattr(rec, key, value)
    return rec


def test_json_line_carries_ticket_and_message_id():
    """One JSON object per line, with the ticket and Message-ID fields."""
    line = JsonFormatter().format(record(logging.INFO, "ticket 4: draft", ticket=4,
                                         message_id="abc@mairie.fr"))
    data = json.loads(line)
    assert data["ticket"] == 4 and data["message_id"] == "abc@mairie.fr"
    assert "\n" not in line


def test_addresses_masked_at_info_not_at_warning():
    """An address in an INFO message is masked; a warning keeps it for whoever must act."""
    info = json.loads(JsonFormatter().format(record(logging.INFO, "from jean.dupont@mairie.fr")))
    assert info["message"] == "from j***@mairie.fr"
    warn = json.loads(JsonFormatter().format(record(logging.WARNING, "from jean.dupont@mairie.fr")))
    assert "jean.dupont@mairie.fr" in warn["message"]
    assert mask("a.b+c@x.y.fr et z@q.fr") == "a***@x.y.fr et z***@q.fr"


def test_scheduler_skipped_runs_are_debug_lines(capsys):
    """APScheduler's « maximum number of running instances reached » stays off an INFO console."""
    from triage.logs import setup_logging

    scheduler = logging.getLogger("apscheduler.scheduler")
    skipped = ('Execution of job "poll" skipped: maximum number of running instances '
               "reached (1)")
    try:
        setup_logging(json_lines=True, level=logging.INFO)
        scheduler.warning(skipped)
        scheduler.warning("Run time of job was missed by 0:00:31")
        lines = [json.loads(x) for x in capsys.readouterr().err.splitlines()]
        assert [x["message"] for x in lines] == ["Run time of job was missed by 0:00:31"]
        setup_logging(json_lines=True, level=logging.DEBUG)
        logging.getLogger("apscheduler").setLevel(logging.DEBUG)
        scheduler.warning(skipped)
        lines = [json.loads(x) for x in capsys.readouterr().err.splitlines()]
        assert [(x["level"], x["message"]) for x in lines] == [("debug", skipped)]
    finally:
        logging.getLogger().handlers.clear()
        logging.getLogger().setLevel(logging.WARNING)
