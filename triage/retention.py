"""Personal data: retention periods, purge with an elimination record, and access exports.

``triage purge`` removes what is older than its period in the ``retention`` settings: the raw
message and the sender's details of old tickets, old drafts and outgoing copies, old audit
entries. The helpdesk's mail is public archive material (Code du patrimoine L212-2): unless
the configuration says no authorisation applies, a purge needs the reference of the archive
service's authorisation (« visa d'élimination »). Every purge writes an elimination record.
``triage export --email`` gathers everything held about one person for an access request.
The sign-in records (web sessions, login attempts) are logs, not archives: :func:`housekeep`
removes them past ``retention.logs_days`` without an authorisation.
"""

from __future__ import annotations

import base64
import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click
from sqlalchemy.orm import Session

from triage.config import Settings
from triage.store import AuditEvent, Elimination, Store
from triage.store import sessions as sign_ins
from triage.store.retention import ERASED, Cutoffs, erase_past_period, past_period, person_records


def _cutoffs(settings: Settings, now: datetime) -> Cutoffs:
    r = settings.retention
    return Cutoffs(raw_messages=now - timedelta(days=r.raw_messages_days),
                   drafts=now - timedelta(days=r.drafts_days),
                   audit=now - timedelta(days=r.audit_days))


def plan(s: Session, settings: Settings, now: datetime | None = None) -> dict[str, int]:
    """How many records of each kind are past their retention period."""
    return past_period(s, _cutoffs(settings, now or datetime.now(UTC)))


def purge(s: Session, settings: Settings, actor: str, authorisation: str | None,
          now: datetime | None = None) -> Elimination:
    """Remove what is past its period and record the elimination; the caller commits."""
    cut = _cutoffs(settings, now or datetime.now(UTC))
    counts = past_period(s, cut)
    erase_past_period(s, cut)
    record = Elimination(actor=actor, authorisation=authorisation,
                         settings=settings.retention.model_dump(), counts={
                             **counts, "logs": "journald/syslog: see deploy/ (MaxRetentionSec)"})
    s.add(record)
    return record


def housekeep(s: Session, settings: Settings, now: datetime | None = None) -> tuple[int, int]:
    """Delete the sign-in records past ``retention.logs_days``: the web sessions ended (or
    opened) before, the login attempts made before. Returns how many of each; the caller
    commits.

    They are connection logs (who signed in, from where, with which browser), not archives:
    kept as long as logs, removed without an authorisation or an elimination record, by the
    daemon's housekeeping job and by ``triage purge``. Throttling reads only the last
    ``web.login_window_minutes`` of attempts and a session lasts ``web.session_max_hours`` at
    most: what either still needs is kept, even where the configuration makes them longer
    than the logs' period.
    """
    now = now or datetime.now(UTC)
    keep = timedelta(days=settings.retention.logs_days)
    # A session opened before the cutoff has expired unless it may last longer than the logs.
    opened = max(keep, timedelta(hours=settings.web.session_max_hours))
    # The throttle counts the failures of its window: purging them would lift a login's wait.
    tried = max(keep, timedelta(minutes=settings.web.login_window_minutes))
    return sign_ins.purge(s, now - opened, now - tried)


def export_person(s: Session, address: str) -> dict[str, Any]:
    """Everything held about ``address``: messages, decisions, drafts, replies, audit."""
    address = address.strip().lower()
    found = person_records(s, address)
    tickets, drafts, outgoing, audit = found.tickets, found.drafts, found.outgoing, found.audit

    def when(d: datetime | None) -> str | None:
        return d.isoformat() if d else None

    return {
        "subject": address,
        "exported_at": datetime.now(UTC).isoformat(),
        "tickets": [{
            "id": t.id, "received_at": when(t.created_at), "message_id": t.message_id,
            "subject": t.subject, "sender": t.sender, "department": t.department,
            "action": t.action, "intent": t.intent, "identifier": t.identifier,
            "status": t.status, "reasons": t.reasons,
            "message": t.raw.decode("utf-8", "replace"),
            "message_base64": base64.b64encode(t.raw).decode(),
        } for t in tickets],
        "drafts": [{"id": d.id, "ticket": d.ticket_id, "template": d.template,
                    "to": d.to_addr, "subject": d.subject, "body": d.body,
                    "status": d.status, "created_at": when(d.created_at)} for d in drafts],
        "replies": [{"id": o.id, "ticket": o.ticket_id, "to": o.to_addr, "state": o.state,
                     "message_id": o.message_id, "sent_at": when(o.sent_at),
                     "message": o.raw.decode("utf-8", "replace")} for o in outgoing],
        "audit": [{"at": when(e.at), "ticket": e.ticket_id, "actor": e.actor,
                   "event": e.event, "detail": e.detail} for e in audit],
    }


@click.command("purge")
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="List what is past its period; remove nothing.")
@click.option("--authorisation", default=None,
              help="Reference of the archive service's authorisation (visa d'élimination).")
@click.option("--actor", default="cli", help="Who runs the purge (recorded).")
def purge_command(config_path: Path | None, dry_run: bool, authorisation: str | None,
                  actor: str) -> None:
    """Remove personal data past its retention period; write an elimination record."""
    from triage.cli import settings_or_exit

    settings = settings_or_exit(config_path)
    store = Store.open(settings)
    with store.session() as s:
        counts = plan(s, settings)
        for kind, count in counts.items():
            click.echo(f"{kind:<14} {count:>8} past the retention period")
        if dry_run:
            return
        if settings.retention.authorisation_required and not authorisation:
            click.echo("error: this purge destroys public archives: give the reference of the "
                       "archive service's authorisation with --authorisation REF (or set "
                       "retention.authorisation_required: false where none applies)", err=True)
            sys.exit(2)
        record = purge(s, settings, actor, authorisation)
        sessions, attempts = housekeep(s, settings)
        s.commit()
        click.echo(f"elimination record #{record.id} written")
        click.echo(f"{sessions} web sessions and {attempts} login attempts past "
                   f"retention.logs_days removed")


@click.command("export")
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--email", "address", required=True, help="The person's e-mail address.")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), default=None)
def export_command(config_path: Path | None, address: str, output: Path | None) -> None:
    """Write everything held about one person (access request), as JSON."""
    from triage.cli import settings_or_exit

    store = Store.open(settings_or_exit(config_path))
    with store.session() as s:
        data = export_person(s, address)
        s.add(AuditEvent(actor="cli", event="person.exported",
                         detail={"tickets": len(data["tickets"])}))
        s.commit()
    text = json.dumps(data, ensure_ascii=False, indent=2)
    if output:
        output.write_text(text, "utf-8")
        click.echo(f"{len(data['tickets'])} tickets written to {output}")
    else:
        click.echo(text)


__all__ = ["ERASED", "export_command", "export_person", "housekeep", "plan", "purge",
           "purge_command"]
