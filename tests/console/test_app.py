"""The console served in-process: its guards, the catalogue, and the operator pages over a real admin API.

For the guards the mesh's addresses point at a closed port: none of those pages or refusals needs
the mesh, and a page that does answers 503. The maintenance and audit pages run over a real admin
API (`tests.gateway.registry.conftest`); the pages over a whole running mesh are tested in a
browser (tests/console/test_browser.py).
"""

from __future__ import annotations

import datetime as dt
import html
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
import redis
from cryptography.fernet import Fernet
from pydantic import SecretStr

from console.app import build_app
from console.catalogue import apis
from console.security import CONTENT_SECURITY_POLICY, COOKIE, Session, SessionCodec
from console.settings import ConsoleSettings
from contract.routes import build_routes
from devstack.redis import free_port
from gateway import pings
from gateway.admin_api.service import secret_digest
from gateway.registry.model import DPO_FIELDS
from tests.gateway.registry import conftest as registry
from tests.gateway.registry.conftest import AdminApi, admin_api, maintenance_windows, registry_url

__all__ = ["admin_api", "maintenance_windows", "registry_url"]

ADMIN_SECRET = "console-test-admin-secret"
_PARIS = ZoneInfo("Europe/Paris")
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
        transport = httpx.ASGITransport(app=build_app(settings, public, admin))
        async with httpx.AsyncClient(transport=transport, base_url="https://console.test") as browser:
            yield browser


def _csrf(page: httpx.Response) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert match is not None, page.text
    return match.group(1)


def _shown(moment: dt.datetime) -> str:
    """A moment as the pages write it: Paris time, day first, to the minute."""
    return moment.astimezone(_PARIS).strftime("%d/%m/%Y %H:%M")


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


async def test_failed_sign_ins_are_limited_per_client_address(client: httpx.AsyncClient) -> None:
    statuses = [(await _sign_in(client, "wrong")).status_code for _ in range(4)]
    assert statuses == [401, 401, 401, 429]
    page = await client.get("/connexion")
    response = await client.post("/connexion", data={"csrf_token": _csrf(page), "secret": ADMIN_SECRET})
    assert response.status_code == 429
    assert int(response.headers["retry-after"]) > 0


async def test_a_successful_sign_in_does_not_count_against_the_limit(client: httpx.AsyncClient) -> None:
    # Twice the limit (3) of right secrets, a wrong one between each: only the wrong ones count.
    statuses = []
    for _ in range(2):
        statuses += [(await _sign_in(client, ADMIN_SECRET)).status_code for _ in range(3)]
    statuses += [(await _sign_in(client, "wrong")).status_code for _ in range(2)]
    statuses.append((await _sign_in(client, ADMIN_SECRET)).status_code)
    statuses += [(await _sign_in(client, "wrong")).status_code for _ in range(2)]
    assert statuses == [303] * 6 + [401, 401, 303, 401, 429]


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


# -- the operator pages over a real admin API -------------------------------------------------------

_PING = pings.BY_ID["men_scolarite"]


@pytest.fixture
async def operator_client(admin_api: AdminApi, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    """The console over ``admin_api``, reading its operators file (the public front closed)."""
    settings = ConsoleSettings(
        console_session_key=SecretStr(KEY),
        public_api_url=f"http://127.0.0.1:{free_port()}",
        admin_api_url=admin_api.rest_url,
        admin_operators_file=tmp_path / "operators.json",  # the admin API's own (admin_settings)
        mesh_timeout_seconds=5,
    )
    async with (
        httpx.AsyncClient(base_url=settings.public_api_url) as public,
        httpx.AsyncClient(base_url=settings.admin_api_url) as admin,
    ):
        transport = httpx.ASGITransport(app=build_app(settings, public, admin))
        async with httpx.AsyncClient(transport=transport, base_url="https://console.test") as browser:
            yield browser


async def _post(client: httpx.AsyncClient, path: str, **fields: str) -> httpx.Response:
    page = await client.get("/connexion")
    return await client.post(path, data={"csrf_token": _csrf(page), **fields})


async def test_an_admin_opens_and_closes_a_window_each_in_the_audit_page(
    operator_client: httpx.AsyncClient, maintenance_windows: redis.Redis
) -> None:
    await _sign_in(operator_client, registry.ADMIN_SECRET)
    empty = await operator_client.get("/operateur/maintenance")
    assert empty.status_code == 200
    assert "Aucune fenêtre de maintenance en cours ni programmée" in empty.text

    opened = await _post(operator_client, "/operateur/maintenance", ping=_PING.id, minutes="45")
    assert (opened.status_code, opened.headers["location"]) == (303, "/operateur/maintenance")
    listed = await operator_client.get("/operateur/maintenance")
    row = re.search(r"<tbody>(.*?)</tbody>", listed.text, re.S)
    assert row is not None
    assert _PING.label in html.unescape(row.group(1)) and "En cours" in row.group(1)
    assert maintenance_windows.exists(pings.window_key(_PING.id))

    closed = await _post(operator_client, f"/operateur/maintenance/{_PING.id}/fermer")
    assert closed.status_code == 303
    assert "Aucune fenêtre de maintenance" in (await operator_client.get("/operateur/maintenance")).text

    audit = await operator_client.get("/operateur/audit")
    assert audit.status_code == 200
    assert "Chaîne intègre" in audit.text
    rows = re.findall(
        r"<tr>\s*<td>(\d+)</td>.*?<td>([^<]*)</td>\s*<td><code>([^<]*)</code>", audit.text, re.S
    )
    assert rows == [("2", "operatrice-1", "maintenance.close"), ("1", "operatrice-1", "maintenance.open")]


@pytest.mark.usefixtures("maintenance_windows")
async def test_a_window_refused_is_said_on_the_form(operator_client: httpx.AsyncClient) -> None:
    await _sign_in(operator_client, registry.ADMIN_SECRET)
    for fields, message in (
        ({"ping": _PING.id, "minutes": "0"}, "La durée doit être de 1 minute à 7 jours."),
        ({"ping": _PING.id, "minutes": "10081"}, "La durée doit être de 1 minute à 7 jours."),
        ({"ping": _PING.id, "minutes": "5", "start": "demain"}, "Le début doit être une date et une heure."),
        (
            {"ping": _PING.id, "minutes": "5", "start": "2001-01-01T10:00"},
            "Fenêtre refusée : end: must be in the future.",
        ),
        ({"ping": "nope", "minutes": "5"}, "Fenêtre refusée : ping: names no ping of the API"),
    ):
        refused = await _post(operator_client, "/operateur/maintenance", **fields)
        assert refused.status_code == 400, fields
        assert message in refused.text, fields
    nothing = await _post(operator_client, f"/operateur/maintenance/{_PING.id}/fermer")
    assert nothing.status_code == 404
    assert "no maintenance window open or scheduled" in nothing.text


@pytest.mark.usefixtures("maintenance_windows")
async def test_a_viewer_sees_the_windows_and_may_not_close_one(
    operator_client: httpx.AsyncClient, admin_api: AdminApi
) -> None:
    async with httpx.AsyncClient(base_url=admin_api.rest_url) as api:
        start = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
        opened = await api.post(
            "/admin/v1/maintenance",
            headers={"authorization": f"Bearer {registry.ADMIN_SECRET}"},
            json={
                "ping": _PING.id,
                "start": start.isoformat(),
                "end": (start + dt.timedelta(hours=2)).isoformat(),
            },
        )
        assert opened.status_code == 201
    await _sign_in(operator_client, registry.VIEWER_SECRET)
    page = await operator_client.get("/operateur/maintenance")
    assert "Programmée" in page.text
    assert "Ouvrir une fenêtre" not in page.text and "/fermer" not in page.text
    refused = await _post(operator_client, f"/operateur/maintenance/{_PING.id}/fermer")
    assert refused.status_code == 403


async def test_the_audit_page_goes_back_a_page_at_a_time(
    operator_client: httpx.AsyncClient, admin_api: AdminApi
) -> None:
    async with httpx.AsyncClient(base_url=admin_api.rest_url) as api:
        for index in range(55):
            created = await api.post(
                "/admin/v1/habilitations",
                headers={"authorization": f"Bearer {registry.ADMIN_SECRET}"},
                json={
                    "label": f"CCAS {index}",
                    "siret": registry.SIRET,
                    "scopes": ["cnaf_quotient_familial"],
                },
            )
            assert created.status_code == 201
    await _sign_in(operator_client, registry.VIEWER_SECRET)
    first = await operator_client.get("/operateur/audit")
    seqs = [int(seq) for seq in re.findall(r"<tr>\s*<td>(\d+)</td>", first.text)]
    assert seqs == list(range(55, 5, -1))
    assert "55 entrées vérifiées" in first.text
    assert '"label": "CCAS 54"' in first.text.replace("&#34;", '"')
    older = re.search(r'href="(/operateur/audit\?avant=\d+)"', first.text)
    assert older is not None
    second = await operator_client.get(older.group(1))
    assert [int(seq) for seq in re.findall(r"<tr>\s*<td>(\d+)</td>", second.text)] == [5, 4, 3, 2, 1]
    assert "Entrées plus anciennes" not in second.text
    assert 'href="/operateur/audit"' in second.text
    bad = await operator_client.get("/operateur/audit", params={"avant": "abc"})
    assert bad.status_code == 400
    assert "page_token" in bad.text


_DPO_FORM = {
    "dpo_given_name": "Responsable",
    "dpo_family_name": "Conformité",
    "dpo_email": "dpd@mairie.example",
    "dpo_phone": "+33 1 23 45 67 89",
    "dpo_job_title": "Déléguée à la protection des données",
}


async def test_an_admin_invites_a_body_whose_holder_accepts_with_the_secret_shown_once(
    operator_client: httpx.AsyncClient, admin_api: AdminApi
) -> None:
    assert {name.removeprefix("dpo_") for name in _DPO_FORM} == set(DPO_FIELDS)
    headers = {"authorization": f"Bearer {registry.ADMIN_SECRET}"}
    async with httpx.AsyncClient(base_url=admin_api.rest_url, headers=headers) as admin:
        editor = (
            await admin.post("/admin/v1/editors", json={"siret": registry.SIRET, "name": "Logiciel"})
        ).json()
        habilitation = (
            await admin.post(
                "/admin/v1/habilitations",
                json={"label": "Cantine", "siret": registry.SIRET, "scopes": ["cnaf_quotient_familial"]},
            )
        ).json()
        await _sign_in(operator_client, registry.ADMIN_SECRET)
        empty = await operator_client.get("/operateur/invitations")
        assert empty.status_code == 200 and "Aucune invitation." in empty.text

        fields = {"editor_id": editor["id"], "habilitation_id": habilitation["id"], **_DPO_FORM}
        refused = await _post(operator_client, "/operateur/invitations", contact_email="nobody", **fields)
        assert refused.status_code == 400 and "Invitation refusée : contact_email" in refused.text

        made = await _post(
            operator_client, "/operateur/invitations", contact_email="accueil@mairie.example", **fields
        )
        assert made.status_code == 200
        secret = re.search(r'id="secret".*?<code>([^<]+)</code>', made.text, re.S)
        assert secret is not None
        row = re.search(r"<tbody>(.*?)</tbody>", made.text, re.S)
        assert row is not None and "Logiciel" in row.group(1) and "Cantine" in row.group(1)
        assert "En attente" in row.group(1)
        (invitation,) = (await admin.get("/admin/v1/invitations")).json()
        # The secret shown is the one the body's holder accepts with.
        accepted = await admin.post(
            f"/admin/v1/invitations/{invitation['id']}/accept",
            json={
                "secret": html.unescape(secret.group(1)),
                "siret": registry.SIRET,
                "terms_accepted": True,
                "dpo_informed": True,
            },
        )
        assert accepted.status_code == 200, accepted.text
        listed = await operator_client.get("/operateur/invitations")
        assert "Acceptée" in listed.text and 'id="secret"' not in listed.text


async def test_a_viewer_lists_the_invitations_and_may_not_invite(operator_client: httpx.AsyncClient) -> None:
    await _sign_in(operator_client, registry.VIEWER_SECRET)
    page = await operator_client.get("/operateur/invitations")
    assert page.status_code == 200 and "Inviter un organisme" not in page.text
    assert (await _post(operator_client, "/operateur/invitations", editor_id="x")).status_code == 403


async def test_an_ending_token_shows_when_it_ends_beside_its_expiry(
    operator_client: httpx.AsyncClient, admin_api: AdminApi
) -> None:
    headers = {"authorization": f"Bearer {registry.ADMIN_SECRET}"}
    async with httpx.AsyncClient(base_url=admin_api.rest_url, headers=headers) as admin:
        habilitation = (
            await admin.post(
                "/admin/v1/habilitations",
                json={"label": "Cantine", "siret": registry.SIRET, "scopes": ["cnaf_quotient_familial"]},
            )
        ).json()
        tokens = f"/admin/v1/habilitations/{habilitation['id']}/tokens"
        rotated = (await admin.post(tokens, json={"days": 100})).json()["token"]
        banned = (await admin.post(tokens, json={"days": 100})).json()["token"]
        week = {"grace_seconds": 7 * 86400}
        grace = await admin.post(f"/admin/v1/tokens/{rotated['id']}/rotate", json=week)
        ban_at = (dt.datetime.now(dt.UTC) + dt.timedelta(days=20)).replace(microsecond=0)
        ban = await admin.post(
            f"/admin/v1/tokens/{banned['id']}/ban", json={"at": ban_at.isoformat(), "reason": "fuite"}
        )
    assert grace.status_code == ban.status_code == 200
    ends = [(rotated, dt.datetime.fromisoformat(grace.json()["old_token"]["revoked_at"])), (banned, ban_at)]
    await _sign_in(operator_client, registry.ADMIN_SECRET)
    page = await operator_client.get(f"/operateur/habilitations/{habilitation['id']}")
    assert page.status_code == 200
    for token, end in ends:
        row = re.search(rf"<code>{token['id']}</code>.*?</tr>", page.text, re.DOTALL)
        assert row is not None
        cells = re.findall(r"<td[^>]*>(.*?)</td>", row.group(0), re.DOTALL)
        expiry = dt.datetime.fromisoformat(token["expires_at"])
        # As `token list` has them: STATE ending, EXPIRES the original expiry, ENDS the end.
        assert cells[1:5] == ["ending", cells[2], _shown(expiry), _shown(end)]
