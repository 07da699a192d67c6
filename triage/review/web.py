"""The agents' web application (Starlette, server-rendered Jinja2 pages in French, no script).

Every page and every form checks the session, and every read of a ticket checks on the server
that the agent works for its department (403 otherwise), whether it was reached by the queue, a
typed URL or a forged form post. Every POST carries the session's CSRF token (403 without it);
GET never changes state. Responses carry a strict Content-Security-Policy.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from triage import lifecycle, metrics
from triage.config import TEMPLATE_NAMES, Settings
from triage.review import views
from triage.review.agents import may_see, verify_password
from triage.review.dashboard import DASHBOARD_ROLES, dashboard_page
from triage.review.moderation import Forbidden, ModerationError, Verb, handle, viewed
from triage.review.sessions import (
    SessionCodec,
    SessionData,
    agent_of,
    csrf_ok,
    record_attempt,
    too_many_attempts,
)
from triage.store import Agent, Store, Ticket

HERE = Path(__file__).resolve().parent
CSP = ("default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
       "frame-ancestors 'none'; base-uri 'none'")


class SecurityHeaders(BaseHTTPMiddleware):
    async def dispatch(self, request: Request,
                       call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        response = await call_next(request)
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers.setdefault("Cache-Control", "no-store")
        return response


class ReviewApp:
    def __init__(self, settings: Callable[[], Settings], store: Store) -> None:
        self.settings = settings
        self.store = store
        self.codec = SessionCodec(settings())
        self.templates = Jinja2Templates(directory=str(HERE / "templates"))
        env = self.templates.env
        env.globals.update(ACTIONS=views.ACTIONS, INTENTS=views.INTENTS, STATUSES=views.STATUSES,
                           TEMPLATE_NAMES=TEMPLATE_NAMES, age=views.age,
                           EVENTS=views.EVENTS, DASHBOARD_ROLES=DASHBOARD_ROLES,
                           OUTBOX_STATES=views.OUTBOX_STATES, TODO=lifecycle.TODO,
                           TicketState=lifecycle.TicketState)
        self.extra_routes: list[Route] = []

    # -- plumbing --------------------------------------------------------------------------
    def session_data(self, request: Request) -> SessionData | None:
        return self.codec.decode(request.cookies.get(self.codec.cookie_name))

    def render(self, request: Request, name: str, context: dict[str, Any],
               data: SessionData | None, status: int = 200) -> Response:
        response = self.templates.TemplateResponse(
            request, name, {**context, "csrf": data.csrf if data else ""}, status_code=status)
        if data is not None:
            response.set_cookie(value=self.codec.encode(self.codec.touch(data)),
                                **self.codec.cookie_args())
        return response

    def error(self, request: Request, status: int, message: str,
              data: SessionData | None = None, agent: Agent | None = None) -> Response:
        return self.render(request, "error.html", {"status": status, "message": message,
                                                   "agent": agent}, data, status)

    def login_redirect(self, request: Request) -> Response:
        target = quote(request.url.path)
        response = RedirectResponse(f"/login?next={target}", status_code=303)
        response.delete_cookie(self.codec.cookie_name, path="/")
        return response

    def authenticated(self, handler: Callable[[Request, Session, Agent, SessionData],
                                              Awaitable[Response]]
                      ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            data = self.session_data(request)
            with self.store.session() as s:
                agent = agent_of(s, data)
                if agent is None or data is None:
                    return self.login_redirect(request)
                if request.method == "POST":
                    form = await request.form()
                    token = form.get("csrf")
                    if not csrf_ok(data, token if isinstance(token, str) else None):
                        return self.error(request, 403, "Jeton de sécurité (CSRF) absent ou "
                                                        "invalide : rechargez la page.")
                return await handler(request, s, agent, data)
        return endpoint

    def refuse(self, request: Request, s: Session, agent: Agent, data: SessionData,
               ticket: Ticket | None) -> Response | None:
        """404 for no such ticket, 403 for another department's; None when the agent may see it.

        Every read and every action on a ticket goes through here, whatever the route.
        """
        if ticket is None:
            return self.error(request, 404, "Demande introuvable.", data, agent)
        if not may_see(s, self.settings(), agent, ticket):
            return self.error(request, 403, "Cette demande relève d'un autre département.",
                              data, agent)
        return None

    def ticket_for(self, request: Request, s: Session, agent: Agent) -> Ticket | None:
        try:
            ticket = s.get(Ticket, int(request.path_params["ticket_id"]))
        except (KeyError, ValueError):
            return None
        return ticket

    # -- pages -----------------------------------------------------------------------------
    async def login_page(self, request: Request) -> Response:
        data = self.session_data(request) or self.codec.new(None)
        return self.render(request, "login.html", {"next": request.query_params.get("next", "/"),
                                                   "error": None}, data)

    async def login(self, request: Request) -> Response:
        settings = self.settings()
        data = self.session_data(request)
        form = await request.form()
        login = str(form.get("login", "")).strip().lower()[:100]
        password = str(form.get("password", ""))
        target = str(form.get("next", "/"))
        if not re.fullmatch(r"/[\w/?=&%.-]*", target) or target.startswith("//"):
            target = "/"
        if not csrf_ok(data, str(form.get("csrf", ""))):
            return self.error(request, 403, "Jeton de sécurité (CSRF) absent ou invalide : "
                                            "rechargez la page.", self.codec.new(None))
        address = request.client.host if request.client else "?"
        with self.store.session() as s:
            if too_many_attempts(s, settings, login, address):
                return self.render(request, "login.html", {
                    "next": target, "error": "Trop de tentatives : réessayez dans quelques "
                                             "minutes."}, data, 429)
            agent = s.scalar(select(Agent).where(Agent.login == login))
            ok = bool(agent and not agent.disabled and verify_password(agent, password))
            record_attempt(s, login, address, ok)
            s.commit()
            if not ok or agent is None:
                return self.render(request, "login.html", {
                    "next": target, "error": "Identifiant ou mot de passe incorrect."}, data, 401)
            fresh = self.codec.new(agent)  # a new session id and CSRF token at each login
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(value=self.codec.encode(fresh), **self.codec.cookie_args())
        return response

    async def logout(self, request: Request, s: Session, agent: Agent,
                     data: SessionData) -> Response:
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(self.codec.cookie_name, path="/")
        return response

    async def queue_page(self, request: Request, s: Session, agent: Agent,
                         data: SessionData) -> Response:
        q = request.query_params
        action = q.get("action") if q.get("action") in views.ACTIONS else None
        intent = q.get("intent") if q.get("intent") in views.INTENTS else None
        status = q.get("status") if q.get("status") in ("todo", "all", *views.STATUSES) else "todo"
        order = "oldest" if q.get("order") == "oldest" else "newest"
        page_number = int(q["page"]) if q.get("page", "").isdigit() else 1
        page = views.queue(s, self.settings(), agent, action, intent, status or "todo", order,
                           page_number)
        return self.render(request, "queue.html", {
            "agent": agent, "rows": page.rows, "counts": page.counts, "page": page,
            "action": action, "intent": intent, "status": status, "order": order}, data)

    async def ticket_page(self, request: Request, s: Session, agent: Agent,
                          data: SessionData) -> Response:
        settings = self.settings()
        ticket = self.ticket_for(request, s, agent)
        refused = self.refuse(request, s, agent, data, ticket)
        if refused is not None or ticket is None:
            return refused or self.error(request, 404, "Demande introuvable.", data, agent)
        viewed(s, ticket, agent)
        s.commit()
        page = views.ticket_page(s, settings, ticket, agent)
        return self.render(request, "ticket.html", {
            "agent": agent, "page": page, "t": ticket, "departments": settings.departments,
            "notice": request.query_params.get("ok"), "problem": request.query_params.get("err"),
        }, data)

    async def attachment(self, request: Request, s: Session, agent: Agent,
                         data: SessionData) -> Response:
        ticket = self.ticket_for(request, s, agent)
        refused = self.refuse(request, s, agent, data, ticket)
        if refused is not None or ticket is None:
            return refused or self.error(request, 404, "Demande introuvable.", data, agent)
        found = views.attachment_bytes(ticket.raw, int(request.path_params["index"]))
        if found is None:
            return self.error(request, 404, "Pièce jointe introuvable.", data, agent)
        name, _ctype, content = found
        safe = re.sub(r"[^\w.-]", "_", name)[:100] or "piece-jointe"
        viewed(s, ticket, agent)
        s.commit()
        # Always a download, never rendered by the browser.
        return Response(content, media_type="application/octet-stream", headers={
            "Content-Disposition": f'attachment; filename="{safe}"',
            "Content-Security-Policy": "default-src 'none'; sandbox"})

    async def act(self, request: Request, s: Session, agent: Agent,
                  data: SessionData) -> Response:
        settings = self.settings()
        ticket = self.ticket_for(request, s, agent)
        refused = self.refuse(request, s, agent, data, ticket)
        if refused is not None or ticket is None:
            return refused or self.error(request, 404, "Demande introuvable.", data, agent)
        try:
            verb = Verb(request.path_params["verb"])
        except ValueError:
            return self.error(request, 404, "Action inconnue.", data, agent)
        form = {k: str(v) for k, v in (await request.form()).items() if k != "csrf"}
        try:
            message = handle(s, settings, agent, ticket, verb, form)
            s.commit()
        except Forbidden as exc:
            s.rollback()
            return self.error(request, 403, str(exc).capitalize() + ".", data, agent)
        except ModerationError as exc:
            s.rollback()
            return RedirectResponse(f"/tickets/{ticket.id}?err={quote(str(exc))}",
                                    status_code=303)
        return RedirectResponse(f"/tickets/{ticket.id}?ok={quote(message)}", status_code=303)

    async def healthz(self, request: Request) -> Response:
        return Response("ok\n", media_type="text/plain")

    def app(self) -> Starlette:
        routes = [
            Route("/login", self.login_page, methods=["GET"]),
            Route("/login", self.login, methods=["POST"]),
            Route("/logout", self.authenticated(self.logout), methods=["POST"]),
            Route("/", self.authenticated(self.queue_page), methods=["GET"]),
            Route("/tickets/{ticket_id:int}", self.authenticated(self.ticket_page),
                  methods=["GET"]),
            Route("/tickets/{ticket_id:int}/attachments/{index:int}",
                  self.authenticated(self.attachment), methods=["GET"]),
            Route("/tickets/{ticket_id:int}/{verb:str}", self.authenticated(self.act),
                  methods=["POST"]),
            Route("/healthz", self.healthz, methods=["GET"]),
            # -- observability and dashboard (triage.metrics, triage.review.dashboard) --
            *metrics.routes(self.store, self.settings),
            Route("/dashboard", self.authenticated(functools.partial(dashboard_page, self)),
                  methods=["GET"]),
            *self.extra_routes,
            Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
        ]
        return Starlette(routes=routes, middleware=[Middleware(SecurityHeaders)])


def create_app(settings: Settings | Callable[[], Settings], store: Store) -> Starlette:
    getter = settings if callable(settings) else (lambda: settings)
    return ReviewApp(getter, store).app()


__all__ = ["ReviewApp", "create_app"]
