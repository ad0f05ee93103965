"""The holders' sign-in through ProConnect, the state agents' OpenID Connect provider (production).

The authorization code flow with PKCE (S256), a ``state`` and a ``nonce`` kept in the person's
session cookie (sealed by the console) between the redirect and the return:

1. `ProConnect.start`: the provider's authorization URL (``scope=openid email given_name
   usual_name siret``), and what the return must match.
2. `ProConnect.finish`: the code exchanged at the token endpoint (``client_secret_post``), the ID
   token checked against the provider's JWKS (signature, ``iss``, ``aud``, ``exp``, ``nonce``),
   then the userinfo read with the access token (ProConnect signs it: a JWT checked the same way,
   its ``sub`` the ID token's).

3. `ProConnect.sign_out_url`: RP-initiated logout, the provider's ``end_session_endpoint`` with
   the ID token as ``id_token_hint``, a ``state`` the return must bring back, and the
   ``post_logout_redirect_uri`` registered at ProConnect.

The provider's endpoints come from its discovery document, read once. Authlib gives the
authorization URL's parameters, PKCE's challenge and the random values; joserfc (Authlib's JOSE
library) checks the signatures and claims. Settings: ``PROCONNECT_*`` (`console.settings`).
"""

from __future__ import annotations

import json
import urllib.parse
from dataclasses import dataclass
from typing import Any

import httpx
from authlib.common.security import generate_token
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

SCOPES = "openid email given_name usual_name siret"
"""What the console asks of ProConnect: who the agent is, and their organisation's SIRET."""
ALGORITHMS = ["RS256", "ES256"]
"""The signatures ProConnect uses for its ID tokens and userinfo."""


class ProConnectError(Exception):
    """The sign-in failed: the provider refused, or answered something that does not check out."""


@dataclass(frozen=True, slots=True)
class Pending:
    """What the return from ProConnect must match, kept in the session between the two."""

    state: str
    nonce: str
    verifier: str

    def as_json(self) -> str:
        """The session's form of it."""
        return json.dumps({"state": self.state, "nonce": self.nonce, "verifier": self.verifier})

    @classmethod
    def of_json(cls, text: str) -> Pending | None:
        """The pending sign-in a session holds; None when it holds none."""
        try:
            data = json.loads(text) if text else None
            return (
                None if data is None else cls(str(data["state"]), str(data["nonce"]), str(data["verifier"]))
            )
        except (ValueError, KeyError, TypeError):
            return None


@dataclass(frozen=True, slots=True)
class Agent:
    """A signed-in state agent, as ProConnect names them."""

    email: str
    given_name: str
    usual_name: str
    siret: str
    id_token: str
    """The ID token ProConnect issued: the ``id_token_hint`` of the agent's sign-out."""


class ProConnect:
    """A ProConnect client of the console.

    Args:
        client: An HTTP client (its timeout is the console's ``MESH_TIMEOUT_SECONDS``).
        issuer: The provider's issuer URL (its discovery document is under it).
        client_id: The console's client id at ProConnect.
        client_secret: Its secret.
        redirect_url: The console's return URL, as registered at ProConnect.
        post_logout_url: The console's return after a sign-out there, as registered too.
    """

    def __init__(
        self,
        client: httpx.AsyncClient,
        issuer: str,
        client_id: str,
        client_secret: str,
        redirect_url: str,
        *,
        post_logout_url: str,
    ) -> None:
        self._client = client
        self._issuer = issuer.rstrip("/")
        self._client_id = client_id
        self._client_secret = client_secret
        self._redirect_url = redirect_url
        self._post_logout_url = post_logout_url
        self._metadata: dict[str, Any] | None = None

    async def _get_json(self, url: str) -> Any:
        try:
            response = await self._client.get(url)
            response.raise_for_status()
            return response.json()
        except (httpx.HTTPError, ValueError) as error:
            raise ProConnectError(f"{url}: {type(error).__name__}") from None

    async def _discovery(self) -> dict[str, Any]:
        if self._metadata is None:
            metadata = await self._get_json(f"{self._issuer}/.well-known/openid-configuration")
            if not isinstance(metadata, dict) or metadata.get("issuer", "").rstrip("/") != self._issuer:
                raise ProConnectError("the discovery document is not the issuer's")
            self._metadata = metadata
        return self._metadata

    async def start(self) -> tuple[str, Pending]:
        """The URL to send the agent to, and what their return must match.

        Raises:
            ProConnectError: the provider's discovery document cannot be read.
        """
        metadata = await self._discovery()
        pending = Pending(generate_token(32), generate_token(32), generate_token(64))
        url = prepare_grant_uri(
            metadata["authorization_endpoint"],
            self._client_id,
            "code",
            redirect_uri=self._redirect_url,
            scope=SCOPES,
            state=pending.state,
            nonce=pending.nonce,
            code_challenge=create_s256_code_challenge(pending.verifier),
            code_challenge_method="S256",
        )
        return url, pending

    async def finish(self, code: str, state: str, pending: Pending | None) -> Agent:
        """The agent of a return from ProConnect.

        Raises:
            ProConnectError: no sign-in pending, a state not the session's, or the provider's answers
                do not check out (the message says which, never a token).
        """
        if pending is None or not state or state != pending.state or not code:
            raise ProConnectError("no sign-in of this session is pending")
        metadata = await self._discovery()
        try:
            answer = await self._client.post(
                metadata["token_endpoint"],
                data={
                    "grant_type": "authorization_code",
                    "code": code,
                    "redirect_uri": self._redirect_url,
                    "client_id": self._client_id,
                    "client_secret": self._client_secret,
                    "code_verifier": pending.verifier,
                },
            )
            answer.raise_for_status()
            tokens = answer.json()
        except (httpx.HTTPError, ValueError) as error:
            raise ProConnectError(f"token endpoint: {type(error).__name__}") from None
        keys = KeySet.import_key_set(await self._get_json(metadata["jwks_uri"]))
        identity = self._claims(str(tokens.get("id_token", "")), keys, nonce=pending.nonce)
        try:
            info = await self._client.get(
                metadata["userinfo_endpoint"],
                headers={"authorization": f"Bearer {tokens.get('access_token', '')}"},
            )
            info.raise_for_status()
        except httpx.HTTPError as error:
            raise ProConnectError(f"userinfo: {type(error).__name__}") from None
        if info.headers.get("content-type", "").startswith("application/jwt"):
            user = self._claims(info.text, keys, nonce=None)
        else:
            user = info.json()
        if user.get("sub") != identity.get("sub") or not isinstance(user.get("email"), str):
            raise ProConnectError("the userinfo is not the ID token's agent's")
        return Agent(
            email=user["email"].strip().lower(),
            given_name=str(user.get("given_name", "")),
            usual_name=str(user.get("usual_name", "")),
            siret=str(user.get("siret", "")),
            id_token=str(tokens.get("id_token", "")),
        )

    async def sign_out_url(self, id_token: str, state: str) -> str | None:
        """Where to send the agent to end their ProConnect session; None: the provider offers no sign-out.

        Args:
            id_token: The ID token of their sign-in (``id_token_hint``).
            state: What the return must bring back.

        Raises:
            ProConnectError: the provider's discovery document cannot be read.
        """
        endpoint = (await self._discovery()).get("end_session_endpoint")
        if not isinstance(endpoint, str) or not endpoint:
            return None
        query = urllib.parse.urlencode(
            {"id_token_hint": id_token, "state": state, "post_logout_redirect_uri": self._post_logout_url}
        )
        return f"{endpoint}?{query}"

    def _claims(self, token: str, keys: KeySet, *, nonce: str | None) -> dict[str, Any]:
        try:
            decoded = jwt.decode(token, keys, algorithms=ALGORITHMS)
            expected: dict[str, Any] = {
                "iss": {"essential": True, "value": self._issuer},
                "sub": {"essential": True},
            }
            if nonce is not None:
                expected["aud"] = {"essential": True, "value": self._client_id}
                expected["nonce"] = {"essential": True, "value": nonce}
                expected["exp"] = {"essential": True}
            jwt.JWTClaimsRegistry(**expected).validate(decoded.claims)
        except (JoseError, ValueError) as error:
            raise ProConnectError(f"a token does not check out: {type(error).__name__}") from None
        return dict(decoded.claims)
