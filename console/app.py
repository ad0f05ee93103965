"""The console process: ``python -m console``, server-rendered pages over the mesh's public and admin APIs.

Public pages (no sign-in): the home page, the API catalogue, the developer documentation, the
statistics and the status page. Operator pages (signed in with an admin API secret in the
sandbox): habilitations and their tokens, maintenance windows, the audit trail. Every page and
action checks the session's role on the server; every form carries the session's CSRF token;
identifiers in URLs are the registry's opaque ids, never a person's. Settings:
`console.settings.ConsoleSettings`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import math
import urllib.parse
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import jinja2
import structlog
import uvicorn
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from console import catalogue, examples
from console.charts import availability_charts, proofs_charts
from console.citizen import CitizenSpace
from console.holder import PROCONNECT_RETURN, SIGNED_OUT, HolderApi, HolderPages, epoch_time
from console.mesh import AdminApi, AdminRefusedError, MeshUnavailableError, PublicApi
from console.proconnect import ProConnect
from console.security import (
    COOKIE,
    CSRF_FIELD,
    FLOW_COOKIE,
    SecurityHeaders,
    Session,
    SessionCodec,
    SignInLimiter,
    client_of,
    content_security_policy,
    origin_of,
)
from console.settings import ASSETS_DIR, ConsoleSettings
from gateway.admin_api.maintenance import WINDOW_MAX
from gateway.admin_api.service import Operator, Operators, Role, UnauthenticatedError
from gateway.pings import PINGS
from gateway.registry.model import DPO_FIELDS
from runtime.logs import configure_logging

_LOG = structlog.get_logger(__name__)
_HERE = Path(__file__).resolve().parent
_PARIS = ZoneInfo("Europe/Paris")
_FORM_LIMIT = 16 * 1024
"""The largest form body read, in bytes: every form of the console is a few fields."""
_WINDOW_MAX_MINUTES = WINDOW_MAX // dt.timedelta(minutes=1)
"""The longest maintenance window the form offers: the admin API's bound."""
_DPO_LABELS = {
    "given_name": "Prénom",
    "family_name": "Nom",
    "email": "Adresse électronique",
    "phone": "Téléphone",
    "job_title": "Fonction",
}
"""The invitation form's label of each of the officer's fields (`DPO_FIELDS`)."""
_AUDIT_PAGE = 50
"""Audit entries per page."""
_STATUS_TEXT = {
    "ok": ("Opérationnel", "success"),
    "bad_gateway": ("Perturbé", "error"),
    "maintenance": ("En maintenance", "info"),
    "unknown": ("Inconnu", "new"),
}
"""Each ping status, in words and as a DSFR badge's kind."""

_INCIDENTS_SHOWN = 20
"""The most recent incidents the status page lists."""

Endpoint = Callable[[Request], Awaitable[Response]]


def _date(moment: str | dt.datetime | None) -> str:
    """A date and time as the pages write it: Paris time, day first."""
    if moment is None or moment == "":
        return "—"
    value = dt.datetime.fromisoformat(moment) if isinstance(moment, str) else moment
    return value.astimezone(_PARIS).strftime("%d/%m/%Y %H:%M")


def _json(record: dict[str, Any] | None) -> str:
    """An audit entry's record as the page shows it: indented JSON, "" for none."""
    return "" if record is None else json.dumps(record, ensure_ascii=False, indent=2, sort_keys=True)


def _number(value: int) -> str:
    """A whole number with French digit grouping (a narrow no-break space every three digits)."""
    return f"{value:,}".replace(",", "\u202f")


def _environment() -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(_HERE / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    environment.filters["date"] = _date
    environment.filters["number"] = _number
    environment.filters["epoch"] = epoch_time
    environment.globals["status_text"] = _STATUS_TEXT
    return environment


class Console:
    """The console's pages and actions.

    Args:
        settings: The console's settings.
        public: The gateway's REST front.
        admin: The admin API's REST front.
        operators: Who may sign in, from the admin API's operators file; None: nobody.
    """

    def __init__(
        self,
        settings: ConsoleSettings,
        public: PublicApi,
        admin: AdminApi,
        operators: Operators | None,
    ) -> None:
        self._settings = settings
        self._public = public
        self._admin = admin
        self._operators = operators
        self._codec = SessionCodec(
            settings.console_session_key.get_secret_value(), settings.session_max_age_seconds
        )
        self.limiter = SignInLimiter(settings.sign_in_attempts, settings.sign_in_window_seconds)
        """Every sign-in's limit per client address (operators', agents', citizens')."""
        self._templates = _environment()

    # -- sessions and rendering ----------------------------------------------------------------

    def session(self, request: Request) -> tuple[Session, bool]:
        """The request's session, and whether it is new (then its cookie must be set)."""
        session = self._codec.open(request.cookies.get(COOKIE))
        return (session, False) if session is not None else (Session(), True)

    def with_cookie(self, response: Response, session: Session) -> Response:
        """``response`` with ``session``'s cookie: HttpOnly, SameSite=Strict, Secure per SECURE_COOKIES."""
        response.set_cookie(
            COOKIE,
            self._codec.seal(session),
            max_age=self._settings.session_max_age_seconds,
            httponly=True,
            secure=self._settings.secure_cookies,
            samesite="strict",
            path="/",
        )
        return response

    def flow(self, request: Request) -> str:
        """The ProConnect flow's state the request's `FLOW_COOKIE` holds; empty: none."""
        return self._codec.open_text(request.cookies.get(FLOW_COOKIE))

    def with_flow(self, response: Response, state: str) -> Response:
        """``response`` with `FLOW_COOKIE` holding ``state`` (HttpOnly, SameSite=Lax); removed when empty."""
        if not state:
            response.delete_cookie(FLOW_COOKIE, path="/agent", httponly=True, samesite="lax")
            return response
        response.set_cookie(
            FLOW_COOKIE,
            self._codec.seal_text(state),
            max_age=self._settings.session_max_age_seconds,
            httponly=True,
            secure=self._settings.secure_cookies,
            samesite="lax",
            path="/agent",
        )
        return response

    def render(self, request: Request, template: str, status: int = 200, **context: Any) -> Response:
        """The page of ``template``, and a new session's cookie with it (its CSRF token is in the forms)."""
        current, new = self.session(request)
        html = self._templates.get_template(template).render(
            request_path=request.url.path,
            session=current,
            csrf_field=CSRF_FIELD,
            **context,
        )
        response = HTMLResponse(html, status_code=status, headers={"cache-control": "no-store"})
        return self.with_cookie(response, current) if new else response

    def error(self, request: Request, status: int, title: str, detail: str) -> Response:
        """The error page with ``status``, its title and what to do."""
        return self.render(request, "error.html", status, title=title, detail=detail)

    async def form(self, request: Request, session: Session) -> dict[str, str] | Response:
        """A POSTed form's fields; the error page when it is too large or its CSRF token is not ours."""
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > _FORM_LIMIT:
                return self.error(
                    request, 413, "Formulaire trop volumineux", "Le formulaire envoyé est trop long."
                )
        fields = {
            key: values[0] for key, values in urllib.parse.parse_qs(body.decode(errors="replace")).items()
        }
        if not session.csrf_matches(fields.get(CSRF_FIELD)):
            _LOG.warning("console_csrf_refused", path=request.url.path)
            return self.error(
                request,
                403,
                "Formulaire expiré",
                "Ce formulaire n'est plus valable : rechargez la page et envoyez-le à nouveau.",
            )
        return fields

    def operator_page(
        self, role: Role, handler: Callable[[Request, Session], Awaitable[Response]]
    ) -> Endpoint:
        """``handler`` for operators of ``role`` (an admin may do what a viewer may); others are turned away.

        Nobody signed in is sent to the sign-in page; a viewer on an admin's action gets 403.
        A POST must carry the session's CSRF token (checked by the handler's `_form`).
        """

        async def serve(request: Request) -> Response:
            session, _new = self.session(request)
            if not session.operator:
                return RedirectResponse("/connexion", status_code=303)
            if role is Role.ADMIN and session.role != Role.ADMIN:
                return self.error(
                    request,
                    403,
                    "Action réservée",
                    "Cette action est réservée aux opérateurs administrateurs.",
                )
            try:
                return await handler(request, session)
            except PermissionError:
                # The admin API no longer knows this secret: the session ends.
                response = RedirectResponse("/connexion", status_code=303)
                return self.with_cookie(response, Session())
            except AdminRefusedError as error:
                return self.error(request, error.status, "Action refusée", str(error))
            except MeshUnavailableError:
                return self.unavailable(request)

        return serve

    def unavailable(self, request: Request) -> Response:
        """503: a service of the mesh did not answer."""
        return self.error(
            request,
            503,
            "Service momentanément indisponible",
            "Un service de la plateforme ne répond pas ; réessayez.",
        )

    # -- public pages -------------------------------------------------------------------------

    async def home(self, request: Request) -> Response:
        """``GET /``: what the platform is and where to go."""
        return self.render(request, "home.html", apis=catalogue.apis())

    async def catalogue(self, request: Request) -> Response:
        """``GET /catalogue``: every API, optionally filtered by ``q`` (title, label, scope or field)."""
        query = request.query_params.get("q", "").strip().lower()[:100]
        apis = [
            api
            for api in catalogue.apis()
            if not query
            or query in api.title.lower()
            or query in api.label
            or any(query in scope for scope in api.scopes)
            or any(query in field.path for route in api.routes for field in route.fields)
        ]
        return self.render(request, "catalogue.html", apis=apis, query=query)

    async def api(self, request: Request) -> Response:
        """``GET /catalogue/{label}``: one API's fiche; 404 for no API of the contract."""
        view = catalogue.api(request.path_params["label"])
        if view is None:
            return self.error(request, 404, "API introuvable", "Aucune API du catalogue ne porte ce nom.")
        return self.render(request, "api.html", api=view)

    async def developers(self, request: Request) -> Response:
        """``GET /developpeurs``: the served OpenAPI spec, operation by operation, with sandbox examples."""
        try:
            spec = await self._public.openapi()
        except MeshUnavailableError:
            return self.unavailable(request)
        base = (self._settings.sandbox_api_url or self._settings.public_api_url).rstrip("/")
        return self.render(request, "developers.html", groups=_operations(spec, base))

    async def statistics(self, request: Request) -> Response:
        """``GET /statistiques``: the proofs avoided over the front's window, and per API and day (charts)."""
        try:
            (proofs, days), (rows, kept) = await asyncio.gather(
                self._public.proofs_avoided(), self._public.proofs_by_api()
            )
        except MeshUnavailableError:
            return self.unavailable(request)
        titles = {api.label: api.title for api in catalogue.apis()}
        every, charts = proofs_charts(rows, kept, dt.datetime.now(dt.UTC).date(), titles)
        return self.render(
            request, "statistics.html", proofs=proofs, days=days, every=every, charts=charts, kept=kept
        )

    async def status(self, request: Request) -> Response:
        """``GET /statut``: each ping's state, the maintenances open and scheduled, 90 days, the incidents."""
        try:
            pings, history, windows = await asyncio.gather(
                self._public.pings(), self._public.availability(), self._public.maintenances()
            )
        except MeshUnavailableError:
            return self.unavailable(request)
        labels = {ping.ping_id: ping.label for ping in pings}
        return self.render(
            request,
            "status.html",
            pings=pings,
            open_windows=[window for window in windows if window.open],
            scheduled=[window for window in windows if not window.open],
            histories=availability_charts(history["pings"], history["days"], dt.datetime.now(dt.UTC).date()),
            incidents=[
                {**incident, "label": labels.get(incident["ping"], incident["ping"])}
                for incident in history["incidents"][:_INCIDENTS_SHOWN]
            ],
            history_days=history["days"],
        )

    async def health(self, _request: Request) -> Response:
        """``GET /healthz``: the process serves (the probes'); says nothing of the mesh."""
        return PlainTextResponse("ok")

    # -- sign-in --------------------------------------------------------------------------------

    def limited(self, request: Request) -> Response | None:
        """The 429 page, with ``Retry-After``, when the client's failed sign-ins reached the limit."""
        wait = self.limiter.wait(client_of(request))
        if wait is None:
            return None
        response = self.error(
            request,
            429,
            "Trop de tentatives",
            "Trop de tentatives de connexion : réessayez dans quelques minutes.",
        )
        response.headers["retry-after"] = str(math.ceil(wait))
        return response

    async def sign_in_page(self, request: Request) -> Response:
        """``GET /connexion``: the operators' sandbox sign-in form."""
        return self.render(request, "sign_in.html", error="", enabled=self._operators is not None)

    async def sign_in(self, request: Request) -> Response:
        """``POST /connexion``: the operator of a secret, from the operators file; 429 past the limit.

        A secret no operator has counts as a failed sign-in (`SignInLimiter`); the right one does not.
        """
        session, _new = self.session(request)
        limited = self.limited(request)
        if limited is not None:
            return limited
        fields = await self.form(request, session)
        if isinstance(fields, Response):
            return fields
        if self._operators is None:
            return self.error(request, 404, "Connexion indisponible", "Aucun opérateur n'est déclaré.")
        secret = fields.get("secret", "")
        try:
            operator: Operator | None = self._operators.authenticate(f"Bearer {secret}")
        except UnauthenticatedError:
            operator = None
        if operator is None or operator.role is Role.CONSOLE:  # the console's own credential is no one's
            _LOG.info("console_sign_in_refused")
            self.limiter.failed(client_of(request))
            return self.render(
                request, "sign_in.html", 401, error="Ce secret ne correspond à aucun opérateur.", enabled=True
            )
        _LOG.info("console_sign_in", role=operator.role.value)
        # A new session, with a new CSRF token: nothing of the anonymous one carries over.
        signed_in = Session(operator=operator.name, role=operator.role.value, secret=secret)
        return self.with_cookie(RedirectResponse("/operateur", status_code=303), signed_in)

    async def sign_out(self, request: Request) -> Response:
        """``POST /deconnexion``: the session ends (CSRF-checked, so no other site can sign one out)."""
        session, _new = self.session(request)
        fields = await self.form(request, session)
        if isinstance(fields, Response):
            return fields
        return self.with_cookie(RedirectResponse("/", status_code=303), Session())

    # -- operator pages --------------------------------------------------------------------------

    async def habilitations(self, request: Request, session: Session) -> Response:
        """``GET /operateur``: every habilitation."""
        listed = await self._admin.call(session.secret, "GET", "/habilitations")
        return self.render(request, "operator/habilitations.html", habilitations=listed)

    async def habilitation(self, request: Request, session: Session) -> Response:
        """``GET /operateur/habilitations/{id}``: one habilitation, its tokens and their actions."""
        ident = urllib.parse.quote(request.path_params["id"], safe="")
        habilitation = await self._admin.call(session.secret, "GET", f"/habilitations/{ident}")
        return self.render(request, "operator/habilitation.html", habilitation=habilitation)

    async def token_action(self, request: Request, session: Session) -> Response:
        """``POST /operateur/jetons/{id}/{action}``: ``revoquer`` (revoke) or ``prolonger`` a token."""
        fields = await self.form(request, session)
        if isinstance(fields, Response):
            return fields
        ident = urllib.parse.quote(request.path_params["id"], safe="")
        action = request.path_params["action"]
        if action == "revoquer":
            token = await self._admin.call(
                session.secret, "POST", f"/tokens/{ident}/revoke", {"reason": fields.get("reason", "")[:200]}
            )
        elif action == "prolonger":
            days = fields.get("days", "")
            if not days.isdigit():
                return self.error(
                    request, 400, "Durée invalide", "La durée doit être un nombre entier de jours."
                )
            token = await self._admin.call(
                session.secret, "POST", f"/tokens/{ident}/prolong", {"days": int(days)}
            )
        else:
            raise HTTPException(404)
        return RedirectResponse(f"/operateur/habilitations/{token['habilitation_id']}", status_code=303)

    async def maintenance_page(self, request: Request, session: Session, error: str = "") -> Response:
        """``GET /operateur/maintenance``: the windows open or scheduled, and the form to open one."""
        windows = await self._admin.call(session.secret, "GET", "/maintenance")
        return self.render(
            request,
            "operator/maintenance.html",
            400 if error else 200,
            windows=windows,
            pings=PINGS,
            error=error,
            max_minutes=_WINDOW_MAX_MINUTES,
        )

    async def open_maintenance(self, request: Request, session: Session) -> Response:
        """``POST /operateur/maintenance``: open a ping's window from ``start`` (Paris time; empty: now).

        The admin API checks the window and records the action in the audit trail; its refusal is shown
        on the form.
        """
        fields = await self.form(request, session)
        if isinstance(fields, Response):
            return fields
        minutes = fields.get("minutes", "")
        if not minutes.isdigit() or not 1 <= int(minutes) <= _WINDOW_MAX_MINUTES:
            return await self.maintenance_page(request, session, "La durée doit être de 1 minute à 7 jours.")
        start_text = fields.get("start", "").strip()
        try:
            start = (
                dt.datetime.fromisoformat(start_text).replace(tzinfo=_PARIS)
                if start_text
                else dt.datetime.now(dt.UTC)
            )
        except ValueError:
            return await self.maintenance_page(request, session, "Le début doit être une date et une heure.")
        body = {
            "ping": fields.get("ping", ""),
            "start": start.isoformat(),
            "end": (start + dt.timedelta(minutes=int(minutes))).isoformat(),
        }
        try:
            await self._admin.call(session.secret, "POST", "/maintenance", body)
        except AdminRefusedError as refused:
            if refused.status != 400:
                raise
            return await self.maintenance_page(request, session, f"Fenêtre refusée : {refused}.")
        _LOG.info("console_maintenance_opened", ping=body["ping"], minutes=int(minutes))
        return RedirectResponse("/operateur/maintenance", status_code=303)

    async def invitations_page(
        self, request: Request, session: Session, error: str = "", secret: str = ""
    ) -> Response:
        """``GET /operateur/invitations``: every invitation of a body, and the form to invite one.

        ``secret``: the one just made, shown once on this answer (never in a URL nor a log).
        """
        invitations, editors, habilitations = await asyncio.gather(
            self._admin.call(session.secret, "GET", "/invitations"),
            self._admin.call(session.secret, "GET", "/editors"),
            self._admin.call(session.secret, "GET", "/habilitations"),
        )
        return self.render(
            request,
            "operator/invitations.html",
            400 if error else 200,
            invitations=invitations,
            editors=editors,
            habilitations=[h for h in habilitations if h["status"] == "validated"],
            editor_names={editor["id"]: editor["name"] for editor in editors},
            habilitation_labels={h["id"]: h["label"] for h in habilitations},
            dpo_fields=_DPO_LABELS,
            error=error,
            secret=secret,
        )

    async def invite(self, request: Request, session: Session) -> Response:
        """``POST /operateur/invitations``: an editor invites a body to delegate a habilitation to it.

        The admin API checks the invitation and records it in the audit trail; its refusal is shown
        on the form, the secret the body's holder accepts with on the page answered, once.
        """
        fields = await self.form(request, session)
        if isinstance(fields, Response):
            return fields
        body = {
            "editor_id": fields.get("editor_id", ""),
            "habilitation_id": fields.get("habilitation_id", ""),
            "contact_email": fields.get("contact_email", ""),
            "dpo": {name: fields.get(f"dpo_{name}", "") for name in DPO_FIELDS},
        }
        try:
            answer = await self._admin.call(session.secret, "POST", "/invitations", body)
        except AdminRefusedError as refused:
            if refused.status not in {400, 404, 409}:
                raise
            return await self.invitations_page(request, session, f"Invitation refusée : {refused}.")
        _LOG.info("console_invitation_created")
        return await self.invitations_page(request, session, secret=str(answer["secret"]))

    async def close_maintenance(self, request: Request, session: Session) -> Response:
        """``POST /operateur/maintenance/{ping}/fermer``: an open window ends now, a scheduled one goes."""
        fields = await self.form(request, session)
        if isinstance(fields, Response):
            return fields
        ping = urllib.parse.quote(request.path_params["ping"], safe="")
        await self._admin.call(session.secret, "POST", f"/maintenance/{ping}/close")
        _LOG.info("console_maintenance_closed", ping=request.path_params["ping"])
        return RedirectResponse("/operateur/maintenance", status_code=303)

    async def audit(self, request: Request, session: Session) -> Response:
        """``GET /operateur/audit?avant=``: the trail's entries, newest first, by page; the chain checked."""
        before = request.query_params.get("avant", "")
        params: dict[str, str | int] = {"page_size": _AUDIT_PAGE}
        if before:
            params["page_token"] = before
        listed, verification = await asyncio.gather(
            self._admin.call(session.secret, "GET", "/audit", params=params),
            self._admin.call(session.secret, "GET", "/audit/verify"),
        )
        return self.render(
            request,
            "operator/audit.html",
            verification=verification,
            entries=[
                {**entry, "before": _json(entry["before"]), "after": _json(entry["after"])}
                for entry in listed["entries"]
            ],
            next_page=listed["next_page_token"],
            first_page=not before,
        )

    # -- errors -------------------------------------------------------------------------------------

    async def not_found(self, request: Request, _exc: Exception) -> Response:
        """Any path the console does not serve, or a method it does not take there."""
        if isinstance(_exc, HTTPException) and _exc.status_code == 405:
            return self.error(
                request, 405, "Méthode non permise", "Cette adresse ne prend pas cette méthode."
            )
        return self.error(request, 404, "Page introuvable", "Cette page n'existe pas.")


def _operations(spec: dict[str, Any], base_url: str) -> list[tuple[str, list[dict[str, Any]]]]:
    """The spec's operations grouped by their first tag, each with a ``curl`` example against ``base_url``."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for path, item in spec.get("paths", {}).items():
        for method, operation in item.items():
            if method not in {"get", "post"} or not isinstance(operation, dict):
                continue
            parameters = [parameter for parameter in operation.get("parameters", []) if "name" in parameter]
            example_path = path
            for parameter in parameters:
                if parameter.get("in") == "path":
                    example = parameter.get("example", parameter.get("schema", {}).get("example", ""))
                    example_path = example_path.replace("{" + parameter["name"] + "}", str(example))
            secured = bool(operation.get("security", spec.get("security")))
            bearer, query = examples.example(path, parameters, secured)
            url = f"{base_url}{example_path}"
            if query:
                url += "?" + urllib.parse.urlencode(query, doseq=True, safe="[]")
            curl = "curl -gi " + (f'-H "Authorization: Bearer {bearer}" ' if bearer else "") + f"'{url}'"
            tag = (operation.get("tags") or ["Plateforme"])[0]
            groups.setdefault(tag, []).append(
                {
                    "method": method.upper(),
                    "path": path,
                    "summary": operation.get("summary", ""),
                    "description": catalogue.plain(operation.get("description", "")),
                    "deprecated": bool(operation.get("deprecated")),
                    "parameters": parameters,
                    "responses": sorted(operation.get("responses", {}).items()),
                    "curl": curl,
                    "anchor": f"{method}-{path}".replace("/", "-").replace("{", "").replace("}", ""),
                }
            )
    return sorted(groups.items())


def build_app(
    settings: ConsoleSettings,
    public_client: httpx.AsyncClient,
    admin_client: httpx.AsyncClient,
    proconnect_client: httpx.AsyncClient | None = None,
) -> Starlette:
    """The console's ASGI application over these clients.

    ``proconnect_client`` calls ProConnect when ``PROCONNECT_ISSUER`` is set (None: no ProConnect).
    """
    operators = (
        Operators.from_file(settings.admin_operators_file)
        if settings.admin_operators_file is not None
        else None
    )
    console = Console(settings, PublicApi(public_client), AdminApi(admin_client), operators)
    viewer, admin = Role.VIEWER, Role.ADMIN
    console_secret = settings.console_admin_secret.get_secret_value()
    holder = HolderPages(
        console,
        HolderApi(admin_client, console_secret) if console_secret else None,
        ProConnect(
            proconnect_client,
            settings.proconnect_issuer,
            settings.proconnect_client_id,
            settings.proconnect_client_secret.get_secret_value(),
            settings.proconnect_redirect_url,
            post_logout_url=settings.proconnect_redirect_url.removesuffix(PROCONNECT_RETURN) + SIGNED_OUT,
        )
        if settings.proconnect_issuer and proconnect_client is not None
        else None,
        sandbox=settings.sandbox_agents,
    )
    routes = [
        Route("/", console.home, methods=["GET"]),
        Route("/catalogue", console.catalogue, methods=["GET"]),
        Route("/catalogue/{label}", console.api, methods=["GET"]),
        Route("/developpeurs", console.developers, methods=["GET"]),
        Route("/statistiques", console.statistics, methods=["GET"]),
        Route("/statut", console.status, methods=["GET"]),
        Route("/healthz", console.health, methods=["GET"]),
        Route("/connexion", console.sign_in_page, methods=["GET"]),
        Route("/connexion", console.sign_in, methods=["POST"]),
        Route("/deconnexion", console.sign_out, methods=["POST"]),
        Route("/operateur", console.operator_page(viewer, console.habilitations), methods=["GET"]),
        Route(
            "/operateur/habilitations/{id}",
            console.operator_page(viewer, console.habilitation),
            methods=["GET"],
        ),
        Route(
            "/operateur/jetons/{id}/{action}",
            console.operator_page(admin, console.token_action),
            methods=["POST"],
        ),
        Route(
            "/operateur/maintenance", console.operator_page(viewer, console.maintenance_page), methods=["GET"]
        ),
        Route(
            "/operateur/maintenance", console.operator_page(admin, console.open_maintenance), methods=["POST"]
        ),
        Route("/operateur/audit", console.operator_page(viewer, console.audit), methods=["GET"]),
        Route(
            "/operateur/invitations", console.operator_page(viewer, console.invitations_page), methods=["GET"]
        ),
        Route("/operateur/invitations", console.operator_page(admin, console.invite), methods=["POST"]),
        Route(
            "/operateur/maintenance/{ping}/fermer",
            console.operator_page(admin, console.close_maintenance),
            methods=["POST"],
        ),
        *CitizenSpace(
            settings,
            public_client,
            render=console.render,
            error=console.error,
            form=console.form,
            session=console.session,
            limiter=console.limiter,
            limited=console.limited,
        ).routes(),
        Route("/agent/connexion", holder.sign_in_page, methods=["GET"]),
        Route("/agent/connexion", holder.sign_in_sandbox, methods=["POST"]),
        Route("/agent/proconnect", holder.proconnect_start, methods=["GET"]),
        Route(PROCONNECT_RETURN, holder.proconnect_return, methods=["GET"]),
        Route("/agent/deconnexion", holder.sign_out, methods=["POST"]),
        Route(SIGNED_OUT, holder.signed_out, methods=["GET"]),
        Route("/agent", holder.page(holder.home), methods=["GET"]),
        Route("/agent/habilitations/{id}", holder.page(holder.habilitation), methods=["GET"]),
        Route("/agent/editeurs/{id}", holder.page(holder.editor), methods=["GET"]),
        Route("/agent/editeurs/{editor}/delegations/{id}", holder.page(holder.delegation), methods=["GET"]),
        Route("/agent/jetons/{id}/{action}", holder.page(holder.token_action), methods=["POST"]),
        Route("/agent/delegations/{id}/revoquer", holder.page(holder.revoke_delegation), methods=["POST"]),
        Route(
            "/agent/habilitations/{id}/franceconnect",
            holder.page(holder.map_france_connect_client),
            methods=["POST"],
        ),
        Mount(
            "/static/dsfr", StaticFiles(directory=ASSETS_DIR / "@gouvfr" / "dsfr" / "dist", check_dir=False)
        ),
        Mount("/static", StaticFiles(directory=_HERE / "static")),
    ]
    return Starlette(
        routes=routes,
        middleware=[
            Middleware(
                SecurityHeaders,
                policy=content_security_policy(
                    (origin_of(settings.france_connect_url), origin_of(settings.proconnect_issuer))
                ),
            )
        ],
        exception_handlers={404: console.not_found, 405: console.not_found},
    )


def serve(settings: ConsoleSettings) -> None:
    """Serve the console until SIGTERM or SIGINT."""
    configure_logging(settings.log_level, settings.log_format)

    async def main() -> None:
        timeout = httpx.Timeout(settings.mesh_timeout_seconds)
        async with (
            httpx.AsyncClient(base_url=settings.public_api_url, timeout=timeout) as public_client,
            httpx.AsyncClient(base_url=settings.admin_api_url, timeout=timeout) as admin_client,
            httpx.AsyncClient(timeout=timeout) as proconnect_client,
        ):
            app = build_app(settings, public_client, admin_client, proconnect_client)
            config = uvicorn.Config(
                app,
                host=settings.console_host,
                port=settings.console_port,
                lifespan="off",
                # Paths hold only opaque ids, but the console logs its own events, never each request.
                access_log=False,
                log_config=None,
                server_header=False,
            )
            server = uvicorn.Server(config)
            _LOG.info("console_serving", port=settings.console_port)
            # uvicorn stops on SIGTERM or SIGINT, after the answers under way.
            await server.serve()

    asyncio.run(main())
