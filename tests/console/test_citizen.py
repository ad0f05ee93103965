"""The citizen's FranceConnect sign-in, in-process, against the sandbox provider served on a real port.

The console's Authlib client talks to `devstack.france_connect` over HTTP as to FranceConnect:
discovery, the authorization code flow with state, nonce and PKCE, the ID token against the
JWKS. The gateway's history route is stood in for by a small app that answers by bearer, so that
what the console sends and shows can be read; the real gateway and journal are driven in the
browser test (tests/console/test_browser_citizen.py).
"""

from __future__ import annotations

import base64
import hashlib
import re
import urllib.parse
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx
import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from console.app import build_app
from console.citizen import ACCESSES_PATH, COOKIE
from console.security import content_security_policy, origin_of
from console.settings import ConsoleSettings
from devstack.france_connect import CLIENT_ID, people
from devstack.redis import free_port
from tests.devstack.test_france_connect import served
from tests.people import RECIPIENT

SECRET = "citizen-test-client-secret"
CONSOLE = "https://console.test"
REDIRECT_URI = f"{CONSOLE}/mes-donnees/retour"
SIGNED_OUT_URI = f"{CONSOLE}/mes-donnees/deconnexion/retour"
FIRST, SECOND, LIMITED = (person.token for person in people()[:3])


@dataclass
class Gateway:
    """Stands for the gateway's history route: two accesses for the first person, a limit for the third."""

    bearers: list[str] = field(default_factory=list)

    async def accesses(self, request: Request) -> Response:
        bearer = request.headers.get("authorization", "").removeprefix("Bearer ")
        self.bearers.append(bearer)
        if bearer == LIMITED:
            return JSONResponse({"errors": []}, 429, headers={"retry-after": "3"})
        if bearer != FIRST:
            return JSONResponse({"accesses": []})
        named = {
            "time": "2026-12-01T09:30:00+00:00",
            "recipient": RECIPIENT,
            "habilitation": "QF cantine",
            "api": "cnaf.quotient_familial",
            "outcome": "OK",
            "code": "",
            "organisation_name": "Ville de Lyon",
            "use_case": "Tarification de la restauration scolaire",
        }
        # A habilitation the registry names not: its SIRET and its label stand in.
        unnamed = {**named, "time": "2026-11-30T09:30:00+00:00", "organisation_name": "", "use_case": ""}
        return JSONResponse({"accesses": [named, unnamed]})


@pytest.fixture
async def provider() -> AsyncIterator[str]:
    """The sandbox FranceConnect on a loopback port, for the console's client only."""
    async with served(REDIRECT_URI, SIGNED_OUT_URI, secret=SECRET) as issuer:
        yield issuer


@pytest.fixture
def gateway() -> Gateway:
    return Gateway()


@pytest.fixture
async def console(provider: str, gateway: Gateway) -> AsyncIterator[httpx.AsyncClient]:
    settings = ConsoleSettings(
        console_session_key=SecretStr(Fernet.generate_key().decode()),
        public_api_url="http://gateway.test",
        admin_api_url=f"http://127.0.0.1:{free_port()}",
        france_connect_url=provider,
        france_connect_client_id=CLIENT_ID,
        france_connect_client_secret=SecretStr(SECRET),
        france_connect_redirect_uri=REDIRECT_URI,
        sign_in_attempts=20,
        mesh_timeout_seconds=2,
    )
    stand_in = Starlette(routes=[Route(ACCESSES_PATH, gateway.accesses)])
    async with (
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=stand_in), base_url=settings.public_api_url
        ) as public,
        httpx.AsyncClient(base_url=settings.admin_api_url) as admin,
    ):
        app = build_app(settings, public, admin)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=CONSOLE) as browser:
            yield browser


def _csrf(page: httpx.Response) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert match is not None, page.text
    return match.group(1)


def _hidden(page: httpx.Response) -> dict[str, str]:
    return dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', page.text))


async def _to_provider(console: httpx.AsyncClient) -> httpx.Response:
    """The citizen follows "S'identifier avec FranceConnect": the redirect to the provider."""
    page = await console.get("/mes-donnees")
    assert 'href="/mes-donnees/connexion"' in page.text
    return await console.get("/mes-donnees/connexion")


async def _pick(authorize_url: str, person: str) -> str:
    """The citizen picks ``person`` on the provider's page: the console's callback URL (code, state)."""
    async with httpx.AsyncClient() as browser:
        page = await browser.get(authorize_url)
        assert page.status_code == 200, page.text
        chosen = await browser.post(authorize_url.partition("?")[0], data={**_hidden(page), "person": person})
    assert chosen.status_code == 303
    return chosen.headers["location"]


async def test_a_citizen_signs_in_and_sees_the_accesses_about_them(
    console: httpx.AsyncClient, gateway: Gateway
) -> None:
    redirect = await _to_provider(console)
    assert redirect.status_code == 303
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(redirect.headers["location"]).query)
    assert query["code_challenge_method"] == ["S256"]
    assert {"state", "nonce", "code_challenge"} <= query.keys()
    assert query["redirect_uri"] == [REDIRECT_URI] and "openid" in query["scope"][0].split()
    cookie = redirect.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=") and "HttpOnly" in cookie and "SameSite=lax" in cookie

    callback = await _pick(redirect.headers["location"], FIRST)
    assert callback.startswith(REDIRECT_URI) and FIRST not in callback
    signed_in = await console.get(callback.removeprefix(CONSOLE))
    assert (signed_in.status_code, signed_in.headers["location"]) == (303, "/mes-donnees")

    page = await console.get("/mes-donnees")
    assert gateway.bearers == [FIRST]
    rows = re.findall(r"<tr>\s*<td>(.*?)</tr>", page.text, re.DOTALL)
    assert len(rows) == 2
    assert "01/12/2026 10:30" in rows[0]  # Paris time, most recent first
    assert "Ville de Lyon" in rows[0] and f"SIRET {RECIPIENT}" in rows[0]
    assert "Tarification de la restauration scolaire" in rows[0] and "QF cantine" not in rows[0]
    assert "Ville de Lyon" not in rows[1] and f"SIRET {RECIPIENT}" in rows[1] and "QF cantine" in rows[1]

    # Signing out: the token dropped at once, then FranceConnect's own sign-out (RP-initiated logout).
    out = await console.post("/mes-donnees/deconnexion", data={"csrf_token": _csrf(page)})
    assert out.status_code == 303
    ending = urllib.parse.urlsplit(out.headers["location"])
    sent = dict(urllib.parse.parse_qsl(ending.query))
    assert ending.path == "/api/v2/session/end"
    assert sent["post_logout_redirect_uri"] == SIGNED_OUT_URI and len(sent["state"]) >= 32
    assert sent["id_token_hint"].count(".") == 2 and FIRST not in out.headers["location"]
    again = await console.get("/mes-donnees")
    assert "FranceConnect" in again.text and "consultations" not in again.text
    assert gateway.bearers == [FIRST]
    async with httpx.AsyncClient() as browser:
        back = await browser.get(out.headers["location"])
    assert back.status_code == 303
    assert back.headers["location"] == f"{SIGNED_OUT_URI}?state={sent['state']}"
    done = await console.get(back.headers["location"].removeprefix(CONSOLE))
    assert (done.status_code, done.headers["location"]) == (303, "/mes-donnees")
    assert f'{COOKIE}=""' in done.headers["set-cookie"]
    # The same return again (replayed, or another browser's): nothing pending, refused.
    replayed = await console.get(back.headers["location"].removeprefix(CONSOLE))
    assert replayed.status_code == 400


async def test_the_sandbox_provider_s_sign_out_checks_its_hint_its_return_and_its_state(
    provider: str,
) -> None:
    async with httpx.AsyncClient(base_url=provider) as browser:
        metadata = (await browser.get("/.well-known/openid-configuration")).json()
        assert metadata["end_session_endpoint"] == f"{provider}/api/v2/session/end"
        for params in (
            {"id_token_hint": "not.a.token", "state": "s" * 16, "post_logout_redirect_uri": SIGNED_OUT_URI},
            {"state": "s" * 16, "post_logout_redirect_uri": SIGNED_OUT_URI},
        ):
            refused = await browser.get("/api/v2/session/end", params=params)
            assert refused.status_code == 400


def test_the_console_s_policy_lets_the_sign_out_form_leave_for_the_provider_only(provider: str) -> None:
    policy = content_security_policy([origin_of(f"{provider}/api/v2"), origin_of("")])
    assert f"form-action 'self' {provider};" in policy
    assert origin_of("/relative") == "" and origin_of("javascript:alert(1)") == ""


async def test_another_citizen_sees_none_of_the_first_one_s(
    console: httpx.AsyncClient, gateway: Gateway
) -> None:
    redirect = await _to_provider(console)
    await console.get((await _pick(redirect.headers["location"], SECOND)).removeprefix(CONSOLE))
    page = await console.get("/mes-donnees")
    assert gateway.bearers == [SECOND]
    assert "Aucune administration n'a consulté vos données" in page.text and RECIPIENT not in page.text


async def test_the_gateway_s_limit_on_the_history_is_said_with_its_wait(console: httpx.AsyncClient) -> None:
    redirect = await _to_provider(console)
    await console.get((await _pick(redirect.headers["location"], LIMITED)).removeprefix(CONSOLE))
    page = await console.get("/mes-donnees")
    assert (page.status_code, page.headers["retry-after"]) == (429, "3")


async def test_a_callback_whose_state_is_not_this_browser_s_is_refused(
    console: httpx.AsyncClient, gateway: Gateway
) -> None:
    redirect = await _to_provider(console)
    callback = await _pick(redirect.headers["location"], FIRST)
    # Another browser (without this one's flow cookie) arrives with the code: refused before any exchange.
    console.cookies.clear()
    assert (await console.get(callback.removeprefix(CONSOLE))).status_code == 400

    redirect = await _to_provider(console)
    callback = await _pick(redirect.headers["location"], FIRST)
    forged = callback.replace("state=", "state=x")
    assert (await console.get(forged.removeprefix(CONSOLE))).status_code == 400
    # The refusal ended the flow: the genuine callback no longer signs in either.
    assert (await console.get(callback.removeprefix(CONSOLE))).status_code == 400
    assert "FranceConnect" in (await console.get("/mes-donnees")).text
    assert gateway.bearers == []


async def test_the_sign_in_link_is_not_limited_and_refused_callbacks_are(
    console: httpx.AsyncClient,
) -> None:
    # The limit is 20 (the fixture's): following the link more often than that is no guess.
    redirects = [await _to_provider(console) for _ in range(25)]
    assert {redirect.status_code for redirect in redirects} == {303}
    callback = await _pick(redirects[-1].headers["location"], FIRST)
    forged = callback.replace("state=", "state=x").removeprefix(CONSOLE)
    statuses = [(await console.get(forged)).status_code for _ in range(21)]
    assert statuses == [400] * 20 + [429]
    assert int((await console.get(callback.removeprefix(CONSOLE))).headers["retry-after"]) > 0
    assert (await _to_provider(console)).status_code == 303


async def test_the_provider_checks_the_client_the_redirect_the_pkce_verifier_and_uses_a_code_once(
    provider: str,
) -> None:
    verifier = "v" * 50
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    request = {
        "response_type": "code",
        "client_id": CLIENT_ID,
        "redirect_uri": REDIRECT_URI,
        "scope": "openid",
        "state": "s" * 16,
        "nonce": "n" * 16,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    async with httpx.AsyncClient(base_url=provider) as client:
        for broken in (
            {"redirect_uri": "https://ailleurs.test/"},
            {"nonce": ""},
            {"code_challenge_method": "plain"},
        ):
            assert (await client.get("/api/v2/authorize", params={**request, **broken})).status_code == 400
        page = await client.get("/api/v2/authorize", params=request)
        chosen = await client.post("/api/v2/authorize", data={**_hidden(page), "person": FIRST})
        code = urllib.parse.parse_qs(urllib.parse.urlsplit(chosen.headers["location"]).query)["code"][0]
        exchange = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI}
        basic = (CLIENT_ID, SECRET)
        assert (
            await client.post("/api/v2/token", data=exchange, auth=(CLIENT_ID, "faux"))
        ).status_code == 401
        wrong = await client.post("/api/v2/token", data={**exchange, "code_verifier": "w" * 50}, auth=basic)
        assert wrong.json() == {"error": "invalid_grant"}
        # The wrong verifier spent the code: a code is exchanged at most once.
        spent = await client.post("/api/v2/token", data={**exchange, "code_verifier": verifier}, auth=basic)
        assert spent.json() == {"error": "invalid_grant"}
        userinfo = await client.get("/api/v2/userinfo", headers={"authorization": "Bearer inconnu"})
        assert userinfo.status_code == 401
