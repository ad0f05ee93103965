"""The console's guards, served in-process: headers, sessions, CSRF, roles, the sign-in limit, the catalogue.

The mesh's addresses point at a closed port: none of these pages or refusals needs the mesh, and
a page that does answers 503. The pages over the running mesh are tested in a browser
(tests/console/test_browser.py).
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr

from console.app import build_app
from console.catalogue import apis
from console.security import CONTENT_SECURITY_POLICY, COOKIE, Session, SessionCodec
from console.settings import ConsoleSettings
from contract.routes import build_routes
from devstack.redis import free_port
from gateway.admin_api.service import secret_digest

ADMIN_SECRET = "console-test-admin-secret"
VIEWER_SECRET = "console-test-viewer-secret"
KEY = Fernet.generate_key().decode()


@pytest.fixture
def settings(tmp_path: Path) -> ConsoleSettings:
    operators = tmp_path / "operators.json"
    operators.write_text(
        json.dumps(
            {
                "operators": [
                    {"name": "ops-admin", "role": "admin", "secret_sha256": secret_digest(ADMIN_SECRET)},
                    {"name": "ops-viewer", "role": "viewer", "secret_sha256": secret_digest(VIEWER_SECRET)},
                ]
            }
        )
    )
    closed = f"http://127.0.0.1:{free_port()}"
    return ConsoleSettings(
        console_session_key=SecretStr(KEY),
        public_api_url=closed,
        admin_api_url=closed,
        admin_operators_file=operators,
        sign_in_attempts=3,
        mesh_timeout_seconds=1,
    )


@pytest.fixture
async def client(settings: ConsoleSettings) -> AsyncIterator[httpx.AsyncClient]:
    async with (
        httpx.AsyncClient(base_url=settings.public_api_url) as public,
        httpx.AsyncClient(base_url=settings.admin_api_url) as admin,
    ):
        app, maintenance = build_app(settings, public, admin)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="https://console.test") as browser:
            yield browser
        maintenance.close()


def _csrf(page: httpx.Response) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert match is not None, page.text
    return match.group(1)


async def _sign_in(client: httpx.AsyncClient, secret: str) -> httpx.Response:
    page = await client.get("/connexion")
    return await client.post("/connexion", data={"csrf_token": _csrf(page), "secret": secret})


async def test_every_answer_carries_the_strict_policy_and_no_store(client: httpx.AsyncClient) -> None:
    for path in ("/", "/catalogue", "/nulle-part", "/connexion"):
        response = await client.get(path)
        assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
        assert "unsafe" not in CONTENT_SECURITY_POLICY
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["referrer-policy"] == "no-referrer"
    assert (await client.get("/nulle-part")).status_code == 404


async def test_the_session_cookie_is_http_only_strict_and_secure(client: httpx.AsyncClient) -> None:
    cookie = (await client.get("/")).headers["set-cookie"]
    assert f"{COOKIE}=" in cookie
    for flag in ("HttpOnly", "Secure", "SameSite=strict", "Max-Age=3600"):
        assert flag in cookie


async def test_an_operator_signs_in_with_their_secret_and_reads_as_their_role(
    client: httpx.AsyncClient,
) -> None:
    refused = await _sign_in(client, "not-a-secret")
    assert refused.status_code == 401
    assert "aucun opérateur" in refused.text
    signed_in = await _sign_in(client, VIEWER_SECRET)
    assert (signed_in.status_code, signed_in.headers["location"]) == (303, "/operateur")
    # The admin API is not running: the operator page is reached (role checked), then answers 503.
    assert (await client.get("/operateur")).status_code == 503


async def test_nobody_signed_in_is_sent_to_sign_in_and_a_viewer_cannot_act(client: httpx.AsyncClient) -> None:
    for path in ("/operateur", "/operateur/audit", "/operateur/maintenance", "/operateur/habilitations/x"):
        response = await client.get(path)
        assert (response.status_code, response.headers["location"]) == (303, "/connexion")
    await _sign_in(client, VIEWER_SECRET)
    page = await client.get("/connexion")
    for path in ("/operateur/jetons/x/revoquer", "/operateur/maintenance"):
        response = await client.post(
            path, data={"csrf_token": _csrf(page), "minutes": "5", "ping": "men_scolarite"}
        )
        assert response.status_code == 403
        assert "réservée aux opérateurs administrateurs" in response.text


async def test_a_form_without_the_session_token_is_refused(client: httpx.AsyncClient) -> None:
    await client.get("/connexion")
    for token in (None, "forged"):
        data = {"secret": ADMIN_SECRET} | ({"csrf_token": token} if token else {})
        response = await client.post("/connexion", data=data)
        assert response.status_code == 403
        assert "Formulaire expiré" in response.text
    await _sign_in(client, ADMIN_SECRET)
    response = await client.post("/operateur/jetons/x/revoquer", data={"csrf_token": "forged"})
    assert response.status_code == 403


async def test_a_cookie_altered_expired_or_under_another_key_is_no_session(
    client: httpx.AsyncClient, settings: ConsoleSettings
) -> None:
    codec = SessionCodec(KEY, settings.session_max_age_seconds)
    forged = {
        "altered": codec.seal(Session(operator="ops-admin", role="admin", secret=ADMIN_SECRET))[:-4] + "AAAA",
        "other key": SessionCodec(Fernet.generate_key().decode(), 3600).seal(
            Session(operator="ops-admin", role="admin", secret=ADMIN_SECRET)
        ),
    }
    for value in forged.values():
        client.cookies.clear()
        client.cookies.set(COOKIE, value)
        assert (await client.get("/operateur")).status_code == 303
    expired = SessionCodec(KEY, 1)
    sealed = Fernet(KEY.encode()).encrypt_at_time(
        json.dumps({"csrf": "x", "operator": "ops-admin", "role": "admin", "secret": ADMIN_SECRET}).encode(),
        current_time=1_000_000,
    )
    assert expired.open(sealed.decode()) is None
    assert codec.open(codec.seal(Session(operator="ops-admin"))) is not None


async def test_sign_in_is_limited_per_client_address(client: httpx.AsyncClient) -> None:
    statuses = [(await _sign_in(client, "wrong")).status_code for _ in range(4)]
    assert statuses == [401, 401, 401, 429]
    page = await client.get("/connexion")
    response = await client.post("/connexion", data={"csrf_token": _csrf(page), "secret": ADMIN_SECRET})
    assert response.status_code == 429
    assert int(response.headers["retry-after"]) > 0


async def test_signing_out_ends_the_session(client: httpx.AsyncClient) -> None:
    await _sign_in(client, ADMIN_SECRET)
    page = await client.get("/connexion")
    assert (await client.post("/deconnexion", data={"csrf_token": _csrf(page)})).status_code == 303
    assert (await client.get("/operateur")).status_code == 303


async def test_the_catalogue_lists_every_api_route_and_scope_of_the_contract(
    client: httpx.AsyncClient,
) -> None:
    routes = build_routes().routes
    assert {api.label for api in apis()} == {route.api_label for route in routes}
    for route in routes:
        page = await client.get(f"/catalogue/{route.api_label}")
        assert page.status_code == 200
        assert route.path in page.text
        for path in route.http_paths:
            assert path in page.text
        for scope in route.scopes:
            assert scope in page.text
    search = await client.get("/catalogue", params={"q": "cnous_echelon_bourse"})
    assert 'href="/catalogue/cnous.etudiant_boursier"' in search.text
    assert 'href="/catalogue/cnaf.quotient_familial"' not in search.text
    assert (await client.get("/catalogue/pas.une_api")).status_code == 404


async def test_pages_over_an_unreachable_mesh_answer_503(client: httpx.AsyncClient) -> None:
    for path in ("/statut", "/statistiques", "/developpeurs"):
        response = await client.get(path)
        assert response.status_code == 503
        assert "indisponible" in response.text
