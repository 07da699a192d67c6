"""The agents' web application (Starlette, server-rendered Jinja2 pages in French, no script).

Every page and every form checks the session, and every read of a ticket checks on the server
that the agent works for its department (403 otherwise), whether it was reached by the queue, a
typed URL or a forged form post. Every POST carries the session's CSRF token (403 without it);
GET never changes state. Every response, error pages included, carries the security headers
(a strict Content-Security-Policy among them); an unexpected error gives a French error page,
is logged, and leaves the connection usable. Route parameters out of range are 404.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from sqlalchemy.orm import Session
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from triage import lifecycle, metrics, rules
from triage.config import TEMPLATE_NAMES, Settings
from triage.lifecycle import AGENT_EVENTS, Event
from triage.review import french, remote, views
from triage.review.agents import may_see
from triage.review.dashboard import DASHBOARD_ROLES, dashboard_page
from triage.review.http import SecurityHeaders, content_disposition
from triage.review.moderation import (
    CONFIRM_ADDRESS,
    Forbidden,
    ModerationError,
    handle,
    head_of,
    reset_statement,
    viewed,
)
from triage.review.sessions import (
    SessionCodec,
    SessionData,
    active_sessions,
    agent_of,
    csrf_ok,
    end_session,
    login_wait,
    open_session,
    record_attempt,
    revoke_session,
    verify_login,
)
from triage.store import Agent, Store, Ticket, holds

HERE = Path(__file__).resolve().parent
#: Ticket ids are 32-bit in every database the store supports; anything outside is no ticket.
MAX_ID = 2**31 - 1
MAX_ATTACHMENTS = 10_000
_SESSION_ID = re.compile(r"[0-9a-f]{64}")
_NEXT = re.compile(r"/[\w/?=&%.-]*")

MESSAGES = {
    400: "Requête mal formée.",
    401: "Connexion requise.",
    403: "Accès refusé.",
    404: "Page introuvable.",
    405: "Méthode non autorisée pour cette adresse.",
    413: "Requête trop volumineuse.",
    500: "Erreur interne : l'incident est enregistré, réessayez plus tard.",
}


def _small_int(value: str, digits: int) -> int | None:
    """A query parameter of at most ``digits`` ASCII digits, else None.

    ``str.isdigit()`` also accepts « ² » and other digits that ``int()`` refuses (a 500), and
    any length.
    """
    return int(value) if re.fullmatch(rf"[0-9]{{1,{digits}}}", value) else None


class ReviewApp:
    def __init__(self, settings: Callable[[], Settings], store: Store) -> None:
        self.settings = settings
        self.store = store
        self.codec = SessionCodec(settings())
        self.templates = Jinja2Templates(directory=str(HERE / "templates"))
        env = self.templates.env
        env.globals.update(ACTIONS=views.ACTIONS, INTENTS=views.INTENTS, STATUSES=views.STATUSES,
                           TEMPLATE_NAMES=TEMPLATE_NAMES, age=views.age, when=french.when,
                           ago=french.ago, business_days=french.business_days,
                           reset_statement=reset_statement, CONFIRM_ADDRESS=CONFIRM_ADDRESS,
                           LEGEND=rules.legend(),
                           EVENTS=views.EVENTS, DASHBOARD_ROLES=DASHBOARD_ROLES,
                           OUTBOX_STATES=views.OUTBOX_STATES, TODO=lifecycle.TODO,
                           TicketState=lifecycle.TicketState)
        self.extra_routes: list[Route] = []

    # -- plumbing --------------------------------------------------------------------------
    def session_data(self, request: Request) -> SessionData | None:
        return self.codec.decode(request.cookies.get(self.codec.cookie_name))

    def render(self, request: Request, name: str, context: dict[str, Any],
               data: SessionData | None, status: int = 200) -> Response:
        """A page; the session's flash notice is shown on it once, then dropped."""
        flash = data.flash if data else None
        response = self.templates.TemplateResponse(
            request, name, {"agent": None, **context, "csrf": data.csrf if data else "",
                            "flash": flash, "DESK": self.settings().desk}, status_code=status)
        if data is not None:
            kept = replace(self.codec.touch(data), flash=None)
            response.set_cookie(value=self.codec.encode(kept), **self.codec.cookie_args())
        return response

    def error(self, request: Request, status: int, message: str,
              data: SessionData | None = None, agent: Agent | None = None) -> Response:
        return self.render(request, "error.html", {"status": status, "message": message,
                                                   "agent": agent}, data, status)

    def error_page(self) -> bytes:
        """The 500 page, rendered without the request (whatever failed may be the request)."""
        html = self.templates.get_template("error.html").render(
            status=500, message=MESSAGES[500], agent=None, csrf="", flash=None)
        return html.encode("utf-8")

    async def http_error(self, request: Request, exc: Exception) -> Response:
        """Starlette's HTTP errors (no such route, method not allowed, malformed form) as the
        French error page."""
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        response = self.error(request, status, MESSAGES.get(status, "Requête refusée."))
        if isinstance(exc, HTTPException) and exc.headers:
            response.headers.update(exc.headers)
        return response

    def redirect(self, target: str, data: SessionData, flash: tuple[str, str]) -> Response:
        """A redirect after an action, with its notice in the signed session."""
        response = RedirectResponse(target, status_code=303)
        noted = replace(self.codec.touch(data), flash=flash)
        response.set_cookie(value=self.codec.encode(noted),
                            **self.codec.cookie_args())
        return response

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
        number = request.path_params.get("ticket_id")
        if not isinstance(number, int) or not 1 <= number <= MAX_ID:
            return None
        return s.get(Ticket, number)

    # -- pages -----------------------------------------------------------------------------
    async def login_page(self, request: Request) -> Response:
        data = self.session_data(request) or self.codec.new(None)
        target = request.query_params.get("next", "/")
        return self.render(request, "login.html", {"next": _safe_next(target), "error": None},
                           data)

    async def login(self, request: Request) -> Response:
        settings = self.settings()
        data = self.session_data(request)
        form = await request.form()
        login = str(form.get("login", "")).strip().lower()[:100]
        password = str(form.get("password", ""))[:1000]
        target = _safe_next(str(form.get("next", "/")))
        if not csrf_ok(data, str(form.get("csrf", ""))):
            return self.error(request, 403, "Jeton de sécurité (CSRF) absent ou invalide : "
                                            "rechargez la page.", self.codec.new(None))
        client = request.client.host if request.client else "?"
        with self.store.session() as s:
            wait = login_wait(s, settings, login, client)
            if wait > 0:
                response = self.render(request, "login.html", {
                    "next": target, "error": "Trop de tentatives : réessayez dans "
                                             f"{int(wait) + 1} secondes."}, data, 429)
                response.headers["Retry-After"] = str(int(wait) + 1)
                return response
            agent = await run_in_threadpool(verify_login, s, login, password)
            record_attempt(s, login, client, agent is not None)
            if agent is None:
                s.commit()
                return self.render(request, "login.html", {
                    "next": target, "error": "Identifiant ou mot de passe incorrect."}, data, 401)
            fresh = self.codec.new(agent)  # a new session id and CSRF token at each login
            open_session(s, agent, fresh, client, request.headers.get("user-agent", ""))
            s.commit()
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(value=self.codec.encode(fresh), **self.codec.cookie_args())
        return response

    async def logout(self, request: Request, s: Session, agent: Agent,
                     data: SessionData) -> Response:
        end_session(s, data, agent.login)
        s.commit()
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(self.codec.cookie_name, path="/")
        return response

    async def queue_page(self, request: Request, s: Session, agent: Agent,
                         data: SessionData) -> Response:
        settings = self.settings()
        q = request.query_params
        codes = {d.code for d in settings.departments}
        older = _small_int(q.get("older", ""), 3)
        f = views.Filters(
            action=q.get("action") if q.get("action") in views.ACTIONS else None,
            intent=q.get("intent") if q.get("intent") in views.INTENTS else None,
            # A search without a chosen state looks in every state: the agent is looking
            # for a request, maybe answered long ago.
            status=str(q.get("status")) if q.get("status") in ("todo", "all", *views.STATUSES)
            else "all" if q.get("q", "").strip() else "todo",
            order="oldest" if q.get("order") == "oldest" else "newest",
            page=_small_int(q.get("page", ""), 6) or 1,
            search=q.get("q", "").strip()[:200],
            department=q.get("department") if q.get("department") in codes else None,
            older_than=older if older is not None and 0 < older < 400 else None)
        page = views.queue(s, settings, agent, f)
        return self.render(request, "queue.html", {
            "agent": agent, "rows": page.rows, "counts": page.counts, "page": page, "f": f,
            "action": f.action, "intent": f.intent, "status": f.status, "order": f.order,
            "departments": [d for d in settings.departments
                            if agent.is_admin or d.code in agent.departments],
            "old_after": settings.desk.old_after_business_days,
            "query": urlencode({k: v for k, v in (
                ("q", f.search), ("action", f.action or ""), ("intent", f.intent or ""),
                ("status", f.status), ("order", f.order), ("department", f.department or ""),
                ("older", f.older_than or "")) if v})}, data)

    async def ticket_page(self, request: Request, s: Session, agent: Agent,
                          data: SessionData) -> Response:
        settings = self.settings()
        ticket = self.ticket_for(request, s, agent)
        refused = self.refuse(request, s, agent, data, ticket)
        if refused is not None or ticket is None:
            return refused or self.error(request, 404, "Demande introuvable.", data, agent)
        viewed(s, ticket, agent)
        s.commit()
        # Parsing a large message takes a while: not on the event loop, which serves the others.
        page = await run_in_threadpool(views.ticket_page, s, settings, ticket, agent)
        return self.render(request, "ticket.html", {
            "agent": agent, "page": page, "t": ticket, "departments": settings.departments,
            "holders": views.holders(s, agent, page.head),
        }, data)


    async def attachment(self, request: Request, s: Session, agent: Agent,
                         data: SessionData) -> Response:
        ticket = self.ticket_for(request, s, agent)
        refused = self.refuse(request, s, agent, data, ticket)
        if refused is not None or ticket is None:
            return refused or self.error(request, 404, "Demande introuvable.", data, agent)
        index = request.path_params.get("index")
        if not isinstance(index, int) or not 0 <= index < MAX_ATTACHMENTS:
            return self.error(request, 404, "Pièce jointe introuvable.", data, agent)
        found = await run_in_threadpool(views.attachment, self.settings(), ticket, index)
        if found is None:
            return self.error(request, 404, "Pièce jointe introuvable.", data, agent)
        entry, content = found
        if content is None:  # not fetched at intake: from the mailbox, now
            content = await run_in_threadpool(
                remote.fetch_missing, self.settings(), ticket, list(ticket.sources),
                views.manifest(ticket, None, self.settings()), entry)
        if content is None:
            return self.error(request, 404, views.not_fetched(entry, ticket), data, agent)
        viewed(s, ticket, agent)
        s.commit()
        # Always a download, never rendered by the browser.
        return Response(content, media_type="application/octet-stream", headers={
            "Content-Disposition": content_disposition(entry.filename,
                                                       f"piece-jointe-{index + 1}"),
            "Content-Security-Policy": "default-src 'none'; sandbox"})

    async def act(self, request: Request, s: Session, agent: Agent,
                  data: SessionData) -> Response:
        settings = self.settings()
        ticket = self.ticket_for(request, s, agent)
        refused = self.refuse(request, s, agent, data, ticket)
        if refused is not None or ticket is None:
            return refused or self.error(request, 404, "Demande introuvable.", data, agent)
        verb = next((e for e in AGENT_EVENTS if e.value == request.path_params["verb"]), None)
        if verb is None:
            return self.error(request, 404, "Action inconnue.", data, agent)
        form = {k: str(v) for k, v in (await request.form()).items() if k != "csrf"}
        head = head_of(s, ticket)
        hold = holds.current(head, settings.desk.hold_minutes)
        if hold and hold.login != agent.login and form.get("override") != "yes":
            return self.redirect(f"/tickets/{ticket.id}", data, (
                "err", f"{hold.login} s'occupe de cette demande depuis "
                f"{french.when(hold.since)} : cochez la confirmation pour agir quand même."))
        try:
            message = handle(s, settings, agent, ticket, verb, form)
            holds.renew(head, agent.login)
            s.commit()
        except Forbidden as exc:
            s.rollback()
            return self.error(request, 403, str(exc).capitalize() + ".", data, agent)
        except ModerationError as exc:
            s.rollback()
            return self.redirect(f"/tickets/{ticket.id}", data, ("err", str(exc)))
        if verb is Event.REASSIGN:  # out of the agent's departments, maybe: back to the queue
            return self.redirect("/", data, ("ok", f"Demande #{head.id} : {message}"))
        return self.redirect(f"/tickets/{ticket.id}", data, ("ok", message))

    async def hold(self, request: Request, s: Session, agent: Agent,
                   data: SessionData) -> Response:
        """« Je m'en occupe », « Je la rends », and a lead giving the hold to someone."""
        settings = self.settings()
        ticket = self.ticket_for(request, s, agent)
        refused = self.refuse(request, s, agent, data, ticket)
        if refused is not None or ticket is None:
            return refused or self.error(request, 404, "Demande introuvable.", data, agent)
        head = head_of(s, ticket)
        form = await request.form()
        op, to = str(form.get("op", "")), str(form.get("to", ""))
        hold = holds.current(head, settings.desk.hold_minutes)
        mine = hold is not None and hold.login == agent.login
        if op == "take":
            if hold and not mine and form.get("override") != "yes":
                return self.redirect(f"/tickets/{ticket.id}", data, (
                    "err", f"{hold.login} s'occupe déjà de cette demande : cochez la "
                    "confirmation pour la prendre."))
            holds.take(s, head, agent.login)
            notice = "Vous vous occupez de cette demande."
        elif op == "release" and hold is not None and (mine or agent.role in views.LEADS):
            holds.release(s, head, agent.login)
            notice = "Demande rendue à l'équipe."
        elif op == "give" and agent.role in views.LEADS and to in views.holders(s, agent, head):
            holds.take(s, head, to, actor=agent.login)
            notice = f"Demande confiée à {to}."
        else:
            return self.redirect(f"/tickets/{ticket.id}", data, ("err", "Action impossible."))
        s.commit()
        return self.redirect(f"/tickets/{ticket.id}", data, ("ok", notice))

    async def sessions_page(self, request: Request, s: Session, agent: Agent,
                            data: SessionData) -> Response:
        if not agent.is_admin:
            return self.error(request, 403, "Page réservée aux administrateurs.", data, agent)
        rows = active_sessions(s, self.settings())
        return self.render(request, "sessions.html", {"agent": agent, "rows": rows}, data)

    async def revoke(self, request: Request, s: Session, agent: Agent,
                     data: SessionData) -> Response:
        if not agent.is_admin:
            return self.error(request, 403, "Page réservée aux administrateurs.", data, agent)
        row_id = str(request.path_params.get("session_id", ""))
        if not _SESSION_ID.fullmatch(row_id) or revoke_session(s, row_id, agent) is None:
            return self.error(request, 404, "Session introuvable ou déjà terminée.", data, agent)
        s.commit()
        return self.redirect("/admin/sessions", data, ("ok", "Session terminée."))

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
            Route("/tickets/{ticket_id:int}/hold", self.authenticated(self.hold),
                  methods=["POST"]),
            Route("/tickets/{ticket_id:int}/{verb:str}", self.authenticated(self.act),
                  methods=["POST"]),
            Route("/admin/sessions", self.authenticated(self.sessions_page), methods=["GET"]),
            Route("/admin/sessions/{session_id:str}/revoke", self.authenticated(self.revoke),
                  methods=["POST"]),
            Route("/healthz", self.healthz, methods=["GET"]),
            # -- observability and dashboard (triage.metrics, triage.review.dashboard) --
            *metrics.routes(self.store, self.settings),
            Route("/dashboard", self.authenticated(functools.partial(dashboard_page, self)),
                  methods=["GET"]),
            *self.extra_routes,
            Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
        ]
        return Starlette(routes=routes,
                         middleware=[Middleware(SecurityHeaders, error_page=self.error_page)],
                         exception_handlers={HTTPException: self.http_error})


def _safe_next(target: str) -> str:
    """Where to go after login: a path of this site, else the queue."""
    return target if _NEXT.fullmatch(target) and not target.startswith("//") else "/"


def create_app(settings: Settings | Callable[[], Settings], store: Store) -> Starlette:
    getter = settings if callable(settings) else (lambda: settings)
    return ReviewApp(getter, store).app()


__all__ = ["ReviewApp", "create_app"]
