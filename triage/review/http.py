"""HTTP plumbing of the web application: the security headers every response carries (error
responses included), the last-resort error page, attachment download names (RFC 6266), and
how uvicorn serves the application (which peers may say who the client is)."""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from starlette.responses import HTMLResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from triage.config import Settings

log = logging.getLogger("triage.web")

CSP = ("default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
       "frame-ancestors 'none'; base-uri 'none'")
SECURITY_HEADERS = (
    ("content-security-policy", CSP),
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "no-referrer"),
    ("cache-control", "no-store"),
)
class SecurityHeaders:
    """Adds the security headers to every response (a header the response set is kept), and
    turns any exception escaping the application into the French 500 page: the client gets a
    complete response and the connection stays open (Starlette's last-resort handler would
    answer without these headers and re-raise, which makes the server drop the connection)."""

    def __init__(self, app: ASGIApp, error_page: Callable[[], bytes]) -> None:
        self.app = app
        self.error_page = error_page

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _v in headers}
                headers += [(k.encode(), v.encode()) for k, v in SECURITY_HEADERS
                            if k.encode() not in present]
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        except Exception:
            log.exception("error while answering %s %s", scope.get("method"),
                          scope.get("path", "")[:200])
            if started:
                raise  # the response is half sent: only closing the connection is left
            await HTMLResponse(self.error_page(), status_code=500)(scope, receive,
                                                                    send_with_headers)


def content_disposition(name: str, fallback: str) -> str:
    """``attachment`` with the name as RFC 6266 wants it: an ASCII ``filename`` for old
    clients and ``filename*=UTF-8''…`` (RFC 8187) with the real name."""
    # Accents dropped (é -> e), any other character that is not a plain letter becomes "_".
    ascii_name = "".join(ch for ch in unicodedata.normalize("NFKD", name)
                         if not unicodedata.combining(ch))
    ascii_name = re.sub(r"[^\w.-]", "_", ascii_name, flags=re.ASCII).strip("_")[:100]
    stem, dot, extension = ascii_name.rpartition(".")
    if not re.search(r"[A-Za-z0-9]", stem if dot else ascii_name):  # nothing readable left
        ascii_name = fallback + (f".{extension}" if dot and extension.isalnum() else "")
    real = name or fallback
    return (f'attachment; filename="{ascii_name or fallback}"; '
            f"filename*=UTF-8''{quote(real[:200], safe='')}")


def server_config(app: ASGIApp, settings: Settings, **overrides: Any) -> Any:
    """The uvicorn configuration of the web application: ``X-Forwarded-For`` is believed only
    from the peers of ``web.trusted_proxies`` (none by default: uvicorn would believe loopback,
    so a client on the machine could pose as any address)."""
    import uvicorn

    trusted = list(settings.web.trusted_proxies)
    options: dict[str, Any] = {
        "host": settings.web.host, "port": settings.web.port, "log_level": "warning",
        "server_header": False, "proxy_headers": bool(trusted),
        "forwarded_allow_ips": trusted or "", **overrides}
    return uvicorn.Config(app, **options)
