"""Send what the outbox holds, exactly once, and file it in the department's mailbox.

The SMTP transaction is written to the store at two points: ``sending`` before it starts and
``committing`` just before the final dot of DATA, the moment the relay may accept the message
(RFC 1047). After a crash, a reply found ``committing`` is taken as delivered and is never sent
again; one found ``sending`` never reached that point, so the relay discarded it — it is sent
again unless the department mailbox's Sent folder already holds its Message-ID. After sending,
a copy goes to the Sent folder (the server's ``\\Sent`` mailbox where it marks one) and the
original message moves to ``Triage/Traité``, all through
:class:`triage.mailbox.connection.Connection`. Relay failures are typed
(:class:`triage.errors.SmtpTransient`, :class:`triage.errors.SmtpPermanent`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Callable

import aiosmtplib
from aiosmtplib.protocol import PERIOD_REGEX, normalize_message_line_endings
from sqlalchemy.orm import Session

from triage.config import Settings
from triage.errors import ImapError, SmtpError, SmtpPermanent, SmtpTransient
from triage.lifecycle import OutboxState
from triage.mailbox.connection import Connection
from triage.send import outbox
from triage.store import OutboxItem, Store, Ticket
from triage.store import intake as queries

log = logging.getLogger("triage.send")


def smtp_error(settings: Settings, exc: BaseException) -> SmtpError:
    """The typed error a relay failure means: 5xx permanent, anything else transient."""
    peer = f"{settings.smtp.host}:{settings.smtp.effective_port}"
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        kind = SmtpPermanent if 500 <= exc.code < 600 else SmtpTransient
        return kind(peer, f"{exc.code} {exc.message}", command="DATA")
    return SmtpTransient(peer, f"{type(exc).__name__}: {exc}")


def smtp_password(settings: Settings) -> str | None:
    smtp = settings.smtp
    if smtp.password_env:
        return os.environ.get(smtp.password_env)
    if smtp.password_file:
        with open(smtp.password_file, encoding="utf-8") as fh:
            return fh.read().strip()
    return None


async def _transaction(settings: Settings, item: OutboxItem, before_dot: Callable[[], None]
                       ) -> str:
    smtp_conf = settings.smtp
    client = aiosmtplib.SMTP(hostname=smtp_conf.host, port=smtp_conf.effective_port,
                             timeout=smtp_conf.timeout, use_tls=smtp_conf.security == "tls",
                             start_tls=smtp_conf.security == "starttls")
    try:
        await client.connect()
        if smtp_conf.username:
            await client.login(smtp_conf.username, smtp_password(settings) or "")
        await client.mail(item.from_addr)
        await client.rcpt(item.to_addr)
        return await _data(client, item.raw, before_dot, smtp_conf.timeout)
    finally:
        try:
            await client.quit()
        except Exception:
            client.close()


async def _data(client: aiosmtplib.SMTP, raw: bytes, before_dot: Callable[[], None],
                timeout: float) -> str:
    """DATA, written in two steps so that our state is committed before the final dot.

    aiosmtplib's own ``data()`` sends the content and the dot in one write; this is the same
    exchange with the hook in between (it uses the protocol object that ``data()`` uses).
    """
    proto = client.protocol
    if proto is None:
        raise aiosmtplib.SMTPServerDisconnected("not connected")
    content = PERIOD_REGEX.sub(b"..", normalize_message_line_endings(raw))
    if not content.endswith(b"\r\n"):
        content += b"\r\n"
    start = await client.execute_command(b"DATA", timeout=timeout)
    if start.code != 354:
        raise aiosmtplib.SMTPDataError(start.code, start.message)
    proto.write(content)
    before_dot()
    response = await client.execute_command(b".", timeout=timeout)
    if response.code != 250:
        raise aiosmtplib.SMTPDataError(response.code, response.message)
    return f"{response.code} {response.message}"


def send_one(settings: Settings, store: Store, item_id: int) -> None:
    """Take one claimed outbox item to its end state."""
    with store.session() as s:
        item = s.get(OutboxItem, item_id)
        if item is None:
            return
        if item.state == OutboxState.COMMITTING:
            outbox.delivered(s, item, "accepted before a restart (state committing)")
        elif item.state == OutboxState.SENDING and _in_sent_folder(settings, item):
            outbox.delivered(s, item, "found in the Sent folder after a restart")
        if item.state in (OutboxState.QUEUED, OutboxState.SENDING):
            if not outbox.set_state(s, item, OutboxState.SENDING, attempts=item.attempts):
                return  # cancelled (ticket marked handled) since it was claimed

            def before_dot() -> None:
                outbox.set_state(s, item, OutboxState.COMMITTING)

            try:
                reply = asyncio.run(_transaction(settings, item, before_dot))
            except (aiosmtplib.SMTPException, OSError, socket.gaierror, TimeoutError) as exc:
                error = smtp_error(settings, exc)
                if isinstance(error, SmtpPermanent):
                    s.rollback()
                    outbox.refused(s, item, error.detail)
                    log.warning("reply refused by the relay: %s", error.detail,
                                extra={"ticket": item.ticket_id, "event": "outbox.refused"})
                    return
                if item.state == OutboxState.COMMITTING and not isinstance(
                        exc, aiosmtplib.SMTPResponseException):
                    # The dot was written: the relay may hold the message. Never resend.
                    outbox.delivered(s, item, f"connection lost after the final dot: {exc}")
                else:
                    _retry(settings, s, item, error.detail)
                    return
            else:
                outbox.delivered(s, item, reply)
                log.info("reply sent", extra={"ticket": item.ticket_id,
                                               "message_id": item.message_id,
                                               "event": "outbox.sent"})
        if item.state == OutboxState.SENT and not item.filed:
            _file(settings, s, item)


def _retry(settings: Settings, s: Session, item: OutboxItem, error: str) -> None:
    s.rollback()
    delay = outbox.retry_later(s, settings, item, error)
    log.warning("reply not sent: %s; retry in %.0f s", error, delay,
                extra={"ticket": item.ticket_id, "event": "outbox.retry",
                       "retry_in": round(delay, 1)})


def _connection(settings: Settings, item: OutboxItem) -> Connection | None:
    department = settings.department(item.department)
    box = settings.mailbox_of(department.mailbox) if department else None
    return Connection(settings, box) if box is not None else None


def _in_sent_folder(settings: Settings, item: OutboxItem) -> bool:
    conn = _connection(settings, item)
    if conn is None:
        return False
    with conn:
        sent = conn.sent_folder(settings.mailbox_folders(conn.box).sent)
        return bool(conn.message_ids_in(sent, [f"<{item.message_id}>"]))


def _file(settings: Settings, s: Session, item: OutboxItem) -> None:
    """Copy the reply to Sent and move the original to Triage/Traité (idempotent)."""
    conn = _connection(settings, item)
    if conn is None:
        item.filed = True
        s.commit()
        return
    try:
        with conn:
            folders = settings.mailbox_folders(conn.box)
            sent = conn.sent_folder(folders.sent)
            if not conn.message_ids_in(sent, [f"<{item.message_id}>"]):
                conn.append(sent, item.raw, flags=["\\Seen"])
            ticket = s.get(Ticket, item.ticket_id)
            if ticket is not None and ticket.message_id:
                for folder in (folders.draft, folders.human, folders.quarantine, folders.watch):
                    uids = conn.uids_of(folder, ticket.message_id)
                    if uids:
                        conn.move(uids, folders.handled)
                        queries.record_filed(s, conn.box.address, ticket.id,
                                             None if folder == folders.watch else folder,
                                             folders.handled)
            item.filed = True
            s.commit()
    except ImapError as exc:
        s.rollback()
        log.warning("reply sent but not filed yet: %s", exc,
                    extra={"ticket": item.ticket_id, "kind": exc.kind, "command": exc.command,
                           "folder": exc.folder, "event": "outbox.file-retry"})


def send_due(settings: Settings, store: Store, worker: str, limit: int = 100) -> int:
    """Send up to ``limit`` due replies; returns how many items were handled."""
    handled = 0
    while handled < limit:
        with store.session() as s:
            item = outbox.claim(s, worker)
            if item is None:
                return handled
            item_id = item.id
        send_one(settings, store, item_id)
        handled += 1
    return handled
