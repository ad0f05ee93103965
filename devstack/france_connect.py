"""`make run`'s FranceConnect: an OpenID Connect provider whose people are the sandbox persons.

``python -m devstack.france_connect`` serves, on ``FC_SANDBOX_PORT`` (loopback), the few
endpoints a FranceConnect client uses, so that the console's sign-in (Authlib) is the same code
against it as against the real FranceConnect:

- ``GET /``: what this is, the sandbox persons one signs in as and their tokens, and where the
  sign-in starts (the client's: the console's "Mes données" on `make run`);
- ``GET /.well-known/openid-configuration``: the discovery document;
- ``GET /api/v2/authorize``: the authorization code flow's sign-in page, where one picks a
  sandbox person (`gateway.france_connect.sandbox.SANDBOX_TOKENS`) instead of an identity
  provider; ``response_type=code``, a registered ``redirect_uri``, ``state``, ``nonce`` and a
  PKCE ``code_challenge`` (S256) are required, as FranceConnect requires state and nonce;
- ``POST /api/v2/authorize``: the person picked, back to the client with a one-time code;
- ``POST /api/v2/token``: the code for tokens (client secret by HTTP Basic or in the form,
  the PKCE verifier checked): an ID token signed RS256 (``nonce``, ``acr`` eidas1, ``at_hash``)
  and an access token;
- ``GET /api/v2/userinfo``: the person's identity claims, the access token as bearer;
- ``GET /api/v2/jwks``: the public key of the ID tokens (made at start, kept in memory);
- ``GET /api/v2/session/end``: RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0, as
  FranceConnect's): an ID token it issued to the client as ``id_token_hint`` (expired or not), the
  registered ``post_logout_redirect_uri`` and a ``state``, sent back with it. It keeps no session
  of its own, so nothing else ends.

The access token it hands out is the person's sandbox FranceConnect token (``fc-…``), the one the
gateway's sandbox introspection (`gateway.france_connect.sandbox.SandboxIntrospection`) answers
for: the console then calls the gateway's citizen routes with it as the real console would with
a FranceConnect access token. The one client it knows is ``FC_SANDBOX_CLIENT_ID`` /
``FC_SANDBOX_CLIENT_SECRET`` with ``FC_SANDBOX_REDIRECT_URI`` and
``FC_SANDBOX_POST_LOGOUT_REDIRECT_URI``. Sandbox only: nothing here is
deployed; codes live 60 s in this process's memory; it logs no request (a person's token names
them).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import os
import secrets
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import uvicorn
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from devstack.processes import Child, ProcessGroup, wait_until_http
from gateway.france_connect.sandbox import SANDBOX_TOKENS, SandboxToken

CODE_SECONDS = 60
"""How long an authorization code may be exchanged."""
TOKEN_SECONDS = 600
"""The access token's announced lifetime (the sandbox introspection gives its tokens 10 minutes)."""
_KID = "sandbox"
_PKCE_VERIFIER_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


def people() -> tuple[SandboxToken, ...]:
    """The persons one may sign in as: each live sandbox token of a person, the first per person."""
    seen: set[tuple[Any, ...]] = set()
    chosen = []
    for token in SANDBOX_TOKENS:
        key = tuple(sorted((name, str(value)) for name, value in token.claims.items()))
        if token.active and not token.expired and token.claims and key not in seen:
            seen.add(key)
            chosen.append(token)
    return tuple(chosen)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


@dataclass(frozen=True, slots=True)
class _Grant:
    """What an authorization code stands for until it is exchanged."""

    token: SandboxToken
    redirect_uri: str
    nonce: str
    challenge: str
    expires: float


class SandboxProvider:
    """The provider's endpoints.

    Args:
        issuer: Its base URL (``iss`` of its ID tokens, root of its endpoints).
        client_id: The one client it serves.
        client_secret: That client's secret.
        redirect_uri: That client's registered redirection URI.
        post_logout_redirect_uri: Where that client's sign-outs may send the browser back.
    """

    def __init__(
        self,
        issuer: str,
        client_id: str,
        client_secret: str,
        redirect_uri: str,
        post_logout_redirect_uri: str,
    ) -> None:
        self._issuer = issuer.rstrip("/")
        self._client_id = client_id
        self._client_secret = client_secret
        self._redirect_uri = redirect_uri
        self._post_logout_redirect_uri = post_logout_redirect_uri
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._people = {token.token: token for token in people()}
        self._grants: dict[str, _Grant] = {}

    def discovery(self, _request: Request) -> Response:
        """``GET /.well-known/openid-configuration``."""
        base = f"{self._issuer}/api/v2"
        return JSONResponse(
            {
                "issuer": self._issuer,
                "authorization_endpoint": f"{base}/authorize",
                "token_endpoint": f"{base}/token",
                "userinfo_endpoint": f"{base}/userinfo",
                "jwks_uri": f"{base}/jwks",
                "end_session_endpoint": f"{base}/session/end",
                "response_types_supported": ["code"],
                "grant_types_supported": ["authorization_code"],
                "subject_types_supported": ["pairwise"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
                "code_challenge_methods_supported": ["S256"],
                "scopes_supported": [
                    "openid",
                    "given_name",
                    "family_name",
                    "birthdate",
                    "gender",
                    "birthplace",
                    "birthcountry",
                ],
                "acr_values_supported": ["eidas1"],
                "claims_parameter_supported": False,
            }
        )

    def jwks(self, _request: Request) -> Response:
        """``GET /api/v2/jwks``: the ID tokens' public key."""
        key = RSAAlgorithm.to_jwk(self._key.public_key(), as_dict=True)
        return JSONResponse({"keys": [{**key, "kid": _KID, "use": "sig", "alg": "RS256"}]})

    def _authorization_error(self, params: dict[str, str]) -> str | None:
        """Why an authorization request is refused, or None."""
        if params.get("client_id") != self._client_id:
            return "client_id inconnu"
        if params.get("redirect_uri") != self._redirect_uri:
            return "redirect_uri non enregistrée pour ce client"
        if params.get("response_type") != "code":
            return "response_type doit être code"
        if "openid" not in params.get("scope", "").split():
            return "le scope openid est requis"
        for name in ("state", "nonce", "code_challenge"):
            if not 8 <= len(params.get(name, "")) <= 256:
                return f"{name} requis (8 à 256 caractères)"
        if params.get("code_challenge_method") != "S256":
            return "code_challenge_method doit être S256"
        return None

    async def home(self, _request: Request) -> Response:
        """``GET /``: the sandbox persons and their FranceConnect tokens, and where one signs in."""
        client = urllib.parse.urlsplit(self._redirect_uri)
        citizen_space = f"{client.scheme}://{client.netloc}/mes-donnees"
        rows = "".join(
            f"<tr><td>{html.escape(_name(token))}</td>"
            f"<td>{html.escape(str(token.claims.get('birthdate', '')))}</td>"
            f"<td><code>{html.escape(token.token)}</code></td><td>{html.escape(token.label)}</td></tr>"
            for token in SANDBOX_TOKENS
            if token.active and not token.expired
        )
        body = (
            "<p>FranceConnect du bac à sable : ses personnes sont celles du bac à sable. La connexion "
            "part du service qui utilise FranceConnect, ici la console, « Mes données » : "
            f'<a href="{html.escape(citizen_space)}">{html.escape(citizen_space)}</a>. Cette page-là '
            "propose les personnes ci-dessous.</p>"
            "<p>Le jeton d'accès de chacune s'envoie aussi tel quel en <code>Authorization: Bearer</code> "
            "aux routes FranceConnect de la passerelle.</p>"
            '<table><caption>Personnes du bac à sable</caption><thead><tr><th scope="col">Personne</th>'
            '<th scope="col">Née le</th><th scope="col">Jeton d\'accès</th>'
            '<th scope="col">Données ouvertes</th></tr></thead>'
            f"<tbody>{rows}</tbody></table>"
        )
        return _page("FranceConnect (bac à sable)", body)

    async def authorize_page(self, request: Request) -> Response:
        """``GET /api/v2/authorize``: the sandbox persons to pick from, the request carried in the form."""
        params = dict(request.query_params)
        error = self._authorization_error(params)
        if error is not None:
            return _page("Requête refusée", f"<p>{html.escape(error)}.</p>", 400)
        hidden = "".join(
            f'<input type="hidden" name="{name}" value="{html.escape(params[name])}">'
            for name in ("client_id", "redirect_uri", "state", "nonce", "code_challenge")
        )
        choices = "".join(
            f'<li><input type="radio" name="person" id="p{index}" value="{html.escape(token.token)}"'
            f"{' checked' if index == 0 else ''}>"
            f' <label for="p{index}">{html.escape(_name(token))}, né(e) le '
            f"{html.escape(str(token.claims.get('birthdate', '')))}</label></li>"
            for index, token in enumerate(self._people.values())
        )
        body = (
            "<p>Bac à sable : choisissez la personne sous l'identité de laquelle vous vous connectez.</p>"
            f'<form method="post" action="/api/v2/authorize">{hidden}'
            f"<fieldset><legend>Personnes du bac à sable</legend><ul>{choices}</ul></fieldset>"
            '<button type="submit">Se connecter</button></form>'
        )
        return _page("Connexion avec FranceConnect (bac à sable)", body)

    async def authorize(self, request: Request) -> Response:
        """``POST /api/v2/authorize``: back to the client with a code for the person picked."""
        form = await _form(request)
        error = self._authorization_error(
            {**form, "response_type": "code", "scope": "openid", "code_challenge_method": "S256"}
        )
        token = self._people.get(form.get("person", ""))
        if error is not None or token is None:
            return _page("Requête refusée", f"<p>{html.escape(error or 'personne inconnue')}.</p>", 400)
        now = time.time()
        self._grants = {code: grant for code, grant in self._grants.items() if grant.expires > now}
        code = secrets.token_urlsafe(32)
        self._grants[code] = _Grant(
            token, form["redirect_uri"], form["nonce"], form["code_challenge"], now + CODE_SECONDS
        )
        query = urllib.parse.urlencode({"code": code, "state": form["state"]})
        return RedirectResponse(f"{form['redirect_uri']}?{query}", status_code=303)

    def _client_authenticated(self, request: Request, form: dict[str, str]) -> bool:
        header = request.headers.get("authorization", "")
        if header.lower().startswith("basic "):
            try:
                decoded = base64.b64decode(header[6:]).decode()
            except ValueError:
                return False
            client_id, _, secret = decoded.partition(":")
            client_id, secret = urllib.parse.unquote(client_id), urllib.parse.unquote(secret)
        else:
            client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
        return client_id == self._client_id and hmac.compare_digest(
            secret.encode(), self._client_secret.encode()
        )

    async def token(self, request: Request) -> Response:
        """``POST /api/v2/token``: an authorization code, once, for an ID token and an access token."""
        form = await _form(request)
        if not self._client_authenticated(request, form):
            return JSONResponse({"error": "invalid_client"}, 401)
        if form.get("grant_type") != "authorization_code":
            return JSONResponse({"error": "unsupported_grant_type"}, 400)
        grant = self._grants.pop(form.get("code", ""), None)
        verifier = form.get("code_verifier", "")
        if (
            grant is None
            or grant.expires < time.time()
            or form.get("redirect_uri") != grant.redirect_uri
            or not 43 <= len(verifier) <= 128
            or not set(verifier) <= _PKCE_VERIFIER_CHARS
            or not hmac.compare_digest(_b64(hashlib.sha256(verifier.encode()).digest()), grant.challenge)
        ):
            return JSONResponse({"error": "invalid_grant"}, 400)
        access_token = grant.token.token
        now = int(time.time())
        id_token = jwt.encode(
            {
                "iss": self._issuer,
                "sub": self._subject(grant.token),
                "aud": self._client_id,
                "iat": now,
                "exp": now + TOKEN_SECONDS,
                "nonce": grant.nonce,
                "acr": "eidas1",
                "amr": ["pwd"],
                "at_hash": _b64(hashlib.sha256(access_token.encode()).digest()[:16]),
            },
            self._key,
            algorithm="RS256",
            headers={"kid": _KID},
        )
        return JSONResponse(
            {
                "access_token": access_token,
                "token_type": "Bearer",
                "expires_in": TOKEN_SECONDS,
                "id_token": id_token,
                "scope": "openid given_name family_name birthdate gender birthplace birthcountry",
            },
            headers={"cache-control": "no-store"},
        )

    async def userinfo(self, request: Request) -> Response:
        """``GET /api/v2/userinfo``: the identity claims of the access token's person."""
        header = request.headers.get("authorization", "")
        token = self._people.get(header[7:] if header.lower().startswith("bearer ") else "")
        if token is None:
            return JSONResponse({"error": "invalid_token"}, 401)
        return JSONResponse({"sub": self._subject(token), **token.claims})

    async def end_session(self, request: Request) -> Response:
        """``GET /api/v2/session/end``: back to the client's registered sign-out return, with its state."""
        params = dict(request.query_params)
        try:
            jwt.decode(
                params.get("id_token_hint", ""),
                self._key.public_key(),
                algorithms=["RS256"],
                audience=self._client_id,
                issuer=self._issuer,
                # A sign-out after the ID token's expiry is still the person's.
                options={"verify_exp": False},
            )
        except jwt.PyJWTError:
            return _page("Déconnexion refusée", "<p>id_token_hint inconnu de ce fournisseur.</p>", 400)
        if params.get("post_logout_redirect_uri") != self._post_logout_redirect_uri:
            return _page("Déconnexion refusée", "<p>post_logout_redirect_uri non enregistrée.</p>", 400)
        if not 8 <= len(params.get("state", "")) <= 256:
            return _page("Déconnexion refusée", "<p>state requis (8 à 256 caractères).</p>", 400)
        query = urllib.parse.urlencode({"state": params["state"]})
        return RedirectResponse(f"{self._post_logout_redirect_uri}?{query}", status_code=303)

    def _subject(self, token: SandboxToken) -> str:
        """The person's ``sub`` for this client: pairwise and opaque, as FranceConnect's."""
        return hashlib.sha256(f"{self._client_id}:{token.token}".encode()).hexdigest()


async def _form(request: Request) -> dict[str, str]:
    """A POSTed ``application/x-www-form-urlencoded`` body's fields (the first value of each)."""
    body = await request.body()
    return {key: values[0] for key, values in urllib.parse.parse_qs(body.decode(errors="replace")).items()}


def _name(token: SandboxToken) -> str:
    return f"{str(token.claims.get('given_name', '')).title()} {token.claims.get('family_name', '')}"


def _page(title: str, body: str, status: int = 200) -> Response:
    document = (
        '<!doctype html><html lang="fr"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title></head>"
        f"<body><main><h1>{html.escape(title)}</h1>{body}</main></body></html>"
    )
    return HTMLResponse(
        document,
        status,
        headers={
            "content-security-policy": "default-src 'none'; form-action 'self' http://127.0.0.1:*; "
            "frame-ancestors 'none'",
            "cache-control": "no-store",
        },
    )


def build_app(provider: SandboxProvider) -> Starlette:
    """The provider's ASGI application."""
    return Starlette(
        routes=[
            Route("/", provider.home, methods=["GET"]),
            Route("/.well-known/openid-configuration", provider.discovery, methods=["GET"]),
            Route("/api/v2/authorize", provider.authorize_page, methods=["GET"]),
            Route("/api/v2/authorize", provider.authorize, methods=["POST"]),
            Route("/api/v2/token", provider.token, methods=["POST"]),
            Route("/api/v2/userinfo", provider.userinfo, methods=["GET"]),
            Route("/api/v2/jwks", provider.jwks, methods=["GET"]),
            Route("/api/v2/session/end", provider.end_session, methods=["GET"]),
            Route("/healthz", lambda _request: PlainTextResponse("ok"), methods=["GET"]),
        ]
    )


# -- `make run`: the console's client settings, the provider's process ----------------------------

CLIENT_ID = "console"
"""The console's client id at the sandbox provider."""


def client_env(run_dir: Path, port: int, console_port: int) -> dict[str, str]:
    """The console's FranceConnect settings on `make run`: this provider, a client secret in ``run_dir``."""
    path = run_dir / "france-connect-client-secret"
    if not path.exists():
        run_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(32))
        path.chmod(0o600)
    return {
        "FRANCE_CONNECT_URL": f"http://127.0.0.1:{port}",
        "FRANCE_CONNECT_CLIENT_ID": CLIENT_ID,
        "FRANCE_CONNECT_CLIENT_SECRET": path.read_text().strip(),
        "FRANCE_CONNECT_REDIRECT_URI": f"http://127.0.0.1:{console_port}/mes-donnees/retour",
    }


def post_logout_redirect_uri(console_port: int) -> str:
    """The console's sign-out return on `make run` (`console.citizen.SIGNED_OUT`), registered here."""
    return f"http://127.0.0.1:{console_port}/mes-donnees/deconnexion/retour"


def spawn(group: ProcessGroup, run_dir: Path, port: int, console_port: int) -> Child:
    """Start this provider on ``port`` for the console on ``console_port``, without waiting (`wait`)."""
    client = client_env(run_dir, port, console_port)
    env = {
        "FC_SANDBOX_PORT": str(port),
        "FC_SANDBOX_CLIENT_ID": client["FRANCE_CONNECT_CLIENT_ID"],
        "FC_SANDBOX_CLIENT_SECRET": client["FRANCE_CONNECT_CLIENT_SECRET"],
        "FC_SANDBOX_REDIRECT_URI": client["FRANCE_CONNECT_REDIRECT_URI"],
        "FC_SANDBOX_POST_LOGOUT_REDIRECT_URI": post_logout_redirect_uri(console_port),
    }
    return group.spawn("france-connect", ["-m", "devstack.france_connect"], env, port)


def wait(group: ProcessGroup, child: Child) -> None:
    """Block until the provider serves, then print its URL as the banner's other lines.

    Raises:
        RuntimeError: it exited or did not serve in time (`ProcessGroup.wait`).
    """
    group.wait(child, wait_until_http("/healthz"))
    print(f"{'franceconnect':<16} http://{child.address}/  (sandbox sign-in, for the console)")


def main() -> None:
    """Serve the sandbox provider on ``FC_SANDBOX_PORT`` until SIGTERM or SIGINT."""
    port = int(os.environ["FC_SANDBOX_PORT"])
    provider = SandboxProvider(
        f"http://127.0.0.1:{port}",
        os.environ["FC_SANDBOX_CLIENT_ID"],
        os.environ["FC_SANDBOX_CLIENT_SECRET"],
        os.environ["FC_SANDBOX_REDIRECT_URI"],
        os.environ["FC_SANDBOX_POST_LOGOUT_REDIRECT_URI"],
    )
    # No access log: the codes are one-time, but nothing of a person's goes to a log.
    uvicorn.run(build_app(provider), host="127.0.0.1", port=port, access_log=False, log_level="warning")


if __name__ == "__main__":
    main()
