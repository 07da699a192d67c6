"""Logging: one JSON object per line for machines, readable text on a terminal.

Every line about a message carries the mailbox, the UID, the ticket and the Message-ID as
fields (pass them in ``extra``), so one grep finds a message's whole story.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime

FIELDS = ("mailbox", "uid", "uidvalidity", "ticket", "message_id", "action", "department",
          "event", "attempt", "retry_in", "error", "count")


_EMAIL = re.compile(r"(?<![\w.+-])([\w+-])[\w.+-]*@([\w-]+(?:\.[\w-]+)+)")


def mask(text: str) -> str:
    """E-mail addresses reduced to their first letter and domain: ``j***@mairie.fr``."""
    return _EMAIL.sub(r"\1***@\2", text)


def _message(record: logging.LogRecord) -> str:
    # Personal addresses are masked at INFO and below; warnings and errors keep them, since
    # someone has to act on them. Logs never hold message bodies, passwords or tokens.
    text = record.getMessage()
    return mask(text) if record.levelno <= logging.INFO else text


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": _message(record),
        }
        for key in FIELDS:
            if hasattr(record, key):
                data[key] = getattr(record, key)
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return json.dumps(data, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        extra = " ".join(f"{k}={getattr(record, k)}" for k in FIELDS if hasattr(record, k))
        line = f"{self.formatTime(record, '%H:%M:%S')} {record.levelname:<7} {_message(record)}"
        if extra:
            line += f"  [{extra}]"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def setup_logging(json_lines: bool | None = None, level: int = logging.INFO) -> None:
    """Log to stderr, as JSON lines unless stderr is a terminal (or ``json_lines`` says)."""
    if json_lines is None:
        json_lines = not sys.stderr.isatty()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if json_lines else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("apscheduler", "imapclient"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    scheduler = logging.getLogger("apscheduler.scheduler")
    if not any(isinstance(f, SkippedRunIsExpected) for f in scheduler.filters):
        scheduler.addFilter(SkippedRunIsExpected())


class SkippedRunIsExpected(logging.Filter):
    """APScheduler's « skipped: maximum number of running instances reached » is a debug line.

    A wake-up (IDLE, lease taken over) asks for a pass while one is running; the running pass
    sees the mailbox's dirty flag and goes round again, so the skipped run loses nothing. The
    scheduler warns each time, which floods a busy console: here it is demoted to DEBUG and
    kept only when the root logger shows debug lines.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if "maximum number of running instances reached" not in record.getMessage():
            return True
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return logging.getLogger().isEnabledFor(logging.DEBUG)
