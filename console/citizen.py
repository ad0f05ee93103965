"""The citizen's page "Qui a consulté mes données ?", behind FranceConnect.

Sign-in is FranceConnect's OpenID Connect authorization code flow, run by Authlib's Starlette
client from the provider's discovery document (``FRANCE_CONNECT_URL``): ``state``, ``nonce``
and a PKCE verifier (S256) are made at the start and kept in the citizen's cookie, the code is
exchanged with the verifier, and the ID token is checked against the provider's JWKS (issuer,
audience, expiry, nonce, ``at_hash``). On `make run` the provider is the sandbox's
(`devstack.france_connect`), the same code.

The FranceConnect access token is then the citizen's only credential: the console sends it as
bearer to the gateway's ``GET /mesh/v1/citizen/accesses``, which resolves the identity from it
(FranceConnect's introspection) and reads the journal. A citizen therefore sees only the
accesses about the identity FranceConnect vouches for. The page shows, for each access, the
organisation (its name from the registry, else its SIRET; the SIRET links to the public register
of organisations), the API, the date and the habilitation's purpose (its use case from the
registry, else its label), never the data itself.

Signing out ends the FranceConnect session too (OpenID Connect RP-initiated logout, as
FranceConnect asks of its clients): the browser goes to the provider's ``end_session_endpoint``
with the ID token as ``id_token_hint``, a new ``state`` and ``post_logout_redirect_uri`` (the
redirect URI's sibling `SIGNED_OUT`, to be registered with FranceConnect too), and comes back
there with the state, checked against the citizen's cookie. The cookie's access token is gone
from the start: a return that does not check out is refused, the citizen signed out of the
console all the same. Without an ID token or an ``end_session_endpoint`` the sign-out is the
console's only.

The citizen's cookie (``console_citizen``) is separate from the console's session: sealed with
the console's key (Fernet), it holds the flow's state while signing in, then the access token
and the ID token until the access token expires, then, while signing out, the sign-out's state.
It is ``SameSite=Lax``: the provider sends the browser back with a top-level GET from its own
site, which a ``Strict`` cookie would not accompany. Nothing of the person is logged, and URLs
hold only the flow's one-time ``code`` and ``state``, and the sign-out's ``id_token_hint`` (the
protocol's own; FranceConnect's ID token names the person only by a ``sub`` pairwise to the
console, with none of the identity's claims).
"""

from __future__ import annotations

import datetime as dt
import hmac
import json
import secrets
import time
import urllib.parse
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import structlog
from authlib.common.errors import AuthlibBaseError
from authlib.integrations.starlette_client import OAuth
from cryptography.fernet import Fernet, InvalidToken
from joserfc.errors import JoseError
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from console import catalogue
from console.security import Session, SignInLimiter, client_of, origin_of
from console.settings import ConsoleSettings

_LOG = structlog.get_logger(__name__)

COOKIE = "console_citizen"
"""The citizen's cookie: the sign-in flow's state, then their FranceConnect access token."""
ACCESSES_PATH = "/mesh/v1/citizen/accesses"
"""The gateway's citizen history route (`gateway.rest.app.ACCESSES_PATH`)."""
PAGE = "/mes-donnees"
"""The citizen's page."""
CALLBACK = "/mes-donnees/retour"
"""Where FranceConnect sends the browser back (the registered ``redirect_uri`` ends so)."""
SIGNED_OUT = "/mes-donnees/deconnexion/retour"
"""Where FranceConnect sends the browser back after signing out (``post_logout_redirect_uri``)."""
SCOPES = "openid given_name family_name birthdate gender birthplace birthcountry"
"""The identité pivot: what the gateway needs to find the accesses about the person."""
DIRECTORY_URL = "https://annuaire-entreprises.data.gouv.fr/etablissement/"
"""The public register of organisations, by SIRET: the organisation's name and address."""

Render = Callable[..., Response]
FormReader = Callable[[Request, Session], Awaitable[dict[str, str] | Response]]


@dataclass(frozen=True, slots=True)
class AccessView:
    """One access about the citizen, as the page shows it."""

    time: dt.datetime
    siret: str
    organisation: str
    """The organisation's name; its SIRET where the registry has no name."""
    api_label: str
    api_title: str
    purpose: str
    """The habilitation's use case; its label where the registry has none."""
    delivered: bool
    """Whether data was handed over (``OK``), or the call was refused."""


def accesses_of(body: Any) -> list[AccessView]:
    """The gateway's ``{"accesses": [...]}`` answer as the page's rows, most recent first.

    Raises:
        TypeError: the answer is not of that shape.
        KeyError, ValueError: an access lacks a field, or its time is not ISO 8601.
    """
    if not isinstance(body, dict) or not isinstance(body.get("accesses"), list):
        raise TypeError("not an access history")
    views = []
    for access in body["accesses"]:
        label = str(access["api"])
        api = catalogue.api(label)
        siret = str(access["recipient"])
        views.append(
            AccessView(
                time=dt.datetime.fromisoformat(access["time"]),
                siret=siret,
                organisation=str(access.get("organisation_name") or siret),
                api_label=label,
                api_title=api.title if api is not None else label,
                purpose=str(access.get("use_case") or access["habilitation"]),
                delivered=access["outcome"] == "OK",
            )
        )
    return sorted(views, key=lambda view: view.time, reverse=True)


class CitizenSpace:
    """The citizen's sign-in, page and sign-out.

    Args:
        settings: The console's settings (``FRANCE_CONNECT_*``: unset, the page says the sign-in
            is not offered).
        public: An HTTP client of the gateway's REST front.
        render: Renders a template with the console's session (`console.app.Console`).
        error: Renders the error page: request, status, title, detail.
        form: Reads a POSTed form, its CSRF token checked.
        session: The console's session of a request, and whether it is new.
        limiter: The console's sign-in limit, shared with the other sign-ins: where a failure counts.
        limited: The 429 page when that limit is reached, else None (`console.app.Console.limited`).
    """

    def __init__(
        self,
        settings: ConsoleSettings,
        public: httpx.AsyncClient,
        *,
        render: Render,
        error: Callable[[Request, int, str, str], Response],
        form: FormReader,
        session: Callable[[Request], tuple[Session, bool]],
        limiter: SignInLimiter,
        limited: Callable[[Request], Response | None],
    ) -> None:
        self._settings = settings
        self._public = public
        self._render = render
        self._error = error
        self._form = form
        self._session = session
        self._limiter = limiter
        self._limited = limited
        self._fernet = Fernet(settings.console_session_key.get_secret_value().encode())
        self._client: Any = None
        if settings.france_connect_url:
            oauth = OAuth()
            self._client = oauth.register(
                "franceconnect",
                client_id=settings.france_connect_client_id,
                client_secret=settings.france_connect_client_secret.get_secret_value(),
                server_metadata_url=settings.france_connect_url.rstrip("/")
                + "/.well-known/openid-configuration",
                client_kwargs={
                    "scope": SCOPES,
                    "code_challenge_method": "S256",
                    "timeout": settings.mesh_timeout_seconds,
                },
            )

    def routes(self) -> list[Route]:
        """The citizen's routes."""
        return [
            Route(PAGE, self.page, methods=["GET"]),
            Route(f"{PAGE}/connexion", self.sign_in, methods=["GET"]),
            Route(CALLBACK, self.callback, methods=["GET"]),
            Route(f"{PAGE}/deconnexion", self.sign_out, methods=["POST"]),
            Route(SIGNED_OUT, self.signed_out, methods=["GET"]),
        ]

    @property
    def post_logout_redirect_uri(self) -> str:
        """The sign-out's return: the registered redirect URI with `SIGNED_OUT` for `CALLBACK`."""
        return self._settings.france_connect_redirect_uri.removesuffix(CALLBACK) + SIGNED_OUT

    # -- the citizen's cookie ----------------------------------------------------------------------

    def _open(self, request: Request) -> dict[str, Any]:
        """What the citizen's cookie holds; empty when absent, altered, not ours or past its age."""
        value = request.cookies.get(COOKIE)
        if not value:
            return {}
        try:
            sealed = self._fernet.decrypt(value.encode(), ttl=self._settings.session_max_age_seconds)
            data = json.loads(sealed)
        except (InvalidToken, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _sealed(self, response: Response, data: dict[str, Any] | None) -> Response:
        """``response`` with the citizen's cookie set to ``data``, or removed."""
        if data is None:
            response.delete_cookie(COOKIE, path="/", httponly=True, samesite="lax")
            return response
        response.set_cookie(
            COOKIE,
            self._fernet.encrypt(json.dumps(data).encode()).decode(),
            max_age=self._settings.session_max_age_seconds,
            httponly=True,
            secure=self._settings.secure_cookies,
            samesite="lax",
            path="/",
        )
        return response

    # -- pages -------------------------------------------------------------------------------------

    async def page(self, request: Request) -> Response:
        """``GET /mes-donnees``: the accesses about the citizen signed in, else the FranceConnect button."""
        data = self._open(request)
        token = data.get("access_token")
        if not isinstance(token, str) or float(data.get("expires_at", 0)) <= time.time():
            return self._render(
                request, "citizen.html", signed_in=False, enabled=self._client is not None, accesses=[]
            )
        try:
            response = await self._public.get(ACCESSES_PATH, headers={"authorization": f"Bearer {token}"})
        except httpx.HTTPError:
            return self._unavailable(request)
        if response.status_code in {401, 403}:
            # FranceConnect no longer vouches for this token: the citizen signs in again.
            _LOG.info("console_citizen_token_refused", status=response.status_code)
            page = self._render(
                request, "citizen.html", signed_in=False, enabled=self._client is not None, accesses=[]
            )
            return self._sealed(page, None)
        if response.status_code == 429:
            # The gateway's limit on a citizen's history: say so, and when to come back.
            page = self._error(
                request,
                429,
                "Trop de consultations",
                "Vous avez consulté cette page trop souvent : réessayez.",
            )
            page.headers["retry-after"] = response.headers.get("retry-after", "1")
            return page
        if response.status_code != 200:
            _LOG.warning("console_citizen_history_unavailable", status=response.status_code)
            return self._unavailable(request)
        try:
            accesses = accesses_of(response.json())
        except (ValueError, KeyError, TypeError) as error:
            _LOG.warning("console_citizen_history_unreadable", error=type(error).__name__)
            return self._unavailable(request)
        return self._render(
            request,
            "citizen.html",
            signed_in=True,
            enabled=True,
            accesses=accesses,
            directory_url=DIRECTORY_URL,
        )

    async def sign_in(self, request: Request) -> Response:
        """``GET /mes-donnees/connexion``: off to FranceConnect with a new state, nonce and PKCE verifier.

        A link, not a form: the console's policy lets forms post to itself only (``form-action
        'self'``), and a form's redirect to another origin falls under it. Starting a sign-in
        changes nothing the citizen has (the callback's state is bound to this browser's cookie).
        Nor does it check a secret: it is not counted against the sign-in limit, which only a
        callback that does not check out feeds (`console.security.SignInLimiter`).
        """
        if self._client is None:
            return self._not_configured(request)
        # Authlib keeps the flow's state, nonce and verifier in ``request.session``: a fresh one,
        # sealed into the citizen's cookie, so that nothing of an earlier sign-in carries over.
        flow: dict[str, Any] = {}
        request.scope["session"] = flow
        try:
            redirect = await self._client.authorize_redirect(
                request, self._settings.france_connect_redirect_uri, acr_values="eidas1"
            )
        except (httpx.HTTPError, AuthlibBaseError, ValueError) as error:
            _LOG.warning("console_france_connect_unavailable", error=type(error).__name__)
            return self._unavailable(request)
        response = RedirectResponse(redirect.headers["location"], status_code=303)
        return self._sealed(response, {"flow": flow})

    async def callback(self, request: Request) -> Response:
        """``GET /mes-donnees/retour``: the code for tokens, the state, nonce and ID token checked.

        A refusal counts as a failed sign-in; past the limit, 429 before anything is checked.
        """
        refused = self._limited(request)
        if refused is not None:
            return refused
        flow = self._open(request).get("flow")
        request.scope["session"] = flow if isinstance(flow, dict) else {}
        try:
            token = await self._client.authorize_access_token(request) if self._client else None
        except (AuthlibBaseError, JoseError) as error:
            # A state not ours (another browser's, replayed), a refusal, a code already used, an
            # ID token that does not verify (signature, issuer, audience, expiry, nonce).
            _LOG.info("console_citizen_sign_in_refused", error=type(error).__name__)
            self._limiter.failed(client_of(request))
            response = self._error(
                request,
                400,
                "Connexion refusée",
                "La connexion avec FranceConnect n'a pas abouti : recommencez depuis « Mes données ».",
            )
            return self._sealed(response, None)
        except httpx.HTTPError as error:
            _LOG.warning("console_citizen_sign_in_failed", error=type(error).__name__)
            return self._sealed(self._unavailable(request), None)
        if token is None:
            return self._not_configured(request)
        _LOG.info("console_citizen_sign_in")
        lifetime = min(float(token.get("expires_in", 600)), self._settings.session_max_age_seconds)
        expires_at = time.time() + lifetime
        citizen = {
            "access_token": token["access_token"],
            "expires_at": expires_at,
            "id_token": str(token.get("id_token", "")),
        }
        return self._sealed(RedirectResponse(PAGE, status_code=303), citizen)

    async def sign_out(self, request: Request) -> Response:
        """``POST /mes-donnees/deconnexion``: the access token dropped, then FranceConnect's sign-out.

        CSRF-checked. To the provider's ``end_session_endpoint`` with the ID token, a new state and
        the return URL, the state alone kept in the cookie; the cookie removed and back to the page
        when there is no ID token or the provider offers no sign-out.
        """
        session, _new = self._session(request)
        fields = await self._form(request, session)
        if isinstance(fields, Response):
            return fields
        id_token = self._open(request).get("id_token")
        endpoint = await self._end_session_endpoint() if isinstance(id_token, str) and id_token else None
        if endpoint is None:
            return self._sealed(RedirectResponse(PAGE, status_code=303), None)
        state = secrets.token_urlsafe(32)
        query = urllib.parse.urlencode(
            {
                "id_token_hint": id_token,
                "state": state,
                "post_logout_redirect_uri": self.post_logout_redirect_uri,
            }
        )
        _LOG.info("console_citizen_sign_out")
        return self._sealed(RedirectResponse(f"{endpoint}?{query}", status_code=303), {"logout_state": state})

    async def _end_session_endpoint(self) -> str | None:
        """The provider's sign-out URL from its discovery document; None: none, or unreadable."""
        if self._client is None:
            return None
        try:
            metadata = await self._client.load_server_metadata()
        except (httpx.HTTPError, AuthlibBaseError, ValueError) as error:
            _LOG.warning("console_france_connect_unavailable", error=type(error).__name__)
            return None
        endpoint = metadata.get("end_session_endpoint")
        if not isinstance(endpoint, str) or not endpoint:
            return None
        if origin_of(endpoint) != origin_of(self._settings.france_connect_url):
            # The console's form-action lets a sign-out leave for the provider's origin only.
            _LOG.warning("console_france_connect_sign_out_elsewhere")
            return None
        return endpoint

    async def signed_out(self, request: Request) -> Response:
        """``GET /mes-donnees/deconnexion/retour``: back from FranceConnect's sign-out, its state checked.

        The cookie is removed either way; a state not this browser's (none pending, another's) is 400.
        """
        expected = self._open(request).get("logout_state")
        state = request.query_params.get("state", "")
        if not isinstance(expected, str) or not hmac.compare_digest(state.encode(), expected.encode()):
            _LOG.info("console_citizen_sign_out_refused")
            response = self._error(
                request,
                400,
                "Déconnexion inattendue",
                "Cette déconnexion n'a pas été demandée depuis ce navigateur ; "
                "vous êtes déconnecté de « Mes données ».",
            )
            return self._sealed(response, None)
        return self._sealed(RedirectResponse(PAGE, status_code=303), None)

    def _unavailable(self, request: Request) -> Response:
        return self._error(
            request,
            503,
            "Service momentanément indisponible",
            "Un service de la plateforme ne répond pas ; réessayez.",
        )

    def _not_configured(self, request: Request) -> Response:
        return self._error(
            request, 404, "Connexion indisponible", "La connexion avec FranceConnect n'est pas configurée."
        )
