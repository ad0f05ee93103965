"""The holders' space, served in-process: its guards, its charts' figures, the sandbox agents, ProConnect.

The admin API's address is a closed port: pages that need it answer 503. ProConnect is a small
OpenID provider served in-process (its discovery document, keys, token and userinfo endpoints),
whose tokens are signed as ProConnect's are. The pages over the running mesh are tested in a
browser (tests/console/test_browser.py).
"""

from __future__ import annotations

import json
import time
import urllib.parse
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from console.agents import BY_KEY, SANDBOX_AGENTS
from console.app import build_app
from console.holder import WINDOWS, chart_of
from console.proconnect import ProConnect, ProConnectError
from console.security import COOKIE, Session, SessionCodec
from console.settings import ConsoleSettings
from devstack.redis import free_port
from gateway.admin_api.service import secret_digest
from tests.test_personal_data import sandbox_secrets

KEY = Fernet.generate_key().decode()
_ISSUER = "https://proconnect.test/api/v2"
_RETURN = "https://console.test/agent/proconnect/retour"
_CLIENT = "console-test"


def test_no_sandbox_agent_bears_a_sandbox_person_s_name() -> None:
    names = {part.upper() for agent in SANDBOX_AGENTS for part in (agent.given_name, agent.usual_name)}
    assert names.isdisjoint(sandbox_secrets())


def test_the_chart_adds_up_the_calls_of_each_bar_api_and_code() -> None:
    since = 1_773_000_000
    activity = {
        "since": since,
        "bucket_seconds": 600,
        "rows": [
            {"bucket": since, "api": "cnaf.quotient_familial", "outcome": "OK", "code": "", "calls": 2},
            {"bucket": since + 600, "api": "cnaf.quotient_familial", "outcome": "OK", "code": "", "calls": 1},
            {
                "bucket": since + 3600,
                "api": "c2s",
                "outcome": "PERMISSION_DENIED",
                "code": "00100",
                "calls": 4,
            },
            {"bucket": since + 3600, "api": "c2s", "outcome": "NOT_FOUND", "code": "37002", "calls": 1},
        ],
        "codes": {"00100": {"title": "Privilèges insuffisants", "detail": "…"}},
    }
    thirty_hours = WINDOWS[1]
    chart = chart_of(activity, thirty_hours, now=since + 30 * 3600 - 1)
    assert len(chart.bars) == 30
    assert [(bar.ok, bar.errors) for bar in chart.bars[:3]] == [(3, 0), (0, 5), (0, 0)]
    assert (chart.total, chart.top) == (8, 5)
    assert chart.by_api == [("c2s", 0, 5), ("cnaf.quotient_familial", 3, 0)]
    assert chart.errors == [("00100", "Privilèges insuffisants", "…", 4), ("37002", "", "", 1)]


@pytest.fixture
def settings() -> ConsoleSettings:
    closed = f"http://127.0.0.1:{free_port()}"
    return ConsoleSettings(
        console_session_key=SecretStr(KEY),
        public_api_url=closed,
        admin_api_url=closed,
        console_admin_secret=SecretStr("the console's credential"),
        sandbox_agents=True,
        sign_in_attempts=3,
        mesh_timeout_seconds=1,
    )


@pytest.fixture
async def client(settings: ConsoleSettings) -> AsyncIterator[httpx.AsyncClient]:
    async with (
        httpx.AsyncClient(base_url=settings.public_api_url) as public,
        httpx.AsyncClient(base_url=settings.admin_api_url) as admin,
    ):
        app = build_app(settings, public, admin)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="https://console.test") as browser:
            yield browser


def _session_of(response: httpx.Response) -> Session:
    """The session an answer's cookie sets."""
    value = response.cookies[COOKIE].strip('"')
    session = SessionCodec(KEY, 3600).open(value)
    assert session is not None
    return session


def _csrf(page: httpx.Response) -> str:
    return _session_of(page).csrf


async def test_a_sandbox_agent_signs_in_and_is_no_operator(client: httpx.AsyncClient) -> None:
    assert (await client.get("/agent")).headers["location"] == "/agent/connexion"
    page = await client.get("/agent/connexion")
    for agent in SANDBOX_AGENTS:
        assert agent.name in page.text
        assert agent.email not in page.text  # the form sends a key, never an address
    refused = await client.post("/agent/connexion", data={"agent": "ccas", "csrf_token": "forged"})
    assert refused.status_code == 403
    unknown = await client.post("/agent/connexion", data={"agent": "nobody", "csrf_token": _csrf(page)})
    assert unknown.status_code == 400
    signed = await client.post("/agent/connexion", data={"agent": "ccas", "csrf_token": _csrf(page)})
    assert (signed.status_code, signed.headers["location"]) == (303, "/agent")
    session = _session_of(signed)
    assert (session.holder, session.operator, session.secret) == (BY_KEY["ccas"].email, "", "")
    assert (await client.get("/agent")).status_code == 503  # the admin API is away
    assert (await client.get("/operateur")).headers["location"] == "/connexion"


async def test_agents_sign_in_past_the_limit_and_only_an_unknown_agent_counts(
    client: httpx.AsyncClient,
) -> None:
    statuses = []
    for agent in ("ccas", "mairie", "ccas", "mairie", "nobody", "nobody", "nobody", "ccas"):
        client.cookies.clear()  # a fresh browser each time, on the same address
        page = await client.get("/agent/connexion")
        signed = await client.post("/agent/connexion", data={"agent": agent, "csrf_token": _csrf(page)})
        statuses.append(signed.status_code)
    assert statuses == [303, 303, 303, 303, 400, 400, 400, 429]


async def test_without_the_sandbox_no_agent_signs_in_that_way(settings: ConsoleSettings) -> None:
    closed = settings.model_copy(update={"sandbox_agents": False})
    async with httpx.AsyncClient(base_url=closed.admin_api_url) as admin:
        app = build_app(closed, admin, admin)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="https://c.test"
        ) as browser:
            page = await browser.get("/agent/connexion")
            assert BY_KEY["ccas"].name not in page.text
            answer = await browser.post("/agent/connexion", data={"agent": "ccas", "csrf_token": _csrf(page)})
            assert answer.status_code == 404
            assert (await browser.get("/agent/proconnect")).status_code == 404


class FakeProConnect:
    """An OpenID provider signing as ProConnect does (ES256 ID token and userinfo)."""

    def __init__(self) -> None:
        self.key = ECKey.generate_key("P-256", parameters={"kid": "pc-1"})
        self.nonce = ""
        self.code_verifier = ""
        self.forged = False

    def signed(self, claims: dict[str, Any]) -> str:
        key = ECKey.generate_key("P-256", parameters={"kid": "pc-1"}) if self.forged else self.key
        return jwt.encode({"alg": "ES256", "kid": "pc-1"}, claims, key)

    def app(self) -> Starlette:
        async def discovery(_request: Request) -> Response:
            return JSONResponse(
                {
                    "issuer": _ISSUER,
                    "authorization_endpoint": f"{_ISSUER}/authorize",
                    "token_endpoint": f"{_ISSUER}/token",
                    "userinfo_endpoint": f"{_ISSUER}/userinfo",
                    "jwks_uri": f"{_ISSUER}/jwks",
                    "end_session_endpoint": f"{_ISSUER}/session/end",
                }
            )

        async def jwks(_request: Request) -> Response:
            return JSONResponse(KeySet([self.key]).as_dict())

        async def token(request: Request) -> Response:
            form = urllib.parse.parse_qs((await request.body()).decode())
            self.code_verifier = form["code_verifier"][0]
            now = int(time.time())
            claims = {"iss": _ISSUER, "sub": "agent-1", "aud": _CLIENT, "exp": now + 60, "iat": now}
            return JSONResponse(
                {"access_token": "at", "id_token": self.signed({**claims, "nonce": self.nonce})}
            )

        async def userinfo(_request: Request) -> Response:
            claims = {"iss": _ISSUER, "sub": "agent-1", "email": "Agent.Test@Ville.example", "siret": "1"}
            return PlainTextResponse(self.signed(claims), media_type="application/jwt")

        async def authorize(_request: Request) -> Response:
            return PlainTextResponse("the provider's sign-in page")

        return Starlette(
            routes=[
                Route("/api/v2/authorize", authorize),
                Route("/api/v2/.well-known/openid-configuration", discovery),
                Route("/api/v2/jwks", jwks),
                Route("/api/v2/token", token, methods=["POST"]),
                Route("/api/v2/userinfo", userinfo),
            ]
        )


async def test_proconnect_signs_in_the_agent_its_tokens_name_and_nothing_else() -> None:
    provider = FakeProConnect()
    transport = httpx.ASGITransport(app=provider.app())
    async with httpx.AsyncClient(transport=transport) as http:
        client = ProConnect(
            http,
            _ISSUER,
            _CLIENT,
            "secret",
            _RETURN,
            post_logout_url="https://console.test/agent/deconnexion/retour",
        )
        url, pending = await client.start()
        query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))
        assert (query["state"], query["nonce"], query["code_challenge_method"]) == (
            pending.state,
            pending.nonce,
            "S256",
        )
        assert "siret" in query["scope"].split()
        provider.nonce = pending.nonce
        with pytest.raises(ProConnectError):
            await client.finish("code", "another state", pending)
        agent = await client.finish("code", pending.state, pending)
        assert (agent.email, provider.code_verifier) == ("agent.test@ville.example", pending.verifier)
        provider.nonce = "a replayed nonce"
        with pytest.raises(ProConnectError):
            await client.finish("code", pending.state, pending)
        provider.nonce, provider.forged = pending.nonce, True
        with pytest.raises(ProConnectError):
            await client.finish("code", pending.state, pending)


async def test_signing_out_ends_the_proconnect_session_and_checks_the_return_s_state(
    settings: ConsoleSettings,
) -> None:
    """RP-initiated logout: to the provider with the ID token and a state, back with that state only."""
    provider = FakeProConnect()
    settings = settings.model_copy(
        update={
            "proconnect_issuer": _ISSUER,
            "proconnect_client_id": _CLIENT,
            "proconnect_client_secret": SecretStr("secret"),
            "proconnect_redirect_url": _RETURN,
        }
    )
    async with (
        httpx.AsyncClient(base_url=settings.public_api_url) as public,
        httpx.AsyncClient(base_url=settings.admin_api_url) as admin,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=provider.app())) as proconnect,
    ):
        app = build_app(settings, public, admin, proconnect)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="https://console.test") as browser:
            start = await browser.get("/agent/proconnect")
            query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(start.headers["location"]).query))
            assert "form-action 'self' https://proconnect.test;" in start.headers["content-security-policy"]
            provider.nonce = query["nonce"]
            back = await browser.get(
                "/agent/proconnect/retour", params={"code": "c", "state": query["state"]}
            )
            assert (back.status_code, back.headers["location"]) == (303, "/agent")
            signed_in = _session_of(back)
            assert signed_in.holder == "agent.test@ville.example" and signed_in.id_token

            out = await browser.post("/agent/deconnexion", data={"csrf_token": signed_in.csrf})
            assert out.status_code == 303
            ending = urllib.parse.urlsplit(out.headers["location"])
            sent = dict(urllib.parse.parse_qsl(ending.query))
            assert f"{ending.scheme}://{ending.netloc}{ending.path}" == f"{_ISSUER}/session/end"
            assert sent["id_token_hint"] == signed_in.id_token
            assert sent["post_logout_redirect_uri"] == "https://console.test/agent/deconnexion/retour"
            assert _session_of(out).holder == ""  # the console's session ended before the provider's
            done = await browser.get("/agent/deconnexion/retour", params={"state": sent["state"]})
            assert (done.status_code, done.headers["location"]) == (303, "/")
            # The same return again (replayed, or another browser's): nothing pending, refused.
            replayed = await browser.get("/agent/deconnexion/retour", params={"state": sent["state"]})
            assert replayed.status_code == 400


async def test_a_sandbox_agent_signs_out_of_the_console_only(client: httpx.AsyncClient) -> None:
    page = await client.get("/agent/connexion")
    signed = await client.post("/agent/connexion", data={"agent": "ccas", "csrf_token": _csrf(page)})
    refused = await client.post("/agent/deconnexion", data={"csrf_token": "forged"})
    assert refused.status_code == 403
    out = await client.post("/agent/deconnexion", data={"csrf_token": _csrf(signed)})
    assert (out.status_code, out.headers["location"]) == (303, "/")
    assert _session_of(out).holder == ""


def test_the_settings_need_no_proconnect(tmp_path: Path) -> None:
    assert ConsoleSettings(console_session_key=SecretStr(KEY)).proconnect_issuer == ""


async def test_the_console_s_own_credential_signs_no_operator_in(
    settings: ConsoleSettings, tmp_path: Path
) -> None:
    secret = settings.console_admin_secret.get_secret_value()
    operators = tmp_path / "operators.json"
    entry = {"name": "console", "role": "console", "secret_sha256": secret_digest(secret)}
    operators.write_text(json.dumps({"operators": [entry]}))
    with_file = settings.model_copy(update={"admin_operators_file": operators})
    async with httpx.AsyncClient(base_url=with_file.admin_api_url) as admin:
        app = build_app(with_file, admin, admin)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="https://c.test") as browser:
            page = await browser.get("/connexion")
            answer = await browser.post("/connexion", data={"secret": secret, "csrf_token": _csrf(page)})
            assert answer.status_code == 401
