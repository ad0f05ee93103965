"""The holders' and editors' space: ``/agent``, for the state agents named in habilitations and editors.

An agent signs in through ProConnect (`console.proconnect`; production) or, on `make run`, by
picking one of the sandbox's fictional agents (`console.agents`). The console then calls the admin
API with its own credential, of role ``console``, naming the agent (``X-Acting-For``): the admin API
serves only the habilitations and editors whose contacts hold their e-mail, and audits every action
as theirs (`gateway.admin_api.holders`). The session holds the agent's e-mail and name, never an
admin API secret.

Pages: their habilitations and editors; a habilitation (scopes, allowed IPs, limits, tokens with
prolong / rotate / revoke, delegations) with its calls over 10 minutes, 30 hours or 8 days; an
editor (tokens, delegations) and each delegation's calls. The charts are SVG drawn here on the
server, each with the table of its figures: no script, so the strict Content-Security-Policy holds.
"""

from __future__ import annotations

import datetime as dt
import hmac
import math
import secrets
import urllib.parse
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import httpx
import structlog
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from console.agents import BY_KEY, SANDBOX_AGENTS
from console.mesh import AdminRefusedError, MeshUnavailableError
from console.proconnect import Pending, ProConnect, ProConnectError
from console.security import Session, client_of

if TYPE_CHECKING:
    from console.app import Console

_LOG = structlog.get_logger(__name__)

PROCONNECT_RETURN = "/agent/proconnect/retour"
"""Where ProConnect sends the agent back after signing in (the registered redirect URL ends so)."""
SIGNED_OUT = "/agent/deconnexion/retour"
"""Where ProConnect sends the agent back after signing out (``post_logout_redirect_uri``)."""
_PARIS = ZoneInfo("Europe/Paris")
_SUCCESS = "OK"


@dataclass(frozen=True, slots=True)
class Window:
    """A window of the charts: the admin API's name for it, and the width of one bar."""

    key: str
    label: str
    bar_seconds: int
    per_bar: str
    """How the caption ends "par tranche …": the bar's width with its French preposition."""
    time_format: str


WINDOWS = (
    Window("10m", "10 dernières minutes", 600, "de 10 minutes", "%H:%M"),
    Window("30h", "30 dernières heures", 3600, "d'une heure", "%d/%m %Hh"),
    Window("8d", "8 derniers jours", 6 * 3600, "de 6 heures", "%d/%m %Hh"),
)
"""The windows the pages offer (`gateway.admin_api.holders.WINDOWS`), the default second."""
_BY_KEY = {window.key: window for window in WINDOWS}


@dataclass(frozen=True, slots=True)
class Bar:
    """One bar of a chart: the calls of its time, succeeded and refused."""

    start: int
    """Epoch seconds."""
    label: str
    ok: int
    errors: int


@dataclass(frozen=True, slots=True)
class Chart:
    """What a habilitation's or delegation's statistics pages draw (see `chart_of`)."""

    window: Window
    bars: list[Bar]
    top: int
    """The scale's top: the largest bar, rounded up (at least 1)."""
    by_api: list[tuple[str, int, int]]
    """``(api, succeeded, refused)``, by API."""
    errors: list[tuple[str, str, str, int]]
    """``(code, title, detail, calls)``, most frequent first."""
    total: int


def chart_of(activity: dict[str, Any], window: Window, now: float) -> Chart:
    """The bars, per-API totals and errors by code of an ``activity`` answer of the admin API.

    Args:
        activity: ``GET /admin/v1/holder/.../activity``: ``since`` (epoch seconds), ``bucket_seconds``,
            ``rows`` (``bucket``, ``api``, ``outcome``, ``code``, ``calls``), ``codes`` (their meaning).
        window: The window asked.
        now: The current time, epoch seconds.
    """
    since = int(activity["since"])
    width = window.bar_seconds
    count = max(1, math.ceil((now - since) / width))
    ok: Counter[int] = Counter()
    refused: Counter[int] = Counter()
    per_api: dict[str, list[int]] = {}
    by_code: Counter[str] = Counter()
    for row in activity["rows"]:
        index = min(count - 1, max(0, (int(row["bucket"]) - since) // width))
        calls = int(row["calls"])
        succeeded = row["outcome"] == _SUCCESS
        (ok if succeeded else refused)[index] += calls
        per_api.setdefault(str(row["api"]), [0, 0])[0 if succeeded else 1] += calls
        if not succeeded:
            by_code[str(row["code"]) or row["outcome"]] += calls
    bars = []
    for index in range(count):
        start = since + index * width
        label = dt.datetime.fromtimestamp(start, _PARIS).strftime(window.time_format)
        bars.append(Bar(start, label, ok[index], refused[index]))
    meanings = activity.get("codes", {})
    errors = [
        (code, meanings.get(code, {}).get("title", ""), meanings.get(code, {}).get("detail", ""), calls)
        for code, calls in by_code.most_common()
    ]
    top = max([bar.ok + bar.errors for bar in bars] + [1])
    return Chart(
        window,
        bars,
        top,
        sorted((api, counts[0], counts[1]) for api, counts in per_api.items()),
        errors,
        sum(bar.ok + bar.errors for bar in bars),
    )


class HolderApi:
    """The admin API's holder routes, called with the console's credential for the agent signed in.

    Args:
        client: An HTTP client whose base URL is the admin API's.
        secret: The console's own credential (``CONSOLE_ADMIN_SECRET``, role ``console``).
    """

    def __init__(self, client: httpx.AsyncClient, secret: str) -> None:
        self._client = client
        self._secret = secret

    async def call(self, holder: str, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """The JSON answer of ``method /admin/v1/holder<path>`` for the agent of e-mail ``holder``.

        Raises:
            AdminRefusedError: 400, 403, 404 or 409, with the admin API's message.
            MeshUnavailableError: the admin API is unreachable, or refuses the console's credential.
        """
        try:
            response = await self._client.request(
                method,
                f"/admin/v1/holder{path}",
                json=body,
                headers={"authorization": f"Bearer {self._secret}", "x-acting-for": holder},
            )
        except httpx.HTTPError as error:
            raise MeshUnavailableError(f"admin API: {type(error).__name__}") from None
        if response.status_code in {400, 403, 404, 409}:
            raise AdminRefusedError(response.status_code, str(response.json().get("error", "")))
        if response.status_code >= 300:
            # 401: the console's credential is not (any more) the admin API's: an operator's matter.
            raise MeshUnavailableError(f"admin API: HTTP {response.status_code}")
        return response.json()


def epoch_time(value: float) -> str:
    """An epoch time as the last requests' table writes it: Paris time, to the second."""
    return dt.datetime.fromtimestamp(float(value), _PARIS).strftime("%d/%m/%Y %H:%M:%S")


def _quoted(request: Request, name: str) -> str:
    return urllib.parse.quote(str(request.path_params[name]), safe="")


class HolderPages:
    """The pages and actions of ``/agent`` (see the module's docstring).

    Args:
        console: The console, whose sessions, forms, rendering and sign-in limit they share.
        api: The admin API's holder routes; None: no holder space (no ``CONSOLE_ADMIN_SECRET``).
        proconnect: The ProConnect client; None: no ProConnect sign-in (no ``PROCONNECT_ISSUER``).
        sandbox: Whether the sandbox's agents are offered (``SANDBOX_AGENTS``).
    """

    def __init__(
        self, console: Console, api: HolderApi | None, proconnect: ProConnect | None, *, sandbox: bool
    ) -> None:
        self._console = console
        self._api = api
        self._proconnect = proconnect
        self._sandbox = sandbox

    # -- sign-in ------------------------------------------------------------------------------------

    async def sign_in_page(self, request: Request, error: str = "", status: int = 200) -> Response:
        """``GET /agent/connexion``: ProConnect's button, and the sandbox's agents on `make run`."""
        return self._console.render(
            request,
            "holder/sign_in.html",
            status,
            enabled=self._api is not None,
            proconnect=self._proconnect is not None,
            agents=SANDBOX_AGENTS if self._sandbox else (),
            error=error,
        )

    def _signed_in(self, email: str, name: str, id_token: str = "") -> Response:
        _LOG.info("console_holder_sign_in")
        # A new session, with a new CSRF token: nothing of the anonymous one carries over.
        return self._console.with_cookie(
            RedirectResponse("/agent", status_code=303),
            Session(holder=email, holder_name=name, id_token=id_token),
        )

    async def sign_in_sandbox(self, request: Request) -> Response:
        """``POST /agent/connexion``: sign in as the sandbox agent picked (``agent``: their key).

        An agent not in the list counts as a failed sign-in (`console.security.SignInLimiter`).
        """
        limited = self._console.limited(request)
        if limited is not None:
            return limited
        session, _new = self._console.session(request)
        fields = await self._console.form(request, session)
        if isinstance(fields, Response):
            return fields
        agent = BY_KEY.get(fields.get("agent", ""))
        if not self._sandbox or self._api is None:
            return self._console.error(
                request, 404, "Connexion indisponible", "Le bac à sable n'est pas ouvert."
            )
        if agent is None:
            self._console.limiter.failed(client_of(request))
            return await self.sign_in_page(request, "Choisissez un agent de la liste.", 400)
        return self._signed_in(agent.email, agent.name)

    async def proconnect_start(self, request: Request) -> Response:
        """``GET /agent/proconnect``: to ProConnect, the return's state kept in the session."""
        if self._proconnect is None or self._api is None:
            return self._console.error(
                request, 404, "Connexion indisponible", "ProConnect n'est pas configuré."
            )
        # No limit: a redirect to ProConnect checks no secret; a return that fails counts.
        try:
            url, pending = await self._proconnect.start()
        except ProConnectError as error:
            _LOG.warning("console_proconnect_failed", error=str(error))
            return self._console.unavailable(request)
        return self._console.with_flow(RedirectResponse(url, status_code=303), pending.as_json())

    async def proconnect_return(self, request: Request) -> Response:
        """``GET /agent/proconnect/retour``: the agent ProConnect signed in, if everything checks out.

        A return that does not check out counts as a failed sign-in (`console.security.SignInLimiter`).
        """
        if self._proconnect is None or self._api is None:
            return self._console.error(
                request, 404, "Connexion indisponible", "ProConnect n'est pas configuré."
            )
        limited = self._console.limited(request)
        if limited is not None:
            return limited
        try:
            agent = await self._proconnect.finish(
                request.query_params.get("code", ""),
                request.query_params.get("state", ""),
                Pending.of_json(self._console.flow(request)),
            )
        except ProConnectError as error:
            _LOG.warning("console_proconnect_failed", error=str(error))
            self._console.limiter.failed(client_of(request))
            page = await self.sign_in_page(request, "La connexion avec ProConnect a échoué ; réessayez.", 401)
            return self._console.with_flow(page, "")
        signed_in = self._signed_in(
            agent.email, f"{agent.given_name} {agent.usual_name}".strip(), agent.id_token
        )
        return self._console.with_flow(signed_in, "")

    async def sign_out(self, request: Request) -> Response:
        """``POST /agent/deconnexion``: the console's session ends, then ProConnect's (CSRF-checked).

        An agent ProConnect signed in goes to its ``end_session_endpoint`` (RP-initiated logout) with
        their ID token and a new state, kept in the flow's cookie; a sandbox agent, or a provider
        that offers no sign-out or cannot be reached, ends with the console's session.
        """
        session, _new = self._console.session(request)
        fields = await self._console.form(request, session)
        if isinstance(fields, Response):
            return fields
        url = None
        state = secrets.token_urlsafe(32)
        if self._proconnect is not None and session.id_token:
            try:
                url = await self._proconnect.sign_out_url(session.id_token, state)
            except ProConnectError as error:
                _LOG.warning("console_proconnect_failed", error=str(error))
        if url is None:
            return self._console.with_cookie(RedirectResponse("/", status_code=303), Session())
        _LOG.info("console_holder_sign_out")
        return self._console.with_flow(
            self._console.with_cookie(RedirectResponse(url, status_code=303), Session()), state
        )

    async def signed_out(self, request: Request) -> Response:
        """``GET /agent/deconnexion/retour``: back from ProConnect's sign-out, its state checked.

        A state not this browser's (none pending, another's) is 400; the console's session ended
        before the provider's either way.
        """
        expected = self._console.flow(request)
        state = request.query_params.get("state", "")
        if not expected or not hmac.compare_digest(state.encode(), expected.encode()):
            _LOG.info("console_holder_sign_out_refused")
            response = self._console.error(
                request,
                400,
                "Déconnexion inattendue",
                "Cette déconnexion n'a pas été demandée depuis ce navigateur.",
            )
            return self._console.with_flow(response, "")
        return self._console.with_flow(RedirectResponse("/", status_code=303), "")

    # -- pages ---------------------------------------------------------------------------------------

    def page(
        self, handler: Callable[[Request, Session, HolderApi], Awaitable[Response]]
    ) -> Callable[[Request], Awaitable[Response]]:
        """``handler`` for a signed-in agent; nobody signed in is sent to the sign-in page."""

        async def serve(request: Request) -> Response:
            session, _new = self._console.session(request)
            if not session.holder or self._api is None:
                return RedirectResponse("/agent/connexion", status_code=303)
            try:
                return await handler(request, session, self._api)
            except AdminRefusedError as error:
                if error.status == 404:
                    return self._console.error(
                        request, 404, "Introuvable", "Cette page n'existe pas, ou ne vous concerne pas."
                    )
                return self._console.error(request, error.status, "Action refusée", str(error))
            except MeshUnavailableError:
                return self._console.unavailable(request)

        return serve

    async def home(self, request: Request, session: Session, api: HolderApi) -> Response:
        """``GET /agent``: the agent's habilitations and editors."""
        habilitations = await api.call(session.holder, "GET", "/habilitations")
        editors = await api.call(session.holder, "GET", "/editors")
        return self._console.render(request, "holder/home.html", habilitations=habilitations, editors=editors)

    def _window(self, request: Request) -> Window:
        return _BY_KEY.get(request.query_params.get("fenetre", ""), WINDOWS[1])

    async def habilitation(self, request: Request, session: Session, api: HolderApi) -> Response:
        """``GET /agent/habilitations/{id}?fenetre=``: one habilitation, its tokens, its calls."""
        ident, window = _quoted(request, "id"), self._window(request)
        habilitation = await api.call(session.holder, "GET", f"/habilitations/{ident}")
        activity = await api.call(
            session.holder, "GET", f"/habilitations/{ident}/activity?window={window.key}"
        )
        last = await api.call(session.holder, "GET", f"/habilitations/{ident}/requests")
        return self._console.render(
            request,
            "holder/habilitation.html",
            habilitation=habilitation,
            chart=chart_of(activity, window, dt.datetime.now(dt.UTC).timestamp()),
            windows=WINDOWS,
            last=last,
        )

    async def editor(self, request: Request, session: Session, api: HolderApi) -> Response:
        """``GET /agent/editeurs/{id}``: one editor of theirs, its tokens and delegations."""
        editor = await api.call(session.holder, "GET", f"/editors/{_quoted(request, 'id')}")
        return self._console.render(request, "holder/editor.html", editor=editor)

    async def delegation(self, request: Request, session: Session, api: HolderApi) -> Response:
        """``GET /agent/editeurs/{editor}/delegations/{id}``: an editor's calls under a delegation."""
        editor = await api.call(session.holder, "GET", f"/editors/{_quoted(request, 'editor')}")
        delegation = next((d for d in editor["delegations"] if d["id"] == request.path_params["id"]), None)
        if delegation is None:
            raise AdminRefusedError(404, "no such delegation of this editor")
        ident, window = _quoted(request, "id"), self._window(request)
        activity = await api.call(session.holder, "GET", f"/delegations/{ident}/activity?window={window.key}")
        last = await api.call(session.holder, "GET", f"/delegations/{ident}/requests")
        return self._console.render(
            request,
            "holder/delegation.html",
            editor=editor,
            delegation=delegation,
            chart=chart_of(activity, window, dt.datetime.now(dt.UTC).timestamp()),
            windows=WINDOWS,
            last=last,
        )

    async def token_action(self, request: Request, session: Session, api: HolderApi) -> Response:
        """``POST /agent/jetons/{id}/{action}``: ``prolonger`` (18 months), ``renouveler`` or ``revoquer``.

        A renewal shows the new token once; the old one stops at once (no grace: the agent asked).
        """
        fields = await self._console.form(request, session)
        if isinstance(fields, Response):
            return fields
        ident, action = _quoted(request, "id"), request.path_params["action"]
        if action == "prolonger":
            token = await api.call(session.holder, "POST", f"/tokens/{ident}/prolong", {})
        elif action == "revoquer":
            token = await api.call(session.holder, "POST", f"/tokens/{ident}/revoke", {})
        elif action == "renouveler":
            rotated = await api.call(session.holder, "POST", f"/tokens/{ident}/rotate", {"grace_seconds": 0})
            return self._console.render(
                request, "holder/new_token.html", issued=rotated["new"], back=_back(rotated["old_token"])
            )
        else:
            return self._console.error(request, 404, "Action inconnue", "Cette action n'existe pas.")
        _LOG.info("console_holder_token_action", action=action)
        return RedirectResponse(_back(token), status_code=303)

    async def revoke_delegation(self, request: Request, session: Session, api: HolderApi) -> Response:
        """``POST /agent/delegations/{id}/revoquer``: revoke a delegation of one of their habilitations."""
        fields = await self._console.form(request, session)
        if isinstance(fields, Response):
            return fields
        revoked = await api.call(session.holder, "POST", f"/delegations/{_quoted(request, 'id')}/revoke", {})
        _LOG.info("console_holder_delegation_revoked")
        return RedirectResponse(_back(revoked), status_code=303)

    async def map_france_connect_client(self, request: Request, session: Session, api: HolderApi) -> Response:
        """``POST /agent/habilitations/{id}/franceconnect``: map a FranceConnect client to it."""
        fields = await self._console.form(request, session)
        if isinstance(fields, Response):
            return fields
        habilitation = _quoted(request, "id")
        client = urllib.parse.quote(fields.get("client_id", "").strip(), safe="")
        await api.call(
            session.holder,
            "PUT",
            f"/france_connect_clients/{client}",
            {"habilitation_id": request.path_params["id"]},
        )
        _LOG.info("console_holder_france_connect_client_mapped")
        return RedirectResponse(f"/agent/habilitations/{habilitation}", status_code=303)


def _back(token: dict[str, Any]) -> str:
    """The page a token is shown on: its habilitation's, or its editor's."""
    if token.get("habilitation_id"):
        return f"/agent/habilitations/{urllib.parse.quote(token['habilitation_id'], safe='')}"
    return f"/agent/editeurs/{urllib.parse.quote(str(token.get('editor_id', '')), safe='')}"
